/*
 * bt_mmu.c — the bt engine's soft MMU: software TLB, page walks (no paging,
 * 32-bit with PSE, PAE, 4-level), A/D bits, the physical layer (RAM, ROM,
 * the local APIC page, MMIO to the platform) and instruction fetch.
 *
 * TLB entries hold the permissions of the whole walk (U/S and R/W ANDed
 * over all levels, NX ORed); CPL and CR0.WP are applied at access time so
 * that an entry stays valid across privilege changes.  Pages that are not
 * plain writable RAM (ROM, MMIO, the LAPIC) get hva == NULL and always take
 * the slow path.
 */
#include <string.h>

#include "bt.h"
#include "../../vmx/log.h"
#include "../../vmx/platform.h"

/* Internal TLB bits beyond bt.h's (bt.h reserves the low byte). */
#define BT_TLB_LARGE 0x100u      /* from a 2 MiB / 4 MiB / 1 GiB page */
#define BT_TLB_NX    0x200u      /* not executable (NX with EFER.NXE) */
#define BT_TLB_RW    0x400u      /* R/W set at every level */

/* #PF error code bits */
#define PF_P    0x1u
#define PF_W    0x2u
#define PF_U    0x4u
#define PF_RSVD 0x8u
#define PF_I    0x10u

/* Physical address width we advertise (CPUID 0x80000008). */
#define BT_PHYS_BITS 40
#define BT_PHYS_MASK ((1ull << BT_PHYS_BITS) - 1)

/* ---- the physical layer ---- */

uint8_t *bt_phys_ptr(struct bt_vm *vm, uint64_t gpa, uint64_t len, bool write)
{
	for (unsigned i = 0; i < vm->nregions; i++) {
		const struct bt_region *r = &vm->regions[i];
		if (gpa >= r->gpa && gpa - r->gpa < r->size && len <= r->size - (gpa - r->gpa)) {
			if (write && (r->flags & VMM_MEM_READONLY))
				return NULL;
			return r->hva + (gpa - r->gpa);
		}
	}
	return NULL;
}

static bool lapic_hit(const struct bt_cpu *cpu, uint64_t gpa)
{
	uint64_t b = cpu->lapic.base_msr;
	if (!(b & (1u << 11)))
		return false;
	return (gpa & ~0xfffull) == (b & 0xffffff000ull);
}

uint8_t *bt_phys_ptr_fast(struct bt_cpu *cpu, uint64_t gpa, unsigned len, bool write)
{
	if ((gpa & 0xfff) + len > 4096 || lapic_hit(cpu, gpa) ||
	    (write && bt_page_is_code(cpu->vm, gpa)))
		return NULL;
	return bt_phys_ptr(cpu->vm, gpa, len, write);
}

static uint64_t load_le(const uint8_t *p, unsigned size)
{
	uint64_t v = 0;
	memcpy(&v, p, size);
	return v;
}

static void store_le(uint8_t *p, unsigned size, uint64_t v)
{
	memcpy(p, &v, size);
}

static uint64_t lapic_access(struct bt_cpu *cpu, uint64_t gpa, unsigned size, bool write, uint64_t v)
{
	uint32_t off = (uint32_t)(gpa & 0xfff);
	uint32_t reg = off & ~0xfu;
	unsigned shift = (off & 3) * 8;

	if ((off & 0xf) + size > 4 || size > 4) {
		/* The xAPIC only decodes aligned dwords; other shapes are undefined. */
		vlog_guest("bt: LAPIC access of %u bytes at offset %#x", size, off);
		return write ? 0 : 0;
	}
	if (write) {
		if (size != 4) {
			uint32_t cur = bt_lapic_read(cpu, reg);
			uint32_t mask = (uint32_t)(((1ull << (size * 8)) - 1) << shift);
			v = (cur & ~mask) | (((uint32_t)v << shift) & mask);
		}
		bt_lapic_write(cpu, reg, (uint32_t)v);
		return 0;
	}
	uint64_t r = bt_lapic_read(cpu, reg) >> shift;
	return size == 4 ? r & 0xffffffffu : r & ((1ull << (size * 8)) - 1);
}

static uint64_t mmio_read(struct bt_cpu *cpu, uint64_t gpa, unsigned size)
{
	const struct vmm_host_ops *h = cpu->vm->cfg.host;
	uint8_t data[8] = {0};

	if (size == 1 || size == 2 || size == 4 || size == 8) {
		if (h && h->mmio)
			h->mmio(cpu->vm->cfg.host_opaque, cpu->id, gpa, size, false, data);
		else
			memset(data, 0xff, sizeof(data));
		return load_le(data, size);
	}
	uint64_t v = 0;
	for (unsigned i = 0; i < size; i++)
		v |= mmio_read(cpu, gpa + i, 1) << (8 * i);
	return v;
}

static void mmio_write(struct bt_cpu *cpu, uint64_t gpa, unsigned size, uint64_t v)
{
	const struct vmm_host_ops *h = cpu->vm->cfg.host;
	uint8_t data[8];

	if (size == 1 || size == 2 || size == 4 || size == 8) {
		store_le(data, size, v);
		if (h && h->mmio)
			h->mmio(cpu->vm->cfg.host_opaque, cpu->id, gpa, size, true, data);
		return;
	}
	for (unsigned i = 0; i < size; i++)
		mmio_write(cpu, gpa + i, 1, v >> (8 * i));
}

uint64_t bt_phys_read(struct bt_cpu *cpu, uint64_t gpa, unsigned size)
{
	if (lapic_hit(cpu, gpa))
		return lapic_access(cpu, gpa, size, false, 0);
	uint8_t *p = bt_phys_ptr(cpu->vm, gpa, size, false);
	if (p)
		return load_le(p, size);
	if ((gpa & 0xfff) + size > 4096) {
		unsigned first = (unsigned)(4096 - (gpa & 0xfff));
		uint64_t lo = bt_phys_read(cpu, gpa, first);
		uint64_t hi = bt_phys_read(cpu, gpa + first, size - first);
		return lo | (hi << (8 * first));
	}
	return mmio_read(cpu, gpa, size);
}

void bt_phys_write(struct bt_cpu *cpu, uint64_t gpa, unsigned size, uint64_t v)
{
	if (lapic_hit(cpu, gpa)) {
		lapic_access(cpu, gpa, size, true, v);
		return;
	}
	uint8_t *p = bt_phys_ptr(cpu->vm, gpa, size, true);
	if (p) {
		store_le(p, size, v);
		if (bt_page_is_code(cpu->vm, gpa))
			bt_tc_invalidate_page(cpu->vm, gpa & ~0xfffull);
		if (((gpa + size - 1) ^ gpa) & ~0xfffull && bt_page_is_code(cpu->vm, gpa + size - 1))
			bt_tc_invalidate_page(cpu->vm, (gpa + size - 1) & ~0xfffull);
		return;
	}
	if ((gpa & 0xfff) + size > 4096) {
		unsigned first = (unsigned)(4096 - (gpa & 0xfff));
		bt_phys_write(cpu, gpa, first, v);
		bt_phys_write(cpu, gpa + first, size - first, v >> (8 * first));
		return;
	}
	if (bt_phys_ptr(cpu->vm, gpa, size, false)) {
		/* ROM: writes are MMIO so the platform can see (and ignore) them. */
		mmio_write(cpu, gpa, size, v);
		return;
	}
	mmio_write(cpu, gpa, size, v);
}

/* ---- page walks ---- */

struct walk {
	uint64_t gpa;        /* of the page (4 KiB granular slice of a large page) */
	uint32_t perm;       /* BT_TLB_* incl. internal bits */
	uint32_t err;        /* #PF error code when the walk fails */
	bool fault;
};

/* Read a paging-structure entry; NULL pointer means "not in RAM". */
static uint64_t pte_read(struct bt_cpu *cpu, uint64_t gpa, unsigned size, uint8_t **hp)
{
	uint8_t *p = bt_phys_ptr(cpu->vm, gpa, size, true);
	*hp = p;
	if (p) {
		if (size == 8)
			return __atomic_load_n((uint64_t *)(void *)p, __ATOMIC_RELAXED);
		return __atomic_load_n((uint32_t *)(void *)p, __ATOMIC_RELAXED);
	}
	return bt_phys_read(cpu, gpa, size);
}

/* Set bits in an entry atomically (another vCPU may share the tables). */
static void pte_set(struct bt_cpu *cpu, uint8_t *hp, uint64_t gpa, unsigned size, uint64_t cur, uint64_t bits)
{
	if ((cur & bits) == bits)
		return;
	if (hp) {
		if (size == 8)
			__atomic_fetch_or((uint64_t *)(void *)hp, bits, __ATOMIC_SEQ_CST);
		else
			__atomic_fetch_or((uint32_t *)(void *)hp, (uint32_t)bits, __ATOMIC_SEQ_CST);
		/* Page tables that also hold code (rare, but guests do odd things). */
		if (bt_page_is_code(cpu->vm, gpa))
			bt_tc_invalidate_page(cpu->vm, gpa & ~0xfffull);
	}
	/* Tables outside RAM: A/D bits cannot be recorded; the walk still works. */
}

static bool is_user_access(const struct bt_cpu *cpu, unsigned acc)
{
	return cpu->cpl == 3 && !(acc & BT_ACC_SUPER);
}

static void walk_fail(struct walk *w, uint32_t err)
{
	w->fault = true;
	w->err = err;
}

/*
 * Walk the tables for lin.  acc decides which bits are set (A always, D on
 * a write) but not the permission check, which the caller does on w->perm.
 */
static void page_walk(struct bt_cpu *cpu, uint64_t lin, unsigned acc, struct walk *w)
{
	bool write = acc & BT_ACC_WRITE;
	bool nxe = cpu->efer & BT_EFER_NXE;
	uint32_t uerr = is_user_access(cpu, acc) ? PF_U : 0;
	uint32_t werr = write ? PF_W : 0;
	uint32_t ierr = ((acc & BT_ACC_EXEC) && nxe && (cpu->cr4 & BT_CR4_PAE)) ? PF_I : 0;
	uint32_t e0 = uerr | werr | ierr;
	uint8_t *hp;

	memset(w, 0, sizeof(*w));
	if (!(cpu->cr0 & BT_CR0_PG)) {
		w->gpa = lin & 0xfffff000ull;
		w->perm = BT_TLB_R | BT_TLB_W | BT_TLB_X | BT_TLB_USER | BT_TLB_RW | BT_TLB_DIRTY;
		return;
	}

	uint32_t perm = BT_TLB_USER | BT_TLB_RW;
	bool nx = false;

	if (!(cpu->cr4 & BT_CR4_PAE)) {
		/* 32-bit paging */
		uint64_t pde_a = (cpu->cr3 & 0xfffff000ull) + ((lin >> 22) & 0x3ff) * 4;
		uint64_t pde = pte_read(cpu, pde_a, 4, &hp);
		if (!(pde & 1))
			{ walk_fail(w, e0); return; }
		if (!(pde & 2))
			perm &= ~BT_TLB_RW;
		if (!(pde & 4))
			perm &= ~BT_TLB_USER;
		if ((pde & 0x80) && (cpu->cr4 & BT_CR4_PSE)) {
			uint64_t d = write ? 0x60 : 0x20;
			pte_set(cpu, hp, pde_a, 4, pde, d);
			w->gpa = (pde & 0xffc00000ull) + (lin & 0x3ff000ull);
			w->perm = perm | BT_TLB_LARGE | ((pde & 0x100) ? BT_TLB_GLOBAL : 0) |
			          ((write || (pde & 0x40)) ? BT_TLB_DIRTY : 0);
			goto done;
		}
		pte_set(cpu, hp, pde_a, 4, pde, 0x20);
		uint64_t pte_a = (pde & 0xfffff000ull) + ((lin >> 12) & 0x3ff) * 4;
		uint64_t pte = pte_read(cpu, pte_a, 4, &hp);
		if (!(pte & 1))
			{ walk_fail(w, e0); return; }
		if (!(pte & 2))
			perm &= ~BT_TLB_RW;
		if (!(pte & 4))
			perm &= ~BT_TLB_USER;
		pte_set(cpu, hp, pte_a, 4, pte, write ? 0x60 : 0x20);
		w->gpa = pte & 0xfffff000ull;
		w->perm = perm | ((pte & 0x100) ? BT_TLB_GLOBAL : 0) |
		          ((write || (pte & 0x40)) ? BT_TLB_DIRTY : 0);
		goto done;
	}

	/* PAE and 4-level: 64-bit entries; reserved bits above MAXPHYADDR and NX without NXE. */
	uint64_t rsvd = ~BT_PHYS_MASK & 0x000fffffffffffffull;   /* bits 51:MAXPHYADDR */
	if (!nxe)
		rsvd |= 1ull << 63;
	uint64_t table;
	int level;

	if (cpu->efer & BT_EFER_LMA) {
		uint64_t pml4_a = (cpu->cr3 & BT_PHYS_MASK & ~0xfffull) + ((lin >> 39) & 0x1ff) * 8;
		uint64_t e = pte_read(cpu, pml4_a, 8, &hp);
		if (!(e & 1))
			{ walk_fail(w, e0); return; }
		if ((e & rsvd) || (e & 0x80))
			{ walk_fail(w, e0 | PF_P | PF_RSVD); return; }
		if (!(e & 2))
			perm &= ~BT_TLB_RW;
		if (!(e & 4))
			perm &= ~BT_TLB_USER;
		if (e & (1ull << 63))
			nx = true;
		pte_set(cpu, hp, pml4_a, 8, e, 0x20);
		table = e & BT_PHYS_MASK & ~0xfffull;
		level = 3;
	} else {
		/* PAE: the four PDPTEs (read at walk time rather than cached at MOV CR3). */
		uint64_t pdpte_a = (cpu->cr3 & 0xffffffe0ull) + ((lin >> 30) & 3) * 8;
		uint64_t e = pte_read(cpu, pdpte_a, 8, &hp);
		if (!(e & 1))
			{ walk_fail(w, e0); return; }
		if ((e & (rsvd | (1ull << 63))) || (e & 0x1e6))
			{ walk_fail(w, e0 | PF_P | PF_RSVD); return; }
		table = e & BT_PHYS_MASK & ~0xfffull;
		level = 2;
	}

	for (; level >= 1; level--) {
		unsigned shift = 12 + 9 * (unsigned)(level - 1);
		uint64_t a = table + ((lin >> shift) & 0x1ff) * 8;
		uint64_t e = pte_read(cpu, a, 8, &hp);
		if (!(e & 1))
			{ walk_fail(w, e0); return; }
		if (e & rsvd)
			{ walk_fail(w, e0 | PF_P | PF_RSVD); return; }
		if (!(e & 2))
			perm &= ~BT_TLB_RW;
		if (!(e & 4))
			perm &= ~BT_TLB_USER;
		if (e & (1ull << 63))
			nx = true;
		bool leaf = level == 1 || (e & 0x80);
		if (leaf && level == 3 && !(cpu->efer & BT_EFER_LMA))
			leaf = false;
		if (!leaf) {
			pte_set(cpu, hp, a, 8, e, 0x20);
			table = e & BT_PHYS_MASK & ~0xfffull;
			continue;
		}
		uint64_t size = 1ull << shift;
		if (level > 1) {
			/* Large page: bits between 12 and the page size (except PAT at 12) are reserved. */
			uint64_t mid = (size - 1) & ~0x1fffull;
			if (e & mid)
				{ walk_fail(w, e0 | PF_P | PF_RSVD); return; }
		}
		pte_set(cpu, hp, a, 8, e, write ? 0x60 : 0x20);
		uint64_t base = e & BT_PHYS_MASK & ~(size - 1);
		w->gpa = base + (lin & (size - 1) & ~0xfffull);
		w->perm = perm | ((e & 0x100) ? BT_TLB_GLOBAL : 0) | (level > 1 ? BT_TLB_LARGE : 0) |
		          ((write || (e & 0x40)) ? BT_TLB_DIRTY : 0);
		goto done;
	}
	{ walk_fail(w, e0); return; }

done:
	w->perm |= BT_TLB_R | BT_TLB_X;
	if (nx && nxe)
		w->perm = (w->perm & ~BT_TLB_X) | BT_TLB_NX;
	if (w->perm & BT_TLB_RW)
		w->perm |= BT_TLB_W;
	if (!(cpu->cr4 & BT_CR4_PGE))
		w->perm &= ~BT_TLB_GLOBAL;
}

/* Permission check of an access against walk permissions; returns a #PF code or 0. */
static uint32_t perm_check(const struct bt_cpu *cpu, uint32_t perm, unsigned acc)
{
	bool user = is_user_access(cpu, acc);
	uint32_t err = PF_P | (user ? PF_U : 0) | ((acc & BT_ACC_WRITE) ? PF_W : 0);

	if (user && !(perm & BT_TLB_USER))
		return err | (((acc & BT_ACC_EXEC) && (cpu->efer & BT_EFER_NXE)) ? PF_I : 0);
	if ((acc & BT_ACC_WRITE) && !(perm & BT_TLB_RW) && (user || (cpu->cr0 & BT_CR0_WP)))
		return err;
	if ((acc & BT_ACC_EXEC) && (perm & BT_TLB_NX))
		return err | PF_I;
	return 0;
}

static _Noreturn void raise_pf(struct bt_cpu *cpu, uint64_t lin, uint32_t err)
{
	cpu->cr2 = lin;
	bt_raise(cpu, BT_PF_EXC, err, true);
}

static inline struct bt_tlb_entry *tlb_slot(struct bt_cpu *cpu, uint64_t lin)
{
	return &cpu->tlb[(lin >> 12) & (BT_TLB_SIZE - 1)];
}

static inline uint64_t tlb_tag(uint64_t lin)
{
	return (lin & ~0xfffull) | 1;
}

/*
 * Translate and return the TLB entry for lin (filled if needed); raises
 * #PF.  Writes make sure the D bit is set.
 */
static struct bt_tlb_entry *tlb_lookup(struct bt_cpu *cpu, uint64_t lin, unsigned acc)
{
	struct bt_tlb_entry *t = tlb_slot(cpu, lin);
	bool write = acc & BT_ACC_WRITE;

	if (t->tag == tlb_tag(lin) && (!write || (t->perm & BT_TLB_DIRTY))) {
		uint32_t err = perm_check(cpu, t->perm, acc);
		if (!err)
			return t;
		/* A stale entry may be stricter than the tables: re-walk before faulting. */
	}
	struct walk w;
	page_walk(cpu, lin, acc, &w);
	if (w.fault)
		raise_pf(cpu, lin, w.err);
	uint32_t err = perm_check(cpu, w.perm, acc);
	if (err)
		raise_pf(cpu, lin, err);
	t->tag = tlb_tag(lin);
	t->gpa = w.gpa;
	t->perm = w.perm;
	if (bt_page_is_code(cpu->vm, w.gpa))
		t->perm |= BT_TLB_CODE;
	t->hva = lapic_hit(cpu, w.gpa) ? NULL : bt_phys_ptr(cpu->vm, w.gpa, 4096, true);
	return t;
}

uint64_t bt_mmu_translate(struct bt_cpu *cpu, uint64_t lin, unsigned acc)
{
	if (!(cpu->cr0 & BT_CR0_PG))
		return lin & 0xffffffffull;
	struct bt_tlb_entry *t = tlb_lookup(cpu, lin, acc);
	return t->gpa | (lin & 0xfff);
}

bool bt_mmu_peek(struct bt_cpu *cpu, uint64_t lin, void *buf, unsigned len)
{
	uint8_t *out = buf;
	while (len) {
		struct walk w;
		page_walk(cpu, lin, BT_ACC_READ | BT_ACC_SUPER, &w);
		if (w.fault)
			return false;
		unsigned n = (unsigned)(4096 - (lin & 0xfff));
		if (n > len)
			n = len;
		uint8_t *p = bt_phys_ptr(cpu->vm, w.gpa + (lin & 0xfff), n, false);
		if (!p)
			return false;
		memcpy(out, p, n);
		out += n;
		lin += n;
		len -= n;
	}
	return true;
}

/* ---- linear access ---- */

/* One page-contained access. */
static uint64_t lin_read_page(struct bt_cpu *cpu, uint64_t lin, unsigned size, unsigned acc)
{
	if (!(cpu->cr0 & BT_CR0_PG))
		return bt_phys_read(cpu, lin & 0xffffffffull, size);
	struct bt_tlb_entry *t = tlb_lookup(cpu, lin, acc);
	if (t->hva)
		return load_le(t->hva + (lin & 0xfff), size);
	return bt_phys_read(cpu, t->gpa | (lin & 0xfff), size);
}

static void lin_write_page(struct bt_cpu *cpu, uint64_t gpa, struct bt_tlb_entry *t, unsigned size, uint64_t v)
{
	if (t && t->hva) {
		store_le(t->hva + (gpa & 0xfff), size, v);
		if (bt_page_is_code(cpu->vm, gpa)) {
			bt_tc_invalidate_page(cpu->vm, gpa & ~0xfffull);
			/* The page is plain RAM again: let this entry's inline fast
			 * paths (which look at the flag only) store to it. */
			if (!bt_page_is_code(cpu->vm, gpa))
				t->perm &= ~BT_TLB_CODE;
		}
		return;
	}
	bt_phys_write(cpu, gpa, size, v);
}

uint64_t bt_lin_read(struct bt_cpu *cpu, uint64_t lin, unsigned size, unsigned acc)
{
	acc |= BT_ACC_READ;
	if (!bt_long_mode(cpu))
		lin &= 0xffffffffull;
	if ((lin & 0xfff) + size <= 4096)
		return lin_read_page(cpu, lin, size, acc);
	unsigned first = (unsigned)(4096 - (lin & 0xfff));
	uint64_t lo = lin_read_page(cpu, lin, first, acc);
	uint64_t lin2 = lin + first;
	if (!bt_long_mode(cpu))
		lin2 &= 0xffffffffull;
	uint64_t hi = lin_read_page(cpu, lin2, size - first, acc);
	return lo | (hi << (8 * first));
}

void bt_lin_write(struct bt_cpu *cpu, uint64_t lin, unsigned size, uint64_t v, unsigned acc)
{
	acc = (acc & ~BT_ACC_READ) | BT_ACC_WRITE;
	if (!bt_long_mode(cpu))
		lin &= 0xffffffffull;
	bool pg = cpu->cr0 & BT_CR0_PG;
	if ((lin & 0xfff) + size <= 4096) {
		if (!pg) {
			bt_phys_write(cpu, lin, size, v);
			return;
		}
		struct bt_tlb_entry *t = tlb_lookup(cpu, lin, acc);
		lin_write_page(cpu, t->gpa | (lin & 0xfff), t, size, v);
		return;
	}
	/* Page-crossing: translate both halves before storing anything. */
	unsigned first = (unsigned)(4096 - (lin & 0xfff));
	uint64_t lin2 = lin + first;
	if (!bt_long_mode(cpu))
		lin2 &= 0xffffffffull;
	if (!pg) {
		bt_phys_write(cpu, lin, first, v);
		bt_phys_write(cpu, lin2, size - first, v >> (8 * first));
		return;
	}
	struct bt_tlb_entry *t1 = tlb_lookup(cpu, lin, acc);
	uint64_t g1 = t1->gpa | (lin & 0xfff);
	struct bt_tlb_entry *t2 = tlb_lookup(cpu, lin2, acc);
	uint64_t g2 = t2->gpa;
	/* Both may share a TLB slot only if BT_TLB_SIZE pages apart; then t1 is stale. */
	struct bt_tlb_entry copy1 = *t1;
	if (t1 == t2) {
		copy1.hva = bt_phys_ptr(cpu->vm, g1 & ~0xfffull, 4096, true);
		if (lapic_hit(cpu, g1))
			copy1.hva = NULL;
	}
	lin_write_page(cpu, g1, &copy1, first, v);
	lin_write_page(cpu, g2, t2, size - first, v >> (8 * first));
}

/* ---- segment-relative access ---- */

/*
 * The fast paths: 64-bit mode with a TLB hit on plain RAM inside one page.
 * Everything else (segment checks, walks, A/D updates, code pages, MMIO)
 * goes the long way.
 */
static inline bool fast_lin64(struct bt_cpu *cpu, enum bt_sreg s, uint64_t off, unsigned size, uint64_t *lin)
{
	if (!(cpu->efer & BT_EFER_LMA) || !(cpu->seg[BT_CS].attr & BT_SEG_L))
		return false;
	uint64_t l = off + ((s == BT_FS || s == BT_GS) ? cpu->seg[s].base : 0);
	uint64_t e = l + size - 1;
	if ((uint64_t)((int64_t)(l << 16) >> 16) != l || (uint64_t)((int64_t)(e << 16) >> 16) != e)
		return false;
	*lin = l;
	return true;
}

uint64_t bt_mem_read(struct bt_cpu *cpu, enum bt_sreg s, uint64_t off, unsigned size)
{
	uint64_t lin;
	if (__builtin_expect(fast_lin64(cpu, s, off, size, &lin), 1) && (lin & 0xfff) + size <= 4096) {
		const struct bt_tlb_entry *t = tlb_slot(cpu, lin);
		if (t->tag == tlb_tag(lin) && t->hva && ((t->perm & BT_TLB_USER) || cpu->cpl != 3))
			return load_le(t->hva + (lin & 0xfff), size);
	} else {
		lin = bt_seg_linear(cpu, s, off, size, BT_ACC_READ);
	}
	return bt_lin_read(cpu, lin, size, BT_ACC_READ);
}

void bt_mem_write(struct bt_cpu *cpu, enum bt_sreg s, uint64_t off, unsigned size, uint64_t v)
{
	uint64_t lin;
	if (__builtin_expect(fast_lin64(cpu, s, off, size, &lin), 1) && (lin & 0xfff) + size <= 4096) {
		const struct bt_tlb_entry *t = tlb_slot(cpu, lin);
		bool user = cpu->cpl == 3;
		if (t->tag == tlb_tag(lin) && t->hva && (t->perm & BT_TLB_DIRTY) &&
		    (!user || (t->perm & BT_TLB_USER)) &&
		    ((t->perm & BT_TLB_RW) || (!user && !(cpu->cr0 & BT_CR0_WP))) &&
		    !bt_page_is_code(cpu->vm, t->gpa)) {
			store_le(t->hva + (lin & 0xfff), size, v);
			return;
		}
	} else {
		lin = bt_seg_linear(cpu, s, off, size, BT_ACC_WRITE);
	}
	bt_lin_write(cpu, lin, size, v, BT_ACC_WRITE);
}

void bt_mem_read_buf(struct bt_cpu *cpu, enum bt_sreg s, uint64_t off, void *buf, unsigned len)
{
	uint8_t *out = buf;
	if (!len)
		return;
	uint64_t lin = bt_seg_linear(cpu, s, off, len, BT_ACC_READ);
	for (unsigned i = 0; i < len; i += 8) {
		unsigned n = len - i < 8 ? len - i : 8;
		uint64_t v = bt_lin_read(cpu, lin + i, n, BT_ACC_READ);
		memcpy(out + i, &v, n);
	}
}

void bt_mem_write_buf(struct bt_cpu *cpu, enum bt_sreg s, uint64_t off, const void *buf, unsigned len)
{
	const uint8_t *in = buf;
	if (!len)
		return;
	uint64_t lin = bt_seg_linear(cpu, s, off, len, BT_ACC_WRITE);
	/* Probe all pages for write permission before the first store. */
	if (cpu->cr0 & BT_CR0_PG) {
		for (uint64_t p = lin & ~0xfffull; p < lin + len; p += 4096)
			bt_mmu_translate(cpu, p < lin ? lin : p, BT_ACC_WRITE);
	}
	for (unsigned i = 0; i < len; i += 8) {
		unsigned n = len - i < 8 ? len - i : 8;
		uint64_t v = 0;
		memcpy(&v, in + i, n);
		bt_lin_write(cpu, lin + i, n, v, BT_ACC_WRITE);
	}
}

/* ---- instruction fetch ---- */

unsigned bt_fetch(struct bt_cpu *cpu, uint64_t lin, uint8_t *buf, unsigned len)
{
	unsigned got = 0;
	if (!bt_long_mode(cpu))
		lin &= 0xffffffffull;
	while (got < len) {
		uint64_t gpa;
		if (cpu->cr0 & BT_CR0_PG) {
			if (got) {
				/* Only the first page may fault; a later one just ends the bytes. */
				struct walk w;
				page_walk(cpu, lin, BT_ACC_EXEC | BT_ACC_READ, &w);
				if (w.fault || perm_check(cpu, w.perm, BT_ACC_EXEC | BT_ACC_READ))
					break;
				gpa = w.gpa | (lin & 0xfff);
			} else {
				gpa = bt_mmu_translate(cpu, lin, BT_ACC_EXEC | BT_ACC_READ);
			}
		} else {
			gpa = lin & 0xffffffffull;
		}
		unsigned n = (unsigned)(4096 - (lin & 0xfff));
		if (n > len - got)
			n = len - got;
		uint8_t *p = lapic_hit(cpu, gpa) ? NULL : bt_phys_ptr(cpu->vm, gpa, n, false);
		if (p) {
			memcpy(buf + got, p, n);
		} else {
			for (unsigned i = 0; i < n; i++)
				buf[got + i] = (uint8_t)bt_phys_read(cpu, gpa + i, 1);
		}
		got += n;
		lin += n;
		if (!bt_long_mode(cpu))
			lin &= 0xffffffffull;
	}
	return got;
}

/* ---- TLB maintenance ---- */

void bt_tlb_flush(struct bt_cpu *cpu, bool include_global)
{
	for (unsigned i = 0; i < BT_TLB_SIZE; i++) {
		struct bt_tlb_entry *t = &cpu->tlb[i];
		if (include_global || !(t->perm & BT_TLB_GLOBAL))
			t->tag = 0;
	}
}

void bt_tlb_flush_page(struct bt_cpu *cpu, uint64_t lin)
{
	struct bt_tlb_entry *t = tlb_slot(cpu, lin);
	if (t->tag == tlb_tag(lin))
		t->tag = 0;
	/* Slices of a large page elsewhere in the TLB go too (INVLPG drops the whole page). */
	for (unsigned i = 0; i < BT_TLB_SIZE; i++) {
		struct bt_tlb_entry *e = &cpu->tlb[i];
		if ((e->tag & 1) && (e->perm & BT_TLB_LARGE) && ((e->tag ^ lin) >> 30) == 0)
			e->tag = 0;
	}
}

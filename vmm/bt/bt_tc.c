/*
 * bt_tc.c — translation units and the translation cache.
 *
 * A unit is up to BT_TU_MAX decoded instructions starting at one linear RIP,
 * ending at an unconditional transfer, at an instruction that may change the
 * mode, or at the end of the page (an instruction may straddle into the next
 * page; it is then the last one and the unit depends on both pages).
 * Conditional branches do not end a unit: a taken one leaves it early (a
 * side exit).  Common 64-bit forms are also compiled to bt_fast
 * descriptors (bt_fast.c) at translation time.  Units are keyed
 * by (guest-physical address of the first byte, mode key, linear RIP) and
 * found by a hash, or through the successor pointers of the unit that ran
 * before (validated against the same key, so a stale link costs a lookup,
 * never a wrong execution).
 *
 * A unit is never freed while a vCPU might be executing it: invalidation
 * marks it dead and unlinks it; the memory goes back only on a full flush,
 * which runs at a unit boundary (immediately with one vCPU; with several,
 * the old arena is retired until the VM is destroyed).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bt.h"
#include "bt_alu.h"

#define BT_TU_MAX       32
#define BT_HASH_BITS    16
#define BT_PAGE_BITS    12
#define BT_CHUNK_SIZE   (4u << 20)
#define BT_ARENA_MAX    (128ull << 20)
#define BT_NO_PAGE      (~0ull)
#define BT_SUCC         4
#define BT_RUN_BUDGET   256     /* units per bt_tc_run(): then timers and interrupts */

struct bt_block {
	uint64_t gpa;                /* guest-physical address of the first byte */
	uint64_t lin;                /* linear RIP (CS base + RIP) */
	uint64_t gpa2;               /* second page when the last insn straddles, else BT_NO_PAGE */
	uint64_t lin2;               /* its linear page */
	uint32_t mode;
	uint16_t ninsn;
	uint8_t bits;                /* code size: 16, 32, 64 */
	bool sys_end;                /* ends in something other than a near branch:
	                              * the mode or the mappings may have changed */
	atomic_bool dead;
	struct bt_block *hnext;      /* hash chain */
	struct bt_block *pnext[2];   /* per-page lists: [0] first page, [1] second */
	struct bt_block *succ[BT_SUCC];  /* cached successors (side exits too) */
	uint8_t succ_next;           /* round-robin replacement */
	struct bt_ent {
		const struct bt_insn *in;
		bt_handler h;
		bool side_exit;      /* a conditional branch inside the unit */
		struct bt_fast f;    /* compiled form, f.fn NULL when none */
	} ent[];
};

struct bt_chunk {
	struct bt_chunk *next;
	size_t used;
	_Alignas(16) uint8_t data[];
};

struct bt_tc {
	struct bt_vm *vm;
	pthread_mutex_t lock;
	struct bt_block *hash[1u << BT_HASH_BITS];
	struct bt_block *pages[1u << BT_HASH_BITS];
	struct bt_chunk *chunks;     /* current arena, newest first */
	struct bt_chunk *retired;    /* old arenas other vCPUs may still be reading */
	uint64_t arena_bytes;
	bool flush_req;
	atomic_uint flush_gen;       /* bumps when blocks are freed: drop prev links */
	struct bt_tc_stats st;
	ZydisDecoder dec[3];         /* 16, 32, 64 */
};

/* With one vCPU only its own thread touches the cache: no lock needed. */
static inline bool bt_tc_lock(struct bt_tc *tc)
{
	if (tc->vm->ncpus <= 1)
		return false;
	pthread_mutex_lock(&tc->lock);
	return true;
}

static inline void bt_tc_unlock(struct bt_tc *tc, bool locked)
{
	if (locked)
		pthread_mutex_unlock(&tc->lock);
}

static void bt_prof_init(void);

/* ---- arena ---- */

static void bt_chunks_free(struct bt_chunk *c)
{
	while (c) {
		struct bt_chunk *n = c->next;
		free(c);
		c = n;
	}
}

/* Called with tc->lock held.  NULL when the arena is at its cap. */
static void *bt_arena_alloc(struct bt_tc *tc, size_t size)
{
	struct bt_chunk *c = tc->chunks;

	size = (size + 15) & ~(size_t)15;
	if (size > BT_CHUNK_SIZE - sizeof(struct bt_chunk))
		return NULL;
	if (!c || c->used + size > BT_CHUNK_SIZE - sizeof(struct bt_chunk)) {
		if (tc->arena_bytes + BT_CHUNK_SIZE > BT_ARENA_MAX)
			return NULL;
		c = malloc(BT_CHUNK_SIZE);
		if (!c)
			return NULL;
		c->next = tc->chunks;
		c->used = 0;
		tc->chunks = c;
		tc->arena_bytes += BT_CHUNK_SIZE;
	}
	void *p = c->data + c->used;
	c->used += size;
	return p;
}

/* ---- hashing ---- */

static inline unsigned bt_hash_key(uint64_t gpa, uint64_t lin, uint32_t mode)
{
	uint64_t h = gpa * 0x9e3779b97f4a7c15ull ^ lin * 0xc2b2ae3d27d4eb4full ^ mode;
	return (unsigned)(h >> (64 - BT_HASH_BITS));
}

static inline unsigned bt_hash_page(uint64_t gpa_page)
{
	return (unsigned)(((gpa_page >> BT_PAGE_BITS) * 0x9e3779b97f4a7c15ull) >> (64 - BT_HASH_BITS));
}

struct bt_tc *bt_tc_new(struct bt_vm *vm)
{
	struct bt_tc *tc = calloc(1, sizeof(*tc));
	if (!tc)
		return NULL;
	tc->vm = vm;
	pthread_mutex_init(&tc->lock, NULL);
	bt_prof_init();
	ZydisDecoderInit(&tc->dec[0], ZYDIS_MACHINE_MODE_LEGACY_16, ZYDIS_STACK_WIDTH_16);
	ZydisDecoderInit(&tc->dec[1], ZYDIS_MACHINE_MODE_LEGACY_32, ZYDIS_STACK_WIDTH_32);
	ZydisDecoderInit(&tc->dec[2], ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
	for (int i = 0; i < 3; i++) {
		/* CPUID advertises neither BMI1 nor LZCNT: F3 0F BC/BD are REP BSF/BSR. */
		ZydisDecoderEnableMode(&tc->dec[i], ZYDIS_DECODER_MODE_TZCNT, ZYAN_FALSE);
		ZydisDecoderEnableMode(&tc->dec[i], ZYDIS_DECODER_MODE_LZCNT, ZYAN_FALSE);
		/* No MPX: 0F 1A/1B are hint NOPs and F2 before a branch is ignored. */
		ZydisDecoderEnableMode(&tc->dec[i], ZYDIS_DECODER_MODE_MPX, ZYAN_FALSE);
	}
	return tc;
}

void bt_tc_free(struct bt_tc *tc)
{
	if (!tc)
		return;
	bt_chunks_free(tc->chunks);
	bt_chunks_free(tc->retired);
	pthread_mutex_destroy(&tc->lock);
	free(tc);
}

const struct bt_tc_stats *bt_tc_stats(const struct bt_tc *tc)
{
	return &tc->st;
}

/* ---- invalidation ---- */

static void bt_kill_all_locked(struct bt_tc *tc)
{
	for (unsigned i = 0; i < (1u << BT_HASH_BITS); i++) {
		for (struct bt_block *b = tc->hash[i]; b; b = b->hnext)
			atomic_store_explicit(&b->dead, true, memory_order_relaxed);
		tc->hash[i] = NULL;
		tc->pages[i] = NULL;
	}
}

void bt_tc_flush(struct bt_vm *vm)
{
	struct bt_tc *tc = vm->tc;
	if (!tc)
		return;
	bool locked = bt_tc_lock(tc);
	bt_kill_all_locked(tc);
	tc->flush_req = true;
	memset(vm->code_bitmap, 0, (vm->code_bitmap_pages + 7) / 8);
	bt_dirty_unwatched(vm);
	bt_tc_unlock(tc, locked);
}

/* At a unit boundary of the calling vCPU, with tc->lock held. */
static void bt_flush_now_locked(struct bt_tc *tc)
{
	if (tc->vm->ncpus <= 1) {
		bt_chunks_free(tc->chunks);
	} else {
		struct bt_chunk *c = tc->chunks;
		while (c && c->next)
			c = c->next;
		if (c) {
			c->next = tc->retired;
			tc->retired = tc->chunks;
		}
	}
	tc->chunks = NULL;
	tc->arena_bytes = 0;
	tc->flush_req = false;
	tc->st.flushes++;
	atomic_fetch_add(&tc->flush_gen, 1);
}

static void bt_unlink_locked(struct bt_tc *tc, struct bt_block *b)
{
	struct bt_block **pp = &tc->hash[bt_hash_key(b->gpa, b->lin, b->mode)];
	for (; *pp; pp = &(*pp)->hnext) {
		if (*pp == b) {
			*pp = b->hnext;
			break;
		}
	}
}

void bt_tc_invalidate_page(struct bt_vm *vm, uint64_t gpa_page)
{
	struct bt_tc *tc = vm->tc;
	uint64_t page = gpa_page & ~0xfffull;
	uint64_t pfn = page >> BT_PAGE_BITS;

	bt_dirty_note(vm, page);
	if (!tc)
		return;
	bool locked = bt_tc_lock(tc);
	struct bt_block **pp = &tc->pages[bt_hash_page(page)];
	while (*pp) {
		struct bt_block *b = *pp;
		unsigned w = (b->gpa & ~0xfffull) == page ? 0 : 1;
		bool match = w == 0 || b->gpa2 == page;
		if (match) {
			atomic_store_explicit(&b->dead, true, memory_order_relaxed);
			*pp = b->pnext[w];
			bt_unlink_locked(tc, b);
			/* A straddling block sits on two page lists; the other stays
			 * linked but dead, and is dropped when its page is invalidated
			 * or flushed. */
			tc->st.invalidated++;
		} else {
			pp = &b->pnext[w];
		}
	}
	if (pfn < vm->code_bitmap_pages)
		vm->code_bitmap[pfn >> 3] &= (uint8_t)~(1u << (pfn & 7));
	bt_tc_unlock(tc, locked);
}

/* With tc->lock held: mark a page as holding code, and make sure no TLB
 * entry lets a write to it take the fast path. */
static void bt_mark_code_locked(struct bt_vm *vm, uint64_t gpa)
{
	uint64_t pfn = gpa >> BT_PAGE_BITS;
	uint64_t page = gpa & ~0xfffull;

	if (pfn >= vm->code_bitmap_pages)
		return;
	if ((vm->code_bitmap[pfn >> 3] >> (pfn & 7)) & 1u)
		return;
	vm->code_bitmap[pfn >> 3] |= (uint8_t)(1u << (pfn & 7));
	for (unsigned c = 0; c < vm->ncpus; c++) {
		struct bt_cpu *cpu = vm->cpus[c];
		if (!cpu)
			continue;
		for (unsigned i = 0; i < BT_TLB_SIZE; i++) {
			struct bt_tlb_entry *e = &cpu->tlb[i];
			if (e->tag && (e->gpa & ~0xfffull) == page)
				e->perm |= BT_TLB_CODE;
		}
	}
}

/* ---- translation ---- */

/* Instructions after which the unit must end: control flow, and anything
 * that may change the mode, the interrupt state or the code itself. */
static bool bt_ends_unit(const ZydisDecodedInstruction *zi)
{
	switch (zi->meta.category) {
	case ZYDIS_CATEGORY_COND_BR:
		/* A unit runs on through the not-taken path; the run loop
		 * leaves it when the branch is taken (a side exit). */
		return false;
	case ZYDIS_CATEGORY_UNCOND_BR:
	case ZYDIS_CATEGORY_CALL:
	case ZYDIS_CATEGORY_RET:
	case ZYDIS_CATEGORY_INTERRUPT:
	case ZYDIS_CATEGORY_SYSCALL:
	case ZYDIS_CATEGORY_SYSRET:
	case ZYDIS_CATEGORY_SYSTEM:
	case ZYDIS_CATEGORY_SEGOP:
		return true;
	default:
		break;
	}
	switch (zi->mnemonic) {
	case ZYDIS_MNEMONIC_POPF: case ZYDIS_MNEMONIC_POPFD: case ZYDIS_MNEMONIC_POPFQ:
	case ZYDIS_MNEMONIC_STI: case ZYDIS_MNEMONIC_CLI:
	case ZYDIS_MNEMONIC_HLT: case ZYDIS_MNEMONIC_WRMSR: case ZYDIS_MNEMONIC_RDMSR:
	case ZYDIS_MNEMONIC_LGDT: case ZYDIS_MNEMONIC_LIDT: case ZYDIS_MNEMONIC_LLDT:
	case ZYDIS_MNEMONIC_LTR: case ZYDIS_MNEMONIC_LMSW: case ZYDIS_MNEMONIC_CLTS:
	case ZYDIS_MNEMONIC_INVLPG: case ZYDIS_MNEMONIC_IRET: case ZYDIS_MNEMONIC_IRETD:
	case ZYDIS_MNEMONIC_IRETQ: case ZYDIS_MNEMONIC_SWAPGS: case ZYDIS_MNEMONIC_CPUID:
	case ZYDIS_MNEMONIC_UD0: case ZYDIS_MNEMONIC_UD1: case ZYDIS_MNEMONIC_UD2:
	case ZYDIS_MNEMONIC_INT: case ZYDIS_MNEMONIC_INT1: case ZYDIS_MNEMONIC_INT3:
	case ZYDIS_MNEMONIC_INTO: case ZYDIS_MNEMONIC_XRSTOR: case ZYDIS_MNEMONIC_FXRSTOR:
	case ZYDIS_MNEMONIC_WBINVD: case ZYDIS_MNEMONIC_INVD: case ZYDIS_MNEMONIC_RSM:
	case ZYDIS_MNEMONIC_PAUSE: case ZYDIS_MNEMONIC_MWAIT: case ZYDIS_MNEMONIC_MONITOR:
	case ZYDIS_MNEMONIC_IN: case ZYDIS_MNEMONIC_OUT: case ZYDIS_MNEMONIC_INSB:
	case ZYDIS_MNEMONIC_INSW: case ZYDIS_MNEMONIC_INSD: case ZYDIS_MNEMONIC_OUTSB:
	case ZYDIS_MNEMONIC_OUTSW: case ZYDIS_MNEMONIC_OUTSD:
	case ZYDIS_MNEMONIC_ENTER: case ZYDIS_MNEMONIC_LEAVE:
		return true;
	default:
		break;
	}
	return false;
}

/* Operands that make a plain-looking instruction mode-changing. */
static bool bt_ops_end_unit(const struct bt_insn *in)
{
	for (unsigned i = 0; i < in->zi.operand_count_visible; i++) {
		const ZydisDecodedOperand *op = &in->ops[i];
		if (op->type == ZYDIS_OPERAND_TYPE_POINTER)
			return true;
		if (op->type == ZYDIS_OPERAND_TYPE_REGISTER && (op->actions & ZYDIS_OPERAND_ACTION_MASK_WRITE)) {
			ZydisRegister r = op->reg.value;
			if ((r >= ZYDIS_REGISTER_ES && r <= ZYDIS_REGISTER_GS) ||
			    (r >= ZYDIS_REGISTER_CR0 && r <= ZYDIS_REGISTER_CR15) ||
			    (r >= ZYDIS_REGISTER_DR0 && r <= ZYDIS_REGISTER_DR15))
				return true;
		}
	}
	return false;
}

static uint64_t bt_cs_linear(const struct bt_cpu *cpu, unsigned bits)
{
	if (bits == 64)
		return cpu->rip;
	return (uint32_t)(cpu->seg[BT_CS].base + cpu->rip);
}

static unsigned bt_dec_index(unsigned bits)
{
	return bits == 64 ? 2 : bits == 32 ? 1 : 0;
}

/* Decode a unit at the current RIP (outside the lock: fetch may fault). */
static unsigned bt_decode_unit(struct bt_cpu *cpu, struct bt_tc *tc, unsigned bits, uint64_t lin,
                               struct bt_insn *out, uint64_t *gpa2, uint64_t *lin2)
{
	static _Thread_local uint8_t buf[4096 + BT_MAX_INSN_LEN];
	unsigned off = (unsigned)(lin & 0xfff);
	unsigned want = 4096 - off + BT_MAX_INSN_LEN - 1;
	unsigned avail = bt_fetch(cpu, lin, buf, want);
	unsigned pos = 0, n = 0;
	const ZydisDecoder *dec = &tc->dec[bt_dec_index(bits)];

	*gpa2 = BT_NO_PAGE;
	*lin2 = 0;
	while (n < BT_TU_MAX && pos < 4096 - off && pos < avail) {
		struct bt_insn *in = &out[n];
		ZyanStatus s = ZydisDecoderDecodeFull(dec, buf + pos, avail - pos, &in->zi, in->ops);
		if (!ZYAN_SUCCESS(s)) {
			if (n > 0)
				break;
			if (s == ZYDIS_STATUS_NO_MORE_DATA && avail < want) {
				/* The instruction runs into a page that cannot be fetched. */
				cpu->insn_start_rip = cpu->rip;
				bt_mmu_translate(cpu, (lin + avail) & (bits == 64 ? ~0ull : 0xffffffffull), BT_ACC_EXEC);
			}
			cpu->insn_start_rip = cpu->rip;
			bt_raise_ud(cpu);
		}
		n++;
		unsigned end = pos + in->zi.length;
		if (end > 4096 - off) {
			*lin2 = (lin + 4096 - off) & (bits == 64 ? ~0ull : 0xffffffffull);
			cpu->insn_start_rip = cpu->rip;
			*gpa2 = bt_mmu_translate(cpu, *lin2, BT_ACC_EXEC) & ~0xfffull;
			break;
		}
		pos = end;
		if (bt_ends_unit(&in->zi) || bt_ops_end_unit(in))
			break;
	}
	return n;
}

static struct bt_block *bt_find_locked(struct bt_tc *tc, uint64_t gpa, uint64_t lin, uint32_t mode)
{
	for (struct bt_block *b = tc->hash[bt_hash_key(gpa, lin, mode)]; b; b = b->hnext)
		if (b->gpa == gpa && b->lin == lin && b->mode == mode)
			return b;
	return NULL;
}

static struct bt_block *bt_install_locked(struct bt_tc *tc, uint64_t gpa, uint64_t lin, uint32_t mode, unsigned bits,
                                          const struct bt_insn *insns, unsigned n,
                                          uint64_t gpa2, uint64_t lin2)
{
	size_t need = sizeof(struct bt_block) + n * sizeof(struct bt_ent);
	size_t opsz[BT_TU_MAX];

	for (unsigned i = 0; i < n; i++) {
		opsz[i] = offsetof(struct bt_insn, ops) + insns[i].zi.operand_count * sizeof(ZydisDecodedOperand);
		need += (opsz[i] + 15) & ~(size_t)15;
	}
	struct bt_block *b = bt_arena_alloc(tc, need);
	if (!b)
		return NULL;
	memset(b, 0, sizeof(*b));
	b->gpa = gpa;
	b->lin = lin;
	b->mode = mode;
	b->gpa2 = gpa2;
	b->lin2 = lin2;
	b->ninsn = (uint16_t)n;
	b->bits = (uint8_t)bits;
	uint8_t *p = (uint8_t *)b + ((sizeof(struct bt_block) + n * sizeof(struct bt_ent) + 15) & ~(size_t)15);
	for (unsigned i = 0; i < n; i++) {
		memcpy(p, &insns[i], opsz[i]);
		b->ent[i].in = (const struct bt_insn *)p;
		b->ent[i].h = bt_exec_lookup(&insns[i]);
		b->ent[i].side_exit = i + 1 < n && insns[i].zi.meta.category == ZYDIS_CATEGORY_COND_BR;
		bt_fast_compile(&insns[i], &b->ent[i].f);
		p += (opsz[i] + 15) & ~(size_t)15;
	}
	if (n) {
		const ZydisDecodedInstruction *zl = &insns[n - 1].zi;
		bool near = (zl->meta.category == ZYDIS_CATEGORY_COND_BR ||
		             zl->meta.category == ZYDIS_CATEGORY_UNCOND_BR ||
		             zl->meta.category == ZYDIS_CATEGORY_CALL || zl->meta.category == ZYDIS_CATEGORY_RET) &&
		            (zl->meta.branch_type == ZYDIS_BRANCH_TYPE_SHORT ||
		             zl->meta.branch_type == ZYDIS_BRANCH_TYPE_NEAR);   /* not IRET, not far */
		b->sys_end = !near && (bt_ends_unit(zl) || bt_ops_end_unit(&insns[n - 1]));
	}
	unsigned h = bt_hash_key(gpa, lin, mode);
	b->hnext = tc->hash[h];
	tc->hash[h] = b;
	unsigned hp = bt_hash_page(gpa & ~0xfffull);
	b->pnext[0] = tc->pages[hp];
	tc->pages[hp] = b;
	bt_mark_code_locked(tc->vm, gpa);
	if (gpa2 != BT_NO_PAGE) {
		hp = bt_hash_page(gpa2);
		b->pnext[1] = tc->pages[hp];
		tc->pages[hp] = b;
		bt_mark_code_locked(tc->vm, gpa2);
	}
	tc->st.blocks++;
	tc->st.insns += n;
	return b;
}

/* The unit at the current RIP: through prev's links, the hash, or a new
 * translation.  May raise (#PF on fetch, #UD on an undecodable first insn). */
static struct bt_block *bt_tc_lookup(struct bt_cpu *cpu, struct bt_block *prev, unsigned bits, uint32_t mode)
{
	struct bt_tc *tc = cpu->vm->tc;
	uint64_t lin = bt_cs_linear(cpu, bits);
	uint64_t gpa;
	struct bt_block *b;
	unsigned gen0 = atomic_load(&tc->flush_gen);

	cpu->insn_start_rip = cpu->rip;
	/* A successor on the page prev came from needs no new translation:
	 * nothing that changes mappings ran (the caller passes no prev after
	 * a mode-changing instruction), and a
	 * CPU may keep using a cached translation until INVLPG/CR3. */
	if (prev && ((lin ^ prev->lin) >> 12) == 0) {
		for (unsigned i = 0; i < BT_SUCC; i++) {
			b = prev->succ[i];
			if (b && b->lin == lin && b->mode == mode && ((b->gpa ^ prev->gpa) >> 12) == 0 &&
			    !atomic_load_explicit(&b->dead, memory_order_relaxed) && b->gpa2 == BT_NO_PAGE)
				return b;
		}
	}
	gpa = bt_mmu_translate(cpu, lin, BT_ACC_EXEC);

	if (prev) {
		for (unsigned i = 0; i < BT_SUCC; i++) {
			b = prev->succ[i];
			if (b && b->lin == lin && b->gpa == gpa && b->mode == mode &&
			    !atomic_load_explicit(&b->dead, memory_order_relaxed) && b->gpa2 == BT_NO_PAGE)
				return b;
		}
	}

	bool locked = bt_tc_lock(tc);
	if (tc->flush_req)
		bt_flush_now_locked(tc);
	b = bt_find_locked(tc, gpa, lin, mode);
	bt_tc_unlock(tc, locked);

	if (b && b->gpa2 != BT_NO_PAGE) {
		/* The straddling tail may now map elsewhere. */
		if ((bt_mmu_translate(cpu, b->lin2, BT_ACC_EXEC) & ~0xfffull) != b->gpa2) {
			locked = bt_tc_lock(tc);
			atomic_store_explicit(&b->dead, true, memory_order_relaxed);
			bt_unlink_locked(tc, b);
			bt_tc_unlock(tc, locked);
			b = NULL;
		}
	}
	if (!b) {
		static _Thread_local struct bt_insn insns[BT_TU_MAX];
		uint64_t gpa2, lin2;
		unsigned n = bt_decode_unit(cpu, tc, bits, lin, insns, &gpa2, &lin2);

		locked = bt_tc_lock(tc);
		if (tc->flush_req)
			bt_flush_now_locked(tc);
		b = bt_find_locked(tc, gpa, lin, mode);
		if (!b) {
			b = bt_install_locked(tc, gpa, lin, mode, bits, insns, n, gpa2, lin2);
			if (!b) {
				bt_kill_all_locked(tc);
				memset(tc->vm->code_bitmap, 0, (tc->vm->code_bitmap_pages + 7) / 8);
				bt_dirty_unwatched(tc->vm);
				bt_flush_now_locked(tc);
				prev = NULL;
				b = bt_install_locked(tc, gpa, lin, mode, bits, insns, n, gpa2, lin2);
			}
		}
		bt_tc_unlock(tc, locked);
		if (!b) {
			snprintf(cpu->exit->msg, sizeof(cpu->exit->msg), "bt: translation cache allocation failed");
			cpu->exit->reason = VMM_EXIT_INTERNAL;
			cpu->exit_requested = true;
			return NULL;
		}
	}
	/* prev's memory is gone if this call flushed (one vCPU frees at once). */
	if (prev && atomic_load(&tc->flush_gen) == gen0) {
		prev->succ[prev->succ_next] = b;
		prev->succ_next = (uint8_t)((prev->succ_next + 1) % BT_SUCC);
	}
	return b;
}

/* ---- the execution trace ---- */

static void bt_trace_unit(struct bt_cpu *cpu, const struct bt_block *b)
{
	FILE *f = cpu->vm->trace;
	const uint64_t *g = cpu->gpr;

	fprintf(f, "Trace %u: [%08x/%016llx/%04x] CPL=%u\n", cpu->id, (unsigned)b->gpa,
	        (unsigned long long)b->lin, b->mode, cpu->cpl);
	fprintf(f, "RAX=%016llx RBX=%016llx RCX=%016llx RDX=%016llx\n",
	        (unsigned long long)g[BT_RAX], (unsigned long long)g[BT_RBX],
	        (unsigned long long)g[BT_RCX], (unsigned long long)g[BT_RDX]);
	fprintf(f, "RSI=%016llx RDI=%016llx RBP=%016llx RSP=%016llx\n",
	        (unsigned long long)g[BT_RSI], (unsigned long long)g[BT_RDI],
	        (unsigned long long)g[BT_RBP], (unsigned long long)g[BT_RSP]);
	fprintf(f, "R8 =%016llx R9 =%016llx R10=%016llx R11=%016llx\n",
	        (unsigned long long)g[8], (unsigned long long)g[9],
	        (unsigned long long)g[10], (unsigned long long)g[11]);
	fprintf(f, "R12=%016llx R13=%016llx R14=%016llx R15=%016llx\n",
	        (unsigned long long)g[12], (unsigned long long)g[13],
	        (unsigned long long)g[14], (unsigned long long)g[15]);
	fprintf(f, "RIP=%016llx RFL=%08llx CR0=%08llx CR3=%016llx CR4=%08llx\n",
	        (unsigned long long)cpu->rip, (unsigned long long)bt_get_rflags(cpu),
	        (unsigned long long)cpu->cr0, (unsigned long long)cpu->cr3,
	        (unsigned long long)cpu->cr4);
}

/* ---- the run loop ---- */

/* ---- the sampling profile (VIREO_BT_PROFILE=file) ---- */

#define BT_PROF_SLOTS (1u << 16)

struct bt_prof_slot {
	uint64_t rip, count;
	char *text;                  /* the unit's instructions, formatted once */
};

static struct bt_prof_slot *bt_prof;
static const char *bt_prof_path;
static uint64_t bt_prof_n;
static void bt_prof_dump(void);

static char *bt_prof_format(const struct bt_block *b)
{
	ZydisFormatter f;
	char *out = malloc(1024);
	size_t len = 0;

	if (!out)
		return NULL;
	out[0] = 0;
	ZydisFormatterInit(&f, ZYDIS_FORMATTER_STYLE_INTEL);
	for (unsigned i = 0; i < b->ninsn && len < 900; i++) {
		char buf[96];
		const struct bt_insn *in = b->ent[i].in;
		if (!ZYAN_SUCCESS(ZydisFormatterFormatInstruction(&f, &in->zi, in->ops, in->zi.operand_count_visible,
		                                                  buf, sizeof(buf), ZYDIS_RUNTIME_ADDRESS_NONE, NULL)))
			snprintf(buf, sizeof(buf), "?");
		len += (size_t)snprintf(out + len, 1024 - len, "%s%s", i ? " ; " : "", buf);
	}
	return out;
}

/* One sample every 64 units executed. */
static void bt_prof_unit(const struct bt_block *b)
{
	uint64_t rip = b->lin;
	if ((++bt_prof_n & 63) != 0)
		return;
	/* Rewritten now and then: a VM killed by a signal still leaves one. */
	if ((bt_prof_n & ((1u << 24) - 1)) == 0)
		bt_prof_dump();
	unsigned h = (unsigned)((rip * 0x9e3779b97f4a7c15ull) >> 48);
	for (unsigned i = 0; i < 64; i++) {
		struct bt_prof_slot *e = &bt_prof[(h + i) & (BT_PROF_SLOTS - 1)];
		if (e->rip == rip || e->count == 0) {
			if (e->count == 0)
				e->text = bt_prof_format(b);
			e->rip = rip;
			e->count++;
			return;
		}
	}
}

static int bt_prof_cmp(const void *a, const void *b)
{
	const struct bt_prof_slot *x = a, *y = b;
	return x->count < y->count ? 1 : x->count > y->count ? -1 : 0;
}

static void bt_prof_dump(void)
{
	if (!bt_prof || !bt_prof_path)
		return;
	struct bt_prof_slot *copy = malloc(BT_PROF_SLOTS * sizeof(*copy));
	FILE *f = fopen(bt_prof_path, "w");
	if (!f || !copy) {
		if (f)
			fclose(f);
		free(copy);
		return;
	}
	memcpy(copy, bt_prof, BT_PROF_SLOTS * sizeof(*copy));
	qsort(copy, BT_PROF_SLOTS, sizeof(*copy), bt_prof_cmp);
	for (unsigned i = 0; i < BT_PROF_SLOTS && copy[i].count; i++)
		fprintf(f, "%016llx %llu %s\n", (unsigned long long)copy[i].rip, (unsigned long long)copy[i].count,
		        copy[i].text ? copy[i].text : "");
	fclose(f);
	free(copy);
}

static void bt_prof_init(void)
{
	bt_prof_path = getenv("VIREO_BT_PROFILE");
	if (!bt_prof_path || bt_prof)
		return;
	bt_prof = calloc(BT_PROF_SLOTS, sizeof(*bt_prof));
	if (bt_prof)
		atexit(bt_prof_dump);
}

/* The unit loop; bt_tc_run() arms the fault landing pad around it. */
static __attribute__((noinline)) void bt_tc_loop(struct bt_cpu *cpu)
{
	struct bt_block *prev = NULL;
	bool prev_sys = true;        /* the last unit ran into a mode-changing insn */
	unsigned bits = 0;
	uint32_t mode = 0;

	for (unsigned budget = BT_RUN_BUDGET; budget > 0; budget--) {
		if (atomic_load_explicit(&cpu->kick, memory_order_relaxed))
			return;
		if (prev_sys) {
			bits = bt_code_bits(cpu);
			mode = bt_mode_key(cpu);
		}
		struct bt_block *b = bt_tc_lookup(cpu, prev_sys ? NULL : prev, bits, mode);
		if (!b)
			return;
		if (__builtin_expect(cpu->vm->trace != NULL, 0))
			bt_trace_unit(cpu, b);
		if (__builtin_expect(bt_prof != NULL, 0))
			bt_prof_unit(b);

		uint64_t ripmask = b->bits == 64 ? ~0ull : b->bits == 32 ? 0xffffffffull : 0xffffull;
		unsigned n = b->ninsn;
		prev_sys = b->sys_end;
		for (unsigned i = 0; i < n; i++) {
			const struct bt_insn *in = b->ent[i].in;
			bool shadow = cpu->irq_shadow;
			cpu->insn_start_rip = cpu->rip;
			cpu->insn_len = in->zi.length;
			uint64_t next = (cpu->rip + in->zi.length) & ripmask;
			cpu->rip = next;
			if (b->ent[i].f.fn)
				b->ent[i].f.fn(cpu, &b->ent[i].f);
			else
				b->ent[i].h(cpu, in);
			if (__builtin_expect(shadow | cpu->end_block | cpu->halted | cpu->exit_requested |
			                     atomic_load_explicit(&b->dead, memory_order_relaxed), 0)) {
				cpu->icount += i + 1;
				if (shadow)
					cpu->irq_shadow = false;
				cpu->end_block = false;
				return;
			}
			if (b->ent[i].side_exit && cpu->rip != next) {
				n = i + 1;      /* taken: leave through this exit */
				prev_sys = false;
				break;
			}
		}
		cpu->icount += n;
		prev = b;
	}
}

void bt_tc_run(struct bt_cpu *cpu)
{
	if (setjmp(cpu->fault_jmp)) {
		/* bt_raise() delivered the event; RIP is at the handler.  Back to
		 * the engine loop: exits, HLT, interrupts, timers. */
		cpu->end_block = false;
		cpu->irq_shadow = false;
		return;
	}
	bt_tc_loop(cpu);
}

/*
 * bt_string.c — MOVS, STOS, LODS, CMPS, SCAS with REP/REPE/REPNE.
 *
 * A REP instruction runs at most BT_REP_CHUNK iterations per execution; if
 * the count is not exhausted RIP goes back to the instruction and the unit
 * ends, so interrupts and kicks are taken between chunks.  Registers are
 * updated every iteration, so a fault in the middle restarts correctly.
 */
#include <string.h>

#include "bt.h"
#include "bt_alu.h"

#define BT_REP_CHUNK 4096

struct bt_str {
	unsigned size;          /* element size */
	uint64_t am;            /* address mask */
	ZydisRegister si, di, cx;
	enum bt_sreg src_seg;
	int64_t step;
	bool rep, repe, repne;
};

static void bt_str_setup(struct bt_cpu *cpu, const struct bt_insn *in, struct bt_str *s)
{
	unsigned aw = in->zi.address_width;
	s->size = bt_osz(in);
	s->am = aw == 64 ? ~0ull : aw == 32 ? 0xffffffffull : 0xffffull;
	s->si = aw == 64 ? ZYDIS_REGISTER_RSI : aw == 32 ? ZYDIS_REGISTER_ESI : ZYDIS_REGISTER_SI;
	s->di = aw == 64 ? ZYDIS_REGISTER_RDI : aw == 32 ? ZYDIS_REGISTER_EDI : ZYDIS_REGISTER_DI;
	s->cx = aw == 64 ? ZYDIS_REGISTER_RCX : aw == 32 ? ZYDIS_REGISTER_ECX : ZYDIS_REGISTER_CX;
	s->src_seg = BT_DS;
	for (unsigned i = 0; i < in->zi.operand_count; i++) {
		const ZydisDecodedOperand *op = &in->ops[i];
		if (op->type == ZYDIS_OPERAND_TYPE_MEMORY &&
		    (op->mem.base == ZYDIS_REGISTER_RSI || op->mem.base == ZYDIS_REGISTER_ESI ||
		     op->mem.base == ZYDIS_REGISTER_SI))
			s->src_seg = bt_op_seg(in, i);
	}
	s->step = (cpu->rflags & BT_DF) ? -(int64_t)s->size : (int64_t)s->size;
	s->rep = (in->zi.attributes & (ZYDIS_ATTRIB_HAS_REP | ZYDIS_ATTRIB_HAS_REPE | ZYDIS_ATTRIB_HAS_REPNE)) != 0;
	s->repe = (in->zi.attributes & ZYDIS_ATTRIB_HAS_REPE) != 0;
	s->repne = (in->zi.attributes & ZYDIS_ATTRIB_HAS_REPNE) != 0;
}

static inline uint64_t bt_str_reg(struct bt_cpu *cpu, ZydisRegister r)
{
	return bt_gpr_read(cpu, r);
}

static inline void bt_str_adv(struct bt_cpu *cpu, ZydisRegister r, int64_t step)
{
	bt_gpr_write(cpu, r, bt_gpr_read(cpu, r) + (uint64_t)step);
}

/* Chunk bookkeeping at the end of one execution of a REP instruction. */
static void bt_rep_yield(struct bt_cpu *cpu, const struct bt_str *s)
{
	if (bt_str_reg(cpu, s->cx) != 0) {
		cpu->rip = cpu->insn_start_rip;
		cpu->end_block = true;
	}
}

/* Elements of size sz from off up to the end of its page. */
static uint64_t bt_page_room(uint64_t off, unsigned sz)
{
	return (4096 - (off & 0xfff)) / sz;
}

/*
 * Host pointer for a string operand: 64-bit mode through bt_mem_ptr; outside
 * it only a flat segment (base 0, 4 GiB limit, expand-up, writable data for a
 * write, readable for a read), where the offset is the linear address and no
 * limit can be crossed: firmware, boot code and 32-bit systems.
 */
static uint8_t *bt_str_ptr(struct bt_cpu *cpu, enum bt_sreg sr, uint64_t off, unsigned len, bool write)
{
	if ((cpu->seg[BT_CS].attr & BT_SEG_L) && (cpu->efer & BT_EFER_LMA))
		return bt_mem_ptr(cpu, sr, off, len, write);
	const struct bt_seg *g = &cpu->seg[sr];
	uint32_t a = g->attr;
	bool code = a & 0x8, ok;
	if (g->base || g->limit != 0xffffffffu || (a & BT_SEG_UNUSABLE) ||
	    (a & (BT_SEG_P | BT_SEG_S)) != (BT_SEG_P | BT_SEG_S) || off > 0xffffffffull ||
	    !(cpu->cr0 & 1) || (cpu->rflags & BT_VM))
		return NULL;
	if (write)
		ok = !code && (a & 0x2) && !(a & 0x4);   /* writable expand-up data */
	else
		ok = code ? (a & 0x2) != 0 : !(a & 0x4); /* readable code, expand-up data */
	if (!ok)
		return NULL;
	if (!(cpu->cr0 & BT_CR0_PG))
		return bt_phys_ptr_fast(cpu, off, len, write);
	return bt_tlb_ptr_inl(cpu, off, len, write);
}

/*
 * Bulk REP MOVS/STOS for the common case (64-bit addressing, or 32-bit over
 * flat segments; DF = 0): whole runs inside one page go through host
 * pointers.  Returns the elements done; 0 means "take one element the slow
 * way" (that also fills the TLB).
 */
static uint64_t bt_rep_bulk(struct bt_cpu *cpu, const struct bt_str *s, bool movs, uint64_t max)
{
	uint64_t di = bt_str_reg(cpu, s->di) & s->am, si = bt_str_reg(cpu, s->si) & s->am;
	uint64_t n = bt_page_room(di, s->size);
	if (movs && bt_page_room(si, s->size) < n)
		n = bt_page_room(si, s->size);
	if (n > max)
		n = max;
	if (n == 0)
		return 0;
	unsigned len = (unsigned)(n * s->size);
	uint8_t *pd = bt_str_ptr(cpu, BT_ES, di, len, true);
	if (!pd)
		return 0;
	if (movs) {
		uint8_t *ps = bt_str_ptr(cpu, s->src_seg, si, len, false);
		if (!ps)
			return 0;
		if (pd > ps && pd < ps + len) {
			/* overlapping forward copy: element by element, as the CPU does */
			for (unsigned i = 0; i < len; i += s->size)
				memmove(pd + i, ps + i, s->size);
		} else {
			memmove(pd, ps, len);
		}
		bt_gpr_write(cpu, s->si, (si + len) & s->am);
	} else {
		uint64_t v = cpu->gpr[BT_RAX];
		if (s->size == 1) {
			memset(pd, (uint8_t)v, len);
		} else {
			for (unsigned i = 0; i < len; i += s->size)
				memcpy(pd + i, &v, s->size);
		}
	}
	bt_gpr_write(cpu, s->di, (di + len) & s->am);
	bt_gpr_write(cpu, s->cx, (bt_str_reg(cpu, s->cx) - n) & s->am);
	return n;
}

static bool bt_bulk_ok(const struct bt_insn *in, const struct bt_str *s)
{
	return s->rep && s->step > 0 &&
	       (in->zi.address_width == 64 || in->zi.address_width == 32);
}

static void h_movs(struct bt_cpu *cpu, const struct bt_insn *in)
{
	struct bt_str s;
	bt_str_setup(cpu, in, &s);
	unsigned n = s.rep ? BT_REP_CHUNK : 1;
	bool bulk = bt_bulk_ok(in, &s);
	for (unsigned i = 0; i < n; i++) {
		if (s.rep && bt_str_reg(cpu, s.cx) == 0)
			return;
		if (bulk) {
			uint64_t k = bt_rep_bulk(cpu, &s, true, bt_str_reg(cpu, s.cx) & s.am);
			if (k) {
				i += (unsigned)(k > n ? n : k) - 1;
				continue;
			}
		}
		uint64_t v = bt_mem_read(cpu, s.src_seg, bt_str_reg(cpu, s.si) & s.am, s.size);
		bt_mem_write(cpu, BT_ES, bt_str_reg(cpu, s.di) & s.am, s.size, v);
		bt_str_adv(cpu, s.si, s.step);
		bt_str_adv(cpu, s.di, s.step);
		if (s.rep)
			bt_str_adv(cpu, s.cx, -1);
	}
	if (s.rep)
		bt_rep_yield(cpu, &s);
}

static void h_stos(struct bt_cpu *cpu, const struct bt_insn *in)
{
	struct bt_str s;
	bt_str_setup(cpu, in, &s);
	uint64_t v = cpu->gpr[BT_RAX] & bt_mask(s.size);
	unsigned n = s.rep ? BT_REP_CHUNK : 1;
	bool bulk = bt_bulk_ok(in, &s);
	for (unsigned i = 0; i < n; i++) {
		if (s.rep && bt_str_reg(cpu, s.cx) == 0)
			return;
		if (bulk) {
			uint64_t k = bt_rep_bulk(cpu, &s, false, bt_str_reg(cpu, s.cx) & s.am);
			if (k) {
				i += (unsigned)(k > n ? n : k) - 1;
				continue;
			}
		}
		bt_mem_write(cpu, BT_ES, bt_str_reg(cpu, s.di) & s.am, s.size, v);
		bt_str_adv(cpu, s.di, s.step);
		if (s.rep)
			bt_str_adv(cpu, s.cx, -1);
	}
	if (s.rep)
		bt_rep_yield(cpu, &s);
}

static ZydisRegister bt_acc(unsigned size)
{
	return size == 1 ? ZYDIS_REGISTER_AL : size == 2 ? ZYDIS_REGISTER_AX :
	       size == 4 ? ZYDIS_REGISTER_EAX : ZYDIS_REGISTER_RAX;
}

static void h_lods(struct bt_cpu *cpu, const struct bt_insn *in)
{
	struct bt_str s;
	bt_str_setup(cpu, in, &s);
	unsigned n = s.rep ? BT_REP_CHUNK : 1;
	for (unsigned i = 0; i < n; i++) {
		if (s.rep && bt_str_reg(cpu, s.cx) == 0)
			return;
		uint64_t v = bt_mem_read(cpu, s.src_seg, bt_str_reg(cpu, s.si) & s.am, s.size);
		bt_gpr_write(cpu, bt_acc(s.size), v);
		bt_str_adv(cpu, s.si, s.step);
		if (s.rep)
			bt_str_adv(cpu, s.cx, -1);
	}
	if (s.rep)
		bt_rep_yield(cpu, &s);
}

/* CMPS/SCAS: REPE stops when ZF = 0, REPNE when ZF = 1. */
static bool bt_rep_cond_stop(struct bt_cpu *cpu, const struct bt_str *s)
{
	if (s->repe)
		return !bt_cond(cpu, 4);
	if (s->repne)
		return bt_cond(cpu, 4);
	return false;
}

static void h_cmps(struct bt_cpu *cpu, const struct bt_insn *in)
{
	struct bt_str s;
	bt_str_setup(cpu, in, &s);
	uint64_t m = bt_mask(s.size);
	unsigned n = s.rep ? BT_REP_CHUNK : 1;
	for (unsigned i = 0; i < n; i++) {
		if (s.rep && bt_str_reg(cpu, s.cx) == 0)
			return;
		uint64_t a = bt_mem_read(cpu, s.src_seg, bt_str_reg(cpu, s.si) & s.am, s.size) & m;
		uint64_t b = bt_mem_read(cpu, BT_ES, bt_str_reg(cpu, s.di) & s.am, s.size) & m;
		bt_str_adv(cpu, s.si, s.step);
		bt_str_adv(cpu, s.di, s.step);
		bt_lazy_set(&cpu->lazy, BT_CC_SUB, s.size, (a - b) & m, a, b);
		if (s.rep) {
			bt_str_adv(cpu, s.cx, -1);
			if (bt_rep_cond_stop(cpu, &s))
				return;
		}
	}
	if (s.rep)
		bt_rep_yield(cpu, &s);
}

static void h_scas(struct bt_cpu *cpu, const struct bt_insn *in)
{
	struct bt_str s;
	bt_str_setup(cpu, in, &s);
	uint64_t m = bt_mask(s.size);
	uint64_t a = cpu->gpr[BT_RAX] & m;
	unsigned n = s.rep ? BT_REP_CHUNK : 1;
	for (unsigned i = 0; i < n; i++) {
		if (s.rep && bt_str_reg(cpu, s.cx) == 0)
			return;
		uint64_t b = bt_mem_read(cpu, BT_ES, bt_str_reg(cpu, s.di) & s.am, s.size) & m;
		bt_str_adv(cpu, s.di, s.step);
		bt_lazy_set(&cpu->lazy, BT_CC_SUB, s.size, (a - b) & m, a, b);
		if (s.rep) {
			bt_str_adv(cpu, s.cx, -1);
			if (bt_rep_cond_stop(cpu, &s))
				return;
		}
	}
	if (s.rep)
		bt_rep_yield(cpu, &s);
}

void bt_string_init(void)
{
	static const struct { ZydisMnemonic m; bt_handler h; } t[] = {
		{ ZYDIS_MNEMONIC_MOVSB, h_movs }, { ZYDIS_MNEMONIC_MOVSW, h_movs },
		{ ZYDIS_MNEMONIC_MOVSD, h_movs }, { ZYDIS_MNEMONIC_MOVSQ, h_movs },
		{ ZYDIS_MNEMONIC_STOSB, h_stos }, { ZYDIS_MNEMONIC_STOSW, h_stos },
		{ ZYDIS_MNEMONIC_STOSD, h_stos }, { ZYDIS_MNEMONIC_STOSQ, h_stos },
		{ ZYDIS_MNEMONIC_LODSB, h_lods }, { ZYDIS_MNEMONIC_LODSW, h_lods },
		{ ZYDIS_MNEMONIC_LODSD, h_lods }, { ZYDIS_MNEMONIC_LODSQ, h_lods },
		{ ZYDIS_MNEMONIC_CMPSB, h_cmps }, { ZYDIS_MNEMONIC_CMPSW, h_cmps },
		{ ZYDIS_MNEMONIC_CMPSD, h_cmps }, { ZYDIS_MNEMONIC_CMPSQ, h_cmps },
		{ ZYDIS_MNEMONIC_SCASB, h_scas }, { ZYDIS_MNEMONIC_SCASW, h_scas },
		{ ZYDIS_MNEMONIC_SCASD, h_scas }, { ZYDIS_MNEMONIC_SCASQ, h_scas },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		bt_exec_register_string(t[i].m, t[i].h);
}

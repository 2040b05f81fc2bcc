/*
 * bt_alu.c — integer arithmetic, logic, shifts and rotates, bit
 * instructions, multiply/divide, data movement, BCD and flag instructions.
 * Control flow and the stack are in bt_ctl.c, string instructions in
 * bt_string.c.
 *
 * Order inside a handler: read every operand, compute, write the
 * destination (the last thing that can fault), then set the flags.
 */
#include <string.h>

#include "bt.h"
#include "bt_alu.h"

#define RD(i) bt_op_read(cpu, in, (i))
#define WR(i, v) bt_op_write(cpu, in, (i), (v))

/* ---- two-operand arithmetic and logic ---- */

static void h_add(struct bt_cpu *cpu, const struct bt_insn *in)
{
	unsigned s = bt_osz(in);
	uint64_t m = bt_mask(s), a = RD(0) & m, b = RD(1) & m, d = (a + b) & m;
	WR(0, d);
	bt_lazy_set(&cpu->lazy, BT_CC_ADD, s, d, a, b);
}

static void h_adc(struct bt_cpu *cpu, const struct bt_insn *in)
{
	unsigned s = bt_osz(in);
	uint64_t m = bt_mask(s), a = RD(0) & m, b = RD(1) & m;
	uint64_t c = bt_get_cf(cpu) ? 1 : 0, d = (a + b + c) & m;
	WR(0, d);
	bt_lazy_set(&cpu->lazy, BT_CC_ADC, s, d, a, b);
}

static void h_sub(struct bt_cpu *cpu, const struct bt_insn *in)
{
	unsigned s = bt_osz(in);
	uint64_t m = bt_mask(s), a = RD(0) & m, b = RD(1) & m, d = (a - b) & m;
	WR(0, d);
	bt_lazy_set(&cpu->lazy, BT_CC_SUB, s, d, a, b);
}

static void h_sbb(struct bt_cpu *cpu, const struct bt_insn *in)
{
	unsigned s = bt_osz(in);
	uint64_t m = bt_mask(s), a = RD(0) & m, b = RD(1) & m;
	uint64_t c = bt_get_cf(cpu) ? 1 : 0, d = (a - b - c) & m;
	WR(0, d);
	bt_lazy_set(&cpu->lazy, BT_CC_SBB, s, d, a, b);
}

static void h_cmp(struct bt_cpu *cpu, const struct bt_insn *in)
{
	unsigned s = bt_osz(in);
	uint64_t m = bt_mask(s), a = RD(0) & m, b = RD(1) & m;
	bt_lazy_set(&cpu->lazy, BT_CC_SUB, s, (a - b) & m, a, b);
}

static void h_and(struct bt_cpu *cpu, const struct bt_insn *in)
{
	unsigned s = bt_osz(in);
	uint64_t d = RD(0) & RD(1) & bt_mask(s);
	WR(0, d);
	bt_lazy_set(&cpu->lazy, BT_CC_LOGIC, s, d, 0, 0);
}

static void h_or(struct bt_cpu *cpu, const struct bt_insn *in)
{
	unsigned s = bt_osz(in);
	uint64_t d = (RD(0) | RD(1)) & bt_mask(s);
	WR(0, d);
	bt_lazy_set(&cpu->lazy, BT_CC_LOGIC, s, d, 0, 0);
}

static void h_xor(struct bt_cpu *cpu, const struct bt_insn *in)
{
	unsigned s = bt_osz(in);
	uint64_t d = (RD(0) ^ RD(1)) & bt_mask(s);
	WR(0, d);
	bt_lazy_set(&cpu->lazy, BT_CC_LOGIC, s, d, 0, 0);
}

static void h_test(struct bt_cpu *cpu, const struct bt_insn *in)
{
	unsigned s = bt_osz(in);
	uint64_t d = RD(0) & RD(1) & bt_mask(s);
	bt_lazy_set(&cpu->lazy, BT_CC_LOGIC, s, d, 0, 0);
}

static void h_not(struct bt_cpu *cpu, const struct bt_insn *in)
{
	WR(0, ~RD(0) & bt_mask(bt_osz(in)));
}

static void h_neg(struct bt_cpu *cpu, const struct bt_insn *in)
{
	unsigned s = bt_osz(in);
	uint64_t m = bt_mask(s), a = RD(0) & m, d = (0 - a) & m;
	WR(0, d);
	bt_lazy_set(&cpu->lazy, BT_CC_NEG, s, d, a, 0);
}

static void h_inc(struct bt_cpu *cpu, const struct bt_insn *in)
{
	unsigned s = bt_osz(in);
	uint64_t m = bt_mask(s), a = RD(0) & m, d = (a + 1) & m;
	uint64_t cf = bt_get_cf(cpu) ? BT_CF : 0;
	WR(0, d);
	bt_lazy_set(&cpu->lazy, BT_CC_INC, s, d, a, cf);
}

static void h_dec(struct bt_cpu *cpu, const struct bt_insn *in)
{
	unsigned s = bt_osz(in);
	uint64_t m = bt_mask(s), a = RD(0) & m, d = (a - 1) & m;
	uint64_t cf = bt_get_cf(cpu) ? BT_CF : 0;
	WR(0, d);
	bt_lazy_set(&cpu->lazy, BT_CC_DEC, s, d, a, cf);
}

/* ---- multiply and divide ---- */

__extension__ typedef unsigned __int128 bt_u128;
__extension__ typedef __int128 bt_i128;

static ZydisRegister bt_acc_reg(unsigned s, unsigned which)
{
	/* which: 0 = A, 2 = D */
	switch (s) {
	case 1: return which ? ZYDIS_REGISTER_AH : ZYDIS_REGISTER_AL;
	case 2: return which ? ZYDIS_REGISTER_DX : ZYDIS_REGISTER_AX;
	case 4: return which ? ZYDIS_REGISTER_EDX : ZYDIS_REGISTER_EAX;
	default: return which ? ZYDIS_REGISTER_RDX : ZYDIS_REGISTER_RAX;
	}
}

static void h_mul(struct bt_cpu *cpu, const struct bt_insn *in)
{
	unsigned s = bt_osz(in);
	uint64_t m = bt_mask(s), b = RD(0) & m, a = bt_gpr_read(cpu, bt_acc_reg(s, 0)) & m;
	bt_u128 p = (bt_u128)a * b;
	uint64_t lo = (uint64_t)p & m, hi = (uint64_t)(p >> (s * 8)) & m;

	if (s == 1) {
		bt_gpr_write(cpu, ZYDIS_REGISTER_AX, (uint16_t)p);
	} else {
		bt_gpr_write(cpu, bt_acc_reg(s, 0), lo);
		bt_gpr_write(cpu, bt_acc_reg(s, 2), hi);
	}
	bt_lazy_set(&cpu->lazy, BT_CC_MUL, s, lo, hi != 0, 0);
}

static void h_imul(struct bt_cpu *cpu, const struct bt_insn *in)
{
	unsigned s = bt_osz(in);
	uint64_t m = bt_mask(s);

	if (in->zi.operand_count_visible == 1) {
		int64_t b = bt_sext(RD(0), s), a = bt_sext(bt_gpr_read(cpu, bt_acc_reg(s, 0)), s);
		bt_i128 p = (bt_i128)a * b;
		uint64_t lo = (uint64_t)p & m, hi = (uint64_t)((bt_u128)p >> (s * 8)) & m;
		bool ovf = p != (bt_i128)bt_sext(lo, s);
		if (s == 1) {
			bt_gpr_write(cpu, ZYDIS_REGISTER_AX, (uint16_t)p);
		} else {
			bt_gpr_write(cpu, bt_acc_reg(s, 0), lo);
			bt_gpr_write(cpu, bt_acc_reg(s, 2), hi);
		}
		bt_lazy_set(&cpu->lazy, BT_CC_MUL, s, lo, ovf, 0);
		return;
	}
	unsigned ia = in->zi.operand_count_visible == 3 ? 1 : 0;
	unsigned ib = in->zi.operand_count_visible == 3 ? 2 : 1;
	int64_t a = bt_sext(RD(ia), s), b = bt_sext(RD(ib), s);
	bt_i128 p = (bt_i128)a * b;
	uint64_t lo = (uint64_t)p & m;
	bool ovf = p != (bt_i128)bt_sext(lo, s);
	WR(0, lo);
	bt_lazy_set(&cpu->lazy, BT_CC_MUL, s, lo, ovf, 0);
}

static void h_div(struct bt_cpu *cpu, const struct bt_insn *in)
{
	unsigned s = bt_osz(in);
	uint64_t m = bt_mask(s), d = RD(0) & m;
	bt_u128 n;

	if (d == 0)
		bt_raise(cpu, BT_DE, 0, false);
	if (s == 1)
		n = (uint16_t)cpu->gpr[BT_RAX];
	else
		n = ((bt_u128)(bt_gpr_read(cpu, bt_acc_reg(s, 2)) & m) << (s * 8)) |
		    (bt_gpr_read(cpu, bt_acc_reg(s, 0)) & m);
	bt_u128 q = n / d, r = n % d;
	if (q > m)
		bt_raise(cpu, BT_DE, 0, false);
	if (s == 1) {
		bt_gpr_write(cpu, ZYDIS_REGISTER_AX, (uint16_t)(((uint64_t)r << 8) | (uint64_t)q));
	} else {
		bt_gpr_write(cpu, bt_acc_reg(s, 0), (uint64_t)q);
		bt_gpr_write(cpu, bt_acc_reg(s, 2), (uint64_t)r);
	}
}

static void h_idiv(struct bt_cpu *cpu, const struct bt_insn *in)
{
	unsigned s = bt_osz(in);
	uint64_t m = bt_mask(s);
	int64_t d = bt_sext(RD(0), s);
	bt_i128 n;

	if (d == 0)
		bt_raise(cpu, BT_DE, 0, false);
	if (s == 1) {
		n = (int16_t)cpu->gpr[BT_RAX];
	} else {
		bt_u128 un = ((bt_u128)(bt_gpr_read(cpu, bt_acc_reg(s, 2)) & m) << (s * 8)) |
		             (bt_gpr_read(cpu, bt_acc_reg(s, 0)) & m);
		unsigned sh = 128 - s * 16;
		n = (bt_i128)(un << sh) >> sh;
	}
	/* -2^127 / -1 cannot occur: n has at most 128 significant bits only for
	 * s == 8, and then d == -1 gives |q| <= 2^127 - 1 or overflow below. */
	if (d == -1 && n == (bt_i128)((bt_u128)1 << 127))
		bt_raise(cpu, BT_DE, 0, false);
	bt_i128 q = n / d, r = n % d;
	int64_t qmax = (int64_t)(bt_msb(s) - 1), qmin = -(int64_t)(bt_msb(s) - 1) - 1;
	if (q > qmax || q < qmin)
		bt_raise(cpu, BT_DE, 0, false);
	if (s == 1) {
		bt_gpr_write(cpu, ZYDIS_REGISTER_AX, (uint16_t)((((uint64_t)r & 0xff) << 8) | ((uint64_t)q & 0xff)));
	} else {
		bt_gpr_write(cpu, bt_acc_reg(s, 0), (uint64_t)q & m);
		bt_gpr_write(cpu, bt_acc_reg(s, 2), (uint64_t)r & m);
	}
}

/* ---- shifts and rotates ---- */

static unsigned bt_count(struct bt_cpu *cpu, const struct bt_insn *in, unsigned idx, unsigned s)
{
	return (unsigned)RD(idx) & (s == 8 ? 0x3f : 0x1f);
}

/* A count of 0 changes nothing, except that a 32-bit register destination
 * is still written (its upper half cleared), as on current cores. */
static void bt_count0(struct bt_cpu *cpu, const struct bt_insn *in, unsigned s, uint64_t a)
{
	if (s == 4 && in->ops[0].type == ZYDIS_OPERAND_TYPE_REGISTER)
		WR(0, a);
}

static void h_shl(struct bt_cpu *cpu, const struct bt_insn *in)
{
	unsigned s = bt_osz(in), c = bt_count(cpu, in, 1, s);
	uint64_t m = bt_mask(s), a = RD(0) & m;
	if (c == 0) {
		bt_count0(cpu, in, s, a);
		return;
	}
	uint64_t d = c >= s * 8 ? 0 : (a << c) & m;
	WR(0, d);
	bt_lazy_set(&cpu->lazy, BT_CC_SHL, s, d, a, c);
}

static void h_shr(struct bt_cpu *cpu, const struct bt_insn *in)
{
	unsigned s = bt_osz(in), c = bt_count(cpu, in, 1, s);
	uint64_t m = bt_mask(s), a = RD(0) & m;
	if (c == 0) {
		bt_count0(cpu, in, s, a);
		return;
	}
	uint64_t d = c >= 64 ? 0 : a >> c;
	WR(0, d);
	bt_lazy_set(&cpu->lazy, BT_CC_SHR, s, d, a, c);
}

static void h_sar(struct bt_cpu *cpu, const struct bt_insn *in)
{
	unsigned s = bt_osz(in), c = bt_count(cpu, in, 1, s);
	uint64_t m = bt_mask(s), a = RD(0) & m;
	if (c == 0) {
		bt_count0(cpu, in, s, a);
		return;
	}
	uint64_t d = (uint64_t)(bt_sext(a, s) >> (c > 63 ? 63 : c)) & m;
	WR(0, d);
	bt_lazy_set(&cpu->lazy, BT_CC_SAR, s, d, a, c);
}

static void h_rol(struct bt_cpu *cpu, const struct bt_insn *in)
{
	unsigned s = bt_osz(in), bits = s * 8, c = bt_count(cpu, in, 1, s);
	uint64_t m = bt_mask(s), a = RD(0) & m;
	if (c == 0) {
		bt_count0(cpu, in, s, a);
		return;
	}
	unsigned r = c % bits;
	uint64_t d = r ? ((a << r) | (a >> (bits - r))) & m : a;
	WR(0, d);
	bool cf = d & 1;
	bool of = ((d & bt_msb(s)) != 0) != cf;
	bt_flags_set_bits(cpu, BT_CF | BT_OF, (cf ? BT_CF : 0) | (of ? BT_OF : 0));
}

static void h_ror(struct bt_cpu *cpu, const struct bt_insn *in)
{
	unsigned s = bt_osz(in), bits = s * 8, c = bt_count(cpu, in, 1, s);
	uint64_t m = bt_mask(s), a = RD(0) & m;
	if (c == 0) {
		bt_count0(cpu, in, s, a);
		return;
	}
	unsigned r = c % bits;
	uint64_t d = r ? ((a >> r) | (a << (bits - r))) & m : a;
	WR(0, d);
	bool cf = (d & bt_msb(s)) != 0;
	bool of = cf != ((d & (bt_msb(s) >> 1)) != 0);
	bt_flags_set_bits(cpu, BT_CF | BT_OF, (cf ? BT_CF : 0) | (of ? BT_OF : 0));
}

static void h_rcl(struct bt_cpu *cpu, const struct bt_insn *in)
{
	unsigned s = bt_osz(in), bits = s * 8, c = bt_count(cpu, in, 1, s);
	uint64_t m = bt_mask(s), d = RD(0) & m;
	if (c == 0) {
		bt_count0(cpu, in, s, d);
		return;
	}
	unsigned r = c % (bits + 1);
	bool cf = bt_get_cf(cpu);
	for (unsigned i = 0; i < r; i++) {
		bool ncf = (d & bt_msb(s)) != 0;
		d = ((d << 1) | (cf ? 1 : 0)) & m;
		cf = ncf;
	}
	WR(0, d);
	bool of = ((d & bt_msb(s)) != 0) != cf;
	bt_flags_set_bits(cpu, BT_CF | BT_OF, (cf ? BT_CF : 0) | (of ? BT_OF : 0));
}

static void h_rcr(struct bt_cpu *cpu, const struct bt_insn *in)
{
	unsigned s = bt_osz(in), bits = s * 8, c = bt_count(cpu, in, 1, s);
	uint64_t m = bt_mask(s), d = RD(0) & m;
	if (c == 0) {
		bt_count0(cpu, in, s, d);
		return;
	}
	unsigned r = c % (bits + 1);
	bool cf = bt_get_cf(cpu);
	bool of = ((d & bt_msb(s)) != 0) != cf;
	for (unsigned i = 0; i < r; i++) {
		bool ncf = d & 1;
		d = (d >> 1) | (cf ? bt_msb(s) : 0);
		cf = ncf;
	}
	WR(0, d);
	bt_flags_set_bits(cpu, BT_CF | BT_OF, (cf ? BT_CF : 0) | (of ? BT_OF : 0));
}

static void h_shld(struct bt_cpu *cpu, const struct bt_insn *in)
{
	unsigned s = bt_osz(in), bits = s * 8, c = bt_count(cpu, in, 2, s);
	uint64_t m = bt_mask(s), a = RD(0) & m, b = RD(1) & m, d;
	bool cf;
	if (c == 0) {
		bt_count0(cpu, in, s, a);
		return;
	}
	if (c < bits) {
		d = ((a << c) | (b >> (bits - c))) & m;
		cf = (a >> (bits - c)) & 1;
	} else {
		/* 16-bit with count >= 16: undefined; current cores shift
		 * through the 48-bit a:b:a */
		uint64_t cat = (a << 32) | (b << 16) | a;
		d = (cat >> (32 - c)) & m;
		cf = (cat >> (48 - c)) & 1;
	}
	WR(0, d);
	bool of = ((d ^ a) & bt_msb(s)) != 0;
	bt_flags_cf_of(cpu, s, d, cf, of);
}

static void h_shrd(struct bt_cpu *cpu, const struct bt_insn *in)
{
	unsigned s = bt_osz(in), bits = s * 8, c = bt_count(cpu, in, 2, s);
	uint64_t m = bt_mask(s), a = RD(0) & m, b = RD(1) & m, d;
	bool cf;
	if (c == 0) {
		bt_count0(cpu, in, s, a);
		return;
	}
	if (c < bits) {
		d = ((a >> c) | (b << (bits - c))) & m;
		cf = (a >> (c - 1)) & 1;
	} else {
		uint64_t cat = (a << 32) | (b << 16) | a;
		d = (cat >> c) & m;
		cf = (cat >> (c - 1)) & 1;
	}
	WR(0, d);
	bool of = ((d ^ a) & bt_msb(s)) != 0;
	bt_flags_cf_of(cpu, s, d, cf, of);
}

/* ---- bit instructions ---- */

enum { BT_BIT_TEST, BT_BIT_SET, BT_BIT_RESET, BT_BIT_COMPLEMENT };

static void bt_bitop(struct bt_cpu *cpu, const struct bt_insn *in, int kind)
{
	unsigned s = bt_osz(in), bits = s * 8;
	uint64_t off = RD(1), v, nv;
	unsigned bit;
	const ZydisDecodedOperand *op0 = &in->ops[0];

	if (op0->type == ZYDIS_OPERAND_TYPE_MEMORY && in->ops[1].type == ZYDIS_OPERAND_TYPE_REGISTER) {
		/* Register bit offsets address memory beyond the operand (signed). */
		int64_t so = bt_sext(off, s);
		int64_t unit = so >= 0 ? so / (int64_t)bits : -((-so + bits - 1) / (int64_t)bits);
		uint64_t aw = in->zi.address_width;
		uint64_t am = aw == 64 ? ~0ull : aw == 32 ? 0xffffffffull : 0xffffull;
		uint64_t ea = (bt_op_ea(cpu, in, 0) + (uint64_t)unit * s) & am;
		enum bt_sreg sg = bt_op_seg(in, 0);
		bit = (unsigned)((uint64_t)so - (uint64_t)unit * bits);
		v = bt_mem_read(cpu, sg, ea, s);
		nv = kind == BT_BIT_SET ? v | (1ull << bit) : kind == BT_BIT_RESET ? v & ~(1ull << bit) :
		     v ^ (1ull << bit);
		if (kind != BT_BIT_TEST)
			bt_mem_write(cpu, sg, ea, s, nv);
	} else {
		bit = (unsigned)(off & (bits - 1));
		v = RD(0) & bt_mask(s);
		nv = kind == BT_BIT_SET ? v | (1ull << bit) : kind == BT_BIT_RESET ? v & ~(1ull << bit) :
		     v ^ (1ull << bit);
		if (kind != BT_BIT_TEST)
			WR(0, nv);
	}
	bt_flags_set_bits(cpu, BT_CF, ((v >> bit) & 1) ? BT_CF : 0);
}

static void h_bt(struct bt_cpu *cpu, const struct bt_insn *in) { bt_bitop(cpu, in, BT_BIT_TEST); }
static void h_bts(struct bt_cpu *cpu, const struct bt_insn *in) { bt_bitop(cpu, in, BT_BIT_SET); }
static void h_btr(struct bt_cpu *cpu, const struct bt_insn *in) { bt_bitop(cpu, in, BT_BIT_RESET); }
static void h_btc(struct bt_cpu *cpu, const struct bt_insn *in) { bt_bitop(cpu, in, BT_BIT_COMPLEMENT); }

static void h_bsf(struct bt_cpu *cpu, const struct bt_insn *in)
{
	unsigned s = bt_osz(in);
	uint64_t v = RD(1) & bt_mask(s);
	if (v == 0) {
		bt_flags_set_bits(cpu, BT_ZF, BT_ZF);
		return;
	}
	WR(0, (uint64_t)__builtin_ctzll(v));
	bt_flags_set_bits(cpu, BT_ZF, 0);
}

static void h_bsr(struct bt_cpu *cpu, const struct bt_insn *in)
{
	unsigned s = bt_osz(in);
	uint64_t v = RD(1) & bt_mask(s);
	if (v == 0) {
		bt_flags_set_bits(cpu, BT_ZF, BT_ZF);
		return;
	}
	WR(0, (uint64_t)(63 - __builtin_clzll(v)));
	bt_flags_set_bits(cpu, BT_ZF, 0);
}

static void h_popcnt(struct bt_cpu *cpu, const struct bt_insn *in)
{
	unsigned s = bt_osz(in);
	uint64_t v = RD(1) & bt_mask(s);
	WR(0, (uint64_t)__builtin_popcountll(v));
	bt_flags_set_bits(cpu, BT_ARITH_FLAGS, v ? 0 : BT_ZF);
}

static void h_bswap(struct bt_cpu *cpu, const struct bt_insn *in)
{
	unsigned s = bt_osz(in);
	uint64_t v = RD(0);
	if (s == 8)
		WR(0, __builtin_bswap64(v));
	else if (s == 4)
		WR(0, __builtin_bswap32((uint32_t)v));
	else
		WR(0, 0);   /* 16-bit BSWAP is undefined; current cores give 0 */
}

/* ---- data movement ---- */

static void h_mov(struct bt_cpu *cpu, const struct bt_insn *in)
{
	const ZydisDecodedOperand *d = &in->ops[0], *sop = &in->ops[1];

	/* The common case first: no segment, control or debug register. */
	if ((d->type != ZYDIS_OPERAND_TYPE_REGISTER || d->reg.value < ZYDIS_REGISTER_ES) &&
	    (sop->type != ZYDIS_OPERAND_TYPE_REGISTER || sop->reg.value < ZYDIS_REGISTER_ES)) {
		WR(0, RD(1));
		return;
	}

	if (d->type == ZYDIS_OPERAND_TYPE_REGISTER && d->reg.value >= ZYDIS_REGISTER_CR0 &&
	    d->reg.value <= ZYDIS_REGISTER_CR15) {
		if (cpu->cpl)
			bt_raise_gp(cpu, 0);
		uint64_t v = bt_op_read(cpu, in, 1);
		bt_write_cr(cpu, (unsigned)(d->reg.value - ZYDIS_REGISTER_CR0), v);
		cpu->end_block = true;
		return;
	}
	if (sop->type == ZYDIS_OPERAND_TYPE_REGISTER && sop->reg.value >= ZYDIS_REGISTER_CR0 &&
	    sop->reg.value <= ZYDIS_REGISTER_CR15) {
		if (cpu->cpl)
			bt_raise_gp(cpu, 0);
		uint64_t v;
		switch (sop->reg.value - ZYDIS_REGISTER_CR0) {
		case 0: v = cpu->cr0; break;
		case 2: v = cpu->cr2; break;
		case 3: v = cpu->cr3; break;
		case 4: v = cpu->cr4; break;
		case 8: v = (cpu->lapic.tpr >> 4) & 0xf; break;
		default: bt_raise_ud(cpu);
		}
		WR(0, v);
		return;
	}
	if (d->type == ZYDIS_OPERAND_TYPE_REGISTER && d->reg.value >= ZYDIS_REGISTER_DR0 &&
	    d->reg.value <= ZYDIS_REGISTER_DR15) {
		unsigned n = (unsigned)(d->reg.value - ZYDIS_REGISTER_DR0);
		if (cpu->cpl)
			bt_raise_gp(cpu, 0);
		if (n == 4 || n == 5) {
			if (cpu->cr4 & 0x8)   /* CR4.DE */
				bt_raise_ud(cpu);
			n += 2;
		}
		if (n > 7)
			bt_raise_ud(cpu);
		uint64_t v = bt_op_read(cpu, in, 1);
		if (n == 6)
			v = (v & 0x1e00full) | 0xffff0ff0ull;
		else if (n == 7)
			v = (v & 0xffff2bffull) | 0x400;
		cpu->dr[n] = v;
		return;
	}
	if (sop->type == ZYDIS_OPERAND_TYPE_REGISTER && sop->reg.value >= ZYDIS_REGISTER_DR0 &&
	    sop->reg.value <= ZYDIS_REGISTER_DR15) {
		unsigned n = (unsigned)(sop->reg.value - ZYDIS_REGISTER_DR0);
		if (cpu->cpl)
			bt_raise_gp(cpu, 0);
		if (n == 4 || n == 5) {
			if (cpu->cr4 & 0x8)
				bt_raise_ud(cpu);
			n += 2;
		}
		if (n > 7)
			bt_raise_ud(cpu);
		WR(0, cpu->dr[n]);
		return;
	}
	/* MOV from a segment register to a 32/64-bit register zero-extends;
	 * to memory it always stores 16 bits (Zydis sizes the operand so). */
	WR(0, RD(1));
	if (d->type == ZYDIS_OPERAND_TYPE_REGISTER && d->reg.value >= ZYDIS_REGISTER_ES &&
	    d->reg.value <= ZYDIS_REGISTER_GS)
		cpu->end_block = true;
}

static void h_movzx(struct bt_cpu *cpu, const struct bt_insn *in)
{
	WR(0, RD(1) & bt_mask(in->ops[1].size / 8u));
}

static void h_movsx(struct bt_cpu *cpu, const struct bt_insn *in)
{
	unsigned ss = in->ops[1].size / 8u;
	WR(0, (uint64_t)bt_sext(RD(1), ss) & bt_mask(bt_osz(in)));
}

static void h_lea(struct bt_cpu *cpu, const struct bt_insn *in)
{
	WR(0, bt_op_ea(cpu, in, 1) & bt_mask(bt_osz(in)));
}

static void h_xchg(struct bt_cpu *cpu, const struct bt_insn *in)
{
	uint64_t a = RD(0), b = RD(1);
	/* The memory operand (if any) is written first: a fault changes nothing. */
	if (in->ops[1].type == ZYDIS_OPERAND_TYPE_MEMORY) {
		WR(1, a);
		WR(0, b);
	} else {
		WR(0, b);
		WR(1, a);
	}
}

/* Atomic compare-and-swap of s bytes at p; *old gets what memory held. */
static bool bt_cas(uint8_t *p, unsigned s, uint64_t expect, uint64_t val, uint64_t *old)
{
	switch (s) {
	case 1: {
		uint8_t e = (uint8_t)expect;
		__atomic_compare_exchange_n(p, &e, (uint8_t)val, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
		*old = e;
		return true;
	}
	case 2: {
		uint16_t e = (uint16_t)expect;
		__atomic_compare_exchange_n((uint16_t *)(void *)p, &e, (uint16_t)val, false,
		                            __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
		*old = e;
		return true;
	}
	case 4: {
		uint32_t e = (uint32_t)expect;
		__atomic_compare_exchange_n((uint32_t *)(void *)p, &e, (uint32_t)val, false,
		                            __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
		*old = e;
		return true;
	}
	case 8: {
		uint64_t e = expect;
		__atomic_compare_exchange_n((uint64_t *)(void *)p, &e, val, false, __ATOMIC_SEQ_CST,
		                            __ATOMIC_SEQ_CST);
		*old = e;
		return true;
	}
	}
	return false;
}

static void h_cmpxchg(struct bt_cpu *cpu, const struct bt_insn *in)
{
	unsigned s = bt_osz(in);
	uint64_t m = bt_mask(s);
	ZydisRegister acc = s == 1 ? ZYDIS_REGISTER_AL : s == 2 ? ZYDIS_REGISTER_AX :
	                    s == 4 ? ZYDIS_REGISTER_EAX : ZYDIS_REGISTER_RAX;
	uint64_t src = RD(1) & m, a = bt_gpr_read(cpu, acc) & m, d;

	/* RAM the host also writes (the SVGA FIFO's BUSY word, which the device
	 * thread clears): a read-then-write would put back a stale value over
	 * the host's store.  One host compare-and-swap is the locked RMW. */
	if (in->ops[0].type == ZYDIS_OPERAND_TYPE_MEMORY) {
		uint8_t *p = bt_mem_ptr(cpu, bt_op_seg(in, 0), bt_op_ea(cpu, in, 0), s, true);
		if (p && !((uintptr_t)p & (s - 1)) && bt_cas(p, s, a, src, &d)) {
			if (a != d)
				bt_gpr_write(cpu, acc, d);
			bt_lazy_set(&cpu->lazy, BT_CC_SUB, s, (a - d) & m, a, d);
			return;
		}
	}
	d = RD(0) & m;
	if (a == d) {
		WR(0, src);
	} else {
		/* The destination is written back either way (a locked RMW). */
		if (in->ops[0].type == ZYDIS_OPERAND_TYPE_MEMORY)
			WR(0, d);
		bt_gpr_write(cpu, acc, d);
	}
	bt_lazy_set(&cpu->lazy, BT_CC_SUB, s, (a - d) & m, a, d);
}

static void h_cmpxchg8b(struct bt_cpu *cpu, const struct bt_insn *in)
{
	uint64_t v = RD(0);
	uint64_t cmp = ((uint64_t)(uint32_t)cpu->gpr[BT_RDX] << 32) | (uint32_t)cpu->gpr[BT_RAX];
	if (v == cmp) {
		WR(0, ((uint64_t)(uint32_t)cpu->gpr[BT_RCX] << 32) | (uint32_t)cpu->gpr[BT_RBX]);
		bt_flags_set_bits(cpu, BT_ZF, BT_ZF);
	} else {
		WR(0, v);
		cpu->gpr[BT_RAX] = (uint32_t)v;
		cpu->gpr[BT_RDX] = v >> 32;
		bt_flags_set_bits(cpu, BT_ZF, 0);
	}
}

static void h_cmpxchg16b(struct bt_cpu *cpu, const struct bt_insn *in)
{
	uint64_t v[2], n[2];
	if (bt_op_ea(cpu, in, 0) & 15)
		bt_raise_gp(cpu, 0);
	bt_op_read_buf(cpu, in, 0, v, 16);
	if (v[0] == cpu->gpr[BT_RAX] && v[1] == cpu->gpr[BT_RDX]) {
		n[0] = cpu->gpr[BT_RBX];
		n[1] = cpu->gpr[BT_RCX];
		bt_op_write_buf(cpu, in, 0, n, 16);
		bt_flags_set_bits(cpu, BT_ZF, BT_ZF);
	} else {
		bt_op_write_buf(cpu, in, 0, v, 16);
		cpu->gpr[BT_RAX] = v[0];
		cpu->gpr[BT_RDX] = v[1];
		bt_flags_set_bits(cpu, BT_ZF, 0);
	}
}

static void h_xadd(struct bt_cpu *cpu, const struct bt_insn *in)
{
	unsigned s = bt_osz(in);
	uint64_t m = bt_mask(s), a = RD(0) & m, b = RD(1) & m, d = (a + b) & m;
	if (in->ops[0].type == ZYDIS_OPERAND_TYPE_MEMORY) {
		WR(0, d);
		WR(1, a);
	} else {
		WR(1, a);
		WR(0, d);
	}
	bt_lazy_set(&cpu->lazy, BT_CC_ADD, s, d, a, b);
}

static void h_cbw(struct bt_cpu *cpu, const struct bt_insn *in)
{
	unsigned s = bt_osz(in);   /* CBW 2, CWDE 4, CDQE 8 */
	uint64_t v = (uint64_t)bt_sext(cpu->gpr[BT_RAX], s / 2) & bt_mask(s);
	bt_gpr_write(cpu, bt_acc_reg(s, 0), v);
}

static void h_cwd(struct bt_cpu *cpu, const struct bt_insn *in)
{
	unsigned s = bt_osz(in);   /* CWD 2, CDQ 4, CQO 8 */
	uint64_t hi = bt_sext(cpu->gpr[BT_RAX], s) < 0 ? bt_mask(s) : 0;
	bt_gpr_write(cpu, bt_acc_reg(s, 2), hi);
}

static void h_xlat(struct bt_cpu *cpu, const struct bt_insn *in)
{
	unsigned aw = in->zi.address_width;
	uint64_t am = aw == 64 ? ~0ull : aw == 32 ? 0xffffffffull : 0xffffull;
	enum bt_sreg sg = BT_DS;
	for (unsigned i = 0; i < in->zi.operand_count; i++)
		if (in->ops[i].type == ZYDIS_OPERAND_TYPE_MEMORY)
			sg = bt_op_seg(in, i);
	uint64_t ea = (cpu->gpr[BT_RBX] + (uint8_t)cpu->gpr[BT_RAX]) & am;
	bt_gpr_write(cpu, ZYDIS_REGISTER_AL, bt_mem_read(cpu, sg, ea, 1));
}

/* ---- flag instructions ---- */

static void h_lahf(struct bt_cpu *cpu, const struct bt_insn *in)
{
	uint64_t f = bt_get_rflags(cpu);
	bt_gpr_write(cpu, ZYDIS_REGISTER_AH, (f & (BT_SF | BT_ZF | BT_AF | BT_PF | BT_CF)) | 2);
}

static void h_sahf(struct bt_cpu *cpu, const struct bt_insn *in)
{
	uint64_t ah = (cpu->gpr[BT_RAX] >> 8) & 0xff;
	bt_flags_set_bits(cpu, BT_SF | BT_ZF | BT_AF | BT_PF | BT_CF, ah);
}

static void h_clc(struct bt_cpu *cpu, const struct bt_insn *in) { bt_flags_set_bits(cpu, BT_CF, 0); }
static void h_stc(struct bt_cpu *cpu, const struct bt_insn *in) { bt_flags_set_bits(cpu, BT_CF, BT_CF); }
static void h_cmc(struct bt_cpu *cpu, const struct bt_insn *in)
{
	bt_flags_set_bits(cpu, BT_CF, bt_get_cf(cpu) ? 0 : BT_CF);
}
static void h_cld(struct bt_cpu *cpu, const struct bt_insn *in) { cpu->rflags &= ~(uint64_t)BT_DF; }
static void h_std(struct bt_cpu *cpu, const struct bt_insn *in) { cpu->rflags |= BT_DF; }

static void h_nop(struct bt_cpu *cpu, const struct bt_insn *in) { (void)cpu; (void)in; }

/* ---- BCD (not in 64-bit mode: Zydis rejects them there) ---- */

static void bt_set_al_szp(struct bt_cpu *cpu, uint8_t al, bool cf, bool af)
{
	bt_gpr_write(cpu, ZYDIS_REGISTER_AL, al);
	bt_lazy_set(&cpu->lazy, BT_CC_LOGIC, 1, al, 0, 0);
	uint64_t f = bt_get_rflags(cpu) & ~(uint64_t)(BT_CF | BT_AF | BT_OF);
	cpu->rflags = f | (cf ? BT_CF : 0) | (af ? BT_AF : 0);
}

static void h_daa(struct bt_cpu *cpu, const struct bt_insn *in)
{
	uint64_t f = bt_get_rflags(cpu);
	uint8_t al = (uint8_t)cpu->gpr[BT_RAX], old = al;
	bool cf = false, af = false, ocf = f & BT_CF;
	if ((al & 0xf) > 9 || (f & BT_AF)) {
		cf = ocf || al > 0xf9;
		al = (uint8_t)(al + 6);
		af = true;
	}
	if (old > 0x99 || ocf) {
		al = (uint8_t)(al + 0x60);
		cf = true;
	}
	bt_set_al_szp(cpu, al, cf, af);
}

static void h_das(struct bt_cpu *cpu, const struct bt_insn *in)
{
	uint64_t f = bt_get_rflags(cpu);
	uint8_t al = (uint8_t)cpu->gpr[BT_RAX], old = al;
	bool cf = false, af = false, ocf = f & BT_CF;
	if ((al & 0xf) > 9 || (f & BT_AF)) {
		cf = ocf || al < 6;
		al = (uint8_t)(al - 6);
		af = true;
	}
	if (old > 0x99 || ocf) {
		al = (uint8_t)(al - 0x60);
		cf = true;
	}
	bt_set_al_szp(cpu, al, cf, af);
}

static void h_aaa(struct bt_cpu *cpu, const struct bt_insn *in)
{
	uint64_t f = bt_get_rflags(cpu);
	uint16_t ax = (uint16_t)cpu->gpr[BT_RAX];
	bool adj = (ax & 0xf) > 9 || (f & BT_AF);
	if (adj)
		ax = (uint16_t)(ax + 0x106);
	ax &= 0xff0f;
	bt_gpr_write(cpu, ZYDIS_REGISTER_AX, ax);
	bt_flags_set_bits(cpu, BT_CF | BT_AF, adj ? BT_CF | BT_AF : 0);
}

static void h_aas(struct bt_cpu *cpu, const struct bt_insn *in)
{
	uint64_t f = bt_get_rflags(cpu);
	uint16_t ax = (uint16_t)cpu->gpr[BT_RAX];
	bool adj = (ax & 0xf) > 9 || (f & BT_AF);
	if (adj) {
		ax = (uint16_t)(ax - 6);
		ax = (uint16_t)((ax & 0xff) | (((ax >> 8) - 1) & 0xff) << 8);
	}
	ax &= 0xff0f;
	bt_gpr_write(cpu, ZYDIS_REGISTER_AX, ax);
	bt_flags_set_bits(cpu, BT_CF | BT_AF, adj ? BT_CF | BT_AF : 0);
}

static void h_aam(struct bt_cpu *cpu, const struct bt_insn *in)
{
	uint8_t base = (uint8_t)RD(0), al = (uint8_t)cpu->gpr[BT_RAX];
	if (base == 0)
		bt_raise(cpu, BT_DE, 0, false);
	bt_gpr_write(cpu, ZYDIS_REGISTER_AH, al / base);
	bt_set_al_szp(cpu, al % base, false, false);
}

static void h_aad(struct bt_cpu *cpu, const struct bt_insn *in)
{
	uint8_t base = (uint8_t)RD(0);
	uint8_t al = (uint8_t)cpu->gpr[BT_RAX], ah = (uint8_t)(cpu->gpr[BT_RAX] >> 8);
	uint8_t r = (uint8_t)(al + ah * base);
	bt_gpr_write(cpu, ZYDIS_REGISTER_AX, r);
	bt_set_al_szp(cpu, r, false, false);
}

void bt_alu_init(void)
{
	static const struct { ZydisMnemonic m; bt_handler h; } t[] = {
		{ ZYDIS_MNEMONIC_ADD, h_add }, { ZYDIS_MNEMONIC_ADC, h_adc },
		{ ZYDIS_MNEMONIC_SUB, h_sub }, { ZYDIS_MNEMONIC_SBB, h_sbb },
		{ ZYDIS_MNEMONIC_CMP, h_cmp }, { ZYDIS_MNEMONIC_AND, h_and },
		{ ZYDIS_MNEMONIC_OR, h_or }, { ZYDIS_MNEMONIC_XOR, h_xor },
		{ ZYDIS_MNEMONIC_TEST, h_test }, { ZYDIS_MNEMONIC_NOT, h_not },
		{ ZYDIS_MNEMONIC_NEG, h_neg }, { ZYDIS_MNEMONIC_INC, h_inc },
		{ ZYDIS_MNEMONIC_DEC, h_dec }, { ZYDIS_MNEMONIC_MUL, h_mul },
		{ ZYDIS_MNEMONIC_IMUL, h_imul }, { ZYDIS_MNEMONIC_DIV, h_div },
		{ ZYDIS_MNEMONIC_IDIV, h_idiv }, { ZYDIS_MNEMONIC_SHL, h_shl },
		{ ZYDIS_MNEMONIC_SHR, h_shr },
		{ ZYDIS_MNEMONIC_SAR, h_sar }, { ZYDIS_MNEMONIC_ROL, h_rol },
		{ ZYDIS_MNEMONIC_ROR, h_ror }, { ZYDIS_MNEMONIC_RCL, h_rcl },
		{ ZYDIS_MNEMONIC_RCR, h_rcr }, { ZYDIS_MNEMONIC_SHLD, h_shld },
		{ ZYDIS_MNEMONIC_SHRD, h_shrd }, { ZYDIS_MNEMONIC_BT, h_bt },
		{ ZYDIS_MNEMONIC_BTS, h_bts }, { ZYDIS_MNEMONIC_BTR, h_btr },
		{ ZYDIS_MNEMONIC_BTC, h_btc }, { ZYDIS_MNEMONIC_BSF, h_bsf },
		{ ZYDIS_MNEMONIC_BSR, h_bsr }, { ZYDIS_MNEMONIC_POPCNT, h_popcnt },
		{ ZYDIS_MNEMONIC_BSWAP, h_bswap }, { ZYDIS_MNEMONIC_MOV, h_mov },
		{ ZYDIS_MNEMONIC_MOVZX, h_movzx }, { ZYDIS_MNEMONIC_MOVSX, h_movsx },
		{ ZYDIS_MNEMONIC_MOVSXD, h_movsx }, { ZYDIS_MNEMONIC_LEA, h_lea },
		{ ZYDIS_MNEMONIC_XCHG, h_xchg }, { ZYDIS_MNEMONIC_CMPXCHG, h_cmpxchg },
		{ ZYDIS_MNEMONIC_CMPXCHG8B, h_cmpxchg8b }, { ZYDIS_MNEMONIC_CMPXCHG16B, h_cmpxchg16b },
		{ ZYDIS_MNEMONIC_XADD, h_xadd }, { ZYDIS_MNEMONIC_CBW, h_cbw },
		{ ZYDIS_MNEMONIC_CWDE, h_cbw }, { ZYDIS_MNEMONIC_CDQE, h_cbw },
		{ ZYDIS_MNEMONIC_CWD, h_cwd }, { ZYDIS_MNEMONIC_CDQ, h_cwd },
		{ ZYDIS_MNEMONIC_CQO, h_cwd }, { ZYDIS_MNEMONIC_XLAT, h_xlat },
		{ ZYDIS_MNEMONIC_LAHF, h_lahf }, { ZYDIS_MNEMONIC_SAHF, h_sahf },
		{ ZYDIS_MNEMONIC_CLC, h_clc }, { ZYDIS_MNEMONIC_STC, h_stc },
		{ ZYDIS_MNEMONIC_CMC, h_cmc }, { ZYDIS_MNEMONIC_CLD, h_cld },
		{ ZYDIS_MNEMONIC_STD, h_std }, { ZYDIS_MNEMONIC_NOP, h_nop },
		{ ZYDIS_MNEMONIC_PAUSE, h_nop }, { ZYDIS_MNEMONIC_ENDBR32, h_nop },
		{ ZYDIS_MNEMONIC_ENDBR64, h_nop }, { ZYDIS_MNEMONIC_PREFETCH, h_nop },
		{ ZYDIS_MNEMONIC_PREFETCHNTA, h_nop }, { ZYDIS_MNEMONIC_PREFETCHT0, h_nop },
		{ ZYDIS_MNEMONIC_PREFETCHT1, h_nop }, { ZYDIS_MNEMONIC_PREFETCHT2, h_nop },
		{ ZYDIS_MNEMONIC_PREFETCHW, h_nop }, { ZYDIS_MNEMONIC_PREFETCHWT1, h_nop },
		/* Fences order nothing in a one-thread interpreter.  bt_sse_init
		 * runs later and may replace these. */
		{ ZYDIS_MNEMONIC_LFENCE, h_nop }, { ZYDIS_MNEMONIC_MFENCE, h_nop },
		{ ZYDIS_MNEMONIC_SFENCE, h_nop },
		{ ZYDIS_MNEMONIC_DAA, h_daa }, { ZYDIS_MNEMONIC_DAS, h_das },
		{ ZYDIS_MNEMONIC_AAA, h_aaa }, { ZYDIS_MNEMONIC_AAS, h_aas },
		{ ZYDIS_MNEMONIC_AAM, h_aam }, { ZYDIS_MNEMONIC_AAD, h_aad },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		bt_exec_register(t[i].m, t[i].h);
	bt_ctl_init();
	bt_string_init();
}

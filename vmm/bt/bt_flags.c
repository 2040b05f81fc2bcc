/*
 * bt_flags.c — lazy arithmetic flags.
 *
 * Arithmetic handlers record (op, size, result, operands) in cpu->lazy; the
 * six status flags are computed only when something reads them.  Flags that
 * the SDM leaves undefined are computed the way current Intel cores do
 * where that is cheap (SF/ZF/PF from the result), otherwise 0.
 */
#include "bt.h"

static inline uint64_t bt_size_mask(unsigned size)
{
	return size >= 8 ? ~0ull : (1ull << (size * 8)) - 1;
}

static inline uint64_t bt_sign_bit(unsigned size)
{
	return 1ull << (size * 8 - 1);
}

static inline uint64_t bt_parity(uint64_t v)
{
	return (uint64_t)(!__builtin_parity((unsigned)(v & 0xff))) * BT_PF;
}

/* ZF, SF, PF of a result. */
static inline uint64_t bt_szp(uint64_t dst, unsigned size)
{
	uint64_t m = bt_size_mask(size);
	uint64_t f = bt_parity(dst);
	if ((dst & m) == 0)
		f |= BT_ZF;
	if (dst & bt_sign_bit(size))
		f |= BT_SF;
	return f;
}

static uint64_t bt_lazy_compute(const struct bt_lazy *l, uint64_t old)
{
	unsigned size = l->size ? l->size : 8;
	uint64_t m = bt_size_mask(size), sb = bt_sign_bit(size);
	uint64_t d = l->dst & m, a = l->src1 & m, b = l->src2 & m;
	uint64_t f = bt_szp(d, size);
	uint64_t cin;
	unsigned bits = size * 8;

	switch (l->op) {
	case BT_CC_ADD:
		if (d < a)
			f |= BT_CF;
		if ((a ^ d) & (b ^ d) & sb)
			f |= BT_OF;
		f |= (a ^ b ^ d) & BT_AF;
		break;
	case BT_CC_ADC:
		cin = (d - a - b) & m;
		if (cin ? d <= a : d < a)
			f |= BT_CF;
		if ((a ^ d) & (b ^ d) & sb)
			f |= BT_OF;
		f |= (a ^ b ^ d) & BT_AF;
		break;
	case BT_CC_SUB:
		if (a < b)
			f |= BT_CF;
		if ((a ^ b) & (a ^ d) & sb)
			f |= BT_OF;
		f |= (a ^ b ^ d) & BT_AF;
		break;
	case BT_CC_SBB:
		cin = (a - b - d) & m;
		if (cin ? a <= b : a < b)
			f |= BT_CF;
		if ((a ^ b) & (a ^ d) & sb)
			f |= BT_OF;
		f |= (a ^ b ^ d) & BT_AF;
		break;
	case BT_CC_LOGIC:
		break;
	case BT_CC_INC:
		f |= l->src2 & BT_CF;
		if (d == sb)
			f |= BT_OF;
		if ((d & 0xf) == 0)
			f |= BT_AF;
		break;
	case BT_CC_DEC:
		f |= l->src2 & BT_CF;
		if (d == sb - 1)
			f |= BT_OF;
		if ((d & 0xf) == 0xf)
			f |= BT_AF;
		break;
	case BT_CC_NEG:
		if (a != 0)
			f |= BT_CF;
		if (a == sb)
			f |= BT_OF;
		f |= (a ^ d) & BT_AF;
		break;
	case BT_CC_SHL: {
		unsigned c = (unsigned)l->src2;
		uint64_t cf = 0;
		if (c >= 1 && c <= bits)
			cf = (a >> (bits - c)) & 1;
		if (cf)
			f |= BT_CF;
		if (((d & sb) != 0) != (cf != 0))
			f |= BT_OF;
		break;
	}
	case BT_CC_SHR: {
		unsigned c = (unsigned)l->src2;
		if (c >= 1 && c <= 64 && ((a >> (c - 1)) & 1))
			f |= BT_CF;
		if (c == 1 ? (a & sb) != 0 : ((d << 1) ^ d) & sb)
			f |= BT_OF;
		break;
	}
	case BT_CC_SAR: {
		unsigned c = (unsigned)l->src2;
		int64_t sa = (int64_t)(a << (64 - bits)) >> (64 - bits);
		if (c >= 1 && ((sa >> (c - 1 > 63 ? 63 : c - 1)) & 1))
			f |= BT_CF;
		break;
	}
	case BT_CC_MUL:
		if (l->src1)
			f |= BT_CF | BT_OF;
		break;
	default:
		return old & BT_ARITH_FLAGS;
	}
	return f;
}

uint64_t bt_get_rflags(struct bt_cpu *cpu)
{
	if (cpu->lazy.op != BT_CC_NONE) {
		uint64_t f = bt_lazy_compute(&cpu->lazy, cpu->rflags);
		cpu->rflags = (cpu->rflags & ~(uint64_t)BT_ARITH_FLAGS) | f;
		cpu->lazy.op = BT_CC_NONE;
	}
	return cpu->rflags | 2u;
}

void bt_set_rflags(struct bt_cpu *cpu, uint64_t v)
{
	/* Reserved bits read as 0 except bit 1; the CPU ignores writes to them. */
	const uint64_t valid = BT_ARITH_FLAGS | BT_TF | BT_IF | BT_DF | BT_IOPL | BT_NT | BT_RF |
	                       BT_VM | BT_AC | BT_VIF | BT_VIP | BT_ID;
	cpu->rflags = (v & valid) | 2u;
	cpu->lazy.op = BT_CC_NONE;
}

bool bt_get_cf(struct bt_cpu *cpu)
{
	const struct bt_lazy *l = &cpu->lazy;
	uint64_t m;

	switch (l->op) {
	case BT_CC_NONE:
		return cpu->rflags & BT_CF;
	case BT_CC_ADD:
		m = bt_size_mask(l->size);
		return (l->dst & m) < (l->src1 & m);
	case BT_CC_SUB:
		m = bt_size_mask(l->size);
		return (l->src1 & m) < (l->src2 & m);
	case BT_CC_LOGIC:
		return false;
	case BT_CC_INC:
	case BT_CC_DEC:
		return l->src2 & BT_CF;
	default:
		return bt_get_rflags(cpu) & BT_CF;
	}
}

static bool bt_zf(struct bt_cpu *cpu)
{
	if (cpu->lazy.op == BT_CC_NONE)
		return cpu->rflags & BT_ZF;
	return (cpu->lazy.dst & bt_size_mask(cpu->lazy.size)) == 0;
}

bool bt_cond(struct bt_cpu *cpu, unsigned cc)
{
	const struct bt_lazy *l = &cpu->lazy;
	bool r;

	/* Fast paths for the compare-and-branch idioms. */
	if (l->op == BT_CC_SUB && (cc & ~1u) >= 2) {
		uint64_t m = bt_size_mask(l->size);
		unsigned sh = 64 - l->size * 8;
		uint64_t a = l->src1 & m, b = l->src2 & m;
		int64_t sa = (int64_t)(a << sh) >> sh, sb = (int64_t)(b << sh) >> sh;
		switch (cc >> 1) {
		case 1: r = a < b; goto out;               /* B / AE */
		case 2: r = a == b; goto out;              /* E / NE */
		case 3: r = a <= b; goto out;              /* BE / A */
		case 6: r = sa < sb; goto out;             /* L / GE */
		case 7: r = sa <= sb; goto out;            /* LE / G */
		default: break;
		}
	} else if (l->op == BT_CC_LOGIC) {
		uint64_t m = bt_size_mask(l->size);
		uint64_t d = l->dst & m;
		bool s = (d & bt_sign_bit(l->size)) != 0;
		switch (cc >> 1) {
		case 0: r = false; goto out;               /* O */
		case 1: r = false; goto out;               /* B */
		case 2: r = d == 0; goto out;              /* E */
		case 3: r = d == 0; goto out;              /* BE */
		case 4: r = s; goto out;                   /* S */
		case 6: r = s; goto out;                   /* L: SF != OF(0) */
		case 7: r = s || d == 0; goto out;         /* LE */
		default: break;
		}
	} else if ((cc >> 1) == 2) {
		r = bt_zf(cpu);
		goto out;
	}

	{
		uint64_t f = bt_get_rflags(cpu);
		bool cf = f & BT_CF, zf = f & BT_ZF, sf = f & BT_SF, of = f & BT_OF, pf = f & BT_PF;
		switch (cc >> 1) {
		case 0: r = of; break;
		case 1: r = cf; break;
		case 2: r = zf; break;
		case 3: r = cf || zf; break;
		case 4: r = sf; break;
		case 5: r = pf; break;
		case 6: r = sf != of; break;
		default: r = zf || (sf != of); break;
		}
	}
out:
	return (cc & 1) ? !r : r;
}

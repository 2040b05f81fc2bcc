/*
 * bt_sse_int.c — packed-integer instructions for the bt engine: MMX, their
 * SSE2 128-bit forms and SSSE3, plus MOVD/MOVQ, the MMX<->XMM moves,
 * non-temporal and masked stores, and EMMS.
 *
 * One handler per shape serves both widths: an MMX register operand selects
 * the 64-bit form (x87 -> MMX transition, #MF on a pending x87 exception),
 * an XMM one the 128-bit form (SSE checks, aligned m128).  Results are
 * computed in portable C on byte arrays, so the host needs nothing past
 * SSE2 for these; the differential tests check them against the host CPU.
 */
#include <string.h>

#include "bt.h"
#include "bt_fpu.h"

enum iop {
	I_NONE,
	I_PADDB, I_PADDW, I_PADDD, I_PADDQ, I_PSUBB, I_PSUBW, I_PSUBD, I_PSUBQ,
	I_PADDSB, I_PADDSW, I_PADDUSB, I_PADDUSW, I_PSUBSB, I_PSUBSW, I_PSUBUSB, I_PSUBUSW,
	I_PMULLW, I_PMULHW, I_PMULHUW, I_PMULUDQ, I_PMADDWD, I_PSADBW, I_PAVGB, I_PAVGW,
	I_PMINUB, I_PMAXUB, I_PMINSW, I_PMAXSW,
	I_PCMPEQB, I_PCMPEQW, I_PCMPEQD, I_PCMPGTB, I_PCMPGTW, I_PCMPGTD,
	I_PACKSSWB, I_PACKSSDW, I_PACKUSWB,
	I_PUNPCKLBW, I_PUNPCKLWD, I_PUNPCKLDQ, I_PUNPCKLQDQ,
	I_PUNPCKHBW, I_PUNPCKHWD, I_PUNPCKHDQ, I_PUNPCKHQDQ,
	I_PAND, I_PANDN, I_POR, I_PXOR,
	I_PSHUFB, I_PHADDW, I_PHADDD, I_PHADDSW, I_PHSUBW, I_PHSUBD, I_PHSUBSW,
	I_PABSB, I_PABSW, I_PABSD, I_PMADDUBSW, I_PMULHRSW, I_PSIGNB, I_PSIGNW, I_PSIGND,
	I__COUNT
};

static uint8_t iop_of[ZYDIS_MNEMONIC_MAX_VALUE + 1];

static inline uint64_t lget(const uint8_t *p, unsigned i, unsigned w)
{
	uint64_t v = 0;
	memcpy(&v, p + i * w, w);
	return v;
}

static inline void lset(uint8_t *p, unsigned i, unsigned w, uint64_t v)
{
	memcpy(p + i * w, &v, w);
}

static inline int64_t sx(uint64_t v, unsigned w)
{
	unsigned sh = 64 - 8 * w;
	return (int64_t)(v << sh) >> sh;
}

static inline int64_t sat_s(int64_t v, unsigned w)
{
	int64_t hi = (int64_t)((1ull << (8 * w - 1)) - 1), lo = -hi - 1;
	return v > hi ? hi : v < lo ? lo : v;
}

static inline int64_t sat_u(int64_t v, unsigned w)
{
	int64_t hi = (int64_t)((1ull << (8 * w)) - 1);
	return v > hi ? hi : v < 0 ? 0 : v;
}

/* Lane-wise binary operation of element width w. */
static void lanes(uint8_t *r, const uint8_t *d, const uint8_t *s, unsigned len, unsigned w,
                  enum iop op)
{
	for (unsigned i = 0; i < len / w; i++) {
		uint64_t a = lget(d, i, w), b = lget(s, i, w), v;
		int64_t sa = sx(a, w), sb = sx(b, w);
		switch (op) {
		case I_PADDB: case I_PADDW: case I_PADDD: case I_PADDQ: v = a + b; break;
		case I_PSUBB: case I_PSUBW: case I_PSUBD: case I_PSUBQ: v = a - b; break;
		case I_PADDSB: case I_PADDSW: v = (uint64_t)sat_s(sa + sb, w); break;
		case I_PSUBSB: case I_PSUBSW: v = (uint64_t)sat_s(sa - sb, w); break;
		case I_PADDUSB: case I_PADDUSW: v = (uint64_t)sat_u((int64_t)(a + b), w); break;
		case I_PSUBUSB: case I_PSUBUSW: v = (uint64_t)sat_u((int64_t)a - (int64_t)b, w); break;
		case I_PMULLW: v = (uint64_t)(sa * sb); break;
		case I_PMULHW: v = (uint64_t)((sa * sb) >> 16); break;
		case I_PMULHUW: v = (a * b) >> 16; break;
		case I_PMULUDQ: v = (a & 0xffffffffu) * (b & 0xffffffffu); break;
		case I_PAVGB: case I_PAVGW: v = (a + b + 1) >> 1; break;
		case I_PMINUB: v = a < b ? a : b; break;
		case I_PMAXUB: v = a > b ? a : b; break;
		case I_PMINSW: v = sa < sb ? a : b; break;
		case I_PMAXSW: v = sa > sb ? a : b; break;
		case I_PCMPEQB: case I_PCMPEQW: case I_PCMPEQD: v = a == b ? ~0ull : 0; break;
		case I_PCMPGTB: case I_PCMPGTW: case I_PCMPGTD: v = sa > sb ? ~0ull : 0; break;
		case I_PAND: v = a & b; break;
		case I_PANDN: v = ~a & b; break;
		case I_POR: v = a | b; break;
		case I_PXOR: v = a ^ b; break;
		case I_PMULHRSW: v = (uint64_t)((((sa * sb) >> 14) + 1) >> 1); break;
		case I_PSIGNB: case I_PSIGNW: case I_PSIGND:
			v = sb < 0 ? (uint64_t)-sa : sb == 0 ? 0 : a;
			break;
		case I_PABSB: case I_PABSW: case I_PABSD: v = sb < 0 ? (uint64_t)-sb : b; break;
		default: v = 0; break;
		}
		lset(r, i, w, v);
	}
}

static unsigned width_of(enum iop op)
{
	switch (op) {
	case I_PADDB: case I_PSUBB: case I_PADDSB: case I_PADDUSB: case I_PSUBSB: case I_PSUBUSB:
	case I_PAVGB: case I_PMINUB: case I_PMAXUB: case I_PCMPEQB: case I_PCMPGTB:
	case I_PSIGNB: case I_PABSB:
		return 1;
	case I_PADDD: case I_PSUBD: case I_PCMPEQD: case I_PCMPGTD: case I_PSIGND: case I_PABSD:
		return 4;
	case I_PADDQ: case I_PSUBQ: case I_PMULUDQ: case I_PAND: case I_PANDN: case I_POR:
	case I_PXOR:
		return 8;
	default:
		return 2;
	}
}

static void compute(enum iop op, uint8_t *r, const uint8_t *d, const uint8_t *s, unsigned len)
{
	unsigned n = len / 2;   /* elements per source half, for packs/unpacks */
	switch (op) {
	case I_PMADDWD:
		for (unsigned i = 0; i < len / 4; i++) {
			int64_t v = sx(lget(d, 2 * i, 2), 2) * sx(lget(s, 2 * i, 2), 2) +
			            sx(lget(d, 2 * i + 1, 2), 2) * sx(lget(s, 2 * i + 1, 2), 2);
			lset(r, i, 4, (uint64_t)v);
		}
		return;
	case I_PMADDUBSW:
		for (unsigned i = 0; i < len / 2; i++) {
			int64_t v = (int64_t)d[2 * i] * (int8_t)s[2 * i] +
			            (int64_t)d[2 * i + 1] * (int8_t)s[2 * i + 1];
			lset(r, i, 2, (uint64_t)sat_s(v, 2));
		}
		return;
	case I_PSADBW:
		for (unsigned q = 0; q < len / 8; q++) {
			unsigned sum = 0;
			for (unsigned i = 0; i < 8; i++) {
				int diff = (int)d[q * 8 + i] - (int)s[q * 8 + i];
				sum += (unsigned)(diff < 0 ? -diff : diff);
			}
			lset(r, q, 8, sum);
		}
		return;
	case I_PACKSSWB: case I_PACKSSDW: case I_PACKUSWB: {
		unsigned w = op == I_PACKSSDW ? 4 : 2, cnt = len / w;
		for (unsigned i = 0; i < 2 * cnt; i++) {
			int64_t v = sx(lget(i < cnt ? d : s, i % cnt, w), w);
			v = op == I_PACKUSWB ? sat_u(v, w / 2) : sat_s(v, w / 2);
			lset(r, i, w / 2, (uint64_t)v);
		}
		return;
	}
	case I_PUNPCKLBW: case I_PUNPCKLWD: case I_PUNPCKLDQ: case I_PUNPCKLQDQ:
	case I_PUNPCKHBW: case I_PUNPCKHWD: case I_PUNPCKHDQ: case I_PUNPCKHQDQ: {
		unsigned w = (op == I_PUNPCKLBW || op == I_PUNPCKHBW) ? 1 :
		             (op == I_PUNPCKLWD || op == I_PUNPCKHWD) ? 2 :
		             (op == I_PUNPCKLDQ || op == I_PUNPCKHDQ) ? 4 : 8;
		unsigned base = op >= I_PUNPCKHBW ? n / w : 0;
		for (unsigned i = 0; i < n / w; i++) {
			lset(r, 2 * i, w, lget(d, base + i, w));
			lset(r, 2 * i + 1, w, lget(s, base + i, w));
		}
		return;
	}
	case I_PSHUFB:
		for (unsigned i = 0; i < len; i++)
			r[i] = (s[i] & 0x80) ? 0 : d[s[i] & (len - 1)];
		return;
	case I_PHADDW: case I_PHADDD: case I_PHADDSW: case I_PHSUBW: case I_PHSUBD: case I_PHSUBSW: {
		unsigned w = (op == I_PHADDD || op == I_PHSUBD) ? 4 : 2, cnt = len / w;
		bool sub = op == I_PHSUBW || op == I_PHSUBD || op == I_PHSUBSW;
		bool sat = op == I_PHADDSW || op == I_PHSUBSW;
		for (unsigned i = 0; i < cnt; i++) {
			const uint8_t *src = i < cnt / 2 ? d : s;
			unsigned j = (i % (cnt / 2)) * 2;
			int64_t a = sx(lget(src, j, w), w), b = sx(lget(src, j + 1, w), w);
			int64_t v = sub ? a - b : a + b;
			lset(r, i, w, (uint64_t)(sat ? sat_s(v, w) : v));
		}
		return;
	}
	default:
		lanes(r, d, s, len, width_of(op), op);
		return;
	}
}

/* ---- width selection and checks ---- */

/* Check the instruction's state requirements; returns the vector length. */
static unsigned simd_enter(struct bt_cpu *cpu, const struct bt_insn *in, unsigned idx)
{
	if (bt_fpu_is_mmx(in, idx)) {
		bt_mmx_check(cpu);
		return 8;
	}
	bt_sse_check(cpu);
	return 16;
}

static void simd_done(struct bt_cpu *cpu, unsigned len)
{
	if (len == 8)
		bt_mmx_enter(cpu);
}

static void int_binop(struct bt_cpu *cpu, const struct bt_insn *in)
{
	enum iop op = (enum iop)iop_of[in->zi.mnemonic];
	uint8_t d[16], s[16], r[16];
	unsigned len = simd_enter(cpu, in, 0);
	bt_fpu_read(cpu, in, 1, s, len, true);
	bt_fpu_read(cpu, in, 0, d, len, true);
	memset(r, 0, sizeof(r));
	compute(op, r, d, s, len);
	bt_fpu_write(cpu, in, 0, r, len, true);
	simd_done(cpu, len);
}

/* Shifts: by imm8 (op 1 immediate) or by the low 64 bits of mm/xmm/m. */
static void int_shift(struct bt_cpu *cpu, const struct bt_insn *in)
{
	ZydisMnemonic m = in->zi.mnemonic;
	uint8_t d[16], s[16];
	unsigned len = simd_enter(cpu, in, 0);
	uint64_t count;
	if (in->ops[1].type == ZYDIS_OPERAND_TYPE_IMMEDIATE) {
		count = in->ops[1].imm.value.u & 0xff;
	} else {
		bt_fpu_read(cpu, in, 1, s, len, true);
		memcpy(&count, s, 8);
	}
	bt_fpu_read(cpu, in, 0, d, len, true);

	if (m == ZYDIS_MNEMONIC_PSLLDQ || m == ZYDIS_MNEMONIC_PSRLDQ) {
		uint8_t r[16] = {0};
		unsigned c = count > 16 ? 16 : (unsigned)count;
		for (unsigned i = 0; i < 16; i++) {
			if (m == ZYDIS_MNEMONIC_PSLLDQ) {
				if (i >= c)
					r[i] = d[i - c];
			} else if (i + c < 16) {
				r[i] = d[i + c];
			}
		}
		memcpy(d, r, 16);
	} else {
		unsigned w;
		int kind;   /* 0 left, 1 logical right, 2 arithmetic right */
		switch (m) {
		case ZYDIS_MNEMONIC_PSLLW: w = 2; kind = 0; break;
		case ZYDIS_MNEMONIC_PSLLD: w = 4; kind = 0; break;
		case ZYDIS_MNEMONIC_PSLLQ: w = 8; kind = 0; break;
		case ZYDIS_MNEMONIC_PSRLW: w = 2; kind = 1; break;
		case ZYDIS_MNEMONIC_PSRLD: w = 4; kind = 1; break;
		case ZYDIS_MNEMONIC_PSRLQ: w = 8; kind = 1; break;
		case ZYDIS_MNEMONIC_PSRAW: w = 2; kind = 2; break;
		default: w = 4; kind = 2; break;
		}
		unsigned bits = 8 * w;
		for (unsigned i = 0; i < len / w; i++) {
			uint64_t v = lget(d, i, w);
			if (kind == 2) {
				unsigned c = count >= bits ? bits - 1 : (unsigned)count;
				v = (uint64_t)(sx(v, w) >> c);
			} else if (count >= bits) {
				v = 0;
			} else {
				v = kind == 0 ? v << count : v >> count;
			}
			lset(d, i, w, v);
		}
	}
	bt_fpu_write(cpu, in, 0, d, len, true);
	simd_done(cpu, len);
}

/* PSHUFD / PSHUFHW / PSHUFLW / PSHUFW: dst, src, imm8 */
static void int_pshuf(struct bt_cpu *cpu, const struct bt_insn *in)
{
	ZydisMnemonic m = in->zi.mnemonic;
	uint8_t s[16], r[16];
	unsigned imm = (unsigned)in->ops[2].imm.value.u;
	unsigned len = simd_enter(cpu, in, 0);
	bt_fpu_read(cpu, in, 1, s, len, true);
	memcpy(r, s, 16);
	if (m == ZYDIS_MNEMONIC_PSHUFD) {
		for (unsigned i = 0; i < 4; i++)
			lset(r, i, 4, lget(s, (imm >> (2 * i)) & 3, 4));
	} else {
		unsigned base = m == ZYDIS_MNEMONIC_PSHUFHW ? 4 : 0;
		for (unsigned i = 0; i < 4; i++)
			lset(r, base + i, 2, lget(s, base + ((imm >> (2 * i)) & 3), 2));
	}
	bt_fpu_write(cpu, in, 0, r, len, true);
	simd_done(cpu, len);
}

static void int_palignr(struct bt_cpu *cpu, const struct bt_insn *in)
{
	uint8_t d[16], s[16], cat[32], r[16];
	unsigned imm = (unsigned)in->ops[2].imm.value.u & 0xff;
	unsigned len = simd_enter(cpu, in, 0);
	bt_fpu_read(cpu, in, 1, s, len, true);
	bt_fpu_read(cpu, in, 0, d, len, true);
	memcpy(cat, s, len);
	memcpy(cat + len, d, len);
	for (unsigned i = 0; i < len; i++)
		r[i] = imm + i < 2 * len ? cat[imm + i] : 0;
	bt_fpu_write(cpu, in, 0, r, len, true);
	simd_done(cpu, len);
}

static void int_pextrw(struct bt_cpu *cpu, const struct bt_insn *in)
{
	uint8_t s[16];
	unsigned len = simd_enter(cpu, in, 1);
	unsigned imm = (unsigned)in->ops[2].imm.value.u;
	bt_fpu_read(cpu, in, 1, s, len, true);
	uint64_t v = lget(s, imm & (len / 2 - 1), 2);
	if (in->ops[0].type == ZYDIS_OPERAND_TYPE_REGISTER)
		bt_gpr_write(cpu, in->ops[0].reg.value, v);
	else
		bt_op_write(cpu, in, 0, v);
	simd_done(cpu, len);
}

static void int_pinsrw(struct bt_cpu *cpu, const struct bt_insn *in)
{
	uint8_t d[16];
	unsigned len = simd_enter(cpu, in, 0);
	unsigned imm = (unsigned)in->ops[2].imm.value.u;
	uint64_t v = bt_op_read(cpu, in, 1) & 0xffff;
	bt_fpu_read(cpu, in, 0, d, len, true);
	lset(d, imm & (len / 2 - 1), 2, v);
	bt_fpu_write(cpu, in, 0, d, len, true);
	simd_done(cpu, len);
}

static void int_pmovmskb(struct bt_cpu *cpu, const struct bt_insn *in)
{
	uint8_t s[16];
	uint32_t r = 0;
	unsigned len = simd_enter(cpu, in, 1);
	bt_fpu_read(cpu, in, 1, s, len, true);
	for (unsigned i = 0; i < len; i++)
		r |= (uint32_t)(s[i] >> 7) << i;
	bt_gpr_write(cpu, in->ops[0].reg.value, r);
	simd_done(cpu, len);
}

/* ---- moves ---- */

/* MOVD / MOVQ in all their encodings. */
static void int_movdq(struct bt_cpu *cpu, const struct bt_insn *in)
{
	bool dx = bt_fpu_is_xmm(in, 0), sx_ = bt_fpu_is_xmm(in, 1);
	bool dm = bt_fpu_is_mmx(in, 0), sm = bt_fpu_is_mmx(in, 1);
	unsigned n = in->zi.mnemonic == ZYDIS_MNEMONIC_MOVD ? 4 : 8;
	uint8_t b[16];
	if (dx || sx_)
		bt_sse_check(cpu);
	if (dm || sm)
		bt_mmx_check(cpu);
	memset(b, 0, sizeof(b));
	bt_fpu_read(cpu, in, 1, b, n, false);
	if (dx)
		bt_fpu_write(cpu, in, 0, b, 16, false);   /* zero-extends to 128 */
	else if (in->ops[0].type == ZYDIS_OPERAND_TYPE_REGISTER && !dm)
		bt_gpr_write(cpu, in->ops[0].reg.value, n == 4 ? (uint64_t)lget(b, 0, 4) : lget(b, 0, 8));
	else
		bt_fpu_write(cpu, in, 0, b, dm ? 8 : n, false);
	if (dm || sm)
		bt_mmx_enter(cpu);
}

static void int_movq2dq(struct bt_cpu *cpu, const struct bt_insn *in)
{
	uint8_t b[16] = {0};
	bt_sse_check(cpu);
	bt_mmx_check(cpu);
	bt_fpu_read(cpu, in, 1, b, 8, false);
	if (in->zi.mnemonic == ZYDIS_MNEMONIC_MOVQ2DQ)
		bt_fpu_write(cpu, in, 0, b, 16, false);
	else
		bt_fpu_write(cpu, in, 0, b, 8, false);
	bt_mmx_enter(cpu);
}

static void int_movntq(struct bt_cpu *cpu, const struct bt_insn *in)
{
	uint8_t b[8];
	bt_mmx_check(cpu);
	bt_fpu_read(cpu, in, 1, b, 8, false);
	bt_fpu_write(cpu, in, 0, b, 8, false);
	bt_mmx_enter(cpu);
}

static void int_movnti(struct bt_cpu *cpu, const struct bt_insn *in)
{
	bt_op_write(cpu, in, 0, bt_op_read(cpu, in, 1));
}

/* MASKMOVQ / MASKMOVDQU: byte stores to [seg:rDI] under the sign bits of the mask. */
static void int_maskmov(struct bt_cpu *cpu, const struct bt_insn *in)
{
	uint8_t d[16], msk[16];
	int mi = -1;
	unsigned len = simd_enter(cpu, in, 0);
	for (unsigned i = 0; i < in->zi.operand_count; i++)
		if (in->ops[i].type == ZYDIS_OPERAND_TYPE_MEMORY)
			mi = (int)i;
	if (mi < 0)
		bt_raise_ud(cpu);
	bt_fpu_read(cpu, in, 0, d, len, false);
	bt_fpu_read(cpu, in, 1, msk, len, false);
	enum bt_sreg s = bt_op_seg(in, (unsigned)mi);
	uint64_t ea = bt_op_ea(cpu, in, (unsigned)mi);
	uint64_t amask = in->zi.address_width == 64 ? ~0ull :
	                 in->zi.address_width == 32 ? 0xffffffffull : 0xffffull;
	for (unsigned i = 0; i < len; i++)
		if (msk[i] & 0x80)
			bt_mem_write(cpu, s, (ea + i) & amask, 1, d[i]);
	simd_done(cpu, len);
}

static void int_emms(struct bt_cpu *cpu, const struct bt_insn *in)
{
	(void)in;
	bt_mmx_check(cpu);
	cpu->fsw &= (uint16_t)~BT_FSW_TOP;
	cpu->ftw = 0xffff;
}

/* ---- registration ---- */

static const struct {
	ZydisMnemonic m;
	enum iop op;
} iop_table[] = {
	{ZYDIS_MNEMONIC_PADDB, I_PADDB}, {ZYDIS_MNEMONIC_PADDW, I_PADDW},
	{ZYDIS_MNEMONIC_PADDD, I_PADDD}, {ZYDIS_MNEMONIC_PADDQ, I_PADDQ},
	{ZYDIS_MNEMONIC_PSUBB, I_PSUBB}, {ZYDIS_MNEMONIC_PSUBW, I_PSUBW},
	{ZYDIS_MNEMONIC_PSUBD, I_PSUBD}, {ZYDIS_MNEMONIC_PSUBQ, I_PSUBQ},
	{ZYDIS_MNEMONIC_PADDSB, I_PADDSB}, {ZYDIS_MNEMONIC_PADDSW, I_PADDSW},
	{ZYDIS_MNEMONIC_PADDUSB, I_PADDUSB}, {ZYDIS_MNEMONIC_PADDUSW, I_PADDUSW},
	{ZYDIS_MNEMONIC_PSUBSB, I_PSUBSB}, {ZYDIS_MNEMONIC_PSUBSW, I_PSUBSW},
	{ZYDIS_MNEMONIC_PSUBUSB, I_PSUBUSB}, {ZYDIS_MNEMONIC_PSUBUSW, I_PSUBUSW},
	{ZYDIS_MNEMONIC_PMULLW, I_PMULLW}, {ZYDIS_MNEMONIC_PMULHW, I_PMULHW},
	{ZYDIS_MNEMONIC_PMULHUW, I_PMULHUW}, {ZYDIS_MNEMONIC_PMULUDQ, I_PMULUDQ},
	{ZYDIS_MNEMONIC_PMADDWD, I_PMADDWD}, {ZYDIS_MNEMONIC_PSADBW, I_PSADBW},
	{ZYDIS_MNEMONIC_PAVGB, I_PAVGB}, {ZYDIS_MNEMONIC_PAVGW, I_PAVGW},
	{ZYDIS_MNEMONIC_PMINUB, I_PMINUB}, {ZYDIS_MNEMONIC_PMAXUB, I_PMAXUB},
	{ZYDIS_MNEMONIC_PMINSW, I_PMINSW}, {ZYDIS_MNEMONIC_PMAXSW, I_PMAXSW},
	{ZYDIS_MNEMONIC_PCMPEQB, I_PCMPEQB}, {ZYDIS_MNEMONIC_PCMPEQW, I_PCMPEQW},
	{ZYDIS_MNEMONIC_PCMPEQD, I_PCMPEQD}, {ZYDIS_MNEMONIC_PCMPGTB, I_PCMPGTB},
	{ZYDIS_MNEMONIC_PCMPGTW, I_PCMPGTW}, {ZYDIS_MNEMONIC_PCMPGTD, I_PCMPGTD},
	{ZYDIS_MNEMONIC_PACKSSWB, I_PACKSSWB}, {ZYDIS_MNEMONIC_PACKSSDW, I_PACKSSDW},
	{ZYDIS_MNEMONIC_PACKUSWB, I_PACKUSWB},
	{ZYDIS_MNEMONIC_PUNPCKLBW, I_PUNPCKLBW}, {ZYDIS_MNEMONIC_PUNPCKLWD, I_PUNPCKLWD},
	{ZYDIS_MNEMONIC_PUNPCKLDQ, I_PUNPCKLDQ}, {ZYDIS_MNEMONIC_PUNPCKLQDQ, I_PUNPCKLQDQ},
	{ZYDIS_MNEMONIC_PUNPCKHBW, I_PUNPCKHBW}, {ZYDIS_MNEMONIC_PUNPCKHWD, I_PUNPCKHWD},
	{ZYDIS_MNEMONIC_PUNPCKHDQ, I_PUNPCKHDQ}, {ZYDIS_MNEMONIC_PUNPCKHQDQ, I_PUNPCKHQDQ},
	{ZYDIS_MNEMONIC_PAND, I_PAND}, {ZYDIS_MNEMONIC_PANDN, I_PANDN},
	{ZYDIS_MNEMONIC_POR, I_POR}, {ZYDIS_MNEMONIC_PXOR, I_PXOR},
	{ZYDIS_MNEMONIC_PSHUFB, I_PSHUFB},
	{ZYDIS_MNEMONIC_PHADDW, I_PHADDW}, {ZYDIS_MNEMONIC_PHADDD, I_PHADDD},
	{ZYDIS_MNEMONIC_PHADDSW, I_PHADDSW}, {ZYDIS_MNEMONIC_PHSUBW, I_PHSUBW},
	{ZYDIS_MNEMONIC_PHSUBD, I_PHSUBD}, {ZYDIS_MNEMONIC_PHSUBSW, I_PHSUBSW},
	{ZYDIS_MNEMONIC_PABSB, I_PABSB}, {ZYDIS_MNEMONIC_PABSW, I_PABSW},
	{ZYDIS_MNEMONIC_PABSD, I_PABSD}, {ZYDIS_MNEMONIC_PMADDUBSW, I_PMADDUBSW},
	{ZYDIS_MNEMONIC_PMULHRSW, I_PMULHRSW},
	{ZYDIS_MNEMONIC_PSIGNB, I_PSIGNB}, {ZYDIS_MNEMONIC_PSIGNW, I_PSIGNW},
	{ZYDIS_MNEMONIC_PSIGND, I_PSIGND},
};

void bt_sse_int_init(void)
{
	for (size_t i = 0; i < sizeof(iop_table) / sizeof(iop_table[0]); i++) {
		iop_of[iop_table[i].m] = (uint8_t)iop_table[i].op;
		bt_exec_register(iop_table[i].m, int_binop);
	}
	static const ZydisMnemonic shifts[] = {
		ZYDIS_MNEMONIC_PSLLW, ZYDIS_MNEMONIC_PSLLD, ZYDIS_MNEMONIC_PSLLQ,
		ZYDIS_MNEMONIC_PSRLW, ZYDIS_MNEMONIC_PSRLD, ZYDIS_MNEMONIC_PSRLQ,
		ZYDIS_MNEMONIC_PSRAW, ZYDIS_MNEMONIC_PSRAD, ZYDIS_MNEMONIC_PSLLDQ,
		ZYDIS_MNEMONIC_PSRLDQ,
	};
	for (size_t i = 0; i < sizeof(shifts) / sizeof(shifts[0]); i++)
		bt_exec_register(shifts[i], int_shift);
	bt_exec_register(ZYDIS_MNEMONIC_PSHUFD, int_pshuf);
	bt_exec_register(ZYDIS_MNEMONIC_PSHUFHW, int_pshuf);
	bt_exec_register(ZYDIS_MNEMONIC_PSHUFLW, int_pshuf);
	bt_exec_register(ZYDIS_MNEMONIC_PSHUFW, int_pshuf);
	bt_exec_register(ZYDIS_MNEMONIC_PALIGNR, int_palignr);
	bt_exec_register(ZYDIS_MNEMONIC_PEXTRW, int_pextrw);
	bt_exec_register(ZYDIS_MNEMONIC_PINSRW, int_pinsrw);
	bt_exec_register(ZYDIS_MNEMONIC_PMOVMSKB, int_pmovmskb);
	bt_exec_register(ZYDIS_MNEMONIC_MOVD, int_movdq);
	bt_exec_register(ZYDIS_MNEMONIC_MOVQ, int_movdq);
	bt_exec_register(ZYDIS_MNEMONIC_MOVQ2DQ, int_movq2dq);
	bt_exec_register(ZYDIS_MNEMONIC_MOVDQ2Q, int_movq2dq);
	bt_exec_register(ZYDIS_MNEMONIC_MOVNTQ, int_movntq);
	bt_exec_register(ZYDIS_MNEMONIC_MOVNTI, int_movnti);
	bt_exec_register(ZYDIS_MNEMONIC_MASKMOVQ, int_maskmov);
	bt_exec_register(ZYDIS_MNEMONIC_MASKMOVDQU, int_maskmov);
	bt_exec_register(ZYDIS_MNEMONIC_EMMS, int_emms);
}

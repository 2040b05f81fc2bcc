/*
 * fpu_gen.c — random machine states and x87/MMX/SSE instruction encodings
 * for the bt FPU differential tests (fpu_diff.c against the handlers alone,
 * test_bt_fpu_engine.c through the whole engine).
 */
#include <stdio.h>
#include <string.h>

#include "fpu_gen.h"

#define rnd fpu_gen_rnd

/* ---- random values ---- */

uint64_t fpu_gen_rng;

uint64_t fpu_gen_rnd(void)
{
	uint64_t z = (fpu_gen_rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static unsigned rn(unsigned n)
{
	return (unsigned)(rnd() % n);
}

static void gen_x87(uint8_t out[10])
{
	uint64_t m = rnd();
	uint16_t se = (uint16_t)(rn(2) << 15);
	unsigned exp;
	switch (rn(14)) {
	case 0: exp = 0; m = 0; break;                              /* zero */
	case 1: exp = 0x7fff; m = 1ull << 63; break;                /* inf */
	case 2: exp = 0x7fff; m |= 3ull << 62; break;               /* QNaN */
	case 3: exp = 0x7fff; m = (m & ~(3ull << 62)) | 1ull << 63 | 1; break; /* SNaN */
	case 4: exp = 0; m &= ~(1ull << 63); break;                 /* denormal */
	case 5: exp = 0; m |= 1ull << 63; break;                    /* pseudo-denormal */
	case 6: exp = 1 + rn(0x7ffe); m &= ~(1ull << 63); break;    /* unnormal */
	case 7: exp = 1 + rn(0x7ffe); m |= 1ull << 63; break;       /* any normal */
	case 8: {                                                   /* an integer */
		long double v = (long double)(int64_t)(rnd() >> rn(64));
		memcpy(out, &v, 10);
		return;
	}
	case 9: exp = 0x3fff + 62 + rn(3); m |= 1ull << 63; break;  /* near int64 limits */
	case 10: exp = 0x3fff + 30 + rn(3); m |= 1ull << 63; break; /* near int32 limits */
	default: exp = 0x3fff - 8 + rn(16); m |= 1ull << 63; break;
	}
	se |= (uint16_t)exp;
	memcpy(out, &m, 8);
	memcpy(out + 8, &se, 2);
}

static uint32_t gen_f32(void)
{
	uint32_t s = (uint32_t)rn(2) << 31, r = (uint32_t)rnd();
	switch (rn(12)) {
	case 0: return s;
	case 1: return s | 0x7f800000u;
	case 2: return s | 0x7fc00000u | (r & 0x3fffff);
	case 3: return s | 0x7f800000u | ((r & 0x3fffff) | 1);
	case 4: return s | (r & 0x7fffff);
	case 5: return r;
	case 6: { float f = (float)(int32_t)((int32_t)r >> rn(32)); uint32_t u; memcpy(&u, &f, 4); return u; }
	case 7: return s | (uint32_t)(127 + 30 + rn(3)) << 23 | (r & 0x7fffff);
	case 8: return s | (uint32_t)(127 + 62 + rn(3)) << 23 | (r & 0x7fffff);
	default: return s | (uint32_t)(127 - 10 + rn(20)) << 23 | (r & 0x7fffff);
	}
}

static uint64_t gen_f64(void)
{
	uint64_t s = (uint64_t)rn(2) << 63, r = rnd();
	switch (rn(12)) {
	case 0: return s;
	case 1: return s | 0x7ff0000000000000ull;
	case 2: return s | 0x7ff8000000000000ull | (r & 0x7ffffffffffffull);
	case 3: return s | 0x7ff0000000000000ull | ((r & 0x7ffffffffffffull) | 1);
	case 4: return s | (r & 0xfffffffffffffull);
	case 5: return r;
	case 6: { double f = (double)(int64_t)((int64_t)r >> rn(64)); uint64_t u; memcpy(&u, &f, 8); return u; }
	case 7: return s | (uint64_t)(1023 + 30 + rn(3)) << 52 | (r & 0xfffffffffffffull);
	case 8: return s | (uint64_t)(1023 + 62 + rn(3)) << 52 | (r & 0xfffffffffffffull);
	default: return s | (uint64_t)(1023 - 10 + rn(20)) << 52 | (r & 0xfffffffffffffull);
	}
}

static void gen_vec(uint8_t *p, unsigned len)
{
	switch (rn(4)) {
	case 0:
		for (unsigned i = 0; i + 4 <= len; i += 4) { uint32_t v = gen_f32(); memcpy(p + i, &v, 4); }
		break;
	case 1:
		for (unsigned i = 0; i + 8 <= len; i += 8) { uint64_t v = gen_f64(); memcpy(p + i, &v, 8); }
		break;
	case 2:
		for (unsigned i = 0; i < len; i++) p[i] = (uint8_t)rnd();
		break;
	default:   /* small and edge integers */
		for (unsigned i = 0; i < len; i++) {
			static const uint8_t e[] = {0, 1, 0x7f, 0x80, 0xff, 0xfe, 0x81, 0x40};
			p[i] = rn(2) ? e[rn(8)] : (uint8_t)rnd();
		}
		break;
	}
}

/* ---- instruction templates ---- */

enum {
	F_IMM = 1, F_REG_GPR = 2, F_RM_GPR = 4, F_NOMEM = 8, F_MEMONLY = 16, F_W = 32,
	F_REG_MMX = 64, F_RM_MMX = 128, F_NOMODRM = 256, F_FIXREG = 512, F_NOREX = 1024,
};

struct tmpl {
	const char *name;
	uint8_t pfx, map, opc;
	uint16_t f;
	uint8_t reg;   /* F_FIXREG: ModRM.reg */
};

#define MMXSSE(n, o) {n, 0, 1, o, F_REG_MMX | F_RM_MMX, 0}, {n, 0x66, 1, o, 0, 0}
#define SSSE3(n, o) {n, 0, 2, o, F_REG_MMX | F_RM_MMX, 0}, {n, 0x66, 2, o, 0, 0}

static const struct tmpl sse_tmpl[] = {
	/* arithmetic, ps pd ss sd */
#define ARITH4(n, o) {n "ps", 0, 1, o, 0, 0}, {n "pd", 0x66, 1, o, 0, 0}, {n "ss", 0xf3, 1, o, 0, 0}, {n "sd", 0xf2, 1, o, 0, 0}
	ARITH4("add", 0x58), ARITH4("mul", 0x59), ARITH4("sub", 0x5c), ARITH4("min", 0x5d),
	ARITH4("div", 0x5e), ARITH4("max", 0x5f), ARITH4("sqrt", 0x51),
	{"cmpps", 0, 1, 0xc2, F_IMM, 0}, {"cmppd", 0x66, 1, 0xc2, F_IMM, 0},
	{"cmpss", 0xf3, 1, 0xc2, F_IMM, 0}, {"cmpsd", 0xf2, 1, 0xc2, F_IMM, 0},
	{"rsqrtps", 0, 1, 0x52, 0, 0}, {"rsqrtss", 0xf3, 1, 0x52, 0, 0},
	{"rcpps", 0, 1, 0x53, 0, 0}, {"rcpss", 0xf3, 1, 0x53, 0, 0},
	{"andps", 0, 1, 0x54, 0, 0}, {"andpd", 0x66, 1, 0x54, 0, 0},
	{"andnps", 0, 1, 0x55, 0, 0}, {"andnpd", 0x66, 1, 0x55, 0, 0},
	{"orps", 0, 1, 0x56, 0, 0}, {"orpd", 0x66, 1, 0x56, 0, 0},
	{"xorps", 0, 1, 0x57, 0, 0}, {"xorpd", 0x66, 1, 0x57, 0, 0},
	{"cvtps2pd", 0, 1, 0x5a, 0, 0}, {"cvtpd2ps", 0x66, 1, 0x5a, 0, 0},
	{"cvtss2sd", 0xf3, 1, 0x5a, 0, 0}, {"cvtsd2ss", 0xf2, 1, 0x5a, 0, 0},
	{"cvtdq2ps", 0, 1, 0x5b, 0, 0}, {"cvtps2dq", 0x66, 1, 0x5b, 0, 0},
	{"cvttps2dq", 0xf3, 1, 0x5b, 0, 0}, {"cvttpd2dq", 0x66, 1, 0xe6, 0, 0},
	{"cvtdq2pd", 0xf3, 1, 0xe6, 0, 0}, {"cvtpd2dq", 0xf2, 1, 0xe6, 0, 0},
	{"unpcklps", 0, 1, 0x14, 0, 0}, {"unpcklpd", 0x66, 1, 0x14, 0, 0},
	{"unpckhps", 0, 1, 0x15, 0, 0}, {"unpckhpd", 0x66, 1, 0x15, 0, 0},
	{"shufps", 0, 1, 0xc6, F_IMM, 0}, {"shufpd", 0x66, 1, 0xc6, F_IMM, 0},
	{"ucomiss", 0, 1, 0x2e, 0, 0}, {"ucomisd", 0x66, 1, 0x2e, 0, 0},
	{"comiss", 0, 1, 0x2f, 0, 0}, {"comisd", 0x66, 1, 0x2f, 0, 0},
	{"haddpd", 0x66, 1, 0x7c, 0, 0}, {"haddps", 0xf2, 1, 0x7c, 0, 0},
	{"hsubpd", 0x66, 1, 0x7d, 0, 0}, {"hsubps", 0xf2, 1, 0x7d, 0, 0},
	{"addsubpd", 0x66, 1, 0xd0, 0, 0}, {"addsubps", 0xf2, 1, 0xd0, 0, 0},
	/* conversions with GPRs and MMX */
	{"cvtsi2ss", 0xf3, 1, 0x2a, F_RM_GPR, 0}, {"cvtsi2sd", 0xf2, 1, 0x2a, F_RM_GPR, 0},
	{"cvtsi2ss q", 0xf3, 1, 0x2a, F_RM_GPR | F_W, 0}, {"cvtsi2sd q", 0xf2, 1, 0x2a, F_RM_GPR | F_W, 0},
	{"cvttss2si", 0xf3, 1, 0x2c, F_REG_GPR, 0}, {"cvtss2si", 0xf3, 1, 0x2d, F_REG_GPR, 0},
	{"cvttsd2si", 0xf2, 1, 0x2c, F_REG_GPR, 0}, {"cvtsd2si", 0xf2, 1, 0x2d, F_REG_GPR, 0},
	{"cvttss2si q", 0xf3, 1, 0x2c, F_REG_GPR | F_W, 0}, {"cvtss2si q", 0xf3, 1, 0x2d, F_REG_GPR | F_W, 0},
	{"cvttsd2si q", 0xf2, 1, 0x2c, F_REG_GPR | F_W, 0}, {"cvtsd2si q", 0xf2, 1, 0x2d, F_REG_GPR | F_W, 0},
	{"cvtpi2ps", 0, 1, 0x2a, F_RM_MMX, 0}, {"cvtpi2pd", 0x66, 1, 0x2a, F_RM_MMX, 0},
	{"cvttps2pi", 0, 1, 0x2c, F_REG_MMX, 0}, {"cvtps2pi", 0, 1, 0x2d, F_REG_MMX, 0},
	{"cvttpd2pi", 0x66, 1, 0x2c, F_REG_MMX, 0}, {"cvtpd2pi", 0x66, 1, 0x2d, F_REG_MMX, 0},
	/* moves */
	{"movups", 0, 1, 0x10, 0, 0}, {"movups st", 0, 1, 0x11, 0, 0},
	{"movupd", 0x66, 1, 0x10, 0, 0}, {"movupd st", 0x66, 1, 0x11, 0, 0},
	{"movss", 0xf3, 1, 0x10, 0, 0}, {"movss st", 0xf3, 1, 0x11, 0, 0},
	{"movsd", 0xf2, 1, 0x10, 0, 0}, {"movsd st", 0xf2, 1, 0x11, 0, 0},
	{"movlps/movhlps", 0, 1, 0x12, 0, 0}, {"movlpd", 0x66, 1, 0x12, F_MEMONLY, 0},
	{"movlps st", 0, 1, 0x13, F_MEMONLY, 0}, {"movlpd st", 0x66, 1, 0x13, F_MEMONLY, 0},
	{"movhps/movlhps", 0, 1, 0x16, 0, 0}, {"movhpd", 0x66, 1, 0x16, F_MEMONLY, 0},
	{"movhps st", 0, 1, 0x17, F_MEMONLY, 0}, {"movhpd st", 0x66, 1, 0x17, F_MEMONLY, 0},
	{"movaps", 0, 1, 0x28, 0, 0}, {"movaps st", 0, 1, 0x29, 0, 0},
	{"movapd", 0x66, 1, 0x28, 0, 0}, {"movapd st", 0x66, 1, 0x29, 0, 0},
	{"movntps", 0, 1, 0x2b, F_MEMONLY, 0}, {"movntpd", 0x66, 1, 0x2b, F_MEMONLY, 0},
	{"movmskps", 0, 1, 0x50, F_REG_GPR | F_NOMEM, 0}, {"movmskpd", 0x66, 1, 0x50, F_REG_GPR | F_NOMEM, 0},
	{"movddup", 0xf2, 1, 0x12, 0, 0}, {"movsldup", 0xf3, 1, 0x12, 0, 0},
	{"movshdup", 0xf3, 1, 0x16, 0, 0}, {"lddqu", 0xf2, 1, 0xf0, F_MEMONLY, 0},
	{"movdqa", 0x66, 1, 0x6f, 0, 0}, {"movdqu", 0xf3, 1, 0x6f, 0, 0},
	{"movdqa st", 0x66, 1, 0x7f, 0, 0}, {"movdqu st", 0xf3, 1, 0x7f, 0, 0},
	{"movntdq", 0x66, 1, 0xe7, F_MEMONLY, 0}, {"movntq", 0, 1, 0xe7, F_MEMONLY | F_REG_MMX, 0},
	{"movq xmm/m64,xmm", 0x66, 1, 0xd6, 0, 0}, {"movq xmm,xmm/m64", 0xf3, 1, 0x7e, 0, 0},
	{"movq2dq", 0xf3, 1, 0xd6, F_RM_MMX | F_NOMEM, 0}, {"movdq2q", 0xf2, 1, 0xd6, F_REG_MMX | F_NOMEM, 0},
	{"movd mm,r/m32", 0, 1, 0x6e, F_REG_MMX | F_RM_GPR, 0}, {"movd r/m32,mm", 0, 1, 0x7e, F_REG_MMX | F_RM_GPR, 0},
	{"movq mm,r/m64", 0, 1, 0x6e, F_REG_MMX | F_RM_GPR | F_W, 0}, {"movq r/m64,mm", 0, 1, 0x7e, F_REG_MMX | F_RM_GPR | F_W, 0},
	{"movd xmm,r/m32", 0x66, 1, 0x6e, F_RM_GPR, 0}, {"movd r/m32,xmm", 0x66, 1, 0x7e, F_RM_GPR, 0},
	{"movq xmm,r/m64", 0x66, 1, 0x6e, F_RM_GPR | F_W, 0}, {"movq r/m64,xmm", 0x66, 1, 0x7e, F_RM_GPR | F_W, 0},
	{"movq mm,mm/m64", 0, 1, 0x6f, F_REG_MMX | F_RM_MMX, 0}, {"movq mm/m64,mm", 0, 1, 0x7f, F_REG_MMX | F_RM_MMX, 0},
	{"movnti", 0, 1, 0xc3, F_REG_GPR | F_MEMONLY, 0}, {"movnti q", 0, 1, 0xc3, F_REG_GPR | F_MEMONLY | F_W, 0},
	{"maskmovdqu", 0x66, 1, 0xf7, F_NOMEM, 0}, {"maskmovq", 0, 1, 0xf7, F_NOMEM | F_REG_MMX | F_RM_MMX, 0},
	{"ldmxcsr", 0, 1, 0xae, F_FIXREG | F_MEMONLY, 2}, {"stmxcsr", 0, 1, 0xae, F_FIXREG | F_MEMONLY, 3},
	{"fxsave", 0, 1, 0xae, F_FIXREG | F_MEMONLY | F_NOREX, 0}, {"fxrstor", 0, 1, 0xae, F_FIXREG | F_MEMONLY | F_NOREX, 1},
	{"fxsave64", 0, 1, 0xae, F_FIXREG | F_MEMONLY | F_W | F_NOREX, 0},
	{"fxrstor64", 0, 1, 0xae, F_FIXREG | F_MEMONLY | F_W | F_NOREX, 1},
	{"emms", 0, 1, 0x77, F_NOMODRM, 0},
	/* packed integer, MMX and SSE2 forms */
	MMXSSE("punpcklbw", 0x60), MMXSSE("punpcklwd", 0x61), MMXSSE("punpckldq", 0x62),
	MMXSSE("packsswb", 0x63), MMXSSE("pcmpgtb", 0x64), MMXSSE("pcmpgtw", 0x65),
	MMXSSE("pcmpgtd", 0x66), MMXSSE("packuswb", 0x67), MMXSSE("punpckhbw", 0x68),
	MMXSSE("punpckhwd", 0x69), MMXSSE("punpckhdq", 0x6a), MMXSSE("packssdw", 0x6b),
	{"punpcklqdq", 0x66, 1, 0x6c, 0, 0}, {"punpckhqdq", 0x66, 1, 0x6d, 0, 0},
	MMXSSE("pcmpeqb", 0x74), MMXSSE("pcmpeqw", 0x75), MMXSSE("pcmpeqd", 0x76),
	MMXSSE("psrlw", 0xd1), MMXSSE("psrld", 0xd2), MMXSSE("psrlq", 0xd3), MMXSSE("paddq", 0xd4),
	MMXSSE("pmullw", 0xd5), MMXSSE("psubusb", 0xd8), MMXSSE("psubusw", 0xd9),
	MMXSSE("pminub", 0xda), MMXSSE("pand", 0xdb), MMXSSE("paddusb", 0xdc), MMXSSE("paddusw", 0xdd),
	MMXSSE("pmaxub", 0xde), MMXSSE("pandn", 0xdf), MMXSSE("pavgb", 0xe0), MMXSSE("psraw", 0xe1),
	MMXSSE("psrad", 0xe2), MMXSSE("pavgw", 0xe3), MMXSSE("pmulhuw", 0xe4), MMXSSE("pmulhw", 0xe5),
	MMXSSE("psubsb", 0xe8), MMXSSE("psubsw", 0xe9), MMXSSE("pminsw", 0xea), MMXSSE("por", 0xeb),
	MMXSSE("paddsb", 0xec), MMXSSE("paddsw", 0xed), MMXSSE("pmaxsw", 0xee), MMXSSE("pxor", 0xef),
	MMXSSE("psllw", 0xf1), MMXSSE("pslld", 0xf2), MMXSSE("psllq", 0xf3), MMXSSE("pmuludq", 0xf4),
	MMXSSE("pmaddwd", 0xf5), MMXSSE("psadbw", 0xf6), MMXSSE("psubb", 0xf8), MMXSSE("psubw", 0xf9),
	MMXSSE("psubd", 0xfa), MMXSSE("psubq", 0xfb), MMXSSE("paddb", 0xfc), MMXSSE("paddw", 0xfd),
	MMXSSE("paddd", 0xfe),
	{"pmovmskb mm", 0, 1, 0xd7, F_REG_GPR | F_RM_MMX | F_NOMEM, 0},
	{"pmovmskb xmm", 0x66, 1, 0xd7, F_REG_GPR | F_NOMEM, 0},
	{"pshufw", 0, 1, 0x70, F_REG_MMX | F_RM_MMX | F_IMM, 0}, {"pshufd", 0x66, 1, 0x70, F_IMM, 0},
	{"pshufhw", 0xf3, 1, 0x70, F_IMM, 0}, {"pshuflw", 0xf2, 1, 0x70, F_IMM, 0},
#define SHIFTI(n, o, r) {n " mm,imm", 0, 1, o, F_RM_MMX | F_NOMEM | F_FIXREG | F_IMM, r}, \
	{n " xmm,imm", 0x66, 1, o, F_NOMEM | F_FIXREG | F_IMM, r}
	SHIFTI("psrlw", 0x71, 2), SHIFTI("psraw", 0x71, 4), SHIFTI("psllw", 0x71, 6),
	SHIFTI("psrld", 0x72, 2), SHIFTI("psrad", 0x72, 4), SHIFTI("pslld", 0x72, 6),
	SHIFTI("psrlq", 0x73, 2), SHIFTI("psllq", 0x73, 6),
	{"psrldq", 0x66, 1, 0x73, F_NOMEM | F_FIXREG | F_IMM, 3},
	{"pslldq", 0x66, 1, 0x73, F_NOMEM | F_FIXREG | F_IMM, 7},
	{"pinsrw mm", 0, 1, 0xc4, F_REG_MMX | F_RM_GPR | F_IMM, 0}, {"pinsrw xmm", 0x66, 1, 0xc4, F_RM_GPR | F_IMM, 0},
	{"pextrw mm", 0, 1, 0xc5, F_REG_GPR | F_RM_MMX | F_IMM | F_NOMEM, 0},
	{"pextrw xmm", 0x66, 1, 0xc5, F_REG_GPR | F_IMM | F_NOMEM, 0},
	/* SSSE3 */
	SSSE3("pshufb", 0x00), SSSE3("phaddw", 0x01), SSSE3("phaddd", 0x02), SSSE3("phaddsw", 0x03),
	SSSE3("pmaddubsw", 0x04), SSSE3("phsubw", 0x05), SSSE3("phsubd", 0x06), SSSE3("phsubsw", 0x07),
	SSSE3("psignb", 0x08), SSSE3("psignw", 0x09), SSSE3("psignd", 0x0a), SSSE3("pmulhrsw", 0x0b),
	SSSE3("pabsb", 0x1c), SSSE3("pabsw", 0x1d), SSSE3("pabsd", 0x1e),
	{"palignr mm", 0, 3, 0x0f, F_REG_MMX | F_RM_MMX | F_IMM, 0}, {"palignr xmm", 0x66, 3, 0x0f, F_IMM, 0},
};
#define NSSE (sizeof(sse_tmpl) / sizeof(sse_tmpl[0]))

/* Encode a template; returns the length.  Memory operands are [rbx]. */
static unsigned encode_sse(const struct tmpl *t, uint8_t *b, bool *is_mem)
{
	unsigned n = 0;
	bool mem = !(t->f & F_NOMEM) && ((t->f & F_MEMONLY) || rn(3) == 0);
	unsigned reg = (t->f & F_FIXREG) ? t->reg : (t->f & F_REG_GPR) ? rn(3) : rn(8);
	unsigned rm = (t->f & F_RM_GPR) ? rn(3) : rn(8);
	unsigned rex = 0x40;
	if (t->f & F_W)
		rex |= 8;
	if (!(t->f & (F_REG_GPR | F_REG_MMX | F_FIXREG | F_NOREX)) && rn(3) == 0)
		rex |= 4;
	if (!mem && !(t->f & (F_RM_GPR | F_RM_MMX | F_NOREX)) && rn(3) == 0)
		rex |= 1;
	if (t->pfx)
		b[n++] = t->pfx;
	if (rex != 0x40)
		b[n++] = (uint8_t)rex;
	b[n++] = 0x0f;
	if (t->map == 2)
		b[n++] = 0x38;
	else if (t->map == 3)
		b[n++] = 0x3a;
	b[n++] = t->opc;
	if (!(t->f & F_NOMODRM))
		b[n++] = (uint8_t)(mem ? (reg << 3 | 3) : (0xc0 | reg << 3 | rm));
	if (t->f & F_IMM)
		b[n++] = (uint8_t)(rn(4) == 0 ? rnd() : rn(2) ? rn(8) : rn(40));
	*is_mem = mem && !(t->f & F_NOMODRM);
	return n;
}

/* x87: every memory form and every register form Zydis accepts. */
static unsigned encode_x87(uint8_t *b, bool *is_mem, const ZydisDecoder *dec)
{
	for (;;) {
		unsigned op = 0xd8 + rn(8);
		if (rn(2)) {
			unsigned reg = rn(8);
			if ((op == 0xd9 && reg == 1) || (op == 0xdb && (reg == 4 || reg == 6)) ||
			    (op == 0xdd && reg == 5))
				continue;
			b[0] = (uint8_t)op;
			b[1] = (uint8_t)(reg << 3 | 3);
			*is_mem = true;
			return 2;
		}
		b[0] = (uint8_t)op;
		b[1] = (uint8_t)(0xc0 + rn(64));
		ZydisDecodedInstruction zi;
		ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
		if (ZYAN_FAILED(ZydisDecoderDecodeFull(dec, b, 2, &zi, ops)))
			continue;
		*is_mem = false;
		return 2;
	}
}

void fpu_gen_state(struct fpu_gen_state *s, unsigned *off)
{
	uint8_t *fx = s->fx;
	memset(s, 0, sizeof(*s));
	uint16_t fcw = 0x0040 | 0x3f | (uint16_t)(rn(4) << 10) | (uint16_t)((rn(3) == 0 ? 0 : rn(2) ? 3 : 2) << 8);
	if (rn(8) == 0)
		fcw = (uint16_t)((fcw & ~0x3fu) | rn(64));
	uint16_t fsw = (uint16_t)(rn(8) << 11 | (rnd() & 0x4700) | (rnd() & fcw & 0x3f));
	uint8_t ftw = 0;
	for (unsigned i = 0; i < 8; i++)
		if (rn(5))
			ftw |= (uint8_t)(1u << i);
	memcpy(fx, &fcw, 2);
	memcpy(fx + 2, &fsw, 2);
	fx[4] = ftw;
	uint32_t mxcsr = 0x1f80 | (uint32_t)rn(4) << 13 | (rn(2) ? 0x40u : 0) | (rn(4) == 0 ? 0x8000u : 0);
	if (rn(8) == 0)
		mxcsr = (mxcsr & ~0x1f80u) | (uint32_t)rn(64) << 7;
	mxcsr |= (uint32_t)rnd() & (mxcsr >> 7) & 0x3f;
	memcpy(fx + 24, &mxcsr, 4);
	uint32_t mask = 0xffff;
	memcpy(fx + 28, &mask, 4);
	for (unsigned i = 0; i < 8; i++)
		gen_x87(fx + 32 + 16 * i);
	for (unsigned i = 0; i < 16; i++)
		gen_vec(fx + 160 + 16 * i, 16);
	s->rax = rn(2) ? rnd() : (uint64_t)(int64_t)(int32_t)rnd() >> rn(32);
	s->rcx = rnd();
	s->rdx = rn(2) ? rnd() : rn(100);
	s->flags = rnd() & 0x8d5;
	for (unsigned i = 0; i < FPU_GEN_MEMSZ; i += 16)
		gen_vec(s->mem + i, 16);
	*off = rn(6) == 0 ? 8 * (1 + rn(3)) : 16 * (1 + rn(4));
	/* an x87 value where an m80 operand would be read */
	gen_x87(s->mem + *off);
	if (rn(2)) {   /* a sensible MXCSR / environment for LDMXCSR / FLDENV */
		uint32_t v = (uint32_t)(rn(8) ? 0x1f80 | rn(4) << 13 : rnd());
		memcpy(s->mem + *off, &v, 4);
	}
}


unsigned fpu_gen_insn(const ZydisDecoder *dec, uint8_t insn[16], bool *is_mem, const char **name)
{
	if (rn(3) == 0) {
		*name = "x87";
		return encode_x87(insn, is_mem, dec);
	}
	const struct tmpl *t = &sse_tmpl[rn(NSSE)];
	*name = t->name;
	return encode_sse(t, insn, is_mem);
}

void fpu_gen_mem_skip(const uint8_t *insn, bool is_mem, ZydisMnemonic m, unsigned *lo, unsigned *hi)
{
	*lo = *hi = 0;
	/* FNSTENV/FNSAVE and FXSAVE store FIP/FDP/FOP, host addresses natively */
	if (is_mem && (insn[0] == 0xd9 || insn[0] == 0xdd) && ((insn[1] >> 3) & 7) == 6) {
		*lo = 12;
		*hi = 28;
	}
	if (m == ZYDIS_MNEMONIC_FXSAVE || m == ZYDIS_MNEMONIC_FXSAVE64) {
		*lo = 6;
		*hi = 24;
	}
}

/*
 * bt_sse.c — SSE, SSE2 and SSE3 floating point, data moves, MXCSR, FXSAVE/
 * FXRSTOR and the cache-control no-ops for the bt engine.  Packed integer
 * instructions (MMX, SSE2, SSSE3) live in bt_sse_int.c.
 *
 * Floating-point results come from the host's own SSE unit: each operation
 * runs in one asm statement that loads the guest's MXCSR (rounding, DAZ,
 * FTZ; all exceptions masked), executes the instruction on register copies
 * and reads the flags back, so results are bit-exact.  Unmasked guest
 * exceptions are then raised as #XM (#UD without CR4.OSXMMEXCPT) with the
 * destination left unwritten, as SIMD exceptions are precise.
 */
#include <string.h>

#include <emmintrin.h>

#include "bt.h"
#include "bt_fpu.h"

typedef union {
	uint8_t b[16];
	uint32_t d[4];
	uint64_t q[2];
	__m128i v;
} xmmv;

/* ---- shared checks and operand access ---- */

void bt_sse_check(struct bt_cpu *cpu)
{
	if ((cpu->cr0 & BT_CR0_EM) || !(cpu->cr4 & BT_CR4_OSFXSR))
		bt_raise_ud(cpu);
	if (cpu->cr0 & BT_CR0_TS)
		bt_raise(cpu, BT_NM, 0, false);
}

_Noreturn void bt_sse_raise_xm(struct bt_cpu *cpu)
{
	if (cpu->cr4 & BT_CR4_OSXMMEXCPT)
		bt_raise(cpu, BT_XM, 0, false);
	bt_raise_ud(cpu);
}

bool bt_fpu_is_xmm(const struct bt_insn *in, unsigned idx)
{
	const ZydisDecodedOperand *o = &in->ops[idx];
	return o->type == ZYDIS_OPERAND_TYPE_REGISTER &&
	       o->reg.value >= ZYDIS_REGISTER_XMM0 && o->reg.value <= ZYDIS_REGISTER_XMM15;
}

bool bt_fpu_is_mmx(const struct bt_insn *in, unsigned idx)
{
	const ZydisDecodedOperand *o = &in->ops[idx];
	return o->type == ZYDIS_OPERAND_TYPE_REGISTER &&
	       o->reg.value >= ZYDIS_REGISTER_MM0 && o->reg.value <= ZYDIS_REGISTER_MM7;
}

static uint64_t mem_addr(struct bt_cpu *cpu, const struct bt_insn *in, unsigned idx,
                         unsigned len, bool align, enum bt_sreg *s)
{
	*s = bt_op_seg(in, idx);
	uint64_t ea = bt_op_ea(cpu, in, idx);
	if (align && len == 16 && ((cpu->seg[*s].base + ea) & 15u))
		bt_raise_gp(cpu, 0);
	return ea;
}

void bt_fpu_read(struct bt_cpu *cpu, const struct bt_insn *in, unsigned idx,
                 void *buf, unsigned len, bool align)
{
	const ZydisDecodedOperand *o = &in->ops[idx];
	memset(buf, 0, len);
	if (o->type == ZYDIS_OPERAND_TYPE_MEMORY) {
		enum bt_sreg s;
		uint64_t ea = mem_addr(cpu, in, idx, len, align, &s);
		bt_mem_read_buf(cpu, s, ea, buf, len);
	} else if (bt_fpu_is_xmm(in, idx)) {
		memcpy(buf, cpu->xmm[o->reg.value - ZYDIS_REGISTER_XMM0], len > 16 ? 16 : len);
	} else if (bt_fpu_is_mmx(in, idx)) {
		uint64_t v = bt_mmx_get(cpu, o->reg.value - ZYDIS_REGISTER_MM0);
		memcpy(buf, &v, len > 8 ? 8 : len);
	} else {
		uint64_t v = bt_op_read(cpu, in, idx);
		memcpy(buf, &v, len > 8 ? 8 : len);
	}
}

void bt_fpu_write(struct bt_cpu *cpu, const struct bt_insn *in, unsigned idx,
                  const void *buf, unsigned len, bool align)
{
	const ZydisDecodedOperand *o = &in->ops[idx];
	if (o->type == ZYDIS_OPERAND_TYPE_MEMORY) {
		enum bt_sreg s;
		uint64_t ea = mem_addr(cpu, in, idx, len, align, &s);
		bt_mem_write_buf(cpu, s, ea, buf, len);
	} else if (bt_fpu_is_xmm(in, idx)) {
		memcpy(cpu->xmm[o->reg.value - ZYDIS_REGISTER_XMM0], buf, len > 16 ? 16 : len);
	} else if (bt_fpu_is_mmx(in, idx)) {
		uint64_t v = 0;
		memcpy(&v, buf, len > 8 ? 8 : len);
		bt_mmx_set(cpu, o->reg.value - ZYDIS_REGISTER_MM0, v);
	} else {
		uint64_t v = 0;
		memcpy(&v, buf, len > 8 ? 8 : len);
		bt_op_write(cpu, in, idx, v);
	}
}

static unsigned op_bytes(const struct bt_insn *in, unsigned idx)
{
	const ZydisDecodedOperand *o = &in->ops[idx];
	if (o->type == ZYDIS_OPERAND_TYPE_MEMORY)
		return o->size / 8;
	if (bt_fpu_is_xmm(in, idx))
		return 16;
	if (bt_fpu_is_mmx(in, idx))
		return 8;
	return o->size / 8;
}

static inline uint8_t *xreg(struct bt_cpu *cpu, const struct bt_insn *in, unsigned idx)
{
	return cpu->xmm[in->ops[idx].reg.value - ZYDIS_REGISTER_XMM0];
}

/* MXCSR for a host computation: guest rounding/DAZ/FTZ, all masked, flags clear. */
static inline uint32_t host_csr(const struct bt_cpu *cpu)
{
	return (cpu->mxcsr & ~0x3fu) | 0x1f80u;
}

/* Merge new exception flags; raise if any is unmasked (nothing was written yet). */
static void sse_flags(struct bt_cpu *cpu, uint32_t out)
{
	uint32_t f = out & 0x3fu;
	cpu->mxcsr |= f;
	if (f & ~(cpu->mxcsr >> 7) & 0x3fu)
		bt_sse_raise_xm(cpu);
}

/* ---- host operations ---- */

typedef uint32_t (*sse_fn)(xmmv *d, const xmmv *s, uint32_t csr);

#define SSE_BIN(name, insn)                                                          \
	static uint32_t name(xmmv *d, const xmmv *s, uint32_t csr)                   \
	{                                                                            \
		uint32_t save = 0, out;                                              \
		__asm__ volatile("stmxcsr %[sv]\n\tldmxcsr %[c]\n\t" insn " %[s], %[d]\n\t" \
		                 "stmxcsr %[o]\n\tldmxcsr %[sv]"                     \
		                 : [d] "+x"(d->v), [sv] "+m"(save), [o] "=m"(out)    \
		                 : [s] "x"(s->v), [c] "m"(csr));                     \
		return out;                                                          \
	}

SSE_BIN(h_addps, "addps") SSE_BIN(h_addpd, "addpd") SSE_BIN(h_addss, "addss") SSE_BIN(h_addsd, "addsd")
SSE_BIN(h_subps, "subps") SSE_BIN(h_subpd, "subpd") SSE_BIN(h_subss, "subss") SSE_BIN(h_subsd, "subsd")
SSE_BIN(h_mulps, "mulps") SSE_BIN(h_mulpd, "mulpd") SSE_BIN(h_mulss, "mulss") SSE_BIN(h_mulsd, "mulsd")
SSE_BIN(h_divps, "divps") SSE_BIN(h_divpd, "divpd") SSE_BIN(h_divss, "divss") SSE_BIN(h_divsd, "divsd")
SSE_BIN(h_minps, "minps") SSE_BIN(h_minpd, "minpd") SSE_BIN(h_minss, "minss") SSE_BIN(h_minsd, "minsd")
SSE_BIN(h_maxps, "maxps") SSE_BIN(h_maxpd, "maxpd") SSE_BIN(h_maxss, "maxss") SSE_BIN(h_maxsd, "maxsd")
SSE_BIN(h_sqrtps, "sqrtps") SSE_BIN(h_sqrtpd, "sqrtpd") SSE_BIN(h_sqrtss, "sqrtss") SSE_BIN(h_sqrtsd, "sqrtsd")
SSE_BIN(h_rcpps, "rcpps") SSE_BIN(h_rcpss, "rcpss") SSE_BIN(h_rsqrtps, "rsqrtps") SSE_BIN(h_rsqrtss, "rsqrtss")
SSE_BIN(h_andps, "andps") SSE_BIN(h_andnps, "andnps") SSE_BIN(h_orps, "orps") SSE_BIN(h_xorps, "xorps")
SSE_BIN(h_andpd, "andpd") SSE_BIN(h_andnpd, "andnpd") SSE_BIN(h_orpd, "orpd") SSE_BIN(h_xorpd, "xorpd")
SSE_BIN(h_cvtps2pd, "cvtps2pd") SSE_BIN(h_cvtpd2ps, "cvtpd2ps")
SSE_BIN(h_cvtss2sd, "cvtss2sd") SSE_BIN(h_cvtsd2ss, "cvtsd2ss")
SSE_BIN(h_cvtdq2ps, "cvtdq2ps") SSE_BIN(h_cvtps2dq, "cvtps2dq") SSE_BIN(h_cvttps2dq, "cvttps2dq")
SSE_BIN(h_cvtdq2pd, "cvtdq2pd") SSE_BIN(h_cvtpd2dq, "cvtpd2dq") SSE_BIN(h_cvttpd2dq, "cvttpd2dq")
SSE_BIN(h_unpcklps, "unpcklps") SSE_BIN(h_unpckhps, "unpckhps")
SSE_BIN(h_unpcklpd, "unpcklpd") SSE_BIN(h_unpckhpd, "unpckhpd")

/* SSE3 arithmetic, built from SSE2 so the host needs nothing newer: each
 * element is one IEEE operation, so results and flags are those of SSE3. */
static uint32_t h_haddps(xmmv *d, const xmmv *s, uint32_t csr)
{
	xmmv a, b;
	a.d[0] = d->d[0]; a.d[1] = d->d[2]; a.d[2] = s->d[0]; a.d[3] = s->d[2];
	b.d[0] = d->d[1]; b.d[1] = d->d[3]; b.d[2] = s->d[1]; b.d[3] = s->d[3];
	uint32_t f = h_addps(&a, &b, csr);
	*d = a;
	return f;
}

static uint32_t h_hsubps(xmmv *d, const xmmv *s, uint32_t csr)
{
	xmmv a, b;
	a.d[0] = d->d[0]; a.d[1] = d->d[2]; a.d[2] = s->d[0]; a.d[3] = s->d[2];
	b.d[0] = d->d[1]; b.d[1] = d->d[3]; b.d[2] = s->d[1]; b.d[3] = s->d[3];
	uint32_t f = h_subps(&a, &b, csr);
	*d = a;
	return f;
}

static uint32_t h_haddpd(xmmv *d, const xmmv *s, uint32_t csr)
{
	xmmv a, b;
	a.q[0] = d->q[0]; a.q[1] = s->q[0];
	b.q[0] = d->q[1]; b.q[1] = s->q[1];
	uint32_t f = h_addpd(&a, &b, csr);
	*d = a;
	return f;
}

static uint32_t h_hsubpd(xmmv *d, const xmmv *s, uint32_t csr)
{
	xmmv a, b;
	a.q[0] = d->q[0]; a.q[1] = s->q[0];
	b.q[0] = d->q[1]; b.q[1] = s->q[1];
	uint32_t f = h_subpd(&a, &b, csr);
	*d = a;
	return f;
}

static uint32_t h_addsubps(xmmv *d, const xmmv *s, uint32_t csr)
{
	xmmv a = *d, b = *s, x, y;
	/* lanes 0,2 subtract and lanes 1,3 add: two scalar passes per kind */
	uint32_t f = 0;
	for (unsigned i = 0; i < 4; i++) {
		memset(&x, 0, sizeof(x));
		memset(&y, 0, sizeof(y));
		x.d[0] = a.d[i];
		y.d[0] = b.d[i];
		f |= (i & 1) ? h_addss(&x, &y, csr) : h_subss(&x, &y, csr);
		d->d[i] = x.d[0];
	}
	return f;
}

static uint32_t h_addsubpd(xmmv *d, const xmmv *s, uint32_t csr)
{
	xmmv x, y;
	uint32_t f = 0;
	for (unsigned i = 0; i < 2; i++) {
		memset(&x, 0, sizeof(x));
		memset(&y, 0, sizeof(y));
		x.q[0] = d->q[i];
		y.q[0] = s->q[i];
		f |= (i & 1) ? h_addsd(&x, &y, csr) : h_subsd(&x, &y, csr);
		d->q[i] = x.q[0];
	}
	return f;
}

#define CMP_CASE(k, insn, p)                                                       \
	case (k) * 8 + (p):                                                          \
		__asm__ volatile("stmxcsr %[sv]\n\tldmxcsr %[c]\n\t" insn " $" #p ", %[s], %[d]\n\t" \
		                 "stmxcsr %[o]\n\tldmxcsr %[sv]"                     \
		                 : [d] "+x"(d->v), [sv] "+m"(save), [o] "=m"(out)    \
		                 : [s] "x"(s->v), [c] "m"(csr));                     \
		break;
#define CMP_KIND(k, insn) CMP_CASE(k, insn, 0) CMP_CASE(k, insn, 1) CMP_CASE(k, insn, 2) \
	CMP_CASE(k, insn, 3) CMP_CASE(k, insn, 4) CMP_CASE(k, insn, 5) CMP_CASE(k, insn, 6) \
	CMP_CASE(k, insn, 7)

/* kind: 0 cmpps, 1 cmppd, 2 cmpss, 3 cmpsd */
static uint32_t h_cmp(unsigned kind, unsigned pred, xmmv *d, const xmmv *s, uint32_t csr)
{
	uint32_t save = 0, out = 0;
	switch (kind * 8 + (pred & 7)) {
	CMP_KIND(0, "cmpps")
	CMP_KIND(1, "cmppd")
	CMP_KIND(2, "cmpss")
	CMP_KIND(3, "cmpsd")
	default: break;
	}
	return out;
}

/* ---- generic handlers ---- */

static sse_fn fp_fn[ZYDIS_MNEMONIC_MAX_VALUE + 1];

/* Does an arithmetic result hold a denormal in a lane the instruction wrote? */
static bool tiny_result(ZydisMnemonic m, const xmmv *r)
{
	unsigned n32 = 0, n64 = 0;
	switch (m) {
	case ZYDIS_MNEMONIC_ADDPS: case ZYDIS_MNEMONIC_SUBPS: case ZYDIS_MNEMONIC_MULPS:
	case ZYDIS_MNEMONIC_DIVPS: case ZYDIS_MNEMONIC_HADDPS: case ZYDIS_MNEMONIC_HSUBPS:
	case ZYDIS_MNEMONIC_ADDSUBPS:
		n32 = 4; break;
	case ZYDIS_MNEMONIC_ADDPD: case ZYDIS_MNEMONIC_SUBPD: case ZYDIS_MNEMONIC_MULPD:
	case ZYDIS_MNEMONIC_DIVPD: case ZYDIS_MNEMONIC_HADDPD: case ZYDIS_MNEMONIC_HSUBPD:
	case ZYDIS_MNEMONIC_ADDSUBPD:
		n64 = 2; break;
	case ZYDIS_MNEMONIC_ADDSS: case ZYDIS_MNEMONIC_SUBSS: case ZYDIS_MNEMONIC_MULSS:
	case ZYDIS_MNEMONIC_DIVSS: case ZYDIS_MNEMONIC_CVTSD2SS:
		n32 = 1; break;
	case ZYDIS_MNEMONIC_ADDSD: case ZYDIS_MNEMONIC_SUBSD: case ZYDIS_MNEMONIC_MULSD:
	case ZYDIS_MNEMONIC_DIVSD:
		n64 = 1; break;
	case ZYDIS_MNEMONIC_CVTPD2PS:
		n32 = 2; break;
	default:
		return false;
	}
	for (unsigned i = 0; i < n32; i++)
		if (!(r->d[i] & 0x7f800000u) && (r->d[i] & 0x7fffffu))
			return true;
	for (unsigned i = 0; i < n64; i++)
		if (!(r->q[i] & 0x7ff0000000000000ull) && (r->q[i] & 0xfffffffffffffull))
			return true;
	return false;
}

/* op0 = xmm destination, op1 = xmm or memory source (its size from the decoder). */
static void sse_arith(struct bt_cpu *cpu, const struct bt_insn *in)
{
	sse_fn fn = fp_fn[in->zi.mnemonic];
	xmmv d, s;
	bt_sse_check(cpu);
	if (!fn || !bt_fpu_is_xmm(in, 0))
		bt_raise_ud(cpu);
	memset(&s, 0, sizeof(s));
	bt_fpu_read(cpu, in, 1, s.b, op_bytes(in, 1) > 16 ? 16 : op_bytes(in, 1), true);
	memcpy(d.b, xreg(cpu, in, 0), 16);
	uint32_t csr = host_csr(cpu);
	bool um_unmasked = !(cpu->mxcsr & 0x800u);
	if (um_unmasked)
		csr &= ~0x8000u;   /* FTZ applies only while underflow is masked */
	uint32_t out = fn(&d, &s, csr);
	/* Unmasked, underflow is signalled for any tiny result, exact or not;
	 * the masked host run flags only inexact ones. */
	if (um_unmasked && !(out & 0x10u) && tiny_result(in->zi.mnemonic, &d))
		out |= 0x10u;
	sse_flags(cpu, out);
	memcpy(xreg(cpu, in, 0), d.b, 16);
}

static void sse_cmp(struct bt_cpu *cpu, const struct bt_insn *in)
{
	unsigned kind;
	switch (in->zi.mnemonic) {
	case ZYDIS_MNEMONIC_CMPPS: kind = 0; break;
	case ZYDIS_MNEMONIC_CMPPD: kind = 1; break;
	case ZYDIS_MNEMONIC_CMPSS: kind = 2; break;
	default: kind = 3; break;
	}
	xmmv d, s;
	bt_sse_check(cpu);
	bt_fpu_read(cpu, in, 1, s.b, op_bytes(in, 1) > 16 ? 16 : op_bytes(in, 1), true);
	memcpy(d.b, xreg(cpu, in, 0), 16);
	sse_flags(cpu, h_cmp(kind, (unsigned)in->ops[2].imm.value.u, &d, &s, host_csr(cpu)));
	memcpy(xreg(cpu, in, 0), d.b, 16);
}

static void sse_comis(struct bt_cpu *cpu, const struct bt_insn *in)
{
	xmmv a, b;
	uint32_t save = 0, out = 0, csr;
	uint8_t zf = 0, pf = 0, cf = 0;
	bt_sse_check(cpu);
	memcpy(a.b, xreg(cpu, in, 0), 16);
	bt_fpu_read(cpu, in, 1, b.b, op_bytes(in, 1) > 16 ? 16 : op_bytes(in, 1), true);
	csr = host_csr(cpu);
#define COMIS(insn)                                                                   \
	__asm__ volatile("stmxcsr %[sv]\n\tldmxcsr %[c]\n\t" insn " %[b], %[a]\n\t"   \
	                 "setz %[z]\n\tsetp %[p]\n\tsetc %[cy]\n\t"                   \
	                 "stmxcsr %[o]\n\tldmxcsr %[sv]"                              \
	                 : [sv] "+m"(save), [o] "=m"(out), [z] "=r"(zf), [p] "=r"(pf), \
	                   [cy] "=r"(cf)                                              \
	                 : [a] "x"(a.v), [b] "x"(b.v), [c] "m"(csr) : "cc")
	switch (in->zi.mnemonic) {
	case ZYDIS_MNEMONIC_COMISS: COMIS("comiss"); break;
	case ZYDIS_MNEMONIC_UCOMISS: COMIS("ucomiss"); break;
	case ZYDIS_MNEMONIC_COMISD: COMIS("comisd"); break;
	default: COMIS("ucomisd"); break;
	}
#undef COMIS
	sse_flags(cpu, out);
	uint64_t f = bt_get_rflags(cpu) & ~(uint64_t)BT_ARITH_FLAGS;
	f |= (zf ? BT_ZF : 0u) | (pf ? BT_PF : 0u) | (cf ? BT_CF : 0u);
	bt_set_rflags(cpu, f);
}

/* CVTSI2SS/SD: xmm, r/m32|64 */
static void sse_cvtsi2f(struct bt_cpu *cpu, const struct bt_insn *in)
{
	xmmv d;
	uint64_t v;
	uint32_t save = 0, out = 0, csr;
	bool q = in->ops[1].size == 64;
	bt_sse_check(cpu);
	v = bt_op_read(cpu, in, 1);
	memcpy(d.b, xreg(cpu, in, 0), 16);
	csr = host_csr(cpu);
#define CVT(insn)                                                                      \
	__asm__ volatile("stmxcsr %[sv]\n\tldmxcsr %[c]\n\t" insn "\n\t"                \
	                 "stmxcsr %[o]\n\tldmxcsr %[sv]"                                \
	                 : [d] "+x"(d.v), [sv] "+m"(save), [o] "=m"(out)                \
	                 : [r] "r"(v), [c] "m"(csr))
	if (in->zi.mnemonic == ZYDIS_MNEMONIC_CVTSI2SS) {
		if (q) CVT("cvtsi2ssq %q[r], %[d]"); else CVT("cvtsi2ssl %k[r], %[d]");
	} else {
		if (q) CVT("cvtsi2sdq %q[r], %[d]"); else CVT("cvtsi2sdl %k[r], %[d]");
	}
#undef CVT
	sse_flags(cpu, out);
	memcpy(xreg(cpu, in, 0), d.b, 16);
}

/* CVT(T)SS2SI / CVT(T)SD2SI: r32|64, xmm/m32|64 */
static void sse_cvtf2si(struct bt_cpu *cpu, const struct bt_insn *in)
{
	xmmv s;
	uint64_t r = 0;
	uint32_t save = 0, out = 0, csr;
	bool q = in->ops[0].size == 64;
	bt_sse_check(cpu);
	bt_fpu_read(cpu, in, 1, s.b, op_bytes(in, 1) > 16 ? 16 : op_bytes(in, 1), false);
	csr = host_csr(cpu);
#define CVT(insn)                                                                      \
	__asm__ volatile("stmxcsr %[sv]\n\tldmxcsr %[c]\n\t" insn "\n\t"                \
	                 "stmxcsr %[o]\n\tldmxcsr %[sv]"                                \
	                 : [r] "=r"(r), [sv] "+m"(save), [o] "=m"(out)                  \
	                 : [s] "x"(s.v), [c] "m"(csr))
	switch (in->zi.mnemonic) {
	case ZYDIS_MNEMONIC_CVTSS2SI:
		if (q) CVT("cvtss2si %[s], %q[r]"); else CVT("cvtss2si %[s], %k[r]");
		break;
	case ZYDIS_MNEMONIC_CVTTSS2SI:
		if (q) CVT("cvttss2si %[s], %q[r]"); else CVT("cvttss2si %[s], %k[r]");
		break;
	case ZYDIS_MNEMONIC_CVTSD2SI:
		if (q) CVT("cvtsd2si %[s], %q[r]"); else CVT("cvtsd2si %[s], %k[r]");
		break;
	default:
		if (q) CVT("cvttsd2si %[s], %q[r]"); else CVT("cvttsd2si %[s], %k[r]");
		break;
	}
#undef CVT
	sse_flags(cpu, out);
	bt_gpr_write(cpu, in->ops[0].reg.value, q ? r : (uint32_t)r);
}

/* Conversions with an MMX side, done with the SSE2 forms on the low lanes
 * (the zero lanes convert exactly and raise nothing). */
static void sse_cvt_mmx(struct bt_cpu *cpu, const struct bt_insn *in)
{
	ZydisMnemonic m = in->zi.mnemonic;
	xmmv d, s;
	bool src_mm = bt_fpu_is_mmx(in, 1), dst_mm = bt_fpu_is_mmx(in, 0);
	uint32_t out;
	bt_sse_check(cpu);
	if (src_mm || dst_mm)
		bt_mmx_check(cpu);
	memset(&s, 0, sizeof(s));
	if (m == ZYDIS_MNEMONIC_CVTPD2PI || m == ZYDIS_MNEMONIC_CVTTPD2PI)
		bt_fpu_read(cpu, in, 1, s.b, 16, true);
	else
		bt_fpu_read(cpu, in, 1, s.b, 8, false);
	memset(&d, 0, sizeof(d));
	switch (m) {
	case ZYDIS_MNEMONIC_CVTPI2PS: out = h_cvtdq2ps(&s, &s, host_csr(cpu)); break;
	case ZYDIS_MNEMONIC_CVTPI2PD: out = h_cvtdq2pd(&s, &s, host_csr(cpu)); break;
	case ZYDIS_MNEMONIC_CVTPS2PI: out = h_cvtps2dq(&s, &s, host_csr(cpu)); break;
	case ZYDIS_MNEMONIC_CVTTPS2PI: out = h_cvttps2dq(&s, &s, host_csr(cpu)); break;
	case ZYDIS_MNEMONIC_CVTPD2PI: out = h_cvtpd2dq(&s, &s, host_csr(cpu)); break;
	default: out = h_cvttpd2dq(&s, &s, host_csr(cpu)); break;
	}
	sse_flags(cpu, out);
	if (dst_mm) {
		bt_mmx_set(cpu, in->ops[0].reg.value - ZYDIS_REGISTER_MM0, s.q[0]);
	} else {
		uint8_t *x = xreg(cpu, in, 0);
		if (m == ZYDIS_MNEMONIC_CVTPI2PS)
			memcpy(x, s.b, 8);       /* upper half kept */
		else
			memcpy(x, s.b, 16);
	}
	if (src_mm || dst_mm)
		bt_mmx_enter(cpu);
}

/* ---- moves ---- */

static bool is_unaligned_move(ZydisMnemonic m)
{
	return m == ZYDIS_MNEMONIC_MOVUPS || m == ZYDIS_MNEMONIC_MOVUPD ||
	       m == ZYDIS_MNEMONIC_MOVDQU || m == ZYDIS_MNEMONIC_LDDQU;
}

/* MOVAPS/MOVUPS/MOVAPD/MOVUPD/MOVDQA/MOVDQU/LDDQU/MOVNTPS/MOVNTPD/MOVNTDQ */
static void sse_mov128(struct bt_cpu *cpu, const struct bt_insn *in)
{
	uint8_t b[16];
	bool align = !is_unaligned_move(in->zi.mnemonic);
	bt_sse_check(cpu);
	bt_fpu_read(cpu, in, 1, b, 16, align);
	bt_fpu_write(cpu, in, 0, b, 16, align);
}

/* MOVSS / MOVSD (SSE): reg-reg merges the low element, a load zero-extends. */
static void sse_movs(struct bt_cpu *cpu, const struct bt_insn *in, unsigned n)
{
	uint8_t b[16];
	bt_sse_check(cpu);
	if (in->ops[0].type == ZYDIS_OPERAND_TYPE_MEMORY) {
		bt_fpu_write(cpu, in, 0, xreg(cpu, in, 1), n, false);
		return;
	}
	if (in->ops[1].type == ZYDIS_OPERAND_TYPE_MEMORY) {
		bt_fpu_read(cpu, in, 1, b, n, false);
		memset(b + n, 0, 16 - n);
		memcpy(xreg(cpu, in, 0), b, 16);
		return;
	}
	memcpy(b, xreg(cpu, in, 1), n);
	memcpy(xreg(cpu, in, 0), b, n);
}

static void sse_movss(struct bt_cpu *cpu, const struct bt_insn *in)
{
	sse_movs(cpu, in, 4);
}

/* MOVSD with the SSE2 encoding; the string MOVSD has its own table. */
static void sse_movsd(struct bt_cpu *cpu, const struct bt_insn *in)
{
	sse_movs(cpu, in, 8);
}

/* MOVLPS/MOVLPD/MOVHPS/MOVHPD/MOVHLPS/MOVLHPS */
static void sse_movhl(struct bt_cpu *cpu, const struct bt_insn *in)
{
	ZydisMnemonic m = in->zi.mnemonic;
	bool high = m == ZYDIS_MNEMONIC_MOVHPS || m == ZYDIS_MNEMONIC_MOVHPD;
	uint8_t b[8];
	bt_sse_check(cpu);
	if (m == ZYDIS_MNEMONIC_MOVHLPS) {
		memcpy(b, xreg(cpu, in, 1) + 8, 8);
		memcpy(xreg(cpu, in, 0), b, 8);
	} else if (m == ZYDIS_MNEMONIC_MOVLHPS) {
		memcpy(b, xreg(cpu, in, 1), 8);
		memcpy(xreg(cpu, in, 0) + 8, b, 8);
	} else if (in->ops[0].type == ZYDIS_OPERAND_TYPE_MEMORY) {
		bt_fpu_write(cpu, in, 0, xreg(cpu, in, 1) + (high ? 8 : 0), 8, false);
	} else if (in->ops[1].type == ZYDIS_OPERAND_TYPE_MEMORY) {
		bt_fpu_read(cpu, in, 1, b, 8, false);
		memcpy(xreg(cpu, in, 0) + (high ? 8 : 0), b, 8);
	} else {
		bt_raise_ud(cpu);
	}
}

/* MOVDDUP / MOVSHDUP / MOVSLDUP */
static void sse_movdup(struct bt_cpu *cpu, const struct bt_insn *in)
{
	xmmv s, d;
	bt_sse_check(cpu);
	if (in->zi.mnemonic == ZYDIS_MNEMONIC_MOVDDUP) {
		bt_fpu_read(cpu, in, 1, s.b, 8, false);
		d.q[0] = d.q[1] = s.q[0];
	} else {
		bt_fpu_read(cpu, in, 1, s.b, 16, true);
		unsigned o = in->zi.mnemonic == ZYDIS_MNEMONIC_MOVSHDUP;
		d.d[0] = d.d[1] = s.d[o];
		d.d[2] = d.d[3] = s.d[2 + o];
	}
	memcpy(xreg(cpu, in, 0), d.b, 16);
}

static void sse_movmsk(struct bt_cpu *cpu, const struct bt_insn *in)
{
	xmmv s;
	uint32_t r = 0;
	bt_sse_check(cpu);
	memcpy(s.b, xreg(cpu, in, 1), 16);
	if (in->zi.mnemonic == ZYDIS_MNEMONIC_MOVMSKPS) {
		for (unsigned i = 0; i < 4; i++)
			r |= (s.d[i] >> 31) << i;
	} else {
		for (unsigned i = 0; i < 2; i++)
			r |= (uint32_t)(s.q[i] >> 63) << i;
	}
	bt_gpr_write(cpu, in->ops[0].reg.value, r);
}

/* SHUFPS / SHUFPD */
static void sse_shuf(struct bt_cpu *cpu, const struct bt_insn *in)
{
	xmmv d, s, r;
	unsigned imm = (unsigned)in->ops[2].imm.value.u;
	bt_sse_check(cpu);
	bt_fpu_read(cpu, in, 1, s.b, 16, true);
	memcpy(d.b, xreg(cpu, in, 0), 16);
	if (in->zi.mnemonic == ZYDIS_MNEMONIC_SHUFPS) {
		r.d[0] = d.d[imm & 3];
		r.d[1] = d.d[(imm >> 2) & 3];
		r.d[2] = s.d[(imm >> 4) & 3];
		r.d[3] = s.d[(imm >> 6) & 3];
	} else {
		r.q[0] = d.q[imm & 1];
		r.q[1] = s.q[(imm >> 1) & 1];
	}
	memcpy(xreg(cpu, in, 0), r.b, 16);
}

/* ---- MXCSR, FXSAVE/FXRSTOR ---- */

static void sse_ldmxcsr(struct bt_cpu *cpu, const struct bt_insn *in)
{
	bt_sse_check(cpu);
	uint32_t v = (uint32_t)bt_op_read(cpu, in, 0);
	if (v & ~BT_MXCSR_MASK)
		bt_raise_gp(cpu, 0);
	cpu->mxcsr = v;
}

static void sse_stmxcsr(struct bt_cpu *cpu, const struct bt_insn *in)
{
	bt_sse_check(cpu);
	bt_op_write(cpu, in, 0, cpu->mxcsr);
}

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint16_t get16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static void fx_save(struct bt_cpu *cpu, uint8_t *out, bool is64)
{
	unsigned top = (cpu->fsw >> 11) & 7u;
	memset(out, 0, 512);
	put16(out + 0, cpu->fcw);
	put16(out + 2, cpu->fsw);
	out[4] = bt_x87_abridged_tags(cpu);
	put16(out + 6, cpu->fop & 0x7ffu);
	if (is64) {
		put64(out + 8, cpu->fip);
		put64(out + 16, cpu->fdp);
	} else {
		put32(out + 8, (uint32_t)cpu->fip);
		put16(out + 12, cpu->fcs);
		put32(out + 16, (uint32_t)cpu->fdp);
		put16(out + 20, cpu->fds);
	}
	put32(out + 24, cpu->mxcsr);
	put32(out + 28, BT_MXCSR_MASK);
	for (unsigned i = 0; i < 8; i++)
		memcpy(out + 32 + 16 * i, &cpu->st[(top + i) & 7], 10);
	memcpy(out + 160, cpu->xmm, 256);
}

void bt_fxsave(struct bt_cpu *cpu, uint8_t out[512])
{
	fx_save(cpu, out, true);
}

static bool fx_restore(struct bt_cpu *cpu, const uint8_t *in, bool is64)
{
	uint32_t mxcsr = get32(in + 24);
	if (mxcsr & ~BT_MXCSR_MASK)
		return false;
	cpu->fcw = bt_x87_fcw(get16(in + 0));
	cpu->fsw = get16(in + 2);
	cpu->fop = get16(in + 6) & 0x7ffu;
	if (is64) {
		cpu->fip = get64(in + 8);
		cpu->fdp = get64(in + 16);
	} else {
		cpu->fip = get32(in + 8);
		cpu->fcs = get16(in + 12);
		cpu->fdp = get32(in + 16);
		cpu->fds = get16(in + 20);
	}
	cpu->mxcsr = mxcsr;
	unsigned top = (cpu->fsw >> 11) & 7u;
	for (unsigned i = 0; i < 8; i++) {
		uint8_t full[sizeof(long double)];
		memset(full, 0, sizeof(full));
		memcpy(full, in + 32 + 16 * i, 10);
		memcpy(&cpu->st[(top + i) & 7], full, sizeof(full));
	}
	bt_x87_set_abridged_tags(cpu, in[4]);
	bt_x87_update_es(cpu);
	memcpy(cpu->xmm, in + 160, 256);
	return true;
}

void bt_fxrstor(struct bt_cpu *cpu, const uint8_t in[512])
{
	if (!fx_restore(cpu, in, true))
		bt_raise_gp(cpu, 0);
}

static void sse_fxsave(struct bt_cpu *cpu, const struct bt_insn *in)
{
	uint8_t img[512];
	bool is64 = in->zi.mnemonic == ZYDIS_MNEMONIC_FXSAVE64 ||
	            in->zi.mnemonic == ZYDIS_MNEMONIC_FXRSTOR64;
	bool save = in->zi.mnemonic == ZYDIS_MNEMONIC_FXSAVE || in->zi.mnemonic == ZYDIS_MNEMONIC_FXSAVE64;
	if (cpu->cr0 & (BT_CR0_EM | BT_CR0_TS))
		bt_raise(cpu, BT_NM, 0, false);
	if (in->ops[0].type != ZYDIS_OPERAND_TYPE_MEMORY)
		bt_raise_ud(cpu);
	enum bt_sreg s = bt_op_seg(in, 0);
	uint64_t ea = bt_op_ea(cpu, in, 0);
	if ((cpu->seg[s].base + ea) & 15u)
		bt_raise_gp(cpu, 0);
	/* The XMM8-15 area exists only in 64-bit mode; bytes 464-511 are software's. */
	unsigned len = bt_code_bits(cpu) == 64 ? 416 : 288;
	if (save) {
		fx_save(cpu, img, is64);
		bt_mem_write_buf(cpu, s, ea, img, len);
	} else {
		bt_mem_read_buf(cpu, s, ea, img, len);
		if (len < 416)
			memcpy(img + len, cpu->xmm[8], 416 - len);
		if (!fx_restore(cpu, img, is64))
			bt_raise_gp(cpu, 0);
	}
}

/* LFENCE/SFENCE/MFENCE/PREFETCH*/
/* CLFLUSH: the engine has no caches to flush. */
static void sse_nop(struct bt_cpu *cpu, const struct bt_insn *in)
{
	(void)cpu;
	(void)in;
}

/* ---- registration ---- */

static const struct {
	ZydisMnemonic m;
	sse_fn fn;
} fp_table[] = {
	{ZYDIS_MNEMONIC_ADDPS, h_addps}, {ZYDIS_MNEMONIC_ADDPD, h_addpd},
	{ZYDIS_MNEMONIC_ADDSS, h_addss}, {ZYDIS_MNEMONIC_ADDSD, h_addsd},
	{ZYDIS_MNEMONIC_SUBPS, h_subps}, {ZYDIS_MNEMONIC_SUBPD, h_subpd},
	{ZYDIS_MNEMONIC_SUBSS, h_subss}, {ZYDIS_MNEMONIC_SUBSD, h_subsd},
	{ZYDIS_MNEMONIC_MULPS, h_mulps}, {ZYDIS_MNEMONIC_MULPD, h_mulpd},
	{ZYDIS_MNEMONIC_MULSS, h_mulss}, {ZYDIS_MNEMONIC_MULSD, h_mulsd},
	{ZYDIS_MNEMONIC_DIVPS, h_divps}, {ZYDIS_MNEMONIC_DIVPD, h_divpd},
	{ZYDIS_MNEMONIC_DIVSS, h_divss}, {ZYDIS_MNEMONIC_DIVSD, h_divsd},
	{ZYDIS_MNEMONIC_MINPS, h_minps}, {ZYDIS_MNEMONIC_MINPD, h_minpd},
	{ZYDIS_MNEMONIC_MINSS, h_minss}, {ZYDIS_MNEMONIC_MINSD, h_minsd},
	{ZYDIS_MNEMONIC_MAXPS, h_maxps}, {ZYDIS_MNEMONIC_MAXPD, h_maxpd},
	{ZYDIS_MNEMONIC_MAXSS, h_maxss}, {ZYDIS_MNEMONIC_MAXSD, h_maxsd},
	{ZYDIS_MNEMONIC_SQRTPS, h_sqrtps}, {ZYDIS_MNEMONIC_SQRTPD, h_sqrtpd},
	{ZYDIS_MNEMONIC_SQRTSS, h_sqrtss}, {ZYDIS_MNEMONIC_SQRTSD, h_sqrtsd},
	{ZYDIS_MNEMONIC_RCPPS, h_rcpps}, {ZYDIS_MNEMONIC_RCPSS, h_rcpss},
	{ZYDIS_MNEMONIC_RSQRTPS, h_rsqrtps}, {ZYDIS_MNEMONIC_RSQRTSS, h_rsqrtss},
	{ZYDIS_MNEMONIC_ANDPS, h_andps}, {ZYDIS_MNEMONIC_ANDNPS, h_andnps},
	{ZYDIS_MNEMONIC_ORPS, h_orps}, {ZYDIS_MNEMONIC_XORPS, h_xorps},
	{ZYDIS_MNEMONIC_ANDPD, h_andpd}, {ZYDIS_MNEMONIC_ANDNPD, h_andnpd},
	{ZYDIS_MNEMONIC_ORPD, h_orpd}, {ZYDIS_MNEMONIC_XORPD, h_xorpd},
	{ZYDIS_MNEMONIC_CVTPS2PD, h_cvtps2pd}, {ZYDIS_MNEMONIC_CVTPD2PS, h_cvtpd2ps},
	{ZYDIS_MNEMONIC_CVTSS2SD, h_cvtss2sd}, {ZYDIS_MNEMONIC_CVTSD2SS, h_cvtsd2ss},
	{ZYDIS_MNEMONIC_CVTDQ2PS, h_cvtdq2ps}, {ZYDIS_MNEMONIC_CVTPS2DQ, h_cvtps2dq},
	{ZYDIS_MNEMONIC_CVTTPS2DQ, h_cvttps2dq}, {ZYDIS_MNEMONIC_CVTDQ2PD, h_cvtdq2pd},
	{ZYDIS_MNEMONIC_CVTPD2DQ, h_cvtpd2dq}, {ZYDIS_MNEMONIC_CVTTPD2DQ, h_cvttpd2dq},
	{ZYDIS_MNEMONIC_UNPCKLPS, h_unpcklps}, {ZYDIS_MNEMONIC_UNPCKHPS, h_unpckhps},
	{ZYDIS_MNEMONIC_UNPCKLPD, h_unpcklpd}, {ZYDIS_MNEMONIC_UNPCKHPD, h_unpckhpd},
	{ZYDIS_MNEMONIC_HADDPS, h_haddps}, {ZYDIS_MNEMONIC_HADDPD, h_haddpd},
	{ZYDIS_MNEMONIC_HSUBPS, h_hsubps}, {ZYDIS_MNEMONIC_HSUBPD, h_hsubpd},
	{ZYDIS_MNEMONIC_ADDSUBPS, h_addsubps}, {ZYDIS_MNEMONIC_ADDSUBPD, h_addsubpd},
};

void bt_sse_init(void)
{
	for (size_t i = 0; i < sizeof(fp_table) / sizeof(fp_table[0]); i++) {
		fp_fn[fp_table[i].m] = fp_table[i].fn;
		bt_exec_register(fp_table[i].m, sse_arith);
	}
	bt_exec_register(ZYDIS_MNEMONIC_CMPPS, sse_cmp);
	bt_exec_register(ZYDIS_MNEMONIC_CMPPD, sse_cmp);
	bt_exec_register(ZYDIS_MNEMONIC_CMPSS, sse_cmp);
	/* MOVSD/CMPSD are shared with the string instructions, which bt_exec.c
	 * dispatches through its string table first. */
	bt_exec_register(ZYDIS_MNEMONIC_CMPSD, sse_cmp);
	bt_exec_register(ZYDIS_MNEMONIC_MOVSD, sse_movsd);
	bt_exec_register(ZYDIS_MNEMONIC_COMISS, sse_comis);
	bt_exec_register(ZYDIS_MNEMONIC_UCOMISS, sse_comis);
	bt_exec_register(ZYDIS_MNEMONIC_COMISD, sse_comis);
	bt_exec_register(ZYDIS_MNEMONIC_UCOMISD, sse_comis);
	bt_exec_register(ZYDIS_MNEMONIC_CVTSI2SS, sse_cvtsi2f);
	bt_exec_register(ZYDIS_MNEMONIC_CVTSI2SD, sse_cvtsi2f);
	bt_exec_register(ZYDIS_MNEMONIC_CVTSS2SI, sse_cvtf2si);
	bt_exec_register(ZYDIS_MNEMONIC_CVTTSS2SI, sse_cvtf2si);
	bt_exec_register(ZYDIS_MNEMONIC_CVTSD2SI, sse_cvtf2si);
	bt_exec_register(ZYDIS_MNEMONIC_CVTTSD2SI, sse_cvtf2si);
	bt_exec_register(ZYDIS_MNEMONIC_CVTPI2PS, sse_cvt_mmx);
	bt_exec_register(ZYDIS_MNEMONIC_CVTPI2PD, sse_cvt_mmx);
	bt_exec_register(ZYDIS_MNEMONIC_CVTPS2PI, sse_cvt_mmx);
	bt_exec_register(ZYDIS_MNEMONIC_CVTTPS2PI, sse_cvt_mmx);
	bt_exec_register(ZYDIS_MNEMONIC_CVTPD2PI, sse_cvt_mmx);
	bt_exec_register(ZYDIS_MNEMONIC_CVTTPD2PI, sse_cvt_mmx);

	static const ZydisMnemonic mov128[] = {
		ZYDIS_MNEMONIC_MOVAPS, ZYDIS_MNEMONIC_MOVUPS, ZYDIS_MNEMONIC_MOVAPD,
		ZYDIS_MNEMONIC_MOVUPD, ZYDIS_MNEMONIC_MOVDQA, ZYDIS_MNEMONIC_MOVDQU,
		ZYDIS_MNEMONIC_LDDQU, ZYDIS_MNEMONIC_MOVNTPS, ZYDIS_MNEMONIC_MOVNTPD,
		ZYDIS_MNEMONIC_MOVNTDQ,
	};
	for (size_t i = 0; i < sizeof(mov128) / sizeof(mov128[0]); i++)
		bt_exec_register(mov128[i], sse_mov128);
	bt_exec_register(ZYDIS_MNEMONIC_MOVSS, sse_movss);
	bt_exec_register(ZYDIS_MNEMONIC_MOVLPS, sse_movhl);
	bt_exec_register(ZYDIS_MNEMONIC_MOVLPD, sse_movhl);
	bt_exec_register(ZYDIS_MNEMONIC_MOVHPS, sse_movhl);
	bt_exec_register(ZYDIS_MNEMONIC_MOVHPD, sse_movhl);
	bt_exec_register(ZYDIS_MNEMONIC_MOVHLPS, sse_movhl);
	bt_exec_register(ZYDIS_MNEMONIC_MOVLHPS, sse_movhl);
	bt_exec_register(ZYDIS_MNEMONIC_MOVDDUP, sse_movdup);
	bt_exec_register(ZYDIS_MNEMONIC_MOVSHDUP, sse_movdup);
	bt_exec_register(ZYDIS_MNEMONIC_MOVSLDUP, sse_movdup);
	bt_exec_register(ZYDIS_MNEMONIC_MOVMSKPS, sse_movmsk);
	bt_exec_register(ZYDIS_MNEMONIC_MOVMSKPD, sse_movmsk);
	bt_exec_register(ZYDIS_MNEMONIC_SHUFPS, sse_shuf);
	bt_exec_register(ZYDIS_MNEMONIC_SHUFPD, sse_shuf);

	bt_exec_register(ZYDIS_MNEMONIC_LDMXCSR, sse_ldmxcsr);
	bt_exec_register(ZYDIS_MNEMONIC_STMXCSR, sse_stmxcsr);
	bt_exec_register(ZYDIS_MNEMONIC_FXSAVE, sse_fxsave);
	bt_exec_register(ZYDIS_MNEMONIC_FXSAVE64, sse_fxsave);
	bt_exec_register(ZYDIS_MNEMONIC_FXRSTOR, sse_fxsave);
	bt_exec_register(ZYDIS_MNEMONIC_FXRSTOR64, sse_fxsave);

	static const ZydisMnemonic nops[] = {
		ZYDIS_MNEMONIC_LFENCE, ZYDIS_MNEMONIC_SFENCE, ZYDIS_MNEMONIC_MFENCE,
		ZYDIS_MNEMONIC_PREFETCHNTA, ZYDIS_MNEMONIC_PREFETCHT0, ZYDIS_MNEMONIC_PREFETCHT1,
		ZYDIS_MNEMONIC_PREFETCHT2, ZYDIS_MNEMONIC_PREFETCH, ZYDIS_MNEMONIC_PREFETCHW,
		ZYDIS_MNEMONIC_CLFLUSH,
	};
	for (size_t i = 0; i < sizeof(nops) / sizeof(nops[0]); i++)
		bt_exec_register(nops[i], sse_nop);

	bt_sse_int_init();
}

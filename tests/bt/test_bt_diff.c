/*
 * test_bt_diff.c — differential tests of the integer instructions: each
 * case (one instruction form, random operands, random arithmetic flags) runs
 * natively in a forked child and in the bt engine; GPRs, the flags the SDM
 * defines for that case, the data buffer and the stack must match.
 *
 *   VIREO_DIFF_SEED=n    reproduce a run (the seed is printed)
 *   VIREO_DIFF_CASES=n   cases per template (default 40)
 *   VIREO_DIFF_ONLY=name only templates whose name contains this
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "bthost.h"
#include "vmm/bt/bt.h"

enum {
	F_REG = 1, F_MEM = 2,        /* forms */
	S_NONE = 0, S_SHIFT, S_ROT, S_SHXD, S_BITOFF, S_DIV, S_BSX, S_STR, S_SHXD_CL,
};

struct tmpl {
	const char *name;
	uint8_t pre;                 /* mandatory prefix (F3/F2) or 0 */
	uint8_t op[2];
	uint8_t oplen;
	int8_t digit;                /* /digit, -1 = /r random register, -2 = no ModRM */
	uint8_t imm;                 /* 0, 1, 2, 4, or 'z' (2 for 16-bit, else 4) */
	uint8_t sizes;               /* bit set of 1, 2, 4, 8 */
	uint8_t forms;
	uint32_t undef;              /* flags undefined by the SDM */
	uint8_t special;
};

#define A BT_AF
#define UALL BT_ARITH_FLAGS
#define V (2 | 4 | 8)
#define B 1

static const struct tmpl tmpls[] = {
	/* the eight ALU ops in all encodings */
#define ALU(n, b, d)                                                                    \
	{ n " Eb,Gb", 0, { b + 0 }, 1, -1, 0, B, F_REG | F_MEM, 0, 0 },                   \
	{ n " Ev,Gv", 0, { b + 1 }, 1, -1, 0, V, F_REG | F_MEM, 0, 0 },                   \
	{ n " Gb,Eb", 0, { b + 2 }, 1, -1, 0, B, F_REG | F_MEM, 0, 0 },                   \
	{ n " Gv,Ev", 0, { b + 3 }, 1, -1, 0, V, F_REG | F_MEM, 0, 0 },                   \
	{ n " AL,ib", 0, { b + 4 }, 1, -2, 1, B, F_REG, 0, 0 },                            \
	{ n " eAX,iz", 0, { b + 5 }, 1, -2, 'z', V, F_REG, 0, 0 },                         \
	{ n " Eb,ib", 0, { 0x80 }, 1, d, 1, B, F_REG | F_MEM, 0, 0 },                      \
	{ n " Ev,iz", 0, { 0x81 }, 1, d, 'z', V, F_REG | F_MEM, 0, 0 },                    \
	{ n " Ev,ib", 0, { 0x83 }, 1, d, 1, V, F_REG | F_MEM, 0, 0 }
	ALU("add", 0x00, 0), ALU("or", 0x08, 1), ALU("adc", 0x10, 2), ALU("sbb", 0x18, 3),
	ALU("and", 0x20, 4), ALU("sub", 0x28, 5), ALU("xor", 0x30, 6), ALU("cmp", 0x38, 7),
#undef ALU
	{ "test Eb,Gb", 0, { 0x84 }, 1, -1, 0, B, F_REG | F_MEM, A, 0 },
	{ "test Ev,Gv", 0, { 0x85 }, 1, -1, 0, V, F_REG | F_MEM, A, 0 },
	{ "test Eb,ib", 0, { 0xf6 }, 1, 0, 1, B, F_REG | F_MEM, A, 0 },
	{ "test Ev,iz", 0, { 0xf7 }, 1, 0, 'z', V, F_REG | F_MEM, A, 0 },
	{ "not Eb", 0, { 0xf6 }, 1, 2, 0, B, F_REG | F_MEM, 0, 0 },
	{ "not Ev", 0, { 0xf7 }, 1, 2, 0, V, F_REG | F_MEM, 0, 0 },
	{ "neg Eb", 0, { 0xf6 }, 1, 3, 0, B, F_REG | F_MEM, 0, 0 },
	{ "neg Ev", 0, { 0xf7 }, 1, 3, 0, V, F_REG | F_MEM, 0, 0 },
	{ "mul Eb", 0, { 0xf6 }, 1, 4, 0, B, F_REG | F_MEM, BT_SF | BT_ZF | BT_AF | BT_PF, 0 },
	{ "mul Ev", 0, { 0xf7 }, 1, 4, 0, V, F_REG | F_MEM, BT_SF | BT_ZF | BT_AF | BT_PF, 0 },
	{ "imul Eb", 0, { 0xf6 }, 1, 5, 0, B, F_REG | F_MEM, BT_SF | BT_ZF | BT_AF | BT_PF, 0 },
	{ "imul Ev", 0, { 0xf7 }, 1, 5, 0, V, F_REG | F_MEM, BT_SF | BT_ZF | BT_AF | BT_PF, 0 },
	{ "div Eb", 0, { 0xf6 }, 1, 6, 0, B, F_REG | F_MEM, UALL, S_DIV },
	{ "div Ev", 0, { 0xf7 }, 1, 6, 0, V, F_REG | F_MEM, UALL, S_DIV },
	{ "idiv Eb", 0, { 0xf6 }, 1, 7, 0, B, F_REG | F_MEM, UALL, S_DIV },
	{ "idiv Ev", 0, { 0xf7 }, 1, 7, 0, V, F_REG | F_MEM, UALL, S_DIV },
	{ "imul Gv,Ev", 0, { 0x0f, 0xaf }, 2, -1, 0, V, F_REG | F_MEM, BT_SF | BT_ZF | BT_AF | BT_PF, 0 },
	{ "imul Gv,Ev,iz", 0, { 0x69 }, 1, -1, 'z', V, F_REG | F_MEM, BT_SF | BT_ZF | BT_AF | BT_PF, 0 },
	{ "imul Gv,Ev,ib", 0, { 0x6b }, 1, -1, 1, V, F_REG | F_MEM, BT_SF | BT_ZF | BT_AF | BT_PF, 0 },
	{ "inc Eb", 0, { 0xfe }, 1, 0, 0, B, F_REG | F_MEM, 0, 0 },
	{ "inc Ev", 0, { 0xff }, 1, 0, 0, V, F_REG | F_MEM, 0, 0 },
	{ "dec Eb", 0, { 0xfe }, 1, 1, 0, B, F_REG | F_MEM, 0, 0 },
	{ "dec Ev", 0, { 0xff }, 1, 1, 0, V, F_REG | F_MEM, 0, 0 },
	/* shifts and rotates: /0 rol /1 ror /2 rcl /3 rcr /4 shl /5 shr /6 sal /7 sar */
#define SH(n, d, sp)                                                                     \
	{ n " Eb,ib", 0, { 0xc0 }, 1, d, 1, B, F_REG | F_MEM, 0, sp },                      \
	{ n " Ev,ib", 0, { 0xc1 }, 1, d, 1, V, F_REG | F_MEM, 0, sp },                      \
	{ n " Eb,1", 0, { 0xd0 }, 1, d, 0, B, F_REG | F_MEM, 0, sp },                       \
	{ n " Ev,1", 0, { 0xd1 }, 1, d, 0, V, F_REG | F_MEM, 0, sp },                       \
	{ n " Eb,cl", 0, { 0xd2 }, 1, d, 0, B, F_REG | F_MEM, 0, sp },                      \
	{ n " Ev,cl", 0, { 0xd3 }, 1, d, 0, V, F_REG | F_MEM, 0, sp }
	SH("rol", 0, S_ROT), SH("ror", 1, S_ROT), SH("rcl", 2, S_ROT), SH("rcr", 3, S_ROT),
	SH("shl", 4, S_SHIFT), SH("shr", 5, S_SHIFT), SH("sal", 6, S_SHIFT), SH("sar", 7, S_SHIFT),
#undef SH
	{ "shld Ev,Gv,ib", 0, { 0x0f, 0xa4 }, 2, -1, 1, V, F_REG | F_MEM, 0, S_SHXD },
	{ "shld Ev,Gv,cl", 0, { 0x0f, 0xa5 }, 2, -1, 0, V, F_REG | F_MEM, 0, S_SHXD_CL },
	{ "shrd Ev,Gv,ib", 0, { 0x0f, 0xac }, 2, -1, 1, V, F_REG | F_MEM, 0, S_SHXD },
	{ "shrd Ev,Gv,cl", 0, { 0x0f, 0xad }, 2, -1, 0, V, F_REG | F_MEM, 0, S_SHXD_CL },
	/* bit instructions */
	{ "bt Ev,Gv", 0, { 0x0f, 0xa3 }, 2, -1, 0, V, F_REG | F_MEM, BT_OF | BT_SF | BT_AF | BT_PF, S_BITOFF },
	{ "bts Ev,Gv", 0, { 0x0f, 0xab }, 2, -1, 0, V, F_REG | F_MEM, BT_OF | BT_SF | BT_AF | BT_PF, S_BITOFF },
	{ "btr Ev,Gv", 0, { 0x0f, 0xb3 }, 2, -1, 0, V, F_REG | F_MEM, BT_OF | BT_SF | BT_AF | BT_PF, S_BITOFF },
	{ "btc Ev,Gv", 0, { 0x0f, 0xbb }, 2, -1, 0, V, F_REG | F_MEM, BT_OF | BT_SF | BT_AF | BT_PF, S_BITOFF },
	{ "bt Ev,ib", 0, { 0x0f, 0xba }, 2, 4, 1, V, F_REG | F_MEM, BT_OF | BT_SF | BT_AF | BT_PF, 0 },
	{ "bts Ev,ib", 0, { 0x0f, 0xba }, 2, 5, 1, V, F_REG | F_MEM, BT_OF | BT_SF | BT_AF | BT_PF, 0 },
	{ "btr Ev,ib", 0, { 0x0f, 0xba }, 2, 6, 1, V, F_REG | F_MEM, BT_OF | BT_SF | BT_AF | BT_PF, 0 },
	{ "btc Ev,ib", 0, { 0x0f, 0xba }, 2, 7, 1, V, F_REG | F_MEM, BT_OF | BT_SF | BT_AF | BT_PF, 0 },
	{ "bsf Gv,Ev", 0, { 0x0f, 0xbc }, 2, -1, 0, V, F_REG | F_MEM, UALL & ~BT_ZF, S_BSX },
	{ "bsr Gv,Ev", 0, { 0x0f, 0xbd }, 2, -1, 0, V, F_REG | F_MEM, UALL & ~BT_ZF, S_BSX },
	{ "popcnt Gv,Ev", 0xf3, { 0x0f, 0xb8 }, 2, -1, 0, V, F_REG | F_MEM, 0, 0 },
	/* data movement */
	{ "mov Eb,Gb", 0, { 0x88 }, 1, -1, 0, B, F_REG | F_MEM, 0, 0 },
	{ "mov Ev,Gv", 0, { 0x89 }, 1, -1, 0, V, F_REG | F_MEM, 0, 0 },
	{ "mov Gb,Eb", 0, { 0x8a }, 1, -1, 0, B, F_REG | F_MEM, 0, 0 },
	{ "mov Gv,Ev", 0, { 0x8b }, 1, -1, 0, V, F_REG | F_MEM, 0, 0 },
	{ "mov Eb,ib", 0, { 0xc6 }, 1, 0, 1, B, F_REG | F_MEM, 0, 0 },
	{ "mov Ev,iz", 0, { 0xc7 }, 1, 0, 'z', V, F_REG | F_MEM, 0, 0 },
	{ "movzx Gv,Eb", 0, { 0x0f, 0xb6 }, 2, -1, 0, V, F_REG | F_MEM, 0, 0 },
	{ "movzx Gv,Ew", 0, { 0x0f, 0xb7 }, 2, -1, 0, 4 | 8, F_REG | F_MEM, 0, 0 },
	{ "movsx Gv,Eb", 0, { 0x0f, 0xbe }, 2, -1, 0, V, F_REG | F_MEM, 0, 0 },
	{ "movsx Gv,Ew", 0, { 0x0f, 0xbf }, 2, -1, 0, 4 | 8, F_REG | F_MEM, 0, 0 },
	{ "movsxd Gq,Ed", 0, { 0x63 }, 1, -1, 0, 8, F_REG | F_MEM, 0, 0 },
	{ "lea Gv,M", 0, { 0x8d }, 1, -1, 0, V, F_MEM, 0, 0 },
	{ "xchg Eb,Gb", 0, { 0x86 }, 1, -1, 0, B, F_REG | F_MEM, 0, 0 },
	{ "xchg Ev,Gv", 0, { 0x87 }, 1, -1, 0, V, F_REG | F_MEM, 0, 0 },
	{ "cmpxchg Eb,Gb", 0, { 0x0f, 0xb0 }, 2, -1, 0, B, F_REG | F_MEM, 0, 0 },
	{ "cmpxchg Ev,Gv", 0, { 0x0f, 0xb1 }, 2, -1, 0, V, F_REG | F_MEM, 0, 0 },
	{ "xadd Eb,Gb", 0, { 0x0f, 0xc0 }, 2, -1, 0, B, F_REG | F_MEM, 0, 0 },
	{ "xadd Ev,Gv", 0, { 0x0f, 0xc1 }, 2, -1, 0, V, F_REG | F_MEM, 0, 0 },
	{ "cmpxchg8b M", 0, { 0x0f, 0xc7 }, 2, 1, 0, 4, F_MEM, 0, 0 },
	{ "cbw/cwde/cdqe", 0, { 0x98 }, 1, -2, 0, V, F_REG, 0, 0 },
	{ "cwd/cdq/cqo", 0, { 0x99 }, 1, -2, 0, V, F_REG, 0, 0 },
	{ "bswap", 0, { 0x0f, 0xc8 }, 2, -3, 0, 4 | 8, F_REG, 0, 0 },
	/* flags */
	{ "lahf", 0, { 0x9f }, 1, -2, 0, 4, F_REG, 0, 0 },
	{ "sahf", 0, { 0x9e }, 1, -2, 0, 4, F_REG, 0, 0 },
	{ "cmc", 0, { 0xf5 }, 1, -2, 0, 4, F_REG, 0, 0 },
	{ "clc", 0, { 0xf8 }, 1, -2, 0, 4, F_REG, 0, 0 },
	{ "stc", 0, { 0xf9 }, 1, -2, 0, 4, F_REG, 0, 0 },
	/* conditions: all 16 */
	{ "setcc Eb", 0, { 0x0f, 0x90 }, 2, 0, 0, B, F_REG | F_MEM, 0, 0 },
	{ "cmovcc Gv,Ev", 0, { 0x0f, 0x40 }, 2, -1, 0, V, F_REG | F_MEM, 0, 0 },
	{ "jcc rel8", 0, { 0x70 }, 1, -2, 0, 4, F_REG, 0, 0 },
	/* stack */
	{ "push r", 0, { 0x50 }, 1, -3, 0, 2 | 8, F_REG, 0, 0 },
	{ "pop r", 0, { 0x58 }, 1, -3, 0, 2 | 8, F_REG, 0, 0 },
	{ "push Ev", 0, { 0xff }, 1, 6, 0, 2 | 8, F_MEM, 0, 0 },
	{ "pop Ev", 0, { 0x8f }, 1, 0, 0, 2 | 8, F_MEM, 0, 0 },
	{ "push ib", 0, { 0x6a }, 1, -2, 1, 8, F_REG, 0, 0 },
	{ "push iz", 0, { 0x68 }, 1, -2, 4, 8, F_REG, 0, 0 },
	{ "call rel32; pop", 0, { 0xe8 }, 1, -2, 4, 8, F_REG, 0, 0 },
	{ "enter iw,ib", 0, { 0xc8 }, 1, -2, 3, 8, F_REG, 0, 0 },
	{ "leave", 0, { 0xc9 }, 1, -2, 0, 8, F_REG, 0, 0 },
	/* strings (RSI/RDI in the buffer, small RCX) */
	{ "movs", 0, { 0xa4 }, 1, -2, 0, B | V, F_REG, 0, S_STR },
	{ "stos", 0, { 0xaa }, 1, -2, 0, B | V, F_REG, 0, S_STR },
	{ "lods", 0, { 0xac }, 1, -2, 0, B | V, F_REG, 0, S_STR },
	{ "cmps", 0, { 0xa6 }, 1, -2, 0, B | V, F_REG, 0, S_STR },
	{ "scas", 0, { 0xae }, 1, -2, 0, B | V, F_REG, 0, S_STR },
	{ "rep movs", 0xf3, { 0xa4 }, 1, -2, 0, B | V, F_REG, 0, S_STR },
	{ "rep stos", 0xf3, { 0xaa }, 1, -2, 0, B | V, F_REG, 0, S_STR },
	{ "rep lods", 0xf3, { 0xac }, 1, -2, 0, B | V, F_REG, 0, S_STR },
	{ "repe cmps", 0xf3, { 0xa6 }, 1, -2, 0, B | V, F_REG, 0, S_STR },
	{ "repne cmps", 0xf2, { 0xa6 }, 1, -2, 0, B | V, F_REG, 0, S_STR },
	{ "repe scas", 0xf3, { 0xae }, 1, -2, 0, B | V, F_REG, 0, S_STR },
	{ "repne scas", 0xf2, { 0xae }, 1, -2, 0, B | V, F_REG, 0, S_STR },
};

static uint64_t seed;

static uint64_t rnd(void) { return bth_rand(&seed); }

/* Operand values biased towards the edges. */
static uint64_t rnd_val(void)
{
	switch (rnd() % 8) {
	case 0: return 0;
	case 1: return rnd() % 4;
	case 2: return ~0ull - rnd() % 3;
	case 3: return 0x80ull << (8 * (rnd() % 8));
	case 4: return (0x80ull << (8 * (rnd() % 8))) - 1;
	case 5: return rnd() & 0xff;
	default: return rnd();
	}
}

static uint64_t *reg_slot(struct vmm_regs *r, unsigned n)
{
	static const size_t map[16] = {
		offsetof(struct vmm_regs, rax), offsetof(struct vmm_regs, rcx), offsetof(struct vmm_regs, rdx),
		offsetof(struct vmm_regs, rbx), offsetof(struct vmm_regs, rsp), offsetof(struct vmm_regs, rbp),
		offsetof(struct vmm_regs, rsi), offsetof(struct vmm_regs, rdi), offsetof(struct vmm_regs, r8),
		offsetof(struct vmm_regs, r9), offsetof(struct vmm_regs, r10), offsetof(struct vmm_regs, r11),
		offsetof(struct vmm_regs, r12), offsetof(struct vmm_regs, r13), offsetof(struct vmm_regs, r14),
		offsetof(struct vmm_regs, r15),
	};
	return (uint64_t *)(void *)((uint8_t *)r + map[n & 15]);
}

/* A general register other than RSP (and RDI, the memory base). */
static unsigned rnd_reg(bool mem)
{
	for (;;) {
		unsigned r = (unsigned)(rnd() % 16);
		if (r == 4 || (mem && r == 7))
			continue;
		return r;
	}
}

struct gen {
	uint32_t undef;
	bool skip;
};

static void default_fx(uint8_t *fx)
{
	memset(fx, 0, 512);
	fx[0] = 0x7f; fx[1] = 0x03;
	fx[24] = 0x80; fx[25] = 0x1f;
}

/* Build one case for template t with operand size sz; returns the flag mask to compare. */
static struct gen gen_case(const struct tmpl *t, unsigned sz, struct bth_case *c)
{
	struct gen g = { t->undef, false };
	uint8_t *p = c->code;
	bool mem = (t->forms & F_MEM) && (!(t->forms & F_REG) || (rnd() & 1));
	unsigned reg = 0, rm = 0;
	uint8_t rex = 0;

	memset(&c->in, 0, sizeof(c->in));
	for (unsigned i = 0; i < 16; i++)
		*reg_slot(&c->in.r, i) = rnd_val();
	for (unsigned i = 0; i < BTH_DATA_SIZE; i += 8) {
		uint64_t v = rnd();
		memcpy(c->in.data + i, &v, 8);
	}
	for (unsigned i = 0; i < BTH_STACK_SIZE; i += 8) {
		uint64_t v = rnd();
		memcpy(c->in.stack + i, &v, 8);
	}
	default_fx(c->in.fx);
	c->in.r.rflags = rnd() & BT_ARITH_FLAGS;
	c->in.r.rsp = BTH_STACK - 0x800 + (rnd() % 64) * 8;
	c->in.r.rdi = BTH_DATA + 0x400 + rnd() % 0x400;

	if (t->pre)
		*p++ = t->pre;
	if (sz == 2)
		*p++ = 0x66;
	uint8_t *rexp = p;
	if (sz == 8)
		rex = 0x48;

	if (t->digit == -1 || t->digit >= 0) {
		reg = t->digit >= 0 ? (unsigned)t->digit : rnd_reg(mem);
		rm = mem ? 7 : rnd_reg(false);
		if (t->digit == -1 && reg >= 8)
			rex |= 0x44;
		if (!mem && rm >= 8)
			rex |= 0x41;
		if (sz == 1 && !rex && (rnd() & 1))
			rex = 0x40;    /* SPL..DIL instead of AH..BH */
		if (sz == 1 && rex) {
			/* with REX, 4 = SPL: keep the stack pointer out of it */
			if ((reg & 7) == 4 && t->digit == -1)
				reg = reg == 4 ? 5 : reg;
			if (!mem && rm == 4)
				rm = 5;
		}
	}
	if (t->digit == -3) {
		rm = rnd_reg(false);
		if (t->op[0] == 0x50 || t->op[0] == 0x58)
			rm = rnd_reg(true);
		if (rm >= 8)
			rex |= 0x41;
	}
	if (rex)
		*p++ = rex;
	(void)rexp;

	uint8_t op_last = t->op[t->oplen - 1];
	unsigned cc = (unsigned)(rnd() % 16);
	if (!strncmp(t->name, "setcc", 5) || !strncmp(t->name, "cmovcc", 6) || !strncmp(t->name, "jcc", 3))
		op_last = (uint8_t)(op_last + cc);
	if (t->digit == -3)
		op_last = (uint8_t)(op_last + (rm & 7));
	if (t->oplen == 2)
		*p++ = t->op[0];
	*p++ = op_last;
	if (t->digit == -1 || t->digit >= 0) {
		if (mem) {
			int8_t disp = (int8_t)(rnd() % 128 - 64);
			*p++ = (uint8_t)(0x40 | ((reg & 7) << 3) | 7);    /* [rdi + disp8] */
			*p++ = (uint8_t)disp;
		} else {
			*p++ = (uint8_t)(0xc0 | ((reg & 7) << 3) | (rm & 7));
		}
	}
	unsigned isz = t->imm == 'z' ? (sz == 2 ? 2 : 4) : t->imm;
	uint64_t imm = rnd_val();
	if (t->special == S_SHIFT || t->special == S_ROT || t->special == S_SHXD)
		imm = rnd() % 80;
	if (t->op[0] == 0xc8) {              /* enter: small frame, level 0..3 */
		*p++ = (uint8_t)(rnd() % 64);
		*p++ = 0;
		*p++ = (uint8_t)(rnd() % 4);
		isz = 0;
	}
	if (t->op[0] == 0xe8) {              /* call +0; pop rax */
		memset(p, 0, 4);
		p += 4;
		*p++ = 0x58;
		isz = 0;
	}
	if (!strncmp(t->name, "jcc", 3)) {   /* jcc +3; inc rbx (3 bytes) */
		*p++ = 3;
		*p++ = 0x48; *p++ = 0xff; *p++ = 0xc3;
	}
	memcpy(p, &imm, isz);
	p += isz;
	c->len = (unsigned)(p - c->code);

	/* per-case flag masks and operand constraints */
	unsigned bits = sz * 8;
	unsigned count = 0;
	bool have_count = false;
	if (t->special == S_SHIFT || t->special == S_ROT) {
		uint64_t raw = t->op[0] == 0xd0 || t->op[0] == 0xd1 ? 1 :
		               t->op[0] == 0xd2 || t->op[0] == 0xd3 ? c->in.r.rcx : imm;
		count = (unsigned)raw & (sz == 8 ? 63 : 31);
		have_count = true;
		if (!mem && t->op[0] >= 0xd2 && (rm == 1)) {
			/* the shifted register is RCX itself: still fine, count read first */
		}
	}
	if (t->special == S_SHXD || t->special == S_SHXD_CL) {
		uint64_t raw = t->special == S_SHXD_CL ? c->in.r.rcx : imm;
		count = (unsigned)raw & (sz == 8 ? 63 : 31);
		have_count = true;
		if (count > bits)
			g.skip = true;           /* result undefined */
		if (count)
			g.undef |= BT_AF;
		if (count != 1)
			g.undef |= BT_OF;
		if (count == bits)
			g.undef |= UALL;
	}
	if (have_count && (t->special == S_SHIFT)) {
		if (count)
			g.undef |= BT_AF;
		if (count != 1)
			g.undef |= BT_OF;
		if (count >= bits)
			g.undef |= BT_CF;
	}
	if (have_count && t->special == S_ROT && count != 1)
		g.undef |= BT_OF;
	if (t->special == S_BITOFF && mem) {
		/* keep the bit offset inside the buffer */
		*reg_slot(&c->in.r, reg) = (uint64_t)((int64_t)(rnd() % 4000) - 2000);
	}
	if (t->special == S_DIV && (rnd() % 4)) {
		/* make most divisions succeed: small high half */
		c->in.r.rdx = rnd() % 3 == 0 ? (uint64_t)-1 : 0;
	}
	if (t->special == S_BSX && (rnd() % 4 == 0)) {
		if (mem)
			memset(c->in.data + ((c->in.r.rdi - BTH_DATA + (uint64_t)(int8_t)c->code[c->len - 1]) & 0xfff), 0, 8);
		else
			*reg_slot(&c->in.r, rm) = 0;
	}
	if (t->special == S_STR) {
		c->in.r.rsi = BTH_DATA + 0x400 + rnd() % 0x400;
		c->in.r.rdi = BTH_DATA + 0x400 + rnd() % 0x400;
		c->in.r.rcx = rnd() % 24;
		if (rnd() % 3 == 0)
			c->in.r.rflags |= BT_DF;
		if (rnd() % 2)
			memcpy(c->in.data + (c->in.r.rsi - BTH_DATA), c->in.data + (c->in.r.rdi - BTH_DATA), 16);
	}
	if (t->op[0] == 0xc8 || t->op[0] == 0xc9)
		c->in.r.rbp = BTH_STACK - 0x400 + (rnd() % 64) * 8;
	if (!strncmp(t->name, "sahf", 4) || !strncmp(t->name, "lahf", 4))
		g.undef = 0;
	/* Half the cases read the flags back through a SETcc on r8b..r15b: that
	 * goes through the lazy-flag fast paths of bt_cond for the op just run. */
	if (!(g.undef & ~(uint32_t)BT_AF) && t->special != S_STR && (rnd() & 1)) {
		uint8_t *q = c->code + c->len;
		q[0] = 0x41;
		q[1] = 0x0f;
		q[2] = (uint8_t)(0x90 + rnd() % 16);
		q[3] = (uint8_t)(0xc0 + rnd() % 8);
		c->len += 4;
	}
	(void)rexp;
	return g;
}

static void print_case(const char *what, const struct tmpl *t, unsigned sz, const struct bth_case *c,
                       const struct bth_state *eng)
{
	fprintf(stderr, "FAIL %s: %s (size %u): bytes", what, t->name, sz * 8);
	for (unsigned i = 0; i < c->len; i++)
		fprintf(stderr, " %02x", c->code[i]);
	fprintf(stderr, "\n");
	static const char *names[16] = { "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp",
	                                 "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15" };
	const uint64_t *ri = &c->in.r.rax, *rn = &c->out.r.rax, *re = &eng->r.rax;
	for (unsigned i = 0; i < 16; i++)
		fprintf(stderr, "  %-3s in %016llx native %016llx bt %016llx%s\n", names[i],
		        (unsigned long long)ri[i], (unsigned long long)rn[i], (unsigned long long)re[i],
		        rn[i] != re[i] ? "  <==" : "");
	fprintf(stderr, "  rflags in %04llx native %04llx bt %04llx   vector native %d bt %d\n",
	        (unsigned long long)(c->in.r.rflags & 0xfff), (unsigned long long)(c->out.r.rflags & 0xfff),
	        (unsigned long long)(eng->r.rflags & 0xfff), c->out.vector, eng->vector);
}

int main(void)
{
	const char *s = getenv("VIREO_DIFF_SEED");
	const char *cs = getenv("VIREO_DIFF_CASES");
	const char *only = getenv("VIREO_DIFF_ONLY");
	unsigned per = cs ? (unsigned)atoi(cs) : 40;
	struct bthost h;
	unsigned ntm = sizeof(tmpls) / sizeof(tmpls[0]);
	unsigned failures = 0, total = 0, skipped = 0;

	seed = s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	const uint64_t seed0 = seed;
	printf("test_bt_diff: seed %llu (VIREO_DIFF_SEED=%llu reproduces)\n", (unsigned long long)seed,
	       (unsigned long long)seed);
	if (bthost_init(&h, 3)) {
		fprintf(stderr, "bthost_init failed\n");
		return 1;
	}
	/* all cases of one template/size pair are generated first, run natively in
	 * one child, then run on bt and compared */
	struct bth_case *cases = mmap(NULL, sizeof(struct bth_case) * per, PROT_READ | PROT_WRITE,
	                              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct gen *gens = calloc(per, sizeof(*gens));
	static struct bth_state eng;
	if (cases == MAP_FAILED || !gens)
		return 1;

	for (unsigned ti = 0; ti < ntm; ti++) {
		const struct tmpl *t = &tmpls[ti];
		if (only && !strstr(t->name, only))
			continue;
		for (unsigned sz = 1; sz <= 8; sz <<= 1) {
			if (!(t->sizes & sz))
				continue;
			for (unsigned i = 0; i < per; i++)
				gens[i] = gen_case(t, sz, &cases[i]);
			if (bth_native_batch(cases, per)) {
				fprintf(stderr, "FAIL: native run of %s died\n", t->name);
				failures++;
				continue;
			}
			unsigned tfail = 0;
			for (unsigned i = 0; i < per; i++) {
				struct bth_case *c = &cases[i];
				if (gens[i].skip) {
					skipped++;
					continue;
				}
				total++;
				bthost_load(&h, c->code, c->len);
				if (bthost_run(&h, &c->in, &eng)) {
					print_case("engine run", t, sz, c, &eng);
					tfail++;
					continue;
				}
				const char *bad = NULL;
				if (c->out.vector != eng.vector) {
					bad = "exception";
				} else if (c->out.vector < 0) {
					uint64_t fm = BT_ARITH_FLAGS & ~(uint64_t)gens[i].undef;
					const uint64_t *a = &c->out.r.rax, *b = &eng.r.rax;
					for (unsigned k = 0; k < 16; k++)
						if (a[k] != b[k])
							bad = "registers";
					if (!bad && ((c->out.r.rflags ^ eng.r.rflags) & (fm | BT_DF)))
						bad = "flags";
					if (!bad && memcmp(c->out.data, eng.data, BTH_DATA_SIZE))
						bad = "memory";
					if (!bad && memcmp(c->out.stack, eng.stack, BTH_STACK_SIZE))
						bad = "stack";
				}
				if (bad) {
					if (tfail < 2)
						print_case(bad, t, sz, c, &eng);
					tfail++;
				}
			}
			if (tfail) {
				fprintf(stderr, "  %s size %u: %u of %u cases failed\n", t->name, sz * 8, tfail, per);
				failures += tfail;
			}
		}
	}
	printf("test_bt_diff: %u cases, %u failed, %u skipped (seed %llu)\n", total, failures, skipped,
	       (unsigned long long)seed0);
	bthost_fini(&h);
	free(gens);
	munmap(cases, sizeof(struct bth_case) * per);
	return failures ? 1 : 0;
}

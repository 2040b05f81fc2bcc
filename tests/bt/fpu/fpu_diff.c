/*
 * fpu_diff.c — differential test of the bt engine's x87, MMX, SSE..SSSE3 and
 * FXSAVE handlers against the host CPU.
 *
 * Each case picks an instruction (every x87 memory and register form, and a
 * table of MMX/SSE encodings with random registers, REX bits and [rbx]
 * memory operands), a random machine state (x87 stack with NaNs, infinities,
 * denormals, unnormals and empty slots; random FCW precision/rounding;
 * random MXCSR rounding/DAZ/FTZ, sometimes unmasked exceptions; XMM lanes of
 * special floats and doubles; random GPRs, flags and memory), runs it once
 * natively (fxrstor; insn; fxsave from an executable page, faults caught as
 * signals) and once through the bt handlers, and compares FCW, FSW, tags,
 * ST0-7, MXCSR, XMM0-15, RAX/RCX/RDX, arithmetic flags, memory and the fault
 * vector.  FOP/FIP/FDP are not compared (the native ones are host addresses).
 *
 *   fpu_diff [cases [seed]]      a failure prints the case and its seed
 */
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "fpu_env.h"
#include "fpu_gen.h"

/* ---- native runner ---- */

struct native_ctx {
	uint8_t fx[512];
	uint64_t rax, rcx, rdx, mem;   /* 512 .. 543 */
	uint64_t rflags;               /* 544 */
	uint32_t host_mxcsr;           /* 552 */
	uint32_t pad[3];
} __attribute__((aligned(64)));

void fpu_diff_pro(void);
void fpu_diff_pro_end(void);
void fpu_diff_epi(void);
void fpu_diff_epi_end(void);
__asm__(
	".text\n"
	".globl fpu_diff_pro\n.globl fpu_diff_pro_end\n.globl fpu_diff_epi\n.globl fpu_diff_epi_end\n"
	"fpu_diff_pro:\n"
	"	push %rbx\n	push %r12\n	push %rbp\n"
	"	mov %rdi, %r12\n"
	"	fxrstor64 (%r12)\n"
	"	mov 512(%r12), %rax\n	mov 520(%r12), %rcx\n	mov 528(%r12), %rdx\n"
	"	mov 536(%r12), %rbx\n	mov 536(%r12), %rdi\n"
	"	pushq 544(%r12)\n	popfq\n"
	"fpu_diff_pro_end:\n"
	"fpu_diff_epi:\n"
	"	pushfq\n	popq 544(%r12)\n"
	"	mov %rax, 512(%r12)\n	mov %rcx, 520(%r12)\n	mov %rdx, 528(%r12)\n"
	"	fxsave64 (%r12)\n"
	"	fninit\n	ldmxcsr 552(%r12)\n"
	"	pop %rbp\n	pop %r12\n	pop %rbx\n	ret\n"
	"fpu_diff_epi_end:\n");

static uint8_t *code_page;
static sigjmp_buf native_jmp;
static volatile int native_sig;

static void on_signal(int sig, siginfo_t *si, void *uc)
{
	(void)si;
	(void)uc;
	native_sig = sig;
	siglongjmp(native_jmp, 1);
}

static int native_run(struct native_ctx *c, const uint8_t *insn, unsigned len)
{
	size_t pro = (size_t)((uintptr_t)fpu_diff_pro_end - (uintptr_t)fpu_diff_pro);
	size_t epi = (size_t)((uintptr_t)fpu_diff_epi_end - (uintptr_t)fpu_diff_epi);
	memcpy(code_page, (const void *)(uintptr_t)fpu_diff_pro, pro);
	memcpy(code_page + pro, insn, len);
	memcpy(code_page + pro + len, (const void *)(uintptr_t)fpu_diff_epi, epi);
	__builtin___clear_cache((char *)code_page, (char *)code_page + pro + len + epi);
	void (*fn)(struct native_ctx *) = (void (*)(struct native_ctx *))(uintptr_t)code_page;
	native_sig = 0;
	if (sigsetjmp(native_jmp, 1) == 0) {
		fn(c);
		return -1;
	}
	__asm__ volatile("fninit");
	uint32_t csr = 0x1f80;
	__asm__ volatile("ldmxcsr %0" : : "m"(csr));
	switch (native_sig) {
	case SIGILL: return BT_UD;
	case SIGFPE: return BT_XM;
	default: return BT_GP;
	}
}

/* ---- one case ---- */

struct state {
	struct native_ctx c;
	uint8_t mem[FPU_GEN_MEMSZ] __attribute__((aligned(64)));
};

static const char *reg_names[] = {"fcw", "fsw", "ftw"};

static void hexdump(const char *what, const uint8_t *p, unsigned n)
{
	fprintf(stderr, "  %s:", what);
	for (unsigned i = 0; i < n; i++)
		fprintf(stderr, " %02x", p[i]);
	fputc('\n', stderr);
}

static unsigned cases_run, failures;
static struct bt_cpu *cpu;

static bool run_case(uint64_t seed, ZydisDecoder *dec, bool verbose)
{
	static struct state st, nat;
	uint8_t insn[16];
	bool is_mem = false;
	unsigned off, len;
	const char *name;

	static struct fpu_gen_state g;
	fpu_gen_rng = seed;
	fpu_gen_state(&g, &off);
	len = fpu_gen_insn(dec, insn, &is_mem, &name);
	memset(&st, 0, sizeof(st));
	memcpy(st.c.fx, g.fx, 512);
	st.c.rax = g.rax;
	st.c.rcx = g.rcx;
	st.c.rdx = g.rdx;
	st.c.rflags = (__builtin_ia32_readeflags_u64() & ~0x8d5ull & ~0x400ull) | g.flags;
	st.c.host_mxcsr = 0x1f80;
	memcpy(st.mem, g.mem, FPU_GEN_MEMSZ);
	ZydisDecodedInstruction zi;
	struct bt_insn in;
	if (ZYAN_FAILED(ZydisDecoderDecodeFull(dec, insn, len, &in.zi, in.ops))) {
		fprintf(stderr, "FAIL %s: the test encoded an instruction Zydis rejects\n", name);
		hexdump("bytes", insn, len);
		return false;
	}
	zi = in.zi;
	if (zi.length != len) {
		fprintf(stderr, "FAIL %s: length mismatch %u vs %u\n", name, zi.length, len);
		return false;
	}

	/* native */
	nat = st;
	nat.c.mem = (uint64_t)(uintptr_t)(nat.mem + off);
	int nvec = native_run(&nat.c, insn, len);

	/* engine */
	memset(cpu, 0, sizeof(*cpu));
	cpu->cr0 = BT_CR0_PE | BT_CR0_MP | BT_CR0_ET | BT_CR0_NE | BT_CR0_PG;
	cpu->cr4 = BT_CR4_PAE | BT_CR4_OSFXSR | BT_CR4_OSXMMEXCPT;
	cpu->efer = BT_EFER_LME | BT_EFER_LMA;
	cpu->seg[BT_CS].attr = BT_SEG_L | BT_SEG_P | BT_SEG_S;
	static struct state emu;
	emu = st;
	fpu_env_mem = emu.mem;
	fpu_env_mem_len = FPU_GEN_MEMSZ;
	bt_fxrstor(cpu, emu.c.fx);
	cpu->gpr[BT_RAX] = st.c.rax;
	cpu->gpr[BT_RCX] = st.c.rcx;
	cpu->gpr[BT_RDX] = st.c.rdx;
	cpu->gpr[BT_RBX] = cpu->gpr[BT_RDI] = (uint64_t)(uintptr_t)(emu.mem + off);
	cpu->rflags = st.c.rflags;
	cpu->insn_start_rip = 0x1000;
	cpu->rip = 0x1000 + len;
	int evec = fpu_env_run(cpu, &in);

	bool ok = true;
	char why[256] = "";
	if (nvec != evec) {
		snprintf(why, sizeof(why), "fault: native %d engine %d", nvec, evec);
		ok = false;
	} else if (nvec < 0) {
		uint8_t efx[512];
		bt_fxsave(cpu, efx);
		for (unsigned i = 0; i < 3 && ok; i++) {
			unsigned o = i == 2 ? 4 : 2 * i, n = i == 2 ? 1 : 2;
			if (memcmp(efx + o, nat.c.fx + o, n)) {
				snprintf(why, sizeof(why), "%s", reg_names[i]);
				ok = false;
			}
		}
		if (ok && memcmp(efx + 24, nat.c.fx + 24, 4)) {
			snprintf(why, sizeof(why), "mxcsr");
			ok = false;
		}
		for (unsigned i = 0; i < 8 && ok; i++)
			if (memcmp(efx + 32 + 16 * i, nat.c.fx + 32 + 16 * i, 10)) {
				snprintf(why, sizeof(why), "st%u", i);
				ok = false;
			}
		for (unsigned i = 0; i < 16 && ok; i++)
			if (memcmp(efx + 160 + 16 * i, nat.c.fx + 160 + 16 * i, 16)) {
				snprintf(why, sizeof(why), "xmm%u", i);
				ok = false;
			}
		if (ok && (cpu->gpr[BT_RAX] != nat.c.rax || cpu->gpr[BT_RCX] != nat.c.rcx ||
		           cpu->gpr[BT_RDX] != nat.c.rdx)) {
			snprintf(why, sizeof(why), "gpr: rax %llx/%llx rcx %llx/%llx rdx %llx/%llx",
			         (unsigned long long)nat.c.rax, (unsigned long long)cpu->gpr[BT_RAX],
			         (unsigned long long)nat.c.rcx, (unsigned long long)cpu->gpr[BT_RCX],
			         (unsigned long long)nat.c.rdx, (unsigned long long)cpu->gpr[BT_RDX]);
			ok = false;
		}
		if (ok && ((cpu->rflags ^ nat.c.rflags) & 0x8d5)) {
			snprintf(why, sizeof(why), "flags %llx/%llx", (unsigned long long)(nat.c.rflags & 0x8d5),
			         (unsigned long long)(cpu->rflags & 0x8d5));
			ok = false;
		}
		/* Environment stores hold host FIP/FDP/FOP: compare around them. */
		unsigned skip_lo, skip_hi;
		fpu_gen_mem_skip(insn, is_mem, zi.mnemonic, &skip_lo, &skip_hi);
		for (unsigned i = 0; i < FPU_GEN_MEMSZ && ok; i++) {
			if (i >= off + skip_lo && i < off + skip_hi)
				continue;
			if (emu.mem[i] != nat.mem[i]) {
				snprintf(why, sizeof(why), "memory at operand%+d: native %02x engine %02x",
				         (int)i - (int)off, nat.mem[i], emu.mem[i]);
				ok = false;
			}
		}
		if (ok && verbose) {
			fprintf(stderr, "ok %s\n", name);
		}
		if (!ok) {
			hexdump("native fx 0-31", nat.c.fx, 32);
			hexdump("engine fx 0-31", efx, 32);
			for (unsigned i = 0; i < 8; i++) {
				char l[32];
				snprintf(l, sizeof(l), "st%u native/engine", i);
				hexdump(l, nat.c.fx + 32 + 16 * i, 10);
				hexdump("               ", efx + 32 + 16 * i, 10);
			}
		}
	}
	if (!ok) {
		char txt[96] = "";
		ZydisFormatter fmt;
		ZydisFormatterInit(&fmt, ZYDIS_FORMATTER_STYLE_INTEL);
		ZydisFormatterFormatInstruction(&fmt, &in.zi, in.ops, in.zi.operand_count_visible, txt,
		                                sizeof(txt), 0x1000, NULL);
		fprintf(stderr, "FAIL seed %llu: %s (%s): %s\n", (unsigned long long)seed, txt, name, why);
		hexdump("bytes", insn, len);
		hexdump("operand before", st.mem + off, 32);
		hexdump("state fx 0-31", st.c.fx, 32);
	}
	return ok;
}

/* ---- directed checks: device-not-available, pending #MF, #UD rules ---- */

static int directed_vector(ZydisDecoder *dec, const char *hex, uint64_t cr0, uint64_t cr4,
                           uint16_t fcw, uint16_t fsw)
{
	uint8_t b[16];
	unsigned n = 0;
	for (const char *p = hex; *p; ) {
		if (*p == ' ') { p++; continue; }
		unsigned v;
		sscanf(p, "%2x", &v);
		b[n++] = (uint8_t)v;
		p += 2;
	}
	struct bt_insn in;
	if (ZYAN_FAILED(ZydisDecoderDecodeFull(dec, b, n, &in.zi, in.ops)))
		return -2;
	static uint8_t mem[64] __attribute__((aligned(16)));
	memset(cpu, 0, sizeof(*cpu));
	bt_fpu_reset(cpu);
	cpu->cr0 = cr0;
	cpu->cr4 = cr4;
	cpu->fcw = fcw;
	cpu->fsw = fsw;
	fpu_env_mem = mem;
	fpu_env_mem_len = sizeof(mem);
	cpu->gpr[BT_RBX] = (uint64_t)(uintptr_t)mem;
	return fpu_env_run(cpu, &in);
}

static unsigned directed(ZydisDecoder *dec)
{
	const uint64_t base = BT_CR0_PE | BT_CR0_MP | BT_CR0_ET | BT_CR0_NE | BT_CR0_PG;
	const uint64_t x4 = BT_CR4_OSFXSR | BT_CR4_OSXMMEXCPT;
	static const struct {
		const char *what, *hex;
		uint64_t cr0_set, cr0_clr, cr4;
		uint16_t fcw, fsw;
		int want;
	} d[] = {
		{"fadd ok", "d8 c1", 0, 0, x4, 0x37f, 0, -1},
		{"fadd TS -> #NM", "d8 c1", BT_CR0_TS, 0, x4, 0x37f, 0, BT_NM},
		{"fadd EM -> #NM", "d8 c1", BT_CR0_EM, 0, x4, 0x37f, 0, BT_NM},
		{"fadd pending -> #MF", "d8 c1", 0, 0, x4, 0x37e, 0x0081, BT_MF},
		{"fadd pending, NE=0: no #MF", "d8 c1", 0, BT_CR0_NE, x4, 0x37e, 0x0081, -1},
		{"fninit pending: no #MF", "db e3", 0, 0, x4, 0x37e, 0x0081, -1},
		{"fnstsw pending: no #MF", "df e0", 0, 0, x4, 0x37e, 0x0081, -1},
		{"fwait pending -> #MF", "9b", 0, 0, x4, 0x37e, 0x0081, BT_MF},
		{"fwait TS+MP -> #NM", "9b", BT_CR0_TS, 0, x4, 0x37f, 0, BT_NM},
		{"fwait TS, MP=0: ok", "9b", BT_CR0_TS, BT_CR0_MP, x4, 0x37f, 0, -1},
		{"paddb mm pending -> #MF", "0f fc c1", 0, 0, x4, 0x37e, 0x0081, BT_MF},
		{"paddb mm EM -> #UD", "0f fc c1", BT_CR0_EM, 0, x4, 0x37f, 0, BT_UD},
		{"addps OSFXSR=0 -> #UD", "0f 58 c1", 0, 0, 0, 0x37f, 0, BT_UD},
		{"addps TS -> #NM", "0f 58 c1", BT_CR0_TS, 0, x4, 0x37f, 0, BT_NM},
		{"addps EM -> #UD", "0f 58 c1", BT_CR0_EM, 0, x4, 0x37f, 0, BT_UD},
		{"fxsave TS -> #NM", "0f ae 03", BT_CR0_TS, 0, x4, 0x37f, 0, BT_NM},
		{"movaps misaligned -> #GP", "0f 28 43 04", 0, 0, x4, 0x37f, 0, BT_GP},
		{"movups misaligned: ok", "0f 10 43 04", 0, 0, x4, 0x37f, 0, -1},
		{"addsd misaligned m64: ok", "f2 0f 58 43 04", 0, 0, x4, 0x37f, 0, -1},
		{"fxsave misaligned -> #GP", "0f ae 43 08", 0, 0, x4, 0x37f, 0, BT_GP},
	};
	unsigned bad = 0;
	for (size_t i = 0; i < sizeof(d) / sizeof(d[0]); i++) {
		uint64_t cr0 = (base | d[i].cr0_set) & ~d[i].cr0_clr;
		int v = directed_vector(dec, d[i].hex, cr0, d[i].cr4, d[i].fcw, d[i].fsw);
		if (v != d[i].want) {
			fprintf(stderr, "FAIL directed '%s': vector %d, want %d\n", d[i].what, v, d[i].want);
			bad++;
		}
	}
	/* #XM vs #UD for an unmasked SIMD exception, MXCSR flag left set */
	{
		static const char *hex = "0f 5e c1";  /* divps xmm0, xmm1 with xmm1 = 0 */
		for (int osx = 0; osx < 2; osx++) {
			uint8_t b[3] = {0x0f, 0x5e, 0xc1};
			struct bt_insn in;
			(void)hex;
			ZydisDecoderDecodeFull(dec, b, 3, &in.zi, in.ops);
			memset(cpu, 0, sizeof(*cpu));
			bt_fpu_reset(cpu);
			cpu->cr0 = base;
			cpu->cr4 = BT_CR4_OSFXSR | (osx ? BT_CR4_OSXMMEXCPT : 0);
			cpu->mxcsr = 0x1f80 & ~0x200u;   /* ZE unmasked */
			float one = 1.0f;
			memcpy(cpu->xmm[0], &one, 4);
			uint8_t before[16];
			memcpy(before, cpu->xmm[0], 16);
			int v = fpu_env_run(cpu, &in);
			if (v != (osx ? BT_XM : BT_UD) || !(cpu->mxcsr & 0x4) || memcmp(before, cpu->xmm[0], 16)) {
				fprintf(stderr, "FAIL directed divps/0 unmasked (OSXMMEXCPT=%d): vector %d mxcsr %x\n",
				        osx, v, cpu->mxcsr);
				bad++;
			}
		}
	}
	/* LDMXCSR reserved bit -> #GP */
	{
		static uint8_t mem[16] __attribute__((aligned(16)));
		uint32_t v = 0x10000 | 0x1f80;
		memcpy(mem, &v, 4);
		uint8_t b[3] = {0x0f, 0xae, 0x13};
		struct bt_insn in;
		ZydisDecoderDecodeFull(dec, b, 3, &in.zi, in.ops);
		memset(cpu, 0, sizeof(*cpu));
		bt_fpu_reset(cpu);
		cpu->cr0 = base;
		cpu->cr4 = x4;
		fpu_env_mem = mem;
		fpu_env_mem_len = sizeof(mem);
		cpu->gpr[BT_RBX] = (uint64_t)(uintptr_t)mem;
		int r = fpu_env_run(cpu, &in);
		if (r != BT_GP || cpu->mxcsr != 0x1f80) {
			fprintf(stderr, "FAIL directed ldmxcsr reserved bit: vector %d mxcsr %x\n", r, cpu->mxcsr);
			bad++;
		}
	}
	return bad;
}

int main(int argc, char **argv)
{
	unsigned cases = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 0) : 20000;
	uint64_t seed = argc > 2 ? strtoull(argv[2], NULL, 0) : 0x5eed;
	bool one = argc > 3;

	code_page = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (code_page == MAP_FAILED) {
		perror("fpu_diff: mmap PROT_EXEC");
		return 1;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_signal;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigaction(SIGILL, &sa, NULL);
	sigaction(SIGFPE, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);

	cpu = aligned_alloc(64, (sizeof(struct bt_cpu) + 63) & ~(size_t)63);
	if (!cpu)
		return 1;
	bt_x87_init();
	bt_sse_init();

	ZydisDecoder dec;
	ZydisDecoderInit(&dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);

	if (!one)
		failures += directed(&dec);
	for (unsigned i = 0; i < cases; i++) {
		uint64_t s = seed + (uint64_t)i * 0x100000001ull;
		cases_run++;
		if (!run_case(s, &dec, one)) {
			failures++;
			if (failures > 20) {
				fprintf(stderr, "too many failures, stopping\n");
				break;
			}
		}
	}
	printf("fpu_diff: %u cases (seed %#llx), %u failures\n", cases_run, (unsigned long long)seed, failures);
	return failures ? 1 : 0;
}

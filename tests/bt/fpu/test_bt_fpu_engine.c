/*
 * test_bt_fpu_engine.c — the FPU differential test through the whole bt
 * engine: the same random x87/MMX/SSE instructions and states as fpu_diff.c,
 * but run at CPL 3 in a bthost guest (decode, translation, operand access,
 * paging, exception delivery through the IDT, get_fpu/set_fpu) and compared
 * with the host CPU running the same code at the same addresses.
 *
 *   test_bt_fpu_engine [cases [seed]]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "bthost.h"
#include "fpu_gen.h"
#include "vmm/bt/bt.h"

#define BATCH 250

struct meta {
	uint64_t seed;
	const char *name;
	bool is_mem, x87;
	unsigned off;
	ZydisMnemonic m;
};

static void dump(const char *what, const uint8_t *p, unsigned n)
{
	fprintf(stderr, "  %s:", what);
	for (unsigned i = 0; i < n; i++)
		fprintf(stderr, " %02x", p[i]);
	fputc('\n', stderr);
}

static const char *compare(const struct bth_case *c, const struct bth_state *e, const struct meta *mt)
{
	static char why[128];
	int nv = c->out.vector, ev = e->vector;
	/* The native runner sees every SIGFPE as #MF; SSE faults are #XM. */
	if (nv == BT_MF && !mt->x87)
		nv = BT_XM;
	if (nv != ev) {
		snprintf(why, sizeof(why), "exception: native %d bt %d", nv, ev);
		return why;
	}
	if (nv >= 0)
		return NULL;
	const uint64_t *a = &c->out.r.rax, *b = &e->r.rax;
	for (unsigned k = 0; k < 16; k++)
		if (a[k] != b[k]) {
			snprintf(why, sizeof(why), "gpr %u: native %llx bt %llx", k, (unsigned long long)a[k],
			         (unsigned long long)b[k]);
			return why;
		}
	if ((c->out.r.rflags ^ e->r.rflags) & BT_ARITH_FLAGS)
		return "flags";
	if (memcmp(c->out.fx, e->fx, 6))
		return "fcw/fsw/ftw";
	if (memcmp(c->out.fx + 24, e->fx + 24, 4))
		return "mxcsr";
	for (unsigned i = 0; i < 8; i++)
		if (memcmp(c->out.fx + 32 + 16 * i, e->fx + 32 + 16 * i, 10)) {
			snprintf(why, sizeof(why), "st%u", i);
			return why;
		}
	if (memcmp(c->out.fx + 160, e->fx + 160, 256))
		return "xmm";
	unsigned lo, hi;
	fpu_gen_mem_skip(c->code, mt->is_mem, mt->m, &lo, &hi);
	for (unsigned i = 0; i < BTH_DATA_SIZE; i++) {
		if (i >= mt->off + lo && i < mt->off + hi)
			continue;
		if (c->out.data[i] != e->data[i]) {
			snprintf(why, sizeof(why), "memory at operand%+d", (int)i - (int)mt->off);
			return why;
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned total = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 0) : 2000;
	uint64_t seed = argc > 2 ? strtoull(argv[2], NULL, 0) : 0xf9u;
	struct bthost h;
	ZydisDecoder dec;
	unsigned failures = 0, done = 0;

	ZydisDecoderInit(&dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
	if (bthost_init(&h, 3)) {
		fprintf(stderr, "FAIL: bthost_init\n");
		return 1;
	}
	struct bth_case *cases = mmap(NULL, sizeof(struct bth_case) * BATCH, PROT_READ | PROT_WRITE,
	                              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	static struct meta meta[BATCH];
	static struct fpu_gen_state g;
	static struct bth_state eng;
	if (cases == MAP_FAILED)
		return 1;

	while (done < total && failures < 20) {
		unsigned n = total - done < BATCH ? total - done : BATCH;
		for (unsigned i = 0; i < n; i++) {
			struct bth_case *c = &cases[i];
			struct meta *mt = &meta[i];
			ZydisDecodedInstruction zi;
			ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
			memset(c, 0, sizeof(*c));
			mt->seed = seed + (uint64_t)(done + i) * 0x100000001ull;
			fpu_gen_rng = mt->seed;
			fpu_gen_state(&g, &mt->off);
			c->len = fpu_gen_insn(&dec, c->code, &mt->is_mem, &mt->name);
			if (ZYAN_FAILED(ZydisDecoderDecodeFull(&dec, c->code, c->len, &zi, ops)))
				zi.mnemonic = ZYDIS_MNEMONIC_INVALID;
			mt->m = zi.mnemonic;
			mt->x87 = c->code[0] == 0x9b || (c->code[0] >= 0xd8 && c->code[0] <= 0xdf);
			memcpy(c->in.fx, g.fx, 512);
			memcpy(c->in.data, g.mem, FPU_GEN_MEMSZ);
			c->in.r.rax = g.rax;
			c->in.r.rcx = g.rcx;
			c->in.r.rdx = g.rdx;
			c->in.r.rbx = c->in.r.rdi = BTH_DATA + mt->off;
			c->in.r.rsp = BTH_STACK - 0x100;
			c->in.r.rflags = g.flags | 0x202;
		}
		if (bth_native_batch(cases, n)) {
			fprintf(stderr, "FAIL: the native runner died\n");
			return 1;
		}
		for (unsigned i = 0; i < n; i++) {
			struct bth_case *c = &cases[i];
			const char *bad;
			bthost_load(&h, c->code, c->len);
			if (bthost_run(&h, &c->in, &eng))
				bad = "engine run did not finish";
			else
				bad = compare(c, &eng, &meta[i]);
			if (bad) {
				fprintf(stderr, "FAIL seed %llu (%s): %s\n", (unsigned long long)meta[i].seed,
				        meta[i].name, bad);
				dump("bytes", c->code, c->len);
				dump("fx in  0-31", c->in.fx, 32);
				dump("native 0-31", c->out.fx, 32);
				dump("bt     0-31", eng.fx, 32);
				failures++;
			}
		}
		done += n;
	}
	printf("test_bt_fpu_engine: %u cases (seed %#llx), %u failures\n", done, (unsigned long long)seed,
	       failures);
	bthost_fini(&h);
	return failures ? 1 : 0;
}

/*
 * fpu_gen.h — random states and instruction encodings for the bt FPU tests.
 * Memory operands are encoded as [rbx] (MASKMOVQ/MASKMOVDQU: [rdi]); the
 * caller points both at the operand.
 */
#ifndef VIREO_TEST_FPU_GEN_H
#define VIREO_TEST_FPU_GEN_H

#include <stdbool.h>
#include <stdint.h>

#include <Zydis/Zydis.h>

#define FPU_GEN_MEMSZ 1024

struct fpu_gen_state {
	uint8_t fx[512] __attribute__((aligned(16)));   /* FXSAVE64 image */
	uint64_t rax, rcx, rdx;
	uint64_t flags;                                   /* arithmetic flags */
	uint8_t mem[FPU_GEN_MEMSZ] __attribute__((aligned(64)));
};

extern uint64_t fpu_gen_rng;   /* seed before each case */
uint64_t fpu_gen_rnd(void);
/* A random state; *off is the memory operand's offset in mem. */
void fpu_gen_state(struct fpu_gen_state *s, unsigned *off);
/* A random instruction; returns its length. */
unsigned fpu_gen_insn(const ZydisDecoder *dec, uint8_t insn[16], bool *is_mem, const char **name);
/* Bytes [lo, hi) past the operand that hold host addresses natively. */
void fpu_gen_mem_skip(const uint8_t *insn, bool is_mem, ZydisMnemonic m, unsigned *lo, unsigned *hi);

#endif

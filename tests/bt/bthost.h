/*
 * bthost.h — a test host for the bt engine, and the native runner used by
 * the differential tests.
 *
 * Guest layout (identity-mapped, 2 MiB pages, user-accessible):
 *   BTH_PT    0x001000  page tables          BTH_GDT  0x005000  GDT
 *   BTH_TSS   0x004000  64-bit TSS           BTH_IDT  0x006000  IDT (256 gates)
 *   BTH_STUBS 0x008000  exception stubs: mov al,vec; out 0xE1,al; hlt
 *   BTH_CODE  0x100000  test code (+ "out 0xE0, al; jmp $" appended)
 *   BTH_DATA  0x200000  data buffer (BTH_DATA_SIZE) for memory operands
 *   BTH_STACK 0x300000  top of the user stack (grows down into 0x2F0000..)
 * The native runner maps the same addresses in a forked child, so pointers
 * in registers mean the same thing in both.
 */
#ifndef VIREO_TESTS_BTHOST_H
#define VIREO_TESTS_BTHOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/vmm.h"

#define BTH_RAM_SIZE   (16u << 20)
#define BTH_PT         0x001000u
#define BTH_TSS        0x004000u
#define BTH_GDT        0x005000u
#define BTH_IDT        0x006000u
#define BTH_STUBS      0x008000u
#define BTH_KSTACK     0x0F0000u
#define BTH_CODE       0x100000u
#define BTH_CODE_SIZE  0x10000u
#define BTH_DATA       0x200000u
#define BTH_DATA_SIZE  0x1000u
#define BTH_STACK      0x300000u
#define BTH_STACK_SIZE 0x1000u     /* compared region below BTH_STACK */

#define BTH_PORT_DONE  0xE0
#define BTH_PORT_EXC   0xE1

/* Architectural state a test sets and compares (GPRs in vmm_regs order). */
struct bth_state {
	struct vmm_regs r;                  /* offsets used by the trampoline */
	uint8_t fx[512] __attribute__((aligned(16)));   /* FXSAVE image */
	uint8_t data[BTH_DATA_SIZE];
	uint8_t stack[BTH_STACK_SIZE];      /* [BTH_STACK - size, BTH_STACK) */
	int vector;                         /* exception taken, or -1 */
};

struct bthost {
	struct vmm_vm *vm;
	struct vmm_vcpu *vcpu;
	uint8_t *ram;
	int exc_vector;
	bool done;
	uint64_t port_log[16];              /* other OUTs, for tests */
	unsigned nport_log;
	bool quiet;                         /* no messages on unfinished runs (fuzzing) */
	/* Optional: called on the vCPU thread for OUTs to other ports, mid-run. */
	void (*on_out)(struct bthost *h, uint16_t port, uint64_t value);
	struct vmm_sregs sregs;             /* the mode bthost_run starts in */
};

/* Create a VM with one vCPU in 64-bit mode; cpl 3 (user) or 0. */
int bthost_init(struct bthost *h, unsigned cpl);
void bthost_fini(struct bthost *h);
/* Rewrite page tables, GDT, TSS, IDT and reset the vCPU into 64-bit mode at cpl. */
int bthost_reset(struct bthost *h, unsigned cpl);
/* Watchdog: kick a run that has not finished after ms (default 3000). */
void bthost_set_timeout_ms(unsigned ms);
/* Copy code to BTH_CODE (appending the done marker) and forget old translations. */
void bthost_load(struct bthost *h, const uint8_t *code, size_t len);
/* Run from BTH_CODE with the given state; fill out.  Returns 0, or -1 when
 * the guest neither finished nor faulted (message on stderr). */
int bthost_run(struct bthost *h, const struct bth_state *in, struct bth_state *out);

/*
 * The native runner: runs code at BTH_CODE in a forked child with the same
 * memory layout.  Cases are run in batches: bth_native_batch() forks one
 * child that executes n cases (code[i], in[i]) writing out[i]; a fault in a
 * case (SIGFPE, SIGSEGV, SIGILL...) is recorded as out[i].vector and the
 * child goes on.  Returns 0, or -1 if the child died.
 */
struct bth_case {
	uint8_t code[32];
	unsigned len;
	struct bth_state in;
	struct bth_state out;
};
int bth_native_batch(struct bth_case *cases, unsigned n);

/* Deterministic PRNG (xorshift64*), seeded per run. */
uint64_t bth_rand(uint64_t *s);

#endif

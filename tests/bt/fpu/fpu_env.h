/*
 * fpu_env.h — flat-memory surroundings for running the bt FPU/SSE handlers
 * alone (see fpu_env.c).
 */
#ifndef VIREO_TEST_FPU_ENV_H
#define VIREO_TEST_FPU_ENV_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/bt/bt.h"

extern uint8_t *fpu_env_mem;      /* the only guest-accessible memory */
extern size_t fpu_env_mem_len;
extern int fpu_env_vector;        /* last raised vector, -1 = none */

bt_handler fpu_env_handler(ZydisMnemonic m);
/* Execute one decoded instruction; returns the exception vector or -1. */
int fpu_env_run(struct bt_cpu *cpu, const struct bt_insn *in);

#endif

/*
 * bt_fpu.h — helpers shared by the bt engine's x87/MMX/SSE files
 * (bt_x87.c, bt_sse.c, bt_sse_int.c).  Not part of the bt.h contract.
 */
#ifndef VIREO_BT_FPU_H
#define VIREO_BT_FPU_H

#include <stdbool.h>
#include <stdint.h>

#include "bt.h"

/* FSW bits */
#define BT_FSW_IE   0x0001u
#define BT_FSW_DE   0x0002u
#define BT_FSW_ZE   0x0004u
#define BT_FSW_OE   0x0008u
#define BT_FSW_UE   0x0010u
#define BT_FSW_PE   0x0020u
#define BT_FSW_SF   0x0040u
#define BT_FSW_ES   0x0080u
#define BT_FSW_C0   0x0100u
#define BT_FSW_C1   0x0200u
#define BT_FSW_C2   0x0400u
#define BT_FSW_TOP  0x3800u
#define BT_FSW_C3   0x4000u
#define BT_FSW_B    0x8000u

#define BT_MXCSR_DEFAULT 0x1f80u
#define BT_MXCSR_MASK    0xffffu    /* DAZ supported */

/* FCW as the x87 keeps it: bit 6 reads as 1, bits 7 and 13-15 as 0. */
static inline uint16_t bt_x87_fcw(uint16_t v)
{
	return (uint16_t)((v & 0x1f3fu) | 0x40u);
}

/* Device-not-available / pending-exception checks. */
void bt_x87_check(struct bt_cpu *cpu, bool waiting);   /* x87 instructions */
void bt_mmx_check(struct bt_cpu *cpu);                  /* MMX: #UD/#NM/#MF */
void bt_sse_check(struct bt_cpu *cpu);                  /* SSE: #UD/#NM */

/* MMX registers alias the mantissas of the physical x87 registers. */
uint64_t bt_mmx_get(const struct bt_cpu *cpu, unsigned i);
void bt_mmx_set(struct bt_cpu *cpu, unsigned i, uint64_t v);
/* Any MMX instruction but EMMS: TOP = 0, all tags valid. */
void bt_mmx_enter(struct bt_cpu *cpu);

/* Tag word in the FNSAVE (2 bits per register, computed from contents)
 * and FXSAVE (1 bit: not empty) forms. */
uint16_t bt_x87_full_tags(const struct bt_cpu *cpu);
uint8_t bt_x87_abridged_tags(const struct bt_cpu *cpu);
void bt_x87_set_abridged_tags(struct bt_cpu *cpu, uint8_t abridged);
/* Recompute FSW.ES/B from the exception flags and the FCW masks. */
void bt_x87_update_es(struct bt_cpu *cpu);

/* Raise the SIMD floating-point exception for unmasked MXCSR flags. */
_Noreturn void bt_sse_raise_xm(struct bt_cpu *cpu);

/* Operand helpers for MMX/XMM instructions.  A memory operand of 16 bytes
 * with align set must be 16-byte aligned (#GP(0)). */
bool bt_fpu_is_xmm(const struct bt_insn *in, unsigned idx);
bool bt_fpu_is_mmx(const struct bt_insn *in, unsigned idx);
void bt_fpu_read(struct bt_cpu *cpu, const struct bt_insn *in, unsigned idx,
                 void *buf, unsigned len, bool align);
void bt_fpu_write(struct bt_cpu *cpu, const struct bt_insn *in, unsigned idx,
                  const void *buf, unsigned len, bool align);

void bt_sse_int_init(void);

#endif

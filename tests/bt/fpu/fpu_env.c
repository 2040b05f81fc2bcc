/*
 * fpu_env.c — the smallest bt engine surroundings for the FPU/SSE tests:
 * operand access, flat memory and exceptions, so the differential test runs
 * the real bt_x87.c / bt_sse.c / bt_sse_int.c handlers without a VM.
 *
 * Guest memory is host memory inside one window (fpu_env_mem): an access
 * outside it is reported as #PF, which the test counts as a failure.
 */
#include <stdio.h>
#include <string.h>

#include "fpu_env.h"

static bt_handler table[ZYDIS_MNEMONIC_MAX_VALUE + 1];
uint8_t *fpu_env_mem;
size_t fpu_env_mem_len;
int fpu_env_vector = -1;

void bt_exec_register(ZydisMnemonic m, bt_handler h)
{
	if ((unsigned)m <= ZYDIS_MNEMONIC_MAX_VALUE)
		table[m] = h;
}

bt_handler fpu_env_handler(ZydisMnemonic m)
{
	return (unsigned)m <= ZYDIS_MNEMONIC_MAX_VALUE ? table[m] : NULL;
}

_Noreturn void bt_raise(struct bt_cpu *cpu, unsigned vector, uint32_t errcode, bool has_err)
{
	(void)errcode;
	(void)has_err;
	fpu_env_vector = (int)vector;
	longjmp(cpu->fault_jmp, 1);
}

_Noreturn void bt_unimplemented(struct bt_cpu *cpu, const struct bt_insn *in)
{
	(void)in;
	bt_raise_ud(cpu);
}

unsigned bt_code_bits(const struct bt_cpu *cpu)
{
	(void)cpu;
	return 64;
}

uint64_t bt_get_rflags(struct bt_cpu *cpu)
{
	return cpu->rflags;
}

void bt_set_rflags(struct bt_cpu *cpu, uint64_t v)
{
	cpu->rflags = v | 2;
	cpu->lazy.op = BT_CC_NONE;
}

static uint8_t *flat(struct bt_cpu *cpu, uint64_t off, unsigned len)
{
	uint8_t *p = (uint8_t *)(uintptr_t)off;
	if (p < fpu_env_mem || p + len > fpu_env_mem + fpu_env_mem_len)
		bt_raise(cpu, BT_PF_EXC, 0, true);
	return p;
}

uint64_t bt_mem_read(struct bt_cpu *cpu, enum bt_sreg s, uint64_t off, unsigned size)
{
	uint64_t v = 0;
	(void)s;
	memcpy(&v, flat(cpu, off, size), size);
	return v;
}

void bt_mem_write(struct bt_cpu *cpu, enum bt_sreg s, uint64_t off, unsigned size, uint64_t v)
{
	(void)s;
	memcpy(flat(cpu, off, size), &v, size);
}

void bt_mem_read_buf(struct bt_cpu *cpu, enum bt_sreg s, uint64_t off, void *buf, unsigned len)
{
	(void)s;
	memcpy(buf, flat(cpu, off, len), len);
}

void bt_mem_write_buf(struct bt_cpu *cpu, enum bt_sreg s, uint64_t off, const void *buf, unsigned len)
{
	(void)s;
	memcpy(flat(cpu, off, len), buf, len);
}

uint64_t bt_gpr_read(struct bt_cpu *cpu, ZydisRegister r)
{
	if (r >= ZYDIS_REGISTER_RAX && r <= ZYDIS_REGISTER_R15)
		return cpu->gpr[r - ZYDIS_REGISTER_RAX];
	if (r >= ZYDIS_REGISTER_EAX && r <= ZYDIS_REGISTER_R15D)
		return (uint32_t)cpu->gpr[r - ZYDIS_REGISTER_EAX];
	if (r >= ZYDIS_REGISTER_AX && r <= ZYDIS_REGISTER_R15W)
		return (uint16_t)cpu->gpr[r - ZYDIS_REGISTER_AX];
	if (r == ZYDIS_REGISTER_RIP)
		return cpu->rip;
	return 0;
}

void bt_gpr_write(struct bt_cpu *cpu, ZydisRegister r, uint64_t v)
{
	if (r >= ZYDIS_REGISTER_RAX && r <= ZYDIS_REGISTER_R15) {
		cpu->gpr[r - ZYDIS_REGISTER_RAX] = v;
	} else if (r >= ZYDIS_REGISTER_EAX && r <= ZYDIS_REGISTER_R15D) {
		cpu->gpr[r - ZYDIS_REGISTER_EAX] = (uint32_t)v;
	} else if (r >= ZYDIS_REGISTER_AX && r <= ZYDIS_REGISTER_R15W) {
		uint64_t *g = &cpu->gpr[r - ZYDIS_REGISTER_AX];
		*g = (*g & ~0xffffull) | (uint16_t)v;
	}
}

uint64_t bt_op_ea(struct bt_cpu *cpu, const struct bt_insn *in, unsigned idx)
{
	const ZydisDecodedOperand *op = &in->ops[idx];
	uint64_t ea = (uint64_t)op->mem.disp.value;
	if (op->mem.base != ZYDIS_REGISTER_NONE)
		ea += bt_gpr_read(cpu, op->mem.base);
	if (op->mem.index != ZYDIS_REGISTER_NONE)
		ea += bt_gpr_read(cpu, op->mem.index) * (op->mem.scale ? op->mem.scale : 1);
	return ea;
}

enum bt_sreg bt_op_seg(const struct bt_insn *in, unsigned idx)
{
	(void)in;
	(void)idx;
	return BT_DS;
}

uint64_t bt_op_read(struct bt_cpu *cpu, const struct bt_insn *in, unsigned idx)
{
	const ZydisDecodedOperand *op = &in->ops[idx];
	switch (op->type) {
	case ZYDIS_OPERAND_TYPE_REGISTER:
		return bt_gpr_read(cpu, op->reg.value);
	case ZYDIS_OPERAND_TYPE_MEMORY:
		return bt_mem_read(cpu, BT_DS, bt_op_ea(cpu, in, idx), op->size / 8 > 8 ? 8 : op->size / 8);
	case ZYDIS_OPERAND_TYPE_IMMEDIATE:
		return op->imm.value.u;
	default:
		return 0;
	}
}

void bt_op_write(struct bt_cpu *cpu, const struct bt_insn *in, unsigned idx, uint64_t v)
{
	const ZydisDecodedOperand *op = &in->ops[idx];
	if (op->type == ZYDIS_OPERAND_TYPE_REGISTER)
		bt_gpr_write(cpu, op->reg.value, v);
	else if (op->type == ZYDIS_OPERAND_TYPE_MEMORY)
		bt_mem_write(cpu, BT_DS, bt_op_ea(cpu, in, idx), op->size / 8 > 8 ? 8 : op->size / 8, v);
}

int fpu_env_run(struct bt_cpu *cpu, const struct bt_insn *in)
{
	fpu_env_vector = -1;
	if (setjmp(cpu->fault_jmp) == 0) {
		bt_handler h = fpu_env_handler(in->zi.mnemonic);
		if (!h)
			bt_raise_ud(cpu);
		h(cpu, in);
	}
	return fpu_env_vector;
}

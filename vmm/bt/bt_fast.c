/*
 * bt_fast.c — compiled forms of the most common 64-bit instructions.
 *
 * At translation time bt_fast_compile() turns MOV, MOVZX, LEA and the
 * two-operand ALU instructions with 32/64-bit register, immediate and simple
 * memory operands (64-bit addressing) into a compact descriptor; the run
 * loop then calls a small specialised function instead of the generic
 * handler, which re-reads Zydis' operand structures every time.  The
 * semantics are those of the generic handlers in bt_alu.c (the differential
 * tests run both).
 */
#include <string.h>

#include "bt.h"
#include "bt_alu.h"

static inline uint64_t bt_fea(struct bt_cpu *cpu, const struct bt_fop *o)
{
	uint64_t ea = (uint64_t)o->val;
	if (o->reg == BT_FOP_RIP)
		ea += cpu->rip;
	else if (o->reg != BT_FOP_NONE)
		ea += cpu->gpr[o->reg];
	if (o->index != BT_FOP_NONE)
		ea += cpu->gpr[o->index] * o->scale;
	return ea;
}

static inline uint64_t bt_frd(struct bt_cpu *cpu, const struct bt_fop *o, unsigned size)
{
	if (o->kind == BT_FOP_REG)
		return cpu->gpr[o->reg] & bt_mask(size);
	if (o->kind == BT_FOP_IMM)
		return (uint64_t)o->val & bt_mask(size);
	uint64_t ea = bt_fea(cpu, o);
	uint8_t *p = bt_mem_ptr_inl(cpu, (enum bt_sreg)o->seg, ea, size, false);
	if (p) {
		uint64_t v = 0;
		memcpy(&v, p, size);
		return v;
	}
	return bt_mem_read(cpu, (enum bt_sreg)o->seg, ea, size);
}

static inline void bt_fwr(struct bt_cpu *cpu, const struct bt_fop *o, unsigned size, uint64_t v)
{
	if (o->kind == BT_FOP_REG) {
		cpu->gpr[o->reg] = size == 8 ? v : (uint32_t)v;   /* 32-bit writes zero-extend */
		return;
	}
	uint64_t ea = bt_fea(cpu, o);
	uint8_t *p = bt_mem_ptr_inl(cpu, (enum bt_sreg)o->seg, ea, size, true);
	if (p)
		memcpy(p, &v, size);
	else
		bt_mem_write(cpu, (enum bt_sreg)o->seg, ea, size, v);
}

static void f_mov(struct bt_cpu *cpu, const struct bt_fast *f)
{
	bt_fwr(cpu, &f->a, f->size, bt_frd(cpu, &f->b, f->size));
}

static void f_movzx(struct bt_cpu *cpu, const struct bt_fast *f)
{
	bt_fwr(cpu, &f->a, f->size, bt_frd(cpu, &f->b, f->ssize));
}

static void f_lea(struct bt_cpu *cpu, const struct bt_fast *f)
{
	bt_fwr(cpu, &f->a, f->size, bt_fea(cpu, &f->b));
}

#define BT_FAST_ALU(name, expr, cc, write)                                        \
	static void f_##name(struct bt_cpu *cpu, const struct bt_fast *f)         \
	{                                                                         \
		unsigned s = f->size;                                             \
		uint64_t m = bt_mask(s);                                          \
		uint64_t a = bt_frd(cpu, &f->a, s), b = bt_frd(cpu, &f->b, s);    \
		uint64_t d = (expr) & m;                                          \
		if (write)                                                        \
			bt_fwr(cpu, &f->a, s, d);                                 \
		bt_lazy_set(&cpu->lazy, cc, s, d, cc == BT_CC_LOGIC ? 0 : a,      \
		            cc == BT_CC_LOGIC ? 0 : b);                           \
	}

BT_FAST_ALU(add, a + b, BT_CC_ADD, true)
BT_FAST_ALU(sub, a - b, BT_CC_SUB, true)
BT_FAST_ALU(cmp, a - b, BT_CC_SUB, false)
BT_FAST_ALU(and, a & b, BT_CC_LOGIC, true)
BT_FAST_ALU(or, a | b, BT_CC_LOGIC, true)
BT_FAST_ALU(xor, a ^ b, BT_CC_LOGIC, true)
BT_FAST_ALU(test, a & b, BT_CC_LOGIC, false)

static bool bt_fop_gpr(ZydisRegister r, unsigned size, uint8_t *out)
{
	if (size == 8 && (unsigned)r - ZYDIS_REGISTER_RAX <= 15u) {
		*out = (uint8_t)(r - ZYDIS_REGISTER_RAX);
		return true;
	}
	if (size == 4 && (unsigned)r - ZYDIS_REGISTER_EAX <= 15u) {
		*out = (uint8_t)(r - ZYDIS_REGISTER_EAX);
		return true;
	}
	return false;
}

static bool bt_fop_compile(const ZydisDecodedOperand *op, unsigned size, struct bt_fop *o, bool agen)
{
	switch (op->type) {
	case ZYDIS_OPERAND_TYPE_REGISTER:
		o->kind = BT_FOP_REG;
		return bt_fop_gpr(op->reg.value, size, &o->reg);
	case ZYDIS_OPERAND_TYPE_IMMEDIATE:
		o->kind = BT_FOP_IMM;
		o->val = op->imm.value.s;
		return true;
	case ZYDIS_OPERAND_TYPE_MEMORY:
		if (op->mem.type != (agen ? ZYDIS_MEMOP_TYPE_AGEN : ZYDIS_MEMOP_TYPE_MEM))
			return false;
		o->kind = BT_FOP_MEM;
		o->val = op->mem.disp.value;
		o->scale = op->mem.scale ? op->mem.scale : 1;
		switch (op->mem.segment) {
		case ZYDIS_REGISTER_FS: o->seg = BT_FS; break;
		case ZYDIS_REGISTER_GS: o->seg = BT_GS; break;
		case ZYDIS_REGISTER_SS: o->seg = BT_SS; break;
		case ZYDIS_REGISTER_ES: o->seg = BT_ES; break;
		case ZYDIS_REGISTER_CS: o->seg = BT_CS; break;
		default: o->seg = BT_DS; break;
		}
		if (op->mem.base == ZYDIS_REGISTER_NONE)
			o->reg = BT_FOP_NONE;
		else if (op->mem.base == ZYDIS_REGISTER_RIP)
			o->reg = BT_FOP_RIP;
		else if (!bt_fop_gpr(op->mem.base, 8, &o->reg))
			return false;
		if (op->mem.index == ZYDIS_REGISTER_NONE)
			o->index = BT_FOP_NONE;
		else if (!bt_fop_gpr(op->mem.index, 8, &o->index))
			return false;
		return true;
	default:
		return false;
	}
}

void bt_fast_compile(const struct bt_insn *in, struct bt_fast *f)
{
	const ZydisDecodedInstruction *zi = &in->zi;
	unsigned size = zi->operand_width / 8u;
	bt_fast_fn fn;

	f->fn = NULL;
	if (zi->machine_mode != ZYDIS_MACHINE_MODE_LONG_64 || zi->address_width != 64 ||
	    zi->operand_count_visible != 2 || (size != 4 && size != 8))
		return;
	switch (zi->mnemonic) {
	case ZYDIS_MNEMONIC_MOV: fn = f_mov; break;
	case ZYDIS_MNEMONIC_MOVZX: fn = f_movzx; break;
	case ZYDIS_MNEMONIC_LEA: fn = f_lea; break;
	case ZYDIS_MNEMONIC_ADD: fn = f_add; break;
	case ZYDIS_MNEMONIC_SUB: fn = f_sub; break;
	case ZYDIS_MNEMONIC_CMP: fn = f_cmp; break;
	case ZYDIS_MNEMONIC_AND: fn = f_and; break;
	case ZYDIS_MNEMONIC_OR: fn = f_or; break;
	case ZYDIS_MNEMONIC_XOR: fn = f_xor; break;
	case ZYDIS_MNEMONIC_TEST: fn = f_test; break;
	default: return;
	}
	f->size = (uint8_t)size;
	if (!bt_fop_compile(&in->ops[0], size, &f->a, false) || f->a.kind == BT_FOP_IMM)
		return;
	if (fn == f_movzx) {
		/* source: memory byte/word only (register sources keep the generic
		 * path: AH..BH and 8/16-bit names) */
		unsigned ss = in->ops[1].size / 8u;
		if (in->ops[1].type != ZYDIS_OPERAND_TYPE_MEMORY || (ss != 1 && ss != 2))
			return;
		f->ssize = (uint8_t)ss;
		if (!bt_fop_compile(&in->ops[1], ss, &f->b, false))
			return;
	} else if (fn == f_lea) {
		if (!bt_fop_compile(&in->ops[1], 8, &f->b, true) || f->b.kind != BT_FOP_MEM)
			return;
	} else {
		if (!bt_fop_compile(&in->ops[1], size, &f->b, false))
			return;
		if (f->a.kind == BT_FOP_MEM && f->b.kind == BT_FOP_MEM)
			return;
	}
	f->fn = fn;
}

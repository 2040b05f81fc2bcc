/*
 * bt_exec.c — the dispatch table and operand access for decoded instructions.
 *
 * Handlers are found by ZydisMnemonic.  Operands are read and written through
 * the helpers here so that every file gets the same partial-register rules,
 * effective-address arithmetic (16/32-bit wrap, RIP-relative) and segment
 * selection (Zydis already resolves the default segment: SS for RBP/RSP
 * bases, DS otherwise, or the override prefix).
 */
#include <string.h>

#include "bt.h"
#include "bt_alu.h"

static bt_handler bt_table[ZYDIS_MNEMONIC_MAX_VALUE + 1];
static bt_handler bt_string_table[ZYDIS_MNEMONIC_MAX_VALUE + 1];

void bt_exec_register(ZydisMnemonic m, bt_handler h)
{
	if ((unsigned)m <= ZYDIS_MNEMONIC_MAX_VALUE)
		bt_table[m] = h;
}

void bt_exec_register_string(ZydisMnemonic m, bt_handler h)
{
	if ((unsigned)m <= ZYDIS_MNEMONIC_MAX_VALUE)
		bt_string_table[m] = h;
}

static void bt_exec_unimpl(struct bt_cpu *cpu, const struct bt_insn *in)
{
	bt_unimplemented(cpu, in);
}

bt_handler bt_exec_lookup(const struct bt_insn *in)
{
	bt_handler h = NULL;
	if (in->zi.meta.category == ZYDIS_CATEGORY_STRINGOP)
		h = bt_string_table[in->zi.mnemonic];
	if (!h)
		h = bt_table[in->zi.mnemonic];
	return h ? h : bt_exec_unimpl;
}

void bt_exec_insn(struct bt_cpu *cpu, const struct bt_insn *in)
{
	bt_handler h = NULL;
	if (__builtin_expect(in->zi.meta.category == ZYDIS_CATEGORY_STRINGOP, 0))
		h = bt_string_table[in->zi.mnemonic];
	if (!h)
		h = bt_table[in->zi.mnemonic];
	if (__builtin_expect(h == NULL, 0))
		bt_unimplemented(cpu, in);
	h(cpu, in);
}

/* ---- general-purpose registers ---- */

uint64_t bt_gpr_read(struct bt_cpu *cpu, ZydisRegister r)
{
	if (r >= ZYDIS_REGISTER_RAX && r <= ZYDIS_REGISTER_R15)
		return cpu->gpr[r - ZYDIS_REGISTER_RAX];
	if (r >= ZYDIS_REGISTER_EAX && r <= ZYDIS_REGISTER_R15D)
		return (uint32_t)cpu->gpr[r - ZYDIS_REGISTER_EAX];
	if (r >= ZYDIS_REGISTER_AX && r <= ZYDIS_REGISTER_R15W)
		return (uint16_t)cpu->gpr[r - ZYDIS_REGISTER_AX];
	if (r >= ZYDIS_REGISTER_AL && r <= ZYDIS_REGISTER_BL)
		return (uint8_t)cpu->gpr[r - ZYDIS_REGISTER_AL];
	if (r >= ZYDIS_REGISTER_AH && r <= ZYDIS_REGISTER_BH)
		return (uint8_t)(cpu->gpr[r - ZYDIS_REGISTER_AH] >> 8);
	if (r >= ZYDIS_REGISTER_SPL && r <= ZYDIS_REGISTER_R15B)
		return (uint8_t)cpu->gpr[r - ZYDIS_REGISTER_SPL + 4];
	switch (r) {
	case ZYDIS_REGISTER_RIP: return cpu->rip;
	case ZYDIS_REGISTER_EIP: return (uint32_t)cpu->rip;
	case ZYDIS_REGISTER_IP: return (uint16_t)cpu->rip;
	case ZYDIS_REGISTER_RFLAGS: return bt_get_rflags(cpu);
	case ZYDIS_REGISTER_EFLAGS: return (uint32_t)bt_get_rflags(cpu);
	case ZYDIS_REGISTER_FLAGS: return (uint16_t)bt_get_rflags(cpu);
	case ZYDIS_REGISTER_ES: return cpu->seg[BT_ES].sel;
	case ZYDIS_REGISTER_CS: return cpu->seg[BT_CS].sel;
	case ZYDIS_REGISTER_SS: return cpu->seg[BT_SS].sel;
	case ZYDIS_REGISTER_DS: return cpu->seg[BT_DS].sel;
	case ZYDIS_REGISTER_FS: return cpu->seg[BT_FS].sel;
	case ZYDIS_REGISTER_GS: return cpu->seg[BT_GS].sel;
	default: return 0;
	}
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
	} else if (r >= ZYDIS_REGISTER_AL && r <= ZYDIS_REGISTER_BL) {
		uint64_t *g = &cpu->gpr[r - ZYDIS_REGISTER_AL];
		*g = (*g & ~0xffull) | (uint8_t)v;
	} else if (r >= ZYDIS_REGISTER_AH && r <= ZYDIS_REGISTER_BH) {
		uint64_t *g = &cpu->gpr[r - ZYDIS_REGISTER_AH];
		*g = (*g & ~0xff00ull) | ((uint64_t)(uint8_t)v << 8);
	} else if (r >= ZYDIS_REGISTER_SPL && r <= ZYDIS_REGISTER_R15B) {
		uint64_t *g = &cpu->gpr[r - ZYDIS_REGISTER_SPL + 4];
		*g = (*g & ~0xffull) | (uint8_t)v;
	} else {
		switch (r) {
		case ZYDIS_REGISTER_RIP: cpu->rip = v; break;
		case ZYDIS_REGISTER_EIP: cpu->rip = (uint32_t)v; break;
		case ZYDIS_REGISTER_IP: cpu->rip = (uint16_t)v; break;
		default: break;
		}
	}
}

/* ---- operands ---- */

static inline uint64_t bt_addr_mask(unsigned aw)
{
	return aw == 64 ? ~0ull : aw == 32 ? 0xffffffffull : 0xffffull;
}

/* Address registers: the 64-bit ones and RIP inline, the rest the long way. */
static inline uint64_t bt_addr_reg(struct bt_cpu *cpu, ZydisRegister r)
{
	if ((unsigned)r - ZYDIS_REGISTER_RAX <= 15u)
		return cpu->gpr[r - ZYDIS_REGISTER_RAX];
	if (r == ZYDIS_REGISTER_RIP)
		return cpu->rip;
	return bt_gpr_read(cpu, r);
}

static inline uint64_t bt_op_ea_inl(struct bt_cpu *cpu, const struct bt_insn *in, unsigned idx)
{
	const ZydisDecodedOperand *op = &in->ops[idx];
	uint64_t ea = (uint64_t)op->mem.disp.value;

	if (op->mem.base != ZYDIS_REGISTER_NONE)
		ea += bt_addr_reg(cpu, op->mem.base);
	if (op->mem.index != ZYDIS_REGISTER_NONE)
		ea += bt_addr_reg(cpu, op->mem.index) * (op->mem.scale ? op->mem.scale : 1);
	if (in->zi.address_width == 64)
		return ea;
	return ea & bt_addr_mask(in->zi.address_width);
}

uint64_t bt_op_ea(struct bt_cpu *cpu, const struct bt_insn *in, unsigned idx)
{
	return bt_op_ea_inl(cpu, in, idx);
}

static inline enum bt_sreg bt_op_seg_inl(const struct bt_insn *in, unsigned idx)
{
	switch (in->ops[idx].mem.segment) {
	case ZYDIS_REGISTER_ES: return BT_ES;
	case ZYDIS_REGISTER_CS: return BT_CS;
	case ZYDIS_REGISTER_SS: return BT_SS;
	case ZYDIS_REGISTER_FS: return BT_FS;
	case ZYDIS_REGISTER_GS: return BT_GS;
	default: return BT_DS;
	}
}

enum bt_sreg bt_op_seg(const struct bt_insn *in, unsigned idx)
{
	return bt_op_seg_inl(in, idx);
}

static enum bt_sreg bt_sreg_of(ZydisRegister r)
{
	return (enum bt_sreg)(r - ZYDIS_REGISTER_ES);
}

static bool bt_is_sreg(ZydisRegister r)
{
	return r >= ZYDIS_REGISTER_ES && r <= ZYDIS_REGISTER_GS;
}

static bool bt_is_xmm(ZydisRegister r)
{
	return r >= ZYDIS_REGISTER_XMM0 && r <= ZYDIS_REGISTER_XMM15;
}

/* See bt_mem_ptr_inl() in bt_alu.h. */
uint8_t *bt_mem_ptr(struct bt_cpu *cpu, enum bt_sreg s, uint64_t off, unsigned len, bool write)
{
	return bt_mem_ptr_inl(cpu, s, off, len, write);
}

static inline uint8_t *bt_fast_ptr(struct bt_cpu *cpu, const struct bt_insn *in, unsigned idx,
                                   unsigned size, bool write)
{
	if (in->zi.machine_mode != ZYDIS_MACHINE_MODE_LONG_64)
		return NULL;
	return bt_mem_ptr_inl(cpu, bt_op_seg_inl(in, idx), bt_op_ea_inl(cpu, in, idx), size, write);
}

static uint64_t bt_op_read_slow(struct bt_cpu *cpu, const struct bt_insn *in, unsigned idx);
static void bt_op_write_slow(struct bt_cpu *cpu, const struct bt_insn *in, unsigned idx, uint64_t v);

/* The common register cases stay small so they need no stack frame. */
uint64_t bt_op_read(struct bt_cpu *cpu, const struct bt_insn *in, unsigned idx)
{
	const ZydisDecodedOperand *op = &in->ops[idx];

	if (op->type == ZYDIS_OPERAND_TYPE_REGISTER) {
		unsigned r = op->reg.value;
		if (r - ZYDIS_REGISTER_RAX <= 15u)
			return cpu->gpr[r - ZYDIS_REGISTER_RAX];
		if (r - ZYDIS_REGISTER_EAX <= 15u)
			return (uint32_t)cpu->gpr[r - ZYDIS_REGISTER_EAX];
	} else if (op->type == ZYDIS_OPERAND_TYPE_IMMEDIATE) {
		return op->imm.value.u;
	}
	return bt_op_read_slow(cpu, in, idx);
}

void bt_op_write(struct bt_cpu *cpu, const struct bt_insn *in, unsigned idx, uint64_t v)
{
	const ZydisDecodedOperand *op = &in->ops[idx];

	if (op->type == ZYDIS_OPERAND_TYPE_REGISTER) {
		unsigned r = op->reg.value;
		if (r - ZYDIS_REGISTER_RAX <= 15u) {
			cpu->gpr[r - ZYDIS_REGISTER_RAX] = v;
			return;
		}
		if (r - ZYDIS_REGISTER_EAX <= 15u) {
			cpu->gpr[r - ZYDIS_REGISTER_EAX] = (uint32_t)v;
			return;
		}
	}
	bt_op_write_slow(cpu, in, idx, v);
}

static __attribute__((noinline)) uint64_t bt_op_read_slow(struct bt_cpu *cpu, const struct bt_insn *in,
                                                          unsigned idx)
{
	const ZydisDecodedOperand *op = &in->ops[idx];

	switch (op->type) {
	case ZYDIS_OPERAND_TYPE_REGISTER:
		if (bt_is_xmm(op->reg.value)) {
			uint64_t v;
			memcpy(&v, cpu->xmm[op->reg.value - ZYDIS_REGISTER_XMM0], 8);
			return v;
		}
		return bt_gpr_read(cpu, op->reg.value);
	case ZYDIS_OPERAND_TYPE_MEMORY: {
		unsigned size = op->size / 8;
		if (size == 0 || size > 8)
			size = 8;
		uint8_t *p = bt_fast_ptr(cpu, in, idx, size, false);
		if (p) {
			uint64_t v = 0;
			memcpy(&v, p, size);   /* little-endian host */
			return v;
		}
		return bt_mem_read(cpu, bt_op_seg(in, idx), bt_op_ea(cpu, in, idx), size);
	}
	case ZYDIS_OPERAND_TYPE_IMMEDIATE:
		return op->imm.value.u;
	case ZYDIS_OPERAND_TYPE_POINTER:
		return op->ptr.offset;
	default:
		return 0;
	}
}

static __attribute__((noinline)) void bt_op_write_slow(struct bt_cpu *cpu, const struct bt_insn *in,
                                                       unsigned idx, uint64_t v)
{
	const ZydisDecodedOperand *op = &in->ops[idx];

	switch (op->type) {
	case ZYDIS_OPERAND_TYPE_REGISTER:
		if (bt_is_sreg(op->reg.value))
			bt_load_seg(cpu, bt_sreg_of(op->reg.value), (uint16_t)v);
		else if (bt_is_xmm(op->reg.value))
			memcpy(cpu->xmm[op->reg.value - ZYDIS_REGISTER_XMM0], &v, 8);
		else
			bt_gpr_write(cpu, op->reg.value, v);
		break;
	case ZYDIS_OPERAND_TYPE_MEMORY: {
		unsigned size = op->size / 8;
		if (size == 0 || size > 8)
			size = 8;
		uint8_t *p = bt_fast_ptr(cpu, in, idx, size, true);
		if (p)
			memcpy(p, &v, size);
		else
			bt_mem_write(cpu, bt_op_seg(in, idx), bt_op_ea(cpu, in, idx), size, v);
		break;
	}
	default:
		break;
	}
}

void bt_op_read_buf(struct bt_cpu *cpu, const struct bt_insn *in, unsigned idx, void *buf, unsigned len)
{
	const ZydisDecodedOperand *op = &in->ops[idx];

	if (op->type == ZYDIS_OPERAND_TYPE_MEMORY) {
		bt_mem_read_buf(cpu, bt_op_seg(in, idx), bt_op_ea(cpu, in, idx), buf, len);
	} else if (op->type == ZYDIS_OPERAND_TYPE_REGISTER && bt_is_xmm(op->reg.value)) {
		memcpy(buf, cpu->xmm[op->reg.value - ZYDIS_REGISTER_XMM0], len > 16 ? 16 : len);
		if (len > 16)
			memset((uint8_t *)buf + 16, 0, len - 16);
	} else {
		uint64_t v = bt_op_read(cpu, in, idx);
		memset(buf, 0, len);
		memcpy(buf, &v, len > 8 ? 8 : len);
	}
}

void bt_op_write_buf(struct bt_cpu *cpu, const struct bt_insn *in, unsigned idx, const void *buf, unsigned len)
{
	const ZydisDecodedOperand *op = &in->ops[idx];

	if (op->type == ZYDIS_OPERAND_TYPE_MEMORY) {
		bt_mem_write_buf(cpu, bt_op_seg(in, idx), bt_op_ea(cpu, in, idx), buf, len);
	} else if (op->type == ZYDIS_OPERAND_TYPE_REGISTER && bt_is_xmm(op->reg.value)) {
		memcpy(cpu->xmm[op->reg.value - ZYDIS_REGISTER_XMM0], buf, len > 16 ? 16 : len);
	} else {
		uint64_t v = 0;
		memcpy(&v, buf, len > 8 ? 8 : len);
		bt_op_write(cpu, in, idx, v);
	}
}

/*
 * bt_ctl.c — near control flow, conditions, the stack (PUSH/POP/PUSHA/
 * POPA/PUSHF/ENTER/LEAVE) and CPUID.  Far transfers go to bt_seg.c.
 */
#include "bt.h"
#include "bt_alu.h"

#define RD(i) bt_op_read(cpu, in, (i))
#define WR(i, v) bt_op_write(cpu, in, (i), (v))

static bool bt_canonical(uint64_t v)
{
	return (uint64_t)((int64_t)(v << 16) >> 16) == v;
}

/* Commit a near branch target with the operand size (64-bit mode: always 64). */
static void bt_branch(struct bt_cpu *cpu, const struct bt_insn *in, uint64_t target)
{
	if (bt_is64(in)) {
		if (!bt_canonical(target))
			bt_raise_gp(cpu, 0);
	} else if (in->zi.operand_width == 16) {
		target &= 0xffff;
	} else {
		target &= 0xffffffffull;
	}
	cpu->rip = target;
}

static uint64_t bt_rel_target(struct bt_cpu *cpu, const struct bt_insn *in)
{
	return cpu->rip + (uint64_t)in->ops[0].imm.value.s;
}

/* Far pointer operand: ptr16:xx immediate or m16:xx in memory. */
static void bt_far_operand(struct bt_cpu *cpu, const struct bt_insn *in, uint16_t *sel, uint64_t *off,
                           unsigned *osz)
{
	const ZydisDecodedOperand *op = &in->ops[0];
	*osz = bt_osz(in);
	if (op->type == ZYDIS_OPERAND_TYPE_POINTER) {
		*sel = op->ptr.segment;
		*off = op->ptr.offset;
		return;
	}
	unsigned aw = in->zi.address_width;
	uint64_t am = aw == 64 ? ~0ull : aw == 32 ? 0xffffffffull : 0xffffull;
	uint64_t ea = bt_op_ea(cpu, in, 0);
	enum bt_sreg s = bt_op_seg(in, 0);
	*off = bt_mem_read(cpu, s, ea, *osz);
	*sel = (uint16_t)bt_mem_read(cpu, s, (ea + *osz) & am, 2);
}

static void h_jmp(struct bt_cpu *cpu, const struct bt_insn *in)
{
	if (in->zi.meta.branch_type == ZYDIS_BRANCH_TYPE_FAR) {
		uint16_t sel;
		uint64_t off;
		unsigned osz;
		bt_far_operand(cpu, in, &sel, &off, &osz);
		bt_far_jmp(cpu, sel, off, osz);
		cpu->end_block = true;
		return;
	}
	if (in->ops[0].type == ZYDIS_OPERAND_TYPE_IMMEDIATE)
		bt_branch(cpu, in, bt_rel_target(cpu, in));
	else
		bt_branch(cpu, in, RD(0));
}

static void h_call(struct bt_cpu *cpu, const struct bt_insn *in)
{
	if (in->zi.meta.branch_type == ZYDIS_BRANCH_TYPE_FAR) {
		uint16_t sel;
		uint64_t off;
		unsigned osz;
		bt_far_operand(cpu, in, &sel, &off, &osz);
		bt_far_call(cpu, sel, off, osz);
		cpu->end_block = true;
		return;
	}
	unsigned s = bt_osz(in);
	uint64_t target = in->ops[0].type == ZYDIS_OPERAND_TYPE_IMMEDIATE ? bt_rel_target(cpu, in) : RD(0);
	uint64_t ret = cpu->rip;
	if (bt_is64(in)) {
		s = 8;
		if (!bt_canonical(target))
			bt_raise_gp(cpu, 0);
	}
	bt_push(cpu, ret, s);
	bt_branch(cpu, in, target);
}

static void h_ret(struct bt_cpu *cpu, const struct bt_insn *in)
{
	uint16_t imm = 0;
	if (in->zi.operand_count_visible && in->ops[0].type == ZYDIS_OPERAND_TYPE_IMMEDIATE)
		imm = (uint16_t)in->ops[0].imm.value.u;
	if (in->zi.meta.branch_type == ZYDIS_BRANCH_TYPE_FAR) {
		bt_far_ret(cpu, bt_osz(in), imm);
		cpu->end_block = true;
		return;
	}
	unsigned s = bt_is64(in) ? 8 : bt_osz(in);
	uint64_t target = bt_stack_peek(cpu, 0, s);
	if (bt_is64(in) && !bt_canonical(target))
		bt_raise_gp(cpu, 0);
	bt_stack_adjust(cpu, (int64_t)s + imm);
	bt_branch(cpu, in, target);
}

static const ZydisMnemonic bt_jcc[16] = {
	ZYDIS_MNEMONIC_JO, ZYDIS_MNEMONIC_JNO, ZYDIS_MNEMONIC_JB, ZYDIS_MNEMONIC_JNB,
	ZYDIS_MNEMONIC_JZ, ZYDIS_MNEMONIC_JNZ, ZYDIS_MNEMONIC_JBE, ZYDIS_MNEMONIC_JNBE,
	ZYDIS_MNEMONIC_JS, ZYDIS_MNEMONIC_JNS, ZYDIS_MNEMONIC_JP, ZYDIS_MNEMONIC_JNP,
	ZYDIS_MNEMONIC_JL, ZYDIS_MNEMONIC_JNL, ZYDIS_MNEMONIC_JLE, ZYDIS_MNEMONIC_JNLE,
};
static const ZydisMnemonic bt_setcc[16] = {
	ZYDIS_MNEMONIC_SETO, ZYDIS_MNEMONIC_SETNO, ZYDIS_MNEMONIC_SETB, ZYDIS_MNEMONIC_SETNB,
	ZYDIS_MNEMONIC_SETZ, ZYDIS_MNEMONIC_SETNZ, ZYDIS_MNEMONIC_SETBE, ZYDIS_MNEMONIC_SETNBE,
	ZYDIS_MNEMONIC_SETS, ZYDIS_MNEMONIC_SETNS, ZYDIS_MNEMONIC_SETP, ZYDIS_MNEMONIC_SETNP,
	ZYDIS_MNEMONIC_SETL, ZYDIS_MNEMONIC_SETNL, ZYDIS_MNEMONIC_SETLE, ZYDIS_MNEMONIC_SETNLE,
};
static const ZydisMnemonic bt_cmovcc[16] = {
	ZYDIS_MNEMONIC_CMOVO, ZYDIS_MNEMONIC_CMOVNO, ZYDIS_MNEMONIC_CMOVB, ZYDIS_MNEMONIC_CMOVNB,
	ZYDIS_MNEMONIC_CMOVZ, ZYDIS_MNEMONIC_CMOVNZ, ZYDIS_MNEMONIC_CMOVBE, ZYDIS_MNEMONIC_CMOVNBE,
	ZYDIS_MNEMONIC_CMOVS, ZYDIS_MNEMONIC_CMOVNS, ZYDIS_MNEMONIC_CMOVP, ZYDIS_MNEMONIC_CMOVNP,
	ZYDIS_MNEMONIC_CMOVL, ZYDIS_MNEMONIC_CMOVNL, ZYDIS_MNEMONIC_CMOVLE, ZYDIS_MNEMONIC_CMOVNLE,
};

/* One handler per condition so the condition is a constant in each. */
#define BT_CC_HANDLERS(cc)                                                             \
	static void h_j##cc(struct bt_cpu *cpu, const struct bt_insn *in)              \
	{                                                                              \
		if (bt_cond(cpu, cc))                                                  \
			bt_branch(cpu, in, bt_rel_target(cpu, in));                    \
	}                                                                              \
	static void h_set##cc(struct bt_cpu *cpu, const struct bt_insn *in)            \
	{                                                                              \
		WR(0, bt_cond(cpu, cc) ? 1 : 0);                                       \
	}                                                                              \
	static void h_cmov##cc(struct bt_cpu *cpu, const struct bt_insn *in)           \
	{                                                                              \
		uint64_t v = RD(1);                                                    \
		/* A 32-bit CMOV writes (zero-extends) even when false. */            \
		WR(0, bt_cond(cpu, cc) ? v : RD(0));                                   \
	}

BT_CC_HANDLERS(0) BT_CC_HANDLERS(1) BT_CC_HANDLERS(2) BT_CC_HANDLERS(3)
BT_CC_HANDLERS(4) BT_CC_HANDLERS(5) BT_CC_HANDLERS(6) BT_CC_HANDLERS(7)
BT_CC_HANDLERS(8) BT_CC_HANDLERS(9) BT_CC_HANDLERS(10) BT_CC_HANDLERS(11)
BT_CC_HANDLERS(12) BT_CC_HANDLERS(13) BT_CC_HANDLERS(14) BT_CC_HANDLERS(15)

static const bt_handler bt_jcc_h[16] = {
	h_j0, h_j1, h_j2, h_j3, h_j4, h_j5, h_j6, h_j7, h_j8, h_j9, h_j10, h_j11, h_j12, h_j13, h_j14, h_j15,
};
static const bt_handler bt_setcc_h[16] = {
	h_set0, h_set1, h_set2, h_set3, h_set4, h_set5, h_set6, h_set7,
	h_set8, h_set9, h_set10, h_set11, h_set12, h_set13, h_set14, h_set15,
};
static const bt_handler bt_cmovcc_h[16] = {
	h_cmov0, h_cmov1, h_cmov2, h_cmov3, h_cmov4, h_cmov5, h_cmov6, h_cmov7,
	h_cmov8, h_cmov9, h_cmov10, h_cmov11, h_cmov12, h_cmov13, h_cmov14, h_cmov15,
};

/* The count register of LOOP/JCXZ follows the address size. */
static ZydisRegister bt_count_reg(const struct bt_insn *in)
{
	return in->zi.address_width == 64 ? ZYDIS_REGISTER_RCX :
	       in->zi.address_width == 32 ? ZYDIS_REGISTER_ECX : ZYDIS_REGISTER_CX;
}

static void bt_loop_common(struct bt_cpu *cpu, const struct bt_insn *in, int kind)
{
	ZydisRegister r = bt_count_reg(in);
	uint64_t c = bt_gpr_read(cpu, r) - 1;
	uint64_t target = bt_rel_target(cpu, in);
	unsigned aw = in->zi.address_width;
	uint64_t cm = aw == 64 ? ~0ull : aw == 32 ? 0xffffffffull : 0xffffull;
	bool take = (c & cm) != 0;
	if (kind == 1)
		take = take && bt_cond(cpu, 4);     /* LOOPE: ZF = 1 */
	else if (kind == 2)
		take = take && !bt_cond(cpu, 4);    /* LOOPNE: ZF = 0 */
	if (take)
		bt_branch(cpu, in, target);
	bt_gpr_write(cpu, r, c);
}

static void h_loop(struct bt_cpu *cpu, const struct bt_insn *in) { bt_loop_common(cpu, in, 0); }
static void h_loope(struct bt_cpu *cpu, const struct bt_insn *in) { bt_loop_common(cpu, in, 1); }
static void h_loopne(struct bt_cpu *cpu, const struct bt_insn *in) { bt_loop_common(cpu, in, 2); }

static void h_jcxz(struct bt_cpu *cpu, const struct bt_insn *in)
{
	if (bt_gpr_read(cpu, bt_count_reg(in)) == 0)
		bt_branch(cpu, in, bt_rel_target(cpu, in));
}

/* ---- the stack ---- */

static bool bt_is_sreg_op(const ZydisDecodedOperand *op)
{
	return op->type == ZYDIS_OPERAND_TYPE_REGISTER && op->reg.value >= ZYDIS_REGISTER_ES &&
	       op->reg.value <= ZYDIS_REGISTER_GS;
}

static void h_push(struct bt_cpu *cpu, const struct bt_insn *in)
{
	unsigned s = bt_osz(in);
	uint64_t v = RD(0);
	if (bt_is_sreg_op(&in->ops[0]) && s > 2) {
		/* Recent cores store only the selector word, leaving the rest. */
		unsigned ss = bt_stack_size(cpu);
		uint64_t sp = (cpu->gpr[BT_RSP] - s) & bt_mask(ss);
		bt_mem_write(cpu, BT_SS, sp, 2, v);
		bt_set_sp(cpu, sp, ss);
		return;
	}
	bt_push(cpu, v & bt_mask(s), s);
}

static void h_pop(struct bt_cpu *cpu, const struct bt_insn *in)
{
	unsigned s = bt_osz(in), ss = bt_stack_size(cpu);
	uint64_t v = bt_stack_peek(cpu, 0, s);
	uint64_t old = cpu->gpr[BT_RSP];
	uint64_t nsp = (old + s) & bt_mask(ss);

	if (in->ops[0].type == ZYDIS_OPERAND_TYPE_MEMORY) {
		/* The address is computed with the incremented RSP. */
		bt_set_sp(cpu, nsp, ss);
		uint64_t ea = bt_op_ea(cpu, in, 0);
		cpu->gpr[BT_RSP] = old;
		bt_mem_write(cpu, bt_op_seg(in, 0), ea, s, v);
		bt_set_sp(cpu, nsp, ss);
		return;
	}
	if (bt_is_sreg_op(&in->ops[0])) {
		WR(0, v);                     /* bt_load_seg may fault: RSP after */
		bt_set_sp(cpu, nsp, ss);
		cpu->end_block = true;
		return;
	}
	bt_set_sp(cpu, nsp, ss);
	WR(0, v);                         /* POP RSP: the loaded value wins */
}

static void h_pusha(struct bt_cpu *cpu, const struct bt_insn *in)
{
	unsigned s = bt_osz(in), ss = bt_stack_size(cpu);
	uint64_t sp = cpu->gpr[BT_RSP];
	static const int order[8] = { BT_RAX, BT_RCX, BT_RDX, BT_RBX, BT_RSP, BT_RBP, BT_RSI, BT_RDI };
	for (int i = 0; i < 8; i++) {
		uint64_t v = order[i] == BT_RSP ? cpu->gpr[BT_RSP] : cpu->gpr[order[i]];
		bt_mem_write(cpu, BT_SS, (sp - (uint64_t)(i + 1) * s) & bt_mask(ss), s, v);
	}
	bt_set_sp(cpu, (sp - 8ull * s) & bt_mask(ss), ss);
}

static void h_popa(struct bt_cpu *cpu, const struct bt_insn *in)
{
	unsigned s = bt_osz(in);
	uint64_t v[8];
	static const int order[8] = { BT_RDI, BT_RSI, BT_RBP, BT_RSP, BT_RBX, BT_RDX, BT_RCX, BT_RAX };
	for (int i = 0; i < 8; i++)
		v[i] = bt_stack_peek(cpu, (uint64_t)i * s, s);
	for (int i = 0; i < 8; i++) {
		if (order[i] == BT_RSP)
			continue;
		if (s == 2)
			cpu->gpr[order[i]] = (cpu->gpr[order[i]] & ~0xffffull) | (uint16_t)v[i];
		else
			cpu->gpr[order[i]] = (uint32_t)v[i];
	}
	bt_stack_adjust(cpu, 8 * (int64_t)s);
}

static void h_pushf(struct bt_cpu *cpu, const struct bt_insn *in)
{
	unsigned s = bt_osz(in);
	uint64_t f = bt_get_rflags(cpu);
	if ((f & BT_VM) && ((f & BT_IOPL) >> 12) < 3)
		bt_raise_gp(cpu, 0);
	/* The image has VM and RF clear. */
	bt_push(cpu, f & ~(uint64_t)(BT_VM | BT_RF) & bt_mask(s), s);
}

static void h_enter(struct bt_cpu *cpu, const struct bt_insn *in)
{
	unsigned s = bt_osz(in), ss = bt_stack_size(cpu);
	uint64_t alloc = in->ops[0].imm.value.u & 0xffff;
	unsigned level = (unsigned)in->ops[1].imm.value.u & 31;
	uint64_t m = bt_mask(ss);
	uint64_t sp = cpu->gpr[BT_RSP], bp = cpu->gpr[BT_RBP];

	if (bt_is64(in) && s != 2)
		s = 8;
	sp = (sp - s) & m;
	bt_mem_write(cpu, BT_SS, sp, s, bp);
	uint64_t frame = sp;
	if (level > 0) {
		for (unsigned i = 1; i < level; i++) {
			bp = (bp - s) & m;
			uint64_t v = bt_mem_read(cpu, BT_SS, bp, s);
			sp = (sp - s) & m;
			bt_mem_write(cpu, BT_SS, sp, s, v);
		}
		sp = (sp - s) & m;
		bt_mem_write(cpu, BT_SS, sp, s, frame);
	}
	sp = (sp - alloc) & m;
	/* The new stack top must be writable (hardware probes it). */
	bt_mem_write(cpu, BT_SS, sp, 1, bt_mem_read(cpu, BT_SS, sp, 1));
	if (s == 2)
		cpu->gpr[BT_RBP] = (cpu->gpr[BT_RBP] & ~0xffffull) | (uint16_t)frame;
	else if (ss == 8 || s == 8)
		cpu->gpr[BT_RBP] = frame;
	else
		cpu->gpr[BT_RBP] = (uint32_t)frame;
	bt_set_sp(cpu, sp, ss);
}

static void h_leave(struct bt_cpu *cpu, const struct bt_insn *in)
{
	unsigned s = bt_osz(in), ss = bt_stack_size(cpu);
	uint64_t m = bt_mask(ss);
	uint64_t bp = cpu->gpr[BT_RBP] & m;
	uint64_t v = bt_mem_read(cpu, BT_SS, bp, s);
	bt_set_sp(cpu, (bp + s) & m, ss);
	if (s == 2)
		cpu->gpr[BT_RBP] = (cpu->gpr[BT_RBP] & ~0xffffull) | (uint16_t)v;
	else if (s == 4)
		cpu->gpr[BT_RBP] = (uint32_t)v;
	else
		cpu->gpr[BT_RBP] = v;
}

static void h_cpuid(struct bt_cpu *cpu, const struct bt_insn *in)
{
	uint32_t out[4] = { 0, 0, 0, 0 };
	bt_cpuid(cpu, (uint32_t)cpu->gpr[BT_RAX], (uint32_t)cpu->gpr[BT_RCX], out);
	cpu->gpr[BT_RAX] = out[0];
	cpu->gpr[BT_RBX] = out[1];
	cpu->gpr[BT_RCX] = out[2];
	cpu->gpr[BT_RDX] = out[3];
}

void bt_ctl_init(void)
{
	for (unsigned cc = 0; cc < 16; cc++) {
		bt_exec_register(bt_jcc[cc], bt_jcc_h[cc]);
		bt_exec_register(bt_setcc[cc], bt_setcc_h[cc]);
		bt_exec_register(bt_cmovcc[cc], bt_cmovcc_h[cc]);
	}
	bt_exec_register(ZYDIS_MNEMONIC_JMP, h_jmp);
	bt_exec_register(ZYDIS_MNEMONIC_CALL, h_call);
	bt_exec_register(ZYDIS_MNEMONIC_RET, h_ret);
	bt_exec_register(ZYDIS_MNEMONIC_LOOP, h_loop);
	bt_exec_register(ZYDIS_MNEMONIC_LOOPE, h_loope);
	bt_exec_register(ZYDIS_MNEMONIC_LOOPNE, h_loopne);
	bt_exec_register(ZYDIS_MNEMONIC_JCXZ, h_jcxz);
	bt_exec_register(ZYDIS_MNEMONIC_JECXZ, h_jcxz);
	bt_exec_register(ZYDIS_MNEMONIC_JRCXZ, h_jcxz);
	bt_exec_register(ZYDIS_MNEMONIC_PUSH, h_push);
	bt_exec_register(ZYDIS_MNEMONIC_POP, h_pop);
	bt_exec_register(ZYDIS_MNEMONIC_PUSHA, h_pusha);
	bt_exec_register(ZYDIS_MNEMONIC_PUSHAD, h_pusha);
	bt_exec_register(ZYDIS_MNEMONIC_POPA, h_popa);
	bt_exec_register(ZYDIS_MNEMONIC_POPAD, h_popa);
	bt_exec_register(ZYDIS_MNEMONIC_PUSHF, h_pushf);
	bt_exec_register(ZYDIS_MNEMONIC_PUSHFD, h_pushf);
	bt_exec_register(ZYDIS_MNEMONIC_PUSHFQ, h_pushf);
	bt_exec_register(ZYDIS_MNEMONIC_ENTER, h_enter);
	bt_exec_register(ZYDIS_MNEMONIC_LEAVE, h_leave);
	bt_exec_register(ZYDIS_MNEMONIC_CPUID, h_cpuid);
}

/*
 * bt_exc.c — exceptions and interrupts for the bt engine: delivery through
 * the real-mode IVT or the protected/long-mode IDT, the double-fault rule
 * and triple fault, IRET in every mode, INT n/INT3/INTO/INT1, and the
 * external interrupt check (NMI, LAPIC, PIC through ExtINT).
 *
 * bt_raise() delivers at once and longjmps to the run loop (see bt.h).
 * Delivery reads and writes guest memory and may itself fault: then
 * bt_raise() is re-entered with cpu->exc_depth > 0 and applies the SDM's
 * table of exception classes (benign / contributory / page fault).
 */
#include <stdio.h>
#include <string.h>

#include "bt.h"
#include "../../vmx/log.h"

enum exc_class { CLS_BENIGN = 0, CLS_CONTRIB, CLS_PF, CLS_DF };

static enum exc_class class_of(unsigned vector)
{
	switch (vector) {
	case BT_DE: case BT_TS: case BT_NP: case BT_SS_EXC: case BT_GP:
		return CLS_CONTRIB;
	case BT_PF_EXC:
		return CLS_PF;
	case BT_DF_EXC:
		return CLS_DF;
	default:
		return CLS_BENIGN;
	}
}

static _Noreturn void triple_fault(struct bt_cpu *cpu, const char *why)
{
	char msg[128];
	const struct vmm_host_ops *h = cpu->vm->cfg.host;

	snprintf(msg, sizeof(msg), "triple fault at RIP %#llx (%s)",
	         (unsigned long long)cpu->rip, why);
	vlog_guest("bt: vcpu %u: %s", cpu->id, msg);
	cpu->exc_depth = 0;
	cpu->exc_class = CLS_BENIGN;
	if (h && h->shutdown)
		h->shutdown(cpu->vm->cfg.host_opaque, cpu->id, msg);
	if (cpu->exit) {
		cpu->exit->reason = VMM_EXIT_SHUTDOWN;
		snprintf(cpu->exit->msg, sizeof(cpu->exit->msg), "%s", msg);
	}
	cpu->exit_requested = true;
	cpu->end_block = true;
	longjmp(cpu->fault_jmp, 1);
}

_Noreturn void bt_raise(struct bt_cpu *cpu, unsigned vector, uint32_t errcode, bool has_err)
{
	cpu->rip = cpu->insn_start_rip;
	if (cpu->exc_depth > 0) {
		/* A fault while delivering an earlier event. */
		enum exc_class prev = (enum exc_class)cpu->exc_class;
		enum exc_class cls = class_of(vector);
		if (prev == CLS_DF)
			triple_fault(cpu, "fault while delivering #DF");
		if ((prev == CLS_CONTRIB && cls == CLS_CONTRIB) ||
		    (prev == CLS_PF && (cls == CLS_CONTRIB || cls == CLS_PF))) {
			vector = BT_DF_EXC;
			errcode = 0;
			has_err = true;
		}
	}
	bt_deliver(cpu, vector, errcode, has_err, false);
	longjmp(cpu->fault_jmp, 1);
}

/* ---- stacks used during delivery ---- */

struct stk {
	struct bt_seg ss;
	uint64_t sp;
	unsigned width;      /* stack address size in bytes: 2, 4, 8 */
	unsigned acc;        /* BT_ACC_SUPER when the new CPL is < 3 */
	uint32_t ss_err;     /* #SS error code on a limit violation */
};

static uint64_t width_mask(unsigned width)
{
	return width == 8 ? ~0ull : width == 4 ? 0xffffffffull : 0xffffull;
}

static void stk_push(struct bt_cpu *cpu, struct stk *s, unsigned size, uint64_t v)
{
	uint64_t sp = (s->sp - size) & width_mask(s->width);
	uint64_t lin;

	if (s->width == 8) {
		lin = sp;
		if ((uint64_t)((int64_t)(lin << 16) >> 16) != lin)
			bt_raise(cpu, BT_SS_EXC, s->ss_err, true);
	} else {
		uint32_t type = s->ss.attr & 0xf;
		uint64_t last = sp + size - 1;
		if (type & 4) {
			/* expand-down */
			uint64_t top = (s->ss.attr & BT_SEG_DB) ? 0xffffffffull : 0xffffull;
			if (sp <= s->ss.limit || last > top)
				bt_raise(cpu, BT_SS_EXC, s->ss_err, true);
		} else if (last > s->ss.limit) {
			bt_raise(cpu, BT_SS_EXC, s->ss_err, true);
		}
		lin = (s->ss.base + sp) & 0xffffffffull;
	}
	bt_lin_write(cpu, lin, size, v, BT_ACC_WRITE | s->acc);
	s->sp = sp;
}

static void cur_stack(struct bt_cpu *cpu, struct stk *s, unsigned new_cpl)
{
	s->ss = cpu->seg[BT_SS];
	s->width = bt_stack_width(cpu);
	s->sp = cpu->gpr[BT_RSP] & width_mask(s->width);
	s->acc = new_cpl < 3 ? BT_ACC_SUPER : 0;
	s->ss_err = 0;
}

/* ---- the TSS ---- */

static uint64_t tss_read(struct bt_cpu *cpu, uint32_t off, unsigned size, uint32_t ext)
{
	if (cpu->tr.attr & BT_SEG_UNUSABLE || off + size - 1 > cpu->tr.limit)
		bt_raise(cpu, BT_TS, (cpu->tr.sel & 0xfffc) | ext, true);
	return bt_lin_read(cpu, cpu->tr.base + off, size, BT_ACC_READ | BT_ACC_SUPER);
}

/* ---- delivery ---- */

static void load_cs_for_delivery(struct bt_cpu *cpu, uint64_t desc, uint16_t sel, unsigned new_cpl)
{
	struct bt_seg cs;
	bt_desc_unpack(desc, sel, &cs);
	cs.sel = (uint16_t)((sel & 0xfffc) | new_cpl);
	cpu->seg[BT_CS] = cs;
}

/* Target code segment of a gate: checks common to 32-bit and 64-bit IDTs. */
static uint64_t gate_target(struct bt_cpu *cpu, uint16_t sel, uint32_t ext)
{
	uint64_t d;
	if ((sel & 0xfffc) == 0)
		bt_raise(cpu, BT_GP, ext, true);
	if (!bt_desc_read(cpu, sel, &d))
		bt_raise(cpu, BT_GP, (sel & 0xfffc) | ext, true);
	unsigned type = (unsigned)(d >> 40) & 0x1f;   /* with the S bit */
	unsigned dpl = (unsigned)(d >> 45) & 3;
	if ((type & 0x18) != 0x18 || dpl > cpu->cpl)
		bt_raise(cpu, BT_GP, (sel & 0xfffc) | ext, true);
	if (!(d & (1ull << 47)))
		bt_raise(cpu, BT_NP, (sel & 0xfffc) | ext, true);
	return d;
}

static void deliver_real(struct bt_cpu *cpu, unsigned vector)
{
	uint64_t rflags = bt_get_rflags(cpu);
	if (vector * 4 + 3 > cpu->idtr.limit)
		bt_raise(cpu, BT_GP, vector * 8 + 2, true);
	uint32_t ent = (uint32_t)bt_lin_read(cpu, cpu->idtr.base + vector * 4, 4, BT_ACC_READ | BT_ACC_SUPER);

	struct stk s;
	cur_stack(cpu, &s, 0);
	if (s.width == 8)
		s.width = 2;
	stk_push(cpu, &s, 2, rflags);
	stk_push(cpu, &s, 2, cpu->seg[BT_CS].sel);
	stk_push(cpu, &s, 2, cpu->rip);

	uint16_t sel = (uint16_t)(ent >> 16);
	cpu->seg[BT_CS].sel = sel;
	cpu->seg[BT_CS].base = (uint64_t)sel << 4;
	cpu->rip = ent & 0xffff;
	cpu->gpr[BT_RSP] = (cpu->gpr[BT_RSP] & ~width_mask(s.width)) | s.sp;
	bt_set_rflags(cpu, rflags & ~(uint64_t)(BT_IF | BT_TF | BT_AC | BT_RF));
}

static void deliver_prot(struct bt_cpu *cpu, unsigned vector, uint32_t err, bool has_err, bool soft)
{
	uint32_t ext = soft ? 0 : 1;
	uint32_t idt_err = vector * 8 + 2 + ext;
	uint64_t rflags = bt_get_rflags(cpu);

	if (rflags & BT_VM) {
		vlog_guest("bt: interrupt in virtual-8086 mode is not supported");
		triple_fault(cpu, "virtual-8086 mode");
	}
	if (vector * 8 + 7 > cpu->idtr.limit)
		bt_raise(cpu, BT_GP, idt_err, true);
	uint64_t g = bt_lin_read(cpu, cpu->idtr.base + vector * 8, 8, BT_ACC_READ | BT_ACC_SUPER);
	unsigned type = (unsigned)(g >> 40) & 0x1f;
	unsigned gdpl = (unsigned)(g >> 45) & 3;
	if (type != 0x6 && type != 0x7 && type != 0xe && type != 0xf) {
		if (type == 0x5)
			vlog_guest("bt: task gate in IDT vector %u is not supported", vector);
		bt_raise(cpu, BT_GP, idt_err, true);
	}
	if (soft && gdpl < cpu->cpl)
		bt_raise(cpu, BT_GP, vector * 8 + 2, true);
	if (!(g & (1ull << 47)))
		bt_raise(cpu, BT_NP, idt_err, true);

	unsigned gsize = (type & 8) ? 4 : 2;
	uint16_t sel = (uint16_t)(g >> 16);
	uint64_t off = (g & 0xffff) | (gsize == 4 ? ((g >> 48) & 0xffff) << 16 : 0);
	uint64_t d = gate_target(cpu, sel, ext);
	unsigned dpl = (unsigned)(d >> 45) & 3;
	bool conforming = (d >> 40) & 4;
	unsigned new_cpl = conforming ? cpu->cpl : dpl;

	struct stk s;
	struct bt_seg new_ss;
	uint64_t sd = 0;
	bool inner = new_cpl < cpu->cpl;
	if (inner) {
		bool tss32 = (cpu->tr.attr & 0xf) == 0x9 || (cpu->tr.attr & 0xf) == 0xb;
		uint64_t nsp;
		uint16_t nss;
		if (tss32) {
			nsp = tss_read(cpu, 4 + new_cpl * 8, 4, ext);
			nss = (uint16_t)tss_read(cpu, 8 + new_cpl * 8, 2, ext);
		} else {
			nsp = tss_read(cpu, 2 + new_cpl * 4, 2, ext);
			nss = (uint16_t)tss_read(cpu, 4 + new_cpl * 4, 2, ext);
		}
		if ((nss & 0xfffc) == 0)
			bt_raise(cpu, BT_TS, ext, true);
		if (!bt_desc_read(cpu, nss, &sd) || (nss & 3) != new_cpl ||
		    ((sd >> 45) & 3) != new_cpl || ((sd >> 40) & 0x1a) != 0x12)
			bt_raise(cpu, BT_TS, (nss & 0xfffc) | ext, true);
		if (!(sd & (1ull << 47)))
			bt_raise(cpu, BT_SS_EXC, (nss & 0xfffc) | ext, true);
		bt_desc_unpack(sd, nss, &new_ss);
		s.ss = new_ss;
		s.width = (new_ss.attr & BT_SEG_DB) ? 4 : 2;
		s.sp = nsp & width_mask(s.width);
		s.acc = new_cpl < 3 ? BT_ACC_SUPER : 0;
		s.ss_err = (nss & 0xfffc) | ext;
		stk_push(cpu, &s, gsize, cpu->seg[BT_SS].sel);
		stk_push(cpu, &s, gsize, cpu->gpr[BT_RSP]);
	} else {
		cur_stack(cpu, &s, new_cpl);
		s.ss_err = ext;
	}
	stk_push(cpu, &s, gsize, rflags);
	stk_push(cpu, &s, gsize, cpu->seg[BT_CS].sel);
	stk_push(cpu, &s, gsize, cpu->rip);
	if (has_err)
		stk_push(cpu, &s, gsize, err);

	/* Committed from here on: nothing below can fault. */
	if (inner) {
		bt_desc_set_accessed(cpu, new_ss.sel, sd);
		cpu->seg[BT_SS] = s.ss;
		cpu->gpr[BT_RSP] = s.sp;
	} else {
		cpu->gpr[BT_RSP] = (cpu->gpr[BT_RSP] & ~width_mask(s.width)) | s.sp;
	}
	load_cs_for_delivery(cpu, d, sel, new_cpl);
	cpu->rip = off;
	rflags &= ~(uint64_t)(BT_TF | BT_NT | BT_RF | BT_VM);
	if (!(type & 1))
		rflags &= ~(uint64_t)BT_IF;
	bt_set_rflags(cpu, rflags);
	bt_update_cpl(cpu);
}

static void deliver_long(struct bt_cpu *cpu, unsigned vector, uint32_t err, bool has_err, bool soft)
{
	uint32_t ext = soft ? 0 : 1;
	uint32_t idt_err = vector * 8 + 2 + ext;
	uint64_t rflags = bt_get_rflags(cpu);

	if (vector * 16 + 15 > cpu->idtr.limit)
		bt_raise(cpu, BT_GP, idt_err, true);
	uint64_t base = cpu->idtr.base + vector * 16;
	uint64_t lo = bt_lin_read(cpu, base, 8, BT_ACC_READ | BT_ACC_SUPER);
	uint64_t hi = bt_lin_read(cpu, base + 8, 8, BT_ACC_READ | BT_ACC_SUPER);
	unsigned type = (unsigned)(lo >> 40) & 0x1f;
	unsigned gdpl = (unsigned)(lo >> 45) & 3;
	if (type != 0xe && type != 0xf)
		bt_raise(cpu, BT_GP, idt_err, true);
	if (soft && gdpl < cpu->cpl)
		bt_raise(cpu, BT_GP, vector * 8 + 2, true);
	if (!(lo & (1ull << 47)))
		bt_raise(cpu, BT_NP, idt_err, true);

	uint16_t sel = (uint16_t)(lo >> 16);
	uint64_t off = (lo & 0xffff) | (((lo >> 48) & 0xffff) << 16) | ((hi & 0xffffffffull) << 32);
	unsigned ist = (unsigned)(lo >> 32) & 7;
	uint64_t d = gate_target(cpu, sel, ext);
	if (!(d & (1ull << 53)) || (d & (1ull << 54)))
		bt_raise(cpu, BT_GP, (sel & 0xfffc) | ext, true);
	unsigned dpl = (unsigned)(d >> 45) & 3;
	bool conforming = (d >> 40) & 4;
	unsigned new_cpl = conforming ? cpu->cpl : dpl;
	bool inner = new_cpl < cpu->cpl;

	uint64_t rsp = cpu->gpr[BT_RSP];
	if (ist)
		rsp = tss_read(cpu, 36 + (ist - 1) * 8, 8, ext);
	else if (inner)
		rsp = tss_read(cpu, 4 + new_cpl * 8, 8, ext);
	if ((uint64_t)((int64_t)(rsp << 16) >> 16) != rsp)
		bt_raise(cpu, BT_SS_EXC, ext, true);

	struct stk s;
	memset(&s, 0, sizeof(s));
	s.ss = cpu->seg[BT_SS];
	s.width = 8;
	s.sp = rsp & ~0xfull;
	s.acc = new_cpl < 3 ? BT_ACC_SUPER : 0;
	s.ss_err = ext;
	stk_push(cpu, &s, 8, cpu->seg[BT_SS].sel);
	stk_push(cpu, &s, 8, cpu->gpr[BT_RSP]);
	stk_push(cpu, &s, 8, rflags);
	stk_push(cpu, &s, 8, cpu->seg[BT_CS].sel);
	stk_push(cpu, &s, 8, cpu->rip);
	if (has_err)
		stk_push(cpu, &s, 8, err);

	if (inner) {
		/* A null SS with RPL = new CPL, as the SDM describes for IA-32e mode. */
		struct bt_seg *ss = &cpu->seg[BT_SS];
		ss->sel = (uint16_t)new_cpl;
		ss->base = 0;
		ss->limit = 0;
		ss->attr = BT_SEG_UNUSABLE | BT_SEG_DB | BT_SEG_P | BT_SEG_S | 0x3 | (new_cpl << 5);
	}
	cpu->gpr[BT_RSP] = s.sp;
	load_cs_for_delivery(cpu, d, sel, new_cpl);
	cpu->rip = off;
	rflags &= ~(uint64_t)(BT_TF | BT_NT | BT_RF | BT_VM);
	if (!(type & 1))
		rflags &= ~(uint64_t)BT_IF;
	bt_set_rflags(cpu, rflags);
	bt_update_cpl(cpu);
}

void bt_deliver(struct bt_cpu *cpu, unsigned vector, uint32_t errcode, bool has_err, bool soft)
{
	vector &= 0xff;
	if (++cpu->exc_depth > 4)
		triple_fault(cpu, "exception storm during delivery");
	cpu->exc_class = (uint8_t)(soft ? CLS_BENIGN : class_of(vector));
	if (!(cpu->cr0 & BT_CR0_PE))
		deliver_real(cpu, vector);
	else if (cpu->efer & BT_EFER_LMA)
		deliver_long(cpu, vector, errcode, has_err, soft);
	else
		deliver_prot(cpu, vector, errcode, has_err, soft);
	cpu->exc_depth = 0;
	cpu->exc_class = CLS_BENIGN;
	cpu->halted = false;
	cpu->end_block = true;
}

/* ---- IRET ---- */

static uint64_t stack_read(struct bt_cpu *cpu, uint64_t sp, unsigned size)
{
	return bt_mem_read(cpu, BT_SS, sp & width_mask(bt_stack_width(cpu)), size);
}

static uint64_t iret_flags(struct bt_cpu *cpu, uint64_t old, uint64_t popped, unsigned opsize, unsigned cpl)
{
	uint64_t ch = BT_ARITH_FLAGS | BT_TF | BT_DF | BT_NT | BT_RF | BT_AC | BT_ID;
	unsigned iopl = (unsigned)(old >> 12) & 3;
	if (cpl <= iopl)
		ch |= BT_IF;
	if (cpl == 0) {
		ch |= BT_IOPL;
		if (opsize > 2)
			ch |= BT_VIF | BT_VIP;
	}
	if (opsize == 2)
		ch &= 0xffff;
	return ((old & ~ch) | (popped & ch) | 2) & 0x3f7fd7ull;
}

static void iret_real(struct bt_cpu *cpu, unsigned opsize)
{
	uint64_t sp = cpu->gpr[BT_RSP];
	uint64_t ip = stack_read(cpu, sp, opsize);
	uint16_t cs = (uint16_t)stack_read(cpu, sp + opsize, 2);
	uint64_t fl = stack_read(cpu, sp + 2 * opsize, opsize);
	uint64_t old = bt_get_rflags(cpu);
	uint64_t ch = BT_ARITH_FLAGS | BT_TF | BT_IF | BT_DF | BT_IOPL | BT_NT;
	if (opsize == 4)
		ch |= BT_RF | BT_AC | BT_ID;
	unsigned w = bt_stack_width(cpu);
	cpu->gpr[BT_RSP] = (cpu->gpr[BT_RSP] & ~width_mask(w)) | ((sp + 3 * opsize) & width_mask(w));
	cpu->seg[BT_CS].sel = cs;
	cpu->seg[BT_CS].base = (uint64_t)cs << 4;
	cpu->rip = ip & (opsize == 2 ? 0xffff : 0xffffffff);
	bt_set_rflags(cpu, (old & ~ch) | (fl & ch) | 2);
}

static void null_outer_data_segs(struct bt_cpu *cpu)
{
	static const enum bt_sreg segs[] = { BT_ES, BT_DS, BT_FS, BT_GS };
	for (unsigned i = 0; i < 4; i++) {
		struct bt_seg *s = &cpu->seg[segs[i]];
		if (s->attr & BT_SEG_UNUSABLE)
			continue;
		bool conforming_code = (s->attr & 0xc) == 0xc;
		if (!conforming_code && BT_SEG_DPL(s->attr) < cpu->cpl) {
			s->sel = 0;
			s->attr |= BT_SEG_UNUSABLE;
		}
	}
}

static void iret_prot(struct bt_cpu *cpu, unsigned opsize)
{
	uint64_t old = bt_get_rflags(cpu);
	bool lma = cpu->efer & BT_EFER_LMA;
	bool mode64 = bt_code_bits(cpu) == 64;

	if (old & BT_VM) {
		vlog_guest("bt: IRET in virtual-8086 mode is not supported");
		bt_raise_gp(cpu, 0);
	}
	if (old & BT_NT) {
		if (!lma)
			vlog_guest("bt: IRET task return (NT=1) is not supported");
		bt_raise_gp(cpu, 0);
	}
	uint64_t sp = cpu->gpr[BT_RSP];
	uint64_t nip = stack_read(cpu, sp, opsize);
	uint16_t ncs = (uint16_t)stack_read(cpu, sp + opsize, 2);
	uint64_t nfl = stack_read(cpu, sp + 2 * opsize, opsize);
	if (opsize == 2)
		nfl = (old & ~0xffffull) | nfl;
	if (nfl & BT_VM) {
		if (cpu->cpl == 0 && !lma) {
			vlog_guest("bt: IRET to virtual-8086 mode is not supported");
			bt_raise_gp(cpu, 0);
		}
		nfl &= ~(uint64_t)BT_VM;
	}

	unsigned rpl = ncs & 3;
	uint64_t d;
	if ((ncs & 0xfffc) == 0)
		bt_raise_gp(cpu, 0);
	if (!bt_desc_read(cpu, ncs, &d))
		bt_raise_gp(cpu, ncs & 0xfffc);
	unsigned type = (unsigned)(d >> 40) & 0x1f;
	unsigned dpl = (unsigned)(d >> 45) & 3;
	if ((type & 0x18) != 0x18 || rpl < cpu->cpl)
		bt_raise_gp(cpu, ncs & 0xfffc);
	if ((type & 4) ? dpl > rpl : dpl != rpl)
		bt_raise_gp(cpu, ncs & 0xfffc);
	if (!(d & (1ull << 47)))
		bt_raise(cpu, BT_NP, ncs & 0xfffc, true);
	bool tgt64 = lma && (d & (1ull << 53));
	if (tgt64 && (d & (1ull << 54)))
		bt_raise_gp(cpu, ncs & 0xfffc);

	bool outer = rpl > cpu->cpl;
	struct bt_seg nss_cache;
	uint64_t nsp = 0;
	bool pop_ss = outer || mode64;
	if (pop_ss) {
		nsp = stack_read(cpu, sp + 3 * opsize, opsize);
		uint16_t nss = (uint16_t)stack_read(cpu, sp + 4 * opsize, 2);
		if ((nss & 0xfffc) == 0) {
			if (!(lma && tgt64 && rpl != 3))
				bt_raise_gp(cpu, 0);
			memset(&nss_cache, 0, sizeof(nss_cache));
			nss_cache.sel = nss;
			nss_cache.attr = BT_SEG_UNUSABLE | BT_SEG_DB | BT_SEG_P | BT_SEG_S | 0x3 | (rpl << 5);
		} else {
			uint64_t sd;
			if (!bt_desc_read(cpu, nss, &sd) || (nss & 3) != rpl ||
			    ((sd >> 45) & 3) != rpl || ((sd >> 40) & 0x1a) != 0x12)
				bt_raise_gp(cpu, nss & 0xfffc);
			if (!(sd & (1ull << 47)))
				bt_raise(cpu, BT_SS_EXC, nss & 0xfffc, true);
			bt_desc_unpack(sd, nss, &nss_cache);
			bt_desc_set_accessed(cpu, nss, sd);
		}
	}
	struct bt_seg ncs_cache;
	bt_desc_unpack(d, ncs, &ncs_cache);
	if (!tgt64) {
		nip &= opsize == 2 ? 0xffff : 0xffffffff;
		if (nip > ncs_cache.limit)
			bt_raise_gp(cpu, 0);
	} else if ((uint64_t)((int64_t)(nip << 16) >> 16) != nip) {
		bt_raise_gp(cpu, 0);
	}
	bt_desc_set_accessed(cpu, ncs, d);

	/* Commit. */
	unsigned old_cpl = cpu->cpl;
	uint64_t fl = iret_flags(cpu, old, nfl, opsize, old_cpl);
	cpu->seg[BT_CS] = ncs_cache;
	if (pop_ss) {
		cpu->seg[BT_SS] = nss_cache;
		if (tgt64 || opsize == 8)
			cpu->gpr[BT_RSP] = nsp;
		else if (opsize == 4 || (nss_cache.attr & BT_SEG_DB))
			cpu->gpr[BT_RSP] = nsp & 0xffffffff;
		else
			cpu->gpr[BT_RSP] = (cpu->gpr[BT_RSP] & ~0xffffull) | (nsp & 0xffff);
	} else {
		unsigned w = bt_stack_width(cpu);
		cpu->gpr[BT_RSP] = (cpu->gpr[BT_RSP] & ~width_mask(w)) | ((sp + 3 * opsize) & width_mask(w));
	}
	cpu->rip = nip;
	bt_set_rflags(cpu, fl);
	bt_update_cpl(cpu);
	if (cpu->cpl > old_cpl)
		null_outer_data_segs(cpu);
}

static void h_iret(struct bt_cpu *cpu, const struct bt_insn *in)
{
	unsigned opsize = in->zi.operand_width / 8;
	if (opsize != 2 && opsize != 4 && opsize != 8)
		opsize = 4;
	if (!(cpu->cr0 & BT_CR0_PE))
		iret_real(cpu, opsize);
	else
		iret_prot(cpu, opsize);
	cpu->end_block = true;
}

/* ---- software interrupts ---- */

static void h_int(struct bt_cpu *cpu, const struct bt_insn *in)
{
	unsigned vec = (unsigned)in->ops[0].imm.value.u & 0xff;
	if ((bt_get_rflags(cpu) & BT_VM) && ((bt_get_rflags(cpu) >> 12) & 3) < 3)
		bt_raise_gp(cpu, 0);
	bt_deliver(cpu, vec, 0, false, true);
}

static void h_int3(struct bt_cpu *cpu, const struct bt_insn *in)
{
	bt_deliver(cpu, BT_BP, 0, false, true);
}

static void h_into(struct bt_cpu *cpu, const struct bt_insn *in)
{
	if (bt_get_rflags(cpu) & BT_OF)
		bt_deliver(cpu, BT_OFV, 0, false, true);
}

static void h_int1(struct bt_cpu *cpu, const struct bt_insn *in)
{
	/* ICEBP: a #DB without the gate DPL check. */
	bt_deliver(cpu, BT_DB, 0, false, false);
}

static void h_ud(struct bt_cpu *cpu, const struct bt_insn *in)
{
	bt_raise_ud(cpu);
}

void bt_exc_register(void)
{
	bt_exec_register(ZYDIS_MNEMONIC_IRET, h_iret);
	bt_exec_register(ZYDIS_MNEMONIC_IRETD, h_iret);
	bt_exec_register(ZYDIS_MNEMONIC_IRETQ, h_iret);
	bt_exec_register(ZYDIS_MNEMONIC_INT, h_int);
	bt_exec_register(ZYDIS_MNEMONIC_INT3, h_int3);
	bt_exec_register(ZYDIS_MNEMONIC_INTO, h_into);
	bt_exec_register(ZYDIS_MNEMONIC_INT1, h_int1);
	bt_exec_register(ZYDIS_MNEMONIC_UD0, h_ud);
	bt_exec_register(ZYDIS_MNEMONIC_UD1, h_ud);
	bt_exec_register(ZYDIS_MNEMONIC_UD2, h_ud);
}

/* ---- external events ---- */

bool bt_check_interrupts(struct bt_cpu *cpu)
{
	if (cpu->irq_shadow) {
		/* One instruction after STI / MOV SS runs before anything is taken. */
		cpu->irq_shadow = false;
		return false;
	}
	cpu->insn_start_rip = cpu->rip;
	if (cpu->nmi_pending) {
		cpu->nmi_pending = false;
		bt_deliver(cpu, BT_NMI, 0, false, false);
		return true;
	}
	if (!(bt_get_rflags(cpu) & BT_IF))
		return false;
	int v = bt_lapic_pending(cpu);
	if (v >= 0) {
		bt_lapic_ack(cpu, v);
		bt_deliver(cpu, (unsigned)v, 0, false, false);
		return true;
	}
	const struct vmm_host_ops *h = cpu->vm->cfg.host;
	if (h && h->pic_pending && h->pic_ack && bt_lapic_extint_enabled(cpu) &&
	    h->pic_pending(cpu->vm->cfg.host_opaque)) {
		int pv = h->pic_ack(cpu->vm->cfg.host_opaque);
		if (pv < 0)
			return false;
		bt_deliver(cpu, (unsigned)pv & 0xff, 0, false, false);
		return true;
	}
	return false;
}

/* ---- unimplemented instructions ---- */

static atomic_uchar unimpl_seen[ZYDIS_MNEMONIC_MAX_VALUE + 1];

_Noreturn void bt_unimplemented(struct bt_cpu *cpu, const struct bt_insn *in)
{
	unsigned m = in->zi.mnemonic;
	if (m <= ZYDIS_MNEMONIC_MAX_VALUE && !atomic_exchange(&unimpl_seen[m], 1)) {
		uint8_t bytes[BT_MAX_INSN_LEN];
		char hex[3 * BT_MAX_INSN_LEN + 1] = "";
		unsigned len = in->zi.length <= BT_MAX_INSN_LEN ? in->zi.length : BT_MAX_INSN_LEN;
		uint64_t lin = cpu->seg[BT_CS].base + cpu->insn_start_rip;
		if (bt_code_bits(cpu) != 64)
			lin &= 0xffffffffull;
		if (bt_mmu_peek(cpu, lin, bytes, len)) {
			for (unsigned i = 0; i < len; i++)
				snprintf(hex + 3 * i, sizeof(hex) - 3 * i, "%02x ", bytes[i]);
		}
		bt_log("unimplemented instruction %s at RIP %#llx (%u-bit): %s-> #UD",
		       ZydisMnemonicGetString(in->zi.mnemonic),
		       (unsigned long long)cpu->insn_start_rip, bt_code_bits(cpu), hex);
	}
	bt_raise_ud(cpu);
}

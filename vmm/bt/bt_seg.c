/*
 * bt_seg.c — segmentation for the bt engine: descriptor tables, segment
 * loads with their protection checks in real, protected, compatibility and
 * 64-bit mode, segment-relative address checks, far JMP/CALL/RET, the mode
 * helpers used by the translation cache, and the segment instructions
 * (LDS..LSS, LAR, LSL, VERR, VERW, ARPL, SWAPGS).
 */
#include <string.h>

#include "bt.h"
#include "../../vmx/log.h"

#define D_P   (1ull << 47)
#define D_S   (1ull << 44)
#define D_L   (1ull << 53)
#define D_DB  (1ull << 54)
#define D_TYPE(d) ((unsigned)((d) >> 40) & 0xf)
#define D_DPL(d)  ((unsigned)((d) >> 45) & 3)
#define D_CODE(d) (((d) & D_S) && (D_TYPE(d) & 8))
#define D_DATA(d) (((d) & D_S) && !(D_TYPE(d) & 8))

static bool is_canonical(uint64_t a)
{
	return (uint64_t)((int64_t)(a << 16) >> 16) == a;
}

/* ---- modes ---- */

bool bt_long_mode(const struct bt_cpu *cpu)
{
	return cpu->efer & BT_EFER_LMA;
}

unsigned bt_code_bits(const struct bt_cpu *cpu)
{
	uint32_t a = cpu->seg[BT_CS].attr;
	if ((cpu->efer & BT_EFER_LMA) && (a & BT_SEG_L))
		return 64;
	if ((cpu->cr0 & BT_CR0_PE) && (cpu->rflags & BT_VM))
		return 16;
	return (a & BT_SEG_DB) ? 32 : 16;
}

uint32_t bt_mode_key(const struct bt_cpu *cpu)
{
	unsigned bits = bt_code_bits(cpu);
	uint32_t k = bits == 64 ? 2 : bits == 32 ? 1 : 0;
	if (cpu->cr0 & BT_CR0_PE)
		k |= 1u << 2;
	if (cpu->cr0 & BT_CR0_PG)
		k |= 1u << 3;
	if (cpu->efer & BT_EFER_LMA)
		k |= 1u << 4;
	if (cpu->rflags & BT_VM)
		k |= 1u << 5;
	k |= (cpu->cpl & 3u) << 6;
	if (cpu->seg[BT_SS].attr & BT_SEG_DB)
		k |= 1u << 8;
	return k;
}

void bt_update_cpl(struct bt_cpu *cpu)
{
	if (!(cpu->cr0 & BT_CR0_PE))
		cpu->cpl = 0;
	else if (cpu->rflags & BT_VM)
		cpu->cpl = 3;
	else
		cpu->cpl = BT_SEG_DPL(cpu->seg[BT_SS].attr);
}

/* ---- descriptor tables ---- */

static bool table_of(struct bt_cpu *cpu, uint16_t sel, uint64_t *base, uint32_t *limit)
{
	if (sel & 4) {
		if (cpu->ldtr.attr & BT_SEG_UNUSABLE || (cpu->ldtr.sel & 0xfffc) == 0)
			return false;
		*base = cpu->ldtr.base;
		*limit = cpu->ldtr.limit;
	} else {
		*base = cpu->gdtr.base;
		*limit = cpu->gdtr.limit;
	}
	return true;
}

bool bt_desc_read(struct bt_cpu *cpu, uint16_t sel, uint64_t *desc)
{
	uint64_t base;
	uint32_t limit;
	if (!table_of(cpu, sel, &base, &limit))
		return false;
	uint32_t idx = sel & 0xfff8u;
	if (idx + 7 > limit)
		return false;
	*desc = bt_lin_read(cpu, base + idx, 8, BT_ACC_READ | BT_ACC_SUPER);
	return true;
}

/* The upper half of a 16-byte system descriptor (long mode). */
static bool desc_read_hi(struct bt_cpu *cpu, uint16_t sel, uint64_t *hi)
{
	uint64_t base;
	uint32_t limit;
	if (!table_of(cpu, sel, &base, &limit))
		return false;
	uint32_t idx = sel & 0xfff8u;
	if (idx + 15 > limit)
		return false;
	*hi = bt_lin_read(cpu, base + idx + 8, 8, BT_ACC_READ | BT_ACC_SUPER);
	return true;
}

void bt_desc_unpack(uint64_t d, uint16_t sel, struct bt_seg *out)
{
	uint32_t limit = (uint32_t)(d & 0xffff) | (uint32_t)((d >> 32) & 0xf0000);
	if (d & (1ull << 55))
		limit = (limit << 12) | 0xfff;
	out->sel = sel;
	out->base = ((d >> 16) & 0xffffff) | (((d >> 56) & 0xff) << 24);
	out->limit = limit;
	out->attr = (uint32_t)((d >> 40) & 0xff) | (uint32_t)(((d >> 52) & 0xf) << 12);
}

void bt_desc_set_accessed(struct bt_cpu *cpu, uint16_t sel, uint64_t desc)
{
	uint64_t base;
	uint32_t limit;
	if (!(desc & D_S) || (desc & (1ull << 40)))
		return;
	if (!table_of(cpu, sel, &base, &limit))
		return;
	uint8_t b = (uint8_t)(desc >> 40) | 1;
	bt_lin_write(cpu, base + (sel & 0xfff8u) + 5, 1, b, BT_ACC_WRITE | BT_ACC_SUPER);
}

/* ---- segment-relative addresses ---- */

static _Noreturn void seg_fault(struct bt_cpu *cpu, enum bt_sreg s, uint32_t err)
{
	if (s == BT_SS)
		bt_raise(cpu, BT_SS_EXC, err, true);
	bt_raise_gp(cpu, err);
}

uint64_t bt_seg_linear(struct bt_cpu *cpu, enum bt_sreg s, uint64_t off, unsigned size, unsigned acc)
{
	const struct bt_seg *sg = &cpu->seg[s];
	uint64_t last = off + (size ? size - 1 : 0);

	if (bt_code_bits(cpu) == 64) {
		uint64_t lin = off + ((s == BT_FS || s == BT_GS) ? sg->base : 0);
		if (!is_canonical(lin) || !is_canonical(lin + (size ? size - 1 : 0)))
			seg_fault(cpu, s, 0);
		return lin;
	}
	if ((cpu->cr0 & BT_CR0_PE) && !(cpu->rflags & BT_VM)) {
		uint32_t type = sg->attr & 0xf;
		if (sg->attr & BT_SEG_UNUSABLE)
			seg_fault(cpu, s, 0);
		if (type & 8) {
			/* code: never writable, readable only with R */
			if ((acc & BT_ACC_WRITE) || ((acc & BT_ACC_READ) && !(type & 2)))
				seg_fault(cpu, s, 0);
		} else {
			if ((acc & BT_ACC_WRITE) && !(type & 2))
				seg_fault(cpu, s, 0);
			if (type & 4) {
				uint64_t top = (sg->attr & BT_SEG_DB) ? 0xffffffffull : 0xffffull;
				if (off <= sg->limit || last > top)
					seg_fault(cpu, s, 0);
				return (sg->base + off) & 0xffffffffull;
			}
		}
	}
	if (last > sg->limit)
		seg_fault(cpu, s, 0);
	return (sg->base + off) & 0xffffffffull;
}

/* ---- segment loads ---- */

static void set_null(struct bt_seg *sg, uint16_t sel, unsigned dpl)
{
	sg->sel = sel;
	sg->base = 0;
	sg->limit = 0;
	sg->attr = BT_SEG_UNUSABLE | BT_SEG_DB | BT_SEG_P | BT_SEG_S | 0x3 | (dpl << 5);
}

/* Load a data/stack segment register with all protected-mode checks. */
static void load_seg_prot(struct bt_cpu *cpu, enum bt_sreg s, uint16_t sel)
{
	struct bt_seg *sg = &cpu->seg[s];
	bool mode64 = bt_code_bits(cpu) == 64;
	uint16_t err = sel & 0xfffc;
	uint64_t d;

	if (s == BT_CS)
		bt_raise_ud(cpu);
	if ((sel & 0xfffc) == 0) {
		if (s == BT_SS) {
			if (!mode64 || cpu->cpl == 3 || (sel & 3) != cpu->cpl)
				bt_raise_gp(cpu, 0);
			set_null(sg, sel, cpu->cpl);
			return;
		}
		set_null(sg, sel, 0);
		return;
	}
	if (!bt_desc_read(cpu, sel, &d))
		bt_raise_gp(cpu, err);
	unsigned dpl = D_DPL(d), rpl = sel & 3u, type = D_TYPE(d);
	if (s == BT_SS) {
		if (rpl != cpu->cpl || !D_DATA(d) || !(type & 2) || dpl != cpu->cpl)
			bt_raise_gp(cpu, err);
		if (!(d & D_P))
			bt_raise(cpu, BT_SS_EXC, err, true);
	} else {
		if (!(d & D_S) || (D_CODE(d) && !(type & 2)))
			bt_raise_gp(cpu, err);
		bool conforming = D_CODE(d) && (type & 4);
		if (!conforming && (rpl > dpl || cpu->cpl > dpl))
			bt_raise_gp(cpu, err);
		if (!(d & D_P))
			bt_raise(cpu, BT_NP, err, true);
	}
	bt_desc_set_accessed(cpu, sel, d);
	bt_desc_unpack(d | (1ull << 40), sel, sg);
}

void bt_load_seg(struct bt_cpu *cpu, enum bt_sreg s, uint16_t sel)
{
	struct bt_seg *sg = &cpu->seg[s];
	if (!(cpu->cr0 & BT_CR0_PE)) {
		sg->sel = sel;
		sg->base = (uint64_t)sel << 4;
		if (sg->attr & BT_SEG_UNUSABLE) {
			sg->attr = BT_SEG_P | BT_SEG_S | (s == BT_CS ? 0xb : 0x3);
			sg->limit = 0xffff;
		}
	} else if (cpu->rflags & BT_VM) {
		sg->sel = sel;
		sg->base = (uint64_t)sel << 4;
		sg->limit = 0xffff;
		sg->attr = BT_SEG_P | BT_SEG_S | (3u << 5) | (s == BT_CS ? 0xb : 0x3);
	} else {
		load_seg_prot(cpu, s, sel);
	}
	if (s == BT_SS) {
		cpu->irq_shadow = true;
		cpu->end_block = true;   /* the stack size may have changed the mode key */
	}
}

/* ---- the stack ---- */

unsigned bt_stack_width(const struct bt_cpu *cpu)
{
	if (bt_code_bits(cpu) == 64)
		return 8;
	return (cpu->seg[BT_SS].attr & BT_SEG_DB) ? 4 : 2;
}

static uint64_t wmask(unsigned w)
{
	return w == 8 ? ~0ull : w == 4 ? 0xffffffffull : 0xffffull;
}

static void set_sp(struct bt_cpu *cpu, uint64_t sp)
{
	unsigned w = bt_stack_width(cpu);
	cpu->gpr[BT_RSP] = w == 4 ? (sp & 0xffffffffull)
	                  : (cpu->gpr[BT_RSP] & ~wmask(w)) | (sp & wmask(w));
}

void bt_sys_push(struct bt_cpu *cpu, unsigned size, uint64_t v)
{
	unsigned w = bt_stack_width(cpu);
	uint64_t sp = (cpu->gpr[BT_RSP] - size) & wmask(w);
	bt_mem_write(cpu, BT_SS, sp, size, v);
	set_sp(cpu, sp);
}

uint64_t bt_sys_pop(struct bt_cpu *cpu, unsigned size)
{
	unsigned w = bt_stack_width(cpu);
	uint64_t sp = cpu->gpr[BT_RSP] & wmask(w);
	uint64_t v = bt_mem_read(cpu, BT_SS, sp, size);
	set_sp(cpu, sp + size);
	return v;
}

static uint64_t stk_peek(struct bt_cpu *cpu, uint64_t off, unsigned size)
{
	unsigned w = bt_stack_width(cpu);
	return bt_mem_read(cpu, BT_SS, (cpu->gpr[BT_RSP] + off) & wmask(w), size);
}

/* ---- far transfers ---- */

static uint64_t ip_mask(unsigned opsize)
{
	return wmask(opsize);
}

/* Check a code-segment target of a far JMP/CALL (direct, no gate); returns the cache. */
static void check_code_target(struct bt_cpu *cpu, uint16_t sel, uint64_t d, struct bt_seg *out)
{
	uint16_t err = sel & 0xfffc;
	unsigned dpl = D_DPL(d), rpl = sel & 3u;
	if (D_TYPE(d) & 4) {
		if (dpl > cpu->cpl)
			bt_raise_gp(cpu, err);
	} else if (rpl > cpu->cpl || dpl != cpu->cpl) {
		bt_raise_gp(cpu, err);
	}
	if (!(d & D_P))
		bt_raise(cpu, BT_NP, err, true);
	if ((cpu->efer & BT_EFER_LMA) && (d & D_L) && (d & D_DB))
		bt_raise_gp(cpu, err);
	bt_desc_unpack(d | (1ull << 40), (uint16_t)((sel & 0xfffc) | cpu->cpl), out);
}

/*
 * Resolve a far target: a code segment, or a call gate to same-privilege
 * code.  Fills *cs and may replace *off with the gate's offset.
 */
static void far_target(struct bt_cpu *cpu, uint16_t sel, uint64_t *off, struct bt_seg *cs, uint64_t *desc_out)
{
	uint64_t d;
	uint16_t err = sel & 0xfffc;
	if ((sel & 0xfffc) == 0)
		bt_raise_gp(cpu, 0);
	if (!bt_desc_read(cpu, sel, &d))
		bt_raise_gp(cpu, err);
	if (D_CODE(d)) {
		check_code_target(cpu, sel, d, cs);
		*desc_out = d;
		return;
	}
	if ((d & D_S) || D_TYPE(d) != 0xc) {
		vlog_guest("bt: far transfer through descriptor type %#x is not supported", D_TYPE(d));
		bt_raise_gp(cpu, err);
	}
	/* call gate */
	unsigned gdpl = D_DPL(d);
	if (gdpl < cpu->cpl || gdpl < (sel & 3u))
		bt_raise_gp(cpu, err);
	if (!(d & D_P))
		bt_raise(cpu, BT_NP, err, true);
	uint16_t tsel = (uint16_t)(d >> 16);
	uint64_t toff = (d & 0xffff) | (((d >> 48) & 0xffff) << 16);
	if (cpu->efer & BT_EFER_LMA) {
		uint64_t hi;
		if (!desc_read_hi(cpu, sel, &hi))
			bt_raise_gp(cpu, err);
		toff |= (hi & 0xffffffffull) << 32;
	}
	uint64_t td;
	if ((tsel & 0xfffc) == 0)
		bt_raise_gp(cpu, 0);
	if (!bt_desc_read(cpu, tsel, &td) || !D_CODE(td))
		bt_raise_gp(cpu, tsel & 0xfffc);
	if (!(D_TYPE(td) & 4) && D_DPL(td) < cpu->cpl) {
		vlog_guest("bt: call gate to an inner privilege level is not supported");
		bt_raise_gp(cpu, tsel & 0xfffc);
	}
	/* Same privilege: the RPL of the target selector is replaced by CPL. */
	check_code_target(cpu, (uint16_t)((tsel & 0xfffc) | cpu->cpl), td, cs);
	*off = toff;
	*desc_out = td;
}

static void real_far(struct bt_cpu *cpu, uint16_t sel, uint64_t off, unsigned opsize)
{
	struct bt_seg *cs = &cpu->seg[BT_CS];
	cs->sel = sel;
	cs->base = (uint64_t)sel << 4;
	if (cpu->rflags & BT_VM)
		cs->limit = 0xffff;
	cpu->rip = off & ip_mask(opsize);
}

static void commit_cs(struct bt_cpu *cpu, const struct bt_seg *cs, uint64_t off, unsigned opsize)
{
	cpu->seg[BT_CS] = *cs;
	bool l64 = (cpu->efer & BT_EFER_LMA) && (cs->attr & BT_SEG_L);
	cpu->rip = l64 ? off : off & ip_mask(opsize > 4 ? 4 : opsize);
	cpu->end_block = true;
}

static void check_target_ip(struct bt_cpu *cpu, const struct bt_seg *cs, uint64_t off, unsigned opsize)
{
	bool l64 = (cpu->efer & BT_EFER_LMA) && (cs->attr & BT_SEG_L);
	if (l64) {
		if (!is_canonical(off))
			bt_raise_gp(cpu, 0);
	} else if ((off & ip_mask(opsize > 4 ? 4 : opsize)) > cs->limit) {
		bt_raise_gp(cpu, 0);
	}
}

void bt_far_jmp(struct bt_cpu *cpu, uint16_t sel, uint64_t off, unsigned opsize)
{
	cpu->end_block = true;
	if (!(cpu->cr0 & BT_CR0_PE) || (cpu->rflags & BT_VM)) {
		real_far(cpu, sel, off, opsize);
		return;
	}
	struct bt_seg cs;
	uint64_t d;
	far_target(cpu, sel, &off, &cs, &d);
	check_target_ip(cpu, &cs, off, opsize);
	bt_desc_set_accessed(cpu, sel, d);
	commit_cs(cpu, &cs, off, opsize);
}

void bt_far_call(struct bt_cpu *cpu, uint16_t sel, uint64_t off, unsigned opsize)
{
	uint64_t ret_ip = cpu->rip;
	uint16_t old_cs = cpu->seg[BT_CS].sel;
	unsigned w = bt_stack_width(cpu);
	uint64_t sp = cpu->gpr[BT_RSP];

	cpu->end_block = true;
	if (!(cpu->cr0 & BT_CR0_PE) || (cpu->rflags & BT_VM)) {
		bt_mem_write(cpu, BT_SS, (sp - opsize) & wmask(w), opsize, old_cs);
		bt_mem_write(cpu, BT_SS, (sp - 2 * opsize) & wmask(w), opsize, ret_ip);
		set_sp(cpu, sp - 2 * opsize);
		real_far(cpu, sel, off, opsize);
		return;
	}
	struct bt_seg cs;
	uint64_t d;
	far_target(cpu, sel, &off, &cs, &d);
	check_target_ip(cpu, &cs, off, opsize);
	bt_mem_write(cpu, BT_SS, (sp - opsize) & wmask(w), opsize, old_cs);
	bt_mem_write(cpu, BT_SS, (sp - 2 * opsize) & wmask(w), opsize, ret_ip);
	bt_desc_set_accessed(cpu, sel, d);
	set_sp(cpu, sp - 2 * opsize);
	commit_cs(cpu, &cs, off, opsize);
}

static void null_outer_segs(struct bt_cpu *cpu)
{
	static const enum bt_sreg segs[] = { BT_ES, BT_DS, BT_FS, BT_GS };
	for (unsigned i = 0; i < 4; i++) {
		struct bt_seg *s = &cpu->seg[segs[i]];
		if (s->attr & BT_SEG_UNUSABLE)
			continue;
		if ((s->attr & 0xc) != 0xc && BT_SEG_DPL(s->attr) < cpu->cpl) {
			s->sel = 0;
			s->attr |= BT_SEG_UNUSABLE;
		}
	}
}

void bt_far_ret(struct bt_cpu *cpu, unsigned opsize, uint16_t imm)
{
	cpu->end_block = true;
	uint64_t nip = stk_peek(cpu, 0, opsize);
	uint16_t ncs = (uint16_t)stk_peek(cpu, opsize, 2);
	uint64_t sp = cpu->gpr[BT_RSP];

	if (!(cpu->cr0 & BT_CR0_PE) || (cpu->rflags & BT_VM)) {
		set_sp(cpu, sp + 2 * opsize + imm);
		real_far(cpu, ncs, nip, opsize);
		return;
	}
	uint64_t d;
	uint16_t err = ncs & 0xfffc;
	unsigned rpl = ncs & 3u;
	if ((ncs & 0xfffc) == 0)
		bt_raise_gp(cpu, 0);
	if (!bt_desc_read(cpu, ncs, &d) || !D_CODE(d) || rpl < cpu->cpl)
		bt_raise_gp(cpu, err);
	if ((D_TYPE(d) & 4) ? D_DPL(d) > rpl : D_DPL(d) != rpl)
		bt_raise_gp(cpu, err);
	if (!(d & D_P))
		bt_raise(cpu, BT_NP, err, true);
	if ((cpu->efer & BT_EFER_LMA) && (d & D_L) && (d & D_DB))
		bt_raise_gp(cpu, err);
	struct bt_seg cs;
	bt_desc_unpack(d | (1ull << 40), ncs, &cs);
	check_target_ip(cpu, &cs, nip, opsize);

	if (rpl == cpu->cpl) {
		bt_desc_set_accessed(cpu, ncs, d);
		set_sp(cpu, sp + 2 * opsize + imm);
		commit_cs(cpu, &cs, nip, opsize);
		return;
	}
	/* Return to an outer level: SS:SP follow on the stack. */
	uint64_t nsp = stk_peek(cpu, 2 * opsize + imm, opsize);
	uint16_t nss = (uint16_t)stk_peek(cpu, 3 * opsize + imm, 2);
	struct bt_seg ss;
	uint64_t sd;
	bool tgt64 = (cpu->efer & BT_EFER_LMA) && (d & D_L);
	if ((nss & 0xfffc) == 0) {
		if (!tgt64 || rpl == 3)
			bt_raise_gp(cpu, 0);
		set_null(&ss, nss, rpl);
	} else {
		if (!bt_desc_read(cpu, nss, &sd) || (nss & 3u) != rpl || !D_DATA(sd) ||
		    !(D_TYPE(sd) & 2) || D_DPL(sd) != rpl)
			bt_raise_gp(cpu, nss & 0xfffc);
		if (!(sd & D_P))
			bt_raise(cpu, BT_SS_EXC, nss & 0xfffc, true);
		bt_desc_set_accessed(cpu, nss, sd);
		bt_desc_unpack(sd | (1ull << 40), nss, &ss);
	}
	bt_desc_set_accessed(cpu, ncs, d);
	commit_cs(cpu, &cs, nip, opsize);
	cpu->seg[BT_SS] = ss;
	bt_update_cpl(cpu);
	nsp += imm;
	if (tgt64 || opsize == 8)
		cpu->gpr[BT_RSP] = nsp;
	else
		set_sp(cpu, nsp);
	null_outer_segs(cpu);
}

/* ---- instructions ---- */

static unsigned opsize_of(const struct bt_insn *in)
{
	unsigned s = in->zi.operand_width / 8;
	return s ? s : 4;
}

static void load_far_ptr(struct bt_cpu *cpu, const struct bt_insn *in, enum bt_sreg s)
{
	unsigned opsize = opsize_of(in);
	enum bt_sreg ms = bt_op_seg(in, 1);
	uint64_t ea = bt_op_ea(cpu, in, 1);
	uint64_t off = bt_mem_read(cpu, ms, ea, opsize);
	uint16_t sel = (uint16_t)bt_mem_read(cpu, ms, ea + opsize, 2);
	bt_load_seg(cpu, s, sel);
	if (s != BT_SS)
		cpu->irq_shadow = false;   /* only MOV/POP SS inhibit interrupts */
	bt_op_write(cpu, in, 0, off);
}

static void h_lds(struct bt_cpu *cpu, const struct bt_insn *in) { load_far_ptr(cpu, in, BT_DS); }
static void h_les(struct bt_cpu *cpu, const struct bt_insn *in) { load_far_ptr(cpu, in, BT_ES); }
static void h_lfs(struct bt_cpu *cpu, const struct bt_insn *in) { load_far_ptr(cpu, in, BT_FS); }
static void h_lgs(struct bt_cpu *cpu, const struct bt_insn *in) { load_far_ptr(cpu, in, BT_GS); }
static void h_lss(struct bt_cpu *cpu, const struct bt_insn *in) { load_far_ptr(cpu, in, BT_SS); }

static void set_zf(struct bt_cpu *cpu, bool z)
{
	uint64_t f = bt_get_rflags(cpu);
	bt_set_rflags(cpu, z ? (f | BT_ZF) : (f & ~(uint64_t)BT_ZF));
}

enum verify_kind { V_LAR, V_LSL, V_VERR, V_VERW };

/* Common checks of LAR/LSL/VERR/VERW; returns true with the descriptor when valid. */
static bool verify_sel(struct bt_cpu *cpu, uint16_t sel, enum verify_kind k, uint64_t *out)
{
	uint64_t d;
	if (!(cpu->cr0 & BT_CR0_PE) || (cpu->rflags & BT_VM))
		bt_raise_ud(cpu);
	if ((sel & 0xfffc) == 0 || !bt_desc_read(cpu, sel, &d))
		return false;
	unsigned type = D_TYPE(d);
	bool lma = cpu->efer & BT_EFER_LMA;
	if (!(d & D_S)) {
		if (k == V_VERR || k == V_VERW)
			return false;
		/* valid system types: LDT, TSS (+ gates for LAR); long mode allows fewer */
		static const uint16_t lar_ok = (1u << 1) | (1u << 2) | (1u << 3) | (1u << 4) | (1u << 5) |
		                               (1u << 9) | (1u << 0xb) | (1u << 0xc);
		static const uint16_t lsl_ok = (1u << 1) | (1u << 2) | (1u << 3) | (1u << 9) | (1u << 0xb);
		static const uint16_t lar64_ok = (1u << 2) | (1u << 9) | (1u << 0xb) | (1u << 0xc);
		static const uint16_t lsl64_ok = (1u << 2) | (1u << 9) | (1u << 0xb);
		uint16_t ok = k == V_LAR ? (lma ? lar64_ok : lar_ok) : (lma ? lsl64_ok : lsl_ok);
		if (!((ok >> type) & 1))
			return false;
	} else {
		if (k == V_VERR && (type & 8) && !(type & 2))
			return false;
		if (k == V_VERW && ((type & 8) || !(type & 2)))
			return false;
	}
	bool conforming = (d & D_S) && (type & 0xc) == 0xc;
	if (!conforming && (D_DPL(d) < cpu->cpl || D_DPL(d) < (sel & 3u)))
		return false;
	*out = d;
	return true;
}

static void h_lar(struct bt_cpu *cpu, const struct bt_insn *in)
{
	uint64_t d;
	uint16_t sel = (uint16_t)bt_op_read(cpu, in, 1);
	if (!verify_sel(cpu, sel, V_LAR, &d)) {
		set_zf(cpu, false);
		return;
	}
	uint64_t v = (d >> 32) & (opsize_of(in) == 2 ? 0xff00 : 0xf0ff00);
	bt_op_write(cpu, in, 0, v);
	set_zf(cpu, true);
}

static void h_lsl(struct bt_cpu *cpu, const struct bt_insn *in)
{
	uint64_t d;
	uint16_t sel = (uint16_t)bt_op_read(cpu, in, 1);
	if (!verify_sel(cpu, sel, V_LSL, &d)) {
		set_zf(cpu, false);
		return;
	}
	struct bt_seg s;
	bt_desc_unpack(d, sel, &s);
	bt_op_write(cpu, in, 0, s.limit);
	set_zf(cpu, true);
}

static void h_verr(struct bt_cpu *cpu, const struct bt_insn *in)
{
	uint64_t d;
	set_zf(cpu, verify_sel(cpu, (uint16_t)bt_op_read(cpu, in, 0), V_VERR, &d));
}

static void h_verw(struct bt_cpu *cpu, const struct bt_insn *in)
{
	uint64_t d;
	set_zf(cpu, verify_sel(cpu, (uint16_t)bt_op_read(cpu, in, 0), V_VERW, &d));
}

static void h_arpl(struct bt_cpu *cpu, const struct bt_insn *in)
{
	if (!(cpu->cr0 & BT_CR0_PE) || (cpu->rflags & BT_VM))
		bt_raise_ud(cpu);
	uint16_t dst = (uint16_t)bt_op_read(cpu, in, 0);
	uint16_t src = (uint16_t)bt_op_read(cpu, in, 1);
	if ((dst & 3) < (src & 3)) {
		bt_op_write(cpu, in, 0, (dst & ~3u) | (src & 3u));
		set_zf(cpu, true);
	} else {
		set_zf(cpu, false);
	}
}

static void h_swapgs(struct bt_cpu *cpu, const struct bt_insn *in)
{
	if (bt_code_bits(cpu) != 64)
		bt_raise_ud(cpu);
	if (cpu->cpl != 0)
		bt_raise_gp(cpu, 0);
	uint64_t t = cpu->seg[BT_GS].base;
	cpu->seg[BT_GS].base = cpu->kernel_gs_base;
	cpu->kernel_gs_base = t;
}

void bt_seg_register(void)
{
	bt_exec_register(ZYDIS_MNEMONIC_LDS, h_lds);
	bt_exec_register(ZYDIS_MNEMONIC_LES, h_les);
	bt_exec_register(ZYDIS_MNEMONIC_LFS, h_lfs);
	bt_exec_register(ZYDIS_MNEMONIC_LGS, h_lgs);
	bt_exec_register(ZYDIS_MNEMONIC_LSS, h_lss);
	bt_exec_register(ZYDIS_MNEMONIC_LAR, h_lar);
	bt_exec_register(ZYDIS_MNEMONIC_LSL, h_lsl);
	bt_exec_register(ZYDIS_MNEMONIC_VERR, h_verr);
	bt_exec_register(ZYDIS_MNEMONIC_VERW, h_verw);
	bt_exec_register(ZYDIS_MNEMONIC_ARPL, h_arpl);
	bt_exec_register(ZYDIS_MNEMONIC_SWAPGS, h_swapgs);
}

/*
 * bt_x87.c — x87 FPU and the MMX register file for the bt engine.
 *
 * Arithmetic x87 instructions run on the host's own x87 unit: the guest's
 * FPU state is loaded with FRSTOR, the guest's two instruction bytes run from
 * a stub table (memory operands rewritten to [rax], which points at a host
 * buffer holding the guest bytes), and FNSAVE reads the state back.  That
 * makes results, condition codes, tags, stack faults, precision and rounding
 * control, denormal handling and the transcendental instructions exactly
 * those of an x87.  Unmasked exceptions are left pending in the saved FSW
 * (FNSAVE is non-waiting and reinitialises the host unit, so the host never
 * traps); the guest sees #MF at its next waiting FP instruction.
 *
 * Control instructions (FLDCW, FNSTENV, FNSAVE, ...) are emulated here
 * because they touch guest memory in mode-dependent layouts.
 */
#include <stddef.h>
#include <string.h>

#include "bt.h"
#include "bt_fpu.h"

/* ---- the host stub table ---- */

struct x87_native {
	uint8_t env[108];        /* FNSAVE image, 32-bit protected-mode format */
	uint8_t pad[4];
	uint64_t mem;            /* host address of the memory operand buffer */
	uint64_t slot;           /* stub index */
	uint64_t flags_in;       /* guest arithmetic flags (FCMOVcc) */
	uint64_t flags_out;      /* host flags after the instruction (FCOMI) */
};
_Static_assert(offsetof(struct x87_native, mem) == 112, "asm offsets");
_Static_assert(offsetof(struct x87_native, slot) == 120, "asm offsets");
_Static_assert(offsetof(struct x87_native, flags_in) == 128, "asm offsets");
_Static_assert(offsetof(struct x87_native, flags_out) == 136, "asm offsets");

/* Slots 0..511: register forms, (opcode-0xd8)*64 + (modrm-0xc0).
 * Slots 512..575: memory forms, 512 + (opcode-0xd8)*8 + reg, with modrm
 * mod=00 rm=000, i.e. [rax].  Each slot is 8 bytes: insn + jmp back. */
void vireo_bt_x87_native_run(struct x87_native *ctx);
__asm__(
	".text\n"
	".p2align 4\n"
	".globl vireo_bt_x87_native_run\n"
	".hidden vireo_bt_x87_native_run\n"
	".type vireo_bt_x87_native_run,@function\n"
	"vireo_bt_x87_native_run:\n"
	"	push %rbx\n"
	"	sub $16, %rsp\n"
	"	fnstcw (%rsp)\n"
	"	mov %rdi, %rbx\n"
	"	pushfq\n"
	"	pop %rdx\n"
	"	and $-2262, %rdx\n"          /* ~0x8d5: clear OF SF ZF AF PF CF */
	"	mov 128(%rbx), %rcx\n"
	"	and $0x8d5, %rcx\n"
	"	or %rcx, %rdx\n"
	"	frstor (%rbx)\n"
	"	mov 112(%rbx), %rax\n"
	"	mov 120(%rbx), %rcx\n"
	"	lea .Lvireo_x87_slots(%rip), %r11\n"
	"	lea (%r11,%rcx,8), %r11\n"
	"	push %rdx\n"
	"	popfq\n"
	"	jmp *%r11\n"
	".Lvireo_x87_done:\n"
	"	pushfq\n"
	"	pop %rdx\n"
	"	mov %rdx, 136(%rbx)\n"
	"	fnsave (%rbx)\n"
	"	fldcw (%rsp)\n"
	"	add $16, %rsp\n"
	"	pop %rbx\n"
	"	ret\n"
	".p2align 3\n"
	".Lvireo_x87_slots:\n"
	".irp vireo_op,0xd8,0xd9,0xda,0xdb,0xdc,0xdd,0xde,0xdf\n"
	".set vireo_m,0xc0\n"
	".rept 64\n"
	".p2align 3\n"
	".byte \\vireo_op, vireo_m\n"
	"jmp .Lvireo_x87_done\n"
	".set vireo_m,vireo_m+1\n"
	".endr\n"
	".endr\n"
	".irp vireo_op,0xd8,0xd9,0xda,0xdb,0xdc,0xdd,0xde,0xdf\n"
	".set vireo_m,0\n"
	".rept 8\n"
	".p2align 3\n"
	".byte \\vireo_op, vireo_m\n"
	"jmp .Lvireo_x87_done\n"
	".set vireo_m,vireo_m+8\n"
	".endr\n"
	".endr\n"
	".size vireo_bt_x87_native_run, .-vireo_bt_x87_native_run\n"
	".text\n");

/* ---- register file helpers ---- */

static inline unsigned x87_top(const struct bt_cpu *cpu)
{
	return (cpu->fsw >> 11) & 7u;
}

static void reg_bytes(const struct bt_cpu *cpu, unsigned phys, uint8_t out[10])
{
	memcpy(out, &cpu->st[phys & 7], 10);
}

static void reg_set_bytes(struct bt_cpu *cpu, unsigned phys, const uint8_t in[10])
{
	uint8_t full[sizeof(long double)];
	memset(full, 0, sizeof(full));
	memcpy(full, in, 10);
	memcpy(&cpu->st[phys & 7], full, sizeof(full));
}

uint64_t bt_mmx_get(const struct bt_cpu *cpu, unsigned i)
{
	uint64_t v;
	memcpy(&v, &cpu->st[i & 7], 8);
	return v;
}

void bt_mmx_set(struct bt_cpu *cpu, unsigned i, uint64_t v)
{
	uint8_t b[10];
	memcpy(b, &v, 8);
	b[8] = 0xff;
	b[9] = 0xff;
	reg_set_bytes(cpu, i, b);
}

void bt_mmx_enter(struct bt_cpu *cpu)
{
	cpu->fsw &= (uint16_t)~BT_FSW_TOP;
	cpu->ftw = 0;
}

/* The tag an FNSAVE reports for a non-empty register, from its contents. */
static unsigned tag_of(const uint8_t r[10])
{
	uint16_t exp = (uint16_t)((r[8] | r[9] << 8) & 0x7fff);
	uint64_t mant;
	memcpy(&mant, r, 8);
	if (exp == 0x7fff)
		return 2;
	if (exp == 0)
		return mant == 0 ? 1 : 2;
	return (mant >> 63) ? 0 : 2;   /* unnormals are special */
}

uint16_t bt_x87_full_tags(const struct bt_cpu *cpu)
{
	uint16_t t = 0;
	for (unsigned i = 0; i < 8; i++) {
		unsigned tag = 3;
		if (((cpu->ftw >> (2 * i)) & 3u) != 3u) {
			uint8_t r[10];
			reg_bytes(cpu, i, r);
			tag = tag_of(r);
		}
		t |= (uint16_t)(tag << (2 * i));
	}
	return t;
}

uint8_t bt_x87_abridged_tags(const struct bt_cpu *cpu)
{
	uint8_t a = 0;
	for (unsigned i = 0; i < 8; i++)
		if (((cpu->ftw >> (2 * i)) & 3u) != 3u)
			a |= (uint8_t)(1u << i);
	return a;
}

void bt_x87_set_abridged_tags(struct bt_cpu *cpu, uint8_t abridged)
{
	uint16_t t = 0;
	for (unsigned i = 0; i < 8; i++)
		if (!((abridged >> i) & 1u))
			t |= (uint16_t)(3u << (2 * i));
	cpu->ftw = t;
	cpu->ftw = bt_x87_full_tags(cpu);
}

void bt_x87_update_es(struct bt_cpu *cpu)
{
	if (cpu->fsw & ~cpu->fcw & 0x3fu)
		cpu->fsw |= BT_FSW_ES | BT_FSW_B;
	else
		cpu->fsw &= (uint16_t)~(BT_FSW_ES | BT_FSW_B);
}

void bt_fpu_reset(struct bt_cpu *cpu)
{
	cpu->fcw = 0x037f;
	cpu->fsw = 0;
	cpu->ftw = 0xffff;
	cpu->fop = 0;
	cpu->fip = cpu->fdp = 0;
	cpu->fcs = cpu->fds = 0;
	memset(cpu->st, 0, sizeof(cpu->st));
	cpu->mxcsr = BT_MXCSR_DEFAULT;
	memset(cpu->xmm, 0, sizeof(cpu->xmm));
}

static void x87_fninit(struct bt_cpu *cpu)
{
	cpu->fcw = 0x037f;
	cpu->fsw = 0;
	cpu->ftw = 0xffff;
	cpu->fop = 0;
	cpu->fip = cpu->fdp = 0;
	cpu->fcs = cpu->fds = 0;
}

/* ---- checks ---- */

void bt_x87_check(struct bt_cpu *cpu, bool waiting)
{
	if (cpu->cr0 & (BT_CR0_EM | BT_CR0_TS))
		bt_raise(cpu, BT_NM, 0, false);
	if (waiting && (cpu->fsw & BT_FSW_ES) && (cpu->cr0 & BT_CR0_NE))
		bt_raise(cpu, BT_MF, 0, false);
}

void bt_mmx_check(struct bt_cpu *cpu)
{
	if (cpu->cr0 & BT_CR0_EM)
		bt_raise_ud(cpu);
	if (cpu->cr0 & BT_CR0_TS)
		bt_raise(cpu, BT_NM, 0, false);
	if ((cpu->fsw & BT_FSW_ES) && (cpu->cr0 & BT_CR0_NE))
		bt_raise(cpu, BT_MF, 0, false);
}

/* ---- native execution ---- */

static void native_load(const struct bt_cpu *cpu, struct x87_native *n)
{
	unsigned top = x87_top(cpu);
	memset(n, 0, sizeof(*n));
	n->env[0] = (uint8_t)cpu->fcw;
	n->env[1] = (uint8_t)(cpu->fcw >> 8);
	/* Exception flags are merged back afterwards; loading them would make
	 * the host trap on the guest instruction. */
	uint16_t fsw = cpu->fsw & (uint16_t)(BT_FSW_C0 | BT_FSW_C1 | BT_FSW_C2 | BT_FSW_C3 | BT_FSW_TOP);
	n->env[4] = (uint8_t)fsw;
	n->env[5] = (uint8_t)(fsw >> 8);
	n->env[8] = (uint8_t)cpu->ftw;
	n->env[9] = (uint8_t)(cpu->ftw >> 8);
	for (unsigned i = 0; i < 8; i++)
		reg_bytes(cpu, top + i, &n->env[28 + 10 * i]);
}

/* Copy the host result into the guest; returns the new exception flags. */
static unsigned native_commit(struct bt_cpu *cpu, const struct x87_native *n)
{
	uint16_t fsw = (uint16_t)(n->env[4] | n->env[5] << 8);
	uint16_t ftw = (uint16_t)(n->env[8] | n->env[9] << 8);
	unsigned top = (fsw >> 11) & 7u;
	unsigned exc = fsw & 0x7fu;

	for (unsigned i = 0; i < 8; i++)
		reg_set_bytes(cpu, top + i, &n->env[28 + 10 * i]);
	cpu->ftw = ftw;
	cpu->fsw = (uint16_t)((fsw & (BT_FSW_C0 | BT_FSW_C1 | BT_FSW_C2 | BT_FSW_C3 | BT_FSW_TOP)) |
	                      (cpu->fsw & 0x7fu) | exc);
	bt_x87_update_es(cpu);
	return exc;
}

/* Bytes read / written by the memory forms, by opcode and ModRM.reg.
 * 0 = not a plain data access (control instructions, or invalid). */
static const uint8_t mem_read_size[8][8] = {
	/* d8 */ {4, 4, 4, 4, 4, 4, 4, 4},
	/* d9 */ {4, 0, 0, 0, 0, 0, 0, 0},
	/* da */ {4, 4, 4, 4, 4, 4, 4, 4},
	/* db */ {4, 0, 0, 0, 0, 10, 0, 0},
	/* dc */ {8, 8, 8, 8, 8, 8, 8, 8},
	/* dd */ {8, 0, 0, 0, 0, 0, 0, 0},
	/* de */ {2, 2, 2, 2, 2, 2, 2, 2},
	/* df */ {2, 0, 0, 0, 10, 8, 0, 0},
};
static const uint8_t mem_write_size[8][8] = {
	/* d8 */ {0},
	/* d9 */ {0, 0, 4, 4, 0, 0, 0, 0},
	/* da */ {0},
	/* db */ {0, 4, 4, 4, 0, 0, 0, 10},
	/* dc */ {0},
	/* dd */ {0, 8, 8, 8, 0, 0, 0, 0},
	/* de */ {0},
	/* df */ {0, 2, 2, 2, 0, 0, 10, 8},
};

static int mem_operand(const struct bt_insn *in)
{
	for (unsigned i = 0; i < in->zi.operand_count; i++)
		if (in->ops[i].type == ZYDIS_OPERAND_TYPE_MEMORY &&
		    in->ops[i].visibility == ZYDIS_OPERAND_VISIBILITY_EXPLICIT)
			return (int)i;
	return -1;
}

static void record_ip(struct bt_cpu *cpu, const struct bt_insn *in, int mi)
{
	cpu->fip = cpu->insn_start_rip;
	cpu->fcs = cpu->seg[BT_CS].sel;
	cpu->fop = (uint16_t)(((in->zi.opcode & 7u) << 8) |
	                      (uint8_t)(in->zi.raw.modrm.mod << 6 | in->zi.raw.modrm.reg << 3 | in->zi.raw.modrm.rm));
	if (mi >= 0) {
		cpu->fdp = bt_op_ea(cpu, in, (unsigned)mi);
		cpu->fds = cpu->seg[bt_op_seg(in, (unsigned)mi)].sel;
	}
}

static void x87_native_mem(struct bt_cpu *cpu, const struct bt_insn *in, unsigned op, unsigned reg)
{
	int mi = mem_operand(in);
	unsigned rd = mem_read_size[op][reg], wr = mem_write_size[op][reg];
	uint8_t buf[16] __attribute__((aligned(16)));
	struct x87_native n __attribute__((aligned(16)));

	if (mi < 0 || (rd == 0 && wr == 0))
		bt_raise_ud(cpu);
	enum bt_sreg s = bt_op_seg(in, (unsigned)mi);
	uint64_t ea = bt_op_ea(cpu, in, (unsigned)mi);
	memset(buf, 0, sizeof(buf));
	if (rd)
		bt_mem_read_buf(cpu, s, ea, buf, rd);
	native_load(cpu, &n);
	n.mem = (uint64_t)(uintptr_t)buf;
	n.slot = 512 + op * 8 + reg;
	vireo_bt_x87_native_run(&n);
	if (wr) {
		uint16_t fsw = (uint16_t)(n.env[4] | n.env[5] << 8);
		/* Unmasked invalid/denormal/zero-divide/overflow/underflow: no store. */
		if (!(fsw & ~cpu->fcw & (BT_FSW_IE | BT_FSW_DE | BT_FSW_ZE | BT_FSW_OE | BT_FSW_UE)))
			bt_mem_write_buf(cpu, s, ea, buf, wr);
	}
	native_commit(cpu, &n);
	record_ip(cpu, in, mi);
}

static void x87_native_reg(struct bt_cpu *cpu, const struct bt_insn *in, unsigned op, unsigned modrm)
{
	struct x87_native n __attribute__((aligned(16)));
	uint8_t dummy[16] __attribute__((aligned(16))) = {0};

	native_load(cpu, &n);
	n.mem = (uint64_t)(uintptr_t)dummy;
	n.slot = op * 64 + (modrm - 0xc0);
	n.flags_in = bt_get_rflags(cpu) & BT_ARITH_FLAGS;
	vireo_bt_x87_native_run(&n);
	native_commit(cpu, &n);
	/* FCOMI/FUCOMI(P) write ZF PF CF and clear OF SF AF. */
	if ((op == 3 || op == 7) && modrm >= 0xe8 && modrm <= 0xf7) {
		uint64_t f = bt_get_rflags(cpu) & ~(uint64_t)BT_ARITH_FLAGS;
		bt_set_rflags(cpu, f | (n.flags_out & (BT_ZF | BT_PF | BT_CF)));
	}
	record_ip(cpu, in, -1);
}

/* Register forms the host may run, one bit per ModRM 0xc0..0xff, by opcode. */
static bool reg_form_valid(unsigned op, unsigned modrm)
{
	unsigned lo = modrm & 7, row = (modrm >> 3) & 7;
	switch (op) {
	case 0: case 4:
		return true;   /* arithmetic and compares (dc d0-df: FCOM2/FCOMP3) */
	case 1:
		if (row == 2)
			return lo == 0;    /* fnop */
		if (row <= 3)
			return true;       /* fld, fxch, fstp1 (d8-df) */
		if (row == 4)
			return lo == 0 || lo == 1 || lo == 4 || lo == 5;
		if (row == 5)
			return lo != 7;
		return true;       /* f0-ff */
	case 2:
		return row <= 3 || modrm == 0xe9;
	case 3:
		return row <= 3 || row == 5 || row == 6;
	case 5:
		return row <= 5;
	case 6:
		return row != 3 || lo == 1;
	case 7:
		return row <= 3 || row == 5 || row == 6;
	default:
		return false;
	}
}

/* ---- control instructions ---- */

static bool real_or_v86(const struct bt_cpu *cpu)
{
	return !(cpu->cr0 & BT_CR0_PE) || (cpu->rflags & BT_VM);
}

/* FNSTENV image in the format selected by operand size and mode; returns its size. */
static unsigned env_store(const struct bt_cpu *cpu, bool o16, uint8_t *e)
{
	uint16_t ftw = bt_x87_full_tags(cpu);
	uint32_t fip = (uint32_t)cpu->fip, fdp = (uint32_t)cpu->fdp;
	if (o16) {
		uint16_t w[7];
		w[0] = cpu->fcw;
		w[1] = cpu->fsw;
		w[2] = ftw;
		if (real_or_v86(cpu)) {
			w[3] = (uint16_t)fip;
			w[4] = (uint16_t)((cpu->fop & 0x7ffu) | ((fip >> 16) & 0xfu) << 12);
			w[5] = (uint16_t)fdp;
			w[6] = (uint16_t)(((fdp >> 16) & 0xfu) << 12);
		} else {
			w[3] = (uint16_t)fip;
			w[4] = cpu->fcs;
			w[5] = (uint16_t)fdp;
			w[6] = cpu->fds;
		}
		memcpy(e, w, 14);
		return 14;
	}
	uint32_t d[7];
	d[0] = 0xffff0000u | cpu->fcw;
	d[1] = 0xffff0000u | cpu->fsw;
	d[2] = 0xffff0000u | ftw;
	if (real_or_v86(cpu)) {
		d[3] = 0xffff0000u | (fip & 0xffffu);
		d[4] = (cpu->fop & 0x7ffu) | ((fip >> 16) << 12);
		d[5] = 0xffff0000u | (fdp & 0xffffu);
		d[6] = (fdp >> 16) << 12;
	} else {
		d[3] = fip;
		d[4] = cpu->fcs | (uint32_t)(cpu->fop & 0x7ffu) << 16;
		d[5] = fdp;
		d[6] = 0xffff0000u | cpu->fds;
	}
	memcpy(e, d, 28);
	return 28;
}

static void env_load(struct bt_cpu *cpu, bool o16, const uint8_t *e)
{
	uint16_t fcw, fsw, ftw;
	memcpy(&fcw, e, 2);
	memcpy(&fsw, e + (o16 ? 2 : 4), 2);
	memcpy(&ftw, e + (o16 ? 4 : 8), 2);
	if (o16) {
		uint16_t w[7];
		memcpy(w, e, 14);
		if (real_or_v86(cpu)) {
			cpu->fip = w[3] | (uint32_t)(w[4] >> 12) << 16;
			cpu->fop = w[4] & 0x7ffu;
			cpu->fdp = w[5] | (uint32_t)(w[6] >> 12) << 16;
		} else {
			cpu->fip = w[3];
			cpu->fcs = w[4];
			cpu->fdp = w[5];
			cpu->fds = w[6];
		}
	} else {
		uint32_t d[7];
		memcpy(d, e, 28);
		if (real_or_v86(cpu)) {
			cpu->fip = (d[3] & 0xffffu) | (d[4] >> 12) << 16;
			cpu->fop = d[4] & 0x7ffu;
			cpu->fdp = (d[5] & 0xffffu) | (d[6] >> 12) << 16;
		} else {
			cpu->fip = d[3];
			cpu->fcs = (uint16_t)d[4];
			cpu->fop = (d[4] >> 16) & 0x7ffu;
			cpu->fdp = d[5];
			cpu->fds = (uint16_t)d[6];
		}
	}
	cpu->fcw = bt_x87_fcw(fcw);
	cpu->fsw = fsw;
	/* Only empty / not empty is honoured, as on hardware. */
	uint8_t ab = 0;
	for (unsigned i = 0; i < 8; i++)
		if (((ftw >> (2 * i)) & 3u) != 3u)
			ab |= (uint8_t)(1u << i);
	bt_x87_set_abridged_tags(cpu, ab);
	bt_x87_update_es(cpu);
}

static void x87_control_mem(struct bt_cpu *cpu, const struct bt_insn *in, unsigned op, unsigned reg)
{
	int mi = mem_operand(in);
	if (mi < 0)
		bt_raise_ud(cpu);
	enum bt_sreg s = bt_op_seg(in, (unsigned)mi);
	uint64_t ea = bt_op_ea(cpu, in, (unsigned)mi);
	bool o16 = in->zi.operand_width == 16;
	uint8_t img[108];

	if (op == 1 && reg == 4) {            /* FLDENV */
		bt_x87_check(cpu, true);
		unsigned len = o16 ? 14 : 28;
		bt_mem_read_buf(cpu, s, ea, img, len);
		env_load(cpu, o16, img);
	} else if (op == 1 && reg == 5) {     /* FLDCW */
		bt_x87_check(cpu, true);
		cpu->fcw = bt_x87_fcw((uint16_t)bt_mem_read(cpu, s, ea, 2));
		bt_x87_update_es(cpu);
	} else if (op == 1 && reg == 6) {     /* FNSTENV */
		bt_x87_check(cpu, false);
		unsigned len = env_store(cpu, o16, img);
		bt_mem_write_buf(cpu, s, ea, img, len);
		cpu->fcw |= 0x3fu;
		bt_x87_update_es(cpu);
	} else if (op == 1 && reg == 7) {     /* FNSTCW */
		bt_x87_check(cpu, false);
		bt_mem_write(cpu, s, ea, 2, cpu->fcw);
	} else if (op == 5 && reg == 4) {     /* FRSTOR */
		bt_x87_check(cpu, true);
		unsigned len = o16 ? 14 : 28;
		bt_mem_read_buf(cpu, s, ea, img, len + 80);
		env_load(cpu, o16, img);
		unsigned top = x87_top(cpu);
		for (unsigned i = 0; i < 8; i++)
			reg_set_bytes(cpu, top + i, img + len + 10 * i);
		cpu->ftw = bt_x87_full_tags(cpu);
	} else if (op == 5 && reg == 6) {     /* FNSAVE */
		bt_x87_check(cpu, false);
		unsigned len = env_store(cpu, o16, img);
		unsigned top = x87_top(cpu);
		for (unsigned i = 0; i < 8; i++)
			reg_bytes(cpu, top + i, img + len + 10 * i);
		bt_mem_write_buf(cpu, s, ea, img, len + 80);
		x87_fninit(cpu);
	} else if (op == 5 && reg == 7) {     /* FNSTSW m16 */
		bt_x87_check(cpu, false);
		bt_mem_write(cpu, s, ea, 2, cpu->fsw);
	} else {
		bt_raise_ud(cpu);
	}
}

/* ---- the handler for every x87 mnemonic ---- */

static void x87_exec(struct bt_cpu *cpu, const struct bt_insn *in)
{
	unsigned opc = in->zi.opcode;
	if (in->zi.opcode_map != ZYDIS_OPCODE_MAP_DEFAULT)
		bt_raise_ud(cpu);
	if (opc == 0x9b) {                    /* FWAIT */
		if ((cpu->cr0 & (BT_CR0_TS | BT_CR0_MP)) == (BT_CR0_TS | BT_CR0_MP))
			bt_raise(cpu, BT_NM, 0, false);
		if ((cpu->fsw & BT_FSW_ES) && (cpu->cr0 & BT_CR0_NE))
			bt_raise(cpu, BT_MF, 0, false);
		return;
	}
	if (opc < 0xd8 || opc > 0xdf)
		bt_raise_ud(cpu);
	unsigned op = opc - 0xd8;
	unsigned reg = in->zi.raw.modrm.reg;

	if (in->zi.raw.modrm.mod != 3) {
		bool control = (op == 1 && reg >= 4) || (op == 5 && (reg == 4 || reg == 6 || reg == 7));
		if (control) {
			x87_control_mem(cpu, in, op, reg);
			return;
		}
		bt_x87_check(cpu, true);
		x87_native_mem(cpu, in, op, reg);
		return;
	}

	unsigned modrm = 0xc0u | reg << 3 | in->zi.raw.modrm.rm;
	if (op == 3 && modrm >= 0xe0 && modrm <= 0xe4) {
		bt_x87_check(cpu, false);
		if (modrm == 0xe2) {              /* FNCLEX */
			cpu->fsw &= (uint16_t)~(0x7fu | BT_FSW_ES | BT_FSW_B);
		} else if (modrm == 0xe3) {       /* FNINIT */
			x87_fninit(cpu);
		}
		/* e0/e1/e4: FNENI/FNDISI/FNSETPM, no-ops since the 387 */
		return;
	}
	if (op == 7 && modrm == 0xe0) {       /* FNSTSW AX */
		bt_x87_check(cpu, false);
		bt_gpr_write(cpu, ZYDIS_REGISTER_AX, cpu->fsw);
		return;
	}
	if (!reg_form_valid(op, modrm))
		bt_raise_ud(cpu);
	bt_x87_check(cpu, true);
	if (op == 1 && modrm == 0xd0) {       /* FNOP */
		record_ip(cpu, in, -1);
		return;
	}
	x87_native_reg(cpu, in, op, modrm);
}

void bt_x87_init(void)
{
	static const ZydisMnemonic m[] = {
		ZYDIS_MNEMONIC_F2XM1, ZYDIS_MNEMONIC_FABS, ZYDIS_MNEMONIC_FADD, ZYDIS_MNEMONIC_FADDP,
		ZYDIS_MNEMONIC_FBLD, ZYDIS_MNEMONIC_FBSTP, ZYDIS_MNEMONIC_FCHS, ZYDIS_MNEMONIC_FCMOVB,
		ZYDIS_MNEMONIC_FCMOVBE, ZYDIS_MNEMONIC_FCMOVE, ZYDIS_MNEMONIC_FCMOVNB,
		ZYDIS_MNEMONIC_FCMOVNBE, ZYDIS_MNEMONIC_FCMOVNE, ZYDIS_MNEMONIC_FCMOVNU,
		ZYDIS_MNEMONIC_FCMOVU, ZYDIS_MNEMONIC_FCOM, ZYDIS_MNEMONIC_FCOMI, ZYDIS_MNEMONIC_FCOMIP,
		ZYDIS_MNEMONIC_FCOMP, ZYDIS_MNEMONIC_FCOMPP, ZYDIS_MNEMONIC_FCOS, ZYDIS_MNEMONIC_FDECSTP,
		ZYDIS_MNEMONIC_FDISI8087_NOP, ZYDIS_MNEMONIC_FDIV, ZYDIS_MNEMONIC_FDIVP,
		ZYDIS_MNEMONIC_FDIVR, ZYDIS_MNEMONIC_FDIVRP, ZYDIS_MNEMONIC_FENI8087_NOP,
		ZYDIS_MNEMONIC_FFREE, ZYDIS_MNEMONIC_FFREEP, ZYDIS_MNEMONIC_FIADD, ZYDIS_MNEMONIC_FICOM,
		ZYDIS_MNEMONIC_FICOMP, ZYDIS_MNEMONIC_FIDIV, ZYDIS_MNEMONIC_FIDIVR, ZYDIS_MNEMONIC_FILD,
		ZYDIS_MNEMONIC_FIMUL, ZYDIS_MNEMONIC_FINCSTP, ZYDIS_MNEMONIC_FIST, ZYDIS_MNEMONIC_FISTP,
		ZYDIS_MNEMONIC_FISTTP, ZYDIS_MNEMONIC_FISUB, ZYDIS_MNEMONIC_FISUBR, ZYDIS_MNEMONIC_FLD,
		ZYDIS_MNEMONIC_FLD1, ZYDIS_MNEMONIC_FLDCW, ZYDIS_MNEMONIC_FLDENV, ZYDIS_MNEMONIC_FLDL2E,
		ZYDIS_MNEMONIC_FLDL2T, ZYDIS_MNEMONIC_FLDLG2, ZYDIS_MNEMONIC_FLDLN2, ZYDIS_MNEMONIC_FLDPI,
		ZYDIS_MNEMONIC_FLDZ, ZYDIS_MNEMONIC_FMUL, ZYDIS_MNEMONIC_FMULP, ZYDIS_MNEMONIC_FNCLEX,
		ZYDIS_MNEMONIC_FNINIT, ZYDIS_MNEMONIC_FNOP, ZYDIS_MNEMONIC_FNSAVE, ZYDIS_MNEMONIC_FNSTCW,
		ZYDIS_MNEMONIC_FNSTENV, ZYDIS_MNEMONIC_FNSTSW, ZYDIS_MNEMONIC_FPATAN, ZYDIS_MNEMONIC_FPREM,
		ZYDIS_MNEMONIC_FPREM1, ZYDIS_MNEMONIC_FPTAN, ZYDIS_MNEMONIC_FRNDINT, ZYDIS_MNEMONIC_FRSTOR,
		ZYDIS_MNEMONIC_FSCALE, ZYDIS_MNEMONIC_FSETPM287_NOP, ZYDIS_MNEMONIC_FSIN,
		ZYDIS_MNEMONIC_FSINCOS, ZYDIS_MNEMONIC_FSQRT, ZYDIS_MNEMONIC_FST, ZYDIS_MNEMONIC_FSTP,
		ZYDIS_MNEMONIC_FSTPNCE, ZYDIS_MNEMONIC_FSUB, ZYDIS_MNEMONIC_FSUBP, ZYDIS_MNEMONIC_FSUBR,
		ZYDIS_MNEMONIC_FSUBRP, ZYDIS_MNEMONIC_FTST, ZYDIS_MNEMONIC_FUCOM, ZYDIS_MNEMONIC_FUCOMI,
		ZYDIS_MNEMONIC_FUCOMIP, ZYDIS_MNEMONIC_FUCOMP, ZYDIS_MNEMONIC_FUCOMPP, ZYDIS_MNEMONIC_FWAIT,
		ZYDIS_MNEMONIC_FXAM, ZYDIS_MNEMONIC_FXCH, ZYDIS_MNEMONIC_FXTRACT, ZYDIS_MNEMONIC_FYL2X,
		ZYDIS_MNEMONIC_FYL2XP1,
	};
	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
		bt_exec_register(m[i], x87_exec);
}

/*
 * bt_sys.c — privileged and system instructions of the bt engine: CPUID,
 * the TSC, MSRs, control/debug registers, descriptor-table registers,
 * HLT/CLI/STI/POPF, port I/O (with IOPL and the TSS bitmap, the VMware
 * backdoor ports always open), SYSCALL/SYSRET, SYSENTER/SYSEXIT, and the
 * instructions we deliberately do not offer (#UD/#GP).
 */
#include <string.h>

#include "bt.h"
#include "../../vmx/log.h"

#define BT_DEFAULT_TSC_HZ 2000000000ull

/* MSR numbers */
#define MSR_TSC              0x10
#define MSR_PLATFORM_ID      0x17
#define MSR_APIC_BASE        0x1b
#define MSR_UCODE_REV        0x8b
#define MSR_PLATFORM_INFO    0xce
#define MSR_ARCH_CAPABILITIES 0x10a

/*
 * bt executes nothing speculatively, so it says so: RDCL_NO (no Meltdown:
 * the guest keeps one page table, no CR3 switch per system call), SSB_NO,
 * MDS_NO (no VERW on return to user), PSCHANGE_MC_NO, TAA_NO, the MMIO
 * stale-data NOs, BHI_NO (no branch-history clearing loop on entry),
 * PBRSB_NO, GDS_NO, RFDS_NO and ITS_NO.  Retpolines stay: there is no
 * architectural "not affected" bit for Spectre v2 short of eIBRS, which
 * would need SPEC_CTRL.
 */
#define BT_ARCH_CAPS ((1ull << 0) | (1ull << 4) | (1ull << 5) | (1ull << 6) | (1ull << 8) |  \
                      (1ull << 13) | (1ull << 14) | (1ull << 15) | (1ull << 20) | (1ull << 24) | \
                      (1ull << 26) | (1ull << 27) | (1ull << 62))
#define MSR_MTRRCAP          0xfe
#define MSR_SYSENTER_CS      0x174
#define MSR_SYSENTER_ESP     0x175
#define MSR_SYSENTER_EIP     0x176
#define MSR_MCG_CAP          0x179
#define MSR_MCG_STATUS       0x17a
#define MSR_MISC_ENABLE      0x1a0
#define MSR_DEBUGCTL         0x1d9
#define MSR_MTRR_VAR_BASE    0x200
#define MSR_MTRR_FIX64K      0x250
#define MSR_MTRR_FIX16K_80   0x258
#define MSR_MTRR_FIX16K_A0   0x259
#define MSR_MTRR_FIX4K_C0    0x268
#define MSR_PAT              0x277
#define MSR_MTRR_DEF_TYPE    0x2ff
#define MSR_TSC_DEADLINE     0x6e0
#define MSR_EFER             0xc0000080u
#define MSR_STAR             0xc0000081u
#define MSR_LSTAR            0xc0000082u
#define MSR_CSTAR            0xc0000083u
#define MSR_SFMASK           0xc0000084u
#define MSR_FS_BASE          0xc0000100u
#define MSR_GS_BASE          0xc0000101u
#define MSR_KERNEL_GS_BASE   0xc0000102u
#define MSR_TSC_AUX          0xc0000103u

static bool canonical(uint64_t a)
{
	return (uint64_t)((int64_t)(a << 16) >> 16) == a;
}

static void need_cpl0(struct bt_cpu *cpu)
{
	if (cpu->cpl != 0)
		bt_raise_gp(cpu, 0);
}

static uint64_t tsc_hz(const struct bt_cpu *cpu)
{
	return cpu->vm->cfg.tsc_hz ? cpu->vm->cfg.tsc_hz : BT_DEFAULT_TSC_HZ;
}

/* ---- TSC ---- */

static uint64_t tsc_raw(struct bt_cpu *cpu)
{
	uint64_t ns = bt_now_ns() - cpu->vm->boot_ns;
	__extension__ unsigned __int128 t = (unsigned __int128)ns * tsc_hz(cpu);
	return (uint64_t)(t / 1000000000u);
}

uint64_t bt_rdtsc(struct bt_cpu *cpu)
{
	return tsc_raw(cpu) + cpu->tsc_offset;
}

/* ---- CPUID ---- */

static void put_str(uint32_t *regs, const char *s)
{
	memcpy(regs, s, 12);
}

void bt_cpuid(struct bt_cpu *cpu, uint32_t leaf, uint32_t sub, uint32_t out[4])
{
	uint32_t *a = &out[0], *b = &out[1], *c = &out[2], *d = &out[3];
	*a = *b = *c = *d = 0;

	switch (leaf) {
	case 0: {
		uint32_t v[3];
		*a = 7;
		put_str(v, "GenuineIntel");
		*b = v[0];
		*d = v[1];
		*c = v[2];
		break;
	}
	case 1:
		/* family 6, model 15 (Core 2): old enough to imply nothing we lack */
		*a = 0x000006fb;
		*b = (8u << 8) | (1u << 16) | ((cpu->lapic.id >> 24) << 24);
		*c = (1u << 31)                              /* hypervisor */
		     | (BT_FEAT_SSE3 ? 1u : 0)
		     | (BT_FEAT_SSSE3 ? 1u << 9 : 0)
		     | (BT_FEAT_CX16 ? 1u << 13 : 0)
		     | (BT_FEAT_POPCNT ? 1u << 23 : 0)
		     | (1u << 24);                           /* TSC deadline */
		*d = (1u << 0)    /* FPU */
		     | (1u << 3)  /* PSE */
		     | (1u << 4)  /* TSC */
		     | (1u << 5)  /* MSR */
		     | (1u << 6)  /* PAE */
		     | (1u << 8)  /* CX8 */
		     | (1u << 9)  /* APIC */
		     | (1u << 11) /* SEP */
		     | (1u << 12) /* MTRR */
		     | (1u << 13) /* PGE */
		     | (1u << 15) /* CMOV */
		     | (1u << 16) /* PAT */
		     | (1u << 19) /* CLFSH */
		     | (1u << 23) /* MMX */
		     | (1u << 24) /* FXSR */
		     | (1u << 25) /* SSE */
		     | (1u << 26);/* SSE2 */
		if (!(cpu->lapic.base_msr & (1u << 11)))
			*d &= ~(1u << 9);
		break;
	case 4:
		/* no cache descriptions: type 0 ends the list */
		break;
	case 6:
		break;
	case 7:
		if (sub == 0) {
			*b = 1u << 9;                       /* ERMS: REP MOVSB/STOSB run in bulk */
			*d = (1u << 4)                      /* FSRM: short REP MOVSB too */
			     | (1u << 29);                  /* IA32_ARCH_CAPABILITIES */
		}
		break;
	case 0x40000000: {
		uint32_t v[3];
		put_str(v, VMM_HV_SIGNATURE);
		*a = VMM_CPUID_HV_FREQ;
		*b = v[0];
		*c = v[1];
		*d = v[2];
		break;
	}
	case 0x40000010:
		*a = (uint32_t)(tsc_hz(cpu) / 1000);
		*b = (uint32_t)((cpu->vm->cfg.apic_bus_hz ? cpu->vm->cfg.apic_bus_hz : VMM_APIC_BUS_HZ_HV) / 1000);
		break;
	case 0x80000000:
		*a = 0x80000008;
		break;
	case 0x80000001:
		*c = 1u << 0;                       /* LAHF/SAHF in 64-bit mode */
		*d = (1u << 11) | (1u << 20) | (1u << 26) | (1u << 27) | (1u << 29);
		/* SYSCALL, NX, 1 GiB pages, RDTSCP, LM */
		break;
	case 0x80000002:
	case 0x80000003:
	case 0x80000004: {
		static const char brand[48] = "Vireo Virtual CPU (bt)";
		memcpy(out, brand + (leaf - 0x80000002) * 16, 16);
		break;
	}
	case 0x80000007:
		*d = 1u << 8;                       /* invariant TSC */
		break;
	case 0x80000008:
		*a = 0x3028;                        /* 40 physical, 48 linear address bits */
		break;
	default:
		break;
	}
}

static void h_cpuid(struct bt_cpu *cpu, const struct bt_insn *in)
{
	uint32_t r[4];
	bt_cpuid(cpu, (uint32_t)cpu->gpr[BT_RAX], (uint32_t)cpu->gpr[BT_RCX], r);
	cpu->gpr[BT_RAX] = r[0];
	cpu->gpr[BT_RBX] = r[1];
	cpu->gpr[BT_RCX] = r[2];
	cpu->gpr[BT_RDX] = r[3];
}

/* ---- MSRs ---- */

static bool mtrr_fixed_index(uint32_t idx, unsigned *i)
{
	if (idx == MSR_MTRR_FIX64K)
		*i = 0;
	else if (idx == MSR_MTRR_FIX16K_80 || idx == MSR_MTRR_FIX16K_A0)
		*i = 1 + (idx - MSR_MTRR_FIX16K_80);
	else if (idx >= MSR_MTRR_FIX4K_C0 && idx <= MSR_MTRR_FIX4K_C0 + 7)
		*i = 3 + (idx - MSR_MTRR_FIX4K_C0);
	else
		return false;
	return true;
}

bool bt_rdmsr(struct bt_cpu *cpu, uint32_t idx, uint64_t *v)
{
	unsigned i;
	switch (idx) {
	case MSR_TSC: *v = bt_rdtsc(cpu); return true;
	case MSR_PLATFORM_ID: *v = 0; return true;
	case MSR_APIC_BASE: *v = cpu->lapic.base_msr; return true;
	case MSR_UCODE_REV: *v = 0; return true;
	case MSR_ARCH_CAPABILITIES: *v = BT_ARCH_CAPS; return true;
	case MSR_PLATFORM_INFO:
		*v = (uint64_t)((tsc_hz(cpu) / 100000000u) & 0xff) << 8;
		return true;
	case MSR_MTRRCAP: *v = 0x508; return true;     /* 8 variable, fixed, WC */
	case MSR_SYSENTER_CS: *v = cpu->sysenter_cs; return true;
	case MSR_SYSENTER_ESP: *v = cpu->sysenter_esp; return true;
	case MSR_SYSENTER_EIP: *v = cpu->sysenter_eip; return true;
	case MSR_MCG_CAP: case MSR_MCG_STATUS: *v = 0; return true;
	case MSR_MISC_ENABLE: *v = cpu->misc_enable; return true;
	case MSR_DEBUGCTL: *v = 0; return true;
	case MSR_PAT: *v = cpu->pat; return true;
	case MSR_MTRR_DEF_TYPE: *v = cpu->mtrr_def_type; return true;
	case MSR_TSC_DEADLINE: *v = cpu->lapic.tsc_deadline; return true;
	case MSR_EFER: *v = cpu->efer; return true;
	case MSR_STAR: *v = cpu->star; return true;
	case MSR_LSTAR: *v = cpu->lstar; return true;
	case MSR_CSTAR: *v = cpu->cstar; return true;
	case MSR_SFMASK: *v = cpu->sfmask; return true;
	case MSR_FS_BASE: *v = cpu->seg[BT_FS].base; return true;
	case MSR_GS_BASE: *v = cpu->seg[BT_GS].base; return true;
	case MSR_KERNEL_GS_BASE: *v = cpu->kernel_gs_base; return true;
	case MSR_TSC_AUX: *v = cpu->tsc_aux; return true;
	default:
		break;
	}
	if (idx >= MSR_MTRR_VAR_BASE && idx < MSR_MTRR_VAR_BASE + 16) {
		*v = cpu->mtrr_var[idx - MSR_MTRR_VAR_BASE];
		return true;
	}
	if (mtrr_fixed_index(idx, &i)) {
		*v = cpu->mtrr_fixed[i];
		return true;
	}
	return false;
}

static bool pat_ok(uint64_t v)
{
	for (unsigned i = 0; i < 8; i++) {
		unsigned t = (unsigned)(v >> (8 * i)) & 0xff;
		if (t == 2 || t == 3 || t > 7)
			return false;
	}
	return true;
}

static bool efer_write(struct bt_cpu *cpu, uint64_t v)
{
	uint64_t allowed = BT_EFER_SCE | BT_EFER_LME | BT_EFER_LMA | BT_EFER_NXE;
	if (v & ~allowed)
		return false;
	if ((cpu->cr0 & BT_CR0_PG) && ((v ^ cpu->efer) & BT_EFER_LME))
		return false;
	v = (v & ~(uint64_t)BT_EFER_LMA) | (cpu->efer & BT_EFER_LMA);
	if ((v ^ cpu->efer) & BT_EFER_NXE)
		bt_tlb_flush(cpu, true);
	cpu->efer = v;
	cpu->end_block = true;
	return true;
}

bool bt_wrmsr(struct bt_cpu *cpu, uint32_t idx, uint64_t v)
{
	unsigned i;
	switch (idx) {
	case MSR_TSC:
		cpu->tsc_offset = v - tsc_raw(cpu);
		return true;
	case MSR_APIC_BASE: {
		/* bits: BSP (8), x2APIC (10, not offered), enable (11), base 12..39 */
		if (v & ~(0xfffffff000ull | 0x900ull))
			return false;
		v = (v & ~0x100ull) | (cpu->lapic.base_msr & 0x100ull);
		cpu->lapic.base_msr = v;
		bt_tlb_flush(cpu, true);
		return true;
	}
	case MSR_UCODE_REV: return true;
	case MSR_SYSENTER_CS: cpu->sysenter_cs = v & 0xffff; return true;
	case MSR_SYSENTER_ESP:
		if (!canonical(v))
			return false;
		cpu->sysenter_esp = v;
		return true;
	case MSR_SYSENTER_EIP:
		if (!canonical(v))
			return false;
		cpu->sysenter_eip = v;
		return true;
	case MSR_MCG_STATUS: return v == 0;
	case MSR_MISC_ENABLE:
		/* Only the fast-string and "no PEBS/BTS" bits are architectural to us. */
		cpu->misc_enable = (cpu->misc_enable & ~0x1ull) | (v & 0x1ull);
		return true;
	case MSR_DEBUGCTL: return (v & ~0x1ull) == 0 || v == 0;
	case MSR_PAT:
		if (!pat_ok(v))
			return false;
		cpu->pat = v;
		return true;
	case MSR_MTRR_DEF_TYPE:
		if (v & ~0xcffull)
			return false;
		cpu->mtrr_def_type = v;
		return true;
	case MSR_TSC_DEADLINE:
		return bt_lapic_msr_write(cpu, idx, v);
	case MSR_EFER: return efer_write(cpu, v);
	case MSR_STAR: cpu->star = v; return true;
	case MSR_LSTAR:
		if (!canonical(v))
			return false;
		cpu->lstar = v;
		return true;
	case MSR_CSTAR:
		if (!canonical(v))
			return false;
		cpu->cstar = v;
		return true;
	case MSR_SFMASK: cpu->sfmask = v & 0xffffffffull; return true;
	case MSR_FS_BASE:
		if (!canonical(v))
			return false;
		cpu->seg[BT_FS].base = v;
		return true;
	case MSR_GS_BASE:
		if (!canonical(v))
			return false;
		cpu->seg[BT_GS].base = v;
		return true;
	case MSR_KERNEL_GS_BASE:
		if (!canonical(v))
			return false;
		cpu->kernel_gs_base = v;
		return true;
	case MSR_TSC_AUX:
		if (v >> 32)
			return false;
		cpu->tsc_aux = v;
		return true;
	default:
		break;
	}
	if (idx >= MSR_MTRR_VAR_BASE && idx < MSR_MTRR_VAR_BASE + 16) {
		cpu->mtrr_var[idx - MSR_MTRR_VAR_BASE] = v;
		return true;
	}
	if (mtrr_fixed_index(idx, &i)) {
		cpu->mtrr_fixed[i] = v;
		return true;
	}
	return false;
}

static void h_rdmsr(struct bt_cpu *cpu, const struct bt_insn *in)
{
	uint64_t v;
	need_cpl0(cpu);
	if (!bt_rdmsr(cpu, (uint32_t)cpu->gpr[BT_RCX], &v))
		bt_raise_gp(cpu, 0);
	cpu->gpr[BT_RAX] = (uint32_t)v;
	cpu->gpr[BT_RDX] = v >> 32;
}

static void h_wrmsr(struct bt_cpu *cpu, const struct bt_insn *in)
{
	need_cpl0(cpu);
	uint64_t v = ((cpu->gpr[BT_RDX] & 0xffffffffull) << 32) | (cpu->gpr[BT_RAX] & 0xffffffffull);
	if (!bt_wrmsr(cpu, (uint32_t)cpu->gpr[BT_RCX], v))
		bt_raise_gp(cpu, 0);
}

static void h_rdtsc(struct bt_cpu *cpu, const struct bt_insn *in)
{
	if ((cpu->cr4 & 0x4) && cpu->cpl != 0)   /* CR4.TSD */
		bt_raise_gp(cpu, 0);
	uint64_t t = bt_rdtsc(cpu);
	cpu->gpr[BT_RAX] = (uint32_t)t;
	cpu->gpr[BT_RDX] = t >> 32;
}

static void h_rdtscp(struct bt_cpu *cpu, const struct bt_insn *in)
{
	h_rdtsc(cpu, in);
	cpu->gpr[BT_RCX] = (uint32_t)cpu->tsc_aux;
}

/* ---- control registers ---- */

#define CR0_CD 0x40000000ull
#define CR0_NW 0x20000000ull
#define CR0_FIXED (BT_CR0_PE | BT_CR0_MP | BT_CR0_EM | BT_CR0_TS | BT_CR0_ET | BT_CR0_NE | \
                   BT_CR0_WP | BT_CR0_AM | CR0_NW | CR0_CD | BT_CR0_PG)
#define CR4_TSD 0x4u
#define CR4_DE  0x8u
#define CR4_MCE 0x40u
#define CR4_PCE 0x100u
#define CR4_ALLOWED (CR4_TSD | CR4_DE | BT_CR4_PSE | BT_CR4_PAE | CR4_MCE | BT_CR4_PGE | \
                     CR4_PCE | BT_CR4_OSFXSR | BT_CR4_OSXMMEXCPT)

void bt_write_cr(struct bt_cpu *cpu, unsigned cr, uint64_t v)
{
	switch (cr) {
	case 0: {
		uint64_t old = cpu->cr0;
		if (v >> 32)
			bt_raise_gp(cpu, 0);
		v = (v & CR0_FIXED) | BT_CR0_ET;
		if ((v & BT_CR0_PG) && !(v & BT_CR0_PE))
			bt_raise_gp(cpu, 0);
		if ((v & CR0_NW) && !(v & CR0_CD))
			bt_raise_gp(cpu, 0);
		uint64_t efer = cpu->efer;
		if ((v & BT_CR0_PG) && !(old & BT_CR0_PG) && (efer & BT_EFER_LME)) {
			if (!(cpu->cr4 & BT_CR4_PAE))
				bt_raise_gp(cpu, 0);
			efer |= BT_EFER_LMA;
		}
		if (!(v & BT_CR0_PG) && (old & BT_CR0_PG) && (efer & BT_EFER_LMA)) {
			if (bt_code_bits(cpu) == 64)
				bt_raise_gp(cpu, 0);
			efer &= ~(uint64_t)BT_EFER_LMA;
		}
		cpu->cr0 = v;
		cpu->efer = efer;
		if ((old ^ v) & (BT_CR0_PG | BT_CR0_WP | BT_CR0_PE))
			bt_tlb_flush(cpu, true);
		bt_update_cpl(cpu);
		break;
	}
	case 2:
		cpu->cr2 = v;
		return;
	case 3:
		if ((cpu->efer & BT_EFER_LMA) && (v >> 52))
			bt_raise_gp(cpu, 0);
		if (!(cpu->efer & BT_EFER_LMA))
			v &= 0xffffffffull;
		cpu->cr3 = v;
		bt_tlb_flush(cpu, false);
		break;
	case 4: {
		uint64_t old = cpu->cr4;
		if (v & ~(uint64_t)CR4_ALLOWED)
			bt_raise_gp(cpu, 0);
		if ((cpu->efer & BT_EFER_LMA) && !(v & BT_CR4_PAE))
			bt_raise_gp(cpu, 0);
		cpu->cr4 = v;
		if ((old ^ v) & (BT_CR4_PSE | BT_CR4_PAE | BT_CR4_PGE))
			bt_tlb_flush(cpu, true);
		break;
	}
	case 8:
		if (v >> 4)
			bt_raise_gp(cpu, 0);
		cpu->cr8 = v;
		cpu->lapic.tpr = (uint32_t)(v << 4);
		break;
	default:
		bt_raise_ud(cpu);
	}
	cpu->end_block = true;
}

/* ---- descriptor-table registers ---- */

static void h_lgdt_lidt(struct bt_cpu *cpu, const struct bt_insn *in)
{
	need_cpl0(cpu);
	enum bt_sreg s = bt_op_seg(in, 0);
	uint64_t ea = bt_op_ea(cpu, in, 0);
	uint16_t limit = (uint16_t)bt_mem_read(cpu, s, ea, 2);
	uint64_t base;
	if (bt_code_bits(cpu) == 64) {
		base = bt_mem_read(cpu, s, ea + 2, 8);
		if (!canonical(base))
			bt_raise_gp(cpu, 0);
	} else {
		base = bt_mem_read(cpu, s, ea + 2, 4);
		if (in->zi.operand_width == 16)
			base &= 0xffffff;
	}
	struct bt_dtr *t = in->zi.mnemonic == ZYDIS_MNEMONIC_LGDT ? &cpu->gdtr : &cpu->idtr;
	t->base = base;
	t->limit = limit;
}

static void h_sgdt_sidt(struct bt_cpu *cpu, const struct bt_insn *in)
{
	enum bt_sreg s = bt_op_seg(in, 0);
	uint64_t ea = bt_op_ea(cpu, in, 0);
	const struct bt_dtr *t = in->zi.mnemonic == ZYDIS_MNEMONIC_SGDT ? &cpu->gdtr : &cpu->idtr;
	unsigned bsize = bt_code_bits(cpu) == 64 ? 8 : 4;
	/* Check both pieces before storing either. */
	bt_seg_linear(cpu, s, ea, 2 + bsize, BT_ACC_WRITE);
	bt_mem_write(cpu, s, ea, 2, t->limit);
	bt_mem_write(cpu, s, ea + 2, bsize, bsize == 4 ? (uint32_t)t->base : t->base);
}

static void need_prot(struct bt_cpu *cpu)
{
	if (!(cpu->cr0 & BT_CR0_PE) || (cpu->rflags & BT_VM))
		bt_raise_ud(cpu);
}

/* Load LDTR or TR from the GDT (16-byte descriptors in long mode). */
static void load_sys_seg(struct bt_cpu *cpu, uint16_t sel, bool tr)
{
	uint64_t d, hi = 0;
	uint16_t err = sel & 0xfffc;
	if ((sel & 0xfffc) == 0) {
		if (tr)
			bt_raise_gp(cpu, 0);
		cpu->ldtr.sel = sel;
		cpu->ldtr.base = 0;
		cpu->ldtr.limit = 0;
		cpu->ldtr.attr = BT_SEG_UNUSABLE;
		return;
	}
	if ((sel & 4) || !bt_desc_read(cpu, sel, &d))
		bt_raise_gp(cpu, err);
	unsigned type = (unsigned)(d >> 40) & 0x1f;   /* with S */
	if (tr ? (type != 0x9 && !(type == 0x1 && !(cpu->efer & BT_EFER_LMA))) : type != 0x2)
		bt_raise_gp(cpu, err);
	if (!(d & (1ull << 47)))
		bt_raise(cpu, BT_NP, err, true);
	if (cpu->efer & BT_EFER_LMA) {
		if ((uint32_t)(sel & 0xfff8u) + 15 > cpu->gdtr.limit)
			bt_raise_gp(cpu, err);
		hi = bt_lin_read(cpu, cpu->gdtr.base + (sel & 0xfff8u) + 8, 8, BT_ACC_READ | BT_ACC_SUPER);
		if ((hi >> 40) & 0x1f)
			bt_raise_gp(cpu, err);
		if (!canonical(((hi & 0xffffffffull) << 32) | ((d >> 16) & 0xffffff) | (((d >> 56) & 0xff) << 24)))
			bt_raise_gp(cpu, err);
	}
	struct bt_seg s;
	bt_desc_unpack(d, sel, &s);
	s.base |= (hi & 0xffffffffull) << 32;
	if (tr) {
		/* Mark busy in the GDT, as LTR does. */
		uint8_t b = (uint8_t)(d >> 40) | 2;
		bt_lin_write(cpu, cpu->gdtr.base + (sel & 0xfff8u) + 5, 1, b, BT_ACC_WRITE | BT_ACC_SUPER);
		s.attr |= 2;
		cpu->tr = s;
	} else {
		cpu->ldtr = s;
	}
}

static void h_lldt(struct bt_cpu *cpu, const struct bt_insn *in)
{
	need_prot(cpu);
	need_cpl0(cpu);
	load_sys_seg(cpu, (uint16_t)bt_op_read(cpu, in, 0), false);
}

static void h_ltr(struct bt_cpu *cpu, const struct bt_insn *in)
{
	need_prot(cpu);
	need_cpl0(cpu);
	load_sys_seg(cpu, (uint16_t)bt_op_read(cpu, in, 0), true);
}

/* SLDT/STR/SMSW: a register destination takes the operand size, memory 16 bits. */
static void store_sel(struct bt_cpu *cpu, const struct bt_insn *in, uint64_t v)
{
	if (in->ops[0].type == ZYDIS_OPERAND_TYPE_MEMORY)
		bt_mem_write(cpu, bt_op_seg(in, 0), bt_op_ea(cpu, in, 0), 2, v & 0xffff);
	else
		bt_op_write(cpu, in, 0, v);
}

static void h_sldt(struct bt_cpu *cpu, const struct bt_insn *in)
{
	need_prot(cpu);
	store_sel(cpu, in, cpu->ldtr.sel);
}

static void h_str(struct bt_cpu *cpu, const struct bt_insn *in)
{
	need_prot(cpu);
	store_sel(cpu, in, cpu->tr.sel);
}

static void h_smsw(struct bt_cpu *cpu, const struct bt_insn *in)
{
	store_sel(cpu, in, in->ops[0].type == ZYDIS_OPERAND_TYPE_MEMORY ? cpu->cr0 & 0xffff : cpu->cr0);
}

static void h_lmsw(struct bt_cpu *cpu, const struct bt_insn *in)
{
	need_cpl0(cpu);
	uint64_t v = bt_op_read(cpu, in, 0) & 0xf;
	/* LMSW can set PE but never clear it. */
	v |= cpu->cr0 & BT_CR0_PE;
	bt_write_cr(cpu, 0, (cpu->cr0 & ~0xfull) | v);
}

static void h_clts(struct bt_cpu *cpu, const struct bt_insn *in)
{
	need_cpl0(cpu);
	cpu->cr0 &= ~(uint64_t)BT_CR0_TS;
}

static void h_invlpg(struct bt_cpu *cpu, const struct bt_insn *in)
{
	need_cpl0(cpu);
	enum bt_sreg s = bt_op_seg(in, 0);
	uint64_t ea = bt_op_ea(cpu, in, 0);
	uint64_t lin;
	if (bt_code_bits(cpu) == 64)
		lin = ea + ((s == BT_FS || s == BT_GS) ? cpu->seg[s].base : 0);
	else
		lin = (cpu->seg[s].base + ea) & 0xffffffffull;
	bt_tlb_flush_page(cpu, lin);
	cpu->end_block = true;   /* the unit after may have been translated through the old mapping */
}

static void h_nop_priv(struct bt_cpu *cpu, const struct bt_insn *in)
{
	need_cpl0(cpu);   /* INVD, WBINVD */
}

static void h_clflush(struct bt_cpu *cpu, const struct bt_insn *in)
{
	/* The address must be valid (faults as a byte read would). */
	bt_mem_read(cpu, bt_op_seg(in, 0), bt_op_ea(cpu, in, 0), 1);
}

static void h_hlt(struct bt_cpu *cpu, const struct bt_insn *in)
{
	need_cpl0(cpu);
	cpu->halted = true;
	cpu->end_block = true;
}

/* ---- IF, POPF ---- */

static unsigned iopl(const struct bt_cpu *cpu)
{
	return (unsigned)(cpu->rflags >> 12) & 3;
}

static bool may_change_if(const struct bt_cpu *cpu)
{
	if (!(cpu->cr0 & BT_CR0_PE))
		return true;
	if (cpu->rflags & BT_VM)
		return iopl(cpu) == 3;
	return cpu->cpl <= iopl(cpu);
}

static void h_cli(struct bt_cpu *cpu, const struct bt_insn *in)
{
	if (!may_change_if(cpu))
		bt_raise_gp(cpu, 0);
	cpu->rflags &= ~(uint64_t)BT_IF;
}

static void h_sti(struct bt_cpu *cpu, const struct bt_insn *in)
{
	if (!may_change_if(cpu))
		bt_raise_gp(cpu, 0);
	if (!(cpu->rflags & BT_IF)) {
		cpu->rflags |= BT_IF;
		cpu->irq_shadow = true;
		cpu->end_block = true;
	}
}

static void h_popf(struct bt_cpu *cpu, const struct bt_insn *in)
{
	unsigned size = in->zi.operand_width / 8;
	if (size != 2 && size != 4 && size != 8)
		size = 4;
	uint64_t old = bt_get_rflags(cpu);
	if ((old & BT_VM) && iopl(cpu) < 3)
		bt_raise_gp(cpu, 0);
	uint64_t v = bt_sys_pop(cpu, size);
	uint64_t ch = BT_ARITH_FLAGS | BT_TF | BT_DF | BT_NT | BT_AC | BT_ID;
	if (!(cpu->cr0 & BT_CR0_PE) || cpu->cpl == 0)
		ch |= BT_IOPL | BT_IF;
	else if (cpu->cpl <= iopl(cpu) || (old & BT_VM))
		ch |= BT_IF;
	if (size == 2)
		ch &= 0xffff;
	uint64_t nf = ((old & ~ch) | (v & ch) | 2) & ~(uint64_t)BT_RF;
	bt_set_rflags(cpu, nf);
	if ((nf ^ old) & (BT_IF | BT_TF | BT_AC | BT_IOPL))
		cpu->end_block = true;
}

/* ---- port I/O ---- */

static bool io_allowed(struct bt_cpu *cpu, uint16_t port, unsigned size)
{
	/* The VMware backdoor answers at any privilege, as on VMware. */
	if (port == 0x5658 || port == 0x5659)
		return true;
	if (!(cpu->cr0 & BT_CR0_PE))
		return true;
	if (!(cpu->rflags & BT_VM) && cpu->cpl <= iopl(cpu))
		return true;
	unsigned type = cpu->tr.attr & 0xf;
	if ((cpu->tr.attr & BT_SEG_UNUSABLE) || (type != 0x9 && type != 0xb) || cpu->tr.limit < 103)
		return false;
	uint32_t base = (uint32_t)bt_lin_read(cpu, cpu->tr.base + 102, 2, BT_ACC_READ | BT_ACC_SUPER);
	uint32_t off = base + port / 8;
	if (off + 1 > cpu->tr.limit)
		return false;
	uint32_t bits = (uint32_t)bt_lin_read(cpu, cpu->tr.base + off, 2, BT_ACC_READ | BT_ACC_SUPER);
	uint32_t mask = ((1u << size) - 1) << (port & 7);
	return !(bits & mask);
}

/*
 * Call the platform with the registers architecturally current: RIP at the
 * instruction (the backdoor reads and writes registers through the engine
 * contract from inside the call).  RIP is put back past the instruction.
 */
static void pio_call(struct bt_cpu *cpu, uint16_t port, unsigned size, bool write, uint32_t count, uint8_t *data)
{
	const struct vmm_host_ops *h = cpu->vm->cfg.host;
	uint64_t next = cpu->rip;
	if (!h || !h->pio) {
		if (!write)
			memset(data, 0xff, (size_t)count * size);
		return;
	}
	cpu->rip = cpu->insn_start_rip;
	h->pio(cpu->vm->cfg.host_opaque, cpu->id, port, size, write, count, data);
	cpu->rip = next;
}

uint32_t bt_io_in(struct bt_cpu *cpu, uint16_t port, unsigned size)
{
	uint8_t data[4] = {0};
	pio_call(cpu, port, size, false, 1, data);
	uint32_t v = 0;
	memcpy(&v, data, size);
	return v;
}

void bt_io_out(struct bt_cpu *cpu, uint16_t port, unsigned size, uint32_t v)
{
	uint8_t data[4];
	memcpy(data, &v, 4);
	pio_call(cpu, port, size, true, 1, data);
}

static uint16_t io_port(struct bt_cpu *cpu, const ZydisDecodedOperand *op)
{
	if (op->type == ZYDIS_OPERAND_TYPE_IMMEDIATE)
		return (uint16_t)op->imm.value.u;
	return (uint16_t)cpu->gpr[BT_RDX];
}

static void h_in(struct bt_cpu *cpu, const struct bt_insn *in)
{
	unsigned size = in->ops[0].size / 8;
	uint16_t port = io_port(cpu, &in->ops[1]);
	if (size != 1 && size != 2 && size != 4)
		size = 1;
	if (!io_allowed(cpu, port, size))
		bt_raise_gp(cpu, 0);
	uint32_t v = bt_io_in(cpu, port, size);
	/* Only AL/AX/EAX: the backdoor may have set the other registers. */
	uint64_t *rax = &cpu->gpr[BT_RAX];
	if (size == 4)
		*rax = v;
	else if (size == 2)
		*rax = (*rax & ~0xffffull) | (v & 0xffff);
	else
		*rax = (*rax & ~0xffull) | (v & 0xff);
}

static void h_out(struct bt_cpu *cpu, const struct bt_insn *in)
{
	unsigned size = in->ops[1].size / 8;
	uint16_t port = io_port(cpu, &in->ops[0]);
	if (size != 1 && size != 2 && size != 4)
		size = 1;
	if (!io_allowed(cpu, port, size))
		bt_raise_gp(cpu, 0);
	bt_io_out(cpu, port, size, (uint32_t)cpu->gpr[BT_RAX]);
}

#define IO_CHUNK 4096u

static uint64_t amask(unsigned aw)
{
	return aw == 64 ? ~0ull : aw == 32 ? 0xffffffffull : 0xffffull;
}

static void set_areg(struct bt_cpu *cpu, unsigned r, unsigned aw, uint64_t v)
{
	if (aw == 64)
		cpu->gpr[r] = v;
	else if (aw == 32)
		cpu->gpr[r] = v & 0xffffffffull;
	else
		cpu->gpr[r] = (cpu->gpr[r] & ~0xffffull) | (v & 0xffff);
}

/* INS/OUTS, with or without REP; long REPs run in chunks and restart. */
static void string_io(struct bt_cpu *cpu, const struct bt_insn *in, bool out)
{
	unsigned size;
	switch (in->zi.mnemonic) {
	case ZYDIS_MNEMONIC_INSB: case ZYDIS_MNEMONIC_OUTSB: size = 1; break;
	case ZYDIS_MNEMONIC_INSW: case ZYDIS_MNEMONIC_OUTSW: size = 2; break;
	default: size = 4; break;
	}
	uint16_t port = (uint16_t)cpu->gpr[BT_RDX];
	unsigned aw = in->zi.address_width;
	bool rep = in->zi.attributes & (ZYDIS_ATTRIB_HAS_REP | ZYDIS_ATTRIB_HAS_REPE | ZYDIS_ATTRIB_HAS_REPNE);
	uint64_t count = rep ? cpu->gpr[BT_RCX] & amask(aw) : 1;
	if (!io_allowed(cpu, port, size))
		bt_raise_gp(cpu, 0);
	if (count == 0)
		return;
	bool backdoor = port == 0x5658 || port == 0x5659;
	bool down = cpu->rflags & BT_DF;
	enum bt_sreg seg = BT_ES;
	unsigned areg = out ? BT_RSI : BT_RDI;
	if (out) {
		seg = BT_DS;
		for (unsigned i = 0; i < in->zi.operand_count; i++)
			if (in->ops[i].type == ZYDIS_OPERAND_TYPE_MEMORY)
				seg = bt_op_seg(in, i);
	}
	uint64_t addr = cpu->gpr[areg] & amask(aw);

	/* Elements this round: up to the page end going up (one element going down). */
	uint64_t n = count;
	uint64_t max = backdoor ? (1u << 16) / size : IO_CHUNK / size;
	if (n > max)
		n = max;
	if (!down && !backdoor) {
		uint64_t lin = bt_seg_linear(cpu, seg, addr, size, out ? BT_ACC_READ : BT_ACC_WRITE);
		uint64_t room = (4096 - (lin & 0xfff)) / size;
		if (room == 0)
			room = 1;
		if (n > room)
			n = room;
	} else if (down) {
		n = 1;
	}
	static _Thread_local uint8_t buf[1u << 16];
	unsigned bytes = (unsigned)(n * size);
	if (out) {
		bt_mem_read_buf(cpu, seg, addr, buf, bytes);
	} else {
		/* Probe the destination before the device consumes data. */
		bt_seg_linear(cpu, seg, addr, bytes, BT_ACC_WRITE);
		if (cpu->cr0 & BT_CR0_PG) {
			uint64_t lin = bt_seg_linear(cpu, seg, addr, 1, BT_ACC_WRITE);
			bt_mmu_translate(cpu, lin, BT_ACC_WRITE);
			bt_mmu_translate(cpu, lin + bytes - 1, BT_ACC_WRITE);
		}
	}
	uint64_t rcx0 = cpu->gpr[BT_RCX], rsi0 = cpu->gpr[BT_RSI], rdi0 = cpu->gpr[BT_RDI];
	pio_call(cpu, port, size, out, (uint32_t)n, buf);
	if (!out)
		bt_mem_write_buf(cpu, seg, addr, buf, bytes);
	if (backdoor && (cpu->gpr[BT_RCX] != rcx0 || cpu->gpr[BT_RSI] != rsi0 || cpu->gpr[BT_RDI] != rdi0))
		return;   /* the backdoor handler set the registers itself */
	uint64_t delta = n * size;
	set_areg(cpu, areg, aw, down ? addr - delta : addr + delta);
	if (rep) {
		uint64_t left = count - n;
		set_areg(cpu, BT_RCX, aw, left);
		if (left) {
			/* Not done: run the instruction again after pending events. */
			cpu->rip = cpu->insn_start_rip;
			cpu->end_block = true;
		}
	}
}

static void h_ins(struct bt_cpu *cpu, const struct bt_insn *in) { string_io(cpu, in, false); }
static void h_outs(struct bt_cpu *cpu, const struct bt_insn *in) { string_io(cpu, in, true); }

/* ---- fast system calls ---- */

static void flat_seg(struct bt_seg *s, uint16_t sel, unsigned dpl, bool code, bool l64)
{
	s->sel = sel;
	s->base = 0;
	s->limit = 0xffffffff;
	s->attr = BT_SEG_P | BT_SEG_S | BT_SEG_G | (dpl << 5) | (code ? 0xb : 0x3);
	if (code && l64)
		s->attr |= BT_SEG_L;
	else
		s->attr |= BT_SEG_DB;
}

static void h_syscall(struct bt_cpu *cpu, const struct bt_insn *in)
{
	if (!(cpu->efer & BT_EFER_SCE) || !(cpu->cr0 & BT_CR0_PE))
		bt_raise_ud(cpu);
	uint16_t sel = (uint16_t)(cpu->star >> 32) & 0xfffc;
	uint64_t fl = bt_get_rflags(cpu);
	if (cpu->efer & BT_EFER_LMA) {
		cpu->gpr[BT_RCX] = cpu->rip;
		cpu->gpr[BT_R11] = fl & ~(uint64_t)BT_RF;
		cpu->rip = bt_code_bits(cpu) == 64 ? cpu->lstar : cpu->cstar;
		flat_seg(&cpu->seg[BT_CS], sel, 0, true, true);
		fl &= ~cpu->sfmask;
	} else {
		cpu->gpr[BT_RCX] = (uint32_t)cpu->rip;
		cpu->rip = (uint32_t)cpu->star;
		flat_seg(&cpu->seg[BT_CS], sel, 0, true, false);
		fl &= ~(uint64_t)(BT_IF | BT_VM);
	}
	flat_seg(&cpu->seg[BT_SS], (uint16_t)(sel + 8), 0, false, false);
	bt_set_rflags(cpu, (fl & ~(uint64_t)BT_RF) | 2);
	bt_update_cpl(cpu);
	cpu->end_block = true;
}

static void h_sysret(struct bt_cpu *cpu, const struct bt_insn *in)
{
	if (!(cpu->efer & BT_EFER_SCE) || !(cpu->cr0 & BT_CR0_PE))
		bt_raise_ud(cpu);
	if (cpu->cpl != 0)
		bt_raise_gp(cpu, 0);
	uint16_t base = (uint16_t)(cpu->star >> 48);
	if (cpu->efer & BT_EFER_LMA) {
		if (in->zi.operand_width == 64) {
			if (!canonical(cpu->gpr[BT_RCX]))
				bt_raise_gp(cpu, 0);
			flat_seg(&cpu->seg[BT_CS], (uint16_t)((base + 16) | 3), 3, true, true);
			cpu->rip = cpu->gpr[BT_RCX];
		} else {
			flat_seg(&cpu->seg[BT_CS], (uint16_t)(base | 3), 3, true, false);
			cpu->rip = (uint32_t)cpu->gpr[BT_RCX];
		}
		bt_set_rflags(cpu, (cpu->gpr[BT_R11] & 0x3c7fd7ull) | 2);
	} else {
		flat_seg(&cpu->seg[BT_CS], (uint16_t)(base | 3), 3, true, false);
		cpu->rip = (uint32_t)cpu->gpr[BT_RCX];
		bt_set_rflags(cpu, bt_get_rflags(cpu) | BT_IF);
	}
	/* SS keeps the selector's cache as SYSRET loads it: flat, DPL 3. */
	flat_seg(&cpu->seg[BT_SS], (uint16_t)((base + 8) | 3), 3, false, false);
	bt_update_cpl(cpu);
	cpu->end_block = true;
}

static void h_sysenter(struct bt_cpu *cpu, const struct bt_insn *in)
{
	if (!(cpu->cr0 & BT_CR0_PE) || (cpu->sysenter_cs & 0xfffc) == 0)
		bt_raise_gp(cpu, 0);
	uint16_t sel = (uint16_t)(cpu->sysenter_cs & 0xfffc);
	bool lma = cpu->efer & BT_EFER_LMA;
	flat_seg(&cpu->seg[BT_CS], sel, 0, true, lma);
	flat_seg(&cpu->seg[BT_SS], (uint16_t)(sel + 8), 0, false, false);
	cpu->rip = lma ? cpu->sysenter_eip : (uint32_t)cpu->sysenter_eip;
	cpu->gpr[BT_RSP] = lma ? cpu->sysenter_esp : (uint32_t)cpu->sysenter_esp;
	bt_set_rflags(cpu, bt_get_rflags(cpu) & ~(uint64_t)(BT_VM | BT_IF | BT_RF));
	bt_update_cpl(cpu);
	cpu->end_block = true;
}

static void h_sysexit(struct bt_cpu *cpu, const struct bt_insn *in)
{
	if (!(cpu->cr0 & BT_CR0_PE) || (cpu->sysenter_cs & 0xfffc) == 0 || cpu->cpl != 0)
		bt_raise_gp(cpu, 0);
	uint16_t sel = (uint16_t)cpu->sysenter_cs;
	if (in->zi.operand_width == 64) {
		if (!canonical(cpu->gpr[BT_RDX]) || !canonical(cpu->gpr[BT_RCX]))
			bt_raise_gp(cpu, 0);
		flat_seg(&cpu->seg[BT_CS], (uint16_t)((sel + 32) | 3), 3, true, true);
		flat_seg(&cpu->seg[BT_SS], (uint16_t)((sel + 40) | 3), 3, false, false);
		cpu->rip = cpu->gpr[BT_RDX];
		cpu->gpr[BT_RSP] = cpu->gpr[BT_RCX];
	} else {
		flat_seg(&cpu->seg[BT_CS], (uint16_t)((sel + 16) | 3), 3, true, false);
		flat_seg(&cpu->seg[BT_SS], (uint16_t)((sel + 24) | 3), 3, false, false);
		cpu->rip = (uint32_t)cpu->gpr[BT_RDX];
		cpu->gpr[BT_RSP] = (uint32_t)cpu->gpr[BT_RCX];
	}
	bt_update_cpl(cpu);
	cpu->end_block = true;
}

/* ---- not offered ---- */

static void h_gp0(struct bt_cpu *cpu, const struct bt_insn *in)
{
	bt_raise_gp(cpu, 0);   /* RDPMC: no counters are advertised */
}

static void h_ud_quiet(struct bt_cpu *cpu, const struct bt_insn *in)
{
	/* XGETBV/XSETBV, MONITOR/MWAIT, RDRAND/RDSEED, RD/WR FS/GS BASE: not advertised. */
	bt_raise_ud(cpu);
}

void bt_sys_init(void)
{
	static const struct { ZydisMnemonic m; bt_handler h; } tab[] = {
		{ ZYDIS_MNEMONIC_CPUID, h_cpuid },
		{ ZYDIS_MNEMONIC_RDTSC, h_rdtsc },
		{ ZYDIS_MNEMONIC_RDTSCP, h_rdtscp },
		{ ZYDIS_MNEMONIC_RDMSR, h_rdmsr },
		{ ZYDIS_MNEMONIC_WRMSR, h_wrmsr },
		{ ZYDIS_MNEMONIC_LGDT, h_lgdt_lidt },
		{ ZYDIS_MNEMONIC_LIDT, h_lgdt_lidt },
		{ ZYDIS_MNEMONIC_SGDT, h_sgdt_sidt },
		{ ZYDIS_MNEMONIC_SIDT, h_sgdt_sidt },
		{ ZYDIS_MNEMONIC_LLDT, h_lldt },
		{ ZYDIS_MNEMONIC_LTR, h_ltr },
		{ ZYDIS_MNEMONIC_SLDT, h_sldt },
		{ ZYDIS_MNEMONIC_STR, h_str },
		{ ZYDIS_MNEMONIC_SMSW, h_smsw },
		{ ZYDIS_MNEMONIC_LMSW, h_lmsw },
		{ ZYDIS_MNEMONIC_CLTS, h_clts },
		{ ZYDIS_MNEMONIC_INVLPG, h_invlpg },
		{ ZYDIS_MNEMONIC_INVD, h_nop_priv },
		{ ZYDIS_MNEMONIC_WBINVD, h_nop_priv },
		{ ZYDIS_MNEMONIC_CLFLUSH, h_clflush },
		{ ZYDIS_MNEMONIC_HLT, h_hlt },
		{ ZYDIS_MNEMONIC_CLI, h_cli },
		{ ZYDIS_MNEMONIC_STI, h_sti },
		{ ZYDIS_MNEMONIC_POPF, h_popf },
		{ ZYDIS_MNEMONIC_POPFD, h_popf },
		{ ZYDIS_MNEMONIC_POPFQ, h_popf },
		{ ZYDIS_MNEMONIC_IN, h_in },
		{ ZYDIS_MNEMONIC_OUT, h_out },
		{ ZYDIS_MNEMONIC_INSB, h_ins },
		{ ZYDIS_MNEMONIC_INSW, h_ins },
		{ ZYDIS_MNEMONIC_INSD, h_ins },
		{ ZYDIS_MNEMONIC_OUTSB, h_outs },
		{ ZYDIS_MNEMONIC_OUTSW, h_outs },
		{ ZYDIS_MNEMONIC_OUTSD, h_outs },
		{ ZYDIS_MNEMONIC_SYSCALL, h_syscall },
		{ ZYDIS_MNEMONIC_SYSRET, h_sysret },
		{ ZYDIS_MNEMONIC_SYSENTER, h_sysenter },
		{ ZYDIS_MNEMONIC_SYSEXIT, h_sysexit },
		{ ZYDIS_MNEMONIC_RDPMC, h_gp0 },
		{ ZYDIS_MNEMONIC_XGETBV, h_ud_quiet },
		{ ZYDIS_MNEMONIC_XSETBV, h_ud_quiet },
		{ ZYDIS_MNEMONIC_MONITOR, h_ud_quiet },
		{ ZYDIS_MNEMONIC_MWAIT, h_ud_quiet },
		{ ZYDIS_MNEMONIC_RDRAND, h_ud_quiet },
		{ ZYDIS_MNEMONIC_RDSEED, h_ud_quiet },
		{ ZYDIS_MNEMONIC_RDFSBASE, h_ud_quiet },
		{ ZYDIS_MNEMONIC_RDGSBASE, h_ud_quiet },
		{ ZYDIS_MNEMONIC_WRFSBASE, h_ud_quiet },
		{ ZYDIS_MNEMONIC_WRGSBASE, h_ud_quiet },
	};
	for (unsigned i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		bt_exec_register(tab[i].m, tab[i].h);
	bt_seg_register();
	bt_exc_register();
}

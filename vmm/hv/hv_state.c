/*
 * hv_state.c — CPU state accessors of the hv engine, architectural reset,
 * and the opaque save/restore blob.
 *
 * The blob is a header and tagged sections (tag, length, bytes), so that a
 * section added later leaves old blobs loadable and a truncated or corrupt
 * blob is refused instead of read past its end.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "../../vmx/log.h"
#include "hv_int.h"

#define MSR_IA32_TSC            0x00000010u
#define MSR_IA32_TSC_ADJUST     0x0000003Bu
#define MSR_IA32_SYSENTER_CS    0x00000174u
#define MSR_IA32_SYSENTER_ESP   0x00000175u
#define MSR_IA32_SYSENTER_EIP   0x00000176u
#define MSR_IA32_MCG_STATUS     0x0000017Au
#define MSR_IA32_MISC_ENABLE    0x000001A0u
#define MSR_MTRR_PHYSBASE0      0x00000200u
#define MSR_MTRR_FIX64K         0x00000250u
#define MSR_MTRR_FIX16K_80000   0x00000258u
#define MSR_MTRR_FIX16K_A0000   0x00000259u
#define MSR_MTRR_FIX4K_C0000    0x00000268u
#define MSR_IA32_CR_PAT         0x00000277u
#define MSR_MTRR_DEF_TYPE       0x000002FFu
#define MSR_IA32_TSC_DEADLINE   0x000006E0u
#define MSR_STAR                0xC0000081u
#define MSR_LSTAR               0xC0000082u
#define MSR_CSTAR               0xC0000083u
#define MSR_SYSCALL_MASK        0xC0000084u
#define MSR_KERNEL_GS_BASE      0xC0000102u
#define MSR_TSC_AUX             0xC0000103u

#define PAT_RESET               0x0007040600070406ull
#define MISC_ENABLE_FAST_STRING 0x1ull

static struct hv_vcpu *hv_vcpu_of(struct vmm_vcpu *vcpu)
{
	return (struct hv_vcpu *)(void *)vcpu;
}

/* ---- registers ---- */

int hv_get_regs(struct vmm_vcpu *v, struct vmm_regs *r)
{
	struct kvm_regs k;
	if (ioctl(hv_vcpu_of(v)->fd, KVM_GET_REGS, &k) < 0)
		return -1;
	r->rax = k.rax; r->rbx = k.rbx; r->rcx = k.rcx; r->rdx = k.rdx;
	r->rsi = k.rsi; r->rdi = k.rdi; r->rsp = k.rsp; r->rbp = k.rbp;
	r->r8 = k.r8; r->r9 = k.r9; r->r10 = k.r10; r->r11 = k.r11;
	r->r12 = k.r12; r->r13 = k.r13; r->r14 = k.r14; r->r15 = k.r15;
	r->rip = k.rip; r->rflags = k.rflags;
	return 0;
}

int hv_set_regs(struct vmm_vcpu *v, const struct vmm_regs *r)
{
	struct kvm_regs k = {
		.rax = r->rax, .rbx = r->rbx, .rcx = r->rcx, .rdx = r->rdx,
		.rsi = r->rsi, .rdi = r->rdi, .rsp = r->rsp, .rbp = r->rbp,
		.r8 = r->r8, .r9 = r->r9, .r10 = r->r10, .r11 = r->r11,
		.r12 = r->r12, .r13 = r->r13, .r14 = r->r14, .r15 = r->r15,
		.rip = r->rip, .rflags = r->rflags | 0x2,   /* bit 1 is always set */
	};
	return ioctl(hv_vcpu_of(v)->fd, KVM_SET_REGS, &k) < 0 ? -1 : 0;
}

void hv_segment_to_vmm(const struct kvm_segment *k, struct vmm_segment *v)
{
	v->base = k->base;
	v->limit = k->limit;
	v->selector = k->selector;
	v->type = k->type & 0xF;
	v->present = k->present;
	v->dpl = k->dpl & 3;
	v->db = k->db;
	v->s = k->s;
	v->l = k->l;
	v->g = k->g;
	v->avl = k->avl;
	v->unusable = k->unusable;
}

void hv_segment_from_vmm(const struct vmm_segment *v, struct kvm_segment *k)
{
	memset(k, 0, sizeof(*k));
	k->base = v->base;
	k->limit = v->limit;
	k->selector = v->selector;
	k->type = v->type & 0xF;
	k->present = v->present ? 1 : 0;
	k->dpl = v->dpl & 3;
	k->db = v->db ? 1 : 0;
	k->s = v->s ? 1 : 0;
	k->l = v->l ? 1 : 0;
	k->g = v->g ? 1 : 0;
	k->avl = v->avl ? 1 : 0;
	k->unusable = v->unusable ? 1 : 0;
}

int hv_get_sregs(struct vmm_vcpu *v, struct vmm_sregs *s)
{
	struct kvm_sregs k;
	if (ioctl(hv_vcpu_of(v)->fd, KVM_GET_SREGS, &k) < 0)
		return -1;
	hv_segment_to_vmm(&k.cs, &s->cs);
	hv_segment_to_vmm(&k.ds, &s->ds);
	hv_segment_to_vmm(&k.es, &s->es);
	hv_segment_to_vmm(&k.fs, &s->fs);
	hv_segment_to_vmm(&k.gs, &s->gs);
	hv_segment_to_vmm(&k.ss, &s->ss);
	hv_segment_to_vmm(&k.tr, &s->tr);
	hv_segment_to_vmm(&k.ldt, &s->ldt);
	s->gdt.base = k.gdt.base;
	s->gdt.limit = k.gdt.limit;
	s->idt.base = k.idt.base;
	s->idt.limit = k.idt.limit;
	s->cr0 = k.cr0; s->cr2 = k.cr2; s->cr3 = k.cr3; s->cr4 = k.cr4; s->cr8 = k.cr8;
	s->efer = k.efer;
	s->apic_base = k.apic_base;
	return 0;
}

int hv_set_sregs(struct vmm_vcpu *v, const struct vmm_sregs *s)
{
	int fd = hv_vcpu_of(v)->fd;
	struct kvm_sregs k;
	/* Keep KVM's pending-interrupt bitmap, which vmm_sregs does not carry. */
	if (ioctl(fd, KVM_GET_SREGS, &k) < 0)
		return -1;
	hv_segment_from_vmm(&s->cs, &k.cs);
	hv_segment_from_vmm(&s->ds, &k.ds);
	hv_segment_from_vmm(&s->es, &k.es);
	hv_segment_from_vmm(&s->fs, &k.fs);
	hv_segment_from_vmm(&s->gs, &k.gs);
	hv_segment_from_vmm(&s->ss, &k.ss);
	hv_segment_from_vmm(&s->tr, &k.tr);
	hv_segment_from_vmm(&s->ldt, &k.ldt);
	k.gdt.base = s->gdt.base;
	k.gdt.limit = s->gdt.limit;
	k.idt.base = s->idt.base;
	k.idt.limit = s->idt.limit;
	k.cr0 = s->cr0; k.cr2 = s->cr2; k.cr3 = s->cr3; k.cr4 = s->cr4; k.cr8 = s->cr8;
	k.efer = s->efer;
	k.apic_base = s->apic_base;
	return ioctl(fd, KVM_SET_SREGS, &k) < 0 ? -1 : 0;
}

/* FXSAVE image offsets (SDM vol. 1, table 10-2, 64-bit format). */
#define FX_FCW    0
#define FX_FSW    2
#define FX_FTW    4
#define FX_FOP    6
#define FX_FIP    8
#define FX_FDP    16
#define FX_MXCSR  24
#define FX_MXMASK 28
#define FX_ST0    32
#define FX_XMM0   160

int hv_get_fpu(struct vmm_vcpu *v, struct vmm_fpu *f)
{
	struct kvm_fpu k;
	if (ioctl(hv_vcpu_of(v)->fd, KVM_GET_FPU, &k) < 0)
		return -1;
	uint8_t *x = f->fxsave;
	uint32_t mxmask = 0xFFFF;
	memset(x, 0, sizeof(f->fxsave));
	memcpy(x + FX_FCW, &k.fcw, 2);
	memcpy(x + FX_FSW, &k.fsw, 2);
	x[FX_FTW] = k.ftwx;
	memcpy(x + FX_FOP, &k.last_opcode, 2);
	memcpy(x + FX_FIP, &k.last_ip, 8);
	memcpy(x + FX_FDP, &k.last_dp, 8);
	memcpy(x + FX_MXCSR, &k.mxcsr, 4);
	memcpy(x + FX_MXMASK, &mxmask, 4);
	memcpy(x + FX_ST0, k.fpr, sizeof(k.fpr));
	memcpy(x + FX_XMM0, k.xmm, sizeof(k.xmm));
	return 0;
}

int hv_set_fpu(struct vmm_vcpu *v, const struct vmm_fpu *f)
{
	struct kvm_fpu k;
	const uint8_t *x = f->fxsave;
	memset(&k, 0, sizeof(k));
	memcpy(&k.fcw, x + FX_FCW, 2);
	memcpy(&k.fsw, x + FX_FSW, 2);
	k.ftwx = x[FX_FTW];
	memcpy(&k.last_opcode, x + FX_FOP, 2);
	memcpy(&k.last_ip, x + FX_FIP, 8);
	memcpy(&k.last_dp, x + FX_FDP, 8);
	memcpy(&k.mxcsr, x + FX_MXCSR, 4);
	memcpy(k.fpr, x + FX_ST0, sizeof(k.fpr));
	memcpy(k.xmm, x + FX_XMM0, sizeof(k.xmm));
	return ioctl(hv_vcpu_of(v)->fd, KVM_SET_FPU, &k) < 0 ? -1 : 0;
}

/* ---- MSRs ---- */

static int hv_msrs_io(int fd, unsigned long req, const uint32_t *idx, uint64_t *val, unsigned n)
{
	union {
		struct kvm_msrs hdr;
		uint8_t raw[sizeof(struct kvm_msrs) + HV_MAX_MSRS * sizeof(struct kvm_msr_entry)];
	} u;
	if (n > HV_MAX_MSRS) {
		errno = EINVAL;
		return -1;
	}
	memset(&u, 0, sizeof(u));
	struct kvm_msrs *m = &u.hdr;
	m->nmsrs = n;
	for (unsigned i = 0; i < n; i++) {
		m->entries[i].index = idx[i];
		m->entries[i].data = val[i];
	}
	int r = ioctl(fd, req, m);
	if (r < 0)
		return -1;
	for (unsigned i = 0; i < (unsigned)r && i < n; i++)
		val[i] = m->entries[i].data;
	return r;   /* number of MSRs processed */
}

int hv_get_msr(struct vmm_vcpu *v, uint32_t index, uint64_t *value)
{
	uint64_t val = 0;
	int r = hv_msrs_io(hv_vcpu_of(v)->fd, KVM_GET_MSRS, &index, &val, 1);
	if (r != 1) {
		if (r >= 0)
			errno = ENOENT;
		return -1;
	}
	*value = val;
	return 0;
}

int hv_set_msr(struct vmm_vcpu *v, uint32_t index, uint64_t value)
{
	int r = hv_msrs_io(hv_vcpu_of(v)->fd, KVM_SET_MSRS, &index, &value, 1);
	if (r != 1) {
		if (r >= 0)
			errno = EINVAL;
		return -1;
	}
	return 0;
}

/* Saved in this order: the TSC before the deadline that is relative to it. */
static const uint32_t hv_msr_candidates[] = {
	MSR_IA32_TSC, MSR_IA32_TSC_ADJUST,
	MSR_IA32_SYSENTER_CS, MSR_IA32_SYSENTER_ESP, MSR_IA32_SYSENTER_EIP,
	MSR_STAR, MSR_LSTAR, MSR_CSTAR, MSR_SYSCALL_MASK, MSR_KERNEL_GS_BASE, MSR_TSC_AUX,
	MSR_IA32_CR_PAT, MSR_IA32_MISC_ENABLE, MSR_IA32_MCG_STATUS,
	MSR_MTRR_DEF_TYPE, MSR_MTRR_FIX64K, MSR_MTRR_FIX16K_80000, MSR_MTRR_FIX16K_A0000,
	MSR_MTRR_FIX4K_C0000 + 0, MSR_MTRR_FIX4K_C0000 + 1, MSR_MTRR_FIX4K_C0000 + 2,
	MSR_MTRR_FIX4K_C0000 + 3, MSR_MTRR_FIX4K_C0000 + 4, MSR_MTRR_FIX4K_C0000 + 5,
	MSR_MTRR_FIX4K_C0000 + 6, MSR_MTRR_FIX4K_C0000 + 7,
	MSR_MTRR_PHYSBASE0 + 0, MSR_MTRR_PHYSBASE0 + 1, MSR_MTRR_PHYSBASE0 + 2,
	MSR_MTRR_PHYSBASE0 + 3, MSR_MTRR_PHYSBASE0 + 4, MSR_MTRR_PHYSBASE0 + 5,
	MSR_MTRR_PHYSBASE0 + 6, MSR_MTRR_PHYSBASE0 + 7, MSR_MTRR_PHYSBASE0 + 8,
	MSR_MTRR_PHYSBASE0 + 9, MSR_MTRR_PHYSBASE0 + 10, MSR_MTRR_PHYSBASE0 + 11,
	MSR_MTRR_PHYSBASE0 + 12, MSR_MTRR_PHYSBASE0 + 13, MSR_MTRR_PHYSBASE0 + 14,
	MSR_MTRR_PHYSBASE0 + 15,
	MSR_IA32_TSC_DEADLINE,
};

int hv_vcpu_init_msrs(struct hv_vcpu *vcpu)
{
	vcpu->nmsrs = 0;
	for (size_t i = 0; i < sizeof(hv_msr_candidates) / sizeof(hv_msr_candidates[0]); i++) {
		uint64_t val = 0;
		if (hv_msrs_io(vcpu->fd, KVM_GET_MSRS, &hv_msr_candidates[i], &val, 1) == 1 &&
		    vcpu->nmsrs < HV_MAX_MSRS)
			vcpu->msr_list[vcpu->nmsrs++] = hv_msr_candidates[i];
	}
	return 0;
}

/* ---- reset ---- */

static void hv_seg(struct kvm_segment *s, uint16_t sel, uint64_t base, uint8_t type, uint8_t sbit)
{
	memset(s, 0, sizeof(*s));
	s->selector = sel;
	s->base = base;
	s->limit = 0xFFFF;
	s->type = type;
	s->present = 1;
	s->s = sbit;
}

static void hv_lapic_set32(struct kvm_lapic_state *l, unsigned off, uint32_t v)
{
	memcpy(&l->regs[off], &v, 4);
}

int hv_vcpu_reset(struct vmm_vcpu *v)
{
	struct hv_vcpu *vcpu = hv_vcpu_of(v);
	int fd = vcpu->fd;
	bool bsp = vcpu->id == 0;

	/* KVM would finish an I/O it still owes on top of the reset state. */
	if (hv_vcpu_flush_pending(vcpu) < 0)
		return -1;
	struct kvm_regs regs;
	memset(&regs, 0, sizeof(regs));
	regs.rflags = 0x2;
	regs.rip = 0xFFF0;
	regs.rdx = vcpu->cpu_signature ? vcpu->cpu_signature : 0x600;
	if (ioctl(fd, KVM_SET_REGS, &regs) < 0)
		return -1;

	struct kvm_sregs s;
	if (ioctl(fd, KVM_GET_SREGS, &s) < 0)
		return -1;
	hv_seg(&s.cs, 0xF000, 0xFFFF0000ull, 0xB, 1);   /* code, execute/read, accessed */
	hv_seg(&s.ds, 0, 0, 0x3, 1);                   /* data, read/write, accessed */
	s.es = s.fs = s.gs = s.ss = s.ds;
	hv_seg(&s.tr, 0, 0, 0xB, 0);                   /* busy 32-bit TSS */
	hv_seg(&s.ldt, 0, 0, 0x2, 0);                  /* LDT */
	s.gdt.base = s.idt.base = 0;
	s.gdt.limit = s.idt.limit = 0xFFFF;
	s.cr0 = 0x60000010ull;                         /* CD, NW, ET */
	s.cr2 = s.cr3 = s.cr4 = s.cr8 = 0;
	s.efer = 0;
	s.apic_base = 0xFEE00000ull | (1u << 11) | (bsp ? (1u << 8) : 0);
	memset(s.interrupt_bitmap, 0, sizeof(s.interrupt_bitmap));
	if (ioctl(fd, KVM_SET_SREGS, &s) < 0)
		return -1;

	struct kvm_fpu fpu;
	memset(&fpu, 0, sizeof(fpu));
	fpu.fcw = 0x37F;
	fpu.mxcsr = 0x1F80;
	if (ioctl(fd, KVM_SET_FPU, &fpu) < 0)
		return -1;

	if (vcpu->has_xcrs) {
		struct kvm_xcrs x;
		memset(&x, 0, sizeof(x));
		x.nr_xcrs = 1;
		x.xcrs[0].xcr = 0;
		x.xcrs[0].value = 1;   /* x87 only */
		if (ioctl(fd, KVM_SET_XCRS, &x) < 0)
			vlog_debug("hv: KVM_SET_XCRS at reset: %s", strerror(errno));
	}

	struct kvm_debugregs d;
	memset(&d, 0, sizeof(d));
	d.dr6 = 0xFFFF0FF0ull;
	d.dr7 = 0x400;
	ioctl(fd, KVM_SET_DEBUGREGS, &d);

	/* MSRs the guest may rely on; a set that KVM lacks is skipped (count returned). */
	static const struct { uint32_t idx; uint64_t val; } reset_msrs[] = {
		{ MSR_IA32_SYSENTER_CS, 0 }, { MSR_IA32_SYSENTER_ESP, 0 },
		{ MSR_IA32_SYSENTER_EIP, 0 }, { MSR_STAR, 0 }, { MSR_LSTAR, 0 },
		{ MSR_CSTAR, 0 }, { MSR_SYSCALL_MASK, 0 }, { MSR_KERNEL_GS_BASE, 0 },
		{ MSR_TSC_AUX, 0 }, { MSR_IA32_CR_PAT, PAT_RESET },
		{ MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING }, { MSR_MTRR_DEF_TYPE, 0 },
		{ MSR_IA32_TSC_DEADLINE, 0 },
	};
	for (size_t i = 0; i < sizeof(reset_msrs) / sizeof(reset_msrs[0]); i++) {
		uint32_t idx = reset_msrs[i].idx;
		uint64_t val = reset_msrs[i].val;
		if (hv_msrs_io(fd, KVM_SET_MSRS, &idx, &val, 1) != 1)
			vlog_debug("hv: reset MSR 0x%x not accepted", idx);
	}

	/* LAPIC reset state; the BSP's LINT0 in ExtINT as firmware leaves it (virtual wire). */
	struct kvm_lapic_state l;
	if (ioctl(fd, KVM_GET_LAPIC, &l) < 0)
		return -1;
	uint32_t version;
	memcpy(&version, &l.regs[0x30], 4);
	memset(&l, 0, sizeof(l));
	hv_lapic_set32(&l, 0x20, vcpu->id << 24);
	hv_lapic_set32(&l, 0x30, version);
	hv_lapic_set32(&l, 0xE0, 0xFFFFFFFFu);
	hv_lapic_set32(&l, 0xF0, 0xFF);
	for (unsigned off = 0x320; off <= 0x370; off += 0x10)
		hv_lapic_set32(&l, off, 0x10000);
	if (bsp)
		hv_lapic_set32(&l, 0x350, 0x700);
	if (ioctl(fd, KVM_SET_LAPIC, &l) < 0)
		return -1;

	struct kvm_vcpu_events ev;
	memset(&ev, 0, sizeof(ev));
	ev.flags = KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SHADOW;
	if (ioctl(fd, KVM_SET_VCPU_EVENTS, &ev) < 0)
		return -1;

	struct kvm_mp_state mp = {
		.mp_state = bsp ? KVM_MP_STATE_RUNNABLE : KVM_MP_STATE_UNINITIALIZED,
	};
	if (ioctl(fd, KVM_SET_MP_STATE, &mp) < 0)
		return -1;
	return 0;
}

/* ---- save / restore ---- */

#define HV_BLOB_MAGIC   0x31535648u   /* "HVS1" */
#define HV_BLOB_VERSION 1u

enum hv_blob_tag {
	HV_TAG_LAPIC = 1,
	HV_TAG_EVENTS = 2,
	HV_TAG_MPSTATE = 3,
	HV_TAG_DEBUGREGS = 4,
	HV_TAG_XCRS = 5,
	HV_TAG_XSAVE = 6,
	HV_TAG_MSRS = 7,     /* pairs of (u32 index, u32 pad, u64 value) */
};

struct hv_blob_writer {
	uint8_t *buf;
	size_t len, pos;
	bool overflow;
};

static void hv_blob_put(struct hv_blob_writer *w, uint32_t tag, const void *data, uint32_t len)
{
	if (w->pos + 8 + (size_t)len > w->len) {
		w->overflow = true;
		return;
	}
	memcpy(w->buf + w->pos, &tag, 4);
	memcpy(w->buf + w->pos + 4, &len, 4);
	memcpy(w->buf + w->pos + 8, data, len);
	w->pos += 8 + (size_t)len;
}

long hv_vcpu_save(struct vmm_vcpu *v, void *buf, size_t len)
{
	struct hv_vcpu *vcpu = hv_vcpu_of(v);
	int fd = vcpu->fd;
	if (hv_vcpu_flush_pending(vcpu) < 0)
		return -1;
	struct hv_blob_writer w = { .buf = buf, .len = len, .pos = 12 };
	if (len < 12) {
		errno = ENOSPC;
		return -1;
	}

	struct kvm_lapic_state l;
	struct kvm_vcpu_events ev;
	struct kvm_mp_state mp;
	struct kvm_debugregs d;
	if (ioctl(fd, KVM_GET_LAPIC, &l) < 0 || ioctl(fd, KVM_GET_VCPU_EVENTS, &ev) < 0 ||
	    ioctl(fd, KVM_GET_MP_STATE, &mp) < 0 || ioctl(fd, KVM_GET_DEBUGREGS, &d) < 0)
		return -1;
	hv_blob_put(&w, HV_TAG_LAPIC, &l, sizeof(l));
	hv_blob_put(&w, HV_TAG_EVENTS, &ev, sizeof(ev));
	hv_blob_put(&w, HV_TAG_MPSTATE, &mp, sizeof(mp));
	hv_blob_put(&w, HV_TAG_DEBUGREGS, &d, sizeof(d));
	if (vcpu->has_xcrs) {
		struct kvm_xcrs x;
		if (ioctl(fd, KVM_GET_XCRS, &x) < 0)
			return -1;
		hv_blob_put(&w, HV_TAG_XCRS, &x, sizeof(x));
	}
	if (vcpu->has_xsave) {
		struct kvm_xsave *xs = calloc(1, sizeof(*xs));
		if (!xs)
			return -1;
		if (ioctl(fd, KVM_GET_XSAVE, xs) < 0) {
			free(xs);
			return -1;
		}
		hv_blob_put(&w, HV_TAG_XSAVE, xs, sizeof(*xs));
		free(xs);
	}
	uint64_t vals[HV_MAX_MSRS];
	memset(vals, 0, sizeof(vals));
	int n = hv_msrs_io(fd, KVM_GET_MSRS, vcpu->msr_list, vals, vcpu->nmsrs);
	if (n < 0)
		return -1;
	uint8_t msrs[HV_MAX_MSRS * 16];
	for (int i = 0; i < n; i++) {
		uint32_t pad = 0;
		memcpy(msrs + i * 16, &vcpu->msr_list[i], 4);
		memcpy(msrs + i * 16 + 4, &pad, 4);
		memcpy(msrs + i * 16 + 8, &vals[i], 8);
	}
	hv_blob_put(&w, HV_TAG_MSRS, msrs, (uint32_t)n * 16);
	if (w.overflow) {
		errno = ENOSPC;
		return -1;
	}
	uint32_t hdr[3] = { HV_BLOB_MAGIC, HV_BLOB_VERSION, (uint32_t)w.pos };
	memcpy(buf, hdr, sizeof(hdr));
	return (long)w.pos;
}

/* Find a section with exactly the expected length; NULL when absent or malformed. */
static const uint8_t *hv_blob_get(const uint8_t *b, size_t len, uint32_t tag, uint32_t *out_len)
{
	size_t pos = 12;
	while (pos + 8 <= len) {
		uint32_t t, l;
		memcpy(&t, b + pos, 4);
		memcpy(&l, b + pos + 4, 4);
		if (l > len - pos - 8)
			return NULL;
		if (t == tag) {
			*out_len = l;
			return b + pos + 8;
		}
		pos += 8 + (size_t)l;
	}
	return NULL;
}

int hv_vcpu_restore(struct vmm_vcpu *v, const void *buf, size_t len)
{
	struct hv_vcpu *vcpu = hv_vcpu_of(v);
	int fd = vcpu->fd;
	const uint8_t *b = buf;
	uint32_t hdr[3];
	if (len < sizeof(hdr)) {
		errno = EINVAL;
		return -1;
	}
	memcpy(hdr, b, sizeof(hdr));
	if (hdr[0] != HV_BLOB_MAGIC || hdr[1] != HV_BLOB_VERSION || hdr[2] > len) {
		errno = EINVAL;
		return -1;
	}
	len = hdr[2];
	if (hv_vcpu_flush_pending(vcpu) < 0)
		return -1;

	uint32_t l;
	const uint8_t *p;
	/* Order: MP state, XCRs before XSAVE, MSRs (TSC first), LAPIC, then events. */
	if ((p = hv_blob_get(b, len, HV_TAG_MPSTATE, &l)) && l == sizeof(struct kvm_mp_state)) {
		struct kvm_mp_state mp;
		memcpy(&mp, p, sizeof(mp));
		if (ioctl(fd, KVM_SET_MP_STATE, &mp) < 0)
			return -1;
	}
	if (vcpu->has_xcrs && (p = hv_blob_get(b, len, HV_TAG_XCRS, &l)) &&
	    l == sizeof(struct kvm_xcrs)) {
		struct kvm_xcrs x;
		memcpy(&x, p, sizeof(x));
		if (x.nr_xcrs > KVM_MAX_XCRS)
			x.nr_xcrs = KVM_MAX_XCRS;
		if (ioctl(fd, KVM_SET_XCRS, &x) < 0)
			return -1;
	}
	if (vcpu->has_xsave && (p = hv_blob_get(b, len, HV_TAG_XSAVE, &l)) &&
	    l == sizeof(struct kvm_xsave)) {
		struct kvm_xsave *xs = malloc(sizeof(*xs));
		if (!xs)
			return -1;
		memcpy(xs, p, sizeof(*xs));
		int r = ioctl(fd, KVM_SET_XSAVE, xs);
		free(xs);
		if (r < 0)
			return -1;
	}
	if ((p = hv_blob_get(b, len, HV_TAG_MSRS, &l)) && l % 16 == 0 && l / 16 <= HV_MAX_MSRS) {
		uint32_t idx[HV_MAX_MSRS];
		uint64_t val[HV_MAX_MSRS];
		unsigned n = l / 16;
		for (unsigned i = 0; i < n; i++) {
			memcpy(&idx[i], p + i * 16, 4);
			memcpy(&val[i], p + i * 16 + 8, 8);
		}
		int r = hv_msrs_io(fd, KVM_SET_MSRS, idx, val, n);
		if (r < 0)
			return -1;
		if ((unsigned)r != n)
			vlog_warn("hv: restore: MSR 0x%x refused by KVM", idx[r]);
	}
	if ((p = hv_blob_get(b, len, HV_TAG_LAPIC, &l)) && l == sizeof(struct kvm_lapic_state)) {
		struct kvm_lapic_state ls;
		memcpy(&ls, p, sizeof(ls));
		if (ioctl(fd, KVM_SET_LAPIC, &ls) < 0)
			return -1;
	}
	if ((p = hv_blob_get(b, len, HV_TAG_DEBUGREGS, &l)) && l == sizeof(struct kvm_debugregs)) {
		struct kvm_debugregs d;
		memcpy(&d, p, sizeof(d));
		if (ioctl(fd, KVM_SET_DEBUGREGS, &d) < 0)
			return -1;
	}
	if ((p = hv_blob_get(b, len, HV_TAG_EVENTS, &l)) && l == sizeof(struct kvm_vcpu_events)) {
		struct kvm_vcpu_events ev;
		memcpy(&ev, p, sizeof(ev));
		ev.flags &= KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR |
		            KVM_VCPUEVENT_VALID_SHADOW;
		if (ioctl(fd, KVM_SET_VCPU_EVENTS, &ev) < 0)
			return -1;
	}
	return 0;
}

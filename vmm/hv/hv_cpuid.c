/*
 * hv_cpuid.c — the CPUID a guest sees on the hv engine.
 *
 * Start from what KVM can virtualise (KVM_GET_SUPPORTED_CPUID) and present
 * a VMware hypervisor: the hypervisor bit, "VMwareVMware" at 0x40000000
 * with the frequency leaf 0x40000010, and no KVM signature or PV leaves
 * (Linux picks the hypervisor with the highest base leaf, so a KVM leaf at
 * 0x40000100 would win over VMware).  Features that are not virtualised for
 * this guest (MONITOR/MWAIT, the PMU, TSX, nested VMX/SVM, PT, SGX) are
 * masked.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "hv_int.h"

/* CPUID bits (SDM vol. 2A, CPUID; AMD APM vol. 3 appendix E). */
#define C1_ECX_MONITOR   (1u << 3)
#define C1_ECX_VMX       (1u << 5)
#define C1_ECX_PDCM      (1u << 15)
#define C1_ECX_TSCDL     (1u << 24)
#define C1_ECX_HYPERV    (1u << 31)
#define C1_EDX_HTT       (1u << 28)
#define C7_EBX_SGX       (1u << 2)
#define C7_EBX_HLE       (1u << 4)
#define C7_EBX_RTM       (1u << 11)
#define C7_EBX_PT        (1u << 25)
#define C7_ECX_WAITPKG   (1u << 5)
#define C7_ECX_SGX_LC    (1u << 30)
#define C81_ECX_SVM      (1u << 2)
#define C81_ECX_MWAITX   (1u << 29)
#define C87_EDX_INVTSC   (1u << 8)

static bool hv_leaf_dropped(uint32_t fn)
{
	if ((fn & 0xF0000000u) == 0x40000000u)
		return true;    /* KVM's own leaves; ours are added below */
	switch (fn) {
	case 0x5:           /* MONITOR/MWAIT: not offered */
	case 0xA:           /* architectural PMU: none */
	case 0x12:          /* SGX */
	case 0x14:          /* processor trace */
	case 0x8000000A:    /* SVM */
		return true;
	default:
		return false;
	}
}

static struct kvm_cpuid_entry2 *hv_cpuid_add(struct hv_vm *vm, uint32_t fn, uint32_t idx)
{
	if (vm->ncpuid >= HV_MAX_CPUID)
		return NULL;
	struct kvm_cpuid_entry2 *e = &vm->cpuid[vm->ncpuid++];
	memset(e, 0, sizeof(*e));
	e->function = fn;
	e->index = idx;
	return e;
}

const struct kvm_cpuid_entry2 *hv_cpuid_find(const struct hv_vm *vm, uint32_t fn, uint32_t idx)
{
	for (unsigned i = 0; i < vm->ncpuid; i++) {
		const struct kvm_cpuid_entry2 *e = &vm->cpuid[i];
		if (e->function == fn &&
		    (!(e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || e->index == idx))
			return e;
	}
	return NULL;
}

static void hv_cpuid_policy(struct hv_vm *vm, struct kvm_cpuid_entry2 *e)
{
	switch (e->function) {
	case 0x1:
		e->ecx &= ~(C1_ECX_MONITOR | C1_ECX_VMX | C1_ECX_PDCM);
		e->ecx |= C1_ECX_HYPERV;
		if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0)
			e->ecx |= C1_ECX_TSCDL;
		/* EBX[23:16]: logical processors per package; APIC ID is per vCPU. */
		e->ebx = (e->ebx & 0x0000FFFFu) | ((vm->ncpus > 255 ? 255 : vm->ncpus) << 16);
		if (vm->ncpus > 1)
			e->edx |= C1_EDX_HTT;
		else
			e->edx &= ~C1_EDX_HTT;
		break;
	case 0x4: {
		/* Deterministic cache parameters: one core per vCPU, no SMT. */
		uint32_t cores = vm->ncpus > 64 ? 64 : vm->ncpus;
		uint32_t level = (e->eax >> 5) & 7;
		uint32_t sharing = level >= 3 ? cores - 1 : 0;
		e->eax = (e->eax & 0x3FFFu) | (sharing << 14) | ((cores - 1) << 26);
		break;
	}
	case 0x6:
		/* Thermal and power: only ARAT (the LAPIC timer keeps running in C-states). */
		e->eax &= (1u << 2);
		e->ebx = e->ecx = e->edx = 0;
		break;
	case 0x7:
		if (e->index == 0) {
			e->ebx &= ~(C7_EBX_SGX | C7_EBX_HLE | C7_EBX_RTM | C7_EBX_PT);
			e->ecx &= ~(C7_ECX_WAITPKG | C7_ECX_SGX_LC);
		}
		break;
	case 0xB:
	case 0x1F: {
		/* x2APIC topology: level 0 SMT (1 thread), level 1 core (ncpus). */
		uint32_t shift = 0;
		while ((1u << shift) < vm->ncpus)
			shift++;
		if (e->index == 0) {
			e->eax = 0;
			e->ebx = 1;
			e->ecx = (1u << 8) | 0;
		} else if (e->index == 1) {
			e->eax = shift;
			e->ebx = vm->ncpus;
			e->ecx = (2u << 8) | 1;
		} else {
			e->eax = e->ebx = 0;
			e->ecx = e->index & 0xFF;
		}
		break;
	}
	case 0x80000001:
		e->ecx &= ~(C81_ECX_SVM | C81_ECX_MWAITX);
		break;
	case 0x80000007:
		/* Only the invariant-TSC bit, and only when the host TSC is trustworthy. */
		e->edx &= C87_EDX_INVTSC;
		if (!vm->tsc_stable)
			e->edx = 0;
		e->eax = e->ebx = e->ecx = 0;
		break;
	default:
		break;
	}
}

int hv_cpuid_init(struct hv_vm *vm, char *err, size_t errlen)
{
	unsigned n = 256;
	struct kvm_cpuid2 *c = NULL;
	for (;;) {
		c = calloc(1, sizeof(*c) + n * sizeof(struct kvm_cpuid_entry2));
		if (!c) {
			snprintf(err, errlen, "hv: out of memory");
			return -1;
		}
		c->nent = n;
		if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0)
			break;
		int e = errno;
		free(c);
		if (e != E2BIG || n >= 4096) {
			snprintf(err, errlen, "hv: KVM_GET_SUPPORTED_CPUID: %s", strerror(e));
			return -1;
		}
		n *= 2;
	}
	vm->ncpuid = 0;
	for (unsigned i = 0; i < c->nent; i++) {
		if (hv_leaf_dropped(c->entries[i].function))
			continue;
		struct kvm_cpuid_entry2 *e = hv_cpuid_add(vm, c->entries[i].function,
		                                          c->entries[i].index);
		if (!e)
			break;
		*e = c->entries[i];
		hv_cpuid_policy(vm, e);
	}
	free(c);

	/* The VMware hypervisor leaves (guest-interfaces.md section 1.1). */
	struct kvm_cpuid_entry2 *e = hv_cpuid_add(vm, VMM_CPUID_HV_LEAF, 0);
	struct kvm_cpuid_entry2 *f = hv_cpuid_add(vm, VMM_CPUID_HV_FREQ, 0);
	if (!e || !f) {
		snprintf(err, errlen, "hv: CPUID table full");
		return -1;
	}
	const char *sig = VMM_HV_SIGNATURE;
	e->eax = VMM_CPUID_HV_FREQ;
	memcpy(&e->ebx, sig, 4);
	memcpy(&e->ecx, sig + 4, 4);
	memcpy(&e->edx, sig + 8, 4);
	f->eax = (uint32_t)vm->tsc_khz;
	f->ebx = (uint32_t)(vm->apic_bus_hz / 1000);
	f->ecx = 0;   /* backdoor through the I/O port, not VMCALL/VMMCALL */
	f->edx = 0;
	return 0;
}

int hv_cpuid_set_vcpu(struct hv_vcpu *vcpu)
{
	struct hv_vm *vm = vcpu->vm;
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + vm->ncpuid * sizeof(struct kvm_cpuid_entry2));
	if (!c)
		return -1;
	c->nent = vm->ncpuid;
	memcpy(c->entries, vm->cpuid, vm->ncpuid * sizeof(struct kvm_cpuid_entry2));
	/* Leaf 0x40000010 may have been built before the vCPU ioctl knew the TSC rate. */
	for (unsigned i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		switch (e->function) {
		case 0x1:
			e->ebx = (e->ebx & 0x00FFFFFFu) | ((vcpu->id & 0xFF) << 24);
			vcpu->cpu_signature = e->eax;
			break;
		case 0xB:
		case 0x1F:
			e->edx = vcpu->id;
			break;
		case VMM_CPUID_HV_FREQ:
			e->eax = (uint32_t)vm->tsc_khz;
			break;
		default:
			break;
		}
	}
	int r = ioctl(vcpu->fd, KVM_SET_CPUID2, c);
	int e = errno;
	free(c);
	errno = e;
	return r;
}

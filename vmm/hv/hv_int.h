/*
 * hv_int.h — internals of the hv engine (vmm.h on /dev/kvm), shared by
 * hv.c (VM, vCPU, run loop, exits), hv_cpuid.c (CPUID policy) and
 * hv_state.c (register accessors, reset, save/restore).
 */
#ifndef VIREO_HV_INT_H
#define VIREO_HV_INT_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../vmm.h"

#define HV_IOAPIC_PINS   24
#define HV_TSS_ADDR      0xFEFFD000ull   /* 3 pages, below the ROM, above the IOAPIC */
#define HV_IDMAP_ADDR    0xFEFFC000ull   /* 1 page, EPT-less real mode identity map */
#define HV_MAX_SLOTS     32
#define HV_EXIT_TABLE    64              /* KVM exit reasons indexed below this */
#define HV_MAX_CPUID     128
#define HV_MAX_MSRS      48

struct hv_vm {
	int kvm_fd;                /* /dev/kvm */
	int vm_fd;
	int run_size;              /* mmap size of kvm_run */
	unsigned ncpus;
	uint64_t tsc_khz;          /* guest-visible, fixed */
	uint64_t apic_bus_hz;
	bool tsc_stable;           /* invariant TSC may be advertised */
	const struct vmm_host_ops *host;
	void *host_opaque;

	/* CPUID template from KVM_GET_SUPPORTED_CPUID after the policy. */
	struct kvm_cpuid_entry2 cpuid[HV_MAX_CPUID];
	unsigned ncpuid;

	/*
	 * Level-triggered vectors the IOAPIC has sent through vm_msi: KVM only
	 * reports KVM_EXIT_IOAPIC_EOI for vectors it finds in MSI routes on the
	 * reserved IOAPIC GSIs (split irqchip), so we mirror them there.
	 */
	pthread_mutex_t route_lock;
	/* Memory slots as KVM has them: KVM_GET_DIRTY_LOG writes a bitmap the
	 * size of the slot's current mapping, so a remap must not run between
	 * reading the size and the ioctl. */
	pthread_mutex_t slot_lock;
	struct { uint64_t size; uint32_t flags; } slots[HV_MAX_SLOTS];
	struct { uint64_t addr; uint32_t data; bool used; } routes[HV_IOAPIC_PINS];
	unsigned route_next;

	/* Exit statistics: counts per KVM exit reason and time inside KVM_RUN. */
	_Atomic uint64_t exit_count[HV_EXIT_TABLE];
	_Atomic uint64_t run_ns;
	_Atomic uint64_t injected_extint;
	_Atomic bool first_exit_logged;
};

struct hv_vcpu {
	struct hv_vm *vm;
	unsigned id;
	int fd;
	struct kvm_run *run;

	_Atomic bool thread_known;
	pthread_t thread;

	/* Completion owed to KVM on the next KVM_RUN. */
	enum { HV_PEND_NONE, HV_PEND_PIO, HV_PEND_MMIO_READ, HV_PEND_MMIO_WRITE } pending;

	uint32_t msr_list[HV_MAX_MSRS];   /* MSRs saved in the blob, supported by KVM */
	unsigned nmsrs;
	uint32_t cpu_signature;           /* CPUID.1:EAX, EDX at reset */
	bool has_xsave, has_xcrs;
};

/* hv_cpuid.c */
/* Build vm->cpuid from KVM_GET_SUPPORTED_CPUID; returns 0 or -1 with err. */
int hv_cpuid_init(struct hv_vm *vm, char *err, size_t errlen);
/* Install the per-vCPU copy (APIC IDs) with KVM_SET_CPUID2. */
int hv_cpuid_set_vcpu(struct hv_vcpu *vcpu);
/* Look up a leaf in the template; NULL when absent. */
const struct kvm_cpuid_entry2 *hv_cpuid_find(const struct hv_vm *vm, uint32_t fn, uint32_t idx);

/* hv_state.c */
void hv_segment_to_vmm(const struct kvm_segment *k, struct vmm_segment *v);
void hv_segment_from_vmm(const struct vmm_segment *v, struct kvm_segment *k);
int hv_vcpu_init_msrs(struct hv_vcpu *vcpu);
int hv_get_regs(struct vmm_vcpu *vcpu, struct vmm_regs *r);
int hv_set_regs(struct vmm_vcpu *vcpu, const struct vmm_regs *r);
int hv_get_sregs(struct vmm_vcpu *vcpu, struct vmm_sregs *s);
int hv_set_sregs(struct vmm_vcpu *vcpu, const struct vmm_sregs *s);
int hv_get_fpu(struct vmm_vcpu *vcpu, struct vmm_fpu *f);
int hv_set_fpu(struct vmm_vcpu *vcpu, const struct vmm_fpu *f);
int hv_get_msr(struct vmm_vcpu *vcpu, uint32_t index, uint64_t *value);
int hv_set_msr(struct vmm_vcpu *vcpu, uint32_t index, uint64_t value);
int hv_vcpu_reset(struct vmm_vcpu *vcpu);
long hv_vcpu_save(struct vmm_vcpu *vcpu, void *buf, size_t len);
int hv_vcpu_restore(struct vmm_vcpu *vcpu, const void *buf, size_t len);

/* hv.c */
/* Finish a pending PIO/MMIO completion so the register state is final. */
int hv_vcpu_flush_pending(struct hv_vcpu *vcpu);
/* hv_probe.c */
bool hv_probe(char *why, size_t whylen);

#endif

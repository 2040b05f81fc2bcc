/*
 * vm.h — one running virtual machine inside vireo-vmx: the platform.
 *
 * Owns guest memory, the buses, the devices, the interrupt routing and the
 * vCPU threads, and runs the engine through the vmm.h contract.
 */
#ifndef VIREO_VM_H
#define VIREO_VM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "../vmm/vmm.h"
#include "config.h"
#include "device.h"
#include "iobus.h"
#include "irq.h"
#include "lock.h"
#include "loop.h"
#include "mem.h"

#define VMX_MAX_VCPUS 64

struct vmx_link;

enum vmx_power_request {
	VMX_POWER_NONE = 0,
	VMX_POWER_OFF,      /* guest ACPI S5, or the user: exit status 0 */
	VMX_POWER_RESET,    /* guest reboot, triple fault with reset policy */
	VMX_POWER_FAIL,     /* unrecoverable: exit status 1 */
};

struct vmx_vcpu {
	struct vmx_vm *vm;
	unsigned id;
	struct vmm_vcpu *ev;   /* the engine's vCPU */
	pthread_t thread;
	bool thread_started;
	bool halted_logged;
	_Atomic uint64_t exits[VMM_EXIT__COUNT];    /* per reason */
	_Atomic uint64_t exit_ns[VMM_EXIT__COUNT];  /* time spent handling them */
};

struct vmx_vm {
	struct vmxcfg *cfg;
	char *dir;               /* the VM folder */
	char *name;              /* displayName */
	struct vmx_loop *loop;

	struct gmem mem;
	struct iobus pio, mmio;

	const struct vmm_engine *engine;
	struct vmm_vm *evm;
	struct vmm_host_ops host_ops;
	unsigned ncpus;
	struct vmx_vcpu vcpus[VMX_MAX_VCPUS];
	uint64_t tsc_hz;
	uint64_t apic_bus_hz;
	uint64_t memsize_mb;
	bool boot_kernel;        /* linux.kernel: direct boot; else firmware ROM */
	/* Firmware boot (vm.c): the ROM's last 128 KiB as seen at 0xE0000 while the
	 * PAM registers route reads to ROM, and the gmem slots of 0xC0000-0xFFFFF. */
	uint8_t *bios_low;       /* NULL for a direct kernel boot */
	int pam_slot;            /* first of VMX_PAM_SEGMENTS gmem slots */
	uint8_t pam[7];          /* i440FX PAM0-PAM6 as last applied */
	/* Run-time slots mapped with GMEM_LOG_DIRTY (vmx_vm_mem_dirty): read by
	 * the harvesting thread while the vCPU thread remaps them. */
	struct {
		atomic_uint state;       /* VMX_SLOT_LOGGING | VMX_SLOT_ALL_DIRTY */
		_Atomic uint64_t size;
	} slot_log[GMEM_MAX_REGIONS];
	char trace_path[4096];
	struct vmx_timer *stats_timer;
	int signal_fd;
	void *backdoor;          /* backdoor.c state */
	struct vmx_link *link;   /* VMDB link (vmdb/vmx_link.h); NULL without vireod */

	/* interrupt routing (irq.c) */
	struct vmx_mutex irq_lock;
	const struct vmx_pic_ops *pic_ops;
	void *pic;
	const struct vmx_irqchip_ops *ioapic_ops;
	void *ioapic;
	void (*ioapic_eoi)(void *opaque, uint8_t vector);
	uint32_t isa_levels;     /* current level of GSIs 0-23 (bit per GSI) */

	struct vdev *devices;

	/* power */
	struct vmx_mutex power_lock;
	atomic_int power_request;    /* enum vmx_power_request */
	atomic_bool stopping;        /* vCPU threads leave their loop */
	char fail_reason[256];
	int exit_status;
	unsigned resets;
	uint64_t last_triple_fault_ns;
	unsigned triple_faults;
};

/* Create everything from the config; err names the key or file on failure. */
struct vmx_vm *vmx_vm_create(struct vmxcfg *cfg, char *err, size_t errlen);
/* Load firmware or kernel, start the vCPUs, run the loop; returns the exit status. */
int vmx_vm_run(struct vmx_vm *vm);
void vmx_vm_destroy(struct vmx_vm *vm);

/* From any thread: request power-off, reset or failure (handled on the loop thread). */
void vmx_vm_request_power(struct vmx_vm *vm, enum vmx_power_request req, const char *why);
/* Power off with a given process exit status (the test device uses it). */
void vmx_vm_request_exit(struct vmx_vm *vm, int status, const char *why);

/* Press the ACPI power button (graceful shutdown); -1 when the VM has none. */
int vmx_vm_power_button(struct vmx_vm *vm);

/* Find a device's private state by class name (for devices that cooperate). */
void *vmx_vm_device(struct vmx_vm *vm, const char *class_name);

/*
 * i440FX PAM: map 0xC0000-0xFFFFF as ROM, read-only RAM or RAM by the seven
 * PAM registers (config 0x59-0x5F).  Called by the host bridge on writes and
 * reset, on the vCPU or loop thread; no-op for a direct kernel boot.
 */
#define VMX_PAM_SEGMENTS 13
void vmx_vm_set_pam(struct vmx_vm *vm, const uint8_t pam[7]);
/*
 * Map size bytes of host memory at hva at gpa in gmem slot idx (from
 * gmem_reserve_slots; flags GMEM_ROM for read-only), or unmap the slot
 * (size 0), and tell the engine.  For what moves at run time: the PAM
 * windows below 1 MiB, RAM-backed PCI BARs.  -1 (logged) when the range
 * overlaps other memory or the engine refuses it.
 */
int vmx_vm_set_mem_slot(struct vmx_vm *vm, int idx, uint64_t gpa, uint64_t size, uint8_t *hva,
                        uint32_t flags, const char *name);
/* Does the engine log guest writes for slots mapped with GMEM_LOG_DIRTY? */
bool vmx_vm_can_log_dirty(const struct vmx_vm *vm);
/*
 * The pages of [off, off+len) in slot idx (offsets into the slot) the guest
 * wrote since the last call: bit i of bitmap (64-bit words) is the page
 * holding off rounded down to 4 KiB plus i pages.  After a remap every page
 * counts as written once.  Any thread; one harvester per slot.  -1 when the
 * slot is not mapped with logging (the caller must assume everything).
 */
int vmx_vm_mem_dirty(struct vmx_vm *vm, int idx, uint64_t off, uint64_t len, uint64_t *bitmap);

/* Kick every vCPU (or one) out of vmm_vcpu_run. */
void vmx_vm_kick(struct vmx_vm *vm, int vcpu_id);

#endif

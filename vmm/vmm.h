/*
 * vmm.h — the vCPU engine contract.
 *
 * Vireo has two monitor engines behind this one interface:
 *   hv — hardware-assisted, on /dev/kvm (vmm/hv/)
 *   bt — software x86-64: translation units, translation cache, soft MMU (vmm/bt/)
 *
 * The platform (vmx/) owns guest RAM and every device except the local APIC.
 * An engine owns the CPU state and the LAPIC (in-kernel for hv, emulated for
 * bt).  The platform hands the engine its memory map, and the engine calls
 * back into the platform through struct vmm_host_ops for everything else.
 *
 * Threading: vmm_vcpu_run() is called only from that vCPU's own thread.
 * vmm_vcpu_kick() and vmm_vm_msi() may be called from any thread.  Register
 * accessors are called from the vCPU's own thread, or from any thread while
 * that vCPU is not inside vmm_vcpu_run().
 */
#ifndef VIREO_VMM_H
#define VIREO_VMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vmm_vm;
struct vmm_vcpu;

/* ---- CPU state, in architectural terms (shared by both engines) ---- */

struct vmm_regs {
	uint64_t rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp;
	uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
	uint64_t rip, rflags;
};

struct vmm_segment {
	uint64_t base;
	uint32_t limit;    /* byte granular: already expanded when g=1 */
	uint16_t selector;
	uint8_t type;      /* descriptor type field (4 bits) */
	uint8_t present, dpl, db, s, l, g, avl;
	uint8_t unusable;  /* null selector loaded / no valid cache */
};

struct vmm_dtable {
	uint64_t base;
	uint16_t limit;
};

struct vmm_sregs {
	struct vmm_segment cs, ds, es, fs, gs, ss, tr, ldt;
	struct vmm_dtable gdt, idt;
	uint64_t cr0, cr2, cr3, cr4, cr8;
	uint64_t efer;
	uint64_t apic_base;
};

/* The FXSAVE image, 512 bytes, exactly as the FXSAVE instruction lays it out. */
struct vmm_fpu {
	uint8_t fxsave[512];
};

/* ---- Exits: what an engine cannot finish on its own ---- */

enum vmm_exit_reason {
	VMM_EXIT_NONE = 0,
	VMM_EXIT_IO,        /* port I/O: fill io.data for an IN, then run again */
	VMM_EXIT_MMIO,      /* access to a guest-physical address that is not RAM */
	VMM_EXIT_KICKED,    /* vmm_vcpu_kick() or a signal interrupted the run */
	VMM_EXIT_HLT,       /* HLT with interrupts disabled, nothing can wake it */
	VMM_EXIT_SHUTDOWN,  /* triple fault: the platform resets or powers off */
	VMM_EXIT_RESET,     /* the engine itself asks for a system reset */
	VMM_EXIT_INTERNAL,  /* engine-internal failure; message in exit.msg */
	VMM_EXIT_UNKNOWN,   /* an exit the engine does not know; code in exit.code */
	VMM_EXIT__COUNT
};

struct vmm_exit {
	enum vmm_exit_reason reason;
	union {
		struct {
			uint16_t port;
			uint8_t size;      /* 1, 2 or 4 */
			bool write;
			uint32_t count;    /* string I/O: number of elements (1 for IN/OUT) */
			/*
			 * For count == 1: data holds the value (little-endian).
			 * For string I/O: data points at count*size bytes owned
			 * by the engine; the platform reads (OUT) or fills (IN) it.
			 */
			uint8_t *data;
			uint8_t inline_data[8];
		} io;
		struct {
			uint64_t gpa;
			uint8_t size;      /* 1, 2, 4 or 8 */
			bool write;
			uint8_t data[8];   /* little-endian; the platform fills it on a read */
		} mmio;
		uint64_t code;         /* VMM_EXIT_UNKNOWN: the engine's own exit code */
	};
	char msg[128];             /* VMM_EXIT_INTERNAL, SHUTDOWN: human-readable */
};

/* ---- What the platform provides to an engine ---- */

struct vmm_host_ops {
	/*
	 * The 8259 pair's INTR output.  pic_pending() is the line level; an engine
	 * whose LAPIC LINT0 is in ExtINT mode (or with the LAPIC disabled) calls
	 * pic_ack() to run an INTA cycle, which returns the vector.
	 */
	bool (*pic_pending)(void *opaque);
	int (*pic_ack)(void *opaque);
	/* A LAPIC EOI of a level-triggered vector: the IOAPIC re-evaluates its pins. */
	void (*eoi)(void *opaque, uint8_t vector);
	/*
	 * Synchronous device access, for an engine that emulates the instruction
	 * itself (bt): the same semantics as the VMM_EXIT_IO / VMM_EXIT_MMIO
	 * exits, dispatched on the calling vCPU thread before the instruction
	 * completes.  vcpu_id lets a handler (the backdoor) use the register
	 * accessors on that vCPU during the call; an engine must have its
	 * architectural registers current (RIP at the faulting instruction)
	 * before calling.  count > 1 is string I/O over data[count*size].
	 */
	void (*pio)(void *opaque, unsigned vcpu_id, uint16_t port, unsigned size, bool write,
	            uint32_t count, uint8_t *data);
	void (*mmio)(void *opaque, unsigned vcpu_id, uint64_t gpa, unsigned size, bool write,
	             uint8_t *data);
	/* Triple fault, or a shutdown the engine decided: platform reset/power-off policy. */
	void (*shutdown)(void *opaque, unsigned vcpu_id, const char *why);
};

/* ---- Configuration handed to an engine ---- */

#define VMM_MEM_READONLY 0x1u   /* guest writes become VMM_EXIT_MMIO */
#define VMM_MEM_LOG_DIRTY 0x2u  /* record guest writes per page (vm_get_dirty) */

struct vmm_mem_region {
	uint64_t gpa;
	uint64_t size;         /* multiple of 4 KiB */
	void *hva;
	uint32_t flags;
};

struct vmm_vm_config {
	unsigned ncpus;
	uint64_t tsc_hz;           /* guest-visible TSC frequency (fixed) */
	uint64_t apic_bus_hz;      /* LAPIC timer input frequency */
	const struct vmm_host_ops *host;
	void *host_opaque;
	bool trace;                /* engine execution trace (bt: per translation unit) */
	const char *trace_path;
};

/* ---- The engine contract ---- */

struct vmm_engine {
	const char *name;          /* "hv" or "bt" */
	/*
	 * Can this engine run a guest kernel at useful speed on this host?
	 * Returns true, or false with a reason written to why.
	 */
	bool (*probe)(char *why, size_t whylen);

	struct vmm_vm *(*vm_create)(const struct vmm_vm_config *cfg, char *err, size_t errlen);
	void (*vm_destroy)(struct vmm_vm *vm);
	/* Map guest-physical memory. Regions never overlap; called before vCPUs run. */
	int (*vm_set_memory)(struct vmm_vm *vm, unsigned slot, const struct vmm_mem_region *r);
	/* The guest-visible TSC frequency the engine actually provides (Hz). */
	uint64_t (*vm_tsc_hz)(struct vmm_vm *vm);
	/* An MSI-style message (from the IOAPIC or a PCI device) to the LAPICs. */
	int (*vm_msi)(struct vmm_vm *vm, uint64_t addr, uint32_t data);

	struct vmm_vcpu *(*vcpu_create)(struct vmm_vm *vm, unsigned id, char *err, size_t errlen);
	void (*vcpu_destroy)(struct vmm_vcpu *vcpu);
	/*
	 * Run the guest until an exit the platform must handle.  On return, *exit
	 * describes it.  For VMM_EXIT_IO reads and VMM_EXIT_MMIO reads the platform
	 * fills the data before the next call, which passes the same struct
	 * vmm_exit back; the engine completes the instruction on that next call.
	 * Returns 0, or -1 on a host error (errno set).
	 */
	int (*vcpu_run)(struct vmm_vcpu *vcpu, struct vmm_exit *exit);
	/* From any thread: make a running vcpu_run() return VMM_EXIT_KICKED soon,
	 * or re-evaluate interrupts (PIC line changes) if it is halted. */
	void (*vcpu_kick)(struct vmm_vcpu *vcpu);

	int (*get_regs)(struct vmm_vcpu *vcpu, struct vmm_regs *r);
	int (*set_regs)(struct vmm_vcpu *vcpu, const struct vmm_regs *r);
	int (*get_sregs)(struct vmm_vcpu *vcpu, struct vmm_sregs *s);
	int (*set_sregs)(struct vmm_vcpu *vcpu, const struct vmm_sregs *s);
	int (*get_fpu)(struct vmm_vcpu *vcpu, struct vmm_fpu *f);
	int (*set_fpu)(struct vmm_vcpu *vcpu, const struct vmm_fpu *f);
	int (*get_msr)(struct vmm_vcpu *vcpu, uint32_t index, uint64_t *value);
	int (*set_msr)(struct vmm_vcpu *vcpu, uint32_t index, uint64_t value);
	/* Architectural INIT/RESET state (real mode at F000:FFF0, LAPIC reset). */
	int (*vcpu_reset)(struct vmm_vcpu *vcpu);

	/*
	 * Opaque engine state for save/restore (suspend, snapshots): LAPIC,
	 * pending events, MSRs the accessors above do not cover.  save writes at
	 * most len bytes and returns the size used (or -1, errno=ENOSPC).
	 */
	long (*vcpu_save)(struct vmm_vcpu *vcpu, void *buf, size_t len);
	int (*vcpu_restore)(struct vmm_vcpu *vcpu, const void *buf, size_t len);

	/* Stats build: per-category exit counts, printed to the log. */
	void (*vm_stats)(struct vmm_vm *vm, void (*emit)(void *ctx, const char *name,
	                                                  uint64_t count, uint64_t ns),
	                 void *ctx);

	/*
	 * Optional (NULL = not needed): the platform wrote guest RAM
	 * [gpa, gpa+len) other than through a vCPU (device DMA, loaders,
	 * restore).  bt drops translated code from those pages; any thread.
	 */
	void (*vm_mem_written)(struct vmm_vm *vm, uint64_t gpa, uint64_t len);

	/*
	 * Optional (NULL = the engine cannot log writes): for a slot mapped with
	 * VMM_MEM_LOG_DIRTY, set bit i of bitmap (words 64-bit words, bit i of
	 * word i / 64) for each page i of the slot the guest wrote since the
	 * last call, and start logging afresh.  A write either shows in this
	 * bitmap, and is in memory when the call returns, or in the next one.
	 * Any thread; -1 when the slot is not mapped or not logging.
	 */
	int (*vm_get_dirty)(struct vmm_vm *vm, unsigned slot, uint64_t *bitmap, size_t words);
};

/* Registered engines; NULL when not built. */
extern const struct vmm_engine vmm_engine_hv;
extern const struct vmm_engine vmm_engine_bt;

/*
 * Choose an engine for monitor.engine = "auto" | "hv" | "bt".  For "auto",
 * hv wins when its probe passes, else bt.  why receives a sentence saying
 * which engine was chosen and why (for the console and the log).  Returns
 * NULL with why set when the named engine is unknown or unusable.
 */
const struct vmm_engine *vmm_engine_select(const char *name, char *why, size_t whylen);

const char *vmm_exit_reason_name(enum vmm_exit_reason r);

/* CPUID identity Vireo presents on either engine (VMware hypervisor). */
#define VMM_CPUID_HV_LEAF   0x40000000u
#define VMM_CPUID_HV_FREQ   0x40000010u
#define VMM_HV_SIGNATURE    "VMwareVMware"

/* Default frequencies. */
#define VMM_APIC_BUS_HZ_HV  1000000000ull   /* KVM's LAPIC ticks at 1 GHz */

#endif

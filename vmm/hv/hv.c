/*
 * hv.c — the hv engine: VMs and vCPUs on /dev/kvm, the run loop and exits.
 *
 * KVM runs the guest and its LAPIC (split irqchip: the PIC, IOAPIC and PIT
 * are the platform's user-space devices).  KVM exits are dispatched through
 * a table indexed by the KVM exit reason; each handler either completes the
 * exit inside the engine (continue running) or describes it to the platform
 * in a struct vmm_exit.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "../../vmx/log.h"
#include "hv_int.h"

#define HV_KICK_SIGNAL SIGUSR1

static struct hv_vm *hv_vm_of(struct vmm_vm *vm)
{
	return (struct hv_vm *)(void *)vm;
}

static struct hv_vcpu *hv_vcpu_of(struct vmm_vcpu *vcpu)
{
	return (struct hv_vcpu *)(void *)vcpu;
}

static uint64_t hv_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- VM ---- */

static bool hv_tsc_is_stable(void)
{
	/* The host kernel trusts its TSC only when it is the clocksource. */
	char buf[32] = "";
	int fd = open("/sys/devices/system/clocksource/clocksource0/current_clocksource",
	              O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return strncmp(buf, "tsc", 3) == 0;
}

static int hv_setup_tsc(struct hv_vm *vm, uint64_t want_hz, char *err, size_t errlen)
{
	int host_khz = ioctl(vm->vm_fd, KVM_GET_TSC_KHZ, 0);
	if (host_khz <= 0) {
		/* Old kernels: only the vCPU ioctl exists; read it there later. */
		host_khz = 0;
	}
	uint64_t want_khz = want_hz / 1000;
	vm->tsc_khz = (uint64_t)host_khz;
	if (want_khz && host_khz && want_khz != (uint64_t)host_khz) {
		if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_VM_TSC_CONTROL) > 0 &&
		    ioctl(vm->vm_fd, KVM_SET_TSC_KHZ, (unsigned long)want_khz) == 0) {
			vm->tsc_khz = want_khz;
		} else {
			/* Without TSC scaling the guest sees the host rate; say so. */
			vlog_warn("hv: cannot set the guest TSC to %" PRIu64 " kHz (no TSC scaling); "
			          "the guest sees the host's %d kHz", want_khz, host_khz);
		}
	}
	(void)err;
	(void)errlen;
	return 0;
}

static struct vmm_vm *hv_vm_create(const struct vmm_vm_config *cfg, char *err, size_t errlen)
{
	struct hv_vm *vm = calloc(1, sizeof(*vm));
	if (!vm) {
		snprintf(err, errlen, "hv: out of memory");
		return NULL;
	}
	vm->vm_fd = -1;
	pthread_mutex_init(&vm->route_lock, NULL);
	pthread_mutex_init(&vm->slot_lock, NULL);
	vm->ncpus = cfg->ncpus ? cfg->ncpus : 1;
	vm->host = cfg->host;
	vm->host_opaque = cfg->host_opaque;
	vm->apic_bus_hz = cfg->apic_bus_hz ? cfg->apic_bus_hz : VMM_APIC_BUS_HZ_HV;

	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		snprintf(err, errlen, "hv: cannot open /dev/kvm: %s", strerror(errno));
		goto fail;
	}
	if (ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
		snprintf(err, errlen, "hv: /dev/kvm has an unsupported API version");
		goto fail;
	}
	static const struct { int cap; const char *name; } need[] = {
		{ KVM_CAP_USER_MEMORY, "USER_MEMORY" },
		{ KVM_CAP_SPLIT_IRQCHIP, "SPLIT_IRQCHIP" },
		{ KVM_CAP_IMMEDIATE_EXIT, "IMMEDIATE_EXIT" },
		{ KVM_CAP_SET_TSS_ADDR, "SET_TSS_ADDR" },
		{ KVM_CAP_SET_IDENTITY_MAP_ADDR, "SET_IDENTITY_MAP_ADDR" },
		{ KVM_CAP_EXT_CPUID, "EXT_CPUID" },
		{ KVM_CAP_SIGNAL_MSI, "SIGNAL_MSI" },
		{ KVM_CAP_IRQ_ROUTING, "IRQ_ROUTING" },
	};
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, need[i].cap) <= 0) {
			snprintf(err, errlen, "hv: KVM lacks KVM_CAP_%s", need[i].name);
			goto fail;
		}
	}
	vm->run_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->run_size < (int)sizeof(struct kvm_run)) {
		snprintf(err, errlen, "hv: bad KVM_GET_VCPU_MMAP_SIZE");
		goto fail;
	}
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0) {
		snprintf(err, errlen, "hv: KVM_CREATE_VM: %s", strerror(errno));
		goto fail;
	}
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)HV_TSS_ADDR) < 0) {
		snprintf(err, errlen, "hv: KVM_SET_TSS_ADDR: %s", strerror(errno));
		goto fail;
	}
	uint64_t idmap = HV_IDMAP_ADDR;
	if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0) {
		snprintf(err, errlen, "hv: KVM_SET_IDENTITY_MAP_ADDR: %s", strerror(errno));
		goto fail;
	}
	struct kvm_enable_cap cap = { .cap = KVM_CAP_SPLIT_IRQCHIP };
	cap.args[0] = HV_IOAPIC_PINS;
	if (ioctl(vm->vm_fd, KVM_ENABLE_CAP, &cap) < 0) {
		snprintf(err, errlen, "hv: KVM_CAP_SPLIT_IRQCHIP: %s", strerror(errno));
		goto fail;
	}
	if (hv_setup_tsc(vm, cfg->tsc_hz, err, errlen) < 0)
		goto fail;
	vm->tsc_stable = hv_tsc_is_stable();
	if (hv_cpuid_init(vm, err, errlen) < 0)
		goto fail;
	vlog_info("hv: KVM VM created: %u vCPU(s), TSC %" PRIu64 " kHz%s, LAPIC bus %" PRIu64 " Hz",
	          vm->ncpus, vm->tsc_khz, vm->tsc_stable ? " (invariant)" : "", vm->apic_bus_hz);
	return (struct vmm_vm *)(void *)vm;
fail:
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	pthread_mutex_destroy(&vm->route_lock);
	pthread_mutex_destroy(&vm->slot_lock);
	free(vm);
	return NULL;
}

static void hv_vm_destroy(struct vmm_vm *v)
{
	struct hv_vm *vm = hv_vm_of(v);
	if (!vm)
		return;
	close(vm->vm_fd);
	close(vm->kvm_fd);
	pthread_mutex_destroy(&vm->route_lock);
	pthread_mutex_destroy(&vm->slot_lock);
	free(vm);
}

static int hv_vm_set_memory(struct vmm_vm *v, unsigned slot, const struct vmm_mem_region *r)
{
	struct hv_vm *vm = hv_vm_of(v);
	if (slot >= HV_MAX_SLOTS || (r->gpa & 0xFFF) || (r->size & 0xFFF) ||
	    ((uintptr_t)r->hva & 0xFFF)) {
		errno = EINVAL;
		return -1;
	}
	struct kvm_userspace_memory_region m = {
		.slot = slot,
		.flags = ((r->flags & VMM_MEM_READONLY) ? KVM_MEM_READONLY : 0) |
		         ((r->flags & VMM_MEM_LOG_DIRTY) ? KVM_MEM_LOG_DIRTY_PAGES : 0),
		.guest_phys_addr = r->gpa,
		.memory_size = r->size,
		.userspace_addr = (uintptr_t)r->hva,
	};
	pthread_mutex_lock(&vm->slot_lock);
	int rc = ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &m);
	int e = errno;
	if (rc == 0) {
		vm->slots[slot].size = r->size;
		vm->slots[slot].flags = r->flags;
	} else if (!r->size) {
		/* Deleting a slot KVM never had: nothing is mapped there now. */
		vm->slots[slot].size = 0;
	}
	pthread_mutex_unlock(&vm->slot_lock);
	if (rc < 0) {
		vlog_error("hv: memory slot %u at 0x%" PRIx64 " (+0x%" PRIx64 "): %s",
		           slot, r->gpa, r->size, strerror(e));
		errno = e;
		return -1;
	}
	return 0;
}

static int hv_vm_get_dirty(struct vmm_vm *v, unsigned slot, uint64_t *bitmap, size_t words)
{
	struct hv_vm *vm = hv_vm_of(v);
	int rc = -1;

	if (slot >= HV_MAX_SLOTS) {
		errno = EINVAL;
		return -1;
	}
	pthread_mutex_lock(&vm->slot_lock);
	uint64_t pages = vm->slots[slot].size >> 12;
	if (!pages || !(vm->slots[slot].flags & VMM_MEM_LOG_DIRTY) || words < (pages + 63) / 64) {
		errno = EINVAL;
	} else {
		/* KVM fills (pages + 63) / 64 words and write-protects what it
		 * reports before returning, flushing the vCPUs' TLBs. */
		struct kvm_dirty_log d = { .slot = slot, .dirty_bitmap = bitmap };
		memset(bitmap, 0, words * sizeof(*bitmap));
		rc = ioctl(vm->vm_fd, KVM_GET_DIRTY_LOG, &d);
	}
	pthread_mutex_unlock(&vm->slot_lock);
	return rc < 0 ? -1 : 0;
}

/* Rebuild the MSI routes on the IOAPIC GSIs from the level vectors seen. */
static int hv_routes_commit(struct hv_vm *vm)
{
	/* A union, not a struct around the flexible array (clang -Wpedantic). */
	union {
		struct kvm_irq_routing hdr;
		uint8_t raw[sizeof(struct kvm_irq_routing) +
		            HV_IOAPIC_PINS * sizeof(struct kvm_irq_routing_entry)];
	} u;
	memset(&u, 0, sizeof(u));
	struct kvm_irq_routing *r = &u.hdr;
	unsigned n = 0;
	for (unsigned i = 0; i < HV_IOAPIC_PINS; i++) {
		if (!vm->routes[i].used)
			continue;
		r->entries[n].gsi = i;
		r->entries[n].type = KVM_IRQ_ROUTING_MSI;
		r->entries[n].u.msi.address_lo = (uint32_t)vm->routes[i].addr;
		r->entries[n].u.msi.address_hi = (uint32_t)(vm->routes[i].addr >> 32);
		r->entries[n].u.msi.data = vm->routes[i].data;
		n++;
	}
	r->nr = n;
	return ioctl(vm->vm_fd, KVM_SET_GSI_ROUTING, r);
}

/*
 * A level-triggered message must have its vector in a route so that KVM
 * sets the vector in the EOI-exit bitmap and reports the EOI to us.
 */
static void hv_note_level_vector(struct hv_vm *vm, uint64_t addr, uint32_t data)
{
	uint8_t vector = data & 0xFF;
	pthread_mutex_lock(&vm->route_lock);
	int slot = -1;
	for (unsigned i = 0; i < HV_IOAPIC_PINS; i++) {
		if (vm->routes[i].used && (vm->routes[i].data & 0xFF) == vector) {
			slot = (int)i;
			break;
		}
	}
	bool change = true;
	if (slot >= 0) {
		change = vm->routes[slot].addr != addr || vm->routes[slot].data != data;
	} else {
		/* Replace round-robin when all 24 are taken: a stale vector only costs exits. */
		slot = (int)(vm->route_next++ % HV_IOAPIC_PINS);
	}
	if (change) {
		vm->routes[slot].addr = addr;
		vm->routes[slot].data = data;
		vm->routes[slot].used = true;
		if (hv_routes_commit(vm) < 0)
			vlog_error("hv: KVM_SET_GSI_ROUTING: %s", strerror(errno));
	}
	pthread_mutex_unlock(&vm->route_lock);
}

static uint64_t hv_vm_tsc_hz(struct vmm_vm *v)
{
	return hv_vm_of(v)->tsc_khz * 1000;
}

static int hv_vm_msi(struct vmm_vm *v, uint64_t addr, uint32_t data)
{
	struct hv_vm *vm = hv_vm_of(v);
	if (data & (1u << 15))
		hv_note_level_vector(vm, addr, data);
	struct kvm_msi msi = {
		.address_lo = (uint32_t)addr,
		.address_hi = (uint32_t)(addr >> 32),
		.data = data,
	};
	int r = ioctl(vm->vm_fd, KVM_SIGNAL_MSI, &msi);
	return r < 0 ? -1 : 0;
}

/* ---- vCPU ---- */

static void hv_kick_handler(int sig)
{
	(void)sig;   /* its only job is to make KVM_RUN return -EINTR */
}

static pthread_once_t hv_signal_once = PTHREAD_ONCE_INIT;

static void hv_install_signal(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = hv_kick_handler;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;   /* other syscalls of the vCPU thread just restart */
	sigaction(HV_KICK_SIGNAL, &sa, NULL);
}

static struct vmm_vcpu *hv_vcpu_create(struct vmm_vm *v, unsigned id, char *err, size_t errlen)
{
	struct hv_vm *vm = hv_vm_of(v);
	struct hv_vcpu *vcpu = calloc(1, sizeof(*vcpu));
	if (!vcpu) {
		snprintf(err, errlen, "hv: out of memory");
		return NULL;
	}
	vcpu->vm = vm;
	vcpu->id = id;
	vcpu->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (vcpu->fd < 0) {
		snprintf(err, errlen, "hv: KVM_CREATE_VCPU %u: %s", id, strerror(errno));
		free(vcpu);
		return NULL;
	}
	vcpu->run = mmap(NULL, (size_t)vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
	                 vcpu->fd, 0);
	if (vcpu->run == MAP_FAILED) {
		snprintf(err, errlen, "hv: mmap kvm_run: %s", strerror(errno));
		close(vcpu->fd);
		free(vcpu);
		return NULL;
	}
	if (vm->tsc_khz == 0) {
		int khz = ioctl(vcpu->fd, KVM_GET_TSC_KHZ, 0);
		if (khz > 0)
			vm->tsc_khz = (uint64_t)khz;
	}
	pthread_once(&hv_signal_once, hv_install_signal);
	vcpu->has_xsave = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE) > 0;
	vcpu->has_xcrs = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XCRS) > 0;
	if (hv_cpuid_set_vcpu(vcpu) < 0) {
		snprintf(err, errlen, "hv: KVM_SET_CPUID2 on vCPU %u: %s", id, strerror(errno));
		goto fail;
	}
	if (hv_vcpu_init_msrs(vcpu) < 0) {
		snprintf(err, errlen, "hv: MSR list on vCPU %u: %s", id, strerror(errno));
		goto fail;
	}
	if (hv_vcpu_reset((struct vmm_vcpu *)(void *)vcpu) < 0) {
		snprintf(err, errlen, "hv: reset of vCPU %u: %s", id, strerror(errno));
		goto fail;
	}
	return (struct vmm_vcpu *)(void *)vcpu;
fail:
	munmap(vcpu->run, (size_t)vm->run_size);
	close(vcpu->fd);
	free(vcpu);
	return NULL;
}

static void hv_vcpu_destroy(struct vmm_vcpu *v)
{
	struct hv_vcpu *vcpu = hv_vcpu_of(v);
	if (!vcpu)
		return;
	munmap(vcpu->run, (size_t)vcpu->vm->run_size);
	close(vcpu->fd);
	free(vcpu);
}

static void hv_vcpu_kick(struct vmm_vcpu *v)
{
	struct hv_vcpu *vcpu = hv_vcpu_of(v);
	/* immediate_exit covers the window just before KVM_RUN; the signal the run. */
	__atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	if (atomic_load(&vcpu->thread_known) && !pthread_equal(vcpu->thread, pthread_self()))
		pthread_kill(vcpu->thread, HV_KICK_SIGNAL);
}

/* ---- exits ---- */

/* A handler returns 1 to re-enter the guest, 0 when *exit is for the platform. */
typedef int (*hv_exit_fn)(struct hv_vcpu *vcpu, struct vmm_exit *exit);

static int hv_exit_io(struct hv_vcpu *vcpu, struct vmm_exit *exit)
{
	struct kvm_run *run = vcpu->run;
	uint8_t size = run->io.size;
	uint32_t count = run->io.count;
	if ((size != 1 && size != 2 && size != 4) || count == 0 ||
	    run->io.data_offset + (uint64_t)size * count > (uint64_t)vcpu->vm->run_size) {
		exit->reason = VMM_EXIT_INTERNAL;
		snprintf(exit->msg, sizeof(exit->msg), "hv: malformed KVM_EXIT_IO (size %u count %u)",
		         size, count);
		return 0;
	}
	uint8_t *area = (uint8_t *)run + run->io.data_offset;
	exit->reason = VMM_EXIT_IO;
	exit->io.port = run->io.port;
	exit->io.size = size;
	exit->io.write = run->io.direction == KVM_EXIT_IO_OUT;
	exit->io.count = count;
	/*
	 * data points into kvm_run in every case: KVM takes an IN's value from
	 * there on the next KVM_RUN, so the platform may reuse its exit struct.
	 */
	exit->io.data = area;
	if (count == 1 && exit->io.write)
		memcpy(exit->io.inline_data, area, size);
	vcpu->pending = HV_PEND_PIO;   /* KVM finishes the instruction on the next KVM_RUN */
	return 0;
}

static int hv_exit_mmio(struct hv_vcpu *vcpu, struct vmm_exit *exit)
{
	struct kvm_run *run = vcpu->run;
	uint32_t len = run->mmio.len;
	if (len == 0 || len > 8) {
		exit->reason = VMM_EXIT_INTERNAL;
		snprintf(exit->msg, sizeof(exit->msg), "hv: malformed KVM_EXIT_MMIO (len %u)", len);
		return 0;
	}
	const struct hv_vm *vm = vcpu->vm;
	if (vm->host && vm->host->mmio) {
		/*
		 * Dispatch here: the value of a read lives in the exit struct, which
		 * the platform clears before the next vcpu_run; kvm_run holds it.
		 */
		vm->host->mmio(vm->host_opaque, vcpu->id, run->mmio.phys_addr, len,
		               run->mmio.is_write, run->mmio.data);
		return 1;
	}
	exit->reason = VMM_EXIT_MMIO;
	exit->mmio.gpa = run->mmio.phys_addr;
	exit->mmio.size = (uint8_t)len;
	exit->mmio.write = run->mmio.is_write;
	memset(exit->mmio.data, 0, sizeof(exit->mmio.data));
	if (exit->mmio.write)
		memcpy(exit->mmio.data, run->mmio.data, len);
	vcpu->pending = exit->mmio.write ? HV_PEND_MMIO_WRITE : HV_PEND_MMIO_READ;
	return 0;
}

static int hv_exit_eoi(struct hv_vcpu *vcpu, struct vmm_exit *exit)
{
	(void)exit;
	const struct hv_vm *vm = vcpu->vm;
	if (vm->host && vm->host->eoi)
		vm->host->eoi(vm->host_opaque, vcpu->run->eoi.vector);
	return 1;
}

static int hv_exit_irq_window(struct hv_vcpu *vcpu, struct vmm_exit *exit)
{
	(void)vcpu;
	(void)exit;
	return 1;   /* the injection check before the next KVM_RUN does the work */
}

static int hv_exit_hlt(struct hv_vcpu *vcpu, struct vmm_exit *exit)
{
	(void)vcpu;
	exit->reason = VMM_EXIT_HLT;
	return 0;
}

static int hv_exit_shutdown(struct hv_vcpu *vcpu, struct vmm_exit *exit)
{
	struct kvm_regs regs;
	exit->reason = VMM_EXIT_SHUTDOWN;
	if (ioctl(vcpu->fd, KVM_GET_REGS, &regs) == 0)
		snprintf(exit->msg, sizeof(exit->msg), "triple fault on vCPU %u at RIP 0x%llx",
		         vcpu->id, (unsigned long long)regs.rip);
	else
		snprintf(exit->msg, sizeof(exit->msg), "triple fault on vCPU %u", vcpu->id);
	return 0;
}

static int hv_exit_intr(struct hv_vcpu *vcpu, struct vmm_exit *exit)
{
	(void)vcpu;
	exit->reason = VMM_EXIT_KICKED;
	return 0;
}

static int hv_exit_fail_entry(struct hv_vcpu *vcpu, struct vmm_exit *exit)
{
	exit->reason = VMM_EXIT_INTERNAL;
	snprintf(exit->msg, sizeof(exit->msg),
	         "hv: VM entry failed on vCPU %u (hardware reason 0x%llx, host CPU %u)", vcpu->id,
	         (unsigned long long)vcpu->run->fail_entry.hardware_entry_failure_reason,
	         vcpu->run->fail_entry.cpu);
	return 0;
}

static int hv_exit_internal_error(struct hv_vcpu *vcpu, struct vmm_exit *exit)
{
	static const char *const sub[] = {
		[KVM_INTERNAL_ERROR_EMULATION] = "instruction emulation failed",
		[KVM_INTERNAL_ERROR_SIMUL_EX] = "exception while delivering an exception",
		[KVM_INTERNAL_ERROR_DELIVERY_EV] = "event delivery failed",
	};
	uint32_t s = vcpu->run->internal.suberror;
	const char *what = s < sizeof(sub) / sizeof(sub[0]) && sub[s] ? sub[s] : "internal error";
	struct kvm_regs regs;
	unsigned long long rip = 0;
	if (ioctl(vcpu->fd, KVM_GET_REGS, &regs) == 0)
		rip = regs.rip;
	exit->reason = VMM_EXIT_INTERNAL;
	snprintf(exit->msg, sizeof(exit->msg), "hv: KVM %s (suberror %u) on vCPU %u at RIP 0x%llx",
	         what, s, vcpu->id, rip);
	return 0;
}

static int hv_exit_system_event(struct hv_vcpu *vcpu, struct vmm_exit *exit)
{
	switch (vcpu->run->system_event.type) {
	case KVM_SYSTEM_EVENT_RESET:
		exit->reason = VMM_EXIT_RESET;
		snprintf(exit->msg, sizeof(exit->msg), "KVM system event: reset");
		return 0;
	case KVM_SYSTEM_EVENT_SHUTDOWN:
		exit->reason = VMM_EXIT_SHUTDOWN;
		snprintf(exit->msg, sizeof(exit->msg), "KVM system event: shutdown");
		return 0;
	default:
		exit->reason = VMM_EXIT_UNKNOWN;
		exit->code = KVM_EXIT_SYSTEM_EVENT;
		snprintf(exit->msg, sizeof(exit->msg), "KVM system event %u",
		         vcpu->run->system_event.type);
		return 0;
	}
}

static const hv_exit_fn hv_exit_table[HV_EXIT_TABLE] = {
	[KVM_EXIT_IO] = hv_exit_io,
	[KVM_EXIT_MMIO] = hv_exit_mmio,
	[KVM_EXIT_IOAPIC_EOI] = hv_exit_eoi,
	[KVM_EXIT_IRQ_WINDOW_OPEN] = hv_exit_irq_window,
	[KVM_EXIT_HLT] = hv_exit_hlt,
	[KVM_EXIT_SHUTDOWN] = hv_exit_shutdown,
	[KVM_EXIT_INTR] = hv_exit_intr,
	[KVM_EXIT_FAIL_ENTRY] = hv_exit_fail_entry,
	[KVM_EXIT_INTERNAL_ERROR] = hv_exit_internal_error,
	[KVM_EXIT_SYSTEM_EVENT] = hv_exit_system_event,
};

static const char *const hv_exit_names[HV_EXIT_TABLE] = {
	[KVM_EXIT_UNKNOWN] = "unknown", [KVM_EXIT_EXCEPTION] = "exception",
	[KVM_EXIT_IO] = "io", [KVM_EXIT_HYPERCALL] = "hypercall", [KVM_EXIT_DEBUG] = "debug",
	[KVM_EXIT_HLT] = "hlt", [KVM_EXIT_MMIO] = "mmio",
	[KVM_EXIT_IRQ_WINDOW_OPEN] = "irq_window", [KVM_EXIT_SHUTDOWN] = "shutdown",
	[KVM_EXIT_FAIL_ENTRY] = "fail_entry", [KVM_EXIT_INTR] = "intr",
	[KVM_EXIT_NMI] = "nmi", [KVM_EXIT_INTERNAL_ERROR] = "internal_error",
	[KVM_EXIT_SYSTEM_EVENT] = "system_event", [KVM_EXIT_IOAPIC_EOI] = "ioapic_eoi",
};

/* Hand the platform's answer to an MMIO read (exit path) back to KVM. */
static void hv_complete(struct hv_vcpu *vcpu, const struct vmm_exit *exit)
{
	struct kvm_run *run = vcpu->run;
	if (vcpu->pending == HV_PEND_MMIO_READ && exit && exit->reason == VMM_EXIT_MMIO)
		memcpy(run->mmio.data, exit->mmio.data, run->mmio.len);
	vcpu->pending = HV_PEND_NONE;
}

/* Deliver the user-space PIC's INTR when the LAPIC accepts ExtINT. */
static void hv_inject_extint(struct hv_vcpu *vcpu)
{
	const struct hv_vm *vm = vcpu->vm;
	struct kvm_run *run = vcpu->run;
	if (vcpu->id != 0 || !vm->host || !vm->host->pic_pending ||
	    !vm->host->pic_pending(vm->host_opaque)) {
		run->request_interrupt_window = 0;
		return;
	}
	if (run->ready_for_interrupt_injection && run->if_flag) {
		int vec = vm->host->pic_ack(vm->host_opaque);
		if (vec >= 0 && vec <= 255) {
			struct kvm_interrupt irq = { .irq = (uint32_t)vec };
			if (ioctl(vcpu->fd, KVM_INTERRUPT, &irq) == 0)
				atomic_fetch_add(&vcpu->vm->injected_extint, 1);
			else if (errno != EEXIST)
				vlog_error("hv: KVM_INTERRUPT %d: %s", vec, strerror(errno));
		}
		/* Another request may be pending behind it. */
		run->request_interrupt_window = vm->host->pic_pending(vm->host_opaque);
	} else {
		run->request_interrupt_window = 1;
	}
}

int hv_vcpu_flush_pending(struct hv_vcpu *vcpu)
{
	if (vcpu->pending == HV_PEND_NONE)
		return 0;
	/* The platform filled nothing we can see: KVM completes with what it holds. */
	vcpu->pending = HV_PEND_NONE;
	vcpu->run->immediate_exit = 1;
	int r = ioctl(vcpu->fd, KVM_RUN, 0);
	vcpu->run->immediate_exit = 0;
	if (r < 0 && errno != EINTR)
		return -1;
	return 0;
}

static void hv_log_first_exit(struct hv_vcpu *vcpu)
{
	bool expected = false;
	if (!atomic_compare_exchange_strong(&vcpu->vm->first_exit_logged, &expected, true))
		return;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	const struct kvm_run *run = vcpu->run;
	unsigned reason = run->exit_reason;
	char what[48] = "";
	if (reason == KVM_EXIT_IO)
		snprintf(what, sizeof(what), " (%s port 0x%x)",
		         run->io.direction == KVM_EXIT_IO_OUT ? "OUT" : "IN", run->io.port);
	/* bench_hv_start reads this line: the moment the guest's first exit reached us. */
	vlog_info("hv: first guest exit on vCPU %u: %s%s at monotonic %lld.%09ld", vcpu->id,
	          reason < HV_EXIT_TABLE && hv_exit_names[reason] ? hv_exit_names[reason] : "?",
	          what, (long long)ts.tv_sec, ts.tv_nsec);
}

static int hv_vcpu_run(struct vmm_vcpu *v, struct vmm_exit *exit)
{
	struct hv_vcpu *vcpu = hv_vcpu_of(v);
	struct hv_vm *vm = vcpu->vm;
	struct kvm_run *run = vcpu->run;

	if (!atomic_load(&vcpu->thread_known)) {
		vcpu->thread = pthread_self();
		atomic_store(&vcpu->thread_known, true);
		/* The kick signal must be deliverable on this thread for KVM_RUN to see it. */
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, HV_KICK_SIGNAL);
		pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	}
	hv_complete(vcpu, exit);

	for (;;) {
		memset(exit, 0, sizeof(*exit));
		hv_inject_extint(vcpu);
		uint64_t t0 = hv_now_ns();
		int r = ioctl(vcpu->fd, KVM_RUN, 0);
		int e = errno;
		atomic_fetch_add(&vm->run_ns, hv_now_ns() - t0);
		if (r < 0) {
			if (e == EINTR || e == EAGAIN) {
				__atomic_store_n(&run->immediate_exit, 0, __ATOMIC_SEQ_CST);
				atomic_fetch_add(&vm->exit_count[KVM_EXIT_INTR], 1);
				exit->reason = VMM_EXIT_KICKED;
				return 0;
			}
			exit->reason = VMM_EXIT_INTERNAL;
			snprintf(exit->msg, sizeof(exit->msg), "hv: KVM_RUN on vCPU %u: %s", vcpu->id,
			         strerror(e));
			errno = e;
			return -1;
		}
		unsigned reason = run->exit_reason;
		if (!atomic_load_explicit(&vm->first_exit_logged, memory_order_relaxed))
			hv_log_first_exit(vcpu);
		if (reason < HV_EXIT_TABLE)
			atomic_fetch_add_explicit(&vm->exit_count[reason], 1, memory_order_relaxed);
		hv_exit_fn fn = reason < HV_EXIT_TABLE ? hv_exit_table[reason] : NULL;
		if (!fn) {
			exit->reason = VMM_EXIT_UNKNOWN;
			exit->code = reason;
			snprintf(exit->msg, sizeof(exit->msg), "hv: unhandled KVM exit reason %u (%s)",
			         reason, reason < HV_EXIT_TABLE && hv_exit_names[reason] ?
			                 hv_exit_names[reason] : "?");
			return 0;
		}
		if (fn(vcpu, exit) == 0) {
			if (exit->reason == VMM_EXIT_KICKED)
				__atomic_store_n(&run->immediate_exit, 0, __ATOMIC_SEQ_CST);
			return 0;
		}
	}
}

static void hv_vm_stats(struct vmm_vm *v, void (*emit)(void *ctx, const char *name,
                                                       uint64_t count, uint64_t ns),
                        void *ctx)
{
	struct hv_vm *vm = hv_vm_of(v);
	char name[48];
	for (unsigned i = 0; i < HV_EXIT_TABLE; i++) {
		uint64_t n = atomic_load(&vm->exit_count[i]);
		if (!n)
			continue;
		if (hv_exit_names[i])
			snprintf(name, sizeof(name), "hv.exit.%s", hv_exit_names[i]);
		else
			snprintf(name, sizeof(name), "hv.exit.%u", i);
		emit(ctx, name, n, 0);
	}
	emit(ctx, "hv.kvm_run", 0, atomic_load(&vm->run_ns));
	emit(ctx, "hv.extint_injected", atomic_load(&vm->injected_extint), 0);
}

const struct vmm_engine vmm_engine_hv = {
	.name = "hv",
	.probe = hv_probe,
	.vm_create = hv_vm_create,
	.vm_destroy = hv_vm_destroy,
	.vm_set_memory = hv_vm_set_memory,
	.vm_tsc_hz = hv_vm_tsc_hz,
	.vm_msi = hv_vm_msi,
	.vcpu_create = hv_vcpu_create,
	.vcpu_destroy = hv_vcpu_destroy,
	.vcpu_run = hv_vcpu_run,
	.vcpu_kick = hv_vcpu_kick,
	.get_regs = hv_get_regs,
	.set_regs = hv_set_regs,
	.get_sregs = hv_get_sregs,
	.set_sregs = hv_set_sregs,
	.get_fpu = hv_get_fpu,
	.set_fpu = hv_set_fpu,
	.get_msr = hv_get_msr,
	.set_msr = hv_set_msr,
	.vcpu_reset = hv_vcpu_reset,
	.vcpu_save = hv_vcpu_save,
	.vcpu_restore = hv_vcpu_restore,
	.vm_stats = hv_vm_stats,
	.vm_get_dirty = hv_vm_get_dirty,
};

/*
 * vm.c — creating and running one VM: config, memory, devices, engine,
 * power requests.  The vCPU threads live in vcpu.c.
 */
#include "vm.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "acpi.h"
#include "backdoor.h"
#include "linuxboot.h"
#include "log.h"
#include "vcpu.h"

/* ---- the device class registry (filled by VDEV_REGISTER constructors) ---- */

static const struct vdev_class *vdev_class_table[VDEV_MAX_CLASSES];
static unsigned vdev_class_count;

void vdev_register_class(const struct vdev_class *cls)
{
	if (vdev_class_count < VDEV_MAX_CLASSES)
		vdev_class_table[vdev_class_count++] = cls;
}

const struct vdev_class *const *vdev_classes(unsigned *count)
{
	*count = vdev_class_count;
	return vdev_class_table;
}

static int vm_class_cmp(const void *a, const void *b)
{
	const struct vdev_class *x = *(const struct vdev_class *const *)a;
	const struct vdev_class *y = *(const struct vdev_class *const *)b;
	if (x->order != y->order)
		return x->order < y->order ? -1 : 1;
	return strcmp(x->name, y->name);
}

static int vm_create_devices(struct vmx_vm *vm, char *err, size_t errlen)
{
	const struct vdev_class *sorted[VDEV_MAX_CLASSES];
	struct vdev **tail = &vm->devices;

	memcpy(sorted, vdev_class_table, vdev_class_count * sizeof(sorted[0]));
	qsort(sorted, vdev_class_count, sizeof(sorted[0]), vm_class_cmp);
	for (unsigned i = 0; i < vdev_class_count; i++) {
		const struct vdev_class *cls = sorted[i];
		struct vdev *d;
		if (cls->present && !cls->present(vm))
			continue;
		d = calloc(1, sizeof(*d));
		if (!d) {
			snprintf(err, errlen, "out of memory creating %s", cls->name);
			return -1;
		}
		d->cls = cls;
		d->vm = vm;
		if (cls->init(d, err, errlen) != 0) {
			free(d);
			return -1;
		}
		*tail = d;
		tail = &d->next;
		vlog_debug("device %s created", cls->name);
	}
	return 0;
}

void *vmx_vm_device(struct vmx_vm *vm, const char *class_name)
{
	for (struct vdev *d = vm->devices; d; d = d->next)
		if (strcmp(d->cls->name, class_name) == 0)
			return d->priv;
	return NULL;
}

static void vm_reset_devices(struct vmx_vm *vm)
{
	for (struct vdev *d = vm->devices; d; d = d->next)
		if (d->cls->reset)
			d->cls->reset(d);
}

/* ---- host ops handed to the engine ---- */

static bool vm_host_pic_pending(void *opaque)
{
	struct vmx_vm *vm = opaque;
	return vm->pic_ops && vm->pic_ops->pending(vm->pic);
}

static int vm_host_pic_ack(void *opaque)
{
	struct vmx_vm *vm = opaque;
	return vm->pic_ops ? vm->pic_ops->ack(vm->pic) : 0xFF;
}

static void vm_host_eoi(void *opaque, uint8_t vector)
{
	struct vmx_vm *vm = opaque;
	if (vm->ioapic_eoi)
		vm->ioapic_eoi(vm->ioapic, vector);
}

static void vm_host_pio(void *opaque, unsigned vcpu_id, uint16_t port, unsigned size, bool write,
                        uint32_t count, uint8_t *data)
{
	struct vmx_vm *vm = opaque;
	if (vcpu_id >= vm->ncpus)
		return;
	vmx_vcpu_pio(&vm->vcpus[vcpu_id], port, size, write, count, data);
}

static void vm_host_mmio(void *opaque, unsigned vcpu_id, uint64_t gpa, unsigned size, bool write,
                         uint8_t *data)
{
	struct vmx_vm *vm = opaque;
	if (vcpu_id >= vm->ncpus)
		return;
	vmx_vcpu_mmio(&vm->vcpus[vcpu_id], gpa, size, write, data);
}

static void vm_host_shutdown(void *opaque, unsigned vcpu_id, const char *why)
{
	struct vmx_vm *vm = opaque;
	vmx_vcpu_shutdown(vm, vcpu_id, why);
}

/* ---- power ---- */

static void vm_power_on_loop(void *opaque);

void vmx_vm_request_power(struct vmx_vm *vm, enum vmx_power_request req, const char *why)
{
	int none = VMX_POWER_NONE;

	/* The first request wins until the loop has handled it; off beats reset. */
	if (!atomic_compare_exchange_strong(&vm->power_request, &none, (int)req)) {
		if (req == VMX_POWER_OFF || req == VMX_POWER_FAIL)
			atomic_store(&vm->power_request, (int)req);
		else
			return;
	}
	vmx_mutex_lock(&vm->power_lock);
	snprintf(vm->fail_reason, sizeof(vm->fail_reason), "%s", why ? why : "");
	vmx_mutex_unlock(&vm->power_lock);
	atomic_store(&vm->stopping, true);
	vmx_vm_kick(vm, -1);
	vmx_loop_call(vm->loop, vm_power_on_loop, vm);
}

void vmx_vm_request_exit(struct vmx_vm *vm, int status, const char *why)
{
	vm->exit_status = status;
	vmx_vm_request_power(vm, status == 0 ? VMX_POWER_OFF : VMX_POWER_FAIL, why);
}

int vmx_vm_power_button(struct vmx_vm *vm)
{
	acpi_power_button(vm);
	return 0;
}

void vmx_vm_kick(struct vmx_vm *vm, int vcpu_id)
{
	for (unsigned i = 0; i < vm->ncpus; i++)
		if ((vcpu_id < 0 || (unsigned)vcpu_id == i) && vm->vcpus[i].ev)
			vm->engine->vcpu_kick(vm->vcpus[i].ev);
}

/* Load firmware or kernel into memory and set the vCPUs' start state. */
static int vm_boot(struct vmx_vm *vm, char *err, size_t errlen)
{
	for (unsigned i = 0; i < vm->ncpus; i++) {
		if (vm->engine->vcpu_reset(vm->vcpus[i].ev) != 0) {
			snprintf(err, errlen, "vCPU %u: reset failed", i);
			return -1;
		}
	}
	if (vm->boot_kernel && linuxboot_load(vm, err, errlen) != 0)
		return -1;
	/* The loader wrote guest RAM behind the engine's back (bt caches code). */
	if (vm->engine->vm_mem_written)
		for (unsigned i = 0; i < vm->mem.nregions; i++)
			if (!(vm->mem.regions[i].flags & GMEM_ROM))
				vm->engine->vm_mem_written(vm->evm, vm->mem.regions[i].gpa,
				                           vm->mem.regions[i].size);
	return 0;
}

/* Runs on the loop thread after any power request. */
static void vm_power_on_loop(void *opaque)
{
	struct vmx_vm *vm = opaque;
	int req = atomic_exchange(&vm->power_request, VMX_POWER_NONE);
	char err[512], reason[256];

	if (req == VMX_POWER_NONE)
		return;
	vmx_mutex_lock(&vm->power_lock);
	snprintf(reason, sizeof(reason), "%s", vm->fail_reason);
	vmx_mutex_unlock(&vm->power_lock);

	vmx_vcpus_stop(vm);
	switch (req) {
	case VMX_POWER_OFF:
		vlog_info("power off: %s", reason);
		vmx_loop_quit(vm->loop, vm->exit_status);
		return;
	case VMX_POWER_FAIL:
		vlog_error("VM stopped: %s", reason);
		if (vm->exit_status == 0)
			vm->exit_status = 1;
		vmx_loop_quit(vm->loop, vm->exit_status);
		return;
	case VMX_POWER_RESET:
		vlog_info("reset: %s", reason);
		vm->resets++;
		vm_reset_devices(vm);
		if (vm_boot(vm, err, sizeof(err)) != 0) {
			vlog_error("reset failed: %s", err);
			vm->exit_status = 1;
			vmx_loop_quit(vm->loop, 1);
			return;
		}
		atomic_store(&vm->stopping, false);
		if (vmx_vcpus_start(vm, err, sizeof(err)) != 0) {
			vlog_error("%s", err);
			vm->exit_status = 1;
			vmx_loop_quit(vm->loop, 1);
		}
		return;
	default:
		return;
	}
}

/* ---- creation ---- */

static char *vm_dirname(const char *path)
{
	char *copy = strdup(path), *slash;
	if (!copy)
		return NULL;
	slash = strrchr(copy, '/');
	if (!slash) {
		free(copy);
		return strdup(".");
	}
	if (slash == copy)
		slash[1] = 0;
	else
		*slash = 0;
	return copy;
}

static int vm_read_config(struct vmx_vm *vm, char *err, size_t errlen)
{
	static const char *const engines[] = { "auto", "hv", "bt", NULL };
	uint64_t memsize, ncpus;
	const char *engine_name, *name;
	char why[512];

	if (vmxcfg_get_u64(vm->cfg, "memsize", 256, 4, 1048576, &memsize, err, errlen) != 0)
		return -1;
	if (memsize % 4) {
		snprintf(err, errlen, "%s:%u: memsize = \"%llu\" is not a multiple of 4 MB",
		         vmxcfg_path(vm->cfg), vmxcfg_line(vm->cfg, "memsize"),
		         (unsigned long long)memsize);
		return -1;
	}
	vm->memsize_mb = memsize;
	if (vmxcfg_get_u64(vm->cfg, "numvcpus", 1, 1, VMX_MAX_VCPUS, &ncpus, err, errlen) != 0)
		return -1;
	vm->ncpus = (unsigned)ncpus;
	if (vmxcfg_get_enum(vm->cfg, "monitor.engine", "auto", engines, &engine_name, err, errlen) != 0)
		return -1;
	name = vmxcfg_get(vm->cfg, "displayName");
	vm->name = strdup(name ? name : "Virtual Machine");

	vm->engine = vmm_engine_select(engine_name, why, sizeof(why));
	if (!vm->engine) {
		snprintf(err, errlen, "%s: monitor.engine = \"%s\": %s", vmxcfg_path(vm->cfg),
		         engine_name, why);
		return -1;
	}
	vlog_info("monitor: %s", why);
	if (strcmp(engine_name, "auto") == 0 && strcmp(vm->engine->name, "hv") != 0)
		fprintf(stderr, "vireo: %s\n", why);
	if (vm->ncpus > 1 && strcmp(vm->engine->name, "bt") == 0) {
		snprintf(err, errlen, "%s:%u: numvcpus = \"%u\": the bt engine runs one vCPU",
		         vmxcfg_path(vm->cfg), vmxcfg_line(vm->cfg, "numvcpus"), vm->ncpus);
		return -1;
	}
	return 0;
}

/* Debian's SeaBIOS (package seabios), used when no firmware is named. */
#define VM_DEFAULT_BIOS "/usr/share/seabios/bios-256k.bin"
/* PAM slots: 13 segments, plus one where the ROM's low alias starts mid-segment. */
#define VM_PAM_SLOTS (VMX_PAM_SEGMENTS + 1)

static int vm_load_firmware(struct vmx_vm *vm, const char *path, const char *key, char *err,
                            size_t errlen)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long size;
	int ret = -1;

	if (!f) {
		if (key)
			snprintf(err, errlen, "%s: %s = \"%s\": %s", vmxcfg_path(vm->cfg), key, path,
			         strerror(errno));
		else
			snprintf(err, errlen, "%s: no linux.kernel, and the default firmware %s: %s "
			         "(install Debian's seabios package, or set bios440.filename)",
			         vmxcfg_path(vm->cfg), path, strerror(errno));
		return -1;
	}
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	rewind(f);
	if (size <= 0 || size > 16 * 1024 * 1024 || size % 4096) {
		snprintf(err, errlen, "%s: %s = \"%s\": size %ld is not a multiple of 4 KiB up to 16 MiB",
		         vmxcfg_path(vm->cfg), key ? key : "firmware", path, size);
		fclose(f);
		return -1;
	}
	buf = malloc((size_t)size);
	if (buf && fread(buf, 1, (size_t)size, f) == (size_t)size) {
		/*
		 * The ROM ends at 4 GiB; its last 128 KiB also appear below 1 MiB
		 * while the PAM registers send reads there to ROM (reset state).
		 */
		if (gmem_add_rom(&vm->mem, VMX_4G - (uint64_t)size, buf, (size_t)size, "bios", err, errlen) == 0) {
			const struct gmem_region *r = &vm->mem.regions[vm->mem.nregions - 1];
			static const uint8_t pam_reset[7];
			vm->bios_low = r->hva + r->size - (r->size > 0x20000 ? 0x20000 : r->size);
			vm->pam_slot = gmem_reserve_slots(&vm->mem, VM_PAM_SLOTS);
			if (vm->pam_slot < 0) {
				snprintf(err, errlen, "firmware: no memory slots left for the PAM windows");
			} else {
				vmx_vm_set_pam(vm, pam_reset);
				ret = 0;
			}
		}
	} else {
		snprintf(err, errlen, "%s: cannot read %s", vmxcfg_path(vm->cfg), path);
	}
	free(buf);
	fclose(f);
	return ret;
}

/* One 4 KiB page of 0xC0000-0xFFFFF as the PAM registers map it (hva NULL: unmapped). */
static void vm_pam_page(struct vmx_vm *vm, const uint8_t pam[7], uint64_t low_len, uint64_t gpa,
                        uint8_t **hva, uint32_t *flags)
{
	unsigned attr;

	if (gpa >= 0xF0000) {
		attr = pam[0] >> 4;
	} else {
		unsigned seg = (unsigned)((gpa - 0xC0000) >> 14);   /* 16 KiB segments */
		attr = (seg & 1) ? pam[1 + seg / 2] >> 4 : pam[1 + seg / 2];
	}
	attr &= 3;
	if (attr & 1) {
		/* Shadow RAM: read-only until the write-enable bit is set too. */
		*hva = vm->mem.ram + gpa;
		*flags = (attr & 2) ? GMEM_RAM : GMEM_ROM;
		return;
	}
	/* Reads go to the PCI/ROM side (write-only shadow is not modelled: writes drop). */
	*flags = GMEM_ROM;
	*hva = gpa >= GMEM_LEGACY_END - low_len ? vm->bios_low + (gpa - (GMEM_LEGACY_END - low_len)) : NULL;
}

void vmx_vm_set_pam(struct vmx_vm *vm, const uint8_t pam[7])
{
	struct { uint64_t gpa, size; uint8_t *hva; uint32_t flags; } run[VM_PAM_SLOTS];
	unsigned nrun = 0;
	uint64_t low_len = 0;

	if (!vm->bios_low || vm->pam_slot < 0)
		return;
	memcpy(vm->pam, pam, sizeof(vm->pam));
	for (unsigned i = 0; i < vm->mem.nregions; i++) {
		const struct gmem_region *r = &vm->mem.regions[i];
		if (!(r->flags & GMEM_ALIAS) && r->size && vm->bios_low >= r->hva &&
		    vm->bios_low < r->hva + r->size)
			low_len = (uint64_t)(r->hva + r->size - vm->bios_low);
	}
	for (uint64_t gpa = 0xC0000; gpa < GMEM_LEGACY_END; gpa += 4096) {
		uint8_t *hva;
		uint32_t flags;
		vm_pam_page(vm, pam, low_len, gpa, &hva, &flags);
		if (!hva)
			continue;
		if (nrun && run[nrun - 1].gpa + run[nrun - 1].size == gpa && run[nrun - 1].flags == flags &&
		    run[nrun - 1].hva + run[nrun - 1].size == hva) {
			run[nrun - 1].size += 4096;
			continue;
		}
		if (nrun == VM_PAM_SLOTS)
			break;   /* cannot happen: at most one extra split at the ROM alias start */
		run[nrun].gpa = gpa;
		run[nrun].size = 4096;
		run[nrun].hva = hva;
		run[nrun].flags = flags;
		nrun++;
	}
	/* Empty every slot that changes first: the new runs may overlap old ones. */
	for (unsigned i = 0; i < VM_PAM_SLOTS; i++) {
		unsigned idx = (unsigned)vm->pam_slot + i;
		struct gmem_region *r = &vm->mem.regions[idx];
		bool same = i < nrun ? (r->gpa == run[i].gpa && r->size == run[i].size &&
		                        r->hva == run[i].hva && (r->flags & GMEM_ROM) == run[i].flags)
		                     : r->size == 0;
		if (same || r->size == 0)
			continue;
		vmx_vm_set_mem_slot(vm, (int)idx, 0, 0, NULL, 0, NULL);
	}
	for (unsigned i = 0; i < nrun; i++) {
		unsigned idx = (unsigned)vm->pam_slot + i;
		if (vm->mem.regions[idx].size)
			continue;   /* unchanged */
		vmx_vm_set_mem_slot(vm, (int)idx, run[i].gpa, run[i].size, run[i].hva, run[i].flags,
		                    run[i].flags & GMEM_ROM ? (run[i].hva >= vm->mem.ram &&
		                                               run[i].hva < vm->mem.ram + vm->mem.ram_size
		                                               ? "shadow-ro" : "bios-low")
		                                            : "shadow-rw");
	}
	vlog_debug("PAM %02x %02x %02x %02x %02x %02x %02x: %u window(s)", pam[0], pam[1], pam[2],
	           pam[3], pam[4], pam[5], pam[6], nrun);
}

struct vmx_vm *vmx_vm_create(struct vmxcfg *cfg, char *err, size_t errlen)
{
	struct vmx_vm *vm = calloc(1, sizeof(*vm));
	const char *bios, *kernel;
	struct vmm_vm_config ecfg;
	bool trace = false;

	if (!vm) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	vm->cfg = cfg;
	vm->mem.fd = -1;
	vm->pam_slot = -1;
	vm->dir = vm_dirname(vmxcfg_path(cfg));
	vmx_mutex_init(&vm->irq_lock, VMX_RANK_IRQ, "irq");
	vmx_mutex_init(&vm->power_lock, VMX_RANK_VM, "power");
	iobus_init(&vm->pio, "pio");
	iobus_init(&vm->mmio, "mmio");
	vm->loop = vmx_loop_new();
	if (!vm->loop) {
		snprintf(err, errlen, "cannot create the poll loop: %s", strerror(errno));
		goto fail;
	}
	if (vm_read_config(vm, err, errlen) != 0)
		goto fail;
	if (vmxcfg_get_bool(cfg, "vireo.trace", false, &trace, err, errlen) != 0)
		goto fail;

	if (gmem_init(&vm->mem, vm->memsize_mb << 20, err, errlen) != 0)
		goto fail;

	bios = vmxcfg_get(cfg, "bios440.filename");
	kernel = vmxcfg_get(cfg, "linux.kernel");
	if (bios && kernel) {
		snprintf(err, errlen, "%s: both bios440.filename and linux.kernel are set; choose one",
		         vmxcfg_path(cfg));
		goto fail;
	}
	if (kernel) {
		vm->boot_kernel = true;
		if (linuxboot_check(vm, err, errlen) != 0)
			goto fail;
		if (gmem_map_low_ram(&vm->mem, 0xC0000, 0x40000, "ram-legacy") != 0) {
			snprintf(err, errlen, "cannot map legacy RAM");
			goto fail;
		}
	} else {
		static const char *const fw_types[] = { "bios", "efi", NULL };
		const char *fw;
		if (vmxcfg_get_enum(cfg, "firmware", "bios", fw_types, &fw, err, errlen) != 0)
			goto fail;
		if (strcmp(fw, "efi") == 0) {
			snprintf(err, errlen, "%s:%u: firmware = \"efi\": UEFI firmware is not supported yet; "
			         "use firmware = \"bios\"", vmxcfg_path(cfg), vmxcfg_line(cfg, "firmware"));
			goto fail;
		}
		if (vm_load_firmware(vm, bios ? bios : VM_DEFAULT_BIOS, bios ? "bios440.filename" : NULL,
		                     err, errlen) != 0)
			goto fail;
	}

	vm->tsc_hz = 2000000000ull;
	vm->host_ops = (struct vmm_host_ops){
		.pic_pending = vm_host_pic_pending,
		.pic_ack = vm_host_pic_ack,
		.eoi = vm_host_eoi,
		.pio = vm_host_pio,
		.mmio = vm_host_mmio,
		.shutdown = vm_host_shutdown,
	};
	memset(&ecfg, 0, sizeof(ecfg));
	ecfg.ncpus = vm->ncpus;
	ecfg.tsc_hz = vm->tsc_hz;
	ecfg.apic_bus_hz = strcmp(vm->engine->name, "hv") == 0 ? VMM_APIC_BUS_HZ_HV : 1000000000ull;
	ecfg.host = &vm->host_ops;
	ecfg.host_opaque = vm;
	ecfg.trace = trace;
	if (trace) {
		snprintf(vm->trace_path, sizeof(vm->trace_path), "%s/vireo-trace.log", vm->dir);
		ecfg.trace_path = vm->trace_path;
	}
	vm->evm = vm->engine->vm_create(&ecfg, err, errlen);
	if (!vm->evm)
		goto fail;
	vm->apic_bus_hz = ecfg.apic_bus_hz;
	for (unsigned i = 0; i < vm->mem.nregions; i++) {
		const struct gmem_region *r = &vm->mem.regions[i];
		if (!r->size)
			continue;   /* an empty PAM slot */
		struct vmm_mem_region er = {
			.gpa = r->gpa, .size = r->size, .hva = r->hva,
			.flags = (r->flags & GMEM_ROM) ? VMM_MEM_READONLY : 0,
		};
		if (vm->engine->vm_set_memory(vm->evm, i, &er) != 0) {
			snprintf(err, errlen, "engine %s: cannot map %s: %s", vm->engine->name, r->name,
			         strerror(errno));
			goto fail;
		}
	}
	/* Before the devices: vmmouse, GuestRPC and the balloon register commands. */
	if (backdoor_init(vm, err, errlen) != 0)
		goto fail;
	if (vm_create_devices(vm, err, errlen) != 0)
		goto fail;
	for (unsigned i = 0; i < vm->ncpus; i++) {
		vm->vcpus[i].vm = vm;
		vm->vcpus[i].id = i;
		vm->vcpus[i].ev = vm->engine->vcpu_create(vm->evm, i, err, errlen);
		if (!vm->vcpus[i].ev)
			goto fail;
	}
	return vm;
fail:
	vmx_vm_destroy(vm);
	return NULL;
}

#define VMX_SLOT_LOGGING   0x1u
#define VMX_SLOT_ALL_DIRTY 0x2u

bool vmx_vm_can_log_dirty(const struct vmx_vm *vm)
{
	return vm->evm && vm->engine->vm_get_dirty;
}

int vmx_vm_set_mem_slot(struct vmx_vm *vm, int idx, uint64_t gpa, uint64_t size, uint8_t *hva,
                        uint32_t flags, const char *name)
{
	struct gmem_region *r;
	bool engine = vm->evm && vm->engine->vm_set_memory;
	bool log = (flags & GMEM_LOG_DIRTY) && vmx_vm_can_log_dirty(vm);

	if (idx < 0 || (unsigned)idx >= vm->mem.nregions)
		return -1;
	r = &vm->mem.regions[idx];
	if (r->size) {
		/* Writes the engine logged for the old mapping go with it: the
		 * harvester's next call reports every page instead.  Set before the
		 * unmap so that a harvest racing it cannot miss both. */
		atomic_fetch_or(&vm->slot_log[idx].state, VMX_SLOT_ALL_DIRTY);
		if (engine) {
			struct vmm_mem_region er = { .gpa = r->gpa, .size = 0, .hva = r->hva };
			vm->engine->vm_set_memory(vm->evm, (unsigned)idx, &er);
		}
		atomic_fetch_and(&vm->slot_log[idx].state, ~VMX_SLOT_LOGGING);
		gmem_set_slot(&vm->mem, (unsigned)idx, 0, 0, NULL, 0, NULL);
	}
	if (!size)
		return 0;
	if (gmem_set_slot(&vm->mem, (unsigned)idx, gpa, size, hva, flags, name) != 0) {
		vlog_guest("%s: 0x%llx (+0x%llx) overlaps other memory; not mapped", name,
		           (unsigned long long)gpa, (unsigned long long)size);
		return -1;
	}
	if (engine) {
		struct vmm_mem_region er = {
			.gpa = gpa, .size = size, .hva = hva,
			.flags = ((flags & GMEM_ROM) ? VMM_MEM_READONLY : 0) |
			         (log ? VMM_MEM_LOG_DIRTY : 0),
		};
		if (vm->engine->vm_set_memory(vm->evm, (unsigned)idx, &er) != 0) {
			vlog_error("%s: the engine cannot map 0x%llx (+0x%llx)", name,
			           (unsigned long long)gpa, (unsigned long long)size);
			gmem_set_slot(&vm->mem, (unsigned)idx, 0, 0, NULL, 0, NULL);
			return -1;
		}
	}
	if (log) {
		atomic_store(&vm->slot_log[idx].size, size);
		atomic_fetch_or(&vm->slot_log[idx].state, VMX_SLOT_LOGGING | VMX_SLOT_ALL_DIRTY);
	}
	return 0;
}

int vmx_vm_mem_dirty(struct vmx_vm *vm, int idx, uint64_t off, uint64_t len, uint64_t *bitmap)
{
	if (idx < 0 || idx >= GMEM_MAX_REGIONS || !len || !vmx_vm_can_log_dirty(vm))
		return -1;
	unsigned st = atomic_load(&vm->slot_log[idx].state);
	uint64_t size = atomic_load(&vm->slot_log[idx].size);
	if (!(st & VMX_SLOT_LOGGING) || off >= size || len > size - off)
		return -1;
	size_t words = (size_t)((size >> 12) + 63) / 64;
	uint64_t *all = malloc(words * sizeof(*all));
	if (!all)
		return -1;
	/* A remap between the size read and this call makes the engine refuse
	 * (the bitmap would not fit) or reports the new mapping; either way
	 * ALL_DIRTY, set before the remap, is still there to read after it. */
	if (vm->engine->vm_get_dirty(vm->evm, (unsigned)idx, all, words) != 0) {
		free(all);
		return -1;
	}
	st = atomic_fetch_and(&vm->slot_log[idx].state, ~VMX_SLOT_ALL_DIRTY);
	uint64_t first = off >> 12, last = (off + len - 1) >> 12;
	memset(bitmap, 0, (size_t)((last - first) / 64 + 1) * sizeof(*bitmap));
	for (uint64_t p = first; p <= last; p++) {
		bool d = (st & VMX_SLOT_ALL_DIRTY) || ((all[p / 64] >> (p % 64)) & 1);
		if (d)
			bitmap[(p - first) / 64] |= 1ull << ((p - first) % 64);
	}
	free(all);
	return 0;
}

int vmx_vm_run(struct vmx_vm *vm)
{
	char err[512];

	vlog_info("power on: %s, %llu MB, %u vCPU(s), engine %s", vm->name,
	          (unsigned long long)vm->memsize_mb, vm->ncpus, vm->engine->name);
	if (vm_boot(vm, err, sizeof(err)) != 0) {
		vlog_error("%s", err);
		fprintf(stderr, "vireo: %s\n", err);
		return 1;
	}
	/* Devices that talk to VMDB or start host threads do it now (vm->link is set). */
	for (struct vdev *d = vm->devices; d; d = d->next)
		if (d->cls->start && d->cls->start(d, err, sizeof(err)) != 0) {
			vlog_error("%s", err);
			fprintf(stderr, "vireo: %s\n", err);
			return 1;
		}
	if (vmx_vcpus_start(vm, err, sizeof(err)) != 0) {
		vlog_error("%s", err);
		fprintf(stderr, "vireo: %s\n", err);
		return 1;
	}
	vmx_stats_start(vm);
	int status = vmx_loop_run(vm->loop);
	vmx_vcpus_stop(vm);
	vmx_vcpus_log_stats(vm);
	return status;
}

void vmx_vm_destroy(struct vmx_vm *vm)
{
	if (!vm)
		return;
	vmx_vcpus_stop(vm);
	for (unsigned i = 0; i < vm->ncpus; i++)
		if (vm->vcpus[i].ev)
			vm->engine->vcpu_destroy(vm->vcpus[i].ev);
	/* Newest first: a device may use those created before it (svga -> mks). */
	struct vdev *rev = NULL;
	while (vm->devices) {
		struct vdev *d = vm->devices;
		vm->devices = d->next;
		d->next = rev;
		rev = d;
	}
	while (rev) {
		struct vdev *d = rev;
		rev = d->next;
		if (d->cls->destroy)
			d->cls->destroy(d);
		free(d);
	}
	backdoor_destroy(vm);
	if (vm->evm)
		vm->engine->vm_destroy(vm->evm);
	gmem_destroy(&vm->mem);
	if (vm->loop)
		vmx_loop_free(vm->loop);
	iobus_destroy(&vm->pio);
	iobus_destroy(&vm->mmio);
	free(vm->dir);
	free(vm->name);
	free(vm);
}

/*
 * devtest.c — the device-test harness (see devtest.h).
 */
#include "devtest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmx/backdoor.h"
#include "vmx/config.h"
#include "vmx/log.h"

static int devtest_vm_msi(struct vmm_vm *evm, uint64_t addr, uint32_t data)
{
	struct devtest *t = (struct devtest *)evm;
	uint64_t ns = vmx_clock_ns(t->vm->loop, VMX_CLOCK_VIRTUAL);

	pthread_mutex_lock(&t->rec_lock);
	if (t->nmsi < DEVTEST_MAX_MSI)
		t->msi[t->nmsi++] = (struct devtest_msi){ .addr = addr, .data = data, .ns = ns };
	pthread_mutex_unlock(&t->rec_lock);
	return 0;
}

static void devtest_vcpu_kick(struct vmm_vcpu *v)
{
	struct devtest *t = (struct devtest *)v;

	pthread_mutex_lock(&t->rec_lock);
	t->kicks++;
	pthread_mutex_unlock(&t->rec_lock);
}

struct devtest *devtest_new(const char *vmx_text)
{
	struct devtest *t = calloc(1, sizeof(*t));
	struct vmx_vm *vm;
	char err[512];
	uint64_t memsize, ncpus;

	if (!t || !(t->vm = calloc(1, sizeof(*t->vm)))) {
		fprintf(stderr, "devtest: out of memory\n");
		free(t);
		return NULL;
	}
	vm = t->vm;
	pthread_mutex_init(&t->rec_lock, NULL);
	vm->mem.fd = -1;
	vm->cfg = vmxcfg_parse("devtest.vmx", vmx_text, strlen(vmx_text), err, sizeof(err));
	if (!vm->cfg) {
		fprintf(stderr, "devtest: config: %s\n", err);
		goto fail;
	}
	if (vmxcfg_get_u64(vm->cfg, "memsize", 64, 4, 1u << 20, &memsize, err, sizeof(err)) ||
	    vmxcfg_get_u64(vm->cfg, "numvcpus", 1, 1, VMX_MAX_VCPUS, &ncpus, err, sizeof(err))) {
		fprintf(stderr, "devtest: config: %s\n", err);
		goto fail;
	}
	vmx_mutex_init(&vm->irq_lock, VMX_RANK_IRQ, "irq");
	vmx_mutex_init(&vm->power_lock, VMX_RANK_VM, "power");
	iobus_init(&vm->pio, "pio");
	iobus_init(&vm->mmio, "mmio");
	vm->loop = vmx_loop_new();
	if (!vm->loop) {
		fprintf(stderr, "devtest: cannot create the loop\n");
		goto fail;
	}
	if (gmem_init(&vm->mem, memsize << 20, err, sizeof(err)) != 0) {
		fprintf(stderr, "devtest: memory: %s\n", err);
		goto fail;
	}
	vm->memsize_mb = memsize;
	vm->ncpus = (unsigned)ncpus;

	/* The recording engine: only the calls devices can reach. */
	t->engine.name = "devtest";
	t->engine.vm_msi = devtest_vm_msi;
	t->engine.vcpu_kick = devtest_vcpu_kick;
	vm->engine = &t->engine;
	vm->evm = (struct vmm_vm *)t;
	for (unsigned i = 0; i < vm->ncpus; i++) {
		vm->vcpus[i].vm = vm;
		vm->vcpus[i].id = i;
		vm->vcpus[i].ev = (struct vmm_vcpu *)t;
	}
	return t;
fail:
	devtest_free(t);
	return NULL;
}

void devtest_free(struct devtest *t)
{
	struct vmx_vm *vm;
	struct vdev *d, *next, *rev = NULL;

	if (!t)
		return;
	vm = t->vm;
	if (vm) {
		/* Destroy in reverse creation order, as interrupt users go before controllers. */
		for (d = vm->devices; d; d = next) {
			next = d->next;
			d->next = rev;
			rev = d;
		}
		for (d = rev; d; d = next) {
			next = d->next;
			if (d->cls->destroy)
				d->cls->destroy(d);
			free(d);
		}
		vm->devices = NULL;
		backdoor_destroy(vm);   /* tests that set the backdoor up (vmmouse, tools) */
		if (vm->loop)
			vmx_loop_free(vm->loop);
		if (vm->mem.ram)
			gmem_destroy(&vm->mem);
		if (vm->cfg) {
			iobus_destroy(&vm->pio);
			iobus_destroy(&vm->mmio);
			vmx_mutex_destroy(&vm->irq_lock);
			vmx_mutex_destroy(&vm->power_lock);
			vmxcfg_free(vm->cfg);
		}
		free(vm);
	}
	pthread_mutex_destroy(&t->rec_lock);
	free(t);
}

int devtest_add(struct devtest *t, const char *class_name)
{
	unsigned n;
	const struct vdev_class *const *cls = vdev_classes(&n);
	struct vdev **tail = &t->vm->devices;
	char err[512] = "";

	while (*tail)
		tail = &(*tail)->next;
	for (unsigned i = 0; i < n; i++) {
		struct vdev *d;
		if (strcmp(cls[i]->name, class_name) != 0)
			continue;
		if (cls[i]->present && !cls[i]->present(t->vm))
			return 1;
		d = calloc(1, sizeof(*d));
		if (!d)
			return -1;
		d->cls = cls[i];
		d->vm = t->vm;
		if (cls[i]->init(d, err, sizeof(err)) != 0) {
			fprintf(stderr, "devtest: %s: init failed: %s\n", class_name, err);
			free(d);
			return -1;
		}
		*tail = d;
		return 0;
	}
	fprintf(stderr, "devtest: no device class named %s\n", class_name);
	return -1;
}

void *devtest_priv(struct devtest *t, const char *class_name)
{
	return vmx_vm_device(t->vm, class_name);
}

uint64_t devtest_in(struct devtest *t, uint16_t port, unsigned size)
{
	uint64_t v = 0;

	iobus_access(&t->vm->pio, port, size, false, &v);
	return v;
}

void devtest_out(struct devtest *t, uint16_t port, unsigned size, uint64_t val)
{
	iobus_access(&t->vm->pio, port, size, true, &val);
}

bool devtest_pio_claimed(struct devtest *t, uint16_t port, unsigned size)
{
	uint64_t v = 0;

	return iobus_access(&t->vm->pio, port, size, false, &v);
}

uint64_t devtest_mmio_read(struct devtest *t, uint64_t gpa, unsigned size)
{
	uint64_t v = 0;

	iobus_access(&t->vm->mmio, gpa, size, false, &v);
	return v;
}

void devtest_mmio_write(struct devtest *t, uint64_t gpa, unsigned size, uint64_t val)
{
	iobus_access(&t->vm->mmio, gpa, size, true, &val);
}

static void devtest_quit(void *opaque)
{
	vmx_loop_quit(opaque, 0);
}

int devtest_run_loop(struct devtest *t, unsigned ms)
{
	struct vmx_timer *stop;

	if (t->loop_ran) {
		fprintf(stderr, "devtest: the loop can run only once per devtest\n");
		return -1;
	}
	t->loop_ran = true;
	stop = vmx_timer_new(t->vm->loop, VMX_CLOCK_REAL, devtest_quit, t->vm->loop);
	if (!stop) {
		fprintf(stderr, "devtest: cannot create a timer\n");
		return -1;
	}
	vmx_timer_arm_in(stop, (uint64_t)ms * 1000000ull);
	vmx_loop_run(t->vm->loop);
	vmx_timer_free(stop);
	return 0;
}

unsigned devtest_msi_count(struct devtest *t)
{
	unsigned n;

	pthread_mutex_lock(&t->rec_lock);
	n = t->nmsi;
	pthread_mutex_unlock(&t->rec_lock);
	return n;
}

struct devtest_msi devtest_msi_get(struct devtest *t, unsigned i)
{
	struct devtest_msi m = { 0 };

	pthread_mutex_lock(&t->rec_lock);
	if (i < t->nmsi)
		m = t->msi[i];
	pthread_mutex_unlock(&t->rec_lock);
	return m;
}

void devtest_msi_clear(struct devtest *t)
{
	pthread_mutex_lock(&t->rec_lock);
	t->nmsi = 0;
	pthread_mutex_unlock(&t->rec_lock);
}

unsigned devtest_kicks(struct devtest *t)
{
	unsigned n;

	pthread_mutex_lock(&t->rec_lock);
	n = t->kicks;
	pthread_mutex_unlock(&t->rec_lock);
	return n;
}

enum vmx_power_request devtest_take_power(struct devtest *t)
{
	int r = atomic_exchange(&t->vm->power_request, VMX_POWER_NONE);

	atomic_store(&t->vm->stopping, false);
	return (enum vmx_power_request)r;
}

bool devtest_gsi_level(struct devtest *t, unsigned gsi)
{
	bool v;

	vmx_mutex_lock(&t->vm->irq_lock);
	v = gsi < 32 && ((t->vm->isa_levels >> gsi) & 1);
	vmx_mutex_unlock(&t->vm->irq_lock);
	return v;
}

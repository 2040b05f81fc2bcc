/*
 * devtest.h — a hand-built struct vmx_vm for device-tier tests.
 *
 * Real loop, buses, interrupt routing (irq.c), config (vmxcfg_parse) and
 * guest memory; the engine is a recorder: vm_msi() messages and vCPU kicks
 * (the PIC's INTR output changes) are counted so a test can check them.
 * Devices are created from their registered classes, by name, and driven
 * with iobus_access() exactly as a guest's port and MMIO accesses would be.
 */
#ifndef VIREO_TESTS_DEVTEST_H
#define VIREO_TESTS_DEVTEST_H

#include <stdbool.h>
#include <stdint.h>

#include "vmx/vm.h"

#define DEVTEST_MAX_MSI 4096

struct devtest_msi {
	uint64_t addr;
	uint32_t data;
	uint64_t ns;             /* VMX_CLOCK_VIRTUAL when it was sent */
};

struct devtest {
	struct vmx_vm *vm;
	struct vmm_engine engine;

	pthread_mutex_t rec_lock;   /* the recorder is called from the loop thread too */
	struct devtest_msi msi[DEVTEST_MAX_MSI];
	unsigned nmsi;
	unsigned kicks;
	bool loop_ran;
};

/*
 * vmx_text: the .vmx contents (may be ""); memsize and numvcpus are read
 * from it (defaults 64 MiB, 1).  Returns NULL after printing why.
 */
struct devtest *devtest_new(const char *vmx_text);
void devtest_free(struct devtest *t);

/*
 * Create the device of this class (its present() is honoured: returns 1
 * when the class says absent).  0 on success, -1 printing the error.
 */
int devtest_add(struct devtest *t, const char *class_name);
/* The device's private state, or NULL. */
void *devtest_priv(struct devtest *t, const char *class_name);

/* Guest accesses.  Reads of an unclaimed address return all ones. */
uint64_t devtest_in(struct devtest *t, uint16_t port, unsigned size);
void devtest_out(struct devtest *t, uint16_t port, unsigned size, uint64_t val);
uint64_t devtest_mmio_read(struct devtest *t, uint64_t gpa, unsigned size);
void devtest_mmio_write(struct devtest *t, uint64_t gpa, unsigned size, uint64_t val);
/* Did a device claim the access? */
bool devtest_pio_claimed(struct devtest *t, uint16_t port, unsigned size);

/*
 * Run the poll loop on this thread for about ms milliseconds (timers fire).
 * Once per devtest: vmx_loop_run() cannot be re-entered after a quit, so a
 * test that needs two timer phases makes two devtests.  Returns -1 when
 * called twice.
 */
int devtest_run_loop(struct devtest *t, unsigned ms);

/* The recorder, read under its lock. */
unsigned devtest_msi_count(struct devtest *t);
struct devtest_msi devtest_msi_get(struct devtest *t, unsigned i);
void devtest_msi_clear(struct devtest *t);
unsigned devtest_kicks(struct devtest *t);

/* Take (and clear) a pending power request, so the loop never acts on it. */
enum vmx_power_request devtest_take_power(struct devtest *t);

/* Level of a GSI as the devices last set it (vm->isa_levels). */
bool devtest_gsi_level(struct devtest *t, unsigned gsi);

#endif

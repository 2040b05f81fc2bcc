/*
 * testdev.c — the Vireo test device: 4 KiB of MMIO at PLAT_TESTDEV_BASE,
 * present only with `vireo.testDevice = "TRUE"`.  Test guests use it to
 * report results (EXIT), raise interrupts (IRQ) and read virtual time (NS).
 *
 *   0x00 ID        RO 4   0x54534556 "VEST"
 *   0x04 SCRATCH   RW 4
 *   0x08 EXIT      WO 4   power off with exit status value & 0xff
 *   0x0C COUNTER   RO 4   increments on every read
 *   0x10 IRQ       WO 4   pulse GSI value
 *   0x18 SCRATCH64 RW 8   (8-byte accesses only)
 *   0x20 NS        RO 8   VMX_CLOCK_VIRTUAL ns (two 4-byte reads allowed too)
 *
 * An access of another width or offset is logged (rate-limited): reads
 * return all ones, writes are dropped.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "../config.h"
#include "../device.h"
#include "../iobus.h"
#include "../irq.h"
#include "../log.h"
#include "../loop.h"
#include "../platform.h"
#include "../vm.h"
#include "../vstate.h"

#define TESTDEV_SIZE      0x1000
#define TESTDEV_ID        0x00
#define TESTDEV_SCRATCH   0x04
#define TESTDEV_EXIT      0x08
#define TESTDEV_COUNTER   0x0C
#define TESTDEV_IRQ       0x10
#define TESTDEV_SCRATCH64 0x18
#define TESTDEV_NS        0x20
#define TESTDEV_MAGIC     0x54534556u

struct testdev {
	struct vmx_vm *vm;
	_Atomic uint32_t scratch;
	_Atomic uint32_t counter;
	_Atomic uint64_t scratch64;
};

static const struct vstate_field testdev_state_fields[] = {
	VSTATE_FIELD(struct testdev, scratch),
	VSTATE_FIELD(struct testdev, counter),
	VSTATE_FIELD(struct testdev, scratch64),
	VSTATE_END
};

static const struct vstate_desc testdev_state = {
	.name = "testdev",
	.version = 1,
	.fields = testdev_state_fields,
};

static uint64_t testdev_read(void *opaque, uint64_t off, unsigned size)
{
	struct testdev *t = opaque;
	uint64_t ns;

	switch (off) {
	case TESTDEV_ID:
		if (size == 4)
			return TESTDEV_MAGIC;
		break;
	case TESTDEV_SCRATCH:
		if (size == 4)
			return atomic_load(&t->scratch);
		break;
	case TESTDEV_COUNTER:
		if (size == 4)
			return atomic_fetch_add(&t->counter, 1) + 1;
		break;
	case TESTDEV_SCRATCH64:
		if (size == 8)
			return atomic_load(&t->scratch64);
		break;
	case TESTDEV_NS:
	case TESTDEV_NS + 4:
		if (size == 8 && off == TESTDEV_NS)
			return vmx_clock_ns(t->vm->loop, VMX_CLOCK_VIRTUAL);
		if (size == 4) {
			ns = vmx_clock_ns(t->vm->loop, VMX_CLOCK_VIRTUAL);
			return off == TESTDEV_NS ? (uint32_t)ns : (uint32_t)(ns >> 32);
		}
		break;
	default:
		break;
	}
	vlog_guest("testdev: read of %u bytes at 0x%llx", size, (unsigned long long)off);
	return size == 8 ? ~0ull : (1ull << (size * 8)) - 1;
}

static void testdev_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct testdev *t = opaque;

	switch (off) {
	case TESTDEV_SCRATCH:
		if (size != 4)
			break;
		atomic_store(&t->scratch, (uint32_t)val);
		return;
	case TESTDEV_EXIT:
		if (size != 4)
			break;
		vlog_info("testdev: guest requests exit status %u", (unsigned)(val & 0xff));
		vmx_vm_request_exit(t->vm, (int)(val & 0xff), "test device exit");
		return;
	case TESTDEV_IRQ:
		if (size != 4)
			break;
		if (val >= VMX_IOAPIC_PINS) {
			vlog_guest("testdev: IRQ write of GSI %llu (max %u)",
			           (unsigned long long)val, VMX_IOAPIC_PINS - 1);
			return;
		}
		vmx_irq_pulse(t->vm, (unsigned)val);
		return;
	case TESTDEV_SCRATCH64:
		if (size != 8)
			break;
		atomic_store(&t->scratch64, val);
		return;
	default:
		break;
	}
	vlog_guest("testdev: write of %u bytes at 0x%llx", size, (unsigned long long)off);
}

static const struct iobus_ops testdev_ops = {
	.read = testdev_read,
	.write = testdev_write,
	.widths = IOBUS_W1 | IOBUS_W2 | IOBUS_W4 | IOBUS_W8,
};

static bool testdev_present(struct vmx_vm *vm)
{
	char err[256];
	bool on = false;

	/* A bad value still creates the device so that init can report it. */
	if (vmxcfg_get_bool(vm->cfg, "vireo.testDevice", false, &on, err, sizeof(err)) != 0)
		return true;
	return on;
}

static int testdev_init(struct vdev *dev, char *err, size_t errlen)
{
	struct vmx_vm *vm = dev->vm;
	struct testdev *t;
	bool on = false;

	if (vmxcfg_get_bool(vm->cfg, "vireo.testDevice", false, &on, err, errlen) != 0)
		return -1;
	t = calloc(1, sizeof(*t));
	if (!t) {
		snprintf(err, errlen, "testdev: out of memory");
		return -1;
	}
	t->vm = vm;
	if (iobus_register(&vm->mmio, PLAT_TESTDEV_BASE, TESTDEV_SIZE, &testdev_ops, t,
	                   "testdev") != 0) {
		snprintf(err, errlen, "testdev: MMIO 0x%llx already claimed",
		         (unsigned long long)PLAT_TESTDEV_BASE);
		free(t);
		return -1;
	}
	dev->priv = t;
	vlog_info("vireo test device at 0x%llx", (unsigned long long)PLAT_TESTDEV_BASE);
	return 0;
}

static void testdev_reset(struct vdev *dev)
{
	struct testdev *t = dev->priv;

	atomic_store(&t->scratch, 0);
	atomic_store(&t->scratch64, 0);
}

static void testdev_destroy(struct vdev *dev)
{
	struct testdev *t = dev->priv;

	if (!t)
		return;
	iobus_unregister(&dev->vm->mmio, PLAT_TESTDEV_BASE, t);
	free(t);
	dev->priv = NULL;
}

static const struct vdev_class testdev_class = {
	.name = "testdev",
	.order = 90,
	.present = testdev_present,
	.init = testdev_init,
	.reset = testdev_reset,
	.destroy = testdev_destroy,
	.state = &testdev_state,
};

VDEV_REGISTER(testdev_class)

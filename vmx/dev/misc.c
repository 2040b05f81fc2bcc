/*
 * misc.c — small system ports: 0x80 POST code, 0x92 system control port A
 * (fast A20 and fast reset), 0xCF9 reset control.
 *
 * 0xCF9 lies inside PCI CONFIG_ADDRESS's dword: pci.c takes this range over
 * and forwards byte accesses to it, so the handler does not care who calls.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "../device.h"
#include "../iobus.h"
#include "../log.h"
#include "../platform.h"
#include "../vm.h"
#include "../vstate.h"

#define PORT92_RESET   0x01
#define PORT92_A20     0x02
#define CF9_SYS_RST    0x02
#define CF9_RST_CPU    0x04
#define CF9_FULL_RST   0x08

struct misc {
	struct vmx_vm *vm;
	/* Single bytes written by one vCPU at a time; atomics are enough. */
	_Atomic uint8_t post;
	_Atomic uint8_t port92;
	_Atomic uint8_t cf9;
};

static const struct vstate_field misc_state_fields[] = {
	VSTATE_FIELD(struct misc, post),
	VSTATE_FIELD(struct misc, port92),
	VSTATE_FIELD(struct misc, cf9),
	VSTATE_END
};

static const struct vstate_desc misc_state = {
	.name = "misc",
	.version = 1,
	.fields = misc_state_fields,
};

static uint64_t misc_post_read(void *opaque, uint64_t off, unsigned size)
{
	struct misc *m = opaque;

	(void)off;
	(void)size;
	return atomic_load(&m->post);
}

static void misc_post_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct misc *m = opaque;

	(void)off;
	(void)size;
	atomic_store(&m->post, (uint8_t)val);
	vlog_debug("POST code 0x%02x", (unsigned)(val & 0xff));
}

static uint64_t misc_port92_read(void *opaque, uint64_t off, unsigned size)
{
	struct misc *m = opaque;

	(void)off;
	(void)size;
	return atomic_load(&m->port92) & (uint8_t)~PORT92_RESET;
}

static void misc_port92_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct misc *m = opaque;
	uint8_t old = atomic_exchange(&m->port92, (uint8_t)(val & ~PORT92_RESET));

	(void)off;
	(void)size;
	/* A20 is always enabled in Vireo (no wrap at 1 MiB); the bit is kept for reads. */
	if (!(old & PORT92_A20) != !(val & PORT92_A20))
		vlog_debug("port 0x92: A20 %s", (val & PORT92_A20) ? "on" : "off");
	if (val & PORT92_RESET)
		vmx_vm_request_power(m->vm, VMX_POWER_RESET, "guest fast reset (port 0x92)");
}

static uint64_t misc_cf9_read(void *opaque, uint64_t off, unsigned size)
{
	struct misc *m = opaque;

	(void)off;
	(void)size;
	return atomic_load(&m->cf9);
}

static void misc_cf9_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct misc *m = opaque;
	uint8_t v = (uint8_t)val;

	(void)off;
	(void)size;
	if (v & 0xf1)
		vlog_guest("reset control 0xCF9: reserved bits in 0x%02x", v);
	/* RST_CPU is self-clearing; SYS_RST and FULL_RST select the kind. */
	atomic_store(&m->cf9, (uint8_t)(v & (CF9_SYS_RST | CF9_FULL_RST)));
	if (!(v & CF9_RST_CPU))
		return;
	if (v & (CF9_SYS_RST | CF9_FULL_RST))
		vmx_vm_request_power(m->vm, VMX_POWER_RESET, "guest reset (0xCF9)");
	else
		/* A soft reset (INIT) is done as a full reset: the guest wants a reboot. */
		vmx_vm_request_power(m->vm, VMX_POWER_RESET, "guest soft reset (0xCF9)");
}

static const struct iobus_ops misc_post_ops = {
	.read = misc_post_read, .write = misc_post_write, .widths = IOBUS_W1,
};
static const struct iobus_ops misc_port92_ops = {
	.read = misc_port92_read, .write = misc_port92_write, .widths = IOBUS_W1,
};
static const struct iobus_ops misc_cf9_ops = {
	.read = misc_cf9_read, .write = misc_cf9_write, .widths = IOBUS_W1,
};

static void misc_destroy(struct vdev *dev)
{
	struct misc *m = dev->priv;

	if (!m)
		return;
	iobus_unregister(&dev->vm->pio, PLAT_PORT_POST, m);
	iobus_unregister(&dev->vm->pio, PLAT_PORT_A20, m);
	iobus_unregister(&dev->vm->pio, PLAT_PORT_RESET, m);
	free(m);
	dev->priv = NULL;
}

static int misc_init(struct vdev *dev, char *err, size_t errlen)
{
	struct vmx_vm *vm = dev->vm;
	struct misc *m = calloc(1, sizeof(*m));

	if (!m) {
		snprintf(err, errlen, "misc: out of memory");
		return -1;
	}
	m->vm = vm;
	atomic_store(&m->port92, PORT92_A20);
	dev->priv = m;
	if (iobus_register(&vm->pio, PLAT_PORT_POST, 1, &misc_post_ops, m, "post") ||
	    iobus_register(&vm->pio, PLAT_PORT_A20, 1, &misc_port92_ops, m, "port92") ||
	    iobus_register(&vm->pio, PLAT_PORT_RESET, 1, &misc_cf9_ops, m, "reset-control")) {
		snprintf(err, errlen, "misc: I/O port 0x80, 0x92 or 0xCF9 already claimed");
		misc_destroy(dev);
		return -1;
	}
	return 0;
}

static void misc_reset(struct vdev *dev)
{
	struct misc *m = dev->priv;

	atomic_store(&m->port92, PORT92_A20);
	atomic_store(&m->cf9, 0);
}

static const struct vdev_class misc_class = {
	.name = "misc",
	.order = 30,
	.init = misc_init,
	.reset = misc_reset,
	.destroy = misc_destroy,
	.state = &misc_state,
};

VDEV_REGISTER(misc_class)

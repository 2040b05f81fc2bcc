/*
 * ioapic.c — an 82093AA-style IOAPIC (version 0x20, 24 pins) at PLAT_IOAPIC_BASE.
 *
 * Pins become MSI-style messages to the engine's LAPICs.  Level pins set
 * Remote IRR on delivery and are re-delivered after the EOI if still
 * asserted; masked pins remember their level (and a pending edge) and are
 * delivered when unmasked.  Messages are sent after dropping the lock, so
 * the engine may call back (EOI) from inside vm_msi without deadlock.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../device.h"
#include "../iobus.h"
#include "../irq.h"
#include "../lock.h"
#include "../log.h"
#include "../platform.h"
#include "../vm.h"
#include "../vstate.h"

#define IOAPIC_REG_SEL     0x00
#define IOAPIC_REG_WIN     0x10
#define IOAPIC_REG_EOI     0x40
#define IOAPIC_MMIO_SIZE   0x1000

#define IOAPIC_IDX_ID      0x00
#define IOAPIC_IDX_VER     0x01
#define IOAPIC_IDX_ARB     0x02
#define IOAPIC_IDX_REDIR   0x10

#define IOAPIC_VERSION     0x20
#define IOAPIC_PINS        VMX_IOAPIC_PINS

#define RTE_VECTOR         0xffull
#define RTE_DELMODE_SHIFT  8
#define RTE_DESTMODE       (1ull << 11)
#define RTE_DELIVS         (1ull << 12)
#define RTE_POLARITY       (1ull << 13)
#define RTE_REMOTE_IRR     (1ull << 14)
#define RTE_TRIGGER_LEVEL  (1ull << 15)
#define RTE_MASK           (1ull << 16)
#define RTE_DEST_SHIFT     56
/* Bits the guest cannot set: delivery status and remote IRR; 17-55 reserved. */
#define RTE_WRITABLE       ((0xff00000000000000ull | 0x1ffffull) & ~(RTE_DELIVS | RTE_REMOTE_IRR))

struct ioapic {
	struct vmx_mutex lock;
	struct vmx_vm *vm;
	uint32_t sel;
	uint32_t id;                    /* bits 27:24 as the guest reads them */
	uint32_t levels;                /* current pin levels */
	uint32_t edge_pending;          /* rising edge seen while masked */
	uint64_t rte[IOAPIC_PINS];
};

struct ioapic_msgs {
	unsigned n;
	uint64_t addr[IOAPIC_PINS];
	uint32_t data[IOAPIC_PINS];
};

static const struct vstate_field ioapic_state_fields[] = {
	VSTATE_FIELD(struct ioapic, sel),
	VSTATE_FIELD(struct ioapic, id),
	VSTATE_FIELD(struct ioapic, levels),
	VSTATE_FIELD(struct ioapic, edge_pending),
	VSTATE_FIELD(struct ioapic, rte),
	VSTATE_END
};

static const struct vstate_desc ioapic_state = {
	.name = "ioapic",
	.version = 1,
	.fields = ioapic_state_fields,
};

static void ioapic_queue(struct ioapic *io, unsigned pin, struct ioapic_msgs *out)
{
	uint64_t e = io->rte[pin];
	unsigned delmode = (unsigned)(e >> RTE_DELMODE_SHIFT) & 7;
	uint32_t dest = (uint32_t)(e >> RTE_DEST_SHIFT);
	uint32_t data;

	if (out->n >= IOAPIC_PINS)
		return;
	if (delmode == 3 || delmode == 6)
		vlog_guest("ioapic: pin %u uses reserved delivery mode %u", pin, delmode);
	data = (uint32_t)(e & RTE_VECTOR) | (uint32_t)delmode << 8 | 1u << 14;
	if (e & RTE_TRIGGER_LEVEL)
		data |= 1u << 15;
	out->addr[out->n] = 0xFEE00000ull | (uint64_t)dest << 12 |
	                    ((e & RTE_DESTMODE) ? 1ull << 2 : 0);
	out->data[out->n] = data;
	out->n++;
}

/* Deliver pin if it is unmasked and has something to deliver. */
static void ioapic_service(struct ioapic *io, unsigned pin, struct ioapic_msgs *out)
{
	uint64_t e = io->rte[pin];
	uint32_t m = 1u << pin;

	if (e & RTE_MASK)
		return;
	if (e & RTE_TRIGGER_LEVEL) {
		if (!(io->levels & m) || (e & RTE_REMOTE_IRR))
			return;
		io->rte[pin] |= RTE_REMOTE_IRR;
		ioapic_queue(io, pin, out);
	} else if (io->edge_pending & m) {
		io->edge_pending &= ~m;
		ioapic_queue(io, pin, out);
	}
}

static void ioapic_send(struct ioapic *io, const struct ioapic_msgs *msgs)
{
	for (unsigned i = 0; i < msgs->n; i++)
		vmx_irq_msi(io->vm, msgs->addr[i], msgs->data[i]);
}

static void ioapic_set_pin(void *opaque, unsigned pin, bool level)
{
	struct ioapic *io = opaque;
	struct ioapic_msgs msgs = { 0 };
	uint32_t m;

	if (pin >= IOAPIC_PINS)
		return;
	m = 1u << pin;
	vmx_mutex_lock(&io->lock);
	if (level && !(io->levels & m) && !(io->rte[pin] & RTE_TRIGGER_LEVEL))
		io->edge_pending |= m;
	if (level)
		io->levels |= m;
	else
		io->levels &= ~m;
	ioapic_service(io, pin, &msgs);
	vmx_mutex_unlock(&io->lock);
	ioapic_send(io, &msgs);
}

static void ioapic_eoi_locked(struct ioapic *io, uint8_t vector, struct ioapic_msgs *out)
{
	for (unsigned pin = 0; pin < IOAPIC_PINS; pin++) {
		uint64_t e = io->rte[pin];

		if ((e & RTE_VECTOR) != vector || !(e & RTE_TRIGGER_LEVEL) ||
		    !(e & RTE_REMOTE_IRR))
			continue;
		io->rte[pin] &= ~RTE_REMOTE_IRR;
		ioapic_service(io, pin, out);
	}
}

static void ioapic_eoi(void *opaque, uint8_t vector)
{
	struct ioapic *io = opaque;
	struct ioapic_msgs msgs = { 0 };

	vmx_mutex_lock(&io->lock);
	ioapic_eoi_locked(io, vector, &msgs);
	vmx_mutex_unlock(&io->lock);
	ioapic_send(io, &msgs);
}

static uint32_t ioapic_reg_read(struct ioapic *io)
{
	uint32_t idx = io->sel;

	switch (idx) {
	case IOAPIC_IDX_ID:
	case IOAPIC_IDX_ARB:
		return io->id;
	case IOAPIC_IDX_VER:
		return (uint32_t)(IOAPIC_PINS - 1) << 16 | IOAPIC_VERSION;
	default:
		if (idx >= IOAPIC_IDX_REDIR && idx < IOAPIC_IDX_REDIR + 2 * IOAPIC_PINS) {
			uint64_t e = io->rte[(idx - IOAPIC_IDX_REDIR) >> 1];
			return (idx & 1) ? (uint32_t)(e >> 32) : (uint32_t)e;
		}
		vlog_guest("ioapic: read of register index 0x%x", idx);
		return 0xffffffffu;
	}
}

static void ioapic_reg_write(struct ioapic *io, uint32_t val, struct ioapic_msgs *out)
{
	uint32_t idx = io->sel;

	switch (idx) {
	case IOAPIC_IDX_ID:
		io->id = val & 0x0f000000u;
		return;
	case IOAPIC_IDX_VER:
	case IOAPIC_IDX_ARB:
		return;   /* read-only */
	default:
		break;
	}
	if (idx >= IOAPIC_IDX_REDIR && idx < IOAPIC_IDX_REDIR + 2 * IOAPIC_PINS) {
		unsigned pin = (idx - IOAPIC_IDX_REDIR) >> 1;
		uint64_t e = io->rte[pin], ro = e & (RTE_DELIVS | RTE_REMOTE_IRR);

		if (idx & 1)
			e = (e & 0xffffffffull) | (uint64_t)val << 32;
		else
			e = (e & 0xffffffff00000000ull) | val;
		e = (e & RTE_WRITABLE) | ro;
		/* Remote IRR has no meaning for an edge pin. */
		if (!(e & RTE_TRIGGER_LEVEL))
			e &= ~RTE_REMOTE_IRR;
		io->rte[pin] = e;
		ioapic_service(io, pin, out);
		return;
	}
	vlog_guest("ioapic: write of register index 0x%x", idx);
}

static uint64_t ioapic_mmio_read(void *opaque, uint64_t off, unsigned size)
{
	struct ioapic *io = opaque;
	uint64_t v = 0;
	unsigned shift;

	vmx_mutex_lock(&io->lock);
	if (off < IOAPIC_REG_SEL + 4) {
		shift = (unsigned)(off - IOAPIC_REG_SEL) * 8;
		v = (uint64_t)io->sel >> shift;
	} else if (off >= IOAPIC_REG_WIN && off < IOAPIC_REG_WIN + 4) {
		shift = (unsigned)(off - IOAPIC_REG_WIN) * 8;
		v = (uint64_t)ioapic_reg_read(io) >> shift;
	} else {
		v = 0;   /* EOI is write-only; the rest of the window reads 0 */
	}
	vmx_mutex_unlock(&io->lock);
	if (size < 8)
		v &= (1ull << (size * 8)) - 1;
	return v;
}

static void ioapic_mmio_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct ioapic *io = opaque;
	struct ioapic_msgs msgs = { 0 };
	unsigned shift;
	uint32_t mask;

	vmx_mutex_lock(&io->lock);
	if (off < IOAPIC_REG_SEL + 4) {
		/* Only the low byte selects; narrower writes merge into it. */
		shift = (unsigned)(off - IOAPIC_REG_SEL) * 8;
		mask = size >= 4 ? 0xffffffffu : ((1u << (size * 8)) - 1) << shift;
		io->sel = ((io->sel & ~mask) | ((uint32_t)(val << shift) & mask)) & 0xff;
	} else if (off >= IOAPIC_REG_WIN && off < IOAPIC_REG_WIN + 4) {
		uint32_t cur = ioapic_reg_read(io);
		shift = (unsigned)(off - IOAPIC_REG_WIN) * 8;
		mask = size >= 4 ? 0xffffffffu : ((1u << (size * 8)) - 1) << shift;
		ioapic_reg_write(io, (cur & ~mask) | ((uint32_t)(val << shift) & mask), &msgs);
	} else if (off == IOAPIC_REG_EOI) {
		ioapic_eoi_locked(io, (uint8_t)val, &msgs);
	} else {
		vlog_guest("ioapic: write to offset 0x%llx", (unsigned long long)off);
	}
	vmx_mutex_unlock(&io->lock);
	ioapic_send(io, &msgs);
}

static const struct iobus_ops ioapic_mmio_ops = {
	.read = ioapic_mmio_read,
	.write = ioapic_mmio_write,
	.widths = IOBUS_W1 | IOBUS_W2 | IOBUS_W4,
};

static const struct vmx_irqchip_ops ioapic_irq_ops = {
	.set_pin = ioapic_set_pin,
};

static void ioapic_reset_state(struct ioapic *io)
{
	io->sel = 0;
	io->id = 0;
	io->edge_pending = 0;
	for (unsigned i = 0; i < IOAPIC_PINS; i++)
		io->rte[i] = RTE_MASK;
}

static void ioapic_destroy(struct vdev *dev);

static int ioapic_init(struct vdev *dev, char *err, size_t errlen)
{
	struct vmx_vm *vm = dev->vm;
	struct ioapic *io = calloc(1, sizeof(*io));

	if (!io) {
		snprintf(err, errlen, "ioapic: out of memory");
		return -1;
	}
	vmx_mutex_init(&io->lock, VMX_RANK_IRQ, "ioapic");
	io->vm = vm;
	ioapic_reset_state(io);
	dev->priv = io;
	if (iobus_register(&vm->mmio, PLAT_IOAPIC_BASE, IOAPIC_MMIO_SIZE, &ioapic_mmio_ops, io,
	                   "ioapic")) {
		snprintf(err, errlen, "ioapic: MMIO 0x%llx already claimed",
		         (unsigned long long)PLAT_IOAPIC_BASE);
		ioapic_destroy(dev);
		return -1;
	}
	vmx_irq_attach_ioapic(vm, &ioapic_irq_ops, io, ioapic_eoi);
	return 0;
}

static void ioapic_reset(struct vdev *dev)
{
	struct ioapic *io = dev->priv;

	vmx_mutex_lock(&io->lock);
	ioapic_reset_state(io);
	vmx_mutex_unlock(&io->lock);
}

static void ioapic_destroy(struct vdev *dev)
{
	struct ioapic *io = dev->priv;

	if (!io)
		return;
	iobus_unregister(&dev->vm->mmio, PLAT_IOAPIC_BASE, io);
	if (dev->vm->ioapic == io)
		vmx_irq_attach_ioapic(dev->vm, NULL, NULL, NULL);
	vmx_mutex_destroy(&io->lock);
	free(io);
	dev->priv = NULL;
}

static const struct vdev_class ioapic_class = {
	.name = "ioapic",
	.order = 10,
	.init = ioapic_init,
	.reset = ioapic_reset,
	.destroy = ioapic_destroy,
	.state = &ioapic_state,
};

VDEV_REGISTER(ioapic_class)

/*
 * pic.c — the 8259A master/slave pair (0x20/0xA0) and the PIIX ELCR (0x4D0/0x4D1).
 *
 * The slave's INT output is wired to the master's IR2.  Edge or level
 * sensitivity per input comes from the ELCR (or LTIM in ICW1 for a whole
 * chip).  The master's INTR output goes to the BSP: the engine samples it
 * with pending() and runs the INTA cycle with ack().
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

struct pic_chip {
	uint8_t irr;           /* interrupt request register */
	uint8_t isr;           /* in-service register */
	uint8_t imr;           /* interrupt mask register */
	uint8_t lines;         /* current input levels */
	uint8_t edge_seen;     /* edge-sense latch: input was high when last sampled */
	uint8_t elcr;          /* level-triggered inputs (PIIX ELCR) */
	uint8_t elcr_mask;     /* ELCR bits that exist on this chip */
	uint8_t base;          /* ICW2 vector base (bits 7:3) */
	uint8_t lowest;        /* IR that has the lowest priority is (lowest) & 7: rotation */
	uint8_t init_step;     /* 0: ready; 1/2/3 expect ICW2/ICW3/ICW4 */
	uint8_t icw3;
	uint8_t need_icw4;
	uint8_t single;
	uint8_t ltim;          /* ICW1 LTIM: every input level-triggered */
	uint8_t auto_eoi;
	uint8_t rotate_aeoi;
	uint8_t sfnm;          /* special fully nested mode */
	uint8_t special_mask;
	uint8_t read_isr;      /* OCW3 RR/RIS: 1 reads ISR */
	uint8_t poll;
};

struct pic {
	struct vmx_mutex lock;
	struct vmx_vm *vm;
	struct pic_chip chip[2];   /* 0 master, 1 slave */
	uint8_t intr;              /* master INT output as last reported */
};

static const struct vstate_field pic_state_fields[] = {
	VSTATE_FIELD(struct pic, chip),
	VSTATE_FIELD(struct pic, intr),
	VSTATE_END
};

static const struct vstate_desc pic_state = {
	.name = "pic",
	.version = 1,
	.fields = pic_state_fields,
};

static uint8_t pic_level_mask(const struct pic_chip *c)
{
	return c->ltim ? 0xff : c->elcr;
}

/* Priority 0 is highest; returns 8 when mask is empty. */
static unsigned pic_priority(const struct pic_chip *c, uint8_t mask)
{
	unsigned p;

	if (!mask)
		return 8;
	for (p = 0; p < 8; p++)
		if (mask & (1u << ((p + c->lowest) & 7)))
			break;
	return p;
}

/* The IR this chip would present on INTA now, or -1. */
static int pic_best(const struct pic_chip *c, bool master)
{
	uint8_t in_service = c->isr;
	unsigned req = pic_priority(c, c->irr & (uint8_t)~c->imr);

	if (req == 8)
		return -1;
	/* Special mask mode: masked in-service levels do not block lower ones. */
	if (c->special_mask)
		in_service &= (uint8_t)~c->imr;
	/* Special fully nested: the slave may interrupt while IR2 is in service. */
	if (master && c->sfnm)
		in_service &= (uint8_t)~0x04;
	if (req < pic_priority(c, in_service))
		return (int)((req + c->lowest) & 7);
	return -1;
}

static void pic_input(struct pic_chip *c, unsigned ir, bool level)
{
	uint8_t m = (uint8_t)(1u << ir);

	if (level)
		c->lines |= m;
	else
		c->lines &= (uint8_t)~m;

	if (pic_level_mask(c) & m) {
		if (level)
			c->irr |= m;
		else
			c->irr &= (uint8_t)~m;
		c->edge_seen = level ? (uint8_t)(c->edge_seen | m) : (uint8_t)(c->edge_seen & ~m);
	} else {
		if (level && !(c->edge_seen & m))
			c->irr |= m;
		if (level)
			c->edge_seen |= m;
		else
			c->edge_seen &= (uint8_t)~m;
	}
}

/*
 * Re-evaluate the cascade and the INTR output.  Returns true when INTR
 * changed and the caller must tell the platform (after unlocking).
 */
static bool pic_update(struct pic *p)
{
	uint8_t intr;

	pic_input(&p->chip[0], 2, pic_best(&p->chip[1], false) >= 0);
	intr = pic_best(&p->chip[0], true) >= 0;
	if (intr != p->intr) {
		p->intr = intr;
		return true;
	}
	return false;
}

static void pic_notify(struct pic *p, bool changed)
{
	if (changed)
		vmx_irq_pic_output_changed(p->vm);
}

/* The INTA cycle on one chip for IR ir. */
static void pic_intack(struct pic_chip *c, unsigned ir)
{
	uint8_t m = (uint8_t)(1u << ir);

	if (c->auto_eoi) {
		if (c->rotate_aeoi)
			c->lowest = (uint8_t)((ir + 1) & 7);
	} else {
		c->isr |= m;
	}
	/* Level inputs keep requesting while the line is high. */
	if (!(pic_level_mask(c) & m))
		c->irr &= (uint8_t)~m;
}

static int pic_ack_locked(struct pic *p)
{
	struct pic_chip *m = &p->chip[0], *s = &p->chip[1];
	int ir = pic_best(m, true);
	int vec;

	if (ir < 0) {
		/* Request went away before INTA: spurious IRQ7, ISR untouched. */
		return m->base | 7;
	}
	pic_intack(m, (unsigned)ir);
	if (ir == 2) {
		int sir = pic_best(s, false);
		if (sir < 0) {
			vec = s->base | 7;   /* spurious IRQ15 */
		} else {
			pic_intack(s, (unsigned)sir);
			vec = s->base | sir;
		}
	} else {
		vec = m->base | ir;
	}
	return vec;
}

static int pic_ack(void *opaque)
{
	struct pic *p = opaque;
	int vec;
	bool changed;

	vmx_mutex_lock(&p->lock);
	vec = pic_ack_locked(p);
	changed = pic_update(p);
	vmx_mutex_unlock(&p->lock);
	pic_notify(p, changed);
	return vec;
}

static bool pic_pending(void *opaque)
{
	struct pic *p = opaque;
	bool r;

	vmx_mutex_lock(&p->lock);
	r = p->intr != 0;
	vmx_mutex_unlock(&p->lock);
	return r;
}

static void pic_set_pin(void *opaque, unsigned pin, bool level)
{
	struct pic *p = opaque;
	bool changed;

	if (pin >= 16 || pin == 2)   /* IR2 is the cascade, not a device input */
		return;
	vmx_mutex_lock(&p->lock);
	pic_input(&p->chip[pin >> 3], pin & 7, level);
	changed = pic_update(p);
	vmx_mutex_unlock(&p->lock);
	pic_notify(p, changed);
}

static void pic_chip_init_reset(struct pic_chip *c)
{
	/* ICW1: IMR cleared, IR7 lowest, special mask off, read IRR, edge latch reset. */
	c->imr = 0;
	c->isr = 0;
	c->lowest = 0;
	c->special_mask = 0;
	c->read_isr = 0;
	c->poll = 0;
	c->auto_eoi = 0;
	c->rotate_aeoi = 0;
	c->sfnm = 0;
	c->edge_seen = 0;
	c->irr = c->lines & pic_level_mask(c);
	/* A line already high counts as seen, so it is not a fresh edge. */
	c->edge_seen = c->lines;
}

static void pic_ocw2(struct pic_chip *c, uint8_t val)
{
	unsigned ir = val & 7, pr;

	switch (val >> 5) {
	case 0:   /* rotate in AEOI mode: clear */
		c->rotate_aeoi = 0;
		break;
	case 4:   /* rotate in AEOI mode: set */
		c->rotate_aeoi = 1;
		break;
	case 1:   /* non-specific EOI */
	case 5:   /* rotate on non-specific EOI */
		pr = pic_priority(c, c->isr);
		if (pr == 8)
			break;
		ir = (pr + c->lowest) & 7;
		c->isr &= (uint8_t)~(1u << ir);
		if ((val >> 5) == 5)
			c->lowest = (uint8_t)((ir + 1) & 7);
		break;
	case 3:   /* specific EOI */
		c->isr &= (uint8_t)~(1u << ir);
		break;
	case 7:   /* rotate on specific EOI */
		c->isr &= (uint8_t)~(1u << ir);
		c->lowest = (uint8_t)((ir + 1) & 7);
		break;
	case 6:   /* set priority: ir becomes the lowest */
		c->lowest = (uint8_t)((ir + 1) & 7);
		break;
	default:  /* 2: no operation */
		break;
	}
}

static void pic_chip_write(struct pic_chip *c, unsigned port, uint8_t val, const char *name)
{
	if (port == 0) {
		if (val & 0x10) {
			c->need_icw4 = val & 1;
			c->single = (val >> 1) & 1;
			c->ltim = (val >> 3) & 1;
			pic_chip_init_reset(c);
			/* ADI (bit 2) only matters in 8080 mode. */
			c->init_step = 1;
		} else if (val & 0x08) {
			/* OCW3 */
			if (val & 0x04)
				c->poll = 1;
			if (val & 0x02)
				c->read_isr = val & 1;
			if (val & 0x40)
				c->special_mask = (val >> 5) & 1;
		} else {
			pic_ocw2(c, val);
		}
		return;
	}

	switch (c->init_step) {
	case 1:
		c->base = val & 0xf8;
		c->init_step = c->single ? (c->need_icw4 ? 3 : 0) : 2;
		break;
	case 2:
		c->icw3 = val;
		c->init_step = c->need_icw4 ? 3 : 0;
		break;
	case 3:
		if (!(val & 1))
			vlog_guest("pic %s: ICW4 selects 8080 mode; using 8086 mode", name);
		c->auto_eoi = (val >> 1) & 1;
		c->sfnm = (val >> 4) & 1;
		c->init_step = 0;
		break;
	default:
		c->imr = val;   /* OCW1 */
		break;
	}
}

/* Poll command: the next read acknowledges the highest request on this chip. */
static uint8_t pic_poll_read(struct pic *p, unsigned idx)
{
	struct pic_chip *c = &p->chip[idx];
	int ir = pic_best(c, idx == 0);

	c->poll = 0;
	if (ir < 0)
		return 0;
	pic_intack(c, (unsigned)ir);
	return (uint8_t)(0x80 | ir);
}

static uint64_t pic_read(void *opaque, uint64_t off, unsigned size, unsigned idx)
{
	struct pic *p = opaque;
	struct pic_chip *c = &p->chip[idx];
	uint8_t v;
	bool changed;

	(void)size;
	vmx_mutex_lock(&p->lock);
	if (c->poll)
		v = pic_poll_read(p, idx);
	else if (off == 0)
		v = c->read_isr ? c->isr : c->irr;
	else
		v = c->imr;
	changed = pic_update(p);
	vmx_mutex_unlock(&p->lock);
	pic_notify(p, changed);
	return v;
}

static void pic_write(void *opaque, uint64_t off, unsigned size, uint64_t val, unsigned idx)
{
	struct pic *p = opaque;
	bool changed;

	(void)size;
	vmx_mutex_lock(&p->lock);
	pic_chip_write(&p->chip[idx], (unsigned)off, (uint8_t)val, idx ? "slave" : "master");
	changed = pic_update(p);
	vmx_mutex_unlock(&p->lock);
	pic_notify(p, changed);
}

static uint64_t pic_master_read(void *o, uint64_t off, unsigned size)
{
	return pic_read(o, off, size, 0);
}

static uint64_t pic_slave_read(void *o, uint64_t off, unsigned size)
{
	return pic_read(o, off, size, 1);
}

static void pic_master_write(void *o, uint64_t off, unsigned size, uint64_t val)
{
	pic_write(o, off, size, val, 0);
}

static void pic_slave_write(void *o, uint64_t off, unsigned size, uint64_t val)
{
	pic_write(o, off, size, val, 1);
}

static uint64_t pic_elcr_read(void *opaque, uint64_t off, unsigned size)
{
	struct pic *p = opaque;
	uint8_t v;

	(void)size;
	vmx_mutex_lock(&p->lock);
	v = p->chip[off & 1].elcr;
	vmx_mutex_unlock(&p->lock);
	return v;
}

static void pic_elcr_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct pic *p = opaque;
	struct pic_chip *c;
	bool changed;
	unsigned ir;

	(void)size;
	vmx_mutex_lock(&p->lock);
	c = &p->chip[off & 1];
	if ((uint8_t)val & (uint8_t)~c->elcr_mask)
		vlog_guest("pic: ELCR%u write 0x%02x sets reserved bits", (unsigned)(off & 1),
		           (unsigned)(val & 0xff));
	c->elcr = (uint8_t)val & c->elcr_mask;
	/* Re-sample inputs under the new sensitivity. */
	for (ir = 0; ir < 8; ir++)
		if ((pic_level_mask(c) >> ir) & 1)
			pic_input(c, ir, (c->lines >> ir) & 1);
	changed = pic_update(p);
	vmx_mutex_unlock(&p->lock);
	pic_notify(p, changed);
}

static const struct iobus_ops pic_master_ops = {
	.read = pic_master_read, .write = pic_master_write, .widths = IOBUS_W1,
};
static const struct iobus_ops pic_slave_ops = {
	.read = pic_slave_read, .write = pic_slave_write, .widths = IOBUS_W1,
};
static const struct iobus_ops pic_elcr_ops = {
	.read = pic_elcr_read, .write = pic_elcr_write, .widths = IOBUS_W1,
};

static const struct vmx_pic_ops pic_irq_ops = {
	.set_pin = pic_set_pin,
	.pending = pic_pending,
	.ack = pic_ack,
};

static void pic_reset_state(struct pic *p)
{
	for (unsigned i = 0; i < 2; i++) {
		struct pic_chip *c = &p->chip[i];
		uint8_t lines = c->lines, mask = c->elcr_mask;

		memset(c, 0, sizeof(*c));
		c->lines = lines;
		c->elcr_mask = mask;
		c->edge_seen = lines;
	}
}

static void pic_destroy(struct vdev *dev);

static int pic_init(struct vdev *dev, char *err, size_t errlen)
{
	struct vmx_vm *vm = dev->vm;
	struct pic *p = calloc(1, sizeof(*p));

	if (!p) {
		snprintf(err, errlen, "pic: out of memory");
		return -1;
	}
	vmx_mutex_init(&p->lock, VMX_RANK_IRQ, "pic");
	p->vm = vm;
	/* IRQ0, 1, 2 (master) and IRQ8, 13 (slave) are always edge on PIIX. */
	p->chip[0].elcr_mask = 0xf8;
	p->chip[1].elcr_mask = 0xde;
	pic_reset_state(p);
	dev->priv = p;

	if (iobus_register(&vm->pio, PLAT_PORT_PIC1, 2, &pic_master_ops, p, "pic-master") ||
	    iobus_register(&vm->pio, PLAT_PORT_PIC2, 2, &pic_slave_ops, p, "pic-slave") ||
	    iobus_register(&vm->pio, PLAT_PORT_ELCR, 2, &pic_elcr_ops, p, "elcr")) {
		snprintf(err, errlen, "pic: I/O ports 0x20/0xA0/0x4D0 already claimed");
		pic_destroy(dev);
		return -1;
	}
	vmx_irq_attach_pic(vm, &pic_irq_ops, p);
	return 0;
}

static void pic_reset(struct vdev *dev)
{
	struct pic *p = dev->priv;
	bool changed;

	vmx_mutex_lock(&p->lock);
	pic_reset_state(p);
	changed = pic_update(p);
	vmx_mutex_unlock(&p->lock);
	pic_notify(p, changed);
}

static void pic_destroy(struct vdev *dev)
{
	struct pic *p = dev->priv;

	if (!p)
		return;
	iobus_unregister(&dev->vm->pio, PLAT_PORT_PIC1, p);
	iobus_unregister(&dev->vm->pio, PLAT_PORT_PIC2, p);
	iobus_unregister(&dev->vm->pio, PLAT_PORT_ELCR, p);
	if (dev->vm->pic == p)
		vmx_irq_attach_pic(dev->vm, NULL, NULL);
	vmx_mutex_destroy(&p->lock);
	free(p);
	dev->priv = NULL;
}

static const struct vdev_class pic_class = {
	.name = "pic",
	.order = 10,
	.init = pic_init,
	.reset = pic_reset,
	.destroy = pic_destroy,
	.state = &pic_state,
};

VDEV_REGISTER(pic_class)

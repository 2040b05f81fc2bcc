/*
 * pit.c — the 8254 PIT at 0x40-0x43 and system control port B (0x61).
 *
 * Counters are not ticked: each channel remembers when its count was loaded
 * (in VMX_CLOCK_VIRTUAL nanoseconds) and derives the count and OUT from the
 * elapsed PIT clocks on demand.  Only channel 0 needs a timer, for IRQ0.
 * Channel 2's gate and OUT are bits 0 and 5 of port 0x61; Linux calibrates
 * the TSC against them, so they are exact to the PIT clock.
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
#include "../loop.h"
#include "../platform.h"
#include "../vm.h"
#include "../vstate.h"

#define PIT_NS_PER_S      1000000000ull
/* Below about 100 µs a periodic IRQ0 only burns host CPU: slow it down. */
#define PIT_MIN_PERIOD    ((PLAT_PIT_HZ * 100 + 999999) / 1000000)
/* Refresh request toggles every 15.085 µs on a PC (port 0x61 bit 4). */
#define PIT_REFRESH_NS    15085ull

struct pit_chan {
	uint32_t count;          /* counting range in clocks, 1..65536 (binary) */
	uint64_t load_ns;        /* virtual time at which 0 clocks had elapsed */
	uint64_t frozen_clocks;  /* elapsed clocks while gate-suspended */
	uint16_t latch;          /* latched count (as read: BCD when bcd) */
	uint8_t latch_left;      /* bytes of the latched count still to read */
	uint8_t latch_hi;        /* next latched byte is the high one */
	uint8_t status;          /* latched status byte */
	uint8_t status_latched;
	uint8_t rw;              /* 1 lsb, 2 msb, 3 lsb then msb */
	uint8_t mode;            /* 0..5 */
	uint8_t bcd;
	uint8_t read_hi;         /* rw 3, unlatched reads: next byte is msb */
	uint8_t write_hi;        /* rw 3: next written byte is msb */
	uint8_t write_lo;        /* lsb waiting for its msb */
	uint8_t loaded;          /* a count has been written since the control word */
	uint8_t null_count;
	uint8_t gate;
	uint8_t frozen;          /* counting suspended by a low gate (modes 0, 2, 3, 4) */
	uint8_t waiting;         /* modes 1/5: loaded, waiting for a gate trigger */
};

struct pit {
	struct vmx_mutex lock;
	struct vmx_vm *vm;
	struct vmx_timer *timer;     /* channel 0 -> IRQ0 */
	struct pit_chan ch[3];
	uint8_t port61;              /* bits 0-3 as written */
	uint64_t irq_deadline;       /* virtual ns of the armed IRQ0 event, 0: none */
	uint64_t irq_count;          /* IRQ0 pulses delivered */
	uint8_t clamp_logged;
};

static const struct vstate_field pit_state_fields[] = {
	VSTATE_FIELD(struct pit, ch),
	VSTATE_FIELD(struct pit, port61),
	VSTATE_FIELD(struct pit, irq_deadline),
	VSTATE_END
};

static const struct vstate_desc pit_state = {
	.name = "pit",
	.version = 1,
	.fields = pit_state_fields,
};

__extension__ typedef unsigned __int128 pit_u128;

static uint64_t pit_ns_to_clocks(uint64_t ns)
{
	return (uint64_t)((pit_u128)ns * PLAT_PIT_HZ / PIT_NS_PER_S);
}

/* The first nanosecond at which `clocks` clocks have elapsed. */
static uint64_t pit_clocks_to_ns(uint64_t clocks)
{
	return (uint64_t)(((pit_u128)clocks * PIT_NS_PER_S + PLAT_PIT_HZ - 1) / PLAT_PIT_HZ);
}

static uint64_t pit_now(struct pit *p)
{
	return vmx_clock_ns(p->vm->loop, VMX_CLOCK_VIRTUAL);
}

static uint64_t pit_elapsed(const struct pit_chan *c, uint64_t now)
{
	if (c->frozen)
		return c->frozen_clocks;
	return now > c->load_ns ? pit_ns_to_clocks(now - c->load_ns) : 0;
}

static unsigned pit_mode_period(const struct pit_chan *c)
{
	/* A count of 1 is illegal in modes 2 and 3. */
	return c->count < 2 ? 2 : c->count;
}

/* Current counter value, in binary. */
static uint32_t pit_value(const struct pit_chan *c, uint64_t now)
{
	uint64_t d, modulus = c->bcd ? 10000 : 65536;
	uint32_t n = c->count;

	if (!c->loaded || c->waiting)
		return n % (uint32_t)modulus;
	d = pit_elapsed(c, now);
	switch (c->mode) {
	case 2: {
		unsigned per = pit_mode_period(c);
		return (uint32_t)(per - d % per) % (uint32_t)modulus;
	}
	case 3: {
		unsigned per = pit_mode_period(c), h1 = (per + 1) / 2;
		uint64_t ph = d % per;
		uint32_t v = ph < h1 ? (uint32_t)(per - 2 * ph) : (uint32_t)(per - 2 * (ph - h1));
		/* The counter steps by two: an odd count reads as the even one below. */
		v &= ~1u;
		return (v ? v : 2) % (uint32_t)modulus;
	}
	default:   /* 0, 1, 4, 5: count down, then wrap */
		return (uint32_t)((n + modulus - d % modulus) % modulus);
	}
}

static bool pit_out(const struct pit_chan *c, uint64_t now)
{
	uint64_t d;

	if (!c->loaded)
		return c->mode != 0;
	if (c->waiting)
		return true;
	if ((c->mode == 2 || c->mode == 3) && !c->gate)
		return true;
	d = pit_elapsed(c, now);
	switch (c->mode) {
	case 0:
	case 1:
		return d >= c->count;
	case 2:
		return d % pit_mode_period(c) != pit_mode_period(c) - 1u;
	case 3:
		return d % pit_mode_period(c) < (pit_mode_period(c) + 1u) / 2;
	default:   /* 4, 5: one clock low at terminal count */
		return d != c->count;
	}
}

static uint16_t pit_to_bcd(uint32_t v)
{
	return (uint16_t)((v % 10) | ((v / 10) % 10) << 4 | ((v / 100) % 10) << 8 |
	                  ((v / 1000) % 10) << 12);
}

static uint32_t pit_from_bcd(uint16_t v)
{
	unsigned d[4], i;

	for (i = 0; i < 4; i++) {
		d[i] = (v >> (4 * i)) & 0xf;
		if (d[i] > 9)
			d[i] = 9;   /* not a BCD digit: the nearest valid one */
	}
	return d[0] + 10 * d[1] + 100 * d[2] + 1000 * d[3];
}

static uint16_t pit_read_value(const struct pit_chan *c, uint64_t now)
{
	uint32_t v = pit_value(c, now);

	return c->bcd ? pit_to_bcd(v) : (uint16_t)v;
}

/* ---- IRQ0 ---- */

static void pit_arm_irq(struct pit *p, uint64_t now)
{
	struct pit_chan *c = &p->ch[0];
	uint64_t d, next;

	p->irq_deadline = 0;
	if (!p->timer)
		return;
	if (!c->loaded || c->waiting || c->frozen || c->mode == 1 || c->mode == 5) {
		vmx_timer_cancel(p->timer);
		return;
	}
	d = pit_elapsed(c, now);
	if (c->mode == 0 || c->mode == 4) {
		if (d >= c->count) {
			vmx_timer_cancel(p->timer);
			return;
		}
		next = c->count;
	} else {
		uint64_t per = pit_mode_period(c);
		if (per < PIT_MIN_PERIOD) {
			if (!p->clamp_logged) {
				p->clamp_logged = 1;
				vlog_guest("pit: channel 0 period of %llu clocks is below 100 us; "
				           "IRQ0 is slowed to %llu clocks",
				           (unsigned long long)per, (unsigned long long)PIT_MIN_PERIOD);
			}
			per = PIT_MIN_PERIOD;
		}
		next = (d / per + 1) * per;
	}
	p->irq_deadline = c->load_ns + pit_clocks_to_ns(next);
	if (p->irq_deadline == 0)
		p->irq_deadline = 1;
	vmx_timer_arm(p->timer, p->irq_deadline);
}

static void pit_timer_cb(void *opaque)
{
	struct pit *p = opaque;
	uint64_t now;
	bool fire = false;

	vmx_mutex_lock(&p->lock);
	now = pit_now(p);
	if (p->irq_deadline && now >= p->irq_deadline) {
		fire = true;
		p->irq_count++;
		/* Late by several periods: one IRQ, then the next future edge. */
		pit_arm_irq(p, now);
	} else if (p->irq_deadline) {
		/* Woken early (clock rounding): keep the same deadline. */
		vmx_timer_arm(p->timer, p->irq_deadline);
	}
	if (fire)
		vmx_irq_pulse(p->vm, PLAT_IRQ_PIT);
	vmx_mutex_unlock(&p->lock);
}

/* ---- channel programming ---- */

static void pit_set_gate(struct pit *p, unsigned idx, bool gate, uint64_t now)
{
	struct pit_chan *c = &p->ch[idx];
	bool rising = gate && !c->gate;

	if (gate == c->gate)
		return;
	if (!gate) {
		if (c->loaded && !c->waiting && c->mode != 1 && c->mode != 5) {
			c->frozen_clocks = pit_elapsed(c, now);
			c->frozen = 1;
		}
	}
	c->gate = gate;
	if (rising && c->loaded) {
		switch (c->mode) {
		case 0:
		case 4:
			/* Resume where counting stopped. */
			if (c->frozen) {
				uint64_t back = pit_clocks_to_ns(c->frozen_clocks);
				c->load_ns = now >= back ? now - back : 0;
				c->frozen = 0;
			}
			break;
		default:
			/* 1, 5: trigger; 2, 3: reload and restart. */
			c->frozen = 0;
			c->waiting = 0;
			c->load_ns = now;
			break;
		}
	}
	if (idx == 0)
		pit_arm_irq(p, now);
}

static void pit_load(struct pit *p, unsigned idx, uint16_t raw, uint64_t now)
{
	struct pit_chan *c = &p->ch[idx];
	uint32_t n = c->bcd ? pit_from_bcd(raw) : raw;

	if (n == 0)
		n = c->bcd ? 10000 : 65536;
	c->count = n;
	c->loaded = 1;
	c->null_count = 0;
	c->load_ns = now;
	c->frozen = 0;
	c->waiting = 0;
	if (c->mode == 1 || c->mode == 5) {
		c->waiting = 1;
	} else if (!c->gate) {
		c->frozen = 1;
		c->frozen_clocks = 0;
	}
	if (idx == 0)
		pit_arm_irq(p, now);
}

static void pit_latch_count(struct pit_chan *c, uint64_t now)
{
	if (c->latch_left)
		return;   /* a latched count stays until read */
	c->latch = pit_read_value(c, now);
	c->latch_left = c->rw == 3 ? 2 : 1;
	c->latch_hi = c->rw == 2;
}

static void pit_control(struct pit *p, uint8_t val, uint64_t now)
{
	unsigned sel = val >> 6, i;

	if (sel == 3) {
		/* Read-back: bit 5 clear latches counts, bit 4 clear latches status. */
		for (i = 0; i < 3; i++) {
			struct pit_chan *c = &p->ch[i];
			if (!(val & (2u << i)))
				continue;
			if (!(val & 0x20))
				pit_latch_count(c, now);
			if (!(val & 0x10) && !c->status_latched) {
				c->status = (uint8_t)(pit_out(c, now) << 7 | c->null_count << 6 |
				                      c->rw << 4 | c->mode << 1 | c->bcd);
				c->status_latched = 1;
			}
		}
		return;
	}

	struct pit_chan *c = &p->ch[sel];
	unsigned rw = (val >> 4) & 3;
	if (rw == 0) {
		pit_latch_count(c, now);
		return;
	}
	c->rw = (uint8_t)rw;
	c->mode = (val >> 1) & 7;
	if (c->mode > 5)
		c->mode -= 4;   /* 6 and 7 are aliases of 2 and 3 */
	c->bcd = val & 1;
	c->loaded = 0;
	c->null_count = 1;
	c->read_hi = 0;
	c->write_hi = 0;
	c->latch_left = 0;
	c->status_latched = 0;
	c->frozen = 0;
	c->waiting = 0;
	if (sel == 0)
		pit_arm_irq(p, now);
}

static void pit_write_count(struct pit *p, unsigned idx, uint8_t val, uint64_t now)
{
	struct pit_chan *c = &p->ch[idx];

	switch (c->rw) {
	case 1:
		pit_load(p, idx, val, now);
		break;
	case 2:
		pit_load(p, idx, (uint16_t)(val << 8), now);
		break;
	case 3:
		if (!c->write_hi) {
			c->write_lo = val;
			c->write_hi = 1;
			/* Mode 0: writing the first byte stops the count. */
			if (c->mode == 0 && c->loaded) {
				c->loaded = 0;
				if (idx == 0)
					pit_arm_irq(p, now);
			}
		} else {
			c->write_hi = 0;
			pit_load(p, idx, (uint16_t)(c->write_lo | val << 8), now);
		}
		break;
	default:
		vlog_guest("pit: channel %u written before a control word", idx);
		break;
	}
}

static uint8_t pit_read_count(struct pit_chan *c, uint64_t now)
{
	uint16_t v;
	uint8_t b;

	if (c->status_latched) {
		c->status_latched = 0;
		return c->status;
	}
	if (c->latch_left) {
		b = c->latch_hi ? (uint8_t)(c->latch >> 8) : (uint8_t)c->latch;
		c->latch_hi = !c->latch_hi;
		c->latch_left--;
		return b;
	}
	v = pit_read_value(c, now);
	switch (c->rw) {
	case 1:
		return (uint8_t)v;
	case 2:
		return (uint8_t)(v >> 8);
	default:
		b = c->read_hi ? (uint8_t)(v >> 8) : (uint8_t)v;
		c->read_hi = !c->read_hi;
		return b;
	}
}

static uint64_t pit_io_read(void *opaque, uint64_t off, unsigned size)
{
	struct pit *p = opaque;
	uint8_t v = 0xff;

	(void)size;
	if (off >= 3)
		return 0xff;   /* the control word register cannot be read */
	vmx_mutex_lock(&p->lock);
	v = pit_read_count(&p->ch[off], pit_now(p));
	vmx_mutex_unlock(&p->lock);
	return v;
}

static void pit_io_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct pit *p = opaque;

	(void)size;
	vmx_mutex_lock(&p->lock);
	if (off == 3)
		pit_control(p, (uint8_t)val, pit_now(p));
	else if (off < 3)
		pit_write_count(p, (unsigned)off, (uint8_t)val, pit_now(p));
	vmx_mutex_unlock(&p->lock);
}

static uint64_t pit_port61_read(void *opaque, uint64_t off, unsigned size)
{
	struct pit *p = opaque;
	uint64_t now;
	uint8_t v;

	(void)off;
	(void)size;
	vmx_mutex_lock(&p->lock);
	now = pit_now(p);
	v = (uint8_t)((p->port61 & 0x0f) | ((now / PIT_REFRESH_NS) & 1) << 4 |
	              (pit_out(&p->ch[2], now) ? 0x20 : 0));
	vmx_mutex_unlock(&p->lock);
	return v;
}

static void pit_port61_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct pit *p = opaque;

	(void)off;
	(void)size;
	vmx_mutex_lock(&p->lock);
	p->port61 = (uint8_t)(val & 0x0f);
	pit_set_gate(p, 2, val & 1, pit_now(p));
	vmx_mutex_unlock(&p->lock);
}

static const struct iobus_ops pit_io_ops = {
	.read = pit_io_read, .write = pit_io_write, .widths = IOBUS_W1,
};
static const struct iobus_ops pit_port61_ops = {
	.read = pit_port61_read, .write = pit_port61_write, .widths = IOBUS_W1,
};

static void pit_reset_state(struct pit *p)
{
	memset(p->ch, 0, sizeof(p->ch));
	for (unsigned i = 0; i < 3; i++) {
		p->ch[i].count = 65536;
		p->ch[i].rw = 3;
		p->ch[i].gate = i != 2;
	}
	p->port61 = 0;
	p->irq_deadline = 0;
	if (p->timer)
		vmx_timer_cancel(p->timer);
}

static void pit_destroy(struct vdev *dev);

static int pit_init(struct vdev *dev, char *err, size_t errlen)
{
	struct vmx_vm *vm = dev->vm;
	struct pit *p = calloc(1, sizeof(*p));

	if (!p) {
		snprintf(err, errlen, "pit: out of memory");
		return -1;
	}
	vmx_mutex_init(&p->lock, VMX_RANK_DEVICE, "pit");
	p->vm = vm;
	dev->priv = p;
	p->timer = vmx_timer_new(vm->loop, VMX_CLOCK_VIRTUAL, pit_timer_cb, p);
	if (!p->timer) {
		snprintf(err, errlen, "pit: cannot create a timer");
		pit_destroy(dev);
		return -1;
	}
	pit_reset_state(p);
	if (iobus_register(&vm->pio, PLAT_PORT_PIT, 4, &pit_io_ops, p, "pit") ||
	    iobus_register(&vm->pio, PLAT_PORT_SYSCTL_B, 1, &pit_port61_ops, p, "port61")) {
		snprintf(err, errlen, "pit: I/O ports 0x40-0x43/0x61 already claimed");
		pit_destroy(dev);
		return -1;
	}
	return 0;
}

static void pit_reset(struct vdev *dev)
{
	struct pit *p = dev->priv;

	vmx_mutex_lock(&p->lock);
	pit_reset_state(p);
	vmx_mutex_unlock(&p->lock);
}

static void pit_destroy(struct vdev *dev)
{
	struct pit *p = dev->priv;

	if (!p)
		return;
	iobus_unregister(&dev->vm->pio, PLAT_PORT_PIT, p);
	iobus_unregister(&dev->vm->pio, PLAT_PORT_SYSCTL_B, p);
	if (p->timer)
		vmx_timer_free(p->timer);
	vmx_mutex_destroy(&p->lock);
	free(p);
	dev->priv = NULL;
}

static const struct vdev_class pit_class = {
	.name = "pit",
	.order = 20,
	.init = pit_init,
	.reset = pit_reset,
	.destroy = pit_destroy,
	.state = &pit_state,
};

VDEV_REGISTER(pit_class)

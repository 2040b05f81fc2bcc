/*
 * test_pic.c — the 8259A pair and ELCR driven through their ports.
 */
#include "devtest.h"
#include "tests/unit/t.h"
#include "vmx/platform.h"

static void out8(struct devtest *t, uint16_t port, uint8_t v)
{
	devtest_out(t, port, 1, v);
}

static uint8_t in8(struct devtest *t, uint16_t port)
{
	return (uint8_t)devtest_in(t, port, 1);
}

/* The sequence Linux's init_8259A() and SeaBIOS use. */
static void pic_init_seq(struct devtest *t, uint8_t icw4)
{
	out8(t, 0x20, 0x11);
	out8(t, 0x21, 0x20);
	out8(t, 0x21, 0x04);
	out8(t, 0x21, icw4);
	out8(t, 0xA0, 0x11);
	out8(t, 0xA1, 0x28);
	out8(t, 0xA1, 0x02);
	out8(t, 0xA1, icw4);
	out8(t, 0x21, 0x00);
	out8(t, 0xA1, 0x00);
}

static uint8_t read_irr(struct devtest *t, uint16_t base)
{
	out8(t, base, 0x0A);
	return in8(t, base);
}

static uint8_t read_isr(struct devtest *t, uint16_t base)
{
	uint8_t v;

	out8(t, base, 0x0B);
	v = in8(t, base);
	out8(t, base, 0x0A);
	return v;
}

static bool pending(struct devtest *t)
{
	return t->vm->pic_ops->pending(t->vm->pic);
}

static int ack(struct devtest *t)
{
	return t->vm->pic_ops->ack(t->vm->pic);
}

static void eoi_master(struct devtest *t)
{
	out8(t, 0x20, 0x20);
}

static void eoi_slave(struct devtest *t)
{
	out8(t, 0xA0, 0x20);
}

int main(void)
{
	struct devtest *t = devtest_new("");
	unsigned kicks;

	if (!t || devtest_add(t, "pic") != 0)
		return 1;
	T_ASSERT(t->vm->pic_ops != NULL);
	pic_init_seq(t, 0x01);
	T_EQ_U64(in8(t, 0x21), 0x00);
	T_ASSERT(!pending(t));

	/* A keyboard edge: INTR rises (the BSP is kicked), INTA gives 0x21. */
	kicks = devtest_kicks(t);
	vmx_irq_pulse(t->vm, 1);
	T_ASSERT(pending(t));
	T_ASSERT(devtest_kicks(t) > kicks);
	T_EQ_U64(read_irr(t, 0x20), 0x02);
	T_EQ_U64(ack(t), 0x21);
	T_EQ_U64(read_isr(t, 0x20), 0x02);
	T_EQ_U64(read_irr(t, 0x20), 0x00);
	T_ASSERT(!pending(t));
	eoi_master(t);
	T_EQ_U64(read_isr(t, 0x20), 0x00);

	/* Priority: IR3 in service blocks IR5 until the EOI, but not IR1. */
	vmx_irq_pulse(t->vm, 5);
	vmx_irq_pulse(t->vm, 3);
	T_EQ_U64(ack(t), 0x23);
	T_ASSERT(!pending(t));
	vmx_irq_pulse(t->vm, 1);
	T_ASSERT(pending(t));
	T_EQ_U64(ack(t), 0x21);
	T_EQ_U64(read_isr(t, 0x20), 0x0A);
	eoi_master(t);   /* non-specific: clears the highest, IR1 */
	T_EQ_U64(read_isr(t, 0x20), 0x08);
	T_ASSERT(!pending(t));
	eoi_master(t);
	T_ASSERT(pending(t));
	T_EQ_U64(ack(t), 0x25);
	out8(t, 0x20, 0x65);   /* specific EOI IR5 */
	T_EQ_U64(read_isr(t, 0x20), 0x00);

	/* The slave, cascaded on IR2. */
	vmx_irq_pulse(t->vm, 10);
	T_ASSERT(pending(t));
	T_EQ_U64(ack(t), 0x2A);
	T_EQ_U64(read_isr(t, 0x20), 0x04);
	T_EQ_U64(read_isr(t, 0xA0), 0x04);
	eoi_slave(t);
	eoi_master(t);
	T_EQ_U64(read_isr(t, 0x20), 0x00);
	T_EQ_U64(read_isr(t, 0xA0), 0x00);
	vmx_irq_pulse(t->vm, PLAT_IRQ_RTC);
	T_EQ_U64(ack(t), 0x28);
	eoi_slave(t);
	eoi_master(t);

	/* IMR: a masked request waits in IRR. */
	out8(t, 0x21, 0x10);
	T_EQ_U64(in8(t, 0x21), 0x10);
	vmx_irq_pulse(t->vm, 4);
	T_ASSERT(!pending(t));
	T_EQ_U64(read_irr(t, 0x20), 0x10);
	out8(t, 0x21, 0x00);
	T_ASSERT(pending(t));
	T_EQ_U64(ack(t), 0x24);
	eoi_master(t);

	/* Spurious IRQ7: INTA with no request. */
	T_EQ_U64(ack(t), 0x27);
	T_EQ_U64(read_isr(t, 0x20), 0x00);
	/* Spurious IRQ15: the slave's request is masked after the master latched IR2. */
	vmx_irq_pulse(t->vm, 10);
	out8(t, 0xA1, 0x04);
	T_ASSERT(pending(t));
	T_EQ_U64(ack(t), 0x2F);
	T_EQ_U64(read_isr(t, 0xA0), 0x00);
	eoi_master(t);
	out8(t, 0xA1, 0x00);
	T_ASSERT(pending(t));   /* IR10 is still requested on the slave */
	T_EQ_U64(ack(t), 0x2A);
	eoi_slave(t);
	eoi_master(t);
	T_ASSERT(!pending(t));

	/* ELCR: reserved bits stay clear; level IRQ11 re-requests after EOI while high. */
	out8(t, 0x4D0, 0xff);
	T_EQ_U64(in8(t, 0x4D0), 0xf8);
	out8(t, 0x4D0, 0x00);
	out8(t, 0x4D1, 0xff);
	T_EQ_U64(in8(t, 0x4D1), 0xde);
	out8(t, 0x4D1, 0x08);
	T_EQ_U64(devtest_in(t, 0x4D0, 2), 0x0800);   /* a word access is split */
	vmx_irq_set(t->vm, 11, true);
	T_EQ_U64(ack(t), 0x2B);
	eoi_slave(t);
	eoi_master(t);
	T_ASSERT(pending(t));
	T_EQ_U64(ack(t), 0x2B);
	vmx_irq_set(t->vm, 11, false);
	eoi_slave(t);
	eoi_master(t);
	T_ASSERT(!pending(t));
	/* The same line as an edge input: one request only. */
	out8(t, 0x4D1, 0x00);
	vmx_irq_set(t->vm, 11, true);
	T_EQ_U64(ack(t), 0x2B);
	eoi_slave(t);
	eoi_master(t);
	T_ASSERT(!pending(t));
	vmx_irq_set(t->vm, 11, false);

	/* Poll mode: the read acknowledges and returns 0x80 | IR. */
	vmx_irq_pulse(t->vm, 6);
	out8(t, 0x20, 0x0C);
	T_EQ_U64(in8(t, 0x20), 0x86);
	T_EQ_U64(read_isr(t, 0x20), 0x40);
	eoi_master(t);
	out8(t, 0x20, 0x0C);
	T_EQ_U64(in8(t, 0x20), 0x00);

	/* Set priority: IR3 lowest makes IR4 highest, so IR5 beats IR1. */
	out8(t, 0x20, 0xC3);
	vmx_irq_pulse(t->vm, 1);
	vmx_irq_pulse(t->vm, 5);
	T_EQ_U64(ack(t), 0x25);
	/* Rotate on non-specific EOI: IR5 becomes lowest; IR1 is next. */
	out8(t, 0x20, 0xA0);
	T_EQ_U64(ack(t), 0x21);
	eoi_master(t);
	out8(t, 0x20, 0xC7);   /* back to IR0 highest */

	/* Special mask mode lets a lower level in while IR3 is in service and masked. */
	vmx_irq_pulse(t->vm, 3);
	T_EQ_U64(ack(t), 0x23);
	vmx_irq_pulse(t->vm, 5);
	T_ASSERT(!pending(t));
	out8(t, 0x21, 0x08);
	out8(t, 0x20, 0x68);   /* set special mask */
	T_ASSERT(pending(t));
	T_EQ_U64(ack(t), 0x25);
	out8(t, 0x20, 0x65);
	out8(t, 0x20, 0x48);   /* reset special mask */
	out8(t, 0x20, 0x63);
	out8(t, 0x21, 0x00);
	T_EQ_U64(read_isr(t, 0x20), 0x00);

	/* Auto-EOI: INTA leaves ISR clear. */
	pic_init_seq(t, 0x03);
	vmx_irq_pulse(t->vm, 4);
	T_EQ_U64(ack(t), 0x24);
	T_EQ_U64(read_isr(t, 0x20), 0x00);
	vmx_irq_pulse(t->vm, 4);
	T_ASSERT(pending(t));
	T_EQ_U64(ack(t), 0x24);

	/* ICW1 resets IMR and ISR; a new base takes effect. */
	out8(t, 0x21, 0xff);
	out8(t, 0x20, 0x11);
	out8(t, 0x21, 0x08);
	out8(t, 0x21, 0x04);
	out8(t, 0x21, 0x01);
	T_EQ_U64(in8(t, 0x21), 0x00);
	vmx_irq_pulse(t->vm, 0);
	T_EQ_U64(ack(t), 0x08);
	eoi_master(t);

	/* Hostile accesses: wider widths split, odd commands, IR2 from a device. */
	devtest_out(t, 0x20, 4, 0xffffffff);
	devtest_out(t, 0xA0, 2, 0x1234);
	(void)devtest_in(t, 0x20, 4);
	(void)devtest_in(t, 0x4D0, 4);
	vmx_irq_set(t->vm, 2, true);
	vmx_irq_set(t->vm, 2, false);
	for (unsigned v = 0; v < 256; v++) {
		out8(t, 0x20, (uint8_t)v);
		out8(t, 0x21, (uint8_t)v);
		(void)ack(t);
	}

	/* Saved state restores into a fresh PIC: base, IMR, ISR come back. */
	{
		struct vstate_buf b = { 0 };
		struct devtest *t2 = devtest_new("");
		char err[256];
		pic_init_seq(t, 0x01);
		out8(t, 0x21, 0x5a);
		vmx_irq_pulse(t->vm, 0);
		T_EQ_U64(ack(t), 0x20);
		T_ASSERT(vstate_save(&b, t->vm->devices->cls->state, t->vm->devices->priv) == 0);
		T_ASSERT(t2 && devtest_add(t2, "pic") == 0);
		if (t2 && t2->vm->devices) {
			b.pos = 0;
			T_ASSERT(vstate_load(&b, t2->vm->devices->cls->state, t2->vm->devices->priv,
			                     err, sizeof(err)) == 0);
			T_EQ_U64(in8(t2, 0x21), 0x5a);
			T_EQ_U64(read_isr(t2, 0x20), 0x01);
			eoi_master(t2);
			vmx_irq_pulse(t2->vm, 0);
			T_EQ_U64(ack(t2), 0x20);
			/* A truncated stream is refused. */
			b.pos = 0;
			b.len -= 3;
			T_ASSERT(vstate_load(&b, t2->vm->devices->cls->state, t2->vm->devices->priv,
			                     err, sizeof(err)) != 0);
		}
		vstate_buf_free(&b);
		devtest_free(t2);
		eoi_master(t);
		out8(t, 0x21, 0x00);
	}

	/* Reset through the class: state back to power-on. */
	for (struct vdev *d = t->vm->devices; d; d = d->next)
		d->cls->reset(d);
	T_ASSERT(!pending(t));
	T_EQ_U64(in8(t, 0x21), 0x00);
	T_EQ_U64(in8(t, 0x4D1), 0x00);

	devtest_free(t);
	return T_DONE();
}

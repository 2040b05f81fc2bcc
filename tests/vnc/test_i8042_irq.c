/*
 * test_i8042_irq.c — every byte the i8042 hands to an interrupt-driven
 * driver comes with its own interrupt edge at the IO-APIC (IRQ 1 and 12 are
 * edge-triggered there).  Linux's atkbd asks GETID and reads FA AB 83 one
 * byte per interrupt; when the line stayed high from FA to AB no new edge
 * came, the answer stalled, and the guest had no keyboard (found by the
 * VNC guest test: typed text never reached tty1).
 */
#include <stdio.h>
#include <string.h>

#include "tests/devices/devtest.h"
#include "tests/unit/t.h"
#include "vmx/platform.h"

#define DATA PLAT_PORT_I8042_DATA
#define CMD  PLAT_PORT_I8042_CMD

static struct devtest *t;

static void ioapic_route(unsigned pin, uint8_t vector)
{
	/* Fixed delivery, physical destination 0, edge, active high, unmasked. */
	devtest_mmio_write(t, PLAT_IOAPIC_BASE, 4, 0x10 + 2 * pin + 1);
	devtest_mmio_write(t, PLAT_IOAPIC_BASE + 0x10, 4, 0);
	devtest_mmio_write(t, PLAT_IOAPIC_BASE, 4, 0x10 + 2 * pin);
	devtest_mmio_write(t, PLAT_IOAPIC_BASE + 0x10, 4, vector);
}

/* Deliveries of `vector` recorded so far. */
static unsigned count(uint8_t vector)
{
	unsigned n = 0;
	for (unsigned i = 0; i < devtest_msi_count(t); i++)
		n += (devtest_msi_get(t, i).data & 0xFF) == vector;
	return n;
}

static void drain(void)
{
	for (int i = 0; i < 64 && (devtest_in(t, CMD, 1) & 1); i++)
		(void)devtest_in(t, DATA, 1);
}

/* As an interrupt handler does: one byte per interrupt. */
static void expect_irq_per_byte(uint8_t vector, unsigned base, const int *want, unsigned n,
                                const char *what)
{
	for (unsigned i = 0; i < n; i++) {
		unsigned got_irqs = count(vector) - base;
		if (got_irqs != i + 1)
			T_FAIL("%s: before byte %u: %u interrupts, want %u", what, i, got_irqs, i + 1);
		int b = (devtest_in(t, CMD, 1) & 1) ? (int)devtest_in(t, DATA, 1) : -1;
		if (b != want[i])
			T_FAIL("%s: byte %u: 0x%x, want 0x%x", what, i, (unsigned)b, (unsigned)want[i]);
	}
	T_EQ_I64(count(vector) - base, n);
	T_EQ_I64(devtest_in(t, CMD, 1) & 1, 0);
}

int main(void)
{
	t = devtest_new("");
	T_ASSERT(t != NULL);
	if (!t)
		return 1;
	T_EQ_I64(devtest_add(t, "ioapic"), 0);
	T_EQ_I64(devtest_add(t, "i8042"), 0);
	ioapic_route(1, 0x31);
	ioapic_route(12, 0x3C);
	drain();
	devtest_out(t, CMD, 1, 0xA8);        /* enable AUX */
	devtest_out(t, CMD, 1, 0x60);        /* CTR: translate, both interrupts, both enabled */
	devtest_out(t, DATA, 1, 0x47);
	drain();

	/* Keyboard GETID: FA, AB, 83 translated to 41. */
	unsigned base = count(0x31);
	devtest_out(t, DATA, 1, 0xF2);
	static const int kid[] = { 0xFA, 0xAB, 0x41 };
	expect_irq_per_byte(0x31, base, kid, 3, "keyboard GETID");

	/* Mouse GETID through D4: FA, 00 on IRQ 12. */
	base = count(0x3C);
	devtest_out(t, CMD, 1, 0xD4);
	devtest_out(t, DATA, 1, 0xF2);
	static const int mid[] = { 0xFA, 0x00 };
	expect_irq_per_byte(0x3C, base, mid, 2, "mouse GETID");

	/* Keyboard reset: FA, AA (BAT passed). */
	base = count(0x31);
	devtest_out(t, DATA, 1, 0xFF);
	static const int rst[] = { 0xFA, 0xAA };
	expect_irq_per_byte(0x31, base, rst, 2, "keyboard reset");

	devtest_free(t);
	return T_DONE();
}

/*
 * test_uart.c — the 16550A as Linux's 8250 driver sees it: autoconfig
 * identification, loopback, FIFO and overrun, interrupt priorities, the
 * THRE re-raise the driver tests for, the IRQ line and OUT2 gating.
 */
#include <stdio.h>
#include <string.h>

#include "tests/devices/devtest.h"
#include "tests/unit/t.h"
#include "vmx/platform.h"

#define COM1 PLAT_PORT_COM1
enum { RBR = 0, IER = 1, IIR = 2, FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7 };

static struct devtest *t;

static uint8_t in(unsigned reg)
{
	return (uint8_t)devtest_in(t, (uint16_t)(COM1 + reg), 1);
}

static void out(unsigned reg, uint8_t v)
{
	devtest_out(t, (uint16_t)(COM1 + reg), 1, v);
}

/*
 * The decisions drivers/tty/serial/8250/8250_port.c makes in autoconfig()
 * and autoconfig_16550a(), as register reads and writes; returns the type
 * name it would settle on.
 */
static const char *linux_autoconfig(void)
{
	uint8_t s1, s2, s3, st1, st2, iersave, save_lcr, save_mcr;

	/* Is there a UART: IER must hold 0 and then 0x0F. */
	s1 = in(IER);
	out(IER, 0);
	s2 = in(IER) & 0x0F;
	out(IER, 0x0F);
	s3 = in(IER) & 0x0F;
	out(IER, s1);
	if (s2 != 0 || s3 != 0x0F)
		return "none";

	save_mcr = in(MCR);
	save_lcr = in(LCR);
	/* Loopback: RTS|OUT2 must come back as CTS|DCD. */
	out(MCR, 0x10 | 0x0A);
	s2 = in(MSR) & 0xF0;
	out(MCR, save_mcr);
	if (s2 != 0x90)
		return "loopback-fail";

	out(LCR, 0xBF);
	out(2, 0);   /* EFR, on parts that have one */
	out(LCR, 0);
	out(FCR, 0x01);
	s1 = in(IIR) >> 6;
	if (s1 == 0)
		return "16450";
	if (s1 == 1)
		return "unknown";
	if (s1 == 2)
		return "16550";

	/* autoconfig_16550a */
	out(LCR, 0xBF);
	if (in(2) == 0)
		return "16650-family";
	out(LCR, 0);
	st1 = in(MCR);
	out(LCR, 0xE0);
	st2 = in(2);
	if (!((st2 ^ st1) & 0x10)) {
		out(LCR, 0);
		out(MCR, st1 ^ 0x10);
		out(LCR, 0xE0);
		st2 = in(2);
		out(LCR, 0);
		out(MCR, st1);
		if ((st2 ^ st1) & 0x10)
			return "NS16550A";
	}
	out(LCR, 0);
	out(FCR, 0x01 | 0x20);
	st1 = in(IIR) >> 5;
	out(FCR, 0x01);
	out(LCR, 0x80);
	out(FCR, 0x01 | 0x20);
	st2 = in(IIR) >> 5;
	out(FCR, 0x01);
	out(LCR, 0);
	if (st1 == 6 && st2 == 7)
		return "16750";
	iersave = in(IER);
	out(IER, iersave & (uint8_t)~0x40);
	if (!(in(IER) & 0x40)) {
		out(IER, iersave | 0x40);
		if (in(IER) & 0x40) {
			out(IER, iersave);
			return "XScale";
		}
	}
	out(IER, iersave);
	out(LCR, save_lcr);
	return "16550A";
}

int main(void)
{
	t = devtest_new("serial0.present = \"TRUE\"\nserial1.present = \"TRUE\"\n");
	if (!t)
		return 1;
	T_EQ_I64(devtest_add(t, "serial0"), 0);
	T_EQ_I64(devtest_add(t, "serial1"), 0);
	T_ASSERT(devtest_pio_claimed(t, PLAT_PORT_COM2, 1));
	T_ASSERT(!devtest_pio_claimed(t, 0x3E8, 1));

	/* Power-on state. */
	T_EQ_U64(in(LSR), 0x60);
	T_EQ_U64(in(IIR), 0x01);
	T_EQ_U64(in(MSR) & 0xF0, 0xB0);   /* CTS, DSR, DCD: a peer is "there" */

	T_STREQ(linux_autoconfig(), "16550A");

	/* Divisor latch and scratch. */
	out(LCR, 0x83);
	out(0, 0x01);
	out(1, 0x00);
	T_EQ_U64(in(0), 0x01);
	T_EQ_U64(in(1), 0x00);
	out(LCR, 0x03);
	T_EQ_U64(in(IER), 0x00);
	out(SCR, 0xA5);
	T_EQ_U64(in(SCR), 0xA5);

	/* The THRE test in serial8250_do_startup: enabling THRI raises THRE every time. */
	out(FCR, 0);
	out(MCR, 0x0B);
	out(IER, 0x02);
	T_EQ_U64(in(IIR), 0x02);
	T_EQ_U64(in(IIR), 0x01);          /* the IIR read acknowledged it */
	out(IER, 0);
	out(IER, 0x02);
	T_EQ_U64(in(IIR), 0x02);
	out(IER, 0);

	/* Loopback through a FIFO. */
	out(FCR, 0x07);
	out(MCR, 0x10);
	out(RBR, 'A');
	out(RBR, 'B');
	out(RBR, 'C');
	T_EQ_U64(in(LSR) & 0x61, 0x61);
	T_EQ_U64(in(RBR), 'A');
	T_EQ_U64(in(RBR), 'B');
	T_EQ_U64(in(RBR), 'C');
	T_EQ_U64(in(LSR) & 0x01, 0x00);

	/* 16 bytes fit; the 17th is an overrun, reported once. */
	for (int i = 0; i < 17; i++)
		out(RBR, (uint8_t)('a' + i));
	T_EQ_U64(in(LSR) & 0x03, 0x03);
	T_EQ_U64(in(LSR) & 0x03, 0x01);
	for (int i = 0; i < 16; i++)
		T_EQ_U64(in(RBR), 'a' + i);
	T_EQ_U64(in(LSR) & 0x01, 0x00);
	/* FCR clear-RX empties it. */
	out(RBR, 'z');
	out(FCR, 0x03);
	T_EQ_U64(in(LSR) & 0x01, 0x00);

	/* Interrupt identification order: RLS > RDA > THRE > MS. */
	out(FCR, 0x07);                   /* FIFO on, trigger 1 */
	out(MCR, 0x10);
	(void)in(MSR);
	out(MCR, 0x18);                   /* loop + OUT2 -> DCD changes: MS delta */
	out(IER, 0x0F);
	T_EQ_U64(in(IIR), 0xC2);          /* THRE first: it outranks MS */
	T_ASSERT(devtest_gsi_level(t, PLAT_IRQ_COM1));
	T_EQ_U64(in(IIR), 0xC0);          /* then modem status */
	T_EQ_U64(in(MSR) & 0x0F, 0x08);   /* DDCD */
	T_EQ_U64(in(IIR), 0xC1);
	T_ASSERT(!devtest_gsi_level(t, PLAT_IRQ_COM1));
	out(RBR, 'x');                    /* RX data (and THRE again) */
	T_EQ_U64(in(IIR), 0xC4);
	T_ASSERT(devtest_gsi_level(t, PLAT_IRQ_COM1));
	for (int i = 0; i < 16; i++)
		out(RBR, 'y');                /* overrun: line status outranks all */
	T_EQ_U64(in(IIR), 0xC6);
	(void)in(LSR);
	T_EQ_U64(in(IIR), 0xC4);
	out(FCR, 0x07);
	T_EQ_U64(in(IIR), 0xC2);
	T_EQ_U64(in(IIR), 0xC1);

	/* Trigger level 8: 4 bytes are not enough for RDA (only the timeout would be). */
	out(FCR, 0x87);
	for (int i = 0; i < 4; i++)
		out(RBR, '0');
	(void)in(IIR);                    /* drop the THRE from the writes */
	T_EQ_U64(in(IIR), 0xC1);
	for (int i = 0; i < 4; i++)
		out(RBR, '1');
	T_EQ_U64(in(IIR), 0xC4);

	/* OUT2 gates the line, not the identification. */
	out(MCR, 0x10);
	T_EQ_U64(in(IIR), 0xC4);
	T_ASSERT(!devtest_gsi_level(t, PLAT_IRQ_COM1));

	/* COM2 is independent and uses IRQ 3. */
	devtest_out(t, PLAT_PORT_COM2 + MCR, 1, 0x08);
	devtest_out(t, PLAT_PORT_COM2 + IER, 1, 0x02);
	T_ASSERT(devtest_gsi_level(t, PLAT_IRQ_COM2));
	T_EQ_U64(devtest_in(t, PLAT_PORT_COM2 + IIR, 1), 0x02);
	T_ASSERT(!devtest_gsi_level(t, PLAT_IRQ_COM2));

	/* Wide accesses are split into bytes; nothing out of range is claimed. */
	T_EQ_U64(devtest_in(t, COM1 + SCR - 1, 2) >> 8, 0xA5);
	T_ASSERT(!devtest_pio_claimed(t, COM1 + 8, 1));

	devtest_free(t);
	return T_DONE();
}

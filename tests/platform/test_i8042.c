/*
 * test_i8042.c — the keyboard controller as Linux's i8042/atkbd/psmouse
 * drivers drive it: self tests, command byte, AUX loopback with IRQ12,
 * keyboard reset/identify/LEDs/scan-code set, translation, the mouse with
 * the IntelliMouse knock, and the reset pulse.
 */
#include <stdio.h>
#include <string.h>

#include "tests/devices/devtest.h"
#include "tests/unit/t.h"
#include "vmx/dev/i8042.h"
#include "vmx/platform.h"

#define DATA PLAT_PORT_I8042_DATA
#define CMD  PLAT_PORT_I8042_CMD

static struct devtest *t;

static uint8_t status(void)
{
	return (uint8_t)devtest_in(t, CMD, 1);
}

static void cmd(uint8_t c)
{
	devtest_out(t, CMD, 1, c);
}

static void data(uint8_t d)
{
	devtest_out(t, DATA, 1, d);
}

/* Read one byte as a polling driver does: -1 when the output buffer stays empty. */
static int rd(void)
{
	if (!(status() & 0x01))
		return -1;
	return (int)devtest_in(t, DATA, 1);
}

static void expect_bytes(const int *want, unsigned n, const char *what)
{
	for (unsigned i = 0; i < n; i++) {
		int got = rd();
		if (got != want[i])
			T_FAIL("%s: byte %u: got 0x%x, want 0x%x", what, i, (unsigned)got, (unsigned)want[i]);
		else
			T_ASSERT(got == want[i]);
	}
	T_EQ_I64(rd(), -1);
}

#define EXPECT(what, ...)                                                      \
	do {                                                                   \
		static const int w_[] = { __VA_ARGS__ };                       \
		expect_bytes(w_, sizeof(w_) / sizeof(w_[0]), what);            \
	} while (0)

int main(void)
{
	struct i8042 *kc;
	uint8_t ctr;

	t = devtest_new("");
	if (!t)
		return 1;
	T_EQ_I64(devtest_add(t, "i8042"), 0);
	kc = devtest_priv(t, "i8042");
	T_ASSERT(kc != NULL);

	/* i8042_flush, then the controller self test and interface tests. */
	T_EQ_I64(rd(), -1);
	cmd(0xAA);
	T_ASSERT(status() & 0x08);   /* last write was a command */
	EXPECT("self test", 0x55);
	T_ASSERT(status() & 0x04);   /* system flag */
	cmd(0xAB);
	EXPECT("kbd interface test", 0x00);
	cmd(0xA9);
	EXPECT("aux interface test", 0x00);

	/* Command byte read/write. */
	cmd(0x20);
	ctr = (uint8_t)rd();
	T_EQ_U64(ctr, 0x45);
	cmd(0x60);
	data(0x47);                  /* + AUX interrupt */
	cmd(0x20);
	EXPECT("ctr", 0x47);
	cmd(0xA7);
	cmd(0x20);
	EXPECT("aux disabled", 0x67);
	cmd(0xA8);
	cmd(0x20);
	EXPECT("aux enabled", 0x47);

	/* AUX loopback (i8042_check_aux): the byte comes back as mouse data on IRQ12. */
	cmd(0xD3);
	data(0x5A);
	T_EQ_U64(status() & 0x21, 0x21);
	T_ASSERT(devtest_gsi_level(t, PLAT_IRQ_MOUSE));
	T_ASSERT(!devtest_gsi_level(t, PLAT_IRQ_KBD));
	EXPECT("aux loop", 0x5A);
	T_ASSERT(!devtest_gsi_level(t, PLAT_IRQ_MOUSE));

	/* Keyboard: reset, identify (translated 0x83 -> 0x41), LEDs, scan-code set. */
	data(0xFF);
	T_ASSERT(devtest_gsi_level(t, PLAT_IRQ_KBD));
	EXPECT("kbd reset", 0xFA, 0xAA);
	T_ASSERT(!devtest_gsi_level(t, PLAT_IRQ_KBD));
	data(0xF2);
	EXPECT("kbd id translated", 0xFA, 0xAB, 0x41);
	data(0xED);
	EXPECT("leds cmd", 0xFA);
	data(0x07);
	EXPECT("leds", 0xFA);
	data(0xF0);
	data(0x02);
	EXPECT("set 2", 0xFA, 0xFA);
	data(0xEE);
	EXPECT("echo", 0xEE);
	data(0x12);
	EXPECT("unknown cmd", 0xFE);

	/* Key events: set 2 in, set 1 out while translating. */
	i8042_key_event(kc, (const uint8_t[]){ 0x1C }, 1);              /* A make */
	i8042_key_event(kc, (const uint8_t[]){ 0xF0, 0x1C }, 2);        /* A break */
	i8042_key_event(kc, (const uint8_t[]){ 0xE0, 0xF0, 0x75 }, 3);  /* Up break */
	EXPECT("translated keys", 0x1E, 0x9E, 0xE0, 0xC8);

	/* Without translation the guest sees set 2, and the raw identify. */
	cmd(0x60);
	data(0x07);
	data(0xF2);
	EXPECT("kbd id raw", 0xFA, 0xAB, 0x83);
	i8042_key_event(kc, (const uint8_t[]){ 0xF0, 0x1C }, 2);
	EXPECT("raw keys", 0xF0, 0x1C);
	/* Scanning disabled: keys are dropped. */
	data(0xF5);
	EXPECT("disable", 0xFA);
	i8042_key_event(kc, (const uint8_t[]){ 0x1C }, 1);
	T_EQ_I64(rd(), -1);
	data(0xF4);
	EXPECT("enable", 0xFA);
	/* Keyboard interface disabled: bytes wait until it is enabled again. */
	cmd(0xAD);
	i8042_key_event(kc, (const uint8_t[]){ 0x1C }, 1);
	T_EQ_I64(rd(), -1);
	cmd(0xAE);
	EXPECT("kbd re-enabled", 0x1C);

	/* A fast typist (a VNC client): 200 shifted keys at once, far more than
	 * the keyboard's 16 bytes.  Every byte arrives, in order. */
	for (unsigned i = 0; i < 200; i++) {
		i8042_key_event(kc, (const uint8_t[]){ 0x12 }, 1);        /* LShift make */
		i8042_key_event(kc, (const uint8_t[]){ 0x1C }, 1);        /* A make */
		i8042_key_event(kc, (const uint8_t[]){ 0xF0, 0x1C }, 2);  /* A break */
		i8042_key_event(kc, (const uint8_t[]){ 0xF0, 0x12 }, 2);  /* LShift break */
	}
	{
		unsigned bad = 0, n = 0;
		int b;
		while ((b = rd()) >= 0) {
			/* raw set 2 here: 12 1C F0 1C F0 12 per key */
			static const uint8_t full[6] = { 0x12, 0x1C, 0xF0, 0x1C, 0xF0, 0x12 };
			if (b != full[n % 6])
				bad++;
			n++;
		}
		T_EQ_I64(n, 200 * 6);
		T_EQ_I64(bad, 0);
	}
	/* The backlog is bounded: a guest that never reads loses the excess,
	 * and the VM goes on. */
	for (unsigned i = 0; i < 3000; i++)
		i8042_key_event(kc, (const uint8_t[]){ 0x1C }, 1);
	{
		unsigned n = 0;
		while (rd() >= 0)
			n++;
		T_ASSERT(n >= 1024 && n < 3000);
	}
	/* F5 (default disable) forgets what was waiting. */
	for (unsigned i = 0; i < 40; i++)
		i8042_key_event(kc, (const uint8_t[]){ 0x1C }, 1);
	data(0xF5);
	{
		unsigned n = 0;
		while (rd() >= 0)
			n++;
		T_ASSERT(n <= 17);   /* what was in the keyboard's own buffer, and the ACK */
	}
	data(0xF4);
	EXPECT("enable again", 0xFA);

	/* Mouse: reset, identify, stream packets. */
	cmd(0xD4);
	data(0xFF);
	T_ASSERT(status() & 0x20);
	EXPECT("mouse reset", 0xFA, 0xAA, 0x00);
	cmd(0xD4);
	data(0xF2);
	EXPECT("mouse id", 0xFA, 0x00);
	i8042_mouse_event(kc, 5, 5, 0, 1);          /* not enabled yet: dropped */
	T_EQ_I64(rd(), -1);
	cmd(0xD4);
	data(0xF4);
	EXPECT("mouse enable", 0xFA);
	i8042_mouse_event(kc, 5, 3, 0, 1);          /* right 5, down 3, left button */
	EXPECT("packet", 0x29, 0x05, 0xFD);
	i8042_mouse_event(kc, -300, 0, 0, 0);       /* split into two packets */
	EXPECT("big move", 0x18, 0x01, 0x00, 0x18, 0xD3, 0x00);
	/* The IntelliMouse knock turns on 4-byte packets with the wheel. */
	{
		static const uint8_t knock[] = { 200, 100, 80 };
		for (unsigned i = 0; i < 3; i++) {
			cmd(0xD4);
			data(0xF3);
			cmd(0xD4);
			data(knock[i]);
		}
		EXPECT("knock", 0xFA, 0xFA, 0xFA, 0xFA, 0xFA, 0xFA);
		cmd(0xD4);
		data(0xF2);
		EXPECT("wheel id", 0xFA, 0x03);
		i8042_mouse_event(kc, 0, 0, -1, 0);
		EXPECT("wheel", 0x08, 0x00, 0x00, 0xFF);
	}
	cmd(0xD4);
	data(0xE9);
	EXPECT("status request", 0xFA, 0x20, 0x02, 80);

	/* Output port and reset: D1 with bit 0 clear, then the 0xFE pulse. */
	cmd(0xD0);
	EXPECT("output port", 0x03);
	T_EQ_I64(devtest_take_power(t), VMX_POWER_NONE);
	cmd(0xFF);                                   /* pulses nothing */
	T_EQ_I64(devtest_take_power(t), VMX_POWER_NONE);
	cmd(0xFE);
	T_EQ_I64(devtest_take_power(t), VMX_POWER_RESET);
	cmd(0xD1);
	data(0x02);
	T_EQ_I64(devtest_take_power(t), VMX_POWER_RESET);

	/* Junk: unknown commands and wide accesses neither crash nor leave bytes behind. */
	cmd(0x90);
	cmd(0xC5);
	(void)devtest_in(t, DATA, 4);
	T_EQ_I64(rd(), -1);

	devtest_free(t);
	return T_DONE();
}

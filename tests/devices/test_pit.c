/*
 * test_pit.c — the 8254 through ports 0x40-0x43 and 0x61: IRQ0 rate in
 * mode 2 (observed as IOAPIC messages and PIC requests), OUT2 in mode 0,
 * latch and read-back, gate, BCD, the period clamp.
 */
#include <time.h>

#include "devtest.h"
#include "tests/unit/t.h"
#include "vmx/platform.h"

#define SEL (PLAT_IOAPIC_BASE + 0x00)
#define WIN (PLAT_IOAPIC_BASE + 0x10)

static void out8(struct devtest *t, uint16_t port, uint8_t v)
{
	devtest_out(t, port, 1, v);
}

static uint8_t in8(struct devtest *t, uint16_t port)
{
	return (uint8_t)devtest_in(t, port, 1);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0)
		;
}

/* A VM with PIC + IOAPIC + PIT, IOAPIC pin 2 -> vector 0x30. */
static struct devtest *pit_vm(void)
{
	struct devtest *t = devtest_new("");

	if (!t || devtest_add(t, "pic") || devtest_add(t, "ioapic") || devtest_add(t, "pit")) {
		devtest_free(t);
		return NULL;
	}
	devtest_mmio_write(t, SEL, 4, 0x10 + 2 * 2);
	devtest_mmio_write(t, WIN, 4, 0x30);
	return t;
}

static uint16_t latch_read(struct devtest *t, unsigned ch)
{
	uint16_t v;

	out8(t, 0x43, (uint8_t)(ch << 6));
	v = in8(t, (uint16_t)(0x40 + ch));
	v |= (uint16_t)(in8(t, (uint16_t)(0x40 + ch)) << 8);
	return v;
}

static void test_irq0_rate(void)
{
	struct devtest *t = pit_vm();
	unsigned n, early = 0;
	uint64_t t0;

	if (!t) {
		T_FAIL("cannot build the VM");
		return;
	}
	/* Linux's periodic setup: channel 0, lohi, mode 2, 1 ms. */
	out8(t, 0x43, 0x34);
	out8(t, 0x40, 1193 & 0xff);
	t0 = vmx_clock_ns(t->vm->loop, VMX_CLOCK_VIRTUAL);
	out8(t, 0x40, 1193 >> 8);
	devtest_run_loop(t, 60);
	n = devtest_msi_count(t);
	/* 60 expected; the machine is shared and a late timer coalesces ticks. */
	if (n < 25 || n > 62)
		T_FAIL("mode 2, 1 ms: %u IRQ0 messages in 60 ms", n);
	for (unsigned i = 0; i < n; i++) {
		struct devtest_msi m = devtest_msi_get(t, i);
		T_EQ_U64(m.data & 0xff, 0x30);
		/* The i-th IRQ never comes before the end of the i-th period. */
		if (m.ns < t0 + (uint64_t)(i + 1) * 999835)
			early++;
	}
	T_EQ_U64(early, 0);
	/* The PIC saw IRQ0 too (IRR bit 0; it is not initialised, so nothing is acked). */
	out8(t, 0x20, 0x0A);
	T_EQ_U64(in8(t, 0x20) & 1, 1);
	devtest_free(t);
}

static void test_irq0_oneshot_and_clamp(void)
{
	struct devtest *t = pit_vm();
	unsigned n;

	if (!t) {
		T_FAIL("cannot build the VM");
		return;
	}
	/* Mode 4 (Linux's oneshot clockevent) after 5 ms: exactly one IRQ. */
	out8(t, 0x43, 0x38);
	out8(t, 0x40, 5966 & 0xff);
	out8(t, 0x40, 5966 >> 8);
	/* Channel 1, mode 2 with count 2: no IRQ, no timer. */
	out8(t, 0x43, 0x74);
	out8(t, 0x41, 2);
	out8(t, 0x41, 0);
	devtest_run_loop(t, 40);
	T_EQ_U64(devtest_msi_count(t), 1);
	devtest_free(t);

	/* Mode 2 with a count of 2 (1.7 µs): slowed to >= 100 µs per IRQ. */
	t = pit_vm();
	if (!t) {
		T_FAIL("cannot build the VM");
		return;
	}
	out8(t, 0x43, 0x34);
	out8(t, 0x40, 2);
	out8(t, 0x40, 0);
	devtest_run_loop(t, 30);
	n = devtest_msi_count(t);
	if (n < 5 || n > 310)
		T_FAIL("clamped period: %u IRQ0 messages in 30 ms", n);
	devtest_free(t);
}

static void test_channel2(void)
{
	struct devtest *t = pit_vm();
	uint16_t a, b;
	uint8_t st;
	bool saw_hi = false, saw_lo = false;

	if (!t) {
		T_FAIL("cannot build the VM");
		return;
	}
	/* Linux's pit_calibrate_tsc(): gate on, speaker off, mode 0, 10 ms. */
	out8(t, 0x61, (uint8_t)((in8(t, 0x61) & ~0x02) | 0x01));
	T_EQ_U64(in8(t, 0x61) & 0x0f, 0x01);
	out8(t, 0x43, 0xB0);
	out8(t, 0x42, 11932 & 0xff);
	out8(t, 0x42, 11932 >> 8);
	T_EQ_U64(in8(t, 0x61) & 0x20, 0);
	a = latch_read(t, 2);
	T_ASSERT(a <= 11932 && a > 11000);
	sleep_ms(3);
	b = latch_read(t, 2);
	T_ASSERT(b < a);
	T_EQ_U64(in8(t, 0x61) & 0x20, 0);
	sleep_ms(9);
	T_EQ_U64(in8(t, 0x61) & 0x20, 0x20);
	/* After the terminal count the counter wraps and keeps counting down. */
	a = latch_read(t, 2);
	T_ASSERT(a > 11932);

	/* Read-back: status then count of channel 2. */
	out8(t, 0x43, 0xC8);
	st = in8(t, 0x42);
	T_EQ_U64(st, 0x80 | 0x30 | 0x00);   /* OUT high, lohi, mode 0, binary */
	a = in8(t, 0x42);
	a |= (uint16_t)(in8(t, 0x42) << 8);
	T_ASSERT(a > 11932);
	/* Null count right after a control word. */
	out8(t, 0x43, 0xB0);
	out8(t, 0x43, 0xE8);   /* status only */
	T_EQ_U64(in8(t, 0x42), 0x70);   /* OUT low (mode 0), null count, lohi */

	/* A latched count holds still until read. */
	out8(t, 0x42, 0xff);
	out8(t, 0x42, 0xff);
	out8(t, 0x43, 0x80);
	sleep_ms(2);
	a = in8(t, 0x42);
	a |= (uint16_t)(in8(t, 0x42) << 8);
	b = latch_read(t, 2);
	T_ASSERT(a > b);
	T_ASSERT(a - b > 2000);   /* 2 ms is 2386 clocks */

	/* Gate low suspends mode 0 counting. */
	out8(t, 0x61, 0x00);
	a = latch_read(t, 2);
	sleep_ms(2);
	b = latch_read(t, 2);
	T_EQ_U64(a, b);
	out8(t, 0x61, 0x01);
	sleep_ms(1);
	b = latch_read(t, 2);
	T_ASSERT(b < a);

	/* Lobyte-only access. */
	out8(t, 0x43, 0x90);   /* ch2, lsb, mode 0 */
	out8(t, 0x42, 200);
	T_ASSERT(in8(t, 0x42) <= 200);

	/* BCD: count 1000 (0x1000), every nibble read back is a decimal digit. */
	out8(t, 0x43, 0xB1);
	out8(t, 0x42, 0x00);
	out8(t, 0x42, 0x10);
	a = latch_read(t, 2);
	T_ASSERT((a & 0xf) <= 9 && ((a >> 4) & 0xf) <= 9 && ((a >> 8) & 0xf) <= 9 &&
	         (a >> 12) <= 1);
	sleep_ms(2);   /* 2386 clocks: past the terminal count of 1000 */
	T_EQ_U64(in8(t, 0x61) & 0x20, 0x20);

	/* Mode 3, 1 ms period: OUT2 is high and low about half the time each. */
	out8(t, 0x43, 0xB6);
	out8(t, 0x42, 1193 & 0xff);
	out8(t, 0x42, 1193 >> 8);
	for (unsigned i = 0; i < 200000 && !(saw_hi && saw_lo); i++) {
		if (in8(t, 0x61) & 0x20)
			saw_hi = true;
		else
			saw_lo = true;
	}
	T_ASSERT(saw_hi && saw_lo);
	/* Mode 3 counts by two, even values only. */
	a = latch_read(t, 2);
	T_EQ_U64(a & 1, 0);
	/* Gate low forces OUT high in mode 3. */
	out8(t, 0x61, 0x00);
	T_EQ_U64(in8(t, 0x61) & 0x20, 0x20);

	/* Refresh toggle (bit 4) changes over time. */
	saw_hi = saw_lo = false;
	for (unsigned i = 0; i < 200000 && !(saw_hi && saw_lo); i++) {
		if (in8(t, 0x61) & 0x10)
			saw_hi = true;
		else
			saw_lo = true;
	}
	T_ASSERT(saw_hi && saw_lo);

	/* Mode 1 waits for a gate edge: OUT high until triggered, low until count. */
	out8(t, 0x43, 0xB2);
	out8(t, 0x42, 0x9c);
	out8(t, 0x42, 0x2e);   /* 11932: 10 ms */
	T_EQ_U64(in8(t, 0x61) & 0x20, 0x20);
	out8(t, 0x61, 0x01);
	T_EQ_U64(in8(t, 0x61) & 0x20, 0);
	sleep_ms(12);
	T_EQ_U64(in8(t, 0x61) & 0x20, 0x20);

	/* Hostile: reads of the control port, counts before a control word, widths. */
	T_EQ_U64(in8(t, 0x43), 0xff);
	devtest_out(t, 0x40, 4, 0xffffffff);
	(void)devtest_in(t, 0x40, 4);
	(void)devtest_in(t, 0x61, 2);
	for (unsigned v = 0; v < 256; v++) {
		out8(t, 0x43, (uint8_t)v);
		out8(t, (uint16_t)(0x40 + v % 3), (uint8_t)v);
		(void)in8(t, (uint16_t)(0x40 + v % 3));
	}
	for (struct vdev *d = t->vm->devices; d; d = d->next)
		d->cls->reset(d);
	T_EQ_U64(in8(t, 0x61) & 0x2f, 0);
	devtest_free(t);
}

int main(void)
{
	test_irq0_rate();
	test_irq0_oneshot_and_clamp();
	test_channel2();
	return T_DONE();
}

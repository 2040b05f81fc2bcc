/*
 * test_rtc.c — the MC146818 through ports 0x70-0x73: time against the
 * host's UTC clock, BCD/binary/12h formats, setting the time, UIP, register
 * C flags and IRQ8, CMOS memory-size bytes.
 */
#include <stdlib.h>
#include <time.h>

#include "devtest.h"
#include "tests/unit/t.h"
#include "vmx/log.h"
#include "vmx/platform.h"

static uint8_t cmos_read(struct devtest *t, uint8_t idx)
{
	devtest_out(t, 0x70, 1, idx);
	return (uint8_t)devtest_in(t, 0x71, 1);
}

static void cmos_write(struct devtest *t, uint8_t idx, uint8_t v)
{
	devtest_out(t, 0x70, 1, idx);
	devtest_out(t, 0x71, 1, v);
}

static unsigned bcd(unsigned v)
{
	return (v >> 4) * 10 + (v & 0xf);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0)
		;
}

/* Read the time as Linux's mc146818_get_time() does, into seconds since 1970. */
static int64_t rtc_time(struct devtest *t, bool binary, bool h12)
{
	struct tm tm = { 0 };
	unsigned v[8], hour;
	static const uint8_t regs[8] = { 0, 2, 4, 7, 8, 9, 0x32, 6 };

	for (unsigned spin = 0; spin < 10000000 && (cmos_read(t, 0x0A) & 0x80); spin++)
		;
	for (unsigned i = 0; i < 8; i++) {
		v[i] = cmos_read(t, regs[i]);
		if (i == 2 && h12)
			continue;
		if (!binary)
			v[i] = bcd(v[i]);
	}
	hour = v[2];
	if (h12) {
		unsigned pm = hour & 0x80;
		hour = binary ? hour & 0x7f : bcd(hour & 0x7f);
		T_ASSERT(hour >= 1 && hour <= 12);
		hour = hour % 12 + (pm ? 12 : 0);
	}
	tm.tm_sec = (int)v[0];
	tm.tm_min = (int)v[1];
	tm.tm_hour = (int)hour;
	tm.tm_mday = (int)v[3];
	tm.tm_mon = (int)v[4] - 1;
	tm.tm_year = (int)(v[6] * 100 + v[5]) - 1900;
	/* Day of week (1 = Sunday) must match the date. */
	{
		time_t tt = timegm(&tm);
		struct tm chk;
		gmtime_r(&tt, &chk);
		T_EQ_U64(v[7], (unsigned)chk.tm_wday + 1);
		return (int64_t)tt;
	}
}

static void check_near_host(struct devtest *t, bool binary, bool h12)
{
	int64_t now = (int64_t)time(NULL), rtc = rtc_time(t, binary, h12);

	if (llabs(rtc - now) > 2)
		T_FAIL("RTC (binary %d, 12h %d) reads %lld, host %lld", binary, h12, (long long)rtc,
		       (long long)now);
}

static void test_time_formats(void)
{
	struct devtest *t = devtest_new("");

	if (!t || devtest_add(t, "rtc") != 0) {
		T_FAIL("cannot build the VM");
		return;
	}
	T_EQ_U64(cmos_read(t, 0x0A) & 0x7f, 0x26);
	T_EQ_U64(cmos_read(t, 0x0B), 0x02);
	T_EQ_U64(cmos_read(t, 0x0D), 0x80);
	check_near_host(t, false, false);
	cmos_write(t, 0x0B, 0x06);   /* binary, 24h */
	check_near_host(t, true, false);
	cmos_write(t, 0x0B, 0x04);   /* binary, 12h */
	check_near_host(t, true, true);
	cmos_write(t, 0x0B, 0x00);   /* BCD, 12h */
	check_near_host(t, false, true);
	cmos_write(t, 0x0B, 0x02);

	/* The NMI mask bit does not change the index. */
	devtest_out(t, 0x70, 1, 0x80 | 0x0D);
	T_EQ_U64(devtest_in(t, 0x71, 1), 0x80);
	/* C and D are read-only; reserved-looking A bits kept, UIP not writable. */
	cmos_write(t, 0x0D, 0x00);
	T_EQ_U64(cmos_read(t, 0x0D), 0x80);
	cmos_write(t, 0x0A, 0x20);   /* no periodic rate: PF stays clear */
	(void)cmos_read(t, 0x0C);
	cmos_write(t, 0x0C, 0xff);
	T_EQ_U64(cmos_read(t, 0x0C), 0x00);
	cmos_write(t, 0x0A, 0x26);

	/* UIP rises before each update; after it falls the second has moved on. */
	{
		bool seen = false;
		uint8_t before = 0, after;
		uint64_t start = vlog_now_ns();
		/* The window is 244 µs a second: on a loaded host, try for a few seconds. */
		while (vlog_now_ns() - start < 6000000000ull) {
			before = cmos_read(t, 0x00);
			if (cmos_read(t, 0x0A) & 0x80) {
				seen = true;
				break;
			}
		}
		T_ASSERT(seen);
		while (seen && (cmos_read(t, 0x0A) & 0x80))
			;
		after = cmos_read(t, 0x00);
		if (seen)
			T_ASSERT(after != before);
	}

	/* Upper bank through 0x72/0x73 is separate from the lower one. */
	devtest_out(t, 0x72, 1, 0x10);
	devtest_out(t, 0x73, 1, 0xAB);
	T_EQ_U64(devtest_in(t, 0x73, 1), 0xAB);
	T_ASSERT(cmos_read(t, 0x10) != 0xAB);
	cmos_write(t, 0x40, 0x5A);
	T_EQ_U64(cmos_read(t, 0x40), 0x5A);
	/* A word write to 0x70 is index then data. */
	devtest_out(t, 0x70, 2, 0x6641);
	T_EQ_U64(cmos_read(t, 0x41), 0x66);
	devtest_free(t);
}

static void test_set_time(void)
{
	struct devtest *t = devtest_new("");
	int64_t rtc;

	if (!t || devtest_add(t, "rtc") != 0) {
		T_FAIL("cannot build the VM");
		return;
	}
	/* Linux's set sequence: SET, write BCD fields, clear SET. */
	cmos_write(t, 0x0B, 0x82);
	cmos_write(t, 0x00, 0x58);
	cmos_write(t, 0x02, 0x59);
	cmos_write(t, 0x04, 0x23);
	cmos_write(t, 0x07, 0x31);
	cmos_write(t, 0x08, 0x12);
	cmos_write(t, 0x09, 0x99);
	cmos_write(t, 0x32, 0x19);
	/* While SET, the clock does not run. */
	sleep_ms(1100);
	T_EQ_U64(cmos_read(t, 0x00), 0x58);
	T_EQ_U64(cmos_read(t, 0x0A) & 0x80, 0);
	cmos_write(t, 0x0B, 0x02);
	sleep_ms(2200);
	/* 1999-12-31 23:59:58 + 2.2 s: Saturday 2000-01-01 00:00:00 (or :01 when slow). */
	T_ASSERT(cmos_read(t, 0x00) <= 0x02);
	T_EQ_U64(cmos_read(t, 0x02), 0x00);
	T_EQ_U64(cmos_read(t, 0x04), 0x00);
	T_EQ_U64(cmos_read(t, 0x07), 0x01);
	T_EQ_U64(cmos_read(t, 0x08), 0x01);
	T_EQ_U64(cmos_read(t, 0x09), 0x00);
	T_EQ_U64(cmos_read(t, 0x32), 0x20);
	T_EQ_U64(cmos_read(t, 0x06), 7);

	/* One field written while running moves the time by that much. */
	cmos_write(t, 0x09, 0x24);   /* year 2024 */
	rtc = rtc_time(t, false, false);
	T_ASSERT(rtc >= 1704067200 && rtc < 1704067200 + 10);   /* 2024-01-01 00:00:00 */

	/* Garbage in the time registers is clamped, never fatal. */
	cmos_write(t, 0x0B, 0x82);
	cmos_write(t, 0x08, 0x99);
	cmos_write(t, 0x07, 0x00);
	cmos_write(t, 0x04, 0xff);
	cmos_write(t, 0x0B, 0x02);
	(void)rtc_time(t, false, false);
	/* Divider reset holds the time too; leaving it restarts the clock. */
	cmos_write(t, 0x0A, 0x76);
	T_EQ_U64(cmos_read(t, 0x0A), 0x76);
	cmos_write(t, 0x0A, 0x26);
	devtest_free(t);
}

static void test_interrupts(void)
{
	struct devtest *t = devtest_new("");
	uint8_t c;

	if (!t || devtest_add(t, "pic") || devtest_add(t, "rtc") != 0) {
		T_FAIL("cannot build the VM");
		return;
	}
	/* Periodic flag without PIE: PF set, no IRQF, no IRQ8. */
	cmos_write(t, 0x0A, 0x26);
	(void)cmos_read(t, 0x0C);
	sleep_ms(5);
	c = cmos_read(t, 0x0C);
	T_EQ_U64(c & 0xC0, 0x40);
	T_ASSERT(!devtest_gsi_level(t, PLAT_IRQ_RTC));
	T_EQ_U64(cmos_read(t, 0x0C) & 0x40, 0);   /* cleared by the read */

	/* UIE + AIE with an alarm of "any": both flags after an update; IRQ8 high. */
	cmos_write(t, 0x01, 0xC0);
	cmos_write(t, 0x03, 0xC0);
	cmos_write(t, 0x05, 0xC0);
	cmos_write(t, 0x0B, 0x02 | 0x10 | 0x20);
	devtest_run_loop(t, 1150);
	T_ASSERT(devtest_gsi_level(t, PLAT_IRQ_RTC));
	/* The PIC latched IRQ8 on the slave. */
	devtest_out(t, 0xA0, 1, 0x0A);
	T_EQ_U64(devtest_in(t, 0xA0, 1) & 1, 1);
	c = cmos_read(t, 0x0C);
	T_EQ_U64(c & 0xB0, 0xB0);
	T_ASSERT(!devtest_gsi_level(t, PLAT_IRQ_RTC));
	T_EQ_U64(cmos_read(t, 0x0C) & 0x80, 0);
	/* SET clears UIE. */
	cmos_write(t, 0x0B, 0x82 | 0x10);
	T_EQ_U64(cmos_read(t, 0x0B), 0x82);
	cmos_write(t, 0x0B, 0x02);
	devtest_free(t);

	/* PIE at 1024 Hz raises IRQ8 from the periodic timer. */
	t = devtest_new("");
	if (!t || devtest_add(t, "rtc") != 0) {
		T_FAIL("cannot build the VM");
		return;
	}
	cmos_write(t, 0x0B, 0x02 | 0x40);
	(void)cmos_read(t, 0x0C);
	T_ASSERT(!devtest_gsi_level(t, PLAT_IRQ_RTC));
	devtest_run_loop(t, 20);
	T_ASSERT(devtest_gsi_level(t, PLAT_IRQ_RTC));
	T_EQ_U64(cmos_read(t, 0x0C) & 0xC0, 0xC0);
	/* Reset clears the enables and the flags. */
	for (struct vdev *d = t->vm->devices; d; d = d->next)
		d->cls->reset(d);
	T_EQ_U64(cmos_read(t, 0x0B), 0x02);
	T_ASSERT(!devtest_gsi_level(t, PLAT_IRQ_RTC));
	devtest_free(t);
}

static void test_cmos_memory(void)
{
	struct devtest *t = devtest_new("memsize = \"5120\"\nnumvcpus = \"4\"\n");
	unsigned sum = 0;

	if (!t || devtest_add(t, "rtc") != 0) {
		T_FAIL("cannot build the VM");
		return;
	}
	T_EQ_U64(cmos_read(t, 0x15) | cmos_read(t, 0x16) << 8, 640);
	T_EQ_U64(cmos_read(t, 0x17) | cmos_read(t, 0x18) << 8, 0xffff);
	T_EQ_U64(cmos_read(t, 0x30) | cmos_read(t, 0x31) << 8, 0xffff);
	/* 3 GiB below the hole: (3 GiB - 16 MiB) / 64 KiB. */
	T_EQ_U64(cmos_read(t, 0x34) | cmos_read(t, 0x35) << 8, (3072 - 16) * 16);
	/* 2 GiB above 4 GiB in 64 KiB units. */
	T_EQ_U64(cmos_read(t, 0x5b) | cmos_read(t, 0x5c) << 8 | cmos_read(t, 0x5d) << 16,
	         2048 * 16);
	T_EQ_U64(cmos_read(t, 0x5f), 3);
	for (unsigned i = 0x10; i <= 0x2d; i++)
		sum += cmos_read(t, (uint8_t)i);
	T_EQ_U64(cmos_read(t, 0x2e) << 8 | cmos_read(t, 0x2f), sum & 0xffff);
	devtest_free(t);

	t = devtest_new("memsize = \"64\"\n");
	if (!t || devtest_add(t, "rtc") != 0) {
		T_FAIL("cannot build the VM");
		return;
	}
	T_EQ_U64(cmos_read(t, 0x17) | cmos_read(t, 0x18) << 8, 63 * 1024);
	T_EQ_U64(cmos_read(t, 0x34) | cmos_read(t, 0x35) << 8, 48 * 16);
	T_EQ_U64(cmos_read(t, 0x5b) | cmos_read(t, 0x5c) | cmos_read(t, 0x5d), 0);
	T_EQ_U64(cmos_read(t, 0x5f), 0);
	/* Hostile: every register, every value, every width. */
	for (unsigned i = 0; i < 256; i++) {
		devtest_out(t, 0x70, 1, i);
		devtest_out(t, 0x71, 1, (i * 37) & 0xff);
		(void)devtest_in(t, 0x71, 1);
		devtest_out(t, 0x72, 4, i * 0x01010101u);
		(void)devtest_in(t, 0x70, 4);
	}
	devtest_free(t);
}

int main(void)
{
	test_time_formats();
	test_cmos_memory();
	test_interrupts();
	test_set_time();
	return T_DONE();
}

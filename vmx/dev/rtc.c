/*
 * rtc.c — MC146818 RTC and CMOS at 0x70/0x71 (upper 128 bytes at 0x72/0x73).
 *
 * Time of day is the host's UTC clock plus an offset that a guest write to
 * the time registers sets (kept for the VM's run).  The registers are
 * computed on read; nothing ticks except a 1 Hz update timer (update-ended
 * and alarm interrupts) and, while PIE is set, the periodic timer.  Flags
 * the guest polls in register C are also brought up to date on every access,
 * so they are right even before the loop thread has run a timer.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../device.h"
#include "../iobus.h"
#include "../irq.h"
#include "../lock.h"
#include "../log.h"
#include "../loop.h"
#include "../mem.h"
#include "../platform.h"
#include "../vm.h"
#include "../vstate.h"

#define RTC_SEC        0x00
#define RTC_SEC_ALARM  0x01
#define RTC_MIN        0x02
#define RTC_MIN_ALARM  0x03
#define RTC_HOUR       0x04
#define RTC_HOUR_ALARM 0x05
#define RTC_DOW        0x06
#define RTC_DAY        0x07
#define RTC_MONTH      0x08
#define RTC_YEAR       0x09
#define RTC_REG_A      0x0A
#define RTC_REG_B      0x0B
#define RTC_REG_C      0x0C
#define RTC_REG_D      0x0D
#define RTC_CENTURY    0x32

#define RTC_A_UIP      0x80
#define RTC_B_SET      0x80
#define RTC_B_PIE      0x40
#define RTC_B_AIE      0x20
#define RTC_B_UIE      0x10
#define RTC_B_DM_BIN   0x04
#define RTC_B_24H      0x02
#define RTC_C_IRQF     0x80
#define RTC_C_PF       0x40
#define RTC_C_AF       0x20
#define RTC_C_UF       0x10
#define RTC_D_VRT      0x80

#define NS_PER_S       1000000000ll
/* UIP rises this long before each update (the datasheet's 244 µs). */
#define RTC_UIP_NS     244141ll

struct rtc {
	struct vmx_mutex lock;
	struct vmx_vm *vm;
	struct vmx_timer *update_timer;     /* VMX_CLOCK_REAL: next second boundary */
	struct vmx_timer *periodic_timer;   /* VMX_CLOCK_VIRTUAL */
	uint8_t cmos[256];
	uint8_t index;              /* 0x70: low bank */
	uint8_t index_hi;           /* 0x72: upper bank */
	uint8_t nmi_masked;         /* bit 7 of the last 0x70 write */
	uint8_t stopped;            /* SET or divider reset: registers hold the time */
	uint8_t irq_level;
	/* guest UTC = host UTC + offset; split so that years past 2262 cannot overflow */
	int64_t offset_sec;
	int64_t offset_nsec;        /* 0 .. NS_PER_S-1 */
	int64_t last_update_sec;    /* guest second whose update cycle was processed */
	uint64_t pf_base_ns;        /* virtual ns the periodic rate was last (re)started */
	uint64_t pf_last;           /* periodic edges processed since pf_base_ns */
};

static const struct vstate_field rtc_state_fields[] = {
	VSTATE_FIELD(struct rtc, cmos),
	VSTATE_FIELD(struct rtc, index),
	VSTATE_FIELD(struct rtc, index_hi),
	VSTATE_FIELD(struct rtc, nmi_masked),
	VSTATE_FIELD(struct rtc, stopped),
	VSTATE_FIELD(struct rtc, irq_level),
	VSTATE_FIELD(struct rtc, offset_sec),
	VSTATE_FIELD(struct rtc, offset_nsec),
	VSTATE_FIELD(struct rtc, last_update_sec),
	VSTATE_END
};

static const struct vstate_desc rtc_state = {
	.name = "rtc",
	.version = 1,
	.fields = rtc_state_fields,
};

/* ---- calendar (proleptic Gregorian, days since 1970-01-01) ---- */

static int64_t rtc_days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (int64_t)(m > 2 ? m - 3 : m + 9) + 2) / 5 + (int64_t)d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

struct rtc_tm {
	int64_t year;
	unsigned mon, mday, hour, min, sec, wday;   /* wday 0 = Sunday */
};

static void rtc_civil_from_secs(int64_t t, struct rtc_tm *tm)
{
	int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
	int64_t rem = t - days * 86400;
	int64_t z = days + 719468, era, doe, yoe, doy, mp;

	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	tm->mday = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
	tm->mon = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
	tm->year = yoe + era * 400 + (tm->mon <= 2);
	tm->hour = (unsigned)(rem / 3600);
	tm->min = (unsigned)(rem / 60 % 60);
	tm->sec = (unsigned)(rem % 60);
	tm->wday = (unsigned)(((days + 4) % 7 + 7) % 7);
}

/* ---- register encoding ---- */

static uint8_t rtc_enc(const struct rtc *r, unsigned v)
{
	v %= 100;
	if (r->cmos[RTC_REG_B] & RTC_B_DM_BIN)
		return (uint8_t)v;
	return (uint8_t)((v / 10) << 4 | (v % 10));
}

static unsigned rtc_dec(const struct rtc *r, uint8_t v)
{
	if (r->cmos[RTC_REG_B] & RTC_B_DM_BIN)
		return v;
	return (unsigned)(v >> 4) * 10 + (v & 0xf);
}

static uint8_t rtc_enc_hour(const struct rtc *r, unsigned h)
{
	if (r->cmos[RTC_REG_B] & RTC_B_24H)
		return rtc_enc(r, h);
	return (uint8_t)(rtc_enc(r, h % 12 ? h % 12 : 12) | (h >= 12 ? 0x80 : 0));
}

static unsigned rtc_dec_hour(const struct rtc *r, uint8_t v)
{
	unsigned h;

	if (r->cmos[RTC_REG_B] & RTC_B_24H)
		return rtc_dec(r, v);
	h = rtc_dec(r, v & 0x7f) % 12;
	return (v & 0x80) ? h + 12 : h;
}

static struct timespec rtc_host_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts;
}

/* Guest time now: whole seconds (floor) and the nanoseconds into that second. */
static int64_t rtc_guest_now(const struct rtc *r, int64_t *nsec)
{
	struct timespec ts = rtc_host_now();
	int64_t ns = ts.tv_nsec + r->offset_nsec, sec = (int64_t)ts.tv_sec + r->offset_sec;

	if (ns >= NS_PER_S) {
		ns -= NS_PER_S;
		sec++;
	}
	if (nsec)
		*nsec = ns;
	return sec;
}

static int64_t rtc_guest_sec(const struct rtc *r)
{
	return rtc_guest_now(r, NULL);
}

/* Make the guest time equal sec + nsec now. */
static void rtc_set_guest_time(struct rtc *r, int64_t sec, int64_t nsec)
{
	struct timespec ts = rtc_host_now();
	int64_t ns = nsec - ts.tv_nsec;

	r->offset_sec = sec - (int64_t)ts.tv_sec;
	if (ns < 0) {
		ns += NS_PER_S;
		r->offset_sec--;
	}
	r->offset_nsec = ns;
}

/* Write the time t (guest seconds) into registers 0-9 and the century. */
static void rtc_fill(struct rtc *r, int64_t t)
{
	struct rtc_tm tm;

	rtc_civil_from_secs(t, &tm);
	r->cmos[RTC_SEC] = rtc_enc(r, tm.sec);
	r->cmos[RTC_MIN] = rtc_enc(r, tm.min);
	r->cmos[RTC_HOUR] = rtc_enc_hour(r, tm.hour);
	r->cmos[RTC_DOW] = rtc_enc(r, tm.wday + 1);
	r->cmos[RTC_DAY] = rtc_enc(r, tm.mday);
	r->cmos[RTC_MONTH] = rtc_enc(r, tm.mon);
	r->cmos[RTC_YEAR] = rtc_enc(r, (unsigned)(((tm.year % 100) + 100) % 100));
	r->cmos[RTC_CENTURY] = rtc_enc(r, (unsigned)((tm.year / 100) % 100));
}

static unsigned rtc_clamp(unsigned v, unsigned lo, unsigned hi, const char *what)
{
	if (v < lo || v > hi) {
		vlog_guest("rtc: %s %u out of range %u-%u", what, v, lo, hi);
		return v < lo ? lo : hi;
	}
	return v;
}

/* The time the registers describe, in guest seconds. */
static int64_t rtc_regs_time(const struct rtc *r)
{
	unsigned sec = rtc_clamp(rtc_dec(r, r->cmos[RTC_SEC]), 0, 59, "second");
	unsigned min = rtc_clamp(rtc_dec(r, r->cmos[RTC_MIN]), 0, 59, "minute");
	unsigned hour = rtc_clamp(rtc_dec_hour(r, r->cmos[RTC_HOUR]), 0, 23, "hour");
	unsigned mday = rtc_clamp(rtc_dec(r, r->cmos[RTC_DAY]), 1, 31, "day");
	unsigned mon = rtc_clamp(rtc_dec(r, r->cmos[RTC_MONTH]), 1, 12, "month");
	unsigned yy = rtc_clamp(rtc_dec(r, r->cmos[RTC_YEAR]), 0, 99, "year");
	unsigned cc = rtc_clamp(rtc_dec(r, r->cmos[RTC_CENTURY]), 0, 99, "century");
	int64_t year = (int64_t)cc * 100 + yy;

	return rtc_days_from_civil(year, mon, mday) * 86400 + hour * 3600 + min * 60 + sec;
}

static bool rtc_divider_reset(const struct rtc *r)
{
	return (r->cmos[RTC_REG_A] & 0x60) == 0x60;
}

static bool rtc_should_stop(const struct rtc *r)
{
	return (r->cmos[RTC_REG_B] & RTC_B_SET) || rtc_divider_reset(r);
}

/* ---- interrupts ---- */

static void rtc_update_irq(struct rtc *r)
{
	uint8_t c = r->cmos[RTC_REG_C] & 0x70;
	bool level = (c & r->cmos[RTC_REG_B] & 0x70) != 0;

	r->cmos[RTC_REG_C] = (uint8_t)(c | (level ? RTC_C_IRQF : 0));
	if (level != r->irq_level) {
		r->irq_level = level;
		vmx_irq_set(r->vm, PLAT_IRQ_RTC, level);
	}
}

static uint64_t rtc_pf_period_ns(const struct rtc *r)
{
	unsigned rs = r->cmos[RTC_REG_A] & 0x0f;

	if (rs == 0 || rtc_divider_reset(r))
		return 0;
	if (rs < 3)
		rs += 7;   /* with the 32.768 kHz time base, 1 and 2 act as 8 and 9 */
	return ((uint64_t)1 << (rs - 1)) * (uint64_t)NS_PER_S / 32768;
}

static uint64_t rtc_vnow(const struct rtc *r)
{
	return vmx_clock_ns(r->vm->loop, VMX_CLOCK_VIRTUAL);
}

/* Bring PF, UF and AF up to date with the clocks. */
static void rtc_catch_up(struct rtc *r)
{
	uint64_t per = rtc_pf_period_ns(r);

	if (per) {
		uint64_t now = rtc_vnow(r);
		uint64_t k = now > r->pf_base_ns ? (now - r->pf_base_ns) / per : 0;
		if (k > r->pf_last) {
			r->pf_last = k;
			r->cmos[RTC_REG_C] |= RTC_C_PF;
		}
	}
	if (!r->stopped) {
		int64_t sec = rtc_guest_sec(r);
		if (sec > r->last_update_sec) {
			uint8_t s, m, h;
			r->last_update_sec = sec;
			r->cmos[RTC_REG_C] |= RTC_C_UF;
			rtc_fill(r, sec);
			s = r->cmos[RTC_SEC_ALARM];
			m = r->cmos[RTC_MIN_ALARM];
			h = r->cmos[RTC_HOUR_ALARM];
			/* 0xC0-0xFF in an alarm byte matches any value. */
			if (((s & 0xc0) == 0xc0 || s == r->cmos[RTC_SEC]) &&
			    ((m & 0xc0) == 0xc0 || m == r->cmos[RTC_MIN]) &&
			    ((h & 0xc0) == 0xc0 || h == r->cmos[RTC_HOUR]))
				r->cmos[RTC_REG_C] |= RTC_C_AF;
		}
	}
	rtc_update_irq(r);
}

static void rtc_arm_update(struct rtc *r)
{
	int64_t phase;

	if (r->stopped) {
		vmx_timer_cancel(r->update_timer);
		return;
	}
	(void)rtc_guest_now(r, &phase);
	/* A little past the boundary so the second has turned when it runs. */
	vmx_timer_arm_in(r->update_timer, (uint64_t)(NS_PER_S - phase) + 20000);
}

static void rtc_arm_periodic(struct rtc *r)
{
	uint64_t per = rtc_pf_period_ns(r);

	if (!per || !(r->cmos[RTC_REG_B] & RTC_B_PIE)) {
		vmx_timer_cancel(r->periodic_timer);
		return;
	}
	vmx_timer_arm(r->periodic_timer, r->pf_base_ns + (r->pf_last + 1) * per);
}

static void rtc_restart_periodic(struct rtc *r)
{
	r->pf_base_ns = rtc_vnow(r);
	r->pf_last = 0;
	rtc_arm_periodic(r);
}

static void rtc_update_cb(void *opaque)
{
	struct rtc *r = opaque;

	vmx_mutex_lock(&r->lock);
	rtc_catch_up(r);
	rtc_arm_update(r);
	vmx_mutex_unlock(&r->lock);
}

static void rtc_periodic_cb(void *opaque)
{
	struct rtc *r = opaque;

	vmx_mutex_lock(&r->lock);
	rtc_catch_up(r);
	/* While PF is still unread there is no new edge to give: wait for the C read. */
	if (!(r->cmos[RTC_REG_C] & RTC_C_PF))
		rtc_arm_periodic(r);
	vmx_mutex_unlock(&r->lock);
}

/* ---- start/stop of the time base (SET, divider reset) ---- */

static void rtc_set_running(struct rtc *r, bool was_divider_reset)
{
	bool stop = rtc_should_stop(r);

	if (stop && !r->stopped) {
		rtc_fill(r, rtc_guest_sec(r));
		r->stopped = 1;
	} else if (!stop && r->stopped) {
		int64_t t = rtc_regs_time(r);
		/* Leaving divider reset, the first update comes 500 ms later. */
		rtc_set_guest_time(r, t, was_divider_reset ? NS_PER_S / 2 : 0);
		r->last_update_sec = t;
		r->stopped = 0;
	}
	rtc_arm_update(r);
}

/* ---- register access ---- */

static uint8_t rtc_reg_read(struct rtc *r, unsigned idx)
{
	uint8_t v;

	rtc_catch_up(r);
	switch (idx) {
	case RTC_SEC:
	case RTC_MIN:
	case RTC_HOUR:
	case RTC_DOW:
	case RTC_DAY:
	case RTC_MONTH:
	case RTC_YEAR:
	case RTC_CENTURY:
		if (!r->stopped)
			rtc_fill(r, rtc_guest_sec(r));
		return r->cmos[idx];
	case RTC_REG_A:
		v = r->cmos[RTC_REG_A] & 0x7f;
		if (!r->stopped) {
			int64_t phase;
			(void)rtc_guest_now(r, &phase);
			if (phase >= NS_PER_S - RTC_UIP_NS)
				v |= RTC_A_UIP;
		}
		return v;
	case RTC_REG_C:
		v = r->cmos[RTC_REG_C];
		r->cmos[RTC_REG_C] = 0;
		rtc_update_irq(r);
		if (v & RTC_C_PF)
			rtc_arm_periodic(r);
		return v;
	case RTC_REG_D:
		return RTC_D_VRT;
	default:
		return r->cmos[idx];
	}
}

static void rtc_reg_write(struct rtc *r, unsigned idx, uint8_t val)
{
	bool was_reset;
	uint8_t old;

	rtc_catch_up(r);
	switch (idx) {
	case RTC_SEC:
	case RTC_MIN:
	case RTC_HOUR:
	case RTC_DOW:
	case RTC_DAY:
	case RTC_MONTH:
	case RTC_YEAR:
	case RTC_CENTURY:
		if (r->stopped) {
			r->cmos[idx] = val;
			return;
		} else {
			int64_t phase, sec = rtc_guest_now(r, &phase);
			rtc_fill(r, sec);
			r->cmos[idx] = val;
			sec = rtc_regs_time(r);
			/* Keep the sub-second phase: only the time of day moves. */
			rtc_set_guest_time(r, sec, phase);
			r->last_update_sec = sec;
			rtc_arm_update(r);
		}
		return;
	case RTC_REG_A:
		was_reset = rtc_divider_reset(r);
		old = r->cmos[RTC_REG_A];
		r->cmos[RTC_REG_A] = val & 0x7f;
		rtc_set_running(r, was_reset);
		if ((old ^ val) & 0x6f)
			rtc_restart_periodic(r);
		return;
	case RTC_REG_B:
		old = r->cmos[RTC_REG_B];
		if (val & RTC_B_SET)
			val &= (uint8_t)~RTC_B_UIE;   /* SET clears UIE */
		r->cmos[RTC_REG_B] = val;
		/* Entering SET freezes the registers, already in the new format. */
		rtc_set_running(r, false);
		if ((old ^ val) & RTC_B_PIE)
			rtc_arm_periodic(r);
		rtc_update_irq(r);
		return;
	case RTC_REG_C:
	case RTC_REG_D:
		return;   /* read-only */
	default:
		r->cmos[idx] = val;
		return;
	}
}

static uint64_t rtc_io_read(void *opaque, uint64_t off, unsigned size)
{
	struct rtc *r = opaque;
	uint8_t v;

	(void)size;
	if (off == 0)
		return 0xff;   /* the index register is write-only */
	vmx_mutex_lock(&r->lock);
	v = rtc_reg_read(r, r->index);
	vmx_mutex_unlock(&r->lock);
	return v;
}

static void rtc_io_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct rtc *r = opaque;

	(void)size;
	vmx_mutex_lock(&r->lock);
	if (off == 0) {
		r->index = val & 0x7f;
		r->nmi_masked = (val >> 7) & 1;
	} else {
		rtc_reg_write(r, r->index, (uint8_t)val);
	}
	vmx_mutex_unlock(&r->lock);
}

static uint64_t rtc_hi_read(void *opaque, uint64_t off, unsigned size)
{
	struct rtc *r = opaque;
	uint8_t v;

	(void)size;
	if (off == 0)
		return 0xff;
	vmx_mutex_lock(&r->lock);
	v = r->cmos[0x80 | r->index_hi];
	vmx_mutex_unlock(&r->lock);
	return v;
}

static void rtc_hi_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct rtc *r = opaque;

	(void)size;
	vmx_mutex_lock(&r->lock);
	if (off == 0)
		r->index_hi = val & 0x7f;
	else
		r->cmos[0x80 | r->index_hi] = (uint8_t)val;
	vmx_mutex_unlock(&r->lock);
}

static const struct iobus_ops rtc_io_ops = {
	.read = rtc_io_read, .write = rtc_io_write, .widths = IOBUS_W1,
};
static const struct iobus_ops rtc_hi_ops = {
	.read = rtc_hi_read, .write = rtc_hi_write, .widths = IOBUS_W1,
};

/* ---- CMOS contents the firmware reads ---- */

static void rtc_put16(struct rtc *r, unsigned idx, uint64_t v)
{
	if (v > 0xffff)
		v = 0xffff;
	r->cmos[idx] = (uint8_t)v;
	r->cmos[idx + 1] = (uint8_t)(v >> 8);
}

static void rtc_cmos_init(struct rtc *r)
{
	const struct vmx_vm *vm = r->vm;
	uint64_t low = vm->mem.low_size, high = vm->mem.ram_size > low ? vm->mem.ram_size - low : 0;
	uint64_t ext = low > (1u << 20) ? (low - (1u << 20)) >> 10 : 0;
	unsigned sum = 0;

	r->cmos[0x10] = 0;                 /* no floppy drives */
	r->cmos[0x14] = 0x02;              /* equipment: FPU, VGA */
	rtc_put16(r, 0x15, 640);           /* base memory, KiB */
	rtc_put16(r, 0x17, ext);           /* extended memory above 1 MiB, KiB */
	rtc_put16(r, 0x30, ext);
	rtc_put16(r, 0x34, low > (16u << 20) ? (low - (16u << 20)) >> 16 : 0);
	r->cmos[0x5b] = (uint8_t)(high >> 16);
	r->cmos[0x5c] = (uint8_t)(high >> 24);
	r->cmos[0x5d] = (uint8_t)(high >> 32);
	r->cmos[0x5f] = (uint8_t)(vm->ncpus ? vm->ncpus - 1 : 0);
	r->cmos[0x3d] = 0x32;              /* boot: hard disk, then CD-ROM */
	r->cmos[0x38] = 0x01;              /* no floppy boot-signature check */
	for (unsigned i = 0x10; i <= 0x2d; i++)
		sum += r->cmos[i];
	r->cmos[0x2e] = (uint8_t)(sum >> 8);
	r->cmos[0x2f] = (uint8_t)sum;
}

static void rtc_reset_locked(struct rtc *r)
{
	/* The RESET pin clears the interrupt enables and flags; time runs on. */
	r->cmos[RTC_REG_B] &= (uint8_t)~(RTC_B_PIE | RTC_B_AIE | RTC_B_UIE | 0x08);
	r->cmos[RTC_REG_C] = 0;
	rtc_update_irq(r);
	rtc_arm_periodic(r);
}

static void rtc_destroy(struct vdev *dev);

static int rtc_init(struct vdev *dev, char *err, size_t errlen)
{
	struct vmx_vm *vm = dev->vm;
	struct rtc *r = calloc(1, sizeof(*r));

	if (!r) {
		snprintf(err, errlen, "rtc: out of memory");
		return -1;
	}
	vmx_mutex_init(&r->lock, VMX_RANK_DEVICE, "rtc");
	r->vm = vm;
	dev->priv = r;
	r->update_timer = vmx_timer_new(vm->loop, VMX_CLOCK_REAL, rtc_update_cb, r);
	r->periodic_timer = vmx_timer_new(vm->loop, VMX_CLOCK_VIRTUAL, rtc_periodic_cb, r);
	if (!r->update_timer || !r->periodic_timer) {
		snprintf(err, errlen, "rtc: cannot create timers");
		rtc_destroy(dev);
		return -1;
	}
	r->cmos[RTC_REG_A] = 0x26;        /* 32.768 kHz time base, 1024 Hz periodic rate */
	r->cmos[RTC_REG_B] = RTC_B_24H;   /* BCD, 24-hour */
	r->cmos[RTC_REG_D] = RTC_D_VRT;
	rtc_cmos_init(r);
	r->offset_sec = 0;
	r->offset_nsec = 0;
	r->last_update_sec = rtc_guest_sec(r);
	rtc_fill(r, r->last_update_sec);
	r->pf_base_ns = rtc_vnow(r);
	if (iobus_register(&vm->pio, PLAT_PORT_RTC, 2, &rtc_io_ops, r, "rtc") ||
	    iobus_register(&vm->pio, PLAT_PORT_RTC + 2, 2, &rtc_hi_ops, r, "rtc-hi")) {
		snprintf(err, errlen, "rtc: I/O ports 0x70-0x73 already claimed");
		rtc_destroy(dev);
		return -1;
	}
	vmx_mutex_lock(&r->lock);
	rtc_arm_update(r);
	vmx_mutex_unlock(&r->lock);
	return 0;
}

static void rtc_reset(struct vdev *dev)
{
	struct rtc *r = dev->priv;

	vmx_mutex_lock(&r->lock);
	rtc_reset_locked(r);
	vmx_mutex_unlock(&r->lock);
}

static void rtc_destroy(struct vdev *dev)
{
	struct rtc *r = dev->priv;

	if (!r)
		return;
	iobus_unregister(&dev->vm->pio, PLAT_PORT_RTC, r);
	iobus_unregister(&dev->vm->pio, PLAT_PORT_RTC + 2, r);
	if (r->update_timer)
		vmx_timer_free(r->update_timer);
	if (r->periodic_timer)
		vmx_timer_free(r->periodic_timer);
	vmx_mutex_destroy(&r->lock);
	free(r);
	dev->priv = NULL;
}

static const struct vdev_class rtc_class = {
	.name = "rtc",
	.order = 20,
	.init = rtc_init,
	.reset = rtc_reset,
	.destroy = rtc_destroy,
	.state = &rtc_state,
};

VDEV_REGISTER(rtc_class)

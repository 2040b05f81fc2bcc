/*
 * bt_lapic.c — the local APIC (xAPIC, memory-mapped) of the bt engine.
 *
 * The state lives in struct bt_lapic and is touched only by the vCPU's own
 * thread, except irr_ext/tmr_ext/pending_ext, which other threads (MSIs
 * from the IOAPIC, IPIs from other vCPUs) set atomically before waking the
 * vCPU; the owner folds them into IRR/TMR when it next looks.
 *
 * The timer counts host monotonic time at cfg->apic_bus_hz / divide; the
 * run loop polls it (bt_lapic_poll_timer) and sleeps in HLT until the
 * returned deadline.
 */
#include <string.h>

#include "bt.h"
#include "../../vmx/log.h"
#include "../../vmx/platform.h"

#define APIC_ENABLE      (1ull << 11)
#define APIC_BSP         (1ull << 8)
#define SVR_ENABLE       0x100u
#define LVT_MASK         0x10000u
#define LVT_TIMER 0
#define LVT_THERMAL 1
#define LVT_PERF 2
#define LVT_LINT0 3
#define LVT_LINT1 4
#define LVT_ERROR 5
#define LVT_CMCI 6
#define TIMER_ONESHOT 0
#define TIMER_PERIODIC 1
#define TIMER_TSCDL 2

static uint64_t bus_hz(const struct bt_cpu *cpu)
{
	return cpu->vm->cfg.apic_bus_hz ? cpu->vm->cfg.apic_bus_hz : VMM_APIC_BUS_HZ_HV;
}

static unsigned divisor(const struct bt_lapic *l)
{
	unsigned v = (l->timer_divide & 3) | ((l->timer_divide >> 1) & 4);
	return v == 7 ? 1 : 2u << v;
}

static unsigned timer_mode(const struct bt_lapic *l)
{
	return (l->lvt[LVT_TIMER] >> 17) & 3;
}

/* Nanoseconds for n timer ticks. */
static uint64_t ticks_to_ns(const struct bt_cpu *cpu, uint64_t n)
{
	__extension__ unsigned __int128 t = (unsigned __int128)n * divisor(&cpu->lapic) * 1000000000u;
	t /= bus_hz(cpu);
	return t > 0xffffffffffffffffull ? ~0ull : (uint64_t)t;
}

static uint64_t ns_to_ticks(const struct bt_cpu *cpu, uint64_t ns)
{
	__extension__ unsigned __int128 t = (unsigned __int128)ns * bus_hz(cpu);
	t /= (uint64_t)divisor(&cpu->lapic) * 1000000000u;
	return t > 0xffffffffffffffffull ? ~0ull : (uint64_t)t;
}

static bool sw_enabled(const struct bt_lapic *l)
{
	return l->svr & SVR_ENABLE;
}

static bool hw_enabled(const struct bt_lapic *l)
{
	return l->base_msr & APIC_ENABLE;
}

/* ---- IRR/ISR ---- */

static int highest(const uint32_t *v)
{
	for (int i = 7; i >= 0; i--)
		if (v[i])
			return i * 32 + 31 - __builtin_clz(v[i]);
	return -1;
}

static void set_bit(uint32_t *v, unsigned vec) { v[vec >> 5] |= 1u << (vec & 31); }
static void clr_bit(uint32_t *v, unsigned vec) { v[vec >> 5] &= ~(1u << (vec & 31)); }
static bool tst_bit(const uint32_t *v, unsigned vec) { return (v[vec >> 5] >> (vec & 31)) & 1; }

static void fold_ext(struct bt_lapic *l)
{
	if (!atomic_exchange(&l->pending_ext, 0))
		return;
	/* IRR bits are taken first and the trigger mode read after: a poster
	 * writes tmr_ext before irr_ext, so a vector seen here has its mode
	 * in place.  tmr_ext is never cleared here: consuming it separately
	 * could pair a level vector with no TMR bit, and its EOI would never
	 * reach the IOAPIC (Remote IRR stuck, the pin dead). */
	for (unsigned i = 0; i < 8; i++) {
		uint32_t v = atomic_exchange(&l->irr_ext[i], 0);
		if (!v)
			continue;
		uint32_t t = atomic_load(&l->tmr_ext[i]);
		l->irr[i] |= v;
		l->tmr[i] = (l->tmr[i] & ~v) | (t & v);
	}
}

static uint32_t ppr(const struct bt_lapic *l)
{
	int isrv = highest(l->isr);
	uint32_t isrc = isrv < 0 ? 0 : (uint32_t)isrv & 0xf0;
	return (l->tpr & 0xf0) >= isrc ? l->tpr & 0xff : isrc;
}

/* Accept a vector on this vCPU's own thread. */
static void accept(struct bt_cpu *cpu, unsigned vec, bool level)
{
	struct bt_lapic *l = &cpu->lapic;
	if (vec < 16) {
		l->esr |= 0x40;   /* received illegal vector */
		return;
	}
	set_bit(l->irr, vec);
	if (level)
		set_bit(l->tmr, vec);
	else
		clr_bit(l->tmr, vec);
}

void bt_lapic_post(struct bt_cpu *cpu, uint8_t vector, bool level)
{
	struct bt_lapic *l = &cpu->lapic;
	unsigned i = vector >> 5;
	uint32_t bit = 1u << (vector & 31);
	if (vector < 16)
		return;
	/* The trigger mode is written before the IRR bit (see fold_ext). */
	if (level)
		atomic_fetch_or(&l->tmr_ext[i], bit);
	else
		atomic_fetch_and(&l->tmr_ext[i], ~bit);
	atomic_fetch_or(&l->irr_ext[i], bit);
	atomic_store(&l->pending_ext, 1);
	bt_vcpu_wake(cpu);
}

int bt_lapic_pending(struct bt_cpu *cpu)
{
	struct bt_lapic *l = &cpu->lapic;
	fold_ext(l);
	if (!hw_enabled(l) || !sw_enabled(l))
		return -1;
	int v = highest(l->irr);
	if (v < 0)
		return -1;
	if (((uint32_t)v & 0xf0) <= (ppr(l) & 0xf0))
		return -1;
	return v;
}

void bt_lapic_ack(struct bt_cpu *cpu, int vector)
{
	struct bt_lapic *l = &cpu->lapic;
	if (vector < 0 || vector > 255)
		return;
	clr_bit(l->irr, (unsigned)vector);
	set_bit(l->isr, (unsigned)vector);
}

static void eoi(struct bt_cpu *cpu)
{
	struct bt_lapic *l = &cpu->lapic;
	int v = highest(l->isr);
	if (v < 0)
		return;
	clr_bit(l->isr, (unsigned)v);
	if (tst_bit(l->tmr, (unsigned)v)) {
		clr_bit(l->tmr, (unsigned)v);
		const struct vmm_host_ops *h = cpu->vm->cfg.host;
		if (h && h->eoi)
			h->eoi(cpu->vm->cfg.host_opaque, (uint8_t)v);
	}
}

bool bt_lapic_extint_enabled(const struct bt_cpu *cpu)
{
	const struct bt_lapic *l = &cpu->lapic;
	uint32_t lint0 = l->lvt[LVT_LINT0];
	if (!hw_enabled(l))
		return true;
	return !(lint0 & LVT_MASK) && ((lint0 >> 8) & 7) == 7;
}

/* ---- reset ---- */

void bt_lapic_reset(struct bt_cpu *cpu)
{
	struct bt_lapic *l = &cpu->lapic;
	memset(l->irr, 0, sizeof(l->irr));
	memset(l->isr, 0, sizeof(l->isr));
	memset(l->tmr, 0, sizeof(l->tmr));
	for (unsigned i = 0; i < 8; i++) {
		atomic_store(&l->irr_ext[i], 0);
		atomic_store(&l->tmr_ext[i], 0);
	}
	atomic_store(&l->pending_ext, 0);
	l->base_msr = PLAT_LAPIC_BASE | APIC_ENABLE | (cpu->id == 0 ? APIC_BSP : 0);
	l->id = cpu->id << 24;
	l->tpr = 0;
	l->ldr = 0;
	l->dfr = 0xffffffffu;
	l->svr = 0xff;
	for (unsigned i = 0; i < 7; i++)
		l->lvt[i] = LVT_MASK;
	/* As firmware leaves the BSP: LINT0 in ExtINT mode so the 8259 reaches the CPU. */
	if (cpu->id == 0)
		l->lvt[LVT_LINT0] = 0x700;
	l->icr_lo = l->icr_hi = 0;
	l->esr = 0;
	l->timer_initial = 0;
	l->timer_divide = 0;
	l->timer_start_ns = 0;
	l->timer_deadline_ns = 0;
	l->tsc_deadline = 0;
	cpu->cr8 = 0;
}

/* ---- the timer ---- */

static uint64_t tsc_to_ns(struct bt_cpu *cpu, uint64_t tsc)
{
	uint64_t hz = cpu->vm->cfg.tsc_hz ? cpu->vm->cfg.tsc_hz : 2000000000ull;
	uint64_t now_tsc = bt_rdtsc(cpu);
	uint64_t now = bt_now_ns();
	if (tsc <= now_tsc)
		return now ? now : 1;
	__extension__ unsigned __int128 d = (unsigned __int128)(tsc - now_tsc) * 1000000000u / hz;
	if (d > (~0ull - now))
		return ~0ull;
	return now + (uint64_t)d;
}

static void timer_arm_count(struct bt_cpu *cpu, uint64_t now)
{
	struct bt_lapic *l = &cpu->lapic;
	l->timer_start_ns = now;
	if (!l->timer_initial || timer_mode(l) == TIMER_TSCDL) {
		l->timer_deadline_ns = 0;
		return;
	}
	l->timer_deadline_ns = now + ticks_to_ns(cpu, l->timer_initial);
	if (!l->timer_deadline_ns)
		l->timer_deadline_ns = 1;
}

static uint32_t timer_current(struct bt_cpu *cpu)
{
	struct bt_lapic *l = &cpu->lapic;
	if (!l->timer_initial || !l->timer_deadline_ns || timer_mode(l) == TIMER_TSCDL)
		return 0;
	uint64_t now = bt_now_ns();
	uint64_t el = now > l->timer_start_ns ? ns_to_ticks(cpu, now - l->timer_start_ns) : 0;
	if (timer_mode(l) == TIMER_PERIODIC)
		el %= l->timer_initial;
	return el >= l->timer_initial ? 0 : (uint32_t)(l->timer_initial - el);
}

uint64_t bt_lapic_poll_timer(struct bt_cpu *cpu, uint64_t now_ns)
{
	struct bt_lapic *l = &cpu->lapic;
	if (!l->timer_deadline_ns)
		return 0;
	if (now_ns < l->timer_deadline_ns)
		return l->timer_deadline_ns;
	uint32_t lvt = l->lvt[LVT_TIMER];
	if (!(lvt & LVT_MASK) && hw_enabled(l))
		accept(cpu, lvt & 0xff, false);
	switch (timer_mode(l)) {
	case TIMER_PERIODIC: {
		uint64_t period = ticks_to_ns(cpu, l->timer_initial);
		if (!period)
			period = 1;
		/* Ticks missed while the vCPU did not poll are dropped, not queued. */
		uint64_t next = l->timer_deadline_ns + period;
		if (next <= now_ns)
			next = now_ns + period;
		l->timer_start_ns = next - period;
		l->timer_deadline_ns = next;
		break;
	}
	case TIMER_TSCDL:
		l->tsc_deadline = 0;
		l->timer_deadline_ns = 0;
		break;
	default:
		l->timer_deadline_ns = 0;
		break;
	}
	return l->timer_deadline_ns;
}

uint64_t bt_lapic_msr_read(struct bt_cpu *cpu, uint32_t idx)
{
	if (idx == 0x6e0)
		return cpu->lapic.tsc_deadline;
	return 0;
}

bool bt_lapic_msr_write(struct bt_cpu *cpu, uint32_t idx, uint64_t v)
{
	struct bt_lapic *l = &cpu->lapic;
	if (idx != 0x6e0)
		return false;   /* no x2APIC */
	if (timer_mode(l) != TIMER_TSCDL)
		return true;    /* ignored outside TSC-deadline mode */
	l->tsc_deadline = v;
	l->timer_deadline_ns = v ? tsc_to_ns(cpu, v) : 0;
	return true;
}

/* ---- IPIs ---- */

static bool dest_match(const struct bt_cpu *src, const struct bt_cpu *dst, uint32_t dest, bool logical)
{
	const struct bt_lapic *l = &dst->lapic;
	(void)src;
	if (!logical)
		return dest == 0xff || dest == (l->id >> 24);
	if ((l->dfr >> 28) == 0xf)
		return ((l->ldr >> 24) & dest) != 0;
	/* cluster model: high nibble cluster, low nibble members */
	uint32_t ldr = l->ldr >> 24;
	return dest == 0xff || ((ldr >> 4) == (dest >> 4) && (ldr & dest & 0xf));
}

static void send_ipi(struct bt_cpu *cpu)
{
	struct bt_lapic *l = &cpu->lapic;
	uint32_t lo = l->icr_lo;
	unsigned vec = lo & 0xff, mode = (lo >> 8) & 7, shorthand = (lo >> 18) & 3;
	bool logical = lo & (1u << 11);
	uint32_t dest = l->icr_hi >> 24;
	struct bt_vm *vm = cpu->vm;

	for (unsigned i = 0; i < vm->ncpus && i < 64; i++) {
		struct bt_cpu *t = vm->cpus[i];
		if (!t)
			continue;
		bool self = t == cpu;
		bool hit;
		switch (shorthand) {
		case 1: hit = self; break;
		case 2: hit = true; break;
		case 3: hit = !self; break;
		default: hit = dest_match(cpu, t, dest, logical); break;
		}
		if (!hit)
			continue;
		switch (mode) {
		case 0:   /* fixed */
		case 1:   /* lowest priority: every target, good enough without arbitration */
			if (self)
				accept(cpu, vec, false);
			else
				bt_lapic_post(t, (uint8_t)vec, false);
			break;
		case 4:   /* NMI */
			t->nmi_pending = true;
			if (!self)
				bt_vcpu_wake(t);
			break;
		case 5:   /* INIT */
		case 6:   /* SIPI */
			if (!self)
				vlog_guest("bt: vcpu %u: INIT/SIPI to vcpu %u is not supported yet", cpu->id, t->id);
			break;
		default:
			vlog_guest("bt: vcpu %u: IPI delivery mode %u ignored", cpu->id, mode);
			break;
		}
	}
}

/* ---- registers ---- */

uint32_t bt_lapic_read(struct bt_cpu *cpu, uint32_t off)
{
	struct bt_lapic *l = &cpu->lapic;
	off &= 0xff0;
	if (off >= 0x100 && off < 0x280)
		fold_ext(l);
	switch (off) {
	case 0x20: return l->id;
	case 0x30: return 0x50014;
	case 0x80: return l->tpr;
	case 0x90: return 0;
	case 0xa0: return ppr(l);
	case 0xd0: return l->ldr;
	case 0xe0: return l->dfr;
	case 0xf0: return l->svr;
	case 0x280: return l->esr;
	case 0x300: return l->icr_lo & ~(1u << 12);
	case 0x310: return l->icr_hi;
	case 0x320: return l->lvt[LVT_TIMER];
	case 0x330: return l->lvt[LVT_THERMAL];
	case 0x340: return l->lvt[LVT_PERF];
	case 0x350: return l->lvt[LVT_LINT0];
	case 0x360: return l->lvt[LVT_LINT1];
	case 0x370: return l->lvt[LVT_ERROR];
	case 0x380: return l->timer_initial;
	case 0x390: return timer_current(cpu);
	case 0x3e0: return l->timer_divide;
	default:
		break;
	}
	if (off >= 0x100 && off < 0x180)
		return l->isr[(off - 0x100) >> 4];
	if (off >= 0x180 && off < 0x200)
		return l->tmr[(off - 0x180) >> 4];
	if (off >= 0x200 && off < 0x280)
		return l->irr[(off - 0x200) >> 4];
	return 0;
}

static void write_lvt(struct bt_cpu *cpu, unsigned idx, uint32_t v, uint32_t mask)
{
	struct bt_lapic *l = &cpu->lapic;
	v &= mask;
	if (!sw_enabled(l))
		v |= LVT_MASK;
	if (idx == LVT_TIMER && ((v ^ l->lvt[LVT_TIMER]) & (3u << 17))) {
		/* A mode change disarms the timer. */
		l->timer_deadline_ns = 0;
		l->tsc_deadline = 0;
	}
	l->lvt[idx] = v;
}

void bt_lapic_write(struct bt_cpu *cpu, uint32_t off, uint32_t v)
{
	struct bt_lapic *l = &cpu->lapic;
	off &= 0xff0;
	switch (off) {
	case 0x20:
		l->id = v & 0xff000000u;
		break;
	case 0x80:
		l->tpr = v & 0xff;
		cpu->cr8 = (v >> 4) & 0xf;
		break;
	case 0xb0:
		eoi(cpu);
		break;
	case 0xd0:
		l->ldr = v & 0xff000000u;
		break;
	case 0xe0:
		l->dfr = (v & 0xf0000000u) | 0x0fffffffu;
		break;
	case 0xf0:
		l->svr = v & 0x1ff;
		if (!(v & SVR_ENABLE))
			for (unsigned i = 0; i < 7; i++)
				l->lvt[i] |= LVT_MASK;
		break;
	case 0x280:
		l->esr = 0;
		break;
	case 0x300:
		l->icr_lo = v & ~(1u << 12);
		send_ipi(cpu);
		break;
	case 0x310:
		l->icr_hi = v & 0xff000000u;
		break;
	case 0x320: write_lvt(cpu, LVT_TIMER, v, 0x700ff); break;
	case 0x330: write_lvt(cpu, LVT_THERMAL, v, 0x107ff); break;
	case 0x340: write_lvt(cpu, LVT_PERF, v, 0x107ff); break;
	case 0x350: write_lvt(cpu, LVT_LINT0, v, 0x1a7ff); break;
	case 0x360: write_lvt(cpu, LVT_LINT1, v, 0x1a7ff); break;
	case 0x370: write_lvt(cpu, LVT_ERROR, v, 0x100ff); break;
	case 0x380:
		if (timer_mode(l) == TIMER_TSCDL)
			break;
		l->timer_initial = v;
		timer_arm_count(cpu, bt_now_ns());
		break;
	case 0x3e0:
		l->timer_divide = v & 0xb;
		break;
	default:
		/* read-only or reserved: ignored (real xAPICs set ESR bit 7) */
		break;
	}
}

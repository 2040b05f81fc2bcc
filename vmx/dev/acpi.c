/*
 * acpi.c (dev) — the ACPI PM device: PM1a event and control blocks, the PM
 * timer, GPE0 and SMI_CMD, with the SCI on IRQ 9.
 *
 * The 24-bit PM timer runs at PLAT_PM_TIMER_HZ on guest time.  TMR_STS is
 * set whenever bit 23 of the counter has toggled since the guest last
 * cleared it; a timer raises the SCI at that moment only while TMR_EN is set.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmx/acpi.h"
#include "vmx/device.h"
#include "vmx/iobus.h"
#include "vmx/irq.h"
#include "vmx/lock.h"
#include "vmx/log.h"
#include "vmx/loop.h"
#include "vmx/platform.h"
#include "vmx/vm.h"

#define PM_STS_WRITABLE (ACPI_PM1_TMR | ACPI_PM1_GBL | ACPI_PM1_PWRBTN | ACPI_PM1_SLPBTN | \
                         ACPI_PM1_RTC | ACPI_PM1_WAK)
#define PM_EN_WRITABLE  (ACPI_PM1_TMR | ACPI_PM1_GBL | ACPI_PM1_PWRBTN | ACPI_PM1_SLPBTN | \
                         ACPI_PM1_RTC)
#define PM_TMR_HALF     (1ull << 23)

struct acpi_pm {
	struct vmx_vm *vm;
	struct vmx_mutex lock;
	struct vmx_timer *tmr_timer;

	uint16_t pm1_sts, pm1_en, pm1_cnt;
	uint16_t gpe0_sts, gpe0_en;
	uint8_t smi_cmd;
	uint64_t tmr_epoch;      /* counter >> 23 when TMR_STS was last cleared */
	uint8_t sci_level;
};

static const struct vstate_field pm_fields[] = {
	VSTATE_FIELD(struct acpi_pm, pm1_sts),
	VSTATE_FIELD(struct acpi_pm, pm1_en),
	VSTATE_FIELD(struct acpi_pm, pm1_cnt),
	VSTATE_FIELD(struct acpi_pm, gpe0_sts),
	VSTATE_FIELD(struct acpi_pm, gpe0_en),
	VSTATE_FIELD(struct acpi_pm, smi_cmd),
	VSTATE_FIELD(struct acpi_pm, tmr_epoch),
	VSTATE_END
};

static const struct vstate_desc pm_state = {
	.name = "acpi-pm", .version = 1, .fields = pm_fields,
};

/* PM timer ticks since power-on (the full count; the guest sees 24 bits). */
static uint64_t pm_ticks(struct acpi_pm *pm)
{
	uint64_t ns;

	if (!pm->vm->loop)
		return 0;
	ns = vmx_clock_ns(pm->vm->loop, VMX_CLOCK_VIRTUAL);
	/* ns * HZ / 1e9 without overflow for centuries of uptime. */
	return (ns / 1000000000ull) * PLAT_PM_TIMER_HZ +
	       (ns % 1000000000ull) * PLAT_PM_TIMER_HZ / 1000000000ull;
}

static uint16_t pm_sts_locked(struct acpi_pm *pm)
{
	if ((pm_ticks(pm) >> 23) != pm->tmr_epoch)
		pm->pm1_sts |= ACPI_PM1_TMR;
	return pm->pm1_sts;
}

/* Arm the wakeup for the next bit-23 toggle while the guest wants TMR interrupts. */
static void pm_arm_timer(struct acpi_pm *pm)
{
	uint64_t next, ns;

	if (!pm->tmr_timer)
		return;
	if (!(pm->pm1_en & ACPI_PM1_TMR) || (pm->pm1_sts & ACPI_PM1_TMR)) {
		vmx_timer_cancel(pm->tmr_timer);
		return;
	}
	next = (pm->tmr_epoch + 1) * PM_TMR_HALF;
	ns = (next / PLAT_PM_TIMER_HZ) * 1000000000ull +
	     ((next % PLAT_PM_TIMER_HZ) * 1000000000ull + PLAT_PM_TIMER_HZ - 1) / PLAT_PM_TIMER_HZ;
	vmx_timer_arm(pm->tmr_timer, ns);
}

static void pm_update_sci(struct acpi_pm *pm)
{
	bool level = ((pm_sts_locked(pm) & pm->pm1_en & PM_EN_WRITABLE) ||
	              (pm->gpe0_sts & pm->gpe0_en)) &&
	             (pm->pm1_cnt & ACPI_PM1_SCI_EN);

	if (level != (bool)pm->sci_level) {
		pm->sci_level = level;
		vmx_irq_set(pm->vm, PLAT_IRQ_SCI, level);
	}
}

static void pm_timer_cb(void *opaque)
{
	struct acpi_pm *pm = opaque;

	vmx_mutex_lock(&pm->lock);
	pm_update_sci(pm);
	pm_arm_timer(pm);
	vmx_mutex_unlock(&pm->lock);
}

/* Merge a 1/2/4-byte write at byte `off` of a 16-bit register. */
static uint16_t pm_merge16(uint16_t old, unsigned off, unsigned size, uint64_t val, uint16_t *touched)
{
	uint16_t v = old, t = 0;

	for (unsigned i = 0; i < size; i++) {
		unsigned b = off + i;
		if (b >= 2)
			break;
		v = (uint16_t)((v & ~(0xFFu << (8 * b))) | (((val >> (8 * i)) & 0xFF) << (8 * b)));
		t |= (uint16_t)(0xFFu << (8 * b));
	}
	*touched = t;
	return v;
}

/* ---- PM1a_EVT (4 bytes: status, enable), PM1a_CNT (2), PM_TMR (4) at 0x600 ---- */

static uint64_t pm_read(void *opaque, uint64_t off, unsigned size)
{
	struct acpi_pm *pm = opaque;
	uint8_t regs[12];
	uint64_t v = 0;
	uint32_t tmr;

	vmx_mutex_lock(&pm->lock);
	uint16_t sts = pm_sts_locked(pm);
	tmr = (uint32_t)(pm_ticks(pm) & 0xFFFFFF);
	regs[0] = (uint8_t)sts;
	regs[1] = (uint8_t)(sts >> 8);
	regs[2] = (uint8_t)pm->pm1_en;
	regs[3] = (uint8_t)(pm->pm1_en >> 8);
	regs[4] = (uint8_t)pm->pm1_cnt;
	regs[5] = (uint8_t)((pm->pm1_cnt >> 8) & ~(ACPI_PM1_SLP_EN >> 8));
	regs[6] = regs[7] = 0;
	regs[8] = (uint8_t)tmr;
	regs[9] = (uint8_t)(tmr >> 8);
	regs[10] = (uint8_t)(tmr >> 16);
	regs[11] = 0;
	vmx_mutex_unlock(&pm->lock);
	for (unsigned i = 0; i < size && off + i < sizeof(regs); i++)
		v |= (uint64_t)regs[off + i] << (8 * i);
	return v;
}

static void pm_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct acpi_pm *pm = opaque;
	bool poweroff = false;
	uint16_t touched;

	vmx_mutex_lock(&pm->lock);
	for (unsigned i = 0; i < size; ) {
		unsigned at = (unsigned)off + i;
		unsigned reg = at & ~1u, n = size - i;
		uint64_t part = val >> (8 * i);
		if (n > 2 - (at & 1))
			n = 2 - (at & 1);
		if (reg == 0) {
			/* Status: write 1 to clear. */
			uint16_t w = pm_merge16(0, at & 1, n, part, &touched) & PM_STS_WRITABLE;
			pm_sts_locked(pm);
			pm->pm1_sts &= (uint16_t)~w;
			if (w & ACPI_PM1_TMR)
				pm->tmr_epoch = pm_ticks(pm) >> 23;
		} else if (reg == 2) {
			pm->pm1_en = pm_merge16(pm->pm1_en, at & 1, n, part, &touched) & PM_EN_WRITABLE;
		} else if (reg == 4) {
			uint16_t c = pm_merge16(pm->pm1_cnt, at & 1, n, part, &touched);
			if ((touched & 0xFF00) && (c & ACPI_PM1_SLP_EN)) {
				unsigned typ = (c >> ACPI_PM1_SLP_TYP_SHIFT) & 7;
				if (typ == ACPI_S5_SLP_TYP)
					poweroff = true;
				else
					vlog_guest("acpi: sleep type %u requested; only S5 (%u) is supported",
					           typ, ACPI_S5_SLP_TYP);
			}
			/* SCI_EN belongs to the firmware (SMI_CMD); SLP_EN always reads 0. */
			pm->pm1_cnt = (uint16_t)((c & ~(ACPI_PM1_SLP_EN | ACPI_PM1_SCI_EN)) |
			                         (pm->pm1_cnt & ACPI_PM1_SCI_EN));
		}
		/* PM_TMR (8..11) and the reserved bytes are read-only. */
		i += n;
	}
	pm_update_sci(pm);
	pm_arm_timer(pm);
	vmx_mutex_unlock(&pm->lock);
	if (poweroff)
		vmx_vm_request_power(pm->vm, VMX_POWER_OFF, "guest ACPI S5");
}

static const struct iobus_ops pm_ops = {
	.read = pm_read, .write = pm_write, .widths = IOBUS_W1 | IOBUS_W2 | IOBUS_W4,
};

/* ---- GPE0 (status 2, enable 2) ---- */

static uint64_t gpe_read(void *opaque, uint64_t off, unsigned size)
{
	struct acpi_pm *pm = opaque;
	uint8_t regs[4];
	uint64_t v = 0;

	vmx_mutex_lock(&pm->lock);
	regs[0] = (uint8_t)pm->gpe0_sts;
	regs[1] = (uint8_t)(pm->gpe0_sts >> 8);
	regs[2] = (uint8_t)pm->gpe0_en;
	regs[3] = (uint8_t)(pm->gpe0_en >> 8);
	vmx_mutex_unlock(&pm->lock);
	for (unsigned i = 0; i < size && off + i < 4; i++)
		v |= (uint64_t)regs[off + i] << (8 * i);
	return v;
}

static void gpe_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct acpi_pm *pm = opaque;

	vmx_mutex_lock(&pm->lock);
	for (unsigned i = 0; i < size && off + i < 4; i++) {
		unsigned at = (unsigned)off + i;
		uint16_t b = (uint16_t)(((val >> (8 * i)) & 0xFF) << (8 * (at & 1)));
		if (at < 2)
			pm->gpe0_sts &= (uint16_t)~b;
		else
			pm->gpe0_en = (uint16_t)((pm->gpe0_en & ~(0xFFu << (8 * (at & 1)))) | b);
	}
	pm_update_sci(pm);
	vmx_mutex_unlock(&pm->lock);
}

static const struct iobus_ops gpe_ops = {
	.read = gpe_read, .write = gpe_write, .widths = IOBUS_W1 | IOBUS_W2 | IOBUS_W4,
};

/* ---- SMI_CMD: the firmware's ACPI mode switch ---- */

static uint64_t smi_read(void *opaque, uint64_t off, unsigned size)
{
	struct acpi_pm *pm = opaque;
	uint8_t v;

	vmx_mutex_lock(&pm->lock);
	v = pm->smi_cmd;
	vmx_mutex_unlock(&pm->lock);
	return v;
}

static void smi_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct acpi_pm *pm = opaque;

	vmx_mutex_lock(&pm->lock);
	pm->smi_cmd = (uint8_t)val;
	if (val == ACPI_SMI_ENABLE)
		pm->pm1_cnt |= ACPI_PM1_SCI_EN;
	else if (val == ACPI_SMI_DISABLE)
		pm->pm1_cnt &= (uint16_t)~ACPI_PM1_SCI_EN;
	pm_update_sci(pm);
	vmx_mutex_unlock(&pm->lock);
}

static const struct iobus_ops smi_ops = {
	.read = smi_read, .write = smi_write, .widths = IOBUS_W1,
};

/* ---- power button ---- */

void acpi_power_button(struct vmx_vm *vm)
{
	struct acpi_pm *pm = vmx_vm_device(vm, "acpi-pm");

	if (!pm)
		return;
	vmx_mutex_lock(&pm->lock);
	pm->pm1_sts |= ACPI_PM1_PWRBTN;
	pm_update_sci(pm);
	vmx_mutex_unlock(&pm->lock);
}

/* ---- the vdev ---- */

static void pm_reset_locked(struct acpi_pm *pm)
{
	pm->pm1_sts = 0;
	pm->pm1_en = 0;
	/* Legacy mode until the OS writes ACPI_SMI_ENABLE to SMI_CMD, as on a PIIX4. */
	pm->pm1_cnt = 0;
	pm->gpe0_sts = pm->gpe0_en = 0;
	pm->smi_cmd = 0;
	pm->tmr_epoch = pm_ticks(pm) >> 23;
	if (pm->tmr_timer)
		vmx_timer_cancel(pm->tmr_timer);
	pm_update_sci(pm);
}

static void pm_unregister(struct vmx_vm *vm, struct acpi_pm *pm)
{
	iobus_unregister(&vm->pio, PLAT_PORT_PM_BASE, pm);
	iobus_unregister(&vm->pio, PLAT_PORT_GPE0, pm);
	iobus_unregister(&vm->pio, PLAT_PORT_SMI_CMD, pm);
}

static int pm_init(struct vdev *dev, char *err, size_t errlen)
{
	struct vmx_vm *vm = dev->vm;
	struct acpi_pm *pm = calloc(1, sizeof(*pm));

	if (!pm) {
		snprintf(err, errlen, "acpi-pm: out of memory");
		return -1;
	}
	pm->vm = vm;
	vmx_mutex_init(&pm->lock, VMX_RANK_DEVICE, "acpi-pm");
	if (iobus_register(&vm->pio, PLAT_PORT_PM_BASE, 12, &pm_ops, pm, "acpi-pm1") != 0 ||
	    iobus_register(&vm->pio, PLAT_PORT_GPE0, 4, &gpe_ops, pm, "acpi-gpe0") != 0 ||
	    iobus_register(&vm->pio, PLAT_PORT_SMI_CMD, 1, &smi_ops, pm, "acpi-smi") != 0) {
		pm_unregister(vm, pm);
		vmx_mutex_destroy(&pm->lock);
		free(pm);
		snprintf(err, errlen, "acpi-pm: ports 0x%x, 0x%x or 0x%x are taken",
		         (unsigned)PLAT_PORT_PM_BASE, (unsigned)PLAT_PORT_GPE0,
		         (unsigned)PLAT_PORT_SMI_CMD);
		return -1;
	}
	if (vm->loop)
		pm->tmr_timer = vmx_timer_new(vm->loop, VMX_CLOCK_VIRTUAL, pm_timer_cb, pm);
	vmx_mutex_lock(&pm->lock);
	pm_reset_locked(pm);
	vmx_mutex_unlock(&pm->lock);
	dev->priv = pm;
	return 0;
}

static void pm_reset(struct vdev *dev)
{
	struct acpi_pm *pm = dev->priv;

	vmx_mutex_lock(&pm->lock);
	pm_reset_locked(pm);
	vmx_mutex_unlock(&pm->lock);
}

static void pm_destroy(struct vdev *dev)
{
	struct acpi_pm *pm = dev->priv;

	if (!pm)
		return;
	pm_unregister(dev->vm, pm);
	if (pm->tmr_timer)
		vmx_timer_free(pm->tmr_timer);
	vmx_mutex_destroy(&pm->lock);
	free(pm);
	dev->priv = NULL;
}

static const struct vdev_class acpi_pm_class = {
	.name = "acpi-pm",
	.order = 30,
	.init = pm_init,
	.reset = pm_reset,
	.destroy = pm_destroy,
	.state = &pm_state,
};

VDEV_REGISTER(acpi_pm_class)

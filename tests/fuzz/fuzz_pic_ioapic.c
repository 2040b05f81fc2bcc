/*
 * fuzz_pic_ioapic.c — access streams to the interrupt controllers and
 * timers: PIC + ELCR, IOAPIC, PIT + port 0x61, RTC/CMOS, plus device line
 * changes, INTA cycles and LAPIC EOIs in between.  Nothing may crash, hang
 * or trip the lock-rank checker.
 *
 * Input: records of 7 bytes  [op] [a] [b] [v0 v1 v2 v3].
 */
#include <stdint.h>
#include <stdlib.h>

#include "tests/devices/devtest.h"
#include "vmx/log.h"
#include "vmx/platform.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint16_t fz_ports[] = {
	0x20, 0x21, 0xA0, 0xA1, 0x4D0, 0x4D1,
	0x40, 0x41, 0x42, 0x43, 0x61,
	0x70, 0x71, 0x72, 0x73,
};

static struct devtest *fz_vm(void)
{
	static struct devtest *t;

	if (t)
		return t;
	vlog_set_stderr_level(VLOG_ERROR);
	t = devtest_new("memsize = \"4\"\n");
	if (!t || devtest_add(t, "pic") || devtest_add(t, "ioapic") || devtest_add(t, "pit") ||
	    devtest_add(t, "rtc"))
		abort();
	return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct devtest *t = fz_vm();

	for (struct vdev *d = t->vm->devices; d; d = d->next)
		d->cls->reset(d);
	devtest_msi_clear(t);

	for (size_t i = 0; i + 7 <= size; i += 7) {
		const uint8_t *r = data + i;
		uint8_t a = r[1], b = r[2];
		uint64_t v = (uint64_t)r[3] | (uint64_t)r[4] << 8 | (uint64_t)r[5] << 16 |
		             (uint64_t)r[6] << 24;
		unsigned sz = 1u << (b % 4);
		uint16_t port = fz_ports[a % (sizeof(fz_ports) / sizeof(fz_ports[0]))];
		uint64_t off = (b & 0x80) ? (uint64_t)a << 4 : (uint64_t)(a % 0x50);

		switch (r[0] % 8) {
		case 0:
			devtest_out(t, port, sz > 4 ? 4 : sz, v);
			break;
		case 1:
			(void)devtest_in(t, port, sz > 4 ? 4 : sz);
			break;
		case 2:
			devtest_mmio_write(t, PLAT_IOAPIC_BASE + off, sz, v);
			break;
		case 3:
			(void)devtest_mmio_read(t, PLAT_IOAPIC_BASE + off, sz);
			break;
		case 4:
			vmx_irq_set(t->vm, a % VMX_IOAPIC_PINS, b & 1);
			break;
		case 5:
			if (t->vm->pic_ops->pending(t->vm->pic) || (b & 1))
				(void)t->vm->pic_ops->ack(t->vm->pic);
			break;
		case 6:
			t->vm->ioapic_eoi(t->vm->ioapic, a);
			break;
		default:
			/* Select an IOAPIC register and write it in one go. */
			devtest_mmio_write(t, PLAT_IOAPIC_BASE, 4, a);
			devtest_mmio_write(t, PLAT_IOAPIC_BASE + 0x10, 4, v);
			break;
		}
		if (devtest_msi_count(t) >= DEVTEST_MAX_MSI)
			devtest_msi_clear(t);
	}
	/* Leave lines low so the next input starts from quiet inputs. */
	for (unsigned g = 0; g < VMX_IOAPIC_PINS; g++)
		vmx_irq_set(t->vm, g, false);
	return 0;
}

/*
 * fuzz_uart_i8042.c — access streams to the platform-B devices: both UARTs,
 * the i8042 (plus key and mouse events from the console side), PCI
 * configuration space through 0xCF8/0xCFC (with a device whose BARs get
 * mapped and moved) and the ACPI PM/GPE/SMI ports.  Nothing may crash,
 * hang or trip the lock-rank checker.
 *
 * Input: records of 6 bytes  [op] [a] [v0 v1 v2 v3].
 */
#include <stdint.h>
#include <stdlib.h>

#include "tests/devices/devtest.h"
#include "vmx/acpi.h"
#include "vmx/dev/i8042.h"
#include "vmx/log.h"
#include "vmx/pci.h"
#include "vmx/platform.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint16_t fz_ports[] = {
	0x3F8, 0x3F9, 0x3FA, 0x3FB, 0x3FC, 0x3FD, 0x3FE, 0x3FF,
	0x2F8, 0x2F9, 0x2FA, 0x2FB, 0x2FC, 0x2FD, 0x2FE, 0x2FF,
	0x60, 0x64, 0x64, 0x60,
	0xCF8, 0xCF9, 0xCFA, 0xCFB, 0xCFC, 0xCFD, 0xCFE, 0xCFF, 0xCFC, 0xCFC,
	0x600, 0x601, 0x602, 0x603, 0x604, 0x605, 0x608, 0x620, 0x622, 0xB2,
};

static uint64_t fz_bar_read(void *opaque, uint64_t off, unsigned size)
{
	return off;
}

static void fz_bar_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
}

static const struct iobus_ops fz_bar_ops = {
	.read = fz_bar_read, .write = fz_bar_write, .widths = IOBUS_W1 | IOBUS_W2 | IOBUS_W4,
};

static struct pci_dev fz_pdev;

static struct devtest *fz_vm(void)
{
	static struct devtest *t;
	char err[256];

	if (t)
		return t;
	vlog_set_stderr_level(VLOG_ERROR);
	t = devtest_new("memsize = \"4\"\nserial0.present = \"TRUE\"\nserial1.present = \"TRUE\"\n");
	if (!t || devtest_add(t, "acpi-pm") || devtest_add(t, "pci") || devtest_add(t, "piix") ||
	    devtest_add(t, "serial0") || devtest_add(t, "serial1") || devtest_add(t, "i8042"))
		abort();
	fz_pdev = (struct pci_dev){
		.name = "fuzz", .vendor_id = 0x15AD, .device_id = 0x0001, .class_code = 0xFF0000,
		.irq_pin = 2,
		.bars = {
			[0] = { .size = 256, .flags = PCI_BAR_IO, .ops = &fz_bar_ops },
			[1] = { .size = 4096, .ops = &fz_bar_ops },
			[2] = { .size = 1 << 16, .flags = PCI_BAR_MEM64, .ops = &fz_bar_ops },
		},
	};
	if (pci_register(t->vm, &fz_pdev, 3, 0, err, sizeof(err)) != 0 ||
	    !pci_add_capability(&fz_pdev, PCI_CAP_ID_MSI, 0, 14))
		abort();
	pci_set_wmask(&fz_pdev, 0x80, 64, 0xFF);
	return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct devtest *t = fz_vm();
	struct i8042 *kc = devtest_priv(t, "i8042");

	for (struct vdev *d = t->vm->devices; d; d = d->next)
		d->cls->reset(d);

	for (size_t i = 0; i + 6 <= size; i += 6) {
		const uint8_t *r = data + i;
		uint8_t a = r[1];
		uint32_t v = (uint32_t)r[2] | (uint32_t)r[3] << 8 | (uint32_t)r[4] << 16 |
		             (uint32_t)r[5] << 24;
		uint16_t port = fz_ports[a % (sizeof(fz_ports) / sizeof(fz_ports[0]))];
		unsigned sz = 1u << ((r[0] >> 4) % 3);

		switch (r[0] % 8) {
		case 0:
		case 1:
			devtest_out(t, port, sz, v);
			break;
		case 2:
		case 3:
			(void)devtest_in(t, port, sz);
			break;
		case 4:
			/* A config cycle to a plausible device: slots 0-3, any register. */
			devtest_out(t, 0xCF8, 4, 0x80000000u | (uint32_t)((v >> 8) & 3) << 11 |
			                          (uint32_t)(a & 7) << 8 | (v & 0xFC));
			devtest_out(t, (uint16_t)(0xCFC + ((v >> 16) & 3)), sz, v >> 8);
			break;
		case 5: {
			uint8_t keys[4] = { r[2], r[3], r[4], r[5] };
			i8042_key_event(kc, keys, 1 + a % 4);
			break;
		}
		case 6:
			i8042_mouse_event(kc, (int8_t)r[2] * (a & 0x0F), (int8_t)r[3], (int8_t)r[4] % 9,
			                  r[5]);
			break;
		case 7:
			if (a & 1)
				acpi_power_button(t->vm);
			else
				pci_set_irq(&fz_pdev, v & 1);
			(void)devtest_mmio_read(t, 0xC0000000u + (v & 0xFFFFF), sz);
			break;
		}
		devtest_take_power(t);
	}
	return 0;
}

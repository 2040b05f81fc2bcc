/*
 * fuzz_fwcfg.c — the fw_cfg port and DMA state machine against hostile
 * guests: selector writes, data reads, DMA descriptors anywhere in (or
 * outside, or straddling the end of) a 64 KiB guest memory, with any
 * control bits and lengths.  Plus the config-side parsers: uuid.bios and
 * bios.bootOrder.  Guest memory accesses are checked by the fake memory:
 * an out-of-range access would be a bug in fwcfg.c, so it aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmx/dev/fwcfg.h"

#define FZ_RAM 65536u

static uint8_t fz_ram[FZ_RAM];

static int fz_read(void *opaque, uint64_t gpa, void *buf, size_t len)
{
	(void)opaque;
	if (gpa >= FZ_RAM || len > FZ_RAM - gpa)
		return -1;
	memcpy(buf, fz_ram + gpa, len);
	return 0;
}

static int fz_write(void *opaque, uint64_t gpa, const void *buf, size_t len)
{
	(void)opaque;
	if (gpa >= FZ_RAM || len > FZ_RAM - gpa)
		return -1;
	memcpy(fz_ram + gpa, buf, len);
	return 0;
}

static const struct fwcfg_mem_ops fz_mem = { .read = fz_read, .write = fz_write };

static uint32_t take(const uint8_t **p, const uint8_t *end, unsigned n)
{
	uint32_t v = 0;
	for (unsigned i = 0; i < n && *p < end; i++)
		v |= (uint32_t)*(*p)++ << (8 * i);
	return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *p = data, *end = data + size;
	struct fwcfg *f;
	static const uint8_t blob[300] = { 1, 2, 3 };

	if (size && data[0] == 'U') {
		/* config side: uuid.bios and bios.bootOrder text */
		char *s = malloc(size);
		uint8_t u[16];
		struct fwcfg_boot_dev devs[3] = {
			{ .kind = FWCFG_BOOT_HDD, .pci_slot = 3 },
			{ .kind = FWCFG_BOOT_CDROM, .pci_slot = 3, .unit = 1 },
			{ .kind = FWCFG_BOOT_HDD, .scsi = true, .pci_slot = 31, .pci_func = 7, .unit = 15 },
		};
		if (!s)
			return 0;
		memcpy(s, data + 1, size - 1);
		s[size - 1] = 0;
		fwcfg_parse_uuid(s, u);
		free(fwcfg_bootorder(devs, 3, s));
		free(s);
		return 0;
	}

	memset(fz_ram, 0xA5, sizeof(fz_ram));
	f = fwcfg_new(&fz_mem, NULL);
	if (!f)
		return 0;
	fwcfg_set_item(f, FWCFG_RAM_SIZE, blob, 8);
	fwcfg_add_file(f, "etc/e820", blob, 40);
	fwcfg_add_file(f, "etc/acpi/tables", blob, sizeof(blob));
	fwcfg_add_file(f, "bootorder", "", 1);

	while (p < end) {
		uint8_t op = *p++;
		switch (op % 7) {
		case 0:
			fwcfg_io_write(f, 0, 2, take(&p, end, 2));
			break;
		case 1:
			fwcfg_io_read(f, 1, 1);
			break;
		case 2: {
			/* a descriptor: where, then control, length and address fields */
			uint32_t at = take(&p, end, 2);
			uint8_t d[16] = { 0 };
			for (unsigned i = 0; i < 16 && p < end; i++)
				d[i] = *p++;
			if (at + sizeof(d) <= FZ_RAM)
				memcpy(fz_ram + at, d, sizeof(d));
			fwcfg_io_write(f, 4, 4, 0);
			fwcfg_io_write(f, 8, 4, __builtin_bswap32(at));
			break;
		}
		case 3:
			fwcfg_io_write(f, 4, 4, take(&p, end, 4));
			break;
		case 4:
			fwcfg_io_write(f, 8, 4, take(&p, end, 4));
			break;
		case 5: {
			uint32_t v = take(&p, end, 1);
			unsigned sizes[3] = { 1, 2, 4 };
			fwcfg_io_read(f, v % FWCFG_PORT_LEN, sizes[(v >> 4) % 3]);
			break;
		}
		default: {
			uint32_t v = take(&p, end, 1);
			unsigned sizes[3] = { 1, 2, 4 };
			fwcfg_io_write(f, v % FWCFG_PORT_LEN, sizes[(v >> 4) % 3], take(&p, end, 4));
			break;
		}
		}
	}
	fwcfg_reset(f);
	fwcfg_free(f);
	return 0;
}

/*
 * test_fwcfg.c — the fw_cfg device as SeaBIOS drives it: signature and ID
 * through the ports, the file directory and items through DMA, the ACPI
 * table loader run the way SeaBIOS's romfile_loader.c runs it (then every
 * table checked), SMBIOS structures, the e820 table, hostile DMA
 * descriptors, and the boot order / uuid.bios helpers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/devices/devtest.h"
#include "tests/unit/t.h"
#include "vmx/acpi.h"
#include "vmx/dev/fwcfg.h"
#include "vmx/device.h"
#include "vmx/mem.h"

static struct devtest *t;

#define DESC_GPA  0x10000ull
#define DATA_GPA  0x20000ull

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* One DMA transfer as SeaBIOS issues it; returns the control word left behind. */
static uint32_t dma(uint64_t desc_gpa, uint32_t control, uint32_t len, uint64_t addr)
{
	uint8_t d[16];
	uint32_t c;

	c = __builtin_bswap32(control);
	memcpy(d, &c, 4);
	c = __builtin_bswap32(len);
	memcpy(d + 4, &c, 4);
	uint64_t a = __builtin_bswap64(addr);
	memcpy(d + 8, &a, 8);
	gmem_write(&t->vm->mem, desc_gpa, d, sizeof(d));
	devtest_out(t, 0x514, 4, __builtin_bswap32((uint32_t)(desc_gpa >> 32)));
	devtest_out(t, 0x518, 4, __builtin_bswap32((uint32_t)desc_gpa));
	gmem_read(&t->vm->mem, desc_gpa, &c, 4);
	return __builtin_bswap32(c);
}

/* Read a whole item by selector through DMA into buf (at most cap bytes). */
static void read_item(uint16_t key, void *buf, uint32_t len)
{
	T_EQ_U64(dma(DESC_GPA, (uint32_t)key << 16 | FWCFG_DMA_SELECT | FWCFG_DMA_READ, len, DATA_GPA), 0);
	gmem_read(&t->vm->mem, DATA_GPA, buf, len);
}

struct file { uint32_t size; uint16_t sel; char name[57]; };
static struct file files[FWCFG_FILE_MAX];
static unsigned nfiles;

static void read_dir(void)
{
	uint8_t raw[4 + FWCFG_FILE_MAX * 64];
	uint32_t n;

	read_item(FWCFG_FILE_DIR, raw, 4);
	n = __builtin_bswap32(get32(raw));
	T_ASSERT(n > 0 && n <= FWCFG_FILE_MAX);
	if (n > FWCFG_FILE_MAX)
		n = 0;
	read_item(FWCFG_FILE_DIR, raw, 4 + n * 64);
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *e = raw + 4 + i * 64;
		files[i].size = __builtin_bswap32(get32(e));
		files[i].sel = (uint16_t)(e[4] << 8 | e[5]);
		memcpy(files[i].name, e + 8, 56);
		files[i].name[56] = 0;
	}
	nfiles = n;
}

/* A file's contents through DMA (malloc'd), or NULL. */
static uint8_t *load_file(const char *name, uint32_t *size)
{
	for (unsigned i = 0; i < nfiles; i++)
		if (strcmp(files[i].name, name) == 0) {
			uint8_t *b = malloc(files[i].size + 1);
			read_item(files[i].sel, b, files[i].size);
			*size = files[i].size;
			return b;
		}
	T_FAIL("fw_cfg file %s missing", name);
	return NULL;
}

static void test_ports(void)
{
	char sig[5] = { 0 };

	devtest_out(t, 0x510, 2, FWCFG_SIGNATURE);
	for (int i = 0; i < 4; i++)
		sig[i] = (char)devtest_in(t, 0x511, 1);
	T_STREQ(sig, "QEMU");
	devtest_out(t, 0x510, 2, FWCFG_ID);
	uint32_t id = 0;
	for (int i = 0; i < 4; i++)
		id |= (uint32_t)devtest_in(t, 0x511, 1) << (8 * i);
	T_EQ_U64(id, FWCFG_ID_TRADITIONAL | FWCFG_ID_DMA);
	/* "QEMU CFG" at the DMA register, byte order as on the bus. */
	uint32_t hi = (uint32_t)devtest_in(t, 0x514, 4), lo = (uint32_t)devtest_in(t, 0x518, 4);
	T_MEMEQ(&hi, "QEMU", 4);
	T_MEMEQ(&lo, " CFG", 4);
	/* Past the end of an item: zeros. */
	devtest_out(t, 0x510, 2, FWCFG_SIGNATURE);
	for (int i = 0; i < 4; i++)
		devtest_in(t, 0x511, 1);
	T_EQ_U64(devtest_in(t, 0x511, 1), 0);
	/* An unknown selector reads as zeros. */
	devtest_out(t, 0x510, 2, 0x1234);
	T_EQ_U64(devtest_in(t, 0x511, 1), 0);
	/* QEMU's debug console: the read-back value SeaBIOS probes for. */
	T_EQ_U64(devtest_in(t, 0x402, 1), 0xE9);
	devtest_out(t, 0x402, 1, 'x');
	devtest_out(t, 0x402, 1, '\n');
}

static void test_items(void)
{
	uint64_t ram = 0;
	uint16_t ncpu = 0;
	uint8_t uuid[16];
	static const uint8_t want_uuid[16] = { 0x56, 0x4d, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc,
	                                       0xde, 0xf0, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66 };

	read_item(FWCFG_RAM_SIZE, &ram, 8);
	T_EQ_U64(ram, 64ull << 20);
	read_item(FWCFG_NB_CPUS, &ncpu, 2);
	T_EQ_U64(ncpu, 1);
	read_item(FWCFG_UUID, uuid, 16);
	T_MEMEQ(uuid, want_uuid, 16);

	read_dir();
	uint32_t n;
	uint8_t *e820 = load_file("etc/e820", &n);
	if (e820) {
		T_EQ_U64(n, 20);
		T_EQ_U64(get64(e820), 0);
		T_EQ_U64(get64(e820 + 8), 64ull << 20);
		T_EQ_U64(get32(e820 + 16), 1);
	}
	free(e820);
	uint8_t *w = load_file("etc/boot-fail-wait", &n);
	if (w) {
		T_EQ_U64(n, 4);
		T_EQ_U64(get32(w), 3000);   /* bios.bootRetry.delay = 3 */
	}
	free(w);
	uint8_t *bo = load_file("bootorder", &n);
	if (bo) {
		T_ASSERT(n >= 1);
		T_EQ_U64(bo[n - 1], 0);   /* NUL-terminated, as QEMU's */
	}
	free(bo);
}

/* ---- SeaBIOS's table loader, re-done here ---- */

struct lfile { char name[57]; uint8_t *data; uint32_t size; uint64_t gpa; };

static struct lfile *lfind(struct lfile *lf, unsigned n, const uint8_t *name)
{
	for (unsigned i = 0; i < n; i++)
		if (strncmp(lf[i].name, (const char *)name, 56) == 0)
			return &lf[i];
	return NULL;
}

static const uint8_t *acpi_table(const uint8_t *ram, uint64_t gpa, const char *sig)
{
	if (gpa < 0x100000 || gpa > (64ull << 20) - 36) {
		T_FAIL("%s pointer 0x%llx outside RAM", sig, (unsigned long long)gpa);
		return NULL;
	}
	const uint8_t *p = ram + gpa;
	uint32_t len = get32(p + 4);
	if (memcmp(p, sig, 4) != 0) {
		T_FAIL("expected %s at 0x%llx, found %.4s", sig, (unsigned long long)gpa, p);
		return NULL;
	}
	if (strcmp(sig, "FACS") != 0)
		T_EQ_U64(acpi_checksum(p, len), 0);
	return p;
}

static void test_acpi_loader(void)
{
	uint32_t ln;
	uint8_t *script = load_file("etc/table-loader", &ln);
	struct lfile lf[4];
	unsigned nlf = 0;
	uint64_t next_high = 0x200000, rsdp_gpa = 0;
	uint8_t *ram = t->vm->mem.ram;

	if (!script)
		return;
	T_EQ_U64(ln % FWCFG_LOADER_ENTRY, 0);
	for (uint32_t off = 0; off + FWCFG_LOADER_ENTRY <= ln; off += FWCFG_LOADER_ENTRY) {
		const uint8_t *e = script + off;
		uint32_t cmd = get32(e);
		if (cmd == 1) {
			T_ASSERT(nlf < 4);
			if (nlf == 4)
				break;
			struct lfile *f = &lf[nlf++];
			memcpy(f->name, e + 4, 56);
			f->name[56] = 0;
			f->data = load_file(f->name, &f->size);
			uint32_t align = get32(e + 60);
			T_ASSERT(align && !(align & (align - 1)));
			if (e[64] == 2) {
				f->gpa = 0xF5000;           /* the F segment, 16-aligned */
				rsdp_gpa = f->gpa;
			} else {
				next_high = (next_high + align - 1) & ~(uint64_t)(align - 1);
				f->gpa = next_high;
				next_high += f->size;
			}
			T_ASSERT(f->gpa % align == 0);
		} else if (cmd == 2) {
			struct lfile *d = lfind(lf, nlf, e + 4), *s = lfind(lf, nlf, e + 60);
			uint32_t o = get32(e + 116);
			uint8_t size = e[120];
			T_ASSERT(d && s && d->data && s->data && o + size <= d->size &&
			         (size == 4 || size == 8));
			if (!d || !s || !d->data || o + size > d->size || (size != 4 && size != 8))
				continue;
			uint64_t v = size == 8 ? get64(d->data + o) : get32(d->data + o);
			v += s->gpa;
			for (unsigned i = 0; i < size; i++)
				d->data[o + i] = (uint8_t)(v >> (8 * i));
		} else if (cmd == 3) {
			struct lfile *f = lfind(lf, nlf, e + 4);
			uint32_t o = get32(e + 60), st = get32(e + 64), len = get32(e + 68);
			T_ASSERT(f && f->data && o < f->size && st + len <= f->size);
			if (!f || !f->data || o >= f->size || st + len > f->size)
				continue;
			f->data[o] = (uint8_t)(f->data[o] - acpi_checksum(f->data + st, len));
		} else {
			T_FAIL("unknown loader command %u", cmd);
		}
	}
	for (unsigned i = 0; i < nlf; i++) {
		if (lf[i].data)
			memcpy(ram + lf[i].gpa, lf[i].data, lf[i].size);
		free(lf[i].data);
	}
	free(script);
	T_ASSERT(rsdp_gpa != 0);
	if (!rsdp_gpa)
		return;

	/* Now what a guest finds: RSDP in the F segment, every table valid. */
	const uint8_t *rsdp = ram + rsdp_gpa;
	T_MEMEQ(rsdp, "RSD PTR ", 8);
	T_EQ_U64(acpi_checksum(rsdp, 20), 0);
	T_EQ_U64(acpi_checksum(rsdp, 36), 0);
	const uint8_t *rsdt = acpi_table(ram, get32(rsdp + 16), "RSDT");
	const uint8_t *xsdt = acpi_table(ram, get64(rsdp + 24), "XSDT");
	if (!rsdt || !xsdt)
		return;
	T_EQ_U64(get32(rsdt + 4), 36 + 8);
	T_EQ_U64(get32(rsdt + 36), get64(xsdt + 36));
	const uint8_t *fadt = acpi_table(ram, get64(xsdt + 36), "FACP");
	acpi_table(ram, get64(xsdt + 44), "APIC");
	if (!fadt)
		return;
	acpi_table(ram, get32(fadt + 36), "FACS");
	T_EQ_U64(get32(fadt + 36) % 64, 0);
	const uint8_t *dsdt = acpi_table(ram, get32(fadt + 40), "DSDT");
	T_EQ_U64(get64(fadt + 140), get32(fadt + 40));
	T_ASSERT(dsdt != NULL);
}

static void test_smbios(void)
{
	uint32_t al, tl;
	uint8_t *a = load_file("etc/smbios/smbios-anchor", &al);
	uint8_t *tb = load_file("etc/smbios/smbios-tables", &tl);
	static const unsigned want[] = { 0, 1, 3, 4, 16, 17, 19, 32, 127 };
	unsigned got[32], n = 0, maxs = 0;

	if (!a || !tb)
		goto out;
	T_EQ_U64(al, 31);
	T_MEMEQ(a, "_SM_", 4);
	T_MEMEQ(a + 16, "_DMI_", 5);
	T_EQ_U64(acpi_checksum(a, 31), 0);
	T_EQ_U64(acpi_checksum(a + 16, 15), 0);
	T_EQ_U64(a[6], 2);
	T_EQ_U64(a[7], 8);
	T_EQ_U64(get32(a + 22) & 0xFFFF, tl);
	for (uint32_t off = 0; off + 4 <= tl && n < 32;) {
		const uint8_t *s = tb + off;
		uint32_t end = off + s[1];
		T_ASSERT(s[1] >= 4 && end <= tl);
		if (s[1] < 4 || end > tl)
			break;
		/* strings end with a double NUL */
		while (end + 1 < tl && !(tb[end] == 0 && tb[end + 1] == 0))
			end++;
		end += 2;
		if (end - off > maxs)
			maxs = end - off;
		got[n++] = s[0];
		if (s[0] == 1) {
			/* uuid.bios 56 4d 12 34 56 78 9a bc ...: first three fields little-endian */
			static const uint8_t le[16] = { 0x34, 0x12, 0x4d, 0x56, 0x78, 0x56, 0xbc, 0x9a,
			                                0xde, 0xf0, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66 };
			T_MEMEQ(s + 8, le, 16);
			T_CONTAINS((const char *)s + s[1] + strlen((const char *)s + s[1]) + 1,
			           "VMware Virtual Platform");
		}
		if (s[0] == 19)
			T_EQ_U64(get32(s + 8), (64u << 10) - 1);
		off = end;
		if (s[0] == 127) {
			T_EQ_U64(off, tl);
			break;
		}
	}
	T_EQ_U64(n, sizeof(want) / sizeof(want[0]));
	for (unsigned i = 0; i < n && i < sizeof(want) / sizeof(want[0]); i++)
		T_EQ_U64(got[i], want[i]);
	T_EQ_U64(get32(a + 28) & 0xFFFF, n);
	T_EQ_U64(get32(a + 8) & 0xFFFF, maxs);
out:
	free(a);
	free(tb);
}

/* Hostile descriptors: the VM keeps running and nothing outside RAM is touched. */
static void test_bad_dma(void)
{
	uint64_t top = 64ull << 20;
	uint8_t probe[16];

	/* Destination past the end of RAM: error bit. */
	T_EQ_U64(dma(DESC_GPA, FWCFG_SIGNATURE << 16 | FWCFG_DMA_SELECT | FWCFG_DMA_READ, 4, top - 2) &
	         FWCFG_DMA_ERROR, FWCFG_DMA_ERROR);
	/* Zero fill past an item's end into memory that wraps around 2^64. */
	T_EQ_U64(dma(DESC_GPA, FWCFG_SIGNATURE << 16 | FWCFG_DMA_SELECT | FWCFG_DMA_READ, 0xFFFFFFFF,
	             0xFFFFFFFFFFFFF000ull) & FWCFG_DMA_ERROR, FWCFG_DMA_ERROR);
	/* Writes: nothing is writable. */
	T_EQ_U64(dma(DESC_GPA, FWCFG_SIGNATURE << 16 | FWCFG_DMA_SELECT | FWCFG_DMA_WRITE, 4, DATA_GPA),
	         FWCFG_DMA_ERROR);
	/* Skip then read: the read continues after the skipped bytes. */
	T_EQ_U64(dma(DESC_GPA, FWCFG_SIGNATURE << 16 | FWCFG_DMA_SELECT | FWCFG_DMA_SKIP, 2, 0), 0);
	T_EQ_U64(dma(DESC_GPA, FWCFG_DMA_READ, 2, DATA_GPA), 0);
	gmem_read(&t->vm->mem, DATA_GPA, probe, 2);
	T_MEMEQ(probe, "MU", 2);
	/* A descriptor outside RAM, or straddling its end: ignored, no crash. */
	devtest_out(t, 0x514, 4, __builtin_bswap32(0xFFFFFFFFu));
	devtest_out(t, 0x518, 4, __builtin_bswap32(0xFFFFFFF8u));
	devtest_out(t, 0x514, 4, 0);
	devtest_out(t, 0x518, 4, __builtin_bswap32((uint32_t)top - 8));
	/* Odd widths at odd ports are ignored. */
	devtest_out(t, 0x515, 1, 0xFF);
	devtest_out(t, 0x511, 1, 0xFF);
	T_EQ_U64(dma(DESC_GPA, FWCFG_SIGNATURE << 16 | FWCFG_DMA_SELECT | FWCFG_DMA_READ, 4, DATA_GPA), 0);
}

static void test_helpers(void)
{
	uint8_t u[16];
	struct fwcfg_boot_dev devs[] = {
		{ .kind = FWCFG_BOOT_HDD, .pci_slot = 3, .unit = 0 },
		{ .kind = FWCFG_BOOT_CDROM, .pci_slot = 3, .unit = 1 },
		{ .kind = FWCFG_BOOT_HDD, .scsi = true, .pci_slot = 0x10, .unit = 2 },
	};
	char *s;

	T_EQ_I64(fwcfg_parse_uuid("56 4d 12 34 56 78 9a bc-de f0 11 22 33 44 55 66", u), 0);
	T_EQ_U64(u[15], 0x66);
	T_EQ_I64(fwcfg_parse_uuid("564d1234-5678-9abc-def0-112233445566", u), 0);
	T_EQ_I64(fwcfg_parse_uuid("56 4d 12", u), -1);
	T_EQ_I64(fwcfg_parse_uuid("56 4d 12 34 56 78 9a bc-de f0 11 22 33 44 55 66 77", u), -1);
	T_EQ_I64(fwcfg_parse_uuid("5 64d 12 34 56 78 9a bc-de f0 11 22 33 44 55 66", u), -1);
	T_EQ_I64(fwcfg_parse_uuid("zz 4d 12 34 56 78 9a bc-de f0 11 22 33 44 55 66", u), -1);

	s = fwcfg_bootorder(devs, 3, "cdrom,hdd");
	T_STREQ(s, "/pci@i0cf8/sata@3/drive@1/disk@0\n/pci@i0cf8/sata@3/drive@0/disk@0\n"
	           "/pci@i0cf8/scsi@10/channel@0/disk@2,0");
	free(s);
	s = fwcfg_bootorder(devs, 3, " HDD , floppy");
	T_STREQ(s, "/pci@i0cf8/sata@3/drive@0/disk@0\n/pci@i0cf8/scsi@10/channel@0/disk@2,0\n"
	           "/pci@i0cf8/sata@3/drive@1/disk@0");
	free(s);
	s = fwcfg_bootorder(devs, 0, "cdrom");
	T_STREQ(s, "");
	free(s);
}

int main(void)
{
	char err[256];

	t = devtest_new("memsize = \"64\"\n"
	                "uuid.bios = \"56 4d 12 34 56 78 9a bc-de f0 11 22 33 44 55 66\"\n"
	                "bios.bootRetry.enabled = \"TRUE\"\nbios.bootRetry.delay = \"3\"\n"
	                "vireo.vgaBios = \"\"\n");
	if (!t)
		return 1;
	if (devtest_add(t, "pci") != 0 || devtest_add(t, "piix") != 0 || devtest_add(t, "fwcfg") != 0)
		return 1;
	for (struct vdev *d = t->vm->devices; d; d = d->next)
		if (strcmp(d->cls->name, "fwcfg") == 0 && d->cls->start(d, err, sizeof(err)) != 0) {
			fprintf(stderr, "fwcfg start: %s\n", err);
			return 1;
		}
	test_ports();
	test_items();
	test_acpi_loader();
	test_smbios();
	test_bad_dma();
	test_helpers();
	devtest_free(t);
	return T_DONE();
}

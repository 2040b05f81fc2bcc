/*
 * fwcfg_data.c — the blobs fw_cfg hands SeaBIOS: the ACPI table-loader
 * script, SMBIOS structures, the boot order, uuid.bios parsing.
 *
 * Formats: QEMU hw/acpi/bios-linker-loader.c (as SeaBIOS's
 * romfile_loader.c reads it), DMTF SMBIOS 2.8, SeaBIOS's device paths
 * (src/boot.c build_pci_path / build_ata_path / build_scsi_path).
 */
#include "fwcfg.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- little-endian helpers ---- */

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
	return rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static void wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void wr32(uint8_t *p, uint32_t v)
{
	wr16(p, (uint16_t)v);
	wr16(p + 2, (uint16_t)(v >> 16));
}

static void wr64(uint8_t *p, uint64_t v)
{
	wr32(p, (uint32_t)v);
	wr32(p + 4, (uint32_t)(v >> 32));
}

/* ---- the ACPI table loader ---- */

#define LOADER_ALLOCATE     1
#define LOADER_ADD_POINTER  2
#define LOADER_ADD_CHECKSUM 3
#define LOADER_ZONE_HIGH    1
#define LOADER_ZONE_FSEG    2
#define LOADER_MAX          64

#define FILE_TABLES "etc/acpi/tables"
#define FILE_RSDP   "etc/acpi/rsdp"

struct loader {
	uint8_t *buf;
	unsigned n;
};

static uint8_t *loader_entry(struct loader *l, uint32_t cmd)
{
	uint8_t *e;

	if (l->n == LOADER_MAX)
		return NULL;
	e = l->buf + (size_t)l->n++ * FWCFG_LOADER_ENTRY;
	memset(e, 0, FWCFG_LOADER_ENTRY);
	wr32(e, cmd);
	return e;
}

static void loader_alloc(struct loader *l, const char *file, uint32_t align, uint8_t zone)
{
	uint8_t *e = loader_entry(l, LOADER_ALLOCATE);

	if (!e)
		return;
	memcpy(e + 4, file, strlen(file));
	wr32(e + 60, align);
	e[64] = zone;
}

static void loader_pointer(struct loader *l, const char *dest, const char *src, uint32_t off, uint8_t size)
{
	uint8_t *e = loader_entry(l, LOADER_ADD_POINTER);

	if (!e)
		return;
	memcpy(e + 4, dest, strlen(dest));
	memcpy(e + 60, src, strlen(src));
	wr32(e + 116, off);
	e[120] = size;
}

static void loader_checksum(struct loader *l, const char *file, uint32_t off, uint32_t start, uint32_t len)
{
	uint8_t *e = loader_entry(l, LOADER_ADD_CHECKSUM);

	if (!e)
		return;
	memcpy(e + 4, file, strlen(file));
	wr32(e + 60, off);
	wr32(e + 64, start);
	wr32(e + 68, len);
}

/* Length of the table at off, or 0 when it does not lie inside the blob. */
static uint32_t acpi_table_len(const uint8_t *acpi, size_t len, uint64_t off)
{
	uint32_t tl;

	if (off < 36 || off > len || len - off < 36)
		return 0;
	tl = rd32(acpi + off + 4);
	if (tl < 36 || tl > len - off)
		return 0;
	return tl;
}

int fwcfg_acpi_loader(const uint8_t *acpi, size_t acpi_len, uint8_t **tables, size_t *tables_len,
                      uint8_t **rsdp, size_t *rsdp_len, uint8_t **loader, size_t *loader_len,
                      char *err, size_t errlen)
{
	struct loader l = { 0 };
	uint64_t rsdt, xsdt;
	uint32_t rl, xl;

	*tables = *rsdp = *loader = NULL;
	if (acpi_len < 36 || memcmp(acpi, "RSD PTR ", 8) != 0 || acpi_len > UINT32_MAX) {
		snprintf(err, errlen, "fw_cfg: ACPI blob has no RSDP at its start");
		return -1;
	}
	rsdt = rd32(acpi + 16);
	xsdt = rd64(acpi + 24);
	rl = acpi_table_len(acpi, acpi_len, rsdt);
	xl = acpi_table_len(acpi, acpi_len, xsdt);
	if (!rl || !xl) {
		snprintf(err, errlen, "fw_cfg: ACPI RSDT/XSDT outside the tables");
		return -1;
	}
	l.buf = calloc(LOADER_MAX, FWCFG_LOADER_ENTRY);
	*tables = malloc(acpi_len);
	*rsdp = malloc(36);
	if (!l.buf || !*tables || !*rsdp)
		goto oom;
	memcpy(*tables, acpi, acpi_len);
	memset(*tables, 0, 36);           /* the RSDP lives in its own blob */
	memcpy(*rsdp, acpi, 36);

	/* The RSDP must sit in the F segment; the tables anywhere (64: FACS alignment). */
	loader_alloc(&l, FILE_TABLES, 64, LOADER_ZONE_HIGH);
	loader_alloc(&l, FILE_RSDP, 16, LOADER_ZONE_FSEG);

	/* Tables the RSDT names: the FADT points at the FACS and the DSDT. */
	for (uint32_t i = 36; i + 4 <= rl; i += 4) {
		uint64_t t = rd32(acpi + rsdt + i);
		uint32_t tl = acpi_table_len(acpi, acpi_len, t);
		if (!tl)
			continue;
		if (memcmp(acpi + t, "FACP", 4) == 0) {
			if (tl >= 44 && rd32(acpi + t + 36))
				loader_pointer(&l, FILE_TABLES, FILE_TABLES, (uint32_t)t + 36, 4);
			if (tl >= 44 && rd32(acpi + t + 40))
				loader_pointer(&l, FILE_TABLES, FILE_TABLES, (uint32_t)t + 40, 4);
			if (tl >= 140 && rd64(acpi + t + 132))
				loader_pointer(&l, FILE_TABLES, FILE_TABLES, (uint32_t)t + 132, 8);
			if (tl >= 148 && rd64(acpi + t + 140))
				loader_pointer(&l, FILE_TABLES, FILE_TABLES, (uint32_t)t + 140, 8);
			loader_checksum(&l, FILE_TABLES, (uint32_t)t + 9, (uint32_t)t, tl);
		}
	}
	for (uint32_t i = 36; i + 4 <= rl; i += 4)
		loader_pointer(&l, FILE_TABLES, FILE_TABLES, (uint32_t)rsdt + i, 4);
	loader_checksum(&l, FILE_TABLES, (uint32_t)rsdt + 9, (uint32_t)rsdt, rl);
	for (uint32_t i = 36; i + 8 <= xl; i += 8)
		loader_pointer(&l, FILE_TABLES, FILE_TABLES, (uint32_t)xsdt + i, 8);
	loader_checksum(&l, FILE_TABLES, (uint32_t)xsdt + 9, (uint32_t)xsdt, xl);

	loader_pointer(&l, FILE_RSDP, FILE_TABLES, 16, 4);
	loader_pointer(&l, FILE_RSDP, FILE_TABLES, 24, 8);
	loader_checksum(&l, FILE_RSDP, 8, 0, 20);
	loader_checksum(&l, FILE_RSDP, 32, 0, 36);
	if (l.n == LOADER_MAX) {
		snprintf(err, errlen, "fw_cfg: ACPI loader script too long");
		goto fail;
	}
	*tables_len = acpi_len;
	*rsdp_len = 36;
	*loader = l.buf;
	*loader_len = (size_t)l.n * FWCFG_LOADER_ENTRY;
	return 0;
oom:
	snprintf(err, errlen, "fw_cfg: out of memory");
fail:
	free(l.buf);
	free(*tables);
	free(*rsdp);
	*tables = *rsdp = NULL;
	return -1;
}

/* ---- SMBIOS ---- */

struct sm {
	uint8_t *buf;
	size_t len, cap;
	unsigned count;
	unsigned max_struct;
	bool oom;
};

static uint8_t *sm_grow(struct sm *s, size_t n)
{
	if (s->oom)
		return NULL;
	if (s->len + n > s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 1024;
		while (ncap < s->len + n)
			ncap *= 2;
		uint8_t *nb = realloc(s->buf, ncap);
		if (!nb) {
			s->oom = true;
			return NULL;
		}
		s->buf = nb;
		s->cap = ncap;
	}
	s->len += n;
	return s->buf + s->len - n;
}

/* Begin a structure of `len` formatted bytes; returns its offset. */
static size_t sm_begin(struct sm *s, uint8_t type, uint8_t len, uint16_t handle)
{
	size_t at = s->len;
	uint8_t *p = sm_grow(s, len);

	if (!p)
		return 0;
	memset(p, 0, len);
	p[0] = type;
	p[1] = len;
	wr16(p + 2, handle);
	return at;
}

/* The strings (NULL-terminated list; empty strings are skipped by index 0). */
static void sm_end(struct sm *s, size_t at, const char *const *strs)
{
	bool any = false;

	for (unsigned i = 0; strs && strs[i]; i++) {
		size_t n = strlen(strs[i]) + 1;
		uint8_t *p = sm_grow(s, n);
		if (!p)
			return;
		memcpy(p, strs[i], n);
		any = true;
	}
	uint8_t *p = sm_grow(s, any ? 1 : 2);
	if (!p)
		return;
	p[0] = 0;
	if (!any)
		p[1] = 0;
	s->count++;
	if (s->len - at > s->max_struct)
		s->max_struct = (unsigned)(s->len - at);
}

int fwcfg_smbios(const struct fwcfg_smbios_info *in, uint8_t **anchor, size_t *anchor_len,
                 uint8_t **tables, size_t *tables_len)
{
	struct sm s = { 0 };
	size_t at;
	uint8_t *t;
	uint64_t ram_mb = (in->ram_low + in->ram_high) >> 20;

	*anchor = *tables = NULL;

	/* Type 0: BIOS information */
	at = sm_begin(&s, 0, 0x18, 0x0000);
	if (!s.oom) {
		t = s.buf + at;
		t[4] = 1;
		t[5] = 2;
		wr16(t + 6, 0xE800);
		t[8] = 3;
		t[9] = 3;                      /* (3 + 1) * 64 KiB ROM */
		wr64(t + 10, 0x08);            /* characteristics not supported */
		t[19] = 0x10;                  /* ext. byte 2: this is a virtual machine */
		t[22] = 0xFF;                  /* no embedded controller */
		t[23] = 0xFF;
	}
	sm_end(&s, at, (const char *const[]){ in->bios_vendor, in->bios_version, in->bios_date, NULL });

	/* Type 1: system, with the VM's UUID (first three fields little-endian) */
	at = sm_begin(&s, 1, 0x1B, 0x0100);
	if (!s.oom) {
		const uint8_t *u = in->uuid;
		t = s.buf + at;
		t[4] = 1;
		t[5] = 2;
		t[6] = 3;
		t[7] = 4;
		uint8_t le[16] = { u[3], u[2], u[1], u[0], u[5], u[4], u[7], u[6] };
		memcpy(le + 8, u + 8, 8);
		memcpy(t + 8, le, 16);
		t[24] = 0x06;                  /* woken by the power switch */
	}
	sm_end(&s, at, (const char *const[]){ in->sys_vendor, in->sys_product, in->sys_version,
	                                      in->sys_serial, NULL });

	/* Type 3: chassis */
	at = sm_begin(&s, 3, 0x15, 0x0300);
	if (!s.oom) {
		t = s.buf + at;
		t[4] = 1;
		t[5] = 0x01;                   /* other */
		t[6] = 2;
		t[7] = 3;
		t[8] = 4;
		t[9] = t[10] = t[11] = 0x03;   /* safe */
		t[12] = 0x02;                  /* security: unknown */
	}
	sm_end(&s, at, (const char *const[]){ "No Enclosure", "N/A", "None", "No Asset Tag", NULL });

	/* Type 4: one per vCPU */
	for (unsigned i = 0; i < in->ncpus && i < 256; i++) {
		char sock[16];
		snprintf(sock, sizeof(sock), "CPU #%03u", i);
		at = sm_begin(&s, 4, 0x2A, (uint16_t)(0x0400 + i));
		if (!s.oom) {
			t = s.buf + at;
			t[4] = 1;
			t[5] = 0x03;           /* central processor */
			t[6] = 0x01;           /* family: other */
			t[7] = 2;
			wr16(t + 20, 2000);    /* max speed, MHz */
			wr16(t + 22, 2000);
			t[24] = 0x41;          /* populated, enabled */
			t[25] = 0x01;          /* upgrade: other */
			wr16(t + 26, 0xFFFF);
			wr16(t + 28, 0xFFFF);
			wr16(t + 30, 0xFFFF);
			t[35] = t[36] = t[37] = 1;
			wr16(t + 38, 0x0002);  /* characteristics: unknown */
			wr16(t + 40, 0x0001);
		}
		sm_end(&s, at, (const char *const[]){ sock, "Vireo", NULL });
	}

	/* Type 16: the memory array */
	at = sm_begin(&s, 16, 0x17, 0x1000);
	if (!s.oom) {
		t = s.buf + at;
		uint64_t kib = ram_mb << 10;
		t[4] = 0x01;                   /* location: other */
		t[5] = 0x03;                   /* system memory */
		t[6] = 0x06;                   /* multi-bit ECC */
		if (kib >= 0x80000000ull) {
			wr32(t + 7, 0x80000000u);
			wr64(t + 15, ram_mb << 20);
		} else {
			wr32(t + 7, (uint32_t)kib);
		}
		wr16(t + 11, 0xFFFE);
		wr16(t + 13, 1);
	}
	sm_end(&s, at, NULL);

	/* Type 17: one device holding all of it */
	at = sm_begin(&s, 17, 0x28, 0x1100);
	if (!s.oom) {
		t = s.buf + at;
		wr16(t + 4, 0x1000);
		wr16(t + 6, 0xFFFE);
		wr16(t + 8, 64);
		wr16(t + 10, 64);
		if (ram_mb < 0x7FFF) {
			wr16(t + 12, (uint16_t)ram_mb);
		} else {
			wr16(t + 12, 0x7FFF);
			wr32(t + 28, (uint32_t)ram_mb);
		}
		t[14] = 0x09;                  /* DIMM */
		t[16] = 1;
		t[18] = 0x07;                  /* RAM */
		wr16(t + 19, 0x0002);          /* other */
		t[23] = 2;
	}
	sm_end(&s, at, (const char *const[]){ "DIMM 0", "Vireo", NULL });

	/* Type 19: where the RAM is mapped */
	for (unsigned i = 0; i < 2; i++) {
		uint64_t start = i ? 0x100000000ull : 0, len = i ? in->ram_high : in->ram_low;
		if (!len)
			continue;
		at = sm_begin(&s, 19, 0x1F, (uint16_t)(0x1300 + i));
		if (!s.oom) {
			t = s.buf + at;
			uint64_t skib = start >> 10, ekib = ((start + len) >> 10) - 1;
			if (ekib >= 0xFFFFFFFFull) {
				wr32(t + 4, 0xFFFFFFFFu);
				wr32(t + 8, 0xFFFFFFFFu);
				wr64(t + 15, start);
				wr64(t + 23, start + len - 1);
			} else {
				wr32(t + 4, (uint32_t)skib);
				wr32(t + 8, (uint32_t)ekib);
			}
			wr16(t + 12, 0x1000);
			t[14] = 1;
		}
		sm_end(&s, at, NULL);
	}

	/* Type 32: boot status "no errors"; type 127: end */
	at = sm_begin(&s, 32, 0x0B, 0x2000);
	sm_end(&s, at, NULL);
	at = sm_begin(&s, 127, 0x04, 0x7F00);
	sm_end(&s, at, NULL);

	if (s.oom || s.len > 0xFFFF) {
		free(s.buf);
		return -1;
	}
	uint8_t *ep = calloc(1, 0x1F);
	if (!ep) {
		free(s.buf);
		return -1;
	}
	memcpy(ep, "_SM_", 4);
	ep[5] = 0x1F;
	ep[6] = 2;
	ep[7] = 8;
	wr16(ep + 8, (uint16_t)s.max_struct);
	memcpy(ep + 16, "_DMI_", 5);
	wr16(ep + 22, (uint16_t)s.len);
	wr32(ep + 24, 0);                  /* SeaBIOS places the tables and fills this */
	wr16(ep + 28, (uint16_t)s.count);
	ep[30] = 0x28;
	uint8_t sum = 0;
	for (unsigned i = 16; i < 0x1F; i++)
		sum = (uint8_t)(sum + ep[i]);
	ep[21] = (uint8_t)(0x100 - sum);
	sum = 0;
	for (unsigned i = 0; i < 0x1F; i++)
		sum = (uint8_t)(sum + ep[i]);
	ep[4] = (uint8_t)(0x100 - sum);
	*anchor = ep;
	*anchor_len = 0x1F;
	*tables = s.buf;
	*tables_len = s.len;
	return 0;
}

/* ---- uuid.bios ---- */

int fwcfg_parse_uuid(const char *text, uint8_t uuid[16])
{
	unsigned n = 0, half = 0;
	uint8_t cur = 0;

	for (const char *p = text; *p; p++) {
		int c = (unsigned char)*p, v;
		if (c == ' ' || c == '-' || c == '\t') {
			if (half)
				return -1;   /* a separator splits a byte */
			continue;
		}
		if (!isxdigit(c) || n == 16)
			return -1;
		v = isdigit(c) ? c - '0' : (tolower(c) - 'a' + 10);
		cur = (uint8_t)(cur << 4 | v);
		if (++half == 2) {
			uuid[n++] = cur;
			half = 0;
			cur = 0;
		}
	}
	return n == 16 && !half ? 0 : -1;
}

/* ---- bootorder ---- */

static bool word_is(const char *w, size_t len, const char *name)
{
	return strlen(name) == len && strncasecmp(w, name, len) == 0;
}

static int boot_path(char *out, size_t cap, const struct fwcfg_boot_dev *d)
{
	char fn[16] = "";

	if (d->pci_func)
		snprintf(fn, sizeof(fn), ",%x", d->pci_func);
	if (d->scsi)
		return snprintf(out, cap, "/pci@i0cf8/scsi@%x%s/channel@0/disk@%x,0", d->pci_slot, fn, d->unit);
	return snprintf(out, cap, "/pci@i0cf8/sata@%x%s/drive@%x/disk@0", d->pci_slot, fn, d->unit);
}

char *fwcfg_bootorder(const struct fwcfg_boot_dev *devs, unsigned n, const char *boot_order)
{
	size_t cap = (size_t)n * 64 + 1, len = 0;
	char *out = malloc(cap);
	bool used[256] = { false };
	const char *p = boot_order ? boot_order : "";

	if (!out)
		return NULL;
	out[0] = 0;
	if (n > 256)
		n = 256;
	for (;;) {
		while (*p == ' ' || *p == ',')
			p++;
		if (!*p)
			break;
		const char *w = p;
		while (*p && *p != ',')
			p++;
		size_t wl = (size_t)(p - w);
		while (wl && w[wl - 1] == ' ')
			wl--;
		int kind = word_is(w, wl, "cdrom") ? FWCFG_BOOT_CDROM :
		           word_is(w, wl, "hdd") ? FWCFG_BOOT_HDD : -1;
		if (kind < 0)
			continue;   /* floppy, ethernet: Vireo has none */
		for (unsigned i = 0; i < n; i++) {
			if (used[i] || (int)devs[i].kind != kind)
				continue;
			used[i] = true;
			int k = boot_path(out + len, cap - len, &devs[i]);
			if (k < 0 || (size_t)k + 2 > cap - len)
				break;
			len += (size_t)k;
			out[len++] = '\n';
			out[len] = 0;
		}
	}
	for (unsigned i = 0; i < n; i++) {
		if (used[i])
			continue;
		int k = boot_path(out + len, cap - len, &devs[i]);
		if (k < 0 || (size_t)k + 2 > cap - len)
			break;
		len += (size_t)k;
		out[len++] = '\n';
		out[len] = 0;
	}
	if (len && out[len - 1] == '\n')
		out[--len] = 0;
	return out;
}

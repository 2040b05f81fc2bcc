/*
 * fwcfg.c — the fw_cfg interface (QEMU docs/specs/fw_cfg.rst) and the
 * firmware debug console, and the vdev that fills fw_cfg for SeaBIOS.
 *
 * Everything the guest controls is the selector, the read position and
 * DMA descriptors in its memory: every transfer is checked against the
 * item and goes through the bounds-checked memory ops; a failed access
 * sets the descriptor's error bit and the VM keeps running.
 */
#include "fwcfg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "vmx/acpi.h"
#include "vmx/device.h"
#include "vmx/iobus.h"
#include "vmx/lock.h"
#include "vmx/log.h"
#include "vmx/mem.h"
#include "vmx/pci.h"
#include "vmx/platform.h"
#include "vmx/vm.h"

struct fwcfg_entry {
	uint16_t key;
	uint8_t *data;
	uint32_t len;
	char name[FWCFG_NAME_MAX];   /* files only */
};

struct fwcfg {
	const struct fwcfg_mem_ops *mem;
	void *opaque;
	struct fwcfg_entry *ents;
	unsigned nents, cap;
	unsigned nfiles;
	uint16_t cur;                /* selected key */
	uint32_t off;                /* read position in it */
	uint32_t dma_hi;             /* written at 0x514, used by the write at 0x518 */
};

static const char fwcfg_dma_sig[8] = { 'Q', 'E', 'M', 'U', ' ', 'C', 'F', 'G' };

static uint32_t be32(uint32_t v)
{
	return __builtin_bswap32(v);
}

static struct fwcfg_entry *fwcfg_find(const struct fwcfg *f, uint16_t key)
{
	for (unsigned i = 0; i < f->nents; i++)
		if (f->ents[i].key == key)
			return &f->ents[i];
	return NULL;
}

static int fwcfg_put(struct fwcfg *f, uint16_t key, const void *data, size_t len, const char *name)
{
	struct fwcfg_entry *e = fwcfg_find(f, key);
	uint8_t *copy;

	if (len > UINT32_MAX)
		return -1;
	copy = malloc(len ? len : 1);
	if (!copy)
		return -1;
	if (len)
		memcpy(copy, data, len);
	if (!e) {
		if (f->nents == f->cap) {
			unsigned ncap = f->cap ? f->cap * 2 : 32;
			struct fwcfg_entry *n = realloc(f->ents, ncap * sizeof(*n));
			if (!n) {
				free(copy);
				return -1;
			}
			f->ents = n;
			f->cap = ncap;
		}
		e = &f->ents[f->nents++];
		memset(e, 0, sizeof(*e));
		e->key = key;
	} else {
		free(e->data);
	}
	e->data = copy;
	e->len = (uint32_t)len;
	if (name)
		snprintf(e->name, sizeof(e->name), "%s", name);
	return 0;
}

struct fwcfg *fwcfg_new(const struct fwcfg_mem_ops *mem, void *opaque)
{
	struct fwcfg *f = calloc(1, sizeof(*f));
	uint32_t id = FWCFG_ID_TRADITIONAL | FWCFG_ID_DMA;
	uint32_t ndir = 0;

	if (!f)
		return NULL;
	f->mem = mem;
	f->opaque = opaque;
	if (fwcfg_put(f, FWCFG_SIGNATURE, "QEMU", 4, NULL) != 0 ||
	    fwcfg_put(f, FWCFG_ID, &id, sizeof(id), NULL) != 0 ||
	    fwcfg_put(f, FWCFG_FILE_DIR, &ndir, sizeof(ndir), NULL) != 0) {
		fwcfg_free(f);
		return NULL;
	}
	return f;
}

void fwcfg_free(struct fwcfg *f)
{
	if (!f)
		return;
	for (unsigned i = 0; i < f->nents; i++)
		free(f->ents[i].data);
	free(f->ents);
	free(f);
}

int fwcfg_set_item(struct fwcfg *f, uint16_t key, const void *data, size_t len)
{
	if (key == FWCFG_FILE_DIR || (key & FWCFG_WRITE_CHANNEL))
		return -1;
	return fwcfg_put(f, key, data, len, NULL);
}

/* The directory: be32 count, then {be32 size, be16 select, be16 0, name[56]} per file. */
static int fwcfg_rebuild_dir(struct fwcfg *f)
{
	size_t len = 4 + (size_t)f->nfiles * 64;
	uint8_t *dir = calloc(1, len);
	uint32_t n = be32(f->nfiles);
	size_t pos = 4;
	int ret;

	if (!dir)
		return -1;
	memcpy(dir, &n, 4);
	for (unsigned i = 0; i < f->nents; i++) {
		const struct fwcfg_entry *e = &f->ents[i];
		if (e->key < FWCFG_FILE_FIRST || e->key >= FWCFG_FILE_FIRST + FWCFG_FILE_MAX)
			continue;
		uint32_t size = be32(e->len);
		uint16_t sel = __builtin_bswap16(e->key);
		memcpy(dir + pos, &size, 4);
		memcpy(dir + pos + 4, &sel, 2);
		memcpy(dir + pos + 8, e->name, strnlen(e->name, FWCFG_NAME_MAX - 1));
		pos += 64;
	}
	ret = fwcfg_put(f, FWCFG_FILE_DIR, dir, len, NULL);
	free(dir);
	return ret;
}

int fwcfg_add_file(struct fwcfg *f, const char *name, const void *data, size_t len)
{
	uint16_t key;

	if (!name[0] || strlen(name) >= FWCFG_NAME_MAX)
		return -1;
	for (unsigned i = 0; i < f->nents; i++)
		if (f->ents[i].key >= FWCFG_FILE_FIRST && strcmp(f->ents[i].name, name) == 0) {
			if (fwcfg_put(f, f->ents[i].key, data, len, name) != 0)
				return -1;
			return fwcfg_rebuild_dir(f) == 0 ? f->ents[i].key : -1;
		}
	if (f->nfiles == FWCFG_FILE_MAX)
		return -1;
	key = (uint16_t)(FWCFG_FILE_FIRST + f->nfiles);
	if (fwcfg_put(f, key, data, len, name) != 0)
		return -1;
	f->nfiles++;
	return fwcfg_rebuild_dir(f) == 0 ? key : -1;
}

const uint8_t *fwcfg_item(const struct fwcfg *f, uint16_t key, size_t *len)
{
	const struct fwcfg_entry *e = fwcfg_find(f, key);

	if (!e)
		return NULL;
	*len = e->len;
	return e->data;
}

const uint8_t *fwcfg_file(const struct fwcfg *f, const char *name, size_t *len)
{
	for (unsigned i = 0; i < f->nents; i++)
		if (f->ents[i].key >= FWCFG_FILE_FIRST && strcmp(f->ents[i].name, name) == 0) {
			*len = f->ents[i].len;
			return f->ents[i].data;
		}
	return NULL;
}

void fwcfg_reset(struct fwcfg *f)
{
	f->cur = FWCFG_SIGNATURE;
	f->off = 0;
	f->dma_hi = 0;
}

static void fwcfg_select(struct fwcfg *f, uint16_t key)
{
	f->cur = (uint16_t)(key & ~FWCFG_WRITE_CHANNEL);
	f->off = 0;
}

static uint8_t fwcfg_data_byte(struct fwcfg *f)
{
	const struct fwcfg_entry *e = fwcfg_find(f, f->cur);

	if (!e || f->off >= e->len)
		return 0;
	return e->data[f->off++];
}

/* Zero-fill guest memory for reads past an item's end (as QEMU does). */
static int fwcfg_dma_zero(struct fwcfg *f, uint64_t gpa, uint32_t len)
{
	static const uint8_t zero[4096];

	while (len) {
		uint32_t n = len > sizeof(zero) ? (uint32_t)sizeof(zero) : len;
		if (gpa + n < gpa || f->mem->write(f->opaque, gpa, zero, n) != 0)
			return -1;
		gpa += n;
		len -= n;
	}
	return 0;
}

static void fwcfg_dma(struct fwcfg *f, uint64_t desc)
{
	uint8_t raw[16];
	uint32_t control, length;
	uint64_t addr;
	bool read = false, skip = false, error = false;

	if (desc + sizeof(raw) < desc || f->mem->read(f->opaque, desc, raw, sizeof(raw)) != 0) {
		vlog_guest("fw_cfg: DMA descriptor at 0x%llx is not in RAM", (unsigned long long)desc);
		return;
	}
	memcpy(&control, raw, 4);
	memcpy(&length, raw + 4, 4);
	memcpy(&addr, raw + 8, 8);
	control = be32(control);
	length = be32(length);
	addr = __builtin_bswap64(addr);

	if (control & FWCFG_DMA_SELECT)
		fwcfg_select(f, (uint16_t)(control >> 16));
	if (control & FWCFG_DMA_READ)
		read = true;
	else if (control & FWCFG_DMA_WRITE)
		error = true;          /* no item is writable */
	else if (control & FWCFG_DMA_SKIP)
		skip = true;
	else
		length = 0;

	while (length && !error) {
		const struct fwcfg_entry *e = fwcfg_find(f, f->cur);
		uint32_t n;
		if (!e || f->off >= e->len) {
			if (read && fwcfg_dma_zero(f, addr, length) != 0)
				error = true;
			break;
		}
		n = e->len - f->off;
		if (n > length)
			n = length;
		if (read && (addr + n < addr || f->mem->write(f->opaque, addr, e->data + f->off, n) != 0))
			error = true;
		if (!error || skip) {
			f->off += n;
			addr += n;
			length -= n;
		}
	}
	if (error)
		vlog_guest("fw_cfg: DMA transfer of key 0x%x to 0x%llx failed", f->cur,
		           (unsigned long long)addr);
	control = be32(error ? FWCFG_DMA_ERROR : 0);
	if (f->mem->write(f->opaque, desc, &control, 4) != 0)
		vlog_guest("fw_cfg: cannot complete the DMA descriptor at 0x%llx", (unsigned long long)desc);
}

uint64_t fwcfg_io_read(struct fwcfg *f, unsigned off, unsigned size)
{
	uint64_t v = 0;

	if (size != 1 && size != 2 && size != 4)
		return ~0ull;
	for (unsigned i = 0; i < size; i++) {
		unsigned o = off + i;
		uint8_t b;
		if (o == 1)
			b = fwcfg_data_byte(f);
		else if (o >= 4 && o < 12)
			b = (uint8_t)fwcfg_dma_sig[o - 4];
		else
			b = 0;   /* the selector is write-only */
		v |= (uint64_t)b << (8 * i);
	}
	return v;
}

void fwcfg_io_write(struct fwcfg *f, unsigned off, unsigned size, uint64_t val)
{
	if (off == 0 && (size == 2 || size == 1)) {
		fwcfg_select(f, (uint16_t)val);
	} else if (off == 4 && size == 4) {
		f->dma_hi = be32((uint32_t)val);
	} else if (off == 8 && size == 4) {
		uint64_t desc = (uint64_t)f->dma_hi << 32 | be32((uint32_t)val);
		f->dma_hi = 0;
		fwcfg_dma(f, desc);
	} else if (off == 1) {
		/* Data-port writes have been ignored since QEMU 2.4. */
	} else {
		vlog_guest("fw_cfg: %u-byte write of 0x%llx at port 0x%x ignored", size,
		           (unsigned long long)val, FWCFG_PORT_BASE + off);
	}
}

/* ---- the device ---- */

struct fwcfg_dev {
	struct vmx_vm *vm;
	struct fwcfg *cfg;
	struct vmx_mutex lock;
	char line[160];              /* debug console line being assembled */
	size_t line_len;
	struct vlog_ratelimit rl;
	unsigned long long lines;
};

static int fwcfg_mem_read(void *opaque, uint64_t gpa, void *buf, size_t len)
{
	struct fwcfg_dev *d = opaque;
	return gmem_read(&d->vm->mem, gpa, buf, len);
}

static int fwcfg_mem_write(void *opaque, uint64_t gpa, const void *buf, size_t len)
{
	struct fwcfg_dev *d = opaque;

	if (gmem_write(&d->vm->mem, gpa, buf, len) != 0)
		return -1;
	/* SeaBIOS runs code it loaded this way (option ROMs): bt must re-translate. */
	if (d->vm->engine && d->vm->engine->vm_mem_written && d->vm->evm)
		d->vm->engine->vm_mem_written(d->vm->evm, gpa, len);
	return 0;
}

static const struct fwcfg_mem_ops fwcfg_gmem_ops = {
	.read = fwcfg_mem_read,
	.write = fwcfg_mem_write,
};

static uint64_t fwcfg_port_read(void *opaque, uint64_t off, unsigned size)
{
	struct fwcfg_dev *d = opaque;
	uint64_t v;

	vmx_mutex_lock(&d->lock);
	v = fwcfg_io_read(d->cfg, (unsigned)off, size);
	vmx_mutex_unlock(&d->lock);
	return v;
}

static void fwcfg_port_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct fwcfg_dev *d = opaque;

	vmx_mutex_lock(&d->lock);
	fwcfg_io_write(d->cfg, (unsigned)off, size, val);
	vmx_mutex_unlock(&d->lock);
}

static const struct iobus_ops fwcfg_port_ops = {
	.read = fwcfg_port_read,
	.write = fwcfg_port_write,
	.widths = IOBUS_W1 | IOBUS_W2 | IOBUS_W4,
};

static void debugcon_flush(struct fwcfg_dev *d)
{
	unsigned sup;

	if (!d->line_len)
		return;
	d->line[d->line_len] = 0;
	d->line_len = 0;
	d->lines++;
	/* POST prints a few hundred lines; a guest that loops here is cut off. */
	if (vlog_ratelimit_ok(&d->rl, 2000, 10000000000ull, &sup)) {
		if (sup)
			vlog_info("bios: (%u lines suppressed)", sup);
		vlog_info("bios: %s", d->line);
	}
}

static uint64_t debugcon_read(void *opaque, uint64_t off, unsigned size)
{
	(void)opaque;
	(void)off;
	(void)size;
	return 0xE9;   /* QEMU's debugcon read-back value: SeaBIOS checks it */
}

static void debugcon_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct fwcfg_dev *d = opaque;
	char c = (char)val;

	(void)off;
	(void)size;
	vmx_mutex_lock(&d->lock);
	if (c == '\n') {
		debugcon_flush(d);
	} else if (c != '\r') {
		d->line[d->line_len++] = (c >= 0x20 && c < 0x7F) || c == '\t' ? c : '?';
		if (d->line_len == sizeof(d->line) - 1)
			debugcon_flush(d);
	}
	vmx_mutex_unlock(&d->lock);
}

static const struct iobus_ops debugcon_ops = {
	.read = debugcon_read,
	.write = debugcon_write,
	.widths = IOBUS_W1,
};

/* ---- the items SeaBIOS reads ---- */

static int fwcfg_add_int(struct fwcfg *f, const char *name, uint64_t v, size_t len)
{
	return fwcfg_add_file(f, name, &v, len) < 0 ? -1 : 0;
}

static int fwcfg_build_e820(struct fwcfg_dev *d)
{
	struct { uint64_t addr, len; uint32_t type; } __attribute__((packed)) e[2];
	const struct gmem *m = &d->vm->mem;
	unsigned n = 0;

	/* Like QEMU: RAM only; SeaBIOS reserves its own areas below 1 MiB. */
	e[n].addr = 0;
	e[n].len = m->low_size;
	e[n++].type = 1;
	if (m->ram_size > m->low_size) {
		e[n].addr = VMX_4G;
		e[n].len = m->ram_size - m->low_size;
		e[n++].type = 1;
	}
	return fwcfg_add_file(d->cfg, "etc/e820", e, n * sizeof(e[0])) < 0 ? -1 : 0;
}

static int fwcfg_build_acpi(struct fwcfg_dev *d, char *err, size_t errlen)
{
	size_t cap = 256 * 1024, used = 0, tl, rl, ll;
	uint8_t *buf = calloc(1, cap), *t = NULL, *r = NULL, *l = NULL;
	uint64_t rsdp = 0;
	int ret = -1;

	if (!buf) {
		snprintf(err, errlen, "fw_cfg: out of memory");
		return -1;
	}
	if (acpi_build(d->vm, 0, buf, cap, &used, &rsdp, err, errlen) != 0)
		goto out;
	if (rsdp != 0) {
		snprintf(err, errlen, "fw_cfg: ACPI RSDP not at the start of the tables");
		goto out;
	}
	if (fwcfg_acpi_loader(buf, used, &t, &tl, &r, &rl, &l, &ll, err, errlen) != 0)
		goto out;
	if (fwcfg_add_file(d->cfg, "etc/acpi/tables", t, tl) < 0 ||
	    fwcfg_add_file(d->cfg, "etc/acpi/rsdp", r, rl) < 0 ||
	    fwcfg_add_file(d->cfg, "etc/table-loader", l, ll) < 0) {
		snprintf(err, errlen, "fw_cfg: too many items");
		goto out;
	}
	ret = 0;
out:
	free(buf);
	free(t);
	free(r);
	free(l);
	return ret;
}

/* VMware derives uuid.bios from host and path; without one we hash the .vmx path. */
static void fwcfg_derive_uuid(const struct vmx_vm *vm, uint8_t uuid[16])
{
	const char *path = vmxcfg_path(vm->cfg);
	char *abs = path ? realpath(path, NULL) : NULL;
	const char *s = abs ? abs : (path ? path : "vireo");
	uint64_t h1 = 0xcbf29ce484222325ull, h2 = 0x84222325cbf29ce4ull;

	for (const char *p = s; *p; p++) {
		h1 = (h1 ^ (uint8_t)*p) * 0x100000001b3ull;
		h2 = (h2 ^ (uint8_t)*p) * 0x100000001b3ull + 0x9e3779b97f4a7c15ull;
	}
	free(abs);
	memcpy(uuid, &h1, 8);
	memcpy(uuid + 8, &h2, 8);
	uuid[0] = 0x56;   /* VMware's uuid.bios values start "56 4d" */
	uuid[1] = 0x4d;
}

static int fwcfg_build_smbios(struct fwcfg_dev *d, const uint8_t uuid[16], char *err, size_t errlen)
{
	struct fwcfg_smbios_info in = {
		.bios_vendor = "Vireo",
		.bios_version = "SeaBIOS (Vireo)",
		.bios_date = "11/21/2026",
		.sys_vendor = "VMware, Inc.",
		.sys_product = "VMware Virtual Platform",
		.sys_version = "None",
		.ncpus = d->vm->ncpus,
		.ram_low = d->vm->mem.low_size,
		.ram_high = d->vm->mem.ram_size - d->vm->mem.low_size,
	};
	char serial[80];
	uint8_t *a = NULL, *t = NULL;
	size_t al, tl;
	int ret = -1;

	/* VMware's serial number form: "VMware-56 4d ... 9a-bc ...". */
	int n = snprintf(serial, sizeof(serial), "VMware-");
	for (unsigned i = 0; i < 16; i++)
		n += snprintf(serial + n, sizeof(serial) - (size_t)n, "%02x%s", uuid[i],
		              i == 7 ? "-" : (i == 15 ? "" : " "));
	in.sys_serial = serial;
	memcpy(in.uuid, uuid, 16);
	if (fwcfg_smbios(&in, &a, &al, &t, &tl) != 0) {
		snprintf(err, errlen, "fw_cfg: cannot build the SMBIOS tables");
		return -1;
	}
	if (fwcfg_add_file(d->cfg, "etc/smbios/smbios-anchor", a, al) >= 0 &&
	    fwcfg_add_file(d->cfg, "etc/smbios/smbios-tables", t, tl) >= 0)
		ret = 0;
	else
		snprintf(err, errlen, "fw_cfg: too many items");
	free(a);
	free(t);
	return ret;
}

/* Is controller `prefix`N's unit M configured, and as what? */
static bool fwcfg_unit(const struct vmx_vm *vm, const char *prefix, unsigned ctl, unsigned unit,
                       enum fwcfg_boot_kind *kind)
{
	char key[64];
	const char *v;
	bool on = false;

	snprintf(key, sizeof(key), "%s%u.present", prefix, ctl);
	if (vmxcfg_get_bool(vm->cfg, key, false, &on, NULL, 0) != 0 || !on)
		return false;
	snprintf(key, sizeof(key), "%s%u:%u.present", prefix, ctl, unit);
	on = false;
	if (vmxcfg_get_bool(vm->cfg, key, false, &on, NULL, 0) != 0 || !on)
		return false;
	snprintf(key, sizeof(key), "%s%u:%u.deviceType", prefix, ctl, unit);
	v = vmxcfg_get(vm->cfg, key);
	*kind = v && (strcasecmp(v, "cdrom-image") == 0 || strcasecmp(v, "atapi-cdrom") == 0 ||
	              strcasecmp(v, "cdrom-raw") == 0) ? FWCFG_BOOT_CDROM : FWCFG_BOOT_HDD;
	return true;
}

/*
 * Bootable devices from the .vmx keys, placed at the PCI functions of the
 * controllers found on the bus: the Nth AHCI function is sataN, the Nth
 * PVSCSI function scsiN.
 */
static unsigned fwcfg_find_boot_devs(struct vmx_vm *vm, struct fwcfg_boot_dev *out, unsigned max)
{
	struct pci_bus *bus = pci_bus_of(vm);
	unsigned n = 0, nsata = 0, nscsi = 0;

	if (!bus)
		return 0;
	for (unsigned devfn = 0; devfn < 256; devfn++) {
		uint32_t id = pci_config_read(bus, devfn, 0, 4);
		uint32_t cls = pci_config_read(bus, devfn, 8, 4) >> 8;
		bool sata = cls == 0x010601, scsi = id == 0x07C015ADu;
		unsigned ctl, units;
		if (id == 0xFFFFFFFFu || (!sata && !scsi))
			continue;
		ctl = sata ? nsata++ : nscsi++;
		units = sata ? 30 : 16;
		for (unsigned u = 0; u < units && n < max; u++) {
			enum fwcfg_boot_kind kind;
			if (!fwcfg_unit(vm, sata ? "sata" : "scsi", ctl, u, &kind))
				continue;
			out[n] = (struct fwcfg_boot_dev){
				.kind = kind, .scsi = scsi, .pci_slot = devfn >> 3, .pci_func = devfn & 7,
				.unit = u, .order = n,
			};
			n++;
		}
	}
	return n;
}

static int fwcfg_build_boot(struct fwcfg_dev *d, char *err, size_t errlen)
{
	struct vmx_vm *vm = d->vm;
	struct fwcfg_boot_dev devs[64];
	unsigned n = fwcfg_find_boot_devs(vm, devs, 64);
	const char *order = vmxcfg_get(vm->cfg, "bios.bootOrder");
	bool retry = false;
	uint64_t delay = 10, menu = 0;
	char *bo;

	if (vmxcfg_get_bool(vm->cfg, "bios.bootRetry.enabled", false, &retry, err, errlen) != 0 ||
	    vmxcfg_get_u64(vm->cfg, "bios.bootRetry.delay", 10, 1, 3600, &delay, err, errlen) != 0 ||
	    vmxcfg_get_u64(vm->cfg, "bios.bootDelay", 0, 0, 10000, &menu, err, errlen) != 0)
		return -1;
	/* VMware tries the disk first unless told otherwise; an empty disk falls through. */
	bo = fwcfg_bootorder(devs, n, order ? order : "hdd,cdrom");
	if (!bo) {
		snprintf(err, errlen, "fw_cfg: out of memory");
		return -1;
	}
	if (fwcfg_add_file(d->cfg, "bootorder", bo, strlen(bo) + 1) < 0) {
		free(bo);
		snprintf(err, errlen, "fw_cfg: too many items");
		return -1;
	}
	vlog_info("firmware: %u boot device(s), bootorder \"%s\"", n, bo);
	free(bo);
	uint16_t show = menu ? 1 : 0;
	if (fwcfg_add_int(d->cfg, "etc/boot-fail-wait", retry ? delay * 1000 : 0xFFFFFFFFu, 4) != 0 ||
	    fwcfg_set_item(d->cfg, FWCFG_BOOT_MENU, &show, 2) != 0 ||
	    (menu && fwcfg_add_int(d->cfg, "etc/boot-menu-wait", menu, 2) != 0)) {
		snprintf(err, errlen, "fw_cfg: too many items");
		return -1;
	}
	return 0;
}

static int fwcfg_build_vgarom(struct fwcfg_dev *d, char *err, size_t errlen)
{
	const char *path = vmxcfg_get(d->vm->cfg, "vireo.vgaBios");
	bool named = path != NULL;
	FILE *fp;
	uint8_t *buf;
	long len;

	if (!path)
		path = "/usr/share/seabios/vgabios-vmware.bin";
	if (!*path)
		return 0;
	fp = fopen(path, "rb");
	if (!fp) {
		if (!named)
			return 0;   /* the default is optional: SeaBIOS then has no VGA BIOS */
		snprintf(err, errlen, "%s: vireo.vgaBios = \"%s\": %s", vmxcfg_path(d->vm->cfg), path,
		         strerror(errno));
		return -1;
	}
	fseek(fp, 0, SEEK_END);
	len = ftell(fp);
	rewind(fp);
	if (len <= 0 || len > 256 * 1024 || !(buf = malloc((size_t)len))) {
		fclose(fp);
		snprintf(err, errlen, "%s: vireo.vgaBios = \"%s\": not a VGA BIOS (size %ld)",
		         vmxcfg_path(d->vm->cfg), path, len);
		return -1;
	}
	if (fread(buf, 1, (size_t)len, fp) != (size_t)len || buf[0] != 0x55 || buf[1] != 0xAA) {
		free(buf);
		fclose(fp);
		snprintf(err, errlen, "%s: vireo.vgaBios = \"%s\": no option ROM signature",
		         vmxcfg_path(d->vm->cfg), path);
		return -1;
	}
	fclose(fp);
	/* SeaBIOS looks up "pciVVVV,DDDD.rom" for a PCI device without a ROM BAR. */
	int ret = fwcfg_add_file(d->cfg, "pci15ad,0405.rom", buf, (size_t)len) < 0 ? -1 : 0;
	free(buf);
	if (ret)
		snprintf(err, errlen, "fw_cfg: too many items");
	return ret;
}

static int fwcfg_start(struct vdev *dev, char *err, size_t errlen)
{
	struct fwcfg_dev *d = dev->priv;
	struct vmx_vm *vm = d->vm;
	uint64_t ram = vm->mem.ram_size;
	uint16_t ncpus = (uint16_t)vm->ncpus, zero16 = 0;
	uint8_t irq0 = 1, uuid[16];
	const char *us = vmxcfg_get(vm->cfg, "uuid.bios");

	if (us) {
		if (fwcfg_parse_uuid(us, uuid) != 0) {
			snprintf(err, errlen, "%s:%u: uuid.bios = \"%s\": expected 16 hex bytes as "
			         "\"56 4d xx xx xx xx xx xx-xx xx xx xx xx xx xx xx\"", vmxcfg_path(vm->cfg),
			         vmxcfg_line(vm->cfg, "uuid.bios"), us);
			return -1;
		}
	} else {
		fwcfg_derive_uuid(vm, uuid);
	}
	/* No lock: the vCPUs have not started, and pci_config_read takes the bus lock. */
	int ret = -1;
	if (fwcfg_set_item(d->cfg, FWCFG_UUID, uuid, 16) != 0 ||
	    fwcfg_set_item(d->cfg, FWCFG_RAM_SIZE, &ram, 8) != 0 ||
	    fwcfg_set_item(d->cfg, FWCFG_NOGRAPHIC, &zero16, 2) != 0 ||
	    fwcfg_set_item(d->cfg, FWCFG_NB_CPUS, &ncpus, 2) != 0 ||
	    fwcfg_set_item(d->cfg, FWCFG_MAX_CPUS, &ncpus, 2) != 0 ||
	    fwcfg_set_item(d->cfg, FWCFG_IRQ0_OVERRIDE, &irq0, 1) != 0 ||
	    fwcfg_build_e820(d) != 0) {
		snprintf(err, errlen, "fw_cfg: out of memory");
		goto out;
	}
	/* SeaBIOS's serial console: its screens (and GRUB's BIOS text) on COM1. */
	if (vmx_vm_device(vm, "serial0") && fwcfg_add_int(d->cfg, "etc/sercon-port", PLAT_PORT_COM1, 2) != 0) {
		snprintf(err, errlen, "fw_cfg: too many items");
		goto out;
	}
	if (fwcfg_build_boot(d, err, errlen) != 0 || fwcfg_build_acpi(d, err, errlen) != 0 ||
	    fwcfg_build_smbios(d, uuid, err, errlen) != 0 || fwcfg_build_vgarom(d, err, errlen) != 0)
		goto out;
	ret = 0;
out:
	return ret;
}

static bool fwcfg_present(struct vmx_vm *vm)
{
	return !vm->boot_kernel;
}

static int fwcfg_init(struct vdev *dev, char *err, size_t errlen)
{
	struct fwcfg_dev *d = calloc(1, sizeof(*d));

	if (!d) {
		snprintf(err, errlen, "fw_cfg: out of memory");
		return -1;
	}
	d->vm = dev->vm;
	vmx_mutex_init(&d->lock, VMX_RANK_DEVICE, "fwcfg");
	d->cfg = fwcfg_new(&fwcfg_gmem_ops, d);
	if (!d->cfg) {
		vmx_mutex_destroy(&d->lock);
		free(d);
		snprintf(err, errlen, "fw_cfg: out of memory");
		return -1;
	}
	if (iobus_register(&dev->vm->pio, FWCFG_PORT_BASE, FWCFG_PORT_LEN, &fwcfg_port_ops, d, "fw_cfg") != 0) {
		snprintf(err, errlen, "fw_cfg: I/O ports 0x510-0x51B already claimed");
		goto fail;
	}
	if (iobus_register(&dev->vm->pio, FWCFG_PORT_DEBUGCON, 1, &debugcon_ops, d, "debugcon") != 0) {
		iobus_unregister(&dev->vm->pio, FWCFG_PORT_BASE, d);
		snprintf(err, errlen, "fw_cfg: I/O port 0x402 already claimed");
		goto fail;
	}
	dev->priv = d;
	return 0;
fail:
	fwcfg_free(d->cfg);
	vmx_mutex_destroy(&d->lock);
	free(d);
	return -1;
}

static void fwcfg_dev_reset(struct vdev *dev)
{
	struct fwcfg_dev *d = dev->priv;

	vmx_mutex_lock(&d->lock);
	fwcfg_reset(d->cfg);
	debugcon_flush(d);
	vmx_mutex_unlock(&d->lock);
}

static void fwcfg_destroy(struct vdev *dev)
{
	struct fwcfg_dev *d = dev->priv;

	if (!d)
		return;
	debugcon_flush(d);
	iobus_unregister(&dev->vm->pio, FWCFG_PORT_DEBUGCON, d);
	iobus_unregister(&dev->vm->pio, FWCFG_PORT_BASE, d);
	fwcfg_free(d->cfg);
	vmx_mutex_destroy(&d->lock);
	free(d);
	dev->priv = NULL;
}

static const struct vdev_class fwcfg_class = {
	.name = "fwcfg",
	.order = 90,
	.present = fwcfg_present,
	.init = fwcfg_init,
	.reset = fwcfg_dev_reset,
	.destroy = fwcfg_destroy,
	.start = fwcfg_start,
};

VDEV_REGISTER(fwcfg_class)

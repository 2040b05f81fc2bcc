/*
 * fuzz_ahci.c — the AHCI/ATAPI command decoder: command headers, H2D FISes,
 * ATAPI CDBs and PRDTs from the input, issued on a disk port and a CD-ROM
 * port of a real controller (devtest VM, raw images in a scratch folder),
 * followed by register writes; and the SCSI target's CDB decoder alone,
 * with its invariants checked (an answer never exceeds its buffer, a
 * transfer never leaves the medium).  Nothing may crash, hang or abort.
 *
 * Input: [mode] ...
 *   mode even: [port] [slot] [dw0 x4] [flags] [command table bytes...] then
 *              6-byte register writes [off lo] [off hi] [val x4]
 *   mode odd:  [kind] [lun] [cdb_len] [cdb x16] [ret]
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/devices/devtest.h"
#include "vmx/dev/ahci.h"
#include "vmx/dev/scsi.h"
#include "vmx/disk/vdisk.h"
#include "vmx/log.h"
#include "vmx/pci.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_ABAR 0xE0000000u
#define FZ_CLB  0x10000u
#define FZ_FB   0x11000u
#define FZ_CTBA 0x20000u
#define FZ_DATA 0x40000u

static struct devtest *fz_t;
static struct ahci *fz_ahci;
static struct scsi_dev fz_sd[2];

static void fz_file(const char *path, size_t len)
{
	FILE *f = fopen(path, "wb");
	uint8_t blk[4096];

	if (!f)
		abort();
	for (size_t i = 0; i < sizeof(blk); i++)
		blk[i] = (uint8_t)(i * 7);
	for (size_t off = 0; off < len; off += sizeof(blk))
		if (fwrite(blk, 1, sizeof(blk), f) != sizeof(blk))
			abort();
	fclose(f);
}

static void fz_init(void)
{
	static char dir[] = "/tmp/vireo-fuzz-ahci-XXXXXX";
	char cfg[1024], disk[128], iso[128], err[256];
	struct scsi_media *m;

	if (fz_t)
		return;
	vlog_set_stderr_level(VLOG_ERROR);
	if (!mkdtemp(dir))
		abort();
	snprintf(disk, sizeof(disk), "%s/d.img", dir);
	snprintf(iso, sizeof(iso), "%s/c.iso", dir);
	fz_file(disk, 1 << 20);
	fz_file(iso, 300 * 2048);
	snprintf(cfg, sizeof(cfg),
	         "memsize = \"4\"\nsata0.present = \"TRUE\"\n"
	         "sata0:0.present = \"TRUE\"\nsata0:0.fileName = \"%s\"\n"
	         "sata0:1.present = \"TRUE\"\nsata0:1.deviceType = \"cdrom-image\"\n"
	         "sata0:1.fileName = \"%s\"\n", disk, iso);
	fz_t = devtest_new(cfg);
	if (!fz_t || devtest_add(fz_t, "ioapic") || devtest_add(fz_t, "pci") ||
	    devtest_add(fz_t, "ahci"))
		abort();
	fz_ahci = devtest_priv(fz_t, "ahci");
	pci_config_write(pci_bus_of(fz_t->vm), AHCI_PCI_SLOT << 3, PCI_BASE_ADDRESS_0 + 20, 4, FZ_ABAR);
	pci_config_write(pci_bus_of(fz_t->vm), AHCI_PCI_SLOT << 3, PCI_COMMAND, 2, 6);
	scsi_dev_init(&fz_sd[0], SCSI_DISK, "fuzz disk", "F0");
	scsi_dev_init(&fz_sd[1], SCSI_CDROM, "fuzz cd", "F1");
	m = scsi_media_open(disk, false, false, err, sizeof(err));
	if (!m)
		abort();
	scsi_dev_set_media(&fz_sd[0], m);
	m = scsi_media_open(iso, true, true, err, sizeof(err));
	if (!m)
		abort();
	scsi_dev_set_media(&fz_sd[1], m);
	/* The images stay open; the folder can go now. */
	unlink(disk);
	unlink(iso);
	rmdir(dir);
}

static void fz_wr(uint32_t off, uint32_t v)
{
	devtest_mmio_write(fz_t, FZ_ABAR + off, 4, v);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void fz_ahci_cmd(const uint8_t *data, size_t size)
{
	struct gmem *mem = &fz_t->vm->mem;
	unsigned port = data[0] & 1, slot = data[1] & 31;
	uint32_t dw0 = le32(data + 2);
	uint8_t flags = data[6], *tbl;
	size_t n = size - 7;
	uint8_t hdr[32] = { 0 };

	data += 7;
	for (struct vdev *d = fz_t->vm->devices; d; d = d->next)
		if (d->cls->reset)
			d->cls->reset(d);
	pci_config_write(pci_bus_of(fz_t->vm), AHCI_PCI_SLOT << 3, PCI_BASE_ADDRESS_0 + 20, 4, FZ_ABAR);
	pci_config_write(pci_bus_of(fz_t->vm), AHCI_PCI_SLOT << 3, PCI_COMMAND, 2, 6);
	if (!(flags & 0x80))
		dw0 = (dw0 & 0xFFFF) | (dw0 >> 16) % 9 << 16;   /* mostly short PRDTs */
	memcpy(hdr, &dw0, 4);
	hdr[8] = (uint8_t)FZ_CTBA;
	hdr[9] = (uint8_t)(FZ_CTBA >> 8);
	hdr[10] = (uint8_t)(FZ_CTBA >> 16);
	gmem_write(mem, FZ_CLB + slot * 32, hdr, 32);
	tbl = gmem_ptr(mem, FZ_CTBA, 0x1000);
	memset(tbl, 0, 0x1000);
	if (n > 0x1000)
		n = 0x1000;
	memcpy(tbl, data, n);
	if (!(flags & 0x40))
		tbl[0] = 0x27;
	if (flags & 1) {
		/* Aim the PRDs at RAM so transfers really happen. */
		for (unsigned i = 0; i < 8; i++) {
			uint8_t *e = tbl + 0x80 + 16 * i;
			uint32_t a = FZ_DATA + (le32(e) & 0x3FFFE), c = le32(e + 12) & 0xFFFF;
			memcpy(e, &a, 4);
			memset(e + 4, 0, 4);
			memcpy(e + 12, &c, 4);
		}
	}
	fz_wr(AHCI_GHC, AHCI_GHC_IE);
	fz_wr(AHCI_PORT(port) + AHCI_PxCLB, FZ_CLB);
	fz_wr(AHCI_PORT(port) + AHCI_PxFB, FZ_FB);
	fz_wr(AHCI_PORT(port) + AHCI_PxCMD, AHCI_PxCMD_FRE | AHCI_PxCMD_ST);
	fz_wr(AHCI_PORT(port) + AHCI_PxIE, 0xFFFFFFFF);
	if (flags & 2) {
		/* An NCQ command: SACT first, tag = slot in COUNT(7:3) unless bit 2 says lie. */
		if (!(flags & 4))
			tbl[12] = (uint8_t)(slot << 3);
		fz_wr(AHCI_PORT(port) + AHCI_PxSACT, 1u << slot);
	}
	fz_wr(AHCI_PORT(port) + AHCI_PxCI, 1u << slot);
	/* Register writes after the command (stop, reset, reissue ...) race its worker. */
	for (size_t i = (n + 0x7F) & ~(size_t)0x7F; i + 6 <= size - 7 && i < 0x1000 + 120; i += 6) {
		uint32_t off = (uint32_t)(data[i] | data[i + 1] << 8) & 0x7FC;
		fz_wr(off, le32(data + i + 2));
	}
	ahci_drain(fz_ahci);
}

static void fz_scsi(const uint8_t *data, size_t size)
{
	struct scsi_dev *d = &fz_sd[data[0] & 1];
	static struct scsi_req r;
	uint8_t cdb[16] = { 0 };
	size_t len = data[2] % 17;

	memcpy(cdb, data + 3, size - 3 < 16 ? size - 3 : 16);
	scsi_exec(d, cdb, len, data[1] & 1, &r);
	if (r.xfer == SCSI_XFER_IN && r.len > SCSI_BUF_MAX)
		abort();
	if (r.xfer == SCSI_XFER_READ || r.xfer == SCSI_XFER_WRITE) {
		if (!r.media || r.offset + r.len > vdisk_capacity(r.media->disk) ||
		    r.len > SCSI_MAX_XFER)
			abort();
		if (r.xfer == SCSI_XFER_WRITE && d->kind == SCSI_CDROM)
			abort();
	}
	if (r.status == SCSI_STATUS_CHECK && r.xfer != SCSI_XFER_NONE)
		abort();
	scsi_complete(d, &r, size > 19 && (data[19] & 1) ? -EIO : 0);
	if (r.media)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz_init();
	if (size < 8)
		return 0;
	if (data[0] & 1)
		fz_scsi(data + 1, size - 1);
	else
		fz_ahci_cmd(data + 1, size - 1);
	return 0;
}

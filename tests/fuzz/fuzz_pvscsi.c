/*
 * fuzz_pvscsi.c — PVSCSI request rings from the input: up to 32 request
 * descriptors (CDBs, s/g lists, targets, LUNs, lengths) consumed by a real
 * controller (devtest VM, raw images in a scratch folder), a producer index
 * that may lie, then a stream of command/register writes (SETUP_RINGS with
 * hostile page numbers included).  Nothing may crash, hang or abort.
 *
 * Input: [flags] [nreq] [prod x4] [descriptors: 128 bytes each] [writes: off x2, val x4]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/devices/devtest.h"
#include "vmx/dev/pvscsi.h"
#include "vmx/log.h"
#include "vmx/pci.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_BAR  0xE0000000u
#define FZ_RS   0x10000u
#define FZ_REQ  0x11000u
#define FZ_CMP  0x12000u
#define FZ_DATA 0x40000u

static struct devtest *fz_t;
static struct pvscsi *fz_pv;

static void fz_file(const char *path, size_t len)
{
	FILE *f = fopen(path, "wb");
	uint8_t blk[4096];

	if (!f)
		abort();
	memset(blk, 0x5A, sizeof(blk));
	for (size_t off = 0; off < len; off += sizeof(blk))
		if (fwrite(blk, 1, sizeof(blk), f) != sizeof(blk))
			abort();
	fclose(f);
}

static void fz_wr(uint32_t off, uint32_t v)
{
	devtest_mmio_write(fz_t, FZ_BAR + off, 4, v);
}

static void fz_init(void)
{
	static char dir[] = "/tmp/vireo-fuzz-pvscsi-XXXXXX";
	char cfg[1024], disk[128], iso[128];

	if (fz_t)
		return;
	vlog_set_stderr_level(VLOG_ERROR);
	if (!mkdtemp(dir))
		abort();
	snprintf(disk, sizeof(disk), "%s/d.img", dir);
	snprintf(iso, sizeof(iso), "%s/c.iso", dir);
	fz_file(disk, 1 << 20);
	fz_file(iso, 64 * 2048);
	snprintf(cfg, sizeof(cfg),
	         "memsize = \"4\"\nscsi0.present = \"TRUE\"\nscsi0.virtualDev = \"pvscsi\"\n"
	         "scsi0:0.present = \"TRUE\"\nscsi0:0.fileName = \"%s\"\n"
	         "scsi0:2.present = \"TRUE\"\nscsi0:2.deviceType = \"cdrom-image\"\n"
	         "scsi0:2.fileName = \"%s\"\n", disk, iso);
	fz_t = devtest_new(cfg);
	if (!fz_t || devtest_add(fz_t, "ioapic") || devtest_add(fz_t, "pci") ||
	    devtest_add(fz_t, "pvscsi"))
		abort();
	fz_pv = devtest_priv(fz_t, "pvscsi");
	unlink(disk);
	unlink(iso);
	rmdir(dir);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gmem *mem;
	uint8_t flags;
	unsigned nreq;
	uint32_t prod;
	size_t pos = 6;

	fz_init();
	if (size < 6)
		return 0;
	mem = &fz_t->vm->mem;
	flags = data[0];
	nreq = data[1] % 33;
	prod = le32(data + 2);
	for (struct vdev *d = fz_t->vm->devices; d; d = d->next)
		if (d->cls->reset)
			d->cls->reset(d);
	pci_config_write(pci_bus_of(fz_t->vm), PVSCSI_PCI_SLOT << 3, PCI_BASE_ADDRESS_0, 4, FZ_BAR);
	pci_config_write(pci_bus_of(fz_t->vm), PVSCSI_PCI_SLOT << 3, PCI_COMMAND, 2, 6);
	/* Valid rings: one request page (32 entries), one completion page. */
	fz_wr(PVSCSI_REG_COMMAND, PVSCSI_CMD_SETUP_RINGS);
	for (unsigned i = 0; i < 132; i++)
		fz_wr(PVSCSI_REG_COMMAND_DATA, i < 2 ? 1 : i == 2 ? FZ_RS >> 12 : i == 4 ? FZ_REQ >> 12 :
		                               i == 68 ? FZ_CMP >> 12 : 0);
	fz_wr(PVSCSI_REG_INTR_MASK, 3);
	for (unsigned i = 0; i < nreq && pos + 128 <= size; i++, pos += 128) {
		uint8_t *d = gmem_ptr(mem, FZ_REQ + i * 128, 128);
		memcpy(d, data + pos, 128);
		if (flags & 1) {
			/* Aim data and sense at RAM; s/g elements too. */
			uint32_t a = FZ_DATA + (le32(d + PVSCSI_REQ_DATA_ADDR) & 0x3FFF0);
			uint32_t l = le32(d + PVSCSI_REQ_DATA_LEN) & 0x1FFFF;
			memcpy(d + PVSCSI_REQ_DATA_ADDR, &a, 4);
			memset(d + PVSCSI_REQ_DATA_ADDR + 4, 0, 4);
			memcpy(d + PVSCSI_REQ_DATA_LEN, &l, 4);
			memset(d + PVSCSI_REQ_DATA_LEN + 4, 0, 4);
			a = FZ_DATA + 0x30000;
			memcpy(d + PVSCSI_REQ_SENSE_ADDR, &a, 4);
			memset(d + PVSCSI_REQ_SENSE_ADDR + 4, 0, 4);
			d[PVSCSI_REQ_BUS] = 0;
			d[PVSCSI_REQ_TARGET] &= 3;
			if (d[PVSCSI_REQ_CDB_LEN] > 16 || d[PVSCSI_REQ_CDB_LEN] < 6)
				d[PVSCSI_REQ_CDB_LEN] = 10;
		}
	}
	if (!(flags & 2))
		prod = nreq;
	gmem_write(mem, FZ_RS + PVSCSI_RS_REQ_PROD, &prod, 4);
	fz_wr((flags & 4) ? PVSCSI_REG_KICK_RW_IO : PVSCSI_REG_KICK_NON_RW_IO, 0);
	for (; pos + 6 <= size && pos < 4096 + 600; pos += 6) {
		uint32_t off = (uint32_t)(data[pos] | data[pos + 1] << 8) & 0x7FFC;
		fz_wr(off, le32(data + pos + 2));
	}
	pvscsi_drain(fz_pv);
	return 0;
}

/*
 * test_ahci.c — the AHCI controller driven through its registers and guest
 * memory structures, against a real sparse VMDK (disk on port 0) and a raw
 * image (ATAPI CD-ROM on port 2): IDENTIFY, DMA reads and writes, FLUSH,
 * interrupts, ATAPI PACKET commands, eject, hostile pointers.  The VMDK is
 * checked afterwards through the disk library and, when installed, qemu-img.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sttest.h"
#include "tests/disk/disktest.h"
#include "tests/unit/t.h"
#include "vmx/dev/ahci.h"
#include "vmx/disk/vdisk.h"

#define ABAR     0xE0000000u
#define CLB0     0x100000u     /* port 0 command list */
#define FB0      0x101000u
#define CLB2     0x102000u
#define FB2      0x103000u
#define CTBA     0x110000u     /* command tables, 0x1000 apart per slot */
#define DATA     0x200000u
#define DATA2    0x300000u
#define DISK_MB  64
#define ISO_SECTORS 600
#define GSI      (16 + ((AHCI_PCI_SLOT + 0) & 3))

static struct devtest *t;
static struct ahci *ahci;

static uint32_t rd(uint32_t off) { return (uint32_t)devtest_mmio_read(t, ABAR + off, 4); }
static void wr(uint32_t off, uint32_t v) { devtest_mmio_write(t, ABAR + off, 4, v); }
static uint32_t prd(unsigned port, uint32_t reg) { return rd(AHCI_PORT(port) + reg); }
static void pwr(unsigned port, uint32_t reg, uint32_t v) { wr(AHCI_PORT(port) + reg, v); }

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

struct prd { uint64_t addr; uint32_t len; };

/*
 * Build slot `slot` of `port`: the command header, an H2D FIS with cmd and
 * lba/count, an optional CDB and the PRDT; issue it and wait for the workers.
 */
static void issue(unsigned port, unsigned slot, uint8_t cmd, uint64_t lba, uint32_t count,
                  const uint8_t *cdb, const struct prd *prds, unsigned nprd, bool write)
{
	uint32_t clb = port == 0 ? CLB0 : CLB2;
	uint64_t ctba = CTBA + port * 0x20000u + slot * 0x1000u;
	uint8_t *hdr = st_mem(t, clb + slot * 32, 32);
	uint8_t *tbl = st_mem(t, ctba, 0x80 + 16 * (nprd ? nprd : 1));

	memset(hdr, 0, 32);
	memset(tbl, 0, 0x80 + 16 * (nprd ? nprd : 1));
	put32(hdr, 5u | (cdb ? 0x20u : 0) | (write ? 0x40u : 0) | (uint32_t)nprd << 16);
	put32(hdr + 4, 0xDEADBEEF);  /* PRDBC: the device must overwrite it */
	put32(hdr + 8, (uint32_t)ctba);
	tbl[0] = 0x27;
	tbl[1] = 0x80;
	tbl[2] = cmd;
	tbl[4] = (uint8_t)lba;
	tbl[5] = (uint8_t)(lba >> 8);
	tbl[6] = (uint8_t)(lba >> 16);
	tbl[7] = 0x40;
	tbl[8] = (uint8_t)(lba >> 24);
	tbl[9] = (uint8_t)(lba >> 32);
	tbl[10] = (uint8_t)(lba >> 40);
	tbl[12] = (uint8_t)count;
	tbl[13] = (uint8_t)(count >> 8);
	if (cdb)
		memcpy(tbl + 0x40, cdb, 16);
	for (unsigned i = 0; i < nprd; i++) {
		uint8_t *e = tbl + 0x80 + 16 * i;
		put32(e, (uint32_t)prds[i].addr);
		put32(e + 4, (uint32_t)(prds[i].addr >> 32));
		put32(e + 12, prds[i].len - 1);
	}
	pwr(port, AHCI_PxCI, 1u << slot);
	ahci_drain(ahci);
}

static uint32_t prdbc(unsigned port, unsigned slot)
{
	uint32_t v;
	memcpy(&v, st_mem(t, (port == 0 ? CLB0 : CLB2) + slot * 32 + 4, 4), 4);
	return v;
}

static void ack(unsigned port)
{
	pwr(port, AHCI_PxIS, 0xFFFFFFFF);
	wr(AHCI_IS, 0xFFFFFFFF);
}

static void start_port(unsigned port)
{
	pwr(port, AHCI_PxCLB, port == 0 ? CLB0 : CLB2);
	pwr(port, AHCI_PxCLBU, 0);
	pwr(port, AHCI_PxFB, port == 0 ? FB0 : FB2);
	pwr(port, AHCI_PxFBU, 0);
	pwr(port, AHCI_PxCMD, AHCI_PxCMD_FRE | AHCI_PxCMD_SUD | AHCI_PxCMD_POD);
	pwr(port, AHCI_PxCMD, AHCI_PxCMD_FRE | AHCI_PxCMD_SUD | AHCI_PxCMD_POD | AHCI_PxCMD_ST);
	pwr(port, AHCI_PxIE, 0xFFFFFFFF);
}

static void cdb_init(uint8_t *c, uint8_t op)
{
	memset(c, 0, 16);
	c[0] = op;
}

static void test_disk(void)
{
	uint8_t *buf = st_mem(t, DATA, 1 << 20), *exp = malloc(1 << 20);
	uint8_t *ident = st_mem(t, DATA2, 512);
	uint64_t sectors = (uint64_t)DISK_MB << 11, n;
	struct prd p[3];
	char model[41];

	T_EQ_U64(prd(0, AHCI_PxSIG), AHCI_SIG_DISK);
	T_EQ_U64(prd(0, AHCI_PxSSTS) & 0xF, 3);
	T_EQ_U64(prd(1, AHCI_PxSSTS) & 0xF, 0);     /* nothing on port 1 */
	start_port(0);
	T_ASSERT(prd(0, AHCI_PxCMD) & AHCI_PxCMD_CR);

	/* IDENTIFY DEVICE: capacity in words 100-103, byte-swapped model, checksum. */
	p[0] = (struct prd){ DATA2, 512 };
	issue(0, 0, 0xEC, 0, 0, NULL, p, 1, false);
	T_EQ_U64(prd(0, AHCI_PxCI), 0);
	T_EQ_U64(prdbc(0, 0), 512);
	n = 0;
	for (int i = 3; i >= 0; i--)
		n = n << 16 | (uint64_t)(ident[200 + 2 * i] | ident[201 + 2 * i] << 8);
	T_EQ_U64(n, sectors);
	for (int i = 0; i < 20; i++) {
		model[2 * i] = (char)ident[54 + 2 * i + 1];
		model[2 * i + 1] = (char)ident[54 + 2 * i];
	}
	model[40] = 0;
	T_CONTAINS(model, "VMware Virtual SATA Hard Drive");
	{
		uint8_t sum = 0;
		for (int i = 0; i < 512; i++)
			sum = (uint8_t)(sum + ident[i]);
		T_EQ_U64(sum, 0);
	}
	T_ASSERT(prd(0, AHCI_PxIS) & AHCI_PxIS_PSS);
	T_EQ_U64(*(uint8_t *)st_mem(t, FB0 + 0x20, 1), 0x5F);    /* PIO setup FIS */
	T_EQ_U64(*(uint8_t *)st_mem(t, FB0 + 0x40, 1), 0x34);    /* D2H register FIS */

	/* Interrupts: level only with GHC.IE; clearing PxIS then IS drops it. */
	T_ASSERT(!devtest_gsi_level(t, GSI));
	wr(AHCI_GHC, AHCI_GHC_IE);
	T_ASSERT(devtest_gsi_level(t, GSI));
	T_EQ_U64(rd(AHCI_IS), 1);
	ack(0);
	T_ASSERT(!devtest_gsi_level(t, GSI));

	/* READ DMA EXT of what the library wrote before the VM started. */
	memset(buf, 0xAA, 8192);
	p[0] = (struct prd){ DATA, 4096 };
	issue(0, 3, 0x25, 1000, 8, NULL, p, 1, false);
	dt_pattern(exp, 4096, 1, 1000 * 512);
	T_MEMEQ(buf, exp, 4096);
	T_EQ_U64(prdbc(0, 3), 4096);
	T_EQ_U64(prd(0, AHCI_PxTFD) & 0xFF, 0x50);
	T_ASSERT(devtest_gsi_level(t, GSI));
	ack(0);

	/* WRITE DMA EXT through three PRDs of odd sizes, FLUSH, read it back. */
	dt_pattern(exp, 24576, 7, 0);
	memcpy(buf, exp, 24576);
	p[0] = (struct prd){ DATA, 1024 };
	p[1] = (struct prd){ DATA + 1024, 15360 };
	p[2] = (struct prd){ DATA + 16384, 8192 };
	issue(0, 5, 0x35, 5000, 48, NULL, p, 3, true);
	T_EQ_U64(prdbc(0, 5), 24576);
	T_EQ_U64(prd(0, AHCI_PxTFD) & 0x01, 0);
	issue(0, 6, 0xEA, 0, 0, NULL, NULL, 0, false);
	T_EQ_U64(prd(0, AHCI_PxTFD) & 0x01, 0);
	memset(buf, 0, 24576);
	p[0] = (struct prd){ DATA, 24576 };
	issue(0, 7, 0x25, 5000, 48, NULL, p, 1, false);
	T_MEMEQ(buf, exp, 24576);
	/* The last sector of the disk is readable; one past it is refused. */
	issue(0, 8, 0x25, sectors - 1, 1, NULL, p, 1, false);
	T_EQ_U64(prd(0, AHCI_PxTFD) & 0x01, 0);
	ack(0);
	issue(0, 9, 0x25, sectors, 1, NULL, p, 1, false);
	T_EQ_U64(prd(0, AHCI_PxTFD) & 0x01, 1);
	T_ASSERT(prd(0, AHCI_PxIS) & AHCI_PxIS_TFES);
	T_EQ_U64(prd(0, AHCI_PxCI), 0);
	/* The guest's error handling: stop, clear, start. */
	pwr(0, AHCI_PxCMD, AHCI_PxCMD_FRE);
	T_ASSERT(!(prd(0, AHCI_PxCMD) & AHCI_PxCMD_CR));
	ack(0);
	pwr(0, AHCI_PxCMD, AHCI_PxCMD_FRE | AHCI_PxCMD_ST);

	/* A PRDT shorter than the transfer, and pointers outside RAM: errors, no harm. */
	p[0] = (struct prd){ DATA, 512 };
	issue(0, 10, 0x25, 0, 8, NULL, p, 1, false);
	T_EQ_U64(prd(0, AHCI_PxTFD) & 0x01, 1);
	ack(0);
	p[0] = (struct prd){ 0xF0000000ull, 4096 };
	issue(0, 11, 0x25, 0, 8, NULL, p, 1, false);
	T_EQ_U64(prd(0, AHCI_PxTFD) & 0x01, 1);
	ack(0);
	pwr(0, AHCI_PxCMD, AHCI_PxCMD_FRE);
	pwr(0, AHCI_PxCLB, 0xFFFFF000u);    /* command list in the PCI hole */
	pwr(0, AHCI_PxCMD, AHCI_PxCMD_FRE | AHCI_PxCMD_ST);
	pwr(0, AHCI_PxCI, 1);
	ahci_drain(ahci);
	T_EQ_U64(prd(0, AHCI_PxCI), 0);
	T_EQ_U64(prd(0, AHCI_PxTFD) & 0x01, 1);
	pwr(0, AHCI_PxCMD, AHCI_PxCMD_FRE);
	pwr(0, AHCI_PxCLB, CLB0);
	pwr(0, AHCI_PxCMD, AHCI_PxCMD_FRE | AHCI_PxCMD_ST);
	ack(0);
	/* Unknown ATA command: aborted. */
	issue(0, 12, 0xB0, 0, 0, NULL, NULL, 0, false);
	T_EQ_U64(prd(0, AHCI_PxTFD), 0x0441);
	ack(0);
	free(exp);
}

/* NCQ: queue a READ/WRITE FPDMA QUEUED in slot `tag` without waiting. */
static void queue_ncq(unsigned tag, bool write, uint64_t lba, uint32_t count, uint64_t buf)
{
	uint64_t ctba = CTBA + tag * 0x1000u;
	uint8_t *hdr = st_mem(t, CLB0 + tag * 32, 32), *tbl = st_mem(t, ctba, 0x90);

	memset(hdr, 0, 32);
	memset(tbl, 0, 0x90);
	put32(hdr, 5u | (write ? 0x40u : 0) | 1u << 16);
	put32(hdr + 8, (uint32_t)ctba);
	tbl[0] = 0x27;
	tbl[1] = 0x80;
	tbl[2] = write ? 0x61 : 0x60;
	tbl[3] = (uint8_t)count;
	tbl[11] = (uint8_t)(count >> 8);
	tbl[4] = (uint8_t)lba;
	tbl[5] = (uint8_t)(lba >> 8);
	tbl[6] = (uint8_t)(lba >> 16);
	tbl[7] = 0x40;
	tbl[12] = (uint8_t)(tag << 3);
	put32(tbl + 0x80, (uint32_t)buf);
	put32(tbl + 0x8C, count * 512 - 1);
	pwr(0, AHCI_PxSACT, 1u << tag);
	pwr(0, AHCI_PxCI, 1u << tag);
}

static void test_ncq(void)
{
	uint8_t *a = st_mem(t, DATA, 65536), *b = st_mem(t, DATA + 65536, 65536);
	uint8_t *exp = malloc(32768), *sdb = st_mem(t, FB0 + 0x58, 8);
	uint32_t bits;

	T_ASSERT(rd(AHCI_CAP) & (1u << 30));
	ack(0);
	dt_pattern(exp, 32768, 21, 0);
	memcpy(a, exp, 32768);
	memset(b, 0, 32768);
	/* Two writes and a read in flight together; CI frees at once, SACT at completion. */
	queue_ncq(1, true, 20000, 32, DATA);
	queue_ncq(2, true, 20032, 32, DATA + 16384);
	queue_ncq(4, false, 1000, 8, DATA + 65536);
	T_EQ_U64(prd(0, AHCI_PxCI), 0);
	ahci_drain(ahci);
	T_EQ_U64(prd(0, AHCI_PxSACT), 0);
	T_ASSERT(prd(0, AHCI_PxIS) & AHCI_PxIS_SDBS);
	T_EQ_U64(sdb[0], 0xA1);
	memcpy(&bits, sdb + 4, 4);
	T_ASSERT(bits == 2 || bits == 4 || bits == 16);     /* the last completion's tag */
	{
		uint8_t *exp2 = malloc(4096);
		dt_pattern(exp2, 4096, 1, 1000 * 512);
		T_MEMEQ(b, exp2, 4096);
		free(exp2);
	}
	ack(0);
	memset(a, 0, 32768);
	queue_ncq(7, false, 20000, 64, DATA);
	ahci_drain(ahci);
	T_MEMEQ(a, exp, 32768);
	T_EQ_U64(prd(0, AHCI_PxSACT), 0);
	ack(0);
	/* A tag that is not its slot, and a slot without its SACT bit: errors. */
	{
		uint8_t *tbl = st_mem(t, CTBA + 5 * 0x1000u, 0x90);
		queue_ncq(5, false, 0, 1, DATA);
		ahci_drain(ahci);
		ack(0);
		tbl[12] = 6 << 3;
		pwr(0, AHCI_PxSACT, 1u << 5);
		pwr(0, AHCI_PxCI, 1u << 5);
		ahci_drain(ahci);
		T_EQ_U64(prd(0, AHCI_PxTFD) & 0x01, 1);
		T_EQ_U64(prd(0, AHCI_PxSACT), 0);
		T_EQ_U64(prd(0, AHCI_PxCI), 0);
	}
	pwr(0, AHCI_PxCMD, AHCI_PxCMD_FRE);
	pwr(0, AHCI_PxCMD, AHCI_PxCMD_FRE | AHCI_PxCMD_ST);
	ack(0);
	free(exp);
}

/* ATAPI: one PACKET command; returns the ATA status, *bytes the PRDBC. */
static uint8_t packet(const uint8_t *cdb, uint32_t len, uint32_t *bytes)
{
	struct prd p = { DATA, len ? len : 2 };

	issue(2, 1, 0xA0, 0, 0, cdb, &p, len ? 1 : 0, false);
	if (bytes)
		*bytes = prdbc(2, 1);
	ack(2);
	return (uint8_t)prd(2, AHCI_PxTFD);
}

static void test_cdrom(const uint8_t *iso)
{
	uint8_t c[16], *buf = st_mem(t, DATA, 65536);
	uint32_t n;
	struct prd p = { DATA2, 512 };

	T_EQ_U64(prd(2, AHCI_PxSIG), AHCI_SIG_ATAPI);
	start_port(2);
	issue(2, 0, 0xEC, 0, 0, NULL, &p, 1, false);       /* IDENTIFY DEVICE is aborted */
	T_EQ_U64(prd(2, AHCI_PxTFD) & 0x01, 1);
	ack(2);
	issue(2, 0, 0xA1, 0, 0, NULL, &p, 1, false);       /* IDENTIFY PACKET DEVICE */
	T_EQ_U64(prd(2, AHCI_PxTFD) & 0x01, 0);
	T_EQ_U64(((uint8_t *)st_mem(t, DATA2, 2))[1], 0x85);
	ack(2);

	cdb_init(c, 0x12);                                 /* INQUIRY */
	c[4] = 96;
	T_EQ_U64(packet(c, 96, &n) & 0x01, 0);
	T_EQ_U64(n, 36);
	T_EQ_U64(buf[0], 5);
	T_EQ_U64(buf[1], 0x80);

	cdb_init(c, 0x25);                                 /* READ CAPACITY */
	T_EQ_U64(packet(c, 8, &n) & 0x01, 0);
	T_EQ_U64((uint64_t)buf[0] << 24 | buf[1] << 16 | buf[2] << 8 | buf[3], ISO_SECTORS - 1);
	T_EQ_U64(buf[6] << 8 | buf[7], 2048);

	cdb_init(c, 0x28);                                 /* READ(10) 3 sectors at 17 */
	c[5] = 17;
	c[8] = 3;
	T_EQ_U64(packet(c, 6144, &n) & 0x01, 0);
	T_EQ_U64(n, 6144);
	T_MEMEQ(buf, iso + 17 * 2048, 6144);

	cdb_init(c, 0x43);                                 /* READ TOC, format 0, LBA */
	c[8] = 100;
	T_EQ_U64(packet(c, 100, &n) & 0x01, 0);
	T_EQ_U64(n, 20);
	T_EQ_U64(buf[3], 1);                               /* last track */
	T_EQ_U64(buf[14], 0xAA);                           /* lead-out ... */
	T_EQ_U64((uint64_t)buf[16] << 24 | buf[17] << 16 | buf[18] << 8 | buf[19], ISO_SECTORS);

	cdb_init(c, 0x5A);                                 /* MODE SENSE(10) page 0x2A */
	c[2] = 0x2A;
	c[8] = 64;
	T_EQ_U64(packet(c, 64, &n) & 0x01, 0);
	T_EQ_U64(buf[8], 0x2A);
	T_ASSERT(buf[8 + 6] & 0x08);                       /* can eject */

	cdb_init(c, 0x46);                                 /* GET CONFIGURATION */
	c[8] = 64;
	T_EQ_U64(packet(c, 64, &n) & 0x01, 0);
	T_EQ_U64(buf[6] << 8 | buf[7], 0x0008);            /* CD-ROM profile current */

	/* Read past the end: ILLEGAL REQUEST in the error register, then sense. */
	cdb_init(c, 0x28);
	c[2] = 0x10;
	c[8] = 1;
	T_EQ_U64(packet(c, 2048, NULL) & 0x01, 1);
	T_EQ_U64(prd(2, AHCI_PxTFD) >> 12, 5);
	pwr(2, AHCI_PxCMD, AHCI_PxCMD_FRE);
	pwr(2, AHCI_PxCMD, AHCI_PxCMD_FRE | AHCI_PxCMD_ST);
	cdb_init(c, 0x03);
	c[4] = 18;
	T_EQ_U64(packet(c, 18, NULL) & 0x01, 0);
	T_EQ_U64(buf[2], 5);
	T_EQ_U64(buf[12], 0x21);

	/* Locked tray refuses to eject; unlocked it opens; TEST UNIT READY then fails. */
	cdb_init(c, 0x1E);
	c[4] = 1;
	T_EQ_U64(packet(c, 0, NULL) & 0x01, 0);
	cdb_init(c, 0x1B);
	c[4] = 0x02;
	T_EQ_U64(packet(c, 0, NULL) & 0x01, 1);
	pwr(2, AHCI_PxCMD, AHCI_PxCMD_FRE);
	pwr(2, AHCI_PxCMD, AHCI_PxCMD_FRE | AHCI_PxCMD_ST);
	cdb_init(c, 0x1E);
	T_EQ_U64(packet(c, 0, NULL) & 0x01, 0);
	cdb_init(c, 0x1B);
	c[4] = 0x02;
	T_EQ_U64(packet(c, 0, NULL) & 0x01, 0);
	cdb_init(c, 0x4A);                                 /* GET EVENT STATUS: media removal */
	c[1] = 1;
	c[4] = 0x10;
	c[8] = 8;
	T_EQ_U64(packet(c, 8, NULL) & 0x01, 0);
	T_EQ_U64(buf[4], 3);
	T_EQ_U64(buf[5] & 1, 1);                           /* tray open */
	cdb_init(c, 0x00);
	T_EQ_U64(packet(c, 0, NULL) & 0x01, 1);
	T_EQ_U64(prd(2, AHCI_PxTFD) >> 12, 2);             /* NOT READY */
	pwr(2, AHCI_PxCMD, AHCI_PxCMD_FRE);
	pwr(2, AHCI_PxCMD, AHCI_PxCMD_FRE | AHCI_PxCMD_ST);
	cdb_init(c, 0x1B);                                 /* close the tray */
	c[4] = 0x03;
	T_EQ_U64(packet(c, 0, NULL) & 0x01, 0);
	cdb_init(c, 0x00);                                 /* unit attention once, then ready */
	T_EQ_U64(packet(c, 0, NULL) & 0x01, 1);
	T_EQ_U64(prd(2, AHCI_PxTFD) >> 12, 6);
	pwr(2, AHCI_PxCMD, AHCI_PxCMD_FRE);
	pwr(2, AHCI_PxCMD, AHCI_PxCMD_FRE | AHCI_PxCMD_ST);
	T_EQ_U64(packet(c, 0, NULL) & 0x01, 0);
	/* Writes to a CD-ROM are refused. */
	cdb_init(c, 0x2A);
	c[8] = 1;
	T_EQ_U64(packet(c, 2048, NULL) & 0x01, 1);
	T_EQ_U64(prd(2, AHCI_PxTFD) >> 12, 7);
	pwr(2, AHCI_PxCMD, AHCI_PxCMD_FRE);
	pwr(2, AHCI_PxCMD, AHCI_PxCMD_FRE | AHCI_PxCMD_ST);
}

/* Host-side media change (what a VMDB request/media does): eject, then another ISO. */
static void test_media_change(void)
{
	uint8_t c[16], *buf = st_mem(t, DATA, 65536);
	uint8_t *iso2 = malloc(100 * 2048);
	char err[512];
	FILE *f;

	T_EQ_I64(ahci_media_change(ahci, 0, NULL, err, sizeof(err)), -1);   /* a disk */
	T_CONTAINS(err, "not a CD-ROM");
	T_EQ_I64(ahci_media_change(ahci, 2, dt_path("none.iso"), err, sizeof(err)), -1);
	cdb_init(c, 0x00);
	T_EQ_U64(packet(c, 0, NULL) & 0x01, 0);          /* a failed insert changed nothing */

	T_EQ_I64(ahci_media_change(ahci, 2, NULL, err, sizeof(err)), 0);
	cdb_init(c, 0x4A);
	c[1] = 1;
	c[4] = 0x10;
	c[8] = 8;
	T_EQ_U64(packet(c, 8, NULL) & 0x01, 0);
	T_EQ_U64(buf[4], 3);                               /* media removal */
	T_EQ_U64(buf[5], 0);                               /* no medium, tray closed */
	cdb_init(c, 0x00);
	T_EQ_U64(packet(c, 0, NULL) & 0x01, 1);
	T_EQ_U64(prd(2, AHCI_PxTFD) >> 12, 2);             /* NOT READY */
	pwr(2, AHCI_PxCMD, AHCI_PxCMD_FRE);
	pwr(2, AHCI_PxCMD, AHCI_PxCMD_FRE | AHCI_PxCMD_ST);
	cdb_init(c, 0x03);
	c[4] = 18;
	T_EQ_U64(packet(c, 18, NULL) & 0x01, 0);
	T_EQ_U64(buf[12], 0x3A);                           /* medium not present */

	dt_pattern(iso2, 100 * 2048, 9, 0);
	f = fopen(dt_path("cd2.iso"), "wb");
	T_ASSERT(f && fwrite(iso2, 1, 100 * 2048, f) == 100 * 2048);
	if (f)
		fclose(f);
	T_EQ_I64(ahci_media_change(ahci, 2, dt_path("cd2.iso"), err, sizeof(err)), 0);
	cdb_init(c, 0x4A);
	c[1] = 1;
	c[4] = 0x10;
	c[8] = 8;
	T_EQ_U64(packet(c, 8, NULL) & 0x01, 0);
	T_EQ_U64(buf[4], 2);                               /* new media */
	T_EQ_U64(buf[5], 2);                               /* present */
	cdb_init(c, 0x25);                                 /* unit attention first */
	T_EQ_U64(packet(c, 8, NULL) & 0x01, 1);
	T_EQ_U64(prd(2, AHCI_PxTFD) >> 12, 6);
	pwr(2, AHCI_PxCMD, AHCI_PxCMD_FRE);
	pwr(2, AHCI_PxCMD, AHCI_PxCMD_FRE | AHCI_PxCMD_ST);
	T_EQ_U64(packet(c, 8, NULL) & 0x01, 0);
	T_EQ_U64((uint64_t)buf[0] << 24 | buf[1] << 16 | buf[2] << 8 | buf[3], 99);
	cdb_init(c, 0x28);
	c[5] = 42;
	c[8] = 2;
	T_EQ_U64(packet(c, 4096, NULL) & 0x01, 0);
	T_MEMEQ(buf, iso2 + 42 * 2048, 4096);
	free(iso2);
}

static void check_vmdk(const char *path)
{
	struct vdisk *d;
	char err[512];
	uint8_t *got = malloc(24576), *exp = malloc(24576);

	T_EQ_I64(vdisk_open(&d, path, VDISK_FMT_AUTO, VDISK_OPEN_RDONLY, err, sizeof(err)), 0);
	if (d) {
		T_EQ_I64(vdisk_pread(d, got, 24576, 5000 * 512), 0);
		dt_pattern(exp, 24576, 7, 0);
		T_MEMEQ(got, exp, 24576);
		vdisk_close(d);
	}
	if (dt_have_qemu_img()) {
		char *out = NULL;
		T_EQ_I64(dt_sh(&out, "qemu-img check -f vmdk '%s' 2>&1", path), 0);
		free(out);
	} else {
		printf("qemu-img not installed: skipping its check\n");
	}
	free(got);
	free(exp);
}

int main(void)
{
	const char *vmdk = dt_path("disk.vmdk"), *isop = dt_path("cd.iso");
	char err[512], cfg[4096];
	struct vdisk *d;
	uint8_t *iso = malloc(ISO_SECTORS * 2048), *pat = malloc(4096);
	FILE *f;

	/* The disk: data at sector 1000 written through the library. */
	if (vdisk_create(vmdk, VDISK_FMT_VMDK_SPARSE, (uint64_t)DISK_MB << 20, err, sizeof(err)) ||
	    vdisk_open(&d, vmdk, VDISK_FMT_AUTO, 0, err, sizeof(err))) {
		fprintf(stderr, "test_ahci: %s\n", err);
		return 1;
	}
	dt_pattern(pat, 4096, 1, 1000 * 512);
	T_EQ_I64(vdisk_pwrite(d, pat, 4096, 1000 * 512), 0);
	vdisk_close(d);
	dt_pattern(iso, ISO_SECTORS * 2048, 3, 0);
	f = fopen(isop, "wb");
	if (!f || fwrite(iso, 1, ISO_SECTORS * 2048, f) != ISO_SECTORS * 2048 || fclose(f)) {
		fprintf(stderr, "test_ahci: cannot write %s\n", isop);
		return 1;
	}

	/* Bad config values: the error names the key. */
	snprintf(cfg, sizeof(cfg), "sata0.present = \"TRUE\"\nsata0:0.present = \"TRUE\"\n"
	         "sata0:0.deviceType = \"floppy\"\nsata0:0.fileName = \"%s\"\n", vmdk);
	{
		struct devtest *bad = devtest_new(cfg);
		T_ASSERT(bad && devtest_add(bad, "ioapic") == 0 && devtest_add(bad, "pci") == 0);
		T_EQ_I64(bad ? devtest_add(bad, "ahci") : 0, -1);
		devtest_free(bad);
	}
	snprintf(cfg, sizeof(cfg), "sata0.present = \"TRUE\"\nsata0:0.present = \"TRUE\"\n"
	         "sata0:0.fileName = \"%s\"\n", dt_path("missing.vmdk"));
	{
		struct devtest *bad = devtest_new(cfg);
		T_ASSERT(bad && devtest_add(bad, "ioapic") == 0 && devtest_add(bad, "pci") == 0);
		T_EQ_I64(bad ? devtest_add(bad, "ahci") : 0, -1);
		devtest_free(bad);
	}

	snprintf(cfg, sizeof(cfg),
	         "memsize = \"64\"\nsata0.present = \"TRUE\"\n"
	         "sata0:0.present = \"TRUE\"\nsata0:0.fileName = \"%s\"\n"
	         "sata0:2.present = \"TRUE\"\nsata0:2.deviceType = \"cdrom-image\"\n"
	         "sata0:2.fileName = \"%s\"\n", vmdk, isop);
	t = st_vm(cfg, "ahci");
	if (!t)
		return 1;
	ahci = devtest_priv(t, "ahci");
	T_EQ_U64(st_cfg_read(t, AHCI_PCI_SLOT, 0, 4), 0x29228086u);
	T_EQ_U64(st_cfg_read(t, AHCI_PCI_SLOT, 8, 4) >> 8, 0x010601u);
	st_map_bar(t, AHCI_PCI_SLOT, 5, ABAR);
	T_EQ_U64(rd(AHCI_PI), 0x3F);
	T_ASSERT(rd(AHCI_GHC) & AHCI_GHC_AE);
	T_EQ_U64(rd(AHCI_CAP) & 0x1F, 5);
	test_disk();
	test_ncq();
	test_cdrom(iso);
	test_media_change();
	/* HBA reset: ports stop, signatures stay. */
	wr(AHCI_GHC, AHCI_GHC_HR);
	T_EQ_U64(prd(0, AHCI_PxCMD) & AHCI_PxCMD_ST, 0);
	T_EQ_U64(prd(2, AHCI_PxSIG), AHCI_SIG_ATAPI);
	devtest_free(t);
	check_vmdk(vmdk);
	free(iso);
	free(pat);
	dt_cleanup();
	return T_DONE();
}

/*
 * ahci.c — ICH9 AHCI controller with ATA disks and ATAPI CD-ROMs (ahci.h).
 *
 * A command starts when the guest sets its PxCI bit with PxCMD.ST on: the
 * command header, FIS and PRDT are read from guest memory (every address
 * checked by gmem_*), and disk transfers go to dio.h workers so the vCPU
 * returns at once.  The worker that finishes a transfer completes the
 * command (PRDBC, received FIS, PxTFD, PxIS, PxCI) and raises INTx.
 *
 * Stopping a port (ST 1 -> 0) retires its slots at once, as the guest's
 * error handling expects; a transfer still running then finishes into a
 * dead slot (its generation moved on) and changes nothing the guest sees.
 */
#include "ahci.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scsi.h"
#include "vmx/device.h"
#include "vmx/disk/dio.h"
#include "vmx/disk/vdisk.h"
#include "vmx/lock.h"
#include "vmx/log.h"
#include "vmx/pci.h"
#include "vmx/vm.h"
#include "vmdb/vmx_link.h"

#define AHCI_SLOTS        32
#define ATA_DRDY          0x40
#define ATA_DSC           0x10
#define ATA_ERR           0x01
#define ATA_BSY           0x80
#define ATA_DRQ           0x08
#define ATA_ABRT          0x04
#define ATA_IDNF          0x10
#define ATA_UNC           0x40

enum ahci_kind { AHCI_NONE, AHCI_DISK, AHCI_ATAPI };

struct ahci_port;

struct ahci_slot {
	struct ahci_port *port;
	unsigned idx;
	bool busy;                 /* owned by a worker until its done() */
	unsigned gen;              /* port generation it was started in */
	struct dio_req dio;
	struct scsi_sg sg;
	struct scsi_media *media;  /* reference for an ATA transfer */
	bool atapi, write, ncq;
	uint8_t fis[20];           /* H2D register FIS (command) */
	struct scsi_req sreq;
};

struct ahci_port {
	struct ahci *s;
	unsigned idx;
	enum ahci_kind kind;
	struct scsi_dev sd;
	uint32_t clb, clbu, fb, fbu, is, ie, cmd, tfd, sig, ssts, sctl, serr, sact, ci;
	unsigned gen;
	struct ahci_slot slots[AHCI_SLOTS];
};

struct ahci {
	struct vmx_vm *vm;
	struct pci_dev pci;
	struct vmx_mutex lock;
	uint32_t ghc, is;
	struct ahci_port ports[AHCI_NPORTS];
	struct dio_pool *pool;
};

static void ahci_update_irq(struct ahci *s)
{
	for (unsigned i = 0; i < AHCI_NPORTS; i++)
		if (s->ports[i].is & s->ports[i].ie)
			s->is |= 1u << i;
	pci_set_irq(&s->pci, (s->ghc & AHCI_GHC_IE) && s->is);
}

static uint64_t clb64(const struct ahci_port *p) { return (uint64_t)p->clbu << 32 | p->clb; }
static uint64_t fb64(const struct ahci_port *p) { return (uint64_t)p->fbu << 32 | p->fb; }

static void le16w(uint8_t *p, unsigned v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static uint32_t le32r(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ---- completion ---- */

/*
 * Finish slot `slot` of port p with ATA status/error; bytes: PRDBC.
 * pio: a PIO data-in command, which also posts a PIO Setup FIS (Linux reads
 * the final status from it).  Called with the lock held.
 */
static void ahci_finish(struct ahci_port *p, unsigned slot, uint8_t status, uint8_t error,
                        uint32_t bytes, bool pio, const uint8_t *cfis)
{
	struct ahci *s = p->s;
	uint8_t fis[20];

	if (gmem_write(&s->vm->mem, clb64(p) + slot * 32u + 4, &bytes, 4) != 0)
		vlog_guest("ahci%u: command list at 0x%llx is not RAM", p->idx,
		           (unsigned long long)clb64(p));
	p->tfd = (uint32_t)error << 8 | status;
	if (p->cmd & AHCI_PxCMD_FRE) {
		memset(fis, 0, sizeof(fis));
		fis[1] = 0x40;           /* interrupt */
		fis[2] = status;
		fis[3] = error;
		if (cfis) {
			memcpy(fis + 4, cfis + 4, 7);    /* LBA, device */
			memcpy(fis + 8, cfis + 8, 3);
			fis[12] = cfis[12];
			fis[13] = cfis[13];
		}
		if (pio) {
			fis[0] = 0x5F;
			fis[1] = 0x60;       /* interrupt, device to host */
			fis[15] = status;    /* E_Status */
			le16w(fis + 16, bytes);
			gmem_write(&s->vm->mem, fb64(p) + 0x20, fis, 20);
			p->is |= AHCI_PxIS_PSS;
			fis[15] = fis[16] = fis[17] = 0;
			fis[1] = 0x40;
		}
		fis[0] = 0x34;
		if (gmem_write(&s->vm->mem, fb64(p) + 0x40, fis, 20) != 0)
			vlog_guest("ahci%u: FIS area at 0x%llx is not RAM", p->idx,
			           (unsigned long long)fb64(p));
	}
	p->is |= AHCI_PxIS_DHRS;
	if (status & ATA_ERR)
		p->is |= AHCI_PxIS_TFES;
	p->ci &= ~(1u << slot);
	ahci_update_irq(s);
}

/* An NCQ command finished: Set Device Bits FIS with its tag, PxSACT bit cleared (lock held). */
static void ahci_finish_ncq(struct ahci_port *p, unsigned slot, bool ok)
{
	uint8_t fis[8] = { 0xA1, 0x40, 0, 0, 0, 0, 0, 0 };
	uint32_t bit = 1u << slot;

	p->sact &= ~bit;
	if (ok) {
		fis[2] = ATA_DRDY | ATA_DSC;
		memcpy(fis + 4, &bit, 4);
		p->is |= AHCI_PxIS_SDBS;
	} else {
		/* The guest's error handling takes over (it resets the port). */
		fis[2] = ATA_DRDY | ATA_ERR;
		fis[3] = ATA_ABRT;
		p->tfd = (uint32_t)ATA_ABRT << 8 | ATA_DRDY | ATA_ERR;
		p->is |= AHCI_PxIS_TFES | AHCI_PxIS_SDBS;
	}
	if (p->cmd & AHCI_PxCMD_FRE)
		gmem_write(&p->s->vm->mem, fb64(p) + 0x58, fis, sizeof(fis));
	ahci_update_irq(p->s);
}

static void ahci_slot_release(struct ahci_slot *sl)
{
	scsi_sg_free(&sl->sg);
	scsi_media_put(sl->media);
	sl->media = NULL;
	if (sl->sreq.media) {
		scsi_media_put(sl->sreq.media);
		sl->sreq.media = NULL;
	}
	sl->busy = false;
}

static void ahci_kick(struct ahci_port *p);

static void ahci_atapi_status(struct ahci_port *p, struct ahci_slot *sl, uint32_t bytes)
{
	if (sl->sreq.status == SCSI_STATUS_GOOD) {
		uint8_t f[20];
		memcpy(f, sl->fis, 20);
		f[12] = 0x03;            /* interrupt reason: I/O, C/D */
		ahci_finish(p, sl->idx, ATA_DRDY | ATA_DSC, 0, bytes, false, f);
	} else {
		ahci_finish(p, sl->idx, ATA_DRDY | ATA_ERR,
		            (uint8_t)(sl->sreq.sense[2] << 4 | ATA_ABRT), bytes, false, sl->fis);
	}
}

static void ahci_dio_done(struct dio_req *req, int ret)
{
	struct ahci_slot *sl = req->opaque;
	struct ahci_port *p = sl->port;
	struct ahci *s = p->s;
	uint32_t bytes = (uint32_t)sl->sg.total;

	vmx_mutex_lock(&s->lock);
	if (sl->ncq) {
		if (sl->gen == p->gen && (p->sact & (1u << sl->idx))) {
			if (ret)
				vlog_warn("ahci%u: queued %s failed: %d", p->idx, sl->write ? "write" : "read", ret);
			ahci_finish_ncq(p, sl->idx, ret == 0);
		}
	} else if (sl->gen == p->gen && (p->ci & (1u << sl->idx))) {
		if (sl->atapi) {
			scsi_complete(&p->sd, &sl->sreq, ret);
			ahci_atapi_status(p, sl, ret ? 0 : bytes);
		} else if (ret) {
			vlog_warn("ahci%u: %s failed: %d", p->idx, sl->write ? "write" : "read", ret);
			ahci_finish(p, sl->idx, ATA_DRDY | ATA_ERR, sl->write ? ATA_ABRT : ATA_UNC, 0,
			            false, sl->fis);
		} else {
			ahci_finish(p, sl->idx, ATA_DRDY | ATA_DSC, 0, bytes, false, sl->fis);
		}
	}
	ahci_slot_release(sl);
	ahci_kick(p);
	vmx_mutex_unlock(&s->lock);
}

static void ahci_submit(struct ahci_port *p, struct ahci_slot *sl, enum dio_op op,
                        struct scsi_media *m, uint64_t off)
{
	sl->busy = true;
	sl->gen = p->gen;
	sl->dio = (struct dio_req){
		.op = op, .disk = m->disk, .offset = off, .iov = sl->sg.iov, .iovcnt = sl->sg.n,
		.done = ahci_dio_done, .opaque = sl,
	};
	dio_submit(p->s->pool, &sl->dio);
}

/* ---- IDENTIFY ---- */

static void ata_string(uint16_t *w, const char *s, unsigned nwords)
{
	size_t l = strlen(s);

	for (unsigned i = 0; i < nwords; i++) {
		char a = 2 * i < l ? s[2 * i] : ' ';
		char b = 2 * i + 1 < l ? s[2 * i + 1] : ' ';
		w[i] = (uint16_t)((uint8_t)a << 8 | (uint8_t)b);
	}
}

static void ahci_identify(struct ahci_port *p, uint8_t *out)
{
	uint16_t w[256];
	uint64_t n = p->sd.nblocks;
	uint8_t sum = 0;

	memset(w, 0, sizeof(w));
	ata_string(w + 10, p->sd.serial, 10);
	ata_string(w + 23, "00000001", 4);
	if (p->kind == AHCI_ATAPI) {
		w[0] = 0x85C0;           /* ATAPI, CD-ROM, removable, 12-byte packets */
		ata_string(w + 27, "VMware Virtual SATA CDRW Drive", 20);
		w[49] = 0x0300;          /* LBA, DMA */
		w[53] = 0x0006;
		w[63] = 0x0007;
		w[64] = 0x0003;
		w[65] = w[66] = w[67] = w[68] = 120;
		w[76] = 0x0002;          /* SATA gen 1 */
		w[80] = 0x007E;
		w[82] = 0x4210;          /* NOP, PACKET, removable medium */
		w[83] = 0x4000;
		w[84] = 0x4000;
		w[85] = 0x4210;
		w[86] = 0x0000;
		w[87] = 0x4000;
		w[88] = 0x203F;          /* UDMA 0-5, 5 selected */
	} else {
		uint64_t lba28 = n > 0x0FFFFFFF ? 0x0FFFFFFF : n;
		uint64_t chs = n / (16 * 63);
		w[0] = 0x0040;           /* fixed disk */
		w[1] = (uint16_t)(chs > 16383 ? 16383 : chs);
		w[3] = 16;
		w[6] = 63;
		ata_string(w + 27, "VMware Virtual SATA Hard Drive", 20);
		w[47] = 0x8010;          /* READ/WRITE MULTIPLE: 16 sectors */
		w[49] = 0x0300;
		w[50] = 0x4000;
		w[53] = 0x0007;
		w[54] = w[1];
		w[55] = 16;
		w[56] = 63;
		w[57] = (uint16_t)((uint32_t)(w[1] * 16u * 63u));
		w[58] = (uint16_t)((uint32_t)(w[1] * 16u * 63u) >> 16);
		w[59] = 0x0110;
		w[60] = (uint16_t)lba28;
		w[61] = (uint16_t)(lba28 >> 16);
		w[63] = 0x0007;
		w[64] = 0x0003;
		w[65] = w[66] = w[67] = w[68] = 120;
		w[75] = AHCI_SLOTS - 1;  /* NCQ queue depth 32 */
		w[76] = 0x0102;          /* SATA gen 1, NCQ */
		w[80] = 0x00F0;          /* ATA/ATAPI-4 .. 7 */
		w[81] = 0x0016;
		w[82] = 0x4020;          /* NOP, write cache */
		w[83] = 0x7400;          /* 48-bit, FLUSH CACHE (EXT), bit 14 */
		w[84] = 0x4000;
		w[85] = 0x4020;          /* write cache enabled */
		w[86] = 0x3400;
		w[87] = 0x4000;
		w[88] = 0x203F;
		w[93] = 0x0000;
		w[100] = (uint16_t)n;
		w[101] = (uint16_t)(n >> 16);
		w[102] = (uint16_t)(n >> 32);
		w[103] = (uint16_t)(n >> 48);
		w[106] = 0x4000;         /* one logical sector per physical */
		w[217] = 0x0001;         /* non-rotating */
	}
	w[255] = 0x00A5;
	for (unsigned i = 0; i < 512; i++) {
		out[i] = (uint8_t)(w[i / 2] >> (8 * (i & 1)));
		if (i < 511)
			sum = (uint8_t)(sum + out[i]);
	}
	out[511] = (uint8_t)-sum;
}

/* ---- command execution ---- */

/*
 * The PRDT as a scatter list.  Entries are mapped in order until one does
 * not map to guest RAM; the list ends there.  A command only fails if it
 * needs more bytes than the list holds (its own length checks do that):
 * SeaBIOS gives every command one 4 MiB entry at address 0, also commands
 * that move nothing, and real controllers only touch what they transfer.
 */
static int ahci_build_sg(struct ahci_port *p, struct ahci_slot *sl, uint64_t ctba, unsigned prdtl)
{
	const struct gmem *mem = &p->s->vm->mem;

	for (unsigned i = 0; i < prdtl; i++) {
		uint8_t e[16];
		uint64_t dba;
		uint32_t dbc;
		if (gmem_read(mem, ctba + 0x80 + 16ull * i, e, 16) != 0)
			return -1;
		dba = ((uint64_t)le32r(e + 4) << 32 | le32r(e)) & ~1ull;
		dbc = (le32r(e + 12) & 0x3FFFFF) + 1;
		if (scsi_sg_add(&sl->sg, mem, dba, dbc) != 0)
			break;
	}
	return 0;
}

static void ahci_ata_rw(struct ahci_port *p, struct ahci_slot *sl, bool ext, bool write, bool ncq)
{
	const uint8_t *f = sl->fis;
	uint64_t lba, count;

	if (ncq) {
		/* FPDMA QUEUED: count in FEATURES, tag in COUNT(7:3); Linux uses tag = slot. */
		if ((unsigned)(f[12] >> 3) != sl->idx || !(p->sact & (1u << sl->idx))) {
			vlog_guest("ahci%u: queued command in slot %u with tag %u, SACT 0x%x", p->idx,
			           sl->idx, f[12] >> 3, p->sact);
			p->sact &= ~(1u << sl->idx);
			ahci_finish(p, sl->idx, ATA_DRDY | ATA_ERR, ATA_ABRT, 0, false, f);
			return;
		}
		lba = (uint64_t)f[4] | (uint64_t)f[5] << 8 | (uint64_t)f[6] << 16 |
		      (uint64_t)f[8] << 24 | (uint64_t)f[9] << 32 | (uint64_t)f[10] << 40;
		count = (uint64_t)f[3] | (uint64_t)f[11] << 8;
		if (!count)
			count = 65536;
	} else if (ext) {
		lba = (uint64_t)f[4] | (uint64_t)f[5] << 8 | (uint64_t)f[6] << 16 |
		      (uint64_t)f[8] << 24 | (uint64_t)f[9] << 32 | (uint64_t)f[10] << 40;
		count = (uint64_t)f[12] | (uint64_t)f[13] << 8;
		if (!count)
			count = 65536;
	} else {
		lba = (uint64_t)f[4] | (uint64_t)f[5] << 8 | (uint64_t)f[6] << 16 |
		      (uint64_t)(f[7] & 0x0F) << 24;
		count = f[12] ? f[12] : 256;
	}
	if (!p->sd.media || lba > p->sd.nblocks || count > p->sd.nblocks - lba) {
		vlog_guest("ahci%u: %s beyond the disk (lba %llu, %llu sectors)", p->idx,
		           write ? "write" : "read", (unsigned long long)lba, (unsigned long long)count);
		p->sact &= ~(1u << sl->idx);
		ahci_finish(p, sl->idx, ATA_DRDY | ATA_ERR, ATA_IDNF | ATA_ABRT, 0, false, f);
		return;
	}
	if (write && p->sd.media->read_only) {
		p->sact &= ~(1u << sl->idx);
		ahci_finish(p, sl->idx, ATA_DRDY | ATA_ERR, ATA_ABRT, 0, false, f);
		return;
	}
	if (sl->sg.total < count * 512) {
		vlog_guest("ahci%u: PRDT holds %llu bytes, the command moves %llu", p->idx,
		           (unsigned long long)sl->sg.total, (unsigned long long)(count * 512));
		p->sact &= ~(1u << sl->idx);
		ahci_finish(p, sl->idx, ATA_DRDY | ATA_ERR, ATA_ABRT, 0, false, f);
		return;
	}
	scsi_sg_trim(&sl->sg, count * 512);
	sl->write = write;
	sl->ncq = ncq;
	sl->media = scsi_media_get(p->sd.media);
	ahci_submit(p, sl, write ? DIO_WRITE : DIO_READ, sl->media, lba * 512);
	if (ncq)
		p->ci &= ~(1u << sl->idx);   /* accepted: the slot is free for the next command */
}

static void ahci_atapi(struct ahci_port *p, struct ahci_slot *sl, uint64_t ctba)
{
	uint8_t cdb[16];
	struct scsi_req *r = &sl->sreq;

	if (gmem_read(&p->s->vm->mem, ctba + 0x40, cdb, sizeof(cdb)) != 0) {
		ahci_finish(p, sl->idx, ATA_DRDY | ATA_ERR, ATA_ABRT, 0, false, sl->fis);
		return;
	}
	scsi_exec(&p->sd, cdb, sizeof(cdb), 0, r);
	sl->atapi = true;
	switch (r->xfer) {
	case SCSI_XFER_IN:
		ahci_atapi_status(p, sl, (uint32_t)scsi_sg_copy_in(&sl->sg, r->buf, r->len));
		return;
	case SCSI_XFER_READ:
		/* A PRDT shorter than the request gets what fits, as a drive would stop. */
		if (sl->sg.total < r->len)
			r->len = sl->sg.total & ~(uint64_t)(p->sd.block_size - 1);
		if (r->len == 0) {
			scsi_complete(&p->sd, r, 0);
			ahci_atapi_status(p, sl, 0);
			return;
		}
		scsi_sg_trim(&sl->sg, r->len);
		ahci_submit(p, sl, DIO_READ, r->media, r->offset);
		return;
	case SCSI_XFER_WRITE:
	case SCSI_XFER_FLUSH:
		/* The target refuses writes to a CD-ROM; nothing else gets here. */
		scsi_complete(&p->sd, r, -EROFS);
		ahci_atapi_status(p, sl, 0);
		return;
	case SCSI_XFER_NONE:
		ahci_atapi_status(p, sl, 0);
		return;
	}
}

static void ahci_exec(struct ahci_port *p, struct ahci_slot *sl, unsigned cfl, unsigned prdtl,
                      uint64_t ctba)
{
	const uint8_t *f = sl->fis;
	uint8_t cmd = f[2], buf[512];
	bool atapi = p->kind == AHCI_ATAPI;

	if (cfl < 5 || f[0] != 0x27) {
		vlog_guest("ahci%u: slot %u: not a register FIS (type 0x%x, %u dwords)", p->idx,
		           sl->idx, f[0], cfl);
		ahci_finish(p, sl->idx, ATA_DRDY | ATA_ERR, ATA_ABRT, 0, false, NULL);
		return;
	}
	if (!(f[1] & 0x80)) {
		/* Device control (soft reset): the device answers with its signature. */
		if (!(f[15] & 0x04)) {
			uint8_t sig[20] = { 0 };
			sig[12] = 1;
			sig[4] = 1;
			if (atapi) {
				sig[5] = 0x14;
				sig[6] = 0xEB;
			}
			ahci_finish(p, sl->idx, atapi ? 0 : ATA_DRDY | ATA_DSC, 1, 0, false, sig);
		} else {
			p->ci &= ~(1u << sl->idx);
		}
		return;
	}
	if (ahci_build_sg(p, sl, ctba, prdtl) != 0) {
		vlog_guest("ahci%u: slot %u: the PRDT itself lies outside RAM", p->idx, sl->idx);
		ahci_finish(p, sl->idx, ATA_DRDY | ATA_ERR, ATA_ABRT, 0, false, f);
		return;
	}
	if (atapi) {
		switch (cmd) {
		case 0xA0:               /* PACKET */
			ahci_atapi(p, sl, ctba);
			return;
		case 0xA1:               /* IDENTIFY PACKET DEVICE */
			ahci_identify(p, buf);
			ahci_finish(p, sl->idx, ATA_DRDY | ATA_DSC, 0,
			            (uint32_t)scsi_sg_copy_in(&sl->sg, buf, 512), true, f);
			return;
		case 0xEC: {             /* IDENTIFY DEVICE: abort with the ATAPI signature */
			uint8_t sig[20];
			memcpy(sig, f, 20);
			sig[4] = 1;
			sig[5] = 0x14;
			sig[6] = 0xEB;
			sig[12] = 1;
			ahci_finish(p, sl->idx, ATA_DRDY | ATA_ERR, ATA_ABRT, 0, false, sig);
			return;
		}
		case 0x08:               /* DEVICE RESET */
			scsi_dev_reset(&p->sd);
			ahci_finish(p, sl->idx, 0, 1, 0, false, f);
			return;
		case 0xEF: case 0xE5: case 0xE1: case 0xE0: case 0xE3: case 0xE2: case 0x00:
			break;
		default:
			ahci_finish(p, sl->idx, ATA_DRDY | ATA_ERR, ATA_ABRT, 0, false, f);
			return;
		}
	}
	switch (cmd) {
	case 0xEC:                   /* IDENTIFY DEVICE */
		ahci_identify(p, buf);
		ahci_finish(p, sl->idx, ATA_DRDY | ATA_DSC, 0,
		            (uint32_t)scsi_sg_copy_in(&sl->sg, buf, 512), true, f);
		return;
	case 0x60:                   /* READ FPDMA QUEUED */
		ahci_ata_rw(p, sl, true, false, true);
		return;
	case 0x61:                   /* WRITE FPDMA QUEUED */
		ahci_ata_rw(p, sl, true, true, true);
		return;
	case 0x25: case 0x24:        /* READ DMA EXT, READ SECTORS EXT */
		ahci_ata_rw(p, sl, true, false, false);
		return;
	case 0x35: case 0x34:        /* WRITE DMA EXT, WRITE SECTORS EXT */
		ahci_ata_rw(p, sl, true, true, false);
		return;
	case 0xC8: case 0x20: case 0x21:
		ahci_ata_rw(p, sl, false, false, false);
		return;
	case 0xCA: case 0x30: case 0x31:
		ahci_ata_rw(p, sl, false, true, false);
		return;
	case 0xE7: case 0xEA:        /* FLUSH CACHE (EXT) */
		if (p->sd.media && !p->sd.media->read_only) {
			sl->write = true;
			sl->media = scsi_media_get(p->sd.media);
			scsi_sg_trim(&sl->sg, 0);
			sl->sg.n = 0;
			ahci_submit(p, sl, DIO_FLUSH, sl->media, 0);
			return;
		}
		break;
	case 0xE5: {                 /* CHECK POWER MODE: active */
		uint8_t r[20];
		memcpy(r, f, 20);
		r[12] = 0xFF;
		ahci_finish(p, sl->idx, ATA_DRDY | ATA_DSC, 0, 0, false, r);
		return;
	}
	case 0xEF:                   /* SET FEATURES: transfer modes, write cache ... accepted */
	case 0xC6:                   /* SET MULTIPLE MODE */
	case 0x91:                   /* INITIALIZE DEVICE PARAMETERS */
	case 0x40: case 0x42:        /* READ VERIFY (EXT) */
	case 0xE0: case 0xE1: case 0xE2: case 0xE3:   /* standby / idle */
	case 0x10:                   /* RECALIBRATE */
	case 0x00:                   /* NOP */
		break;
	case 0xA0: case 0xA1:        /* PACKET, IDENTIFY PACKET DEVICE on a disk */
		/* Aborted as by any ATA disk: firmware probes for ATAPI this way
		 * (SeaBIOS on every boot), so it is not worth a log line. */
		ahci_finish(p, sl->idx, ATA_DRDY | ATA_ERR, ATA_ABRT, 0, false, f);
		return;
	default:
		vlog_guest("ahci%u: ATA command 0x%02x not supported", p->idx, cmd);
		ahci_finish(p, sl->idx, ATA_DRDY | ATA_ERR, ATA_ABRT, 0, false, f);
		return;
	}
	ahci_finish(p, sl->idx, ATA_DRDY | ATA_DSC, 0, 0, false, f);
}

static void ahci_start_slot(struct ahci_port *p, unsigned slot)
{
	struct ahci_slot *sl = &p->slots[slot];
	const struct gmem *mem = &p->s->vm->mem;
	uint8_t hdr[32];
	uint32_t dw0;
	uint64_t ctba;

	memset(sl->fis, 0, sizeof(sl->fis));
	scsi_sg_init(&sl->sg);
	sl->atapi = sl->write = sl->ncq = false;
	sl->media = NULL;
	sl->sreq.media = NULL;
	if (gmem_read(mem, clb64(p) + slot * 32u, hdr, sizeof(hdr)) != 0) {
		vlog_guest("ahci%u: command list at 0x%llx is not RAM", p->idx,
		           (unsigned long long)clb64(p));
		ahci_finish(p, slot, ATA_DRDY | ATA_ERR, ATA_ABRT, 0, false, NULL);
		return;
	}
	dw0 = le32r(hdr);
	ctba = ((uint64_t)le32r(hdr + 12) << 32 | le32r(hdr + 8)) & ~0x7Full;
	if (gmem_read(mem, ctba, sl->fis, sizeof(sl->fis)) != 0) {
		vlog_guest("ahci%u: command table at 0x%llx is not RAM", p->idx,
		           (unsigned long long)ctba);
		ahci_finish(p, slot, ATA_DRDY | ATA_ERR, ATA_ABRT, 0, false, NULL);
		return;
	}
	ahci_exec(p, sl, dw0 & 0x1F, dw0 >> 16, ctba);
	if (!sl->busy)
		ahci_slot_release(sl);
}

/* Start every issued command whose slot is free (lock held). */
static void ahci_kick(struct ahci_port *p)
{
	if (!(p->cmd & AHCI_PxCMD_ST) || p->kind == AHCI_NONE)
		return;
	/*
	 * A set CI bit on a busy slot is either that slot's own transfer or a
	 * new command issued after a port stop retired it: the latter starts
	 * when the old transfer's done() frees the slot.
	 */
	for (unsigned i = 0; i < AHCI_SLOTS; i++)
		if ((p->ci & (1u << i)) && !p->slots[i].busy)
			ahci_start_slot(p, i);
}

/* ---- reset ---- */

static void ahci_port_stop(struct ahci_port *p)
{
	p->gen++;
	p->ci = 0;
	p->sact = 0;
	p->cmd &= ~(AHCI_PxCMD_ST | AHCI_PxCMD_CR);
}

static void ahci_port_signature(struct ahci_port *p)
{
	if (p->kind == AHCI_NONE) {
		p->ssts = 0;
		p->sig = 0xFFFFFFFF;
		p->tfd = 0x7F;
		return;
	}
	p->ssts = 0x113;             /* device present, gen 1, active */
	p->sig = p->kind == AHCI_ATAPI ? AHCI_SIG_ATAPI : AHCI_SIG_DISK;
	p->tfd = p->kind == AHCI_ATAPI ? 0x100 : 0x100 | ATA_DRDY | ATA_DSC;
	if (p->cmd & AHCI_PxCMD_FRE) {
		uint8_t fis[20] = { 0 };
		fis[0] = 0x34;
		fis[2] = (uint8_t)p->tfd;
		fis[3] = 1;
		fis[4] = 1;
		fis[12] = 1;
		fis[5] = (uint8_t)(p->sig >> 16);
		fis[6] = (uint8_t)(p->sig >> 24);
		gmem_write(&p->s->vm->mem, fb64(p) + 0x40, fis, 20);
	}
}

static void ahci_port_reset(struct ahci_port *p, bool full)
{
	ahci_port_stop(p);
	if (full) {
		p->clb = p->clbu = p->fb = p->fbu = 0;
		p->ie = 0;
		p->cmd = AHCI_PxCMD_SUD | AHCI_PxCMD_POD;
		p->sctl = 0;
	}
	p->is = 0;
	p->serr = 0;
	scsi_dev_reset(&p->sd);
	ahci_port_signature(p);
}

static void ahci_hba_reset(struct ahci *s)
{
	s->ghc = 0;
	s->is = 0;
	for (unsigned i = 0; i < AHCI_NPORTS; i++)
		ahci_port_reset(&s->ports[i], true);
	ahci_update_irq(s);
}

/* ---- registers ---- */

static uint32_t ahci_port_read(struct ahci_port *p, unsigned reg)
{
	switch (reg) {
	case AHCI_PxCLB: return p->clb;
	case AHCI_PxCLBU: return p->clbu;
	case AHCI_PxFB: return p->fb;
	case AHCI_PxFBU: return p->fbu;
	case AHCI_PxIS: return p->is;
	case AHCI_PxIE: return p->ie;
	case AHCI_PxCMD: return p->cmd;
	case AHCI_PxTFD: return p->tfd;
	case AHCI_PxSIG: return p->sig;
	case AHCI_PxSSTS: return (p->sctl & 0xF) == 1 ? 0 : p->ssts;
	case AHCI_PxSCTL: return p->sctl;
	case AHCI_PxSERR: return p->serr;
	case AHCI_PxSACT: return p->sact;
	case AHCI_PxCI: return p->ci;
	default: return 0;
	}
}

static void ahci_port_write(struct ahci_port *p, unsigned reg, uint32_t v)
{
	switch (reg) {
	case AHCI_PxCLB: p->clb = v & ~0x3FFu; break;
	case AHCI_PxCLBU: p->clbu = v; break;
	case AHCI_PxFB: p->fb = v & ~0xFFu; break;
	case AHCI_PxFBU: p->fbu = v; break;
	case AHCI_PxIS: p->is &= ~v; break;
	case AHCI_PxIE: p->ie = v & 0xFDC000FFu; break;
	case AHCI_PxCMD: {
		uint32_t old = p->cmd;
		p->cmd = (old & (AHCI_PxCMD_CR | AHCI_PxCMD_FR)) |
		         (v & (AHCI_PxCMD_ST | AHCI_PxCMD_SUD | AHCI_PxCMD_POD | AHCI_PxCMD_FRE));
		/* ICC (31:28) is a request that completes at once: it reads back as 0. */
		if (v & AHCI_PxCMD_CLO)
			p->tfd &= ~(uint32_t)(ATA_BSY | ATA_DRQ);
		if (p->cmd & AHCI_PxCMD_FRE)
			p->cmd |= AHCI_PxCMD_FR;
		else
			p->cmd &= ~AHCI_PxCMD_FR;
		if ((old & AHCI_PxCMD_ST) && !(p->cmd & AHCI_PxCMD_ST))
			ahci_port_stop(p);
		else if (p->cmd & AHCI_PxCMD_ST)
			p->cmd |= AHCI_PxCMD_CR;
		if (!(old & AHCI_PxCMD_FRE) && (p->cmd & AHCI_PxCMD_FRE) && p->kind != AHCI_NONE &&
		    fb64(p) != 0) {
			/* The first FIS the device sent after reset reaches memory now. */
			ahci_port_signature(p);
		}
		break;
	}
	case AHCI_PxSCTL: {
		uint32_t old = p->sctl;
		p->sctl = v & 0xFFF;
		if ((old & 0xF) == 1 && (v & 0xF) != 1)
			ahci_port_reset(p, false);      /* COMRESET done: signature again */
		else if ((v & 0xF) == 1)
			ahci_port_stop(p);
		break;
	}
	case AHCI_PxSERR: p->serr &= ~v; break;
	case AHCI_PxSACT:
		if (p->cmd & AHCI_PxCMD_ST)
			p->sact |= v;
		break;
	case AHCI_PxCI:
		if (p->cmd & AHCI_PxCMD_ST) {
			p->ci |= v;
			ahci_kick(p);
		}
		break;
	default:
		break;
	}
}

static uint64_t ahci_mmio_read(void *opaque, uint64_t off, unsigned size)
{
	struct ahci *s = opaque;
	uint32_t v = 0;

	vmx_mutex_lock(&s->lock);
	switch (off) {
	case AHCI_CAP:
		/* 64-bit, NCQ, CLO, gen 1, AHCI only, 32 slots, 6 ports */
		v = 0x80000000u | 1u << 30 | 1u << 24 | 1u << 20 | 1u << 18 | 31u << 8 |
		    (AHCI_NPORTS - 1);
		break;
	case AHCI_GHC: v = AHCI_GHC_AE | (s->ghc & AHCI_GHC_IE); break;
	case AHCI_IS: v = s->is; break;
	case AHCI_PI: v = (1u << AHCI_NPORTS) - 1; break;
	case AHCI_VS: v = 0x00010000; break;
	default:
		if (off >= AHCI_PORT(0) && off < AHCI_PORT(AHCI_NPORTS))
			v = ahci_port_read(&s->ports[(off - AHCI_PORT(0)) / 0x80],
			                   (unsigned)(off - AHCI_PORT(0)) % 0x80);
		break;
	}
	vmx_mutex_unlock(&s->lock);
	return v;
}

static void ahci_mmio_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct ahci *s = opaque;
	uint32_t v = (uint32_t)val;

	vmx_mutex_lock(&s->lock);
	switch (off) {
	case AHCI_GHC:
		if (v & AHCI_GHC_HR)
			ahci_hba_reset(s);
		else
			s->ghc = v & AHCI_GHC_IE;
		break;
	case AHCI_IS:
		s->is &= ~v;
		break;
	default:
		if (off >= AHCI_PORT(0) && off < AHCI_PORT(AHCI_NPORTS))
			ahci_port_write(&s->ports[(off - AHCI_PORT(0)) / 0x80],
			                (unsigned)(off - AHCI_PORT(0)) % 0x80, v);
		break;
	}
	ahci_update_irq(s);
	vmx_mutex_unlock(&s->lock);
}

static const struct iobus_ops ahci_mmio_ops = {
	.read = ahci_mmio_read, .write = ahci_mmio_write, .widths = IOBUS_W4,
};

/* ---- media change: API and VMDB request/media = "sata0:N eject" | "sata0:N insert PATH" ---- */

int ahci_media_change(struct ahci *s, unsigned port, const char *path, char *err, size_t errlen)
{
	char name[16];

	if (port >= AHCI_NPORTS || s->ports[port].kind != AHCI_ATAPI) {
		snprintf(err, errlen, "sata0:%u is not a CD-ROM", port);
		return -1;
	}
	snprintf(name, sizeof(name), "sata0:%u", port);
	return scsi_media_change(s->vm, &s->lock, &s->ports[port].sd, name, path, err, errlen);
}

static void ahci_media_request(void *opaque, const char *rel, const char *value)
{
	struct ahci *s = opaque;
	const char *path;
	unsigned unit;
	char err[512];
	int r = scsi_media_request_parse(value, "sata0", &unit, &path);

	if (r < 0)
		vlog_warn("ahci: request/media \"%s\": expected \"sata0:N eject\" or \"sata0:N insert PATH\"",
		          value);
	else if (r == 0 && ahci_media_change(s, unit, path, err, sizeof(err)) != 0)
		vlog_warn("ahci: request/media \"%s\": %s", value, err);
}

/* ---- vdev ---- */

static bool ahci_present(struct vmx_vm *vm)
{
	return scsi_cfg_present(vm, "sata0.present");
}

static void ahci_free(struct ahci *s)
{
	if (s->pool)
		dio_pool_free(s->pool);
	for (unsigned i = 0; i < AHCI_NPORTS; i++)
		scsi_dev_set_media(&s->ports[i].sd, NULL);
	vmx_mutex_destroy(&s->lock);
	free(s);
}

static int ahci_init(struct vdev *dev, char *err, size_t errlen)
{
	struct ahci *s = calloc(1, sizeof(*s));
	unsigned ndev = 0;

	if (!s) {
		snprintf(err, errlen, "ahci: out of memory");
		return -1;
	}
	s->vm = dev->vm;
	vmx_mutex_init(&s->lock, VMX_RANK_DEVICE, "ahci");
	for (unsigned i = 0; i < AHCI_NPORTS; i++) {
		struct ahci_port *p = &s->ports[i];
		char prefix[32], serial[24];
		enum scsi_cfg_type t;
		struct scsi_media *m;

		p->s = s;
		p->idx = i;
		for (unsigned k = 0; k < AHCI_SLOTS; k++) {
			p->slots[k].port = p;
			p->slots[k].idx = k;
		}
		snprintf(prefix, sizeof(prefix), "sata0:%u", i);
		if (scsi_cfg_unit(s->vm, prefix, &t, &m, err, errlen) != 0) {
			ahci_free(s);
			return -1;
		}
		snprintf(serial, sizeof(serial), "%02uVIREO0000000000", i);
		p->kind = t == SCSI_CFG_DISK ? AHCI_DISK : t == SCSI_CFG_CDROM ? AHCI_ATAPI : AHCI_NONE;
		scsi_dev_init(&p->sd, p->kind == AHCI_ATAPI ? SCSI_CDROM : SCSI_DISK,
		              p->kind == AHCI_ATAPI ? "VMware SATA CD00" : "Virtual SATA", serial);
		if (m) {
			scsi_dev_set_media(&p->sd, m);
			p->sd.unit_attention = false;
			p->sd.media_event = 0;
		}
		if (p->kind != AHCI_NONE) {
			ndev++;
			vlog_info("ahci: sata0:%u: %s%s%s", i, p->kind == AHCI_ATAPI ? "CD-ROM" : "disk",
			          m ? " " : " (no medium)", m ? m->path : "");
		}
	}
	s->pool = dio_pool_new(0);
	if (!s->pool) {
		snprintf(err, errlen, "ahci: cannot start the disk I/O threads");
		ahci_free(s);
		return -1;
	}
	s->pci = (struct pci_dev){
		.name = "ahci", .vendor_id = 0x8086, .device_id = 0x2922, .revision = 0x02,
		.subsys_vendor_id = 0x15AD, .subsys_id = 0x2922,
		.class_code = 0x010601, .irq_pin = 1, .opaque = s,
	};
	s->pci.bars[5] = (struct pci_bar){ .size = AHCI_BAR_SIZE, .ops = &ahci_mmio_ops, .opaque = s };
	if (pci_register(s->vm, &s->pci, AHCI_PCI_SLOT, 0, err, errlen) != 0) {
		ahci_free(s);
		return -1;
	}
	vmx_mutex_lock(&s->lock);
	ahci_hba_reset(s);
	vmx_mutex_unlock(&s->lock);
	vlog_info("ahci: ICH9 AHCI at 00:%02x.0, %u device(s)", AHCI_PCI_SLOT, ndev);
	dev->priv = s;
	return 0;
}

static void ahci_reset(struct vdev *dev)
{
	struct ahci *s = dev->priv;

	vmx_mutex_lock(&s->lock);
	ahci_hba_reset(s);
	vmx_mutex_unlock(&s->lock);
}

static void ahci_destroy(struct vdev *dev)
{
	struct ahci *s = dev->priv;

	if (!s)
		return;
	/* Finish the transfers first: their completions take the lock and touch the slots. */
	dio_pool_free(s->pool);
	s->pool = NULL;
	pci_unregister(&s->pci);
	ahci_free(s);
	dev->priv = NULL;
}

static int ahci_start(struct vdev *dev, char *err, size_t errlen)
{
	struct ahci *s = dev->priv;

	if (dev->vm->link && vmx_link_watch(dev->vm->link, "request/media", ahci_media_request, s) != 0)
		vlog_warn("ahci: cannot watch request/media: CD-ROM media changes over VMDB are off");
	return 0;
}

void ahci_drain(struct ahci *s)
{
	dio_pool_drain(s->pool);
}

static const struct vdev_class ahci_class = {
	.name = "ahci",
	.order = 50,
	.present = ahci_present,
	.init = ahci_init,
	.reset = ahci_reset,
	.destroy = ahci_destroy,
	.start = ahci_start,
};

VDEV_REGISTER(ahci_class)

/*
 * scsi.c — the SCSI disk / MMC CD-ROM target (see scsi.h).
 *
 * Allocation lengths in CDBs are honoured by truncating the answer, so the
 * transport never moves more than the guest asked for; every CDB field the
 * guest sets is range-checked before it becomes an offset.
 */
#include "scsi.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmx/config.h"
#include "vmx/disk/vdisk.h"
#include "vmx/lock.h"
#include "vmx/log.h"
#include "vmx/mem.h"
#include "vmx/vm.h"

/* ---- media ---- */

struct scsi_media *scsi_media_open(const char *path, bool cdrom, bool read_only,
                                   char *err, size_t errlen)
{
	struct scsi_media *m = calloc(1, sizeof(*m));
	unsigned flags = 0;
	int rc;

	if (!m) {
		snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	if (cdrom || read_only)
		flags |= VDISK_OPEN_RDONLY;
	/* Only a user who asked for read-only gets a corrupt image at all. */
	if (read_only)
		flags |= VDISK_OPEN_RO_IF_CORRUPT;
	rc = vdisk_open(&m->disk, path, VDISK_FMT_AUTO, flags, err, errlen);
	if (rc != 0) {
		free(m);
		return NULL;
	}
	m->refs = 1;
	m->read_only = vdisk_read_only(m->disk);
	snprintf(m->path, sizeof(m->path), "%s", path);
	return m;
}

struct scsi_media *scsi_media_get(struct scsi_media *m)
{
	if (m)
		__atomic_add_fetch(&m->refs, 1, __ATOMIC_ACQ_REL);
	return m;
}

void scsi_media_put(struct scsi_media *m)
{
	if (!m || __atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	if (vdisk_close(m->disk) != 0)
		vlog_warn("storage: %s: flush on close failed", m->path);
	free(m);
}

/* ---- helpers ---- */

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint64_t be64(const uint8_t *p) { return (uint64_t)be32(p) << 32 | be32(p + 4); }
static void put16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put32(uint8_t *p, uint32_t v)
{
	put16(p, v >> 16);
	put16(p + 2, v);
}
static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)(v >> 32));
	put32(p + 4, (uint32_t)v);
}

static void pad_copy(uint8_t *dst, const char *src, size_t n)
{
	size_t l = strlen(src);
	memset(dst, ' ', n);
	memcpy(dst, src, l < n ? l : n);
}

void scsi_dev_init(struct scsi_dev *d, enum scsi_kind kind, const char *product,
                   const char *serial)
{
	memset(d, 0, sizeof(*d));
	d->kind = kind;
	d->block_size = kind == SCSI_CDROM ? 2048 : 512;
	snprintf(d->product, sizeof(d->product), "%s", product);
	snprintf(d->serial, sizeof(d->serial), "%s", serial);
}

void scsi_dev_set_media(struct scsi_dev *d, struct scsi_media *m)
{
	struct scsi_media *old = d->media;

	d->media = m;
	d->nblocks = m ? vdisk_capacity(m->disk) / d->block_size : 0;
	if (d->kind == SCSI_CDROM) {
		d->tray_open = false;
		if (m) {
			d->media_event = 2;      /* new media */
			d->unit_attention = true;
		} else if (old) {
			d->media_event = 3;      /* media removal */
		}
	}
	scsi_media_put(old);
}

void scsi_dev_reset(struct scsi_dev *d)
{
	d->sense_key = d->asc = d->ascq = 0;
	d->locked = false;
}

void scsi_check(struct scsi_dev *d, struct scsi_req *r, uint8_t key, uint8_t asc, uint8_t ascq)
{
	r->status = SCSI_STATUS_CHECK;
	r->xfer = SCSI_XFER_NONE;
	r->len = 0;
	memset(r->sense, 0, sizeof(r->sense));
	r->sense[0] = 0x70;          /* current error, fixed format */
	r->sense[2] = key;
	r->sense[7] = SCSI_SENSE_LEN - 8;
	r->sense[12] = asc;
	r->sense[13] = ascq;
	d->sense_key = key;
	d->asc = asc;
	d->ascq = ascq;
}

static void answer(struct scsi_req *r, size_t len, size_t alloc)
{
	r->xfer = SCSI_XFER_IN;
	r->len = len < alloc ? len : alloc;
}

static bool media_ready(struct scsi_dev *d, struct scsi_req *r)
{
	if (d->media && !d->tray_open)
		return true;
	scsi_check(d, r, SCSI_SENSE_NOT_READY, 0x3A, d->tray_open ? 0x02 : 0x01);
	return false;
}

/* ---- commands ---- */

static void cmd_inquiry(struct scsi_dev *d, const uint8_t *cdb, unsigned lun, struct scsi_req *r)
{
	uint8_t *b = r->buf;
	size_t alloc = be16(cdb + 3);
	uint8_t type = d->kind == SCSI_CDROM ? 0x05 : 0x00;

	memset(b, 0, 256);
	if (lun != 0)
		type = 0x7F;             /* no logical unit here */
	if (cdb[1] & 1) {            /* vital product data */
		b[0] = type;
		b[1] = cdb[2];
		switch (cdb[2]) {
		case 0x00:
			b[3] = 3;
			b[4] = 0x00;
			b[5] = 0x80;
			b[6] = 0x83;
			answer(r, 7, alloc);
			return;
		case 0x80: {
			size_t l = strlen(d->serial);
			b[3] = (uint8_t)l;
			memcpy(b + 4, d->serial, l);
			answer(r, 4 + l, alloc);
			return;
		}
		case 0x83: {
			/* One T10 vendor ID designator: vendor + serial. */
			size_t l = strlen(d->serial);
			b[4] = 0x02;     /* ASCII */
			b[5] = 0x01;     /* T10 vendor ID, LU association */
			b[7] = (uint8_t)(8 + l);
			pad_copy(b + 8, "VMware", 8);
			memcpy(b + 16, d->serial, l);
			b[3] = (uint8_t)(4 + 8 + l);
			answer(r, 8 + 8 + l, alloc);
			return;
		}
		default:
			scsi_check(d, r, SCSI_SENSE_ILLEGAL_REQUEST, 0x24, 0);
			return;
		}
	}
	if (cdb[2] != 0) {
		scsi_check(d, r, SCSI_SENSE_ILLEGAL_REQUEST, 0x24, 0);
		return;
	}
	b[0] = type;
	b[1] = d->kind == SCSI_CDROM ? 0x80 : 0x00;   /* removable */
	b[2] = 0x05;                 /* SPC-3 */
	b[3] = 0x02;                 /* response data format 2 */
	b[4] = 36 - 5;
	b[7] = 0x02;                 /* command queueing */
	pad_copy(b + 8, d->kind == SCSI_CDROM ? "NECVMWar" : "VMware", 8);
	pad_copy(b + 16, d->product, 16);
	pad_copy(b + 32, "1.0", 4);
	answer(r, 36, alloc);
}

static void cmd_request_sense(struct scsi_dev *d, const uint8_t *cdb, struct scsi_req *r)
{
	uint8_t *b = r->buf;

	memset(b, 0, SCSI_SENSE_LEN);
	b[0] = 0x70;
	b[2] = d->sense_key;
	b[7] = SCSI_SENSE_LEN - 8;
	b[12] = d->asc;
	b[13] = d->ascq;
	d->sense_key = d->asc = d->ascq = 0;
	answer(r, SCSI_SENSE_LEN, cdb[4]);
}

static void cmd_read_capacity(struct scsi_dev *d, const uint8_t *cdb, bool sixteen,
                              struct scsi_req *r)
{
	uint8_t *b = r->buf;
	uint64_t last;

	if (!media_ready(d, r))
		return;
	last = d->nblocks ? d->nblocks - 1 : 0;
	memset(b, 0, 32);
	if (!sixteen) {
		put32(b, last > 0xFFFFFFFFull ? 0xFFFFFFFFu : (uint32_t)last);
		put32(b + 4, d->block_size);
		answer(r, 8, 8);
		return;
	}
	put64(b, last);
	put32(b + 8, d->block_size);
	answer(r, 32, be32(cdb + 10));
}

/* READ/WRITE(6/10/12/16): LBA and count from the CDB, checked against the medium. */
static void cmd_rw(struct scsi_dev *d, const uint8_t *cdb, size_t cdb_len, bool write,
                   struct scsi_req *r)
{
	uint64_t lba, count;
	size_t need;

	switch (cdb[0] >> 5) {
	case 0: need = 6; break;
	case 1: case 2: need = 10; break;
	case 4: need = 16; break;
	default: need = 12; break;
	}
	if (cdb_len < need) {
		scsi_check(d, r, SCSI_SENSE_ILLEGAL_REQUEST, 0x20, 0);
		return;
	}
	switch (need) {
	case 6:
		lba = (uint64_t)(cdb[1] & 0x1F) << 16 | be16(cdb + 2);
		count = cdb[4] ? cdb[4] : 256;
		break;
	case 10:
		lba = be32(cdb + 2);
		count = be16(cdb + 7);
		break;
	case 12:
		lba = be32(cdb + 2);
		count = be32(cdb + 6);
		break;
	default:
		lba = be64(cdb + 2);
		count = be32(cdb + 10);
		break;
	}
	if (!media_ready(d, r))
		return;
	if (write && (d->kind == SCSI_CDROM || d->media->read_only)) {
		scsi_check(d, r, SCSI_SENSE_DATA_PROTECT, 0x27, 0);
		return;
	}
	if (lba > d->nblocks || count > d->nblocks - lba) {
		scsi_check(d, r, SCSI_SENSE_ILLEGAL_REQUEST, 0x21, 0);
		return;
	}
	if (count * d->block_size > SCSI_MAX_XFER) {
		scsi_check(d, r, SCSI_SENSE_ILLEGAL_REQUEST, 0x24, 0);
		return;
	}
	r->status = SCSI_STATUS_GOOD;
	if (count == 0) {
		r->xfer = SCSI_XFER_NONE;
		return;
	}
	r->xfer = write ? SCSI_XFER_WRITE : SCSI_XFER_READ;
	r->offset = lba * d->block_size;
	r->len = count * d->block_size;
	r->media = scsi_media_get(d->media);
}

/* Mode pages: caching (disk), capabilities 0x2A (CD-ROM). */
static size_t mode_pages(struct scsi_dev *d, unsigned page, uint8_t *p)
{
	size_t n = 0;

	if (d->kind == SCSI_DISK && (page == 0x08 || page == 0x3F)) {
		memset(p + n, 0, 20);
		p[n] = 0x08;
		p[n + 1] = 18;
		p[n + 2] = 0x04;         /* WCE: the guest must flush */
		n += 20;
	}
	if (d->kind == SCSI_DISK && (page == 0x0A || page == 0x3F)) {
		memset(p + n, 0, 12);
		p[n] = 0x0A;
		p[n + 1] = 10;
		n += 12;
	}
	if (d->kind == SCSI_CDROM && (page == 0x2A || page == 0x3F)) {
		memset(p + n, 0, 22);
		p[n] = 0x2A;
		p[n + 1] = 20;
		p[n + 2] = 0x3B;         /* reads CD-R, CD-RW, method 2, DVD-ROM, DVD-R */
		p[n + 4] = 0x71;         /* audio play, composite, digital ports, multisession */
		p[n + 5] = 0x01;         /* CD-DA */
		p[n + 6] = 0x29;         /* tray loader, eject, lock */
		put16(p + n + 8, 706);   /* 4x */
		put16(p + n + 10, 2);
		put16(p + n + 12, 512);
		put16(p + n + 14, 706);
		n += 22;
	}
	return n;
}

static void cmd_mode_sense(struct scsi_dev *d, const uint8_t *cdb, size_t cdb_len, bool ten,
                           struct scsi_req *r)
{
	uint8_t *b = r->buf;
	unsigned page = cdb[2] & 0x3F;
	bool dbd = (cdb[1] & 0x08) || d->kind == SCSI_CDROM;
	size_t hdr = ten ? 8 : 4, n = hdr, alloc;
	uint8_t devspec = (d->media && d->media->read_only) || d->kind == SCSI_CDROM ? 0x80 : 0;

	if (ten && cdb_len < 10) {
		scsi_check(d, r, SCSI_SENSE_ILLEGAL_REQUEST, 0x20, 0);
		return;
	}
	alloc = ten ? be16(cdb + 7) : cdb[4];
	if ((cdb[2] >> 6) == 3) {     /* saved values: not supported */
		scsi_check(d, r, SCSI_SENSE_ILLEGAL_REQUEST, 0x39, 0);
		return;
	}
	memset(b, 0, 128);
	if (!dbd) {
		uint64_t nb = d->nblocks > 0xFFFFFFu ? 0 : d->nblocks;
		put32(b + n, (uint32_t)nb);
		put32(b + n + 4, d->block_size & 0xFFFFFF);
		n += 8;
	}
	{
		size_t pl = mode_pages(d, page, b + n);
		if (pl == 0 && page != 0) {
			scsi_check(d, r, SCSI_SENSE_ILLEGAL_REQUEST, 0x24, 0);
			return;
		}
		n += pl;
	}
	if (ten) {
		put16(b, (uint32_t)(n - 2));
		b[3] = devspec;
		put16(b + 6, dbd ? 0 : 8);
	} else {
		b[0] = (uint8_t)(n - 1);
		b[2] = devspec;
		b[3] = dbd ? 0 : 8;
	}
	answer(r, n, alloc);
}

static void msf(uint8_t *p, uint64_t lba)
{
	lba += 150;
	p[0] = 0;
	p[1] = (uint8_t)(lba / (75 * 60));
	p[2] = (uint8_t)((lba / 75) % 60);
	p[3] = (uint8_t)(lba % 75);
}

static void toc_addr(uint8_t *p, uint64_t lba, bool use_msf)
{
	if (use_msf)
		msf(p, lba);
	else
		put32(p, (uint32_t)lba);
}

static void cmd_read_toc(struct scsi_dev *d, const uint8_t *cdb, size_t cdb_len,
                         struct scsi_req *r)
{
	uint8_t *b = r->buf;
	unsigned fmt = cdb[2] & 0x0F;
	bool use_msf = cdb[1] & 0x02;
	unsigned track = cdb[6];
	size_t n = 4;

	if (cdb_len < 10) {
		scsi_check(d, r, SCSI_SENSE_ILLEGAL_REQUEST, 0x20, 0);
		return;
	}
	if (!media_ready(d, r))
		return;
	if (fmt == 0)
		fmt = cdb[9] >> 6;       /* the older place for the format */
	memset(b, 0, 64);
	switch (fmt) {
	case 0:                      /* TOC: track 1 and the lead-out */
		if (track > 1 && track != 0xAA) {
			scsi_check(d, r, SCSI_SENSE_ILLEGAL_REQUEST, 0x24, 0);
			return;
		}
		b[2] = 1;
		b[3] = 1;
		if (track <= 1) {
			b[n + 1] = 0x14;     /* ADR 1, data track */
			b[n + 2] = 1;
			toc_addr(b + n + 4, 0, use_msf);
			n += 8;
		}
		b[n + 1] = 0x14;
		b[n + 2] = 0xAA;
		toc_addr(b + n + 4, d->nblocks, use_msf);
		n += 8;
		break;
	case 1:                      /* session info: one session at track 1 */
		b[2] = 1;
		b[3] = 1;
		b[n + 1] = 0x14;
		b[n + 2] = 1;
		toc_addr(b + n + 4, 0, use_msf);
		n += 8;
		break;
	case 2: {                    /* raw TOC: points A0, A1, A2 and track 1 */
		static const uint8_t points[4] = { 0xA0, 0xA1, 0xA2, 0x01 };
		b[2] = 1;
		b[3] = 1;
		for (unsigned i = 0; i < 4; i++, n += 11) {
			uint8_t *q = b + n;
			q[0] = 1;
			q[1] = 0x14;
			q[3] = points[i];
			if (points[i] == 0xA0 || points[i] == 0xA1) {
				q[8] = 1;        /* first / last track number */
			} else {
				msf(q + 7, points[i] == 0xA2 ? d->nblocks : 0);
			}
		}
		break;
	}
	default:
		scsi_check(d, r, SCSI_SENSE_ILLEGAL_REQUEST, 0x24, 0);
		return;
	}
	put16(b, (uint32_t)(n - 2));
	answer(r, n, be16(cdb + 7));
}

static size_t feature(uint8_t *p, unsigned code, uint8_t flags, const uint8_t *data, size_t len)
{
	put16(p, code);
	p[2] = flags;
	p[3] = (uint8_t)len;
	memcpy(p + 4, data, len);
	return 4 + len;
}

static void cmd_get_configuration(struct scsi_dev *d, const uint8_t *cdb, size_t cdb_len,
                                  struct scsi_req *r)
{
	uint8_t *b = r->buf;
	unsigned rt = cdb[1] & 3, start = be16(cdb + 2);
	bool dvd = d->media && d->nblocks > 400000;   /* larger than a CD holds */
	unsigned cur = !d->media || d->tray_open ? 0 : dvd ? 0x0010 : 0x0008;
	size_t n = 8;
	uint8_t f[8];

	if (cdb_len < 10) {
		scsi_check(d, r, SCSI_SENSE_ILLEGAL_REQUEST, 0x20, 0);
		return;
	}
	memset(b, 0, 128);
	put16(b + 6, cur);
	/* 0x0000: profile list (DVD-ROM, CD-ROM), current flag on the loaded one. */
	if (start <= 0x0000 && (rt != 2 || start == 0)) {
		memset(f, 0, sizeof(f));
		put16(f, 0x0010);
		f[2] = cur == 0x0010;
		put16(f + 4, 0x0008);
		f[6] = cur == 0x0008;
		n += feature(b + n, 0x0000, 0x03, f, 8);
	}
	/* 0x0001: core, ATAPI interface. */
	if (start <= 0x0001 && (rt != 2 || start == 1)) {
		memset(f, 0, sizeof(f));
		put32(f, 2);
		n += feature(b + n, 0x0001, 0x07, f, 4);
	}
	/* 0x0003: removable medium, tray, eject, lock. */
	if (start <= 0x0003 && (rt != 2 || start == 3)) {
		memset(f, 0, sizeof(f));
		f[0] = 0x29;
		n += feature(b + n, 0x0003, 0x03, f, 4);
	}
	put32(b, (uint32_t)(n - 4));
	answer(r, n, be16(cdb + 7));
}

static void cmd_get_event_status(struct scsi_dev *d, const uint8_t *cdb, size_t cdb_len,
                                 struct scsi_req *r)
{
	uint8_t *b = r->buf;

	if (cdb_len < 10 || !(cdb[1] & 1)) {     /* asynchronous mode is not offered */
		scsi_check(d, r, SCSI_SENSE_ILLEGAL_REQUEST, 0x24, 0);
		return;
	}
	memset(b, 0, 8);
	b[3] = 0x10;                 /* media class supported */
	if (cdb[4] & 0x10) {
		put16(b, 6);
		b[2] = 0x04;
		b[4] = d->media_event;
		b[5] = (uint8_t)((d->tray_open ? 1 : 0) | (d->media && !d->tray_open ? 2 : 0));
		d->media_event = 0;
		answer(r, 8, be16(cdb + 7));
	} else {
		put16(b, 2);
		b[2] = 0x80;             /* no event available */
		answer(r, 4, be16(cdb + 7));
	}
}

static void cmd_read_disc_info(struct scsi_dev *d, const uint8_t *cdb, size_t cdb_len,
                               struct scsi_req *r)
{
	uint8_t *b = r->buf;

	if (cdb_len < 10) {
		scsi_check(d, r, SCSI_SENSE_ILLEGAL_REQUEST, 0x20, 0);
		return;
	}
	if (!media_ready(d, r))
		return;
	if (cdb[1] & 7) {            /* only standard disc information */
		scsi_check(d, r, SCSI_SENSE_ILLEGAL_REQUEST, 0x24, 0);
		return;
	}
	memset(b, 0, 34);
	put16(b, 32);
	b[2] = 0x0E;                 /* complete disc, last session complete */
	b[3] = 1;
	b[4] = 1;
	b[5] = 1;
	b[6] = 1;
	answer(r, 34, be16(cdb + 7));
}

static void cmd_start_stop(struct scsi_dev *d, const uint8_t *cdb, struct scsi_req *r)
{
	bool start = cdb[4] & 1, loej = cdb[4] & 2;

	r->status = SCSI_STATUS_GOOD;
	if (d->kind != SCSI_CDROM || !loej)
		return;
	if (!start) {
		if (d->locked) {
			scsi_check(d, r, SCSI_SENSE_ILLEGAL_REQUEST, 0x53, 0x02);
			return;
		}
		if (!d->tray_open) {
			d->tray_open = true;
			if (d->media)
				d->media_event = 3;
		}
	} else if (d->tray_open) {
		d->tray_open = false;
		if (d->media) {
			d->media_event = 2;
			d->unit_attention = true;
		}
	}
}

static void cmd_report_luns(struct scsi_dev *d, const uint8_t *cdb, size_t cdb_len,
                            struct scsi_req *r)
{
	if (cdb_len < 12) {
		scsi_check(d, r, SCSI_SENSE_ILLEGAL_REQUEST, 0x20, 0);
		return;
	}
	memset(r->buf, 0, 16);
	put32(r->buf, 8);            /* one LUN: 0 */
	answer(r, 16, be32(cdb + 6));
}

void scsi_exec(struct scsi_dev *d, const uint8_t *cdb, size_t cdb_len, unsigned lun,
               struct scsi_req *r)
{
	uint8_t op;

	memset(r, 0, offsetof(struct scsi_req, buf));
	r->status = SCSI_STATUS_GOOD;
	if (cdb_len < 6 || cdb_len > 16) {
		scsi_check(d, r, SCSI_SENSE_ILLEGAL_REQUEST, 0x20, 0);
		return;
	}
	op = cdb[0];
	if (op == 0x12) {
		cmd_inquiry(d, cdb, lun, r);
		return;
	}
	if (op == 0xA0) {
		cmd_report_luns(d, cdb, cdb_len, r);
		return;
	}
	if (lun != 0) {
		scsi_check(d, r, SCSI_SENSE_ILLEGAL_REQUEST, 0x25, 0);
		return;
	}
	if (op == 0x03) {
		cmd_request_sense(d, cdb, r);
		return;
	}
	/* A changed medium is announced once to every other command, as drives do. */
	if (d->unit_attention && op != 0x4A) {
		d->unit_attention = false;
		scsi_check(d, r, SCSI_SENSE_UNIT_ATTENTION, 0x28, 0);
		return;
	}
	switch (op) {
	case 0x00:                   /* TEST UNIT READY */
		if (d->kind == SCSI_CDROM)
			media_ready(d, r);
		return;
	case 0x25:
		cmd_read_capacity(d, cdb, false, r);
		return;
	case 0x9E:                   /* SERVICE ACTION IN(16) */
		if ((cdb[1] & 0x1F) == 0x10 && cdb_len >= 16)
			cmd_read_capacity(d, cdb, true, r);
		else
			scsi_check(d, r, SCSI_SENSE_ILLEGAL_REQUEST, 0x20, 0);
		return;
	case 0x08: case 0x28: case 0xA8: case 0x88:
		if (d->kind == SCSI_CDROM && (op == 0x08 || op == 0x88)) {
			scsi_check(d, r, SCSI_SENSE_ILLEGAL_REQUEST, 0x20, 0);
			return;
		}
		cmd_rw(d, cdb, cdb_len, false, r);
		return;
	case 0x0A: case 0x2A: case 0xAA: case 0x8A:
		cmd_rw(d, cdb, cdb_len, true, r);
		return;
	case 0x35: case 0x91:        /* SYNCHRONIZE CACHE(10/16) */
		if (!media_ready(d, r))
			return;
		if (d->kind == SCSI_DISK && !d->media->read_only) {
			r->xfer = SCSI_XFER_FLUSH;
			r->media = scsi_media_get(d->media);
		}
		return;
	case 0x2F: case 0x2B:        /* VERIFY(10), SEEK(10) */
		media_ready(d, r);
		return;
	case 0x1A:
		cmd_mode_sense(d, cdb, cdb_len, false, r);
		return;
	case 0x5A:
		cmd_mode_sense(d, cdb, cdb_len, true, r);
		return;
	case 0x1B:
		cmd_start_stop(d, cdb, r);
		return;
	case 0x1E:                   /* PREVENT ALLOW MEDIUM REMOVAL */
		if (d->kind == SCSI_CDROM)
			d->locked = cdb[4] & 1;
		return;
	}
	if (d->kind == SCSI_CDROM) {
		switch (op) {
		case 0x43:
			cmd_read_toc(d, cdb, cdb_len, r);
			return;
		case 0x46:
			cmd_get_configuration(d, cdb, cdb_len, r);
			return;
		case 0x4A:
			cmd_get_event_status(d, cdb, cdb_len, r);
			return;
		case 0x51:
			cmd_read_disc_info(d, cdb, cdb_len, r);
			return;
		case 0xBB:               /* SET CD SPEED */
			return;
		}
	}
	scsi_check(d, r, SCSI_SENSE_ILLEGAL_REQUEST, 0x20, 0);
}

void scsi_complete(struct scsi_dev *d, struct scsi_req *r, int ret)
{
	scsi_media_put(r->media);
	r->media = NULL;
	if (ret == 0)
		return;
	if (ret == -EROFS)
		scsi_check(d, r, SCSI_SENSE_DATA_PROTECT, 0x27, 0);
	else if (r->xfer == SCSI_XFER_WRITE || r->xfer == SCSI_XFER_FLUSH)
		scsi_check(d, r, SCSI_SENSE_MEDIUM_ERROR, 0x0C, 0);   /* write error */
	else
		scsi_check(d, r, SCSI_SENSE_MEDIUM_ERROR, 0x11, 0);   /* unrecovered read error */
}

/* ---- scatter/gather ---- */

#define SCSI_SG_MAX 65536

void scsi_sg_init(struct scsi_sg *sg)
{
	memset(sg, 0, sizeof(*sg));
}

void scsi_sg_free(struct scsi_sg *sg)
{
	free(sg->iov);
	memset(sg, 0, sizeof(*sg));
}

int scsi_sg_add(struct scsi_sg *sg, const struct gmem *mem, uint64_t gpa, uint64_t len)
{
	void *p;

	if (len == 0)
		return 0;
	p = gmem_ptr(mem, gpa, len);
	if (!p)
		return -1;
	if (sg->n > 0) {
		struct iovec *last = &sg->iov[sg->n - 1];
		if ((uint8_t *)last->iov_base + last->iov_len == p) {
			last->iov_len += len;
			sg->total += len;
			return 0;
		}
	}
	if (sg->n == sg->cap) {
		int cap = sg->cap ? sg->cap * 2 : 16;
		struct iovec *n;
		if (cap > SCSI_SG_MAX)
			return -1;
		n = realloc(sg->iov, (size_t)cap * sizeof(*n));
		if (!n)
			return -1;
		sg->iov = n;
		sg->cap = cap;
	}
	sg->iov[sg->n].iov_base = p;
	sg->iov[sg->n].iov_len = len;
	sg->n++;
	sg->total += len;
	return 0;
}

void scsi_sg_trim(struct scsi_sg *sg, uint64_t len)
{
	uint64_t acc = 0;

	for (int i = 0; i < sg->n; i++) {
		if (acc + sg->iov[i].iov_len >= len) {
			sg->iov[i].iov_len = len - acc;
			sg->n = sg->iov[i].iov_len ? i + 1 : i;
			sg->total = len;
			return;
		}
		acc += sg->iov[i].iov_len;
	}
}

uint64_t scsi_sg_copy_in(struct scsi_sg *sg, const void *buf, uint64_t len)
{
	uint64_t done = 0;

	for (int i = 0; i < sg->n && done < len; i++) {
		uint64_t l = sg->iov[i].iov_len;
		if (l > len - done)
			l = len - done;
		memcpy(sg->iov[i].iov_base, (const uint8_t *)buf + done, l);
		done += l;
	}
	return done;
}

/* ---- config ---- */

void scsi_cfg_path(struct vmx_vm *vm, const char *name, char *out, size_t outlen)
{
	if (name[0] == '/' || !vm->dir)
		snprintf(out, outlen, "%s", name);
	else
		snprintf(out, outlen, "%s/%s", vm->dir, name);
}

int scsi_media_change(struct vmx_vm *vm, struct vmx_mutex *lock, struct scsi_dev *d,
                      const char *unit_name, const char *path, char *err, size_t errlen)
{
	struct scsi_media *m = NULL;
	char full[4096] = "";

	if (path) {
		scsi_cfg_path(vm, path, full, sizeof(full));
		m = scsi_media_open(full, true, true, err, errlen);
		if (!m)
			return -1;
	}
	vmx_mutex_lock(lock);
	scsi_dev_set_media(d, m);
	vmx_mutex_unlock(lock);
	vlog_info("%s: %s%s", unit_name, m ? "inserted " : "medium removed", full);
	return 0;
}

int scsi_media_request_parse(const char *value, const char *bus, unsigned *unit,
                             const char **path)
{
	size_t bl = strlen(bus);
	char verb[16];
	int n = 0;

	if (!value || strncmp(value, bus, bl) != 0 || value[bl] != ':')
		return 1;
	if (sscanf(value + bl + 1, "%u %15s %n", unit, verb, &n) < 2)
		return -1;
	if (strcmp(verb, "eject") == 0) {
		*path = NULL;
		return 0;
	}
	if (strcmp(verb, "insert") == 0 && n > 0 && value[bl + 1 + (size_t)n]) {
		*path = value + bl + 1 + n;
		return 0;
	}
	return -1;
}

bool scsi_cfg_present(struct vmx_vm *vm, const char *key)
{
	char err[8];
	bool on = false;
	return vmxcfg_get_bool(vm->cfg, key, false, &on, err, sizeof(err)) == 0 && on;
}

int scsi_cfg_unit(struct vmx_vm *vm, const char *prefix, enum scsi_cfg_type *type,
                  struct scsi_media **media, char *err, size_t errlen)
{
	static const char *const types[] = { "disk", "plainDisk", "scsi-hardDisk", "ata-hardDisk",
	                                     "cdrom-image", "cdrom-raw", "atapi-cdrom", NULL };
	char key[96], path[4096];
	const char *dtype, *file;
	bool present, connected, ro;

	*type = SCSI_CFG_NONE;
	*media = NULL;
	snprintf(key, sizeof(key), "%s.present", prefix);
	if (vmxcfg_get_bool(vm->cfg, key, false, &present, err, errlen) != 0)
		return -1;
	if (!present)
		return 0;
	snprintf(key, sizeof(key), "%s.deviceType", prefix);
	if (vmxcfg_get_enum(vm->cfg, key, "disk", types, &dtype, err, errlen) != 0)
		return -1;
	snprintf(key, sizeof(key), "%s.startConnected", prefix);
	if (vmxcfg_get_bool(vm->cfg, key, true, &connected, err, errlen) != 0)
		return -1;
	snprintf(key, sizeof(key), "%s.readOnly", prefix);
	if (vmxcfg_get_bool(vm->cfg, key, false, &ro, err, errlen) != 0)
		return -1;
	snprintf(key, sizeof(key), "%s.fileName", prefix);
	file = vmxcfg_get(vm->cfg, key);
	if (strncasecmp(dtype, "cdrom", 5) == 0 || strcasecmp(dtype, "atapi-cdrom") == 0) {
		*type = SCSI_CFG_CDROM;
		if (!connected || !file || !*file || strcasecmp(file, "auto detect") == 0)
			return 0;
		scsi_cfg_path(vm, file, path, sizeof(path));
		*media = scsi_media_open(path, true, true, err, errlen);
		if (!*media) {
			size_t l = strlen(err);
			snprintf(err + l, errlen > l ? errlen - l : 0, " (%s)", key);
			return -1;
		}
		return 0;
	}
	if (!connected)
		return 0;
	if (!file || !*file) {
		snprintf(err, errlen, "%s: %s is missing (a disk needs an image file)",
		         vmxcfg_path(vm->cfg), key);
		return -1;
	}
	*type = SCSI_CFG_DISK;
	scsi_cfg_path(vm, file, path, sizeof(path));
	*media = scsi_media_open(path, false, ro, err, errlen);
	if (!*media) {
		size_t l = strlen(err);
		snprintf(err + l, errlen > l ? errlen - l : 0, " (%s)", key);
		return -1;
	}
	if (vdisk_capacity((*media)->disk) < 512) {
		snprintf(err, errlen, "%s: %s: the disk is smaller than one sector", vmxcfg_path(vm->cfg),
		         path);
		scsi_media_put(*media);
		*media = NULL;
		return -1;
	}
	return 0;
}

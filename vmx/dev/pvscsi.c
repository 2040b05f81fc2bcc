/*
 * pvscsi.c — VMware PVSCSI (pvscsi.h).
 *
 * The guest produces request descriptors and kicks; the vCPU that kicks
 * consumes the ring under the device lock, answers non-I/O commands at once
 * and hands reads, writes and flushes to dio.h workers.  Whoever finishes a
 * request (vCPU or worker) posts its completion descriptor, bumps
 * cmpProdIdx and raises INTx.  An adapter reset moves the generation on:
 * transfers still running then finish without touching the rings.
 *
 * Every ring index and page number comes from the guest: indices are masked
 * to the ring size we set, pages are checked by gmem_* at each use.
 */
#include "pvscsi.h"

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

#define PVSCSI_MAX_INFLIGHT  256
#define PVSCSI_SG_MAX_ELEMS  65536
#define PVSCSI_CMD_MAX_DWORDS 132

struct pvscsi_req {
	struct pvscsi *s;
	bool busy;
	unsigned gen;
	unsigned target;
	uint64_t context, sense_addr;
	uint32_t sense_len;
	struct scsi_req sreq;
	struct scsi_sg sg;
	struct dio_req dio;
};

struct pvscsi {
	struct vmx_vm *vm;
	struct pci_dev pci;
	struct vmx_mutex lock;
	struct dio_pool *pool;
	unsigned gen;

	/* command interface */
	uint32_t cmd, cmd_need, cmd_have;
	uint32_t cmd_data[PVSCSI_CMD_MAX_DWORDS];
	uint32_t cmd_status;
	uint32_t intr_status, intr_mask;

	/* rings */
	bool rings;
	uint64_t rs_gpa;
	uint64_t req_pages[PVSCSI_RINGS_MAX_PAGES], cmp_pages[PVSCSI_RINGS_MAX_PAGES];
	uint32_t req_entries, cmp_entries;
	bool msg;
	uint64_t msg_pages[PVSCSI_MSG_MAX_PAGES];
	uint32_t msg_entries;

	struct scsi_dev targets[PVSCSI_MAX_TARGETS];
	bool present[PVSCSI_MAX_TARGETS];
	struct pvscsi_req reqs[PVSCSI_MAX_INFLIGHT];
};

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }
static void wr16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void wr32(uint8_t *p, uint32_t v) { wr16(p, v); wr16(p + 2, v >> 16); }
static void wr64(uint8_t *p, uint64_t v) { wr32(p, (uint32_t)v); wr32(p + 4, (uint32_t)(v >> 32)); }

static void pvscsi_update_irq(struct pvscsi *s)
{
	pci_set_irq(&s->pci, (s->intr_status & s->intr_mask) != 0);
}

/* The rings-state fields, read and written atomically: the guest reads them concurrently. */
static uint32_t *rs_field(struct pvscsi *s, unsigned off)
{
	return gmem_ptr(&s->vm->mem, s->rs_gpa + off, 4);
}

static uint32_t rs_load(struct pvscsi *s, unsigned off)
{
	uint32_t *p = rs_field(s, off);
	return p ? __atomic_load_n(p, __ATOMIC_ACQUIRE) : 0;
}

static void rs_store(struct pvscsi *s, unsigned off, uint32_t v)
{
	uint32_t *p = rs_field(s, off);
	if (p)
		__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

static unsigned ilog2u(uint32_t v)
{
	unsigned l = 0;
	while (v > 1) {
		v >>= 1;
		l++;
	}
	return l;
}

/* ---- completion ---- */

static void pvscsi_post(struct pvscsi *s, uint64_t context, uint64_t data_len, uint32_t sense_len,
                        unsigned host_status, unsigned scsi_status)
{
	uint8_t d[PVSCSI_CMP_DESC_SIZE];
	uint32_t prod, idx;
	uint64_t gpa;

	if (!s->rings)
		return;
	memset(d, 0, sizeof(d));
	wr64(d + PVSCSI_CMP_CONTEXT, context);
	wr64(d + PVSCSI_CMP_DATA_LEN, data_len);
	wr32(d + PVSCSI_CMP_SENSE_LEN, sense_len);
	wr16(d + PVSCSI_CMP_HOST_STATUS, host_status);
	wr16(d + PVSCSI_CMP_SCSI_STATUS, scsi_status);
	prod = rs_load(s, PVSCSI_RS_CMP_PROD);
	idx = prod & (s->cmp_entries - 1);
	gpa = s->cmp_pages[idx / (4096 / PVSCSI_CMP_DESC_SIZE)] * 4096 +
	      (idx % (4096 / PVSCSI_CMP_DESC_SIZE)) * PVSCSI_CMP_DESC_SIZE;
	if (gmem_write(&s->vm->mem, gpa, d, sizeof(d)) != 0) {
		vlog_guest("pvscsi: completion ring page at 0x%llx is not RAM", (unsigned long long)gpa);
		return;
	}
	rs_store(s, PVSCSI_RS_CMP_PROD, prod + 1);
	s->intr_status |= 1;         /* PVSCSI_INTR_CMPL_0 */
	pvscsi_update_irq(s);
}

static void pvscsi_finish(struct pvscsi_req *pr, uint64_t data_len)
{
	struct pvscsi *s = pr->s;
	uint32_t sense_len = 0;

	if (pr->sreq.status == SCSI_STATUS_CHECK && pr->sense_addr && pr->sense_len) {
		sense_len = pr->sense_len < SCSI_SENSE_LEN ? pr->sense_len : SCSI_SENSE_LEN;
		if (gmem_write(&s->vm->mem, pr->sense_addr, pr->sreq.sense, sense_len) != 0) {
			vlog_guest("pvscsi: sense buffer at 0x%llx is not RAM",
			           (unsigned long long)pr->sense_addr);
			sense_len = 0;
		}
	}
	pvscsi_post(s, pr->context, pr->sreq.status == SCSI_STATUS_GOOD ? data_len : 0, sense_len,
	            PVSCSI_BTSTAT_SUCCESS, pr->sreq.status);
}

static void pvscsi_req_release(struct pvscsi_req *pr)
{
	scsi_sg_free(&pr->sg);
	if (pr->sreq.media) {
		scsi_media_put(pr->sreq.media);
		pr->sreq.media = NULL;
	}
	pr->busy = false;
}

static void pvscsi_process(struct pvscsi *s);

static void pvscsi_dio_done(struct dio_req *req, int ret)
{
	struct pvscsi_req *pr = req->opaque;
	struct pvscsi *s = pr->s;

	vmx_mutex_lock(&s->lock);
	scsi_complete(&s->targets[pr->target], &pr->sreq, ret);
	if (pr->gen == s->gen)
		pvscsi_finish(pr, ret ? 0 : pr->sg.total);
	pvscsi_req_release(pr);
	/* Requests may have waited for a free slot. */
	if (pr->gen == s->gen)
		pvscsi_process(s);
	vmx_mutex_unlock(&s->lock);
}

/* ---- requests ---- */

static int pvscsi_build_sg(struct pvscsi *s, struct pvscsi_req *pr, uint64_t addr, uint64_t len,
                           bool sgl)
{
	const struct gmem *mem = &s->vm->mem;
	unsigned walked = 0;

	if (!sgl)
		return scsi_sg_add(&pr->sg, mem, addr, len);
	while (len > 0) {
		uint8_t e[16];
		uint64_t ea;
		uint32_t el, ef;
		if (++walked > PVSCSI_SG_MAX_ELEMS || gmem_read(mem, addr, e, sizeof(e)) != 0)
			return -1;
		ea = rd64(e);
		el = rd32(e + 8);
		ef = rd32(e + 12);
		if (ef & PVSCSI_SGE_FLAG_CHAIN) {
			addr = ea;
			continue;
		}
		if (el > len)
			el = (uint32_t)len;
		if (scsi_sg_add(&pr->sg, mem, ea, el) != 0)
			return -1;
		len -= el;
		addr += sizeof(e);
	}
	return 0;
}

static void pvscsi_request(struct pvscsi *s, struct pvscsi_req *pr, const uint8_t *d)
{
	uint64_t data_addr = rd64(d + PVSCSI_REQ_DATA_ADDR);
	uint64_t data_len = rd64(d + PVSCSI_REQ_DATA_LEN);
	uint32_t flags = rd32(d + PVSCSI_REQ_FLAGS);
	unsigned cdb_len = d[PVSCSI_REQ_CDB_LEN];
	unsigned target = d[PVSCSI_REQ_TARGET], lun = d[PVSCSI_REQ_LUN + 1];
	struct scsi_req *r = &pr->sreq;
	struct scsi_dev *sd;

	pr->context = rd64(d + PVSCSI_REQ_CONTEXT);
	pr->sense_addr = rd64(d + PVSCSI_REQ_SENSE_ADDR);
	pr->sense_len = rd32(d + PVSCSI_REQ_SENSE_LEN);
	pr->gen = s->gen;
	scsi_sg_init(&pr->sg);
	r->media = NULL;
	if (d[PVSCSI_REQ_BUS] != 0 || target >= PVSCSI_MAX_TARGETS || !s->present[target]) {
		pvscsi_post(s, pr->context, 0, 0, PVSCSI_BTSTAT_SELTIMEO, 0);
		return;
	}
	if (cdb_len > 16 || cdb_len < 6 || data_len > SCSI_MAX_XFER + 4096ull) {
		vlog_guest("pvscsi: bad request (cdb length %u, data length %llu)", cdb_len,
		           (unsigned long long)data_len);
		pvscsi_post(s, pr->context, 0, 0, PVSCSI_BTSTAT_INVPARAM, 0);
		return;
	}
	pr->target = target;
	sd = &s->targets[target];
	scsi_exec(sd, d + PVSCSI_REQ_CDB, cdb_len, lun, r);
	if (r->xfer == SCSI_XFER_NONE || r->xfer == SCSI_XFER_FLUSH || data_len == 0 ||
	    (flags & PVSCSI_FLAG_CMD_DIR_NONE)) {
		if (r->xfer == SCSI_XFER_FLUSH) {
			pr->busy = true;
			pr->dio = (struct dio_req){ .op = DIO_FLUSH, .disk = r->media->disk,
			                            .done = pvscsi_dio_done, .opaque = pr };
			dio_submit(s->pool, &pr->dio);
			return;
		}
		if (r->xfer == SCSI_XFER_READ || r->xfer == SCSI_XFER_WRITE) {
			/* Blocks to move and no buffer to move them through. */
			scsi_complete(sd, r, 0);
			pvscsi_post(s, pr->context, 0, 0, PVSCSI_BTSTAT_DATARUN, 0);
			return;
		}
		pvscsi_finish(pr, 0);
		return;
	}
	if (pvscsi_build_sg(s, pr, data_addr, data_len, flags & PVSCSI_FLAG_CMD_WITH_SG_LIST) != 0) {
		vlog_guest("pvscsi: data buffer or s/g list outside RAM");
		scsi_complete(sd, r, 0);
		pvscsi_post(s, pr->context, 0, 0, PVSCSI_BTSTAT_INVPARAM, 0);
		return;
	}
	if (r->xfer == SCSI_XFER_IN) {
		pvscsi_finish(pr, scsi_sg_copy_in(&pr->sg, r->buf, r->len));
		scsi_sg_free(&pr->sg);
		return;
	}
	if (pr->sg.total < r->len) {
		scsi_complete(sd, r, 0);
		pvscsi_post(s, pr->context, 0, 0, PVSCSI_BTSTAT_DATARUN, 0);
		scsi_sg_free(&pr->sg);
		return;
	}
	scsi_sg_trim(&pr->sg, r->len);
	pr->busy = true;
	pr->dio = (struct dio_req){
		.op = r->xfer == SCSI_XFER_WRITE ? DIO_WRITE : DIO_READ, .disk = r->media->disk,
		.offset = r->offset, .iov = pr->sg.iov, .iovcnt = pr->sg.n,
		.done = pvscsi_dio_done, .opaque = pr,
	};
	dio_submit(s->pool, &pr->dio);
}

static struct pvscsi_req *pvscsi_alloc(struct pvscsi *s)
{
	for (unsigned i = 0; i < PVSCSI_MAX_INFLIGHT; i++)
		if (!s->reqs[i].busy)
			return &s->reqs[i];
	return NULL;
}

/* Consume the request ring (lock held). */
static void pvscsi_process(struct pvscsi *s)
{
	unsigned budget = s->req_entries;

	if (!s->rings)
		return;
	while (budget--) {
		uint32_t prod = rs_load(s, PVSCSI_RS_REQ_PROD), cons = rs_load(s, PVSCSI_RS_REQ_CONS);
		uint32_t idx;
		uint8_t d[PVSCSI_REQ_DESC_SIZE];
		uint64_t gpa;
		struct pvscsi_req *pr;

		if (prod == cons)
			return;
		if (prod - cons > s->req_entries) {
			vlog_guest("pvscsi: request ring indices out of range (prod %u cons %u)", prod, cons);
			return;
		}
		pr = pvscsi_alloc(s);
		if (!pr)
			return;              /* resumed by the next completion */
		idx = cons & (s->req_entries - 1);
		gpa = s->req_pages[idx / (4096 / PVSCSI_REQ_DESC_SIZE)] * 4096 +
		      (idx % (4096 / PVSCSI_REQ_DESC_SIZE)) * PVSCSI_REQ_DESC_SIZE;
		if (gmem_read(&s->vm->mem, gpa, d, sizeof(d)) != 0) {
			vlog_guest("pvscsi: request ring page at 0x%llx is not RAM",
			           (unsigned long long)gpa);
			return;
		}
		rs_store(s, PVSCSI_RS_REQ_CONS, cons + 1);
		pvscsi_request(s, pr, d);
		if (!pr->busy)
			pvscsi_req_release(pr);
	}
}

/* ---- commands ---- */

static void pvscsi_reset_adapter(struct pvscsi *s)
{
	s->gen++;
	s->rings = false;
	s->msg = false;
	s->intr_status = 0;
	s->intr_mask = 0;
	s->cmd_need = s->cmd_have = 0;
	for (unsigned i = 0; i < PVSCSI_MAX_TARGETS; i++)
		scsi_dev_reset(&s->targets[i]);
	pvscsi_update_irq(s);
}

static bool pvscsi_pages_ok(struct pvscsi *s, const uint64_t *ppn, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (ppn[i] > (UINT64_MAX >> 12) || !gmem_is_ram(&s->vm->mem, ppn[i] << 12, 4096))
			return false;
	return true;
}

static int pvscsi_setup_rings(struct pvscsi *s)
{
	const uint8_t *d = (const uint8_t *)s->cmd_data;
	uint32_t nreq = rd32(d), ncmp = rd32(d + 4);
	uint64_t rs = rd64(d + 8);
	uint64_t req[PVSCSI_RINGS_MAX_PAGES], cmp[PVSCSI_RINGS_MAX_PAGES];

	if (!nreq || !ncmp || nreq > PVSCSI_RINGS_MAX_PAGES || ncmp > PVSCSI_RINGS_MAX_PAGES ||
	    (nreq & (nreq - 1)) || (ncmp & (ncmp - 1)) || !pvscsi_pages_ok(s, &rs, 1)) {
		vlog_guest("pvscsi: SETUP_RINGS with bad sizes (%u, %u) or state page", nreq, ncmp);
		return -1;
	}
	for (unsigned i = 0; i < nreq; i++)
		req[i] = rd64(d + 16 + 8 * i);
	for (unsigned i = 0; i < ncmp; i++)
		cmp[i] = rd64(d + 16 + 8 * PVSCSI_RINGS_MAX_PAGES + 8 * i);
	if (!pvscsi_pages_ok(s, req, nreq) || !pvscsi_pages_ok(s, cmp, ncmp)) {
		vlog_guest("pvscsi: SETUP_RINGS names pages outside RAM");
		return -1;
	}
	s->rs_gpa = rs << 12;
	memcpy(s->req_pages, req, nreq * sizeof(req[0]));
	memcpy(s->cmp_pages, cmp, ncmp * sizeof(cmp[0]));
	s->req_entries = nreq * (4096 / PVSCSI_REQ_DESC_SIZE);
	s->cmp_entries = ncmp * (4096 / PVSCSI_CMP_DESC_SIZE);
	s->rings = true;
	s->msg = false;
	s->gen++;                    /* old requests must not post into the new rings */
	rs_store(s, PVSCSI_RS_REQ_PROD, 0);
	rs_store(s, PVSCSI_RS_REQ_CONS, 0);
	rs_store(s, PVSCSI_RS_REQ_LOG2, ilog2u(s->req_entries));
	rs_store(s, PVSCSI_RS_CMP_PROD, 0);
	rs_store(s, PVSCSI_RS_CMP_CONS, 0);
	rs_store(s, PVSCSI_RS_CMP_LOG2, ilog2u(s->cmp_entries));
	return 0;
}

static int pvscsi_setup_msg_ring(struct pvscsi *s)
{
	const uint8_t *d = (const uint8_t *)s->cmd_data;
	uint32_t n = rd32(d);
	uint64_t pages[PVSCSI_MSG_MAX_PAGES];

	if (!s->rings)
		return 0;                /* a no-op before SETUP_RINGS, as documented */
	if (!n || n > PVSCSI_MSG_MAX_PAGES || (n & (n - 1)))
		return -1;
	for (unsigned i = 0; i < n; i++)
		pages[i] = rd64(d + 8 + 8 * i);
	if (!pvscsi_pages_ok(s, pages, n))
		return -1;
	memcpy(s->msg_pages, pages, n * sizeof(pages[0]));
	s->msg_entries = n * (4096 / PVSCSI_MSG_DESC_SIZE);
	s->msg = true;
	rs_store(s, PVSCSI_RS_MSG_PROD, 0);
	rs_store(s, PVSCSI_RS_MSG_CONS, 0);
	rs_store(s, PVSCSI_RS_MSG_LOG2, ilog2u(s->msg_entries));
	return 0;
}

/*
 * PVSCSI_CMD_CONFIG {cmpAddr, configPageAddress, configPageNum}: the
 * controller page (number 0x1958 at address 0x2120 << 32) tells the driver
 * how many targets to scan; other pages are refused in the header at
 * cmpAddr (host status INVPARAM, CHECK CONDITION), as Linux expects.
 */
static void pvscsi_config(struct pvscsi *s)
{
	const uint8_t *d = (const uint8_t *)s->cmd_data;
	uint64_t cmp = rd64(d), addr = rd64(d + 8);
	uint32_t num = rd32(d + 16);
	bool controller = addr == 0x2120ull << 32 && num == 0x1958;
	uint8_t p[480];

	memset(p, 0, sizeof(p));
	if (controller) {
		wr32(p, num);                        /* header: page number */
		wr16(p + 4, sizeof(p) / 4);          /* dwords */
		wr32(p + 472, PVSCSI_MAX_TARGETS);   /* numPhys */
	} else {
		wr16(p + 6, PVSCSI_BTSTAT_INVPARAM);
		wr16(p + 8, 2);                      /* CHECK CONDITION */
	}
	if (gmem_write(&s->vm->mem, cmp, p, controller ? sizeof(p) : 16) != 0)
		vlog_guest("pvscsi: CONFIG page at 0x%llx is not RAM", (unsigned long long)cmp);
}

/* Dwords of data each command takes; -1: not offered. */
static int pvscsi_cmd_dwords(uint32_t cmd)
{
	switch (cmd) {
	case PVSCSI_CMD_ADAPTER_RESET: return 0;
	case PVSCSI_CMD_SETUP_RINGS: return 132;
	case PVSCSI_CMD_RESET_BUS: return 0;
	case PVSCSI_CMD_RESET_DEVICE: return 3;
	case PVSCSI_CMD_ABORT_CMD: return 4;
	case PVSCSI_CMD_CONFIG: return 6;
	case PVSCSI_CMD_SETUP_MSG_RING: return 34;
	default: return -1;
	}
}

static void pvscsi_run_cmd(struct pvscsi *s)
{
	int rc = 0;

	switch (s->cmd) {
	case PVSCSI_CMD_ADAPTER_RESET:
		pvscsi_reset_adapter(s);
		break;
	case PVSCSI_CMD_SETUP_RINGS:
		rc = pvscsi_setup_rings(s);
		break;
	case PVSCSI_CMD_SETUP_MSG_RING:
		rc = pvscsi_setup_msg_ring(s);
		break;
	case PVSCSI_CMD_RESET_BUS:
		for (unsigned i = 0; i < PVSCSI_MAX_TARGETS; i++)
			scsi_dev_reset(&s->targets[i]);
		break;
	case PVSCSI_CMD_RESET_DEVICE:
		if (s->cmd_data[0] < PVSCSI_MAX_TARGETS)
			scsi_dev_reset(&s->targets[s->cmd_data[0]]);
		break;
	case PVSCSI_CMD_CONFIG:
		pvscsi_config(s);
		break;
	default:
		/* ABORT_CMD: requests run to completion quickly and report then. */
		break;
	}
	s->cmd_status = rc ? 0xFFFFFFFFu : 0;
	s->cmd_need = s->cmd_have = 0;
}

static uint64_t pvscsi_mmio_read(void *opaque, uint64_t off, unsigned size)
{
	struct pvscsi *s = opaque;
	uint32_t v = 0;

	vmx_mutex_lock(&s->lock);
	switch (off) {
	case PVSCSI_REG_COMMAND_STATUS: v = s->cmd_status; break;
	case PVSCSI_REG_INTR_STATUS: v = s->intr_status; break;
	case PVSCSI_REG_INTR_MASK: v = s->intr_mask; break;
	default: break;
	}
	vmx_mutex_unlock(&s->lock);
	return v;
}

static void pvscsi_mmio_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct pvscsi *s = opaque;
	uint32_t v = (uint32_t)val;

	vmx_mutex_lock(&s->lock);
	switch (off) {
	case PVSCSI_REG_COMMAND: {
		int n = pvscsi_cmd_dwords(v);
		s->cmd = v;
		s->cmd_have = 0;
		if (n < 0) {
			s->cmd_need = 0;
			s->cmd_status = 0xFFFFFFFFu;
		} else if (n == 0) {
			pvscsi_run_cmd(s);
		} else {
			s->cmd_need = (uint32_t)n;
			s->cmd_status = (uint32_t)n;   /* "supported: this many dwords" */
		}
		break;
	}
	case PVSCSI_REG_COMMAND_DATA:
		if (s->cmd_need == 0) {
			vlog_guest("pvscsi: command data without a command");
			break;
		}
		s->cmd_data[s->cmd_have++] = v;
		if (s->cmd_have == s->cmd_need)
			pvscsi_run_cmd(s);
		break;
	case PVSCSI_REG_INTR_STATUS:
		s->intr_status &= ~v;
		pvscsi_update_irq(s);
		break;
	case PVSCSI_REG_INTR_MASK:
		s->intr_mask = v & (PVSCSI_INTR_CMPL_MASK | PVSCSI_INTR_MSG_MASK);
		pvscsi_update_irq(s);
		break;
	case PVSCSI_REG_KICK_NON_RW_IO:
	case PVSCSI_REG_KICK_RW_IO:
		pvscsi_process(s);
		break;
	default:
		break;
	}
	vmx_mutex_unlock(&s->lock);
}

static const struct iobus_ops pvscsi_mmio_ops = {
	.read = pvscsi_mmio_read, .write = pvscsi_mmio_write, .widths = IOBUS_W4,
};

/* ---- media change: API and VMDB request/media = "scsi0:N eject" | "scsi0:N insert PATH" ---- */

int pvscsi_media_change(struct pvscsi *s, unsigned target, const char *path, char *err,
                        size_t errlen)
{
	char name[16];

	if (target >= PVSCSI_MAX_TARGETS || !s->present[target] ||
	    s->targets[target].kind != SCSI_CDROM) {
		snprintf(err, errlen, "scsi0:%u is not a CD-ROM", target);
		return -1;
	}
	snprintf(name, sizeof(name), "scsi0:%u", target);
	return scsi_media_change(s->vm, &s->lock, &s->targets[target], name, path, err, errlen);
}

static void pvscsi_media_request(void *opaque, const char *rel, const char *value)
{
	struct pvscsi *s = opaque;
	const char *path;
	unsigned unit;
	char err[512];
	int r = scsi_media_request_parse(value, "scsi0", &unit, &path);

	if (r < 0)
		vlog_warn("pvscsi: request/media \"%s\": expected \"scsi0:N eject\" or \"scsi0:N insert PATH\"",
		          value);
	else if (r == 0 && pvscsi_media_change(s, unit, path, err, sizeof(err)) != 0)
		vlog_warn("pvscsi: request/media \"%s\": %s", value, err);
}

/* ---- vdev ---- */

static bool pvscsi_present(struct vmx_vm *vm)
{
	return scsi_cfg_present(vm, "scsi0.present");
}

static void pvscsi_free(struct pvscsi *s)
{
	if (s->pool)
		dio_pool_free(s->pool);
	for (unsigned i = 0; i < PVSCSI_MAX_TARGETS; i++)
		scsi_dev_set_media(&s->targets[i], NULL);
	vmx_mutex_destroy(&s->lock);
	free(s);
}

static int pvscsi_init(struct vdev *dev, char *err, size_t errlen)
{
	static const char *const kinds[] = { "pvscsi", NULL };
	struct pvscsi *s;
	const char *kind;
	unsigned ndev = 0;

	if (vmxcfg_get_enum(dev->vm->cfg, "scsi0.virtualDev", "pvscsi", kinds, &kind, err, errlen))
		return -1;
	s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "pvscsi: out of memory");
		return -1;
	}
	s->vm = dev->vm;
	vmx_mutex_init(&s->lock, VMX_RANK_DEVICE, "pvscsi");
	for (unsigned i = 0; i < PVSCSI_MAX_TARGETS; i++) {
		char prefix[32], serial[24];
		enum scsi_cfg_type t;
		struct scsi_media *m;

		s->reqs[i].s = s;
		snprintf(prefix, sizeof(prefix), "scsi0:%u", i);
		if (scsi_cfg_unit(s->vm, prefix, &t, &m, err, errlen) != 0) {
			pvscsi_free(s);
			return -1;
		}
		if (i == 7 && t != SCSI_CFG_NONE) {
			snprintf(err, errlen, "%s: scsi0:7 is the controller's own ID; use another unit",
			         vmxcfg_path(s->vm->cfg));
			scsi_media_put(m);
			pvscsi_free(s);
			return -1;
		}
		snprintf(serial, sizeof(serial), "6000c29%02u0000000000", i);
		scsi_dev_init(&s->targets[i], t == SCSI_CFG_CDROM ? SCSI_CDROM : SCSI_DISK,
		              t == SCSI_CFG_CDROM ? "VMware IDE CDR10" : "Virtual disk", serial);
		s->present[i] = t != SCSI_CFG_NONE;
		if (m) {
			scsi_dev_set_media(&s->targets[i], m);
			s->targets[i].unit_attention = false;
			s->targets[i].media_event = 0;
		}
		if (s->present[i]) {
			ndev++;
			vlog_info("pvscsi: scsi0:%u: %s%s%s", i, t == SCSI_CFG_CDROM ? "CD-ROM" : "disk",
			          m ? " " : " (no medium)", m ? m->path : "");
		}
	}
	for (unsigned i = 0; i < PVSCSI_MAX_INFLIGHT; i++)
		s->reqs[i].s = s;
	s->pool = dio_pool_new(0);
	if (!s->pool) {
		snprintf(err, errlen, "pvscsi: cannot start the disk I/O threads");
		pvscsi_free(s);
		return -1;
	}
	s->pci = (struct pci_dev){
		.name = "pvscsi", .vendor_id = 0x15AD, .device_id = 0x07C0, .revision = 0x02,
		.subsys_vendor_id = 0x15AD, .subsys_id = 0x07C0,
		.class_code = 0x010700, .irq_pin = 1, .opaque = s,
	};
	s->pci.bars[0] = (struct pci_bar){ .size = PVSCSI_BAR_SIZE, .ops = &pvscsi_mmio_ops,
	                                   .opaque = s };
	if (pci_register(s->vm, &s->pci, PVSCSI_PCI_SLOT, 0, err, errlen) != 0) {
		pvscsi_free(s);
		return -1;
	}
	vlog_info("pvscsi: PVSCSI at 00:%02x.0, %u device(s)", PVSCSI_PCI_SLOT, ndev);
	dev->priv = s;
	return 0;
}

static void pvscsi_vdev_reset(struct vdev *dev)
{
	struct pvscsi *s = dev->priv;

	vmx_mutex_lock(&s->lock);
	pvscsi_reset_adapter(s);
	vmx_mutex_unlock(&s->lock);
}

static void pvscsi_destroy(struct vdev *dev)
{
	struct pvscsi *s = dev->priv;

	if (!s)
		return;
	dio_pool_free(s->pool);
	s->pool = NULL;
	pci_unregister(&s->pci);
	pvscsi_free(s);
	dev->priv = NULL;
}

static int pvscsi_start(struct vdev *dev, char *err, size_t errlen)
{
	if (dev->vm->link &&
	    vmx_link_watch(dev->vm->link, "request/media", pvscsi_media_request, dev->priv) != 0)
		vlog_warn("pvscsi: cannot watch request/media: CD-ROM media changes over VMDB are off");
	return 0;
}

void pvscsi_drain(struct pvscsi *s)
{
	dio_pool_drain(s->pool);
}

static const struct vdev_class pvscsi_class = {
	.name = "pvscsi",
	.order = 50,
	.present = pvscsi_present,
	.init = pvscsi_init,
	.reset = pvscsi_vdev_reset,
	.destroy = pvscsi_destroy,
	.start = pvscsi_start,
};

VDEV_REGISTER(pvscsi_class)

/*
 * test_pvscsi.c — the PVSCSI controller driven as vmw_pvscsi drives it:
 * ADAPTER_RESET, SETUP_RINGS and SETUP_MSG_RING through the command
 * registers, request descriptors in the ring, kicks, completions and INTx,
 * against a real sparse VMDK (target 0) and a raw CD image (target 2).
 * Hostile input: bad ring sizes, s/g lists outside RAM, absurd indices.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sttest.h"
#include "tests/disk/disktest.h"
#include "tests/unit/t.h"
#include "vmx/dev/pvscsi.h"
#include "vmx/disk/vdisk.h"

#define BAR      0xE0000000u
#define RS       0x100000u
#define REQR     0x101000u
#define CMPR     0x102000u
#define MSGR     0x103000u
#define SGL      0x104000u
#define SENSE    0x105000u
#define DATA     0x200000u
#define DISK_MB  32
#define ISO_SECTORS 300
#define GSI      (16 + ((PVSCSI_PCI_SLOT + 0) & 3))

static struct devtest *t;
static struct pvscsi *pv;
static uint32_t next_req;
static uint64_t next_ctx = 1;

static uint32_t rd(uint32_t off) { return (uint32_t)devtest_mmio_read(t, BAR + off, 4); }
static void wr(uint32_t off, uint32_t v) { devtest_mmio_write(t, BAR + off, 4, v); }
static uint32_t rs32(unsigned off) { uint32_t v; memcpy(&v, st_mem(t, RS + off, 4), 4); return v; }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

static void command(uint32_t cmd, const uint32_t *data, unsigned n)
{
	wr(PVSCSI_REG_COMMAND, cmd);
	for (unsigned i = 0; i < n; i++)
		wr(PVSCSI_REG_COMMAND_DATA, data[i]);
}

static int setup_rings(uint32_t nreq, uint32_t ncmp, uint64_t rs_ppn)
{
	uint32_t d[132];

	memset(d, 0, sizeof(d));
	d[0] = nreq;
	d[1] = ncmp;
	d[2] = (uint32_t)rs_ppn;
	d[3] = (uint32_t)(rs_ppn >> 32);
	d[4] = REQR >> 12;
	d[4 + 64] = CMPR >> 12;
	command(PVSCSI_CMD_SETUP_RINGS, d, 132);
	return (int)rd(PVSCSI_REG_COMMAND_STATUS);
}

struct res {
	uint64_t context, data_len;
	uint32_t sense_len;
	uint16_t host, scsi;
};

/*
 * Queue one request (target, cdb, data buffer: direct or through an s/g list
 * of nsg pieces) and kick; returns its completion.
 */
static struct res request(unsigned target, const uint8_t *cdb, unsigned cdb_len, uint64_t len,
                          uint32_t dir, unsigned nsg)
{
	uint8_t *d = st_mem(t, REQR + (next_req % 32) * 128, 128);
	uint32_t cons_before = rs32(PVSCSI_RS_CMP_PROD);
	struct res r = { 0 };
	uint8_t *c;

	memset(d, 0, 128);
	put64(d + PVSCSI_REQ_CONTEXT, next_ctx);
	put64(d + PVSCSI_REQ_DATA_LEN, len);
	put64(d + PVSCSI_REQ_SENSE_ADDR, SENSE);
	put32(d + PVSCSI_REQ_SENSE_LEN, 96);
	put32(d + PVSCSI_REQ_FLAGS, dir | (nsg ? PVSCSI_FLAG_CMD_WITH_SG_LIST : 0));
	memcpy(d + PVSCSI_REQ_CDB, cdb, cdb_len);
	d[PVSCSI_REQ_CDB_LEN] = (uint8_t)cdb_len;
	d[PVSCSI_REQ_TARGET] = (uint8_t)target;
	if (nsg) {
		uint8_t *sg = st_mem(t, SGL, 16 * nsg);
		uint64_t piece = len / nsg, off = 0;
		for (unsigned i = 0; i < nsg; i++) {
			uint64_t l = i == nsg - 1 ? len - off : piece;
			/* pieces land in reverse order in memory: the list, not adjacency, counts */
			uint64_t a = DATA + 0x100000 - off - l;
			put64(sg + 16 * i, a);
			put32(sg + 16 * i + 8, (uint32_t)l);
			put32(sg + 16 * i + 12, 0);
			off += l;
		}
	}
	put64(d + PVSCSI_REQ_DATA_ADDR, nsg ? SGL : DATA);
	next_req++;
	memcpy(st_mem(t, RS + PVSCSI_RS_REQ_PROD, 4), &next_req, 4);
	wr(len && dir != PVSCSI_FLAG_CMD_DIR_NONE ? PVSCSI_REG_KICK_RW_IO : PVSCSI_REG_KICK_NON_RW_IO, 0);
	pvscsi_drain(pv);
	if (rs32(PVSCSI_RS_CMP_PROD) != cons_before + 1) {
		T_FAIL("request %llu: no completion", (unsigned long long)next_ctx);
		next_ctx++;
		return r;
	}
	c = st_mem(t, CMPR + (cons_before % 128) * 32, 32);
	memcpy(&r.context, c, 8);
	memcpy(&r.data_len, c + 8, 8);
	memcpy(&r.sense_len, c + 16, 4);
	memcpy(&r.host, c + 20, 2);
	memcpy(&r.scsi, c + 22, 2);
	T_EQ_U64(r.context, next_ctx);
	next_ctx++;
	cons_before++;
	memcpy(st_mem(t, RS + PVSCSI_RS_CMP_CONS, 4), &cons_before, 4);
	return r;
}

static void cdb10(uint8_t *c, uint8_t op, uint32_t lba, uint16_t n)
{
	memset(c, 0, 16);
	c[0] = op;
	c[2] = (uint8_t)(lba >> 24);
	c[3] = (uint8_t)(lba >> 16);
	c[4] = (uint8_t)(lba >> 8);
	c[5] = (uint8_t)lba;
	c[7] = (uint8_t)(n >> 8);
	c[8] = (uint8_t)n;
}

static void test_setup(void)
{
	uint32_t msg[34];

	command(PVSCSI_CMD_ADAPTER_RESET, NULL, 0);
	T_EQ_U64(rd(PVSCSI_REG_COMMAND_STATUS), 0);
	/* Unsupported command: status -1 (the driver probes REQCALLTHRESHOLD this way). */
	wr(PVSCSI_REG_COMMAND, PVSCSI_CMD_SETUP_REQCALLTHRESHOLD);
	T_EQ_U64(rd(PVSCSI_REG_COMMAND_STATUS), 0xFFFFFFFFu);
	/* Bad sizes and a state page outside RAM are refused. */
	T_EQ_I64(setup_rings(3, 1, RS >> 12), -1);
	T_EQ_I64(setup_rings(1, 64, RS >> 12), -1);
	T_EQ_I64(setup_rings(1, 1, 0xFFFFF000ull >> 12), -1);
	T_EQ_I64(setup_rings(1, 1, 0xFFFFFFFFFFFFFull), -1);
	memset(st_mem(t, RS, 4096), 0xEE, 4096);
	T_EQ_I64(setup_rings(1, 1, RS >> 12), 0);
	T_EQ_U64(rs32(PVSCSI_RS_REQ_LOG2), 5);
	T_EQ_U64(rs32(PVSCSI_RS_CMP_LOG2), 7);
	T_EQ_U64(rs32(PVSCSI_RS_REQ_PROD), 0);
	T_EQ_U64(rs32(PVSCSI_RS_CMP_PROD), 0);
	/* The message ring: probe (status != -1), then set up. */
	wr(PVSCSI_REG_COMMAND, PVSCSI_CMD_SETUP_MSG_RING);
	T_EQ_U64(rd(PVSCSI_REG_COMMAND_STATUS), 34);
	memset(msg, 0, sizeof(msg));
	msg[0] = 1;
	msg[2] = MSGR >> 12;
	for (unsigned i = 0; i < 34; i++)
		wr(PVSCSI_REG_COMMAND_DATA, msg[i]);
	T_EQ_U64(rd(PVSCSI_REG_COMMAND_STATUS), 0);
	T_EQ_U64(rs32(PVSCSI_RS_MSG_LOG2), 5);
	/* CONFIG: the controller page says 16 targets; another page is refused in its header. */
	{
		uint32_t cfg[6] = { SGL, 0, 0, 0x2120, 0x1958, 0 };
		uint8_t *pg = st_mem(t, SGL, 480);
		memset(pg, 0xFF, 480);
		command(PVSCSI_CMD_CONFIG, cfg, 6);
		T_EQ_U64(pg[6] | pg[7] << 8, 0);          /* host status */
		T_EQ_U64(pg[8] | pg[9] << 8, 0);          /* SCSI status */
		T_EQ_U64(pg[472], PVSCSI_MAX_TARGETS);    /* numPhys */
		cfg[4] = 0x1959;
		command(PVSCSI_CMD_CONFIG, cfg, 6);
		T_EQ_U64(pg[6], PVSCSI_BTSTAT_INVPARAM);
	}
	wr(PVSCSI_REG_INTR_MASK, PVSCSI_INTR_CMPL_MASK | PVSCSI_INTR_MSG_MASK);
}

static void test_disk(void)
{
	uint8_t c[16], *buf = st_mem(t, DATA, 0x100000), *sense = st_mem(t, SENSE, 96);
	uint8_t *exp = malloc(65536);
	struct res r;

	/* INQUIRY: a disk, and an interrupt for the completion. */
	memset(c, 0, 16);
	c[0] = 0x12;
	c[4] = 96;
	r = request(0, c, 6, 96, PVSCSI_FLAG_CMD_DIR_TOHOST, 0);
	T_EQ_U64(r.host, PVSCSI_BTSTAT_SUCCESS);
	T_EQ_U64(r.scsi, 0);
	T_EQ_U64(r.data_len, 36);
	T_EQ_U64(buf[0], 0);
	T_MEMEQ(buf + 8, "VMware  ", 8);
	T_ASSERT(rd(PVSCSI_REG_INTR_STATUS) & 1);
	T_ASSERT(devtest_gsi_level(t, GSI));
	wr(PVSCSI_REG_INTR_STATUS, rd(PVSCSI_REG_INTR_STATUS));
	T_ASSERT(!devtest_gsi_level(t, GSI));

	/* READ CAPACITY(16) */
	memset(c, 0, 16);
	c[0] = 0x9E;
	c[1] = 0x10;
	c[13] = 32;
	r = request(0, c, 16, 32, PVSCSI_FLAG_CMD_DIR_TOHOST, 0);
	T_EQ_U64(r.scsi, 0);
	T_EQ_U64((uint64_t)buf[4] << 24 | buf[5] << 16 | buf[6] << 8 | buf[7],
	         ((uint64_t)DISK_MB << 11) - 1);

	/* REPORT LUNS: LUN 0 only; LUN 1 INQUIRY says no device. */
	memset(c, 0, 16);
	c[0] = 0xA0;
	c[9] = 64;
	r = request(0, c, 12, 64, PVSCSI_FLAG_CMD_DIR_TOHOST, 0);
	T_EQ_U64(r.data_len, 16);
	T_EQ_U64(buf[3], 8);

	/* WRITE(10) through a 5-piece s/g list, SYNCHRONIZE CACHE, READ(10) back directly. */
	dt_pattern(exp, 65536, 11, 0);
	{
		/* Lay the data out as request() spreads it: piece i at DATA+1M-off-len. */
		uint64_t piece = 65536 / 5, off = 0;
		for (unsigned i = 0; i < 5; i++) {
			uint64_t l = i == 4 ? 65536 - off : piece;
			memcpy(buf + 0x100000 - off - l, exp + off, l);
			off += l;
		}
	}
	cdb10(c, 0x2A, 2048, 128);
	r = request(0, c, 10, 65536, PVSCSI_FLAG_CMD_DIR_TODEVICE, 5);
	T_EQ_U64(r.scsi, 0);
	T_EQ_U64(r.data_len, 65536);
	cdb10(c, 0x35, 0, 0);
	r = request(0, c, 10, 0, PVSCSI_FLAG_CMD_DIR_NONE, 0);
	T_EQ_U64(r.scsi, 0);
	memset(buf, 0, 65536);
	cdb10(c, 0x28, 2048, 128);
	r = request(0, c, 10, 65536, PVSCSI_FLAG_CMD_DIR_TOHOST, 0);
	T_EQ_U64(r.scsi, 0);
	T_MEMEQ(buf, exp, 65536);

	/* Past the end: CHECK CONDITION with sense in the guest's buffer. */
	cdb10(c, 0x28, (uint32_t)DISK_MB << 11, 1);
	r = request(0, c, 10, 512, PVSCSI_FLAG_CMD_DIR_TOHOST, 0);
	T_EQ_U64(r.scsi, 2);
	T_EQ_U64(r.sense_len, 18);
	T_EQ_U64(sense[2], 5);
	T_EQ_U64(sense[12], 0x21);

	/* No device at target 3; a bus other than 0; an s/g list outside RAM. */
	memset(c, 0, 16);
	c[0] = 0x00;
	r = request(3, c, 6, 0, PVSCSI_FLAG_CMD_DIR_NONE, 0);
	T_EQ_U64(r.host, PVSCSI_BTSTAT_SELTIMEO);
	r = request(7, c, 6, 0, PVSCSI_FLAG_CMD_DIR_NONE, 0);
	T_EQ_U64(r.host, PVSCSI_BTSTAT_SELTIMEO);
	/* One s/g element. */
	cdb10(c, 0x28, 2048, 8);
	r = request(0, c, 10, 4096, PVSCSI_FLAG_CMD_DIR_TOHOST, 1);
	T_EQ_U64(r.scsi, 0);
	T_MEMEQ(buf + 0x100000 - 4096, exp, 4096);
	/* A buffer too small for the blocks asked: data overrun, no transfer. */
	cdb10(c, 0x28, 0, 16);
	r = request(0, c, 10, 4096, PVSCSI_FLAG_CMD_DIR_TOHOST, 0);
	T_EQ_U64(r.host, PVSCSI_BTSTAT_DATARUN);
	/* A READ(10) cut to 6 CDB bytes: ILLEGAL REQUEST, not a guess. */
	r = request(0, c, 6, 0, PVSCSI_FLAG_CMD_DIR_NONE, 0);
	T_EQ_U64(r.scsi, 2);
	T_EQ_U64(sense[2], 5);
	free(exp);
}

static void test_hostile(void)
{
	uint32_t prod = rs32(PVSCSI_RS_REQ_PROD), cons = rs32(PVSCSI_RS_REQ_CONS);
	uint32_t bogus = cons + 100000;
	uint8_t *d = st_mem(t, REQR + (next_req % 32) * 128, 128);

	T_EQ_U64(prod, cons);
	/* An index far ahead of the ring: ignored, nothing consumed. */
	memcpy(st_mem(t, RS + PVSCSI_RS_REQ_PROD, 4), &bogus, 4);
	wr(PVSCSI_REG_KICK_RW_IO, 0);
	pvscsi_drain(pv);
	T_EQ_U64(rs32(PVSCSI_RS_REQ_CONS), cons);
	memcpy(st_mem(t, RS + PVSCSI_RS_REQ_PROD, 4), &prod, 4);
	/* A descriptor with a 200-byte CDB length and an s/g list outside RAM. */
	memset(d, 0, 128);
	put64(d, 77);
	d[PVSCSI_REQ_CDB_LEN] = 200;
	next_req++;
	memcpy(st_mem(t, RS + PVSCSI_RS_REQ_PROD, 4), &next_req, 4);
	wr(PVSCSI_REG_KICK_NON_RW_IO, 0);
	T_EQ_U64(rs32(PVSCSI_RS_CMP_PROD), rs32(PVSCSI_RS_CMP_CONS) + 1);
	{
		uint8_t *c = st_mem(t, CMPR + (rs32(PVSCSI_RS_CMP_CONS) % 128) * 32, 32);
		T_EQ_U64(c[20], PVSCSI_BTSTAT_INVPARAM);
	}
	memcpy(st_mem(t, RS + PVSCSI_RS_CMP_CONS, 4), st_mem(t, RS + PVSCSI_RS_CMP_PROD, 4), 4);
	d = st_mem(t, REQR + (next_req % 32) * 128, 128);
	memset(d, 0, 128);
	put64(d, 78);
	put64(d + PVSCSI_REQ_DATA_ADDR, 0xFFFFFF00ull);
	put64(d + PVSCSI_REQ_DATA_LEN, 4096);
	put32(d + PVSCSI_REQ_FLAGS, PVSCSI_FLAG_CMD_WITH_SG_LIST | PVSCSI_FLAG_CMD_DIR_TOHOST);
	d[PVSCSI_REQ_CDB] = 0x28;
	d[PVSCSI_REQ_CDB + 8] = 8;
	d[PVSCSI_REQ_CDB_LEN] = 10;
	next_req++;
	memcpy(st_mem(t, RS + PVSCSI_RS_REQ_PROD, 4), &next_req, 4);
	wr(PVSCSI_REG_KICK_RW_IO, 0);
	pvscsi_drain(pv);
	{
		uint8_t *c = st_mem(t, CMPR + (rs32(PVSCSI_RS_CMP_CONS) % 128) * 32, 32);
		T_EQ_U64(c[0], 78);
		T_EQ_U64(c[20], PVSCSI_BTSTAT_INVPARAM);
	}
	memcpy(st_mem(t, RS + PVSCSI_RS_CMP_CONS, 4), st_mem(t, RS + PVSCSI_RS_CMP_PROD, 4), 4);
}

static void test_cdrom(const uint8_t *iso)
{
	uint8_t c[16], *buf = st_mem(t, DATA, 65536);
	struct res r;

	memset(c, 0, 16);
	c[0] = 0x12;
	c[4] = 36;
	r = request(2, c, 6, 36, PVSCSI_FLAG_CMD_DIR_TOHOST, 0);
	T_EQ_U64(buf[0], 5);
	cdb10(c, 0x28, 100, 4);
	r = request(2, c, 10, 8192, PVSCSI_FLAG_CMD_DIR_TOHOST, 2);
	T_EQ_U64(r.scsi, 0);
	/* Two pieces at DATA+1M-4096 (first) and DATA+1M-8192 (second). */
	T_MEMEQ(buf + 0x100000 - 4096, iso + 100 * 2048, 4096);
	T_MEMEQ(buf + 0x100000 - 8192, iso + 100 * 2048 + 4096, 4096);
	cdb10(c, 0x2A, 0, 1);
	r = request(2, c, 10, 2048, PVSCSI_FLAG_CMD_DIR_TODEVICE, 0);
	T_EQ_U64(r.scsi, 2);

	/* Host-side eject and re-insert (VMDB request/media): NOT READY, then unit attention. */
	{
		char err[256];
		uint8_t *sense = st_mem(t, SENSE, 18);
		T_EQ_I64(pvscsi_media_change(pv, 0, NULL, err, sizeof(err)), -1);   /* a disk */
		T_EQ_I64(pvscsi_media_change(pv, 2, NULL, err, sizeof(err)), 0);
		memset(c, 0, 16);
		r = request(2, c, 6, 0, PVSCSI_FLAG_CMD_DIR_NONE, 0);
		T_EQ_U64(r.scsi, 2);
		T_EQ_U64(sense[2], 2);
		T_EQ_U64(sense[12], 0x3A);
		T_EQ_I64(pvscsi_media_change(pv, 2, dt_path("cd.iso"), err, sizeof(err)), 0);
		r = request(2, c, 6, 0, PVSCSI_FLAG_CMD_DIR_NONE, 0);
		T_EQ_U64(r.scsi, 2);
		T_EQ_U64(sense[2], 6);
		r = request(2, c, 6, 0, PVSCSI_FLAG_CMD_DIR_NONE, 0);
		T_EQ_U64(r.scsi, 0);
	}
}

int main(void)
{
	const char *vmdk = dt_path("pv.vmdk"), *isop = dt_path("cd.iso");
	char err[512], cfg[4096];
	uint8_t *iso = malloc(ISO_SECTORS * 2048);
	FILE *f;

	if (vdisk_create(vmdk, VDISK_FMT_VMDK_SPARSE, (uint64_t)DISK_MB << 20, err, sizeof(err))) {
		fprintf(stderr, "test_pvscsi: %s\n", err);
		return 1;
	}
	dt_pattern(iso, ISO_SECTORS * 2048, 5, 0);
	f = fopen(isop, "wb");
	if (!f || fwrite(iso, 1, ISO_SECTORS * 2048, f) != ISO_SECTORS * 2048 || fclose(f)) {
		fprintf(stderr, "test_pvscsi: cannot write %s\n", isop);
		return 1;
	}
	/* Only pvscsi is offered; scsi0:7 is the controller. */
	snprintf(cfg, sizeof(cfg), "scsi0.present = \"TRUE\"\nscsi0.virtualDev = \"lsilogic\"\n");
	{
		struct devtest *bad = devtest_new(cfg);
		T_ASSERT(bad && devtest_add(bad, "ioapic") == 0 && devtest_add(bad, "pci") == 0);
		T_EQ_I64(bad ? devtest_add(bad, "pvscsi") : 0, -1);
		devtest_free(bad);
	}
	snprintf(cfg, sizeof(cfg), "scsi0.present = \"TRUE\"\nscsi0.virtualDev = \"pvscsi\"\n"
	         "scsi0:7.present = \"TRUE\"\nscsi0:7.fileName = \"%s\"\n", vmdk);
	{
		struct devtest *bad = devtest_new(cfg);
		T_ASSERT(bad && devtest_add(bad, "ioapic") == 0 && devtest_add(bad, "pci") == 0);
		T_EQ_I64(bad ? devtest_add(bad, "pvscsi") : 0, -1);
		devtest_free(bad);
	}

	snprintf(cfg, sizeof(cfg),
	         "scsi0.present = \"TRUE\"\nscsi0.virtualDev = \"pvscsi\"\n"
	         "scsi0:0.present = \"TRUE\"\nscsi0:0.fileName = \"%s\"\n"
	         "scsi0:2.present = \"TRUE\"\nscsi0:2.deviceType = \"cdrom-image\"\n"
	         "scsi0:2.fileName = \"%s\"\n", vmdk, isop);
	t = st_vm(cfg, "pvscsi");
	if (!t)
		return 1;
	pv = devtest_priv(t, "pvscsi");
	T_EQ_U64(st_cfg_read(t, PVSCSI_PCI_SLOT, 0, 4), 0x07C015ADu);
	st_map_bar(t, PVSCSI_PCI_SLOT, 0, BAR);
	test_setup();
	test_disk();
	test_hostile();
	test_cdrom(iso);
	/* Adapter reset: interrupts off, rings forgotten (a kick does nothing). */
	command(PVSCSI_CMD_ADAPTER_RESET, NULL, 0);
	T_EQ_U64(rd(PVSCSI_REG_INTR_MASK), 0);
	T_ASSERT(!devtest_gsi_level(t, GSI));
	devtest_free(t);
	if (dt_have_qemu_img()) {
		char *out = NULL;
		T_EQ_I64(dt_sh(&out, "qemu-img check -f vmdk '%s' 2>&1", vmdk), 0);
		free(out);
	}
	free(iso);
	dt_cleanup();
	return T_DONE();
}

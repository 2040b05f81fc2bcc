/*
 * test_vdisk.c — the disk library on its own: every format round-trips
 * random writes (also across reopen), the worker pool, growing (with the
 * grain directory moving), and corrupt images refused with a message naming
 * the file and the problem — and never written to.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "disktest.h"
#include "tests/unit/t.h"
#include "vmx/disk/dio.h"
#include "vmx/disk/vdisk.h"
#include "vmx/disk/vmdk.h"

#define MB (1ull << 20)

/* Random writes mirrored into a buffer; then the disk must read back the buffer. */
static void random_writes(struct vdisk *d, uint8_t *mirror, uint64_t cap, int n, uint64_t tag)
{
	uint8_t *buf = malloc(300 * 1024);
	for (int i = 0; i < n; i++) {
		size_t len = 1 + dt_rand() % (300 * 1024);
		if (i % 2)
			len = (len + 511) / 512 * 512;
		uint64_t off = dt_rand() % (cap - len);
		if (i % 2)
			off &= ~511ull;
		dt_pattern(buf, len, tag + (uint64_t)i, off);
		int r = vdisk_pwrite(d, buf, len, off);
		if (r)
			T_FAIL("write %zu at %llu: %s", len, (unsigned long long)off, strerror(-r));
		memcpy(mirror + off, buf, len);
		if (i % 17 == 0)
			T_EQ_I64(vdisk_flush(d), 0);
	}
	free(buf);
}

static void verify(struct vdisk *d, const uint8_t *mirror, uint64_t cap, const char *what)
{
	uint8_t *buf = malloc(cap);
	int r = vdisk_pread(d, buf, cap, 0);
	T_EQ_I64(r, 0);
	if (memcmp(buf, mirror, cap) != 0) {
		size_t i = 0;
		while (buf[i] == mirror[i])
			i++;
		T_FAIL("%s: content differs from the mirror at byte %zu", what, i);
	}
	/* Odd-sized reads through a split iovec too. */
	for (int k = 0; k < 50; k++) {
		uint64_t off = dt_rand() % (cap - 70000);
		struct iovec v[3] = { { buf, 1 }, { buf + 1, 4000 }, { buf + 4001, 65000 } };
		T_EQ_I64(vdisk_preadv(d, off, v, 3), 0);
		T_ASSERT(memcmp(buf, mirror + off, 69001) == 0);
	}
	free(buf);
}

static void report_null(void *o, bool e, const char *m)
{
	if (e)
		fprintf(stderr, "  check: %s\n", m);
}

static void roundtrip(enum vdisk_format fmt, const char *name)
{
	char err[600];
	struct vdisk *d;
	uint64_t cap = 48 * MB;
	const char *p = dt_path(name);
	uint8_t *mirror = calloc(1, cap);

	T_EQ_I64(vdisk_create(p, fmt, cap, err, sizeof(err)), 0);
	T_EQ_I64(vdisk_create(p, fmt, cap, err, sizeof(err)), -EEXIST);
	T_EQ_I64(vdisk_open(&d, p, VDISK_FMT_AUTO, 0, err, sizeof(err)), 0);
	T_EQ_U64(vdisk_capacity(d), cap);
	random_writes(d, mirror, cap, 200, 1000);
	verify(d, mirror, cap, name);
	T_EQ_I64(vdisk_close(d), 0);
	T_EQ_I64(vdisk_open(&d, p, VDISK_FMT_AUTO, 0, err, sizeof(err)), 0);
	verify(d, mirror, cap, name);
	struct vdisk_info in;
	vdisk_get_info(d, &in);
	T_ASSERT(!in.corrupt && !in.read_only);
	T_EQ_I64(vdisk_pwrite(d, mirror, 512, cap - 256), -EINVAL);
	T_EQ_I64(vdisk_close(d), 0);
	unsigned nw;
	T_EQ_I64(vdisk_check(p, VDISK_FMT_AUTO, report_null, NULL, &nw), 0);
	T_EQ_U64(nw, 0);
	free(mirror);
}

struct pool_ctx {
	int done, failed;
};

static void pool_done(struct dio_req *r, int ret)
{
	struct pool_ctx *c = r->opaque;
	if (ret)
		__atomic_add_fetch(&c->failed, 1, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&c->done, 1, __ATOMIC_SEQ_CST);
}

static void test_pool(void)
{
	char err[600];
	struct vdisk *d;
	uint64_t cap = 32 * MB;
	const char *p = dt_path("pool.vmdk");
	enum { N = 512 };
	static struct dio_req req[N];
	static struct iovec iov[N];
	uint8_t *mirror = calloc(1, cap), *bufs = malloc((size_t)N * 4096);
	struct pool_ctx c = { 0, 0 };

	T_EQ_I64(vdisk_create(p, VDISK_FMT_VMDK_SPARSE, cap, err, sizeof(err)), 0);
	T_EQ_I64(vdisk_open(&d, p, VDISK_FMT_AUTO, 0, err, sizeof(err)), 0);
	struct dio_pool *pool = dio_pool_new(4);
	T_ASSERT(pool != NULL);
	/* Distinct 4 KiB blocks (so the order of completion does not matter). */
	for (int i = 0; i < N; i++) {
		uint64_t off = (uint64_t)i * 4096 * 13 % cap;
		iov[i] = (struct iovec){ bufs + (size_t)i * 4096, 4096 };
		dt_pattern(iov[i].iov_base, 4096, 7 + (uint64_t)i, off);
		memcpy(mirror + off, iov[i].iov_base, 4096);
		req[i] = (struct dio_req){ DIO_WRITE, d, off, &iov[i], 1, pool_done, &c, NULL };
		dio_submit(pool, &req[i]);
	}
	dio_pool_drain(pool);
	T_EQ_I64(c.done, N);
	T_EQ_I64(c.failed, 0);
	struct dio_req fl = { DIO_FLUSH, d, 0, NULL, 0, pool_done, &c, NULL };
	dio_submit(pool, &fl);
	dio_pool_drain(pool);
	T_EQ_I64(c.failed, 0);
	/* Reads through the pool. */
	memset(bufs, 0, (size_t)N * 4096);
	for (int i = 0; i < N; i++) {
		req[i].op = DIO_READ;
		dio_submit(pool, &req[i]);
	}
	dio_pool_free(pool);
	T_EQ_I64(c.done, 2 * N + 1);
	for (int i = 0; i < N; i++)
		T_ASSERT(memcmp(iov[i].iov_base, mirror + req[i].offset, 4096) == 0);
	T_EQ_I64(vdisk_close(d), 0);
	T_EQ_I64(vdisk_open(&d, p, VDISK_FMT_AUTO, VDISK_OPEN_RDONLY, err, sizeof(err)), 0);
	verify(d, mirror, cap, "pool");
	vdisk_close(d);
	free(mirror);
	free(bufs);
}

static void test_grow(enum vdisk_format fmt, const char *name, uint64_t from, uint64_t to)
{
	char err[600];
	struct vdisk *d;
	const char *p = dt_path(name);
	uint8_t a[8192], b[8192], c[8192];

	T_EQ_I64(vdisk_create(p, fmt, from, err, sizeof(err)), 0);
	T_EQ_I64(vdisk_open(&d, p, VDISK_FMT_AUTO, 0, err, sizeof(err)), 0);
	dt_pattern(a, sizeof(a), 1, 0);
	T_EQ_I64(vdisk_pwrite(d, a, sizeof(a), from - sizeof(a)), 0);
	T_EQ_I64(vdisk_close(d), 0);
	T_EQ_I64(vdisk_resize(p, from / 2, err, sizeof(err)), -ENOTSUP);
	T_EQ_I64(vdisk_resize(p, to, err, sizeof(err)), 0);
	T_EQ_I64(vdisk_open(&d, p, VDISK_FMT_AUTO, 0, err, sizeof(err)), 0);
	T_EQ_U64(vdisk_capacity(d), to);
	dt_pattern(b, sizeof(b), 2, 0);
	T_EQ_I64(vdisk_pwrite(d, b, sizeof(b), to - sizeof(b)), 0);
	T_EQ_I64(vdisk_pwrite(d, b, sizeof(b), from), 0);
	T_EQ_I64(vdisk_close(d), 0);
	T_EQ_I64(vdisk_open(&d, p, VDISK_FMT_AUTO, VDISK_OPEN_RDONLY, err, sizeof(err)), 0);
	T_EQ_I64(vdisk_pread(d, c, sizeof(c), from - sizeof(a)), 0);
	T_MEMEQ(c, a, sizeof(a));
	T_EQ_I64(vdisk_pread(d, c, sizeof(c), to - sizeof(b)), 0);
	T_MEMEQ(c, b, sizeof(b));
	T_EQ_I64(vdisk_pread(d, c, sizeof(c), from), 0);
	T_MEMEQ(c, b, sizeof(b));
	vdisk_close(d);
	T_EQ_I64(vdisk_check(p, VDISK_FMT_AUTO, report_null, NULL, NULL), 0);
}

/* ---- corrupt images ---- */

static void put32(const char *p, uint64_t off, uint32_t v)
{
	dt_patch(p, off, &v, 4);
}

static void put64(const char *p, uint64_t off, uint64_t v)
{
	dt_patch(p, off, &v, 8);
}

/* A sparse image with grains 0..3 written (grains at sectors 128, 256, ...). */
static const char *make_sparse(const char *name)
{
	char err[600];
	struct vdisk *d;
	const char *p = dt_path(name);
	uint8_t buf[4 * 65536];

	vdisk_create(p, VDISK_FMT_VMDK_SPARSE, 64 * MB, err, sizeof(err));
	if (vdisk_open(&d, p, VDISK_FMT_AUTO, 0, err, sizeof(err)) == 0) {
		dt_pattern(buf, sizeof(buf), 3, 0);
		vdisk_pwrite(d, buf, sizeof(buf), 0);
		vdisk_close(d);
	}
	return p;
}

/* Opening must fail, name the file, say `what`, leave the file untouched. */
static void expect_refused(const char *p, const char *what, bool ro_ok)
{
	char err[600];
	struct vdisk *d = NULL;
	size_t len;
	uint8_t *before = dt_slurp(p, &len);

	int r = vdisk_open(&d, p, VDISK_FMT_AUTO, 0, err, sizeof(err));
	T_ASSERT(r < 0);
	if (r == 0) {
		vdisk_close(d);
	} else {
		T_CONTAINS(err, p);
		T_CONTAINS(err, what);
	}
	r = vdisk_open(&d, p, VDISK_FMT_AUTO, VDISK_OPEN_RO_IF_CORRUPT, err, sizeof(err));
	if (ro_ok) {
		T_EQ_I64(r, 0);
		if (r == 0) {
			struct vdisk_info in;
			uint8_t buf[512] = { 1 };
			vdisk_get_info(d, &in);
			T_ASSERT(in.corrupt && in.read_only);
			T_EQ_I64(vdisk_pwrite(d, buf, sizeof(buf), 0), -EROFS);
			vdisk_close(d);
		}
	} else {
		T_ASSERT(r < 0);
	}
	unsigned nw;
	T_ASSERT(vdisk_check(p, VDISK_FMT_AUTO, NULL, NULL, &nw) > 0);
	T_ASSERT(before && dt_file_equal(before, len, p));
	free(before);
}

static void test_corrupt(void)
{
	const char *p;
	char err[600];
	struct vdisk *d;

	/* Layout of a 64 MiB image: desc 1..20, RGD 21, RGTs 22.., GD 30, GTs 31.., grains 128.. */
	p = make_sparse("c-magic.vmdk");
	dt_patch(p, 0, "XXXX", 4);
	expect_refused(p, "bad magic", false);

	p = make_sparse("c-gtpast.vmdk");
	put32(p, 31 * 512 + 4, 0x00f00000);
	expect_refused(p, "points past the end of the file", true);

	p = make_sparse("c-overlap.vmdk");
	put32(p, 31 * 512 + 8, 128 + 64);
	expect_refused(p, "overlapping grains", true);

	p = make_sparse("c-intometa.vmdk");
	put32(p, 31 * 512 + 12, 22);
	expect_refused(p, "overlap", true);

	p = make_sparse("c-gdhdr.vmdk");
	put64(p, 56, 0);
	expect_refused(p, "grain directory offset 0", false);

	p = make_sparse("c-gdentry.vmdk");
	put32(p, 30 * 512, 1);
	expect_refused(p, "overlaps", true);

	p = make_sparse("c-cap.vmdk");
	put64(p, 12, ~0ull);
	expect_refused(p, "absurd capacity", false);

	p = make_sparse("c-grain.vmdk");
	put64(p, 20, 100);
	expect_refused(p, "bad grain size", false);

	p = make_sparse("c-trunc.vmdk");
	T_EQ_I64(truncate(p, 5000), 0);
	expect_refused(p, "truncated", false);

	p = make_sparse("c-nl.vmdk");
	dt_patch(p, 73, "\r", 1);
	expect_refused(p, "newline", false);

	/* A descriptor naming a missing extent. */
	p = dt_path("c-missing.vmdk");
	T_EQ_I64(vdisk_create(p, VDISK_FMT_VMDK_FLAT, 4 * MB, err, sizeof(err)), 0);
	T_EQ_I64(unlink(dt_path("c-missing-flat.vmdk")), 0);
	expect_refused(p, "c-missing-flat.vmdk", false);

	/* A truncated flat extent. */
	p = dt_path("c-short.vmdk");
	T_EQ_I64(vdisk_create(p, VDISK_FMT_VMDK_FLAT, 4 * MB, err, sizeof(err)), 0);
	T_EQ_I64(truncate(dt_path("c-short-flat.vmdk"), 4096), 0);
	expect_refused(p, "truncated", true);

	/* Malformed descriptors. */
	static const char *bad_desc[][2] = {
		{ "createType=\"monolithicFlat\"\nRW 12x FLAT \"x\" 0\n", "bad extent size" },
		{ "createType=\"monolithicFlat\"\nRW 99999999999999999999 FLAT \"x\" 0\n", "bad extent size" },
		{ "createType=\"monolithicFlat\"\n", "no extents" },
		{ "# Disk DescriptorFile\nRW 8 FLAT \"x\" 0\n", "no createType" },
		{ "createType=\"monolithicFlat\"\nRW 8 FLAT x 0\n", "quoted file name" },
		{ "createType=\"x\"\nRW 8 COWD \"x\"\n", "unsupported extent type" },
		{ "createType=\"x\"\nwhat is this\n", "not understood" },
		{ "createType=\"x\"\nparentCID=1234\nRW 8 ZERO\n", "parent" },
	};
	for (size_t i = 0; i < sizeof(bad_desc) / sizeof(bad_desc[0]); i++) {
		char name[32];
		snprintf(name, sizeof(name), "c-desc%zu.vmdk", i);
		p = dt_path(name);
		dt_patch(p, 0, bad_desc[i][0], strlen(bad_desc[i][0]));
		T_ASSERT(vdisk_open(&d, p, VDISK_FMT_AUTO, 0, err, sizeof(err)) < 0);
		T_CONTAINS(err, bad_desc[i][1]);
		T_CONTAINS(err, p);
	}
	/* A raw file named .vmdk is refused, not taken as raw. */
	p = dt_path("c-raw.vmdk");
	T_EQ_I64(vdisk_create(p, VDISK_FMT_RAW, MB, err, sizeof(err)), 0);
	expect_refused(p, "not a VMDK", false);
}

/* An image whose second grain table is not allocated yet (as some tools make them). */
static void test_lazy_table(void)
{
	char err[600];
	struct vdisk *d;
	const char *p = make_sparse("lazy.vmdk");
	uint8_t a[70000], b[70000];

	put32(p, 30 * 512 + 4, 0); /* GD[1] */
	put32(p, 21 * 512 + 4, 0); /* RGD[1] */
	T_EQ_I64(vdisk_check(p, VDISK_FMT_AUTO, report_null, NULL, NULL), 0);
	T_EQ_I64(vdisk_open(&d, p, VDISK_FMT_AUTO, 0, err, sizeof(err)), 0);
	dt_pattern(a, sizeof(a), 77, 40 * MB + 1000);
	T_EQ_I64(vdisk_pwrite(d, a, sizeof(a), 40 * MB + 1000), 0);
	T_EQ_I64(vdisk_close(d), 0);
	T_EQ_I64(vdisk_check(p, VDISK_FMT_AUTO, report_null, NULL, NULL), 0);
	T_EQ_I64(vdisk_open(&d, p, VDISK_FMT_AUTO, VDISK_OPEN_RDONLY, err, sizeof(err)), 0);
	T_EQ_I64(vdisk_pread(d, b, sizeof(b), 40 * MB + 1000), 0);
	T_MEMEQ(a, b, sizeof(a));
	vdisk_close(d);
	if (dt_have_qemu_img()) {
		/* qemu reads the new table too. */
		const char *raw = dt_path("lazy.raw");
		T_EQ_I64(dt_sh(NULL, "qemu-img check -q '%s' && qemu-img convert -O raw '%s' '%s'", p, p, raw), 0);
		size_t n;
		uint8_t *all = dt_slurp(raw, &n);
		T_ASSERT(all && n == 64 * MB && !memcmp(all + 40 * MB + 1000, a, sizeof(a)));
		free(all);
	}
}

static void test_sizes(void)
{
	uint64_t v;
	T_EQ_I64(vdisk_parse_size("10G", &v), 0);
	T_EQ_U64(v, 10ull << 30);
	T_EQ_I64(vdisk_parse_size("512M", &v), 0);
	T_EQ_U64(v, 512ull << 20);
	T_EQ_I64(vdisk_parse_size("4096", &v), 0);
	T_EQ_U64(v, 4096);
	T_EQ_I64(vdisk_parse_size("1.5K", &v), 0);
	T_EQ_U64(v, 1536);
	T_EQ_I64(vdisk_parse_size("2GiB", &v), 0);
	T_EQ_U64(v, 2ull << 30);
	T_ASSERT(vdisk_parse_size("10Q", &v) < 0);
	T_ASSERT(vdisk_parse_size("-1", &v) < 0);
	T_ASSERT(vdisk_parse_size("99999999999T", &v) < 0);
	T_ASSERT(vdisk_parse_size("", &v) < 0);
}

int main(void)
{
	dt_seed(42);
	test_sizes();
	roundtrip(VDISK_FMT_VMDK_SPARSE, "rt-sparse.vmdk");
	roundtrip(VDISK_FMT_VMDK_FLAT, "rt-flat.vmdk");
	roundtrip(VDISK_FMT_RAW, "rt.raw");
	test_pool();
	test_grow(VDISK_FMT_VMDK_SPARSE, "grow-sparse.vmdk", 20 * MB, 200 * MB);
	/* 1 MiB -> 10 GiB: the directory outgrows its sector and moves. */
	test_grow(VDISK_FMT_VMDK_SPARSE, "grow-far.vmdk", 1 * MB, 10ull << 30);
	test_grow(VDISK_FMT_VMDK_FLAT, "grow-flat.vmdk", 4 * MB, 40 * MB);
	test_grow(VDISK_FMT_RAW, "grow.raw", 4 * MB, 40 * MB);
	test_corrupt();
	test_lazy_table();
	dt_cleanup();
	return T_DONE();
}

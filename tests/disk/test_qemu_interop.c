/*
 * test_qemu_interop.c — Vireo's VMDK against the real qemu-img.
 *
 *  - images qemu-img creates (monolithicSparse, monolithicFlat) open in
 *    Vireo; random patterns at random offsets are written through Vireo and
 *    mirrored into a raw file; qemu-img check passes and qemu-img compare
 *    finds the VMDK and the raw mirror identical;
 *  - the same for images Vireo creates, and after Vireo grows them;
 *  - an image qemu-img filled (convert from random raw) reads back in Vireo
 *    exactly;
 *  - vireo-vdisk convert output compares equal under qemu-img.
 * Skips (77) if qemu-img is not installed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "disktest.h"
#include "tests/unit/t.h"
#include "vmx/disk/vdisk.h"

#define MB (1ull << 20)

static void run_ok(const char *what, const char *cmd)
{
	char *out = NULL;
	int st = dt_sh(&out, "%s", cmd);
	if (st != 0)
		T_FAIL("%s: exit %d: %s", what, st, out ? out : "");
	free(out);
}

#define QEMU_OK(what, ...)                                          \
	do {                                                        \
		char cmd_[2048];                                    \
		snprintf(cmd_, sizeof(cmd_), __VA_ARGS__);          \
		run_ok(what, cmd_);                                 \
	} while (0)

/* Writes n random patterns through Vireo into img, mirrored into raw. */
static void write_mirrored(const char *img, const char *raw, int n, uint64_t tag)
{
	char err[600];
	struct vdisk *d;
	int r = vdisk_open(&d, img, VDISK_FMT_AUTO, 0, err, sizeof(err));

	if (r) {
		T_FAIL("open %s: %s", img, err);
		return;
	}
	uint64_t cap = vdisk_capacity(d);
	int rfd = open(raw, O_RDWR | O_CREAT, 0644);
	T_ASSERT(rfd >= 0 && ftruncate(rfd, (off_t)cap) == 0);
	uint8_t *buf = malloc(512 * 1024);
	for (int i = 0; i < n; i++) {
		size_t len = 1 + dt_rand() % (512 * 1024);
		uint64_t off = dt_rand() % (cap - len);
		if (i % 3) {
			/* Mostly whole sectors, as a guest writes. */
			len = (len + 511) & ~511ul;
			off &= ~511ull;
		}
		dt_pattern(buf, len, tag + (uint64_t)i, off);
		T_EQ_I64(vdisk_pwrite(d, buf, len, off), 0);
		T_EQ_I64(pwrite(rfd, buf, len, (off_t)off), (int64_t)len);
		if (i % 50 == 49)
			T_EQ_I64(vdisk_flush(d), 0);
	}
	/* The first and last sectors too. */
	dt_pattern(buf, 512, tag, 0);
	T_EQ_I64(vdisk_pwrite(d, buf, 512, 0), 0);
	T_EQ_I64(pwrite(rfd, buf, 512, 0), 512);
	dt_pattern(buf, 512, tag, cap - 512);
	T_EQ_I64(vdisk_pwrite(d, buf, 512, cap - 512), 0);
	T_EQ_I64(pwrite(rfd, buf, 512, (off_t)(cap - 512)), 512);
	free(buf);
	close(rfd);
	T_EQ_I64(vdisk_close(d), 0);
}

static void check_and_compare(const char *img, const char *raw)
{
	QEMU_OK("qemu-img check", "qemu-img check -f vmdk '%s' 2>&1", img);
	QEMU_OK("qemu-img compare", "qemu-img compare -f vmdk -F raw '%s' '%s' 2>&1", img, raw);
	unsigned nw;
	T_EQ_I64(vdisk_check(img, VDISK_FMT_AUTO, NULL, NULL, &nw), 0);
}

static void test_qemu_made(const char *sub, const char *name)
{
	const char *img = dt_path(name);
	char raw[600];
	snprintf(raw, sizeof(raw), "%s.mirror", img);

	QEMU_OK("qemu-img create", "qemu-img create -q -f vmdk %s '%s' 96M 2>&1", sub, img);
	write_mirrored(img, raw, 300, 100);
	check_and_compare(img, raw);
	/* qemu-img writes on top; Vireo must still agree. */
	QEMU_OK("qemu-io write", "qemu-io -f vmdk -c 'write -P 0xa5 1M 300k' '%s' >/dev/null 2>&1", img);
	QEMU_OK("qemu-io write (mirror)", "qemu-io -f raw -c 'write -P 0xa5 1M 300k' '%s' >/dev/null 2>&1", raw);
	write_mirrored(img, raw, 100, 900);
	check_and_compare(img, raw);
}

static void test_vireo_made(enum vdisk_format fmt, const char *name)
{
	char err[600], raw[600];
	const char *img = dt_path(name);
	snprintf(raw, sizeof(raw), "%s.mirror", img);

	T_EQ_I64(vdisk_create(img, fmt, 80 * MB, err, sizeof(err)), 0);
	QEMU_OK("qemu-img check (empty)", "qemu-img check -f vmdk '%s' 2>&1", img);
	write_mirrored(img, raw, 300, 200);
	check_and_compare(img, raw);

	/* Grow; the raw mirror grows with zeros. */
	T_EQ_I64(vdisk_resize(img, 300 * MB, err, sizeof(err)), 0);
	T_EQ_I64(truncate(raw, 300 * MB), 0);
	char *out = NULL;
	dt_sh(&out, "qemu-img info -f vmdk '%s' 2>&1", img);
	T_CONTAINS(out, "(314572800 bytes)");
	free(out);
	write_mirrored(img, raw, 200, 300);
	check_and_compare(img, raw);
}

/* qemu-img fills a sparse VMDK; Vireo reads exactly the raw source. */
static void test_qemu_filled(void)
{
	const char *src = dt_path("src.raw"), *img = dt_path("qfilled.vmdk");
	char err[600];
	struct vdisk *d;
	uint64_t cap = 40 * MB;
	uint8_t *want = calloc(1, cap), *got = malloc(cap);

	/* Random data in scattered 64 KiB .. 1 MiB runs, zeros elsewhere. */
	for (int i = 0; i < 40; i++) {
		size_t len = 65536 + dt_rand() % MB;
		uint64_t off = dt_rand() % (cap - len);
		dt_pattern(want + off, len, 5000 + (uint64_t)i, off);
	}
	dt_patch(src, 0, want, cap);
	QEMU_OK("qemu-img convert", "qemu-img convert -f raw -O vmdk '%s' '%s' 2>&1", src, img);
	T_EQ_I64(vdisk_open(&d, img, VDISK_FMT_AUTO, VDISK_OPEN_RDONLY, err, sizeof(err)), 0);
	T_EQ_U64(vdisk_capacity(d), cap);
	T_EQ_I64(vdisk_pread(d, got, cap, 0), 0);
	T_ASSERT(memcmp(got, want, cap) == 0);
	vdisk_close(d);

	/* And back out through the tool, both ways. */
	const char *tool = getenv("VIREO_VDISK");
	if (tool) {
		const char *back = dt_path("back.raw"), *vm = dt_path("tool.vmdk");
		char cmd[2048];
		snprintf(cmd, sizeof(cmd), "%s convert -O sparse '%s' '%s' 2>&1", tool, src, vm);
		T_EQ_I64(dt_sh(NULL, "%s", cmd), 0);
		check_and_compare(vm, src);
		snprintf(cmd, sizeof(cmd), "%s convert -O raw '%s' '%s' 2>&1", tool, vm, back);
		T_EQ_I64(dt_sh(NULL, "%s", cmd), 0);
		T_EQ_I64(dt_sh(NULL, "cmp '%s' '%s' 2>&1", src, back), 0);
		T_EQ_I64(dt_sh(NULL, "%s check '%s' >/dev/null 2>&1", tool, vm), 0);
	}
	free(want);
	free(got);
}

int main(void)
{
	if (!dt_have_qemu_img()) {
		printf("qemu-img not installed (Debian qemu-utils): skipped\n");
		return 77;
	}
	dt_seed(7);
	test_qemu_made("", "qsparse.vmdk");
	test_qemu_made("-o subformat=monolithicFlat", "qflat.vmdk");
	test_vireo_made(VDISK_FMT_VMDK_SPARSE, "vsparse.vmdk");
	test_vireo_made(VDISK_FMT_VMDK_FLAT, "vflat.vmdk");
	test_qemu_filled();
	dt_cleanup();
	return T_DONE();
}

/*
 * fuzz_vmdk.c — the VMDK parsers: the text descriptor, and the sparse
 * header / grain directory / grain table validation.
 *
 * The first input byte picks a mode:
 *   0  descriptor text: whatever parses must render and parse again to the
 *      same extents;
 *   1  the input is a whole sparse file;
 *   2  a valid small sparse image (made once, with some grains written)
 *      patched at input-chosen bytes of its metadata.
 * In modes 1 and 2 an image that opens strictly must also take a write
 * and a flush, reopen strictly, and read the written bytes back: validation
 * may refuse, but whatever it accepts must stay consistent.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmx/disk/vmdk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t *tmpl;
static size_t tmpl_len;

static void fz_check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_vmdk: %s\n", what);
		abort();
	}
}

static void make_template(void)
{
	char dir[] = "/tmp/fuzz-vmdk-XXXXXX", path[64], err[256];
	struct vmdk_sparse *s;
	uint8_t buf[8192];

	fz_check(mkdtemp(dir) != NULL, "mkdtemp");
	snprintf(path, sizeof(path), "%s/t.vmdk", dir);
	/* 4 MiB with 4 KiB grains: 1024 grains in 2 tables. */
	fz_check(vmdk_sparse_create(path, 4 << 20, 8, err, sizeof(err)) == 0, err);
	int fd = open(path, O_RDWR);
	fz_check(fd >= 0 && vmdk_sparse_open(&s, fd, path, 0, NULL, NULL, NULL) == 0, "open template");
	memset(buf, 0x5a, sizeof(buf));
	struct iovec v = { buf, sizeof(buf) };
	for (uint64_t off = 0; off < (4 << 20); off += 600 * 1024)
		fz_check(vmdk_sparse_pwritev(s, off, &v, 1, sizeof(buf)) == 0, "template write");
	fz_check(vmdk_sparse_close(s) == 0, "template close");
	fd = open(path, O_RDONLY);
	off_t n = lseek(fd, 0, SEEK_END);
	tmpl = malloc((size_t)n);
	fz_check(tmpl && pread(fd, tmpl, (size_t)n, 0) == n, "read template");
	tmpl_len = (size_t)n;
	close(fd);
	unlink(path);
	rmdir(dir);
}

static void fuzz_desc(const uint8_t *data, size_t size)
{
	static struct vmdk_desc d, d2;
	static char out[1 << 16];
	char err[256];

	if (vmdk_desc_parse(&d, (const char *)data, size, err, sizeof(err)) != 0)
		return;
	int n = vmdk_desc_format(&d, out, sizeof(out));
	if (n < 0)
		return; /* too long to render in this buffer */
	fz_check(vmdk_desc_parse(&d2, out, (size_t)n, err, sizeof(err)) == 0, "rendered descriptor parses");
	fz_check(d2.nextents == d.nextents, "extent count survives");
	for (int i = 0; i < d.nextents; i++) {
		fz_check(d2.ext[i].sectors == d.ext[i].sectors, "extent size survives");
		fz_check(d2.ext[i].type == d.ext[i].type, "extent type survives");
		fz_check(!strcmp(d2.ext[i].file, d.ext[i].file), "extent file survives");
	}
}

static void fuzz_image(const uint8_t *img, size_t len)
{
	struct vmdk_sparse *s;
	unsigned nerr;
	uint8_t buf[3000], back[3000];
	int fd = memfd_create("fuzz-vmdk", 0);

	if (fd < 0)
		return;
	if (len && write(fd, img, len) != (ssize_t)len) {
		close(fd);
		return;
	}
	/* Everything reported, read-only: reads must not crash. */
	int dfd = dup(fd);
	if (vmdk_sparse_open(&s, dfd, "fuzz", VMDK_OPEN_RDONLY | VMDK_OPEN_ALL_ERRORS, NULL, NULL, &nerr) == 0) {
		struct vmdk_sparse_info in;
		vmdk_sparse_get_info(s, &in);
		struct iovec v = { buf, sizeof(buf) };
		for (uint64_t off = 0; off + sizeof(buf) <= in.capacity && off < (8u << 20); off += 100000)
			vmdk_sparse_preadv(s, off, &v, 1, sizeof(buf));
		vmdk_sparse_check_redundant(s, NULL, NULL);
		fz_check(vmdk_sparse_pwritev(s, 0, &v, 1, 1) == -EROFS, "read-only refuses writes");
		vmdk_sparse_close(s);
	} else {
		close(dfd);
	}
	/* Strict and writable: accepted images must stay consistent. */
	dfd = dup(fd);
	if (vmdk_sparse_open(&s, dfd, "fuzz", 0, NULL, NULL, NULL) != 0) {
		close(dfd);
		close(fd);
		return;
	}
	struct vmdk_sparse_info in;
	vmdk_sparse_get_info(s, &in);
	uint64_t off = in.capacity > sizeof(buf) ? (in.capacity - sizeof(buf)) / 2 : 0;
	size_t n = in.capacity < sizeof(buf) ? (size_t)in.capacity : sizeof(buf);
	for (size_t i = 0; i < n; i++)
		buf[i] = (uint8_t)(i * 7 + 1);
	struct iovec v = { buf, n };
	int w = vmdk_sparse_pwritev(s, off, &v, 1, n);
	int f = vmdk_sparse_close(s);
	if (w != 0 || f != 0) {
		close(fd);
		return; /* e.g. no room left below 2 TiB */
	}
	dfd = dup(fd);
	fz_check(vmdk_sparse_open(&s, dfd, "fuzz", VMDK_OPEN_RDONLY, NULL, NULL, NULL) == 0,
	         "an image we wrote reopens strictly");
	struct iovec bv = { back, n };
	fz_check(vmdk_sparse_preadv(s, off, &bv, 1, n) == 0 && !memcmp(back, buf, n),
	         "written bytes read back");
	vmdk_sparse_close(s);
	close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (!tmpl)
		make_template();
	switch (data[0] % 3) {
	case 0:
		fuzz_desc(data + 1, size - 1);
		break;
	case 1:
		fuzz_image(data + 1, size - 1);
		break;
	default: {
		/* (offset: 2 bytes, value) patches into the first 64 KiB of the template. */
		uint8_t *img = malloc(tmpl_len);
		memcpy(img, tmpl, tmpl_len);
		for (size_t i = 1; i + 3 <= size; i += 3) {
			size_t off = (size_t)data[i] << 8 | data[i + 1];
			if (off < tmpl_len)
				img[off] = data[i + 2];
		}
		fuzz_image(img, tmpl_len);
		free(img);
		break;
	}
	}
	return 0;
}

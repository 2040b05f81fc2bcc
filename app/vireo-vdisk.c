/*
 * vireo-vdisk — create, inspect, check, convert and grow disk images.
 *
 *   vireo-vdisk create [-t sparse|flat|raw] FILE SIZE
 *   vireo-vdisk info FILE
 *   vireo-vdisk check FILE
 *   vireo-vdisk convert [-O sparse|flat|raw] IN OUT
 *   vireo-vdisk resize FILE SIZE
 *
 * Input formats are found from the content (this is a tool run by the user,
 * not a VM reading a guest-written file).  Exit status: 0 success, 1 error,
 * 2 usage; check exits 1 if the image has errors.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "vmx/disk/vdisk.h"

#define CONVERT_CHUNK (1u << 20)

static int usage(void)
{
	fprintf(stderr,
	        "usage: vireo-vdisk create [-t sparse|flat|raw] FILE SIZE\n"
	        "       vireo-vdisk info FILE\n"
	        "       vireo-vdisk check FILE\n"
	        "       vireo-vdisk convert [-O sparse|flat|raw] IN OUT\n"
	        "       vireo-vdisk resize FILE SIZE\n"
	        "SIZE: bytes, or with a suffix K, M, G, T (powers of 1024)\n");
	return 2;
}

static int parse_type(const char *s, enum vdisk_format *out)
{
	if (!strcmp(s, "sparse") || !strcmp(s, "monolithicSparse") || !strcmp(s, "vmdk"))
		*out = VDISK_FMT_VMDK_SPARSE;
	else if (!strcmp(s, "flat") || !strcmp(s, "monolithicFlat"))
		*out = VDISK_FMT_VMDK_FLAT;
	else if (!strcmp(s, "raw"))
		*out = VDISK_FMT_RAW;
	else
		return -1;
	return 0;
}

static enum vdisk_format default_type(const char *path)
{
	size_t n = strlen(path);
	return n >= 5 && !strcasecmp(path + n - 5, ".vmdk") ? VDISK_FMT_VMDK_SPARSE : VDISK_FMT_RAW;
}

/* Leading "-t X" / "-O X": returns the index of the first operand. */
static int take_type(int argc, char **argv, int i, const char *flag, enum vdisk_format *fmt, bool *given)
{
	*given = false;
	if (i + 1 < argc && !strcmp(argv[i], flag)) {
		if (parse_type(argv[i + 1], fmt)) {
			fprintf(stderr, "vireo-vdisk: unknown type '%s'\n", argv[i + 1]);
			return -1;
		}
		*given = true;
		return i + 2;
	}
	return i;
}

static int cmd_create(int argc, char **argv)
{
	enum vdisk_format fmt = VDISK_FMT_VMDK_SPARSE;
	bool given;
	char err[600];
	uint64_t size;
	int i = take_type(argc, argv, 2, "-t", &fmt, &given);

	if (i < 0 || argc - i != 2)
		return usage();
	if (!given)
		fmt = default_type(argv[i]);
	if (vdisk_parse_size(argv[i + 1], &size) || size == 0) {
		fprintf(stderr, "vireo-vdisk: bad size '%s'\n", argv[i + 1]);
		return 2;
	}
	if (vdisk_create(argv[i], fmt, size, err, sizeof(err))) {
		fprintf(stderr, "vireo-vdisk: %s\n", err);
		return 1;
	}
	return 0;
}

static int cmd_info(int argc, char **argv)
{
	struct vdisk *d;
	struct vdisk_info in;
	char err[600];

	if (argc != 3)
		return usage();
	if (vdisk_open(&d, argv[2], VDISK_FMT_PROBE, VDISK_OPEN_RDONLY | VDISK_OPEN_RO_IF_CORRUPT, err,
	               sizeof(err))) {
		fprintf(stderr, "vireo-vdisk: %s\n", err);
		return 1;
	}
	vdisk_get_info(d, &in);
	printf("image: %s\n", argv[2]);
	printf("format: %s\n", vdisk_format_name(in.format));
	printf("create type: %s\n", in.create_type);
	printf("virtual size: %" PRIu64 " bytes (%.2f GiB)\n", in.capacity,
	       (double)in.capacity / (1u << 30));
	printf("allocated: %" PRIu64 " bytes\n", in.allocated);
	printf("disk usage: %" PRIu64 " bytes\n", in.file_bytes);
	if (in.grain_bytes)
		printf("grain size: %" PRIu64 " bytes\n", in.grain_bytes);
	printf("extents: %u\n", in.nextents);
	if (in.format != VDISK_FMT_RAW)
		printf("CID: %08x\n", in.cid);
	if (in.corrupt)
		printf("corrupt: yes (run 'vireo-vdisk check')\n");
	vdisk_close(d);
	return 0;
}

static void print_report(void *opaque, bool error, const char *msg)
{
	printf("%s: %s\n", error ? "ERROR" : "warning", msg);
}

static int cmd_check(int argc, char **argv)
{
	unsigned nwarn;

	if (argc != 3)
		return usage();
	int r = vdisk_check(argv[2], VDISK_FMT_PROBE, print_report, NULL, &nwarn);
	if (r < 0) {
		fprintf(stderr, "vireo-vdisk: %s: %s\n", argv[2], strerror(-r));
		return 1;
	}
	if (r == 0)
		printf("%s: no errors found%s", argv[2], nwarn ? "" : "\n");
	else
		printf("%s: %d error%s found", argv[2], r, r == 1 ? "" : "s");
	if (nwarn)
		printf(" (%u warning%s)", nwarn, nwarn == 1 ? "" : "s");
	if (r || nwarn)
		printf("\n");
	return r ? 1 : 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static int cmd_convert(int argc, char **argv)
{
	enum vdisk_format fmt = VDISK_FMT_VMDK_SPARSE;
	bool given;
	char err[600];
	struct vdisk *in, *out;
	int i = take_type(argc, argv, 2, "-O", &fmt, &given);

	if (i < 0 || argc - i != 2)
		return usage();
	if (!given)
		fmt = default_type(argv[i + 1]);
	if (vdisk_open(&in, argv[i], VDISK_FMT_PROBE, VDISK_OPEN_RDONLY, err, sizeof(err))) {
		fprintf(stderr, "vireo-vdisk: %s\n", err);
		return 1;
	}
	uint64_t cap = vdisk_capacity(in);
	if (vdisk_create(argv[i + 1], fmt, cap, err, sizeof(err)) ||
	    vdisk_open(&out, argv[i + 1], fmt == VDISK_FMT_RAW ? VDISK_FMT_RAW : VDISK_FMT_VMDK, 0, err,
	               sizeof(err))) {
		fprintf(stderr, "vireo-vdisk: %s\n", err);
		vdisk_close(in);
		return 1;
	}
	uint8_t *buf = malloc(CONVERT_CHUNK);
	int r = buf ? 0 : -ENOMEM;
	for (uint64_t off = 0; !r && off < cap; off += CONVERT_CHUNK) {
		size_t n = cap - off < CONVERT_CHUNK ? (size_t)(cap - off) : CONVERT_CHUNK;
		r = vdisk_pread(in, buf, n, off);
		/* Zero blocks stay unallocated (the new image reads zeros there already). */
		for (size_t k = 0; !r && k < n; k += 65536) {
			size_t l = n - k < 65536 ? n - k : 65536;
			if (!all_zero(buf + k, l))
				r = vdisk_pwrite(out, buf + k, l, off + k);
		}
	}
	free(buf);
	int rc = vdisk_close(out);
	vdisk_close(in);
	if (r || rc) {
		fprintf(stderr, "vireo-vdisk: convert %s -> %s: %s\n", argv[i], argv[i + 1],
		        strerror(-(r ? r : rc)));
		return 1;
	}
	return 0;
}

static int cmd_resize(int argc, char **argv)
{
	char err[600];
	uint64_t size;

	if (argc != 4)
		return usage();
	if (vdisk_parse_size(argv[3], &size) || size == 0) {
		fprintf(stderr, "vireo-vdisk: bad size '%s'\n", argv[3]);
		return 2;
	}
	if (vdisk_resize(argv[2], size, err, sizeof(err))) {
		fprintf(stderr, "vireo-vdisk: %s\n", err);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	if (!strcmp(argv[1], "create"))
		return cmd_create(argc, argv);
	if (!strcmp(argv[1], "info"))
		return cmd_info(argc, argv);
	if (!strcmp(argv[1], "check"))
		return cmd_check(argc, argv);
	if (!strcmp(argv[1], "convert"))
		return cmd_convert(argc, argv);
	if (!strcmp(argv[1], "resize"))
		return cmd_resize(argc, argv);
	return usage();
}

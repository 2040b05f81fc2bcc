/*
 * bench_vdisk.c — 4 KiB read and write throughput of the disk library on a
 * monolithicSparse VMDK made by qemu-img, against `qemu-img bench` on an
 * identical image with the same pattern: COUNT requests, 64 or 1 in flight,
 * host page cache on (qemu-img bench's default cache=writeback, aio=threads).
 *
 * "Sequential" walks 4 KiB steps from offset 0; "strided" (qemu-img bench
 * has no random mode) steps 1009 x 4 KiB through the 1 GiB image, wrapping,
 * which touches a new grain almost every request — the random case for a
 * sparse format.  Write runs start from a fresh image (so they allocate);
 * read runs read an image the matching write run filled.
 *
 * After each write run, qemu-img check and compare must find the two
 * images identical (same requests, same data).
 * Each case runs ROUNDS times (best kept) and prints Vireo's IOPS, qemu's,
 * and the ratio.  Skips (77) without qemu-img.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vmx/disk/dio.h"
#include "vmx/disk/vdisk.h"

#define IMG_SIZE (1ull << 30)
#define BS       4096u
#define MAXDEPTH 64
#define STRIDE   (1009ull * BS)

static unsigned count = 20000;
static int depth = MAXDEPTH;
static char dir[256];

struct run {
	pthread_mutex_t lock;
	pthread_cond_t cv;
	struct vdisk *d;
	struct dio_pool *pool;
	enum dio_op op;
	uint64_t step, next_off;
	unsigned submitted, completed, failed;
	struct dio_req req[MAXDEPTH];
	struct iovec iov[MAXDEPTH];
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void issue(struct run *r, struct dio_req *q)
{
	/* Called with r->lock held. */
	q->offset = r->next_off;
	r->next_off = (r->next_off + r->step) % IMG_SIZE;
	r->submitted++;
	dio_submit(r->pool, q);
}

static void done(struct dio_req *q, int ret)
{
	struct run *r = q->opaque;
	pthread_mutex_lock(&r->lock);
	if (ret)
		r->failed++;
	r->completed++;
	if (r->submitted < count)
		issue(r, q);
	else if (r->completed == count)
		pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->lock);
}

static int sh(const char *cmd, char *out, size_t cap)
{
	FILE *f = popen(cmd, "r");
	size_t n = 0;
	if (!f)
		return -1;
	if (out) {
		n = fread(out, 1, cap - 1, f);
		out[n] = 0;
	} else {
		char tmp[512];
		while (fread(tmp, 1, sizeof(tmp), f) > 0)
			;
	}
	return pclose(f);
}

static void fresh_image(const char *path)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "rm -f '%s' && qemu-img create -q -f vmdk '%s' 1G", path, path);
	if (sh(cmd, NULL, 0) != 0) {
		fprintf(stderr, "bench_vdisk: qemu-img create failed\n");
		exit(1);
	}
}

/* Requests per second through the library, or a negative value on error. */
static double vireo_run(const char *path, enum dio_op op, uint64_t step)
{
	static struct run r;
	static char bufs[MAXDEPTH][BS] __attribute__((aligned(4096)));
	char err[600];

	memset(&r, 0, sizeof(r));
	pthread_mutex_init(&r.lock, NULL);
	pthread_cond_init(&r.cv, NULL);
	if (vdisk_open(&r.d, path, VDISK_FMT_AUTO, 0, err, sizeof(err))) {
		fprintf(stderr, "bench_vdisk: %s\n", err);
		return -1;
	}
	r.pool = dio_pool_new(8);
	r.op = op;
	r.step = step;
	for (int i = 0; i < MAXDEPTH; i++) {
		memset(bufs[i], 0xa5, BS); /* qemu-img bench --pattern=0xa5 */
		r.iov[i] = (struct iovec){ bufs[i], BS };
		r.req[i] = (struct dio_req){ op, r.d, 0, &r.iov[i], 1, done, &r, NULL };
	}
	double t0 = now();
	pthread_mutex_lock(&r.lock);
	for (int i = 0; i < depth && r.submitted < count; i++)
		issue(&r, &r.req[i]);
	while (r.completed < count)
		pthread_cond_wait(&r.cv, &r.lock);
	pthread_mutex_unlock(&r.lock);
	double t = now() - t0;
	dio_pool_free(r.pool);
	vdisk_close(r.d);
	return r.failed ? -1 : count / t;
}

static double qemu_run(const char *path, bool write, uint64_t step)
{
	char cmd[1024], out[4096];
	snprintf(cmd, sizeof(cmd), "qemu-img bench -f vmdk -c %u -d %d -s %u -S %llu --pattern=0xa5 %s '%s' 2>&1", count,
	         depth, BS, (unsigned long long)step, write ? "-w" : "", path);
	if (sh(cmd, out, sizeof(out)) != 0) {
		fprintf(stderr, "bench_vdisk: %s\n%s", cmd, out);
		return -1;
	}
	const char *p = strstr(out, "Run completed in ");
	double secs;
	if (!p || sscanf(p, "Run completed in %lf", &secs) != 1 || secs <= 0)
		return -1;
	return count / secs;
}

struct result {
	const char *name;
	int depth;
	double vireo, qemu;
};

int main(int argc, char **argv)
{
	const char *t = getenv("TMPDIR");
	int rounds = getenv("VIREO_BENCH_ROUNDS") ? atoi(getenv("VIREO_BENCH_ROUNDS")) : 2;
	if (argc > 1)
		count = (unsigned)strtoul(argv[1], NULL, 10);
	if (sh("qemu-img --version", NULL, 0) != 0) {
		printf("qemu-img not installed: skipped\n");
		return 77;
	}
	snprintf(dir, sizeof(dir), "%s/vireo-bench-XXXXXX", t ? t : "/tmp");
	if (!mkdtemp(dir))
		return 1;
	char vimg[300], qimg[300];
	snprintf(vimg, sizeof(vimg), "%s/vireo.vmdk", dir);
	snprintf(qimg, sizeof(qimg), "%s/qemu.vmdk", dir);

	static const char *names[4] = { "seq write", "seq read", "strided write", "strided read" };
	struct result res[8];
	for (int i = 0; i < 8; i++)
		res[i] = (struct result){ names[i % 4], i < 4 ? MAXDEPTH : 1, 0, 0 };
	for (int round = 0; round < rounds; round++) {
		for (int k = 0; k < 4; k++) {
			int c = k % 2;
			depth = k < 2 ? MAXDEPTH : 1;
			uint64_t step = c ? STRIDE : BS;
			struct result *w = &res[(k / 2) * 4 + c * 2], *rd = w + 1;
			double v, q;
			fresh_image(vimg);
			fresh_image(qimg);
			v = vireo_run(vimg, DIO_WRITE, step);
			q = qemu_run(qimg, true, step);
			if (v < 0 || q < 0)
				return 1;
			/* Same requests, same data: the two images must read the same. */
			char cmd[1024];
			snprintf(cmd, sizeof(cmd), "qemu-img check -q '%s' && qemu-img compare -q '%s' '%s'",
			         vimg, vimg, qimg);
			if (sh(cmd, NULL, 0) != 0) {
				fprintf(stderr, "bench_vdisk: %s failed\n", cmd);
				return 1;
			}
			if (v > w->vireo)
				w->vireo = v;
			if (q > w->qemu)
				w->qemu = q;
			v = vireo_run(vimg, DIO_READ, step);
			q = qemu_run(qimg, false, step);
			if (v < 0 || q < 0)
				return 1;
			if (v > rd->vireo)
				rd->vireo = v;
			if (q > rd->qemu)
				rd->qemu = q;
		}
	}
	printf("VMDK monolithicSparse (qemu-img made), %u x 4 KiB requests, best of %d\n", count, rounds);
	printf("%-15s %5s %12s %12s %8s\n", "case", "depth", "vireo IOPS", "qemu IOPS", "ratio");
	for (int i = 0; i < 8; i++)
		printf("%-15s %5d %12.0f %12.0f %8.2f\n", res[i].name, res[i].depth, res[i].vireo,
		       res[i].qemu, res[i].vireo / res[i].qemu);
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	sh(cmd, NULL, 0);
	return 0;
}

/*
 * test_crash.c — kill -9 in the middle of writing.
 *
 * A child opens a sparse VMDK and writes random patterns at random offsets,
 * flushing now and then; before each write it logs (offset, length, tag) in
 * shared memory, and after each flush it records how many writes the flush
 * covered.  The parent kills it with SIGKILL at a random moment, then:
 *   - qemu-img check accepts the image, and so does vdisk_check;
 *   - every sector holds what the writes covered by the last completed flush
 *     put there, or the data of a write issued after that flush;
 * and the next round goes on from the image as it was found (so reopening
 * an image left by a crash is tested too).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "disktest.h"
#include "tests/unit/t.h"
#include "vmx/disk/vdisk.h"

#define CAP     (32ull << 20)
#define MAXREC  200000
#define ROUNDS  8

struct rec {
	uint64_t off, tag;
	uint32_t len;
};

struct shm {
	uint64_t issued;   /* records written to the log */
	uint64_t flushed;  /* writes covered by the last completed flush */
	struct rec rec[MAXREC];
};

static void child(struct shm *m, const char *img, uint64_t round)
{
	char err[600];
	struct vdisk *d;
	uint8_t *buf = malloc(256 * 1024);

	dt_seed(round * 7919 + 1);
	if (vdisk_open(&d, img, VDISK_FMT_AUTO, 0, err, sizeof(err))) {
		fprintf(stderr, "child: %s\n", err);
		_exit(2);
	}
	for (uint64_t i = 0; i < MAXREC; i++) {
		uint32_t len = (uint32_t)(1 + dt_rand() % 512) * 512;
		uint64_t off = dt_rand() % (CAP - len) & ~511ull;
		struct rec r = { off, round << 32 | i, len };
		m->rec[i] = r;
		__atomic_store_n(&m->issued, i + 1, __ATOMIC_SEQ_CST);
		dt_pattern(buf, len, r.tag, off);
		if (vdisk_pwrite(d, buf, len, off))
			_exit(3);
		if (dt_rand() % 6 == 0) {
			if (vdisk_flush(d))
				_exit(4);
			__atomic_store_n(&m->flushed, i + 1, __ATOMIC_SEQ_CST);
		}
	}
	_exit(0);
}

static void report(void *o, bool e, const char *msg)
{
	if (e)
		fprintf(stderr, "  vdisk_check: %s\n", msg);
}

int main(void)
{
	if (!dt_have_qemu_img()) {
		printf("qemu-img not installed (Debian qemu-utils): skipped\n");
		return 77;
	}
	char err[600];
	const char *img = dt_path("crash.vmdk");
	struct shm *m = mmap(NULL, sizeof(*m), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	uint8_t *base = calloc(1, CAP), *exp = malloc(CAP), *got = malloc(CAP), *sec = malloc(512);
	uint64_t total_flushed = 0, total_issued = 0;

	T_ASSERT(m != MAP_FAILED);
	T_EQ_I64(vdisk_create(img, VDISK_FMT_VMDK_SPARSE, CAP, err, sizeof(err)), 0);
	srand((unsigned)time(NULL));
	for (uint64_t round = 1; round <= ROUNDS; round++) {
		memset(m, 0, sizeof(*m));
		pid_t pid = fork();
		if (pid == 0)
			child(m, img, round);
		/* Let it run 20..420 ms, then kill -9. */
		struct timespec ts = { 0, (long)(20 + rand() % 400) * 1000000L };
		nanosleep(&ts, NULL);
		kill(pid, SIGKILL);
		int st;
		waitpid(pid, &st, 0);
		if (!WIFSIGNALED(st)) {
			T_FAIL("round %llu: child exited with %d before the kill", (unsigned long long)round,
			       WEXITSTATUS(st));
			break;
		}
		uint64_t issued = m->issued, flushed = m->flushed;
		total_issued += issued;
		total_flushed += flushed;

		char *out = NULL;
		int q = dt_sh(&out, "qemu-img check -f vmdk '%s' 2>&1", img);
		if (q != 0)
			T_FAIL("round %llu: qemu-img check: exit %d: %s", (unsigned long long)round, q, out);
		free(out);
		T_EQ_I64(vdisk_check(img, VDISK_FMT_AUTO, report, NULL, NULL), 0);

		struct vdisk *d;
		T_EQ_I64(vdisk_open(&d, img, VDISK_FMT_AUTO, VDISK_OPEN_RDONLY, err, sizeof(err)), 0);
		T_EQ_I64(vdisk_pread(d, got, CAP, 0), 0);
		vdisk_close(d);

		memcpy(exp, base, CAP);
		for (uint64_t i = 0; i < flushed; i++) {
			const struct rec *r = &m->rec[i];
			dt_pattern(exp + r->off, r->len, r->tag, r->off);
		}
		uint64_t bad = 0;
		for (uint64_t s = 0; s < CAP; s += 512) {
			if (!memcmp(got + s, exp + s, 512))
				continue;
			bool ok = false;
			/* Unflushed writes may have landed: the newest first. */
			for (uint64_t i = issued; i-- > flushed && !ok;) {
				const struct rec *r = &m->rec[i];
				if (s < r->off || s >= r->off + r->len)
					continue;
				dt_pattern(sec, 512, r->tag, s);
				ok = !memcmp(got + s, sec, 512);
			}
			if (!ok && bad++ < 5)
				T_FAIL("round %llu: sector %llu holds neither the flushed data nor a later write",
				       (unsigned long long)round, (unsigned long long)(s / 512));
		}
		T_EQ_U64(bad, 0);
		memcpy(base, got, CAP);
		printf("round %llu: %llu writes issued, %llu covered by the last flush: %s\n",
		       (unsigned long long)round, (unsigned long long)issued, (unsigned long long)flushed,
		       bad ? "LOST DATA" : "ok");
		fflush(stdout);
	}
	T_ASSERT(total_flushed > 0);
	T_ASSERT(total_issued > total_flushed);
	munmap(m, sizeof(*m));
	free(base);
	free(exp);
	free(got);
	free(sec);
	dt_cleanup();
	return T_DONE();
}

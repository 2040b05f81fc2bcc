/*
 * bench_rpc.c — host-side cost of the guest tools channels, no guest:
 *   1. RPCI round trips per second through the GuestRPC state machine and
 *      the tools handlers (info-get of a short value), low bandwidth vs
 *      high bandwidth, and for a 16 KiB reply; the guest side is simulated
 *      by tests/tools/rpcguest.h with the register values open-vm-tools
 *      uses, so this is the ceiling the host puts on a guest (every backdoor
 *      call additionally costs one VM exit in a real guest);
 *   2. the balloon inflate rate: BATCHED_LOCK of 512 resident pages at a
 *      time on 1 GiB of memfd guest RAM until 256 MiB are locked, in MiB/s,
 *      against a plain madvise(MADV_REMOVE) of the same memory measured in
 *      the same run (the ratio shows the protocol's overhead); plus how
 *      much of it really left the host (mincore).
 * Usage: bench_rpc [SECONDS_PER_CASE]   (default 1)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "tests/tools/rpcguest.h"
#include "vmx/dev/balloon.h"
#include "vmx/mem.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double rpc_rate(struct tools *t, bool hb, const char *req, double secs, size_t *bytes)
{
	struct rg_chan c;
	tools_core_set_hb(t, hb, hb);
	if (!rg_open(t, &c, GRPC_PROTO_RPCI))
		return -1;
	long n = 0;
	double t0 = now_s(), t1;
	do {
		for (int i = 0; i < 64; i++) {
			char *r = rg_rpci(t, &c, req);
			if (!r || r[0] != '1') {
				fprintf(stderr, "bench_rpc: RPCI failed: %s\n", r ? r : "(channel)");
				free(r);
				return -1;
			}
			*bytes = strlen(r);
			free(r);
			n++;
		}
		t1 = now_s();
	} while (t1 - t0 < secs);
	rg_close(t, &c);
	return (double)n / (t1 - t0);
}

static void bench_rpc_cases(double secs)
{
	struct tools *t = tools_core_new(NULL);
	struct rg_chan c;
	if (!t || !rg_open(t, &c, GRPC_PROTO_RPCI)) {
		fprintf(stderr, "bench_rpc: no tools core\n");
		exit(1);
	}
	char *big = malloc(16384 + 64);
	int k = snprintf(big, 64, "info-set guestinfo.big ");
	memset(big + k, 'x', 16384);
	big[k + 16384] = 0;
	free(rg_rpci(t, &c, "info-set guestinfo.small 42"));
	free(rg_rpci(t, &c, big));
	rg_close(t, &c);
	free(big);

	size_t bytes = 0;
	double lb = rpc_rate(t, false, "info-get guestinfo.small", secs, &bytes);
	double hb = rpc_rate(t, true, "info-get guestinfo.small", secs, &bytes);
	printf("rpc: info-get (%zu-byte reply): LB %.0f round trips/s, HB %.0f round trips/s "
	       "(host only; LB = %zu backdoor calls each)\n", bytes, lb, hb,
	       1 + (sizeof("info-get guestinfo.small") + 2) / 4 + 1 + (bytes + 3) / 4 + 1);
	lb = rpc_rate(t, false, "info-get guestinfo.big", secs, &bytes);
	hb = rpc_rate(t, true, "info-get guestinfo.big", secs, &bytes);
	printf("rpc: info-get (%zu-byte reply): LB %.0f/s (%.1f MB/s), HB %.0f/s (%.1f MB/s), "
	       "HB/LB %.1fx\n", bytes, lb, lb * (double)bytes / 1e6, hb, hb * (double)bytes / 1e6,
	       hb / lb);
	tools_core_free(t);
}

static unsigned long resident_pages(uint8_t *p, size_t len)
{
	size_t n = len / 4096;
	unsigned char *v = malloc(n);
	unsigned long r = 0;
	if (v && mincore(p, len, v) == 0)
		for (size_t i = 0; i < n; i++)
			r += v[i] & 1;
	free(v);
	return r;
}

static void bench_balloon(void)
{
	const uint64_t ram = 1ull << 30, target = 256ull << 20;
	struct gmem mem;
	char err[256];
	memset(&mem, 0, sizeof(mem));
	if (gmem_init(&mem, ram, err, sizeof(err)) != 0) {
		fprintf(stderr, "bench_rpc: gmem_init: %s\n", err);
		exit(1);
	}
	/* Make the 256 MiB from 256 MiB up resident, as a guest's used pages are. */
	uint8_t *base = gmem_ptr(&mem, 256ull << 20, target);
	memset(base, 0x5A, target);
	unsigned long before = resident_pages(base, target);

	struct balloon *b = balloon_core_new(&mem);
	struct balloon_regs r = { .eax = BALLOON_MAGIC, .ecx = BALLOON_CMD_START, .rbx = 0x3E };
	balloon_core_cmd(b, &r);
	balloon_core_set_target(b, target / 4096);
	uint64_t *batch = gmem_ptr(&mem, 4096, 4096);
	uint64_t pfn = (256ull << 20) / 4096, done = 0;
	double t0 = now_s();
	while (done < target / 4096) {
		for (unsigned i = 0; i < 512; i++)
			batch[i] = (pfn + done + i) << 12;
		r = (struct balloon_regs){ .eax = BALLOON_MAGIC, .ecx = BALLOON_CMD_BATCHED_LOCK,
		                           .rbx = 1, .rsi = 512 };
		balloon_core_cmd(b, &r);
		if (r.eax != 0) {
			fprintf(stderr, "bench_rpc: batch failed: %u\n", r.eax);
			exit(1);
		}
		done += 512;
	}
	double t_lock = now_s() - t0;
	unsigned long after = resident_pages(base, target);

	/* The same amount with bare madvise, the floor for dropping memory. */
	uint8_t *again = gmem_ptr(&mem, 512ull << 20, target);
	memset(again, 0x5A, target);
	t0 = now_s();
	for (uint64_t off = 0; off < target; off += 2ull << 20)
		madvise(again + off, 2ull << 20, MADV_REMOVE);
	double t_raw = now_s() - t0;
	double mib = (double)(target >> 20);
	printf("balloon: inflate %.0f MiB in 512-page batches: %.0f MiB/s (bare MADV_REMOVE in 2 MiB "
	       "steps: %.0f MiB/s, ratio %.2f); resident %lu -> %lu pages\n", mib, mib / t_lock,
	       mib / t_raw, t_raw / t_lock, before, after);
	balloon_core_free(b);
	gmem_destroy(&mem);
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 1.0;
	if (secs <= 0)
		secs = 1.0;
	bench_rpc_cases(secs);
	bench_balloon();
	return 0;
}

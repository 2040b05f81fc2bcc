/*
 * vireo-rpc — send one RPCI command to the host and print the reply.
 *
 *   vireo-rpc [--lb] [--repeat N] 'info-get guestinfo.x'
 *   vireo-rpc --check        is the backdoor there? (prints version, product)
 *
 * Like vmware-rpctool: the reply without its "1 " prefix on stdout and exit
 * 0; a "0 " reply on stderr and exit 1; no backdoor: exit 2.  --lb turns the
 * high-bandwidth path off; --repeat sends the command N times on one channel
 * and prints the round trips per second (a benchmark).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "lib/vbackdoor.h"
#include "lib/vrpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(void)
{
	fprintf(stderr, "usage: vireo-rpc [--lb] [--repeat N] 'COMMAND [ARGS]'\n"
	                "       vireo-rpc --check\n");
	exit(2);
}

int main(int argc, char **argv)
{
	bool lb = false, check = false;
	long repeat = 0;
	int i = 1;
	for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		if (strcmp(argv[i], "--lb") == 0)
			lb = true;
		else if (strcmp(argv[i], "--check") == 0)
			check = true;
		else if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc)
			repeat = strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		} else
			usage();
	}
	if (getuid() == 0)
		vbd_ioperm();   /* for KVM hosts that do not forward ring-3 backdoor I/O */
	uint32_t version = 0, product = 0;
	if (!vbd_probe(&version, &product)) {
		fprintf(stderr, "vireo-rpc: no VMware backdoor: must be run inside a virtual machine\n");
		return 2;
	}
	if (check) {
		printf("backdoor version %u, product %u\n", version, product);
		return 0;
	}
	if (i != argc - 1)
		usage();
	const char *req = argv[i];
	struct vrpc_chan ch;
	if (!vrpc_open(&ch, VRPC_PROTO_RPCI)) {
		fprintf(stderr, "vireo-rpc: the host refused to open an RPCI channel\n");
		return 2;
	}
	ch.use_hb = !lb;
	char *reply = NULL;
	size_t n = 0;
	if (repeat > 0) {
		double t0 = now_s();
		for (long k = 0; k < repeat; k++) {
			free(reply);
			reply = NULL;
			if (!vrpc_call(&ch, req, strlen(req), &reply, &n)) {
				fprintf(stderr, "vireo-rpc: channel failure at round trip %ld\n", k);
				vrpc_close(&ch);
				return 2;
			}
		}
		double dt = now_s() - t0;
		printf("%ld round trips in %.3f s: %.0f per second (%s)\n", repeat, dt, (double)repeat / dt,
		       ch.hb_used ? "high bandwidth used" : "low bandwidth");
		free(reply);
		vrpc_close(&ch);
		return 0;
	}
	bool ok = vrpc_call(&ch, req, strlen(req), &reply, &n);
	vrpc_close(&ch);
	if (!ok) {
		fprintf(stderr, "vireo-rpc: channel failure\n");
		return 2;
	}
	/* Strip the two-character status prefix; anything else is a protocol error. */
	if (n < 2 || (reply[0] != '0' && reply[0] != '1') || reply[1] != ' ') {
		fprintf(stderr, "vireo-rpc: invalid reply format: %.*s\n", (int)n, reply);
		free(reply);
		return 2;
	}
	bool good = reply[0] == '1';
	FILE *f = good ? stdout : stderr;
	fwrite(reply + 2, 1, n - 2, f);
	fputc('\n', f);
	free(reply);
	return good ? 0 : 1;
}

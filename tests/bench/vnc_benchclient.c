/*
 * vnc-benchclient — a VNC client (libvncclient: Raw, Hextile, ZRLE, Tight)
 * for bench_vnc.py.  It keeps an incremental update request outstanding,
 * decodes everything, and answers commands on stdin:
 *
 *   wait X Y RRGGBB     reply "seen T BYTES" once an update decoded after
 *                       this command shows RRGGBB at (X, Y) (T: CLOCK_MONOTONIC seconds
 *                       when the update carrying it was decoded; BYTES:
 *                       bytes received from the server so far, TCP_INFO)
 *                       ("lost T BYTES" after 20 s without it)
 *   quit
 *
 *   vnc-benchclient PORT ENCODING [QUALITY]
 * ENCODING: raw, hextile, zrle, tight (JPEG at QUALITY 0-9 when given,
 * lossless otherwise).  Prints "READY W H" when connected.
 */
#define _GNU_SOURCE 1
#include <netinet/in.h>
#include <linux/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <rfb/rfbclient.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static unsigned long long bytes_in(rfbClient *cl)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	if (getsockopt(cl->sock, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
		return 0;
	return (unsigned long long)ti.tcpi_bytes_received;
}

static uint32_t pixel_at(rfbClient *cl, int x, int y)
{
	uint32_t p;

	if (x < 0 || y < 0 || x >= cl->width || y >= cl->height)
		return 0xFFFFFFFFu;
	memcpy(&p, cl->frameBuffer + ((size_t)y * (size_t)cl->width + (size_t)x) * 4, 4);
	return ((p >> cl->format.redShift) & 0xFF) << 16 | ((p >> cl->format.greenShift) & 0xFF) << 8 |
	       ((p >> cl->format.blueShift) & 0xFF);
}

static int close_to(uint32_t a, uint32_t b, int tol)
{
	for (int s = 0; s < 24; s += 8) {
		int d = (int)((a >> s) & 0xFF) - (int)((b >> s) & 0xFF);
		if (d > tol || d < -tol)
			return 0;
	}
	return 1;
}

static unsigned long updates;   /* framebuffer updates decoded so far */

static void finished_update(rfbClient *cl)
{
	(void)cl;
	updates++;
}

static void quiet_log(const char *fmt, ...)
{
	(void)fmt;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: vnc-benchclient PORT raw|hextile|zrle|tight [QUALITY]\n");
		return 2;
	}
	rfbClientLog = quiet_log;
	rfbClient *cl = rfbGetClient(8, 3, 4);
	if (!cl)
		return 1;
	cl->serverHost = strdup("127.0.0.1");
	cl->serverPort = atoi(argv[1]);
	cl->appData.encodingsString = strdup(argv[2]);
	cl->appData.compressLevel = 1;
	cl->appData.enableJPEG = argc > 3;
	cl->appData.qualityLevel = argc > 3 ? atoi(argv[3]) : 9;
	cl->appData.useRemoteCursor = TRUE;
	int tol = argc > 3 ? 48 : 0;
	cl->FinishedFrameBufferUpdate = finished_update;
	if (!rfbInitClient(cl, NULL, NULL)) {
		fprintf(stderr, "vnc-benchclient: cannot connect to port %s\n", argv[1]);
		return 1;
	}
	printf("READY %d %d\n", cl->width, cl->height);
	fflush(stdout);

	int wx = -1, wy = -1;
	uint32_t want = 0;
	unsigned long since = 0;
	double wait_start = 0;
	char line[256];
	for (;;) {
		struct pollfd p[2] = { { .fd = 0, .events = POLLIN }, { .fd = cl->sock, .events = POLLIN } };
		if (poll(p, 2, 1000) < 0)
			break;
		/* The command first: the write it announces cannot have been
		 * made before it was sent, so its update comes after it. */
		if (p[0].revents & POLLIN) {
			if (!fgets(line, sizeof(line), stdin) || !strncmp(line, "quit", 4))
				break;
			unsigned x, y, c;
			if (sscanf(line, "wait %u %u %x", &x, &y, &c) == 3) {
				wx = (int)x;
				wy = (int)y;
				want = c;
				since = updates;
				wait_start = now();
			}
		}
		if (p[1].revents || cl->buffered) {
			if (!HandleRFBServerMessage(cl)) {
				fprintf(stderr, "vnc-benchclient: connection lost\n");
				return 1;
			}
			/* Whole messages may sit in libvncclient's buffer. */
			while (cl->buffered > 0 && HandleRFBServerMessage(cl))
				;
		}
		/* Only an update decoded after the command counts: the colour may
		 * be close enough (JPEG) from an earlier frame. */
		if (wx >= 0 && updates > since && close_to(pixel_at(cl, wx, wy), want, tol)) {
			printf("seen %.6f %llu\n", now(), bytes_in(cl));
			fflush(stdout);
			wx = -1;
		} else if (wx >= 0 && now() - wait_start > 20) {
			printf("lost %.6f %llu\n", now(), bytes_in(cl));
			fflush(stdout);
			wx = -1;
		}
	}
	rfbClientCleanup(cl);
	return 0;
}

/*
 * vnc-testserver — the MKS with its VNC back end and a buffer standing in
 * for a display device, driven from stdin, reporting input on stdout; the
 * peer tests (test_vnc_peer.py, bench_vnc) connect real VNC clients to it.
 *
 *   vnc-testserver PORT [--password PW] [--abs] [--size WxH]
 * stdout: "READY", then one line per input event the MKS routes:
 *   key SCANCODE 0|1          rel DX DY DZ BUTTONS          abs X Y W H BUTTONS
 * stdin, one command a line:
 *   leds N                    keyboard LEDs from the "guest"
 *   fill RRGGBB X Y W H       draw and report damage
 *   copy SX SY DX DY W H      move pixels and report a copy
 *   resize W H                new mode (pattern redrawn)
 *   cursor                    define a 16x16 cursor
 *   frames N X Y W H          N frames: fill the rectangle with a new colour each,
 *                             one damage each, as fast as the MKS takes them
 *   quit
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mks/mks_int.h"
#include "vmx/config.h"

static struct mks *m;
static uint8_t *vram;
static struct mks_scanout so;
static bool abs_mode;

static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
}

static void k_key(void *o, uint32_t sc, bool down)
{
	out("key 0x%x %d\n", sc, down ? 1 : 0);
}

static void k_rel(void *o, int dx, int dy, int dz, unsigned b)
{
	out("rel %d %d %d %u\n", dx, dy, dz, b);
}

static bool k_abs(void *o, int32_t x, int32_t y, uint32_t w, uint32_t h, unsigned b, int wheel)
{
	if (!abs_mode)
		return false;
	out("abs %d %d %u %u %u %d\n", x, y, w, h, b, wheel);
	return true;
}

static const struct mks_input_ops kops = { .key = k_key };
static const struct mks_input_ops mops = { .rel = k_rel };
static const struct mks_input_ops aops = { .abs = k_abs };

/* Eight vertical bars in the top half, 64x64 checks below: large areas survive JPEG. */
static uint32_t pattern(uint32_t x, uint32_t y, uint32_t w, uint32_t h)
{
	static const uint32_t bars[8] = {
		0xFFFFFF, 0xFFFF00, 0x00FFFF, 0x00FF00, 0xFF00FF, 0xFF0000, 0x0000FF, 0x000000,
	};
	if (y < h / 2)
		return bars[(x * 8) / w];
	return ((x / 64) + (y / 64)) % 2 ? 0x203040 : 0xE0C0A0;
}

static void set_mode(uint32_t w, uint32_t h)
{
	free(vram);
	vram = malloc((size_t)w * h * 4);
	for (uint32_t y = 0; y < h; y++)
		for (uint32_t x = 0; x < w; x++)
			((uint32_t *)vram)[(size_t)y * w + x] = pattern(x, y, w, h);
	memset(&so, 0, sizeof(so));
	so.base = vram;
	so.width = w;
	so.height = h;
	so.stride = w * 4;
	so.format = MKS_FMT_XRGB8888;
	if (mks_scanout_set(m, &so) != 0) {
		fprintf(stderr, "vnc-testserver: scanout refused\n");
		exit(1);
	}
}

static void fill(uint32_t c, uint32_t x, uint32_t y, uint32_t w, uint32_t h)
{
	for (uint32_t j = y; j < y + h && j < so.height; j++)
		for (uint32_t i = x; i < x + w && i < so.width; i++)
			((uint32_t *)vram)[(size_t)j * so.width + i] = c;
}

int main(int argc, char **argv)
{
	char cfgtext[512], err[512], line[256];
	const char *pw = NULL;
	uint32_t w = 640, h = 480;

	if (argc < 2) {
		fprintf(stderr, "usage: vnc-testserver PORT [--password PW] [--abs] [--size WxH]\n");
		return 2;
	}
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--password") && i + 1 < argc)
			pw = argv[++i];
		else if (!strcmp(argv[i], "--abs"))
			abs_mode = true;
		else if (!strcmp(argv[i], "--size") && i + 1 < argc)
			sscanf(argv[++i], "%ux%u", &w, &h);
	}
	snprintf(cfgtext, sizeof(cfgtext),
	         "RemoteDisplay.vnc.enabled = \"TRUE\"\nRemoteDisplay.vnc.port = \"%s\"\n%s%s%s",
	         argv[1], pw ? "RemoteDisplay.vnc.password = \"" : "", pw ? pw : "", pw ? "\"\n" : "");
	struct vmxcfg *vc = vmxcfg_parse("test.vmx", cfgtext, strlen(cfgtext), err, sizeof(err));
	struct mks_config cfg;
	m = mks_new(NULL);
	if (!vc || !m || mks_read_config(m, &cfg, vc, err, sizeof(err)) != 0) {
		fprintf(stderr, "vnc-testserver: %s\n", err);
		return 1;
	}
	set_mode(w, h);
	if (mks_vnc_start(m, &cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "vnc-testserver: %s\n", err);
		return 1;
	}
	mks_input_set_keyboard(m, &kops, NULL);
	mks_input_set_mouse(m, &mops, NULL);
	mks_input_set_absolute(m, &aops, NULL);
	if (mks_start_thread(m) != 0)
		return 1;
	out("READY\n");
	while (fgets(line, sizeof(line), stdin)) {
		unsigned a, b, c, d, e, f;
		if (sscanf(line, "leds %u", &a) == 1) {
			mks_leds(m, a);
		} else if (sscanf(line, "fill %x %u %u %u %u", &a, &b, &c, &d, &e) == 5) {
			fill(a, b, c, d, e);
			mks_damage(m, (int32_t)b, (int32_t)c, (int32_t)d, (int32_t)e);
		} else if (sscanf(line, "copy %u %u %u %u %u %u", &a, &b, &c, &d, &e, &f) == 6) {
			for (uint32_t j = 0; j < f; j++)
				memmove(vram + ((size_t)(d + j) * so.width + c) * 4,
				        vram + ((size_t)(b + j) * so.width + a) * 4, (size_t)e * 4);
			mks_copy_rect(m, (int32_t)a, (int32_t)b, (int32_t)c, (int32_t)d, (int32_t)e,
			              (int32_t)f);
		} else if (sscanf(line, "resize %u %u", &a, &b) == 2) {
			set_mode(a, b);
		} else if (!strncmp(line, "cursor", 6)) {
			uint32_t cur[16 * 16];
			for (int i = 0; i < 256; i++)
				cur[i] = (i % 17 == 0) ? 0xFF00FF00 : 0;
			mks_cursor_define(m, 16, 16, 0, 0, cur);
		} else if (sscanf(line, "frames %u %u %u %u %u", &a, &b, &c, &d, &e) == 5) {
			for (unsigned i = 0; i < a; i++) {
				fill((i * 0x10305u) & 0xFFFFFF, b, c, d, e);
				mks_damage(m, (int32_t)b, (int32_t)c, (int32_t)d, (int32_t)e);
				usleep(1000);
			}
			out("FRAMES-DONE\n");
		} else if (!strncmp(line, "quit", 4)) {
			break;
		}
		out("OK\n");
	}
	mks_free(m);
	vmxcfg_free(vc);
	free(vram);
	return 0;
}

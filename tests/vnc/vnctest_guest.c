/*
 * vireo-vnctest — runs inside the demo guest (static) for test_vnc_guest.py.
 *
 *   vireo-vnctest abs SECONDS
 *       Finds the input device with absolute X/Y (the vmmouse in psmouse),
 *       prints "VIREO-ABS-DEV MINX MAXX MINY MAXY NAME", then one line
 *       "VIREO-ABS X Y LEFT" per event report, until the left button is
 *       released or SECONDS pass; then "VIREO-ABS-END".
 *   vireo-vnctest fb X Y W H
 *       Writes the test pattern (vnc_guest_px below; the test computes the
 *       same) into that rectangle of /dev/fb0 (32 bpp), prints
 *       "VIREO-FB-OK XRES YRES".
 */
#include <dirent.h>
#include <fcntl.h>
#include <linux/fb.h>
#include <linux/input.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define BIT_SET(a, b) ((a)[(b) / 8] & (1u << ((b) % 8)))

/* 32x32 blocks of colour (lossy encoders keep block centres) with a
 * one-pixel-wide detail line every 32 pixels (lossless ones keep it). */
static uint32_t vnc_guest_px(unsigned x, unsigned y)
{
	unsigned bx = x / 32, by = y / 32;
	if (x % 32 == 0 || y % 32 == 0)
		return (x + y) % 2 ? 0xFFFFFF : 0x000000;
	return ((bx * 53 + by * 17) & 0xFF) << 16 | ((bx * 29 + by * 71 + 0x40) & 0xFF) << 8 |
	       (((bx ^ by) * 97) & 0xFF);
}

static int find_abs(char *name, size_t nlen, struct input_absinfo *ax, struct input_absinfo *ay)
{
	DIR *d = opendir("/dev/input");
	struct dirent *e;
	int found = -1;

	if (!d)
		return -1;
	while (found < 0 && (e = readdir(d))) {
		char path[300];
		uint8_t ev[(EV_MAX + 8) / 8] = { 0 }, abs[(ABS_MAX + 8) / 8] = { 0 };
		if (strncmp(e->d_name, "event", 5))
			continue;
		snprintf(path, sizeof(path), "/dev/input/%s", e->d_name);
		int fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		if (ioctl(fd, EVIOCGBIT(0, sizeof(ev)), ev) >= 0 && BIT_SET(ev, EV_ABS) &&
		    ioctl(fd, EVIOCGBIT(EV_ABS, sizeof(abs)), abs) >= 0 && BIT_SET(abs, ABS_X) &&
		    BIT_SET(abs, ABS_Y) && ioctl(fd, EVIOCGABS(ABS_X), ax) >= 0 &&
		    ioctl(fd, EVIOCGABS(ABS_Y), ay) >= 0) {
			if (ioctl(fd, EVIOCGNAME(nlen), name) < 0)
				snprintf(name, nlen, "?");
			found = fd;
		} else {
			close(fd);
		}
	}
	closedir(d);
	return found;
}

static int cmd_abs(int seconds)
{
	char name[128] = "";
	struct input_absinfo ax, ay;
	int fd = -1;
	time_t end = time(NULL) + seconds;

	/* psmouse may still be probing the vmmouse when we start; a missing
	 * device is reported well before the caller's own timeout. */
	time_t find_end = time(NULL) + (seconds < 20 ? seconds : 20);
	while ((fd = find_abs(name, sizeof(name), &ax, &ay)) < 0 && time(NULL) < find_end)
		sleep(1);
	if (fd < 0) {
		printf("VIREO-ABS-NODEV\n");
		return 1;
	}
	printf("VIREO-ABS-DEV %d %d %d %d %s\n", ax.minimum, ax.maximum, ay.minimum, ay.maximum, name);
	fflush(stdout);
	int x = ax.value, y = ay.value, left = 0, changed = 0;
	while (time(NULL) < end) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		struct input_event ie;
		if (poll(&p, 1, 1000) <= 0)
			continue;
		if (read(fd, &ie, sizeof(ie)) != (ssize_t)sizeof(ie))
			break;
		if (ie.type == EV_ABS && ie.code == ABS_X) {
			x = ie.value;
			changed = 1;
		} else if (ie.type == EV_ABS && ie.code == ABS_Y) {
			y = ie.value;
			changed = 1;
		} else if (ie.type == EV_KEY && ie.code == BTN_LEFT) {
			changed = 1;
			if (left && !ie.value) {
				printf("VIREO-ABS %d %d 0\n", x, y);
				break;
			}
			left = ie.value;
		} else if (ie.type == EV_SYN && ie.code == SYN_REPORT && changed) {
			printf("VIREO-ABS %d %d %d\n", x, y, left);
			fflush(stdout);
			changed = 0;
		}
	}
	printf("VIREO-ABS-END\n");
	return 0;
}

static int cmd_fb(unsigned x0, unsigned y0, unsigned w, unsigned h)
{
	struct fb_var_screeninfo v;
	struct fb_fix_screeninfo f;
	int fd = open("/dev/fb0", O_RDWR);

	if (fd < 0 || ioctl(fd, FBIOGET_VSCREENINFO, &v) < 0 || ioctl(fd, FBIOGET_FSCREENINFO, &f) < 0) {
		perror("VIREO-FB-FAIL /dev/fb0");
		return 1;
	}
	if (v.bits_per_pixel != 32 || x0 + w > v.xres || y0 + h > v.yres) {
		printf("VIREO-FB-FAIL bpp %u res %ux%u\n", v.bits_per_pixel, v.xres, v.yres);
		return 1;
	}
	size_t len = (size_t)f.line_length * (v.yoffset + v.yres);
	uint8_t *fb = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (fb == MAP_FAILED) {
		perror("VIREO-FB-FAIL mmap");
		return 1;
	}
	for (unsigned y = 0; y < h; y++) {
		uint32_t *row = (uint32_t *)(fb + (size_t)f.line_length * (v.yoffset + y0 + y)) +
		                v.xoffset + x0;
		for (unsigned x = 0; x < w; x++)
			row[x] = vnc_guest_px(x, y);
	}
	msync(fb, len, MS_SYNC);
	munmap(fb, len);
	close(fd);
	printf("VIREO-FB-OK %u %u\n", v.xres, v.yres);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 3 && !strcmp(argv[1], "abs"))
		return cmd_abs(atoi(argv[2]));
	if (argc == 6 && !strcmp(argv[1], "fb"))
		return cmd_fb((unsigned)atoi(argv[2]), (unsigned)atoi(argv[3]), (unsigned)atoi(argv[4]),
		              (unsigned)atoi(argv[5]));
	fprintf(stderr, "usage: vireo-vnctest abs SECONDS | fb X Y W H\n");
	return 2;
}

/*
 * drmtest.c — a static guest program for the SVGA guest test (the busybox
 * image has no modetest).  Linux UAPI structures are declared here because
 * the build host has no DRM headers.
 *
 *   vireo-drmtest modeset W H SECONDS
 *       find mode WxH on the first connected connector, scan out a dumb
 *       buffer filled with the test pattern, mark it dirty, hold it for
 *       SECONDS, print "VIREO-MODESET-OK W H" once it is shown.
 *   vireo-drmtest fb X Y W H
 *       write the pattern into /dev/fb0 at (X,Y) WxH with write(2);
 *       print "VIREO-FB-OK xres yres".
 *
 * The pattern at (x, y) is the XRGB value drmtest_px(x, y) below; the
 * Python side computes the same.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* native build: no project arguments */
#endif
#include <fcntl.h>
#include <linux/fb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

struct drm_mode_card_res {
	uint64_t fb_id_ptr, crtc_id_ptr, connector_id_ptr, encoder_id_ptr;
	uint32_t count_fbs, count_crtcs, count_connectors, count_encoders;
	uint32_t min_width, max_width, min_height, max_height;
};

struct drm_mode_modeinfo {
	uint32_t clock;
	uint16_t hdisplay, hsync_start, hsync_end, htotal, hskew;
	uint16_t vdisplay, vsync_start, vsync_end, vtotal, vscan;
	uint32_t vrefresh, flags, type;
	char name[32];
};

struct drm_mode_crtc {
	uint64_t set_connectors_ptr;
	uint32_t count_connectors, crtc_id, fb_id, x, y, gamma_size, mode_valid;
	struct drm_mode_modeinfo mode;
};

struct drm_mode_get_connector {
	uint64_t encoders_ptr, modes_ptr, props_ptr, prop_values_ptr;
	uint32_t count_modes, count_props, count_encoders, encoder_id, connector_id;
	uint32_t connector_type, connector_type_id, connection, mm_width, mm_height, subpixel, pad;
};

struct drm_mode_fb_cmd {
	uint32_t fb_id, width, height, pitch, bpp, depth, handle;
};

struct drm_mode_create_dumb {
	uint32_t height, width, bpp, flags, handle, pitch;
	uint64_t size;
};

struct drm_mode_map_dumb {
	uint32_t handle, pad;
	uint64_t offset;
};

struct drm_clip_rect {
	unsigned short x1, y1, x2, y2;
};

struct drm_mode_fb_dirty_cmd {
	uint32_t fb_id, flags, color, num_clips;
	uint64_t clips_ptr;
};

#define DRM_IOWR_(nr, t) _IOWR('d', nr, t)
#define IOCTL_SET_MASTER     _IO('d', 0x1e)
#define IOCTL_GETRESOURCES   DRM_IOWR_(0xA0, struct drm_mode_card_res)
#define IOCTL_SETCRTC        DRM_IOWR_(0xA2, struct drm_mode_crtc)
#define IOCTL_GETCONNECTOR   DRM_IOWR_(0xA7, struct drm_mode_get_connector)
#define IOCTL_ADDFB          DRM_IOWR_(0xAE, struct drm_mode_fb_cmd)
#define IOCTL_DIRTYFB        DRM_IOWR_(0xB1, struct drm_mode_fb_dirty_cmd)
#define IOCTL_CREATE_DUMB    DRM_IOWR_(0xB2, struct drm_mode_create_dumb)
#define IOCTL_MAP_DUMB       DRM_IOWR_(0xB3, struct drm_mode_map_dumb)

static uint32_t drmtest_px(uint32_t x, uint32_t y)
{
	return (x & 0xFF) << 16 | (y & 0xFF) << 8 | (((x >> 8) + (y >> 8) * 16 + 0x40) & 0xFF);
}

static int die(const char *what)
{
	printf("VIREO-DRMTEST-FAIL %s\n", what);
	perror(what);
	return 1;
}

static int modeset(uint32_t w, uint32_t h, unsigned secs)
{
	struct drm_mode_card_res res;
	struct drm_mode_get_connector conn;
	struct drm_mode_modeinfo *modes, *mode = NULL;
	struct drm_mode_create_dumb cd;
	struct drm_mode_map_dumb md;
	struct drm_mode_fb_cmd fb;
	struct drm_mode_crtc crtc;
	struct drm_mode_fb_dirty_cmd dirty;
	struct drm_clip_rect clip;
	uint32_t crtcs[8], conns[8], conn_id;
	uint8_t *map;
	int fd = open("/dev/dri/card0", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return die("open /dev/dri/card0");
	ioctl(fd, IOCTL_SET_MASTER, 0);
	memset(&res, 0, sizeof(res));
	if (ioctl(fd, IOCTL_GETRESOURCES, &res) != 0)
		return die("GETRESOURCES");
	if (!res.count_crtcs || !res.count_connectors)
		return die("no crtc or connector");
	if (res.count_crtcs > 8)
		res.count_crtcs = 8;
	if (res.count_connectors > 8)
		res.count_connectors = 8;
	res.count_fbs = res.count_encoders = 0;
	res.crtc_id_ptr = (uintptr_t)crtcs;
	res.connector_id_ptr = (uintptr_t)conns;
	if (ioctl(fd, IOCTL_GETRESOURCES, &res) != 0)
		return die("GETRESOURCES 2");
	conn_id = conns[0];
	memset(&conn, 0, sizeof(conn));
	conn.connector_id = conn_id;
	if (ioctl(fd, IOCTL_GETCONNECTOR, &conn) != 0)
		return die("GETCONNECTOR");
	modes = calloc(conn.count_modes + 1, sizeof(*modes));
	conn.count_props = conn.count_encoders = 0;
	conn.modes_ptr = (uintptr_t)modes;
	if (ioctl(fd, IOCTL_GETCONNECTOR, &conn) != 0)
		return die("GETCONNECTOR 2");
	for (uint32_t i = 0; i < conn.count_modes; i++)
		if (modes[i].hdisplay == w && modes[i].vdisplay == h && !mode)
			mode = &modes[i];
	if (!mode)
		return die("mode not offered");

	memset(&cd, 0, sizeof(cd));
	cd.width = w;
	cd.height = h;
	cd.bpp = 32;
	if (ioctl(fd, IOCTL_CREATE_DUMB, &cd) != 0)
		return die("CREATE_DUMB");
	memset(&md, 0, sizeof(md));
	md.handle = cd.handle;
	if (ioctl(fd, IOCTL_MAP_DUMB, &md) != 0)
		return die("MAP_DUMB");
	map = mmap(NULL, cd.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)md.offset);
	if (map == MAP_FAILED)
		return die("mmap dumb");
	for (uint32_t y = 0; y < h; y++) {
		uint32_t *row = (uint32_t *)(map + (size_t)y * cd.pitch);
		for (uint32_t x = 0; x < w; x++)
			row[x] = drmtest_px(x, y);
	}
	memset(&fb, 0, sizeof(fb));
	fb.width = w;
	fb.height = h;
	fb.pitch = cd.pitch;
	fb.bpp = 32;
	fb.depth = 24;
	fb.handle = cd.handle;
	if (ioctl(fd, IOCTL_ADDFB, &fb) != 0)
		return die("ADDFB");
	memset(&crtc, 0, sizeof(crtc));
	crtc.crtc_id = crtcs[0];
	crtc.fb_id = fb.fb_id;
	crtc.set_connectors_ptr = (uintptr_t)&conn_id;
	crtc.count_connectors = 1;
	crtc.mode = *mode;
	crtc.mode_valid = 1;
	if (ioctl(fd, IOCTL_SETCRTC, &crtc) != 0)
		return die("SETCRTC");
	clip = (struct drm_clip_rect){ 0, 0, (unsigned short)w, (unsigned short)h };
	memset(&dirty, 0, sizeof(dirty));
	dirty.fb_id = fb.fb_id;
	dirty.num_clips = 1;
	dirty.clips_ptr = (uintptr_t)&clip;
	if (ioctl(fd, IOCTL_DIRTYFB, &dirty) != 0)
		perror("DIRTYFB (not fatal)");
	printf("VIREO-MODESET-OK %u %u pitch %u\n", w, h, cd.pitch);
	fflush(stdout);
	sleep(secs);
	return 0;
}

static int fbwrite(uint32_t x0, uint32_t y0, uint32_t w, uint32_t h)
{
	struct fb_var_screeninfo var;
	struct fb_fix_screeninfo fix;
	uint32_t *row;
	int fd = open("/dev/fb0", O_RDWR);

	if (fd < 0)
		return die("open /dev/fb0");
	if (ioctl(fd, FBIOGET_VSCREENINFO, &var) != 0 || ioctl(fd, FBIOGET_FSCREENINFO, &fix) != 0)
		return die("FBIOGET");
	if (var.bits_per_pixel != 32 || x0 + w > var.xres || y0 + h > var.yres)
		return die("fb geometry");
	row = malloc((size_t)w * 4);
	for (uint32_t y = y0; y < y0 + h; y++) {
		for (uint32_t x = 0; x < w; x++)
			row[x] = drmtest_px(x0 + x, y);
		if (pwrite(fd, row, (size_t)w * 4, (off_t)y * fix.line_length + (off_t)x0 * 4) !=
		    (ssize_t)w * 4)
			return die("write /dev/fb0");
	}
	printf("VIREO-FB-OK %u %u\n", var.xres, var.yres);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && !strcmp(argv[1], "modeset"))
		return modeset((uint32_t)atoi(argv[2]), (uint32_t)atoi(argv[3]),
		               (unsigned)atoi(argv[4]));
	if (argc == 6 && !strcmp(argv[1], "fb"))
		return fbwrite((uint32_t)atoi(argv[2]), (uint32_t)atoi(argv[3]),
		               (uint32_t)atoi(argv[4]), (uint32_t)atoi(argv[5]));
	fprintf(stderr, "usage: vireo-drmtest modeset W H SECONDS | fb X Y W H\n");
	return 2;
}

/*
 * mks_shot.c — PNG screenshots of the shadow framebuffer (libpng).
 *
 * The frame is read on the MKS thread (mks_with_frame) into a private copy,
 * and the file is written from the caller's thread, so a slow disk never
 * stalls the screen.  The file appears atomically (temporary name, rename).
 */
#include "mks_int.h"

#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int mks_png_write(const char *path, const struct mks_frame *f, char *err, size_t errlen)
{
	char tmp[4200];
	FILE *fp;
	png_structp png = NULL;
	png_infop info = NULL;
	uint8_t *volatile row = NULL;

	if (!f || !f->pixels || !f->width || !f->height) {
		snprintf(err, errlen, "no picture");
		return -1;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp%d", path, (int)getpid());
	fp = fopen(tmp, "wb");
	if (!fp) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	if (png)
		info = png_create_info_struct(png);
	if (!png || !info || setjmp(png_jmpbuf(png))) {
		png_destroy_write_struct(&png, &info);
		fclose(fp);
		unlink(tmp);
		free(row);
		snprintf(err, errlen, "%s: PNG encoding failed", path);
		return -1;
	}
	png_init_io(png, fp);
	png_set_IHDR(png, info, f->width, f->height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
	             PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	png_set_compression_level(png, 3);
	png_write_info(png, info);
	row = malloc((size_t)f->width * 3);
	if (!row)
		png_error(png, "out of memory");
	for (uint32_t y = 0; y < f->height; y++) {
		const uint32_t *src = f->pixels + (size_t)y * f->stride_px;
		for (uint32_t x = 0; x < f->width; x++) {
			row[x * 3] = (uint8_t)(src[x] >> 16);
			row[x * 3 + 1] = (uint8_t)(src[x] >> 8);
			row[x * 3 + 2] = (uint8_t)src[x];
		}
		png_write_row(png, row);
	}
	png_write_end(png, info);
	png_destroy_write_struct(&png, &info);
	free(row);
	if (fflush(fp) != 0 || fsync(fileno(fp)) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		fclose(fp);
		unlink(tmp);
		return -1;
	}
	fclose(fp);
	if (rename(tmp, path) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

struct shot_copy {
	uint32_t *px;
	uint32_t w, h;
};

static void shot_grab(void *opaque, const struct mks_frame *f)
{
	struct shot_copy *c = opaque;

	c->px = malloc((size_t)f->width * f->height * 4);
	if (!c->px)
		return;
	for (uint32_t y = 0; y < f->height; y++)
		memcpy(c->px + (size_t)y * f->width, f->pixels + (size_t)y * f->stride_px,
		       (size_t)f->width * 4);
	c->w = f->width;
	c->h = f->height;
}

int mks_screenshot(struct mks *m, const char *path, char *err, size_t errlen)
{
	struct shot_copy c = { NULL, 0, 0 };
	int rc;

	if (!m || !path || !*path) {
		snprintf(err, errlen, "no display or no path");
		return -1;
	}
	if (mks_with_frame(m, shot_grab, &c) != 0 || !c.px) {
		snprintf(err, errlen, "cannot read the screen");
		free(c.px);
		return -1;
	}
	struct mks_frame f = { c.px, c.w, c.h, c.w };
	rc = mks_png_write(path, &f, err, errlen);
	free(c.px);
	return rc;
}

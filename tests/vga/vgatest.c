/*
 * vgatest.c — see vgatest.h.
 */
#include "vgatest.h"

#include <stdlib.h>
#include <string.h>

int vgat_failures;

/* Standard VGA parameter tables (IBM VGA; the same values SeaVGABIOS loads). */
const struct vgat_regs vgat_mode3 = {
	0x67,
	{ 0x03, 0x00, 0x03, 0x00, 0x02 },
	{ 0x5f, 0x4f, 0x50, 0x82, 0x55, 0x81, 0xbf, 0x1f, 0x00, 0x4f, 0x0d, 0x0e, 0x00,
	  0x00, 0x00, 0x00, 0x9c, 0x8e, 0x8f, 0x28, 0x1f, 0x96, 0xb9, 0xa3, 0xff },
	{ 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14, 0x07, 0x38, 0x39, 0x3a, 0x3b, 0x3c,
	  0x3d, 0x3e, 0x3f, 0x0c, 0x00, 0x0f, 0x08, 0x00 },
	{ 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x0e, 0x00, 0xff },
};

const struct vgat_regs vgat_mode12 = {
	0xe3,
	{ 0x03, 0x01, 0x0f, 0x00, 0x06 },
	{ 0x5f, 0x4f, 0x50, 0x82, 0x54, 0x80, 0x0b, 0x3e, 0x00, 0x40, 0x00, 0x00, 0x00,
	  0x00, 0x00, 0x00, 0xea, 0x8c, 0xdf, 0x28, 0x00, 0xe7, 0x04, 0xe3, 0xff },
	{ 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14, 0x07, 0x38, 0x39, 0x3a, 0x3b, 0x3c,
	  0x3d, 0x3e, 0x3f, 0x01, 0x00, 0x0f, 0x00, 0x00 },
	{ 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x0f, 0xff },
};

const struct vgat_regs vgat_mode13 = {
	0x63,
	{ 0x03, 0x01, 0x0f, 0x00, 0x0e },
	{ 0x5f, 0x4f, 0x50, 0x82, 0x54, 0x80, 0xbf, 0x1f, 0x00, 0x41, 0x00, 0x00, 0x00,
	  0x00, 0x00, 0x00, 0x9c, 0x8e, 0x8f, 0x28, 0x40, 0x96, 0xb9, 0xa3, 0xff },
	{ 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c,
	  0x0d, 0x0e, 0x0f, 0x41, 0x00, 0x0f, 0x00, 0x00 },
	{ 0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x05, 0x0f, 0xff },
};

/* A recording back end: the damage the MKS passes on. */
static void rec_update(void *opaque, const struct mks_frame *f, const struct mks_rect *r,
                       unsigned n)
{
	struct vgat *g = opaque;

	(void)f;
	for (unsigned i = 0; i < n; i++) {
		int32_t x1 = r[i].x + r[i].w, y1 = r[i].y + r[i].h;
		if (g->nupdates == 0) {
			g->ux0 = r[i].x;
			g->uy0 = r[i].y;
			g->ux1 = x1;
			g->uy1 = y1;
		} else {
			g->ux0 = r[i].x < g->ux0 ? r[i].x : g->ux0;
			g->uy0 = r[i].y < g->uy0 ? r[i].y : g->uy0;
			g->ux1 = x1 > g->ux1 ? x1 : g->ux1;
			g->uy1 = y1 > g->uy1 ? y1 : g->uy1;
		}
		g->nupdates++;
	}
}

static const struct mks_backend_ops rec_ops = {
	.name = "vgatest",
	.update = rec_update,
};

struct vgat *vgat_new(size_t vram_size)
{
	struct vgat *g = calloc(1, sizeof(*g));
	char err[256] = "";

	if (!g)
		return NULL;
	g->t = devtest_new("");
	if (!g->t || devtest_add(g->t, "mks") != 0) {
		fprintf(stderr, "vgatest: cannot create the VM with an MKS\n");
		goto fail;
	}
	g->mks = mks_of(g->t->vm);
	if (!g->mks) {
		fprintf(stderr, "vgatest: mks_of() found no MKS\n");
		goto fail;
	}
	mks_backend_add(g->mks, &rec_ops, g);
	g->vram_size = vram_size;
	g->vram = calloc(1, vram_size);
	if (!g->vram)
		goto fail;
	g->vga = vga_create(g->t->vm, g->vram, vram_size, err, sizeof(err));
	if (!g->vga) {
		fprintf(stderr, "vgatest: vga_create: %s\n", err);
		goto fail;
	}
	return g;
fail:
	vgat_free(g);
	return NULL;
}

void vgat_free(struct vgat *g)
{
	if (!g)
		return;
	vga_destroy(g->vga);
	devtest_free(g->t);   /* the MKS goes with the VM */
	free(g->vram);
	free(g->px);
	free(g);
}

void vgat_out8(struct vgat *g, uint16_t port, uint8_t val)
{
	devtest_out(g->t, port, 1, val);
}

void vgat_out16(struct vgat *g, uint16_t port, uint16_t val)
{
	devtest_out(g->t, port, 2, val);
}

uint8_t vgat_in8(struct vgat *g, uint16_t port)
{
	return (uint8_t)devtest_in(g->t, port, 1);
}

uint16_t vgat_in16(struct vgat *g, uint16_t port)
{
	return (uint16_t)devtest_in(g->t, port, 2);
}

/* Index/data pairs with one outw, as BIOSes do. */
void vgat_seq(struct vgat *g, uint8_t idx, uint8_t val)
{
	vgat_out16(g, 0x3c4, (uint16_t)(idx | (val << 8)));
}

void vgat_gr(struct vgat *g, uint8_t idx, uint8_t val)
{
	vgat_out16(g, 0x3ce, (uint16_t)(idx | (val << 8)));
}

void vgat_crtc(struct vgat *g, uint8_t idx, uint8_t val)
{
	vgat_out8(g, 0x3d4, idx);
	vgat_out8(g, 0x3d5, val);
}

void vgat_attr(struct vgat *g, uint8_t idx, uint8_t val)
{
	vgat_in8(g, 0x3da);   /* reset the flip-flop */
	vgat_out8(g, 0x3c0, idx);
	vgat_out8(g, 0x3c0, val);
}

void vgat_dac(struct vgat *g, uint8_t idx, uint8_t r, uint8_t gr, uint8_t b)
{
	vgat_out8(g, 0x3c8, idx);
	vgat_out8(g, 0x3c9, r);
	vgat_out8(g, 0x3c9, gr);
	vgat_out8(g, 0x3c9, b);
}

void vgat_mem8(struct vgat *g, uint32_t addr, uint8_t val)
{
	devtest_mmio_write(g->t, addr, 1, val);
}

uint8_t vgat_memr8(struct vgat *g, uint32_t addr)
{
	return (uint8_t)devtest_mmio_read(g->t, addr, 1);
}

void vgat_dispi(struct vgat *g, uint16_t idx, uint16_t val)
{
	vgat_out16(g, 0x1ce, idx);
	vgat_out16(g, 0x1cf, val);
}

uint16_t vgat_dispi_read(struct vgat *g, uint16_t idx)
{
	vgat_out16(g, 0x1ce, idx);
	return vgat_in16(g, 0x1cf);
}

void vgat_set_regs(struct vgat *g, const struct vgat_regs *r)
{
	vgat_in8(g, 0x3da);
	vgat_out8(g, 0x3c0, 0x00);           /* palette address source off: blank */
	vgat_seq(g, 0, 0x01);                 /* synchronous reset */
	vgat_out8(g, 0x3c2, r->misc);
	for (uint8_t i = 1; i < 5; i++)
		vgat_seq(g, i, r->seq[i]);
	vgat_seq(g, 0, r->seq[0]);
	vgat_crtc(g, 0x11, 0x00);             /* unprotect 0-7 */
	for (uint8_t i = 0; i < 25; i++)
		vgat_crtc(g, i, r->crtc[i]);
	vgat_in8(g, 0x3da);
	for (uint8_t i = 0; i < 21; i++) {
		vgat_out8(g, 0x3c0, i);
		vgat_out8(g, 0x3c0, r->attr[i]);
	}
	for (uint8_t i = 0; i < 9; i++)
		vgat_gr(g, i, r->gr[i]);
}

void vgat_screen_on(struct vgat *g)
{
	vgat_in8(g, 0x3da);
	vgat_out8(g, 0x3c0, 0x20);
}

static void vgat_copy_frame(void *opaque, const struct mks_frame *f)
{
	struct vgat *g = opaque;
	uint32_t *p = realloc(g->px, (size_t)f->width * f->height * 4 + 4);

	if (!p) {
		g->w = g->h = 0;
		return;
	}
	g->px = p;
	g->w = f->width;
	g->h = f->height;
	for (uint32_t y = 0; y < f->height; y++)
		memcpy(g->px + (size_t)y * f->width, f->pixels + (size_t)y * f->stride_px,
		       (size_t)f->width * 4);
}

void vgat_frame(struct vgat *g)
{
	vga_refresh(g->vga);
	if (mks_with_frame(g->mks, vgat_copy_frame, g) != 0) {
		VT_CHECK(0, "mks_with_frame failed");
		g->w = g->h = 0;
	}
}

uint32_t vgat_px(const struct vgat *g, uint32_t x, uint32_t y)
{
	if (x >= g->w || y >= g->h)
		return 0xdeadbeef;
	return g->px[(size_t)y * g->w + x] & 0xffffff;
}

void vgat_clear_updates(struct vgat *g)
{
	g->nupdates = 0;
	g->ux0 = g->uy0 = g->ux1 = g->uy1 = 0;
}

uint32_t vgat_c6(unsigned v)
{
	v &= 0x3f;
	return (v << 2) | (v >> 4);
}

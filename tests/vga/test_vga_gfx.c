/*
 * test_vga_gfx.c — VGA graphics modes through the registers and the
 * 0xA0000 window: mode 13h (chain-4, 256 colours scanned out of VRAM) and
 * mode 12h (640x480, 16 colours, four planes) with the write modes 0-3,
 * set/reset, bit mask, map mask, logical ops, latches and read mode 1, the
 * way VGA drivers use them; pixels checked in the MKS shadow.
 */
#include <stdlib.h>
#include <string.h>

#include "vgatest.h"

static uint32_t dac_rgb(unsigned e)
{
	return (vgat_c6(e) << 16) | (vgat_c6(63 - e) << 8) | vgat_c6(e * 5);
}

static uint32_t pal12(unsigned c)
{
	return dac_rgb(vgat_mode12.attr[c & 15]);
}

static unsigned check_byte(struct vgat *g, uint32_t x0, uint32_t y, const unsigned want[8],
                           const char *what)
{
	unsigned bad = 0;

	for (unsigned i = 0; i < 8; i++) {
		uint32_t got = vgat_px(g, x0 + i, y), w = pal12(want[i]);
		if (got != w) {
			if (!bad)
				fprintf(stderr, "  %s: pixel (%u,%u) = %06x, want colour %u = %06x\n", what,
				        x0 + i, y, got, want[i], w);
			bad++;
		}
	}
	return bad;
}

int main(void)
{
	struct vgat *g = vgat_new(4u << 20);

	if (!g)
		return 1;
	for (unsigned e = 0; e < 256; e++)
		vgat_dac(g, (uint8_t)e, (uint8_t)(e & 63), (uint8_t)(63 - (e & 63)),
		         (uint8_t)(((e & 63) * 5) & 63));

	/* ---- mode 13h ---- */
	vgat_set_regs(g, &vgat_mode13);
	vgat_screen_on(g);
	vgat_dac(g, 0x42, 10, 20, 30);
	for (uint32_t y = 0; y < 200; y++)
		for (uint32_t x = 0; x < 320; x += 37)
			vgat_mem8(g, 0xa0000 + y * 320 + x, (uint8_t)(x + y));
	vgat_mem8(g, 0xa0000 + 123 * 320 + 45, 0x42);
	vgat_frame(g);
	VT_CHECK(g->w == 320 && g->h == 200, "mode 13h frame %ux%u, want 320x200", g->w, g->h);
	VT_CHECK(vgat_px(g, 45, 123) == ((vgat_c6(10) << 16) | (vgat_c6(20) << 8) | vgat_c6(30)),
	         "mode 13h pixel (45,123) = %06x", vgat_px(g, 45, 123));
	{
		unsigned bad = 0;
		for (uint32_t y = 0; y < 200; y++)
			for (uint32_t x = 0; x < 320; x += 37)
				if (((x + y) & 0xff) != 0x42 && !(x == 45 && y == 123) &&
				    vgat_px(g, x, y) != dac_rgb((x + y) & 0xff))
					bad++;
		VT_CHECK(bad == 0, "mode 13h: %u pattern pixels wrong", bad);
	}
	VT_CHECK(vgat_memr8(g, 0xa0000 + 123 * 320 + 45) == 0x42, "mode 13h read back");
	/* A palette change shows without any VRAM write. */
	vgat_dac(g, 0x42, 63, 0, 0);
	vgat_frame(g);
	VT_CHECK(vgat_px(g, 45, 123) == 0xff0000, "mode 13h palette change: %06x", vgat_px(g, 45, 123));

	/* ---- mode 12h ---- */
	vgat_set_regs(g, &vgat_mode12);
	for (unsigned e = 0; e < 64; e++)
		vgat_dac(g, (uint8_t)e, (uint8_t)e, (uint8_t)(63 - e), (uint8_t)((e * 5) & 63));
	/* clear all planes: write mode 0, set/reset 0 on every plane */
	vgat_seq(g, 2, 0x0f);
	vgat_gr(g, 0, 0x00);
	vgat_gr(g, 1, 0x0f);
	vgat_gr(g, 8, 0xff);
	for (uint32_t a = 0; a < 80 * 480; a++)
		vgat_mem8(g, 0xa0000 + a, 0);
	vgat_gr(g, 1, 0x00);
	vgat_screen_on(g);

	const uint32_t row = 100, xb = 10, a0 = 0xa0000 + row * 80 + xb;
	/* write mode 2, bit mask 0xF0: colour 12 into the left four pixels */
	vgat_gr(g, 5, 0x02);
	vgat_gr(g, 8, 0xf0);
	(void)vgat_memr8(g, a0);           /* load the latches */
	vgat_mem8(g, a0, 0x0c);
	/* write mode 0 with set/reset colour 5 on the right four pixels */
	vgat_gr(g, 5, 0x00);
	vgat_gr(g, 0, 0x05);
	vgat_gr(g, 1, 0x0f);
	vgat_gr(g, 8, 0x0f);
	(void)vgat_memr8(g, a0);
	vgat_mem8(g, a0, 0xff);
	vgat_gr(g, 1, 0x00);
	vgat_gr(g, 8, 0xff);
	/* write mode 0, plane 0 only: 0xAA -> colours 1,0,1,0,... */
	vgat_seq(g, 2, 0x01);
	vgat_mem8(g, a0 + 1, 0xaa);
	vgat_seq(g, 2, 0x0f);
	/* write mode 3: colour 9 through the bit mask given by the (rotated) data */
	vgat_gr(g, 5, 0x03);
	vgat_gr(g, 0, 0x09);
	vgat_gr(g, 3, 0x01);               /* rotate right by 1 */
	(void)vgat_memr8(g, a0 + 2);
	vgat_mem8(g, a0 + 2, 0x81);        /* ror 1 -> 0xC0: the two left pixels */
	vgat_gr(g, 3, 0x00);
	/* write mode 1: copy the latches of byte a0 into a0+3 */
	vgat_gr(g, 5, 0x01);
	(void)vgat_memr8(g, a0);
	vgat_mem8(g, a0 + 3, 0x00);
	/* XOR (GR03 = 0x18) colour 15 over the copy with write mode 2 */
	vgat_gr(g, 5, 0x02);
	vgat_gr(g, 3, 0x18);
	vgat_gr(g, 8, 0x3c);
	(void)vgat_memr8(g, a0 + 3);
	vgat_mem8(g, a0 + 3, 0x0f);
	vgat_gr(g, 3, 0x00);
	vgat_gr(g, 8, 0xff);
	vgat_gr(g, 5, 0x00);

	vgat_frame(g);
	VT_CHECK(g->w == 640 && g->h == 480, "mode 12h frame %ux%u, want 640x480", g->w, g->h);
	if (g->w == 640 && g->h == 480) {
		const unsigned b0[8] = { 12, 12, 12, 12, 5, 5, 5, 5 };
		const unsigned b1[8] = { 1, 0, 1, 0, 1, 0, 1, 0 };
		const unsigned b2[8] = { 9, 9, 0, 0, 0, 0, 0, 0 };
		const unsigned b3[8] = { 12, 12, 12 ^ 15, 12 ^ 15, 5 ^ 15, 5 ^ 15, 5, 5 };
		const unsigned z[8] = { 0, 0, 0, 0, 0, 0, 0, 0 };
		VT_CHECK(check_byte(g, xb * 8, row, b0, "write modes 2 and 0 with set/reset") == 0,
		         "byte 0");
		VT_CHECK(check_byte(g, xb * 8 + 8, row, b1, "map mask, plane 0") == 0, "byte 1");
		VT_CHECK(check_byte(g, xb * 8 + 16, row, b2, "write mode 3 with rotate") == 0, "byte 2");
		VT_CHECK(check_byte(g, xb * 8 + 24, row, b3, "write mode 1 copy, then XOR") == 0, "byte 3");
		VT_CHECK(check_byte(g, xb * 8, row + 1, z, "untouched row") == 0, "row below");
	}
	/* read mode 1: where is colour 12 in byte 0? */
	vgat_gr(g, 5, 0x08);
	vgat_gr(g, 2, 0x0c);
	vgat_gr(g, 7, 0x0f);
	VT_CHECK(vgat_memr8(g, a0) == 0xf0, "read mode 1 compare gave %02x, want f0",
	         vgat_memr8(g, a0));
	/* read mode 0, plane 2 (GR04) */
	vgat_gr(g, 5, 0x00);
	vgat_gr(g, 4, 0x02);
	VT_CHECK(vgat_memr8(g, a0) == 0xff, "plane 2 of byte 0 = %02x, want ff", vgat_memr8(g, a0));
	vgat_gr(g, 4, 0x00);
	VT_CHECK(vgat_memr8(g, a0) == 0x0f, "plane 0 of byte 0 = %02x, want 0f", vgat_memr8(g, a0));

	/* the attribute controller's colour plane enable masks planes 2-3 */
	vgat_attr(g, 0x12, 0x03);
	vgat_screen_on(g);
	vgat_frame(g);
	{
		const unsigned m[8] = { 0, 0, 0, 0, 1, 1, 1, 1 };
		VT_CHECK(check_byte(g, xb * 8, row, m, "colour plane enable 0x03") == 0, "AR12");
	}

	/* Hostile programming: huge geometry, odd start addresses, all memory maps. */
	vgat_crtc(g, 0x11, 0x00);
	vgat_crtc(g, 0x01, 0xff);
	vgat_crtc(g, 0x07, 0xff);
	vgat_crtc(g, 0x12, 0xff);
	vgat_crtc(g, 0x09, 0x00);
	vgat_crtc(g, 0x13, 0xff);
	vgat_crtc(g, 0x0c, 0xff);
	vgat_crtc(g, 0x0d, 0xff);
	vgat_frame(g);
	VT_CHECK(g->w == 2048 && g->h == 1024, "2048x1024 planar: %ux%u", g->w, g->h);
	vgat_gr(g, 5, 0x40);   /* 256 colours with a start address near the end of VRAM */
	vgat_frame(g);
	vgat_gr(g, 6, 0x00);   /* text with 1024 lines of 1 scan line */
	vgat_frame(g);
	for (unsigned map = 0; map < 4; map++) {
		vgat_gr(g, 6, (uint8_t)(map << 2));
		vgat_seq(g, 4, (uint8_t)(map & 1 ? 0x08 : 0x06));
		for (uint32_t a = 0xa0000; a < 0xc0000; a += 0x1fff) {
			vgat_mem8(g, a, 0x55);
			(void)vgat_memr8(g, a);
		}
		devtest_mmio_write(g->t, 0xbfff8, 8, ~0ull);
	}
	vgat_frame(g);

	vgat_free(g);
	if (vgat_failures) {
		fprintf(stderr, "test_vga_gfx: %d check(s) failed\n", vgat_failures);
		return 1;
	}
	printf("test_vga_gfx: ok\n");
	return 0;
}

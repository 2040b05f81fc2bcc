/*
 * test_vga_vbe.c — the Bochs VBE ("dispi") interface at 0x1CE/0x1CF as
 * SeaVGABIOS's bochsvga.c drives it: ID handshake, capabilities, a
 * 1024x768x32 linear mode with a known pattern in VRAM checked in the MKS
 * shadow, 16 and 8 bpp, panning, banked access through 0xA0000, 24 bpp, and
 * hostile register values that must stay inside VRAM.
 */
#include <stdlib.h>
#include <string.h>

#include "vgatest.h"

#define IDX_ID    0
#define IDX_XRES  1
#define IDX_YRES  2
#define IDX_BPP   3
#define IDX_EN    4
#define IDX_BANK  5
#define IDX_VW    6
#define IDX_VH    7
#define IDX_XOFF  8
#define IDX_YOFF  9
#define IDX_MEM   10

static uint32_t pat32(uint32_t x, uint32_t y)
{
	return ((x * 7u + y) & 0xff) << 16 | ((y * 3u) & 0xff) << 8 | ((x ^ y) & 0xff);
}

static void set_mode(struct vgat *g, uint16_t w, uint16_t h, uint16_t bpp, uint16_t flags)
{
	/* bochsvga_set_mode(): disable, bpp, sizes, bank 0, enable */
	vgat_dispi(g, IDX_EN, 0);
	vgat_dispi(g, IDX_BPP, bpp);
	vgat_dispi(g, IDX_XRES, w);
	vgat_dispi(g, IDX_YRES, h);
	vgat_dispi(g, IDX_BANK, 0);
	vgat_dispi(g, IDX_EN, (uint16_t)(0x01 | flags));
	/* the VGA compat part and the palette address source */
	vgat_gr(g, 6, 0x05);
	vgat_seq(g, 2, 0x0f);
	vgat_screen_on(g);
}

int main(void)
{
	const size_t vram_size = 16u << 20;
	struct vgat *g = vgat_new(vram_size);
	unsigned bad;

	if (!g)
		return 1;

	/* bochsvga_setup(): ID handshake, memory size, capabilities */
	vgat_dispi(g, IDX_ID, 0xb0c0);
	VT_CHECK(vgat_dispi_read(g, IDX_ID) == 0xb0c0, "ID 0xB0C0 not accepted");
	vgat_dispi(g, IDX_ID, 0xb0c5);
	VT_CHECK(vgat_dispi_read(g, IDX_ID) == 0xb0c5, "ID 0xB0C5 not accepted");
	vgat_dispi(g, IDX_ID, 0x1234);
	VT_CHECK(vgat_dispi_read(g, IDX_ID) == 0xb0c5, "a bogus ID replaced the version");
	VT_CHECK(vgat_dispi_read(g, IDX_MEM) == 256, "VIDEO_MEMORY_64K = %u, want 256",
	         vgat_dispi_read(g, IDX_MEM));
	uint16_t en = vgat_dispi_read(g, IDX_EN);
	vgat_dispi(g, IDX_EN, en | 0x02);
	uint16_t maxx = vgat_dispi_read(g, IDX_XRES), maxbpp = vgat_dispi_read(g, IDX_BPP);
	vgat_dispi(g, IDX_EN, en);
	VT_CHECK(maxx >= 1920 && maxbpp == 32, "GETCAPS: max xres %u bpp %u", maxx, maxbpp);

	/* Memory is cleared on enable unless NOCLEARMEM: fill it with junk first. */
	memset(g->vram, 0x5a, 1024 * 768 * 4);
	set_mode(g, 1024, 768, 32, 0x40);
	VT_CHECK(g->vram[0] == 0 && g->vram[1024 * 768 * 4 - 1] == 0, "enable did not clear VRAM");
	VT_CHECK(vga_vbe_enabled(g->vga), "vga_vbe_enabled() false in a VBE mode");
	VT_CHECK(vgat_dispi_read(g, IDX_VW) == 1024, "VIRT_WIDTH %u", vgat_dispi_read(g, IDX_VW));
	VT_CHECK(vgat_dispi_read(g, IDX_VH) == vram_size / 4096, "VIRT_HEIGHT %u",
	         vgat_dispi_read(g, IDX_VH));

	/* The guest draws through the linear framebuffer, i.e. straight into VRAM. */
	for (uint32_t y = 0; y < 800; y++)
		for (uint32_t x = 0; x < 1024; x++) {
			uint32_t p = pat32(x, y);
			memcpy(g->vram + ((size_t)y * 1024 + x) * 4, &p, 4);
		}
	vgat_frame(g);
	VT_CHECK(g->w == 1024 && g->h == 768, "VBE frame is %ux%u, want 1024x768", g->w, g->h);
	bad = 0;
	for (uint32_t y = 0; y < g->h && g->w == 1024; y++)
		for (uint32_t x = 0; x < 1024; x++)
			if (vgat_px(g, x, y) != pat32(x, y)) {
				if (!bad)
					fprintf(stderr, "  (%u,%u): got %06x want %06x\n", x, y,
					        vgat_px(g, x, y), pat32(x, y));
				bad++;
			}
	VT_CHECK(bad == 0, "1024x768x32: %u pixels differ from the pattern", bad);

	/* Later LFB writes are found by the MKS's poll (no damage from anyone). */
	{
		uint32_t p = 0x123456;
		memcpy(g->vram + ((size_t)500 * 1024 + 600) * 4, &p, 4);
		vgat_frame(g);
		VT_CHECK(vgat_px(g, 600, 500) == 0x123456, "LFB write at (600,500) not seen: %06x",
		         vgat_px(g, 600, 500));
	}

	/* Panning: Y_OFFSET moves the visible window down the virtual screen. */
	vgat_dispi(g, IDX_YOFF, 10);
	vgat_frame(g);
	VT_CHECK(vgat_px(g, 3, 0) == pat32(3, 10), "Y_OFFSET 10: (3,0) = %06x want %06x",
	         vgat_px(g, 3, 0), pat32(3, 10));
	vgat_dispi(g, IDX_YOFF, 0);

	/* Banked access through 0xA0000 (GR06 map 1): bank 2 = VRAM 128 KiB up. */
	vgat_dispi(g, IDX_BANK, 2);
	VT_CHECK(vgat_dispi_read(g, IDX_BANK) == 2, "bank 2 not selected");
	vgat_mem8(g, 0xa0010, 0xab);
	VT_CHECK(g->vram[0x20010] == 0xab, "banked write went to the wrong place");
	VT_CHECK(vgat_memr8(g, 0xa0010) == 0xab, "banked read");
	vgat_dispi(g, IDX_BANK, 256);   /* one past the end: refused */
	VT_CHECK(vgat_dispi_read(g, IDX_BANK) == 2, "out-of-range bank accepted (%u)",
	         vgat_dispi_read(g, IDX_BANK));
	vgat_dispi(g, IDX_BANK, 0);

	/* 16 bpp (RGB565) with NOCLEARMEM: VRAM kept. */
	g->vram[0] = 0x77;
	set_mode(g, 800, 600, 16, 0xc0);
	VT_CHECK(g->vram[0] == 0x77, "NOCLEARMEM cleared VRAM");
	for (uint32_t i = 0; i < 800 * 600; i++) {
		uint16_t p = (uint16_t)((i % 800) < 400 ? 0xf800 : 0x07e0);
		memcpy(g->vram + i * 2, &p, 2);
	}
	vgat_frame(g);
	VT_CHECK(g->w == 800 && g->h == 600, "16 bpp frame %ux%u", g->w, g->h);
	VT_CHECK((vgat_px(g, 10, 10) & 0xf80000) == 0xf80000 && (vgat_px(g, 10, 10) & 0xff00) == 0,
	         "RGB565 red shows as %06x", vgat_px(g, 10, 10));
	VT_CHECK((vgat_px(g, 700, 300) & 0xfc00) == 0xfc00 && (vgat_px(g, 700, 300) & 0xff0000) == 0,
	         "RGB565 green shows as %06x", vgat_px(g, 700, 300));

	/* 8 bpp through the DAC, 8-bit DAC as VBE function 08h sets it. */
	set_mode(g, 640, 480, 8, 0x40);
	vgat_dispi(g, IDX_EN, 0x41 | 0x20);
	vgat_dac(g, 7, 0x80, 0x40, 0x20);
	g->vram[5 * 640 + 9] = 7;
	vgat_frame(g);
	VT_CHECK(vgat_px(g, 9, 5) == 0x804020, "8 bpp, 8-bit DAC: (9,5) = %06x", vgat_px(g, 9, 5));

	/* 24 bpp is converted by the VGA. */
	set_mode(g, 640, 480, 24, 0x40);
	g->vram[(7 * 640 + 3) * 3 + 0] = 0x11;
	g->vram[(7 * 640 + 3) * 3 + 1] = 0x22;
	g->vram[(7 * 640 + 3) * 3 + 2] = 0x33;
	vgat_frame(g);
	VT_CHECK(g->w == 640 && vgat_px(g, 3, 7) == 0x332211, "24 bpp (3,7) = %06x",
	         vgat_px(g, 3, 7));

	/* Hostile values: everything read back stays inside VRAM. */
	set_mode(g, 1024, 768, 32, 0x40);
	vgat_dispi(g, IDX_VW, 0xffff);
	vgat_dispi(g, IDX_XOFF, 0xffff);
	vgat_dispi(g, IDX_YOFF, 0xffff);
	{
		uint32_t vw = vgat_dispi_read(g, IDX_VW), xo = vgat_dispi_read(g, IDX_XOFF);
		uint32_t yo = vgat_dispi_read(g, IDX_YOFF), yres = vgat_dispi_read(g, IDX_YRES);
		uint32_t xres = vgat_dispi_read(g, IDX_XRES);
		uint64_t end = (uint64_t)yo * vw * 4 + (uint64_t)xo * 4 + (uint64_t)vw * 4 * yres;
		VT_CHECK(end <= vram_size, "panned window ends at %llu, past VRAM",
		         (unsigned long long)end);
		VT_CHECK(xo + xres <= vw, "x offset %u + %u beyond virtual width %u", xo, xres, vw);
	}
	vgat_frame(g);
	VT_CHECK(g->w == 1024 && g->h == 768, "after hostile offsets: %ux%u", g->w, g->h);
	vgat_dispi(g, IDX_EN, 0);
	vgat_dispi(g, IDX_XRES, 0xffff);
	vgat_dispi(g, IDX_YRES, 0xffff);
	vgat_dispi(g, IDX_BPP, 0x21);
	vgat_dispi(g, IDX_EN, 0x01);
	{
		uint32_t xres = vgat_dispi_read(g, IDX_XRES), yres = vgat_dispi_read(g, IDX_YRES);
		uint32_t bpp = vgat_dispi_read(g, IDX_BPP), vw = vgat_dispi_read(g, IDX_VW);
		VT_CHECK(xres <= 8192 && yres <= 8192, "huge mode kept: %ux%u", xres, yres);
		VT_CHECK(bpp == 8, "bpp 33 became %u, want 8", bpp);
		VT_CHECK((uint64_t)vw * yres * ((bpp + 7) / 8) <= vram_size, "mode %ux%u (vw %u) exceeds VRAM",
		         xres, yres, vw);
	}
	vgat_frame(g);
	VT_CHECK(g->w > 0 && g->h > 0, "no picture after a clamped huge mode");
	for (uint16_t i = 0; i < 20; i++)
		vgat_dispi(g, i, 0xffff);
	vgat_frame(g);
	/* Byte and odd-width accesses on the VBE and VGA ports go nowhere harmful. */
	devtest_out(g->t, 0x1ce, 1, 0x04);
	devtest_out(g->t, 0x1cf, 1, 0x00);
	devtest_out(g->t, 0x3c0, 4, 0xffffffff);
	devtest_out(g->t, 0x3c4, 4, 0xffffffff);
	(void)devtest_in(g->t, 0x3d4, 4);
	vgat_frame(g);

	/* Disabled: back to VGA (text registers are still power-on, screen on). */
	vgat_dispi(g, IDX_EN, 0);
	VT_CHECK(!vga_vbe_enabled(g->vga), "VBE still enabled");

	vgat_free(g);
	if (vgat_failures) {
		fprintf(stderr, "test_vga_vbe: %d check(s) failed\n", vgat_failures);
		return 1;
	}
	printf("test_vga_vbe: ok\n");
	return 0;
}

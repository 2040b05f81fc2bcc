/*
 * test_vga_text.c — text mode 3 programmed through the registers as a VGA
 * BIOS does it: parameter table, a font loaded into plane 2 in planar mode,
 * DAC palette, characters written through the 0xB8000 window in odd/even
 * mode; the picture is checked pixel by pixel in the MKS shadow
 * (mks_with_frame), and the damage the MKS passes on is checked for a
 * one-cell change.
 */
#include <stdlib.h>
#include <string.h>

#include "vgatest.h"

#define COLS 80
#define ROWS 25
#define CW   9
#define CH   16

static uint8_t glyph(unsigned c, unsigned l)
{
	return (uint8_t)((c * 37u) ^ (l * 0x5bu) ^ 0xa5u);
}

static uint32_t dac_rgb(unsigned e)
{
	return (vgat_c6(e) << 16) | (vgat_c6(63 - e) << 8) | vgat_c6(e * 5);
}

/* Colour index -> RGB through mode 3's attribute palette (AR10 bit 7 clear, AR14 = 0). */
static uint32_t pal16(unsigned i)
{
	return dac_rgb(vgat_mode3.attr[i & 15]);
}

static void load_font(struct vgat *g, uint8_t (*fn)(unsigned, unsigned))
{
	/* SeaVGABIOS's get_font_access / release_font_access */
	vgat_seq(g, 2, 0x04);
	vgat_seq(g, 4, 0x07);
	vgat_gr(g, 4, 0x02);
	vgat_gr(g, 5, 0x00);
	vgat_gr(g, 6, 0x04);
	for (unsigned c = 0; c < 256; c++)
		for (unsigned l = 0; l < CH; l++)
			vgat_mem8(g, 0xa0000 + c * 32 + l, fn(c, l));
	vgat_seq(g, 2, 0x03);
	vgat_seq(g, 4, 0x03);
	vgat_gr(g, 4, 0x00);
	vgat_gr(g, 5, 0x10);
	vgat_gr(g, 6, 0x0e);
}

static void put(struct vgat *g, unsigned r, unsigned c, uint8_t ch, uint8_t at)
{
	/* one 16-bit write: character and attribute in one go, as rep stosw does */
	devtest_mmio_write(g->t, 0xb8000 + 2 * (r * COLS + c), 2, (uint64_t)ch | ((uint64_t)at << 8));
}

/* Compare one cell with what it must look like; returns mismatching pixels. */
static unsigned check_cell(struct vgat *g, unsigned r, unsigned c, uint8_t ch, uint8_t at,
                           bool cursor, uint8_t (*fn)(unsigned, unsigned))
{
	unsigned bad = 0, fgi = at & 15, bgi = (at >> 4) & 7;   /* AR10 bit 3: blink, 3-bit bg */

	for (unsigned l = 0; l < CH; l++) {
		unsigned gl = fn(ch, l);
		if (cursor && l >= 13 && l <= 14)
			gl = 0x1ff;
		for (unsigned x = 0; x < CW; x++) {
			bool on;
			if (x < 8)
				on = (gl >> (7 - x)) & 1;
			else
				on = (gl & 0x100) || (ch >= 0xc0 && ch <= 0xdf && (gl & 1));
			uint32_t want = on ? pal16(fgi) : pal16(bgi);
			uint32_t got = vgat_px(g, c * CW + x, r * CH + l);
			if (got != want) {
				if (!bad)
					fprintf(stderr, "  cell (%u,%u) pixel (%u,%u): got %06x want %06x\n",
					        r, c, x, l, got, want);
				bad++;
			}
		}
	}
	return bad;
}

static uint8_t glyph2(unsigned c, unsigned l)
{
	return c == 'H' ? (uint8_t)(0x81 | (l << 2)) : glyph(c, l);
}

int main(void)
{
	struct vgat *g = vgat_new(16u << 20);

	if (!g)
		return 1;

	/* A mode set as the BIOS does it: blank, registers, DAC, font, text, screen on. */
	vgat_set_regs(g, &vgat_mode3);
	for (unsigned e = 0; e < 64; e++)
		vgat_dac(g, (uint8_t)e, (uint8_t)e, (uint8_t)(63 - e), (uint8_t)((e * 5) & 63));
	load_font(g, glyph);

	vgat_frame(g);
	VT_CHECK(g->nupdates == 0 || vgat_px(g, 0, 0) == 0,
	         "screen not blank before the palette address source is set");

	put(g, 0, 0, 'H', 0x1f);
	put(g, 0, 1, 'i', 0x1f);
	put(g, 1, 5, 'c', 0x07);
	put(g, 10, 40, 0xc4, 0x2e);
	put(g, 10, 41, 'H', 0x2e);
	put(g, 24, 79, 'Z', 0xca);
	vgat_crtc(g, 0x0e, 0);
	vgat_crtc(g, 0x0f, 1 * COLS + 5);
	vgat_screen_on(g);

	vgat_frame(g);
	VT_CHECK(g->w == COLS * CW && g->h == ROWS * CH, "mode 3 frame is %ux%u, want 720x400",
	         g->w, g->h);
	if (g->w != COLS * CW || g->h != ROWS * CH)
		goto out;

	VT_CHECK(check_cell(g, 0, 0, 'H', 0x1f, false, glyph) == 0, "cell (0,0) 'H'");
	VT_CHECK(check_cell(g, 0, 1, 'i', 0x1f, false, glyph) == 0, "cell (0,1) 'i'");
	VT_CHECK(check_cell(g, 1, 5, 'c', 0x07, true, glyph) == 0, "cell (1,5) with the cursor");
	VT_CHECK(check_cell(g, 10, 40, 0xc4, 0x2e, false, glyph) == 0,
	         "line-graphics cell: column 9 repeats column 8");
	VT_CHECK(check_cell(g, 10, 41, 'H', 0x2e, false, glyph) == 0, "cell (10,41)");
	VT_CHECK(check_cell(g, 24, 79, 'Z', 0xca, false, glyph) == 0,
	         "blinking cell (blink on phase, 3-bit background)");
	VT_CHECK(check_cell(g, 5, 5, 0, 0, false, glyph) == 0, "an empty cell");

	/* The text reads back through the window (odd/even read mode). */
	VT_CHECK(vgat_memr8(g, 0xb8000) == 'H' && vgat_memr8(g, 0xb8001) == 0x1f,
	         "reading back cell 0 gave %02x %02x", vgat_memr8(g, 0xb8000), vgat_memr8(g, 0xb8001));

	/* One changed cell: that cell reaches the back end, not the whole screen. */
	vgat_clear_updates(g);
	put(g, 12, 30, 'Q', 0x4f);
	vgat_frame(g);
	VT_CHECK(check_cell(g, 12, 30, 'Q', 0x4f, false, glyph) == 0, "changed cell (12,30)");
	VT_CHECK(g->nupdates > 0, "no update reached the back end after a cell change");
	VT_CHECK(g->ux0 <= 30 * CW && g->uy0 <= 12 * CH && g->ux1 >= 31 * CW && g->uy1 >= 13 * CH,
	         "update [%d,%d)-[%d,%d) misses the changed cell", g->ux0, g->uy0, g->ux1, g->uy1);
	VT_CHECK((g->ux1 - g->ux0) * (g->uy1 - g->uy0) < 64 * 64,
	         "one cell changed but [%d,%d)-[%d,%d) was updated", g->ux0, g->uy0, g->ux1, g->uy1);

	/* No change: nothing to send. */
	vgat_clear_updates(g);
	vgat_frame(g);
	VT_CHECK(g->nupdates == 0, "an unchanged screen produced %u updates", g->nupdates);

	/* The cursor moves: old cell loses it, new cell gets it. */
	vgat_crtc(g, 0x0e, (12 * COLS + 30) >> 8);
	vgat_crtc(g, 0x0f, (12 * COLS + 30) & 0xff);
	vgat_frame(g);
	VT_CHECK(check_cell(g, 1, 5, 'c', 0x07, false, glyph) == 0, "old cursor cell");
	VT_CHECK(check_cell(g, 12, 30, 'Q', 0x4f, true, glyph) == 0, "new cursor cell");
	/* Cursor off (CR0A bit 5). */
	vgat_crtc(g, 0x0a, 0x2d);
	vgat_frame(g);
	VT_CHECK(check_cell(g, 12, 30, 'Q', 0x4f, false, glyph) == 0, "cursor disabled");
	vgat_crtc(g, 0x0a, 0x0d);

	/* A new font: every cell is redrawn from plane 2. */
	vgat_clear_updates(g);
	load_font(g, glyph2);
	vgat_screen_on(g);
	vgat_frame(g);
	VT_CHECK(check_cell(g, 0, 0, 'H', 0x1f, false, glyph2) == 0, "'H' after the font change");
	VT_CHECK(check_cell(g, 10, 41, 'H', 0x2e, false, glyph2) == 0, "second 'H' after the font change");
	VT_CHECK(g->ux1 - g->ux0 == COLS * CW && g->uy1 - g->uy0 == ROWS * CH,
	         "a font change updated only [%d,%d)-[%d,%d)", g->ux0, g->uy0, g->ux1, g->uy1);

	/* A palette change recolours the text. */
	vgat_dac(g, 0x3f, 10, 20, 30);   /* attribute 0x0f -> DAC 0x3f */
	vgat_frame(g);
	{
		uint32_t white = (vgat_c6(10) << 16) | (vgat_c6(20) << 8) | vgat_c6(30);
		unsigned n = 0;
		for (unsigned l = 0; l < CH; l++)
			for (unsigned x = 0; x < 8; x++)
				if (((glyph2('H', l) >> (7 - x)) & 1) && vgat_px(g, x, l) == white)
					n++;
		VT_CHECK(n > 0, "DAC entry 0x3f change not visible in the white 'H'");
	}
	vgat_dac(g, 0x3f, 0x3f, 0, (0x3f * 5) & 63);

	/* Hardware scrolling: the start address moves the picture by a row. */
	vgat_crtc(g, 0x0c, 0);
	vgat_crtc(g, 0x0d, COLS);
	vgat_frame(g);
	VT_CHECK(check_cell(g, 0, 5, 'c', 0x07, false, glyph2) == 0, "row 1 shown at the top");
	VT_CHECK(check_cell(g, 11, 30, 'Q', 0x4f, true, glyph2) == 0, "cursor follows the start address");
	vgat_crtc(g, 0x0d, 0);

	/* Screen off (SR01 bit 5): black. */
	vgat_seq(g, 1, 0x20);
	vgat_frame(g);
	VT_CHECK(vgat_px(g, 4, 4) == 0 && vgat_px(g, 30 * CW + 2, 12 * CH + 3) == 0,
	         "screen-off still shows pixels");
	vgat_seq(g, 1, 0x00);
	vgat_frame(g);
	VT_CHECK(check_cell(g, 0, 1, 'i', 0x1f, false, glyph2) == 0, "screen back on");

	/* 8-dot characters (SR01 bit 0): 640 pixels wide. */
	vgat_seq(g, 1, 0x01);
	vgat_frame(g);
	VT_CHECK(g->w == 640 && g->h == 400, "8-dot text is %ux%u, want 640x400", g->w, g->h);

	/* Inactive (SVGA owns the scanout): the VGA leaves the MKS alone. */
	vga_set_active(g->vga, false);
	vgat_seq(g, 1, 0x00);
	vgat_frame(g);
	VT_CHECK(g->w == 640, "inactive VGA still changed the scanout (%ux%u)", g->w, g->h);
	vga_set_active(g->vga, true);
	vgat_frame(g);
	VT_CHECK(g->w == 720, "re-activated VGA did not give its scanout back (%ux%u)", g->w, g->h);
out:
	vgat_free(g);
	if (vgat_failures) {
		fprintf(stderr, "test_vga_text: %d check(s) failed\n", vgat_failures);
		return 1;
	}
	printf("test_vga_text: ok\n");
	return 0;
}

/*
 * vga_render.c — what the VGA shows: decode the mode from the registers,
 * render text and 16-colour modes into the VGA's own pixel buffer, and keep
 * the MKS's scanout in step (see vga.h).
 *
 * Text: every refresh compares each cell's character, attribute, cursor and
 * blink state with what was drawn; changed cells are redrawn from the font
 * in plane 2 and reported as one damage rectangle per text row.  A new font,
 * palette or geometry redraws everything.
 * 16-colour planar and VBE 24 bpp: rendered whole into the pixel buffer when
 * VRAM or the palette changed (24 bpp every refresh: the guest writes it
 * through the linear framebuffer without telling us), given to the MKS with
 * poll = true so it finds the changed pixels itself.
 * 256 colours and VBE 8/15/16/32 bpp: scanouts straight into VRAM, poll = true.
 *
 * All functions run with v->lock held; the MKS is called under it (its
 * locks rank above ours).
 */
#include <stdlib.h>
#include <string.h>

#include "../log.h"
#include "vga_priv.h"

#define VGA_PLANE_SIZE 0x10000u

uint32_t vga_dac_rgb(const struct vga *v, unsigned i)
{
	const uint8_t *p = &v->palette[(i & 0xff) * 3];
	uint32_t c[3];

	for (int k = 0; k < 3; k++) {
		if (v->vbe[VBE_IDX_ENABLE] & VBE_8BIT_DAC) {
			c[k] = p[k];
		} else {
			uint32_t x = p[k] & 0x3f;
			c[k] = (x << 2) | (x >> 4);
		}
	}
	return (c[0] << 16) | (c[1] << 8) | c[2];
}

/* The 16 colours of text and planar modes: attribute palette, colour select, DAC. */
static void vga_pal16(const struct vga *v, uint32_t out[16])
{
	for (unsigned i = 0; i < 16; i++) {
		unsigned x = v->ar[i] & 0x3f;
		if (v->ar[0x10] & 0x80)
			x = (x & 0x0f) | ((v->ar[0x14] & 0x03u) << 4);
		x |= (v->ar[0x14] & 0x0cu) << 4;
		out[i] = vga_dac_rgb(v, x);
	}
}

/* ------------------------------------------------------------ decoding */

static void vga_decode(const struct vga *v, struct vga_mode *m)
{
	memset(m, 0, sizeof(*m));
	const uint8_t *cr = v->cr;

	if (v->vbe[VBE_IDX_ENABLE] & VBE_ENABLED) {
		unsigned bpp = v->vbe[VBE_IDX_BPP];
		m->width = v->vbe[VBE_IDX_XRES];
		m->height = v->vbe[VBE_IDX_YRES];
		m->start = v->vbe_start;
		m->stride = v->vbe_line_offset;
		switch (bpp) {
		case 4:
			m->kind = VGA_K_PLANAR;
			m->start = v->vbe_start / 4;
			m->stride = v->vbe_line_offset / 4;
			m->plane_limit = 0;          /* no wrap: bounded by VRAM */
			break;
		case 8:
			m->kind = VGA_K_DIRECT;
			m->format = MKS_FMT_PAL8;
			break;
		case 15:
			m->kind = VGA_K_DIRECT;
			m->format = MKS_FMT_RGB555;
			break;
		case 16:
			m->kind = VGA_K_DIRECT;
			m->format = MKS_FMT_RGB565;
			break;
		case 24:
			m->kind = VGA_K_VBE24;
			break;
		default:
			m->kind = VGA_K_DIRECT;
			m->format = MKS_FMT_XRGB8888;
			break;
		}
		if (m->width > MKS_MAX_WIDTH || m->height > MKS_MAX_HEIGHT)
			m->kind = VGA_K_BLANK;
		return;
	}

	/* Palette address source off (the BIOS programs the palette) or screen off: blank. */
	if (!(v->ar_index & 0x20) || (v->sr[1] & 0x20)) {
		m->kind = VGA_K_BLANK;
		return;
	}
	uint32_t vde = cr[0x12] | ((cr[7] & 0x02u) << 7) | ((cr[7] & 0x40u) << 3);
	uint32_t lines = vde + 1;
	uint32_t scan = (cr[9] & 0x1fu) + 1;
	uint32_t dbl = (cr[9] & 0x80) ? 2 : 1;
	uint32_t hchars = cr[1] + 1u;

	if (!(v->gr[6] & 1)) {
		m->kind = VGA_K_TEXT;
		m->cols = hchars;
		m->cw = (v->sr[1] & 1) ? 8 : 9;
		m->ch = scan;
		m->rows = lines / (scan * dbl);
		m->line_cells = cr[0x13] * 2u;
		m->start = ((uint32_t)cr[0x0c] << 8) | cr[0x0d];
		m->cursor = ((uint32_t)cr[0x0e] << 8) | cr[0x0f];
		m->cur_start = cr[0x0a] & 0x1f;
		m->cur_end = cr[0x0b] & 0x1f;
		if (cr[0x0a] & 0x20)
			m->cur_start = 0xff;     /* cursor off */
		m->font_sel = v->sr[3];
		m->ar10 = v->ar[0x10];
		m->width = m->cols * m->cw;
		m->height = m->rows * m->ch;
		if (!m->rows || m->width > MKS_MAX_WIDTH || m->height > MKS_MAX_HEIGHT)
			m->kind = VGA_K_BLANK;
		return;
	}

	m->height = lines / (scan * dbl);
	m->start = ((uint32_t)cr[0x0c] << 8) | cr[0x0d];
	if (v->gr[5] & 0x40) {
		/* 256 colours: chain-4 and unchained alike are linear in our VRAM layout */
		m->kind = VGA_K_DIRECT;
		m->format = MKS_FMT_PAL8;
		m->width = hchars * 4;
		m->start *= 4;
		m->stride = cr[0x13] * 8u;
		if (m->stride < m->width || m->start >= v->vram_size) {
			m->kind = VGA_K_BLANK;
			return;
		}
		uint64_t fit = (v->vram_size - m->start) / m->stride;
		if (m->height > fit)
			m->height = (uint32_t)fit;
	} else {
		/* 16 colours from four planes (the CGA-compatible 4-colour shift mode is drawn as planar) */
		m->kind = VGA_K_PLANAR;
		m->width = hchars * 8;
		m->stride = cr[0x13] * 2u;
		m->plane_limit = VGA_PLANE_SIZE;
	}
	if (!m->height || m->width > MKS_MAX_WIDTH || m->height > MKS_MAX_HEIGHT)
		m->kind = VGA_K_BLANK;
}

/* ------------------------------------------------------------- scanout */

static bool vga_so_same(const struct mks_scanout *a, const struct mks_scanout *b)
{
	if (a->base != b->base || a->width != b->width || a->height != b->height ||
	    a->stride != b->stride || a->format != b->format || a->poll != b->poll ||
	    a->dirty != b->dirty || a->dirty_opaque != b->dirty_opaque)
		return false;
	return a->format != MKS_FMT_PAL8 || memcmp(a->palette, b->palette, sizeof(a->palette)) == 0;
}

/* Give the MKS this scanout unless it has it already; true when it was (re)set. */
static bool vga_so_apply(struct vga *v, const struct mks_scanout *so)
{
	if (v->so_set && vga_so_same(&v->so, so))
		return false;
	if (!v->mks) {
		v->so = *so;
		v->so_set = true;
		return true;
	}
	if (mks_scanout_set(v->mks, so) != 0) {
		/* refused: show nothing rather than an old buffer we may free */
		mks_scanout_disable(v->mks);
		v->so_set = false;
		v->so_disabled = true;
		return false;
	}
	v->so = *so;
	v->so_set = true;
	v->so_disabled = false;
	return true;
}

static void vga_so_blank(struct vga *v)
{
	if (v->so_disabled)
		return;
	if (v->mks)
		mks_scanout_disable(v->mks);
	v->so_set = false;
	v->so_disabled = true;
}

/* Make fb w x h; an old buffer the MKS still reads is taken from it first. */
static int vga_fb_ensure(struct vga *v, uint32_t w, uint32_t h, bool *fresh)
{
	uint32_t *nfb, *old = v->fb;

	*fresh = false;
	if (v->fb && v->fb_w == w && v->fb_h == h)
		return 0;
	nfb = calloc((size_t)w * h, sizeof(uint32_t));
	if (!nfb) {
		vlog_error("vga: out of memory for a %ux%u screen", w, h);
		return -1;
	}
	if (old && v->so_set && v->so.base == (const uint8_t *)old)
		vga_so_blank(v);
	free(old);
	v->fb = nfb;
	v->fb_w = w;
	v->fb_h = h;
	*fresh = true;
	return 0;
}

/* ---------------------------------------------------------------- text */

static unsigned vga_font_offset(unsigned sel)
{
	return (sel & 3) * 0x4000u + (sel >> 2) * 0x2000u;
}

static void vga_draw_cell(struct vga *v, const struct vga_mode *m, const uint32_t pal[16],
                          uint32_t row, uint32_t col, uint32_t key)
{
	unsigned chr = key & 0xff, at = (key >> 8) & 0xff;
	bool cursor = (key >> 16) & 1, blink_off = (key >> 17) & 1;
	unsigned fgi = at & 0x0f, bgi = at >> 4;
	unsigned sel_a = ((m->font_sel >> 2) & 3) | ((m->font_sel >> 3) & 4);
	unsigned sel_b = (m->font_sel & 3) | ((m->font_sel >> 2) & 4);
	unsigned font = vga_font_offset((at & 0x08) ? sel_a : sel_b);
	bool lge = (m->ar10 & 0x04) && chr >= 0xc0 && chr <= 0xdf;

	if (m->ar10 & 0x08)
		bgi &= 7;
	if (blink_off)
		fgi = bgi;
	uint32_t fg = pal[fgi], bg = pal[bgi];
	uint32_t *dst = v->fb + (size_t)row * m->ch * v->fb_w + (size_t)col * m->cw;

	for (uint32_t l = 0; l < m->ch; l++, dst += v->fb_w) {
		unsigned g = 0;
		if (l < 32) {
			size_t o = ((font + chr * 32u + l) & (VGA_PLANE_SIZE - 1)) * 4u + 2;
			g = v->vram[o];
		}
		if (cursor && l >= m->cur_start && l <= m->cur_end)
			g = 0xff | 0x100;
		for (unsigned x = 0; x < 8; x++)
			dst[x] = (g & (0x80u >> x)) ? fg : bg;
		if (m->cw == 9)
			dst[8] = ((g & 0x100) || (lge && (g & 1))) ? fg : bg;
	}
}

static void vga_text_refresh(struct vga *v, const struct vga_mode *m)
{
	uint32_t pal[16];
	bool fresh;
	struct vga_mode a = *m, b = v->cur;

	a.cursor = b.cursor = 0;
	bool redraw_all = !v->cur_valid || memcmp(&a, &b, sizeof(a)) != 0 ||
	                  v->drawn_font_gen != v->font_gen || v->drawn_pal_gen != v->pal_gen;

	if (vga_fb_ensure(v, m->width, m->height, &fresh) != 0) {
		vga_so_blank(v);
		v->cur_valid = false;
		return;
	}
	uint32_t n = m->cols * m->rows;
	if (n != v->ncells || !v->cells || !v->dmg) {
		uint32_t *c = realloc(v->cells, n * sizeof(*c));
		struct mks_rect *d = realloc(v->dmg, m->rows * sizeof(*d));
		if (c)
			v->cells = c;
		if (d)
			v->dmg = d;
		if (!c || !d) {
			vlog_error("vga: out of memory for %u text cells", n);
			v->ncells = 0;
			vga_so_blank(v);
			v->cur_valid = false;
			return;
		}
		v->ncells = n;
		redraw_all = true;
	}
	if (fresh || redraw_all)
		memset(v->cells, 0xff, n * sizeof(*v->cells));

	vga_pal16(v, pal);
	bool cursor_on = m->cur_start <= m->cur_end && m->cur_start < m->ch && !((v->frame >> 3) & 1);
	bool blink_phase_off = ((v->frame >> 4) & 1) != 0;
	uint32_t cur_off = m->cursor & (VGA_PLANE_SIZE - 1);
	unsigned ndmg = 0;

	for (uint32_t r = 0; r < m->rows; r++) {
		int32_t lo = -1, hi = -1;
		for (uint32_t c = 0; c < m->cols; c++) {
			uint32_t o = (m->start + r * m->line_cells + c) & (VGA_PLANE_SIZE - 1);
			uint32_t chr = v->vram[o * 4u], at = v->vram[o * 4u + 1];
			uint32_t key = chr | (at << 8);
			if (cursor_on && o == cur_off)
				key |= 1u << 16;
			if ((m->ar10 & 0x08) && (at & 0x80) && blink_phase_off)
				key |= 1u << 17;
			uint32_t *slot = &v->cells[r * m->cols + c];
			if (*slot == key)
				continue;
			*slot = key;
			vga_draw_cell(v, m, pal, r, c, key);
			if (lo < 0)
				lo = (int32_t)c;
			hi = (int32_t)c;
		}
		if (lo >= 0)
			v->dmg[ndmg++] = (struct mks_rect){ lo * (int32_t)m->cw, (int32_t)(r * m->ch),
			                                    (hi - lo + 1) * (int32_t)m->cw, (int32_t)m->ch };
	}
	v->drawn_font_gen = v->font_gen;
	v->drawn_pal_gen = v->pal_gen;

	struct mks_scanout so;
	memset(&so, 0, sizeof(so));
	so.base = (const uint8_t *)v->fb;
	so.width = m->width;
	so.height = m->height;
	so.stride = m->width * 4;
	so.format = MKS_FMT_XRGB8888;
	so.poll = false;
	if (vga_so_apply(v, &so) || !v->so_set || !v->mks)
		return;   /* a new scanout is damaged whole */
	for (unsigned i = 0; i < ndmg; i++)
		mks_damage(v->mks, v->dmg[i].x, v->dmg[i].y, v->dmg[i].w, v->dmg[i].h);
}

/* ------------------------------------------------------ planar, 24 bpp */

static void vga_planar_render(struct vga *v, const struct vga_mode *m)
{
	uint32_t pal[16];
	unsigned enable = v->ar[0x12] & 0x0f;

	vga_pal16(v, pal);
	for (uint32_t y = 0; y < m->height; y++) {
		uint32_t *dst = v->fb + (size_t)y * v->fb_w;
		uint64_t row = (uint64_t)m->start + (uint64_t)y * m->stride;
		for (uint32_t xb = 0; xb < m->width / 8; xb++) {
			uint64_t o = row + xb;
			uint8_t p[4] = { 0, 0, 0, 0 };
			if (m->plane_limit)
				o &= m->plane_limit - 1;
			if (o * 4 + 4 <= v->vram_size)
				memcpy(p, v->vram + o * 4, 4);
			for (unsigned bit = 0; bit < 8; bit++) {
				unsigned s = 7 - bit;
				unsigned c = ((p[0] >> s) & 1) | (((p[1] >> s) & 1) << 1) |
				             (((p[2] >> s) & 1) << 2) | (((p[3] >> s) & 1) << 3);
				dst[xb * 8 + bit] = pal[c & enable];
			}
		}
	}
}

static void vga_vbe24_render(struct vga *v, const struct vga_mode *m)
{
	for (uint32_t y = 0; y < m->height; y++) {
		const uint8_t *src = v->vram + m->start + (size_t)y * m->stride;
		uint32_t *dst = v->fb + (size_t)y * v->fb_w;
		for (uint32_t x = 0; x < m->width; x++, src += 3)
			dst[x] = ((uint32_t)src[2] << 16) | ((uint32_t)src[1] << 8) | src[0];
	}
}

static void vga_fb_refresh(struct vga *v, const struct vga_mode *m)
{
	bool fresh;
	bool changed = !v->cur_valid || memcmp(m, &v->cur, sizeof(*m)) != 0;

	if (vga_fb_ensure(v, m->width, m->height, &fresh) != 0) {
		vga_so_blank(v);
		v->cur_valid = false;
		return;
	}
	if (m->kind == VGA_K_VBE24) {
		vga_vbe24_render(v, m);
	} else if (fresh || changed || v->drawn_vram_gen != v->vram_gen ||
	           v->drawn_pal_gen != v->pal_gen) {
		vga_planar_render(v, m);
		v->drawn_vram_gen = v->vram_gen;
		v->drawn_pal_gen = v->pal_gen;
	}
	struct mks_scanout so;
	memset(&so, 0, sizeof(so));
	so.base = (const uint8_t *)v->fb;
	so.width = m->width;
	so.height = m->height;
	so.stride = m->width * 4;
	so.format = MKS_FMT_XRGB8888;
	so.poll = true;
	vga_so_apply(v, &so);
}

/* ------------------------------------------------------------- refresh */

void vga_render_refresh(struct vga *v)
{
	struct vga_mode m;

	vga_decode(v, &m);
	switch (m.kind) {
	case VGA_K_TEXT:
		vga_text_refresh(v, &m);
		break;
	case VGA_K_PLANAR:
	case VGA_K_VBE24:
		vga_fb_refresh(v, &m);
		break;
	case VGA_K_DIRECT: {
		struct mks_scanout so;
		memset(&so, 0, sizeof(so));
		so.base = v->vram + m.start;
		so.width = m.width;
		so.height = m.height;
		so.stride = m.stride;
		so.format = m.format;
		so.poll = true;
		so.dirty = v->dirty;
		so.dirty_opaque = v->dirty_opaque;
		if (m.format == MKS_FMT_PAL8)
			for (unsigned i = 0; i < 256; i++)
				so.palette[i] = vga_dac_rgb(v, i);
		vga_so_apply(v, &so);
		break;
	}
	default:
		vga_so_blank(v);
		break;
	}
	v->cur = m;
	v->cur_valid = m.kind != VGA_K_BLANK;
}

void vga_render_free(struct vga *v)
{
	free(v->fb);
	free(v->cells);
	free(v->dmg);
	v->fb = NULL;
	v->cells = NULL;
	v->dmg = NULL;
	v->ncells = 0;
}

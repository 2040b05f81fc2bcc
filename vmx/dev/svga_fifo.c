/*
 * svga_fifo.c — the SVGA II command FIFO and the 2D commands 6.1 uses:
 * UPDATE, RECT_COPY, cursors, FENCE, Screen Objects, GMRFB blits, GMR2.
 *
 * Everything here reads guest-written bytes.  The ring words (MIN, MAX,
 * NEXT_CMD, STOP) are re-validated on every pass; a command is copied out
 * of the ring (gathered across the wrap point) before it is decoded, so the
 * guest cannot change it under the decoder; a command that is not yet fully
 * committed is left for the next pass (6.1 without RESERVE publishes commands
 * one dword at a time).  A command whose length cannot be known (unknown
 * ID, or longer than the ring) makes the rest of the ring undecodable: it is
 * dropped (STOP = NEXT_CMD) and logged.  Commands with bad arguments are
 * consumed, logged and have no effect.  Called with the device lock held.
 */
#include <stdlib.h>
#include <string.h>

#include "../log.h"
#include "../mem.h"
#include "../vm.h"
#include "../../mks/mks.h"
#include "svga.h"

#pragma weak mks_damage
#pragma weak mks_copy_rect
#pragma weak mks_cursor_define
#pragma weak mks_cursor_move

#define SVGA_PAGE      (1u << SVGA_PAGE_SHIFT)
#define SVGA_PPN_LIMIT (1ull << (64 - SVGA_PAGE_SHIFT))
#define SVGA_3D_CMD_BASE 1040u
#define SVGA_3D_CMD_MAX  1303u

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static uint32_t fifo_get(const struct svga *s, unsigned idx)
{
	return __atomic_load_n(&s->fifo_w[idx], __ATOMIC_ACQUIRE);
}

/* Host-owned words live below MIN; past it they would overwrite commands. */
static void fifo_set(struct svga *s, unsigned idx, uint32_t v)
{
	uint32_t min = fifo_get(s, SVGA_FIFO_MIN);

	if ((uint64_t)idx * 4 + 4 <= min)
		__atomic_store_n(&s->fifo_w[idx], v, __ATOMIC_RELEASE);
}

void svga_fifo_init_regs(struct svga *s)
{
	s->fifo_w[SVGA_FIFO_CAPABILITIES] =
		SVGA_FIFO_CAP_FENCE | SVGA_FIFO_CAP_PITCHLOCK | SVGA_FIFO_CAP_CURSOR_BYPASS_3 |
		SVGA_FIFO_CAP_RESERVE | SVGA_FIFO_CAP_SCREEN_OBJECT | SVGA_FIFO_CAP_GMR2 |
		SVGA_FIFO_CAP_SCREEN_OBJECT_2;
	s->fifo_w[SVGA_FIFO_FLAGS] = 0;
	s->fifo_w[SVGA_FIFO_3D_HWVERSION] = 0;          /* no 3D */
	s->fifo_w[SVGA_FIFO_3D_HWVERSION_REVISED] = 0;
	s->fifo_w[SVGA_FIFO_CURSOR_SCREEN_ID] = SVGA_ID_INVALID;
}

void svga_fifo_reset(struct svga *s)
{
	for (unsigned i = 0; i < SVGA_GMR_MAX_IDS; i++) {
		free(s->gmrs[i].ppn);
		s->gmrs[i].ppn = NULL;
		s->gmrs[i].npages = 0;
	}
	s->gmr_pages = 0;
	memset(s->screens, 0, sizeof(s->screens));
	memset(&s->gmrfb, 0, sizeof(s->gmrfb));
	s->fifo_cursor_count = 0;
	s->last_fence = 0;
}

/* ---- guest memory through GMRs ---- */

static void svga_mem_written(struct svga *s, uint64_t gpa, uint64_t len)
{
	struct vmx_vm *vm = s->vm;

	if (vm->engine && vm->evm && vm->engine->vm_mem_written)
		vm->engine->vm_mem_written(vm->evm, gpa, len);
}

static int svga_gmr_access(struct svga *s, uint32_t gmr, uint64_t off, uint8_t *buf,
                           size_t len, bool write)
{
	const struct svga_gmr *g;

	if (gmr == SVGA_GMR_FRAMEBUFFER) {
		if (off > s->vram_size || len > s->vram_size - off)
			return -1;
		if (write)
			memmove(s->vram + off, buf, len);
		else
			memmove(buf, s->vram + off, len);
		return 0;
	}
	if (gmr >= SVGA_GMR_MAX_IDS)
		return -1;
	g = &s->gmrs[gmr];
	if (off > ((uint64_t)g->npages << SVGA_PAGE_SHIFT) ||
	    len > ((uint64_t)g->npages << SVGA_PAGE_SHIFT) - off)
		return -1;
	while (len) {
		uint64_t pg = off >> SVGA_PAGE_SHIFT, in = off & (SVGA_PAGE - 1);
		uint64_t ppn = g->ppn[pg];
		size_t chunk = SVGA_PAGE - in;
		uint64_t k = 1;
		uint8_t *p;

		if (ppn == SVGA_PPN_INVALID)
			return -1;
		/* Physically contiguous pages make one chunk. */
		while (chunk < len && pg + k < g->npages && g->ppn[pg + k] == ppn + k) {
			k++;
			chunk += SVGA_PAGE;
		}
		if (chunk > len)
			chunk = len;
		p = gmem_ptr(&s->vm->mem, (ppn << SVGA_PAGE_SHIFT) + in, chunk);
		if (!p && k > 1) {
			/* The run crosses a RAM region boundary: one page at a time. */
			chunk = SVGA_PAGE - in < len ? SVGA_PAGE - in : len;
			p = gmem_ptr(&s->vm->mem, (ppn << SVGA_PAGE_SHIFT) + in, chunk);
		}
		if (!p)
			return -1;
		if (write) {
			memcpy(p, buf, chunk);
			svga_mem_written(s, (ppn << SVGA_PAGE_SHIFT) + in, chunk);
		} else {
			memcpy(buf, p, chunk);
		}
		buf += chunk;
		off += chunk;
		len -= chunk;
	}
	return 0;
}

int svga_gmr_read(struct svga *s, uint32_t gmr, uint64_t off, void *buf, size_t len)
{
	return svga_gmr_access(s, gmr, off, buf, len, false);
}

int svga_gmr_write(struct svga *s, uint32_t gmr, uint64_t off, const void *buf, size_t len)
{
	return svga_gmr_access(s, gmr, off, (uint8_t *)(uintptr_t)buf, len, true);
}

/* ---- output helpers ---- */

/* Damage in the coordinates of screen `id` (or the legacy GFB when id < 0). */
static void svga_damage(struct svga *s, int id, int64_t x, int64_t y, int64_t w, int64_t h)
{
	struct mks *m = svga_mks(s);

	if (!m || w <= 0 || h <= 0)
		return;
	if (id >= 0 ? (s->scanout_kind != 2 || s->scanout_screen != id) : s->scanout_kind != 1)
		return;
	mks_damage(m, (int32_t)x, (int32_t)y, (int32_t)w, (int32_t)h);
}

/* ---- commands ---- */

static void cmd_update(struct svga *s, const uint8_t *b)
{
	int64_t x = rd32(b + 4), y = rd32(b + 8), w = rd32(b + 12), h = rd32(b + 16);

	if (x > MKS_MAX_WIDTH || y > MKS_MAX_HEIGHT || w > MKS_MAX_WIDTH || h > MKS_MAX_HEIGHT) {
		vlog_guest("svga: UPDATE %lld,%lld %lldx%lld out of range", (long long)x,
		           (long long)y, (long long)w, (long long)h);
		return;
	}
	if (s->scanout_kind == 2) {
		const struct svga_screen *sc = &s->screens[s->scanout_screen];
		svga_damage(s, s->scanout_screen, x - sc->root_x, y - sc->root_y, w, h);
	} else {
		svga_damage(s, -1, x, y, w, h);
	}
}

struct svga_surf {
	uint8_t *base;
	uint32_t w, h, pitch, bpp;   /* bytes per pixel */
};

static bool svga_cur_surface(struct svga *s, struct svga_surf *sf, int *id)
{
	if (s->scanout_kind == 2) {
		const struct svga_screen *sc = &s->screens[s->scanout_screen];
		*sf = (struct svga_surf){ s->vram + sc->offset, sc->width, sc->height, sc->pitch, 4 };
		*id = s->scanout_screen;
		return true;
	}
	if (s->scanout_kind == 1) {
		*sf = (struct svga_surf){ s->vram, s->width, s->height, svga_gfb_pitch(s),
		                          s->bpp / 8 };
		*id = -1;
		return true;
	}
	return false;
}

static void cmd_rect_copy(struct svga *s, const uint8_t *b)
{
	uint32_t sx = rd32(b + 4), sy = rd32(b + 8), dx = rd32(b + 12), dy = rd32(b + 16);
	uint32_t w = rd32(b + 20), h = rd32(b + 24);
	struct svga_surf sf;
	int id;

	if (!svga_cur_surface(s, &sf, &id))
		return;
	if (!w || !h || (uint64_t)sx + w > sf.w || (uint64_t)dx + w > sf.w ||
	    (uint64_t)sy + h > sf.h || (uint64_t)dy + h > sf.h) {
		vlog_guest("svga: RECT_COPY %u,%u->%u,%u %ux%u outside %ux%u", sx, sy, dx, dy, w, h,
		           sf.w, sf.h);
		return;
	}
	for (uint32_t i = 0; i < h; i++) {
		uint32_t r = dy > sy ? h - 1 - i : i;
		memmove(sf.base + (uint64_t)(dy + r) * sf.pitch + (uint64_t)dx * sf.bpp,
		        sf.base + (uint64_t)(sy + r) * sf.pitch + (uint64_t)sx * sf.bpp,
		        (size_t)w * sf.bpp);
	}
	if (svga_mks(s) && (id >= 0 ? s->scanout_kind == 2 : s->scanout_kind == 1))
		mks_copy_rect(s->mks, (int32_t)sx, (int32_t)sy, (int32_t)dx, (int32_t)dy,
		              (int32_t)w, (int32_t)h);
}

static void cmd_fence(struct svga *s, const uint8_t *b)
{
	uint32_t fence = rd32(b + 4);
	uint32_t flags = SVGA_IRQFLAG_ANY_FENCE;

	s->last_fence = fence;
	fifo_set(s, SVGA_FIFO_FENCE, fence);
	/* "Reached or passed" in wrap-around order, as 6.1 compares fences. */
	if ((s->irq_mask & SVGA_IRQFLAG_FENCE_GOAL) &&
	    (uint32_t)(fence - fifo_get(s, SVGA_FIFO_FENCE_GOAL)) < 0x80000000u)
		flags |= SVGA_IRQFLAG_FENCE_GOAL;
	svga_raise_irq(s, flags);
}

static void cmd_define_screen(struct svga *s, const uint8_t *b, uint32_t size)
{
	uint8_t so[44];
	struct svga_screen sc;
	uint32_t id;
	uint32_t gmr;

	memset(so, 0, sizeof(so));
	memcpy(so, b + 4, size < sizeof(so) ? size : sizeof(so));
	id = rd32(so + 4);
	memset(&sc, 0, sizeof(sc));
	sc.flags = rd32(so + 8);
	sc.width = rd32(so + 12);
	sc.height = rd32(so + 16);
	sc.root_x = (int32_t)rd32(so + 20);
	sc.root_y = (int32_t)rd32(so + 24);
	gmr = rd32(so + 28);
	sc.offset = rd32(so + 32);
	sc.pitch = rd32(so + 36);
	if (id >= SVGA_MAX_SCREENS) {
		vlog_guest("svga: DEFINE_SCREEN id %u (max %u)", id, SVGA_MAX_SCREENS - 1);
		return;
	}
	if (!sc.width || !sc.height || sc.width > s->max_width || sc.height > s->max_height) {
		vlog_guest("svga: DEFINE_SCREEN %u: size %ux%u (max %ux%u)", id, sc.width,
		           sc.height, s->max_width, s->max_height);
		return;
	}
	if (size < 40 || gmr != SVGA_GMR_FRAMEBUFFER) {
		vlog_guest("svga: DEFINE_SCREEN %u: backing store must be in VRAM (gmr 0x%x)", id,
		           gmr);
		return;
	}
	if (sc.pitch < sc.width * 4u || (sc.offset & 3) ||
	    (uint64_t)sc.offset + (uint64_t)sc.pitch * (sc.height - 1) + sc.width * 4ull >
	            s->vram_size) {
		vlog_guest("svga: DEFINE_SCREEN %u: backing store offset %u pitch %u for %ux%u "
		           "outside VRAM", id, sc.offset, sc.pitch, sc.width, sc.height);
		return;
	}
	sc.defined = true;
	s->screens[id] = sc;
	svga_update_scanout(s);
}

static void cmd_destroy_screen(struct svga *s, const uint8_t *b)
{
	uint32_t id = rd32(b + 4);

	if (id >= SVGA_MAX_SCREENS || !s->screens[id].defined) {
		vlog_guest("svga: DESTROY_SCREEN of undefined screen %u", id);
		return;
	}
	s->screens[id].defined = false;
	svga_update_scanout(s);
}

static void cmd_define_gmrfb(struct svga *s, const uint8_t *b)
{
	s->gmrfb.gmr = rd32(b + 4);
	s->gmrfb.offset = rd32(b + 8);
	s->gmrfb.bpl = rd32(b + 12);
	s->gmrfb.format = rd32(b + 16);
}

/* Bytes per pixel of the GMRFB, or 0 when its format is not one we blit. */
static uint32_t svga_gmrfb_bpp(const struct svga *s)
{
	uint32_t bpp = s->gmrfb.format & 0xFF, depth = (s->gmrfb.format >> 8) & 0xFF;

	if (bpp == 32 && (depth == 24 || depth == 32))
		return 4;
	if (bpp == 16 && (depth == 16 || depth == 15))
		return 2;
	return 0;
}

static uint32_t svga_px16(uint16_t p, bool is555)
{
	uint32_t r, g, bl;

	if (is555) {
		r = (p >> 10) & 31; g = (p >> 5) & 31; bl = p & 31;
		return (r << 3 | r >> 2) << 16 | (g << 3 | g >> 2) << 8 | (bl << 3 | bl >> 2);
	}
	r = (p >> 11) & 31; g = (p >> 5) & 63; bl = p & 31;
	return (r << 3 | r >> 2) << 16 | (g << 2 | g >> 4) << 8 | (bl << 3 | bl >> 2);
}

static uint16_t svga_to16(uint32_t p, bool is555)
{
	uint32_t r = (p >> 16) & 0xFF, g = (p >> 8) & 0xFF, bl = p & 0xFF;

	if (is555)
		return (uint16_t)((r >> 3) << 10 | (g >> 3) << 5 | bl >> 3);
	return (uint16_t)((r >> 3) << 11 | (g >> 2) << 5 | bl >> 3);
}

/* One screen's part of a GMRFB -> screen blit, rect in screen coordinates. */
static bool blit_to_screen(struct svga *s, unsigned id, int64_t srcx, int64_t srcy,
                           int64_t l, int64_t t, int64_t r, int64_t btm)
{
	const struct svga_screen *sc = &s->screens[id];
	uint32_t bpp = svga_gmrfb_bpp(s);
	uint8_t *row16 = NULL;

	/* Clip to the screen, moving the source origin along. */
	if (l < 0) { srcx -= l; l = 0; }
	if (t < 0) { srcy -= t; t = 0; }
	if (r > sc->width) r = sc->width;
	if (btm > sc->height) btm = sc->height;
	if (r <= l || btm <= t)
		return true;
	if (srcx < 0 || srcy < 0) {
		vlog_guest("svga: BLIT_GMRFB_TO_SCREEN: source origin %lld,%lld outside the GMRFB",
		           (long long)srcx, (long long)srcy);
		return false;
	}
	if (bpp == 2 && !(row16 = malloc((size_t)(r - l) * 2)))
		return false;
	for (int64_t y = t; y < btm; y++) {
		uint64_t so = (uint64_t)s->gmrfb.offset + (uint64_t)(srcy + y - t) * s->gmrfb.bpl +
		              (uint64_t)srcx * bpp;
		uint8_t *dst = s->vram + sc->offset + (uint64_t)y * sc->pitch + (uint64_t)l * 4;
		size_t n = (size_t)(r - l);
		int rc;

		if (bpp == 4) {
			rc = svga_gmr_read(s, s->gmrfb.gmr, so, dst, n * 4);
		} else {
			rc = svga_gmr_read(s, s->gmrfb.gmr, so, row16, n * 2);
			for (size_t i = 0; rc == 0 && i < n; i++) {
				uint16_t p;
				uint32_t px;
				memcpy(&p, row16 + 2 * i, 2);
				px = svga_px16(p, ((s->gmrfb.format >> 8) & 0xFF) == 15);
				memcpy(dst + 4 * i, &px, 4);
			}
		}
		if (rc != 0) {
			vlog_guest("svga: BLIT_GMRFB_TO_SCREEN reads outside GMR 0x%x (offset %llu)",
			           s->gmrfb.gmr, (unsigned long long)so);
			free(row16);
			svga_damage(s, (int)id, l, t, r - l, y - t);
			return false;
		}
	}
	free(row16);
	svga_damage(s, (int)id, l, t, r - l, btm - t);
	return true;
}

static void cmd_blit_gmrfb_to_screen(struct svga *s, const uint8_t *b)
{
	int64_t srcx = (int32_t)rd32(b + 4), srcy = (int32_t)rd32(b + 8);
	int64_t l = (int32_t)rd32(b + 12), t = (int32_t)rd32(b + 16);
	int64_t r = (int32_t)rd32(b + 20), btm = (int32_t)rd32(b + 24);
	uint32_t id = rd32(b + 28);

	if (r < l || btm < t || !svga_gmrfb_bpp(s)) {
		vlog_guest("svga: BLIT_GMRFB_TO_SCREEN rect %lld,%lld-%lld,%lld format 0x%x rejected",
		           (long long)l, (long long)t, (long long)r, (long long)btm,
		           s->gmrfb.format);
		return;
	}
	if (id != SVGA_ID_INVALID) {
		if (id >= SVGA_MAX_SCREENS || !s->screens[id].defined) {
			vlog_guest("svga: BLIT_GMRFB_TO_SCREEN to undefined screen %u", id);
			return;
		}
		blit_to_screen(s, id, srcx, srcy, l, t, r, btm);
		return;
	}
	/* Virtual-desktop coordinates: every screen it touches. */
	for (unsigned i = 0; i < SVGA_MAX_SCREENS; i++) {
		const struct svga_screen *sc = &s->screens[i];
		if (sc->defined &&
		    !blit_to_screen(s, i, srcx, srcy, l - sc->root_x, t - sc->root_y,
		                    r - sc->root_x, btm - sc->root_y))
			return;
	}
}

static void cmd_blit_screen_to_gmrfb(struct svga *s, const uint8_t *b)
{
	int64_t dx = (int32_t)rd32(b + 4), dy = (int32_t)rd32(b + 8);
	int64_t l = (int32_t)rd32(b + 12), t = (int32_t)rd32(b + 16);
	int64_t r = (int32_t)rd32(b + 20), btm = (int32_t)rd32(b + 24);
	uint32_t id = rd32(b + 28);
	uint32_t bpp = svga_gmrfb_bpp(s);
	const struct svga_screen *sc = NULL;
	uint8_t *row = NULL;

	if (id == SVGA_ID_INVALID) {
		for (unsigned i = 0; i < SVGA_MAX_SCREENS && !sc; i++) {
			const struct svga_screen *c = &s->screens[i];
			if (c->defined && l >= c->root_x && t >= c->root_y &&
			    r <= (int64_t)c->root_x + c->width && btm <= (int64_t)c->root_y + c->height)
				sc = c;
		}
		if (sc) {
			l -= sc->root_x; r -= sc->root_x;
			t -= sc->root_y; btm -= sc->root_y;
		}
	} else if (id < SVGA_MAX_SCREENS && s->screens[id].defined) {
		sc = &s->screens[id];
	}
	/* Not clipped: the rectangle must lie inside exactly one screen. */
	if (!sc || !bpp || l < 0 || t < 0 || r <= l || btm <= t || r > sc->width ||
	    btm > sc->height || dx < 0 || dy < 0) {
		vlog_guest("svga: BLIT_SCREEN_TO_GMRFB screen %u rect %lld,%lld-%lld,%lld rejected",
		           id, (long long)l, (long long)t, (long long)r, (long long)btm);
		return;
	}
	if (bpp == 2 && !(row = malloc((size_t)(r - l) * 2)))
		return;
	for (int64_t y = t; y < btm; y++) {
		const uint8_t *src = s->vram + sc->offset + (uint64_t)y * sc->pitch + (uint64_t)l * 4;
		uint64_t go = (uint64_t)s->gmrfb.offset + (uint64_t)(dy + y - t) * s->gmrfb.bpl +
		              (uint64_t)dx * bpp;
		size_t n = (size_t)(r - l);
		int rc;

		if (bpp == 4) {
			rc = svga_gmr_write(s, s->gmrfb.gmr, go, src, n * 4);
		} else {
			for (size_t i = 0; i < n; i++) {
				uint32_t px;
				uint16_t p;
				memcpy(&px, src + 4 * i, 4);
				p = svga_to16(px, ((s->gmrfb.format >> 8) & 0xFF) == 15);
				memcpy(row + 2 * i, &p, 2);
			}
			rc = svga_gmr_write(s, s->gmrfb.gmr, go, row, n * 2);
		}
		if (rc != 0) {
			vlog_guest("svga: BLIT_SCREEN_TO_GMRFB writes outside GMR 0x%x",
			           s->gmrfb.gmr);
			break;
		}
	}
	free(row);
}

static void cmd_define_gmr2(struct svga *s, const uint8_t *b)
{
	uint32_t id = rd32(b + 4), n = rd32(b + 8);
	struct svga_gmr *g;
	uint64_t *ppn = NULL;

	if (id >= SVGA_GMR_MAX_IDS) {
		vlog_guest("svga: DEFINE_GMR2 id %u (max %u)", id, SVGA_GMR_MAX_IDS - 1);
		return;
	}
	g = &s->gmrs[id];
	/* The advertised page budget is soft (6.1 grows past it); twice it is the hard cap. */
	if (n && s->gmr_pages - g->npages + n > 2 * s->gmr_pages_limit) {
		vlog_guest("svga: DEFINE_GMR2 %u: %u pages exceed the limit (%llu in use)", id, n,
		           (unsigned long long)s->gmr_pages);
		return;
	}
	if (n) {
		ppn = malloc((size_t)n * sizeof(*ppn));
		if (!ppn) {
			vlog_guest("svga: DEFINE_GMR2 %u: out of host memory for %u pages", id, n);
			return;
		}
		for (uint32_t i = 0; i < n; i++)
			ppn[i] = SVGA_PPN_INVALID;
	}
	s->gmr_pages = s->gmr_pages - g->npages + n;
	free(g->ppn);
	g->ppn = ppn;
	g->npages = n;
}

static void cmd_remap_gmr2(struct svga *s, const uint8_t *b)
{
	uint32_t id = rd32(b + 4), flags = rd32(b + 8), off = rd32(b + 12), n = rd32(b + 16);
	uint32_t esz = (flags & SVGA_REMAP_GMR2_PPN64) ? 8 : 4;
	uint32_t count = (flags & SVGA_REMAP_GMR2_SINGLE_PPN) ? 1 : n;
	struct svga_gmr *g;
	uint8_t *list;
	uint64_t *ppn;

	if (id >= SVGA_GMR_MAX_IDS || !s->gmrs[id].npages) {
		vlog_guest("svga: REMAP_GMR2 of undefined GMR %u", id);
		return;
	}
	g = &s->gmrs[id];
	if (!n || (uint64_t)off + n > g->npages) {
		vlog_guest("svga: REMAP_GMR2 %u: pages %u+%u outside its %u pages", id, off, n,
		           g->npages);
		return;
	}
	list = malloc((size_t)count * esz);
	ppn = malloc((size_t)count * sizeof(*ppn));
	if (!list || !ppn) {
		free(list);
		free(ppn);
		return;
	}
	if (flags & SVGA_REMAP_GMR2_VIA_GMR) {
		uint32_t lg = rd32(b + 20), lo = rd32(b + 24);
		if (lg == id || svga_gmr_read(s, lg, lo, list, (size_t)count * esz) != 0) {
			vlog_guest("svga: REMAP_GMR2 %u: page list at GMR %u+%u unreadable", id, lg,
			           lo);
			goto out;
		}
	} else {
		/* svga_cmd_len sized the command to hold exactly this list. */
		memcpy(list, b + 20, (size_t)count * esz);
	}
	/* All or nothing: every page must be guest RAM. */
	for (uint32_t i = 0; i < count; i++) {
		uint64_t p = esz == 8 ? rd64(list + 8 * (size_t)i) : rd32(list + 4 * (size_t)i);
		if (p >= SVGA_PPN_LIMIT ||
		    !gmem_is_ram(&s->vm->mem, p << SVGA_PAGE_SHIFT, SVGA_PAGE)) {
			vlog_guest("svga: REMAP_GMR2 %u: page %u -> PPN 0x%llx is not guest RAM; "
			           "remap rejected", id, off + i, (unsigned long long)p);
			goto out;
		}
		ppn[i] = p;
	}
	for (uint32_t i = 0; i < n; i++)
		g->ppn[off + i] = count == 1 ? ppn[0] : ppn[i];
out:
	free(list);
	free(ppn);
}

/* Premultiplied (DRM plane blending) to straight alpha, as the MKS wants. */
static uint32_t svga_unpremul(uint32_t p)
{
	uint32_t a = p >> 24, c[3];

	if (a == 0 || a == 255)
		return p;
	for (int i = 0; i < 3; i++) {
		uint32_t v = (p >> (8 * i)) & 0xFF;
		v = v * 255 / a;
		c[i] = v > 255 ? 255 : v;
	}
	return a << 24 | c[2] << 16 | c[1] << 8 | c[0];
}

static void cmd_define_alpha_cursor(struct svga *s, const uint8_t *b)
{
	uint32_t hx = rd32(b + 8), hy = rd32(b + 12), w = rd32(b + 16), h = rd32(b + 20);
	uint32_t *argb;
	struct mks *m;

	if (!w || !h || w > SVGA_CURSOR_MAX || h > SVGA_CURSOR_MAX) {
		vlog_guest("svga: DEFINE_ALPHA_CURSOR %ux%u rejected (max %u)", w, h,
		           SVGA_CURSOR_MAX);
		return;
	}
	if (hx >= w || hy >= h) {
		vlog_guest("svga: cursor hotspot %u,%u outside %ux%u; clamped", hx, hy, w, h);
		hx = hx >= w ? w - 1 : hx;
		hy = hy >= h ? h - 1 : hy;
	}
	m = svga_mks(s);
	if (!m || !(argb = malloc((size_t)w * h * 4)))
		return;
	for (size_t i = 0; i < (size_t)w * h; i++)
		argb[i] = svga_unpremul(rd32(b + 24 + 4 * i));
	mks_cursor_define(m, w, h, hx, hy, argb);
	free(argb);
}

static uint64_t svga_mask_bytes(uint32_t w, uint32_t h, uint32_t depth)
{
	if (depth == 15)
		depth = 16;
	return (((uint64_t)w * depth + 31) / 32) * 4 * h;
}

static void cmd_define_cursor(struct svga *s, const uint8_t *b)
{
	uint32_t hx = rd32(b + 8), hy = rd32(b + 12), w = rd32(b + 16), h = rd32(b + 20);
	uint32_t ad = rd32(b + 24), xd = rd32(b + 28);
	const uint8_t *and_m = b + 32, *xor_m;
	uint64_t and_pitch, xor_pitch;
	uint32_t *argb;
	struct mks *m;

	if (!w || !h || w > SVGA_CURSOR_MAX || h > SVGA_CURSOR_MAX || ad != 1 ||
	    (xd != 1 && xd != 24 && xd != 32)) {
		vlog_guest("svga: DEFINE_CURSOR %ux%u and-depth %u xor-depth %u not supported", w, h,
		           ad, xd);
		return;
	}
	and_pitch = svga_mask_bytes(w, 1, ad);
	xor_pitch = svga_mask_bytes(w, 1, xd);
	xor_m = and_m + and_pitch * h;
	hx = hx >= w ? w - 1 : hx;
	hy = hy >= h ? h - 1 : hy;
	m = svga_mks(s);
	if (!m || !(argb = malloc((size_t)w * h * 4)))
		return;
	for (uint32_t y = 0; y < h; y++) {
		for (uint32_t x = 0; x < w; x++) {
			bool and_bit = (and_m[y * and_pitch + x / 8] >> (7 - x % 8)) & 1;
			uint32_t c;
			if (xd == 1) {
				bool xb = (xor_m[y * xor_pitch + x / 8] >> (7 - x % 8)) & 1;
				c = xb ? 0xFFFFFF : 0;
			} else if (xd == 24) {
				const uint8_t *p = xor_m + y * xor_pitch + 3 * x;
				c = (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
			} else {
				c = rd32(xor_m + y * xor_pitch + 4 * x) & 0xFFFFFF;
			}
			/* AND 1 + XOR 0: transparent; AND 1 + XOR c: inversion, shown as c. */
			argb[y * w + x] = (and_bit && !c) ? 0 : 0xFF000000u | c;
		}
	}
	mks_cursor_define(m, w, h, hx, hy, argb);
	free(argb);
}

/*
 * Length of the command at b (have bytes available).  1: *len is known;
 * 0: at least *len bytes are needed to know it; -1: unknown command.
 */
static int svga_cmd_len(const uint8_t *b, size_t have, uint64_t *len)
{
	uint32_t id;

#define NEED(n) do { if (have < (n)) { *len = (n); return 0; } } while (0)
	NEED(4);
	id = rd32(b);
	switch (id) {
	case SVGA_CMD_UPDATE: *len = 4 + 16; return 1;
	case SVGA_CMD_UPDATE_VERBOSE: *len = 4 + 20; return 1;
	case SVGA_CMD_RECT_COPY: *len = 4 + 24; return 1;
	case SVGA_CMD_RECT_ROP_COPY: *len = 4 + 28; return 1;
	case SVGA_CMD_FRONT_ROP_FILL: *len = 4 + 24; return 1;
	case SVGA_CMD_FENCE: *len = 4 + 4; return 1;
	case SVGA_CMD_DESTROY_SCREEN: *len = 4 + 4; return 1;
	case SVGA_CMD_DEFINE_GMRFB: *len = 4 + 16; return 1;
	case SVGA_CMD_BLIT_GMRFB_TO_SCREEN:
	case SVGA_CMD_BLIT_SCREEN_TO_GMRFB: *len = 4 + 28; return 1;
	case SVGA_CMD_ANNOTATION_FILL: *len = 4 + 4; return 1;
	case SVGA_CMD_ANNOTATION_COPY: *len = 4 + 12; return 1;
	case SVGA_CMD_DEFINE_GMR2: *len = 4 + 8; return 1;
	case SVGA_CMD_NOP:
	case SVGA_CMD_NOP_ERROR: *len = 4; return 1;
	case SVGA_CMD_ESCAPE:
		NEED(12);
		*len = 12 + (uint64_t)rd32(b + 8);
		return 1;
	case SVGA_CMD_DEFINE_SCREEN: {
		uint32_t sz;
		NEED(8);
		sz = rd32(b + 4);
		if (sz < 8 || (sz & 3))
			return -1;
		*len = 4 + (uint64_t)sz;
		return 1;
	}
	case SVGA_CMD_DEFINE_ALPHA_CURSOR:
		NEED(24);
		*len = 24 + (uint64_t)rd32(b + 16) * rd32(b + 20) * 4;
		return 1;
	case SVGA_CMD_DEFINE_CURSOR: {
		uint32_t w, h, ad, xd;
		NEED(32);
		w = rd32(b + 16); h = rd32(b + 20); ad = rd32(b + 24); xd = rd32(b + 28);
		if (ad > 32 || xd > 32)
			return -1;
		*len = 32 + svga_mask_bytes(w, h, ad) + svga_mask_bytes(w, h, xd);
		return 1;
	}
	case SVGA_CMD_REMAP_GMR2: {
		uint32_t flags, n;
		NEED(20);
		flags = rd32(b + 8);
		n = rd32(b + 16);
		if (flags & SVGA_REMAP_GMR2_VIA_GMR)
			*len = 20 + 8;
		else
			*len = 20 + (uint64_t)((flags & SVGA_REMAP_GMR2_SINGLE_PPN) ? 1 : n) *
			                   ((flags & SVGA_REMAP_GMR2_PPN64) ? 8 : 4);
		return 1;
	}
	default:
		if (id >= SVGA_3D_CMD_BASE && id < SVGA_3D_CMD_MAX) {
			NEED(8);
			*len = 8 + (uint64_t)rd32(b + 4);
			return 1;
		}
		return -1;
	}
#undef NEED
}

static void svga_cmd_exec(struct svga *s, const uint8_t *b, uint64_t len)
{
	uint32_t id = rd32(b);

	s->cmds_done++;
	switch (id) {
	case SVGA_CMD_UPDATE:
	case SVGA_CMD_UPDATE_VERBOSE: cmd_update(s, b); break;
	case SVGA_CMD_RECT_COPY: cmd_rect_copy(s, b); break;
	case SVGA_CMD_RECT_ROP_COPY:
		if (rd32(b + 28) == 0x03)   /* GXcopy */
			cmd_rect_copy(s, b);
		else
			vlog_guest("svga: RECT_ROP_COPY rop 0x%x not supported", rd32(b + 28));
		break;
	case SVGA_CMD_FENCE: cmd_fence(s, b); break;
	case SVGA_CMD_DEFINE_SCREEN: cmd_define_screen(s, b, (uint32_t)(len - 4)); break;
	case SVGA_CMD_DESTROY_SCREEN: cmd_destroy_screen(s, b); break;
	case SVGA_CMD_DEFINE_GMRFB: cmd_define_gmrfb(s, b); break;
	case SVGA_CMD_BLIT_GMRFB_TO_SCREEN: cmd_blit_gmrfb_to_screen(s, b); break;
	case SVGA_CMD_BLIT_SCREEN_TO_GMRFB: cmd_blit_screen_to_gmrfb(s, b); break;
	case SVGA_CMD_DEFINE_GMR2: cmd_define_gmr2(s, b); break;
	case SVGA_CMD_REMAP_GMR2: cmd_remap_gmr2(s, b); break;
	case SVGA_CMD_DEFINE_ALPHA_CURSOR: cmd_define_alpha_cursor(s, b); break;
	case SVGA_CMD_DEFINE_CURSOR: cmd_define_cursor(s, b); break;
	case SVGA_CMD_FRONT_ROP_FILL:
	case SVGA_CMD_ANNOTATION_FILL:
	case SVGA_CMD_ANNOTATION_COPY:
	case SVGA_CMD_NOP:
		break;   /* hints */
	case SVGA_CMD_ESCAPE:
		vlog_guest("svga: ESCAPE nsid 0x%x not supported", rd32(b + 4));
		break;
	case SVGA_CMD_NOP_ERROR:
		s->cmds_bad++;
		vlog_guest("svga: NOP_ERROR");
		break;
	default:
		s->cmds_bad++;
		vlog_guest("svga: 3D command %u without 3D support; skipped", id);
		break;
	}
}

/* Copy len bytes of the ring starting at byte offset pos (wrapping MAX -> MIN). */
static void ring_copy(const struct svga *s, uint32_t min, uint32_t max, uint32_t pos,
                      uint8_t *dst, uint64_t len)
{
	uint64_t first = max - pos;

	if (first >= len) {
		memcpy(dst, s->fifo + pos, len);
	} else {
		memcpy(dst, s->fifo + pos, first);
		memcpy(dst + first, s->fifo + min, len - first);
	}
}

static bool svga_fifo_geometry(struct svga *s, uint32_t *min, uint32_t *max, uint32_t *stop)
{
	*min = fifo_get(s, SVGA_FIFO_MIN);
	*max = fifo_get(s, SVGA_FIFO_MAX);
	*stop = fifo_get(s, SVGA_FIFO_STOP);
	if ((*min & 3) || (*max & 3) || *min < 4 * (SVGA_FIFO_STOP + 1) || *max > s->fifo_size ||
	    *max <= *min + 4 || *stop < *min || *stop >= *max || (*stop & 3)) {
		vlog_guest("svga: FIFO MIN %u MAX %u STOP %u invalid (size %u); not processed", *min,
		           *max, *stop, s->fifo_size);
		return false;
	}
	return true;
}

bool svga_fifo_process(struct svga *s, unsigned budget)
{
	uint32_t min, max, stop, next;
	bool progress = false, drained = false, cleared = false;

	if (!svga_fifo_geometry(s, &min, &max, &stop))
		return true;
	while (budget) {
		uint64_t avail, len, have;
		int rc;

		next = fifo_get(s, SVGA_FIFO_NEXT_CMD);
		if (next < min || next >= max || (next & 3)) {
			vlog_guest("svga: FIFO NEXT_CMD %u outside %u..%u", next, min, max);
			drained = true;
			break;
		}
		if (next == stop) {
			/* Idle: clear FIFO[BUSY], then look once more (the guest may
			 * have committed after our last look and lost the SYNC race). */
			if (cleared) {
				drained = true;
				break;
			}
			fifo_set(s, SVGA_FIFO_BUSY, 0);
			cleared = true;
			continue;
		}
		avail = next > stop ? next - stop : (uint64_t)(max - stop) + (next - min);
		have = avail < 64 ? avail : 64;
		ring_copy(s, min, max, stop, s->bounce, have);
		rc = svga_cmd_len(s->bounce, have, &len);
		while (rc == 0 && len <= avail) {
			have = len;
			ring_copy(s, min, max, stop, s->bounce, have);
			rc = svga_cmd_len(s->bounce, have, &len);
		}
		if (rc < 0 || len > (uint64_t)(max - min) - 4 || (len & 3)) {
			vlog_guest("svga: FIFO command %u (length %llu) cannot be decoded; dropping "
			           "%llu bytes", rd32(s->bounce), (unsigned long long)len,
			           (unsigned long long)avail);
			s->cmds_bad++;
			stop = next;
			fifo_set(s, SVGA_FIFO_STOP, stop);
			progress = true;
			continue;
		}
		if (len > avail) {
			drained = true;   /* not yet committed in full; the guest will SYNC again */
			break;
		}
		ring_copy(s, min, max, stop, s->bounce, len);
		stop = (uint32_t)(stop + len >= max ? min + (stop + len - max) : stop + len);
		/* STOP first: a FENCE IRQ must find the ring consumed up to it. */
		fifo_set(s, SVGA_FIFO_STOP, stop);
		svga_cmd_exec(s, s->bounce, len);
		progress = true;
		budget--;
		cleared = false;
	}
	if (progress) {
		/* Commands may have drawn into VRAM (blits, GMR copies). */
		svga_vram_host_write(s);
		svga_raise_irq(s, SVGA_IRQFLAG_FIFO_PROGRESS);
	}
	return drained;
}

void svga_fifo_poll_cursor(struct svga *s)
{
	uint32_t min = fifo_get(s, SVGA_FIFO_MIN), count;
	int32_t x, y;
	uint32_t scr;
	struct mks *m;

	if (min < 4 * (SVGA_FIFO_CURSOR_SCREEN_ID + 1))
		return;
	count = fifo_get(s, SVGA_FIFO_CURSOR_COUNT);
	if (count == s->fifo_cursor_count)
		return;
	s->fifo_cursor_count = count;
	x = (int32_t)fifo_get(s, SVGA_FIFO_CURSOR_X);
	y = (int32_t)fifo_get(s, SVGA_FIFO_CURSOR_Y);
	scr = fifo_get(s, SVGA_FIFO_CURSOR_SCREEN_ID);
	/* Position is the hotspot, in virtual-desktop or screen coordinates. */
	if (scr != SVGA_ID_INVALID && scr < SVGA_MAX_SCREENS && s->screens[scr].defined) {
		x += s->screens[scr].root_x;
		y += s->screens[scr].root_y;
	}
	if (s->scanout_kind == 2) {
		x -= s->screens[s->scanout_screen].root_x;
		y -= s->screens[s->scanout_screen].root_y;
	}
	m = svga_mks(s);
	if (m)
		mks_cursor_move(m, x, y, fifo_get(s, SVGA_FIFO_CURSOR_ON) != 0);
	fifo_set(s, SVGA_FIFO_CURSOR_LAST_UPDATED, count);
}

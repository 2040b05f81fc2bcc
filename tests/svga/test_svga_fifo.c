/*
 * test_svga_fifo.c — the SVGA II FIFO driven like vmwgfx 6.1's Screen
 * Object path: GMR2 definition over scattered guest pages, DEFINE_SCREEN,
 * DEFINE_GMRFB + BLIT_GMRFB_TO_SCREEN, fences with IRQs, commands committed
 * one dword at a time and across the wrap point, screen readback, RECT_COPY,
 * UPDATE, the alpha cursor and cursor bypass 3 — each checked in what the
 * MKS shadow shows.  Then hostile input: bad PPNs, bad rectangles, bad
 * screens, oversized cursors, unknown commands, a broken ring; after each,
 * the device must still process the next fence.
 */
#include <stdlib.h>

#include "mks/mks.h"
#include "svgatest.h"
#include "tests/unit/t.h"
#include "vmx/log.h"
#include "vmx/mem.h"
#include "vmx/vm.h"

#define IMG_W   64
#define IMG_H   40
#define IMG_BPL 260               /* rows straddle page boundaries */
#define SCR_OFF 0x100000u
#define SCR_W   1920
#define SCR_H   1080
#define SCR_PITCH (SCR_W * 4)

static const uint64_t gmr1_ppn[4] = { 0x300, 0x301, 0x250, 0x251 };
static struct devtest *t;
static struct svga *s;

static uint32_t img_px(uint32_t x, uint32_t y)
{
	return (x * 4) << 16 | (y * 6) << 8 | 0x5A;
}

static void gmr1_put(uint64_t off, const void *buf, size_t len)
{
	const uint8_t *b = buf;

	while (len) {
		uint64_t in = off & 4095, n = 4096 - in;
		if (n > len)
			n = len;
		gmem_write(&t->vm->mem, (gmr1_ppn[off >> 12] << 12) + in, b, n);
		b += n;
		off += n;
		len -= n;
	}
}

struct frame_rd {
	uint32_t x, y, w, h, px;
};

static void frame_cb(void *opaque, const struct mks_frame *f)
{
	struct frame_rd *r = opaque;

	r->w = f->width;
	r->h = f->height;
	r->px = (f->pixels && r->x < f->width && r->y < f->height) ?
	        f->pixels[(size_t)r->y * f->stride_px + r->x] : 0xDEADBEEF;
}

static uint32_t shadow(uint32_t x, uint32_t y)
{
	struct frame_rd r = { x, y, 0, 0, 0 };

	mks_with_frame(mks_of(t->vm), frame_cb, &r);
	return r.px;
}

static void shadow_size(uint32_t *w, uint32_t *h)
{
	struct frame_rd r = { 0, 0, 0, 0, 0 };

	mks_with_frame(mks_of(t->vm), frame_cb, &r);
	*w = r.w;
	*h = r.h;
}

static uint32_t vram_px(uint32_t x, uint32_t y)
{
	return (uint32_t)devtest_mmio_read(t, SVT_VRAM + SCR_OFF + (uint64_t)y * SCR_PITCH + x * 4, 4);
}

static void fence(uint32_t v)
{
	uint32_t c[] = { SVGA_CMD_FENCE, v };

	svt_cmd(t, c, 2);
}

/* Count of rectangle pixels in the shadow that match the blitted image at (dx,dy). */
static unsigned check_img(uint32_t dx, uint32_t dy, uint32_t w, uint32_t h, bool in_vram)
{
	unsigned bad = 0;

	for (uint32_t y = 0; y < h; y++)
		for (uint32_t x = 0; x < w; x++) {
			uint32_t want = img_px(x, y);
			if (shadow(dx + x, dy + y) != want || (in_vram && vram_px(dx + x, dy + y) != want))
				bad++;
		}
	return bad;
}

/* ---- a recording back end (the MKS's consumers see the cursor this way) ---- */
struct rec {
	unsigned ncursor, npos;
	uint32_t w, h, hx, hy, px0, px_last;
	int32_t x, y;
	bool visible;
};

static struct rec rec;

static void rec_cursor(void *opaque, uint32_t w, uint32_t h, uint32_t hx, uint32_t hy,
                       const uint32_t *argb)
{
	struct rec *r = opaque;

	r->ncursor++;
	r->w = w; r->h = h; r->hx = hx; r->hy = hy;
	r->px0 = argb[0];
	r->px_last = argb[(size_t)w * h - 1];
}

static void rec_pos(void *opaque, int32_t x, int32_t y, bool visible)
{
	struct rec *r = opaque;

	r->npos++;
	r->x = x; r->y = y; r->visible = visible;
}

static const struct mks_backend_ops rec_ops = {
	.name = "test-recorder", .cursor = rec_cursor, .cursor_pos = rec_pos,
};

static void test_screen_object(void)
{
	uint8_t row[IMG_BPL];
	int gsi = pci_intx_gsi(&s->pci);
	uint32_t w, h;

	for (uint32_t y = 0; y < IMG_H; y++) {
		memset(row, 0xEE, sizeof(row));
		for (uint32_t x = 0; x < IMG_W; x++) {
			uint32_t p = img_px(x, y);
			memcpy(row + 4 * x, &p, 4);
		}
		gmr1_put((uint64_t)y * IMG_BPL, row, sizeof(row));
	}
	svt_wr(t, SVGA_REG_IRQMASK, SVGA_IRQFLAG_ANY_FENCE);
	{
		uint32_t c[] = {
			SVGA_CMD_DEFINE_GMR2, 1, 4,
			SVGA_CMD_REMAP_GMR2, 1, SVGA_REMAP_GMR2_PPN64, 0, 4,
			0x300, 0, 0x301, 0, 0x250, 0, 0x251, 0,
			SVGA_CMD_DEFINE_SCREEN, 44, 0, SVGA_SCREEN_HAS_ROOT | SVGA_SCREEN_IS_PRIMARY,
			SCR_W, SCR_H, 0, 0, SVGA_GMR_FRAMEBUFFER, SCR_OFF, SCR_PITCH, 0,
			SVGA_CMD_DEFINE_GMRFB, 1, 0, IMG_BPL, 32 | 24 << 8,
			SVGA_CMD_BLIT_GMRFB_TO_SCREEN, 0, 0, 100, 50, 100 + IMG_W, 50 + IMG_H, 0,
			SVGA_CMD_FENCE, 7,
		};
		svt_cmd(t, c, sizeof(c) / 4);
	}
	T_EQ_U64(svt_fr(t, SVGA_FIFO_FENCE), 7);
	T_EQ_U64(svt_fr(t, SVGA_FIFO_STOP), svt_fr(t, SVGA_FIFO_NEXT_CMD));
	T_EQ_U64(svt_fr(t, SVGA_FIFO_BUSY), 0);
	T_EQ_U64(svt_rd(t, SVGA_REG_BUSY), 0);
	T_ASSERT(devtest_in(t, SVT_IO + SVGA_IRQSTATUS_PORT, 4) & SVGA_IRQFLAG_ANY_FENCE);
	T_ASSERT(gsi >= 16 && devtest_gsi_level(t, (unsigned)gsi));
	devtest_out(t, SVT_IO + SVGA_IRQSTATUS_PORT, 4, SVGA_IRQFLAG_MASK);
	T_EQ_U64(devtest_in(t, SVT_IO + SVGA_IRQSTATUS_PORT, 4), 0);
	T_ASSERT(!devtest_gsi_level(t, (unsigned)gsi));

	shadow_size(&w, &h);
	T_EQ_U64(w, SCR_W);
	T_EQ_U64(h, SCR_H);
	T_EQ_U64(check_img(100, 50, IMG_W, IMG_H, true), 0);
	T_EQ_U64(shadow(99, 50), 0);
	T_EQ_U64(shadow(100 + IMG_W, 50), 0);

	/* Readback: screen -> a second GMR. */
	{
		uint32_t c[] = {
			SVGA_CMD_DEFINE_GMR2, 2, 1,
			SVGA_CMD_REMAP_GMR2, 2, 0, 0, 1, 0x400,
			SVGA_CMD_DEFINE_GMRFB, 2, 0, 64, 32 | 24 << 8,
			SVGA_CMD_BLIT_SCREEN_TO_GMRFB, 0, 0, 100, 50, 116, 60, 0,
			SVGA_CMD_FENCE, 8,
		};
		uint32_t got[16];
		svt_cmd(t, c, sizeof(c) / 4);
		T_EQ_U64(svt_fr(t, SVGA_FIFO_FENCE), 8);
		gmem_read(&t->vm->mem, 0x400000 + 9 * 64, got, sizeof(got));
		T_EQ_U64(got[0], img_px(0, 9));
		T_EQ_U64(got[15], img_px(15, 9));
	}
	/* An IRQ only when enabled in the mask. */
	svt_wr(t, SVGA_REG_IRQMASK, 0);
	fence(9);
	T_EQ_U64(svt_fr(t, SVGA_FIFO_FENCE), 9);
	T_ASSERT(!devtest_gsi_level(t, (unsigned)gsi));
	/* Fence goal: reached or passed. */
	devtest_out(t, SVT_IO + SVGA_IRQSTATUS_PORT, 4, SVGA_IRQFLAG_MASK);
	svt_fw(t, SVGA_FIFO_FENCE_GOAL, 12);
	svt_wr(t, SVGA_REG_IRQMASK, SVGA_IRQFLAG_FENCE_GOAL);
	fence(11);
	T_EQ_U64(devtest_in(t, SVT_IO + SVGA_IRQSTATUS_PORT, 4), 0);
	fence(13);
	T_EQ_U64(devtest_in(t, SVT_IO + SVGA_IRQSTATUS_PORT, 4), SVGA_IRQFLAG_FENCE_GOAL);
	T_ASSERT(devtest_gsi_level(t, (unsigned)gsi));
	svt_wr(t, SVGA_REG_IRQMASK, 0);
	T_ASSERT(!devtest_gsi_level(t, (unsigned)gsi));
	devtest_out(t, SVT_IO + SVGA_IRQSTATUS_PORT, 4, SVGA_IRQFLAG_MASK);
}

/* 6.1 without RESERVE: NEXT_CMD moves one dword at a time. */
static void test_partial_and_wrap(void)
{
	uint32_t next = svt_fr(t, SVGA_FIFO_NEXT_CMD), stop = svt_fr(t, SVGA_FIFO_STOP);
	uint32_t w0 = SVGA_CMD_FENCE, w1 = 30;
	uint32_t max = svt_fr(t, SVGA_FIFO_MAX);

	next = svt_put(t, next, &w0, 1);
	svt_fw(t, SVGA_FIFO_NEXT_CMD, next);
	svt_wr(t, SVGA_REG_SYNC, 1);
	T_EQ_U64(svt_fr(t, SVGA_FIFO_FENCE), 13);
	T_EQ_U64(svt_fr(t, SVGA_FIFO_STOP), stop);        /* left at the command start */
	T_EQ_U64(svt_rd(t, SVGA_REG_BUSY), 0);             /* incomplete is not busy */
	next = svt_put(t, next, &w1, 1);
	svt_fw(t, SVGA_FIFO_NEXT_CMD, next);
	svt_wr(t, SVGA_REG_SYNC, 1);
	T_EQ_U64(svt_fr(t, SVGA_FIFO_FENCE), 30);

	/* A blit straddling MAX -> MIN. */
	svt_fw(t, SVGA_FIFO_STOP, max - 12);
	svt_fw(t, SVGA_FIFO_NEXT_CMD, max - 12);
	{
		uint32_t c[] = {
			SVGA_CMD_DEFINE_GMRFB, 1, 0, IMG_BPL, 32 | 24 << 8,
			SVGA_CMD_BLIT_GMRFB_TO_SCREEN, 0, 0, 600, 400, 600 + IMG_W, 400 + IMG_H, 0,
			SVGA_CMD_FENCE, 31,
		};
		svt_cmd(t, c, sizeof(c) / 4);
	}
	T_EQ_U64(svt_fr(t, SVGA_FIFO_FENCE), 31);
	T_ASSERT(svt_fr(t, SVGA_FIFO_STOP) < max - 12);
	T_EQ_U64(check_img(600, 400, IMG_W, IMG_H, true), 0);
}

static void test_copy_update(void)
{
	uint32_t c[] = { SVGA_CMD_RECT_COPY, 100, 50, 300, 700, IMG_W, IMG_H };

	svt_cmd(t, c, 7);
	T_EQ_U64(check_img(300, 700, IMG_W, IMG_H, true), 0);
	/* The guest writes the backing store directly: shown after UPDATE only. */
	devtest_mmio_write(t, SVT_VRAM + SCR_OFF + 500ull * SCR_PITCH + 500 * 4, 4, 0x00C0FFEE);
	T_EQ_U64(shadow(500, 500), 0);
	{
		uint32_t u[] = { SVGA_CMD_UPDATE, 500, 500, 1, 1 };
		svt_cmd(t, u, 5);
	}
	T_EQ_U64(shadow(500, 500), 0x00C0FFEE);
}

static void test_bad_input(void)
{
	uint64_t bad0 = s->cmds_bad;

	/* PPNs outside guest RAM (64 MiB = PPN 0x4000) and past 2^52: rejected. */
	{
		uint32_t c[] = {
			SVGA_CMD_DEFINE_GMR2, 3, 2,
			SVGA_CMD_REMAP_GMR2, 3, SVGA_REMAP_GMR2_PPN64, 0, 2, 0x500, 0, 0x7FFFFFFF, 0,
			SVGA_CMD_REMAP_GMR2, 3, SVGA_REMAP_GMR2_PPN64, 0, 1, 0xFFFFFFFF, 0xFFFFFFFF,
			SVGA_CMD_REMAP_GMR2, 3, 0, 1, 5, 0x500, 0x501, 0x502, 0x503, 0x504,
			SVGA_CMD_REMAP_GMR2, 9, 0, 0, 1, 0x500,
			SVGA_CMD_DEFINE_GMR2, 70000, 1,
			SVGA_CMD_DEFINE_GMR2, 4, 0x7FFFFFFF,
			SVGA_CMD_DEFINE_GMRFB, 3, 0, 64, 32 | 24 << 8,
			SVGA_CMD_BLIT_GMRFB_TO_SCREEN, 0, 0, 0, 0, 16, 2, 0,
			SVGA_CMD_FENCE, 40,
		};
		svt_cmd(t, c, sizeof(c) / 4);
	}
	T_EQ_U64(svt_fr(t, SVGA_FIFO_FENCE), 40);
	T_EQ_U64(s->gmrs[3].ppn[0], SVGA_PPN_INVALID);   /* the whole remap was refused */
	T_EQ_U64(s->gmrs[4].npages, 0);
	T_EQ_U64(shadow(0, 0), 0);

	/* Rectangles: inverted, far outside, negative source; a screen outside VRAM. */
	{
		uint32_t c[] = {
			SVGA_CMD_DEFINE_GMRFB, 1, 0, IMG_BPL, 32 | 24 << 8,
			SVGA_CMD_BLIT_GMRFB_TO_SCREEN, 0, 0, 50, 50, 10, 10, 0,
			SVGA_CMD_BLIT_GMRFB_TO_SCREEN, 0, 0, 5000, 5000, 5100, 5100, 0,
			SVGA_CMD_BLIT_GMRFB_TO_SCREEN, (uint32_t)-5, 0, 0, 0, 10, 10, 0,
			SVGA_CMD_BLIT_GMRFB_TO_SCREEN, 0, 1000, 0, 0, 10, 10, 0,   /* past the GMR */
			SVGA_CMD_BLIT_GMRFB_TO_SCREEN, 0, 0, 0, 0, 10, 10, 5,      /* no screen 5 */
			SVGA_CMD_BLIT_SCREEN_TO_GMRFB, 0, 0, 1900, 0, 1930, 10, 0,   /* not inside */
			SVGA_CMD_DEFINE_SCREEN, 44, 1, SVGA_SCREEN_HAS_ROOT, SCR_W, SCR_H, SCR_W, 0,
			SVGA_GMR_FRAMEBUFFER, 0x1F00000, SCR_PITCH, 0,
			SVGA_CMD_DEFINE_SCREEN, 44, 99, SVGA_SCREEN_HAS_ROOT, 64, 64, 0, 0,
			SVGA_GMR_FRAMEBUFFER, 0, 256, 0,
			SVGA_CMD_DEFINE_SCREEN, 44, 2, SVGA_SCREEN_HAS_ROOT, 64, 64, 0, 0, 1, 0, 256, 0,
			SVGA_CMD_DESTROY_SCREEN, 6,
			SVGA_CMD_RECT_COPY, 0, 0, 1900, 1070, 64, 64,
			SVGA_CMD_UPDATE, 0xFFFFFFF0, 0, 0xFFFFFFFF, 0xFFFFFFFF,
			SVGA_CMD_FENCE, 41,
		};
		svt_cmd(t, c, sizeof(c) / 4);
	}
	T_EQ_U64(svt_fr(t, SVGA_FIFO_FENCE), 41);
	T_ASSERT(!s->screens[1].defined);
	T_ASSERT(!s->screens[2].defined);
	T_EQ_U64(shadow(0, 0), 0);
	T_EQ_U64(check_img(100, 50, IMG_W, IMG_H, true), 0);   /* screen 0 intact */

	/* Oversized cursors are consumed and ignored; a bad cursor depth too. */
	{
		size_t n = 6 + 300 * 300;
		uint32_t *c = calloc(n + 2 + 8, 4);
		c[0] = SVGA_CMD_DEFINE_ALPHA_CURSOR;
		c[1] = 0; c[2] = 1; c[3] = 1; c[4] = 300; c[5] = 300;
		c[n] = SVGA_CMD_DEFINE_CURSOR;
		c[n + 1] = 0; c[n + 2] = 0; c[n + 3] = 0; c[n + 4] = 0; c[n + 5] = 0;
		c[n + 6] = 1; c[n + 7] = 7;
		c[n + 8] = SVGA_CMD_FENCE; c[n + 9] = 42;
		svt_cmd(t, c, n + 10);
		free(c);
	}
	T_EQ_U64(svt_fr(t, SVGA_FIFO_FENCE), 42);

	/* Unknown command: the rest of that commit is dropped, later ones work. */
	{
		uint32_t c[] = { 9999, SVGA_CMD_FENCE, 43 };
		svt_cmd(t, c, 3);
		T_EQ_U64(svt_fr(t, SVGA_FIFO_FENCE), 42);
		T_EQ_U64(svt_fr(t, SVGA_FIFO_STOP), svt_fr(t, SVGA_FIFO_NEXT_CMD));
		fence(44);
		T_EQ_U64(svt_fr(t, SVGA_FIFO_FENCE), 44);
	}
	/* A length larger than the ring, a 3D command (skipped by its size). */
	{
		uint32_t c[] = { SVGA_CMD_DEFINE_SCREEN, 0x7FFFFFF0, 0, 0 };
		uint32_t d[] = { 1041, 8, 0, 0, SVGA_CMD_FENCE, 45 };
		svt_cmd(t, c, 4);
		svt_cmd(t, d, 6);
		T_EQ_U64(svt_fr(t, SVGA_FIFO_FENCE), 45);
	}
	/* A broken ring (MIN past MAX): nothing processed, nothing breaks. */
	{
		uint32_t min = svt_fr(t, SVGA_FIFO_MIN);
		svt_fw(t, SVGA_FIFO_MIN, 0x7FFFFFF0);
		fence(46);
		T_EQ_U64(svt_fr(t, SVGA_FIFO_FENCE), 45);
		T_EQ_U64(svt_rd(t, SVGA_REG_BUSY), 0);   /* never stuck at 1 */
		svt_fw(t, SVGA_FIFO_MIN, min);
		svt_wr(t, SVGA_REG_SYNC, 1);
		T_EQ_U64(svt_fr(t, SVGA_FIFO_FENCE), 46);
		T_EQ_U64(svt_rd(t, SVGA_REG_BUSY), 0);
	}
	T_ASSERT(s->cmds_bad > bad0);
	T_EQ_U64(check_img(100, 50, IMG_W, IMG_H, false), 0);
}

static void test_modeset(void)
{
	uint32_t w, h;
	uint32_t c[] = {
		SVGA_CMD_DESTROY_SCREEN, 0,
		SVGA_CMD_DEFINE_SCREEN, 44, 0, SVGA_SCREEN_HAS_ROOT | SVGA_SCREEN_IS_PRIMARY,
		1280, 800, 0, 0, SVGA_GMR_FRAMEBUFFER, 0x1000000, 1280 * 4, 0,
		SVGA_CMD_DEFINE_GMRFB, 1, 0, IMG_BPL, 32 | 24 << 8,
		SVGA_CMD_BLIT_GMRFB_TO_SCREEN, 0, 0, 1280 - 32, 800 - 20, 1280 + 32, 800 + 20, 0,
		SVGA_CMD_FENCE, 50,
	};

	svt_cmd(t, c, sizeof(c) / 4);
	T_EQ_U64(svt_fr(t, SVGA_FIFO_FENCE), 50);
	shadow_size(&w, &h);
	T_EQ_U64(w, 1280);
	T_EQ_U64(h, 800);
	/* Clipped at the screen edge: only the top-left quarter of the image lands. */
	T_EQ_U64(shadow(1280 - 32, 800 - 20), img_px(0, 0));
	T_EQ_U64(shadow(1279, 799), img_px(31, 19));
}

static void test_cursor(void)
{
	size_t n = 6 + 64 * 64;
	uint32_t *c = calloc(n, 4);

	T_EQ_U64(mks_backend_add(mks_of(t->vm), &rec_ops, &rec), 0);
	c[0] = SVGA_CMD_DEFINE_ALPHA_CURSOR;
	c[1] = 0; c[2] = 3; c[3] = 4; c[4] = 64; c[5] = 64;
	for (size_t i = 0; i < 64 * 64; i++)
		c[6 + i] = 0x80404040u;             /* premultiplied half-transparent grey */
	c[6 + 64 * 64 - 1] = 0xFF0000FFu;
	svt_cmd(t, c, n);
	free(c);
	shadow(0, 0);                           /* let the MKS deliver */
	T_ASSERT(rec.ncursor >= 1);
	T_EQ_U64(rec.w, 64);
	T_EQ_U64(rec.h, 64);
	T_EQ_U64(rec.hx, 3);
	T_EQ_U64(rec.hy, 4);
	T_EQ_U64(rec.px0, 0x807F7F7Fu);         /* straight alpha for the MKS */
	T_EQ_U64(rec.px_last, 0xFF0000FFu);

	/* Register path. */
	svt_wr(t, SVGA_REG_CURSOR_X, 10);
	svt_wr(t, SVGA_REG_CURSOR_Y, 20);
	svt_wr(t, SVGA_REG_CURSOR_ON, 1);
	shadow(0, 0);
	T_EQ_U64(rec.x, 10);
	T_EQ_U64(rec.y, 20);
	T_ASSERT(rec.visible);

	/* Cursor bypass 3: FIFO words, no SYNC; the device's timer notices. */
	svt_fw(t, SVGA_FIFO_CURSOR_ON, 1);
	svt_fw(t, SVGA_FIFO_CURSOR_X, 640);
	svt_fw(t, SVGA_FIFO_CURSOR_Y, 480);
	svt_fw(t, SVGA_FIFO_CURSOR_COUNT, svt_fr(t, SVGA_FIFO_CURSOR_COUNT) + 1);
	/* ... as does a command committed without SYNC (FIFO[BUSY] already 1). */
	svt_fw(t, SVGA_FIFO_BUSY, 1);
	{
		uint32_t f[] = { SVGA_CMD_FENCE, 60 };
		uint32_t next = svt_put(t, svt_fr(t, SVGA_FIFO_NEXT_CMD), f, 2);
		svt_fw(t, SVGA_FIFO_NEXT_CMD, next);
	}
	T_EQ_U64(svt_fr(t, SVGA_FIFO_FENCE), 50);
	devtest_run_loop(t, 100);
	T_EQ_U64(svt_fr(t, SVGA_FIFO_FENCE), 60);
	T_EQ_U64(svt_fr(t, SVGA_FIFO_CURSOR_LAST_UPDATED), svt_fr(t, SVGA_FIFO_CURSOR_COUNT));
	shadow(0, 0);
	T_EQ_U64(rec.x, 640);
	T_EQ_U64(rec.y, 480);
	T_ASSERT(rec.visible);
}

int main(void)
{
	vlog_set_stderr_level(VLOG_ERROR);
	t = svt_new(NULL);
	if (!t || !mks_of(t->vm)) {
		fprintf(stderr, "test_svga_fifo: cannot build the VM with an MKS\n");
		return 1;
	}
	s = devtest_priv(t, "svga");
	svt_wr(t, SVGA_REG_ID, SVGA_ID_2);
	svt_fifo_setup(t, svt_rd(t, SVGA_REG_MEM_SIZE));
	test_screen_object();
	test_partial_and_wrap();
	test_copy_update();
	test_bad_input();
	test_modeset();
	test_cursor();
	devtest_free(t);
	return T_DONE();
}

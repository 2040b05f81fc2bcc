/*
 * test_mks.c — the MKS primary node: scanout formats, damage, poll-mode
 * compare, copy_rect ordering, back-end notifications, cursor/LEDs,
 * input routing, the keysym map, the vmmouse protocol and PNG output.
 * A plain buffer stands in for a display device's VRAM.
 */
#include <png.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mks/mks_int.h"
#include "tests/unit/t.h"
#include "vmx/backdoor.h"
#include "vmx/dev/vmmouse.h"
#include "vmx/lock.h"

/* ---- a recording back end ---- */

struct rec {
	unsigned resizes, updates, copies, cursors, leds_calls;
	uint32_t w, h;
	struct mks_rect last[64];
	unsigned nlast;
	struct mks_rect copy_src;
	int32_t copy_dx, copy_dy;
	unsigned leds;
	uint32_t cur_w, cur_h, cur_px0;
	uint64_t area;   /* sum of updated areas */
};

static void r_resize(void *o, const struct mks_frame *f)
{
	struct rec *r = o;
	r->resizes++;
	r->w = f->width;
	r->h = f->height;
}

static void r_update(void *o, const struct mks_frame *f, const struct mks_rect *rc, unsigned n)
{
	struct rec *r = o;
	r->updates++;
	for (unsigned i = 0; i < n; i++) {
		if (r->nlast < 64)
			r->last[r->nlast++] = rc[i];
		r->area += (uint64_t)rc[i].w * rc[i].h;
	}
}

static void r_copy(void *o, const struct mks_frame *f, const struct mks_rect *src, int32_t dx,
                   int32_t dy)
{
	struct rec *r = o;
	r->copies++;
	r->copy_src = *src;
	r->copy_dx = dx;
	r->copy_dy = dy;
}

static void r_cursor(void *o, uint32_t w, uint32_t h, uint32_t hx, uint32_t hy, const uint32_t *p)
{
	struct rec *r = o;
	r->cursors++;
	r->cur_w = w;
	r->cur_h = h;
	r->cur_px0 = p[0];
}

static void r_leds(void *o, unsigned leds)
{
	struct rec *r = o;
	r->leds_calls++;
	r->leds = leds;
}

static const struct mks_backend_ops rec_ops = {
	.name = "rec", .resize = r_resize, .update = r_update, .copy = r_copy,
	.cursor = r_cursor, .leds = r_leds,
};

static void rec_clear(struct rec *r)
{
	r->nlast = 0;
	r->updates = 0;
	r->area = 0;
}

/* ---- reading the shadow ---- */

struct snap {
	uint32_t *px;
	uint32_t w, h;
};

static void grab(void *o, const struct mks_frame *f)
{
	struct snap *s = o;
	free(s->px);
	s->w = f->width;
	s->h = f->height;
	s->px = malloc((size_t)f->width * f->height * 4);
	for (uint32_t y = 0; y < f->height; y++)
		memcpy(s->px + (size_t)y * f->width, f->pixels + (size_t)y * f->stride_px,
		       (size_t)f->width * 4);
}

static uint32_t px(struct snap *s, uint32_t x, uint32_t y)
{
	return s->px[(size_t)y * s->w + x];
}

/* ---- input sinks ---- */

struct sinks {
	uint32_t key_sc[16];
	bool key_down[16];
	unsigned nkeys;
	int rel_dx, rel_dy, rel_dz;
	unsigned rel_b, nrel;
	bool abs_on;
	int32_t ax, ay;
	uint32_t aw, ah;
	unsigned ab, nabs;
};

static void s_key(void *o, uint32_t sc, bool down)
{
	struct sinks *s = o;
	if (s->nkeys < 16) {
		s->key_sc[s->nkeys] = sc;
		s->key_down[s->nkeys++] = down;
	}
}

static void s_rel(void *o, int dx, int dy, int dz, unsigned b)
{
	struct sinks *s = o;
	s->rel_dx += dx;
	s->rel_dy += dy;
	s->rel_dz += dz;
	s->rel_b = b;
	s->nrel++;
}

static bool s_abs(void *o, int32_t x, int32_t y, uint32_t w, uint32_t h, unsigned b, int wheel)
{
	struct sinks *s = o;
	if (!s->abs_on)
		return false;
	s->ax = x;
	s->ay = y;
	s->aw = w;
	s->ah = h;
	s->ab = b;
	s->nabs++;
	return true;
}

static const struct mks_input_ops kops = { .key = s_key };
static const struct mks_input_ops mops = { .rel = s_rel };
static const struct mks_input_ops aops = { .abs = s_abs };

/* ---- tests ---- */

static void test_rects(void)
{
	struct mks_rect l[40];
	unsigned n = 0;

	mks_rects_add(l, &n, (struct mks_rect){ 0, 0, 10, 10 });
	mks_rects_add(l, &n, (struct mks_rect){ 2, 2, 4, 4 });     /* inside: absorbed */
	T_EQ_U64(n, 1);
	mks_rects_add(l, &n, (struct mks_rect){ 10, 0, 10, 10 });  /* touching: merged */
	T_EQ_U64(n, 1);
	T_EQ_I64(l[0].w, 20);
	mks_rects_add(l, &n, (struct mks_rect){ 500, 500, 5, 5 }); /* far: kept apart */
	T_EQ_U64(n, 2);
	for (int i = 0; i < 100; i++)
		mks_rects_add(l, &n, (struct mks_rect){ i * 40, 1000, 2, 2 });
	T_ASSERT(n <= 32);
	/* Everything still covered: the bounding box of all of it is inside the union. */
	int64_t maxx = 0;
	for (unsigned i = 0; i < n; i++)
		if (l[i].x + l[i].w > maxx)
			maxx = l[i].x + l[i].w;
	T_EQ_I64(maxx, 99 * 40 + 2);
}

static void test_formats(void)
{
	struct mks_scanout s;
	uint32_t out[4];
	uint8_t b565[4] = { 0x00, 0xF8, 0xE0, 0x07 };     /* red, green */
	uint8_t b555[4] = { 0x1F, 0x00, 0x00, 0x7C };     /* blue, red */
	uint8_t b8[2] = { 3, 200 };
	uint8_t b32[8] = { 0x11, 0x22, 0x33, 0xFF, 0x44, 0x55, 0x66, 0x00 };

	memset(&s, 0, sizeof(s));
	s.format = MKS_FMT_RGB565;
	mks_convert_line(&s, b565, 0, 2, out);
	T_EQ_U64(out[0], 0xFF0000);
	T_EQ_U64(out[1], 0x00FF00);
	s.format = MKS_FMT_RGB555;
	mks_convert_line(&s, b555, 0, 2, out);
	T_EQ_U64(out[0], 0x0000FF);
	T_EQ_U64(out[1], 0xFF0000);
	s.format = MKS_FMT_PAL8;
	s.palette[3] = 0x123456;
	s.palette[200] = 0xFFABCDEF;   /* the high byte is not part of the colour */
	mks_convert_line(&s, b8, 0, 2, out);
	T_EQ_U64(out[0], 0x123456);
	T_EQ_U64(out[1], 0xABCDEF);
	s.format = MKS_FMT_XRGB8888;
	mks_convert_line(&s, b32, 0, 2, out);
	T_EQ_U64(out[0], 0x332211);    /* X byte dropped */
	T_EQ_U64(out[1], 0x665544);
	mks_convert_line(&s, b32, 1, 1, out);
	T_EQ_U64(out[0], 0x665544);
}

static void test_node(bool threaded)
{
	struct mks *m = mks_new(NULL);
	struct rec r;
	struct snap sn = { NULL, 0, 0 };
	const uint32_t W = 320, H = 200, STRIDE = 320 * 4 + 64;
	uint8_t *vram = calloc(STRIDE, H);
	struct mks_scanout so;

	memset(&r, 0, sizeof(r));
	T_ASSERT(m != NULL);
	T_EQ_I64(mks_backend_add(m, &rec_ops, &r), 0);
	if (threaded)
		T_EQ_I64(mks_start_thread(m), 0);

	/* Invalid scanouts are refused. */
	memset(&so, 0, sizeof(so));
	so.base = vram;
	so.width = W;
	so.height = H;
	so.stride = W * 4 - 1;
	so.format = MKS_FMT_XRGB8888;
	T_EQ_I64(mks_scanout_set(m, &so), -1);
	so.stride = STRIDE;
	so.width = MKS_MAX_WIDTH + 1;
	T_EQ_I64(mks_scanout_set(m, &so), -1);
	so.width = W;

	/* Pixels drawn before the scanout is set all appear. */
	for (uint32_t y = 0; y < H; y++)
		for (uint32_t x = 0; x < W; x++)
			((uint32_t *)(vram + (size_t)y * STRIDE))[x] = (x * 7) << 8 | y;
	T_EQ_I64(mks_scanout_set(m, &so), 0);
	mks_with_frame(m, grab, &sn);
	T_EQ_U64(sn.w, W);
	T_EQ_U64(sn.h, H);
	T_EQ_U64(r.w, W);
	T_ASSERT(r.resizes >= 1);
	T_EQ_U64(px(&sn, 5, 9), (5 * 7) << 8 | 9);
	T_EQ_U64(px(&sn, W - 1, H - 1), (((W - 1) * 7) << 8 | (H - 1)) & 0xFFFFFF);

	/* Damage: a write without a report is not seen; with one, it is. */
	rec_clear(&r);
	((uint32_t *)(vram + 10 * STRIDE))[20] = 0xABCDEF;
	mks_with_frame(m, grab, &sn);
	T_ASSERT(px(&sn, 20, 10) != 0xABCDEF);
	mks_damage(m, 20, 10, 1, 1);
	mks_damage(m, -50, -50, 10, 10);           /* outside: ignored */
	mks_damage(m, 0, 0, 0, 5);                 /* empty: ignored */
	mks_with_frame(m, grab, &sn);
	T_EQ_U64(px(&sn, 20, 10), 0xABCDEF);
	T_EQ_U64(r.nlast, 1);
	T_EQ_I64(r.last[0].x, 20);
	T_EQ_I64(r.last[0].w, 1);
	/* Damage past the edge is clipped. */
	rec_clear(&r);
	mks_damage(m, W - 4, H - 4, 100, 100);
	mks_with_frame(m, grab, &sn);
	T_EQ_U64(r.nlast, 1);
	T_EQ_I64(r.last[0].w, 4);
	T_EQ_I64(r.last[0].h, 4);

	/* copy_rect: the device moved pixels; the back end gets a copy, the shadow is exact. */
	rec_clear(&r);
	for (uint32_t y = 0; y < 20; y++)
		memmove(vram + (size_t)(100 + y) * STRIDE + 150 * 4, vram + (size_t)(30 + y) * STRIDE + 40 * 4,
		        30 * 4);
	mks_copy_rect(m, 40, 30, 150, 100, 30, 20);
	mks_with_frame(m, grab, &sn);
	T_EQ_U64(r.copies, 1);
	T_EQ_I64(r.copy_src.x, 40);
	T_EQ_I64(r.copy_dx, 150);
	T_EQ_I64(r.copy_dy, 100);
	T_EQ_U64(px(&sn, 150, 100), (40 * 7) << 8 | 30);
	T_EQ_U64(px(&sn, 179, 119), (69 * 7) << 8 | 49);
	T_EQ_U64(r.area, 0);   /* no extra damage: the copy was exact */
	/* A copy whose destination the guest changed again is corrected from the scanout. */
	rec_clear(&r);
	for (uint32_t y = 0; y < 10; y++)
		memmove(vram + (size_t)(0 + y) * STRIDE, vram + (size_t)(50 + y) * STRIDE, 10 * 4);
	((uint32_t *)vram)[3] = 0x777777;
	mks_copy_rect(m, 0, 50, 0, 0, 10, 10);
	mks_with_frame(m, grab, &sn);
	T_EQ_U64(px(&sn, 3, 0), 0x777777);
	T_EQ_U64(px(&sn, 4, 0), (4 * 7) << 8 | 50);
	/* An out-of-range copy turns into damage, nothing is read outside. */
	rec_clear(&r);
	mks_copy_rect(m, W - 5, 0, 0, 0, 10, 10);
	mks_with_frame(m, grab, &sn);
	T_EQ_U64(r.copies, 2);   /* no third copy */

	/* Poll mode: changes are found without damage reports. */
	so.poll = true;
	T_EQ_I64(mks_scanout_set(m, &so), 0);
	mks_with_frame(m, grab, &sn);
	rec_clear(&r);
	((uint32_t *)(vram + 77 * STRIDE))[200] = 0x00FEDCBA;
	((uint32_t *)(vram + 150 * STRIDE))[3] = 0x00010203;
	mks_with_frame(m, grab, &sn);
	T_EQ_U64(px(&sn, 200, 77), 0xFEDCBA);
	T_EQ_U64(px(&sn, 3, 150), 0x010203);
	T_ASSERT(r.nlast >= 1 && r.nlast <= 2);
	T_ASSERT(r.area <= 2 * 32 * 32);   /* tiles, not the whole screen */
	rec_clear(&r);
	mks_with_frame(m, grab, &sn);
	T_EQ_U64(r.area, 0);   /* nothing changed: nothing reported */

	/* A 16-bit mode of another size: resize, conversion. */
	uint16_t *v16 = (uint16_t *)vram;
	for (int i = 0; i < 64 * 48; i++)
		v16[i] = 0x001F;
	so.width = 64;
	so.height = 48;
	so.stride = 128;
	so.format = MKS_FMT_RGB565;
	so.poll = false;
	unsigned resizes = r.resizes;
	T_EQ_I64(mks_scanout_set(m, &so), 0);
	mks_with_frame(m, grab, &sn);
	T_EQ_U64(sn.w, 64);
	T_EQ_U64(r.resizes, resizes + 1);
	T_EQ_U64(px(&sn, 63, 47), 0x0000FF);

	/* Disable: black at the same size. */
	mks_scanout_disable(m);
	mks_with_frame(m, grab, &sn);
	T_EQ_U64(sn.w, 64);
	T_EQ_U64(px(&sn, 10, 10), 0);

	/* Cursor and LEDs reach the back end; bad cursors are refused. */
	uint32_t cur[4] = { 0xFF112233, 0, 0, 0xFF000000 };
	T_EQ_I64(mks_cursor_define(m, 2, 2, 0, 0, cur), 0);
	T_EQ_I64(mks_cursor_define(m, 300, 2, 0, 0, cur), -1);
	T_EQ_I64(mks_cursor_define(m, 2, 2, 2, 0, cur), -1);
	mks_leds(m, 4);
	mks_with_frame(m, grab, &sn);
	T_EQ_U64(r.cur_w, 2);
	T_EQ_U64(r.cur_px0, 0xFF112233);
	T_EQ_U64(r.leds, 4);

	/* Input routing: no absolute sink enabled -> relative deltas; then absolute. */
	struct sinks s;
	memset(&s, 0, sizeof(s));
	mks_input_set_keyboard(m, &kops, &s);
	mks_input_set_mouse(m, &mops, &s);
	mks_input_set_absolute(m, &aops, &s);
	so.format = MKS_FMT_XRGB8888;
	so.width = 320;
	so.height = 200;
	so.stride = STRIDE;
	T_EQ_I64(mks_scanout_set(m, &so), 0);
	mks_input_key(m, 0x1E, true);
	mks_input_key(m, 0xE048, false);
	T_EQ_U64(s.nkeys, 2);
	T_EQ_U64(s.key_sc[1], 0xE048);
	T_ASSERT(!s.key_down[1]);
	mks_input_pointer(m, 10, 10, 0, 0);
	mks_input_pointer(m, 15, 7, 1, 0);
	T_EQ_I64(s.rel_dx, 5);
	T_EQ_I64(s.rel_dy, -3);
	T_EQ_U64(s.rel_b, 1);
	s.abs_on = true;
	mks_input_pointer(m, 1000, 50, 4, 0);   /* clamped to the screen */
	T_EQ_U64(s.nabs, 1);
	T_EQ_I64(s.ax, 319);
	T_EQ_I64(s.ay, 50);
	T_EQ_U64(s.aw, 320);
	T_EQ_U64(s.ab, 4);

	free(sn.px);
	mks_free(m);
	free(vram);
}

/* Device-side calls from another thread while the MKS thread runs. */
struct hammer {
	struct mks *m;
	uint8_t *vram;
	uint32_t stride;
};

static void *hammer_thread(void *o)
{
	struct hammer *h = o;
	for (int i = 0; i < 2000; i++) {
		((uint32_t *)(h->vram + (size_t)(i % 100) * h->stride))[i % 100] = (uint32_t)i;
		mks_damage(h->m, i % 100, i % 100, 1, 1);
		if (i % 100 == 0)
			mks_copy_rect(h->m, 0, 0, 50, 50, 20, 20);
	}
	return NULL;
}

static void test_threads(void)
{
	struct mks *m = mks_new(NULL);
	uint8_t *vram = calloc(400 * 4, 300);
	struct mks_scanout so;
	struct hammer h = { m, vram, 400 * 4 };
	struct snap sn = { NULL, 0, 0 };
	pthread_t t;

	memset(&so, 0, sizeof(so));
	so.base = vram;
	so.width = 400;
	so.height = 300;
	so.stride = 400 * 4;
	so.format = MKS_FMT_XRGB8888;
	T_EQ_I64(mks_scanout_set(m, &so), 0);
	T_EQ_I64(mks_start_thread(m), 0);
	pthread_create(&t, NULL, hammer_thread, &h);
	for (int i = 0; i < 20; i++)
		mks_with_frame(m, grab, &sn);
	pthread_join(t, NULL);
	/* After everything is reported, the shadow equals the scanout exactly. */
	mks_damage(m, 0, 0, 400, 300);
	mks_with_frame(m, grab, &sn);
	bool same = true;
	for (uint32_t y = 0; y < 300 && same; y++)
		for (uint32_t x = 0; x < 400; x++)
			if (px(&sn, x, y) != (((uint32_t *)(vram + (size_t)y * 1600))[x] & 0xFFFFFF)) {
				T_FAIL("shadow differs at %u,%u", x, y);
				same = false;
				break;
			}
	free(sn.px);
	mks_free(m);
	free(vram);
}

static void test_keys(void)
{
	T_EQ_U64(mks_keysym_to_scancode('a'), 0x1E);
	T_EQ_U64(mks_keysym_to_scancode('A'), 0x1E);
	T_EQ_U64(mks_keysym_to_scancode('1'), 0x02);
	T_EQ_U64(mks_keysym_to_scancode('!'), 0x02);
	T_EQ_U64(mks_keysym_to_scancode('0'), 0x0B);
	T_EQ_U64(mks_keysym_to_scancode('/'), 0x35);
	T_EQ_U64(mks_keysym_to_scancode('|'), 0x2B);
	T_EQ_U64(mks_keysym_to_scancode(' '), 0x39);
	T_EQ_U64(mks_keysym_to_scancode(0xff0d), 0x1C);    /* Return */
	T_EQ_U64(mks_keysym_to_scancode(0xff52), 0xE048);  /* Up */
	T_EQ_U64(mks_keysym_to_scancode(0xffbe), 0x3B);    /* F1 */
	T_EQ_U64(mks_keysym_to_scancode(0xffc9), 0x58);    /* F12 */
	T_EQ_U64(mks_keysym_to_scancode(0x20ac), 0);       /* EuroSign: no key */
	T_EQ_U64(mks_qemu_keycode_to_scancode(0x9D), 0xE01D);
	T_EQ_U64(mks_qemu_keycode_to_scancode(0x1C), 0x1C);
	T_EQ_U64(mks_qemu_keycode_to_scancode(0x1234), 0);
}

static uint32_t bd(struct vmmouse_state *s, uint16_t cmd, uint32_t ebx, struct backdoor_call *c)
{
	memset(c, 0, sizeof(*c));
	c->eax = BDOOR_MAGIC;
	c->ecx = cmd;
	c->ebx = ebx;
	vmmouse_proto_call(s, c);
	return c->eax;
}

static void test_vmmouse(void)
{
	static struct vmmouse_state s;
	struct backdoor_call c;

	vmmouse_proto_reset(&s);
	/* Disabled: STATUS says error; events go elsewhere. */
	T_EQ_U64(bd(&s, VMMOUSE_CMD_STATUS, 0, &c) & 0xFFFF0000u, 0xFFFF0000u);
	T_ASSERT(!vmmouse_proto_event(&s, 1, 1, 10, 10, 0, 0));
	/* The driver's enable sequence. */
	bd(&s, VMMOUSE_CMD_COMMAND, VMMOUSE_SUB_ENABLE, &c);
	T_EQ_U64(bd(&s, VMMOUSE_CMD_STATUS, 0, &c), 1);
	T_EQ_U64(bd(&s, VMMOUSE_CMD_DATA, 1, &c), 0x3442554A);
	bd(&s, VMMOUSE_CMD_RESTRICT, 1, &c);
	T_ASSERT(!vmmouse_proto_event(&s, 1, 1, 10, 10, 0, 0));   /* not absolute yet */
	bd(&s, VMMOUSE_CMD_COMMAND, VMMOUSE_SUB_ABSOLUTE, &c);
	T_ASSERT(vmmouse_proto_event(&s, 1919, 540, 1920, 1080, 1 | 4, 1));
	T_EQ_U64(bd(&s, VMMOUSE_CMD_STATUS, 0, &c), 4);
	T_EQ_U64(bd(&s, VMMOUSE_CMD_DATA, 4, &c), VMMOUSE_LEFT | VMMOUSE_RIGHT);
	T_EQ_U64(c.ebx, 0xFFFF);
	T_EQ_U64(c.ecx, (540ull * 0xFFFF + 539) / 1079);
	T_EQ_U64(c.edx & 0xFF, 0xFF);   /* wheel up: z = -1 */
	/* Ring 3 after RESTRICT is refused. */
	memset(&c, 0, sizeof(c));
	c.ecx = VMMOUSE_CMD_STATUS;
	c.cpl = 3;
	vmmouse_proto_call(&s, &c);
	T_EQ_U64(c.eax, 0xFFFFFFFFu);
	/* Asking for more than queued: error status, queue cleared. */
	bd(&s, VMMOUSE_CMD_DATA, 4, &c);
	T_EQ_U64(bd(&s, VMMOUSE_CMD_STATUS, 0, &c) & 0xFFFF0000u, 0xFFFF0000u);
	/* A full queue drops events but never overflows. */
	bd(&s, VMMOUSE_CMD_COMMAND, VMMOUSE_SUB_ENABLE, &c);
	bd(&s, VMMOUSE_CMD_COMMAND, VMMOUSE_SUB_ABSOLUTE, &c);
	for (int i = 0; i < 1000; i++)
		vmmouse_proto_event(&s, i, i, 100, 100, 0, 0);
	T_ASSERT(s.count <= VMMOUSE_QUEUE_WORDS);
	bd(&s, VMMOUSE_CMD_COMMAND, VMMOUSE_SUB_DISABLE, &c);
	T_EQ_U64(bd(&s, VMMOUSE_CMD_STATUS, 0, &c) & 0xFFFF0000u, 0xFFFF0000u);
}

/*
 * A back end that reads its clients while it sends (libvncserver does) gets
 * input inside mks_process, under the scan lock.  The keyboard sink takes a
 * device-rank lock, as the i8042 does: delivered there, a debug build's lock
 * order check aborts.  The event must arrive once the frame is done.
 */
struct inj {
	struct mks *m;
	unsigned updates, keys, keys_in_update;
	bool in_update;
	struct vmx_mutex dev;
};

static void inj_update(void *o, const struct mks_frame *f, const struct mks_rect *rc, unsigned n)
{
	struct inj *j = o;
	j->in_update = true;
	if (j->updates++ == 0) {
		mks_input_key(j->m, 0x1C, true);
		mks_input_key(j->m, 0x1C, false);
	}
	j->in_update = false;
}

static void inj_key(void *o, uint32_t sc, bool down)
{
	struct inj *j = o;
	vmx_mutex_lock(&j->dev);
	j->keys++;
	if (j->in_update)
		j->keys_in_update++;
	vmx_mutex_unlock(&j->dev);
}

static const struct mks_backend_ops inj_ops = { .name = "inj", .update = inj_update };
static const struct mks_input_ops inj_kops = { .key = inj_key };

static void test_input_in_update(void)
{
	struct inj j;
	struct snap sn = { NULL, 0, 0 };
	uint8_t *vram = calloc(64 * 4, 16);
	struct mks_scanout so;

	memset(&j, 0, sizeof(j));
	j.m = mks_new(NULL);
	T_ASSERT(j.m != NULL);
	vmx_mutex_init(&j.dev, VMX_RANK_DEVICE, "test-kbd");
	T_EQ_I64(mks_backend_add(j.m, &inj_ops, &j), 0);
	mks_input_set_keyboard(j.m, &inj_kops, &j);
	memset(&so, 0, sizeof(so));
	so.base = vram;
	so.format = MKS_FMT_XRGB8888;
	so.width = 64;
	so.height = 16;
	so.stride = 64 * 4;
	T_EQ_I64(mks_scanout_set(j.m, &so), 0);
	mks_with_frame(j.m, grab, &sn);
	T_ASSERT(j.updates >= 1);
	T_EQ_U64(j.keys, 2);
	T_EQ_U64(j.keys_in_update, 0);
	free(sn.px);
	mks_free(j.m);
	vmx_mutex_destroy(&j.dev);
	free(vram);
}

static void test_png(void)
{
	uint32_t pix[6] = { 0xFF0000, 0x00FF00, 0x0000FF, 0x123456, 0xFFFFFF, 0 };
	struct mks_frame f = { pix, 3, 2, 3 };
	char path[] = "/tmp/vireo-test-mks-XXXXXX";
	char err[256];
	int fd = mkstemp(path);
	png_image img;

	close(fd);
	T_EQ_I64(mks_png_write(path, &f, err, sizeof(err)), 0);
	memset(&img, 0, sizeof(img));
	img.version = PNG_IMAGE_VERSION;
	T_ASSERT(png_image_begin_read_from_file(&img, path));
	img.format = PNG_FORMAT_RGB;
	uint8_t buf[18];
	T_EQ_U64(img.width, 3);
	T_EQ_U64(img.height, 2);
	T_ASSERT(png_image_finish_read(&img, NULL, buf, 0, NULL));
	T_EQ_U64(buf[0], 0xFF);
	T_EQ_U64(buf[4], 0xFF);
	T_EQ_U64(buf[8], 0xFF);
	T_EQ_U64(buf[9], 0x12);
	T_EQ_U64(buf[11], 0x56);
	unlink(path);
	T_EQ_I64(mks_png_write("/nonexistent-dir/x.png", &f, err, sizeof(err)), -1);
}

int main(void)
{
	test_rects();
	test_formats();
	test_node(false);
	test_node(true);
	test_threads();
	test_keys();
	test_vmmouse();
	test_input_in_update();
	test_png();
	return T_DONE();
}

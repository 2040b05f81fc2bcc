/*
 * mks.c — the MKS thread, the primary node (shadow framebuffer, damage) and
 * input routing.  See mks.h for the contract.
 *
 * Locks: `scan` (rank DEVICE+2) is held by the MKS thread while it reads the
 * device's scanout memory, and by mks_scanout_set/disable while they switch
 * it, so a device may unmap the old framebuffer as soon as those return.
 * `lock` (DEVICE+4) guards the pending work (damage, copies, cursor, LEDs,
 * requests) and is only held for short bookkeeping, so vCPUs reporting
 * damage never wait for a copy of the screen.  Devices call in holding their
 * own lock (rank DEVICE); input sinks are called with no MKS lock held,
 * because they take device and IRQ locks themselves.
 *
 * Damage: up to MKS_MAX_RECTS pending rectangles; a new one merges with one
 * it overlaps or touches when the union wastes little, and when the list is
 * full the pair that grows least is merged.  Copies are ordered with the
 * damage around them: damage reported before a copy is flushed first, then
 * the shadow moves and back ends get a copy, then the destination is
 * compared with the scanout (the guest may have written it since), so the
 * shadow stays exact.
 */
#include "mks.h"
#include "mks_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "vmx/device.h"
#include "vmx/lock.h"
#include "vmx/log.h"
#include "vmx/vm.h"

#define MKS_MAX_RECTS    32
#define MKS_MAX_BACKENDS 8
#define MKS_MAX_FDS      64
#define MKS_MAX_OPS      64
#define MKS_TICK_NS      33333333ull
#define MKS_TILE         32

struct mks_backend {
	const struct mks_backend_ops *ops;
	void *opaque;
	bool need_resize, need_cursor;
};

struct mks_fdent {
	int fd;
	void (*cb)(void *opaque, uint32_t events);
	void *opaque;
};

/* A copy queued behind the damage that came before it. */
struct mks_op {
	struct mks_rect pre[MKS_MAX_RECTS];   /* damage before the copy */
	unsigned npre;
	struct mks_rect src;
	int32_t dx, dy;
};

struct mks_frame_req {
	void (*fn)(void *opaque, const struct mks_frame *f);
	void *opaque;
	bool done;
	struct mks_frame_req *next;
};

/*
 * Input from the back ends.  A back end reads its clients inside its update
 * callback (libvncserver answers key and pointer messages while it sends),
 * which runs under the scan lock; the sinks take device locks (i8042,
 * vmmouse) ranked below it.  Events that arrive there wait in this queue
 * and are delivered, in order, as soon as mks_process lets go of the lock.
 */
#define MKS_INQ 1024
struct mks_in {
	uint8_t kind;                 /* MKS_IN_KEY or MKS_IN_POINTER */
	bool down;
	uint32_t scancode;
	int32_t x, y;
	unsigned buttons;
	int wheel;
};
enum { MKS_IN_KEY = 1, MKS_IN_POINTER };

struct mks {
	struct vmx_vm *vm;
	struct vmx_mutex scan, lock;
	pthread_cond_t cond;          /* frame requests done (with lock.m) */

	/* Device side, under lock (scanout also under scan). */
	struct mks_scanout so;
	bool have_so, so_changed;
	struct mks_rect dmg[MKS_MAX_RECTS];
	unsigned ndmg;
	struct mks_op ops[MKS_MAX_OPS];
	unsigned nops;
	bool ops_overflow;
	uint32_t *cur_img;
	uint32_t cur_w, cur_h, cur_hx, cur_hy;
	bool cur_img_changed;
	int32_t cur_x, cur_y;
	bool cur_vis, cur_pos_changed;
	unsigned leds;
	bool leds_changed;
	struct mks_frame_req *reqs;

	/* MKS thread side. */
	uint32_t *shadow;
	uint32_t width, height;
	struct mks_backend be[MKS_MAX_BACKENDS];
	unsigned nbe;
	struct mks_fdent fds[MKS_MAX_FDS];
	unsigned nfds;
	uint64_t next_tick;
	uint8_t *tiles;               /* poll compare: dirty tile map */
	size_t tiles_cap;
	uint32_t *line;               /* conversion buffer, one line */
	uint64_t *dirty;              /* poll compare: pages written, from so.dirty */
	size_t dirty_words;
	bool dirty_noted;             /* the log said once that the dirty log is used */

	/* Input sinks, under lock. */
	const struct mks_input_ops *kbd_ops, *mouse_ops, *abs_ops;
	void *kbd_opaque, *mouse_opaque, *abs_opaque;
	int32_t last_x, last_y;
	bool have_last;
	/* Input waiting for delivery, under lock (see mks_input_drain). */
	struct mks_in inq[MKS_INQ];
	unsigned inq_head, inq_n;
	bool in_scan;                 /* the owner is inside mks_process's scan lock */

	int epfd, evfd;
	pthread_t thread;
	bool running, quit;
	pthread_t owner;              /* the MKS thread, or whoever processes synchronously */
	bool owner_set;

	struct mks_config cfg;
};

/* ---- rectangles ---- */

static int64_t rect_area(const struct mks_rect *r)
{
	return (int64_t)r->w * r->h;
}

static struct mks_rect rect_union(const struct mks_rect *a, const struct mks_rect *b)
{
	int32_t x0 = a->x < b->x ? a->x : b->x, y0 = a->y < b->y ? a->y : b->y;
	int32_t x1 = a->x + a->w > b->x + b->w ? a->x + a->w : b->x + b->w;
	int32_t y1 = a->y + a->h > b->y + b->h ? a->y + a->h : b->y + b->h;
	struct mks_rect u = { x0, y0, x1 - x0, y1 - y0 };
	return u;
}

static bool rect_clip(struct mks_rect *r, uint32_t w, uint32_t h)
{
	int64_t x0 = r->x, y0 = r->y, x1 = (int64_t)r->x + r->w, y1 = (int64_t)r->y + r->h;

	if (r->w <= 0 || r->h <= 0)
		return false;
	if (x0 < 0)
		x0 = 0;
	if (y0 < 0)
		y0 = 0;
	if (x1 > w)
		x1 = w;
	if (y1 > h)
		y1 = h;
	if (x0 >= x1 || y0 >= y1)
		return false;
	r->x = (int32_t)x0;
	r->y = (int32_t)y0;
	r->w = (int32_t)(x1 - x0);
	r->h = (int32_t)(y1 - y0);
	return true;
}

/* Add r to a coalescing list of at most MKS_MAX_RECTS. */
void mks_rects_add(struct mks_rect *list, unsigned *n, struct mks_rect r)
{
	for (;;) {
		bool merged = false;
		for (unsigned i = 0; i < *n; i++) {
			struct mks_rect u = rect_union(&list[i], &r);
			/* Overlapping or touching, and the union wastes at most a quarter. */
			if (rect_area(&u) * 3 <= (rect_area(&list[i]) + rect_area(&r)) * 4 ||
			    rect_area(&u) == rect_area(&list[i])) {
				r = u;
				list[i] = list[--*n];
				merged = true;
				break;
			}
		}
		if (!merged)
			break;
	}
	if (*n < MKS_MAX_RECTS) {
		list[(*n)++] = r;
		return;
	}
	/* Full: merge with the one whose union grows least. */
	unsigned best = 0;
	int64_t best_growth = INT64_MAX;
	for (unsigned i = 0; i < *n; i++) {
		struct mks_rect u = rect_union(&list[i], &r);
		int64_t g = rect_area(&u) - rect_area(&list[i]);
		if (g < best_growth) {
			best_growth = g;
			best = i;
		}
	}
	r = rect_union(&list[best], &r);
	list[best] = list[--*n];
	mks_rects_add(list, n, r);
}

/* ---- formats ---- */

static unsigned fmt_bpp(enum mks_format f)
{
	switch (f) {
	case MKS_FMT_XRGB8888: return 4;
	case MKS_FMT_RGB565: case MKS_FMT_RGB555: return 2;
	case MKS_FMT_PAL8: return 1;
	}
	return 0;
}

/* Convert n pixels of a scanout line (starting at pixel x) to XRGB8888. */
void mks_convert_line(const struct mks_scanout *s, const uint8_t *row, uint32_t x, uint32_t n,
                      uint32_t *out)
{
	switch (s->format) {
	case MKS_FMT_XRGB8888: {
		const uint8_t *p = row + (size_t)x * 4;
		for (uint32_t i = 0; i < n; i++, p += 4)
			out[i] = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;
		break;
	}
	case MKS_FMT_RGB565: {
		const uint8_t *p = row + (size_t)x * 2;
		for (uint32_t i = 0; i < n; i++, p += 2) {
			uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8;
			uint32_t r = (v >> 11) & 31, g = (v >> 5) & 63, b = v & 31;
			out[i] = ((r << 3 | r >> 2) << 16) | ((g << 2 | g >> 4) << 8) | (b << 3 | b >> 2);
		}
		break;
	}
	case MKS_FMT_RGB555: {
		const uint8_t *p = row + (size_t)x * 2;
		for (uint32_t i = 0; i < n; i++, p += 2) {
			uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8;
			uint32_t r = (v >> 10) & 31, g = (v >> 5) & 31, b = v & 31;
			out[i] = ((r << 3 | r >> 2) << 16) | ((g << 3 | g >> 2) << 8) | (b << 3 | b >> 2);
		}
		break;
	}
	case MKS_FMT_PAL8: {
		const uint8_t *p = row + x;
		for (uint32_t i = 0; i < n; i++)
			out[i] = s->palette[p[i]] & 0xFFFFFFu;
		break;
	}
	}
}

static bool scanout_valid(const struct mks_scanout *s)
{
	unsigned bpp;

	if (!s || !s->base || !s->width || !s->height || s->width > MKS_MAX_WIDTH ||
	    s->height > MKS_MAX_HEIGHT)
		return false;
	bpp = fmt_bpp(s->format);
	return bpp && (uint64_t)s->stride >= (uint64_t)s->width * bpp;
}

/* ---- thread plumbing ---- */

static void mks_wake(struct mks *m)
{
	uint64_t one = 1;
	if (m->evfd >= 0 && write(m->evfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		vlog_warn("mks: wake: %s", strerror(errno));
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- device side ---- */

int mks_scanout_set(struct mks *m, const struct mks_scanout *s)
{
	if (!m)
		return -1;
	if (!scanout_valid(s)) {
		vlog_guest("mks: invalid scanout %ux%u stride %u format %d", s ? s->width : 0,
		           s ? s->height : 0, s ? s->stride : 0, s ? (int)s->format : -1);
		return -1;
	}
	vmx_mutex_lock(&m->scan);
	vmx_mutex_lock(&m->lock);
	m->so = *s;
	m->have_so = true;
	m->so_changed = true;
	m->ndmg = 0;
	m->nops = 0;
	vmx_mutex_unlock(&m->lock);
	vmx_mutex_unlock(&m->scan);
	mks_wake(m);
	return 0;
}

void mks_scanout_disable(struct mks *m)
{
	if (!m)
		return;
	vmx_mutex_lock(&m->scan);
	vmx_mutex_lock(&m->lock);
	if (m->have_so) {
		m->have_so = false;
		m->so_changed = true;
		m->ndmg = 0;
		m->nops = 0;
	}
	vmx_mutex_unlock(&m->lock);
	vmx_mutex_unlock(&m->scan);
	mks_wake(m);
}

void mks_damage(struct mks *m, int32_t x, int32_t y, int32_t w, int32_t h)
{
	struct mks_rect r = { x, y, w, h };

	if (!m)
		return;
	vmx_mutex_lock(&m->lock);
	if (m->have_so && rect_clip(&r, m->so.width, m->so.height))
		mks_rects_add(m->dmg, &m->ndmg, r);
	vmx_mutex_unlock(&m->lock);
	mks_wake(m);
}

void mks_copy_rect(struct mks *m, int32_t sx, int32_t sy, int32_t dx, int32_t dy,
                   int32_t w, int32_t h)
{
	struct mks_rect src = { sx, sy, w, h }, dst = { dx, dy, w, h };

	if (!m)
		return;
	vmx_mutex_lock(&m->lock);
	if (!m->have_so)
		goto out;
	/* Only whole copies inside the screen are forwarded; anything else is damage. */
	if (w <= 0 || h <= 0 || sx < 0 || sy < 0 || dx < 0 || dy < 0 ||
	    (int64_t)sx + w > m->so.width || (int64_t)sy + h > m->so.height ||
	    (int64_t)dx + w > m->so.width || (int64_t)dy + h > m->so.height || m->nops >= MKS_MAX_OPS) {
		if (rect_clip(&dst, m->so.width, m->so.height))
			mks_rects_add(m->dmg, &m->ndmg, dst);
		goto out;
	}
	struct mks_op *op = &m->ops[m->nops++];
	memcpy(op->pre, m->dmg, sizeof(m->dmg[0]) * m->ndmg);
	op->npre = m->ndmg;
	m->ndmg = 0;
	op->src = src;
	op->dx = dx;
	op->dy = dy;
out:
	vmx_mutex_unlock(&m->lock);
	mks_wake(m);
}

int mks_cursor_define(struct mks *m, uint32_t w, uint32_t h, uint32_t hot_x, uint32_t hot_y,
                      const uint32_t *argb)
{
	uint32_t *img;

	if (!m || !argb || !w || !h || w > 256 || h > 256 || hot_x >= w || hot_y >= h) {
		vlog_guest("mks: bad cursor %ux%u hot %u,%u", w, h, hot_x, hot_y);
		return -1;
	}
	img = malloc((size_t)w * h * 4);
	if (!img)
		return -1;
	memcpy(img, argb, (size_t)w * h * 4);
	vmx_mutex_lock(&m->lock);
	free(m->cur_img);
	m->cur_img = img;
	m->cur_w = w;
	m->cur_h = h;
	m->cur_hx = hot_x;
	m->cur_hy = hot_y;
	m->cur_img_changed = true;
	vmx_mutex_unlock(&m->lock);
	mks_wake(m);
	return 0;
}

void mks_cursor_move(struct mks *m, int32_t x, int32_t y, bool visible)
{
	if (!m)
		return;
	vmx_mutex_lock(&m->lock);
	m->cur_x = x;
	m->cur_y = y;
	m->cur_vis = visible;
	m->cur_pos_changed = true;
	vmx_mutex_unlock(&m->lock);
	mks_wake(m);
}

void mks_leds(struct mks *m, unsigned leds)
{
	if (!m)
		return;
	vmx_mutex_lock(&m->lock);
	if (leds != m->leds) {
		m->leds = leds & 7;
		m->leds_changed = true;
	}
	vmx_mutex_unlock(&m->lock);
	mks_wake(m);
}

/* ---- the MKS thread's work ---- */

static struct mks_frame cur_frame(const struct mks *m)
{
	struct mks_frame f = { m->shadow, m->width, m->height, m->width };
	return f;
}

static int shadow_resize(struct mks *m, uint32_t w, uint32_t h)
{
	uint32_t *ns = calloc((size_t)w * h, 4);
	uint32_t *nl = calloc(w, 4);
	size_t tiles = (size_t)((w + MKS_TILE - 1) / MKS_TILE) * ((h + MKS_TILE - 1) / MKS_TILE);
	uint8_t *nt = calloc(tiles, 1);

	if (!ns || !nl || !nt) {
		free(ns);
		free(nl);
		free(nt);
		vlog_error("mks: no memory for a %ux%u shadow", w, h);
		return -1;
	}
	free(m->shadow);
	free(m->line);
	free(m->tiles);
	m->shadow = ns;
	m->line = nl;
	m->tiles = nt;
	m->tiles_cap = tiles;
	m->width = w;
	m->height = h;
	return 0;
}

static void be_update(struct mks *m, const struct mks_rect *r, unsigned n)
{
	struct mks_frame f = cur_frame(m);
	if (!n)
		return;
	for (unsigned i = 0; i < m->nbe; i++)
		if (m->be[i].ops->update)
			m->be[i].ops->update(m->be[i].opaque, &f, r, n);
}

static void be_resize(struct mks *m)
{
	struct mks_frame f = cur_frame(m);
	for (unsigned i = 0; i < m->nbe; i++) {
		m->be[i].need_resize = false;
		if (m->be[i].ops->resize)
			m->be[i].ops->resize(m->be[i].opaque, &f);
	}
}

/* Scanout -> shadow for r (scan held); returns true when anything differed. */
static bool copy_in(struct mks *m, const struct mks_scanout *s, const struct mks_rect *r)
{
	bool diff = false;

	for (int32_t y = r->y; y < r->y + r->h; y++) {
		const uint8_t *row = s->base + (size_t)y * s->stride;
		uint32_t *dst = m->shadow + (size_t)y * m->width + r->x;
		mks_convert_line(s, row, (uint32_t)r->x, (uint32_t)r->w, m->line);
		if (memcmp(dst, m->line, (size_t)r->w * 4)) {
			memcpy(dst, m->line, (size_t)r->w * 4);
			diff = true;
		}
	}
	return diff;
}

static void shadow_move(struct mks *m, const struct mks_rect *src, int32_t dx, int32_t dy)
{
	size_t bytes = (size_t)src->w * 4;

	if (dy <= src->y) {
		for (int32_t i = 0; i < src->h; i++)
			memmove(m->shadow + (size_t)(dy + i) * m->width + dx,
			        m->shadow + (size_t)(src->y + i) * m->width + src->x, bytes);
	} else {
		for (int32_t i = src->h - 1; i >= 0; i--)
			memmove(m->shadow + (size_t)(dy + i) * m->width + dx,
			        m->shadow + (size_t)(src->y + i) * m->width + src->x, bytes);
	}
}

/*
 * The pages of the scanout the guest wrote since the last tick, into
 * m->dirty; false when the scanout has no dirty source or it cannot tell.
 * first receives the host page number bit 0 stands for.
 */
static bool poll_dirty_pages(struct mks *m, const struct mks_scanout *s, uintptr_t *first)
{
	if (!s->dirty)
		return false;
	size_t len = (size_t)s->stride * (s->height - 1) + (size_t)s->width * fmt_bpp(s->format);
	uintptr_t a = (uintptr_t)s->base;
	size_t words = ((((a + len - 1) >> 12) - (a >> 12)) / 64) + 1;
	if (words > m->dirty_words) {
		uint64_t *nd = realloc(m->dirty, words * sizeof(*nd));
		if (!nd)
			return false;
		m->dirty = nd;
		m->dirty_words = words;
	}
	if (s->dirty(s->dirty_opaque, s->base, len, m->dirty) != 0)
		return false;
	if (!m->dirty_noted) {
		m->dirty_noted = true;
		vlog_info("mks: poll scanout: comparing only the pages the engine saw written");
	}
	*first = a >> 12;
	return true;
}

/* Any page of host bytes [a, a+len) set in m->dirty (first: bit 0's page)? */
static bool poll_row_dirty(const struct mks *m, uintptr_t first, uintptr_t a, size_t len)
{
	for (uintptr_t p = (a >> 12) - first, e = ((a + len - 1) >> 12) - first; p <= e; p++)
		if ((m->dirty[p / 64] >> (p % 64)) & 1)
			return true;
	return false;
}

/* Compare the scanout with the shadow tile by tile (poll mode): every line,
 * or with a dirty source only the lines on pages written since last time. */
static unsigned poll_compare(struct mks *m, const struct mks_scanout *s, struct mks_rect *out)
{
	uint32_t tw = (m->width + MKS_TILE - 1) / MKS_TILE, th = (m->height + MKS_TILE - 1) / MKS_TILE;
	unsigned n = 0;
	uintptr_t first = 0;
	bool by_page = poll_dirty_pages(m, s, &first);
	size_t row_bytes = (size_t)m->width * fmt_bpp(s->format);

	memset(m->tiles, 0, m->tiles_cap);
	for (uint32_t y = 0; y < m->height; y++) {
		const uint8_t *row = s->base + (size_t)y * s->stride;
		uint32_t *sh = m->shadow + (size_t)y * m->width;
		if (by_page && !poll_row_dirty(m, first, (uintptr_t)row, row_bytes))
			continue;
		mks_convert_line(s, row, 0, m->width, m->line);
		if (!memcmp(sh, m->line, (size_t)m->width * 4))
			continue;
		for (uint32_t t = 0; t < tw; t++) {
			uint32_t x0 = t * MKS_TILE, cnt = m->width - x0 < MKS_TILE ? m->width - x0 : MKS_TILE;
			if (memcmp(sh + x0, m->line + x0, (size_t)cnt * 4)) {
				memcpy(sh + x0, m->line + x0, (size_t)cnt * 4);
				m->tiles[(y / MKS_TILE) * tw + t] = 1;
			}
		}
	}
	/* Runs of dirty tiles per tile row become rectangles. */
	for (uint32_t ty = 0; ty < th; ty++) {
		for (uint32_t t = 0; t < tw; t++) {
			if (!m->tiles[ty * tw + t])
				continue;
			uint32_t e = t;
			while (e + 1 < tw && m->tiles[ty * tw + e + 1])
				e++;
			struct mks_rect r = { (int32_t)(t * MKS_TILE), (int32_t)(ty * MKS_TILE),
			                      (int32_t)((e + 1 - t) * MKS_TILE), MKS_TILE };
			rect_clip(&r, m->width, m->height);
			mks_rects_add(out, &n, r);
			t = e;
		}
	}
	return n;
}

/* Everything pending, in order.  Runs on the owner thread. */
static void mks_input_drain(struct mks *m);

static void mks_process(struct mks *m, bool tick)
{
	struct mks_rect dmg[MKS_MAX_RECTS];
	unsigned ndmg;
	bool changed, have, poll;
	struct mks_scanout s;
	struct mks_op *ops = NULL;
	unsigned nops;

	vmx_mutex_lock(&m->scan);
	m->in_scan = true;
	vmx_mutex_lock(&m->lock);
	changed = m->so_changed;
	m->so_changed = false;
	have = m->have_so;
	s = m->so;
	memcpy(dmg, m->dmg, sizeof(dmg[0]) * m->ndmg);
	ndmg = m->ndmg;
	m->ndmg = 0;
	nops = m->nops;
	if (nops) {
		ops = malloc(sizeof(*ops) * nops);
		if (ops)
			memcpy(ops, m->ops, sizeof(*ops) * nops);
		else
			changed = true;   /* no memory: repaint everything */
		m->nops = 0;
	}
	vmx_mutex_unlock(&m->lock);
	poll = have && s.poll;

	if (changed) {
		uint32_t w = have ? s.width : m->width, h = have ? s.height : m->height;
		if (w != m->width || h != m->height || !m->shadow) {
			if (shadow_resize(m, w, h) == 0)
				be_resize(m);
		} else {
			memset(m->shadow, 0, (size_t)m->width * m->height * 4);
		}
		if (have && m->width == s.width && m->height == s.height) {
			struct mks_rect all = { 0, 0, (int32_t)s.width, (int32_t)s.height };
			copy_in(m, &s, &all);
		}
		struct mks_rect all = { 0, 0, (int32_t)m->width, (int32_t)m->height };
		be_update(m, &all, 1);
		ndmg = 0;
		nops = 0;
	}
	if (have && m->width == s.width && m->height == s.height) {
		for (unsigned i = 0; ops && i < nops; i++) {
			struct mks_op *op = &ops[i];
			for (unsigned j = 0; j < op->npre; j++)
				copy_in(m, &s, &op->pre[j]);
			be_update(m, op->pre, op->npre);
			shadow_move(m, &op->src, op->dx, op->dy);
			struct mks_frame f = cur_frame(m);
			for (unsigned b = 0; b < m->nbe; b++) {
				if (m->be[b].ops->copy) {
					m->be[b].ops->copy(m->be[b].opaque, &f, &op->src, op->dx, op->dy);
				} else if (m->be[b].ops->update) {
					struct mks_rect d = { op->dx, op->dy, op->src.w, op->src.h };
					m->be[b].ops->update(m->be[b].opaque, &f, &d, 1);
				}
			}
			struct mks_rect d = { op->dx, op->dy, op->src.w, op->src.h };
			if (copy_in(m, &s, &d))
				be_update(m, &d, 1);
		}
		unsigned n = 0;
		for (unsigned i = 0; i < ndmg; i++) {
			copy_in(m, &s, &dmg[i]);
			dmg[n++] = dmg[i];
		}
		be_update(m, dmg, n);
		if (poll && tick) {
			n = poll_compare(m, &s, dmg);
			be_update(m, dmg, n);
		}
	}
	m->in_scan = false;
	vmx_mutex_unlock(&m->scan);
	free(ops);
	mks_input_drain(m);

	/* Cursor, LEDs. */
	uint32_t *img = NULL, cw = 0, ch = 0, hx = 0, hy = 0;
	bool img_changed, pos_changed, leds_changed, vis;
	int32_t cx, cy;
	unsigned leds;
	vmx_mutex_lock(&m->lock);
	img_changed = m->cur_img_changed;
	m->cur_img_changed = false;
	for (unsigned i = 0; i < m->nbe; i++)
		if (m->be[i].need_cursor) {
			img_changed = true;
			m->be[i].need_cursor = false;
		}
	if (img_changed && m->cur_img) {
		img = malloc((size_t)m->cur_w * m->cur_h * 4);
		if (img) {
			memcpy(img, m->cur_img, (size_t)m->cur_w * m->cur_h * 4);
			cw = m->cur_w;
			ch = m->cur_h;
			hx = m->cur_hx;
			hy = m->cur_hy;
		}
	}
	pos_changed = m->cur_pos_changed;
	m->cur_pos_changed = false;
	cx = m->cur_x;
	cy = m->cur_y;
	vis = m->cur_vis;
	leds_changed = m->leds_changed;
	m->leds_changed = false;
	leds = m->leds;
	vmx_mutex_unlock(&m->lock);
	for (unsigned i = 0; i < m->nbe; i++) {
		const struct mks_backend_ops *o = m->be[i].ops;
		if (img && o->cursor)
			o->cursor(m->be[i].opaque, cw, ch, hx, hy, img);
		if (pos_changed && o->cursor_pos)
			o->cursor_pos(m->be[i].opaque, cx, cy, vis);
		if (leds_changed && o->leds)
			o->leds(m->be[i].opaque, leds);
	}
	free(img);

	/* Back ends attached since the last round. */
	for (unsigned i = 0; i < m->nbe; i++) {
		if (m->be[i].need_resize) {
			struct mks_frame f = cur_frame(m);
			m->be[i].need_resize = false;
			if (m->be[i].ops->resize)
				m->be[i].ops->resize(m->be[i].opaque, &f);
		}
	}
}

static void run_frame_reqs(struct mks *m)
{
	struct mks_frame_req *list;

	vmx_mutex_lock(&m->lock);
	list = m->reqs;
	m->reqs = NULL;
	vmx_mutex_unlock(&m->lock);
	if (!list)
		return;
	/* Damage reported before these requests may have come in after this round took
	 * its work: the callers must see it (and, in poll mode, the current pixels).
	 * Requests arriving from now on wait for the next round. */
	mks_process(m, true);
	while (list) {
		struct mks_frame_req *r = list;
		list = r->next;
		struct mks_frame f = cur_frame(m);
		r->fn(r->opaque, &f);
		vmx_mutex_lock(&m->lock);
		r->done = true;
		pthread_cond_broadcast(&m->cond);
		vmx_mutex_unlock(&m->lock);
	}
}

static void *mks_thread(void *arg)
{
	struct mks *m = arg;
	struct epoll_event ev[16];

	vlog_set_thread_name("mks");
	m->next_tick = mono_ns() + MKS_TICK_NS;
	while (!__atomic_load_n(&m->quit, __ATOMIC_ACQUIRE)) {
		uint64_t now = mono_ns();
		int timeout = now >= m->next_tick ? 0 : (int)((m->next_tick - now) / 1000000) + 1;
		int n = epoll_wait(m->epfd, ev, 16, timeout);
		bool tick;

		for (int i = 0; i < n; i++) {
			if (ev[i].data.fd == m->evfd) {
				uint64_t v;
				if (read(m->evfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
					vlog_warn("mks: eventfd: %s", strerror(errno));
				continue;
			}
			for (unsigned j = 0; j < m->nfds; j++) {
				if (m->fds[j].fd == ev[i].data.fd) {
					m->fds[j].cb(m->fds[j].opaque, ev[i].events);
					break;
				}
			}
		}
		now = mono_ns();
		tick = now >= m->next_tick;
		if (tick) {
			m->next_tick += MKS_TICK_NS;
			if (m->next_tick < now)
				m->next_tick = now + MKS_TICK_NS;
		}
		mks_process(m, tick);
		run_frame_reqs(m);
		if (tick)
			for (unsigned i = 0; i < m->nbe; i++)
				if (m->be[i].ops->tick)
					m->be[i].ops->tick(m->be[i].opaque);
	}
	return NULL;
}

/* ---- back ends ---- */

static bool on_owner(struct mks *m)
{
	return m->running ? pthread_equal(pthread_self(), m->thread) : true;
}

int mks_backend_add(struct mks *m, const struct mks_backend_ops *ops, void *opaque)
{
	if (!m || !ops || m->nbe >= MKS_MAX_BACKENDS)
		return -1;
	/* Attach from the MKS thread itself or before it runs: the list is its own. */
	if (m->running && !on_owner(m)) {
		vlog_error("mks: back end %s added from another thread after start", ops->name);
		return -1;
	}
	m->be[m->nbe].ops = ops;
	m->be[m->nbe].opaque = opaque;
	m->be[m->nbe].need_resize = true;
	m->be[m->nbe].need_cursor = true;
	m->nbe++;
	mks_wake(m);
	return 0;
}

int mks_with_frame(struct mks *m, void (*fn)(void *opaque, const struct mks_frame *f),
                   void *opaque)
{
	struct mks_frame_req r = { fn, opaque, false, NULL };

	if (!m || !fn)
		return -1;
	if (!m->running || on_owner(m)) {
		/* No thread (device tests) or on it: bring the shadow up to date here. */
		mks_process(m, true);
		struct mks_frame f = cur_frame(m);
		fn(opaque, &f);
		return 0;
	}
	vmx_mutex_lock(&m->lock);
	r.next = m->reqs;
	m->reqs = &r;
	vmx_mutex_unlock(&m->lock);
	mks_wake(m);
	vmx_mutex_lock(&m->lock);
	while (!r.done)
		pthread_cond_wait(&m->cond, &m->lock.m);
	vmx_mutex_unlock(&m->lock);
	return 0;
}

int mks_add_fd(struct mks *m, int fd, uint32_t events, void (*cb)(void *opaque, uint32_t events),
               void *opaque)
{
	struct epoll_event ev = { .events = events, .data.fd = fd };

	if (!m || m->nfds >= MKS_MAX_FDS || !cb)
		return -1;
	if (epoll_ctl(m->epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
		return -1;
	m->fds[m->nfds].fd = fd;
	m->fds[m->nfds].cb = cb;
	m->fds[m->nfds].opaque = opaque;
	m->nfds++;
	return 0;
}

void mks_del_fd(struct mks *m, int fd)
{
	if (!m)
		return;
	for (unsigned i = 0; i < m->nfds; i++) {
		if (m->fds[i].fd == fd) {
			epoll_ctl(m->epfd, EPOLL_CTL_DEL, fd, NULL);
			m->fds[i] = m->fds[--m->nfds];
			return;
		}
	}
}

/* ---- input ---- */

static void set_sink(struct mks *m, const struct mks_input_ops **slot, void **slot_opaque,
                     const struct mks_input_ops *ops, void *opaque)
{
	vmx_mutex_lock(&m->lock);
	*slot = ops;
	*slot_opaque = opaque;
	vmx_mutex_unlock(&m->lock);
}

void mks_input_set_keyboard(struct mks *m, const struct mks_input_ops *ops, void *opaque)
{
	if (m)
		set_sink(m, &m->kbd_ops, &m->kbd_opaque, ops, opaque);
}

void mks_input_set_mouse(struct mks *m, const struct mks_input_ops *ops, void *opaque)
{
	if (m)
		set_sink(m, &m->mouse_ops, &m->mouse_opaque, ops, opaque);
}

void mks_input_set_absolute(struct mks *m, const struct mks_input_ops *ops, void *opaque)
{
	if (m)
		set_sink(m, &m->abs_ops, &m->abs_opaque, ops, opaque);
}

static void deliver_key(struct mks *m, uint32_t scancode, bool down)
{
	const struct mks_input_ops *o;
	void *op;

	vmx_mutex_lock(&m->lock);
	o = m->kbd_ops;
	op = m->kbd_opaque;
	vmx_mutex_unlock(&m->lock);
	if (o && o->key)
		o->key(op, scancode, down);
}

static void deliver_pointer(struct mks *m, int32_t x, int32_t y, unsigned buttons, int wheel)
{
	const struct mks_input_ops *ao, *ro;
	void *aop, *rop;
	uint32_t w, h;
	int32_t dx, dy;

	vmx_mutex_lock(&m->lock);
	ao = m->abs_ops;
	aop = m->abs_opaque;
	ro = m->mouse_ops;
	rop = m->mouse_opaque;
	w = m->have_so ? m->so.width : (m->width ? m->width : 1);
	h = m->have_so ? m->so.height : (m->height ? m->height : 1);
	dx = m->have_last ? x - m->last_x : 0;
	dy = m->have_last ? y - m->last_y : 0;
	m->last_x = x;
	m->last_y = y;
	m->have_last = true;
	vmx_mutex_unlock(&m->lock);
	if (x < 0)
		x = 0;
	if (y < 0)
		y = 0;
	if ((uint32_t)x >= w)
		x = (int32_t)w - 1;
	if ((uint32_t)y >= h)
		y = (int32_t)h - 1;
	if (ao && ao->abs && ao->abs(aop, x, y, w, h, buttons & 7, wheel))
		return;
	if (ro && ro->rel)
		ro->rel(rop, dx, dy, -wheel, buttons & 7);
}

/* Deliver what was queued inside a scan, oldest first (owner thread). */
static void mks_input_drain(struct mks *m)
{
	for (;;) {
		struct mks_in e;
		vmx_mutex_lock(&m->lock);
		if (!m->inq_n) {
			vmx_mutex_unlock(&m->lock);
			return;
		}
		e = m->inq[m->inq_head];
		m->inq_head = (m->inq_head + 1) % MKS_INQ;
		m->inq_n--;
		vmx_mutex_unlock(&m->lock);
		if (e.kind == MKS_IN_KEY)
			deliver_key(m, e.scancode, e.down);
		else
			deliver_pointer(m, e.x, e.y, e.buttons, e.wheel);
	}
}

/* Inside the owner's scan: queue (mks_process delivers when it lets go).
 * Anywhere else, with no MKS lock held: deliver now, after what waits. */
static void mks_input_event(struct mks *m, const struct mks_in *e)
{
	if (on_owner(m) && m->in_scan) {
		bool full;
		vmx_mutex_lock(&m->lock);
		full = m->inq_n >= MKS_INQ;
		if (!full) {
			m->inq[(m->inq_head + m->inq_n) % MKS_INQ] = *e;
			m->inq_n++;
		}
		vmx_mutex_unlock(&m->lock);
		if (full) {
			static struct vlog_ratelimit rl;
			unsigned sup;
			if (vlog_ratelimit_ok(&rl, 5, 5000000000ull, &sup))
				vlog_warn("mks: input queue full; event dropped (%u more not logged)", sup);
		}
		return;
	}
	if (on_owner(m))
		mks_input_drain(m);
	if (e->kind == MKS_IN_KEY)
		deliver_key(m, e->scancode, e->down);
	else
		deliver_pointer(m, e->x, e->y, e->buttons, e->wheel);
}

void mks_input_key(struct mks *m, uint32_t scancode, bool down)
{
	if (!m)
		return;
	struct mks_in e = { .kind = MKS_IN_KEY, .down = down, .scancode = scancode };
	mks_input_event(m, &e);
}

void mks_input_pointer(struct mks *m, int32_t x, int32_t y, unsigned buttons, int wheel)
{
	if (!m)
		return;
	struct mks_in e = { .kind = MKS_IN_POINTER, .x = x, .y = y, .buttons = buttons, .wheel = wheel };
	mks_input_event(m, &e);
}

/* ---- the device class ---- */

struct mks *mks_of(struct vmx_vm *vm)
{
	return vm ? vmx_vm_device(vm, "mks") : NULL;
}

const struct mks_config *mks_config(const struct mks *m)
{
	return &m->cfg;
}

struct vmx_vm *mks_vm(const struct mks *m)
{
	return m->vm;
}

struct mks *mks_new(struct vmx_vm *vm)
{
	struct mks *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->vm = vm;
	m->epfd = m->evfd = -1;
	vmx_mutex_init(&m->scan, VMX_RANK_DEVICE + 2, "mks-scan");
	vmx_mutex_init(&m->lock, VMX_RANK_DEVICE + 4, "mks");
	pthread_cond_init(&m->cond, NULL);
	m->epfd = epoll_create1(EPOLL_CLOEXEC);
	m->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (m->epfd < 0 || m->evfd < 0 || shadow_resize(m, 640, 480) != 0) {
		mks_free(m);
		return NULL;
	}
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = m->evfd };
	epoll_ctl(m->epfd, EPOLL_CTL_ADD, m->evfd, &ev);
	return m;
}

int mks_start_thread(struct mks *m)
{
	if (m->running)
		return 0;
	m->quit = false;
	if (pthread_create(&m->thread, NULL, mks_thread, m) != 0)
		return -1;
	pthread_setname_np(m->thread, "vireo-mks");
	m->running = true;
	return 0;
}

void mks_free(struct mks *m)
{
	if (!m)
		return;
	if (m->running) {
		__atomic_store_n(&m->quit, true, __ATOMIC_RELEASE);
		mks_wake(m);
		pthread_join(m->thread, NULL);
		m->running = false;
	}
	for (unsigned i = 0; i < m->nbe; i++)
		if (m->be[i].ops->destroy)
			m->be[i].ops->destroy(m->be[i].opaque);
	m->nbe = 0;
	if (m->epfd >= 0)
		close(m->epfd);
	if (m->evfd >= 0)
		close(m->evfd);
	free(m->shadow);
	free(m->line);
	free(m->tiles);
	free(m->dirty);
	free(m->cur_img);
	free(m->cfg.vnc_password);
	pthread_cond_destroy(&m->cond);
	vmx_mutex_destroy(&m->lock);
	vmx_mutex_destroy(&m->scan);
	free(m);
}

static bool mks_present(struct vmx_vm *vm)
{
	bool on = true;
	char err[256];
	vmxcfg_get_bool(vm->cfg, "svga.present", true, &on, err, sizeof(err));
	return on;
}

static int mks_dev_init(struct vdev *dev, char *err, size_t errlen)
{
	struct mks *m = mks_new(dev->vm);
	if (!m) {
		snprintf(err, errlen, "mks: out of memory");
		return -1;
	}
	if (mks_read_config(m, &m->cfg, dev->vm->cfg, err, errlen) != 0) {
		mks_free(m);
		return -1;
	}
	dev->priv = m;
	return 0;
}

static int mks_dev_start(struct vdev *dev, char *err, size_t errlen)
{
	struct mks *m = dev->priv;

	if (mks_backends_start(m, err, errlen) != 0)
		return -1;
	if (mks_start_thread(m) != 0) {
		snprintf(err, errlen, "mks: cannot start its thread");
		return -1;
	}
	return 0;
}

static void mks_dev_destroy(struct vdev *dev)
{
	mks_free(dev->priv);
	dev->priv = NULL;
}

static const struct vdev_class mks_class = {
	.name = "mks",
	.order = 30,   /* before the display devices and the input devices */
	.present = mks_present,
	.init = mks_dev_init,
	.destroy = mks_dev_destroy,
	.start = mks_dev_start,
};

VDEV_REGISTER(mks_class)

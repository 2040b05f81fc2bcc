/*
 * mks_vnc.c — the VNC back end (libvncserver), chained behind the primary
 * node.
 *
 * libvncserver runs without its own threads: every socket is serviced on
 * the MKS thread (rfbProcessEvents from the fd callbacks, after each update
 * and on the tick), so its frameBuffer can be the shadow itself: nothing
 * else writes the shadow while it encodes.  The shadow is XRGB8888 in host
 * order, which is RFB's 32-bit true colour with red at shift 16.
 *
 * Encodings are libvncserver's (Raw, CopyRect, RRE, Hextile, Zlib, Tight
 * with JPEG, ZRLE, ...), chosen by the client.  Pseudo-encodings: rich
 * cursor and desktop resize (libvncserver), plus QEMU's extended key event
 * (-258: scancodes, so the guest keymap is the client's physical layout)
 * and QEMU's LED state (-261) through a protocol extension here.
 * WebSockets (noVNC) are detected by libvncserver on the same port.
 * A malformed message makes libvncserver close that client only.
 */
#include "mks_int.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "vmx/log.h"

#ifdef VIREO_HAVE_VNC

#include <rfb/rfb.h>

#define ENC_QEMU_EXT_KEY  ((int)0xFFFFFEFE)   /* -258 */
#define ENC_QEMU_LED      ((int)0xFFFFFEFB)   /* -261 */

struct mks_vnc {
	struct mks *m;
	rfbScreenInfoPtr screen;
	char *passwords[2];
	rfbCursorPtr cursor;
	bool cursor_hidden;
	unsigned leds;
	int listen_fd;
	int cfds[64];               /* client sockets registered with the MKS */
	uintptr_t cgen[64];         /* ...and whose: a closed fd's number comes back */
	uintptr_t client_gen;       /* numbers clients (cl->clientData) */
	unsigned ncfds;
};

/* Per-client extension state. */
struct vnc_client {
	struct mks_vnc *v;
	bool ext_key, led, led_sent;
	unsigned led_state;
};

static struct mks_vnc *vnc_of(rfbClientPtr cl)
{
	return cl->screen->screenData;
}

__attribute__((format(printf, 1, 2)))
static void vnc_log(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	size_t n = strlen(buf);
	if (n && buf[n - 1] == '\n')
		buf[n - 1] = 0;
	vlog_info("vnc: %s", buf);
}

static void vnc_fd_cb(void *opaque, uint32_t events);

/* Keep the MKS's fd set equal to libvncserver's client sockets. */
static void vnc_sync_fds(struct mks_vnc *v)
{
	int now[64];
	uintptr_t who[64];
	unsigned n = 0;
	rfbClientIteratorPtr it = rfbGetClientIterator(v->screen);
	rfbClientPtr cl;

	while ((cl = rfbClientIteratorNext(it)))
		if (cl->sock >= 0 && n < 64) {
			who[n] = (uintptr_t)cl->clientData;
			now[n++] = cl->sock;
		}
	rfbReleaseClientIterator(it);
	/* Drop sockets that left, and those whose number a new client got since:
	 * epoll forgot the old file when it was closed, so the new one must be
	 * added again or it is only serviced on the tick. */
	for (unsigned i = 0; i < v->ncfds;) {
		bool keep = false;
		for (unsigned j = 0; j < n; j++)
			keep |= now[j] == v->cfds[i] && who[j] == v->cgen[i];
		if (keep) {
			i++;
			continue;
		}
		mks_del_fd(v->m, v->cfds[i]);
		v->ncfds--;
		v->cfds[i] = v->cfds[v->ncfds];
		v->cgen[i] = v->cgen[v->ncfds];
	}
	for (unsigned j = 0; j < n; j++) {
		bool have = false;
		for (unsigned i = 0; i < v->ncfds; i++)
			have |= now[j] == v->cfds[i];
		if (!have && v->ncfds < 64 && mks_add_fd(v->m, now[j], EPOLLIN, vnc_fd_cb, v) == 0) {
			v->cfds[v->ncfds] = now[j];
			v->cgen[v->ncfds++] = who[j];
		}
	}
}

static void vnc_process(struct mks_vnc *v)
{
	rfbProcessEvents(v->screen, 0);
	vnc_sync_fds(v);
}

/* ---- input ---- */

static void vnc_key(rfbBool down, rfbKeySym ks, rfbClientPtr cl)
{
	struct mks_vnc *v = vnc_of(cl);
	uint32_t sc = mks_keysym_to_scancode((uint32_t)ks);

	if (sc)
		mks_input_key(v->m, sc, down);
}

static void vnc_pointer(int mask, int x, int y, rfbClientPtr cl)
{
	struct mks_vnc *v = vnc_of(cl);
	int wheel = 0;

	/* Buttons 4 and 5 are wheel notches (press only). */
	if (mask & 8)
		wheel = 1;
	else if (mask & 16)
		wheel = -1;
	mks_input_pointer(v->m, x, y, (unsigned)mask & 7, wheel);
	rfbDefaultPtrAddEvent(mask, x, y, cl);
}

/* ---- QEMU extended key event and LED state ---- */

static void send_pseudo_rect(rfbClientPtr cl, int encoding, const uint8_t *payload, int len)
{
	uint8_t buf[4 + 12 + 4];
	uint32_t enc = (uint32_t)encoding;

	buf[0] = rfbFramebufferUpdate;
	buf[1] = 0;
	buf[2] = 0;
	buf[3] = 1;
	memset(buf + 4, 0, 8);
	buf[12] = (uint8_t)(enc >> 24);
	buf[13] = (uint8_t)(enc >> 16);
	buf[14] = (uint8_t)(enc >> 8);
	buf[15] = (uint8_t)enc;
	if (len > 4)
		len = 4;
	if (len > 0)
		memcpy(buf + 16, payload, (size_t)len);
	if (rfbWriteExact(cl, (const char *)buf, 16 + len) < 0)
		rfbCloseClient(cl);
}

static rfbBool ext_new_client(rfbClientPtr cl, void **data)
{
	struct vnc_client *c = calloc(1, sizeof(*c));
	if (!c)
		return FALSE;
	c->v = vnc_of(cl);
	*data = c;
	return TRUE;
}

static rfbBool ext_enable(rfbClientPtr cl, void **data, int enc)
{
	struct vnc_client *c = *data;

	if (!c)
		return FALSE;
	if (enc == ENC_QEMU_EXT_KEY) {
		/* QEMU answers with an empty rect of this encoding: the client may then use it. */
		if (!c->ext_key)
			send_pseudo_rect(cl, ENC_QEMU_EXT_KEY, NULL, 0);
		c->ext_key = true;
		return TRUE;
	}
	if (enc == ENC_QEMU_LED) {
		c->led = true;
		c->led_sent = false;
		return TRUE;
	}
	return FALSE;
}

/* Parses after the type byte: subtype, down, keysym, keycode (RFB's QEMU message 255). */
static rfbBool ext_message(rfbClientPtr cl, void *data, const rfbClientToServerMsg *msg)
{
	struct vnc_client *c = data;
	uint8_t b[sz_rfbQemuExtendedKeyEventMsg];
	int n;

	if (msg->type != rfbQemuEvent || !c)
		return FALSE;
	n = rfbReadExact(cl, (char *)b + 1, sz_rfbQemuExtendedKeyEventMsg - 1);
	if (n <= 0) {
		rfbCloseClient(cl);
		return TRUE;
	}
	if (b[1] != 0) {
		/* Only sub-message 0 exists with this size; anything else is malformed. */
		vlog_warn("vnc: unknown QEMU client message subtype %u: closing that client", b[1]);
		rfbCloseClient(cl);
		return TRUE;
	}
	unsigned down = (unsigned)b[2] << 8 | b[3];
	uint32_t keysym = (uint32_t)b[4] << 24 | (uint32_t)b[5] << 16 | (uint32_t)b[6] << 8 | b[7];
	uint32_t keycode = (uint32_t)b[8] << 24 | (uint32_t)b[9] << 16 | (uint32_t)b[10] << 8 | b[11];
	uint32_t sc = mks_qemu_keycode_to_scancode(keycode);
	if (!sc)
		sc = mks_keysym_to_scancode(keysym);
	if (sc && !cl->viewOnly)
		mks_input_key(c->v->m, sc, down != 0);
	return TRUE;
}

static void ext_close(rfbClientPtr cl, void *data)
{
	free(data);
}

static int ext_encodings[] = { ENC_QEMU_EXT_KEY, ENC_QEMU_LED, 0 };

static rfbProtocolExtension vnc_ext = {
	.newClient = ext_new_client,
	.pseudoEncodings = ext_encodings,
	.enablePseudoEncoding = ext_enable,
	.handleMessage = ext_message,
	.close = ext_close,
};

static void send_leds(struct mks_vnc *v)
{
	rfbClientIteratorPtr it = rfbGetClientIterator(v->screen);
	rfbClientPtr cl;

	while ((cl = rfbClientIteratorNext(it))) {
		for (rfbExtensionData *e = cl->extensions; e; e = e->next) {
			struct vnc_client *c = e->data;
			if (e->extension != &vnc_ext || !c || !c->led || cl->state != RFB_NORMAL)
				continue;
			if (c->led_sent && c->led_state == v->leds)
				continue;
			/* QEMU's order: bit0 scroll, bit1 num, bit2 caps (as mks_leds). */
			uint8_t s = (uint8_t)v->leds;
			send_pseudo_rect(cl, ENC_QEMU_LED, &s, 1);
			c->led_sent = true;
			c->led_state = v->leds;
		}
	}
	rfbReleaseClientIterator(it);
}

/* ---- sockets ---- */

static void vnc_fd_cb(void *opaque, uint32_t events)
{
	vnc_process(opaque);
}

static void vnc_client_gone(rfbClientPtr cl)
{
	vlog_info("vnc: client %s disconnected", cl->host ? cl->host : "?");
}

static enum rfbNewClientAction vnc_new_client(rfbClientPtr cl)
{
	char addr[64] = "?";

	cl->clientGoneHook = vnc_client_gone;
	cl->clientData = (void *)++vnc_of(cl)->client_gen;
	if (cl->host)
		snprintf(addr, sizeof(addr), "%s", cl->host);
	vlog_info("vnc: client %s connected", addr);
	return RFB_CLIENT_ACCEPT;
}

/* ---- the back end ---- */

static void set_format(rfbScreenInfoPtr s)
{
	s->serverFormat.redShift = 16;
	s->serverFormat.greenShift = 8;
	s->serverFormat.blueShift = 0;
	s->serverFormat.redMax = 255;
	s->serverFormat.greenMax = 255;
	s->serverFormat.blueMax = 255;
}

static void be_resize(void *opaque, const struct mks_frame *f)
{
	struct mks_vnc *v = opaque;
	rfbScreenInfoPtr s = v->screen;

	if (s->frameBuffer == (char *)f->pixels && s->width == (int)f->width &&
	    s->height == (int)f->height)
		return;
	/* Sockets of clients that leave during the resize are dropped by their hook. */
	rfbNewFramebuffer(s, (char *)f->pixels, (int)f->width, (int)f->height, 8, 3, 4);
	set_format(s);
	s->paddedWidthInBytes = (int)f->stride_px * 4;
	rfbClientIteratorPtr it = rfbGetClientIterator(s);
	rfbClientPtr cl;
	while ((cl = rfbClientIteratorNext(it)))
		rfbSetTranslateFunction(cl);
	rfbReleaseClientIterator(it);
	vnc_process(v);
}

static void be_update(void *opaque, const struct mks_frame *f, const struct mks_rect *r,
                      unsigned n)
{
	struct mks_vnc *v = opaque;

	if (v->screen->frameBuffer != (char *)f->pixels)
		be_resize(v, f);
	for (unsigned i = 0; i < n; i++)
		rfbMarkRectAsModified(v->screen, r[i].x, r[i].y, r[i].x + r[i].w, r[i].y + r[i].h);
	vnc_process(v);
}

static void be_copy(void *opaque, const struct mks_frame *f, const struct mks_rect *src,
                    int32_t dx, int32_t dy)
{
	struct mks_vnc *v = opaque;

	if (v->screen->frameBuffer != (char *)f->pixels) {
		struct mks_rect d = { dx, dy, src->w, src->h };
		be_update(v, f, &d, 1);
		return;
	}
	/* The shadow already moved: only schedule it (destination rect, offset). */
	rfbScheduleCopyRect(v->screen, dx, dy, dx + src->w, dy + src->h, dx - src->x, dy - src->y);
	vnc_process(v);
}

static void be_cursor(void *opaque, uint32_t w, uint32_t h, uint32_t hot_x, uint32_t hot_y,
                      const uint32_t *argb)
{
	struct mks_vnc *v = opaque;
	rfbCursorPtr c = calloc(1, sizeof(*c));
	size_t mask_stride = (w + 7) / 8;

	if (!c)
		return;
	c->width = (unsigned short)w;
	c->height = (unsigned short)h;
	c->xhot = (unsigned short)hot_x;
	c->yhot = (unsigned short)hot_y;
	c->richSource = malloc((size_t)w * h * 4);
	c->alphaSource = malloc((size_t)w * h);
	c->source = calloc(mask_stride * h, 1);
	c->mask = calloc(mask_stride * h, 1);
	if (!c->richSource || !c->alphaSource || !c->source || !c->mask) {
		free(c->richSource);
		free(c->alphaSource);
		free(c->source);
		free(c->mask);
		free(c);
		return;
	}
	for (uint32_t y = 0; y < h; y++) {
		for (uint32_t x = 0; x < w; x++) {
			uint32_t p = argb[(size_t)y * w + x];
			uint8_t a = (uint8_t)(p >> 24);
			/* Server format: 0x00RRGGBB in host order, like the shadow. */
			memcpy(c->richSource + ((size_t)y * w + x) * 4, &(uint32_t){ p & 0xFFFFFFu }, 4);
			c->alphaSource[(size_t)y * w + x] = a;
			if (a >= 0x80)
				c->mask[y * mask_stride + x / 8] |= (uint8_t)(0x80 >> (x % 8));
		}
	}
	c->cleanup = TRUE;
	c->cleanupSource = TRUE;
	c->cleanupMask = TRUE;
	c->cleanupRichSource = TRUE;
	rfbSetCursor(v->screen, c);   /* frees the previous one (its cleanup flags) */
	v->cursor = c;
	vnc_process(v);
}

static void be_cursor_pos(void *opaque, int32_t x, int32_t y, bool visible)
{
	/* The client draws the cursor where its own pointer is (absolute mouse). */
}

static void be_leds(void *opaque, unsigned leds)
{
	struct mks_vnc *v = opaque;
	v->leds = leds;
	send_leds(v);
}

static void be_tick(void *opaque)
{
	struct mks_vnc *v = opaque;
	send_leds(v);
	vnc_process(v);
}

static void be_destroy(void *opaque)
{
	struct mks_vnc *v = opaque;

	if (v->listen_fd >= 0)
		mks_del_fd(v->m, v->listen_fd);
	for (unsigned i = 0; i < v->ncfds; i++)
		mks_del_fd(v->m, v->cfds[i]);
	rfbShutdownServer(v->screen, TRUE);
	v->screen->frameBuffer = NULL;
	rfbScreenCleanup(v->screen);
	free(v->passwords[0]);
	free(v);
}

static const struct mks_backend_ops vnc_ops = {
	.name = "vnc",
	.resize = be_resize,
	.update = be_update,
	.copy = be_copy,
	.cursor = be_cursor,
	.cursor_pos = be_cursor_pos,
	.leds = be_leds,
	.tick = be_tick,
	.destroy = be_destroy,
};

bool mks_vnc_available(void)
{
	return true;
}

int mks_vnc_start(struct mks *m, const struct mks_config *cfg, char *err, size_t errlen)
{
	static bool ext_registered;
	struct mks_vnc *v = calloc(1, sizeof(*v));
	int argc = 0;
	static uint32_t dummy_fb[1];

	if (!v) {
		snprintf(err, errlen, "vnc: out of memory");
		return -1;
	}
	rfbLog = vnc_log;
	rfbErr = vnc_log;
	if (!ext_registered) {
		rfbRegisterProtocolExtension(&vnc_ext);
		ext_registered = true;
	}
	v->m = m;
	v->listen_fd = -1;
	v->screen = rfbGetScreen(&argc, NULL, 1, 1, 8, 3, 4);
	if (!v->screen) {
		free(v);
		snprintf(err, errlen, "vnc: cannot create the server");
		return -1;
	}
	rfbScreenInfoPtr s = v->screen;
	s->frameBuffer = (char *)dummy_fb;   /* the shadow arrives with the first resize */
	s->desktopName = "Vireo";
	set_format(s);
	s->screenData = v;
	s->port = cfg->vnc_port;
	s->ipv6port = 0;
	s->autoPort = FALSE;
	s->listenInterface = inet_addr(cfg->vnc_ip);
	s->alwaysShared = TRUE;
	s->deferUpdateTime = 0;
	s->kbdAddEvent = vnc_key;
	s->ptrAddEvent = vnc_pointer;
	s->newClientHook = vnc_new_client;
	/* Until the guest defines one: an invisible cursor (libvncserver needs one). */
	static unsigned char blank_bits[1] = { 0 };
	static rfbCursor blank = { .width = 1, .height = 1, .source = blank_bits, .mask = blank_bits };
	s->cursor = &blank;
	s->httpDir = NULL;
	if (cfg->vnc_password) {
		v->passwords[0] = strdup(cfg->vnc_password);
		v->passwords[1] = NULL;
		s->authPasswdData = v->passwords;
		s->passwordCheck = rfbCheckPasswordByList;
	}
	rfbInitServer(s);
	if (s->listenSock < 0) {
		snprintf(err, errlen, "RemoteDisplay.vnc.port = \"%u\": cannot listen on %s:%u",
		         cfg->vnc_port, cfg->vnc_ip, cfg->vnc_port);
		s->frameBuffer = NULL;
		rfbScreenCleanup(s);
		free(v->passwords[0]);
		free(v);
		return -1;
	}
	v->listen_fd = s->listenSock;
	if (mks_add_fd(m, s->listenSock, EPOLLIN, vnc_fd_cb, v) != 0 ||
	    mks_backend_add(m, &vnc_ops, v) != 0) {
		snprintf(err, errlen, "vnc: cannot attach to the MKS");
		be_destroy(v);
		return -1;
	}
	vlog_info("vnc: listening on %s:%u%s", cfg->vnc_ip, cfg->vnc_port,
	          cfg->vnc_password ? " (password)" : "");
	return 0;
}

#else

bool mks_vnc_available(void)
{
	return false;
}

int mks_vnc_start(struct mks *m, const struct mks_config *cfg, char *err, size_t errlen)
{
	snprintf(err, errlen, "RemoteDisplay.vnc.enabled: built without libvncserver");
	return -1;
}

#endif

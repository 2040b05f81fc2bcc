/*
 * vrpc.c — GuestRPC message channels (see vrpc.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "vrpc.h"

#include "vbackdoor.h"

#include <stdlib.h>
#include <string.h>

enum {
	MSG_OPEN = 0, MSG_SENDSIZE, MSG_SENDPAYLOAD, MSG_RECVSIZE, MSG_RECVPAYLOAD,
	MSG_RECVSTATUS, MSG_CLOSE,
};
#define ST_SUCCESS 0x0001u
#define ST_DORECV  0x0002u
#define ST_CPT     0x0010u
#define ST_HB      0x0080u
#define OPEN_COOKIE 0x80000000u
/* A checkpoint restarts a transfer; a host that keeps answering CPT is broken. */
#define CPT_RETRIES 8

static uint32_t call(struct vrpc_chan *ch, unsigned type, uint32_t bx, struct vbd_regs *out)
{
	struct vbd_regs r = {
		.ax = VBD_MAGIC, .bx = bx, .cx = (type << 16) | VBD_CMD_MESSAGE,
		.dx = ((uint32_t)ch->id << 16) | VBD_PORT_LB, .si = ch->cookie_hi, .di = ch->cookie_lo,
	};
	vbd_lb(&r);
	if (out)
		*out = r;
	return r.cx >> 16;
}

bool vrpc_open(struct vrpc_chan *ch, uint32_t proto)
{
	memset(ch, 0, sizeof(*ch));
	ch->use_hb = true;
	/* Cookies first, then without, as open-vm-tools does (spec 3.2). */
	for (int pass = 0; pass < 2; pass++) {
		struct vbd_regs r;
		uint32_t st = call(ch, MSG_OPEN, proto | (pass == 0 ? OPEN_COOKIE : 0), &r);
		if (st & ST_SUCCESS) {
			ch->id = (uint16_t)(r.dx >> 16);
			ch->cookie_hi = pass == 0 ? r.si : 0;
			ch->cookie_lo = pass == 0 ? r.di : 0;
			ch->open = true;
			return true;
		}
	}
	return false;
}

void vrpc_close(struct vrpc_chan *ch)
{
	if (ch->open)
		call(ch, MSG_CLOSE, 0, NULL);
	ch->open = false;
}

static int send_once(struct vrpc_chan *ch, const uint8_t *buf, size_t len)
{
	uint32_t st = call(ch, MSG_SENDSIZE, (uint32_t)len, NULL);
	if (!(st & ST_SUCCESS))
		return -1;
	if (len == 0)
		return 0;
	if ((st & ST_HB) && ch->use_hb) {
		struct vbd_regs r = {
			.ax = VBD_MAGIC, .bx = (ST_SUCCESS << 16) | 0 /* HB MESSAGE */,
			.dx = ((uint32_t)ch->id << 16) | VBD_PORT_HB, .di = ch->cookie_lo, .bp = ch->cookie_hi,
		};
		vbd_hb_out(&r, buf, len);
		ch->hb_used++;
		uint32_t hst = r.bx >> 16;
		if (hst & ST_SUCCESS)
			return 0;
		return (hst & ST_CPT) ? 1 : -1;
	}
	for (size_t off = 0; off < len; off += 4) {
		uint32_t w = 0;
		memcpy(&w, buf + off, len - off < 4 ? len - off : 4);
		st = call(ch, MSG_SENDPAYLOAD, w, NULL);
		if (!(st & ST_SUCCESS))
			return (st & ST_CPT) ? 1 : -1;
	}
	return 0;
}

bool vrpc_send(struct vrpc_chan *ch, const void *buf, size_t len)
{
	if (!ch->open || len > VRPC_MAX_MSG)
		return false;
	for (int i = 0; i < CPT_RETRIES; i++) {
		int rc = send_once(ch, buf, len);
		if (rc <= 0)
			return rc == 0;
	}
	return false;
}

/* 1 = retry (checkpoint), 0 = done, -1 = failure */
static int recv_once(struct vrpc_chan *ch, char **out, size_t *len)
{
	struct vbd_regs r;
	uint32_t st = call(ch, MSG_RECVSIZE, 0, &r);
	if (!(st & ST_SUCCESS))
		return (st & ST_CPT) ? 1 : -1;
	if (!(st & ST_DORECV))
		return 0;
	/* The host echoes the message type: SENDSIZE (1) for a size. */
	if ((r.dx >> 16) != MSG_SENDSIZE || r.bx > VRPC_MAX_MSG)
		return -1;
	size_t n = r.bx;
	char *buf = calloc(1, n + 4);
	if (!buf) {
		call(ch, MSG_RECVSTATUS, 0, NULL);
		return -1;
	}
	if ((st & ST_HB) && ch->use_hb && n > 0) {
		struct vbd_regs h = {
			.ax = VBD_MAGIC, .bx = (ST_SUCCESS << 16) | 0,
			.dx = ((uint32_t)ch->id << 16) | VBD_PORT_HB, .si = ch->cookie_hi, .bp = ch->cookie_lo,
		};
		vbd_hb_in(&h, buf, n);
		ch->hb_used++;
		uint32_t hst = h.bx >> 16;
		if (!(hst & ST_SUCCESS)) {
			free(buf);
			return (hst & ST_CPT) ? 1 : -1;
		}
	} else {
		for (size_t off = 0; off < n; off += 4) {
			st = call(ch, MSG_RECVPAYLOAD, ST_SUCCESS, &r);
			if (!(st & ST_SUCCESS) || (r.dx >> 16) != MSG_SENDPAYLOAD) {
				free(buf);
				return (st & ST_CPT) ? 1 : -1;
			}
			memcpy(buf + off, &r.bx, n - off < 4 ? n - off : 4);
		}
	}
	st = call(ch, MSG_RECVSTATUS, ST_SUCCESS, NULL);
	if (!(st & ST_SUCCESS)) {
		free(buf);
		return (st & ST_CPT) ? 1 : -1;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

bool vrpc_recv(struct vrpc_chan *ch, char **out, size_t *len)
{
	*out = NULL;
	*len = 0;
	if (!ch->open)
		return false;
	for (int i = 0; i < CPT_RETRIES; i++) {
		int rc = recv_once(ch, out, len);
		if (rc <= 0)
			return rc == 0;
	}
	return false;
}

bool vrpc_call(struct vrpc_chan *ch, const void *req, size_t len, char **reply, size_t *rlen)
{
	struct vrpc_chan own;
	bool fresh = ch == NULL;
	if (fresh) {
		ch = &own;
		if (!vrpc_open(ch, VRPC_PROTO_RPCI))
			return false;
	}
	bool ok = vrpc_send(ch, req, len) && vrpc_recv(ch, reply, rlen);
	/* An RPCI reply is mandatory (spec 3.3): none is a protocol error. */
	if (ok && *reply == NULL)
		ok = false;
	if (fresh)
		vrpc_close(ch);
	return ok;
}

bool vrpc_simple(const char *req)
{
	char *reply = NULL;
	size_t n = 0;
	bool ok = vrpc_call(NULL, req, strlen(req), &reply, &n) && n >= 1 && reply[0] == '1';
	free(reply);
	return ok;
}

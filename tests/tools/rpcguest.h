/*
 * rpcguest.h — the guest side of GuestRPC, as open-vm-tools' message.c does
 * it, driven straight into the host's tools core (no VM): the tests and the
 * benchmark use it.  Header-only: static functions.
 */
#ifndef VIREO_TEST_RPCGUEST_H
#define VIREO_TEST_RPCGUEST_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmx/backdoor.h"
#include "vmx/guestrpc.h"
#include "vmx/tools.h"

struct rg_chan {
	uint16_t id;
	uint32_t hi, lo;
	size_t hb_piece;      /* split HB transfers into pieces of this size (0: whole) */
	unsigned hb_used;     /* HB transfers done */
};

static struct backdoor_call rg_call(struct tools *t, const struct rg_chan *c, unsigned type,
                                    uint32_t ebx)
{
	struct backdoor_call b = {
		.eax = BDOOR_MAGIC, .ebx = ebx, .ecx = (uint32_t)type << 16 | BDOOR_CMD_MESSAGE,
		.edx = (uint32_t)(c ? c->id : 0) << 16 | 0x5658,
		.esi = c ? c->hi : 0, .edi = c ? c->lo : 0,
	};
	tools_core_message(t, &b);
	return b;
}

static uint32_t rg_status(const struct backdoor_call *b)
{
	return b->ecx >> 16;
}

static bool rg_open(struct tools *t, struct rg_chan *c, uint32_t proto)
{
	memset(c, 0, sizeof(*c));
	struct backdoor_call b = rg_call(t, NULL, GRPC_TYPE_OPEN, proto | GRPC_FLAG_COOKIE);
	if (!(rg_status(&b) & GRPC_ST_SUCCESS))
		return false;
	c->id = (uint16_t)(b.edx >> 16);
	c->hi = b.esi;
	c->lo = b.edi;
	return true;
}

static bool rg_close(struct tools *t, struct rg_chan *c)
{
	struct backdoor_call b = rg_call(t, c, GRPC_TYPE_CLOSE, 0);
	return rg_status(&b) & GRPC_ST_SUCCESS;
}

/* One HB transfer in pieces, each with the registers a REP would show. */
static bool rg_hb(struct tools *t, struct rg_chan *c, bool write, uint8_t *buf, size_t len)
{
	size_t off = 0;
	c->hb_used++;
	while (off < len) {
		size_t n = len - off;
		if (c->hb_piece && n > c->hb_piece)
			n = c->hb_piece;
		struct backdoor_call r = {
			.eax = BDOOR_MAGIC, .ebx = GRPC_ST_SUCCESS << 16 | GRPC_HB_CMD_MESSAGE,
			.ecx = (uint32_t)(len - off), .edx = (uint32_t)c->id << 16 | 0x5659,
		};
		if (write) {
			r.esi = 0x1000;
			r.edi = c->lo;
			r.ebp = c->hi;
		} else {
			r.esi = c->hi;
			r.edi = 0x2000;
			r.ebp = c->lo;
		}
		if (!tools_core_hb(t, &r, write, buf + off, n))
			return false;
		off += n;
	}
	return true;
}

static bool rg_send(struct tools *t, struct rg_chan *c, const void *msg, size_t len)
{
	const uint8_t *p = msg;
	struct backdoor_call b = rg_call(t, c, GRPC_TYPE_SENDSIZE, (uint32_t)len);
	if (!(rg_status(&b) & GRPC_ST_SUCCESS))
		return false;
	if (len && (rg_status(&b) & GRPC_ST_HB)) {
		uint8_t *copy = malloc(len);
		if (!copy)
			return false;
		memcpy(copy, p, len);
		bool ok = rg_hb(t, c, true, copy, len);
		free(copy);
		return ok;
	}
	for (size_t off = 0; off < len; off += 4) {
		uint32_t w = 0;
		for (size_t i = 0; i < 4 && off + i < len; i++)
			w |= (uint32_t)p[off + i] << (8 * i);
		b = rg_call(t, c, GRPC_TYPE_SENDPAYLOAD, w);
		if (!(rg_status(&b) & GRPC_ST_SUCCESS))
			return false;
	}
	return true;
}

/* Receive into a malloc'd, NUL-terminated buffer; *out NULL when nothing waits. */
static bool rg_recv(struct tools *t, struct rg_chan *c, uint8_t **out, size_t *len)
{
	*out = NULL;
	*len = 0;
	struct backdoor_call b = rg_call(t, c, GRPC_TYPE_RECVSIZE, 0);
	if (!(rg_status(&b) & GRPC_ST_SUCCESS))
		return false;
	if (!(rg_status(&b) & GRPC_ST_DORECV))
		return true;
	if ((b.edx >> 16) != GRPC_TYPE_SENDSIZE)
		return false;
	size_t n = b.ebx;
	uint8_t *buf = calloc(1, n + 4);
	if (!buf)
		return false;
	if (n && (rg_status(&b) & GRPC_ST_HB)) {
		if (!rg_hb(t, c, false, buf, n)) {
			free(buf);
			return false;
		}
	} else {
		for (size_t off = 0; off < n; off += 4) {
			b = rg_call(t, c, GRPC_TYPE_RECVPAYLOAD, GRPC_ST_SUCCESS);
			if (!(rg_status(&b) & GRPC_ST_SUCCESS) || (b.edx >> 16) != GRPC_TYPE_SENDPAYLOAD) {
				free(buf);
				return false;
			}
			for (size_t i = 0; i < 4 && off + i < n; i++)
				buf[off + i] = (uint8_t)(b.ebx >> (8 * i));
		}
	}
	b = rg_call(t, c, GRPC_TYPE_RECVSTATUS, GRPC_ST_SUCCESS);
	if (!(rg_status(&b) & GRPC_ST_SUCCESS)) {
		free(buf);
		return false;
	}
	buf[n] = 0;
	*out = buf;
	*len = n;
	return true;
}

/* One RPCI request; returns the malloc'd reply text or NULL on a channel failure. */
static char *rg_rpci(struct tools *t, struct rg_chan *c, const char *req)
{
	uint8_t *r;
	size_t n;
	if (!rg_send(t, c, req, strlen(req)) || !rg_recv(t, c, &r, &n))
		return NULL;
	return (char *)r;
}

#endif

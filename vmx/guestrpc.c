/*
 * guestrpc.c — the GuestRPC channel state machine (spec section 3).
 *
 * Per channel: FREE -> IDLE on OPEN; SENDSIZE starts a guest->host message
 * (RECEIVING) that completes after its last payload byte; an RPCI request is
 * answered at once (REPLY_READY), a TCLO result goes to the owner (IDLE).
 * RECVSIZE hands out the reply or the next TCLO command (SENDING), the
 * guest reads it with RECVPAYLOAD (or one HB read) and confirms with
 * RECVSTATUS.  The HB port moves whole payloads; the engine may deliver a
 * transfer in pieces, so each channel keeps its offset.
 */
#include "guestrpc.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "log.h"

enum grpc_state {
	GRPC_FREE = 0,
	GRPC_IDLE,
	GRPC_RECEIVING,     /* guest -> host message in progress */
	GRPC_REPLY_READY,   /* RPCI reply waiting for RECVSIZE */
	GRPC_SENDING,       /* host -> guest message being read */
};

struct grpc_chan {
	enum grpc_state state;
	bool tclo;
	bool cookies;
	bool in_hb, out_hb;          /* HB offered for the current transfer */
	bool tclo_outstanding;       /* command delivered, result not yet back */
	bool tclo_fresh;             /* opened, no SENDSIZE yet */
	uint32_t cookie_hi, cookie_lo;
	uint8_t *in;
	size_t in_len, in_off;
	uint8_t *out;
	size_t out_len, out_off;
	uint64_t last_ns;
};

struct grpc {
	const struct grpc_ops *ops;
	void *opaque;
	bool hb_send, hb_recv;
	size_t max_msg;
	uint64_t seed;
	uint64_t (*now_ns)(void);
	struct grpc_chan ch[GRPC_MAX_CHANNELS];
};

/* An idle RPCI channel this old may be reclaimed when all slots are taken. */
#define GRPC_RECLAIM_NS (30ull * 1000000000ull)

static uint64_t grpc_now(const struct grpc *g)
{
	return g->now_ns ? g->now_ns() : vlog_now_ns();
}

struct grpc *grpc_new(const struct grpc_ops *ops, void *opaque)
{
	struct grpc *g = calloc(1, sizeof(*g));
	if (!g)
		return NULL;
	g->ops = ops;
	g->opaque = opaque;
	g->max_msg = GRPC_MAX_MSG_DEFAULT;
	return g;
}

static void chan_drop_in(struct grpc_chan *c)
{
	free(c->in);
	c->in = NULL;
	c->in_len = c->in_off = 0;
	c->in_hb = false;
}

static void chan_drop_out(struct grpc_chan *c)
{
	free(c->out);
	c->out = NULL;
	c->out_len = c->out_off = 0;
	c->out_hb = false;
}

/* Back to idle; a TCLO command in flight is reported lost. */
static void chan_reset(struct grpc *g, unsigned id)
{
	struct grpc_chan *c = &g->ch[id];
	chan_drop_in(c);
	chan_drop_out(c);
	if (c->tclo && c->tclo_outstanding && g->ops && g->ops->tclo_result)
		g->ops->tclo_result(g->opaque, id, NULL, 0);
	c->tclo_outstanding = false;
	if (c->state != GRPC_FREE)
		c->state = GRPC_IDLE;
}

static void chan_close(struct grpc *g, unsigned id)
{
	struct grpc_chan *c = &g->ch[id];
	if (c->state == GRPC_FREE)
		return;
	chan_reset(g, id);
	if (c->tclo && g->ops && g->ops->tclo_close)
		g->ops->tclo_close(g->opaque, id);
	memset(c, 0, sizeof(*c));
}

void grpc_reset(struct grpc *g)
{
	for (unsigned i = 0; i < GRPC_MAX_CHANNELS; i++)
		chan_close(g, i);
}

void grpc_free(struct grpc *g)
{
	if (!g)
		return;
	grpc_reset(g);
	free(g);
}

void grpc_set_hb(struct grpc *g, bool send, bool recv)
{
	g->hb_send = send;
	g->hb_recv = recv;
}

void grpc_set_max_msg(struct grpc *g, size_t max)
{
	g->max_msg = max ? max : GRPC_MAX_MSG_DEFAULT;
}

void grpc_set_seed(struct grpc *g, uint64_t seed)
{
	g->seed = seed;
}

void grpc_set_clock(struct grpc *g, uint64_t (*now_ns)(void))
{
	g->now_ns = now_ns;
}

unsigned grpc_open_channels(const struct grpc *g)
{
	unsigned n = 0;
	for (unsigned i = 0; i < GRPC_MAX_CHANNELS; i++)
		n += g->ch[i].state != GRPC_FREE;
	return n;
}

bool grpc_channel_is_tclo(const struct grpc *g, unsigned chan)
{
	return chan < GRPC_MAX_CHANNELS && g->ch[chan].state != GRPC_FREE && g->ch[chan].tclo;
}

static uint32_t grpc_random(struct grpc *g)
{
	uint32_t r = 0;
	if (g->seed) {
		/* splitmix64: reproducible cookies for tests. */
		uint64_t z = (g->seed += 0x9E3779B97F4A7C15ull);
		z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
		z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
		return (uint32_t)(z ^ (z >> 31));
	}
	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
		r = (uint32_t)vlog_now_ns() * 2654435761u;
	return r;
}

/* ---- completing messages ---- */

/* The guest's message is complete: run it.  Returns false to refuse it. */
static bool chan_complete_in(struct grpc *g, unsigned id)
{
	struct grpc_chan *c = &g->ch[id];
	uint8_t *req = c->in;
	size_t len = c->in_len;

	c->in = NULL;
	c->in_len = c->in_off = 0;
	c->in_hb = false;
	if (c->tclo) {
		bool had = c->tclo_outstanding;
		c->tclo_outstanding = false;
		c->state = GRPC_IDLE;
		/* The first send after opening is empty and answers nothing. */
		if (had && g->ops && g->ops->tclo_result)
			g->ops->tclo_result(g->opaque, id, req ? req : (const uint8_t *)"", len);
		else if (len && !c->tclo_fresh)
			vlog_guest("guestrpc: TCLO channel %u sent a result with no command outstanding", id);
		c->tclo_fresh = false;
		free(req);
		return true;
	}
	uint8_t *reply = NULL;
	size_t rlen = 0;
	int rc = -1;
	if (g->ops && g->ops->rpci)
		rc = g->ops->rpci(g->opaque, id, req ? req : (const uint8_t *)"", len, &reply, &rlen);
	free(req);
	if (rc != 0 || !reply || rlen > g->max_msg) {
		if (rc == 0)
			vlog_warn("guestrpc: RPCI reply of %zu bytes dropped", rlen);
		free(reply);
		chan_reset(g, id);
		return false;
	}
	c->out = reply;
	c->out_len = rlen;
	c->out_off = 0;
	c->state = GRPC_REPLY_READY;
	return true;
}

/* ---- low bandwidth ---- */

static void grpc_open(struct grpc *g, struct backdoor_call *bc)
{
	uint32_t proto = bc->ebx & ~GRPC_FLAG_COOKIE;
	bool cookies = bc->ebx & GRPC_FLAG_COOKIE;
	unsigned id = GRPC_MAX_CHANNELS;

	if (proto != GRPC_PROTO_RPCI && proto != GRPC_PROTO_TCLO) {
		vlog_guest("guestrpc: open with unknown protocol 0x%08x", proto);
		return;
	}
	for (unsigned i = 0; i < GRPC_MAX_CHANNELS; i++)
		if (g->ch[i].state == GRPC_FREE) {
			id = i;
			break;
		}
	if (id == GRPC_MAX_CHANNELS) {
		/* Guest processes die without CLOSE: reclaim the longest-idle RPCI slot. */
		uint64_t now = grpc_now(g), oldest = UINT64_MAX;
		for (unsigned i = 0; i < GRPC_MAX_CHANNELS; i++) {
			const struct grpc_chan *c = &g->ch[i];
			if (!c->tclo && c->last_ns < oldest && now - c->last_ns >= GRPC_RECLAIM_NS) {
				oldest = c->last_ns;
				id = i;
			}
		}
		if (id == GRPC_MAX_CHANNELS) {
			vlog_guest("guestrpc: all %u channels in use", GRPC_MAX_CHANNELS);
			return;
		}
		chan_close(g, id);
	}
	struct grpc_chan *c = &g->ch[id];
	memset(c, 0, sizeof(*c));
	c->state = GRPC_IDLE;
	c->tclo = proto == GRPC_PROTO_TCLO;
	c->tclo_fresh = c->tclo;
	c->cookies = cookies;
	if (cookies) {
		c->cookie_hi = grpc_random(g);
		c->cookie_lo = grpc_random(g);
	}
	c->last_ns = grpc_now(g);
	bc->ecx = GRPC_ST_SUCCESS << 16;
	bc->edx = (uint32_t)id << 16 | (bc->edx & 0xFFFFu);
	bc->esi = c->cookie_hi;
	bc->edi = c->cookie_lo;
	if (c->tclo && g->ops && g->ops->tclo_open)
		g->ops->tclo_open(g->opaque, id);
}

/* The channel named by a call, or NULL (unknown id, closed, bad cookie). */
static struct grpc_chan *grpc_lookup(struct grpc *g, unsigned id, uint32_t hi, uint32_t lo)
{
	if (id >= GRPC_MAX_CHANNELS || g->ch[id].state == GRPC_FREE) {
		vlog_guest("guestrpc: call on channel %u, which is not open", id);
		return NULL;
	}
	struct grpc_chan *c = &g->ch[id];
	if (c->cookies && (c->cookie_hi != hi || c->cookie_lo != lo)) {
		vlog_guest("guestrpc: bad cookie on channel %u", id);
		return NULL;
	}
	return c;
}

static void refuse(struct grpc *g, unsigned id, const char *what)
{
	vlog_guest("guestrpc: channel %u: %s; channel reset", id, what);
	chan_reset(g, id);
}

static uint32_t take4(const uint8_t *p, size_t n)
{
	uint32_t v = 0;
	for (size_t i = 0; i < n && i < 4; i++)
		v |= (uint32_t)p[i] << (8 * i);
	return v;
}

void grpc_message(struct grpc *g, struct backdoor_call *bc)
{
	unsigned type = bc->ecx >> 16;
	unsigned id = bc->edx >> 16;
	struct grpc_chan *c;
	uint32_t st = 0;

	bc->regs_changed = true;
	if (type == GRPC_TYPE_OPEN) {
		bc->ecx = 0;
		grpc_open(g, bc);
		return;
	}
	bc->ecx = 0;   /* failure unless a case below says otherwise */
	c = grpc_lookup(g, id, bc->esi, bc->edi);
	if (!c)
		return;
	c->last_ns = grpc_now(g);
	switch (type) {
	case GRPC_TYPE_SENDSIZE:
		/* A new message restarts the channel (the guest retries this way). */
		chan_drop_in(c);
		chan_drop_out(c);
		if (c->tclo && c->tclo_outstanding && c->state == GRPC_SENDING) {
			/* The command was never confirmed: lost. */
			c->tclo_outstanding = false;
			if (g->ops && g->ops->tclo_result)
				g->ops->tclo_result(g->opaque, id, NULL, 0);
		}
		c->state = GRPC_IDLE;
		if (bc->ebx > g->max_msg) {
			refuse(g, id, "message too large");
			return;
		}
		c->in_len = bc->ebx;
		c->in_off = 0;
		if (c->in_len) {
			c->in = malloc(c->in_len);
			if (!c->in) {
				refuse(g, id, "out of memory");
				return;
			}
		}
		c->state = GRPC_RECEIVING;
		st = GRPC_ST_SUCCESS;
		if (c->in_len == 0) {
			if (!chan_complete_in(g, id))
				return;
		} else if (g->hb_send) {
			c->in_hb = true;
			st |= GRPC_ST_HB;
		}
		break;
	case GRPC_TYPE_SENDPAYLOAD: {
		if (c->state != GRPC_RECEIVING) {
			refuse(g, id, "payload without a size");
			return;
		}
		size_t n = c->in_len - c->in_off;
		if (n > 4)
			n = 4;
		for (size_t i = 0; i < n; i++)
			c->in[c->in_off + i] = (uint8_t)(bc->ebx >> (8 * i));
		c->in_off += n;
		st = GRPC_ST_SUCCESS;
		if (c->in_off == c->in_len && !chan_complete_in(g, id))
			return;
		break;
	}
	case GRPC_TYPE_RECVSIZE:
		if (c->tclo)
			if (g->ops && g->ops->tclo_poll)
				g->ops->tclo_poll(g->opaque, id);
		if (c->state == GRPC_IDLE && c->tclo && !c->tclo_outstanding && g->ops &&
		    g->ops->tclo_next) {
			size_t len = 0;
			uint8_t *cmd = g->ops->tclo_next(g->opaque, id, &len);
			if (cmd && len && len <= g->max_msg) {
				c->out = cmd;
				c->out_len = len;
				c->out_off = 0;
				c->tclo_outstanding = true;
				c->state = GRPC_REPLY_READY;
			} else {
				free(cmd);
			}
		}
		if (c->state == GRPC_REPLY_READY) {
			st = GRPC_ST_SUCCESS | GRPC_ST_DORECV;
			c->out_hb = g->hb_recv;
			if (c->out_hb)
				st |= GRPC_ST_HB;
			bc->edx = (uint32_t)GRPC_TYPE_SENDSIZE << 16 | (bc->edx & 0xFFFFu);
			bc->ebx = (uint32_t)c->out_len;
			c->state = GRPC_SENDING;
		} else if (c->state == GRPC_IDLE) {
			st = GRPC_ST_SUCCESS;
		} else {
			refuse(g, id, "receive while a transfer is in progress");
			return;
		}
		break;
	case GRPC_TYPE_RECVPAYLOAD:
		if (c->state != GRPC_SENDING) {
			refuse(g, id, "receive payload out of sequence");
			return;
		}
		if (bc->ebx == 0) {
			/* The guest gives up on this message. */
			chan_reset(g, id);
			st = GRPC_ST_SUCCESS;
			break;
		}
		if (c->out_off >= c->out_len) {
			refuse(g, id, "read past the end of the message");
			return;
		}
		{
			size_t n = c->out_len - c->out_off;
			if (n > 4)
				n = 4;
			bc->ebx = take4(c->out + c->out_off, n);
			c->out_off += n;
		}
		bc->edx = (uint32_t)GRPC_TYPE_SENDPAYLOAD << 16 | (bc->edx & 0xFFFFu);
		st = GRPC_ST_SUCCESS;
		break;
	case GRPC_TYPE_RECVSTATUS:
		if (c->state != GRPC_SENDING) {
			refuse(g, id, "receive status out of sequence");
			return;
		}
		if (bc->ebx & GRPC_ST_SUCCESS) {
			chan_drop_out(c);
			c->state = GRPC_IDLE;   /* a TCLO result follows with the next send */
		} else {
			chan_reset(g, id);
		}
		st = GRPC_ST_SUCCESS;
		break;
	case GRPC_TYPE_CLOSE:
		chan_close(g, id);
		st = GRPC_ST_SUCCESS;
		break;
	default:
		vlog_guest("guestrpc: unknown message type %u on channel %u", type, id);
		return;
	}
	bc->ecx = st << 16;
}

/* ---- high bandwidth ---- */

bool grpc_hb(struct grpc *g, const struct backdoor_call *r, bool write, uint8_t *data, size_t len)
{
	unsigned id = r->edx >> 16;
	struct grpc_chan *c;

	if (!write)
		memset(data, 0, len);
	if ((r->ebx & 0xFFFFu) != GRPC_HB_CMD_MESSAGE) {
		vlog_guest("guestrpc: HB command %u not supported", r->ebx & 0xFFFFu);
		return false;
	}
	/* Cookie registers differ per direction (spec 2.2). */
	if (write)
		c = grpc_lookup(g, id, r->ebp, r->edi);
	else
		c = grpc_lookup(g, id, r->esi, r->ebp);
	if (!c)
		return false;
	c->last_ns = grpc_now(g);
	if (write) {
		if (c->state != GRPC_RECEIVING || !c->in_hb) {
			refuse(g, id, "HB send out of sequence");
			return false;
		}
		size_t left = c->in_len - c->in_off;
		/* ECX is what the REP still has to move; a piece never exceeds the message. */
		if (len > left || r->ecx < len || r->ecx > left) {
			refuse(g, id, "HB send larger than the announced size");
			return false;
		}
		memcpy(c->in + c->in_off, data, len);
		c->in_off += len;
		if (c->in_off == c->in_len)
			return chan_complete_in(g, id);
		return true;
	}
	if (c->state != GRPC_SENDING || !c->out_hb) {
		refuse(g, id, "HB receive out of sequence");
		return false;
	}
	size_t left = c->out_len - c->out_off;
	if (len > left || r->ecx < len || r->ecx > left) {
		refuse(g, id, "HB receive larger than the message");
		return false;
	}
	memcpy(data, c->out + c->out_off, len);
	c->out_off += len;
	return true;
}

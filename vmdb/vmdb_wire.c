/*
 * vmdb_wire.c — encoder and hardened decoder of the VMDB pipe protocol.
 * The decoder sees bytes from any peer: every length is checked against
 * what is left, every enum against its range, and nothing may trail.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmdb_wire.h"

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

int vmdb_wire_parse_hdr(const uint8_t *p, struct vmdb_wire_hdr *h)
{
	h->version = p[0];
	h->type = p[1];
	h->flags = rd16(p + 2);
	h->len = rd32(p + 4);
	h->reqid = rd32(p + 8);
	if (h->version != VMDB_WIRE_VERSION || h->type == 0 || h->type >= VMDB_MSG__MAX)
		return -EPROTO;
	uint16_t allowed = 0;
	if (h->type == VMDB_MSG_SET)
		allowed = VMDB_F_TXN_PART;
	else if (h->type == VMDB_MSG_UPDATE)
		allowed = VMDB_F_MORE | VMDB_F_SNAPSHOT;
	if (h->flags & ~allowed)
		return -EPROTO;
	if (h->len > VMDB_WIRE_MAX_PAYLOAD)
		return -EMSGSIZE;
	return 0;
}

int vmdb_wire_check_path(const char *p, size_t len)
{
	if (len < 1 || len >= VMDB_PATH_MAX || p[0] != '/')
		return -EINVAL;
	if (len == 1)
		return 0;
	size_t comp = 0, depth = 0;
	for (size_t i = 1; i <= len; i++) {
		char ch = i < len ? p[i] : '/';
		if (ch == '/') {
			if (comp == 0 || ++depth > VMDB_DEPTH_MAX)
				return -EINVAL;
			comp = 0;
			continue;
		}
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '.'))
			return -EINVAL;
		if (++comp >= VMDB_NAME_MAX)
			return -EINVAL;
	}
	return 0;
}

struct rd {
	const uint8_t *p;
	size_t left;
	char *arena;
	size_t arena_used, arena_cap;
	int err;
};

static const uint8_t *take(struct rd *r, size_t n)
{
	if (r->err || r->left < n) {
		r->err = -EPROTO;
		return NULL;
	}
	const uint8_t *p = r->p;
	r->p += n;
	r->left -= n;
	return p;
}

static uint8_t get8(struct rd *r) { const uint8_t *p = take(r, 1); return p ? p[0] : 0; }
static uint16_t get16(struct rd *r) { const uint8_t *p = take(r, 2); return p ? rd16(p) : 0; }
static uint32_t get32(struct rd *r) { const uint8_t *p = take(r, 4); return p ? rd32(p) : 0; }
static uint64_t get64(struct rd *r) { const uint8_t *p = take(r, 8); return p ? rd64(p) : 0; }

/* A string copied, NUL-terminated, into the arena; max bounds its length. */
static char *getstr(struct rd *r, size_t max)
{
	uint16_t n = get16(r);
	const uint8_t *p = take(r, n);
	if (!p)
		return NULL;
	if (n > max || memchr(p, 0, n) || r->arena_used + n + 1 > r->arena_cap) {
		r->err = -EPROTO;
		return NULL;
	}
	char *s = r->arena + r->arena_used;
	memcpy(s, p, n);
	s[n] = 0;
	r->arena_used += (size_t)n + 1;
	return s;
}

static char *getpath(struct rd *r, bool empty_ok)
{
	char *s = getstr(r, VMDB_PATH_MAX - 1);
	if (!s)
		return NULL;
	if (empty_ok && !*s)
		return s;
	if (vmdb_wire_check_path(s, strlen(s))) {
		r->err = -EPROTO;
		return NULL;
	}
	return s;
}

static int get_batch(struct rd *r, struct vmdb_msgbuf *m)
{
	uint32_t n = get32(r);
	/* Each op needs at least 3 bytes: refuse counts the payload cannot hold. */
	if (r->err || n > VMDB_WIRE_MAX_OPS || n > r->left / 3)
		return -EPROTO;
	m->ops = calloc(n ? n : 1, sizeof(*m->ops));
	if (!m->ops)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		struct vmdb_op *op = &m->ops[i];
		op->kind = get8(r);
		op->path = getpath(r, false);
		if (r->err)
			return r->err;
		if (op->kind == VMDB_OP_DEL)
			continue;
		if (op->kind != VMDB_OP_SET)
			return -EPROTO;
		uint8_t t = get8(r);
		op->v.type = (enum vmdb_type)t;
		switch (t) {
		case VMDB_T_STRING:
			op->v.s = getstr(r, VMDB_STRING_MAX);
			break;
		case VMDB_T_INT:
			op->v.i = (int64_t)get64(r);
			break;
		case VMDB_T_BOOL: {
			uint8_t b = get8(r);
			if (b > 1)
				return -EPROTO;
			op->v.i = b;
			break;
		}
		case VMDB_T_ENUM:
			op->v.i = get16(r);
			break;
		default:
			return -EPROTO;
		}
		if (r->err)
			return r->err;
	}
	m->nops = n;
	return 0;
}

int vmdb_wire_decode(const struct vmdb_wire_hdr *h, const uint8_t *payload,
                     struct vmdb_msgbuf *m)
{
	memset(m, 0, sizeof(*m));
	m->h = *h;
	/* Every string costs its 2-byte prefix, so payload length bounds the arena. */
	m->arena = malloc((size_t)h->len + 1);
	if (!m->arena)
		return -ENOMEM;
	struct rd r = { .p = payload, .left = h->len, .arena = m->arena, .arena_cap = (size_t)h->len + 1 };
	int rc = 0;
	switch (h->type) {
	case VMDB_MSG_HELLO:
		m->u32 = get32(&r);
		m->str1 = getstr(&r, VMDB_NAME_MAX);
		m->str2 = getpath(&r, true);
		break;
	case VMDB_MSG_WELCOME:
		m->status = (int32_t)get32(&r);
		m->u32 = get32(&r);
		break;
	case VMDB_MSG_RESULT:
		m->status = (int32_t)get32(&r);
		m->str1 = getstr(&r, 1024);
		break;
	case VMDB_MSG_SUB:
	case VMDB_MSG_UNSUB:
		m->str1 = getpath(&r, false);
		break;
	case VMDB_MSG_ABORT:
		break;
	case VMDB_MSG_SET:
	case VMDB_MSG_UPDATE:
		rc = get_batch(&r, m);
		break;
	default:
		rc = -EPROTO;
	}
	if (!rc)
		rc = r.err;
	/* Status codes are negative errnos or 0. */
	if (!rc && (m->status > 0 || m->status < -4095))
		rc = -EPROTO;
	if (!rc && r.left)
		rc = -EPROTO;
	if (rc)
		vmdb_wire_msg_free(m);
	return rc;
}

void vmdb_wire_msg_free(struct vmdb_msgbuf *m)
{
	free(m->ops);
	free(m->arena);
	m->ops = NULL;
	m->arena = NULL;
	m->nops = 0;
}

/* ---- encoding ---- */

static int reserve(struct vmdb_wbuf *b, size_t n)
{
	if (b->len + n <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap < b->len + n)
		cap *= 2;
	uint8_t *p = realloc(b->p, cap);
	if (!p)
		return -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

static void put8(struct vmdb_wbuf *b, uint8_t v) { b->p[b->len++] = v; }
static void put16(struct vmdb_wbuf *b, uint16_t v) { put8(b, (uint8_t)v); put8(b, (uint8_t)(v >> 8)); }
static void put32(struct vmdb_wbuf *b, uint32_t v) { put16(b, (uint16_t)v); put16(b, (uint16_t)(v >> 16)); }
static void put64(struct vmdb_wbuf *b, uint64_t v) { put32(b, (uint32_t)v); put32(b, (uint32_t)(v >> 32)); }
static void putstr(struct vmdb_wbuf *b, const char *s, size_t n)
{
	put16(b, (uint16_t)n);
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static size_t slen(const char *s, size_t max)
{
	size_t n = s ? strlen(s) : 0;
	return n > max ? max : n;
}

/* Starts a message: reserves header + payload, returns header offset. */
static int begin(struct vmdb_wbuf *b, size_t payload, size_t *at)
{
	if (payload > VMDB_WIRE_MAX_PAYLOAD)
		return -EMSGSIZE;
	if (reserve(b, VMDB_WIRE_HDR + payload))
		return -ENOMEM;
	*at = b->len;
	b->len += VMDB_WIRE_HDR;
	return 0;
}

static void finish(struct vmdb_wbuf *b, size_t at, uint8_t type, uint16_t flags, uint32_t reqid)
{
	uint32_t len = (uint32_t)(b->len - at - VMDB_WIRE_HDR);
	size_t end = b->len;
	b->len = at;
	put8(b, VMDB_WIRE_VERSION);
	put8(b, type);
	put16(b, flags);
	put32(b, len);
	put32(b, reqid);
	b->len = end;
}

int vmdb_wire_put_hello(struct vmdb_wbuf *b, uint32_t reqid, uint32_t hash,
                        const char *name, const char *own)
{
	size_t nl = slen(name, VMDB_NAME_MAX), ol = slen(own, VMDB_PATH_MAX - 1), at;
	if (begin(b, 8 + nl + ol, &at))
		return -ENOMEM;
	put32(b, hash);
	putstr(b, name ? name : "", nl);
	putstr(b, own ? own : "", ol);
	finish(b, at, VMDB_MSG_HELLO, 0, reqid);
	return 0;
}

int vmdb_wire_put_welcome(struct vmdb_wbuf *b, uint32_t reqid, int32_t status, uint32_t peer)
{
	size_t at;
	if (begin(b, 8, &at))
		return -ENOMEM;
	put32(b, (uint32_t)status);
	put32(b, peer);
	finish(b, at, VMDB_MSG_WELCOME, 0, reqid);
	return 0;
}

int vmdb_wire_put_result(struct vmdb_wbuf *b, uint32_t reqid, int32_t status, const char *msg)
{
	size_t ml = slen(msg, 1024), at;
	if (begin(b, 6 + ml, &at))
		return -ENOMEM;
	put32(b, (uint32_t)status);
	putstr(b, msg ? msg : "", ml);
	finish(b, at, VMDB_MSG_RESULT, 0, reqid);
	return 0;
}

int vmdb_wire_put_path(struct vmdb_wbuf *b, enum vmdb_msg type, uint32_t reqid, const char *path)
{
	size_t pl = slen(path, VMDB_PATH_MAX - 1), at;
	if (begin(b, 2 + pl, &at))
		return -ENOMEM;
	putstr(b, path, pl);
	finish(b, at, (uint8_t)type, 0, reqid);
	return 0;
}

int vmdb_wire_put_abort(struct vmdb_wbuf *b, uint32_t reqid)
{
	size_t at;
	if (begin(b, 0, &at))
		return -ENOMEM;
	finish(b, at, VMDB_MSG_ABORT, 0, reqid);
	return 0;
}

size_t vmdb_wire_op_size(const struct vmdb_op *op)
{
	size_t n = 1 + 2 + slen(op->path, VMDB_PATH_MAX - 1);
	if (op->kind != VMDB_OP_SET)
		return n;
	switch (op->v.type) {
	case VMDB_T_STRING: return n + 1 + 2 + slen(op->v.s, VMDB_STRING_MAX);
	case VMDB_T_INT: return n + 1 + 8;
	case VMDB_T_BOOL: return n + 1 + 1;
	default: return n + 1 + 2;
	}
}

int vmdb_wire_put_batch(struct vmdb_wbuf *b, enum vmdb_msg type, uint16_t flags,
                        uint32_t reqid, const struct vmdb_op *ops, unsigned n)
{
	size_t payload = 4, at;
	for (unsigned i = 0; i < n; i++)
		payload += vmdb_wire_op_size(&ops[i]);
	if (n > VMDB_WIRE_MAX_OPS)
		return -EMSGSIZE;
	int rc = begin(b, payload, &at);
	if (rc)
		return rc;
	put32(b, n);
	for (unsigned i = 0; i < n; i++) {
		const struct vmdb_op *op = &ops[i];
		put8(b, op->kind);
		putstr(b, op->path, slen(op->path, VMDB_PATH_MAX - 1));
		if (op->kind != VMDB_OP_SET)
			continue;
		put8(b, (uint8_t)op->v.type);
		switch (op->v.type) {
		case VMDB_T_STRING: putstr(b, op->v.s ? op->v.s : "", slen(op->v.s, VMDB_STRING_MAX)); break;
		case VMDB_T_INT: put64(b, (uint64_t)op->v.i); break;
		case VMDB_T_BOOL: put8(b, op->v.i ? 1 : 0); break;
		default: put16(b, (uint16_t)op->v.i); break;
		}
	}
	finish(b, at, (uint8_t)type, flags, reqid);
	return 0;
}

void vmdb_wbuf_free(struct vmdb_wbuf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

void vmdb_wbuf_consume(struct vmdb_wbuf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		return;
	}
	memmove(b->p, b->p + n, b->len - n);
	b->len -= n;
}

/*
 * vmdb_server.c — the authoritative end of the VMDB pipe protocol.
 *
 * Each peer has a context whose watches are its subscriptions; changes
 * queue (and merge) there and are turned into UPDATE messages whenever the
 * peer's output buffer is small, so a slow reader costs one entry per path,
 * not a message per change.  A peer that breaks the protocol, sends an
 * oversized frame or stops reading is disconnected; nobody else notices.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <sys/un.h>
#include <unistd.h>

#include "vmdb_int.h"
#include "vmdb_net.h"

enum { EV_LISTEN = 1, EV_SOCK, EV_QUEUE, EV_TIMER };

struct evsrc {
	int kind;
	void *p;
};

struct peer {
	struct vmdb_server *srv;
	struct peer *prev, *next;
	struct evsrc ev_sock, ev_q;
	int fd;
	bool welcomed, closing, pollout;
	bool dead;            /* closed; freed at the end of the dispatch round */
	struct vmdb_peer_info info;
	char name[VMDB_NAME_MAX + 1];
	char own[VMDB_PATH_MAX];
	struct vmdb_ctx *ctx;
	uint8_t *in;
	size_t inlen, incap;
	struct vmdb_wbuf out;
	struct vmdb_op *staged;
	unsigned nstaged, capstaged;
	uint64_t win_start;   /* ns: current rate-limit window */
	unsigned win_count;   /* flushes in it */
};

struct vmdb_server {
	struct vmdb_db *db;
	int lfd, epfd;
	struct evsrc ev_listen;
	char *path;
	struct peer *peers;
	struct peer *dead;    /* closed in this dispatch round, not yet freed */
	unsigned npeers;
	uint32_t next_id;
	uid_t uid;
	struct vmdb_server_hooks hooks;
	void *hopaque;
	size_t max_staged, max_out;
	unsigned refused;
	int tfd;
	struct evsrc ev_timer;
	uint64_t timer_at;    /* ns: armed deadline, 0 when idle */
};

#define OUT_LOW (256u << 10)   /* refill from the queue below this */
/*
 * Rate limit per peer: in each 10 ms window the first COALESCE_BURST
 * flushes of its queue go out at once (an idle bus has no added latency);
 * after that changes are merged and sent when the window ends, so a
 * sustained stream of N sets costs each bystander ~100 messages/s, not N.
 */
#define COALESCE_WINDOW_NS 10000000ull
#define COALESCE_BURST 8u

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct vmdb_server *vmdb_server_new(struct vmdb_db *db, const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "%s: socket path too long", path);
		return NULL;
	}
	strcpy(sa.sun_path, path);
	struct vmdb_server *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->db = db;
	s->uid = geteuid();
	s->next_id = 1;
	s->max_staged = 1000000;
	s->max_out = 64u << 20;
	s->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	s->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (s->lfd < 0 || s->epfd < 0 || s->tfd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		goto fail;
	}
	unlink(path);
	mode_t old = umask(0177);
	int rc = bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc || listen(s->lfd, 64)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	s->path = strdup(path);
	s->ev_listen.kind = EV_LISTEN;
	s->ev_listen.p = s;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &s->ev_listen };
	epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->lfd, &ev);
	s->ev_timer.kind = EV_TIMER;
	s->ev_timer.p = s;
	struct epoll_event tev = { .events = EPOLLIN, .data.ptr = &s->ev_timer };
	epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->tfd, &tev);
	return s;
fail:
	if (s->tfd >= 0) close(s->tfd);
	if (s->lfd >= 0) close(s->lfd);
	if (s->epfd >= 0) close(s->epfd);
	free(s);
	return NULL;
}

void vmdb_server_set_hooks(struct vmdb_server *s, const struct vmdb_server_hooks *h, void *opaque)
{
	s->hooks = *h;
	s->hopaque = opaque;
}

void vmdb_server_set_limits(struct vmdb_server *s, size_t max_staged_ops, size_t max_out_bytes)
{
	s->max_staged = max_staged_ops;
	s->max_out = max_out_bytes;
}

int vmdb_server_fd(struct vmdb_server *s) { return s->epfd; }
unsigned vmdb_server_peer_count(struct vmdb_server *s) { return s->npeers; }
unsigned vmdb_server_refused(struct vmdb_server *s) { return s->refused; }

static void staged_clear(struct peer *p)
{
	vmdb_ops_free(p->staged, p->nstaged);
	p->staged = NULL;
	p->nstaged = p->capstaged = 0;
}

/*
 * Closing happens deep inside a dispatch round (a SET flushes every peer,
 * and a failed write closes that peer) while the round still holds epoll
 * events and pointers for it.  So a closed peer is unlinked and marked dead
 * here, and freed by peers_reap() when the round is over.
 */
static void peer_close(struct peer *p)
{
	struct vmdb_server *s = p->srv;
	if (p->dead)
		return;
	p->dead = true;
	if (p->welcomed && s->hooks.peer_down)
		s->hooks.peer_down(s->hopaque, &p->info);
	epoll_ctl(s->epfd, EPOLL_CTL_DEL, p->fd, NULL);
	epoll_ctl(s->epfd, EPOLL_CTL_DEL, vmdb_ctx_fd(p->ctx), NULL);
	close(p->fd);
	/* A transaction that never committed leaves nothing behind. */
	staged_clear(p);
	if (p->prev) p->prev->next = p->next; else s->peers = p->next;
	if (p->next) p->next->prev = p->prev;
	s->npeers--;
	p->prev = NULL;
	p->next = s->dead;
	s->dead = p;
}

static void peers_reap(struct vmdb_server *s)
{
	while (s->dead) {
		struct peer *p = s->dead;
		s->dead = p->next;
		vmdb_ctx_free(p->ctx);
		free(p->in);
		vmdb_wbuf_free(&p->out);
		free(p);
	}
}

void vmdb_server_free(struct vmdb_server *s)
{
	if (!s)
		return;
	while (s->peers)
		peer_close(s->peers);
	peers_reap(s);
	close(s->lfd);
	close(s->epfd);
	close(s->tfd);
	if (s->path)
		unlink(s->path);
	free(s->path);
	free(s);
}

static void peer_pollout(struct peer *p, bool on)
{
	if (p->pollout == on)
		return;
	p->pollout = on;
	struct epoll_event ev = { .events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = &p->ev_sock };
	epoll_ctl(p->srv->epfd, EPOLL_CTL_MOD, p->fd, &ev);
}

/* Write what can be written; false when the peer must be dropped. */
static bool peer_write(struct peer *p)
{
	size_t done = 0;
	while (done < p->out.len) {
		ssize_t n = send(p->fd, p->out.p + done, p->out.len - done, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		return false;
	}
	vmdb_wbuf_consume(&p->out, done);
	if (p->out.len > p->srv->max_out)
		return false; /* not reading: do not buffer without bound */
	peer_pollout(p, p->out.len > 0);
	return true;
}

/* Encode ops as UPDATE messages, split to fit, MORE on all but the last. */
static int put_updates(struct vmdb_wbuf *b, const struct vmdb_op *ops, unsigned n,
                       uint16_t flags, uint32_t reqid)
{
	unsigned start = 0;
	do {
		size_t size = 4;
		unsigned end = start;
		while (end < n && end - start < VMDB_WIRE_MAX_OPS &&
		       size + vmdb_wire_op_size(&ops[end]) <= VMDB_WIRE_MAX_PAYLOAD)
			size += vmdb_wire_op_size(&ops[end++]);
		uint16_t f = flags | (end < n ? VMDB_F_MORE : 0);
		int rc = vmdb_wire_put_batch(b, VMDB_MSG_UPDATE, f, reqid, ops + start, end - start);
		if (rc)
			return rc;
		start = end;
	} while (start < n);
	return 0;
}

/* Move the peer's queued changes into its output buffer. */
static void peer_flush_queue(struct peer *p)
{
	if (!p->welcomed || p->out.len >= OUT_LOW)
		return;
	struct vmdb_op *ops;
	unsigned n;
	if (vmdb_ctx_take_queue(p->ctx, &ops, &n) || !n)
		return;
	put_updates(&p->out, ops, n, 0, 0);
	vmdb_ops_free(ops, n);
}

static void arm_timer(struct vmdb_server *s, uint64_t at)
{
	if (s->timer_at && s->timer_at <= at)
		return;
	s->timer_at = at;
	struct itimerspec its = { .it_value = { (time_t)(at / 1000000000ull), (long)(at % 1000000000ull) } };
	timerfd_settime(s->tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* Send each peer's queue now, or when its rate-limit window ends. */
static void flush_all(struct vmdb_server *s)
{
	uint64_t now = mono_ns();
	struct peer *p = s->peers;
	while (p) {
		struct peer *nx = p->next;
		if (p->welcomed && vmdb_ctx_pending(p->ctx)) {
			if (now - p->win_start >= COALESCE_WINDOW_NS) {
				p->win_start = now;
				p->win_count = 0;
			}
			if (p->win_count >= COALESCE_BURST) {
				arm_timer(s, p->win_start + COALESCE_WINDOW_NS);
			} else {
				p->win_count++;
				peer_flush_queue(p);
				if (!peer_write(p))
					peer_close(p);
			}
		}
		p = nx;
	}
}

static void sub_cb(void *opaque, const char *path, const struct vmdb_value *v)
{
	/* Peers' queues are drained as ops, never dispatched. */
}

static int handle_hello(struct peer *p, struct vmdb_msgbuf *m)
{
	struct vmdb_server *s = p->srv;
	int status = 0;
	snprintf(p->name, sizeof(p->name), "%s", m->str1);
	p->info.name = p->name;
	if (m->u32 != vmdb_schema_hash(vmdb_db_schema(s->db))) {
		status = -EPROTO;
	} else if (m->str2[0]) {
		snprintf(p->own, sizeof(p->own), "%s", m->str2);
		p->info.own = p->own;
		if (!s->hooks.may_own || !s->hooks.may_own(s->hopaque, &p->info, p->own))
			status = -EPERM;
	}
	vmdb_wire_put_welcome(&p->out, m->h.reqid, status, status ? 0 : p->info.id);
	if (status) {
		p->closing = true;
		return 0;
	}
	struct vmdb_ident id = { .local = false, .uid = p->info.uid, .pid = p->info.pid,
	                         .own = p->own[0] ? p->own : NULL };
	struct vmdb_ctx *c = vmdb_ctx_new(s->db, &id);
	if (!c)
		return -ENOMEM;
	vmdb_ctx_free(p->ctx);
	p->ctx = c;
	p->ev_q.kind = EV_QUEUE;
	p->ev_q.p = p;
	/* Edge-triggered: a deferred queue must not wake the loop until it changes. */
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.ptr = &p->ev_q };
	epoll_ctl(s->epfd, EPOLL_CTL_ADD, vmdb_ctx_fd(c), &ev);
	p->welcomed = true;
	if (s->hooks.peer_up)
		s->hooks.peer_up(s->hopaque, &p->info);
	return 0;
}

static void handle_set(struct peer *p, struct vmdb_msgbuf *m)
{
	struct vmdb_server *s = p->srv;
	if (p->nstaged + m->nops > s->max_staged) {
		p->closing = true; /* a transaction bigger than we keep: drop it all */
		return;
	}
	if (p->nstaged + m->nops > p->capstaged) {
		unsigned ncap = p->capstaged ? p->capstaged : 64;
		while (ncap < p->nstaged + m->nops)
			ncap *= 2;
		struct vmdb_op *no = realloc(p->staged, ncap * sizeof(*no));
		if (!no) {
			p->closing = true;
			return;
		}
		p->staged = no;
		p->capstaged = ncap;
	}
	for (unsigned i = 0; i < m->nops; i++)
		if (!vmdb_op_copy(&p->staged[p->nstaged], &m->ops[i]))
			p->nstaged++;
	if (m->h.flags & VMDB_F_TXN_PART)
		return;

	char msg[512] = "";
	unsigned bad = 0;
	int rc = vmdb_db_apply(s->db, p->staged, p->nstaged, vmdb_ctx_ident(p->ctx), false, &bad);
	if (rc) {
		if (bad < p->nstaged)
			snprintf(msg, sizeof(msg), "%s: %s", p->staged[bad].path, vmdb_strerror(rc));
	}
	staged_clear(p);
	/* This peer's own echo goes out before its RESULT, whatever the rate. */
	peer_flush_queue(p);
	vmdb_wire_put_result(&p->out, m->h.reqid, rc, msg);
	flush_all(s);
}

static int handle_set_checked(struct peer *p, struct vmdb_msgbuf *m)
{
	struct vmdb_server *s = p->srv;
	/* The hook sees the whole transaction, so it runs at the final part. */
	if (s->hooks.validate && !(m->h.flags & VMDB_F_TXN_PART)) {
		char msg[512] = "";
		struct vmdb_op *all = p->staged;
		unsigned n = p->nstaged;
		int rc = 0;
		if (n) {
			/* Checked in two pieces: what was staged, then this message. */
			rc = s->hooks.validate(s->hopaque, &p->info, all, n, msg, sizeof(msg));
		}
		if (!rc)
			rc = s->hooks.validate(s->hopaque, &p->info, m->ops, m->nops, msg, sizeof(msg));
		if (rc) {
			staged_clear(p);
			vmdb_wire_put_result(&p->out, m->h.reqid, rc, msg[0] ? msg : vmdb_strerror(rc));
			return 0;
		}
	}
	handle_set(p, m);
	return 0;
}

static void handle_sub(struct peer *p, struct vmdb_msgbuf *m)
{
	struct vmdb_server *s = p->srv;
	const struct vmdb_schema *sch = vmdb_db_schema(s->db);
	if (vmdb_schema_lookup(sch, m->str1, NULL, NULL, NULL, NULL)) {
		vmdb_wire_put_result(&p->out, m->h.reqid, -EINVAL, "not in the schema");
		return;
	}
	/* Changes already queued go first, then the snapshot replaces the subtree. */
	peer_flush_queue(p);
	int wid = vmdb_watch(p->ctx, m->str1, sub_cb, p);
	struct vmdb_op *ops = NULL;
	unsigned n = 0;
	int rc = wid < 0 ? wid : vmdb_db_snapshot(s->db, m->str1, &ops, &n);
	if (!rc) {
		struct vmdb_op *all = calloc((size_t)n + 1, sizeof(*all));
		if (all) {
			all[0].kind = VMDB_OP_DEL;
			all[0].path = m->str1;
			if (n)   /* ops is NULL for an empty subtree */
				memcpy(all + 1, ops, n * sizeof(*ops));
			rc = put_updates(&p->out, all, n + 1, VMDB_F_SNAPSHOT, m->h.reqid);
			free(all);
		} else {
			rc = -ENOMEM;
		}
		vmdb_ops_free(ops, n);
	}
	vmdb_wire_put_result(&p->out, m->h.reqid, rc, rc ? vmdb_strerror(rc) : "");
}

static void handle_unsub(struct peer *p, struct vmdb_msgbuf *m)
{
	int rc = vmdb_unwatch_path(p->ctx, m->str1);
	vmdb_wire_put_result(&p->out, m->h.reqid, rc, rc ? vmdb_strerror(rc) : "");
}

static int handle_msg(struct peer *p, struct vmdb_msgbuf *m)
{
	if (!p->welcomed)
		return m->h.type == VMDB_MSG_HELLO ? handle_hello(p, m) : -EPROTO;
	switch (m->h.type) {
	case VMDB_MSG_SET:
		return handle_set_checked(p, m);
	case VMDB_MSG_ABORT:
		staged_clear(p);
		vmdb_wire_put_result(&p->out, m->h.reqid, 0, "");
		return 0;
	case VMDB_MSG_SUB:
		handle_sub(p, m);
		return 0;
	case VMDB_MSG_UNSUB:
		handle_unsub(p, m);
		return 0;
	default:
		return -EPROTO; /* HELLO twice, or a server-to-client message */
	}
}

/* Read and handle; false when the peer must be dropped. */
static bool peer_read(struct peer *p)
{
	for (;;) {
		if (p->incap - p->inlen < 65536) {
			size_t ncap = p->incap ? p->incap * 2 : 65536 * 2;
			if (ncap > VMDB_WIRE_HDR + VMDB_WIRE_MAX_PAYLOAD + 65536)
				ncap = VMDB_WIRE_HDR + VMDB_WIRE_MAX_PAYLOAD + 65536;
			if (ncap > p->incap) {
				uint8_t *ni = realloc(p->in, ncap);
				if (!ni)
					return false;
				p->in = ni;
				p->incap = ncap;
			}
		}
		if (p->incap == p->inlen)
			return false;
		ssize_t n = recv(p->fd, p->in + p->inlen, p->incap - p->inlen, MSG_DONTWAIT);
		if (n == 0)
			return false;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN || errno == EWOULDBLOCK;
		}
		p->inlen += (size_t)n;
		size_t pos = 0;
		while (p->inlen - pos >= VMDB_WIRE_HDR && !p->closing) {
			struct vmdb_wire_hdr h;
			if (vmdb_wire_parse_hdr(p->in + pos, &h))
				return false;
			if (p->inlen - pos < VMDB_WIRE_HDR + (size_t)h.len)
				break;
			struct vmdb_msgbuf m;
			if (vmdb_wire_decode(&h, p->in + pos + VMDB_WIRE_HDR, &m))
				return false;
			int rc = handle_msg(p, &m);
			vmdb_wire_msg_free(&m);
			if (rc || p->dead)   /* dead: its fd is closed and may be reused */
				return false;
			pos += VMDB_WIRE_HDR + h.len;
		}
		if (pos) {
			memmove(p->in, p->in + pos, p->inlen - pos);
			p->inlen -= pos;
		}
		if (p->closing)
			return true;
	}
}

static void do_accept(struct vmdb_server *s)
{
	for (;;) {
		int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0)
			return;
		struct ucred cr;
		socklen_t cl = sizeof(cr);
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) || cr.uid != s->uid) {
			/* Another user: answer its HELLO with a refusal, and hang up. */
			struct vmdb_wbuf b = { 0 };
			if (!vmdb_wire_put_welcome(&b, 0, -EACCES, 0) &&
			    send(fd, b.p, b.len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
				/* It may already be gone: nothing to do either way. */
			}
			vmdb_wbuf_free(&b);
			close(fd);
			s->refused++;
			continue;
		}
		struct peer *p = calloc(1, sizeof(*p));
		if (!p) {
			close(fd);
			continue;
		}
		p->srv = s;
		p->fd = fd;
		p->info.id = s->next_id++;
		p->info.pid = cr.pid;
		p->info.uid = cr.uid;
		p->info.name = p->name;
		/* Until HELLO a context still exists, so close paths are uniform. */
		p->ctx = vmdb_ctx_new(s->db, &(struct vmdb_ident){ .uid = cr.uid, .pid = cr.pid });
		if (!p->ctx) {
			close(fd);
			free(p);
			continue;
		}
		p->ev_sock.kind = EV_SOCK;
		p->ev_sock.p = p;
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &p->ev_sock };
		epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev);
		p->next = s->peers;
		if (s->peers)
			s->peers->prev = p;
		s->peers = p;
		s->npeers++;
	}
}

void vmdb_server_dispatch(struct vmdb_server *s)
{
	struct epoll_event evs[32];
	int n = epoll_wait(s->epfd, evs, 32, 0);
	for (int i = 0; i < n; i++) {
		struct evsrc *e = evs[i].data.ptr;
		if (e->kind == EV_LISTEN) {
			do_accept(s);
			continue;
		}
		if (e->kind == EV_TIMER) {
			uint64_t x;
			if (read(s->tfd, &x, sizeof(x)) < 0) {
				/* EAGAIN: a re-armed timer; flush_all decides anyway. */
			}
			s->timer_at = 0;
			flush_all(s);
			continue;
		}
		struct peer *p = e->p;
		/* A peer closed earlier in this round may still have an event here. */
		if (p->dead)
			continue;
		bool ok = true;
		if (e->kind == EV_SOCK) {
			if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				ok = peer_read(p);
			if (p->dead)   /* closed while its message was handled */
				continue;
		}
		if (ok && e->kind == EV_QUEUE) {
			/* Local changes: rate-limited like everyone's. */
			flush_all(s);
			continue;
		}
		if (ok)
			ok = peer_write(p);
		if (ok && p->closing && p->out.len == 0)
			ok = false;
		if (!ok)
			peer_close(p);
	}
	/* Queues held back by a full output buffer go out once it drains. */
	if (n > 0)
		flush_all(s);
	peers_reap(s);
}

void vmdb_server_fd_cb(void *server, uint32_t events)
{
	vmdb_server_dispatch(server);
}

/*
 * vmdb_client.c — a process's mirror of the server's tree.
 *
 * Writes go to the server and wait for its answer; the mirror changes only
 * when the server's UPDATE comes back (it is sent before the answer), so the
 * mirror always shows server state and local watches fire for every change,
 * whoever made it.  A transaction larger than one message is sent in
 * TXN_PART pieces that the server stages and applies only at the last one.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "vmdb_int.h"
#include "vmdb_net.h"

struct vmdb_client {
	pthread_mutex_t io;
	struct vmdb_db *db;
	char *sock, *name, *own;
	int fd;
	uint32_t reqid, peer_id;
	int timeout_ms;
	uint8_t *in;
	size_t inlen, incap;
	struct vmdb_op *grp;        /* UPDATE group being assembled (MORE) */
	unsigned ngrp, capgrp;
	char **subs;
	unsigned nsubs;
	/* The answer being waited for. */
	uint32_t want;
	bool got;
	int32_t status;
	char errmsg[256];
};

static int client_commit(void *remote, const struct vmdb_op *ops, unsigned n);
static const struct vmdb_remote_ops client_rops = { .commit = client_commit };

struct vmdb_client *vmdb_client_new(struct vmdb_db *db, const char *sock,
                                    const char *name, const char *own)
{
	struct vmdb_client *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	pthread_mutex_init(&c->io, NULL);
	c->db = db;
	c->fd = -1;
	c->timeout_ms = 10000;
	c->sock = strdup(sock);
	c->name = strdup(name ? name : "client");
	c->own = strdup(own ? own : "");
	vmdb_db_set_remote(db, &client_rops, c);
	return c;
}

static void grp_clear(struct vmdb_client *c)
{
	vmdb_ops_free(c->grp, c->ngrp);
	c->grp = NULL;
	c->ngrp = c->capgrp = 0;
}

static void drop(struct vmdb_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->inlen = 0;
	grp_clear(c);
}

void vmdb_client_disconnect(struct vmdb_client *c)
{
	pthread_mutex_lock(&c->io);
	drop(c);
	pthread_mutex_unlock(&c->io);
}

void vmdb_client_free(struct vmdb_client *c)
{
	if (!c)
		return;
	vmdb_db_set_remote(c->db, NULL, NULL);
	drop(c);
	for (unsigned i = 0; i < c->nsubs; i++)
		free(c->subs[i]);
	free(c->subs);
	free(c->in);
	free(c->sock);
	free(c->name);
	free(c->own);
	pthread_mutex_destroy(&c->io);
	free(c);
}

bool vmdb_client_connected(struct vmdb_client *c) { return c->fd >= 0; }
int vmdb_client_fd(struct vmdb_client *c) { return c->fd; }
const char *vmdb_client_error(struct vmdb_client *c) { return c->errmsg; }
void vmdb_client_set_timeout(struct vmdb_client *c, int ms) { c->timeout_ms = ms; }

static int send_all(struct vmdb_client *c, const struct vmdb_wbuf *b)
{
	size_t done = 0;
	while (done < b->len) {
		ssize_t n = send(c->fd, b->p + done, b->len - done, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -ENOTCONN;
		done += (size_t)n;
	}
	return 0;
}

static int group_add(struct vmdb_client *c, const struct vmdb_msgbuf *m)
{
	if (c->ngrp + m->nops > c->capgrp) {
		unsigned ncap = c->capgrp ? c->capgrp : 64;
		while (ncap < c->ngrp + m->nops)
			ncap *= 2;
		struct vmdb_op *no = realloc(c->grp, ncap * sizeof(*no));
		if (!no)
			return -ENOMEM;
		c->grp = no;
		c->capgrp = ncap;
	}
	for (unsigned i = 0; i < m->nops; i++)
		if (!vmdb_op_copy(&c->grp[c->ngrp], &m->ops[i]))
			c->ngrp++;
	return 0;
}

static int handle(struct vmdb_client *c, const struct vmdb_msgbuf *m)
{
	switch (m->h.type) {
	case VMDB_MSG_UPDATE:
		if (group_add(c, m))
			return -ENOMEM;
		if (!(m->h.flags & VMDB_F_MORE)) {
			/* The server decided; the mirror applies without access checks. */
			int rc = vmdb_db_apply(c->db, c->grp, c->ngrp, NULL, true, NULL);
			grp_clear(c);
			if (rc)
				return -EPROTO;
		}
		return 0;
	case VMDB_MSG_RESULT:
	case VMDB_MSG_WELCOME:
		/* A refusal comes before the server reads HELLO, so WELCOME has no id. */
		if ((m->h.reqid == c->want || m->h.type == VMDB_MSG_WELCOME) && !c->got) {
			c->got = true;
			c->status = m->status;
			if (m->h.type == VMDB_MSG_WELCOME)
				c->peer_id = m->u32;
			snprintf(c->errmsg, sizeof(c->errmsg), "%s",
			         m->h.type == VMDB_MSG_RESULT ? m->str1 : "");
		}
		return 0;
	default:
		return -EPROTO;
	}
}

/* Handle every complete frame in the input buffer. */
static int parse_frames(struct vmdb_client *c)
{
	size_t pos = 0;
	int rc = 0;
	while (c->inlen - pos >= VMDB_WIRE_HDR) {
		struct vmdb_wire_hdr h;
		rc = vmdb_wire_parse_hdr(c->in + pos, &h);
		if (rc)
			break;
		if (c->inlen - pos < VMDB_WIRE_HDR + (size_t)h.len)
			break;
		struct vmdb_msgbuf m;
		rc = vmdb_wire_decode(&h, c->in + pos + VMDB_WIRE_HDR, &m);
		if (rc)
			break;
		rc = handle(c, &m);
		vmdb_wire_msg_free(&m);
		if (rc)
			break;
		pos += VMDB_WIRE_HDR + h.len;
	}
	if (pos) {
		memmove(c->in, c->in + pos, c->inlen - pos);
		c->inlen -= pos;
	}
	return rc;
}

/* One read (blocking or not); 0, -EAGAIN, or -ENOTCONN after dropping. */
static int read_some(struct vmdb_client *c, bool block)
{
	if (c->incap - c->inlen < 65536) {
		size_t ncap = c->incap ? c->incap * 2 : 131072;
		if (ncap > VMDB_WIRE_HDR + VMDB_WIRE_MAX_PAYLOAD + 65536)
			ncap = VMDB_WIRE_HDR + VMDB_WIRE_MAX_PAYLOAD + 65536;
		if (ncap > c->incap) {
			uint8_t *ni = realloc(c->in, ncap);
			if (!ni) {
				drop(c);
				return -ENOTCONN;
			}
			c->in = ni;
			c->incap = ncap;
		}
	}
	ssize_t n = recv(c->fd, c->in + c->inlen, c->incap - c->inlen, block ? 0 : MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return -EAGAIN;
	if (n <= 0) {
		drop(c);
		return -ENOTCONN;
	}
	c->inlen += (size_t)n;
	if (parse_frames(c)) {
		drop(c);
		return -ENOTCONN;
	}
	return 0;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for the answer to request id; io held.  Returns its status. */
static int wait_answer(struct vmdb_client *c)
{
	int64_t deadline = now_ms() + c->timeout_ms;
	while (!c->got) {
		if (c->fd < 0)
			return -ENOTCONN;
		int64_t left = deadline - now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
		int r = poll(&pfd, 1, (int)left);
		if (r < 0 && errno != EINTR)
			return -ENOTCONN;
		if (r > 0) {
			int rc = read_some(c, false);
			if (rc == -ENOTCONN && !c->got)
				return -ENOTCONN;
		}
	}
	return c->status;
}

static uint32_t next_req(struct vmdb_client *c)
{
	if (++c->reqid == 0)
		c->reqid = 1;
	c->want = c->reqid;
	c->got = false;
	c->errmsg[0] = 0;
	return c->reqid;
}

/* Send ops as one SET (split into TXN_PART pieces when large); io held. */
static int send_set(struct vmdb_client *c, const struct vmdb_op *ops, unsigned n)
{
	if (c->fd < 0)
		return -ENOTCONN;
	uint32_t req = next_req(c);
	struct vmdb_wbuf b = { 0 };
	unsigned start = 0;
	int rc = 0;
	do {
		size_t size = 4;
		unsigned end = start;
		while (end < n && end - start < VMDB_WIRE_MAX_OPS &&
		       size + vmdb_wire_op_size(&ops[end]) <= VMDB_WIRE_MAX_PAYLOAD)
			size += vmdb_wire_op_size(&ops[end++]);
		if (end == start && n) {
			rc = -EMSGSIZE;
			break;
		}
		b.len = 0;
		rc = vmdb_wire_put_batch(&b, VMDB_MSG_SET, end < n ? VMDB_F_TXN_PART : 0,
		                         req, ops + start, end - start);
		if (!rc)
			rc = send_all(c, &b);
		start = end;
		/* Read what the server sends meanwhile, so neither side stalls. */
		while (!rc && start < n && read_some(c, false) == 0)
			;
	} while (!rc && start < n);
	vmdb_wbuf_free(&b);
	if (rc == -ENOTCONN)
		drop(c);
	return rc ? rc : wait_answer(c);
}

static int client_commit(void *remote, const struct vmdb_op *ops, unsigned n)
{
	struct vmdb_client *c = remote;
	pthread_mutex_lock(&c->io);
	int rc = send_set(c, ops, n);
	pthread_mutex_unlock(&c->io);
	return rc;
}

static int request_path(struct vmdb_client *c, enum vmdb_msg type, const char *path)
{
	if (c->fd < 0)
		return -ENOTCONN;
	struct vmdb_wbuf b = { 0 };
	int rc = vmdb_wire_put_path(&b, type, next_req(c), path);
	if (!rc)
		rc = send_all(c, &b);
	vmdb_wbuf_free(&b);
	if (rc) {
		drop(c);
		return rc;
	}
	return wait_answer(c);
}

int vmdb_client_connect(struct vmdb_client *c)
{
	pthread_mutex_lock(&c->io);
	drop(c);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int rc = -ENOTCONN;
	if (strlen(c->sock) >= sizeof(sa.sun_path))
		goto out;
	strcpy(sa.sun_path, c->sock);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof(sa))) {
		rc = errno == EACCES ? -EACCES : -ENOTCONN;
		drop(c);
		goto out;
	}
	struct vmdb_wbuf b = { 0 };
	uint32_t req = next_req(c);
	rc = vmdb_wire_put_hello(&b, req, vmdb_schema_hash(vmdb_db_schema(c->db)), c->name, c->own);
	if (!rc && send_all(c, &b)) {
		/* A refusing server hangs up at once: its WELCOME may still be readable. */
	}
	vmdb_wbuf_free(&b);
	rc = wait_answer(c);
	if (rc) {
		drop(c);
		goto out;
	}
	/* Resynchronise: our subtree first (the server may have restarted), then the mirror. */
	if (c->own[0]) {
		struct vmdb_op *ops;
		unsigned n;
		if (!vmdb_db_snapshot(c->db, c->own, &ops, &n)) {
			if (n)
				rc = send_set(c, ops, n);
			vmdb_ops_free(ops, n);
		}
	}
	for (unsigned i = 0; !rc && i < c->nsubs; i++)
		rc = request_path(c, VMDB_MSG_SUB, c->subs[i]);
	if (rc)
		drop(c);
out:
	pthread_mutex_unlock(&c->io);
	return rc;
}

int vmdb_client_dispatch(struct vmdb_client *c)
{
	pthread_mutex_lock(&c->io);
	int rc = 0;
	while (c->fd >= 0) {
		rc = read_some(c, false);
		if (rc == -EAGAIN) {
			rc = 0;
			break;
		}
		if (rc)
			break;
	}
	if (c->fd < 0)
		rc = -ENOTCONN;
	pthread_mutex_unlock(&c->io);
	return rc;
}

void vmdb_client_fd_cb(void *client, uint32_t events)
{
	vmdb_client_dispatch(client);
}

int vmdb_client_subscribe(struct vmdb_client *c, const char *path)
{
	char abs[VMDB_PATH_MAX];
	if (vmdb_wire_check_path(path, strlen(path)) ||
	    vmdb_schema_lookup(vmdb_db_schema(c->db), path, NULL, NULL, NULL, NULL))
		return -EINVAL;
	snprintf(abs, sizeof(abs), "%s", path);
	pthread_mutex_lock(&c->io);
	int rc = request_path(c, VMDB_MSG_SUB, abs);
	if (!rc) {
		char **ns = realloc(c->subs, (c->nsubs + 1) * sizeof(*ns));
		if (ns) {
			c->subs = ns;
			c->subs[c->nsubs++] = strdup(abs);
		}
	}
	pthread_mutex_unlock(&c->io);
	return rc;
}

int vmdb_client_unsubscribe(struct vmdb_client *c, const char *path)
{
	pthread_mutex_lock(&c->io);
	int rc = request_path(c, VMDB_MSG_UNSUB, path);
	for (unsigned i = 0; i < c->nsubs; i++)
		if (!strcmp(c->subs[i], path)) {
			free(c->subs[i]);
			c->subs[i] = c->subs[--c->nsubs];
			break;
		}
	pthread_mutex_unlock(&c->io);
	return rc;
}

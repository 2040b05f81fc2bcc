/*
 * vmx_link.c — the vmx end of the vireod <-> vireo-vmx VMDB link.
 * No dependency on vmx/: the fake vmx of the tests runs this same code.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "vmdb_net.h"
#include "vmx_link.h"

struct vmx_link {
	struct vmdb_db *db;
	struct vmdb_client *cl;
	struct vmdb_ctx *ctx;
	unsigned id;
	char base[32];
	int epfd;
	int cfd;                    /* client fd currently in epfd, or -1 */
	vmx_link_request_cb cb;
	void *opaque;
	bool have_power;
	enum vmx_link_power power;
	char reason[256];
	struct vmx_link_watch {
		struct vmx_link *lk;
		char rel[64];
		vmx_link_watch_cb cb;
		void *opaque;
	} watches[16];
	unsigned nwatches;
};

static const char *const power_names[] = { "off", "starting", "on", "suspended", "stopping" };

static void track_fd(struct vmx_link *lk)
{
	int fd = vmdb_client_fd(lk->cl);
	if (fd == lk->cfd)
		return;
	if (lk->cfd >= 0)
		epoll_ctl(lk->epfd, EPOLL_CTL_DEL, lk->cfd, NULL);
	lk->cfd = fd;
	if (fd >= 0) {
		struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
		epoll_ctl(lk->epfd, EPOLL_CTL_ADD, fd, &ev);
	}
}

static int publish_power_now(struct vmx_link *lk)
{
	char p[64];
	vmdb_begin(lk->ctx);
	snprintf(p, sizeof(p), "%s/state/power", lk->base);
	vmdb_set(lk->ctx, p, power_names[lk->power]);
	snprintf(p, sizeof(p), "%s/state/reason", lk->base);
	vmdb_set(lk->ctx, p, lk->reason);
	snprintf(p, sizeof(p), "%s/state/pid", lk->base);
	vmdb_set_int(lk->ctx, p, getpid());
	return vmdb_commit(lk->ctx);
}

static void on_request(void *opaque, const char *path, const struct vmdb_value *v)
{
	struct vmx_link *lk = opaque;
	static const char *const names[] = { "none", "on", "off", "hardoff", "reset", "suspend" };
	if (!v || v->type != VMDB_T_ENUM || !v->s)
		return;
	enum vmx_link_request req = VMX_LINK_REQ_NONE;
	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(v->s, names[i]))
			req = (enum vmx_link_request)i;
	if (req == VMX_LINK_REQ_NONE)
		return;
	/* Consumed: a stale request must not act again after a resync. */
	vmdb_set(lk->ctx, path, "none");
	if (req != VMX_LINK_REQ_ON && lk->cb)
		lk->cb(lk->opaque, req);
}

static void on_watch(void *opaque, const char *path, const struct vmdb_value *v)
{
	struct vmx_link_watch *w = opaque;
	char buf[32];
	const char *text = NULL;

	if (v) {
		switch (v->type) {
		case VMDB_T_STRING:
		case VMDB_T_ENUM:
			text = v->s ? v->s : "";
			break;
		case VMDB_T_BOOL:
			text = v->i ? "true" : "false";
			break;
		default:
			snprintf(buf, sizeof(buf), "%lld", (long long)v->i);
			text = buf;
			break;
		}
	}
	w->cb(w->opaque, w->rel, text);
}

int vmx_link_watch(struct vmx_link *lk, const char *rel, vmx_link_watch_cb cb, void *opaque)
{
	if (!lk)
		return 0;
	if (lk->nwatches >= sizeof(lk->watches) / sizeof(lk->watches[0]) || !cb ||
	    strlen(rel) >= sizeof(lk->watches[0].rel))
		return -EINVAL;
	struct vmx_link_watch *w = &lk->watches[lk->nwatches];
	char p[VMDB_PATH_MAX];
	if (snprintf(p, sizeof(p), "%s/%s", lk->base, rel) >= (int)sizeof(p))
		return -EINVAL;
	*w = (struct vmx_link_watch){ .lk = lk, .cb = cb, .opaque = opaque };
	snprintf(w->rel, sizeof(w->rel), "%s", rel);
	int rc = vmdb_watch(lk->ctx, p, on_watch, w);   /* a watch id, or < 0 */
	if (rc < 0)
		return rc;
	lk->nwatches++;
	return 0;
}

static int link_connect(struct vmx_link *lk)
{
	int rc = vmdb_client_connect(lk->cl);
	track_fd(lk);
	if (rc)
		return rc;
	if (lk->have_power)
		publish_power_now(lk);
	return 0;
}

struct vmx_link *vmx_link_open(const char *sock, unsigned vm_id, char *err, size_t errlen)
{
	struct vmx_link *lk = calloc(1, sizeof(*lk));
	if (!lk)
		return NULL;
	lk->id = vm_id;
	lk->cfd = -1;
	snprintf(lk->base, sizeof(lk->base), "/vm/%u", vm_id);
	lk->db = vmdb_db_new(vmdb_schema_builtin());
	lk->epfd = epoll_create1(EPOLL_CLOEXEC);
	lk->cl = lk->db ? vmdb_client_new(lk->db, sock, "vireo-vmx", lk->base) : NULL;
	lk->ctx = lk->db ? vmdb_ctx_new(lk->db, NULL) : NULL;
	if (!lk->db || !lk->cl || !lk->ctx || lk->epfd < 0) {
		snprintf(err, errlen, "vmdb link: out of memory");
		vmx_link_close(lk);
		return NULL;
	}
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = vmdb_ctx_fd(lk->ctx) };
	epoll_ctl(lk->epfd, EPOLL_CTL_ADD, vmdb_ctx_fd(lk->ctx), &ev);
	char p[64];
	snprintf(p, sizeof(p), "%s/request/power", lk->base);
	vmdb_watch(lk->ctx, p, on_request, lk);
	/* Subscribed before connecting, so each (re)connect re-reads it. */
	int rc = link_connect(lk);
	if (!rc)
		rc = vmdb_client_subscribe(lk->cl, lk->base);
	if (rc) {
		/* The VM runs anyway; vmx_link_tick() retries. */
		snprintf(err, errlen, "vmdb link to %s: %s", sock, vmdb_strerror(rc));
		if (rc == -EACCES || rc == -EPERM) {
			vmx_link_close(lk);
			return NULL;
		}
	}
	return lk;
}

struct vmx_link *vmx_link_open_env(char *err, size_t errlen)
{
	const char *sock = getenv("VIREO_VMDB_SOCK"), *id = getenv("VIREO_VM_ID");
	if (err && errlen)
		err[0] = 0;
	if (!sock || !*sock)
		return NULL;
	char *end;
	unsigned long v = id ? strtoul(id, &end, 10) : 0;
	if (!id || !*id || *end || v > 999999999ul) {
		snprintf(err, errlen, "VIREO_VM_ID is missing or not an index");
		return NULL;
	}
	return vmx_link_open(sock, (unsigned)v, err, errlen);
}

void vmx_link_close(struct vmx_link *lk)
{
	if (!lk)
		return;
	vmdb_ctx_free(lk->ctx);
	vmdb_client_free(lk->cl);
	vmdb_db_free(lk->db);
	if (lk->epfd >= 0)
		close(lk->epfd);
	free(lk);
}

void vmx_link_on_request(struct vmx_link *lk, vmx_link_request_cb cb, void *opaque)
{
	if (!lk)
		return;
	lk->cb = cb;
	lk->opaque = opaque;
}

int vmx_link_publish_power(struct vmx_link *lk, enum vmx_link_power p, const char *reason)
{
	if (!lk || (unsigned)p > VMX_LINK_STOPPING)
		return lk ? -EINVAL : 0;
	lk->have_power = true;
	lk->power = p;
	snprintf(lk->reason, sizeof(lk->reason), "%s", reason ? reason : "");
	if (!vmdb_client_connected(lk->cl))
		return -ENOTCONN; /* sent on reconnect */
	int rc = publish_power_now(lk);
	track_fd(lk);
	return rc;
}

int vmx_link_publish(struct vmx_link *lk, const char *rel, const char *value)
{
	if (!lk)
		return 0;
	char p[VMDB_PATH_MAX];
	if (snprintf(p, sizeof(p), "%s/%s", lk->base, rel) >= (int)sizeof(p))
		return -EINVAL;
	int rc = vmdb_set(lk->ctx, p, value);
	track_fd(lk);
	return rc;
}

int vmx_link_fd(struct vmx_link *lk) { return lk ? lk->epfd : -1; }
unsigned vmx_link_vm_id(const struct vmx_link *lk) { return lk ? lk->id : 0; }

void vmx_link_dispatch(struct vmx_link *lk)
{
	if (!lk)
		return;
	struct epoll_event evs[4];
	int n = epoll_wait(lk->epfd, evs, 4, 0);
	for (int i = 0; i < n; i++)
		if (evs[i].data.fd == lk->cfd)
			vmdb_client_dispatch(lk->cl);
	vmdb_ctx_dispatch(lk->ctx);
	track_fd(lk);
}

void vmx_link_fd_cb(void *lk, uint32_t events)
{
	vmx_link_dispatch(lk);
}

void vmx_link_tick(struct vmx_link *lk)
{
	if (!lk || vmdb_client_connected(lk->cl))
		return;
	if (!link_connect(lk))
		vmdb_ctx_dispatch(lk->ctx);
}

/*
 * test_vmdb_unit.c — the VMDB library in one process: schema, typed values,
 * arrays, contexts, merged asynchronous watches, transactions, access
 * control by identity, and a client mirroring a server over a socket
 * (including resynchronisation after the server restarts).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../unit/t.h"
#include "vmdb.h"
#include "vmdb_net.h"

static const char schema_text[] =
	"# test schema\n"
	"/a/name        string rw\n"
	"/a/count       int    rw\n"
	"/a/flag        bool   rw\n"
	"/a/mode        enum   rw  red,green,blue\n"
	"/a/locked      int    ro\n"
	"/item/#/value  int    rw\n"
	"/item/#/label  string ro\n";

static struct vmdb_schema *sch;

struct rec {
	int n;
	char path[16][VMDB_PATH_MAX];
	char val[16][64];
	bool deleted[16];
};

static void rec_cb(void *opaque, const char *path, const struct vmdb_value *v)
{
	struct rec *r = opaque;
	if (r->n >= 16)
		return;
	snprintf(r->path[r->n], VMDB_PATH_MAX, "%s", path);
	if (v)
		vmdb_value_format(v, r->val[r->n], 64);
	else
		r->val[r->n][0] = 0;
	r->deleted[r->n] = !v;
	r->n++;
}

static void list_cb(void *opaque, const char *name, bool leaf)
{
	char *out = opaque;
	strcat(out, name);
	strcat(out, leaf ? "." : "/");
	strcat(out, " ");
}

static void test_schema(void)
{
	char err[256];
	const char *bad[] = {
		"/x int rw\n/x int rw\n",                 /* twice */
		"/x float rw\n",                          /* type */
		"/x int maybe\n",                         /* access */
		"/x enum rw\n",                           /* no choices */
		"/x int rw a,b\n",                        /* choices on int */
		"/x/# int rw\n",                          /* array element as a leaf */
		"/x/#/a int rw\n/x/b int rw\n",           /* array mixed with names */
		"/x int rw\n/x/y int rw\n",               /* leaf then interior */
		"x int rw\n",                             /* relative */
		"/x//y int rw\n",                         /* empty component */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct vmdb_schema *s = vmdb_schema_parse(bad[i], strlen(bad[i]), err, sizeof(err));
		if (s) {
			T_FAIL("schema %zu accepted: %s", i, bad[i]);
			vmdb_schema_free(s);
		}
	}
	T_ASSERT(vmdb_schema_builtin() != NULL);
	enum vmdb_type t;
	bool ro;
	T_EQ_I64(vmdb_schema_lookup(vmdb_schema_builtin(), "/vm/12/state/power", &t, &ro, NULL, NULL), 0);
	T_EQ_I64(t, VMDB_T_ENUM);
	T_ASSERT(ro);
	T_EQ_I64(vmdb_schema_lookup(vmdb_schema_builtin(), "/vm/012/state/power", NULL, NULL, NULL, NULL), -EINVAL);
	T_EQ_I64(vmdb_schema_lookup(vmdb_schema_builtin(), "/vm/x/state/power", NULL, NULL, NULL, NULL), -EINVAL);
}

static void test_values(void)
{
	struct vmdb_db *db = vmdb_db_new(sch);
	struct vmdb_ctx *c = vmdb_ctx_new(db, NULL);
	char buf[128];
	int64_t i;
	bool b;

	T_EQ_I64(vmdb_set(c, "/a/name", "hello"), 0);
	T_EQ_I64(vmdb_set(c, "/a/count", "42"), 0);
	T_EQ_I64(vmdb_set(c, "/a/count", "4x"), -EINVAL);
	T_EQ_I64(vmdb_set_bool(c, "/a/flag", true), 0);
	T_EQ_I64(vmdb_set(c, "/a/mode", "green"), 0);
	T_EQ_I64(vmdb_set(c, "/a/mode", "purple"), -EINVAL);
	T_EQ_I64(vmdb_set_int(c, "/a/name", 3), -EINVAL);       /* wrong type */
	T_EQ_I64(vmdb_set(c, "/a/nothere", "1"), -EINVAL);      /* not in schema */
	T_EQ_I64(vmdb_set(c, "/a", "1"), -EISDIR);
	T_EQ_I64(vmdb_set(c, "/a/../a/count", "1"), -EINVAL);

	T_ASSERT(vmdb_get(c, "/a/name", buf, sizeof(buf)) == 5);
	T_STREQ(buf, "hello");
	T_EQ_I64(vmdb_get_int(c, "/a/count", &i), 0);
	T_EQ_I64(i, 42);
	T_EQ_I64(vmdb_get_bool(c, "/a/flag", &b), 0);
	T_ASSERT(b);
	vmdb_get(c, "/a/mode", buf, sizeof(buf));
	T_STREQ(buf, "green");
	T_EQ_I64(vmdb_get(c, "/a/locked", buf, sizeof(buf)), -ENOENT);
	T_EQ_I64(vmdb_get(c, "/a", buf, sizeof(buf)), -EISDIR);

	/* Arrays, relative paths, list order, delete. */
	T_EQ_I64(vmdb_set_int(c, "/item/10/value", 10), 0);
	T_EQ_I64(vmdb_set_int(c, "/item/9/value", 9), 0);
	T_EQ_I64(vmdb_set_int(c, "/item/0/value", 0), 0);
	T_EQ_I64(vmdb_set_int(c, "/item/01/value", 1), -EINVAL);
	T_EQ_I64(vmdb_ctx_cd(c, "/item/9"), 0);
	T_STREQ(vmdb_ctx_cwd(c), "/item/9");
	T_EQ_I64(vmdb_get_int(c, "value", &i), 0);
	T_EQ_I64(i, 9);
	T_EQ_I64(vmdb_set(c, "label", "nine"), 0);
	char names[256] = "";
	T_EQ_I64(vmdb_list(c, "/item", list_cb, names), 3);
	T_STREQ(names, "0/ 9/ 10/ ");
	names[0] = 0;
	T_EQ_I64(vmdb_list(c, "/item/9", list_cb, names), 2);
	T_STREQ(names, "value. label. ");
	T_EQ_I64(vmdb_exists(c, "/item/9"), 1);
	size_t before = vmdb_db_node_count(db);
	T_EQ_I64(vmdb_delete(c, "/item/9"), 0);
	T_EQ_I64(vmdb_exists(c, "/item/9"), 0);
	T_EQ_U64(vmdb_db_node_count(db), before - 3);
	T_EQ_I64(vmdb_delete(c, "/item/9"), 0);   /* absent: fine */
	T_EQ_I64(vmdb_get_int(c, "value", &i), -ENOENT);

	/* Access: a client identity may not set ro paths unless it owns them. */
	struct vmdb_ident cli = { .uid = getuid(), .pid = 1 };
	struct vmdb_ctx *cc = vmdb_ctx_new(db, &cli);
	T_EQ_I64(vmdb_set_int(cc, "/a/locked", 1), -EACCES);
	T_EQ_I64(vmdb_set_int(cc, "/a/count", 1), 0);
	T_EQ_I64(vmdb_set(cc, "/item/3/label", "x"), -EACCES);
	T_EQ_I64(vmdb_delete(cc, "/item"), -EACCES);
	struct vmdb_ident own = { .uid = getuid(), .pid = 1, .own = "/item/3" };
	struct vmdb_ctx *oc = vmdb_ctx_new(db, &own);
	T_EQ_I64(vmdb_set(oc, "/item/3/label", "x"), 0);
	T_EQ_I64(vmdb_set(oc, "/item/4/label", "x"), -EACCES);
	T_EQ_I64(vmdb_set_int(c, "/a/locked", 7), 0);            /* local: yes */
	vmdb_ctx_free(oc);
	vmdb_ctx_free(cc);
	vmdb_ctx_free(c);
	vmdb_db_free(db);
}

static void test_watch_txn(void)
{
	struct vmdb_db *db = vmdb_db_new(sch);
	struct vmdb_ctx *w = vmdb_ctx_new(db, NULL), *c = vmdb_ctx_new(db, NULL);
	struct rec r = { 0 };
	T_ASSERT(vmdb_watch(w, "/a", rec_cb, &r) > 0);
	T_EQ_I64(vmdb_set_int(c, "/a/count", 1), 0);
	T_EQ_I64(vmdb_set(c, "/a/name", "x"), 0);
	T_EQ_I64(vmdb_set_int(c, "/a/count", 2), 0);
	T_EQ_I64(vmdb_set_int(c, "/a/count", 3), 0);
	T_EQ_I64(vmdb_set_int(c, "/item/1/value", 3), 0);       /* not watched */
	/* Nothing runs synchronously. */
	T_EQ_I64(r.n, 0);
	struct pollfd pfd = { .fd = vmdb_ctx_fd(w), .events = POLLIN };
	T_EQ_I64(poll(&pfd, 1, 0), 1);
	T_EQ_I64(vmdb_ctx_dispatch(w), 2);
	/* Merged: count once with the latest value, after name (its last change). */
	T_EQ_I64(r.n, 2);
	T_STREQ(r.path[0], "/a/name");
	T_STREQ(r.path[1], "/a/count");
	T_STREQ(r.val[1], "3");
	T_EQ_I64(poll(&pfd, 1, 0), 0);

	/* Transactions: invisible until commit, all at once after. */
	r.n = 0;
	T_EQ_I64(vmdb_begin(c), 0);
	T_EQ_I64(vmdb_set_int(c, "/a/count", 100), 0);
	T_EQ_I64(vmdb_set(c, "/a/mode", "blue"), 0);
	int64_t i = 0;
	T_EQ_I64(vmdb_get_int(w, "/a/count", &i), 0);
	T_EQ_I64(i, 3);
	T_EQ_I64(vmdb_get_int(c, "/a/count", &i), 0);            /* own staged value */
	T_EQ_I64(i, 100);
	T_EQ_I64(vmdb_exists(w, "/a/mode"), 0);
	T_EQ_I64(vmdb_ctx_pending(w), 0);
	T_EQ_I64(vmdb_commit(c), 0);
	T_EQ_I64(vmdb_ctx_pending(w), 2);
	T_EQ_I64(vmdb_get_int(w, "/a/count", &i), 0);
	T_EQ_I64(i, 100);
	vmdb_ctx_dispatch(w);
	T_EQ_I64(r.n, 2);

	T_EQ_I64(vmdb_begin(c), 0);
	T_EQ_I64(vmdb_set_int(c, "/a/count", 5), 0);
	vmdb_abort(c);
	T_EQ_I64(vmdb_get_int(w, "/a/count", &i), 0);
	T_EQ_I64(i, 100);

	/* A bad set fails at once and is not staged; the rest commits. */
	T_EQ_I64(vmdb_begin(c), 0);
	T_EQ_I64(vmdb_set_int(c, "/a/count", 6), 0);
	T_EQ_I64(vmdb_set(c, "/a/mode", "nope"), -EINVAL);
	T_EQ_I64(vmdb_commit(c), 0);                               /* the good op only */
	T_EQ_I64(vmdb_get_int(w, "/a/count", &i), 0);
	T_EQ_I64(i, 6);

	/* Delete reaches watchers inside the subtree. */
	struct rec r2 = { 0 };
	T_ASSERT(vmdb_watch(w, "/item/1/value", rec_cb, &r2) > 0);
	T_EQ_I64(vmdb_delete(c, "/item"), 0);
	vmdb_ctx_dispatch(w);
	T_EQ_I64(r2.n, 1);
	T_ASSERT(r2.deleted[0]);
	T_STREQ(r2.path[0], "/item");
	vmdb_ctx_free(c);
	vmdb_ctx_free(w);
	vmdb_db_free(db);
}

/* ---- over a socket ---- */

struct srvthr {
	struct vmdb_db *db;
	struct vmdb_server *srv;
	atomic_bool stop;
	pthread_t th;
};

static void *srv_main(void *arg)
{
	struct srvthr *s = arg;
	while (!atomic_load(&s->stop)) {
		struct pollfd pfd = { .fd = vmdb_server_fd(s->srv), .events = POLLIN };
		if (poll(&pfd, 1, 20) > 0)
			vmdb_server_dispatch(s->srv);
	}
	return NULL;
}

static bool own_ok(void *opaque, const struct vmdb_peer_info *p, const char *path)
{
	return !strcmp(path, "/item/5");
}

static const struct vmdb_server_hooks hooks = { .may_own = own_ok };

static void srv_start(struct srvthr *s, const char *path)
{
	char err[256];
	s->db = vmdb_db_new(sch);
	s->srv = vmdb_server_new(s->db, path, err, sizeof(err));
	if (!s->srv) {
		T_FAIL("server: %s", err);
		exit(1);
	}
	vmdb_server_set_hooks(s->srv, &hooks, NULL);
	atomic_store(&s->stop, false);
	pthread_create(&s->th, NULL, srv_main, s);
}

static void srv_stop(struct srvthr *s)
{
	atomic_store(&s->stop, true);
	pthread_join(s->th, NULL);
	vmdb_server_free(s->srv);
	vmdb_db_free(s->db);
}

/* Pump the client until cond or 2 s. */
#define PUMP_UNTIL(cl, ctx, cond)                                                \
	do {                                                                     \
		for (int k_ = 0; k_ < 200 && !(cond); k_++) {                    \
			struct pollfd p_ = { .fd = vmdb_client_fd(cl), .events = POLLIN }; \
			poll(&p_, 1, 10);                                        \
			vmdb_client_dispatch(cl);                                \
			vmdb_ctx_dispatch(ctx);                                  \
		}                                                                \
	} while (0)

static void test_remote(const char *dir)
{
	char path[200];
	snprintf(path, sizeof(path), "%s/s.sock", dir);
	struct srvthr s;
	srv_start(&s, path);
	struct vmdb_ctx *sc = vmdb_ctx_new(s.db, NULL);
	T_EQ_I64(vmdb_set_int(sc, "/a/locked", 9), 0);

	struct vmdb_db *mdb = vmdb_db_new(sch);
	struct vmdb_client *cl = vmdb_client_new(mdb, path, "unit", "/item/5");
	T_EQ_I64(vmdb_client_connect(cl), 0);
	struct vmdb_ctx *c = vmdb_ctx_new(mdb, NULL);
	T_EQ_I64(vmdb_client_subscribe(cl, "/a"), 0);
	T_EQ_I64(vmdb_client_subscribe(cl, "/item"), 0);
	int64_t i = 0;
	T_EQ_I64(vmdb_get_int(c, "/a/locked", &i), 0);           /* from the snapshot */
	T_EQ_I64(i, 9);
	/* Writes: rw allowed, ro refused by the server, owned ro allowed. */
	T_EQ_I64(vmdb_set_int(c, "/a/count", 5), 0);
	T_EQ_I64(vmdb_get_int(c, "/a/count", &i), 0);            /* echo came before the answer */
	T_EQ_I64(i, 5);
	T_EQ_I64(vmdb_set_int(c, "/a/locked", 1), -EACCES);
	T_CONTAINS(vmdb_client_error(cl), "/a/locked");
	T_EQ_I64(vmdb_set(c, "/item/5/label", "mine"), 0);
	T_EQ_I64(vmdb_set(c, "/item/6/label", "theirs"), -EACCES);
	/* A transaction bigger than one message is staged and applied whole. */
	T_EQ_I64(vmdb_begin(c), 0);
	char p[64], big[VMDB_STRING_MAX + 1];
	memset(big, 'x', VMDB_STRING_MAX);
	big[VMDB_STRING_MAX] = 0;
	for (int k = 0; k < 600; k++) {
		snprintf(p, sizeof(p), "/item/%d/value", k);
		vmdb_set_int(c, p, k);
	}
	vmdb_set(c, "/a/name", big);
	T_EQ_I64(vmdb_commit(c), 0);
	T_EQ_I64(vmdb_get_int(sc, "/item/599/value", &i), 0);
	T_EQ_I64(i, 599);
	T_EQ_I64(vmdb_get_int(c, "/item/599/value", &i), 0);
	/* Server-side change reaches the client's watch. */
	struct rec r = { 0 };
	T_ASSERT(vmdb_watch(c, "/a/flag", rec_cb, &r) > 0);
	T_EQ_I64(vmdb_set_bool(sc, "/a/flag", true), 0);
	PUMP_UNTIL(cl, c, r.n > 0);
	T_EQ_I64(r.n, 1);
	T_STREQ(r.val[0], "true");

	/* A second client sending garbage is dropped; the first stays. */
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	strcpy(sa.sun_path, path);
	T_EQ_I64(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	uint8_t junk[12] = { 1, 3, 0, 0, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0 };  /* 2 GB SET */
	T_EQ_I64(write(fd, junk, sizeof(junk)), 12);
	char tmp[64];
	struct pollfd pf = { .fd = fd, .events = POLLIN };
	poll(&pf, 1, 2000);
	T_EQ_I64(read(fd, tmp, sizeof(tmp)), 0);                  /* closed on us */
	close(fd);
	T_EQ_I64(vmdb_set_int(c, "/a/count", 6), 0);

	/* Server restart: reconnect pushes the owned subtree and re-reads the rest. */
	vmdb_ctx_free(sc);
	srv_stop(&s);
	srv_start(&s, path);
	sc = vmdb_ctx_new(s.db, NULL);
	vmdb_set_int(sc, "/a/count", 77);
	PUMP_UNTIL(cl, c, !vmdb_client_connected(cl));
	T_ASSERT(!vmdb_client_connected(cl));
	T_EQ_I64(vmdb_set_int(c, "/a/count", 1), -ENOTCONN);
	T_EQ_I64(vmdb_client_connect(cl), 0);
	char buf[64] = "";
	T_ASSERT(vmdb_get(sc, "/item/5/label", buf, sizeof(buf)) > 0); /* owner resync */
	T_STREQ(buf, "mine");
	T_EQ_I64(vmdb_get_int(c, "/a/count", &i), 0);             /* fresh snapshot */
	T_EQ_I64(i, 77);
	T_EQ_I64(vmdb_exists(c, "/item/599"), 0);                  /* gone with the old server */

	vmdb_ctx_free(c);
	vmdb_client_free(cl);
	vmdb_db_free(mdb);
	vmdb_ctx_free(sc);
	srv_stop(&s);
}

int main(void)
{
	char err[256];
	sch = vmdb_schema_parse(schema_text, strlen(schema_text), err, sizeof(err));
	if (!sch) {
		fprintf(stderr, "schema: %s\n", err);
		return 1;
	}
	char dir[] = "/tmp/vmdb-unit-XXXXXX";
	if (!mkdtemp(dir))
		return 1;
	test_schema();
	test_values();
	test_watch_txn();
	test_remote(dir);
	vmdb_schema_free(sch);
	rmdir(dir);
	return T_DONE();
}

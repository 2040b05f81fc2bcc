/*
 * bench_vmdb.c — VMDB figures, with a D-Bus peer measured in the same run.
 *
 *   1. in-process set, set+get operations per second (one context)
 *   2. cross-process set-to-callback latency p50/p99: a writer process sets,
 *      a subscriber process's watch fires (server in this process)
 *   3. sustained sets per second with 100 subscriber connections
 *   4. heap bytes per node for 100,000 nodes (mallinfo2)
 *   5. (with GIO) a D-Bus property change on a private dbus-daemon: a client
 *      calls Properties.Set on a service and waits for its PropertiesChanged
 *      signal; printed with the ratio to (2).
 *
 *   bench_vmdb [--quick]
 */
#include <errno.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vmdb/vmdb.h"
#include "vmdb/vmdb_net.h"

#ifdef VIREO_HAVE_GIO
#include <gio/gio.h>
#endif

static const char schema_text[] = "/item/#/value int rw\n/item/#/name string rw\n";
static struct vmdb_schema *sch;
static bool quick;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void pct(uint64_t *v, size_t n, double *p50, double *p99)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	*p50 = (double)v[n / 2] / 1000.0;
	*p99 = (double)v[n * 99 / 100] / 1000.0;
}

/* ---- 1 ---- */
static void bench_inproc(void)
{
	struct vmdb_db *db = vmdb_db_new(sch);
	struct vmdb_ctx *c = vmdb_ctx_new(db, NULL);
	enum { NP = 1000 };
	static char paths[NP][32];
	for (int i = 0; i < NP; i++)
		snprintf(paths[i], sizeof(paths[i]), "/item/%d/value", i);
	long n = quick ? 300000 : 3000000;
	for (int i = 0; i < NP; i++)
		vmdb_set_int(c, paths[i], 0);
	uint64_t t0 = now_ns();
	for (long i = 0; i < n; i++)
		vmdb_set_int(c, paths[i % NP], i);
	uint64_t t1 = now_ns();
	int64_t v, sum = 0;
	for (long i = 0; i < n; i++) {
		vmdb_set_int(c, paths[i % NP], i);
		vmdb_get_int(c, paths[(i * 7) % NP], &v);
		sum += v;
	}
	uint64_t t2 = now_ns();
	printf("vmdb in-process: %.2f M sets/s, %.2f M set+get pairs/s (%.0f ns per pair)%s\n",
	       (double)n / ((double)(t1 - t0) / 1e9) / 1e6,
	       (double)n / ((double)(t2 - t1) / 1e9) / 1e6, (double)(t2 - t1) / (double)n,
	       sum == -1 ? "!" : "");
	vmdb_ctx_free(c);
	vmdb_db_free(db);
}

/* ---- server thread for 2 and 3 ---- */
static struct vmdb_server *srv;
static atomic_bool srv_stop;

static void *srv_main(void *arg)
{
	while (!atomic_load(&srv_stop)) {
		struct pollfd pfd = { .fd = vmdb_server_fd(srv), .events = POLLIN };
		if (poll(&pfd, 1, 5) > 0)
			vmdb_server_dispatch(srv);
	}
	return NULL;
}

struct lat {
	uint64_t *v;
	size_t n, cap;
	int64_t last;
};

static void lat_cb(void *opaque, const char *path, const struct vmdb_value *val)
{
	struct lat *l = opaque;
	uint64_t t = now_ns();
	if (!val)
		return;
	l->last = val->i;
	if (val->i <= 1000000)
		return; /* markers, not timestamps */
	if (l->n < l->cap)
		l->v[l->n++] = t - (uint64_t)val->i;
}

static void connect_or_die(struct vmdb_client *cl)
{
	if (vmdb_client_connect(cl)) {
		fprintf(stderr, "bench: cannot connect\n");
		_exit(1);
	}
}

/* ---- 2 ---- */
static void bench_latency(const char *sock, double *p50_out)
{
	int samples = quick ? 1000 : 5000;
	int res[2], ready[2];
	if (pipe(res) || pipe(ready))
		return;
	pid_t sub = fork();
	if (sub == 0) {
		struct vmdb_db *db = vmdb_db_new(sch);
		struct vmdb_client *cl = vmdb_client_new(db, sock, "lat-sub", NULL);
		struct vmdb_ctx *c = vmdb_ctx_new(db, NULL);
		connect_or_die(cl);
		vmdb_client_subscribe(cl, "/item/0");
		struct lat l = { .cap = (size_t)samples };
		l.v = calloc(l.cap, sizeof(*l.v));
		vmdb_watch(c, "/item/0/value", lat_cb, &l);
		if (write(ready[1], "r", 1) != 1)
			_exit(1);
		while (l.n < l.cap && l.last != -1) {
			struct pollfd p[2] = { { .fd = vmdb_client_fd(cl), .events = POLLIN },
			                       { .fd = vmdb_ctx_fd(c), .events = POLLIN } };
			poll(p, 2, 1000);
			if (vmdb_client_dispatch(cl))
				break;
			vmdb_ctx_dispatch(c);
		}
		double r[3] = { 0, 0, (double)l.n };
		if (l.n > 10)
			pct(l.v, l.n, &r[0], &r[1]);
		if (write(res[1], r, sizeof(r)) != sizeof(r))
			_exit(1);
		_exit(0);
	}
	char ch;
	if (read(ready[0], &ch, 1) != 1)
		return;
	pid_t wr = fork();
	if (wr == 0) {
		struct vmdb_db *db = vmdb_db_new(sch);
		struct vmdb_client *cl = vmdb_client_new(db, sock, "lat-writer", NULL);
		struct vmdb_ctx *c = vmdb_ctx_new(db, NULL);
		connect_or_die(cl);
		for (int i = 0; i < samples; i++) {
			vmdb_set_int(c, "/item/0/value", (int64_t)now_ns());
			/* Paced: the latency of single changes (bursts are merged). */
			usleep(1500);
		}
		vmdb_set_int(c, "/item/0/value", -1); /* done */
		_exit(0);
	}
	double r[3] = { 0, 0, 0 };
	waitpid(wr, NULL, 0);
	if (read(res[0], r, sizeof(r)) != sizeof(r))
		fprintf(stderr, "bench: latency subscriber failed\n");
	waitpid(sub, NULL, 0);
	printf("vmdb cross-process set-to-callback: p50 %.1f us, p99 %.1f us (%.0f of %d sets seen alone)\n",
	       r[0], r[1], r[2], samples);
	*p50_out = r[0];
	close(res[0]); close(res[1]); close(ready[0]); close(ready[1]);
}

/* ---- 3 ---- */
static void bench_fanout(const char *sock)
{
	enum { NSUB = 100 };
	int ready[2], res[2];
	if (pipe(ready) || pipe(res))
		return;
	double secs = quick ? 1.0 : 3.0;
	pid_t sub = fork();
	if (sub == 0) {
		struct vmdb_db *db[NSUB];
		struct vmdb_client *cl[NSUB];
		struct vmdb_ctx *c[NSUB];
		struct lat l[NSUB];
		for (int i = 0; i < NSUB; i++) {
			db[i] = vmdb_db_new(sch);
			cl[i] = vmdb_client_new(db[i], sock, "fan-sub", NULL);
			c[i] = vmdb_ctx_new(db[i], NULL);
			connect_or_die(cl[i]);
			vmdb_client_subscribe(cl[i], "/item/1");
			l[i] = (struct lat){ .cap = 0 };
			vmdb_watch(c[i], "/item/1/value", lat_cb, &l[i]);
		}
		if (write(ready[1], "r", 1) != 1)
			_exit(1);
		/* Until every subscriber has seen the final value (-1 never: use a flag). */
		int done = 0;
		uint64_t end = now_ns() + (uint64_t)((secs + 20) * 1e9);
		while (done < NSUB && now_ns() < end) {
			struct pollfd p[NSUB];
			for (int i = 0; i < NSUB; i++)
				p[i] = (struct pollfd){ .fd = vmdb_client_fd(cl[i]), .events = POLLIN };
			poll(p, NSUB, 100);
			done = 0;
			for (int i = 0; i < NSUB; i++) {
				if (p[i].revents) {
					vmdb_client_dispatch(cl[i]);
					vmdb_ctx_dispatch(c[i]);
				}
				if (l[i].last == 1)
					done++;
			}
		}
		if (write(res[1], &done, sizeof(done)) != sizeof(done))
			_exit(1);
		_exit(0);
	}
	char ch;
	if (read(ready[0], &ch, 1) != 1)
		return;
	pid_t wr = fork();
	if (wr == 0) {
		struct vmdb_db *db = vmdb_db_new(sch);
		struct vmdb_client *cl = vmdb_client_new(db, sock, "fan-writer", NULL);
		struct vmdb_ctx *c = vmdb_ctx_new(db, NULL);
		connect_or_die(cl);
		uint64_t t0 = now_ns(), end = t0 + (uint64_t)(secs * 1e9);
		long n = 0;
		int64_t v = 1000;
		while (now_ns() < end) {
			vmdb_set_int(c, "/item/1/value", ++v);
			n++;
		}
		uint64_t t1 = now_ns();
		vmdb_set_int(c, "/item/1/value", 1); /* the end marker */
		printf("vmdb sustained with 100 subscribers: %.0f sets/s (%ld sets in %.1f s)\n",
		       (double)n / ((double)(t1 - t0) / 1e9), n, (double)(t1 - t0) / 1e9);
		fflush(stdout);
		_exit(0);
	}
	waitpid(wr, NULL, 0);
	int done = 0;
	if (read(res[0], &done, sizeof(done)) != sizeof(done))
		done = -1;
	waitpid(sub, NULL, 0);
	printf("vmdb   %d of 100 subscribers saw the final value\n", done);
	close(res[0]); close(res[1]); close(ready[0]); close(ready[1]);
}

/* ---- 4 ---- */
static void bench_memory(void)
{
	struct mallinfo2 a = mallinfo2();
	struct vmdb_db *db = vmdb_db_new(sch);
	struct vmdb_ctx *c = vmdb_ctx_new(db, NULL);
	char p[64];
	/* 50,000 elements: an index node and a value leaf each. */
	for (int i = 0; i < 50000; i++) {
		snprintf(p, sizeof(p), "/item/%d/value", i);
		vmdb_set_int(c, p, i);
	}
	size_t nodes = vmdb_db_node_count(db) - 1; /* the /item node */
	struct mallinfo2 b = mallinfo2();
	double per = (double)(b.uordblks - a.uordblks) / (double)nodes;
	printf("vmdb memory: %zu nodes, %.1f MB heap, %.0f bytes per node (%.1f MB per 100,000)\n",
	       nodes, (double)(b.uordblks - a.uordblks) / 1e6, per, per * 100000 / 1e6);
	vmdb_ctx_free(c);
	vmdb_db_free(db);
}

/* ---- 5 ---- */
#ifdef VIREO_HAVE_GIO
static gint64 dbus_value;

static GVariant *svc_get(GDBusConnection *conn, const gchar *sender, const gchar *path,
                         const gchar *iface, const gchar *prop, GError **error, gpointer data)
{
	return g_variant_new_int64(dbus_value);
}

static gboolean svc_set(GDBusConnection *conn, const gchar *sender, const gchar *path,
                        const gchar *iface, const gchar *prop, GVariant *value,
                        GError **error, gpointer data)
{
	dbus_value = g_variant_get_int64(value);
	GVariantBuilder b;
	g_variant_builder_init(&b, G_VARIANT_TYPE_ARRAY);
	g_variant_builder_add(&b, "{sv}", "Value", g_variant_new_int64(dbus_value));
	g_dbus_connection_emit_signal(conn, NULL, path, "org.freedesktop.DBus.Properties",
	                              "PropertiesChanged",
	                              g_variant_new("(sa{sv}as)", iface, &b, NULL), NULL);
	return TRUE;
}

static const char introspect[] =
	"<node><interface name='org.vireo.Bench'>"
	"<property name='Value' type='x' access='readwrite'/></interface></node>";

static void dbus_service(const char *addr, int ready)
{
	GError *e = NULL;
	GDBusConnection *conn = g_dbus_connection_new_for_address_sync(addr,
		G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
		G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION, NULL, NULL, &e);
	if (!conn)
		_exit(1);
	GDBusNodeInfo *ni = g_dbus_node_info_new_for_xml(introspect, NULL);
	static const GDBusInterfaceVTable vt = { NULL, svc_get, svc_set, { 0 } };
	g_dbus_connection_register_object(conn, "/org/vireo/Bench", ni->interfaces[0], &vt,
	                                  NULL, NULL, NULL);
	GVariant *r = g_dbus_connection_call_sync(conn, "org.freedesktop.DBus", "/org/freedesktop/DBus",
		"org.freedesktop.DBus", "RequestName", g_variant_new("(su)", "org.vireo.Bench", 4u),
		NULL, G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL);
	if (r)
		g_variant_unref(r);
	if (write(ready, "r", 1) != 1)
		_exit(1);
	GMainLoop *loop = g_main_loop_new(NULL, FALSE);
	g_main_loop_run(loop);
	_exit(0);
}

static gint64 seen_value;
static void on_changed(GDBusConnection *conn, const gchar *sender, const gchar *path,
                       const gchar *iface, const gchar *signal_name, GVariant *params, gpointer data)
{
	GVariant *changed = g_variant_get_child_value(params, 1);
	GVariant *v = g_variant_lookup_value(changed, "Value", G_VARIANT_TYPE_INT64);
	if (v) {
		seen_value = g_variant_get_int64(v);
		g_variant_unref(v);
	}
	g_variant_unref(changed);
}

static void bench_dbus(double vmdb_p50)
{
	FILE *f = popen("dbus-daemon --session --fork --print-address=1 --print-pid=1 "
	                "--address=unix:tmpdir=/tmp 2>/dev/null", "r");
	char addr[512] = "", pidl[32] = "";
	if (!f || !fgets(addr, sizeof(addr), f) || !fgets(pidl, sizeof(pidl), f)) {
		printf("dbus: no dbus-daemon: skipped\n");
		if (f)
			pclose(f);
		return;
	}
	pclose(f);
	addr[strcspn(addr, "\n")] = 0;
	pid_t dpid = (pid_t)atoi(pidl);
	int ready[2];
	if (pipe(ready))
		return;
	pid_t svc = fork();
	if (svc == 0)
		dbus_service(addr, ready[1]);
	char ch;
	if (read(ready[0], &ch, 1) != 1)
		return;
	GError *e = NULL;
	GDBusConnection *conn = g_dbus_connection_new_for_address_sync(addr,
		G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
		G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION, NULL, NULL, &e);
	if (!conn) {
		printf("dbus: cannot connect: %s\n", e ? e->message : "?");
		return;
	}
	g_dbus_connection_signal_subscribe(conn, "org.vireo.Bench", "org.freedesktop.DBus.Properties",
	                                   "PropertiesChanged", "/org/vireo/Bench", NULL,
	                                   G_DBUS_SIGNAL_FLAGS_NONE, on_changed, NULL, NULL);
	int samples = quick ? 500 : 3000;
	uint64_t *lat = calloc((size_t)samples, sizeof(*lat));
	int n = 0;
	GMainContext *mc = g_main_context_default();
	for (int i = 1; i <= samples + 50; i++) {
		uint64_t t0 = now_ns();
		g_dbus_connection_call(conn, "org.vireo.Bench", "/org/vireo/Bench",
		                       "org.freedesktop.DBus.Properties", "Set",
		                       g_variant_new("(ssv)", "org.vireo.Bench", "Value", g_variant_new_int64(i)),
		                       NULL, G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL, NULL);
		uint64_t limit = t0 + 2000000000ull;
		while (seen_value != i && now_ns() < limit)
			g_main_context_iteration(mc, TRUE);
		uint64_t t1 = now_ns();
		if (i > 50 && n < samples) /* after warm-up */
			lat[n++] = t1 - t0;
	}
	double p50, p99;
	pct(lat, (size_t)n, &p50, &p99);
	printf("dbus property change (Set -> PropertiesChanged, private dbus-daemon): p50 %.1f us, p99 %.1f us (%d samples)\n",
	       p50, p99, n);
	if (vmdb_p50 > 0)
		printf("ratio: D-Bus p50 / VMDB p50 = %.2f\n", p50 / vmdb_p50);
	free(lat);
	g_object_unref(conn);
	kill(svc, SIGTERM);
	waitpid(svc, NULL, 0);
	kill(dpid, SIGTERM);
}
#endif

int main(int argc, char **argv)
{
	char err[256];
	quick = argc > 1 && !strcmp(argv[1], "--quick");
	signal(SIGPIPE, SIG_IGN);
	sch = vmdb_schema_parse(schema_text, strlen(schema_text), err, sizeof(err));
	if (!sch)
		return 1;
	bench_memory();
	bench_inproc();

	char dir[] = "/tmp/vmdb-bench-XXXXXX", sock[128];
	if (!mkdtemp(dir))
		return 1;
	snprintf(sock, sizeof(sock), "%s/s.sock", dir);
	struct vmdb_db *db = vmdb_db_new(sch);
	srv = vmdb_server_new(db, sock, err, sizeof(err));
	if (!srv)
		return 1;
	pthread_t th;
	pthread_create(&th, NULL, srv_main, NULL);
	fflush(stdout);
	double p50 = 0;
	bench_latency(sock, &p50);
	fflush(stdout);
	bench_fanout(sock);
	fflush(stdout);
	atomic_store(&srv_stop, true);
	pthread_join(th, NULL);
	vmdb_server_free(srv);
	vmdb_db_free(db);
	rmdir(dir);
#ifdef VIREO_HAVE_GIO
	bench_dbus(p50);
#else
	printf("dbus: built without GIO: skipped\n");
#endif
	return 0;
}

/*
 * test_vmdb_stress.c — many concurrent clients and subscriptions.
 *
 * W writer processes each count 4 paths of their own up to M; S subscriber
 * processes (plus a local watcher in the server process) watch them all.
 * Per path, every subscriber must see strictly increasing values (merging
 * may skip values, never reorder them) ending at M (nothing lost).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../unit/t.h"
#include "vmdb.h"
#include "vmdb_net.h"

#define W 6
#define PER 4
#define NP (W * PER)
#define M 1500
#define S 12

static const char schema_text[] = "/item/#/value int rw\n";
static struct vmdb_schema *sch;
static struct vmdb_server *srv;
static atomic_bool stop;

static void *srv_main(void *arg)
{
	while (!atomic_load(&stop)) {
		struct pollfd pfd = { .fd = vmdb_server_fd(srv), .events = POLLIN };
		if (poll(&pfd, 1, 5) > 0)
			vmdb_server_dispatch(srv);
	}
	return NULL;
}

struct seen {
	int64_t last[NP];
	long notes;
	int done;
	int reordered;
};

static void seen_cb(void *opaque, const char *path, const struct vmdb_value *v)
{
	struct seen *s = opaque;
	int idx;
	if (!v || sscanf(path, "/item/%d/value", &idx) != 1 || idx < 0 || idx >= NP)
		return;
	s->notes++;
	if (v->i <= s->last[idx]) {
		if (s->reordered++ < 5)
			fprintf(stderr, "%s: %lld after %lld\n", path, (long long)v->i, (long long)s->last[idx]);
		return;
	}
	s->last[idx] = v->i;
	if (v->i == M)
		s->done++;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void subscriber(const char *sock, int ready)
{
	struct vmdb_db *db = vmdb_db_new(sch);
	struct vmdb_client *cl = vmdb_client_new(db, sock, "sub", NULL);
	struct vmdb_ctx *c = vmdb_ctx_new(db, NULL);
	struct seen s = { 0 };
	if (vmdb_client_connect(cl) || vmdb_client_subscribe(cl, "/item"))
		_exit(3);
	vmdb_watch(c, "/item", seen_cb, &s);
	if (write(ready, "r", 1) != 1)
		_exit(4);
	int64_t end = now_ms() + 90000;
	while (s.done < NP && now_ms() < end) {
		struct pollfd p = { .fd = vmdb_client_fd(cl), .events = POLLIN };
		poll(&p, 1, 50);
		if (vmdb_client_dispatch(cl))
			_exit(5);
		vmdb_ctx_dispatch(c);
	}
	printf("subscriber %d: %ld notifications for %d sets, %d paths complete\n",
	       (int)getpid(), s.notes, NP * M, s.done);
	_exit(s.reordered ? 1 : s.done == NP ? 0 : 2);
}

static void writer(const char *sock, int w, int go)
{
	char ch;
	if (read(go, &ch, 1) != 1)
		_exit(3); /* the test ended before the subscribers were ready */
	struct vmdb_db *db = vmdb_db_new(sch);
	struct vmdb_client *cl = vmdb_client_new(db, sock, "writer", NULL);
	struct vmdb_ctx *c = vmdb_ctx_new(db, NULL);
	if (vmdb_client_connect(cl))
		_exit(3);
	char p[64];
	for (int64_t v = 1; v <= M; v++)
		for (int k = 0; k < PER; k++) {
			snprintf(p, sizeof(p), "/item/%d/value", w * PER + k);
			if (vmdb_set_int(c, p, v))
				_exit(4);
		}
	_exit(0);
}

static pid_t watch_pids[S + W];
static int watch_n;

/* A hang must end as a failure that says where, not as a test timeout. */
static void watchdog(int sig)
{
	static const char msg[] = "test_vmdb_stress: no progress for 100 s: writers or subscribers hung\n";
	if (write(2, msg, sizeof(msg) - 1) < 0)
		_exit(6);
	for (int i = 0; i < watch_n; i++)
		kill(watch_pids[i], SIGKILL);
	_exit(6);
}

int main(void)
{
	char err[256];
	signal(SIGPIPE, SIG_IGN);
	signal(SIGALRM, watchdog);
	alarm(100);
	sch = vmdb_schema_parse(schema_text, strlen(schema_text), err, sizeof(err));
	char dir[] = "/tmp/vmdb-stress-XXXXXX";
	if (!sch || !mkdtemp(dir))
		return 1;
	char sock[128];
	snprintf(sock, sizeof(sock), "%s/s.sock", dir);
	struct vmdb_db *db = vmdb_db_new(sch);
	srv = vmdb_server_new(db, sock, err, sizeof(err));
	if (!srv)
		return 1;
	/* A local watcher in the server process too. */
	struct vmdb_ctx *lc = vmdb_ctx_new(db, NULL);
	struct seen ls = { 0 };
	vmdb_watch(lc, "/item", seen_cb, &ls);
	/*
	 * Every child is forked before the server thread exists.  fork() copies
	 * only the calling thread: a lock another thread holds at that moment
	 * stays locked in the child for ever.  glibc's malloc takes its arena
	 * locks around fork(), but the ASan allocator of GCC 12's libasan has no
	 * fork handler: when srv_main was inside malloc (answering an earlier
	 * subscriber's HELLO) during a fork, the child hung in its first malloc
	 * (vmdb_wire_put_hello in vmdb_client_connect), main waited for its
	 * "ready" for ever, and the watchdog fired (5 of 120 ASan runs under
	 * load; never in the release build).  So the writers are forked up front
	 * too and wait on a pipe for the go.
	 */
	int pfd[2], gfd[2];
	if (pipe(pfd) || pipe(gfd))
		return 1;
	pid_t subs[S], writers[W];
	for (int i = 0; i < W; i++)
		if ((writers[i] = fork()) == 0) {
			close(gfd[1]); /* so that read() sees the end if main dies */
			writer(sock, i, gfd[0]);
		} else {
			watch_pids[watch_n++] = writers[i];
		}
	for (int i = 0; i < S; i++)
		if ((subs[i] = fork()) == 0) {
			close(gfd[1]);
			subscriber(sock, pfd[1]);
		} else {
			watch_pids[watch_n++] = subs[i];
		}
	/* Subscribers already wait for their WELCOME: connect() got through the backlog. */
	pthread_t th;
	pthread_create(&th, NULL, srv_main, NULL);
	for (int i = 0; i < S; i++) {
		char ch;
		T_EQ_I64(read(pfd[0], &ch, 1), 1);
	}
	int64_t t0 = now_ms();
	static const char go[W];
	T_EQ_I64(write(gfd[1], go, W), W);
	for (int i = 0; i < W; i++) {
		int st;
		waitpid(writers[i], &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			T_FAIL("writer %d: status 0x%x", i, st);
	}
	int64_t t1 = now_ms();
	for (int i = 0; i < S; i++) {
		int st;
		waitpid(subs[i], &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			T_FAIL("subscriber %d: status 0x%x (1 reordered, 2 lost)", i, st);
	}
	vmdb_ctx_dispatch(lc);
	T_EQ_I64(ls.reordered, 0);
	T_EQ_I64(ls.done, NP);
	printf("stress: %d writers x %d sets in %lld ms (%.0f sets/s) with %d remote + 1 local subscribers\n",
	       W, PER * M, (long long)(t1 - t0), (double)NP * M * 1000.0 / (double)(t1 - t0 + 1), S);
	atomic_store(&stop, true);
	pthread_join(th, NULL);
	vmdb_ctx_free(lc);
	vmdb_server_free(srv);
	vmdb_db_free(db);
	vmdb_schema_free(sch);
	rmdir(dir);
	return T_DONE();
}

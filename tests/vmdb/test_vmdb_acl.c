/*
 * test_vmdb_acl.c — access control: a peer of another uid is refused by the
 * server (SO_PEERCRED) even when the socket file lets it connect; with the
 * default socket mode it cannot even connect; an unauthorised ownership
 * claim is refused; the owning uid is served.  Needs root (to setuid the
 * child to 65534); otherwise skipped with exit status 77.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../unit/t.h"
#include "vmdb.h"
#include "vmdb_net.h"

static const char schema_text[] = "/a/count int rw\n/a/locked int ro\n/vm/#/x int ro\n";
static struct vmdb_schema *sch;
static struct vmdb_server *srv;
static atomic_bool stop;

static void *srv_main(void *arg)
{
	while (!atomic_load(&stop)) {
		struct pollfd pfd = { .fd = vmdb_server_fd(srv), .events = POLLIN };
		if (poll(&pfd, 1, 20) > 0)
			vmdb_server_dispatch(srv);
	}
	return NULL;
}

static bool never_own(void *opaque, const struct vmdb_peer_info *p, const char *path)
{
	return false;
}

/* In a child: connect as uid 65534; exit with -rc (0 when served). */
static int try_as_nobody(const char *sock)
{
	pid_t pid = fork();
	if (pid == 0) {
		if (setgid(65534) || setuid(65534))
			_exit(99);
		struct vmdb_db *db = vmdb_db_new(sch);
		struct vmdb_client *cl = vmdb_client_new(db, sock, "intruder", NULL);
		int rc = vmdb_client_connect(cl);
		if (!rc) {
			struct vmdb_ctx *c = vmdb_ctx_new(db, NULL);
			rc = vmdb_set_int(c, "/a/count", 666);
		}
		_exit(-rc);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 200;
}

int main(void)
{
	char err[256];
	if (geteuid() != 0) {
		printf("test_vmdb_acl: needs root to switch uid; skipped\n");
		return 77;
	}
	sch = vmdb_schema_parse(schema_text, strlen(schema_text), err, sizeof(err));
	char dir[] = "/tmp/vmdb-acl-XXXXXX";
	if (!sch || !mkdtemp(dir))
		return 1;
	char sock[128];
	snprintf(sock, sizeof(sock), "%s/s.sock", dir);
	struct vmdb_db *db = vmdb_db_new(sch);
	srv = vmdb_server_new(db, sock, err, sizeof(err));
	if (!srv) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	static const struct vmdb_server_hooks hooks = { .may_own = never_own };
	vmdb_server_set_hooks(srv, &hooks, NULL);
	pthread_t th;
	pthread_create(&th, NULL, srv_main, NULL);

	/* Default modes: the socket is 0600, so another user cannot connect at all. */
	struct stat st;
	T_EQ_I64(stat(sock, &st), 0);
	T_EQ_U64(st.st_mode & 0777, 0600);
	chmod(dir, 0755);
	T_EQ_I64(try_as_nobody(sock), EACCES);
	T_EQ_U64(vmdb_server_refused(srv), 0);              /* the kernel said no */

	/* Opened up: it connects, and the server itself refuses it. */
	chmod(sock, 0666);
	T_EQ_I64(try_as_nobody(sock), EACCES);
	T_EQ_U64(vmdb_server_refused(srv), 1);              /* SO_PEERCRED said no */
	T_EQ_U64(vmdb_server_peer_count(srv), 0);

	/* The owning user is served; a claim nobody granted is refused. */
	struct vmdb_db *mdb = vmdb_db_new(sch);
	struct vmdb_client *cl = vmdb_client_new(mdb, sock, "owner", NULL);
	T_EQ_I64(vmdb_client_connect(cl), 0);
	struct vmdb_ctx *c = vmdb_ctx_new(mdb, NULL);
	T_EQ_I64(vmdb_set_int(c, "/a/count", 1), 0);
	T_EQ_I64(vmdb_set_int(c, "/a/locked", 1), -EACCES);
	struct vmdb_db *mdb2 = vmdb_db_new(sch);
	struct vmdb_client *cl2 = vmdb_client_new(mdb2, sock, "claimer", "/vm/1");
	T_EQ_I64(vmdb_client_connect(cl2), -EPERM);

	struct vmdb_ctx *lc = vmdb_ctx_new(db, NULL);
	int64_t v = 0;
	T_EQ_I64(vmdb_get_int(lc, "/a/count", &v), 0);
	T_EQ_I64(v, 1);                                      /* never 666 */

	vmdb_ctx_free(c);
	vmdb_client_free(cl);
	vmdb_client_free(cl2);
	vmdb_db_free(mdb);
	vmdb_db_free(mdb2);
	atomic_store(&stop, true);
	pthread_join(th, NULL);
	vmdb_server_free(srv);
	vmdb_db_free(db);
	vmdb_schema_free(sch);
	rmdir(dir);
	return T_DONE();
}

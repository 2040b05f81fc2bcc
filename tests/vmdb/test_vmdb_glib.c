/*
 * test_vmdb_glib.c — the GLib adapter: a server and a watching context on
 * one GMainContext; a client in a child process sets a value and the watch
 * fires from the main loop.
 */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../unit/t.h"
#include "vmdb_glib.h"

static const char schema_text[] = "/a/count int rw\n";

static void cb(void *opaque, const char *path, const struct vmdb_value *v)
{
	int64_t *got = opaque;
	if (v)
		*got = v->i;
}

int main(void)
{
	char err[256];
	struct vmdb_schema *sch = vmdb_schema_parse(schema_text, strlen(schema_text), err, sizeof(err));
	char dir[] = "/tmp/vmdb-glib-XXXXXX", sock[128];
	if (!sch || !mkdtemp(dir))
		return 1;
	snprintf(sock, sizeof(sock), "%s/s.sock", dir);
	struct vmdb_db *db = vmdb_db_new(sch);
	struct vmdb_server *srv = vmdb_server_new(db, sock, err, sizeof(err));
	struct vmdb_ctx *c = vmdb_ctx_new(db, NULL);
	int64_t got = 0;
	T_ASSERT(vmdb_watch(c, "/a", cb, &got) > 0);
	T_ASSERT(vmdb_glib_attach_server(srv, NULL) > 0);
	T_ASSERT(vmdb_glib_attach_ctx(c, NULL) > 0);
	pid_t pid = fork();
	if (pid == 0) {
		struct vmdb_db *mdb = vmdb_db_new(sch);
		struct vmdb_client *cl = vmdb_client_new(mdb, sock, "glib-child", NULL);
		struct vmdb_ctx *mc = vmdb_ctx_new(mdb, NULL);
		_exit(vmdb_client_connect(cl) || vmdb_set_int(mc, "/a/count", 42) ? 1 : 0);
	}
	gint64 end = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
	while (got != 42 && g_get_monotonic_time() < end)
		g_main_context_iteration(NULL, TRUE);
	T_EQ_I64(got, 42);
	int st = 0;
	waitpid(pid, &st, 0);
	T_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	vmdb_ctx_free(c);
	vmdb_server_free(srv);
	vmdb_db_free(db);
	vmdb_schema_free(sch);
	rmdir(dir);
	return T_DONE();
}

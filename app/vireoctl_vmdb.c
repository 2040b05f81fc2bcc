/*
 * vireoctl_vmdb.c — vireoctl commands that go through vireod over VMDB.
 * Every command is a short-lived VMDB client: connect (starting vireod if
 * needed), subscribe to what it reads, write a request, wait for the state
 * it expects.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vireoctl_vmdb.h"
#include "vmdb.h"
#include "vmdb_net.h"

struct conn {
	struct vmdb_db *db;
	struct vmdb_client *cl;
	struct vmdb_ctx *ctx;
};

static void err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void err(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("vireoctl: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void start_vireod(void)
{
	char bin[PATH_MAX] = "vireod";
	const char *env = getenv("VIREOD");
	if (env && *env) {
		snprintf(bin, sizeof(bin), "%s", env);
	} else {
		char self[PATH_MAX];
		ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
		if (n > 0) {
			self[n] = 0;
			char *slash = strrchr(self, '/');
			if (slash) {
				*slash = 0;
				char cand[PATH_MAX + 16];
				snprintf(cand, sizeof(cand), "%s/vireod", self);
				if (!access(cand, X_OK))
					snprintf(bin, sizeof(bin), "%s", cand);
			}
		}
	}
	pid_t pid = fork();
	if (pid == 0) {
		/* vireod daemonizes itself; this child returns at once. */
		execlp(bin, bin, (char *)NULL);
		_exit(127);
	}
	if (pid > 0)
		waitpid(pid, NULL, 0);
}

static int vconnect(struct conn *c)
{
	char sock[700];
	int rc = vmdb_default_socket(sock, sizeof(sock));
	if (rc) {
		err("runtime folder: %s", strerror(-rc));
		return -1;
	}
	c->db = vmdb_db_new(vmdb_schema_builtin());
	c->cl = vmdb_client_new(c->db, sock, "vireoctl", NULL);
	c->ctx = vmdb_ctx_new(c->db, NULL);
	rc = vmdb_client_connect(c->cl);
	if (rc == -ENOTCONN) {
		start_vireod();
		int64_t end = now_ms() + 5000;
		while ((rc = vmdb_client_connect(c->cl)) == -ENOTCONN && now_ms() < end)
			usleep(20000);
	}
	if (rc) {
		err("cannot reach vireod at %s: %s", sock, vmdb_strerror(rc));
		return -1;
	}
	return 0;
}

static void vclose(struct conn *c)
{
	vmdb_ctx_free(c->ctx);
	vmdb_client_free(c->cl);
	vmdb_db_free(c->db);
}

/* Pump the connection for up to ms; false once it is gone. */
static bool pump(struct conn *c, int ms)
{
	struct pollfd p = { .fd = vmdb_client_fd(c->cl), .events = POLLIN };
	if (p.fd < 0)
		return false;
	if (poll(&p, 1, ms) > 0 && vmdb_client_dispatch(c->cl))
		return false;
	vmdb_ctx_dispatch(c->ctx);
	return true;
}

static int fail_rc(struct conn *c, const char *what, int rc)
{
	const char *m = vmdb_client_error(c->cl);
	err("%s: %s", what, m && m[0] ? m : vmdb_strerror(rc));
	return 1;
}

/* VM argument: an id, or the path of a registered .vmx.  -1 if unknown. */
static int resolve_vm(struct conn *c, const char *arg)
{
	char *end;
	long id = strtol(arg, &end, 10);
	char p[VMDB_PATH_MAX], buf[PATH_MAX];
	if (*arg && !*end && id >= 0 && id < 1000000000) {
		snprintf(p, sizeof(p), "/vm/%ld/config/path", id);
		if (vmdb_exists(c->ctx, p) == 1)
			return (int)id;
		err("no VM %ld (see `vireoctl list`)", id);
		return -1;
	}
	char real[PATH_MAX];
	const char *want = realpath(arg, real) ? real : arg;
	for (int i = 0; i < 1024; i++) {
		snprintf(p, sizeof(p), "/vm/%d/config/path", i);
		if (vmdb_get(c->ctx, p, buf, sizeof(buf)) >= 0 && !strcmp(buf, want))
			return i;
	}
	err("%s is not registered (vireoctl register %s)", arg, arg);
	return -1;
}

static void vmget(struct conn *c, int id, const char *rel, char *buf, size_t len)
{
	char p[VMDB_PATH_MAX];
	snprintf(p, sizeof(p), "/vm/%d/%s", id, rel);
	if (vmdb_get(c->ctx, p, buf, len) < 0)
		snprintf(buf, len, "-");
}

static int vmset(struct conn *c, int id, const char *rel, const char *val)
{
	char p[VMDB_PATH_MAX];
	snprintf(p, sizeof(p), "/vm/%d/%s", id, rel);
	int rc = vmdb_set(c->ctx, p, val);
	return rc ? fail_rc(c, p, rc) : 0;
}

struct ids {
	int n;
	int id[1024];
};

static void ids_cb(void *opaque, const char *name, bool leaf)
{
	struct ids *s = opaque;
	if (s->n < 1024)
		s->id[s->n++] = atoi(name);
}

/* Connect, mirror /vm, and resolve argv[0] as a VM if want_vm. */
static int open_vm(struct conn *c, int argc, char **argv, bool want_vm, int *id)
{
	if (vconnect(c))
		return 1;
	int rc = vmdb_client_subscribe(c->cl, "/vm");
	if (rc)
		return fail_rc(c, "/vm", rc);
	if (want_vm) {
		if (argc < 1) {
			err("which VM? (an id from `vireoctl list`, or a .vmx path)");
			return 2;
		}
		*id = resolve_vm(c, argv[0]);
		if (*id < 0)
			return 1;
	}
	return 0;
}

int vireoctl_cmd_list(int argc, char **argv)
{
	struct conn c = { 0 };
	int rc = open_vm(&c, argc, argv, false, NULL);
	if (rc) {
		vclose(&c);
		return rc;
	}
	struct ids s = { 0 };
	vmdb_list(c.ctx, "/vm", ids_cb, &s);
	printf("%-4s %-10s %-20s %s\n", "ID", "POWER", "NAME", "PATH");
	for (int i = 0; i < s.n; i++) {
		char pw[32], name[128], path[PATH_MAX];
		vmget(&c, s.id[i], "state/power", pw, sizeof(pw));
		vmget(&c, s.id[i], "config/name", name, sizeof(name));
		vmget(&c, s.id[i], "config/path", path, sizeof(path));
		printf("%-4d %-10s %-20s %s\n", s.id[i], pw, name, path);
	}
	vclose(&c);
	return 0;
}

int vireoctl_cmd_status(int argc, char **argv)
{
	if (argc < 1)
		return vireoctl_cmd_list(argc, argv);
	struct conn c = { 0 };
	int id = -1;
	int rc = open_vm(&c, argc, argv, true, &id);
	if (!rc) {
		static const char *const keys[] = { "config/path", "config/name", "state/power",
		                                    "state/reason", "state/pid", "state/connected",
		                                    "state/exitstatus" };
		printf("id: %d\n", id);
		for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
			char v[PATH_MAX];
			vmget(&c, id, keys[k], v, sizeof(v));
			printf("%s: %s\n", strchr(keys[k], '/') + 1, v);
		}
	}
	vclose(&c);
	return rc;
}

struct waitpow {
	int id;
	bool changed;
};

static void pow_cb(void *opaque, const char *path, const struct vmdb_value *v)
{
	struct waitpow *w = opaque;
	char want[64];
	snprintf(want, sizeof(want), "/vm/%d/state/power", w->id);
	if (!strcmp(path, want) || (!v && !strncmp(want, path, strlen(path))))
		w->changed = true;
}

/* Wait until the power state is target; fail if it lands on bad after a change. */
static int await_power(struct conn *c, int id, const char *target, const char *bad,
                       int timeout_ms, struct waitpow *w)
{
	int64_t end = now_ms() + timeout_ms;
	char pw[32], why[512];
	for (;;) {
		vmget(c, id, "state/power", pw, sizeof(pw));
		if (!strcmp(pw, target))
			return 0;
		if (w->changed && bad && !strcmp(pw, bad)) {
			vmget(c, id, "state/reason", why, sizeof(why));
			err("VM %d is %s: %s", id, pw, why);
			return 1;
		}
		if (now_ms() >= end) {
			err("VM %d: still %s after %d s", id, pw, timeout_ms / 1000);
			return 1;
		}
		if (!pump(c, 100)) {
			err("lost the connection to vireod");
			return 1;
		}
	}
}

int vireoctl_cmd_start(int argc, char **argv)
{
	struct conn c = { 0 };
	int id = -1;
	int rc = open_vm(&c, argc, argv, true, &id);
	if (!rc) {
		char pw[32];
		vmget(&c, id, "state/power", pw, sizeof(pw));
		if (strcmp(pw, "off")) {
			printf("VM %d is already %s\n", id, pw);
		} else {
			struct waitpow w = { .id = id };
			char p[64];
			snprintf(p, sizeof(p), "/vm/%d/state", id);
			vmdb_watch(c.ctx, p, pow_cb, &w);
			rc = vmset(&c, id, "request/power", "on");
			if (!rc)
				rc = await_power(&c, id, "on", "off", 30000, &w);
			if (!rc)
				printf("VM %d is on\n", id);
		}
	}
	vclose(&c);
	return rc;
}

int vireoctl_cmd_stop(int argc, char **argv)
{
	bool hard = false;
	if (argc > 0 && !strcmp(argv[0], "--hard")) {
		hard = true;
		argc--;
		argv++;
	}
	struct conn c = { 0 };
	int id = -1;
	int rc = open_vm(&c, argc, argv, true, &id);
	if (!rc) {
		char pw[32], why[512];
		vmget(&c, id, "state/power", pw, sizeof(pw));
		if (!strcmp(pw, "off")) {
			printf("VM %d is already off\n", id);
		} else {
			struct waitpow w = { .id = id };
			rc = vmset(&c, id, "request/power", hard ? "hardoff" : "off");
			if (!rc)
				rc = await_power(&c, id, "off", NULL, hard ? 15000 : 60000, &w);
			if (!rc) {
				vmget(&c, id, "state/reason", why, sizeof(why));
				printf("VM %d is off (%s)\n", id, why);
			}
		}
	}
	vclose(&c);
	return rc;
}

int vireoctl_cmd_reset(int argc, char **argv)
{
	struct conn c = { 0 };
	int id = -1;
	int rc = open_vm(&c, argc, argv, true, &id);
	if (!rc) {
		char pw[32];
		vmget(&c, id, "state/power", pw, sizeof(pw));
		if (strcmp(pw, "on")) {
			err("VM %d is %s, not on", id, pw);
			rc = 1;
		} else {
			rc = vmset(&c, id, "request/power", "reset");
			if (!rc)
				printf("VM %d: reset requested\n", id);
		}
	}
	vclose(&c);
	return rc;
}

struct found {
	char path[PATH_MAX];
	int id;
};

static void reg_cb(void *opaque, const char *path, const struct vmdb_value *v)
{
	struct found *f = opaque;
	int id;
	char rest[32];
	if (v && v->s && sscanf(path, "/vm/%d/config/%31s", &id, rest) == 2 &&
	    !strcmp(rest, "path") && !strcmp(v->s, f->path))
		f->id = id;
}

int vireoctl_cmd_register(int argc, char **argv)
{
	if (argc != 1) {
		err("usage: vireoctl register PATH.vmx");
		return 2;
	}
	struct found f = { .id = -1 };
	if (!realpath(argv[0], f.path)) {
		err("%s: %s", argv[0], strerror(errno));
		return 1;
	}
	struct conn c = { 0 };
	int rc = open_vm(&c, 0, NULL, false, NULL);
	if (!rc) {
		vmdb_watch(c.ctx, "/vm", reg_cb, &f);
		int r = vmdb_set(c.ctx, "/vireod/request/register", f.path);
		if (r) {
			rc = fail_rc(&c, "register", r);
		} else {
			int64_t end = now_ms() + 5000;
			while (f.id < 0 && now_ms() < end && pump(&c, 100))
				;
			if (f.id < 0) {
				err("vireod did not register %s (see its log)", f.path);
				rc = 1;
			} else {
				printf("%d\n", f.id);
			}
		}
	}
	vclose(&c);
	return rc;
}

int vireoctl_cmd_unregister(int argc, char **argv)
{
	struct conn c = { 0 };
	int id = -1;
	int rc = open_vm(&c, argc, argv, true, &id);
	if (!rc) {
		int r = vmdb_set_int(c.ctx, "/vireod/request/unregister", id);
		if (r) {
			rc = fail_rc(&c, "unregister", r);
		} else {
			char p[32];
			snprintf(p, sizeof(p), "/vm/%d", id);
			int64_t end = now_ms() + 5000;
			while (vmdb_exists(c.ctx, p) == 1 && now_ms() < end && pump(&c, 100))
				;
			rc = vmdb_exists(c.ctx, p) == 1;
			if (rc)
				err("VM %d is still registered", id);
		}
	}
	vclose(&c);
	return rc;
}

static void print_leaf(void *opaque, const char *path, const struct vmdb_value *v)
{
	char buf[VMDB_STRING_MAX + 1];
	vmdb_value_format(v, buf, sizeof(buf));
	printf("%s = %s\n", path, buf);
}

int vireoctl_cmd_get(int argc, char **argv)
{
	if (argc != 1) {
		err("usage: vireoctl get PATH");
		return 2;
	}
	struct conn c = { 0 };
	if (vconnect(&c)) {
		vclose(&c);
		return 1;
	}
	int rc = vmdb_client_subscribe(c.cl, argv[0]);
	if (rc) {
		rc = fail_rc(&c, argv[0], rc);
	} else {
		enum vmdb_type t;
		vmdb_schema_lookup(vmdb_schema_builtin(), argv[0], &t, NULL, NULL, NULL);
		char buf[VMDB_STRING_MAX + 1];
		if (t != VMDB_T_NONE) {
			int r = vmdb_get(c.ctx, argv[0], buf, sizeof(buf));
			if (r < 0) {
				err("%s: %s", argv[0], vmdb_strerror(r));
				rc = 1;
			} else {
				printf("%s\n", buf);
			}
		} else if (vmdb_walk(c.ctx, argv[0], print_leaf, NULL) <= 0) {
			err("%s: %s", argv[0], vmdb_strerror(-ENOENT));
			rc = 1;
		}
	}
	vclose(&c);
	return rc;
}

int vireoctl_cmd_set(int argc, char **argv)
{
	if (argc != 2) {
		err("usage: vireoctl set PATH VALUE");
		return 2;
	}
	struct conn c = { 0 };
	if (vconnect(&c)) {
		vclose(&c);
		return 1;
	}
	int r = vmdb_set(c.ctx, argv[0], argv[1]);
	int rc = r ? fail_rc(&c, argv[0], r) : 0;
	vclose(&c);
	return rc;
}

struct watchst {
	long count, seen;
};

static void watch_cb(void *opaque, const char *path, const struct vmdb_value *v)
{
	struct watchst *w = opaque;
	if (v)
		print_leaf(NULL, path, v);
	else
		printf("%s deleted\n", path);
	fflush(stdout);
	w->seen++;
}

int vireoctl_cmd_watch(int argc, char **argv)
{
	const char *path = NULL;
	struct watchst w = { .count = -1 };
	long timeout = -1;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--count") && i + 1 < argc)
			w.count = strtol(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--timeout") && i + 1 < argc)
			timeout = strtol(argv[++i], NULL, 10);
		else if (!path && argv[i][0] == '/')
			path = argv[i];
		else {
			err("usage: vireoctl watch PATH [--count N] [--timeout SEC]");
			return 2;
		}
	}
	if (!path) {
		err("usage: vireoctl watch PATH [--count N] [--timeout SEC]");
		return 2;
	}
	struct conn c = { 0 };
	if (vconnect(&c)) {
		vclose(&c);
		return 1;
	}
	int rc = vmdb_client_subscribe(c.cl, path);
	if (rc) {
		rc = fail_rc(&c, path, rc);
		vclose(&c);
		return rc;
	}
	/* Watch after the snapshot: only changes from now on are printed. */
	vmdb_watch(c.ctx, path, watch_cb, &w);
	signal(SIGPIPE, SIG_DFL);
	int64_t end = timeout >= 0 ? now_ms() + timeout * 1000 : INT64_MAX;
	while ((w.count < 0 || w.seen < w.count) && now_ms() < end) {
		if (!pump(&c, 200)) {
			err("lost the connection to vireod");
			rc = 1;
			break;
		}
	}
	vclose(&c);
	return rc;
}

/* ---- guest tools: guestinfo variables and the balloon (issue #7) ---- */

static const char *gi_strip(const char *key)
{
	return strncasecmp(key, "guestinfo.", 10) == 0 ? key + 10 : key;
}

/* Index of guestinfo NAME in /vm/<id>/guest/info, or -1. */
static int gi_find(struct conn *c, int id, const char *name, char *value, size_t vlen)
{
	char buf[64], rel[64], n[256];
	vmget(c, id, "guest/info_count", buf, sizeof(buf));
	int count = atoi(buf);
	for (int i = 0; i < count && i < 1024; i++) {
		snprintf(rel, sizeof(rel), "guest/info/%d/name", i);
		vmget(c, id, rel, n, sizeof(n));
		if (!strcasecmp(n, name)) {
			snprintf(rel, sizeof(rel), "guest/info/%d/value", i);
			vmget(c, id, rel, value, vlen);
			return i;
		}
	}
	return -1;
}

int vireoctl_cmd_guestinfo(int argc, char **argv)
{
	if (argc < 1 || argc > 3) {
		err("usage: vireoctl guestinfo VM [KEY [VALUE]]");
		return 2;
	}
	struct conn c = { 0 };
	int id = -1;
	int rc = open_vm(&c, argc, argv, true, &id);
	if (rc) {
		vclose(&c);
		return rc;
	}
	char pw[32], value[VMDB_STRING_MAX + 1];
	vmget(&c, id, "state/power", pw, sizeof(pw));
	if (argc == 1) {
		char buf[64], rel[64], n[256];
		vmget(&c, id, "guest/info_count", buf, sizeof(buf));
		int count = atoi(buf);
		for (int i = 0; i < count && i < 1024; i++) {
			snprintf(rel, sizeof(rel), "guest/info/%d/name", i);
			vmget(&c, id, rel, n, sizeof(n));
			snprintf(rel, sizeof(rel), "guest/info/%d/value", i);
			vmget(&c, id, rel, value, sizeof(value));
			printf("guestinfo.%s = %s\n", n, value);
		}
	} else if (argc == 2) {
		if (gi_find(&c, id, gi_strip(argv[1]), value, sizeof(value)) < 0) {
			err("guestinfo.%s: No value found", gi_strip(argv[1]));
			rc = 1;
		} else {
			printf("%s\n", value);
		}
	} else {
		const char *name = gi_strip(argv[1]);
		char req[VMDB_STRING_MAX + 1];
		if (strcmp(pw, "on")) {
			err("VM %d is %s: guestinfo is set in a running VM (or as guestinfo.%s in its .vmx)",
			    id, pw, name);
			rc = 1;
		} else if (!*name || strchr(name, '=') ||
		           snprintf(req, sizeof(req), "%s=%s", name, argv[2]) >= (int)sizeof(req)) {
			err("guestinfo: bad key, or value too long");
			rc = 2;
		} else {
			rc = vmset(&c, id, "request/guestinfo", req);
			/* Wait until the vmx has taken it (it publishes the variable). */
			int64_t end = now_ms() + 5000;
			while (!rc) {
				if (gi_find(&c, id, name, value, sizeof(value)) >= 0 &&
				    !strcmp(value, argv[2]))
					break;
				if (now_ms() >= end || !pump(&c, 100)) {
					err("VM %d did not take guestinfo.%s", id, name);
					rc = 1;
				}
			}
		}
	}
	vclose(&c);
	return rc;
}

int vireoctl_cmd_balloon(int argc, char **argv)
{
	if (argc != 2) {
		err("usage: vireoctl balloon VM MB");
		return 2;
	}
	char *end;
	unsigned long long mb = strtoull(argv[1], &end, 10);
	if (!*argv[1] || *end || mb > 1048576) {
		err("balloon: \"%s\" is not a size in MB (0..1048576)", argv[1]);
		return 2;
	}
	struct conn c = { 0 };
	int id = -1;
	int rc = open_vm(&c, argc, argv, true, &id);
	if (!rc) {
		char pw[32], v[32], size[32];
		vmget(&c, id, "state/power", pw, sizeof(pw));
		if (strcmp(pw, "on")) {
			err("VM %d is %s, not on", id, pw);
			rc = 1;
		} else {
			snprintf(v, sizeof(v), "%llu", mb);
			rc = vmset(&c, id, "request/balloon_mb", v);
			if (!rc) {
				vmget(&c, id, "guest/balloon/size_mb", size, sizeof(size));
				printf("VM %d: balloon target %llu MB (now %s MB)\n", id, mb, size);
			}
		}
	}
	vclose(&c);
	return rc;
}

/* ---- screenshot (owner: vnc) ---- */

/*
 * The vmx writes the PNG itself (it has the picture), so the path goes to it
 * absolute; the answer in state/screenshot names the path and a counter.
 */
int vireoctl_cmd_screenshot(int argc, char **argv)
{
	if (argc != 2) {
		err("usage: vireoctl screenshot VM FILE.png");
		return 2;
	}
	char path[PATH_MAX];
	if (argv[1][0] == '/') {
		snprintf(path, sizeof(path), "%s", argv[1]);
	} else {
		char cwd[PATH_MAX];
		if (!getcwd(cwd, sizeof(cwd))) {
			err("screenshot: cannot read the current folder");
			return 1;
		}
		snprintf(path, sizeof(path), "%s/%s", cwd, argv[1]);
	}
	struct conn c = { 0 };
	int id = -1;
	int rc = open_vm(&c, argc, argv, true, &id);
	if (!rc) {
		char pw[32], before[PATH_MAX + 64], now[PATH_MAX + 64];
		vmget(&c, id, "state/power", pw, sizeof(pw));
		if (strcmp(pw, "on")) {
			err("VM %d is %s, not on", id, pw);
			vclose(&c);
			return 1;
		}
		vmget(&c, id, "state/screenshot", before, sizeof(before));
		/* Clear first: the same path twice is still a change the vmx sees. */
		rc = vmset(&c, id, "request/screenshot", "");
		if (!rc)
			rc = vmset(&c, id, "request/screenshot", path);
		int64_t end = now_ms() + 20000;
		while (!rc) {
			vmget(&c, id, "state/screenshot", now, sizeof(now));
			if (strcmp(now, before) && strstr(now, path)) {
				if (!strncmp(now, "ok ", 3)) {
					printf("%s\n", path);
				} else {
					err("screenshot: %s", now);
					rc = 1;
				}
				break;
			}
			if (now_ms() >= end) {
				err("VM %d did not answer the screenshot request in 20 s", id);
				rc = 1;
				break;
			}
			if (!pump(&c, 100)) {
				err("lost the connection to vireod");
				rc = 1;
				break;
			}
		}
	}
	vclose(&c);
	return rc;
}

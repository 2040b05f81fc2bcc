/*
 * vireod — the per-user host agent: VMDB root, VM inventory, and the
 * parent of every vireo-vmx.
 *
 *   vireod [--foreground] [--socket PATH]
 *
 * Socket:    $XDG_RUNTIME_DIR/vireo/vmdb.sock (else /tmp/vireo-$UID/)
 * Inventory: $XDG_CONFIG_HOME/vireo/inventory (else ~/.config/vireo/),
 *            "ID<TAB>PATH" lines, rewritten atomically.
 * Running:   <runtime>/running, "ID PID" of each live vmx, so that a
 *            restarted vireod finds its VMs again (they reconnect to it).
 *
 * Power: a client writes /vm/<id>/request/power.  "on" is vireod's: it
 * spawns `vireo-vmx PATH.vmx` with VIREO_VMDB_SOCK and VIREO_VM_ID set; the
 * other requests are the vmx's, with vireod as the fallback (SIGTERM for
 * off while the vmx is not linked, SIGKILL 3 s after hardoff).  When a vmx
 * exits, state goes to off with the reason.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/pidfd.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../vmx/config.h"
#include "vmdb.h"
#include "vmdb_net.h"

#define VIREOD_MAX_VMS 1024

enum vm_power { P_OFF, P_STARTING, P_ON, P_SUSPENDED, P_STOPPING };

struct vm {
	bool used;
	char path[PATH_MAX];
	pid_t pid;           /* 0: no vmx */
	bool child;          /* ours to waitpid; else watched through pidfd */
	int pidfd;
	bool linked;         /* its vmx is connected and owns /vm/<id> */
	bool hard;           /* hardoff asked */
	uint64_t kill_at;    /* ns: SIGKILL if still alive */
	uint64_t started;    /* ns */
};

static struct {
	struct vmdb_db *db;
	struct vmdb_server *srv;
	struct vmdb_ctx *ctx;
	int epfd, sigfd, tfd;
	char rundir[512], sock[600], inventory[PATH_MAX], running[600], vmx_bin[PATH_MAX];
	struct vm vms[VIREOD_MAX_VMS];
	bool quit;
} D;

static void dlog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void dlog(const char *fmt, ...)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	localtime_r(&ts.tv_sec, &tm);
	char t[32];
	strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%S", &tm);
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "%s.%03ld vireod[%d]: ", t, ts.tv_nsec / 1000000, (int)getpid());
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void vset(unsigned id, const char *rel, const char *val)
{
	char p[VMDB_PATH_MAX];
	snprintf(p, sizeof(p), "/vm/%u/%s", id, rel);
	int rc = vmdb_set(D.ctx, p, val);
	if (rc)
		dlog("set %s = %s: %s", p, val, vmdb_strerror(rc));
}

static void vset_int(unsigned id, const char *rel, int64_t v)
{
	char p[VMDB_PATH_MAX];
	snprintf(p, sizeof(p), "/vm/%u/%s", id, rel);
	vmdb_set_int(D.ctx, p, v);
}

static void vget(unsigned id, const char *rel, char *buf, size_t len)
{
	char p[VMDB_PATH_MAX];
	snprintf(p, sizeof(p), "/vm/%u/%s", id, rel);
	if (vmdb_get(D.ctx, p, buf, len) < 0)
		buf[0] = 0;
}

/* ---- files ---- */

static int write_atomic(const char *path, const char *text)
{
	char err[512];
	if (vmx_write_file_atomic(path, text, strlen(text), err, sizeof(err))) {
		dlog("%s", err);
		return -1;
	}
	return 0;
}

static void save_inventory(void)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	if (!buf)
		return;
	buf[0] = 0;
	for (unsigned i = 0; i < VIREOD_MAX_VMS; i++) {
		if (!D.vms[i].used)
			continue;
		size_t need = strlen(D.vms[i].path) + 16;
		if (len + need >= cap) {
			char *nb = realloc(buf, cap = (len + need) * 2);
			if (!nb) {
				free(buf);
				return;
			}
			buf = nb;
		}
		len += (size_t)sprintf(buf + len, "%u\t%s\n", i, D.vms[i].path);
	}
	write_atomic(D.inventory, buf);
	free(buf);
}

static void save_running(void)
{
	char buf[VIREOD_MAX_VMS * 24 + 1] = "";
	size_t len = 0;
	for (unsigned i = 0; i < VIREOD_MAX_VMS; i++)
		if (D.vms[i].used && D.vms[i].pid > 0)
			len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%u %d\n", i, (int)D.vms[i].pid);
	write_atomic(D.running, buf);
}

/* Publish what the .vmx says about the VM (best effort). */
static void publish_config(unsigned id)
{
	struct vm *v = &D.vms[id];
	char err[512];
	vmdb_begin(D.ctx);
	vset(id, "config/path", v->path);
	struct vmxcfg *cfg = vmxcfg_load(v->path, err, sizeof(err));
	if (cfg) {
		const char *s;
		if ((s = vmxcfg_get(cfg, "displayName")))
			vset(id, "config/name", s);
		if ((s = vmxcfg_get(cfg, "memsize")))
			vset(id, "config/memsize", s);
		if ((s = vmxcfg_get(cfg, "numvcpus")))
			vset(id, "config/numvcpus", s);
		if ((s = vmxcfg_get(cfg, "monitor.engine")))
			vset(id, "config/engine", s);
		vmxcfg_free(cfg);
	}
	vset(id, "state/power", "off");
	vset(id, "state/connected", "false");
	vmdb_commit(D.ctx);
}

static int check_vmx_file(const char *path, char *msg, size_t len)
{
	struct stat st;
	size_t n = strlen(path);
	if (path[0] != '/' || n < 5 || strcmp(path + n - 4, ".vmx")) {
		snprintf(msg, len, "%s: not an absolute path to a .vmx file", path);
		return -EINVAL;
	}
	if (stat(path, &st) || !S_ISREG(st.st_mode) || access(path, R_OK)) {
		snprintf(msg, len, "%s: cannot read it", path);
		return -ENOENT;
	}
	for (unsigned i = 0; i < VIREOD_MAX_VMS; i++)
		if (D.vms[i].used && !strcmp(D.vms[i].path, path)) {
			snprintf(msg, len, "%s: already registered as %u", path, i);
			return -EEXIST;
		}
	return 0;
}

static void load_inventory(void)
{
	FILE *f = fopen(D.inventory, "r");
	if (!f)
		return;
	char line[PATH_MAX + 32];
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		char *tab = strchr(line, '\t');
		if (!tab)
			continue;
		*tab = 0;
		char *end;
		unsigned long id = strtoul(line, &end, 10);
		if (*end || id >= VIREOD_MAX_VMS || D.vms[id].used || tab[1] != '/')
			continue;
		D.vms[id].used = true;
		D.vms[id].pidfd = -1;
		snprintf(D.vms[id].path, sizeof(D.vms[id].path), "%s", tab + 1);
		publish_config((unsigned)id);
	}
	fclose(f);
}

/* A vmx still running from before a vireod restart: watch it and wait for it to reconnect. */
static void adopt_running(void)
{
	FILE *f = fopen(D.running, "r");
	if (!f)
		return;
	unsigned id;
	int pid;
	while (fscanf(f, "%u %d", &id, &pid) == 2) {
		if (id >= VIREOD_MAX_VMS || !D.vms[id].used || pid <= 1 || kill(pid, 0))
			continue;
		/* The pid must still be a vmx running this VM's file, not a reused pid. */
		char p[64], cmd[PATH_MAX + 256];
		snprintf(p, sizeof(p), "/proc/%d/cmdline", pid);
		FILE *c = fopen(p, "r");
		size_t n = c ? fread(cmd, 1, sizeof(cmd) - 1, c) : 0;
		if (c)
			fclose(c);
		bool match = false;
		for (size_t off = 0; off < n; off += strlen(cmd + off) + 1) {
			cmd[n] = 0;
			if (!strcmp(cmd + off, D.vms[id].path))
				match = true;
		}
		if (!match)
			continue;
		int pfd = pidfd_open(pid, 0);
		if (pfd < 0)
			continue;
		struct vm *v = &D.vms[id];
		v->pid = pid;
		v->child = false;
		v->pidfd = pfd;
		v->started = now_ns();
		struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 1000 + id };
		epoll_ctl(D.epfd, EPOLL_CTL_ADD, pfd, &ev);
		vmdb_begin(D.ctx);
		vset(id, "state/power", "on");
		vset(id, "state/reason", "recovered after a vireod restart");
		vset_int(id, "state/pid", pid);
		vmdb_commit(D.ctx);
		dlog("vm %u: adopted running vmx pid %d", id, pid);
	}
	fclose(f);
	save_running();
}

/* ---- power ---- */

static void spawn_vmx(unsigned id)
{
	struct vm *v = &D.vms[id];
	char log[700], idbuf[16];
	snprintf(log, sizeof(log), "%s/vm-%u.log", D.rundir, id);
	snprintf(idbuf, sizeof(idbuf), "%u", id);
	pid_t pid = fork();
	if (pid < 0) {
		vset(id, "state/reason", "cannot fork");
		return;
	}
	if (pid == 0) {
		sigset_t all;
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		setsid();
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		int nul = open("/dev/null", O_RDONLY);
		if (nul >= 0)
			dup2(nul, 0);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		setenv("VIREO_VMDB_SOCK", D.sock, 1);
		setenv("VIREO_VM_ID", idbuf, 1);
		execl(D.vmx_bin, D.vmx_bin, v->path, (char *)NULL);
		fprintf(stderr, "vireod: exec %s: %s\n", D.vmx_bin, strerror(errno));
		_exit(127);
	}
	v->pid = pid;
	v->child = true;
	v->linked = false;
	v->hard = false;
	v->kill_at = 0;
	v->started = now_ns();
	vmdb_begin(D.ctx);
	vset(id, "state/power", "starting");
	vset(id, "state/reason", "");
	vset_int(id, "state/pid", pid);
	vmdb_commit(D.ctx);
	save_running();
	dlog("vm %u: started %s %s (pid %d)", id, D.vmx_bin, v->path, (int)pid);
}

static void vm_gone(unsigned id, const char *reason, int status)
{
	struct vm *v = &D.vms[id];
	char cur[32], why[512];
	vget(id, "state/power", cur, sizeof(cur));
	vget(id, "state/reason", why, sizeof(why));
	/* A vmx that said why it went off (status 0) keeps its own reason. */
	if (!(status <= 0 && !strcmp(cur, "off") && why[0]))
		snprintf(why, sizeof(why), "%s", reason);
	if (v->pidfd >= 0) {
		epoll_ctl(D.epfd, EPOLL_CTL_DEL, v->pidfd, NULL);
		close(v->pidfd);
		v->pidfd = -1;
	}
	v->pid = 0;
	v->linked = false;
	v->kill_at = 0;
	char p[VMDB_PATH_MAX];
	vmdb_begin(D.ctx);
	vset(id, "state/power", "off");
	vset(id, "state/reason", why);
	if (status >= 0)
		vset_int(id, "state/exitstatus", status);
	snprintf(p, sizeof(p), "/vm/%u/state/pid", id);
	vmdb_delete(D.ctx, p);
	vset(id, "state/connected", "false");
	vset(id, "request/power", "none");
	vmdb_commit(D.ctx);
	save_running();
	dlog("vm %u: off: %s", id, why);
}

static void reap(void)
{
	int st;
	pid_t pid;
	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		for (unsigned i = 0; i < VIREOD_MAX_VMS; i++) {
			struct vm *v = &D.vms[i];
			if (!v->used || v->pid != pid || !v->child)
				continue;
			char why[128];
			if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
				snprintf(why, sizeof(why), "vmx exited");
			else if (WIFEXITED(st))
				snprintf(why, sizeof(why), "vmx failed (exit status %d; see %s/vm-%u.log)",
				         WEXITSTATUS(st), D.rundir, i);
			else if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL && v->hard)
				snprintf(why, sizeof(why), "powered off (hard)");
			else
				snprintf(why, sizeof(why), "vmx crashed (killed by signal %d)",
				         WIFSIGNALED(st) ? WTERMSIG(st) : 0);
			vm_gone(i, why, WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
		}
	}
}

static void on_power_request(unsigned id, const char *req)
{
	struct vm *v = &D.vms[id];
	if (!v->used || !strcmp(req, "none"))
		return;
	if (!strcmp(req, "on")) {
		if (!v->pid)
			spawn_vmx(id);
		return;
	}
	if (!v->pid) {
		vset(id, "request/power", "none"); /* nothing to act on */
		return;
	}
	if (!strcmp(req, "hardoff")) {
		v->hard = true;
		v->kill_at = now_ns() + 3000000000ull;
		if (!v->linked)
			v->kill_at = now_ns();
	} else if (!strcmp(req, "off") && !v->linked) {
		/* Not on the bus (yet): its signal handler powers off. */
		kill(v->pid, SIGTERM);
		v->kill_at = now_ns() + 10000000000ull;
	}
}

static void on_change(void *opaque, const char *path, const struct vmdb_value *val)
{
	unsigned id;
	char leaf[64];
	if (!val)
		return;
	if (sscanf(path, "/vm/%u/request/%63s", &id, leaf) == 2 && id < VIREOD_MAX_VMS &&
	    !strcmp(leaf, "power")) {
		on_power_request(id, val->s ? val->s : "");
		return;
	}
	if (!strcmp(path, "/vireod/request/register") && val->s && val->s[0]) {
		char msg[512];
		if (check_vmx_file(val->s, msg, sizeof(msg))) {
			dlog("register: %s", msg);
			return;
		}
		for (unsigned i = 0; i < VIREOD_MAX_VMS; i++)
			if (!D.vms[i].used) {
				D.vms[i].used = true;
				D.vms[i].pidfd = -1;
				snprintf(D.vms[i].path, sizeof(D.vms[i].path), "%s", val->s);
				save_inventory();
				publish_config(i);
				dlog("vm %u: registered %s", i, val->s);
				break;
			}
		return;
	}
	if (!strcmp(path, "/vireod/request/unregister")) {
		int64_t i = val->i;
		if (i >= 0 && i < VIREOD_MAX_VMS && D.vms[i].used && !D.vms[i].pid) {
			char p[32];
			D.vms[i].used = false;
			save_inventory();
			snprintf(p, sizeof(p), "/vm/%u", (unsigned)i);
			vmdb_delete(D.ctx, p);
			dlog("vm %u: unregistered", (unsigned)i);
		}
	}
}

/* ---- VMDB hooks ---- */

static bool hook_may_own(void *opaque, const struct vmdb_peer_info *p, const char *path)
{
	unsigned id;
	char rest;
	if (sscanf(path, "/vm/%u%c", &id, &rest) != 1 || id >= VIREOD_MAX_VMS)
		return false;
	/* Only the process we started (or adopted) for this VM. */
	return D.vms[id].used && D.vms[id].pid > 0 && D.vms[id].pid == p->pid;
}

static int hook_validate(void *opaque, const struct vmdb_peer_info *p,
                         const struct vmdb_op *ops, unsigned n, char *msg, size_t len)
{
	for (unsigned k = 0; k < n; k++) {
		const struct vmdb_op *op = &ops[k];
		unsigned id;
		if (op->kind != VMDB_OP_SET)
			continue;
		if (!strcmp(op->path, "/vireod/request/register")) {
			int rc = op->v.s ? check_vmx_file(op->v.s, msg, len) : -EINVAL;
			if (rc)
				return rc;
		} else if (!strcmp(op->path, "/vireod/request/unregister")) {
			if (op->v.i < 0 || op->v.i >= VIREOD_MAX_VMS || !D.vms[op->v.i].used) {
				snprintf(msg, len, "no VM %lld", (long long)op->v.i);
				return -ENOENT;
			}
			if (D.vms[op->v.i].pid) {
				snprintf(msg, len, "VM %lld is running: stop it first", (long long)op->v.i);
				return -EBUSY;
			}
		} else if (sscanf(op->path, "/vm/%u/", &id) == 1 &&
		           (id >= VIREOD_MAX_VMS || !D.vms[id].used) &&
		           !(p->own && p->own[0])) {
			snprintf(msg, len, "no VM %u", id);
			return -ENOENT;
		}
	}
	return 0;
}

static void hook_peer(const struct vmdb_peer_info *p, bool up)
{
	unsigned id;
	if (!p->own || sscanf(p->own, "/vm/%u", &id) != 1 || id >= VIREOD_MAX_VMS || !D.vms[id].used)
		return;
	D.vms[id].linked = up;
	vset(id, "state/connected", up ? "true" : "false");
	dlog("vm %u: vmx pid %d %s", id, (int)p->pid, up ? "linked" : "unlinked");
}

static void hook_up(void *opaque, const struct vmdb_peer_info *p) { hook_peer(p, true); }
static void hook_down(void *opaque, const struct vmdb_peer_info *p) { hook_peer(p, false); }

static const struct vmdb_server_hooks hooks = {
	.may_own = hook_may_own, .validate = hook_validate,
	.peer_up = hook_up, .peer_down = hook_down,
};

/* ---- timers ---- */

static void tick(void)
{
	uint64_t now = now_ns();
	for (unsigned i = 0; i < VIREOD_MAX_VMS; i++) {
		struct vm *v = &D.vms[i];
		if (!v->used || !v->pid)
			continue;
		if (v->kill_at && now >= v->kill_at) {
			dlog("vm %u: pid %d did not stop: SIGKILL", i, (int)v->pid);
			v->hard = true;
			kill(v->pid, SIGKILL);
			v->kill_at = 0;
		}
		/* A vmx that runs without linking to the bus is on as far as we know. */
		char cur[32];
		vget(i, "state/power", cur, sizeof(cur));
		if (!strcmp(cur, "starting") && !v->linked && now - v->started > 3000000000ull)
			vset(i, "state/power", "on");
	}
}

/* ---- main ---- */

static int find_vmx_bin(void)
{
	const char *env = getenv("VIREO_VMX");
	if (env && *env) {
		snprintf(D.vmx_bin, sizeof(D.vmx_bin), "%s", env);
		return 0;
	}
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = 0;
		char *slash = strrchr(self, '/');
		if (slash) {
			*slash = 0;
			snprintf(D.vmx_bin, sizeof(D.vmx_bin), "%s/vireo-vmx", self);
			if (!access(D.vmx_bin, X_OK))
				return 0;
		}
	}
	snprintf(D.vmx_bin, sizeof(D.vmx_bin), "/usr/bin/vireo-vmx");
	return 0;
}

static int setup_paths(const char *sock)
{
	int rc = vmdb_runtime_dir(D.rundir, sizeof(D.rundir));
	if (rc) {
		fprintf(stderr, "vireod: runtime folder: %s\n", strerror(-rc));
		return -1;
	}
	snprintf(D.sock, sizeof(D.sock), "%s", sock ? sock : "");
	if (!sock)
		snprintf(D.sock, sizeof(D.sock), "%s/vmdb.sock", D.rundir);
	snprintf(D.running, sizeof(D.running), "%s/running", D.rundir);
	const char *cfg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	char dir[PATH_MAX];
	if (cfg && cfg[0] == '/')
		snprintf(dir, sizeof(dir), "%s/vireo", cfg);
	else
		snprintf(dir, sizeof(dir), "%s/.config/vireo", home ? home : "/tmp");
	char parent[PATH_MAX];
	snprintf(parent, sizeof(parent), "%s", dir);
	char *s = strrchr(parent, '/');
	if (s && s != parent) {
		*s = 0;
		mkdir(parent, 0700);
	}
	mkdir(dir, 0700);
	snprintf(D.inventory, sizeof(D.inventory), "%s/inventory", dir);
	return 0;
}

int main(int argc, char **argv)
{
	bool fg = false;
	const char *sock = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--foreground") || !strcmp(argv[i], "-f"))
			fg = true;
		else if (!strcmp(argv[i], "--socket") && i + 1 < argc)
			sock = argv[++i];
		else {
			fprintf(stderr, "usage: vireod [--foreground] [--socket PATH]\n");
			return 2;
		}
	}
	if (setup_paths(sock))
		return 1;
	find_vmx_bin();
	if (!fg) {
		pid_t pid = fork();
		if (pid < 0)
			return 1;
		if (pid > 0)
			return 0;
		setsid();
		char log[700];
		snprintf(log, sizeof(log), "%s/vireod.log", D.rundir);
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		int nul = open("/dev/null", O_RDWR);
		if (nul >= 0) {
			dup2(nul, 0);
			dup2(nul, 1);
		}
		if (fd >= 0)
			dup2(fd, 2);
	}
	/* One vireod per user: the lock is held for the life of the process. */
	char lockp[700];
	snprintf(lockp, sizeof(lockp), "%s/vireod.lock", D.rundir);
	int lfd = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lfd < 0 || flock(lfd, LOCK_EX | LOCK_NB)) {
		dlog("another vireod is running");
		return 0;
	}
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	D.sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	D.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	struct itimerspec its = { .it_interval = { 0, 250000000 }, .it_value = { 0, 250000000 } };
	timerfd_settime(D.tfd, 0, &its, NULL);
	D.epfd = epoll_create1(EPOLL_CLOEXEC);

	char err[512];
	D.db = vmdb_db_new(vmdb_schema_builtin());
	D.srv = vmdb_server_new(D.db, D.sock, err, sizeof(err));
	if (!D.srv) {
		dlog("%s", err);
		return 1;
	}
	vmdb_server_set_hooks(D.srv, &hooks, NULL);
	D.ctx = vmdb_ctx_new(D.db, NULL);
	vmdb_set(D.ctx, "/vireod/version", VIREO_VERSION);
	vmdb_set_int(D.ctx, "/vireod/pid", getpid());
	vmdb_set(D.ctx, "/vireod/vmx", D.vmx_bin);
	vmdb_watch(D.ctx, "/vm", on_change, NULL);
	vmdb_watch(D.ctx, "/vireod/request", on_change, NULL);
	load_inventory();
	adopt_running();
	/* Our own publishing so far is not a request. */
	vmdb_ctx_dispatch(D.ctx);

	struct epoll_event ev = { .events = EPOLLIN };
	ev.data.u64 = 1;
	epoll_ctl(D.epfd, EPOLL_CTL_ADD, vmdb_server_fd(D.srv), &ev);
	ev.data.u64 = 2;
	epoll_ctl(D.epfd, EPOLL_CTL_ADD, vmdb_ctx_fd(D.ctx), &ev);
	ev.data.u64 = 3;
	epoll_ctl(D.epfd, EPOLL_CTL_ADD, D.sigfd, &ev);
	ev.data.u64 = 4;
	epoll_ctl(D.epfd, EPOLL_CTL_ADD, D.tfd, &ev);
	dlog("listening on %s (vmx: %s, inventory: %s)", D.sock, D.vmx_bin, D.inventory);

	while (!D.quit) {
		struct epoll_event evs[16];
		int n = epoll_wait(D.epfd, evs, 16, -1);
		for (int i = 0; i < n; i++) {
			uint64_t k = evs[i].data.u64;
			if (k == 1) {
				vmdb_server_dispatch(D.srv);
			} else if (k == 2) {
				vmdb_ctx_dispatch(D.ctx);
			} else if (k == 3) {
				struct signalfd_siginfo si;
				while (read(D.sigfd, &si, sizeof(si)) == sizeof(si)) {
					if (si.ssi_signo == SIGCHLD)
						reap();
					else
						D.quit = true;
				}
			} else if (k == 4) {
				uint64_t x;
				if (read(D.tfd, &x, sizeof(x)) > 0)
					tick();
			} else if (k >= 1000 && k < 1000 + VIREOD_MAX_VMS) {
				vm_gone((unsigned)(k - 1000), "vmx exited (status unknown: vireod had restarted)", -1);
			}
		}
	}
	/* Running VMs stay up: the next vireod adopts them. */
	dlog("exiting; %u peers dropped", vmdb_server_peer_count(D.srv));
	vmdb_server_free(D.srv);
	vmdb_ctx_free(D.ctx);
	vmdb_db_free(D.db);
	return 0;
}

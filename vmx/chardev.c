/*
 * chardev.c — file, pipe (Unix socket server), pty and stdio back ends.
 *
 * Locking: cd->lock (CHARDEV_RANK, above VMX_RANK_DEVICE so a UART may
 * write while holding its own lock) guards the output fd, which the loop
 * thread replaces when a pipe client comes or goes.  Input fds are touched
 * only on the loop thread.
 */
#include "chardev.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "config.h"
#include "lock.h"
#include "log.h"
#include "loop.h"
#include "vm.h"

#define CHARDEV_RANK (VMX_RANK_DEVICE + 5)

enum chardev_type { CD_FILE, CD_PIPE, CD_PTY, CD_STDIO };

struct chardev {
	struct vmx_vm *vm;
	struct vmx_loop *loop;
	char label[32];
	enum chardev_type type;
	char *path;

	struct vmx_mutex lock;
	int out_fd;              /* -1: output dropped */
	int in_fd;               /* polled on the loop (-1: none) */
	int listen_fd;           /* pipe */
	int pty_slave_fd;        /* pty: kept open so the master never sees HUP */
	char pty_name[64];
	bool in_registered;

	struct chardev_frontend fe;
	atomic_bool rx_blocked;
	atomic_ullong dropped;
	bool drop_logged;
	atomic_bool connected;

	/* stdio escape state: after Ctrl-A */
	bool escape;
};

/* ---- the terminal: raw while running, restored however we leave ---- */

static struct termios stdio_saved;
static volatile sig_atomic_t stdio_raw;
static bool stdio_in_use;

static void stdio_restore(void)
{
	if (stdio_raw) {
		tcsetattr(STDIN_FILENO, TCSANOW, &stdio_saved);
		stdio_raw = 0;
	}
}

/* Async-signal-safe: put the terminal back, then die of the same signal. */
static void stdio_signal(int sig)
{
	if (stdio_raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &stdio_saved);
	stdio_raw = 0;
	signal(sig, SIG_DFL);
	raise(sig);
}

static void stdio_make_raw(void)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGABRT, SIGSEGV, SIGBUS };
	static bool atexit_done;
	struct termios t;

	if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &stdio_saved) != 0)
		return;
	t = stdio_saved;
	t.c_iflag &= ~(tcflag_t)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
	t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
	t.c_cflag &= ~(tcflag_t)(CSIZE | PARENB);
	t.c_cflag |= CS8;
	/* Output processing stays on: host log lines on the same tty stay readable. */
	t.c_oflag |= OPOST;
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	if (!atexit_done) {
		atexit(stdio_restore);
		/* Only where nobody else installed a handler: theirs must exit() through atexit. */
		for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
			struct sigaction old;
			if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_DFL) {
				struct sigaction sa;
				memset(&sa, 0, sizeof(sa));
				sa.sa_handler = stdio_signal;
				sigemptyset(&sa.sa_mask);
				sa.sa_flags = SA_RESETHAND;
				sigaction(sigs[i], &sa, NULL);
			}
		}
		atexit_done = true;
	}
	if (tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0)
		stdio_raw = 1;
}

/* ---- output ---- */

static void chardev_count_drop(struct chardev *cd, size_t n)
{
	atomic_fetch_add(&cd->dropped, n);
	if (!cd->drop_logged && cd->type != CD_PIPE) {
		cd->drop_logged = true;
		vlog_warn("%s: output is not being read; dropping bytes", cd->label);
	}
}

size_t chardev_write(struct chardev *cd, const uint8_t *buf, size_t len)
{
	size_t done = 0;

	if (!cd || !len)
		return 0;
	vmx_mutex_lock(&cd->lock);
	while (cd->out_fd >= 0 && done < len) {
		ssize_t n = cd->type == CD_PIPE
		        ? send(cd->out_fd, buf + done, len - done, MSG_DONTWAIT | MSG_NOSIGNAL)
		        : write(cd->out_fd, buf + done, len - done);
		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		/* EAGAIN: the peer is slow; anything else: the loop sees the hang-up. */
		break;
	}
	if (done < len)
		chardev_count_drop(cd, len - done);
	vmx_mutex_unlock(&cd->lock);
	return done;
}

uint64_t chardev_dropped(const struct chardev *cd)
{
	return cd ? atomic_load(&((struct chardev *)cd)->dropped) : 0;
}

bool chardev_connected(const struct chardev *cd)
{
	return cd && atomic_load(&((struct chardev *)cd)->connected);
}

const char *chardev_pty_name(const struct chardev *cd)
{
	return cd && cd->type == CD_PTY ? cd->pty_name : NULL;
}

/* ---- input (loop thread) ---- */

static void chardev_in_cb(void *opaque, uint32_t events);

static void chardev_deliver(struct chardev *cd, const uint8_t *buf, size_t len)
{
	if (cd->fe.receive && len)
		cd->fe.receive(cd->fe.opaque, buf, len);
}

/* The stdio escape: Ctrl-A x quits, Ctrl-A Ctrl-A is a literal Ctrl-A. */
static size_t chardev_filter_stdio(struct chardev *cd, uint8_t *buf, size_t len)
{
	size_t out = 0;

	for (size_t i = 0; i < len; i++) {
		uint8_t c = buf[i];
		if (cd->escape) {
			cd->escape = false;
			if (c == 'x' || c == 'X') {
				stdio_restore();
				fprintf(stderr, "\r\nvireo: Ctrl-A x: powering off\r\n");
				if (cd->vm)
					vmx_vm_request_power(cd->vm, VMX_POWER_OFF, "Ctrl-A x on the console");
				return out;
			}
			if (c == 'h' || c == 'H' || c == '?') {
				fprintf(stderr, "\r\nCtrl-A x  power off the VM\r\n"
				                "Ctrl-A Ctrl-A  send Ctrl-A\r\n");
				continue;
			}
			if (c != 0x01)
				buf[out++] = 0x01;
			buf[out++] = c;
			continue;
		}
		if (c == 0x01) {
			cd->escape = true;
			continue;
		}
		buf[out++] = c;
	}
	return out;
}

static void chardev_stop_input(struct chardev *cd)
{
	if (cd->in_registered) {
		vmx_loop_del_fd(cd->loop, cd->in_fd);
		cd->in_registered = false;
	}
}

static void chardev_pipe_drop_client(struct chardev *cd)
{
	int fd;

	chardev_stop_input(cd);
	vmx_mutex_lock(&cd->lock);
	fd = cd->out_fd;
	cd->out_fd = -1;
	vmx_mutex_unlock(&cd->lock);
	if (fd >= 0)
		close(fd);
	cd->in_fd = -1;
	atomic_store(&cd->connected, false);
	atomic_store(&cd->rx_blocked, false);
	vlog_info("%s: pipe client disconnected", cd->label);
	/* Take the next client waiting in the backlog. */
	if (cd->listen_fd >= 0)
		vmx_loop_mod_fd(cd->loop, cd->listen_fd, EPOLLIN);
}

static void chardev_in_cb(void *opaque, uint32_t events)
{
	struct chardev *cd = opaque;
	uint8_t buf[256];
	size_t room;
	ssize_t n;

	room = cd->fe.can_read ? cd->fe.can_read(cd->fe.opaque) : sizeof(buf);
	if (room == 0) {
		if (events & (EPOLLHUP | EPOLLERR | EPOLLRDHUP)) {
			if (cd->type == CD_PIPE)
				chardev_pipe_drop_client(cd);
			else
				chardev_stop_input(cd);
			return;
		}
		/* Stop polling until the front end drains; re-check to close the race. */
		atomic_store(&cd->rx_blocked, true);
		vmx_loop_mod_fd(cd->loop, cd->in_fd, 0);
		if (cd->fe.can_read(cd->fe.opaque) > 0 && atomic_exchange(&cd->rx_blocked, false))
			vmx_loop_mod_fd(cd->loop, cd->in_fd, EPOLLIN | (cd->type == CD_PIPE ? EPOLLRDHUP : 0));
		return;
	}
	if (room > sizeof(buf))
		room = sizeof(buf);
	n = read(cd->in_fd, buf, room);
	if (n > 0) {
		size_t len = (size_t)n;
		if (cd->type == CD_STDIO)
			len = chardev_filter_stdio(cd, buf, len);
		chardev_deliver(cd, buf, len);
		return;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	/* End of input or an error. */
	if (cd->type == CD_PIPE)
		chardev_pipe_drop_client(cd);
	else
		chardev_stop_input(cd);
}

static void chardev_resume_cb(void *opaque)
{
	struct chardev *cd = opaque;

	if (cd->in_registered && cd->in_fd >= 0)
		vmx_loop_mod_fd(cd->loop, cd->in_fd, EPOLLIN | (cd->type == CD_PIPE ? EPOLLRDHUP : 0));
}

void chardev_accept_input(struct chardev *cd)
{
	if (cd && atomic_exchange(&cd->rx_blocked, false))
		vmx_loop_call(cd->loop, chardev_resume_cb, cd);
}

static int chardev_start_input(struct chardev *cd, uint32_t extra)
{
	if (cd->in_fd < 0 || !cd->loop)
		return 0;
	if (vmx_loop_add_fd(cd->loop, cd->in_fd, EPOLLIN | extra, chardev_in_cb, cd) != 0)
		return -1;
	cd->in_registered = true;
	return 0;
}

static void chardev_accept_cb(void *opaque, uint32_t events)
{
	struct chardev *cd = opaque;
	int fd;

	if (cd->in_fd >= 0)
		return;
	fd = accept4(cd->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	vmx_mutex_lock(&cd->lock);
	cd->out_fd = fd;
	vmx_mutex_unlock(&cd->lock);
	cd->in_fd = fd;
	atomic_store(&cd->rx_blocked, false);
	if (chardev_start_input(cd, EPOLLRDHUP) != 0) {
		vlog_warn("%s: cannot poll the pipe client: %s", cd->label, strerror(errno));
		vmx_mutex_lock(&cd->lock);
		cd->out_fd = -1;
		vmx_mutex_unlock(&cd->lock);
		cd->in_fd = -1;
		close(fd);
		return;
	}
	atomic_store(&cd->connected, true);
	/* One client at a time: others wait in the backlog until this one leaves. */
	vmx_loop_mod_fd(cd->loop, cd->listen_fd, 0);
	vlog_info("%s: pipe client connected", cd->label);
}

/* ---- opening ---- */

static int chardev_open_pipe(struct chardev *cd, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	struct stat st;
	int fd;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(cd->path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "%s.fileName = \"%s\": a pipe path is at most %zu bytes",
		         cd->label, cd->path, sizeof(sa.sun_path) - 1);
		return -1;
	}
	memcpy(sa.sun_path, cd->path, strlen(cd->path) + 1);
	/* A stale socket from an earlier run is ours to replace; anything else is not. */
	if (lstat(cd->path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "%s.fileName = \"%s\": exists and is not a socket",
			         cd->label, cd->path);
			return -1;
		}
		unlink(cd->path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 4) != 0) {
		snprintf(err, errlen, "%s.fileName = \"%s\": cannot listen: %s", cd->label, cd->path,
		         strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	cd->listen_fd = fd;
	if (cd->loop && vmx_loop_add_fd(cd->loop, fd, EPOLLIN, chardev_accept_cb, cd) != 0) {
		snprintf(err, errlen, "%s: cannot poll the pipe: %s", cd->label, strerror(errno));
		return -1;
	}
	vlog_info("%s: listening on pipe %s", cd->label, cd->path);
	return 0;
}

static int chardev_open_pty(struct chardev *cd, char *err, size_t errlen)
{
	struct termios t;
	const char *name;
	int fd = posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0 || grantpt(fd) != 0 || unlockpt(fd) != 0 || !(name = ptsname(fd))) {
		snprintf(err, errlen, "%s: cannot open a pty: %s", cd->label, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	snprintf(cd->pty_name, sizeof(cd->pty_name), "%s", name);
	cd->pty_slave_fd = open(cd->pty_name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	/* Raw, so a terminal program on the other end sees the guest's bytes. */
	if (cd->pty_slave_fd >= 0 && tcgetattr(cd->pty_slave_fd, &t) == 0) {
		cfmakeraw(&t);
		tcsetattr(cd->pty_slave_fd, TCSANOW, &t);
	}
	cd->out_fd = fd;
	cd->in_fd = fd;
	vlog_info("%s: pty %s", cd->label, cd->pty_name);
	if (cd->path && cd->path[0]) {
		char line[80];
		int n = snprintf(line, sizeof(line), "%s\n", cd->pty_name);
		if (vmx_write_file_atomic(cd->path, line, (size_t)n, err, errlen) != 0)
			return -1;
	}
	return chardev_start_input(cd, 0) == 0 ? 0 : -1;
}

static int chardev_open_stdio(struct chardev *cd, char *err, size_t errlen)
{
	struct stat st;

	if (stdio_in_use) {
		snprintf(err, errlen, "%s.fileType = \"stdio\": the terminal is already used by another port",
		         cd->label);
		return -1;
	}
	/* A new open file description, so O_NONBLOCK does not leak into stderr's. */
	cd->out_fd = open("/proc/self/fd/1", O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_APPEND);
	if (cd->out_fd < 0)
		cd->out_fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
	if (cd->out_fd < 0) {
		snprintf(err, errlen, "%s: stdout: %s", cd->label, strerror(errno));
		return -1;
	}
	stdio_in_use = true;
	/* Regular files and /dev/null cannot be polled: then there is no input. */
	if (fstat(STDIN_FILENO, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
		cd->in_fd = STDIN_FILENO;
		stdio_make_raw();
		if (chardev_start_input(cd, 0) != 0) {
			stdio_restore();
			cd->in_fd = -1;
		}
	}
	if (stdio_raw)
		vlog_info("%s: on this terminal (Ctrl-A x powers off)", cd->label);
	return 0;
}

struct chardev *chardev_open(struct vmx_vm *vm, struct vmx_loop *loop, const char *label,
                             const char *type, const char *path, char *err, size_t errlen)
{
	struct chardev *cd = calloc(1, sizeof(*cd));
	int rc;

	if (!cd) {
		snprintf(err, errlen, "%s: out of memory", label);
		return NULL;
	}
	cd->vm = vm;
	cd->loop = loop;
	snprintf(cd->label, sizeof(cd->label), "%s", label);
	cd->out_fd = cd->in_fd = cd->listen_fd = cd->pty_slave_fd = -1;
	cd->path = path ? strdup(path) : NULL;
	vmx_mutex_init(&cd->lock, CHARDEV_RANK, "chardev");
	atomic_store(&cd->connected, true);

	if (strcasecmp(type, "file") == 0) {
		cd->type = CD_FILE;
		if (!path || !path[0]) {
			snprintf(err, errlen, "%s.fileName: needed for fileType \"file\"", label);
			rc = -1;
		} else {
			cd->out_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_NONBLOCK | O_CLOEXEC, 0644);
			rc = cd->out_fd < 0 ? -1 : 0;
			if (rc)
				snprintf(err, errlen, "%s.fileName = \"%s\": %s", label, path, strerror(errno));
		}
	} else if (strcasecmp(type, "pipe") == 0) {
		cd->type = CD_PIPE;
		atomic_store(&cd->connected, false);
		if (!path || !path[0]) {
			snprintf(err, errlen, "%s.fileName: needed for fileType \"pipe\"", label);
			rc = -1;
		} else {
			rc = chardev_open_pipe(cd, err, errlen);
		}
	} else if (strcasecmp(type, "pty") == 0) {
		cd->type = CD_PTY;
		rc = chardev_open_pty(cd, err, errlen);
	} else if (strcasecmp(type, "stdio") == 0) {
		cd->type = CD_STDIO;
		rc = chardev_open_stdio(cd, err, errlen);
	} else {
		snprintf(err, errlen, "%s.fileType = \"%s\": not supported (file, pipe, pty or stdio)",
		         label, type);
		rc = -1;
	}
	if (rc != 0) {
		chardev_close(cd);
		return NULL;
	}
	return cd;
}

void chardev_close(struct chardev *cd)
{
	if (!cd)
		return;
	chardev_stop_input(cd);
	if (cd->listen_fd >= 0) {
		if (cd->loop)
			vmx_loop_del_fd(cd->loop, cd->listen_fd);
		close(cd->listen_fd);
		if (cd->path)
			unlink(cd->path);
	}
	if (cd->type == CD_STDIO) {
		stdio_restore();
		stdio_in_use = false;
	}
	if (cd->out_fd >= 0)
		close(cd->out_fd);
	if (cd->in_fd >= 0 && cd->in_fd != cd->out_fd && cd->in_fd != STDIN_FILENO)
		close(cd->in_fd);
	if (cd->pty_slave_fd >= 0)
		close(cd->pty_slave_fd);
	if (cd->drop_logged || atomic_load(&cd->dropped))
		vlog_info("%s: %llu output bytes dropped", cd->label,
		          (unsigned long long)atomic_load(&cd->dropped));
	vmx_mutex_destroy(&cd->lock);
	free(cd->path);
	free(cd);
}

void chardev_set_frontend(struct chardev *cd, const struct chardev_frontend *fe)
{
	if (cd && fe)
		cd->fe = *fe;
}

/* ---- from the .vmx ---- */

/* Relative file names are relative to the VM's folder, as in VMware. */
static char *chardev_resolve(struct vmx_vm *vm, const char *name)
{
	char *p;

	if (!name || name[0] == '/' || !vm || !vm->dir)
		return name ? strdup(name) : NULL;
	if (asprintf(&p, "%s/%s", vm->dir, name) < 0)
		return NULL;
	return p;
}

int chardev_open_serial(struct vmx_vm *vm, unsigned index, struct chardev **out,
                        char *err, size_t errlen)
{
	static const char *const types[] = { "file", "pipe", "pty", "stdio", "network", "device", NULL };
	char label[16], key[64];
	const char *type = NULL, *endpoint;
	bool present;
	char *path;

	*out = NULL;
	snprintf(label, sizeof(label), "serial%u", index);
	snprintf(key, sizeof(key), "%s.present", label);
	if (vmxcfg_get_bool(vm->cfg, key, false, &present, err, errlen) != 0)
		return -1;
	if (!present)
		return 0;
	snprintf(key, sizeof(key), "%s.fileType", label);
	if (vmxcfg_get_enum(vm->cfg, key, NULL, types, &type, err, errlen) != 0)
		return -1;
	if (!type) {
		vlog_info("%s: no fileType: output is discarded", label);
		return 0;
	}
	if (strcasecmp(type, "network") == 0 || strcasecmp(type, "device") == 0) {
		snprintf(err, errlen, "%s:%u: %s = \"%s\": not supported by Vireo (use file, pipe, pty or stdio)",
		         vmxcfg_path(vm->cfg) ? vmxcfg_path(vm->cfg) : "config",
		         vmxcfg_line(vm->cfg, key), key, type);
		return -1;
	}
	snprintf(key, sizeof(key), "%s.pipe.endPoint", label);
	endpoint = vmxcfg_get(vm->cfg, key);
	if (strcasecmp(type, "pipe") == 0 && endpoint && strcasecmp(endpoint, "server") != 0) {
		snprintf(err, errlen, "%s:%u: %s = \"%s\": Vireo is always the server end",
		         vmxcfg_path(vm->cfg) ? vmxcfg_path(vm->cfg) : "config",
		         vmxcfg_line(vm->cfg, key), key, endpoint);
		return -1;
	}
	snprintf(key, sizeof(key), "%s.fileName", label);
	path = chardev_resolve(vm, vmxcfg_get(vm->cfg, key));
	*out = chardev_open(vm, vm->loop, label, type, path, err, errlen);
	free(path);
	return *out ? 0 : -1;
}

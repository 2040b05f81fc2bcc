/*
 * test_chardev.c — serial back ends with real peers: a file, a Unix-socket
 * pipe with socat on the other end (input with flow control, the receive
 * timeout interrupt, output, reconnection), a pty, and refused config.
 *
 * The poll loop runs on its own thread, as in vireo-vmx; this thread plays
 * the vCPU that touches the UART's registers.
 */
#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "tests/devices/devtest.h"
#include "tests/unit/t.h"
#include "vmx/chardev.h"
#include "vmx/platform.h"

#define COM1 PLAT_PORT_COM1
enum { RBR = 0, IER = 1, IIR = 2, FCR = 2, LCR = 3, MCR = 4, LSR = 5 };

static char dir[] = "/tmp/vireo-chardev-XXXXXX";

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static char *slurp(const char *path)
{
	static char buf[4096];
	int fd = open(path, O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;

	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = 0;
	return buf;
}

static bool have_program(const char *name)
{
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", name);
	return system(cmd) == 0;
}

/* ---- file ---- */

static void test_file(void)
{
	char vmx[512], path[256];
	struct devtest *t;
	int fd;

	snprintf(path, sizeof(path), "%s/com1.txt", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	T_ASSERT(fd >= 0 && write(fd, "old|", 4) == 4);
	close(fd);
	snprintf(vmx, sizeof(vmx),
	         "serial0.present = \"TRUE\"\nserial0.fileType = \"file\"\nserial0.fileName = \"%s\"\n",
	         path);
	t = devtest_new(vmx);
	T_ASSERT(t != NULL);
	if (!t)
		return;
	T_EQ_I64(devtest_add(t, "serial0"), 0);
	for (const char *p = "hello\n"; *p; p++)
		devtest_out(t, COM1 + RBR, 1, (uint8_t)*p);
	T_STREQ(slurp(path), "old|hello\n");
	devtest_free(t);
}

/* ---- pipe, with socat as the client ---- */

struct peer {
	pid_t pid;
	int in_w;        /* what we write reaches the guest */
};

static bool peer_start(struct peer *p, const char *sock, const char *outfile)
{
	int pfd[2];
	char addr[300];

	if (pipe(pfd) != 0)
		return false;
	snprintf(addr, sizeof(addr), "UNIX-CONNECT:%s", sock);
	p->pid = fork();
	if (p->pid == 0) {
		int o = open(outfile, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(pfd[0], 0);
		dup2(o, 1);
		close(pfd[1]);
		execlp("socat", "socat", "-t", "1", addr, "STDIO", (char *)NULL);
		_exit(127);
	}
	close(pfd[0]);
	p->in_w = pfd[1];
	return p->pid > 0;
}

static int peer_finish(struct peer *p)
{
	int st = 0;

	if (p->in_w >= 0)
		close(p->in_w);
	p->in_w = -1;
	for (int i = 0; i < 500; i++) {
		if (waitpid(p->pid, &st, WNOHANG) == p->pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
		sleep_ms(10);
	}
	kill(p->pid, SIGKILL);
	waitpid(p->pid, &st, 0);
	return -1;
}

static void *loop_thread(void *arg)
{
	devtest_run_loop(arg, 20000);
	return NULL;
}

static void loop_quit(void *opaque)
{
	vmx_loop_quit(opaque, 0);
}

/* Read what the UART has received until `want` bytes came or ~3 s passed. */
static size_t uart_drain(struct devtest *t, char *buf, size_t want, bool *overrun)
{
	size_t got = 0;

	for (int spins = 0; got < want && spins < 300; ) {
		uint8_t lsr = (uint8_t)devtest_in(t, COM1 + LSR, 1);
		if (lsr & 0x02)
			*overrun = true;
		if (lsr & 0x01) {
			buf[got++] = (char)devtest_in(t, COM1 + RBR, 1);
			continue;
		}
		sleep_ms(10);
		spins++;
	}
	return got;
}

static void test_pipe(void)
{
	char vmx[512], sock[256], outfile[256], buf[128];
	struct devtest *t;
	struct peer p = { .in_w = -1 };
	pthread_t th;
	bool overrun = false;
	uint8_t iir = 0;
	size_t n;

	snprintf(sock, sizeof(sock), "%s/com1.sock", dir);
	snprintf(outfile, sizeof(outfile), "%s/peer.out", dir);
	snprintf(vmx, sizeof(vmx),
	         "serial0.present = \"TRUE\"\nserial0.fileType = \"pipe\"\nserial0.fileName = \"%s\"\n",
	         sock);
	t = devtest_new(vmx);
	T_ASSERT(t != NULL);
	if (!t)
		return;
	T_EQ_I64(devtest_add(t, "serial0"), 0);

	/* The driver's setup: 8N1, FIFO with trigger 8, RX interrupts, OUT2. */
	devtest_out(t, COM1 + LCR, 1, 0x03);
	devtest_out(t, COM1 + FCR, 1, 0x87);
	devtest_out(t, COM1 + MCR, 1, 0x0B);
	devtest_out(t, COM1 + IER, 1, 0x01);

	/* Output with no client is dropped, not queued, and never blocks. */
	devtest_out(t, COM1 + RBR, 1, '!');

	pthread_create(&th, NULL, loop_thread, t);
	T_ASSERT(peer_start(&p, sock, outfile));

	/* Two bytes, below the trigger: only the character timeout reports them. */
	T_ASSERT(write(p.in_w, "hi", 2) == 2);
	for (int i = 0; i < 300; i++) {
		iir = (uint8_t)devtest_in(t, COM1 + IIR, 1);
		if ((iir & 0x0F) != 0x01)
			break;
		sleep_ms(10);
	}
	T_EQ_U64(iir, 0xCC);
	T_ASSERT(devtest_gsi_level(t, PLAT_IRQ_COM1));
	n = uart_drain(t, buf, 2, &overrun);
	T_EQ_U64(n, 2);
	T_MEMEQ(buf, "hi", 2);
	T_EQ_U64(devtest_in(t, COM1 + IIR, 1), 0xC1);
	T_ASSERT(!devtest_gsi_level(t, PLAT_IRQ_COM1));

	/* 100 bytes through a 16-byte FIFO: flow control, nothing lost or overrun. */
	{
		char msg[101];
		for (int i = 0; i < 100; i++)
			msg[i] = (char)('A' + i % 26);
		T_ASSERT(write(p.in_w, msg, 100) == 100);
		sleep_ms(100);        /* let the back end fill the FIFO and stop */
		n = uart_drain(t, buf, 100, &overrun);
		T_EQ_U64(n, 100);
		T_MEMEQ(buf, msg, 100);
		T_ASSERT(!overrun);
	}

	/* Output reaches the client. */
	for (const char *s = "out!"; *s; s++)
		devtest_out(t, COM1 + RBR, 1, (uint8_t)*s);
	T_EQ_I64(peer_finish(&p), 0);
	T_STREQ(slurp(outfile), "out!");

	/* The listener takes the next client after the first has gone. */
	T_ASSERT(peer_start(&p, sock, outfile));
	T_ASSERT(write(p.in_w, "2", 1) == 1);
	n = uart_drain(t, buf, 1, &overrun);
	T_EQ_U64(n, 1);
	T_EQ_U64(buf[0], '2');
	T_EQ_I64(peer_finish(&p), 0);

	vmx_loop_call(t->vm->loop, loop_quit, t->vm->loop);
	pthread_join(th, NULL);
	devtest_free(t);
	/* The socket file is removed on close. */
	T_ASSERT(access(sock, F_OK) != 0);
}

/* ---- the chardev API directly: drops, pty, refused types ---- */

static void test_api(void)
{
	struct devtest *t = devtest_new("serial0.present = \"TRUE\"\nserial0.fileType = \"network\"\n"
	                                "serial1.present = \"TRUE\"\nserial1.fileType = \"pipe\"\n"
	                                "serial1.pipe.endPoint = \"client\"\nserial1.fileName = \"x\"\n");
	struct chardev *cd = NULL;
	char err[512] = "", path[256], name[64] = "";

	T_ASSERT(t != NULL);
	if (!t)
		return;
	T_EQ_I64(chardev_open_serial(t->vm, 0, &cd, err, sizeof(err)), -1);
	T_CONTAINS(err, "serial0.fileType");
	T_CONTAINS(err, "network");
	err[0] = 0;
	T_EQ_I64(chardev_open_serial(t->vm, 1, &cd, err, sizeof(err)), -1);
	T_CONTAINS(err, "serial1.pipe.endPoint");
	T_ASSERT(cd == NULL);
	T_EQ_I64(devtest_add(t, "serial0"), -1);

	/* A pipe with no client drops and counts. */
	snprintf(path, sizeof(path), "%s/drop.sock", dir);
	cd = chardev_open(t->vm, t->vm->loop, "serialT", "pipe", path, err, sizeof(err));
	T_ASSERT(cd != NULL);
	if (cd) {
		T_ASSERT(!chardev_connected(cd));
		T_EQ_U64(chardev_write(cd, (const uint8_t *)"abc", 3), 0);
		T_EQ_U64(chardev_dropped(cd), 3);
		chardev_close(cd);
	}
	/* A path that is a regular file is not ours to replace. */
	snprintf(path, sizeof(path), "%s/com1.txt", dir);
	T_ASSERT(chardev_open(t->vm, t->vm->loop, "serialT", "pipe", path, err, sizeof(err)) == NULL);
	T_CONTAINS(err, "not a socket");

	/* pty: the name goes to the log and to fileName; output reaches the slave. */
	snprintf(path, sizeof(path), "%s/pty-name", dir);
	cd = chardev_open(t->vm, t->vm->loop, "serialT", "pty", path, err, sizeof(err));
	T_ASSERT(cd != NULL);
	if (cd) {
		const char *pn = chardev_pty_name(cd);
		int fd;
		T_ASSERT(pn && strncmp(pn, "/dev/pts/", 9) == 0);
		snprintf(name, sizeof(name), "%s\n", pn ? pn : "");
		T_STREQ(slurp(path), name);
		fd = pn ? open(pn, O_RDWR | O_NOCTTY) : -1;
		T_ASSERT(fd >= 0);
		T_EQ_U64(chardev_write(cd, (const uint8_t *)"pty!", 4), 4);
		if (fd >= 0) {
			char b[8] = "";
			sleep_ms(20);
			T_EQ_I64(read(fd, b, sizeof(b)), 4);
			T_MEMEQ(b, "pty!", 4);
			close(fd);
		}
		chardev_close(cd);
	}
	T_ASSERT(chardev_open(t->vm, t->vm->loop, "serialT", "file", NULL, err, sizeof(err)) == NULL);
	T_CONTAINS(err, "serialT.fileName");
	devtest_free(t);
}

/*
 * stdio on a terminal: raw while open (bytes arrive one by one, no echo),
 * Ctrl-A Ctrl-A is a literal Ctrl-A, Ctrl-A x requests power-off, and the
 * terminal's settings come back on close.  Runs in a child whose stdin and
 * stdout are a pty slave; this process types on the master.
 */
static void test_stdio(void)
{
	int master = posix_openpt(O_RDWR | O_NOCTTY);
	pid_t pid;
	int st = 0;

	if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0) {
		T_FAIL("no pty for the stdio test");
		return;
	}
	pid = fork();
	if (pid == 0) {
		int slave = open(ptsname(master), O_RDWR | O_NOCTTY);
		struct termios before, during, after;
		struct devtest *t;
		pthread_t th;
		char got[8];
		size_t n;
		bool overrun = false;
		enum vmx_power_request req = VMX_POWER_NONE;

		close(master);
		dup2(slave, 0);
		dup2(slave, 1);
		tcgetattr(0, &before);
		t = devtest_new("serial0.present = \"TRUE\"\nserial0.fileType = \"stdio\"\n");
		if (!t || devtest_add(t, "serial0") != 0)
			_exit(10);
		tcgetattr(0, &during);
		if (during.c_lflag & (ICANON | ECHO))
			_exit(11);
		devtest_out(t, COM1 + FCR, 1, 0x07);      /* trigger 1 */
		pthread_create(&th, NULL, loop_thread, t);
		if (write(1, "ready\n", 6) != 6)
			_exit(12);
		n = uart_drain(t, got, 3, &overrun);
		if (n != 3 || memcmp(got, "a\x01" "b", 3) != 0) {
			fprintf(stderr, "stdio child: got %zu bytes: %02x %02x %02x\n", n,
			        (uint8_t)got[0], (uint8_t)got[1], (uint8_t)got[2]);
			_exit(13);
		}
		/* The loop acts on the power-off request: it quits. */
		for (int i = 0; i < 300; i++) {
			if (pthread_tryjoin_np(th, NULL) == 0) {
				req = VMX_POWER_OFF;
				break;
			}
			sleep_ms(10);
		}
		if (req != VMX_POWER_OFF || strcmp(t->vm->fail_reason, "Ctrl-A x on the console") != 0)
			_exit(14);
		devtest_free(t);
		tcgetattr(0, &after);
		if (after.c_lflag != before.c_lflag || after.c_iflag != before.c_iflag)
			_exit(15);
		_exit(0);
	}
	{
		char buf[256];
		size_t have = 0;
		/* Wait for the child to be up, then type. */
		for (int i = 0; i < 500 && !memmem(buf, have, "ready", 5); i++) {
			ssize_t r = read(master, buf + have, sizeof(buf) - 1 - have);
			if (r > 0)
				have += (size_t)r;
		}
		T_ASSERT(memmem(buf, have, "ready", 5) != NULL);
		T_ASSERT(write(master, "a\x01\x01" "b\x01x", 6) == 6);
		for (int i = 0; i < 500; i++) {
			if (waitpid(pid, &st, WNOHANG) == pid)
				break;
			/* Keep the master drained so the child's writes never block. */
			(void)!read(master, buf, sizeof(buf));
			if (i == 499) {
				kill(pid, SIGKILL);
				waitpid(pid, &st, 0);
			}
		}
		T_ASSERT(WIFEXITED(st));
		T_EQ_I64(WEXITSTATUS(st), 0);
		close(master);
	}
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	test_file();
	test_api();
	test_stdio();
	if (have_program("socat"))
		test_pipe();
	else
		printf("SKIP pipe back end: socat is not installed (installer/deps.sh installs it)\n");
	{
		char cmd[300];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", dir);
	}
	return T_DONE();
}

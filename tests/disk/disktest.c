/*
 * disktest.c — see disktest.h.
 */
#include "disktest.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dt_dirbuf[256];
static uint64_t dt_state = 0x243F6A8885A308D3ull;

const char *dt_dir(void)
{
	if (!dt_dirbuf[0]) {
		const char *t = getenv("TMPDIR");
		snprintf(dt_dirbuf, sizeof(dt_dirbuf), "%s/vireo-disk-XXXXXX", t ? t : "/tmp");
		if (!mkdtemp(dt_dirbuf)) {
			perror("mkdtemp");
			exit(1);
		}
	}
	return dt_dirbuf;
}

void dt_cleanup(void)
{
	if (dt_dirbuf[0] && !getenv("VIREO_KEEP_TMP"))
		dt_sh(NULL, "rm -rf '%s'", dt_dirbuf);
}

const char *dt_path(const char *name)
{
	static char bufs[8][512];
	static int k;
	char *b = bufs[k++ % 8];
	snprintf(b, 512, "%s/%s", dt_dir(), name);
	return b;
}

void dt_seed(uint64_t s)
{
	dt_state = s ? s : 1;
}

uint64_t dt_rand(void)
{
	dt_state ^= dt_state << 13;
	dt_state ^= dt_state >> 7;
	dt_state ^= dt_state << 17;
	return dt_state;
}

void dt_pattern(void *buf, size_t len, uint64_t tag, uint64_t off)
{
	uint8_t *p = buf;
	for (size_t i = 0; i < len; i++) {
		uint64_t x = (off + i) / 8 * 0x9E3779B97F4A7C15ull ^ (tag + 1) * 0xC2B2AE3D27D4EB4Full;
		x ^= x >> 29;
		p[i] = (uint8_t)(x >> (8 * ((off + i) % 8)));
	}
}

int dt_sh(char **out, const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	FILE *f = popen(cmd, "r");
	if (!f)
		return -1;
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	size_t r;
	while (buf && (r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
		n += r;
		if (cap - n < 2) {
			char *nb = realloc(buf, cap * 2);
			if (!nb)
				break;
			buf = nb;
			cap *= 2;
		}
	}
	if (buf)
		buf[n] = 0;
	int st = pclose(f);
	if (out)
		*out = buf;
	else
		free(buf);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

bool dt_have_qemu_img(void)
{
	return dt_sh(NULL, "qemu-img --version >/dev/null 2>&1") == 0;
}

uint8_t *dt_slurp(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY);
	struct stat st;

	if (fd < 0 || fstat(fd, &st) < 0) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	uint8_t *b = malloc((size_t)st.st_size + 1);
	size_t got = 0;
	while (b && got < (size_t)st.st_size) {
		ssize_t r = read(fd, b + got, (size_t)st.st_size - got);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	*len = got;
	return b;
}

bool dt_file_equal(const uint8_t *a, size_t alen, const char *path)
{
	size_t n;
	uint8_t *b = dt_slurp(path, &n);
	bool eq = b && n == alen && memcmp(a, b, n) == 0;
	free(b);
	return eq;
}

void dt_patch(const char *path, uint64_t off, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT, 0644);
	if (fd < 0 || pwrite(fd, data, len, (off_t)off) != (ssize_t)len) {
		perror(path);
		exit(1);
	}
	close(fd);
}

/*
 * config.c — the .vmx file (see config.h).
 *
 * The file is kept as its list of lines.  A line that is never changed is
 * written back byte for byte; a changed line is regenerated from its parts
 * (indentation, key as spelled in the file, value, trailing comment), so a
 * hand-edited file keeps its layout.  Lookups scan from the end because the
 * last duplicate wins; .vmx files are a few hundred lines at most.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* VMware refuses longer lines too; it also bounds what we allocate per line. */
#define VMXCFG_MAX_LINE 65536
/* A .vmx is a few KiB; anything this large is not one. */
#define VMXCFG_MAX_FILE (64u << 20)

struct vmxcfg_line {
	char *raw;        /* the line without its "\r\n" / "\n" */
	char *key;        /* NULL: blank line or comment */
	char *value;      /* decoded */
	size_t key_off;   /* where the key starts in raw (after indentation) */
	size_t tail_off;  /* where the text after the value starts in raw */
	unsigned lineno;  /* 0: set in memory, not (yet) from a file */
	bool crlf;
};

struct vmxcfg {
	char *path;
	struct vmxcfg_line *lines;
	size_t n, cap;
	bool no_final_nl;   /* the last line had no newline: keep it that way */
};

static void cfg_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void cfg_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static bool key_char_ok(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '.' || ch == '_' || ch == ':' || ch == '-' || ch == '/' || ch == '@';
}

static bool key_valid(const char *key)
{
	if (!key || !*key)
		return false;
	for (const char *p = key; *p; p++)
		if (!key_char_ok((unsigned char)*p))
			return false;
	return true;
}

static int hexval(unsigned char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/*
 * Decode VMware's |XX escapes.  A '|' not followed by two hex digits, or
 * one that would decode to NUL, is kept literally (hand-edited files).
 */
static char *decode_value(const char *s, size_t len)
{
	char *out = malloc(len + 1);
	size_t o = 0;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '|' && i + 2 < len) {
			int hi = hexval((unsigned char)s[i + 1]);
			int lo = hexval((unsigned char)s[i + 2]);
			if (hi >= 0 && lo >= 0 && (hi | lo) != 0) {
				out[o++] = (char)(hi << 4 | lo);
				i += 2;
				continue;
			}
		}
		out[o++] = s[i];
	}
	out[o] = '\0';
	return out;
}

static bool needs_escape(unsigned char ch)
{
	return ch == '"' || ch == '|' || ch < 0x20 || ch == 0x7f;
}

static size_t encoded_len(const char *v)
{
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		n += needs_escape(*p) ? 3 : 1;
	return n;
}

static char *encode_into(char *dst, const char *v)
{
	static const char hex[] = "0123456789ABCDEF";

	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		if (needs_escape(*p)) {
			*dst++ = '|';
			*dst++ = hex[*p >> 4];
			*dst++ = hex[*p & 15];
		} else {
			*dst++ = (char)*p;
		}
	}
	return dst;
}

static struct vmxcfg_line *line_append(struct vmxcfg *c)
{
	if (c->n == c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 32;
		struct vmxcfg_line *nl = realloc(c->lines, ncap * sizeof(*nl));
		if (!nl)
			return NULL;
		c->lines = nl;
		c->cap = ncap;
	}
	memset(&c->lines[c->n], 0, sizeof(c->lines[0]));
	return &c->lines[c->n++];
}

static void line_free(struct vmxcfg_line *l)
{
	free(l->raw);
	free(l->key);
	free(l->value);
}

struct vmxcfg *vmxcfg_new(const char *path)
{
	struct vmxcfg *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->path = strdup(path ? path : "(config)");
	if (!c->path) {
		free(c);
		return NULL;
	}
	return c;
}

void vmxcfg_free(struct vmxcfg *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++)
		line_free(&c->lines[i]);
	free(c->lines);
	free(c->path);
	free(c);
}

const char *vmxcfg_path(const struct vmxcfg *c)
{
	return c->path;
}

static bool is_ws(char ch)
{
	return ch == ' ' || ch == '\t';
}

/*
 * Parse one line (s, len: without the newline and a trailing '\r') into l.
 * Returns NULL on success or a static description of the syntax error.
 */
static const char *parse_line(const char *s, size_t len, bool first, struct vmxcfg_line *l,
                              char *detail, size_t dlen)
{
	size_t i = 0, kstart, kend, vstart, vend;
	bool quoted = false;

	detail[0] = '\0';
	/* A UTF-8 byte order mark from a Windows editor. */
	if (first && len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
		i = 3;
	while (i < len && is_ws(s[i]))
		i++;
	if (i == len || s[i] == '#')
		return NULL;
	kstart = i;
	while (i < len && !is_ws(s[i]) && s[i] != '=' && s[i] != '#')
		i++;
	kend = i;
	if (kstart == kend)
		return "missing key before '='";
	for (size_t k = kstart; k < kend; k++) {
		unsigned char ch = (unsigned char)s[k];
		if (!key_char_ok(ch)) {
			if (ch >= 0x20 && ch < 0x7f)
				snprintf(detail, dlen, "invalid character '%c' in key", ch);
			else
				snprintf(detail, dlen, "invalid byte 0x%02x in key", ch);
			return detail;
		}
	}
	while (i < len && is_ws(s[i]))
		i++;
	if (i == len || s[i] != '=') {
		snprintf(detail, dlen, "missing '=' after key \"%.*s\"",
		         (int)(kend - kstart > 200 ? 200 : kend - kstart), s + kstart);
		return detail;
	}
	i++;
	while (i < len && is_ws(s[i]))
		i++;
	if (i < len && s[i] == '"') {
		quoted = true;
		vstart = ++i;
		while (i < len && s[i] != '"')
			i++;
		if (i == len)
			return "unterminated quote";
		vend = i++;
	} else {
		vstart = i;
		while (i < len && !is_ws(s[i]) && s[i] != '#') {
			if (s[i] == '"')
				return "unexpected '\"' inside an unquoted value";
			i++;
		}
		vend = i;
	}
	l->tail_off = i;
	while (i < len && is_ws(s[i]))
		i++;
	if (i < len && s[i] != '#')
		return quoted ? "unexpected text after the closing quote"
		              : "unexpected text after the value (quote values with spaces)";
	l->key_off = kstart;
	l->key = strndup(s + kstart, kend - kstart);
	l->value = decode_value(s + vstart, vend - vstart);
	if (!l->key || !l->value)
		return "out of memory";
	return NULL;
}

struct vmxcfg *vmxcfg_parse(const char *name, const char *text, size_t len,
                            char *err, size_t errlen)
{
	struct vmxcfg *c = vmxcfg_new(name);
	size_t pos = 0;
	unsigned lineno = 0;
	char detail[320];

	if (!c) {
		cfg_err(err, errlen, "%s: out of memory", name ? name : "(config)");
		return NULL;
	}
	while (pos < len) {
		const char *s = text + pos;
		const char *nl = memchr(s, '\n', len - pos);
		size_t llen = nl ? (size_t)(nl - s) : len - pos;
		struct vmxcfg_line *l;
		const char *why;

		lineno++;
		pos += llen + (nl ? 1 : 0);
		if (!nl)
			c->no_final_nl = true;
		if (llen > VMXCFG_MAX_LINE) {
			cfg_err(err, errlen, "%s:%u: line too long (more than %u bytes)", c->path, lineno,
			        VMXCFG_MAX_LINE);
			goto fail;
		}
		if (memchr(s, '\0', llen)) {
			cfg_err(err, errlen, "%s:%u: NUL byte in line", c->path, lineno);
			goto fail;
		}
		l = line_append(c);
		if (!l) {
			cfg_err(err, errlen, "%s: out of memory", c->path);
			goto fail;
		}
		l->lineno = lineno;
		if (llen && s[llen - 1] == '\r') {
			l->crlf = true;
			llen--;
		}
		l->raw = strndup(s, llen);
		if (!l->raw) {
			cfg_err(err, errlen, "%s: out of memory", c->path);
			goto fail;
		}
		why = parse_line(s, llen, lineno == 1, l, detail, sizeof(detail));
		if (why) {
			cfg_err(err, errlen, "%s:%u: %s", c->path, lineno, why);
			goto fail;
		}
	}
	return c;
fail:
	vmxcfg_free(c);
	return NULL;
}

struct vmxcfg *vmxcfg_load(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *buf = NULL;
	size_t len = 0, cap;
	struct vmxcfg *c;

	if (fd < 0) {
		cfg_err(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0) {
		cfg_err(err, errlen, "%s: %s", path, strerror(errno));
		close(fd);
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		cfg_err(err, errlen, "%s: %s", path,
		        S_ISDIR(st.st_mode) ? "is a directory" : "not a regular file");
		close(fd);
		return NULL;
	}
	cap = (size_t)st.st_size + 1;
	if (cap > VMXCFG_MAX_FILE)
		cap = VMXCFG_MAX_FILE;
	buf = malloc(cap);
	if (!buf)
		goto nomem;
	for (;;) {
		ssize_t r;
		if (len == cap) {
			char *nb;
			if (cap >= VMXCFG_MAX_FILE) {
				cfg_err(err, errlen, "%s: file too large for a .vmx (over %u MiB)", path,
				        VMXCFG_MAX_FILE >> 20);
				goto fail;
			}
			nb = realloc(buf, cap * 2);
			if (!nb)
				goto nomem;
			buf = nb;
			cap *= 2;
		}
		r = read(fd, buf + len, cap - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			cfg_err(err, errlen, "%s: read: %s", path, strerror(errno));
			goto fail;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	c = vmxcfg_parse(path, buf, len, err, errlen);
	free(buf);
	return c;
nomem:
	cfg_err(err, errlen, "%s: out of memory", path);
fail:
	free(buf);
	close(fd);
	return NULL;
}

static struct vmxcfg_line *find_last(const struct vmxcfg *c, const char *key)
{
	if (!c || !key)
		return NULL;
	for (size_t i = c->n; i-- > 0;)
		if (c->lines[i].key && strcasecmp(c->lines[i].key, key) == 0)
			return &c->lines[i];
	return NULL;
}

const char *vmxcfg_get(const struct vmxcfg *c, const char *key)
{
	struct vmxcfg_line *l = find_last(c, key);

	return l ? l->value : NULL;
}

unsigned vmxcfg_line(const struct vmxcfg *c, const char *key)
{
	struct vmxcfg_line *l = find_last(c, key);

	return l ? l->lineno : 0;
}

/* "path:line: key = "value"" or, for a value set in memory, "path: key = ...". */
static void value_err(const struct vmxcfg *c, const struct vmxcfg_line *l, char *err,
                      size_t errlen, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void value_err(const struct vmxcfg *c, const struct vmxcfg_line *l, char *err,
                      size_t errlen, const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (l->lineno)
		cfg_err(err, errlen, "%s:%u: %s = \"%.200s\" %s", c->path, l->lineno, l->key,
		        l->value, what);
	else
		cfg_err(err, errlen, "%s: %s = \"%.200s\" %s", c->path, l->key, l->value, what);
}

int vmxcfg_get_bool(const struct vmxcfg *c, const char *key, bool def, bool *out,
                    char *err, size_t errlen)
{
	static const char *const yes[] = {"TRUE", "yes", "1"};
	static const char *const no[] = {"FALSE", "no", "0"};
	struct vmxcfg_line *l = find_last(c, key);

	*out = def;
	if (!l)
		return 0;
	for (size_t i = 0; i < 3; i++) {
		if (strcasecmp(l->value, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(l->value, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	value_err(c, l, err, errlen, "is not a boolean (expected TRUE/FALSE, yes/no or 1/0)");
	return -1;
}

/* Units for the messages of the keys whose unit is not obvious. */
static const char *key_unit(const char *key)
{
	static const struct {
		const char *key, *unit;
	} units[] = {
		{"memsize", " MB"},
		{"svga.vramSize", " bytes"},
	};

	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strcasecmp(key, units[i].key) == 0)
			return units[i].unit;
	return "";
}

int vmxcfg_get_u64(const struct vmxcfg *c, const char *key, uint64_t def,
                   uint64_t min, uint64_t max, uint64_t *out, char *err, size_t errlen)
{
	struct vmxcfg_line *l = find_last(c, key);
	uint64_t v = 0;
	const char *p;

	*out = def;
	if (!l)
		return 0;
	p = l->value;
	if (!*p)
		goto nan;
	for (; *p; p++) {
		unsigned d;
		if (*p < '0' || *p > '9')
			goto nan;
		d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10) {
			value_err(c, l, err, errlen, "is too large (expected %llu..%llu%s)",
			          (unsigned long long)min, (unsigned long long)max, key_unit(key));
			return -1;
		}
		v = v * 10 + d;
	}
	if (v < min || v > max) {
		value_err(c, l, err, errlen, "is out of range (expected %llu..%llu%s)",
		          (unsigned long long)min, (unsigned long long)max, key_unit(key));
		return -1;
	}
	*out = v;
	return 0;
nan:
	value_err(c, l, err, errlen, "is not a number (expected %llu..%llu%s)",
	          (unsigned long long)min, (unsigned long long)max, key_unit(key));
	return -1;
}

int vmxcfg_get_enum(const struct vmxcfg *c, const char *key, const char *def,
                    const char *const *choices, const char **out, char *err, size_t errlen)
{
	struct vmxcfg_line *l = find_last(c, key);
	char list[200];
	size_t used = 0;

	*out = def;
	if (!l)
		return 0;
	for (size_t i = 0; choices[i]; i++) {
		if (strcasecmp(l->value, choices[i]) == 0) {
			*out = choices[i];
			return 0;
		}
	}
	list[0] = '\0';
	for (size_t i = 0; choices[i] && used < sizeof(list); i++) {
		int r = snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "", choices[i]);
		if (r < 0)
			break;
		used += (size_t)r;
	}
	value_err(c, l, err, errlen, "is not one of: %s", list);
	return -1;
}

/* Regenerate l->raw as indentation + key + ` = "value"` + the old tail. */
static int line_rewrite(struct vmxcfg_line *l, const char *value)
{
	size_t indent = l->raw ? l->key_off : 0;
	const char *tail = l->raw ? l->raw + l->tail_off : "";
	size_t klen = strlen(l->key), tlen = strlen(tail);
	size_t total = indent + klen + 4 + encoded_len(value) + 1 + tlen;
	char *raw, *p, *nv;

	if (total > VMXCFG_MAX_LINE) {
		errno = E2BIG;
		return -1;
	}
	raw = malloc(total + 1);
	nv = strdup(value);
	if (!raw || !nv) {
		free(raw);
		free(nv);
		errno = ENOMEM;
		return -1;
	}
	p = raw;
	if (indent)
		memcpy(p, l->raw, indent);
	p += indent;
	memcpy(p, l->key, klen);
	p += klen;
	memcpy(p, " = \"", 4);
	p = encode_into(p + 4, value);
	*p++ = '"';
	l->tail_off = (size_t)(p - raw);
	memcpy(p, tail, tlen + 1);
	free(l->raw);
	free(l->value);
	l->raw = raw;
	l->value = nv;
	l->key_off = indent;
	l->lineno = 0;
	return 0;
}

int vmxcfg_set(struct vmxcfg *c, const char *key, const char *value)
{
	struct vmxcfg_line *l;

	if (!c || !key_valid(key) || !value) {
		errno = EINVAL;
		return -1;
	}
	l = find_last(c, key);
	if (l)
		return line_rewrite(l, value);
	l = line_append(c);
	if (!l) {
		errno = ENOMEM;
		return -1;
	}
	l->key = strdup(key);
	if (!l->key || line_rewrite(l, value) < 0) {
		int e = l->key ? errno : ENOMEM;
		line_free(l);
		c->n--;
		errno = e;
		return -1;
	}
	/* Appended: the old last line now needs its newline. */
	c->no_final_nl = false;
	return 0;
}

/* Removes every occurrence (else an earlier duplicate would reappear); 0 also when absent. */
int vmxcfg_remove(struct vmxcfg *c, const char *key)
{
	size_t o = 0;

	if (!c || !key) {
		errno = EINVAL;
		return -1;
	}
	for (size_t i = 0; i < c->n; i++) {
		if (c->lines[i].key && strcasecmp(c->lines[i].key, key) == 0) {
			/* The new last line must keep the newline it had. */
			if (i == c->n - 1)
				c->no_final_nl = false;
			line_free(&c->lines[i]);
			continue;
		}
		c->lines[o++] = c->lines[i];
	}
	c->n = o;
	return 0;
}

bool vmxcfg_next(const struct vmxcfg *c, size_t *iter, const char **key, const char **value)
{
	while (*iter < c->n) {
		const struct vmxcfg_line *l = &c->lines[(*iter)++];
		if (l->key) {
			*key = l->key;
			*value = l->value;
			return true;
		}
	}
	return false;
}

char *vmxcfg_render(const struct vmxcfg *c, size_t *len)
{
	size_t total = 1, o = 0;
	char *out;

	for (size_t i = 0; i < c->n; i++)
		total += strlen(c->lines[i].raw) + 2;
	out = malloc(total);
	if (!out)
		return NULL;
	for (size_t i = 0; i < c->n; i++) {
		const struct vmxcfg_line *l = &c->lines[i];
		size_t rl = strlen(l->raw);
		memcpy(out + o, l->raw, rl);
		o += rl;
		if (l->crlf)
			out[o++] = '\r';
		if (i + 1 < c->n || !c->no_final_nl)
			out[o++] = '\n';
	}
	out[o] = '\0';
	if (len)
		*len = o;
	return out;
}

int vmxcfg_save(struct vmxcfg *c, char *err, size_t errlen)
{
	size_t len;
	char *text = vmxcfg_render(c, &len);
	int r;

	if (!text) {
		cfg_err(err, errlen, "%s: out of memory", c->path);
		return -1;
	}
	r = vmx_write_file_atomic(c->path, text, len, err, errlen);
	free(text);
	if (r == 0) {
		/* Messages about values now point at the saved file's lines. */
		for (size_t i = 0; i < c->n; i++)
			c->lines[i].lineno = (unsigned)(i + 1);
	}
	return r;
}

static int write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		if (w == 0) {
			errno = EIO;
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

int vmx_write_file_atomic(const char *path, const void *data, size_t len,
                          char *err, size_t errlen)
{
	char *dir = NULL, *tmp = NULL, *real = NULL;
	const char *base, *slash;
	struct stat st;
	mode_t mode = 0644;
	bool have_orig = false;
	int fd = -1, dfd, e;
	static unsigned counter;

	if (!path || !*path) {
		cfg_err(err, errlen, "(no path): cannot save");
		return -1;
	}
	/* Through a symlink, replace the file it points at, not the link. */
	if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
		real = realpath(path, NULL);
		if (real)
			path = real;
	}
	if (stat(path, &st) == 0) {
		mode = st.st_mode & 07777;
		have_orig = true;
	}
	slash = strrchr(path, '/');
	base = slash ? slash + 1 : path;
	dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
	if (!dir)
		goto nomem;
	/* O_EXCL with a name nobody else picks: pid, a counter and the clock. */
	for (int tries = 0; tries < 100; tries++) {
		struct timespec ts;
		free(tmp);
		tmp = NULL;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		if (asprintf(&tmp, "%s/.%s.tmp-%ld-%u-%lx", dir, base, (long)getpid(), counter++,
		             (unsigned long)ts.tv_nsec) < 0) {
			tmp = NULL;
			goto nomem;
		}
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, have_orig ? 0600 : mode);
		if (fd >= 0 || errno != EEXIST)
			break;
	}
	if (fd < 0) {
		cfg_err(err, errlen, "%s: cannot create a temporary file in %s: %s", path, dir,
		        strerror(errno));
		free(tmp);
		free(dir);
		free(real);
		return -1;
	}
	if (have_orig) {
		/* Root editing a user's VM must leave it owned by the user. */
		if (fchown(fd, st.st_uid, st.st_gid) < 0 && errno != EPERM) {
			e = errno;
			cfg_err(err, errlen, "%s: chown %s: %s", path, tmp, strerror(e));
			goto fail;
		}
		if (fchmod(fd, mode) < 0) {
			cfg_err(err, errlen, "%s: chmod %s: %s", path, tmp, strerror(errno));
			goto fail;
		}
	}
	if (write_all(fd, data, len) < 0) {
		cfg_err(err, errlen, "%s: write: %s", path, strerror(errno));
		goto fail;
	}
	if (fsync(fd) < 0) {
		cfg_err(err, errlen, "%s: fsync: %s", path, strerror(errno));
		goto fail;
	}
	e = close(fd);
	fd = -1;
	if (e < 0) {
		cfg_err(err, errlen, "%s: close: %s", path, strerror(errno));
		goto fail;
	}
	if (rename(tmp, path) < 0) {
		cfg_err(err, errlen, "%s: rename: %s", path, strerror(errno));
		goto fail;
	}
	/* The rename is durable only once the folder is synced. */
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		if (fsync(dfd) < 0 && errno != EINVAL && errno != EROFS) {
			e = errno;
			close(dfd);
			cfg_err(err, errlen, "%s: fsync of folder %s: %s", path, dir, strerror(e));
			free(tmp);
			free(dir);
			free(real);
			return -1;
		}
		close(dfd);
	}
	free(tmp);
	free(dir);
	free(real);
	return 0;
nomem:
	cfg_err(err, errlen, "%s: out of memory", path);
	free(tmp);
	free(dir);
	free(real);
	return -1;
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	free(tmp);
	free(dir);
	free(real);
	return -1;
}

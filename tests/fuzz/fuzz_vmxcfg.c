/*
 * fuzz_vmxcfg.c — the .vmx parser.  Properties checked on every input that
 * parses: rendering it unchanged gives back the input byte for byte; after
 * rewriting every key (values with quotes, bars, control bytes) the
 * rendering parses again to the same keys and values in the same order.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmx/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fz_check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_vmxcfg: %s\n", what);
		abort();
	}
}

/* A value derived from the old one that needs every kind of escape. */
static char *mangle(const char *v)
{
	size_t n = strlen(v);
	char *out = malloc(n + 8);

	if (!out)
		return NULL;
	out[0] = '"';
	memcpy(out + 1, v, n);
	memcpy(out + 1 + n, "|\x01#\t\"", 6);
	return out;
}

static void check_one(const uint8_t *data, size_t size)
{
	char err[512];
	struct vmxcfg *c = vmxcfg_parse("fuzz.vmx", (const char *)data, size, err, sizeof(err));
	struct vmxcfg *c2;
	size_t len, it = 0, it2 = 0, nkeys = 0;
	const char *k, *v, *k2, *v2;
	char *out;

	if (!c) {
		fz_check(strncmp(err, "fuzz.vmx", 8) == 0, "error does not name the file");
		return;
	}
	out = vmxcfg_render(c, &len);
	fz_check(out != NULL, "render failed");
	fz_check(len == size && memcmp(out, data, size) == 0, "unchanged render differs from input");
	free(out);

	/* Rewrite every key (the last occurrence of each); keys stay valid. */
	while (vmxcfg_next(c, &it, &k, &v) && nkeys < 64) {
		char *key = strdup(k), *nv = mangle(v);
		if (key && nv) {
			int r = vmxcfg_set(c, key, nv);
			/* Only a line that would grow past the limit may be refused. */
			fz_check(r == 0 || strlen(nv) > 65536 / 3 - 64, "set refused");
		}
		free(key);
		free(nv);
		nkeys++;
	}
	if (nkeys % 3 == 1) {
		vmxcfg_set(c, "fuzz.added", "x\"|\n");
		vmxcfg_remove(c, "fuzz.added2");
	}

	out = vmxcfg_render(c, &len);
	fz_check(out != NULL, "render failed");
	c2 = vmxcfg_parse("fuzz2.vmx", out, len, err, sizeof(err));
	if (!c2)
		fprintf(stderr, "reparse: %s\n", err);
	fz_check(c2 != NULL, "rendered text does not parse");
	it = 0;
	for (;;) {
		bool a = vmxcfg_next(c, &it, &k, &v);
		bool b = vmxcfg_next(c2, &it2, &k2, &v2);
		fz_check(a == b, "key count differs after reparse");
		if (!a)
			break;
		fz_check(strcmp(k, k2) == 0, "key differs after reparse");
		fz_check(strcmp(v, v2) == 0, "value differs after reparse");
	}
	vmxcfg_free(c2);
	free(out);
	vmxcfg_free(c);
}

/*
 * Random bytes rarely parse, so each input also drives a generator of .vmx
 * lines (mostly valid, some broken): whole files then parse often enough
 * that the round-trip properties are exercised without coverage guidance.
 */
static size_t generate(const uint8_t *data, size_t size, char *out, size_t cap)
{
	static const char *const keys[] = {"memsize", "MemSize", "a.b", "scsi0:0.fileName",
	                                   ".encoding", "x-y_z/w@v", "numvcpus", "k"};
	static const char *const vals[] = {"512", "", "a|22b|7Cc", "|zz|", "caf\xC3\xA9",
	                                   "#not comment", "|00", "tab\there"};
	static const char *const junk[] = {"=", "\"", "$", "k \"v\"", "k = \"v\" x", "k = a b",
	                                   "\xEF\xBB\xBF", "k = \"v"};
	size_t o = 0;

	for (size_t i = 0; i + 1 < size; i += 2) {
		unsigned b = data[i], arg = data[i + 1];
		const char *k = keys[arg % 8], *v = vals[(arg >> 3) % 8];
		int n;

		switch (b % 9) {
		case 0: n = snprintf(out + o, cap - o, "\n"); break;
		case 1: n = snprintf(out + o, cap - o, "# comment %u\n", arg); break;
		case 2: n = snprintf(out + o, cap - o, "%s = \"%s\"\n", k, v); break;
		case 3: n = snprintf(out + o, cap - o, "  %s=bare%u # c\r\n", k, arg); break;
		case 4: n = snprintf(out + o, cap - o, "%s\t=\t\"%s\"  # t\n", k, v); break;
		case 5: n = snprintf(out + o, cap - o, "%s =\n", k); break;
		case 6: n = snprintf(out + o, cap - o, "%s = \"%s\"\r\n", k, v); break;
		case 7: n = snprintf(out + o, cap - o, "%s = %s\n", k, arg & 1 ? "w" : "\"\""); break;
		default:
			n = (arg & 63) ? snprintf(out + o, cap - o, "%s = \"1\"\n", k)
			              : snprintf(out + o, cap - o, "%s\n", junk[(arg >> 3) % 8]);
			break;
		}
		if (n < 0 || (size_t)n >= cap - o)
			break;
		o += (size_t)n;
	}
	/* An odd length: a last line without its newline. */
	if (size % 2 && o + 16 < cap)
		o += (size_t)snprintf(out + o, cap - o, "last = \"%u\"", data[size - 1]);
	return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char gen[1 << 16];

	check_one(data, size);
	check_one((const uint8_t *)gen, generate(data, size, gen, sizeof(gen)));
	return 0;
}

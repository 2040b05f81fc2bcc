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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];
	struct vmxcfg *c = vmxcfg_parse("fuzz.vmx", (const char *)data, size, err, sizeof(err));
	struct vmxcfg *c2;
	size_t len, it = 0, it2 = 0, nkeys = 0;
	const char *k, *v, *k2, *v2;
	char *out;

	if (!c) {
		fz_check(strncmp(err, "fuzz.vmx", 8) == 0, "error does not name the file");
		return 0;
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
	return 0;
}

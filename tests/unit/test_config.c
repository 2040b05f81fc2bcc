/*
 * test_config.c — vmx/config.c: parsing, round trips, typed getters and
 * their messages, and the atomic save (including a save whose write fails).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmx/config.h"
#include "t.h"

static char errbuf[1024];

static struct vmxcfg *parse_str(const char *name, const char *text)
{
	errbuf[0] = '\0';
	return vmxcfg_parse(name, text, strlen(text), errbuf, sizeof(errbuf));
}

static char *render_str(const struct vmxcfg *c)
{
	size_t len = 0;
	char *s = vmxcfg_render(c, &len);

	if (s && strlen(s) != len)
		T_FAIL("render length %zu != strlen %zu", len, strlen(s));
	return s;
}

static void test_round_trip(void)
{
	/* Comments, blanks, odd spacing, a bare word, CRLF, unknown keys, no final newline. */
	static const char text[] =
		".encoding = \"UTF-8\"\n"
		"# a comment line\n"
		"\n"
		"  displayName=\"My VM\"   # trailing comment\n"
		"memsize = 512\n"
		"scsi0:0.fileName = \"disk.vmdk\"\r\n"
		"someVendor.unknownKey = \"kept # not a comment\"\n"
		"\t# indented comment\n"
		"numvcpus = \"2\"";
	struct vmxcfg *c = parse_str("rt.vmx", text);
	char *out;

	T_ASSERT(c != NULL);
	if (!c) {
		fprintf(stderr, "parse error: %s\n", errbuf);
		return;
	}
	out = render_str(c);
	T_STREQ(out, text);
	free(out);

	T_STREQ(vmxcfg_get(c, ".encoding"), "UTF-8");
	T_STREQ(vmxcfg_get(c, "displayname"), "My VM");
	T_STREQ(vmxcfg_get(c, "MEMSIZE"), "512");
	T_STREQ(vmxcfg_get(c, "scsi0:0.filename"), "disk.vmdk");
	T_STREQ(vmxcfg_get(c, "someVendor.unknownKey"), "kept # not a comment");
	T_STREQ(vmxcfg_get(c, "numvcpus"), "2");
	T_STREQ(vmxcfg_get(c, "absent"), NULL);
	T_EQ_U64(vmxcfg_line(c, "memsize"), 5);
	T_EQ_U64(vmxcfg_line(c, "absent"), 0);

	/* Change two keys in place, add one: everything else byte for byte. */
	T_EQ_I64(vmxcfg_set(c, "DisplayName", "Other \"VM\" a|b"), 0);
	T_EQ_I64(vmxcfg_set(c, "memsize", "1024"), 0);
	T_EQ_I64(vmxcfg_set(c, "guestOS", "other6xlinux-64"), 0);
	T_EQ_U64(vmxcfg_line(c, "memsize"), 0);   /* set in memory */
	out = render_str(c);
	T_STREQ(out,
	        ".encoding = \"UTF-8\"\n"
	        "# a comment line\n"
	        "\n"
	        "  displayName = \"Other |22VM|22 a|7Cb\"   # trailing comment\n"
	        "memsize = \"1024\"\n"
	        "scsi0:0.fileName = \"disk.vmdk\"\r\n"
	        "someVendor.unknownKey = \"kept # not a comment\"\n"
	        "\t# indented comment\n"
	        "numvcpus = \"2\"\n"
	        "guestOS = \"other6xlinux-64\"\n");

	/* The rendered text parses back to the same values. */
	{
		struct vmxcfg *c2 = out ? parse_str("rt2.vmx", out) : NULL;
		T_ASSERT(c2 != NULL);
		if (c2) {
			T_STREQ(vmxcfg_get(c2, "displayName"), "Other \"VM\" a|b");
			T_STREQ(vmxcfg_get(c2, "memsize"), "1024");
			T_STREQ(vmxcfg_get(c2, "guestos"), "other6xlinux-64");
			T_EQ_U64(vmxcfg_line(c2, "guestos"), 10);
			vmxcfg_free(c2);
		}
	}
	free(out);

	/* Iteration: every key line, in file order. */
	{
		static const char *const order[] = {".encoding", "displayName", "memsize",
		                                     "scsi0:0.fileName", "someVendor.unknownKey",
		                                     "numvcpus", "guestOS"};
		size_t it = 0, n = 0;
		const char *k, *v;
		while (vmxcfg_next(c, &it, &k, &v)) {
			if (n < 7)
				T_STREQ(k, order[n]);
			n++;
		}
		T_EQ_U64(n, 7);
	}
	vmxcfg_free(c);
}

static void test_duplicates_and_remove(void)
{
	struct vmxcfg *c = parse_str("dup.vmx",
	                             "memsize = \"256\"\n"
	                             "MemSize = \"512\"\n"
	                             "other = \"x\"\n"
	                             "MEMSIZE = \"768\"\n");
	size_t it = 0, n = 0;
	const char *k, *v;
	char *out;

	T_ASSERT(c != NULL);
	if (!c)
		return;
	T_STREQ(vmxcfg_get(c, "memsize"), "768");
	T_EQ_U64(vmxcfg_line(c, "memsize"), 4);
	while (vmxcfg_next(c, &it, &k, &v))
		n++;
	T_EQ_U64(n, 4);   /* every occurrence */

	/* Set rewrites only the last occurrence, the one that counts. */
	T_EQ_I64(vmxcfg_set(c, "memsize", "1024"), 0);
	out = render_str(c);
	T_STREQ(out, "memsize = \"256\"\nMemSize = \"512\"\nother = \"x\"\nMEMSIZE = \"1024\"\n");
	free(out);

	/* Remove drops every occurrence, else an older one would reappear. */
	T_EQ_I64(vmxcfg_remove(c, "memSize"), 0);
	T_STREQ(vmxcfg_get(c, "memsize"), NULL);
	out = render_str(c);
	T_STREQ(out, "other = \"x\"\n");
	free(out);
	T_EQ_I64(vmxcfg_remove(c, "memsize"), 0);   /* absent: still fine */

	/* Invalid keys are refused by set. */
	T_EQ_I64(vmxcfg_set(c, "bad key", "1"), -1);
	T_EQ_I64(vmxcfg_set(c, "bad\"key", "1"), -1);
	T_EQ_I64(vmxcfg_set(c, "", "1"), -1);
	vmxcfg_free(c);

	/* Appending to a file whose last line had no newline gives it one. */
	c = parse_str("nonl.vmx", "a = \"1\"");
	T_ASSERT(c != NULL);
	if (c) {
		T_EQ_I64(vmxcfg_set(c, "b", "2"), 0);
		out = render_str(c);
		T_STREQ(out, "a = \"1\"\nb = \"2\"\n");
		free(out);
		vmxcfg_free(c);
	}
}

static void test_escapes(void)
{
	struct vmxcfg *c = parse_str("esc.vmx",
	                             "a = \"say |22hi|22\"\n"
	                             "b = \"x|7Cy|7cz\"\n"
	                             "c = \"lit|zz|\"\n"
	                             "d = \"\"\n"
	                             "e =\n"
	                             "f = bare|22word # comment\n"
	                             "g = \"tab|09nl|0A\"\n"
	                             "h = \"|00\"\n");
	char *out;

	T_ASSERT(c != NULL);
	if (!c) {
		fprintf(stderr, "parse error: %s\n", errbuf);
		return;
	}
	T_STREQ(vmxcfg_get(c, "a"), "say \"hi\"");
	T_STREQ(vmxcfg_get(c, "b"), "x|y|z");
	T_STREQ(vmxcfg_get(c, "c"), "lit|zz|");
	T_STREQ(vmxcfg_get(c, "d"), "");
	T_STREQ(vmxcfg_get(c, "e"), "");
	T_STREQ(vmxcfg_get(c, "f"), "bare\"word");
	T_STREQ(vmxcfg_get(c, "g"), "tab\tnl\n");
	T_STREQ(vmxcfg_get(c, "h"), "|00");   /* NUL cannot be a C string: literal */

	T_EQ_I64(vmxcfg_set(c, "a", "q\"|\n#"), 0);
	T_EQ_I64(vmxcfg_set(c, "new", "|"), 0);
	out = render_str(c);
	T_CONTAINS(out, "a = \"q|22|7C|0A#\"\nb = ");
	T_CONTAINS(out, "\nnew = \"|7C\"\n");
	{
		struct vmxcfg *c2 = out ? parse_str("esc2.vmx", out) : NULL;
		T_ASSERT(c2 != NULL);
		if (c2) {
			T_STREQ(vmxcfg_get(c2, "a"), "q\"|\n#");
			T_STREQ(vmxcfg_get(c2, "new"), "|");
			T_STREQ(vmxcfg_get(c2, "c"), "lit|zz|");
			vmxcfg_free(c2);
		}
	}
	free(out);
	vmxcfg_free(c);
}

/* The text must fail to parse with exactly this message. */
static void expect_syntax_error(const char *text, size_t len, const char *msg)
{
	struct vmxcfg *c;

	errbuf[0] = '\0';
	c = vmxcfg_parse("bad.vmx", text, len, errbuf, sizeof(errbuf));
	T_ASSERT(c == NULL);
	vmxcfg_free(c);
	if (strcmp(errbuf, msg) != 0)
		T_FAIL("error for %.40s...: got \"%s\", want \"%s\"", text, errbuf, msg);
	else
		t_checks++;
}

static void test_syntax_errors(void)
{
	char *big;

	expect_syntax_error("a = \"1\"\nmemsize 512\n", 20,
	                    "bad.vmx:2: missing '=' after key \"memsize\"");
	expect_syntax_error("a = \"1\"\n\nb = \"open\n", 19, "bad.vmx:3: unterminated quote");
	expect_syntax_error("# c\nfoo$bar = \"1\"\n", 18, "bad.vmx:2: invalid character '$' in key");
	expect_syntax_error("= \"1\"\n", 6, "bad.vmx:1: missing key before '='");
	expect_syntax_error("a = \"1\" junk\n", 13, "bad.vmx:1: unexpected text after the closing quote");
	expect_syntax_error("a = two words\n", 14,
	                    "bad.vmx:1: unexpected text after the value (quote values with spaces)");
	expect_syntax_error("a = \"1\"\nb = \"x\0y\"\n", 17, "bad.vmx:2: NUL byte in line");

	big = malloc(70000);
	if (big) {
		memcpy(big, "a = \"1\"\nb = \"", 13);
		memset(big + 13, 'x', 70000 - 13);
		expect_syntax_error(big, 70000, "bad.vmx:2: line too long (more than 65536 bytes)");
		/* Just under the limit is fine. */
		big[8 + 65535] = '"';
		{
			struct vmxcfg *c = vmxcfg_parse("big.vmx", big, 8 + 65536, errbuf, sizeof(errbuf));
			T_ASSERT(c != NULL);
			if (c)
				T_EQ_U64(strlen(vmxcfg_get(c, "b")), 65536 - 6);
			vmxcfg_free(c);
		}
		free(big);
	}
	/* Not UTF-8 is accepted (the brief allows it); a BOM is skipped. */
	{
		struct vmxcfg *c = parse_str("l1.vmx", "\xEF\xBB\xBFname = \"caf\xE9\"\n");
		T_ASSERT(c != NULL);
		if (c) {
			T_STREQ(vmxcfg_get(c, "name"), "caf\xE9");
			vmxcfg_free(c);
		}
	}
}

static void test_typed_getters(void)
{
	static const char *const engines[] = {"auto", "hv", "bt", NULL};
	struct vmxcfg *c = parse_str("vm.vmx",
	                             "# header\n"
	                             "displayName = \"x\"\n"
	                             "memsize = \"abc\"\n"
	                             "numvcpus = \"1000\"\n"
	                             "big = \"99999999999999999999999\"\n"
	                             "ok = \"4096\"\n"
	                             "b1 = \"TRUE\"\nb2 = \"no\"\nb3 = \"1\"\nb4 = \"False\"\nb5 = \"YES\"\n"
	                             "b6 = \"maybe\"\n"
	                             "monitor.engine = \"warp\"\n"
	                             "e2 = \"HV\"\n"
	                             "neg = \"-1\"\n"
	                             "empty = \"\"\n");
	uint64_t u = 7;
	bool b = false;
	const char *e = NULL;

	T_ASSERT(c != NULL);
	if (!c)
		return;
	errbuf[0] = '\0';
	T_EQ_I64(vmxcfg_get_u64(c, "memsize", 512, 4, 1048576, &u, errbuf, sizeof(errbuf)), -1);
	T_STREQ(errbuf, "vm.vmx:3: memsize = \"abc\" is not a number (expected 4..1048576 MB)");
	T_EQ_U64(u, 512);   /* the default is stored even on error */
	T_EQ_I64(vmxcfg_get_u64(c, "numvcpus", 1, 1, 64, &u, errbuf, sizeof(errbuf)), -1);
	T_STREQ(errbuf, "vm.vmx:4: numvcpus = \"1000\" is out of range (expected 1..64)");
	T_EQ_I64(vmxcfg_get_u64(c, "big", 1, 0, UINT64_MAX, &u, errbuf, sizeof(errbuf)), -1);
	T_CONTAINS(errbuf, "vm.vmx:5: big = \"99999999999999999999999\" is too large");
	T_EQ_I64(vmxcfg_get_u64(c, "neg", 1, 0, 10, &u, errbuf, sizeof(errbuf)), -1);
	T_CONTAINS(errbuf, "vm.vmx:15: neg = \"-1\" is not a number");
	T_EQ_I64(vmxcfg_get_u64(c, "empty", 1, 0, 10, &u, errbuf, sizeof(errbuf)), -1);
	T_CONTAINS(errbuf, "vm.vmx:16: empty = \"\" is not a number");
	T_EQ_I64(vmxcfg_get_u64(c, "ok", 1, 0, 8192, &u, errbuf, sizeof(errbuf)), 0);
	T_EQ_U64(u, 4096);
	T_EQ_I64(vmxcfg_get_u64(c, "absent", 33, 0, 10, &u, errbuf, sizeof(errbuf)), 0);
	T_EQ_U64(u, 33);

	T_EQ_I64(vmxcfg_get_bool(c, "b1", false, &b, errbuf, sizeof(errbuf)), 0);
	T_ASSERT(b);
	T_EQ_I64(vmxcfg_get_bool(c, "b2", true, &b, errbuf, sizeof(errbuf)), 0);
	T_ASSERT(!b);
	T_EQ_I64(vmxcfg_get_bool(c, "b3", false, &b, errbuf, sizeof(errbuf)), 0);
	T_ASSERT(b);
	T_EQ_I64(vmxcfg_get_bool(c, "b4", true, &b, errbuf, sizeof(errbuf)), 0);
	T_ASSERT(!b);
	T_EQ_I64(vmxcfg_get_bool(c, "B5", false, &b, errbuf, sizeof(errbuf)), 0);
	T_ASSERT(b);
	T_EQ_I64(vmxcfg_get_bool(c, "absent", true, &b, errbuf, sizeof(errbuf)), 0);
	T_ASSERT(b);
	T_EQ_I64(vmxcfg_get_bool(c, "b6", true, &b, errbuf, sizeof(errbuf)), -1);
	T_STREQ(errbuf, "vm.vmx:12: b6 = \"maybe\" is not a boolean (expected TRUE/FALSE, yes/no or 1/0)");

	T_EQ_I64(vmxcfg_get_enum(c, "monitor.engine", "auto", engines, &e, errbuf, sizeof(errbuf)), -1);
	T_STREQ(errbuf, "vm.vmx:13: monitor.engine = \"warp\" is not one of: auto, hv, bt");
	T_EQ_I64(vmxcfg_get_enum(c, "e2", "auto", engines, &e, errbuf, sizeof(errbuf)), 0);
	T_STREQ(e, "hv");   /* the canonical spelling */
	T_EQ_I64(vmxcfg_get_enum(c, "absent", "auto", engines, &e, errbuf, sizeof(errbuf)), 0);
	T_STREQ(e, "auto");

	/* A value set in memory (-s key=value) has no line to blame. */
	T_EQ_I64(vmxcfg_set(c, "memsize", "2"), 0);
	T_EQ_I64(vmxcfg_get_u64(c, "memsize", 512, 4, 1048576, &u, errbuf, sizeof(errbuf)), -1);
	T_STREQ(errbuf, "vm.vmx: memsize = \"2\" is out of range (expected 4..1048576 MB)");
	vmxcfg_free(c);
}

/* Files in dir whose name contains ".tmp-" (leftover temporaries). */
static int count_temps(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (strstr(de->d_name, ".tmp-"))
			n++;
	closedir(d);
	return n;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	if (buf) {
		buf[fread(buf, 1, (size_t)n, f)] = '\0';
	}
	fclose(f);
	return buf;
}

static void test_save(void)
{
	char dir[] = "/tmp/vireo-test-config-XXXXXX";
	char path[256], sub[256], gone[300];
	static const char orig[] = "# keep me\nmemsize = \"512\"\nfoo.bar = \"x\"\n";
	struct vmxcfg *c;
	struct stat st;
	char *s;

	if (!mkdtemp(dir)) {
		T_FAIL("mkdtemp: %s", strerror(errno));
		return;
	}
	snprintf(path, sizeof(path), "%s/vm.vmx", dir);

	/* A new file. */
	T_EQ_I64(vmx_write_file_atomic(path, orig, strlen(orig), errbuf, sizeof(errbuf)), 0);
	s = slurp(path);
	T_STREQ(s, orig);
	free(s);
	T_EQ_I64(chmod(path, 0640), 0);

	/* Load, change, save: comments kept, mode kept, no temporaries left. */
	c = vmxcfg_load(path, errbuf, sizeof(errbuf));
	T_ASSERT(c != NULL);
	if (!c)
		goto out;
	T_STREQ(vmxcfg_path(c), path);
	T_EQ_I64(vmxcfg_set(c, "memsize", "1024"), 0);
	T_EQ_I64(vmxcfg_set(c, "numvcpus", "2"), 0);
	T_EQ_I64(vmxcfg_save(c, errbuf, sizeof(errbuf)), 0);
	s = slurp(path);
	T_STREQ(s, "# keep me\nmemsize = \"1024\"\nfoo.bar = \"x\"\nnumvcpus = \"2\"\n");
	free(s);
	T_EQ_U64(vmxcfg_line(c, "numvcpus"), 4);   /* now in the file */
	T_EQ_I64(stat(path, &st), 0);
	T_EQ_U64(st.st_mode & 07777, 0640);
	T_EQ_I64(count_temps(dir), 0);

	/*
	 * A write that fails part-way: RLIMIT_FSIZE makes write() return EFBIG
	 * (SIGXFSZ ignored).  The original must be untouched, no temp left.
	 */
	{
		struct rlimit old, lim;
		char *bigval = malloc(20000);
		int r;
		if (bigval && getrlimit(RLIMIT_FSIZE, &old) == 0) {
			memset(bigval, 'v', 19999);
			bigval[19999] = '\0';
			T_EQ_I64(vmxcfg_set(c, "big", bigval), 0);
			signal(SIGXFSZ, SIG_IGN);
			lim = old;
			lim.rlim_cur = 4096;
			T_EQ_I64(setrlimit(RLIMIT_FSIZE, &lim), 0);
			errbuf[0] = '\0';
			r = vmxcfg_save(c, errbuf, sizeof(errbuf));
			setrlimit(RLIMIT_FSIZE, &old);
			signal(SIGXFSZ, SIG_DFL);
			T_EQ_I64(r, -1);
			T_CONTAINS(errbuf, path);
			T_CONTAINS(errbuf, "write");
			s = slurp(path);
			T_STREQ(s, "# keep me\nmemsize = \"1024\"\nfoo.bar = \"x\"\nnumvcpus = \"2\"\n");
			free(s);
			T_EQ_I64(count_temps(dir), 0);
			T_EQ_I64(vmxcfg_remove(c, "big"), 0);
		}
		free(bigval);
	}

	/* Saving through a symlink updates the file it points at; the link stays. */
	{
		char link[300];
		struct stat lst;
		snprintf(link, sizeof(link), "%s/link.vmx", dir);
		T_EQ_I64(symlink("vm.vmx", link), 0);
		T_EQ_I64(vmx_write_file_atomic(link, "via = \"link\"\n", 14, errbuf, sizeof(errbuf)), 0);
		T_EQ_I64(lstat(link, &lst), 0);
		T_ASSERT(S_ISLNK(lst.st_mode));
		s = slurp(path);
		T_STREQ(s, "via = \"link\"\n");
		free(s);
		T_EQ_I64(stat(path, &st), 0);
		T_EQ_U64(st.st_mode & 07777, 0640);
		unlink(link);
		T_EQ_I64(vmxcfg_save(c, errbuf, sizeof(errbuf)), 0);   /* put it back */
	}

	/* A rename that fails (the target is a folder): temp removed. */
	snprintf(sub, sizeof(sub), "%s/sub.vmx", dir);
	T_EQ_I64(mkdir(sub, 0755), 0);
	T_EQ_I64(vmx_write_file_atomic(sub, "x", 1, errbuf, sizeof(errbuf)), -1);
	T_CONTAINS(errbuf, "sub.vmx: rename");
	T_EQ_I64(count_temps(dir), 0);
	rmdir(sub);

	/* A folder that vanished: an error naming the path, nothing created. */
	snprintf(gone, sizeof(gone), "%s/gone/vm.vmx", dir);
	T_EQ_I64(vmx_write_file_atomic(gone, "x", 1, errbuf, sizeof(errbuf)), -1);
	T_CONTAINS(errbuf, gone);

	/* Loading errors name the file. */
	T_ASSERT(vmxcfg_load(gone, errbuf, sizeof(errbuf)) == NULL);
	T_CONTAINS(errbuf, gone);
	T_CONTAINS(errbuf, "No such file");
	T_ASSERT(vmxcfg_load(dir, errbuf, sizeof(errbuf)) == NULL);
	T_CONTAINS(errbuf, "is a directory");

	/* A syntax error in a loaded file names the path and line. */
	T_EQ_I64(vmx_write_file_atomic(path, "a = \"1\"\nb = \"2\n", 14, errbuf, sizeof(errbuf)), 0);
	T_ASSERT(vmxcfg_load(path, errbuf, sizeof(errbuf)) == NULL);
	{
		char want[320];
		snprintf(want, sizeof(want), "%s:2: unterminated quote", path);
		T_STREQ(errbuf, want);
	}

	/* vmxcfg_new + set + save creates a file. */
	vmxcfg_free(c);
	unlink(path);
	c = vmxcfg_new(path);
	T_ASSERT(c != NULL);
	if (c) {
		T_EQ_I64(vmxcfg_set(c, "config.version", "8"), 0);
		T_EQ_I64(vmxcfg_save(c, errbuf, sizeof(errbuf)), 0);
		s = slurp(path);
		T_STREQ(s, "config.version = \"8\"\n");
		free(s);
	}
out:
	vmxcfg_free(c);
	unlink(path);
	T_EQ_I64(count_temps(dir), 0);
	T_EQ_I64(rmdir(dir), 0);
}

int main(void)
{
	test_round_trip();
	test_duplicates_and_remove();
	test_escapes();
	test_syntax_errors();
	test_typed_getters();
	test_save();
	return T_DONE();
}

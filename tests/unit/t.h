/*
 * t.h — a tiny test helper for the unit and device tests.
 *
 *   T_ASSERT(cond)          T_EQ_U64(a, b)      T_EQ_I64(a, b)
 *   T_STREQ(a, b)           T_MEMEQ(a, b, n)    T_CONTAINS(haystack, needle)
 *   return T_DONE();
 *
 * A failed check prints "file:line: FAIL ..." with both values and counts;
 * the test goes on so one run shows every failure.  T_DONE() prints a summary
 * and yields the exit status (0: all passed).  Each macro evaluates its
 * arguments once and is itself an expression-statement usable anywhere.
 * Call T_FAIL(fmt, ...) for a failure a macro cannot express.
 */
#ifndef VIREO_TEST_T_H
#define VIREO_TEST_T_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#if defined(__GNUC__)
#define T_UNUSED_ __attribute__((unused))
#else
#define T_UNUSED_
#endif

static unsigned t_failures T_UNUSED_;
static unsigned t_checks T_UNUSED_;

#define T_FAIL(...)                                                              \
	do {                                                                     \
		t_failures++;                                                    \
		fprintf(stderr, "%s:%d: FAIL: ", __FILE__, __LINE__);            \
		fprintf(stderr, __VA_ARGS__);                                    \
		fputc('\n', stderr);                                             \
	} while (0)

#define T_ASSERT(cond)                                                           \
	do {                                                                     \
		t_checks++;                                                      \
		if (!(cond)) {                                                   \
			t_failures++;                                            \
			fprintf(stderr, "%s:%d: FAIL: %s\n", __FILE__, __LINE__, #cond); \
		}                                                                \
	} while (0)

#define T_EQ_U64(a, b)                                                           \
	do {                                                                     \
		uint64_t t_a_ = (uint64_t)(a), t_b_ = (uint64_t)(b);             \
		t_checks++;                                                      \
		if (t_a_ != t_b_) {                                              \
			t_failures++;                                            \
			fprintf(stderr,                                          \
			        "%s:%d: FAIL: %s == %s: 0x%" PRIx64 " (%" PRIu64 ") != 0x%" PRIx64 " (%" PRIu64 ")\n", \
			        __FILE__, __LINE__, #a, #b, t_a_, t_a_, t_b_, t_b_); \
		}                                                                \
	} while (0)

#define T_EQ_I64(a, b)                                                           \
	do {                                                                     \
		int64_t t_a_ = (int64_t)(a), t_b_ = (int64_t)(b);                \
		t_checks++;                                                      \
		if (t_a_ != t_b_) {                                              \
			t_failures++;                                            \
			fprintf(stderr, "%s:%d: FAIL: %s == %s: %" PRId64 " != %" PRId64 "\n", \
			        __FILE__, __LINE__, #a, #b, t_a_, t_b_);         \
		}                                                                \
	} while (0)

/* NULL is equal only to NULL. */
#define T_STREQ(a, b)                                                            \
	do {                                                                     \
		const char *t_a_ = (a), *t_b_ = (b);                             \
		t_checks++;                                                      \
		if (!t_a_ || !t_b_ ? t_a_ != t_b_ : strcmp(t_a_, t_b_) != 0) {   \
			t_failures++;                                            \
			fprintf(stderr, "%s:%d: FAIL: %s == %s: \"%s\" != \"%s\"\n", \
			        __FILE__, __LINE__, #a, #b, t_a_ ? t_a_ : "(null)", \
			        t_b_ ? t_b_ : "(null)");                          \
		}                                                                \
	} while (0)

#define T_MEMEQ(a, b, n)                                                         \
	do {                                                                     \
		const unsigned char *t_a_ = (const unsigned char *)(a);          \
		const unsigned char *t_b_ = (const unsigned char *)(b);          \
		size_t t_n_ = (n);                                               \
		t_checks++;                                                      \
		for (size_t t_i_ = 0; t_i_ < t_n_; t_i_++) {                     \
			if (t_a_[t_i_] != t_b_[t_i_]) {                          \
				t_failures++;                                    \
				fprintf(stderr, "%s:%d: FAIL: %s == %s: byte %zu: 0x%02x != 0x%02x\n", \
				        __FILE__, __LINE__, #a, #b, t_i_, t_a_[t_i_], t_b_[t_i_]); \
				break;                                           \
			}                                                        \
		}                                                                \
	} while (0)

/* hay contains needle (both strings; NULL hay fails). */
#define T_CONTAINS(hay, needle)                                                  \
	do {                                                                     \
		const char *t_h_ = (hay), *t_n_ = (needle);                      \
		t_checks++;                                                      \
		if (!t_h_ || !strstr(t_h_, t_n_)) {                              \
			t_failures++;                                            \
			fprintf(stderr, "%s:%d: FAIL: %s contains \"%s\": \"%s\"\n", \
			        __FILE__, __LINE__, #hay, t_n_, t_h_ ? t_h_ : "(null)"); \
		}                                                                \
	} while (0)

#define T_DONE()                                                                 \
	(t_failures ? (fprintf(stderr, "%s: %u of %u checks failed\n", __FILE__,   \
	                       t_failures, t_checks), 1)                         \
	            : (printf("%s: all %u checks passed\n", __FILE__, t_checks), 0))

#endif

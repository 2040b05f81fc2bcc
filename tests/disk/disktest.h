/*
 * disktest.h — helpers shared by the disk tests: a scratch directory,
 * deterministic patterns, running qemu-img, reading whole files.
 */
#ifndef VIREO_TEST_DISKTEST_H
#define VIREO_TEST_DISKTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A fresh directory under $TMPDIR (removed by dt_cleanup()). */
const char *dt_dir(void);
void dt_cleanup(void);
/* dt_dir()/name, in a static rotating buffer. */
const char *dt_path(const char *name);

uint64_t dt_rand(void);
void dt_seed(uint64_t s);
/* Fills buf with bytes that depend on (tag, absolute byte offset). */
void dt_pattern(void *buf, size_t len, uint64_t tag, uint64_t off);

/* Runs a shell command; returns its exit status (-1 if it did not run). Output to *out if given. */
int dt_sh(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool dt_have_qemu_img(void);

/* The whole file, or NULL; *len set. */
uint8_t *dt_slurp(const char *path, size_t *len);
bool dt_file_equal(const uint8_t *a, size_t alen, const char *path);
void dt_patch(const char *path, uint64_t off, const void *data, size_t len);

#endif

/*
 * config.h — the .vmx file: VMware's `key = "value"` syntax.
 *
 * Keys are case-insensitive; the last duplicate wins; `#` starts a comment.
 * Every line (comments, blank lines, unknown keys) is kept, so rewriting a
 * file changes only the keys Vireo set.  Saving writes a temporary file in
 * the same folder, fsyncs it, renames it over the original and fsyncs the
 * folder: a crash leaves the old or the new file, never a torn one.
 *
 * Errors name the file and line (syntax) or the file, key and line (values):
 *   "vm.vmx:7: memsize = "abc": not a number"
 */
#ifndef VIREO_CONFIG_H
#define VIREO_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vmxcfg;

struct vmxcfg *vmxcfg_new(const char *path);
/* NULL on error, with err = "path:line: what is wrong". */
struct vmxcfg *vmxcfg_load(const char *path, char *err, size_t errlen);
/* Parse from memory (fuzzing, tests); name is used in messages. */
struct vmxcfg *vmxcfg_parse(const char *name, const char *text, size_t len,
                            char *err, size_t errlen);
void vmxcfg_free(struct vmxcfg *c);

const char *vmxcfg_path(const struct vmxcfg *c);
/* Value of the last occurrence of key (case-insensitive), or NULL. */
const char *vmxcfg_get(const struct vmxcfg *c, const char *key);
/* Line number of that last occurrence (0 when absent or set in memory). */
unsigned vmxcfg_line(const struct vmxcfg *c, const char *key);

/*
 * Typed getters.  Each returns 0 and stores the default when the key is
 * absent, 0 and the value when valid, or -1 with err naming file, key, line
 * and the accepted range when the value is bad.
 */
int vmxcfg_get_bool(const struct vmxcfg *c, const char *key, bool def, bool *out,
                    char *err, size_t errlen);
int vmxcfg_get_u64(const struct vmxcfg *c, const char *key, uint64_t def,
                   uint64_t min, uint64_t max, uint64_t *out, char *err, size_t errlen);
/* One of a NULL-terminated list of choices, compared case-insensitively. */
int vmxcfg_get_enum(const struct vmxcfg *c, const char *key, const char *def,
                    const char *const *choices, const char **out, char *err, size_t errlen);

/* Set (replacing the last occurrence in place, or appending). */
int vmxcfg_set(struct vmxcfg *c, const char *key, const char *value);
int vmxcfg_remove(struct vmxcfg *c, const char *key);
/* Iterate keys in file order (every occurrence); returns false at the end. */
bool vmxcfg_next(const struct vmxcfg *c, size_t *iter, const char **key, const char **value);

/* Atomic save to the path it was loaded from (or created with). */
int vmxcfg_save(struct vmxcfg *c, char *err, size_t errlen);
/* Render to a malloc'd string (tests, fuzzing). */
char *vmxcfg_render(const struct vmxcfg *c, size_t *len);

/* Write data to path atomically: temp file, fsync, rename, fsync dir. */
int vmx_write_file_atomic(const char *path, const void *data, size_t len,
                          char *err, size_t errlen);

#endif

/*
 * vmdb.h — VMDB, Vireo's hierarchical state bus.
 *
 * A database (struct vmdb_db) holds a tree of typed values whose every path
 * is declared by a schema (vmdb/schema.txt, built in).  Arrays are declared as
 * `#` components and addressed by decimal index: /vm/3/state/power.
 *
 * Everything is done through a context (struct vmdb_ctx): it carries the
 * current path (relative paths resolve against it), the identity used for
 * access control, the queue of pending notifications and the open
 * transaction.  A context is used by one thread at a time; a process may
 * have many.  All functions return 0 (or a count) on success and a negative
 * errno on failure:
 *   -EINVAL  malformed path, path not in the schema, value of the wrong type
 *   -ENOENT  no such node          -EISDIR  a leaf op on an interior node
 *   -EACCES  schema marks the path read-only for this identity
 *   -ENOTCONN / -EPROTO / -ETIMEDOUT  the remote peer (client databases)
 *
 * Watches: callbacks are never called from inside vmdb_set(); each change is
 * queued on the watching context, a second change of the same path before
 * delivery replaces the first (one notification, latest value), and
 * vmdb_ctx_dispatch() delivers them.  vmdb_ctx_fd() becomes readable when
 * the queue is non-empty; vmdb_ctx_fd_cb() has vmx_fd_cb's shape, so
 *     vmx_loop_add_fd(loop, vmdb_ctx_fd(c), EPOLLIN, vmdb_ctx_fd_cb, c);
 * is the adapter for the VMX poll loop (vmdb_glib.h has the GLib one).
 *
 * Transactions: between vmdb_begin() and vmdb_commit() sets and deletes are
 * staged in the context (its own gets see them); the commit validates all of
 * them and then applies them under one lock, and queues their notifications
 * to each watcher in one step, so readers and watchers see all or nothing.
 */
#ifndef VIREO_VMDB_H
#define VIREO_VMDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define VMDB_PATH_MAX 256      /* including the NUL */
#define VMDB_NAME_MAX 64       /* one path component */
#define VMDB_DEPTH_MAX 16
#define VMDB_STRING_MAX 4096   /* string value bytes, without the NUL */

enum vmdb_type { VMDB_T_NONE = 0, VMDB_T_STRING, VMDB_T_INT, VMDB_T_BOOL, VMDB_T_ENUM };

struct vmdb_value {
	enum vmdb_type type;
	int64_t i;           /* INT, BOOL (0/1), ENUM (choice index) */
	const char *s;       /* STRING, ENUM (choice name) */
};

struct vmdb_schema;
struct vmdb_db;
struct vmdb_ctx;

/* Who a context acts for.  local: the process that owns the database. */
struct vmdb_ident {
	bool local;
	uid_t uid;
	pid_t pid;
	const char *own;     /* subtree this identity owns (may write ro paths), or NULL */
};

/* ---- schema ---- */
/*
 * Text format, one declaration per line, `#` comments after whitespace:
 *   PATH  TYPE  ACCESS  [CHOICES]
 * TYPE is string | int | bool | enum; ACCESS is rw (clients may set) or ro
 * (only the local process and the owner of the subtree); enum CHOICES are
 * comma-separated.  Interior nodes are implied by the leaves.
 */
struct vmdb_schema *vmdb_schema_parse(const char *text, size_t len, char *err, size_t errlen);
void vmdb_schema_free(struct vmdb_schema *s);
/* The schema compiled from vmdb/schema.txt (parsed once, never freed). */
const struct vmdb_schema *vmdb_schema_builtin(void);
/* Peers refuse each other when their schemas differ. */
uint32_t vmdb_schema_hash(const struct vmdb_schema *s);
/* Type and access of a path ("/vm/3/state/power"); -EINVAL when not declared. */
int vmdb_schema_lookup(const struct vmdb_schema *s, const char *path, enum vmdb_type *type,
                       bool *ro, const char *const **choices, unsigned *nchoices);

/* ---- database ---- */
struct vmdb_db *vmdb_db_new(const struct vmdb_schema *s);
void vmdb_db_free(struct vmdb_db *db);
const struct vmdb_schema *vmdb_db_schema(const struct vmdb_db *db);
size_t vmdb_db_node_count(struct vmdb_db *db);

/* ---- contexts ---- */
/* id NULL: local identity (full rights).  id->own is copied. */
struct vmdb_ctx *vmdb_ctx_new(struct vmdb_db *db, const struct vmdb_ident *id);
void vmdb_ctx_free(struct vmdb_ctx *c);
struct vmdb_db *vmdb_ctx_db(struct vmdb_ctx *c);
int vmdb_ctx_cd(struct vmdb_ctx *c, const char *path);
const char *vmdb_ctx_cwd(const struct vmdb_ctx *c);
int vmdb_ctx_fd(struct vmdb_ctx *c);
/* Deliver every queued notification; returns how many paths were delivered. */
int vmdb_ctx_dispatch(struct vmdb_ctx *c);
void vmdb_ctx_fd_cb(void *ctx, uint32_t events);
/* Number of paths queued and not yet delivered. */
size_t vmdb_ctx_pending(struct vmdb_ctx *c);

/* ---- values ---- */
/* Value given as text, parsed by the path's type (bool: true/false/1/0). */
int vmdb_set(struct vmdb_ctx *c, const char *path, const char *text);
int vmdb_set_int(struct vmdb_ctx *c, const char *path, int64_t v);
int vmdb_set_bool(struct vmdb_ctx *c, const char *path, bool v);
int vmdb_set_value(struct vmdb_ctx *c, const char *path, const struct vmdb_value *v);
/* Deletes the node and its subtree; deleting what does not exist is not an error. */
int vmdb_delete(struct vmdb_ctx *c, const char *path);
/* Text form of a leaf into buf (truncated to len); returns its full length. */
int vmdb_get(struct vmdb_ctx *c, const char *path, char *buf, size_t len);
int vmdb_get_int(struct vmdb_ctx *c, const char *path, int64_t *out);
int vmdb_get_bool(struct vmdb_ctx *c, const char *path, bool *out);
/* 1 when the node exists (leaf or interior), 0 when not, <0 on a bad path. */
int vmdb_exists(struct vmdb_ctx *c, const char *path);
/* Calls cb for each child (arrays in index order); returns the count. */
typedef void (*vmdb_list_cb)(void *opaque, const char *name, bool is_leaf);
int vmdb_list(struct vmdb_ctx *c, const char *path, vmdb_list_cb cb, void *opaque);
/* Calls cb for every leaf at or below path (outside the lock); returns the count. */
typedef void (*vmdb_walk_cb)(void *opaque, const char *path, const struct vmdb_value *v);
int vmdb_walk(struct vmdb_ctx *c, const char *path, vmdb_walk_cb cb, void *opaque);

/* Text form of a value into buf; returns its full length. */
int vmdb_value_format(const struct vmdb_value *v, char *buf, size_t len);

/* ---- transactions ---- */
int vmdb_begin(struct vmdb_ctx *c);
int vmdb_commit(struct vmdb_ctx *c);
void vmdb_abort(struct vmdb_ctx *c);
bool vmdb_in_txn(const struct vmdb_ctx *c);

/* ---- watches ---- */
/* v is NULL when the path (and everything under it) was deleted. */
typedef void (*vmdb_watch_cb)(void *opaque, const char *path, const struct vmdb_value *v);
/* Watch path and everything below it; returns a watch id (> 0). */
int vmdb_watch(struct vmdb_ctx *c, const char *path, vmdb_watch_cb cb, void *opaque);
int vmdb_unwatch(struct vmdb_ctx *c, int watch_id);

const char *vmdb_strerror(int err);

#endif

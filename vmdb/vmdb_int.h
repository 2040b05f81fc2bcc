/*
 * vmdb_int.h — what vmdb.c shares with the server and client halves.
 */
#ifndef VIREO_VMDB_INT_H
#define VIREO_VMDB_INT_H

#include "vmdb.h"
#include "vmdb_wire.h"

/*
 * A database that mirrors a server forwards writes there.  commit sends the
 * ops of one context (a single set or a whole transaction) and waits for the
 * answer; the mirror changes when the server's UPDATE comes back.
 */
struct vmdb_remote_ops {
	int (*commit)(void *remote, const struct vmdb_op *ops, unsigned n);
};
void vmdb_db_set_remote(struct vmdb_db *db, const struct vmdb_remote_ops *ops, void *remote);

/*
 * Validate all ops for identity id (schema, types, access), then apply them
 * atomically and queue notifications.  force skips the access check (a
 * mirror applying what its server already decided).  Returns 0 or the first
 * error, with *bad set to the index of the op that failed.
 */
int vmdb_db_apply(struct vmdb_db *db, const struct vmdb_op *ops, unsigned n,
                  const struct vmdb_ident *id, bool force, unsigned *bad);

/* Collect every leaf at or below path as SET ops (deep copies). */
int vmdb_db_snapshot(struct vmdb_db *db, const char *path, struct vmdb_op **ops, unsigned *n);
void vmdb_ops_free(struct vmdb_op *ops, unsigned n);

/*
 * Take the whole queue of a context as ops, in delivery order, and clear it
 * (the server turns a peer's queue into UPDATE messages).
 */
int vmdb_ctx_take_queue(struct vmdb_ctx *c, struct vmdb_op **ops, unsigned *n);
const struct vmdb_ident *vmdb_ctx_ident(const struct vmdb_ctx *c);

/* Remove the watch on exactly path (a server peer's subscription). */
int vmdb_unwatch_path(struct vmdb_ctx *c, const char *path);

/* Normalise path against the context's cwd into out[VMDB_PATH_MAX]. */
int vmdb_ctx_abspath(const struct vmdb_ctx *c, const char *path, char *out);

/* Deep copy of a value's string (for ops kept beyond the call). */
int vmdb_op_copy(struct vmdb_op *dst, const struct vmdb_op *src);
void vmdb_op_clear(struct vmdb_op *op);

/* The text of vmdb/schema.txt (generated source). */
extern const char vmdb_schema_text[];

#endif

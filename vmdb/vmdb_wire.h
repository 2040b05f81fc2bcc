/*
 * vmdb_wire.h — the VMDB pipe protocol (Unix stream socket).
 *
 * Every message is a 12-byte header and a payload, little-endian:
 *   u8 version (1)  u8 type  u16 flags  u32 payload length  u32 request id
 * The payload is at most VMDB_WIRE_MAX_PAYLOAD bytes.  Strings are u16
 * length + bytes (no NUL inside); paths are canonical absolute VMDB paths.
 *
 *   HELLO    c->s  u32 schema hash, str client name, str owned subtree ("" none)
 *   WELCOME  s->c  i32 status, u32 peer id
 *   SET      c->s  batch; flags TXN_PART: stage only (a later SET commits)
 *   ABORT    c->s  drop the staged part of a transaction
 *   RESULT   s->c  i32 status, str message        (answers SET / SUB / ABORT)
 *   SUB      c->s  str path: snapshot of the subtree, then its changes
 *   UNSUB    c->s  str path
 *   UPDATE   s->c  batch; flags MORE: the next UPDATE belongs to the same
 *                  atomic group; SNAPSHOT: answer to SUB (request id)
 * batch: u32 count, then count ops: u8 kind (1 set, 2 delete), str path and,
 * for set, u8 type then the value: string str | int i64 | bool u8 | enum u16.
 *
 * Anything malformed (unknown type or flag bits, a length that overruns,
 * trailing bytes, a bad path, an oversized frame) is a protocol error and
 * closes that connection only.
 */
#ifndef VIREO_VMDB_WIRE_H
#define VIREO_VMDB_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "vmdb.h"

#define VMDB_WIRE_VERSION 1
#define VMDB_WIRE_HDR 12
#define VMDB_WIRE_MAX_PAYLOAD (1u << 20)
#define VMDB_WIRE_MAX_OPS 65536u

enum vmdb_msg {
	VMDB_MSG_HELLO = 1,
	VMDB_MSG_WELCOME,
	VMDB_MSG_SET,
	VMDB_MSG_ABORT,
	VMDB_MSG_RESULT,
	VMDB_MSG_SUB,
	VMDB_MSG_UNSUB,
	VMDB_MSG_UPDATE,
	VMDB_MSG__MAX
};

#define VMDB_F_TXN_PART 0x1u  /* SET */
#define VMDB_F_MORE     0x1u  /* UPDATE */
#define VMDB_F_SNAPSHOT 0x2u  /* UPDATE */

enum vmdb_op_kind { VMDB_OP_SET = 1, VMDB_OP_DEL = 2 };

struct vmdb_op {
	uint8_t kind;
	char *path;
	struct vmdb_value v;
};

struct vmdb_wire_hdr {
	uint8_t version, type;
	uint16_t flags;
	uint32_t len, reqid;
};

/* A decoded message: strings point into an arena owned by the message. */
struct vmdb_msgbuf {
	struct vmdb_wire_hdr h;
	uint32_t u32;          /* HELLO schema hash, WELCOME peer id */
	int32_t status;        /* WELCOME, RESULT */
	char *str1, *str2;     /* HELLO name/own; RESULT message; SUB/UNSUB path */
	unsigned nops;
	struct vmdb_op *ops;
	char *arena;
};

/* Growable output buffer. */
struct vmdb_wbuf {
	uint8_t *p;
	size_t len, cap;
};

/*
 * Header check: 0 when valid, -EPROTO (bad version, type or flags) or
 * -EMSGSIZE (payload too big).
 */
int vmdb_wire_parse_hdr(const uint8_t *p, struct vmdb_wire_hdr *h);
/* Decode a payload for header h; 0 or -EPROTO.  vmdb_wire_msg_free() after. */
int vmdb_wire_decode(const struct vmdb_wire_hdr *h, const uint8_t *payload,
                     struct vmdb_msgbuf *m);
void vmdb_wire_msg_free(struct vmdb_msgbuf *m);
/* 0 when path is a canonical absolute VMDB path. */
int vmdb_wire_check_path(const char *p, size_t len);

/* Encoders append one whole message to b (returns 0, -ENOMEM or -EMSGSIZE). */
int vmdb_wire_put_hello(struct vmdb_wbuf *b, uint32_t reqid, uint32_t hash,
                        const char *name, const char *own);
int vmdb_wire_put_welcome(struct vmdb_wbuf *b, uint32_t reqid, int32_t status, uint32_t peer);
int vmdb_wire_put_result(struct vmdb_wbuf *b, uint32_t reqid, int32_t status, const char *msg);
int vmdb_wire_put_path(struct vmdb_wbuf *b, enum vmdb_msg type, uint32_t reqid, const char *path);
int vmdb_wire_put_abort(struct vmdb_wbuf *b, uint32_t reqid);
/* SET or UPDATE with ops; the caller splits batches to fit (see op_size). */
int vmdb_wire_put_batch(struct vmdb_wbuf *b, enum vmdb_msg type, uint16_t flags,
                        uint32_t reqid, const struct vmdb_op *ops, unsigned n);
/* Encoded size of one op. */
size_t vmdb_wire_op_size(const struct vmdb_op *op);

void vmdb_wbuf_free(struct vmdb_wbuf *b);
/* Drop the first n bytes. */
void vmdb_wbuf_consume(struct vmdb_wbuf *b, size_t n);

#endif

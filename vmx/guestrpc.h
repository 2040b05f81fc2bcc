/*
 * guestrpc.h — the GuestRPC message channel (backdoor command 30 and the
 * high-bandwidth port), spec ../shared/spec/guest-interfaces.md section 3.
 *
 * A pure state machine: it takes the guest's register values and returns
 * the answer registers, so tests and the fuzzer drive it without a VM.  The
 * owner (vmx/tools.c) serialises calls with its own lock and gets complete
 * messages through struct grpc_ops:
 *   RPCI  guest -> host request, the reply must be ready at once;
 *   TCLO  host -> guest commands: the guest polls, the owner hands out at
 *         most one command per RECVSIZE and gets its result with the next
 *         SENDSIZE on that channel.
 * Everything the guest sends is untrusted: out-of-sequence sub-commands,
 * oversized messages and bad cookies are refused (status 0); the channel is
 * reset (back to idle, buffers dropped) except on a bad cookie, which must
 * not let one guest process disturb another's channel.
 */
#ifndef VIREO_GUESTRPC_H
#define VIREO_GUESTRPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backdoor.h"

#define BDOOR_CMD_MESSAGE   30

#define GRPC_PROTO_RPCI     0x49435052u   /* "RPCI" */
#define GRPC_PROTO_TCLO     0x4F4C4354u   /* "TCLO" */
#define GRPC_FLAG_COOKIE    0x80000000u

#define GRPC_TYPE_OPEN        0
#define GRPC_TYPE_SENDSIZE    1
#define GRPC_TYPE_SENDPAYLOAD 2
#define GRPC_TYPE_RECVSIZE    3
#define GRPC_TYPE_RECVPAYLOAD 4
#define GRPC_TYPE_RECVSTATUS  5
#define GRPC_TYPE_CLOSE       6

#define GRPC_ST_SUCCESS  0x0001u
#define GRPC_ST_DORECV   0x0002u
#define GRPC_ST_CLOSED   0x0004u
#define GRPC_ST_UNSENT   0x0008u
#define GRPC_ST_CPT      0x0010u
#define GRPC_ST_POWEROFF 0x0020u
#define GRPC_ST_TIMEOUT  0x0040u
#define GRPC_ST_HB       0x0080u

#define GRPC_MAX_CHANNELS 128
#define GRPC_MAX_MSG_DEFAULT (64u * 1024u)
#define GRPC_HB_CMD_MESSAGE 0

struct grpc;

struct grpc_ops {
	/*
	 * A complete RPCI request (binary-safe, len bytes).  Store a malloc'd
	 * reply in *reply / *reply_len and return 0; return -1 to refuse the
	 * request (the last send sub-command fails and the channel is reset).
	 */
	int (*rpci)(void *opaque, unsigned chan, const uint8_t *req, size_t len,
	            uint8_t **reply, size_t *reply_len);
	/* TCLO poll: a malloc'd command to deliver (*len bytes), or NULL for none. */
	uint8_t *(*tclo_next)(void *opaque, unsigned chan, size_t *len);
	/*
	 * The guest's result for the command it last received, or res == NULL
	 * when that command was lost (RECVSTATUS 0, channel reset or closed):
	 * the owner may queue it again.
	 */
	void (*tclo_result)(void *opaque, unsigned chan, const uint8_t *res, size_t len);
	/* A TCLO channel was opened / closed (also when reclaimed or reset by grpc_reset). */
	void (*tclo_open)(void *opaque, unsigned chan);
	void (*tclo_close)(void *opaque, unsigned chan);
	/* Poll on a TCLO channel (the tools heartbeat). */
	void (*tclo_poll)(void *opaque, unsigned chan);
};

struct grpc *grpc_new(const struct grpc_ops *ops, void *opaque);
void grpc_free(struct grpc *g);
/* Close every channel (VM reset). */
void grpc_reset(struct grpc *g);

/* Offer high bandwidth per direction (guest->host send, host->guest receive). */
void grpc_set_hb(struct grpc *g, bool send, bool recv);
/* Largest message accepted or returned (default GRPC_MAX_MSG_DEFAULT). */
void grpc_set_max_msg(struct grpc *g, size_t max);
/* Deterministic cookies (tests, fuzzing); 0 = from getrandom. */
void grpc_set_seed(struct grpc *g, uint64_t seed);
/* Monotonic time source for idle-channel reclaim (tests); NULL = host clock. */
void grpc_set_clock(struct grpc *g, uint64_t (*now_ns)(void));

/* Backdoor command 30 (low bandwidth): c in, answer registers out. */
void grpc_message(struct grpc *g, struct backdoor_call *c);
/*
 * One piece of a high-bandwidth transfer (port 0x5659): regs at the start
 * of the piece, write = guest->host (REP OUTSB).  For reads fills data.
 * Returns false when the piece is refused (the caller clears the success
 * bit in hi16(EBX); data of a refused read is zeroed).
 */
bool grpc_hb(struct grpc *g, const struct backdoor_call *regs, bool write, uint8_t *data, size_t len);

/* Introspection for tests and the tools layer. */
unsigned grpc_open_channels(const struct grpc *g);
bool grpc_channel_is_tclo(const struct grpc *g, unsigned chan);

#endif

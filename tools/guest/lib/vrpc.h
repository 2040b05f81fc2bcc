/*
 * vrpc.h — GuestRPC message channels over the backdoor (RPCI and TCLO).
 *
 * Facts: ../../../shared/spec/guest-interfaces.md sections 3 and 4.  A
 * channel is opened with a protocol word and carries length-counted byte
 * strings; payloads go 4 bytes per call, or in one string I/O when the
 * host sets the high-bandwidth flag for that transfer.
 */
#ifndef VIREO_VRPC_H
#define VIREO_VRPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VRPC_PROTO_RPCI 0x49435052u
#define VRPC_PROTO_TCLO 0x4F4C4354u
/* Replies and commands larger than this are refused (the guest's own limit). */
#define VRPC_MAX_MSG (1u << 20)

struct vrpc_chan {
	uint16_t id;
	uint32_t cookie_hi, cookie_lo;
	bool open;
	bool use_hb;        /* take the HB path when the host offers it */
	unsigned hb_used;   /* transfers that went over the HB port (for tests) */
};

/* Open a channel for proto; false when the host refuses (no backdoor, no slot). */
bool vrpc_open(struct vrpc_chan *ch, uint32_t proto);
void vrpc_close(struct vrpc_chan *ch);
/* Send one message (len may be 0). */
bool vrpc_send(struct vrpc_chan *ch, const void *buf, size_t len);
/*
 * Receive the waiting message, if any: *out is malloc'd and NUL-terminated
 * (not counted in *len), NULL with *len = 0 when nothing waits.
 */
bool vrpc_recv(struct vrpc_chan *ch, char **out, size_t *len);

/*
 * One RPCI request on a fresh channel (or on ch when non-NULL): send, then
 * read the reply.  *reply is malloc'd, NUL-terminated, prefix included
 * ("1 ..." / "0 ...").  False on a channel failure.
 */
bool vrpc_call(struct vrpc_chan *ch, const void *req, size_t len, char **reply, size_t *rlen);
/* vrpc_call of a C string on a fresh channel; true when the reply starts "1". */
bool vrpc_simple(const char *req);

#endif

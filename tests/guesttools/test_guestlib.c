/*
 * test_guestlib.c — Vireo's guest RPC library (tools/guest/lib) against the
 * host's real tools core (vmx/tools.c + vmx/guestrpc.c) in one process:
 * the library's backdoor calls go to tools_core_message / tools_core_hb
 * instead of the I/O ports.  RPCI info-set / info-get, the TCLO reset
 * handshake, SetGuestInfo and tools.set.version reaching the host's report,
 * and the high-bandwidth path in both directions.
 */
#include "../unit/t.h"

#include "vmx/backdoor.h"
#include "vmx/tools.h"

#include "../../tools/guest/lib/vbackdoor.h"
#include "../../tools/guest/lib/vrpc.h"

#include <stdlib.h>
#include <string.h>

static void lb(void *opaque, struct vbd_regs *r)
{
	struct backdoor_call c = { .eax = r->ax, .ebx = r->bx, .ecx = r->cx, .edx = r->dx,
	                           .esi = r->si, .edi = r->di };
	/* what vmx/backdoor.c does before dispatching command 30 */
	if (c.eax != BDOOR_MAGIC || (c.ecx & 0xFFFF) != VBD_CMD_MESSAGE) {
		r->ax = 0xFFFFFFFFu;
		return;
	}
	tools_core_message(opaque, &c);
	r->ax = c.eax;
	if (c.regs_changed) {
		r->bx = c.ebx;
		r->cx = c.ecx;
		r->dx = c.edx;
		r->si = c.esi;
		r->di = c.edi;
	}
}

/* KVM hands string I/O over in pieces (spec 2.5): 1 KiB here. */
static void hb(void *opaque, struct vbd_regs *r, bool write, uint8_t *buf, size_t len)
{
	for (size_t off = 0; off < len; off += 1024) {
		size_t n = len - off < 1024 ? len - off : 1024;
		struct backdoor_call c = { .eax = r->ax, .ebx = r->bx, .ecx = (uint32_t)(len - off),
		                           .edx = r->dx, .esi = r->si, .edi = r->di, .ebp = r->bp };
		if (!tools_core_hb(opaque, &c, write, buf + off, n)) {
			r->bx &= 0xFFFFu;
			return;
		}
	}
}

/* One RPCI call on a fresh channel; the reply (malloc'd) or NULL. */
static char *rpci(const char *req)
{
	char *reply = NULL;
	size_t n = 0;
	if (!vrpc_call(NULL, req, strlen(req), &reply, &n))
		return NULL;
	return reply;
}

int main(void)
{
	struct tools *t = tools_core_new(NULL);
	T_ASSERT(t != NULL);
	if (!t)
		return T_DONE();
	struct vbd_transport tr = { .lb = lb, .hb = hb, .opaque = t };
	vbd_set_transport(&tr);

	/* RPCI: guestinfo round trip, and the exact "not found" reply */
	char *r = rpci("info-set guestinfo.vireo.test hello world");
	T_ASSERT(r != NULL);
	if (r)
		T_STREQ(r, "1 ");
	free(r);
	r = rpci("info-get guestinfo.vireo.test");
	T_ASSERT(r != NULL);
	if (r)
		T_STREQ(r, "1 hello world");
	free(r);
	const char *hv = tools_core_guestinfo(t, "vireo.test");
	T_ASSERT(hv != NULL);
	if (hv)
		T_STREQ(hv, "hello world");
	r = rpci("info-get guestinfo.nothing.here");
	T_ASSERT(r != NULL);
	if (r)
		T_STREQ(r, "0 No value found");
	free(r);
	T_ASSERT(vrpc_simple("info-set guestinfo.simple 1"));
	T_ASSERT(!vrpc_simple("info-get guestinfo.absent"));

	/* TCLO: the host starts a new channel with reset; the guest answers ATR */
	struct vrpc_chan tclo;
	T_ASSERT(vrpc_open(&tclo, VRPC_PROTO_TCLO));
	char *cmd = NULL;
	size_t clen = 0;
	const char *result = "";
	bool saw_reset = false, saw_caps = false, idle = false;
	/* run the host's start-up script until it has nothing more to say */
	for (int i = 0; i < 40 && !idle; i++) {
		T_ASSERT(vrpc_send(&tclo, result, strlen(result)));
		T_ASSERT(vrpc_recv(&tclo, &cmd, &clen));
		result = "";
		if (!cmd) {
			idle = saw_reset && saw_caps;
			tools_core_tick(t, (uint64_t)(i + 1) * 1000000000u);
			continue;
		}
		if (strcmp(cmd, "reset") == 0) {
			saw_reset = true;
			result = "OK ATR toolbox";
		} else {
			if (strcmp(cmd, "Capabilities_Register") == 0)
				saw_caps = true;
			result = "OK ";
		}
		free(cmd);
	}
	T_ASSERT(saw_reset);
	T_ASSERT(saw_caps);
	T_ASSERT(idle);
	T_ASSERT(vrpc_send(&tclo, result, strlen(result)));

	/* What vireo-toolsd reports reaches the host's report */
	T_ASSERT(vrpc_simple("tools.set.version 1024"));
	T_ASSERT(vrpc_simple("SetGuestInfo  1 vireo-guest"));
	const char *rep = tools_core_report(t, "hostname");
	T_ASSERT(rep != NULL);
	if (rep)
		T_STREQ(rep, "vireo-guest");
	rep = tools_core_report(t, "toolsversion");
	T_ASSERT(rep != NULL);
	if (rep)
		T_CONTAINS(rep, "1");

	/* A host command queued now arrives on the next poll */
	T_ASSERT(tools_core_queue(t, "ping") == 0);
	T_ASSERT(vrpc_recv(&tclo, &cmd, &clen));
	T_ASSERT(cmd != NULL);
	if (cmd)
		T_STREQ(cmd, "ping");
	free(cmd);
	T_ASSERT(vrpc_send(&tclo, "OK ", 3));
	vrpc_close(&tclo);

	/* High bandwidth both ways: a 5000-byte value goes out and comes back */
	tools_core_set_hb(t, true, true);
	size_t big = 5000;
	char *req = malloc(big + 64);
	T_ASSERT(req != NULL);
	if (req) {
		int n = snprintf(req, 64, "info-set guestinfo.big ");
		for (size_t k = 0; k < big; k++)
			req[n + k] = (char)('a' + k % 26);
		req[n + big] = '\0';
		struct vrpc_chan ch;
		T_ASSERT(vrpc_open(&ch, VRPC_PROTO_RPCI));
		char *reply = NULL;
		size_t rl = 0;
		T_ASSERT(vrpc_call(&ch, req, (size_t)n + big, &reply, &rl));
		if (reply)
			T_STREQ(reply, "1 ");
		free(reply);
		reply = NULL;
		const char *get = "info-get guestinfo.big";
		T_ASSERT(vrpc_call(&ch, get, strlen(get), &reply, &rl));
		T_EQ_U64(rl, big + 2);
		if (reply && rl == big + 2)
			T_ASSERT(memcmp(reply + 2, req + n, big) == 0);
		free(reply);
		T_ASSERT(ch.hb_used >= 2);
		vrpc_close(&ch);
		free(req);
	}

	vbd_set_transport(NULL);
	tools_core_free(t);
	return T_DONE();
}

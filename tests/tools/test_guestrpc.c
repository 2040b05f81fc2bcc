/*
 * test_guestrpc.c — the GuestRPC channel and the tools life cycle, driven
 * with the register values a guest (open-vm-tools' message.c) would use.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpcguest.h"
#include "tests/unit/t.h"
#include "vmx/config.h"

/* Check an RPCI reply and free it. */
#define RPCI_IS(t_, c_, req_, want_)                   \
	do {                                           \
		char *r_ = rg_rpci((t_), (c_), (req_)); \
		T_STREQ(r_, (want_));                  \
		free(r_);                              \
	} while (0)

static struct tools *new_tools(void)
{
	static const char cfg_text[] =
		"memsize = \"256\"\n"
		"guestinfo.fromvmx = \"set in the vmx\"\n"
		"guestinfo.hgfs.packetSize.large = \"FALSE\"\n";
	char err[256];
	struct vmxcfg *cfg = vmxcfg_parse("t.vmx", cfg_text, sizeof(cfg_text) - 1, err, sizeof(err));
	T_ASSERT(cfg != NULL);
	struct tools *t = tools_core_new(cfg);
	vmxcfg_free(cfg);
	T_ASSERT(t != NULL);
	return t;
}

static void test_rpci_guestinfo(void)
{
	struct tools *t = new_tools();
	struct rg_chan c;

	T_ASSERT(rg_open(t, &c, GRPC_PROTO_RPCI));
	RPCI_IS(t, &c, "info-get guestinfo.fromvmx", "1 set in the vmx");
	RPCI_IS(t, &c, "info-get guestinfo.hgfs.packetSize.large", "1 FALSE");
	RPCI_IS(t, &c, "info-get guestinfo.nothere", "0 No value found");
	RPCI_IS(t, &c, "info-set guestinfo.x hello there world", "1 ");
	RPCI_IS(t, &c, "info-get guestinfo.x", "1 hello there world");
	/* Senders that count the NUL: one trailing NUL is stripped. */
	T_ASSERT(rg_send(t, &c, "info-get guestinfo.x", sizeof("info-get guestinfo.x")));
	uint8_t *r;
	size_t n;
	T_ASSERT(rg_recv(t, &c, &r, &n));
	T_STREQ((char *)r, "1 hello there world");
	free(r);
	RPCI_IS(t, &c, "info-set guestinfo.empty ", "1 ");
	RPCI_IS(t, &c, "info-get guestinfo.empty", "1 ");
	RPCI_IS(t, &c, "info-set notguestinfo.x 1", "0 Invalid key");
	RPCI_IS(t, &c, "no-such-command", "0 Unknown command");
	RPCI_IS(t, &c, "log hello from the guest", "1 ");
	RPCI_IS(t, &c, "tools.set.versiontype 12352 4", "1 ");
	T_STREQ(tools_core_report(t, "toolsversion"), "12352 4");
	RPCI_IS(t, &c, "vmx.capability.unified_loop toolbox", "1 ");
	RPCI_IS(t, &c, "tools.capability.statechange ", "1 ");
	T_STREQ(tools_core_guestinfo(t, "x"), "hello there world");
	/* A zero-length request is a protocol error for the tools, not for us. */
	RPCI_IS(t, &c, "", "0 Unknown command");
	T_ASSERT(rg_close(t, &c));
	tools_core_free(t);
}

static void test_setguestinfo(void)
{
	struct tools *t = new_tools();
	struct rg_chan c;
	T_ASSERT(rg_open(t, &c, GRPC_PROTO_RPCI));

	RPCI_IS(t, &c, "SetGuestInfo  1 debian-guest", "1 ");
	T_STREQ(tools_core_report(t, "hostname"), "debian-guest");
	RPCI_IS(t, &c, "SetGuestInfo  7 12345", "1 ");
	T_STREQ(tools_core_report(t, "uptime"), "123");
	RPCI_IS(t, &c, "SetGuestInfo  10 xdr", "0 Unsupported key");
	RPCI_IS(t, &c, "SetGuestInfo  x", "0 Invalid key");

	/* OS_DETAILED: 648-byte header, binary. */
	static const char pre[] = "SetGuestInfo  11 ";
	size_t plen = sizeof(pre) - 1;
	uint8_t *m = calloc(1, plen + 648 + 32);
	memcpy(m, pre, plen);
	m[plen] = 1;
	memcpy(m + plen + 4, "debian12-64", 11);
	memcpy(m + plen + 133, "Debian GNU/Linux 12 (bookworm)", 30);
	memcpy(m + plen + 648, "prettyName='x'", 14);
	T_ASSERT(rg_send(t, &c, m, plen + 648 + 15));
	uint8_t *r;
	size_t n;
	T_ASSERT(rg_recv(t, &c, &r, &n));
	T_STREQ((char *)r, "1 ");
	free(r);
	T_STREQ(tools_core_report(t, "os"), "debian12-64");
	T_STREQ(tools_core_report(t, "osfull"), "Debian GNU/Linux 12 (bookworm)");

	/* IPADDRESS v1: count, then {ipCount, mac[19], ip[8][16]} records. */
	static const char pre2[] = "SetGuestInfo  2 ";
	plen = sizeof(pre2) - 1;
	memset(m, 0, plen + 648);
	memcpy(m, pre2, plen);
	uint8_t *v = m + plen;
	v[0] = 2;                           /* two NICs, the first without addresses */
	v[4 + 152] = 1;                     /* second NIC: one address */
	memcpy(v + 4 + 152 + 4, "00-0c-29-00-00-01", 17);
	memcpy(v + 4 + 152 + 23, "10.0.2.15", 9);
	T_ASSERT(rg_send(t, &c, m, plen + 4 + 2 * 152));
	T_ASSERT(rg_recv(t, &c, &r, &n));
	T_STREQ((char *)r, "1 ");
	free(r);
	T_STREQ(tools_core_report(t, "ip"), "10.0.2.15");
	/* Truncated binary: refused politely, nothing read past the end. */
	T_ASSERT(rg_send(t, &c, "SetGuestInfo  11 abc", 20));
	T_ASSERT(rg_recv(t, &c, &r, &n));
	T_STREQ((char *)r, "0 Invalid value");
	free(r);
	free(m);
	tools_core_free(t);
}

static void test_hb(void)
{
	struct tools *t = new_tools();
	struct rg_chan c;
	tools_core_set_hb(t, true, true);
	T_ASSERT(rg_open(t, &c, GRPC_PROTO_RPCI));
	c.hb_piece = 1000;   /* pieces, as an engine splitting at page ends delivers them */

	size_t big = 20000;
	char *req = malloc(big + 64);
	int k = snprintf(req, 64, "info-set guestinfo.big ");
	for (size_t i = 0; i < big; i++)
		req[k + i] = (char)('a' + i % 26);
	req[k + big] = 0;
	RPCI_IS(t, &c, req, "1 ");
	char *r = rg_rpci(t, &c, "info-get guestinfo.big");
	T_ASSERT(r && strlen(r) == big + 2 && memcmp(r + 2, req + k, big) == 0);
	free(r);
	T_ASSERT(c.hb_used >= 3);   /* send, send, receive went over HB */

	/* An HB piece longer than what is left is refused and resets the channel. */
	struct backdoor_call b = rg_call(t, &c, GRPC_TYPE_SENDSIZE, 8);
	T_ASSERT(rg_status(&b) & GRPC_ST_HB);
	uint8_t buf[16] = "0123456789abcdef";
	struct backdoor_call hb = {
		.eax = BDOOR_MAGIC, .ebx = GRPC_ST_SUCCESS << 16, .ecx = 16,
		.edx = (uint32_t)c.id << 16 | 0x5659, .edi = c.lo, .ebp = c.hi,
	};
	T_ASSERT(!tools_core_hb(t, &hb, true, buf, 16));
	/* Wrong cookie on HB. */
	b = rg_call(t, &c, GRPC_TYPE_SENDSIZE, 8);
	hb.ecx = 8;
	hb.ebp = c.hi ^ 1;
	T_ASSERT(!tools_core_hb(t, &hb, true, buf, 8));
	/* HB read with nothing to read. */
	hb.ebp = c.lo;
	hb.esi = c.hi;
	T_ASSERT(!tools_core_hb(t, &hb, false, buf, 8));
	T_ASSERT(buf[0] == 0);   /* a refused read returns zeroes */
	/* Still usable. */
	RPCI_IS(t, &c, "info-get guestinfo.fromvmx", "1 set in the vmx");
	free(req);
	tools_core_free(t);
}

static void test_bad_input(void)
{
	struct tools *t = new_tools();
	struct rg_chan c, other;
	struct backdoor_call b;
	T_ASSERT(rg_open(t, &c, GRPC_PROTO_RPCI));
	T_ASSERT(rg_open(t, &other, GRPC_PROTO_RPCI));
	T_ASSERT(c.id != other.id);

	/* Payload before a size. */
	b = rg_call(t, &c, GRPC_TYPE_SENDPAYLOAD, 0x41414141);
	T_EQ_U64(rg_status(&b), 0);
	/* Too large. */
	b = rg_call(t, &c, GRPC_TYPE_SENDSIZE, 70000);
	T_EQ_U64(rg_status(&b), 0);
	b = rg_call(t, &c, GRPC_TYPE_SENDPAYLOAD, 0x41414141);
	T_EQ_U64(rg_status(&b), 0);
	/* Embedded NUL in a text command: the last payload fails, channel reset. */
	T_ASSERT(!rg_send(t, &c, "info-set guestinfo.a b\0c", 24));
	T_ASSERT(tools_core_guestinfo(t, "a") == NULL);
	b = rg_call(t, &c, GRPC_TYPE_RECVSIZE, 0);
	T_EQ_U64(rg_status(&b), GRPC_ST_SUCCESS);   /* nothing to receive */
	/* Receive sub-commands out of order. */
	b = rg_call(t, &c, GRPC_TYPE_RECVPAYLOAD, 1);
	T_EQ_U64(rg_status(&b), 0);
	b = rg_call(t, &c, GRPC_TYPE_RECVSTATUS, 1);
	T_EQ_U64(rg_status(&b), 0);
	/* Reading past the reply. */
	T_ASSERT(rg_send(t, &c, "info-get guestinfo.fromvmx", 26));
	b = rg_call(t, &c, GRPC_TYPE_RECVSIZE, 0);
	T_EQ_U64(b.ebx, 16);
	for (int i = 0; i < 4; i++)
		b = rg_call(t, &c, GRPC_TYPE_RECVPAYLOAD, 1);
	T_EQ_U64(rg_status(&b), GRPC_ST_SUCCESS);
	b = rg_call(t, &c, GRPC_TYPE_RECVPAYLOAD, 1);
	T_EQ_U64(rg_status(&b), 0);
	/* A bad cookie is refused and leaves the owner's transfer alone. */
	T_ASSERT(rg_send(t, &other, "info-get guestinfo.fromvmx", 26));
	struct rg_chan forged = other;
	forged.lo ^= 0x10;
	b = rg_call(t, &forged, GRPC_TYPE_RECVSIZE, 0);
	T_EQ_U64(rg_status(&b), 0);
	b = rg_call(t, &forged, GRPC_TYPE_CLOSE, 0);
	T_EQ_U64(rg_status(&b), 0);
	uint8_t *r;
	size_t n;
	T_ASSERT(rg_recv(t, &other, &r, &n));
	T_STREQ((char *)r, "1 set in the vmx");
	free(r);
	/* Unknown channel, unknown type, unknown protocol. */
	struct rg_chan none = { .id = 9999 };
	b = rg_call(t, &none, GRPC_TYPE_SENDSIZE, 1);
	T_EQ_U64(rg_status(&b), 0);
	b = rg_call(t, &c, 77, 1);
	T_EQ_U64(rg_status(&b), 0);
	b = rg_call(t, NULL, GRPC_TYPE_OPEN, 0x12345678);
	T_EQ_U64(rg_status(&b), 0);
	/* The guest aborting a reception (RECVPAYLOAD with status 0). */
	T_ASSERT(rg_send(t, &c, "info-get guestinfo.fromvmx", 26));
	b = rg_call(t, &c, GRPC_TYPE_RECVSIZE, 0);
	b = rg_call(t, &c, GRPC_TYPE_RECVPAYLOAD, 0);
	T_EQ_U64(rg_status(&b), GRPC_ST_SUCCESS);
	b = rg_call(t, &c, GRPC_TYPE_RECVSIZE, 0);
	T_EQ_U64(rg_status(&b), GRPC_ST_SUCCESS);
	/* After all that both channels work. */
	RPCI_IS(t, &c, "info-get guestinfo.fromvmx", "1 set in the vmx");
	RPCI_IS(t, &other, "info-get guestinfo.nothere", "0 No value found");

	/* Channel table full: open fails, closing one frees a slot. */
	static struct rg_chan many[GRPC_MAX_CHANNELS];
	unsigned opened = 0;
	for (unsigned i = 0; i < GRPC_MAX_CHANNELS; i++)
		opened += rg_open(t, &many[i], GRPC_PROTO_RPCI);
	T_EQ_U64(opened, GRPC_MAX_CHANNELS - 2);
	struct rg_chan extra;
	T_ASSERT(!rg_open(t, &extra, GRPC_PROTO_RPCI));
	T_ASSERT(rg_close(t, &c));
	T_ASSERT(rg_open(t, &extra, GRPC_PROTO_RPCI));
	RPCI_IS(t, &extra, "info-get guestinfo.fromvmx", "1 set in the vmx");
	tools_core_free(t);
}

/* One TCLO poll as vmtoolsd does it: send the last result, then receive. */
static char *tclo_poll(struct tools *t, struct rg_chan *c, const char *result)
{
	uint8_t *r;
	size_t n;
	if (!rg_send(t, c, result, strlen(result)) || !rg_recv(t, c, &r, &n))
		return (char *)strdup("<channel failure>");
	return (char *)r;
}

static void test_tclo(void)
{
	struct tools *t = new_tools();
	struct rg_chan c;
	char *cmd;

	T_STREQ(tools_core_report(t, "state"), "unknown");
	T_ASSERT(tools_core_queue(t, "ping") != 0);   /* no tools channel yet */
	T_ASSERT(rg_open(t, &c, GRPC_PROTO_TCLO));
	cmd = tclo_poll(t, &c, "");
	T_STREQ(cmd, "reset");
	free(cmd);
	/* The host script: options arrive one per poll after the reset answer. */
	const char *result = "OK ATR toolbox";
	bool saw_caps = false, saw_sync = false, saw_ip = false;
	for (int i = 0; i < 20; i++) {
		cmd = tclo_poll(t, &c, result);
		result = "OK ";
		if (!cmd)
			break;
		if (!cmd[0]) {
			free(cmd);
			break;
		}
		saw_caps |= strcmp(cmd, "Capabilities_Register") == 0;
		saw_sync |= strcmp(cmd, "Set_Option synctime 1") == 0;
		saw_ip |= strcmp(cmd, "Set_Option broadcastIP 1") == 0;
		free(cmd);
	}
	T_ASSERT(saw_caps && saw_sync && saw_ip);
	tools_core_tick(t, 1000000000ull);
	T_STREQ(tools_core_report(t, "state"), "running");

	/* A command the guest never confirms is queued again. */
	T_EQ_I64(tools_core_queue(t, "OS_Halt"), 0);
	T_ASSERT(rg_send(t, &c, "", 0));
	struct backdoor_call b = rg_call(t, &c, GRPC_TYPE_RECVSIZE, 0);
	T_ASSERT(rg_status(&b) & GRPC_ST_DORECV);
	b = rg_call(t, &c, GRPC_TYPE_RECVPAYLOAD, 1);
	b = rg_call(t, &c, GRPC_TYPE_RECVSTATUS, 0);   /* "could not take it" */
	cmd = tclo_poll(t, &c, "");
	T_STREQ(cmd, "OS_Halt");
	free(cmd);
	cmd = tclo_poll(t, &c, "OK ");
	T_ASSERT(cmd == NULL);   /* nothing queued */
	free(cmd);
	T_STREQ(tools_core_report(t, "state"), "shuttingdown");

	/* Vmtoolsd restarting its channel gets a fresh reset. */
	T_ASSERT(rg_close(t, &c));
	T_ASSERT(rg_open(t, &c, GRPC_PROTO_TCLO));
	cmd = tclo_poll(t, &c, "");
	T_STREQ(cmd, "reset");
	free(cmd);
	/* No polls for a while: tools are not running any more. */
	tools_core_tick(t, 100ull * 1000000000ull);
	T_STREQ(tools_core_report(t, "state"), "unknown");

	/* GETGUIOPTIONS-style change from the guest: vmx.set_option. */
	struct rg_chan r;
	T_ASSERT(rg_open(t, &r, GRPC_PROTO_RPCI));
	RPCI_IS(t, &r, "vmx.set_option synctime 1 0", "1 ");
	RPCI_IS(t, &r, "vmx.set_option nosuch 1 0", "0 Unknown option");
	tools_core_free(t);
}

/* The channel table alone (guestrpc.h), with a clock the test moves. */
static uint64_t fake_now;
static uint64_t fake_clock(void)
{
	return fake_now;
}

static int echo_rpci(void *opaque, unsigned chan, const uint8_t *req, size_t len, uint8_t **reply,
                     size_t *rlen)
{
	*reply = malloc(len + 2);
	memcpy(*reply, "1 ", 2);
	memcpy(*reply + 2, req, len);
	*rlen = len + 2;
	return 0;
}

static void test_reclaim(void)
{
	static const struct grpc_ops ops = { .rpci = echo_rpci };
	struct grpc *g = grpc_new(&ops, NULL);
	grpc_set_clock(g, fake_clock);
	grpc_set_seed(g, 1);
	fake_now = 1000;
	unsigned ok = 0;
	for (unsigned i = 0; i < GRPC_MAX_CHANNELS; i++) {
		struct backdoor_call b = { .eax = BDOOR_MAGIC, .ebx = GRPC_PROTO_RPCI | GRPC_FLAG_COOKIE,
		                           .ecx = BDOOR_CMD_MESSAGE, .edx = 0x5658 };
		grpc_message(g, &b);
		ok += (b.ecx >> 16) & GRPC_ST_SUCCESS;
	}
	T_EQ_U64(ok, GRPC_MAX_CHANNELS);
	T_EQ_U64(grpc_open_channels(g), GRPC_MAX_CHANNELS);
	struct backdoor_call b = { .eax = BDOOR_MAGIC, .ebx = GRPC_PROTO_TCLO,
	                           .ecx = BDOOR_CMD_MESSAGE, .edx = 0x5658 };
	grpc_message(g, &b);
	T_EQ_U64(b.ecx >> 16, 0);          /* full, nothing idle long enough */
	fake_now += 31ull * 1000000000ull;  /* processes died without CLOSE */
	grpc_message(g, &b);
	T_EQ_U64(b.ecx >> 16, GRPC_ST_SUCCESS);
	T_ASSERT(grpc_channel_is_tclo(g, b.edx >> 16));
	T_EQ_U64(grpc_open_channels(g), GRPC_MAX_CHANNELS);
	/* Without the cookie flag the channel takes any cookie. */
	unsigned id = b.edx >> 16;
	struct backdoor_call s = { .eax = BDOOR_MAGIC, .ebx = 0,
	                           .ecx = GRPC_TYPE_SENDSIZE << 16 | BDOOR_CMD_MESSAGE,
	                           .edx = id << 16 | 0x5658, .esi = 123, .edi = 456 };
	grpc_message(g, &s);
	T_EQ_U64(s.ecx >> 16, GRPC_ST_SUCCESS);
	grpc_free(g);
}

int main(void)
{
	test_reclaim();
	test_rpci_guestinfo();
	test_setguestinfo();
	test_hb();
	test_bad_input();
	test_tclo();
	return T_DONE();
}

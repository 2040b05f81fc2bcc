/*
 * tools.c — the tools life cycle on the host (spec sections 4 and 5).
 *
 * Locking: one mutex (rank DEVICE) covers the GuestRPC channels and all
 * tools state; vCPU threads take it for backdoor command 30 and the HB port,
 * the loop thread for its once-a-second tick and VMDB requests.  VMDB is
 * written only from the loop thread, from a snapshot taken under the lock.
 */
#include "tools.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../vmdb/vmx_link.h"
#include "backdoor.h"
#include "config.h"
#include "device.h"
#include "guestrpc.h"
#include "lock.h"
#include "log.h"
#include "loop.h"
#include "vm.h"

/*
 * VMDB is linked into vireo-vmx only; tests and fuzzers link the platform
 * without it, so the link functions are weak references here.
 */
#pragma weak vmx_link_publish
#pragma weak vmx_link_watch

static void tools_link_publish(struct vmx_link *lk, const char *rel, const char *value)
{
	if (lk && vmx_link_publish)
		vmx_link_publish(lk, rel, value);
}

#define TOOLS_QLEN          16
#define TOOLS_MAX_INFO      128
#define TOOLS_INFO_BYTES    (1u << 20)   /* all guestinfo values together */
#define TOOLS_ALIVE_NS      (5ull * 1000000000ull)
#define TOOLS_PICKUP_NS     (5ull * 1000000000ull)
#define TOOLS_HALT_NS       (40ull * 1000000000ull)
#define TOOLS_MAX_RPCI_EXT  4

enum tools_gstate { TG_UNKNOWN, TG_RUNNING, TG_SHUTTINGDOWN };
static const char *const tools_gstate_names[] = { "unknown", "running", "shuttingdown" };

/* One TCLO channel (vmtoolsd opens "toolbox" and, with a desktop, "toolbox-dnd"). */
struct tools_tclo {
	bool open;
	bool ready;                 /* answered reset */
	char app[32];
	char *q[TOOLS_QLEN];
	unsigned qhead, qn;
	char *outstanding;          /* delivered, result pending */
};

struct tools_info {
	char *name;                 /* without "guestinfo." */
	char *value;
};

enum tools_report {
	TR_VERSION, TR_HOSTNAME, TR_OS, TR_OSFULL, TR_IP, TR_BUILD, TR_UPTIME, TR__COUNT
};
static const char *const tools_report_names[TR__COUNT] = {
	"toolsversion", "hostname", "os", "osfull", "ip", "build", "uptime",
};

struct tools_ext {
	char prefix[16];
	tools_rpci_fn fn;
	void *opaque;
};

struct tools {
	struct vmx_vm *vm;          /* NULL for tools_core_new */
	struct vmx_mutex lock;
	struct grpc *rpc;
	struct tools_tclo tclo[GRPC_MAX_CHANNELS];
	struct tools_info info[TOOLS_MAX_INFO];
	unsigned ninfo;
	size_t info_bytes;
	char report[TR__COUNT][256];
	uint32_t report_dirty;      /* bit per enum tools_report */
	bool info_dirty;
	uint64_t last_poll_ns;
	uint64_t now_ns;            /* last tick */
	enum tools_gstate gstate;
	bool gstate_dirty;
	unsigned heartbeat;
	/* time sync */
	bool synctime, periodic_backward;
	unsigned sync_period_s;
	uint64_t last_sync_ns;
	/* power */
	bool power_pending;         /* OS_Halt/OS_Reboot queued or running */
	bool power_accepted;
	enum tools_power_op power_op;
	uint64_t power_ns;
	bool power_fallback;        /* the tick must press the button */
	struct tools_ext ext[TOOLS_MAX_RPCI_EXT];
	unsigned next;
	struct vmx_timer *timer;
};

/* ---- small helpers ---- */

static void tools_text(char *dst, size_t cap, const uint8_t *src, size_t len)
{
	/* Guest text into logs and VMDB: printable ASCII only. */
	size_t n = 0;
	for (size_t i = 0; i < len && n + 1 < cap; i++) {
		uint8_t ch = src[i];
		if (ch == 0)
			break;
		dst[n++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
	}
	if (cap)
		dst[n] = 0;
}

static void tools_set_report(struct tools *t, enum tools_report r, const uint8_t *v, size_t len)
{
	char buf[sizeof(t->report[0])];
	tools_text(buf, sizeof(buf), v, len);
	if (strcmp(buf, t->report[r]) != 0) {
		memcpy(t->report[r], buf, sizeof(buf));
		t->report_dirty |= 1u << r;
	}
}

static int reply_dup(uint8_t **reply, size_t *rlen, const char *text)
{
	size_t n = strlen(text);
	*reply = malloc(n ? n : 1);
	if (!*reply)
		return -1;
	memcpy(*reply, text, n);
	*rlen = n;
	return 0;
}

/* "1 " + value (binary-safe). */
static int reply_value(uint8_t **reply, size_t *rlen, const char *value)
{
	size_t n = strlen(value);
	*reply = malloc(n + 2);
	if (!*reply)
		return -1;
	memcpy(*reply, "1 ", 2);
	memcpy(*reply + 2, value, n);
	*rlen = n + 2;
	return 0;
}

/* ---- guestinfo ---- */

static bool info_name_ok(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > 128)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isgraph((unsigned char)name[i]) || name[i] == '=')
			return false;
	return true;
}

static struct tools_info *info_find(struct tools *t, const char *name)
{
	for (unsigned i = 0; i < t->ninfo; i++)
		if (strcasecmp(t->info[i].name, name) == 0)
			return &t->info[i];
	return NULL;
}

/* Locked.  value NULL deletes.  -1 when full or invalid. */
static int info_set(struct tools *t, const char *name, const char *value)
{
	struct tools_info *e = info_find(t, name);
	size_t vlen = value ? strlen(value) : 0;

	if (!info_name_ok(name))
		return -1;
	if (!value) {
		if (e) {
			t->info_bytes -= strlen(e->value);
			free(e->name);
			free(e->value);
			*e = t->info[--t->ninfo];
			t->info_dirty = true;
		}
		return 0;
	}
	size_t old = e ? strlen(e->value) : 0;
	if (t->info_bytes - old + vlen > TOOLS_INFO_BYTES)
		return -1;
	char *v = strdup(value);
	if (!v)
		return -1;
	if (!e) {
		if (t->ninfo >= TOOLS_MAX_INFO) {
			free(v);
			return -1;
		}
		e = &t->info[t->ninfo];
		e->name = strdup(name);
		if (!e->name) {
			free(v);
			return -1;
		}
		e->value = NULL;
		t->ninfo++;
	}
	free(e->value);
	e->value = v;
	t->info_bytes = t->info_bytes - old + vlen;
	t->info_dirty = true;
	return 0;
}

/* ---- TCLO queues ---- */

static struct tools_tclo *tclo_main(struct tools *t, unsigned *id)
{
	/* The system service ("toolbox") runs power and time operations. */
	struct tools_tclo *best = NULL;
	for (unsigned i = 0; i < GRPC_MAX_CHANNELS; i++) {
		struct tools_tclo *c = &t->tclo[i];
		if (!c->open)
			continue;
		if (!best || (c->ready && strcmp(c->app, "toolbox") == 0 &&
		              !(best->ready && strcmp(best->app, "toolbox") == 0))) {
			best = c;
			if (id)
				*id = i;
		}
	}
	return best;
}

static int tclo_push(struct tools_tclo *c, const char *cmd, bool front)
{
	if (c->qn >= TOOLS_QLEN)
		return -1;
	char *s = strdup(cmd);
	if (!s)
		return -1;
	if (front) {
		c->qhead = (c->qhead + TOOLS_QLEN - 1) % TOOLS_QLEN;
		c->q[c->qhead] = s;
	} else {
		c->q[(c->qhead + c->qn) % TOOLS_QLEN] = s;
	}
	c->qn++;
	return 0;
}

static void tclo_clear(struct tools_tclo *c)
{
	while (c->qn) {
		free(c->q[c->qhead]);
		c->q[c->qhead] = NULL;
		c->qhead = (c->qhead + 1) % TOOLS_QLEN;
		c->qn--;
	}
	free(c->outstanding);
	c->outstanding = NULL;
}

static void tools_queue_options(struct tools *t, struct tools_tclo *c)
{
	char buf[96];
	tclo_push(c, "Capabilities_Register", false);
	tclo_push(c, "Set_Option broadcastIP 1", false);
	if (t->synctime) {
		/* A wrong clock at tools start is stepped either way (spec 4.4). */
		tclo_push(c, "Set_Option time.synchronize.tools.startup.backward 1", false);
		tclo_push(c, "Set_Option time.synchronize.tools.startup 1", false);
		snprintf(buf, sizeof(buf), "Set_Option synctime.period %u", t->sync_period_s);
		tclo_push(c, buf, false);
	}
	tclo_push(c, t->synctime ? "Set_Option synctime 1" : "Set_Option synctime 0", false);
}

/* Host time, or for a VM-less core (tests) the time of the last tick. */
static uint64_t tools_now(const struct tools *t)
{
	if (t->vm)
		return vlog_now_ns();
	return t->now_ns ? t->now_ns : 1;
}

static void tools_power_fallback(struct tools *t, const char *why)
{
	if (!t->power_pending)
		return;
	vlog_info("tools: %s %s; using the %s", t->power_op == TOOLS_POWER_HALT ? "OS_Halt" : "OS_Reboot",
	          why, t->power_op == TOOLS_POWER_HALT ? "ACPI power button" : "reset");
	t->power_pending = false;
	t->power_fallback = true;
}

/* ---- grpc callbacks (lock held) ---- */

static void tools_tclo_open(void *opaque, unsigned chan)
{
	struct tools *t = opaque;
	struct tools_tclo *c = &t->tclo[chan];
	tclo_clear(c);
	memset(c, 0, sizeof(*c));
	c->open = true;
	tclo_push(c, "reset", false);
}

static void tools_tclo_close(void *opaque, unsigned chan)
{
	struct tools *t = opaque;
	struct tools_tclo *c = &t->tclo[chan];
	tclo_clear(c);
	memset(c, 0, sizeof(*c));
}

static void tools_tclo_poll(void *opaque, unsigned chan)
{
	struct tools *t = opaque;
	t->last_poll_ns = tools_now(t);
}

static uint8_t *tools_tclo_next(void *opaque, unsigned chan, size_t *len)
{
	struct tools *t = opaque;
	struct tools_tclo *c = &t->tclo[chan];
	if (!c->open || !c->qn || c->outstanding)
		return NULL;
	char *cmd = c->q[c->qhead];
	c->q[c->qhead] = NULL;
	c->qhead = (c->qhead + 1) % TOOLS_QLEN;
	c->qn--;
	size_t n = strlen(cmd);
	uint8_t *out = malloc(n);
	if (!out) {
		free(cmd);
		return NULL;
	}
	memcpy(out, cmd, n);
	c->outstanding = cmd;
	*len = n;
	return out;
}

static bool starts(const uint8_t *s, size_t len, const char *prefix)
{
	size_t n = strlen(prefix);
	return len >= n && memcmp(s, prefix, n) == 0;
}

static void tools_tclo_result(void *opaque, unsigned chan, const uint8_t *res, size_t len)
{
	struct tools *t = opaque;
	struct tools_tclo *c = &t->tclo[chan];
	char *cmd = c->outstanding;
	char text[128];

	c->outstanding = NULL;
	if (!cmd)
		return;
	if (!res) {
		/* Lost on the way (the guest reset the channel): send it again. */
		if (tclo_push(c, cmd, true) != 0)
			vlog_guest("tools: TCLO command \"%s\" lost", cmd);
		free(cmd);
		return;
	}
	if (len && res[len - 1] == 0)
		len--;
	tools_text(text, sizeof(text), res, len);
	bool ok = starts(res, len, "OK");
	if (strcmp(cmd, "reset") == 0) {
		if (ok && starts(res, len, "OK ATR ")) {
			tools_text(c->app, sizeof(c->app), res + 7, len - 7);
			c->ready = true;
			vlog_info("tools: TCLO channel %u: %s", chan, text);
			/* Only the system service gets the options; a second app just pings. */
			struct tools_tclo *m = tclo_main(t, NULL);
			if (m == c)
				tools_queue_options(t, c);
		} else {
			vlog_guest("tools: reset answered \"%s\"", text);
		}
	} else if (strcmp(cmd, "OS_Halt") == 0 || strcmp(cmd, "OS_Reboot") == 0) {
		if (ok) {
			t->power_accepted = true;
			t->power_ns = tools_now(t);
			t->gstate = TG_SHUTTINGDOWN;
			t->gstate_dirty = true;
			vlog_info("tools: guest accepted %s", cmd);
		} else {
			tools_power_fallback(t, text[0] ? text : "failed");
		}
	} else if (!ok) {
		vlog_info("tools: TCLO \"%s\" answered \"%s\"", cmd, text);
	}
	free(cmd);
}

/* ---- RPCI ---- */

/* SetGuestInfo keys (spec 4.6). */
#define GI_DNS_NAME     1
#define GI_IPADDRESS    2
#define GI_BUILD_NUMBER 4
#define GI_OS_NAME_FULL 5
#define GI_OS_NAME      6
#define GI_UPTIME       7
#define GI_IPADDRESS_V2 9
#define GI_IPADDRESS_V3 10
#define GI_OS_DETAILED  11

#define GI_NIC_SIZE     152
#define GI_NIC_MAX      16
#define GI_OSD_HDR      648

static int rpci_setguestinfo(struct tools *t, const uint8_t *a, size_t len, uint8_t **reply,
                             size_t *rlen)
{
	size_t i = 0;
	unsigned key = 0;

	while (i < len && a[i] == ' ')
		i++;
	if (i == len || !isdigit(a[i]))
		return reply_dup(reply, rlen, "0 Invalid key");
	while (i < len && isdigit(a[i]) && key < 1000)
		key = key * 10 + (unsigned)(a[i++] - '0');
	if (i < len && a[i] == ' ')
		i++;
	const uint8_t *v = a + i;
	size_t vlen = len - i;

	switch (key) {
	case GI_DNS_NAME:
		tools_set_report(t, TR_HOSTNAME, v, vlen);
		break;
	case GI_BUILD_NUMBER:
		tools_set_report(t, TR_BUILD, v, vlen);
		break;
	case GI_OS_NAME_FULL:
		tools_set_report(t, TR_OSFULL, v, vlen);
		break;
	case GI_OS_NAME:
		tools_set_report(t, TR_OS, v, vlen);
		break;
	case GI_UPTIME: {
		/* Hundredths of a second, as text. */
		char buf[32];
		unsigned long long cs;
		tools_text(buf, sizeof(buf), v, vlen);
		if (sscanf(buf, "%llu", &cs) == 1) {
			snprintf(buf, sizeof(buf), "%llu", cs / 100);
			tools_set_report(t, TR_UPTIME, (const uint8_t *)buf, strlen(buf));
		}
		break;
	}
	case GI_IPADDRESS: {
		/* Binary: u32 count, then up to 16 NICs {u32 ipCount, mac[19], ip[8][16]}. */
		uint32_t n;
		if (vlen < 4)
			return reply_dup(reply, rlen, "0 Invalid value");
		memcpy(&n, v, 4);
		if (n > GI_NIC_MAX)
			n = GI_NIC_MAX;
		for (uint32_t k = 0; k < n; k++) {
			size_t off = 4 + (size_t)k * GI_NIC_SIZE;
			uint32_t ips;
			if (off + GI_NIC_SIZE > vlen)
				break;
			memcpy(&ips, v + off, 4);
			if (ips == 0)
				continue;
			const uint8_t *ip = v + off + 23;
			size_t l = 0;
			while (l < 16 && ip[l])
				l++;
			if (l) {
				tools_set_report(t, TR_IP, ip, l);
				break;
			}
		}
		break;
	}
	case GI_IPADDRESS_V2:
	case GI_IPADDRESS_V3:
		/* No XDR decoder: the guest falls back to key 2 (and broadcastIP). */
		return reply_dup(reply, rlen, "0 Unsupported key");
	case GI_OS_DETAILED: {
		if (vlen < GI_OSD_HDR)
			return reply_dup(reply, rlen, "0 Invalid value");
		size_t l;
		for (l = 0; l < 129 && v[4 + l]; l++)
			;
		tools_set_report(t, TR_OS, v + 4, l);
		for (l = 0; l < 513 && v[133 + l]; l++)
			;
		tools_set_report(t, TR_OSFULL, v + 133, l);
		break;
	}
	default:
		break;   /* disk, memory stats: accepted and ignored */
	}
	return reply_dup(reply, rlen, "1 ");
}

static bool has_nul(const uint8_t *s, size_t len)
{
	return memchr(s, 0, len) != NULL;
}

static int tools_rpci(void *opaque, unsigned chan, const uint8_t *req, size_t len,
                      uint8_t **reply, size_t *rlen)
{
	struct tools *t = opaque;
	char line[512];
	size_t cl;

	/* Binary SetGuestInfo values keep every byte; text senders often count the NUL. */
	if (len && req[len - 1] == 0 && !starts(req, len, "SetGuestInfo "))
		len--;
	for (unsigned i = 0; i < TOOLS_MAX_RPCI_EXT; i++) {
		struct tools_ext *e = &t->ext[i];
		if (e->fn && starts(req, len, e->prefix)) {
			size_t pl = strlen(e->prefix);
			return e->fn(e->opaque, req + pl, len - pl, reply, rlen);
		}
	}
	/* The command name is the text up to the first space. */
	for (cl = 0; cl < len && req[cl] != ' '; cl++)
		;
	const uint8_t *args = cl < len ? req + cl + 1 : req + len;
	size_t alen = cl < len ? len - cl - 1 : 0;
	char cmd[64];
	if (cl == 0 || cl >= sizeof(cmd)) {
		vlog_guest("tools: RPCI with a bad command name");
		return reply_dup(reply, rlen, "0 Unknown command");
	}
	memcpy(cmd, req, cl);
	cmd[cl] = 0;
	if (strcmp(cmd, "SetGuestInfo") == 0)
		return rpci_setguestinfo(t, args, alen, reply, rlen);
	/* Everything else is text: an embedded NUL is a hostile or broken sender. */
	if (has_nul(req, len)) {
		vlog_guest("tools: RPCI \"%s\" with an embedded NUL refused", cmd);
		return -1;
	}
	if (strcmp(cmd, "info-get") == 0) {
		char name[160];
		if (alen > 10 + 128 || alen <= 10 || memcmp(args, "guestinfo.", 10) != 0)
			return reply_dup(reply, rlen, "0 No value found");
		memcpy(name, args + 10, alen - 10);
		name[alen - 10] = 0;
		struct tools_info *e = info_find(t, name);
		if (!e)
			return reply_dup(reply, rlen, "0 No value found");
		return reply_value(reply, rlen, e->value);
	}
	if (strcmp(cmd, "info-set") == 0) {
		/* "guestinfo.NAME VALUE": the value is the rest of the line. */
		size_t nl;
		for (nl = 0; nl < alen && args[nl] != ' '; nl++)
			;
		if (nl <= 10 || nl > 10 + 128 || memcmp(args, "guestinfo.", 10) != 0)
			return reply_dup(reply, rlen, "0 Invalid key");
		char name[160];
		memcpy(name, args + 10, nl - 10);
		name[nl - 10] = 0;
		size_t vl = nl < alen ? alen - nl - 1 : 0;
		char *value = malloc(vl + 1);
		if (!value)
			return -1;
		memcpy(value, args + alen - vl, vl);
		value[vl] = 0;
		int rc = info_set(t, name, value);
		free(value);
		if (strcasecmp(name, "ip") == 0 && rc == 0)
			tools_set_report(t, TR_IP, args + alen - vl, vl);
		return reply_dup(reply, rlen, rc == 0 ? "1 " : "0 Too many or too large values");
	}
	if (strcmp(cmd, "log") == 0 || strcmp(cmd, "guest.log.text") == 0) {
		tools_text(line, sizeof(line), args, alen);
		vlog_info("guest log: %s", line);
		return reply_dup(reply, rlen, "1 ");
	}
	if (strcmp(cmd, "tools.set.version") == 0 || strcmp(cmd, "tools.set.versiontype") == 0) {
		tools_set_report(t, TR_VERSION, args, alen);
		return reply_dup(reply, rlen, "1 ");
	}
	if (strncmp(cmd, "tools.capability.", 17) == 0 || strncmp(cmd, "vmx.capability.", 15) == 0 ||
	    strcmp(cmd, "SetGuestDiskInfo") == 0)
		return reply_dup(reply, rlen, "1 ");
	if (strcmp(cmd, "tools.os.statechange.status") == 0) {
		unsigned ok = 0, state = 0;
		tools_text(line, sizeof(line), args, alen);
		if (sscanf(line, "%u %u", &ok, &state) == 2) {
			vlog_info("tools: guest power script for state %u %s", state, ok ? "succeeded" : "failed");
			if (!ok && (state == 1 || state == 2))
				tools_power_fallback(t, "script failed");
		}
		return reply_dup(reply, rlen, "1 ");
	}
	if (strcmp(cmd, "vmx.set_option") == 0) {
		char opt[64];
		unsigned oldv, newv;
		tools_text(line, sizeof(line), args, alen);
		if (sscanf(line, "%63s %u %u", opt, &oldv, &newv) == 3 && strcmp(opt, "synctime") == 0) {
			t->synctime = newv != 0;
			struct tools_tclo *m = tclo_main(t, NULL);
			if (m)
				tclo_push(m, t->synctime ? "Set_Option synctime 1" : "Set_Option synctime 0", false);
			return reply_dup(reply, rlen, "1 ");
		}
		return reply_dup(reply, rlen, "0 Unknown option");
	}
	return reply_dup(reply, rlen, "0 Unknown command");
}

static const struct grpc_ops tools_grpc_ops = {
	.rpci = tools_rpci,
	.tclo_next = tools_tclo_next,
	.tclo_result = tools_tclo_result,
	.tclo_open = tools_tclo_open,
	.tclo_close = tools_tclo_close,
	.tclo_poll = tools_tclo_poll,
};

/* ---- core (no VM) ---- */

static int tools_read_config(struct tools *t, const struct vmxcfg *cfg, char *err, size_t errlen)
{
	t->synctime = true;
	t->sync_period_s = 60;
	if (!cfg)
		return 0;
	uint64_t period;
	if (vmxcfg_get_bool(cfg, "tools.syncTime", true, &t->synctime, err, errlen) != 0 ||
	    vmxcfg_get_bool(cfg, "tools.syncTime.periodicBackward", false, &t->periodic_backward, err,
	                    errlen) != 0 ||
	    vmxcfg_get_u64(cfg, "tools.syncTime.period", 60, 1, 86400, &period, err, errlen) != 0)
		return -1;
	t->sync_period_s = (unsigned)period;
	size_t it = 0;
	const char *k, *v;
	while (vmxcfg_next(cfg, &it, &k, &v))
		if (strncasecmp(k, "guestinfo.", 10) == 0 && info_set(t, k + 10, v) != 0)
			vlog_warn("%s: %s: not taken (bad name, or too many values)", vmxcfg_path(cfg), k);
	return 0;
}

static struct tools *tools_alloc(void)
{
	struct tools *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	vmx_mutex_init(&t->lock, VMX_RANK_DEVICE, "tools");
	t->rpc = grpc_new(&tools_grpc_ops, t);
	if (!t->rpc) {
		vmx_mutex_destroy(&t->lock);
		free(t);
		return NULL;
	}
	return t;
}

static void tools_release(struct tools *t)
{
	if (!t)
		return;
	if (t->timer)
		vmx_timer_free(t->timer);
	grpc_free(t->rpc);
	for (unsigned i = 0; i < GRPC_MAX_CHANNELS; i++)
		tclo_clear(&t->tclo[i]);
	for (unsigned i = 0; i < t->ninfo; i++) {
		free(t->info[i].name);
		free(t->info[i].value);
	}
	vmx_mutex_destroy(&t->lock);
	free(t);
}

struct tools *tools_core_new(const struct vmxcfg *cfg)
{
	char err[256];
	struct tools *t = tools_alloc();
	if (t && tools_read_config(t, cfg, err, sizeof(err)) != 0) {
		tools_release(t);
		return NULL;
	}
	return t;
}

void tools_core_free(struct tools *t)
{
	tools_release(t);
}

void tools_core_message(struct tools *t, struct backdoor_call *c)
{
	vmx_mutex_lock(&t->lock);
	grpc_message(t->rpc, c);
	vmx_mutex_unlock(&t->lock);
}

bool tools_core_hb(struct tools *t, const struct backdoor_call *regs, bool write, uint8_t *data,
                   size_t len)
{
	vmx_mutex_lock(&t->lock);
	bool ok = grpc_hb(t->rpc, regs, write, data, len);
	vmx_mutex_unlock(&t->lock);
	return ok;
}

void tools_core_set_hb(struct tools *t, bool send, bool recv)
{
	vmx_mutex_lock(&t->lock);
	grpc_set_hb(t->rpc, send, recv);
	vmx_mutex_unlock(&t->lock);
}

int tools_core_queue(struct tools *t, const char *cmd)
{
	vmx_mutex_lock(&t->lock);
	struct tools_tclo *m = tclo_main(t, NULL);
	int rc = m ? tclo_push(m, cmd, false) : -1;
	vmx_mutex_unlock(&t->lock);
	return rc;
}

const char *tools_core_guestinfo(struct tools *t, const char *name)
{
	vmx_mutex_lock(&t->lock);
	struct tools_info *e = info_find(t, name);
	const char *v = e ? e->value : NULL;
	vmx_mutex_unlock(&t->lock);
	return v;
}

const char *tools_core_report(struct tools *t, const char *what)
{
	if (strcmp(what, "state") == 0)
		return tools_gstate_names[t->gstate];
	for (unsigned i = 0; i < TR__COUNT; i++)
		if (strcmp(what, tools_report_names[i]) == 0)
			return t->report[i][0] ? t->report[i] : NULL;
	return NULL;
}

/* Locked: the once-a-second work.  Returns true when a fallback is due. */
static bool tools_tick_locked(struct tools *t, uint64_t now)
{
	t->now_ns = now;
	bool alive = t->last_poll_ns && now - t->last_poll_ns < TOOLS_ALIVE_NS;
	enum tools_gstate want = alive ? (t->gstate == TG_SHUTTINGDOWN ? TG_SHUTTINGDOWN : TG_RUNNING)
	                               : TG_UNKNOWN;
	if (want != t->gstate) {
		vlog_info("tools: %s", alive ? "running" : "not running");
		t->gstate = want;
		t->gstate_dirty = true;
	}
	if (alive)
		t->heartbeat++;
	struct tools_tclo *m = tclo_main(t, NULL);
	if (alive && m && m->ready && t->synctime && t->periodic_backward &&
	    now - t->last_sync_ns >= (uint64_t)t->sync_period_s * 1000000000ull) {
		t->last_sync_ns = now;
		tclo_push(m, "Time_Synchronize 1", false);
	}
	if (t->power_pending && !t->power_accepted && now - t->power_ns > TOOLS_PICKUP_NS)
		tools_power_fallback(t, "not picked up by the guest");
	if (t->power_pending && t->power_accepted && now - t->power_ns > TOOLS_HALT_NS)
		tools_power_fallback(t, "accepted but the guest did not finish");
	bool fb = t->power_fallback;
	t->power_fallback = false;
	return fb;
}

void tools_core_tick(struct tools *t, uint64_t now_ns)
{
	vmx_mutex_lock(&t->lock);
	tools_tick_locked(t, now_ns);
	vmx_mutex_unlock(&t->lock);
}

/* ---- the device ---- */

static struct tools *tools_of(struct vmx_vm *vm)
{
	return vm ? vmx_vm_device(vm, "tools") : NULL;
}

static void tools_bd_message(void *opaque, struct vmx_vm *vm, struct backdoor_call *c)
{
	tools_core_message(opaque, c);
}

static bool tools_bd_hb(void *opaque, struct vmx_vm *vm, const struct backdoor_call *regs, bool write,
                        uint8_t *data, size_t len)
{
	return tools_core_hb(opaque, regs, write, data, len);
}

static void tools_bd_guioptions(void *opaque, struct vmx_vm *vm, struct backdoor_call *c)
{
	struct tools *t = opaque;
	vmx_mutex_lock(&t->lock);
	c->eax = t->synctime ? 0x400u : 0;
	vmx_mutex_unlock(&t->lock);
}

static void tools_do_fallback(struct tools *t)
{
	struct vmx_vm *vm = t->vm;
	if (!vm)
		return;
	if (t->power_op == TOOLS_POWER_REBOOT) {
		vmx_vm_request_power(vm, VMX_POWER_RESET, "reboot requested (tools did not)");
	} else if (vmx_vm_power_button(vm) != 0) {
		vmx_vm_request_power(vm, VMX_POWER_OFF, "stop requested (no tools, no power button)");
	}
}

/* Publish what changed: a snapshot under the lock, VMDB writes outside it. */
static void tools_publish(struct tools *t, bool all)
{
	struct vmx_link *lk = t->vm ? t->vm->link : NULL;
	char report[TR__COUNT][256];
	uint32_t rdirty;
	bool gdirty, idirty;
	char gstate[16], hb[24];
	struct { char name[140]; char *value; } *info = NULL;
	unsigned ninfo = 0;

	if (!lk)
		return;
	vmx_mutex_lock(&t->lock);
	rdirty = all ? ~0u : t->report_dirty;
	gdirty = all || t->gstate_dirty;
	idirty = all || t->info_dirty;
	t->report_dirty = 0;
	t->gstate_dirty = t->info_dirty = false;
	memcpy(report, t->report, sizeof(report));
	snprintf(gstate, sizeof(gstate), "%s", tools_gstate_names[t->gstate]);
	snprintf(hb, sizeof(hb), "%u", t->heartbeat);
	if (idirty && t->ninfo) {
		info = calloc(t->ninfo, sizeof(*info));
		for (unsigned i = 0; info && i < t->ninfo; i++) {
			snprintf(info[i].name, sizeof(info[i].name), "%s", t->info[i].name);
			size_t n = strlen(t->info[i].value);
			if (n > 4000)
				n = 4000;   /* VMDB strings are bounded; the guest sees it all */
			info[i].value = malloc(n + 1);
			if (info[i].value) {
				tools_text(info[i].value, n + 1, (const uint8_t *)t->info[i].value, n);
			}
			ninfo = i + 1;
		}
	}
	vmx_mutex_unlock(&t->lock);

	tools_link_publish(lk, "guest/heartbeat", hb);
	if (gdirty)
		tools_link_publish(lk, "guest/state", gstate);
	for (unsigned i = 0; i < TR__COUNT; i++)
		if (rdirty & (1u << i)) {
			char rel[64];
			snprintf(rel, sizeof(rel), "guest/%s", tools_report_names[i]);
			if (i == TR_UPTIME)
				tools_link_publish(lk, "guest/uptime_s", report[i][0] ? report[i] : "0");
			else
				tools_link_publish(lk, rel, report[i]);
		}
	if (idirty) {
		char rel[64], n[16];
		for (unsigned i = 0; i < ninfo; i++) {
			snprintf(rel, sizeof(rel), "guest/info/%u/name", i);
			tools_link_publish(lk, rel, info[i].name);
			snprintf(rel, sizeof(rel), "guest/info/%u/value", i);
			tools_link_publish(lk, rel, info[i].value ? info[i].value : "");
			free(info[i].value);
		}
		snprintf(n, sizeof(n), "%u", ninfo);
		tools_link_publish(lk, "guest/info_count", n);
	}
	free(info);
}

static void tools_timer_cb(void *opaque)
{
	struct tools *t = opaque;
	vmx_mutex_lock(&t->lock);
	bool fb = tools_tick_locked(t, vlog_now_ns());
	vmx_mutex_unlock(&t->lock);
	if (fb)
		tools_do_fallback(t);
	tools_publish(t, false);
	vmx_timer_arm_in(t->timer, 1000000000ull);
}

/* VMDB request/guestinfo = "NAME=VALUE" (NAME with or without "guestinfo."). */
static void tools_on_guestinfo_req(void *opaque, const char *rel, const char *value)
{
	struct tools *t = opaque;
	if (!value || !*value)
		return;
	const char *eq = strchr(value, '=');
	if (!eq) {
		vlog_warn("VMDB request/guestinfo \"%s\": expected NAME=VALUE", value);
	} else {
		char name[160];
		size_t nl = (size_t)(eq - value);
		if (nl >= 10 && strncasecmp(value, "guestinfo.", 10) == 0) {
			value += 10;
			nl -= 10;
		}
		if (nl >= sizeof(name)) {
			vlog_warn("VMDB request/guestinfo: name too long");
		} else {
			memcpy(name, value, nl);
			name[nl] = 0;
			if (tools_guestinfo_set(t->vm, name, eq + 1) != 0)
				vlog_warn("VMDB request/guestinfo: cannot set guestinfo.%s", name);
		}
	}
	/* Consumed: clear it so that the same request can be made again. */
	tools_link_publish(t->vm->link, "request/guestinfo", "");
	tools_publish(t, false);
}

int tools_guestinfo_set(struct vmx_vm *vm, const char *name, const char *value)
{
	struct tools *t = tools_of(vm);
	if (!t)
		return -1;
	vmx_mutex_lock(&t->lock);
	int rc = info_set(t, name, value);
	vmx_mutex_unlock(&t->lock);
	return rc;
}

int tools_register_rpci(struct vmx_vm *vm, const char *prefix, tools_rpci_fn fn, void *opaque)
{
	struct tools *t = tools_of(vm);
	if (!t || !fn || !prefix || strlen(prefix) >= sizeof(t->ext[0].prefix))
		return -1;
	for (unsigned i = 0; i < TOOLS_MAX_RPCI_EXT; i++)
		if (!t->ext[i].fn) {
			snprintf(t->ext[i].prefix, sizeof(t->ext[i].prefix), "%s", prefix);
			t->ext[i].opaque = opaque;
			t->ext[i].fn = fn;
			return 0;
		}
	return -1;
}

bool tools_running(struct vmx_vm *vm)
{
	struct tools *t = tools_of(vm);
	if (!t)
		return false;
	vmx_mutex_lock(&t->lock);
	bool alive = t->last_poll_ns && vlog_now_ns() - t->last_poll_ns < TOOLS_ALIVE_NS &&
	             tclo_main(t, NULL) && tclo_main(t, NULL)->ready;
	vmx_mutex_unlock(&t->lock);
	return alive;
}

int tools_request_power(struct vmx_vm *vm, enum tools_power_op op)
{
	struct tools *t = tools_of(vm);
	if (!t || !tools_running(vm))
		return -1;
	vmx_mutex_lock(&t->lock);
	struct tools_tclo *m = tclo_main(t, NULL);
	int rc = -1;
	if (m && m->ready && !t->power_pending) {
		rc = tclo_push(m, op == TOOLS_POWER_HALT ? "OS_Halt" : "OS_Reboot", true);
		if (rc == 0) {
			t->power_pending = true;
			t->power_accepted = false;
			t->power_op = op;
			t->power_ns = tools_now(t);
		}
	} else if (t->power_pending) {
		rc = 0;   /* already on its way */
	}
	vmx_mutex_unlock(&t->lock);
	if (rc == 0)
		vlog_info("tools: asked the guest to %s", op == TOOLS_POWER_HALT ? "halt" : "reboot");
	return rc;
}

static int tools_init(struct vdev *dev, char *err, size_t errlen)
{
	struct vmx_vm *vm = dev->vm;
	struct tools *t = tools_alloc();
	const char *hb;
	static const char *const hb_choices[] = { "auto", "true", "false", NULL };

	if (!t) {
		snprintf(err, errlen, "tools: out of memory");
		return -1;
	}
	t->vm = vm;
	dev->priv = t;
	if (tools_read_config(t, vm->cfg, err, errlen) != 0 ||
	    vmxcfg_get_enum(vm->cfg, "tools.rpc.hb", "auto", hb_choices, &hb, err, errlen) != 0)
		return -1;
	/*
	 * HB: bt hands a whole REP INSB/OUTSB (up to 64 KiB) in one piece, so
	 * both directions pay.  KVM exits once per byte for REP OUTSB: there
	 * only the receive direction is offered (spec 3.5).
	 */
	bool bt = vm->engine && strcmp(vm->engine->name, "bt") == 0;
	if (strcasecmp(hb, "true") == 0)
		grpc_set_hb(t->rpc, true, true);
	else if (strcasecmp(hb, "auto") == 0)
		grpc_set_hb(t->rpc, bt, true);
	if (backdoor_register(vm, BDOOR_CMD_MESSAGE, tools_bd_message, t) != 0 ||
	    backdoor_register(vm, BDOOR_CMD_GETGUIOPTIONS, tools_bd_guioptions, t) != 0 ||
	    backdoor_register_hb(vm, tools_bd_hb, t) != 0) {
		snprintf(err, errlen, "tools: cannot register backdoor commands");
		return -1;
	}
	return 0;
}

static int tools_start(struct vdev *dev, char *err, size_t errlen)
{
	struct tools *t = dev->priv;
	struct vmx_vm *vm = dev->vm;

	t->timer = vmx_timer_new(vm->loop, VMX_CLOCK_REAL, tools_timer_cb, t);
	if (!t->timer) {
		snprintf(err, errlen, "tools: cannot create a timer");
		return -1;
	}
	vmx_timer_arm_in(t->timer, 1000000000ull);
	if (vm->link && vmx_link_watch) {
		vmx_link_watch(vm->link, "request/guestinfo", tools_on_guestinfo_req, t);
		tools_publish(t, true);
	}
	return 0;
}

static void tools_reset(struct vdev *dev)
{
	struct tools *t = dev->priv;
	vmx_mutex_lock(&t->lock);
	grpc_reset(t->rpc);
	t->last_poll_ns = 0;
	if (t->power_pending && t->power_op == TOOLS_POWER_REBOOT)
		t->power_pending = false;   /* the reboot happened */
	t->gstate = TG_UNKNOWN;
	t->gstate_dirty = true;
	vmx_mutex_unlock(&t->lock);
}

static void tools_destroy(struct vdev *dev)
{
	tools_release(dev->priv);
	dev->priv = NULL;
}

static const struct vdev_class tools_class = {
	.name = "tools",
	.order = 60,
	.init = tools_init,
	.reset = tools_reset,
	.destroy = tools_destroy,
	.start = tools_start,
};

VDEV_REGISTER(tools_class)

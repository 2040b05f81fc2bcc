/*
 * tools.h — the host side of the guest tools (vdev class "tools").
 *
 * Owns the GuestRPC channels (guestrpc.h) and runs the tools life cycle
 * (spec sections 4 and 5): the TCLO script (reset, ping,
 * Capabilities_Register, Set_Option ...), RPCI commands (info-get/info-set
 * of guestinfo.*, SetGuestInfo, tools.set.version, log ...), the heartbeat
 * ("tools running" = a TCLO poll within the last few seconds), time sync,
 * and graceful power operations.  Guest state is published under
 * /vm/<id>/guest/ in VMDB.
 *
 * .vmx keys: guestinfo.NAME = "value" (pre-set guestinfo variables),
 *   tools.syncTime = "TRUE" (periodic time sync in the guest; default TRUE),
 *   tools.syncTime.period = "60" (seconds),
 *   tools.syncTime.periodicBackward = "FALSE" (also send a backward-allowed
 *   Time_Synchronize every period), tools.rpc.hb = "auto"|"TRUE"|"FALSE".
 * VMDB: request/guestinfo = "NAME=VALUE" sets a variable from the host.
 */
#ifndef VIREO_TOOLS_H
#define VIREO_TOOLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vmx_vm;

enum tools_power_op { TOOLS_POWER_HALT, TOOLS_POWER_REBOOT };

/*
 * Ask the guest tools for a graceful halt or reboot (TCLO OS_Halt /
 * OS_Reboot).  Returns 0 when queued; the tools layer itself falls back to
 * the ACPI power button (halt) or a reset (reboot) if the guest refuses or
 * does not pick the command up.  -1 when no tools run: the caller decides.
 * Loop thread.
 */
int tools_request_power(struct vmx_vm *vm, enum tools_power_op op);
/* Is a TCLO channel being polled (tools alive)? */
bool tools_running(struct vmx_vm *vm);

/*
 * Extra RPCI commands (HGFS's "f "): requests starting with prefix go to fn
 * with the bytes after the prefix; fn stores a malloc'd reply (starting
 * "1 " or "0 ").  At device-create time, before the vCPUs run.
 */
typedef int (*tools_rpci_fn)(void *opaque, const uint8_t *args, size_t len, uint8_t **reply,
                             size_t *reply_len);
int tools_register_rpci(struct vmx_vm *vm, const char *prefix, tools_rpci_fn fn, void *opaque);

/* Host-side guestinfo (VMDB, tests): value NULL removes. name without "guestinfo.". */
int tools_guestinfo_set(struct vmx_vm *vm, const char *name, const char *value);

/*
 * The same machinery without a VM, for tests, benchmarks and the fuzzer:
 * cfg may be NULL; power requests and VMDB publishing do nothing.
 */
struct tools;
struct backdoor_call;
struct vmxcfg;
struct tools *tools_core_new(const struct vmxcfg *cfg);
void tools_core_free(struct tools *t);
void tools_core_message(struct tools *t, struct backdoor_call *c);
bool tools_core_hb(struct tools *t, const struct backdoor_call *regs, bool write, uint8_t *data,
                   size_t len);
/* The once-a-second work (heartbeat, time sync, power fallback) at time now_ns. */
void tools_core_tick(struct tools *t, uint64_t now_ns);
/* Queue a TCLO command for the guest's main tools channel; -1 when none is open. */
int tools_core_queue(struct tools *t, const char *cmd);
/* A guestinfo value as the guest sees it (NULL when unset); valid until the next change. */
const char *tools_core_guestinfo(struct tools *t, const char *name);
/* What the guest reported (os, hostname, ip, version, uptime, state): NULL if unknown. */
const char *tools_core_report(struct tools *t, const char *what);
void tools_core_set_hb(struct tools *t, bool send, bool recv);

#endif

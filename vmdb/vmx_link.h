/*
 * vmx_link.h — how a vireo-vmx started by vireod talks to it over VMDB.
 *
 * vireod runs `vireo-vmx PATH.vmx` with, in the environment,
 *   VIREO_VMDB_SOCK  the VMDB socket of vireod
 *   VIREO_VM_ID      the VM's index: the vmx owns /vm/<id>/ on the bus
 * The vmx connects back with HELLO claiming /vm/<id>; vireod grants it only
 * to the pid it spawned (or, after vireod restarted, the pid it recorded).
 * Without VIREO_VMDB_SOCK (vireoctl run), vmx_link_open_env() returns NULL
 * and the VM runs without a bus.
 *
 * The vmx publishes /vm/<id>/state/power and reason (and later stats/,
 * guest/); it watches /vm/<id>/request/power, a request written by
 * vireoctl or the GUI, and gets it through the request callback, after which
 * the link resets the request to "none".  If vireod goes away the link
 * keeps the VM running, reconnects every second and resynchronises
 * (pushes what it published, re-reads requests).
 *
 * Use from vmx/main.c (loop thread):
 *   struct vmx_link *lk = vmx_link_open_env(err, sizeof(err));   // NULL: no bus
 *   if (lk) { vmx_link_on_request(lk, on_req, vm); vmx_link_attach(lk, vm->loop); }
 *   vmx_link_publish_power(lk, VMX_LINK_ON, NULL);               // guest started
 *   ... on exit: vmx_link_publish_power(lk, VMX_LINK_OFF, "guest powered off");
 *   vmx_link_close(lk);
 * All functions accept lk == NULL and do nothing.
 */
#ifndef VIREO_VMX_LINK_H
#define VIREO_VMX_LINK_H

#include <stdint.h>
#include <stddef.h>

struct vmx_link;
struct vmx_loop;

enum vmx_link_power {
	VMX_LINK_OFF = 0, VMX_LINK_STARTING, VMX_LINK_ON, VMX_LINK_SUSPENDED, VMX_LINK_STOPPING
};

enum vmx_link_request {
	VMX_LINK_REQ_NONE = 0,
	VMX_LINK_REQ_ON,        /* already on: the link ignores it */
	VMX_LINK_REQ_OFF,       /* graceful: ACPI power button, then off */
	VMX_LINK_REQ_HARDOFF,   /* now */
	VMX_LINK_REQ_RESET,
	VMX_LINK_REQ_SUSPEND,
};

typedef void (*vmx_link_request_cb)(void *opaque, enum vmx_link_request req);

struct vmx_link *vmx_link_open_env(char *err, size_t errlen);
struct vmx_link *vmx_link_open(const char *sock, unsigned vm_id, char *err, size_t errlen);
void vmx_link_close(struct vmx_link *lk);
void vmx_link_on_request(struct vmx_link *lk, vmx_link_request_cb cb, void *opaque);

/* Publish power state (reason may be NULL); kept and re-sent after a reconnect. */
int vmx_link_publish_power(struct vmx_link *lk, enum vmx_link_power p, const char *reason);
/* Publish any leaf under /vm/<id>/ (rel: "stats/uptime_ms"), value as text. */
int vmx_link_publish(struct vmx_link *lk, const char *rel, const char *value);

/*
 * Watch a leaf under /vm/<id>/ (rel: "request/balloon_mb"); cb gets its new
 * value as text (NULL when deleted) on the loop thread.  Up to 16 watches.
 * The leaf must be in vmdb/schema.txt.
 */
typedef void (*vmx_link_watch_cb)(void *opaque, const char *rel, const char *value);
int vmx_link_watch(struct vmx_link *lk, const char *rel, vmx_link_watch_cb cb, void *opaque);

/* One fd to poll (EPOLLIN) and its handler; vmx_link_tick() once a second. */
int vmx_link_fd(struct vmx_link *lk);
void vmx_link_dispatch(struct vmx_link *lk);
void vmx_link_fd_cb(void *lk, uint32_t events);
void vmx_link_tick(struct vmx_link *lk);
unsigned vmx_link_vm_id(const struct vmx_link *lk);

/* vmx_link_loop.c: registers the fd and a 1 s reconnect timer on the VMX loop. */
int vmx_link_attach(struct vmx_link *lk, struct vmx_loop *loop);

#endif

/*
 * backdoor.h — the VMware backdoor (I/O ports 0x5658 / 0x5659).
 *
 * See ../shared/spec/guest-interfaces.md section 2.  This file is the
 * command dispatcher; GuestRPC, tools and the balloon plug in here.
 */
#ifndef VIREO_BACKDOOR_H
#define VIREO_BACKDOOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vmx_vm;

#define BDOOR_MAGIC            0x564D5868u
#define BDOOR_CMD_GETMHZ       1
#define BDOOR_CMD_GETVERSION   10
#define BDOOR_CMD_GETGUIOPTIONS 13
#define BDOOR_CMD_GETTIME      23
#define BDOOR_CMD_STOPCATCHUP  24
#define BDOOR_CMD_GETHZ        45
#define BDOOR_CMD_GETTIMEFULL  46
#define BDOOR_CMD_GETTIMEFULL_WITH_LAG 55
#define BDOOR_CMD_GET_VCPU_INFO 68
#define BDOOR_CMD_STEALCLOCK   91
#define BDOOR_VERSION          6
#define BDOOR_PRODUCT_WORKSTATION 4

/*
 * One low-bandwidth call: the guest's registers in, the answer out.  A
 * handler sets the fields it answers; regs_changed says whether anything
 * but EAX goes back.  Handlers run on the vCPU thread that did the IN:
 * they take their own device lock and never block on the host.
 */
struct backdoor_call {
	uint32_t eax, ebx, ecx, edx, esi, edi;
	uint32_t ebp;         /* read-only input: the HB calls carry a cookie in it */
	unsigned vcpu_id;
	uint8_t cpl;          /* privilege level of the IN (0 when unknown) */
	bool regs_changed;
};

typedef void (*backdoor_cmd_fn)(void *opaque, struct vmx_vm *vm, struct backdoor_call *c);

/*
 * A high-bandwidth transfer (port 0x5659, REP INSB/OUTSB).  The engine
 * hands the string in pieces (KVM splits at page boundaries), so the
 * handler is called once per piece with the bytes moved by it; regs are the
 * registers at the start of that piece (EBX names the command).  For reads
 * the handler fills data.  Returning false answers "failed" (no data).
 */
typedef bool (*backdoor_hb_fn)(void *opaque, struct vmx_vm *vm, const struct backdoor_call *regs,
                               bool write, uint8_t *data, size_t len);

#define BACKDOOR_NCMDS 128

/* Called by devices at create time (after backdoor_init): cmd < BACKDOOR_NCMDS, once each. */
int backdoor_register(struct vmx_vm *vm, uint16_t cmd, backdoor_cmd_fn fn, void *opaque);
int backdoor_register_hb(struct vmx_vm *vm, backdoor_hb_fn fn, void *opaque);

int backdoor_init(struct vmx_vm *vm, char *err, size_t errlen);
void backdoor_destroy(struct vmx_vm *vm);
/* An access to a backdoor port from vCPU vcpu_id (engine registers readable). */
void backdoor_pio(struct vmx_vm *vm, unsigned vcpu_id, uint16_t port, unsigned size, bool write,
                  uint32_t count, uint8_t *data);

#endif

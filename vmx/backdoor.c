/*
 * backdoor.c — the low-bandwidth backdoor command dispatcher.
 *
 * The guest loads EAX = magic, ECX = command and executes `in eax, dx` on
 * port 0x5658.  Results come back in EAX (through the IN itself) and in the
 * other registers (through the engine's register accessors).  Unknown
 * commands answer EAX = 0xFFFFFFFF and leave everything else alone, as
 * VMware's host does (spec 2.3).
 */
#include "backdoor.h"

#include <string.h>
#include <time.h>

#include "log.h"
#include "platform.h"
#include "vm.h"

struct backdoor_call {
	uint32_t eax, ebx, ecx, edx, esi, edi;
	bool regs_changed;
};

typedef void (*backdoor_cmd_fn)(struct vmx_vm *vm, struct backdoor_call *c);

static void bd_getversion(struct vmx_vm *vm, struct backdoor_call *c)
{
	c->eax = BDOOR_VERSION;
	c->ebx = BDOOR_MAGIC;
	c->ecx = BDOOR_PRODUCT_WORKSTATION;
	c->regs_changed = true;
}

static uint64_t bd_tsc_hz(struct vmx_vm *vm)
{
	if (vm->engine->vm_tsc_hz && vm->evm)
		return vm->engine->vm_tsc_hz(vm->evm);
	return vm->tsc_hz;
}

static void bd_getmhz(struct vmx_vm *vm, struct backdoor_call *c)
{
	c->eax = (uint32_t)(bd_tsc_hz(vm) / 1000000u);
}

static void bd_gethz(struct vmx_vm *vm, struct backdoor_call *c)
{
	uint64_t hz = bd_tsc_hz(vm);
	c->eax = (uint32_t)hz;
	c->ebx = (uint32_t)(hz >> 32);
	c->ecx = (uint32_t)vm->apic_bus_hz;
	c->regs_changed = true;
}

static void bd_gettime(struct vmx_vm *vm, struct backdoor_call *c)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	c->eax = (uint32_t)ts.tv_sec;
	c->ebx = (uint32_t)(ts.tv_nsec / 1000);
	c->ecx = 1000000;   /* max uncorrected lag, µs */
	c->regs_changed = true;
}

static void bd_gettimefull(struct vmx_vm *vm, struct backdoor_call *c)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	c->eax = BDOOR_MAGIC;   /* success is "EAX left = magic" */
	c->edx = (uint32_t)(uint64_t)ts.tv_sec;
	c->esi = (uint32_t)((uint64_t)ts.tv_sec >> 32);
	c->ebx = (uint32_t)(ts.tv_nsec / 1000);
	c->ecx = 1000000;
	c->edi = 0;             /* interrupt lag (WITH_LAG): none without catch-up */
	c->regs_changed = true;
}

static const backdoor_cmd_fn backdoor_cmds[128] = {
	[BDOOR_CMD_GETMHZ] = bd_getmhz,
	[BDOOR_CMD_GETVERSION] = bd_getversion,
	[BDOOR_CMD_GETTIME] = bd_gettime,
	[BDOOR_CMD_GETHZ] = bd_gethz,
	[BDOOR_CMD_GETTIMEFULL] = bd_gettimefull,
	[BDOOR_CMD_GETTIMEFULL_WITH_LAG] = bd_gettimefull,
};

int backdoor_init(struct vmx_vm *vm, char *err, size_t errlen)
{
	return 0;
}

void backdoor_destroy(struct vmx_vm *vm)
{
}

static void bd_lowbandwidth(struct vmx_vm *vm, unsigned vcpu_id, uint8_t *data)
{
	struct vmx_vcpu *v = &vm->vcpus[vcpu_id];
	struct vmm_regs r;
	struct backdoor_call c;
	uint16_t cmd;

	if (vm->engine->get_regs(v->ev, &r) != 0) {
		memset(data, 0xFF, 4);
		return;
	}
	c = (struct backdoor_call){
		.eax = (uint32_t)r.rax, .ebx = (uint32_t)r.rbx, .ecx = (uint32_t)r.rcx,
		.edx = (uint32_t)r.rdx, .esi = (uint32_t)r.rsi, .edi = (uint32_t)r.rdi,
	};
	cmd = (uint16_t)c.ecx;
	if (c.eax != BDOOR_MAGIC || cmd >= 128 || !backdoor_cmds[cmd]) {
		if (c.eax == BDOOR_MAGIC)
			vlog_guest("backdoor: unsupported command %u", cmd);
		c.eax = 0xFFFFFFFFu;
	} else {
		backdoor_cmds[cmd](vm, &c);
	}
	if (c.regs_changed) {
		/* Zero-extended, as the IN itself does for RAX. */
		r.rbx = c.ebx;
		r.rcx = c.ecx;
		r.rdx = c.edx;
		r.rsi = c.esi;
		r.rdi = c.edi;
		vm->engine->set_regs(v->ev, &r);
	}
	memcpy(data, &c.eax, 4);
}

void backdoor_pio(struct vmx_vm *vm, unsigned vcpu_id, uint16_t port, unsigned size, bool write,
                  uint32_t count, uint8_t *data)
{
	if (port == PLAT_PORT_BACKDOOR && size == 4 && count == 1) {
		bd_lowbandwidth(vm, vcpu_id, data);
		return;
	}
	/* High-bandwidth transfers come with GuestRPC; until then they move nothing. */
	vlog_guest("backdoor: %s of %u x %u bytes on port 0x%x not supported", write ? "write" : "read",
	           count, size, port);
	if (!write)
		memset(data, 0xFF, (size_t)count * size);
}

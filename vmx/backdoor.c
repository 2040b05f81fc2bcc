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

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "platform.h"
#include "vm.h"


/* Max uncorrected lag reported with the time (spec 5.3: VMware's 100 ms). */
#define BDOOR_MAX_LAG_US 100000u

static void bd_getversion(void *opaque, struct vmx_vm *vm, struct backdoor_call *c)
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

static void bd_getmhz(void *opaque, struct vmx_vm *vm, struct backdoor_call *c)
{
	c->eax = (uint32_t)(bd_tsc_hz(vm) / 1000000u);
}

static void bd_gethz(void *opaque, struct vmx_vm *vm, struct backdoor_call *c)
{
	uint64_t hz = bd_tsc_hz(vm);
	c->eax = (uint32_t)hz;
	c->ebx = (uint32_t)(hz >> 32);
	c->ecx = (uint32_t)vm->apic_bus_hz;
	c->regs_changed = true;
}

static void bd_gettime(void *opaque, struct vmx_vm *vm, struct backdoor_call *c)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	c->eax = (uint32_t)ts.tv_sec;
	c->ebx = (uint32_t)(ts.tv_nsec / 1000);
	c->ecx = BDOOR_MAX_LAG_US;
	c->regs_changed = true;
}

static void bd_gettimefull(void *opaque, struct vmx_vm *vm, struct backdoor_call *c)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	c->eax = BDOOR_MAGIC;   /* success is "EAX left = magic" */
	c->edx = (uint32_t)(uint64_t)ts.tv_sec;
	c->esi = (uint32_t)((uint64_t)ts.tv_sec >> 32);
	c->ebx = (uint32_t)(ts.tv_nsec / 1000);
	c->ecx = BDOOR_MAX_LAG_US;
	c->edi = 0;             /* interrupt lag (WITH_LAG): none without catch-up */
	c->regs_changed = true;
}

/* No timer catch-up to stop: success with nothing changed. */
static void bd_stopcatchup(void *opaque, struct vmx_vm *vm, struct backdoor_call *c)
{
}

static const backdoor_cmd_fn backdoor_builtin[] = {
	[BDOOR_CMD_STOPCATCHUP] = bd_stopcatchup,
	[BDOOR_CMD_GETMHZ] = bd_getmhz,
	[BDOOR_CMD_GETVERSION] = bd_getversion,
	[BDOOR_CMD_GETTIME] = bd_gettime,
	[BDOOR_CMD_GETHZ] = bd_gethz,
	[BDOOR_CMD_GETTIMEFULL] = bd_gettimefull,
	[BDOOR_CMD_GETTIMEFULL_WITH_LAG] = bd_gettimefull,
};

/* Filled at create time, read-only while vCPUs run: no lock needed. */
struct backdoor {
	backdoor_cmd_fn fn[BACKDOOR_NCMDS];
	void *opaque[BACKDOOR_NCMDS];
	backdoor_hb_fn hb;
	void *hb_opaque;
};

int backdoor_init(struct vmx_vm *vm, char *err, size_t errlen)
{
	struct backdoor *bd = calloc(1, sizeof(*bd));
	if (!bd) {
		snprintf(err, errlen, "backdoor: out of memory");
		return -1;
	}
	for (size_t i = 0; i < sizeof(backdoor_builtin) / sizeof(backdoor_builtin[0]); i++)
		bd->fn[i] = backdoor_builtin[i];
	vm->backdoor = bd;
	return 0;
}

void backdoor_destroy(struct vmx_vm *vm)
{
	free(vm->backdoor);
	vm->backdoor = NULL;
}

int backdoor_register(struct vmx_vm *vm, uint16_t cmd, backdoor_cmd_fn fn, void *opaque)
{
	struct backdoor *bd = vm->backdoor;
	if (!bd || cmd >= BACKDOOR_NCMDS || !fn)
		return -1;
	bd->fn[cmd] = fn;
	bd->opaque[cmd] = opaque;
	return 0;
}

int backdoor_register_hb(struct vmx_vm *vm, backdoor_hb_fn fn, void *opaque)
{
	struct backdoor *bd = vm->backdoor;
	if (!bd)
		return -1;
	bd->hb = fn;
	bd->hb_opaque = opaque;
	return 0;
}

static bool bd_read_call(struct vmx_vm *vm, unsigned vcpu_id, struct vmm_regs *r,
                         struct backdoor_call *c)
{
	struct vmx_vcpu *v = &vm->vcpus[vcpu_id];
	struct vmm_sregs sr;

	if (vm->engine->get_regs(v->ev, r) != 0)
		return false;
	*c = (struct backdoor_call){
		.eax = (uint32_t)r->rax, .ebx = (uint32_t)r->rbx, .ecx = (uint32_t)r->rcx,
		.edx = (uint32_t)r->rdx, .esi = (uint32_t)r->rsi, .edi = (uint32_t)r->rdi,
		.ebp = (uint32_t)r->rbp, .vcpu_id = vcpu_id,
	};
	if (vm->engine->get_sregs && vm->engine->get_sregs(v->ev, &sr) == 0)
		c->cpl = (uint8_t)(sr.cs.selector & 3);
	return true;
}

static void bd_lowbandwidth(struct vmx_vm *vm, unsigned vcpu_id, uint8_t *data)
{
	struct backdoor *bd = vm->backdoor;
	struct vmx_vcpu *v = &vm->vcpus[vcpu_id];
	struct vmm_regs r;
	struct backdoor_call c;
	uint16_t cmd;

	if (!bd || !bd_read_call(vm, vcpu_id, &r, &c)) {
		memset(data, 0xFF, 4);
		return;
	}
	cmd = (uint16_t)c.ecx;
	if (c.eax != BDOOR_MAGIC || cmd >= BACKDOOR_NCMDS || !bd->fn[cmd]) {
		if (c.eax == BDOOR_MAGIC)
			vlog_guest("backdoor: unsupported command %u", cmd);
		c.eax = 0xFFFFFFFFu;
	} else {
		bd->fn[cmd](bd->opaque[cmd], vm, &c);
	}
	if (c.regs_changed) {
		/*
		 * Zero-extended, as the IN itself does for RAX.  RAX is set here
		 * too: on hv, KVM_SET_REGS during the IN exit wins over the IN's
		 * own completion (seen with Linux 6.x), so both carry the answer.
		 */
		r.rax = c.eax;
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
	struct backdoor *bd = vm->backdoor;
	struct vmm_regs r;
	struct backdoor_call c;

	if (port == PLAT_PORT_BACKDOOR && size == 4 && count == 1) {
		bd_lowbandwidth(vm, vcpu_id, data);
		return;
	}
	if (port == PLAT_PORT_BACKDOOR_HB && size == 1 && bd && bd->hb &&
	    bd_read_call(vm, vcpu_id, &r, &c) && c.eax == BDOOR_MAGIC) {
		if (!bd->hb(bd->hb_opaque, vm, &c, write, data, count)) {
			/*
			 * Failure is hi16(EBX) without SUCCESS; RCX/RSI/RDI stay as
			 * they are so the engine finishes the string op normally.
			 */
			r.rbx = c.ebx & 0xFFFFu;
			vm->engine->set_regs(vm->vcpus[vcpu_id].ev, &r);
		}
		return;
	}
	vlog_guest("backdoor: %s of %u x %u bytes on port 0x%x not supported", write ? "write" : "read",
	           count, size, port);
	if (!write)
		memset(data, 0xFF, (size_t)count * size);
}

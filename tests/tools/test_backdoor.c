/*
 * test_backdoor.c — the backdoor dispatcher (vmx/backdoor.c) through
 * backdoor_pio(), on a hand-built vmx_vm whose "engine" is a register file
 * (the dispatcher reads and writes registers only through the engine's
 * get_regs/set_regs/get_sregs): unknown commands, bad magic, GETVERSION,
 * the time commands, registered commands, and HB success and failure.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/unit/t.h"
#include "vmx/backdoor.h"
#include "vmx/platform.h"
#include "vmx/vm.h"

static struct vmm_regs regs;
static unsigned set_calls;

static int fake_get_regs(struct vmm_vcpu *v, struct vmm_regs *r)
{
	*r = regs;
	return 0;
}

static int fake_set_regs(struct vmm_vcpu *v, const struct vmm_regs *r)
{
	regs = *r;
	set_calls++;
	return 0;
}

static int fake_get_sregs(struct vmm_vcpu *v, struct vmm_sregs *s)
{
	memset(s, 0, sizeof(*s));
	s->cs.selector = 0x33;   /* CPL 3 */
	return 0;
}

static const struct vmm_engine fake_engine = {
	.name = "fake",
	.get_regs = fake_get_regs,
	.set_regs = fake_set_regs,
	.get_sregs = fake_get_sregs,
};

/* An IN on the LB port with these registers; returns EAX as the IN gives it. */
static uint32_t lb(struct vmx_vm *vm, uint32_t eax, uint32_t ebx, uint32_t ecx)
{
	uint8_t data[4];
	memset(&regs, 0, sizeof(regs));
	regs.rax = eax;
	regs.rbx = ebx;
	regs.rcx = ecx;
	regs.rdx = PLAT_PORT_BACKDOOR;
	regs.rsi = 0x1111;
	regs.rdi = 0x2222;
	regs.rbp = 0x3333;
	set_calls = 0;
	backdoor_pio(vm, 0, PLAT_PORT_BACKDOOR, 4, false, 1, data);
	uint32_t v;
	memcpy(&v, data, 4);
	return v;
}

static unsigned seen_cpl, hb_pieces;
static size_t hb_bytes;

static void my_cmd(void *opaque, struct vmx_vm *vm, struct backdoor_call *c)
{
	seen_cpl = c->cpl;
	c->eax = 0x1234;
	c->ebx = c->ebp;   /* EBP is an input: echo it */
	c->regs_changed = true;
}

static bool my_hb(void *opaque, struct vmx_vm *vm, const struct backdoor_call *r, bool write,
                  uint8_t *data, size_t len)
{
	hb_pieces++;
	hb_bytes += len;
	if (!write)
		memset(data, 0x77, len);
	return r->edx >> 16 == 1;   /* channel 1 works, others fail */
}

int main(void)
{
	char err[128];
	struct vmx_vm *vm = calloc(1, sizeof(*vm));
	vm->engine = &fake_engine;
	vm->ncpus = 1;
	vm->vcpus[0].vm = vm;
	vm->tsc_hz = 2500000000ull;
	vm->apic_bus_hz = 1000000000ull;
	T_EQ_I64(backdoor_init(vm, err, sizeof(err)), 0);

	/* Unknown command: EAX = all ones, nothing else touched (spec 2.3). */
	T_EQ_U64(lb(vm, BDOOR_MAGIC, 0x55, 99), 0xFFFFFFFFu);
	T_EQ_U64(set_calls, 0);
	T_EQ_U64(regs.rbx, 0x55);
	/* Bad magic: the same. */
	T_EQ_U64(lb(vm, 0x12345678, 0, BDOOR_CMD_GETVERSION), 0xFFFFFFFFu);
	T_EQ_U64(set_calls, 0);
	/* Command numbers past the table. */
	T_EQ_U64(lb(vm, BDOOR_MAGIC, 0, 0xFFFF), 0xFFFFFFFFu);
	/* GETVERSION: 6, magic, Workstation; RAX set through set_regs too (hv). */
	T_EQ_U64(lb(vm, BDOOR_MAGIC, ~BDOOR_MAGIC, 0xFFFF0000u | BDOOR_CMD_GETVERSION), 6);
	T_EQ_U64(regs.rax, 6);
	T_EQ_U64(regs.rbx, BDOOR_MAGIC);
	T_EQ_U64(regs.rcx, BDOOR_PRODUCT_WORKSTATION);
	T_EQ_U64(regs.rbp, 0x3333);
	/* GETHZ: EBX:EAX = TSC Hz, ECX = APIC bus Hz. */
	uint32_t lo = lb(vm, BDOOR_MAGIC, 0xFFFFFFFFu, BDOOR_CMD_GETHZ);
	T_EQ_U64(((uint64_t)regs.rbx << 32) | lo, 2500000000ull);
	T_EQ_U64(regs.rcx, 1000000000ull);
	/* GETTIMEFULL(_WITH_LAG): EAX stays magic on success; seconds in ESI:EDX. */
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	T_EQ_U64(lb(vm, BDOOR_MAGIC, 0, BDOOR_CMD_GETTIMEFULL_WITH_LAG), BDOOR_MAGIC);
	uint64_t secs = (regs.rsi << 32) | regs.rdx;
	T_ASSERT(secs >= (uint64_t)ts.tv_sec && secs <= (uint64_t)ts.tv_sec + 2);
	T_EQ_U64(regs.rcx, 100000);
	T_EQ_U64(regs.rdi, 0);
	/* GETTIME: seconds in EAX. */
	uint32_t s32 = lb(vm, BDOOR_MAGIC, 0, BDOOR_CMD_GETTIME);
	T_ASSERT(s32 >= (uint32_t)ts.tv_sec && s32 <= (uint32_t)ts.tv_sec + 2);
	/* STOPCATCHUP: handled, nothing changes (EAX stays magic, not all ones). */
	T_EQ_U64(lb(vm, BDOOR_MAGIC, 0, BDOOR_CMD_STOPCATCHUP), BDOOR_MAGIC);

	/* A registered command sees the CPL and EBP. */
	T_EQ_I64(backdoor_register(vm, 77, my_cmd, NULL), 0);
	T_ASSERT(backdoor_register(vm, BACKDOOR_NCMDS, my_cmd, NULL) != 0);
	T_EQ_U64(lb(vm, BDOOR_MAGIC, 0, 77), 0x1234);
	T_EQ_U64(seen_cpl, 3);
	T_EQ_U64(regs.rbx, 0x3333);

	/* HB: pieces reach the handler; a refused piece clears hi16(EBX) only. */
	uint8_t buf[300];
	T_EQ_I64(backdoor_register_hb(vm, my_hb, NULL), 0);
	memset(&regs, 0, sizeof(regs));
	regs.rax = BDOOR_MAGIC;
	regs.rbx = 0x10000;
	regs.rcx = 300;
	regs.rdx = 1u << 16 | PLAT_PORT_BACKDOOR_HB;
	regs.rsi = 0xABC;
	set_calls = 0;
	backdoor_pio(vm, 0, PLAT_PORT_BACKDOOR_HB, 1, false, 300, buf);
	T_EQ_U64(hb_pieces, 1);
	T_EQ_U64(hb_bytes, 300);
	T_EQ_U64(buf[299], 0x77);
	T_EQ_U64(set_calls, 0);
	regs.rdx = 2u << 16 | PLAT_PORT_BACKDOOR_HB;
	backdoor_pio(vm, 0, PLAT_PORT_BACKDOOR_HB, 1, true, 10, buf);
	T_EQ_U64(set_calls, 1);
	T_EQ_U64(regs.rbx, 0);          /* status cleared, command kept */
	T_EQ_U64(regs.rcx, 300);        /* the string registers untouched */
	T_EQ_U64(regs.rsi, 0xABC);
	/* Other sizes on the ports: read as all ones, no crash. */
	memset(buf, 0, 8);
	backdoor_pio(vm, 0, PLAT_PORT_BACKDOOR, 2, false, 1, buf);
	T_EQ_U64(buf[0], 0xFF);

	backdoor_destroy(vm);
	free(vm);
	return T_DONE();
}

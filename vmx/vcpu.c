/*
 * vcpu.c — the vCPU threads.  Each runs the engine and dispatches its exits
 * through one table; device access goes through the buses.
 */
#include "vcpu.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "backdoor.h"
#include "log.h"
#include "platform.h"
#include "vm.h"

/* ---- device dispatch ---- */

static uint64_t vcpu_le_load(const uint8_t *p, unsigned size)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < size; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static void vcpu_le_store(uint8_t *p, unsigned size, uint64_t v)
{
	for (unsigned i = 0; i < size; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

void vmx_vcpu_pio(struct vmx_vcpu *vcpu, uint16_t port, unsigned size, bool write,
                  uint32_t count, uint8_t *data)
{
	struct vmx_vm *vm = vcpu->vm;

	if (size != 1 && size != 2 && size != 4) {
		vlog_guest("port I/O of size %u at 0x%x", size, port);
		return;
	}
	if (port == PLAT_PORT_BACKDOOR || port == PLAT_PORT_BACKDOOR_HB) {
		backdoor_pio(vm, vcpu->id, port, size, write, count, data);
		return;
	}
	for (uint32_t i = 0; i < count; i++) {
		uint8_t *p = data + (size_t)i * size;
		uint64_t v = write ? vcpu_le_load(p, size) : 0;
		iobus_access(&vm->pio, port, size, write, &v);
		if (!write)
			vcpu_le_store(p, size, v);
	}
}

void vmx_vcpu_mmio(struct vmx_vcpu *vcpu, uint64_t gpa, unsigned size, bool write, uint8_t *data)
{
	uint64_t v = write ? vcpu_le_load(data, size) : 0;

	if (size != 1 && size != 2 && size != 4 && size != 8) {
		vlog_guest("MMIO of size %u at 0x%llx", size, (unsigned long long)gpa);
		if (!write)
			memset(data, 0xFF, size > 8 ? 8 : size);
		return;
	}
	iobus_access(&vcpu->vm->mmio, gpa, size, write, &v);
	if (!write)
		vcpu_le_store(data, size, v);
}

void vmx_vcpu_shutdown(struct vmx_vm *vm, unsigned vcpu_id, const char *why)
{
	uint64_t now = vlog_now_ns();

	/* A guest that triple-faults right after every reset would spin forever. */
	if (now - vm->last_triple_fault_ns > 10000000000ull)
		vm->triple_faults = 0;
	vm->last_triple_fault_ns = now;
	vm->triple_faults++;
	vlog_warn("vCPU %u: triple fault (%s)", vcpu_id, why && *why ? why : "shutdown");
	if (vm->triple_faults >= 5)
		vmx_vm_request_power(vm, VMX_POWER_FAIL,
		                     "the guest triple-faulted 5 times within 10 s of each reset");
	else
		vmx_vm_request_power(vm, VMX_POWER_RESET, "triple fault");
}

/* ---- exits ---- */

typedef int (*vcpu_exit_fn)(struct vmx_vcpu *vcpu, struct vmm_exit *e);

static int vcpu_exit_io(struct vmx_vcpu *vcpu, struct vmm_exit *e)
{
	uint8_t *data = e->io.data ? e->io.data : e->io.inline_data;
	vmx_vcpu_pio(vcpu, e->io.port, e->io.size, e->io.write, e->io.count ? e->io.count : 1, data);
	return 0;
}

static int vcpu_exit_mmio(struct vmx_vcpu *vcpu, struct vmm_exit *e)
{
	vmx_vcpu_mmio(vcpu, e->mmio.gpa, e->mmio.size, e->mmio.write, e->mmio.data);
	return 0;
}

static int vcpu_exit_kicked(struct vmx_vcpu *vcpu, struct vmm_exit *e)
{
	return 0;
}

static int vcpu_exit_hlt(struct vmx_vcpu *vcpu, struct vmm_exit *e)
{
	/* Interrupts off and halted: only a reset or power-off can move it. */
	if (!vcpu->halted_logged) {
		vlog_info("vCPU %u halted with interrupts disabled", vcpu->id);
		vcpu->halted_logged = true;
	}
	while (!atomic_load(&vcpu->vm->stopping))
		usleep(20000);
	return 0;
}

static int vcpu_exit_shutdown(struct vmx_vcpu *vcpu, struct vmm_exit *e)
{
	vmx_vcpu_shutdown(vcpu->vm, vcpu->id, e->msg);
	return 1;
}

static int vcpu_exit_reset(struct vmx_vcpu *vcpu, struct vmm_exit *e)
{
	vmx_vm_request_power(vcpu->vm, VMX_POWER_RESET, e->msg[0] ? e->msg : "reset by the engine");
	return 1;
}

static int vcpu_exit_internal(struct vmx_vcpu *vcpu, struct vmm_exit *e)
{
	char why[300];
	snprintf(why, sizeof(why), "vCPU %u: engine %s: %s", vcpu->id, vcpu->vm->engine->name,
	         e->msg[0] ? e->msg : "internal error");
	vmx_vm_request_power(vcpu->vm, VMX_POWER_FAIL, why);
	return 1;
}

static int vcpu_exit_unknown(struct vmx_vcpu *vcpu, struct vmm_exit *e)
{
	char why[300];
	snprintf(why, sizeof(why), "vCPU %u: engine %s: unknown exit %llu%s%s", vcpu->id,
	         vcpu->vm->engine->name, (unsigned long long)e->code, e->msg[0] ? ": " : "", e->msg);
	vmx_vm_request_power(vcpu->vm, VMX_POWER_FAIL, why);
	return 1;
}

static const vcpu_exit_fn vcpu_exit_table[VMM_EXIT__COUNT] = {
	[VMM_EXIT_IO] = vcpu_exit_io,
	[VMM_EXIT_MMIO] = vcpu_exit_mmio,
	[VMM_EXIT_KICKED] = vcpu_exit_kicked,
	[VMM_EXIT_HLT] = vcpu_exit_hlt,
	[VMM_EXIT_SHUTDOWN] = vcpu_exit_shutdown,
	[VMM_EXIT_RESET] = vcpu_exit_reset,
	[VMM_EXIT_INTERNAL] = vcpu_exit_internal,
	[VMM_EXIT_UNKNOWN] = vcpu_exit_unknown,
};

static void *vcpu_thread(void *arg)
{
	struct vmx_vcpu *vcpu = arg;
	struct vmx_vm *vm = vcpu->vm;
	char name[16];
	sigset_t set;

	/* Host signals (SIGINT, SIGTERM, SIGCHLD) are the loop thread's business. */
	sigfillset(&set);
	sigdelset(&set, SIGUSR1);   /* the hv engine's kick */
	sigdelset(&set, SIGSEGV);
	sigdelset(&set, SIGBUS);
	sigdelset(&set, SIGFPE);
	sigdelset(&set, SIGILL);
	pthread_sigmask(SIG_SETMASK, &set, NULL);
	snprintf(name, sizeof(name), "vcpu-%u", vcpu->id);
	vlog_set_thread_name(name);

	/* One exit record for the thread's life: an engine completes an IN or an
	 * MMIO read from the data the handler left in it. */
	struct vmm_exit e;
	memset(&e, 0, sizeof(e));
	while (!atomic_load(&vm->stopping)) {
		if (vm->engine->vcpu_run(vcpu->ev, &e) != 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			char why[200];
			snprintf(why, sizeof(why), "vCPU %u: engine %s: run failed: %s", vcpu->id,
			         vm->engine->name, strerror(errno));
			vmx_vm_request_power(vm, VMX_POWER_FAIL, why);
			break;
		}
		unsigned r = (unsigned)e.reason;
		if (r >= VMM_EXIT__COUNT || !vcpu_exit_table[r]) {
			e.code = r;
			r = VMM_EXIT_UNKNOWN;
		}
		uint64_t t0 = vlog_now_ns();
		int stop = vcpu_exit_table[r](vcpu, &e);
		atomic_fetch_add_explicit(&vcpu->exits[r], 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&vcpu->exit_ns[r], vlog_now_ns() - t0, memory_order_relaxed);
		if (stop)
			break;
	}
	return NULL;
}

int vmx_vcpus_start(struct vmx_vm *vm, char *err, size_t errlen)
{
	for (unsigned i = 0; i < vm->ncpus; i++) {
		struct vmx_vcpu *v = &vm->vcpus[i];
		int rc = pthread_create(&v->thread, NULL, vcpu_thread, v);
		if (rc != 0) {
			snprintf(err, errlen, "cannot start vCPU %u: %s", i, strerror(rc));
			vmx_vcpus_stop(vm);
			return -1;
		}
		v->thread_started = true;
	}
	return 0;
}

void vmx_vcpus_stop(struct vmx_vm *vm)
{
	atomic_store(&vm->stopping, true);
	for (unsigned i = 0; i < vm->ncpus; i++) {
		struct vmx_vcpu *v = &vm->vcpus[i];
		if (!v->thread_started)
			continue;
		/* Kick until it leaves: a kick can land just before it enters the engine. */
		for (;;) {
			struct timespec ts;
			vmx_vm_kick(vm, (int)i);
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 20000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			if (pthread_timedjoin_np(v->thread, NULL, &ts) == 0)
				break;
		}
		v->thread_started = false;
	}
}

static void vcpu_stats_emit(void *ctx, const char *name, uint64_t count, uint64_t ns)
{
	vlog_info("stats: engine %s: %llu (%llu us)", name, (unsigned long long)count,
	          (unsigned long long)(ns / 1000));
}

void vmx_vcpus_log_stats(struct vmx_vm *vm)
{
	for (unsigned i = 0; i < vm->ncpus; i++) {
		char line[512];
		size_t n = 0;
		for (unsigned r = 0; r < VMM_EXIT__COUNT; r++) {
			uint64_t c = atomic_load_explicit(&vm->vcpus[i].exits[r], memory_order_relaxed);
			uint64_t ns = atomic_load_explicit(&vm->vcpus[i].exit_ns[r], memory_order_relaxed);
			if (c && n < sizeof(line))
				n += (size_t)snprintf(line + n, sizeof(line) - n, " %s=%llu/%lluus",
				                      vmm_exit_reason_name((enum vmm_exit_reason)r),
				                      (unsigned long long)c, (unsigned long long)(ns / 1000));
		}
		vlog_info("stats: vCPU %u exits:%s", i, n ? line : " none");
	}
	if (vm->engine->vm_stats && vm->evm)
		vm->engine->vm_stats(vm->evm, vcpu_stats_emit, NULL);
}

#ifdef VIREO_STATS
static void vcpu_stats_tick(void *opaque)
{
	struct vmx_vm *vm = opaque;
	vmx_vcpus_log_stats(vm);
	vmx_timer_arm_in(vm->stats_timer, 10000000000ull);
}
#endif

void vmx_stats_start(struct vmx_vm *vm)
{
#ifdef VIREO_STATS
	vm->stats_timer = vmx_timer_new(vm->loop, VMX_CLOCK_REAL, vcpu_stats_tick, vm);
	if (vm->stats_timer)
		vmx_timer_arm_in(vm->stats_timer, 10000000000ull);
#else
	(void)vm;
#endif
}

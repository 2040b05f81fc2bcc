/*
 * bt_engine.c — the bt engine behind the vmm.h contract: VM and vCPU
 * objects, the run loop (interrupts, timers, HLT sleep), kicks, register
 * accessors, save/restore, statistics.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bt.h"
#include "vmx/log.h"

#define BT_DEFAULT_TSC_HZ     2000000000ull
#define BT_SAVE_MAGIC         0x31435442u   /* "BTC1" */
#define BT_SAVE_VERSION       1u

/* A vCPU: the architectural state plus what the HLT sleep needs. */
struct bt_vcpu {
	struct bt_cpu cpu;           /* first: struct bt_cpu * <-> struct bt_vcpu * */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool wake;
	uint64_t exits[VMM_EXIT__COUNT];
	uint64_t halts;
};

static struct bt_vcpu *bt_vcpu_of(struct bt_cpu *cpu)
{
	return (struct bt_vcpu *)(void *)cpu;
}

/* ---- misc ---- */

uint64_t bt_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void bt_log(const char *fmt, ...)
{
	va_list ap;
	char buf[512];

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	vlog_info("bt: %s", buf);
}

static pthread_once_t bt_init_once = PTHREAD_ONCE_INIT;

static void bt_init_tables(void)
{
	bt_alu_init();
	bt_sys_init();
	bt_x87_init();
	bt_sse_init();
}

/* ---- VM ---- */

static bool bt_probe(char *why, size_t whylen)
{
	snprintf(why, whylen, "software engine");
	return true;
}

static struct vmm_vm *bt_vm_create(const struct vmm_vm_config *cfg, char *err, size_t errlen)
{
	struct bt_vm *vm;

	if (cfg->ncpus == 0 || cfg->ncpus > 64) {
		snprintf(err, errlen, "bt: %u vCPUs requested (1..64 supported)", cfg->ncpus);
		return NULL;
	}
	pthread_once(&bt_init_once, bt_init_tables);
	vm = calloc(1, sizeof(*vm));
	if (!vm) {
		snprintf(err, errlen, "bt: out of memory");
		return NULL;
	}
	vm->cfg = *cfg;
	if (!vm->cfg.tsc_hz)
		vm->cfg.tsc_hz = BT_DEFAULT_TSC_HZ;
	if (!vm->cfg.apic_bus_hz)
		vm->cfg.apic_bus_hz = VMM_APIC_BUS_HZ_HV;
	vm->boot_ns = bt_now_ns();
	pthread_mutex_init(&vm->dlog_lock, NULL);
	vm->tc = bt_tc_new(vm);
	if (!vm->tc) {
		free(vm);
		snprintf(err, errlen, "bt: out of memory for the translation cache");
		return NULL;
	}
	if (cfg->trace) {
		const char *path = cfg->trace_path ? cfg->trace_path : "bt-trace.log";
		vm->trace = fopen(path, "w");
		if (!vm->trace)
			vlog_warn("bt: cannot open trace file %s: %s", path, strerror(errno));
	}
	return (struct vmm_vm *)(void *)vm;
}

static void bt_vm_destroy(struct vmm_vm *v)
{
	struct bt_vm *vm = (struct bt_vm *)(void *)v;
	if (!vm)
		return;
	bt_tc_free(vm->tc);
	if (vm->trace)
		fclose(vm->trace);
	free(vm->code_bitmap);
	bt_dirty_free(vm);
	free(vm);
}

static int bt_vm_set_memory(struct vmm_vm *v, unsigned slot, const struct vmm_mem_region *r)
{
	struct bt_vm *vm = (struct bt_vm *)(void *)v;

	if (slot >= BT_MAX_REGIONS || (r->size & 0xfff) || (r->gpa & 0xfff)) {
		errno = EINVAL;
		return -1;
	}
	vm->regions[slot].gpa = r->gpa;
	vm->regions[slot].size = r->size;
	vm->regions[slot].hva = r->hva;
	vm->regions[slot].flags = r->flags;
	if (slot >= vm->nregions)
		vm->nregions = slot + 1;

	uint64_t top = 0;
	for (unsigned i = 0; i < vm->nregions; i++)
		if (vm->regions[i].size && vm->regions[i].gpa + vm->regions[i].size > top)
			top = vm->regions[i].gpa + vm->regions[i].size;
	uint64_t pages = top >> 12;
	if (pages > vm->code_bitmap_pages) {
		uint8_t *nb = calloc(1, (pages + 7) / 8);
		if (!nb) {
			errno = ENOMEM;
			return -1;
		}
		if (vm->code_bitmap)
			memcpy(nb, vm->code_bitmap, (vm->code_bitmap_pages + 7) / 8);
		free(vm->code_bitmap);
		vm->code_bitmap = nb;
		vm->code_bitmap_pages = pages;
	}
	if (bt_dirty_set_region(vm, slot, r->size && (r->flags & VMM_MEM_LOG_DIRTY)) != 0) {
		errno = ENOMEM;
		return -1;
	}
	/* A region that changed under translated code: start over. */
	bt_tc_flush(vm);
	/* TLB entries cache host pointers of the old mapping (PAM switches at run
	 * time come from the vCPU's own thread; bt runs one vCPU). */
	for (unsigned i = 0; i < vm->ncpus; i++)
		if (vm->cpus[i])
			bt_tlb_flush(vm->cpus[i], true);
	return 0;
}

static void bt_vm_mem_written(struct vmm_vm *v, uint64_t gpa, uint64_t len)
{
	struct bt_vm *vm = (struct bt_vm *)(void *)v;
	if (!len)
		return;
	uint64_t last = gpa + len - 1;
	if (last < gpa)
		last = ~0ull;
	for (uint64_t p = gpa & ~0xfffull; p <= last && (p >> 12) < vm->code_bitmap_pages; p += 4096) {
		if (bt_page_is_code(vm, p))
			bt_tc_invalidate_page(vm, p);
		if (p + 4096 < p)
			break;
	}
}

static int bt_vm_get_dirty(struct vmm_vm *v, unsigned slot, uint64_t *bitmap, size_t words)
{
	return bt_dirty_get((struct bt_vm *)(void *)v, slot, bitmap, words);
}

static uint64_t bt_vm_tsc_hz(struct vmm_vm *v)
{
	return ((struct bt_vm *)(void *)v)->cfg.tsc_hz;
}

static bool bt_apic_match(const struct bt_cpu *cpu, uint8_t dest, bool logical)
{
	if (!logical)
		return dest == 0xff || dest == cpu->id;
	if (dest == 0xff)
		return true;
	uint8_t ldr = (uint8_t)(cpu->lapic.ldr >> 24);
	if ((cpu->lapic.dfr >> 28) == 0xf)        /* flat model */
		return (ldr & dest) != 0;
	/* cluster model: high nibble = cluster, low nibble = members */
	return (ldr >> 4) == (dest >> 4) && (ldr & dest & 0xf) != 0;
}

static int bt_vm_msi(struct vmm_vm *v, uint64_t addr, uint32_t data)
{
	struct bt_vm *vm = (struct bt_vm *)(void *)v;
	uint8_t dest = (uint8_t)(addr >> 12);
	bool logical = (addr >> 2) & 1;
	uint8_t vector = (uint8_t)data;
	unsigned mode = (data >> 8) & 7;
	bool level = (data >> 15) & 1;

	if ((addr & 0xfff00000ull) != 0xfee00000ull) {
		vlog_guest("bt: MSI to bad address %#llx", (unsigned long long)addr);
		return -1;
	}
	for (unsigned i = 0; i < vm->ncpus; i++) {
		struct bt_cpu *cpu = vm->cpus[i];
		if (!cpu || !bt_apic_match(cpu, dest, logical))
			continue;
		switch (mode) {
		case 0:                        /* fixed */
		case 1:                        /* lowest priority: the first match */
			bt_lapic_post(cpu, vector, level);
			if (mode == 1)
				return 0;
			break;
		case 4:                        /* NMI */
			cpu->nmi_pending = true;
			bt_vcpu_wake(cpu);
			break;
		default:
			vlog_guest("bt: MSI delivery mode %u not supported", mode);
			break;
		}
	}
	return 0;
}

/* ---- vCPU ---- */

void bt_vcpu_wake(struct bt_cpu *cpu)
{
	struct bt_vcpu *vc = bt_vcpu_of(cpu);
	pthread_mutex_lock(&vc->lock);
	vc->wake = true;
	pthread_cond_signal(&vc->cond);
	pthread_mutex_unlock(&vc->lock);
}

static void bt_seg_set(struct bt_seg *s, uint16_t sel, uint64_t base, uint32_t limit, uint32_t attr)
{
	s->sel = sel;
	s->base = base;
	s->limit = limit;
	s->attr = attr;
}

static void bt_cpu_reset(struct bt_cpu *cpu)
{
	struct bt_vm *vm = cpu->vm;
	unsigned id = cpu->id;
	uint32_t sig[4] = { 0, 0, 0, 0 };

	memset(&cpu->gpr, 0, sizeof(cpu->gpr));
	cpu->rip = 0xfff0;
	cpu->rflags = 2;
	cpu->lazy.op = BT_CC_NONE;
	/* Real mode: data segments read/write accessed, CS execute/read accessed. */
	for (int i = 0; i < BT_NSEG; i++)
		bt_seg_set(&cpu->seg[i], 0, 0, 0xffff, 0x3 | BT_SEG_S | BT_SEG_P);
	bt_seg_set(&cpu->seg[BT_CS], 0xf000, 0xffff0000ull, 0xffff, 0xb | BT_SEG_S | BT_SEG_P);
	bt_seg_set(&cpu->ldtr, 0, 0, 0xffff, 0x2 | BT_SEG_P);
	bt_seg_set(&cpu->tr, 0, 0, 0xffff, 0xb | BT_SEG_P);
	cpu->gdtr.base = cpu->idtr.base = 0;
	cpu->gdtr.limit = cpu->idtr.limit = 0xffff;
	cpu->cr0 = 0x60000010ull;
	cpu->cr2 = cpu->cr3 = cpu->cr4 = cpu->cr8 = 0;
	memset(cpu->dr, 0, sizeof(cpu->dr));
	cpu->dr[6] = 0xffff0ff0ull;
	cpu->dr[7] = 0x400;
	cpu->efer = 0;
	cpu->cpl = 0;
	cpu->star = cpu->lstar = cpu->cstar = cpu->sfmask = cpu->kernel_gs_base = 0;
	cpu->sysenter_cs = cpu->sysenter_esp = cpu->sysenter_eip = 0;
	cpu->pat = 0x0007040600070406ull;
	cpu->misc_enable = 1 | 1u << 11 | 1u << 12;   /* fast strings; no BTS, no PEBS */
	cpu->mtrr_def_type = 0;
	memset(cpu->mtrr_fixed, 0, sizeof(cpu->mtrr_fixed));
	memset(cpu->mtrr_var, 0, sizeof(cpu->mtrr_var));
	cpu->halted = false;
	cpu->irq_shadow = false;
	cpu->nmi_pending = false;
	cpu->exc_depth = 0;
	cpu->end_block = false;
	cpu->vm = vm;
	cpu->id = id;
	bt_tlb_flush(cpu, true);
	bt_lapic_reset(cpu);
	bt_fpu_reset(cpu);
	bt_cpuid(cpu, 1, 0, sig);
	cpu->gpr[BT_RDX] = sig[0];
}

static struct vmm_vcpu *bt_vcpu_create(struct vmm_vm *v, unsigned id, char *err, size_t errlen)
{
	struct bt_vm *vm = (struct bt_vm *)(void *)v;
	struct bt_vcpu *vc;

	if (id >= 64 || vm->cpus[id]) {
		snprintf(err, errlen, "bt: bad vCPU id %u", id);
		return NULL;
	}
	if (posix_memalign((void **)&vc, 64, sizeof(*vc))) {
		snprintf(err, errlen, "bt: out of memory");
		return NULL;
	}
	memset(vc, 0, sizeof(*vc));
	pthread_mutex_init(&vc->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&vc->cond, &ca);
	pthread_condattr_destroy(&ca);
	vc->cpu.vm = vm;
	vc->cpu.id = id;
	bt_cpu_reset(&vc->cpu);
	vm->cpus[id] = &vc->cpu;
	if (id + 1 > vm->ncpus)
		vm->ncpus = id + 1;
	return (struct vmm_vcpu *)(void *)vc;
}

static void bt_vcpu_destroy(struct vmm_vcpu *v)
{
	struct bt_vcpu *vc = (struct bt_vcpu *)(void *)v;
	if (!vc)
		return;
	if (vc->cpu.vm && vc->cpu.id < 64 && vc->cpu.vm->cpus[vc->cpu.id] == &vc->cpu)
		vc->cpu.vm->cpus[vc->cpu.id] = NULL;
	pthread_cond_destroy(&vc->cond);
	pthread_mutex_destroy(&vc->lock);
	free(vc);
}

static void bt_vcpu_kick(struct vmm_vcpu *v)
{
	struct bt_vcpu *vc = (struct bt_vcpu *)(void *)v;
	atomic_store(&vc->cpu.kick, true);
	bt_vcpu_wake(&vc->cpu);
}

/* Sleep in HLT until the LAPIC deadline, a posted interrupt or a kick. */
static void bt_halt_sleep(struct bt_vcpu *vc, uint64_t deadline_ns)
{
	struct bt_cpu *cpu = &vc->cpu;

	pthread_mutex_lock(&vc->lock);
	while (!vc->wake && !atomic_load(&cpu->kick) && !atomic_load(&cpu->lapic.pending_ext)) {
		if (deadline_ns) {
			struct timespec ts = { (time_t)(deadline_ns / 1000000000ull),
			                       (long)(deadline_ns % 1000000000ull) };
			if (pthread_cond_timedwait(&vc->cond, &vc->lock, &ts) == ETIMEDOUT)
				break;
		} else {
			/* The PIC line is polled: a device thread's kick wakes us, but
			 * bound the sleep anyway in case a line rose without one. */
			uint64_t t = bt_now_ns() + 10000000ull;
			struct timespec ts = { (time_t)(t / 1000000000ull), (long)(t % 1000000000ull) };
			if (pthread_cond_timedwait(&vc->cond, &vc->lock, &ts) == ETIMEDOUT)
				break;
		}
	}
	vc->wake = false;
	pthread_mutex_unlock(&vc->lock);
}

/* Delivery may fault (bad IDT...): bt_raise lands here, already delivered. */
static bool bt_try_interrupts(struct bt_cpu *cpu)
{
	if (setjmp(cpu->fault_jmp))
		return true;
	return bt_check_interrupts(cpu);
}

static int bt_vcpu_run(struct vmm_vcpu *v, struct vmm_exit *exit)
{
	struct bt_vcpu *vc = (struct bt_vcpu *)(void *)v;
	struct bt_cpu *cpu = &vc->cpu;

	memset(exit, 0, offsetof(struct vmm_exit, msg) + 1);
	exit->reason = VMM_EXIT_NONE;
	cpu->exit = exit;
	cpu->exit_requested = false;

	for (;;) {
		if (atomic_exchange(&cpu->kick, false)) {
			exit->reason = VMM_EXIT_KICKED;
			break;
		}
		uint64_t next = bt_lapic_poll_timer(cpu, bt_now_ns());
		if (!cpu->irq_shadow && bt_try_interrupts(cpu))
			cpu->halted = false;
		if (cpu->exit_requested)
			break;
		if (atomic_load_explicit(&cpu->vm->dlog_rearm, memory_order_relaxed))
			bt_dirty_rearm(cpu);
		if (cpu->halted) {
			if (!(cpu->rflags & BT_IF) && !cpu->nmi_pending) {
				exit->reason = VMM_EXIT_HLT;
				break;
			}
			vc->halts++;
			bt_halt_sleep(vc, next);
			continue;
		}
		bt_tc_run(cpu);
		if (cpu->exit_requested)
			break;
	}
	cpu->exit_requested = false;
	if (exit->reason == VMM_EXIT_NONE)
		exit->reason = VMM_EXIT_INTERNAL;
	if ((unsigned)exit->reason < VMM_EXIT__COUNT)
		vc->exits[exit->reason]++;
	return 0;
}

/* ---- registers ---- */

static int bt_get_regs(struct vmm_vcpu *v, struct vmm_regs *r)
{
	struct bt_cpu *cpu = &((struct bt_vcpu *)(void *)v)->cpu;
	const uint64_t *g = cpu->gpr;

	r->rax = g[BT_RAX]; r->rbx = g[BT_RBX]; r->rcx = g[BT_RCX]; r->rdx = g[BT_RDX];
	r->rsi = g[BT_RSI]; r->rdi = g[BT_RDI]; r->rsp = g[BT_RSP]; r->rbp = g[BT_RBP];
	r->r8 = g[8]; r->r9 = g[9]; r->r10 = g[10]; r->r11 = g[11];
	r->r12 = g[12]; r->r13 = g[13]; r->r14 = g[14]; r->r15 = g[15];
	r->rip = cpu->rip;
	r->rflags = bt_get_rflags(cpu);
	return 0;
}

static int bt_set_regs(struct vmm_vcpu *v, const struct vmm_regs *r)
{
	struct bt_cpu *cpu = &((struct bt_vcpu *)(void *)v)->cpu;
	uint64_t *g = cpu->gpr;

	g[BT_RAX] = r->rax; g[BT_RBX] = r->rbx; g[BT_RCX] = r->rcx; g[BT_RDX] = r->rdx;
	g[BT_RSI] = r->rsi; g[BT_RDI] = r->rdi; g[BT_RSP] = r->rsp; g[BT_RBP] = r->rbp;
	g[8] = r->r8; g[9] = r->r9; g[10] = r->r10; g[11] = r->r11;
	g[12] = r->r12; g[13] = r->r13; g[14] = r->r14; g[15] = r->r15;
	cpu->rip = r->rip;
	bt_set_rflags(cpu, r->rflags);
	return 0;
}

static void bt_seg_to_vmm(const struct bt_seg *s, struct vmm_segment *o)
{
	o->base = s->base;
	o->limit = s->limit;
	o->selector = s->sel;
	o->type = s->attr & 0xf;
	o->s = (s->attr & BT_SEG_S) != 0;
	o->dpl = (uint8_t)BT_SEG_DPL(s->attr);
	o->present = (s->attr & BT_SEG_P) != 0;
	o->avl = (s->attr >> 12) & 1;
	o->l = (s->attr & BT_SEG_L) != 0;
	o->db = (s->attr & BT_SEG_DB) != 0;
	o->g = (s->attr & BT_SEG_G) != 0;
	o->unusable = (s->attr & BT_SEG_UNUSABLE) != 0;
}

static void bt_seg_from_vmm(struct bt_seg *s, const struct vmm_segment *o)
{
	s->base = o->base;
	s->limit = o->limit;
	s->sel = o->selector;
	s->attr = (uint32_t)(o->type & 0xf) | (o->s ? BT_SEG_S : 0) | ((uint32_t)(o->dpl & 3) << 5) |
	          (o->present ? BT_SEG_P : 0) | (o->avl ? 1u << 12 : 0) | (o->l ? BT_SEG_L : 0) |
	          (o->db ? BT_SEG_DB : 0) | (o->g ? BT_SEG_G : 0) | (o->unusable ? BT_SEG_UNUSABLE : 0);
}

static int bt_get_sregs(struct vmm_vcpu *v, struct vmm_sregs *s)
{
	struct bt_cpu *cpu = &((struct bt_vcpu *)(void *)v)->cpu;

	bt_seg_to_vmm(&cpu->seg[BT_CS], &s->cs);
	bt_seg_to_vmm(&cpu->seg[BT_DS], &s->ds);
	bt_seg_to_vmm(&cpu->seg[BT_ES], &s->es);
	bt_seg_to_vmm(&cpu->seg[BT_FS], &s->fs);
	bt_seg_to_vmm(&cpu->seg[BT_GS], &s->gs);
	bt_seg_to_vmm(&cpu->seg[BT_SS], &s->ss);
	bt_seg_to_vmm(&cpu->tr, &s->tr);
	bt_seg_to_vmm(&cpu->ldtr, &s->ldt);
	s->gdt.base = cpu->gdtr.base;
	s->gdt.limit = cpu->gdtr.limit;
	s->idt.base = cpu->idtr.base;
	s->idt.limit = cpu->idtr.limit;
	s->cr0 = cpu->cr0;
	s->cr2 = cpu->cr2;
	s->cr3 = cpu->cr3;
	s->cr4 = cpu->cr4;
	s->cr8 = (cpu->lapic.tpr >> 4) & 0xf;
	s->efer = cpu->efer;
	s->apic_base = cpu->lapic.base_msr;
	return 0;
}

static int bt_set_sregs(struct vmm_vcpu *v, const struct vmm_sregs *s)
{
	struct bt_cpu *cpu = &((struct bt_vcpu *)(void *)v)->cpu;

	bt_seg_from_vmm(&cpu->seg[BT_CS], &s->cs);
	bt_seg_from_vmm(&cpu->seg[BT_DS], &s->ds);
	bt_seg_from_vmm(&cpu->seg[BT_ES], &s->es);
	bt_seg_from_vmm(&cpu->seg[BT_FS], &s->fs);
	bt_seg_from_vmm(&cpu->seg[BT_GS], &s->gs);
	bt_seg_from_vmm(&cpu->seg[BT_SS], &s->ss);
	bt_seg_from_vmm(&cpu->tr, &s->tr);
	bt_seg_from_vmm(&cpu->ldtr, &s->ldt);
	cpu->gdtr.base = s->gdt.base;
	cpu->gdtr.limit = s->gdt.limit;
	cpu->idtr.base = s->idt.base;
	cpu->idtr.limit = s->idt.limit;
	cpu->cr0 = s->cr0;
	cpu->cr2 = s->cr2;
	cpu->cr3 = s->cr3;
	cpu->cr4 = s->cr4;
	cpu->cr8 = s->cr8 & 0xf;
	cpu->lapic.tpr = (uint32_t)(s->cr8 & 0xf) << 4;
	cpu->efer = s->efer;
	if (s->apic_base)
		cpu->lapic.base_msr = s->apic_base;
	bt_update_cpl(cpu);
	bt_tlb_flush(cpu, true);
	return 0;
}

static int bt_get_fpu(struct vmm_vcpu *v, struct vmm_fpu *f)
{
	bt_fxsave(&((struct bt_vcpu *)(void *)v)->cpu, f->fxsave);
	return 0;
}

static int bt_set_fpu(struct vmm_vcpu *v, const struct vmm_fpu *f)
{
	struct bt_cpu *cpu = &((struct bt_vcpu *)(void *)v)->cpu;
	/* bt_fxrstor may raise #GP on a bad MXCSR: catch it here. */
	if (setjmp(cpu->fault_jmp)) {
		errno = EINVAL;
		return -1;
	}
	bt_fxrstor(cpu, f->fxsave);
	return 0;
}

static int bt_get_msr(struct vmm_vcpu *v, uint32_t index, uint64_t *value)
{
	if (!bt_rdmsr(&((struct bt_vcpu *)(void *)v)->cpu, index, value)) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

static int bt_set_msr(struct vmm_vcpu *v, uint32_t index, uint64_t value)
{
	if (!bt_wrmsr(&((struct bt_vcpu *)(void *)v)->cpu, index, value)) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

static int bt_vcpu_reset(struct vmm_vcpu *v)
{
	bt_cpu_reset(&((struct bt_vcpu *)(void *)v)->cpu);
	return 0;
}

/* ---- save / restore: struct bt_cpu minus host pointers and host state ---- */

struct bt_save_hdr {
	uint32_t magic, version;
	uint32_t size;               /* sizeof(struct bt_cpu) of the writer */
	uint32_t reserved;
};

static long bt_vcpu_save(struct vmm_vcpu *v, void *buf, size_t len)
{
	struct bt_cpu *cpu = &((struct bt_vcpu *)(void *)v)->cpu;
	struct bt_save_hdr h = { BT_SAVE_MAGIC, BT_SAVE_VERSION, (uint32_t)sizeof(struct bt_cpu), 0 };
	size_t need = sizeof(h) + sizeof(struct bt_cpu);

	if (len < need) {
		errno = ENOSPC;
		return -1;
	}
	bt_get_rflags(cpu);          /* no lazy state in the image */
	memcpy(buf, &h, sizeof(h));
	struct bt_cpu *img = (struct bt_cpu *)(void *)((uint8_t *)buf + sizeof(h));
	memcpy(img, cpu, sizeof(*cpu));
	memset(&img->fault_jmp, 0, sizeof(img->fault_jmp));
	memset(img->tlb, 0, sizeof(img->tlb));
	img->vm = NULL;
	img->exit = NULL;
	atomic_store(&img->kick, false);
	return (long)need;
}

static int bt_vcpu_restore(struct vmm_vcpu *v, const void *buf, size_t len)
{
	struct bt_cpu *cpu = &((struct bt_vcpu *)(void *)v)->cpu;
	struct bt_save_hdr h;

	if (len < sizeof(h) + sizeof(struct bt_cpu)) {
		errno = EINVAL;
		return -1;
	}
	memcpy(&h, buf, sizeof(h));
	if (h.magic != BT_SAVE_MAGIC || h.version != BT_SAVE_VERSION || h.size != sizeof(struct bt_cpu)) {
		errno = EINVAL;
		return -1;
	}
	struct bt_vm *vm = cpu->vm;
	unsigned id = cpu->id;
	memcpy(cpu, (const uint8_t *)buf + sizeof(h), sizeof(*cpu));
	cpu->vm = vm;
	cpu->id = id;
	cpu->exit = NULL;
	cpu->exit_requested = false;
	atomic_store(&cpu->kick, false);
	bt_tlb_flush(cpu, true);
	bt_tc_flush(vm);
	return 0;
}

/* ---- statistics ---- */

static void bt_vm_stats(struct vmm_vm *v, void (*emit)(void *ctx, const char *name, uint64_t count, uint64_t ns),
                        void *ctx)
{
	struct bt_vm *vm = (struct bt_vm *)(void *)v;
	const struct bt_tc_stats *st = bt_tc_stats(vm->tc);
	uint64_t insns = 0, halts = 0, exits[VMM_EXIT__COUNT] = { 0 };

	for (unsigned i = 0; i < vm->ncpus; i++) {
		if (!vm->cpus[i])
			continue;
		struct bt_vcpu *vc = bt_vcpu_of(vm->cpus[i]);
		insns += vm->cpus[i]->icount;
		halts += vc->halts;
		for (unsigned e = 0; e < VMM_EXIT__COUNT; e++)
			exits[e] += vc->exits[e];
	}
	emit(ctx, "bt.instructions", insns, 0);
	emit(ctx, "bt.units_translated", st->blocks, 0);
	emit(ctx, "bt.insns_translated", st->insns, 0);
	emit(ctx, "bt.tc_flushes", st->flushes, 0);
	emit(ctx, "bt.units_invalidated", st->invalidated, 0);
	emit(ctx, "bt.halt_sleeps", halts, 0);
	for (unsigned e = 1; e < VMM_EXIT__COUNT; e++) {
		if (exits[e]) {
			char name[64];
			snprintf(name, sizeof(name), "bt.exit.%s", vmm_exit_reason_name((enum vmm_exit_reason)e));
			emit(ctx, name, exits[e], 0);
		}
	}
}

const struct vmm_engine vmm_engine_bt = {
	.name = "bt",
	.probe = bt_probe,
	.vm_create = bt_vm_create,
	.vm_destroy = bt_vm_destroy,
	.vm_set_memory = bt_vm_set_memory,
	.vm_tsc_hz = bt_vm_tsc_hz,
	.vm_msi = bt_vm_msi,
	.vcpu_create = bt_vcpu_create,
	.vcpu_destroy = bt_vcpu_destroy,
	.vcpu_run = bt_vcpu_run,
	.vcpu_kick = bt_vcpu_kick,
	.get_regs = bt_get_regs,
	.set_regs = bt_set_regs,
	.get_sregs = bt_get_sregs,
	.set_sregs = bt_set_sregs,
	.get_fpu = bt_get_fpu,
	.set_fpu = bt_set_fpu,
	.get_msr = bt_get_msr,
	.set_msr = bt_set_msr,
	.vcpu_reset = bt_vcpu_reset,
	.vcpu_save = bt_vcpu_save,
	.vcpu_restore = bt_vcpu_restore,
	.vm_stats = bt_vm_stats,
	.vm_mem_written = bt_vm_mem_written,
	.vm_get_dirty = bt_vm_get_dirty,
};

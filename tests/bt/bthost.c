/*
 * bthost.c — the bt test host (a VM in 64-bit mode through vmm_engine_bt)
 * and the native runner for differential tests.  See bthost.h.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bthost.h"
#include "vmm/bt/bt.h"

uint64_t bth_rand(uint64_t *s)
{
	uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ull;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

/* ---- the engine side ---- */

static bool bth_pic_pending(void *o) { (void)o; return false; }
static int bth_pic_ack(void *o) { (void)o; return -1; }
static void bth_eoi(void *o, uint8_t v) { (void)o; (void)v; }

static void bth_pio(void *o, unsigned vcpu_id, uint16_t port, unsigned size, bool write, uint32_t count,
                    uint8_t *data)
{
	struct bthost *h = o;
	(void)vcpu_id;
	(void)count;
	if (!write) {
		memset(data, 0xff, size * (count ? count : 1));
		return;
	}
	if (port == BTH_PORT_DONE) {
		h->done = true;
		vmm_engine_bt.vcpu_kick(h->vcpu);
	} else if (port == BTH_PORT_EXC) {
		h->exc_vector = data[0];
		vmm_engine_bt.vcpu_kick(h->vcpu);
	} else {
		uint64_t v = 0;
		memcpy(&v, data, size > 8 ? 8 : size);
		if (h->nport_log < 16)
			h->port_log[h->nport_log++] = ((uint64_t)port << 48) | v;
		if (h->on_out)
			h->on_out(h, port, v);
	}
}

static void bth_mmio(void *o, unsigned vcpu_id, uint64_t gpa, unsigned size, bool write, uint8_t *data)
{
	(void)o;
	(void)vcpu_id;
	(void)gpa;
	if (!write)
		memset(data, 0xff, size);
}

static void bth_shutdown(void *o, unsigned vcpu_id, const char *why)
{
	struct bthost *h = o;
	if (h->quiet)
		return;
	fprintf(stderr, "bthost: vcpu %u shutdown: %s\n", vcpu_id, why);
}

static const struct vmm_host_ops bth_ops = {
	.pic_pending = bth_pic_pending,
	.pic_ack = bth_pic_ack,
	.eoi = bth_eoi,
	.pio = bth_pio,
	.mmio = bth_mmio,
	.shutdown = bth_shutdown,
};

static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

static void bth_seg(struct vmm_segment *s, uint16_t sel, uint8_t type, uint8_t dpl, bool code64)
{
	memset(s, 0, sizeof(*s));
	s->selector = sel;
	s->base = 0;
	s->limit = 0xffffffff;
	s->type = type;
	s->present = 1;
	s->dpl = dpl;
	s->s = 1;
	s->l = code64;
	s->db = !code64;
	s->g = 1;
}

/* Watchdog: a guest that never reaches the marker gets kicked. */
static struct {
	pthread_once_t once;
	atomic_uint gen;
	atomic_bool active;
	struct vmm_vcpu *_Atomic vcpu;
	atomic_uint limit_ms;
} bth_wd = { PTHREAD_ONCE_INIT, 0, false, NULL, 3000 };

void bthost_set_timeout_ms(unsigned ms)
{
	atomic_store(&bth_wd.limit_ms, ms ? ms : 1);
}

static void *bth_wd_thread(void *arg)
{
	(void)arg;
	unsigned seen = ~0u, ticks = 0;
	for (;;) {
		struct timespec ts = { 0, 5 * 1000 * 1000 };
		nanosleep(&ts, NULL);
		unsigned g = atomic_load(&bth_wd.gen);
		if (!atomic_load(&bth_wd.active) || g != seen) {
			seen = g;
			ticks = 0;
			continue;
		}
		if (++ticks * 5 >= atomic_load(&bth_wd.limit_ms)) {
			struct vmm_vcpu *v = atomic_load(&bth_wd.vcpu);
			if (v)
				vmm_engine_bt.vcpu_kick(v);
			ticks = 0;
		}
	}
	return NULL;
}

static void bth_wd_start(void)
{
	pthread_t t;
	if (pthread_create(&t, NULL, bth_wd_thread, NULL) == 0)
		pthread_detach(t);
}

int bthost_init(struct bthost *h, unsigned cpl)
{
	char err[256];
	struct vmm_vm_config cfg = { .ncpus = 1, .tsc_hz = 2000000000ull, .apic_bus_hz = 1000000000ull,
	                             .host = &bth_ops, .host_opaque = h };
	const char *tp = getenv("VIREO_BT_TRACE");

	memset(h, 0, sizeof(*h));
	if (tp) {
		cfg.trace = true;
		cfg.trace_path = tp;
	}
	h->exc_vector = -1;
	h->ram = mmap(NULL, BTH_RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (h->ram == MAP_FAILED)
		return -1;
	h->vm = vmm_engine_bt.vm_create(&cfg, err, sizeof(err));
	if (!h->vm) {
		fprintf(stderr, "bthost: vm_create: %s\n", err);
		return -1;
	}
	struct vmm_mem_region r = { 0, BTH_RAM_SIZE, h->ram, 0 };
	if (vmm_engine_bt.vm_set_memory(h->vm, 0, &r)) {
		fprintf(stderr, "bthost: vm_set_memory failed\n");
		return -1;
	}
	h->vcpu = vmm_engine_bt.vcpu_create(h->vm, 0, err, sizeof(err));
	if (!h->vcpu) {
		fprintf(stderr, "bthost: vcpu_create: %s\n", err);
		return -1;
	}
	if (bthost_reset(h, cpl))
		return -1;
	pthread_once(&bth_wd.once, bth_wd_start);
	return 0;
}

int bthost_reset(struct bthost *h, unsigned cpl)
{
	vmm_engine_bt.vcpu_reset(h->vcpu);
	memset(h->ram, 0, BTH_CODE);
	vmm_engine_bt.vm_mem_written(h->vm, 0, BTH_CODE);

	/* Page tables: identity map of the first 16 MiB, user, 2 MiB pages. */
	uint8_t *pml4 = h->ram + BTH_PT, *pdpt = pml4 + 0x1000, *pd = pml4 + 0x2000;
	put64(pml4, (BTH_PT + 0x1000) | 7);
	put64(pdpt, (BTH_PT + 0x2000) | 7);
	for (unsigned i = 0; i < BTH_RAM_SIZE >> 21; i++)
		put64(pd + 8 * i, ((uint64_t)i << 21) | 0x87);

	/* GDT: null, kcode64 0x08, kdata 0x10, udata 0x18, ucode64 0x20, TSS 0x28. */
	uint8_t *gdt = h->ram + BTH_GDT;
	put64(gdt + 0x08, 0x00af9a000000ffffull);
	put64(gdt + 0x10, 0x00cf92000000ffffull);
	put64(gdt + 0x18, 0x00cff2000000ffffull);
	put64(gdt + 0x20, 0x00affa000000ffffull);
	uint64_t tb = BTH_TSS;
	put64(gdt + 0x28, 0x67 | ((tb & 0xffffff) << 16) | (0x89ull << 40) | (((tb >> 24) & 0xff) << 56));
	put64(gdt + 0x30, tb >> 32);
	put64(h->ram + BTH_TSS + 4, BTH_KSTACK);      /* RSP0 */

	/* IDT: every vector to a stub that reports it on port 0xE1. */
	for (unsigned v = 0; v < 256; v++) {
		uint64_t off = BTH_STUBS + v * 8;
		uint8_t *stub = h->ram + off;
		stub[0] = 0xb0; stub[1] = (uint8_t)v;       /* mov al, v */
		stub[2] = 0xe6; stub[3] = BTH_PORT_EXC;      /* out 0xE1, al */
		stub[4] = 0xf4;                              /* hlt */
		stub[5] = 0xeb; stub[6] = 0xfd;              /* jmp hlt */
		uint8_t *g = h->ram + BTH_IDT + v * 16;
		uint8_t attr = (v == 3 || v == 4) ? 0xee : 0x8e;
		uint64_t lo = (off & 0xffff) | (0x08ull << 16) | ((uint64_t)attr << 40) |
		              (((off >> 16) & 0xffff) << 48);
		put64(g, lo);
		put64(g + 8, off >> 32);
	}

	struct vmm_sregs s;
	memset(&s, 0, sizeof(s));
	if (cpl == 3) {
		bth_seg(&s.cs, 0x23, 0xb, 3, true);
		bth_seg(&s.ss, 0x1b, 0x3, 3, false);
		bth_seg(&s.ds, 0x1b, 0x3, 3, false);
	} else {
		bth_seg(&s.cs, 0x08, 0xb, 0, true);
		bth_seg(&s.ss, 0x10, 0x3, 0, false);
		bth_seg(&s.ds, 0x10, 0x3, 0, false);
	}
	s.es = s.fs = s.gs = s.ds;
	memset(&s.tr, 0, sizeof(s.tr));
	s.tr.selector = 0x28;
	s.tr.base = BTH_TSS;
	s.tr.limit = 0x67;
	s.tr.type = 0xb;
	s.tr.present = 1;
	s.ldt.unusable = 1;
	s.ldt.type = 2;
	s.gdt.base = BTH_GDT;
	s.gdt.limit = 0x37;
	s.idt.base = BTH_IDT;
	s.idt.limit = 0xfff;
	s.cr0 = 0x80050033ull;
	s.cr3 = BTH_PT;
	s.cr4 = 0x620;
	s.efer = 0xd01;
	s.apic_base = 0xfee00900ull;
	h->sregs = s;
	if (vmm_engine_bt.set_sregs(h->vcpu, &s))
		return -1;
	return 0;
}

void bthost_fini(struct bthost *h)
{
	if (h->vcpu)
		vmm_engine_bt.vcpu_destroy(h->vcpu);
	if (h->vm)
		vmm_engine_bt.vm_destroy(h->vm);
	if (h->ram && h->ram != MAP_FAILED)
		munmap(h->ram, BTH_RAM_SIZE);
	memset(h, 0, sizeof(*h));
}

void bthost_load(struct bthost *h, const uint8_t *code, size_t len)
{
	static const uint8_t tail[] = { 0xe6, BTH_PORT_DONE, 0xeb, 0xfe };
	if (len > BTH_CODE_SIZE - sizeof(tail))
		len = BTH_CODE_SIZE - sizeof(tail);
	memcpy(h->ram + BTH_CODE, code, len);
	memcpy(h->ram + BTH_CODE + len, tail, sizeof(tail));
	/* The harness writes RAM behind the engine's back, like a DMA. */
	vmm_engine_bt.vm_mem_written(h->vm, BTH_CODE, len + sizeof(tail));
}

int bthost_run(struct bthost *h, const struct bth_state *in, struct bth_state *out)
{
	struct vmm_regs r = in->r;
	struct vmm_exit ex;
	struct vmm_fpu f;

	r.rip = BTH_CODE;
	/* An exception in an earlier run left the CPU in the handler at CPL 0. */
	vmm_engine_bt.set_sregs(h->vcpu, &h->sregs);
	/* IOPL 3 lets CPL 3 reach the marker port. */
	r.rflags = (in->r.rflags & (BT_ARITH_FLAGS | BT_DF)) | 0x3002;
	vmm_engine_bt.set_regs(h->vcpu, &r);
	memcpy(f.fxsave, in->fx, 512);
	vmm_engine_bt.set_fpu(h->vcpu, &f);
	memcpy(h->ram + BTH_DATA, in->data, BTH_DATA_SIZE);
	memcpy(h->ram + BTH_STACK - BTH_STACK_SIZE, in->stack, BTH_STACK_SIZE);
	vmm_engine_bt.vm_mem_written(h->vm, BTH_DATA, BTH_DATA_SIZE);
	vmm_engine_bt.vm_mem_written(h->vm, BTH_STACK - BTH_STACK_SIZE, BTH_STACK_SIZE);
	h->done = false;
	h->exc_vector = -1;
	h->nport_log = 0;

	atomic_store(&bth_wd.vcpu, h->vcpu);
	atomic_fetch_add(&bth_wd.gen, 1);
	atomic_store(&bth_wd.active, true);
	int rc = -1;
	for (int iter = 0; iter < 2; iter++) {
		if (vmm_engine_bt.vcpu_run(h->vcpu, &ex)) {
			if (!h->quiet)
				fprintf(stderr, "bthost: vcpu_run failed: %s\n", strerror(errno));
			break;
		}
		if (h->done || h->exc_vector >= 0) {
			rc = 0;
			break;
		}
		if (ex.reason != VMM_EXIT_KICKED) {
			if (!h->quiet)
				fprintf(stderr, "bthost: unexpected exit %s %s\n", vmm_exit_reason_name(ex.reason), ex.msg);
			break;
		}
		if (iter == 1 && !h->quiet)
			fprintf(stderr, "bthost: guest did not finish (watchdog)\n");
	}
	atomic_store(&bth_wd.active, false);

	vmm_engine_bt.get_regs(h->vcpu, &out->r);
	vmm_engine_bt.get_fpu(h->vcpu, &f);
	memcpy(out->fx, f.fxsave, 512);
	memcpy(out->data, h->ram + BTH_DATA, BTH_DATA_SIZE);
	memcpy(out->stack, h->ram + BTH_STACK - BTH_STACK_SIZE, BTH_STACK_SIZE);
	out->vector = h->exc_vector;
	return rc;
}

/* ---- the native side ---- */

struct vmm_regs bth_regs_in, bth_regs_out;
uint8_t bth_fx_in[512] __attribute__((aligned(16)));
uint8_t bth_fx_out[512] __attribute__((aligned(16)));
uint64_t bth_host_rsp, bth_code_addr;
void bth_native_enter(void);
void bth_native_exit(void);

/* Load every GPR and RFLAGS from bth_regs_in, jump to the code; the code
 * ends with "jmp [rip+0] -> bth_native_exit", which stores them back. */
__asm__(
	".text\n"
	".globl bth_native_enter\n"
	".type bth_native_enter,@function\n"
	"bth_native_enter:\n"
	"  push %rbx\n push %rbp\n push %r12\n push %r13\n push %r14\n push %r15\n"
	"  mov %rsp, bth_host_rsp(%rip)\n"
	"  fxrstor bth_fx_in(%rip)\n"
	"  lea bth_regs_in(%rip), %rax\n"
	"  pushq 136(%rax)\n"
	"  popfq\n"
	"  mov 8(%rax), %rbx\n mov 16(%rax), %rcx\n mov 24(%rax), %rdx\n"
	"  mov 32(%rax), %rsi\n mov 40(%rax), %rdi\n mov 48(%rax), %rsp\n"
	"  mov 56(%rax), %rbp\n mov 64(%rax), %r8\n mov 72(%rax), %r9\n"
	"  mov 80(%rax), %r10\n mov 88(%rax), %r11\n mov 96(%rax), %r12\n"
	"  mov 104(%rax), %r13\n mov 112(%rax), %r14\n mov 120(%rax), %r15\n"
	"  mov 0(%rax), %rax\n"
	"  jmp *bth_code_addr(%rip)\n"
	".globl bth_native_exit\n"
	".type bth_native_exit,@function\n"
	"bth_native_exit:\n"
	"  mov %rax, bth_regs_out+0(%rip)\n mov %rbx, bth_regs_out+8(%rip)\n"
	"  mov %rcx, bth_regs_out+16(%rip)\n mov %rdx, bth_regs_out+24(%rip)\n"
	"  mov %rsi, bth_regs_out+32(%rip)\n mov %rdi, bth_regs_out+40(%rip)\n"
	"  mov %rsp, bth_regs_out+48(%rip)\n mov %rbp, bth_regs_out+56(%rip)\n"
	"  mov %r8, bth_regs_out+64(%rip)\n mov %r9, bth_regs_out+72(%rip)\n"
	"  mov %r10, bth_regs_out+80(%rip)\n mov %r11, bth_regs_out+88(%rip)\n"
	"  mov %r12, bth_regs_out+96(%rip)\n mov %r13, bth_regs_out+104(%rip)\n"
	"  mov %r14, bth_regs_out+112(%rip)\n mov %r15, bth_regs_out+120(%rip)\n"
	"  mov bth_host_rsp(%rip), %rsp\n"
	"  pushfq\n"
	"  pop %rax\n"
	"  mov %rax, bth_regs_out+136(%rip)\n"
	"  fxsave bth_fx_out(%rip)\n"
	"  cld\n"
	"  pop %r15\n pop %r14\n pop %r13\n pop %r12\n pop %rbp\n pop %rbx\n"
	"  ret\n");

static sigjmp_buf bth_jmp;
static volatile sig_atomic_t bth_sig_vector;

static void bth_on_signal(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	switch (sig) {
	case SIGFPE: bth_sig_vector = si->si_code == FPE_INTDIV || si->si_code == FPE_INTOVF ? 0 : 16; break;
	case SIGILL: bth_sig_vector = 6; break;
	case SIGSEGV: bth_sig_vector = si->si_code == SI_KERNEL ? 13 : 14; break;
	case SIGBUS: bth_sig_vector = 13; break;
	case SIGTRAP: bth_sig_vector = 1; break;
	default: bth_sig_vector = 255; break;
	}
	siglongjmp(bth_jmp, 1);
}

static void *bth_map_fixed(uint64_t addr, size_t len, int prot)
{
	void *p = mmap((void *)(uintptr_t)addr, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
	               -1, 0);
	if (p == MAP_FAILED || p != (void *)(uintptr_t)addr)
		return NULL;
	return p;
}

static void bth_child(struct bth_case *cases, unsigned n)
{
	uint8_t *code = bth_map_fixed(BTH_CODE, BTH_CODE_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC);
	uint8_t *data = bth_map_fixed(BTH_DATA, BTH_DATA_SIZE, PROT_READ | PROT_WRITE);
	uint8_t *stk = bth_map_fixed(BTH_STACK - 0x10000, 0x10000, PROT_READ | PROT_WRITE);
	static uint8_t altstack[65536];
	stack_t ss = { .ss_sp = altstack, .ss_size = sizeof(altstack), .ss_flags = 0 };
	struct sigaction sa;

	if (!code || !data || !stk) {
		fprintf(stderr, "bthost: native runner cannot map its fixed addresses\n");
		_exit(2);
	}
	sigaltstack(&ss, NULL);
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = bth_on_signal;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
	sigaction(SIGFPE, &sa, NULL);
	sigaction(SIGILL, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGTRAP, &sa, NULL);

	for (unsigned i = 0; i < n; i++) {
		struct bth_case *c = &cases[i];
		static const uint8_t jmp_exit[6] = { 0xff, 0x25, 0, 0, 0, 0 };
		uint64_t exit_addr = (uint64_t)(uintptr_t)bth_native_exit;

		memcpy(code, c->code, c->len);
		memcpy(code + c->len, jmp_exit, 6);
		memcpy(code + c->len + 6, &exit_addr, 8);
		memcpy(data, c->in.data, BTH_DATA_SIZE);
		memcpy(stk + 0x10000 - BTH_STACK_SIZE, c->in.stack, BTH_STACK_SIZE);
		bth_regs_in = c->in.r;
		bth_regs_in.rflags = (c->in.r.rflags & (BT_ARITH_FLAGS | BT_DF)) | 0x202;
		memcpy(bth_fx_in, c->in.fx, 512);
		bth_code_addr = BTH_CODE;
		bth_sig_vector = -1;
		memset(&c->out, 0, sizeof(c->out));
		if (sigsetjmp(bth_jmp, 1) == 0) {
			bth_native_enter();
			c->out.r = bth_regs_out;
			memcpy(c->out.fx, bth_fx_out, 512);
			c->out.vector = -1;
		} else {
			c->out.vector = bth_sig_vector;
		}
		memcpy(c->out.data, data, BTH_DATA_SIZE);
		memcpy(c->out.stack, stk + 0x10000 - BTH_STACK_SIZE, BTH_STACK_SIZE);
	}
	_exit(0);
}

int bth_native_batch(struct bth_case *cases, unsigned n)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0)
		bth_child(cases, n);
	int st;
	if (waitpid(pid, &st, 0) != pid)
		return -1;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "bthost: native child failed (status %#x)\n", st);
		return -1;
	}
	return 0;
}

/*
 * sysguest.c — runs a bt system test guest: a flat binary loaded at 0x1000
 * and started in real mode at 0000:1000 on the bt engine (vmm.h contract),
 * with a minimal host: port 0xE9 prints a character, port 0xF4 ends the
 * test with the value written (0 = pass), everything else reads as ~0.
 *
 * usage: bt-sysguest IMAGE [--expect-shutdown] [--timeout SECONDS]
 * Exits 0 when the guest passes (or triple-faults, with --expect-shutdown).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vmm/vmm.h"

#define RAM_SIZE   (16u << 20)
#define LOAD_ADDR  0x1000u
#define PORT_PUTC  0xE9
#define PORT_EXIT  0xF4

struct host {
	const struct vmm_engine *e;
	struct vmm_vcpu *vcpu;
	int exit_code;       /* -1 while running */
	bool shutdown;
	char why[160];
};

static bool h_pic_pending(void *o) { (void)o; return false; }
static int h_pic_ack(void *o) { (void)o; return -1; }
static void h_eoi(void *o, uint8_t v) { (void)o; (void)v; }

static void h_pio(void *o, unsigned id, uint16_t port, unsigned size, bool write, uint32_t count,
                  uint8_t *data)
{
	struct host *h = o;
	(void)id;
	if (!write) {
		memset(data, 0xff, (size_t)size * count);
		return;
	}
	for (uint32_t i = 0; i < count; i++) {
		uint32_t v = 0;
		memcpy(&v, data + (size_t)i * size, size);
		if (port == PORT_PUTC) {
			putchar((int)(v & 0xff));
			fflush(stdout);
		} else if (port == PORT_EXIT && h->exit_code < 0) {
			h->exit_code = (int)(v & 0xff);
			h->e->vcpu_kick(h->vcpu);
		}
	}
}

static void h_mmio(void *o, unsigned id, uint64_t gpa, unsigned size, bool write, uint8_t *data)
{
	(void)o; (void)id; (void)gpa;
	if (!write)
		memset(data, 0xff, size);
}

static void h_shutdown(void *o, unsigned id, const char *why)
{
	struct host *h = o;
	(void)id;
	h->shutdown = true;
	snprintf(h->why, sizeof(h->why), "%s", why);
}

static const struct vmm_host_ops ops = {
	.pic_pending = h_pic_pending, .pic_ack = h_pic_ack, .eoi = h_eoi,
	.pio = h_pio, .mmio = h_mmio, .shutdown = h_shutdown,
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	const char *image = NULL;
	bool expect_shutdown = false;
	double timeout = 20;
	struct host h = { .exit_code = -1 };
	char err[256];

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--expect-shutdown") == 0)
			expect_shutdown = true;
		else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
			timeout = atof(argv[++i]);
		else
			image = argv[i];
	}
	if (!image) {
		fprintf(stderr, "usage: %s IMAGE [--expect-shutdown] [--timeout S]\n", argv[0]);
		return 2;
	}
	h.e = &vmm_engine_bt;
	if (!h.e || !h.e->vm_create) {
		fprintf(stderr, "bt engine not built\n");
		return 77;
	}
	uint8_t *ram = calloc(1, RAM_SIZE);
	FILE *f = fopen(image, "rb");
	if (!ram || !f) {
		fprintf(stderr, "%s: %s\n", image, strerror(errno));
		return 2;
	}
	size_t n = fread(ram + LOAD_ADDR, 1, RAM_SIZE - LOAD_ADDR, f);
	fclose(f);
	if (n == 0) {
		fprintf(stderr, "%s: empty image\n", image);
		return 2;
	}

	struct vmm_vm_config cfg = {
		.ncpus = 1, .tsc_hz = 2000000000ull, .apic_bus_hz = 1000000000ull,
		.host = &ops, .host_opaque = &h,
	};
	struct vmm_vm *vm = h.e->vm_create(&cfg, err, sizeof(err));
	if (!vm) {
		fprintf(stderr, "vm_create: %s\n", err);
		return 1;
	}
	struct vmm_mem_region r = { .gpa = 0, .size = RAM_SIZE, .hva = ram, .flags = 0 };
	if (h.e->vm_set_memory(vm, 0, &r) != 0) {
		fprintf(stderr, "vm_set_memory failed\n");
		return 1;
	}
	h.vcpu = h.e->vcpu_create(vm, 0, err, sizeof(err));
	if (!h.vcpu) {
		fprintf(stderr, "vcpu_create: %s\n", err);
		return 1;
	}
	h.e->vcpu_reset(h.vcpu);
	struct vmm_sregs s;
	struct vmm_regs regs;
	h.e->get_sregs(h.vcpu, &s);
	h.e->get_regs(h.vcpu, &regs);
	s.cs.selector = 0;
	s.cs.base = 0;
	regs.rip = LOAD_ADDR;
	h.e->set_sregs(h.vcpu, &s);
	h.e->set_regs(h.vcpu, &regs);

	double t0 = now_s();
	int rc = 1;
	for (;;) {
		struct vmm_exit ex;
		if (h.e->vcpu_run(h.vcpu, &ex) != 0) {
			perror("vcpu_run");
			break;
		}
		if (h.exit_code >= 0) {
			if (expect_shutdown)
				fprintf(stderr, "\nFAIL: guest exited with %d, expected a triple fault\n", h.exit_code);
			else if (h.exit_code)
				fprintf(stderr, "\nFAIL: guest reported failure code %d\n", h.exit_code);
			rc = h.exit_code == 0 && !expect_shutdown ? 0 : 1;
			break;
		}
		if (ex.reason == VMM_EXIT_SHUTDOWN || h.shutdown) {
			if (expect_shutdown) {
				printf("\nshutdown as expected: %s\n", h.why);
				rc = 0;
			} else {
				fprintf(stderr, "\nFAIL: unexpected shutdown: %s\n", h.why[0] ? h.why : ex.msg);
			}
			break;
		}
		if (ex.reason == VMM_EXIT_HLT) {
			h.e->get_regs(h.vcpu, &regs);
			fprintf(stderr, "\nFAIL: guest halted with interrupts off at RIP %#llx\n",
			        (unsigned long long)regs.rip);
			break;
		}
		if (ex.reason == VMM_EXIT_INTERNAL || ex.reason == VMM_EXIT_UNKNOWN) {
			fprintf(stderr, "\nFAIL: engine exit %s: %s\n", vmm_exit_reason_name(ex.reason), ex.msg);
			break;
		}
		if (now_s() - t0 > timeout) {
			h.e->get_regs(h.vcpu, &regs);
			fprintf(stderr, "\nFAIL: timeout after %.0f s at RIP %#llx\n", timeout,
			        (unsigned long long)regs.rip);
			break;
		}
	}
	h.e->vcpu_destroy(h.vcpu);
	h.e->vm_destroy(vm);
	free(ram);
	return rc;
}

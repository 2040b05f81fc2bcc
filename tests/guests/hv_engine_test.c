/*
 * hv_engine_test.c — the hv engine alone (vmm_dep, no platform) running the
 * test guest ROMs: boot to long mode, COM1 output, the test device's MMIO
 * (through host->mmio and through VMM_EXIT_MMIO), LAPIC timer wake-ups from
 * HLT, the CPL3 loop, kicks from another thread, register accessors, the
 * save/restore blob and reset.
 *
 * The harness supplies what a platform would: COM1 output, port 0x80, and a
 * minimal test device (ID, SCRATCH, EXIT, COUNTER, SCRATCH64, NS).
 *
 * usage: hv_engine_test ROMDIR
 * Exits 77 (skip) when /dev/kvm is missing or unusable.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "vmm/vmm.h"

#define RAM_SIZE   (64ull << 20)
#define ROM_SIZE   0x10000ull
#define TESTDEV    0xFEBF0000ull
#define STATUS_OK  42
#define GUEST_LIMIT_NS 20000000000ull

static int failures;

#define CHECK(cond, ...)                                              \
	do {                                                          \
		if (!(cond)) {                                        \
			fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
			fprintf(stderr, __VA_ARGS__);                 \
			fputc('\n', stderr);                          \
			failures++;                                   \
		}                                                     \
	} while (0)

struct harness {
	const struct vmm_engine *e;
	struct vmm_vcpu *cpu;    /* kicked when the guest writes EXIT */
	char serial[8192];
	size_t serial_len;
	int exit_status;         /* -1 until the guest writes EXIT */
	uint32_t scratch, counter;
	uint64_t scratch64;
	uint64_t t0;
	unsigned mmio_calls, port80;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void h_pio(struct harness *h, uint16_t port, unsigned size, bool write, uint8_t *data)
{
	if (port == 0x3F8 && write) {
		if (h->serial_len + 1 < sizeof(h->serial))
			h->serial[h->serial_len++] = (char)data[0];
	} else if (port == 0x3FD && !write) {
		data[0] = 0x60;    /* THR empty */
	} else if (port == 0x80 && write) {
		h->port80++;
	} else if (!write) {
		memset(data, 0xFF, size);
	}
}

static void h_mmio(struct harness *h, uint64_t gpa, unsigned size, bool write, uint8_t *data)
{
	uint64_t v = 0;
	if (write)
		memcpy(&v, data, size);
	if (gpa < TESTDEV || gpa >= TESTDEV + 0x1000) {
		if (!write)
			memset(data, 0xFF, size);
		return;
	}
	switch (gpa - TESTDEV) {
	case 0x00: v = 0x54534556; break;
	case 0x04: if (write) h->scratch = (uint32_t)v; else v = h->scratch; break;
	case 0x08:
		if (write && h->exit_status < 0) {
			h->exit_status = (int)(v & 0xFF);
			if (h->cpu)   /* stop the vCPU as a platform powering off would */
				h->e->vcpu_kick(h->cpu);
		}
		break;
	case 0x0C: v = h->counter++; break;
	case 0x18: if (write) h->scratch64 = v; else v = h->scratch64; break;
	case 0x20: v = now_ns() - h->t0; break;
	default: v = ~0ull; break;
	}
	if (!write)
		memcpy(data, &v, size);
	if (getenv("HV_TEST_DEBUG"))
		fprintf(stderr, "mmio %s 0x%" PRIx64 " = 0x%" PRIx64 "\n", write ? "W" : "R", gpa, v);
}

static bool host_pic_pending(void *o) { (void)o; return false; }
static int host_pic_ack(void *o) { (void)o; return -1; }
static void host_eoi(void *o, uint8_t v) { (void)o; (void)v; }
static void host_mmio(void *o, unsigned id, uint64_t gpa, unsigned size, bool write, uint8_t *data)
{
	struct harness *h = o;
	(void)id;
	h->mmio_calls++;
	h_mmio(h, gpa, size, write, data);
}
static void host_pio(void *o, unsigned id, uint16_t port, unsigned size, bool write,
                     uint32_t count, uint8_t *data)
{
	(void)id;
	for (uint32_t i = 0; i < count; i++)
		h_pio(o, port, size, write, data + i * size);
}

struct machine {
	const struct vmm_engine *e;
	struct vmm_vm *vm;
	struct vmm_vcpu *cpu;
	uint8_t *ram, *rom;
	struct harness h;
	struct vmm_host_ops ops;
};

static int load_rom(const char *dir, const char *name, uint8_t *rom)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s.rom", dir, name);
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno));
		return -1;
	}
	size_t n = fread(rom, 1, ROM_SIZE, f);
	fclose(f);
	if (n != ROM_SIZE) {
		fprintf(stderr, "%s: expected %llu bytes\n", path, (unsigned long long)ROM_SIZE);
		return -1;
	}
	return 0;
}

static int machine_init(struct machine *m, bool sync_mmio)
{
	char err[256];
	memset(&m->h, 0, sizeof(m->h));
	m->h.exit_status = -1;
	m->ops = (struct vmm_host_ops){
		.pic_pending = host_pic_pending, .pic_ack = host_pic_ack, .eoi = host_eoi,
		.pio = host_pio, .mmio = sync_mmio ? host_mmio : NULL,
	};
	struct vmm_vm_config cfg = {
		.ncpus = 1, .tsc_hz = 0, .apic_bus_hz = VMM_APIC_BUS_HZ_HV,
		.host = &m->ops, .host_opaque = &m->h,
	};
	m->e = &vmm_engine_hv;
	m->vm = m->e->vm_create(&cfg, err, sizeof(err));
	if (!m->vm) {
		fprintf(stderr, "vm_create: %s\n", err);
		return -1;
	}
	struct vmm_mem_region ram = { .gpa = 0, .size = RAM_SIZE, .hva = m->ram };
	struct vmm_mem_region rom = { .gpa = 0x100000000ull - ROM_SIZE, .size = ROM_SIZE,
	                              .hva = m->rom, .flags = VMM_MEM_READONLY };
	if (m->e->vm_set_memory(m->vm, 0, &ram) || m->e->vm_set_memory(m->vm, 1, &rom)) {
		fprintf(stderr, "vm_set_memory: %s\n", strerror(errno));
		return -1;
	}
	m->cpu = m->e->vcpu_create(m->vm, 0, err, sizeof(err));
	m->h.e = m->e;
	m->h.cpu = m->cpu;
	if (!m->cpu) {
		fprintf(stderr, "vcpu_create: %s\n", err);
		return -1;
	}
	return 0;
}

static void machine_fini(struct machine *m)
{
	m->e->vcpu_destroy(m->cpu);
	m->e->vm_destroy(m->vm);
}

/* Run until the guest writes EXIT or a limit; returns the number of KICKED exits. */
static unsigned run_guest(struct machine *m, double limit_s)
{
	struct vmm_exit ex;
	unsigned kicked = 0;
	m->h.t0 = now_ns();
	uint64_t deadline = m->h.t0 + (uint64_t)(limit_s * 1e9);
	while (m->h.exit_status < 0) {
		if (m->ops.mmio)
			memset(&ex, 0, sizeof(ex));   /* as the platform does */
		if (m->e->vcpu_run(m->cpu, &ex) < 0) {
			CHECK(0, "vcpu_run: %s (%s)", strerror(errno), ex.msg);
			break;
		}
		switch (ex.reason) {
		case VMM_EXIT_IO:
			host_pio(&m->h, 0, ex.io.port, ex.io.size, ex.io.write, ex.io.count, ex.io.data);
			break;
		case VMM_EXIT_MMIO:
			h_mmio(&m->h, ex.mmio.gpa, ex.mmio.size, ex.mmio.write, ex.mmio.data);
			break;
		case VMM_EXIT_KICKED:
			kicked++;
			break;
		default:
			CHECK(0, "unexpected exit %s: %s", vmm_exit_reason_name(ex.reason), ex.msg);
			return kicked;
		}
		if (now_ns() > deadline) {
			struct vmm_regs r;
			m->e->get_regs(m->cpu, &r);
			CHECK(0, "guest did not finish within %.0f s (RIP 0x%" PRIx64 ")", limit_s, r.rip);
			break;
		}
	}
	return kicked;
}

static void expect_serial(struct machine *m, const char *name, const char *needle)
{
	m->h.serial[m->h.serial_len] = '\0';
	CHECK(strstr(m->h.serial, needle) != NULL, "%s: serial lacks \"%s\"; got:\n%s", name,
	      needle, m->h.serial);
}

struct kicker {
	struct machine *m;
	atomic_bool stop;
	bool periodic;           /* kick every 2 ms; else only as a watchdog after the deadline */
	uint64_t deadline;
	unsigned sent;
};

static void *kicker_thread(void *arg)
{
	struct kicker *k = arg;
	while (!atomic_load(&k->stop)) {
		usleep(2000);
		if (k->periodic || now_ns() > k->deadline) {
			k->m->e->vcpu_kick(k->m->cpu);
			k->sent++;
		}
	}
	return NULL;
}

static int run_one(const char *dir, struct machine *m, const char *name, bool sync_mmio,
                   const char *needle, bool kick)
{
	if (load_rom(dir, name, m->rom) < 0) {
		failures++;
		return -1;
	}
	memset(m->ram, 0, RAM_SIZE);
	if (machine_init(m, sync_mmio) < 0) {
		failures++;
		return -1;
	}
	struct kicker k = { .m = m, .periodic = kick, .deadline = now_ns() + GUEST_LIMIT_NS };
	pthread_t t;
	pthread_create(&t, NULL, kicker_thread, &k);
	uint64_t t0 = now_ns();
	unsigned kicked = run_guest(m, GUEST_LIMIT_NS / 1e9);
	uint64_t t1 = now_ns();
	atomic_store(&k.stop, true);
	pthread_join(t, NULL);
	if (kick) {
		CHECK(kicked > 0, "%s: %u kicks sent, none seen as VMM_EXIT_KICKED", name, k.sent);
	}
	CHECK(m->h.exit_status == STATUS_OK, "%s: exit status %d, expected %d", name,
	      m->h.exit_status, STATUS_OK);
	CHECK(m->h.port80 >= 1, "%s: the first instruction (OUT 0x80) was not seen", name);
	expect_serial(m, name, needle);
	printf("%s%s: status %d in %.1f ms%s, serial:\n%s", name, sync_mmio ? "" : " (exit-path MMIO)",
	       m->h.exit_status, (t1 - t0) / 1e6, kick ? " (with kicks)" : "", m->h.serial);
	if (kick)
		printf("  kicks sent %u, KICKED exits %u\n", k.sent, kicked);
	return 0;
}

/* Register accessors, save/restore and reset on a vCPU that has run. */
static void state_checks(struct machine *m)
{
	struct vmm_regs r, r2;
	struct vmm_sregs s, s2;
	struct vmm_fpu f, f2;
	CHECK(m->e->get_regs(m->cpu, &r) == 0, "get_regs");
	CHECK(m->e->get_sregs(m->cpu, &s) == 0, "get_sregs");
	CHECK(s.efer & 0x400, "guest should be in long mode (EFER.LMA), efer=0x%" PRIx64, s.efer);
	CHECK(s.cs.l == 1 && s.cs.present, "CS should be a 64-bit code segment");
	CHECK(s.cr3 == 0x1000, "CR3 0x%" PRIx64 ", expected 0x1000", s.cr3);
	CHECK(s.tr.selector == 0x38 && s.tr.base == 0x6000, "TR %x base %" PRIx64, s.tr.selector,
	      s.tr.base);
	r.r15 = 0x1122334455667788ull;
	CHECK(m->e->set_regs(m->cpu, &r) == 0, "set_regs");
	CHECK(m->e->get_regs(m->cpu, &r2) == 0 && r2.r15 == r.r15, "regs round trip");
	CHECK(m->e->set_sregs(m->cpu, &s) == 0, "set_sregs");
	CHECK(m->e->get_sregs(m->cpu, &s2) == 0 && s2.cr3 == s.cr3 && s2.cs.l == s.cs.l &&
	      s2.gdt.base == s.gdt.base && s2.tr.base == s.tr.base, "sregs round trip");
	CHECK(m->e->get_fpu(m->cpu, &f) == 0, "get_fpu");
	f.fxsave[160] = 0x5A;   /* XMM0 byte 0 */
	CHECK(m->e->set_fpu(m->cpu, &f) == 0, "set_fpu");
	CHECK(m->e->get_fpu(m->cpu, &f2) == 0 && f2.fxsave[160] == 0x5A &&
	      memcmp(f.fxsave, f2.fxsave, 24) == 0, "fpu round trip");
	uint64_t v = 0;
	CHECK(m->e->set_msr(m->cpu, 0xC0000102u, 0xFFFF800012345000ull) == 0, "set KERNEL_GS_BASE");
	CHECK(m->e->get_msr(m->cpu, 0xC0000102u, &v) == 0 && v == 0xFFFF800012345000ull,
	      "KERNEL_GS_BASE round trip: 0x%" PRIx64, v);

	static uint8_t blob[16384], blob2[16384];
	long n = m->e->vcpu_save(m->cpu, blob, sizeof(blob));
	CHECK(n > 0, "vcpu_save: %s", strerror(errno));
	CHECK(m->e->vcpu_save(m->cpu, blob2, 8) < 0 && errno == ENOSPC, "save into 8 bytes: ENOSPC");
	CHECK(m->e->set_msr(m->cpu, 0xC0000102u, 0) == 0, "clobber KERNEL_GS_BASE");
	if (n > 0) {
		CHECK(m->e->vcpu_restore(m->cpu, blob, (size_t)n) == 0, "vcpu_restore: %s",
		      strerror(errno));
		CHECK(m->e->get_msr(m->cpu, 0xC0000102u, &v) == 0 && v == 0xFFFF800012345000ull,
		      "restore brought KERNEL_GS_BASE back: 0x%" PRIx64, v);
		/* A corrupt blob is refused, never read past its end. */
		uint8_t bad[64];
		memcpy(bad, blob, sizeof(bad));
		CHECK(m->e->vcpu_restore(m->cpu, bad, 8) < 0, "restore of a truncated header");
		bad[0] ^= 0xFF;
		CHECK(m->e->vcpu_restore(m->cpu, bad, sizeof(bad)) < 0, "restore with a bad magic");
		printf("save/restore blob: %ld bytes\n", n);
	}

	CHECK(m->e->vcpu_reset(m->cpu) == 0, "vcpu_reset");
	CHECK(m->e->get_regs(m->cpu, &r) == 0 && r.rip == 0xFFF0 && r.rflags == 2 && r.rdx != 0,
	      "reset: RIP 0x%" PRIx64 " RFLAGS 0x%" PRIx64 " RDX 0x%" PRIx64, r.rip, r.rflags, r.rdx);
	CHECK(m->e->get_sregs(m->cpu, &s) == 0 && s.cs.selector == 0xF000 &&
	      s.cs.base == 0xFFFF0000ull && s.cr0 == 0x60000010ull && s.efer == 0 &&
	      (s.apic_base & ~0xFFFull) == 0xFEE00000ull && (s.apic_base & 0x900) == 0x900,
	      "reset: CS %x base %" PRIx64 " CR0 %" PRIx64 " apic_base %" PRIx64, s.cs.selector,
	      s.cs.base, s.cr0, s.apic_base);
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : ".";
	setvbuf(stdout, NULL, _IOLBF, 0);
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		printf("SKIP: /dev/kvm is not usable here (%s)\n", strerror(errno));
		return 77;
	}
	close(fd);

	char why[256];
	bool fast = vmm_engine_hv.probe(why, sizeof(why));
	printf("probe: %s: %s\n", fast ? "pass" : "fail", why);
	CHECK(strstr(why, "instructions/s") != NULL || strstr(why, "KVM") != NULL,
	      "probe gave no reason");

	struct machine m;
	memset(&m, 0, sizeof(m));
	m.ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	m.rom = mmap(NULL, ROM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m.ram == MAP_FAILED || m.rom == MAP_FAILED) {
		perror("mmap");
		return 1;
	}

	if (run_one(dir, &m, "boot", true, "user: hello from CPL3", false) == 0) {
		expect_serial(&m, "boot", "boot: long mode ok");
		expect_serial(&m, "boot", "cpuid: VMwareVMware tsc_khz=");
		expect_serial(&m, "boot", "apic_khz=1000000");
		expect_serial(&m, "boot", "syscall: exit");
		state_checks(&m);
		/* After reset the same VM boots again from the reset vector. */
		m.h.exit_status = -1;
		m.h.serial_len = 0;
		memset(m.ram, 0, RAM_SIZE);
		struct kicker k = { .m = &m, .deadline = now_ns() + GUEST_LIMIT_NS };
		pthread_t t;
		pthread_create(&t, NULL, kicker_thread, &k);
		run_guest(&m, GUEST_LIMIT_NS / 1e9);
		atomic_store(&k.stop, true);
		pthread_join(t, NULL);
		CHECK(m.h.exit_status == STATUS_OK, "boot after vcpu_reset: status %d", m.h.exit_status);
		expect_serial(&m, "boot after reset", "user: hello from CPL3");
		machine_fini(&m);
	}
	if (run_one(dir, &m, "mmio", true, "mmio: user id scratch counter scratch64 ns ok", false) == 0) {
		CHECK(m.h.mmio_calls > 5, "host->mmio was not used (%u calls)", m.h.mmio_calls);
		machine_fini(&m);
	}
	if (run_one(dir, &m, "mmio", false, "mmio: user id scratch counter scratch64 ns ok", false) == 0)
		machine_fini(&m);
	if (run_one(dir, &m, "lapic", true, "lapic: 5 timer interrupts", false) == 0)
		machine_fini(&m);
	if (run_one(dir, &m, "cpl3", true, "result=64dbe4af8078d804", true) == 0)
		machine_fini(&m);
	if (failures) {
		fprintf(stderr, "hv_engine_test: %d check(s) failed\n", failures);
		return 1;
	}
	printf("hv_engine_test: all checks passed\n");
	return 0;
}

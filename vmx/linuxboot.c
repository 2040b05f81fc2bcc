/*
 * linuxboot.c — direct kernel boot: Documentation/arch/x86/boot.rst, the
 * 64-bit boot protocol.  The CPU starts in long mode at the kernel's
 * startup_64 with identity-mapped page tables covering 4 GiB, a flat GDT,
 * and RSI pointing at boot_params ("the zero page").
 *
 * An XZ-compressed bzImage (what Debian ships) is unpacked here on the host
 * and its vmlinux ELF placed at its physical addresses: the CPU then starts
 * at vmlinux's own startup_64, the entry the kernel keeps for 64-bit boot
 * loaders (arch/x86/kernel/head_64.S), as Firecracker does.  The guest's
 * decompressor would otherwise spend most of a software-engine boot in XZ
 * (about 85 s on bt).  The kernel runs without the decompressor's KASLR of
 * its physical and virtual base (memory-region randomisation still runs).
 * linux.decompress = "guest" keeps the classic path.
 */
#include "linuxboot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef VIREO_HAVE_LZMA
#include <lzma.h>
#endif

#include "acpi.h"
#include "log.h"
#include "platform.h"
#include "vm.h"

/* boot_params offsets (arch/x86/include/uapi/asm/bootparam.h) */
#define BP_ACPI_RSDP_ADDR  0x070
#define BP_E820_ENTRIES    0x1E8
#define BP_SETUP_HEADER    0x1F1
#define BP_E820_TABLE      0x2D0
#define BP_E820_MAX        128
#define BP_SIZE            0x1000

/* setup_header fields, as offsets into the bzImage / boot_params */
#define SH_SETUP_SECTS     0x1F1
#define SH_BOOT_FLAG       0x1FE
#define SH_HEADER          0x202
#define SH_VERSION         0x206
#define SH_TYPE_OF_LOADER  0x210
#define SH_LOADFLAGS       0x211
#define SH_RAMDISK_IMAGE   0x218
#define SH_RAMDISK_SIZE    0x21C
#define SH_HEAP_END_PTR    0x224
#define SH_CMD_LINE_PTR    0x228
#define SH_INITRD_ADDR_MAX 0x22C
#define SH_CMDLINE_SIZE    0x238
#define SH_XLOADFLAGS      0x236
#define SH_PAYLOAD_OFFSET  0x248
#define SH_PAYLOAD_LENGTH  0x24C
#define SH_INIT_SIZE       0x260

#define XLF_KERNEL_64      0x1
#define LOADFLAG_CAN_USE_HEAP 0x80

static uint32_t lb_le32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint16_t lb_le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

static int lb_read_file(const char *path, const char *key, const char *vmx, uint8_t **out,
                        size_t *len, char *err, size_t errlen)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	uint8_t *buf;
	size_t done = 0;

	if (fd < 0) {
		snprintf(err, errlen, "%s: %s = \"%s\": %s", vmx, key, path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: %s = \"%s\": not a regular file", vmx, key, path);
		close(fd);
		return -1;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		snprintf(err, errlen, "%s: %s: out of memory", vmx, key);
		return -1;
	}
	while (done < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + done, (size_t)st.st_size - done);
		if (n <= 0) {
			snprintf(err, errlen, "%s: %s = \"%s\": read error: %s", vmx, key, path,
			         n < 0 ? strerror(errno) : "short read");
			free(buf);
			close(fd);
			return -1;
		}
		done += (size_t)n;
	}
	close(fd);
	*out = buf;
	*len = done;
	return 0;
}

static int lb_check_bzimage(const uint8_t *k, size_t len, const char *vmx, const char *path,
                            char *err, size_t errlen)
{
	if (len < 0x400 || lb_le16(k + SH_BOOT_FLAG) != 0xAA55 || lb_le32(k + SH_HEADER) != 0x53726448) {
		snprintf(err, errlen, "%s: linux.kernel = \"%s\": not a bzImage (no \"HdrS\" setup header)",
		         vmx, path);
		return -1;
	}
	if (lb_le16(k + SH_VERSION) < 0x020C || !(k[SH_XLOADFLAGS] & XLF_KERNEL_64)) {
		snprintf(err, errlen, "%s: linux.kernel = \"%s\": boot protocol %u.%02u without a 64-bit entry "
		         "(need 2.12+ and XLF_KERNEL_64)", vmx, path, k[SH_VERSION + 1], k[SH_VERSION]);
		return -1;
	}
	unsigned setup_sects = k[SH_SETUP_SECTS] ? k[SH_SETUP_SECTS] : 4;
	if ((size_t)(setup_sects + 1) * 512 >= len) {
		snprintf(err, errlen, "%s: linux.kernel = \"%s\": truncated bzImage", vmx, path);
		return -1;
	}
	return 0;
}

int linuxboot_check(struct vmx_vm *vm, char *err, size_t errlen)
{
	const char *vmx = vmxcfg_path(vm->cfg);
	const char *kpath = vmxcfg_get(vm->cfg, "linux.kernel");
	const char *ipath = vmxcfg_get(vm->cfg, "linux.initrd");
	const char *cmdline = vmxcfg_get(vm->cfg, "linux.cmdline");
	uint8_t *k;
	size_t klen;
	int ret;

	if (!kpath || !*kpath) {
		snprintf(err, errlen, "%s: linux.kernel is empty", vmx);
		return -1;
	}
	if (lb_read_file(kpath, "linux.kernel", vmx, &k, &klen, err, errlen) != 0)
		return -1;
	ret = lb_check_bzimage(k, klen, vmx, kpath, err, errlen);
	free(k);
	if (ret)
		return -1;
	if (ipath && *ipath) {
		struct stat st;
		if (stat(ipath, &st) != 0 || !S_ISREG(st.st_mode)) {
			snprintf(err, errlen, "%s: linux.initrd = \"%s\": %s", vmx, ipath,
			         errno ? strerror(errno) : "not a regular file");
			return -1;
		}
	}
	const char *dec = vmxcfg_get(vm->cfg, "linux.decompress");
	if (dec && strcmp(dec, "host") != 0 && strcmp(dec, "guest") != 0) {
		snprintf(err, errlen, "%s: linux.decompress = \"%s\": expected \"host\" or \"guest\"", vmx, dec);
		return -1;
	}
	if (cmdline && strlen(cmdline) >= LB_CMDLINE_MAX) {
		snprintf(err, errlen, "%s: linux.cmdline is longer than %llu bytes", vmx,
		         (unsigned long long)LB_CMDLINE_MAX - 1);
		return -1;
	}
	return 0;
}

unsigned linuxboot_e820(const struct vmx_vm *vm, struct e820_entry *out, unsigned max)
{
	unsigned n = 0;
	const struct gmem *m = &vm->mem;
#define E820_ADD(a, s, t) do { if (n < max) out[n++] = (struct e820_entry){ (a), (s), (t) }; } while (0)
	E820_ADD(0, PLAT_EBDA_START, E820_RAM);
	E820_ADD(PLAT_EBDA_START, 0xA0000 - PLAT_EBDA_START, E820_RESERVED);
	E820_ADD(PLAT_BIOS_AREA, 0x100000 - PLAT_BIOS_AREA, E820_RESERVED);
	E820_ADD(PLAT_HIGH_RAM, m->low_size - PLAT_HIGH_RAM, E820_RAM);
	E820_ADD(PLAT_IOAPIC_BASE, 0x1000, E820_RESERVED);
	E820_ADD(PLAT_LAPIC_BASE, 0x1000, E820_RESERVED);
	if (m->ram_size > m->low_size)
		E820_ADD(VMX_4G, m->ram_size - m->low_size, E820_RAM);
#undef E820_ADD
	return n;
}

static void lb_put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static void lb_put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

static int lb_page_tables(struct vmx_vm *vm)
{
	uint8_t *pml4 = gmem_ptr(&vm->mem, LB_PML4, 0x1000);
	uint8_t *pdpt = gmem_ptr(&vm->mem, LB_PDPT, 0x1000);
	uint8_t *pd = gmem_ptr(&vm->mem, LB_PD, 0x4000);

	if (!pml4 || !pdpt || !pd)
		return -1;
	memset(pml4, 0, 0x1000);
	memset(pdpt, 0, 0x1000);
	lb_put64(pml4, LB_PDPT | 0x3);                 /* present, writable */
	for (uint64_t i = 0; i < 4; i++)
		lb_put64(pdpt + i * 8, (LB_PD + i * 0x1000) | 0x3);
	for (uint64_t i = 0; i < 2048; i++)
		lb_put64(pd + i * 8, (i << 21) | 0x83);   /* present, writable, 2 MiB */
	return 0;
}

static int lb_gdt(struct vmx_vm *vm)
{
	static const uint64_t gdt[4] = {
		0, 0,
		0x00AF9A000000FFFFull,   /* 0x10: 64-bit code */
		0x00CF92000000FFFFull,   /* 0x18: data */
	};
	return gmem_write(&vm->mem, LB_GDT, gdt, sizeof(gdt));
}

static void lb_seg(struct vmm_segment *s, uint16_t sel, uint8_t type, bool code64)
{
	memset(s, 0, sizeof(*s));
	s->selector = sel;
	s->base = 0;
	s->limit = 0xFFFFFFFF;
	s->type = type;
	s->present = 1;
	s->s = 1;
	s->g = 1;
	s->l = code64;
	s->db = !code64;
}

static int lb_set_cpu(struct vmx_vm *vm, uint64_t entry, char *err, size_t errlen)
{
	const struct vmm_engine *e = vm->engine;
	struct vmm_vcpu *v = vm->vcpus[0].ev;
	struct vmm_sregs s;
	struct vmm_regs r;

	if (e->get_sregs(v, &s) != 0) {
		snprintf(err, errlen, "cannot read the boot vCPU's state");
		return -1;
	}
	lb_seg(&s.cs, 0x10, 0xB, true);
	lb_seg(&s.ds, 0x18, 0x3, false);
	s.es = s.fs = s.gs = s.ss = s.ds;
	memset(&s.tr, 0, sizeof(s.tr));
	s.tr.type = 0xB;          /* busy 64-bit TSS: entry checks want one */
	s.tr.present = 1;
	s.tr.limit = 0x67;
	memset(&s.ldt, 0, sizeof(s.ldt));
	s.ldt.type = 0x2;
	s.ldt.unusable = 1;
	s.gdt.base = LB_GDT;
	s.gdt.limit = 4 * 8 - 1;
	s.idt.base = 0;
	s.idt.limit = 0;
	/* PG | WP | NE | ET | MP | PE */
	s.cr0 = 0x80000000ull | 0x10000ull | 0x20ull | 0x10ull | 0x2ull | 0x1ull;
	s.cr3 = LB_PML4;
	s.cr4 = 0x20;             /* PAE */
	s.efer = 0x500;           /* LME | LMA */
	if (e->set_sregs(v, &s) != 0) {
		snprintf(err, errlen, "cannot set the boot vCPU's long-mode state");
		return -1;
	}
	memset(&r, 0, sizeof(r));
	r.rip = entry;               /* a startup_64 */
	r.rsi = LB_BOOT_PARAMS;
	r.rsp = LB_BOOT_PARAMS - 0x10;
	r.rflags = 0x2;
	if (e->set_regs(v, &r) != 0) {
		snprintf(err, errlen, "cannot set the boot vCPU's registers");
		return -1;
	}
	return 0;
}

#ifdef VIREO_HAVE_LZMA
static uint64_t lb_le64(const uint8_t *p) { return lb_le32(p) | (uint64_t)lb_le32(p + 4) << 32; }

/*
 * Unpack the XZ payload of a bzImage (pm: its protected-mode part) into a
 * vmlinux ELF image.  Returns 1 and the image, 0 when the payload is not XZ
 * (the caller boots the classic way), -1 with err on a damaged kernel.
 */
static int lb_unxz(const uint8_t *pm, size_t pm_len, const uint8_t *k, const char *what,
                   uint8_t **out, size_t *out_len, char *err, size_t errlen)
{
	static const uint8_t xz_magic[6] = { 0xFD, '7', 'z', 'X', 'Z', 0 };
	uint32_t off = lb_le32(k + SH_PAYLOAD_OFFSET), len = lb_le32(k + SH_PAYLOAD_LENGTH);

	if (lb_le16(k + SH_VERSION) < 0x0208 || len < 16 || off > pm_len || len > pm_len - off ||
	    memcmp(pm + off, xz_magic, sizeof(xz_magic)) != 0)
		return 0;
	/* mkpiggy appends the unpacked size as 4 little-endian bytes. */
	size_t want = lb_le32(pm + off + len - 4);
	if (want < 64 || want > (512u << 20)) {
		snprintf(err, errlen, "%s: damaged payload (unpacked size %zu)", what, want);
		return -1;
	}
	uint8_t *buf = malloc(want);
	if (!buf) {
		snprintf(err, errlen, "%s: out of memory unpacking the kernel", what);
		return -1;
	}
	lzma_stream st = LZMA_STREAM_INIT;
	lzma_ret r = lzma_stream_decoder(&st, UINT64_MAX, 0);
	if (r == LZMA_OK) {
		st.next_in = pm + off;
		st.avail_in = len - 4;
		st.next_out = buf;
		st.avail_out = want;
		r = lzma_code(&st, LZMA_FINISH);
	}
	size_t got = want - st.avail_out;
	lzma_end(&st);
	if (r != LZMA_STREAM_END || got != want) {
		snprintf(err, errlen, "%s: damaged XZ payload (liblzma error %d after %zu of %zu bytes)", what,
		         (int)r, got, want);
		free(buf);
		return -1;
	}
	*out = buf;
	*out_len = got;
	return 1;
}

/*
 * Place vmlinux's PT_LOAD segments at their physical addresses; every
 * offset and size is checked against the image and guest RAM.  Returns the
 * entry point (physical) and the end of the loaded kernel.
 */
static int lb_load_elf(struct vmx_vm *vm, const uint8_t *e, size_t len, const char *what,
                       uint64_t *entry, uint64_t *end, char *err, size_t errlen)
{
	if (len < 64 || memcmp(e, "\x7f" "ELF", 4) != 0 || e[4] != 2 /* 64-bit */ || e[5] != 1 ||
	    lb_le16(e + 18) != 62 /* x86-64 */) {
		snprintf(err, errlen, "%s: the unpacked kernel is not an x86-64 ELF", what);
		return -1;
	}
	uint64_t phoff = lb_le64(e + 32);
	unsigned phentsize = lb_le16(e + 54), phnum = lb_le16(e + 56);
	if (phentsize < 56 || phnum == 0 || phoff > len || (uint64_t)phnum * phentsize > len - phoff) {
		snprintf(err, errlen, "%s: the unpacked kernel has a damaged program header table", what);
		return -1;
	}
	uint64_t lo = UINT64_MAX, hi = 0;
	for (unsigned i = 0; i < phnum; i++) {
		const uint8_t *ph = e + phoff + (size_t)i * phentsize;
		if (lb_le32(ph) != 1 /* PT_LOAD */)
			continue;
		uint64_t off = lb_le64(ph + 8), paddr = lb_le64(ph + 24);
		uint64_t filesz = lb_le64(ph + 32), memsz = lb_le64(ph + 40);
		if (off > len || filesz > len - off || filesz > memsz || paddr < PLAT_HIGH_RAM ||
		    paddr > vm->mem.low_size || memsz > vm->mem.low_size - paddr) {
			snprintf(err, errlen, "%s: kernel segment %u (0x%llx+0x%llx) lies outside guest RAM below "
			         "%llu MiB; raise memsize", what, i, (unsigned long long)paddr,
			         (unsigned long long)memsz, (unsigned long long)(vm->mem.low_size >> 20));
			return -1;
		}
		uint8_t *dst = gmem_ptr(&vm->mem, paddr, memsz);
		if (!dst) {
			snprintf(err, errlen, "%s: kernel segment %u does not map to guest RAM", what, i);
			return -1;
		}
		memcpy(dst, e + off, filesz);
		memset(dst + filesz, 0, memsz - filesz);
		if (paddr < lo)
			lo = paddr;
		if (paddr + memsz > hi)
			hi = paddr + memsz;
	}
	*entry = lb_le64(e + 24);
	if (hi == 0 || *entry < lo || *entry >= hi) {
		snprintf(err, errlen, "%s: the kernel's entry point 0x%llx is outside its segments", what,
		         (unsigned long long)*entry);
		return -1;
	}
	*end = hi;
	return 0;
}
#endif

int linuxboot_load(struct vmx_vm *vm, char *err, size_t errlen)
{
	const char *vmx = vmxcfg_path(vm->cfg);
	const char *kpath = vmxcfg_get(vm->cfg, "linux.kernel");
	const char *ipath = vmxcfg_get(vm->cfg, "linux.initrd");
	const char *cmdline = vmxcfg_get(vm->cfg, "linux.cmdline");
	uint8_t *k = NULL, *initrd = NULL, bp[BP_SIZE];
	size_t klen, ilen = 0;
	struct e820_entry e820[BP_E820_MAX];
	unsigned n820;
	int ret = -1;

	if (lb_read_file(kpath, "linux.kernel", vmx, &k, &klen, err, errlen) != 0)
		return -1;
	if (lb_check_bzimage(k, klen, vmx, kpath, err, errlen) != 0)
		goto out;
	unsigned setup_sects = k[SH_SETUP_SECTS] ? k[SH_SETUP_SECTS] : 4;
	size_t setup_len = (size_t)(setup_sects + 1) * 512;
	size_t pm_len = klen - setup_len;
	uint32_t init_size = lb_le32(k + SH_INIT_SIZE);
	uint64_t low_end = vm->mem.low_size;

	if (LB_KERNEL + (init_size > pm_len ? init_size : pm_len) > low_end) {
		snprintf(err, errlen, "%s: memsize is too small for this kernel (needs %u MiB to unpack)", vmx,
		         (unsigned)((LB_KERNEL + init_size) >> 20) + 1);
		goto out;
	}
	uint64_t entry = LB_KERNEL + 0x200;   /* the decompressor's startup_64 */
	uint64_t kernel_end = LB_KERNEL + init_size;
	const char *mode = "unpacked in the guest";
#ifdef VIREO_HAVE_LZMA
	const char *dec = vmxcfg_get(vm->cfg, "linux.decompress");
	if (!dec || strcmp(dec, "host") == 0) {
		char what[4200];
		uint8_t *elf = NULL;
		size_t elf_len = 0;
		snprintf(what, sizeof(what), "%s: linux.kernel = \"%s\"", vmx, kpath);
		int r = lb_unxz(k + setup_len, pm_len, k, what, &elf, &elf_len, err, errlen);
		if (r < 0)
			goto out;
		if (r > 0) {
			r = lb_load_elf(vm, elf, elf_len, what, &entry, &kernel_end, err, errlen);
			free(elf);
			if (r != 0)
				goto out;
			mode = "unpacked on the host";
		}
	}
	if (entry == LB_KERNEL + 0x200)
#endif
	if (gmem_write(&vm->mem, LB_KERNEL, k + setup_len, pm_len) != 0) {
		snprintf(err, errlen, "%s: cannot place the kernel in guest memory", vmx);
		goto out;
	}

	/* boot_params: zeroed, then the setup header copied from the image. */
	memset(bp, 0, sizeof(bp));
	size_t hdr_end = 0x202 + k[0x201];   /* jump at 0x200 gives the header's end */
	if (hdr_end > sizeof(bp) || hdr_end > klen)
		hdr_end = 0x280;
	memcpy(bp + BP_SETUP_HEADER, k + BP_SETUP_HEADER, hdr_end - BP_SETUP_HEADER);
	bp[SH_TYPE_OF_LOADER] = 0xFF;
	bp[SH_LOADFLAGS] |= LOADFLAG_CAN_USE_HEAP;
	bp[SH_HEAP_END_PTR] = 0x00;
	bp[SH_HEAP_END_PTR + 1] = 0xFE;

	size_t clen = cmdline ? strlen(cmdline) : 0;
	if (gmem_write(&vm->mem, LB_CMDLINE, cmdline ? cmdline : "", clen + 1) != 0)
		goto out;
	lb_put32(bp + SH_CMD_LINE_PTR, (uint32_t)LB_CMDLINE);

	if (ipath && *ipath) {
		if (lb_read_file(ipath, "linux.initrd", vmx, &initrd, &ilen, err, errlen) != 0)
			goto out;
		uint64_t max = lb_le32(k + SH_INITRD_ADDR_MAX);
		if (max == 0 || max > low_end - 1)
			max = low_end - 1;
		uint64_t addr = ilen > max ? 0 : (max + 1 - ilen) & ~0xFFFFFull;
		if (addr < kernel_end) {
			snprintf(err, errlen, "%s: linux.initrd = \"%s\" (%zu MiB) does not fit below the kernel's limit; "
			         "raise memsize", vmx, ipath, ilen >> 20);
			goto out;
		}
		if (gmem_write(&vm->mem, addr, initrd, ilen) != 0)
			goto out;
		lb_put32(bp + SH_RAMDISK_IMAGE, (uint32_t)addr);
		lb_put32(bp + SH_RAMDISK_SIZE, (uint32_t)ilen);
	}

	n820 = linuxboot_e820(vm, e820, BP_E820_MAX);
	memcpy(bp + BP_E820_TABLE, e820, n820 * sizeof(e820[0]));
	bp[BP_E820_ENTRIES] = (uint8_t)n820;

	/* ACPI tables in the BIOS area, RSDP both passed and findable by a scan. */
	uint8_t *tables = gmem_ptr(&vm->mem, PLAT_ACPI_BASE, PLAT_ACPI_SIZE);
	size_t used = 0;
	uint64_t rsdp = 0;
	if (!tables)
		goto out;
	memset(tables, 0, PLAT_ACPI_SIZE);
	if (acpi_build(vm, PLAT_ACPI_BASE, tables, PLAT_ACPI_SIZE, &used, &rsdp, err, errlen) != 0)
		goto out;
	lb_put64(bp + BP_ACPI_RSDP_ADDR, rsdp);

	if (gmem_write(&vm->mem, LB_BOOT_PARAMS, bp, sizeof(bp)) != 0 || lb_page_tables(vm) != 0 ||
	    lb_gdt(vm) != 0) {
		snprintf(err, errlen, "%s: cannot write boot structures", vmx);
		goto out;
	}
	if (lb_set_cpu(vm, entry, err, errlen) != 0)
		goto out;
	vlog_info("direct boot: %s (%zu KiB, %s), initrd %zu KiB, cmdline \"%s\"", kpath, klen >> 10,
	          mode, ilen >> 10, cmdline ? cmdline : "");
	ret = 0;
out:
	free(k);
	free(initrd);
	return ret;
}

# common.s — boot path and helpers shared by the test guests.
#
# Reset (F000:FFF0) -> OUT 0x80 (the first guest instruction, for the start
# benchmark) -> real mode -> 32-bit protected mode -> long mode with its
# own identity page tables -> GDT/TSS/IDT in RAM -> guest_main (each guest
# defines it).  Kernel-mode work is kept tiny: on a host whose KVM emulates
# guest kernel code it runs at ~1 M instructions/s.
#
# Helper calling convention (64-bit): SysV registers, callee saves what it
# clobbers except %rax; usable from CPL3 too (IOPL=3, user pages).

.include "guest.inc"

# ---------------------------------------------------------------- reset vector
.section .reset, "ax"
.code16
.globl reset_vector
reset_vector:
	outb	%al, $0x80              # first instruction: bench_hv_start measures to here
	jmp	real_start

# ---------------------------------------------------------------- real mode
.text
.code16
real_start:
	cli
	cld
	lgdtl	%cs:(gdt_rom_desc - ROM_BASE)
	movl	%cr0, %eax
	orl	$1, %eax
	movl	%eax, %cr0
	ljmpl	$SEL_KCODE32, $pm_start

# ---------------------------------------------------------------- protected mode
.code32
pm_start:
	movw	$SEL_KDATA, %ax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %ss
	movw	%ax, %fs
	movw	%ax, %gs
	movl	$KSTACK_TOP, %esp

	# zero the page tables and counters, then copy the GDT to RAM
	movl	$PML4, %edi
	movl	$(4 * 1024), %ecx
	xorl	%eax, %eax
	rep stosl
	movl	$COUNTERS, %edi
	movl	$64, %ecx
	rep stosl
	movl	$gdt_rom, %esi
	movl	$GDT_RAM, %edi
	movl	$((gdt_rom_end - gdt_rom) / 4), %ecx
	rep movsl

	# 2 MiB pages, all user-accessible: 0-16 MiB RAM, the test device,
	# IOAPIC and LAPIC pages (uncached), and the top 2 MiB (this ROM).
	movl	$(PDPT | 7), PML4
	movl	$(PD0 | 7), PDPT
	movl	$(PD3 | 7), PDPT + 3 * 8
	xorl	%ecx, %ecx
1:	movl	%ecx, %eax
	shll	$21, %eax
	orl	$0x87, %eax
	movl	%eax, PD0(,%ecx,8)
	incl	%ecx
	cmpl	$8, %ecx
	jb	1b
	movl	$(0xFEA00000 | 0x9F), PD3 + 0x1F5 * 8
	movl	$(0xFEC00000 | 0x9F), PD3 + 0x1F6 * 8
	movl	$(0xFEE00000 | 0x9F), PD3 + 0x1F7 * 8
	movl	$(0xFFE00000 | 0x87), PD3 + 0x1FF * 8

	movl	$0x620, %eax            # PAE, OSFXSR, OSXMMEXCPT
	movl	%eax, %cr4
	movl	$PML4, %eax
	movl	%eax, %cr3
	movl	$0xC0000080, %ecx       # EFER.LME
	rdmsr
	orl	$0x100, %eax
	wrmsr
	movl	%cr0, %eax
	andl	$0x9FFFFFFF, %eax       # caches on (clear CD, NW)
	orl	$0x80000022, %eax       # PG, NE, MP
	movl	%eax, %cr0
	ljmpl	$SEL_KCODE64, $lm_start

# ---------------------------------------------------------------- long mode
.code64
lm_start:
	lgdt	gdt_ram_desc(%rip)
	movw	$SEL_KDATA, %ax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %ss
	xorl	%eax, %eax
	movw	%ax, %fs
	movw	%ax, %gs
	movl	$KSTACK_TOP, %esp

	# TSS: RSP0 for interrupts from CPL3, no I/O bitmap (IOPL decides)
	movl	$TSS, %edi
	movl	$26, %ecx
	xorl	%eax, %eax
	rep stosl
	movq	$KSTACK_TOP, TSS + 4
	movw	$104, TSS + 102
	movw	$SEL_TSS, %ax
	ltr	%ax

	# IDT: zero it, then the 32 exception stubs and the handlers used
	movl	$IDT, %edi
	movl	$1024, %ecx
	xorl	%eax, %eax
	rep stosl
	xorl	%ebx, %ebx
	leaq	exc_table(%rip), %r12
2:	movl	%ebx, %edi
	movq	(%r12,%rbx,8), %rsi
	movl	$0x8E, %edx
	call	set_gate
	incl	%ebx
	cmpl	$32, %ebx
	jb	2b
	movl	$VEC_PIT, %edi
	leaq	isr_pit(%rip), %rsi
	movl	$0x8E, %edx
	call	set_gate
	movl	$VEC_PIC, %edi
	leaq	isr_pic(%rip), %rsi
	call	set_gate
	movl	$VEC_LAPIC, %edi
	leaq	isr_lapic(%rip), %rsi
	call	set_gate
	movl	$VEC_SPURIOUS, %edi
	leaq	isr_spurious(%rip), %rsi
	call	set_gate
	lidt	idt_desc(%rip)

	movl	$6, %edi                # #UD doubles as the system call (see isr_ud)
	leaq	isr_ud(%rip), %rsi
	movl	$0x8E, %edx
	call	set_gate

	call	guest_main
	movl	%eax, %edi
	call	exit_status

# set_gate(vector %edi, handler %rsi, type %dl)
.globl set_gate
set_gate:
	movl	%edi, %eax
	shll	$4, %eax
	addl	$IDT, %eax
	movw	%si, (%rax)
	movw	$SEL_KCODE64, 2(%rax)
	movb	$0, 4(%rax)
	movb	%dl, 5(%rax)
	movq	%rsi, %rcx
	shrq	$16, %rcx
	movw	%cx, 6(%rax)
	shrq	$16, %rcx
	movl	%ecx, 8(%rax)
	movl	$0, 12(%rax)
	ret

# ---------------------------------------------------------------- helpers
# putc(%dil): COM1, waiting (bounded) for THR empty.  From CPL3 it is a
# system call.  IOPL=3 is set for user mode, but on a host whose KVM runs
# the guest kernel in software (nested) CPL3 port I/O still faults, INT n
# from CPL3 raises #UD and SYSCALL does not leave CPL3; exceptions are the
# one user->kernel path that works everywhere, so a system call is UD2
# with the number in %eax (isr_ud).
.globl putc
putc:
	pushq	%rax
	movw	%cs, %ax
	testb	$3, %al
	jz	kputc
	pushq	%rcx
	pushq	%r11
	movl	$SYS_PUTC, %eax
	ud2
	popq	%r11
	popq	%rcx
	popq	%rax
	ret
kputc:
	pushq	%rcx
	pushq	%rdx
	movw	$(COM1 + 5), %dx
	movl	$10000, %ecx
1:	inb	%dx, %al
	testb	$0x20, %al
	jnz	2f
	decl	%ecx
	jnz	1b
2:	movw	$COM1, %dx
	movb	%dil, %al
	outb	%al, %dx
	popq	%rdx
	popq	%rcx
	popq	%rax
	ret

# puts(%rsi): zero-terminated string
.globl puts
puts:
	pushq	%rsi
	pushq	%rdi
1:	movzbl	(%rsi), %edi
	testl	%edi, %edi
	jz	2f
	call	putc
	incq	%rsi
	jmp	1b
2:	popq	%rdi
	popq	%rsi
	ret

# puthex(%rdi): 16 hex digits
.globl puthex
puthex:
	pushq	%rcx
	pushq	%rdx
	pushq	%rdi
	movq	%rdi, %rdx
	movl	$16, %ecx
1:	rolq	$4, %rdx
	movl	%edx, %edi
	andl	$0xF, %edi
	cmpl	$10, %edi
	jb	2f
	addl	$('a' - '0' - 10), %edi
2:	addl	$'0', %edi
	call	putc
	decl	%ecx
	jnz	1b
	popq	%rdi
	popq	%rdx
	popq	%rcx
	ret

# putdec(%rdi): unsigned decimal
.globl putdec
putdec:
	pushq	%rax
	pushq	%rcx
	pushq	%rdx
	pushq	%rsi
	subq	$32, %rsp
	leaq	31(%rsp), %rsi
	movb	$0, (%rsi)
	movq	%rdi, %rax
	movl	$10, %ecx
1:	xorl	%edx, %edx
	divq	%rcx
	addb	$'0', %dl
	decq	%rsi
	movb	%dl, (%rsi)
	testq	%rax, %rax
	jnz	1b
	call	puts
	addq	$32, %rsp
	popq	%rsi
	popq	%rdx
	popq	%rcx
	popq	%rax
	ret

# exit_status(%edi): the test device ends the VM with this status
.globl exit_status
exit_status:
	movl	$TESTDEV, %eax
	movl	%edi, TD_EXIT(%rax)
1:	pause
	jmp	1b

# read_ns() -> %rax: the test device's virtual nanoseconds
.globl read_ns
read_ns:
	movl	$TESTDEV, %eax
	movq	TD_NS(%rax), %rax
	ret

# enter_user(entry %rdi, rflags %rsi): iretq to CPL3; does not return
.globl enter_user
enter_user:
	movw	$(SEL_UDATA | 3), %ax
	movw	%ax, %ds
	movw	%ax, %es
	pushq	$(SEL_UDATA | 3)
	pushq	$USTACK_TOP
	pushq	%rsi
	pushq	$(SEL_UCODE64 | 3)
	pushq	%rdi
	iretq

# Kernel-mode platform helpers
.globl pic_mask_all
pic_mask_all:
	movb	$0xFF, %al
	outb	%al, $0x21
	outb	%al, $0xA1
	ret

.globl lapic_enable
lapic_enable:
	movl	$LAPIC, %eax
	movl	$0, 0x80(%rax)          # TPR
	movl	$0x1FF, 0xF0(%rax)      # SVR: enabled, spurious vector 0xFF
	ret

# lapic_write(offset %edi, value %esi)
.globl lapic_write
lapic_write:
	movl	$LAPIC, %eax
	addl	%edi, %eax
	movl	%esi, (%rax)
	ret

# ioapic_write(register %edi, value %esi)
.globl ioapic_write
ioapic_write:
	movl	$IOAPIC, %eax
	movl	%edi, (%rax)
	movl	%esi, 0x10(%rax)
	ret

# pit_start_1khz: channel 0, mode 2, divisor 1193
.globl pit_start_1khz
pit_start_1khz:
	movb	$0x34, %al
	outb	%al, $0x43
	movb	$(1193 & 0xFF), %al
	outb	%al, $0x40
	movb	$(1193 >> 8), %al
	outb	%al, $0x40
	ret

# ---------------------------------------------------------------- interrupts
isr_pit:
	incq	TICKS_PIT
	pushq	%rax
	movl	$LAPIC, %eax
	movl	$0, 0xB0(%rax)          # LAPIC EOI
	popq	%rax
	iretq

isr_pic:
	incq	TICKS_PIC
	pushq	%rax
	movb	$0x20, %al              # 8259 non-specific EOI
	outb	%al, $0x20
	popq	%rax
	iretq

isr_lapic:
	incq	TICKS_LAPIC
	pushq	%rax
	movl	$LAPIC, %eax
	movl	$0, 0xB0(%rax)
	popq	%rax
	iretq

isr_spurious:
	iretq

# #UD: UD2 from CPL3 is a system call (%eax = SYS_EXIT: exit with status
# %edi; SYS_PUTC: putc(%dil)); any other #UD is a fault.
isr_ud:
	testb	$3, 8(%rsp)
	jz	exc_6
	pushq	%rsi
	movq	8(%rsp), %rsi
	cmpw	$0x0B0F, (%rsi)         # UD2 = 0F 0B
	popq	%rsi
	jne	exc_6
	addq	$2, (%rsp)
	cmpl	$SYS_PUTC, %eax
	jne	1f
	call	kputc_call
	iretq
1:	cmpl	$SYS_EXIT, %eax
	jne	2f
	leaq	msg_sysexit(%rip), %rsi
	call	puts
	call	exit_status
2:	iretq

kputc_call:
	pushq	%rax
	jmp	kputc

# user_exit(status %edi): from CPL3, exit through the system call
.globl user_exit
user_exit:
	movl	$SYS_EXIT, %eax
	ud2
	jmp	.

.macro EXC_NOERR n
exc_\n:
	pushq	$0
	pushq	$\n
	jmp	exc_common
.endm
.macro EXC_ERR n
exc_\n:
	pushq	$\n
	jmp	exc_common
.endm
.irp n, 0,1,2,3,4,5,6,7,9,15,16,18,19,20,22,23,24,25,26,27,28,31
EXC_NOERR \n
.endr
.irp n, 8,10,11,12,13,14,17,21,29,30
EXC_ERR \n
.endr

# Any exception is a failure: print it and exit with 0x80 | vector.
exc_common:
	leaq	msg_fault(%rip), %rsi
	call	puts
	movq	(%rsp), %rdi
	call	puthex
	leaq	msg_err(%rip), %rsi
	call	puts
	movq	8(%rsp), %rdi
	call	puthex
	leaq	msg_rip(%rip), %rsi
	call	puts
	movq	16(%rsp), %rdi
	call	puthex
	leaq	msg_cr2(%rip), %rsi
	call	puts
	movq	%cr2, %rdi
	call	puthex
	movl	$'\n', %edi
	call	putc
	movq	(%rsp), %rdi
	orl	$0x80, %edi
	call	exit_status

# ---------------------------------------------------------------- data (ROM)
.section .rodata
.balign 8
exc_table:
.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.quad	exc_\n
.endr

.balign 8
gdt_rom:
	.quad	0
	.quad	0x00CF9B000000FFFF      # 0x08 code32, accessed (no write to ROM on load)
	.quad	0x00CF93000000FFFF      # 0x10 data
	.quad	0x00AF9B000000FFFF      # 0x18 code64
	.quad	0x00CF93000000FFFF      # 0x20 data (unused)
	.quad	0x00CFF3000000FFFF      # 0x28 user data, DPL3
	.quad	0x00AFFB000000FFFF      # 0x30 user code64, DPL3
	.quad	0x0000890000000067 | (TSS << 16)   # 0x38 TSS (base < 16 MiB)
	.quad	0
gdt_rom_end:

gdt_rom_desc:
	.word	gdt_rom_end - gdt_rom - 1
	.long	gdt_rom
gdt_ram_desc:
	.word	gdt_rom_end - gdt_rom - 1
	.quad	GDT_RAM
idt_desc:
	.word	256 * 16 - 1
	.quad	IDT

msg_fault:   .asciz "FAULT vector="
msg_err:     .asciz " error="
msg_rip:     .asciz " rip="
msg_cr2:     .asciz " cr2="
msg_sysexit: .asciz "syscall: exit\n"

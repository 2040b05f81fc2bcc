/*
 * t_syscall.S — SYSCALL/SYSRET (64-bit and to compatibility mode, LSTAR,
 * CSTAR, SFMASK, RCX/R11), SYSENTER/SYSEXIT (64-bit), SWAPGS.
 */
#include "common.inc"

.macro UFAIL
	ud2                             /* user mode: an unexpected #UD fails the test */
.endm

	.code64
test_main:
	movq %rsp, kstack(%rip)
	/* STAR: SYSCALL CS 0x18/SS 0x20; SYSRET base 0x28 (CS32 0x2b, SS 0x33, CS64 0x3b) */
	movl $0xc0000081, %ecx
	xorl %eax, %eax
	movl $0x00280018, %edx
	wrmsr
	movl $0xc0000082, %ecx
	movl $sys64, %eax
	xorl %edx, %edx
	wrmsr
	movl $0xc0000083, %ecx
	movl $sys32, %eax
	wrmsr
	movl $0xc0000084, %ecx
	movl $0x600, %eax               /* SFMASK: IF, DF */
	wrmsr
	movl $0x174, %ecx
	movl $SEL_CODE64, %eax
	wrmsr
	movl $0x175, %ecx
	movl $0x48000, %eax
	wrmsr
	movl $0x176, %ecx
	movl $sysenter_entry, %eax
	wrmsr
	pushq $(SEL_UDATA | 3)
	pushq $0x50000
	pushq $0x402                    /* DF set, IF clear */
	pushq $(SEL_UCODE64 | 3)
	pushq $user64
	iretq

user64:
	movq $42, %rax
	syscall
after_sys1:
	cmpq $43, %rax
	je 1f
	UFAIL
1:	movq %cs, %rax
	cmpq $0x3b, %rax
	je 1f
	UFAIL
1:	movq $1, %rax
	syscall                         /* comes back in compatibility mode at user32 */
	UFAIL

	.code32
user32:
	movl %cs, %eax
	cmpl $0x2b, %eax
	je 1f
	ud2
1:	movl $7, %eax
	syscall
after_sys32:
	ud2

	.code64
user64b:
	sysenter
	UFAIL
user64c:
	movq %cs, %rax
	cmpq $0x3b, %rax
	je 1f
	UFAIL
1:	movq $2, %rax
	syscall
	UFAIL

sys64:
	movq %rsp, user_rsp(%rip)
	movq kstack(%rip), %rsp
	movq %cs, %r8
	CHECK_EQ %r8, $SEL_CODE64, 30
	movq %ss, %r8
	CHECK_EQ %r8, $SEL_KDATA, 31
	pushfq
	popq %r8
	testq $0x600, %r8
	jz 1f
	movb $32, %al
	jmp fail
1:	cmpq $42, %rax
	je s42
	cmpq $1, %rax
	je s1
	cmpq $2, %rax
	je pass
	movb $34, %al
	jmp fail
s42:
	CHECK_EQ %rcx, $after_sys1, 35
	testq $0x400, %r11              /* R11 = user RFLAGS, DF was set */
	jnz 1f
	movb $33, %al
	jmp fail
1:
	movq $43, %rax
	movq user_rsp(%rip), %rsp
	sysretq
s1:
	movl $user32, %ecx
	movl $0x2, %r11d
	movq $0x4f000, %rsp
	sysretl

sys32:
	movq kstack(%rip), %rsp
	CHECK_EQ %rax, $7, 36
	CHECK_EQ %rcx, $after_sys32, 37
	pushq $(SEL_UDATA | 3)
	pushq $0x50000
	pushq $0x2
	pushq $(SEL_UCODE64 | 3)
	pushq $user64b
	iretq

sysenter_entry:
	movq %cs, %rax
	CHECK_EQ %rax, $SEL_CODE64, 38
	CHECK_EQ %rsp, $0x48000, 39
	movl $0xc0000102, %ecx          /* KERNEL_GS_BASE */
	movl $0x1234000, %eax
	xorl %edx, %edx
	wrmsr
	swapgs
	movl $0xc0000101, %ecx          /* GS_BASE */
	rdmsr
	CHECK_EQ %rax, $0x1234000, 40
	swapgs
	rdmsr
	CHECK_EQ %rax, $0, 41
	movq $user64c, %rdx
	movq $0x50000, %rcx
	.byte 0x48, 0x0f, 0x35          /* SYSEXIT with REX.W: to 64-bit user */

	.data
kstack: .quad 0
user_rsp: .quad 0
	.text

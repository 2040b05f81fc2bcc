# guest_boot.s — boot to long mode, check the VMware CPUID identity, print
# from CPL3 (COM1 through a system call), and exit through a system call.
.include "guest.inc"
	.text
	.code64
	.globl	guest_main
guest_main:
	leaq	msg_lm(%rip), %rsi
	call	puts
	xorl	%r15d, %r15d            # failure bits

	movl	$1, %eax
	cpuid
	btl	$31, %ecx               # hypervisor present
	jc	1f
	orl	$1, %r15d
1:	movl	$0x40000000, %eax
	cpuid
	cmpl	$0x40000010, %eax
	jae	2f
	orl	$2, %r15d
2:	cmpl	$0x61774D56, %ebx       # "VMwa"
	jne	3f
	cmpl	$0x4D566572, %ecx       # "reVM"
	jne	3f
	cmpl	$0x65726177, %edx       # "ware"
	je	4f
3:	orl	$4, %r15d
4:	movl	$0x40000100, %eax       # no KVM signature anywhere Linux looks first
	cpuid
	cmpl	$0x4B4D564B, %ebx       # "KVMK"
	jne	5f
	orl	$8, %r15d
5:	movl	$0x40000010, %eax
	cpuid
	movl	%eax, %r12d
	movl	%ebx, %r13d
	testl	%eax, %eax
	jnz	6f
	orl	$16, %r15d
6:	# features that are not virtualised must not be offered
	movl	$1, %eax
	cpuid
	testl	$((1 << 3) | (1 << 5)), %ecx    # MONITOR, VMX
	jz	8f
	orl	$32, %r15d
8:	xorl	%eax, %eax
	cpuid
	movl	%eax, %r14d                     # highest basic leaf
	cmpl	$0xA, %r14d
	jb	9f
	movl	$0xA, %eax
	xorl	%ecx, %ecx
	cpuid
	testb	%al, %al                        # PMU version
	jz	9f
	orl	$64, %r15d
9:	cmpl	$7, %r14d
	jb	10f
	movl	$7, %eax
	xorl	%ecx, %ecx
	cpuid
	testl	$((1 << 4) | (1 << 11)), %ebx   # HLE, RTM
	jz	10f
	orl	$128, %r15d
10:	leaq	msg_cpuid(%rip), %rsi
	call	puts
	movl	%r12d, %edi
	call	putdec
	leaq	msg_apic(%rip), %rsi
	call	puts
	movl	%r13d, %edi
	call	putdec
	movl	$'\n', %edi
	call	putc
	testl	%r15d, %r15d
	jz	7f
	leaq	msg_bad(%rip), %rsi
	call	puts
	movl	%r15d, %edi
	call	puthex
	movl	$'\n', %edi
	call	putc
	movl	%r15d, %eax
	andl	$0x3F, %eax
	orl	$0x40, %eax
	ret                             # common.s exits with this status
7:	leaq	msg_policy(%rip), %rsi
	call	puts
	leaq	user_main(%rip), %rdi
	movl	$USER_RFLAGS, %esi
	call	enter_user

user_main:
	movw	%cs, %ax
	andl	$3, %eax
	cmpl	$3, %eax
	jne	1f
	leaq	msg_user(%rip), %rsi
	call	puts
	movl	$STATUS_OK, %edi
	call	user_exit
1:	movl	$0x7F, %edi
	call	user_exit
	jmp	.

	.section .rodata
msg_lm:    .asciz "boot: long mode ok\n"
msg_cpuid: .asciz "cpuid: VMwareVMware tsc_khz="
msg_apic:  .asciz " apic_khz="
msg_bad:   .asciz "cpuid: FAILED checks="
msg_policy: .asciz "cpuid: no MONITOR, VMX, PMU or TSX offered\n"
msg_user:  .asciz "user: hello from CPL3\n"

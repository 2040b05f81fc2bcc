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
6:	leaq	msg_cpuid(%rip), %rsi
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
	movl	%r15d, %eax
	orl	$0x40, %eax
	ret                             # common.s exits with this status
7:	leaq	user_main(%rip), %rdi
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
msg_bad:   .asciz "cpuid: unexpected hypervisor identity\n"
msg_user:  .asciz "user: hello from CPL3\n"

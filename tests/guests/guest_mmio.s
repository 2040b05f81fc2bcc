# guest_mmio.s — the Vireo test device from CPL3: ID, SCRATCH read-back,
# COUNTER increments per read, SCRATCH64 with 8-byte accesses, NS advances.
.include "guest.inc"
	.text
	.code64
	.globl	guest_main
guest_main:
	movl	$TESTDEV, %eax
	movl	TD_ID(%rax), %edi       # one access from CPL0 as well
	leaq	msg_kid(%rip), %rsi
	call	puts
	call	puthex
	movl	$'\n', %edi
	call	putc
	leaq	user_main(%rip), %rdi
	movl	$USER_RFLAGS, %esi
	call	enter_user

user_main:
	xorl	%r15d, %r15d
	movl	$TESTDEV, %ebx
	movl	TD_ID(%rbx), %eax
	cmpl	$TD_ID_VALUE, %eax
	je	1f
	orl	$1, %r15d
1:	movl	$0x12345678, TD_SCRATCH(%rbx)
	movl	TD_SCRATCH(%rbx), %eax
	cmpl	$0x12345678, %eax
	je	2f
	orl	$2, %r15d
2:	movl	TD_COUNTER(%rbx), %ecx
	movl	TD_COUNTER(%rbx), %edx
	incl	%ecx
	cmpl	%ecx, %edx
	je	3f
	orl	$4, %r15d
3:	movabsq	$0x1122334455667788, %rcx
	movq	%rcx, TD_SCRATCH64(%rbx)
	movq	TD_SCRATCH64(%rbx), %rdx
	cmpq	%rcx, %rdx
	je	4f
	orl	$8, %r15d
4:	movq	TD_NS(%rbx), %r12
	movl	$100000, %ecx
5:	decl	%ecx
	jnz	5b
	movq	TD_NS(%rbx), %r13
	testq	%r12, %r12
	jz	6f
	cmpq	%r12, %r13
	ja	7f
6:	orl	$16, %r15d
7:	testl	%r15d, %r15d
	jnz	8f
	leaq	msg_ok(%rip), %rsi
	call	puts
	movl	$STATUS_OK, %edi
	call	user_exit
8:	leaq	msg_bad(%rip), %rsi
	call	puts
	movl	%r15d, %edi
	call	puthex
	movl	$'\n', %edi
	call	putc
	leal	0x40(%r15), %edi
	call	user_exit
	jmp	.

	.section .rodata
msg_kid: .asciz "mmio: kernel read id="
msg_ok:  .asciz "mmio: user id scratch counter scratch64 ns ok\n"
msg_bad: .asciz "mmio: FAILED checks="

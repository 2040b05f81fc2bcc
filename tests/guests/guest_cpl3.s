# guest_cpl3.s — a CPL3 compute loop with a known result (cpl3_loop.s, the
# same code as the native peer), timed with the test device's NS register.
# ITERS and EXPECTED come from --defsym; EXPECTED = 0 skips the check (bench).
.include "guest.inc"
	.text
	.code64
	.globl	guest_main
guest_main:
	leaq	msg_start(%rip), %rsi
	call	puts
	leaq	user_main(%rip), %rdi
	movl	$USER_RFLAGS, %esi
	call	enter_user

user_main:
	call	read_ns
	movq	%rax, %r12
	movabsq	$ITERS, %rdi
	call	cpl3_loop
	movq	%rax, %r14
	call	read_ns
	subq	%r12, %rax
	movq	%rax, %r13
	leaq	msg_a(%rip), %rsi
	call	puts
	movabsq	$ITERS, %rdi
	call	putdec
	leaq	msg_b(%rip), %rsi
	call	puts
	movq	%r14, %rdi
	call	puthex
	leaq	msg_c(%rip), %rsi
	call	puts
	movq	%r13, %rdi
	call	putdec
	movl	$'\n', %edi
	call	putc
	movabsq	$EXPECTED, %rax
	testq	%rax, %rax
	jz	1f
	cmpq	%rax, %r14
	je	1f
	leaq	msg_bad(%rip), %rsi
	call	puts
	movl	$0x41, %edi
	call	user_exit
1:	movl	$STATUS_OK, %edi
	call	user_exit
	jmp	.

	.section .rodata
msg_start: .asciz "cpl3: start\n"
msg_a:     .asciz "cpl3: iterations="
msg_b:     .asciz " result="
msg_c:     .asciz " ns="
msg_bad:   .asciz "cpl3: FAILED: wrong result\n"

# cpl3_loop.s — the CPL3 workload, shared by the cpl3 guest and the native
# peer of bench_hv_cpl3 (same instructions on both sides).
# uint64_t cpl3_loop(uint64_t n): n rounds of xorshift64, returns their sum.
	.text
	.globl	cpl3_loop
	.type	cpl3_loop, @function
cpl3_loop:
	movabsq	$0x9E3779B97F4A7C15, %rax
	xorl	%edx, %edx
	testq	%rdi, %rdi
	jz	2f
1:	movq	%rax, %rcx
	shlq	$13, %rcx
	xorq	%rcx, %rax
	movq	%rax, %rcx
	shrq	$7, %rcx
	xorq	%rcx, %rax
	movq	%rax, %rcx
	shlq	$17, %rcx
	xorq	%rcx, %rax
	addq	%rax, %rdx
	decq	%rdi
	jnz	1b
2:	movq	%rdx, %rax
	ret
	.size	cpl3_loop, . - cpl3_loop
	.section .note.GNU-stack, "", @progbits

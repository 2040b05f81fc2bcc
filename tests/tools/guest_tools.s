# guest_tools.s — a minimal "guest tools" at CPL0, for the end-to-end test
# through a real vireo-vmx: one RPCI channel (info-get / info-set of
# guestinfo), the balloon (START, GET_TARGET, BATCHED_LOCK up to the
# target), then a TCLO loop like vmtoolsd's that answers reset with
# "OK ATR toolbox", everything else with "OK ", and carries out OS_Halt by
# entering ACPI S5.  High bandwidth is used whenever the host offers it.
.include "guest.inc"
	.equ	BD_MAGIC, 0x564D5868
	.equ	BD_PORT,  0x5658
	.equ	BD_HB,    0x5659
	.equ	P_RPCI,   0x49435052
	.equ	P_TCLO,   0x4F4C4354
	.equ	BL_MAGIC, 0x456C6D6F
	.equ	BL_PORT,  0x5670
	.equ	PM1_CNT,  0x604
	.equ	SMI_CMD,  0xB2
	.equ	CH_RPCI,  0x120000
	.equ	CH_TCLO,  0x120010
	.equ	BUF,      0x100000
	.equ	BATCH,    0x200000
	.equ	BL_PFN0,  0x1000        # balloon pages from 16 MiB up
	.equ	BL_MAX,   8192          # never more than 32 MiB
	.text
	.code64
	.globl	guest_main
guest_main:
	movb	$0xF1, %al              # ACPI_ENABLE, for S5 later
	outb	%al, $SMI_CMD
	leaq	msg_start(%rip), %rsi
	call	puts

	# ---- RPCI ----
	movq	$CH_RPCI, %r12
	movl	$P_RPCI, %ebx
	call	msg_open
	testl	%eax, %eax
	jz	fail
	leaq	req_get(%rip), %r13
	movq	$(req_get_end - req_get), %r14
	call	rpci
	leaq	msg_reply(%rip), %rsi
	call	puts
	movq	$BUF, %rsi
	call	puts
	call	newline
	leaq	req_set(%rip), %r13
	movq	$(req_set_end - req_set), %r14
	call	rpci
	leaq	msg_set(%rip), %rsi
	call	puts
	movq	$BUF, %rsi
	call	puts
	call	newline
	movl	$6, %ecx                # CLOSE
	xorl	%ebx, %ebx
	call	bd_msg

	# ---- balloon ----
	xorl	%ecx, %ecx              # START with the 6.1 x86-64 capabilities
	movq	$0x3E, %rbx
	call	balloon
	leaq	msg_caps(%rip), %rsi
	call	puts
	movl	%ecx, %edi
	call	putdec
	call	newline
	movl	$4, %ecx                # GUEST_ID = Linux
	movq	$1, %rbx
	call	balloon
	movl	$1, %ecx                # GET_TARGET, limit = 64 MiB of pages
	movq	$16384, %rbx
	call	balloon
	movq	%rbx, %r13              # target
	leaq	msg_target(%rip), %rsi
	call	puts
	movq	%r13, %rdi
	call	putdec
	call	newline
	cmpq	$BL_MAX, %r13
	jbe	1f
	movq	$BL_MAX, %r13
1:	xorl	%r14d, %r14d            # locked
2:	cmpq	%r13, %r14
	jae	4f
	movq	%r13, %r15
	subq	%r14, %r15
	cmpq	$512, %r15
	jbe	3f
	movq	$512, %r15
3:	xorl	%ecx, %ecx              # fill the batch page
5:	leaq	BL_PFN0(%r14,%rcx), %rax
	shlq	$12, %rax
	movq	%rax, BATCH(,%rcx,8)
	incq	%rcx
	cmpq	%r15, %rcx
	jb	5b
	movl	$6, %ecx                # BATCHED_LOCK
	movq	$(BATCH >> 12), %rbx
	movq	%r15, %rsi
	call	balloon
	testl	%eax, %eax
	jz	8f
	leaq	msg_lockerr(%rip), %rsi  # the batch failed as a whole
	call	puts
	movl	%eax, %edi
	call	puthex
	call	newline
	jmp	4f
8:	xorl	%ecx, %ecx              # count the accepted entries
	xorl	%edx, %edx
6:	testq	$0x1F, BATCH(,%rcx,8)
	jnz	7f
	incq	%rdx
7:	incq	%rcx
	cmpq	%r15, %rcx
	jb	6b
	testq	%rdx, %rdx
	jz	4f
	addq	%rdx, %r14
	jmp	2b
4:	leaq	msg_locked(%rip), %rsi
	call	puts
	movq	%r14, %rdi
	call	putdec
	call	newline

	# ---- TCLO loop ----
	movq	$CH_TCLO, %r12
	movl	$P_TCLO, %ebx
	call	msg_open
	testl	%eax, %eax
	jz	fail
	leaq	res_ok(%rip), %r13      # the first send is empty
	xorl	%r14d, %r14d
	xorl	%ebp, %ebp              # 1 once OS_Halt was answered
tclo_loop:
	call	msg_send
	testl	%eax, %eax
	jz	fail
	testl	%ebp, %ebp
	jnz	halt
	movq	$BUF, %r13
	call	msg_recv
	testq	%rax, %rax
	js	fail
	jnz	1f
	movl	$20000, %ecx            # nothing queued: wait a little
2:	pause
	decl	%ecx
	jnz	2b
	leaq	res_ok(%rip), %r13
	xorl	%r14d, %r14d
	jmp	tclo_loop
1:	leaq	msg_got(%rip), %rsi
	call	puts
	movq	$BUF, %rsi
	call	puts
	call	newline
	leaq	res_ok(%rip), %r13
	movq	$(res_ok_end - res_ok), %r14
	leaq	cmd_reset(%rip), %rsi
	call	is_cmd
	jnz	3f
	leaq	res_atr(%rip), %r13
	movq	$(res_atr_end - res_atr), %r14
3:	leaq	cmd_halt(%rip), %rsi
	call	is_cmd
	jnz	tclo_loop
	movl	$1, %ebp
	jmp	tclo_loop

halt:	leaq	msg_halt(%rip), %rsi
	call	puts
	movw	$0x2000, %ax            # SLP_EN, SLP_TYP 0 (\_S5)
	movw	$PM1_CNT, %dx
	outw	%ax, %dx
	leaq	msg_nos5(%rip), %rsi
	call	puts
	movl	$0x41, %eax
	ret
fail:	leaq	msg_fail(%rip), %rsi
	call	puts
	movl	$0x40, %eax
	ret

newline:
	pushq	%rdi
	movl	$'\n', %edi
	call	putc
	popq	%rdi
	ret

# is_cmd(%rsi: NUL-terminated name): ZF set when BUF holds exactly it.
is_cmd:
	pushq	%rcx
	movq	$BUF, %rdi
1:	movb	(%rsi), %al
	cmpb	(%rdi), %al
	jne	2f
	incq	%rsi
	incq	%rdi
	testb	%al, %al
	jnz	1b
2:	popq	%rcx
	ret

# balloon(%ecx cmd, %rbx arg1, %rsi arg2) -> %eax status, %rbx, %ecx
balloon:
	movl	$BL_MAGIC, %eax
	movl	$BL_PORT, %edx
	inl	%dx, %eax
	ret

# bd_msg(%ecx type, %ebx arg) on the channel at (%r12): one MESSAGE call.
bd_msg:
	shll	$16, %ecx
	orl	$30, %ecx
	movl	(%r12), %edx
	shll	$16, %edx
	orl	$BD_PORT, %edx
	movl	4(%r12), %esi
	movl	8(%r12), %edi
	movl	$BD_MAGIC, %eax
	inl	%dx, %eax
	ret

# msg_open(%ebx protocol) -> %eax 1 ok; fills (%r12) with id and cookies.
msg_open:
	orl	$0x80000000, %ebx
	movl	$0, (%r12)
	xorl	%ecx, %ecx
	call	bd_msg
	shrl	$16, %ecx
	testl	$1, %ecx
	jz	1f
	shrl	$16, %edx
	movl	%edx, (%r12)
	movl	%esi, 4(%r12)
	movl	%edi, 8(%r12)
	movl	$1, %eax
	ret
1:	xorl	%eax, %eax
	ret

# msg_send(%r13 buffer, %r14 length) -> %eax 1 ok.
msg_send:
	movl	$1, %ecx
	movl	%r14d, %ebx
	call	bd_msg
	shrl	$16, %ecx
	testl	$1, %ecx
	jz	9f
	testq	%r14, %r14
	jz	8f
	testl	$0x80, %ecx
	jnz	5f
	xorl	%r15d, %r15d
1:	cmpq	%r14, %r15
	jae	8f
	movl	(%r13,%r15), %ebx
	movl	$2, %ecx
	call	bd_msg
	shrl	$16, %ecx
	testl	$1, %ecx
	jz	9f
	addq	$4, %r15
	jmp	1b
5:	pushq	%rbp                    # high bandwidth: one REP OUTSB
	movl	$BD_MAGIC, %eax
	movl	$0x10000, %ebx
	movq	%r14, %rcx
	movl	(%r12), %edx
	shll	$16, %edx
	orl	$BD_HB, %edx
	movq	%r13, %rsi
	movl	8(%r12), %edi
	movl	4(%r12), %ebp
	cld
	rep outsb
	popq	%rbp
	shrl	$16, %ebx
	testl	$1, %ebx
	jz	9f
8:	movl	$1, %eax
	ret
9:	xorl	%eax, %eax
	ret

# msg_recv(%r13 buffer) -> %rax length (0: nothing), -1 on failure; NUL-terminates.
msg_recv:
	movl	$3, %ecx
	xorl	%ebx, %ebx
	call	bd_msg
	shrl	$16, %ecx
	testl	$1, %ecx
	jz	9f
	testl	$2, %ecx
	jz	7f
	movl	%ebx, %r14d
	testl	$0x80, %ecx
	jnz	5f
	xorl	%r15d, %r15d
1:	cmpq	%r14, %r15
	jae	6f
	movl	$4, %ecx
	movl	$1, %ebx
	call	bd_msg
	shrl	$16, %ecx
	testl	$1, %ecx
	jz	9f
	movl	%ebx, (%r13,%r15)
	addq	$4, %r15
	jmp	1b
5:	pushq	%rbp                    # high bandwidth: one REP INSB
	movl	$BD_MAGIC, %eax
	movl	$0x10000, %ebx
	movq	%r14, %rcx
	movl	(%r12), %edx
	shll	$16, %edx
	orl	$BD_HB, %edx
	movl	4(%r12), %esi
	movq	%r13, %rdi
	movl	8(%r12), %ebp
	cld
	rep insb
	popq	%rbp
	shrl	$16, %ebx
	testl	$1, %ebx
	jz	9f
6:	movl	$5, %ecx                # RECVSTATUS: got it
	movl	$1, %ebx
	call	bd_msg
	shrl	$16, %ecx
	testl	$1, %ecx
	jz	9f
	movb	$0, (%r13,%r14)
	movq	%r14, %rax
	ret
7:	xorl	%eax, %eax
	ret
9:	movq	$-1, %rax
	ret

# rpci(%r13 request, %r14 length): the reply lands in BUF.
rpci:
	call	msg_send
	testl	%eax, %eax
	jz	1f
	movq	$BUF, %r13
	call	msg_recv
	testq	%rax, %rax
	jns	2f
1:	movq	$BUF, %rax
	movl	$0x4C494146, (%rax)     # "FAIL"
	movb	$0, 4(%rax)
2:	ret

	.section .rodata
msg_start:  .asciz "tools: start\n"
msg_reply:  .asciz "tools: reply="
msg_set:    .asciz "tools: set="
msg_caps:   .asciz "balloon: caps="
msg_target: .asciz "balloon: target="
msg_lockerr: .asciz "balloon: batch status="
msg_locked: .asciz "balloon: locked="
msg_got:    .asciz "tools: got "
msg_halt:   .asciz "tools: halting\n"
msg_nos5:   .asciz "tools: FAILED: still running after S5\n"
msg_fail:   .asciz "tools: FAILED: channel error\n"
cmd_reset:  .asciz "reset"
cmd_halt:   .asciz "OS_Halt"
req_get:    .ascii "info-get guestinfo.greeting"
req_get_end:
req_set:    .ascii "info-set guestinfo.fromguest set by the guest"
req_set_end:
res_ok:     .ascii "OK "
res_ok_end:
res_atr:    .ascii "OK ATR toolbox"
res_atr_end:
	.byte 0, 0, 0, 0

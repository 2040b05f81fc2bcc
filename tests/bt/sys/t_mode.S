/*
 * t_mode.S — mode switches: real -> protected -> long (common.inc) ->
 * compatibility -> 64-bit -> compatibility -> legacy protected (paging
 * off) with 32-bit PSE paging and PAE paging round trips -> 16-bit
 * protected -> real mode, with an INT through the real-mode IVT at the end.
 */
#include "common.inc"

.macro FAIL32 code
	movb $\code, %al
	outb %al, $EXIT_PORT
	hlt
.endm

	.code64
test_main:
	/* CPUID identity on the way */
	movl $0x40000000, %eax
	cpuid
	CHECK_EQ %rbx, $0x61774d56, 1
	movl $1, %eax
	cpuid
	btl $31, %ecx
	jc 1f
	movb $2, %al
	jmp fail
1:
	ljmpl *compat_ptr(%rip)

	.code32
compat32:
	xorl %eax, %eax
	.byte 0x40                      /* INC EAX here; a REX prefix in 64-bit mode */
	cmpl $1, %eax
	je 1f
	FAIL32 3
1:	movl $0xc0000080, %ecx
	rdmsr
	testl $0x400, %eax              /* still IA-32e (LMA) */
	jnz 1f
	FAIL32 4
1:	ljmpl $SEL_CODE64, $back64

	.code64
back64:
	movabsq $0x123456789a, %rax
	shrq $32, %rax
	CHECK_EQ %rax, $0x12, 5
	ljmpl *compat2_ptr(%rip)

	.code32
compat2:
	/* Leave IA-32e mode: paging off clears LMA, then LME may go. */
	movl %cr0, %eax
	andl $0x7fffffff, %eax
	movl %eax, %cr0
	movl $0xc0000080, %ecx
	rdmsr
	testl $0x400, %eax
	jz 1f
	FAIL32 6
1:	andl $~0x100, %eax
	wrmsr
	movw $SEL_DATA, %ax
	movw %ax, %ss

	/* REP STOS/MOVS with 32-bit addressing over flat segments, paging off
	 * (bt's bulk path): across page boundaries, registers as the CPU
	 * leaves them. */
	movw %ax, %ds
	movw %ax, %es
	cld
	movl $0x1E0FF4, %edi
	movl $0x801, %ecx               /* 8196 bytes: three pages touched */
	movl $0x5a5aa5a5, %eax
	rep stosl
	cmpl $0x1E2FF8, %edi
	je 1f
	FAIL32 10
1:	testl %ecx, %ecx
	jz 1f
	FAIL32 11
1:	cmpl $0x5a5aa5a5, 0x1E0FF4
	je 1f
	FAIL32 12
1:	cmpl $0x5a5aa5a5, 0x1E1FFC      /* the last dword of a page */
	je 1f
	FAIL32 14
1:	cmpl $0x5a5aa5a5, 0x1E2FF4
	je 1f
	FAIL32 15
1:	cmpl $0, 0x1E2FF8               /* one past the end: untouched */
	je 1f
	FAIL32 16
1:	movl $0x1E0FF7, %esi            /* copy 5000 bytes, source and destination unaligned */
	movl $0x1E5001, %edi
	movl $5000, %ecx
	rep movsb
	cmpl $0x1E0FF7 + 5000, %esi
	jne 2f
	cmpl $0x1E5001 + 5000, %edi
	jne 2f
	movl 0x1E5001 + 4000, %eax      /* bytes 0x1E1F97.. of the pattern */
	cmpl 0x1E0FF7 + 4000, %eax
	jne 2f
	cmpb $0, 0x1E5001 + 5000
	je 1f
2:	FAIL32 13
1:

	/* 32-bit paging, 4 MiB PSE pages: 0..4M identity, 4M..8M -> 0 */
	movl $0x83, 0x30000
	movl $0x83, 0x30004
	movl $0xdeadbeef, 0x1F0000
	movl %cr4, %eax
	andl $~0x20, %eax               /* PAE off */
	orl $0x10, %eax                 /* PSE on */
	movl %eax, %cr4
	movl $0x30000, %eax
	movl %eax, %cr3
	movl %cr0, %eax
	orl $0x80000000, %eax
	movl %eax, %cr0
	movl 0x5F0000, %eax             /* 4M + 0x1F0000 */
	cmpl $0xdeadbeef, %eax
	je 1f
	FAIL32 7
1:	movl $0x5E8000, %edi            /* REP STOS through the page tables */
	movl $0x400, %ecx
	movl $0x600dcafe, %eax
	rep stosl
	cmpl $0x600dcafe, 0x1E8FFC      /* the same bytes at 4M below */
	je 1f
	FAIL32 17
1:	movl %cr0, %eax
	andl $0x7fffffff, %eax
	movl %eax, %cr0

	/* PAE paging (3 levels), 2 MiB pages: 0..2M identity, 4M..6M -> 0 */
	movl $0x32001, 0x31000          /* PDPTE0 -> PD at 0x32000 */
	movl $0, 0x31004
	movl $0x83, 0x32000
	movl $0, 0x32004
	movl $0x83, 0x32010             /* PDE 2 (4 MiB) -> phys 0 */
	movl $0, 0x32014
	movl %cr4, %eax
	orl $0x20, %eax
	movl %eax, %cr4
	movl $0x31000, %eax
	movl %eax, %cr3
	movl %cr0, %eax
	orl $0x80000000, %eax
	movl %eax, %cr0
	movl 0x5F0000, %eax
	cmpl $0xdeadbeef, %eax
	je 1f
	FAIL32 8
1:	movl %cr0, %eax
	andl $0x7fffffff, %eax
	movl %eax, %cr0

	/* down to 16-bit protected mode, then real mode */
	ljmpl $SEL_CODE16, $pm16

	.code16
pm16:
	movw $SEL_DATA16, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	movl %cr0, %eax
	andl $~1, %eax
	movl %eax, %cr0
	ljmpw $0, $real16
real16:
	xorw %ax, %ax
	movw %ax, %ds
	movw %ax, %ss
	movw $0x1000, %sp
	lidtw rm_idt
	movw $rm_handler, 0x30 * 4
	movw $0, 0x30 * 4 + 2
	movb $0, rm_flag
	int $0x30
	cmpb $1, rm_flag
	je 1f
	movb $9, %al
	outb %al, $EXIT_PORT
	hlt
1:	movw $'o', %ax
	outb %al, $PUTC_PORT
	movw $'k', %ax
	outb %al, $PUTC_PORT
	movw $'\n', %ax
	outb %al, $PUTC_PORT
	xorw %ax, %ax
	outb %al, $EXIT_PORT
	hlt
rm_handler:
	movb $1, rm_flag
	iret

	.data
compat_ptr:
	.long compat32
	.word SEL_CODE32
compat2_ptr:
	.long compat2
	.word SEL_CODE32
rm_idt:
	.word 0x3ff
	.long 0
rm_flag:
	.byte 0
	.text

.code16
.globl _start
_start:
	cli
	xor %ax, %ax
	mov %ax, %ds
	lgdtl gdtr
	mov %cr0, %eax
	or $1, %eax
	mov %eax, %cr0
	ljmpl $0x08, $pm
.code32
pm:
	mov $0x10, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	mov $0x7000, %esp
	mov $4, %eax ; xor %ebx, %ebx ; call dispi
	mov $1, %eax ; mov $1920, %ebx ; call dispi
	mov $2, %eax ; mov $1080, %ebx ; call dispi
	mov $3, %eax ; mov $32, %ebx ; call dispi
	mov $4, %eax ; mov $0x41, %ebx ; call dispi
	mov $0x80001010, %eax	/* 00:02.0 BAR0 */
	mov $0xcf8, %dx
	out %eax, %dx
	mov $0xcfc, %dx
	in %dx, %eax
	and $0xfffffff0, %eax
	mov %eax, lfb
	mov $'R', %al
	call putb
next:
	call getb
	cmp $'F', %al
	jne next
	call getd
	mov %eax, colour
	call getd
	mov %eax, rx
	call getd
	mov %eax, ry
	call getd
	mov %eax, rw
	call getd
	mov %eax, rh
	mov ry, %eax
	imul $7680, %eax, %edi
	mov rx, %eax
	lea (%edi,%eax,4), %edi
	add lfb, %edi
	mov rh, %edx
	cld
row:
	test %edx, %edx
	jz done
	push %edi
	mov rw, %ecx
	mov colour, %eax
	rep stosl
	pop %edi
	add $7680, %edi
	dec %edx
	jmp row
done:
	mov $'K', %al
	call putb
	jmp next

dispi:	/* index eax, value ebx */
	mov $0x1ce, %dx
	out %ax, %dx
	mov $0x1cf, %dx
	mov %bx, %ax
	out %ax, %dx
	ret
getb:
	mov $0x3fd, %dx
1:	in %dx, %al
	test $1, %al
	jz 1b
	mov $0x3f8, %dx
	in %dx, %al
	ret
putb:
	mov %al, %ah
	mov $0x3fd, %dx
1:	in %dx, %al
	test $0x20, %al
	jz 1b
	mov $0x3f8, %dx
	mov %ah, %al
	out %al, %dx
	ret
getd:
	push %ebx
	call getb
	movzbl %al, %ebx
	call getb
	movzbl %al, %eax
	shl $8, %eax
	or %eax, %ebx
	call getb
	movzbl %al, %eax
	shl $16, %eax
	or %eax, %ebx
	call getb
	movzbl %al, %eax
	shl $24, %eax
	or %eax, %ebx
	mov %ebx, %eax
	pop %ebx
	ret

.p2align 3
gdt:
	.quad 0
	.quad 0x00CF9A000000FFFF
	.quad 0x00CF92000000FFFF
gdtr:
	.word 23
	.long gdt
lfb: .long 0
colour: .long 0
rx: .long 0
ry: .long 0
rw: .long 0
rh: .long 0
	.org 510
	.byte 0x55, 0xAA

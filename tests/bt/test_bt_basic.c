/*
 * test_bt_basic.c — hand-written programs on the bt engine: loops, calls,
 * string instructions, self-modifying code, exceptions, the lazy flags.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bthost.h"
#include "../unit/t.h"

static struct bthost h;

static int run(const uint8_t *code, size_t len, struct bth_state *in, struct bth_state *out)
{
	bthost_load(&h, code, len);
	in->r.rsp = BTH_STACK - 0x100;
	return bthost_run(&h, in, out);
}

static struct bth_state in, out;

static void *kicker(void *arg)
{
	struct timespec ts = { 0, 50 * 1000 * 1000 };
	nanosleep(&ts, NULL);
	vmm_engine_bt.vcpu_kick(arg);
	return NULL;
}

int main(void)
{
	if (bthost_init(&h, 3)) {
		fprintf(stderr, "bthost_init failed\n");
		return 1;
	}
	memset(&in, 0, sizeof(in));
	in.fx[0] = 0x7f; in.fx[1] = 0x03;              /* FCW */
	in.fx[24] = 0x80; in.fx[25] = 0x1f;            /* MXCSR */

	/* sum 1..100 with a loop: xor eax,eax; mov ecx,100; l: add eax,ecx; loop l */
	{
		static const uint8_t c[] = { 0x31, 0xc0, 0xb9, 100, 0, 0, 0, 0x01, 0xc8, 0xe2, 0xfc };
		T_EQ_I64(run(c, sizeof(c), &in, &out), 0);
		T_EQ_U64(out.r.rax, 5050);
		T_EQ_U64(out.r.rcx, 0);
		T_EQ_I64(out.vector, -1);
	}
	/* call/ret: call f; jmp end; f: mov ebx, 7; ret; end: */
	{
		static const uint8_t c[] = { 0xe8, 2, 0, 0, 0, 0xeb, 6, 0xbb, 7, 0, 0, 0, 0xc3 };
		T_EQ_I64(run(c, sizeof(c), &in, &out), 0);
		T_EQ_U64(out.r.rbx, 7);
		T_EQ_U64(out.r.rsp, BTH_STACK - 0x100);
	}
	/* rep stosq then rep movsb: fill data[0..64) with rax, copy to data[1024..] */
	{
		static const uint8_t c[] = {
			0x48, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8,      /* mov rax, imm64 */
			0xbf, 0, 0, 0x20, 0,                      /* mov edi, 0x200000 */
			0xb9, 8, 0, 0, 0,                         /* mov ecx, 8 */
			0xf3, 0x48, 0xab,                         /* rep stosq */
			0xbe, 0, 0, 0x20, 0,                      /* mov esi, 0x200000 */
			0xbf, 0, 4, 0x20, 0,                      /* mov edi, 0x200400 */
			0xb9, 64, 0, 0, 0,                        /* mov ecx, 64 */
			0xf3, 0xa4,                               /* rep movsb */
		};
		T_EQ_I64(run(c, sizeof(c), &in, &out), 0);
		T_EQ_U64(out.data[0], 1);
		T_EQ_U64(out.data[63], 8);
		T_EQ_U64(out.data[1024 + 9], 2);
		T_EQ_U64(out.data[1024 + 63], 8);
		T_EQ_U64(out.data[1024 + 64], 0);
		T_EQ_U64(out.r.rdi, 0x200440);
	}
	/* a long REP (chunked: 100000 iterations) */
	{
		static const uint8_t c[] = {
			0x31, 0xc0, 0xbf, 0, 0, 0x20, 0, 0xb9, 0xa0, 0x86, 0x01, 0,   /* ecx = 100000 */
			0x31, 0xd2,                                                    /* edx = 0 */
			0xf3, 0xaa,                                                    /* rep stosb (edi wraps?) no: */
		};
		/* keep edi in the buffer: use DF=1 ... simpler: rep lodsb over the buffer is a read */
		static const uint8_t c2[] = {
			0xbe, 0, 0, 0x20, 0,                 /* mov esi, 0x200000 */
			0xb9, 0x00, 0x10, 0, 0,              /* mov ecx, 4096 */
			0xf3, 0xac,                          /* rep lodsb */
			0xff, 0xc2,                          /* inc edx */
			0x81, 0xfa, 0x19, 0, 0, 0,           /* cmp edx, 25 */
			0x75, 0xea,                          /* jne start */
		};
		(void)c;
		in.data[4095] = 0x5a;
		T_EQ_I64(run(c2, sizeof(c2), &in, &out), 0);
		T_EQ_U64(out.r.rdx, 25);
		T_EQ_U64(out.r.rax & 0xff, 0x5a);
		T_EQ_U64(out.r.rcx, 0);
		in.data[4095] = 0;
	}
	/* self-modifying code: overwrite an immediate that the unit already ran */
	{
		static const uint8_t c[] = {
			0x31, 0xdb,                                  /* 0: xor ebx, ebx */
			0xb8, 1, 0, 0, 0,                            /* 2: mov eax, 1  (imm at +3) */
			0x01, 0xc3,                                  /* 7: add ebx, eax */
			0xc6, 0x04, 0x25, 3, 0, 0x10, 0, 0x05,       /* 9: mov byte [0x100003], 5 */
			0xff, 0xc1,                                  /* 17: inc ecx */
			0x83, 0xf9, 2,                               /* 19: cmp ecx, 2 */
			0x75, 0xea,                                  /* 22: jne 2 */
		};
		in.r.rcx = 0;
		T_EQ_I64(run(c, sizeof(c), &in, &out), 0);
		T_EQ_U64(out.r.rbx, 6);            /* 1 + 5 */
	}
	/* #DE from div by zero reaches the IDT */
	{
		static const uint8_t c[] = { 0x31, 0xc9, 0xf7, 0xf1 };   /* xor ecx,ecx; div ecx */
		T_EQ_I64(run(c, sizeof(c), &in, &out), 0);
		T_EQ_I64(out.vector, 0);
	}
	/* #UD from ud2 */
	{
		static const uint8_t c[] = { 0x0f, 0x0b };
		T_EQ_I64(run(c, sizeof(c), &in, &out), 0);
		T_EQ_I64(out.vector, 6);
	}
	/* lazy flags through a conditional chain: adc carries, setcc, cmov */
	{
		static const uint8_t c[] = {
			0x48, 0xc7, 0xc0, 0xff, 0xff, 0xff, 0xff,   /* mov rax, -1 */
			0x48, 0x83, 0xc0, 0x01,                     /* add rax, 1 -> CF=1 ZF=1 */
			0x48, 0x83, 0xd3, 0x00,                     /* adc rbx, 0 -> rbx = 1 */
			0x0f, 0x94, 0xc1,                           /* setz cl (from adc: 0) */
			0x48, 0x0f, 0x44, 0xd3,                     /* cmovz rdx, rbx (not taken) */
		};
		in.r.rbx = 0;
		in.r.rcx = 0x1234;
		in.r.rdx = 9;
		T_EQ_I64(run(c, sizeof(c), &in, &out), 0);
		T_EQ_U64(out.r.rbx, 1);
		T_EQ_U64(out.r.rcx, 0x1200);
		T_EQ_U64(out.r.rdx, 9);
	}
	/* pushf image has VM/RF clear, reserved bit 1 set */
	{
		static const uint8_t c[] = { 0xf9, 0x9c, 0x5b };     /* stc; pushf; pop rbx */
		T_EQ_I64(run(c, sizeof(c), &in, &out), 0);
		T_EQ_U64(out.r.rbx & 0xfff, 0x003);
	}
	/* 32-bit code (compatibility mode): 0x42 is INC EDX, not a REX prefix;
	 * PUSH/POP are 32-bit; LOOP counts ECX */
	{
		static const uint8_t c[] = {
			0xb8, 0x44, 0x33, 0x22, 0x11,   /* mov eax, 0x11223344 */
			0x50, 0x5b,                     /* push eax; pop ebx */
			0xb9, 5, 0, 0, 0,               /* mov ecx, 5 */
			0x31, 0xd2,                     /* xor edx, edx */
			0x42,                           /* l: inc edx */
			0xe2, 0xfd,                     /* loop l */
			0xe8, 0, 0, 0, 0,               /* call next */
			0x5e,                           /* pop esi */
		};
		struct vmm_segment cs64 = h.sregs.cs;
		h.sregs.cs.l = 0;
		h.sregs.cs.db = 1;
		h.sregs.cs.selector = 0x33;
		T_EQ_I64(run(c, sizeof(c), &in, &out), 0);
		T_EQ_I64(out.vector, -1);
		T_EQ_U64(out.r.rbx & 0xffffffff, 0x11223344);
		T_EQ_U64(out.r.rdx & 0xffffffff, 5);
		T_EQ_U64(out.r.rcx & 0xffffffff, 0);
		T_EQ_U64(out.r.rsi & 0xffffffff, BTH_CODE + 22);
		T_EQ_U64(out.r.rsp & 0xffffffff, BTH_STACK - 0x100);
		h.sregs.cs = cs64;
		vmm_engine_bt.set_sregs(h.vcpu, &h.sregs);
	}
	/* save/restore round trip: the blob restores registers and flags */
	{
		static uint8_t blob[1 << 20];
		struct vmm_regs r, r2;
		vmm_engine_bt.get_regs(h.vcpu, &r);
		long n = vmm_engine_bt.vcpu_save(h.vcpu, blob, sizeof(blob));
		T_ASSERT(n > 0);
		T_EQ_I64(vmm_engine_bt.vcpu_save(h.vcpu, blob, 16), -1);
		struct vmm_regs z;
		memset(&z, 0, sizeof(z));
		z.rflags = 2;
		vmm_engine_bt.set_regs(h.vcpu, &z);
		T_EQ_I64(vmm_engine_bt.vcpu_restore(h.vcpu, blob, (size_t)n), 0);
		vmm_engine_bt.get_regs(h.vcpu, &r2);
		T_ASSERT(memcmp(&r, &r2, sizeof(r)) == 0);
		blob[0] ^= 0xff;
		T_EQ_I64(vmm_engine_bt.vcpu_restore(h.vcpu, blob, (size_t)n), -1);
	}
	/* sregs round trip */
	{
		struct vmm_sregs a, b;
		memset(&a, 0, sizeof(a));   /* padding too: compared with memcmp */
		memset(&b, 0, sizeof(b));
		vmm_engine_bt.get_sregs(h.vcpu, &a);
		T_EQ_I64(vmm_engine_bt.set_sregs(h.vcpu, &a), 0);
		vmm_engine_bt.get_sregs(h.vcpu, &b);
		T_ASSERT(memcmp(&a, &b, sizeof(a)) == 0);
		T_EQ_U64(a.cs.selector, 0x23);
		T_EQ_U64(a.cs.l, 1);
		T_EQ_U64(a.cs.dpl, 3);
	}
	bthost_fini(&h);

	/* CPL 0: HLT with IF = 0 and nothing pending is VMM_EXIT_HLT */
	{
		struct vmm_exit ex;
		struct vmm_regs r;
		static const uint8_t c[] = { 0xfa, 0xf4 };     /* cli; hlt */
		T_EQ_I64(bthost_init(&h, 0), 0);
		bthost_load(&h, c, sizeof(c));
		memset(&r, 0, sizeof(r));
		r.rip = BTH_CODE;
		r.rsp = BTH_STACK - 0x100;
		r.rflags = 2;
		vmm_engine_bt.set_regs(h.vcpu, &r);
		T_EQ_I64(vmm_engine_bt.vcpu_run(h.vcpu, &ex), 0);
		T_EQ_I64(ex.reason, VMM_EXIT_HLT);
		vmm_engine_bt.get_regs(h.vcpu, &r);
		T_EQ_U64(r.rip, BTH_CODE + 2);
	}
	/* a kick from another thread stops a guest spinning in jmp $ */
	{
		struct vmm_exit ex;
		struct vmm_regs r;
		pthread_t t;
		static const uint8_t c[] = { 0xeb, 0xfe };
		T_EQ_I64(bthost_reset(&h, 0), 0);      /* leave the HLT state */
		bthost_load(&h, c, sizeof(c));
		memset(&r, 0, sizeof(r));
		r.rip = BTH_CODE;
		r.rsp = BTH_STACK - 0x100;
		r.rflags = 2;
		vmm_engine_bt.set_regs(h.vcpu, &r);
		T_EQ_I64(pthread_create(&t, NULL, kicker, h.vcpu), 0);
		T_EQ_I64(vmm_engine_bt.vcpu_run(h.vcpu, &ex), 0);
		T_EQ_I64(ex.reason, VMM_EXIT_KICKED);
		pthread_join(t, NULL);
		vmm_engine_bt.get_regs(h.vcpu, &r);
		T_EQ_U64(r.rip, BTH_CODE);
	}
	bthost_fini(&h);
	return T_DONE();
}

/*
 * loop.h — the VMX thread's poll loop: fd callbacks, timers, cross-thread calls.
 *
 * Two clocks:
 *   VMX_CLOCK_REAL    host monotonic time;
 *   VMX_CLOCK_VIRTUAL guest time: starts at 0 at power-on and stands still
 *                     while the VM is paused (suspend, debugger).
 * Timer callbacks and fd callbacks run on the loop thread.  Timer arm/cancel
 * and vmx_loop_call() are safe from any thread (vCPU threads program the PIT).
 */
#ifndef VIREO_LOOP_H
#define VIREO_LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct vmx_loop;
struct vmx_timer;

enum vmx_clock { VMX_CLOCK_REAL, VMX_CLOCK_VIRTUAL };

typedef void (*vmx_fd_cb)(void *opaque, uint32_t epoll_events);
typedef void (*vmx_timer_cb)(void *opaque);
typedef void (*vmx_call_cb)(void *opaque);

struct vmx_loop *vmx_loop_new(void);
void vmx_loop_free(struct vmx_loop *l);

int vmx_loop_add_fd(struct vmx_loop *l, int fd, uint32_t events, vmx_fd_cb cb, void *opaque);
int vmx_loop_mod_fd(struct vmx_loop *l, int fd, uint32_t events);
int vmx_loop_del_fd(struct vmx_loop *l, int fd);

struct vmx_timer *vmx_timer_new(struct vmx_loop *l, enum vmx_clock clock,
                                 vmx_timer_cb cb, void *opaque);
void vmx_timer_free(struct vmx_timer *t);
/* Absolute deadline in the timer's clock. Re-arming replaces the deadline. */
void vmx_timer_arm(struct vmx_timer *t, uint64_t deadline_ns);
void vmx_timer_arm_in(struct vmx_timer *t, uint64_t delta_ns);
void vmx_timer_cancel(struct vmx_timer *t);
bool vmx_timer_pending(struct vmx_timer *t);

uint64_t vmx_clock_ns(struct vmx_loop *l, enum vmx_clock clock);
void vmx_loop_pause_virtual(struct vmx_loop *l, bool paused);

/* Run fn(opaque) on the loop thread, from any thread. */
int vmx_loop_call(struct vmx_loop *l, vmx_call_cb fn, void *opaque);

/* Runs until vmx_loop_quit(); returns the status given to it. */
int vmx_loop_run(struct vmx_loop *l);
void vmx_loop_quit(struct vmx_loop *l, int status);
bool vmx_loop_on_thread(struct vmx_loop *l);

#endif

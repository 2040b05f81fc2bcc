/*
 * loop.c — the VMX poll loop: epoll, one timerfd for all timers, an eventfd
 * for cross-thread calls and timer changes.
 *
 * Timers are few (tens): a flat array scanned on change is simpler and as
 * fast as a heap at that size.
 */
#include "loop.h"

#include <errno.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "lock.h"
#include "log.h"

#define LOOP_MAX_FDS 64

struct vmx_timer {
	struct vmx_loop *loop;
	enum vmx_clock clock;
	vmx_timer_cb cb;
	void *opaque;
	bool armed;
	uint64_t deadline;       /* in the timer's clock */
};

struct loop_fd {
	int fd;
	vmx_fd_cb cb;
	void *opaque;
	bool used;
};

struct loop_call {
	vmx_call_cb fn;
	void *opaque;
	struct loop_call *next;
};

struct vmx_loop {
	int epfd, timerfd, eventfd;
	pthread_t thread;
	bool running;
	int quit_status;
	atomic_bool quit;

	struct vmx_mutex lock;   /* timers, calls, virtual clock */
	struct vmx_timer **timers;
	unsigned ntimers, cap_timers;
	struct loop_call *calls, *calls_tail;

	uint64_t virt_offset;    /* real - virtual while running */
	bool virt_paused;
	uint64_t virt_paused_at; /* virtual time when paused */

	struct loop_fd fds[LOOP_MAX_FDS];
};

static uint64_t loop_real_ns(void)
{
	return vlog_now_ns();
}

struct vmx_loop *vmx_loop_new(void)
{
	struct vmx_loop *l = calloc(1, sizeof(*l));
	struct epoll_event ev = { .events = EPOLLIN };

	if (!l)
		return NULL;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	l->eventfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l->epfd < 0 || l->timerfd < 0 || l->eventfd < 0) {
		vmx_loop_free(l);
		return NULL;
	}
	vmx_mutex_init(&l->lock, VMX_RANK_LOOP, "loop");
	ev.data.fd = l->timerfd;
	epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->timerfd, &ev);
	ev.data.fd = l->eventfd;
	epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->eventfd, &ev);
	l->virt_offset = loop_real_ns();
	l->thread = pthread_self();
	return l;
}

void vmx_loop_free(struct vmx_loop *l)
{
	if (!l)
		return;
	if (l->epfd >= 0)
		close(l->epfd);
	if (l->timerfd >= 0)
		close(l->timerfd);
	if (l->eventfd >= 0)
		close(l->eventfd);
	while (l->calls) {
		struct loop_call *c = l->calls;
		l->calls = c->next;
		free(c);
	}
	free(l->timers);
	free(l);
}

static void loop_wake(struct vmx_loop *l)
{
	uint64_t one = 1;
	ssize_t r = write(l->eventfd, &one, sizeof(one));
	(void)r;   /* EAGAIN: the counter is already non-zero, the loop will wake */
}

int vmx_loop_add_fd(struct vmx_loop *l, int fd, uint32_t events, vmx_fd_cb cb, void *opaque)
{
	struct epoll_event ev = { .events = events, .data.fd = fd };

	for (int i = 0; i < LOOP_MAX_FDS; i++) {
		if (l->fds[i].used)
			continue;
		if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
			return -1;
		l->fds[i] = (struct loop_fd){ .fd = fd, .cb = cb, .opaque = opaque, .used = true };
		return 0;
	}
	errno = ENOSPC;
	return -1;
}

int vmx_loop_mod_fd(struct vmx_loop *l, int fd, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.fd = fd };
	return epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev);
}

int vmx_loop_del_fd(struct vmx_loop *l, int fd)
{
	for (int i = 0; i < LOOP_MAX_FDS; i++) {
		if (l->fds[i].used && l->fds[i].fd == fd) {
			l->fds[i].used = false;
			return epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
		}
	}
	errno = ENOENT;
	return -1;
}

/* Caller holds l->lock. */
static uint64_t loop_virtual_locked(struct vmx_loop *l)
{
	if (l->virt_paused)
		return l->virt_paused_at;
	return loop_real_ns() - l->virt_offset;
}

uint64_t vmx_clock_ns(struct vmx_loop *l, enum vmx_clock clock)
{
	uint64_t v;

	if (clock == VMX_CLOCK_REAL)
		return loop_real_ns();
	vmx_mutex_lock(&l->lock);
	v = loop_virtual_locked(l);
	vmx_mutex_unlock(&l->lock);
	return v;
}

void vmx_loop_pause_virtual(struct vmx_loop *l, bool paused)
{
	vmx_mutex_lock(&l->lock);
	if (paused && !l->virt_paused) {
		l->virt_paused_at = loop_virtual_locked(l);
		l->virt_paused = true;
	} else if (!paused && l->virt_paused) {
		l->virt_offset = loop_real_ns() - l->virt_paused_at;
		l->virt_paused = false;
	}
	vmx_mutex_unlock(&l->lock);
	loop_wake(l);
}

/* Earliest deadline in real time; UINT64_MAX when none.  Caller holds the lock. */
static uint64_t loop_next_deadline_locked(struct vmx_loop *l)
{
	uint64_t best = UINT64_MAX;

	for (unsigned i = 0; i < l->ntimers; i++) {
		struct vmx_timer *t = l->timers[i];
		uint64_t d;
		if (!t->armed)
			continue;
		if (t->clock == VMX_CLOCK_VIRTUAL) {
			if (l->virt_paused)
				continue;
			d = t->deadline + l->virt_offset;
			if (d < t->deadline)
				d = UINT64_MAX;   /* overflow: effectively never */
		} else {
			d = t->deadline;
		}
		if (d < best)
			best = d;
	}
	return best;
}

static void loop_program_timerfd(struct vmx_loop *l)
{
	struct itimerspec its;
	uint64_t d;

	memset(&its, 0, sizeof(its));
	vmx_mutex_lock(&l->lock);
	d = loop_next_deadline_locked(l);
	vmx_mutex_unlock(&l->lock);
	if (d != UINT64_MAX) {
		if (d == 0)
			d = 1;   /* 0 would disarm */
		its.it_value.tv_sec = (time_t)(d / 1000000000ull);
		its.it_value.tv_nsec = (long)(d % 1000000000ull);
	}
	timerfd_settime(l->timerfd, TFD_TIMER_ABSTIME, &its, NULL);
}

struct vmx_timer *vmx_timer_new(struct vmx_loop *l, enum vmx_clock clock,
                                 vmx_timer_cb cb, void *opaque)
{
	struct vmx_timer *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->loop = l;
	t->clock = clock;
	t->cb = cb;
	t->opaque = opaque;
	vmx_mutex_lock(&l->lock);
	if (l->ntimers == l->cap_timers) {
		unsigned cap = l->cap_timers ? l->cap_timers * 2 : 16;
		struct vmx_timer **n = realloc(l->timers, cap * sizeof(*n));
		if (!n) {
			vmx_mutex_unlock(&l->lock);
			free(t);
			return NULL;
		}
		l->timers = n;
		l->cap_timers = cap;
	}
	l->timers[l->ntimers++] = t;
	vmx_mutex_unlock(&l->lock);
	return t;
}

void vmx_timer_free(struct vmx_timer *t)
{
	struct vmx_loop *l;

	if (!t)
		return;
	l = t->loop;
	vmx_mutex_lock(&l->lock);
	for (unsigned i = 0; i < l->ntimers; i++) {
		if (l->timers[i] == t) {
			l->timers[i] = l->timers[--l->ntimers];
			break;
		}
	}
	vmx_mutex_unlock(&l->lock);
	free(t);
}

void vmx_timer_arm(struct vmx_timer *t, uint64_t deadline_ns)
{
	struct vmx_loop *l = t->loop;

	vmx_mutex_lock(&l->lock);
	t->deadline = deadline_ns;
	t->armed = true;
	vmx_mutex_unlock(&l->lock);
	if (vmx_loop_on_thread(l))
		loop_program_timerfd(l);
	else
		loop_wake(l);
}

void vmx_timer_arm_in(struct vmx_timer *t, uint64_t delta_ns)
{
	vmx_timer_arm(t, vmx_clock_ns(t->loop, t->clock) + delta_ns);
}

void vmx_timer_cancel(struct vmx_timer *t)
{
	vmx_mutex_lock(&t->loop->lock);
	t->armed = false;
	vmx_mutex_unlock(&t->loop->lock);
	/* A stale timerfd expiry finds nothing due; no need to reprogram now. */
}

bool vmx_timer_pending(struct vmx_timer *t)
{
	bool armed;
	vmx_mutex_lock(&t->loop->lock);
	armed = t->armed;
	vmx_mutex_unlock(&t->loop->lock);
	return armed;
}

int vmx_loop_call(struct vmx_loop *l, vmx_call_cb fn, void *opaque)
{
	struct loop_call *c = malloc(sizeof(*c));

	if (!c)
		return -1;
	c->fn = fn;
	c->opaque = opaque;
	c->next = NULL;
	vmx_mutex_lock(&l->lock);
	if (l->calls_tail)
		l->calls_tail->next = c;
	else
		l->calls = c;
	l->calls_tail = c;
	vmx_mutex_unlock(&l->lock);
	loop_wake(l);
	return 0;
}

bool vmx_loop_on_thread(struct vmx_loop *l)
{
	return pthread_equal(pthread_self(), l->thread);
}

static void loop_run_timers(struct vmx_loop *l)
{
	struct vmx_timer *due[64];
	unsigned ndue;

	do {
		uint64_t real = loop_real_ns();
		ndue = 0;
		vmx_mutex_lock(&l->lock);
		uint64_t virt = loop_virtual_locked(l);
		for (unsigned i = 0; i < l->ntimers && ndue < 64; i++) {
			struct vmx_timer *t = l->timers[i];
			if (!t->armed)
				continue;
			if (t->clock == VMX_CLOCK_VIRTUAL && l->virt_paused)
				continue;
			if (t->deadline <= (t->clock == VMX_CLOCK_REAL ? real : virt)) {
				t->armed = false;
				due[ndue++] = t;
			}
		}
		vmx_mutex_unlock(&l->lock);
		for (unsigned i = 0; i < ndue; i++)
			due[i]->cb(due[i]->opaque);
	} while (ndue == 64);
}

static void loop_run_calls(struct vmx_loop *l)
{
	struct loop_call *c;

	vmx_mutex_lock(&l->lock);
	c = l->calls;
	l->calls = l->calls_tail = NULL;
	vmx_mutex_unlock(&l->lock);
	while (c) {
		struct loop_call *next = c->next;
		c->fn(c->opaque);
		free(c);
		c = next;
	}
}

int vmx_loop_run(struct vmx_loop *l)
{
	struct epoll_event evs[16];

	l->thread = pthread_self();
	l->running = true;
	atomic_store(&l->quit, false);
	loop_program_timerfd(l);
	while (!l->quit) {
		int n = epoll_wait(l->epfd, evs, 16, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			vlog_error("poll loop: epoll_wait: %s", strerror(errno));
			return 1;
		}
		for (int i = 0; i < n && !l->quit; i++) {
			int fd = evs[i].data.fd;
			uint64_t v;
			if (fd == l->timerfd || fd == l->eventfd) {
				ssize_t r = read(fd, &v, sizeof(v));
				(void)r;
				continue;
			}
			for (int j = 0; j < LOOP_MAX_FDS; j++) {
				if (l->fds[j].used && l->fds[j].fd == fd) {
					l->fds[j].cb(l->fds[j].opaque, evs[i].events);
					break;
				}
			}
		}
		loop_run_calls(l);
		loop_run_timers(l);
		loop_program_timerfd(l);
	}
	l->running = false;
	return l->quit_status;
}

void vmx_loop_quit(struct vmx_loop *l, int status)
{
	l->quit_status = status;
	l->quit = true;
	loop_wake(l);
}

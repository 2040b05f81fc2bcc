/*
 * dio.c — the disk worker pool and the iovec helpers.
 *
 * A plain mutex + condition variable queue in front of a few threads: the
 * work per request is a system call or two, and the pool is shared by the
 * disks of one VM, so nothing fancier pays for itself (io_uring may replace
 * the workers later behind the same dio_submit()).
 */
#include "vmx/disk/dio.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmx/disk/vdisk.h"

#define DIO_MAX_THREADS 64
#define DIO_IOV_BATCH   64

struct dio_pool {
	pthread_mutex_t lock;
	pthread_cond_t work;      /* queue not empty, or stopping */
	pthread_cond_t idle;      /* pending reached 0 */
	struct dio_req *head, *tail;
	unsigned pending;         /* queued + running */
	bool stop;
	unsigned nthreads;
	pthread_t threads[DIO_MAX_THREADS];
};

static int dio_run(struct dio_req *r)
{
	switch (r->op) {
	case DIO_READ:
		return vdisk_preadv(r->disk, r->offset, r->iov, r->iovcnt);
	case DIO_WRITE:
		return vdisk_pwritev(r->disk, r->offset, r->iov, r->iovcnt);
	case DIO_FLUSH:
		return vdisk_flush(r->disk);
	}
	return -EINVAL;
}

static void *dio_worker(void *arg)
{
	struct dio_pool *p = arg;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (!p->head && !p->stop)
			pthread_cond_wait(&p->work, &p->lock);
		if (!p->head)
			break;
		struct dio_req *r = p->head;
		p->head = r->next_;
		if (!p->head)
			p->tail = NULL;
		pthread_mutex_unlock(&p->lock);

		int ret = dio_run(r);
		r->done(r, ret);

		pthread_mutex_lock(&p->lock);
		if (--p->pending == 0)
			pthread_cond_broadcast(&p->idle);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

struct dio_pool *dio_pool_new(unsigned nthreads)
{
	struct dio_pool *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	if (nthreads == 0)
		nthreads = 4;
	if (nthreads > DIO_MAX_THREADS)
		nthreads = DIO_MAX_THREADS;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->idle, NULL);
	for (unsigned i = 0; i < nthreads; i++) {
		if (pthread_create(&p->threads[i], NULL, dio_worker, p) != 0)
			break;
		p->nthreads++;
	}
	if (p->nthreads == 0) {
		free(p);
		return NULL;
	}
	return p;
}

void dio_pool_drain(struct dio_pool *p)
{
	pthread_mutex_lock(&p->lock);
	while (p->pending)
		pthread_cond_wait(&p->idle, &p->lock);
	pthread_mutex_unlock(&p->lock);
}

void dio_pool_free(struct dio_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->idle);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

void dio_submit(struct dio_pool *p, struct dio_req *req)
{
	req->next_ = NULL;
	pthread_mutex_lock(&p->lock);
	if (p->tail)
		p->tail->next_ = req;
	else
		p->head = req;
	p->tail = req;
	p->pending++;
	pthread_cond_signal(&p->work);
	pthread_mutex_unlock(&p->lock);
}

size_t dio_iov_len(const struct iovec *iov, int iovcnt)
{
	size_t n = 0;

	for (int i = 0; i < iovcnt; i++)
		n += iov[i].iov_len;
	return n;
}

void dio_iov_zero(const struct iovec *iov, int iovcnt, size_t skip, size_t len)
{
	for (int i = 0; i < iovcnt && len; i++) {
		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			continue;
		}
		size_t n = iov[i].iov_len - skip;
		if (n > len)
			n = len;
		memset((char *)iov[i].iov_base + skip, 0, n);
		len -= n;
		skip = 0;
	}
}

int dio_iov_rw(int fd, int write, const struct iovec *iov, int iovcnt, size_t skip, size_t len,
               uint64_t foff)
{
	struct iovec v[DIO_IOV_BATCH];
	int i = 0;

	while (i < iovcnt && skip >= iov[i].iov_len)
		skip -= iov[i++].iov_len;
	while (len) {
		/* Gather up to a batch of segments covering the next bytes. */
		int n = 0;
		size_t batch = 0;
		size_t s = skip;
		for (int j = i; j < iovcnt && n < DIO_IOV_BATCH && batch < len; j++) {
			size_t l = iov[j].iov_len - s;
			if (l > len - batch)
				l = len - batch;
			if (l) {
				v[n].iov_base = (char *)iov[j].iov_base + s;
				v[n].iov_len = l;
				n++;
				batch += l;
			}
			s = 0;
		}
		if (n == 0)
			return -EINVAL; /* iovec shorter than len */
		ssize_t r = write ? pwritev(fd, v, n, (off_t)foff) : preadv(fd, v, n, (off_t)foff);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0) {
			if (write)
				return -EIO;
			/* Past the end of the file: the rest reads as zeros. */
			dio_iov_zero(iov + i, iovcnt - i, skip, len);
			return 0;
		}
		size_t done = (size_t)r;
		foff += done;
		len -= done;
		/* Advance (i, skip) by done bytes. */
		while (done) {
			size_t l = iov[i].iov_len - skip;
			if (done < l) {
				skip += done;
				done = 0;
			} else {
				done -= l;
				skip = 0;
				i++;
			}
		}
		while (len && i < iovcnt && iov[i].iov_len == skip) {
			i++;
			skip = 0;
		}
	}
	return 0;
}

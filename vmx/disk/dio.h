/*
 * dio.h — disk I/O on worker threads, so that vCPU threads never block on
 * the host disk.  A device fills a struct dio_req, submits it, and gets
 * done(req, ret) later on a worker thread (ret: 0 or -errno); it hands the
 * completion to its own thread (vmx_loop_call, an eventfd) as it sees fit.
 *
 * Each request runs the synchronous vdisk call (vdisk.h) on a worker with
 * preadv/pwritev; requests on one disk run concurrently.  A flush covers
 * every write whose done() was called before the flush was submitted.
 *
 * The iovec helpers at the end are shared by the format back ends.
 */
#ifndef VIREO_DISK_DIO_H
#define VIREO_DISK_DIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct vdisk;
struct dio_pool;

enum dio_op { DIO_READ, DIO_WRITE, DIO_FLUSH };

struct dio_req {
	enum dio_op op;
	struct vdisk *disk;
	uint64_t offset;           /* bytes into the virtual disk */
	const struct iovec *iov;   /* must stay valid until done() */
	int iovcnt;
	void (*done)(struct dio_req *req, int ret);
	void *opaque;
	struct dio_req *next_;     /* private to the pool */
};

/* nthreads 0: a default (4).  Returns NULL on failure. */
struct dio_pool *dio_pool_new(unsigned nthreads);
/* Runs every request already submitted, then stops the workers. */
void dio_pool_free(struct dio_pool *p);
/* Never blocks on I/O; the request is the caller's again once done() runs. */
void dio_submit(struct dio_pool *p, struct dio_req *req);
/* Waits until every submitted request has completed (tests, shutdown). */
void dio_pool_drain(struct dio_pool *p);

/* ---- iovec helpers ---- */

size_t dio_iov_len(const struct iovec *iov, int iovcnt);
/*
 * Reads or writes the bytes [skip, skip+len) of the iovec list at file
 * offset foff, retrying short transfers.  A read past the end of the file
 * yields zeros.  Returns 0 or -errno.
 */
int dio_iov_rw(int fd, int write, const struct iovec *iov, int iovcnt, size_t skip, size_t len,
               uint64_t foff);
/* Zero-fills the bytes [skip, skip+len) of the iovec list. */
void dio_iov_zero(const struct iovec *iov, int iovcnt, size_t skip, size_t len);

#endif

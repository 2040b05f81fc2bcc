/*
 * chardev.h — character back ends for the serial ports.
 *
 * From the .vmx keys serialN.present, serialN.fileType and serialN.fileName:
 *   file   output appended to fileName (created); no input
 *   pipe   a Unix stream socket at fileName; Vireo listens (VMware's server
 *          end) and serves one client at a time; output is dropped while
 *          none is connected
 *   pty    a pseudo-terminal; its name is logged and written to fileName
 *          when that is given
 *   stdio  the terminal, in raw mode while running (restored at exit and on
 *          fatal signals); Ctrl-A x powers the VM off, Ctrl-A Ctrl-A sends
 *          a literal Ctrl-A
 *
 * Output (chardev_write) comes from vCPU threads and never blocks: bytes the
 * peer cannot take now are dropped and counted.  Input is read on the loop
 * thread and handed to the front end, never more than its can_read() allows;
 * when that is 0 the back end stops reading until chardev_accept_input().
 */
#ifndef VIREO_CHARDEV_H
#define VIREO_CHARDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vmx_vm;
struct vmx_loop;
struct chardev;

struct chardev_frontend {
	/* Bytes the front end can take now (loop thread). */
	size_t (*can_read)(void *opaque);
	/* len <= the last can_read() (loop thread). */
	void (*receive)(void *opaque, const uint8_t *buf, size_t len);
	void *opaque;
};

/*
 * The back end for serialN.  *out is NULL when the port is not present or
 * has no fileType.  Returns -1 with err naming the key on bad config.
 */
int chardev_open_serial(struct vmx_vm *vm, unsigned index, struct chardev **out,
                        char *err, size_t errlen);
/*
 * Open one back end of `type` ("file", "pipe", "pty", "stdio") at `path`.
 * label names it in messages ("serial0"); vm may be NULL (no Ctrl-A x).
 */
struct chardev *chardev_open(struct vmx_vm *vm, struct vmx_loop *loop, const char *label,
                             const char *type, const char *path, char *err, size_t errlen);
void chardev_close(struct chardev *cd);

void chardev_set_frontend(struct chardev *cd, const struct chardev_frontend *fe);
/* Any thread; returns the bytes accepted; the rest are dropped and counted. */
size_t chardev_write(struct chardev *cd, const uint8_t *buf, size_t len);
/* The front end has room again after a can_read() of 0 (any thread). */
void chardev_accept_input(struct chardev *cd);

uint64_t chardev_dropped(const struct chardev *cd);
/* pipe: a client is connected; other types: always true. */
bool chardev_connected(const struct chardev *cd);
/* pty: the slave's path; else NULL. */
const char *chardev_pty_name(const struct chardev *cd);

#endif

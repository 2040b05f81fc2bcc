/*
 * vdisk.h — virtual disk images, format-neutral: raw files and VMDK
 * (monolithicSparse, monolithicFlat, and descriptor files naming FLAT,
 * SPARSE or ZERO extents).
 *
 * Offsets and lengths are bytes into the virtual disk; any alignment works,
 * but devices use sectors.  Calls are thread-safe on one disk (the dio.h
 * workers run them concurrently).  Every function that can fail writes a
 * one-line message naming the file and the problem into err.
 *
 * Crash safety: a write is durable once a later vdisk_flush() returns; a
 * kill at any moment leaves a file that opens (details in vmdk.c).
 */
#ifndef VIREO_DISK_VDISK_H
#define VIREO_DISK_VDISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct vdisk;

enum vdisk_format {
	VDISK_FMT_AUTO,    /* by name: *.vmdk must be VMDK, anything else is raw */
	VDISK_FMT_PROBE,   /* *.vmdk, else by content (tools only: a guest can forge a header) */
	VDISK_FMT_RAW,
	VDISK_FMT_VMDK,    /* sparse or descriptor, whichever the file is */
	/* Results (vdisk_info) and creation types: */
	VDISK_FMT_VMDK_SPARSE,  /* monolithicSparse */
	VDISK_FMT_VMDK_FLAT,    /* monolithicFlat (descriptor + -flat extent) */
	VDISK_FMT_VMDK_DESC,    /* any other descriptor layout */
};

#define VDISK_OPEN_RDONLY          1u
/* A corrupt image is opened read-only (info->corrupt) instead of refused. */
#define VDISK_OPEN_RO_IF_CORRUPT   2u

int vdisk_open(struct vdisk **out, const char *path, enum vdisk_format fmt, unsigned flags,
               char *err, size_t errlen);
/* Flushes (if writable) and closes; returns the flush result. */
int vdisk_close(struct vdisk *d);

/* 0 or -errno (-EROFS read-only, -EINVAL out of range, -EIO). */
int vdisk_preadv(struct vdisk *d, uint64_t off, const struct iovec *iov, int iovcnt);
int vdisk_pwritev(struct vdisk *d, uint64_t off, const struct iovec *iov, int iovcnt);
int vdisk_pread(struct vdisk *d, void *buf, size_t len, uint64_t off);
int vdisk_pwrite(struct vdisk *d, const void *buf, size_t len, uint64_t off);
int vdisk_flush(struct vdisk *d);

uint64_t vdisk_capacity(const struct vdisk *d);
bool vdisk_read_only(const struct vdisk *d);

struct vdisk_info {
	enum vdisk_format format;
	char create_type[64];
	uint64_t capacity;       /* bytes */
	uint64_t allocated;      /* bytes of the virtual disk backed by storage */
	uint64_t file_bytes;     /* host bytes used by all files */
	uint64_t grain_bytes;    /* sparse only */
	unsigned nextents;
	uint32_t cid;
	bool read_only, corrupt;
};
void vdisk_get_info(struct vdisk *d, struct vdisk_info *info);
const char *vdisk_format_name(enum vdisk_format f);

/*
 * Creates a new image (never overwrites: -EEXIST).  fmt: RAW,
 * VMDK_SPARSE or VMDK_FLAT (FILE.vmdk + FILE-flat.vmdk).  size is rounded up
 * to a sector.
 */
int vdisk_create(const char *path, enum vdisk_format fmt, uint64_t size, char *err, size_t errlen);
/* Grows an image (shrinking is refused: it would drop data). */
int vdisk_resize(const char *path, uint64_t new_size, char *err, size_t errlen);

/*
 * Checks an image thoroughly without writing to it; report() gets one line
 * per problem (error false: repairable or harmless).  Returns the number of
 * errors, or -errno if the file could not be read at all.
 */
typedef void (*vdisk_report_fn)(void *opaque, bool error, const char *msg);
int vdisk_check(const char *path, enum vdisk_format fmt, vdisk_report_fn report, void *opaque,
                unsigned *nwarnings);

/* Parses "10G", "512M", "4096", "1.5T"; 0 and -EINVAL on junk or overflow. */
int vdisk_parse_size(const char *s, uint64_t *out);

#endif

/*
 * vmdk.h — VMware VMDK: the monolithic sparse extent (header, grain
 * directory and tables with their redundant copies, embedded descriptor) and
 * the text descriptor.  The format-neutral front is vdisk.h; this header is
 * for vdisk.c, the check tool and the fuzz target.
 *
 * Everything read from a file is untrusted: every offset is range-checked
 * against the file and against the other metadata before it is used, and a
 * file found corrupt is never written to.
 */
#ifndef VIREO_DISK_VMDK_H
#define VIREO_DISK_VMDK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define VMDK_SECTOR       512u
#define VMDK4_MAGIC       0x564d444bu /* "KDMV" on disk */
#define VMDK3_MAGIC       0x434f5744u /* "COWD": old ESX sparse, unsupported */
#define VMDK_GTES_PER_GT  512u
#define VMDK_DESC_MAX     (1u << 20)
#define VMDK_MAX_EXTENTS  64
#define VMDK_MAX_DDB      32

#define VMDK_FLAG_NL_DETECT  (1u << 0)
#define VMDK_FLAG_RGD        (1u << 1)
#define VMDK_FLAG_ZERO_GRAIN (1u << 2)
#define VMDK_FLAG_COMPRESS   (1u << 16)
#define VMDK_FLAG_MARKERS    (1u << 17)

/* The 512-byte SparseExtentHeader, decoded to host order. */
struct vmdk_header {
	uint32_t magic, version, flags;
	uint64_t capacity, grain_size, desc_offset, desc_size;
	uint32_t gtes_per_gt;
	uint64_t rgd_offset, gd_offset, overhead;
	uint8_t unclean;
	char nl_chars[4];
	uint16_t compress;
};

void vmdk_header_decode(struct vmdk_header *h, const uint8_t sec[512]);
void vmdk_header_encode(const struct vmdk_header *h, uint8_t sec[512]);

/* ---- descriptor ---- */

enum vmdk_access { VMDK_ACCESS_RW, VMDK_ACCESS_RDONLY, VMDK_ACCESS_NOACCESS };
enum vmdk_ext_type { VMDK_EXT_FLAT, VMDK_EXT_SPARSE, VMDK_EXT_ZERO, VMDK_EXT_VMFS };

struct vmdk_desc_extent {
	enum vmdk_access access;
	enum vmdk_ext_type type;
	uint64_t sectors;
	uint64_t offset; /* FLAT: first sector in the file */
	char file[512];
};

struct vmdk_desc {
	uint32_t version;
	uint32_t cid, parent_cid;
	char create_type[64];
	char parent_hint[256];
	int nextents;
	struct vmdk_desc_extent ext[VMDK_MAX_EXTENTS];
	int nddb;
	char ddb_key[VMDK_MAX_DDB][64];
	char ddb_val[VMDK_MAX_DDB][128];
};

/*
 * Parses a descriptor (len bytes; stops at a NUL).  Returns 0, or -EINVAL
 * with a one-line reason in err.  Unknown keys are ignored; malformed extent
 * lines, absurd sizes and missing extents are errors.
 */
int vmdk_desc_parse(struct vmdk_desc *d, const char *text, size_t len, char *err, size_t errlen);
/* Renders d; returns the length, or -ENOSPC if it does not fit in cap bytes. */
int vmdk_desc_format(const struct vmdk_desc *d, char *out, size_t cap);
/* Fills d for a new single-extent disk (geometry, adapter, random CID). */
void vmdk_desc_init(struct vmdk_desc *d, const char *create_type, enum vmdk_ext_type type,
                    uint64_t sectors, const char *file);
/* Sets (or adds) a ddb key. */
void vmdk_desc_set_ddb(struct vmdk_desc *d, const char *key, const char *val);
/* Updates geometry keys for a new size. */
void vmdk_desc_set_geometry(struct vmdk_desc *d, uint64_t sectors);

/* ---- the sparse extent ---- */

struct vmdk_sparse;

/* Called once per problem found; `error` false for repairable warnings. */
typedef void (*vmdk_report_fn)(void *opaque, bool error, const char *msg);

#define VMDK_OPEN_RDONLY 1u
/* Go on after the first error (check): every problem is reported. */
#define VMDK_OPEN_ALL_ERRORS 2u

/*
 * Opens the sparse extent in fd (the descriptor of an already open file; the
 * extent takes ownership of it only on success).  `name` appears in messages.
 * Returns 0 and *out, or -errno.  On a corrupt file: -EUCLEAN, unless
 * ALL_ERRORS was given, in which case *out is set (read-only, corrupt) and the
 * number of errors is in *nerrors.
 */
int vmdk_sparse_open(struct vmdk_sparse **out, int fd, const char *name, unsigned flags,
                     vmdk_report_fn report, void *opaque, unsigned *nerrors);
/* Flushes metadata (if writable) and closes; returns the flush result. */
int vmdk_sparse_close(struct vmdk_sparse *s);

/* Byte ranges inside the virtual disk; off + len must be within capacity. */
int vmdk_sparse_preadv(struct vmdk_sparse *s, uint64_t off, const struct iovec *iov, int iovcnt,
                       size_t len);
int vmdk_sparse_pwritev(struct vmdk_sparse *s, uint64_t off, const struct iovec *iov, int iovcnt,
                        size_t len);
int vmdk_sparse_flush(struct vmdk_sparse *s);

struct vmdk_sparse_info {
	struct vmdk_header hdr;
	uint64_t capacity;        /* bytes */
	uint64_t grain_bytes;
	uint64_t allocated_grains;
	uint64_t file_bytes;
	bool read_only, corrupt;
	char create_type[64];
	uint32_t cid;
};
void vmdk_sparse_get_info(struct vmdk_sparse *s, struct vmdk_sparse_info *info);
/* The descriptor embedded in the file (parsed at open); NULL if none. */
const struct vmdk_desc *vmdk_sparse_desc(struct vmdk_sparse *s);

/*
 * Deep check beyond what open validates: the redundant directory and tables
 * against the primary ones, and space no metadata or grain refers to.
 * Returns the number of warnings (differences are repairable, not errors).
 */
unsigned vmdk_sparse_check_redundant(struct vmdk_sparse *s, vmdk_report_fn report, void *opaque);

/* Creates a new monolithic sparse file (O_EXCL).  grain_sectors 0: 128. */
int vmdk_sparse_create(const char *path, uint64_t capacity_bytes, uint32_t grain_sectors,
                       char *err, size_t errlen);
/* Grows an open, writable extent to new_bytes (crash-safe order, see .c). */
int vmdk_sparse_grow(struct vmdk_sparse *s, uint64_t new_bytes, char *err, size_t errlen);

/* Format an error message into err (when err and errlen are set). */
void vdisk_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif

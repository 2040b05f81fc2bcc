/*
 * vdisk.c — the format-neutral front: format detection, raw files, VMDK
 * descriptor files and their extents (FLAT, SPARSE, ZERO), creation,
 * growing and checking.  A disk is a list of extents laid end to end.
 */
#include "vmx/disk/vdisk.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmx/disk/dio.h"
#include "vmx/disk/vmdk.h"

enum vx_kind { VX_FLAT, VX_SPARSE, VX_ZERO };

struct vdisk_ext {
	enum vx_kind kind;
	uint64_t start, len;     /* bytes in the virtual disk */
	int fd;
	uint64_t foff;           /* FLAT: byte offset in the file */
	struct vmdk_sparse *sp;
	bool ro;
};

struct vdisk {
	char *path;
	enum vdisk_format format;
	bool ro, corrupt;
	uint64_t capacity;
	int next;
	struct vdisk_ext ext[VMDK_MAX_EXTENTS];
	struct vmdk_desc *desc;  /* descriptor files only */
	char create_type[64];
};


const char *vdisk_format_name(enum vdisk_format f)
{
	switch (f) {
	case VDISK_FMT_AUTO: return "auto";
	case VDISK_FMT_PROBE: return "probe";
	case VDISK_FMT_RAW: return "raw";
	case VDISK_FMT_VMDK: return "vmdk";
	case VDISK_FMT_VMDK_SPARSE: return "vmdk (monolithicSparse)";
	case VDISK_FMT_VMDK_FLAT: return "vmdk (monolithicFlat)";
	case VDISK_FMT_VMDK_DESC: return "vmdk (descriptor)";
	}
	return "?";
}

static bool ends_with_vmdk(const char *path)
{
	size_t n = strlen(path);
	return n >= 5 && !strcasecmp(path + n - 5, ".vmdk");
}

/* Collects the first error message for open (later ones are dropped). */
struct first_err {
	char *err;
	size_t errlen;
	bool have;
};

static void first_err_report(void *opaque, bool error, const char *msg)
{
	struct first_err *fe = opaque;

	if (error && !fe->have) {
		vdisk_errf(fe->err, fe->errlen, "%s", msg);
		fe->have = true;
	}
}

/* Reads a whole small text file (a descriptor); NULL and err on failure. */
static char *read_desc_file(int fd, const char *path, size_t *len, char *err, size_t errlen)
{
	struct stat st;

	if (fstat(fd, &st) < 0) {
		vdisk_errf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (st.st_size <= 0 || st.st_size > (off_t)VMDK_DESC_MAX) {
		vdisk_errf(err, errlen, "%s: not a VMDK: no sparse header magic, and %s for a descriptor",
		     path, st.st_size <= 0 ? "empty" : "too large");
		return NULL;
	}
	char *buf = malloc((size_t)st.st_size + 1);
	struct iovec v = { buf, (size_t)st.st_size };
	if (!buf || dio_iov_rw(fd, 0, &v, 1, 0, v.iov_len, 0) != 0) {
		free(buf);
		vdisk_errf(err, errlen, "%s: cannot read the descriptor", path);
		return NULL;
	}
	buf[st.st_size] = 0;
	*len = (size_t)st.st_size;
	return buf;
}

static bool looks_like_descriptor(const char *buf, size_t len)
{
	/* Text, then possibly NUL padding (qemu-img pads when it rewrites the CID). */
	size_t n = strnlen(buf, len);
	for (size_t i = n; i < len; i++)
		if (buf[i])
			return false;
	return memmem(buf, n, "createType", 10) || (n >= 21 && !strncmp(buf, "# Disk DescriptorFile", 21));
}

static int ext_path(char *out, size_t cap, const char *desc_path, const char *file)
{
	if (file[0] == '/')
		return snprintf(out, cap, "%s", file) >= (int)cap ? -1 : 0;
	char *dup = strdup(desc_path);
	if (!dup)
		return -1;
	int n = snprintf(out, cap, "%s/%s", dirname(dup), file);
	free(dup);
	return n >= (int)cap ? -1 : 0;
}

static int open_sparse_ext(struct vdisk *d, struct vdisk_ext *x, int fd, const char *name,
                           unsigned flags, char *err, size_t errlen)
{
	struct first_err fe = { err, errlen, false };
	unsigned vf = (d->ro ? VMDK_OPEN_RDONLY : 0);
	int r = vmdk_sparse_open(&x->sp, fd, name, vf, first_err_report, &fe, NULL);

	if (r == -EUCLEAN && (flags & VDISK_OPEN_RO_IF_CORRUPT)) {
		/* Offered read-only: reopen O_RDONLY so nothing can write to it. */
		int rfd = open(name, O_RDONLY | O_CLOEXEC);
		if (rfd < 0)
			return r;
		int r2 = vmdk_sparse_open(&x->sp, rfd, name, VMDK_OPEN_RDONLY | VMDK_OPEN_ALL_ERRORS, NULL,
		                          NULL, NULL);
		if (r2) {
			close(rfd);
			return r;
		}
		close(fd);
		d->corrupt = true;
		x->ro = true;
		return 0;
	}
	if (r && !fe.have)
		vdisk_errf(err, errlen, "%s: cannot open sparse extent: %s", name, strerror(-r));
	return r;
}

static int open_descriptor(struct vdisk *d, const char *text, size_t len, unsigned flags,
                           char *err, size_t errlen)
{
	char msg[256], p[PATH_MAX];
	int r;

	d->desc = malloc(sizeof(*d->desc));
	if (!d->desc)
		return -ENOMEM;
	r = vmdk_desc_parse(d->desc, text, len, msg, sizeof(msg));
	if (r) {
		vdisk_errf(err, errlen, "%s: %s", d->path, msg);
		return r == -ENOTSUP ? r : -EUCLEAN;
	}
	if (d->desc->parent_cid != 0xffffffffu || d->desc->parent_hint[0]) {
		vdisk_errf(err, errlen, "%s: has a parent (snapshot chain): not supported yet", d->path);
		return -ENOTSUP;
	}
	snprintf(d->create_type, sizeof(d->create_type), "%s", d->desc->create_type);
	if (!strcmp(d->create_type, "streamOptimized")) {
		vdisk_errf(err, errlen, "%s: streamOptimized VMDKs are not supported", d->path);
		return -ENOTSUP;
	}
	d->format = (!strcmp(d->create_type, "monolithicFlat") && d->desc->nextents == 1)
	                    ? VDISK_FMT_VMDK_FLAT : VDISK_FMT_VMDK_DESC;
	uint64_t pos = 0;
	for (int i = 0; i < d->desc->nextents; i++) {
		const struct vmdk_desc_extent *e = &d->desc->ext[i];
		struct vdisk_ext *x = &d->ext[d->next];
		x->fd = -1;
		x->start = pos;
		x->len = e->sectors * VMDK_SECTOR;
		x->ro = d->ro || e->access != VMDK_ACCESS_RW;
		pos += x->len;
		if (e->access == VMDK_ACCESS_NOACCESS) {
			vdisk_errf(err, errlen, "%s: extent %d is NOACCESS", d->path, i);
			return -ENOTSUP;
		}
		if (e->type == VMDK_EXT_ZERO) {
			x->kind = VX_ZERO;
			d->next++;
			continue;
		}
		if (ext_path(p, sizeof(p), d->path, e->file)) {
			vdisk_errf(err, errlen, "%s: extent path too long", d->path);
			return -ENAMETOOLONG;
		}
		x->fd = open(p, (x->ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
		if (x->fd < 0) {
			r = -errno;
			vdisk_errf(err, errlen, "%s: extent \"%s\" cannot be opened: %s", d->path, e->file,
			     strerror(errno));
			return r == -ENOENT ? -EUCLEAN : r;
		}
		d->next++;
		if (e->type == VMDK_EXT_SPARSE) {
			x->kind = VX_SPARSE;
			int fd = x->fd;
			x->fd = -1;
			r = open_sparse_ext(d, x, fd, p, flags, err, errlen);
			if (r) {
				close(fd);
				return r;
			}
			struct vmdk_sparse_info si;
			vmdk_sparse_get_info(x->sp, &si);
			if (si.capacity < x->len) {
				vdisk_errf(err, errlen, "%s: sparse extent \"%s\" holds %" PRIu64 " bytes, the "
				     "descriptor says %" PRIu64, d->path, e->file, si.capacity, x->len);
				return -EUCLEAN;
			}
			continue;
		}
		x->kind = VX_FLAT;
		x->foff = e->offset * VMDK_SECTOR;
		struct stat st;
		if (fstat(x->fd, &st) < 0 || (uint64_t)st.st_size < x->foff + x->len) {
			vdisk_errf(err, errlen, "%s: flat extent \"%s\" is truncated: %lld bytes, needs %" PRIu64,
			     d->path, e->file, (long long)st.st_size, x->foff + x->len);
			if (flags & VDISK_OPEN_RO_IF_CORRUPT) {
				/* Reads past its end give zeros; nothing will write. */
				d->corrupt = true;
				continue;
			}
			return -EUCLEAN;
		}
	}
	d->capacity = pos;
	return 0;
}

static void vdisk_free(struct vdisk *d)
{
	for (int i = 0; i < d->next; i++) {
		if (d->ext[i].sp)
			vmdk_sparse_close(d->ext[i].sp);
		if (d->ext[i].fd >= 0)
			close(d->ext[i].fd);
	}
	free(d->desc);
	free(d->path);
	free(d);
}

int vdisk_open(struct vdisk **out, const char *path, enum vdisk_format fmt, unsigned flags,
               char *err, size_t errlen)
{
	struct vdisk *d = calloc(1, sizeof(*d));
	uint8_t sec[512];
	int fd, r;

	if (err && errlen)
		err[0] = 0;
	if (!d || !(d->path = strdup(path))) {
		free(d);
		vdisk_errf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	d->ro = flags & VDISK_OPEN_RDONLY;
	if (fmt == VDISK_FMT_AUTO)
		fmt = ends_with_vmdk(path) ? VDISK_FMT_VMDK : VDISK_FMT_RAW;
	fd = open(path, (d->ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		vdisk_errf(err, errlen, "%s: %s", path, strerror(errno));
		vdisk_free(d);
		return r;
	}
	ssize_t n = pread(fd, sec, sizeof(sec), 0);
	if (n < 0)
		n = 0;
	uint32_t magic = n >= 4 ? (uint32_t)(sec[0] | sec[1] << 8 | sec[2] << 16 | (uint32_t)sec[3] << 24) : 0;
	bool is_sparse = magic == VMDK4_MAGIC || magic == VMDK3_MAGIC;

	if (fmt == VDISK_FMT_PROBE) {
		fmt = VDISK_FMT_RAW;
		if (is_sparse || ends_with_vmdk(path))
			fmt = VDISK_FMT_VMDK;
		else if (n > 0 && looks_like_descriptor((const char *)sec, (size_t)n < sizeof(sec) ? (size_t)n : sizeof(sec)))
			fmt = VDISK_FMT_VMDK;
	}
	if (fmt == VDISK_FMT_RAW) {
		struct stat st;
		if (fstat(fd, &st) < 0) {
			r = -errno;
			close(fd);
			vdisk_free(d);
			return r;
		}
		d->format = VDISK_FMT_RAW;
		snprintf(d->create_type, sizeof(d->create_type), "raw");
		d->capacity = (uint64_t)st.st_size;
		d->ext[0] = (struct vdisk_ext){ VX_FLAT, 0, d->capacity, fd, 0, NULL, d->ro };
		d->next = 1;
		*out = d;
		return 0;
	}
	if (is_sparse) {
		struct vdisk_ext *x = &d->ext[0];
		x->fd = -1;
		r = open_sparse_ext(d, x, fd, path, flags, err, errlen);
		if (r) {
			close(fd);
			vdisk_free(d);
			return r;
		}
		d->next = 1;
		struct vmdk_sparse_info si;
		vmdk_sparse_get_info(x->sp, &si);
		x->kind = VX_SPARSE;
		x->start = 0;
		x->len = si.capacity;
		d->capacity = si.capacity;
		d->format = VDISK_FMT_VMDK_SPARSE;
		snprintf(d->create_type, sizeof(d->create_type), "%s", si.create_type);
	} else {
		size_t len;
		char *text = read_desc_file(fd, path, &len, err, errlen);
		close(fd);
		if (!text) {
			vdisk_free(d);
			return -EUCLEAN;
		}
		if (!looks_like_descriptor(text, len)) {
			vdisk_errf(err, errlen, "%s: not a VMDK: bad magic 0x%08x and not a text descriptor", path, magic);
			free(text);
			vdisk_free(d);
			return -EUCLEAN;
		}
		r = open_descriptor(d, text, len, flags, err, errlen);
		free(text);
		if (r) {
			vdisk_free(d);
			return r;
		}
	}
	if (d->corrupt)
		d->ro = true;
	*out = d;
	return 0;
}

int vdisk_close(struct vdisk *d)
{
	int r = 0;

	if (!d)
		return 0;
	if (!d->ro)
		r = vdisk_flush(d);
	for (int i = 0; i < d->next; i++) {
		if (d->ext[i].sp) {
			int r2 = vmdk_sparse_close(d->ext[i].sp);
			if (!r)
				r = r2;
			d->ext[i].sp = NULL;
		}
	}
	vdisk_free(d);
	return r;
}

uint64_t vdisk_capacity(const struct vdisk *d)
{
	return d->capacity;
}

bool vdisk_read_only(const struct vdisk *d)
{
	return d->ro;
}

static int vdisk_rw(struct vdisk *d, bool write, uint64_t off, const struct iovec *iov, int iovcnt)
{
	size_t len = dio_iov_len(iov, iovcnt), done = 0;

	if (write && d->ro)
		return -EROFS;
	if (off > d->capacity || len > d->capacity - off)
		return -EINVAL;
	int i = 0;
	while (done < len) {
		while (i < d->next && d->ext[i].start + d->ext[i].len <= off)
			i++;
		if (i >= d->next)
			return -EINVAL;
		struct vdisk_ext *x = &d->ext[i];
		uint64_t in = off - x->start;
		size_t n = (size_t)(x->len - in < len - done ? x->len - in : len - done);
		int r = 0;
		if (write && x->ro)
			return -EROFS;
		switch (x->kind) {
		case VX_ZERO:
			if (write)
				return -EROFS;
			dio_iov_zero(iov, iovcnt, done, n);
			break;
		case VX_FLAT:
			r = dio_iov_rw(x->fd, write, iov, iovcnt, done, n, x->foff + in);
			break;
		case VX_SPARSE:
			if (done == 0 && n == len) {
				r = write ? vmdk_sparse_pwritev(x->sp, in, iov, iovcnt, n)
				          : vmdk_sparse_preadv(x->sp, in, iov, iovcnt, n);
			} else {
				/* Straddles extents: bounce through a buffer (rare). */
				char *b = malloc(n);
				struct iovec bv = { b, n };
				if (!b)
					return -ENOMEM;
				if (write) {
					struct iovec tmp = { b, n };
					/* gather the slice */
					size_t skip = done;
					size_t got = 0;
					for (int k = 0; k < iovcnt && got < n; k++) {
						if (skip >= iov[k].iov_len) {
							skip -= iov[k].iov_len;
							continue;
						}
						size_t l = iov[k].iov_len - skip;
						if (l > n - got)
							l = n - got;
						memcpy(b + got, (char *)iov[k].iov_base + skip, l);
						got += l;
						skip = 0;
					}
					r = vmdk_sparse_pwritev(x->sp, in, &tmp, 1, n);
				} else {
					r = vmdk_sparse_preadv(x->sp, in, &bv, 1, n);
					size_t skip = done, put = 0;
					for (int k = 0; !r && k < iovcnt && put < n; k++) {
						if (skip >= iov[k].iov_len) {
							skip -= iov[k].iov_len;
							continue;
						}
						size_t l = iov[k].iov_len - skip;
						if (l > n - put)
							l = n - put;
						memcpy((char *)iov[k].iov_base + skip, b + put, l);
						put += l;
						skip = 0;
					}
				}
				free(b);
			}
			break;
		}
		if (r)
			return r;
		done += n;
		off += n;
	}
	return 0;
}

int vdisk_preadv(struct vdisk *d, uint64_t off, const struct iovec *iov, int iovcnt)
{
	return vdisk_rw(d, false, off, iov, iovcnt);
}

int vdisk_pwritev(struct vdisk *d, uint64_t off, const struct iovec *iov, int iovcnt)
{
	return vdisk_rw(d, true, off, iov, iovcnt);
}

int vdisk_pread(struct vdisk *d, void *buf, size_t len, uint64_t off)
{
	struct iovec v = { buf, len };
	return vdisk_rw(d, false, off, &v, 1);
}

int vdisk_pwrite(struct vdisk *d, const void *buf, size_t len, uint64_t off)
{
	struct iovec v = { (void *)buf, len };
	return vdisk_rw(d, true, off, &v, 1);
}

int vdisk_flush(struct vdisk *d)
{
	int r = 0;

	if (d->ro)
		return 0;
	for (int i = 0; i < d->next; i++) {
		struct vdisk_ext *x = &d->ext[i];
		int r2 = 0;
		if (x->ro)
			continue;
		if (x->kind == VX_SPARSE)
			r2 = vmdk_sparse_flush(x->sp);
		else if (x->kind == VX_FLAT && fdatasync(x->fd) < 0)
			r2 = -errno;
		if (!r)
			r = r2;
	}
	return r;
}

void vdisk_get_info(struct vdisk *d, struct vdisk_info *info)
{
	memset(info, 0, sizeof(*info));
	info->format = d->format;
	snprintf(info->create_type, sizeof(info->create_type), "%s", d->create_type);
	info->capacity = d->capacity;
	info->nextents = (unsigned)d->next;
	info->read_only = d->ro;
	info->corrupt = d->corrupt;
	if (d->desc)
		info->cid = d->desc->cid;
	for (int i = 0; i < d->next; i++) {
		struct vdisk_ext *x = &d->ext[i];
		struct stat st;
		if (x->kind == VX_SPARSE) {
			struct vmdk_sparse_info si;
			vmdk_sparse_get_info(x->sp, &si);
			uint64_t a = si.allocated_grains * si.grain_bytes;
			info->allocated += a < x->len ? a : x->len;
			info->file_bytes += si.file_bytes;
			info->grain_bytes = si.grain_bytes;
			if (!d->desc)
				info->cid = si.cid;
		} else if (x->kind == VX_FLAT) {
			info->allocated += x->len;
			if (fstat(x->fd, &st) == 0)
				info->file_bytes += (uint64_t)st.st_blocks * 512;
		}
	}
}

/* ---- create, resize, check ---- */

/* FILE.vmdk -> FILE-flat.vmdk (the name VMware and qemu-img use). */
static int flat_name(char *out, size_t cap, const char *path)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	size_t n = strlen(base);
	if (n > 5 && !strcasecmp(base + n - 5, ".vmdk"))
		n -= 5;
	return snprintf(out, cap, "%.*s-flat.vmdk", (int)n, base) >= (int)cap ? -1 : 0;
}

/* Writes a descriptor to path: a new file (excl) or replacing one atomically. */
static int write_descriptor(const char *path, const struct vmdk_desc *desc, bool excl,
                            char *err, size_t errlen)
{
	char text[8192], tmp[PATH_MAX];
	int n = vmdk_desc_format(desc, text, sizeof(text));

	if (n < 0) {
		vdisk_errf(err, errlen, "%s: descriptor too large", path);
		return n;
	}
	if (snprintf(tmp, sizeof(tmp), "%s.tmp-%d", path, (int)getpid()) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	const char *target = excl ? path : tmp;
	int fd = open(target, O_WRONLY | O_CREAT | O_CLOEXEC | (excl ? O_EXCL : O_TRUNC), 0644);
	if (fd < 0) {
		int r = -errno;
		vdisk_errf(err, errlen, "%s: %s", target, strerror(errno));
		return r;
	}
	struct iovec v = { text, (size_t)n };
	int r = dio_iov_rw(fd, 1, &v, 1, 0, (size_t)n, 0);
	if (!r && fsync(fd) < 0)
		r = -errno;
	close(fd);
	if (!r && !excl && rename(tmp, path) < 0)
		r = -errno;
	if (r) {
		if (!excl)
			unlink(tmp);
		vdisk_errf(err, errlen, "%s: writing the descriptor: %s", path, strerror(-r));
		return r;
	}
	/* The rename is durable once the directory is. */
	char *dup = strdup(path);
	if (dup) {
		int dfd = open(dirname(dup), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
		free(dup);
	}
	return 0;
}

int vdisk_create(const char *path, enum vdisk_format fmt, uint64_t size, char *err, size_t errlen)
{
	uint64_t bytes = (size + VMDK_SECTOR - 1) / VMDK_SECTOR * VMDK_SECTOR;
	int fd, r;

	if (bytes == 0 || bytes > (1ull << 56)) {
		vdisk_errf(err, errlen, "%s: bad size %" PRIu64, path, size);
		return -EINVAL;
	}
	switch (fmt) {
	case VDISK_FMT_RAW:
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0) {
			r = -errno;
			vdisk_errf(err, errlen, "%s: %s", path, strerror(errno));
			return r;
		}
		r = ftruncate(fd, (off_t)bytes) < 0 ? -errno : 0;
		close(fd);
		if (r) {
			vdisk_errf(err, errlen, "%s: %s", path, strerror(-r));
			unlink(path);
		}
		return r;
	case VDISK_FMT_VMDK_SPARSE:
		return vmdk_sparse_create(path, bytes, 0, err, errlen);
	case VDISK_FMT_VMDK_FLAT: {
		char flat[NAME_MAX + 1], fp[PATH_MAX];
		struct vmdk_desc *desc;
		if (flat_name(flat, sizeof(flat), path) || ext_path(fp, sizeof(fp), path, flat) ||
		    strchr(flat, '"')) {
			vdisk_errf(err, errlen, "%s: bad file name for a flat VMDK", path);
			return -EINVAL;
		}
		fd = open(fp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0) {
			r = -errno;
			vdisk_errf(err, errlen, "%s: %s", fp, strerror(errno));
			return r;
		}
		r = ftruncate(fd, (off_t)bytes) < 0 ? -errno : 0;
		if (!r && fdatasync(fd) < 0)
			r = -errno;
		close(fd);
		if (r) {
			vdisk_errf(err, errlen, "%s: %s", fp, strerror(-r));
			unlink(fp);
			return r;
		}
		desc = malloc(sizeof(*desc));
		if (!desc) {
			unlink(fp);
			return -ENOMEM;
		}
		vmdk_desc_init(desc, "monolithicFlat", VMDK_EXT_FLAT, bytes / VMDK_SECTOR, flat);
		r = write_descriptor(path, desc, true, err, errlen);
		free(desc);
		if (r)
			unlink(fp);
		return r;
	}
	default:
		vdisk_errf(err, errlen, "%s: cannot create format %s", path, vdisk_format_name(fmt));
		return -EINVAL;
	}
}

int vdisk_resize(const char *path, uint64_t new_size, char *err, size_t errlen)
{
	struct vdisk *d;
	uint64_t bytes = (new_size + VMDK_SECTOR - 1) / VMDK_SECTOR * VMDK_SECTOR;
	int r = vdisk_open(&d, path, VDISK_FMT_AUTO, 0, err, errlen);

	if (r)
		return r;
	if (bytes < d->capacity) {
		vdisk_errf(err, errlen, "%s: shrinking is not supported (%" PRIu64 " < %" PRIu64 " bytes)", path,
		     bytes, d->capacity);
		vdisk_close(d);
		return -ENOTSUP;
	}
	if (d->format == VDISK_FMT_RAW) {
		if (ftruncate(d->ext[0].fd, (off_t)bytes) < 0) {
			r = -errno;
			vdisk_errf(err, errlen, "%s: %s", path, strerror(errno));
		}
	} else if (d->format == VDISK_FMT_VMDK_SPARSE) {
		r = vmdk_sparse_grow(d->ext[0].sp, bytes, err, errlen);
	} else if (d->desc && d->desc->nextents == 1 && d->ext[0].kind != VX_ZERO) {
		/* The extent first (durably), then the descriptor names the new size. */
		struct vdisk_ext *x = &d->ext[0];
		if (x->kind == VX_SPARSE) {
			r = vmdk_sparse_grow(x->sp, bytes, err, errlen);
		} else if (ftruncate(x->fd, (off_t)(x->foff + bytes)) < 0 || fdatasync(x->fd) < 0) {
			r = -errno;
			vdisk_errf(err, errlen, "%s: growing the extent: %s", path, strerror(errno));
		}
		if (!r) {
			d->desc->ext[0].sectors = bytes / VMDK_SECTOR;
			vmdk_desc_set_geometry(d->desc, bytes / VMDK_SECTOR);
			r = write_descriptor(path, d->desc, false, err, errlen);
		}
	} else {
		vdisk_errf(err, errlen, "%s: cannot resize a %s image with %d extents", path, d->create_type,
		     d->next);
		r = -ENOTSUP;
	}
	int r2 = vdisk_close(d);
	return r ? r : r2;
}

struct check_ctx {
	vdisk_report_fn report;
	void *opaque;
	unsigned nerr, nwarn;
};

static void check_report(void *opaque, bool error, const char *msg)
{
	struct check_ctx *c = opaque;

	if (error)
		c->nerr++;
	else
		c->nwarn++;
	if (c->report)
		c->report(c->opaque, error, msg);
}

static void check_sparse_file(struct check_ctx *c, const char *path)
{
	char msg[600];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct vmdk_sparse *s;

	if (fd < 0) {
		snprintf(msg, sizeof(msg), "%s: %s", path, strerror(errno));
		check_report(c, true, msg);
		return;
	}
	unsigned before = c->nerr;
	int r = vmdk_sparse_open(&s, fd, path, VMDK_OPEN_RDONLY | VMDK_OPEN_ALL_ERRORS, check_report, c,
	                         NULL);
	if (r) {
		if (c->nerr == before) {
			snprintf(msg, sizeof(msg), "%s: cannot open: %s", path, strerror(-r));
			check_report(c, true, msg);
		}
		close(fd);
		return;
	}
	vmdk_sparse_check_redundant(s, check_report, c);
	vmdk_sparse_close(s);
}

int vdisk_check(const char *path, enum vdisk_format fmt, vdisk_report_fn report, void *opaque,
                unsigned *nwarnings)
{
	struct check_ctx c = { report, opaque, 0, 0 };
	char err[600];
	uint8_t sec[4];
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (nwarnings)
		*nwarnings = 0;
	if (fd < 0)
		return -errno;
	ssize_t n = pread(fd, sec, sizeof(sec), 0);
	close(fd);
	uint32_t magic = n == 4 ? (uint32_t)(sec[0] | sec[1] << 8 | sec[2] << 16 | (uint32_t)sec[3] << 24) : 0;
	if (fmt == VDISK_FMT_AUTO)
		fmt = ends_with_vmdk(path) ? VDISK_FMT_VMDK : VDISK_FMT_RAW;
	if (fmt == VDISK_FMT_PROBE) {
		fmt = VDISK_FMT_RAW;
		if (magic == VMDK4_MAGIC || magic == VMDK3_MAGIC || ends_with_vmdk(path)) {
			fmt = VDISK_FMT_VMDK;
		} else {
			struct vdisk *d;
			if (vdisk_open(&d, path, VDISK_FMT_PROBE, VDISK_OPEN_RDONLY, err, sizeof(err)) == 0) {
				if (d->format != VDISK_FMT_RAW)
					fmt = VDISK_FMT_VMDK;
				vdisk_close(d);
			} else {
				fmt = VDISK_FMT_VMDK; /* a descriptor that fails: report why */
			}
		}
	}
	if (fmt == VDISK_FMT_RAW)
		return 0; /* nothing to check in a raw file */
	if (magic == VMDK4_MAGIC || magic == VMDK3_MAGIC) {
		check_sparse_file(&c, path);
	} else {
		struct vdisk *d;
		int r = vdisk_open(&d, path, VDISK_FMT_VMDK, VDISK_OPEN_RDONLY, err, sizeof(err));
		if (r && r != -EUCLEAN && r != -ENOTSUP) {
			/* e.g. a sparse extent that fails: report as an error */
			check_report(&c, true, err);
		} else if (r) {
			check_report(&c, true, err);
		} else {
			for (int i = 0; i < d->desc->nextents; i++) {
				char p[PATH_MAX];
				if (d->desc->ext[i].type == VMDK_EXT_SPARSE &&
				    !ext_path(p, sizeof(p), path, d->desc->ext[i].file))
					check_sparse_file(&c, p);
			}
			vdisk_close(d);
		}
	}
	if (nwarnings)
		*nwarnings = c.nwarn;
	return (int)c.nerr;
}

int vdisk_parse_size(const char *s, uint64_t *out)
{
	char *end;
	double whole;
	uint64_t mult = 1;

	*out = 0;
	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	whole = (double)v;
	if (*end == '.') {
		char *e2;
		double f = strtod(s, &e2);
		whole = f;
		end = e2;
	}
	switch (toupper((unsigned char)*end)) {
	case 0: break;
	case 'B': break;
	case 'K': mult = 1ull << 10; break;
	case 'M': mult = 1ull << 20; break;
	case 'G': mult = 1ull << 30; break;
	case 'T': mult = 1ull << 40; break;
	default: return -EINVAL;
	}
	if (*end && *end != 'B' && *end != 'b') {
		end++;
		if (*end == 'i')
			end++;
		if (*end == 'B' || *end == 'b')
			end++;
	} else if (*end) {
		end++;
	}
	if (*end)
		return -EINVAL;
	double bytes = whole * (double)mult;
	if (bytes >= 18446744073709551615.0 || bytes < 0)
		return -EINVAL;
	*out = (uint64_t)bytes;
	return 0;
}

/*
 * vmdk.c — the VMDK monolithic sparse extent and the text descriptor.
 *
 * Layout of a sparse extent (all offsets in 512-byte sectors, little endian):
 *   sector 0         SparseExtentHeader
 *   desc_offset      embedded descriptor (desc_size sectors)
 *   rgd_offset       redundant grain directory, then its grain tables
 *   gd_offset        grain directory, then its grain tables
 *   overhead         first grain; grains follow in allocation order
 * A grain directory entry is the sector of a grain table (512 entries); a
 * grain table entry is the sector of a grain, 0 (unallocated: zeros) or 1
 * (zeroed grain, with VMDK_FLAG_ZERO_GRAIN).
 *
 * The whole grain directory and all grain tables are kept in memory (4 bytes
 * per 64 KiB grain: 64 MiB for a fully mapped 1 TiB disk), so reads and
 * in-place writes are one preadv/pwritev with no locking.
 *
 * Crash safety — the order of updates when a write needs a new grain:
 *   1. under alloc_lock, the grain's place is taken at the end of the file
 *      (ftruncate: the new grain reads as zeros), the in-memory table entry
 *      is set and its table marked dirty; the writer holds meta_rw shared
 *      from here until its data is written;
 *   2. the grain data is written (pwritev);
 *   3. vdisk flush: meta_rw exclusive (no allocating write in flight), then
 *      fdatasync — every grain a dirty table entry points at is now durable;
 *   4. the dirty grain tables are written, redundant copy first, then the
 *      primary; fdatasync;
 *   5. directory entries for new grain tables (redundant, then primary);
 *      fdatasync.
 * So a table entry on disk never points at data that is not on disk, a kill
 * at any moment leaves tables that reference only written grains (at worst
 * some grains past the end are leaked), and everything written before a
 * completed flush is reachable.  Grain tables are created with the image
 * (as qemu-img and VMware do), so step 5 happens only for images made by
 * tools that allocate tables lazily, and in vmdk_sparse_grow().
 */
#include "vmx/disk/vmdk.h"

#include <ctype.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vmx/disk/dio.h"

#define GT_SECTORS      (VMDK_GTES_PER_GT * 4u / VMDK_SECTOR)
#define GT_BYTES        (VMDK_GTES_PER_GT * 4u)
/* 2^27 grains: 512 MiB of tables in memory; 8 TiB with 64 KiB grains. */
#define VMDK_MAX_GRAINS (1ull << 27)
#define VMDK_MAX_GRAIN_SECTORS 65536u
#define VMDK_MAX_DESC_SECTORS  2048u
/* A grain's sector must fit in a 32-bit table entry. */
#define VMDK_MAX_SECTOR 0xffffffffull

struct vmdk_sparse {
	int fd;
	char *name;
	bool ro, corrupt;
	struct vmdk_header h;
	uint64_t gsec, gbytes;
	uint64_t ngrains;
	uint32_t ngt;
	uint32_t gd_sectors;
	uint32_t *gd, *rgd;      /* ngt entries each, host order */
	uint32_t *gte;           /* ngt * 512 entries */
	uint8_t *gt_dirty;       /* per table */
	bool dirty, gd_dirty;
	uint64_t file_sectors;   /* size at open, rounded down */
	uint64_t next_free;      /* sector of the next new grain */
	uint64_t allocated;
	pthread_mutex_t alloc_lock;
	pthread_rwlock_t meta_rw;
	struct vmdk_desc *desc;
};

/* ---- header ---- */

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return le32toh(v);
}

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return le64toh(v);
}

static void wr32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static void wr64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

void vmdk_header_decode(struct vmdk_header *h, const uint8_t s[512])
{
	h->magic = rd32(s + 0);
	h->version = rd32(s + 4);
	h->flags = rd32(s + 8);
	h->capacity = rd64(s + 12);
	h->grain_size = rd64(s + 20);
	h->desc_offset = rd64(s + 28);
	h->desc_size = rd64(s + 36);
	h->gtes_per_gt = rd32(s + 44);
	h->rgd_offset = rd64(s + 48);
	h->gd_offset = rd64(s + 56);
	h->overhead = rd64(s + 64);
	h->unclean = s[72];
	memcpy(h->nl_chars, s + 73, 4);
	h->compress = (uint16_t)(s[77] | s[78] << 8);
}

void vmdk_header_encode(const struct vmdk_header *h, uint8_t s[512])
{
	memset(s, 0, 512);
	wr32(s + 0, h->magic);
	wr32(s + 4, h->version);
	wr32(s + 8, h->flags);
	wr64(s + 12, h->capacity);
	wr64(s + 20, h->grain_size);
	wr64(s + 28, h->desc_offset);
	wr64(s + 36, h->desc_size);
	wr32(s + 44, h->gtes_per_gt);
	wr64(s + 48, h->rgd_offset);
	wr64(s + 56, h->gd_offset);
	wr64(s + 64, h->overhead);
	s[72] = h->unclean;
	memcpy(s + 73, h->nl_chars, 4);
	s[77] = (uint8_t)h->compress;
	s[78] = (uint8_t)(h->compress >> 8);
}

/* ---- descriptor ---- */

/* Shared with vdisk.c: an error message into the caller's buffer, if any. */
void vdisk_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		s[--n] = 0;
	return s;
}

/* Strips one pair of surrounding double quotes. */
static char *unquote(char *s)
{
	size_t n = strlen(s);

	if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
		s[n - 1] = 0;
		return s + 1;
	}
	return s;
}

static int parse_u64(const char *s, int base, uint64_t *out)
{
	char *end;

	if (!*s || *s == '-' || *s == '+' || isspace((unsigned char)*s))
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, base);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

static int copy_str(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(src);

	if (n >= cap)
		return -1;
	memcpy(dst, src, n + 1);
	return 0;
}

static int parse_extent(struct vmdk_desc_extent *e, char *line, char *err, size_t errlen, int lineno)
{
	char *p = line, *tok[3];

	/* ACCESS SECTORS TYPE ["FILE" [OFFSET]] */
	for (int i = 0; i < 3; i++) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p) {
			vdisk_errf(err, errlen, "descriptor line %d: extent line too short", lineno);
			return -EINVAL;
		}
		tok[i] = p;
		while (*p && *p != ' ' && *p != '\t')
			p++;
		if (*p)
			*p++ = 0;
	}
	if (!strcmp(tok[0], "RW"))
		e->access = VMDK_ACCESS_RW;
	else if (!strcmp(tok[0], "RDONLY"))
		e->access = VMDK_ACCESS_RDONLY;
	else
		e->access = VMDK_ACCESS_NOACCESS;
	if (parse_u64(tok[1], 10, &e->sectors) || e->sectors == 0 || e->sectors > (1ull << 47)) {
		vdisk_errf(err, errlen, "descriptor line %d: bad extent size '%s'", lineno, tok[1]);
		return -EINVAL;
	}
	if (!strcmp(tok[2], "FLAT"))
		e->type = VMDK_EXT_FLAT;
	else if (!strcmp(tok[2], "SPARSE"))
		e->type = VMDK_EXT_SPARSE;
	else if (!strcmp(tok[2], "ZERO"))
		e->type = VMDK_EXT_ZERO;
	else if (!strcmp(tok[2], "VMFS"))
		e->type = VMDK_EXT_VMFS;
	else {
		vdisk_errf(err, errlen, "descriptor line %d: unsupported extent type '%.32s'", lineno, tok[2]);
		return -ENOTSUP;
	}
	e->file[0] = 0;
	e->offset = 0;
	while (*p == ' ' || *p == '\t')
		p++;
	if (e->type == VMDK_EXT_ZERO)
		return 0;
	if (*p != '"') {
		vdisk_errf(err, errlen, "descriptor line %d: extent without a quoted file name", lineno);
		return -EINVAL;
	}
	char *name = ++p;
	char *q = strchr(name, '"');
	if (!q || q == name) {
		vdisk_errf(err, errlen, "descriptor line %d: bad extent file name", lineno);
		return -EINVAL;
	}
	*q = 0;
	if (copy_str(e->file, sizeof(e->file), name)) {
		vdisk_errf(err, errlen, "descriptor line %d: extent file name too long", lineno);
		return -EINVAL;
	}
	p = trim(q + 1);
	if (*p) {
		if (parse_u64(p, 10, &e->offset) || e->offset > (1ull << 47)) {
			vdisk_errf(err, errlen, "descriptor line %d: bad extent offset '%.32s'", lineno, p);
			return -EINVAL;
		}
	}
	return 0;
}

int vmdk_desc_parse(struct vmdk_desc *d, const char *text, size_t len, char *err, size_t errlen)
{
	memset(d, 0, sizeof(*d));
	d->parent_cid = 0xffffffffu;
	d->version = 1;

	size_t n = strnlen(text, len);
	if (n > VMDK_DESC_MAX) {
		vdisk_errf(err, errlen, "descriptor larger than %u bytes", VMDK_DESC_MAX);
		return -EINVAL;
	}
	char *buf = malloc(n + 1);
	if (!buf) {
		vdisk_errf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	memcpy(buf, text, n);
	buf[n] = 0;

	int ret = 0, lineno = 0;
	bool have_type = false;
	uint64_t total = 0;
	char *save = NULL;
	for (char *line = buf; line && !ret; line = save) {
		char *nl = strchr(line, '\n');
		save = nl ? nl + 1 : NULL;
		if (nl)
			*nl = 0;
		lineno++;
		char *l = trim(line);
		if (!*l || *l == '#')
			continue;
		if (!strncmp(l, "RW ", 3) || !strncmp(l, "RDONLY ", 7) || !strncmp(l, "NOACCESS ", 9) ||
		    !strncmp(l, "RW\t", 3) || !strncmp(l, "RDONLY\t", 7) || !strncmp(l, "NOACCESS\t", 9)) {
			if (d->nextents >= VMDK_MAX_EXTENTS) {
				vdisk_errf(err, errlen, "descriptor: more than %d extents", VMDK_MAX_EXTENTS);
				ret = -EINVAL;
				break;
			}
			ret = parse_extent(&d->ext[d->nextents], l, err, errlen, lineno);
			if (!ret) {
				total += d->ext[d->nextents].sectors;
				d->nextents++;
				if (total > (1ull << 47)) {
					vdisk_errf(err, errlen, "descriptor: total size absurd (%" PRIu64 " sectors)", total);
					ret = -EINVAL;
				}
			}
			continue;
		}
		char *eq = strchr(l, '=');
		if (!eq) {
			vdisk_errf(err, errlen, "descriptor line %d: not understood: '%.40s'", lineno, l);
			ret = -EINVAL;
			break;
		}
		*eq = 0;
		char *key = trim(l), *val = unquote(trim(eq + 1));
		uint64_t v;
		if (!strcmp(key, "version")) {
			if (parse_u64(val, 10, &v) || v == 0 || v > 3) {
				vdisk_errf(err, errlen, "descriptor line %d: unsupported version '%.16s'", lineno, val);
				ret = -ENOTSUP;
			} else {
				d->version = (uint32_t)v;
			}
		} else if (!strcmp(key, "CID") || !strcmp(key, "parentCID")) {
			if (parse_u64(val, 16, &v) || v > 0xffffffffu) {
				vdisk_errf(err, errlen, "descriptor line %d: bad %s '%.16s'", lineno, key, val);
				ret = -EINVAL;
			} else if (key[0] == 'C') {
				d->cid = (uint32_t)v;
			} else {
				d->parent_cid = (uint32_t)v;
			}
		} else if (!strcmp(key, "createType")) {
			if (copy_str(d->create_type, sizeof(d->create_type), val)) {
				vdisk_errf(err, errlen, "descriptor line %d: createType too long", lineno);
				ret = -EINVAL;
			}
			have_type = true;
		} else if (!strcmp(key, "parentFileNameHint")) {
			copy_str(d->parent_hint, sizeof(d->parent_hint), val);
		} else if (!strncmp(key, "ddb.", 4) && d->nddb < VMDK_MAX_DDB) {
			if (!copy_str(d->ddb_key[d->nddb], sizeof(d->ddb_key[0]), key) &&
			    !copy_str(d->ddb_val[d->nddb], sizeof(d->ddb_val[0]), val))
				d->nddb++;
		}
	}
	free(buf);
	if (ret)
		return ret;
	if (!have_type) {
		vdisk_errf(err, errlen, "descriptor: no createType");
		return -EINVAL;
	}
	if (d->nextents == 0) {
		vdisk_errf(err, errlen, "descriptor: no extents");
		return -EINVAL;
	}
	return 0;
}

static const char *ext_type_name(enum vmdk_ext_type t)
{
	switch (t) {
	case VMDK_EXT_FLAT: return "FLAT";
	case VMDK_EXT_SPARSE: return "SPARSE";
	case VMDK_EXT_ZERO: return "ZERO";
	case VMDK_EXT_VMFS: return "VMFS";
	}
	return "?";
}

int vmdk_desc_format(const struct vmdk_desc *d, char *out, size_t cap)
{
	static const char *acc[] = { "RW", "RDONLY", "NOACCESS" };
	size_t n = 0;
	int r;

#define EMIT(...)                                                        \
	do {                                                             \
		r = snprintf(out + n, n < cap ? cap - n : 0, __VA_ARGS__); \
		if (r < 0)                                               \
			return -EINVAL;                                  \
		n += (size_t)r;                                          \
	} while (0)
	EMIT("# Disk DescriptorFile\nversion=%u\nCID=%08x\nparentCID=%08x\ncreateType=\"%s\"\n",
	     d->version, d->cid, d->parent_cid, d->create_type);
	if (d->parent_hint[0])
		EMIT("parentFileNameHint=\"%s\"\n", d->parent_hint);
	EMIT("\n# Extent description\n");
	for (int i = 0; i < d->nextents; i++) {
		const struct vmdk_desc_extent *e = &d->ext[i];
		EMIT("%s %" PRIu64 " %s", acc[e->access], e->sectors, ext_type_name(e->type));
		if (e->type != VMDK_EXT_ZERO)
			EMIT(" \"%s\"", e->file);
		if (e->type == VMDK_EXT_FLAT || e->type == VMDK_EXT_VMFS)
			EMIT(" %" PRIu64, e->offset);
		EMIT("\n");
	}
	EMIT("\n# The Disk Data Base\n#DDB\n\n");
	for (int i = 0; i < d->nddb; i++)
		EMIT("%s = \"%s\"\n", d->ddb_key[i], d->ddb_val[i]);
#undef EMIT
	if (n >= cap)
		return -ENOSPC;
	return (int)n;
}

void vmdk_desc_set_ddb(struct vmdk_desc *d, const char *key, const char *val)
{
	int i;

	for (i = 0; i < d->nddb; i++)
		if (!strcmp(d->ddb_key[i], key))
			break;
	if (i == d->nddb) {
		if (d->nddb >= VMDK_MAX_DDB)
			return;
		d->nddb++;
	}
	snprintf(d->ddb_key[i], sizeof(d->ddb_key[i]), "%s", key);
	snprintf(d->ddb_val[i], sizeof(d->ddb_val[i]), "%s", val);
}

void vmdk_desc_set_geometry(struct vmdk_desc *d, uint64_t sectors)
{
	/* What qemu-img writes: 16 heads, 63 sectors, cylinders capped. */
	uint64_t cyl = sectors / (16 * 63);
	char buf[32];

	if (cyl > 16383)
		cyl = 16383;
	snprintf(buf, sizeof(buf), "%" PRIu64, cyl);
	vmdk_desc_set_ddb(d, "ddb.geometry.cylinders", buf);
	vmdk_desc_set_ddb(d, "ddb.geometry.heads", "16");
	vmdk_desc_set_ddb(d, "ddb.geometry.sectors", "63");
}

void vmdk_desc_init(struct vmdk_desc *d, const char *create_type, enum vmdk_ext_type type,
                    uint64_t sectors, const char *file)
{
	uint32_t cid = 0;

	memset(d, 0, sizeof(*d));
	d->version = 1;
	if (getrandom(&cid, sizeof(cid), 0) != sizeof(cid))
		cid = (uint32_t)time(NULL) ^ (uint32_t)getpid();
	if (cid >= 0xfffffffeu)
		cid = 1;
	d->cid = cid;
	d->parent_cid = 0xffffffffu;
	snprintf(d->create_type, sizeof(d->create_type), "%s", create_type);
	d->nextents = 1;
	d->ext[0].access = VMDK_ACCESS_RW;
	d->ext[0].type = type;
	d->ext[0].sectors = sectors;
	snprintf(d->ext[0].file, sizeof(d->ext[0].file), "%s", file);
	vmdk_desc_set_ddb(d, "ddb.virtualHWVersion", "4");
	vmdk_desc_set_geometry(d, sectors);
	vmdk_desc_set_ddb(d, "ddb.adapterType", "ide");
}

/* ---- the sparse extent: open and validation ---- */

struct chk {
	const char *name;
	vmdk_report_fn report;
	void *opaque;
	unsigned nerr;
};

static void bad(struct chk *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bad(struct chk *c, const char *fmt, ...)
{
	char msg[400], line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(line, sizeof(line), "%s: %s", c->name, msg);
	c->nerr++;
	if (c->report)
		c->report(c->opaque, true, line);
}

static void warn(struct chk *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(struct chk *c, const char *fmt, ...)
{
	char msg[400], line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(line, sizeof(line), "%s: %s", c->name, msg);
	if (c->report)
		c->report(c->opaque, false, line);
}

static int pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	struct iovec v = { buf, len };
	return dio_iov_rw(fd, 0, &v, 1, 0, len, off);
}

static int pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
	struct iovec v = { (void *)buf, len };
	return dio_iov_rw(fd, 1, &v, 1, 0, len, off);
}

/* A metadata or grain range in sectors, for overlap checks. */
struct range {
	uint64_t start, len;
	const char *what;
	uint64_t index;
};

static int range_cmp(const void *a, const void *b)
{
	const struct range *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static void sparse_free(struct vmdk_sparse *s)
{
	if (!s)
		return;
	free(s->gd);
	free(s->rgd);
	free(s->gte);
	free(s->gt_dirty);
	free(s->desc);
	free(s->name);
	pthread_mutex_destroy(&s->alloc_lock);
	pthread_rwlock_destroy(&s->meta_rw);
	free(s);
}

/* Header fields alone: returns false (after reporting) if nothing more can be read. */
static bool check_header(struct vmdk_sparse *s, struct chk *c, int *ret)
{
	const struct vmdk_header *h = &s->h;

	*ret = -EUCLEAN;
	if (h->magic == VMDK3_MAGIC) {
		bad(c, "VMDK3 (COWD) sparse extents are not supported");
		*ret = -ENOTSUP;
		return false;
	}
	if (h->magic != VMDK4_MAGIC) {
		bad(c, "bad magic 0x%08x (not a VMDK sparse extent)", h->magic);
		return false;
	}
	if (h->version == 0 || h->version > 3) {
		bad(c, "unsupported VMDK version %u", h->version);
		*ret = -ENOTSUP;
		return false;
	}
	if (h->flags & (VMDK_FLAG_COMPRESS | VMDK_FLAG_MARKERS) || h->compress) {
		bad(c, "compressed grains (streamOptimized) are not supported");
		*ret = -ENOTSUP;
		return false;
	}
	if (h->flags & VMDK_FLAG_NL_DETECT && memcmp(h->nl_chars, "\n \r\n", 4) != 0) {
		bad(c, "newline detection bytes damaged (file was transferred in text mode?)");
		return false;
	}
	if (h->grain_size < 8 || h->grain_size > VMDK_MAX_GRAIN_SECTORS ||
	    (h->grain_size & (h->grain_size - 1))) {
		bad(c, "bad grain size %" PRIu64 " sectors", h->grain_size);
		return false;
	}
	if (h->gtes_per_gt != VMDK_GTES_PER_GT) {
		bad(c, "unsupported grain table size %u (expected 512)", h->gtes_per_gt);
		*ret = -ENOTSUP;
		return false;
	}
	if (h->capacity == 0 || h->capacity > VMDK_MAX_GRAINS * h->grain_size) {
		bad(c, "absurd capacity %" PRIu64 " sectors", h->capacity);
		return false;
	}
	if (h->gd_offset == 0 || h->gd_offset == ~0ull) {
		bad(c, "grain directory offset %" PRIu64 " is invalid", h->gd_offset);
		return false;
	}
	s->gsec = h->grain_size;
	s->gbytes = h->grain_size * VMDK_SECTOR;
	s->ngrains = (h->capacity + s->gsec - 1) / s->gsec;
	s->ngt = (uint32_t)((s->ngrains + VMDK_GTES_PER_GT - 1) / VMDK_GTES_PER_GT);
	s->gd_sectors = (uint32_t)(((uint64_t)s->ngt * 4 + VMDK_SECTOR - 1) / VMDK_SECTOR);
	if (h->overhead > s->file_sectors) {
		bad(c, "file truncated: grains start at sector %" PRIu64 " but the file has %" PRIu64
		    " sectors", h->overhead, s->file_sectors);
		return false;
	}
	bool have_rgd = h->flags & VMDK_FLAG_RGD;
	uint64_t offs[2] = { h->gd_offset, have_rgd ? h->rgd_offset : 0 };
	for (int i = 0; i < 1 + have_rgd; i++) {
		const char *what = i ? "redundant grain directory" : "grain directory";
		if (offs[i] == 0 || offs[i] > s->file_sectors ||
		    s->file_sectors - offs[i] < s->gd_sectors) {
			bad(c, "%s at sector %" PRIu64 " (%u sectors) lies outside the file (%" PRIu64
			    " sectors)", what, offs[i], s->gd_sectors, s->file_sectors);
			return false;
		}
	}
	if (h->desc_offset && (h->desc_size == 0 || h->desc_size > VMDK_MAX_DESC_SECTORS ||
	                       h->desc_offset > s->file_sectors ||
	                       s->file_sectors - h->desc_offset < h->desc_size)) {
		bad(c, "embedded descriptor (sector %" PRIu64 ", %" PRIu64 " sectors) is out of bounds",
		    h->desc_offset, h->desc_size);
		return false;
	}
	*ret = 0;
	return true;
}

/* Reads the grain tables a directory points at into tab (ngt * 512 entries). */
static int read_tables(struct vmdk_sparse *s, const uint32_t *dir, uint32_t *tab)
{
	uint32_t i = 0;

	while (i < s->ngt) {
		if (!dir[i]) {
			memset(tab + (size_t)i * VMDK_GTES_PER_GT, 0, GT_BYTES);
			i++;
			continue;
		}
		/* Tables laid out back to back are read in one call. */
		uint32_t j = i + 1;
		while (j < s->ngt && j - i < 1024 && dir[j] == dir[j - 1] + GT_SECTORS)
			j++;
		int r = pread_full(s->fd, tab + (size_t)i * VMDK_GTES_PER_GT, (size_t)(j - i) * GT_BYTES,
		                   (uint64_t)dir[i] * VMDK_SECTOR);
		if (r)
			return r;
		i = j;
	}
	for (size_t k = 0; k < (size_t)s->ngt * VMDK_GTES_PER_GT; k++)
		tab[k] = le32toh(tab[k]);
	return 0;
}

static int read_dir(struct vmdk_sparse *s, uint64_t off, uint32_t **out)
{
	uint32_t *d = calloc((size_t)s->gd_sectors * VMDK_SECTOR / 4, 4);

	if (!d)
		return -ENOMEM;
	int r = pread_full(s->fd, d, (size_t)s->gd_sectors * VMDK_SECTOR, off * VMDK_SECTOR);
	if (r) {
		free(d);
		return r;
	}
	for (uint32_t i = 0; i < s->ngt; i++)
		d[i] = le32toh(d[i]);
	*out = d;
	return 0;
}

/*
 * Metadata (header, descriptor, directories, tables) must lie in the file
 * and not overlap; every grain must lie in the file and overlap neither
 * metadata nor another grain.
 */
static void check_layout(struct vmdk_sparse *s, struct chk *c)
{
	const struct vmdk_header *h = &s->h;
	bool have_rgd = h->flags & VMDK_FLAG_RGD;
	size_t nmeta = 4 + (size_t)s->ngt * 2, nm = 0;
	struct range *meta = calloc(nmeta, sizeof(*meta));
	uint32_t *grains = malloc((s->ngrains ? s->ngrains : 1) * sizeof(uint32_t));
	size_t ng = 0;

	if (!meta || !grains) {
		bad(c, "out of memory checking the layout");
		goto out;
	}
	meta[nm++] = (struct range){ 0, 1, "header", 0 };
	if (h->desc_offset)
		meta[nm++] = (struct range){ h->desc_offset, h->desc_size, "descriptor", 0 };
	meta[nm++] = (struct range){ h->gd_offset, s->gd_sectors, "grain directory", 0 };
	if (have_rgd)
		meta[nm++] = (struct range){ h->rgd_offset, s->gd_sectors, "redundant grain directory", 0 };
	for (int k = 0; k < 1 + have_rgd; k++) {
		const uint32_t *dir = k ? s->rgd : s->gd;
		for (uint32_t i = 0; i < s->ngt; i++) {
			if (!dir[i])
				continue;
			const char *what = k ? "redundant grain table" : "grain table";
			if ((uint64_t)dir[i] + GT_SECTORS > s->file_sectors) {
				bad(c, "%s %u at sector %u points past the end of the file (%" PRIu64 " sectors)",
				    what, i, dir[i], s->file_sectors);
				continue;
			}
			meta[nm++] = (struct range){ dir[i], GT_SECTORS, what, i };
		}
	}
	qsort(meta, nm, sizeof(*meta), range_cmp);
	for (size_t i = 1; i < nm; i++) {
		if (meta[i - 1].start + meta[i - 1].len > meta[i].start)
			bad(c, "%s %" PRIu64 " (sector %" PRIu64 ") overlaps %s %" PRIu64 " (sector %" PRIu64 ")",
			    meta[i].what, meta[i].index, meta[i].start, meta[i - 1].what, meta[i - 1].index,
			    meta[i - 1].start);
	}
	for (uint64_t g = 0; g < s->ngrains; g++) {
		uint32_t e = s->gte[g];
		if (e == 0 || (e == 1 && h->flags & VMDK_FLAG_ZERO_GRAIN))
			continue;
		if ((uint64_t)e + s->gsec > s->file_sectors) {
			bad(c, "grain table entry for grain %" PRIu64 " points past the end of the file "
			    "(sector %u, file has %" PRIu64 " sectors)", g, e, s->file_sectors);
			continue;
		}
		grains[ng++] = e;
	}
	s->allocated = ng;
	qsort(grains, ng, sizeof(*grains), u32_cmp);
	for (size_t i = 1; i < ng; i++) {
		if ((uint64_t)grains[i - 1] + s->gsec > grains[i]) {
			bad(c, "overlapping grains at sectors %u and %u", grains[i - 1], grains[i]);
			if (c->nerr > 20)
				break;
		}
	}
	/* Both lists are sorted: walk them together. */
	size_t mi = 0;
	for (size_t i = 0; i < ng && mi < nm; i++) {
		uint64_t gs = grains[i], ge = gs + s->gsec;
		while (mi < nm && meta[mi].start + meta[mi].len <= gs)
			mi++;
		if (mi < nm && meta[mi].start < ge) {
			bad(c, "grain at sector %" PRIu64 " overlaps the %s (sector %" PRIu64 ")", gs,
			    meta[mi].what, meta[mi].start);
			if (c->nerr > 20)
				break;
		}
	}
out:
	free(meta);
	free(grains);
}

int vmdk_sparse_open(struct vmdk_sparse **out, int fd, const char *name, unsigned flags,
                     vmdk_report_fn report, void *opaque, unsigned *nerrors)
{
	struct chk c = { name, report, opaque, 0 };
	struct vmdk_sparse *s = calloc(1, sizeof(*s));
	uint8_t sec[512];
	struct stat st;
	int ret;
	bool all = flags & VMDK_OPEN_ALL_ERRORS;

	if (nerrors)
		*nerrors = 0;
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->alloc_lock, NULL);
	pthread_rwlock_init(&s->meta_rw, NULL);
	s->fd = fd;
	s->ro = flags & VMDK_OPEN_RDONLY;
	s->name = strdup(name);
	if (!s->name) {
		ret = -ENOMEM;
		goto fail;
	}
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		bad(&c, "cannot stat: %s", strerror(errno));
		goto fail;
	}
	s->file_sectors = (uint64_t)st.st_size / VMDK_SECTOR;
	if (st.st_size < (off_t)VMDK_SECTOR) {
		bad(&c, "file truncated: %lld bytes, no room for a header", (long long)st.st_size);
		ret = -EUCLEAN;
		goto fail;
	}
	ret = pread_full(fd, sec, sizeof(sec), 0);
	if (ret) {
		bad(&c, "cannot read the header: %s", strerror(-ret));
		goto fail;
	}
	vmdk_header_decode(&s->h, sec);
	if (!check_header(s, &c, &ret))
		goto fail;
	if (s->h.version == 3 && !s->ro) {
		bad(&c, "VMDK version 3 extents are supported read-only");
		ret = -EROFS;
		goto fail;
	}

	size_t nent = (size_t)s->ngt * VMDK_GTES_PER_GT;
	s->gte = malloc(nent * 4);
	s->gt_dirty = calloc(s->ngt, 1);
	if (!s->gte || !s->gt_dirty) {
		bad(&c, "out of memory for %u grain tables", s->ngt);
		ret = -ENOMEM;
		goto fail;
	}
	if ((ret = read_dir(s, s->h.gd_offset, &s->gd)) != 0 ||
	    (s->h.flags & VMDK_FLAG_RGD && (ret = read_dir(s, s->h.rgd_offset, &s->rgd)) != 0)) {
		bad(&c, "cannot read the grain directory: %s", strerror(-ret));
		goto fail;
	}
	/* Tables are read only once their directory entries are known to be in the file. */
	for (uint32_t i = 0; i < s->ngt; i++) {
		if (s->gd[i] && (uint64_t)s->gd[i] + GT_SECTORS > s->file_sectors) {
			bad(&c, "grain table %u at sector %u points past the end of the file", i, s->gd[i]);
			s->gd[i] = 0;
		}
	}
	if (c.nerr && !all) {
		ret = -EUCLEAN;
		goto fail;
	}
	ret = read_tables(s, s->gd, s->gte);
	if (ret) {
		bad(&c, "cannot read the grain tables: %s", strerror(-ret));
		goto fail;
	}
	check_layout(s, &c);
	if (c.nerr && !all) {
		ret = -EUCLEAN;
		goto fail;
	}

	if (s->h.desc_offset) {
		size_t dl = s->h.desc_size * VMDK_SECTOR;
		char *text = malloc(dl + 1);
		char derr[256];
		s->desc = malloc(sizeof(*s->desc));
		if (!text || !s->desc) {
			free(text);
			ret = -ENOMEM;
			goto fail;
		}
		ret = pread_full(fd, text, dl, s->h.desc_offset * VMDK_SECTOR);
		text[dl] = 0;
		if (!ret && vmdk_desc_parse(s->desc, text, dl, derr, sizeof(derr)) != 0) {
			bad(&c, "embedded %s", derr);
			free(s->desc);
			s->desc = NULL;
		}
		free(text);
		if (c.nerr && !all) {
			ret = -EUCLEAN;
			goto fail;
		}
	}

	uint64_t end = ((uint64_t)st.st_size + VMDK_SECTOR - 1) / VMDK_SECTOR;
	if (end < s->h.overhead)
		end = s->h.overhead;
	s->next_free = (end + s->gsec - 1) / s->gsec * s->gsec;
	if (c.nerr) {
		s->corrupt = true;
		s->ro = true;
	}
	if (nerrors)
		*nerrors = c.nerr;
	*out = s;
	return 0;
fail:
	if (nerrors)
		*nerrors = c.nerr;
	s->fd = -1;
	sparse_free(s);
	return ret ? ret : -EUCLEAN;
}

/* ---- flush and close ---- */

static int write_dir(struct vmdk_sparse *s, const uint32_t *dir, uint64_t off, uint32_t nsec)
{
	size_t n = (size_t)nsec * VMDK_SECTOR / 4;
	uint32_t *buf = calloc(n, 4);

	if (!buf)
		return -ENOMEM;
	for (uint32_t i = 0; i < s->ngt && i < n; i++)
		buf[i] = htole32(dir[i]);
	int r = pwrite_full(s->fd, buf, n * 4, off * VMDK_SECTOR);
	free(buf);
	return r;
}

static int sync_fd(int fd)
{
	return fdatasync(fd) < 0 ? -errno : 0;
}

/* Steps 3-5 of the order at the top of this file; meta_rw held exclusive. */
static int flush_locked(struct vmdk_sparse *s)
{
	uint32_t buf[VMDK_GTES_PER_GT];
	int r = sync_fd(s->fd);

	if (r || !s->dirty)
		return r;
	for (uint32_t i = 0; i < s->ngt; i++) {
		if (!s->gt_dirty[i])
			continue;
		for (uint32_t k = 0; k < VMDK_GTES_PER_GT; k++)
			buf[k] = htole32(s->gte[(size_t)i * VMDK_GTES_PER_GT + k]);
		if (s->rgd && s->rgd[i] && (r = pwrite_full(s->fd, buf, GT_BYTES, (uint64_t)s->rgd[i] * VMDK_SECTOR)))
			return r;
		if ((r = pwrite_full(s->fd, buf, GT_BYTES, (uint64_t)s->gd[i] * VMDK_SECTOR)))
			return r;
	}
	if ((r = sync_fd(s->fd)))
		return r;
	if (s->gd_dirty) {
		if (s->rgd && (r = write_dir(s, s->rgd, s->h.rgd_offset, s->gd_sectors)))
			return r;
		if ((r = write_dir(s, s->gd, s->h.gd_offset, s->gd_sectors)))
			return r;
		if ((r = sync_fd(s->fd)))
			return r;
	}
	memset(s->gt_dirty, 0, s->ngt);
	s->dirty = s->gd_dirty = false;
	return 0;
}

int vmdk_sparse_flush(struct vmdk_sparse *s)
{
	if (s->ro)
		return 0;
	pthread_rwlock_wrlock(&s->meta_rw);
	int r = flush_locked(s);
	pthread_rwlock_unlock(&s->meta_rw);
	return r;
}

int vmdk_sparse_close(struct vmdk_sparse *s)
{
	int r = 0;

	if (!s)
		return 0;
	if (!s->ro)
		r = vmdk_sparse_flush(s);
	if (s->fd >= 0)
		close(s->fd);
	sparse_free(s);
	return r;
}

/* ---- I/O ---- */

static inline uint32_t gte_get(struct vmdk_sparse *s, uint64_t g)
{
	return __atomic_load_n(&s->gte[g], __ATOMIC_ACQUIRE);
}

static inline bool gte_mapped(struct vmdk_sparse *s, uint32_t e)
{
	return e > 1 || (e == 1 && !(s->h.flags & VMDK_FLAG_ZERO_GRAIN));
}

int vmdk_sparse_preadv(struct vmdk_sparse *s, uint64_t off, const struct iovec *iov, int iovcnt,
                       size_t len)
{
	size_t done = 0;

	if (off > s->h.capacity * VMDK_SECTOR || len > s->h.capacity * VMDK_SECTOR - off)
		return -EINVAL;
	while (done < len) {
		uint64_t g = off / s->gbytes, in = off % s->gbytes;
		uint32_t e = gte_get(s, g);
		size_t n = (size_t)(s->gbytes - in);
		if (n > len - done)
			n = len - done;
		bool mapped = gte_mapped(s, e);
		/* Extend the run over following grains of the same kind (contiguous if mapped). */
		uint64_t g2 = g + 1;
		while (done + n < len) {
			uint32_t e2 = gte_get(s, g2);
			bool m2 = gte_mapped(s, e2);
			if (m2 != mapped || (mapped && (uint64_t)e2 != (uint64_t)e + (g2 - g) * s->gsec))
				break;
			size_t more = (size_t)s->gbytes;
			if (more > len - done - n)
				more = len - done - n;
			n += more;
			g2++;
		}
		if (!mapped) {
			dio_iov_zero(iov, iovcnt, done, n);
		} else {
			uint64_t last = (uint64_t)e + (g2 - g) * s->gsec;
			if (s->corrupt && last > s->file_sectors)
				return -EIO; /* a bad entry of a corrupt disk opened read-only */
			int r = dio_iov_rw(s->fd, 0, iov, iovcnt, done, n, (uint64_t)e * VMDK_SECTOR + in);
			if (r)
				return r;
		}
		done += n;
		off += n;
	}
	return 0;
}

/*
 * Takes places for up to `want` unmapped grains from g on (stopping at the
 * first one another writer mapped meanwhile).  Returns how many were
 * mapped, contiguously from sector *first; 0 if grain g is mapped now.
 * Called with meta_rw held shared.
 */
static int alloc_grains(struct vmdk_sparse *s, uint64_t g, uint64_t want, uint32_t *first,
                        uint64_t *count)
{
	pthread_mutex_lock(&s->alloc_lock);
	uint64_t k = 0;
	while (k < want && !gte_mapped(s, s->gte[g + k]))
		k++;
	*count = k;
	if (k == 0) {
		pthread_mutex_unlock(&s->alloc_lock);
		return 0;
	}
	/* Grain tables the directory lacks get a place too (GT and RGT in one grain). */
	uint64_t need = k * s->gsec;
	for (uint64_t t = g / VMDK_GTES_PER_GT; t <= (g + k - 1) / VMDK_GTES_PER_GT; t++)
		if (!s->gd[t])
			need += s->gsec;
	if (s->next_free + need - 1 > VMDK_MAX_SECTOR) {
		pthread_mutex_unlock(&s->alloc_lock);
		return -ENOSPC; /* 32-bit grain table entries: the file cannot pass 2 TiB */
	}
	uint64_t pos = s->next_free;
	if (ftruncate(s->fd, (off_t)((pos + need) * VMDK_SECTOR)) < 0) {
		int e = -errno;
		pthread_mutex_unlock(&s->alloc_lock);
		return e;
	}
	for (uint64_t t = g / VMDK_GTES_PER_GT; t <= (g + k - 1) / VMDK_GTES_PER_GT; t++) {
		if (s->gd[t])
			continue;
		s->gd[t] = (uint32_t)pos;
		if (s->rgd)
			s->rgd[t] = (uint32_t)(pos + GT_SECTORS);
		s->gt_dirty[t] = 1;
		s->gd_dirty = true;
		pos += s->gsec;
	}
	*first = (uint32_t)pos;
	for (uint64_t i = 0; i < k; i++) {
		__atomic_store_n(&s->gte[g + i], (uint32_t)(pos + i * s->gsec), __ATOMIC_RELEASE);
		s->gt_dirty[(g + i) / VMDK_GTES_PER_GT] = 1;
	}
	s->next_free = pos + k * s->gsec;
	s->allocated += k;
	s->dirty = true;
	pthread_mutex_unlock(&s->alloc_lock);
	return 1;
}

int vmdk_sparse_pwritev(struct vmdk_sparse *s, uint64_t off, const struct iovec *iov, int iovcnt,
                        size_t len)
{
	size_t done = 0;

	if (s->ro)
		return -EROFS;
	if (off > s->h.capacity * VMDK_SECTOR || len > s->h.capacity * VMDK_SECTOR - off)
		return -EINVAL;
	while (done < len) {
		uint64_t g = off / s->gbytes, in = off % s->gbytes;
		uint32_t e = gte_get(s, g);
		size_t n = (size_t)(s->gbytes - in);
		if (n > len - done)
			n = len - done;
		if (gte_mapped(s, e)) {
			uint64_t g2 = g + 1;
			while (done + n < len && gte_get(s, g2) == (uint64_t)e + (g2 - g) * s->gsec) {
				size_t more = (size_t)s->gbytes;
				if (more > len - done - n)
					more = len - done - n;
				n += more;
				g2++;
			}
			int r = dio_iov_rw(s->fd, 1, iov, iovcnt, done, n, (uint64_t)e * VMDK_SECTOR + in);
			if (r)
				return r;
			done += n;
			off += n;
			continue;
		}
		/* New grains: as many as this request covers, in one place. */
		uint64_t want = (in + (len - done) + s->gbytes - 1) / s->gbytes;
		uint32_t first = 0;
		uint64_t count;
		pthread_rwlock_rdlock(&s->meta_rw);
		int r = alloc_grains(s, g, want, &first, &count);
		if (r <= 0) {
			pthread_rwlock_unlock(&s->meta_rw);
			if (r < 0)
				return r;
			continue; /* mapped by another writer: write in place */
		}
		size_t span = (size_t)(count * s->gbytes - in);
		if (span > len - done)
			span = len - done;
		r = dio_iov_rw(s->fd, 1, iov, iovcnt, done, span, (uint64_t)first * VMDK_SECTOR + in);
		pthread_rwlock_unlock(&s->meta_rw);
		if (r)
			return r;
		done += span;
		off += span;
	}
	return 0;
}

/* ---- info and deep check ---- */

void vmdk_sparse_get_info(struct vmdk_sparse *s, struct vmdk_sparse_info *info)
{
	struct stat st;

	memset(info, 0, sizeof(*info));
	info->hdr = s->h;
	info->capacity = s->h.capacity * VMDK_SECTOR;
	info->grain_bytes = s->gbytes;
	pthread_mutex_lock(&s->alloc_lock);
	info->allocated_grains = s->allocated;
	pthread_mutex_unlock(&s->alloc_lock);
	if (fstat(s->fd, &st) == 0)
		info->file_bytes = (uint64_t)st.st_blocks * 512;
	info->read_only = s->ro;
	info->corrupt = s->corrupt;
	if (s->desc) {
		snprintf(info->create_type, sizeof(info->create_type), "%s", s->desc->create_type);
		info->cid = s->desc->cid;
	} else {
		snprintf(info->create_type, sizeof(info->create_type), "monolithicSparse");
	}
}

const struct vmdk_desc *vmdk_sparse_desc(struct vmdk_sparse *s)
{
	return s->desc;
}

unsigned vmdk_sparse_check_redundant(struct vmdk_sparse *s, vmdk_report_fn report, void *opaque)
{
	struct chk c = { s->name, report, opaque, 0 };
	unsigned nwarn = 0;
	char line[512];

#define WARN(...)                                                   \
	do {                                                        \
		nwarn++;                                            \
		snprintf(line, sizeof(line), __VA_ARGS__);          \
		warn(&c, "%s", line);                               \
	} while (0)
	if (s->desc && s->desc->nextents == 1 &&
	    s->desc->ext[0].sectors != s->h.capacity)
		WARN("embedded descriptor says %" PRIu64 " sectors, header %" PRIu64,
		     s->desc->ext[0].sectors, s->h.capacity);
	if (!s->rgd)
		return nwarn;
	uint32_t *rtab = malloc((size_t)s->ngt * GT_BYTES);
	uint32_t *rdir = malloc((size_t)s->ngt * 4);
	if (!rtab || !rdir) {
		free(rtab);
		free(rdir);
		return nwarn;
	}
	memcpy(rdir, s->rgd, (size_t)s->ngt * 4);
	for (uint32_t i = 0; i < s->ngt; i++)
		if (rdir[i] && (uint64_t)rdir[i] + GT_SECTORS > s->file_sectors)
			rdir[i] = 0; /* reported by the layout check */
	if (read_tables(s, rdir, rtab) == 0) {
		unsigned diffs = 0;
		for (uint32_t i = 0; i < s->ngt; i++) {
			if (!s->gd[i] != !rdir[i]) {
				WARN("grain directory entry %u: primary %u, redundant %u", i, s->gd[i], rdir[i]);
				continue;
			}
			for (uint32_t k = 0; k < VMDK_GTES_PER_GT; k++) {
				size_t x = (size_t)i * VMDK_GTES_PER_GT + k;
				if (s->gte[x] != rtab[x] && diffs++ < 10)
					WARN("grain %zu: primary table says sector %u, redundant %u", x,
					     s->gte[x], rtab[x]);
			}
		}
		if (diffs > 10)
			WARN("... %u redundant grain table entries differ in all", diffs);
	}
#undef WARN
	free(rtab);
	free(rdir);
	/* Space past the last grain that nothing references: a crash leaves some. */
	return nwarn;
}

/* ---- create and grow ---- */

int vmdk_sparse_create(const char *path, uint64_t capacity_bytes, uint32_t grain_sectors,
                       char *err, size_t errlen)
{
	struct vmdk_header h;
	struct vmdk_desc *d = NULL;
	char *text = NULL;
	uint8_t sec[512];
	uint64_t gsec = grain_sectors ? grain_sectors : 128;
	uint64_t cap = (capacity_bytes + VMDK_SECTOR - 1) / VMDK_SECTOR;
	int fd = -1, r;

	if (cap == 0 || cap > (1ull << 32)) {
		vdisk_errf(err, errlen, "%s: size must be between 512 bytes and 2 TiB for a sparse VMDK", path);
		return -EINVAL;
	}
	if (gsec < 8 || gsec > VMDK_MAX_GRAIN_SECTORS || (gsec & (gsec - 1))) {
		vdisk_errf(err, errlen, "%s: bad grain size", path);
		return -EINVAL;
	}
	uint64_t ngrains = (cap + gsec - 1) / gsec;
	uint64_t ngt = (ngrains + VMDK_GTES_PER_GT - 1) / VMDK_GTES_PER_GT;
	uint64_t gd_sectors = (ngt * 4 + VMDK_SECTOR - 1) / VMDK_SECTOR;

	memset(&h, 0, sizeof(h));
	h.magic = VMDK4_MAGIC;
	h.version = 1;
	h.flags = VMDK_FLAG_NL_DETECT | VMDK_FLAG_RGD;
	h.capacity = cap;
	h.grain_size = gsec;
	h.desc_offset = 1;
	h.desc_size = 20;
	h.gtes_per_gt = VMDK_GTES_PER_GT;
	/* The layout qemu-img and VMware use: each directory followed by its tables. */
	h.rgd_offset = h.desc_offset + h.desc_size;
	h.gd_offset = h.rgd_offset + gd_sectors + ngt * GT_SECTORS;
	h.overhead = (h.gd_offset + gd_sectors + ngt * GT_SECTORS + gsec - 1) / gsec * gsec;
	memcpy(h.nl_chars, "\n \r\n", 4);

	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	if (strchr(base, '"') || strchr(base, '\n')) {
		vdisk_errf(err, errlen, "%s: file name cannot hold '\"' or a newline in a VMDK", path);
		return -EINVAL;
	}
	d = malloc(sizeof(*d));
	text = calloc(h.desc_size, VMDK_SECTOR);
	uint32_t *dir = calloc(gd_sectors, VMDK_SECTOR);
	if (!d || !text || !dir) {
		r = -ENOMEM;
		vdisk_errf(err, errlen, "%s: out of memory", path);
		goto out;
	}
	vmdk_desc_init(d, "monolithicSparse", VMDK_EXT_SPARSE, cap, base);
	r = vmdk_desc_format(d, text, h.desc_size * VMDK_SECTOR);
	if (r < 0) {
		vdisk_errf(err, errlen, "%s: descriptor does not fit", path);
		goto out;
	}
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		r = -errno;
		vdisk_errf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	/* Tables start out zero: the file's holes. */
	if (ftruncate(fd, (off_t)(h.overhead * VMDK_SECTOR)) < 0) {
		r = -errno;
		goto ioerr;
	}
	if ((r = pwrite_full(fd, text, h.desc_size * VMDK_SECTOR, h.desc_offset * VMDK_SECTOR)))
		goto ioerr;
	for (int k = 0; k < 2; k++) {
		uint64_t tables = (k ? h.gd_offset : h.rgd_offset) + gd_sectors;
		for (uint64_t i = 0; i < ngt; i++)
			dir[i] = htole32((uint32_t)(tables + i * GT_SECTORS));
		if ((r = pwrite_full(fd, dir, gd_sectors * VMDK_SECTOR,
		                     (k ? h.gd_offset : h.rgd_offset) * VMDK_SECTOR)))
			goto ioerr;
	}
	vmdk_header_encode(&h, sec);
	if ((r = pwrite_full(fd, sec, sizeof(sec), 0)) || (r = sync_fd(fd)))
		goto ioerr;
	r = 0;
	goto out;
ioerr:
	vdisk_errf(err, errlen, "%s: write failed: %s", path, strerror(-r));
	unlink(path);
out:
	if (fd >= 0)
		close(fd);
	free(dir);
	free(text);
	free(d);
	return r;
}

/*
 * Growing, crash-safe: new grain tables (zero: holes) and, if the directory
 * outgrows its sectors, new directories are placed past the end and made
 * durable; only then do the directory entries change (in place when they
 * fit, redundant copy first), and last the header — one sector, so the
 * image has either the old capacity and layout or the new one.  The
 * embedded descriptor follows; the header is what readers trust.
 */
int vmdk_sparse_grow(struct vmdk_sparse *s, uint64_t new_bytes, char *err, size_t errlen)
{
	uint64_t cap = (new_bytes + VMDK_SECTOR - 1) / VMDK_SECTOR;
	int r;

	if (s->ro) {
		vdisk_errf(err, errlen, "%s: opened read-only", s->name);
		return -EROFS;
	}
	if (cap < s->h.capacity) {
		vdisk_errf(err, errlen, "%s: shrinking is not supported (%" PRIu64 " < %" PRIu64 " bytes)",
		     s->name, cap * VMDK_SECTOR, s->h.capacity * VMDK_SECTOR);
		return -ENOTSUP;
	}
	if (cap == s->h.capacity)
		return 0;
	if (cap > VMDK_MAX_GRAINS * s->gsec || cap > (1ull << 32)) {
		vdisk_errf(err, errlen, "%s: %" PRIu64 " bytes is too large for a sparse VMDK", s->name,
		     cap * VMDK_SECTOR);
		return -EINVAL;
	}
	pthread_rwlock_wrlock(&s->meta_rw);
	if ((r = flush_locked(s)))
		goto ioerr;
	uint64_t ngrains = (cap + s->gsec - 1) / s->gsec;
	uint32_t ngt = (uint32_t)((ngrains + VMDK_GTES_PER_GT - 1) / VMDK_GTES_PER_GT);
	uint32_t gd_sectors = (uint32_t)(((uint64_t)ngt * 4 + VMDK_SECTOR - 1) / VMDK_SECTOR);
	bool have_rgd = s->rgd != NULL;
	size_t ndir = (size_t)gd_sectors * VMDK_SECTOR / 4;

	uint32_t *gd = calloc(ndir, 4), *rgd = have_rgd ? calloc(ndir, 4) : NULL;
	uint32_t *gte = calloc((size_t)ngt * VMDK_GTES_PER_GT, 4);
	uint8_t *dirty = calloc(ngt, 1);
	if (!gd || (have_rgd && !rgd) || !gte || !dirty) {
		free(gd);
		free(rgd);
		free(gte);
		free(dirty);
		r = -ENOMEM;
		goto ioerr;
	}
	memcpy(gd, s->gd, (size_t)s->ngt * 4);
	if (have_rgd)
		memcpy(rgd, s->rgd, (size_t)s->ngt * 4);
	memcpy(gte, s->gte, (size_t)s->ngt * GT_BYTES);

	uint64_t pos = s->next_free;
	uint64_t add = (uint64_t)(ngt - s->ngt) * GT_SECTORS * (have_rgd ? 2 : 1);
	bool move_dir = gd_sectors > s->gd_sectors;
	if (move_dir)
		add += (uint64_t)gd_sectors * (have_rgd ? 2 : 1);
	uint64_t end = (pos + add + s->gsec - 1) / s->gsec * s->gsec;
	if (end > VMDK_MAX_SECTOR) {
		r = -ENOSPC;
		goto freeall;
	}
	uint64_t new_gd = s->h.gd_offset, new_rgd = s->h.rgd_offset;
	if (move_dir) {
		new_gd = pos;
		pos += gd_sectors;
		if (have_rgd) {
			new_rgd = pos;
			pos += gd_sectors;
		}
	}
	for (uint32_t i = s->ngt; i < ngt; i++) {
		gd[i] = (uint32_t)pos;
		pos += GT_SECTORS;
		if (have_rgd) {
			rgd[i] = (uint32_t)pos;
			pos += GT_SECTORS;
		}
	}
	if (ftruncate(s->fd, (off_t)(end * VMDK_SECTOR)) < 0) {
		r = -errno;
		goto freeall;
	}
	/* Redundant directory first, then primary; in place or in the new space. */
	uint32_t *save_gd = s->gd, *save_rgd = s->rgd;
	uint32_t save_ngt = s->ngt;
	s->gd = gd;
	s->rgd = rgd;
	s->ngt = ngt;
	r = sync_fd(s->fd);
	if (!r && have_rgd)
		r = write_dir(s, rgd, new_rgd, gd_sectors);
	if (!r)
		r = write_dir(s, gd, new_gd, gd_sectors);
	if (!r)
		r = sync_fd(s->fd);
	s->gd = save_gd;
	s->rgd = save_rgd;
	s->ngt = save_ngt;
	if (r)
		goto freeall;

	struct vmdk_header h = s->h;
	uint8_t sec[512];
	h.capacity = cap;
	h.gd_offset = new_gd;
	h.rgd_offset = new_rgd;
	vmdk_header_encode(&h, sec);
	if ((r = pwrite_full(s->fd, sec, sizeof(sec), 0)) || (r = sync_fd(s->fd)))
		goto freeall;

	/* Committed: switch the in-memory state over. */
	free(s->gd);
	free(s->rgd);
	free(s->gte);
	free(s->gt_dirty);
	s->gd = gd;
	s->rgd = rgd;
	s->gte = gte;
	s->gt_dirty = dirty;
	s->h = h;
	s->ngrains = ngrains;
	s->ngt = ngt;
	s->gd_sectors = gd_sectors;
	s->next_free = end;
	s->file_sectors = end;

	if (s->desc && s->desc->nextents == 1) {
		char *text = calloc(s->h.desc_size, VMDK_SECTOR);
		s->desc->ext[0].sectors = cap;
		vmdk_desc_set_geometry(s->desc, cap);
		if (text && vmdk_desc_format(s->desc, text, s->h.desc_size * VMDK_SECTOR) > 0) {
			r = pwrite_full(s->fd, text, s->h.desc_size * VMDK_SECTOR,
			                s->h.desc_offset * VMDK_SECTOR);
			if (!r)
				r = sync_fd(s->fd);
		}
		free(text);
	}
	pthread_rwlock_unlock(&s->meta_rw);
	if (r)
		vdisk_errf(err, errlen, "%s: updating the descriptor: %s", s->name, strerror(-r));
	return r;
freeall:
	free(gd);
	free(rgd);
	free(gte);
	free(dirty);
ioerr:
	pthread_rwlock_unlock(&s->meta_rw);
	vdisk_errf(err, errlen, "%s: grow failed: %s", s->name, strerror(-r));
	return r;
}

/*
 * vstate.c — tagged, versioned save/restore of device state tables.
 */
#include "vstate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VSTATE_MAGIC 0x31545356u   /* "VST1" */

static int vs_put(struct vstate_buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n)
			cap *= 2;
		uint8_t *d = realloc(b->data, cap);
		if (!d)
			return -1;
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

static int vs_put_u16(struct vstate_buf *b, uint16_t v) { return vs_put(b, &v, 2); }
static int vs_put_u32(struct vstate_buf *b, uint32_t v) { return vs_put(b, &v, 4); }

static int vs_put_str(struct vstate_buf *b, const char *s)
{
	size_t n = strlen(s);
	if (n > 0xFFFF)
		return -1;
	return vs_put_u16(b, (uint16_t)n) || vs_put(b, s, n) ? -1 : 0;
}

int vstate_save(struct vstate_buf *b, const struct vstate_desc *d, const void *obj)
{
	uint32_t n = 0;

	for (const struct vstate_field *f = d->fields; f->name; f++)
		n++;
	if (vs_put_u32(b, VSTATE_MAGIC) || vs_put_str(b, d->name) || vs_put_u32(b, d->version) ||
	    vs_put_u32(b, n))
		return -1;
	for (const struct vstate_field *f = d->fields; f->name; f++) {
		if (vs_put_str(b, f->name) || vs_put_u32(b, (uint32_t)f->size) ||
		    vs_put(b, (const uint8_t *)obj + f->offset, f->size))
			return -1;
	}
	return 0;
}

static int vs_get(struct vstate_buf *b, void *p, size_t n)
{
	if (n > b->len - b->pos)
		return -1;
	memcpy(p, b->data + b->pos, n);
	b->pos += n;
	return 0;
}

int vstate_load(struct vstate_buf *b, const struct vstate_desc *d, void *obj,
                char *err, size_t errlen)
{
	uint32_t magic, version, n, size;
	uint16_t len;
	char name[256];

	if (vs_get(b, &magic, 4) || magic != VSTATE_MAGIC || vs_get(b, &len, 2) ||
	    len >= sizeof(name) || vs_get(b, name, len)) {
		snprintf(err, errlen, "%s: saved state is truncated or not a state item", d->name);
		return -1;
	}
	name[len] = 0;
	if (strcmp(name, d->name) != 0) {
		snprintf(err, errlen, "saved state has item \"%s\" where \"%s\" was expected", name, d->name);
		return -1;
	}
	if (vs_get(b, &version, 4) || vs_get(b, &n, 4)) {
		snprintf(err, errlen, "%s: truncated header", d->name);
		return -1;
	}
	if (version > d->version) {
		snprintf(err, errlen, "%s: saved by a newer version (%u > %u)", d->name, version, d->version);
		return -1;
	}
	for (uint32_t i = 0; i < n; i++) {
		const struct vstate_field *f;
		if (vs_get(b, &len, 2) || len >= sizeof(name) || vs_get(b, name, len) ||
		    vs_get(b, &size, 4) || size > b->len - b->pos) {
			snprintf(err, errlen, "%s: truncated field %u", d->name, i);
			return -1;
		}
		name[len] = 0;
		for (f = d->fields; f->name; f++)
			if (strcmp(f->name, name) == 0)
				break;
		if (!f->name) {
			b->pos += size;   /* a field this version no longer has */
			continue;
		}
		if (f->size != size) {
			snprintf(err, errlen, "%s.%s: size %u, expected %zu", d->name, name, size, f->size);
			return -1;
		}
		vs_get(b, (uint8_t *)obj + f->offset, size);
	}
	return 0;
}

void vstate_buf_free(struct vstate_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

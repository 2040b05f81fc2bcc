/*
 * vstate.h — device state described as data, saved as tagged, versioned items.
 *
 * A device describes its saved state as a table of fields (name, offset,
 * size) over its own struct.  The stream is a sequence of items:
 *   u32 magic 'VST1' | u16 name_len | name | u32 version | u32 nfields |
 *   per field: u16 name_len | name | u32 size | bytes
 * Restore matches fields by name, so adding a field with a new version keeps
 * old streams loadable; a size mismatch or a truncated stream is an error.
 */
#ifndef VIREO_VSTATE_H
#define VIREO_VSTATE_H

#include <stddef.h>
#include <stdint.h>

struct vstate_field {
	const char *name;
	size_t offset;
	size_t size;
};

struct vstate_desc {
	const char *name;
	uint32_t version;
	const struct vstate_field *fields;   /* terminated by a NULL name */
};

#define VSTATE_FIELD(type, member) \
	{ #member, offsetof(type, member), sizeof(((type *)0)->member) }
#define VSTATE_END { NULL, 0, 0 }

struct vstate_buf {
	uint8_t *data;
	size_t len, cap, pos;
};

int vstate_save(struct vstate_buf *b, const struct vstate_desc *d, const void *obj);
/* Reads the next item; it must carry d->name. Returns 0 or -1 with err set. */
int vstate_load(struct vstate_buf *b, const struct vstate_desc *d, void *obj,
                char *err, size_t errlen);
void vstate_buf_free(struct vstate_buf *b);

#endif

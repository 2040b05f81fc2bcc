/*
 * aml.h — a small builder for ACPI Machine Language (the DSDT's body) and
 * for resource templates.
 *
 * Everything appends to a growable byte buffer.  Objects with a PkgLength
 * (Scope, Device, Package, Method, Buffer) are opened with a *_begin call
 * that returns a mark, filled, then closed with aml_end(mark), which writes
 * the shortest PkgLength encoding.  Allocation failure is sticky: check
 * aml.oom once at the end.
 */
#ifndef VIREO_AML_H
#define VIREO_AML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct aml {
	uint8_t *buf;
	size_t len, cap;
	bool oom;
};

void aml_init(struct aml *a);
void aml_free(struct aml *a);

void aml_byte(struct aml *a, uint8_t b);
void aml_bytes(struct aml *a, const void *p, size_t n);
void aml_word(struct aml *a, uint16_t v);
void aml_dword(struct aml *a, uint32_t v);

/* "\\_SB.PCI0", "_HID", "^ISA": segments are padded to four characters with '_'. */
void aml_namestring(struct aml *a, const char *path);
/* The shortest integer encoding (Zero, One, Ones, Byte/Word/DWord/QWord). */
void aml_integer(struct aml *a, uint64_t v);
void aml_string(struct aml *a, const char *s);
/* EisaId("PNP0A03") as its compressed DWord. */
void aml_eisaid(struct aml *a, const char *id);
uint32_t aml_eisaid_value(const char *id);

/* Name(path, <object appended next>) */
void aml_name(struct aml *a, const char *path);

size_t aml_scope_begin(struct aml *a, const char *path);
size_t aml_device_begin(struct aml *a, const char *name);
size_t aml_package_begin(struct aml *a, unsigned nelems);
size_t aml_method_begin(struct aml *a, const char *name, unsigned nargs, bool serialized);
/* Buffer of the bytes in `data` (a resource template, for instance). */
void aml_buffer(struct aml *a, const uint8_t *data, size_t n);
void aml_return_integer(struct aml *a, uint64_t v);
void aml_end(struct aml *a, size_t mark);

/* ---- resource template descriptors (append to a struct aml used as a byte buffer) ---- */
void rt_io(struct aml *r, uint16_t min, uint16_t max, uint8_t align, uint8_t len);
void rt_irq_noflags(struct aml *r, uint16_t mask);
void rt_word_bus(struct aml *r, uint16_t min, uint16_t max);
void rt_word_io(struct aml *r, uint16_t min, uint16_t max);
void rt_dword_mem(struct aml *r, uint32_t min, uint32_t max, bool cacheable);
void rt_end(struct aml *r);

#endif

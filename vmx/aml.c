/*
 * aml.c — AML and resource-template encoding (ACPI 6.x, chapters 19/20 and 6.4).
 */
#include "aml.h"

#include <stdlib.h>
#include <string.h>

#define AML_ZERO        0x00
#define AML_ONE         0x01
#define AML_NAME        0x08
#define AML_BYTEPFX     0x0A
#define AML_WORDPFX     0x0B
#define AML_DWORDPFX    0x0C
#define AML_STRINGPFX   0x0D
#define AML_QWORDPFX    0x0E
#define AML_SCOPE       0x10
#define AML_BUFFER      0x11
#define AML_PACKAGE     0x12
#define AML_METHOD      0x14
#define AML_DUALNAME    0x2E
#define AML_MULTINAME   0x2F
#define AML_EXTOP       0x5B
#define AML_DEVICE      0x82
#define AML_RETURN      0xA4
#define AML_ONES        0xFF

/* Room reserved for a PkgLength until its object is closed. */
#define AML_PKG_RESERVE 4

void aml_init(struct aml *a)
{
	memset(a, 0, sizeof(*a));
}

void aml_free(struct aml *a)
{
	free(a->buf);
	aml_init(a);
}

static bool aml_grow(struct aml *a, size_t n)
{
	if (a->oom)
		return false;
	if (a->len + n > a->cap) {
		size_t cap = a->cap ? a->cap : 256;
		uint8_t *p;
		while (cap < a->len + n)
			cap *= 2;
		p = realloc(a->buf, cap);
		if (!p) {
			a->oom = true;
			return false;
		}
		a->buf = p;
		a->cap = cap;
	}
	return true;
}

void aml_bytes(struct aml *a, const void *p, size_t n)
{
	if (!n || !aml_grow(a, n))
		return;
	memcpy(a->buf + a->len, p, n);
	a->len += n;
}

void aml_byte(struct aml *a, uint8_t b)
{
	aml_bytes(a, &b, 1);
}

void aml_word(struct aml *a, uint16_t v)
{
	uint8_t b[2] = { (uint8_t)v, (uint8_t)(v >> 8) };
	aml_bytes(a, b, 2);
}

void aml_dword(struct aml *a, uint32_t v)
{
	aml_word(a, (uint16_t)v);
	aml_word(a, (uint16_t)(v >> 16));
}

static void aml_nameseg(struct aml *a, const char *s, size_t n)
{
	char seg[4] = { '_', '_', '_', '_' };

	memcpy(seg, s, n > 4 ? 4 : n);
	aml_bytes(a, seg, 4);
}

void aml_namestring(struct aml *a, const char *path)
{
	const char *p = path;
	unsigned nseg = 0;

	while (*p == '\\' || *p == '^')
		aml_byte(a, (uint8_t)*p++);
	if (!*p) {
		aml_byte(a, 0x00);   /* NullName */
		return;
	}
	for (const char *q = p; *q; q++)
		if (*q == '.')
			nseg++;
	nseg++;
	if (nseg == 2) {
		aml_byte(a, AML_DUALNAME);
	} else if (nseg > 2) {
		aml_byte(a, AML_MULTINAME);
		aml_byte(a, (uint8_t)nseg);
	}
	while (*p) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		aml_nameseg(a, p, n);
		p += n;
		if (*p == '.')
			p++;
	}
}

void aml_integer(struct aml *a, uint64_t v)
{
	if (v == 0) {
		aml_byte(a, AML_ZERO);
	} else if (v == 1) {
		aml_byte(a, AML_ONE);
	} else if (v <= 0xFF) {
		aml_byte(a, AML_BYTEPFX);
		aml_byte(a, (uint8_t)v);
	} else if (v <= 0xFFFF) {
		aml_byte(a, AML_WORDPFX);
		aml_word(a, (uint16_t)v);
	} else if (v <= 0xFFFFFFFFu) {
		aml_byte(a, AML_DWORDPFX);
		aml_dword(a, (uint32_t)v);
	} else if (v == ~0ull) {
		aml_byte(a, AML_ONES);
	} else {
		aml_byte(a, AML_QWORDPFX);
		aml_dword(a, (uint32_t)v);
		aml_dword(a, (uint32_t)(v >> 32));
	}
}

void aml_string(struct aml *a, const char *s)
{
	aml_byte(a, AML_STRINGPFX);
	aml_bytes(a, s, strlen(s) + 1);
}

static unsigned hexval(char c)
{
	if (c >= '0' && c <= '9')
		return (unsigned)(c - '0');
	if (c >= 'A' && c <= 'F')
		return (unsigned)(c - 'A' + 10);
	if (c >= 'a' && c <= 'f')
		return (unsigned)(c - 'a' + 10);
	return 0;
}

uint32_t aml_eisaid_value(const char *id)
{
	uint32_t v;

	if (strlen(id) != 7)
		return 0;
	/* Three 5-bit letters and four hex digits, stored big-endian. */
	v = (uint32_t)((id[0] - 0x40) & 0x1F) << 26 | (uint32_t)((id[1] - 0x40) & 0x1F) << 21 |
	    (uint32_t)((id[2] - 0x40) & 0x1F) << 16 | hexval(id[3]) << 12 | hexval(id[4]) << 8 |
	    hexval(id[5]) << 4 | hexval(id[6]);
	return (v >> 24) | ((v >> 8) & 0xFF00) | ((v << 8) & 0xFF0000) | (v << 24);
}

void aml_eisaid(struct aml *a, const char *id)
{
	aml_byte(a, AML_DWORDPFX);
	aml_dword(a, aml_eisaid_value(id));
}

void aml_name(struct aml *a, const char *path)
{
	aml_byte(a, AML_NAME);
	aml_namestring(a, path);
}

static size_t aml_pkg_open(struct aml *a)
{
	size_t mark = a->len;
	static const uint8_t zero[AML_PKG_RESERVE];

	aml_bytes(a, zero, sizeof(zero));
	return mark;
}

void aml_end(struct aml *a, size_t mark)
{
	size_t body, total;
	unsigned n;
	uint8_t enc[4];

	if (a->oom || mark + AML_PKG_RESERVE > a->len)
		return;
	body = a->len - mark - AML_PKG_RESERVE;
	if (body + 1 < 0x40)
		n = 1;
	else if (body + 2 < 0x1000)
		n = 2;
	else if (body + 3 < 0x100000)
		n = 3;
	else
		n = 4;
	total = body + n;
	if (n == 1) {
		enc[0] = (uint8_t)total;
	} else {
		enc[0] = (uint8_t)(((n - 1) << 6) | (total & 0x0F));
		for (unsigned i = 1; i < n; i++)
			enc[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
	}
	memmove(a->buf + mark + n, a->buf + mark + AML_PKG_RESERVE, body);
	memcpy(a->buf + mark, enc, n);
	a->len -= AML_PKG_RESERVE - n;
}

size_t aml_scope_begin(struct aml *a, const char *path)
{
	size_t mark;

	aml_byte(a, AML_SCOPE);
	mark = aml_pkg_open(a);
	aml_namestring(a, path);
	return mark;
}

size_t aml_device_begin(struct aml *a, const char *name)
{
	size_t mark;

	aml_byte(a, AML_EXTOP);
	aml_byte(a, AML_DEVICE);
	mark = aml_pkg_open(a);
	aml_namestring(a, name);
	return mark;
}

size_t aml_package_begin(struct aml *a, unsigned nelems)
{
	size_t mark;

	aml_byte(a, AML_PACKAGE);
	mark = aml_pkg_open(a);
	aml_byte(a, (uint8_t)(nelems > 255 ? 255 : nelems));
	return mark;
}

size_t aml_method_begin(struct aml *a, const char *name, unsigned nargs, bool serialized)
{
	size_t mark;

	aml_byte(a, AML_METHOD);
	mark = aml_pkg_open(a);
	aml_namestring(a, name);
	aml_byte(a, (uint8_t)((nargs & 7) | (serialized ? 0x08 : 0)));
	return mark;
}

void aml_buffer(struct aml *a, const uint8_t *data, size_t n)
{
	size_t mark;

	aml_byte(a, AML_BUFFER);
	mark = aml_pkg_open(a);
	aml_integer(a, n);
	aml_bytes(a, data, n);
	aml_end(a, mark);
}

void aml_return_integer(struct aml *a, uint64_t v)
{
	aml_byte(a, AML_RETURN);
	aml_integer(a, v);
}

/* ---- resource descriptors ---- */

void rt_io(struct aml *r, uint16_t min, uint16_t max, uint8_t align, uint8_t len)
{
	aml_byte(r, 0x47);       /* small item: I/O port, 7 bytes */
	aml_byte(r, 0x01);       /* 16-bit decode */
	aml_word(r, min);
	aml_word(r, max);
	aml_byte(r, align);
	aml_byte(r, len);
}

void rt_irq_noflags(struct aml *r, uint16_t mask)
{
	aml_byte(r, 0x22);       /* small item: IRQ, 2 bytes (edge, active high) */
	aml_word(r, mask);
}

/* Word/DWord address space descriptors as a producer with fixed min and max. */
static void rt_addr_head(struct aml *r, uint8_t tag, uint16_t len, uint8_t type, uint8_t tflags)
{
	aml_byte(r, tag);
	aml_word(r, len);
	aml_byte(r, type);
	aml_byte(r, 0x0C);       /* MinFixed, MaxFixed, PosDecode, ResourceProducer */
	aml_byte(r, tflags);
}

void rt_word_bus(struct aml *r, uint16_t min, uint16_t max)
{
	rt_addr_head(r, 0x88, 13, 2, 0);
	aml_word(r, 0);
	aml_word(r, min);
	aml_word(r, max);
	aml_word(r, 0);
	aml_word(r, (uint16_t)(max - min + 1));
}

void rt_word_io(struct aml *r, uint16_t min, uint16_t max)
{
	rt_addr_head(r, 0x88, 13, 1, 0x03);   /* EntireRange */
	aml_word(r, 0);
	aml_word(r, min);
	aml_word(r, max);
	aml_word(r, 0);
	aml_word(r, (uint16_t)(max - min + 1));
}

void rt_dword_mem(struct aml *r, uint32_t min, uint32_t max, bool cacheable)
{
	rt_addr_head(r, 0x87, 23, 0, (uint8_t)(0x01 | (cacheable ? 0x02 : 0)));   /* ReadWrite */
	aml_dword(r, 0);
	aml_dword(r, min);
	aml_dword(r, max);
	aml_dword(r, 0);
	aml_dword(r, max - min + 1);
}

void rt_end(struct aml *r)
{
	aml_byte(r, 0x79);
	aml_byte(r, 0x00);
}

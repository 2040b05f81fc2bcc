/*
 * fuzz_vmdb_wire.c — the VMDB wire decoder, as a server meets it: a byte
 * stream cut into frames, each header checked, each payload decoded; decoded
 * batches are applied to a database as an unprivileged client (schema and
 * access checks), and re-encoded then decoded again (must round-trip).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmdb/vmdb_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char schema_text[] =
	"/a/name string rw\n/a/n int rw\n/a/b bool rw\n/a/e enum rw x,y,z\n"
	"/a/ro int ro\n/vm/#/state/power enum ro off,on\n/vm/#/request int rw\n";

static void note_cb(void *opaque, const char *path, const struct vmdb_value *v)
{
	char buf[64];
	if (v)
		vmdb_value_format(v, buf, sizeof(buf));
}

/* Fix a header up so random input reaches the payload decoder often. */
static void fixup(uint8_t *p, size_t left)
{
	uint32_t len = (uint32_t)(left - VMDB_WIRE_HDR);
	uint32_t want = (uint32_t)p[4] | (uint32_t)p[5] << 8;
	if (want < len)
		len = want;
	p[0] = VMDB_WIRE_VERSION;
	p[1] = (uint8_t)(1 + p[1] % (VMDB_MSG__MAX - 1));
	p[2] &= 3;
	p[3] = 0;
	p[4] = (uint8_t)len;
	p[5] = (uint8_t)(len >> 8);
	p[6] = (uint8_t)(len >> 16);
	p[7] = (uint8_t)(len >> 24);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vmdb_schema *sch;
	static struct vmdb_db *db;
	static struct vmdb_ctx *watcher;
	char err[128];
	if (!sch) {
		sch = vmdb_schema_parse(schema_text, strlen(schema_text), err, sizeof(err));
		db = vmdb_db_new(sch);
		watcher = vmdb_ctx_new(db, NULL);
		vmdb_watch(watcher, "/", note_cb, NULL);
	}
	/* Let mostly-valid headers through: force the version byte when asked. */
	uint8_t *buf = malloc(size + 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	size_t pos = 0;
	const struct vmdb_ident client = { .uid = 1000, .pid = 1 };
	while (size - pos >= VMDB_WIRE_HDR) {
		struct vmdb_wire_hdr h;
		if (buf[pos] & 0x10)
			fixup(buf + pos, size - pos);
		if (vmdb_wire_parse_hdr(buf + pos, &h))
			break;
		if (size - pos - VMDB_WIRE_HDR < h.len)
			break;
		struct vmdb_msgbuf m;
		if (vmdb_wire_decode(&h, buf + pos + VMDB_WIRE_HDR, &m) == 0) {
			if (m.nops) {
				vmdb_db_apply(db, m.ops, m.nops, &client, false, NULL);
				struct vmdb_wbuf b = { 0 };
				if (!vmdb_wire_put_batch(&b, (enum vmdb_msg)h.type, h.flags, h.reqid, m.ops, m.nops)) {
					struct vmdb_wire_hdr h2;
					struct vmdb_msgbuf m2;
					if (vmdb_wire_parse_hdr(b.p, &h2) || vmdb_wire_decode(&h2, b.p + VMDB_WIRE_HDR, &m2))
						abort(); /* what we encode must decode */
					if (m2.nops != m.nops)
						abort();
					for (unsigned i = 0; i < m.nops; i++)
						if (strcmp(m2.ops[i].path, m.ops[i].path) || m2.ops[i].kind != m.ops[i].kind)
							abort();
					vmdb_wire_msg_free(&m2);
				}
				vmdb_wbuf_free(&b);
			}
			vmdb_wire_msg_free(&m);
		}
		pos += VMDB_WIRE_HDR + h.len;
	}
	/* Keep the tree from growing without bound across inputs. */
	struct vmdb_op del = { .kind = VMDB_OP_DEL, .path = (char *)"/" };
	vmdb_db_apply(db, &del, 1, NULL, false, NULL);
	vmdb_ctx_dispatch(watcher);
	free(buf);
	return 0;
}

#!/usr/bin/env python3
# Turns vmdb/schema.txt into a C string (vmdb_schema_text) at build time.
import sys

src, dst = sys.argv[1], sys.argv[2]
with open(src, encoding='utf-8') as f:
    text = f.read()
out = ['/* generated from schema.txt by embed_schema.py: do not edit */',
       'extern const char vmdb_schema_text[];', 'const char vmdb_schema_text[] =']
for line in text.splitlines(True):
    esc = line.replace('\\', '\\\\').replace('"', '\\"').replace('\n', '\\n')
    out.append('\t"' + esc + '"')
out.append('\t"";')
with open(dst, 'w', encoding='utf-8') as f:
    f.write('\n'.join(out) + '\n')

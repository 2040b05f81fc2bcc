#!/usr/bin/env python3
"""Sum meson's test logs of one or more build folders into the closing line
`N passed, N failed, N skipped` that CI reads.  Exit 1 when anything failed
or when no test ran at all."""
import json
import os
import sys

passed = failed = skipped = 0
failures = []
for build in sys.argv[1:]:
    log = os.path.join(build, 'meson-logs', 'testlog.json')
    if not os.path.exists(log):
        print(f'{build}: no test log (the suite did not run)')
        failed += 1
        continue
    with open(log) as f:
        for line in f:
            t = json.loads(line)
            r = t.get('result')
            if r in ('OK', 'EXPECTEDFAIL'):
                passed += 1
            elif r == 'SKIP':
                skipped += 1
            else:
                failed += 1
                failures.append(f"{build}: {t.get('name')} ({r})")
for f in failures:
    print('FAILED:', f)
print(f'{passed} passed, {failed} failed, {skipped} skipped')
sys.exit(1 if failed or passed == 0 else 0)

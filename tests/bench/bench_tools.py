#!/usr/bin/env python3
"""Benchmark: guest tools (issue #7), one boot of the demo guest with
Vireo's tools on ENGINE (default bt):

  rpc        RPCI round trips per second from the guest (vireo-rpc --repeat
             on one channel: `info-get` of a 16-byte value), low bandwidth
             and with the host's high-bandwidth offer
  balloon    inflate rate: `vireoctl balloon VM 256` until the guest's
             balloon holds 256 MiB, in MiB/s (vmw_balloon asks for up to
             512 pages per batch, once a second, with no rate limit)
  shutdown   `vireoctl stop` (a graceful request through the tools) until
             the VM is powered off, in seconds

usage: bench_tools.py TOOLS_DIR [ENGINE]
"""
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'guesttools'))
import guestvm  # noqa: E402

tools_dir = sys.argv[1]
engine = sys.argv[2] if len(sys.argv) > 2 else 'bt'
img = guestvm.build_image('build-demo.sh', tools_dir)
vm = guestvm.GuestVM({
    'memsize': '1024', 'monitor.engine': engine,
    'linux.kernel': os.path.join(img, 'vmlinuz'), 'linux.initrd': os.path.join(img, 'initrd.img'),
    'linux.cmdline': 'console=ttyS0', 'guestinfo.bench': '0123456789abcdef',
}, name='bench')
results = {}
try:
    vm.start()
    vm.expect('VIREO-INIT-READY', 1200)
    vm.expect('# ', 60)
    vm.wait_get('guest/toolsversion', lambda v: v != '', 60, 'tools up')
    for mode, flag in (('low bandwidth', '--lb '), ('high bandwidth offered', '')):
        out, st = vm.run(f"vireo-rpc {flag}--repeat 300 'info-get guestinfo.bench'", 600)
        m = re.search(r'([0-9.]+) per second', out)
        assert st == '0' and m, f'vireo-rpc --repeat: {out!r}'
        results[f'rpc round trips/s ({mode})'] = float(m.group(1))
    out, st = vm.run('modprobe vmw_balloon && echo loaded')
    assert out.strip().endswith('loaded'), out
    vm.wait_get('guest/balloon/connected', lambda v: v in ('true', '1'), 60, 'balloon connected')
    t0 = time.monotonic()
    vm.vireoctl('balloon', vm.id, '256')
    vm.wait_get('guest/balloon/size_mb', lambda v: v.isdigit() and int(v) >= 256, 300, 'inflate')
    dt = time.monotonic() - t0
    results['balloon inflate 256 MiB (s)'] = dt
    results['balloon inflate rate (MiB/s)'] = 256 / dt
    vm.vireoctl('balloon', vm.id, '0')
    vm.wait_get('guest/balloon/size_mb', lambda v: v == '0', 300, 'deflate')
    t0 = time.monotonic()
    out = vm.vireoctl('stop', vm.id, timeout=120)
    results['shutdown request -> power-off (s)'] = time.monotonic() - t0
    assert 'is off' in out, out
finally:
    vm.cleanup()
print(f'bench_tools ({engine}, 1 vCPU, 1 GiB):')
for k, v in results.items():
    print(f'  {k:40s} {v:10.2f}')

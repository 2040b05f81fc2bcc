#!/usr/bin/env python3
"""Guest tier: the demo guest with Vireo's tools (vireo-toolsd starts at
boot), run by vireod and driven with vireoctl.  One boot, several checks:

  guestinfo   a key from the .vmx and one set through VMDB read in the guest
              with vireo-rpc; one set by the guest read on the host; a
              missing key answers "No value found" and exit 1
  report      tools version, guest OS and host name visible in VMDB
  clock       a guest clock set an hour behind is corrected
  balloon     1 GiB guest, guest memory touched, vmw_balloon: target 256 MiB
              reached and the vmx's RSS drops by >= 256 MiB - BALLOON_SLACK;
              target 0 gives the pages back to the guest
  shutdown    `vireoctl stop` ends in power-off within 30 s, through the
              tools (vmware.log says so, no ACPI fallback)

usage: test_tools_demo.py ENGINE TOOLS_DIR
"""
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import guestvm  # noqa: E402
from vmconsole import TIMEOUT_SCALE  # noqa: E402

# Pages the guest balloons that were never resident on the host (free
# memory the fill did not reach) do not lower the RSS: allow this much.
BALLOON_SLACK_MIB = 48

engine, tools_dir = sys.argv[1], sys.argv[2]
img = guestvm.build_image('build-demo.sh', tools_dir)
vm = guestvm.GuestVM({
    # VIREO_GT_MEMSIZE: a smaller guest for by-hand runs (the test asks 1 GiB)
    'memsize': os.environ.get('VIREO_GT_MEMSIZE', '1024'),
    'monitor.engine': engine,
    'linux.kernel': os.path.join(img, 'vmlinuz'),
    'linux.initrd': os.path.join(img, 'initrd.img'),
    'linux.cmdline': 'console=ttyS0',
    'guestinfo.vmxkey': 'from-the-vmx',
})
fails = []


def check(cond, what):
    print(('ok: ' if cond else 'FAIL: ') + what, flush=True)
    if not cond:
        fails.append(what)


def guest(cmd, timeout=60):
    out, st = vm.run(cmd, timeout)
    # kernel messages (modules vmtoolsd loads) share the serial console: drop them
    out = '\n'.join(ln for ln in out.splitlines() if not re.match(r'\s*\[\s*[0-9]+\.[0-9]+\] ', ln))
    return out.strip(), st


try:
    vm.start()
    vm.expect('VIREO-INIT-READY', 1200)
    vm.expect('vireo-toolsd started', 60)
    vm.expect('# ', 60)
    ver = vm.wait_get('guest/toolsversion', lambda v: v not in ('', None), 60, 'tools version')
    print(f'boot + tools up: {time.monotonic() - vm.t0:.0f} s; toolsversion {ver!r}')

    # guestinfo both ways
    out, st = guest("vireo-rpc 'info-get guestinfo.vmxkey'")
    check(st == '0' and out == 'from-the-vmx', f'guestinfo from the .vmx: {out!r} exit {st}')
    vm.vireoctl('guestinfo', vm.id, 'fromvmdb', 'set through VMDB')
    out, st = guest("vireo-rpc 'info-get guestinfo.fromvmdb'")
    check(st == '0' and out == 'set through VMDB', f'guestinfo from VMDB: {out!r} exit {st}')
    out, st = guest("vireo-rpc 'info-set guestinfo.fromguest guest wrote this'")
    check(st == '0', f'info-set from the guest: exit {st} {out!r}')
    # the vmx publishes guestinfo to VMDB on its own beat: give it a few seconds
    deadline = time.monotonic() + 15 * TIMEOUT_SCALE
    while True:
        host = vm.vireoctl('guestinfo', vm.id, 'fromguest', check=False)
        if 'guest wrote this' in host or time.monotonic() > deadline:
            break
        time.sleep(1)
    check('guest wrote this' in host, f'host reads the guest\'s guestinfo: {host!r}')
    out, st = guest("vireo-rpc 'info-get guestinfo.not.there' 2>&1")
    check(st == '1' and out == 'No value found', f'missing guestinfo: {out!r} exit {st}')

    # what the tools reported
    os_name = vm.wait_get('guest/os', lambda v: v != '', 45, 'guest os')
    check('linux' in os_name.lower(), f'guest OS in VMDB: {os_name!r}')
    check('1.0.0' in ver or '1024' in ver, f'tools version in VMDB: {ver!r}')
    hn = vm.wait_get('guest/hostname', lambda v: v != '', 45, 'host name')
    check(hn == 'vireo', f'guest host name in VMDB: {hn!r}')

    # the clock: an hour behind, corrected by vireo-toolsd
    guest('date -s @$(( $(date +%s) - 3600 )) >/dev/null')
    fixed = None
    deadline = time.monotonic() + 60 * TIMEOUT_SCALE
    while time.monotonic() < deadline:
        out, st = guest('date +%s')
        try:
            skew = int(out.split()[-1]) - time.time()
        except (ValueError, IndexError):
            skew = None
        if skew is not None and abs(skew) < 5:
            fixed = time.monotonic()
            break
        time.sleep(3)
    check(fixed is not None, f'guest clock set an hour behind is corrected (last skew {skew})')
    log = guest('cat /var/log/vireo-toolsd.log')[0]
    check('stepped the clock' in log, 'vireo-toolsd logged the step')

    # the balloon: touch most guest memory, free it (resident on the host), inflate
    out, st = guest('mkdir -p /mnt/fill && mount -t tmpfs -o size=100% tmpfs /mnt/fill && '
                    'free_mb=$(awk \'/MemFree/ {print int($2/1024)}\' /proc/meminfo) && '
                    'dd if=/dev/zero of=/mnt/fill/f bs=1M count=$((free_mb - 96)) 2>&1 | tail -1; '
                    'rm -f /mnt/fill/f; umount /mnt/fill; sync', timeout=900)
    print('guest memory touched:', out)
    out, st = guest('modprobe vmw_balloon && echo loaded')
    check(out.endswith('loaded'), f'modprobe vmw_balloon: {out!r}')
    vm.wait_get('guest/balloon/connected', lambda v: v in ('true', '1', 'TRUE'), 60, 'balloon connected')
    time.sleep(2)
    rss0 = vm.rss_kib()
    free0 = int(guest("awk '/MemFree/ {print $2}' /proc/meminfo")[0])
    t_inf = time.monotonic()
    vm.vireoctl('balloon', vm.id, '256')
    vm.wait_get('guest/balloon/size_mb', lambda v: v.isdigit() and int(v) >= 256, 180,
                'balloon target 256 MiB')
    inflate_s = time.monotonic() - t_inf
    time.sleep(1)
    rss1 = vm.rss_kib()
    free1 = int(guest("awk '/MemFree/ {print $2}' /proc/meminfo")[0])
    drop = (rss0 - rss1) // 1024
    print(f'balloon 256 MiB in {inflate_s:.1f} s; vmx RSS {rss0 // 1024} -> {rss1 // 1024} MiB '
          f'(drop {drop} MiB); guest MemFree {free0 // 1024} -> {free1 // 1024} MiB')
    check(drop >= 256 - BALLOON_SLACK_MIB,
          f'vmx RSS dropped by {drop} MiB (>= 256 - {BALLOON_SLACK_MIB} slack)')
    vm.vireoctl('balloon', vm.id, '0')
    vm.wait_get('guest/balloon/size_mb', lambda v: v == '0', 180, 'balloon target 0')
    time.sleep(1)
    free2 = int(guest("awk '/MemFree/ {print $2}' /proc/meminfo")[0])
    check(free2 - free1 >= 200 * 1024,
          f'target 0 gives the pages back: guest MemFree {free1 // 1024} -> {free2 // 1024} MiB')
    out, st = guest('dd if=/dev/zero of=/dev/null bs=1M count=1 2>/dev/null; echo alive')
    check(out.endswith('alive'), 'guest still runs after the balloon deflated')

    # graceful shutdown through the tools
    t_stop = time.monotonic()
    out = vm.vireoctl('stop', vm.id, check=False, timeout=60)
    stop_s = time.monotonic() - t_stop
    check('is off' in out and stop_s <= 30, f'vireoctl stop: {out!r} after {stop_s:.1f} s (<= 30 s)')
    log = vm.log_text()
    check('tools: asked the guest to halt' in log, 'vmware.log: the halt went to the tools')
    check(re.search(r'tools: guest accepted OS_Halt', log) is not None, 'vmware.log: the guest accepted OS_Halt')
    check('using the ACPI power button' not in log, 'vmware.log: no ACPI fallback')
    print(f'shutdown request -> power-off: {stop_s:.2f} s')
finally:
    if fails:
        print('vmware.log tail:\n' + vm.log_tail(60))
    vm.cleanup()

if fails:
    print(f'{len(fails)} check(s) failed: ' + '; '.join(fails))
    sys.exit(1)
print('PASS: Vireo tools in the demo guest')

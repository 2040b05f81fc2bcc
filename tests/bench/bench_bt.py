#!/usr/bin/env python3
"""bt engine benchmarks: boot time and the five microbenchmarks of Adams &
Agesen (ASPLOS 2006), native vs. the bt engine vs. QEMU TCG, in ONE run on
the same kernel, initramfs and static binaries, so the ratios hold even on
a loaded machine.

usage: bench_bt.py [--scale F] [--no-tcg] [--no-native] [--only NAME,...]
                   MICRO_BINARY...

MICRO_BINARY: the static programs of tests/bench/bt_micro (countprimes, fib,
getppid, forkwait, memsweep); each times its own loop with CLOCK_MONOTONIC
and prints "VIREO-BENCH name=... arg=... result=... ns=...".
Environment: VIREO_SRC, VIREO_VMX (as the guest tests); VIREO_BENCH_BT_SCALE
gives the default --scale (1.0 otherwise), so `meson test --benchmark` can run
it quickly.
"""
import argparse
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'boot'))
import vmconsole  # noqa: E402

# name -> (program, the paper's count, how --scale maps onto the count)
PHI = (1 + 5 ** 0.5) / 2
MICRO = [
    ('countPrimes', 'countprimes', 10_000_000, 'linear'),
    ('fib', 'fib', 40, 'fib'),
    ('getppid', 'getppid', 10_000_000, 'linear'),
    ('forkwait', 'forkwait', 25_000, 'linear'),
    ('memsweep', 'memsweep', 20 * 32 * 1024 * 1024, 'linear'),
]
LABEL = {
    'countPrimes': 'countPrimes (primes < {})',
    'fib': 'fib({})',
    'getppid': 'getppid x {}',
    'forkwait': 'fork+wait x {}',
    'memsweep': 'memsweep ({} stores, 32 MiB)',
}
LINE = re.compile(r'VIREO-BENCH name=(\S+) arg=(\d+) result=(-?\d+) ns=(\d+)')
MARKER = 'VIREO-INIT-READY'


def scaled(count, how, scale):
    if how == 'fib':
        # fib's work grows as phi^n: scale the work, not n.
        return max(2, round(count + math.log(scale) / math.log(PHI)))
    return max(1, round(count * scale))


def parse(out, name):
    m = LINE.search(out)
    if not m or m.group(1) != name:
        raise AssertionError(f'{name}: no VIREO-BENCH line in {out!r}')
    return int(m.group(3)), int(m.group(4)) / 1e9


class QemuVM(vmconsole.VM):
    """The same console API as vmconsole.VM, on qemu-system-x86_64 -nographic
    (serial 0 and the muxed monitor on stdio; nothing here types Ctrl-A)."""

    def __init__(self, argv, workdir):  # pylint: disable=super-init-not-called
        self.dir = workdir
        self.argv = argv
        self.out = b''
        self.proc = None

    def start(self, extra_args=()):
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, preexec_fn=vmconsole._die_with_parent)
        os.set_blocking(self.proc.stdout.fileno(), False)
        return self

    def log_tail(self, n=40):
        return '(qemu: see the console output above)'


def log(msg):
    print(msg, flush=True)


def guest_run(vm, engine, plan, results):
    """Boot to the marker, then run every program; fill results[engine]."""
    vm.start()
    try:
        vm.expect(MARKER, 3600)
        boot = time.monotonic() - vm.t0
        uptime = vm.expect('\n', 60).strip()
        results[engine]['boot'] = boot
        log(f'{engine}: {MARKER} after {boot:.1f} s wall ({uptime.strip()} guest)')
        vm.expect('# ', 120)
        for name, prog, arg in plan:
            t = time.monotonic()
            out, st = vm.run(f'/usr/bin/{prog} {arg}', timeout=7200)
            wall = time.monotonic() - t
            res, secs = parse(out, name)
            results[engine][name] = (res, secs, wall)
            log(f'{engine}: {name}({arg}) = {res} in {secs:.3f} s guest clock, {wall:.1f} s wall (exit {st})')
        vm.send('poweroff')
        try:
            vm.proc.wait(30)
        except subprocess.TimeoutExpired:
            pass
    finally:
        vm.kill()


def fmt_s(v):
    return '—' if v is None else (f'{v:.3f}' if v < 10 else f'{v:.1f}')


def fmt_r(a, b):
    return '—' if a is None or b is None or b <= 0 else f'{a / b:.1f}'


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--scale', type=float, default=float(os.environ.get('VIREO_BENCH_BT_SCALE', '1.0')))
    ap.add_argument('--no-tcg', action='store_true', help='skip QEMU TCG even if installed')
    ap.add_argument('--no-native', action='store_true')
    ap.add_argument('--only', default='', help='comma-separated benchmark names')
    ap.add_argument('programs', nargs='+')
    a = ap.parse_args()
    if a.scale <= 0:
        ap.error('--scale must be > 0')
    bins = {os.path.basename(p).replace('vireo-bench-', ''): os.path.abspath(p) for p in a.programs}
    only = set(filter(None, a.only.split(',')))
    plan = []
    for name, prog, count, how in MICRO:
        if only and name not in only:
            continue
        if prog not in bins:
            sys.exit(f'bench_bt: no binary for {prog} among {a.programs}')
        plan.append((name, prog, scaled(count, how, a.scale)))

    img = vmconsole.demo_image()
    src = os.environ['VIREO_SRC']
    work = tempfile.mkdtemp(prefix='vireo-bench-bt-')
    results = {'native': {}, 'bt': {}, 'tcg': {}}
    qemu = None if a.no_tcg else shutil.which('qemu-system-x86_64')
    try:
        extra = os.path.join(work, 'extra')
        os.makedirs(os.path.join(extra, 'usr/bin'))
        for _, prog, _ in plan:
            shutil.copy(bins[prog], os.path.join(extra, 'usr/bin', prog))
        initrd = os.path.join(work, 'initrd.img')
        subprocess.run(['sh', os.path.join(src, 'tools/guest/image/mkinitramfs.sh'), os.path.join(img, 'busybox'),
                        os.path.join(src, 'tools/guest/image/demo-init'), initrd, extra], check=True)
        kernel = os.path.join(img, 'vmlinuz')
        load0 = os.getloadavg()
        started = time.strftime('%Y-%m-%d %H:%M %Z')
        log(f'bench_bt: scale {a.scale:g}; kernel {kernel}; load average at start '
            + ' '.join(f'{x:.2f}' for x in load0))

        interrupted = None
        try:
            run_all(a, plan, bins, results, kernel, initrd, work, qemu)
        except KeyboardInterrupt:
            # SIGINT: stop, but keep the rows measured so far.
            interrupted = 'interrupted: rows without a figure were not measured'
            log(interrupted)
        except (AssertionError, subprocess.CalledProcessError) as e:
            interrupted = f'FAIL: {e}'
            log(interrupted)
        report(a, plan, results, started, load0, interrupted)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_all(a, plan, bins, results, kernel, initrd, work, qemu):
    if not a.no_native:
        for name, prog, arg in plan:
            out = subprocess.run([bins[prog], str(arg)], check=True, capture_output=True, text=True).stdout
            res, secs = parse(out, name)
            results['native'][name] = (res, secs, secs)
            log(f'native: {name}({arg}) = {res} in {secs:.3f} s')

    bt = vmconsole.VM({
        'memsize': '512',
        'numvcpus': '1',
        'monitor.engine': 'bt',
        'linux.kernel': kernel,
        'linux.initrd': initrd,
        'linux.cmdline': 'console=ttyS0',
    }, name='bench-bt', workdir=work)
    guest_run(bt, 'bt', plan, results)

    if qemu:
        tcg = QemuVM([qemu, '-accel', 'tcg', '-m', '512', '-kernel', kernel, '-initrd', initrd,
                      '-append', 'console=ttyS0', '-nographic', '-no-reboot'], work)
        guest_run(tcg, 'tcg', plan, results)
    else:
        log('tcg: qemu-system-x86_64 not found (or --no-tcg): TCG columns left empty')


def report(a, plan, results, started, load0, interrupted):
    load1 = os.getloadavg()
    r = results
    rows = []
    b, n, t = r['bt'].get('boot'), None, r['tcg'].get('boot')
    rows.append(('boot to ' + MARKER + ' (process start, wall)', n, b, t))
    for name, _, arg in plan:
        g = [r[e][name][1] if name in r[e] else None for e in ('native', 'bt', 'tcg')]
        rows.append((LABEL[name].format(f'{arg:,}'), *g))
    print()
    print(f'bt engine benchmarks, scale {a.scale:g} ({started}; load average '
          f'{load0[0]:.2f} at start, {load1[0]:.2f} at end; {os.cpu_count()} host CPUs)')
    print('times in seconds: boot is wall clock from process start; the rest are each')
    print("program's own CLOCK_MONOTONIC figure inside its guest (host: native)")
    print()
    print('| benchmark | native | bt | TCG | bt/native | TCG/native | bt/TCG |')
    print('|---|---|---|---|---|---|---|')
    for label, nv, bv, tv in rows:
        print(f'| {label} | {fmt_s(nv)} | {fmt_s(bv)} | {fmt_s(tv)} | {fmt_r(bv, nv)} | '
              f'{fmt_r(tv, nv)} | **{fmt_r(bv, tv)}** |')
    print()
    print('wall seconds per command at the console (guest clock sanity check):')
    for name, _, _ in plan:
        print(f'  {name}: bt {fmt_s(r["bt"][name][2] if name in r["bt"] else None)}, '
              f'tcg {fmt_s(r["tcg"][name][2] if name in r["tcg"] else None)}')
    # A guest that computes a different answer is a broken engine, not a slow one.
    bad = []
    for name, _, arg in plan:
        got = {e: r[e][name][0] for e in r if name in r[e]}
        if len(set(got.values())) > 1:
            bad.append(f'{name}({arg}): results differ: {got}')
    for b in bad:
        print('FAIL:', b)
    if interrupted:
        print(interrupted)
    if bad or interrupted:
        sys.exit(1)


if __name__ == '__main__':
    main()

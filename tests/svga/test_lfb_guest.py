#!/usr/bin/env python3
"""Guest tier: the SVGA II frame buffer as guest RAM, on either engine.

SeaBIOS boots tests/bench/bench_vnc_boot.S from an AHCI disk; the boot sector
finds the SVGA II at 00:0f.0, sets Bochs dispi 1920x1080x32 and fills the
rectangles it is sent over COM1 with rep stosl into the linear frame buffer
(BAR1, where SeaBIOS placed it).  Checked:
 - vmware.log says BAR1 (VRAM) and BAR2 (FIFO) are mapped as guest RAM, so
   these stores reach VRAM without an exit; that the engine logs the writes
   to BAR1 and the MKS compares only the pages in that log;
 - the MKS screenshot is 1920x1080 and shows every rectangle exactly, with
   the pixels around them untouched (rectangles cross 4 KiB pages and reach
   the last pixel of the screen);
 - after 150 overlapping random fills sent back to back, racing the MKS's
   refresh and its reads of the engine's dirty log, the screenshot matches
   a model of the screen pixel for pixel.

usage: test_lfb_guest.py ENGINE     (exit 77: skip)"""
import os
import random
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'boot'))
sys.path.insert(0, os.path.join(HERE, '..', 'vnc'))
import bootsector  # noqa: E402
import vmconsole  # noqa: E402
import vncpeers as vp  # noqa: E402

W, H = 1920, 1080
RECTS = [  # colour, x, y, w, h
    (0x3366CC, 100, 50, 300, 200),
    (0xFF8000, 1000, 2, 17, 700),      # a thin column: one store per row, rows 7,680 bytes apart
    (0x00C000, 1500, 900, W - 1500, H - 900),   # up to the last pixel
    (0xFFFFFF, 1023, 511, 3, 3),
]

STRESS_FILLS = 150


def boot_disk(work):
    return bootsector.vmdk(bootsector.raw_image(work), work)


def want_px(x, y):
    for c, rx, ry, rw, rh in reversed(RECTS):
        if rx <= x < rx + rw and ry <= y < ry + rh:
            return c
    return None


def main():
    engine = sys.argv[1]
    if engine == 'hv' and not os.access('/dev/kvm', os.R_OK | os.W_OK):
        print('SKIP: /dev/kvm is not accessible')
        return 77
    for tool in ('as', 'ld'):
        if not subprocess.run(['which', tool], capture_output=True).returncode == 0:
            print(f'SKIP: {tool} missing (binutils, installer/deps.sh)')
            return 77
    work = tempfile.mkdtemp(prefix='vireo-lfb-')
    shot = os.path.join(work, 'shot.png')
    vm = vmconsole.VM({
        'memsize': '64', 'monitor.engine': engine, 'svga.present': 'TRUE',
        'sata0.present': 'TRUE', 'sata0:0.present': 'TRUE', 'sata0:0.fileName': boot_disk(work),
        'mks.screenshotOnSignal': shot,
    }, name='lfb', workdir=work)
    vm.start()
    fails = []
    try:
        vm.expect('VBs', 180)
        vm.expect('R', 30)
        print(f'boot sector ready after {time.monotonic() - vm.t0:.1f} s on {engine}', flush=True)
        # The engine (KVM's dirty log, bt's watched pages) logs the writes
        # to BAR1, and the MKS compares only the pages it reports.  Fill
        # only once it does, so that a write the log missed shows as bad
        # pixels below.
        logf = os.path.join(work, 'vmware.log')
        end = time.monotonic() + 30 * vmconsole.TIMEOUT_SCALE
        while True:
            log = open(logf, errors='replace').read()
            by_page = 'mks: poll scanout: comparing only the pages' in log
            if by_page or time.monotonic() > end:
                break
            time.sleep(0.1)
        bar1 = [ln for ln in log.splitlines() if 'pci svga: BAR1 at' in ln]
        for what, ok in (('the engine logs the writes to BAR1',
                          bool(bar1) and 'writes logged per page' in bar1[-1]),
                         ('the MKS compares only the logged pages', by_page)):
            print(('ok:   ' if ok else 'FAIL: ') + what, flush=True)
            if not ok:
                fails.append(what)
        def fill(c, x, y, w, h):
            t = time.monotonic()
            # COM1 on stdio is a console: Ctrl-A is its escape, doubled to send one.
            cmd = b'F' + struct.pack('<IIIII', c, x, y, w, h)
            vm.proc.stdin.write(cmd.replace(b'\x01', b'\x01\x01'))
            vm.proc.stdin.flush()
            vm.expect('K', 120)
            return time.monotonic() - t

        for c, x, y, w, h in RECTS:
            dt = fill(c, x, y, w, h)
            print(f'fill {w}x{h} at ({x},{y}): {1000 * dt:.1f} ms', flush=True)
        log = open(os.path.join(work, 'vmware.log'), errors='replace').read()
        for bar in ('BAR1', 'BAR2'):
            ok = f'pci svga: {bar} at' in log
            print(('ok:   ' if ok else 'FAIL: ') + f'{bar} mapped as guest RAM', flush=True)
            if not ok:
                fails.append(bar)
        def screenshot():
            time.sleep(1)   # the MKS finds dispi-mode changes on its refresh tick
            return vp.read_png(vm.screenshot(shot))

        w, h, rows = screenshot()
        if (w, h) != (W, H):
            fails.append(f'screen {w}x{h}')
            print(f'FAIL: the MKS shows {w}x{h}, not {W}x{H}')
        else:
            bad = []
            for c, rx, ry, rw, rh in RECTS:
                # Every pixel of each rectangle and a one-pixel frame around it.
                for y in range(max(0, ry - 1), min(H, ry + rh + 1)):
                    for x in range(max(0, rx - 1), min(W, rx + rw + 1)):
                        want = want_px(x, y)
                        if want is not None and rows[y][x] != want:
                            bad.append((x, y, hex(rows[y][x]), hex(want)))
                        elif want is None and rows[y][x] != 0:
                            # dispi was enabled without NOCLEARMEM: VRAM was cleared.
                            bad.append((x, y, hex(rows[y][x]), '0'))
            ok = not bad
            print(('ok:   ' if ok else 'FAIL: ') +
                  f'MKS screenshot shows the {len(RECTS)} rectangles ({len(bad)} bad, {bad[:3]})')
            if not ok:
                fails.append('pixels')
            # Overlapping fills back to back, racing the MKS's refresh: each
            # page's last write must reach the screen whenever it falls
            # between two looks at the engine's log.
            model = [list(r) for r in rows]
            rnd = random.Random(7)
            t = time.monotonic()
            for i in range(STRESS_FILLS):
                c = rnd.randrange(1 << 24)
                rw, rh = rnd.randint(1, 500), rnd.randint(1, 300)
                rx, ry = rnd.randrange(W - rw + 1), rnd.randrange(H - rh + 1)
                fill(c, rx, ry, rw, rh)
                for y in range(ry, ry + rh):
                    model[y][rx:rx + rw] = [c] * rw
            print(f'{STRESS_FILLS} overlapping fills in {time.monotonic() - t:.1f} s', flush=True)
            w, h, rows = screenshot()
            bad = [(x, y, hex(rows[y][x]), hex(model[y][x]))
                   for y in range(H) if rows[y] != model[y]
                   for x in range(W) if rows[y][x] != model[y][x]]
            ok = not bad
            print(('ok:   ' if ok else 'FAIL: ') +
                  f'MKS screenshot after them matches pixel for pixel ({len(bad)} bad, {bad[:3]})')
            if not ok:
                fails.append('pixels after overlapping fills')
    except AssertionError as e:
        fails.append('exception')
        print(f'FAIL: {e}')
    finally:
        vm.kill()
    if fails:
        print(f'files in {work}')
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())

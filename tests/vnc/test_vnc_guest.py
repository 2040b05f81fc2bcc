#!/usr/bin/env python3
"""Guest tier for the remote console, with real peers, on one boot of the demo
guest (Debian's 6.1 kernel) running vmwgfx on our SVGA II:

 1. typed input: TigerVNC's vncviewer under Xvfb, driven by xdotool, types a
    command into a shell on tty1; the file it writes is read back over the
    serial console;
 2. pointer: with psmouse's vmmouse, the viewer's pointer moves to (x, y);
    vireo-vnctest reads the evdev ABS_X/ABS_Y and they map back to (x, y)
    within one pixel of the framebuffer size; a click is seen as BTN_LEFT;
 3. picture: vireo-vnctest writes a pattern into /dev/fb0; the MKS shadow,
    TigerVNC with ZRLE, with Tight (lossless and with JPEG), and noVNC in
    headless Chromium show it.

usage: test_vnc_guest.py ENGINE VNCTEST_BINARY
Exit 0 when all passed; 77 (skip) when a peer program is missing."""
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'boot'))
sys.path.insert(0, HERE)
import vmconsole  # noqa: E402
import vncpeers as vp  # noqa: E402

FAILS = []


def check(cond, what):
    print(('ok:   ' if cond else 'FAIL: ') + what, flush=True)
    if not cond:
        FAILS.append(what)
    return cond


def guest_px(x, y):
    """The pattern vireo-vnctest fb writes (vnctest_guest.c vnc_guest_px)."""
    bx, by = x // 32, y // 32
    if x % 32 == 0 or y % 32 == 0:
        return 0xFFFFFF if (x + y) % 2 else 0
    return (((bx * 53 + by * 17) & 0xFF) << 16 | ((bx * 29 + by * 71 + 0x40) & 0xFF) << 8 |
            (((bx ^ by) * 97) & 0xFF))


PAT_X, PAT_Y, PAT_W, PAT_H = 256, 192, 320, 192


def compare(rows, ox, oy, tol, centres_only):
    """Mismatches of the pattern in a picture whose pattern origin is (ox, oy)."""
    bad = []
    for y in range(PAT_H):
        for x in range(PAT_W):
            if centres_only and (x % 32 < 8 or x % 32 > 24 or y % 32 < 8 or y % 32 > 24):
                continue
            got, want = rows[oy + y][ox + x], guest_px(x, y)
            if vp.px_diff(got, want) > tol:
                bad.append((x, y, hex(got), hex(want)))
    return bad


def wait_guest_file(vm, path, want, timeout):
    end = time.monotonic() + timeout * vmconsole.TIMEOUT_SCALE
    out = ''
    while time.monotonic() < end:
        out, st = vm.run(f'cat {path} 2>/dev/null')
        if out.strip() == want:
            return out.strip()
        time.sleep(2)
    return out.strip()


def test_typing(vm, xv):
    # A shell on tty1 (the console fbcon shows, fed by the i8042 keyboard).
    vm.run("(setsid sh -c 'exec sh </dev/tty1 >/dev/tty1 2>&1' &)")
    time.sleep(2)
    xv.type('echo vireo-typed-$((6*7)) > /tmp/typed')
    xv.key('Return')
    got = wait_guest_file(vm, '/tmp/typed', 'vireo-typed-42', 60)
    check(got == 'vireo-typed-42', f'typed input: command typed in vncviewer ran on tty1 (file: {got!r})')
    # Shifted keys and digits through the same path.
    xv.type('echo "A_b:C|9" >> /tmp/typed2')
    xv.key('Return')
    got = wait_guest_file(vm, '/tmp/typed2', 'A_b:C|9', 60)
    check(got == 'A_b:C|9', f'typed input: shifted characters arrive ({got!r})')


def test_pointer(vm, xv, fw, fh):
    vm.send('vireo-vnctest abs 240')
    line = vm.expect('\n', 60).strip()
    while not line.startswith('VIREO-ABS'):
        line = vm.expect('\n', 60).strip()
    if not check(line.startswith('VIREO-ABS-DEV'), f'pointer: an absolute evdev device in the guest ({line})'):
        return
    f = line.split()
    amin, amax = int(f[1]), int(f[2])
    print('guest absolute device:', ' '.join(f[1:]))
    targets = [(100, 50), (fw // 2 + 3, fh // 2 - 5), (fw - 1 - 17, fh - 1 - 9), (0, 0), (fw - 1, fh - 1)]
    for tx, ty in targets:
        xv.move(tx, ty)
        deadline = time.monotonic() + 30 * vmconsole.TIMEOUT_SCALE
        got = None
        while time.monotonic() < deadline:
            try:
                line = vm.expect('\n', max(1, deadline - time.monotonic())).strip()
            except AssertionError:
                break
            if not line.startswith('VIREO-ABS '):
                continue
            rx, ry = int(line.split()[1]), int(line.split()[2])
            gx = round((rx - amin) * (fw - 1) / (amax - amin))
            gy = round((ry - amin) * (fh - 1) / (amax - amin))
            got = (gx, gy)
            if abs(gx - tx) <= 1 and abs(gy - ty) <= 1:
                break
        check(got is not None and abs(got[0] - tx) <= 1 and abs(got[1] - ty) <= 1,
              f'pointer: moved to ({tx},{ty}) in the viewer, guest evdev says {got}')
    xv.move(40, 40)
    xv.click(1)
    out = vm.expect('VIREO-ABS-END', 60)
    check(' 1\r\n' in out or ' 1\n' in out, 'pointer: left click reached the guest as BTN_LEFT')


def test_picture(vm, xv, shot, port):
    out, st = vm.run(f'vireo-vnctest fb {PAT_X} {PAT_Y} {PAT_W} {PAT_H}')
    if not check('VIREO-FB-OK' in out, f'picture: pattern written into /dev/fb0 ({out.strip()})'):
        return
    fw, fh = map(int, out.split('VIREO-FB-OK')[1].split()[:2])
    time.sleep(2)
    w, h, rows = vp.read_png(vm.screenshot(shot))
    bad = compare(rows, PAT_X, PAT_Y, 0, False) if (w, h) == (fw, fh) else ['size %dx%d' % (w, h)]
    check(not bad, f'picture: MKS shadow shows the pattern ({len(bad)} mismatches, first {bad[:3]})')

    # The viewer's window content origin on the Xvfb screen.
    geo = dict(kv.split('=') for kv in xv.xdo('getwindowgeometry', '--shell', xv.wid).split())
    for enc, extra, tol, centres in (('ZRLE', (), 0, False),
                                     ('Tight', ('-NoJPEG',), 0, False),
                                     ('Tight', ('-QualityLevel', '6'), 40, True),
                                     ('Hextile', (), 0, False)):
        name = enc + (' ' + ' '.join(extra) if extra else '')
        try:
            xv.connect(port, enc, extra)
        except (AssertionError, subprocess.TimeoutExpired) as e:
            check(False, f'picture: TigerVNC vncviewer with {name} connects again ({e})')
            continue
        geo = dict(kv.split('=') for kv in xv.xdo('getwindowgeometry', '--shell', xv.wid).split())
        ox, oy = int(geo['X']), int(geo['Y'])
        bad = ['not drawn']
        deadline = time.monotonic() + 30
        while bad and time.monotonic() < deadline:
            time.sleep(1)
            _, _, rows = xv.grab(ox + PAT_X, oy + PAT_Y, PAT_W, PAT_H)
            bad = compare(rows, 0, 0, tol, centres)
        name = enc + (' ' + ' '.join(extra) if extra else '')
        check(not bad, f'picture: TigerVNC vncviewer with {name} shows the pattern '
              f'({len(bad)} mismatches, first {bad[:3]})')
    xv.close_viewer()

    if vp.novnc_available():
        png = shot + '.novnc.png'
        status = vp.novnc_screenshot(port, png)
        print('noVNC:', status)
        w2, h2, page = vp.read_png(png)
        want = [[guest_px(x, y) for x in range(PAT_W)] for y in range(PAT_H)]
        at = vp.find_block(page, w2, h2, want)
        check(at is not None, f'picture: noVNC in headless Chromium shows the pattern (found at {at})')
        if at:
            # The whole screen as noVNC shows it equals the MKS screenshot.
            cx, cy = at[0] - PAT_X, at[1] - PAT_Y
            _, _, shadow = vp.read_png(vm.screenshot(shot))
            diff = sum(1 for y in range(0, fh, 5) for x in range(0, fw, 5)
                       if 0 <= cy + y < h2 and 0 <= cx + x < w2 and page[cy + y][cx + x] != shadow[y][x])
            check(diff == 0, f'picture: noVNC page equals the MKS screenshot ({diff} sampled pixels differ)')
    else:
        check(False, 'picture: noVNC/chromium/playwright-core missing (installer/deps.sh, '
              'npm install --prefix ~/.cache/vireo/npm playwright-core)')


def main():
    engine, vnctest = sys.argv[1], sys.argv[2]
    for tool in ('Xvfb', 'vncviewer', 'xdotool'):
        if not shutil.which(tool):
            print(f'SKIP: {tool} missing (installer/deps.sh)')
            sys.exit(77)
    img = vmconsole.demo_image()
    work = tempfile.mkdtemp(prefix='vireo-vncg-')
    extra = os.path.join(work, 'extra')
    os.makedirs(os.path.join(extra, 'usr/bin'))
    shutil.copy(vnctest, os.path.join(extra, 'usr/bin/vireo-vnctest'))
    # The demo initrd (busybox, kernel modules with their modules.dep) with a
    # second newc archive appended: the kernel unpacks both.
    initrd = os.path.join(work, 'initrd.img')
    cpio = subprocess.run('find . | sort | cpio -o -H newc --quiet -R 0:0', shell=True, cwd=extra,
                          check=True, capture_output=True).stdout
    with open(initrd, 'wb') as f:
        f.write(open(os.path.join(img, 'initrd.img'), 'rb').read())
        f.write(cpio)
    shot = os.path.join(work, 'shot.png')
    port = vp.free_port()
    vm = vmconsole.VM({
        'memsize': '512',
        'monitor.engine': engine,
        'linux.kernel': os.path.join(img, 'vmlinuz'),
        'linux.initrd': initrd,
        'linux.cmdline': 'console=ttyS0',
        'mks.screenshotOnSignal': shot,
        'RemoteDisplay.vnc.enabled': 'TRUE',
        'RemoteDisplay.vnc.port': str(port),
    }, workdir=work)
    xv = None
    vm.start()
    try:
        vm.expect('VIREO-INIT-READY', 900)
        vm.expect('# ', 60)
        print(f'guest up after {time.monotonic() - vm.t0:.0f} s', flush=True)
        out, st = vm.run('modprobe vmwgfx; echo modprobe=$?', timeout=600)
        assert 'modprobe=0' in out, f'modprobe vmwgfx failed: {out}'
        out, st = vm.run('cat /sys/class/graphics/fb0/name /sys/class/graphics/fb0/virtual_size')
        assert 'vmwgfx' in out, f'fb0 is not vmwgfx: {out}'
        fw, fh = map(int, out.split()[-1].split(','))
        print(f'fb0: vmwgfx {fw}x{fh}', flush=True)
        vm.run('echo 0 > /sys/class/graphics/fbcon/cursor_blink')
        # evdev gives the vmmouse its /dev/input/event node (mousedev alone does not).
        out, st = vm.run('modprobe evdev && modprobe psmouse; echo modprobe=$?; sleep 2; '
                         'dmesg | grep -iE "vmmouse|serio|i8042|input:"', timeout=300)
        print(out.strip(), flush=True)
        assert 'modprobe=0' in out, f'modprobe psmouse failed: {out}'

        xv = vp.XViewer()
        xv.connect(port, 'ZRLE')
        test_typing(vm, xv)
        test_picture(vm, xv, shot, port)
        out, st = vm.run('echo serial-alive')
        check('serial-alive' in out, 'serial console answers before the pointer test')
        try:
            xv.connect(port, 'ZRLE')
            test_pointer(vm, xv, fw, fh)
        except (AssertionError, subprocess.TimeoutExpired) as e:
            check(False, f'pointer: {e}'[:2000])

        vm.send('poweroff')
        vm.wait(120)
    except BaseException:
        FAILS.append('exception')
        print(f'vireo-vmx exit={vm.proc.poll()}; vmware.log tail:\n{vm.log_tail(60)}', flush=True)
        if vm.proc.poll() is None and shutil.which('gdb'):
            r = subprocess.run(['gdb', '-p', str(vm.proc.pid), '-batch', '-ex', 'thread apply all bt 20'],
                               capture_output=True, text=True, timeout=120)
            print('vireo-vmx threads:\n', r.stdout[-8000:], flush=True)
        if vm.proc.poll() is not None:
            print('vireo-vmx stderr:', vm.proc.stderr.read().decode(errors='replace')[-3000:])
        raise
    finally:
        if xv:
            xv.close()
        vm.kill()
        if not FAILS:
            shutil.rmtree(work, ignore_errors=True)
    if FAILS:
        print(f'{len(FAILS)} checks failed (files in {work}):', *FAILS, sep='\n  ')
        sys.exit(1)
    print(f'vnc guest test on {engine}: passed')


main()

#!/usr/bin/env python3
"""The VNC back end against the real clients of the guest test, without a
guest (device tier, seconds): vnc-testserver (the MKS + mks_vnc.c, a buffer
as the display) and
  - TigerVNC's vncviewer under Xvfb with ZRLE, Tight lossless, Tight with
    JPEG and Hextile: the window shows the server's picture (XWD of Xvfb),
    also after a "device" draws a rectangle (an incremental update);
  - xdotool typing into vncviewer: the scancodes reach the MKS keyboard sink;
  - xdotool moving vncviewer's pointer: the MKS absolute sink gets (x, y);
  - noVNC (vnc_lite.html) in headless Chromium over the WebSocket on the
    same port: the page shows the server's picture pixel for pixel.
Exit 0 when all passed, 77 when a client program is missing."""
import os
import queue
import shutil
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import vncpeers as vp  # noqa: E402

SERVER = os.environ.get('VNC_TESTSERVER') or os.path.join(
    os.environ.get('VIREO_BUILD', 'build'), 'tests/vnc/vnc-testserver')
W, H = 640, 480
FAILS = []


def check(cond, what):
    print(('ok:   ' if cond else 'FAIL: ') + what, flush=True)
    if not cond:
        FAILS.append(what)
    return cond


def pattern(x, y):
    """vnc_testserver.c's picture."""
    bars = [0xFFFFFF, 0xFFFF00, 0x00FFFF, 0x00FF00, 0xFF00FF, 0xFF0000, 0x0000FF, 0x000000]
    if y < H // 2:
        return bars[(x * 8) // W]
    return 0x203040 if ((x // 64) + (y // 64)) % 2 else 0xE0C0A0


class Server:
    def __init__(self):
        self.port = vp.free_port()
        self.p = subprocess.Popen([SERVER, str(self.port), '--abs', '--size', f'{W}x{H}'],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        assert self.expect(lambda line: line == 'READY', 20), 'vnc-testserver did not start'

    def _read(self):
        for line in self.p.stdout:
            self.lines.put(line.strip())

    def expect(self, pred, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                line = self.lines.get(timeout=max(0.01, end - time.monotonic()))
            except queue.Empty:
                break
            if pred(line):
                return line
        return None

    def events(self, settle=1.0):
        out = []
        while True:
            try:
                out.append(self.lines.get(timeout=settle))
            except queue.Empty:
                return out

    def send(self, cmd):
        self.p.stdin.write(cmd + '\n')
        self.p.stdin.flush()
        return self.expect(lambda line: line == 'OK', 10)

    def stop(self):
        self.p.kill()
        self.p.wait()


def picture_bad(rows, want, tol):
    bad = []
    for y in range(0, H, 3):
        for x in range(0, W, 3):
            if vp.px_diff(rows[y][x], want(x, y)) > tol:
                bad.append((x, y, hex(rows[y][x]), hex(want(x, y))))
    return bad


def grab_until(xv, want, tol, timeout=20):
    geo = dict(kv.split('=') for kv in xv.xdo('getwindowgeometry', '--shell', xv.wid).split())
    ox, oy = int(geo['X']), int(geo['Y'])
    end = time.monotonic() + timeout
    bad = ['nothing']
    while bad and time.monotonic() < end:
        time.sleep(0.5)
        _, _, rows = xv.grab(ox, oy, W, H)
        bad = picture_bad(rows, want, tol)
    return bad


def main():
    for tool in ('Xvfb', 'vncviewer', 'xdotool'):
        if not shutil.which(tool):
            print(f'SKIP: {tool} missing (installer/deps.sh)')
            sys.exit(77)
    srv = Server()
    xv = vp.XViewer()
    try:
        # Lossy JPEG is compared where blocks are flat: tolerance, and the
        # samples at the bar edges are excluded by the tolerance on colour.
        for enc, extra, tol in (('ZRLE', (), 0), ('Tight', ('-NoJPEG',), 0),
                                ('Tight', ('-QualityLevel', '8'), 40), ('Hextile', (), 0)):
            name = enc + (' ' + ' '.join(extra) if extra else '')
            xv.connect(srv.port, enc, extra)
            bad = grab_until(xv, pattern, tol)
            if tol:
                bad = [b for b in bad if (b[0] % (W // 8)) > 4 and (b[0] % (W // 8)) < W // 8 - 4
                       and b[0] % 64 > 4 and b[0] % 64 < 60 and b[1] % 64 > 4 and b[1] % 64 < 60]
            check(not bad, f'TigerVNC {name}: window shows the picture ({len(bad)} bad, {bad[:3]})')
            # An incremental update: a rectangle the "device" draws.
            srv.send('fill 3366cc 100 300 200 100')

            def with_rect(x, y):
                return 0x3366CC if 100 <= x < 300 and 300 <= y < 400 else pattern(x, y)
            bad = grab_until(xv, with_rect, tol)
            if tol:
                bad = [b for b in bad if 104 < b[0] < 296 and 304 < b[1] < 396]
            check(not bad, f'TigerVNC {name}: incremental update shows ({len(bad)} bad, {bad[:3]})')
            srv.send('resize 640 480')   # redraws the pattern for the next client
        srv.events(0.5)

        # Keys: xdotool types into the viewer; the keyboard sink gets set-1 scancodes.
        xv.connect(srv.port, 'ZRLE')
        xv.type('a1', delay=80)
        xv.key('shift+b')
        ev = [e for e in srv.events(1.5) if e.startswith('key ')]
        downs = [e.split()[1] for e in ev if e.endswith(' 1')]
        ups = [e.split()[1] for e in ev if e.endswith(' 0')]
        check(downs[:2] == ['0x1e', '0x2'] and '0x2a' in downs and '0x30' in downs,
              f'typing a, 1, shift+b gives make codes 1e 02 2a 30 ({downs})')
        check(sorted(downs) == sorted(ups), f'every key pressed is released ({downs} / {ups})')

        # Pointer: the absolute sink gets the viewer's position.
        for tx, ty in ((10, 20), (W - 1, H - 1), (321, 123)):
            xv.move(tx, ty)
            got = srv.expect(lambda line: line.startswith('abs '), 5)
            while got and srv.lines.qsize():
                nxt = srv.expect(lambda line: line.startswith('abs '), 0.3)
                got = nxt or got
            f = got.split() if got else []
            check(f[1:5] == [str(tx), str(ty), str(W), str(H)],
                  f'pointer moved to ({tx},{ty}) arrives as {got}')
        xv.click(1)
        ev = [e for e in srv.events(1.0) if e.startswith('abs ')]
        check(any(e.split()[5] == '1' for e in ev) and ev and ev[-1].split()[5] == '0',
              f'a click presses and releases the left button ({ev})')
        xv.close_viewer()

        if vp.novnc_available():
            png = os.path.join(xv.dir, 'novnc.png')
            status = vp.novnc_screenshot(srv.port, png)
            print('noVNC:', status)
            pw, ph, page = vp.read_png(png)
            want = [[pattern(x, y) for x in range(W)] for y in range(H)]
            at = vp.find_block(page, pw, ph, want)
            check(at is not None, f'noVNC in headless Chromium shows the picture pixel for pixel (at {at})')
        else:
            print('SKIP noVNC: novnc, chromium or ~/.cache/vireo/npm playwright-core missing')
    finally:
        xv.close()
        srv.stop()
    if FAILS:
        print(f'{len(FAILS)} checks failed:', *FAILS, sep='\n  ')
        sys.exit(1)
    print('real VNC clients: all checks passed')


main()

"""vncpeers.py — real VNC peers for the guest test and the benchmark:
TigerVNC's vncviewer under Xvfb (driven with xdotool, its picture read
from Xvfb's -fbdir XWD file), noVNC in headless Chromium (playwright-core),
and image readers (PNG, XWD) without third-party Python modules.

Pictures are (width, height, pixels) with pixels a list of rows, each a list
of 0xRRGGBB ints."""
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
NPM_DIR = os.path.expanduser('~/.cache/vireo/npm')


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(('127.0.0.1', port), 1).close()
            return True
        except OSError:
            time.sleep(0.2)
    return False


def read_png(path):
    """8-bit RGB or RGBA, non-interlaced (MKS screenshots, Chromium's)."""
    data = open(path, 'rb').read()
    assert data[:8] == b'\x89PNG\r\n\x1a\n', f'{path}: not a PNG'
    pos, idat, w, h, bpp = 8, b'', 0, 0, 3
    while pos < len(data):
        n, kind = struct.unpack('>I4s', data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b'IHDR':
            w, h, depth, ctype, _, _, interlace = struct.unpack('>IIBBBBB', body)
            assert depth == 8 and ctype in (2, 6) and interlace == 0, f'{path}: PNG type {ctype}/{depth}'
            bpp = 3 if ctype == 2 else 4
        elif kind == b'IDAT':
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = w * bpp
    prev = bytearray(stride)
    rows = []
    for y in range(h):
        base = y * (stride + 1)
        f = raw[base]
        line = bytearray(raw[base + 1:base + 1 + stride])
        if f == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif f == 2:
            for i in range(stride):
                line[i] = (line[i] + prev[i]) & 0xFF
        elif f == 3:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + (a + prev[i]) // 2) & 0xFF
        elif f == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pr = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pr) & 0xFF
        rows.append([line[i] << 16 | line[i + 1] << 8 | line[i + 2] for i in range(0, stride, bpp)])
        prev = line
    return w, h, rows


def read_xwd(path, x0=0, y0=0, w=None, h=None):
    """A rectangle of an XWD file (Xvfb -fbdir writes its screen as one), 24/32 bpp ZPixmap."""
    with open(path, 'rb') as f:
        data = f.read()
    hdr = struct.unpack('>25I', data[:100])
    hsize, fmt, width, height = hdr[0], hdr[2], hdr[4], hdr[5]
    byte_order, bits_pp, bpl, ncolors = hdr[7], hdr[11], hdr[12], hdr[19]
    assert fmt == 2 and bits_pp == 32, f'{path}: XWD format {fmt} bpp {bits_pp}'
    off = hsize + ncolors * 12
    w = width - x0 if w is None else w
    h = height - y0 if h is None else h
    order = '<' if byte_order == 0 else '>'
    rows = []
    for y in range(y0, y0 + h):
        s = off + y * bpl + x0 * 4
        rows.append([v & 0xFFFFFF for v in struct.unpack(f'{order}{w}I', data[s:s + 4 * w])])
    return w, h, rows


def px_diff(a, b):
    return max(abs((a >> 16 & 255) - (b >> 16 & 255)), abs((a >> 8 & 255) - (b >> 8 & 255)),
               abs((a & 255) - (b & 255)))


class XViewer:
    """An Xvfb display with TigerVNC's vncviewer at +0+0 (no window manager,
    so remote pixel (x, y) is window pixel (x, y))."""

    def __init__(self, width=2048, height=1280):
        self.dir = tempfile.mkdtemp(prefix='vireo-xvfb-')
        self.disp = None
        for n in range(40 + os.getpid() % 200, 400):
            if not os.path.exists(f'/tmp/.X11-unix/X{n}') and not os.path.exists(f'/tmp/.X{n}-lock'):
                self.disp = f':{n}'
                break
        # No autorepeat: on a loaded machine xdotool's press and release can be
        # further apart than the X server's repeat delay, and a repeated key
        # would reach the VNC server as a second press.
        self.xvfb = subprocess.Popen(['Xvfb', self.disp, '-screen', '0', f'{width}x{height}x24',
                                      '-fbdir', self.dir, '-nolisten', 'tcp',
                                      '-ardelay', '30000', '-arinterval', '30000'],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.env = dict(os.environ, DISPLAY=self.disp)
        end = time.monotonic() + 20
        while not os.path.exists(os.path.join(self.dir, 'Xvfb_screen0')):
            assert time.monotonic() < end and self.xvfb.poll() is None, 'Xvfb did not start'
            time.sleep(0.1)
        self.viewer = None
        self.wid = None

    def xdo(self, *args, timeout=30):
        r = subprocess.run(['xdotool', *args], env=self.env, capture_output=True, text=True,
                           timeout=timeout)
        return r.stdout.strip()

    def connect(self, port, encoding='ZRLE', extra=(), password_file=None, title='Vireo'):
        self.close_viewer()
        args = ['vncviewer', '-geometry', '+0+0', '-Shared', '-RemoteResize=0',
                '-AcceptClipboard=0', '-SendClipboard=0', '-SendPrimary=0',
                '-PreferredEncoding', encoding, '-AutoSelect=0', '-FullColor', *extra]
        if password_file:
            args += ['-passwd', password_file]
        else:
            args += ['-SecurityTypes', 'None']
        args.append(f'127.0.0.1::{port}')
        self.viewer = subprocess.Popen(args, env=self.env, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.PIPE, text=True)
        out = self.xdo('search', '--sync', '--onlyvisible', '--name', title, timeout=60)
        assert out, f'vncviewer window "{title}" did not appear'
        self.wid = out.split()[0]
        return self.wid

    def focus(self):
        self.xdo('windowfocus', '--sync', self.wid)

    def type(self, text, delay=60):
        self.focus()
        self.xdo('type', '--delay', str(delay), text, timeout=120)

    def key(self, *keys):
        self.focus()
        self.xdo('key', '--delay', '60', *keys)

    def origin(self):
        """Where the viewer's window content starts on the Xvfb screen."""
        geo = dict(kv.split('=') for kv in self.xdo('getwindowgeometry', '--shell', self.wid).split())
        return int(geo['X']), int(geo['Y'])

    def move(self, x, y):
        """Pointer to window pixel (x, y) with XTEST relative motion, as a
        mouse makes it: xdotool's absolute mousemove warps the pointer, and
        vncviewer forwards no event for a warp."""
        ox, oy = self.origin()
        for _ in range(3):
            loc = dict(kv.split(':') for kv in self.xdo('getmouselocation').split()[:2])
            dx, dy = ox + x - int(loc['x']), oy + y - int(loc['y'])
            if dx == 0 and dy == 0:
                return
            self.xdo('mousemove_relative', '--sync', '--', str(dx), str(dy))

    def click(self, button=1):
        self.xdo('click', str(button))

    def grab(self, x0, y0, w, h):
        """Pixels of the viewer's window (at the screen's origin)."""
        return read_xwd(os.path.join(self.dir, 'Xvfb_screen0'), x0, y0, w, h)

    def close_viewer(self):
        if self.viewer and self.viewer.poll() is None:
            self.viewer.send_signal(signal.SIGTERM)
            try:
                self.viewer.wait(10)
            except subprocess.TimeoutExpired:
                self.viewer.kill()
                self.viewer.wait()
        self.viewer = None

    def close(self):
        self.close_viewer()
        if self.xvfb.poll() is None:
            self.xvfb.terminate()
            self.xvfb.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def novnc_available():
    """noVNC, Chromium and node from Debian (installer/deps.sh); playwright-core
    (the driver for Chromium) from npm into ~/.cache/vireo/npm, never the repo:
    installed here on first use."""
    if not (os.path.exists('/usr/share/novnc/vnc_lite.html') and shutil.which('chromium') and
            shutil.which('node')):
        return False
    mod = os.path.join(NPM_DIR, 'node_modules', 'playwright-core')
    if not os.path.isdir(mod) and shutil.which('npm'):
        os.makedirs(NPM_DIR, exist_ok=True)
        subprocess.run(['npm', 'install', '--silent', '--no-audit', '--no-fund', '--prefix', NPM_DIR,
                        'playwright-core'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=300)
    return os.path.isdir(mod)


def novnc_screenshot(vnc_port, out_png, width=2048, height=1300, password=None, timeout=90):
    """Serve /usr/share/novnc, open vnc_lite.html in headless Chromium against the
    WebSocket on the VNC port, wait for "Connected", screenshot the page.
    Returns the status text noVNC showed."""
    http_port = free_port()
    web = subprocess.Popen(['python3', '-m', 'http.server', '--bind', '127.0.0.1', str(http_port)],
                           cwd='/usr/share/novnc', stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        assert wait_port(http_port, 20), 'http.server for noVNC did not start'
        url = f'http://127.0.0.1:{http_port}/vnc_lite.html?host=127.0.0.1&port={vnc_port}&path='
        if password:
            url += f'&password={password}'
        env = dict(os.environ, NODE_PATH=os.path.join(NPM_DIR, 'node_modules'))
        r = subprocess.run(['node', os.path.join(HERE, 'novnc_shot.js'), shutil.which('chromium'), url,
                            out_png, str(width), str(height), str(timeout * 1000)],
                           env=env, capture_output=True, text=True, timeout=timeout + 60)
        assert r.returncode == 0, f'novnc_shot.js failed ({r.returncode}): {r.stdout[-800:]} {r.stderr[-1500:]}'
        return r.stdout.strip()
    finally:
        web.terminate()
        web.wait()


def find_block(rows, w, h, want, tol=0):
    """Where the picture `want` (rows of ints, smaller) sits inside rows: (x, y) or None.
    Matches its first row exactly (tol 0) to find candidates, then checks it all."""
    ww, wh = len(want[0]), len(want)
    first = want[0]
    for y in range(0, h - wh + 1):
        row = rows[y]
        x = 0
        while True:
            try:
                x = row.index(first[0], x)
            except ValueError:
                break
            if x + ww <= w and row[x:x + ww] == first:
                if all(rows[y + j][x:x + ww] == want[j] for j in range(0, wh, 3)):
                    return x, y
            x += 1
    return None

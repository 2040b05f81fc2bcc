"""guestvm.py — a guest VM run by vireod, driven through vireoctl, with its
serial console on a Unix socket (serial0.fileType = "pipe") that this
harness connects to and types into.  The console methods (expect, run,
send) are tests/boot/vmconsole.py's.
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'boot'))
import vmconsole  # noqa: E402


class _Alive:
    """What vmconsole.VM.expect polls: None while the vmx process lives."""

    def __init__(self, pid):
        self.pid = pid

    def poll(self):
        try:
            os.kill(self.pid, 0)
            return None
        except OSError:
            return 1


class GuestVM(vmconsole.VM):
    def __init__(self, keys, name='tools'):
        self.top = tempfile.mkdtemp(prefix='vireo-gt-')
        os.makedirs(os.path.join(self.top, 'run'), mode=0o700)
        os.makedirs(os.path.join(self.top, 'vm'))
        self.sock_path = os.path.join(self.top, 'vm', 'serial.sock')
        keys = dict(keys)
        keys.update({'serial0.present': 'TRUE', 'serial0.fileType': 'pipe',
                     'serial0.fileName': self.sock_path})
        super().__init__(keys, name=name, workdir=os.path.join(self.top, 'vm'))
        self.env = dict(os.environ, XDG_RUNTIME_DIR=os.path.join(self.top, 'run'),
                        XDG_CONFIG_HOME=os.path.join(self.top, 'cfg'))
        self.ctl = os.environ['VIREOCTL']
        self.sock = None
        self.pid = None
        self.id = None

    def vireoctl(self, *args, check=True, timeout=120):
        p = subprocess.run([self.ctl, *args], env=self.env, capture_output=True, text=True,
                           timeout=timeout * vmconsole.TIMEOUT_SCALE)
        if check and p.returncode != 0:
            raise AssertionError(f'vireoctl {" ".join(args)} failed ({p.returncode}): '
                                 f'{p.stdout}{p.stderr}\nvmware.log tail:\n{self.log_tail()}')
        return p.stdout.strip()

    def get(self, path):
        return self.vireoctl('get', f'/vm/{self.id}/{path}', check=False)

    def start(self, extra_args=()):
        self.id = self.vireoctl('register', self.vmx).split()[-1]
        self.t0 = time.monotonic()
        self.vireoctl('start', self.id)
        self.pid = int(self.get('state/pid'))
        self.proc = _Alive(self.pid)
        # Output is dropped while no client is connected: connect at once.
        deadline = time.monotonic() + 30
        while True:
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(self.sock_path)
                break
            except OSError:
                s.close()
                if time.monotonic() > deadline:
                    raise AssertionError(f'no serial socket at {self.sock_path}; log:\n{self.log_tail()}')
                time.sleep(0.05)
        s.setblocking(False)
        self.sock = s
        return self

    def _pump(self, timeout):
        import select
        r, _, _ = select.select([self.sock], [], [], timeout)
        if r:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return False
            if data:
                self.out += data
                return True
        return False

    def send(self, line):
        data = line.encode() + b'\n'
        while data:
            try:
                n = self.sock.send(data)
                data = data[n:]
            except BlockingIOError:
                time.sleep(0.01)

    def rss_kib(self):
        with open(f'/proc/{self.pid}/status') as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1])
        raise AssertionError('no VmRSS')

    def wait_get(self, path, pred, timeout, what):
        """Poll a VMDB path until pred(value) holds; return the value."""
        deadline = time.monotonic() + timeout * vmconsole.TIMEOUT_SCALE
        v = None
        while time.monotonic() < deadline:
            v = self.get(path)
            if pred(v):
                return v
            time.sleep(0.5)
        raise AssertionError(f'{what}: /vm/{self.id}/{path} is {v!r} after {timeout}s; '
                             f'log:\n{self.log_tail()}')

    def log_text(self):
        try:
            with open(os.path.join(self.dir, 'vmware.log'), errors='replace') as f:
                return f.read()
        except OSError:
            return ''

    def kill(self):
        if self.pid:
            try:
                os.kill(self.pid, 9)
            except OSError:
                pass
        try:
            d = subprocess.run([self.ctl, 'get', '/vireod/pid'], env=self.env, capture_output=True,
                               text=True, timeout=10).stdout.strip()
            if d:
                os.kill(int(d), 15)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            pass
        if self.sock:
            self.sock.close()

    def cleanup(self):
        self.kill()
        shutil.rmtree(self.top, ignore_errors=True)


def build_image(script, tools_dir):
    src = os.environ['VIREO_SRC']
    return subprocess.run(['sh', os.path.join(src, 'tools/guest/image', script), '--tools', tools_dir],
                          check=True, capture_output=True, text=True).stdout.strip()

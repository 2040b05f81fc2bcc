"""vmconsole.py — run vireo-vmx on a guest and drive its serial console.

The VM's serial port 0 is on the process's stdin/stdout (fileType "stdio"
over pipes), so a test reads what the guest prints and types commands as a
person at the console would.
"""
import ctypes
import os
import select
import signal
import subprocess
import tempfile
import time


# Sanitizer builds run the bt engine several times slower: the Makefile's
# ASan pass sets VIREO_TIMEOUT_SCALE so the same test waits accordingly.
TIMEOUT_SCALE = float(os.environ.get('VIREO_TIMEOUT_SCALE', '1'))


def _die_with_parent():
    # A test killed by its timeout must not leave a VM running.
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class VM:
    def __init__(self, keys, name='test', workdir=None):
        self.dir = workdir or tempfile.mkdtemp(prefix='vireo-test-')
        self.vmx = os.path.join(self.dir, name + '.vmx')
        with open(self.vmx, 'w') as f:
            f.write('.encoding = "UTF-8"\nconfig.version = "8"\n')
            f.write(f'displayName = "{name}"\n')
            for k, v in keys.items():
                f.write(f'{k} = "{v}"\n')
        self.out = b''
        self.proc = None

    def start(self, extra_args=()):
        exe = os.environ['VIREO_VMX']
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(
            [exe, '-s', 'serial0.present=TRUE', '-s', 'serial0.fileType=stdio', *extra_args, self.vmx],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            preexec_fn=_die_with_parent)
        os.set_blocking(self.proc.stdout.fileno(), False)
        return self

    def _pump(self, timeout):
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if r:
            data = self.proc.stdout.read()
            if data:
                self.out += data
                return True
        return False

    def expect(self, text, timeout):
        """Wait until `text` appears after the previous match; return what came before it."""
        timeout *= TIMEOUT_SCALE
        deadline = time.monotonic() + timeout
        needle = text.encode() if isinstance(text, str) else text
        while True:
            i = self.out.find(needle)
            if i >= 0:
                before = self.out[:i]
                self.out = self.out[i + len(needle):]
                return before.decode(errors='replace')
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                self._pump(0.1)
                if self.out.find(needle) >= 0:
                    continue
                raise AssertionError(
                    f'timed out after {timeout}s waiting for {text!r}; exit={self.proc.poll()}; '
                    f'last output:\n{self.out[-3000:].decode(errors="replace")}\n'
                    f'vmware.log tail:\n{self.log_tail()}')
            self._pump(min(left, 0.5))

    def send(self, line):
        self.proc.stdin.write(line.encode() + b'\n')
        self.proc.stdin.flush()

    def run(self, command, timeout=60):
        """Type a command; return (its output, its exit status).

        The markers are typed with an empty string inside them, so the
        shell's echo of the typed line (which busybox may redraw) never
        matches: only the command's own output does."""
        self.send(f'echo __VIREO_""START__; {command}; echo __VIREO_""DONE__$?')
        self.expect('__VIREO_START__', timeout)
        out = self.expect('__VIREO_DONE__', timeout)
        status = self.expect('\n', timeout).strip()
        return out.replace('\r', '').lstrip('\n'), status

    def wait(self, timeout):
        timeout *= TIMEOUT_SCALE
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f'VM did not exit within {timeout}s; log:\n{self.log_tail()}')

    def log_tail(self, n=40):
        try:
            with open(os.path.join(self.dir, 'vmware.log'), errors='replace') as f:
                return ''.join(f.readlines()[-n:])
        except OSError:
            return '(no vmware.log)'

    def screenshot(self, path):
        """Have the MKS write its screen to path (mks.screenshotOnSignal = path
        in the config) and wait for the file: it appears whole (the MKS
        writes a temporary name and renames it)."""
        if os.path.exists(path):
            os.unlink(path)
        self.proc.send_signal(signal.SIGUSR2)
        deadline = time.monotonic() + 30 * TIMEOUT_SCALE
        while not os.path.exists(path):
            assert time.monotonic() < deadline, 'no screenshot from mks.screenshotOnSignal'
            time.sleep(0.2)
        return path

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def demo_image():
    src = os.environ['VIREO_SRC']
    out = subprocess.run([os.path.join(src, 'tools/guest/image/build-demo.sh')],
                         check=True, capture_output=True, text=True).stdout.strip()
    return out

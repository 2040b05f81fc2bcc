#!/usr/bin/env python3
"""bench_hv_start: vireo-vmx process start to the guest's first instruction.

The test guest's first instruction is OUT 0x80; the hv engine logs the
CLOCK_MONOTONIC time of the first exit it sees ("hv: first guest exit on
vCPU 0: io (OUT port 0x80) at monotonic S.NS").  The benchmark takes the
same clock just before it starts the process.  Median of 10 runs.
usage: bench_hv_start.py [ENGINE]   (VIREO_VMX, VIREO_BUILD from meson)
"""
import os
import re
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_hv_common import read, run_vmx, write_vmx  # noqa: E402

RUNS = 10


def main():
    engine = sys.argv[1] if len(sys.argv) > 1 else "hv"
    vmx_bin = os.environ["VIREO_VMX"]
    rom = os.path.join(os.environ["VIREO_BUILD"], "tests", "guests", "boot.rom")
    if engine == "hv" and not os.access("/dev/kvm", os.R_OK | os.W_OK):
        print("SKIP: /dev/kvm is not usable here")
        return 77
    pat = re.compile(r"first guest exit on vCPU 0: io \(OUT port 0x80\) at monotonic (\d+)\.(\d{9})")
    samples = []
    with tempfile.TemporaryDirectory(prefix="vireo-bench-start.") as d:
        vmx = write_vmx(d, rom, engine)
        for i in range(RUNS):
            t0, status = run_vmx(vmx_bin, vmx)
            m = pat.search(read(d, "vmware.log"))
            if not m:
                print(f"run {i}: no first-exit line in vmware.log (status {status})")
                return 1
            t1 = int(m.group(1)) * 1000000000 + int(m.group(2))
            samples.append((t1 - t0) / 1e6)
    print(f"engine {engine}: vireo-vmx start to first guest instruction (OUT 0x80), {RUNS} runs")
    print("  runs (ms): " + " ".join(f"{s:.1f}" for s in samples))
    print(f"  median {statistics.median(samples):.1f} ms, min {min(samples):.1f} ms, "
          f"max {max(samples):.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())

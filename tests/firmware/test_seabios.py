#!/usr/bin/env python3
"""test_seabios.py ENGINE — Debian's SeaBIOS, unmodified, on Vireo (no kernel).

A VM with no disk and no linux.kernel boots the default firmware
(/usr/share/seabios/bios-256k.bin).  What a person at the serial console
sees: SeaBIOS's banner, the machine UUID from uuid.bios, "No bootable
device", and with bios.bootRetry a reboot into a second POST (the PAM
registers must put the ROM back below 1 MiB on reset).  vmware.log carries
SeaBIOS's debug port: it must have found fw_cfg with DMA, the e820 table,
our ACPI tables through the table loader and our SMBIOS tables.
"""
import os
import re
import sys
import tempfile
import shutil

sys.path.insert(0, os.path.join(os.environ['VIREO_SRC'], 'tests', 'boot'))
import vmconsole  # noqa: E402

engine = sys.argv[1] if len(sys.argv) > 1 else 'bt'
BIOS = '/usr/share/seabios/bios-256k.bin'
if not os.path.exists(BIOS):
    print(f'SKIP: {BIOS} missing (Debian package seabios)')
    sys.exit(77)
if engine == 'hv' and not os.access('/dev/kvm', os.R_OK | os.W_OK):
    print('SKIP: no /dev/kvm')
    sys.exit(77)

UUID = '56 4d 01 02 03 04 05 06-07 08 09 0a 0b 0c 0d 0e'
work = tempfile.mkdtemp(prefix='vireo-seabios-')
vm = vmconsole.VM({
    'memsize': '256',
    'monitor.engine': engine,
    'uuid.bios': UUID,
    'bios.bootRetry.enabled': 'TRUE',
    'bios.bootRetry.delay': '1',
}, workdir=work)


def log():
    with open(os.path.join(work, 'vmware.log'), errors='replace') as f:
        return f.read()


ok = False
try:
    vm.start()
    vm.expect('SeaBIOS (version', 60)
    vm.expect('Machine UUID 564d0102-0304-0506-0708-090a0b0c0d0e', 30)
    vm.expect('No bootable device.', 60)
    # The retry reboots: a second POST from the ROM (PAM reset), same banner.
    vm.expect('Rebooting', 30)   # the '.' may die in the UART FIFO at reset
    vm.expect('SeaBIOS (version', 60)
    vm.expect('No bootable device.', 60)
    text = log()
    for want in ['bios: Running on QEMU (i440fx)',
                 'bios: Found QEMU fw_cfg',
                 'bios: QEMU fw_cfg DMA interface supported',
                 'bios: qemu/e820: addr 0x0000000000000000 len 0x0000000010000000 [RAM]',
                 'bios: Moving pm_base to 0x600',          # etc/table-loader seen
                 'bios: Found 1 cpu(s)',
                 'bios: Copying SMBIOS',
                 'reset: ']:
        assert want in text, f'vmware.log lacks {want!r}; tail:\n{text[-3000:]}'
    # SeaBIOS found our RSDP (from the loader) and walked the XSDT to the FADT.
    assert re.search(r'bios: table\(50434146\)=0x[0-9a-f]+ \(via xsdt\)', text), \
        f'SeaBIOS did not find the FADT via the XSDT:\n{text[-3000:]}'
    assert re.search(r'bios: ACPI: parse DSDT at 0x[0-9a-f]+', text), 'no DSDT parsed'
    assert 'Invalid SMBIOS' not in text and 'internal error' not in text.lower(), \
        f'SeaBIOS complained:\n{text[-3000:]}'
    ok = True
    print(f'PASS: SeaBIOS on {engine}: banner, UUID, no bootable device, reboot')
finally:
    if not ok:
        print('serial output:\n' + vm.out.decode(errors='replace')[-3000:])
        try:
            print('vmware.log tail:\n' + log()[-4000:])
        except OSError:
            pass
    vm.kill()
    shutil.rmtree(work, ignore_errors=True)
sys.exit(0 if ok else 1)

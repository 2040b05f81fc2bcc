"""The bench boot sector (tests/bench/bench_vnc_boot.S) as a guest disk: the
VNC benchmark and the SVGA frame-buffer guest test boot the same 512 bytes."""
import os
import subprocess

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'bench', 'bench_vnc_boot.S')
SIZE = 1 << 20


def raw_image(work):
    """The boot sector assembled into the first sector of a 1 MiB raw image."""
    obj, out = os.path.join(work, 'boot.o'), os.path.join(work, 'boot.bin')
    subprocess.run(['as', '--32', '-o', obj, SRC], check=True)
    subprocess.run(['ld', '-m', 'elf_i386', '-Ttext=0x7c00', '--oformat=binary', '-o', out, obj],
                   check=True)
    data = open(out, 'rb').read()
    assert len(data) == 512 and data[510:] == b'\x55\xaa', 'boot sector did not assemble to 512 bytes'
    img = os.path.join(work, 'boot.img')
    with open(img, 'wb') as f:
        f.write(data.ljust(SIZE, b'\0'))
    return img


def vmdk(img, work):
    """A monolithicFlat descriptor over the raw image, for a Vireo disk key."""
    desc = os.path.join(work, 'boot.vmdk')
    with open(desc, 'w') as f:
        f.write('# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n'
                f'createType="monolithicFlat"\nRW {SIZE // 512} FLAT "{img}" 0\n')
    return desc

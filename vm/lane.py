"""The real OpenZFS lane: the project's tests in a QEMU VM with the OpenZFS kernel module.

Stages (each printed with pass/fail and its time):
  host-packages  qemu, cpio, debootstrap on the host
  modules        a Debian 13 kernel and zfs.ko built by zfs-dkms in a trixie chroot (cached)
  guest-rootfs   a debootstrapped trixie userland with zfsutils, pyzfs, python3-apt, typer,
                 questionary, pytest and the kernel's modules (cached)
  pack           the project (compiled by the guest's python3) as a cpio archive in front of the
                 guest's (cached): the test VM's initramfs; the project also as a small ext4 disk
                 for the boot half
  vm-tests       boot under TCG with a scratch disk holding the sandbox's root tarball; the ZFS-layer
                 and checkpoint integration tests with the CLI backend and with libzfs_core (side by
                 side); serial console kept in the log directory, each line stamped with the host's
                 seconds since the VM started
  target-tree    the guest plus kernel, zfs-initramfs (a small initramfs), GRUB, systemd (cached)
  install-disk   an installer VM makes the ZFS-root disk: BIOS boot, ext2 /boot/grub, rpool (cached,
                 keyed by the target tree, the installer and the project's GRUB and systemd files)
  boot-story     GRUB boots a copy-on-write overlay of that disk, with the project's disk mounted at
                 /opt/apt-clone; the seed's story over five boots (vm/story.sh)

Cache: /var/cache/apt-clone-vm (``$APT_CLONE_VM_CACHE``), keyed by suite, kernel version and
package list. The modules build and the guest's debootstrap run side by side on a fresh machine.
Usage: python3 vm/lane.py [--prepare]   (--prepare: the cached stages that start no VM, alone)
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import lzma
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO, ParamSpec, TypeVar

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("APT_CLONE_VM_CACHE", "/var/cache/apt-clone-vm"))
SUITE = "trixie"
MIRROR = os.environ.get("APT_CLONE_MIRROR", "http://deb.debian.org/debian")
LOGS = CACHE / "logs"
BENCH_VM = LOGS / "bench-openzfs.md"
"""The scale benchmark's table from the last test VM (kernel OpenZFS), for ``make bench``."""
GUEST_PACKAGES = [
    "kmod",
    "zfsutils-linux",
    "python3-pyzfs",
    "python3-ply",
    "python3-apt",
    "python3",
    "python3-typer",
    "python3-questionary",
    "python3-pytest",
    "udev",
    "util-linux",
    "procps",
    "apt-utils",
    "grub-common",
    "debootstrap",
    "mount",
    "zstd",
    "e2fsprogs",
    "fdisk",
]
MODULE_DIRS = (
    "kernel/drivers/virtio",
    "kernel/drivers/block",
    "kernel/drivers/char",
    "kernel/lib",
    "kernel/crypto",
    "kernel/arch",
    "kernel/fs",
    "updates",
)
HOST_PACKAGES = ["qemu-system-x86", "qemu-utils", "cpio", "debootstrap", "e2fsprogs", "ovmf"]
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
"""UEFI firmware (Debian's ovmf, without Secure Boot) and its empty variable store: the UEFI
layout's VMs boot under it, with a store of their own (the installer's boot entry kept with the
disk)."""
KERNEL_ARGS = "console=ttyS0 panic=-1 mitigations=off"
"""Spectre mitigations (retpolines, RSB filling) only slow an emulated guest down."""
QEMU = ["qemu-system-x86_64", "-cpu", "qemu64,+rdrand", "-m", "4096", "-nodefaults", "-nographic", "-serial", "stdio"]
"""Software emulation (KVM here cannot boot stock kernels; see :data:`TCG_BESIDE`); no default
devices (NIC, VGA, floppy, CD-ROM, parallel port): each is a driver the guest would load and probe
at every boot. RDRAND lets the kernel's random generator be ready before the other vCPUs start:
without it "crng init done" came late and flipped a static key (live code patching) while the
other vCPU ran that code."""
TCG_BESIDE = os.environ.get("APT_CLONE_VM_TCG_BESIDE", "tcg,thread=single")
"""TCG of the two VMs that run side by side (tests, boot story): one host thread each. Multi-threaded
TCG gave each VM two threads on two cores, and under it the guest kernel now and then died on a
half-patched int3 when a static key flipped with both vCPUs running (:data:`EMULATOR_FAULT`; the
sched_clock keys flip 3.3 s into every boot). Warm lane, three pairs back to back on 2026-11-23,
single/multi: 263/326, 351/356, 305/298 s (the host's own speed drifts that much); the boot half
alone, single 283 s, multi 197 s: multi only helps a VM that has the two cores to itself."""
TCG_ALONE = os.environ.get("APT_CLONE_VM_TCG_ALONE", "tcg,thread=multi")
"""TCG of the installer VM, which runs alone (two vCPUs on two cores; a fault reruns it)."""
EMULATOR_FAULT = "Oops: int3"
"""The guest kernel's oops on a half-patched instruction (cross-vCPU code patching under
multi-threaded TCG): an emulator fault that says nothing about apt-clone; a VM that shows it is run
once more."""
TESTS_NICE = int(os.environ.get("APT_CLONE_VM_TESTS_NICE", "5"))
"""Scheduling priority (nice) of the test VM beside the boot VM; 0: equal shares. It mattered under
multi-threaded TCG (four busy threads on two cores: 0 -> tests 265 s, boot 333 s; 5 -> tests
277-323 s, boot 253-288 s); with one thread per VM, 0 -> 257/269 s, 5 -> 261/262 s."""
TEST_CPUS = int(os.environ.get("APT_CLONE_VM_TEST_CPUS", "2"))
"""vCPUs of the test VM (two pytest runs, one per backend, in parallel)."""
BOOT_CPUS = int(os.environ.get("APT_CLONE_VM_BOOT_CPUS", "2"))
"""vCPUs of the boot VM. With one TCG thread per VM, one vCPU in each VM made the lane slower
(one run: 284 s, between runs of 262-263 s)."""
GUEST_RECIPE = 3
"""Bumped when :func:`guest_rootfs` changes what it adds to the debootstrapped guest, or
:data:`ARCHIVE_LEAVES_OUT` what the archive leaves out (their cache keys)."""
ARCHIVE_LEAVES_OUT = (
    "./usr/share/locale/",
    "./usr/share/doc/",
    "./usr/share/man/",
    "./usr/share/info/",
    "./var/lib/apt/lists/",
    "./var/cache/apt/",
    "./usr/lib/udev/hwdb.bin",
)
"""What the test and installer VMs never read (translations, documentation, the guest's own package
lists, udev's hardware database: 130 of 388 MB): the guest kernel unpacks every byte of the archive
at each boot."""
BOOT_HALF_FILES = ("vm/apt-clone-vm-story.service",)
"""What the installed disk holds of the project (it is cached by them); apt-clone itself, as the
project's .deb, is on its own disk and installed by apt in the story's first boot."""

results: list[tuple[str, bool, float]] = []


P = ParamSpec("P")
R = TypeVar("R")


def run(argv: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    done: subprocess.CompletedProcess[str] = subprocess.run(argv, check=True, text=True, **kw)
    return done


def stage(name: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """A lane stage: its pass/fail and time are printed and recorded in :data:`results`."""

    def wrap(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def inner(*args: P.args, **kw: P.kwargs) -> R:
            t0 = time.monotonic()
            ok = False
            try:
                out = fn(*args, **kw)
                ok = True
                return out
            finally:
                took = time.monotonic() - t0
                results.append((name, ok, took))
                print(f"[{'PASS' if ok else 'FAIL'}] {name:<17} {took:7.1f}s", flush=True)

        return inner

    return wrap


@stage("host-packages")
def host_packages() -> None:
    missing = [p for p in HOST_PACKAGES if subprocess.run(["dpkg", "-s", p], capture_output=True).returncode != 0]
    if missing:
        run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing], stdout=subprocess.DEVNULL)


@stage("modules")
def modules() -> tuple[str, Path]:
    out = CACHE / SUITE
    run([str(REPO / "vm/build-modules.sh"), str(out), MIRROR])
    kernel = out / "kernel"
    return (kernel / "version").read_text().strip(), kernel


def _guest_dir() -> Path:
    """Keyed by the package list only, so that its debootstrap can start before the kernel is known."""
    key = hashlib.sha1(" ".join([*GUEST_PACKAGES, *MODULE_DIRS]).encode()).hexdigest()[:10]
    return CACHE / SUITE / f"guest-{key}"


def _debootstrap_guest(guest: Path) -> None:
    if (guest / ".debootstrapped").exists():
        return
    from tests.sandbox.rootfs import remove_tree  # never through what a killed debootstrap left mounted

    for old in guest.parent.glob("guest-*"):  # one cached guest (older package lists, a broken try) go
        remove_tree(str(old))
    run(
        [
            "debootstrap",
            "--variant=minbase",
            "--components=main,contrib",
            f"--include={','.join(GUEST_PACKAGES)}",
            SUITE,
            str(guest),
            MIRROR,
        ],
        stdout=subprocess.DEVNULL,
    )
    (guest / ".debootstrapped").touch()


@stage("guest-rootfs")
def guest_rootfs(version: str, kernel: Path) -> Path:
    guest = _guest_dir()
    done = guest / f".done-{version}-r{GUEST_RECIPE}"
    if done.exists():
        return guest
    _debootstrap_guest(guest)
    src = kernel / "modules" / version
    dst = guest / "lib/modules" / version
    dst.mkdir(parents=True, exist_ok=True)
    for rel in MODULE_DIRS:
        if (src / rel).exists():
            shutil.copytree(src / rel, dst / rel, dirs_exist_ok=True)
    for f in src.glob("modules.*"):
        shutil.copy2(f, dst / f.name)
    # zfs.ko and spl.ko as DKMS left them are xz-compressed: under TCG the kernel's xz makes
    # `modprobe zfs` seconds slower. Stored plain (as on the boot disk, vm/target-setup.sh).
    for ko in (dst / "updates").rglob("*.ko.xz"):
        ko.with_suffix("").write_bytes(lzma.decompress(ko.read_bytes()))
        ko.unlink()
    run(["chroot", str(guest), "depmod", version])
    run(["chroot", str(guest), "apt-get", "clean"])
    done.touch()
    return guest


@stage("deb")
def package() -> Path:
    """The project's .deb (scripts/deb.py: built in a clean trixie chroot when older than its sources)."""
    spec = importlib.util.spec_from_file_location("apt_clone_deb", REPO / "scripts/deb.py")
    assert spec is not None and spec.loader is not None
    deb = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(deb)
    built: Path = deb.current_deb()
    return built


@stage("pack")
def pack(guest: Path, version: str, deb: Path) -> Path:
    """The test VM's initramfs: the project (with the two rdinit scripts) as a cpio archive,
    followed by the guest's, which is cached: the kernel unpacks both, one after the other. Neither
    is compressed: under TCG the guest kernel decompresses slowly (zstd: 1-4 s more of a boot), and
    the host copies the 240 MB from its page cache in well under one."""
    base = _guest_archive(guest, version)
    staging = guest / "tmp/apt-clone-pack"  # inside the guest, so that its python3 compiles the project
    if staging.exists():
        shutil.rmtree(staging)
    project = staging / "opt/apt-clone"
    project.mkdir(parents=True)
    for item in ("apt_clone", "tests", "bench", "pyproject.toml", "grub", "systemd", "vm"):
        src = REPO / item
        if src.is_dir():
            shutil.copytree(src, project / item, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, project / item)
    shutil.copy2(REPO / "vm/init-tests", staging / "init-tests")
    for installer in LAYOUTS.values():
        shutil.copy2(REPO / "vm" / installer, staging / installer)
    # Byte-code by the guest's own python3 (run here, natively, in a chroot): under TCG compiling
    # apt_clone at every command start costs seconds, and the boot half mounts it read-only.
    run(
        [
            "chroot",
            str(guest),
            "python3",
            "-m",
            "compileall",
            "-q",
            "--invalidation-mode",
            "unchecked-hash",
            "-s",
            "/tmp/apt-clone-pack",
            "/tmp/apt-clone-pack/opt/apt-clone/apt_clone",
        ],
        stdout=subprocess.DEVNULL,
    )
    _project_disk(project, deb)
    image = CACHE / SUITE / "tests.img"
    with open(image, "wb") as out:
        _cpio(staging, out)
        with open(base, "rb") as f:
            shutil.copyfileobj(f, out, 1 << 20)
    shutil.rmtree(staging)
    return image


def _guest_archive(guest: Path, version: str) -> Path:
    """The guest tree (with the modules of kernel ``version``) as a cpio archive, made once."""
    out = guest.parent / f"{guest.name}-{version}-r{GUEST_RECIPE}.cpio"
    if not out.exists():
        for old in guest.parent.glob("guest-*.cpio*"):  # older guests, and the zstd archives of before
            old.unlink()
        part = out.with_name(out.name + ".part")
        with open(part, "wb") as f:
            _cpio(guest, f, exclude=("./.debootstrapped", "./.done-", "./tmp/apt-clone-pack", *ARCHIVE_LEAVES_OUT))
        part.rename(out)
    return out


def _cpio(tree: Path, out: BinaryIO, *, exclude: tuple[str, ...] = ()) -> None:
    """``tree`` as a newc cpio archive written to the open file ``out``."""
    names = subprocess.run(["find", ".", "-xdev"], cwd=tree, capture_output=True, check=True).stdout.split(b"\n")
    skip = tuple(e.encode() for e in exclude)
    files = b"\n".join(n for n in names if n and not n.startswith(skip)) + b"\n"
    out.flush()
    subprocess.run(["cpio", "-o", "-H", "newc", "--quiet"], cwd=tree, input=files, stdout=out, check=True)


def _project_disk(project: Path, deb: Path) -> Path:
    """apt-clone for the boot half: an ext4 image (LABEL=APTCLONE) holding the project's .deb (as
    ``apt-clone-zfs.deb``) and the story, made without mounting."""
    disk = CACHE / SUITE / "project.img"  # mkfs -F replaces the last run's
    with tempfile.TemporaryDirectory(dir=disk.parent) as tmp:
        tree = Path(tmp) / "apt-clone"
        tree.mkdir()
        shutil.copytree(project / "vm", tree / "vm")
        shutil.copy2(deb, tree / "apt-clone-zfs.deb")
        run(
            ["mkfs.ext4", "-q", "-F", "-O", "^has_journal", "-L", "APTCLONE", "-d", str(tree), str(disk), "64M"],
            stdout=subprocess.DEVNULL,
        )
    return disk


def _scratch_disk(sandbox_tar: Path) -> Path:
    """The test VM's scratch disk (its /var/tmp, where the file-backed pools live): an ext4 image
    made here, natively, holding the sandbox's root tarball (``/var/tmp/sandbox-cache``). mkfs in
    the guest took 5 s of its boot under TCG, and the tarball in the initramfs 108 MB to unpack."""
    scratch = CACHE / SUITE / "scratch.img"  # mkfs -F replaces the last run's
    with tempfile.TemporaryDirectory(dir=scratch.parent) as tmp:
        cache = Path(tmp) / "sandbox-cache"
        cache.mkdir()
        if sandbox_tar.stat().st_dev == cache.stat().st_dev:
            os.link(sandbox_tar, cache / sandbox_tar.name)
        else:
            shutil.copy2(sandbox_tar, cache / sandbox_tar.name)
        run(
            [
                "mkfs.ext4",
                "-q",
                "-F",
                "-O",
                "^has_journal",
                "-E",
                "nodiscard",
                "-L",
                "SCRATCH",
                "-d",
                tmp,
                str(scratch),
                "8G",
            ],
            stdout=subprocess.DEVNULL,
        )
    return scratch


@stage("vm-tests")
def vm_tests(kernel: Path, image: Path, sandbox_tar: Path) -> None:
    LOGS.mkdir(parents=True, exist_ok=True)
    log = LOGS / "vm-tests.serial.log"
    scratch = _scratch_disk(sandbox_tar)
    # Beside the boot half, the longer one, this VM runs at a lower priority (both halves are
    # CPU-bound: two TCG VMs share two cores, and the boot half gets the larger share).
    text = _qemu_booted(
        kernel,
        image,
        f"{KERNEL_ARGS} quiet rdinit=/init-tests",
        [f"file={scratch},if=virtio,format=raw,cache=unsafe"],
        log,
        50 * 60,
        "APT-CLONE-VM: kernel",
        nice=TESTS_NICE,
        cpus=TEST_CPUS,
    )
    scratch.unlink()
    found = dict(re.findall(r"APT-CLONE-VM-RESULT stage=(\S+) rc=(\d+)", text))
    for stamp, line in _stamped(text):
        if line.startswith(("APT-CLONE-VM", "[cli] ", "[lzc] ")) and (
            "passed" in line or "failed" in line or line.startswith("APT-CLONE-VM")
        ):
            print(f"    {stamp} {line.strip()}")
    table = [line.split("] ", 1)[1] for _, line in _stamped(text) if line.startswith("[bench] |")]
    if table:  # reported, never a failure of the lane (the figures are what it is for)
        BENCH_VM.write_text("\n".join(table) + "\n", encoding="utf-8")
        print("\n".join(f"    {row}" for row in table))
    if found.get("bench") != "0":
        print(f"    the benchmark did not finish in the VM (stage=bench rc={found.get('bench')}): see {log}")
    bad = [s for s in ("tests-cli", "tests-lzc") if found.get(s) != "0"]
    if bad:
        raise RuntimeError(f"in the VM: {', '.join(bad)} failed; serial console log: {log}")


@stage("target-tree")
def target_tree(guest: Path, kernel: Path) -> Path:
    recipe = hashlib.sha1((REPO / "vm/target-setup.sh").read_bytes()).hexdigest()[:8]
    version = (kernel / "version").read_text().strip()
    out = guest.with_name(guest.name.replace("guest-", "target-") + f"-{version}-{recipe}.tar")
    for old in guest.parent.glob("target-*.tar"):  # one cached tree: older recipes go
        if old != out:
            old.unlink()
    if not out.exists():
        run([str(REPO / "vm/target-setup.sh"), str(guest), str(kernel), str(out), str(REPO)])
    return out


def _qemu_booted(
    kernel: Path,
    image: Path,
    append: str,
    drives: list[str],
    log: Path,
    timeout: int,
    started: str,
    nice: int = 0,
    cpus: int = 2,
    accel: str = TCG_BESIDE,
    firmware: Path | None = None,
) -> str:
    """Boot a VM whose init prints ``started`` first; once more if the kernel died before that.

    Under multi-threaded TCG the guest kernel has been seen to oops in early init (sched_clock_cpu,
    "Fatal exception in interrupt"; :data:`EMULATOR_FAULT`)."""
    return _once_more(
        lambda: _qemu(
            kernel, image, append, drives, log, timeout, nice=nice, cpus=cpus, accel=accel, firmware=firmware
        ),
        lambda text: (started not in text and "Kernel panic" in text) or EMULATOR_FAULT in text,
        log,
        "the guest kernel died (emulator fault); booting again",
    )


def _once_more(play: Callable[[], str], died: Callable[[str], bool], log: Path, what: str) -> str:
    """``play`` (a VM writing ``log``), and once more if its serial console shows it ``died`` of an
    emulator fault, which says nothing about apt-clone; the first log is kept as ``*.first``."""
    text = play()
    if died(text):
        print(f"    {what} (log: {log}.first)", flush=True)
        log.rename(log.with_name(log.name + ".first"))
        text = play()
    return text


def _qemu(
    kernel: Path | None,
    image: Path | None,
    append: str | None,
    drives: list[str],
    log: Path,
    timeout: int,
    reboot: bool = False,
    nice: int = 0,
    cpus: int = 2,
    accel: str = TCG_BESIDE,
    firmware: Path | None = None,
) -> str:
    """One VM run, its serial console written to ``log``; ``firmware``: boot under OVMF with this
    variable store (else SeaBIOS, the default)."""
    LOGS.mkdir(parents=True, exist_ok=True)
    argv = ["nice", "-n", str(nice), *QEMU] if nice else list(QEMU)
    argv += ["-accel", accel, "-smp", str(cpus)]
    if firmware is not None:
        argv += ["-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}"]
        argv += ["-drive", f"if=pflash,format=raw,unit=1,file={firmware}"]
    if not reboot:
        argv.append("-no-reboot")
    if kernel and image and append:
        argv += ["-kernel", str(kernel / "vmlinuz"), "-initrd", str(image), "-append", append]
    for d in drives:
        argv += ["-drive", d]
    _serial_to_log(argv, log, timeout)
    return log.read_text(errors="replace")


def _serial_to_log(argv: list[str], log: Path, timeout: int) -> None:
    """Run QEMU with its serial console written to ``log``, each line stamped with the seconds since
    the start (host clock: the guest's own clock runs as fast as TCG lets it), killed at ``timeout``."""
    t0 = time.monotonic()
    with open(log, "w") as f:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            assert proc.stdout is not None
            for raw in proc.stdout:
                line = raw.decode(errors="replace").rstrip("\r\n").replace("\r", "")
                f.write(f"[{time.monotonic() - t0:7.1f}] {line}\n")
                f.flush()
            proc.wait()
        finally:
            timer.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if time.monotonic() - t0 >= timeout:
            f.write("\nAPT-CLONE-VM: timed out\n")


def _stamped(text: str) -> list[tuple[str, str]]:
    """The log's lines as (stamp, console line)."""
    out = []
    for line in text.splitlines():
        m = re.match(r"(\[\s*[\d.]+\]) (.*)", line)
        out.append((m.group(1), m.group(2)) if m else ("", line))
    return out


LAYOUTS = {"grub-partition": "install-disk", "uefi": "install-disk-uefi"}
"""The target disks the boot half installs and plays the story on, and their installers: BIOS
GRUB with its directory on an ext2 partition every checkpoint shares, and the OpenZFS Root-on-ZFS
guide's UEFI install under OVMF (shim-signed GRUB and its ESP stub; bpool/BOOT/<name> holding
/boot with GRUB's directory inside; rpool encrypted; rpool/home, rpool/var/log apart)."""
UEFI_LAYOUTS = ("uefi",)


def install_disk(kernel: Path, image: Path, target: Path, layout: str = "grub-partition") -> Path:
    return stage(f"install-disk:{layout}")(_install_disk)(kernel, image, target, layout)


def _install_disk(kernel: Path, image: Path, target: Path, layout: str) -> Path:
    installer = LAYOUTS[layout]
    files = (*BOOT_HALF_FILES, f"vm/{installer}")
    key = hashlib.sha1(target.name.encode() + b"".join((REPO / f).read_bytes() for f in files))
    disk = CACHE / SUITE / f"zfs-root-{layout}-{key.hexdigest()[:10]}.img"
    if disk.exists():
        print(f"    cached: {disk.name}", flush=True)
        return disk
    for old in disk.parent.glob(f"zfs-root-{layout}-*.img*"):  # one cached disk a layout: older ones go
        old.unlink()
    for old in disk.parent.glob("zfs-root-bpool-*.img*"):  # the BIOS bpool layout's, which this one replaced
        old.unlink()
    for old in disk.parent.glob("zfs-root-????????" + "??.img*"):  # the one-layout lane's
        old.unlink()
    part = disk.with_name(disk.name + ".part")
    log = LOGS / f"install-disk-{layout}.serial.log"
    run(["truncate", "-s", "6G", str(part)])
    uefi = layout in UEFI_LAYOUTS
    vars_part = _vars_of(part)
    if uefi:
        shutil.copyfile(OVMF_VARS, vars_part)
    text = _qemu_booted(
        kernel,
        image,
        f"{KERNEL_ARGS} quiet rdinit=/{installer}",
        [f"file={part},if=virtio,format=raw,cache=unsafe", f"file={target},if=virtio,format=raw,readonly=on"],
        log,
        20 * 60,
        "APT-CLONE-VM: installer",
        accel=TCG_ALONE,
        firmware=vars_part if uefi else None,
    )
    if "APT-CLONE-VM-RESULT stage=install rc=0" not in text:
        part.unlink()
        vars_part.unlink(missing_ok=True)
        raise RuntimeError(f"installing the ZFS-root disk failed; serial console log: {log}")
    if uefi:
        vars_part.rename(_vars_of(disk))
    part.rename(disk)
    return disk


def _vars_of(disk: Path) -> Path:
    """The UEFI variable store that goes with ``disk`` (its boot entries)."""
    return disk.with_name(disk.name + ".vars.fd")


def boot_story(disk: Path, layout: str = "grub-partition") -> None:
    stage(f"boot-story:{layout}")(_boot_story)(disk, layout)


def _boot_story(disk: Path, layout: str) -> None:
    """The story writes to a copy-on-write overlay: the installed disk stays as installed, for the next run."""
    log = LOGS / f"boot-story-{layout}.serial.log"
    # A trial boot that dies of an emulator fault falls back, as it should, and the story cannot go on.
    text = _once_more(
        lambda: _play_story(disk, log),
        lambda text: "APT-CLONE-VM-STORY RESULT=PASS" not in text and EMULATOR_FAULT in text,
        log,
        "a guest kernel died of an emulator fault; the story again",
    )
    if "APT-CLONE-VM-STORY RESULT=PASS" not in text:
        raise RuntimeError(f"the story on the ZFS-root disk failed; serial console log: {log}")
    if EMULATOR_FAULT in text:
        # panic=5 on the boot disk: the guest rebooted into the same default entry and went on.
        print(
            f"    a guest kernel died of an emulator fault {text.count('Kernel panic')} time(s) and rebooted"
            f" itself; the story carried on (log: {log})",
            flush=True,
        )


def _play_story(disk: Path, log: Path) -> str:
    """One play of the story from the installed disk, on a fresh overlay; its serial console."""
    overlay = disk.with_name(f"story-{disk.stem}.qcow2")  # one a disk (two stories may play at once)
    run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(disk), str(overlay)])
    installed_vars = _vars_of(disk)
    firmware = overlay.with_name(overlay.stem + ".vars.fd") if installed_vars.exists() else None
    if firmware is not None:
        shutil.copyfile(installed_vars, firmware)  # the story's boots may add entries: the disk's stay
    project = CACHE / SUITE / "project.img"
    text = _qemu(
        None,
        None,
        None,
        [f"file={overlay},if=virtio,format=qcow2,cache=unsafe", f"file={project},if=virtio,format=raw,readonly=on"],
        log,
        45 * 60,
        reboot=True,
        cpus=BOOT_CPUS,
        firmware=firmware,
    )
    overlay.unlink()
    if firmware is not None:
        firmware.unlink()
    for stamp, line in _stamped(text):
        if "APT-CLONE-VM-STORY" in line:
            print(f"    {stamp} {line[line.index('APT-CLONE-VM-STORY') :].strip()}")
    return text


def prepared() -> tuple[str, Path, Path]:
    """The cached stages no VM runs in: the host's packages, the kernel and its modules, the
    guest's userland (version, kernel directory, guest tree)."""
    host_packages()
    # On a fresh machine the modules build (CPU) and the guest's debootstrap (network, dpkg) overlap.
    with ThreadPoolExecutor(max_workers=1) as pool:
        early = pool.submit(stage("guest-debootstrap")(_debootstrap_guest), _guest_dir())
        version, kernel = modules()
        early.result()
    return version, kernel, guest_rootfs(version, kernel)


def prepare() -> int:
    """``--prepare``: build what the lane caches (above, and the target tree) and start no VM, so
    that ``make test`` can build it on a fresh machine while the host suite runs."""
    t0 = time.monotonic()
    try:
        _, kernel, guest = prepared()
        target_tree(guest, kernel)
    except Exception as exc:
        print(f"vm lane: preparing failed: {exc}", file=sys.stderr)
        return 1
    print(f"vm lane: prepared in {time.monotonic() - t0:.0f}s")
    return 0


def main() -> int:
    if os.geteuid() != 0:
        print("vm lane: needs root", file=sys.stderr)
        return 2
    sys.path.insert(0, str(REPO))
    if sys.argv[1:] == ["--prepare"]:
        return prepare()
    from tests.sandbox import rootfs

    t0 = time.monotonic()
    try:
        version, kernel, guest = prepared()
        sandbox_tar = Path(rootfs.ensure_tarball("bookworm"))
        image = pack(guest, version, package())
        which = os.environ.get("APT_CLONE_VM_STAGES", "all")

        layouts = os.environ.get("APT_CLONE_VM_LAYOUTS", " ".join(LAYOUTS)).split()
        # With both halves, the layouts after the first play on the tests' VM thread once the
        # tests are done (the boot half is the longer one).
        later = layouts[1:] if which == "all" else []
        target_made: Future[Path] = Future()

        def boot_half() -> None:
            try:
                target = target_tree(guest, kernel)
            except BaseException as exc:
                target_made.set_exception(exc)
                raise
            target_made.set_result(target)
            for layout in [x for x in layouts if x not in later]:
                boot_story(install_disk(kernel, image, target, layout), layout)

        def tests_half() -> None:
            vm_tests(kernel, image, sandbox_tar)
            for layout in later:
                boot_story(install_disk(kernel, image, target_made.result(), layout), layout)

        # The two halves are two VMs, one TCG thread each: side by side they use both host cores.
        halves = [f for f, name in ((tests_half, "tests"), (boot_half, "boot")) if which in ("all", name)]
        with ThreadPoolExecutor(max_workers=2) as pool:
            for future in [pool.submit(h) for h in halves]:
                future.result()
    except Exception as exc:  # one line per failure; logs are kept
        print(f"vm lane: {exc}", file=sys.stderr)
        print(f"vm lane: FAILED after {time.monotonic() - t0:.0f}s (logs: {LOGS})")
        return 1
    print(f"vm lane: all stages passed in {time.monotonic() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

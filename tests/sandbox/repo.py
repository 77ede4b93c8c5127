"""The sandbox's local apt repository: small project-built packages that exercise apt-clone.

Sources use apt's ``copy:`` method, so that indexes and .debs are copied into the root's
lists and archive cache (``file:`` would leave symlinks that only resolve inside the chroot).

Suites (flat repositories under ``/srv/apt-clone-repo/<suite>``):

* ``stable`` (enabled): ``ac-hello`` 1.1 (an upgrade of the installed 1.0), ``ac-extra``
  (depends on ac-hello), ``ac-huge`` (declares 50 GB installed size), ``ac-slow`` (its postinst
  announces itself on /dev/ac-slow.ready and waits on /dev/ac-slow.go when those FIFOs exist,
  so tests can interrupt apt at a known point without sleeping).
  ``linux-image-9.9.9-ac``: a stand-in kernel (a vmlinuz, its config and an empty module tree)
  whose package makes no initramfs, as when a kernel hook did nothing in a chroot.
* ``reboot``: ``ac-kernel`` 1.1, whose postinst asks for a reboot through /run/reboot-required
  as Debian's update-notifier hooks do.
* ``unstable``: ``ac-flaky`` 2.0, whose postinst fails.
* ``bootloader``: ``grub-efi-ac`` 1.0 and 1.1, a stand-in for grub-efi-amd64 whose postinst
  runs grub-install as the real one's does (when /boot/efi/EFI/debian exists); its grub-install,
  a script, writes its version on the ESP and in GRUB's directory (the sandbox has no GRUB).
  ``grub-pc-ac`` 1.0 and 1.1, a stand-in for grub-pc whose postinst runs grub-install for each
  disk that ``/etc/grub-pc-ac.disks`` names (debconf's ``grub-pc/install_devices``); its
  grub-install writes its version into each (tests name a file in /dev).
* ``uefi``: ``grub-efi-amd64`` 2.99+ac1, the VM lane's GRUB upgrade on the real GRUB: the
  same postinst, and a module file that grub-install copies into GRUB's directory.

The initial root has ac-hello 1.0, ac-kernel 1.0 and ac-flaky 1.0 installed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field

from apt_clone.errors import OperationFailed
from apt_clone.runner import DEFAULT_RUNNER, Runner

REPO_DIR = "srv/apt-clone-repo"
SOURCES_DIR = "etc/apt/sources.list.d"
SLOW_FIFO_READY = "dev/ac-slow.ready"
SLOW_FIFO_GO = "dev/ac-slow.go"
"""In /dev, which every chroot apt-clone sets up binds from the host: tests make the FIFOs there."""


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    suite: str
    depends: str = ""
    postinst: str = ""
    installed_size_kb: int | None = None
    files: dict[str, str] = field(default_factory=dict)
    initial: bool = False
    executable: tuple[str, ...] = ()
    """Which of ``files`` are programs (mode 0755)."""


REBOOT_POSTINST = """#!/bin/sh
set -e
if [ "$1" = configure ]; then
    touch /run/reboot-required
    echo ac-kernel >> /run/reboot-required.pkgs
fi
"""

FAILING_POSTINST = """#!/bin/sh
echo "ac-flaky: postinst fails on purpose" >&2
exit 1
"""

SLOW_POSTINST = f"""#!/bin/sh
set -e
if [ "$1" = configure ] && [ -p /{SLOW_FIFO_READY} ]; then
    echo ready > /{SLOW_FIFO_READY}
    read go < /{SLOW_FIFO_GO}
fi
"""

FAKE_KERNEL = "9.9.9-ac"

GRUB_EFI_POSTINST = """#!/bin/sh
# As grub-efi-amd64's: grub-install again when the ESP holds the vendor's directory.
set -e
if [ "$1" = configure ] && [ -d /boot/efi/EFI/debian ]; then
    grub-install --target=x86_64-efi
fi
if [ "$1" = configure ] && command -v update-grub >/dev/null && [ -e /boot/grub/grub.cfg ]; then
    update-grub
fi
"""


GRUB_EFI_STAND_IN = "2.99+ac1"
"""The VM lane's GRUB upgrade: newer than trixie's grub-efi-amd64, on the real GRUB binaries; its
module file, copied by grub-install into GRUB's directory, tells that it ran."""


def grub_install(version: str) -> str:
    """A stand-in grub-install of ``version``: what it writes on the ESP and in GRUB's directory
    tells which version ran (the VM lane runs the real one)."""
    return f"""#!/bin/sh
# apt-clone sandbox: a stand-in grub-install {version} (x86_64-efi only).
set -e
efi=/boot/efi boot=/boot id=debian
for arg; do
    case $arg in
    --efi-directory=*) efi=${{arg#*=}} ;;
    --boot-directory=*) boot=${{arg#*=}} ;;
    --bootloader-id=*) id=${{arg#*=}} ;;
    esac
done
[ -d "$efi/EFI" ] || {{ echo "grub-install: error: $efi doesn't look like an EFI partition." >&2; exit 1; }}
mkdir -p "$efi/EFI/$id" "$boot/grub/x86_64-efi"
printf 'stand-in grub {version}\n' > "$efi/EFI/$id/grubx64.efi"
printf 'stand-in shim {version}\n' > "$efi/EFI/$id/shimx64.efi"
printf '{version}\n' > "$boot/grub/x86_64-efi/version"
echo "Installation finished. No error reported."
"""


GRUB_PC_DISKS = "etc/grub-pc-ac.disks"
GRUB_PC_POSTINST = f"""#!/bin/sh
# As grub-pc's: grub-install to each disk debconf's grub-pc/install_devices names.
set -e
if [ "$1" = configure ] && [ -s /{GRUB_PC_DISKS} ]; then
    for disk in $(cat /{GRUB_PC_DISKS}); do
        grub-install --target=i386-pc "$disk"
    done
fi
"""


def grub_pc_install(version: str) -> str:
    """A stand-in grub-install of ``version`` for i386-pc: writes its version into each disk named."""
    return f"""#!/bin/sh
# apt-clone sandbox: a stand-in grub-install {version} (i386-pc only).
set -e
for arg; do
    case $arg in
    -*) ;;
    *) printf 'boot code of grub-pc-ac {version}\n' > "$arg" ;;
    esac
done
echo "Installation finished. No error reported."
"""


PACKAGES: tuple[Package, ...] = (
    Package("ac-hello", "1.0", "stable", files={"usr/share/ac-hello/version": "1.0\n"}, initial=True),
    Package("ac-hello", "1.1", "stable", files={"usr/share/ac-hello/version": "1.1\n"}),
    Package("ac-extra", "1.0", "stable", depends="ac-hello (>= 1.0)", files={"usr/share/ac-extra/readme": "extra\n"}),
    Package("ac-huge", "1.0", "stable", installed_size_kb=50 * 1024 * 1024, files={"usr/share/ac-huge/x": "x\n"}),
    Package("ac-slow", "1.0", "stable", postinst=SLOW_POSTINST, files={"usr/share/ac-slow/x": "x\n"}),
    Package(
        "linux-image-9.9.9-ac",
        "1.0",
        "stable",
        files={
            f"boot/vmlinuz-{FAKE_KERNEL}": "not a kernel: apt-clone sandbox\n",
            f"boot/config-{FAKE_KERNEL}": "CONFIG_BLK_DEV_INITRD=y\nCONFIG_RD_GZIP=y\nCONFIG_RD_ZSTD=y\n",
            f"lib/modules/{FAKE_KERNEL}/modules.order": "",
            f"lib/modules/{FAKE_KERNEL}/modules.builtin": "",
            f"lib/modules/{FAKE_KERNEL}/modules.builtin.modinfo": "",
        },
    ),
    Package("ac-kernel", "1.0", "reboot", files={"usr/share/ac-kernel/version": "1.0\n"}, initial=True),
    Package("ac-kernel", "1.1", "reboot", postinst=REBOOT_POSTINST, files={"usr/share/ac-kernel/version": "1.1\n"}),
    *(
        Package(
            name,
            version,
            "bootloader",
            postinst=postinst,
            files={"usr/sbin/grub-install": script(version)},
            executable=("usr/sbin/grub-install",),
        )
        for name, postinst, script in (
            ("grub-efi-ac", GRUB_EFI_POSTINST, grub_install),
            ("grub-pc-ac", GRUB_PC_POSTINST, grub_pc_install),
        )
        for version in ("1.0", "1.1")
    ),
    Package(
        "grub-efi-amd64",
        GRUB_EFI_STAND_IN,
        "uefi",
        depends="grub2-common, grub-efi-amd64-bin",
        postinst=GRUB_EFI_POSTINST,
        files={"usr/lib/grub/x86_64-efi/aptclonevm.mod": "apt-clone VM lane: a module no one loads\n"},
    ),
    Package("ac-flaky", "1.0", "unstable", files={"usr/share/ac-flaky/version": "1.0\n"}, initial=True),
    Package("ac-flaky", "2.0", "unstable", postinst=FAILING_POSTINST, files={"usr/share/ac-flaky/version": "2.0\n"}),
)
SUITES = ("stable", "reboot", "unstable", "bootloader", "uefi")
RECIPE_VERSION = "6"
"""Bump when PACKAGES or the rootfs recipe change: it is part of the rootfs cache key."""


def _build_deb(pkg: Package, outdir: str, runner: Runner) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        tree = os.path.join(tmp, "pkg")
        os.makedirs(os.path.join(tree, "DEBIAN"))
        for rel, content in pkg.files.items():
            path = os.path.join(tree, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(content)
            if rel in pkg.executable:
                os.chmod(path, 0o755)
        control = [
            f"Package: {pkg.name}",
            f"Version: {pkg.version}",
            "Architecture: all",
            "Maintainer: apt-clone sandbox <sandbox@apt-clone.invalid>",
            "Priority: optional",
            "Section: misc",
        ]
        if pkg.depends:
            control.append(f"Depends: {pkg.depends}")
        if pkg.installed_size_kb is not None:
            control.append(f"Installed-Size: {pkg.installed_size_kb}")
        control.append(f"Description: apt-clone sandbox package {pkg.name}")
        control.append(" Built by tests.sandbox to exercise apt-clone.")
        with open(os.path.join(tree, "DEBIAN", "control"), "w", encoding="utf-8") as f:
            f.write("\n".join(control) + "\n")
        if pkg.postinst:
            script = os.path.join(tree, "DEBIAN", "postinst")
            with open(script, "w", encoding="utf-8") as f:
                f.write(pkg.postinst)
            os.chmod(script, 0o755)
        deb = os.path.join(outdir, f"{pkg.name}_{pkg.version}_all.deb")
        result = runner.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", tree, deb])
        if not result.ok:
            raise OperationFailed(f"dpkg-deb failed for {pkg.name}: {result.error_line()}")
        return deb


def build_repo(root: str, runner: Runner = DEFAULT_RUNNER) -> dict[str, str]:
    """Build every package into ``<root>/srv/apt-clone-repo/<suite>`` and index it.

    Returns the initial packages' .deb paths (inside ``root``), to be installed.
    """
    base = os.path.join(root, REPO_DIR)
    if os.path.isdir(base):
        shutil.rmtree(base)
    initial: dict[str, str] = {}
    for suite in SUITES:
        os.makedirs(os.path.join(base, suite))
    for pkg in PACKAGES:
        deb = _build_deb(pkg, os.path.join(base, pkg.suite), runner)
        if pkg.initial:
            initial[pkg.name] = deb
    for suite in SUITES:
        index(os.path.join(base, suite), runner)
    return initial


def index(suite_dir: str, runner: Runner = DEFAULT_RUNNER) -> None:
    """(Re)write Packages and Release of one flat suite with apt-ftparchive."""
    result = runner.run(["apt-ftparchive", "packages", "."], cwd=suite_dir)
    if not result.ok:
        raise OperationFailed(f"apt-ftparchive failed: {result.error_line()}")
    with open(os.path.join(suite_dir, "Packages"), "w", encoding="utf-8") as f:
        f.write(result.stdout)
    release = runner.run(
        ["apt-ftparchive", "-o", "APT::FTPArchive::Release::Suite=sandbox", "release", "."], cwd=suite_dir
    )
    if not release.ok:
        raise OperationFailed(f"apt-ftparchive failed: {release.error_line()}")
    with open(os.path.join(suite_dir, "Release"), "w", encoding="utf-8") as f:
        f.write(release.stdout)


def sources_file(root: str, suite: str) -> str:
    return os.path.join(root, SOURCES_DIR, f"apt-clone-sandbox-{suite}.list")


def enable_suite(root: str, suite: str) -> str:
    """Point the system at one more sandbox suite; returns the sources file written."""
    if suite not in SUITES:
        raise OperationFailed(f"unknown sandbox suite {suite!r} (have: {', '.join(SUITES)})")
    path = sources_file(root, suite)
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"deb [trusted=yes] copy:/{REPO_DIR}/{suite} ./\n")
    return path


def disable_suite(root: str, suite: str) -> None:
    path = sources_file(root, suite)
    if os.path.exists(path):
        os.unlink(path)

"""After apt ran inside a clone: the boot files the change needs, made inside the clone.

Debian makes them with dpkg triggers and /etc/kernel hooks while packages are configured, but in
a clone a hook may have skipped its work (a kernel package whose hook found nothing to do, a
trigger deferred to a later run). This checks the clone and completes it, chrooted into it:

* an initramfs for every kernel in the clone's /boot: ``update-initramfs -c`` for a kernel that
  has none, ``-u`` when a package the initramfs is built from changed after it was made;
* the clone's own GRUB configuration (``update-grub``) when its kernels changed and it has one.

A missing initramfs makes the checkpoint unbootable, so a failing ``update-initramfs`` fails the
operation (and offers the rollback); a failing ``update-grub`` is reported: apt-clone's own menu
on the running system lists the clone's kernels either way.
"""

from __future__ import annotations

import os

from ..boot.grub import kernels_in
from ..errors import OperationFailed
from ..record import field, record
from ..runner import Runner

INITRAMFS_SOURCES = (
    "linux-image-",
    "initramfs-tools",
    "zfs-initramfs",
    "zfsutils-linux",
    "zfs-dkms",
    "zfs-modules",
    "cryptsetup",
    "busybox",
    "klibc-utils",
    "kmod",
    "udev",
)
"""Packages (name prefixes) whose change makes an initramfs out of date."""


def installed_kernels(boot_dir: str) -> list[str]:
    """Kernel versions with a vmlinuz in ``boot_dir`` (with or without an initramfs)."""
    try:
        return sorted(n[len("vmlinuz-") :] for n in os.listdir(boot_dir) if n.startswith("vmlinuz-"))
    except OSError:
        return []


@record(frozen=True)
class BootFilesPlan:
    create: list[str] = field(default_factory=list)
    """Kernels without an initramfs."""
    update: list[str] = field(default_factory=list)
    """Kernels whose initramfs predates a change of a package it is built from."""
    grub: bool = False
    """Run update-grub: the kernels changed and the clone has its own grub.cfg, older than the change."""
    has_initramfs_tool: bool = True

    @property
    def empty(self) -> bool:
        return not (self.create or self.update or self.grub)


def plan(root: str, changed: list[str], since: float, kernels_before: list[str]) -> BootFilesPlan:
    """What the clone at ``root`` needs after apt changed the packages ``changed`` (started at ``since``)."""
    boot = os.path.join(root, "boot")
    kernels = installed_kernels(boot)
    with_initrd = set(kernels_in(boot))
    create = [k for k in kernels if k not in with_initrd]
    relevant = any(name.startswith(INITRAMFS_SOURCES) for name in changed)
    update = []
    if relevant:
        for k in kernels:
            initrd = os.path.join(boot, f"initrd.img-{k}")
            if k in with_initrd and os.path.getmtime(initrd) < since:
                update.append(k)
    cfg = os.path.join(boot, "grub", "grub.cfg")
    grub = (
        sorted(kernels) != sorted(kernels_before)
        and os.path.isfile(cfg)
        and not os.path.islink(cfg)
        and os.path.getmtime(cfg) < since
        and os.path.exists(os.path.join(root, "usr/sbin/update-grub"))
    )
    tool = os.path.exists(os.path.join(root, "usr/sbin/update-initramfs"))
    return BootFilesPlan(create, update, grub, tool)


def apply(runner: Runner, root: str, todo: BootFilesPlan) -> list[str]:
    """Run what ``todo`` says, chrooted into ``root`` (its chroot mounts in place). Returns messages."""
    done: list[str] = []
    if (todo.create or todo.update) and not todo.has_initramfs_tool:
        missing = ", ".join(todo.create)
        if missing:
            raise OperationFailed(f"kernel {missing} has no initramfs and the clone has no update-initramfs")
        return [f"initramfs of {', '.join(todo.update)} may be out of date: the clone has no update-initramfs"]
    for flag, kernels in (("-c", todo.create), ("-u", todo.update)):
        for kernel in kernels:
            result = runner.run(["chroot", root, "update-initramfs", flag, "-k", kernel])
            if not result.ok:
                raise OperationFailed(f"update-initramfs {flag} -k {kernel} in the clone failed: {result.error_line()}")
            done.append(f"made the initramfs of kernel {kernel} in the clone (update-initramfs {flag})")
    if todo.grub:
        result = runner.run(["chroot", root, "update-grub"])
        if result.ok:
            done.append("updated the clone's own GRUB configuration (update-grub)")
        else:
            done.append(
                f"warning: update-grub in the clone failed ({result.error_line()}); apt-clone's menu is current"
            )
    return done

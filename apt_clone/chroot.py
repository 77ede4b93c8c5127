"""Mounts and guards for running commands inside another root, as a context manager.

Binds /proc, /sys, /dev and /dev/pts, mounts a fresh tmpfs on /run, blocks service starts
with a policy-rc.d, and copies resolv.conf; every change is undone on the way out, whatever
happened inside.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager

from . import mounts
from .errors import OperationFailed
from .signals import shielded
from .system import read_mounts

POLICY_RC_D = "#!/bin/sh\n# Written by apt-clone: no service starts inside a checkpoint being upgraded.\nexit 101\n"


def unmount(path: str) -> None:
    """Unmount one mount point; a busy one is detached lazily rather than left behind."""
    try:
        mounts.umount(path)
    except OSError:
        try:
            mounts.umount(path, lazy=True)
        except OSError as exc:
            raise OperationFailed(f"cannot unmount {path}: {exc.strerror}") from None


@contextmanager
def _mounted(spec: mounts.Mount, path: str) -> Iterator[None]:
    """A mount for the duration; a signal can come neither between the mount and its undo
    being due nor during the undo (both are shielded)."""
    os.makedirs(path, exist_ok=True)
    done = False
    try:
        with shielded():
            try:
                mounts.mount(spec, path)
            except OSError as exc:
                raise OperationFailed(str(exc.strerror)) from None
            done = True
        yield
    finally:
        if done:
            with shielded():
                unmount(path)


def bound(source: str, path: str) -> AbstractContextManager[None]:
    """``source`` bind-mounted at ``path`` for the duration (see :func:`_mounted`)."""
    return _mounted(mounts.Mount(source, flags=mounts.MS_BIND), path)


CHROOT_SPECS = (
    ("proc", mounts.Mount("proc", "proc", mounts.MS_NOSUID | mounts.MS_NODEV)),
    ("sys", mounts.Mount("/sys", flags=mounts.MS_BIND)),
    ("dev", mounts.Mount("/dev", flags=mounts.MS_BIND)),
    ("dev/pts", mounts.Mount("/dev/pts", flags=mounts.MS_BIND)),
    ("run", mounts.Mount("tmpfs", "tmpfs", mounts.MS_NOSUID | mounts.MS_NODEV, "mode=0755")),
)
"""What a chroot gets, parents first: the kernel's and the host's /sys, /dev, /dev/pts, and a /run of its own."""


SAVED_SUFFIX = ".apt-clone-saved"
ABSENT_SUFFIX = ".apt-clone-absent"
REPLACED = ("usr/sbin/policy-rc.d", "etc/resolv.conf")
CHROOT_MOUNTS = ("run", "dev/pts", "dev", "sys", "proc")


def _restore(path: str) -> None:
    """Put back what :func:`_file_replaced` moved aside (also after a crash)."""
    saved, absent = path + SAVED_SUFFIX, path + ABSENT_SUFFIX
    if os.path.lexists(saved):
        if os.path.lexists(path):
            os.unlink(path)
        os.rename(saved, path)
    elif os.path.lexists(absent):
        if os.path.lexists(path):
            os.unlink(path)
        os.unlink(absent)


@contextmanager
def _file_replaced(path: str, content: bytes | None, source: str | None = None) -> Iterator[None]:
    """Put a file in place for the duration, then restore what was there (or remove it).

    The original is moved aside on disk (``.apt-clone-saved``, or an ``.apt-clone-absent``
    marker), so that :func:`restore_after_crash` can put it back if the process dies.
    """
    try:
        with shielded():
            _restore(path)  # a previous run that crashed
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if os.path.lexists(path):
                os.rename(path, path + SAVED_SUFFIX)
            else:
                with open(path + ABSENT_SUFFIX, "wb"):
                    pass
            if source is not None:
                import shutil  # its compression modules stay off the APT hook's start-up

                shutil.copyfile(source, path, follow_symlinks=True)
            else:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o755)
                with os.fdopen(fd, "wb") as f:
                    f.write(content or b"")
        yield
    finally:
        with shielded():
            _restore(path)


def restore_after_crash(target: str, *, files: bool = True) -> list[str]:
    """Undo what a killed :func:`chroot_environment` left in ``target``: mounts and replaced
    files (``files=False``: mounts only, for a root about to be destroyed: on a full pool even
    a rename back can fail)."""
    target = os.path.realpath(target)
    done = []
    if target != "/":
        mounted = {m.mountpoint for m in read_mounts()}
        for rel in CHROOT_MOUNTS:
            path = os.path.join(target, rel)
            if path in mounted:
                unmount(path)
                done.append(f"unmounted {path}")
    for rel in REPLACED if files else ():
        path = os.path.join(target, rel)
        if os.path.lexists(path + SAVED_SUFFIX) or os.path.lexists(path + ABSENT_SUFFIX):
            _restore(path)
            done.append(f"restored {path}")
    return done


@contextmanager
def chroot_environment(
    target: str,
    *,
    block_services: bool = True,
    copy_resolv_conf: bool = True,
) -> Iterator[str]:
    """Make ``target`` ready for ``chroot target ...``; tear everything down on exit."""
    target = os.path.realpath(target)
    if target == "/":
        raise OperationFailed("refusing to set up a chroot on /")
    with ExitStack() as stack:
        for where, spec in CHROOT_SPECS:
            stack.enter_context(_mounted(spec, os.path.join(target, where)))
        if block_services:
            stack.enter_context(_file_replaced(os.path.join(target, "usr/sbin/policy-rc.d"), POLICY_RC_D.encode()))
        if copy_resolv_conf and os.path.isfile("/etc/resolv.conf"):
            stack.enter_context(
                _file_replaced(os.path.join(target, "etc/resolv.conf"), None, source="/etc/resolv.conf")
            )
        yield target

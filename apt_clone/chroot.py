"""Mounts and guards for running commands inside another root, as a context manager.

Binds /proc, /sys, /dev and /dev/pts, mounts a fresh tmpfs on /run, blocks service starts
with a policy-rc.d, and copies resolv.conf; every change is undone on the way out, whatever
happened inside.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from .errors import OperationFailed
from .runner import DEFAULT_RUNNER, Runner

POLICY_RC_D = "#!/bin/sh\n# Written by apt-clone: no service starts inside a checkpoint being upgraded.\nexit 101\n"


def _mount(runner: Runner, argv: list[str]) -> None:
    result = runner.run(argv)
    if not result.ok:
        raise OperationFailed(f"{' '.join(argv)}: {result.error_line()}")


def unmount(runner: Runner, path: str) -> None:
    """Unmount one mount point; a busy one is detached lazily rather than left behind."""
    result = runner.run(["umount", path])
    if result.ok:
        return
    lazy = runner.run(["umount", "-l", path])
    if not lazy.ok:
        raise OperationFailed(f"cannot unmount {path}: {lazy.error_line()}")


@contextmanager
def _mounted(runner: Runner, argv: list[str], path: str) -> Iterator[None]:
    os.makedirs(path, exist_ok=True)
    _mount(runner, [*argv, path])
    try:
        yield
    finally:
        unmount(runner, path)


@contextmanager
def _file_replaced(path: str, content: bytes | None, source: str | None = None) -> Iterator[None]:
    """Put a file in place for the duration, then restore what was there (or remove it)."""
    backup: bytes | None = None
    existed = os.path.lexists(path)
    was_link = os.path.islink(path)
    link_target = os.readlink(path) if was_link else None
    if existed and not was_link:
        with open(path, "rb") as f:
            backup = f.read()
    if existed:
        os.unlink(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if source is not None:
        shutil.copyfile(source, path)
    else:
        with open(path, "wb") as f:
            f.write(content or b"")
        os.chmod(path, 0o755)
    try:
        yield
    finally:
        if os.path.lexists(path):
            os.unlink(path)
        if link_target is not None:
            os.symlink(link_target, path)
        elif backup is not None:
            with open(path, "wb") as f:
                f.write(backup)


@contextmanager
def chroot_environment(
    target: str,
    runner: Runner = DEFAULT_RUNNER,
    *,
    block_services: bool = True,
    copy_resolv_conf: bool = True,
) -> Iterator[str]:
    """Make ``target`` ready for ``chroot target ...``; tear everything down on exit."""
    target = os.path.realpath(target)
    if target == "/":
        raise OperationFailed("refusing to set up a chroot on /")
    with ExitStack() as stack:
        stack.enter_context(_mounted(runner, ["mount", "-t", "proc", "proc"], os.path.join(target, "proc")))
        stack.enter_context(_mounted(runner, ["mount", "--bind", "/sys"], os.path.join(target, "sys")))
        stack.enter_context(_mounted(runner, ["mount", "--bind", "/dev"], os.path.join(target, "dev")))
        stack.enter_context(_mounted(runner, ["mount", "--bind", "/dev/pts"], os.path.join(target, "dev/pts")))
        stack.enter_context(
            _mounted(
                runner, ["mount", "-t", "tmpfs", "-o", "mode=0755,nosuid,nodev", "tmpfs"], os.path.join(target, "run")
            )
        )
        if block_services:
            stack.enter_context(_file_replaced(os.path.join(target, "usr/sbin/policy-rc.d"), POLICY_RC_D.encode()))
        if copy_resolv_conf and os.path.isfile("/etc/resolv.conf"):
            stack.enter_context(
                _file_replaced(os.path.join(target, "etc/resolv.conf"), None, source="/etc/resolv.conf")
            )
        yield target

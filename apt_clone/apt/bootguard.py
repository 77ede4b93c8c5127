"""A clone's grub-install held back while apt runs in it: no maintainer script in a clone writes
a disk's boot code.

On a BIOS machine grub-pc's postinst runs grub-install for the disks debconf names (/dev is
bound into the clone's chroot): the live boot sector would get a core image whose prefix names
the clone's /boot/grub, moving GRUB's home to a checkpoint that an undo or ``-r`` then destroys
(a GRUB rescue prompt). While apt runs in a clone its grub-install is diverted with dpkg-divert
(so that a grub2-common unpacked meanwhile lands beside it) and replaced by a script that only
records the call (:data:`CALLS`, in the chroot's own /run). Afterwards the diversion is removed
(also by ``recover`` after a kill: :func:`restore`) and the clone is marked with the disks the
calls named (:data:`apt_clone.checkpoints.efi.HELD_BACK`), which the disks get when the user installs GRUB from that
checkpoint.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import OperationFailed
from ..runner import Runner
from ..signals import shielded

GRUB_INSTALL = "/usr/sbin/grub-install"
DIVERTED = GRUB_INSTALL + ".apt-clone"
"""Where the clone's own grub-install waits while apt runs (dpkg-divert's divert-to)."""
CALLS = "run/apt-clone-grub-install"
"""In the chroot: one line per grub-install call a maintainer script made, its arguments."""
STAND_IN = f"""#!/bin/sh
# Written by apt-clone: a checkpoint being upgraded writes no disk's boot code.
printf '%s\\n' "$*" >> /{CALLS}
echo "apt-clone: grub-install $* held back: this checkpoint is not the running system" >&2
exit 0
"""


def _inside(root: str) -> str:
    """The stand-in's path in ``root``, its directory checked to be inside ``root`` (a clone's
    /usr/sbin that is a link out of it is never written through)."""
    path = os.path.join(root, GRUB_INSTALL.lstrip("/"))
    real, top = os.path.realpath(os.path.dirname(path)), os.path.realpath(root)
    if not real.startswith(top.rstrip("/") + "/"):
        raise OperationFailed(f"{os.path.dirname(path)} leads out of {root}: grub-install is not held back there")
    return path


def _divert(runner: Runner, root: str, *args: str) -> None:
    argv = ["dpkg-divert", "--root", root, "--local", "--rename", "--divert", DIVERTED, *args, GRUB_INSTALL]
    result = runner.run(argv)
    if not result.ok:
        raise OperationFailed(f"dpkg-divert failed in {root}: {result.error_line()}")


def diverted(runner: Runner, root: str) -> bool:
    """Whether apt-clone's diversion of grub-install is in place in ``root``."""
    result = runner.run(["dpkg-divert", "--root", root, "--truename", GRUB_INSTALL])
    return result.ok and result.stdout.strip() == DIVERTED


def restore(runner: Runner, root: str) -> list[str]:
    """The clone's own grub-install back in place (also after a crash): what was done."""
    if not os.path.isdir(os.path.join(root, "var/lib/dpkg")) or not diverted(runner, root):
        return []
    _put_back(runner, root)
    return [f"put back grub-install in {root}"]


def _put_back(runner: Runner, root: str) -> None:
    """The stand-in gone and the diversion removed (dpkg-divert renames the clone's own back)."""
    with shielded():
        path = _inside(root)
        if os.path.lexists(path):
            os.unlink(path)
        _divert(runner, root, "--remove")


@contextmanager
def held_back(runner: Runner, root: str) -> Iterator[None]:
    """For the duration, a grub-install run in the chroot at ``root`` records its call and
    writes nothing (see the module's docstring)."""
    restore(runner, root)  # a previous run that was killed
    path = _inside(root)
    with shielded():
        _divert(runner, root, "--add")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o755)
        except OSError as exc:
            _divert(runner, root, "--remove")
            raise OperationFailed(f"cannot hold back grub-install in {root}: {exc.strerror}") from None
        with os.fdopen(fd, "w") as f:
            f.write(STAND_IN)
    try:
        yield
    finally:
        _put_back(runner, root)  # diverted above: no need to ask dpkg-divert again


def calls(root: str) -> list[str]:
    """The grub-install calls recorded in the chroot at ``root`` (read before its /run goes)."""
    try:
        with open(os.path.join(root, CALLS), encoding="utf-8", errors="replace") as f:
            return [line.rstrip("\n") for line in f if line.strip()]
    except OSError:
        return []


def disks(recorded: list[str]) -> list[str]:
    """The devices the recorded grub-install calls named (their arguments that are not options)."""
    return list(dict.fromkeys(arg for line in recorded for arg in line.split() if not arg.startswith("-")))

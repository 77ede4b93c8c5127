"""Looking into checkpoints: recorded changes (``show``) and package differences (``diff``)."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass

from .. import dpkgstatus, model, testhooks
from ..context import Context
from ..paths import mount_base, secure_dir
from ..signals import shielded
from . import services


@dataclass(frozen=True)
class Details:
    checkpoint: model.Checkpoint
    changes: list[list[str | None]]
    reboot: str | None = None
    """Why the change needed a reboot, when it did."""


def show(ctx: Context, name: str) -> Details:
    cp = services.find(ctx, name)
    ds = ctx.zfs.get(cp.dataset, (*model.CHANGE_KEYS, model.REBOOT))
    text = "".join(ds.user.get(key, "") for key in model.CHANGE_KEYS)
    changes = json.loads(text) if text else []
    return Details(cp, changes, ds.user.get(model.REBOOT))


@dataclass(frozen=True)
class Diff:
    a: str
    b: str
    changes: list[list[str | None]]


def _status_of(ctx: Context, cp: model.Checkpoint) -> dict[str, str]:
    """A checkpoint's installed packages. One that is not running is mounted for the read: the
    caller holds the lock (on zfs-fuse a mount changes the mountpoint property, which the
    saved-mountpoint marker lets ``recover`` put back after a crash)."""
    if cp.current:
        return dpkgstatus.read(ctx.system.root, required=True)
    where = tempfile.mkdtemp(prefix=f"{cp.name}.", dir=secure_dir(mount_base()))
    try:
        with services.mounted(ctx, services.parts_of(ctx, cp), where):
            testhooks.point("diff.mounted")
            return dpkgstatus.read(where, required=True)
    finally:
        with shielded():
            os.rmdir(where)


def diff(ctx: Context, a: str, b: str) -> Diff:
    """Package differences between checkpoints A and B. Needs root and, for a checkpoint that is
    not running, the apt-clone lock (see :func:`_status_of`)."""
    listing = services.list_checkpoints(ctx)
    cpa = services.find_in(listing, a)
    cpb = services.find_in(listing, b)
    changes = dpkgstatus.diff(_status_of(ctx, cpa), _status_of(ctx, cpb))
    return Diff(cpa.name, cpb.name, [c.as_list() for c in changes])

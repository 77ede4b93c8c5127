"""Looking into checkpoints: recorded changes (``show``) and package differences (``diff``)."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass

from . import checkpoints, dpkgstatus, model
from .context import Context
from .errors import NotRoot
from .upgrade import MOUNT_BASE


@dataclass(frozen=True)
class Details:
    checkpoint: model.Checkpoint
    changes: list[list[str | None]]


def show(ctx: Context, name: str) -> Details:
    cp = checkpoints.find(ctx, name)
    ds = ctx.zfs.get(cp.dataset, model.CHANGE_KEYS)
    text = "".join(ds.user.get(key, "") for key in model.CHANGE_KEYS)
    changes = json.loads(text) if text else []
    return Details(cp, changes)


@dataclass(frozen=True)
class Diff:
    a: str
    b: str
    changes: list[list[str | None]]


def _status_of(ctx: Context, cp: model.Checkpoint) -> dict[str, str]:
    if cp.current:
        return dpkgstatus.read(ctx.system.root)
    if os.geteuid() != 0:
        raise NotRoot("reading a checkpoint that is not running needs root (it is mounted for the read)")
    os.makedirs(MOUNT_BASE, mode=0o700, exist_ok=True)
    where = tempfile.mkdtemp(prefix=f"{cp.name}.", dir=MOUNT_BASE)
    try:
        with checkpoints.mounted(ctx, checkpoints.parts_of(ctx, cp), where):
            return dpkgstatus.read(where)
    finally:
        os.rmdir(where)


def diff(ctx: Context, a: str, b: str) -> Diff:
    listing = checkpoints.list_checkpoints(ctx)
    cpa = checkpoints.find_in(listing, a)
    cpb = checkpoints.find_in(listing, b)
    changes = dpkgstatus.diff(_status_of(ctx, cpa), _status_of(ctx, cpb))
    return Diff(cpa.name, cpb.name, [c.as_list() for c in changes])

"""Looking into checkpoints: recorded changes (``show``) and package differences (``diff``)."""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import ExitStack

from .. import dpkgstatus, model, testhooks
from ..context import Context
from ..errors import Refused
from ..paths import mount_base, secure_dir
from ..record import record
from ..signals import shielded
from ..zfs import ZfsUnsupported
from . import services
from .tree import list_checkpoints


@record(frozen=True)
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


@record(frozen=True)
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
    services.refuse_locked(ctx, cp, "read")
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
    listing = list_checkpoints(ctx)
    cpa = services.find_in(listing, a)
    cpb = services.find_in(listing, b)
    changes = dpkgstatus.diff(_status_of(ctx, cpa), _status_of(ctx, cpb))
    return Diff(cpa.name, cpb.name, [c.as_list() for c in changes])


@record(frozen=True)
class FileDiff:
    """``diff --files``: the files that differ between two checkpoints, from ``zfs diff`` of
    each against the newest snapshot both descend from."""

    a: str
    b: str
    since: str
    """The snapshot both descend from."""
    files: list[list[str]]
    """[path, what changed in A since then, what changed in B] (``M`` modified, ``+`` added,
    ``-`` removed, ``R`` renamed, ``""`` nothing), sorted by path."""


def _lineage(ctx: Context, dataset: str) -> list[tuple[str, str | None]]:
    """``dataset``'s history as (filesystem, the snapshot it was cut at: None for the live one):
    itself, then its origin's filesystem up to the origin snapshot, and so on."""
    out: list[tuple[str, str | None]] = [(dataset, None)]
    origin = ctx.zfs.get(dataset, ()).origin
    while origin and len(out) < 64:
        fs = origin.split("@", 1)[0]
        out.append((fs, origin))
        origin = ctx.zfs.get(fs, ()).origin
    return out


def _common_snapshot(ctx: Context, a: str, b: str) -> str:
    """The newest snapshot ``a`` and ``b`` both descend from (Refused when there is none)."""
    line_b = dict(_lineage(ctx, b))
    for fs, cut_a in _lineage(ctx, a):
        if fs in line_b:
            cuts = [c for c in (cut_a, line_b[fs]) if c]
            if not cuts:
                raise Refused(f"'{a}' and '{b}' are the same filesystem")
            if len(cuts) == 1:
                return cuts[0]
            txg = {c: ctx.zfs.get(c, ()).createtxg for c in cuts}
            return min(cuts, key=lambda c: txg[c])
    raise Refused(f"'{a}' and '{b}' share no snapshot: 'apt-clone diff A B' compares their packages")


def file_diff(ctx: Context, a: str, b: str) -> FileDiff:
    """The files that differ between checkpoints A and B (their root datasets), where the ZFS
    has ``zfs diff``. Needs root and the lock: what is not running is mounted for the read."""
    listing = list_checkpoints(ctx)
    cpa = services.find_in(listing, a)
    cpb = services.find_in(listing, b)
    if not ctx.zfs.can_diff:
        raise ZfsUnsupported(
            "diff --files: not supported by this ZFS (zfs-fuse has no 'zfs diff'); "
            "'apt-clone diff A B' compares their packages"
        )
    since = _common_snapshot(ctx, cpa.dataset, cpb.dataset)
    base = since.split("@", 1)[0]
    involved = {cp.dataset: cp for cp in listing.checkpoints if cp.dataset in (cpa.dataset, cpb.dataset, base)}
    if base not in involved and base != ctx.system.dataset:
        raise Refused(f"{since} is not a checkpoint's: 'apt-clone diff A B' compares their packages")
    with ExitStack() as stack:
        where: dict[str, str] = {}
        for dataset, cp in involved.items():
            if cp.current:
                where[dataset] = ctx.system.root.rstrip("/")  # the running root: where it is
                continue
            services.refuse_locked(ctx, cp, "read")
            mount_dir = tempfile.mkdtemp(prefix=f"{cp.name}.", dir=secure_dir(mount_base()))
            stack.callback(_remove_dir, mount_dir)
            stack.enter_context(services.mounted(ctx, services.parts_of(ctx, cp), mount_dir))
            where[dataset] = mount_dir
        testhooks.point("diff.mounted")
        sides = [_changes(ctx.zfs.diff(since, cp.dataset), where) if cp.dataset != since else {} for cp in (cpa, cpb)]
    paths = sorted(set(sides[0]) | set(sides[1]))
    return FileDiff(cpa.name, cpb.name, since, [[p, sides[0].get(p, ""), sides[1].get(p, "")] for p in paths])


def _changes(rows: list[tuple[str, str, str | None]], where: dict[str, str]) -> dict[str, str]:
    """Path (from the checkpoint's root) -> change, from ``zfs diff`` rows whose paths start with
    wherever the datasets are mounted; a rename counts for both its paths."""
    prefixes = sorted({p for p in where.values() if p}, key=len, reverse=True)

    def rel(path: str) -> str:
        for prefix in prefixes:
            if path == prefix or path.startswith(prefix + "/"):
                return path[len(prefix) :] or "/"
        return path

    out: dict[str, str] = {}
    for kind, path, new in rows:
        out[rel(path)] = kind
        if new is not None:
            out[rel(new)] = kind
    return out


def _remove_dir(path: str) -> None:
    with shielded():
        os.rmdir(path)

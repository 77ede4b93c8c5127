"""The guard every mutating command passes and ``apt-clone recover``: what an interrupted
operation of any kind left, finished or undone, and the leftovers swept.

It knows every operation (the apt operation, the checkpoint commands, a trial's verdict), so it
sits above them all: each of them stays ignorant of the others' recovery."""

from __future__ import annotations

import os

from . import model
from .checkpoints import commands
from .chroot import unmount
from .context import Context
from .engine.journal import Journal
from .engine.opstate import AptOp, OpState
from .errors import AptCloneError, OperationFailed
from .paths import mount_base
from .system import mounts_under
from .zfs import ZfsError, ZfsNotFound
from .zfs.cli import SAVED_MOUNTPOINT, CliZfs


def check_unfinished(ctx: Context, *, freeing: bool = False) -> tuple[list[str], OpState | None]:
    """Before a mutating command: an interrupted checkpoint command is recovered at once (that is
    always safe); an unfinished apt operation is refused (resume or recover it); one that changed
    nothing is dropped, saying so. Returns what was done, and (``freeing``: for a destroy, which
    must stay possible on a full pool) the operation that could not be finished now: the destroy
    keeps it and hands it back when it is done."""
    journal, st = commands.load_journal(ctx)
    if st is None or not st.unfinished:
        return [], None
    # the apt operation (python-apt planning, its events): loaded only when something is unfinished
    from .apt import operation

    operation.refuse_while_working(st)
    if isinstance(st, AptOp):
        return operation.settle_unfinished(ctx, journal, st, freeing=freeing)
    try:
        return [f"recovered the interrupted '{st.command}' first: {commands.recover(ctx, st)}"], None
    except (AptCloneError, ZfsError) as exc:
        if not freeing:
            raise OperationFailed(
                f"the interrupted '{st.command}' cannot be finished now ({exc}): "
                "if the pool is full, free space with 'apt-clone -r NAME', then run 'apt-clone recover'"
            ) from exc
        return [f"'{st.command}' cannot be finished now ({exc}): it waits for 'apt-clone recover'"], st


def guard(ctx: Context) -> list[str]:
    """:func:`check_unfinished` for a command that frees nothing: what it did."""
    return check_unfinished(ctx)[0]


def recover(ctx: Context) -> list[str]:
    """After a crash: the completed operation, or exactly the state before; then the leftovers.
    Returns what was done. An operation a destroy kept (see :func:`check_unfinished`) is
    recovered after it."""
    # the apt operation and the trial's verdict: their recovery and sweeps (check_unfinished
    # loads them only when something is unfinished)
    from .apt import operation
    from .trial import verdict

    done: list[str] = []
    for _ in range(3):  # a destroy, the operation it kept (and, at most, one it kept in turn)
        journal, st = commands.load_journal(ctx)
        if st is None or not st.unfinished:
            break
        operation.refuse_while_working(st)
        done.append(_recover_one(ctx, journal, st))
    done += _sweep(ctx)
    done += verdict.recover(ctx)
    return done or ["nothing to recover: no unfinished operation, no leftovers"]


def _recover_one(ctx: Context, journal: Journal, st: OpState) -> str:
    from .apt import operation  # loaded by recover() already

    if isinstance(st, AptOp):
        return operation.recover_after_crash(ctx, journal, st)
    return commands.recover(ctx, st)


def _sweep_mount_dirs(ctx: Context) -> list[str]:
    """Whatever is still mounted under the run directory's mount points (no operation is
    running: the caller holds the lock), and the empty directories."""
    base = mount_base()
    done: list[str] = []
    if not os.path.isdir(base):
        return done
    for m in mounts_under(base):
        unmount(m.mountpoint)
        done.append(f"unmounted {m.mountpoint}")
    for d in sorted(os.listdir(base)):
        path = os.path.join(base, d)
        if os.path.isdir(path) and not os.path.islink(path) and not os.listdir(path):
            os.rmdir(path)
    return done


def _sweep(ctx: Context) -> list[str]:
    """Leftovers of any interrupted command: chroot binds, mounts, changed mountpoints, orphan
    snapshots of ours (only those apt-clone marked as it took them)."""
    from .apt import operation  # loaded by recover() already

    done = operation.sweep_chroots(ctx)
    props = (model.SNAPSHOT_MARK, model.STEP_MARK, SAVED_MOUNTPOINT)
    tree = ctx.zfs.list_tree(ctx.system.container, props)
    if ctx.system.boot_container:
        tree += ctx.zfs.list_tree(ctx.system.boot_container, props)
    for ds in tree:
        if SAVED_MOUNTPOINT in ds.user and isinstance(ctx.zfs, CliZfs):
            if ds.mounted and ds.name != ctx.system.dataset:
                ctx.zfs.unmount(ds.name)
            ctx.zfs.restore_mountpoint(ds.name)
            done.append(f"restored the mountpoint of {ds.name}")
    names = {ds.name for ds in tree}
    origins = {ds.origin for ds in tree if ds.origin}
    for ds in tree:
        if not ds.is_snapshot:
            continue
        mark = ds.user.get(model.SNAPSHOT_MARK)
        orphan_mark = mark and f"{ctx.system.container}/{mark}" not in names and ds.name not in origins
        if orphan_mark or operation.is_step_snapshot(ds):
            try:
                ctx.zfs.destroy(ds.name, recursive=True)
                done.append(f"destroyed leftover snapshot {ds.name}")
            except ZfsNotFound:
                pass
    return done + _sweep_mount_dirs(ctx)

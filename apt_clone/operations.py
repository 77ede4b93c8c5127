"""Checkpoint commands as journalled named steps with undo: create, destroy, rename, activate
(and its one-time trial), rollback.

Each command is a short list of steps. The journal (the same file apt operations use) is written
and fsynced before and after every step. A failure before the command's commit step undoes what
ran, newest first, so that nothing changed; from the commit step on (where undoing would lose
data or is pointless) the command is completed instead. After a crash, ``apt-clone recover``
does the same from the journal, and the next mutating command runs it by itself.
(``title`` is one property write and the menu refresh: nothing to journal.)
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from . import checkpoints, trial
from .context import Context
from .engine import Engine, Step, register
from .errors import AptCloneError, OperationFailed, Refused
from .journal import Journal, OpState, boot_id
from .signals import Interrupted, shielded
from .zfs import Dataset, ZfsError, ZfsNotFound

Tree = list[Dataset] | None
"""The container's tree as a command's plan read it (see :func:`execute`)."""

OPS: dict[str, tuple[tuple[str, str], ...]] = {
    "create": (
        ("snapshot", "snapshot the root with its children (one instant) and its boot-pool twin"),
        ("clone", "clone them into the new checkpoint, with its metadata"),
        ("menu", "refresh the GRUB menu (commit)"),
    ),
    "destroy": (
        ("activate", "with --force OTHER: make OTHER boot next"),
        ("promote", "promote the clones made from the checkpoint's snapshots"),
        ("destroy", "unmount and destroy the checkpoint, its children and boot twin (commit)"),
        ("origin", "destroy the snapshot it was cloned from, if apt-clone took it and no clone needs it"),
        ("menu", "refresh the GRUB menu"),
    ),
    "rename": (
        ("rename", "rename the checkpoint and its boot-pool twin"),
        ("bootfs", "when it boots next: point bootfs and GRUB's default at the new name"),
        ("menu", "refresh the GRUB menu (commit)"),
    ),
    "activate": (
        ("boot", "set the pool's bootfs and GRUB's default entry; record the activation time"),
        ("menu", "refresh the GRUB menu (commit)"),
    ),
    "trial": (
        ("once", "record what boots now (the undo puts it back)"),
        ("arm", "boot it one time (GRUB's next_entry; without GRUB a property) and arm the trial (commit)"),
    ),
    "rollback": (
        ("rollback", "roll the running root, its children and boot twin back to the snapshot (commit)"),
        ("destroy", "destroy the checkpoint and the snapshot"),
        ("menu", "refresh the GRUB menu"),
    ),
}
for _op, _steps in OPS.items():
    register(_op, _steps)
COMMIT = {
    "create": "menu",
    "destroy": "destroy",
    "rename": "menu",
    "activate": "menu",
    "trial": "arm",
    "rollback": "rollback",
}
"""The step from which a command is completed rather than undone."""


def _committed(st: OpState) -> bool:
    return st.steps.get(COMMIT[st.op]) in ("started", "done", "failed")


# --- the steps of each command ----------------------------------------------------------------
def _save_boot(ctx: Context, a: dict[str, Any], bootfs: str | None = None) -> None:
    """Record what boots before a step changes it, once (the journal keeps it for the undo).

    ``bootfs``: the pool's bootfs as the command's plan read it under the lock (None: read it)."""
    if "boot_before" not in a:
        a["boot_before"] = ctx.boot.save(ctx.system.pool, ctx.system.container, bootfs)


def _created(st: OpState) -> checkpoints.Created:
    return checkpoints.Created(**st.args["created"])


def _create_steps(ctx: Context, st: OpState, save: Callable[[], None], tree: Tree) -> list[Step]:
    created = _created(st)

    # Both run only once: a create interrupted before its commit step is undone, never resumed.
    def snapshot() -> None:
        checkpoints.take_snapshots(ctx, created)

    def unsnapshot() -> None:
        for snap in (created.snapshot, created.boot_snapshot):
            checkpoints.destroy_quietly(ctx, snap)

    def clone() -> None:
        checkpoints.make_clones(ctx, created, st.command, tree)

    def unclone() -> None:
        for dataset in (created.dataset, created.boot_dataset):
            checkpoints.unmount_tree(ctx, dataset)
            checkpoints.destroy_quietly(ctx, dataset)

    return [Step("snapshot", snapshot, unsnapshot), Step("clone", clone, unclone), Step("menu", _menu(ctx))]


def _destroy_steps(ctx: Context, st: OpState, save: Callable[[], None], tree: Tree) -> list[Step]:
    a = st.args

    def activate() -> None:
        if a.get("activate_first"):
            _save_boot(ctx, a, a.get("bootfs_seen"))
            save()
            checkpoints.set_default(ctx, f"{ctx.system.container}/{a['activate_first']}")

    def unactivate() -> None:
        if a.get("boot_before"):
            ctx.boot.restore(ctx.system.pool, ctx.system.container, a["boot_before"])

    def promote() -> None:
        done = a.setdefault("promoted", [])
        for name in a["promote"]:
            if any(p[0] == name for p in done):
                continue
            origin = ctx.zfs.get(name).origin
            if not origin:
                continue
            done.append([name, origin.split("@", 1)[0]])
            save()
            ctx.zfs.promote(name)

    def unpromote() -> None:
        for name, former in reversed(a.get("promoted", [])):
            try:
                if (ctx.zfs.get(former).origin or "").startswith(name + "@"):
                    ctx.zfs.promote(former)
            except ZfsNotFound:
                pass

    def destroy() -> None:
        origins = a.setdefault("origins", {})
        for dataset in filter(None, (a["dataset"], a.get("boot_dataset"))):
            try:
                tree = ctx.zfs.list_tree(dataset)
            except ZfsNotFound:
                continue  # destroyed before a crash
            origins.setdefault(dataset, tree[0].origin)  # after the promotions: read it now
            save()
            checkpoints.unmount_tree(ctx, dataset, tree)
            ctx.zfs.destroy(dataset, recursive=True)

    def origin() -> None:
        gone = []
        for dataset, snap in a.get("origins", {}).items():
            container = ctx.system.container if dataset == a["dataset"] else ctx.system.boot_container
            if snap and container:
                found = checkpoints.destroy_origin_if_ours(ctx, snap, container)
                gone += [found] if found else []
        a["snapshot_destroyed"] = a.get("snapshot_destroyed") or (gone[0] if gone else None)

    return [
        Step("activate", activate, unactivate),
        Step("promote", promote, unpromote),
        Step("destroy", destroy),
        Step("origin", origin),
        Step("menu", _menu(ctx)),
    ]


def _rename_steps(ctx: Context, st: OpState, save: Callable[[], None], tree: Tree) -> list[Step]:
    a = st.args
    pairs = [(a["old"], a["new"])] + ([(a["old_twin"], a["new_twin"])] if a.get("old_twin") else [])

    def rename() -> None:
        for old, new in pairs:
            if ctx.zfs.exists(old) and not ctx.zfs.exists(new):
                ctx.zfs.rename(old, new)

    def unrename() -> None:
        for old, new in reversed(pairs):
            if ctx.zfs.exists(new) and not ctx.zfs.exists(old):
                ctx.zfs.rename(new, old)

    def bootfs() -> None:
        if a.get("active"):
            _save_boot(ctx, a)  # read now: the rename moved bootfs with the dataset
            save()
            ctx.boot.activate(a["new"])

    def unbootfs() -> None:
        if a.get("boot_before"):
            ctx.boot.restore(ctx.system.pool, ctx.system.container, a["boot_before"])

    return [Step("rename", rename, unrename), Step("bootfs", bootfs, unbootfs), Step("menu", _menu(ctx))]


def _activate_steps(ctx: Context, st: OpState, save: Callable[[], None], tree: Tree) -> list[Step]:
    a = st.args

    def boot() -> None:
        _save_boot(ctx, a, a.get("bootfs_seen"))
        save()
        a["messages"] = checkpoints.set_default(ctx, a["dataset"])

    def unboot() -> None:
        if a.get("boot_before"):
            ctx.boot.restore(ctx.system.pool, ctx.system.container, a["boot_before"])

    # What boots and the activation time are not in the menu: the plan's tree serves it.
    return [Step("boot", boot, unboot), Step("menu", _menu(ctx, tree))]


def _trial_steps(ctx: Context, st: OpState, save: Callable[[], None], tree: Tree) -> list[Step]:
    a = st.args

    def once() -> None:
        _save_boot(ctx, a, a.get("bootfs_seen"))

    def unonce() -> None:  # also what a journal of the previous version, whose "once" booted once, needs
        if a.get("boot_before"):
            ctx.boot.restore(ctx.system.pool, ctx.system.container, a["boot_before"])

    def arm() -> None:
        a["messages"] = trial.arm(ctx, a["dataset"])

    return [Step("once", once, unonce), Step("arm", arm)]


def _rollback_steps(ctx: Context, st: OpState, save: Callable[[], None], tree: Tree) -> list[Step]:
    created = _created(st)

    def rollback() -> None:
        checkpoints.rollback_in_place(ctx, created)

    def destroy() -> None:
        checkpoints.undo_create(ctx, created, refresh=False)

    return [Step("rollback", rollback), Step("destroy", destroy), Step("menu", _menu(ctx))]


BUILDERS: dict[str, Callable[[Context, OpState, Callable[[], None], Tree], list[Step]]] = {
    "create": _create_steps,
    "destroy": _destroy_steps,
    "rename": _rename_steps,
    "activate": _activate_steps,
    "trial": _trial_steps,
    "rollback": _rollback_steps,
}


def _menu(ctx: Context, tree: Tree = None) -> Callable[[], None]:
    def menu() -> None:
        checkpoints.refresh_menu(ctx, tree)

    return menu


# --- the engine ------------------------------------------------------------------------------
def _new_state(ctx: Context, op: str, command: str, args: dict[str, Any]) -> OpState:
    return OpState(
        op=op,
        packages=[],
        command=command,
        root=ctx.system.root,
        container=ctx.system.container,
        dataset=ctx.system.dataset,
        args=args,
    )


def execute(ctx: Context, st: OpState, tree: Tree = None) -> OpState:
    """Run the command's steps on the engine (skipping those done); undo them on a failure before
    the commit step, leave them for ``recover`` to complete after it.

    ``tree``: the container's tree as the command's plan read it under the lock (not journalled:
    None when recovering); the steps that can use it read nothing again."""
    journal = Journal(ctx.system.container)

    def save() -> None:
        journal.save(st)

    steps = BUILDERS[st.op](ctx, st, save, tree)
    st.state, st.pid, st.error, st.boot_id = "running", os.getpid(), None, boot_id()
    save()
    engine = Engine(st, save)
    try:
        engine.run(steps)
    except (Exception, Interrupted, KeyboardInterrupt) as exc:
        why = str(exc) or type(exc).__name__
        st.error = why
        if _committed(st):
            st.state = "failed"
            save()
            raise OperationFailed(
                f"'{st.command}' failed after its point of no return ({why}): 'apt-clone recover' completes it"
            ) from exc
        with shielded(then_raise=False):
            engine.undo(steps, _undo_failed(st))
        journal.finish(st, "rolled-back")
        if isinstance(exc, (Interrupted, KeyboardInterrupt)):
            raise OperationFailed(f"'{st.command}' interrupted; nothing was changed") from exc
        raise
    journal.finish(st, "done")
    return st


def _undo_failed(st: OpState) -> Callable[[str, Exception], BaseException]:
    def error(step: str, exc: Exception) -> BaseException:
        return OperationFailed(
            f"'{st.command}' failed and undoing step '{step}' failed too ({exc}): run 'apt-clone recover'"
        )

    return error


def recover(ctx: Context, st: OpState) -> str:
    """After a crash: complete the command when it passed its commit step, else undo what ran."""
    journal = Journal(ctx.system.container)
    if _committed(st):
        for name, state in list(st.steps.items()):
            if state in ("started", "failed"):
                st.steps[name] = "pending"
        execute(ctx, st)
        journal.finish(st, "recovered")
        return f"completed '{st.command}' (it had passed its point of no return)"
    steps = BUILDERS[st.op](ctx, st, lambda: journal.save(st), None)
    Engine(st, lambda: journal.save(st)).undo(steps, _undo_failed(st))
    checkpoints.refresh_menu(ctx)
    journal.finish(st, "recovered")
    return f"undid '{st.command}': the checkpoints are as they were before it"


# --- the commands ----------------------------------------------------------------------------
def create(
    ctx: Context, *, title: str | None = None, kind: str = "manual", name: str | None = None
) -> checkpoints.Created:
    tree = checkpoints.read_tree(ctx)
    created = checkpoints.prepare_create(ctx, title=title, kind=kind, name=name, tree=tree)
    execute(ctx, _new_state(ctx, "create", "apt-clone create", {"created": asdict(created)}), tree)
    return created


def destroy(ctx: Context, plan: checkpoints.DestroyPlan, deferred: OpState | None = None) -> checkpoints.Destroyed:
    """Destroy a checkpoint. ``deferred``: an operation that could not be finished before it (a
    full pool): it is kept in this one's journal, handed back after, and retried once."""
    cp = plan.checkpoint
    if deferred is not None and cp.dataset in json.dumps(asdict(deferred)):
        raise Refused(f"'{cp.name}' is part of the unfinished '{deferred.command}': run 'apt-clone recover' first")
    args: dict[str, Any] = {
        "name": cp.name,
        "dataset": cp.dataset,
        "boot_dataset": plan.boot_dataset,
        "activate_first": plan.activate_first,
        "promote": list(plan.promote),
        "bootfs_seen": plan.bootfs,
    }
    if deferred is not None:
        args["deferred"] = asdict(deferred)
    st = execute(ctx, _new_state(ctx, "destroy", f"apt-clone destroy {cp.name}", args))
    notes = [] if deferred is None else _hand_back(ctx, deferred)
    return checkpoints.Destroyed(
        cp.dataset, list(plan.promote), st.args.get("snapshot_destroyed"), plan.activate_first, notes
    )


def _hand_back(ctx: Context, deferred: OpState) -> list[str]:
    """Make the operation a destroy kept the journal again; a checkpoint command is retried now."""
    Journal(ctx.system.container).save(deferred)
    if deferred.op in OPS:
        try:
            return [f"then finished the interrupted '{deferred.command}': {recover(ctx, deferred)}"]
        except (AptCloneError, ZfsError) as exc:
            return [f"'{deferred.command}' still cannot be finished ({exc}): run 'apt-clone recover'"]
    return [f"'{deferred.command}' did not finish: run 'apt-clone recover' (or 'apt-clone resume')"]


def rename(ctx: Context, old: str, new: str) -> checkpoints.Renamed:
    plan = checkpoints.plan_rename(ctx, old, new)
    command = f"apt-clone rename {plan.old.rsplit('/', 1)[1]} {plan.new.rsplit('/', 1)[1]}"
    execute(ctx, _new_state(ctx, "rename", command, asdict(plan)))
    return checkpoints.Renamed(plan.old, plan.new, plan.active)


def activate(ctx: Context, name: str) -> checkpoints.Activated:
    cp, listing, tree = checkpoints.lookup(ctx, name)
    args = {"name": cp.name, "dataset": cp.dataset, "bootfs_seen": listing.next_boot}
    st = execute(ctx, _new_state(ctx, "activate", f"apt-clone activate {cp.name}", args), tree)
    return checkpoints.Activated(cp.dataset, list(st.args.get("messages", [])))


def arm_trial(ctx: Context, name: str) -> checkpoints.Activated:
    """``activate --once``: boot NAME one time; a healthy boot makes it the default (trial.py)."""
    cp, listing, _ = checkpoints.lookup(ctx, name)
    args = {"name": cp.name, "dataset": cp.dataset, "bootfs_seen": listing.next_boot}
    st = execute(ctx, _new_state(ctx, "trial", f"apt-clone activate --once {cp.name}", args))
    return checkpoints.Activated(cp.dataset, list(st.args["messages"]))


def rollback_to(ctx: Context, name: str) -> checkpoints.RolledBack:
    created = checkpoints.plan_rollback(ctx, name)
    args = {"created": asdict(created)}
    execute(ctx, _new_state(ctx, "rollback", f"apt-clone rollback {created.checkpoint}", args))
    return checkpoints.RolledBack(ctx.system.dataset, created.snapshot, created.dataset)

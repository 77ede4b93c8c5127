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
from collections.abc import Callable, Sequence

from .. import model
from ..context import Context
from ..engine.journal import Journal, boot_id
from ..engine.opstate import (
    ActivateOp,
    CreateOp,
    DestroyOp,
    MountOp,
    OpState,
    RenameOp,
    RollbackOp,
    ShareGrubOp,
    TrialOp,
    from_json,
)
from ..engine.steps import Engine, OpSpec, Step, register
from ..errors import AptCloneError, OperationFailed, Refused, Unfinished
from ..record import asdict
from ..signals import Interrupted, shielded
from ..zfs import Dataset, ZfsError, ZfsNotFound
from . import grubshare, inside, services

TYPE_CHECKING = False  # typing itself is not imported at run time: the hook's start-up (mypy knows the name)

Tree = list[Dataset] | None
"""What a command's plan read under the lock, for its steps (see :func:`execute`): the
container's tree (prune's destroys), or the running root's family (create)."""

SPECS = {
    spec.ops: register(spec)
    for spec in (
        OpSpec("create", (
            ("snapshot", "snapshot the root with its children (one instant) and its boot-pool twin"),
            ("clone", "clone them into the new checkpoint, with its metadata"),
            ("menu", "refresh the GRUB menu (commit)"),
        ), commit="menu"),
        OpSpec("destroy", (
            ("activate", "with --force OTHER: make OTHER boot next"),
            ("promote", "promote the clones made from the checkpoint's snapshots"),
            ("destroy", "unmount and destroy the checkpoint, its children and boot twin (commit)"),
            ("origin", "destroy the snapshot it was cloned from, if apt-clone took it and no clone needs it"),
            ("menu", "refresh the GRUB menu"),
        ), commit="destroy"),
        OpSpec("rename", (
            ("rename", "rename the checkpoint and its boot-pool twin"),
            ("bootfs", "when it boots next: point bootfs and GRUB's default at the new name"),
            ("menu", "refresh the GRUB menu (commit)"),
        ), commit="menu"),
        OpSpec("activate", (
            ("boot", "install a boot loader upgraded in it to the ESP; set the pool's bootfs and GRUB's "
                     "default entry; record the activation time"),
            ("menu", "refresh the GRUB menu (commit)"),
        ), commit="menu"),
        OpSpec("trial", (
            ("once", "record what boots now (the undo puts it back)"),
            ("arm", "boot it one time (GRUB's next_entry; without GRUB a property) and arm the trial (commit)"),
        ), commit="arm"),
        OpSpec("rollback", (
            ("rollback", "roll the running root, its children and boot twin back to the snapshot (commit)"),
            ("destroy", "destroy the checkpoint and the snapshot"),
            ("menu", "refresh the GRUB menu"),
        ), commit="rollback"),
    )
}  # fmt: skip
"""The checkpoint commands, by the ``op`` their journal records."""
SPECS["share-grub"] = grubshare.SPEC
SPECS.update(inside.SPECS)


# --- the steps of each command ----------------------------------------------------------------
Save = Callable[[], None]


def _save_boot(
    ctx: Context, st: DestroyOp | RenameOp | ActivateOp, bootfs: str | None = None, target: str | None = None
) -> services.Mounts | None:
    """Record what boots before a step changes it, once (the journal keeps it for the undo).

    ``bootfs``: the pool's bootfs as the command's plan read it under the lock (None: read it);
    ``target``: the checkpoint the step activates or arms (what mounts by itself is saved too).
    Returns what it read of the mounts, for the activation (None: nothing read now)."""
    if st.boot_before is not None:
        return None
    st.boot_before, mounts = services.save_boot(ctx, bootfs, target)
    return mounts


def _restore_boot(ctx: Context, st: DestroyOp | RenameOp | ActivateOp) -> None:
    if st.boot_before:
        services.restore_boot(ctx, st.boot_before)


def _create_steps(ctx: Context, st: CreateOp, save: Save, tree: Tree) -> list[Step]:
    created = st.created

    # Both run only once: a create interrupted before its commit step is undone, never resumed.
    def snapshot() -> None:
        services.take_snapshots(ctx, created)

    def unsnapshot() -> None:
        services.remove_snapshots(ctx, created)

    made: list[Dataset] = []

    def clone() -> None:
        made[:] = services.make_clones(ctx, created, st.command, tree, entry=True)  # the menu's entry checked meanwhile

    def unclone() -> None:
        services.remove_clones(ctx, created)

    def menu() -> None:  # from what the clone step made; a recovery (nothing made here) reads it
        services.edit_menu(ctx, {created.checkpoint: created.checkpoint}, made or None)

    return [Step("snapshot", snapshot, unsnapshot), Step("clone", clone, unclone), Step("menu", menu)]


def _destroy_steps(ctx: Context, st: DestroyOp, save: Save, tree: Tree) -> list[Step]:
    def activate() -> None:
        if st.activate_first:
            first = f"{ctx.system.container}/{st.activate_first}"
            mounts = _save_boot(ctx, st, st.bootfs_seen, first)
            save()
            services.set_default(ctx, first, (st.boot_before or {}).get("bootfs"), mounts)

    def promote() -> None:
        for name in st.promote:
            if any(p[0] == name for p in st.promoted):
                continue
            origin = ctx.zfs.get(name).origin
            if not origin:
                continue
            st.promoted.append([name, origin.split("@", 1)[0]])
            save()
            ctx.zfs.promote(name)

    def unpromote() -> None:
        for name, former in reversed(st.promoted):
            try:
                if (ctx.zfs.get(former).origin or "").startswith(name + "@"):
                    ctx.zfs.promote(former)
            except ZfsNotFound:
                pass

    def destroy() -> None:
        for dataset in filter(None, (st.target, st.target_boot)):
            try:
                tree = ctx.zfs.list_tree(dataset)
            except ZfsNotFound:
                continue  # destroyed before a crash
            st.origins.setdefault(dataset, tree[0].origin)  # after the promotions: read it now
            save()
            services.unmount_tree(ctx, dataset, tree)
            ctx.zfs.destroy(dataset, recursive=True)

    def origin() -> None:
        gone = []
        for dataset, snap in st.origins.items():
            container = ctx.system.container if dataset == st.target else ctx.system.boot_container
            # The plan's tree, less what was destroyed, is the tree now when nothing was promoted.
            now = None if tree is None or st.promoted or dataset != st.target else services.without(tree, dataset)
            if snap and container:
                found = services.destroy_origin_if_ours(ctx, snap, now)
                gone += [found] if found else []
        st.snapshot_destroyed = st.snapshot_destroyed or (gone[0] if gone else None)

    return [
        Step("activate", activate, lambda: _restore_boot(ctx, st)),
        Step("promote", promote, unpromote),
        Step("destroy", destroy),
        Step("origin", origin),
        Step("menu", _menu(ctx, {st.name: None}) if st.menu else lambda: None),
    ]


def _rename_steps(ctx: Context, st: RenameOp, save: Save, tree: Tree) -> list[Step]:
    pairs = [(st.old, st.new)] + ([(st.old_twin, st.new_twin)] if st.old_twin and st.new_twin else [])

    def rename() -> None:
        for old, new in pairs:
            if ctx.zfs.exists(old) and not ctx.zfs.exists(new):
                ctx.zfs.rename(old, new)

    def unrename() -> None:
        for old, new in reversed(pairs):
            if ctx.zfs.exists(new) and not ctx.zfs.exists(old):
                ctx.zfs.rename(new, old)

    def bootfs() -> None:
        if st.active:
            _save_boot(ctx, st)  # read now: the rename moved bootfs with the dataset
            save()
            ctx.boot.activate(st.new)

    return [
        Step("rename", rename, unrename),
        Step("bootfs", bootfs, lambda: _restore_boot(ctx, st)),
        Step("menu", _menu(ctx, {st.old.rsplit("/", 1)[1]: st.new.rsplit("/", 1)[1]})),
    ]


def _activate_steps(ctx: Context, st: ActivateOp, save: Save, tree: Tree) -> list[Step]:
    def boot() -> None:
        mounts = _save_boot(ctx, st, st.bootfs_seen, st.target)
        save()
        st.messages = services.set_default(ctx, st.target, (st.boot_before or {}).get("bootfs"), mounts)

    # What boots and the activation time are not in the menu: no entry changes.
    return [Step("boot", boot, lambda: _restore_boot(ctx, st)), Step("menu", _menu(ctx, {}))]


def _trial_steps(ctx: Context, st: TrialOp, save: Save, tree: Tree) -> list[Step]:
    def once() -> None:
        _save_boot(ctx, st, st.bootfs_seen, st.target)

    def arm() -> None:
        st.messages = services.arm_trial(ctx, st.target, (st.boot_before or {}).get("bootfs"))

    # The undo of "once" puts back what boots: also what a journal of schema 1, whose "once"
    # booted once, needs.
    return [Step("once", once, lambda: _restore_boot(ctx, st)), Step("arm", arm)]


def _rollback_steps(ctx: Context, st: RollbackOp, save: Save, tree: Tree) -> list[Step]:
    def rollback() -> None:
        services.rollback_in_place(ctx, st.created)

    def destroy() -> None:
        services.drop_rolled_back(ctx, st.created)

    return [
        Step("rollback", rollback),
        Step("destroy", destroy),
        Step("menu", _menu(ctx, {st.created.checkpoint: None}, tree)),
    ]


if TYPE_CHECKING:
    from typing import TypeVar

    S = TypeVar("S", bound=OpState)


def _builder(kind: type[S], build: Callable[[Context, S, Save, Tree], list[Step]]) -> Callable[..., list[Step]]:
    def steps(ctx: Context, st: OpState, save: Save, tree: Tree) -> list[Step]:
        if not isinstance(st, kind):
            raise OperationFailed(f"the journal of '{st.command}' is not a {st.op} record")
        return build(ctx, st, save, tree)

    return steps


BUILDERS: dict[str, Callable[[Context, OpState, Save, Tree], list[Step]]] = {
    "share-grub": _builder(ShareGrubOp, grubshare.steps),
    "create": _builder(CreateOp, _create_steps),
    "destroy": _builder(DestroyOp, _destroy_steps),
    "rename": _builder(RenameOp, _rename_steps),
    "activate": _builder(ActivateOp, _activate_steps),
    "trial": _builder(TrialOp, _trial_steps),
    "rollback": _builder(RollbackOp, _rollback_steps),
    **{op: _builder(MountOp, inside.steps) for op in inside.SPECS},
}


def _menu(ctx: Context, changes: dict[str, str | None], known: Tree = None) -> Callable[[], None]:
    """The menu step: the entries of ``changes`` edited (see :func:`services.edit_menu`;
    ``known``: the records it reads, as the plan read them)."""

    def menu() -> None:
        services.edit_menu(ctx, changes, known)

    return menu


# --- the engine ------------------------------------------------------------------------------
def execute(ctx: Context, st: OpState, tree: Tree = None) -> None:
    """Run the command's steps on the engine (skipping those done); undo them on a failure before
    the commit step, leave them for ``recover`` to complete after it.

    ``tree``: the container's tree as the command's plan read it under the lock (not journalled:
    None when recovering); the steps that can use it read nothing again."""
    journal = Journal(ctx.system.container)
    spec = SPECS[st.op]

    def save() -> None:
        journal.save(st)

    steps = BUILDERS[st.op](ctx, st, save, tree)
    st.state, st.pid, st.error, st.boot_id = "running", os.getpid(), None, boot_id()
    engine = Engine(spec, st, save, outcome_follows=True)  # first saved as its first step starts
    try:
        engine.run(steps)
    except (Exception, Interrupted, KeyboardInterrupt) as exc:
        why = str(exc) or type(exc).__name__
        st.error = why
        if spec.committed(st):
            st.state = "failed"
            save()
            raise Unfinished(
                f"'{st.command}' failed after its point of no return ({why}): 'apt-clone recover' completes it"
            ) from exc
        with shielded(then_raise=False):
            engine.undo(steps, _undo_failed(st))
        journal.finish(st, "rolled-back")
        if isinstance(exc, (Interrupted, KeyboardInterrupt)):
            raise OperationFailed(f"'{st.command}' interrupted; nothing was changed") from exc
        raise
    journal.finish(st, "done")


def _undo_failed(st: OpState) -> Callable[[str, Exception], BaseException]:
    def error(step: str, exc: Exception) -> BaseException:
        return OperationFailed(
            f"'{st.command}' failed and undoing step '{step}' failed too ({exc}): run 'apt-clone recover'"
        )

    return error


def recover(ctx: Context, st: OpState) -> str:
    """After a crash: complete the command when it passed its commit step, else undo what ran."""
    journal = Journal(ctx.system.container)

    def save() -> None:
        journal.save(st)

    st.pid, st.boot_id = os.getpid(), boot_id()
    try:
        engine = Engine(SPECS[st.op], st, save, outcome_follows=True)
        completed = engine.recover(BUILDERS[st.op](ctx, st, save, None), _undo_failed(st))
        if not completed:
            services.refresh_menu(ctx)
    except BaseException:
        st.state = "failed"
        save()
        raise
    journal.finish(st, "recovered")
    if completed:
        return f"completed '{st.command}' (it had passed its point of no return)"
    return f"undid '{st.command}': the checkpoints are as they were before it"


# --- the commands ----------------------------------------------------------------------------
def create(
    ctx: Context,
    *,
    title: str | None = None,
    kind: str = "manual",
    name: str | None = None,
    command: str = "apt-clone create",
    props: dict[str, str] | None = None,
) -> model.Created:
    """Make a checkpoint of the running root. ``command``: what it is recorded as made by;
    ``props``: more of its properties."""
    family = services.read_family(ctx)
    created = services.prepare_create(ctx, title=title, kind=kind, name=name, family=family, props=props)
    execute(ctx, CreateOp(**services.envelope(ctx, "create", command), created=created), family.records)
    return created


def destroy(
    ctx: Context,
    plan: services.DestroyPlan,
    deferred: OpState | None = None,
    *,
    menu: bool = True,
    tree: Tree = None,
) -> services.Destroyed:
    """Destroy a checkpoint. ``deferred``: an operation that could not be finished before it (a
    full pool): it is kept in this one's journal, handed back after, and retried once; ``menu``:
    refresh the GRUB menu after (prune does once, at its end); ``tree``: the container's tree
    the plan was made from (None: the steps read what they need)."""
    cp = plan.checkpoint
    if deferred is not None and cp.dataset in json.dumps(deferred.to_json()):
        raise Refused(f"'{cp.name}' is part of the unfinished '{deferred.command}': run 'apt-clone recover' first")
    st = DestroyOp(
        **services.envelope(ctx, "destroy", f"apt-clone destroy {cp.name}"),
        name=cp.name,
        target=cp.dataset,
        target_boot=plan.boot_dataset,
        activate_first=plan.activate_first,
        promote=list(plan.promote),
        bootfs_seen=plan.bootfs,
        deferred=None if deferred is None else deferred.to_json(),
        menu=menu,
    )
    execute(ctx, st, tree)
    notes = [] if deferred is None else _hand_back(ctx, deferred)
    return services.Destroyed(cp.dataset, list(plan.promote), st.snapshot_destroyed, plan.activate_first, notes)


def deferred_of(st: OpState) -> OpState | None:
    """The operation a finished destroy kept (see :func:`destroy`), to hand back."""
    if isinstance(st, DestroyOp) and not st.unfinished and st.deferred:
        return from_json(st.deferred)
    return None


def load_journal(ctx: Context) -> tuple[Journal, OpState | None]:
    """The journal of the running system. A journal written on another checkpoint (a copy that
    came along when that checkpoint was cloned or rolled back) is history, not pending work.
    A finished destroy that ran while another operation was pending hands that one back."""
    journal = Journal(ctx.system.container)
    st = journal.load()
    deferred = None if st is None else deferred_of(st)
    if deferred is not None:
        st = deferred
        journal.save(st)
    if st is not None and st.dataset != ctx.system.dataset:
        return journal, None
    return journal, st


def _hand_back(ctx: Context, deferred: OpState) -> list[str]:
    """Make the operation a destroy kept the journal again; a checkpoint command is retried now."""
    Journal(ctx.system.container).save(deferred)
    if deferred.op in SPECS:
        try:
            return [f"then finished the interrupted '{deferred.command}': {recover(ctx, deferred)}"]
        except (AptCloneError, ZfsError) as exc:
            return [f"'{deferred.command}' still cannot be finished ({exc}): run 'apt-clone recover'"]
    return [f"'{deferred.command}' did not finish: run 'apt-clone recover' (or 'apt-clone resume')"]


def rename(ctx: Context, old: str, new: str) -> services.Renamed:
    plan = services.plan_rename(ctx, old, new)
    command = f"apt-clone rename {plan.old.rsplit('/', 1)[1]} {plan.new.rsplit('/', 1)[1]}"
    execute(ctx, RenameOp(**services.envelope(ctx, "rename", command), **asdict(plan)))
    return services.Renamed(plan.old, plan.new, plan.active)


def activate(ctx: Context, name: str) -> services.Activated:
    cp, near = services.lookup(ctx, name)
    st = ActivateOp(
        **services.envelope(ctx, "activate", f"apt-clone activate {cp.name}"),
        name=cp.name,
        target=cp.dataset,
        bootfs_seen=near.next_boot,
    )
    execute(ctx, st)
    return services.Activated(cp.dataset, [*_bad_note(cp), *st.messages])


def _bad_note(cp: model.Checkpoint) -> list[str]:
    """What activating a checkpoint marked bad says (the CLI asked first, or -y answered)."""
    if not cp.bad:
        return []
    when, why = model.bad_mark(cp.bad)
    return [f"'{cp.name}' was marked bad ({why}, {when}): activated as asked."]


def arm_trial(ctx: Context, name: str) -> services.Activated:
    """``activate --once``: boot NAME one time; a healthy boot makes it the default (trial.py)."""
    cp, near = services.lookup(ctx, name)
    st = TrialOp(
        **services.envelope(ctx, "trial", f"apt-clone activate --once {cp.name}"),
        name=cp.name,
        target=cp.dataset,
        bootfs_seen=near.next_boot,
    )
    execute(ctx, st)
    return services.Activated(cp.dataset, [*_bad_note(cp), *st.messages])


def mount(ctx: Context, name: str, directory: str | None = None, *, rw: bool = False) -> MountOp:
    """Mount checkpoint ``name`` (read-only unless ``rw``) under ``directory`` (None: under the
    run directory's ``mounted/``), its children and boot twin under it; it stays mounted."""
    st = inside.plan_mount(ctx, name, directory, rw)
    execute(ctx, st)
    return st


def umount(ctx: Context, name: str) -> MountOp:
    """Take away what :func:`mount` mounted."""
    st = inside.plan_umount(ctx, name)
    execute(ctx, st)
    return st


def chroot(ctx: Context, name: str, argv: Sequence[str], *, rw: bool = False) -> MountOp:
    """Run ``argv`` (none: a shell) chrooted into checkpoint ``name``, mounted for it and taken
    down after; its exit status is the result's ``status``."""
    st = inside.plan_chroot(ctx, name, argv, rw)
    execute(ctx, st)
    return st


def share_grub(ctx: Context) -> str:
    """Move GRUB's directory into a dataset every checkpoint shares (see :mod:`apt_clone.grubshare`)."""
    st = grubshare.plan(ctx)
    execute(ctx, st)
    return f"GRUB's directory is now {st.target} at {st.mountpoint}, shared by every checkpoint"


def rollback_to(ctx: Context, name: str) -> services.RolledBack:
    created, read = services.plan_rollback(ctx, name)
    execute(
        ctx,
        RollbackOp(**services.envelope(ctx, "rollback", f"apt-clone rollback {created.checkpoint}"), created=created),
        read,
    )
    return services.RolledBack(ctx.system.dataset, created.snapshot, created.dataset)

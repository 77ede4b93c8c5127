"""An apt operation as named steps with undo, journalled, pausable, resumable and recoverable.

Steps (``apt-clone --steps``): plan, fetch, snapshot, clone, mount, apt, metadata, unmount, boot.
The journal is written and fsynced before and after every step. In the clone mode the clone is
snapshotted (``@acstep-<step>``) after the steps a resume can go back to (:data:`BOUNDARY`), so
that resuming from an earlier step starts from that step's state; those snapshots go when the
operation ends.
"""

from __future__ import annotations

import functools
import os
import signal
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from .. import config, dpkgstatus, model
from ..boot import grub
from ..checkpoints import commands, efi, services
from ..checkpoints.tree import record_of
from ..chroot import restore_after_crash
from ..context import Context
from ..engine import opstate
from ..engine.journal import Journal, boot_id
from ..engine.opstate import AptOp, OpState
from ..engine.steps import Engine, OpSpec, Step, register
from ..errors import LockHeld, NoSpace, OperationFailed, Refused, UsageError
from ..lock import exclusive
from ..paths import mount_base, secure_dir
from ..record import asdict, replace
from ..signals import Interrupted, shielded
from ..system import dataset_mounted_at
from ..zfs import Dataset, ZfsError, ZfsNotFound
from . import bootfiles, bootguard
from . import events as ev
from . import reboot as reboots
from .execute import AptTarget, apt_lock_holder, check_apt_locks, command_of, kill_processes_in
from .plan import (
    Change,
    Plan,
    Planner,
    check_boot_space,
    check_space,
    debs_asking_for_reboot,
    discard_warm,
    make_plan,
    start_plan,
    validate_request,
)
from .request import AptFailed, AptRequest, Interaction, Outcome

STEPS: tuple[tuple[str, str], ...] = (
    ("plan", "update the APT sources, plan with python-apt, check free space on every pool"),
    ("fetch", "download the packages into the archive cache; find those that ask for a reboot"),
    ("snapshot", "snapshot the root with its children (one instant) and its boot-pool twin"),
    ("clone", "clone the snapshots into the new checkpoint, with its metadata"),
    ("mount", "mount the clone, its children and boot twin (upgrade in the clone only)"),
    ("apt", "run apt-get: in place, or chrooted into the clone"),
    ("metadata", "record the command, the package changes and the kernels"),
    ("unmount", "unmount the clone (upgrade in the clone only)"),
    ("boot", "refresh the GRUB menu; activate or arm a trial boot when asked"),
)
APT_SPEC = register(OpSpec(", ".join(opstate.APT_OPS), STEPS, commit="apt", commit_when="done"), *opstate.APT_OPS)
"""Once apt went through, a crash completes the checkpoint; before, it is undone."""
STEP_NAMES = APT_SPEC.names
CLONE_ONLY = ("mount", "unmount")
BOUNDARY = ("clone", "mount")
"""Steps after which the clone is snapshotted (upgrade in the clone): the states a resume from a
step up to ``apt`` goes back to (the last boundary before it). None after ``apt`` or
``metadata``: no resume goes back to those (each one cost a snapshot and a destroy per pool)."""
STEP_SNAPSHOT = "acstep-"


class NothingToDo(Exception):
    """The plan is empty."""


class Cancelled(Exception):
    """The user said no."""


# --- state <-> objects ----------------------------------------------------------------------
def plan_of(st: AptOp) -> Plan:
    data = dict(st.plan or {})
    changes = tuple(Change(**c) for c in data.pop("changes", []))
    data["packages"] = tuple(data.get("packages", ()))
    data["reboot_packages"] = tuple(data.get("reboot_packages", ()))
    return Plan(changes=changes, **data)


def _need_created(st: AptOp) -> model.Created:
    created = st.created
    if created is None:
        raise OperationFailed("the journal has no checkpoint for this step")
    return created


def _applies(st: AptOp, step: str) -> bool:
    return bool(st.in_clone) or step not in CLONE_ONLY


# --- steps ----------------------------------------------------------------------------------
def _step_plan(ctx: Context, st: AptOp, ui: Interaction) -> None:
    host = AptTarget(ctx.runner, ctx.system.root)
    if st.update:
        ui.emit(ev.Updating())
        with host.session():
            if host.update() != 0:
                raise OperationFailed("apt-get update failed: see the messages above")
    patterns = config.load().reboot_packages
    ctx.runner.read_ahead(ctx.zfs.reads_of(None, _space_names(ctx)))  # the space checks' read, beside the plan
    plan, planner = start_plan(ctx.runner, ctx.system.root, st.op, tuple(st.packages), patterns)
    _PLANNERS[id(st)] = (st, planner)  # it waits to download and scan (the fetch step)
    st.plan = asdict(plan)
    if plan.empty:
        raise NothingToDo()
    ui.emit(ev.Planned(plan))
    try:
        results = _space_checks(ctx, plan)
    except NoSpace as exc:
        raise _with_prune_offer(ctx, exc) from None
    ui.emit(ev.SpaceChecked(results))
    if not ui.confirm("This operation will upgrade your system using ZFS capabilities. Proceed ? (y/n)"):
        raise Cancelled()


def _space_names(ctx: Context) -> list[str]:
    """What the space checks read: the root's container, and the boot pool's when there is one."""
    return [ctx.system.container, *([ctx.system.boot_container] if ctx.system.boot_container else [])]


def _space_checks(ctx: Context, plan: Plan) -> tuple[str, ...]:
    """The pools' room for ``plan`` (the root's, and the boot pool's when there is one), in one
    read: one verdict each; raises NoSpace."""
    names = _space_names(ctx)
    got = ctx.zfs.get_many(names)
    root, *boot = [got[name] if name in got else ctx.zfs.get(name) for name in names]  # get: its not-found
    results = [check_space(plan, root.available, ctx.system.pool)]
    results += [check_boot_space(plan, ds.available, ds.pool) for ds in boot]
    return tuple(results)


def _with_prune_offer(ctx: Context, exc: NoSpace) -> NoSpace:
    """The refusal, naming what ``apt-clone prune`` would free (read only: the plan)."""
    from ..checkpoints import prune  # retention: only a pool too full loads it

    the_plan = prune.plan(ctx, prune.policy_of(config.load()))
    if not the_plan.remove:
        return NoSpace(f"{exc.message}; 'apt-clone prune' would remove nothing (see 'apt-clone prune --dry-run')")
    frees = ", ".join(f"{n / 1048576:.1f}MB on {pool}" for pool, n in the_plan.frees().items())
    return NoSpace(
        f"{exc.message}; 'apt-clone prune' would remove {len(the_plan.remove)} checkpoint(s) and free at least "
        f"{frees}: pass --prune to prune first",
        prunable=len(the_plan.remove),
    )


_PLANNERS: dict[int, tuple[AptOp, Planner]] = {}
"""The planning child of an operation this process runs (by its record, the very object), kept
from the plan step to the fetch step, ended by :func:`run` at the latest; a resumed operation
has none."""
NOT_FETCHED = "nothing was changed (apt-clone resume retries)"


def _planner_of(st: AptOp) -> Planner | None:
    mine, planner = _PLANNERS.get(id(st), (None, None))
    return planner if mine is st else None


def _step_fetch(ctx: Context, st: AptOp, ui: Interaction) -> None:
    plan = plan_of(st)
    settings = config.load()
    found = reboots.reasons(plan.changes, settings.reboot_packages)
    if st.op != "remove":
        if st.created is None and (st.request_in_clone or not ui.person_answers()):
            services.read_family_ahead(ctx)  # the snapshot step's first read, beside the download
        ui.emit(ev.Downloading())
        asking = _fetch(ctx, st, plan, _planner_of(st))
        if settings.reboot_scripts:
            found += [reboots.script_reason(os.path.basename(d).split("_", 1)[0]) for d in asking]
    st.reboot_packages = sorted({name for name, _ in found})
    st.reboot_why = reboots.describe(found)
    st.reboot = bool(found)
    st.in_clone = st.request_in_clone or st.reboot
    if st.reboot:
        ui.emit(ev.RebootNeeded(tuple(st.reboot_packages)))
        if not st.request_in_clone and not ui.confirm("This upgrade will require REBOOT. Proceed? (y/n)"):
            raise Cancelled()


def _fetch(ctx: Context, st: AptOp, plan: Plan, planner: Planner | None) -> list[str]:
    """Download the plan's archives into the root: by the planning child, with the cache it
    planned with, which then scans them; without it (a resumed operation), by ``apt-get
    --download-only`` and a scanning child. The .debs asking for a reboot."""
    host = AptTarget(ctx.runner, ctx.system.root)
    with host.session():  # the child chrooted into the root before: these mounts reach it too
        if planner is not None:
            try:
                return planner.fetch()
            except OperationFailed as exc:
                raise OperationFailed(f"{exc}: {NOT_FETCHED}") from None
            finally:
                planner.close()  # before the session ends: it kills what is left in the root
        if host.apt_get(st.op, tuple(st.packages), download_only=True) != 0:
            raise OperationFailed(f"downloading the packages failed: {NOT_FETCHED}")
    debs = [_downloaded(host, c) for c in plan.changes if c.deb_filename()]
    return debs_asking_for_reboot(ctx.runner, debs)


def _downloaded(host: AptTarget, change: Change) -> str:
    """Where apt keeps a change's .deb after --download-only: its archive cache, or, for a
    ``file:`` source (used in place, never copied), the file itself inside the root."""
    if change.uri and change.uri.startswith("file:"):
        return host.path(urllib.parse.unquote(urllib.parse.urlsplit(change.uri).path))
    return host.path(f"var/cache/apt/archives/{change.deb_filename()}")


_FAMILIES: dict[int, tuple[AptOp, list[Dataset]]] = {}
"""The running root's family as the snapshot step read it under the lock, for the clone step
of the same run, then (in place) with the checkpoint as the clone step made it, for the
metadata and boot steps: by the operation's record, the very object (a resumed run, whose
record is read from the journal again, reads what it needs again)."""


def _family_of(st: AptOp, *, take: bool = False) -> list[Dataset] | None:
    """What :data:`_FAMILIES` holds for this very record (``take``: and no more after)."""
    mine, family = (_FAMILIES.pop if take else _FAMILIES.get)(id(st), (None, None))
    return family if mine is st else None


RECORD_KEYS = frozenset({model.SUMMARY, model.REBOOT, *model.CHANGE_KEYS})
"""The properties that record a checkpoint's package changes."""


def _planned_props(st: AptOp) -> dict[str, str]:
    """The changes the plan makes, recorded with the clone (the metadata step writes only what
    apt did otherwise)."""
    changes = [dpkgstatus.PackageChange(c.name, c.old, c.new) for c in plan_of(st).changes if c.old != c.new]
    return model.change_props(changes, bool(st.reboot), st.reboot_why or "")


def _step_snapshot(ctx: Context, st: AptOp, ui: Interaction) -> None:
    if st.created is None:
        family = services.read_family(ctx)
        kind = "upgrade" if st.in_clone else "rollback"
        created = services.prepare_create(ctx, kind=kind, family=family, props=_planned_props(st))
        st.created = created
        ui.emit(ev.CreatingCheckpoint(model.KIND_TITLES[created.kind]))
        Journal(ctx.system.container).save(st)  # the names are known before anything exists
        services.take_snapshots(ctx, created)  # the names were found free just now, under the lock
        _FAMILIES[id(st)] = (st, family.records)
        return
    created = _need_created(st)
    if not ctx.zfs.exists(created.snapshot):
        services.take_snapshots(ctx, created)


def _step_clone(ctx: Context, st: AptOp, ui: Interaction) -> None:
    created = _need_created(st)
    family = _family_of(st, take=True)
    if family is not None or not ctx.zfs.exists(created.dataset):  # this run took the snapshots: no clone yet
        made = services.make_clones(ctx, created, st.command, family, entry=not st.in_clone)
        if family is not None and not st.in_clone:  # in place, nothing but this run changes them until the menu
            _FAMILIES[id(st)] = (st, made)
    ui.emit(ev.CheckpointMade(model.KIND_TITLES[created.kind], created.checkpoint, ctx.system.container))


def _step_mount(ctx: Context, st: AptOp, ui: Interaction) -> None:
    created = _need_created(st)
    if st.mount_dir and dataset_mounted_at(st.mount_dir) == created.dataset:
        return
    st.mount_dir = st.mount_dir or tempfile.mkdtemp(prefix=f"{created.checkpoint}.", dir=secure_dir(mount_base()))
    Journal(ctx.system.container).save(st)
    services.mount_family(ctx, created, st.mount_dir)


def _apt_target(ctx: Context, st: AptOp, ui: Interaction | None = None) -> AptTarget:
    """Where apt runs; ``ui``: for the run that changes packages, who answers dpkg's questions
    (a person at a terminal; otherwise ``[apt] conffiles`` decides)."""
    clone = bool(st.in_clone and st.mount_dir)
    root = st.mount_dir if clone and st.mount_dir else ctx.system.root
    if ui is None:
        return AptTarget(ctx.runner, root, clone=clone)
    conffiles = "ask" if ui.person_answers() else config.load().conffiles
    return AptTarget(ctx.runner, root, conffiles=conffiles, clone=clone)


def _step_apt(ctx: Context, st: AptOp, ui: Interaction) -> None:
    target = _apt_target(ctx, st, ui)
    before = dpkgstatus.read(target.root)
    host_flag = target.is_host and os.path.exists("/run/reboot-required")
    journal = Journal(ctx.system.container)

    def started(pid: int) -> None:
        st.apt_pgid = pid
        journal.save(st)

    since, kernels_before = time.time(), bootfiles.installed_kernels(target.path("boot"))
    with target.session():
        rc = target.apt_get(st.op, tuple(st.packages), on_start=started)
        asked = os.path.exists(target.path("run/reboot-required"))
        st.apt_pgid = None
        if rc == 0:
            st.changes = [c.as_list() for c in dpkgstatus.diff(before, dpkgstatus.read(target.root))]
            if st.in_clone:  # the initramfs and GRUB files the change needs, made in the clone
                changed = [str(c[0]) for c in st.changes]
                todo = bootfiles.plan(target.root, changed, since, kernels_before)
                for line in bootfiles.apply(ctx.runner, target.root, todo):
                    ui.emit(ev.Note(line))
                marked = efi.mark(ctx, _need_created(st).dataset, target.root, changed)
                if marked:
                    ui.emit(ev.Note(marked))
                held = _held_back(ctx, _need_created(st), bootguard.calls(target.root))
                if held:
                    ui.emit(ev.Note(held))
            st.kernels = grub.kernels_in(target.path("boot"))
    st.reboot_asked = asked and not host_flag
    if rc != 0:
        raise OperationFailed(f"apt-get exited with status {rc}")


def _held_back(ctx: Context, created: model.Created, recorded: list[str]) -> str | None:
    """Mark the clone whose maintainer scripts asked grub-install to write disks (held back by
    :mod:`.bootguard`); what to tell the user."""
    if not recorded:
        return None
    disks = " ".join(bootguard.disks(recorded)) or "-"
    ctx.zfs.set_props(created.dataset, {efi.HELD_BACK: disks})
    return efi.held_back_note(created.checkpoint, disks)


def _step_metadata(ctx: Context, st: AptOp, ui: Interaction) -> None:
    created = _need_created(st)
    changes = [dpkgstatus.PackageChange(str(r[0]), r[1], r[2]) for r in st.changes]
    why = st.reboot_why or ("a maintainer script asked for it during apt" if st.reboot_asked else "")
    planned = {k: v for k, v in (created.props or {}).items() if k in RECORD_KEYS}
    done = model.change_props(changes, st.reboot or st.reboot_asked, why)
    if done != planned:  # apt did otherwise
        model.write_changes(ctx.zfs, created.dataset, done, planned)
    dataset = created.dataset if st.in_clone else ctx.system.dataset
    found = st.kernels if st.kernels is not None else grub.kernels_in(_apt_target(ctx, st).path("boot"))
    kernels = " ".join(found)  # a journal of schema 2 did not record them: read them now
    family = _family_of(st)
    known = record_of(family, dataset) if family is not None else None
    record = known or ctx.zfs.get(dataset, (model.KERNELS,))
    recorded = record.user.get(model.KERNELS)
    if kernels and kernels != recorded:
        ctx.zfs.set_props(dataset, {model.KERNELS: kernels})
    elif not kernels and recorded is not None:
        ctx.zfs.inherit(dataset, model.KERNELS)
    if family is not None and known is not None:  # the menu's entry of the running root reads them from here
        user = {k: v for k, v in known.user.items() if k != model.KERNELS}
        now = replace(known, user={**user, model.KERNELS: kernels} if kernels else user)
        _FAMILIES[id(st)] = (st, [now if ds is known else ds for ds in family])


def _step_unmount(ctx: Context, st: AptOp, ui: Interaction) -> None:
    created = _need_created(st)
    if st.mount_dir:
        services.unmount_family(ctx, created, st.mount_dir)
        if os.path.isdir(st.mount_dir):
            os.rmdir(st.mount_dir)
        st.mount_dir = None


def _step_boot(ctx: Context, st: AptOp, ui: Interaction, *, recovering: bool = False) -> None:
    created = _need_created(st)
    if st.in_clone:  # only the clone mode takes step snapshots
        destroy_step_snapshots(ctx, created)
    # Both entries: the new checkpoint's, and the running root's whose kernels apt may have changed.
    current = ctx.system.current_name
    family = _family_of(st, take=True)
    services.edit_menu(ctx, {created.checkpoint: created.checkpoint, current: current}, family)
    if recovering:
        return
    if not st.in_clone:
        ui.emit(ev.InPlaceDone(created.checkpoint))
        return
    name = created.checkpoint
    ui.emit(ev.UpgradeReady(name))
    choice = st.then or ui.after_upgrade(name)
    st.then = choice
    ui.emit(ev.NextSteps(name))
    if choice == "activate":
        messages = services.set_default(ctx, created.dataset)  # the menu does not say what boots
        ui.emit(ev.Activated(created.dataset, tuple(messages)))
    elif choice == "reboot":
        ui.emit(ev.TrialArmed(tuple(services.arm_trial(ctx, created.dataset))))
        if ctx.system.is_host_root:
            st.reboot_now = True  # once the journal says the operation is done
        else:
            ui.emit(ev.NotRebooting(ctx.system.root, name))


def _undo_snapshot(ctx: Context, st: AptOp) -> None:
    if st.created is not None:
        services.remove_snapshots(ctx, st.created)


def _undo_clone(ctx: Context, st: AptOp) -> None:
    if st.created is not None:
        services.remove_clones(ctx, st.created)


def _undo_mount(ctx: Context, st: AptOp) -> None:
    _teardown(ctx, st, discard=True)


def _undo_apt(ctx: Context, st: AptOp) -> None:
    """Stop what apt left, undo the chroot; in place, roll the root back to the snapshot."""
    _teardown(ctx, st, discard=True)
    created = st.created
    if not st.in_clone and created is not None and ctx.zfs.exists(created.snapshot):
        try:
            services.rollback_in_place(ctx, created)
        except ZfsError as exc:
            raise OperationFailed(f"rollback of {ctx.system.dataset} to {created.snapshot} failed: {exc}") from exc


UNDO: dict[str, Callable[[Context, AptOp], None]] = {
    "snapshot": _undo_snapshot,
    "clone": _undo_clone,
    "mount": _undo_mount,
    "apt": _undo_apt,
}
"""The undo of each step before the commit (from it on the operation is completed, not undone)."""


def _steps(ctx: Context, st: AptOp, ui: Interaction, *, recovering: bool = False) -> list[Step]:
    """The operation's steps for the engine. ``recovering``: the boot step refreshes the menu
    only (what the user chose after the upgrade is not done behind their back)."""
    steps = []
    for name in STEP_NAMES:
        work = functools.partial(STEP_FUNCS[name], ctx, st, ui)
        if name == "boot":
            work = functools.partial(_step_boot, ctx, st, ui, recovering=recovering)
        undo = UNDO.get(name)
        steps.append(Step(name, work, None if undo is None else functools.partial(undo, ctx, st)))
    return steps


STEP_FUNCS: dict[str, Callable[[Context, AptOp, Interaction], None]] = {
    "plan": _step_plan,
    "fetch": _step_fetch,
    "snapshot": _step_snapshot,
    "clone": _step_clone,
    "mount": _step_mount,
    "apt": _step_apt,
    "metadata": _step_metadata,
    "unmount": _step_unmount,
    "boot": _step_boot,
}


# --- step snapshots -------------------------------------------------------------------------
def _boundary(ctx: Context, created: model.Created, step: str) -> None:
    mark = {model.STEP_MARK: created.checkpoint}
    ctx.zfs.snapshot(f"{created.dataset}@{STEP_SNAPSHOT}{step}", recursive=True, props=mark)
    if created.boot_dataset:
        ctx.zfs.snapshot(f"{created.boot_dataset}@{STEP_SNAPSHOT}{step}", props=mark)


def is_step_snapshot(ds: Dataset) -> bool:
    """One of ours: named ``@acstep-*`` and marked when taken (a user's namesake is not)."""
    return ds.is_snapshot and f"@{STEP_SNAPSHOT}" in ds.name and model.STEP_MARK in ds.user


def destroy_step_snapshots(ctx: Context, created: model.Created) -> None:
    for dataset in (created.dataset, created.boot_dataset):
        if not dataset:
            continue
        try:
            tree = ctx.zfs.list_tree(dataset, (model.STEP_MARK,))
        except ZfsNotFound:
            continue
        tops = {ds.name for ds in tree if is_step_snapshot(ds) and ds.parent == dataset}
        for name in sorted(tops, key=lambda n: -next(d.createtxg for d in tree if d.name == n)):
            ctx.zfs.destroy(name, recursive=True)


def _rollback_clone_to(ctx: Context, created: model.Created, step: str) -> None:
    """Bring the clone (family) back to its state right after ``step``."""
    tag = f"@{STEP_SNAPSHOT}{step}"
    for dataset in (created.dataset, created.boot_dataset):
        if not dataset:
            continue
        for ds in ctx.zfs.list_tree(dataset):
            if not ds.is_snapshot and ctx.zfs.exists(ds.name + tag):
                ctx.zfs.rollback(ds.name + tag, destroy_newer=True)


# --- the engine -----------------------------------------------------------------------------
def _group_member(pgid: int) -> str | None:
    """A live (not zombie) process of process group ``pgid``, as "pid N (command)"."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return f"pid {entry} ({command_of(int(entry))})"
    return None


def still_working(st: OpState) -> str | None:
    """What still works for an interrupted operation: its apt-get's process group (in the same
    boot) or whoever holds apt's and dpkg's locks in its target. Callers hold the apt-clone lock,
    so apt-clone itself is not running: a recorded pid alone proves nothing (it may be reused)."""
    if not isinstance(st, AptOp):
        return None
    if st.apt_pgid and (st.boot_id is None or st.boot_id == boot_id()):
        member = _group_member(st.apt_pgid)
        if member:
            return f"apt-get ({member})"
    for root in filter(None, (st.mount_dir, st.root)):
        holder = apt_lock_holder(root)
        if holder:
            return holder
    return None


def refuse_while_working(st: OpState) -> None:
    """Change nothing while apt or dpkg of an interrupted operation still runs."""
    busy = still_working(st)
    if busy:
        raise LockHeld(
            f"'{st.command}' was interrupted but {busy} still runs in its root: "
            "let it finish, then run 'apt-clone recover'"
        )


def settle_unfinished(ctx: Context, journal: Journal, st: AptOp, *, freeing: bool) -> tuple[list[str], AptOp | None]:
    """An unfinished apt operation before another mutating command: dropped, saying so, when it
    had changed nothing on ZFS; kept for a destroy (``freeing``); otherwise refused, naming
    ``apt-clone resume`` and ``apt-clone recover``."""
    if "snapshot" not in st.steps:  # nothing on ZFS yet: safe to drop, saying so
        what = "paused" if st.state == "paused" else "unfinished"
        cleaned = sweep_chroots(ctx)
        journal.finish(st, "abandoned")
        note = f"dropped the {what} '{st.command}' (since {st.started}): it had changed nothing on ZFS"
        return [note + "".join(f"; {line}" for line in cleaned)], None
    if freeing:
        return [f"'{st.command}' did not finish: it stays for 'apt-clone recover' or 'apt-clone resume'"], st
    if st.state == "paused":
        step = _last_done(st)
        raise Refused(f"'{st.command}' is paused after step {step}: run 'apt-clone resume' or 'apt-clone recover'")
    raise Refused(
        f"'{st.command}' (since {st.started}) did not finish: run 'apt-clone recover' (or 'apt-clone resume')"
    )


def _last_done(st: AptOp) -> str | None:
    done = [s for s in STEP_NAMES if st.steps.get(s) == "done"]
    return done[-1] if done else None


def run(ctx: Context, st: AptOp, ui: Interaction, start: str = "plan") -> Outcome:
    """Run the steps from ``start``; a failure asks to roll back (or keeps everything). The
    planning child never outlives the run (a plan refused, nothing to do, a pause after the plan)."""
    try:
        return _run(ctx, st, ui, start)
    finally:
        _, planner = _PLANNERS.pop(id(st), (None, None))
        if planner is not None:
            planner.close()


def _run(ctx: Context, st: AptOp, ui: Interaction, start: str) -> Outcome:
    journal = Journal(ctx.system.container)
    st.state, st.pid, st.error, st.boot_id = "running", os.getpid(), None, boot_id()
    # first saved as its first step starts; the last step's end with the outcome
    engine = Engine(APT_SPEC, st, lambda: journal.save(st), bare_points=True, outcome_follows=True)

    def after(step: str) -> None:
        created = st.created
        if st.in_clone and step in BOUNDARY and created is not None:
            _boundary(ctx, created, step)

    try:
        paused = engine.run(
            _steps(ctx, st, ui), start=start, applies=lambda step: _applies(st, step), after=after, pause_at=st.pause_at
        )
        if paused:
            st.state = "paused"
            journal.save(st)
            ui.emit(ev.Paused(paused, st.mount_dir))
            return _outcome(st, "paused")
    except NothingToDo:
        ui.emit(ev.NothingToDo())
        st.steps[engine.current] = "done"
        journal.finish(st, "done")
        return _outcome(st, "nothing")
    except Cancelled:
        journal.finish(st, "rolled-back")
        return _outcome(st, "cancelled")
    except (Exception, Interrupted, KeyboardInterrupt) as exc:
        why = str(exc) or type(exc).__name__
        if isinstance(exc, (Interrupted, KeyboardInterrupt)):
            why = f"interrupted ({exc or 'SIGINT'})"
        st.state, st.error = "failed", why
        journal.save(st)
        _failed(ctx, st, ui, why, exc)
    journal.finish(st, "done")
    if st.reboot_now:
        ui.emit(ev.Rebooting())
        ctx.runner.stream(["systemctl", "reboot"])
    return _outcome(st, "done")


def _outcome(st: AptOp, status: str) -> Outcome:
    return Outcome(
        status,
        ("clone" if st.in_clone else "in-place") if st.in_clone is not None else None,
        st.created.checkpoint if st.created else None,
        st.created.dataset if st.created else None,
        plan_of(st) if st.plan else None,
        st.changes,
        st.reboot or st.reboot_asked,
        st.then,
    )


def _failed(ctx: Context, st: AptOp, ui: Interaction, why: str, exc: BaseException) -> None:
    journal = Journal(ctx.system.container)
    if "snapshot" not in st.steps:
        # Nothing on ZFS yet: report the error as it is. A refusal or a failed plan is final;
        # a failed download stays resumable.
        if st.steps.get("plan") != "done" or isinstance(exc, Refused):
            journal.finish(st, "rolled-back")
        if isinstance(exc, (Interrupted, KeyboardInterrupt)):
            raise OperationFailed(why) from exc
        raise exc
    if APT_SPEC.committed(st):  # apt went through: the checkpoint is completed, never undone
        raise OperationFailed(
            f"'{st.command}' failed after apt had finished ({why}): 'apt-clone recover' completes the checkpoint"
        ) from exc
    ui.emit(ev.Failed(why))
    try:
        yes = ui.confirm_rollback("Upgrade failed. Would you like to rollback changes now? (y/n)")
    except Refused:
        yes = False
    if yes:
        # From the first line to the last, a Ctrl-C is held: the user sees the rollback whole.
        with shielded(then_raise=False):
            ui.emit(ev.RollingBack())
            try:
                rollback(ctx, st)
            except Exception as undo_exc:
                st.state, st.error = "failed", f"{why}; the rollback failed too: {undo_exc}"
                journal.save(st)
                raise OperationFailed(
                    f"upgrade failed ({why}) and rolling it back failed too ({undo_exc}): "
                    "free space if the pool is full (apt-clone -r OLD), then run 'apt-clone recover'"
                ) from undo_exc
            journal.finish(st, "rolled-back")
            ui.emit(ev.RolledBack())
        raise AptFailed(f"upgrade failed ({why}); all changes were rolled back", rolled_back=True)
    created = _need_created(st)
    if st.in_clone and st.mount_dir:
        with shielded(then_raise=False):
            _teardown(ctx, st)
    ui.emit(ev.Kept(created.checkpoint, bool(st.in_clone)))
    raise AptFailed(f"upgrade failed ({why}); changes kept as they are", rolled_back=False)


def _teardown(ctx: Context, st: AptOp, *, discard: bool = False) -> None:
    """Kill what apt left running, undo chroot mounts and replaced files, unmount the clone
    (``discard``: it is destroyed next, its mountpoint property is not put back)."""
    if st.apt_pgid and st.pid == os.getpid():  # our own child's group (never a recorded, maybe reused, one)
        try:
            os.killpg(st.apt_pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        st.apt_pgid = None
    for target in filter(None, (st.mount_dir, None if ctx.system.is_host_root else ctx.system.root)):
        kill_processes_in(target)
        restore_after_crash(target, files=not (discard and target == st.mount_dir))
        if target == st.mount_dir and not discard:
            bootguard.restore(ctx.runner, target)
    created = st.created
    if st.mount_dir and created is not None:
        try:
            services.unmount_family(ctx, created, st.mount_dir, restore=not discard)
        except ZfsNotFound:
            pass
        if os.path.isdir(st.mount_dir) and not os.listdir(st.mount_dir):
            os.rmdir(st.mount_dir)
        st.mount_dir = None


def rollback(ctx: Context, st: AptOp) -> None:
    """Exactly the state before the operation: the steps that ran undone, newest first; no clone,
    snapshot, mount or step snapshot left."""
    _teardown(ctx, st, discard=True)
    journal = Journal(ctx.system.container)
    Engine(APT_SPEC, st, lambda: journal.save(st)).undo(_steps(ctx, st, _Quiet()), _undo_error)
    if st.created is not None:
        services.edit_menu(ctx, {st.created.checkpoint: None})


def _undo_error(step: str, exc: Exception) -> BaseException:
    return OperationFailed(f"undoing step '{step}' failed: {exc}")


# --- resume and recover ---------------------------------------------------------------------
def _first_pending(st: AptOp) -> str:
    for step in STEP_NAMES:
        if st.steps.get(step) not in ("done", "skipped"):
            return step
    return STEP_NAMES[-1]


def resume(ctx: Context, ui: Interaction, step: str | None = None, pause_at: str | None = None) -> Outcome:
    """Continue the last paused or failed operation from its step, or an earlier one."""
    for given in (step, pause_at):
        if given is not None and given not in STEP_NAMES:
            raise UsageError(f"unknown step {given!r} (steps: {', '.join(STEP_NAMES)})")
    journal, st = commands.load_journal(ctx)
    if st is not None and st.unfinished:
        refuse_while_working(st)
    if st is not None and not isinstance(st, AptOp) and st.unfinished:
        ui.emit(ev.Note(commands.recover(ctx, st)))  # a checkpoint command continues where it can only go on
        return Outcome("done", None, None, None, None, [], False, None)
    if st is None or not isinstance(st, AptOp) or st.state not in ("paused", "failed"):
        if st is not None and st.state == "running":
            raise Refused("the last operation was interrupted: run 'apt-clone recover'")
        raise Refused("there is no paused or failed operation to resume")
    pending = _first_pending(st)
    start = step if step is not None else pending
    if STEP_NAMES.index(start) > STEP_NAMES.index(pending):
        raise Refused(f"cannot resume from '{start}': step '{pending}' has not run yet (never a later step)")
    created = st.created
    redo = STEP_NAMES.index(start) < STEP_NAMES.index(pending) or st.steps.get(start) in ("started", "failed")
    if created is not None and redo and STEP_NAMES.index(start) <= STEP_NAMES.index("apt"):
        if st.in_clone and ctx.zfs.exists(created.dataset):
            before = [s for s in BOUNDARY if STEP_NAMES.index(s) < STEP_NAMES.index(start)]
            _teardown(ctx, st) if start in ("snapshot", "clone", "mount") else None
            _rollback_clone_to(ctx, created, before[-1] if before else "clone")
        elif not st.in_clone and st.steps.get("apt") in ("started", "failed", "done"):
            _teardown(ctx, st)
            services.rollback_in_place(ctx, created)
    for name in STEP_NAMES[STEP_NAMES.index(start) :]:
        st.steps.pop(name, None)
    st.pause_at = pause_at
    if st.in_clone and created is not None and STEP_NAMES.index(start) > STEP_NAMES.index("mount"):
        _step_mount(ctx, st, ui)  # remount if a failure unmounted it
    ui.emit(ev.Resuming(st.command, start))
    return run(ctx, st, ui, start)


def recover_after_crash(ctx: Context, journal: Journal, st: AptOp) -> str:
    """The completed checkpoint when apt had gone through, else exactly the state before."""
    created = st.created
    if APT_SPEC.committed(st) and created is not None and ctx.zfs.exists(created.dataset):
        _teardown(ctx, st)
        steps = _steps(ctx, st, _Quiet(), recovering=True)
        Engine(APT_SPEC, st, lambda: journal.save(st)).recover(steps, _undo_error, lambda s: _applies(st, s))
        message = f"completed checkpoint '{created.checkpoint}' ('{st.command}' had finished apt)"
    else:
        rollback(ctx, st)
        message = f"rolled back '{st.command}': the system is as it was before it"
    journal.finish(st, "recovered")
    return message


def sweep_chroots(ctx: Context) -> list[str]:
    """Chroot binds, replaced files and processes left in the managed root (when it is not
    ``/``) or in a checkpoint mounted under the run directory."""
    base = mount_base()
    targets = [] if ctx.system.is_host_root else [ctx.system.root]
    if os.path.isdir(base):
        targets += [os.path.join(base, d) for d in sorted(os.listdir(base))]
    done = []
    for target in targets:
        if kill_processes_in(target):
            done.append(f"stopped processes left in {target}")
        done += restore_after_crash(target)
        if target != ctx.system.root:
            done += bootguard.restore(ctx.runner, target)
    return done


class _Quiet:
    def emit(self, event: ev.Event) -> None:
        pass

    def confirm(self, text: str) -> bool:
        return True

    def confirm_rollback(self, text: str) -> bool:
        return True

    def confirm_prune(self, text: str) -> bool:
        return False

    def after_upgrade(self, checkpoint: str) -> str:
        return "nothing"

    def person_answers(self) -> bool:
        return False


def new_state(ctx: Context, op: str, packages: tuple[str, ...], **kw: Any) -> AptOp:
    return AptOp(
        op=op,
        packages=list(packages),
        root=ctx.system.root,
        container=ctx.system.container,
        dataset=ctx.system.dataset,
        **kw,
    )


def plan_only(ctx: Context, req: AptRequest, ui: Interaction) -> Outcome:
    """``--dry-run``: the plan from the lists apt has (no update), the mode it takes (the clone
    when a package needs a reboot: maintainer scripts are not read, nothing is downloaded) and
    the space check. No lock, no journal, nothing changed."""
    patterns = config.load().reboot_packages
    plan = make_plan(ctx.runner, ctx.system.root, req.op, req.packages, patterns)
    if plan.empty:
        ui.emit(ev.NothingToDo())
        return Outcome("nothing", plan=plan, then=req.then)
    ui.emit(ev.Planned(plan))
    ui.emit(ev.SpaceChecked(_space_checks(ctx, plan)))
    found = reboots.reasons(plan.changes, patterns)
    if found:
        ui.emit(ev.RebootNeeded(tuple(sorted({name for name, _ in found}))))
    mode = "clone" if req.in_clone or found else "in-place"
    return Outcome("planned", mode, plan=plan, reboot_required=bool(found), then=req.then)


def run_apt_operation(
    ctx: Context, req: AptRequest, ui: Interaction, guard: Callable[[Context], list[str]], pause_at: str | None = None
) -> Outcome:
    """Plan, checkpoint, run apt, and roll back on failure. Refusals change nothing. ``guard``
    runs under the lock first (``recovery.check_unfinished``: what an interrupted command left)."""
    try:
        return _run_apt_operation(ctx, req, ui, guard, pause_at)
    finally:
        discard_warm()  # a planning child started ahead that no plan asked for (a refusal came first)


def _run_apt_operation(
    ctx: Context, req: AptRequest, ui: Interaction, guard: Callable[[Context], list[str]], pause_at: str | None
) -> Outcome:
    validate_request(req.op, req.packages)
    if req.dry_run:
        return plan_only(ctx, req, ui)
    if pause_at is not None and pause_at not in STEP_NAMES[:-1]:
        raise UsageError(f"--pause-at: unknown step {pause_at!r} (steps to pause after: {', '.join(STEP_NAMES[:-1])})")
    check_apt_locks(ctx.system.root)
    with exclusive():
        for note in guard(ctx):
            ui.emit(ev.Note(note))

        def attempt(update: bool) -> Outcome:
            st = new_state(
                ctx,
                req.op,
                req.packages,
                command=req.command,
                update=update,
                request_in_clone=req.in_clone,
                pause_at=pause_at,
                then=req.then,
            )
            return run(ctx, st, ui)

        try:
            return attempt(req.update)
        except NoSpace as exc:
            if not exc.prunable or not (req.prune or ui.confirm_prune(f"{exc.message}. Prune now? (y/n)")):
                raise
        from ..checkpoints import prune  # loaded by the refusal's offer already

        pruned = prune.prune(ctx, prune.policy_of(config.load()))
        ui.emit(ev.Note(f"pruned {len(pruned.removed)} checkpoint(s) to make room: {', '.join(pruned.removed)}"))
        return attempt(False)  # the sources were just updated

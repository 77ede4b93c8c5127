"""Checkpoint services: list, create, destroy, activate, rename, retitle.

A checkpoint is a filesystem directly under the boot-environment container (with its
descendants) plus the snapshot it was cloned from. Its metadata lives in ``org.aptclone:``
user properties on the dataset itself.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from .. import model, readahead
from ..boot import esp, grub, layout
from ..context import Context
from ..errors import AptCloneError, NotFound, Refused
from ..model import Created
from ..names import before_in_series, in_series, next_name, resolve_name, snapshot_tag, validate_name, validate_title
from ..paths import open_private, run_dir, write_atomic
from ..record import field, record, replace
from ..side_by_side import both, side_by_side
from ..signals import shielded
from ..system import dataset_mounted_at, read_mounts
from ..zfs import Dataset, ZfsError, ZfsHasDependentClones, ZfsNotFound
from ..zfs.cli import SAVED_MOUNTPOINT
from . import automount
from .tree import (
    READ_PROPS,
    TRIAL,
    Listing,
    armed_trial,
    checkpoints_of,
    is_child,
    list_checkpoints,
    named,
    read_named,
    read_tree,
    record_of,
)

TYPE_CHECKING = False  # typing itself is not imported at run time: the hook's start-up (mypy knows the name)
if TYPE_CHECKING:
    from typing import Any

    from .efi import Target


def grub_home(ctx: Context, tree: list[Dataset] | None = None) -> layout.GrubHome:
    """Where GRUB's directory is and whose copy GRUB reads (see :mod:`apt_clone.layout`).
    ``tree``: records holding the container's (None: read it)."""
    container = record_of(tree if tree is not None else read_named(ctx), ctx.system.container)
    return layout.grub_home(ctx.system, container.user.get(layout.HOME) if container else None)


def record_grub_home(ctx: Context, tree: list[Dataset]) -> None:
    """Under the lock: when GRUB's directory lives inside checkpoints and no home is recorded,
    the running checkpoint is the one GRUB was installed from: record it."""
    home = grub_home(ctx, tree)
    container = record_of(tree, ctx.system.container)
    if home.where == "checkpoint" and container and layout.HOME not in container.user and home.checkpoint:
        ctx.zfs.set_props(ctx.system.container, {layout.HOME: home.checkpoint})


def refuse_mounted(cp: model.Checkpoint, verb: str) -> None:
    """Never destroy, rename or roll back what ``apt-clone mount`` holds mounted."""
    if cp.mounted_at:
        where = cp.mounted_at.partition(" ")[2]
        raise Refused(f"cannot {verb} '{cp.name}': it is mounted at {where} ('apt-clone umount {cp.name}' first)")


def refuse_locked(ctx: Context, cp: model.Checkpoint, verb: str) -> None:
    """Never try to mount a checkpoint whose encryption key is not loaded: one line instead."""
    try:
        found = ctx.zfs.native(cp.dataset, ("keystatus", "encryptionroot"))
    except ZfsError:
        return
    if found["keystatus"] == "unavailable":
        root = found["encryptionroot"]
        raise Refused(f"cannot {verb} '{cp.name}': its encryption key is not loaded ('zfs load-key {root}' first)")


def refuse_cutting_grub(ctx: Context, cp: model.Checkpoint, verb: str, tree: list[Dataset]) -> None:
    """Never destroy or rename the checkpoint whose copy of GRUB's directory GRUB reads."""
    home = grub_home(ctx, tree)
    if home.where == "checkpoint" and home.checkpoint == cp.name:
        holder = layout.holder_of(home, ctx.system) or cp.dataset
        raise Refused(
            f"cannot {verb} '{cp.name}': GRUB reads its menu from this checkpoint's {holder} "
            f"(/boot/grub); without it the machine stops at a GRUB rescue prompt. Move GRUB's directory "
            "to a dataset every checkpoint shares first: 'apt-clone share-grub' ('apt-clone check' says more)"
        )


def refresh_menu(ctx: Context, tree: list[Dataset] | None = None) -> str | None:
    """Rewrite the GRUB menu of checkpoints (when the system has GRUB) from one zfs read.

    The menu does not say what boots next (grubenv's saved_entry does): the pool is not read."""
    if not ctx.boot.has_grub:
        return None
    tree = tree if tree is not None else read_tree(ctx)
    record_grub_home(ctx, tree)
    cps = checkpoints_of(ctx, tree, None)
    boot = ctx.system.boot_container
    twin_names = set(ctx.zfs.filesystems(boot)) if boot else set()
    entries = [_menu_entry(ctx, cp, _twin(ctx, cp.name) in twin_names) for cp in cps]
    return ctx.boot.refresh_menu(entries, _cmdline(ctx))


def _cmdline(ctx: Context) -> str:
    return grub.cmdline_from_proc() if ctx.system.is_host_root else "ro"


def _menu_entry(ctx: Context, cp: model.Checkpoint, has_twin: bool) -> grub.MenuEntry:
    kernels = cp.kernels or (tuple(grub.kernels_in(os.path.join(ctx.system.root, "boot"))) if cp.current else ())
    return grub.MenuEntry(cp.name, cp.dataset, model.label(cp), kernels, _twin(ctx, cp.name) if has_twin else None)


def edit_menu(ctx: Context, changes: Mapping[str, str | None], known: list[Dataset] | None = None) -> None:
    """Change only the GRUB menu's entries of the checkpoints ``changes`` names, each to the
    checkpoint it now is (a rename: its new name; None: destroyed), reading those alone (``known``:
    their records, the container's and the root's, as a command just made them: nothing is read);
    a menu this version did not write is rendered whole from one read (:func:`refresh_menu`)."""
    if not ctx.boot.has_grub:
        return
    if not changes:
        if not ctx.boot.edit_menu({}, _cmdline(ctx)):
            refresh_menu(ctx)
        return
    now = [n for n in changes.values() if n]
    records = known or read_named(ctx, [*(f"{ctx.system.container}/{n}" for n in now), *(_twin(ctx, n) for n in now)])
    record_grub_home(ctx, records)
    near = Near(records, None)
    entries: dict[str, grub.MenuEntry | None] = {}
    for old, new in changes.items():
        try:
            cp = near.checkpoint(ctx, new) if new else None
        except NotFound:
            cp = None  # gone: its entry goes too
        entries[old] = None if cp is None else _menu_entry(ctx, cp, near.record(_twin(ctx, cp.name)) is not None)
    if not ctx.boot.edit_menu(entries, _cmdline(ctx)):
        refresh_menu(ctx)


def find(ctx: Context, name: str, tree: list[Dataset] | None = None) -> model.Checkpoint:
    """Checkpoint ``name``: from ``tree``, or (None) from a read of it alone."""
    name = resolve_name(name, ctx.system.container)  # a bad name is refused before any read
    if tree is not None:
        return find_in(list_checkpoints(ctx, tree), name)
    return lookup(ctx, name)[0]


@record(frozen=True)
class Near:
    """What a command on one checkpoint read: the records of the container, the running root,
    the checkpoint and whatever else it asked for, and what boots next (the pool's bootfs)."""

    records: list[Dataset]
    next_boot: str | None
    once: tuple[str | None, ...] = ()
    """What boots next once or is the trial armed (see :func:`checkpoints_of`); () when not read."""

    def checkpoint(self, ctx: Context, name: str) -> model.Checkpoint:
        """Checkpoint ``name`` of these records; raises NotFound."""
        name = resolve_name(name, ctx.system.container)
        dataset = f"{ctx.system.container}/{name}"
        ds = record_of(self.records, dataset)
        candidates = [r for r in self.records if r is ds or r.name == ctx.system.dataset]
        for cp in checkpoints_of(ctx, candidates, self.next_boot, self.once):
            if ds is not None and cp.dataset == dataset:
                return cp
        raise NotFound(f"no checkpoint named '{name}' in {ctx.system.container}")

    def record(self, name: str | None) -> Dataset | None:
        return record_of(self.records, name)


def lookup(ctx: Context, name: str, *also: str | None) -> tuple[model.Checkpoint, Near]:
    """Checkpoint ``name`` and what was read with it (``also``: more datasets, those that
    exist): one zfs get and one pool read, whatever the number of checkpoints."""
    name = resolve_name(name, ctx.system.container)
    records, state = both(
        lambda: read_named(ctx, [f"{ctx.system.container}/{name}", *also]),
        lambda: ctx.boot.state(ctx.system.pool, ctx.system.container),
    )
    once = (state.grub_next, ctx.boot.once_of(ctx.system.container), armed_trial(ctx, records))
    near = Near(records, state.next_boot, once)
    return near.checkpoint(ctx, name), near


def find_in(listing: Listing, name: str) -> model.Checkpoint:
    """Checkpoint ``name`` of a listing (several lookups, one read); raises NotFound."""
    name = resolve_name(name, listing.container)
    for cp in listing.checkpoints:
        if cp.name == name:
            return cp
    raise NotFound(f"no checkpoint named '{name}' in {listing.container}")


# --- create -----------------------------------------------------------------------------
def clone_props(origin: Dataset) -> dict[str, str]:
    """Native properties a clone must carry to boot like its origin (mountpoint=/, canmount=noauto)."""
    props: dict[str, str] = {}
    for prop in ("canmount", "mountpoint"):
        value = getattr(origin, prop)
        if prop in origin.local and value:
            props[prop] = value
    return props


def _twin(ctx: Context, name: str) -> str | None:
    """The boot-pool twin of checkpoint ``name`` (``bpool/BOOT/<name>``), if the system has a boot pool."""
    return f"{ctx.system.boot_container}/{name}" if ctx.system.boot_container else None


def _descendants(tree: list[Dataset], dataset: str) -> list[Dataset]:
    """Filesystems below ``dataset`` (its children such as <root>/var), parents first."""
    prefix = dataset + "/"
    return sorted((ds for ds in tree if not ds.is_snapshot and ds.name.startswith(prefix)), key=lambda d: d.name)


@record(frozen=True)
class Family:
    """What making a checkpoint reads (:func:`read_family`): the records of the container, the
    running root with the filesystems under it (never their snapshots) and its boot dataset;
    ``looked_for``: the datasets and snapshots of the next checkpoint's likely name, looked for in
    the same read, and ``found``: those of them that exist."""

    records: list[Dataset]
    looked_for: frozenset[str] = frozenset()
    found: frozenset[str] = frozenset()


def read_family(ctx: Context) -> Family:
    """The running root's family, in two rounds: its filesystems' names beside the records of
    the container, the root and its boot dataset; then, in one zfs get, the records of the
    filesystems under the root and whether the next name (after the container's newest) is free.

    The first round also looks for the name after the newest this system made last
    (:data:`NEWEST_FILE`): when the container's newest is that one, the second round reads only
    the filesystems under the root, if it has any."""
    root = ctx.system.dataset
    early = _after(ctx, _remembered_newest(ctx))
    names, first = both(lambda: ctx.zfs.filesystems(root), lambda: read_named(ctx, [ctx.system.boot_dataset, *early]))
    found = frozenset(ds.name for ds in first if ds.name in early)
    first = [ds for ds in first if ds.name not in early]
    probe = _names_of(ctx, _guess(ctx, first))
    looked = probe == early  # the first round looked for them already
    wanted = [*(n for n in names if n != root), *([] if looked else probe)]
    got = ctx.zfs.get_many(wanted, READ_PROPS) if wanted else {}
    if not looked:
        found = frozenset(name for name in probe if name in got)
    records = [*first, *(ds for name, ds in got.items() if name not in probe)]
    return Family(records, frozenset(probe), found)


def read_family_ahead(ctx: Context) -> None:
    """Start :func:`read_family`'s first round now, for a create that comes after work of its
    own (an apt job's download), under the lock it already holds, with nobody asked anything
    in between: nothing changes what it reads before the create takes it."""
    names = named(ctx, [ctx.system.boot_dataset, *_after(ctx, _remembered_newest(ctx))])
    argvs = ctx.zfs.reads_of(ctx.system.dataset, names, READ_PROPS)
    if argvs:
        ctx.runner.read_ahead(argvs)


def _after(ctx: Context, newest: str | None) -> list[str]:
    """What the first round of :func:`read_family` looks for after ``newest`` (None: nothing)."""
    current = ctx.system.current_name
    return _names_of(ctx, next_name(current, {current, newest})) if newest else []


def _remember_reads(ctx: Context, newest: str) -> None:
    """Leave the next create's first round to ``hook-pre`` (:mod:`apt_clone.readahead`)."""
    names = named(ctx, [ctx.system.boot_dataset, *_after(ctx, newest)])
    readahead.remember(ctx.zfs.reads_of(ctx.system.dataset, names, READ_PROPS))


NEWEST_FILE = "newest"
"""In the run directory: the container and the newest checkpoint made in it by this boot's
apt-clone, on two lines. Only a guess at the container's newest (``org.aptclone:newest``), which
decides: what the first read of the next create looks for."""


def _remembered_newest(ctx: Context) -> str | None:
    try:
        fd = open_private(os.path.join(run_dir(), NEWEST_FILE), os.O_RDONLY)
    except (OSError, AptCloneError):
        return None
    with os.fdopen(fd, encoding="utf-8", errors="replace") as f:
        container, _, name = f.read(1024).partition("\n")
    if container != ctx.system.container:
        return None
    return name.strip() or None


def _remember_newest(ctx: Context, name: str) -> None:
    try:
        write_atomic(os.path.join(run_dir(), NEWEST_FILE), f"{ctx.system.container}\n{name}\n", durable=False)
    except (OSError, AptCloneError):
        pass  # the next create reads one round more


NAME_TRIES = 8
"""Names tried after the container's newest (taken by hand, say) before every name is listed."""


def _names_of(ctx: Context, name: str) -> list[str]:
    """A new checkpoint's datasets and snapshots: what must not exist before it is made."""
    tag = snapshot_tag(name)
    boot_ds = ctx.system.boot_dataset
    names = [f"{ctx.system.container}/{name}", f"{ctx.system.dataset}@{tag}"]
    if boot_ds:
        names += [f"{ctx.system.boot_container}/{name}", f"{boot_ds}@{tag}"]
    return names


def _taken(ctx: Context, name: str, family: Family | None = None) -> list[str]:
    """Which of a new checkpoint's datasets and snapshots exist already (as ``family`` found
    them, or one zfs get)."""
    names = _names_of(ctx, name)
    if family is not None and family.looked_for.issuperset(names):
        return [n for n in names if n in family.found]
    return list(ctx.zfs.get_many(names))


def _tried(ctx: Context, records: list[Dataset]) -> set[str]:
    """The names a new one comes after: the running checkpoint's and the container's newest."""
    container = record_of(records, ctx.system.container)
    newest = container.user.get(model.NEWEST) if container else None
    return {ctx.system.current_name, *([newest] if newest else [])}


def _guess(ctx: Context, records: list[Dataset]) -> str:
    """The next checkpoint's name when nobody took it by hand: after the container's newest."""
    return next_name(ctx.system.current_name, _tried(ctx, records))


def _new_name(ctx: Context, family: Family) -> str:
    """The next free name: after the container's newest (no listing), else after every name."""
    current = ctx.system.current_name
    tried = _tried(ctx, family.records)
    for _ in range(NAME_TRIES):
        candidate = next_name(current, tried)
        if not _taken(ctx, candidate, family):
            return candidate
        tried.add(candidate)
    tree = read_tree(ctx)
    existing = {ds.name.rsplit("/", 1)[1] for ds in tree if is_child(ds, ctx.system.container)}
    prefix = ctx.system.dataset + "@"
    tags = frozenset(ds.name[len(prefix) :] for ds in tree if ds.name.startswith(prefix))
    twins = set(ctx.zfs.filesystems(ctx.system.boot_container)) if ctx.system.boot_container else set()
    while True:
        candidate = next_name(current, existing | tried, tags)
        if _twin(ctx, candidate) not in twins:
            return candidate
        tried.add(candidate)


def prepare_create(
    ctx: Context,
    *,
    title: str | None = None,
    kind: str = "manual",
    name: str | None = None,
    family: Family | None = None,
    props: dict[str, str] | None = None,
) -> Created:
    """Names and checks for a new checkpoint of the current root; changes nothing. ``family``:
    :func:`read_family` as read under the lock (None: read it)."""
    family = family if family is not None else read_family(ctx)
    title = validate_title(title) if title is not None else model.KIND_TITLES[kind]
    if name is not None:
        new = validate_name(name)
        for taken in _taken(ctx, new, family):
            if "@" in taken:
                raise Refused(f"snapshot '{taken}' already exists: destroy it or choose another name")
            raise Refused(f"'{taken}' already exists")
    else:
        new = _new_name(ctx, family)
    tag = snapshot_tag(new)
    boot_ds = ctx.system.boot_dataset
    boot_snap = f"{boot_ds}@{tag}" if boot_ds else None
    target = f"{ctx.system.container}/{new}"
    snapshot = f"{ctx.system.dataset}@{tag}"
    container = record_of(family.records, ctx.system.container)
    newest = (container.user.get(model.NEWEST) or "") if container else ""
    return Created(new, target, snapshot, kind, title, _twin(ctx, new) if boot_ds else None, boot_snap, props, newest)


def take_snapshots(ctx: Context, created: Created) -> None:
    """Snapshot the root with its children at one instant and, at the same time, its boot twin;
    first, on a UEFI machine, a copy of the ESP's ``EFI/`` into /boot, so the checkpoint keeps
    the boot loader it had (a GRUB or shim upgrade in place has a way back).

    Beside them, the container records the checkpoint as its newest (a name in the running
    root's series): the name is taken from here on, and :func:`step_back_newest`, the undo of
    the snapshots, frees it again."""
    keep_esp(ctx)
    mark = {model.SNAPSHOT_MARK: created.checkpoint}
    boot = created.boot_snapshot
    side_by_side(
        lambda: ctx.zfs.snapshot(created.snapshot, recursive=True, props=mark),
        (lambda: ctx.zfs.snapshot(boot, props=mark)) if boot else None,
        (lambda: _record_newest(ctx, created.checkpoint)) if _is_newest(ctx, created) else None,
    )


def _is_newest(ctx: Context, created: Created) -> bool:
    """Whether ``created`` is recorded as the newest (a name in the running root's series)."""
    return in_series(ctx.system.current_name, created.checkpoint)


def _record_newest(ctx: Context, name: str) -> None:
    try:
        ctx.zfs.set_props(ctx.system.container, {model.NEWEST: name})
    except ZfsError:
        pass  # only a hint for the next name (checked before use)


def step_back_newest(ctx: Context, created: Created) -> None:
    """Undo the container's record of ``created`` as its newest (:func:`take_snapshots`), when it
    still names it: the name is free again."""
    if not _is_newest(ctx, created):
        return  # never recorded: nothing to read
    try:
        container = ctx.zfs.get_many([ctx.system.container], (model.NEWEST,)).get(ctx.system.container)
        if container is not None and container.user.get(model.NEWEST) == created.checkpoint:
            # as read before the create ("": none); a journal older than that field: the name before
            before = created.newest_before
            if before is None:
                before = before_in_series(created.checkpoint)
            if before:
                ctx.zfs.set_props(ctx.system.container, {model.NEWEST: before})
            else:
                ctx.zfs.inherit(ctx.system.container, model.NEWEST)
    except ZfsError:
        pass  # only a hint (a full pool refuses even this): the next name is checked before use


def make_clones(
    ctx: Context, created: Created, command: str, family: list[Dataset] | None = None, *, entry: bool = False
) -> list[Dataset]:
    """Clone the snapshots into the new checkpoint: root, children, boot twin, with metadata;
    the run directory remembers it as this boot's newest (the container's record of it went
    with the snapshots).

    ``family``: :func:`read_family` as read for :func:`prepare_create` (the running root and its
    children have not changed since, only their snapshots were taken); None: read it. ``entry``:
    its GRUB entry checked meanwhile (:func:`check_entry_ahead`). Returns the family's records
    with the new checkpoint's (and its twin's) as made, for the menu."""
    tree = family if family is not None else read_family(ctx).records
    origin = next(ds for ds in tree if ds.name == ctx.system.dataset)
    tag = created.snapshot.split("@", 1)[1]
    props = {**clone_props(origin), **model.metadata(created.title, created.kind, command), **(created.props or {})}
    props["canmount"] = "noauto"  # a root never mounts by itself (apt_clone.automount)
    kernels = grub.kernels_in(os.path.join(ctx.system.root, "boot"))
    if kernels:
        props[model.KERNELS] = " ".join(kernels)

    def root() -> None:
        ctx.zfs.clone(created.snapshot, created.dataset, props)
        for child in _descendants(tree, ctx.system.dataset):
            rel = child.name[len(ctx.system.dataset) :]
            child_props = {**clone_props(child), **automount.new_props(child)}
            ctx.zfs.clone(f"{child.name}@{tag}", created.dataset + rel, child_props)

    def boot_twin() -> None:
        assert created.boot_snapshot and created.boot_dataset and ctx.system.boot_dataset
        boot = record_of(tree, ctx.system.boot_dataset) or ctx.zfs.get(ctx.system.boot_dataset)
        # Never canmount=on: only the twin of what boots next mounts at /boot by itself (Bootloader.activate).
        ctx.zfs.clone(created.boot_snapshot, created.boot_dataset, {**clone_props(boot), "canmount": "noauto"})

    made = [_as_made(created.dataset, created.snapshot, origin, props)]
    if created.boot_dataset and created.boot_snapshot:
        made.append(_as_made(created.boot_dataset, created.boot_snapshot, origin, {}))
    has_twin = bool(created.boot_snapshot and created.boot_dataset and ctx.system.boot_dataset)
    check = (lambda: check_entry_ahead(ctx, [*tree, *made], created.checkpoint)) if entry else None

    side_by_side(root, boot_twin if has_twin else None, check)
    if _is_newest(ctx, created):  # what the next create's first read looks for (hook-pre reads it ahead)
        _remember_newest(ctx, created.checkpoint)
        _remember_reads(ctx, created.checkpoint)
    return [*tree, *made]


def check_entry_ahead(ctx: Context, records: list[Dataset], name: str) -> None:
    """grub-script-check of checkpoint ``name``'s GRUB entry as the menu will hold it, from
    ``records`` as its clones will be, while they are made: the menu's write then checks it no
    more (:func:`apt_clone.boot.grub.check_entry`). Best effort: what fails here is checked, and
    said, when the menu is written."""
    grub_dir = ctx.boot.grub_dir if ctx.boot.has_grub and ctx.boot.readable else None
    if grub_dir is None:  # no GRUB, or a GRUB home not mounted yet: checked at the write
        return
    try:
        near = Near(records, None)
        entry = _menu_entry(ctx, near.checkpoint(ctx, name), near.record(_twin(ctx, name)) is not None)
        grub.check_entry(grub_dir, entry, _cmdline(ctx), ctx.runner)
    except (AptCloneError, OSError):
        pass


def _as_made(name: str, snapshot: str, origin: Dataset, props: Mapping[str, str]) -> Dataset:
    """The record a read of a clone just made with ``props`` would give (what the menu uses)."""
    native = {k: v for k, v in props.items() if ":" not in k}
    return Dataset(
        name, "filesystem", snapshot, 0, 0, 0, None, 0,
        native.get("mountpoint", origin.mountpoint), native.get("canmount", "noauto"), False,
        user={k: v for k, v in props.items() if ":" in k}, local=frozenset(native),
    )  # fmt: skip


def remove_clones(ctx: Context, created: Created) -> None:
    """Undo :func:`make_clones`: the new checkpoint and its boot twin unmounted and destroyed."""

    def remove(dataset: str) -> None:
        unmount_tree(ctx, dataset)
        destroy_quietly(ctx, dataset)

    twin = created.boot_dataset
    side_by_side(lambda: remove(created.dataset), (lambda: remove(twin)) if twin else None)


def remove_snapshots(ctx: Context, created: Created) -> None:
    """Undo :func:`take_snapshots`: the snapshots (the children's of that instant too) destroyed
    and the container's newest stepped back (:func:`step_back_newest`)."""
    for snap in (created.snapshot, created.boot_snapshot):
        destroy_quietly(ctx, snap)
    step_back_newest(ctx, created)


def destroy_quietly(ctx: Context, name: str | None) -> None:
    if not name:
        return
    try:
        ctx.zfs.destroy(name, recursive=True)
    except ZfsNotFound:
        pass


def unmount_tree(ctx: Context, dataset: str | None, tree: list[Dataset] | None = None) -> None:
    if not dataset:
        return
    if tree is None:
        try:
            tree = ctx.zfs.list_tree(dataset)
        except ZfsNotFound:
            return
    for ds in reversed(tree):
        if ds.mounted and not ds.is_snapshot:
            ctx.zfs.unmount(ds.name)


def drop_rolled_back(ctx: Context, created: Created) -> None:
    """After :func:`rollback_in_place`: the checkpoint (children and boot twin too) destroyed,
    then its snapshots. ``zfs destroy`` unmounts what is mounted; the plan refused a checkpoint
    ``apt-clone mount`` holds. Its name stays taken (the container's newest is not stepped back):
    the journal and the log named it."""
    twin = created.boot_dataset
    side_by_side(lambda: destroy_quietly(ctx, created.dataset), (lambda: destroy_quietly(ctx, twin)) if twin else None)
    boot = created.boot_snapshot
    side_by_side(lambda: destroy_quietly(ctx, created.snapshot), (lambda: destroy_quietly(ctx, boot)) if boot else None)


def rollback_in_place(ctx: Context, created: Created) -> None:
    """Roll the running root, its children and its boot twin back to the checkpoint's snapshots;
    then the ESP's ``EFI/`` back to what the checkpoint kept of it (see :func:`keep_esp`)."""
    tag = created.snapshot.split("@", 1)[1]
    boot = created.boot_snapshot

    def root() -> None:
        for name in ctx.zfs.filesystems(ctx.system.dataset):
            ctx.zfs.rollback(f"{name}@{tag}")

    side_by_side(root, (lambda: ctx.zfs.rollback(boot)) if boot else None)
    mounted = esp.mounted_esp(ctx.system.root, read_mounts())
    if mounted:
        esp.put_back(ctx.system.root, mounted)


def keep_esp(ctx: Context) -> None:
    """The ESP's ``EFI/`` copied into the running root's /boot (when /boot is the checkpoint's:
    its root or boot twin), so a snapshot taken now keeps it."""
    mounts = read_mounts()
    mounted = esp.mounted_esp(ctx.system.root, mounts)
    if mounted is None:
        return
    boot = layout.place_of(os.path.join(ctx.system.root, "boot"), mounts)
    if boot.dataset and (boot.dataset == ctx.system.dataset or layout.in_checkpoint(boot.dataset, ctx.system)):
        esp.keep(ctx.system.root, mounted)


def _target_mounter(ctx: Context, dataset: str) -> Target:
    """Mounts the checkpoint ``dataset`` under a directory, for its grub-install (the running
    one: its root filesystem bound there; its /boot is not needed, GRUB's home is bound in)."""
    if dataset == ctx.system.dataset:
        return lambda directory: _bound_root(ctx.system.root, directory)
    return lambda directory: mounted(ctx, _parts_of_dataset(ctx, dataset), directory)


def _parts_of_dataset(ctx: Context, dataset: str) -> Created:
    """:func:`parts_of` from a checkpoint's dataset alone (its record is not needed to mount it)."""
    name = dataset.rsplit("/", 1)[1]
    twin = _twin(ctx, name)
    return Created(name, dataset, "", "", "", twin if twin and ctx.zfs.exists(twin) else None)


@contextmanager
def _bound_root(root: str, directory: str) -> Iterator[str]:
    from ..chroot import bound  # an activation's grub-install only: off the hook's start-up

    with bound(root, directory):
        yield directory


def _target_leftover(ctx: Context, dataset: str) -> Callable[[str], None]:
    """Unmounts what a killed grub-install left of the checkpoint ``dataset`` under a directory."""
    if dataset == ctx.system.dataset:
        from ..chroot import unmount  # an activation's undo only: off the hook's start-up

        return unmount
    return lambda directory: unmount_family(ctx, _parts_of_dataset(ctx, dataset), directory)


# --- destroy ----------------------------------------------------------------------------
@record(frozen=True)
class DestroyPlan:
    checkpoint: model.Checkpoint
    promote: list[str]
    activate_first: str | None
    boot_dataset: str | None = None
    bootfs: str | None = None
    """The pool's bootfs as read for this plan (under the lock: what an activation first saves)."""


def _dependants_to_promote(tree: list[Dataset], dataset: str) -> list[str]:
    """For each filesystem of ``dataset``'s tree, the clone of its newest cloned snapshot.

    Promoting it moves every older snapshot to the clone; other clones follow their origins.
    """
    inside = {ds.name for ds in tree if ds.name == dataset or ds.name.startswith((dataset + "/", dataset + "@"))}
    by_txg = {ds.name: ds.createtxg for ds in tree}
    chosen: dict[str, Dataset] = {}
    for ds in tree:
        if ds.is_snapshot or not ds.origin or ds.origin not in inside or ds.name in inside:
            continue
        source = ds.origin.split("@", 1)[0]
        best = chosen.get(source)
        if best is None or by_txg.get(ds.origin, 0) > by_txg.get(best.origin or "", 0):
            chosen[source] = ds
    return [ds.name for ds in sorted(chosen.values(), key=lambda d: d.name)]


def plan_destroy(
    ctx: Context,
    name: str,
    *,
    activate_instead: str | None = None,
    read: tuple[Listing, list[Dataset], list[Dataset] | None] | None = None,
) -> DestroyPlan:
    """Check the safety rules and work out promotions; changes nothing. ``read``: the listing,
    the container's tree and the boot container's, as read under the lock (prune's many
    destroys read them once); None: read them."""
    if activate_instead is not None:
        activate_instead = resolve_name(activate_instead, ctx.system.container)
    other = None
    if read is None:  # what this checkpoint touches, whatever the number of others
        twin = _twin(ctx, resolve_name(name, ctx.system.container))
        instead = f"{ctx.system.container}/{activate_instead}" if activate_instead else None
        cp, near = lookup(ctx, name, instead, twin)
        if activate_instead is not None:
            other = near.checkpoint(ctx, activate_instead)  # a --force that names nothing is an error, used or not
        tree, next_boot = near.records, near.next_boot
        twin = twin if near.record(twin) else None
    else:
        listing, tree, boot_tree = read
        cp, next_boot = find_in(listing, name), listing.next_boot
        if activate_instead is not None:
            other = find_in(listing, activate_instead)
        twin = _twin(ctx, cp.name) if ctx.system.boot_container else None
        twin = twin if boot_tree is not None and any(ds.name == twin for ds in boot_tree) else None
    if cp.current:
        raise Refused(f"Can not destroy currently active system folder: '{cp.name}' is the running system")
    refuse_mounted(cp, "destroy")
    refuse_cutting_grub(ctx, cp, "destroy", tree)
    activate_first = None
    if cp.active:
        if other is None:
            raise Refused(
                f"'{cp.name}' boots next: activate another checkpoint first, or pass --force OTHER to activate OTHER"
            )
        if other.name == cp.name:
            raise Refused("--force must name another checkpoint to activate")
        activate_first = other.name
    if read is None:
        promote = _promotions(ctx, cp.dataset) + (_promotions(ctx, twin) if twin else [])
    else:
        promote = _dependants_to_promote(tree, cp.dataset)
        promote += _dependants_to_promote(boot_tree, twin) if twin and boot_tree is not None else []
    return DestroyPlan(cp, promote, activate_first, twin, next_boot)


def _promotions(ctx: Context, dataset: str) -> list[str]:
    """:func:`_dependants_to_promote` from ``dataset``'s own tree and the clones of its snapshots
    alone (most checkpoints have no snapshot: nothing more is read)."""
    own = ctx.zfs.list_tree(dataset)
    snaps = [ds.name for ds in own if ds.is_snapshot]
    if not snaps:
        return []
    clones = [c for found in ctx.zfs.clones(snaps).values() for c in found]
    return _dependants_to_promote(own + list(ctx.zfs.get_many(clones).values()), dataset)


@record(frozen=True)
class Destroyed:
    dataset: str
    promoted: list[str]
    snapshot_destroyed: str | None
    activated: str | None
    notes: list[str] = field(default_factory=list)


def without(tree: list[Dataset], dataset: str, origin: str | None = None) -> list[Dataset]:
    """``tree`` after the destroy of ``dataset`` (its descendants and their snapshots), and of
    its ``origin`` snapshot when apt-clone took it and no clone of it is left."""
    left = [ds for ds in tree if ds.name != dataset and not ds.name.startswith((dataset + "/", dataset + "@"))]
    snap = next((ds for ds in left if ds.name == origin), None)
    if origin and snap is not None and model.SNAPSHOT_MARK in snap.user and not any(ds.origin == origin for ds in left):
        tag = "@" + origin.split("@", 1)[1]
        fs = origin.split("@", 1)[0]
        left = [ds for ds in left if not (ds.is_snapshot and ds.name.endswith(tag) and ds.name.startswith(fs))]
    return left


def destroy_origin_if_ours(ctx: Context, origin: str, tree: list[Dataset] | None = None) -> str | None:
    """Destroy the origin snapshot (recursively: children's too) when apt-clone took it and no
    other clone needs it. ``tree``: the container's tree as it is now; None: read the snapshot
    alone and let ZFS refuse while a clone needs one of them (it then destroys none)."""
    if tree is None:
        try:
            snap = ctx.zfs.get_many([origin], (model.SNAPSHOT_MARK,)).get(origin)
        except ZfsError:
            return None
    else:
        snap = next((ds for ds in tree if ds.name == origin), None)
    if snap is None or model.SNAPSHOT_MARK not in snap.user:
        return None
    if tree is not None:
        tag = "@" + origin.split("@", 1)[1]
        fs = origin.split("@", 1)[0]
        same_instant = {ds.name for ds in tree if ds.is_snapshot and ds.name.endswith(tag) and ds.name.startswith(fs)}
        if any(ds.origin in same_instant for ds in tree if not ds.is_snapshot):
            return None
    try:
        ctx.zfs.destroy(origin, recursive=True)
    except ZfsHasDependentClones:
        return None
    return origin


# --- activate, rename, title --------------------------------------------------------------
@record(frozen=True)
class Activated:
    dataset: str
    messages: list[str]


Mounts = tuple[list[Dataset], list[str]]
"""What :func:`mount_tree` read: the filesystems, and the checkpoints' roots among them."""


def set_default(ctx: Context, dataset: str, previous: str | None = None, mounts: Mounts | None = None) -> list[str]:
    """Activate: ``dataset`` boots from now on (pool bootfs, GRUB's default entry, any one-time
    request cleared, the children that mount by themselves: :mod:`apt_clone.automount`) and
    carries the time it was activated. The one definition of the action: ``-a``, ``destroy
    --force``, ``trial-commit`` and ``--then activate`` all come here (the journalled ones through
    :func:`apt_clone.operations.activate`'s step). ``previous``: what booted by default before,
    as the caller read it (None: read it); ``mounts``: :func:`mount_tree` of ``dataset`` and
    ``previous`` as the caller's :func:`save_boot` just read it (None: read it)."""
    from . import efi  # the ESP's boot loader: activations and their undo, never a create (hook start-up)

    if mounts is None:
        previous = previous or ctx.zfs.pool(ctx.system.pool).bootfs
        mounts = mount_tree(ctx, dataset, previous)
    tree, roots = mounts
    target = record_of(tree, dataset)
    pending = target.user.get(efi.PENDING) if target is not None else None
    messages = efi.apply(ctx, dataset, pending, _target_mounter(ctx, dataset)) if pending else []
    held = target.user.get(efi.HELD_BACK) if target is not None else None
    armed = armed_trial(ctx, tree)
    messages += ctx.boot.activate(dataset)
    if held:  # told once, as it becomes the default
        messages.append(efi.held_back_note(dataset.rsplit("/", 1)[1], held))
        ctx.zfs.inherit(dataset, efi.HELD_BACK)
    if armed:  # its one-time boot is gone with the activation: no verdict is to come
        ctx.zfs.inherit(ctx.system.container, TRIAL)
        if armed != dataset:
            messages.append(f"The trial boot of '{armed.rsplit('/', 1)[1]}' is cancelled.")
    automount.apply(ctx.zfs, tree, roots, automount.of_default(tree, roots, dataset))
    ctx.zfs.set_props(dataset, {model.ACTIVATED: model.utc_now()})
    return messages


TRIAL_NOTE = "After a healthy boot of '{name}' it becomes the default; a failed boot falls back."


def arm_trial(ctx: Context, dataset: str, default: str | None = None) -> list[str]:
    """Arm a trial: boot ``dataset`` once; a healthy boot then makes it the default. The one
    definition of the action (``-a --once`` runs it as its journalled commit step, "reboot now"
    after an upgrade within the upgrade's boot step). ``default``: what boots by default, as the
    caller read it (None: read it)."""
    default = default or ctx.zfs.pool(ctx.system.pool).bootfs
    if ctx.boot.has_grub and not ctx.boot.writes_env:
        edit_menu(ctx, {})  # an older version's menu sources no counter script: rendered anew
    from .. import config  # the configuration: only a trial reads it (its tries)

    message = ctx.boot.boot_once(dataset, config.load().tries)
    tree, roots = mount_tree(ctx, default)  # the default's children stay; no root mounts by itself
    automount.apply(ctx.zfs, tree, roots, automount.mounting(tree, roots) - set(roots))
    ctx.zfs.set_props(ctx.system.container, {TRIAL: dataset})
    return [message, TRIAL_NOTE.format(name=dataset.rsplit("/", 1)[1])]


def mount_tree(ctx: Context, *checkpoints: str | None) -> Mounts:
    """The filesystems of the running root and of ``checkpoints`` (datasets of the container)
    with what :mod:`apt_clone.automount` reads, and their roots: what an activation or a trial
    changes (the running root, what boots by default, what is to boot); and the container's
    record, with the trial armed. Never the container's whole tree: the cost does not grow with
    the number of checkpoints."""
    from . import efi  # the ESP's boot loader: activations and their undo, never a create (hook start-up)

    wanted = [
        name
        for name in dict.fromkeys((ctx.system.dataset, *checkpoints))
        if name and name.rsplit("/", 1)[0] == ctx.system.container
    ]
    names: list[str] = []
    for name in wanted:
        try:
            names += ctx.zfs.filesystems(name)
        except ZfsNotFound:
            pass
    names.append(ctx.system.container)  # under no root: automount never considers it
    records = ctx.zfs.get_many(names, (automount.MARK, SAVED_MOUNTPOINT, efi.PENDING, efi.HELD_BACK, TRIAL))
    return [records[n] for n in names if n in records], [n for n in wanted if n in records]


def save_boot(
    ctx: Context, bootfs: str | None = None, target: str | None = None
) -> tuple[dict[str, str | None], Mounts | None]:
    """Everything an activation or a trial of ``target`` changes (:meth:`Bootloader.save`, and
    which datasets of ``target``, the running root and the default mount by themselves), for
    :func:`restore_boot`; and what was read of their mounts, for :func:`set_default` (None:
    no ``target``). ``bootfs``: as the caller read it under the lock (None: read it)."""
    from . import efi  # the ESP's boot loader: activations and their undo, never a create (hook start-up)

    saved = ctx.boot.save(ctx.system.pool, ctx.system.container, bootfs)
    if target is None:
        return saved, None
    tree, found = mounts = mount_tree(ctx, target, saved.get("bootfs"))
    saved["automount"] = " ".join(sorted(automount.mounting(tree, found)))
    saved["automount-of"] = " ".join(found)
    record = record_of(tree, target)
    pending = record.user.get(efi.PENDING) if record is not None else None
    if pending:  # set_default installs its boot loader: efi.apply's copy aside is what goes back
        efi.forget_saved()
        saved["efi-update"] = pending
        saved["efi-of"] = target
    held = record.user.get(efi.HELD_BACK) if record is not None else None
    if held:  # set_default forgets it
        saved["held-back"] = held
        saved["held-back-of"] = target
    armed = armed_trial(ctx, tree)
    if armed:  # set_default cancels it
        saved["trial"] = armed
    return saved, mounts


def restore_boot(ctx: Context, saved: dict[str, str | None]) -> None:
    """Put back what :func:`save_boot` read (a journal without ``automount``: what boots only)."""
    from . import efi  # the ESP's boot loader: activations and their undo, never a create (hook start-up)

    target, pending = saved.get("efi-of"), saved.get("efi-update")
    if target and pending:
        efi.undo(ctx, target, pending, _target_leftover(ctx, target))
    held_of, held = saved.get("held-back-of"), saved.get("held-back")
    if held_of and held:
        try:
            ctx.zfs.set_props(held_of, {efi.HELD_BACK: held})
        except ZfsNotFound:
            pass
    armed = saved.get("trial")
    if armed:
        ctx.zfs.set_props(ctx.system.container, {TRIAL: armed})
    ctx.boot.restore(ctx.system.pool, ctx.system.container, saved)
    if "automount" in saved:
        tree, roots = mount_tree(ctx, *(saved.get("automount-of") or "").split())
        automount.apply(ctx.zfs, tree, roots, set((saved["automount"] or "").split()))


@record(frozen=True)
class Renamed:
    old: str
    new: str
    bootfs_followed: bool


@record(frozen=True)
class RenamePlan:
    old: str
    new: str
    old_twin: str | None
    new_twin: str | None
    active: bool


def plan_rename(ctx: Context, old: str, new: str) -> RenamePlan:
    """Check a rename (not the running system, no clash); changes nothing."""
    old, new = resolve_name(old, ctx.system.container), resolve_name(new, ctx.system.container)
    old_twin, new_twin = _twin(ctx, old), _twin(ctx, new)
    cp, near = lookup(ctx, old, f"{ctx.system.container}/{new}", old_twin, new_twin)
    if cp.current:
        raise Refused(f"cannot rename '{cp.name}': it is the running system")
    refuse_mounted(cp, "rename")
    refuse_cutting_grub(ctx, cp, "rename", near.records)
    for clash in (f"{ctx.system.container}/{new}", new_twin if near.record(old_twin) else None):
        if near.record(clash):
            raise Refused(f"'{clash}' already exists")
    if not near.record(old_twin):
        old_twin = new_twin = None
    return RenamePlan(cp.dataset, f"{ctx.system.container}/{new}", old_twin, new_twin, cp.active)


def pin(ctx: Context, name: str, pinned: bool) -> model.Checkpoint:
    """Pin (prune never removes it) or unpin a checkpoint."""
    cp = find(ctx, name)
    if pinned:
        ctx.zfs.set_props(cp.dataset, {model.PINNED: model.utc_now()})
    elif cp.pinned:
        ctx.zfs.inherit(cp.dataset, model.PINNED)
    return replace(cp, pinned=pinned)


def retitle(ctx: Context, name: str, title: str) -> model.Checkpoint:
    title = validate_title(title)
    cp = find(ctx, name)
    ctx.zfs.set_props(cp.dataset, {model.TITLE: title})
    edit_menu(ctx, {cp.name: cp.name})
    return replace(cp, title=title)


@record(frozen=True)
class RolledBack:
    dataset: str
    snapshot: str
    destroyed: str


def plan_rollback(ctx: Context, name: str) -> tuple[Created, list[Dataset]]:
    """Check rolling the running root back to the snapshot checkpoint NAME was cloned from (then
    dropping NAME): the undo of an in-place change that was kept. Only when that snapshot is the
    running root's newest (nothing later would be lost). Changes nothing. Returns what to roll
    back to, and what was read (the container, the running root, NAME) for the menu step."""
    cp, near = lookup(ctx, name)
    refuse_mounted(cp, "roll back to")
    refuse_cutting_grub(ctx, cp, "roll back to", near.records)
    if cp.active or cp.trial:  # the rollback destroys it: the pool's bootfs or the trial's target gone
        running = ctx.system.dataset.rsplit("/", 1)[1]
        raise Refused(
            f"cannot roll back to '{cp.name}': '{cp.name}' boots next: activate '{running}' "
            f"(the running system) first ('apt-clone -a {running}')"
        )
    snap = cp.origin
    if not snap or not snap.startswith(ctx.system.dataset + "@"):
        raise Refused(f"'{cp.name}' was not cloned from the running system: activate it and reboot instead")
    snaps = ctx.zfs.snapshots(ctx.system.dataset)
    if snaps and snaps[-1] != snap:
        raise Refused(
            f"{snap} is not the newest snapshot of the running system: activate '{cp.name}' and reboot instead"
        )
    tag = snap.split("@", 1)[1]
    twin = _twin(ctx, cp.name)
    boot_snap = f"{ctx.system.boot_dataset}@{tag}" if twin else None
    return Created(cp.name, cp.dataset, snap, cp.kind, cp.title, twin, boot_snap), near.records


def parts_of(ctx: Context, cp: model.Checkpoint) -> Created:
    """An existing checkpoint's datasets, in the shape :func:`create` returns (no snapshots)."""
    return replace(_parts_of_dataset(ctx, cp.dataset), kind=cp.kind, title=cp.title)


def _family_mounts(ctx: Context, created: Created, directory: str) -> list[tuple[str, str]]:
    """(dataset, directory) pairs to mount a checkpoint under ``directory``, parents first."""
    tree = ctx.zfs.list_tree(created.dataset, (SAVED_MOUNTPOINT,))
    top = tree[0]
    # A mountpoint changed by an interrupted mount_at is kept in SAVED_MOUNTPOINT.
    base = (top.user.get(SAVED_MOUNTPOINT) or top.mountpoint or "/").rstrip("/")
    pairs = [(created.dataset, directory)]
    for child in _descendants(tree, created.dataset):
        mp = child.mountpoint or ""
        rel = mp[len(base) :] if base and mp.startswith(base + "/") else child.name[len(created.dataset) :]
        pairs.append((child.name, directory + rel))
    if created.boot_dataset:
        pairs.append((created.boot_dataset, os.path.join(directory, "boot")))
    return pairs


def mount_family(ctx: Context, created: Created, directory: str, *, readonly: bool = False) -> None:
    """Mount a checkpoint's root, its children and its boot twin under ``directory``."""
    done: list[tuple[str, str]] = []
    try:
        for dataset, where in _family_mounts(ctx, created, directory):
            ctx.zfs.mount_at(dataset, where, readonly=readonly)
            done.append((dataset, where))
    except BaseException:
        with shielded():
            for dataset, where in reversed(done):
                ctx.zfs.unmount_at(dataset, where)
        raise


def unmount_family(ctx: Context, created: Created, directory: str, *, restore: bool = True) -> None:
    """Undo :func:`mount_family` (also after a crash: whatever is still mounted there); a
    signal waits until it is done. ``restore=False``: the checkpoint is to be destroyed."""
    with shielded():
        for dataset, where in reversed(_family_mounts(ctx, created, directory)):
            if dataset_mounted_at(where) == dataset or ctx.zfs.get(dataset, (SAVED_MOUNTPOINT,)).user:
                ctx.zfs.unmount_at(dataset, where, restore=restore)


@contextmanager
def mounted(ctx: Context, created: Created, directory: str) -> Iterator[str]:
    """Mount a checkpoint's root, its children and its boot twin under ``directory``."""
    mount_family(ctx, created, directory)
    try:
        yield directory
    finally:
        unmount_family(ctx, created, directory)


def envelope(ctx: Context, op: str, command: str) -> dict[str, Any]:
    """The fields every journal record of a command starts with."""
    return {
        "op": op,
        "command": command,
        "root": ctx.system.root,
        "container": ctx.system.container,
        "dataset": ctx.system.dataset,
    }

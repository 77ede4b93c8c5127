"""Reading the boot-environment container: its checkpoints and what boots, as ``-l`` lists them.

Kept apart from :mod:`.services` so that a listing imports only what it reads with (the
command line's ``-l`` fast path: :mod:`apt_clone.entry`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from .. import model
from ..boot import WITH_LISTING, BootState, layout
from ..context import Context
from ..record import field, record
from ..side_by_side import both
from ..zfs import Dataset, props
from ..zfs.cli import SAVED_MOUNTPOINT


@record(frozen=True)
class Listing:
    """All checkpoints of the managed system and what boots."""

    container: str
    checkpoints: list[model.Checkpoint]
    current: str
    next_boot: str | None
    notes: list[str] = field(default_factory=list)


def _created(ds: Dataset) -> str:
    created = ds.user.get(model.CREATED)
    if created and model.parse_time(created):
        return created
    return dt.datetime.fromtimestamp(ds.creation, dt.UTC).isoformat().replace("+00:00", "Z")


def _checkpoint(
    ds: Dataset, current: str, next_boot: str | None, once: tuple[str | None, ...] = ()
) -> model.Checkpoint:
    kind = ds.user.get(model.KIND, "manual")
    name = ds.name.rsplit("/", 1)[1]
    return model.Checkpoint(
        name=name,
        dataset=ds.name,
        title=ds.user.get(model.TITLE) or model.KIND_TITLES.get(kind, name),
        kind=kind,
        created=_created(ds),
        command=ds.user.get(model.COMMAND),
        summary=ds.user.get(model.SUMMARY),
        origin=ds.origin,
        used=ds.used,
        referenced=ds.referenced,
        createtxg=ds.createtxg,
        active=ds.name == next_boot,
        current=ds.name == current,
        mounted=bool(ds.mounted),
        kernels=tuple(ds.user.get(model.KERNELS, "").split()),
        pinned=bool(ds.user.get(model.PINNED)),
        bad=ds.user.get(model.BAD) or None,
        trial=ds.name in once,
        mounted_at=ds.user.get(model.MOUNTED_AT) or None,
    )


TRIAL = props.key("trial")
"""On the container: the checkpoint armed for a trial boot (its verdict: :mod:`apt_clone.trial`)."""
READ_PROPS = (
    *model.USER_PROPS, model.SNAPSHOT_MARK, SAVED_MOUNTPOINT, *WITH_LISTING, layout.HOME, model.NEWEST, TRIAL,
)  # fmt: skip
"""The user properties every read of checkpoints takes."""


def read_tree(ctx: Context, also: tuple[str, ...] = ()) -> list[Dataset]:
    """The container with its checkpoints and snapshots, in one zfs read (the bootloader takes
    the container's one-time boot property from it); ``also``: more user properties to read."""
    tree = ctx.zfs.list_tree(ctx.system.container, READ_PROPS + also)
    if tree:  # the container itself comes first
        ctx.boot.seen_container(tree[0])
    return tree


def named(ctx: Context, names: Iterable[str | None] = ()) -> list[str]:
    """What :func:`read_named` reads: the container, the running root and ``names``."""
    return [ctx.system.container, ctx.system.dataset, *(n for n in names if n)]


def read_named(ctx: Context, names: Iterable[str | None] = ()) -> list[Dataset]:
    """The container, the running root and those of ``names`` that exist, in one zfs get: what a
    command on one checkpoint reads instead of every checkpoint's properties (its cost does not
    grow with their number)."""
    records = list(ctx.zfs.get_many(named(ctx, names), READ_PROPS).values())
    for ds in records:
        if ds.name == ctx.system.container:
            ctx.boot.seen_container(ds)
    return records


def armed_trial(ctx: Context, records: Iterable[Dataset]) -> str | None:
    """The trial armed, as the container's record among ``records`` says (None: none, or not read)."""
    container = record_of(records, ctx.system.container)
    return container.user.get(TRIAL) if container is not None else None


def record_of(records: Iterable[Dataset], name: str | None) -> Dataset | None:
    return next((ds for ds in records if ds.name == name), None) if name else None


def is_child(ds: Dataset, container: str) -> bool:
    """A filesystem directly under the container: its name is taken, whatever it holds."""
    return not ds.is_snapshot and ds.parent == container


def root_mountpoint(ds: Dataset) -> str | None:
    """The mountpoint a dataset has as a system's root: its property, or the value kept while
    apt-clone has it mounted elsewhere (zfs-fuse's mount_at)."""
    saved = ds.user.get(SAVED_MOUNTPOINT)
    if saved and saved != "-inherit-":
        return saved
    return ds.mountpoint if "mountpoint" in ds.local or saved == "-inherit-" else None


def boot_environments(tree: list[Dataset], container: str, current: str) -> list[Dataset]:
    """The container's boot environments: the running root, and every filesystem beside it
    that mounts where the running root does (``/`` on a host). A sibling mounted anywhere else
    (a ``home`` next to the root) is data, never a checkpoint."""
    root = next((ds for ds in tree if ds.name == current), None)
    where = root_mountpoint(root) if root is not None else None
    return [
        ds
        for ds in tree
        if is_child(ds, container) and (ds.name == current or (where is not None and root_mountpoint(ds) == where))
    ]


def checkpoints_of(
    ctx: Context, tree: list[Dataset], next_boot: str | None, once: tuple[str | None, ...] = ()
) -> list[model.Checkpoint]:
    return [
        _checkpoint(ds, ctx.system.dataset, next_boot, once)
        for ds in boot_environments(tree, ctx.system.container, ctx.system.dataset)
    ]


def list_checkpoints(ctx: Context, tree: list[Dataset] | None = None) -> Listing:
    """All checkpoints, ordered by createtxg, and what boots: one zfs read and one pool read (at
    once, when ``tree`` is to be read)."""

    def boot_state() -> BootState:
        return ctx.boot.state(ctx.system.pool, ctx.system.container)

    if tree is None:
        read, state = both(lambda: read_tree(ctx), boot_state)
    else:
        read, state = tree, boot_state()
    next_boot = state.next_boot
    notes = [n for n in (state.disagreement,) if n]
    if state.grub_next:
        notes.append(f"next boot only (GRUB next_entry): '{state.grub_next}'")
    once = (state.grub_next, ctx.boot.once_of(ctx.system.container), armed_trial(ctx, read))
    checkpoints = checkpoints_of(ctx, read, next_boot, once)
    return Listing(ctx.system.container, checkpoints, ctx.system.dataset, next_boot, notes)

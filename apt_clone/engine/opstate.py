"""The journal's typed state: one record per kind of operation, with the journal's schema version.

Every record has the envelope (:class:`OpState`: what ran, where, how far, by whom); each kind
adds what its steps need to continue, undo or complete it: :class:`AptOp` for the apt
operations, and one record per checkpoint command. A journal written by an older apt-clone is
read into these records (:func:`from_json`); one written by a newer one is refused.
"""

from __future__ import annotations

import datetime as dt

from ..model import Created
from ..record import asdict, field, field_names, record

TYPE_CHECKING = False  # typing itself is not imported at run time: the hook's start-up (mypy knows the name)
if TYPE_CHECKING:
    from typing import Any

SCHEMA = 3
"""The journal format this apt-clone writes: 1 had no schema field and no boot id, 2 kept a
checkpoint command's state in an untyped ``args`` and an apt operation's checkpoint in loose
fields, 3 has one typed record per operation."""

Boot = dict[str, str | None]
"""What boots, as :meth:`apt_clone.boot.Bootloader.save` read it (for the undo)."""


def _now() -> str:
    return dt.datetime.now().astimezone().replace(microsecond=0).isoformat()


@record(kw_only=True)
class OpState:
    """The envelope every operation's journal has."""

    op: str
    command: str
    root: str
    container: str
    dataset: str
    """The running root when the operation began: a journal found on another one is history."""
    state: str = "running"  # running | paused | failed | done | rolled-back | recovered | abandoned
    pid: int = 0
    boot_id: str | None = None
    """The boot the operation ran in: its process ids mean nothing in another one."""
    started: str = field(default_factory=_now)
    steps: dict[str, str] = field(default_factory=dict)  # step -> started | done | failed | skipped | undone
    error: str | None = None
    seq: int = 0  # raised by every save (a clock reading): the newer of the two copies wins
    schema: int = SCHEMA

    @property
    def unfinished(self) -> bool:
        return self.state in ("running", "paused", "failed")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@record(kw_only=True)
class AptOp(OpState):
    """dist-upgrade, upgrade, install or remove."""

    packages: list[str] = field(default_factory=list)
    update: bool = True
    request_in_clone: bool = False
    pause_at: str | None = None
    then: str | None = None
    plan: dict[str, Any] | None = None
    in_clone: bool | None = None
    reboot: bool = False
    reboot_packages: list[str] = field(default_factory=list)
    reboot_why: str = ""
    """Why it needs a reboot, one line (``show`` prints it)."""
    created: Created | None = None
    mount_dir: str | None = None
    apt_pgid: int | None = None
    changes: list[list[str | None]] = field(default_factory=list)
    kernels: list[str] | None = None
    """The kernels in the target's /boot once apt ran (None: not read yet)."""
    reboot_asked: bool = False
    reboot_now: bool = False


@record(kw_only=True)
class CreateOp(OpState):
    created: Created


@record(kw_only=True)
class RollbackOp(OpState):
    created: Created
    """The checkpoint rolled back to (its snapshot is the one the root goes back to)."""


@record(kw_only=True)
class DestroyOp(OpState):
    name: str
    target: str
    target_boot: str | None = None
    activate_first: str | None = None
    promote: list[str] = field(default_factory=list)
    bootfs_seen: str | None = None
    boot_before: Boot | None = None
    promoted: list[list[str]] = field(default_factory=list)  # [clone, its former origin's dataset]
    origins: dict[str, str | None] = field(default_factory=dict)  # destroyed dataset -> its origin
    snapshot_destroyed: str | None = None
    deferred: dict[str, Any] | None = None
    """An operation that could not be finished before this destroy (a full pool), as its journal
    record: handed back when this one is done."""
    menu: bool = True
    """Refresh the GRUB menu after (prune refreshes it once, after its last destroy)."""


@record(kw_only=True)
class RenameOp(OpState):
    old: str
    new: str
    old_twin: str | None = None
    new_twin: str | None = None
    active: bool = False
    boot_before: Boot | None = None


@record(kw_only=True)
class ActivateOp(OpState):
    name: str
    target: str
    bootfs_seen: str | None = None
    boot_before: Boot | None = None
    messages: list[str] = field(default_factory=list)


@record(kw_only=True)
class TrialOp(ActivateOp):
    """``activate --once``: the same record, another commit step."""


@record(kw_only=True)
class ShareGrubOp(OpState):
    """``share-grub``: GRUB's directory moved into a dataset every checkpoint shares."""

    target: str
    mountpoint: str
    disks: list[str] = field(default_factory=list)
    efi: bool = False
    home: str | None = None
    """The checkpoint whose copy GRUB read before."""


@record(kw_only=True)
class MountOp(OpState):
    """``mount`` and ``chroot``: a checkpoint mounted under ``directory`` (and, for chroot, the
    command run in it); ``umount`` takes such a mount away."""

    name: str
    target: str
    directory: str
    rw: bool = False
    made_dir: bool = False
    """apt-clone made ``directory`` (``umount`` removes it)."""
    argv: list[str] = field(default_factory=list)
    status: int | None = None


APT_OPS = ("dist-upgrade", "upgrade", "install", "remove")
KINDS: dict[str, type[OpState]] = {
    **{op: AptOp for op in APT_OPS},
    "create": CreateOp,
    "rollback": RollbackOp,
    "destroy": DestroyOp,
    "rename": RenameOp,
    "activate": ActivateOp,
    "trial": TrialOp,
    "share-grub": ShareGrubOp,
    "mount": MountOp,
    "umount": MountOp,
    "chroot": MountOp,
}


def from_json(data: dict[str, Any]) -> OpState:
    """The record of a journal as read; an older schema is brought up to this one."""
    schema = data.get("schema", 1)
    if not isinstance(schema, int) or schema > SCHEMA:
        raise ValueError(f"journal schema {schema!r} is newer than this apt-clone's ({SCHEMA}): upgrade apt-clone")
    cls = KINDS.get(str(data.get("op")))
    if cls is None:
        raise ValueError(f"unknown operation {data.get('op')!r}")
    if schema < 3:
        data = _from_v2(data, cls)
    known = set(field_names(cls))
    values = {k: v for k, v in data.items() if k in known}
    if isinstance(values.get("created"), dict):
        values["created"] = Created(**values["created"])
    values["schema"] = SCHEMA
    return cls(**values)


_V2_CREATED = ("checkpoint", "target", "snapshot", "kind", "title", "boot_target", "boot_snapshot")


def _from_v2(data: dict[str, Any], cls: type[OpState]) -> dict[str, Any]:
    """Schemas 1 and 2: a checkpoint command's fields were in ``args`` (its checkpoint's dataset
    as ``dataset``), an apt operation's checkpoint in loose fields."""
    out = {k: v for k, v in data.items() if k != "args"}
    if cls is AptOp:
        loose = [data.get(k) for k in _V2_CREATED]
        if loose[0] and loose[1] and loose[2]:
            out["created"] = Created(
                str(loose[0]), str(loose[1]), str(loose[2]), str(loose[3] or "rollback"), str(loose[4] or ""),
                loose[5], loose[6],
            )  # fmt: skip
        return out
    args = dict(data.get("args") or {})
    for old, new in (("dataset", "target"), ("boot_dataset", "target_boot")):
        if old in args:
            args[new] = args.pop(old)
    out.update(args)
    return out

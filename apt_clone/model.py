"""Checkpoints and the codec of their metadata in ZFS user properties."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence

from .names import snapshot_tag
from .record import asdict, record
from .zfs import props

TYPE_CHECKING = False  # typing itself is not imported at run time: -l's start-up (mypy knows the name)
if TYPE_CHECKING:
    from typing import Any

    from .dpkgstatus import PackageChange
    from .zfs import ZfsBackend

SCHEMA_VERSION = "1"

SCHEMA = props.key("schema")
TITLE = props.key("title")
KIND = props.key("kind")
CREATED = props.key("created")
COMMAND = props.key("command")
SUMMARY = props.key("summary")
ACTIVATED = props.key("activated")
KERNELS = props.key("kernels")
"""Space-separated kernel versions in the checkpoint's /boot, newest first (for the GRUB menu)."""
REBOOT = props.key("reboot")
"""Why the change that made a checkpoint needed a reboot (``show``)."""
PINNED = props.key("pinned")
"""Set (to the time it was pinned) on a checkpoint ``prune`` never removes."""
BAD = props.key("bad")
"""Set (to the time and the reason) on a checkpoint whose trial boot failed."""
NEWEST = props.key("newest")
"""On the boot-environment container: the checkpoint apt-clone made last, whose number the next
one continues (a new checkpoint's name is found without listing the others)."""
SNAPSHOT_MARK = props.key("checkpoint-of")
"""Set on the snapshots apt-clone takes: destroying the checkpoint may destroy them too."""
STEP_MARK = props.key("step-of")
"""Set (to the checkpoint's name) on the ``@acstep-*`` snapshots of an operation in the clone:
only those are apt-clone's to destroy, whatever a user's own snapshot is called."""
CHANGES_PREFIX = "changes."
MAX_CHANGE_CHUNKS = 64
CHANGE_KEYS = tuple(props.key(f"{CHANGES_PREFIX}{i}") for i in range(MAX_CHANGE_CHUNKS))

KINDS = ("initial", "upgrade", "rollback", "manual", "automatic")
"""automatic: made by the APT hook before a plain apt run (kept by count, not by hand)."""
KIND_TITLES = {
    "automatic": "Rollback Checkpoint",
    "upgrade": "Upgrade Checkpoint",
    "rollback": "Rollback Checkpoint",
    "manual": "Rollback Checkpoint",
    "initial": "Initial system",
}

MOUNTED_AT = props.key("mounted-at")
"""On a checkpoint ``apt-clone mount`` mounted: ``ro DIR`` or ``rw DIR``."""
USER_PROPS: tuple[str, ...] = (
    SCHEMA, TITLE, KIND, CREATED, COMMAND, SUMMARY, ACTIVATED, KERNELS, PINNED, BAD, MOUNTED_AT,
)  # fmt: skip
"""The properties every listing reads (the package change list is read by ``show`` only)."""


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_time(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def bad_mark(mark: str) -> tuple[str, str]:
    """(when, why) of a checkpoint's bad mark (``<time> <reason>``)."""
    when, _, why = mark.partition(" ")
    return when, why or "a failed trial"


def metadata(title: str, kind: str, command: str, created: str | None = None) -> dict[str, str]:
    """The user properties of a new checkpoint."""
    if kind not in KINDS:
        raise ValueError(f"unknown checkpoint kind {kind}")
    out = {SCHEMA: SCHEMA_VERSION, TITLE: title, KIND: kind, CREATED: created or utc_now()}
    if command:
        out[COMMAND] = command
    return out


def change_props(changes: Sequence[PackageChange], reboot: bool, why: str = "") -> dict[str, str]:
    """The properties recording a checkpoint's package changes (``show``), their summary and
    why they need a reboot."""
    import json  # an apt operation's record only: off -l's start-up

    count = {a: sum(1 for c in changes if c.action == a) for a in ("upgrade", "install", "remove")}
    summary = f"{count['upgrade']} upgraded, {count['install']} installed, {count['remove']} removed"
    out = {SUMMARY: summary + (", reboot required" if reboot else "")}
    if reboot and why:
        out[REBOOT] = why
    text = json.dumps([c.as_list() for c in changes], separators=(",", ":"))
    chunk = 8000
    pieces = [text[i : i + chunk] for i in range(0, len(text), chunk)][:MAX_CHANGE_CHUNKS]
    for i, piece in enumerate(pieces):
        out[CHANGE_KEYS[i]] = piece
    return out


def write_changes(zfs: ZfsBackend, dataset: str, record: Mapping[str, str], before: Iterable[str]) -> None:
    """Replace the record of a checkpoint's package changes (:func:`change_props`) on
    ``dataset``: ``before`` names the keys it had (one no longer needed is removed)."""
    zfs.set_props(dataset, record)
    for key in sorted(set(before) - set(record)):
        zfs.inherit(dataset, key)


@record(frozen=True)
class Created:
    """A checkpoint being made: its datasets and the snapshots it is cloned from."""

    checkpoint: str
    dataset: str
    snapshot: str
    kind: str
    title: str
    boot_dataset: str | None = None
    boot_snapshot: str | None = None
    props: dict[str, str] | None = None
    """More properties of the new checkpoint (the APT hook's package changes, as planned)."""
    newest_before: str | None = None
    """The container's newest as read before (what an undo puts back; "": none; None: unknown,
    a journal older than this field)."""


@record(frozen=True)
class Checkpoint:
    """A boot environment: a filesystem directly under the container, with its metadata."""

    name: str
    dataset: str
    title: str
    kind: str
    created: str
    command: str | None
    summary: str | None
    origin: str | None
    used: int
    referenced: int
    createtxg: int
    active: bool
    current: bool
    mounted: bool
    kernels: tuple[str, ...] = ()
    pinned: bool = False
    bad: str | None = None
    """When its trial boot failed, and why (``<time> <reason>``)."""
    trial: bool = False
    """It boots next once (a one-time boot requested, GRUB's next_entry), or it is the trial armed
    (booted or not: until its verdict)."""
    mounted_at: str | None = None
    """Where ``apt-clone mount`` mounted it (``ro DIR`` or ``rw DIR``)."""

    @property
    def short_name(self) -> str:
        """``nmu-001`` for ``rootfs-nmu-001``, as the seed shows it."""
        return snapshot_tag(self.name)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def seed_time(iso: str, *, zone: bool = False) -> str:
    """``Jan 17 04:09:32 2008`` in local time, as the seed prints checkpoint times (in titles);
    ``zone``: with the time zone after it (``Jan 17 04:09:32 2008 UTC``), everywhere else."""
    when = parse_time(iso)
    if when is None:
        return iso
    return when.astimezone().strftime("%b %d %H:%M:%S %Y" + (" %Z" if zone else ""))


def label(cp: Checkpoint) -> str:
    """The title as listed: the title, then ``[initial]`` or ``[<short name> : <date>]``."""
    if cp.kind == "initial":
        return f"{cp.title} [initial]"
    return f"{cp.title} [{cp.short_name} : {seed_time(cp.created)}]"

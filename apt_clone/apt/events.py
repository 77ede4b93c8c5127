"""What an apt operation tells its user as it goes, as typed events (the CLI renders them as the
seed's text, or lists them in the JSON document): the service itself prints nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..record import record

if TYPE_CHECKING:  # python-apt planning loads only for apt operations
    from .plan import Plan


@record(frozen=True)
class Event:
    """Base of every event; ``kind`` names it in JSON."""

    @property
    def kind(self) -> str:
        return type(self).__name__


@record(frozen=True)
class Updating(Event):
    """apt-get update of the sources runs."""


@record(frozen=True)
class Planned(Event):
    plan: Plan


@record(frozen=True)
class SpaceChecked(Event):
    results: tuple[str, ...]
    """One verdict per pool checked."""


@record(frozen=True)
class Downloading(Event):
    """The packages are downloaded and looked into for reboot requests."""


@record(frozen=True)
class RebootNeeded(Event):
    packages: tuple[str, ...]


@record(frozen=True)
class CreatingCheckpoint(Event):
    kind_title: str


@record(frozen=True)
class CheckpointMade(Event):
    kind_title: str
    checkpoint: str
    container: str


@record(frozen=True)
class InPlaceDone(Event):
    checkpoint: str


@record(frozen=True)
class UpgradeReady(Event):
    """An upgrade in the clone finished: the checkpoint is ready to boot."""

    checkpoint: str


@record(frozen=True)
class NextSteps(Event):
    """The commands that activate or drop a ready checkpoint."""

    checkpoint: str


@record(frozen=True)
class Activated(Event):
    dataset: str
    messages: tuple[str, ...]


@record(frozen=True)
class TrialArmed(Event):
    messages: tuple[str, ...]


@record(frozen=True)
class NotRebooting(Event):
    root: str
    checkpoint: str


@record(frozen=True)
class Paused(Event):
    step: str
    mount_dir: str | None


@record(frozen=True)
class NothingToDo(Event):
    """The plan is empty: no checkpoint was made."""


@record(frozen=True)
class Rebooting(Event):
    """systemctl reboot is asked for."""


@record(frozen=True)
class Failed(Event):
    why: str


@record(frozen=True)
class RollingBack(Event):
    """The automatic rollback runs."""


@record(frozen=True)
class RolledBack(Event):
    """Everything the operation did is undone."""


@record(frozen=True)
class Kept(Event):
    """A failed operation kept as it is, for ``recover`` or ``resume``."""

    checkpoint: str
    in_clone: bool


@record(frozen=True)
class Resuming(Event):
    command: str
    step: str


@record(frozen=True)
class Note(Event):
    """A line of its own: a boot file made, a recovery done first."""

    text: str

"""What an apt operation tells its user as it goes, as typed events (the CLI renders them as the
seed's text, or lists them in the JSON document): the service itself prints nothing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # python-apt planning loads only for apt operations
    from .plan import Plan


@dataclass(frozen=True)
class Event:
    """Base of every event; ``kind`` names it in JSON."""

    @property
    def kind(self) -> str:
        return type(self).__name__


@dataclass(frozen=True)
class Updating(Event):
    """apt-get update of the sources runs."""


@dataclass(frozen=True)
class Planned(Event):
    plan: Plan


@dataclass(frozen=True)
class SpaceChecked(Event):
    results: tuple[str, ...]
    """One verdict per pool checked."""


@dataclass(frozen=True)
class Downloading(Event):
    """The packages are downloaded and looked into for reboot requests."""


@dataclass(frozen=True)
class RebootNeeded(Event):
    packages: tuple[str, ...]


@dataclass(frozen=True)
class CreatingCheckpoint(Event):
    kind_title: str


@dataclass(frozen=True)
class CheckpointMade(Event):
    kind_title: str
    checkpoint: str
    container: str


@dataclass(frozen=True)
class InPlaceDone(Event):
    checkpoint: str


@dataclass(frozen=True)
class UpgradeReady(Event):
    """An upgrade in the clone finished: the checkpoint is ready to boot."""

    checkpoint: str


@dataclass(frozen=True)
class NextSteps(Event):
    """The commands that activate or drop a ready checkpoint."""

    checkpoint: str


@dataclass(frozen=True)
class Activated(Event):
    dataset: str
    messages: tuple[str, ...]


@dataclass(frozen=True)
class TrialArmed(Event):
    messages: tuple[str, ...]


@dataclass(frozen=True)
class NotRebooting(Event):
    root: str
    checkpoint: str


@dataclass(frozen=True)
class Paused(Event):
    step: str
    mount_dir: str | None


@dataclass(frozen=True)
class NothingToDo(Event):
    """The plan is empty: no checkpoint was made."""


@dataclass(frozen=True)
class Rebooting(Event):
    """systemctl reboot is asked for."""


@dataclass(frozen=True)
class Failed(Event):
    why: str


@dataclass(frozen=True)
class RollingBack(Event):
    """The automatic rollback runs."""


@dataclass(frozen=True)
class RolledBack(Event):
    """Everything the operation did is undone."""


@dataclass(frozen=True)
class Kept(Event):
    """A failed operation kept as it is, for ``recover`` or ``resume``."""

    checkpoint: str
    in_clone: bool


@dataclass(frozen=True)
class Resuming(Event):
    command: str
    step: str


@dataclass(frozen=True)
class Note(Event):
    """A line of its own: a boot file made, a recovery done first."""

    text: str

"""Shared pieces of apt operations: the request, the outcome, the questions, the recorded changes.

The operation itself runs as journalled steps in :mod:`apt_clone.apt.operation`.

Two modes:

* in place ("Rollback Checkpoint"): snapshot and clone the current root, run apt on the current
  root; the clone keeps the old state, ready to be activated to go back;
* in the clone ("Upgrade Checkpoint", ``-s``, and by itself when a reboot is needed): snapshot
  and clone, mount the clone, run apt inside it through chroot. The running root is untouched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from ..errors import OperationFailed
from ..record import field, record

if TYPE_CHECKING:  # python-apt planning loads only for apt operations
    from .events import Event
    from .plan import Plan

THEN_CHOICES = ("reboot", "activate", "nothing")


class Interaction(Protocol):
    """What the service needs from its user interface (prompts live in the CLI)."""

    def emit(self, event: Event) -> None:
        """Tell the user what happens (see :mod:`apt_clone.events`)."""

    def confirm(self, text: str) -> bool: ...

    def confirm_rollback(self, text: str) -> bool: ...

    def confirm_prune(self, text: str) -> bool:
        """Whether to prune to make room (on a terminal, without -y: asked; else no)."""
        ...

    def after_upgrade(self, checkpoint: str) -> str:
        """One of THEN_CHOICES."""
        ...

    def person_answers(self) -> bool:
        """Whether a person answers questions here (a terminal, no -y): dpkg's conffile
        questions and apt-listchanges are then theirs, as under plain apt."""
        ...


@record(frozen=True)
class AptRequest:
    op: str
    packages: tuple[str, ...] = ()
    update: bool = True
    in_clone: bool = False
    command: str = ""
    then: str | None = None
    prune: bool = False
    """When the pools are too full for the change: prune first (--prune)."""
    dry_run: bool = False
    """Plan only (--dry-run): what apt would change, the mode and the space; nothing is changed."""


@record()
class Outcome:
    status: str  # nothing | cancelled | planned | paused | done
    mode: str | None = None
    checkpoint: str | None = None
    dataset: str | None = None
    plan: Plan | None = None
    changes: list[list[str | None]] = field(default_factory=list)
    reboot_required: bool = False
    then: str | None = None


class AptFailed(OperationFailed):
    """apt failed or was interrupted; ``rolled_back`` says whether the change was undone."""

    def __init__(self, message: str, rolled_back: bool) -> None:
        super().__init__(message)
        self.rolled_back = rolled_back


def describe_plan(plan: Plan) -> list[str]:
    lines = []
    for action, header in (
        ("install", "to install"),
        ("upgrade", "to upgrade"),
        ("remove", "to remove"),
        ("downgrade", "to downgrade"),
        ("reinstall", "to reinstall"),
    ):
        items = [c for c in plan.changes if c.action == action]
        if not items:
            continue
        lines.append(f"Packages {header} ({len(items)}):")
        for c in items:
            version = f"{c.old} -> {c.new}" if c.old and c.new else (c.new or c.old or "")
            lines.append(f"  {c.name} {version}")
    lines.append(
        f"Download: {plan.download_bytes} bytes; disk space change: {plan.space_bytes} bytes ({plan.summary()})."
    )
    return lines

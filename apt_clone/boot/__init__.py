"""What boots next: the pool's ``bootfs`` (and, once the boot integration lands, GRUB's default).

:class:`Bootloader` is the one place activation changes what boots; each target it drives
(``bootfs`` now, GRUB's saved entry next) implements :class:`BootTarget`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..zfs import ZfsBackend, props

ONCE = props.key("boot-once")
"""On the boot-environment container: the checkpoint to boot one time only, next boot."""


@dataclass(frozen=True)
class BootState:
    """Who boots next, as each boot target sees it."""

    bootfs: str | None
    once: str | None = None

    @property
    def next_boot(self) -> str | None:
        """The permanent default (the A column); a one-time boot is reported apart."""
        return self.bootfs


class BootTarget(Protocol):
    def activate(self, dataset: str) -> str:
        """Make ``dataset`` boot next; returns one line saying what was done."""
        ...


class BootfsTarget:
    """The pool's ``bootfs`` property."""

    def __init__(self, zfs: ZfsBackend) -> None:
        self.zfs = zfs

    def activate(self, dataset: str) -> str:
        pool = dataset.split("/", 1)[0]
        self.zfs.set_bootfs(pool, dataset)
        return f"Pool '{pool}' bootfs is now '{dataset}'."


class Bootloader:
    """Reads and changes what boots next through every configured boot target."""

    def __init__(self, zfs: ZfsBackend, targets: list[BootTarget] | None = None) -> None:
        self.zfs = zfs
        # The GRUB default entry (grub-editenv saved_entry) joins this list in the boot issue.
        self.targets: list[BootTarget] = targets if targets is not None else [BootfsTarget(zfs)]

    def state(self, pool: str) -> BootState:
        return BootState(bootfs=self.zfs.pool(pool).bootfs)

    def activate(self, dataset: str) -> list[str]:
        messages = [target.activate(dataset) for target in self.targets]
        self.clear_once(dataset.rsplit("/", 1)[0])
        return messages

    def boot_once(self, dataset: str) -> str:
        """Boot ``dataset`` at the next boot only; the default stays (GRUB's next_entry joins here)."""
        container = dataset.rsplit("/", 1)[0]
        self.zfs.set_props(container, {ONCE: dataset})
        return f"Next boot only: '{dataset}'; the default stays until it is activated."

    def take_once(self, container: str) -> str | None:
        """Consume a one-time boot request (what a boot does with it)."""
        once = self.zfs.get(container, (ONCE,)).user.get(ONCE)
        if once:
            self.clear_once(container)
        return once

    def clear_once(self, container: str) -> None:
        if self.zfs.get(container, (ONCE,)).user.get(ONCE):
            self.zfs.inherit(container, ONCE)

"""What boots next: the pool's ``bootfs`` (and, once the boot integration lands, GRUB's default).

:class:`Bootloader` is the one place activation changes what boots; each target it drives
(``bootfs`` now, GRUB's saved entry next) implements :class:`BootTarget`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..zfs import ZfsBackend


@dataclass(frozen=True)
class BootState:
    """Who boots next, as each boot target sees it."""

    bootfs: str | None

    @property
    def next_boot(self) -> str | None:
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
        return [target.activate(dataset) for target in self.targets]

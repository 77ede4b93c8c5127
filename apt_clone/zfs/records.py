"""Typed records of what zfs reports."""

from __future__ import annotations

from collections.abc import Mapping

from ..record import field, record


@record(frozen=True)
class Dataset:
    """One filesystem, volume or snapshot, with the properties apt-clone reads."""

    name: str
    type: str
    origin: str | None
    createtxg: int
    creation: int
    used: int
    available: int | None
    referenced: int
    mountpoint: str | None
    canmount: str | None
    mounted: bool | None
    user: Mapping[str, str] = field(default_factory=dict)
    """Locally set user properties (inherited ones are left out)."""
    local: frozenset[str] = frozenset()
    """Native properties set locally on this dataset (e.g. mountpoint, canmount)."""

    @property
    def is_snapshot(self) -> bool:
        return self.type == "snapshot"

    @property
    def pool(self) -> str:
        return self.name.split("/", 1)[0].split("@", 1)[0]

    @property
    def parent(self) -> str | None:
        """The containing dataset (for a snapshot: the dataset it is of)."""
        if "@" in self.name:
            return self.name.split("@", 1)[0]
        if "/" in self.name:
            return self.name.rsplit("/", 1)[0]
        return None


@record(frozen=True)
class Pool:
    """A pool's size, free space, bootfs and health."""

    name: str
    size: int
    free: int
    bootfs: str | None
    health: str
    freeing: int = 0
    """Bytes destroys left to free in the background (OpenZFS's ``freeing``; zfs-fuse frees
    at once)."""

"""Where a managed system's parts live: which datasets hold /, /boot and /boot/grub, and whose
copy of GRUB's directory GRUB reads.

GRUB reads its menu and grubenv from the directory grub-install recorded as its prefix. On a
partition (an ESP, an ext2 /boot/grub) or on a dataset outside the boot-environment containers
(``bpool/grub``) that directory is shared by every checkpoint. Inside a checkpoint (the root
dataset's /boot/grub, or ``bpool/BOOT/<name>/grub`` as the OpenZFS Root-on-ZFS guide makes it)
each checkpoint has its own copy and GRUB keeps reading the one it was installed from: the
*GRUB home*. On a UEFI machine the ESP's stub names it (:mod:`apt_clone.boot.esp`); elsewhere it
is recorded on the container (``org.aptclone:grub-home``) the first time apt-clone sees the
layout, from the checkpoint running then. Destroying or renaming the home leaves GRUB at a
rescue prompt.
"""

from __future__ import annotations

import os

from ..record import record
from ..system import ZFS_FSTYPES, ManagedSystem, Mount, read_mounts
from ..zfs import props
from . import esp
from .grub import GRUB_DIR

HOME = props.key("grub-home")
"""On the boot-environment container: the checkpoint whose GRUB directory GRUB reads."""


@record(frozen=True)
class Place:
    """What holds a directory of the managed system: a mount's source and its type."""

    path: str
    source: str | None
    fstype: str | None
    dataset: str | None
    """The ZFS dataset, when it is one."""


@record(frozen=True)
class GrubHome:
    where: str
    """none (no GRUB directory), partition, shared (a dataset outside the containers), checkpoint."""
    directory: str
    place: Place | None = None
    checkpoint: str | None = None
    """where == checkpoint: the checkpoint whose copy GRUB reads (None: not known yet)."""
    stub: esp.Stub | None = None
    """The ESP's GRUB stub, when there is one (UEFI)."""
    known_from: str = ""
    """How the home is known: ``stub`` (the ESP's), ``recorded`` (the container's mark) or
    ``running`` (the checkpoint running now: the one to record)."""

    @property
    def shared(self) -> bool:
        return self.where in ("partition", "shared")


def place_of(path: str, mounts: list[Mount]) -> Place:
    """The mount that holds ``path`` (the deepest one above it)."""
    real = os.path.realpath(path)
    best: Mount | None = None
    for m in mounts:  # later lines are mounted on top: >= keeps the last of one mount point
        mp = m.mountpoint.rstrip("/") or "/"
        above = real == mp or real.startswith(mp + "/") or mp == "/"
        if above and (best is None or len(mp) >= len(best.mountpoint.rstrip("/") or "/")):
            best = m
    if best is None:
        return Place(real, None, None, None)
    dataset = best.source if best.fstype in ZFS_FSTYPES else None
    return Place(real, best.source, best.fstype, dataset)


def in_checkpoint(dataset: str, system: ManagedSystem) -> bool:
    """Whether ``dataset`` belongs to a checkpoint: the root's or boot twin's container holds it."""
    containers = [system.container] + ([system.boot_container] if system.boot_container else [])
    return any(dataset.startswith(c + "/") for c in containers)


def grub_home(system: ManagedSystem, recorded: str | None, mounts: list[Mount] | None = None) -> GrubHome:
    """Where GRUB's directory is, and, inside checkpoints, whose copy GRUB reads (``recorded``,
    else the running checkpoint: the one to record)."""
    directory = os.path.join(system.root, GRUB_DIR)
    if not os.path.isdir(directory):
        return GrubHome("none", directory)
    place = place_of(directory, mounts if mounts is not None else read_mounts())
    if place.dataset is None:
        return GrubHome("partition", directory, place)
    stub = esp.read_stub(system.root)
    if not in_checkpoint(place.dataset, system):
        return GrubHome("shared", directory, place, stub=stub)
    named = stub_checkpoint(stub, system)
    if named:
        return GrubHome("checkpoint", directory, place, named, stub, "stub")
    return GrubHome(
        "checkpoint", directory, place, recorded or system.current_name, stub, "recorded" if recorded else "running"
    )


def stub_checkpoint(stub: esp.Stub | None, system: ManagedSystem) -> str | None:
    """The checkpoint whose GRUB directory an ESP stub names (``/BOOT/<name>@/grub`` under the
    boot pool's container, ``/ROOT/<name>@/boot/grub`` under the root's), if it names one."""
    dataset = stub.dataset if stub is not None else None
    if not dataset:
        return None
    for container in filter(None, (system.boot_container, system.container)):
        inside = container.partition("/")[2]
        if inside and dataset.startswith(inside + "/"):
            return dataset[len(inside) + 1 :].split("/", 1)[0] or None
    return None


def holder_of(home: GrubHome, system: ManagedSystem) -> str | None:
    """The dataset that holds the GRUB directory GRUB reads (inside checkpoints only): the home
    checkpoint's root or boot twin, where the running one holds it now."""
    if home.where != "checkpoint" or home.place is None or home.place.dataset is None or home.checkpoint is None:
        return None
    current = home.place.dataset
    for mine in (system.dataset, system.boot_dataset):
        if mine and (current == mine or current.startswith(mine + "/")):
            return mine.rsplit("/", 1)[0] + "/" + home.checkpoint + current[len(mine) :]
    return None

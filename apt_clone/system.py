"""The managed system: the root directory given by ``--root`` and the ZFS dataset mounted there."""

from __future__ import annotations

import os

from .errors import NotZfsRoot, Refused
from .record import record

ZFS_FSTYPES = ("zfs", "fuse.zfs")


@record(frozen=True)
class Mount:
    """One line of /proc/self/mountinfo."""

    mount_id: int
    parent_id: int
    mountpoint: str
    fstype: str
    source: str


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo octal.
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 4 <= len(field) and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mountinfo(text: str) -> list[Mount]:
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        lf, rf = left.split(), right.split()
        if len(lf) < 5 or len(rf) < 2:
            continue
        mounts.append(Mount(int(lf[0]), int(lf[1]), _unescape(lf[4]), rf[0], _unescape(rf[1])))
    return mounts


def read_mounts(path: str = "/proc/self/mountinfo") -> list[Mount]:
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        return parse_mountinfo(f.read())


def mounts_under(directory: str, mounts: list[Mount] | None = None) -> list[Mount]:
    """Mounts at or below ``directory``, deepest first (the order to unmount them)."""
    directory = os.path.realpath(directory)
    prefix = directory.rstrip("/") + "/"
    found = [
        m
        for m in (mounts if mounts is not None else read_mounts())
        if m.mountpoint == directory or m.mountpoint.startswith(prefix)
    ]
    return sorted(found, key=lambda m: (m.mountpoint.count("/"), m.mount_id), reverse=True)


def dataset_mounted_at(directory: str, mounts: list[Mount] | None = None) -> str | None:
    """The ZFS dataset mounted at ``directory`` (the topmost mount there), if any."""
    directory = os.path.realpath(directory)
    found = None
    for m in mounts if mounts is not None else read_mounts():
        if m.mountpoint == directory:
            found = m  # later lines are mounted on top
    if found is None or found.fstype not in ZFS_FSTYPES:
        return None
    return found.source


@record(frozen=True)
class ManagedSystem:
    """The system apt-clone manages: its root directory, current dataset and BE container."""

    root: str
    dataset: str
    boot_dataset: str | None = None
    """The boot-pool twin mounted at <root>/boot (``bpool/BOOT/<name>``), if /boot is its own dataset."""

    @property
    def boot_container(self) -> str | None:
        return self.boot_dataset.rsplit("/", 1)[0] if self.boot_dataset else None

    @property
    def container(self) -> str:
        return self.dataset.rsplit("/", 1)[0]

    @property
    def pool(self) -> str:
        return self.dataset.split("/", 1)[0]

    @property
    def current_name(self) -> str:
        return self.dataset.rsplit("/", 1)[1]

    @property
    def is_host_root(self) -> bool:
        return self.root == "/"


def managed_system(root: str = "/", mounts: list[Mount] | None = None) -> ManagedSystem:
    """Find the dataset mounted at ``root``; its parent is the boot-environment container."""
    real = os.path.realpath(root)
    if not os.path.isdir(real):
        raise NotZfsRoot(f"{root}: no such directory")
    mounts = mounts if mounts is not None else read_mounts()  # one read for the root and /boot
    dataset = dataset_mounted_at(real, mounts)
    if dataset is None:
        raise NotZfsRoot(f"{root} is not the mount point of a ZFS dataset: apt-clone manages a root on ZFS")
    if "/" not in dataset:
        raise NotZfsRoot(
            f"{root} is the pool's top dataset {dataset}: boot environments live in a container such as {dataset}/ROOT"
        )
    if "/" not in dataset.rsplit("/", 1)[0]:
        pool = dataset.split("/", 1)[0]
        raise Refused(
            f"{root} is {dataset}, directly under the pool's top dataset: apt-clone keeps boot environments "
            f"in a container of their own (such as {pool}/ROOT/<name>), never beside the pool's other datasets"
        )
    boot = dataset_mounted_at(os.path.join(real, "boot"), mounts)
    if boot is not None and (boot == dataset or boot.startswith(dataset + "/") or "/" not in boot):
        boot = None  # a child of the root, or a pool's top dataset: not a boot-pool twin
    return ManagedSystem(real, dataset, boot)

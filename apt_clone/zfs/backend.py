"""The one interface apt-clone uses to read and change ZFS."""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from .errors import ZfsNotFound, ZfsUnsupported
from .records import Dataset, Pool


class ZfsBackend(abc.ABC):
    """Reads and mutations of datasets and pools.

    Implementations: :class:`~apt_clone.zfs.cli.CliZfs` (both CLI dialects) and
    :class:`~apt_clone.zfs.lzc.LzcZfs` (libzfs_core mutations, CLI reads).
    """

    # --- reads -----------------------------------------------------------------
    @abc.abstractmethod
    def list_tree(self, root: str, user_props: Sequence[str] = ()) -> list[Dataset]:
        """Every filesystem, volume and snapshot under ``root`` (itself included), in one read.

        ``user_props`` names the user properties to read; only locally set values are kept.
        ``root`` first, then the rest by ``createtxg`` (after a promotion a filesystem's
        snapshots are older than the filesystem itself).
        """

    @abc.abstractmethod
    def get(self, name: str, user_props: Sequence[str] = ()) -> Dataset:
        """One dataset or snapshot; raises ZfsNotFound."""

    def get_many(self, names: Sequence[str], user_props: Sequence[str] = ()) -> dict[str, Dataset]:
        """The named datasets and snapshots that exist (none of their descendants), by name, in
        one read: what a command on one checkpoint reads instead of the whole container."""

        out: dict[str, Dataset] = {}
        for name in dict.fromkeys(names):
            try:
                out[name] = self.get(name, user_props)
            except ZfsNotFound:
                pass
        return out

    def filesystems(self, root: str) -> list[str]:
        """``root`` and the filesystems under it, parents first, without reading their snapshots
        (a root with a thousand snapshots costs what one without does); raises ZfsNotFound."""
        return sorted(ds.name for ds in self.list_tree(root) if not ds.is_snapshot)

    def reads_of(self, root: str | None, names: Sequence[str], user_props: Sequence[str] = ()) -> list[list[str]]:
        """The commands :meth:`filesystems` of ``root`` (None: none) and :meth:`get_many` of
        ``names`` run, to start ahead of them (:func:`apt_clone.runner.read_ahead`); none where
        reads run no command."""
        return []

    def snapshots(self, name: str) -> list[str]:
        """The snapshots of one filesystem (not of those under it), oldest first."""
        return [ds.name for ds in self.list_tree(name) if ds.is_snapshot and ds.name.startswith(name + "@")]

    def clones(self, snapshots: Sequence[str]) -> dict[str, list[str]]:
        """The clones of each snapshot (none: an empty list)."""
        out: dict[str, list[str]] = {snap: [] for snap in snapshots}
        for pool in sorted({snap.split("/", 1)[0].split("@", 1)[0] for snap in snapshots}):
            for ds in self.list_tree(pool):
                if ds.origin in out:
                    out[ds.origin].append(ds.name)
        return out

    def exists(self, name: str) -> bool:

        try:
            self.get(name)
        except ZfsNotFound:
            return False
        return True

    def native(self, name: str, props: Sequence[str]) -> dict[str, str | None]:
        """Native properties of one dataset that the records do not carry (``apt-clone check``:
        encryption); None for a value of "-" or a property this ZFS does not know."""
        return dict.fromkeys(props)

    def pool_features(self, pool: str) -> dict[str, str]:
        """A pool's feature flags and their state (enabled, active, disabled); none on a pool
        without feature flags."""
        return {}

    @abc.abstractmethod
    def pool(self, name: str) -> Pool:
        """A pool's size, free space, bootfs and health."""

    @abc.abstractmethod
    def pools(self) -> list[str]:
        """Names of the imported pools."""

    # --- mutations -------------------------------------------------------------
    @abc.abstractmethod
    def create(self, name: str, props: Mapping[str, str] | None = None) -> None: ...

    @abc.abstractmethod
    def snapshot(self, name: str, *, recursive: bool = False, props: Mapping[str, str] | None = None) -> None:
        """Take ``dataset@snap`` (recursively: all descendants at one instant)."""

    @abc.abstractmethod
    def clone(self, snapshot: str, target: str, props: Mapping[str, str] | None = None) -> None: ...

    @abc.abstractmethod
    def promote(self, name: str) -> None: ...

    @abc.abstractmethod
    def destroy(self, name: str, *, recursive: bool = False) -> None:
        """Destroy a dataset or snapshot (never the clones of its snapshots); "busy" is retried
        with a bounded backoff."""

    @abc.abstractmethod
    def rename(self, old: str, new: str) -> None:
        """Rename; a mounted filesystem is unmounted, renamed and mounted again."""

    @abc.abstractmethod
    def rollback(self, snapshot: str, *, destroy_newer: bool = False) -> None: ...

    @abc.abstractmethod
    def set_props(self, name: str, props: Mapping[str, str]) -> None: ...

    @abc.abstractmethod
    def inherit(self, name: str, prop: str) -> None:
        """Clear a local property (the only way to unset a user property)."""

    @abc.abstractmethod
    def mount(self, name: str) -> None: ...

    @abc.abstractmethod
    def unmount(self, name: str) -> None:
        """Unmount one filesystem; "busy" is retried. Never ``-a``."""

    @abc.abstractmethod
    def set_bootfs(self, pool: str, dataset: str | None) -> None: ...

    @property
    def can_diff(self) -> bool:
        """Whether :meth:`diff` works here."""
        return False

    def diff(self, snapshot: str, target: str) -> list[tuple[str, str, str | None]]:
        """The files changed from ``snapshot`` to ``target`` (a later snapshot, or a filesystem
        descending from it), as ``zfs diff -H`` gives them: (``M``/``+``/``-``/``R``, path, the
        new path of a rename); paths start with the mountpoint. Both must be mounted."""
        raise ZfsUnsupported("not supported by this ZFS (no 'zfs diff')")

    @abc.abstractmethod
    def mount_at(self, name: str, directory: str, *, readonly: bool = False) -> None:
        """Mount a filesystem at ``directory`` whatever its mountpoint property says (``readonly``:
        mounted read-only)."""

    @abc.abstractmethod
    def unmount_at(self, name: str, directory: str, *, restore: bool = True) -> None:
        """Undo :meth:`mount_at`; ``restore=False`` leaves a changed mountpoint property (and
        its marker) as it is, for a dataset about to be destroyed (on a full pool no property
        can be set)."""

    @contextmanager
    def mounted_at(self, name: str, directory: str) -> Iterator[str]:
        """Context manager around :meth:`mount_at` / :meth:`unmount_at`."""
        self.mount_at(name, directory)
        try:
            yield directory
        finally:
            self.unmount_at(name, directory)

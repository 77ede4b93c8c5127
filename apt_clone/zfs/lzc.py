"""Mutations through libzfs_core (pyzfs) on kernel OpenZFS; reads stay on the CLI.

pyzfs cannot list, read or set properties, and it needs ``/dev/zfs``: listing, ``zfs set``,
mounting and ``zpool set bootfs`` go through :class:`CliZfs`. All names passed to
libzfs_core are ``bytes``.
"""

from __future__ import annotations

import errno
import importlib
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from ..runner import DEFAULT_RUNNER, Runner
from . import props as zprops
from .cli import OPENZFS, CliZfs, RetryPolicy
from .errors import (
    ZfsBusy,
    ZfsError,
    ZfsExists,
    ZfsHasChildren,
    ZfsHasDependentClones,
    ZfsInvalid,
    ZfsNotFound,
    ZfsOutOfSpace,
    ZfsPermission,
    ZfsUnavailable,
)

# pyzfs exception class names -> our typed errors.
_BY_CLASS: dict[str, type[ZfsError]] = {
    "DatasetNotFound": ZfsNotFound,
    "FilesystemNotFound": ZfsNotFound,
    "SnapshotNotFound": ZfsNotFound,
    "PoolNotFound": ZfsNotFound,
    "DatasetExists": ZfsExists,
    "FilesystemExists": ZfsExists,
    "SnapshotExists": ZfsExists,
    "DatasetBusy": ZfsBusy,
    "SnapshotIsCloned": ZfsHasDependentClones,
    "SnapshotIsHeld": ZfsBusy,
    "FilesystemHasChildren": ZfsHasChildren,
    "NoSpace": ZfsOutOfSpace,
    "PropertyInvalid": ZfsInvalid,
    "NameInvalid": ZfsInvalid,
    "NameTooLong": ZfsInvalid,
    "PermissionDenied": ZfsPermission,
}

_BY_ERRNO: dict[int, type[ZfsError]] = {
    errno.ENOENT: ZfsNotFound,
    errno.EEXIST: ZfsExists,
    errno.EBUSY: ZfsBusy,
    errno.ENOSPC: ZfsOutOfSpace,
    errno.EPERM: ZfsPermission,
    errno.EACCES: ZfsPermission,
    errno.EINVAL: ZfsInvalid,
}


def map_lzc_error(exc: BaseException, what: str) -> ZfsError:
    """A typed error for an exception raised by libzfs_core."""
    # SnapshotFailure / MultipleSnapshotsFailure wrap a list of errors: report the first.
    inner = getattr(exc, "errors", None)
    if inner:
        return map_lzc_error(inner[0], what)
    cls = _BY_CLASS.get(type(exc).__name__)
    if cls is None:
        cls = _BY_ERRNO.get(getattr(exc, "errno", -1) or -1, ZfsError)
    detail = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return cls(f"{what}: {detail}")


def _b(name: str) -> bytes:
    return name.encode("utf-8")


def _user_props(props: Mapping[str, str] | None) -> tuple[dict[bytes, bytes], dict[str, str]]:
    """Split into user properties (libzfs_core takes them) and native ones (set after, by CLI)."""
    user: dict[bytes, bytes] = {}
    native: dict[str, str] = {}
    for prop, value in (props or {}).items():
        if ":" in prop:
            user[_b(prop)] = _b(zprops.validate_value(prop, value))
        else:
            native[prop] = value
    return user, native


class LazyModule:
    """A module imported when first used: pyzfs builds its cffi bindings as it loads (seconds
    under emulation), and the commands that only read (the listing, the boot-time ones) never need it."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        if self._module is None:
            try:
                self._module = importlib.import_module(self._name)
            except ImportError as exc:
                raise ZfsUnavailable(f"{self._name} (python3-pyzfs) cannot be loaded: {exc}") from exc
        return getattr(self._module, attr)


class LzcZfs(CliZfs):
    """CLI reads plus libzfs_core snapshot, clone, promote, destroy and rename."""

    def __init__(
        self,
        lzc: ModuleType | Any,
        runner: Runner = DEFAULT_RUNNER,
        retry: RetryPolicy | None = None,
    ) -> None:
        super().__init__(runner, dialect=OPENZFS, retry=retry)
        self.lzc = lzc

    def _call(self, what: str, fn: str, *args: Any) -> bool:
        """Call libzfs_core; False when this pyzfs does not implement it (the CLI does it then)."""
        try:
            getattr(self.lzc, fn)(*args)
            return True
        except NotImplementedError:
            return False
        except ZfsError:
            raise
        except Exception as exc:  # pyzfs raises its own exception hierarchy
            raise map_lzc_error(exc, what) from exc

    def snapshot(self, name: str, *, recursive: bool = False, props: Mapping[str, str] | None = None) -> None:
        if "@" not in name:
            raise ZfsError(f"not a snapshot name: {name}")
        user, native = _user_props(props)
        if native:
            raise ZfsInvalid(f"cannot snapshot '{name}': snapshots take user properties only")
        names = [name]
        if recursive:
            fs, snap = name.split("@", 1)
            names = [f"{ds.name}@{snap}" for ds in self.list_tree(fs) if not ds.is_snapshot]
        # One lzc_snapshot call is atomic across all the datasets.
        if not self._call(f"cannot create snapshot '{name}'", "lzc_snapshot", [_b(n) for n in names], user):
            super().snapshot(name, recursive=recursive, props=props)

    def clone(self, snapshot: str, target: str, props: Mapping[str, str] | None = None) -> None:
        user, native = _user_props(props)
        if not self._call(f"cannot create '{target}'", "lzc_clone", _b(target), _b(snapshot), user):
            super().clone(snapshot, target, props)
            return
        if native:
            try:
                self.set_props(target, native)
            except ZfsError:
                self.destroy(target)
                raise

    def promote(self, name: str) -> None:
        if not self._call(f"cannot promote '{name}'", "lzc_promote", _b(name)):
            super().promote(name)

    def destroy(self, name: str, *, recursive: bool = False) -> None:
        if recursive:
            super().destroy(name, recursive=recursive)
            return
        try:
            if "@" in name:
                done = self._call(f"cannot destroy '{name}'", "lzc_destroy_snaps", [_b(name)], False)
            else:
                done = self._call(f"cannot destroy '{name}'", "lzc_destroy", _b(name))
        except ZfsError:
            # libzfs_core's errno says less than zfs does (a filesystem with snapshots is only
            # "busy" to it): let the CLI retry, and succeed or say exactly why not.
            done = False
        if not done:
            super().destroy(name)

    def rename(self, old: str, new: str) -> None:
        if "@" in old or any(ds.mounted for ds in self.list_tree(old)):
            # Mounted trees and snapshots: the CLI handles unmount/remount.
            super().rename(old, new)
            return
        if not self._call(f"cannot rename '{old}'", "lzc_rename", _b(old), _b(new)):
            super().rename(old, new)

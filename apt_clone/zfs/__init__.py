"""apt-clone's ZFS layer: one interface (:class:`ZfsBackend`), two backends."""

from __future__ import annotations

import os

from ..paths import test_setting
from ..runner import DEFAULT_RUNNER, Runner
from .backend import ZfsBackend
from .cli import OPENZFS, ZFS_FUSE, CliZfs, RetryPolicy
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
    ZfsUnsupported,
)
from .records import Dataset, Pool

BACKEND_ENV = "APT_CLONE_ZFS_BACKEND"
"""``cli`` or ``lzc`` forces a backend; unset picks libzfs_core when it can work."""


def open_backend(runner: Runner = DEFAULT_RUNNER) -> ZfsBackend:
    """The best backend for this machine."""
    choice = test_setting(BACKEND_ENV) or "auto"
    if choice == "cli":
        return CliZfs(runner)
    if os.path.exists("/dev/zfs") or choice == "lzc":
        import importlib.util  # where kernel ZFS is only (zfs-fuse has no /dev/zfs): 1 ms of the hook's start-up

        if importlib.util.find_spec("libzfs_core") is not None:
            from .lzc import LazyModule, LzcZfs  # libzfs_core's binding only where /dev/zfs is

            return LzcZfs(LazyModule("libzfs_core"), runner)
        if choice == "lzc":
            raise ZfsUnavailable("libzfs_core (python3-pyzfs) is not installed")
    return CliZfs(runner)


__all__ = [
    "OPENZFS",
    "ZFS_FUSE",
    "CliZfs",
    "Dataset",
    "Pool",
    "RetryPolicy",
    "ZfsBackend",
    "ZfsBusy",
    "ZfsError",
    "ZfsExists",
    "ZfsHasChildren",
    "ZfsHasDependentClones",
    "ZfsInvalid",
    "ZfsNotFound",
    "ZfsOutOfSpace",
    "ZfsPermission",
    "ZfsUnavailable",
    "ZfsUnsupported",
    "open_backend",
]

"""Typed ZFS errors carrying zfs's own message, and the mapping from its stderr."""

from __future__ import annotations

from ..errors import AptCloneError, OperationFailed, Refused, UsageError


class ZfsError(OperationFailed):
    """A zfs or zpool command failed; ``message`` is zfs's own words."""


class ZfsNotFound(ZfsError, UsageError):
    """The dataset, snapshot or pool does not exist."""

    exit_code = UsageError.exit_code


class ZfsBusy(ZfsError):
    """The dataset is busy (mounted, or in use)."""


class ZfsExists(ZfsError):
    """The dataset already exists."""


class ZfsHasChildren(ZfsError):
    """The dataset has children (snapshots or filesystems)."""


class ZfsHasDependentClones(ZfsError):
    """A snapshot has clones that depend on it."""


class ZfsOutOfSpace(ZfsError):
    """The pool is out of space."""


class ZfsPermission(ZfsError, Refused):
    """Permission denied: zfs needs root."""

    exit_code = Refused.exit_code


class ZfsUnavailable(ZfsError):
    """No ZFS: the daemon is not running or the kernel module is not loaded."""


class ZfsUnsupported(ZfsError, Refused):
    """This ZFS cannot do it (zfs-fuse has no ``zfs diff``)."""


class ZfsInvalid(ZfsError, UsageError):
    """zfs refused an argument (a bad name or property value)."""

    exit_code = UsageError.exit_code


# Ordered: the first pattern found in stderr (lower-cased) decides the class.
_PATTERNS: tuple[tuple[str, type[ZfsError]], ...] = (
    ("permission denied", ZfsPermission),
    ("must be superuser", ZfsPermission),
    ("operation not permitted", ZfsPermission),
    ("failed to initialize zfs library", ZfsUnavailable),
    ("the zfs modules are not loaded", ZfsUnavailable),
    ("/dev/zfs", ZfsUnavailable),
    ("transport endpoint is not connected", ZfsUnavailable),
    ("has dependent clones", ZfsHasDependentClones),
    ("snapshot is cloned", ZfsHasDependentClones),
    ("has children", ZfsHasChildren),
    ("already exists", ZfsExists),
    ("is busy", ZfsBusy),
    ("device busy", ZfsBusy),
    ("out of space", ZfsOutOfSpace),
    ("no space left", ZfsOutOfSpace),
    ("greater than available space", ZfsOutOfSpace),
    ("does not exist", ZfsNotFound),
    ("no such pool", ZfsNotFound),
    ("no such dataset", ZfsNotFound),
    ("could not find any snapshots", ZfsNotFound),
    ("invalid", ZfsInvalid),
    ("bad property", ZfsInvalid),
)


def classify(stderr: str) -> type[ZfsError]:
    """The error class for a zfs/zpool stderr text."""
    low = stderr.lower()
    for pattern, cls in _PATTERNS:
        if pattern in low:
            return cls
    return ZfsError


def error_from(stderr: str, fallback: str) -> ZfsError:
    """A typed error whose message is zfs's first meaningful line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    message = lines[0] if lines else fallback
    if len(lines) > 1 and not lines[1].startswith("use '") and not lines[1].startswith("usage:"):
        message = f"{message} ({lines[1]})"
    cls = classify(stderr)
    if cls is ZfsUnavailable:
        message += ": is the ZFS module loaded (or the zfs-fuse daemon running)?"
    elif cls is ZfsPermission:
        message += ": apt-clone needs root privileges for ZFS"
    return cls(message)


__all__ = [
    "AptCloneError",
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
    "classify",
    "error_from",
]

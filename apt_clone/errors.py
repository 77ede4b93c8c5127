"""Typed errors with a user-facing message and an exit code.

Exit codes: 0 ok, 1 the operation failed, 2 bad usage or input, 3 refused by a safety rule.
"""

from __future__ import annotations

import os

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3
EXIT_RISKS = 4
"""``apt-clone check`` reported a risk: something that can leave the host unbootable or lose data."""


class AptCloneError(Exception):
    """Base of every error apt-clone reports to its user as one line."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class OperationFailed(AptCloneError):
    """The operation was attempted and failed."""


class Unfinished(OperationFailed):
    """The operation failed after its point of no return: ``apt-clone recover`` completes it."""


class UsageError(AptCloneError):
    """Bad input: a name, a title, an option."""

    exit_code = EXIT_USAGE


class Refused(AptCloneError):
    """A safety rule refused the operation; nothing was changed."""

    exit_code = EXIT_REFUSED


class Untrusted(Refused):
    """A file or directory another user could change (or a link): root does not use it."""

    def __init__(self, path: str, why: str) -> None:
        super().__init__(f"{path} {why}: not trusted")
        self.path, self.why = path, why


class NoSpace(Refused):
    """Too little free space for the change; ``prunable``: how many checkpoints prune would
    remove to make room (0: prune cannot help)."""

    def __init__(self, message: str, prunable: int = 0) -> None:
        super().__init__(message)
        self.prunable = prunable


class NotRoot(Refused):
    """The command needs root privileges."""


class NotFound(UsageError):
    """A checkpoint or other named object does not exist."""


class LockHeld(Refused):
    """Another process holds a lock apt-clone needs."""


class NotZfsRoot(UsageError):
    """The managed root directory is not a mounted ZFS dataset."""


def require_root() -> None:
    if os.geteuid() != 0:
        raise NotRoot("this command needs root privileges (run it with sudo)")


EXIT_INTERRUPTED = 130

"""mount(2) and umount2(2) through the C library: the five mounts a chroot needs, each way,
without a mount(8) process apiece (ten per chroot; an apt operation sets up two or three).
Traced like the runner's commands (``APT_CLONE_TRACE=1``)."""

from __future__ import annotations

import os
import time

from .record import record
from .runner import trace

TYPE_CHECKING = False  # mypy knows the name
if TYPE_CHECKING:
    import ctypes

MS_NOSUID, MS_NODEV, MS_BIND = 2, 4, 4096
MNT_DETACH = 2


@record(frozen=True)
class Mount:
    """One mount: what, of which type, with which flags and options."""

    source: str
    fstype: str | None = None
    flags: int = 0
    data: str | None = None

    def describe(self, target: str) -> str:
        if self.flags & MS_BIND:
            return f"mount --bind {self.source} {target}"
        return f"mount -t {self.fstype} {self.source} {target}"


_libc: ctypes.CDLL | None = None


def _c() -> ctypes.CDLL:
    """libc, loaded by the first mount or unmount."""
    # ctypes (with tempfile, for find_library) only when something is mounted: 2 ms of every start
    import ctypes.util

    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return _libc


def _enc(text: str | None) -> bytes | None:
    return None if text is None else os.fsencode(text)


def mount(spec: Mount, target: str) -> None:
    """Mount ``spec`` at ``target``; raises OSError with the kernel's reason."""
    import ctypes  # only when something is mounted (see _c)

    started = time.monotonic()
    rc = _c().mount(_enc(spec.source), _enc(target), _enc(spec.fstype), ctypes.c_ulong(spec.flags), _enc(spec.data))
    errno = ctypes.get_errno() if rc != 0 else 0
    trace(spec.describe(target), started, errno)
    if rc != 0:
        raise OSError(errno, f"{spec.describe(target)}: {os.strerror(errno)}")


def umount(target: str, *, lazy: bool = False) -> None:
    """Unmount ``target`` (``lazy``: detach it now, as ``umount -l``); raises OSError."""
    import ctypes  # only when something is mounted (see _c)

    started = time.monotonic()
    rc = _c().umount2(_enc(target), ctypes.c_int(MNT_DETACH if lazy else 0))
    errno = ctypes.get_errno() if rc != 0 else 0
    trace(f"umount {'-l ' if lazy else ''}{target}", started, errno)
    if rc != 0:
        raise OSError(errno, f"umount {target}: {os.strerror(errno)}")

"""One lock for every mutating apt-clone command, naming its holder when it is taken.

It lives in apt-clone's run directory (``/run/apt-clone/lock``), which only root can write: no
other user can create it first, hold it, link it elsewhere or choose the holder text root reads.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .errors import AptCloneError, LockHeld
from .paths import open_private, run_dir, secure_dir
from .signals import shielded

MAX_HOLDER = 300


def lock_path() -> str:
    return os.path.join(run_dir(), "lock")


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in text)[:MAX_HOLDER]


def describe_holder(fd: int) -> str:
    """The holder's record, checked field by field and printable (never raw bytes to a terminal)."""
    import json  # a held lock's record: off -l's start-up (it takes no lock)

    try:
        info = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
        pid, command, since = info["pid"], info["command"], info["since"]
        if not isinstance(pid, int) or not isinstance(command, str) or not isinstance(since, str):
            raise ValueError("bad holder record")
        dt.datetime.fromisoformat(since)
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError):
        return "unknown holder"
    return f"pid {pid}, '{_printable(command)}', since {_printable(since)}"


_held = [0]
_on_release: list[Callable[[], None]] = []


def held() -> bool:
    """Whether this process holds the apt-clone lock (what may mount or write for a command)."""
    return _held[0] > 0


def on_release(callback: Callable[[], None]) -> None:
    """Run ``callback`` before the lock is let go (what a command mounted for itself is undone
    while no other apt-clone can see it)."""
    _on_release.append(callback)


_early: list[int] = []


def take_early() -> bool:
    """Take the lock now, without waiting, for the :func:`exclusive` this process enters next
    (it holds it from here: what is read meanwhile stays true). False when another holds it."""
    if _early:
        return True
    try:
        path = lock_path()
        secure_dir(os.path.dirname(path))
        fd = open_private(path, os.O_RDWR | os.O_CREAT)
    except (OSError, AptCloneError):
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    _early.append(fd)
    return True


@contextmanager
def exclusive(command: str | None = None, *, wait: float = 0.0) -> Iterator[None]:
    """Hold the apt-clone lock, or fail with a message naming the holder.

    ``wait``: seconds to wait for a holder to finish (readers that mount a checkpoint wait
    briefly); 0 fails at once."""
    taken = bool(_early)
    if taken:
        fd = _early.pop()  # take_early's: held already
    else:
        path = lock_path()
        secure_dir(os.path.dirname(path))
        fd = open_private(path, os.O_RDWR | os.O_CREAT)
    try:
        deadline = time.monotonic() + wait
        while not taken:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                taken = True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockHeld(f"another apt-clone is running ({describe_holder(fd)})") from None
                time.sleep(0.1)
        info = {
            "pid": os.getpid(),
            "command": command or " ".join(["apt-clone", *sys.argv[1:]]),
            "since": dt.datetime.now().astimezone().replace(microsecond=0).isoformat(),
        }
        import json  # the lock's record: off -l's start-up (it takes no lock)

        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode("utf-8", "backslashreplace"), 0)
        os.fsync(fd)
        _held[0] += 1
        try:
            yield
        finally:
            _held[0] -= 1
            if not _held[0]:
                with shielded():
                    while _on_release:
                        _on_release.pop()()
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)

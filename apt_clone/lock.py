"""One lock for every mutating apt-clone command, naming its holder when it is taken."""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import LockHeld

LOCK_DIR_ENV = "APT_CLONE_LOCK_DIR"


def lock_path() -> str:
    return os.path.join(os.environ.get(LOCK_DIR_ENV, "/run/lock"), "apt-clone.lock")


def describe_holder(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            info = json.load(f)
        return f"pid {info['pid']}, '{info['command']}', since {info['since']}"
    except (OSError, ValueError, KeyError):
        return "unknown holder"


@contextmanager
def exclusive(command: str | None = None) -> Iterator[None]:
    """Hold the apt-clone lock or fail at once with a message naming the holder."""
    path = lock_path()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockHeld(f"another apt-clone is running ({describe_holder(path)})") from None
        info = {
            "pid": os.getpid(),
            "command": command or " ".join(["apt-clone", *sys.argv[1:]]),
            "since": dt.datetime.now().astimezone().replace(microsecond=0).isoformat(),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        os.fsync(fd)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)

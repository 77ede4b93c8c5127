"""The reads the next checkpoint starts with, remembered by the last one and started by the APT
hook before its modules load.

Making a checkpoint starts with one read of the running root's family
(:func:`apt_clone.checkpoints.services.read_family`), whose commands the checkpoint made before
it knows (the same running root, and the name after its own). It leaves them in the run directory
(:data:`FILE`, which only root can write); ``hook-pre`` takes the apt-clone lock at once and
starts them, so they run while Python loads the rest, and :meth:`apt_clone.runner.Runner.run`
hands their result to the read that asks for the same command. Under the lock, nothing changes
what they read before it is used. The file is used once; a command nothing asks for (another
name was needed, the hook is off) is left to end by itself.
"""

from __future__ import annotations

import os

from .errors import AptCloneError
from .paths import open_private, run_dir, write_atomic

FILE = "read-ahead"
READS = (("zfs", "list"), ("zfs", "get"))
"""What may be read ahead: the two ZFS commands that only read."""
MOST = 4
"""Commands at most in one file (a family's read is two)."""
MAX_SIZE = 64 << 10


def _path() -> str:
    return os.path.join(run_dir(), FILE)


def _is_read(argv: list[str]) -> bool:
    return tuple(argv[:2]) in READS


def remember(argvs: list[list[str]]) -> None:
    """Leave ``argvs`` for the next ``hook-pre`` to start (best effort: without them it reads
    when asked). Nothing is left for a command it may not start."""
    lines = []
    for argv in argvs[:MOST]:
        if not _is_read(argv) or any("\0" in a or "\n" in a for a in argv):
            return
        lines.append("\0".join(argv) + "\n")
    try:
        if lines:
            write_atomic(_path(), "".join(lines), durable=False)
        else:
            forget()
    except (OSError, AptCloneError):
        pass


def forget() -> None:
    try:
        os.unlink(_path())
    except FileNotFoundError:
        pass


def remembered() -> list[list[str]]:
    """The commands left by the last checkpoint, each a read (none: no file, or one not to
    trust); the file is gone after."""
    try:
        fd = open_private(_path(), os.O_RDONLY)
    except (OSError, AptCloneError):
        return []
    with os.fdopen(fd, "rb") as f:
        data = f.read(MAX_SIZE + 1)
    try:
        forget()
    except OSError:
        return []  # left for another time, never started twice
    if len(data) > MAX_SIZE:
        return []
    argvs = [line.decode("utf-8", "replace").split("\0") for line in data.splitlines()[:MOST]]
    return [argv for argv in argvs if _is_read(argv)]


def start() -> bool:
    """Take the lock and start the remembered reads (:func:`apt_clone.runner.read_ahead`);
    False when there are none, or another apt-clone holds the lock (then nothing starts)."""
    argvs = remembered()
    if not argvs:
        return False
    # the lock and the runner only when there is something to start: a hook call without a
    # file (a later dpkg run of the same apt) loads neither before it knows it needs them
    from .lock import take_early
    from .runner import read_ahead

    if not take_early():
        return False
    read_ahead(argvs)
    return True

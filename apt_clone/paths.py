"""apt-clone's own directories, and the check that only root can change what is in them.

Two settings: the state directory (``/var/lib/apt-clone``, ``$APT_CLONE_STATE_DIR``: the durable
journal) and the run directory (``/run/apt-clone``, ``$APT_CLONE_RUN_DIR``: the lock, the
journal's copy that no rollback touches, and the mount points of checkpoints being worked on).
Root runs apt-clone, so every path it opens there is checked first: no link followed, no
directory on the way that another user could change.
"""

from __future__ import annotations

import os
import stat

from .errors import Refused

STATE_DIR_ENV = "APT_CLONE_STATE_DIR"
RUN_DIR_ENV = "APT_CLONE_RUN_DIR"


def state_dir() -> str:
    return os.environ.get(STATE_DIR_ENV, "/var/lib/apt-clone")


def run_dir() -> str:
    return os.environ.get(RUN_DIR_ENV, "/run/apt-clone")


def mount_base() -> str:
    """Where checkpoints are mounted while apt-clone works in them."""
    return os.path.join(run_dir(), "mnt")


def _unsafe(path: str, st: os.stat_result, euid: int) -> str | None:
    """Why another user could change what ``path`` holds, or None."""
    if stat.S_ISLNK(st.st_mode):
        return "is a symbolic link"
    if not stat.S_ISDIR(st.st_mode):
        return "is not a directory"
    if st.st_uid not in (0, euid):
        return f"is owned by uid {st.st_uid}"
    return None


def secure_dir(path: str, mode: int = 0o700, *, create: bool = True) -> str:
    """Make ``path`` (mode ``mode``) if missing and check it and every directory above it.

    Each must be a real directory owned by root, and none but the sticky /tmp-like ones may be
    writable by group or others: what apt-clone opens there no other user can replace.
    Refused otherwise (nothing is created below an unsafe directory); ``create=False``:
    FileNotFoundError for a missing one."""
    path = os.path.abspath(path)
    euid = os.geteuid()
    parts = [p for p in path.split("/") if p]
    current = "/"
    for i, part in enumerate(parts):
        current = os.path.join(current, part)
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            if not create:
                raise
            try:
                os.mkdir(current, mode if i == len(parts) - 1 else 0o755)
            except FileExistsError:
                pass
            st = os.lstat(current)
        why = _unsafe(current, st, euid)
        last = i == len(parts) - 1
        # a sticky directory (/tmp) on the way is fine: the entry below it must be root's
        if why is None and st.st_mode & 0o022 and (last or not st.st_mode & stat.S_ISVTX):
            why = f"is writable by other users (mode {stat.S_IMODE(st.st_mode):o})"
        if why:
            raise Refused(
                f"unsafe directory {current}: it {why}; apt-clone keeps its state only where root alone writes"
            )
    return path


def open_private(path: str, flags: int, mode: int = 0o600) -> int:
    """Open a file of ours in a checked directory: no link followed, a regular file of root's."""
    fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid not in (0, os.geteuid()) or st.st_nlink != 1:
            raise Refused(f"unsafe file {path}: not a regular file of root's with one link")
    except BaseException:
        os.close(fd)
        raise
    return fd


def boot_id() -> str | None:
    """This boot's id (the kernel's random boot_id), None where there is no /proc."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return None


def write_atomic(path: str, data: str | bytes, *, durable: bool) -> None:
    """Replace ``path`` atomically (write, fsync, rename, fsync the directory when durable)."""
    directory = os.path.dirname(path)
    secure_dir(directory)
    tmp = path + ".tmp"
    if os.path.lexists(tmp):
        os.unlink(tmp)  # a crashed write's
    fd = open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise
    if durable:
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def in_chroot(proc_root: str = "/proc/1/root") -> bool:
    """Whether this process runs in a chroot (its / is not init's), as debianutils' ischroot
    tells; unknown (no /proc, no right to look) counts as a chroot: no checkpoint then."""
    try:
        mine, init = os.stat("/"), os.stat(proc_root + "/")
    except OSError:
        return True
    return (mine.st_dev, mine.st_ino) != (init.st_dev, init.st_ino)

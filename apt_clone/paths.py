"""apt-clone's own directories, and the check that only root can change what is in them.

Two settings: the state directory (``/var/lib/apt-clone``, ``$APT_CLONE_STATE_DIR``: the durable
journal) and the run directory (``/run/apt-clone``, ``$APT_CLONE_RUN_DIR``: the lock, the
journal's copy that no rollback touches, and the mount points of checkpoints being worked on).
Root runs apt-clone, so every path it opens there is checked first: no link followed, no
directory on the way that another user could change.
"""

from __future__ import annotations

import errno
import os
import stat

from .errors import Refused, Untrusted

STATE_DIR_ENV = "APT_CLONE_STATE_DIR"
RUN_DIR_ENV = "APT_CLONE_RUN_DIR"
HOOK_GUARD_ENV = "APT_CLONE_ACTIVE"
"""Set in the environment of every apt apt-clone runs: its own hooks stay silent there."""

PACKAGED = os.path.abspath(__file__).startswith("/usr/lib/python3/")
"""apt-clone as the Debian package installs it (see :func:`test_setting`)."""


def test_setting(name: str) -> str | None:
    """A test-only environment variable (another state, run or configuration path, a fault to
    inject, a ZFS backend to force): inert in the installed package run by root, where an
    environment variable alone must never change what apt-clone does."""
    if PACKAGED and os.geteuid() == 0:
        return None
    return os.environ.get(name)


def state_dir() -> str:
    return test_setting(STATE_DIR_ENV) or "/var/lib/apt-clone"


def run_dir() -> str:
    return test_setting(RUN_DIR_ENV) or "/run/apt-clone"


def mount_base() -> str:
    """Where checkpoints are mounted while apt-clone works in them."""
    return os.path.join(run_dir(), "mnt")


def _unsafe(path: str, st: os.stat_result, euid: int, last: bool = True) -> str | None:
    """Why another user could change what directory ``path`` holds, or None (a sticky one such
    as /tmp is fine on the way: the entry below it must be root's)."""
    if stat.S_ISLNK(st.st_mode):
        return "is a symbolic link"
    if not stat.S_ISDIR(st.st_mode):
        return "is not a directory"
    if st.st_uid not in (0, euid):
        return f"is owned by uid {st.st_uid}"
    if st.st_mode & 0o022 and (last or not st.st_mode & stat.S_ISVTX):
        return f"is writable by other users (mode {stat.S_IMODE(st.st_mode):o})"
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
        why = _unsafe(current, st, euid, i == len(parts) - 1)
        if why:
            raise Refused(
                f"unsafe directory {current}: it {why}; apt-clone keeps its state only where root alone writes"
            )
    return path


def open_trusted_dir(path: str) -> int:
    """A descriptor of directory ``path`` reached from ``/`` one name at a time, never through a
    link, every directory on the way root's and writable by no other user (a sticky one above
    the last excepted): what root then reads or runs from it no other user could have put
    there. Refused (naming the directory) otherwise; FileNotFoundError when a part is missing."""
    euid = os.geteuid()
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    parts = [p for p in os.path.abspath(path).split("/") if p]
    fd = os.open("/", flags)
    current = "/"
    try:
        for i in range(len(parts) + 1):
            if i:
                current = os.path.join(current, parts[i - 1])
                try:
                    below = os.open(parts[i - 1], flags, dir_fd=fd)
                except OSError as exc:
                    if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                        raise
                    raise Untrusted(current, "is a symbolic link or not a directory") from None
                os.close(fd)
                fd = below
            why = _unsafe(current, os.fstat(fd), euid, i == len(parts))
            if why:
                raise Untrusted(current, why)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_trusted_file(path: str) -> int:
    """A descriptor of regular file ``path`` that only root can change (see
    :func:`open_trusted_dir` for the directories above it): never a link, and opened without
    blocking, so a FIFO or a device in its place is refused, never waited on or read."""
    parent = open_trusted_dir(os.path.dirname(os.path.abspath(path)))
    try:
        fd = open_trusted_entry(parent, os.path.basename(path), path)
    finally:
        os.close(parent)
    return fd


def open_trusted_entry(parent: int, name: str, path: str) -> int:
    """File ``name`` of trusted directory ``parent`` (``path``: what a refusal calls it), as
    :func:`open_trusted_file` opens it. What is not a regular file is never opened."""
    st = os.stat(name, dir_fd=parent, follow_symlinks=False)
    why = _file_unsafe(st)
    if why:
        raise Untrusted(path, why)
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=parent)
    try:
        now = os.fstat(fd)
        why = _file_unsafe(now) or (None if (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino) else "was replaced")
        if why:
            raise Untrusted(path, why)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _file_unsafe(st: os.stat_result) -> str | None:
    if stat.S_ISLNK(st.st_mode):
        return "is a symbolic link"
    if not stat.S_ISREG(st.st_mode):
        return "is not a regular file"
    if st.st_uid not in (0, os.geteuid()):
        return f"is owned by uid {st.st_uid}"
    if st.st_mode & 0o022:
        return "is writable by other users"
    return None


def open_private(path: str, flags: int, mode: int = 0o600) -> int:
    """Open a file of ours in a checked directory: no link followed, a regular file of root's
    (opened without blocking: a FIFO put in its place is refused, never waited on)."""
    fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, mode)
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

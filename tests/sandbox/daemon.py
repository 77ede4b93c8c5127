"""The zfs-fuse daemon, for machines without kernel ZFS.

Reuse the daemon that runs, or start one; stop it only if we started it and no pool is left.
Never an ``-a`` operation: other pools of the same daemon are not ours to touch.
"""

from __future__ import annotations

import os
import signal
import time

from apt_clone.errors import OperationFailed
from apt_clone.runner import DEFAULT_RUNNER, CommandNotFound, Runner
from apt_clone.system import read_mounts

PIDFILE = "/var/run/zfs-fuse.pid"


def kernel_zfs() -> bool:
    return os.path.exists("/dev/zfs") or os.path.isdir("/sys/module/zfs")


def responding(runner: Runner = DEFAULT_RUNNER) -> bool:
    try:
        return runner.run(["zpool", "list", "-H", "-o", "name"], timeout=30).ok
    except CommandNotFound:
        return False


def daemon_pid() -> int | None:
    """The running zfs-fuse daemon's pid (from its pidfile, else from /proc)."""
    try:
        with open(PIDFILE, encoding="ascii") as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return _pid_from_proc()
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    return pid


def _pid_from_proc() -> int | None:
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                stat = f.read()
        except OSError:
            continue
        comm_end = stat.rfind(")")
        if stat[stat.find("(") + 1 : comm_end] == "zfs-fuse" and stat[comm_end + 2 : comm_end + 3] not in ("Z", "X"):
            return int(entry)
    return None


def clear_stale_mounts(runner: Runner = DEFAULT_RUNNER) -> None:
    """Detach FUSE mounts of a daemon that died ("Transport endpoint is not connected").

    With no daemon running every zfs-fuse mount is dead, even one whose ``stat`` still answers
    from the kernel's attribute cache (a root mounted before the daemon was killed does); with
    one running, a mount is dead when ``statvfs``, which always asks the daemon, fails. Deepest
    first, so that a dead root does not hide the mounts below it."""
    alive = daemon_pid() is not None
    for mount in reversed(read_mounts()):
        if mount.fstype != "fuse.zfs":
            continue
        if alive:
            try:
                os.statvfs(mount.mountpoint)
                continue
            except OSError:
                pass
        runner.run(["umount", "-l", mount.mountpoint])


def ensure_running(runner: Runner = DEFAULT_RUNNER, timeout: float = 30.0) -> bool:
    """Make sure ZFS answers; returns True if this call started the zfs-fuse daemon."""
    if kernel_zfs() or responding(runner):
        return False
    if daemon_pid() is not None:
        # A daemon starting up or shutting down (that takes seconds): wait for either.
        deadline = time.monotonic() + timeout
        while daemon_pid() is not None and time.monotonic() < deadline:
            if responding(runner):
                return False
            time.sleep(0.1)
    clear_stale_mounts(runner)
    if daemon_pid() is None and os.path.exists(PIDFILE):
        os.unlink(PIDFILE)  # a stale pidfile makes zfs-fuse refuse to start
    try:
        started = runner.run(["zfs-fuse", "--pidfile", PIDFILE, "--no-kstat-mount"])
    except CommandNotFound as exc:
        raise OperationFailed("zfs-fuse is not installed (run 'make setup')") from exc
    if not started.ok and not responding(runner):
        raise OperationFailed(f"zfs-fuse failed to start: {started.error_line()}")
    # The daemon forks before it serves: wait for its first answer (~70 ms).
    deadline = time.monotonic() + timeout
    while not responding(runner):
        if time.monotonic() > deadline:
            raise OperationFailed("zfs-fuse started but does not answer 'zpool list'")
        time.sleep(0.05)
    return True


def stop_if_idle(runner: Runner = DEFAULT_RUNNER) -> bool:
    """Stop the daemon if it serves no pool; returns True if it was stopped."""
    if kernel_zfs():
        return False
    result = runner.run(["zpool", "list", "-H", "-o", "name"])
    if not result.ok or result.stdout.strip():
        return False
    pid = daemon_pid()
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False

"""Running apt-get on the managed system: directly on the host root, or chrooted into a root."""

from __future__ import annotations

import fcntl
import os
import signal
import struct
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

from ..chroot import chroot_environment
from ..errors import LockHeld
from ..paths import HOOK_GUARD_ENV
from ..runner import Runner
from . import bootguard

APT_LOCKS = ("var/lib/dpkg/lock-frontend", "var/lib/dpkg/lock", "var/lib/apt/lists/lock", "var/cache/apt/archives/lock")


def lock_holder(path: str) -> int | None:
    """The pid holding an fcntl write lock on ``path`` (as apt and dpkg take them), if any."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        query = struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
        answer = fcntl.fcntl(fd, fcntl.F_GETLK, query)
        l_type, _, _, _, pid = struct.unpack("hhqqi4x", answer)
        return pid if l_type != fcntl.F_UNLCK else None
    finally:
        os.close(fd)


def command_of(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip() or "?"
    except OSError:
        return "?"


def apt_lock_holder(root: str) -> str | None:
    """Who holds one of apt's or dpkg's locks in ``root``: "/LOCK, held by pid N (command)"."""
    for rel in APT_LOCKS:
        pid = lock_holder(os.path.join(root, rel))
        if pid is not None:
            return f"/{rel}, held by pid {pid} ({command_of(pid)})"
    return None


def check_apt_locks(root: str) -> None:
    """Refuse at once when apt or dpkg is running on the managed system."""
    holder = apt_lock_holder(root)
    if holder is not None:
        raise LockHeld(f"apt/dpkg is busy: {holder}")


CONFFILES = {
    "keep": ("--force-confdef", "--force-confold"),
    "new": ("--force-confnew",),
    "ask": (),
}
"""dpkg's options for a conffile changed both here and in the package (``[apt] conffiles``):
keep the admin's, take the package's, or let dpkg ask."""


def apt_get_argv(
    op: str, packages: tuple[str, ...], *, download_only: bool = False, tty: bool = False, conffiles: str = "keep"
) -> list[str]:
    argv = ["apt-get", "-y"]
    for opt in CONFFILES[conffiles]:
        argv += ["-o", f"Dpkg::Options::={opt}"]
    if not tty:
        argv += ["-q", "-o", "Dpkg::Use-Pty=0", "-o", "Dpkg::Progress-Fancy=0"]
    if download_only:
        argv.append("--download-only")
    return [*argv, op, *packages]


def apt_env(tty: bool, person: bool = False) -> dict[str, str]:
    """apt's environment: non-interactive without a terminal; apt-listchanges shows its news only
    to a ``person`` answering at one (as under plain apt)."""
    env = {HOOK_GUARD_ENV: "1", "LC_ALL": "C.UTF-8"}
    if not person:
        env["APT_LISTCHANGES_FRONTEND"] = "none"
    if not tty:
        env["DEBIAN_FRONTEND"] = "noninteractive"
    return env


def kill_processes_in(root: str) -> int:
    """Kill every process whose root directory is ``root`` (what a killed apt left in a chroot)."""
    real = os.path.realpath(root)
    killed = 0
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                if os.readlink(f"/proc/{entry}/root") == real:
                    os.kill(int(entry), sig)
                    killed += 1
            except OSError:
                continue
    return killed


class AptTarget:
    """A root directory apt-get runs on: the host itself or a chroot with its mounts."""

    def __init__(
        self, runner: Runner, root: str, *, tty: bool | None = None, conffiles: str = "keep", clone: bool = False
    ) -> None:
        """``conffiles``: what dpkg does with a conffile changed here and in the package
        (:data:`CONFFILES`; ``ask``: dpkg asks, and apt-listchanges shows its news); ``clone``:
        the root is a clone, whose grub-install is held back (:mod:`.bootguard`)."""
        self.runner = runner
        self.clone = clone
        self.root = os.path.realpath(root)
        self.tty = sys.stdout.isatty() if tty is None else tty
        self.conffiles = conffiles

    @property
    def is_host(self) -> bool:
        return self.root == "/"

    @contextmanager
    def session(self) -> Iterator[AptTarget]:
        """Mounts for a chroot (none on the host), a clone's grub-install held back; any process
        left inside is killed on the way out."""
        if self.is_host:
            yield self
            return
        with chroot_environment(self.root), ExitStack() as stack:
            if self.clone:
                stack.enter_context(bootguard.held_back(self.runner, self.root))
            try:
                yield self
            finally:
                kill_processes_in(self.root)

    def argv(self, apt_argv: list[str]) -> list[str]:
        return apt_argv if self.is_host else ["chroot", self.root, *apt_argv]

    def apt_get(
        self,
        op: str,
        packages: tuple[str, ...] = (),
        *,
        download_only: bool = False,
        on_start: Callable[[int], None] | None = None,
    ) -> int:
        """Run apt-get with its output on the terminal; returns its exit status."""
        argv = self.argv(
            apt_get_argv(op, packages, download_only=download_only, tty=self.tty, conffiles=self.conffiles)
        )
        return self.runner.stream(argv, env=apt_env(self.tty, self.conffiles == "ask"), on_start=on_start)

    def update(self) -> int:
        argv = self.argv(["apt-get", "-q", "update"] if not self.tty else ["apt-get", "update"])
        return self.runner.stream(argv, env=apt_env(self.tty))

    def path(self, rel: str) -> str:
        return os.path.join(self.root, rel.lstrip("/"))

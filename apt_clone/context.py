"""Everything a command needs about the managed system, opened once per invocation."""

from __future__ import annotations

import os
from contextlib import ExitStack

from . import lock
from .boot import Bootloader, layout
from .paths import mount_base, secure_dir
from .record import field, record
from .runner import DEFAULT_RUNNER, Runner
from .signals import shielded
from .system import ManagedSystem, managed_system, read_mounts
from .zfs import ZfsBackend, open_backend


@record()
class Context:
    system: ManagedSystem
    zfs: ZfsBackend
    boot: Bootloader
    runner: Runner
    cleanup: ExitStack = field(default_factory=ExitStack)
    """What the command mounted for itself (another checkpoint's GRUB directory): undone by close()."""

    def close(self) -> None:
        with shielded():
            self.cleanup.close()


def open_context(root: str = "/", runner: Runner = DEFAULT_RUNNER, zfs: ZfsBackend | None = None) -> Context:
    mounts = read_mounts()  # once: the root, /boot and GRUB's directory are all found in it
    system = managed_system(root, mounts)
    backend = zfs or open_backend(runner)
    home = layout.grub_home(system, None, mounts)
    if home.where == "checkpoint" and home.known_from != "stub":  # another checkpoint's copy, maybe
        recorded = backend.get(system.container, (layout.HOME,)).user.get(layout.HOME)
        home = layout.grub_home(system, recorded, mounts)
    holder = layout.holder_of(home, system)
    cleanup = ExitStack()
    elsewhere = home.where == "checkpoint" and home.checkpoint != system.current_name and holder is not None
    if not elsewhere or holder is None or not backend.exists(holder):  # a lost home: `apt-clone check` says so
        boot = Bootloader(backend, home.directory, runner, boot_container=system.boot_container, root=system.root)
    else:
        opener = lambda: _mount_home(backend, home, holder, cleanup)  # noqa: E731
        boot = Bootloader(backend, None, runner, opener=opener, boot_container=system.boot_container, root=system.root)
    return Context(system, backend, boot, runner, cleanup)


def _mount_home(zfs: ZfsBackend, home: layout.GrubHome, holder: str, cleanup: ExitStack) -> str:
    """Mount the GRUB home's dataset under the run directory for this command; its GRUB directory."""
    import tempfile  # another checkpoint's GRUB home only: off -l's start-up

    assert home.place is not None and home.place.dataset is not None
    mine = home.place.dataset
    base = zfs.get(mine).mountpoint or "/"
    rel = os.path.relpath(home.place.path, _mounted_at(mine) or base)
    where = tempfile.mkdtemp(prefix="grub-home.", dir=secure_dir(mount_base()))
    zfs.mount_at(holder, where)

    done: list[bool] = []

    def undo() -> None:
        if not done:
            done.append(True)
            zfs.unmount_at(holder, where)
            os.rmdir(where)

    lock.on_release(undo)
    cleanup.callback(undo)
    return os.path.normpath(os.path.join(where, rel))


def _mounted_at(dataset: str) -> str | None:
    found = [m.mountpoint for m in read_mounts() if m.source == dataset]
    return found[-1] if found else None

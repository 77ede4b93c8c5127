"""Everything a command needs about the managed system, opened once per invocation."""

from __future__ import annotations

import os
from dataclasses import dataclass

from .boot import Bootloader
from .boot.grub import GRUB_DIR
from .runner import DEFAULT_RUNNER, Runner
from .system import ManagedSystem, managed_system
from .zfs import ZfsBackend, open_backend


@dataclass
class Context:
    system: ManagedSystem
    zfs: ZfsBackend
    boot: Bootloader
    runner: Runner


def open_context(root: str = "/", runner: Runner = DEFAULT_RUNNER, zfs: ZfsBackend | None = None) -> Context:
    system = managed_system(root)
    backend = zfs or open_backend(runner)
    grub_dir = os.path.join(system.root, GRUB_DIR)
    return Context(system, backend, Bootloader(backend, grub_dir, runner), runner)

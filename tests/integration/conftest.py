"""Fixtures of the integration tests: a throwaway toy pool beside the sandbox."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.helpers import SandboxInfo, run_module


def zfs(*args: str) -> str:
    return subprocess.run(["zfs", *args], capture_output=True, text=True, check=True).stdout


def all_names(pool: str) -> list[str]:
    return zfs("list", "-H", "-t", "all", "-r", "-o", "name", pool).split()


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The error output is one line, no traceback."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


_TOYS = itertools.count()


@dataclass(frozen=True)
class Toy:
    """A throwaway pool with a boot-environment container and one root (no Debian in it)."""

    pool: str
    base: str
    env: dict[str, str]

    @property
    def root(self) -> str:
        return os.path.join(self.base, "root")

    def ds(self, name: str) -> str:
        return f"{self.pool}/ROOT/{name}"

    def cli(
        self, *args: str, root: str | None = None, env_extra: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run_module("apt_clone", ["--root", root or self.root, *args], env={**self.env, **(env_extra or {})})


@pytest.fixture
def toy(sandbox: SandboxInfo, tmp_path) -> Iterator[Toy]:
    """``<pool>/ROOT/be1`` mounted at tmp/root with a grubenv, state and run dirs of its own."""
    pool = f"acsb-toy-{os.getpid()}-{next(_TOYS)}"
    images = tempfile.mkdtemp(dir="/var/tmp", prefix="acsb-toy.")  # not a tmpfs (the VM's /tmp is one)
    image = os.path.join(images, "pool.img")
    subprocess.run(["truncate", "-s", "100M", image], check=True)
    subprocess.run(["zpool", "create", "-m", str(tmp_path / "top"), pool, image], check=True)
    zfs("create", "-o", "mountpoint=none", f"{pool}/ROOT")
    zfs("create", "-o", f"mountpoint={tmp_path / 'root'}", f"{pool}/ROOT/be1")
    os.makedirs(tmp_path / "root/boot/grub")
    subprocess.run(["grub-editenv", str(tmp_path / "root/boot/grub/grubenv"), "create"], check=True)
    env = {"APT_CLONE_STATE_DIR": str(tmp_path / "state"), "APT_CLONE_RUN_DIR": str(tmp_path / "run")}
    yield Toy(pool, str(tmp_path), env)
    from tests.sandbox.core import SandboxZfs

    SandboxZfs().destroy_pool(pool)  # zfs-fuse is often "busy" right after a test: retried
    shutil.rmtree(images)

"""Helpers shared by the integration tests."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

SANDBOX_DIR = os.environ.get("APT_CLONE_TEST_SANDBOX", "/var/tmp/apt-clone-test-sandbox")


@dataclass(frozen=True)
class SandboxInfo:
    directory: str
    root: str
    pool: str
    container: str

    @property
    def first(self) -> str:
        return f"{self.container}/rootfs-nmu-000"

    def ds(self, name: str) -> str:
        return f"{self.container}/{name}"


def sandbox_cli(*args: str, directory: str = SANDBOX_DIR) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "apt_clone.sandbox", *args, "--dir", directory],
        capture_output=True,
        text=True,
        check=False,
    )


def apt_clone(
    sb: SandboxInfo, *args: str, input: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real command line against the sandbox root."""
    return subprocess.run(
        [sys.executable, "-m", "apt_clone", "--root", sb.root, *args],
        capture_output=True,
        text=True,
        check=False,
        input=input,
        env={**os.environ, **(env or {})},
    )


def zfs_state(sb: SandboxInfo) -> list[str]:
    """``zfs list -t all`` of the pool: names, origins and our properties, straight from zfs."""
    ours = ("title", "kind", "created", "command", "summary", "checkpoint-of")
    props = ",".join(["name", "origin", "mountpoint", "canmount", *(f"org.aptclone:{p}" for p in ours)])
    out = subprocess.run(
        ["zfs", "list", "-H", "-t", "all", "-r", "-o", props, sb.pool], capture_output=True, text=True, check=True
    )
    return out.stdout.splitlines()


def zfs_names(sb: SandboxInfo) -> list[str]:
    return [line.split("\t")[0] for line in zfs_state(sb)]


def zfs_get(name: str, prop: str) -> str:
    out = subprocess.run(["zfs", "get", "-H", "-o", "value", prop, name], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def bootfs(sb: SandboxInfo) -> str:
    out = subprocess.run(["zpool", "list", "-H", "-o", "bootfs", sb.pool], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def reboot(sb: SandboxInfo) -> None:
    result = sandbox_cli("reboot")
    assert result.returncode == 0, result.stderr


def enable_suite(sb: SandboxInfo, suite: str) -> None:
    result = sandbox_cli("suite", "--enable", suite, directory=sb.directory)
    assert result.returncode == 0, result.stderr


def installed_version(root: str, package: str) -> str | None:
    out = subprocess.run(
        ["chroot", root, "dpkg-query", "-W", "-f", "${Status} ${Version}", package], capture_output=True, text=True
    )
    if out.returncode != 0 or "ok installed" not in out.stdout:
        return None
    return out.stdout.split()[-1]


def dpkg_status_bytes(root: str) -> bytes:
    with open(os.path.join(root, "var/lib/dpkg/status"), "rb") as f:
        return f.read()

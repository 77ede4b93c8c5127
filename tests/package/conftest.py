"""The package's own sandbox: a Debian 13 root on a zfs-fuse pool (with a boot pool, as the
Root-on-ZFS guide lays it out) with the .deb of the current sources installed by apt, run as a
booted host (tests.sandbox.host). ``make test-deb`` builds the .deb first; these tests use it."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from apt_clone.chroot import chroot_environment
from tests.sandbox import core, host

REPO = Path(__file__).resolve().parents[2]
HOST_DIR = os.environ.get("APT_CLONE_HOST_SANDBOX", "/var/tmp/apt-clone-host-sandbox")
SUITE = "trixie"
EXTRA = ("python3-apt", "python3-typer", "python3-questionary", "zfsutils-linux", "grub-common", "unattended-upgrades")
"""The package's Depends and GRUB's tools (so the .deb installs with no network), unattended-upgrades."""


@dataclass(frozen=True)
class Host:
    directory: str
    root: str
    pool: str
    container: str
    bpool: str
    deb: str

    def run(self, *argv: str, env: dict[str, str] | None = None, input: str | None = None):  # type: ignore[no-untyped-def]
        return host.run(self.root, list(argv), env=env, input=input)

    def apt_get(self, *args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
        return self.run("apt-get", "-q", "-y", "-o", "Dpkg::Use-Pty=0", *args, env=env)


def _deb() -> Path:
    if os.environ.get("APT_CLONE_DEB"):
        return Path(os.environ["APT_CLONE_DEB"])
    out = subprocess.run([sys.executable, str(REPO / "scripts/deb.py"), "path"], capture_output=True, text=True)
    if out.returncode != 0:
        pytest.fail(f"no .deb of the current sources ('make deb'): {out.stderr.strip()[-500:]}")
    return Path(out.stdout.strip().splitlines()[-1])


KERNEL = "6.12.0-ac-amd64"
"""The host's kernel: its vmlinuz and initrd in /boot (stand-ins, never booted), so that every
checkpoint gets a GRUB entry, as on a host (its lines checked by grub-script-check)."""


def _install(deb: Path):  # type: ignore[no-untyped-def]
    def prepare(root: str) -> None:
        for name in (f"vmlinuz-{KERNEL}", f"initrd.img-{KERNEL}"):
            Path(root, "boot", name).write_bytes(b"")
        shutil.copy(deb, os.path.join(root, "tmp", deb.name))
        with chroot_environment(root):
            env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8"}
            got = subprocess.run(
                ["chroot", root, "apt-get", "-q", "-y", "install", f"/tmp/{deb.name}"],
                capture_output=True, text=True, env=env,
            )  # fmt: skip
        os.unlink(os.path.join(root, "tmp", deb.name))
        assert got.returncode == 0, got.stdout[-2000:] + got.stderr[-2000:]
        assert os.path.exists(os.path.join(root, "etc/apt/apt.conf.d/80apt-clone"))

    return prepare


def ensure_host() -> Host:
    """The host sandbox with the .deb of the current sources (made again when it changed)."""
    deb = _deb()
    key = hashlib.sha1(deb.read_bytes() + KERNEL.encode()).hexdigest()[:12]
    sb = core.create(HOST_DIR, suite=SUITE, bpool=True, extra=EXTRA, prepare=_install(deb), key=key)
    assert sb.bpool
    return Host(sb.directory, sb.root, sb.pool, sb.container, sb.bpool, str(deb))


@pytest.fixture(scope="session")
def host_sandbox() -> Iterator[Host]:
    if os.geteuid() != 0:
        pytest.skip("the package tests need root (a pool, mounts, namespaces)")
    yield ensure_host()


@pytest.fixture
def booted(host_sandbox: Host) -> Host:
    """The host sandbox as first made (the .deb installed, no checkpoint but the first)."""
    core.reset(HOST_DIR)
    conf = Path(host_sandbox.root, "etc/apt-clone/apt-clone.conf")
    shipped = (REPO / "etc/apt-clone.conf").read_text()
    assert conf.read_text() == shipped, "the reset root holds the shipped configuration"
    return host_sandbox

"""Session fixtures: one real sandbox (zfs-fuse pool + debootstrapped Debian) for the whole run."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest

from tests.helpers import SANDBOX_DIR, SandboxInfo, sandbox_cli

KEEP = os.environ.get("APT_CLONE_KEEP_SANDBOX") == "1"
# The tests never read the machine's own /etc/apt-clone/apt-clone.conf: the defaults, unless a
# test writes a file of its own (tests.helpers.config_env).
os.environ.setdefault("APT_CLONE_CONFIG", "/nonexistent/apt-clone.conf")


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxInfo]:
    if os.geteuid() != 0:
        pytest.skip("integration tests need root (a pool, mounts, chroot)")
    created = sandbox_cli("create")
    assert created.returncode == 0, created.stderr
    status = json.loads(sandbox_cli("status").stdout)
    yield SandboxInfo(SANDBOX_DIR, status["root"], status["pool"], status["be_container"])
    if not KEEP:
        sandbox_cli("destroy")


@pytest.fixture
def pristine(sandbox: SandboxInfo) -> SandboxInfo:
    """The sandbox as first created: rootfs-nmu-000@initial, current and active."""
    result = sandbox_cli("reset")
    assert result.returncode == 0, result.stderr
    return sandbox

"""The fleet: three sandbox hosts (each its own pool, root, state and run directories) driven by
the real ansible-core through the collection built from ``ansible/`` and installed like a user's."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import SandboxInfo, installed_version, sandbox_cli, zfs_state

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_VENV = Path(os.environ.get("APT_CLONE_ANSIBLE_VENV", REPO / ".venv-ansible"))
FLEET_DIR = os.environ.get("APT_CLONE_TEST_FLEET", "/var/tmp/apt-clone-test-fleet")
HOSTS = ("h1", "h2", "h3")
APT_CLONE = str(Path(sys.executable).with_name("apt-clone"))
KERNEL = ("vmlinuz-6.1.0-99-amd64", "initrd.img-6.1.0-99-amd64")
"""A menu entry for each host's checkpoints (a trial boots one)."""
RECAP = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


@dataclass(frozen=True)
class Host:
    name: str
    info: SandboxInfo
    """Its sandbox, as the session sandbox's tests know theirs (tests.helpers)."""

    @property
    def directory(self) -> str:
        return self.info.directory

    @property
    def root(self) -> str:
        return self.info.root

    @property
    def env(self) -> dict[str, str]:
        """apt-clone's environment on this host: its own state and run directories, no config file."""
        return {
            "APT_CLONE_STATE_DIR": os.path.join(self.directory, "state"),
            "APT_CLONE_RUN_DIR": os.path.join(self.directory, "run"),
            "APT_CLONE_CONFIG": os.path.join(self.directory, "apt-clone.conf"),
        }

    def apt_clone(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [APT_CLONE, "--root", self.root, *args],
            capture_output=True,
            text=True,
            env={**os.environ, **self.env},
            check=False,
        )

    def listing(self) -> list[dict[str, object]]:
        result = self.apt_clone("--json", "-l")
        assert result.returncode == 0, result.stderr
        listed: list[dict[str, object]] = json.loads(result.stdout)
        return listed

    def zfs_state(self) -> list[str]:
        return zfs_state(self.info)

    def version(self, package: str) -> str | None:
        return installed_version(self.root, package)


@dataclass
class Fleet:
    hosts: dict[str, Host]
    inventory: Path
    collections: Path

    def playbook(self, playbook: str, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, dict[str, int]]]:
        """``ansible-playbook -i INVENTORY PLAYBOOK ARGS``, and its recap: host -> counts."""
        env = {
            **os.environ,
            "ANSIBLE_COLLECTIONS_PATH": str(self.collections),
            "ANSIBLE_FORKS": str(len(self.hosts)),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
            "ANSIBLE_LOCAL_TEMP": str(self.inventory.parent / "tmp"),
            "ANSIBLE_HOME": str(self.inventory.parent / "home"),
            "PYTHONPATH": str(REPO),  # the reboot stand-in's tests.sandbox
        }
        result = subprocess.run(
            [str(ANSIBLE_VENV / "bin/ansible-playbook"), "-i", str(self.inventory), playbook, *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO,
            check=False,
        )
        recap = {
            m[0]: {"ok": int(m[1]), "changed": int(m[2]), "unreachable": int(m[3]), "failed": int(m[4])}
            for m in RECAP.findall(result.stdout)
        }
        return result, recap


def _install_collection(base: Path) -> Path:
    """The collection built from ``ansible/`` and installed as a user would (offline: a tarball)."""
    galaxy = str(ANSIBLE_VENV / "bin/ansible-galaxy")
    built = base / "built"
    build = [galaxy, "collection", "build", str(REPO / "ansible"), "--output-path", str(built), "--force"]
    subprocess.run(build, check=True, capture_output=True, env={**os.environ, "ANSIBLE_HOME": str(base / "home")})
    tarball = next(built.glob("aptclone-zfs-*.tar.gz"))
    collections = base / "collections"
    subprocess.run(
        [galaxy, "collection", "install", str(tarball), "-p", str(collections), "--force"],
        check=True,
        capture_output=True,
        env={**os.environ, "ANSIBLE_HOME": str(base / "home")},
    )
    return collections


@pytest.fixture(scope="session")
def fleet_hosts() -> Iterator[dict[str, Host]]:
    if os.geteuid() != 0:
        pytest.skip("the fleet's hosts are sandboxes: root")
    if not (ANSIBLE_VENV / "bin/ansible-playbook").exists():
        pytest.fail(f"no ansible-core in {ANSIBLE_VENV}: make ansible-setup installs it")
    hosts = {}
    for name in HOSTS:
        directory = os.path.join(FLEET_DIR, name)
        created = sandbox_cli("create", directory=directory)
        assert created.returncode == 0, created.stderr
        status = json.loads(sandbox_cli("status", directory=directory).stdout)
        hosts[name] = Host(name, SandboxInfo(directory, status["root"], status["pool"], status["be_container"]))
    yield hosts
    if os.environ.get("APT_CLONE_KEEP_SANDBOX") != "1":
        for host in hosts.values():
            sandbox_cli("destroy", directory=host.directory)


@pytest.fixture(scope="session")
def collections(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _install_collection(tmp_path_factory.mktemp("collection"))


@pytest.fixture
def fleet(fleet_hosts: dict[str, Host], collections: Path, tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    """Every host as first created, a kernel in /boot, its own state; an inventory of the three."""
    base = tmp_path_factory.mktemp("fleet")
    inventory: dict[str, object] = {}
    for host in fleet_hosts.values():
        reset = sandbox_cli("reset", directory=host.directory)
        assert reset.returncode == 0, reset.stderr
        for rel in ("state", "run"):
            shutil.rmtree(os.path.join(host.directory, rel), ignore_errors=True)
        Path(host.env["APT_CLONE_CONFIG"]).write_text("[trial]\nhealth = failed-units\n")
        for name in KERNEL:
            Path(host.root, "boot", name).write_text("")
        inventory[host.name] = {
            "ansible_connection": "local",
            "ansible_python_interpreter": "/usr/bin/python3",
            "apt_clone_root": host.root,
            "apt_clone_executable": APT_CLONE,
            "apt_clone_environment": host.env,
            "apt_clone_reboot_command": [
                sys.executable,
                "-m",
                "tests.ansible.reboot",
                "--dir",
                host.directory,
                "--apt-clone",
                APT_CLONE,
            ],  # fmt: skip
        }
    path = base / "inventory.json"
    path.write_text(json.dumps({"fleet": {"hosts": inventory}}))
    return Fleet(fleet_hosts, path, collections)

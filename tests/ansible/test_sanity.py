"""The collection's documentation and ansible-test's sanity tests, run offline."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import ANSIBLE_VENV, REPO

ANSIBLE_TEST_HOME = os.environ.get("APT_CLONE_ANSIBLE_TEST_HOME", "/var/cache/apt-clone-ansible/home")
"""Where make ansible-setup primed ansible-test's sanity environments (PyPI reached then, never now)."""
MODULES = ("checkpoint", "upgrade", "prune", "info")


def test_ansible_doc_shows_every_module(collections: Path, tmp_path: Path):
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(collections), "ANSIBLE_HOME": str(tmp_path)}
    for module in MODULES:
        shown = subprocess.run(
            [str(ANSIBLE_VENV / "bin/ansible-doc"), f"aptclone.zfs.{module}"], capture_output=True, text=True, env=env
        )
        assert shown.returncode == 0 and "RETURN VALUES" in shown.stdout and "EXAMPLES" in shown.stdout, shown


def test_ansible_test_sanity_passes_without_a_network(tmp_path: Path):
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("needs unshare -n (root)")
    tree = tmp_path / "ansible_collections/aptclone/zfs"
    shutil.copytree(REPO / "ansible", tree, ignore=shutil.ignore_patterns("tests/output", "__pycache__"))
    subprocess.run(["git", "init", "-q", str(tree)], check=True)
    subprocess.run(["git", "-C", str(tree), "add", "-A"], check=True)
    sanity = subprocess.run(
        ["unshare", "-n", str(ANSIBLE_VENV / "bin/ansible-test"), "sanity", "--python", "3.11", "--color", "no"],
        capture_output=True,
        text=True,
        cwd=tree,
        env={**os.environ, "HOME": ANSIBLE_TEST_HOME},
    )
    assert sanity.returncode == 0, sanity.stdout + sanity.stderr
    assert 'Running sanity test "validate-modules"' in sanity.stdout, sanity.stdout

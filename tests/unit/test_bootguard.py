"""The clone's grub-install held back (apt/bootguard.py) with the real dpkg-divert on a bare root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from apt_clone.apt import bootguard
from apt_clone.errors import OperationFailed
from apt_clone.runner import DEFAULT_RUNNER

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="dpkg-divert --root writes as root")


def _root(tmp_path: Path) -> Path:
    for rel in ("var/lib/dpkg/info", "usr/sbin", "run"):
        (tmp_path / rel).mkdir(parents=True, exist_ok=True)
    (tmp_path / "var/lib/dpkg/status").write_text("")
    (tmp_path / "usr/sbin/grub-install").write_text("#!/bin/sh\necho the package's 1.0\n")
    return tmp_path


def _run_in(root: Path, *argv: str) -> None:
    """What chroot ROOT grub-install would do: run the script there, with /run as root/run."""
    script = (root / "usr/sbin/grub-install").read_text().replace("/run/", f"{root}/run/")
    DEFAULT_RUNNER.run(["sh", "-c", script, "grub-install", *argv])


def test_a_held_back_grub_install_records_its_call_and_a_new_one_lands_aside(tmp_path: Path):
    root = _root(tmp_path)
    with bootguard.held_back(DEFAULT_RUNNER, str(root)):
        assert bootguard.diverted(DEFAULT_RUNNER, str(root))
        (root / "usr/sbin/grub-install.apt-clone").write_text("#!/bin/sh\necho the package's 1.1\n")  # dpkg's unpack
        _run_in(root, "--target=i386-pc", "/dev/sda")
        _run_in(root, "/dev/sdb")
        recorded = bootguard.calls(str(root))
    assert recorded == ["--target=i386-pc /dev/sda", "/dev/sdb"]
    assert bootguard.disks(recorded) == ["/dev/sda", "/dev/sdb"]
    assert (root / "usr/sbin/grub-install").read_text() == "#!/bin/sh\necho the package's 1.1\n"
    assert not (root / "usr/sbin/grub-install.apt-clone").exists()
    assert not bootguard.diverted(DEFAULT_RUNNER, str(root))


def test_a_killed_run_is_put_back_by_restore(tmp_path: Path):
    root = _root(tmp_path)
    guard = bootguard.held_back(DEFAULT_RUNNER, str(root))
    guard.__enter__()  # never left: a SIGKILL
    assert bootguard.restore(DEFAULT_RUNNER, str(root)) == [f"put back grub-install in {root}"]
    assert (root / "usr/sbin/grub-install").read_text() == "#!/bin/sh\necho the package's 1.0\n"
    assert bootguard.restore(DEFAULT_RUNNER, str(root)) == []
    with bootguard.held_back(DEFAULT_RUNNER, str(root)):  # and a later run starts clean
        assert "held back" in (root / "usr/sbin/grub-install").read_text()


def test_a_root_without_grub_install_gets_none_back(tmp_path: Path):
    root = _root(tmp_path)
    (root / "usr/sbin/grub-install").unlink()
    with bootguard.held_back(DEFAULT_RUNNER, str(root)):
        assert (root / "usr/sbin/grub-install").exists()
    assert not (root / "usr/sbin/grub-install").exists()


def test_no_disk_named_gives_none():
    assert bootguard.disks(["--target=x86_64-efi --no-nvram"]) == []


def test_a_sbin_leading_out_of_the_root_is_never_written_through(tmp_path: Path):
    root = tmp_path / "root"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for rel in ("var/lib/dpkg/info", "usr", "run"):
        (root / rel).mkdir(parents=True, exist_ok=True)
    (root / "var/lib/dpkg/status").write_text("")
    (root / "usr/sbin").symlink_to(elsewhere)
    with pytest.raises(OperationFailed, match="leads out of"), bootguard.held_back(DEFAULT_RUNNER, str(root)):
        pass
    assert list(elsewhere.iterdir()) == [] and not bootguard.diverted(DEFAULT_RUNNER, str(root))

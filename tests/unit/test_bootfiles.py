"""What a clone needs after apt: initramfs images and the clone's own GRUB config (apt/bootfiles.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from apt_clone.apt import bootfiles
from apt_clone.errors import OperationFailed
from tests.unit.fakes import FakeRunner


def _root(tmp_path: Path, kernels: dict[str, bool], grub_cfg: bool = False, tools: bool = True) -> str:
    boot = tmp_path / "boot"
    boot.mkdir(parents=True)
    for version, with_initrd in kernels.items():
        (boot / f"vmlinuz-{version}").write_text("k")
        if with_initrd:
            (boot / f"initrd.img-{version}").write_text("i")
    if grub_cfg:
        (boot / "grub").mkdir()
        (boot / "grub" / "grub.cfg").write_text("menuentry")
    if tools:
        (tmp_path / "usr/sbin").mkdir(parents=True)
        for tool in ("update-initramfs", "update-grub"):
            (tmp_path / "usr/sbin" / tool).write_text("#!/bin/sh\n")
    return str(tmp_path)


def _age(root: str, rel: str) -> None:
    os.utime(os.path.join(root, rel), (1_000_000, 1_000_000))


def test_a_kernel_without_initramfs_gets_one(tmp_path: Path):
    root = _root(tmp_path, {"6.1.0-1": True, "6.1.0-2": False})
    todo = bootfiles.plan(root, ["linux-image-6.1.0-2"], since=2_000_000, kernels_before=["6.1.0-1"])
    assert todo.create == ["6.1.0-2"] and todo.update == []


def test_an_old_initramfs_is_updated_only_when_its_sources_changed(tmp_path: Path):
    root = _root(tmp_path, {"6.1.0-1": True})
    _age(root, "boot/initrd.img-6.1.0-1")
    assert bootfiles.plan(root, ["ac-hello"], since=2_000_000, kernels_before=["6.1.0-1"]).empty
    todo = bootfiles.plan(root, ["zfs-initramfs"], since=2_000_000, kernels_before=["6.1.0-1"])
    assert todo.update == ["6.1.0-1"] and not todo.grub
    fresh = bootfiles.plan(root, ["zfs-initramfs"], since=500_000, kernels_before=["6.1.0-1"])
    assert fresh.empty  # made after the change started (by dpkg's trigger): nothing to do


def test_update_grub_runs_when_kernels_changed_and_the_clone_has_its_own_config(tmp_path: Path):
    root = _root(tmp_path, {"6.1.0-1": True, "6.1.0-2": True}, grub_cfg=True)
    _age(root, "boot/grub/grub.cfg")
    assert bootfiles.plan(root, ["linux-image-6.1.0-2"], 2_000_000, ["6.1.0-1"]).grub
    assert not bootfiles.plan(root, ["ac-hello"], 2_000_000, ["6.1.0-1", "6.1.0-2"]).grub


def test_apply_runs_in_the_chroot_and_fails_without_an_initramfs(tmp_path: Path):
    root = _root(tmp_path, {"6.1.0-2": False}, grub_cfg=True)
    _age(root, "boot/grub/grub.cfg")
    runner = FakeRunner()
    todo = bootfiles.plan(root, ["linux-image-6.1.0-2"], 2_000_000, [])
    lines = bootfiles.apply(runner, root, todo)
    assert runner.calls == [
        ("chroot", root, "update-initramfs", "-c", "-k", "6.1.0-2"),
        ("chroot", root, "update-grub"),
    ]
    assert len(lines) == 2
    failing = FakeRunner()
    failing.queue = [(1, "", "mkinitramfs: failed")]
    with pytest.raises(OperationFailed, match="update-initramfs -c -k 6.1.0-2 in the clone failed"):
        bootfiles.apply(failing, root, todo)
    bare = _root(tmp_path / "bare", {"6.1.0-2": False}, tools=False)
    with pytest.raises(OperationFailed, match="no initramfs"):
        bootfiles.apply(FakeRunner(), bare, bootfiles.plan(bare, [], 2_000_000, []))

"""bench.hook's raw hooks: the sh each mode runs in apt's place, and the estimate built from them."""

from __future__ import annotations

import subprocess
from types import SimpleNamespace

import pytest

bench_hook = pytest.importorskip("bench.hook")


@pytest.fixture
def host(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    def mountpoint(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        where = "/sb/root/boot" if argv[-1].startswith("bp/") else "/sb/root"
        return subprocess.CompletedProcess(argv, 0, stdout=where + "\n", stderr="")

    monkeypatch.setattr(bench_hook.subprocess, "run", mountpoint)
    return SimpleNamespace(container="rp/ROOT", bpool="bp")


def _dialect(monkeypatch: pytest.MonkeyPatch, dialect: str) -> None:
    monkeypatch.setattr(bench_hook, "open_backend", lambda: SimpleNamespace(dialect=dialect))


def test_on_zfs_fuse_each_clone_takes_a_second_command_for_its_mountpoint(host, monkeypatch):
    _dialect(monkeypatch, bench_hook.ZFS_FUSE)
    text = bench_hook.raw_hook(host)
    assert "zfs snapshot -r rp/ROOT/rootfs-nmu-000@$1 & zfs snapshot bp/BOOT/rootfs-nmu-000@$1 & wait" in text
    assert text.count("zfs clone -o mountpoint=none") == 2
    assert "zfs set mountpoint=/sb/root rp/ROOT/$1 & zfs set mountpoint=/sb/root/boot bp/BOOT/$1 & wait" in text


def test_one_command_clones_carry_no_second_command(host, monkeypatch):
    _dialect(monkeypatch, bench_hook.ZFS_FUSE)
    text = bench_hook.raw_hook(host, one=True)
    assert text.count("zfs clone -o mountpoint=none -o canmount=noauto") == 2
    assert "zfs set" not in text
    assert text.index("zfs snapshot") < text.index("zfs clone")


def test_on_openzfs_the_raw_hook_is_already_one_command_a_clone(host, monkeypatch):
    _dialect(monkeypatch, "openzfs")
    text = bench_hook.raw_hook(host)
    assert "zfs clone -o canmount=noauto -o mountpoint=/sb/root rp/ROOT/rootfs-nmu-000@$1 rp/ROOT/$1" in text
    assert "zfs set" not in text


def test_the_snapshots_alone_clone_nothing(host, monkeypatch):
    _dialect(monkeypatch, bench_hook.ZFS_FUSE)
    assert "zfs clone" not in bench_hook.raw_hook(host, clones=False)


def test_the_openzfs_estimate_takes_the_second_commands_cost_off_the_hook():
    runs = {"on": 0.52, "none": 0.36, "raw": 0.43, "one": 0.40}
    assert bench_hook.on_openzfs(runs) == pytest.approx(0.52 - 0.36 - 0.03)

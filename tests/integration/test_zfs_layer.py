"""The ZFS layer against a real zfs-fuse (or kernel OpenZFS) pool: every operation and error."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Sequence

import pytest

from apt_clone.errors import UsageError
from apt_clone.runner import Completed, Runner
from apt_clone.zfs import (
    CliZfs,
    RetryPolicy,
    ZfsBusy,
    ZfsExists,
    ZfsHasChildren,
    ZfsHasDependentClones,
    ZfsNotFound,
    ZfsOutOfSpace,
    ZfsPermission,
    ZfsUnavailable,
    open_backend,
)

TITLE = "org.aptclone:title"


@pytest.fixture(scope="module")
def pool(sandbox, tmp_path_factory) -> Iterator[str]:
    """A small scratch pool of its own (the sandbox fixture guarantees a running ZFS)."""
    image = tmp_path_factory.mktemp("zfslayer") / "pool.img"
    name = f"acsb-zfslayer-{os.getpid()}"
    subprocess.run(["truncate", "-s", "160M", str(image)], check=True)
    subprocess.run(["zpool", "create", "-m", "none", name, str(image)], check=True, capture_output=True)
    yield name
    subprocess.run(["zpool", "destroy", "-f", name], check=False, capture_output=True)


@pytest.fixture
def zfs() -> CliZfs:
    backend = open_backend()
    assert isinstance(backend, CliZfs)
    return backend


@pytest.fixture
def fs(pool, zfs, request, tmp_path) -> Iterator[str]:
    """A fresh filesystem mounted under tmp_path, destroyed afterwards."""
    name = f"{pool}/t{abs(hash(request.node.name)) % 10**8}"
    zfs.create(name, {"mountpoint": str(tmp_path / "mnt")})
    yield name
    subprocess.run(["zfs", "destroy", "-R", "-r", name], capture_output=True, check=False)


def test_snapshot_clone_promote_destroy_roundtrip(zfs, fs, pool):
    zfs.snapshot(f"{fs}@s1")
    zfs.clone(f"{fs}@s1", f"{pool}/c1", {"canmount": "noauto", TITLE: "a clone"})
    c1 = zfs.get(f"{pool}/c1", [TITLE])
    assert c1.origin == f"{fs}@s1" and c1.user == {TITLE: "a clone"} and c1.canmount == "noauto"
    zfs.promote(f"{pool}/c1")
    assert zfs.get(fs).origin == f"{pool}/c1@s1"
    assert zfs.exists(f"{pool}/c1@s1") and not zfs.exists(f"{fs}@s1")
    zfs.destroy(fs, recursive=True)
    zfs.destroy(f"{pool}/c1", recursive=True)
    assert not zfs.exists(f"{pool}/c1")


def test_list_tree_is_one_call_with_snapshots_and_only_local_user_props(pool, zfs, fs):
    zfs.set_props(fs, {TITLE: "mine"})
    zfs.snapshot(f"{fs}@a")
    zfs.create(f"{fs}/child")
    calls: list[tuple[str, ...]] = []

    class Counting(Runner):
        def run(self, argv: Sequence[str], **kw: object) -> Completed:  # type: ignore[override]
            calls.append(tuple(argv))
            return super().run(argv, **kw)  # type: ignore[arg-type]

    counted = CliZfs(Counting(), dialect=zfs.dialect)
    tree = counted.list_tree(fs, [TITLE])
    assert len(calls) == 1
    assert [d.name for d in tree] == [fs, f"{fs}@a", f"{fs}/child"]
    by = {d.name: d for d in tree}
    assert by[fs].user == {TITLE: "mine"}
    assert by[f"{fs}@a"].user == {} and by[f"{fs}/child"].user == {}  # inherited, not theirs
    assert (
        by[fs].mounted is True and by[fs].used > 0 and by[fs].available and by[fs].createtxg < by[f"{fs}@a"].createtxg
    )


@pytest.mark.parametrize(
    "value", ["with spaces", "quotes ' and \"", "dollar $HOME $(x) `y`", "unicode ü ñ 日本", "x" * 8191]
)
def test_user_property_roundtrip(zfs, fs, value):
    zfs.set_props(fs, {TITLE: value})
    assert zfs.get(fs, [TITLE]).user[TITLE] == value
    zfs.inherit(fs, TITLE)
    assert TITLE not in zfs.get(fs, [TITLE]).user


@pytest.mark.parametrize("value", ["tab\there", "new\nline", "x" * 8192, ""])
def test_user_property_refused(zfs, fs, value):
    with pytest.raises(UsageError):
        zfs.set_props(fs, {TITLE: value})
    assert TITLE not in zfs.get(fs, [TITLE]).user


def test_typed_errors_carry_zfs_message(zfs, fs, pool):
    with pytest.raises(ZfsNotFound, match="does not exist"):
        zfs.get(f"{pool}/nope")
    with pytest.raises(ZfsNotFound):
        zfs.pool("acsb-no-such-pool")
    with pytest.raises(ZfsExists, match="already exists"):
        zfs.create(fs)
    zfs.snapshot(f"{fs}@s")
    with pytest.raises(ZfsHasChildren):
        zfs.destroy(fs)
    zfs.clone(f"{fs}@s", f"{pool}/dep", {"canmount": "noauto"})
    try:
        with pytest.raises(ZfsHasDependentClones, match="dependent clones"):
            zfs.destroy(f"{fs}@s")
    finally:
        zfs.destroy(f"{pool}/dep")
    with pytest.raises(ZfsOutOfSpace):
        zfs.create(f"{pool}/huge", {"refreservation": "10G"})


def test_permission_error_for_unprivileged_user(pool):
    class Nobody(Runner):
        def run(self, argv: Sequence[str], **kw: object) -> Completed:  # type: ignore[override]
            return super().run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *argv], **kw)  # type: ignore[arg-type]

    z = CliZfs(Nobody(), dialect=open_backend().dialect)  # type: ignore[attr-defined]
    with pytest.raises(ZfsPermission) as info:
        z.create(f"{pool}/nobody")
    assert "\n" not in str(info.value)


# Runs a command in a private mount namespace where the zfs-fuse socket is hidden:
# exactly what a machine without a running daemon looks like, without stopping the shared one.
_NO_DAEMON = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
assert libc.unshare(0x00020000) == 0  # CLONE_NEWNS
assert libc.mount(b"none", b"/", None, 0x4000 | 0x40000, None) == 0  # MS_REC|MS_PRIVATE
for d in (b"/var/run/zfs", b"/run/zfs"):
    if os.path.isdir(d):
        libc.mount(b"tmpfs", d, b"tmpfs", 0, None)
os.execvp(sys.argv[1], sys.argv[1:])
"""


def test_daemon_not_running_is_its_own_error(pool):
    if os.path.exists("/dev/zfs"):
        pytest.skip("kernel ZFS: there is no daemon to be missing")

    class NoDaemon(Runner):
        def run(self, argv: Sequence[str], **kw: object) -> Completed:  # type: ignore[override]
            return super().run([sys.executable, "-c", _NO_DAEMON, *argv], **kw)  # type: ignore[arg-type]

    with pytest.raises(ZfsUnavailable, match="daemon"):
        CliZfs(NoDaemon(), dialect="zfs-fuse").pools()


def test_busy_unmount_retried_then_reported(zfs, fs, tmp_path):
    mnt = tmp_path / "mnt"
    holder = subprocess.Popen(["cat"], stdin=subprocess.PIPE, cwd=mnt)
    try:
        quick = CliZfs(zfs.runner, dialect=zfs.dialect, retry=RetryPolicy(attempts=3, first_delay=0.01))
        with pytest.raises(ZfsBusy, match="busy"):
            quick.unmount(fs)
    finally:
        holder.communicate(b"")
    zfs.unmount(fs)  # the holder is gone: now it goes
    assert zfs.get(fs).mounted is False


def test_destroy_right_after_unmount_succeeds(zfs, pool, tmp_path):
    for i in range(5):
        name = f"{pool}/quick{i}"
        zfs.create(name, {"mountpoint": str(tmp_path / f"q{i}")})
        (tmp_path / f"q{i}" / "f").write_text("x")
        zfs.unmount(name)
        zfs.destroy(name)
        assert not zfs.exists(name)


def test_rename_of_mounted_dataset_remounts(zfs, pool, tmp_path):
    zfs.create(f"{pool}/r1", {"mountpoint": str(tmp_path / "r")})
    (tmp_path / "r" / "keep").write_text("data")
    zfs.rename(f"{pool}/r1", f"{pool}/r2")
    renamed = zfs.get(f"{pool}/r2")
    assert renamed.mounted and (tmp_path / "r" / "keep").read_text() == "data"
    zfs.unmount(f"{pool}/r2")
    zfs.destroy(f"{pool}/r2")


def test_rollback_and_mount_at(zfs, fs, tmp_path):
    mnt = tmp_path / "mnt"
    (mnt / "a").write_text("before")
    zfs.snapshot(f"{fs}@r")
    (mnt / "a").write_text("after")
    zfs.rollback(f"{fs}@r")
    assert (mnt / "a").read_text() == "before"
    zfs.unmount(fs)
    zfs.set_props(fs, {"canmount": "noauto"})
    before = zfs.get(fs)
    with zfs.mounted_at(fs, str(tmp_path / "elsewhere")) as where, open(os.path.join(where, "a")) as f:
        assert f.read() == "before"
    after = zfs.get(fs, ["org.aptclone:saved-mountpoint"])
    assert after.mountpoint == before.mountpoint and after.user == {} and not after.mounted


def test_bootfs_roundtrip(zfs, fs, pool):
    zfs.set_bootfs(pool, fs)
    assert zfs.pool(pool).bootfs == fs
    zfs.set_bootfs(pool, None)
    assert zfs.pool(pool).bootfs is None

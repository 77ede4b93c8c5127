from pathlib import Path

import pytest

from apt_clone.zfs import cli as zcli
from apt_clone.zfs.errors import (
    ZfsBusy,
    ZfsError,
    ZfsExists,
    ZfsHasChildren,
    ZfsHasDependentClones,
    ZfsNotFound,
    ZfsOutOfSpace,
    ZfsPermission,
    ZfsUnavailable,
    classify,
    error_from,
)

DATA = Path(__file__).parent.parent / "data"


def test_parse_openzfs_get_keeps_local_user_props_only():
    records = zcli.parse_get((DATA / "openzfs-get.txt").read_text())
    names = [r.name for r in records]
    assert names == ["rpool/ROOT", "rpool/ROOT/debian", "rpool/ROOT/debian@initial", "rpool/ROOT/debian-nmu-001"]
    root = records[1]
    assert root.mountpoint == "/" and root.canmount == "noauto" and root.mounted is True
    assert root.user == {"org.aptclone:title": 'Debian GNU/Linux 13 "trixie" $HOME', "org.aptclone:kind": "initial"}
    snap = records[2]
    assert snap.is_snapshot and snap.available is None and snap.user == {}
    assert snap.parent == "rpool/ROOT/debian"
    clone = records[3]
    assert clone.origin == "rpool/ROOT/debian@nmu-001"
    assert clone.used == 79872 and clone.referenced == 1224736768 and clone.createtxg == 120


def test_parse_zfs_fuse_get_with_unicode_and_shell_chars():
    records = zcli.parse_get((DATA / "zfs-fuse-get.txt").read_text())
    assert [r.createtxg for r in records] == [7, 9, 13]
    assert records[1].user["org.aptclone:title"] == "hello $x 'q' ü"
    assert records[2].user == {}
    assert records[0].origin is None


def test_records_sorted_by_createtxg_not_name():
    text = "b\ttype\tfilesystem\t-\nb\tcreatetxg\t5\t-\na\ttype\tfilesystem\t-\na\tcreatetxg\t9\t-\n"
    assert [r.name for r in zcli.parse_get(text)] == ["b", "a"]


def test_parse_zpool_get_openzfs():
    text = (
        "rpool\tsize\t4294967296\t-\nrpool\tfree\t1000\t-\n"
        "rpool\tbootfs\trpool/ROOT/debian\tlocal\nrpool\thealth\tONLINE\t-\n"
    )
    pool = zcli.parse_zpool_get(text, "rpool")
    assert (pool.size, pool.free, pool.bootfs, pool.health) == (4294967296, 1000, "rpool/ROOT/debian", "ONLINE")


def test_parse_zpool_list_zfs_fuse_human_sizes():
    pool = zcli.parse_zpool_list("t1\t1016M\t1.5G\t-\tONLINE\n", "t1")
    assert pool.size == 1016 * 1024**2 and pool.free == int(1.5 * 1024**3) and pool.bootfs is None


def test_missing_pool_raises_not_found():
    with pytest.raises(ZfsNotFound):
        zcli.parse_zpool_list("", "nope")
    with pytest.raises(ZfsNotFound):
        zcli.parse_zpool_get("", "nope")


@pytest.mark.parametrize(
    ("stderr", "cls"),
    [
        ("cannot open 't1/x': dataset does not exist", ZfsNotFound),
        ("cannot destroy 't1/ROOT': dataset is busy", ZfsBusy),
        ("cannot create 't1/ROOT': dataset already exists", ZfsExists),
        ("cannot destroy 't1/ROOT': filesystem has children\nuse '-r' to destroy", ZfsHasChildren),
        ("cannot destroy 't1/a@s': snapshot has dependent clones", ZfsHasDependentClones),
        ("cannot destroy 'p/a/var@s1': snapshot is cloned\nno snapshots destroyed", ZfsHasDependentClones),
        ("cannot create snapshot 't1/a@s': out of space", ZfsOutOfSpace),
        ("cannot set property for 't1': permission denied", ZfsPermission),
        ("connect: Connection refused\ninternal error: failed to initialize ZFS library", ZfsUnavailable),
        ("connect: Permission denied\ninternal error: failed to initialize ZFS library", ZfsPermission),
        ("cannot set property for 'scr/a': size is greater than available space", ZfsOutOfSpace),
        ("The ZFS modules are not loaded.", ZfsUnavailable),
        ("cannot open 'nopool': no such pool", ZfsNotFound),
        ("something else entirely", ZfsError),
    ],
)
def test_classify_zfs_messages(stderr, cls):
    assert classify(stderr) is cls
    err = error_from(stderr, "fallback")
    assert isinstance(err, cls)
    assert err.message.startswith(stderr.splitlines()[0])
    assert "\n" not in err.message


def test_parse_size():
    assert zcli.parse_size("512") == 512
    assert zcli.parse_size("23.5K") == int(23.5 * 1024)
    assert zcli.parse_size("-") == 0

"""Argument handling of the CLI backend per dialect, and the busy retry, on a fake runner."""

import pytest

from apt_clone.errors import UsageError
from apt_clone.zfs import OPENZFS, ZFS_FUSE, CliZfs, RetryPolicy, ZfsBusy, ZfsError

from .fakes import FakeRunner


def backend(dialect, runner=None, attempts=4):
    sleeps = []
    return CliZfs(
        runner or FakeRunner(), dialect=dialect, retry=RetryPolicy(attempts=attempts, sleep=sleeps.append)
    ), sleeps


def test_dialect_detection(tmp_path):
    absent = str(tmp_path / "no-module")
    r = FakeRunner({("zfs", "version"): (0, "zfs-2.3.1-1\nzfs-kmod-2.3.1-1\n", "")})
    assert CliZfs(r, kernel_module=absent, fuse_socket=absent).dialect == OPENZFS
    r = FakeRunner({("zfs", "version"): (2, "", "unrecognized command 'version'")})
    assert CliZfs(r, kernel_module=absent, fuse_socket=absent).dialect == ZFS_FUSE


def test_zfs_fuse_daemon_socket_means_zfs_fuse_without_running_anything(tmp_path):
    import socket

    path = str(tmp_path / "zfs_socket")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(path)
        r = FakeRunner()
        assert CliZfs(r, kernel_module=str(tmp_path / "no-module"), fuse_socket=path).dialect == ZFS_FUSE
        assert r.calls == []
    plain = tmp_path / "not-a-socket"
    plain.write_text("")
    r = FakeRunner({("zfs", "version"): (0, "zfs-2.3.1-1\n", "")})
    assert CliZfs(r, kernel_module=str(tmp_path / "no-module"), fuse_socket=str(plain)).dialect == OPENZFS


def test_loaded_kernel_module_means_openzfs_without_running_anything(tmp_path):
    r = FakeRunner()
    assert CliZfs(r, kernel_module=str(tmp_path)).dialect == OPENZFS
    assert r.calls == []


def test_set_props_one_per_call_on_zfs_fuse_and_batched_on_openzfs():
    z, _ = backend(ZFS_FUSE)
    z.set_props("p/a", {"org.aptclone:title": "a b", "canmount": "noauto"})
    assert z.runner.calls == [("zfs", "set", "org.aptclone:title=a b", "p/a"), ("zfs", "set", "canmount=noauto", "p/a")]
    z, _ = backend(OPENZFS)
    z.set_props("p/a", {"org.aptclone:title": "a b", "canmount": "noauto"})
    assert z.runner.calls == [("zfs", "set", "org.aptclone:title=a b", "canmount=noauto", "p/a")]


@pytest.mark.parametrize("bad", ["a\tb", "a\nb", "x" * 8192, ""])
def test_user_property_values_refused_before_zfs_runs(bad):
    z, _ = backend(OPENZFS)
    with pytest.raises(UsageError):
        z.set_props("p/a", {"org.aptclone:title": bad})
    assert z.runner.calls == []


def test_reads_are_one_scoped_get():
    z, _ = backend(ZFS_FUSE)
    z.list_tree("p/ROOT", ["org.aptclone:title"])
    (argv,) = z.runner.calls
    assert argv[:5] == ("zfs", "get", "-Hp", "-o", "name,property,value,source")
    assert "-r" in argv and argv[-1] == "p/ROOT" and "-t" not in argv
    assert argv[-2].endswith(",org.aptclone:title")
    z, _ = backend(OPENZFS)
    z.list_tree("p/ROOT")
    assert "-t" in z.runner.calls[0]


def test_pool_reads_per_dialect():
    z, _ = backend(
        ZFS_FUSE,
        FakeRunner(
            {
                ("zpool", "list", "-H", "-o", "name,size,free,bootfs,health", "p"): (
                    0,
                    "p\t1G\t512M\tp/ROOT/a\tONLINE\n",
                    "",
                )
            }
        ),
    )
    assert z.pool("p").bootfs == "p/ROOT/a"
    z, _ = backend(
        OPENZFS,
        FakeRunner(
            {
                ("zpool", "get", "-Hp", "-o", "name,property,value", "size,free,bootfs,health,freeing", "p"): (
                    0,
                    "p\tbootfs\t-\tdefault\np\tsize\t10\t-\np\tfreeing\t4096\t-\n",
                    "",
                )
            }
        ),
    )
    assert z.pool("p").bootfs is None and z.pool("p").size == 10 and z.pool("p").freeing == 4096


def test_clone_on_zfs_fuse_sets_mountpoint_after_cloning():
    z, _ = backend(ZFS_FUSE)
    z.clone("p/a@s", "p/b", {"mountpoint": "/x", "canmount": "noauto"})
    assert z.runner.calls == [
        ("zfs", "clone", "-o", "canmount=noauto", "-o", "mountpoint=none", "p/a@s", "p/b"),
        ("zfs", "set", "mountpoint=/x", "p/b"),
    ]
    z, _ = backend(OPENZFS)
    z.clone("p/a@s", "p/b", {"mountpoint": "/", "canmount": "noauto"})
    assert z.runner.calls == [("zfs", "clone", "-o", "mountpoint=/", "-o", "canmount=noauto", "p/a@s", "p/b")]


def test_busy_destroy_is_retried_with_backoff_then_succeeds():
    r = FakeRunner()
    r.queue = [(1, "", "cannot destroy 'p/b': dataset is busy")] * 2 + [(0, "", "")]
    z, sleeps = backend(ZFS_FUSE, r)
    z.destroy("p/b")
    assert len(r.calls) == 3 and sleeps == [0.05, 0.1]


def test_a_set_whose_remount_met_busy_mounts_the_dataset_again():
    """CI's failures on record: undoing an activation set canmount=on on a mounted root, and
    zfs-fuse's remount answered "busy"; the set is idempotent, so it is retried. The change had
    unmounted the root, and the retried set, finding it unmounted, did not mount it again."""
    busy = "cannot mount 'p/be1': mountpoint or dataset is busy (property may be set but unable to remount filesystem)"
    for dialect in (ZFS_FUSE, OPENZFS):
        r = FakeRunner()
        r.queue = [(1, "", busy), (0, "", ""), (0, "no\n", ""), (0, "", "")]
        z, sleeps = backend(dialect, r)
        z.set_props("p/be1", {"canmount": "on"})
        assert sleeps == [0.05] and r.calls == [
            ("zfs", "set", "canmount=on", "p/be1"),
            ("zfs", "set", "canmount=on", "p/be1"),
            ("zfs", "get", "-H", "-o", "value", "mounted", "p/be1"),
            ("zfs", "mount", "p/be1"),
        ]
        r = FakeRunner()
        r.queue = [(1, "", busy), (0, "", ""), (0, "yes\n", "")]
        z, _ = backend(dialect, r)
        z.inherit("p/be1", "mountpoint")
        assert r.calls[-1] == ("zfs", "get", "-H", "-o", "value", "mounted", "p/be1")
    r = FakeRunner()
    r.queue = [(1, "", "cannot unmount 'p/be1': dataset is busy"), (0, "", "")]
    z, _ = backend(ZFS_FUSE, r)
    z.set_props("p/be1", {"canmount": "on"})
    assert len(r.calls) == 2  # the property change did not happen the first time: nothing to mount


def test_busy_retry_is_bounded():
    r = FakeRunner()
    r.queue = [(1, "", "cannot unmount 'p/b': dataset is busy")] * 10
    z, sleeps = backend(ZFS_FUSE, r, attempts=4)
    with pytest.raises(ZfsBusy, match="dataset is busy"):
        z.unmount("p/b")
    assert len(r.calls) == 4 and len(sleeps) == 3


def test_zfs_fuse_rollback_io_error_is_transient_but_not_elsewhere():
    r = FakeRunner()
    r.queue = [(1, "", "cannot rollback 'p/a': I/O error")] + [(0, "", "")]
    z, sleeps = backend(ZFS_FUSE, r)
    z.rollback("p/a@s")
    assert len(r.calls) == 2 and sleeps == [0.05]
    r = FakeRunner()
    r.queue = [(1, "", "cannot rollback 'p/a': I/O error")]
    z, sleeps = backend(OPENZFS, r)
    with pytest.raises(ZfsError, match="I/O error"):
        z.rollback("p/a@s")
    assert len(r.calls) == 1 and sleeps == []


@pytest.mark.parametrize("dialect", [ZFS_FUSE, OPENZFS])
def test_snapshot_props_go_with_the_snapshot_in_both_dialects(dialect):
    z, _ = backend(dialect)
    z.snapshot("p/a@s", recursive=True, props={"org.aptclone:checkpoint-of": "x"})
    assert z.runner.calls == [("zfs", "snapshot", "-r", "-o", "org.aptclone:checkpoint-of=x", "p/a@s")]


def test_never_mount_all():
    z, _ = backend(ZFS_FUSE)
    z.mount("p/a")
    z.unmount("p/a")
    assert all("-a" not in argv for argv in z.runner.calls)


def test_list_tree_puts_the_root_first_even_after_a_promotion():
    """A promoted filesystem owns snapshots older than itself: the root still comes first."""
    rows = [
        ("p/R/b", "filesystem", 50),
        ("p/R/b@initial", "snapshot", 10),
        ("p/R/b@nmu-001", "snapshot", 40),
        ("p/R/b/var", "filesystem", 51),
    ]
    out = "".join(f"{n}\ttype\t{t}\t-\n{n}\tcreatetxg\t{txg}\t-\n{n}\tmountpoint\t/\tlocal\n" for n, t, txg in rows)
    z, _ = backend(OPENZFS, FakeRunner())
    z.runner.queue.append((0, out, ""))
    names = [ds.name for ds in z.list_tree("p/R/b")]
    assert names == ["p/R/b", "p/R/b@initial", "p/R/b@nmu-001", "p/R/b/var"]


def test_get_many_reads_the_named_ones_and_skips_the_missing():
    z, _ = backend(ZFS_FUSE)
    out = "p/a\ttype\tfilesystem\t-\np/a\torigin\t-\t-\n"
    z.runner.queue.append((1, out, "cannot open 'p/b': dataset does not exist\n"))
    found = z.get_many(["p/a", "p/b", "p/a"])
    assert list(found) == ["p/a"]
    (argv,) = z.runner.calls
    assert "-r" not in argv and argv[-2:] == ("p/a", "p/b")  # each name once, never recursive


def test_get_many_raises_what_is_not_a_missing_dataset():
    z, _ = backend(ZFS_FUSE)
    z.runner.queue.append((1, "", "cannot open 'p/b': dataset does not exist\npermission denied\n"))
    with pytest.raises(ZfsError):
        z.get_many(["p/a", "p/b"])
    assert backend(ZFS_FUSE)[0].get_many([]) == {}


def test_filesystems_never_read_snapshots():
    z, _ = backend(ZFS_FUSE)
    z.runner.queue.append((0, "p/a/var\np/a\n", ""))
    assert z.filesystems("p/a") == ["p/a", "p/a/var"]
    assert z.runner.calls == [("zfs", "list", "-H", "-o", "name", "-t", "filesystem", "-r", "p/a")]


def test_clones_per_dialect():
    z, _ = backend(OPENZFS)
    z.runner.queue.append((0, "p/a@1\tp/b,p/c\np/a@2\t\n", ""))
    assert z.clones(["p/a@1", "p/a@2"]) == {"p/a@1": ["p/b", "p/c"], "p/a@2": []}
    assert z.runner.calls == [("zfs", "get", "-Hp", "-o", "name,value", "clones", "p/a@1", "p/a@2")]
    z, _ = backend(ZFS_FUSE)  # no clones property: the pool's origins, names only
    z.runner.queue.append((0, "p\t-\np/a\t-\np/b\tp/a@1\n", ""))
    assert z.clones(["p/a@1"]) == {"p/a@1": ["p/b"]}
    assert z.runner.calls[0][:6] == ("zfs", "list", "-H", "-o", "name,origin", "-t")


def test_snapshots_oldest_first():
    z, _ = backend(ZFS_FUSE)
    z.runner.queue.append((0, "p/a@new\t90\np/a@old\t12\n", ""))
    assert z.snapshots("p/a") == ["p/a@old", "p/a@new"]

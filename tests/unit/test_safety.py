"""Units behind the hostile-testing fixes: names, titles, private directories and files, the
lock's holder text, held signals, a root without dpkg status, which siblings are checkpoints."""

from __future__ import annotations

import os
import signal

import pytest

from apt_clone import dpkgstatus, lock, paths, signals
from apt_clone.checkpoints.tree import boot_environments
from apt_clone.errors import OperationFailed, Refused, UsageError
from apt_clone.names import MAX_NAME, next_name, snapshot_tag, validate_name, validate_title
from apt_clone.zfs import Dataset


@pytest.mark.parametrize(
    ("current", "existing", "tags", "expected"),
    [
        ("rootfs-nmu-000", set(), frozenset(), "rootfs-nmu-001"),
        ("rootfs-nmu-000", {"rootfs-nmu-001"}, frozenset(), "rootfs-nmu-002"),
        ("rootfs-nmu-000", set(), frozenset({"nmu-001"}), "rootfs-nmu-002"),  # a user's own snapshot
        ("debian", set(), frozenset(), "debian-nmu-001"),
        ("my root", set(), frozenset(), "rootfs-nmu-001"),  # no valid prefix: start afresh
    ],
)
def test_next_name(current, existing, tags, expected):
    assert next_name(current, existing, tags) == expected


def test_next_name_after_a_64_character_name_ending_in_999_is_valid():
    current = "b" * 61 + "999"
    name = next_name(current, {current})
    assert len(name) <= MAX_NAME and validate_name(name) == name and name != current
    assert next_name(current, {current, name}) not in (current, name)


def test_snapshot_tag():
    assert snapshot_tag("rootfs-nmu-001") == "nmu-001" and snapshot_tag("other") == "other"


@pytest.mark.parametrize("title", ["", "  ", "bad\udcff", "tab\there", "bidi\u202e", "x" * 201])
def test_bad_titles_are_usage_errors(title):
    with pytest.raises(UsageError):
        validate_title(title)


def test_secure_dir_refuses_links_other_owners_and_writable_dirs(tmp_path):
    good = paths.secure_dir(str(tmp_path / "a" / "b"))
    assert os.path.isdir(good) and (os.stat(good).st_mode & 0o777) == 0o700
    link = tmp_path / "link"
    link.symlink_to(good)
    with pytest.raises(Refused, match="symbolic link"):
        paths.secure_dir(str(link))
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    os.chmod(open_dir, 0o777)
    with pytest.raises(Refused, match="writable by other users"):
        paths.secure_dir(str(open_dir / "below"))
    assert not (open_dir / "below").exists()  # nothing is made below an unsafe directory
    with pytest.raises(FileNotFoundError):
        paths.secure_dir(str(tmp_path / "missing"), create=False)
    if os.geteuid() == 0:
        theirs = tmp_path / "theirs"
        theirs.mkdir()
        os.chown(theirs, 65534, 65534)
        with pytest.raises(Refused, match="owned by uid 65534"):
            paths.secure_dir(str(theirs))


def test_open_private_never_follows_a_link(tmp_path):
    target = tmp_path / "target"
    target.write_text("keep")
    (tmp_path / "lock").symlink_to(target)
    with pytest.raises(OSError):
        paths.open_private(str(tmp_path / "lock"), os.O_RDWR | os.O_CREAT)
    os.link(target, tmp_path / "hard")
    with pytest.raises(Refused, match="one link"):
        paths.open_private(str(tmp_path / "hard"), os.O_RDWR)
    assert target.read_text() == "keep"


def test_holder_text_is_checked_and_printable(tmp_path):
    path = tmp_path / "lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.write(fd, b'{"pid": 7, "command": "x\\u001b[2Jy", "since": "2026-01-01T00:00:00+00:00"}')
        assert lock.describe_holder(fd) == "pid 7, 'x?[2Jy', since 2026-01-01T00:00:00+00:00"
        os.ftruncate(fd, 0)
        os.pwrite(fd, b'{"pid": "7; rm", "command": "c", "since": "now"}', 0)
        assert lock.describe_holder(fd) == "unknown holder"
    finally:
        os.close(fd)


def test_lock_is_exclusive_and_waits_within_a_bound(tmp_path, monkeypatch):
    monkeypatch.setenv("APT_CLONE_RUN_DIR", str(tmp_path / "run"))
    with lock.exclusive("first"):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            code = 1
            try:
                with lock.exclusive("second", wait=0.2):
                    pass
            except Refused as exc:
                code = 0 if "pid" in str(exc) and "'first'" in str(exc) else 2
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    with lock.exclusive("again"):
        pass


def test_a_signal_in_a_shielded_block_is_held_then_raised():
    finished = []
    with signals.interrupts(), pytest.raises(signals.Interrupted), signals.shielded():
        os.kill(os.getpid(), signal.SIGINT)
        finished.append("undo")  # the block runs to its end
    assert finished == ["undo"]


def test_a_held_signal_is_dropped_when_the_undo_says_so():
    with signals.interrupts(), signals.shielded(then_raise=False):
        os.kill(os.getpid(), signal.SIGINT)
    with signals.interrupts(), pytest.raises(signals.Interrupted):
        os.kill(os.getpid(), signal.SIGTERM)


def test_a_root_without_dpkg_status_is_an_error_when_required(tmp_path):
    assert dpkgstatus.read(str(tmp_path)) == {}
    with pytest.raises(OperationFailed, match="no dpkg status"):
        dpkgstatus.read(str(tmp_path), required=True)


def _fs(name: str, mountpoint: str, *, local: bool = True, user: dict[str, str] | None = None) -> Dataset:
    return Dataset(
        name, "filesystem", None, 1, 0, 0, 0, 0, mountpoint, "noauto", False, user or {},
        frozenset({"mountpoint"}) if local else frozenset(),
    )  # fmt: skip


def test_only_siblings_that_mount_where_the_root_does_are_boot_environments():
    tree = [
        _fs("p/ROOT", "none"),
        _fs("p/ROOT/a", "/"),
        _fs("p/ROOT/b", "/"),
        _fs("p/ROOT/home", "/home"),
        _fs("p/ROOT/c", "/run/apt-clone/mnt/c.x", user={"org.aptclone:saved-mountpoint": "/"}),
        _fs("p/ROOT/inherits", "/ROOT/inherits", local=False),
    ]
    found = [ds.name for ds in boot_environments(tree, "p/ROOT", "p/ROOT/a")]
    assert found == ["p/ROOT/a", "p/ROOT/b", "p/ROOT/c"]


def test_dpkg_status_is_read_with_python_apt(tmp_path):
    status = tmp_path / "var/lib/dpkg/status"
    status.parent.mkdir(parents=True)
    status.write_text(
        "Package: a\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0\nDescription: x\n continued\n\n"
        "Package: gone\nStatus: deinstall ok config-files\nVersion: 2\n\n"
        "Package: a\nStatus: install ok installed\nArchitecture: i386\nVersion: 1.0\n\n"
        "Package: b\nStatus: install ok half-configured\nArchitecture: all\nVersion: 3:2.1-1\n"
    )
    assert dpkgstatus.read(str(tmp_path)) == {"a": "1.0", "a:i386": "1.0", "b": "3:2.1-1"}

"""The journal: atomic, fsynced, root-only, round-trips every field, knows a dead process."""

import os
import stat

from apt_clone.engine.journal import Journal, boot_id
from apt_clone.engine.opstate import AptOp


def test_roundtrip_and_permissions(tmp_path, monkeypatch):
    monkeypatch.setenv("APT_CLONE_STATE_DIR", str(tmp_path / "state"))
    journal = Journal("rpool/ROOT")
    st = AptOp(
        op="install",
        packages=["a"],
        command="apt-clone install a",
        root="/",
        container="rpool/ROOT",
        dataset="rpool/ROOT/x",
        steps={"plan": "done", "fetch": "started"},
        changes=[["a", None, "1", "install"]],
    )
    journal.save(st)
    assert journal.load() == st
    assert stat.S_IMODE(os.stat(tmp_path / "state").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(journal.path).st_mode) == 0o600
    assert not os.path.exists(journal.path + ".tmp")
    journal.finish(st, "done")
    assert journal.load().state == "done" and not journal.load().unfinished


def test_only_a_live_apt_of_the_same_boot_keeps_an_operation_working(tmp_path, monkeypatch):
    from apt_clone.apt.operation import still_working

    monkeypatch.setenv("APT_CLONE_STATE_DIR", str(tmp_path))
    root = str(tmp_path / "root")
    st = AptOp(op="upgrade", packages=[], command="c", root=root, container="c", dataset="c/x", pid=1)
    assert st.unfinished and still_working(st) is None  # a pid proves nothing: pid 1 lives
    st.apt_pgid, st.boot_id = os.getpgid(0), boot_id()
    assert "apt-get (pid" in (still_working(st) or "")  # this test's own process group stands in
    st.boot_id = "another-boot"
    assert still_working(st) is None


def test_unknown_fields_from_a_newer_version_are_ignored(tmp_path, monkeypatch):
    monkeypatch.setenv("APT_CLONE_STATE_DIR", str(tmp_path))
    journal = Journal("p/ROOT")
    os.makedirs(tmp_path, exist_ok=True)
    with open(journal.path, "w") as f:
        f.write(
            '{"op": "upgrade", "packages": [], "command": "c", "root": "/", "container": "p/ROOT",'
            ' "dataset": "p/ROOT/a", "future_field": 1}'
        )
    assert journal.load().op == "upgrade"


def test_a_schema_2_record_is_read_into_the_typed_one():
    """Schema 2 kept a checkpoint command's state in ``args`` and an apt operation's checkpoint in
    loose fields; both come back as this version's records."""
    from apt_clone.engine.opstate import SCHEMA, DestroyOp, from_json
    from apt_clone.model import Created

    env = {"packages": [], "command": "c", "root": "/", "container": "p/ROOT", "dataset": "p/ROOT/a", "schema": 2}
    apt = from_json({**env, "op": "install", "packages": ["x"], "checkpoint": "b", "target": "p/ROOT/b",
                     "snapshot": "p/ROOT/a@b", "kind": "upgrade", "title": "t", "boot_target": None,
                     "boot_snapshot": None, "steps": {"apt": "done"}, "args": {}})  # fmt: skip
    assert isinstance(apt, AptOp) and apt.packages == ["x"] and apt.schema == SCHEMA
    assert apt.created == Created("b", "p/ROOT/b", "p/ROOT/a@b", "upgrade", "t")
    gone = from_json({**env, "op": "destroy", "args": {"name": "b", "dataset": "p/ROOT/b", "boot_dataset": None,
                      "promote": ["p/ROOT/c"], "promoted": [["p/ROOT/c", "p/ROOT/b"]], "deferred": None}})  # fmt: skip
    assert isinstance(gone, DestroyOp) and (gone.target, gone.promote) == ("p/ROOT/b", ["p/ROOT/c"])
    assert gone.promoted == [["p/ROOT/c", "p/ROOT/b"]]
    no_checkpoint = from_json({**env, "op": "upgrade", "steps": {"plan": "done"}})
    assert isinstance(no_checkpoint, AptOp) and no_checkpoint.created is None


def test_a_record_of_an_unknown_operation_is_refused():
    import pytest

    from apt_clone.engine.opstate import from_json

    with pytest.raises(ValueError, match="unknown operation"):
        from_json({"op": "frobnicate", "command": "c", "root": "/", "container": "p", "dataset": "p/a"})


def test_the_journal_keeps_its_name_across_versions(tmp_path, monkeypatch):
    """A journal an older version left is found: its name is the container's SHA-1, however computed."""
    import hashlib

    monkeypatch.setenv("APT_CLONE_STATE_DIR", str(tmp_path))
    digest = hashlib.sha1(b"rpool/ROOT").hexdigest()[:8]
    assert Journal("rpool/ROOT").path == str(tmp_path / f"journal-rpool_ROOT-{digest}.json")

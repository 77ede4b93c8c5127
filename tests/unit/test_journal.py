"""The journal: atomic, fsynced, root-only, round-trips every field, knows a dead process."""

import os
import stat

from apt_clone.journal import Journal, OpState


def test_roundtrip_and_permissions(tmp_path, monkeypatch):
    monkeypatch.setenv("APT_CLONE_STATE_DIR", str(tmp_path / "state"))
    journal = Journal("rpool/ROOT")
    st = OpState(
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


def test_a_dead_runner_is_not_alive(tmp_path, monkeypatch):
    monkeypatch.setenv("APT_CLONE_STATE_DIR", str(tmp_path))
    st = OpState(op="upgrade", packages=[], command="c", root="/", container="c", dataset="c/x", pid=os.getpid())
    assert st.alive
    st.pid = 2**22 + 12345  # beyond pid_max on these machines
    assert not st.alive and st.unfinished


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

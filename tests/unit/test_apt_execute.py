"""How apt-get is run: dpkg's conffile questions, apt-listchanges; the planning child's session."""

from __future__ import annotations

from types import SimpleNamespace

import pytest


def test_dpkgs_conffile_question_is_a_persons_at_a_terminal_else_the_setting_decides():
    """At a terminal without -y dpkg asks and apt-listchanges shows (as under plain apt); without
    one, [apt] conffiles: keep yours, take the package's, or let dpkg ask."""
    from apt_clone.apt.execute import AptTarget, apt_env, apt_get_argv

    def forced(conffiles: str) -> list[str]:
        return [a for a in apt_get_argv("install", ("x",), conffiles=conffiles) if a.startswith("Dpkg::Options::")]

    assert forced("keep") == ["Dpkg::Options::=--force-confdef", "Dpkg::Options::=--force-confold"]
    assert forced("new") == ["Dpkg::Options::=--force-confnew"]
    assert forced("ask") == []
    assert "APT_LISTCHANGES_FRONTEND" not in apt_env(True, person=True)
    assert (
        apt_env(False)["APT_LISTCHANGES_FRONTEND"] == "none" and apt_env(False)["DEBIAN_FRONTEND"] == "noninteractive"
    )

    class Person:
        def person_answers(self) -> bool:
            return True

    from apt_clone.apt import operation
    from apt_clone.engine.opstate import AptOp

    st = AptOp(op="install", command="apt-clone install x", root="/", container="p/ROOT", dataset="p/ROOT/a")
    ctx = SimpleNamespace(runner=None, system=SimpleNamespace(root="/"))
    target = operation._apt_target(ctx, st, Person())  # type: ignore[arg-type]
    assert isinstance(target, AptTarget) and target.conffiles == "ask"


def _talker(body: str) -> list[str]:
    """A child that speaks the planning session's protocol as ``body`` (Python) does."""
    import sys

    return [sys.executable, "-c", body]


def test_the_planners_fetch_words_the_childs_error_and_closes_once():
    from apt_clone.apt.plan import Planner
    from apt_clone.errors import OperationFailed
    from apt_clone.runner import DEFAULT_RUNNER

    body = "import sys, json; sys.stdin.readline(); print(json.dumps({'error': 'Failed to fetch x', 'reboot': []}))"
    planner = Planner(DEFAULT_RUNNER.spawn(_talker(body)))
    with pytest.raises(OperationFailed, match="downloading the packages failed: Failed to fetch x"):
        planner.fetch()
    planner.close()
    planner.close()
    assert planner.closed and planner.child.proc.returncode == 0


def test_a_planner_whose_child_is_gone_fails_in_one_line():
    from apt_clone.apt.plan import Planner
    from apt_clone.errors import OperationFailed
    from apt_clone.runner import DEFAULT_RUNNER

    planner = Planner(DEFAULT_RUNNER.spawn(_talker("pass")))
    with pytest.raises(OperationFailed, match="downloading the packages failed"):
        planner.fetch()
    planner.close()


def test_a_planner_reads_the_debs_asking_for_a_reboot():
    from apt_clone.apt.plan import Planner
    from apt_clone.runner import DEFAULT_RUNNER

    body = "import sys, json; sys.stdin.readline(); print(json.dumps({'error': None, 'reboot': ['/a/k_1_all.deb']}))"
    planner = Planner(DEFAULT_RUNNER.spawn(_talker(body)))
    assert planner.fetch() == ["/a/k_1_all.deb"]
    planner.close()


@pytest.mark.parametrize(("person", "in_clone", "ahead"), [(False, False, 1), (True, True, 1), (True, False, 0)])
def test_the_snapshot_steps_first_read_starts_beside_the_download_only_when_nobody_is_asked(
    monkeypatch, person, in_clone, ahead
):
    """Started ahead, a read must still be the truth when it is taken: never when a person may
    be asked (the reboot question) between the download and the snapshot."""
    from apt_clone import config
    from apt_clone.apt import operation
    from apt_clone.engine.opstate import AptOp

    started: list[object] = []
    monkeypatch.setattr(operation.services, "read_family_ahead", started.append)
    monkeypatch.setattr(operation, "_fetch", lambda *a: [])
    monkeypatch.setattr(operation.config, "load", lambda: config.Config())

    class Asked:
        def emit(self, event: object) -> None:
            pass

        def person_answers(self) -> bool:
            return person

    st = AptOp(op="install", command="apt-clone install x", root="/", container="p/ROOT", dataset="p/ROOT/a")
    st.request_in_clone = in_clone
    st.plan = {"op": "install", "download_bytes": 0, "space_bytes": 0}
    operation._step_fetch("ctx", st, Asked())  # type: ignore[arg-type]
    assert len(started) == ahead

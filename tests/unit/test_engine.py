"""The step engine: journal before and after each step, undo newest first, one recovery policy
(undo before the commit step, complete from it on), pause, fault points."""

from __future__ import annotations

import pytest

from apt_clone.engine.opstate import OpState
from apt_clone.engine.steps import Engine, OpSpec, Step
from apt_clone.errors import OperationFailed

SPEC = OpSpec("demo", (("a", ""), ("b", ""), ("c", ""), ("d", "")), commit="c")
AFTER_DONE = OpSpec("demo", SPEC.steps, commit="b", commit_when="done")


def _world(spec: OpSpec = SPEC, fail: str | None = None, *, outcome_follows: bool = False):
    st = OpState(op="demo", command="demo", root="/", container="p/ROOT", dataset="p/ROOT/a")
    log: list[str] = []
    saved: list[dict[str, str]] = []

    def work(name: str):
        def run() -> None:
            log.append(name)
            if name == fail:
                raise OperationFailed(f"{name} broke")

        return run

    steps = [Step(n, work(n), (lambda n=n: log.append(f"undo {n}"))) for n in spec.names]
    engine = Engine(spec, st, lambda: saved.append(dict(st.steps)), outcome_follows=outcome_follows)
    return st, log, saved, steps, engine


def test_every_step_is_journalled_before_and_after():
    st, log, saved, steps, engine = _world()
    assert engine.run(steps) is None
    assert log == ["a", "b", "c", "d"]
    # before the commit (c), a step's end goes with the next one's start: one save
    assert saved == [
        {"a": "started"},
        {"a": "done", "b": "started"},
        {"a": "done", "b": "done", "c": "started"},
        {"a": "done", "b": "done", "c": "done"},
        {"a": "done", "b": "done", "c": "done", "d": "started"},
        {"a": "done", "b": "done", "c": "done", "d": "done"},
    ]


def test_when_the_outcome_follows_the_last_step_s_end_is_saved_with_it():
    st, log, saved, steps, engine = _world(outcome_follows=True)
    assert engine.run(steps) is None
    assert saved[-1] == {"a": "done", "b": "done", "c": "done", "d": "started"}  # the caller's finish: d done
    assert st.steps["d"] == "done" and len(saved) == 5
    st, log, saved, steps, engine = _world(outcome_follows=True)
    assert engine.run(steps, pause_at="c") == "c" and saved[-1] == {"a": "done", "b": "done", "c": "done"}
    # a commit on the last step's end: cut short, it would be undone, so its end is saved at once
    last_done = OpSpec("demo", SPEC.steps, commit="d", commit_when="done")
    st, log, saved, steps, engine = _world(last_done, outcome_follows=True)
    engine.run(steps)
    assert saved[-1] == {"a": "done", "b": "done", "c": "done", "d": "done"}


def test_a_commit_on_done_and_a_pause_save_the_step_s_end_at_once():
    st, log, saved, steps, engine = _world(AFTER_DONE)
    engine.run(steps)
    assert {"a": "done", "b": "done"} in saved  # the commit: a crash now completes, never undoes
    assert {"a": "done"} not in saved
    st, log, saved, steps, engine = _world()
    assert engine.run(steps, pause_at="a") == "a"
    assert saved[-1] == {"a": "done"}  # a resume starts after it


def test_a_failure_is_recorded_and_undo_goes_newest_first():
    st, log, saved, steps, engine = _world(fail="b")
    with pytest.raises(OperationFailed, match="b broke"):
        engine.run(steps)
    assert st.steps == {"a": "done", "b": "failed"}
    engine.undo(steps, lambda step, exc: exc)
    assert log[2:] == ["undo b", "undo a"]  # c and d never ran: nothing to undo
    assert st.steps == {"a": "undone", "b": "undone"}


def test_a_failing_undo_stops_and_leaves_the_journal_failed():
    st, log, saved, steps, engine = _world()
    st.steps = {"a": "done", "b": "done"}

    def broken() -> None:
        raise OSError("disk gone")

    steps[1] = Step("b", steps[1].run, broken)
    with pytest.raises(OperationFailed, match="undo of b"):
        engine.undo(steps, lambda step, exc: OperationFailed(f"undo of {step}: {exc}"))
    assert st.state == "failed" and st.steps == {"a": "done", "b": "done"}  # a is not undone past b


@pytest.mark.parametrize(
    ("journal", "completed", "log"),
    [
        ({"a": "done", "b": "started"}, False, ["undo b", "undo a"]),
        ({"a": "done", "b": "done", "c": "started"}, True, ["c", "d"]),  # the commit step began: finish
        ({"a": "done", "b": "done", "c": "done", "d": "failed"}, True, ["d"]),
    ],
)
def test_recovery_undoes_before_the_commit_and_completes_after(journal, completed, log):
    st, done, saved, steps, engine = _world()
    st.steps = dict(journal)
    assert engine.recover(steps, lambda step, exc: exc) is completed
    assert done == log


def test_a_commit_on_done_completes_only_once_its_step_finished():
    st, done, saved, steps, engine = _world(AFTER_DONE)
    st.steps = {"a": "done", "b": "started"}
    assert engine.recover(steps, lambda step, exc: exc) is False and done == ["undo b", "undo a"]
    st, done, saved, steps, engine = _world(AFTER_DONE)
    st.steps = {"a": "done", "b": "done"}
    assert engine.recover(steps, lambda step, exc: exc) is True and done == ["c", "d"]


def test_pause_after_a_step_and_resume_from_an_earlier_one():
    st, log, saved, steps, engine = _world()
    assert engine.run(steps, pause_at="b") == "b" and log == ["a", "b"]
    assert engine.run(steps) is None and log == ["a", "b", "c", "d"]
    assert engine.run(steps, start="c") is None and log[-2:] == ["c", "d"]


def test_steps_that_do_not_apply_are_skipped_and_fault_points_fire(monkeypatch):
    st, log, saved, steps, engine = _world()
    monkeypatch.setenv("APT_CLONE_TEST_FAIL_AT", "demo.d:before")
    with pytest.raises(OperationFailed, match="injected at demo.d:before"):
        engine.run(steps, applies=lambda name: name != "b")
    assert log == ["a", "c"] and st.steps == {"a": "done", "b": "skipped", "c": "done"}

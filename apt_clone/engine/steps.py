"""The one step engine: every journalled operation, checkpoint command or apt operation, runs its
named steps here.

An operation (:class:`OpSpec`) is an ordered list of named steps and a commit step; at run time
each step is a :class:`Step` (its work and its undo). The engine journals the state before and
after every step (``save`` writes and fsyncs it; a step's end before the commit goes with the
next step's start, one save: see :meth:`Engine.run`), offers the test hooks ``OP.STEP:before|ran|after``
(apt operations also answer to the older ``STEP:before|after``), skips steps already done
(recovery, resume) or that do not apply, pauses after a named step, and undoes the steps that
ran, newest first. Recovery is the same for every operation (:meth:`Engine.recover`): before the
commit step it undoes what ran, from it on it completes the rest. Whether a failure while the
command runs is undone at once or asks the user first is the caller's: :mod:`apt_clone.operations`
and :mod:`apt_clone.apt.operation`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from .. import testhooks
from ..record import record
from ..signals import interrupts
from .journal import OpState

RAN = ("started", "done", "failed")
"""Step states whose work may have changed something (what an undo looks at)."""


@record(frozen=True)
class OpSpec:
    """A journalled operation: its steps (name, what it does) and its point of no return.

    ``commit``: the step from which the operation is completed, not undone; ``commit_when``:
    "started" (once that step began: its work cannot be taken back, as a destroy) or "done" (once
    it finished: an apt run that went through is kept)."""

    ops: str
    steps: tuple[tuple[str, str], ...]
    commit: str
    commit_when: str = "started"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.steps)

    def committed(self, st: OpState) -> bool:
        return self.passed(st.steps)

    def passed(self, steps: Mapping[str, str]) -> bool:
        """Whether a journal with these step states is past the point of no return."""
        state = steps.get(self.commit)
        return state == "done" if self.commit_when == "done" else state in RAN


@record(frozen=True)
class Step:
    name: str
    run: Callable[[], None]
    undo: Callable[[], None] | None = None


class Engine:
    """Runs one operation's steps against its journal state; ``current`` is the step in hand.

    ``outcome_follows``: the caller saves the operation's outcome as soon as :meth:`run` returns
    (``Journal.finish``), so the last step's end is saved with it, not before it, when a crash
    between the two, finding that step started, would complete the operation all the same."""

    def __init__(
        self,
        spec: OpSpec,
        st: OpState,
        save: Callable[[], None],
        *,
        bare_points: bool = False,
        outcome_follows: bool = False,
    ) -> None:
        self.spec = spec
        self.st = st
        self.save = save
        self.current = ""
        self.bare_points = bare_points
        self.outcome_follows = outcome_follows

    def _point(self, step: str, when: str) -> None:
        testhooks.point(f"{self.st.op}.{step}:{when}")
        if self.bare_points:
            testhooks.point(f"{step}:{when}")

    def run(
        self,
        steps: Sequence[Step],
        *,
        start: str | None = None,
        applies: Callable[[str], bool] = lambda name: True,
        after: Callable[[str], None] = lambda name: None,
        pause_at: str | None = None,
    ) -> str | None:
        """Run ``steps`` (from ``start``, else every one not done); returns the step it paused
        after, or None when all ran. SIGINT and SIGTERM raise Interrupted meanwhile. A step that
        raises is recorded as failed (one whose work never began is not) and the error goes on.

        A step's end is saved with the next step's start while the operation is before its commit
        (one save fewer a step: each fsyncs): a crash between the two finds the step started,
        and recovery undoes it as it undoes a done one. From the commit on, at the last step and
        at a pause, the end is saved at once (a recovery then completes, or a resume starts,
        after it), but for the last step's when the outcome follows it (``outcome_follows``). The
        first save is the first step's start: before it nothing has changed."""
        st = self.st
        names = [s.name for s in steps]
        if start is not None:
            todo = list(steps[names.index(start) :])
        else:
            todo = [s for s in steps if st.steps.get(s.name) != "done"]
        with interrupts():
            try:
                for step in todo:
                    self.current = step.name
                    if not applies(step.name):
                        st.steps[step.name] = "skipped"  # a pause there still stops here
                    else:
                        self._point(step.name, "before")
                        st.steps[step.name] = "started"
                        self.save()
                        step.run()
                        self._point(step.name, "ran")  # the work is done, its record not yet
                        st.steps[step.name] = "done"
                        after(step.name)
                        last = step is todo[-1]
                        with_outcome = (
                            last and self.outcome_follows and self.spec.passed({**st.steps, step.name: "started"})
                        )
                        if pause_at == step.name or ((self.spec.committed(st) or last) and not with_outcome):
                            self.save()
                        self._point(step.name, "after")
                    if pause_at == step.name and step is not steps[-1]:
                        return step.name
            except BaseException:
                if st.steps.get(self.current) == "started":
                    st.steps[self.current] = "failed"
                raise
        return None

    def undo(self, steps: Sequence[Step], on_error: Callable[[str, Exception], BaseException]) -> None:
        """Undo the steps that ran, newest first; a failing undo is recorded (the journal stays
        for ``recover``) and ``on_error(step, exc)`` is raised."""
        for step in reversed(steps):
            if self.st.steps.get(step.name) not in RAN:
                continue
            try:
                if step.undo is not None:
                    step.undo()
            except Exception as exc:
                self.st.state = "failed"
                self.save()
                raise on_error(step.name, exc) from exc
            self.st.steps[step.name] = "undone"
            self.save()

    def recover(
        self,
        steps: Sequence[Step],
        on_error: Callable[[str, Exception], BaseException],
        applies: Callable[[str], bool] = lambda name: True,
    ) -> bool:
        """After a crash or a failure: complete the operation when it passed its commit step
        (steps that were cut short run again), else undo what ran. True when completed."""
        if self.spec.committed(self.st):
            for name, state in list(self.st.steps.items()):
                if state in ("started", "failed"):
                    self.st.steps[name] = "pending"
            self.run(steps, applies=applies)
            return True
        self.undo(steps, on_error)
        return False


REGISTRY: dict[str, OpSpec] = {}
"""Every journalled operation (``apt-clone --steps`` prints this), by the ``op`` its journal records."""


def register(spec: OpSpec, *ops: str) -> OpSpec:
    for op in ops or (spec.ops,):
        REGISTRY[op] = spec
    return spec

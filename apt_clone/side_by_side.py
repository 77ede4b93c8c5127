"""Independent ZFS commands run at once (a checkpoint's root and its boot twin live in two
pools; a listing's read of the tree and of the pool): what each command waits for overlaps.
Plain threads: ``concurrent.futures`` would cost every command's start-up more than it saves."""

from __future__ import annotations

import threading
from collections.abc import Callable

from .signals import shielded

TYPE_CHECKING = False  # typing itself is not imported at run time: -l's start-up (mypy knows the name)
if TYPE_CHECKING:
    from typing import TypeVar

    A = TypeVar("A")
    B = TypeVar("B")


def _all(calls: list[Callable[[], object]]) -> list[object]:
    """Each call's result, the calls run at once (the first in this thread); every call has
    ended when this returns, a Ctrl-C or SIGTERM included (held until then: an undo never races
    a command still running); the first failure, in the order given, is raised."""
    results: list[object] = [None] * len(calls)
    errors: list[BaseException | None] = [None] * len(calls)

    def work(i: int) -> None:
        try:
            results[i] = calls[i]()
        except BaseException as exc:  # handed to the caller's thread, raised there
            errors[i] = exc

    with shielded():
        others = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(1, len(calls))]
        for thread in others:
            thread.start()
        work(0)
        for thread in others:
            thread.join()
    for error in errors:
        if error is not None:
            raise error
    return results


def side_by_side(*calls: Callable[[], object] | None) -> None:
    """Run the calls (None: skipped) at once (see :func:`_all`)."""
    todo = [call for call in calls if call is not None]
    if len(todo) <= 1:
        for call in todo:
            call()
        return
    _all(todo)


def both(first: Callable[[], A], second: Callable[[], B]) -> tuple[A, B]:
    """The two calls' results, run at once (see :func:`_all`)."""
    one, two = _all([first, second])
    return one, two  # type: ignore[return-value]

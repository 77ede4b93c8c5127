"""SIGINT and SIGTERM as an exception, and the blocks they must not cut short.

While :func:`interrupts` is active, either signal raises :class:`Interrupted` (a BaseException,
so that neither ``except Exception`` nor typer's KeyboardInterrupt handling swallows it). Inside
:func:`shielded` (an undo, a rollback, a teardown of mounts) a signal is held instead and raised
when the block ends: a second Ctrl-C never leaves half an undo behind.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """SIGTERM or SIGINT arrived."""


_shield_depth = 0
_held: int | None = None
_seen: int | None = None


def _handler(signum: int, frame: FrameType | None) -> None:
    global _held, _seen
    _seen = signum
    if _shield_depth:
        if _held is None:
            os.write(2, b"apt-clone: interrupt held until the undo in progress is finished; please wait\n")
        _held = _held or signum
        return
    raise Interrupted(signal.Signals(signum).name)


def interrupted_by() -> str | None:
    """The signal that arrived during this process's last :func:`interrupts` block, if any."""
    return signal.Signals(_seen).name if _seen else None


@contextmanager
def interrupts() -> Iterator[None]:
    """SIGTERM and SIGINT raise :class:`Interrupted` while the block runs."""
    old = {s: signal.signal(s, _handler) for s in SIGNALS}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextmanager
def shielded(*, then_raise: bool = True) -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block ends; then raise a held one (unless the block
    itself is raising: that error is the one to report; or ``then_raise`` is False: an undo of
    an operation that is failing anyway, whose own outcome is what gets reported)."""
    global _shield_depth, _held
    _shield_depth += 1
    failed = False
    try:
        yield
    except BaseException:
        failed = True
        raise
    finally:
        _shield_depth -= 1
        if _shield_depth == 0 and _held is not None:
            signum, _held = _held, None
            if then_raise and not failed:
                raise Interrupted(signal.Signals(signum).name)

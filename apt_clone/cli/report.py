"""The one line an error gets on standard error, and its exit status: what the command line and
the fast paths (the hook's and the boot's commands) print when a command fails."""

from __future__ import annotations

import sys

from ..errors import EXIT_FAILED, EXIT_INTERRUPTED, AptCloneError
from ..signals import Interrupted


def safe_output() -> None:
    """Text that is not UTF-8 (a name or title given as raw bytes) is printed escaped, never
    as a UnicodeEncodeError."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")


def _left_behind() -> str:
    """What an interrupted command left for ``recover``, as the end of its message."""
    from ..engine.journal import pending_anywhere  # only an interrupted command reads it: off every start-up

    command = pending_anywhere()
    return f": '{command}' did not finish; run 'apt-clone recover'" if command else ""


_LAST: list[str] = []


def last_report() -> str | None:
    """The line :func:`report` printed last (for a JSON error document)."""
    return _LAST[-1] if _LAST else None


def _line(text: str) -> None:
    _LAST.append(text)
    print(f"apt-clone: {text}", file=sys.stderr)


def report(exc: BaseException, debug: bool = False) -> int:
    """Print the one line an error gets (with the traceback when debugging); its exit status."""
    if debug:
        import traceback  # only --debug prints one

        traceback.print_exc()
    if isinstance(exc, (KeyboardInterrupt, Interrupted)):
        _line(f"interrupted{_left_behind()}")
        return EXIT_INTERRUPTED
    if isinstance(exc, AptCloneError):
        _line(exc.message)
        return exc.exit_code
    if isinstance(exc, OSError):
        _line(f"{exc.strerror or exc}{': ' + str(exc.filename) if exc.filename else ''}")
        return EXIT_FAILED
    _line(str(exc))
    return EXIT_FAILED

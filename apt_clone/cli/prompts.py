"""Questions to the user. questionary is imported only when a question is really asked."""

from __future__ import annotations

import sys

from ..errors import OperationFailed, Refused


def _interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def confirm(message: str, *, yes: bool) -> bool:
    """``-y`` answers yes; with no terminal and no ``-y`` the question is refused, never hangs."""
    if yes:
        return True
    if not _interactive():
        raise Refused(f"{message} -- no terminal to ask on: re-run with -y to confirm")
    import questionary  # prompt_toolkit: only when a person is asked

    # The question carries the seed's own "(y/n)": no second hint of questionary's beside it.
    answer = questionary.confirm(message, default=False, instruction=" ").ask()
    if answer is None:
        raise OperationFailed("cancelled")
    return bool(answer)


def choose(message: str, choices: list[str], labels: list[str] | None = None) -> str:
    """A select prompt among ``choices``, each shown as its label (a checkpoint with its title);
    only on a terminal."""
    if not _interactive():
        raise Refused(f"{message} -- no terminal to ask on: name one ({', '.join(choices)})")
    if not choices:
        raise OperationFailed("nothing to choose from")
    import questionary  # prompt_toolkit: only when a person is asked

    shown = [questionary.Choice(title=t, value=c) for c, t in zip(choices, labels or choices, strict=True)]
    answer = questionary.select(message, choices=shown).ask()
    if answer is None:
        raise OperationFailed("cancelled")
    return str(answer)

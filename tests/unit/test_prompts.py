"""The questions: the -a picker shows each checkpoint with its title and answers its name."""

from __future__ import annotations

import io
import sys

import pytest
import questionary

from apt_clone.cli import prompts
from apt_clone.errors import Refused


class _Asked:
    def __init__(self, answer: object) -> None:
        self.answer = answer

    def ask(self) -> object:
        return self.answer


def test_the_picker_shows_titles_and_returns_the_name(monkeypatch):
    shown: list[tuple[str, str]] = []

    def select(message, choices):
        shown.extend((c.title, c.value) for c in choices)
        return _Asked(choices[1].value)

    monkeypatch.setattr(prompts, "_interactive", lambda: True)
    monkeypatch.setattr(questionary, "select", select)
    names = ["rootfs-nmu-000", "rootfs-nmu-001"]
    labels = ["rootfs-nmu-000  Debian [initial]", "rootfs-nmu-001  before nginx [nmu-001 : Dec 04 20:00:00 2026]"]
    assert prompts.choose("Activate which?", names, labels) == "rootfs-nmu-001"
    assert shown == list(zip(labels, names, strict=True))


def test_without_a_terminal_the_picker_names_the_choices(monkeypatch):
    monkeypatch.setattr(prompts, "_interactive", lambda: False)
    with pytest.raises(Refused, match=r"name one \(a, b\)"):
        prompts.choose("Activate which?", ["a", "b"], ["a  one", "b  two"])


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_a_bar_on_a_terminal_and_a_line_each_elsewhere(monkeypatch):
    from apt_clone.cli.app import _Progress

    term = _Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    bar = _Progress("removed")
    bar(1, 4, "cp-1")
    bar(4, 4, "cp-4")
    bar.done()
    assert term.getvalue() == (f"\r[{'#' * 7}{' ' * 23}] 1/4 removed cp-1\x1b[K\r[{'#' * 30}] 4/4 removed cp-4\x1b[K\n")
    plain = io.StringIO()
    monkeypatch.setattr(sys, "stderr", plain)
    lines = _Progress("removed")
    lines(1, 2, "cp-1")
    lines.done()
    assert plain.getvalue() == "apt-clone: removed cp-1 (1/2)\n"

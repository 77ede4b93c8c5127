"""Waiting for a child's exit: woken by the kernel when it exits, never by polling with sleeps
(the planning child is waited for between the download and the snapshot), and bounded."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from apt_clone.runner import Runner, wait_exit

LINGER = "import sys, time; sys.stdin.read(); time.sleep(0.02); raise SystemExit(4)"
"""Reads its input to the end, then takes a moment to exit, as a child tearing down does."""


@pytest.fixture
def no_sleeps(monkeypatch):
    def refuse(seconds: float) -> None:
        raise AssertionError(f"slept {seconds} s to wait for a child")

    monkeypatch.setattr(time, "sleep", refuse)


def test_closing_a_spawned_child_waits_for_its_exit_without_polling(no_sleeps):
    child = Runner().spawn([sys.executable, "-c", LINGER])
    assert child.close() == 4


def test_a_child_past_the_time_given_is_not_waited_for():
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        assert wait_exit(proc, 0.05) is None and proc.returncode is None
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
    assert wait_exit(proc, 30) == 0


def test_a_child_reaped_already_answers_its_status(no_sleeps):
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(7)"])
    proc.wait()
    assert wait_exit(proc, 1) == 7


def test_a_detached_command_with_a_time_limit_is_waited_for_without_polling(no_sleeps):
    got = Runner().run_detached([sys.executable, "-c", "print('up'); raise SystemExit(3)"], timeout=30)
    assert (got.returncode, got.stdout, got.timed_out) == (3, "up\n", False)


def test_a_detached_command_past_its_time_limit_is_ended():
    got = Runner().run_detached([sys.executable, "-c", "import time; time.sleep(60)"], timeout=0.2)
    assert got.timed_out and not got.ok

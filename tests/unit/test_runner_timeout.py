"""The runner's time limit: past it the child's whole process group goes, and the result says so."""

from __future__ import annotations

import sys
import time

from apt_clone.runner import Runner

CHILD = """
import os, sys, time
pid = os.fork()
if pid == 0:
    time.sleep(60)
    os._exit(0)
with open(sys.argv[1], "w") as f:
    f.write(f"{os.getpid()} {pid}")
time.sleep(60)
"""


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_a_command_past_its_time_limit_is_ended_with_its_children(tmp_path):
    pids = tmp_path / "pids"
    started = time.monotonic()
    got = Runner().run([sys.executable, "-c", CHILD, str(pids)], timeout=1.0)
    assert got.timed_out and not got.ok
    assert time.monotonic() - started < 30
    parent, child = (int(p) for p in pids.read_text().split())
    deadline = time.monotonic() + 10
    while not (_gone(parent) and _gone(child)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(parent) and _gone(child)


def test_a_command_within_its_time_limit_is_not_timed_out():
    got = Runner().run([sys.executable, "-c", "print('hi')"], timeout=30)
    assert got.ok and got.stdout == "hi\n" and not got.timed_out

"""``APT_CLONE_TRACE=1``: one line per command on stderr, with its time, its status and when it
started on the system's monotonic clock (what bench.hook puts side-by-side commands and the
hook's call on one time line with)."""

from __future__ import annotations

import re
import sys
import time

import pytest

from apt_clone.runner import TRACE_ENV, Runner

LINE = re.compile(r"^\[\s*([0-9.]+)s rc=(-?[0-9]+) @([0-9.]+)\] (.*)$")


def test_a_traced_command_says_how_long_it_took_and_when_it_started(monkeypatch, capsys):
    monkeypatch.setenv(TRACE_ENV, "1")
    before = time.monotonic()
    Runner().run([sys.executable, "-c", "import time; time.sleep(0.05); raise SystemExit(3)"])
    after = time.monotonic()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    got = LINE.match(lines[0])
    assert got is not None, lines[0]
    took, status, start, argv = float(got[1]), int(got[2]), float(got[3]), got[4]
    assert status == 3 and argv.startswith(sys.executable + " -c ")
    assert before - 0.001 <= start and start + took <= after + 0.001 and took >= 0.05


def test_without_the_setting_nothing_is_printed(monkeypatch, capsys):
    monkeypatch.delenv(TRACE_ENV, raising=False)
    Runner().run([sys.executable, "-c", "pass"])
    assert capsys.readouterr().err == ""


def test_the_bench_reads_the_trace_as_printed(monkeypatch, capsys):
    bench_hook = pytest.importorskip("bench.hook")
    monkeypatch.setenv(TRACE_ENV, "1")
    Runner().run(["true"])
    ((took, at, command),) = bench_hook.TRACED.findall(capsys.readouterr().err)
    assert command == "true" and float(took) >= 0 and float(at) > 0


def test_side_by_side_spans_count_once_in_the_wall_time():
    bench_hook = pytest.importorskip("bench.hook")
    assert bench_hook.wall([(0.0, 1.0), (0.5, 1.5), (2.0, 2.25)]) == pytest.approx(1.75)
    assert bench_hook.wall([(0.0, 3.0), (1.0, 2.0)]) == pytest.approx(3.0)
    assert bench_hook.wall([]) == 0.0


def test_lines_traced_at_once_from_two_threads_stay_whole():
    """Two commands read side by side are traced from two threads at the same moment; a line is
    written whole (print wrote its text and its newline apart: two lines on one)."""
    import os
    import subprocess

    body = (
        "import sys, threading, time\n"
        "from apt_clone.runner import trace\n"
        "sys.setswitchinterval(1e-6)\n"
        "def many(name):\n"
        "    for _ in range(3000):\n"
        "        trace(f'zfs {name}', time.monotonic(), 0)\n"
        "threads = [threading.Thread(target=many, args=(n,)) for n in ('list', 'get')]\n"
        "[t.start() for t in threads]\n"
        "[t.join() for t in threads]\n"
    )
    env = {**os.environ, TRACE_ENV: "1"}
    got = subprocess.run([sys.executable, "-c", body], env=env, capture_output=True, text=True, check=True)
    lines = got.stderr.splitlines()
    assert len(lines) == 6000
    bad = [line for line in lines if not re.fullmatch(r"\[\s*[0-9.]+s rc=0 @[0-9.]+\] zfs (list|get)", line)]
    assert bad == []

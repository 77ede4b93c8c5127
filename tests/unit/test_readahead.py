"""Reads started ahead (issue #36): the runner hands a started command's result to the run that
asks for it, once; the lock taken early is the one the command's ``exclusive`` holds; the file
the last checkpoint leaves starts only ZFS reads, once."""

from __future__ import annotations

import os
import sys

import pytest

from apt_clone import lock, readahead, runner
from apt_clone.errors import Refused
from apt_clone.runner import TRACE_ENV, Runner


@pytest.fixture(autouse=True)
def _clean(tmp_path, monkeypatch):
    monkeypatch.setenv("APT_CLONE_RUN_DIR", str(tmp_path / "run"))
    yield
    runner.drop_read_ahead()
    while lock._early:
        os.close(lock._early.pop())


def counting(log) -> list[str]:
    """A command that notes each start in ``log`` and prints the count so far."""
    return [sys.executable, "-c", f"f = open({str(log)!r}, 'a+'); f.write('x'); f.seek(0); print(len(f.read()))"]


def test_a_run_takes_the_result_of_the_same_command_read_ahead_once(tmp_path, monkeypatch, capsys):
    log = tmp_path / "log"
    argv = counting(log)
    runner.read_ahead([argv])
    monkeypatch.setenv(TRACE_ENV, "1")
    first = Runner().run(argv)
    assert first.ok and first.stdout == "1\n" and log.read_text() == "x"  # not started a second time
    assert capsys.readouterr().err.rstrip().endswith(" (read ahead)")
    again = Runner().run(argv)  # taken once: the next run is a run
    assert again.stdout == "2\n" and log.read_text() == "xx"
    assert not capsys.readouterr().err.rstrip().endswith(" (read ahead)")


def test_a_run_with_its_own_input_or_another_argv_never_takes_a_read_ahead(tmp_path):
    log = tmp_path / "log"
    argv = counting(log)
    runner.read_ahead([argv])
    assert Runner().run(argv, input="").stdout in ("1\n", "2\n")
    assert Runner().run([*argv[:2], argv[2] + "  # other"]).stdout in ("2\n", "3\n")
    runner.drop_read_ahead()  # the one read ahead ends, untaken
    assert log.read_text() == "xxx"


def test_a_command_that_cannot_start_is_run_when_asked(tmp_path):
    runner.read_ahead([["/nonexistent/zfs", "list"]])
    assert runner._AHEAD == {}
    with pytest.raises(runner.CommandNotFound):
        Runner().run(["/nonexistent/zfs", "list"])


def test_the_lock_taken_early_is_the_one_exclusive_holds(tmp_path):
    assert lock.take_early() and lock.take_early()  # once: a second call keeps the first
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child: the lock is held by its parent
        lock._early.clear()  # the parent's, inherited: another process opens its own
        code = 1
        try:
            with lock.exclusive("other", wait=0.0):
                pass
        except Refused:
            code = 0 if not lock.take_early() else 2
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    with lock.exclusive("hook-pre", wait=0.0):  # adopts it: never waits on itself
        assert lock.held() and not lock._early
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child: free again once exclusive let it go
        os._exit(0 if lock.take_early() else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


READS = [
    ["zfs", "list", "-H", "-o", "name", "-t", "filesystem", "-r", "p/ROOT/be1"],
    ["zfs", "get", "-Hp", "-o", "name,property,value,source", "type", "p/ROOT", "p/ROOT/be1"],
]


def test_the_remembered_reads_start_once_under_the_lock(tmp_path, monkeypatch):
    started: list[list[list[str]]] = []
    monkeypatch.setattr(runner, "read_ahead", lambda argvs: started.append([list(a) for a in argvs]))
    assert not readahead.start()  # nothing remembered: neither the lock nor a command
    assert not lock._early and started == []
    readahead.remember(READS)
    assert (tmp_path / "run" / readahead.FILE).stat().st_mode & 0o777 == 0o600
    assert readahead.start() and started == [READS] and lock._early
    assert not (tmp_path / "run" / readahead.FILE).exists()
    assert not readahead.start() and started == [READS]  # once


def test_only_zfs_reads_are_remembered_or_started(tmp_path, monkeypatch):
    readahead.remember([*READS, ["zfs", "destroy", "p/ROOT/be1"]])
    assert not (tmp_path / "run" / readahead.FILE).exists()
    readahead.remember([["zfs", "get", "a\nb"]])
    assert not (tmp_path / "run" / readahead.FILE).exists()
    (tmp_path / "run").mkdir(mode=0o700, exist_ok=True)
    planted = tmp_path / "run" / readahead.FILE  # in root's run directory, written by hand
    planted.write_bytes(b"zfs\0list\0p\nsh\0-c\0reboot\nzfs\0set\0x=y\0p\nzfs\0get\0all\0p\n")
    assert readahead.remembered() == [["zfs", "list", "p"], ["zfs", "get", "all", "p"]]
    planted.write_bytes(b"zfs\0list\0" + b"p" * readahead.MAX_SIZE)
    assert readahead.remembered() == []


def test_a_remembered_file_another_user_could_have_placed_is_not_read(tmp_path):
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    (tmp_path / "elsewhere").write_bytes(b"zfs\0list\0p\n")
    (run / readahead.FILE).symlink_to(tmp_path / "elsewhere")
    assert readahead.remembered() == [] and not readahead.start()

"""Health checks of a trial boot: health.d's required and wanted executables (real processes,
time limits), failed and named systemd units (a recorded systemctl), and what is refused."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from apt_clone import config
from apt_clone.runner import Completed, Runner
from apt_clone.trial import health


class Systemd(Runner):
    """The real runner, but ``systemctl`` answers from a table."""

    def __init__(self, failed: str = "", active: dict[str, str] | None = None) -> None:
        self.failed, self.active = failed, active or {}

    def run(self, argv, **kw):  # type: ignore[no-untyped-def, override]
        if argv[0] == "systemctl" and argv[1] == "list-units":
            return Completed(tuple(argv), 0, self.failed, "")
        if argv[0] == "systemctl" and argv[1] == "is-active":
            state = self.active.get(argv[2], "inactive")
            return Completed(tuple(argv), 0 if state == "active" else 3, state + "\n", "")
        return super().run(argv, **kw)


def _check(root, kind, name, body, mode=0o755):
    d = root / health.HEALTH_DIR / kind
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o755)
    path = d / name
    path.write_text(f"#!{sys.executable}\n{body}\n")
    path.chmod(mode)
    return path


def test_all_required_checks_passing_is_healthy_and_wanted_failures_only_warn(tmp_path):
    _check(tmp_path, "required", "10-ok", "raise SystemExit(0)")
    _check(tmp_path, "wanted", "20-meh", "print('disk 91% full'); raise SystemExit(1)")
    v = health.evaluate(Systemd(), str(tmp_path), config.Config())
    assert v.ok, v
    assert [w.name for w in v.warnings] == ["20-meh"] and "disk 91% full" in v.warnings[0].detail


def test_a_failing_required_check_makes_the_trial_unhealthy_and_says_which(tmp_path):
    _check(tmp_path, "required", "10-ok", "raise SystemExit(0)")
    _check(tmp_path, "required", "30-db", "import sys; print('db down', file=sys.stderr); raise SystemExit(2)")
    v = health.evaluate(Systemd(), str(tmp_path), config.Config())
    assert not v.ok
    assert v.summary() == "30-db: exit status 2: db down"


def test_a_check_that_hangs_fails_at_its_time_limit(tmp_path):
    _check(tmp_path, "required", "50-hang", "import time; time.sleep(600)")
    v = health.evaluate(Systemd(), str(tmp_path), config.Config(check_timeout=1))
    assert not v.ok and v.failures[0].detail == "no answer within 1 s"


def test_failed_and_inactive_units_are_required_failures(tmp_path):
    cfg = config.Config(trial_units=("nginx.service", "ssh.service"))
    v = health.evaluate(
        Systemd("broken.service loaded failed failed x\n", {"ssh.service": "active"}), str(tmp_path), cfg
    )
    assert not v.ok
    assert {(r.name, r.detail) for r in v.failures} == {
        ("failed units", "broken.service"),
        ("nginx.service", "inactive"),
    }


def test_a_check_others_could_change_is_not_run_and_fails(tmp_path):
    marker = tmp_path / "ran"
    path = _check(tmp_path, "required", "10-open", f"open({str(marker)!r}, 'w')", mode=0o777)
    v = health.evaluate(Systemd(), str(tmp_path), config.Config())
    assert not v.ok and "writable by other users" in v.failures[0].detail and not marker.exists()
    path.chmod(0o755)
    link = path.parent / "20-link"
    link.symlink_to(path)
    v = health.evaluate(Systemd(), str(tmp_path), config.Config())
    assert [r.name for r in v.failures] == ["20-link"] and "symbolic link" in v.failures[0].detail


def test_files_that_are_not_executable_or_are_dpkg_leftovers_are_not_checks(tmp_path):
    _check(tmp_path, "required", "README", "raise SystemExit(1)", mode=0o644)
    _check(tmp_path, "required", "10-x.dpkg-old", "raise SystemExit(1)")
    assert health.evaluate(Systemd(), str(tmp_path), config.Config()).ok


def test_health_none_checks_nothing(tmp_path):
    _check(tmp_path, "required", "10-no", "raise SystemExit(1)")
    v = health.evaluate(Systemd("x.service loaded failed failed\n"), str(tmp_path), config.Config(health="none"))
    assert v.ok and not v.results


def _sh_check(root, kind, name, body, mode=0o755):
    d = root / health.HEALTH_DIR / kind
    d.mkdir(parents=True, exist_ok=True)
    path = d / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(mode)
    return path


def test_whatever_a_failing_check_prints_or_is_named_its_verdict_is_one_line(tmp_path):
    """Tabs, newlines and terminal controls in a check's output or name come out escaped (a
    ZFS property and a terminal take them); a check that cannot run at all fails, never raises."""
    _sh_check(tmp_path, "required", "10-tab", "printf 'disk\\tfull\\n\\033[2J' >&2; exit 1")
    _sh_check(tmp_path, "required", "20-new\nline", "exit 1")
    noperl = _sh_check(tmp_path, "required", "30-nointerp", "")
    noperl.write_text("#!/nonexistent/interpreter\n")
    _sh_check(tmp_path, "required", "40-empty", "").write_text("")
    v = health.evaluate(Systemd(), str(tmp_path), config.Config())
    got = {r.name: r.detail for r in v.failures}
    assert got == {
        "10-tab": "exit status 1: disk\\tfull",
        "20-new\\nline": "exit status 1: exited with status 1",
        "30-nointerp": "cannot run it: its interpreter is missing",
        "40-empty": "cannot run it: Exec format error",
    }, got
    assert all(c.isprintable() for c in v.summary()), v.summary()


def test_a_passing_check_that_leaves_a_process_behind_is_judged_by_its_exit(tmp_path):
    """``setsid sleep 40 & exit 0``: passed at once, the process it left is never waited for."""
    import time

    _sh_check(tmp_path, "required", "10-spawns", "setsid sleep 40 & exit 0")
    started = time.monotonic()
    v = health.evaluate(Systemd(), str(tmp_path), config.Config(check_timeout=3))
    assert v.ok and v.results[-1].detail == "passed", v
    assert time.monotonic() - started < 3, "the check's leftover was waited for"
    subprocess.run(["pkill", "-f", "^sleep 40$"], check=False)


@pytest.mark.parametrize("where", ["etc/apt-clone/health.d", "etc/apt-clone", "etc"])
def test_checks_under_a_directory_others_can_write_are_not_run(tmp_path, where):
    marker = tmp_path / "ran"
    _sh_check(tmp_path, "required", "10-ok", f"touch {marker}; exit 0")
    os.chmod(tmp_path / where, 0o777)
    v = health.evaluate(Systemd(), str(tmp_path), config.Config())
    assert not v.ok and not marker.exists()
    assert v.failures[0].detail == f"not run: {tmp_path / where} is writable by other users (mode 777): not trusted"
    os.chmod(tmp_path / where, 0o755)
    assert health.evaluate(Systemd(), str(tmp_path), config.Config()).ok and marker.exists()


def test_a_check_is_run_by_a_descriptor_of_the_file_checked(tmp_path):
    """What runs is the file that was checked, by its descriptor: never its path looked up again."""
    out = tmp_path / "argv0"
    _sh_check(tmp_path, "required", "10-who", f'echo "$0" > {out}')
    assert health.evaluate(Systemd(), str(tmp_path), config.Config()).ok
    assert out.read_text().strip().startswith(("/proc/self/fd/", "/dev/fd/")), out.read_text()


def test_a_fifo_or_device_as_a_check_is_refused_without_opening_it(tmp_path):
    d = tmp_path / health.HEALTH_DIR / "required"
    d.mkdir(parents=True)
    os.mkfifo(d / "10-fifo", 0o755)
    v = health.evaluate(Systemd(), str(tmp_path), config.Config())
    assert [(r.name, r.detail) for r in v.failures] == [("10-fifo", "not run: it is not a regular file")]

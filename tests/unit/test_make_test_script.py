"""scripts/test.sh (make test): a Ctrl-C stops the VM lane that runs beside the host suite, not
only the suite (a background job of sh ignores SIGINT); the lane's output and status come after."""

import os
import signal
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:  # a zombie not yet reaped is gone too
            return f.read().rpartition(")")[2].split()[0] == "Z"
    except OSError:
        return False


def _wait_for(what, seconds=20.0):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if what():
            return True
        time.sleep(0.05)
    return False


def _default_signals() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)


def test_ctrl_c_stops_the_lane_beside_the_suite(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    fake = venv / "bin" / "python"
    # scripts/deb.py (the .deb built first) returns; vm/lane.py and pytest, each a long sleep
    # that says its pid.
    fake.write_text(
        "#!/bin/sh\n"
        'case "$1" in scripts/deb.py) exit 0 ;; esac\n'
        f'case "$1" in vm/lane.py) echo $$ > {tmp_path}/prep.pid ;; *) echo $$ > {tmp_path}/suite.pid ;; esac\n'
        "exec sleep 60\n"
    )
    fake.chmod(0o755)
    env = {**os.environ, "VENV": str(venv), "MAKE": "false", "SKIP_VM": "0"}
    # As from a terminal: SIGINT not ignored (a background job of a shell, as make test may run
    # here, starts with it ignored, and sh cannot trap a signal ignored on entry).
    script = subprocess.Popen(
        ["sh", "scripts/test.sh"], cwd=REPO, env=env, start_new_session=True, preexec_fn=_default_signals
    )
    try:
        prep_pid, suite_pid = tmp_path / "prep.pid", tmp_path / "suite.pid"
        assert _wait_for(lambda: prep_pid.exists() and suite_pid.exists() and prep_pid.read_text().strip())
        prep = int(prep_pid.read_text())
        os.killpg(script.pid, signal.SIGINT)  # what a Ctrl-C on the terminal does: the foreground group
        assert script.wait(20) == 130
        assert _wait_for(lambda: _gone(prep)), "the lane still runs"
    finally:
        if script.poll() is None:
            os.killpg(script.pid, signal.SIGKILL)


def test_the_lanes_output_and_status_come_after_the_suite(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    fake = venv / "bin" / "python"
    fake.write_text('#!/bin/sh\ncase "$1" in vm/lane.py) echo booted; exit 3 ;; esac\nexit 0\n')
    fake.chmod(0o755)
    env = {**os.environ, "VENV": str(venv), "MAKE": "true", "SKIP_VM": "0"}
    got = subprocess.run(["sh", "scripts/test.sh"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert "vm lane (beside the host suite): booted" in got.stdout
    assert got.returncode == 3  # the suite passed, the lane failed: make test fails

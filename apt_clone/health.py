"""Whether a trial boot is healthy enough to become the default (greenboot's model).

Required checks must all pass; wanted checks only warn:

- executables in ``/etc/apt-clone/health.d/required`` and ``.../wanted`` of the managed root,
  run in name order, each within ``[trial] check-timeout`` seconds (past it its process group
  is ended and it counts as failed). Root runs them, so each must be a regular file of root's
  that no other user can write, in directories no other user can write, never a link;
- with ``[trial] health = failed-units``, no systemd unit in the failed state (required);
- the units named in ``[trial] units``, each active (required).

``[trial] health = none`` turns every check off.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field

from .config import Config
from .runner import Runner

HEALTH_DIR = "etc/apt-clone/health.d"
"""Below the managed root."""


@dataclass(frozen=True)
class CheckResult:
    name: str
    required: bool
    ok: bool
    detail: str


@dataclass(frozen=True)
class Verdict:
    ok: bool
    results: list[CheckResult] = field(default_factory=list)

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if r.required and not r.ok]

    @property
    def warnings(self) -> list[CheckResult]:
        return [r for r in self.results if not r.required and not r.ok]

    def summary(self) -> str:
        if self.failures:
            return "; ".join(f"{r.name}: {r.detail}" for r in self.failures)
        passed = sum(1 for r in self.results if r.ok)
        return f"{passed} check(s) passed" if self.results else "no checks"


def _untrusted(path: str, st: os.stat_result) -> str | None:
    if stat.S_ISLNK(st.st_mode):
        return "is a symbolic link"
    if st.st_uid != 0 and st.st_uid != os.geteuid():
        return f"is owned by uid {st.st_uid}"
    if st.st_mode & 0o022:
        return "is writable by other users"
    return None


def scripts(root: str, kind: str) -> tuple[list[str], list[CheckResult]]:
    """The executables of ``health.d/<kind>`` (name order), and what was refused (as failures)."""
    directory = os.path.join(root, HEALTH_DIR, kind)
    refused: list[CheckResult] = []
    try:
        st = os.lstat(directory)
    except FileNotFoundError:
        return [], []
    why = _untrusted(directory, st) or (None if stat.S_ISDIR(st.st_mode) else "is not a directory")
    if why:
        return [], [CheckResult(f"health.d/{kind}", kind == "required", False, f"not run: {directory} {why}")]
    found = []
    for name in sorted(os.listdir(directory)):
        if name.startswith(".") or name.endswith(("~", ".dpkg-old", ".dpkg-new", ".dpkg-dist")):
            continue
        path = os.path.join(directory, name)
        st = os.lstat(path)
        why = _untrusted(path, st)
        if why is None and not stat.S_ISREG(st.st_mode):
            why = "is not a regular file"
        if why is None and not st.st_mode & 0o100:
            continue  # not executable: not a check (as run-parts does)
        if why:
            refused.append(CheckResult(name, kind == "required", False, f"not run: it {why}"))
            continue
        found.append(path)
    return found, refused


def _run_check(runner: Runner, path: str, required: bool, timeout: int) -> CheckResult:
    got = runner.run([path], timeout=timeout or None)
    name = os.path.basename(path)
    if got.timed_out:
        return CheckResult(name, required, False, f"no answer within {timeout} s")
    if got.ok:
        return CheckResult(name, required, True, "passed")
    return CheckResult(name, required, False, f"exit status {got.returncode}: {got.error_line()}")


def failed_units(runner: Runner) -> CheckResult:
    result = runner.run(["systemctl", "list-units", "--state=failed", "--no-legend", "--plain"])
    if not result.ok:
        return CheckResult("failed units", True, False, f"cannot ask systemd: {result.error_line()}")
    failed = [line.split()[0] for line in result.stdout.splitlines() if line.strip()]
    return CheckResult("failed units", True, not failed, ", ".join(failed) if failed else "none")


def unit_active(runner: Runner, unit: str) -> CheckResult:
    state = runner.run(["systemctl", "is-active", unit]).stdout.strip() or "unknown"
    return CheckResult(unit, True, state == "active", state)


def evaluate(runner: Runner, root: str, cfg: Config) -> Verdict:
    """Run every check of the managed root; healthy when no required one failed."""
    if cfg.health == "none":
        return Verdict(True, [])
    results: list[CheckResult] = [failed_units(runner)] if cfg.health == "failed-units" else []
    results += [unit_active(runner, unit) for unit in cfg.trial_units]
    for kind in ("required", "wanted"):
        paths, refused = scripts(root, kind)
        results += refused
        results += [_run_check(runner, p, kind == "required", cfg.check_timeout) for p in paths]
    return Verdict(not any(r.required and not r.ok for r in results), results)

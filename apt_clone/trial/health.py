"""Whether a trial boot is healthy enough to become the default (greenboot's model).

Required checks must all pass; wanted checks only warn:

- executables in ``/etc/apt-clone/health.d/required`` and ``.../wanted`` of the managed root,
  run in name order, each within ``[trial] check-timeout`` seconds (past it its process group
  is ended and it counts as failed; what it leaves running is never waited for). Root runs
  them, so each must be a regular file of root's that no other user can write, in directories
  up to ``/`` that no other user can write, never through a link; each is run by a descriptor
  of the file that was checked;
- with ``[trial] health = failed-units``, no systemd unit in the failed state (required);
- the units named in ``[trial] units``, each active (required).

``[trial] health = none`` turns every check off.
"""

from __future__ import annotations

import os

from ..config import Config
from ..errors import Refused, Untrusted
from ..paths import open_trusted_dir, open_trusted_entry
from ..record import field, record
from ..runner import CommandNotFound, Runner
from ..text import escaped

HEALTH_DIR = "etc/apt-clone/health.d"
"""Below the managed root."""
SKIPPED = ("~", ".dpkg-old", ".dpkg-new", ".dpkg-dist")
"""Names that are never checks (an editor's or dpkg's leftovers)."""


@record(frozen=True)
class CheckResult:
    name: str
    required: bool
    ok: bool
    detail: str


@record(frozen=True)
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


def _not_run(name: str, required: bool, why: str) -> CheckResult:
    return CheckResult(name, required, False, f"not run: {why}")


def _checks(root: str, kind: str) -> tuple[int | None, list[str], list[CheckResult]]:
    """``health.d/<kind>``'s descriptor and entry names (name order; None: no such directory),
    or what refuses it (a failure when required)."""
    directory = os.path.join(root, HEALTH_DIR, kind)
    try:
        fd = open_trusted_dir(directory)
    except FileNotFoundError:
        return None, [], []
    except (Refused, OSError) as exc:
        why = exc.message if isinstance(exc, Refused) else f"{directory}: {exc.strerror}"
        return None, [], [_not_run(f"health.d/{kind}", kind == "required", escaped(why))]
    try:
        names = sorted(os.listdir(fd))
    except OSError as exc:
        os.close(fd)
        return None, [], [_not_run(f"health.d/{kind}", kind == "required", f"{directory}: {exc.strerror}")]
    return fd, [n for n in names if not n.startswith(".") and not n.endswith(SKIPPED)], []


def _run_check(runner: Runner, directory: int, name: str, required: bool, timeout: int) -> CheckResult | None:
    """Run check ``name`` by a descriptor of the file that was checked (never by its path
    again: nothing can swap it in between); None when it is not executable (not a check, as
    run-parts has it). Its verdict is its exit status within ``timeout`` seconds."""
    shown = escaped(name)
    try:
        fd = open_trusted_entry(directory, name, shown)
    except Refused as exc:
        return _not_run(shown, required, f"it {exc.why}" if isinstance(exc, Untrusted) else exc.message)
    except OSError as exc:
        return _not_run(shown, required, f"cannot open it: {exc.strerror}")
    try:
        if not os.fstat(fd).st_mode & 0o100:
            return None
        try:
            got = runner.run_detached([f"/proc/self/fd/{fd}"], timeout=timeout or None, pass_fds=(fd,))
        except (OSError, CommandNotFound) as exc:  # no interpreter, not a program (an empty file)
            why = exc.strerror if isinstance(exc, OSError) else "its interpreter is missing"
            return CheckResult(shown, required, False, f"cannot run it: {why}")
    finally:
        os.close(fd)
    if got.timed_out:
        return CheckResult(shown, required, False, f"no answer within {timeout} s")
    if got.ok:
        return CheckResult(shown, required, True, "passed")
    said = got.error_line() if (got.stdout + got.stderr).strip() else f"exited with status {got.returncode}"
    return CheckResult(shown, required, False, f"exit status {got.returncode}: {escaped(said)}")


def failed_units(runner: Runner) -> CheckResult:
    result = runner.run(["systemctl", "list-units", "--state=failed", "--no-legend", "--plain"])
    if not result.ok:
        return CheckResult("failed units", True, False, f"cannot ask systemd: {result.error_line()}")
    failed = [line.split()[0] for line in result.stdout.splitlines() if line.strip()]
    return CheckResult("failed units", True, not failed, ", ".join(failed) if failed else "none")


def unit_active(runner: Runner, unit: str) -> CheckResult:
    """``unit`` is active (its name never starts like an option: :data:`config.UNIT`)."""
    state = runner.run(["systemctl", "is-active", unit]).stdout.strip() or "unknown"
    return CheckResult(unit, True, state == "active", state)


def evaluate(runner: Runner, root: str, cfg: Config) -> Verdict:
    """Run every check of the managed root; healthy when no required one failed."""
    if cfg.health == "none":
        return Verdict(True, [])
    results: list[CheckResult] = [failed_units(runner)] if cfg.health == "failed-units" else []
    results += [unit_active(runner, unit) for unit in cfg.trial_units]
    for kind in ("required", "wanted"):
        directory, names, refused = _checks(root, kind)
        results += refused
        if directory is None:
            continue
        try:
            for name in names:
                found = _run_check(runner, directory, name, kind == "required", cfg.check_timeout)
                results += [found] if found is not None else []
        finally:
            os.close(directory)
    return Verdict(not any(r.required and not r.ok for r in results), results)

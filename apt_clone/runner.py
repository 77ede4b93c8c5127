"""The one place where apt-clone runs subprocesses: argv lists only, never a shell."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence

from .errors import OperationFailed
from .record import record

TRACE_ENV = "APT_CLONE_TRACE"
"""Set to 1: print every command run, with its time and status, to stderr (for profiling)."""


def trace(text: str, started: float, status: int) -> None:
    """With :data:`TRACE_ENV` set: one line on stderr, ``[  0.012s rc=0 @8123.456] zfs ...``: how
    long it took, its status and when it started (``time.monotonic()``, one clock for every
    process, so side-by-side commands and several processes fall on one time line)."""
    if os.environ.get(TRACE_ENV) == "1":
        # One write of the whole line: those of side-by-side threads never share a line.
        sys.stderr.write(f"[{time.monotonic() - started:7.3f}s rc={status} @{started:.3f}] {text}\n")
        sys.stderr.flush()


@record(frozen=True)
class Completed:
    """The outcome of one finished command."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool = False
    """It ran past its time limit: its process group was terminated."""

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def error_line(self) -> str:
        """The most telling line of stderr (or stdout), for a one-line message."""
        for text in (self.stderr, self.stdout):
            lines = [line.strip() for line in text.splitlines() if line.strip()]
            if lines:
                return lines[0]
        return f"{self.argv[0]} exited with status {self.returncode}"


class CommandNotFound(OperationFailed):
    """The program to run is not installed."""


class Runner:
    """Runs argv lists. Tests substitute a fake for parsing and error-mapping units."""

    def run(
        self,
        argv: Sequence[str],
        *,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        cwd: str | None = None,
        stdin_path: str | None = None,
        stdout_path: str | None = None,
    ) -> Completed:
        """Run to completion capturing output; never raises on a non-zero status.

        The child has its own session: a Ctrl-C on the terminal reaches apt-clone alone, which
        decides (an undo in progress finishes its commands; otherwise the child is killed).

        ``stdin_path`` / ``stdout_path`` connect a file instead (for ``zfs send``/``recv`` streams).
        ``timeout``: seconds; past it the child's whole process group is terminated and the
        result says ``timed_out``.
        """
        _check_argv(argv)
        started = time.monotonic()
        timed_out = False
        plain = input is None and env is None and cwd is None and stdin_path is None and stdout_path is None
        ahead = _AHEAD.pop(tuple(argv), None) if plain and _AHEAD else None
        with contextlib.ExitStack() as files:
            stdin = files.enter_context(open(stdin_path, "rb")) if stdin_path else None
            stdout = files.enter_context(open(stdout_path, "wb")) if stdout_path else subprocess.PIPE
            data = None if stdin is not None else input.encode() if input is not None else None
            if ahead is not None:
                proc, started = ahead
            else:
                try:
                    proc = subprocess.Popen(
                        list(argv),
                        stdin=stdin if stdin is not None else subprocess.PIPE if data is not None else None,
                        stdout=stdout,
                        stderr=subprocess.PIPE,
                        env=_merged_env(env),
                        cwd=cwd,
                        start_new_session=True,
                    )
                except FileNotFoundError as exc:
                    raise CommandNotFound(f"{argv[0]}: command not found (is it installed?)") from exc
            try:
                raw_out, raw_err = proc.communicate(data, timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                terminate_group(proc, grace=2.0)
                raw_out, raw_err = proc.communicate()
            except BaseException:
                terminate_group(proc)
                raise
        out = raw_out.decode("utf-8", "replace") if isinstance(raw_out, bytes) else ""
        trace(" ".join(argv) + (" (read ahead)" if ahead else ""), started, proc.returncode)
        return Completed(tuple(argv), proc.returncode, out, raw_err.decode("utf-8", "replace"), timed_out)

    def read_ahead(self, argvs: Iterable[Sequence[str]]) -> None:
        """Start reads a later :meth:`run` of the same argv takes (the module's :func:`read_ahead`);
        tests' runners start nothing."""
        read_ahead(argvs)

    def run_detached(
        self, argv: Sequence[str], *, timeout: float | None, pass_fds: Sequence[int] = (), keep: int = 65536
    ) -> Completed:
        """Run with no input and judge by the exit status alone: its output goes to files (the
        first ``keep`` bytes of each are kept), so a process it leaves behind holding them is
        never waited for. ``timeout``: past it the process group is ended (``timed_out``).
        ``pass_fds``: descriptors the child keeps (a program run by its descriptor)."""
        _check_argv(argv)
        import tempfile  # the health checks' runs only: off every command's start-up

        timed_out = False
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            try:
                proc = subprocess.Popen(
                    list(argv),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    pass_fds=tuple(pass_fds),
                    start_new_session=True,
                )
            except FileNotFoundError as exc:
                raise CommandNotFound(f"{argv[0]}: command not found (is it installed?)") from exc
            try:
                rc = wait_exit(proc, timeout)
            except BaseException:
                terminate_group(proc)
                raise
            if rc is None:
                timed_out = True
                terminate_group(proc, grace=2.0)
            texts = [os.pread(f.fileno(), keep, 0).decode("utf-8", "replace") for f in (out, err)]
        return Completed(tuple(argv), proc.returncode, texts[0], texts[1], timed_out)

    def stream(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        on_start: Callable[[int], None] | None = None,
    ) -> int:
        """Run with the terminal attached (output streams to the user), in its own process group.

        On KeyboardInterrupt or any exception while waiting, the whole process group is
        terminated, then the exception propagates.
        """
        _check_argv(argv)
        try:
            proc = subprocess.Popen(list(argv), env=_merged_env(env), cwd=cwd, start_new_session=True)
        except FileNotFoundError as exc:
            raise CommandNotFound(f"{argv[0]}: command not found (is it installed?)") from exc
        try:
            if on_start is not None:
                on_start(proc.pid)
            return proc.wait()
        except BaseException:
            terminate_group(proc)
            raise

    def spawn(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> Spawned:
        """Start a child that answers requests line by line (its standard input and output, as
        text), its errors on apt-clone's standard error, in its own process group."""
        _check_argv(argv)
        try:
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=_merged_env(env),
                start_new_session=True,
                text=True,
                encoding="utf-8",
                errors="replace",
            )
        except FileNotFoundError as exc:
            raise CommandNotFound(f"{argv[0]}: command not found (is it installed?)") from exc
        return Spawned(tuple(argv), proc, time.monotonic())

    def interactive(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> int:
        """Run a command a person uses (a shell), in the terminal's foreground, as system(3)
        does: while it runs, Ctrl-C and Ctrl-\\ are its own, never apt-clone's."""
        _check_argv(argv)
        try:
            proc = subprocess.Popen(list(argv), env=_merged_env(env))  # caught signals: default again after exec
        except FileNotFoundError as exc:
            raise CommandNotFound(f"{argv[0]}: command not found (is it installed?)") from exc
        held = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGQUIT)}
        try:
            return proc.wait()
        except BaseException:  # SIGTERM to apt-clone: the command goes too
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise
        finally:
            for sig, handler in held.items():
                signal.signal(sig, handler)


@record()
class Spawned:
    """A child started by :meth:`Runner.spawn`: one request line, one answer line."""

    argv: tuple[str, ...]
    proc: subprocess.Popen[str]
    started: float

    def read_line(self) -> str:
        """Its next line ("" once it has ended). Any exception ends its process group."""
        assert self.proc.stdout is not None
        try:
            return self.proc.stdout.readline()
        except BaseException:
            terminate_group(self.proc)
            raise

    def send(self, line: str) -> bool:
        """Write one line to it; False when it is gone."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            return False
        return True

    def close(self) -> int:
        """End it (its input closed; its group ended if it lingers): its exit status."""
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        except BrokenPipeError:
            pass
        rc = wait_exit(self.proc, 10)
        if rc is None:
            terminate_group(self.proc)
            rc = self.proc.returncode
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        trace(" ".join(self.argv), self.started, rc)
        return rc


def wait_exit(proc: subprocess.Popen[bytes] | subprocess.Popen[str], timeout: float | None) -> int | None:
    """``proc``'s exit status once it exits; None past ``timeout`` seconds (None: no limit). The
    kernel wakes the wait at the exit (a pidfd, polled), where Popen.wait(timeout=) polls with
    sleeps."""
    if proc.returncode is not None or timeout is None:
        return proc.wait()
    try:
        pidfd = os.pidfd_open(proc.pid)  # not yet reaped (only Popen reaps it): the pid is still its
    except (AttributeError, OSError):  # a kernel or Python without pidfds: Popen's own wait
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        if not poller.poll(max(0, int(timeout * 1000))):
            return None
    finally:
        os.close(pidfd)
    return proc.wait()


def terminate_group(proc: subprocess.Popen[bytes] | subprocess.Popen[str], grace: float = 10.0) -> None:
    """SIGTERM a child's process group, then SIGKILL it if it does not exit in time."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if wait_exit(proc, grace) is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


_AHEAD: dict[tuple[str, ...], tuple[subprocess.Popen[bytes], float]] = {}
"""Commands started by :func:`read_ahead` that no :meth:`Runner.run` has taken yet, with their start."""


def read_ahead(argvs: Iterable[Sequence[str]]) -> None:
    """Start commands that only read, now, so that a later :meth:`Runner.run` of the same argv
    (no input, environment, directory or files of its own) takes the result instead of running
    them again: a read started while other work goes on (the hook's modules loading, whose reads
    :mod:`apt_clone.readahead` names; an apt job's plan and download), under the lock, whose
    result nothing changes before it is taken. One that cannot start is run when asked."""
    for argv in argvs:
        _check_argv(argv)
        if tuple(argv) in _AHEAD:
            continue
        started = time.monotonic()
        try:
            proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        except OSError:
            continue
        _AHEAD[tuple(argv)] = (proc, started)


def drop_read_ahead() -> None:
    """Wait for the commands read ahead that nothing took, and forget them."""
    while _AHEAD:
        proc, _ = _AHEAD.popitem()[1]
        proc.communicate()


def _check_argv(argv: Sequence[str]) -> None:
    if isinstance(argv, str) or not argv:
        raise TypeError("argv must be a non-empty list of strings")
    for arg in argv:
        if not isinstance(arg, str) or "\0" in arg:
            raise TypeError(f"bad argv element: {arg!r}")


def _merged_env(env: Mapping[str, str] | None) -> dict[str, str] | None:
    if env is None:
        return None
    merged = dict(os.environ)
    merged.update(env)
    return merged


DEFAULT_RUNNER = Runner()

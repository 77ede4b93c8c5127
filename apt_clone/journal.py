"""The durable record of an operation in progress: written and fsynced before and after each step.

It lives in a directory only root can write (``/var/lib/apt-clone`` or ``$APT_CLONE_STATE_DIR``),
one file per managed system, outside the managed root's datasets when ``--root`` is not ``/``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .errors import OperationFailed

STATE_DIR_ENV = "APT_CLONE_STATE_DIR"


def state_dir() -> str:
    return os.environ.get(STATE_DIR_ENV, "/var/lib/apt-clone")


def _now() -> str:
    return dt.datetime.now().astimezone().replace(microsecond=0).isoformat()


@dataclass
class OpState:
    """Everything needed to continue, resume, roll back or recover an operation."""

    op: str
    packages: list[str]
    command: str
    root: str
    container: str
    dataset: str
    update: bool = True
    request_in_clone: bool = False
    pause_at: str | None = None
    then: str | None = None
    state: str = "running"  # running | paused | failed | done | rolled-back | recovered
    pid: int = 0
    started: str = field(default_factory=_now)
    steps: dict[str, str] = field(default_factory=dict)  # step -> started | done | failed | skipped
    error: str | None = None
    plan: dict[str, Any] | None = None
    in_clone: bool | None = None
    reboot: bool = False
    reboot_packages: list[str] = field(default_factory=list)
    checkpoint: str | None = None
    target: str | None = None
    snapshot: str | None = None
    kind: str | None = None
    title: str | None = None
    boot_target: str | None = None
    boot_snapshot: str | None = None
    mount_dir: str | None = None
    apt_pgid: int | None = None
    changes: list[list[str | None]] = field(default_factory=list)
    reboot_asked: bool = False
    reboot_now: bool = False
    args: dict[str, Any] = field(default_factory=dict)  # a checkpoint command's (operations.py)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OpState:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @property
    def unfinished(self) -> bool:
        return self.state in ("running", "paused", "failed")

    @property
    def alive(self) -> bool:
        """Is the process that runs it still there?"""
        if self.state != "running" or not self.pid:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


class Journal:
    """One JSON file, replaced atomically (write, fsync, rename, fsync the directory)."""

    def __init__(self, container: str) -> None:
        digest = hashlib.sha1(container.encode()).hexdigest()[:8]
        safe = container.replace("/", "_")
        self.path = os.path.join(state_dir(), f"journal-{safe}-{digest}.json")

    def load(self) -> OpState | None:
        try:
            with open(self.path, encoding="utf-8") as f:
                return OpState.from_json(json.load(f))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as exc:
            raise OperationFailed(f"cannot read the journal {self.path}: {exc}") from exc

    def save(self, st: OpState) -> None:
        directory = os.path.dirname(self.path)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        os.chmod(directory, 0o700)
        tmp = self.path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(asdict(st), f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def finish(self, st: OpState, state: str) -> None:
        """Record the outcome; a finished journal is kept as the last one, not as pending work."""
        st.state = state
        self.save(st)

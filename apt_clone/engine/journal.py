"""The durable record of an operation in progress: written and fsynced before and after each step.

It lives in a directory only root can write (``/var/lib/apt-clone`` or ``$APT_CLONE_STATE_DIR``),
one file per managed system, outside the managed root's datasets when ``--root`` is not ``/``.
On ``/`` that directory is part of the root dataset, so rolling the root back also rolls the
journal back; a second copy in ``/run/apt-clone`` (``$APT_CLONE_RUN_DIR``), which no rollback
touches, carries a higher sequence number then, and :meth:`Journal.load` takes the newer copy.
"""

from __future__ import annotations

import errno
import json
import os
import time

from ..errors import OperationFailed, Refused
from ..paths import boot_id, open_private, run_dir, secure_dir, state_dir, write_atomic
from .opstate import OpState, from_json

__all__ = ["Journal", "OpState", "boot_id", "pending_anywhere"]


class Journal:
    """One JSON file, replaced atomically (write, fsync, rename, fsync the directory)."""

    def __init__(self, container: str) -> None:
        try:
            from _sha1 import sha1  # CPython's own SHA-1: hashlib's OpenSSL binding costs 3 ms a start
        except ImportError:  # pragma: no cover - an interpreter without it
            from hashlib import sha1  # the same digest
        digest = sha1(container.encode()).hexdigest()[:8]
        name = f"journal-{container.replace('/', '_')}-{digest}.json"
        self.path = os.path.join(state_dir(), name)
        self.run_copy = os.path.join(run_dir(), name)

    def load(self) -> OpState | None:
        """The newer of the durable journal and its /run copy."""
        found = [st for st in (self._read(self.path), self._read(self.run_copy, quiet=True)) if st is not None]
        return max(found, key=lambda st: st.seq) if found else None

    def _read(self, path: str, quiet: bool = False) -> OpState | None:
        try:
            secure_dir(os.path.dirname(path), create=False)
            with os.fdopen(open_private(path, os.O_RDONLY), encoding="utf-8") as f:
                return from_json(json.load(f))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError, Refused) as exc:
            if quiet:
                return None
            raise OperationFailed(f"cannot read the journal {path}: {exc}") from exc

    def save(self, st: OpState) -> None:
        st.seq = max(st.seq + 1, time.time_ns())  # monotonic across operations too
        data = json.dumps(st.to_json(), indent=1, sort_keys=True)
        try:
            write_atomic(self.run_copy, data, durable=False)
            run_ok = True
        except (OSError, Refused):
            run_ok = False  # no /run: the durable copy alone
        try:
            write_atomic(self.path, data, durable=True)
        except OSError as exc:
            # A full pool under the state directory must not stop the command that frees space:
            # the /run copy (newer, so load() takes it) carries the operation until a reboot.
            if not (run_ok and exc.errno in (errno.ENOSPC, errno.EDQUOT)):
                raise

    def remove(self) -> None:
        for path in (self.path, self.run_copy):
            if os.path.exists(path):
                os.unlink(path)

    def finish(self, st: OpState, state: str) -> None:
        """Record the outcome; a finished journal is kept as the last one, not as pending work."""
        st.state = state
        self.save(st)


def pending_anywhere() -> str | None:
    """The command of an unfinished operation of this process, or of one that died, in any
    journal (for the one line an interrupted command prints)."""
    found: dict[str, OpState] = {}
    for directory in (state_dir(), run_dir()):
        try:
            secure_dir(directory, create=False)
            names = sorted(n for n in os.listdir(directory) if n.startswith("journal-") and n.endswith(".json"))
        except (OSError, Refused):
            continue
        for name in names:
            try:
                with os.fdopen(open_private(os.path.join(directory, name), os.O_RDONLY), encoding="utf-8") as f:
                    st = from_json(json.load(f))
            except (OSError, ValueError, TypeError, Refused):
                continue
            if name not in found or st.seq > found[name].seq:  # the newer of the two copies
                found[name] = st
    for st in found.values():
        if st.unfinished and (st.pid == os.getpid() or st.state != "running"):
            return st.command
    return None

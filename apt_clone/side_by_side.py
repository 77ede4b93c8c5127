"""Independent ZFS commands run at once (a checkpoint's root and its boot twin live in two
pools): what each command waits for (a transaction group synced to disk) overlaps."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from .signals import shielded


def side_by_side(*calls: Callable[[], object] | None) -> None:
    """Run the calls (None: skipped) at once. Every call has ended when this returns, a Ctrl-C
    or SIGTERM included (held until then: an undo never races a command still running); the
    first failure, in the order given, is raised."""
    todo = [call for call in calls if call is not None]
    if len(todo) <= 1:
        for call in todo:
            call()
        return
    with shielded(), ThreadPoolExecutor(max_workers=len(todo)) as pool:
        futures = [pool.submit(call) for call in todo]
    for future in futures:
        error = future.exception()
        if error is not None:
            raise error

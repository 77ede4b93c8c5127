"""Fault injection for the tests: named points where a test makes apt-clone die, fail or be
interrupted, chosen by environment variables (unset in production: each point is one lookup).

``APT_CLONE_TEST_KILL_AT=POINT`` SIGKILLs the process there, ``APT_CLONE_TEST_SIGINT_AT=POINT``
sends it SIGINT (as a Ctrl-C would, at a known moment), ``APT_CLONE_TEST_FAIL_AT=POINT`` raises
an error (never in the installed package run by root: :func:`apt_clone.paths.test_setting`).
Points: ``STEP:before|after`` of an apt operation, ``OP.STEP:before|ran|after`` of a
checkpoint command, ``diff.mounted``, ``list.read``.
"""

from __future__ import annotations

import os
import signal

from .errors import OperationFailed
from .paths import test_setting

KILL_ENV = "APT_CLONE_TEST_KILL_AT"
SIGINT_ENV = "APT_CLONE_TEST_SIGINT_AT"
FAIL_ENV = "APT_CLONE_TEST_FAIL_AT"


def point(where: str) -> None:
    """A named point: die, get SIGINT or fail here when a test asks for it."""
    if test_setting(KILL_ENV) == where:
        os.kill(os.getpid(), signal.SIGKILL)
    if test_setting(SIGINT_ENV) == where:
        os.kill(os.getpid(), signal.SIGINT)
    if test_setting(FAIL_ENV) == where:
        raise OperationFailed(f"failure injected at {where}")

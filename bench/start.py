"""The interpreter's start: ``apt-clone --version`` and ``--help`` (issue #36: at most 3x
``python3 -c pass``), and the APT hook's post after a dpkg run that made no checkpoint
(``apt/hook-post``, sh: nothing to check), against bare ``python3 -c pass``, interleaved.
Usage: ``python -m bench.start [--rounds 15]``."""

from __future__ import annotations

import argparse
import os
import tempfile

from .common import PY, Row, bytecode, interleaved, sh, table, within_ratio

START_LIMIT = 3.0
"""Issue #36: ``--version`` and ``--help`` cost at most this many times ``python3 -c pass``."""

POST = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "apt", "hook-post")


def rows(rounds: int) -> list[Row]:
    bytecode()
    with tempfile.TemporaryDirectory(prefix="bench-start.", dir="/var/tmp") as state:
        env = {**os.environ, "APT_CLONE_STATE_DIR": state, "APT_CLONE_RUN_DIR": state}
        got = interleaved(
            {
                "bare": lambda: sh(PY, "-c", "pass"),
                "cli": lambda: sh(PY, "-m", "apt_clone", "--version"),
                "help": lambda: sh(PY, "-m", "apt_clone", "--help", env={**os.environ, "COLUMNS": "80"}),
                "hook": lambda: sh(POST, env=env),
            },
            rounds,
        )
    return [
        within_ratio("start", "`apt-clone --version` against `python3 -c pass`", got["cli"], got["bare"], START_LIMIT),
        within_ratio("start", "`apt-clone --help` against `python3 -c pass`", got["help"], got["bare"], START_LIMIT),
        Row("start", "the hook's post, no checkpoint to record (sh)", got["hook"], got["bare"]),
    ]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    print(table(rows(parser.parse_args().rounds)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

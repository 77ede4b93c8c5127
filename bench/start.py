"""The interpreter's start: ``apt-clone --version`` (the whole command line loaded), and the
APT hook's post after a dpkg run that made no checkpoint (``apt/hook-post``, sh: nothing to
check), against bare ``python3 -c pass``, interleaved. Usage: ``python -m bench.start [--rounds 15]``."""

from __future__ import annotations

import argparse
import os
import tempfile

from .common import PY, Row, bytecode, interleaved, sh, table

POST = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "apt", "hook-post")


def rows(rounds: int) -> list[Row]:
    bytecode()
    with tempfile.TemporaryDirectory(prefix="bench-start.", dir="/var/tmp") as state:
        env = {**os.environ, "APT_CLONE_STATE_DIR": state, "APT_CLONE_RUN_DIR": state}
        got = interleaved(
            {
                "bare": lambda: sh(PY, "-c", "pass"),
                "cli": lambda: sh(PY, "-m", "apt_clone", "--version"),
                "hook": lambda: sh(POST, env=env),
            },
            rounds,
        )
    return [
        Row("start", "`apt-clone --version` against `python3 -c pass`", got["cli"], got["bare"]),
        Row("start", "the hook's post, no checkpoint to record (sh)", got["hook"], got["bare"]),
    ]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    print(table(rows(parser.parse_args().rounds)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

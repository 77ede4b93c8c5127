"""The APT hook's cost per apt run: ``apt-get install`` of one package in the package's host
sandbox (a Debian 13 root on ZFS with a boot pool and the .deb installed, tests/package) with
the hook as shipped, with it turned off in the config (``[hook] enabled = no``: apt still starts
the two calls, which return at once) and with no hook (80apt-clone moved aside), interleaved;
medians and the differences: what the hook adds to an apt run (hook-pre with the snapshots and
clones and the menu, hook-post with the package changes). Each round removes the package again
and destroys the checkpoint, untimed, so every round starts from the same state.

Usage: ``python -m bench.hook [--rounds 7]`` (as root; builds the .deb first if it is stale).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from tests.package.conftest import Host, ensure_host
from tests.sandbox import core

from .common import Row, within_delta

PACKAGE = "ac-extra"
OFF = "[hook]\nenabled = no\n"


def _apt(h: Host, *args: str) -> float:
    t0 = time.perf_counter()
    got = h.apt_get(*args)
    elapsed = time.perf_counter() - t0
    if got.returncode != 0:
        raise SystemExit(f"apt-get {' '.join(args)} failed: {got.stderr[-500:]}")
    return elapsed


def _checkpoints(h: Host) -> list[str]:
    got = h.run("apt-clone", "--json", "-l")
    return [cp["name"] for cp in json.loads(got.stdout) if cp["kind"] == "automatic"]


def measure(rounds: int) -> tuple[float, float, float]:
    """(hook on, hook off, no hook) medians of ``apt-get install``."""
    h = ensure_host()
    core.reset(h.directory)
    conf = Path(h.root, "etc/apt-clone/apt-clone.conf")
    hook_file = Path(h.root, "etc/apt/apt.conf.d/80apt-clone")
    aside = hook_file.with_name("80apt-clone.bench-aside")
    shipped = conf.read_text()
    modes = ("on", "off", "none")
    samples: dict[str, list[float]] = {m: [] for m in modes}
    try:
        for i in range(rounds):
            for mode in modes[i % 3 :] + modes[: i % 3]:
                conf.write_text(shipped if mode == "on" else OFF)
                if mode == "none":
                    hook_file.rename(aside)
                try:
                    samples[mode].append(_apt(h, "install", PACKAGE))
                finally:
                    if mode == "none":
                        aside.rename(hook_file)
                conf.write_text(OFF)
                _apt(h, "remove", PACKAGE)
                for name in _checkpoints(h):
                    h.run("apt-clone", "-y", "-r", name)
    finally:
        conf.write_text(shipped)
        if aside.exists():
            aside.rename(hook_file)
    on, off, none = (statistics.median(samples[m]) for m in modes)
    return on, off, none


def row(rounds: int) -> Row:
    on, _, none = measure(rounds)
    return within_delta("hook", f"`apt-get install {PACKAGE}` with the hook against without", on, none, 0.2)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    on, off, none = measure(args.rounds)
    print(f"apt-get install {PACKAGE}, {args.rounds} rounds interleaved, medians:")
    print(f"  no hook (80apt-clone aside)   {none:.3f} s")
    print(f"  hook off ([hook] enabled=no)  {off:.3f} s  ({off - none:+.3f} s)")
    print(f"  hook on (as shipped)          {on:.3f} s  ({on - none:+.3f} s: the hook's cost per apt run)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The APT hook's cost per apt run: ``apt-get install`` of one package in the package's host
sandbox (a Debian 13 root on ZFS with the .deb installed, tests/package) with the hook on and
with it off (``[hook] enabled = no``), interleaved, medians reported with the difference: what
the hook adds to an apt run (hook-pre with the snapshot and clone, hook-post with the package
changes). Each round removes the package again and destroys the checkpoint, untimed, so every
round starts from the same state.

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


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    h = ensure_host()
    core.reset(h.directory)
    conf = Path(h.root, "etc/apt-clone/apt-clone.conf")
    shipped = conf.read_text()
    samples: dict[str, list[float]] = {"on": [], "off": []}
    try:
        for i in range(args.rounds):
            for mode in ("on", "off") if i % 2 == 0 else ("off", "on"):
                conf.write_text(shipped if mode == "on" else OFF)
                samples[mode].append(_apt(h, "install", PACKAGE))
                conf.write_text(OFF)
                _apt(h, "remove", PACKAGE)
                for name in _checkpoints(h):
                    h.run("apt-clone", "-y", "-r", name)
    finally:
        conf.write_text(shipped)
    on, off = statistics.median(samples["on"]), statistics.median(samples["off"])
    print(f"apt-get install {PACKAGE}, {args.rounds} rounds interleaved, medians:")
    print(f"  hook off  {off:.3f} s")
    print(f"  hook on   {on:.3f} s")
    print(f"  the hook's cost per apt run: {on - off:+.3f} s (ratio {on / off:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

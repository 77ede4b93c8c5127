"""Benchmarks: apt-clone's operations against the raw zfs commands they wrap, side by side.

Runs on a sandbox of its own (``/var/tmp/apt-clone-bench``), reports medians and the ratio
apt-clone / raw for: listing N checkpoints (``apt-clone -l`` vs ``zfs list``), making a
checkpoint (``apt-clone create`` vs ``zfs snapshot`` + ``zfs clone``), destroying one
(``apt-clone -r`` vs ``zfs destroy`` of clone and snapshot), and generating the GRUB menu.
Usage: ``python -m bench.run [--counts 10,100] [--repeat 5]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from apt_clone.boot import grub

SANDBOX = os.environ.get("APT_CLONE_BENCH_SANDBOX", "/var/tmp/apt-clone-bench")


def sh(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=True)


def timed(fn: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--counts", default="10,100")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    py = sys.executable
    sh(py, "-m", "tests.sandbox", "create", "--dir", SANDBOX)
    sh(py, "-m", "tests.sandbox", "reset", "--dir", SANDBOX)
    status = json.loads(sh(py, "-m", "tests.sandbox", "status", "--dir", SANDBOX).stdout)
    root, container, first = status["root"], status["be_container"], f"{status['be_container']}/rootfs-nmu-000"
    ac = [py, "-m", "apt_clone", "--root", root]
    rows = []
    made = 1
    for count in (int(c) for c in args.counts.split(",")):
        # Fill up to `count` checkpoints with raw zfs (fast), each with our metadata.
        while made < count:
            tag = f"bench-{made:04d}"
            sh("zfs", "snapshot", f"{first}@{tag}")
            sh("zfs", "clone", "-o", "canmount=noauto", "-o", "mountpoint=none", f"{first}@{tag}", f"{container}/{tag}")
            sh("zfs", "set", "org.aptclone:title=Bench", f"{container}/{tag}")
            made += 1
        listing = ["zfs", "list", "-H", "-t", "all", "-r", "-o", "name,origin,org.aptclone:title", container]
        raw_list = timed(lambda listing=listing: sh(*listing), args.repeat)
        our_list = timed(lambda: sh(*ac, "-l"), args.repeat)
        rows.append((f"list {count} checkpoints", our_list, raw_list))

        def raw_create() -> None:
            sh("zfs", "snapshot", f"{first}@raw")
            sh("zfs", "clone", "-o", "canmount=noauto", f"{first}@raw", f"{container}/raw")

        def raw_destroy() -> None:
            sh("zfs", "destroy", f"{container}/raw")
            sh("zfs", "destroy", f"{first}@raw")

        create_raw, destroy_raw, create_ours, destroy_ours = [], [], [], []
        for _ in range(args.repeat):
            create_raw.append(timed(raw_create, 1))
            destroy_raw.append(timed(raw_destroy, 1))
            create_ours.append(timed(lambda: sh(*ac, "create"), 1))
            newest = json.loads(sh(*ac, "--json", "-l").stdout)[-1]["name"]
            destroy_ours.append(timed(lambda newest=newest: sh(*ac, "-y", "-r", newest), 1))
        rows.append((f"create with {count} present", statistics.median(create_ours), statistics.median(create_raw)))
        rows.append((f"destroy with {count} present", statistics.median(destroy_ours), statistics.median(destroy_raw)))
    entries = [
        grub.MenuEntry(f"cp-{i}", f"rpool/ROOT/cp-{i}", f"Checkpoint {i}", ("6.1.0-13-amd64",)) for i in range(500)
    ]
    menu = timed(lambda: grub.render_menu(entries), args.repeat)
    rows.append(("GRUB menu, 500 entries (render only)", menu, float("nan")))
    print(f"{'benchmark':<40} {'apt-clone s':>12} {'raw zfs s':>10} {'ratio':>7}")
    for name, ours, raw in rows:
        ratio = ours / raw if raw == raw and raw > 0 else float("nan")
        print(f"{name:<40} {ours:>12.3f} {raw:>10.3f} {ratio:>7.1f}")
    sh(py, "-m", "tests.sandbox", "destroy", "--dir", SANDBOX)
    return 0


if __name__ == "__main__":
    sys.exit(main())

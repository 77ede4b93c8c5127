"""The APT hook's cost per apt run: ``apt-get install`` of one package in the package's host
sandbox (a Debian 13 root on ZFS with a boot pool and the .deb installed, tests/package) with
the hook as shipped, with it turned off in the config (``[hook] enabled = no``: apt still starts
the two calls, which return at once) and with no hook (80apt-clone moved aside), interleaved;
medians and the differences: what the hook adds to an apt run (hook-pre with the snapshots and
clones and the menu, hook-post with the package changes). Each round removes the package again
and destroys the checkpoint, untimed, so every round starts from the same state.

Where the hook's cost goes (issue #36), measured in the same root: Python's start (``python3 -c
pass``), the imports hook-pre makes to make a checkpoint, the ZFS commands of one hooked run (from
apt-clone's own trace, ``APT_CLONE_TRACE=1`` in apt's environment), the post (sh, its fast path);
and a no-op apt run (the package installed already: dpkg does not run, neither does the hook).

Usage: ``python -m bench.hook [--rounds 7]`` (as root; builds the .deb first if it is stale).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import time
from functools import partial
from pathlib import Path

from apt_clone.side_by_side import side_by_side
from apt_clone.zfs import ZFS_FUSE, open_backend
from tests.package.conftest import Host, ensure_host
from tests.sandbox import core

from .common import Row, within_delta

NOOP = "ac-hello"
"""Installed in the root already: ``apt-get install`` of it runs no dpkg."""
IMPORTS = (
    "from apt_clone.entry import run_hook; from apt_clone.apt import hook; "
    "from apt_clone.checkpoints import commands, services; from apt_clone.context import open_context"
)
"""What hook-pre imports to make a checkpoint."""
TIMER = """import statistics, subprocess, sys, time
def median(argv, n=9):
    runs = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)
start = median(["python3", "-c", "pass"])
imports = median(["python3", "-c", sys.argv[1]])
post = median(["/usr/libexec/apt-clone/hook-post"])
print(start, imports - start, post)
"""
"""Run by the root's own python3, inside it: medians of Python's start, the imports, the post."""
TRACED = re.compile(r"^\[\s*([0-9.]+)s rc=-?[0-9]+\] (\S+)", re.M)

PACKAGE = "ac-extra"
FIRST = "rootfs-nmu-000"
"""The running root of the reset host sandbox."""
OFF = "[hook]\nenabled = no\n"


def _apt(h: Host, *args: str) -> float:
    t0 = time.perf_counter()
    got = h.apt_get(*args)
    elapsed = time.perf_counter() - t0
    if got.returncode != 0:
        raise SystemExit(f"apt-get {' '.join(args)} failed: {got.stderr[-500:]}")
    return elapsed


def _install(h: Host, package: str, *, hooked: bool) -> float:
    """``apt-get install package`` timed, with apt's hook file in place or moved aside."""
    hook_file = Path(h.root, "etc/apt/apt.conf.d/80apt-clone")
    aside = hook_file.with_name("80apt-clone.bench-aside")
    if not hooked:
        hook_file.rename(aside)
    try:
        return _apt(h, "install", package)
    finally:
        if not hooked:
            aside.rename(hook_file)


def _checkpoints(h: Host) -> list[str]:
    got = h.run("apt-clone", "--json", "-l")
    return [cp["name"] for cp in json.loads(got.stdout) if cp["kind"] == "automatic"]


def measure(rounds: int) -> tuple[float, float, float]:
    """(hook on, hook off, no hook) medians of ``apt-get install``."""
    h = ensure_host()
    core.reset(h.directory)
    conf = Path(h.root, "etc/apt-clone/apt-clone.conf")
    shipped = conf.read_text()
    modes = ("on", "off", "none")
    samples: dict[str, list[float]] = {m: [] for m in modes}
    try:
        for i in range(rounds):
            for mode in modes[i % 3 :] + modes[: i % 3]:
                conf.write_text(shipped if mode == "on" else OFF)
                samples[mode].append(_install(h, PACKAGE, hooked=mode != "none"))
                conf.write_text(OFF)
                _apt(h, "remove", PACKAGE)
                for name in _checkpoints(h):
                    h.run("apt-clone", "-y", "-r", name)
    finally:
        conf.write_text(shipped)
    on, off, none = (statistics.median(samples[m]) for m in modes)
    return on, off, none


def _side_by_side(*argvs: list[str]) -> None:
    side_by_side(*(partial(subprocess.run, argv, check=True, capture_output=True) for argv in argvs))


def raw_checkpoint(h: Host, rounds: int) -> float:
    """The ZFS commands any checkpoint of this root costs, raw, in the order apt-clone must run
    them: the two pools' snapshots side by side, then their clones side by side (zfs-fuse mounts
    a new clone whatever ``canmount`` says: made with no mountpoint, then given theirs, as
    apt-clone does). Median; each round's datasets destroyed after it, untimed."""
    fuse = open_backend().dialect == ZFS_FUSE
    root, boot = f"{h.container}/{FIRST}", f"{h.bpool}/BOOT/{FIRST}"
    mountpoint = {
        ds: subprocess.run(["zfs", "get", "-H", "-o", "value", "mountpoint", ds], capture_output=True, text=True,
                           check=True).stdout.strip()
        for ds in (root, boot)
    }  # fmt: skip
    runs = []
    for i in range(rounds):
        tag = f"bench-raw-{i}"
        clone, twin = f"{h.container}/{tag}", f"{h.bpool}/BOOT/{tag}"
        t0 = time.perf_counter()
        _side_by_side(["zfs", "snapshot", "-r", f"{root}@{tag}"], ["zfs", "snapshot", f"{boot}@{tag}"])
        if fuse:
            mp = ["-o", "mountpoint=none", "-o", "canmount=noauto"]
            _side_by_side(["zfs", "clone", *mp, f"{root}@{tag}", clone], ["zfs", "clone", *mp, f"{boot}@{tag}", twin])
            _side_by_side(
                ["zfs", "set", f"mountpoint={mountpoint[root]}", clone],
                ["zfs", "set", f"mountpoint={mountpoint[boot]}", twin],
            )
        else:
            mp = ["-o", "canmount=noauto"]
            _side_by_side(
                ["zfs", "clone", *mp, "-o", f"mountpoint={mountpoint[root]}", f"{root}@{tag}", clone],
                ["zfs", "clone", *mp, "-o", f"mountpoint={mountpoint[boot]}", f"{boot}@{tag}", twin],
            )
        runs.append(time.perf_counter() - t0)
        for name in (clone, twin, f"{root}@{tag}", f"{boot}@{tag}"):
            subprocess.run(["zfs", "destroy", "-r", name], check=True)
    return statistics.median(runs)


def decompose(rounds: int) -> dict[str, float]:
    """Where a hooked run's extra time goes, and what a no-op apt run costs with the hook and without."""
    h = ensure_host()
    core.reset(h.directory)
    start, imports, post = (float(x) for x in h.run("python3", "-c", TIMER, IMPORTS).stdout.split())
    traced = h.apt_get("install", PACKAGE, env={"APT_CLONE_TRACE": "1"})
    commands = [(float(t), cmd) for t, cmd in TRACED.findall(traced.stdout + traced.stderr)]
    zfs = sum(t for t, cmd in commands if cmd in ("zfs", "zpool"))
    other = sum(t for t, cmd in commands if cmd not in ("zfs", "zpool"))
    noop: dict[str, list[float]] = {"on": [], "none": []}
    for i in range(rounds):
        for mode in ("on", "none") if i % 2 == 0 else ("none", "on"):
            noop[mode].append(_install(h, NOOP, hooked=mode == "on"))
    raw = raw_checkpoint(h, rounds)
    core.reset(h.directory)
    return {
        "raw": raw,
        "start": start, "imports": imports, "zfs": zfs, "other": other, "post": post,
        "noop-on": statistics.median(noop["on"]), "noop-none": statistics.median(noop["none"]),
    }  # fmt: skip


def rows(rounds: int) -> list[Row]:
    on, _, none = measure(rounds)
    parts = decompose(rounds)
    return [
        within_delta("hook", f"`apt-get install {PACKAGE}` with the hook against without", on, none, HOOK_LIMIT),
        Row("hook", "of which Python's start in the root (`python3 -c pass`)", parts["start"], None),
        Row("hook", "of which hook-pre's imports", parts["imports"], None),
        Row("hook", "of which the ZFS commands of one hooked run (traced)", parts["zfs"], None),
        Row("hook", "of which its other commands (traced)", parts["other"], None),
        Row("hook", "of which the post (sh)", parts["post"], None),
        Row(
            "hook",
            "the raw ZFS commands of a checkpoint of both pools (snapshots, then clones, side by side)",
            parts["raw"],
            None,
        ),
        Row(
            "hook",
            "the least a hook in Python adds here: Python's start and those raw commands",
            parts["start"] + parts["raw"],
            None,
        ),
        within_delta(
            "hook",
            f"a no-op `apt-get install {NOOP}` with the hook against without",
            parts["noop-on"],
            parts["noop-none"],
            NOOP_LIMIT,
        ),  # fmt: skip
    ]


HOOK_LIMIT = 0.15
"""Issue #36: the hook adds at most this to an apt run (snapper's Debian hook measured +0.15 s)."""
NOOP_LIMIT = 0.01
"""A no-op apt run: the hook costs nothing (within noise)."""


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    on, off, none = measure(args.rounds)
    print(f"apt-get install {PACKAGE}, {args.rounds} rounds interleaved, medians:")
    print(f"  no hook (80apt-clone aside)   {none:.3f} s")
    print(f"  hook off ([hook] enabled=no)  {off:.3f} s  ({off - none:+.3f} s)")
    print(f"  hook on (as shipped)          {on:.3f} s  ({on - none:+.3f} s: the hook's cost per apt run)")
    parts = decompose(args.rounds)
    print("where it goes, in the same root:")
    print(f"  Python's start                {parts['start']:.3f} s")
    print(f"  hook-pre's imports            {parts['imports']:.3f} s")
    print(f"  ZFS commands (traced)         {parts['zfs']:.3f} s")
    print(f"  other commands (traced)       {parts['other']:.3f} s")
    print(f"  the post (sh)                 {parts['post']:.3f} s")
    print(
        f"the raw ZFS commands of a checkpoint of both pools: {parts['raw']:.3f} s (with Python's start: "
        f"{parts['raw'] + parts['start']:.3f} s, the least a hook in Python adds here)"
    )
    print(f"no-op apt-get install {NOOP}: {parts['noop-on']:.3f} s with the hook, {parts['noop-none']:.3f} s without")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

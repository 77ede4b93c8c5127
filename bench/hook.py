"""The APT hook's cost per apt run: ``apt-get install`` of one package in the package's host
sandbox (a Debian 13 root on ZFS with a boot pool and the .deb installed, tests/package) with
the hook as shipped, with it turned off in the config (``[hook] enabled = no``: apt still starts
the two calls, which return at once), with no hook (80apt-clone moved aside) and with a sh hook
of the raw ZFS commands a checkpoint of both pools needs (the floor: the same commands, run at
the same moment, after apt has written to the root), its snapshots alone, and its clones made in
one command each as OpenZFS makes them (on zfs-fuse a clone takes two: what that second command
costs), interleaved; medians and the differences.
Each round removes the package again and destroys the checkpoint, untimed, so every round
starts from the same state.

Where the hook's cost goes (issue #36), measured in the same root: Python's start (``python3 -IS
-c pass``, the options /usr/bin/apt-clone starts it with), the imports hook-pre makes to make a
checkpoint and what their records cost, the wall time of the ZFS commands of a hooked run (from
apt-clone's own trace, ``APT_CLONE_TRACE=1`` in apt's environment: every command's start and
time; the first read, started ahead beside the imports, apart), the post on its fast path, and
what that leaves; and a no-op apt run (the package installed already: dpkg does not run,
neither does the hook).

Usage: ``python -m bench.hook [--rounds 7]`` (as root; builds the .deb first if it is stale).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from apt_clone.zfs import ZFS_FUSE, open_backend
from tests.package.conftest import Host, ensure_host
from tests.sandbox import core

from .common import Row, within_delta

NOOP = "ac-hello"
"""Installed in the root already: ``apt-get install`` of it runs no dpkg."""
IMPORTS = (
    "import sys; sys.path.append('/usr/lib/python3/dist-packages'); "  # as /usr/bin/apt-clone (bin/apt-clone)
    "from apt_clone.entry import run_hook; from apt_clone.apt import hook; "
    "from apt_clone.checkpoints import commands, services; from apt_clone.context import open_context"
)
"""What hook-pre imports to make a checkpoint."""
STAND_IN = """import sys, types
def record(**options):
    def build(cls):
        def init(self, *args, **kwargs):
            for name, value in [*zip(cls.__annotations__, args), *kwargs.items()]:
                object.__setattr__(self, name, value)
        cls.__init__ = init
        return cls
    return build
stand_in = types.ModuleType("apt_clone.record")
stand_in.record, stand_in.field = record, lambda **options: None
stand_in.__getattr__ = lambda name: None
sys.modules["apt_clone.record"] = stand_in
"""
"""An :mod:`apt_clone.record` that builds nothing (no field tables, no methods): the same imports
with it in place show what the records of hook-pre's modules cost (imported, never run)."""
POST_NAMES = "ac-hello dpkg apt"
"""The packages of the post's expectation: installed in the root, so its fast path holds."""
TIMER = """import os, statistics, subprocess, sys, time
def median(argv, n=9, before=lambda: None):
    runs = []
    for _ in range(n):
        before()
        t0 = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)
imports_code, stand_in, names = sys.argv[1:4]
shown = subprocess.run(["sh", "-c", "dpkg-query -W -f='${db:Status-Status} ${Package} ${Architecture} ${Version}\\n' "
                        + names + " | LC_ALL=C sort"], capture_output=True, text=True, check=True).stdout
os.makedirs("/run/apt-clone", mode=0o700, exist_ok=True)
def expect():
    with open("/run/apt-clone/hook-expect", "w") as f:
        f.write(names + "\\n" + shown)
flags = open("/usr/bin/apt-clone").readline().split()[1:]  # as the installed program starts Python
start = median(["python3", *flags, "-c", "pass"])
imports = median(["python3", *flags, "-c", imports_code])
without = median(["python3", *flags, "-c", stand_in + imports_code])
post = median(["/usr/libexec/apt-clone/hook-post"], before=expect)
with open("/run/apt-clone/hook-expect") as f:
    assert f.read() == "-\\n", "the post did not take its fast path"
print(start, imports - start, imports - without, post)
"""
"""Run by the root's own python3, inside it (its /run is its own): medians of Python's start,
hook-pre's imports, what their records cost, and the post on its fast path (dpkg did what
was planned: ``dpkg-query`` of the packages, compared, the time noted)."""
TRACED = re.compile(r"^\[\s*([0-9.]+)s rc=-?[0-9]+ @([0-9.]+)\] (\S+)", re.M)
AHEAD = re.compile(r"^\[\s*([0-9.]+)s rc=-?[0-9]+ @([0-9.]+)\] .* \(read ahead\)$", re.M)
"""A command hook-pre started before its modules loaded (:mod:`apt_clone.readahead`)."""


def wall(spans: list[tuple[float, float]]) -> float:
    """How long at least one of ``spans`` (start, end) was running."""
    total, reached = 0.0, float("-inf")
    for start, end in sorted(spans):
        if end > reached:
            total += end - max(start, reached)
            reached = end
    return total


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


RAW_HOOKS = {
    "raw": "usr/local/sbin/apt-clone-bench-raw-hook",
    "snap": "usr/local/sbin/apt-clone-bench-snap-hook",
    "one": "usr/local/sbin/apt-clone-bench-one-hook",
}
"""The raw hook, its snapshots alone and its clones in one command each (:func:`raw_hook`), by
mode, in the root while the bench runs."""


def raw_hook(h: Host, *, clones: bool = True, one: bool = False) -> str:
    """A sh hook of the raw ZFS commands any checkpoint of this root costs, in the order
    apt-clone must run them: the two pools' snapshots side by side, then their clones side by
    side (zfs-fuse mounts a new clone whatever ``canmount`` says: made with no mountpoint, then
    given theirs, as apt-clone does); ``clones=False``: the snapshots alone, all that must come
    before dpkg for the root to have a way back; ``one``: each clone one command, as OpenZFS
    makes it (its mountpoint goes with it; here the clone keeps none, so zfs-fuse mounts nothing):
    what the zfs-fuse-only second command costs. Its one argument names what it makes."""
    root, boot = f"{h.container}/{FIRST}", f"{h.bpool}/BOOT/{FIRST}"
    lines = ["#!/bin/sh", "cat >/dev/null", f"zfs snapshot -r {root}@$1 & zfs snapshot {boot}@$1 & wait"]
    if not clones:
        return "\n".join(lines) + "\n"
    made = f"{h.container}/$1", f"{h.bpool}/BOOT/$1"
    fuse = open_backend().dialect == ZFS_FUSE
    if one or fuse:
        lines.append(
            f"zfs clone -o mountpoint=none -o canmount=noauto {root}@$1 {made[0]} &"
            f" zfs clone -o mountpoint=none -o canmount=noauto {boot}@$1 {made[1]} & wait"
        )
        if one:
            return "\n".join(lines) + "\n"
    where = {
        ds: subprocess.run(["zfs", "get", "-H", "-o", "value", "mountpoint", ds], capture_output=True, text=True,
                           check=True).stdout.strip()
        for ds in (root, boot)
    }  # fmt: skip
    if fuse:  # the second command of each clone
        lines.append(f"zfs set mountpoint={where[root]} {made[0]} & zfs set mountpoint={where[boot]} {made[1]} & wait")
    else:
        lines.append(
            f"zfs clone -o canmount=noauto -o mountpoint={where[root]} {root}@$1 {made[0]} &"
            f" zfs clone -o canmount=noauto -o mountpoint={where[boot]} {boot}@$1 {made[1]} & wait"
        )
    return "\n".join(lines) + "\n"


@contextmanager
def _hook_file(h: Host, text: str | None) -> Iterator[None]:
    """apt's hook file replaced by ``text`` (None: moved aside) for the block, then as shipped."""
    hook_file = Path(h.root, "etc/apt/apt.conf.d/80apt-clone")
    shipped = hook_file.read_text()
    if text is None:
        hook_file.unlink()
    else:
        hook_file.write_text(text)
    try:
        yield
    finally:
        hook_file.write_text(shipped)


def _install(h: Host, package: str, *, hook: str) -> float:
    """``apt-get install package`` timed with apt's hook file as shipped (``on``), moved aside
    (``none``) or replaced by the raw hook (``raw:TAG``), its snapshots alone (``snap:TAG``) or
    its clones in one command each (``one:TAG``)."""
    mode, _, tag = hook.partition(":")
    if hook == "none":
        text: str | None = None
    elif mode in RAW_HOOKS:
        text = f'DPkg::Pre-Install-Pkgs {{ "/{RAW_HOOKS[mode]} {tag}"; }};\n'
    else:
        text = Path(h.root, "etc/apt/apt.conf.d/80apt-clone").read_text()
    with _hook_file(h, text):
        return _apt(h, "install", package)


def _remove(h: Host, conf: Path, shipped: str) -> None:
    """Untimed, after a round: the package removed with the hook off, the checkpoints destroyed."""
    conf.write_text(OFF)
    try:
        _apt(h, "remove", PACKAGE)
    finally:
        conf.write_text(shipped)
    for name in _checkpoints(h):
        h.run("apt-clone", "-y", "-r", name)


def _destroy_raw(h: Host, tag: str, *, clones: bool = True) -> None:
    """What a round of the raw hook made, destroyed (``clones=False``: of its snapshots alone)."""
    made = (f"{h.container}/{tag}", f"{h.bpool}/BOOT/{tag}") if clones else ()
    for name in (*made, f"{h.container}/{FIRST}@{tag}", f"{h.bpool}/BOOT/{FIRST}@{tag}"):
        subprocess.run(["zfs", "destroy", "-r", name], check=True)


def _checkpoints(h: Host) -> list[str]:
    got = h.run("apt-clone", "--json", "-l")
    return [cp["name"] for cp in json.loads(got.stdout) if cp["kind"] == "automatic"]


MODES = ("on", "off", "none", "raw", "snap", "one")


def measure(rounds: int) -> dict[str, float]:
    """Medians of ``apt-get install``, by mode: the hook as shipped (``on``), turned off in the
    config (``off``), no hook (``none``), the raw hook (``raw``), its snapshots alone (``snap``)
    and, on zfs-fuse, its clones in one command each (``one``; elsewhere that is ``raw``)."""
    h = ensure_host()
    core.reset(h.directory)
    conf = Path(h.root, "etc/apt-clone/apt-clone.conf")
    shipped = conf.read_text()
    modes = MODES if open_backend().dialect == ZFS_FUSE else tuple(m for m in MODES if m != "one")
    hooks = {mode: Path(h.root, where) for mode, where in RAW_HOOKS.items() if mode in modes}
    for mode, path in hooks.items():
        path.write_text(raw_hook(h, clones=mode != "snap", one=mode == "one"))
        path.chmod(0o755)
    samples: dict[str, list[float]] = {m: [] for m in modes}
    try:
        for i in range(rounds):
            for mode in modes[i % len(modes) :] + modes[: i % len(modes)]:
                tag = f"bench-raw-{i}"
                conf.write_text(shipped if mode == "on" else OFF)
                samples[mode].append(_install(h, PACKAGE, hook=f"{mode}:{tag}" if mode in RAW_HOOKS else mode))
                _remove(h, conf, shipped)
                if mode in RAW_HOOKS:
                    _destroy_raw(h, tag, clones=mode != "snap")
    finally:
        conf.write_text(shipped)
        for path in hooks.values():
            path.unlink()
    medians = {m: statistics.median(samples[m]) for m in modes}
    medians.setdefault("one", medians["raw"])
    return medians


HOOK_CALL = "$APT_CLONE hook-pre || [ $? -ne 1 ]"
"""How 80apt-clone calls hook-pre; a traced run times the call around it."""
TIMED_CALL = "s=$(date +%s.%N); $APT_CLONE hook-pre; r=$?; echo hook-pre $s $(date +%s.%N) >&2; [ $r -ne 1 ]"
PRE_TIMED = re.compile(r"^hook-pre ([0-9.]+) ([0-9.]+)$", re.M)


def _traced_run(h: Host, conf: Path, shipped: str) -> dict[str, float]:
    """One hooked ``apt-get install``, traced and with hook-pre's call timed: the wall time of
    hook-pre and of its ZFS commands, the summed time of its other commands. Then the package is
    removed (hook off) and the checkpoint destroyed."""
    hooks = Path(h.root, "etc/apt/apt.conf.d/80apt-clone").read_text()
    if HOOK_CALL not in hooks:
        raise SystemExit(f"80apt-clone no longer calls hook-pre as {HOOK_CALL!r}: update bench.hook")
    with _hook_file(h, hooks.replace(HOOK_CALL, TIMED_CALL)):
        traced = h.apt_get("install", PACKAGE, env={"APT_CLONE_TRACE": "1"})
    spans = [(float(at), float(at) + float(took), cmd) for took, at, cmd in TRACED.findall(traced.stderr)]
    ahead = [(float(at), float(at) + float(took)) for took, at in AHEAD.findall(traced.stderr)]
    pre = [float(end) - float(start) for start, end in PRE_TIMED.findall(traced.stderr)]
    if not spans or len(pre) != 1:
        raise SystemExit(f"a hooked apt run without its trace: {traced.stderr[-500:]}")
    _remove(h, conf, shipped)
    return {
        "pre": pre[0],
        "zfs": wall([(a, b) for a, b, cmd in spans if cmd in ("zfs", "zpool") and (a, b) not in ahead]),
        "ahead": wall(ahead),
        "other": sum(end - start for start, end, cmd in spans if cmd not in ("zfs", "zpool")),
    }


def decompose(rounds: int) -> dict[str, float]:
    """Where a hooked run's extra time goes, and what a no-op apt run costs with the hook and without."""
    h = ensure_host()
    core.reset(h.directory)
    timed = h.run("python3", "-c", TIMER, IMPORTS, STAND_IN, POST_NAMES)
    if timed.returncode != 0:
        raise SystemExit(f"timing in the root failed: {timed.stderr[-800:]}")
    start, imports, records, post = (float(x) for x in timed.stdout.split())
    conf = Path(h.root, "etc/apt-clone/apt-clone.conf")
    shipped = conf.read_text()
    _traced_run(h, conf, shipped)  # the first checkpoint after a reset reads a cold pool: not counted
    traced = [_traced_run(h, conf, shipped) for _ in range(rounds)]
    noop: dict[str, list[float]] = {"on": [], "none": []}
    for i in range(3 * rounds):  # a tenth of a second each: more of them, against the noise
        for mode in ("on", "none") if i % 2 == 0 else ("none", "on"):
            noop[mode].append(_install(h, NOOP, hook=mode))
    core.reset(h.directory)
    return {
        "start": start, "imports": imports, "records": records, "post": post,
        **{k: statistics.median(t[k] for t in traced) for k in ("pre", "zfs", "ahead", "other")},
        "noop-on": statistics.median(noop["on"]), "noop-none": statistics.median(noop["none"]),
    }  # fmt: skip


def own_work(parts: dict[str, float]) -> float:
    """What hook-pre's time leaves once its start, imports and commands are taken out: its own
    work in Python (the configuration, apt's input, the lock, the journal, the state files), and
    what its imports cost more in apt than alone (the root's files read while zfs-fuse writes
    what apt wrote)."""
    return parts["pre"] - sum(parts[k] for k in ("start", "imports", "zfs", "other"))


def on_openzfs(runs: dict[str, float]) -> float:
    """The hook's cost less what the raw hook's second commands (each clone's mountpoint, which
    only zfs-fuse needs) cost it: an estimate of the hook on a machine of this speed whose ZFS
    makes a clone in one command, as OpenZFS does."""
    return runs["on"] - runs["none"] - (runs["raw"] - runs["one"])


def rows(rounds: int) -> list[Row]:
    runs = measure(rounds)
    on, none, raw = runs["on"], runs["none"], runs["raw"]
    parts = decompose(rounds)
    return [
        within_delta("hook", f"`apt-get install {PACKAGE}` with the hook against without", on, none, HOOK_LIMIT),
        Row("hook", "of which hook-pre (its call in apt, timed; traced runs)", parts["pre"], None),
        Row("hook", "of that, Python's start in the root (`python3 -IS -c pass`)", parts["start"], None),
        Row("hook", "of that, hook-pre's imports", parts["imports"], None),
        Row(
            "hook",
            "of those, what their records cost (the imports with a stand-in that builds none)",
            parts["records"],
            None,
        ),  # fmt: skip
        Row("hook", "of that, its ZFS commands (traced, wall time)", parts["zfs"], None),
        Row("hook", "beside its imports, its first read (started ahead: not in the sum)", parts["ahead"], None),
        Row("hook", "of that, its other commands (traced)", parts["other"], None),
        Row(
            "hook",
            "of that, the rest: its own work in Python, and its imports' extra time in apt",
            own_work(parts),
            None,
        ),  # fmt: skip
        Row("hook", "of which the post's fast path (sh: `dpkg-query`, compared, the time noted)", parts["post"], None),
        Row(
            "hook",
            "a sh hook of the raw ZFS commands of a checkpoint of both pools against no hook "
            "(snapshots, then clones, side by side)",
            raw - none,
            None,
        ),  # fmt: skip
        Row("hook", "the least a hook in Python adds here: that and Python's start", raw - none + parts["start"], None),
        Row(
            "hook",
            "the hook turned off (`[hook] enabled = no`) against no hook: apt's two calls, Python's start "
            "and the configuration read",
            runs["off"] - none,
            None,
        ),  # fmt: skip
        Row(
            "hook",
            "of that sh hook, its snapshots alone (all that must come before dpkg)",
            runs["snap"] - none,
            None,
        ),  # fmt: skip
        Row(
            "hook",
            "of that sh hook, each clone in one command as OpenZFS makes it (zfs-fuse needs a second, "
            "for the mountpoint)",
            runs["one"] - none,
            None,
        ),  # fmt: skip
        Row(
            "hook",
            "so the hook with OpenZFS's commands, estimated: the hook less zfs-fuse's second commands",
            on_openzfs(runs),
            None,
        ),  # fmt: skip
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
    runs = measure(args.rounds)
    on, off, none, raw, snap, one = (runs[m] for m in MODES)
    print(f"apt-get install {PACKAGE}, {args.rounds} rounds interleaved, medians:")
    print(f"  no hook (80apt-clone aside)   {none:.3f} s")
    print(f"  hook off ([hook] enabled=no)  {off:.3f} s  ({off - none:+.3f} s)")
    print(f"  hook on (as shipped)          {on:.3f} s  ({on - none:+.3f} s: the hook's cost per apt run)")
    print(f"  a sh hook of the raw ZFS      {raw:.3f} s  ({raw - none:+.3f} s: a checkpoint's ZFS commands alone)")
    print(f"  its snapshots alone           {snap:.3f} s  ({snap - none:+.3f} s: what must come before dpkg)")
    print(f"  its clones one command each   {one:.3f} s  ({one - none:+.3f} s: as OpenZFS makes them)")
    print(f"the hook with OpenZFS's commands, estimated: {on_openzfs(runs):+.3f} s")
    parts = decompose(args.rounds)
    print("where it goes, in the same root:")
    print(f"  hook-pre, its call timed      {parts['pre']:.3f} s, of which")
    print(f"    Python's start              {parts['start']:.3f} s")
    print(f"    its imports                 {parts['imports']:.3f} s (their records: {parts['records']:.3f} s)")
    print(f"    ZFS commands (wall, traced) {parts['zfs']:.3f} s (read ahead, beside imports: {parts['ahead']:.3f} s)")
    print(f"    other commands (traced)     {parts['other']:.3f} s")
    print(f"    the rest (its own work)     {own_work(parts):.3f} s")
    print(f"  the post's fast path (sh)     {parts['post']:.3f} s")
    least = raw - none + parts["start"]
    print(f"the least a hook in Python adds here: {least:+.3f} s (the raw hook and Python's start)")
    print(f"no-op apt-get install {NOOP}: {parts['noop-on']:.3f} s with the hook, {parts['noop-none']:.3f} s without")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""apt-clone's commands at 10, 100 and 1,000 checkpoints, against the raw commands they wrap.

The checkpoints are made with raw zfs as apt-clone makes them (a marked snapshot of the root,
a clone with its metadata and a kernel, mounting where the root does, never by itself), on a
sandbox of the benchmark's own for each count; the counts are then timed side by side, in the
same rounds. At each count, interleaved: ``-l`` against one ``zfs list -r`` of the
properties it reads; ``create`` against ``zfs snapshot`` + ``zfs clone``; ``rename`` against
``zfs rename``; ``-a`` against ``zpool set bootfs`` + ``grub-editenv set``; ``-a --once`` against
``grub-editenv set next_entry``; ``-r`` against ``zfs destroy`` of the clone and the snapshot.
Targets (issue #23): each command on one checkpoint costs at 1,000 at most 1.2x what it costs
at 10; ``-l`` at most 1.3x its raw read.

Usage: ``python -m bench.scale [--counts 10,100,1000] [--rounds 5] [--apart]`` (as root);
``--apart``: one sandbox, filled up to each count in turn and timed there (the VM lane, where
making a sandbox is slow; its counts are then compared minutes apart).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
from collections.abc import Callable
from pathlib import Path

from apt_clone import model
from apt_clone.boot import grub
from apt_clone.checkpoints.tree import READ_PROPS
from apt_clone.zfs.cli import NATIVE_PROPS, OPENZFS, CliZfs

from .common import PY, Row, ac_env, bytecode, clock, interleaved, sh, table, within_delta, within_ratio

SANDBOX = os.environ.get("APT_CLONE_BENCH_SANDBOX", "/var/tmp/apt-clone-bench")
KERNEL = "6.1.0-99-amd64"
SCALE_LIMIT, LIST_LIMIT = 1.2, 1.3
LIST_MARGIN = 0.03
"""Issue #36: ``-l`` at 10 checkpoints costs at most Python's start, its ZFS commands and this (s)."""


class Bench:
    """The benchmark's sandbox, and apt-clone and raw zfs on it."""

    def __init__(self, directory: str = SANDBOX) -> None:
        # Made anew (from the sandbox's cached root: seconds): a reset of a thousand checkpoints is slow.
        sh(PY, "-m", "tests.sandbox", "destroy", "--dir", directory, check=False)
        sh(PY, "-m", "tests.sandbox", "create", "--dir", directory)
        st = json.loads(sh(PY, "-m", "tests.sandbox", "status", "--dir", directory).stdout)
        self.directory, self.root, self.pool = directory, st["root"], st["pool"]
        self.container, self.first = st["be_container"], st["current"]
        self.openzfs = CliZfs().dialect == OPENZFS
        self.env = ac_env(directory)
        self.grubenv = f"{self.root}/boot/grub/grubenv"
        for name in (f"vmlinuz-{KERNEL}", f"initrd.img-{KERNEL}"):  # the root's own menu entry
            Path(self.root, "boot", name).write_bytes(b"")
        self.made = 0

    def close(self) -> None:
        sh(PY, "-m", "tests.sandbox", "destroy", "--dir", self.directory)

    def ac(self, *args: str) -> str:
        return sh(PY, "-m", "apt_clone", "--root", self.root, *args, env=self.env).stdout

    def fill(self, count: int) -> None:
        """Checkpoints made with raw zfs, as apt-clone makes them, up to ``count``."""
        created = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
        while self.made + 1 < count:  # the first root is one
            self.made += 1
            tag = f"bench-{self.made:04d}"
            snap, target = f"{self.first}@{tag}", f"{self.container}/rootfs-{tag}"
            sh("zfs", "snapshot", snap)
            sh("zfs", "set", f"{model.SNAPSHOT_MARK}=rootfs-{tag}", snap)
            meta = {model.TITLE: f"Bench {self.made}", model.KIND: "automatic", model.CREATED: created,
                    model.KERNELS: KERNEL, "canmount": "noauto"}  # fmt: skip
            opts = [a for k, v in meta.items() for a in ("-o", f"{k}={v}")]
            if self.openzfs:
                sh("zfs", "clone", *opts, "-o", f"mountpoint={self.root}", snap, target)
            else:  # zfs-fuse mounts a clone whatever canmount says: the mountpoint comes after
                sh("zfs", "clone", *opts, "-o", "mountpoint=none", snap, target)
                sh("zfs", "set", f"mountpoint={self.root}", target)

    def newest(self) -> str:
        return str(json.loads(self.ac("--json", "-l"))[-1]["name"])


def listing(b: Bench, count: int, budget: bool) -> dict[str, Callable[[], object]]:
    """``-l`` and its raw read at ``count`` checkpoints; ``budget``: also what issue #36 allows
    it (Python's start and the two ZFS commands it runs)."""
    props = ",".join(("name", *NATIVE_PROPS, *READ_PROPS))
    read = ",".join((*NATIVE_PROPS, *READ_PROPS))
    get = ("zfs", "get", "-Hp", "-o", "name,property,value,source", "-r", read, b.container)
    timed: dict[str, Callable[[], object]] = {
        f"{count} ours": lambda: b.ac("-l"),
        f"{count} raw": lambda: sh("zfs", "list", "-H", "-r", "-t", "all", "-o", props, b.container),
    }
    if budget:
        timed |= {
            f"{count} start": lambda: sh(PY, "-c", "pass"),
            f"{count} get": lambda: sh(*get),
            f"{count} pool": lambda: sh("zpool", "list", "-H", "-o", "name,size,free,bootfs,health", b.pool),
        }
    return timed


Step = tuple[str, Callable[[], object], Callable[[], object], Callable[[], object] | None]
"""(command, apt-clone's, raw, untimed after apt-clone's)."""


def life(b: Bench) -> list[Step]:
    """One checkpoint's life, in order, by apt-clone and by the raw commands."""
    first = b.first.rsplit("/", 1)[1]
    made: list[str] = []

    def ours_create() -> None:
        said = b.ac("create").split()  # "... has been created: NAME"
        made.append(said[-1])

    def raw_create() -> None:
        sh("zfs", "snapshot", f"{b.first}@raw")
        sh("zfs", "clone", "-o", "canmount=noauto", f"{b.first}@raw", f"{b.container}/raw")

    def raw_activate() -> None:
        sh("zpool", "set", f"bootfs={b.first}", b.pool)
        sh("grub-editenv", b.grubenv, "set", f"saved_entry={grub.saved_entry(first)}")

    def raw_destroy() -> None:
        sh("zfs", "destroy", f"{b.container}/raw2")
        sh("zfs", "destroy", f"{b.first}@raw")

    return [
        ("create", ours_create, raw_create, None),
        ("rename", lambda: b.ac("rename", made[-1], "renamed"), lambda: sh("zfs", "rename", f"{b.container}/raw",
                                                                               f"{b.container}/raw2"), None),
        ("activate", lambda: b.ac("-y", "-a", "renamed"), raw_activate, None),
        ("trial", lambda: b.ac("-y", "-a", "--once", "renamed"),
         lambda: sh("grub-editenv", b.grubenv, "set", f"next_entry={grub.saved_entry('raw2')}"),
         lambda: b.ac("-y", "-a", first)),  # the default again, so that -r may destroy it
        ("destroy", lambda: b.ac("-y", "-r", "renamed"), raw_destroy, None),
    ]  # fmt: skip


def measure(benches: dict[int, Bench], rounds: int) -> dict[int, dict[str, tuple[float, float]]]:
    """(apt-clone, raw) medians of each command at each count of checkpoints, every count's
    sandbox filled first and then all of them timed in the same rounds: the counts are compared
    side by side, as apt-clone is with the raw commands (minutes apart, a machine's drift would
    be read as apt-clone's)."""
    for count, b in benches.items():
        b.fill(count)
    timed: dict[str, Callable[[], object]] = {}
    for count, b in benches.items():
        timed |= listing(b, count, budget=count == 10)
    listed = interleaved(timed, rounds)
    lives = {count: life(b) for count, b in benches.items()}
    samples: dict[tuple[int, str, str], list[float]] = {}
    counts = list(benches)
    for i in range(rounds):
        k = i % len(counts)
        for count in counts[k:] + counts[:k]:
            for step, ours, raw, after in lives[count]:
                for side in ("ours", "raw") if i % 2 == 0 else ("raw", "ours"):
                    samples.setdefault((count, step, side), []).append(clock(ours if side == "ours" else raw))
                    if side == "ours" and after is not None:
                        after()
    out: dict[int, dict[str, tuple[float, float]]] = {}
    for count, b in benches.items():
        sh("grub-editenv", b.grubenv, "unset", "next_entry")
        got = out[count] = {"list": (listed[f"{count} ours"], listed[f"{count} raw"])}
        if count == 10:
            got["list-budget"] = (listed["10 ours"], listed["10 start"] + listed["10 get"] + listed["10 pool"])
        for step, *_ in lives[count]:
            got[step] = (
                statistics.median(samples[(count, step, "ours")]),
                statistics.median(samples[(count, step, "raw")]),
            )
    return out


def rows(counts: list[int], rounds: int, *, apart: bool = False) -> list[Row]:
    """The table's rows; ``apart``: one sandbox, each count timed once the one before is done
    (a sandbox fewer to make, where making one is slow: the VM lane)."""
    bytecode()
    made: list[Bench] = []
    try:
        if apart:
            made.append(Bench())
            found: dict[int, dict[str, tuple[float, float]]] = {}
            for count in counts:
                found |= measure({count: made[0]}, rounds)
        else:
            for count in counts:  # a sandbox for each count, side by side
                made.append(Bench(f"{SANDBOX}-{count}"))
            found = measure(dict(zip(counts, made, strict=True)), rounds)
    finally:
        for b in made:
            b.close()
    base, top = found[counts[0]], found[counts[-1]]
    out = []
    for count in counts:
        if count == 10:
            ours, raw = found[count]["list-budget"]
            what = "`-l` against `python3 -c pass` + its ZFS commands (`zfs get -r`, `zpool list`)"
            out.append(within_delta(f"{count} checkpoints", what, ours, raw, LIST_MARGIN))
        ours, raw = found[count]["list"]
        out.append(within_ratio(f"{count} checkpoints", "`-l`", ours, raw, LIST_LIMIT) if count == counts[-1]
                   else Row(f"{count} checkpoints", "`-l`", ours, raw))  # fmt: skip
        for step, label in (("create", "`create`"), ("rename", "`rename`"), ("activate", "`-a`"),
                            ("trial", "`-a --once`"), ("destroy", "`-r`")):  # fmt: skip
            ours, raw = found[count][step]
            out.append(Row(f"{count} checkpoints", label, ours, raw))
    for step, label in (("create", "`create`"), ("rename", "`rename`"), ("activate", "`-a`"),
                        ("trial", "`-a --once`"), ("destroy", "`-r`")):  # fmt: skip
        out.append(
            within_ratio(
                f"{counts[-1]} against {counts[0]}", label, top[step][0], base[step][0], SCALE_LIMIT, f"at {counts[0]}"
            )  # fmt: skip
        )
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--counts", default="10,100,1000")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--apart", action="store_true", help="one sandbox, the counts one after another")
    args = parser.parse_args()
    print(table(rows([int(c) for c in args.counts.split(",")], args.rounds, apart=args.apart)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The main job: ``apt-clone install`` and ``upgrade`` of one small package, in place and in
the clone, and ``apt-clone rollback``, against the raw sequences they wrap, interleaved.

Raw in place: ``zfs snapshot`` + ``zfs clone`` of the root, then ``apt-get`` chrooted into it
with /proc, /sys, /dev, /dev/pts and /run set up as apt-clone sets them up. Raw in the clone:
the same, with the clone mounted at a directory of its own and apt-get chrooted there. Raw
rollback: ``zfs rollback`` of the root + ``zfs destroy`` of the clone and the snapshot. Every
round starts from the same state: the root rolled back to a snapshot taken at the start (untimed).
Targets (issues #23 and #36): install at most 0.3 s over raw in place, 0.6 s in the clone;
rollback at most raw + ``python3 -c pass`` (timed beside it) + 0.1 s.

Usage: ``python -m bench.job [--rounds 5]`` (as root).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from apt_clone.zfs.cli import CliZfs

from .common import PY, Row, bytecode, clock, interleaved, sh, table, within_delta
from .scale import Bench

PACKAGE = "ac-extra"
BASE = "bench-job-base"


@contextmanager
def chrooted(root: str) -> Iterator[None]:
    """/proc, /sys, /dev, /dev/pts and a /run of its own in ``root``, as apt-clone sets them up."""
    mounts = [
        (["mount", "-t", "proc", "proc"], "proc"),
        (["mount", "--bind", "/sys"], "sys"),
        (["mount", "--bind", "/dev"], "dev"),
        (["mount", "--bind", "/dev/pts"], "dev/pts"),
        (["mount", "-t", "tmpfs", "-o", "mode=0755,nosuid,nodev", "tmpfs"], "run"),
    ]
    done = []
    try:
        for argv, where in mounts:
            sh(*argv, os.path.join(root, where))
            done.append(os.path.join(root, where))
        yield
    finally:
        for path in reversed(done):
            sh("umount", path)


def apt_get(root: str, *args: str) -> None:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}
    with chrooted(root):
        sh("chroot", root, "apt-get", "-y", "-q", "-o", "Dpkg::Use-Pty=0", *args, env=env)


class Job:
    def __init__(self, b: Bench) -> None:
        self.b = b
        sh("zfs", "snapshot", f"{b.first}@{BASE}")

    def reset(self) -> None:
        """Every checkpoint but the first destroyed, the root rolled back to the start."""
        b = self.b
        names = sh("zfs", "list", "-H", "-o", "name", "-d", "1", "-t", "filesystem", b.container).stdout.split()
        for name in names:
            if name not in (b.container, b.first):
                CliZfs().destroy(name, recursive=True)  # "busy" a moment after an unmount: retried
        sh("zfs", "rollback", "-r", f"{b.first}@{BASE}")

    def raw_snapshot_clone(self) -> str:
        b = self.b
        sh("zfs", "snapshot", f"{b.first}@raw")
        sh("zfs", "clone", "-o", "canmount=noauto", f"{b.first}@raw", f"{b.container}/raw")
        return f"{b.container}/raw"

    def raw_rollback(self) -> None:
        b = self.b
        sh("zfs", "rollback", f"{b.first}@raw")
        sh("zfs", "destroy", f"{b.container}/raw")
        sh("zfs", "destroy", f"{b.first}@raw")

    def raw_in_place(self, *apt: str) -> Callable[[], None]:
        def run() -> None:
            self.raw_snapshot_clone()
            apt_get(self.b.root, *apt)

        return run

    def raw_in_clone(self, *apt: str) -> Callable[[], None]:
        def run() -> None:
            clone = self.raw_snapshot_clone()
            where = tempfile.mkdtemp(prefix="bench-job.", dir="/var/tmp")
            if self.b.openzfs:
                sh("mount", "-t", "zfs", "-o", "zfsutil", clone, where)
            else:
                sh("zfs", "set", f"mountpoint={where}", clone)
                sh("zfs", "mount", clone)
            try:
                apt_get(where, *apt)
            finally:
                sh("umount", where) if self.b.openzfs else sh("zfs", "unmount", clone)
                os.rmdir(where)

        return run


def rows(rounds: int) -> list[Row]:
    bytecode()
    b = Bench()
    job = Job(b)
    try:
        out = []
        for what, ac, apt in (
            ("install", ("install", "--no-update", PACKAGE), ("install", PACKAGE)),
            ("upgrade", ("upgrade", "--no-update"), ("upgrade",)),
        ):
            place = interleaved(
                {"ours": lambda ac=ac: b.ac("-y", *ac), "raw": job.raw_in_place(*apt)}, rounds, job.reset
            )
            out.append(within_delta("main job", f"`{what}` in place", place["ours"], place["raw"], 0.3))
            clone = interleaved(
                {"ours": lambda ac=ac: b.ac("-y", *ac[:1], "-s", "--then", "nothing", *ac[1:]),
                 "raw": job.raw_in_clone(*apt)},
                rounds,
                job.reset,
            )  # fmt: skip
            out.append(within_delta("main job", f"`{what}` in the clone", clone["ours"], clone["raw"], 0.6))
        ours_rb, raw_rb, start = [], [], []  # Python's start timed in the same rounds
        for i in range(rounds):
            for side in ("ours", "raw", "pass") if i % 2 == 0 else ("raw", "pass", "ours"):
                if side == "pass":
                    start.append(clock(lambda: sh(PY, "-c", "pass")))
                    continue  # nothing to put back
                if side == "ours":
                    b.ac("create")
                    name = b.newest()
                    ours_rb.append(clock(lambda name=name: b.ac("-y", "rollback", name)))
                else:
                    job.raw_snapshot_clone()
                    raw_rb.append(clock(job.raw_rollback))
                job.reset()
        raw = statistics.median(raw_rb) + statistics.median(start)
        out.append(within_delta("main job", "`rollback` (raw: its ZFS commands + `python3 -c pass`)",
                                statistics.median(ours_rb), raw, 0.1))  # fmt: skip
        return out
    finally:
        b.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(table(rows(args.rounds)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

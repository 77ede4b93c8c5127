"""``apt-clone prune`` of N checkpoints against raw ``zfs destroy`` of the same set (each
checkpoint's clone, then its snapshot), side by side on a pool of its own (zfs-fuse here).

The checkpoints are made with raw zfs (snapshot, mark, clone with metadata) on a file-backed pool
with one root and a GRUB directory; prune removes them all (``keep = 0``, no day, week or month
kept); then the same set is made again and destroyed with raw zfs. Usage:
``python -m bench.prune [--count 1000]`` (as root).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from apt_clone import model

from .common import Row

POLICY = "[prune]\nkeep = 0\ndaily = 0\nweekly = 0\nmonthly = 0\nmin-free = 0\n"


def zfs(*args: str) -> None:
    subprocess.run(["zfs", *args], check=True, capture_output=True)


def make(pool: str, root: str, count: int) -> list[str]:
    names = []
    now = dt.datetime.now(dt.UTC)
    for i in range(count):
        name = f"cp-{i:04d}"
        snap = f"{pool}/ROOT/be1@{name}"
        zfs("snapshot", snap)
        zfs("set", f"{model.SNAPSHOT_MARK}={name}", snap)
        created = (now - dt.timedelta(hours=i + 1)).isoformat().replace("+00:00", "Z")
        zfs("clone", "-o", "canmount=noauto", "-o", "mountpoint=none", "-o", f"{model.KIND}=automatic",
            "-o", f"{model.CREATED}={created}", snap, f"{pool}/ROOT/{name}")  # fmt: skip
        zfs("set", f"mountpoint={root}", f"{pool}/ROOT/{name}")
        names.append(name)
    return names


def measure(count: int) -> tuple[float, float]:
    """(apt-clone prune, raw zfs destroy) seconds for ``count`` checkpoints."""
    from tests.sandbox import daemon

    daemon.ensure_running()
    base = Path(tempfile.mkdtemp(prefix="apt-clone-bench-prune.", dir="/var/tmp"))
    pool = f"acbench-prune-{os.getpid()}"
    image = base / "pool.img"
    subprocess.run(["truncate", "-s", "2G", str(image)], check=True)
    subprocess.run(["zpool", "create", "-m", "none", pool, str(image)], check=True)
    try:
        zfs("create", "-o", "mountpoint=none", f"{pool}/ROOT")
        root = str(base / "root")
        zfs("create", "-o", f"mountpoint={root}", f"{pool}/ROOT/be1")
        os.makedirs(f"{root}/boot/grub")
        subprocess.run(["grub-editenv", f"{root}/boot/grub/grubenv", "create"], check=True)
        conf = base / "apt-clone.conf"
        conf.write_text(POLICY)
        env = {**os.environ, "APT_CLONE_CONFIG": str(conf), "APT_CLONE_STATE_DIR": str(base / "state"),
               "APT_CLONE_RUN_DIR": str(base / "run")}  # fmt: skip
        names = make(pool, root, count)
        t0 = time.perf_counter()
        got = subprocess.run([sys.executable, "-m", "apt_clone", "--root", root, "-y", "prune"],
                             env=env, capture_output=True, text=True)  # fmt: skip
        ours = time.perf_counter() - t0
        if got.returncode != 0:
            raise SystemExit(f"prune failed: {got.stderr[-500:]}")
        make(pool, root, count)
        t0 = time.perf_counter()
        for name in names:
            zfs("destroy", f"{pool}/ROOT/{name}")
            zfs("destroy", f"{pool}/ROOT/be1@{name}")
        raw = time.perf_counter() - t0
    finally:
        subprocess.run(["zpool", "destroy", "-f", pool], check=False)
        shutil.rmtree(base, ignore_errors=True)
    return ours, raw


def row(count: int) -> Row:
    ours, raw = measure(count)
    return Row("prune", f"`prune` of {count} checkpoints against `zfs destroy` of each", ours, raw)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1000)
    args = parser.parse_args()
    ours, raw = measure(args.count)
    print(f"prune of {args.count} checkpoints: apt-clone {ours:.1f} s, raw zfs destroy {raw:.1f} s, "
          f"ratio {ours / raw:.2f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

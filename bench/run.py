"""Every benchmark, one table: the interpreter's start, the main job, the scale (10, 100 and
1,000 checkpoints), prune of 1,000 and the APT hook, each against the raw commands it wraps,
interleaved, medians. ``make bench`` runs it with ``--readme``: the table goes into docs/performance.md
between its bench markers, with the machine and the command. The results also go to
``bench/results.json``.

Usage: ``python -m bench.run [--quick] [--rounds 5] [--counts 10,100,1000] [--no-hook]
[--no-prune] [--readme]`` (as root). ``--quick``: counts 10,30, 3 rounds, no hook, prune of 50.
The main job runs ``2 × rounds - 1`` rounds and the hook ``2 × rounds + 1``: an apt run on
zfs-fuse varies by tens of milliseconds from one run to the next, as much as their targets' margins.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess

from . import hook, job, prune, scale, start
from .common import REPO, Row, table, write_readme


def machine() -> str:
    zfs = "kernel OpenZFS" if os.path.isdir("/sys/module/zfs") else "zfs-fuse"
    return f"{platform.node()}: {os.cpu_count()} cores, {zfs}, Python {platform.python_version()}"


def vm_figures() -> str:
    """The scale benchmark on kernel OpenZFS, as the VM lane's test VM last ran it."""
    from vm.lane import BENCH_VM

    if not BENCH_VM.exists():
        return "Kernel OpenZFS (the VM lane's test VM): not run here yet (`make test-vm` runs it)."
    when = dt.datetime.fromtimestamp(BENCH_VM.stat().st_mtime, dt.UTC).strftime("%Y-%m-%d")
    head = (f"Kernel OpenZFS 2.3 in the VM lane's test VM (QEMU under TCG, 2 vCPUs shared with the "
            f"other tests; `python -m bench.scale --counts 3,10 --rounds 3 --apart`, {when}):")  # fmt: skip
    return f"{head}\n\n{BENCH_VM.read_text(encoding='utf-8').rstrip()}"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--counts", default="10,100,1000")
    parser.add_argument("--prune-count", type=int, default=1000)
    parser.add_argument("--no-hook", action="store_true")
    parser.add_argument("--no-prune", action="store_true")
    parser.add_argument("--readme", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.counts, args.prune_count, args.no_hook = 3, "10,30", 50, True
    rows: list[Row] = []
    rows += start.rows(3 * args.rounds)
    rows += job.rows(2 * args.rounds - 1)
    rows += scale.rows([int(c) for c in args.counts.split(",")], args.rounds)
    if not args.no_prune:
        rows.append(prune.row(args.prune_count))
    if not args.no_hook:
        rows += hook.rows(2 * args.rounds + 1)
    text = table(rows)
    print(text)
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    (REPO / "bench" / "results.json").write_text(
        json.dumps(
            {"machine": machine(), "commit": commit.stdout.strip(), "rows": [r.as_dict() for r in rows]}, indent=1
        )
        + "\n"  # fmt: skip
    )
    if args.readme:
        note = (f"Measured by `make bench` (`python -m bench.run --readme`) on {machine()}, commit "
                f"{commit.stdout.strip()}; medians of {args.rounds} interleaved rounds ({2 * args.rounds - 1} "
                f"for the main job, {2 * args.rounds + 1} for the hook, whose apt runs vary most).")  # fmt: skip
        write_readme(f"{note}\n\n{text}\n\n{vm_figures()}")
    return 0 if all(r.met is not False for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())

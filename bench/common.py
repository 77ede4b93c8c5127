"""What the benchmarks share: commands run side by side and interleaved, medians, ratios,
targets, and the table ``make bench`` writes into docs/performance.md."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable


def sh(*argv: str, env: Mapping[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run one command (argv, never a shell string); its failure stops the benchmark with its words."""
    got = subprocess.run(list(argv), capture_output=True, text=True, env=None if env is None else dict(env))
    if check and got.returncode != 0:
        raise SystemExit(f"{' '.join(argv)}: exit {got.returncode}: {(got.stderr or got.stdout)[-800:]}")
    return got


def clock(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def interleaved(
    timed: Mapping[str, Callable[[], object]], rounds: int, between: Callable[[], object] | None = None
) -> dict[str, float]:
    """Median seconds of each of ``timed``, run in turn every round, the order rotated each round
    so that none always comes first; ``between`` (untimed) after each one puts the state back."""
    names = list(timed)
    samples: dict[str, list[float]] = {n: [] for n in names}
    for i in range(rounds):
        k = i % len(names)
        for name in names[k:] + names[:k]:
            samples[name].append(clock(timed[name]))
            if between is not None:
                between()
    return {n: statistics.median(s) for n, s in samples.items()}


def bytecode() -> None:
    """Byte-compile apt_clone as its package does at install (this workplace sets
    PYTHONDONTWRITEBYTECODE, which would make every run compile it from source); the VM lane
    compiled it already (APT_CLONE_BENCH_COMPILED)."""
    if os.environ.get("APT_CLONE_BENCH_COMPILED") != "1":
        sh(PY, "-m", "compileall", "-q", str(REPO / "apt_clone"))


def ac_env(run_dir: str, **more: str) -> dict[str, str]:
    """The environment apt-clone runs in for a benchmark: a lock and a state of its own."""
    env = {k: v for k, v in os.environ.items() if k != "APT_CLONE_TRACE"}
    env.update(APT_CLONE_RUN_DIR=f"{run_dir}/run", APT_CLONE_STATE_DIR=f"{run_dir}/state", **more)
    return env


@dataclass(frozen=True)
class Row:
    """One line of the table: apt-clone against the raw commands, and the target."""

    group: str
    what: str
    ours: float
    raw: float | None
    target: str = ""
    met: bool | None = None

    @property
    def ratio(self) -> float | None:
        return self.ours / self.raw if self.raw else None

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "ratio": self.ratio}


def within_ratio(group: str, what: str, ours: float, raw: float, limit: float, of: str = "raw") -> Row:
    return Row(group, what, ours, raw, f"≤ {limit}× {of}", ours <= limit * raw)


def within_delta(group: str, what: str, ours: float, raw: float, limit: float) -> Row:
    return Row(group, what, ours, raw, f"≤ raw + {limit} s", ours - raw <= limit)


def table(rows: Sequence[Row]) -> str:
    """The rows as a Markdown table."""
    out = ["| | apt-clone | raw | ratio | target | |", "|---|---|---|---|---|---|"]
    for r in rows:
        raw = f"{r.raw:.3f} s" if r.raw is not None else ""
        ratio = f"{r.ratio:.2f}" if r.ratio is not None else ""
        mark = {True: "met", False: "**not met**", None: ""}[r.met]
        out.append(f"| {r.group}: {r.what} | {r.ours:.3f} s | {raw} | {ratio} | {r.target} | {mark} |")
    return "\n".join(out)


START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def write_readme(text: str, readme: Path = REPO / "docs" / "performance.md") -> None:
    """Put ``text`` between the bench markers of docs/performance.md (appended with them when they are missing)."""
    body = readme.read_text(encoding="utf-8")
    block = f"{START}\n{text.rstrip()}\n{END}"
    if START in body and END in body:
        head, rest = body.split(START, 1)
        body = head + block + rest.split(END, 1)[1]
    else:
        body = body.rstrip("\n") + "\n\n" + block + "\n"
    readme.write_text(body, encoding="utf-8")

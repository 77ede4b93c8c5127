"""Rendering of service results as text or JSON."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from ..checkpoints.tree import Listing
from ..model import Checkpoint, bad_mark, label, parse_time, seed_time
from ..record import asdict, is_record
from ..text import escaped

TYPE_CHECKING = False  # typing itself is not imported at run time: -l's start-up (mypy knows the name)
if TYPE_CHECKING:  # inspect and check load only for their commands
    from typing import Any

    from ..checkpoints.check import Report
    from ..checkpoints.inspect import Details, Diff, FileDiff
    from ..checkpoints.prune import Pruned


def listing_text(listing: Listing) -> str:
    """The seed's listing: A (boots next: ``o``; once, a trial or a one-time boot: ``T``), C
    (running: a trial being judged is ``C`` only), the name and the title, with the kind, pins
    and a bad trial after it."""
    width = max([len("BOOTFS"), *(len(cp.name) for cp in listing.checkpoints)])
    lines = [f"A C {'BOOTFS'.ljust(width)} TITLE"]
    for cp in listing.checkpoints:
        a = "o" if cp.active else "T" if cp.trial and not cp.current else " "
        c = "o" if cp.current else " "
        flags = (cp.kind if cp.kind != "initial" else "", "pinned" if cp.pinned else "", "BAD" if cp.bad else "")
        marks = [m for m in flags if m]
        lines.append(f"{a} {c} {cp.name.ljust(width)} {label(cp)}" + (f" ({', '.join(marks)})" if marks else ""))
    if listing.next_boot is None:
        lines.append("(no checkpoint is set to boot next: the pool's bootfs is unset)")
    lines += [f"Note: {note}" for note in listing.notes]
    return "\n".join(lines)


def listing_json(listing: Listing, columns: Sequence[str] | None = None) -> str:
    """The checkpoints as a JSON list; ``columns``: only those keys (``-o``)."""
    rows = [cp.to_json() for cp in listing.checkpoints]
    if columns:
        rows = [{c: row[c] for c in columns} for row in rows]
    return to_json(rows)


COLUMNS = (
    "name", "title", "active", "current", "trial", "bad", "kind", "pinned", "used", "referenced", "created",
    "origin", "dataset", "kernels", "command",
)  # fmt: skip
"""What ``-l -o`` can show, as ``zfs list -o`` does."""
DEFAULT_COLUMNS = ("name", "active", "current", "trial", "kind", "used", "created", "title")
"""``-l -H`` or ``-p`` without ``-o``."""


def _human(n: int) -> str:
    """A size as ``zfs list`` shows one: three significant digits and a unit letter."""
    value = float(n)
    for unit in ("B", "K", "M", "G", "T", "P"):
        if value < 1024 or unit == "P":
            break
        value /= 1024
    if unit == "B":
        return f"{n}B"
    return f"{value:.2f}{unit}" if value < 10 else f"{value:.1f}{unit}" if value < 100 else f"{value:.0f}{unit}"


def column_value(cp: Checkpoint, column: str, *, exact: bool) -> str:
    """One field of a listing row: ``exact`` (``-p``) gives bytes and epoch seconds."""
    flag = {"active": cp.active, "current": cp.current, "trial": cp.trial, "pinned": cp.pinned}
    if column in flag:
        return "yes" if flag[column] else "no"
    if column in ("used", "referenced"):
        size: int = getattr(cp, column)
        return str(size) if exact else _human(size)
    if column == "created":
        when = parse_time(cp.created)
        if when is None:
            return cp.created
        return str(int(when.timestamp())) if exact else when.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
    if column == "kernels":
        return ",".join(cp.kernels) or "-"
    if column == "bad":
        return escaped(bad_text(cp.bad)) if cp.bad else "-"
    value = getattr(cp, column)
    return escaped(str(value)) if value else "-"


def sort_key(cp: Checkpoint, column: str) -> Any:
    """What ``-s``/``-S`` sorts by: numbers as numbers, times in time order, yes after no."""
    if column in ("used", "referenced"):
        return getattr(cp, column)
    if column == "created":
        return (cp.created and parse_time(cp.created) or dt.datetime.min.replace(tzinfo=dt.UTC), cp.createtxg)
    return column_value(cp, column, exact=True)


def listing_table(listing: Listing, columns: Sequence[str], *, header: bool = True, exact: bool = False) -> str:
    """``-l -o``: the columns asked, aligned under a header as ``zfs list`` does; without the
    header (``-H``) one tab between fields, for scripts."""
    rows = [[column_value(cp, c, exact=exact) for c in columns] for cp in listing.checkpoints]
    if not header:
        return "\n".join("\t".join(row) for row in rows)
    table = [[c.upper() for c in columns], *rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(columns))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in table)


def to_json(data: Any) -> str:
    import json  # a JSON document only: off the text listing's start-up

    return json.dumps(data, indent=2, sort_keys=True, default=_default)


def _default(obj: Any) -> Any:
    if isinstance(obj, dt.datetime):
        return obj.isoformat()
    if is_record(obj):
        return asdict(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def _rows(rows: list[list[str | None]]) -> list[str]:
    width = max([7, *(len(r[0] or "") for r in rows)])
    out = []
    for name, old, new, action in rows:
        out.append(f"  {(name or '').ljust(width)} {(old or '-'):>16} -> {(new or '-'):<16} {action}")
    return out


def bad_text(mark: str) -> str:
    """``<time> <reason>`` as ``reason (since time)``."""
    when, why = bad_mark(mark)
    return f"{why} (since {seed_time(when, zone=True)})"


def show_text(details: Details) -> str:
    cp = details.checkpoint
    lines = [
        f"Checkpoint: {cp.name} ({cp.dataset})",
        f"Title:      {cp.title}",
        f"Kind:       {cp.kind}",
        f"Created:    {seed_time(cp.created, zone=True)}",
        f"Origin:     {cp.origin or '-'}",
        f"Command:    {cp.command or '-'}",
        f"Summary:    {cp.summary or '-'}",
        *([f"Reboot:     {details.reboot}"] if details.reboot else []),
        f"Active:     {'yes' if cp.active else 'no'}; current: {'yes' if cp.current else 'no'}"
        + ("; pinned" if cp.pinned else ""),
        *([f"Bad:        {bad_text(cp.bad)}"] if cp.bad else []),
    ]
    if details.changes:
        lines.append(f"Package changes ({len(details.changes)}):")
        lines += _rows(details.changes)
    else:
        lines.append("Package changes: none recorded")
    return "\n".join(lines)


def check_text(report: Report) -> str:
    lines = ["Layout:"]
    lines += [f"  {path:<11} {what or '-'}" for path, what in report.places.items()]
    for f in report.findings:
        lines.append(f"{f.level:<5} {f.topic:<10} {f.text}")
        if f.fix:
            lines.append(f"{'':<16} fix: {f.fix}")
    lines.append(f"{report.risks} risk(s)" if report.risks else "no risks found")
    return "\n".join(lines)


def diff_text(result: Diff) -> str:
    if not result.changes:
        return f"No package differences between {result.a} and {result.b}."
    return "\n".join(
        [f"Package differences from {result.a} to {result.b} ({len(result.changes)}):", *_rows(result.changes)]
    )


def file_diff_text(result: FileDiff) -> str:
    """``diff --files``: a line per file, what changed in A and in B since the snapshot both
    descend from (``M`` modified, ``+`` added, ``-`` removed, ``R`` renamed, ``.`` nothing)."""
    if not result.files:
        return f"No file differences between {result.a} and {result.b} (since {result.since})."
    head = f"Files that differ between {result.a} and {result.b} ({len(result.files)}; changes since {result.since}):"
    return "\n".join([head, "  A B", *(f"  {a or '.'} {b or '.'} {escaped(path)}" for path, a, b in result.files)])


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def prune_text(result: Pruned) -> str:
    plan = result.plan
    verb = "Would remove" if result.dry_run else "Removed"
    names = [r.name for r in plan.remove] if result.dry_run else result.removed
    if not names:
        lines = ["Nothing to remove: the retention policy keeps every checkpoint."]
    else:
        lines = [f"{verb} {len(names)} checkpoint(s):"]
        width = max(len(n) for n in names)
        for r in [*plan.remove, *result.more]:
            if r.name in names:
                held = ", ".join(f"{_size(n)} on {p}" for p, n in r.frees.items() if n) or "nothing measurable"
                lines.append(
                    f"  {r.name.ljust(width)} {seed_time(r.created, zone=True)}  {r.kind:<9} {r.reason}; frees {held}"
                )
    frees = plan.frees()
    for p in plan.pools:
        est = p.percent(frees.get(p.name, 0))
        lines.append(f"Pool {p.name}: {p.percent():.1f}% free, {est:.1f}% after (at least)")
    if result.more:
        more = ", ".join(r.name for r in result.more)
        lines.append(f"Measured after the plan, a pool was still short: removed {more} as well")
    if not result.dry_run:
        lines += [f"Pool {p.name} now: {p.percent():.1f}% free" for p in result.pools_after]
    lines += [f"Note: {n}" for n in plan.notes]
    return "\n".join(lines)

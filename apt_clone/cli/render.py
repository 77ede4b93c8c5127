"""Rendering of service results as text or JSON."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from ..checkpoints.services import Listing
from ..model import bad_mark, label, seed_time

if TYPE_CHECKING:  # inspect and check load only for their commands
    from ..checkpoints.check import Report
    from ..checkpoints.inspect import Details, Diff
    from ..checkpoints.prune import Pruned


def listing_text(listing: Listing) -> str:
    width = max([len("BOOTFS"), *(len(cp.name) for cp in listing.checkpoints)])
    lines = [f"A C {'BOOTFS'.ljust(width)} TITLE"]
    for cp in listing.checkpoints:
        a = "o" if cp.active else " "
        c = "o" if cp.current else " "
        flags = (cp.kind if cp.kind != "initial" else "", "pinned" if cp.pinned else "", "BAD" if cp.bad else "")
        marks = [m for m in flags if m]
        lines.append(f"{a} {c} {cp.name.ljust(width)} {label(cp)}" + (f" ({', '.join(marks)})" if marks else ""))
    if listing.next_boot is None:
        lines.append("(no checkpoint is set to boot next: the pool's bootfs is unset)")
    lines += [f"Note: {note}" for note in listing.notes]
    return "\n".join(lines)


def listing_json(listing: Listing) -> str:
    return to_json([cp.to_json() for cp in listing.checkpoints])


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, default=_default)


def _default(obj: Any) -> Any:
    if isinstance(obj, dt.datetime):
        return obj.isoformat()
    if hasattr(obj, "__dataclass_fields__"):
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
    return f"{why} (since {seed_time(when)})"


def show_text(details: Details) -> str:
    cp = details.checkpoint
    lines = [
        f"Checkpoint: {cp.name} ({cp.dataset})",
        f"Title:      {cp.title}",
        f"Kind:       {cp.kind}",
        f"Created:    {seed_time(cp.created)}",
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
        for r in plan.remove:
            if r.name in names:
                held = ", ".join(f"{_size(n)} on {p}" for p, n in r.frees.items() if n) or "nothing measurable"
                lines.append(f"  {r.name.ljust(width)} {seed_time(r.created)}  {r.kind:<9} {r.reason}; frees {held}")
    frees = plan.frees()
    for p in plan.pools:
        est = p.percent(frees.get(p.name, 0))
        lines.append(f"Pool {p.name}: {p.percent():.1f}% free, {est:.1f}% after (at least)")
    if not result.dry_run:
        lines += [f"Pool {p.name} now: {p.percent():.1f}% free" for p in result.pools_after]
    lines += [f"Note: {n}" for n in plan.notes]
    return "\n".join(lines)

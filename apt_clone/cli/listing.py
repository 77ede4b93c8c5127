"""``apt-clone -l``: the listing as text, a table (``-o``/``-H``/``-p``) or JSON, shared by the
command line and :mod:`apt_clone.entry`'s fast path (which takes a listing's plain arguments
without loading typer and click: a user types ``-l`` many times a day)."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from .. import testhooks
from ..checkpoints.tree import list_checkpoints
from ..context import Context
from ..errors import UsageError
from . import render


def columns(text: str | None, option: str) -> list[str]:
    """``-o``'s, ``-s``'s or ``-S``'s comma-separated column names, checked."""
    names = [c.strip().lower() for c in (text or "").split(",") if c.strip()]
    unknown = [c for c in names if c not in render.COLUMNS]
    if unknown or (text is not None and not names):
        bad = unknown[0] if unknown else text
        raise UsageError(f"{option}: unknown column {bad!r} (columns: {', '.join(render.COLUMNS)})")
    return names


def show(
    cx: Context,
    *,
    json_out: bool = False,
    names: bool = False,
    output: str | None = None,
    no_header: bool = False,
    exact: bool = False,
    sort: Sequence[str] = (),
    sort_desc: Sequence[str] = (),
) -> str:
    """The listing of ``cx``'s checkpoints as ``-l`` prints it (options checked before any read)."""
    shown = columns(output, "-o")
    keys = [(c, False) for s in sort for c in columns(s, "-s")]
    keys += [(c, True) for s in sort_desc for c in columns(s, "-S")]
    listing = list_checkpoints(cx)
    testhooks.point("list.read")
    for column, descending in reversed(keys):  # the first key decides first, as zfs list -s
        listing.checkpoints.sort(key=functools.partial(render.sort_key, column=column), reverse=descending)
    if names and not json_out:
        return "\n".join(cp.name for cp in listing.checkpoints)
    if json_out:
        return render.listing_json(listing, shown)
    if shown or no_header or exact:
        return render.listing_table(listing, shown or list(render.DEFAULT_COLUMNS), header=not no_header, exact=exact)
    return render.listing_text(listing)

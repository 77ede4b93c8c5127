"""Validation of checkpoint names and titles, and the numbering of new checkpoints."""

from __future__ import annotations

import re
import unicodedata

from .errors import UsageError

MAX_NAME = 64
MAX_TITLE = 200
_NAME_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
_NUMBERED = re.compile(r"^(?P<prefix>.*?)(?P<num>\d+)$")


def validate_name(name: str) -> str:
    """A checkpoint's own name (the last component of its dataset)."""
    if not name:
        raise UsageError("checkpoint name is empty")
    for bad, what in (("/", "'/'"), ("@", "'@'"), ("%", "'%'"), ("#", "'#'")):
        if bad in name:
            raise UsageError(f"bad checkpoint name {name!r}: {what} is not allowed")
    if any(c.isspace() for c in name):
        raise UsageError(f"bad checkpoint name {name!r}: whitespace is not allowed")
    if not name.isascii():
        raise UsageError(f"bad checkpoint name {name!r}: only ASCII letters, digits, '.', '_', ':', '-'")
    if len(name) > MAX_NAME:
        raise UsageError(f"bad checkpoint name: longer than {MAX_NAME} characters")
    if name in (".", "..") or not _NAME_OK.match(name):
        raise UsageError(
            f"bad checkpoint name {name!r}: start with a letter or digit; then letters, digits, '.', '_', ':', '-'"
        )
    return name


def resolve_name(name: str, container: str) -> str:
    """Accept ``NAME`` or ``CONTAINER/NAME``; anything addressing outside the container is refused."""
    if "/" in name:
        prefix = container + "/"
        if not name.startswith(prefix):
            raise UsageError(f"{name!r} is not a checkpoint in {container}")
        name = name[len(prefix) :]
    return validate_name(name)


def validate_title(title: str) -> str:
    if not title or not title.strip():
        raise UsageError("title is empty")
    try:
        title.encode("utf-8")
    except UnicodeEncodeError:  # bytes that are not UTF-8 arrive as lone surrogates
        raise UsageError("bad title: it is not valid UTF-8") from None
    for c in title:
        if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp", "Cs"):
            raise UsageError(f"bad title: control character {c!r} is not allowed")
    if len(title) > MAX_TITLE:
        raise UsageError(f"bad title: longer than {MAX_TITLE} characters")
    return title


def _valid(name: str) -> bool:
    try:
        validate_name(name)
    except UsageError:
        return False
    return True


def _series(current: str) -> tuple[str, int]:
    """The prefix and digit count of the names that continue ``current``'s numbering."""
    match = _NUMBERED.match(current)
    if match:
        prefix, width = match["prefix"], len(match["num"])
    else:
        prefix, width = f"{current}-nmu-", 3
    if not _valid(f"{prefix}{0:0{width}d}"[:MAX_NAME] or "x"):
        prefix, width = "rootfs-nmu-", 3
    return prefix, width


def in_series(current: str, name: str) -> bool:
    """Whether ``name`` is numbered like the names :func:`next_name` gives after ``current``."""
    match = _NUMBERED.match(name)
    return bool(match) and match is not None and match["prefix"] == _series(current)[0]


def before_in_series(name: str) -> str | None:
    """The name numbered one less than ``name`` (None for a number 0 or no number)."""
    match = _NUMBERED.match(name)
    if not match or int(match["num"]) == 0:
        return None
    return f"{match['prefix']}{int(match['num']) - 1:0{len(match['num'])}d}"


def next_name(current: str, existing: set[str], taken_tags: frozenset[str] = frozenset()) -> str:
    """The next free name continuing ``current``'s numbering: rootfs-nmu-000 -> rootfs-nmu-001.

    Always a name :func:`validate_name` accepts (the prefix is cut to fit MAX_NAME, a current
    name that is no valid checkpoint name restarts at ``rootfs-nmu-``), never one in
    ``existing``, and never one whose snapshot tag (:func:`snapshot_tag`) is in ``taken_tags``
    (the running root already has a snapshot of that name, a user's own)."""
    prefix, width = _series(current)
    used = [int(m["num"]) for n in existing if (m := _NUMBERED.match(n)) and m["prefix"] == prefix]
    number = max(used, default=0) + 1
    while True:
        digits = f"{number:0{width}d}"
        name = prefix[: MAX_NAME - len(digits)] + digits
        if name not in existing and snapshot_tag(name) not in taken_tags and _valid(name):
            return name
        number += 1


def snapshot_tag(name: str) -> str:
    """The snapshot a checkpoint is cloned from is named after it: rootfs-nmu-001 -> nmu-001."""
    return name[len("rootfs-") :] if name.startswith("rootfs-") and len(name) > len("rootfs-") else name

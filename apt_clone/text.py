"""Text from outside (a check's output, a file name, an apt argument, a configuration key) made
safe for one line of a terminal or a ZFS property."""

from __future__ import annotations

import unicodedata

UNSAFE = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
"""Unicode categories that move the cursor, colour the terminal, hide text or break a line."""


def escaped(text: str) -> str:
    """``text`` with every control, format and separator character written as Python writes it
    in a string literal (``\\t``, ``\\n``, ``\\x1b``, ``\\u202e``): one line, nothing the
    terminal obeys, and nothing ``zfs get -H`` would split."""
    if text.isprintable():
        return text
    return "".join(c.encode("unicode_escape").decode("ascii") if unicodedata.category(c) in UNSAFE else c for c in text)

"""apt-clone's user-property namespace and value rules."""

from __future__ import annotations

from ..errors import UsageError

NAMESPACE = "org.aptclone:"
"""Every piece of apt-clone metadata is a ZFS user property under this prefix."""

MAX_VALUE_BYTES = 8191
"""zfs-fuse aborts at 8192 bytes; OpenZFS allows 8191 for user properties too."""


def key(name: str) -> str:
    """The full property name for a short metadata key."""
    if not name or name != name.lower() or not all(c.isalnum() or c in "-_." for c in name):
        raise UsageError(f"bad metadata key {name!r}: lower-case letters, digits, '-', '_', '.' only")
    return NAMESPACE + name


def validate_value(prop: str, value: str) -> str:
    """Refuse values that break ``-H`` parsing or exceed zfs's limit."""
    if value == "":
        raise UsageError(f"property {prop}: empty value (clear it instead)")
    if "\t" in value or "\n" in value or "\r" in value:
        raise UsageError(f"property {prop}: tabs and newlines are not allowed")
    if len(value.encode("utf-8")) > MAX_VALUE_BYTES:
        raise UsageError(f"property {prop}: value longer than {MAX_VALUE_BYTES} bytes")
    return value

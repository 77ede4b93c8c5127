"""The EFI system partition's GRUB stub: where a UEFI machine's GRUB reads its directory from.

With shim-signed, grub-install writes ``EFI/<bootloader-id>/grub.cfg`` on the ESP: a stub that
finds GRUB's filesystem by UUID and reads the menu under a prefix, which on ZFS names one
dataset: ``set prefix=($root)'/BOOT/debian@/grub'`` is ``<boot pool>/BOOT/debian``'s ``/grub``.
That dataset, not a guess, is the copy GRUB reads.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

ESP_DIR = "boot/efi"
"""Where the OpenZFS Root-on-ZFS guide (and Debian's installer) mounts the ESP."""
STUB_MAX = 64 * 1024
"""A stub is a few lines: a larger file is not one (never read whole)."""

_UUID = re.compile(r"^\s*search(?:\.fs_uuid\s+(\S+)|\s+.*--fs-uuid\s.*?(\S+)\s*$)", re.MULTILINE)
_PREFIX = re.compile(r"^\s*set\s+prefix=\(\$root\)(?:'([^']*)'|\"([^\"]*)\"|(\S+))\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Stub:
    """What an ESP's ``grub.cfg`` stub points GRUB at."""

    path: str
    """The stub file (on the ESP)."""
    uuid: str | None
    """The filesystem it searches for (on ZFS: the pool's GUID in hex)."""
    prefix: str
    """GRUB's directory as the stub writes it: ``/BOOT/debian@/grub`` or ``/grub``."""

    @property
    def dataset(self) -> str | None:
        """The dataset inside the pool (``BOOT/debian``) when the prefix names one (ZFS)."""
        head, at, _ = self.prefix.partition("@")
        return head.strip("/") or None if at else None

    @property
    def directory(self) -> str:
        """GRUB's directory inside that dataset or filesystem (``/grub``)."""
        head, at, tail = self.prefix.partition("@")
        return (tail if at else head) or "/"


def parse(text: str, path: str) -> Stub | None:
    """A stub's search and prefix lines (None: the file sets no ``($root)`` prefix)."""
    prefix = _PREFIX.search(text)
    if prefix is None:
        return None
    uuid = _UUID.search(text)
    return Stub(path, (uuid.group(1) or uuid.group(2)) if uuid else None, next(g for g in prefix.groups() if g))


def read_stub(root: str, bootloader_id: str = "debian") -> Stub | None:
    """The stub on the ESP mounted at ``<root>/boot/efi``: ``EFI/<bootloader_id>/grub.cfg``,
    else the only ``EFI/*/grub.cfg`` that sets a prefix; None without one. Never follows a link."""
    efi = os.path.join(root, ESP_DIR, "EFI")
    try:
        vendors = sorted(os.listdir(efi))
    except OSError:
        return None
    ordered = [v for v in vendors if v.lower() == bootloader_id] + [v for v in vendors if v.lower() != bootloader_id]
    found = [s for s in (_read(os.path.join(efi, v, "grub.cfg")) for v in ordered) if s is not None]
    if not found:
        return None
    return found[0] if found[0].path.split(os.sep)[-2].lower() == bootloader_id or len(found) == 1 else None


def _read(path: str) -> Stub | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        with os.fdopen(fd, "rb") as f:
            data = f.read(STUB_MAX + 1)
    except OSError:
        return None
    if len(data) > STUB_MAX:
        return None
    return parse(data.decode("utf-8", errors="replace"), path)

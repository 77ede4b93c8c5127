"""The EFI system partition's GRUB stub: where a UEFI machine's GRUB reads its directory from.

With shim-signed, grub-install writes ``EFI/<bootloader-id>/grub.cfg`` on the ESP: a stub that
finds GRUB's filesystem by UUID and reads the menu under a prefix, which on ZFS names one
dataset: ``set prefix=($root)'/BOOT/debian@/grub'`` is ``<boot pool>/BOOT/debian``'s ``/grub``.
That dataset, not a guess, is the copy GRUB reads.
"""

from __future__ import annotations

import os
import re

from ..record import record
from ..system import Mount

ESP_DIR = "boot/efi"
"""Where the OpenZFS Root-on-ZFS guide (and Debian's installer) mounts the ESP."""
STUB_MAX = 64 * 1024
"""A stub is a few lines: a larger file is not one (never read whole)."""

_UUID = re.compile(r"^\s*search(?:\.fs_uuid\s+(\S+)|\s+.*--fs-uuid\s.*?(\S+)\s*$)", re.MULTILINE)
_PREFIX = re.compile(r"^\s*set\s+prefix=\(\$root\)(?:'([^']*)'|\"([^\"]*)\"|(\S+))\s*$", re.MULTILINE)


@record(frozen=True)
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


KEPT_DIR = "boot/apt-clone/esp"
"""Where a checkpoint keeps the ESP's ``EFI/`` as it was when the checkpoint was taken: under
/boot, which every checkpoint holds (its root or its boot twin), so the snapshot keeps it."""


def mounted_esp(root: str, mounts: list[Mount]) -> str | None:
    """``<root>/boot/efi`` when a filesystem of its own (the ESP) is mounted there with ``EFI/``."""
    where = os.path.realpath(os.path.join(root, ESP_DIR))
    if not any(m.mountpoint == where for m in mounts) or not os.path.isdir(os.path.join(where, "EFI")):
        return None
    return where


def keep(root: str, esp: str) -> list[str]:
    """Copy the ESP's ``EFI/`` into the checkpoint-to-be (:data:`KEPT_DIR`), writing only what
    differs: what was written."""
    kept = os.path.join(root, KEPT_DIR)
    os.makedirs(kept, mode=0o700, exist_ok=True)
    return sync(os.path.join(esp, "EFI"), os.path.join(kept, "EFI"))


def put_back(root: str, esp: str) -> list[str]:
    """After a rollback: the ESP's ``EFI/`` made byte for byte what the checkpoint kept (nothing
    when it kept none): what was written or removed."""
    kept = os.path.join(root, KEPT_DIR, "EFI")
    if not os.path.isdir(kept) or os.path.islink(kept):
        return []
    return sync(kept, os.path.join(esp, "EFI"))


def _files(top: str) -> dict[str, str]:
    """Relative path -> full path of the regular files under ``top`` (links are never followed)."""
    out: dict[str, str] = {}
    for base, dirs, names in os.walk(top, followlinks=False):
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(base, d))]
        for name in names:
            path = os.path.join(base, name)
            if os.path.isfile(path) and not os.path.islink(path):
                out[os.path.relpath(path, top)] = path
    return out


def _same(a: str, b: str) -> bool:
    try:
        if os.path.getsize(a) != os.path.getsize(b):
            return False
        with open(a, "rb") as fa, open(b, "rb") as fb:
            while True:
                chunk = fa.read(1 << 20)
                if chunk != fb.read(1 << 20):
                    return False
                if not chunk:
                    return True
    except OSError:
        return False


def sync(source: str, target: str) -> list[str]:
    """Make the tree ``target`` hold exactly the files of ``source``: changed or new files
    written (a temporary name, then renamed), the others removed. What changed, relative."""
    wanted = _files(source)
    present = _files(target) if os.path.isdir(target) else {}
    changed: list[str] = []
    for rel, path in sorted(wanted.items()):
        dest = os.path.join(target, rel)
        if rel in present and _same(path, dest):
            continue
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        temp = dest + ".apt-clone-new"
        with open(path, "rb") as src, open(temp, "wb") as out:
            while chunk := src.read(1 << 20):
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, dest)
        changed.append(rel)
    for rel in sorted(set(present) - set(wanted)):
        os.unlink(present[rel])
        changed.append(rel)
    kept = {os.path.relpath(os.path.join(b, d), source) for b, ds, _ in os.walk(source) for d in ds}
    for base, dirs, _ in os.walk(target, topdown=False):
        for d in dirs:
            path = os.path.join(base, d)
            if not os.path.islink(path) and not os.listdir(path) and os.path.relpath(path, target) not in kept:
                os.rmdir(path)
    return changed

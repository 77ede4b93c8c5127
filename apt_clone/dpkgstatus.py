"""dpkg's status file: which packages a root has, and the differences between two roots."""

from __future__ import annotations

import os
from dataclasses import dataclass

from .errors import OperationFailed

STATUS_PATH = "var/lib/dpkg/status"


@dataclass(frozen=True)
class PackageChange:
    name: str
    old: str | None
    new: str | None

    @property
    def action(self) -> str:
        if self.old is None:
            return "install"
        if self.new is None:
            return "remove"
        return "upgrade" if _newer(self.new, self.old) else "downgrade"

    def as_list(self) -> list[str | None]:
        return [self.name, self.old, self.new, self.action]


def _newer(a: str, b: str) -> bool:
    try:
        import apt_pkg

        apt_pkg.init_system()
        return bool(apt_pkg.version_compare(a, b) > 0)
    except ImportError:  # pragma: no cover - python3-apt is a dependency
        return a != b


def parse(text: str) -> dict[str, str]:
    """Installed packages (``name[:arch]`` when not native/all is not tracked: name only) and versions."""
    out: dict[str, str] = {}
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line[:1] in (" ", "\t") or ":" not in line:
                continue
            key, _, value = line.partition(":")
            fields[key] = value.strip()
        status = fields.get("Status", "").split()
        if "Package" in fields and len(status) == 3 and status[2] not in ("not-installed", "config-files"):
            name = fields["Package"]
            arch = fields.get("Architecture", "")
            key = name if arch in ("", "all") or name not in out else f"{name}:{arch}"
            out[key] = fields.get("Version", "?")
    return out


def read(root: str, *, required: bool = False) -> dict[str, str]:
    """The packages installed in ``root`` (none when it has no status file, unless ``required``:
    then a root without one is an error, never "every package removed")."""
    path = os.path.join(root, STATUS_PATH)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        if required:
            raise OperationFailed(f"{root} has no dpkg status file (/{STATUS_PATH}): not a Debian root") from None
        return {}
    except OSError as exc:
        raise OperationFailed(f"cannot read {path}: {exc.strerror}") from exc
    with os.fdopen(fd, encoding="utf-8", errors="replace") as f:
        return parse(f.read())


def diff(before: dict[str, str], after: dict[str, str]) -> list[PackageChange]:
    names = sorted(set(before) | set(after))
    return [PackageChange(n, before.get(n), after.get(n)) for n in names if before.get(n) != after.get(n)]

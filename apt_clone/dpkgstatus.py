"""dpkg's status file: which packages a root has, and the differences between two roots."""

from __future__ import annotations

import os

from .errors import OperationFailed
from .record import record

STATUS_PATH = "var/lib/dpkg/status"


@record(frozen=True)
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
        import apt_pkg  # python-apt only when versions are compared

        apt_pkg.init_system()
        return bool(apt_pkg.version_compare(a, b) > 0)
    except ImportError:  # pragma: no cover - python3-apt is a dependency
        return a != b


def parse(fd: int) -> dict[str, str]:
    """Installed packages of a dpkg status file open on ``fd`` (read with python-apt's
    ``apt_pkg.TagFile``) and their versions; ``name:arch`` for a second architecture's copy."""
    import apt_pkg  # python-apt only when a status file is read

    out: dict[str, str] = {}
    with apt_pkg.TagFile(fd) as tags:  # closed here: its file must not keep a checkpoint busy
        sections = list(tags)
    for section in sections:
        status = section.get("Status", "").split()
        if "Package" in section and len(status) == 3 and status[2] not in ("not-installed", "config-files"):
            name = section["Package"]
            arch = section.get("Architecture", "")
            key = name if arch in ("", "all") or name not in out else f"{name}:{arch}"
            out[key] = section.get("Version", "?")
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
    try:
        return parse(fd)
    finally:
        os.close(fd)


def diff(before: dict[str, str], after: dict[str, str]) -> list[PackageChange]:
    names = sorted(set(before) | set(after))
    return [PackageChange(n, before.get(n), after.get(n)) for n in names if before.get(n) != after.get(n)]

"""What an apt operation will do, worked out before ZFS is touched."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys

from ..errors import NoSpace, OperationFailed, Refused, UsageError
from ..record import field, record
from ..runner import Runner, Spawned
from . import reboot as reboots

OPERATIONS = ("dist-upgrade", "upgrade", "install", "remove")
MIN_MARGIN = 64 * 1024 * 1024
"""Free space kept on top of what apt says it needs: at least this, or 10 %."""


@record(frozen=True)
class Change:
    name: str
    action: str
    old: str | None
    new: str | None
    uri: str | None = None
    arch: str | None = None

    def deb_filename(self) -> str | None:
        """The file name apt gives the downloaded .deb in the archive cache."""
        if self.new is None or self.arch is None:
            return None
        version = self.new.replace(":", "%3a")
        return f"{self.name}_{version}_{self.arch}.deb"


@record(frozen=True)
class Plan:
    op: str
    packages: tuple[str, ...]
    changes: tuple[Change, ...]
    download_bytes: int
    space_bytes: int
    reboot_packages: tuple[str, ...] = field(default=())

    @property
    def empty(self) -> bool:
        return not self.changes

    def count(self, action: str) -> int:
        return sum(1 for c in self.changes if c.action == action)

    @property
    def required_bytes(self) -> int:
        return max(self.space_bytes, 0) + self.download_bytes

    @property
    def margin_bytes(self) -> int:
        return max(MIN_MARGIN, self.required_bytes // 10)

    def summary(self) -> str:
        parts = [
            f"{self.count(a)} {w}"
            for a, w in (("upgrade", "upgraded"), ("install", "newly installed"), ("remove", "to remove"))
        ]
        other = len(self.changes) - sum(self.count(a) for a in ("upgrade", "install", "remove"))
        if other:
            parts.append(f"{other} other")
        return ", ".join(parts)


def validate_request(op: str, packages: tuple[str, ...]) -> None:
    if op not in OPERATIONS:
        raise UsageError(f"unknown operation {op}")
    if op in ("install", "remove") and not packages:
        raise UsageError(f"{op} needs at least one package name")
    if op not in ("install", "remove") and packages:
        raise UsageError(f"{op} takes no package names")
    for name in packages:
        if not re.match(r"^[a-z0-9][a-z0-9+.-]*(:[a-z0-9-]+)?(=[A-Za-z0-9.+~:-]+)?$", name):
            raise UsageError(f"bad package name {name!r}")


def child_python() -> str:
    """This interpreter if it sees python3-apt (a venv made with --system-site-packages does), else Debian's."""
    return sys.executable if importlib.util.find_spec("apt_pkg") is not None else "/usr/bin/python3"


def _child_argv(args: list[str]) -> tuple[list[str], dict[str, str]]:
    """``python -m apt_clone.apt.child ARGS`` and its environment (this package on its path)."""
    package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return [child_python(), "-m", "apt_clone.apt.child", *args], {"PYTHONPATH": package_parent}


def _child(runner: Runner, args: list[str]) -> dict[str, object]:
    argv, env = _child_argv(args)
    result = runner.run(argv, env=env)
    if not result.ok:
        raise OperationFailed(f"apt planning failed: {result.error_line()}")
    try:
        data: dict[str, object] = json.loads(result.stdout)
    except ValueError as exc:
        raise OperationFailed(f"apt planning failed: {result.error_line()}") from exc
    return data


def make_plan(
    runner: Runner, root: str, op: str, packages: tuple[str, ...], reboot_patterns: tuple[str, ...] = ()
) -> Plan:
    """Plan with python-apt in a child process; refuse what apt could not do. ``reboot_patterns``:
    what only a reboot replaces (:mod:`apt_clone.apt.reboot`)."""
    data = _child(runner, ["plan", "--root", root, "--op", op, *packages])
    return _plan_of(data, op, packages, reboot_patterns)


class Planner:
    """The planning child kept alive (``child session``): it downloads and scans what it planned
    when asked (:meth:`fetch`), with the cache it planned with. Closed at the latest when the
    operation ends; a resumed operation has none (apt-get downloads, a child scans)."""

    def __init__(self, child: Spawned) -> None:
        self.child = child
        self.closed = False

    def fetch(self) -> list[str]:
        """Download the plan's archives (into the root: its chroot mounts set up by the caller);
        the .debs whose maintainer scripts ask for a reboot."""
        if not self.child.send("fetch"):
            raise OperationFailed("downloading the packages failed: the planning process is gone")
        line = self.child.read_line()
        try:
            data = json.loads(line)
        except ValueError:
            raise OperationFailed("downloading the packages failed: the planning process ended") from None
        if data.get("error"):
            raise OperationFailed(f"downloading the packages failed: {data['error']}")
        found = data.get("reboot") or []
        return [str(x) for x in found]

    def close(self) -> None:
        """End the child (once; the operation's end or the fetch, whichever comes first)."""
        if not self.closed:
            self.closed = True
            self.child.close()


_WARM: dict[str, Planner] = {}
"""Planning children started ahead (:func:`warm_up`), by root, until a plan asks for one."""


def _session(runner: Runner, root: str) -> Planner:
    argv, env = _child_argv(["session", "--root", root])
    return Planner(runner.spawn(argv, env=env))


def warm_up(runner: Runner, root: str) -> None:
    """Start the planning child for ``root`` now: python-apt loads while this process gets
    ready (its imports, the lock, the journal); :func:`start_plan` asks it for the plan.
    :func:`discard_warm` ends one no plan asked for."""
    key = os.path.realpath(root)
    if key not in _WARM:
        _WARM[key] = _session(runner, root)


def discard_warm() -> None:
    """End the planning children started ahead and never asked (a refusal came first)."""
    while _WARM:
        _WARM.popitem()[1].close()


def start_plan(
    runner: Runner, root: str, op: str, packages: tuple[str, ...], reboot_patterns: tuple[str, ...] = ()
) -> tuple[Plan, Planner]:
    """:func:`make_plan`, its child kept for the download (see :class:`Planner`): the one
    :func:`warm_up` started, or a new one. The child is ended when the plan is refused."""
    planner = _WARM.pop(os.path.realpath(root), None) or _session(runner, root)
    try:
        planner.child.send(json.dumps({"op": op, "packages": list(packages)}))  # gone: no plan line, below
        line = planner.child.read_line()
        try:
            data = json.loads(line)
        except ValueError:
            raise OperationFailed("apt planning failed: the planning process ended without a plan") from None
        return _plan_of(data, op, packages, reboot_patterns), planner
    except BaseException:
        planner.close()
        raise


def _plan_of(data: dict[str, object], op: str, packages: tuple[str, ...], reboot_patterns: tuple[str, ...]) -> Plan:
    """The plan a child printed; refusals raised."""
    if data.get("journal_dirty"):
        raise Refused("dpkg was interrupted: run 'dpkg --configure -a' on the system first")
    if data.get("error"):
        raise (UsageError if data.get("error_kind") == "usage" else Refused)(str(data["error"]))
    raw = data.get("changes") or []
    assert isinstance(raw, list)
    changes = tuple(Change(**c) for c in raw)
    reboot = tuple(name for name, _ in reboots.reasons(changes, reboot_patterns))
    download = data.get("download", 0)
    space = data.get("space", 0)
    assert isinstance(download, int) and isinstance(space, int)
    return Plan(op, packages, changes, download, space, reboot)


def debs_asking_for_reboot(runner: Runner, debs: list[str]) -> list[str]:
    """Which downloaded .debs' maintainer scripts write /run/reboot-required."""
    present = [d for d in debs if os.path.exists(d)]
    if not present:
        return []
    data = _child(runner, ["scan", *present])
    found = data.get("reboot") or []
    assert isinstance(found, list)
    return [str(x) for x in found]


def check_space(plan: Plan, available: int | None, pool: str) -> str:
    """Refuse when the pool cannot hold the change plus a margin; else the seed's success line."""
    need = plan.required_bytes + plan.margin_bytes
    if available is not None and available < need:
        raise NoSpace(
            f"not enough free space: the change needs {mb(plan.required_bytes)} plus a {mb(plan.margin_bytes)} margin, "
            f"pool '{pool}' has {mb(available)} available"
        )
    return f"Success. Upgrade requires {mb(plan.required_bytes)} of available free space."


def mb(n: int) -> str:
    return f"{n / 1048576:.2f}MB"


BOOT_MARGIN = 32 * 1024 * 1024
KERNEL_BYTES = 128 * 1024 * 1024
_BOOT_WRITERS = re.compile(r"^(linux-image-.*|initramfs-tools.*|dracut.*|grub-.*|zfs-initramfs)$")


def check_boot_space(plan: Plan, available: int | None, pool: str) -> str:
    """Refuse when the boot pool cannot take new kernels/initramfs plus a margin."""
    writers = sum(1 for c in plan.changes if c.action != "remove" and _BOOT_WRITERS.match(c.name))
    need = BOOT_MARGIN + KERNEL_BYTES * writers
    if available is not None and available < need:
        raise NoSpace(
            f"not enough free space on the boot pool: /boot needs {mb(need)}, "
            f"pool '{pool}' has {mb(available)} available"
        )
    return f"Boot pool '{pool}': {mb(available or 0)} available, /boot needs {mb(need)}."

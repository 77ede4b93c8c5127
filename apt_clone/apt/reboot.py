"""Which changes need a reboot, as Debian sees it: what only a reboot replaces.

A change needs a reboot when it upgrades, downgrades or removes a package that only a reboot
replaces (the running kernel and its modules, libc6, systemd, dbus, the initramfs and its tools,
the ZFS module, microcode: the ``[reboot] packages`` setting), when it installs a new kernel
(meant to boot), or when a maintainer script asks for one through ``/run/reboot-required``. A
fresh install of any other package needs none, and neither do openssl, libssl or GRUB's userland:
their users restart services, not the machine.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase

TYPE_CHECKING = False  # typing itself is not imported at run time: the hook's start-up (mypy knows the name)
KERNELS = "linux-image-*"
"""A new one of these is a kernel meant to boot: installing it needs a reboot to use it."""
TAKE_EFFECT = ("upgrade", "downgrade", "reinstall", "remove")


if TYPE_CHECKING:
    from typing import Protocol

    class ChangeLike(Protocol):
        @property
        def name(self) -> str: ...

        @property
        def action(self) -> str: ...


def reasons(changes: Iterable[ChangeLike], patterns: Sequence[str]) -> list[tuple[str, str]]:
    """(package, why) for every change that needs a reboot."""
    found = []
    for c in changes:
        name = c.name.split(":", 1)[0]
        if c.action == "install" and fnmatchcase(name, KERNELS):
            found.append((c.name, "a new kernel to boot"))
        elif c.action in TAKE_EFFECT and any(fnmatchcase(name, p) for p in patterns):
            found.append((c.name, f"{c.action}: only a reboot replaces it"))
    return found


def script_reason(package: str) -> tuple[str, str]:
    return (package, "its maintainer script asks for a reboot")


def describe(found: Sequence[tuple[str, str]]) -> str:
    """One line for ``show`` and the checkpoint's metadata."""
    return "; ".join(f"{name} ({why})" for name, why in found)

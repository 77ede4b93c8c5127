"""What apt tells its ``DPkg::Pre-Install-Pkgs`` hooks (protocol version 3), and what the
checkpoint hook decides from it (toward issue 20: the hook itself is not installed yet).

apt writes to the hook's standard input ``VERSION 3``, its whole configuration space as
``Key=Value`` lines (``CommandLine::AsString`` is the command that started it, %-quoted), an
empty line, then one line per action::

    NAME OLD-VERSION OLD-ARCH OLD-MULTIARCH COMPARE NEW-VERSION NEW-ARCH NEW-MULTIARCH WHAT

where a missing version is ``-``, COMPARE is ``<``, ``>`` or ``=`` (or ``<`` for a new
install), and WHAT is the .deb being unpacked, ``**CONFIGURE**`` or ``**REMOVE**``
(tests/unit/data holds real input recorded from apt 3.0 on Debian 13).
"""

from __future__ import annotations

import os
import re

from ..record import field, record

_QUOTED = re.compile(rb"%([0-9A-Fa-f]{2})")
"""A byte as apt's ``QuoteString`` writes it (``%3d`` for ``=``)."""


@record(frozen=True)
class HookChange:
    name: str
    arch: str | None
    old: str | None
    new: str | None
    action: str  # install | upgrade | downgrade | reinstall | remove


@record()
class HookInput:
    config: dict[str, str] = field(default_factory=dict)
    changes: list[HookChange] = field(default_factory=list)

    @property
    def command(self) -> str:
        """The command line that started apt, as apt recorded it (``apt install nginx``)."""
        raw = self.config.get("CommandLine::AsString", "")
        if "%" not in raw:
            return raw  # nothing quoted: the common case
        # urllib.parse.unquote would do: its import costs a hooked run 3 ms (an ``-o Key=Value``
        # is quoted, and scripts and Ansible pass options so on every run).
        data = _QUOTED.sub(lambda m: bytes((int(m[1], 16),)), raw.encode("utf-8", "surrogateescape"))
        return data.decode("utf-8", "replace")

    @property
    def other_root(self) -> str | None:
        """The root apt works on when it is not this system's (``-o RootDir=``, ``Dir=``)."""
        for key in ("RootDir", "Dir"):
            value = self.config.get(key)
            if value and os.path.realpath(value) != "/":  # "//" and "/." are this root too
                return value
        return None


class ProtocolError(ValueError):
    """Input that is not apt's version-3 hook protocol."""


def _version(text: str) -> str | None:
    return None if text == "-" else text


def parse(text: str) -> HookInput:
    lines = text.splitlines()
    if not lines or lines[0].strip() != "VERSION 3":
        raise ProtocolError('not apt\'s hook protocol version 3 (set DPkg::Tools::Options::<hook>::Version "3")')
    out = HookInput()
    rest = iter(lines[1:])
    for line in rest:
        if not line.strip():
            break
        key, sep, value = line.partition("=")
        if sep:
            out.config[key] = value  # a list repeats its key ("Foo::="): the last one is kept
    seen: set[tuple[str, str | None]] = set()
    for line in rest:
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 9:
            raise ProtocolError(f"unexpected hook line: {line!r}")
        name, old, old_arch, _, compare, new, new_arch, _, what = fields
        arch = _version(new_arch) or _version(old_arch)
        if what == "**CONFIGURE**" or (name, arch) in seen:
            continue  # the same change, its configure step
        seen.add((name, arch))
        if what == "**REMOVE**":
            action = "remove"
        elif old == "-":
            action = "install"
        else:
            action = {"<": "upgrade", ">": "downgrade", "=": "reinstall"}.get(compare, "upgrade")
        out.changes.append(HookChange(name, arch, _version(old), _version(new), action))
    return out


def summary(changes: list[HookChange]) -> str:
    """``2 upgraded, 1 installed, 1 removed`` (only what happens)."""
    words = (("upgrade", "upgraded"), ("install", "installed"), ("remove", "removed"),
             ("downgrade", "downgraded"), ("reinstall", "reinstalled"))  # fmt: skip
    parts = [f"{n} {w}" for a, w in words if (n := sum(1 for c in changes if c.action == a))]
    return ", ".join(parts) or "no package changes"

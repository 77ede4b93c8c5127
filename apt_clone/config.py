"""apt-clone's settings: ``/etc/apt-clone/apt-clone.conf`` (INI, a conffile of the package; its
page is apt-clone.conf(5)), read here and nowhere else.

Every setting has a default, so a missing file means the defaults. Root runs apt-clone, so the
file is read only when root owns it and no other user can write it or the directories above
it; an unknown section, key or value is refused with the line to fix, never guessed at.
``$APT_CLONE_CONFIG`` points at another file (for the tests).
"""

from __future__ import annotations

import configparser
import os
import re

from .errors import Untrusted, UsageError
from .paths import open_trusted_file, test_setting
from .record import record
from .text import escaped

DEFAULT_PACKAGES = (
    "linux-image-*",
    "linux-modules-*",
    "libc6",
    "systemd",
    "systemd-sysv",
    "libsystemd0",
    "libsystemd-shared",
    "udev",
    "dbus",
    "dbus-daemon",
    "dbus-broker",
    "initramfs-tools",
    "initramfs-tools-core",
    "dracut",
    "dracut-core",
    "zfs-initramfs",
    "zfs-dracut",
    "zfs-dkms",
    "zfs-modules-*",
    "intel-microcode",
    "amd64-microcode",
)
"""The default of ``[reboot] packages``: what only a reboot replaces."""

PATH = "/etc/apt-clone/apt-clone.conf"
CONFIG_ENV = "APT_CLONE_CONFIG"


@record(frozen=True)
class Setting:
    section: str
    key: str
    default: str
    choices: tuple[str, ...] | None
    """The values it takes; None: a list of package-name patterns (shell globs); SECONDS: a
    whole number of seconds."""
    doc: str


SECONDS = ("<seconds>",)
UNITS = ("<unit>",)
UNIT = re.compile(r"^[A-Za-z0-9:_.@\\][A-Za-z0-9:_.@\\-]*$")
"""A systemd unit name (never one that starts like an option)."""
WHOLE = re.compile(r"[0-9]{1,9}")
"""A whole number in ASCII digits (``str.isdigit`` takes other scripts' digits and ``²``)."""
COUNT = ("<number>",)
DIRECTORY = ("<directory>", "off")
DIRECTORY_RE = re.compile(r"^/[A-Za-z0-9._+/-]*$")
MAX_SECONDS = 7 * 24 * 3600
MAX_COUNT = 100000
MAX_BYTES = 1 << 20
"""The file's largest size (the shipped one is a few kilobytes)."""


PATTERN = re.compile(r"^[a-z0-9*?\[][a-z0-9+.*?\[\]:-]*$")

SETTINGS = (
    Setting("apt", "mode", "auto", ("auto", "clone"),
            "where apt runs without -s: auto (in place, in the clone when a package asks for a reboot) or clone"),
    Setting("apt", "update", "yes", ("yes", "no"), "update the APT sources before planning (--no-update: not once)"),
    Setting("apt", "then", "ask", ("ask", "nothing", "activate", "reboot"),
            "after an upgrade in the clone, without --then: ask (with -y: nothing), or do this"),
    Setting("apt", "conffiles", "keep", ("keep", "new", "ask"),
            "without a person at a terminal (-y, a service): a conffile changed here and in the package "
            "keeps yours, takes the package's, or makes dpkg ask (which fails and rolls back)"),
    Setting("trial", "health", "failed-units", ("failed-units", "none"),
            "before a trial boot becomes the default: no failed systemd unit and the checks pass, or no check"),
    Setting("trial", "tries", "1", COUNT,
            "boots a trial gets, counted by GRUB before each where it can write grubenv (not on ZFS)"),
    Setting("trial", "counter", "/boot/efi", DIRECTORY,
            "where grubenv is on ZFS: the mounted FAT or ext2/3/4 filesystem GRUB counts the tries in, or off"),
    Setting("trial", "deadline", "600", SECONDS,
            "seconds from early boot a trial has to reach its verdict; past it (a hang) it is bad and reboots"),
    Setting("trial", "units", "", UNITS, "systemd units that must be active before a trial boot becomes the default"),
    Setting("trial", "check-timeout", "120", SECONDS, "seconds each check of health.d may take (past it: failed)"),
    Setting("trial", "on-failure", "reboot", ("reboot", "stay"),
            "an unhealthy trial boot is marked bad, then: reboot into the previous default, or stay"),
    Setting("reboot", "packages", " ".join(DEFAULT_PACKAGES), None,
            "what only a reboot replaces: its upgrade or removal (or a new kernel) needs a reboot"),
    Setting("reboot", "scripts", "yes", ("yes", "no"),
            "a maintainer script that writes /run/reboot-required asks for a reboot"),
    Setting("prune", "keep", "10", COUNT, "keep the newest this many checkpoints apt-clone made"),
    Setting("prune", "daily", "7", COUNT, "and the newest of each of the last this many days"),
    Setting("prune", "weekly", "4", COUNT, "and the newest of each of the last this many weeks"),
    Setting("prune", "monthly", "6", COUNT, "and the newest of each of the last this many months"),
    Setting("prune", "max-age", "0", COUNT, "remove those older than this many days, whatever the counts (0: never)"),
    Setting("prune", "min-free", "20", COUNT,
            "then remove more, oldest first, while a pool involved has less than this percent free (0: never)"),
    Setting("hook", "enabled", "yes", ("yes", "no"),
            "every apt, apt-get or unattended-upgrades run makes a checkpoint before dpkg changes anything"),
    Setting("hook", "required", "no", ("no", "yes"),
            "when the hook cannot make its checkpoint: no (it says why, apt goes on) or yes (apt stops before dpkg)"),
    Setting("hook", "merge", "0", SECONDS,
            "an apt run starting this many seconds or less after the last hooked one ended joins its checkpoint"),
)  # fmt: skip
SECTIONS = tuple(dict.fromkeys(s.section for s in SETTINGS))


@record(frozen=True)
class Config:
    """The settings in effect (``apt-clone check`` and the man page list them)."""

    mode: str = "auto"
    update: bool = True
    then: str = "ask"
    conffiles: str = "keep"
    """What dpkg does with a changed conffile when no person answers (see :data:`apt.execute.CONFFILES`)."""
    health: str = "failed-units"
    tries: int = 1
    counter: str = "/boot/efi"
    """Where GRUB counts a trial's tries when its grubenv is on ZFS (``off``: nowhere)."""
    deadline: int = 600
    trial_units: tuple[str, ...] = ()
    check_timeout: int = 120
    on_failure: str = "reboot"
    reboot_packages: tuple[str, ...] = DEFAULT_PACKAGES
    reboot_scripts: bool = True
    hook: bool = True
    hook_required: bool = False
    hook_merge: int = 0
    """Seconds (0: every hooked apt run gets its own checkpoint)."""
    prune: tuple[int, int, int, int, int, int] = (10, 7, 4, 6, 0, 20)
    """keep, daily, weekly, monthly, max-age (days), min-free (percent): see :mod:`apt_clone.checkpoints.prune`."""
    path: str | None = None
    """The file they came from; None: none was there (the defaults)."""


def path() -> str:
    return test_setting(CONFIG_ENV) or PATH


def parse(text: str, source: str) -> Config:
    """The settings of a file's text; an unknown section, key or value is a UsageError."""
    # No DEFAULT section: "[DEFAULT]" is a section like any other, and refused as unknown.
    parser = configparser.ConfigParser(interpolation=None, empty_lines_in_values=False, default_section="\0")
    try:
        parser.read_string(text, source)
    except configparser.Error as exc:
        raise UsageError(f"{source}: {' '.join(str(exc).split())}") from exc
    known = {(s.section, s.key): s for s in SETTINGS}
    values: dict[tuple[str, str], str] = {}
    for section in parser.sections():
        if not any(s.section == section for s in SETTINGS):
            raise UsageError(f"{source}: unknown section [{escaped(section)}] (sections: {', '.join(SECTIONS)})")
        for key, value in parser.items(section):
            setting = known.get((section, key))
            if setting is None:
                names = ", ".join(s.key for s in SETTINGS if s.section == section)
                raise UsageError(f"{source}: unknown setting '{escaped(key)}' in [{section}] (settings: {names})")
            if setting.choices == SECONDS:
                if not WHOLE.fullmatch(value) or int(value) > MAX_SECONDS:
                    raise UsageError(f"{source}: {section}.{key} = {value!r}: whole seconds, 0 to {MAX_SECONDS}")
            elif setting.choices == DIRECTORY:
                if value != "off" and (not DIRECTORY_RE.match(value) or "/../" in value + "/"):
                    raise UsageError(f"{source}: {section}.{key} = {value!r}: an absolute directory, or off")
            elif setting.choices == UNITS:
                bad = [w for w in value.split() if not UNIT.match(w)]
                if bad:
                    raise UsageError(f"{source}: {section}.{key}: {bad[0]!r} is not a systemd unit name")
            elif setting.choices == COUNT:
                top = 100 if key == "min-free" else 10 if key == "tries" else MAX_COUNT
                if not WHOLE.fullmatch(value) or int(value) > top:
                    raise UsageError(f"{source}: {section}.{key} = {value!r}: a whole number, 0 to {top}")
            elif setting.choices is None:
                bad = [w for w in value.split() if not PATTERN.match(w)]
                if bad:
                    raise UsageError(f"{source}: {section}.{key}: {bad[0]!r} is not a package name or pattern")
            elif value not in setting.choices:
                raise UsageError(f"{source}: {section}.{key} = {value!r}: one of {', '.join(setting.choices)}")
            values[section, key] = value
    v = {(s.section, s.key): values.get((s.section, s.key), s.default) for s in SETTINGS}
    return Config(
        mode=v["apt", "mode"],
        update=v["apt", "update"] == "yes",
        then=v["apt", "then"],
        conffiles=v["apt", "conffiles"],
        health=v["trial", "health"],
        tries=max(1, int(v["trial", "tries"])),
        counter=v["trial", "counter"],
        deadline=int(v["trial", "deadline"]),
        trial_units=tuple(v["trial", "units"].split()),
        check_timeout=int(v["trial", "check-timeout"]),
        on_failure=v["trial", "on-failure"],
        reboot_packages=tuple(v["reboot", "packages"].split()),
        reboot_scripts=v["reboot", "scripts"] == "yes",
        hook=v["hook", "enabled"] == "yes",
        hook_required=v["hook", "required"] == "yes",
        hook_merge=int(v["hook", "merge"]),
        prune=(
            int(v["prune", "keep"]),
            int(v["prune", "daily"]),
            int(v["prune", "weekly"]),
            int(v["prune", "monthly"]),
            int(v["prune", "max-age"]),
            int(v["prune", "min-free"]),
        ),
        path=source,
    )


_loaded: dict[str, Config] = {}


def load() -> Config:
    """The settings in effect (read once per process)."""
    file = path()
    if file in _loaded:
        return _loaded[file]
    try:
        fd = open_trusted_file(file)
    except FileNotFoundError:
        config = Config()
    except Untrusted as exc:
        where = "it" if exc.path == file else exc.path
        raise UsageError(
            f"{file}: cannot read it: {where} {exc.why}; only root may write it and the directories above it "
            "(chown root, chmod go-w)"
        ) from exc
    except OSError as exc:
        raise UsageError(f"{file}: cannot read it: {exc.strerror}") from exc
    else:
        with os.fdopen(fd, "rb") as f:
            data = f.read(MAX_BYTES + 1)
        if len(data) > MAX_BYTES:
            raise UsageError(f"{file}: longer than {MAX_BYTES} bytes: not read")
        config = parse(data.decode("utf-8", errors="replace"), file)
    _loaded[file] = config
    return config

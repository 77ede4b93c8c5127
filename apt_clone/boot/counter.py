"""The trial counter where GRUB cannot write its own grubenv (on ZFS: the Root-on-ZFS guide's
bpool layout): a GRUB environment block on a filesystem GRUB writes (FAT or ext2/3/4: the ESP
at /boot/efi, ``[trial] counter``), which the menu finds by its filesystem UUID.

When a trial is armed, apt-clone writes the trial and its tries into ``<counter>/apt-clone/grubenv``
and the script :func:`script` into GRUB's directory (``apt-clone-trial.cfg``, which the menu
sources): before each boot GRUB spends a try there with ``save_env --file`` and boots the trial;
once they are spent it forgets the trial and boots the default.
"""

from __future__ import annotations

import os
import stat

from ..errors import Refused
from ..paths import secure_dir
from ..record import record
from ..runner import DEFAULT_RUNNER, Runner
from ..system import Mount, read_mounts
from .grub import quote

ENV = "apt-clone/grubenv"
"""The counter's environment block, relative to the filesystem's top."""
SCRIPT = "apt-clone-trial.cfg"
"""In GRUB's directory: the script that counts there (sourced by the menu when present)."""
GRUB_MODULES = {"vfat": "fat", "msdos": "fat", "ext2": "ext2", "ext3": "ext2", "ext4": "ext2"}
"""Filesystems GRUB writes an environment block on (Linux's name: GRUB's module)."""


@record(frozen=True)
class Counter:
    """A place GRUB can count in: a mounted filesystem it writes."""

    directory: str
    """Where it is mounted (``/boot/efi``)."""
    module: str
    """GRUB's module for it (fat, ext2)."""

    @property
    def env(self) -> str:
        return os.path.join(self.directory, ENV)


def find(directory: str, mounts: list[Mount] | None = None) -> Counter | str:
    """The counter at ``directory`` (a mountpoint), or why there is none there (one line)."""
    if directory == "off":
        return "[trial] counter is off"
    here = os.path.realpath(directory)
    mount = next((m for m in reversed(mounts if mounts is not None else read_mounts()) if m.mountpoint == here), None)
    if mount is None:
        return f"nothing is mounted at {directory} ([trial] counter)"
    module = GRUB_MODULES.get(mount.fstype)
    if module is None:
        return f"{directory} is {mount.fstype}, which GRUB does not write (FAT or ext2/3/4: [trial] counter)"
    return Counter(here, module)


def fs_uuid(counter: Counter, runner: Runner = DEFAULT_RUNNER) -> str:
    """The counter's filesystem UUID as GRUB sees it (``grub-probe --target=fs_uuid``)."""
    probed = runner.run(["grub-probe", "--target=fs_uuid", counter.directory])
    uuid = probed.stdout.strip()
    if not probed.ok or not uuid or any(not (c.isalnum() or c == "-") for c in uuid):
        why = probed.error_line() or uuid
        raise Refused(f"grub-probe cannot tell the filesystem UUID of {counter.directory}: {why}")
    return uuid


def prepare(counter: Counter, runner: Runner = DEFAULT_RUNNER) -> None:
    """Make the environment block (``grub-editenv create``) in a directory only root writes;
    refuse one another user could change or replace (a link, a file of another's)."""
    secure_dir(os.path.dirname(counter.env), 0o755)
    try:
        st = os.lstat(counter.env)
    except FileNotFoundError:
        result = runner.run(["grub-editenv", counter.env, "create"])
        if not result.ok:
            raise Refused(f"cannot make GRUB's trial counter {counter.env}: {result.error_line()}") from None
        st = os.lstat(counter.env)
    if not stat.S_ISREG(st.st_mode) or st.st_uid != 0 and st.st_uid != os.geteuid() or st.st_mode & 0o022:
        raise Refused(f"unsafe file {counter.env}: not a regular file only root writes; not used")


def script(counter: Counter, uuid: str) -> str:
    """GRUB's part (sourced by the menu before its entries): spend a try of the armed trial in
    the counter's block and boot it; none left: forget it (the default boots)."""
    envfile = '"(${apt_clone_env})/' + ENV + '"'
    return f"""\
# Written by apt-clone when it armed a trial. GRUB cannot write its grubenv (on ZFS): it counts the
# trial's tries in {ENV} on the filesystem with UUID {uuid} ([trial] counter).
insmod part_gpt
insmod part_msdos
insmod {counter.module}
if search --no-floppy --fs-uuid --set=apt_clone_env {quote(uuid)}; then
  if load_env --file {envfile} apt_clone_trial apt_clone_tries; then
    if [ -n "${{apt_clone_trial}}" ]; then
      if regexp --set=1:apt_clone_left '^1(1*)$' "${{apt_clone_tries}}"; then
        set apt_clone_tries="${{apt_clone_left}}"
        if save_env --file {envfile} apt_clone_tries; then
          set default="${{apt_clone_trial}}"
        fi
      else
        set apt_clone_trial=
        save_env --file {envfile} apt_clone_trial
      fi
    fi
  fi
fi
"""

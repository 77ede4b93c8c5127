"""What boots next: the pool's ``bootfs`` and GRUB's saved and next entries.

:class:`Bootloader` is the one place that changes what boots. Its targets: the pool's
``bootfs`` (always), and GRUB's grubenv when the managed root has ``/boot/grub``.
A one-time boot is GRUB's ``next_entry``; without GRUB, a container property records it.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping, Sequence

from ..lock import held
from ..record import record
from ..runner import DEFAULT_RUNNER, Runner
from ..system import ZFS_FSTYPES, read_mounts
from ..zfs import Dataset, ZfsBackend, props
from . import grub

TYPE_CHECKING = False  # typing itself is not imported at run time: -l's start-up (mypy knows the name)
if TYPE_CHECKING:
    from . import counter

ONCE = props.key("boot-once")
"""On the boot-environment container: the checkpoint to boot one time only (no GRUB)."""
WITH_LISTING = (ONCE,)
"""User properties a listing of the container reads for :meth:`Bootloader.seen_container`."""


@record(frozen=True)
class BootState:
    """Who boots next, as each boot target sees it."""

    bootfs: str | None
    grub_default: str | None = None
    grub_next: str | None = None
    once: str | None = None
    grub: bool = False

    @property
    def next_boot(self) -> str | None:
        """The permanent default (the A column): bootfs."""
        return self.bootfs

    @property
    def disagreement(self) -> str | None:
        if self.grub and self.grub_default and self.bootfs and self.grub_default != self.bootfs:
            return f"GRUB's default entry boots '{self.grub_default}' but the pool's bootfs is '{self.bootfs}'"
        return None


def _locked() -> bool:
    return held()


class Bootloader:
    """Reads and changes what boots next: bootfs, plus GRUB when the root has /boot/grub."""

    def __init__(
        self,
        zfs: ZfsBackend,
        grub_dir: str | None = None,
        runner: Runner = DEFAULT_RUNNER,
        *,
        opener: Callable[[], str] | None = None,
        boot_container: str | None = None,
        root: str = "/",
    ) -> None:
        """``grub_dir``: GRUB's directory (``<root>/boot/grub``), or None for bootfs only.
        ``opener``: GRUB reads another checkpoint's copy of its directory, which this mounts
        (under the lock, on first use) and returns; ``grub_dir`` is then None."""
        self.zfs = zfs
        self.root = root
        """The managed root: ``[trial] counter`` is a directory in it."""
        self.boot_container = boot_container
        """The boot pool's container (``bpool/BOOT``): the twin of what boots next auto-mounts at /boot."""
        self._grub_dir = grub_dir
        self._opener = opener
        self.runner = runner
        self._grubenv: grub.GrubEnv | None = None
        self._counter: counter.Counter | str | None = None
        self._once: dict[str, str | None] = {}
        """The one-time boot property per container as last read or written here (its only writer)."""

    def seen_container(self, container: Dataset) -> None:
        """Take the one-time boot property from a listing of the container read with :data:`ONCE`
        (see :data:`WITH_LISTING`): one zfs read less."""
        self._once[container.name] = container.user.get(ONCE)

    def once_of(self, container: str) -> str | None:
        """The one-time boot requested without GRUB (a boot-time service spends it), if any."""
        return None if self.has_grub else self._read_once(container)

    def _read_once(self, container: str) -> str | None:
        if container not in self._once:
            self._once[container] = self.zfs.get(container, (ONCE,)).user.get(ONCE)
        return self._once[container]

    def _write_once(self, container: str, dataset: str | None) -> None:
        self._once.pop(container, None)  # forget first: a failing write leaves it unknown, not stale
        if dataset:
            self.zfs.set_props(container, {ONCE: dataset})
        else:
            self.zfs.inherit(container, ONCE)
        self._once[container] = dataset

    @property
    def grub_dir(self) -> str | None:
        """The GRUB directory GRUB reads, as this system sees it (mounted first if need be)."""
        if self._grub_dir is None and self._opener is not None:
            self._grub_dir = self._opener()
        return self._grub_dir

    @property
    def grubenv(self) -> grub.GrubEnv:
        if self._grubenv is None:
            self._grubenv = grub.GrubEnv(os.path.join(self.grub_dir or "/nonexistent", "grubenv"), self.runner)
        return self._grubenv

    @property
    def has_grub(self) -> bool:
        if self._opener is not None:
            return True
        return self._grub_dir is not None and os.path.isdir(self._grub_dir)

    @property
    def readable(self) -> bool:
        """Whether GRUB's state can be read without mounting anything (a reader holds no lock)."""
        return self._grub_dir is not None or self._opener is None

    def _dataset(self, container: str, entry: str | None) -> str | None:
        name = grub.name_from_entry(entry)
        return f"{container}/{name}" if name else None

    def state(self, pool: str, container: str | None = None) -> BootState:
        bootfs = self.zfs.pool(pool).bootfs
        if not self.has_grub or container is None or not (self.readable or _locked()):
            return BootState(bootfs=bootfs)
        env = self.grubenv.read()
        counts = self._counts(env)
        counted = counts.get(grub.TRIAL_VAR) if counts.get(grub.TRIES_VAR) else None
        return BootState(
            bootfs=bootfs,
            grub_default=self._dataset(container, env.get("saved_entry")),
            grub_next=self._dataset(container, env.get("next_entry") or counted),
            grub=True,
        )

    def activate(self, dataset: str) -> list[str]:
        pool = dataset.split("/", 1)[0]
        container, name = dataset.rsplit("/", 1)
        self.zfs.set_bootfs(pool, dataset)
        messages = [f"Pool '{pool}' bootfs is now '{dataset}'."]
        if self.has_grub:
            entry = grub.saved_entry(name)
            self.grubenv.set(saved_entry=entry)
            self._end_count()
            messages.append(f"Default GRUB entry '{entry}' will boot '{dataset}' ZFS clone.")
        self.clear_once(container)
        if self.boot_container:
            self._twin_mounts(f"{self.boot_container}/{name}")
        return messages

    def _twins(self) -> list[Dataset]:
        assert self.boot_container is not None
        tree = self.zfs.list_tree(self.boot_container)
        depth = self.boot_container.count("/") + 1
        return [ds for ds in tree[1:] if not ds.is_snapshot and ds.name.count("/") == depth]

    def auto_twin(self) -> str | None:
        """The boot twin that mounts at /boot by itself (canmount=on), if any."""
        if not self.boot_container:
            return None
        return next((ds.name for ds in self._twins() if ds.canmount == "on"), None)

    def _twin_mounts(self, twin: str | None) -> None:
        """``twin`` alone mounts at /boot by itself (canmount=on, the others noauto): a boot of the
        default finds its own /boot even without apt-clone's boot unit."""
        for ds in self._twins():
            want = "on" if ds.name == twin else "noauto"
            if ds.canmount != want:
                self.zfs.set_props(ds.name, {"canmount": want})

    def save(self, pool: str, container: str, bootfs: str | None = None) -> dict[str, str | None]:
        """Everything :meth:`activate` changes, for :meth:`restore`.

        ``bootfs``: the pool's bootfs as the caller has just read it under the lock (None: read it)."""
        env = self.grubenv.read() if self.has_grub else {}
        counts = self._counts(env)
        return {
            "bootfs": bootfs or self.zfs.pool(pool).bootfs,
            "saved_entry": env.get("saved_entry"),
            "next_entry": env.get("next_entry"),
            grub.TRIAL_VAR: counts.get(grub.TRIAL_VAR),
            grub.TRIES_VAR: counts.get(grub.TRIES_VAR),
            "once": self._read_once(container),
            "twin": self.auto_twin(),
        }

    def restore(self, pool: str, container: str, saved: dict[str, str | None]) -> None:
        """Put back what :meth:`save` read, writing only what differs now (an undo of a step that
        failed before changing anything writes nothing, so it works on a full pool too)."""
        if self.zfs.pool(pool).bootfs != saved.get("bootfs"):
            self.zfs.set_bootfs(pool, saved.get("bootfs"))
        if self.has_grub:
            _put_back(self.grubenv, saved, ("saved_entry", "next_entry"))
            count = self.count_env()
            if count is not None and (count.exists() or saved.get(grub.TRIAL_VAR)):
                _put_back(count, saved, (grub.TRIAL_VAR, grub.TRIES_VAR))
        once = saved.get("once")
        if once:
            self._write_once(container, once)
        else:
            self.clear_once(container)
        if self.boot_container and "twin" in saved and self.auto_twin() != saved["twin"]:
            self._twin_mounts(saved["twin"])

    @property
    def writes_env(self) -> bool:
        """Whether GRUB itself can write its grubenv (not on ZFS: GRUB writes no ZFS)."""
        if not self.has_grub or self.grub_dir is None:
            return False
        where = os.path.realpath(self.grub_dir)
        under = [m for m in read_mounts() if where == m.mountpoint or where.startswith(m.mountpoint.rstrip("/") + "/")]
        best = max(under, key=lambda m: len(m.mountpoint), default=None)
        return best is not None and best.fstype not in ZFS_FSTYPES

    def boot_once(self, dataset: str, tries: int = 1) -> str:
        """Boot ``dataset`` at the next boot only (``tries`` boots, counted by GRUB before each,
        where GRUB can write its grubenv); the default stays."""
        container, name = dataset.rsplit("/", 1)
        if self.has_grub and tries > 1 and self.writes_env:
            self.grubenv.unset("next_entry")
            self.grubenv.set(**{grub.TRIAL_VAR: grub.saved_entry(name), grub.TRIES_VAR: "1" * tries})
            return f"Next boots: '{dataset}', {tries} tries counted by GRUB; the default stays until it is activated."
        place = self.counter if self.has_grub and not self.writes_env else None
        from . import counter  # the trial counter's module: only where GRUB cannot write its grubenv

        if isinstance(place, counter.Counter) and self.grub_dir is not None:
            counter.prepare(place, self.runner)
            text = counter.script(place, counter.fs_uuid(place, self.runner))
            grub.write_menu(self.grub_dir, text, self.runner, name=counter.SCRIPT)
            self.grubenv.unset("next_entry")
            env = grub.GrubEnv(place.env, self.runner)
            env.set(**{grub.TRIAL_VAR: grub.saved_entry(name), grub.TRIES_VAR: "1" * tries})
            said = f"{tries} tries" if tries > 1 else "one try"
            return (
                f"Next boots: '{dataset}', {said} counted by GRUB in {place.env}; "
                "the default stays until it is activated."
            )
        if self.has_grub:
            self.grubenv.set(next_entry=grub.saved_entry(name))
        else:
            self._write_once(container, dataset)
        said = f"Next boot only: '{dataset}'; the default stays until it is activated."
        if self.has_grub and not self.writes_env:
            said += (
                f" GRUB cannot write its grubenv here (on ZFS) and has nowhere to count ({place}):"
                " apt-clone-boot.service spends the request early in boot, so a trial that dies before"
                " that boots again: pick the default in GRUB's menu."
            )
        return said

    @property
    def counter(self) -> counter.Counter | str:
        """Where GRUB counts a trial's tries when it cannot write its grubenv (``[trial]
        counter``), or why nowhere."""
        if self._counter is None:
            # only where GRUB cannot write its grubenv (never on -l's usual path)
            from .. import config
            from . import counter

            where = config.load().counter
            self._counter = counter.find(where if where == "off" else os.path.join(self.root, where.lstrip("/")))
        return self._counter

    @functools.cached_property
    def _count(self) -> grub.GrubEnv | None:
        if not self.has_grub:
            return None
        if self.writes_env:
            return self.grubenv
        place = self.counter
        return grub.GrubEnv(place.env, self.runner) if not isinstance(place, str) else None

    def count_env(self) -> grub.GrubEnv | None:
        """The environment block GRUB counts a trial's tries in: its grubenv where it writes
        that, else the counter's; None: nowhere. Decided once per command (mountinfo is read
        once, not at every read of what boots next)."""
        return self._count

    def _counts(self, env: dict[str, str]) -> dict[str, str]:
        """The count's variables, ``env`` being grubenv as just read (not read again)."""
        count = self.count_env()
        return env if count is self.grubenv else count.read() if count is not None else {}

    def _end_count(self) -> None:
        """No more one-time boot nor tries."""
        self.grubenv.unset("next_entry", grub.TRIAL_VAR, grub.TRIES_VAR)
        count = self.count_env()
        if count is not None and count is not self.grubenv:
            count.unset(grub.TRIAL_VAR, grub.TRIES_VAR)

    def end_trial(self, container: str) -> None:
        """The trial's verdict is in: no more tries (GRUB's count, a one-time request)."""
        if self.has_grub:
            self._end_count()
        self.clear_once(container)

    def take_once(self, container: str) -> str | None:
        """Consume a one-time boot request, as a boot does (GRUB clears next_entry when it boots it)."""
        if self.has_grub:
            env = self.grubenv.read()
            target = self._dataset(container, env.get("next_entry"))
            if "next_entry" in env:
                self.grubenv.unset("next_entry")
            if target:
                return target
        once = self._read_once(container)
        if once:
            self._write_once(container, None)
        return once

    def clear_once(self, container: str) -> None:
        if self._read_once(container):
            self._write_once(container, None)

    def edit_menu(self, changes: Mapping[str, grub.MenuEntry | None], cmdline: str = "ro") -> bool:
        """Change only the entries of ``changes`` in the menu (see :func:`grub.edit_menu`), when the
        root has GRUB; False when the menu is to be rendered whole (:meth:`refresh_menu`)."""
        if not self.has_grub or self.grub_dir is None:
            return True
        text = grub.read_menu(self.grub_dir)
        edited = grub.edit_menu(text, changes, cmdline) if text is not None else None
        if edited is None:
            return False
        if edited[0] != text:  # an activation changes no entry: nothing to write
            grub.write_menu(self.grub_dir, edited[0], self.runner, checked=edited[1])
        return True

    def refresh_menu(self, entries: Sequence[grub.MenuEntry], cmdline: str = "ro") -> str | None:
        """Rewrite boot/grub/apt-clone.cfg when the root has GRUB; returns its path."""
        if not self.has_grub or self.grub_dir is None:
            return None
        return grub.write_menu(self.grub_dir, grub.render_menu(entries, cmdline), self.runner)


def _put_back(env: grub.GrubEnv, saved: Mapping[str, str | None], keys: Sequence[str]) -> None:
    """Set ``keys`` of ``env`` to their ``saved`` values (None: unset), writing only what differs
    (a key ``saved`` lacks, from an older journal, stays as it is)."""
    now = env.read()
    for key in keys:
        value = saved.get(key)
        if key not in saved or now.get(key) == value:
            continue
        if value:
            env.set(**{key: value})
        else:
            env.unset(key)

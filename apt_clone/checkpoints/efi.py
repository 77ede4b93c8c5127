"""A boot loader upgraded inside a checkpoint, brought to the EFI system partition when that
checkpoint is activated.

A GRUB or shim package upgraded in a clone never changes what the running system boots: the
clone's chroot has no ESP (its /boot/efi is empty), so their postinsts, which run grub-install
only when ``/boot/efi/EFI/<id>`` exists, leave it alone. The clone is marked instead
(:data:`PENDING`: the packages). Activating it (``-a``, a trial's commit, ``--then activate``)
runs the clone's own grub-install as those postinsts would, with the live ESP at /boot/efi and
GRUB's directory (its home, the one the ESP's stub names) at /boot/grub, so that the stub keeps
naming the same home; ``--no-nvram``: the firmware's boot entries stay as they are. First the
ESP's ``EFI/`` and GRUB's directory are copied aside (:func:`save`); a failed grub-install, an
undone activation and ``recover`` put both back byte for byte (:func:`put_back`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager

from ..boot import esp
from ..chroot import bound, chroot_environment, restore_after_crash, unmount
from ..context import Context
from ..errors import OperationFailed
from ..paths import mount_base, secure_dir, state_dir
from ..system import read_mounts
from ..zfs import ZfsNotFound, props

PENDING = props.key("efi-update")
"""On a checkpoint's root: the boot loader packages upgraded in it that the ESP does not have yet."""
HELD_BACK = props.key("grub-install")
"""On a checkpoint's root: the disks its maintainer scripts asked grub-install to write while apt
ran in it (``-``: none named), held back (:mod:`apt_clone.apt.bootguard`); they keep the boot
code the running system had."""
BOOT_LOADER_PACKAGES = ("grub-efi-", "shim-")
"""Name prefixes of the packages whose postinst runs grub-install on a UEFI machine."""
GRUB_INSTALL = "usr/sbin/grub-install"
SAVED = "efi-saved"
"""Under the state directory: the ESP's ``EFI/`` and GRUB's directory before the last install."""
COMPLETE = "complete"
"""In :data:`SAVED`: written once the copy is whole (an interrupted copy is never put back)."""
WORK = "efi-update"
"""Under the mount base: where the checkpoint is mounted for its grub-install."""


def boot_loader_changes(changed: Iterable[str]) -> list[str]:
    """The boot loader packages among ``changed`` package names."""
    return sorted({name for name in changed if name.startswith(BOOT_LOADER_PACKAGES)})


def mark(ctx: Context, dataset: str, root: str, changed: Iterable[str]) -> str | None:
    """After apt changed ``changed`` in the clone ``dataset`` mounted at ``root``: mark it when a
    boot loader package changed on a machine whose ESP is mounted; what to tell the user."""
    names = boot_loader_changes(changed)
    if not names or esp.mounted_esp(ctx.system.root, read_mounts()) is None:
        return None
    if not os.path.isfile(os.path.join(root, GRUB_INSTALL)):
        return None
    ctx.zfs.set_props(dataset, {PENDING: " ".join(names)})
    name = dataset.rsplit("/", 1)[1]
    return f"the upgraded boot loader ({', '.join(names)}) reaches the EFI system partition when '{name}' is activated"


def _saved_dir() -> str:
    return os.path.join(state_dir(), SAVED)


def forget_saved() -> None:
    """The copy aside is no longer this operation's: it is never put back."""
    try:
        os.unlink(os.path.join(_saved_dir(), COMPLETE))
    except FileNotFoundError:
        pass


def save(esp_dir: str, home: str) -> None:
    """Copy the ESP's ``EFI/`` and GRUB's directory aside (only what differs from the last
    copy is written)."""
    saved = secure_dir(_saved_dir())
    forget_saved()
    esp.sync(os.path.join(esp_dir, "EFI"), os.path.join(saved, "EFI"))
    esp.sync(home, os.path.join(saved, "grub"))
    fd = os.open(os.path.join(saved, COMPLETE), os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    os.fsync(fd)
    os.close(fd)


def put_back(esp_dir: str, home: str) -> list[str]:
    """The ESP's ``EFI/`` and GRUB's directory made byte for byte what :func:`save` copied
    (nothing without a whole copy): what was written or removed."""
    saved = _saved_dir()
    if not os.path.isfile(os.path.join(saved, COMPLETE)) or os.path.islink(saved):
        return []
    changed = esp.sync(os.path.join(saved, "EFI"), os.path.join(esp_dir, "EFI"))
    changed += esp.sync(os.path.join(saved, "grub"), home)
    return changed


def platform_of(home: str) -> str | None:
    """The EFI platform GRUB was installed for (``x86_64-efi``): its module directory in the home."""
    try:
        found = sorted(d for d in os.listdir(home) if d.endswith("-efi") and os.path.isdir(os.path.join(home, d)))
    except OSError:
        return None
    return found[0] if found else None


def _work_dir() -> str:
    return os.path.join(secure_dir(mount_base()), WORK)


Target = Callable[[str], AbstractContextManager[str]]
"""Mounts the checkpoint (its root, children and boot twin) under a directory, for the duration."""


@contextmanager
def _inside(target: Target, esp_dir: str, home: str) -> Iterator[str]:
    """The checkpoint mounted under :data:`WORK` with the ESP and GRUB's home bound into it,
    ready for chroot."""
    directory = _work_dir()
    os.makedirs(directory, mode=0o700, exist_ok=True)
    with ExitStack() as stack:
        stack.enter_context(target(directory))
        stack.enter_context(bound(home, os.path.join(directory, "boot/grub")))
        stack.enter_context(bound(esp_dir, os.path.join(directory, esp.ESP_DIR)))
        yield stack.enter_context(chroot_environment(directory))
    os.rmdir(directory)


def install(ctx: Context, esp_dir: str, home: str, target: Target) -> None:
    """Run a checkpoint's grub-install for the ESP at ``esp_dir`` and GRUB's directory ``home``,
    chrooted into it as ``target`` mounts it (the running one: its root bound), the two bound in."""
    platform = platform_of(home)
    if platform is None:
        raise OperationFailed(f"GRUB's directory {home} has no EFI platform directory: grub-install cannot be rerun")
    stub = esp.read_stub(ctx.system.root)
    vendor = stub.path.split(os.sep)[-2] if stub is not None else "debian"
    args = [f"--target={platform}", "--no-nvram", f"--bootloader-id={vendor}"]
    with _inside(target, esp_dir, home) as directory:
        argv = ["chroot", directory, "grub-install", *args, "--efi-directory=/boot/efi", "--boot-directory=/boot"]
        result = ctx.runner.run(argv)
    if not result.ok:
        raise OperationFailed(f"grub-install failed: {result.error_line()}")


def apply(ctx: Context, dataset: str, pending: str, target: Target) -> list[str]:
    """Bring the boot loader upgraded in ``dataset`` to the ESP (see the module's docstring);
    on failure put the ESP and GRUB's directory back and raise. What to tell the user."""
    name = dataset.rsplit("/", 1)[1]
    esp_dir = esp.mounted_esp(ctx.system.root, read_mounts())
    home = ctx.boot.grub_dir
    if esp_dir is None or home is None or not os.path.isdir(home):
        return [f"the boot loader upgraded in '{name}' ({pending}) waits: no EFI system partition or GRUB directory"]
    save(esp_dir, home)
    try:
        install(ctx, esp_dir, home, target)
    except OperationFailed as exc:
        put_back(esp_dir, home)
        raise OperationFailed(f"{exc}; the EFI system partition is as it was, '{name}' is not activated") from None
    except BaseException:
        put_back(esp_dir, home)
        raise
    ctx.zfs.inherit(dataset, PENDING)
    return [f"installed the boot loader upgraded in '{name}' ({pending}) to the EFI system partition"]


def held_back_note(name: str, disks: str) -> str:
    """What to tell about checkpoint ``name``, in which grub-install was held back for ``disks``."""
    where = "the boot disks" if disks == "-" else ", ".join(disks.split())
    return (
        f"grub-install was held back in '{name}': {where} keep the boot code the running system has; "
        f"once '{name}' runs, dpkg-reconfigure grub-pc installs its GRUB"
    )


def undo(ctx: Context, dataset: str, pending: str, leftover: Callable[[str], None]) -> None:
    """Undo :func:`apply` (also after a crash): the work mounts gone, the ESP and GRUB's
    directory as :func:`save` copied them, the mark back on ``dataset``."""
    sweep(leftover)
    esp_dir = esp.mounted_esp(ctx.system.root, read_mounts())
    home = ctx.boot.grub_dir
    if esp_dir is not None and home is not None:
        put_back(esp_dir, home)
    try:
        ctx.zfs.set_props(dataset, {PENDING: pending})
    except ZfsNotFound:
        pass


def sweep(leftover: Callable[[str], None]) -> None:
    """What a killed :func:`install` left mounted under :data:`WORK`, unmounted (``leftover``
    unmounts what is left of the checkpoint there)."""
    directory = os.path.join(mount_base(), WORK)
    if not os.path.isdir(directory) or os.path.islink(directory):
        return
    restore_after_crash(directory, files=True)
    mounted = {m.mountpoint for m in read_mounts()}
    for rel in ("boot/efi", "boot/grub"):
        if os.path.join(directory, rel) in mounted:
            unmount(os.path.join(directory, rel))
    if any(m.mountpoint == directory or m.mountpoint.startswith(directory + "/") for m in read_mounts()):
        leftover(directory)

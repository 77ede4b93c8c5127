"""Looking inside a checkpoint, as ``zectl mount``, ``bectl mount/jail`` and ``beadm mount`` do:
``mount`` (read-only unless ``--rw``; its children and boot twin under it), ``umount``, and
``chroot`` (the mounts a chroot needs, torn down after). Each is a journalled command: a crash
leaves nothing that ``apt-clone recover`` does not remove."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Sequence

from .. import model
from ..context import Context
from ..engine.opstate import MountOp
from ..engine.steps import OpSpec, Step, register
from ..errors import Refused, UsageError
from ..paths import HOOK_GUARD_ENV, mount_base, run_dir, secure_dir
from . import services

MOUNTED_AT = model.MOUNTED_AT

SPECS = {
    spec.ops: register(spec)
    for spec in (
        OpSpec("mount", (
            ("mount", "mount the checkpoint, its children and boot twin under DIR (read-only unless --rw)"),
            ("record", "record where it is mounted on the checkpoint (commit)"),
        ), commit="record"),
        OpSpec("umount", (
            ("unmount", "unmount the checkpoint, its children and boot twin (commit)"),
            ("forget", "forget where it was mounted; remove the directory apt-clone made"),
        ), commit="unmount"),
        OpSpec("chroot", (
            ("mount", "mount the checkpoint under the run directory (read-only unless --rw)"),
            ("run", "run the command chrooted into it, /proc, /sys, /dev and /run bound (torn down after)"),
            ("unmount", "unmount it (commit)"),
        ), commit="unmount"),
    )
}  # fmt: skip


def mounted_at(mark: str | None) -> tuple[bool, str] | None:
    """(read-write, directory) of a checkpoint's mount mark, None without one."""
    if not mark or mark[:3] not in ("ro ", "rw "):
        return None
    return mark.startswith("rw "), mark[3:]


def _checked_directory(directory: str) -> bool:
    """A directory to mount on: absolute, no link on the way, empty. Returns whether it is to
    be made (its parent must exist)."""
    if not os.path.isabs(directory) or os.path.normpath(directory) != directory.rstrip("/") or directory == "/":
        raise UsageError(f"mount directory {directory!r}: give an absolute path without '..' (and not /)")
    parent = os.path.dirname(directory)
    if os.path.realpath(parent) != parent:
        raise Refused(f"mount directory {directory!r}: its parent is or goes through a symbolic link")
    try:
        st = os.lstat(directory)
    except FileNotFoundError:
        if not os.path.isdir(parent):
            raise Refused(f"mount directory {directory!r}: {parent} does not exist") from None
        return True
    if not stat.S_ISDIR(st.st_mode):
        raise Refused(f"mount directory {directory!r} is not a directory (or is a symbolic link)")
    if os.listdir(directory):
        raise Refused(f"mount directory {directory!r} is not empty")
    return False


def _target(ctx: Context, name: str, *, verb: str) -> tuple[str, str]:
    """(checkpoint name, dataset) of ``name``, which must not be the running system."""
    cp, _ = services.lookup(ctx, name)
    if cp.current:
        raise Refused(f"cannot {verb} '{cp.name}': it is the running system, mounted at / already")
    services.refuse_locked(ctx, cp, verb)
    return cp.name, cp.dataset


def plan_mount(ctx: Context, name: str, directory: str | None, rw: bool) -> MountOp:
    """Check what ``mount`` would do; changes nothing."""
    cp_name, dataset = _target(ctx, name, verb="mount")
    mark = mounted_at(ctx.zfs.get(dataset, (MOUNTED_AT,)).user.get(MOUNTED_AT))
    if mark:
        raise Refused(f"'{cp_name}' is mounted at {mark[1]} already ('apt-clone umount {cp_name}' first)")
    if directory is None:
        base = os.path.join(run_dir(), "mounted")
        secure_dir(base)
        directory = os.path.join(base, cp_name)
    made = _checked_directory(directory)
    command = f"apt-clone mount {cp_name} {directory}" + (" --rw" if rw else "")
    return MountOp(
        **services.envelope(ctx, "mount", command), name=cp_name, target=dataset, directory=directory, rw=rw,
        made_dir=made,
    )  # fmt: skip


def plan_umount(ctx: Context, name: str) -> MountOp:
    cp, _ = services.lookup(ctx, name)
    mark = mounted_at(ctx.zfs.get(cp.dataset, (MOUNTED_AT,)).user.get(MOUNTED_AT))
    if mark is None:
        raise Refused(f"'{cp.name}' is not mounted by apt-clone mount")
    directory = mark[1]
    made = directory == os.path.join(run_dir(), "mounted", cp.name)
    return MountOp(
        **services.envelope(ctx, "umount", f"apt-clone umount {cp.name}"), name=cp.name, target=cp.dataset,
        directory=directory, rw=mark[0], made_dir=made,
    )  # fmt: skip


def plan_chroot(ctx: Context, name: str, argv: Sequence[str], rw: bool) -> MountOp:
    cp_name, dataset = _target(ctx, name, verb="chroot into")
    command = argv or [os.environ.get("SHELL") or "/bin/sh"]
    directory = os.path.join(mount_base(), f"chroot-{cp_name}")
    secure_dir(mount_base())
    return MountOp(
        **services.envelope(ctx, "chroot", f"apt-clone chroot {cp_name}"), name=cp_name, target=dataset,
        directory=directory, rw=rw, made_dir=_checked_directory(directory), argv=list(command),
    )  # fmt: skip


def steps(ctx: Context, st: MountOp, save: Callable[[], None], tree: object = None) -> list[Step]:
    created = services.parts_of(ctx, services.lookup(ctx, st.name)[0])

    def mount() -> None:
        if not os.path.isdir(st.directory):
            os.mkdir(st.directory, 0o755)
        services.mount_family(ctx, created, st.directory, readonly=not st.rw)

    def unmount() -> None:
        services.unmount_family(ctx, created, st.directory)
        if st.made_dir and os.path.isdir(st.directory) and not os.listdir(st.directory):
            os.rmdir(st.directory)

    def record() -> None:
        ctx.zfs.set_props(st.target, {MOUNTED_AT: f"{'rw' if st.rw else 'ro'} {st.directory}"})

    def forget() -> None:
        ctx.zfs.inherit(st.target, MOUNTED_AT)
        if st.made_dir and os.path.isdir(st.directory) and not os.listdir(st.directory):
            os.rmdir(st.directory)

    def run() -> None:
        from ..chroot import chroot_environment  # the chroot step only: off the hook's start-up

        with chroot_environment(st.directory, block_services=st.rw, copy_resolv_conf=st.rw) as root:
            env = {HOOK_GUARD_ENV: "1", "PS1": f"(apt-clone chroot {st.name}) \\w\\$ "}
            st.status = ctx.runner.interactive(["chroot", root, *st.argv], env=env)
        save()

    if st.op == "mount":
        return [Step("mount", mount, unmount), Step("record", record)]
    if st.op == "umount":
        return [Step("unmount", lambda: services.unmount_family(ctx, created, st.directory)), Step("forget", forget)]
    return [Step("mount", mount, unmount), Step("run", run), Step("unmount", unmount)]

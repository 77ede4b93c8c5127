"""``apt-clone share-grub``: move GRUB's directory out of the checkpoints, into a dataset they all
share (``<boot pool>/grub`` at /boot/grub), so that any checkpoint can be destroyed or renamed and
the menu, grubenv, update-grub and grub-install of whichever checkpoint runs reach GRUB.

Steps (journalled on the engine; commit: install): create the dataset; copy the GRUB home's
directory into it; mount it at /boot/grub (over the running checkpoint's own copy); grub-install
to the boot disks (or the EFI system partition), so that GRUB's prefix is the shared dataset;
update-grub and apt-clone's menu there, and the recorded GRUB home forgotten.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from ..boot import Bootloader, layout
from ..context import Context
from ..engine.opstate import ShareGrubOp
from ..engine.steps import OpSpec, Step, register
from ..errors import OperationFailed, Refused
from ..paths import mount_base, secure_dir
from ..zfs.cli import OPENZFS, CliZfs
from . import services
from .tree import read_tree

SPEC = register(
    OpSpec(
        "share-grub",
        (
            ("dataset", "create <boot pool>/grub (canmount=noauto, mountpoint=/boot/grub)"),
            ("copy", "copy the GRUB directory GRUB reads now into it"),
            ("mount", "mount it at /boot/grub, over the running checkpoint's own copy"),
            ("install", "grub-install to the boot disks (or the EFI partition): GRUB reads it from now on (commit)"),
            ("menu", "update-grub and apt-clone's menu in it; forget the recorded GRUB home"),
        ),
        commit="install",
    )
)  # fmt: skip


def plan(ctx: Context) -> ShareGrubOp:
    """Check that GRUB's directory lives inside a checkpoint and can be moved; changes nothing."""
    if not ctx.system.is_host_root:
        raise Refused("share-grub works on the running system only (--root /): grub-install writes its boot disks")
    tree = read_tree(ctx)
    home = services.grub_home(ctx, tree)
    if home.where != "checkpoint" or home.place is None or home.place.dataset is None:
        raise Refused(f"GRUB's directory is not inside a checkpoint ({home.where}): nothing to move")
    pool = home.place.dataset.split("/", 1)[0]
    target = f"{pool}/grub"
    if ctx.zfs.exists(target):
        raise Refused(f"{target} exists already: apt-clone will not take over a dataset it did not make")
    import shutil  # share-grub only: its compression modules stay off the APT hook's start-up

    for tool in ("grub-install", "grub-probe", "update-grub"):
        if shutil.which(tool) is None:
            raise Refused(f"{tool} is not installed: install grub-pc or grub-efi first")
    efi = os.path.isdir("/sys/firmware/efi")
    disks: list[str] = []
    if not efi:
        probe = ctx.runner.run(["grub-probe", "--target=disk", home.directory])
        disks = sorted({d for d in probe.stdout.split() if d.startswith("/dev/")}) if probe.ok else []
        if not disks:
            raise Refused(f"grub-probe finds no boot disk for {home.directory}: {probe.error_line() or 'none'}")
    return ShareGrubOp(
        op="share-grub",
        command="apt-clone share-grub",
        root=ctx.system.root,
        container=ctx.system.container,
        dataset=ctx.system.dataset,
        target=target,
        mountpoint="/boot/grub",
        disks=disks,
        efi=efi,
        home=home.checkpoint,
    )


def steps(ctx: Context, st: ShareGrubOp, save: Callable[[], None], tree: object = None) -> list[Step]:
    def dataset() -> None:
        if not ctx.zfs.exists(st.target):
            props = {"canmount": "noauto", "mountpoint": st.mountpoint}
            if isinstance(ctx.zfs, CliZfs) and ctx.zfs.dialect == OPENZFS:
                props["overlay"] = "on"  # it mounts over the running checkpoint's /boot/grub
            ctx.zfs.create(st.target, props)

    def undataset() -> None:
        if ctx.zfs.exists(st.target):
            if ctx.zfs.get(st.target).mounted:
                ctx.zfs.unmount(st.target)
            ctx.zfs.destroy(st.target, recursive=True)

    def copy() -> None:
        import shutil  # share-grub's copy only: off the hook's start-up
        import tempfile  # the same

        source = ctx.boot.grub_dir
        if not source or not os.path.isdir(source):
            raise OperationFailed("the GRUB directory GRUB reads cannot be read")
        where = tempfile.mkdtemp(prefix="grub-share.", dir=secure_dir(mount_base()))
        ctx.zfs.mount_at(st.target, where)
        try:
            shutil.copytree(source, where, symlinks=True, dirs_exist_ok=True)
        finally:
            ctx.zfs.unmount_at(st.target, where)
            os.rmdir(where)

    def mount() -> None:
        ctx.zfs.set_props(st.target, {"canmount": "on"})
        if not ctx.zfs.get(st.target).mounted:
            ctx.zfs.mount(st.target)

    def unmount() -> None:
        if ctx.zfs.exists(st.target):
            if ctx.zfs.get(st.target).mounted:
                ctx.zfs.unmount(st.target)
            ctx.zfs.set_props(st.target, {"canmount": "noauto"})

    def install() -> None:
        for argv in [["grub-install"]] if st.efi else [["grub-install", disk] for disk in st.disks]:
            result = ctx.runner.run(argv)
            if not result.ok:
                raise OperationFailed(f"{' '.join(argv)} failed: {result.error_line()}")

    def menu() -> None:
        result = ctx.runner.run(["update-grub"])
        if not result.ok:
            raise OperationFailed(f"update-grub failed: {result.error_line()}")
        if layout.HOME in ctx.zfs.get(ctx.system.container, (layout.HOME,)).user:
            ctx.zfs.inherit(ctx.system.container, layout.HOME)
        ctx.boot = Bootloader(ctx.zfs, os.path.join(ctx.system.root, "boot/grub"), ctx.runner,
                              boot_container=ctx.system.boot_container, root=ctx.system.root)  # fmt: skip
        services.refresh_menu(ctx)

    return [
        Step("dataset", dataset, undataset),
        Step("copy", copy),
        Step("mount", mount, unmount),
        Step("install", install),
        Step("menu", menu),
    ]

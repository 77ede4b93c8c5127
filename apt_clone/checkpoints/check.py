"""``apt-clone check``: the managed system's layout and its risks, each with its fix.

What holds /, /boot and /boot/grub; whose copy of GRUB's directory GRUB reads; the pool's bootfs
against GRUB's default; data directories inside a checkpoint that a rollback would take back;
encryption; the boot pool's free space and feature flags GRUB cannot read; ZFS support in the
initramfs; the settings in force. It changes nothing (the lock is held only so that another
checkpoint's GRUB directory can be read).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from .. import config, dpkgstatus
from ..boot import esp, layout
from ..boot.counter import Counter
from ..context import Context
from ..record import asdict, field, record
from ..system import Mount, read_mounts
from ..zfs import Dataset, ZfsError
from . import efi, services
from .tree import boot_environments, read_tree

DATA_DIRS = (
    "home",
    "root",
    "srv",
    "var/log",
    "var/spool",
    "var/mail",
    "var/www",
    "var/lib/postgresql",
    "var/lib/mysql",
    "var/lib/docker",
    "var/lib/containers",
    "var/lib/libvirt",
    "var/lib/lxc",
)
"""Directories that hold data, not the system: a rollback should not take them back."""
GRUB_FEATURES = "/usr/share/zfs/compatibility.d/grub2"
"""OpenZFS's list of the pool features GRUB can read (zfsutils-linux)."""
BOOT_FREE_MIN = 256 * 1024 * 1024


@record(frozen=True)
class Finding:
    level: str  # ok | note | risk
    topic: str
    text: str
    fix: str | None = None


Add = Callable[[Finding], None]


@record()
class Report:
    places: dict[str, str | None]
    """/, /boot and /boot/grub: what holds each (a dataset, or a device and its type)."""
    grub: dict[str, str | None]
    findings: list[Finding] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def risks(self) -> int:
        return sum(1 for f in self.findings if f.level == "risk")

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "risks": self.risks}


def _describe(place: layout.Place) -> str | None:
    if place.dataset:
        return place.dataset
    return f"{place.source} ({place.fstype})" if place.source else None


def check(ctx: Context) -> Report:
    mounts = read_mounts()
    system = ctx.system
    root = system.root
    places = {p: layout.place_of(os.path.join(root, p.lstrip("/")), mounts) for p in ("/", "/boot", "/boot/grub")}
    tree = read_tree(ctx, (efi.PENDING, efi.HELD_BACK))
    home = services.grub_home(ctx, tree)
    report = Report(
        {p: _describe(place) for p, place in places.items()},
        {
            "where": home.where,
            "checkpoint": home.checkpoint,
            "holder": layout.holder_of(home, system),
            "known_from": home.known_from or None,
            "stub": home.stub.path if home.stub else None,
            "stub_prefix": home.stub.prefix if home.stub else None,
        },
    )
    add = report.findings.append
    names = {ds.name.rsplit("/", 1)[1] for ds in boot_environments(tree, system.container, system.dataset)}
    _grub(ctx, home, names, add)
    _esp(ctx, home, mounts, add)
    _waiting_boot_loaders(ctx, tree, add)
    _trials(ctx, add)
    _boot_target(ctx, add)
    _data(ctx, mounts, add)
    _encryption(ctx, tree, add)
    _boot_pool(ctx, places, add)
    installed = dpkgstatus.read(root)
    if "zfs-initramfs" in installed or "zfs-dracut" in installed:
        add(
            Finding(
                "ok", "initramfs", "zfs-initramfs is installed: the initramfs imports the pool and mounts a checkpoint"
            )
        )
    else:
        add(Finding("risk", "initramfs", "neither zfs-initramfs nor zfs-dracut is installed: the initramfs cannot "
                    "mount a ZFS root, and no checkpoint boots", "apt install zfs-initramfs"))  # fmt: skip
    settings = config.load()
    report.settings = asdict(settings)
    add(Finding("note", "config", f"settings from {settings.path or 'the defaults (no ' + config.path() + ')'}"))
    return report


def _grub(ctx: Context, home: layout.GrubHome, names: set[str], add: Add) -> None:
    pool = ctx.system.boot_dataset.split("/", 1)[0] if ctx.system.boot_dataset else ctx.system.pool
    share = f"apt-clone share-grub (moves it into {pool}/grub at /boot/grub, which every checkpoint shares)"
    if home.where == "none":
        add(Finding("note", "grub", "no /boot/grub: checkpoints boot through the pool's bootfs only (a boot "
                    "loader that reads it, such as ZFSBootMenu)"))  # fmt: skip
    elif home.shared:
        what = home.place.dataset if home.place and home.place.dataset else "a partition"
        add(Finding("ok", "grub", f"GRUB's directory is on {what}, shared by every checkpoint: the menu and grubenv "
                    "reach GRUB from any of them"))  # fmt: skip
    elif home.checkpoint not in names:
        add(Finding("risk", "grub", f"GRUB was installed into checkpoint '{home.checkpoint}', which no longer exists: "
                    "the next boot may stop at a GRUB rescue prompt", "run grub-install for each boot disk and "
                    f"update-grub from the running checkpoint, then zfs inherit {layout.HOME} {ctx.system.container}; "
                    "better: " + share))  # fmt: skip
    else:
        add(Finding("risk", "grub", f"GRUB's directory is inside checkpoint '{home.checkpoint}' "
                    f"({layout.holder_of(home, ctx.system)}): GRUB reads that copy only. apt-clone writes its menu and "
                    f"grubenv there and refuses to destroy or rename '{home.checkpoint}', but update-grub or "
                    "grub-install run in another checkpoint write a copy GRUB never reads", share))  # fmt: skip


def _esp(ctx: Context, home: layout.GrubHome, mounts: list[Mount], add: Add) -> None:
    """A UEFI machine's ESP and its GRUB stub: the prefix GRUB reads from, and whether it is the
    home apt-clone writes to."""
    esp_dir = os.path.join(ctx.system.root, esp.ESP_DIR)
    if not os.path.isdir(esp_dir):
        return
    mounted = next((m for m in reversed(mounts) if m.mountpoint == os.path.realpath(esp_dir)), None)
    on = f"{mounted.source} ({mounted.fstype})" if mounted else "not mounted"
    stub = home.stub
    if stub is None:
        add(Finding("note", "esp", f"/boot/efi: {on}; no GRUB stub (EFI/*/grub.cfg) names GRUB's directory"))
        return
    rel = os.path.relpath(stub.path, esp_dir)
    text = f"/boot/efi: {on}; its stub {rel} reads GRUB's directory from {stub.prefix}"
    if home.known_from == "stub":
        add(Finding("ok", "esp", f"{text}: checkpoint '{home.checkpoint}', the GRUB home apt-clone writes to"))
    elif home.where == "checkpoint" and stub.dataset:
        add(Finding("risk", "esp", f"{text}, which is no checkpoint's: GRUB may not read the menu apt-clone "
                    "writes", "apt-clone share-grub"))  # fmt: skip
    else:
        add(Finding("ok", "esp", text))


def _waiting_boot_loaders(ctx: Context, tree: list[Dataset], add: Add) -> None:
    """Checkpoints holding a boot loader upgraded in them that the ESP gets on activation."""
    for ds in boot_environments(tree, ctx.system.container, ctx.system.dataset):
        name = ds.name.rsplit("/", 1)[1]
        pending = ds.user.get(efi.PENDING)
        if pending:
            add(Finding("note", "esp", f"checkpoint '{name}' holds a boot loader upgrade ({pending}) that "
                        "reaches the EFI system partition when it is activated"))  # fmt: skip
        held = ds.user.get(efi.HELD_BACK)
        if held:
            add(Finding("note", "grub", efi.held_back_note(name, held)))


def _trials(ctx: Context, add: Add) -> None:
    """Whether GRUB can count a trial's tries (it writes grubenv only outside ZFS)."""
    if not ctx.boot.has_grub:
        return
    if ctx.boot.writes_env:
        add(Finding("ok", "trials", "GRUB can write its grubenv: it counts a trial's tries ([trial] tries) "
                    "before each boot: a trial that dies before userspace comes back to the default"))  # fmt: skip
    elif isinstance(place := ctx.boot.counter, Counter):
        add(Finding("ok", "trials", f"GRUB's grubenv is on ZFS, which GRUB cannot write: it counts a trial's tries "
                    f"([trial] tries) in {place.env} ({place.module}) before each boot: a trial that dies before "
                    "userspace comes back to the default"))  # fmt: skip
    else:
        add(Finding("risk", "trials", f"GRUB's grubenv is on ZFS, which GRUB cannot write, and {place}: a trial boot "
                    "(-a --once) is spent early in userspace by apt-clone-boot.service, and one that dies before "
                    "that (a kernel or initramfs panic) boots again until the default is picked in GRUB's menu",
                    "mount a FAT or ext2/3/4 filesystem GRUB can write (the ESP) at /boot/efi, or name its "
                    "mountpoint in [trial] counter"))  # fmt: skip


def _boot_target(ctx: Context, add: Add) -> None:
    state = ctx.boot.state(ctx.system.pool, ctx.system.container)
    if not state.bootfs:
        add(Finding("risk", "bootfs", f"pool '{ctx.system.pool}' has no bootfs: the initramfs does not know what to "
                    "mount", f"apt-clone -a {ctx.system.current_name}"))  # fmt: skip
    elif state.disagreement:
        add(Finding("risk", "bootfs", state.disagreement, "apt-clone -a NAME (NAME: the checkpoint to boot)"))
    else:
        add(Finding("ok", "bootfs", f"next boot: {state.bootfs}" + (" (GRUB's default agrees)" if state.grub else "")))


def _data(ctx: Context, mounts: list[Mount], add: Add) -> None:
    for rel in DATA_DIRS:
        path = os.path.join(ctx.system.root, rel)
        try:
            if not os.path.isdir(path) or os.path.islink(path) or not os.listdir(path):
                continue
        except OSError:
            continue
        place = layout.place_of(path, mounts)
        if place.dataset and layout.in_checkpoint(place.dataset, ctx.system):
            add(Finding("risk", "data", f"/{rel} is inside the checkpoint ({place.dataset}): a rollback takes it "
                        "back, and every checkpoint keeps its own copy", f"zfs create -o mountpoint=/{rel} "
                        f"{ctx.system.pool}/{rel.replace('/', '-')} (outside {ctx.system.container}), then move "
                        f"the files of /{rel} into it"))  # fmt: skip
        elif place.dataset:
            add(Finding("ok", "data", f"/{rel} is on {place.dataset}, outside the checkpoints: no rollback touches it"))


def _encryption(ctx: Context, tree: list[Dataset], add: Add) -> None:
    """The root's encryption root; a checkpoint that is its own, or whose key is not loaded."""
    try:
        enc_root = ctx.zfs.native(ctx.system.dataset, ("encryptionroot",)).get("encryptionroot")
        key = ctx.zfs.native(enc_root, ("keylocation",)).get("keylocation") if enc_root else None
    except ZfsError:
        return
    if enc_root:
        add(Finding("note", "encryption", f"the root is encrypted (encryption root {enc_root}, key {key or '?'}): "
                    "a checkpoint is a clone and stays in that encryption root, unlocked by the same key"))  # fmt: skip
    for ds in boot_environments(tree, ctx.system.container, ctx.system.dataset):
        name = ds.name.rsplit("/", 1)[1]
        try:
            found = ctx.zfs.native(ds.name, ("encryptionroot", "keystatus"))
        except ZfsError:
            continue
        own = found["encryptionroot"]
        if own == ds.name and own != enc_root:
            add(Finding("risk", "encryption", f"checkpoint '{name}' is its own encryption root (a raw receive or "
                        "a duplicate, not a clone): it needs its own key to boot or mount, and a promote or destroy "
                        "of the others never reaches it", f"zfs change-key -i {ds.name} (the parent's key), or "
                        f"apt-clone -r {name}"))  # fmt: skip
        if found["keystatus"] == "unavailable":
            add(Finding("risk", "encryption", f"the key of checkpoint '{name}' is not loaded (encryption root "
                        f"{own}): it cannot be mounted, and booting it asks for the key",
                        f"zfs load-key {own}"))  # fmt: skip


def _boot_pool(ctx: Context, places: dict[str, layout.Place], add: Add) -> None:
    pools = sorted({p.dataset.split("/", 1)[0] for p in places.values() if p.dataset and p.path != ctx.system.root})
    grub_can = _grub_features()
    for pool in pools:
        try:
            info = ctx.zfs.pool(pool)
        except ZfsError:
            continue
        try:
            features = ctx.zfs.pool_features(pool)
        except ZfsError:  # zfs-fuse's zpool get knows no -o: and its pools have no feature flags
            features = {}
        if info.size and (info.free < BOOT_FREE_MIN or info.free * 5 < info.size):
            add(Finding("risk", "space", f"pool '{pool}' (holding /boot) has {info.free // 1048576} MiB free of "
                        f"{info.size // 1048576} MiB: a kernel upgrade may not fit", "apt-clone -r OLD (an old "
                        "checkpoint) frees its kernels"))  # fmt: skip
        if grub_can is not None:
            active = sorted(f for f, state in features.items() if state == "active" and f not in grub_can)
            enabled = sorted(f for f, state in features.items() if state == "enabled" and f not in grub_can)
            if active:
                add(Finding("risk", "features", f"pool '{pool}' uses features GRUB cannot read: {', '.join(active)}",
                            f"keep /boot on a pool made with -o compatibility=grub2 ({GRUB_FEATURES})"))  # fmt: skip
            elif enabled:
                text = f"pool '{pool}' has features enabled that GRUB cannot read once used: {', '.join(enabled)}"
                add(Finding("note", "features", text, f"zpool set compatibility=grub2 {pool}"))


def _grub_features() -> set[str] | None:
    try:
        with open(GRUB_FEATURES, encoding="utf-8") as f:
            return {w for line in f for w in line.split("#", 1)[0].split()}
    except OSError:
        return None

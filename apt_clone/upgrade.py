"""The heart of apt-clone: an apt operation wrapped in a ZFS checkpoint, rolled back on failure.

Two modes:

* in place ("Rollback Checkpoint"): snapshot and clone the current root, run apt on the current
  root; the clone keeps the old state, ready to be activated to go back;
* in the clone ("Upgrade Checkpoint", ``-s``, and by itself when a reboot is needed): snapshot
  and clone, mount the clone, run apt inside it through chroot. The running root is untouched.
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Protocol

from . import checkpoints, dpkgstatus, model, trial
from .apt.execute import AptTarget, check_apt_locks
from .apt.plan import Plan, check_boot_space, check_space, debs_asking_for_reboot, make_plan, validate_request
from .boot import grub
from .context import Context
from .errors import OperationFailed, Refused
from .lock import exclusive
from .system import dataset_mounted_at
from .zfs import ZfsError

THEN_CHOICES = ("reboot", "activate", "nothing")
MOUNT_BASE = "/run/apt-clone"


class Interrupted(BaseException):
    """SIGTERM (or SIGINT) arrived during an operation."""


class Interaction(Protocol):
    """What the service needs from its user interface (prompts live in the CLI)."""

    def say(self, text: str) -> None: ...

    def confirm(self, text: str) -> bool: ...

    def confirm_rollback(self, text: str) -> bool: ...

    def after_upgrade(self, checkpoint: str) -> str:
        """One of THEN_CHOICES."""
        ...


@dataclass(frozen=True)
class AptRequest:
    op: str
    packages: tuple[str, ...] = ()
    update: bool = True
    in_clone: bool = False
    command: str = ""


@dataclass
class Outcome:
    status: str  # nothing | cancelled | done
    mode: str | None = None
    checkpoint: str | None = None
    dataset: str | None = None
    plan: Plan | None = None
    changes: list[list[str | None]] = field(default_factory=list)
    reboot_required: bool = False
    then: str | None = None
    messages: list[str] = field(default_factory=list)


class AptFailed(OperationFailed):
    """apt failed or was interrupted; ``rolled_back`` says whether the change was undone."""

    def __init__(self, message: str, rolled_back: bool) -> None:
        super().__init__(message)
        self.rolled_back = rolled_back


@contextmanager
def signals_as_interrupts() -> Iterator[None]:
    """SIGTERM and SIGINT raise :class:`Interrupted` while the operation runs."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Interrupted(signal.Signals(signum).name)

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def describe_plan(plan: Plan) -> list[str]:
    lines = []
    for action, header in (
        ("install", "to install"),
        ("upgrade", "to upgrade"),
        ("remove", "to remove"),
        ("downgrade", "to downgrade"),
        ("reinstall", "to reinstall"),
    ):
        items = [c for c in plan.changes if c.action == action]
        if not items:
            continue
        lines.append(f"Packages {header} ({len(items)}):")
        for c in items:
            version = f"{c.old} -> {c.new}" if c.old and c.new else (c.new or c.old or "")
            lines.append(f"  {c.name} {version}")
    lines.append(
        f"Download: {plan.download_bytes} bytes; disk space change: {plan.space_bytes} bytes ({plan.summary()})."
    )
    return lines


def _record(ctx: Context, dataset: str, changes: list[dpkgstatus.PackageChange], reboot: bool) -> None:
    rows = [c.as_list() for c in changes]
    summary = (
        f"{len([c for c in changes if c.action == 'upgrade'])} upgraded, "
        f"{len([c for c in changes if c.action == 'install'])} installed, "
        f"{len([c for c in changes if c.action == 'remove'])} removed" + (", reboot required" if reboot else "")
    )
    props = {model.SUMMARY: summary}
    text = json.dumps(rows, separators=(",", ":"))
    chunk = 8000
    pieces = [text[i : i + chunk] for i in range(0, len(text), chunk)][: model.MAX_CHANGE_CHUNKS]
    for i, piece in enumerate(pieces):
        props[model.CHANGE_KEYS[i]] = piece
    ctx.zfs.set_props(dataset, props)


def _mount_dir(name: str) -> str:
    os.makedirs(MOUNT_BASE, mode=0o700, exist_ok=True)
    return tempfile.mkdtemp(prefix=f"{name}.", dir=MOUNT_BASE)


def run_apt_operation(ctx: Context, req: AptRequest, ui: Interaction) -> Outcome:
    """Plan, checkpoint, run apt, and roll back on failure. Refusals change nothing."""
    validate_request(req.op, req.packages)
    root = ctx.system.root
    check_apt_locks(root)
    host = AptTarget(ctx.runner, root)
    with exclusive():
        if req.update:
            ui.say("Updating APT sources ...")
            with host.session():
                if host.update() != 0:
                    raise OperationFailed("apt-get update failed: see the messages above")
        plan = make_plan(ctx.runner, root, req.op, req.packages)
        if plan.empty:
            ui.say("Nothing to do: the system is up to date with that request; no checkpoint was made.")
            return Outcome("nothing", plan=plan)
        for line in describe_plan(plan):
            ui.say(line)
        container = ctx.zfs.get(ctx.system.container)
        ui.say("Verifying free space...")
        ui.say(check_space(plan, container.available, ctx.system.pool))
        if ctx.system.boot_container:
            boot = ctx.zfs.get(ctx.system.boot_container)
            ui.say(check_boot_space(plan, boot.available, boot.pool))
        if not ui.confirm("This operation will upgrade your system using ZFS capabilities. Proceed ? (y/n)"):
            return Outcome("cancelled", plan=plan)
        reboot_pkgs = list(plan.reboot_packages)
        if req.op != "remove":
            ui.say("Downloading upgrades and checking if reboot will be required.")
            ui.say("This may take a few minutes. Please wait...")
            with host.session():
                if host.apt_get(req.op, req.packages, download_only=True) != 0:
                    raise OperationFailed("downloading the packages failed: nothing was changed")
            debs = [host.path(f"var/cache/apt/archives/{c.deb_filename()}") for c in plan.changes if c.deb_filename()]
            asking = debs_asking_for_reboot(ctx.runner, debs)
            reboot_pkgs += [os.path.basename(d).split("_", 1)[0] for d in asking]
        reboot = bool(reboot_pkgs)
        in_clone = req.in_clone or reboot
        if reboot:
            who = ", ".join(sorted(set(reboot_pkgs)))
            ui.say(f"This upgrade will require REBOOT ({who}): it runs in a new checkpoint.")
            if not req.in_clone and not ui.confirm("This upgrade will require REBOOT. Proceed? (y/n)"):
                return Outcome("cancelled", plan=plan)
        return _execute(ctx, req, ui, plan, in_clone, reboot)


def _execute(ctx: Context, req: AptRequest, ui: Interaction, plan: Plan, in_clone: bool, reboot: bool) -> Outcome:
    kind = "upgrade" if in_clone else "rollback"
    label = model.KIND_TITLES[kind]
    ui.say("Upgrade is in progress. Please DO NOT interrupt...")
    ui.say(f"Creating {label}...")
    with signals_as_interrupts():
        created = checkpoints.create(ctx, kind=kind, command=req.command)
        ui.say(f"{label} has been created: {created.checkpoint}")
        ui.say(f"Use 'zfs list -r {ctx.system.container}' command to list all available")
        ui.say("upgrade/rollback checkpoints")
        outcome = Outcome("done", "clone" if in_clone else "in-place", created.checkpoint, created.dataset, plan)
        failure: str | None = None
        reboot_asked = False
        try:
            mount_dir = _mount_dir(created.checkpoint) if in_clone else None
            try:
                if mount_dir:
                    with checkpoints.mounted(ctx, created, mount_dir):
                        failure, changes, reboot_asked = _run_apt(ctx, AptTarget(ctx.runner, mount_dir), req)
                else:
                    failure, changes, reboot_asked = _run_apt(ctx, AptTarget(ctx.runner, ctx.system.root), req)
            finally:
                if mount_dir:
                    os.rmdir(mount_dir)
        except (Interrupted, KeyboardInterrupt) as exc:
            failure = f"interrupted ({exc or 'SIGINT'})"
            changes = []
        if failure is not None:
            return _failed(ctx, ui, created, in_clone, failure)
        _record(ctx, created.dataset, changes, reboot or reboot_asked)
        checkpoints.refresh_menu(ctx)
        outcome.changes = [c.as_list() for c in changes]
        outcome.reboot_required = reboot or reboot_asked
    if in_clone:
        _after_clone_upgrade(ctx, ui, outcome)
    else:
        ui.say(f"Done. To go back to the state before this change: 'apt-clone -a {created.checkpoint}' and reboot.")
    return outcome


def _run_apt(
    ctx: Context, target: AptTarget, req: AptRequest
) -> tuple[str | None, list[dpkgstatus.PackageChange], bool]:
    """Run the operation on ``target``; returns (failure or None, package changes, reboot asked)."""
    before = dpkgstatus.read(target.root)
    host_flag = target.is_host and os.path.exists("/run/reboot-required")
    with target.session():
        rc = target.apt_get(req.op, req.packages)
        reboot_asked = os.path.exists(target.path("run/reboot-required"))
    if target.is_host:
        reboot_asked = reboot_asked and not host_flag
    after = dpkgstatus.read(target.root)
    if rc != 0:
        return f"apt-get exited with status {rc}", [], reboot_asked
    changes = dpkgstatus.diff(before, after)
    if changes:
        # The kernels now in the target's /boot feed the GRUB menu entry of its dataset.
        _set_kernels(ctx, _mounted_dataset(target.root), " ".join(grub.kernels_in(target.path("boot"))))
    return None, changes, reboot_asked


def _mounted_dataset(path: str) -> str:
    ds = dataset_mounted_at(path)
    if ds is None:
        raise OperationFailed(f"{path}: no dataset mounted there")
    return ds


def _set_kernels(ctx: Context, dataset: str, kernels: str) -> None:
    if kernels:
        ctx.zfs.set_props(dataset, {model.KERNELS: kernels})
    elif model.KERNELS in ctx.zfs.get(dataset, (model.KERNELS,)).user:
        ctx.zfs.inherit(dataset, model.KERNELS)


def _failed(ctx: Context, ui: Interaction, created: checkpoints.Created, in_clone: bool, why: str) -> Outcome:
    ui.say(f"Upgrade failed: {why}.")
    try:
        yes = ui.confirm_rollback("Upgrade failed. Would you like to rollback changes now? (y/n)")
    except Refused:
        yes = False
    if yes:
        rollback(ctx, created, in_clone)
        ui.say("All upgrade changes now rolled back.")
        raise AptFailed(f"upgrade failed ({why}); all changes were rolled back", rolled_back=True)
    if in_clone:
        ui.say(f"The failed upgrade is kept in checkpoint '{created.checkpoint}'; the running system was not changed.")
        ui.say(f"Rollback changes command: 'apt-clone -r {created.checkpoint}'")
    else:
        ui.say(f"The running system holds the failed change; '{created.checkpoint}' holds the state before it.")
        ui.say(f"Rollback changes command: 'apt-clone rollback {created.checkpoint}'")
        ui.say(f"Or boot the old state: 'apt-clone -a {created.checkpoint}' and reboot.")
    raise AptFailed(f"upgrade failed ({why}); changes kept as they are", rolled_back=False)


def rollback(ctx: Context, created: checkpoints.Created, in_clone: bool) -> None:
    """Undo an operation: in place roll the root back to the snapshot; then drop the checkpoint."""
    if not in_clone:
        try:
            checkpoints.rollback_in_place(ctx, created)
        except ZfsError as exc:
            raise OperationFailed(f"rollback of {ctx.system.dataset} to {created.snapshot} failed: {exc}") from exc
    checkpoints.undo_create(ctx, created)


def _after_clone_upgrade(ctx: Context, ui: Interaction, outcome: Outcome) -> None:
    name = outcome.checkpoint or ""
    ui.say("SYSTEM NOTICE")
    ui.say("The first phase of upgrade has completed successfully:")
    ui.say(f"- created Upgrade Checkpoint '{name}'")
    ui.say("- the system is ready to reboot into the new checkpoint")
    choice = ui.after_upgrade(name)
    outcome.then = choice
    ui.say(f"Activate upgrade command: 'apt-clone -a {name}'")
    ui.say(f"Rollback changes command: 'apt-clone -r {name}'")
    if choice == "activate":
        result = checkpoints.activate(ctx, name)
        ui.say(f"Upgrade changes for clone '{result.dataset}' has been activated.")
        outcome.messages += result.messages
        for line in result.messages:
            ui.say(line)
    elif choice == "reboot":
        for line in trial.arm(ctx, name):
            ui.say(line)
        if ctx.system.is_host_root:
            ui.say("Operation in progress. Please wait...")
            ctx.runner.stream(["systemctl", "reboot"])
        else:
            ui.say(f"Not rebooting: {ctx.system.root} is not this machine's root; its next boot starts '{name}' once.")

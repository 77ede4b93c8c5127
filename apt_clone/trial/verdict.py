"""Trial boots: boot a checkpoint once, and make it the default only after a healthy boot.

``apt-clone -a NAME --once`` (and "reboot now" after an upgrade) arms the trial
(:func:`apt_clone.checkpoints.arm_trial`): GRUB's ``next_entry`` and a property of the
boot-environment container, which every checkpoint sees. This module holds what happens at boot:
the boot-time commands and the trial's verdict.
GRUB counts the trial's tries before each boot of it (in grubenv, or where that is on ZFS in
the counter of :mod:`apt_clone.boot.counter`), so a boot that dies comes back to the old default
once they are spent; with nowhere to count, ``apt-clone-boot.service`` spends ``next_entry`` early
in boot. Once the system is up, ``apt-clone-trial.service`` runs ``trial-commit``: if the trial
checkpoint is the one running and the system is healthy, it becomes the default.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time

from .. import config, model
from ..checkpoints import automount, services
from ..checkpoints.tree import TRIAL
from ..context import Context, open_context
from ..errors import require_root
from ..lock import exclusive
from ..paths import boot_id
from ..record import record
from ..system import ZFS_FSTYPES, mounts_under
from ..text import escaped
from ..zfs import ZfsError, props
from . import health

VERDICT = props.key("verdict")
"""On the container while a trial's verdict is under way: the boot id of the boot judging it."""
BAD = model.BAD


@record(frozen=True)
class TrialResult:
    trial: str | None
    committed: bool
    message: str


def boot_started(ctx: Context) -> str:
    """Early in boot: spend the one-time request, as GRUB would if it could write grubenv, and
    mount the booted checkpoint's own boot twin at /boot and its own children when another's are
    there (a trial boot, or one picked in GRUB's menu, finds the default's mounted by
    zfs-mount.service: :mod:`apt_clone.automount`)."""
    own = _own_boot(ctx)  # first: GRUB's home may be the twin that was at /boot, mounted aside next
    spent = ctx.boot.take_once(ctx.system.container)
    said = f"one-time boot request for '{spent}' spent" if spent else "no one-time boot request"
    return "; ".join([said, *filter(None, [own, *_own_children(ctx)])])


def _own_children(ctx: Context) -> list[str]:
    """The booted checkpoint's own children mounted, and no other checkpoint's (``zfs mount -a``
    mounts those of what boots by default, which a trial or a pick in GRUB's menu is not): what
    was done, or why something was left as it is."""
    tree, roots = services.mount_tree(ctx, ctx.zfs.pool(ctx.system.pool).bootfs)
    others, own = automount.misplaced(tree, roots, ctx.system.dataset, ctx.system.root)
    steps = [
        *((ctx.zfs.unmount, ds, f"unmounted {ds.name} (another checkpoint's)",
           f"{ds.name} (another checkpoint's) is mounted at {ds.mountpoint} and stays") for ds in others),
        *((ctx.zfs.mount, ds, f"mounted {ds.name} at {ds.mountpoint}", f"{ds.name} is not mounted") for ds in own),
    ]  # fmt: skip
    said: list[str] = []
    for act, ds, done, failed in steps:
        try:
            act(ds.name)
        except ZfsError as exc:
            return [*said, f"{failed}: {exc}"]
        said.append(done)
    return said


DEADLINE_UNIT = "apt-clone-trial-deadline.service"
"""Started early at every boot: waits out a trial's deadline (``apt-clone trial-deadline``)."""


def trial_of_this_boot(ctx: Context) -> str | None:
    """The armed trial, when it is the checkpoint running."""
    trial = ctx.zfs.get(ctx.system.container, (TRIAL,)).user.get(TRIAL)
    return trial if trial and trial == ctx.system.dataset else None


def wait_for_deadline(ctx: Context, uptime: str = "/proc/uptime") -> bool:
    """Without the lock: when this boot is the armed trial, sleep until ``[trial] deadline``
    seconds after boot (on the running system only: a ``--root`` has no boot to count from).
    Whether there is a trial to judge."""
    if trial_of_this_boot(ctx) is None:
        return False
    seconds = config.load().deadline
    if not seconds:
        return False
    if ctx.system.is_host_root:
        with open(uptime, encoding="ascii") as f:
            up = float(f.read().split()[0])
        if seconds > up:
            time.sleep(seconds - up)  # the deadline itself; trial-commit stops this unit when the verdict comes
    return True


def deadline_passed(ctx: Context) -> TrialResult:
    """The trial's deadline: when its verdict has not come (trial-commit never ran: a hang), it
    is marked bad and the machine reboots (forced: the hang may be a stop job) into the default."""
    trial = trial_of_this_boot(ctx)
    if trial is None:
        return TrialResult(None, False, "no trial waits for its verdict")
    seconds = config.load().deadline
    mark_bad(ctx, trial, f"no verdict within {seconds} s of boot (a hang)")
    ctx.boot.end_trial(ctx.system.container)
    _disarm(ctx)
    message = f"'{trial}' reached no verdict within {seconds} s: marked bad; rebooting into the default"
    if ctx.system.is_host_root:
        ctx.runner.stream(["systemctl", "reboot", "--force"])
    return TrialResult(trial, False, message)


def _own_boot(ctx: Context) -> str | None:
    container, there = ctx.system.boot_container, ctx.system.boot_dataset
    if not container or not there:
        return None
    mine = f"{container}/{ctx.system.current_name}"
    if there == mine or not ctx.zfs.exists(mine):
        return None
    boot = os.path.join(ctx.system.root, "boot")
    above = [m for m in mounts_under(boot) if m.mountpoint != os.path.realpath(boot)]  # /boot/grub, /boot/efi
    odd = [m.mountpoint for m in above if m.fstype not in ZFS_FSTYPES and not m.source.startswith("/dev/")]
    if odd:  # a bind mount cannot be made again from what mountinfo says
        return f"{there} is mounted at /boot, not {mine}: left as it is ({', '.join(odd)} is mounted on it)"
    for m in above:  # deepest first
        if m.fstype in ZFS_FSTYPES:
            ctx.zfs.unmount(m.source)
        else:
            ctx.runner.run(["umount", m.mountpoint])
    ctx.zfs.unmount(there)
    ctx.zfs.mount(mine)
    for m in reversed(above):
        if m.fstype in ZFS_FSTYPES:
            ctx.zfs.mount(m.source)
        else:
            ctx.runner.run(["mount", "-t", m.fstype, m.source, m.mountpoint])
    return f"mounted {mine} at /boot (in place of {there})"


def mark_bad(ctx: Context, dataset: str, why: str) -> None:
    """Mark a checkpoint bad: it failed its trial (``-l`` and ``show`` say so, ``-a`` asks again).
    ``why`` may hold what a check printed: it is written escaped, on one line."""
    ctx.zfs.set_props(dataset, {BAD: escaped(f"{model.utc_now()} {why}")[:1000]})


def _disarm(ctx: Context) -> None:
    """The verdict is in: the trial and its mark of a verdict under way go."""
    for prop in (TRIAL, VERDICT):
        ctx.zfs.inherit(ctx.system.container, prop)


def commit(ctx: Context) -> TrialResult:
    """After boot: make the trial checkpoint the default if it runs and is healthy. An unhealthy
    one is marked bad and (``[trial] on-failure = reboot``, on the running system only) the
    machine reboots into the default, which did not change.

    The trial stays armed until its verdict is written (its checks may take minutes): a
    trial-commit killed on the way leaves it armed, with :data:`VERDICT` naming this boot, so
    :func:`recover` judges it again, or the deadline (still waiting) or the next boot falls
    back; it is never dropped."""
    container = ctx.zfs.get(ctx.system.container, (TRIAL,))
    trial = container.user.get(TRIAL)
    if not trial:
        return TrialResult(None, False, "no trial boot armed")
    if trial != ctx.system.dataset:
        ctx.boot.end_trial(ctx.system.container)
        with contextlib.suppress(ZfsError):
            mark_bad(ctx, trial, "its trial boot did not come up")
        _disarm(ctx)
        return TrialResult(trial, False, f"the trial boot of '{trial}' did not come up: the default is unchanged")
    ctx.zfs.set_props(ctx.system.container, {VERDICT: boot_id() or "unknown"})
    cfg = config.load()
    verdict = health.evaluate(ctx.runner, ctx.system.root, cfg)
    for w in verdict.warnings:
        print(f"apt-clone: wanted health check {w.name} failed ({w.detail})", file=sys.stderr)
    if not verdict.ok:
        why = verdict.summary()
        mark_bad(ctx, trial, f"unhealthy trial boot: {why}")
        ctx.boot.end_trial(ctx.system.container)  # the verdict is final: no try is left for it
        _disarm(ctx)
        _stop_deadline(ctx)
        message = f"'{trial}' booted but is not healthy ({why}): marked bad; the default is unchanged"
        if cfg.on_failure == "reboot" and ctx.system.is_host_root:
            ctx.runner.stream(["systemctl", "reboot"])
            return TrialResult(trial, False, message + "; rebooting into it")
        return TrialResult(trial, False, message)
    from ..checkpoints import commands  # the journalled activation: the engine stays off every boot's start-up

    commands.activate(ctx, trial.rsplit("/", 1)[1])
    with contextlib.suppress(ZfsError):
        ctx.zfs.inherit(trial, BAD)
    _disarm(ctx)
    _stop_deadline(ctx)
    return TrialResult(trial, True, f"'{trial}' booted healthy ({verdict.summary()}) and is now the default")


def _stop_deadline(ctx: Context) -> None:
    """The verdict is written: the deadline is not needed (it stays while the checks run: a
    verdict that never comes still ends in a fall back)."""
    if ctx.system.is_host_root:
        ctx.runner.run(["systemctl", "stop", DEADLINE_UNIT])


def interrupted_verdict(ctx: Context) -> str | None:
    """The trial whose verdict this boot began and never wrote (trial-commit was killed), when
    it is the checkpoint running: what ``recover`` judges again."""
    container = ctx.zfs.get(ctx.system.container, (TRIAL, VERDICT))
    trial, began = container.user.get(TRIAL), container.user.get(VERDICT)
    if trial and trial == ctx.system.dataset and began and began == (boot_id() or "unknown"):
        return trial
    return None


def recover(ctx: Context) -> list[str]:
    """``recover``'s part: judge again a trial whose verdict was interrupted in this boot."""
    if interrupted_verdict(ctx) is None:
        return []
    return [f"the interrupted trial verdict, judged again: {commit(ctx).message}"]


def run_boot_command(root: str, command: str) -> tuple[str, object]:
    """Spend a one-time boot request (``boot-started``) or commit a healthy trial boot
    (``trial-commit``): the message, and the result for ``--json``."""
    require_root()
    cx = open_context(root)
    try:
        if command == "trial-deadline" and not wait_for_deadline(cx):
            return "no trial waits for its verdict", {"message": "no trial waits for its verdict"}
        with exclusive():
            if command == "boot-started":
                message = boot_started(cx)
                return message, {"message": message}
            result = deadline_passed(cx) if command == "trial-deadline" else commit(cx)
            return result.message, result
    finally:
        cx.close()

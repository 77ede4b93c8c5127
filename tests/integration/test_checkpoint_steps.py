"""Checkpoint commands (create, destroy, rename, activate, rollback) as journalled steps: SIGKILL
before every step, after its work but before its record, and after the last, then `apt-clone
recover` (or the next mutating command) gives exactly the state before or the completed command.
A failure before the commit step, undone in-process, is tested at every point on fake and real
ZFS in tests/unit/test_services.py."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from apt_clone.checkpoints.commands import SPECS
from tests.helpers import SandboxInfo, apt_clone, bootfs, leftovers, reboot, sandbox_cli, zfs_names, zfs_state

# share-grub runs grub-install on the host's boot disks: it is proven in the VM lane's bpool story.
# mount, umount and chroot leave a mount (or had one before): test_admin_cli.py kills them.
OPS = {op: spec.steps for op, spec in SPECS.items() if op not in ("share-grub", "mount", "umount", "chroot")}
COMMIT = {op: spec.commit for op, spec in SPECS.items()}


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    return result


def grub_default(sb: SandboxInfo) -> str:
    env = os.path.join(sb.directory, "grub", "grubenv")
    out = subprocess.run(["grub-editenv", env, "list"], capture_output=True, text=True, check=True).stdout
    return next((line.split("=", 1)[1] for line in out.splitlines() if line.startswith("saved_entry=")), "")


def menu(sb: SandboxInfo) -> str:
    path = os.path.join(sb.directory, "grub", "apt-clone.cfg")
    return open(path).read() if os.path.exists(path) else ""


@dataclass(frozen=True)
class Case:
    setup: Callable[[SandboxInfo], None]
    argv: tuple[str, ...]


def _nothing(sb: SandboxInfo) -> None:
    pass


def _one_checkpoint(sb: SandboxInfo) -> None:
    ok(apt_clone(sb, "-y", "create"))


def _one_checkpoint_active(sb: SandboxInfo) -> None:
    ok(apt_clone(sb, "-y", "create"))
    ok(apt_clone(sb, "-y", "-a", "rootfs-nmu-001"))


def _booted_clone_with_origin_active(sb: SandboxInfo) -> None:
    """rootfs-nmu-001 is running and holds a clone of 000's snapshot; 000 boots next."""
    ok(apt_clone(sb, "-y", "create"))
    ok(apt_clone(sb, "-y", "-a", "rootfs-nmu-001"))
    reboot(sb)
    ok(apt_clone(sb, "-y", "-a", "rootfs-nmu-000"))


def _in_place_checkpoint_then_change(sb: SandboxInfo) -> None:
    ok(apt_clone(sb, "-y", "create"))
    with open(os.path.join(sb.root, "etc/ac-after-checkpoint"), "w") as f:
        f.write("rolled back\n")


CASES = {
    "create": Case(_nothing, ("create", "--title", "by hand")),
    # 000 boots next and is the origin of the running 001: activate 001 first, promote it, destroy 000.
    "destroy": Case(_booted_clone_with_origin_active, ("destroy", "rootfs-nmu-000", "--force", "rootfs-nmu-001")),
    "rename": Case(_one_checkpoint_active, ("rename", "rootfs-nmu-001", "trial")),
    "activate": Case(_one_checkpoint, ("activate", "rootfs-nmu-001")),
    "trial": Case(_one_checkpoint, ("activate", "--once", "rootfs-nmu-001")),
    "rollback": Case(_in_place_checkpoint_then_change, ("rollback", "rootfs-nmu-001")),
}
KILLS = [(op, f"{step}:{when}") for op, steps in OPS.items() for step, _ in steps for when in ("before", "ran")] + [
    (op, f"{steps[-1][0]}:after") for op, steps in OPS.items()
]
"""Before every step, after its work but before its journal record ("ran"), and after the last."""


def _observed(sb: SandboxInfo) -> tuple[list[str], str, str]:
    return zfs_names(sb), bootfs(sb), grub_default(sb)


_completed: dict[str, tuple[list[str], str, str]] = {}


def _completed_state(sb: SandboxInfo, op: str) -> tuple[list[str], str, str]:
    """What the command leaves when nothing goes wrong (run once per command)."""
    if op not in _completed:
        case = CASES[op]
        case.setup(sb)
        ok(apt_clone(sb, "-y", *case.argv))
        _completed[op] = _observed(sb)
    return _completed[op]


@pytest.mark.parametrize(("op", "kill"), KILLS, ids=[f"{op}.{kill}" for op, kill in KILLS])
def test_sigkill_at_each_step_then_recover(pristine: SandboxInfo, op: str, kill: str):
    step, when = kill.split(":")
    case = CASES[op]
    case.setup(pristine)
    before, before_state, before_menu = _observed(pristine), zfs_state(pristine), menu(pristine)
    killed = apt_clone(pristine, "-y", *case.argv, env={"APT_CLONE_TEST_KILL_AT": f"{op}.{kill}"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    recovered = ok(apt_clone(pristine, "recover"))
    assert ok(apt_clone(pristine, "recover")).stdout.startswith("nothing to recover")
    assert leftovers(pristine) == []
    names = [s for s, _ in OPS[op]]
    at = names.index(step) - names.index(COMMIT[op])
    committed = when == "after" or at > 0 or (when == "ran" and at == 0)
    if committed:
        assert "completed" in recovered.stdout
        after = _observed(pristine)
        assert sandbox_cli("reset").returncode == 0
        assert after == _completed_state(pristine, op)
    else:
        assert zfs_state(pristine) == before_state
        assert _observed(pristine) == before
        if before_menu or not menu(pristine):  # killed before its first step: nothing journalled, nothing to do
            assert menu(pristine) == before_menu
        else:  # a fresh sandbox has no menu yet: recover writes one for the same checkpoints
            assert "rootfs-nmu-000" in menu(pristine) and "rootfs-nmu-001" not in menu(pristine)
        if when == "before" and names.index(step) == 0:
            assert recovered.stdout.startswith("nothing to recover")


def test_the_next_mutating_command_recovers_an_interrupted_one(pristine: SandboxInfo):
    killed = apt_clone(pristine, "-y", "create", env={"APT_CLONE_TEST_KILL_AT": "create.clone:before"})
    assert killed.returncode == -signal.SIGKILL
    assert pristine.ds("rootfs-nmu-001") not in zfs_names(pristine)
    again = ok(apt_clone(pristine, "-y", "create", "--title", "second try"))
    assert "recovered the interrupted 'apt-clone create' first" in again.stderr
    assert again.stdout.strip() == "Rollback Checkpoint has been created: rootfs-nmu-001"
    assert zfs_names(pristine) == [
        pristine.pool,
        pristine.container,
        pristine.first,
        f"{pristine.first}@initial",
        f"{pristine.first}@nmu-001",
        pristine.ds("rootfs-nmu-001"),
    ]


def test_a_failure_after_the_commit_step_is_completed_by_recover(pristine: SandboxInfo):
    _booted_clone_with_origin_active(pristine)
    argv = CASES["destroy"].argv
    failed = apt_clone(pristine, "-y", *argv, env={"APT_CLONE_TEST_FAIL_AT": "destroy.origin:before"})
    assert failed.returncode != 0 and "apt-clone recover" in failed.stderr
    assert pristine.ds("rootfs-nmu-000") not in zfs_names(pristine)
    ok(apt_clone(pristine, "recover"))
    assert leftovers(pristine) == []
    assert bootfs(pristine) == pristine.ds("rootfs-nmu-001")
    assert not [n for n in zfs_names(pristine) if "@nmu-001" in n]  # the origin snapshot went too


def test_a_journal_inside_the_rolled_back_root_is_not_lost(pristine: SandboxInfo):
    """On a real host /var/lib/apt-clone is in the root dataset: `rollback` rolls the journal back
    too. Its copy in /run (newer sequence number) keeps the truth across a SIGKILL there."""
    env = {"APT_CLONE_STATE_DIR": os.path.join(pristine.root, "var/lib/apt-clone")}
    ok(apt_clone(pristine, "-y", "create", env=env))
    with open(os.path.join(pristine.root, "etc/ac-after-checkpoint"), "w") as f:
        f.write("rolled back\n")
    kill = {**env, "APT_CLONE_TEST_KILL_AT": "rollback.rollback:ran"}
    assert apt_clone(pristine, "-y", "rollback", "rootfs-nmu-001", env=kill).returncode == -signal.SIGKILL
    assert not os.path.exists(os.path.join(pristine.root, "etc/ac-after-checkpoint"))
    recovered = ok(apt_clone(pristine, "recover", env=env))
    assert "completed 'apt-clone rollback rootfs-nmu-001'" in recovered.stdout
    assert zfs_names(pristine) == [pristine.pool, pristine.container, pristine.first, f"{pristine.first}@initial"]
    assert leftovers(pristine) == []

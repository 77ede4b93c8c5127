"""Crash safety: SIGKILL at every step boundary and in the middle of apt, then `apt-clone recover`;
pause and resume; resume after a failed download; the unfinished-operation guard."""

from __future__ import annotations

import glob
import json
import os
import re
import signal
import subprocess

import pytest

from tests.helpers import (
    SLOW_GO,
    SandboxInfo,
    SlowPostinst,
    apt_clone,
    apt_clone_popen,
    bootfs,
    dpkg_status_bytes,
    enable_suite,
    installed_version,
    leftovers,
    reboot,
    zfs_get,
    zfs_names,
    zfs_state,
)


def ok(result):
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    return result


def test_steps_are_listed(pristine: SandboxInfo):
    out = ok(apt_clone(pristine, "--steps")).stdout
    blocks: dict[str, list[str]] = {}
    for line in out.splitlines():
        if not line.startswith(" "):
            blocks[line.rstrip(":")] = []
        else:
            blocks[list(blocks)[-1]].append(line.split()[1])
    assert blocks["dist-upgrade, upgrade, install, remove"] == [
        "plan",
        "fetch",
        "snapshot",
        "clone",
        "mount",
        "apt",
        "metadata",
        "unmount",
        "boot",
    ]
    assert blocks["create"] == ["snapshot", "clone", "menu"]
    assert blocks["destroy"] == ["activate", "promote", "destroy", "origin", "menu"]
    assert set(blocks) == {
        "dist-upgrade, upgrade, install, remove",
        "create",
        "destroy",
        "rename",
        "activate",
        "trial",
        "rollback",
        "share-grub",
        "mount",
        "umount",
        "chroot",
    }
    assert blocks["chroot"] == ["mount", "run", "unmount"]
    data = json.loads(ok(apt_clone(pristine, "--json", "--steps")).stdout)
    assert [s["step"] for s in data["rename"]] == ["rename", "bootfs", "menu"]


CLONE_KILLS = ["plan", "fetch", "snapshot", "clone", "mount", "apt", "metadata", "unmount"]
IN_PLACE_KILLS = ["plan", "fetch", "snapshot", "clone", "apt", "metadata"]


@pytest.mark.parametrize(
    ("mode", "step"),
    [("clone", s) for s in CLONE_KILLS] + [("in-place", s) for s in IN_PLACE_KILLS] + [("clone", "apt:before")],
)
def test_sigkill_at_a_step_boundary_then_recover(pristine: SandboxInfo, mode, step):
    before = zfs_state(pristine)
    status = dpkg_status_bytes(pristine.root)
    where = step if ":" in step else f"{step}:after"
    args = ["-y", "-s", "dist-upgrade"] if mode == "clone" else ["-y", "dist-upgrade"]
    killed = apt_clone(pristine, *args, env={"APT_CLONE_TEST_KILL_AT": where})
    assert killed.returncode == -signal.SIGKILL
    # the next mutating command notices
    if where not in ("plan:after", "fetch:after"):
        blocked = apt_clone(pristine, "-y", "create")
        assert blocked.returncode == 3 and "apt-clone recover" in blocked.stderr
    result = ok(apt_clone(pristine, "recover"))
    assert leftovers(pristine) == []
    finished_apt = where in ("apt:after", "metadata:after", "unmount:after")
    if finished_apt:
        assert "completed checkpoint 'rootfs-nmu-001'" in result.stdout
        assert zfs_get(pristine.ds("rootfs-nmu-001"), "org.aptclone:summary").startswith("1 upgraded")
        assert zfs_get(pristine.ds("rootfs-nmu-001"), "mounted") == "no"
        if mode == "clone":
            assert dpkg_status_bytes(pristine.root) == status
            assert "ac-hello" in ok(apt_clone(pristine, "diff", "rootfs-nmu-000", "rootfs-nmu-001")).stdout
        else:
            assert installed_version(pristine.root, "ac-hello") == "1.1"
    else:
        assert zfs_state(pristine) == before
        assert dpkg_status_bytes(pristine.root) == status
    assert ok(apt_clone(pristine, "recover")).stdout.startswith("nothing to recover")
    ok(apt_clone(pristine, "-y", "create"))  # and life goes on


@pytest.mark.parametrize("mode", ["clone", "in-place"])
def test_sigkill_in_the_middle_of_apt_then_recover(pristine: SandboxInfo, mode):
    before = zfs_state(pristine)
    status = dpkg_status_bytes(pristine.root)
    args = ["-y", "-s", "install", "ac-slow"] if mode == "clone" else ["-y", "install", "ac-slow"]
    with SlowPostinst() as slow:
        proc = apt_clone_popen(pristine, *args)
        slow.wait_until_running(proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        # apt-get (its own session) still runs dpkg in the root: nothing may touch it meanwhile
        for argv in (("recover",), ("-y", "create")):
            refused = apt_clone(pristine, *argv)
            assert refused.returncode == 3, refused
            assert "still runs in its root" in refused.stderr and "pid" in refused.stderr, refused.stderr
        assert zfs_state(pristine) != before  # the interrupted checkpoint is still there, untouched
        with open(SLOW_GO, "w") as go:  # let the postinst, and with it apt-get, finish
            go.write("go\n")
        proc.communicate(timeout=120)  # apt-get held the pipes: its end is the event
        for _ in range(100000):  # bounded: dpkg's lock goes with the last process
            if still_working_in(pristine) is None:
                break
        result = ok(apt_clone(pristine, "recover"))
    assert "rolled back" in result.stdout
    assert leftovers(pristine) == []
    assert zfs_state(pristine) == before
    assert dpkg_status_bytes(pristine.root) == status
    assert subprocess.run(["chroot", pristine.root, "dpkg", "--audit"], capture_output=True, text=True).stdout == ""


def still_working_in(sb: SandboxInfo) -> str | None:
    from apt_clone.apt.operation import still_working
    from apt_clone.engine.journal import Journal

    st = Journal(sb.container).load()
    return still_working(st) if st is not None else None


def test_a_reused_pid_in_the_journal_never_blocks_recovery(pristine: SandboxInfo):
    """The journal's pid belongs to another process now (after a reboot, or reused): under the
    lock no other apt-clone runs, so the interrupted command is recovered all the same."""
    from apt_clone.engine.journal import Journal

    before = zfs_state(pristine)
    killed = apt_clone(pristine, "-y", "create", env={"APT_CLONE_TEST_KILL_AT": "create.clone:ran"})
    assert killed.returncode == -signal.SIGKILL
    journal = Journal(pristine.container)
    st = journal.load()
    assert st is not None and st.state == "running"
    st.pid = 1  # alive, and not apt-clone
    journal.save(st)
    result = ok(apt_clone(pristine, "recover"))
    assert "undid 'apt-clone create'" in result.stdout
    assert zfs_state(pristine) == before


def test_pause_at_mount_change_a_file_resume(pristine: SandboxInfo):
    out = ok(apt_clone(pristine, "--pause-at", "mount", "-y", "-s", "dist-upgrade")).stdout
    match = re.search(r"the clone is mounted at (\S+)\.", out)
    assert match, out
    clone_root = match.group(1)
    with open(os.path.join(clone_root, "etc/added-while-paused"), "w") as f:
        f.write("hello\n")
    # while paused, other changes wait
    blocked = apt_clone(pristine, "-y", "create")
    assert blocked.returncode == 3 and "paused after step mount" in blocked.stderr
    result = ok(apt_clone(pristine, "-y", "resume"))
    assert "Resuming 'apt-clone dist-upgrade' from step 'apt'" in result.stdout
    assert leftovers(pristine) == []
    assert not os.path.exists(os.path.join(pristine.root, "etc/added-while-paused"))
    ok(apt_clone(pristine, "-y", "-a", "rootfs-nmu-001"))
    reboot(pristine)
    with open(os.path.join(pristine.root, "etc/added-while-paused")) as f:
        assert f.read() == "hello\n"
    assert installed_version(pristine.root, "ac-hello") == "1.1"


def test_resume_from_an_earlier_step_starts_from_its_state(pristine: SandboxInfo):
    out = ok(apt_clone(pristine, "--pause-at", "apt", "-y", "-s", "dist-upgrade")).stdout
    clone_root = re.search(r"the clone is mounted at (\S+)\.", out).group(1)
    with open(os.path.join(clone_root, "etc/added-after-apt"), "w") as f:
        f.write("x\n")
    later = apt_clone(pristine, "-y", "resume", "boot")
    assert later.returncode == 3 and "never a later step" in later.stderr
    ok(apt_clone(pristine, "-y", "resume", "apt"))  # back to the state after 'mount', apt again
    assert leftovers(pristine) == []
    ok(apt_clone(pristine, "-y", "-a", "rootfs-nmu-001"))
    reboot(pristine)
    assert not os.path.exists(os.path.join(pristine.root, "etc/added-after-apt"))
    assert installed_version(pristine.root, "ac-hello") == "1.1"


def test_resume_after_a_download_failure_does_not_download_again(pristine: SandboxInfo):
    enable_suite(pristine, "reboot")
    repo = os.path.join(pristine.root, "srv/apt-clone-repo/reboot")
    missing = os.path.join(repo, "ac-kernel_1.1_all.deb")
    os.rename(missing, missing + ".away")
    try:
        before = zfs_state(pristine)
        failed = apt_clone(pristine, "-y", "dist-upgrade")
        assert failed.returncode == 1 and "downloading the packages failed" in failed.stderr
        assert zfs_state(pristine) == before
    finally:
        os.rename(missing + ".away", missing)
    (hello,) = glob.glob(os.path.join(pristine.root, "var/cache/apt/archives/ac-hello_1.1_all.deb"))
    first = os.stat(hello)
    result = ok(apt_clone(pristine, "-y", "resume"))
    assert "Resuming 'apt-clone dist-upgrade' from step 'fetch'" in result.stdout
    assert "Get:1" in result.stdout and "ac-hello" not in [
        line.split()[-3] for line in result.stdout.splitlines() if line.startswith("Get:") and len(line.split()) > 3
    ]
    again = os.stat(hello)
    assert (again.st_ino, again.st_mtime_ns) == (first.st_ino, first.st_mtime_ns)
    assert pristine.ds("rootfs-nmu-001") in zfs_names(pristine)  # the reboot-needing upgrade went to a clone
    assert bootfs(pristine) == pristine.first
    assert leftovers(pristine) == []


def test_a_journal_written_on_another_checkpoint_is_history(pristine: SandboxInfo):
    """A clone carries a copy of the journal as it was when it was snapshotted: not pending work."""
    from apt_clone.engine.journal import Journal
    from apt_clone.engine.opstate import AptOp

    journal = Journal(pristine.container)
    stale = AptOp(
        op="dist-upgrade",
        packages=[],
        command="apt-clone dist-upgrade",
        root=pristine.root,
        container=pristine.container,
        dataset=pristine.ds("rootfs-nmu-009"),
        pid=2**22 + 7,
        steps={"plan": "done", "fetch": "done", "snapshot": "started"},
    )
    journal.save(stale)
    ok(apt_clone(pristine, "-y", "create"))
    assert ok(apt_clone(pristine, "recover")).stdout.startswith("nothing to recover")
    assert pristine.ds("rootfs-nmu-001") in zfs_names(pristine)

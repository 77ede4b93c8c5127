"""Checkpoints on the real sandbox through the real command line (issue: -l, -a, -r, create, rename, title)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from apt_clone import readahead
from tests.helpers import SandboxInfo, apt_clone, bootfs, reboot, zfs_get, zfs_names, zfs_state
from tests.integration.conftest import Toy, all_names, zfs


def listing(sb: SandboxInfo) -> list[dict]:
    result = apt_clone(sb, "--json", "-l")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_list_marks_active_and_current(pristine: SandboxInfo):
    result = apt_clone(pristine, "-l")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["A", "C", "BOOTFS", "TITLE"]
    assert lines[1].startswith("o o rootfs-nmu-000 Debian GNU/Linux") and lines[1].endswith("[initial]")
    (only,) = listing(pristine)
    for key in ("name", "dataset", "title", "kind", "created", "active", "current", "origin", "used", "referenced"):
        assert key in only
    assert only["active"] and only["current"] and only["kind"] == "initial" and only["dataset"] == pristine.first
    # `apt-clone` alone and `apt-clone list` are the same listing
    assert apt_clone(pristine, "list").stdout == result.stdout


def test_create_continues_numbering_and_records_metadata(pristine: SandboxInfo):
    result = apt_clone(pristine, "create", "--title", "before experiments")
    assert result.returncode == 0, result.stderr
    assert "rootfs-nmu-001" in result.stdout
    assert apt_clone(pristine, "create").returncode == 0
    names = zfs_names(pristine)
    assert pristine.ds("rootfs-nmu-001") in names and pristine.ds("rootfs-nmu-002") in names
    assert f"{pristine.first}@nmu-001" in names and f"{pristine.first}@nmu-002" in names
    assert zfs_get(pristine.ds("rootfs-nmu-001"), "origin") == f"{pristine.first}@nmu-001"
    assert zfs_get(pristine.ds("rootfs-nmu-001"), "org.aptclone:title") == "before experiments"
    assert zfs_get(pristine.ds("rootfs-nmu-001"), "org.aptclone:kind") == "manual"
    # clones boot like their origin: same mountpoint, never auto-mounted
    assert zfs_get(pristine.ds("rootfs-nmu-001"), "mountpoint") == pristine.root
    assert zfs_get(pristine.ds("rootfs-nmu-001"), "canmount") == "noauto"
    cps = listing(pristine)
    assert [c["name"] for c in cps] == ["rootfs-nmu-000", "rootfs-nmu-001", "rootfs-nmu-002"]
    assert cps[1]["title"] == "before experiments" and cps[2]["title"] == "Rollback Checkpoint"
    text = apt_clone(pristine, "-l").stdout.splitlines()
    assert text[2].startswith("    rootfs-nmu-001 before experiments [nmu-001 : ")


def reads(result: subprocess.CompletedProcess[str]) -> tuple[int, int]:
    """(checkpoint tree reads, pool reads) in a command's trace (APT_CLONE_TRACE=1)."""
    trace = [line.split("] ", 1)[1] for line in result.stderr.splitlines() if line.startswith("[")]
    trees = [c for c in trace if c.startswith("zfs get ") and " -r " in c]
    pools = [c for c in trace if c.startswith(("zpool get ", "zpool list ")) and "bootfs" in c]
    return len(trees), len(pools)


TRACE = {"APT_CLONE_TRACE": "1"}


def test_a_create_leaves_the_next_ones_first_read_to_start_ahead(pristine: SandboxInfo, tmp_path):
    """The commands a create leaves in the run directory are those the next create's first read
    runs (issue #36: ``hook-pre`` starts them while its modules load; a command that differs is
    never taken, so a drift here would only cost time, silently)."""
    env = {"APT_CLONE_RUN_DIR": str(tmp_path / "run"), **TRACE}
    assert apt_clone(pristine, "create", env=env).returncode == 0
    left = (tmp_path / "run" / readahead.FILE).read_text().splitlines()
    assert len(left) == 2 and all(line.startswith(("zfs\0list\0", "zfs\0get\0")) for line in left)
    assert any(f"{pristine.container}/rootfs-nmu-002" in line.split("\0") for line in left)  # the next name
    after = apt_clone(pristine, "create", env=env)
    assert after.returncode == 0, after.stderr
    ran = [line.split("] ", 1)[1] for line in after.stderr.splitlines() if line.startswith("[")]
    first = [c for c in ran if c.startswith("zfs ")][:2]
    assert sorted(first) == sorted(line.replace("\0", " ") for line in left), (first, left)
    assert zfs_get(pristine.ds("rootfs-nmu-002"), "origin") == f"{pristine.first}@nmu-002"


def test_activate_sets_bootfs_and_says_so(pristine: SandboxInfo):
    apt_clone(pristine, "create")
    result = apt_clone(pristine, "-y", "-a", "rootfs-nmu-001", env=TRACE)
    assert result.returncode == 0, result.stderr
    # The plan reads that checkpoint alone (never the container's tree) and the pool once; the
    # steps (saving bootfs for the undo; no menu entry changes) use what it read.
    assert reads(result) == (0, 1), result.stderr
    assert f"'{pristine.ds('rootfs-nmu-001')}' has been activated" in result.stdout
    assert bootfs(pristine) == pristine.ds("rootfs-nmu-001")
    assert zfs_get(pristine.ds("rootfs-nmu-001"), "org.aptclone:activated") != "-"
    lines = apt_clone(pristine, "-l").stdout.splitlines()
    assert lines[1].startswith("  o rootfs-nmu-000") and lines[2].startswith("o   rootfs-nmu-001")


def test_destroy_refuses_current_and_active(pristine: SandboxInfo):
    before = zfs_state(pristine)
    result = apt_clone(pristine, "-y", "-r", "rootfs-nmu-000")
    assert result.returncode == 3
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "Can not destroy currently active system folder" in result.stderr
    apt_clone(pristine, "create")
    apt_clone(pristine, "-y", "-a", "rootfs-nmu-001")
    reboot(pristine)  # now 001 is current and active; 000 neither
    apt_clone(pristine, "-y", "-a", "rootfs-nmu-000")  # 000 active again, 001 current
    reboot(pristine)
    apt_clone(pristine, "-y", "-a", "rootfs-nmu-001")  # 001 active, 000 current
    result = apt_clone(pristine, "-y", "-r", "rootfs-nmu-001")
    assert result.returncode == 3 and "boots next" in result.stderr
    result = apt_clone(pristine, "-y", "destroy", "rootfs-nmu-001", "--force", "rootfs-nmu-000", env=TRACE)
    assert result.returncode == 0, result.stderr
    assert reads(result)[1] == 1, result.stderr  # one pool read: activating OTHER first saves what the plan read
    assert bootfs(pristine) == pristine.first
    assert zfs_state(pristine) == before


def test_confirmation_without_terminal_or_yes_is_refused(pristine: SandboxInfo):
    apt_clone(pristine, "create")
    before = zfs_state(pristine)
    result = apt_clone(pristine, "-r", "rootfs-nmu-001", input="")
    assert result.returncode == 3 and "re-run with -y" in result.stderr
    assert zfs_state(pristine) == before
    result = apt_clone(pristine, "-a", input="")
    assert result.returncode == 3 and "no terminal" in result.stderr


def test_rename_and_title(pristine: SandboxInfo):
    apt_clone(pristine, "create")
    apt_clone(pristine, "-y", "-a", "rootfs-nmu-001")
    result = apt_clone(pristine, "rename", "rootfs-nmu-001", "before-upgrade")
    assert result.returncode == 0, result.stderr
    assert bootfs(pristine) == pristine.ds("before-upgrade")  # the active one keeps booting
    assert pristine.ds("rootfs-nmu-001") not in zfs_names(pristine)
    assert apt_clone(pristine, "rename", "rootfs-nmu-000", "x").returncode == 3  # the running one
    hostile = 'it\'s "$(reboot)" `id`; ü'
    result = apt_clone(pristine, "title", "before-upgrade", hostile)
    assert result.returncode == 0, result.stderr
    assert zfs_get(pristine.ds("before-upgrade"), "org.aptclone:title") == hostile
    assert listing(pristine)[1]["title"] == hostile


def test_bad_input_is_one_line_and_changes_nothing(pristine: SandboxInfo):
    before = zfs_state(pristine)
    cases = [
        (["-y", "-r", "no-such"], 2, "no checkpoint named 'no-such'"),
        (["-y", "-a", "../../etc"], 2, "not a checkpoint in"),
        (["-y", "-a", "bad@name"], 2, "bad checkpoint name"),
        (["-y", "-a", f"{pristine.pool}/other/x"], 2, "not a checkpoint in"),
        (["rename", "rootfs-nmu-000", "a b"], 2, "whitespace"),
        (["title", "rootfs-nmu-000", "line\nbreak"], 2, "control character"),
        (["create", "--title", "x" * 300], 2, "longer than"),
        (["--bogus"], 2, "No such option"),
    ]
    for args, code, text in cases:
        result = apt_clone(pristine, *args)
        assert result.returncode == code, (args, result.stderr)
        assert text in result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, (args, result.stderr)
        assert "Traceback" not in result.stderr
    assert zfs_state(pristine) == before


def test_not_a_zfs_root_and_not_root(pristine: SandboxInfo, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "apt_clone", "--root", str(tmp_path), "-l"], capture_output=True, text=True
    )
    assert result.returncode == 2 and "not the mount point of a ZFS dataset" in result.stderr
    before = zfs_state(pristine)
    result = subprocess.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            sys.executable,
            "-m",
            "apt_clone",
            "--root",
            pristine.root,
            "create",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 3 and "needs root privileges" in result.stderr
    assert zfs_state(pristine) == before


def test_listing_does_not_import_questionary_or_rich(pristine: SandboxInfo):
    """Prompts load questionary when they ask; typer's decorations (rich) never load: apt-clone runs at every boot."""
    code = (
        f"import sys; from apt_clone.cli.app import main; rc = main(['--root', {pristine.root!r}, '-l']);"
        "print(sorted(m for m in ('questionary', 'rich', 'pygments') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stderr


def test_debug_shows_traceback(pristine: SandboxInfo):
    result = apt_clone(pristine, "--debug", "-y", "-r", "no-such")
    assert result.returncode == 2 and "Traceback" in result.stderr


def test_seed_example_2_revert_a_successful_upgrade(pristine: SandboxInfo):
    """Checkpoint, boot it, find it cannot be destroyed while running, go back, destroy it."""
    before = zfs_state(pristine)
    assert apt_clone(pristine, "create", "--title", "Upgrade Checkpoint").returncode == 0
    assert apt_clone(pristine, "-y", "-a", "rootfs-nmu-001").returncode == 0
    reboot(pristine)
    lines = apt_clone(pristine, "-l").stdout.splitlines()
    assert lines[2].startswith("o o rootfs-nmu-001")
    refused = apt_clone(pristine, "-y", "-r", "rootfs-nmu-001")
    assert refused.returncode == 3 and "Can not destroy currently active system folder" in refused.stderr
    assert apt_clone(pristine, "-y", "-a", "rootfs-nmu-000").returncode == 0
    reboot(pristine)
    lines = apt_clone(pristine, "-l").stdout.splitlines()
    assert lines[1].startswith("o o rootfs-nmu-000") and lines[2].startswith("    rootfs-nmu-001")
    done = apt_clone(pristine, "-y", "-r", "rootfs-nmu-001")
    assert done.returncode == 0, done.stderr
    assert f"Upgrade changes for clone '{pristine.ds('rootfs-nmu-001')}' now rolled back/destroyed." in done.stdout
    assert zfs_state(pristine) == before


def test_seed_example_3_destroy_the_origin_after_activating_the_clone(pristine: SandboxInfo):
    """After activating and booting rootfs-nmu-001, destroying rootfs-nmu-000 promotes 001 first."""
    assert apt_clone(pristine, "create").returncode == 0
    assert [n.rsplit("/", 1)[-1] for n in zfs_names(pristine)][2:] == [
        "rootfs-nmu-000",
        "rootfs-nmu-000@initial",
        "rootfs-nmu-000@nmu-001",
        "rootfs-nmu-001",
    ]
    assert apt_clone(pristine, "-y", "-a", "rootfs-nmu-001").returncode == 0
    reboot(pristine)
    done = apt_clone(pristine, "-y", "-r", "rootfs-nmu-000")
    assert done.returncode == 0, done.stderr
    assert zfs_names(pristine) == [
        pristine.pool,
        pristine.container,
        pristine.ds("rootfs-nmu-001"),
        pristine.ds("rootfs-nmu-001@initial"),
    ]
    assert zfs_get(pristine.ds("rootfs-nmu-001"), "origin") == "-"
    lines = apt_clone(pristine, "-l").stdout.splitlines()
    assert len(lines) == 2 and lines[1].startswith("o o rootfs-nmu-001")
    # The promoted root owns snapshots older than itself; a checkpoint of it still boots like it.
    assert apt_clone(pristine, "create").returncode == 0
    assert zfs_get(pristine.ds("rootfs-nmu-002"), "mountpoint") == pristine.root
    assert zfs_get(pristine.ds("rootfs-nmu-002"), "canmount") == "noauto"
    assert apt_clone(pristine, "-y", "-a", "rootfs-nmu-002").returncode == 0
    reboot(pristine)
    assert apt_clone(pristine, "-l").stdout.splitlines()[-1].startswith("o o rootfs-nmu-002")


def test_destroy_keeps_other_checkpoints_cloned_from_it(pristine: SandboxInfo):
    """000 -> 001 -> (boot 001) -> 002 from 001; destroying 001 must not lose 002."""
    apt_clone(pristine, "create")
    apt_clone(pristine, "-y", "-a", "rootfs-nmu-001")
    reboot(pristine)
    apt_clone(pristine, "create")  # rootfs-nmu-002 from rootfs-nmu-001@nmu-002
    apt_clone(pristine, "-y", "-a", "rootfs-nmu-000")
    reboot(pristine)
    result = apt_clone(pristine, "-y", "-r", "rootfs-nmu-001")
    assert result.returncode == 0, result.stderr
    names = [c["name"] for c in listing(pristine)]
    assert names == ["rootfs-nmu-000", "rootfs-nmu-002"]
    assert zfs_get(pristine.ds("rootfs-nmu-002"), "origin") == f"{pristine.first}@nmu-001"


def _mounts_under(top: str) -> dict[str, str]:
    """Mount point -> what is mounted there (the last mount: what a path reaches), under ``top``."""
    found: dict[str, str] = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, right = line.split(" - ", 1)
            point = left.split()[4]
            if point == top or point.startswith(top + "/"):
                found[point] = right.split()[1]
    return found


def test_a_root_and_child_with_canmount_on_are_checkpointed_never_over_the_running_system(toy: Toy):
    """Ubuntu's layout (a root and its children canmount=on): every dataset of a checkpoint is
    canmount=noauto from the moment it exists (on OpenZFS 2.2+ a clone that mounts itself does
    so over the running root); on activation canmount=on moves to the children of what boots
    next, and no root ever mounts by itself."""
    be1 = toy.ds("be1")
    # be1 is canmount=on by default; setting it again made zfs-fuse remount it, at times "busy"
    assert zfs_get(be1, "canmount") == "on"
    zfs("create", "-o", "canmount=on", f"{be1}/var")  # mounted at root/var, as zfs mount -a does
    Path(toy.root, "marker").write_text("the running root")
    Path(toy.root, "var", "marker").write_text("the running var")
    before = _mounts_under(toy.root)
    assert before[toy.root] == be1 and before[os.path.join(toy.root, "var")] == f"{be1}/var"

    made = toy.cli("-y", "--json", "create")
    assert made.returncode == 0, made.stderr
    new = json.loads(made.stdout)["checkpoint"]
    be2 = toy.ds(new)
    assert _mounts_under(toy.root) == before  # nothing mounted over the running system
    assert Path(toy.root, "var", "marker").read_text() == "the running var"
    for ds in (be2, f"{be2}/var"):
        assert (zfs_get(ds, "canmount"), zfs_get(ds, "mounted")) == ("noauto", "no"), ds
    assert zfs_get(f"{be2}/var", "org.aptclone:canmount") == "on"  # it mounts by itself once it boots next

    def canmounts() -> list[str]:
        return [zfs_get(ds, "canmount") for ds in (be1, f"{be1}/var", be2, f"{be2}/var")]

    assert toy.cli("-y", "-a", new).returncode == 0
    assert canmounts() == ["noauto", "noauto", "noauto", "on"]
    assert zfs_get(f"{be1}/var", "org.aptclone:canmount") == "on"
    assert _mounts_under(toy.root) == before  # setting canmount mounts and unmounts nothing
    assert toy.cli("-y", "-a", "be1").returncode == 0
    assert canmounts() == ["noauto", "on", "noauto", "noauto"]
    assert toy.cli("-y", "-r", new).returncode == 0
    assert _mounts_under(toy.root) == before


def test_a_failed_create_leaves_the_containers_properties_as_they_were(toy: Toy):
    container = f"{toy.pool}/ROOT"

    def local_props() -> str:
        return zfs("get", "-H", "-s", "local", "-o", "property,value", "all", container)

    before = local_props()
    failed = toy.cli("-y", "create", env_extra={"APT_CLONE_TEST_FAIL_AT": "create.clone:ran"})
    assert failed.returncode != 0 and "injected" in failed.stderr.lower(), failed.stderr
    assert local_props() == before
    assert sorted(all_names(toy.pool)) == sorted([toy.pool, container, toy.ds("be1")])


def test_mount_read_only_and_diff_files_where_zfs_has_zfs_diff(pristine: SandboxInfo):
    """mount (read-only; --rw), umount, and diff --files: zfs diff of both against the snapshot
    they share on OpenZFS (the VM lane runs this), one clear line on zfs-fuse, which has none."""
    from apt_clone.zfs import open_backend
    from apt_clone.zfs.cli import OPENZFS

    assert apt_clone(pristine, "create").returncode == 0
    before = zfs_state(pristine)
    look = json.loads(apt_clone(pristine, "--json", "mount", "rootfs-nmu-001").stdout)["directory"]
    assert os.path.isfile(os.path.join(look, "etc/debian_version"))
    assert subprocess.run(["touch", os.path.join(look, "etc/x")], capture_output=True).returncode != 0  # read-only
    assert apt_clone(pristine, "umount", "rootfs-nmu-001").returncode == 0
    rw = json.loads(apt_clone(pristine, "--json", "mount", "--rw", "rootfs-nmu-001").stdout)["directory"]
    Path(rw, "etc/ac-only-in-001").write_text("1\n")
    assert apt_clone(pristine, "umount", "rootfs-nmu-001").returncode == 0
    assert zfs_state(pristine) == before
    Path(pristine.root, "etc/ac-only-in-000").write_text("0\n")
    result = apt_clone(pristine, "diff", "rootfs-nmu-000", "rootfs-nmu-001", "--files")
    if getattr(open_backend(), "dialect", None) != OPENZFS:
        assert result.returncode == 3 and result.stderr.strip().splitlines() == [
            "apt-clone: diff --files: not supported by this ZFS (zfs-fuse has no 'zfs diff'); "
            "'apt-clone diff A B' compares their packages"
        ]
        return
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Files that differ between rootfs-nmu-000 and rootfs-nmu-001") and "@nmu-001" in lines[0]
    assert "  + . /etc/ac-only-in-000" in lines and "  . + /etc/ac-only-in-001" in lines, lines
    found = json.loads(apt_clone(pristine, "--json", "diff", "rootfs-nmu-000", "rootfs-nmu-001", "--files").stdout)
    assert ["/etc/ac-only-in-001", "", "+"] in found["files"]
    assert zfs_state(pristine) == before

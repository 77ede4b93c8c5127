"""Commands on one checkpoint read that checkpoint alone, whatever the number of others (issue
#23): on the real sandbox, traced, no command but a listing reads the container's tree; the
GRUB menu is edited entry by entry and stays what a whole rendering gives; new names are found
without listing the checkpoints, also when the container's hint is wrong."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.helpers import SandboxInfo, apt_clone, zfs_get, zfs_names

TRACE = {"APT_CLONE_TRACE": "1"}


def _container_reads(sb: SandboxInfo, stderr: str) -> list[str]:
    """Traced zfs commands that read every checkpoint: a recursive get or a listing of the container."""
    trace = [line.split("] ", 1)[1] for line in stderr.splitlines() if line.startswith("[")]
    return [
        command
        for command in trace
        if (words := command.split())[:2] in (["zfs", "get"], ["zfs", "list"])
        and ("-r" in words or "-d" in words)
        and words[-1] in (sb.container, sb.pool)
    ]


def _traced(sb: SandboxInfo, *args: str) -> str:
    result = apt_clone(sb, *args, env=TRACE)
    assert result.returncode == 0, result.stderr
    assert _container_reads(sb, result.stderr) == [], f"apt-clone {' '.join(args)} read every checkpoint"
    return result.stdout


def _menu(sb: SandboxInfo) -> Path:
    return Path(sb.root, "boot/grub/apt-clone.cfg")


def test_commands_on_one_checkpoint_never_read_the_others(pristine: SandboxInfo):
    for name in ("vmlinuz-6.1.0-99-amd64", "initrd.img-6.1.0-99-amd64"):  # entries with a kernel
        Path(pristine.root, "boot", name).write_bytes(b"")
    assert apt_clone(pristine, "create").returncode == 0  # the first rewrites an older menu whole
    _traced(pristine, "create", "--title", "one")
    _traced(pristine, "create")
    _traced(pristine, "rename", "rootfs-nmu-002", "renamed")
    _traced(pristine, "title", "renamed", "a new title")
    _traced(pristine, "pin", "renamed")
    _traced(pristine, "-y", "-a", "renamed")
    _traced(pristine, "-y", "-a", "rootfs-nmu-000")
    _traced(pristine, "-y", "-a", "--once", "rootfs-nmu-001")
    _traced(pristine, "-y", "-a", "rootfs-nmu-000")
    _traced(pristine, "unpin", "renamed")
    _traced(pristine, "-y", "-r", "rootfs-nmu-003")
    assert "rootfs-nmu-003" not in " ".join(zfs_names(pristine))
    edited = _menu(pristine).read_text()
    assert "a new title" in edited and "renamed" in edited and "rootfs-nmu-003" not in edited
    _menu(pristine).unlink()  # no menu to edit: the next change renders it whole, from one read
    assert apt_clone(pristine, "title", "renamed", "a new title").returncode == 0
    assert _menu(pristine).read_text() == edited
    subprocess.run(["grub-script-check", str(_menu(pristine))], check=True)


def test_a_new_name_skips_what_is_taken_without_listing(pristine: SandboxInfo):
    assert apt_clone(pristine, "create").returncode == 0  # rootfs-nmu-001, the container's newest
    # Made by hand where the next name would be: a dataset, and a snapshot of the running root.
    subprocess.run(["zfs", "snapshot", f"{pristine.first}@hand"], check=True)
    subprocess.run(
        ["zfs", "clone", "-o", "canmount=noauto", f"{pristine.first}@hand", pristine.ds("rootfs-nmu-002")], check=True
    )
    subprocess.run(["zfs", "snapshot", f"{pristine.first}@nmu-003"], check=True)
    out = _traced(pristine, "create")
    assert "rootfs-nmu-004" in out
    assert zfs_get(pristine.container, "org.aptclone:newest") == "rootfs-nmu-004"
    # A hint that names nothing (or something else): the numbering still finds a free name.
    subprocess.run(["zfs", "set", "org.aptclone:newest=elsewhere", pristine.container], check=True)
    out = apt_clone(pristine, "create")
    assert out.returncode == 0 and "rootfs-nmu-005" in out.stdout, out.stderr
    named = apt_clone(pristine, "create", "-n", "mine")
    assert named.returncode == 0, named.stderr
    assert zfs_get(pristine.container, "org.aptclone:newest") == "rootfs-nmu-005"  # a chosen name is no hint
    clash = apt_clone(pristine, "create", "-n", "rootfs-nmu-002")
    assert clash.returncode != 0 and "already exists" in clash.stderr

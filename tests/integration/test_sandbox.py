"""The sandbox itself: create/status/reboot/reset/destroy, idempotence, two side by side."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from tests import helpers
from tests.helpers import SandboxInfo, bootfs, zfs_names


def sandbox_cli(directory: str, *args: str) -> subprocess.CompletedProcess[str]:
    return helpers.sandbox_cli(*args, directory=directory)


def test_status_describes_the_sandbox(sandbox: SandboxInfo):
    status = json.loads(sandbox_cli(sandbox.directory, "status").stdout)
    for key in ("pool", "image", "root", "be_container", "daemon_pid"):
        assert key in status
    assert status["root"] == sandbox.root and os.path.exists(status["image"])
    assert status["be_container"] == f"{status['pool']}/ROOT"


def test_initial_layout_is_a_debian_root_on_zfs(pristine: SandboxInfo):
    assert zfs_names(pristine) == [pristine.pool, pristine.container, pristine.first, f"{pristine.first}@initial"]
    assert bootfs(pristine) == pristine.first
    with open(os.path.join(pristine.root, "etc/os-release")) as f:
        assert "Debian" in f.read()
    dpkg = subprocess.run(["chroot", pristine.root, "dpkg-query", "-W", "ac-hello"], capture_output=True, text=True)
    assert dpkg.stdout.split() == ["ac-hello", "1.0"]
    title = subprocess.run(
        ["zfs", "get", "-H", "-o", "value", "org.aptclone:title", pristine.first], capture_output=True, text=True
    )
    assert title.stdout.startswith("Debian GNU/Linux")


def test_create_is_idempotent(sandbox: SandboxInfo):
    before = zfs_names(sandbox)
    again = sandbox_cli(sandbox.directory, "create")
    assert again.returncode == 0 and again.stdout.strip().splitlines()[-1] == sandbox.root
    assert zfs_names(sandbox) == before


def test_reboot_mounts_the_next_boot_checkpoint(pristine: SandboxInfo):
    subprocess.run(["zfs", "snapshot", f"{pristine.first}@x"], check=True)
    subprocess.run(["zfs", "clone", "-o", "canmount=noauto", f"{pristine.first}@x", pristine.ds("other")], check=True)
    subprocess.run(["zfs", "set", f"mountpoint={pristine.root}", pristine.ds("other")], check=True)
    with open(os.path.join(pristine.root, "marker"), "w") as f:
        f.write("on 000 only")
    subprocess.run(["zpool", "set", f"bootfs={pristine.ds('other')}", pristine.pool], check=True)
    assert sandbox_cli(pristine.directory, "reboot").returncode == 0
    assert not os.path.exists(os.path.join(pristine.root, "marker"))
    from apt_clone.system import dataset_mounted_at

    assert dataset_mounted_at(pristine.root) == pristine.ds("other")


def test_two_sandboxes_side_by_side(sandbox: SandboxInfo, tmp_path):
    second = str(tmp_path / "second")
    created = sandbox_cli(second, "create")
    assert created.returncode == 0, created.stderr
    try:
        status = json.loads(sandbox_cli(second, "status").stdout)
        assert status["pool"] != sandbox.pool
        pools = subprocess.run(["zpool", "list", "-H", "-o", "name"], capture_output=True, text=True).stdout.split()
        assert sandbox.pool in pools and status["pool"] in pools
    finally:
        destroyed = sandbox_cli(second, "destroy")
    assert destroyed.returncode == 0, destroyed.stderr
    pools = subprocess.run(["zpool", "list", "-H", "-o", "name"], capture_output=True, text=True).stdout.split()
    assert status["pool"] not in pools and sandbox.pool in pools
    assert not os.path.exists(second)
    # the first one is untouched and still answers
    assert json.loads(sandbox_cli(sandbox.directory, "status").stdout)["imported"] is True


def test_destroy_of_nothing_is_a_clear_error(tmp_path):
    result = sandbox_cli(str(tmp_path / "none"), "destroy")
    assert result.returncode == 2 and "no sandbox here" in result.stderr


def _all_local_props(pool: str) -> list[str]:
    """Every property set on the pool's datasets, locally or by a receive (sorted: the source may differ)."""
    out = subprocess.run(
        ["zfs", "get", "-H", "-r", "-s", "local,received", "-o", "name,property,value", "all", pool],
        capture_output=True,
        text=True,
        check=True,
    )
    return sorted(out.stdout.splitlines())


def test_reset_restores_datasets_data_and_properties(pristine: SandboxInfo):
    before_state, before_props = helpers.zfs_state(pristine), _all_local_props(pristine.pool)
    assert helpers.apt_clone(pristine, "-y", "create").returncode == 0
    assert helpers.apt_clone(pristine, "-y", "title", "rootfs-nmu-000", "changed").returncode == 0
    assert helpers.apt_clone(pristine, "-y", "-a", "rootfs-nmu-001").returncode == 0
    subprocess.run(["zfs", "set", "org.aptclone-test:extra=1", pristine.container], check=True)
    with open(os.path.join(pristine.root, "etc/ac-reset-marker"), "w") as f:
        f.write("gone after a reset\n")
    # Fast path: the first root is still the pristine one; it is rolled back.
    assert sandbox_cli(pristine.directory, "reset").returncode == 0
    assert helpers.zfs_state(pristine) == before_state
    assert _all_local_props(pristine.pool) == before_props
    assert not os.path.exists(os.path.join(pristine.root, "etc/ac-reset-marker"))
    # After the first root is destroyed (its clone promoted, so the clone holds @initial now),
    # the clone is renamed back and rolled back: the same filesystem, not a received copy.
    assert helpers.apt_clone(pristine, "-y", "create").returncode == 0
    assert helpers.apt_clone(pristine, "-y", "-a", "rootfs-nmu-001").returncode == 0
    helpers.reboot(pristine)
    assert helpers.apt_clone(pristine, "-y", "-r", "rootfs-nmu-000").returncode == 0
    promoted = helpers.zfs_get(pristine.ds("rootfs-nmu-001"), "guid")
    assert sandbox_cli(pristine.directory, "reset").returncode == 0
    assert helpers.zfs_state(pristine) == before_state
    assert _all_local_props(pristine.pool) == before_props
    assert bootfs(pristine) == pristine.first
    assert helpers.zfs_get(pristine.first, "guid") == promoted
    # Slow path: without the pristine @initial the first root is received again.
    subprocess.run(["zfs", "destroy", "-r", f"{pristine.first}@initial"], check=True)
    assert sandbox_cli(pristine.directory, "reset").returncode == 0
    assert helpers.zfs_state(pristine) == before_state
    assert helpers.zfs_get(pristine.first, "guid") != promoted
    assert bootfs(pristine) == pristine.first


def test_a_killed_daemon_leaves_no_dead_mount_behind(pristine: SandboxInfo):
    """A session's end kills zfs-fuse with the sandbox mounted (CI then inherits the dead FUSE
    mounts, whose root still answers ``stat`` from the kernel's cache): create brings it back."""
    from apt_clone.system import read_mounts
    from tests.sandbox import daemon

    pid = daemon.daemon_pid()
    if pid is None:
        pytest.skip("kernel ZFS: no daemon to kill")
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while daemon.daemon_pid() == pid and time.monotonic() < deadline:
        time.sleep(0.05)
    assert daemon.daemon_pid() is None
    with pytest.raises(OSError):
        os.statvfs(pristine.root)
    created = sandbox_cli(pristine.directory, "create")
    assert created.returncode == 0, created.stderr
    for mount in read_mounts():
        if mount.fstype == "fuse.zfs":
            os.statvfs(mount.mountpoint)  # every zfs-fuse mount answers
    with open(os.path.join(pristine.root, "etc/os-release")) as f:
        assert "Debian" in f.read()
    assert sandbox_cli(pristine.directory, "reset").returncode == 0


def test_a_build_tree_is_removed_without_crossing_what_is_mounted_in_it(tmp_path):
    """A debootstrap killed with the host's /dev bound in its tree: the tree goes, what was
    bound there stays (here a directory of the test's standing in for /dev)."""
    from tests.sandbox import rootfs

    host_dev = tmp_path / "host-dev"
    host_dev.mkdir()
    (host_dev / "null").write_text("a device node of the host")
    build = tmp_path / "trixie.tar.build"
    (build / "dev").mkdir(parents=True)
    (build / "etc").mkdir()
    subprocess.run(["mount", "--bind", str(host_dev), str(build / "dev")], check=True)
    try:
        rootfs.remove_tree(str(build))
    finally:
        subprocess.run(["umount", "-l", str(build / "dev")], check=False, capture_output=True)
    assert not build.exists()
    assert (host_dev / "null").read_text() == "a device node of the host"

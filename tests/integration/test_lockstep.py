"""A boot pool and a child dataset move in lockstep with the root (a second sandbox)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

from tests.helpers import SandboxInfo, apt_clone, installed_version, leftovers, mount_esp, sandbox_cli, zfs_get


@pytest.fixture(scope="module")
def family_sandbox(sandbox: SandboxInfo, tmp_path_factory) -> Iterator[tuple[SandboxInfo, str]]:
    directory = str(tmp_path_factory.mktemp("family") / "sb")
    created = sandbox_cli("create", "--bpool", "--child", "var", directory=directory)
    assert created.returncode == 0, created.stderr
    import json

    status = json.loads(sandbox_cli("status", directory=directory).stdout)
    info = SandboxInfo(directory, status["root"], status["pool"], status["be_container"])
    yield info, status["boot_container"]
    assert sandbox_cli("destroy", directory=directory).returncode == 0


@pytest.fixture
def family(family_sandbox) -> tuple[SandboxInfo, str]:
    sb, boot = family_sandbox
    result = sandbox_cli("reset", directory=sb.directory)
    assert result.returncode == 0, result.stderr
    return sb, boot


def names(*pools: str) -> list[str]:
    out = subprocess.run(
        ["zfs", "list", "-H", "-t", "all", "-o", "name,origin", "-r", *pools],
        capture_output=True,
        text=True,
        check=True,
    )
    return sorted(out.stdout.splitlines())


def mounted(sb: SandboxInfo) -> dict[str, str]:
    with open("/proc/self/mountinfo") as f:
        rows = [line.split(" - ")[0].split()[4:5] + line.split(" - ")[1].split()[1:2] for line in f]
    return {mp: src for mp, src in rows if mp.startswith(sb.root)}


def test_create_activate_reboot_destroy_in_lockstep(family):
    sb, boot = family
    bpool = boot.split("/")[0]
    assert apt_clone(sb, "create").returncode == 0
    for ds in (sb.ds("rootfs-nmu-001"), sb.ds("rootfs-nmu-001/var"), f"{boot}/rootfs-nmu-001"):
        assert zfs_get(ds, "type") == "filesystem", ds
    # the root and its child were snapshotted at one instant
    assert zfs_get(f"{sb.first}@nmu-001", "createtxg") == zfs_get(f"{sb.first}/var@nmu-001", "createtxg")
    assert zfs_get(sb.ds("rootfs-nmu-001/var"), "origin") == f"{sb.first}/var@nmu-001"
    assert apt_clone(sb, "-y", "-a", "rootfs-nmu-001").returncode == 0
    assert sandbox_cli("reboot", directory=sb.directory).returncode == 0
    mounts = mounted(sb)
    assert mounts[sb.root] == sb.ds("rootfs-nmu-001")
    assert mounts[os.path.join(sb.root, "var")] == sb.ds("rootfs-nmu-001/var")
    assert mounts[os.path.join(sb.root, "boot")] == f"{boot}/rootfs-nmu-001"
    result = apt_clone(sb, "-y", "-r", "rootfs-nmu-000")
    assert result.returncode == 0, result.stderr
    assert names(sb.pool, bpool) == sorted(
        [
            f"{sb.pool}\t-",
            f"{sb.container}\t-",
            f"{sb.ds('rootfs-nmu-001')}\t-",
            f"{sb.ds('rootfs-nmu-001')}@initial\t-",
            f"{sb.ds('rootfs-nmu-001')}/var\t-",
            f"{sb.ds('rootfs-nmu-001')}/var@initial\t-",
            f"{bpool}\t-",
            f"{boot}\t-",
            f"{boot}/rootfs-nmu-001\t-",
            f"{boot}/rootfs-nmu-001@initial\t-",
        ]
    )


def test_upgrade_in_the_clone_mounts_children_and_boot_twin(family):
    sb, boot = family
    before = installed_version(sb.root, "ac-hello")
    result = apt_clone(sb, "-y", "-s", "dist-upgrade")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    assert "Boot pool '" in result.stdout
    assert installed_version(sb.root, "ac-hello") == before == "1.0"
    diff = apt_clone(sb, "diff", "rootfs-nmu-000", "rootfs-nmu-001").stdout
    assert "(1):" in diff and "ac-hello" in diff  # the dpkg status in <clone>/var says exactly this
    rename = apt_clone(sb, "rename", "rootfs-nmu-001", "upgraded")
    assert rename.returncode == 0, rename.stderr
    assert zfs_get(f"{boot}/upgraded", "type") == "filesystem"
    assert zfs_get(sb.ds("upgraded/var"), "type") == "filesystem"


def test_failed_in_place_upgrade_rolls_back_both_pools(family):
    sb, boot = family
    assert sandbox_cli("suite", "--enable", "unstable", directory=sb.directory).returncode == 0
    pools = (sb.pool, boot.split("/")[0])
    before = names(*pools)
    result = apt_clone(sb, "-y", "dist-upgrade")
    assert result.returncode == 1 and "All upgrade changes now rolled back." in result.stdout
    assert names(*pools) == before
    assert installed_version(sb.root, "ac-flaky") == "1.0"


def test_a_rollback_takes_back_both_pools_and_the_child(family):
    """An in-place install kept, then rolled back on a root with a child (/var) and a boot pool:
    the install is gone, every dataset is as before (no clone, no snapshot, no mount left), and
    the rolled-back checkpoint's name is not given again."""
    sb, boot = family
    pools = (sb.pool, boot.split("/")[0])
    before = names(*pools)
    mounts = mounted(sb)
    assert apt_clone(sb, "-y", "install", "ac-extra").returncode == 0
    assert installed_version(sb.root, "ac-extra") == "1.0"
    done = apt_clone(sb, "-y", "rollback", "rootfs-nmu-001")
    assert done.returncode == 0, done.stderr
    assert installed_version(sb.root, "ac-extra") is None
    assert names(*pools) == before and mounted(sb) == mounts and leftovers(sb) == []
    assert apt_clone(sb, "create").returncode == 0
    assert f"{sb.container}/rootfs-nmu-002" in "\n".join(names(sb.pool))


def test_boot_pool_space_is_checked(family):
    sb, boot = family
    filler = os.path.join(sb.root, "boot", "filler")
    avail = int(
        subprocess.run(["zfs", "get", "-Hp", "-o", "value", "available", boot], capture_output=True, text=True).stdout
    )
    with open(filler, "wb") as f:
        f.truncate(0)
        chunk = b"\0" * (1 << 20)
        for _ in range(max(0, avail // (1 << 20) - 8)):
            f.write(chunk)
    try:
        before = names(sb.pool, boot.split("/")[0])
        result = apt_clone(sb, "-y", "dist-upgrade")
        assert result.returncode == 3 and "not enough free space on the boot pool" in result.stderr
        assert names(sb.pool, boot.split("/")[0]) == before
        import json

        report = json.loads(apt_clone(sb, "--json", "check").stdout)
        (space,) = [f for f in report["findings"] if f["topic"] == "space"]
        assert space["level"] == "risk" and f"pool '{boot.split('/')[0]}' (holding /boot)" in space["text"]
    finally:
        os.unlink(filler)


def _read_in(dataset: str, rel: str) -> dict[str, str]:
    """The files of directory ``rel`` in an unmounted dataset (mounted aside for the read)."""
    import tempfile

    old = subprocess.run(["zfs", "get", "-H", "-o", "value", "mountpoint", dataset], capture_output=True, text=True)
    where = tempfile.mkdtemp()
    subprocess.run(["zfs", "set", f"mountpoint={where}", dataset], check=True)
    try:
        subprocess.run(["zfs", "mount", dataset], check=True)
        d = os.path.join(where, rel)
        return {n: open(os.path.join(d, n), errors="replace").read() for n in os.listdir(d)}
    finally:
        subprocess.run(["zfs", "unmount", dataset], check=False)
        subprocess.run(["zfs", "set", f"mountpoint={old.stdout.strip()}", dataset], check=True)
        os.rmdir(where)


def test_the_checkpoint_whose_grub_directory_grub_reads_is_never_cut(family):
    """The Root-on-ZFS guide's layout: /boot/grub inside bpool/BOOT/<name>. GRUB reads the copy it
    was installed from; destroying, renaming or rolling back to that checkpoint is refused (exit 3),
    naming the fix."""
    sb, boot = family
    assert sandbox_cli("grub", "--inside", directory=sb.directory).returncode == 0
    try:
        assert apt_clone(sb, "create").returncode == 0
        assert zfs_get(sb.container, "org.aptclone:grub-home") == "rootfs-nmu-000"
        assert apt_clone(sb, "-y", "-a", "rootfs-nmu-001").returncode == 0
        assert sandbox_cli("reboot", directory=sb.directory).returncode == 0
        assert apt_clone(sb, "create").returncode == 0  # rootfs-nmu-002, which holds no GRUB of GRUB's
        before = names(sb.pool, boot.split("/")[0])
        for argv in (["-r", "rootfs-nmu-000"], ["rename", "rootfs-nmu-000", "old"], ["rollback", "rootfs-nmu-000"]):
            refused = apt_clone(sb, "-y", *argv)
            assert refused.returncode == 3, refused.stderr
            assert "GRUB rescue prompt" in refused.stderr and "apt-clone check" in refused.stderr
            assert f"{boot}/rootfs-nmu-000" in refused.stderr
            assert names(sb.pool, boot.split("/")[0]) == before
        # Running rootfs-nmu-001, GRUB reads rootfs-nmu-000's copy: the menu and the default go there.
        assert apt_clone(sb, "-y", "-a", "rootfs-nmu-002").returncode == 0
        home = _read_in(f"{boot}/rootfs-nmu-000", "grub")
        assert "# rootfs-nmu-002" in home["apt-clone.cfg"]
        assert "saved_entry=apt-clone>apt-clone-rootfs-nmu-002" in home["grubenv"]
        with open(os.path.join(sb.root, "boot/grub/grubenv")) as f:
            own = f.read()
        assert "rootfs-nmu-002" not in own  # the running checkpoint's copy, which GRUB never reads
        assert leftovers(sb) == []
        assert apt_clone(sb, "-y", "-a", "rootfs-nmu-001").returncode == 0
        assert apt_clone(sb, "-y", "-r", "rootfs-nmu-002").returncode == 0
        assert "rootfs-nmu-002" not in _read_in(f"{boot}/rootfs-nmu-000", "grub")["apt-clone.cfg"]
    finally:
        assert sandbox_cli("grub", "--shared", directory=sb.directory).returncode == 0
        subprocess.run(["zfs", "inherit", "org.aptclone:grub-home", sb.container], check=True)


def test_check_reports_grub_inside_a_checkpoint_and_a_lost_home(family):
    sb, boot = family
    assert sandbox_cli("grub", "--inside", directory=sb.directory).returncode == 0
    try:
        import json

        assert apt_clone(sb, "create").returncode == 0
        report = json.loads(apt_clone(sb, "--json", "check").stdout)
        assert report["grub"] == {
            "where": "checkpoint",
            "checkpoint": "rootfs-nmu-000",
            "holder": f"{boot}/rootfs-nmu-000",
            "known_from": "recorded",
            "stub": None,
            "stub_prefix": None,
        }
        (risk,) = [f for f in report["findings"] if f["topic"] == "grub"]
        assert risk["level"] == "risk" and "GRUB reads that copy only" in risk["text"]
        assert risk["fix"].startswith(f"apt-clone share-grub (moves it into {boot.split('/')[0]}/grub")
        (trials,) = [f for f in report["findings"] if f["topic"] == "trials"]
        assert trials["level"] == "risk" and "GRUB cannot write" in trials["text"]  # its grubenv is on ZFS
        refused = apt_clone(sb, "-y", "share-grub")  # grub-install writes the host's disks: never for --root
        assert refused.returncode == 3 and "running system only" in refused.stderr
        subprocess.run(["zfs", "set", "org.aptclone:grub-home=gone", sb.container], check=True)
        report = json.loads(apt_clone(sb, "--json", "check").stdout)
        (risk,) = [f for f in report["findings"] if f["topic"] == "grub"]
        assert "'gone', which no longer exists" in risk["text"] and "GRUB rescue prompt" in risk["text"]
    finally:
        assert sandbox_cli("grub", "--shared", directory=sb.directory).returncode == 0
        subprocess.run(["zfs", "inherit", "org.aptclone:grub-home", sb.container], check=True)


def test_on_uefi_the_esps_stub_names_the_copy_grub_reads(family, tmp_path):
    """shim-signed's grub-install writes EFI/debian/grub.cfg on the ESP, naming one checkpoint's
    bpool/BOOT/<name>@/grub: that one is GRUB's home, whatever was recorded or runs."""
    import json

    sb, boot = family
    assert sandbox_cli("grub", "--inside", directory=sb.directory).returncode == 0
    assert apt_clone(sb, "-y", "-a", "rootfs-nmu-000").returncode == 0  # twins settled (see the ESP test)
    esp = mount_esp(sb, tmp_path)
    try:
        assert apt_clone(sb, "create").returncode == 0  # rootfs-nmu-001; the home recorded: 000
        os.makedirs(os.path.join(esp, "EFI/debian"))
        with open(os.path.join(esp, "EFI/debian/grub.cfg"), "w") as f:
            f.write("search.fs_uuid 4f1b5e2c9a0d7e36 root \nset prefix=($root)'/BOOT/rootfs-nmu-001@/grub'\n"
                    "configfile $prefix/grub.cfg\n")  # fmt: skip
        report = json.loads(apt_clone(sb, "--json", "check").stdout)
        assert report["grub"]["checkpoint"] == "rootfs-nmu-001" and report["grub"]["known_from"] == "stub"
        assert report["grub"]["stub_prefix"] == "/BOOT/rootfs-nmu-001@/grub"
        (found,) = [f for f in report["findings"] if f["topic"] == "esp"]
        assert (
            found["level"] == "ok"
            and "EFI/debian/grub.cfg reads GRUB's directory from /BOOT/rootfs-nmu-001@/grub" in found["text"]
        )
        refused = apt_clone(sb, "-y", "-r", "rootfs-nmu-001")
        assert (
            refused.returncode == 3 and f"{boot}/rootfs-nmu-001" in refused.stderr and "GRUB rescue" in refused.stderr
        )
        assert apt_clone(sb, "create").returncode == 0  # rootfs-nmu-002: not GRUB's home, it can go
        assert apt_clone(sb, "-y", "-r", "rootfs-nmu-002").returncode == 0
    finally:
        subprocess.run(["umount", esp], check=True)
        assert sandbox_cli("grub", "--shared", directory=sb.directory).returncode == 0
        subprocess.run(["zfs", "inherit", "org.aptclone:grub-home", sb.container], check=True)


def test_only_the_twin_of_what_boots_next_mounts_by_itself_and_a_boot_mounts_its_own(family):
    sb, boot = family
    assert apt_clone(sb, "create").returncode == 0
    assert zfs_get(f"{boot}/rootfs-nmu-001", "canmount") == "noauto"  # a clone never mounts by itself
    assert apt_clone(sb, "-y", "-a", "rootfs-nmu-001").returncode == 0
    assert [zfs_get(f"{boot}/{n}", "canmount") for n in ("rootfs-nmu-000", "rootfs-nmu-001")] == ["noauto", "on"]
    assert sandbox_cli("reboot", directory=sb.directory).returncode == 0
    # As zfs-mount.service would leave it after a boot of another checkpoint: the wrong twin at /boot.
    where = os.path.join(sb.root, "boot")
    left = apt_clone(sb, "-y", "boot-started")  # the sandbox binds GRUB's directory on /boot/grub
    assert left.returncode == 0 and "left as it is" not in left.stdout  # the right twin: nothing to do
    subprocess.run(["umount", os.path.join(where, "grub")], check=True)
    subprocess.run(["zfs", "unmount", f"{boot}/rootfs-nmu-001"], check=True)
    subprocess.run(["zfs", "mount", f"{boot}/rootfs-nmu-000"], check=True)
    try:
        assert mounted(sb)[where] == f"{boot}/rootfs-nmu-000"
        started = apt_clone(sb, "-y", "boot-started")
        assert started.returncode == 0 and f"mounted {boot}/rootfs-nmu-001 at /boot" in started.stdout
        assert mounted(sb)[where] == f"{boot}/rootfs-nmu-001"
    finally:
        assert sandbox_cli("grub", "--shared", directory=sb.directory).returncode == 0  # binds it again
    assert apt_clone(sb, "-y", "-a", "rootfs-nmu-000").returncode == 0
    assert [zfs_get(f"{boot}/{n}", "canmount") for n in ("rootfs-nmu-000", "rootfs-nmu-001")] == ["on", "noauto"]


def _grubenv(path: str) -> dict[str, str]:
    out = subprocess.run(["grub-editenv", path, "list"], capture_output=True, text=True, check=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def test_where_grubenv_is_on_zfs_grub_counts_a_trial_on_the_esp(family, tmp_path):
    """The guide's layout: GRUB's directory in bpool/BOOT/<name>, grubenv on ZFS, which GRUB cannot
    write. With a filesystem GRUB writes at /boot/efi (ext2 here; FAT in the VM lane), a trial's
    tries are counted there, so a trial that dies before userspace comes back by itself."""
    from tests.sandbox import core

    sb, boot = family
    assert sandbox_cli("grub", "--inside", directory=sb.directory).returncode == 0
    # zfs-fuse remounts a dataset whose canmount changes (OpenZFS does not), which fails with the
    # ESP mounted on it: the twins' canmount settled first, as the default's activation leaves them.
    assert apt_clone(sb, "-y", "-a", "rootfs-nmu-000").returncode == 0
    esp = mount_esp(sb, tmp_path)
    try:
        import json

        uuid = subprocess.run(["findmnt", "-n", "-o", "UUID", esp], capture_output=True, text=True).stdout.strip()
        counter = os.path.join(esp, "apt-clone/grubenv")
        (trials,) = [
            f for f in json.loads(apt_clone(sb, "--json", "check").stdout)["findings"] if f["topic"] == "trials"
        ]
        assert trials["level"] == "ok" and f"counts a trial's tries ([trial] tries) in {counter}" in trials["text"]
        assert apt_clone(sb, "create").returncode == 0
        armed = apt_clone(sb, "-y", "-a", "rootfs-nmu-001", "--once")
        assert armed.returncode == 0 and f"one try counted by GRUB in {counter}" in armed.stdout, armed.stdout
        assert _grubenv(counter) == {"apt_clone_trial": "apt-clone>apt-clone-rootfs-nmu-001", "apt_clone_tries": "1"}
        grub_dir = os.path.join(sb.root, "boot/grub")  # rootfs-nmu-000's twin's: GRUB's home, running
        assert "next_entry" not in _grubenv(os.path.join(grub_dir, "grubenv"))
        with open(os.path.join(grub_dir, "apt-clone-trial.cfg")) as f:
            script = f.read()
        assert f"search --no-floppy --fs-uuid --set=apt_clone_env '{uuid}'" in script and "insmod ext2" in script
        assert 'save_env --file "(${apt_clone_env})/apt-clone/grubenv" apt_clone_tries' in script
        assert subprocess.run(["grub-script-check", os.path.join(grub_dir, "apt-clone-trial.cfg")]).returncode == 0
        with open(os.path.join(grub_dir, "apt-clone.cfg")) as f:
            assert 'source "${prefix}/apt-clone-trial.cfg"' in f.read()
        listed = apt_clone(sb, "-l").stdout
        assert "rootfs-nmu-001" in listed
        # GRUB boots the trial, spending its try; it dies before userspace; GRUB boots the default.
        assert core.grub_picks(sb.directory) == sb.ds("rootfs-nmu-001")
        assert _grubenv(counter)["apt_clone_tries"] == ""
        assert core.grub_picks(sb.directory) == sb.first  # the trial forgotten: GRUB's default boots
        assert _grubenv(counter)["apt_clone_trial"] == ""
        verdict = apt_clone(sb, "-y", "trial-commit")
        assert "did not come up" in verdict.stdout, verdict.stdout + verdict.stderr
        assert "BAD" in apt_clone(sb, "-l").stdout
        # Armed again, then the default chosen by hand: the count is gone.
        assert apt_clone(sb, "-y", "-a", "rootfs-nmu-001", "--once").returncode == 0
        assert _grubenv(counter)["apt_clone_tries"] == "1"
        chosen = apt_clone(sb, "-y", "-a", "rootfs-nmu-000")
        assert chosen.returncode == 0, chosen.stderr
        assert "apt_clone_trial" not in _grubenv(counter) and "apt_clone_tries" not in _grubenv(counter)
    finally:
        subprocess.run(["umount", esp], check=False)
        assert sandbox_cli("grub", "--shared", directory=sb.directory).returncode == 0
        subprocess.run(["zfs", "inherit", "org.aptclone:grub-home", sb.container], check=True)
        subprocess.run(["zfs", "inherit", "org.aptclone:trial", sb.container], check=False)


def test_with_ubuntus_canmount_on_a_trial_boot_gets_its_own_children_never_the_defaults(family):
    sb, boot = family
    var0, var1 = f"{sb.first}/var", sb.ds("rootfs-nmu-001/var")
    where = os.path.join(sb.root, "var")
    # Ubuntu's layout: the children canmount=on (the root too: test_checkpoints; zfs-fuse cannot
    # set it here, where it remounts the root with the mounts on it)
    subprocess.run(["zfs", "set", "canmount=on", var0], check=True)
    try:
        assert apt_clone(sb, "create").returncode == 0
        assert (zfs_get(var1, "canmount"), zfs_get(var1, "org.aptclone:canmount")) == ("noauto", "on")
        assert apt_clone(sb, "-y", "-a", "rootfs-nmu-001", "--once").returncode == 0
        # The default's children still mount by themselves, the trial's not.
        assert [zfs_get(ds, "canmount") for ds in (var0, var1)] == ["on", "noauto"]
        assert sandbox_cli("reboot", directory=sb.directory).returncode == 0
        assert mounted(sb)[sb.root] == sb.ds("rootfs-nmu-001")
        # As zfs-mount.service leaves a trial boot: the default's var (canmount=on) at /var.
        subprocess.run(["zfs", "unmount", var1], check=True)
        subprocess.run(["zfs", "mount", var0], check=True)
        assert mounted(sb)[where] == var0
        started = apt_clone(sb, "-y", "boot-started")
        assert started.returncode == 0, started.stderr
        assert f"unmounted {var0} (another checkpoint's)" in started.stdout, started.stdout
        assert f"mounted {var1} at {where}" in started.stdout, started.stdout
        assert mounted(sb)[where] == var1
        again = apt_clone(sb, "-y", "boot-started")  # as it should be: nothing to do
        assert again.returncode == 0 and "mounted" not in again.stdout, again.stdout
        # Back in the default, activating the other moves canmount=on with it (zfs-fuse remounts a
        # mounted twin whose canmount is set: the trial's own commit is proven on OpenZFS, vm/).
        assert sandbox_cli("reboot", directory=sb.directory).returncode == 0
        assert mounted(sb)[where] == var0
        assert apt_clone(sb, "-y", "-a", "rootfs-nmu-001").returncode == 0
        assert [zfs_get(ds, "canmount") for ds in (var0, var1)] == ["noauto", "on"]
    finally:
        subprocess.run(["zfs", "set", "canmount=noauto", var0], check=False)

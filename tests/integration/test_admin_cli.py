"""The admin's command line on the sandbox: listing columns as zfs list gives them, options after
the command, the trial flag in the listing, check's exit status."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from apt_clone.checkpoints.commands import SPECS
from tests.helpers import (
    SandboxInfo,
    SlowPostinst,
    apt_clone,
    apt_clone_popen,
    config_env,
    enable_suite,
    installed_version,
    leftovers,
    mount_esp,
    reboot,
    zfs_get,
    zfs_names,
    zfs_state,
)


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    return result


def test_listing_columns_for_people_and_scripts(pristine: SandboxInfo):
    ok(apt_clone(pristine, "create", "--title", "second"))
    ok(apt_clone(pristine, "create", "--title", "third"))
    table = ok(apt_clone(pristine, "-l", "-o", "name,active,current,kind,title")).stdout.splitlines()
    assert table[0].split() == ["NAME", "ACTIVE", "CURRENT", "KIND", "TITLE"]
    assert table[1].split()[:4] == ["rootfs-nmu-000", "yes", "yes", "initial"]
    assert table[3].split()[:4] == ["rootfs-nmu-002", "no", "no", "manual"] and table[3].endswith("third")
    rows = [
        line.split("\t")
        for line in ok(apt_clone(pristine, "-l", "-H", "-p", "-o", "name,used,created")).stdout.splitlines()
    ]
    assert [r[0] for r in rows] == ["rootfs-nmu-000", "rootfs-nmu-001", "rootfs-nmu-002"]
    assert all(len(r) == 3 and r[1].isdigit() and r[2].isdigit() for r in rows), rows
    assert int(rows[0][2]) <= int(rows[2][2])  # epoch seconds
    descending = ok(apt_clone(pristine, "-l", "-H", "-o", "name", "-S", "name")).stdout.split()
    assert descending == ["rootfs-nmu-002", "rootfs-nmu-001", "rootfs-nmu-000"]
    by_kind = ok(apt_clone(pristine, "list", "-H", "-o", "name", "-s", "kind", "-S", "name")).stdout.split()
    assert by_kind == ["rootfs-nmu-000", "rootfs-nmu-002", "rootfs-nmu-001"]  # initial < manual, then names down
    human = ok(apt_clone(pristine, "-l", "-o", "used,created")).stdout.splitlines()[1]
    assert human.split()[0][-1] in "BKMG" and len(human.split()) == 4  # size, date, time, zone
    only = json.loads(ok(apt_clone(pristine, "--json", "-l", "-o", "name,trial")).stdout)
    assert only[0] == {"name": "rootfs-nmu-000", "trial": False}
    bad = apt_clone(pristine, "-l", "-o", "name,size")
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "apt-clone: -o: unknown column 'size' (columns: name, title, active, current, trial, bad, kind, pinned, "
        "used, referenced, created, origin, dataset, kernels, command)"
    ]


def test_a_trial_shows_in_the_listing_not_only_under_it(pristine: SandboxInfo):
    ok(apt_clone(pristine, "create"))
    ok(apt_clone(pristine, "-y", "-a", "rootfs-nmu-001", "--once"))
    seed = ok(apt_clone(pristine, "-l")).stdout.splitlines()
    assert seed[0] == "A C BOOTFS         TITLE"
    assert seed[1].startswith("o o rootfs-nmu-000") and seed[2].startswith("T   rootfs-nmu-001"), seed
    rows = dict(
        line.split("\t") for line in ok(apt_clone(pristine, "-l", "-H", "-o", "name,trial")).stdout.splitlines()
    )
    assert rows == {"rootfs-nmu-000": "no", "rootfs-nmu-001": "yes"}


def test_options_go_where_people_type_them(pristine: SandboxInfo):
    """-y and --json before the command, after it, or after its arguments; --help lists the seed's forms."""
    before = zfs_state(pristine)
    ok(apt_clone(pristine, "create"))
    ok(apt_clone(pristine, "-r", "rootfs-nmu-001", "-y"))  # no terminal: without -y it would be refused
    assert zfs_state(pristine) == before
    out = json.loads(ok(apt_clone(pristine, "create", "--json")).stdout)
    assert out["checkpoint"] == "rootfs-nmu-002", out
    ok(apt_clone(pristine, "destroy", "-y", "rootfs-nmu-002"))
    ok(apt_clone(pristine, "install", "ac-extra", "-y"))
    assert installed_version(pristine.root, "ac-extra") == "1.0"
    assert pristine.ds("rootfs-nmu-003") in zfs_names(pristine)
    shown = ok(apt_clone(pristine, "show", "rootfs-nmu-003")).stdout.splitlines()
    assert "Command:    apt-clone install ac-extra" in shown  # as the hook's checkpoints record theirs
    assert "Summary:    0 upgraded, 1 installed, 0 removed" in shown
    (created,) = [line for line in shown if line.startswith("Created:")]
    assert created.split()[-1].isalpha()  # the time zone
    listed = ok(apt_clone(pristine, "-l", "-H", "-o", "name,command")).stdout.splitlines()
    assert "rootfs-nmu-003\tapt-clone install ac-extra" in listed
    helped = ok(apt_clone(pristine, "--help")).stdout
    commands = helped.split("Commands:", 1)[1]
    assert "-l " in commands and "-a NAME" in commands and "-r NAME" in commands and "install" in commands
    install_help = ok(apt_clone(pristine, "install", "--help")).stdout
    assert "PACKAGE..." in install_help and "[reboot|activate|nothing]" in install_help


def test_check_says_with_its_exit_status_whether_the_host_is_safe(pristine: SandboxInfo, tmp_path):
    """4 while a risk is reported (the sandbox has some: no zfs-initramfs, /var/log inside the
    checkpoint), 0 once there is none, so monitoring can alert on it."""
    risky = apt_clone(pristine, "--json", "check")
    assert risky.returncode == 4 and json.loads(risky.stdout)["risks"] > 0
    assert apt_clone(pristine, "check").returncode == 4
    # a root with zfs-initramfs, no GRUB (it boots through bootfs), room for kernels: no risk
    pool, image, root = f"acsb-safe-{os.getpid()}", f"/var/tmp/acsb-safe-{os.getpid()}.img", tmp_path / "root"
    subprocess.run(["truncate", "-s", "1G", image], check=True)
    subprocess.run(["zpool", "create", "-m", "none", pool, image], check=True)
    try:
        subprocess.run(["zfs", "create", "-o", "mountpoint=none", f"{pool}/ROOT"], check=True)
        subprocess.run(["zfs", "create", "-o", f"mountpoint={root}", f"{pool}/ROOT/be1"], check=True)
        os.makedirs(root / "var/lib/dpkg")
        (root / "var/lib/dpkg/status").write_text(
            "Package: zfs-initramfs\nStatus: install ok installed\nVersion: 2.3.1-1\nArchitecture: all\n\n"
        )
        subprocess.run(["zpool", "set", f"bootfs={pool}/ROOT/be1", pool], check=True)
        env = {"APT_CLONE_STATE_DIR": str(tmp_path / "state"), "APT_CLONE_RUN_DIR": str(tmp_path / "run")}
        safe_host = SandboxInfo(str(tmp_path), str(root), pool, f"{pool}/ROOT")
        safe = apt_clone(safe_host, "--json", "check", env=env)
        report = json.loads(safe.stdout)
        assert safe.returncode == 0 and report["risks"] == 0, [f for f in report["findings"] if f["level"] == "risk"]
        subprocess.run(["zpool", "set", "bootfs=", pool], check=True)
        unset = apt_clone(safe_host, "check", env=env)
        assert unset.returncode == 4 and "no bootfs" in unset.stdout
    finally:
        from tests.sandbox.core import SandboxZfs

        SandboxZfs().destroy_pool(pool)
        os.unlink(image)


def _mounts_under(path: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(path)]


def test_mount_a_checkpoint_read_only_look_and_umount(pristine: SandboxInfo, tmp_path):
    ok(apt_clone(pristine, "create"))
    before = zfs_state(pristine)
    where = str(tmp_path / "look")
    out = json.loads(ok(apt_clone(pristine, "--json", "mount", "rootfs-nmu-001", where)).stdout)
    assert out == {"checkpoint": "rootfs-nmu-001", "directory": where, "rw": False}
    assert os.path.isfile(os.path.join(where, "etc/debian_version"))
    with open("/proc/self/mountinfo") as f:
        (line,) = [ln for ln in f if ln.split()[4] == where]
    assert "ro" in line.split()[5].split(",")  # read-only
    assert subprocess.run(["touch", os.path.join(where, "new-file")], capture_output=True).returncode != 0
    again = apt_clone(pristine, "mount", "rootfs-nmu-001")
    assert again.returncode == 3 and f"mounted at {where} already" in again.stderr
    held = apt_clone(pristine, "-y", "-r", "rootfs-nmu-001")
    assert held.returncode == 3 and "apt-clone umount rootfs-nmu-001" in held.stderr
    running = apt_clone(pristine, "mount", "rootfs-nmu-000")
    assert running.returncode == 3 and "running system" in running.stderr
    ok(apt_clone(pristine, "umount", "rootfs-nmu-001"))
    assert _mounts_under(where) == [] and zfs_state(pristine) == before and os.path.isdir(where)
    # the default directory, read-write: made, and removed by umount
    made = json.loads(ok(apt_clone(pristine, "--json", "mount", "--rw", "rootfs-nmu-001")).stdout)["directory"]
    with open(os.path.join(made, "etc/written-in-the-mount"), "w") as f:
        f.write("rw\n")
    ok(apt_clone(pristine, "umount", "rootfs-nmu-001"))
    assert not os.path.exists(made) and zfs_state(pristine) == before
    not_empty = tmp_path / "full"
    not_empty.mkdir()
    (not_empty / "x").write_text("x")
    refused = apt_clone(pristine, "mount", "rootfs-nmu-001", str(not_empty))
    assert refused.returncode == 3 and "is not empty" in refused.stderr
    link = tmp_path / "link"
    link.symlink_to(where)
    refused = apt_clone(pristine, "mount", "rootfs-nmu-001", str(link))
    assert refused.returncode == 3 and "symbolic link" in refused.stderr
    assert zfs_state(pristine) == before


def test_chroot_runs_a_command_in_a_checkpoint_and_takes_it_all_down(pristine: SandboxInfo):
    ok(apt_clone(pristine, "create"))
    before = zfs_state(pristine)
    shown = ok(apt_clone(pristine, "chroot", "rootfs-nmu-001", "cat", "/etc/debian_version"))
    assert shown.stdout.strip()[0].isdigit() or "/" in shown.stdout, shown.stdout
    status = apt_clone(pristine, "chroot", "rootfs-nmu-001", "sh", "-c", "exit 7")
    assert status.returncode == 7
    wrote = apt_clone(pristine, "chroot", "rootfs-nmu-001", "touch", "/ro")  # read-only without --rw
    assert wrote.returncode != 0
    ok(apt_clone(pristine, "chroot", "--rw", "rootfs-nmu-001", "touch", "/made-in-chroot"))
    assert leftovers(pristine) == [] and zfs_state(pristine) == before
    look = json.loads(ok(apt_clone(pristine, "--json", "mount", "rootfs-nmu-001")).stdout)["directory"]
    assert os.path.exists(os.path.join(look, "made-in-chroot"))
    ok(apt_clone(pristine, "umount", "rootfs-nmu-001"))


KILLS = [
    (op, f"{step}:{when}")
    for op in ("mount", "umount", "chroot")
    for step in SPECS[op].names
    for when in (("before", "ran", "after") if step == SPECS[op].commit else ("before", "after"))
]
"""Around every step; "ran" (its work done, not yet recorded) at the commit step."""


@pytest.mark.parametrize(("op", "kill"), KILLS, ids=[f"{op}.{kill}" for op, kill in KILLS])
def test_a_killed_mount_umount_or_chroot_leaves_nothing_recover_does_not_remove(pristine, op, kill):
    ok(apt_clone(pristine, "create"))
    before = zfs_state(pristine)
    if op == "umount":
        ok(apt_clone(pristine, "mount", "rootfs-nmu-001"))
    argv = {"mount": ("mount", "rootfs-nmu-001"), "umount": ("umount", "rootfs-nmu-001")}.get(
        op, ("chroot", "rootfs-nmu-001", "true")
    )
    killed = apt_clone(pristine, *argv, env={"APT_CLONE_TEST_KILL_AT": f"{op}.{kill}"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    ok(apt_clone(pristine, "recover"))
    listed = json.loads(ok(apt_clone(pristine, "--json", "-l")).stdout)
    mounted = [cp["name"] for cp in listed if cp["mounted_at"]]
    # a mount that reached its commit step stays, whole (so does the one an umount killed before
    # its commit step had); any other is gone
    stays = {"mount.record:ran", "mount.record:after", "umount.unmount:before"}
    assert mounted == (["rootfs-nmu-001"] if f"{op}.{kill}" in stays else []), (op, kill)
    if mounted:
        ok(apt_clone(pristine, "umount", "rootfs-nmu-001"))
    assert ok(apt_clone(pristine, "recover")).stdout.startswith("nothing to recover")
    assert leftovers(pristine) == [] and zfs_state(pristine) == before


def _esp_files(esp: str) -> dict[str, bytes]:
    out = {}
    for base, _, names in os.walk(esp):
        for name in names:
            with open(os.path.join(base, name), "rb") as f:
                out[os.path.relpath(os.path.join(base, name), esp)] = f.read()
    return out


def _grub_upgrade_on(esp: str) -> None:
    """What grub-efi-amd64's postinst does to the ESP: grub-install writes a new binary and stub."""
    with open(os.path.join(esp, "EFI/debian/grubx64.efi"), "wb") as f:
        f.write(b"\x00grub 2.14 " * 4096)
    with open(os.path.join(esp, "EFI/debian/mmx64.efi"), "wb") as f:
        f.write(b"mok manager")
    os.unlink(os.path.join(esp, "EFI/BOOT/BOOTX64.EFI"))


def test_a_change_of_the_esp_in_place_has_a_way_back(pristine: SandboxInfo, tmp_path):
    """UEFI: the ESP is not ZFS, so the checkpoint keeps a copy of its EFI/ (under /boot); a
    rollback, and the undo of an interrupted in-place upgrade, put it back byte for byte."""
    esp = mount_esp(pristine, tmp_path)
    try:
        for rel, data in (
            ("EFI/debian/grubx64.efi", b"\x00grub 2.12 " * 4096),
            ("EFI/debian/shimx64.efi", b"shim"),
            ("EFI/debian/grub.cfg", b"set prefix=($root)'/boot/grub'\n"),
            ("EFI/BOOT/BOOTX64.EFI", b"shim"),
        ):
            os.makedirs(os.path.dirname(os.path.join(esp, rel)), exist_ok=True)
            with open(os.path.join(esp, rel), "wb") as f:
                f.write(data)
        before = _esp_files(esp)
        ok(apt_clone(pristine, "create", "--title", "before the GRUB upgrade"))
        # a clone's chroot (where apt runs with -s) never sees the live ESP: its /boot/efi is empty
        assert ok(apt_clone(pristine, "chroot", "rootfs-nmu-001", "ls", "-A", "/boot/efi")).stdout == ""
        _grub_upgrade_on(esp)
        assert _esp_files(esp) != before
        ok(apt_clone(pristine, "-y", "rollback", "rootfs-nmu-001"))
        assert _esp_files(esp) == before
        # an in-place upgrade interrupted while dpkg runs (as a GRUB postinst would have changed
        # the ESP by then): the rollback puts the ESP back too
        with SlowPostinst() as slow:
            proc = apt_clone_popen(pristine, "-y", "install", "ac-slow", "--no-update")
            slow.wait_until_running(proc)
            _grub_upgrade_on(esp)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=300)
        assert "All upgrade changes now rolled back." in out, out + err
        assert _esp_files(esp) == before
    finally:
        subprocess.run(["umount", esp], check=False)


def _tree_files(top: str) -> dict[str, bytes]:
    return _esp_files(top) if os.path.isdir(top) else {}


def test_a_boot_loader_upgraded_in_a_clone_reaches_the_esp_only_when_activated(pristine: SandboxInfo, tmp_path):
    """UEFI: the stand-in grub-efi-ac 1.1 upgraded in a clone runs no grub-install there (the
    clone's chroot has no ESP); the live ESP and GRUB's directory stay byte for byte until the
    clone is activated, then the clone's own grub-install (1.1) writes them (GRUB's menu and
    grubenv change as every activation changes them); an undone activation (a failure, or a kill
    and recover) and a destroyed clone leave them as before."""
    esp = mount_esp(pristine, tmp_path)
    home = os.path.join(pristine.root, "boot/grub")
    try:
        os.makedirs(os.path.join(esp, "EFI/debian"))
        for rel, data in (("EFI/debian/grubx64.efi", "grub 1.0\n"), ("EFI/debian/shimx64.efi", "shim 1.0\n")):
            Path(esp, rel).write_text(data)
        os.makedirs(os.path.join(home, "x86_64-efi"), exist_ok=True)
        Path(home, "x86_64-efi/version").write_text("1.0\n")
        deb = "/srv/apt-clone-repo/bootloader/grub-efi-ac_1.0_all.deb"
        subprocess.run(["chroot", pristine.root, "dpkg", "-i", deb], check=True, capture_output=True)
        enable_suite(pristine, "bootloader")
        before = (_esp_files(esp), _tree_files(os.path.join(home, "x86_64-efi")))

        def upgrade_in_a_clone(name: str) -> None:
            out = ok(apt_clone(pristine, "-y", "-s", "install", "grub-efi-ac", "--then", "nothing")).stdout
            assert f"reaches the EFI system partition when '{name}' is activated" in out, out
            assert (
                _esp_files(esp),
                _tree_files(os.path.join(home, "x86_64-efi")),
            ) == before  # the running system boots what it did
            assert zfs_get(f"{pristine.container}/{name}", "org.aptclone:efi-update") == "grub-efi-ac"

        upgrade_in_a_clone("rootfs-nmu-001")
        ok(apt_clone(pristine, "-y", "-r", "rootfs-nmu-001"))
        assert (_esp_files(esp), _tree_files(os.path.join(home, "x86_64-efi"))) == before
        upgrade_in_a_clone("rootfs-nmu-002")
        notes = [f["text"] for f in json.loads(apt_clone(pristine, "--json", "check").stdout)["findings"]]
        assert (
            "checkpoint 'rootfs-nmu-002' holds a boot loader upgrade (grub-efi-ac) that reaches the EFI "
            "system partition when it is activated" in notes
        ), notes
        fail_at = {"APT_CLONE_TEST_FAIL_AT": "activate.menu:before"}
        failed = apt_clone(pristine, "-y", "-a", "rootfs-nmu-002", env=fail_at)
        assert failed.returncode != 0 and "injected" in failed.stderr, failed.stderr
        assert (_esp_files(esp), _tree_files(os.path.join(home, "x86_64-efi"))) == before
        assert zfs_get(f"{pristine.container}/rootfs-nmu-002", "org.aptclone:efi-update") == "grub-efi-ac"
        kill_at = {"APT_CLONE_TEST_KILL_AT": "activate.boot:ran"}
        killed = apt_clone(pristine, "-y", "-a", "rootfs-nmu-002", env=kill_at)
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        assert _esp_files(esp)["EFI/debian/grubx64.efi"] == b"stand-in grub 1.1\n"  # it ran, the step not recorded
        ok(apt_clone(pristine, "recover"))
        assert (_esp_files(esp), _tree_files(os.path.join(home, "x86_64-efi"))) == before
        assert leftovers(pristine) == []
        out = ok(apt_clone(pristine, "-y", "-a", "rootfs-nmu-002")).stdout
        assert "installed the boot loader upgraded in 'rootfs-nmu-002' (grub-efi-ac)" in out, out
        assert _esp_files(esp)["EFI/debian/grubx64.efi"] == b"stand-in grub 1.1\n"
        assert _esp_files(esp)["EFI/debian/shimx64.efi"] == b"stand-in shim 1.1\n"
        assert Path(home, "x86_64-efi/version").read_text() == "1.1\n"  # GRUB's home, not the clone's copy
        assert zfs_get(f"{pristine.container}/rootfs-nmu-002", "org.aptclone:efi-update") == "-"
    finally:
        subprocess.run(["umount", esp], check=False)
        shutil.rmtree(os.path.join(home, "x86_64-efi"), ignore_errors=True)  # GRUB's directory is the sandbox's


def test_a_boot_loader_upgraded_in_a_clone_reaches_the_esp_when_its_trial_commits(pristine: SandboxInfo, tmp_path):
    """The trial's way: the clone boots with the ESP as it was; its healthy trial commits, and the
    activation runs the clone's own grub-install (1.1), now the running checkpoint's."""
    for name in ("vmlinuz-6.1.0-99-amd64", "initrd.img-6.1.0-99-amd64"):  # a menu entry to boot
        Path(pristine.root, "boot", name).write_text("")
    esp = mount_esp(pristine, tmp_path)
    home = os.path.join(pristine.root, "boot/grub")
    try:
        os.makedirs(os.path.join(esp, "EFI/debian"))
        Path(esp, "EFI/debian/grubx64.efi").write_text("grub 1.0\n")
        os.makedirs(os.path.join(home, "x86_64-efi"), exist_ok=True)
        Path(home, "x86_64-efi/version").write_text("1.0\n")
        deb = "/srv/apt-clone-repo/bootloader/grub-efi-ac_1.0_all.deb"
        subprocess.run(["chroot", pristine.root, "dpkg", "-i", deb], check=True, capture_output=True)
        enable_suite(pristine, "bootloader")
        before = _esp_files(esp)
        ok(apt_clone(pristine, "-y", "-s", "install", "grub-efi-ac", "--then", "reboot"))
        assert _esp_files(esp) == before  # the trial boots with the boot loader the ESP has
        subprocess.run(["umount", esp], check=True)
        reboot(pristine)
        mount_esp(pristine, tmp_path, fresh=False)
        health = config_env(tmp_path, "[trial]\nhealth = none\n")
        out = ok(apt_clone(pristine, "-y", "trial-commit", env=health)).stdout
        assert "is now the default" in out, out
        assert _esp_files(esp)["EFI/debian/grubx64.efi"] == b"stand-in grub 1.1\n"
        assert Path(home, "x86_64-efi/version").read_text() == "1.1\n"
        assert zfs_get(f"{pristine.container}/rootfs-nmu-001", "org.aptclone:efi-update") == "-"
        assert leftovers(pristine) == []
    finally:
        subprocess.run(["umount", esp], check=False)
        shutil.rmtree(os.path.join(home, "x86_64-efi"), ignore_errors=True)


def test_a_grub_pc_upgrade_in_a_clone_writes_no_disk(pristine: SandboxInfo):
    """BIOS: grub-pc's postinst in a clone would grub-install to the disks debconf names (/dev is
    bound in the chroot), giving the live boot sector a core image of the clone's. The stand-in
    grub-pc-ac 1.1 upgraded in a clone leaves its disk (a file in /dev) as it was; the clone keeps
    the package's own grub-install 1.1 and no diversion; the mark is told by the run, by check and
    by the activation, which forgets it (an undone activation puts it back)."""
    disk = Path("/dev/ac-bios-disk")
    disk.write_text("boot code of the running system\n")
    try:
        deb = "/srv/apt-clone-repo/bootloader/grub-pc-ac_1.0_all.deb"
        subprocess.run(["chroot", pristine.root, "dpkg", "-i", deb], check=True, capture_output=True)
        Path(pristine.root, "etc/grub-pc-ac.disks").write_text(f"{disk}\n")
        enable_suite(pristine, "bootloader")
        out = ok(apt_clone(pristine, "-y", "-s", "install", "grub-pc-ac", "--then", "nothing")).stdout
        assert disk.read_text() == "boot code of the running system\n"
        assert f"grub-install was held back in 'rootfs-nmu-001': {disk} keep the boot code" in out, out
        clone = f"{pristine.container}/rootfs-nmu-001"
        assert zfs_get(clone, "org.aptclone:grub-install") == str(disk)
        where = json.loads(ok(apt_clone(pristine, "--json", "mount", "rootfs-nmu-001")).stdout)["directory"]
        try:
            assert "grub-install 1.1" in Path(where, "usr/sbin/grub-install").read_text()
            assert not os.path.lexists(os.path.join(where, "usr/sbin/grub-install.apt-clone"))
            diversions = subprocess.run(
                ["dpkg-divert", "--root", where, "--list", "/usr/sbin/grub-install"], capture_output=True, text=True
            )
            assert diversions.stdout == "", diversions.stdout
        finally:
            ok(apt_clone(pristine, "umount", "rootfs-nmu-001"))
        notes = [f["text"] for f in json.loads(apt_clone(pristine, "--json", "check").stdout)["findings"]]
        assert any(n.startswith("grub-install was held back in 'rootfs-nmu-001'") for n in notes), notes
        fail_at = {"APT_CLONE_TEST_FAIL_AT": "activate.menu:before"}
        failed = apt_clone(pristine, "-y", "-a", "rootfs-nmu-001", env=fail_at)
        assert failed.returncode != 0 and "injected" in failed.stderr, failed.stderr
        assert zfs_get(clone, "org.aptclone:grub-install") == str(disk)
        out = ok(apt_clone(pristine, "-y", "-a", "rootfs-nmu-001")).stdout
        assert "once 'rootfs-nmu-001' runs, dpkg-reconfigure grub-pc installs its GRUB" in out, out
        assert zfs_get(clone, "org.aptclone:grub-install") == "-"
        assert disk.read_text() == "boot code of the running system\n"
        assert leftovers(pristine) == []
    finally:
        disk.unlink()


def test_a_dry_run_plans_and_changes_nothing(pristine: SandboxInfo):
    """--dry-run: the plan, the mode and the space from the lists apt has; no update, no lock
    taken, no journal, zfs list as before; an empty plan is "nothing"."""
    before = zfs_state(pristine)
    planned = json.loads(ok(apt_clone(pristine, "--json", "install", "ac-extra", "--dry-run")).stdout)
    assert (planned["status"], planned["mode"], planned["checkpoint"]) == ("planned", "in-place", None)
    assert [c["name"] for c in planned["plan"]["changes"]] == ["ac-extra"], planned["plan"]
    assert [e["event"] for e in planned["events"]][:2] == ["Planned", "SpaceChecked"], planned["events"]
    assert json.loads(ok(apt_clone(pristine, "--json", "-s", "upgrade", "--dry-run")).stdout)["mode"] == "clone"
    text = ok(apt_clone(pristine, "install", "ac-extra", "--dry-run")).stdout
    assert "Dry run: nothing changed (apt would run in-place)." in text, text
    nothing = json.loads(ok(apt_clone(pristine, "--json", "install", "ac-flaky", "--dry-run")).stdout)
    assert nothing["status"] == "nothing", nothing
    assert zfs_state(pristine) == before and leftovers(pristine) == []
    assert not os.path.exists(os.path.join(pristine.root, "usr/share/ac-extra"))


def test_the_fast_listing_prints_what_the_parser_prints(pristine: SandboxInfo):
    """``-l`` and its options skip typer (apt_clone.entry.listing_args): the same output and exit
    status as the parser's list command, for every form."""
    ok(apt_clone(pristine, "create", "--title", "spaces  and ü"))
    ok(apt_clone(pristine, "pin", "rootfs-nmu-001"))
    parser = "import sys; from apt_clone.cli.app import main; sys.exit(main(sys.argv[1:]))"
    for args in (
        ["-l"], ["--json", "-l"], ["list", "--names"], ["-l", "-H", "-p"],
        ["-l", "-o", "name,pinned,used", "-S", "name"], ["-l", "--json", "-o", "name,title"], ["-l", "-s", "bogus"],
    ):  # fmt: skip
        fast = apt_clone(pristine, *args)
        slow = subprocess.run(
            [sys.executable, "-c", parser, "--root", pristine.root, *args], capture_output=True, text=True
        )
        assert (fast.returncode, fast.stdout, fast.stderr) == (slow.returncode, slow.stdout, slow.stderr), args

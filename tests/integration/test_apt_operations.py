"""Transactional apt operations on the real sandbox with its local repository."""

from __future__ import annotations

import fcntl
import json
import os
import select
import signal
import subprocess
import sys

import pytest

from apt_clone import lock as aclock
from tests.helpers import (
    SandboxInfo,
    apt_clone,
    config_env,
    dpkg_status_bytes,
    enable_suite,
    installed_version,
    zfs_get,
    zfs_names,
    zfs_state,
)


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    return result


def test_install_in_place_keeps_the_old_state_in_the_clone(pristine: SandboxInfo):
    out = ok(apt_clone(pristine, "-y", "install", "ac-extra")).stdout
    assert "Creating Rollback Checkpoint..." in out and "Rollback Checkpoint has been created: rootfs-nmu-001" in out
    assert "Verifying free space..." in out and "Success. Upgrade requires" in out
    assert installed_version(pristine.root, "ac-extra") == "1.0"
    assert zfs_get(pristine.ds("rootfs-nmu-001"), "org.aptclone:kind") == "rollback"
    assert zfs_get(pristine.ds("rootfs-nmu-001"), "org.aptclone:command") == "apt-clone install ac-extra"
    show = ok(apt_clone(pristine, "show", "rootfs-nmu-001")).stdout
    assert "ac-extra" in show and "install" in show
    diff = ok(apt_clone(pristine, "diff", "rootfs-nmu-001", "rootfs-nmu-000")).stdout
    assert "ac-extra" in diff and "ac-hello" not in diff
    data = json.loads(ok(apt_clone(pristine, "--json", "show", "rootfs-nmu-001")).stdout)
    assert data["changes"] == [["ac-extra", None, "1.0", "install"]]


def test_in_place_the_family_read_under_the_lock_serves_every_step(pristine: SandboxInfo):
    """In place, nothing but the run changes the running root's records until the menu: the
    metadata step and the menu take them from the snapshot step's read (issue #36: no ZFS read
    twice), and the menu still gets the new checkpoint's entry and the running root's."""
    ok(apt_clone(pristine, "create"))  # the menu written once whole: from here on, entries are edited
    got = ok(apt_clone(pristine, "-y", "install", "ac-extra", env={"APT_CLONE_TRACE": "1"}))
    ran = [line.split("] ", 1)[1] for line in got.stderr.splitlines() if line.startswith("[") and "] zfs " in line]
    cloned = max(i for i, c in enumerate(ran) if c.startswith("zfs clone "))
    assert not [c for c in ran[cloned:] if c.startswith(("zfs get ", "zfs list "))], ran[cloned:]
    # The space checks' read ran beside the plan; the snapshot step's first read (its filesystems,
    # the records and the next name) beside the download: -y, nobody is asked anything in between.
    snapped = min(i for i, c in enumerate(ran) if c.startswith("zfs snapshot "))
    ahead = [c.removesuffix(" (read ahead)") for c in ran[:snapped] if c.endswith(" (read ahead)")]
    assert sorted(c.split()[1] for c in ahead) == ["get", "get", "list"], ran[:snapped]
    assert [c for c in ahead if c.endswith(f" {pristine.pool}/ROOT")] == [ahead[0]], ahead  # no boot pool here
    assert [c for c in ahead if c.endswith("rootfs-nmu-000@nmu-002")], ahead  # the next name
    with open(os.path.join(pristine.directory, "grub", "apt-clone.cfg")) as f:
        menu = f.read()
    assert "# checkpoint rootfs-nmu-002\n" in menu and "# checkpoint rootfs-nmu-001\n" in menu
    assert installed_version(pristine.root, "ac-extra") == "1.0"


def test_a_kernel_removed_in_place_leaves_the_running_roots_menu_entry(pristine: SandboxInfo, tmp_path):
    """The running root's entry, edited from the records in hand, names the kernels apt left in
    its /boot (the metadata step's record of them), not those of before."""
    from tests.helpers import reboot

    kernel = "9.9.9-ac"
    ok(apt_clone(pristine, "-y", "install", f"linux-image-{kernel}"))  # into a clone: a new kernel
    ok(apt_clone(pristine, "-y", "-a", "rootfs-nmu-001"))
    reboot(pristine)  # the running root has it, and records it
    assert zfs_get(pristine.ds("rootfs-nmu-001"), "org.aptclone:kernels") == kernel
    env = config_env(tmp_path, "[reboot]\nscripts = no\npackages =\n")  # its removal: in place
    out = ok(apt_clone(pristine, "-y", "remove", f"linux-image-{kernel}", env=env)).stdout
    assert "Creating Rollback Checkpoint..." in out, out
    assert zfs_get(pristine.ds("rootfs-nmu-001"), "org.aptclone:kernels") == "-"
    with open(os.path.join(pristine.directory, "grub", "apt-clone.cfg")) as f:
        menu = f.read()
    running = menu.split("# checkpoint rootfs-nmu-001\n", 1)[1].split("# checkpoint ", 1)[0]
    assert f"vmlinuz-{kernel}" not in running, menu
    before = menu.split("# checkpoint rootfs-nmu-002\n", 1)[1].split("# checkpoint ", 1)[0]
    assert f"/boot/vmlinuz-{kernel}" in before, menu  # the checkpoint of before the removal keeps it


def test_remove_and_upgrade_in_place(pristine: SandboxInfo):
    ok(apt_clone(pristine, "-y", "remove", "ac-flaky"))
    assert installed_version(pristine.root, "ac-flaky") is None
    ok(apt_clone(pristine, "-y", "--json", "upgrade"))
    assert installed_version(pristine.root, "ac-hello") == "1.1"
    names = [
        n.rsplit("/", 1)[1] for n in zfs_names(pristine) if n.startswith(pristine.container + "/") and "@" not in n
    ]
    assert names == ["rootfs-nmu-000", "rootfs-nmu-001", "rootfs-nmu-002"]


def test_dist_upgrade_in_the_clone_leaves_the_running_root_alone(pristine: SandboxInfo):
    status = dpkg_status_bytes(pristine.root)
    out = ok(apt_clone(pristine, "-y", "-s", "dist-upgrade")).stdout
    assert "Creating Upgrade Checkpoint..." in out and "Activate upgrade command: 'apt-clone -a rootfs-nmu-001'" in out
    assert "Rollback changes command: 'apt-clone -r rootfs-nmu-001'" in out
    assert dpkg_status_bytes(pristine.root) == status
    assert zfs_get(pristine.ds("rootfs-nmu-001"), "org.aptclone:kind") == "upgrade"
    diff = ok(apt_clone(pristine, "diff", "rootfs-nmu-000", "rootfs-nmu-001")).stdout
    assert "ac-hello" in diff and "1.0" in diff and "1.1" in diff
    # no mount is left behind and the clone's mountpoint is as it was
    assert zfs_get(pristine.ds("rootfs-nmu-001"), "mounted") == "no"
    assert zfs_get(pristine.ds("rootfs-nmu-001"), "mountpoint") == pristine.root
    with open("/proc/self/mountinfo") as f:
        assert "/run/apt-clone/" not in f.read()


def test_the_config_file_sets_the_mode_and_what_follows_an_upgrade(pristine: SandboxInfo, tmp_path):
    """[apt] mode = clone makes an Upgrade Checkpoint without -s; then = activate follows it."""
    from tests.helpers import bootfs

    status = dpkg_status_bytes(pristine.root)
    env = config_env(tmp_path, "[apt]\nmode = clone\nthen = activate\nupdate = no\n")
    out = ok(apt_clone(pristine, "-y", "dist-upgrade", env=env)).stdout
    assert "Creating Upgrade Checkpoint..." in out and "Updating APT sources" not in out
    assert dpkg_status_bytes(pristine.root) == status
    assert bootfs(pristine) == pristine.ds("rootfs-nmu-001")
    bad = apt_clone(pristine, "-y", "dist-upgrade", env=config_env(tmp_path, "[apt]\nmode = sometimes\n"))
    assert bad.returncode == 2 and bad.stderr.strip().endswith("apt.mode = 'sometimes': one of auto, clone")
    assert len(bad.stderr.strip().splitlines()) == 1


def test_install_and_remove_in_the_clone(pristine: SandboxInfo):
    status = dpkg_status_bytes(pristine.root)
    ok(apt_clone(pristine, "-y", "install", "-s", "ac-extra"))
    ok(apt_clone(pristine, "-y", "-s", "remove", "ac-flaky"))
    assert dpkg_status_bytes(pristine.root) == status
    changes = json.loads(ok(apt_clone(pristine, "--json", "show", "rootfs-nmu-002")).stdout)["changes"]
    assert changes == [["ac-flaky", "1.0", None, "remove"]]


def test_activate_after_clone_upgrade_and_boot_it(pristine: SandboxInfo):
    ok(apt_clone(pristine, "-y", "-s", "dist-upgrade", "--then", "activate"))
    assert zfs_get(pristine.pool, "name") == pristine.pool
    from tests.helpers import bootfs, reboot

    assert bootfs(pristine) == pristine.ds("rootfs-nmu-001")
    reboot(pristine)
    assert installed_version(pristine.root, "ac-hello") == "1.1"


def test_then_reboot_boots_the_checkpoint_once(pristine: SandboxInfo):
    from tests.helpers import bootfs, reboot

    out = ok(apt_clone(pristine, "-y", "-s", "dist-upgrade", "--then", "reboot")).stdout
    assert "Next boot only" in out and "Not rebooting" in out
    assert bootfs(pristine) == pristine.first  # the default did not move
    reboot(pristine)
    lines = ok(apt_clone(pristine, "-l")).stdout.splitlines()
    assert lines[1].startswith("o   rootfs-nmu-000") and lines[2].startswith("  o rootfs-nmu-001")  # seed, Example 2
    reboot(pristine)  # the one-time boot is spent: back to the default
    assert ok(apt_clone(pristine, "-l")).stdout.splitlines()[1].startswith("o o rootfs-nmu-000")


@pytest.mark.parametrize("mode", [[], ["-s"]])
def test_failing_postinst_is_rolled_back(pristine: SandboxInfo, mode):
    enable_suite(pristine, "unstable")
    before = zfs_state(pristine)
    status = dpkg_status_bytes(pristine.root)
    result = apt_clone(pristine, "-y", *mode, "dist-upgrade")
    assert result.returncode == 1
    assert "Upgrade failed" in result.stdout and "All upgrade changes now rolled back." in result.stdout
    assert result.stderr.strip().splitlines()[-1].startswith("apt-clone: upgrade failed")
    assert zfs_state(pristine) == before
    assert dpkg_status_bytes(pristine.root) == status
    assert installed_version(pristine.root, "ac-flaky") == "1.0"


def test_failure_kept_when_the_answer_is_no(pristine: SandboxInfo):
    """No terminal and no -y for the rollback question: everything is kept, the commands are printed."""
    enable_suite(pristine, "unstable")
    before = zfs_state(pristine)
    # -y answers the first questions; the rollback question gets no terminal: kept.
    code = (
        "import sys; from apt_clone.cli import app, prompts;"
        "calls = []\n"
        "orig = prompts.confirm\n"
        "def fake(msg, yes):\n"
        "    return not msg.startswith('Upgrade failed') and orig(msg, yes=yes)\n"
        "prompts.confirm = fake\n"
        f"sys.exit(app.main(['--root', {pristine.root!r}, '-y', '-s', 'dist-upgrade']))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 1
    assert "Rollback changes command: 'apt-clone recover'" in result.stdout
    assert pristine.ds("rootfs-nmu-001") in zfs_names(pristine)
    # until then, other changes wait for it
    blocked = apt_clone(pristine, "-y", "create")
    assert blocked.returncode == 3 and "apt-clone recover" in blocked.stderr
    ok(apt_clone(pristine, "recover"))
    assert zfs_state(pristine) == before


def test_refusals_happen_before_any_snapshot(pristine: SandboxInfo):
    before = zfs_state(pristine)
    result = apt_clone(pristine, "-y", "install", "no-such-package")
    assert result.returncode == 2 and "unknown package 'no-such-package'" in result.stderr
    result = apt_clone(pristine, "-y", "install", "ac-huge")
    assert result.returncode == 3 and "not enough free space" in result.stderr
    result = apt_clone(pristine, "-y", "remove", "ac-extra")
    assert result.returncode == 2 and "is not installed" in result.stderr
    result = apt_clone(pristine, "-y", "install", "Bad;name")
    assert result.returncode == 2 and "bad package name" in result.stderr
    result = apt_clone(pristine, "-y", "dist-upgrade", "--then", "dance")
    assert result.returncode == 2
    for r in (result,):
        assert "Traceback" not in r.stderr
    assert zfs_state(pristine) == before


def test_nothing_to_do_makes_no_checkpoint(pristine: SandboxInfo):
    ok(apt_clone(pristine, "-y", "install", "ac-hello"))
    before = zfs_state(pristine)
    out = ok(apt_clone(pristine, "-y", "install", "--no-update", "ac-hello")).stdout
    assert "Nothing to do" in out
    assert zfs_state(pristine) == before


def test_interrupted_dpkg_is_refused(pristine: SandboxInfo):
    updates = os.path.join(pristine.root, "var/lib/dpkg/updates/0001")
    with open(updates, "w") as f:
        f.write("")
    try:
        before = zfs_state(pristine)
        result = apt_clone(pristine, "-y", "dist-upgrade", "--no-update")
        assert result.returncode == 3 and "dpkg was interrupted" in result.stderr
        assert zfs_state(pristine) == before
    finally:
        os.unlink(updates)


def test_held_dpkg_lock_is_refused_naming_the_holder(pristine: SandboxInfo):
    path = os.path.join(pristine.root, "var/lib/dpkg/lock-frontend")
    with open(path, "a") as f:
        fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        before = zfs_state(pristine)
        result = apt_clone(pristine, "-y", "dist-upgrade")
    assert result.returncode == 3 and f"held by pid {os.getpid()}" in result.stderr
    assert zfs_state(pristine) == before


def test_second_concurrent_run_fails_at_once(pristine: SandboxInfo):
    with aclock.exclusive("apt-clone test holder"):
        result = apt_clone(pristine, "-y", "create")
    assert result.returncode == 3
    assert f"pid {os.getpid()}" in result.stderr and "apt-clone test holder" in result.stderr


def test_apt_hooks_see_the_guard_variable(pristine: SandboxInfo):
    hook = os.path.join(pristine.root, "etc/apt/apt.conf.d/99-guard-probe")
    with open(hook, "w") as f:
        f.write('DPkg::Pre-Invoke { "echo guard=${APT_CLONE_ACTIVE:-unset} > /var/tmp/guard-probe"; };\n')
    ok(apt_clone(pristine, "-y", "install", "ac-extra"))
    with open(os.path.join(pristine.root, "var/tmp/guard-probe")) as f:
        assert f.read().strip() == "guard=1"


def test_sigint_during_apt_rolls_back(pristine: SandboxInfo):
    """ac-slow's postinst says it is running through a FIFO, then blocks: interrupt it there."""
    ready, go = "/dev/ac-slow.ready", "/dev/ac-slow.go"
    os.mkfifo(ready)
    os.mkfifo(go)
    before = zfs_state(pristine)
    status = dpkg_status_bytes(pristine.root)
    proc = subprocess.Popen(
        [sys.executable, "-m", "apt_clone", "--root", pristine.root, "-y", "install", "ac-slow"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    fd = os.open(ready, os.O_RDONLY | os.O_NONBLOCK)
    try:
        # Wait (bounded) for the postinst to announce itself: an event, not a sleep.
        while True:
            readable, _, _ = select.select([fd], [], [], 120)
            assert readable, "the postinst never started"
            data = os.read(fd, 100)
            if data:
                break
            assert proc.poll() is None, proc.communicate()
    finally:
        os.close(fd)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, out + err
    assert "All upgrade changes now rolled back." in out
    os.unlink(ready)
    os.unlink(go)
    assert zfs_state(pristine) == before
    assert dpkg_status_bytes(pristine.root) == status


def test_reboot_needing_upgrade_goes_to_the_clone(pristine: SandboxInfo):
    enable_suite(pristine, "reboot")
    status = dpkg_status_bytes(pristine.root)
    out = ok(apt_clone(pristine, "-y", "dist-upgrade")).stdout
    assert "This upgrade will require REBOOT (ac-kernel)" in out
    assert "Creating Upgrade Checkpoint..." in out
    assert dpkg_status_bytes(pristine.root) == status
    assert installed_version(pristine.root, "ac-kernel") == "1.0"
    assert "reboot required" in zfs_get(pristine.ds("rootfs-nmu-001"), "org.aptclone:summary")
    show = ok(apt_clone(pristine, "show", "rootfs-nmu-001")).stdout
    assert "Reboot:     ac-kernel (its maintainer script asks for a reboot)" in show


def test_one_python_apt_process_plans_downloads_and_scans(pristine: SandboxInfo):
    """The planning child downloads and scans what it planned (issue #36): one child for the
    three, no scanning child; the maintainer script asking for a reboot is still found."""
    enable_suite(pristine, "reboot")
    got = ok(apt_clone(pristine, "-y", "install", "ac-kernel", env={"APT_CLONE_TRACE": "1"}))
    traced = [line for line in got.stderr.splitlines() if line.startswith("[")]
    assert len([line for line in traced if "apt_clone.apt.child session" in line]) == 1, traced
    assert not [line for line in traced if "apt_clone.apt.child scan" in line or "child plan" in line], traced
    assert " rc=0 @" in next(line for line in traced if "child session" in line)  # ended, never killed
    assert "This upgrade will require REBOOT (ac-kernel)" in got.stdout
    assert installed_version(pristine.root, "ac-kernel") == "1.0"  # into the clone
    # The child leaves without tearing python-apt down: nothing of it (apt's methods) is left in the root.
    assert _running_in(pristine.root) == []


def _running_in(root: str) -> list[str]:
    """The processes whose root directory is ``root``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.readlink(f"/proc/{pid}/root") == os.path.realpath(root):
                found.append(pid)
        except OSError:
            continue  # gone meanwhile, or a kernel thread
    return found


def test_a_refusal_ends_the_planning_child_started_ahead(pristine: SandboxInfo):
    """The planning child starts before the engine's modules load (issue #36); a request refused
    before any plan ends it, and nothing of it is left running."""
    before = zfs_state(pristine)
    got = apt_clone(pristine, "-y", "install", "bad_name", env={"APT_CLONE_TRACE": "1"})
    assert got.returncode == 2 and got.stderr.count("\n") >= 1
    ended = [line for line in got.stderr.splitlines() if line.startswith("[") and "child session" in line]
    assert len(ended) == 1 and " rc=0 @" in ended[0], got.stderr
    left = subprocess.run(["pgrep", "-f", "apt_clone.apt.child session"], capture_output=True, text=True)
    assert left.stdout == ""
    assert zfs_state(pristine) == before


def test_reboot_detection_follows_the_config(pristine: SandboxInfo, tmp_path):
    """[reboot] scripts = no ignores maintainer scripts; a package named in [reboot] packages
    needs a reboot when it is upgraded."""
    enable_suite(pristine, "reboot")
    env = config_env(tmp_path, "[reboot]\nscripts = no\npackages = ac-hello\n")
    out = ok(apt_clone(pristine, "-y", "dist-upgrade", env=env)).stdout
    assert "This upgrade will require REBOOT (ac-hello)" in out and "Creating Upgrade Checkpoint..." in out
    show = ok(apt_clone(pristine, "show", "rootfs-nmu-001")).stdout
    assert "Reboot:     ac-hello (upgrade: only a reboot replaces it)" in show


def test_what_apt_did_otherwise_than_planned_is_recorded_after_it(pristine: SandboxInfo, tmp_path):
    """The plan's changes go with the clone; what apt did otherwise (here a maintainer script
    asking for a reboot during an in-place upgrade: [reboot] scripts = no looked away before)
    is written after apt."""
    enable_suite(pristine, "reboot")
    env = config_env(tmp_path, "[reboot]\nscripts = no\n")
    out = ok(apt_clone(pristine, "-y", "upgrade", env=env)).stdout
    assert "Creating Rollback Checkpoint..." in out and installed_version(pristine.root, "ac-kernel") == "1.1"
    assert (
        zfs_get(pristine.ds("rootfs-nmu-001"), "org.aptclone:summary")
        == "2 upgraded, 0 installed, 0 removed, reboot required"
    )
    assert (
        zfs_get(pristine.ds("rootfs-nmu-001"), "org.aptclone:reboot") == "a maintainer script asked for it during apt"
    )
    shown = json.loads(ok(apt_clone(pristine, "--json", "show", "rootfs-nmu-001")).stdout)
    assert [r[0] for r in shown["changes"]] == ["ac-hello", "ac-kernel"]


def test_a_file_source_inside_an_offline_root_is_read_from_inside_it(pristine: SandboxInfo):
    """--root DIR with a file: apt source (a repository inside the image): the plan finds its
    packages, as apt-get inside DIR does."""
    listing = os.path.join(pristine.root, "etc/apt/sources.list.d/apt-clone-sandbox-reboot-file.list")
    with open(listing, "w") as f:
        f.write("deb [trusted=yes] file:/srv/apt-clone-repo/reboot ./\n")
    assert not os.path.exists("/srv/apt-clone-repo/reboot")  # only inside the root
    out = ok(apt_clone(pristine, "-y", "-s", "dist-upgrade")).stdout
    assert "This upgrade will require REBOOT (ac-kernel)" in out
    assert "ac-kernel" in ok(apt_clone(pristine, "diff", "rootfs-nmu-000", "rootfs-nmu-001")).stdout


def test_real_debian_packages_without_a_reboot_only_package_install_in_place(pristine: SandboxInfo):
    """The seed's Example #3 on real packages from the Debian archive: openssl and libssl, new,
    need no reboot, so the change is made in place under a Rollback Checkpoint."""
    keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
    inside = os.path.join(pristine.root, keyring.lstrip("/"))
    os.makedirs(os.path.dirname(inside), exist_ok=True)
    if not os.path.exists(inside):
        with open(keyring, "rb") as src, open(inside, "wb") as dst:
            dst.write(src.read())
    with open(os.path.join(pristine.root, "etc/apt/sources.list.d/debian.list"), "w") as f:
        f.write(f"deb [signed-by={keyring}] http://deb.debian.org/debian bookworm main\n")
    out = ok(apt_clone(pristine, "-y", "install", "openssl")).stdout
    assert "REBOOT" not in out and "Creating Rollback Checkpoint..." in out
    assert installed_version(pristine.root, "openssl") is not None
    assert installed_version(pristine.root, "libssl3") is not None
    assert "Reboot:" not in ok(apt_clone(pristine, "show", "rootfs-nmu-001")).stdout


def test_a_kernel_installed_in_the_clone_gets_its_initramfs_and_menu_entry(pristine: SandboxInfo):
    from tests.helpers import reboot

    kernel = "9.9.9-ac"
    out = ok(apt_clone(pristine, "-y", "install", f"linux-image-{kernel}")).stdout
    assert "Creating Upgrade Checkpoint..." in out  # a kernel asks for a reboot: it goes to the clone
    assert f"made the initramfs of kernel {kernel} in the clone (update-initramfs -c)" in out
    clone = pristine.ds("rootfs-nmu-001")
    assert zfs_get(clone, "org.aptclone:kernels") == kernel
    assert not os.path.exists(os.path.join(pristine.root, f"boot/vmlinuz-{kernel}"))  # the running root: untouched
    with open(os.path.join(pristine.directory, "grub", "apt-clone.cfg")) as f:
        menu = f.read()
    assert f"/boot/vmlinuz-{kernel}" in menu and f"/boot/initrd.img-{kernel}" in menu
    ok(apt_clone(pristine, "-y", "-a", "rootfs-nmu-001"))
    reboot(pristine)
    initrd = os.path.join(pristine.root, f"boot/initrd.img-{kernel}")
    listing = subprocess.run(
        ["chroot", pristine.root, "lsinitramfs", f"/boot/initrd.img-{kernel}"], capture_output=True, text=True
    )
    assert os.path.getsize(initrd) > 0 and listing.returncode == 0, listing.stderr
    assert "init" in listing.stdout.split()  # a real initramfs, made by mkinitramfs in the clone


def _conffile_package(suite: str, version: str) -> None:
    """ac-conf VERSION, whose /etc/ac-conf.conf is a conffile that says its version."""
    tree = os.path.join(suite, f"tree-{version}")
    os.makedirs(os.path.join(tree, "DEBIAN"))
    os.makedirs(os.path.join(tree, "etc"))
    with open(os.path.join(tree, "etc/ac-conf.conf"), "w") as f:
        f.write(f"shipped {version}\n")
    with open(os.path.join(tree, "DEBIAN/conffiles"), "w") as f:
        f.write("/etc/ac-conf.conf\n")
    with open(os.path.join(tree, "DEBIAN/control"), "w") as f:
        f.write(f"Package: ac-conf\nVersion: {version}\nArchitecture: all\nMaintainer: t <t@t.invalid>\n"
                "Description: a conffile that changes\n")  # fmt: skip
    deb = os.path.join(suite, f"ac-conf_{version}_all.deb")
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", tree, deb], check=True, capture_output=True)


@pytest.mark.parametrize("conffiles", ["keep", "new", "ask"])
def test_a_conffile_changed_here_and_in_the_package_follows_the_setting(pristine: SandboxInfo, tmp_path, conffiles):
    """With -y (no person to answer dpkg): [apt] conffiles keeps the admin's file, takes the
    package's, or lets dpkg ask, which with nobody to answer fails and is rolled back."""
    from tests.sandbox.repo import index

    suite = os.path.join(pristine.root, "srv/ac-conf")
    os.makedirs(suite)
    _conffile_package(suite, "1.0")
    subprocess.run(["chroot", pristine.root, "dpkg", "-i", "/srv/ac-conf/ac-conf_1.0_all.deb"], check=True,
                   capture_output=True)  # fmt: skip
    _conffile_package(suite, "1.1")
    os.unlink(os.path.join(suite, "ac-conf_1.0_all.deb"))
    index(suite)
    with open(os.path.join(pristine.root, "etc/apt/sources.list.d/ac-conf.list"), "w") as f:
        f.write("deb [trusted=yes] copy:/srv/ac-conf ./\n")
    conf = os.path.join(pristine.root, "etc/ac-conf.conf")
    with open(conf, "w") as f:
        f.write("mine\n")
    env = config_env(tmp_path, f"[apt]\nconffiles = {conffiles}\n")
    before = zfs_state(pristine)
    got = apt_clone(pristine, "-y", "install", "ac-conf", env=env)
    if conffiles == "ask":
        assert got.returncode != 0, got.stdout[-2000:]
        assert "conffile" in (got.stdout + got.stderr), got.stdout[-2000:] + got.stderr
        assert installed_version(pristine.root, "ac-conf") == "1.0" and zfs_state(pristine) == before
        return
    ok(got)
    assert installed_version(pristine.root, "ac-conf") == "1.1"
    with open(conf) as f:
        assert f.read() == ("mine\n" if conffiles == "keep" else "shipped 1.1\n")
    kept = conf + (".dpkg-dist" if conffiles == "keep" else ".dpkg-old")
    with open(kept) as f:
        assert f.read() == ("shipped 1.1\n" if conffiles == "keep" else "mine\n")

"""The APT hook as shipped: the .deb installed by apt in a Debian 13 root, real apt-get, dpkg
and unattended-upgrades, run as on a host booted from that root (tests.sandbox.host)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from apt_clone import readahead
from apt_clone.paths import run_dir
from tests.package.conftest import KERNEL, Host
from tests.sandbox.repo import enable_suite

HOOK_LINE = "apt-clone: Rollback Checkpoint "


def listing(h: Host) -> list[dict]:  # type: ignore[type-arg]
    got = h.run("apt-clone", "--json", "-l")
    assert got.returncode == 0, got.stderr
    return json.loads(got.stdout)


def names(h: Host) -> list[str]:
    return [cp["name"] for cp in listing(h)]


def version_of(h: Host, package: str) -> str | None:
    got = h.run("dpkg-query", "-W", "-f", "${Status} ${Version}", package)
    words = got.stdout.split()
    return words[-1] if got.returncode == 0 and "installed" in words[:3] else None


def zfs_names(h: Host) -> list[str]:
    out = subprocess.run(["zfs", "list", "-H", "-t", "all", "-o", "name"], capture_output=True, text=True, check=True)
    return sorted(n for n in out.stdout.split() if n.split("/")[0] in (h.pool, h.bpool))


def set_config(h: Host, text: str) -> None:
    Path(h.root, "etc/apt-clone/apt-clone.conf").write_text(text)


def test_apt_get_install_leaves_one_titled_checkpoint_with_its_changes(booted):
    h = booted
    before = names(h)
    got = h.apt_get("install", "ac-extra")
    assert got.returncode == 0, got.stdout[-2000:] + got.stderr[-2000:]
    assert version_of(h, "ac-extra")
    assert got.stderr.count(HOOK_LINE) == 1, got.stderr
    cps = listing(h)
    new = [cp for cp in cps if cp["name"] not in before]
    assert len(new) == 1, cps
    cp = new[0]
    assert cp["kind"] == "automatic"
    assert cp["title"].startswith("apt-get -q -y -o Dpkg::Use-Pty=0 install ac-extra: "), cp["title"]
    assert "installed" in cp["title"]
    shown = h.run("apt-clone", "--json", "show", cp["name"])
    assert shown.returncode == 0, shown.stderr
    changes = {row[0]: row for row in json.loads(shown.stdout)["changes"]}
    assert "ac-extra" in changes and changes["ac-extra"][1] is None, changes
    assert json.loads(shown.stdout)["checkpoint"]["summary"].endswith("installed, 0 removed")
    # dpkg did what was planned: the post's fast path (sh, dpkg-query) noted the end, no Python.
    assert Path(run_dir(), "hook-done").exists() and Path(run_dir(), "hook-expect").read_text() == "-\n"

    # The same again changes nothing: dpkg does not run, no checkpoint.
    again = h.apt_get("install", "ac-extra")
    assert again.returncode == 0 and HOOK_LINE not in again.stderr
    assert names(h) == [c["name"] for c in cps]


def test_the_next_hooked_run_reads_its_family_ahead_under_the_lock(booted):
    """A hooked run leaves its successor's first read in the run directory; the next hook-pre
    takes the lock and starts it before its modules load (issue #36), and the read that asks for
    it takes its result: the next checkpoint, as without it."""
    h = booted
    first = h.apt_get("install", "ac-hello")
    assert first.returncode == 0 and first.stderr.count(HOOK_LINE) == 1, first.stderr
    assert Path(run_dir(), readahead.FILE).exists()
    second = h.apt_get("install", "ac-extra", env={"APT_CLONE_TRACE": "1"})
    assert second.returncode == 0 and second.stderr.count(HOOK_LINE) == 1, second.stderr
    ran = [line.split("] ", 1)[1] for line in second.stderr.splitlines() if line.startswith("[") and "] zfs " in line]
    assert all(c.endswith(" (read ahead)") for c in ran[:2]), ran
    assert not any(c.endswith(" (read ahead)") for c in ran[2:]), ran  # one read: then the snapshots
    assert ran[2].startswith("zfs snapshot "), ran
    assert names(h) == ["rootfs-nmu-000", "rootfs-nmu-001", "rootfs-nmu-002"]
    # Its GRUB entry (the host has a kernel) checked beside the clones, not after them.
    checks = [line for line in second.stderr.splitlines() if line.startswith("[") and "] grub-script-check " in line]
    assert len(checks) == 1 and checks[0].endswith(".ahead"), checks
    menu = Path(h.root, "boot/grub/apt-clone.cfg").read_text()
    assert "# checkpoint rootfs-nmu-002\n" in menu and f"vmlinuz-{KERNEL}" in menu.split("rootfs-nmu-002\n", 1)[1]


def test_rolling_back_to_a_hook_checkpoint_gives_the_dpkg_status_from_before(booted):
    h = booted
    status_before = Path(h.root, "var/lib/dpkg/status").read_bytes()
    hello_before = version_of(h, "ac-hello")
    got = h.apt_get("install", "ac-extra", "ac-hello")
    assert got.returncode == 0, got.stderr[-2000:]
    assert version_of(h, "ac-hello") != hello_before
    (cp,) = [c for c in listing(h) if c["kind"] == "automatic"]
    back = subprocess.run(
        [os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), ".venv/bin/python"),
         "-m", "apt_clone", "--root", h.root, "-y", "rollback", cp["name"]],
        capture_output=True, text=True,
    )  # fmt: skip
    assert back.returncode == 0, back.stderr
    assert Path(h.root, "var/lib/dpkg/status").read_bytes() == status_before
    assert version_of(h, "ac-hello") == hello_before and version_of(h, "ac-extra") is None


def test_apt_run_by_apt_clone_makes_only_apt_clones_checkpoint(booted):
    h = booted
    before = names(h)
    got = h.run("apt-clone", "-y", "install", "ac-extra", "--no-update")
    assert got.returncode == 0, got.stdout[-2000:] + got.stderr[-2000:]
    new = [cp for cp in listing(h) if cp["name"] not in before]
    assert [cp["kind"] for cp in new] == ["rollback"], new
    assert HOOK_LINE not in got.stdout + got.stderr


def test_apt_in_a_chroot_of_another_root_makes_none(booted):
    h = booted
    other = f"{h.pool}/other"
    snap = f"{h.container}/rootfs-nmu-000@other-root"
    where = os.path.join(h.root, "mnt/other")
    subprocess.run(["zfs", "snapshot", snap], check=True)
    try:
        subprocess.run(["zfs", "clone", "-o", f"mountpoint={where}", snap, other], check=True)
        subprocess.run(["mount", "-t", "proc", "proc", os.path.join(where, "proc")], check=True)
        before = zfs_names(h)
        got = h.run("chroot", "/mnt/other", "apt-get", "-q", "-y", "install", "ac-extra")
        assert got.returncode == 0, got.stdout[-2000:] + got.stderr[-2000:]
        assert "Setting up ac-extra" in got.stdout
        assert HOOK_LINE not in got.stderr and "no checkpoint" not in got.stderr, got.stderr
        assert zfs_names(h) == before
    finally:
        subprocess.run(["umount", os.path.join(where, "proc")], check=False)
        subprocess.run(["zfs", "destroy", "-r", other], check=False)
        subprocess.run(["zfs", "destroy", snap], check=False)


def test_an_unattended_upgrades_run_makes_one_checkpoint(booted):
    h = booted
    Path(h.root, "etc/apt/apt.conf.d/51apt-clone-test").write_text(
        'Unattended-Upgrade::Origins-Pattern { "origin=*"; };\nUnattended-Upgrade::MinimalSteps "true";\n'
    )
    try:
        before = names(h)
        got = h.run("unattended-upgrade", "-v")
        assert got.returncode == 0, got.stdout[-2000:] + got.stderr[-2000:]
        assert version_of(h, "ac-hello") == "1.1", got.stdout[-2000:]
        new = [cp for cp in listing(h) if cp["name"] not in before]
        assert len(new) == 1, new
        assert new[0]["title"].startswith("unattended-upgrade"), new[0]["title"]
        shown = json.loads(h.run("apt-clone", "--json", "show", new[0]["name"]).stdout)
        assert [r[0] for r in shown["changes"]] == ["ac-hello"] or "ac-hello" in [r[0] for r in shown["changes"]]
    finally:
        os.unlink(os.path.join(h.root, "etc/apt/apt.conf.d/51apt-clone-test"))


def _fill(directory: str) -> str:
    path = os.path.join(directory, "filler")
    chunk = b"\0x" * (1 << 19)
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                f.write(os.urandom(len(chunk)))
        except OSError:
            pass
    return path


def test_a_full_boot_pool_lets_apt_go_on_and_required_stops_it(booted):
    h = booted
    filler = _fill(os.path.join(h.root, "boot"))
    try:
        before = zfs_names(h)
        got = h.apt_get("install", "ac-extra")
        assert got.returncode == 0, got.stdout[-2000:] + got.stderr[-2000:]
        lines = [line for line in got.stderr.splitlines() if line.startswith("apt-clone:")]
        assert len(lines) == 1 and lines[0].startswith("apt-clone: no checkpoint: "), got.stderr
        assert version_of(h, "ac-extra")
        assert zfs_names(h) == before  # what the hook began is undone
        h.apt_get("remove", "ac-extra")

        set_config(h, "[hook]\nrequired = yes\n")
        before = zfs_names(h)
        stopped = h.apt_get("install", "ac-extra")
        assert stopped.returncode != 0
        assert "apt stops before dpkg ([hook] required = yes)" in stopped.stderr, stopped.stderr
        assert version_of(h, "ac-extra") is None
        assert zfs_names(h) == before
    finally:
        os.unlink(filler)


def test_the_hook_off_in_the_config_makes_none(booted):
    h = booted
    set_config(h, "[hook]\nenabled = no\n")
    before = names(h)
    got = h.apt_get("install", "ac-extra")
    assert got.returncode == 0 and "apt-clone:" not in got.stderr, got.stderr
    assert names(h) == before


def test_back_to_back_runs_merge_into_one_checkpoint_naming_both(booted):
    h = booted
    set_config(h, "[hook]\nmerge = 600\n")
    before = names(h)
    first = h.apt_get("install", "ac-hello")
    second = h.apt_get("install", "ac-extra")
    assert first.returncode == 0 and second.returncode == 0, second.stderr
    assert "joins checkpoint" in second.stderr, second.stderr
    new = [cp for cp in listing(h) if cp["name"] not in before]
    assert len(new) == 1, new
    assert "install ac-hello" in new[0]["title"] and "install ac-extra" in new[0]["title"], new[0]["title"]
    shown = json.loads(h.run("apt-clone", "--json", "show", new[0]["name"]).stdout)
    assert {"ac-hello", "ac-extra"} <= {r[0] for r in shown["changes"]}


def test_what_dpkg_did_otherwise_than_planned_is_recorded_after_it(booted):
    """A maintainer script asking for a reboot, a postinst failing: the post's fast path hands
    the record to apt-clone, which writes what dpkg did."""
    h = booted
    enable_suite(h.root, "reboot")
    enable_suite(h.root, "unstable")
    assert h.apt_get("update").returncode == 0
    before = names(h)
    got = h.apt_get("install", "ac-kernel")
    assert got.returncode == 0 and got.stderr.count(HOOK_LINE) == 1, got.stderr
    (new,) = [cp for cp in listing(h) if cp["name"] not in before]
    shown = json.loads(h.run("apt-clone", "--json", "show", new["name"]).stdout)
    assert shown["reboot"] == "a maintainer script asked for it", shown
    assert not Path(run_dir(), "hook-done").exists()  # recorded by apt-clone hook-post, not the fast path

    before = names(h)
    failed = h.apt_get("install", "ac-flaky")
    assert failed.returncode != 0 and failed.stderr.count(HOOK_LINE) == 1, failed.stderr
    (new,) = [cp for cp in listing(h) if cp["name"] not in before]
    shown = json.loads(h.run("apt-clone", "--json", "show", new["name"]).stdout)
    assert [r[:3] for r in shown["changes"]] == [["ac-flaky", "1.0", "2.0"]], shown
    assert not Path(run_dir(), "hook-expect").exists()
    assert h.run("dpkg-query", "-W", "-f", "${db:Status-Status}", "ac-flaky").stdout == "half-configured"


def test_a_tab_in_an_apt_argument_and_a_planted_state_file_still_leave_the_checkpoint(booted):
    """A tab in an argument is recorded escaped; a directory planted where the hook writes its
    state makes the checkpoint all the same, and the line says so (apt goes on, required too)."""
    h = booted
    set_config(h, "[hook]\nrequired = yes\n")
    planted = Path(run_dir(), "hook.json.tmp")
    planted.mkdir(parents=True)
    try:
        before = names(h)
        got = h.apt_get("-o", "Foo::Bar=a\tb", "install", "ac-extra")
    finally:
        planted.rmdir()
    assert got.returncode == 0, got.stdout[-2000:] + got.stderr[-2000:]
    assert version_of(h, "ac-extra")
    lines = [line for line in got.stderr.splitlines() if line.startswith("apt-clone:")]
    assert len(lines) == 1 and lines[0].startswith(HOOK_LINE) and "not recorded" in lines[0], got.stderr
    new = [cp for cp in listing(h) if cp["name"] not in before]
    assert len(new) == 1 and "Foo::Bar=a\\tb" in new[0]["title"], new


def test_the_test_only_environment_is_inert_in_the_installed_package(booted):
    """Fault injection, another configuration, run or state directory: an environment variable
    alone never changes what root's installed apt-clone does."""
    h = booted
    Path(h.root, "tmp/bad.conf").write_text("[nonsense]\n")
    env = {
        "APT_CLONE_TEST_FAIL_AT": "list.read",
        "APT_CLONE_CONFIG": "/tmp/bad.conf",
        "APT_CLONE_RUN_DIR": "/tmp/run-elsewhere",
        "APT_CLONE_STATE_DIR": "/tmp/state-elsewhere",
    }
    listed = h.run("apt-clone", "-l", env=env)
    assert listed.returncode == 0, listed.stderr
    made = h.run("apt-clone", "-y", "create", env={**env, "APT_CLONE_TEST_FAIL_AT": "create.clone:ran"})
    assert made.returncode == 0, made.stderr
    assert not Path(h.root, "tmp/run-elsewhere").exists() and not Path(h.root, "tmp/state-elsewhere").exists()


def test_python_variables_and_planted_modules_never_reach_root_s_apt_clone(booted):
    """/usr/bin/apt-clone runs isolated (python3 -IS): a module another user planted on
    PYTHONPATH (an ``apt_clone``, a ``sitecustomize``) is never loaded, by a command or by the
    hook apt runs with the same environment."""
    h = booted
    planted = Path(h.root, "tmp/planted")
    for module in ("apt_clone/__init__.py", "sitecustomize.py", "usercustomize.py"):
        Path(planted, module).parent.mkdir(parents=True, exist_ok=True)
        Path(planted, module).write_text(f"open('/tmp/planted-ran', 'a').write({module!r} + '\\n')\n")
    head = Path(h.root, "usr/bin/apt-clone").read_text().splitlines()[0]
    assert head == "#!/usr/bin/python3 -IS", head
    env = {"PYTHONPATH": "/tmp/planted", "PYTHONUSERBASE": "/tmp/planted"}
    before = names(h)
    try:
        version = h.run("apt-clone", "--version", env=env)
        assert version.returncode == 0 and version.stdout.startswith("apt-clone "), version.stderr
        got = h.apt_get("install", "ac-extra", env=env)
        assert got.returncode == 0, got.stderr
        assert HOOK_LINE in got.stderr
        assert len(names(h)) == len(before) + 1
        assert not Path(h.root, "tmp/planted-ran").exists(), Path(h.root, "tmp/planted-ran").read_text()
    finally:
        h.apt_get("remove", "ac-extra")

"""Boot integration on the sandbox: GRUB menu refresh, grubenv, trial boots, systemd units."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import SandboxInfo, apt_clone, apt_clone_popen, bootfs, config_env, reboot, zfs_get

REPO = Path(__file__).resolve().parents[2]


def grubenv(sb: SandboxInfo) -> dict[str, str]:
    out = subprocess.run(
        ["grub-editenv", os.path.join(sb.root, "boot/grub/grubenv"), "list"], capture_output=True, text=True, check=True
    )
    return dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)


def menu(sb: SandboxInfo) -> str:
    return Path(sb.root, "boot/grub/apt-clone.cfg").read_text()


@pytest.fixture
def with_kernel(pristine: SandboxInfo) -> SandboxInfo:
    for f in ("vmlinuz-6.1.0-99-amd64", "initrd.img-6.1.0-99-amd64"):
        Path(pristine.root, "boot", f).write_text("")
    return pristine


def test_menu_follows_create_rename_destroy_and_passes_grub_script_check(with_kernel: SandboxInfo):
    sb = with_kernel
    assert apt_clone(sb, "create", "--title", 'it\'s "$(reboot)" `id`; ü').returncode == 0
    text = menu(sb)
    assert "--id 'apt-clone-rootfs-nmu-001'" in text and "'root=ZFS=" + sb.ds("rootfs-nmu-001") + "'" in text
    assert "menuentry 'it'\\''s \"$(reboot)\" `id`; ü [nmu-001 : " in text
    subprocess.run(["grub-script-check", os.path.join(sb.root, "boot/grub/apt-clone.cfg")], check=True)
    assert apt_clone(sb, "rename", "rootfs-nmu-001", "keep").returncode == 0
    assert "apt-clone-keep" in menu(sb) and "apt-clone-rootfs-nmu-001" not in menu(sb)
    assert apt_clone(sb, "-y", "-r", "keep").returncode == 0
    assert "apt-clone-keep" not in menu(sb)


def test_activation_sets_grub_default_and_list_reads_it(with_kernel: SandboxInfo):
    sb = with_kernel
    apt_clone(sb, "create")
    result = apt_clone(sb, "-y", "-a", "rootfs-nmu-001")
    assert result.returncode == 0
    assert "Default GRUB entry 'apt-clone>apt-clone-rootfs-nmu-001'" in result.stdout
    assert grubenv(sb)["saved_entry"] == "apt-clone>apt-clone-rootfs-nmu-001"
    # bootfs changed behind apt-clone's back: -l says they disagree
    subprocess.run(["zpool", "set", f"bootfs={sb.first}", sb.pool], check=True)
    out = apt_clone(sb, "-l").stdout
    assert "Note: GRUB's default entry boots" in out and "rootfs-nmu-001" in out
    # the sandbox boots GRUB's default
    reboot(sb)
    assert apt_clone(sb, "-l").stdout.splitlines()[2].startswith("  o rootfs-nmu-001")


def test_trial_boot_commits_after_a_healthy_boot(with_kernel: SandboxInfo, tmp_path):
    sb = with_kernel
    apt_clone(sb, "create")
    result = apt_clone(sb, "-y", "activate", "rootfs-nmu-001", "--once")
    assert result.returncode == 0, result.stderr
    assert grubenv(sb)["next_entry"] == "apt-clone>apt-clone-rootfs-nmu-001"
    assert bootfs(sb) == sb.first
    reboot(sb)  # GRUB boots next_entry once
    assert "next_entry" not in grubenv(sb)
    result = apt_clone(sb, "-y", "trial-commit", env=config_env(tmp_path, "[trial]\nhealth = none\n"))
    assert result.returncode == 0 and "is now the default" in result.stdout
    assert bootfs(sb) == sb.ds("rootfs-nmu-001")
    assert grubenv(sb)["saved_entry"] == "apt-clone>apt-clone-rootfs-nmu-001"


def test_failed_trial_boot_falls_back_by_itself(with_kernel: SandboxInfo):
    sb = with_kernel
    apt_clone(sb, "create")
    apt_clone(sb, "-y", "activate", "rootfs-nmu-001", "--once")
    reboot(sb)  # the trial boot... which never reaches trial-commit (it "fails")
    reboot(sb)  # the next boot: back to the old default by itself
    lines = apt_clone(sb, "-l").stdout.splitlines()
    assert lines[1].startswith("o o rootfs-nmu-000")
    result = apt_clone(sb, "-y", "trial-commit")
    assert "did not come up" in result.stdout
    assert bootfs(sb) == sb.first and grubenv(sb)["saved_entry"] if "saved_entry" in grubenv(sb) else True
    assert apt_clone(sb, "-y", "trial-commit").stdout.strip() == "no trial boot armed"


def test_boot_time_commands_do_not_load_the_command_line_parser(pristine: SandboxInfo):
    """apt-clone-boot and apt-clone-trial run at every boot: typer, click and the CLI stay unloaded."""
    code = (
        "import sys; from apt_clone.entry import main;"
        f"codes = [main(['--root', {pristine.root!r}, '-y', c]) for c in ('boot-started', 'trial-commit')];"
        "heavy = ('typer', 'click', 'apt_clone.cli.app', 'apt_clone.checkpoints.commands');"
        "print(codes, sorted(m for m in heavy if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    lines = result.stdout.strip().splitlines()
    assert lines == ["no one-time boot request", "no trial boot armed", "[0, 0] []"], result.stderr


def test_unhealthy_trial_is_not_committed(with_kernel: SandboxInfo, tmp_path):
    sb = with_kernel
    apt_clone(sb, "create")
    apt_clone(sb, "-y", "activate", "rootfs-nmu-001", "--once")
    reboot(sb)
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "systemctl").write_text("#!/bin/sh\necho 'broken.service loaded failed failed Broken'\n")
    (fake / "systemctl").chmod(0o755)
    result = apt_clone(sb, "-y", "trial-commit", env={"PATH": f"{fake}:{os.environ['PATH']}"})
    assert "is not healthy (failed units: broken.service): marked bad" in result.stdout
    assert bootfs(sb) == sb.first


def test_a_failed_required_check_marks_the_trial_bad_and_activating_it_asks_again(with_kernel: SandboxInfo, tmp_path):
    sb = with_kernel
    body = "echo 'nothing listens on port 80' >&2\nexit 1"
    env = _trial_with_check(sb, tmp_path, body, name="50-service-answers")
    result = apt_clone(sb, "-y", "trial-commit", env=env)
    assert "50-service-answers: exit status 1: nothing listens on port 80" in result.stdout, result.stdout
    assert "marked bad" in result.stdout and "rebooting" not in result.stdout  # --root: never reboots this machine
    assert bootfs(sb) == sb.first
    listed = apt_clone(sb, "-l").stdout
    assert "rootfs-nmu-001" in listed and "BAD)" in listed, listed
    shown = apt_clone(sb, "show", "rootfs-nmu-001").stdout
    assert "Bad:        unhealthy trial boot: 50-service-answers: exit status 1" in shown, shown
    again = apt_clone(sb, "-y", "activate", "rootfs-nmu-001", "--once")
    assert again.returncode == 0 and "was marked bad (unhealthy trial boot" in again.stdout, again.stdout
    refused = apt_clone(sb, "activate", "rootfs-nmu-001")  # no -y and no terminal: the question is not answered
    assert refused.returncode != 0


def test_grub_d_script_and_default_snippet():
    out = subprocess.run(["sh", str(REPO / "grub/42_apt-clone")], capture_output=True, text=True, check=True).stdout
    assert 'source "${prefix}/apt-clone.cfg"' in out
    path = Path("/tmp") / f"42-{os.getpid()}.cfg"
    path.write_text(out)
    try:
        subprocess.run(["grub-script-check", str(path)], check=True)
    finally:
        path.unlink()
    assert "GRUB_DEFAULT=saved" in (REPO / "grub/apt-clone.cfg").read_text()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_units_verify(tmp_path):
    exe = shutil.which("apt-clone") or str(Path(sys.executable).with_name("apt-clone"))
    names = []
    for unit in sorted([*(REPO / "systemd").glob("*.service"), *(REPO / "systemd").glob("*.timer")]):
        (tmp_path / unit.name).write_text(unit.read_text().replace("/usr/bin/apt-clone", exe))
        names.append(str(tmp_path / unit.name))
    # Documentation=man:apt-clone(8) man:apt-clone.conf(5): the pages as the package builds them
    from docutils.core import publish_file
    from docutils.writers import manpage

    for page, section in (("apt-clone.8", "man8"), ("apt-clone.conf.5", "man5")):
        out = tmp_path / "man" / section / page
        out.parent.mkdir(parents=True)
        publish_file(source_path=str(REPO / f"docs/man/{page}.rst"), destination_path=str(out),
                     writer=manpage.Writer(), settings_overrides={"report_level": 5})  # fmt: skip
    env = {**os.environ, "MANPATH": str(tmp_path / "man")}
    result = subprocess.run(["systemd-analyze", "verify", *names], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    # Hardened as far as each job allows: those that only manage ZFS and GRUB's block are closed
    # but for their mounts; the trial's runs the admin's health checks (scripts/deb.py prints all).
    for name in names:
        if name.endswith(".service") and not name.endswith("apt-clone-trial.service"):
            argv = ["systemd-analyze", "security", "--offline=true", name]
            got = subprocess.run(argv, capture_output=True, text=True)
            exposure = float(got.stdout.strip().splitlines()[-1].split("level for ", 1)[1].split()[1])
            assert exposure <= 5.0, (name, got.stdout[-1500:])


def test_a_trial_with_tries_is_booted_that_many_times_then_falls_back_and_is_marked_bad(
    with_kernel: SandboxInfo, tmp_path
):
    sb = with_kernel
    env = config_env(tmp_path, "[trial]\ntries = 2\n")
    apt_clone(sb, "create")
    armed = apt_clone(sb, "-y", "activate", "rootfs-nmu-001", "--once", env=env)
    assert armed.returncode == 0 and "2 tries counted by GRUB" in armed.stdout, armed.stdout + armed.stderr
    assert grubenv(sb)["apt_clone_tries"] == "11" and "next_entry" not in grubenv(sb)
    for _ in range(2):  # two boots of the trial that never reach trial-commit (a panic, a reset)
        reboot(sb)
        assert apt_clone(sb, "-l", env=env).stdout.splitlines()[2].startswith("  o rootfs-nmu-001")
    reboot(sb)  # the tries are spent: the default boots, with no help from the trial
    assert apt_clone(sb, "-l", env=env).stdout.splitlines()[1].startswith("o o rootfs-nmu-000")
    result = apt_clone(sb, "-y", "trial-commit", env=env)
    assert "did not come up" in result.stdout
    assert "BAD" in apt_clone(sb, "-l", env=env).stdout
    assert not grubenv(sb).get("apt_clone_trial") and bootfs(sb) == sb.first


def test_a_trial_that_reaches_no_verdict_by_its_deadline_is_marked_bad(with_kernel: SandboxInfo):
    sb = with_kernel
    apt_clone(sb, "create")
    apt_clone(sb, "-y", "activate", "rootfs-nmu-001", "--once")
    reboot(sb)  # the trial boots... and hangs before trial-commit
    late = apt_clone(sb, "-y", "trial-deadline")
    assert late.returncode == 0 and "reached no verdict within 600 s: marked bad" in late.stdout, late.stdout
    assert "no verdict within 600 s of boot (a hang)" in apt_clone(sb, "show", "rootfs-nmu-001").stdout
    reboot(sb)  # (the real one reboots by itself, forced): the default boots
    assert apt_clone(sb, "-l").stdout.splitlines()[1].startswith("o o rootfs-nmu-000")
    assert apt_clone(sb, "-y", "trial-deadline").stdout.strip() == "no trial waits for its verdict"


def _trial_with_check(sb: SandboxInfo, tmp_path: Path, body: str, name: str = "50-check") -> dict[str, str]:
    """A trial of a new checkpoint that holds required check ``name`` running ``body`` (sh),
    booted; the environment whose systemctl knows no failed unit."""
    checks = Path(sb.root, "etc/apt-clone/health.d/required")
    checks.mkdir(parents=True)
    check = checks / name
    check.write_text(f"#!/bin/sh\n{body}\n")
    check.chmod(0o755)
    try:
        apt_clone(sb, "create")  # the trial checkpoint holds the check
    finally:
        shutil.rmtree(Path(sb.root, "etc/apt-clone/health.d"))
    apt_clone(sb, "-y", "activate", "rootfs-nmu-001", "--once")
    reboot(sb)
    env = config_env(tmp_path, "[trial]\nhealth = failed-units\n")
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "systemctl").write_text("#!/bin/sh\nexit 0\n")  # no unit failed
    (fake / "systemctl").chmod(0o755)
    env["PATH"] = f"{fake}:{os.environ['PATH']}"
    return env


def test_a_failed_check_whose_output_has_tabs_and_controls_still_marks_the_trial_bad(
    with_kernel: SandboxInfo, tmp_path
):
    sb = with_kernel
    env = _trial_with_check(sb, tmp_path, "printf 'disk\\tfull\\n\\033]0;x\\007' >&2; exit 1")
    try:
        result = apt_clone(sb, "-y", "trial-commit", env=env)
        assert result.returncode == 0, result
        assert "50-check: exit status 1: disk\\tfull" in result.stdout and "marked bad" in result.stdout, result
        assert "\x1b" not in result.stdout + result.stderr
        shown = apt_clone(sb, "show", "rootfs-nmu-001").stdout
        assert "unhealthy trial boot: 50-check: exit status 1: disk\\tfull" in shown, shown
        assert apt_clone(sb, "-y", "trial-commit", env=env).stdout.strip() == "no trial boot armed"
    finally:
        reboot(sb)  # the default, as the real trial's reboot does
    assert bootfs(sb) == sb.first


def test_a_trial_commit_killed_during_its_checks_is_judged_again_by_recover(with_kernel: SandboxInfo, tmp_path):
    """The trial stays armed while its checks run: SIGKILL there loses no verdict, and
    'recover' in the same boot runs the checks again and finishes it."""
    sb = with_kernel
    started, go = tmp_path / "started", tmp_path / "go"
    os.mkfifo(started)
    env = _trial_with_check(sb, tmp_path, f"[ -e {go} ] && exit 0\necho started > {started}\nexec sleep 600")
    proc = apt_clone_popen(sb, "-y", "trial-commit", env=env)
    with open(started) as f:  # the check runs: the event
        assert f.read().strip() == "started"
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    subprocess.run(["pkill", "-f", "^sleep 600$"], check=False)
    assert zfs_get(sb.container, "org.aptclone:trial") == sb.ds("rootfs-nmu-001")  # still armed
    go.write_text("")
    recovered = apt_clone(sb, "recover", env=env)
    assert recovered.returncode == 0, recovered
    assert "interrupted trial verdict, judged again" in recovered.stdout, recovered.stdout
    assert "booted healthy" in recovered.stdout and bootfs(sb) == sb.ds("rootfs-nmu-001"), recovered.stdout
    assert zfs_get(sb.container, "org.aptclone:trial") == "-"
    assert apt_clone(sb, "recover").stdout.startswith("nothing to recover")

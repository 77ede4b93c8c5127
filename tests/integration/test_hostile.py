"""Regression tests for the defects hostile testing found: a pool top taken for a container, the
lock, unlocked mounts, signals, chroot binds, user snapshots, bad bytes, names, exit codes, a
full pool and the run directory. Each drives the real CLI on real zfs-fuse pools."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from tests.helpers import (
    SlowPostinst,
    apt_clone,
    apt_clone_popen,
    leftovers,
    run_module,
    zfs_get,
    zfs_names,
    zfs_state,
)
from tests.integration.conftest import all_names, one_line, zfs


# --- 1. a pool's top dataset is never a container; data beside the root is no checkpoint ---------
def test_root_under_the_pool_top_is_refused_and_destroys_nothing(toy):
    zfs("create", "-o", f"mountpoint={toy.base}/sys", f"{toy.pool}/sys")
    zfs("create", "-o", f"mountpoint={toy.base}/home", f"{toy.pool}/home")
    zfs("snapshot", f"{toy.pool}/home@mine")
    before = all_names(toy.pool)
    for args in (("-l",), ("-y", "-r", "home"), ("-y", "create")):
        result = toy.cli(*args, root=f"{toy.base}/sys")
        assert result.returncode == 3, result
        assert "directly under the pool's top dataset" in one_line(result)
    assert all_names(toy.pool) == before


def test_a_data_dataset_beside_the_root_is_not_a_checkpoint(toy):
    zfs("create", "-o", f"mountpoint={toy.base}/home", toy.ds("home"))
    zfs("snapshot", f"{toy.ds('home')}@mine")
    assert toy.cli("-y", "create").returncode == 0
    listing = json.loads(toy.cli("--json", "-l").stdout)
    assert sorted(cp["name"] for cp in listing) == ["be1", "be2"]
    result = toy.cli("-y", "-r", "home")
    assert result.returncode == 2 and "no checkpoint named 'home'" in one_line(result)
    assert {toy.ds("home"), f"{toy.ds('home')}@mine"} <= set(all_names(toy.pool))
    clash = toy.cli("-y", "create", "--name", "home")  # the name is taken all the same
    assert clash.returncode == 3 and "already exists" in one_line(clash)


# --- 2. the lock -------------------------------------------------------------------------------
def test_lock_lives_where_only_root_writes_and_never_follows_a_link(toy, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    (run / "lock").symlink_to(victim)
    result = toy.cli("-y", "create")
    assert result.returncode != 0 and one_line(result)
    assert victim.read_text() == "precious\n"
    assert toy.ds("be2") not in all_names(toy.pool)
    # a run directory another user owns or can write is refused outright
    (run / "lock").unlink()
    os.chown(run, 65534, 65534)
    result = toy.cli("-y", "create")
    assert result.returncode == 3 and "unsafe directory" in one_line(result)
    os.chown(run, 0, 0)
    os.chmod(run, 0o777)
    result = toy.cli("-y", "create")
    assert result.returncode == 3 and "writable by other users" in one_line(result)
    os.chmod(run, 0o700)
    assert toy.cli("-y", "create").returncode == 0


def test_default_lock_is_in_apt_clones_run_directory(monkeypatch):
    from apt_clone import lock

    monkeypatch.delenv("APT_CLONE_RUN_DIR", raising=False)
    assert lock.lock_path() == "/run/apt-clone/lock"


def test_holder_text_reaches_the_terminal_only_printable(toy):
    import fcntl

    from apt_clone.paths import secure_dir

    path = os.path.join(secure_dir(toy.env["APT_CLONE_RUN_DIR"]), "lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        record = {"pid": 1, "command": "evil \x1b]0;owned\x07\x1b[2J", "since": "2026-01-01T00:00:00+00:00"}
        os.write(fd, json.dumps(record).encode())
        fcntl.flock(fd, fcntl.LOCK_EX)
        result = toy.cli("-y", "create")
        line = one_line(result)
        assert result.returncode == 3 and "another apt-clone is running (pid 1, 'evil" in line
        assert "\x1b" not in result.stderr and "\x07" not in result.stderr
    finally:
        os.close(fd)


# --- 3. diff mounts under the lock, concurrent readers corrupt nothing ---------------------------
def test_concurrent_diffs_and_a_rename_leave_every_mountpoint_as_it_was(pristine):
    sb = pristine
    assert apt_clone(sb, "-y", "create").returncode == 0
    assert apt_clone(sb, "-y", "create").returncode == 0
    before = zfs_state(sb)
    procs = [
        apt_clone_popen(sb, "diff", "rootfs-nmu-001", "rootfs-nmu-002"),
        apt_clone_popen(sb, "diff", "rootfs-nmu-002", "rootfs-nmu-001"),
        apt_clone_popen(sb, "diff", "rootfs-nmu-000", "rootfs-nmu-001"),
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert "remove" not in out, out  # same packages in both: never "everything removed"
    assert zfs_state(sb) == before
    assert leftovers(sb) == []


def test_diff_of_a_checkpoint_without_dpkg_status_is_an_error(toy):
    assert toy.cli("-y", "create").returncode == 0
    result = toy.cli("diff", "be1", "be2")
    assert result.returncode == 1 and "no dpkg status file" in one_line(result)
    assert zfs_get(toy.ds("be2"), "org.aptclone:saved-mountpoint") == "-"
    assert zfs_get(toy.ds("be2"), "mountpoint") == toy.root


def test_recover_puts_back_a_mountpoint_a_killed_reader_changed(toy):
    from apt_clone.zfs import open_backend

    assert toy.cli("-y", "create").returncode == 0
    backend = open_backend()
    elsewhere = os.path.join(toy.base, "elsewhere")
    backend.mount_at(toy.ds("be2"), elsewhere)  # as a reader killed with the clone mounted leaves it
    backend.mount_at(toy.ds("be2"), elsewhere + "2")  # a second one keeps the first saved value
    result = toy.cli("-y", "recover")
    assert result.returncode == 0, result.stderr
    assert f"restored the mountpoint of {toy.ds('be2')}" in result.stdout
    assert zfs_get(toy.ds("be2"), "mountpoint") == toy.root
    assert zfs_get(toy.ds("be2"), "org.aptclone:saved-mountpoint") == "-"


# --- 4. Ctrl-C ---------------------------------------------------------------------------------
def _lines_until(proc: subprocess.Popen[str], text: str) -> list[str]:
    """Read stdout line by line until one contains ``text`` (an event; bounded by the process)."""
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if text in line:
            return seen
    raise AssertionError(f"{text!r} never came: {''.join(seen)[-2000:]}")


def test_two_ctrl_c_during_an_upgrade_in_the_clone_roll_back_fully(pristine):
    sb = pristine
    before = zfs_state(sb)
    with SlowPostinst() as slow:
        proc = apt_clone_popen(sb, "-y", "-s", "install", "ac-slow", "--no-update")
        slow.wait_until_running(proc)
        proc.send_signal(signal.SIGINT)
        _lines_until(proc, "Rolling back")
        proc.send_signal(signal.SIGINT)  # during the rollback: held until it is done
        out, err = proc.communicate(timeout=300)
    assert proc.returncode in (1, 130), (out, err)
    assert "All upgrade changes now rolled back." in out, out + err
    assert zfs_state(sb) == before
    assert leftovers(sb) == []


@pytest.mark.parametrize(
    ("args", "where"),
    [
        (("-l",), "list.read"),
        (("diff", "rootfs-nmu-000", "rootfs-nmu-001"), "diff.mounted"),
        (("-y", "create"), "create.clone:ran"),
        (("-y", "-a", "rootfs-nmu-001"), "activate.boot:after"),
    ],
)
def test_ctrl_c_never_exits_0_and_leaves_nothing(pristine, args, where):
    sb = pristine
    assert apt_clone(sb, "-y", "create").returncode == 0
    before = zfs_state(sb)
    result = apt_clone(sb, *args, env={"APT_CLONE_TEST_SIGINT_AT": where})
    assert result.returncode in (1, 130), result
    assert "interrupted" in one_line(result)
    assert zfs_state(sb) == before
    assert leftovers(sb) == []


# --- 5. chroot binds ---------------------------------------------------------------------------
def test_sigterm_while_chroot_binds_are_up_leaves_none(pristine):
    from apt_clone.engine.journal import Journal

    sb = pristine
    sys_dir = os.path.join(sb.root, "sys")
    proc = apt_clone_popen(sb, "-y", "install", "ac-extra", "--no-update")
    try:
        for _ in range(200000):  # bounded polling for the event: the bind is up
            with open("/proc/self/mountinfo") as f:
                if any(line.split()[4] == sys_dir for line in f):
                    break
            assert proc.poll() is None, proc.communicate()
        else:
            raise AssertionError("the chroot binds never came up")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0, (out, err)
    assert leftovers(sb) == []
    st = Journal(sb.container).load()
    created = apt_clone(sb, "-y", "create")
    assert created.returncode == 0, created.stderr
    if st is not None and st.unfinished:  # stopped before its snapshot: dropped, and said so
        assert "dropped the unfinished 'apt-clone install ac-extra'" in created.stderr


def test_a_paused_operation_is_never_dropped_silently(pristine):
    sb = pristine
    paused = apt_clone(sb, "-y", "--pause-at", "fetch", "install", "ac-extra", "--no-update")
    assert paused.returncode == 0 and "Paused after step 'fetch'" in paused.stdout, paused
    created = apt_clone(sb, "-y", "create")
    assert created.returncode == 0, created.stderr
    assert "dropped the paused 'apt-clone install ac-extra'" in created.stderr
    assert leftovers(sb) == []


def test_recover_finds_chroot_binds_in_the_managed_root(pristine):
    sb = pristine
    for rel, argv in (("proc", ["-t", "proc", "proc"]), ("sys", ["--bind", "/sys"])):
        subprocess.run(["mount", *argv, os.path.join(sb.root, rel)], check=True)
    result = apt_clone(sb, "-y", "recover")
    assert result.returncode == 0, result.stderr
    assert f"unmounted {sb.root}/sys" in result.stdout and f"unmounted {sb.root}/proc" in result.stdout
    assert leftovers(sb) == []


# --- 6. user snapshots ---------------------------------------------------------------------------
def test_recover_keeps_a_users_snapshot_named_like_a_step_snapshot(pristine):
    sb = pristine
    mine = f"{sb.first}@acstep-my-backup"
    zfs("snapshot", mine)
    result = apt_clone(sb, "-y", "recover")
    assert result.returncode == 0, result.stderr
    assert mine in zfs_names(sb)


# --- 7-9. bad input ------------------------------------------------------------------------------
def test_titles_that_are_not_utf8_are_refused_in_one_line(pristine):
    sb = pristine
    before = zfs_state(sb)
    for args in (("-y", "title", "rootfs-nmu-000", "bad\udcff"), ("-y", "create", "--title", "bad\udcff")):
        result = apt_clone(sb, *args)
        assert result.returncode == 2 and "not valid UTF-8" in one_line(result)
    assert zfs_state(sb) == before


def test_automatic_names_always_pass_the_validator(toy):
    long = "b" * 61 + "999"
    root = os.path.join(toy.base, "long")
    zfs("create", "-o", f"mountpoint={root}", toy.ds(long))
    created = toy.cli("-y", "--json", "create", root=root)
    assert created.returncode == 0, created.stderr
    name = json.loads(created.stdout)["checkpoint"]
    assert len(name) <= 64 and name != long
    for args in (("-y", "title", name, "fine"), ("show", name), ("-y", "rename", name, "short"), ("-y", "-r", "short")):
        result = toy.cli(*args, root=root)
        assert result.returncode == 0, (args, result.stderr)


@pytest.mark.parametrize(
    "args",
    [
        ("-y", "-r", ""),
        ("-y", "-a", ""),
        ("-y", "resume", "bogus"),
        ("-y", "resume", ""),
        ("-y", "create", "--title", ""),
        ("-y", "create", "--name", "../x"),
        ("-y", "-r", "rootfs-nmu-001", "--force", ""),
        ("-y", "-r", "rootfs-nmu-001", "--force", "../x"),
        ("-y", "-r", "rootfs-nmu-001", "--force", "nosuch"),
        ("-y", "--pause-at", "plan", "create"),
        ("-y", "--pause-at", "plan", "-r", "rootfs-nmu-001"),
        ("-y", "--pause-at", "boot", "install", "ac-extra"),
    ],
)
def test_bad_input_exits_2_in_one_line_and_changes_nothing(pristine, args):
    sb = pristine
    assert apt_clone(sb, "-y", "create").returncode == 0
    before = zfs_state(sb)
    result = apt_clone(sb, *args)
    assert result.returncode == 2, result
    one_line(result)
    assert zfs_state(sb) == before


def test_a_users_snapshot_takes_its_name_out_of_the_numbering(pristine):
    sb = pristine
    zfs("snapshot", f"{sb.first}@nmu-001")
    created = apt_clone(sb, "-y", "create")
    assert created.returncode == 0 and "rootfs-nmu-002" in created.stdout, created
    assert zfs_get(sb.ds("rootfs-nmu-002"), "origin") == f"{sb.first}@nmu-002"
    named = apt_clone(sb, "-y", "create", "--name", "rootfs-nmu-001")
    assert named.returncode == 3 and "choose another name" in one_line(named)
    installed = apt_clone(sb, "-y", "install", "ac-extra", "--no-update")
    assert installed.returncode == 0, installed.stdout[-2000:] + installed.stderr
    assert sb.ds("rootfs-nmu-003") in zfs_names(sb)
    assert f"{sb.first}@nmu-001" in zfs_names(sb)


def test_questions_show_one_yes_no_hint(pristine):
    """On a terminal the seed's "(y/n)" stands alone (questionary's "(y/N)" is not added)."""
    import pty
    import select

    sb = pristine
    assert apt_clone(sb, "-y", "create").returncode == 0
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.execvpe(
            sys.executable, [sys.executable, "-m", "apt_clone", "--root", sb.root, "-r", "rootfs-nmu-001"], os.environ
        )
    seen = b""
    try:
        # until the prompt is drawn: its text, then prompt_toolkit shows the cursor again
        while b"(y/n)" not in seen or b"\x1b[?25h" not in seen[seen.index(b"(y/n)") :]:
            ready, _, _ = select.select([fd], [], [], 60)
            assert ready, seen
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            seen += chunk
            if b"\x1b[6n" in chunk:  # prompt_toolkit asks where the cursor is
                os.write(fd, b"\x1b[1;1R")
        assert b"(y/n)" in seen and b"(y/N)" not in seen, seen
        os.write(fd, b"n")
        while True:  # to the end of its output (EOF or EIO once it has exited)
            ready, _, _ = select.select([fd], [], [], 60)
            assert ready, seen
            try:
                if not os.read(fd, 4096):
                    break
            except OSError:
                break
        _, status = os.waitpid(pid, 0)
        pid = 0
    finally:
        if pid:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 1  # "no" is not success (typer's Exit code reaches the shell)
    assert sb.ds("rootfs-nmu-001") in zfs_names(sb)


# --- 10. a full pool -------------------------------------------------------------------------------
def _fill(path: str, leave: int = 0) -> None:
    """Write to ``path`` until the pool is full, or until ``leave`` bytes are left."""
    chunk = os.urandom(1 << 20)
    dataset = subprocess.run(
        ["findmnt", "-n", "-o", "SOURCE", "-T", os.path.dirname(path)], capture_output=True, text=True
    ).stdout
    avail = int(zfs("get", "-Hp", "-o", "value", "available", dataset.strip()))
    count = (avail - leave) // len(chunk) if leave else None
    with open(path, "wb", buffering=0) as f:  # unbuffered: no write is left for close()
        try:
            while count is None or count > 0:
                f.write(chunk)
                count = None if count is None else count - 1
        except OSError:
            pass


def test_on_a_full_pool_destroy_still_frees_space_and_then_finishes_what_waited(toy):
    assert toy.cli("-y", "create").returncode == 0  # be2: the one to activate
    _fill(os.path.join(toy.root, "filler"), leave=8 << 20)
    assert toy.cli("-y", "create").returncode == 0  # be3 keeps the filler alive in its snapshot
    os.unlink(os.path.join(toy.root, "filler"))
    bootfs_before = subprocess.run(
        ["zpool", "list", "-H", "-o", "bootfs", toy.pool], capture_output=True, text=True
    ).stdout.strip()
    killed = run_module(
        "apt_clone",
        ["--root", toy.root, "-y", "-a", "be2"],
        env={**toy.env, "APT_CLONE_TEST_KILL_AT": "activate.menu:before"},
    )
    assert killed.returncode == -signal.SIGKILL
    _fill(os.path.join(toy.root, "filler2"))  # now nothing can be written: the undo cannot run
    blocked = toy.cli("-y", "create")
    assert blocked.returncode == 1 and "apt-clone -r NAME" in one_line(blocked)
    freed = toy.cli("-y", "-r", "be3")
    assert freed.returncode == 0, freed.stderr
    assert "'apt-clone activate be2' cannot be finished now" in freed.stderr
    assert "then finished the interrupted 'apt-clone activate be2'" in freed.stdout, freed.stdout
    assert toy.ds("be3") not in all_names(toy.pool)
    os.unlink(os.path.join(toy.root, "filler2"))
    recovered = toy.cli("-y", "recover")
    assert recovered.returncode == 0, recovered.stderr
    after = subprocess.run(["zpool", "list", "-H", "-o", "bootfs", toy.pool], capture_output=True, text=True).stdout
    assert after.strip() == bootfs_before
    assert toy.cli("-y", "create").returncode == 0


def test_an_interrupted_upgrade_in_the_clone_rolls_back_on_a_full_pool(pristine):
    sb = pristine
    before = zfs_state(sb)
    filler = os.path.join(sb.root, "filler")
    try:
        with SlowPostinst() as slow:
            proc = apt_clone_popen(sb, "-y", "-s", "install", "ac-slow", "--no-update")
            slow.wait_until_running(proc)
            _fill(filler)  # no property can be set now
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=300)
    finally:
        if os.path.exists(filler):
            os.unlink(filler)
    assert proc.returncode == 1, (out, err)
    assert "All upgrade changes now rolled back." in out, out + err
    assert zfs_state(sb) == before
    assert leftovers(sb) == []


# --- 11. one run directory -------------------------------------------------------------------------
def test_clone_mounts_follow_the_run_directory(pristine, tmp_path):
    sb = pristine
    run = tmp_path / "run"
    env = {"APT_CLONE_RUN_DIR": str(run)}
    paused = apt_clone(sb, "-y", "-s", "--pause-at", "mount", "install", "ac-extra", "--no-update", env=env)
    assert paused.returncode == 0, paused.stdout[-2000:] + paused.stderr
    assert f"the clone is mounted at {run}/mnt/rootfs-nmu-001." in paused.stdout
    with open("/proc/self/mountinfo") as f:
        assert any(line.split()[4].startswith(f"{run}/mnt/") for line in f)
    assert apt_clone(sb, "-y", "recover", env=env).returncode == 0
    with open("/proc/self/mountinfo") as f:
        assert not any(line.split()[4].startswith(str(run)) for line in f)

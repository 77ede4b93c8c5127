"""The APT hook's decisions: which apt process a call belongs to, what it skips, titles,
merging, and its one line on failure (the real hook under real apt: tests/package)."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest

from apt_clone import config, entry
from apt_clone.apt import hook
from apt_clone.apt.hook import AptRun, HookState

DATA = os.path.join(os.path.dirname(__file__), "data")


def _proc(tmp_path, table):
    """A /proc with ``table``: pid -> (comm, ppid, start)."""
    for pid, (comm, ppid, start) in table.items():
        d = tmp_path / str(pid)
        d.mkdir()
        rest = ["S", str(ppid)] + ["0"] * 17 + [str(start), "0"]
        (d / "stat").write_text(f"{pid} ({comm}) {' '.join(rest)}\n")
    return str(tmp_path)


def test_the_apt_process_is_the_first_ancestor_that_is_not_a_shell(tmp_path):
    proc = _proc(tmp_path, {30: ("sh", 20, 300), 20: ("apt-get", 10, 200), 10: ("bash", 1, 100)})
    assert hook.apt_run(30, proc) == AptRun(20, 200)


def test_apts_own_child_belongs_to_the_apt_that_forked_it(tmp_path):
    """Post-Invoke runs from a child of apt-get: sh <- apt-get <- apt-get <- bash."""
    table = {59: ("sh", 56, 590), 56: ("apt-get", 9, 560), 9: ("apt-get", 5, 90), 5: ("bash", 1, 50)}
    assert hook.apt_run(59, _proc(tmp_path, table)) == AptRun(9, 90)


def test_a_comm_with_spaces_and_parentheses_is_read(tmp_path):
    proc = _proc(tmp_path, {30: ("sh", 20, 300), 20: ("unattended-upgr) x", 1, 222)})
    assert hook.apt_run(30, proc) == AptRun(20, 222)


def test_an_unreadable_process_is_itself(tmp_path):
    assert hook.apt_run(77, str(tmp_path)) == AptRun(77, 0)


@pytest.mark.parametrize(
    ("cfg", "env", "other", "chroot", "why"),
    [
        (config.Config(hook=False), {}, None, False, "the hook is off"),
        (config.Config(), {"APT_CLONE_ACTIVE": "1"}, None, False, "apt-clone's own apt run"),
        (config.Config(), {}, "/srv/img", False, "another root (/srv/img)"),
        (config.Config(), {}, None, True, "in a chroot"),
    ],
)
def test_what_is_not_this_systems_apt_run_is_skipped(cfg, env, other, chroot, why):
    assert why in (hook.skip_reason(env, cfg, other, chroot) or "")


def test_this_systems_apt_run_is_not_skipped():
    assert hook.skip_reason({}, config.Config(), None, False) is None


def test_titles_say_the_command_and_the_changes():
    assert hook.title_of(["apt install nginx"], "1 installed") == "apt install nginx: 1 installed"
    merged = hook.title_of(["apt install a", "apt-get remove b"], "")
    assert merged == "apt install a; apt-get remove b (2 apt runs)"
    assert hook.title_of(["apt install \x1b[31mred"], "1 installed") == "apt install \\x1b[31mred: 1 installed"
    assert len(hook.title_of(["apt install " + "x" * 400], "1 installed")) == 200


def _state(ended):
    return HookState(AptRun(1, 2), "rootfs-nmu-001", "p/ROOT/rootfs-nmu-001", ["apt install a"], 0.0, ended, "boot")


def test_a_run_joins_the_last_checkpoint_only_within_the_merge_interval():
    cfg = config.Config(hook_merge=60)
    assert hook.may_join(_state(1000.0), cfg, 1059.0, "boot")
    assert not hook.may_join(_state(1000.0), cfg, 1061.0, "boot")
    assert not hook.may_join(_state(1000.0), cfg, 1010.0, "another boot")
    assert not hook.may_join(_state(None), cfg, 1010.0, "boot")  # still running
    assert not hook.may_join(_state(1000.0), config.Config(), 1001.0, "boot")  # merge = 0


def test_a_failure_is_one_line_and_stops_apt_only_when_required():
    assert hook.failure("pool full", config.Config()) == hook.Result("apt-clone: no checkpoint: pool full", 0)
    stop = hook.failure("pool full", config.Config(hook_required=True))
    assert stop.status == 1 and stop.line.startswith("apt-clone: no checkpoint: pool full; apt stops")


def _hook_input(name="pre-install-v3-install.txt"):
    with open(os.path.join(DATA, name), encoding="utf-8") as f:
        return f.read()


def test_the_hook_says_nothing_and_does_nothing_when_off(tmp_path, monkeypatch, capsys):
    conf = tmp_path / "apt-clone.conf"
    conf.write_text("[hook]\nenabled = no\n")
    monkeypatch.setenv(config.CONFIG_ENV, str(conf))
    monkeypatch.setenv("APT_CLONE_RUN_DIR", str(tmp_path / "run"))
    config._loaded.clear()
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(_hook_input().encode())))
    try:
        assert entry.main(["hook-pre"]) == 0
        assert entry.main(["hook-post"]) == 0
    finally:
        config._loaded.clear()
    assert capsys.readouterr() == ("", "")
    assert not (tmp_path / "run").exists()


def test_bad_input_or_a_bad_config_is_one_line_and_apt_goes_on(tmp_path, monkeypatch):
    monkeypatch.setenv(config.CONFIG_ENV, str(tmp_path / "none.conf"))
    config._loaded.clear()
    got = hook.pre("VERSION 2\n", {}, chroot=False)
    assert got.status == 0 and got.line and got.line.startswith("apt-clone: no checkpoint: not apt's hook protocol")
    conf = tmp_path / "bad.conf"
    conf.write_text("[hook]\nrequired = maybe\n")
    monkeypatch.setenv(config.CONFIG_ENV, str(conf))
    config._loaded.clear()
    got = hook.pre(_hook_input(), {}, chroot=False)
    assert got.status == 0 and "hook.required = 'maybe'" in (got.line or "")
    config._loaded.clear()


def test_a_run_with_no_package_changes_makes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv(config.CONFIG_ENV, str(tmp_path / "none.conf"))
    config._loaded.clear()
    head = _hook_input().split("\n\n", 1)[0]
    assert hook.pre(head + "\n\n", {}, chroot=False) == hook.QUIET


def test_the_command_is_apts_record_or_the_apt_process_command_line(tmp_path):
    (tmp_path / "20").mkdir()
    (tmp_path / "20" / "cmdline").write_bytes(b"/usr/bin/python3\0-u\0/usr/bin/unattended-upgrade\0-v\0")
    run = AptRun(20, 1)
    assert hook.command_of(run, "apt install nginx", str(tmp_path)) == "apt install nginx"
    assert hook.command_of(run, "", str(tmp_path)) == "unattended-upgrade -v"
    assert hook.command_of(AptRun(21, 1), "", str(tmp_path)) == "apt"


AS_ON_A_HOST = pytest.mark.skipif(os.geteuid() != 0, reason="a PID namespace of its own needs root (unshare)")


def _hook_pre(tmp_path, *, stdin=None, stderr=subprocess.PIPE, shell_prefix="", conf=""):
    """``apt-clone hook-pre`` as apt runs it (a process of its own), with a configuration and a
    run directory of the test's; bounded by a time limit (a hang fails the test)."""
    (tmp_path / "apt-clone.conf").write_text(conf)
    env = {
        **os.environ,
        config.CONFIG_ENV: str(tmp_path / "apt-clone.conf"),
        "APT_CLONE_RUN_DIR": str(tmp_path / "run"),
        "APT_CLONE_STATE_DIR": str(tmp_path / "state"),
    }
    # As on a host: in a PID namespace of its own, where /proc/1/root is this root (no chroot).
    hook = ["sh", "-c", f'{shell_prefix} exec "$0" -m apt_clone hook-pre', sys.executable]
    argv = ["unshare", "--pid", "--fork", "--mount-proc", *hook]
    return subprocess.run(argv, stdin=stdin, stderr=stderr, stdout=subprocess.PIPE, env=env, timeout=60)


@AS_ON_A_HOST
def test_a_full_or_closed_stderr_and_a_closed_stdin_never_stop_apt(tmp_path):
    with open("/dev/full", "w") as full:
        got = _hook_pre(tmp_path, stdin=subprocess.DEVNULL, stderr=full)  # its line cannot be written
    assert got.returncode == 0
    closed = _hook_pre(tmp_path, shell_prefix="exec 0<&-;")
    assert closed.returncode == 0 and b"Traceback" not in closed.stderr, closed.stderr
    assert closed.stderr.decode().startswith("apt-clone: no checkpoint: not apt's hook protocol"), closed.stderr
    required = _hook_pre(tmp_path, stdin=subprocess.DEVNULL, conf="[hook]\nrequired = yes\n")
    assert required.returncode == 1  # only [hook] required = yes stops apt


@AS_ON_A_HOST
def test_endless_input_is_read_only_to_its_bound(tmp_path):
    with open("/dev/zero", "rb") as zero:
        got = _hook_pre(tmp_path, stdin=zero)
    assert got.returncode == 0
    assert (
        got.stderr.decode()
        == f"apt-clone: no checkpoint: its input is longer than {entry.MAX_HOOK_INPUT >> 20} MiB: not read\n"
    )


@AS_ON_A_HOST
@pytest.mark.parametrize("where", ["config", "state"])
def test_a_fifo_in_place_of_the_configuration_or_the_hook_state_blocks_nothing(tmp_path, where):
    """Opened without blocking and checked first: one line, and apt goes on (a hang fails this test)."""
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    (tmp_path / "apt-clone.conf").unlink(missing_ok=True)
    prefix = f"rm -f {tmp_path}/apt-clone.conf; mkfifo {tmp_path}/apt-clone.conf;" if where == "config" else ""
    if where == "state":
        os.mkfifo(run / hook.STATE_FILE, 0o600)
    with open(os.path.join(DATA, "pre-install-v3-install.txt"), "rb") as data:
        got = _hook_pre(tmp_path, stdin=data, shell_prefix=prefix)
    line = got.stderr.decode()
    assert got.returncode == 0 and line.startswith("apt-clone: no checkpoint: "), line
    assert ("not a regular file" in line) if where == "config" else ("unsafe file" in line), line


def test_an_apt_argument_with_a_tab_or_newline_is_recorded_escaped(tmp_path):
    (tmp_path / "30").mkdir()
    (tmp_path / "30" / "cmdline").write_bytes(b"apt-get\0-o\0Foo::Bar=a\tb\nc\0install\0x\0")
    got = hook.command_of(AptRun(30, 1), "", str(tmp_path))
    assert got == "apt-get -o Foo::Bar=a\\tb\\nc install x"
    assert hook.command_of(AptRun(30, 1), "apt install a\tb", str(tmp_path)) == "apt install a\\tb"
    from apt_clone.zfs import props

    props.validate_value(props.key("command"), got)  # what ZFS takes


@AS_ON_A_HOST
def test_the_hook_turned_off_ends_before_its_module_loads(tmp_path):
    """[hook] enabled = no: hook-pre reads apt's input and the configuration, and ends before
    the hook's module (json, the protocol, dpkg's status) loads: apt pays for every call."""
    trace = "export PYTHONPROFILEIMPORTTIME=1;"
    off = _hook_pre(tmp_path, stdin=subprocess.DEVNULL, shell_prefix=trace, conf="[hook]\nenabled = no\n")
    assert off.returncode == 0 and "apt-clone:" not in off.stderr.decode()
    assert "apt_clone.config" in off.stderr.decode() and "apt_clone.apt.hook" not in off.stderr.decode()
    on = _hook_pre(tmp_path, stdin=subprocess.DEVNULL, shell_prefix=trace)
    assert "apt_clone.apt.hook" in on.stderr.decode()
    assert "apt-clone: no checkpoint: not apt's hook protocol" in on.stderr.decode()

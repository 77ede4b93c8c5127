"""The configuration file: defaults, every setting, refusals of what is unknown or untrusted."""

from __future__ import annotations

import os

import pytest

from apt_clone import config
from apt_clone.errors import UsageError


@pytest.fixture
def conf(tmp_path, monkeypatch):
    path = tmp_path / "etc" / "apt-clone.conf"
    path.parent.mkdir()
    monkeypatch.setenv(config.CONFIG_ENV, str(path))
    config._loaded.clear()
    yield path
    config._loaded.clear()


def test_no_file_means_the_defaults(conf):
    assert config.load() == config.Config()
    assert config.load().path is None


def test_every_setting_is_read(conf):
    conf.write_text("# mine\n[apt]\nmode = clone\nupdate = no\nthen = activate\n\n[trial]\nhealth = none\n")
    got = config.load()
    assert (got.mode, got.update, got.then, got.health, got.path) == ("clone", False, "activate", "none", str(conf))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[apt]\nmood = clone\n", "unknown setting 'mood' in [apt] (settings: mode, update, then, conffiles)"),
        ("[apt]\nmode = sometimes\n", "apt.mode = 'sometimes': one of auto, clone"),
        ("[hooks]\nenabled = yes\n", "unknown section [hooks]"),
        ("[hook]\nmerge = soon\n", "hook.merge = 'soon': whole seconds"),
        ("[hook]\nmerge = -5\n", "hook.merge = '-5': whole seconds"),
        ("mode = clone\n", "File contains no section headers"),
    ],
)
def test_what_is_not_known_is_refused_with_the_line_to_fix(conf, text, message):
    conf.write_text(text)
    with pytest.raises(UsageError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        config.load()


def test_a_file_another_user_can_write_is_not_read(conf):
    conf.write_text("[apt]\nmode = clone\n")
    os.chmod(conf, 0o666)
    with pytest.raises(UsageError, match="cannot read it: it is writable by other users; only root may write it"):
        config.load()
    os.chmod(conf, 0o644)
    os.chmod(conf.parent, 0o777)
    with pytest.raises(UsageError, match=f"cannot read it: {conf.parent} is writable by other users"):
        config.load()
    os.chmod(conf.parent, 0o755)
    assert config.load().mode == "clone"


def test_a_link_is_not_followed(conf, tmp_path):
    real = tmp_path / "real.conf"
    real.write_text("[apt]\nmode = clone\n")
    conf.symlink_to(real)
    with pytest.raises(UsageError, match="cannot read it"):
        config.load()


def test_the_shipped_file_holds_every_setting_at_its_default():
    from pathlib import Path

    shipped = Path(__file__).resolve().parents[2] / "etc" / "apt-clone.conf"
    got = config.parse(shipped.read_text(), str(shipped))
    assert (got.mode, got.update, got.then, got.health) == ("auto", True, "ask", "failed-units")
    text = shipped.read_text()
    for s in config.SETTINGS:
        assert f"# {s.key} = {s.default}".rstrip() in text, s.key


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[trial]\ndeadline = \u00b2\n", "trial.deadline = '\u00b2': whole seconds"),
        ("[trial]\ndeadline = \u0663\n", "trial.deadline = '\u0663': whole seconds"),  # an Arabic-Indic three
        ("[prune]\nkeep = \uff15\n", "prune.keep = '\uff15': a whole number"),
        ("[DEFAULT]\nmode = clone\n", "unknown section [DEFAULT]"),
        ("[trial]\nunits = ssh.service -x\n", "trial.units: '-x' is not a systemd unit name"),
        ("[trial]\nunits = --now\n", "trial.units: '--now' is not a systemd unit name"),
        ("[apt]\n\x1b[31mkey = 1\n", "unknown setting '\\x1b[31mkey' in [apt]"),
        ("[\x1b]0;owned\x07]\nx = 1\n", "unknown section [\\x1b]0;owned\\x07]"),
    ],
)
def test_what_a_careless_edit_writes_is_one_clear_refusal(conf, text, message):
    """Other scripts' digits, a DEFAULT section, a unit that reads as an option and terminal
    control characters in a key (shown escaped): each is refused in one line (exit 2)."""
    conf.write_text(text)
    with pytest.raises(UsageError) as got:
        config.load()
    assert message in got.value.message, got.value.message
    assert "\x1b" not in got.value.message and "\x07" not in got.value.message


def test_a_fifo_directory_or_device_as_the_file_is_refused_without_waiting(conf):
    """Opened without blocking and checked before a byte is read: a FIFO nobody writes does not
    hang the command (nor every apt run through the hook)."""
    os.mkfifo(conf)
    with pytest.raises(UsageError, match="cannot read it: it is not a regular file"):
        config.load()
    conf.unlink()
    conf.mkdir()
    with pytest.raises(UsageError, match="cannot read it: it is not a regular file"):
        config.load()
    conf.rmdir()
    conf.symlink_to("/dev/zero")
    with pytest.raises(UsageError, match="cannot read it: it is a symbolic link"):
        config.load()


def test_the_test_only_environment_is_inert_for_root_in_the_installed_package(conf, monkeypatch, tmp_path):
    from apt_clone import paths, testhooks

    conf.write_text("[apt]\nmode = clone\n")
    monkeypatch.setenv(paths.RUN_DIR_ENV, str(tmp_path / "run"))
    monkeypatch.setenv(testhooks.FAIL_ENV, "here")
    monkeypatch.setattr(paths.os, "geteuid", lambda: 0)
    monkeypatch.setattr(paths, "PACKAGED", True)
    assert config.path() == config.PATH and paths.run_dir() == "/run/apt-clone"
    testhooks.point("here")  # no failure injected
    monkeypatch.setattr(paths, "PACKAGED", False)
    assert config.path() == str(conf) and paths.run_dir() == str(tmp_path / "run")

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
        ("[apt]\nmood = clone\n", "unknown setting 'mood' in [apt] (settings: mode, update, then)"),
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
    with pytest.raises(UsageError, match="only root can write"):
        config.load()
    os.chmod(conf, 0o644)
    os.chmod(conf.parent, 0o777)
    with pytest.raises(UsageError, match="writable by other users"):
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

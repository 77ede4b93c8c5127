"""The man pages name every command, option, exit status and setting (so they cannot fall behind)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import typer.main

from apt_clone import config
from apt_clone.cli.app import app

MAN = Path(__file__).resolve().parents[2] / "docs" / "man"


def test_apt_clone_8_has_every_command_and_option():
    text = (MAN / "apt-clone.8.rst").read_text()
    group = typer.main.get_command(app)
    for name, cmd in group.commands.items():  # type: ignore[attr-defined]
        if cmd.hidden:
            continue
        assert f"**{name}**" in text, name
        for param in cmd.params:
            for opt in (*param.opts, *param.secondary_opts):
                if opt.startswith("-"):
                    assert f"**{opt}**" in text, (name, opt)
    for param in group.params:
        for opt in (*param.opts, *param.secondary_opts):
            assert f"**{opt}**" in text, opt
    for code in ("0", "1", "2", "3", "130"):
        assert f"\n**{code}**\n" in text, code
    for short in ("-l", "-a", "-r"):
        assert f"**{short}**" in text
    for path in ("/etc/apt-clone/apt-clone.conf", "/var/lib/apt-clone/", "/run/apt-clone/", "/etc/grub.d/42_apt-clone"):
        assert path in text
    assert "apt-clone install apache2" in text and "apt-clone -r rootfs-nmu-001" in text  # the seed's examples


def test_apt_clone_conf_5_has_every_setting():
    text = (MAN / "apt-clone.conf.5.rst").read_text()
    for s in config.SETTINGS:
        assert f"SECTION [{s.section}]" in text
        assert f"**{s.key} =**" in text, s.key
        for choice in [c for c in s.choices or () if not c.startswith("<")]:
            assert f"**{choice}**" in text, (s.key, choice)


@pytest.mark.skipif(not shutil.which("rst2man") and not shutil.which("rst2man.py"), reason="needs docutils' rst2man")
@pytest.mark.parametrize("page", ["apt-clone.8.rst", "apt-clone.conf.5.rst"])
def test_the_pages_build_without_a_warning(page, tmp_path):
    tool = shutil.which("rst2man") or shutil.which("rst2man.py")
    out = subprocess.run([tool, "--strict", str(MAN / page), str(tmp_path / "page")], capture_output=True, text=True)
    assert out.returncode == 0 and not out.stderr, out.stderr
    if shutil.which("man"):
        check = subprocess.run(
            ["man", "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z", str(tmp_path / "page")],
            capture_output=True,
            text=True,
        )
        assert not check.stderr, check.stderr

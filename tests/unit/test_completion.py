"""The bash completion knows every command and option the CLI has, and completes names for real."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import typer.main

from apt_clone.cli.app import app

SCRIPT = Path(__file__).resolve().parents[2] / "completion" / "apt-clone"


def _words(var: str) -> set[str]:
    found = re.search(rf'local {var}="([^"]*)"', SCRIPT.read_text())
    assert found, var
    return set(found.group(1).split())


def _options(params) -> set[str]:
    return {o for p in params if not getattr(p, "hidden", False) for o in (*p.opts, *p.secondary_opts) if o[0] == "-"}


def test_every_command_and_option_is_completed():
    group = typer.main.get_command(app)
    visible = {name for name, cmd in group.commands.items() if not cmd.hidden}  # type: ignore[attr-defined]
    assert _words("commands") == visible
    assert _options(group.params) <= _words("globals")
    text = SCRIPT.read_text()
    for name in visible:
        opts = _options(group.commands[name].params) - {"-h", "--help"}  # type: ignore[attr-defined]
        if not opts:
            continue
        line = next(
            (ln for ln in text.splitlines() if re.match(rf"\s*([\w| -]*\b{re.escape(name)}\b[\w| -]*)\) opts\+?=", ln)),
            "",
        )
        assert line, f"no options completed for {name}"
        assert opts <= set(line.split('="', 1)[1].split('"', 1)[0].split()), (name, opts, line)


def _complete(tmp_path, *words: str) -> list[str]:
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    (fake / "apt-clone").write_text(
        '#!/bin/sh\n[ "$3 $4" = "list --names" ] && printf "rootfs-nmu-000\\nrootfs-nmu-001\\nother\\n"\n'
    )
    (fake / "apt-clone").chmod(0o755)
    quoted = " ".join(repr(w) for w in words)
    script = f'source "{SCRIPT}"; COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}; _apt_clone; '
    script += 'printf "%s\\n" "${COMPREPLY[@]}"'
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env={"PATH": f"{fake}:/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    return sorted(filter(None, out.stdout.splitlines()))


def test_names_steps_and_commands_are_completed(tmp_path):
    assert _complete(tmp_path, "apt-clone", "-y", "-r", "root") == ["rootfs-nmu-000", "rootfs-nmu-001"]
    assert _complete(tmp_path, "apt-clone", "show", "o") == ["other"]
    assert _complete(tmp_path, "apt-clone", "dist") == ["dist-upgrade"]
    assert _complete(tmp_path, "apt-clone", "--pause-at", "m") == ["metadata", "mount"]
    assert _complete(tmp_path, "apt-clone", "install", "--th") == ["--then"]
    assert _complete(tmp_path, "apt-clone", "destroy", "x", "--force", "rootfs-nmu-00") == [
        "rootfs-nmu-000",
        "rootfs-nmu-001",
    ]


def test_names_only_where_a_name_is_expected(tmp_path):
    assert _complete(tmp_path, "apt-clone", "rename", "rootfs-nmu-000", "r") == []  # the new name is new
    assert _complete(tmp_path, "apt-clone", "title", "rootfs-nmu-000", "r") == []
    assert _complete(tmp_path, "apt-clone", "diff", "rootfs-nmu-000", "o") == ["other"]
    assert _complete(tmp_path, "apt-clone", "diff", "rootfs-nmu-000", "other", "o") == []
    assert _complete(tmp_path, "apt-clone", "rename", "-y", "o") == ["other"]  # an option is no argument


def test_list_columns_and_options_after_the_command(tmp_path):
    assert _complete(tmp_path, "apt-clone", "-l", "-o", "us") == ["used"]
    assert _complete(tmp_path, "apt-clone", "list", "-o", "name,tr") == ["name,trial"]
    assert _complete(tmp_path, "apt-clone", "list", "-s", "cr") == ["created"]
    assert _complete(tmp_path, "apt-clone", "install", "nginx", "--js") == ["--json"]


def test_packages_come_from_the_managed_root(tmp_path):
    """remove completes what dpkg says is installed in --root, not on the host."""
    admin = tmp_path / "root" / "var" / "lib" / "dpkg"
    admin.mkdir(parents=True)
    (admin / "status").write_text(
        "Package: ac-only-in-root\nStatus: install ok installed\nVersion: 1\nArchitecture: all\n"
        "Maintainer: x\nDescription: x\n\n"
    )
    (admin / "info").mkdir()
    (admin / "updates").mkdir()
    root = str(tmp_path / "root")
    assert _complete(tmp_path, "apt-clone", "--root", root, "remove", "ac-") == ["ac-only-in-root"]
    assert _complete(tmp_path, "apt-clone", "remove", "ac-only") == []

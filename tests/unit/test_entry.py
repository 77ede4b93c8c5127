"""Which command lines take the boot-time shortcut past the CLI (apt_clone.entry)."""

import pytest

from apt_clone.entry import boot_command


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-y", "boot-started"], ("/", "boot-started")),
        (["trial-commit"], ("/", "trial-commit")),
        (["--root", "/mnt/x", "-y", "trial-commit"], ("/mnt/x", "trial-commit")),
        (["--root=/mnt/x", "--yes", "boot-started"], ("/mnt/x", "boot-started")),
    ],
)
def test_boot_commands_are_recognised(args, expected):
    assert boot_command(args) == expected


@pytest.mark.parametrize(
    "args",
    [[], ["-l"], ["--json", "trial-commit"], ["--debug", "-y", "boot-started"], ["boot-started", "-y"], ["--root"]],
)
def test_everything_else_goes_to_the_cli(args):
    assert boot_command(args) is None


@pytest.mark.parametrize(("args", "key"), [(["--json", "--version"], "version"), (["--json", "--help"], "help"),
                                           (["--json", "list", "--help"], "help")])  # fmt: skip
def test_json_version_and_help_are_one_json_document(args, key):
    import json
    import subprocess
    import sys

    got = subprocess.run([sys.executable, "-m", "apt_clone", *args], capture_output=True, text=True, timeout=60)
    assert got.returncode == 0, got.stderr
    document = json.loads(got.stdout)
    assert list(document) == [key] and document[key], document


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-l"], {"root": "/", "json_out": False, "sort": [], "sort_desc": []}),
        (["list"], {"root": "/", "json_out": False, "sort": [], "sort_desc": []}),
        (["--root", "/mnt", "--json", "-l"], {"root": "/mnt", "json_out": True, "sort": [], "sort_desc": []}),
        (["-l", "--json", "--root=/r"], {"root": "/r", "json_out": True, "sort": [], "sort_desc": []}),
        (
            ["-l", "-H", "-p", "-o", "name,used", "-s", "used", "-S", "created", "-s", "name"],
            {
                "root": "/",
                "json_out": False,
                "no_header": True,
                "exact": True,
                "output": "name,used",
                "sort": ["used", "name"],
                "sort_desc": ["created"],
            },
        ),  # fmt: skip
        (["list", "--names"], {"root": "/", "json_out": False, "names": True, "sort": [], "sort_desc": []}),
    ],
)
def test_a_plain_listing_takes_the_fast_path(args, expected):
    from apt_clone.entry import listing_args

    assert listing_args(args) == expected


@pytest.mark.parametrize(
    "args",
    [
        [], ["--version", "-l"], ["-l", "-l"], ["-l", "--debug"], ["-y", "-l"], ["-l", "-o"], ["-l", "-o", "-H"],
        ["-l", "-oname"], ["-l", "--output=name"], ["--root", "-l"], ["-l", "--help"], ["-l", "extra"],
        ["list", "-l"], ["-a", "x"], ["-H", "-l"],
    ],
)  # fmt: skip
def test_anything_else_is_the_parsers(args):
    from apt_clone.entry import listing_args

    assert listing_args(args) is None


def _both(args, env=None):
    """The fast path's and the parser's answers to ``args``: (exit status, stdout, stderr) each."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "COLUMNS": "80", **(env or {})}
    fast = subprocess.run([sys.executable, "-m", "apt_clone", *args], capture_output=True, text=True, env=env)
    slow_code = "import sys; from apt_clone.cli.app import main; sys.exit(main(sys.argv[1:]))"
    slow = subprocess.run([sys.executable, "-c", slow_code, *args], capture_output=True, text=True, env=env)
    return (fast.returncode, fast.stdout, fast.stderr), (slow.returncode, slow.stdout, slow.stderr)


@pytest.mark.parametrize(
    "args",
    [
        ["--version"], ["--help"], ["-h"], ["--root", "/nonexistent", "-l"], ["--root", "/nonexistent", "--json", "-l"],
        ["-l", "-o", "bogus"], ["--json", "-l", "-s", "name,bogus"],
    ],
)  # fmt: skip
def test_the_fast_paths_answer_as_the_parser_does(args):
    """What the fast path prints is what the parser prints (the help at 80 columns, errors of a
    listing with their JSON document); a real listing: tests/integration/test_admin_cli.py."""
    fast, slow = _both(args)
    assert fast == slow


def test_the_help_text_is_current():
    """apt_clone/cli/helptext.py is what the parser prints (in a process of its own, as a user
    runs it): rerun scripts/helptext.py when not."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "scripts/helptext.py"
    if not script.exists():
        pytest.skip("no source tree here (the package's autopkgtest): the package build ran this check")
    checked = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert checked.returncode == 0, "apt_clone/cli/helptext.py is stale: run scripts/helptext.py"


def test_the_one_command_parser_answers_as_the_whole_one():
    """A command line naming a command is parsed by a parser holding that command alone: its
    help and its usage errors read as the whole parser's."""
    import typer.main
    from click.testing import CliRunner

    from apt_clone.cli import app as cli

    names = [c.name for c in cli.app.registered_commands]
    assert len(names) > 20 and "rollback" in names
    for name in names:
        for args in ([name, "--help"], ["-y", name, "--no-such-option"]):
            one = cli._parser_for(args)
            assert one is not cli.app and [c.name for c in one.registered_commands] == [name]
            got = [CliRunner().invoke(typer.main.get_command(p), args, prog_name="apt-clone") for p in (one, cli.app)]
            assert got[0].exit_code == got[1].exit_code and got[0].output == got[1].output, name
    assert cli._parser_for(["--help"]) is cli.app and cli._parser_for(["-y", "nosuch"]) is cli.app


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-y", "install", "ac-extra"], "/"),
        (["--root", "/mnt/x", "-y", "-s", "dist-upgrade"], "/mnt/x"),
        (["--root=/mnt/x", "--json", "upgrade", "--no-update"], "/mnt/x"),
        (["-y", "install", "ac-extra", "--root", "/mnt/x"], None),  # the parser hoists it: no guess
        (["install", "--help"], None),
        (["-y", "install", "--dry-run", "ac-extra"], None),
        (["-l"], None),
        (["create"], None),
        (["--root"], None),
        (["-y", "--", "install"], None),
    ],
)
def test_an_apt_operation_is_recognised_before_the_parser(args, expected, monkeypatch):
    """Its planning child starts before typer loads (issue #36); anything unsure is left to the parser."""
    from apt_clone import entry

    monkeypatch.setattr(entry.os, "geteuid", lambda: 0)
    assert entry.apt_root(args) == expected
    monkeypatch.setattr(entry.os, "geteuid", lambda: 1000)
    assert entry.apt_root(args) is None

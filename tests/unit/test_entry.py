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

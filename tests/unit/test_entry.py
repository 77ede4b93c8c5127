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

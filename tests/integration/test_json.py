"""With --json every command prints exactly one JSON document on stdout, errors included, and
apt's own output goes to stderr."""

from __future__ import annotations

import json

from tests.helpers import SandboxInfo, apt_clone, config_env

SUCCEEDING = [
    ("-l",),
    ("--steps",),
    ("check",),
    ("-y", "create", "--title", "by hand"),
    ("show", "rootfs-nmu-001"),
    ("diff", "rootfs-nmu-000", "rootfs-nmu-001"),
    ("-y", "title", "rootfs-nmu-001", "retitled"),
    ("-y", "rename", "rootfs-nmu-001", "renamed"),
    ("-y", "-a", "renamed"),
    ("-y", "-a", "rootfs-nmu-000"),
    ("-y", "activate", "--once", "renamed"),
    ("-y", "boot-started"),
    ("-y", "trial-commit"),
    ("-y", "install", "ac-extra", "--no-update"),
    ("-y", "rollback", "rootfs-nmu-002"),
    ("-y", "-r", "renamed"),
    ("-y", "recover"),
]
FAILING = [
    (("-r", "nosuch"), 2),
    (("-y", "-r", "rootfs-nmu-000"), 3),
    (("-y", "create", "--title", ""), 2),
    (("no-such-command",), 2),
    (("-y", "resume"), 3),
    (("-r", "rootfs-nmu-000"), 3),
    (("-y", "install", "no-such-package", "--no-update"), 2),
]


def _document(result) -> dict | list:
    try:
        return json.loads(result.stdout)
    except ValueError as exc:
        raise AssertionError(f"stdout is not one JSON document: {result.stdout[:2000]!r}") from exc


def test_every_command_prints_one_json_document(pristine: SandboxInfo, tmp_path):
    no_health_check = config_env(tmp_path, "[trial]\nhealth = none\n")
    for args in SUCCEEDING:
        result = apt_clone(pristine, "--json", *args, env=no_health_check)
        expected = 4 if args == ("check",) else 0  # check: the sandbox has risks (no zfs-initramfs)
        assert result.returncode == expected, (args, result.stdout, result.stderr)
        _document(result)
    for args, code in FAILING:
        result = apt_clone(pristine, "--json", *args)
        assert result.returncode == code, (args, result.stdout, result.stderr)
        doc = _document(result)
        assert isinstance(doc, dict) and doc["exit_code"] == code and doc["error"], (args, doc)


def test_apts_own_output_goes_to_stderr(pristine: SandboxInfo):
    result = apt_clone(pristine, "--json", "-y", "install", "ac-extra", "--no-update")
    assert result.returncode == 0, result.stderr
    doc = _document(result)
    assert isinstance(doc, dict) and doc["status"] == "done" and doc["checkpoint"] == "rootfs-nmu-001"
    assert "Setting up ac-extra" in result.stderr
    assert "CheckpointMade" in [e["event"] for e in doc["events"]]  # what it told, as typed events

"""The ``apt-clone`` program.

apt runs two commands around dpkg (``apt-clone hook-pre`` with the hook protocol on its input,
``apt-clone hook-post``: :mod:`apt_clone.apt.hook`), systemd two at every boot (``apt-clone -y
boot-started`` early, ``apt-clone -y trial-commit`` once the system is up). They take no options
beyond ``--root`` and ``-y``, so they go straight to their service function without loading the
command-line parser (typer and click cost a noticeable part of a second where boots are slow, and
every apt run pays for the hook); everything else goes to the CLI.
"""

from __future__ import annotations

import os
import sys

BOOT_COMMANDS = ("boot-started", "trial-commit", "trial-deadline")
HOOK_COMMANDS = ("hook-pre", "hook-post")


def boot_command(args: list[str]) -> tuple[str, str] | None:
    """(root, command) when ``args`` is ``[--root ROOT] [-y] boot-started|trial-commit``."""
    if not args or args[-1] not in BOOT_COMMANDS:
        return None
    root, rest = "/", args[:-1]
    if rest[:1] == ["--root"] and len(rest) >= 2:
        root, rest = rest[1], rest[2:]
    elif rest[:1] and rest[0].startswith("--root="):
        root, rest = rest[0].split("=", 1)[1], rest[1:]
    if rest not in ([], ["-y"], ["--yes"]):
        return None
    return root, args[-1]


MAX_HOOK_INPUT = 64 << 20
"""The most of the hook's input read (apt's largest real one is a few megabytes): past it no
checkpoint is made, and nothing more is read."""


def _read_input() -> bytes | None:
    """The hook's input, at most :data:`MAX_HOOK_INPUT` bytes (None: more than that). A closed
    standard input reads as empty."""
    chunks, size = [], 0
    while size <= MAX_HOOK_INPUT:
        try:
            chunk = os.read(0, 1 << 20)
        except OSError:
            break  # closed or unreadable: what was read is the input
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks) if size <= MAX_HOOK_INPUT else None


def run_hook(command: str) -> int:
    """The APT hook's two calls: one line at most, on standard error, and apt's exit status
    (a line that cannot be written, stderr being full or closed, changes nothing)."""
    from .paths import HOOK_GUARD_ENV, in_chroot  # each path below loads only what it runs

    if command == "hook-pre":
        data = _read_input()  # all of it (apt must not meet a closed pipe), within the bound
        if os.environ.get(HOOK_GUARD_ENV) or in_chroot():
            return 0  # not this system's apt (hook.skip_reason): decided before the heavy imports
        from .apt import hook  # the hook's module only for this system's apt

        if data is None:
            result = hook.oversized(f"its input is longer than {MAX_HOOK_INPUT >> 20} MiB: not read")
        else:
            result = hook.pre(data.decode("utf-8", errors="replace"), os.environ)
    else:
        from .apt import hook  # hook-post: Python runs only when dpkg did otherwise than planned

        result = hook.post(os.environ)
    if result.line:
        try:
            os.write(2, (result.line + "\n").encode("utf-8", "backslashreplace"))
        except OSError:
            pass  # the line is lost, never the checkpoint nor apt's run
    return result.status


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 1 and args[0] in HOOK_COMMANDS:
        return run_hook(args[0])
    found = boot_command(args)
    if found is None:
        from .cli.app import main as cli_main  # typer and click: never on the hook's or the boot's path

        return cli_main(args)
    # a boot-time command: its verdict's modules, never the command-line parser
    from .cli.report import report, safe_output
    from .errors import AptCloneError
    from .signals import Interrupted, interrupts
    from .trial.verdict import run_boot_command

    safe_output()
    try:
        with interrupts():
            print(run_boot_command(*found)[0])
    except (AptCloneError, Interrupted, KeyboardInterrupt, OSError) as exc:
        return report(exc)  # --debug takes the CLI path
    return 0

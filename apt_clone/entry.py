"""The ``apt-clone`` program.

apt runs two commands around dpkg (``apt-clone hook-pre`` with the hook protocol on its input,
``apt-clone hook-post``: :mod:`apt_clone.apt.hook`), systemd two at every boot (``apt-clone -y
boot-started`` early, ``apt-clone -y trial-commit`` once the system is up). They take no options
beyond ``--root`` and ``-y``, so they go straight to their service function without loading the
command-line parser (typer and click cost a noticeable part of a second where boots are slow, and
every apt run pays for the hook). ``--version``, ``--help`` alone and a plain listing (``-l``
with its own options) are the commands a person types most: they too skip the parser
(:func:`listing_args`; the help's text is :mod:`apt_clone.cli.helptext`, checked against the
parser's by a test). Everything else goes to the CLI.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing itself is not imported at run time: the hook's start-up (mypy knows the name)
if TYPE_CHECKING:
    from .config import Config

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


def _configuration() -> Config | None:
    """The configuration, or None when it cannot be read (the hook's module then says why)."""
    from . import config  # the hook's switch, read before the hook's module loads

    try:
        return config.load()
    except Exception:  # noqa: BLE001 - never in apt's way: hook-pre reads it again and words it
        return None


def run_hook(command: str) -> int:
    """The APT hook's two calls: one line at most, on standard error, and apt's exit status
    (a line that cannot be written, stderr being full or closed, changes nothing)."""
    from .paths import HOOK_GUARD_ENV, in_chroot  # each path below loads only what it runs

    if command == "hook-pre":
        data = _read_input()  # all of it (apt must not meet a closed pipe), within the bound
        if os.environ.get(HOOK_GUARD_ENV) or in_chroot():
            return 0  # not this system's apt (hook.skip_reason): decided before the heavy imports
        cfg = _configuration()
        if cfg is not None and not cfg.hook:
            return 0  # turned off ([hook] enabled = no): decided before the hook's module loads
        from .apt import hook  # the hook's module only for this system's apt, the hook on

        if data is None:
            result = hook.oversized(f"its input is longer than {MAX_HOOK_INPUT >> 20} MiB: not read")
        else:
            result = hook.pre(data.decode("utf-8", errors="replace"), os.environ, cfg=cfg)
    else:
        from .apt import hook  # hook-post: Python runs only when dpkg did otherwise than planned

        result = hook.post(os.environ)
    if result.line:
        try:
            os.write(2, (result.line + "\n").encode("utf-8", "backslashreplace"))
        except OSError:
            pass  # the line is lost, never the checkpoint nor apt's run
    return result.status


LIST_FLAGS = {"--names": "names", "-H": "no_header", "-p": "exact"}
LIST_VALUES = {"-o": "output", "--output": "output", "-s": "sort", "--sort": "sort", "-S": "sort_desc"}
"""A listing's own options, as the command line's ``list`` takes them (typer: :func:`apt_clone.cli.app.list_cmd`)."""


def listing_args(args: list[str]) -> dict[str, object] | None:
    """The keyword arguments of :func:`apt_clone.cli.listing.show` and ``root`` when ``args`` is
    a plain listing: ``[--root ROOT] [--json] -l|list`` and the listing's options, the two global
    ones also after it. None for anything else (the parser decides, and words it)."""
    kw: dict[str, object] = {"root": "/", "json_out": False, "sort": [], "sort_desc": []}
    command = False
    i = 0
    while i < len(args):
        arg = args[i]
        value = args[i + 1] if i + 1 < len(args) and not args[i + 1].startswith("-") else None
        if arg in ("-l", "list") and not command:
            command = True
        elif arg == "--json":
            kw["json_out"] = True
        elif arg.startswith("--root=") and len(arg) > len("--root="):
            kw["root"] = arg.split("=", 1)[1]
        elif arg == "--root" and value is not None and not command:
            kw["root"], i = value, i + 1
        elif command and arg in LIST_FLAGS:
            kw[LIST_FLAGS[arg]] = True
        elif command and arg in LIST_VALUES and value is not None:
            key = LIST_VALUES[arg]
            if key == "output":
                kw[key] = value
            else:
                kw[key] = [*kw[key], value]  # type: ignore[misc]
            i += 1
        else:
            return None
        i += 1
    return kw if command else None


def _list(kw: dict[str, object]) -> int:
    """``apt-clone -l`` without the parser: as :func:`apt_clone.cli.app.main` runs it, errors too."""
    # what a listing reads with: never typer, click, the engine or python-apt
    from .cli.listing import show
    from .cli.render import to_json
    from .cli.report import last_report, report, safe_output
    from .context import open_context
    from .errors import AptCloneError
    from .signals import Interrupted, interrupts

    safe_output()
    root = str(kw.pop("root"))
    json_out = bool(kw["json_out"])
    try:
        with interrupts():
            cx = open_context(root)
            try:
                text = show(cx, **kw)  # type: ignore[arg-type]
            finally:
                cx.close()
            print(text, flush=True)  # a closed pipe is reported as the parser's path reports it
    except (AptCloneError, Interrupted, KeyboardInterrupt, OSError) as exc:
        code = report(exc)
        if json_out:
            print(to_json({"error": last_report(), "exit_code": code}))  # as the parser's path prints it
        return code
    return 0


def fast(args: list[str]) -> int | None:
    """The commands a person types most, without the parser: their exit status (None: the CLI's)."""
    if args == ["--version"]:
        from . import __version__  # the package's first line: nothing else

        print(f"apt-clone {__version__}")
        return 0
    if args in (["--help"], ["-h"]):
        import shutil  # what click measures the terminal with

        if shutil.get_terminal_size().columns < 80:
            return None  # narrower: click wraps it otherwise
        from .cli.helptext import TOP  # one string: no parser

        sys.stdout.write(TOP)
        return 0
    kw = listing_args(args)
    return _list(kw) if kw is not None else None


APT_OPERATIONS = ("dist-upgrade", "upgrade", "install", "remove")
_GLOBAL_FLAGS = ("-y", "--yes", "--json", "--debug", "-s", "--in-clone", "--steps")


def apt_root(args: list[str]) -> str | None:
    """The root of an apt operation's command line run by root (``[global options] install
    ...``; not ``--help`` or ``--dry-run``), whose planning child may start before the parser
    loads (:func:`apt_clone.apt.plan.warm_up`); None otherwise. A guess at most: the parser
    decides, and a child nothing asks for ends with the command."""
    if os.geteuid() != 0 or "--" in args:
        return None
    root, i = "/", 0
    while i < len(args) and args[i] not in APT_OPERATIONS:
        if args[i] == "--root" and i + 1 < len(args):
            root, i = args[i + 1], i + 2
        elif args[i].startswith("--root="):
            root, i = args[i].split("=", 1)[1], i + 1
        elif args[i] in _GLOBAL_FLAGS:
            i += 1
        else:
            return None
    if i == len(args) or any(a in ("--help", "-h", "--dry-run", "--root") or a.startswith("--root=") for a in args[i:]):
        return None
    return root


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 1 and args[0] in HOOK_COMMANDS:
        status = run_hook(args[0])
        if argv is None:  # the program apt waits for: its modules are not torn down (3 ms)
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()  # nothing is left in them (the hook writes with os.write): kept so
                except (AttributeError, OSError, ValueError):
                    pass  # closed, or none: nothing to lose
            os._exit(status)
        return status
    done = fast(args)
    if done is not None:
        return done
    found = boot_command(args)
    if found is None:
        root = apt_root(args)
        if root is not None:
            # the planning child's start: python-apt loads in it while typer and the engine load here
            from .apt.plan import warm_up
            from .runner import DEFAULT_RUNNER

            warm_up(DEFAULT_RUNNER, root)
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

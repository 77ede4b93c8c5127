"""The ``apt-clone`` command line: parse, call one service function, render the result.

The seed's short forms work as in the seed, with global options before them:
``apt-clone -l``, ``apt-clone -a NAME``, ``apt-clone -r NAME``.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

from ..record import asdict, record

if "rich" not in sys.modules:
    # typer < 0.16 imports rich (with markdown-it and pygments) as it loads, only to decorate
    # help and errors: a tenth of a second per command natively and seconds on slow machines,
    # and apt-clone runs at every boot. Its plain click output is what a system tool prints.
    sys.modules["rich"] = None  # type: ignore[assignment]  # `import rich` now fails fast
    try:
        import typer
    finally:
        del sys.modules["rich"]
else:  # pragma: no cover - embedded in a program that uses rich already
    import typer

try:  # typer < 0.16 runs on click; later versions vendor it and raise typer.TyperException
    from click.exceptions import ClickException as _BadUsage
except ImportError:  # pragma: no cover - depends on the installed typer
    from typer import TyperException as _BadUsage  # type: ignore[assignment,no-redef,attr-defined,unused-ignore]

from .. import __version__
from ..checkpoints import services
from ..checkpoints.tree import list_checkpoints
from ..context import Context, open_context
from ..errors import EXIT_FAILED, EXIT_RISKS, EXIT_USAGE, AptCloneError, UsageError, require_root
from ..lock import exclusive
from ..model import label
from ..names import resolve_name, validate_name, validate_title
from ..signals import Interrupted, interrupts
from . import listing, render
from .report import last_report, report, safe_output

if TYPE_CHECKING:
    from ..apt.events import Event
    from ..engine.journal import OpState

# The journalled commands (checkpoints.commands and the engine), the apt operation (python-apt
# planning, apt-get, the chroot), recovery, prune, inspect and check are imported where they are
# used: the listing starts without them (under emulation each module costs a noticeable fraction).
# The boot-time commands do not load this module at all (entry.py).


class _Commands(typer.core.TyperGroup):
    """The command group, whose help lists the seed's short forms with the commands."""

    SHORT_FORMS = (
        ("-l", "List checkpoints (the same as 'list')."),
        ("-a NAME", "Make checkpoint NAME boot next (the same as 'activate NAME')."),
        ("-r NAME", "Destroy checkpoint NAME (the same as 'destroy NAME')."),
    )

    def format_commands(self, ctx: typer.Context, formatter: Any) -> None:  # type: ignore[override]
        found = [(n, self.get_command(ctx, n)) for n in self.list_commands(ctx)]
        shown = [(n, c) for n, c in found if c is not None and not c.hidden]
        limit = formatter.width - 6 - max(len(n) for n, _ in [*shown, *self.SHORT_FORMS])
        rows = [*self.SHORT_FORMS, *((n, c.get_short_help_str(limit)) for n, c in shown)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


app = typer.Typer(
    cls=_Commands,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Transactional apt operations checkpointed with ZFS boot environments.\n\n"
    "Options go before or after the command: 'apt-clone -y install PKG' and 'apt-clone install PKG -y' "
    "are the same.",
    context_settings={"help_option_names": ["-h", "--help"]},
)


Name = Annotated[str, typer.Argument(metavar="NAME", help="A checkpoint, as 'apt-clone -l' names it.")]
Picked = Annotated[
    str | None,
    typer.Argument(metavar="[NAME]", help="A checkpoint, as 'apt-clone -l' names it (none: pick one on a terminal)."),
]
Packages = Annotated[list[str], typer.Argument(metavar="PACKAGE...", help="Package names, as apt-get takes them.")]

READER_WAIT = 60.0
"""Seconds a reader that mounts checkpoints (diff) waits for another command to finish."""
PAUSABLE = ("dist-upgrade", "upgrade", "install", "remove", "resume")
"""The commands whose steps --pause-at can stop after."""


@record()
class Options:
    root: str
    yes: bool
    json: bool
    debug: bool
    in_clone: bool
    pause_at: str | None = None


def _opts(ctx: typer.Context) -> Options:
    obj = ctx.find_root().obj
    assert isinstance(obj, Options)
    return obj


_OPENED: list[Context] = []
"""The contexts this command opened: closed (what they mounted, unmounted) when it ends."""


def _context(opts: Options) -> Context:
    cx = open_context(opts.root)
    _OPENED.append(cx)
    return cx


def _confirm(text: str, *, yes: bool) -> bool:
    from .prompts import confirm  # the questions: only a command that asks loads them

    return confirm(text, yes=yes)


def _choose(message: str, names: list[str], labels: list[str] | None = None) -> str:
    from .prompts import choose  # the questions: only a command that asks loads them

    return choose(message, names, labels)


def _need_root() -> None:
    require_root()


def _guard(cx: Context, *, freeing: bool = False) -> OpState | None:
    """Under the lock, before a mutating command: recover an interrupted checkpoint command, or
    refuse; ``freeing`` (destroy): the pending operation that has to wait, if any."""
    # recovery knows every operation: loaded only by a mutating command
    from ..recovery import check_unfinished

    notes, deferred = check_unfinished(cx, freeing=freeing)
    for note in notes:
        print(f"apt-clone: {note}", file=sys.stderr)
    return deferred


def _ask(opts: Options, question: Callable[[], str]) -> None:
    """Confirm before taking the lock. The question names what it acts on, so making it reads
    (and checks) the checkpoints; with -y nothing is read here: the one read is under the lock."""
    if not opts.yes and not _confirm(question(), yes=False):
        raise typer.Exit(EXIT_FAILED)


_JSON = {"emitted": False, "wanted": False}
"""Whether this command has printed its JSON document (one per command, errors included)."""


def _emit(document: str) -> None:
    print(document, flush=True)
    _JSON["emitted"] = True


def _out(opts: Options, text: str, data: Any) -> None:
    if opts.json:
        _emit(render.to_json(data))
    else:
        print(text)


def _show_version(value: bool) -> None:
    if value:
        if _JSON["wanted"]:
            _emit(render.to_json({"version": __version__}))
        else:
            print(f"apt-clone {__version__}")
        raise typer.Exit(0)


@app.callback(invoke_without_command=True)
def _global(
    ctx: typer.Context,
    version: Annotated[
        bool, typer.Option("--version", is_eager=True, callback=_show_version, help="Print the version and exit.")
    ] = False,
    root: Annotated[str, typer.Option("--root", help="Root directory of the managed system.")] = "/",
    yes: Annotated[bool, typer.Option("-y", "--yes", help="Answer yes to every question.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print results as JSON.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
    in_clone: Annotated[
        bool, typer.Option("-s", "--in-clone", help="Run apt inside the clone (Upgrade Checkpoint).")
    ] = False,
    steps: Annotated[bool, typer.Option("--steps", help="List the named steps of every operation.")] = False,
    pause_at: Annotated[
        str | None, typer.Option("--pause-at", metavar="STEP", help="Stop an apt operation after STEP.")
    ] = None,
) -> None:
    ctx.obj = Options(root, yes, json_out, debug, in_clone, pause_at)
    if pause_at is not None and ctx.invoked_subcommand not in PAUSABLE:
        what = f"'{ctx.invoked_subcommand}'" if ctx.invoked_subcommand else "listing"
        raise UsageError(f"--pause-at: {what} has no steps to pause at (only {', '.join(PAUSABLE)})")
    if steps:
        # importing it registers every operation's steps
        from ..apt.operation import APT_SPEC
        from ..engine.steps import REGISTRY

        specs = [APT_SPEC] + [s for s in dict.fromkeys(REGISTRY.values()) if s is not APT_SPEC]
        table = {spec.ops: spec.steps for spec in specs}
        if json_out:
            _emit(render.to_json({op: [{"step": n, "does": d} for n, d in st] for op, st in table.items()}))
        else:
            for op, st in table.items():
                print(f"{op}:")
                print("\n".join(f"  {i:>2}. {n:<9} {d}" for i, (n, d) in enumerate(st, 1)))
        raise typer.Exit(0)
    if ctx.invoked_subcommand is None:
        list_cmd(ctx)


@app.command("list")
def list_cmd(
    ctx: typer.Context,
    names: Annotated[
        bool, typer.Option("--names", help="Print only the names, one per line (for scripts and completion).")
    ] = False,
    output: Annotated[
        str | None,
        typer.Option("-o", "--output", metavar="COL,...", help=f"Show these columns ({', '.join(render.COLUMNS)})."),
    ] = None,
    no_header: Annotated[
        bool, typer.Option("-H", help="No header; one tab between fields (for scripts), as zfs list -H.")
    ] = False,
    exact: Annotated[bool, typer.Option("-p", help="Exact numbers: sizes in bytes, times in epoch seconds.")] = False,
    sort: Annotated[
        list[str] | None, typer.Option("-s", "--sort", metavar="COL", help="Sort by COL, ascending (repeatable).")
    ] = None,
    sort_desc: Annotated[
        list[str] | None, typer.Option("-S", metavar="COL", help="Sort by COL, descending (repeatable).")
    ] = None,
) -> None:
    """List checkpoints: A = active (boots next; T: boots next once, a trial), C = current (running)."""
    opts = _opts(ctx)
    text = listing.show(
        _context(opts),
        json_out=opts.json,
        names=names,
        output=output,
        no_header=no_header,
        exact=exact,
        sort=sort or (),
        sort_desc=sort_desc or (),
    )
    if opts.json:
        _emit(text)
    else:
        print(text)


def _pick(cx: Context, name: str | None, message: str, *, exclude_current: bool = False) -> str:
    if name is not None:
        return resolve_name(name, cx.system.container)  # '' is a bad name, not a missing one
    found = [cp for cp in list_checkpoints(cx).checkpoints if not (exclude_current and cp.current)]
    width = max((len(cp.name) for cp in found), default=0)
    return _choose(message, [cp.name for cp in found], [f"{cp.name.ljust(width)}  {label(cp)}" for cp in found])


@app.command("activate")
def activate_cmd(
    ctx: typer.Context,
    name: Picked = None,
    once: Annotated[
        bool, typer.Option("--once", help="Boot it once; it becomes the default after a healthy boot.")
    ] = False,
) -> None:
    """Make checkpoint NAME boot next (pool bootfs and GRUB's default entry)."""
    # the engine and the journal: off -l's start-up
    from ..checkpoints import commands

    opts = _opts(ctx)
    _need_root()
    cx = _context(opts)
    name = _pick(cx, name, "Which checkpoint should boot next?")
    question = "boot '{}' once, as a trial" if once else "set default boot entry to '{}'"

    def asked() -> str:
        cp = services.find(cx, name)
        warning = f"'{cp.name}' was marked bad: {render.bad_text(cp.bad)}. " if cp.bad else ""
        return f"{warning}This will {question.format(cp.dataset)}. Proceed ? (y/n)"

    _ask(opts, asked)  # a bad one is asked about again; with -y the result says it was bad
    with exclusive():
        _guard(cx)
        result = commands.arm_trial(cx, name) if once else commands.activate(cx, name)
    if once:
        _out(opts, "\n".join(result.messages), {"dataset": result.dataset, "once": True, "messages": result.messages})
        return
    text = "\n".join([f"Upgrade changes for clone '{result.dataset}' has been activated.", *result.messages])
    _out(opts, text, result)


@app.command("destroy")
def destroy_cmd(
    ctx: typer.Context,
    name: Picked = None,
    force: Annotated[
        str | None, typer.Option("--force", metavar="OTHER", help="If NAME boots next, activate OTHER first.")
    ] = None,
) -> None:
    """Destroy checkpoint NAME, its descendants and its snapshot, promoting dependants."""
    # the engine and the journal: off -l's start-up
    from ..checkpoints import commands

    opts = _opts(ctx)
    _need_root()
    cx = _context(opts)
    name = _pick(cx, name, "Which checkpoint should be destroyed?", exclude_current=True)

    def question() -> str:
        plan = services.plan_destroy(cx, name, activate_instead=force)  # refusals come before the question
        return f"This will destroy clone '{plan.checkpoint.dataset}'. Proceed ? (y/n)"

    _ask(opts, question)
    with exclusive():
        deferred = _guard(cx, freeing=True)
        plan = services.plan_destroy(cx, name, activate_instead=force)
        result = commands.destroy(cx, plan, deferred=deferred)
    lines = []
    if result.activated:
        lines.append(f"Activated '{result.activated}' first.")
    lines += [f"Promoted '{p}' (it now owns the older snapshots)." for p in result.promoted]
    lines.append(f"Upgrade changes for clone '{result.dataset}' now rolled back/destroyed.")
    lines += result.notes
    _out(opts, "\n".join(lines), result)


@app.command("create")
def create_cmd(
    ctx: typer.Context,
    title: Annotated[str | None, typer.Option("--title", "-t", help="Title of the new checkpoint.")] = None,
    name: Annotated[
        str | None, typer.Option("--name", "-n", help="Name of the new checkpoint (default: the next number).")
    ] = None,
) -> None:
    """Make a checkpoint of the current system by hand (Rollback Checkpoint)."""
    # the engine and the journal: off -l's start-up
    from ..checkpoints import commands

    opts = _opts(ctx)
    if title is not None:
        validate_title(title)  # bad input is refused before anything runs
    if name is not None:
        validate_name(name)
    _need_root()
    cx = _context(opts)
    with exclusive():
        _guard(cx)
        result = commands.create(cx, title=title, kind="manual", name=name)
    _out(opts, f"Rollback Checkpoint has been created: {result.checkpoint}", result)


@app.command("prune")
def prune_cmd(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what would be removed; remove nothing.")] = False,
    include_manual: Annotated[
        bool, typer.Option("--include-manual", help="Manual and initial checkpoints are candidates too.")
    ] = False,
) -> None:
    """Remove the checkpoints the retention policy of apt-clone.conf does not keep."""
    # retention's plan and the configuration: only prune loads them
    from .. import config
    from ..checkpoints import prune

    opts = _opts(ctx)
    _need_root()
    cx = _context(opts)
    policy = prune.policy_of(config.load())
    if not dry_run:

        def question() -> str:
            names = [r.name for r in prune.plan(cx, policy, include_manual=include_manual).remove]
            return f"This will destroy {len(names)} checkpoint(s): {', '.join(names) or 'none'}. Proceed ? (y/n)"

        _ask(opts, question)
    with exclusive():
        deferred = None if dry_run else _guard(cx, freeing=True)
        shown = _Progress("removed")
        try:
            result = prune.prune(
                cx, policy, include_manual=include_manual, dry_run=dry_run, deferred=deferred, progress=shown
            )
        finally:
            shown.done()
    _out(opts, render.prune_text(result), result)


class _Progress:
    """Each step of a long command as it goes, on standard error: a bar on a terminal, else a
    line each."""

    def __init__(self, verb: str) -> None:
        self.verb = verb
        self.bar = sys.stderr.isatty()
        self.shown = False

    def __call__(self, done: int, total: int, name: str) -> None:
        if self.bar:
            filled = 30 * done // max(total, 1)
            sys.stderr.write(f"\r[{'#' * filled}{' ' * (30 - filled)}] {done}/{total} {self.verb} {name}\x1b[K")
            self.shown = True
        else:
            sys.stderr.write(f"apt-clone: {self.verb} {name} ({done}/{total})\n")
        sys.stderr.flush()

    def done(self) -> None:
        if self.shown:
            sys.stderr.write("\n")


@app.command("pin")
def pin_cmd(ctx: typer.Context, name: Name) -> None:
    """Keep checkpoint NAME whatever the retention policy says (prune never removes it)."""
    _pin(ctx, name, True)


@app.command("unpin")
def unpin_cmd(ctx: typer.Context, name: Name) -> None:
    """Let the retention policy decide about checkpoint NAME again."""
    _pin(ctx, name, False)


def _pin(ctx: typer.Context, name: str, pinned: bool) -> None:
    opts = _opts(ctx)
    _need_root()
    cx = _context(opts)
    resolve_name(name, cx.system.container)
    with exclusive():
        _guard(cx)
        cp = services.pin(cx, name, pinned)
    _out(opts, f"'{cp.name}' is {'pinned: prune keeps it' if pinned else 'no longer pinned'}.", cp.to_json())


@app.command("rename")
def rename_cmd(
    ctx: typer.Context,
    old: Name,
    new: Annotated[str, typer.Argument(metavar="NEW", help="Its new name.")],
) -> None:
    """Rename checkpoint OLD to NEW (the active one keeps booting)."""
    # the engine and the journal: off -l's start-up
    from ..checkpoints import commands

    opts = _opts(ctx)
    _need_root()
    cx = _context(opts)
    resolve_name(old, cx.system.container)
    resolve_name(new, cx.system.container)
    with exclusive():
        _guard(cx)
        result = commands.rename(cx, old, new)
    _out(opts, f"Renamed '{result.old}' to '{result.new}'.", result)


Rw = Annotated[bool, typer.Option("--rw", help="Read-write (the default is read-only).")]


@app.command("mount")
def mount_cmd(
    ctx: typer.Context,
    name: Name,
    directory: Annotated[
        str | None,
        typer.Argument(metavar="[DIR]", help="An empty directory (default: /run/apt-clone/mounted/NAME)."),
    ] = None,
    rw: Rw = False,
) -> None:
    """Mount checkpoint NAME, read-only unless --rw, with its children and boot twin under it."""
    # the engine and the journal: off -l's start-up
    from ..checkpoints import commands

    opts = _opts(ctx)
    _need_root()
    cx = _context(opts)
    resolve_name(name, cx.system.container)
    with exclusive():
        _guard(cx)
        st = commands.mount(cx, name, directory, rw=rw)
    how = "read-write" if st.rw else "read-only"
    result = {"checkpoint": st.name, "directory": st.directory, "rw": st.rw}
    _out(opts, f"Mounted '{st.name}' {how} at {st.directory} ('apt-clone umount {st.name}' takes it away).", result)


@app.command("umount")
def umount_cmd(ctx: typer.Context, name: Name) -> None:
    """Unmount what 'apt-clone mount NAME' mounted."""
    # the engine and the journal: off -l's start-up
    from ..checkpoints import commands

    opts = _opts(ctx)
    _need_root()
    cx = _context(opts)
    resolve_name(name, cx.system.container)
    with exclusive(wait=READER_WAIT):
        _guard(cx)
        st = commands.umount(cx, name)
    _out(opts, f"Unmounted '{st.name}' from {st.directory}.", {"checkpoint": st.name, "directory": st.directory})


@app.command("chroot", context_settings={"allow_interspersed_args": False, "ignore_unknown_options": True})
def chroot_cmd(
    ctx: typer.Context,
    name: Name,
    argv: Annotated[
        list[str] | None, typer.Argument(metavar="[COMMAND...]", help="What to run in it (default: your shell).")
    ] = None,
    rw: Rw = False,
) -> None:
    """Run a command (a shell) chrooted into checkpoint NAME, mounted for it (read-only unless
    --rw, given before NAME) and taken down after; exits with the command's status."""
    # the engine and the journal: off -l's start-up
    from ..checkpoints import commands

    opts = _opts(ctx)
    _need_root()
    cx = _context(opts)
    resolve_name(name, cx.system.container)
    with exclusive():  # held while it runs: nothing else changes the checkpoints meanwhile
        _guard(cx)
        st = commands.chroot(cx, name, argv or [], rw=rw)
    status = st.status if st.status is not None else EXIT_FAILED
    if opts.json:
        _emit(render.to_json({"checkpoint": st.name, "command": st.argv, "status": status}))
    if status:
        raise typer.Exit(status)


@app.command("title")
def title_cmd(
    ctx: typer.Context, name: Name, text: Annotated[str, typer.Argument(metavar="TITLE", help="Its new title.")]
) -> None:
    """Set the title of checkpoint NAME."""
    opts = _opts(ctx)
    validate_title(text)
    _need_root()
    cx = _context(opts)
    resolve_name(name, cx.system.container)
    with exclusive():
        _guard(cx)
        cp = services.retitle(cx, name, text)
    _out(opts, f"Title of '{cp.name}' is now: {cp.title}", cp.to_json())


class CliInteraction:
    """The service's questions, answered here: -y, a terminal prompt, or a refusal."""

    def __init__(self, opts: Options, then: str | None) -> None:
        self.opts = opts
        self.then = then
        self.events: list[dict[str, Any]] = []
        """What the operation told, for the JSON document."""

    def emit(self, event: Event) -> None:
        # the events' text: only an apt operation emits events
        from .render_events import as_json, lines

        self.events.append(as_json(event))
        for line in lines(event):
            print(line, file=sys.stderr if self.opts.json else sys.stdout, flush=True)

    def confirm(self, text: str) -> bool:
        return _confirm(text, yes=self.opts.yes)

    def confirm_rollback(self, text: str) -> bool:
        return _confirm(text, yes=self.opts.yes)

    def confirm_prune(self, text: str) -> bool:
        """Destroying checkpoints is never a -y default: --prune, or yes at a terminal."""
        if self.opts.yes or not (sys.stdin.isatty() and sys.stdout.isatty()):
            return False
        return _confirm(text, yes=False)

    def person_answers(self) -> bool:
        return not self.opts.yes and sys.stdin.isatty() and sys.stdout.isatty()

    def after_upgrade(self, checkpoint: str) -> str:
        if self.then:
            return self.then
        if self.opts.yes or not (sys.stdin.isatty() and sys.stdout.isatty()):
            return "nothing"
        options = {
            f"1. Reboot now into '{checkpoint}' once; activate it after checking the system is healthy": "reboot",
            f"2. Activate '{checkpoint}' now, reboot later": "activate",
            "3. Continue using the system as is; do (1) or (2) later": "nothing",
        }
        return options[_choose("At this point you have three options:", list(options))]


ThenOption = Annotated[
    str | None,
    typer.Option(
        "--then",
        metavar="[reboot|activate|nothing]",
        help="After a successful upgrade in the clone: reboot into it, activate it, or nothing "
        "(default: [apt] then, else ask on a terminal).",
    ),
]
NoUpdate = Annotated[bool, typer.Option("--no-update", help="Do not update the APT sources first.")]
DryRun = Annotated[
    bool,
    typer.Option("--dry-run", help="Show the plan, the mode and the space it needs; change nothing (no update)."),
]
InClone = Annotated[bool, typer.Option("-s", "--in-clone", help="Run apt inside the clone (Upgrade Checkpoint).")]
PruneFirst = Annotated[
    bool, typer.Option("--prune", help="When the pools are too full for the change, run 'apt-clone prune' first.")
]


def _apt(
    ctx: typer.Context,
    op: str,
    packages: Packages,
    no_update: bool,
    then: str | None,
    in_clone: bool,
    prune_first: bool = False,
    dry_run: bool = False,
) -> None:
    # the request and the planning child's start (python-apt runs in the child): an apt operation's
    from .. import config
    from ..apt import plan
    from ..apt.request import THEN_CHOICES, AptRequest

    opts = _opts(ctx)
    if then is not None and then not in THEN_CHOICES:
        raise UsageError(f"--then must be one of {', '.join(THEN_CHOICES)}")
    _need_root()
    settings = config.load()
    then = then or (None if settings.then == "ask" else settings.then)
    cx = _context(opts)
    if not dry_run:
        plan.warm_up(cx.runner, cx.system.root)  # python-apt loads in it while the engine's modules load here
    # apt-get, the engine and recovery: loaded beside the planning child
    from ..apt.operation import run_apt_operation
    from ..recovery import guard

    req = AptRequest(
        op,
        tuple(packages),
        update=settings.update and not no_update and not dry_run,
        in_clone=opts.in_clone or in_clone or settings.mode == "clone",
        command=" ".join(["apt-clone", op, *packages]),
        then=then,
        prune=prune_first,
        dry_run=dry_run,
    )
    ui = CliInteraction(opts, then)
    outcome = run_apt_operation(cx, req, ui, guard, opts.pause_at)
    if opts.json:
        _emit(render.to_json({**asdict(outcome), "events": ui.events}))
    elif outcome.status == "planned":
        print(f"Dry run: nothing changed (apt would run {outcome.mode}).")
    if outcome.status == "cancelled":
        raise typer.Exit(EXIT_FAILED)


@app.command("dist-upgrade")
def dist_upgrade_cmd(
    ctx: typer.Context,
    no_update: NoUpdate = False,
    then: ThenOption = None,
    in_clone: InClone = False,
    prune_first: PruneFirst = False,
    dry_run: DryRun = False,
) -> None:
    """Upgrade the whole system (apt-get dist-upgrade) under a checkpoint."""
    _apt(ctx, "dist-upgrade", [], no_update, then, in_clone, prune_first, dry_run)


@app.command("upgrade")
def upgrade_cmd(
    ctx: typer.Context,
    no_update: NoUpdate = False,
    then: ThenOption = None,
    in_clone: InClone = False,
    prune_first: PruneFirst = False,
    dry_run: DryRun = False,
) -> None:
    """Upgrade installed packages (apt-get upgrade) under a checkpoint."""
    _apt(ctx, "upgrade", [], no_update, then, in_clone, prune_first, dry_run)


@app.command("install")
def install_cmd(
    ctx: typer.Context,
    packages: Packages,
    no_update: NoUpdate = False,
    then: ThenOption = None,
    in_clone: InClone = False,
    prune_first: PruneFirst = False,
    dry_run: DryRun = False,
) -> None:
    """Install packages under a checkpoint."""
    _apt(ctx, "install", packages, no_update, then, in_clone, prune_first, dry_run)


@app.command("remove")
def remove_cmd(
    ctx: typer.Context,
    packages: Packages,
    no_update: NoUpdate = False,
    then: ThenOption = None,
    in_clone: InClone = False,
    prune_first: PruneFirst = False,
    dry_run: DryRun = False,
) -> None:
    """Remove packages under a checkpoint."""
    _apt(ctx, "remove", packages, no_update, then, in_clone, prune_first, dry_run)


@app.command("rollback")
def rollback_cmd(ctx: typer.Context, name: Name) -> None:
    """Roll the running system back to the state kept in checkpoint NAME (made in place), dropping NAME."""
    # the engine and the journal: off -l's start-up
    from ..checkpoints import commands

    opts = _opts(ctx)
    _need_root()
    cx = _context(opts)

    def question() -> str:
        cp = services.find(cx, name)
        return f"This will roll '{cx.system.dataset}' back to '{cp.origin}' and destroy '{cp.dataset}'. Proceed ? (y/n)"

    _ask(opts, question)
    with exclusive():
        _guard(cx)
        result = commands.rollback_to(cx, name)
    _out(opts, f"'{result.dataset}' rolled back to '{result.snapshot}'; '{result.destroyed}' destroyed.", result)


@app.command("resume")
def resume_cmd(
    ctx: typer.Context,
    step: Annotated[str | None, typer.Argument(help="Resume from this step (default: where it stopped).")] = None,
    pause_at: Annotated[str | None, typer.Option("--pause-at", metavar="STEP", help="Stop again after STEP.")] = None,
) -> None:
    """Continue the last paused or failed apt operation from its step, or an earlier one."""
    # python-apt planning, apt-get and the engine: only for an apt operation
    from ..apt.operation import resume

    opts = _opts(ctx)
    _need_root()
    cx = _context(opts)
    with exclusive():
        ui = CliInteraction(opts, None)
        outcome = resume(cx, ui, step, pause_at or opts.pause_at)
    if opts.json:
        _emit(render.to_json({**asdict(outcome), "events": ui.events}))


@app.command("recover")
def recover_cmd(ctx: typer.Context) -> None:
    """After a crash: finish the interrupted operation or undo it; remove leftovers."""
    # recovery knows every operation: loaded only by a mutating command
    from ..recovery import recover

    opts = _opts(ctx)
    _need_root()
    cx = _context(opts)
    with exclusive():
        lines = recover(cx)
    _out(opts, "\n".join(lines), lines)


@app.command("boot-started", hidden=True)
def boot_started_cmd(ctx: typer.Context) -> None:
    """Early boot (apt-clone-boot.service): spend a one-time boot request."""
    # the verdict's modules stay off every other command's start-up
    from ..trial.verdict import run_boot_command

    opts = _opts(ctx)
    message = run_boot_command(opts.root, "boot-started")[0]
    _out(opts, message, {"message": message})


@app.command("trial-commit", hidden=True)
def trial_commit_cmd(ctx: typer.Context) -> None:
    """After boot (apt-clone-trial.service): make a healthy trial checkpoint the default."""
    # the verdict's modules stay off every other command's start-up
    from ..trial.verdict import run_boot_command

    opts = _opts(ctx)
    message, result = run_boot_command(opts.root, "trial-commit")
    _out(opts, message, result)


@app.command("trial-deadline", hidden=True)
def trial_deadline_cmd(ctx: typer.Context) -> None:
    """A trial's deadline (a systemd timer set at its boot): no verdict yet means it hung."""
    # the verdict's modules stay off every other command's start-up
    from ..trial.verdict import run_boot_command

    opts = _opts(ctx)
    message, result = run_boot_command(opts.root, "trial-deadline")
    _out(opts, message, result)


@app.command("show")
def show_cmd(ctx: typer.Context, name: Name) -> None:
    """Show a checkpoint's metadata and the package changes recorded with it."""
    # show and diff only
    from ..checkpoints import inspect

    opts = _opts(ctx)
    details = inspect.show(_context(opts), name)
    _out(opts, render.show_text(details), details)


@app.command("check")
def check_cmd(ctx: typer.Context) -> None:
    """The layout of the managed system and its risks, each with its fix (changes nothing)."""
    # check only
    from ..checkpoints import check

    opts = _opts(ctx)
    _need_root()
    cx = _context(opts)
    with exclusive(wait=READER_WAIT):  # GRUB's directory may be another checkpoint's, mounted to be read
        report = check.check(cx)
    _out(opts, render.check_text(report), report.to_json())
    if report.risks:
        raise typer.Exit(EXIT_RISKS)  # for monitoring: something here can leave the host unbootable or lose data


@app.command("share-grub")
def share_grub_cmd(ctx: typer.Context) -> None:
    """Move GRUB's directory out of the checkpoints into a dataset they all share (grub-install)."""
    # the engine and the journal: off -l's start-up
    from ..checkpoints.commands import share_grub

    opts = _opts(ctx)
    _need_root()
    cx = _context(opts)
    _ask(opts, lambda: "This moves GRUB's directory to a shared dataset and runs grub-install. Proceed ? (y/n)")
    with exclusive():
        _guard(cx)
        message = share_grub(cx)
    _out(opts, message, {"message": message})


@app.command("diff")
def diff_cmd(
    ctx: typer.Context,
    a: Annotated[str, typer.Argument(metavar="A", help="The checkpoint to compare from.")],
    b: Annotated[str, typer.Argument(metavar="B", help="The checkpoint to compare to.")],
    files: Annotated[
        bool, typer.Option("--files", help="The files that differ (zfs diff, where the ZFS has it), not the packages.")
    ] = False,
) -> None:
    """Package differences between checkpoints A and B (from their dpkg status files), or with
    --files the files that differ."""
    # show and diff only
    from ..checkpoints import inspect

    opts = _opts(ctx)
    _need_root()
    cx = _context(opts)
    with exclusive(wait=READER_WAIT):  # checkpoints are mounted for the read: one at a time
        if files:
            found = inspect.file_diff(cx, a, b)
            _out(opts, render.file_diff_text(found), found)
            return
        result = inspect.diff(cx, a, b)
    _out(opts, render.diff_text(result), result)


# --- entry point ----------------------------------------------------------------------------
_VALUE_OPTIONS = {"--root", "--pause-at"}
_FLAGS = {"-y", "--yes", "--json", "--debug", "-s", "--in-clone", "--steps"}
_SHORT_FORMS = {"-l": "list", "--list": "list", "-a": "activate", "-r": "destroy"}


_HOISTED_FLAGS = {"-y", "--yes", "--json", "--debug"}
"""The global flags a command's arguments may hold: they go before the command (``-s`` stays,
since the apt commands and ``list`` have their own)."""
PASSED_ON = {"chroot": 1}
"""Commands that pass what follows their first N arguments on, untouched (chroot's command)."""
COMMAND_VALUE_OPTIONS: dict[str, frozenset[str]] = {
    "list": frozenset({"-o", "--output", "-s", "--sort", "-S"}),
    "destroy": frozenset({"--force"}),
    "create": frozenset({"--title", "-t", "--name", "-n"}),
    **{op: frozenset({"--then"}) for op in ("dist-upgrade", "upgrade", "install", "remove")},
    "resume": frozenset({"--pause-at"}),
}
"""Each command's own options that take a value: the word after one is its value, never moved
(a unit test keeps this in step with the commands' definitions)."""


def translate_short_forms(argv: list[str]) -> list[str]:
    """Turn the seed's ``-l`` / ``-a NAME`` / ``-r NAME`` (after global options) into
    subcommands, and move global options given after the command (``install PKG -y``) before
    it, as people type them."""
    out = list(argv)
    i = _command_at(out)
    if i < len(out) and out[i] in _SHORT_FORMS:
        out[i] = _SHORT_FORMS[out[i]]
    if i >= len(out) or out[i].startswith("-"):
        return out
    return out[:i] + _hoisted(out[i], out[i + 1 :])


def _global_options(args: list[str]) -> tuple[list[int], int]:
    """Where the global flags are in ``args`` (not the values of ``--root`` and ``--pause-at``),
    and where the command (or a short form) is, after them."""
    flags: list[int] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in _VALUE_OPTIONS:
            i += 2
        elif arg.startswith("--root=") or arg in _FLAGS:
            flags.append(i)
            i += 1
        else:
            break
    return flags, i


def _command_at(args: list[str]) -> int:
    """Where the command (or a short form) is in ``args``, after the global options."""
    return _global_options(args)[1]


_LONG_FLAGS = {"-y": "--yes", "-s": "--in-clone"}
"""The global short flags, handed to click in their long forms: click tries every option as a
long one first, and a miss builds its "did you mean" with difflib, imported for it (3 ms)."""


def long_flags(args: list[str]) -> list[str]:
    """A translated command line with its global short flags (before the command) in their long
    forms; values and everything from the command on as they are."""
    out = list(args)
    for i in _global_options(args)[0]:
        out[i] = _LONG_FLAGS.get(out[i], out[i])
    return out


def _parser_for(args: list[str]) -> typer.Typer:
    """The parser of a translated command line: when it names a command, one with that command
    alone (typer builds every registered command's parameters before parsing: 8 ms of a start)."""
    i = _command_at(args)
    wanted = [c for c in app.registered_commands if i < len(args) and c.name == args[i]]
    if not wanted:
        return app
    import copy  # loaded by typer already: the import is a lookup

    one = copy.copy(app)
    one.registered_commands = wanted
    return one


def _hoisted(command: str, rest: list[str]) -> list[str]:
    """``command`` and its arguments, the global options among them put before it."""
    own = COMMAND_VALUE_OPTIONS.get(command, frozenset())
    moved: list[str] = []
    kept: list[str] = []
    positional = 0
    j = 0
    while j < len(rest):
        arg = rest[j]
        if arg == "--" or (command in PASSED_ON and positional >= PASSED_ON[command] and not arg.startswith("-")):
            kept += rest[j:]
            break
        if not arg.startswith("-"):
            positional += 1
        if arg in own:
            kept += rest[j : j + 2]
            j += 2
            continue
        if arg in _HOISTED_FLAGS or arg.startswith(("--root=", "--pause-at=")):
            moved.append(arg)
        elif arg in _VALUE_OPTIONS and j + 1 < len(rest):
            moved += rest[j : j + 2]
            j += 1
        else:
            kept.append(arg)
        j += 1
    return [*moved, command, *kept]


def _run(args: list[str], debug: bool) -> tuple[int, str | None]:
    """The exit status and, for a failure, its one line (printed here, on stderr)."""
    try:
        with interrupts():  # Ctrl-C and SIGTERM raise Interrupted, which typer does not swallow
            try:
                rc = _parser_for(args)(args=long_flags(args), prog_name="apt-clone", standalone_mode=False)
            finally:
                while _OPENED:
                    _OPENED.pop().close()
    except typer.Exit as exc:
        return int(exc.exit_code), None
    except typer.Abort:
        print("apt-clone: aborted", file=sys.stderr)
        return EXIT_FAILED, "aborted"
    except _BadUsage as exc:
        print(f"apt-clone: {exc.format_message()}", file=sys.stderr)
        return EXIT_USAGE, exc.format_message()
    except (AptCloneError, Interrupted, KeyboardInterrupt, OSError) as exc:
        code = report(exc, debug)
        return code, last_report()
    return (rc if isinstance(rc, int) else 0), None  # typer returns an Exit's code instead of raising it


def main(argv: list[str] | None = None) -> int:
    """Run one command line; its exit status (0 ok, 1 failed, 2 bad input, 3 refused, 130 interrupted).

    With ``--json`` stdout carries exactly one JSON document, an error's too
    (``{"error": ..., "exit_code": N}``); everything else, apt's own output included, goes to stderr."""
    args = translate_short_forms(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    safe_output()
    if "--json" not in args:
        return _run(args, debug)[0]
    _JSON["emitted"], _JSON["wanted"] = False, True
    sys.stdout.flush()
    document_fd = os.dup(1)
    os.dup2(2, 1)  # what children (apt-get, dpkg) print goes to stderr
    saved_stdout = sys.stdout
    document = open(document_fd, "w", encoding="utf-8", errors="backslashreplace", closefd=False)  # noqa: SIM115
    help_text = io.StringIO() if "--help" in args else None  # click prints it: the text becomes the document
    sys.stdout = help_text or document
    try:
        rc, error = _run(args, debug)
        sys.stdout = document
        if help_text is not None and rc == 0 and not _JSON["emitted"]:
            _emit(render.to_json({"help": help_text.getvalue()}))
        if not _JSON["emitted"] and (rc != 0 or error):
            _emit(render.to_json({"error": error or "cancelled", "exit_code": rc}))
        sys.stdout.flush()
    finally:
        sys.stdout = saved_stdout
        os.dup2(document_fd, 1)
        os.close(document_fd)
    return rc


if __name__ == "__main__":
    sys.exit(main())

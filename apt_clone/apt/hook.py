"""The APT hook: a Rollback Checkpoint of the running system before dpkg changes it.

apt runs ``apt-clone hook-pre`` before dpkg (``DPkg::Pre-Install-Pkgs``, protocol version 3 on
its standard input: :mod:`apt_clone.hook`) and ``apt-clone hook-post`` after it
(``DPkg::Post-Invoke``); both are set in ``/etc/apt/apt.conf.d/80apt-clone``.

- One checkpoint per apt run: the run is the apt process (the hook's first ancestor that is
  not a shell: ``apt``, ``apt-get``, ``unattended-upgrade``), known by its pid and start time,
  so the several dpkg runs of one apt invocation (or of one unattended-upgrades run) share the
  checkpoint the first one made. ``[hook] merge``: a run starting soon after the last one
  ended joins its checkpoint.
- After dpkg, the checkpoint's package changes are recorded (the running system's dpkg status
  against the copy taken before dpkg ran), so ``show`` and ``diff`` work as on the others; a
  post that never ran (dpkg failed) is completed by the next hooked run.
- Never in the way: any failure prints one line, ``apt-clone: no checkpoint: REASON``, and
  apt goes on (``[hook] required = yes``: apt stops before dpkg). No network, no planning.
- Never for apt on another root, in a chroot (a debootstrap, an image build), or for the apt
  apt-clone runs itself (``$APT_CLONE_ACTIVE``).

What the hook remembers between its calls lives in the run directory (``protocol.json``, the
status copy ``hook-status``, and for the post's fast path ``hook-expect`` and ``hook-done``),
which only root can write. apt runs the post as ``/usr/libexec/apt-clone/hook-post`` (sh): when
dpkg did what was planned (``dpkg-query``) it only notes the time (``hook-done``) and no Python
starts; otherwise it runs ``apt-clone hook-post``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping

from .. import config, dpkgstatus, readahead
from ..errors import AptCloneError, Unfinished, require_root
from ..paths import HOOK_GUARD_ENV, boot_id, in_chroot, open_private, run_dir, write_atomic
from ..record import asdict, field, record
from ..text import escaped
from . import protocol
from . import reboot as reboot_rules

TYPE_CHECKING = False  # typing itself is not imported at run time: the hook's start-up (mypy knows the name)
if TYPE_CHECKING:
    from ..config import Config
    from ..context import Context
    from ..zfs import ZfsBackend

SHELLS = frozenset({"sh", "dash", "bash", "busybox"})
STATE_FILE = "hook.json"
STATUS_COPY = "hook-status"
EXPECT_FILE = "hook-expect"
"""For the post's fast path: the run's package names, then what dpkg-query must show of them."""
DONE_FILE = "hook-done"
"""Left by the post's fast path: its time is when the run's last dpkg run ended."""
STATUS_PATH = "/" + dpkgstatus.STATUS_PATH
REBOOT_FLAG = "/run/reboot-required"


@record(frozen=True)
class AptRun:
    """The apt process a hook call belongs to."""

    pid: int
    start: int
    """Its start time (clock ticks after boot, /proc/PID/stat): a reused pid is another run."""


@record()
class HookState:
    """The last hooked apt run and its checkpoint."""

    run: AptRun
    checkpoint: str
    dataset: str
    commands: list[str] = field(default_factory=list)
    started: float = 0.0
    ended: float | None = None
    """When its last dpkg run ended (hook-post); None: not yet."""
    boot: str | None = None
    recorded: list[list[str | None]] = field(default_factory=list)
    """The package changes the checkpoint records (as planned, then as dpkg made them)."""
    reboot: str = ""
    """Why they need a reboot, as recorded."""
    chunks: int = 0
    """How many ``changes.N`` properties hold them."""


@record(frozen=True)
class Result:
    """What a hook call prints (one line or nothing) and its exit status for apt."""

    line: str | None = None
    status: int = 0


QUIET = Result()


def _stat_of(pid: int, proc: str) -> tuple[str, int, int] | None:
    """(comm, ppid, start time) of a process, from /proc/PID/stat."""
    try:
        with open(f"{proc}/{pid}/stat", encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    head, _, tail = text.rpartition(")")
    fields = tail.split()
    try:
        return head.partition("(")[2], int(fields[1]), int(fields[19])
    except (IndexError, ValueError):
        return None


def apt_run(pid: int | None = None, proc: str = "/proc") -> AptRun:
    """The apt process that ran this hook: the first ancestor that is not a shell (apt runs
    its hooks through ``sh -c``), and above it the process it was forked from while that is
    the same program (apt runs ``DPkg::Post-Invoke`` from a child of its own)."""
    pid = os.getppid() if pid is None else pid
    found = _stat_of(pid, proc)
    for _ in range(8):
        if found is None or found[0] not in SHELLS or found[1] <= 1:
            break
        pid = found[1]
        found = _stat_of(pid, proc)
    if found is None:
        return AptRun(pid, 0)
    for _ in range(8):
        parent = _stat_of(found[1], proc) if found[1] > 1 else None
        if parent is None or parent[0] != found[0]:
            break
        pid, found = found[1], parent
    return AptRun(pid, found[2])


def command_of(run: AptRun, recorded: str, proc: str = "/proc") -> str:
    """The command that started apt: as apt recorded it (``apt install nginx``), else the apt
    process's own command line (python-apt programs such as ``unattended-upgrade`` record none)."""
    if recorded and recorded != "apt":
        return escaped(recorded)[:1000]
    try:
        with open(f"{proc}/{run.pid}/cmdline", "rb") as f:
            words = [w.decode("utf-8", errors="replace") for w in f.read().split(b"\0") if w]
    except OSError:
        return recorded or "apt"
    if words and os.path.basename(words[0]).startswith("python") and len(words) > 1:
        script = next((i for i, w in enumerate(words) if i and not w.startswith("-")), len(words))
        words = words[script:]
    if not words:
        return recorded or "apt"
    return escaped(" ".join([os.path.basename(words[0]), *words[1:]]))[:200]


# --- state ------------------------------------------------------------------------------------
def _path(name: str) -> str:
    return os.path.join(run_dir(), name)


def load_state() -> HookState | None:
    try:
        fd = open_private(_path(STATE_FILE), os.O_RDONLY)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, encoding="utf-8") as f:
        try:
            data = json.load(f)
            data["run"] = AptRun(**data["run"])
            st = HookState(**data)
        except (ValueError, TypeError, KeyError):
            return None  # not ours to trust: start afresh
    if st.ended is None:  # the post's fast path noted the end
        try:
            st.ended = os.lstat(_path(DONE_FILE)).st_mtime
        except FileNotFoundError:
            pass
    return st


def expectation(changes: list[protocol.HookChange]) -> str:
    """What the post's fast path checks once dpkg is done (``hook-expect``): the packages' names
    on one line, then the lines ``dpkg-query -W -f='${db:Status-Status} ${Package}
    ${Architecture} ${Version}\\n'`` must give for those installed, sorted as ``LC_ALL=C sort``
    sorts them (a removed package shows none). "" (record with Python) when an architecture
    is unknown."""
    if not changes or any(c.arch is None for c in changes):
        return ""
    names = " ".join(sorted({c.name for c in changes}))
    rows = sorted(f"installed {c.name} {c.arch} {c.new}" for c in changes if c.new is not None and c.action != "remove")
    return names + "\n" + "".join(row + "\n" for row in rows)


def arm_post(text: str) -> None:
    """Leave the post its expectation (``""``: record with ``apt-clone hook-post``). Best effort:
    the checkpoint is made; without it the next hooked run records what dpkg did (its post
    "never came")."""
    try:
        _discard(DONE_FILE)
        write_atomic(_path(EXPECT_FILE), text, durable=False)
    except (OSError, AptCloneError):
        pass


def _discard(name: str) -> None:
    try:
        os.unlink(_path(name))
    except FileNotFoundError:
        pass


def save_state(st: HookState) -> None:
    write_atomic(_path(STATE_FILE), json.dumps(asdict(st)), durable=False)


def _copy_status(root: str = "/") -> None:
    """Keep the dpkg status of before dpkg runs (what the post compares with)."""
    fd = os.open(os.path.join(root, dpkgstatus.STATUS_PATH), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as f:
        data = f.read()
    write_atomic(_path(STATUS_COPY), data, durable=False)


def _status_before() -> dict[str, str]:
    fd = open_private(_path(STATUS_COPY), os.O_RDONLY)
    try:
        return dpkgstatus.parse(fd)
    finally:
        os.close(fd)


# --- what the hook decides --------------------------------------------------------------------
def skip_reason(env: Mapping[str, str], cfg: Config, other_root: str | None, chroot: bool) -> str | None:
    """Why this apt run gets no checkpoint and no message (it is not this system's), or None."""
    if not cfg.hook:
        return "the hook is off ([hook] enabled = no)"
    if env.get(HOOK_GUARD_ENV):
        return "apt-clone's own apt run"
    if other_root:
        return f"apt works on another root ({other_root})"
    if chroot:
        return "apt runs in a chroot"
    return None


def title_of(commands: list[str], summary: str) -> str:
    """``apt install nginx: 1 installed``; a merged checkpoint names every run it holds."""
    head = "; ".join(escaped(c) for c in commands)
    text = f"{head}: {summary}" if len(commands) == 1 else f"{head} ({len(commands)} apt runs)"
    return text if len(text) <= 200 else text[:199] + "…"


def may_join(st: HookState | None, cfg: Config, now: float, boot: str | None) -> bool:
    """Whether this run joins the last hooked run's checkpoint (``[hook] merge``)."""
    return (
        st is not None
        and cfg.hook_merge > 0
        and st.ended is not None
        and st.boot == boot
        and 0 <= now - st.ended <= cfg.hook_merge
    )


def failure(reason: str, cfg: Config | None) -> Result:
    required = cfg is not None and cfg.hook_required
    tail = "; apt stops before dpkg ([hook] required = yes)" if required else ""
    return Result(f"apt-clone: no checkpoint: {reason}{tail}", 1 if required else 0)


def oversized(reason: str) -> Result:
    """``hook-pre`` whose input was not read (past its bound): no checkpoint, one line."""
    try:
        cfg = config.load()
    except AptCloneError:
        cfg = None
    return QUIET if cfg is not None and not cfg.hook else failure(reason, cfg)


# --- the two calls ----------------------------------------------------------------------------
def pre(text: str, env: Mapping[str, str], chroot: bool | None = None, *, cfg: Config | None = None) -> Result:
    """``hook-pre``: make this apt run's checkpoint (once per run); ``cfg``: the configuration,
    as read already (None: read it)."""
    try:
        if cfg is None:
            cfg = config.load()
        request = protocol.parse(text)
        if skip_reason(env, cfg, request.other_root, in_chroot() if chroot is None else chroot):
            return QUIET
        if not request.changes:
            return QUIET
        return _make(request, cfg)
    except Unfinished as exc:  # the checkpoint is there: its menu entry (or the like) is not
        return Result(f"apt-clone: {exc.message}")
    except Exception as exc:  # noqa: BLE001 - never in apt's way: one line, whatever went wrong
        return failure(_why(exc), cfg)
    except KeyboardInterrupt:
        return failure("interrupted", cfg)


def post(env: Mapping[str, str], chroot: bool | None = None) -> Result:
    """``hook-post``: record the changes dpkg made under this run's checkpoint."""
    try:
        cfg = config.load()
        if skip_reason(env, cfg, None, in_chroot() if chroot is None else chroot):
            return QUIET
        st = load_state()
        _discard(EXPECT_FILE)  # whatever this call finds, the fast path has nothing left to check
        if st is None or st.run != apt_run() or st.boot != boot_id():
            return QUIET
        return _record(st, cfg)
    except Exception as exc:  # noqa: BLE001 - dpkg is done: a line, never an error for apt
        return Result(f"apt-clone: package changes not recorded: {_why(exc)}")
    except KeyboardInterrupt:
        return Result("apt-clone: package changes not recorded: interrupted")


def _why(exc: BaseException) -> str:
    if isinstance(exc, AptCloneError):
        return exc.message
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}{': ' + str(exc.filename) if exc.filename else ''}"
    return str(exc) or type(exc).__name__


def _make(request: protocol.HookInput, cfg: Config) -> Result:
    require_root()
    run = apt_run()
    boot = boot_id()
    st = load_state()
    if st is not None and st.run == run and st.boot == boot:
        arm_post("")  # a later dpkg run of the same apt: its changes are recorded after it
        return QUIET  # this run's checkpoint is made
    readahead.start()  # the lock, and the first read, running while the machinery below loads
    # the checkpoint's machinery: only when one is made (a skipped apt run loads none of it)
    from .. import model
    from ..checkpoints import commands, services
    from ..context import open_context
    from ..lock import exclusive
    from ..signals import interrupts

    command = command_of(run, request.command)
    cx = open_context("/")
    try:
        with interrupts(), exclusive("apt-clone hook-pre", wait=3.0):
            if st is not None and st.boot == boot and st.ended is None:
                _record_quietly(cx, st, cfg)  # the last run's post never came (dpkg failed)
            now = time.time()
            if st is not None and may_join(st, cfg, now, boot) and _still_ours(cx, st):
                st.run, st.ended = run, None
                st.commands.append(command)
                cx.zfs.set_props(
                    st.dataset,
                    {model.TITLE: title_of(st.commands, ""), model.COMMAND: "; ".join(st.commands)[:1000]},
                )
                save_state(st)
                arm_post("")
                services.edit_menu(cx, {st.checkpoint: st.checkpoint})  # its title names this run too
                return Result(f"apt-clone: this apt run joins checkpoint {st.checkpoint} ([hook] merge)")
            _copy_status()
            planned = [dpkgstatus.PackageChange(c.name, c.old, c.new) for c in request.changes if c.old != c.new]
            why = _reboot_why(planned, cfg, None)
            props = model.change_props(planned, bool(why), why)
            created = commands.create(
                cx,
                title=title_of([command], protocol.summary(request.changes)),
                kind="automatic",
                command=command,
                props=props,
            )
            rows = [c.as_list() for c in planned]
            chunks = sum(1 for key in props if key in model.CHANGE_KEYS)
            lost = ""
            try:
                save_state(
                    HookState(run, created.checkpoint, created.dataset, [command], now, None, boot, rows, why, chunks)
                )
            except (OSError, AptCloneError) as exc:  # the checkpoint is made: it says so, and apt goes on
                lost = f"; what dpkg does is not recorded in it ({_why(exc)})"
            else:
                arm_post(expectation(request.changes))
    finally:
        cx.close()
    return Result(f"apt-clone: Rollback Checkpoint {created.checkpoint} made before dpkg ('apt-clone -a "
                  f"{created.checkpoint}' returns to it){lost}")  # fmt: skip


def _still_ours(cx: Context, st: HookState) -> bool:
    """The checkpoint the last run made is still there, a clone of the running root."""
    # ZFS's and the metadata's modules only for a run that may join the last one's checkpoint
    from .. import model
    from ..zfs import ZfsNotFound

    try:
        ds = cx.zfs.get(st.dataset, (model.KIND,))
    except ZfsNotFound:
        return False
    return ds.user.get(model.KIND) == "automatic" and (ds.origin or "").startswith(cx.system.dataset + "@")


def _record_quietly(cx: Context, st: HookState, cfg: Config) -> None:
    from ..zfs import ZfsError  # loaded with the checkpoint's machinery, never by a skipped run

    try:
        _set_changes(cx.zfs, st, cfg)
    except (ZfsError, OSError, ValueError):
        pass  # the checkpoint is gone or the copy is: nothing to record
    st.ended = time.time()
    save_state(st)


def _reboot_why(changes: list[dpkgstatus.PackageChange], cfg: Config, since: float | None) -> str:
    """Why ``changes`` need a reboot ("" when they do not); ``since``: a maintainer script's
    /run/reboot-required newer than this asks too."""
    found = reboot_rules.reasons(changes, cfg.reboot_packages)
    if found:
        return reboot_rules.describe(found)
    try:
        flagged = since is not None and cfg.reboot_scripts and os.stat(REBOOT_FLAG).st_mtime >= since
    except OSError:
        flagged = False
    return "a maintainer script asked for it" if flagged else ""


def _set_changes(zfs: ZfsBackend | None, st: HookState, cfg: Config) -> bool:
    """Record the changes dpkg made, when they are not what was recorded before it ran (a
    failed or a later dpkg run): the properties are written only then. Whether they were."""
    changes = dpkgstatus.diff(_status_before(), dpkgstatus.read("/", required=True))
    why = _reboot_why(changes, cfg, st.started)
    rows = [c.as_list() for c in changes]
    if rows == st.recorded and why == st.reboot:
        return False
    from .. import model  # only when dpkg did otherwise than planned

    if zfs is None:
        from ..zfs import open_backend  # hook-post opens ZFS only to record

        zfs = open_backend()
    props = model.change_props(changes, bool(why), why)
    chunks = sum(1 for key in props if key in model.CHANGE_KEYS)
    before = [model.SUMMARY, *model.CHANGE_KEYS[: st.chunks], *([model.REBOOT] if st.reboot else [])]
    model.write_changes(zfs, st.dataset, props, before)
    st.recorded, st.reboot, st.chunks = rows, why, chunks
    return True


def _record(st: HookState, cfg: Config) -> Result:
    # the lock and the signal shield only when dpkg did otherwise than planned
    from ..errors import require_root
    from ..lock import exclusive
    from ..signals import interrupts

    require_root()
    with interrupts(), exclusive("apt-clone hook-post", wait=3.0):
        _set_changes(None, st, cfg)
        st.ended = time.time()
        save_state(st)
    return QUIET

"""Retention: which checkpoints ``apt-clone prune`` removes, and removing them.

The policy (``[prune]`` of apt-clone.conf): keep the newest *keep* checkpoints, the newest of
each of the last *daily* days, *weekly* weeks and *monthly* months; drop those older than
*max-age* days; and, whatever the counts say, remove more (oldest first) while a pool involved
(the root pool, the boot pool) has less than *min-free* percent free.

Only checkpoints apt-clone made are candidates: kinds ``automatic`` (the APT hook),
``rollback`` and ``upgrade`` (apt-clone's apt operations); ``manual`` and ``initial`` ones only
with ``--include-manual``. Never: the running checkpoint, the one that boots next, one armed for
a trial boot, a pinned one, the one whose copy of GRUB's directory GRUB reads. Each removal is a
``-r`` on the engine (promotions, journal, ``recover``). The plan is made from one read, so
``--dry-run`` prints exactly what the real run removes; the space it frees is estimated from
what each checkpoint and the snapshot it was cloned from hold alone (``used``). The real run
then measures the pools: while one is still short of *min-free* (a full pool's ``available``
reads 0 however far into ZFS's reserve it went; something else wrote meanwhile), it plans
again from a fresh read and removes more the same way, reported apart (``Pruned.more``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Sequence

from .. import model
from ..config import Config
from ..context import Context
from ..engine.opstate import OpState
from ..errors import NotFound
from ..record import field, record, replace
from ..zfs import Dataset, ZfsError
from . import services
from .tree import TRIAL, Listing, list_checkpoints, read_tree

PRUNABLE = ("automatic", "rollback", "upgrade")


@record(frozen=True)
class Policy:
    keep: int = 10
    daily: int = 7
    weekly: int = 4
    monthly: int = 6
    max_age: int = 0
    """Days (0: no limit by age)."""
    min_free: int = 20
    """Percent of every pool involved (0: no limit by space)."""


@record(frozen=True)
class Candidate:
    name: str
    kind: str
    created: dt.datetime
    frees: dict[str, int]
    """Bytes its removal frees at least, by pool."""


@record(frozen=True)
class Removal:
    name: str
    kind: str
    created: str
    reason: str
    frees: dict[str, int]


@record(frozen=True)
class PoolSpace:
    name: str
    size: int
    free: int

    def percent(self, extra: int = 0) -> float:
        return 100.0 * (self.free + extra) / self.size if self.size else 100.0


@record()
class PrunePlan:
    remove: list[Removal] = field(default_factory=list)
    protected: dict[str, str] = field(default_factory=dict)
    """Checkpoints never removed, and why."""
    pools: list[PoolSpace] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def frees(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.remove:
            for pool, n in r.frees.items():
                out[pool] = out.get(pool, 0) + n
        return out


@record(frozen=True)
class Pruned:
    plan: PrunePlan
    removed: list[str]
    dry_run: bool
    pools_after: list[PoolSpace] = field(default_factory=list)
    more: list[Removal] = field(default_factory=list)
    """Removed beyond the plan: a pool measured after it was still short of *min-free*."""


def _bucket(when: dt.datetime, period: str) -> tuple[int, ...]:
    if period == "day":
        return (when.year, when.month, when.day)
    if period == "week":
        iso = when.isocalendar()
        return (iso.year, iso.week)
    return (when.year, when.month)


def _within(when: dt.datetime, now: dt.datetime, period: str, count: int) -> bool:
    """Whether ``when`` falls in one of the last ``count`` periods up to ``now``."""
    if period == "day":
        return (now.date() - when.date()).days < count
    if period == "week":
        monday = now.date() - dt.timedelta(days=now.weekday())
        return monday - (when.date() - dt.timedelta(days=when.weekday())) < dt.timedelta(weeks=count)
    return (now.year - when.year) * 12 + now.month - when.month < count


def select(
    candidates: Sequence[Candidate],
    protected: dict[str, str],
    policy: Policy,
    now: dt.datetime,
    pools: Sequence[PoolSpace] = (),
) -> PrunePlan:
    """The plan (pure): what the policy removes, in the order it is removed (oldest first)."""
    plan = PrunePlan(protected=dict(protected), pools=list(pools))
    eligible = sorted((c for c in candidates if c.name not in protected), key=lambda c: c.created, reverse=True)
    keep: dict[str, str] = {c.name: f"one of the newest {policy.keep}" for c in eligible[: policy.keep]}
    for period, count in (("day", policy.daily), ("week", policy.weekly), ("month", policy.monthly)):
        seen: set[tuple[int, ...]] = set()
        for c in eligible:  # newest first: the first of each bucket is its newest
            bucket = _bucket(c.created, period)
            if count and bucket not in seen and _within(c.created, now, period, count):
                keep.setdefault(c.name, f"the newest of its {period}")
            seen.add(bucket)
    reasons: dict[str, str] = {}
    for c in eligible:
        if policy.max_age and now - c.created > dt.timedelta(days=policy.max_age):
            reasons[c.name] = f"older than {policy.max_age} days"
        elif c.name not in keep:
            reasons[c.name] = "beyond what the policy keeps"
    chosen = {c.name for c in eligible if c.name in reasons}
    if policy.min_free:
        freed = _freed(eligible, chosen)
        for c in reversed(eligible):  # oldest first
            short = [p for p in pools if p.percent(freed.get(p.name, 0)) < policy.min_free]
            if not short:
                break
            if c.name in chosen or not any(c.frees.get(p.name) for p in short):
                continue
            chosen.add(c.name)
            reasons[c.name] = f"free space on {short[0].name} below {policy.min_free}%"
            for pool, n in c.frees.items():
                freed[pool] = freed.get(pool, 0) + n
        for p in pools:
            if p.percent(freed.get(p.name, 0)) < policy.min_free:
                plan.notes.append(
                    f"{p.name} stays below {policy.min_free}% free: what is left is protected or holds nothing"
                )
    for c in sorted((c for c in eligible if c.name in chosen), key=lambda c: c.created):
        created = c.created.isoformat().replace("+00:00", "Z")
        plan.remove.append(Removal(c.name, c.kind, created, reasons[c.name], dict(c.frees)))
    return plan


def _freed(cands: Iterable[Candidate], names: set[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in cands:
        if c.name in names:
            for pool, n in c.frees.items():
                out[pool] = out.get(pool, 0) + n
    return out


# --- reading the system -----------------------------------------------------------------------
def _frees(ds: Dataset, by_name: dict[str, Dataset], twin: Dataset | None, boot: dict[str, Dataset]) -> dict[str, int]:
    out: dict[str, int] = {}
    for one, index in ((ds, by_name), (twin, boot)):
        if one is None:
            continue
        n = one.used
        snap = index.get(one.origin or "")
        if snap is not None and model.SNAPSHOT_MARK in snap.user:
            n += snap.used
        out[one.pool] = out.get(one.pool, 0) + n
    return out


def plan(ctx: Context, policy: Policy, *, include_manual: bool = False, now: dt.datetime | None = None) -> PrunePlan:
    """What prune removes on this system now (one read of each container and of the pools)."""
    now = now or dt.datetime.now(dt.UTC)
    tree = read_tree(ctx)
    listing = list_checkpoints(ctx, tree)
    state = ctx.boot.state(ctx.system.pool, ctx.system.container)
    by_name = {ds.name: ds for ds in tree}
    boot_container = ctx.system.boot_container
    boot_tree = ctx.zfs.list_tree(boot_container, (model.SNAPSHOT_MARK,)) if boot_container else []
    boot = {ds.name: ds for ds in boot_tree}
    home = services.grub_home(ctx, tree)
    armed = ctx.zfs.get(ctx.system.container, (TRIAL,)).user.get(TRIAL)
    protected: dict[str, str] = {}
    candidates = []
    kinds = (*PRUNABLE, "manual", "initial") if include_manual else PRUNABLE
    for cp in listing.checkpoints:
        ds = by_name[cp.dataset]
        if cp.current:
            protected[cp.name] = "running"
        elif cp.active:
            protected[cp.name] = "boots next"
        elif cp.dataset in (state.grub_next, armed):
            protected[cp.name] = "armed for a trial boot"
        elif ds.user.get(model.PINNED):
            protected[cp.name] = "pinned"
        elif cp.mounted_at:
            protected[cp.name] = "mounted (apt-clone umount)"
        elif home.where == "checkpoint" and home.checkpoint == cp.name:
            protected[cp.name] = "GRUB reads its copy of /boot/grub"
        elif cp.kind not in kinds:
            asked = " (--include-manual)" if cp.kind in ("manual", "initial") else ""
            protected[cp.name] = f"kind {cp.kind}{asked}"
        if cp.name in protected:
            continue
        created = model.parse_time(cp.created) or dt.datetime.fromtimestamp(ds.creation, dt.UTC)
        twin = boot.get(f"{ctx.system.boot_container}/{cp.name}") if ctx.system.boot_container else None
        candidates.append(Candidate(cp.name, cp.kind, created, _frees(ds, by_name, twin, boot)))
    pools = _pools(ctx, [ctx.system.pool, *([boot_tree[0].pool] if boot_tree else [])])
    return select(candidates, protected, policy, now, pools)


def _pools(ctx: Context, names: Sequence[str]) -> list[PoolSpace]:
    """Each pool's space as ``zfs list`` shows it (its top dataset's used and available: what
    a write can still take, after ZFS's own reserve), not the raw ``zpool list`` free; what
    destroys still free in the background (``freeing``) counts as free."""
    out = []
    for name in dict.fromkeys(names):
        try:
            top = ctx.zfs.get(name)
            freeing = ctx.zfs.pool(name).freeing
        except ZfsError:
            continue
        available = (top.available or 0) + freeing
        out.append(PoolSpace(name, top.used + available, available))
    return out


def policy_of(cfg: Config) -> Policy:
    return Policy(*cfg.prune)


def prune(
    ctx: Context,
    policy: Policy,
    *,
    include_manual: bool = False,
    dry_run: bool = False,
    deferred: OpState | None = None,
    progress: Progress | None = None,
) -> Pruned:
    """Plan, and (not ``dry_run``, under the lock) remove; the pools' space after.
    ``deferred``: an operation that cannot be finished before space is freed (see
    :func:`apt_clone.operations.destroy`): kept through the destroys and handed back."""
    the_plan = plan(ctx, policy, include_manual=include_manual)
    if dry_run:
        return Pruned(the_plan, [], True, the_plan.pools)
    removed, deferred = run(ctx, the_plan.remove, deferred, progress)
    pools = after(ctx, the_plan)
    more: list[Removal] = []
    tried = {r.name for r in the_plan.remove}
    while policy.min_free and any(p.percent() < policy.min_free for p in pools):
        again = [r for r in plan(ctx, policy, include_manual=include_manual).remove if r.name not in tried]
        tried.update(r.name for r in again)
        gone, deferred = run(ctx, again, deferred, progress, done=len(removed))
        if not gone:
            break  # nothing left to take (protected, or held by the unfinished operation)
        removed += gone
        more += [r for r in again if r.name in gone]
        pools = after(ctx, the_plan)
    return Pruned(the_plan, removed, False, pools, more)


Progress = Callable[[int, int, str], None]
"""Told after each removal: how many are done, of how many, and the one just removed."""


def run(
    ctx: Context,
    removals: Sequence[Removal],
    deferred: OpState | None = None,
    progress: Progress | None = None,
    *,
    done: int = 0,
) -> tuple[list[str], OpState | None]:
    """Remove ``removals``, one ``-r`` at a time on the engine (under the lock); the names
    removed, and the unfinished operation still waiting. The checkpoints are read once: each
    destroy takes what it removed out of what was read, and only one that promoted clones makes
    it read again. An unfinished operation (``deferred``) goes from destroy to destroy until one
    of them finishes it; what it involves is left. ``done``: removals already told to
    ``progress`` (its count goes on from there)."""
    from . import commands  # the engine: off -l, whose rendering reads this module's plan

    removed: list[str] = []
    read = _read(ctx)
    try:
        for r in removals:
            try:
                dplan = services.plan_destroy(ctx, r.name, read=read)
            except NotFound:
                continue
            if deferred is not None and dplan.checkpoint.dataset in json.dumps(deferred.to_json()):
                continue
            commands.destroy(ctx, dplan, deferred, menu=False, tree=read[1])
            removed.append(r.name)
            if progress is not None:
                progress(done + len(removed), done + len(removals), r.name)
            if deferred is not None:
                pending = commands.load_journal(ctx)[1]
                deferred = pending if pending is not None and pending.unfinished else None
            if dplan.promote:
                read = _read(ctx)
            else:
                listing, tree, boot_tree = read
                gone = [cp for cp in listing.checkpoints if cp.name == r.name]
                listing = replace(listing, checkpoints=[cp for cp in listing.checkpoints if cp not in gone])
                tree = services.without(tree, dplan.checkpoint.dataset, dplan.checkpoint.origin)
                if boot_tree is not None and dplan.boot_dataset:
                    twin = next((ds for ds in boot_tree if ds.name == dplan.boot_dataset), None)
                    boot_tree = services.without(boot_tree, dplan.boot_dataset, twin.origin if twin else None)
                read = (listing, tree, boot_tree)
    finally:
        if removed:
            services.refresh_menu(ctx)  # once, after the last destroy (or the one that failed)
    return removed, deferred


def _read(ctx: Context) -> tuple[Listing, list[Dataset], list[Dataset] | None]:
    tree = read_tree(ctx)
    boot = ctx.system.boot_container
    return (
        list_checkpoints(ctx, tree),
        tree,
        ctx.zfs.list_tree(boot, (model.SNAPSHOT_MARK,)) if boot else None,
    )


def after(ctx: Context, the_plan: PrunePlan) -> list[PoolSpace]:
    return _pools(ctx, [p.name for p in the_plan.pools])

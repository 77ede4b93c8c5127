"""The retention policy (pure): what it keeps, what it removes and in which order; and the real
run measuring the pools after its plan (on the in-memory ZFS)."""

from __future__ import annotations

import datetime as dt

from apt_clone import model
from apt_clone.boot import Bootloader
from apt_clone.checkpoints import commands, prune
from apt_clone.checkpoints.prune import Candidate, Policy, PoolSpace, select
from apt_clone.cli import render
from apt_clone.context import Context
from apt_clone.runner import DEFAULT_RUNNER
from apt_clone.system import ManagedSystem
from tests.fakezfs import FakeZfs

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


def _cands(n, step=dt.timedelta(hours=7), frees=1 << 20):
    return [Candidate(f"cp-{i:03d}", "automatic", NOW - i * step, {"rpool": frees}) for i in range(n)]


def test_the_counts_keep_the_newest_and_one_per_day_week_and_month():
    cands = _cands(200)  # about 58 days of checkpoints, 7 hours apart
    plan = select(cands, {}, Policy(keep=10, daily=7, weekly=4, monthly=6, max_age=0, min_free=0), NOW)
    removed = {r.name for r in plan.remove}
    kept = [c for c in cands if c.name not in removed]
    assert all(c.name not in removed for c in cands[:10])  # the newest 10
    days = {c.created.date() for c in kept if (NOW.date() - c.created.date()).days < 7}
    assert days == {(NOW - dt.timedelta(days=d)).date() for d in range(7)}  # one per day of the last 7
    months = {(c.created.year, c.created.month) for c in kept}
    assert {(2026, 12), (2026, 11), (2026, 10)} <= months
    assert len(kept) <= 10 + 7 + 4 + 6
    assert [r.name for r in plan.remove] == sorted(removed, key=lambda n: -int(n[3:]))  # oldest first


def test_what_is_protected_is_never_removed_and_said_why():
    cands = _cands(30)
    protected = {"cp-029": "pinned", "cp-028": "boots next"}
    plan = select(cands, protected, Policy(keep=1, daily=0, weekly=0, monthly=0, max_age=1, min_free=0), NOW)
    removed = {r.name for r in plan.remove}
    assert not removed & set(protected)
    assert plan.protected == protected
    assert "cp-000" not in removed and len(removed) == 27


def test_max_age_removes_old_ones_the_counts_would_keep():
    cands = _cands(100, step=dt.timedelta(days=3))
    plan = select(cands, {}, Policy(keep=0, daily=0, weekly=0, monthly=12, max_age=90, min_free=0), NOW)
    for r in plan.remove:
        assert r.reason in ("older than 90 days", "beyond what the policy keeps")
    assert all(NOW - dt.datetime.fromisoformat(r.created) > dt.timedelta(days=90) or r.reason != "older than 90 days"
               for r in plan.remove)  # fmt: skip
    assert {r.name for r in plan.remove if r.reason == "older than 90 days"} == {
        c.name for c in cands if NOW - c.created > dt.timedelta(days=90)
    }


def test_low_free_space_removes_more_oldest_first_until_it_is_back():
    cands = _cands(20, frees=100)
    pools = [PoolSpace("rpool", 10_000, 1_000)]  # 10% free
    plan = select(cands, {}, Policy(keep=20, daily=0, weekly=0, monthly=0, max_age=0, min_free=15), NOW, pools)
    # 5 removals of 100 bytes bring 1000 to 1500 (15%): the 5 oldest, nothing more.
    assert [r.name for r in plan.remove] == ["cp-019", "cp-018", "cp-017", "cp-016", "cp-015"]
    assert all("below 15%" in r.reason for r in plan.remove)
    assert plan.frees() == {"rpool": 500} and not plan.notes


def test_space_that_cannot_be_reached_is_said():
    cands = _cands(3, frees=10)
    pools = [PoolSpace("rpool", 10_000, 100), PoolSpace("bpool", 1_000, 900)]
    plan = select(
        cands, {"cp-002": "pinned"}, Policy(keep=3, daily=0, weekly=0, monthly=0, max_age=0, min_free=20), NOW, pools
    )
    assert [r.name for r in plan.remove] == ["cp-001", "cp-000"]
    assert plan.notes and "rpool stays below 20% free" in plan.notes[0]


def test_a_candidate_that_frees_nothing_on_the_short_pool_is_kept():
    cands = [Candidate("a", "automatic", NOW - dt.timedelta(days=2), {"bpool": 50}),
             Candidate("b", "automatic", NOW - dt.timedelta(days=1), {"rpool": 50})]  # fmt: skip
    plan = select(cands, {}, Policy(keep=2, daily=0, weekly=0, monthly=0, max_age=0, min_free=50),
                  NOW, [PoolSpace("rpool", 100, 10)])  # fmt: skip
    assert [r.name for r in plan.remove] == ["b"]


MIB = 1 << 20
SHORT = Policy(keep=10, daily=0, weekly=0, monthly=0, max_age=0, min_free=20)


def _full_pool(tmp_path, monkeypatch) -> tuple[FakeZfs, Context]:
    """Pool p (100 MiB): be1 holds 58 MiB, the snapshots of checkpoints cp-0..cp-3 (oldest
    first) 10 MiB each: 98 MiB held, 2 free."""
    monkeypatch.setenv("APT_CLONE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("APT_CLONE_RUN_DIR", str(tmp_path / "run"))
    zfs = FakeZfs()
    zfs.add_pool("p", size=100 * MIB)
    zfs.create("p/ROOT", {"mountpoint": "none"})
    zfs.create("p/ROOT/be1", {"mountpoint": str(tmp_path / "root"), "canmount": "noauto"})
    ctx = Context(ManagedSystem(str(tmp_path / "root"), "p/ROOT/be1"), zfs, Bootloader(zfs, None), DEFAULT_RUNNER)
    for i in range(4):
        commands.create(ctx, kind="automatic", name=f"cp-{i}")
        zfs.set_props(f"p/ROOT/cp-{i}", {model.CREATED: f"2026-11-0{i + 1}T00:00:00Z"})
        zfs.nodes[f"p/ROOT/be1@cp-{i}"].used = 10 * MIB
    zfs.nodes["p/ROOT/be1"].used = 58 * MIB
    return zfs, ctx


def test_a_pool_still_short_when_measured_after_the_plan_loses_more_oldest_first(tmp_path, monkeypatch):
    """A full pool's ``available`` reads 0 however far its writes went into ZFS's reserve, so
    the plan's estimate can fall short; the real run measures and goes on."""
    zfs, ctx = _full_pool(tmp_path, monkeypatch)
    zfs.reserve_taken["p"] = 4 * MIB  # available reads 0, not -2 MiB
    planned = [r.name for r in prune.plan(ctx, SHORT).remove]
    assert planned == ["cp-0", "cp-1"]  # 20 MiB of the 98 the pool seems to be: 20.4%
    told: list[tuple[int, int, str]] = []
    got = prune.prune(ctx, SHORT, progress=lambda n, of, name: told.append((n, of, name)))
    assert got.removed == ["cp-0", "cp-1", "cp-2"]  # 18 of 96 MiB after two: 18.75%, so one more
    assert [r.name for r in got.more] == ["cp-2"] and "below 20%" in got.more[0].reason
    assert all(p.percent() >= 20 for p in got.pools_after)
    assert told == [(1, 2, "cp-0"), (2, 2, "cp-1"), (3, 3, "cp-2")]
    assert "p/ROOT/cp-3" in zfs.nodes
    text = render.prune_text(got)
    assert "Removed 3 checkpoint(s):" in text and "  cp-2 " in text
    assert "still short: removed cp-2 as well" in text


def test_space_destroys_still_free_in_the_background_counts_and_takes_no_more(tmp_path, monkeypatch):
    """OpenZFS frees a destroyed dataset's blocks after the destroy returns: ``available``
    rises later, the pool's ``freeing`` says by how much."""
    zfs, ctx = _full_pool(tmp_path, monkeypatch)
    zfs.freeing = {}
    got = prune.prune(ctx, SHORT)
    assert got.removed == ["cp-0", "cp-1"] and not got.more
    assert zfs.get("p").available == 2 * MIB and zfs.pool("p").freeing == 20 * MIB
    assert [round(p.percent(), 1) for p in got.pools_after] == [22.0]

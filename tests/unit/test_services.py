"""The checkpoint services on the in-memory ZFS (no root, no pool) and, from the same test bodies,
on a real zfs-fuse pool when the tests run as root."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from apt_clone import recovery
from apt_clone.boot import ONCE, Bootloader
from apt_clone.checkpoints import commands, services
from apt_clone.checkpoints.commands import SPECS
from apt_clone.context import Context
from apt_clone.engine.opstate import SCHEMA
from apt_clone.errors import NotFound, OperationFailed, Refused
from apt_clone.model import NEWEST
from apt_clone.runner import DEFAULT_RUNNER
from apt_clone.system import ManagedSystem, managed_system
from apt_clone.trial import verdict
from tests.fakezfs import FakeZfs


@dataclass
class World:
    """A managed system with one root ``<pool>/ROOT/be1``, on either backend."""

    kind: str
    pool: str
    root: str
    make_ctx: Callable[[], Context]
    state: Callable[[], list[tuple[str, str | None]]]
    boot_into: Callable[[str], None]

    def ds(self, name: str) -> str:
        return f"{self.pool}/ROOT/{name}"


def _fake(tmp_path) -> Iterator[World]:
    zfs = FakeZfs()
    zfs.add_pool("p")
    zfs.create("p/ROOT", {"mountpoint": "none"})
    root = str(tmp_path / "root")
    os.makedirs(root)
    zfs.create("p/ROOT/be1", {"mountpoint": root, "canmount": "noauto"})
    current = {"dataset": "p/ROOT/be1"}

    def make_ctx() -> Context:
        return Context(ManagedSystem(root, current["dataset"]), zfs, Bootloader(zfs, None), DEFAULT_RUNNER)

    def boot_into(name: str) -> None:
        current["dataset"] = f"p/ROOT/{name}"

    yield World("fake", "p", root, make_ctx, zfs.state, boot_into)


def _real(tmp_path) -> Iterator[World]:
    if os.geteuid() != 0 or subprocess.run(["zpool", "list"], capture_output=True).returncode != 0:
        pytest.skip("the real variant needs root and a running ZFS (the integration sandbox starts zfs-fuse)")
    from apt_clone.zfs import open_backend
    from tests.sandbox.core import SandboxZfs

    pool = f"acsb-svc-{os.getpid()}-{abs(hash(str(tmp_path))) % 10**6}"
    image = tmp_path / "pool.img"
    subprocess.run(["truncate", "-s", "100M", str(image)], check=True)
    subprocess.run(["zpool", "create", "-m", "none", pool, str(image)], check=True)
    root = str(tmp_path / "root")
    zfs = open_backend()
    zfs.create(f"{pool}/ROOT", {"mountpoint": "none"})
    zfs.create(f"{pool}/ROOT/be1", {"mountpoint": root})

    def state() -> list[tuple[str, str | None]]:
        out = subprocess.run(
            ["zfs", "list", "-H", "-t", "all", "-r", "-o", "name,origin", pool], capture_output=True, text=True
        ).stdout
        rows = [line.split("\t") for line in out.splitlines()]
        return sorted((name, None if origin == "-" else origin) for name, origin in rows)

    def boot_into(name: str) -> None:
        mounted = managed_system(root).dataset
        zfs.unmount(mounted)
        zfs.mount(f"{pool}/ROOT/{name}")

    def make_ctx() -> Context:
        system = managed_system(root)
        return Context(system, zfs, Bootloader(zfs, None), DEFAULT_RUNNER)

    try:
        yield World("real", pool, root, make_ctx, state, boot_into)
    finally:
        SandboxZfs().destroy_pool(pool)


@pytest.fixture(params=["fake", "real"])
def world(request, tmp_path, monkeypatch) -> Iterator[World]:
    monkeypatch.setenv("APT_CLONE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("APT_CLONE_RUN_DIR", str(tmp_path / "run"))
    yield from (_fake if request.param == "fake" else _real)(tmp_path)


def test_create_then_destroy_leaves_the_tree_as_it_was(world):
    before = world.state()
    ctx = world.make_ctx()
    created = commands.create(ctx, title="by hand")
    assert created.checkpoint == "be2" and created.snapshot == world.ds("be1") + "@be2"
    assert (world.ds("be2"), world.ds("be1") + "@be2") in world.state()
    commands.destroy(ctx, services.plan_destroy(ctx, "be2"))
    assert world.state() == before


def test_a_failure_before_the_commit_step_is_undone(world, monkeypatch):
    before = world.state()
    monkeypatch.setenv("APT_CLONE_TEST_FAIL_AT", "create.menu:before")
    with pytest.raises(OperationFailed, match="failure injected"):
        commands.create(world.make_ctx())
    assert world.state() == before


def test_destroying_an_origin_promotes_its_clone_and_drops_the_snapshot(world):
    commands.create(world.make_ctx())
    world.boot_into("be2")
    ctx = world.make_ctx()
    plan = services.plan_destroy(ctx, "be1")
    assert plan.promote == [world.ds("be2")]
    result = commands.destroy(ctx, plan)
    assert result.promoted == [world.ds("be2")]
    assert world.state() == sorted([(world.pool, None), (f"{world.pool}/ROOT", None), (world.ds("be2"), None)])


def test_a_failed_destroy_is_undone_promotions_included(world, monkeypatch):
    commands.create(world.make_ctx())
    world.boot_into("be2")
    ctx = world.make_ctx()
    before = world.state()
    monkeypatch.setenv("APT_CLONE_TEST_FAIL_AT", "destroy.destroy:before")
    with pytest.raises(OperationFailed):
        commands.destroy(ctx, services.plan_destroy(ctx, "be1"))
    assert world.state() == before  # promoted back: be2 is a clone of be1@be2 again


def test_a_create_reads_the_family_in_two_rounds(tmp_path):
    """The root's filesystems are listed beside the read of the container, the root and its boot
    dataset; then one zfs get reads the filesystems under the root and whether the next name is
    free: no third round before the snapshots (each is a ZFS command's start on every apt run)."""
    import threading

    class Recording(FakeZfs):
        def __init__(self) -> None:
            super().__init__()
            self.reads: list[tuple[str, tuple[str, ...]]] = []
            self.got = threading.Event()

        def filesystems(self, root):
            assert self.got.wait(10), "the listing waited for the first zfs get: they did not run side by side"
            self.reads.append(("filesystems", (root,)))
            return super().filesystems(root)

        def get_many(self, names, user_props=()):
            self.reads.append(("get_many", tuple(names)))
            self.got.set()
            return super().get_many(names, user_props)

    world = next(_fake(tmp_path))
    zfs = Recording()
    zfs.add_pool("p")
    zfs.create("p/ROOT", {"mountpoint": "none"})
    zfs.create("p/ROOT/be1", {"mountpoint": world.root, "canmount": "noauto"})
    zfs.create("p/ROOT/be1/var", {"canmount": "noauto"})
    ctx = Context(ManagedSystem(world.root, "p/ROOT/be1"), zfs, Bootloader(zfs, None), DEFAULT_RUNNER)
    family = services.read_family(ctx)
    created = services.prepare_create(ctx, family=family)
    assert [kind for kind, _ in zfs.reads] == ["get_many", "filesystems", "get_many"]
    assert zfs.reads[2][1] == ("p/ROOT/be1/var", "p/ROOT/be2", "p/ROOT/be1@be2")
    assert created.checkpoint == "be2"
    assert {ds.name for ds in family.records} == {"p/ROOT", "p/ROOT/be1", "p/ROOT/be1/var"}
    zfs.snapshot("p/ROOT/be1@be2")  # the next name taken by hand: found in the same read
    zfs.reads.clear()
    assert services.prepare_create(ctx).checkpoint == "be3"
    assert len(zfs.reads) == 4  # the two rounds, then the next name's own zfs get


def test_after_a_create_the_next_one_reads_its_family_in_one_round(tmp_path, monkeypatch):
    """The name after the newest this system made (the run directory remembers it) is looked for
    in the first round: with nothing under the root, no second round (issue #36: every apt run
    pays for each ZFS command's start). A remembered name that is wrong or taken costs a read,
    never a wrong name."""
    monkeypatch.setenv("APT_CLONE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("APT_CLONE_RUN_DIR", str(tmp_path / "run"))

    class Recording(FakeZfs):
        def __init__(self) -> None:
            super().__init__()
            self.reads: list[tuple[str, tuple[str, ...]]] = []

        def filesystems(self, root):
            self.reads.append(("filesystems", (root,)))
            return super().filesystems(root)

        def get_many(self, names, user_props=()):
            self.reads.append(("get_many", tuple(names)))
            return super().get_many(names, user_props)

    root = tmp_path / "root"
    root.mkdir()
    zfs = Recording()
    zfs.add_pool("p")
    zfs.create("p/ROOT", {"mountpoint": "none"})
    zfs.create("p/ROOT/be1", {"mountpoint": str(root), "canmount": "noauto"})
    ctx = Context(ManagedSystem(str(root), "p/ROOT/be1"), zfs, Bootloader(zfs, None), DEFAULT_RUNNER)
    assert commands.create(ctx).checkpoint == "be2"
    assert (tmp_path / "run" / services.NEWEST_FILE).read_text() == "p/ROOT\nbe2\n"
    assert not (tmp_path / "run" / "read-ahead").exists()  # a backend that runs no command leaves none

    zfs.reads.clear()
    family = services.read_family(ctx)
    assert sorted(kind for kind, _ in zfs.reads) == ["filesystems", "get_many"]
    assert set(zfs.reads[0][1] + zfs.reads[1][1]) >= {"p/ROOT/be3", "p/ROOT/be1@be3"}
    assert services.prepare_create(ctx, family=family).checkpoint == "be3"
    assert len(zfs.reads) == 2

    zfs.snapshot("p/ROOT/be1@be3")  # the remembered next name taken by hand: found in the first round
    zfs.reads.clear()
    assert services.prepare_create(ctx).checkpoint == "be4"
    assert len(zfs.reads) == 3  # its one round, then be4's own zfs get

    zfs.set_props("p/ROOT", {"org.aptclone:newest": "be7"})  # made elsewhere: the remembered one is stale
    zfs.reads.clear()
    assert services.prepare_create(ctx).checkpoint == "be8"
    assert len(zfs.reads) == 3  # the two rounds as without it

    (tmp_path / "run" / services.NEWEST_FILE).write_text("p/OTHER\nbe9\n")  # another container's
    zfs.reads.clear()
    assert services.prepare_create(ctx).checkpoint == "be8"
    assert len(zfs.reads) == 3


def test_refusals_change_nothing(world):
    ctx = world.make_ctx()
    commands.create(ctx)
    commands.activate(ctx, "be1")
    before = world.state()
    with pytest.raises(Refused, match="running system"):
        services.plan_destroy(ctx, "be1")
    with pytest.raises(NotFound):
        services.plan_destroy(ctx, "be2", activate_instead="nosuch")
    with pytest.raises(Refused, match="already exists"):
        services.prepare_create(ctx, name="be2")
    with pytest.raises(Refused, match="running system"):
        services.plan_rename(ctx, "be1", "other")
    commands.activate(ctx, "be2")
    with pytest.raises(Refused, match="boots next"):
        services.plan_destroy(ctx, "be2")
    assert world.state() == before


def test_a_rollback_never_drops_what_boots_next(world):
    """Rolling back to a checkpoint that boots next (activated, or armed for a trial) would
    destroy the pool's bootfs or the trial's target: refused, changing nothing."""
    ctx = world.make_ctx()
    commands.create(ctx)
    commands.activate(ctx, "be2")
    before = world.state()
    with pytest.raises(Refused, match="'be2' boots next: activate 'be1'"):
        commands.rollback_to(ctx, "be2")
    assert world.state() == before and services.list_checkpoints(ctx).next_boot == world.ds("be2")
    commands.activate(ctx, "be1")
    commands.arm_trial(ctx, "be2")
    before = world.state()
    with pytest.raises(Refused, match="'be2' boots next: activate 'be1'"):
        commands.rollback_to(ctx, "be2")
    assert world.state() == before
    activated = commands.activate(ctx, "be1")  # the trial is cancelled with its one-time boot
    assert "The trial boot of 'be2' is cancelled." in activated.messages
    assert not services.find(ctx, "be2").trial
    commands.rollback_to(ctx, "be2")
    assert [cp.name for cp in services.list_checkpoints(ctx).checkpoints] == ["be1"]


def test_an_activation_cancels_the_trial_armed_and_its_undo_arms_it_again(world, monkeypatch):
    """A trial armed, then another checkpoint activated: the trial's one-time boot is gone, so
    the next boot's verdict must not find it armed and mark it bad (it never booted)."""
    ctx = world.make_ctx()
    commands.create(ctx)
    commands.arm_trial(ctx, "be2")
    monkeypatch.setenv("APT_CLONE_TEST_FAIL_AT", "activate.menu:before")
    with pytest.raises(OperationFailed, match="failure injected"):
        commands.activate(world.make_ctx(), "be1")
    monkeypatch.delenv("APT_CLONE_TEST_FAIL_AT")
    assert services.find(world.make_ctx(), "be2").trial  # the undo armed it again
    commands.activate(world.make_ctx(), "be1")
    world.boot_into("be1")
    result = verdict.commit(world.make_ctx())
    assert result.trial is None and services.find(world.make_ctx(), "be2").bad is None


def test_activate_rename_and_trial(world):
    ctx = world.make_ctx()
    commands.create(ctx)
    commands.activate(ctx, "be2")
    listing = services.list_checkpoints(ctx)
    assert listing.next_boot == world.ds("be2")
    commands.rename(ctx, "be2", "renamed")
    assert services.list_checkpoints(ctx).next_boot == world.ds("renamed")  # bootfs followed it
    commands.activate(ctx, "be1")
    armed = commands.arm_trial(ctx, "renamed")
    assert any("healthy boot" in line for line in armed.messages)
    assert ctx.boot.take_once(f"{world.pool}/ROOT") == world.ds("renamed")


def test_the_fake_backed_tests_need_no_root():
    """Run this module's fake variants as the unprivileged user 'nobody' (when root can)."""
    if os.geteuid() != 0:
        pytest.skip("already unprivileged: the fake variants above ran as this user")
    import shutil
    import tempfile
    from pathlib import Path

    base = Path(tempfile.mkdtemp(prefix="apt-clone-nobody."))  # pytest's own tmp is root's alone
    os.chown(base, 65534, 65534)
    run = subprocess.run(
        ["runuser", "-u", "nobody", "--", "env", "PYTHONDONTWRITEBYTECODE=1", sys.executable, "-m", "pytest", "-q",
         "-p", "no:cacheprovider", f"--basetemp={base / 'bt'}", "-k", "fake", __file__],
        capture_output=True, text=True, cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
    )  # fmt: skip
    shutil.rmtree(base, ignore_errors=True)
    import re

    passed = re.search(r"(\d+) passed", run.stdout)
    assert run.returncode == 0 and passed and int(passed.group(1)) >= 7, run.stdout + run.stderr


def test_a_journal_of_the_previous_version_is_recovered(world):
    """Schema 1 (no schema field, no boot id; activate had a 'stamp' commit step): an activation
    killed after its boot step is undone."""
    import json

    from apt_clone.engine.journal import Journal
    from apt_clone.paths import secure_dir

    ctx = world.make_ctx()
    commands.create(ctx)
    before = ctx.boot.save(world.pool, f"{world.pool}/ROOT")
    ctx.boot.activate(world.ds("be2"))  # what the killed run's boot step did
    journal = Journal(f"{world.pool}/ROOT")
    v1 = {
        "op": "activate", "packages": [], "command": "apt-clone activate be2", "root": world.root,
        "container": f"{world.pool}/ROOT", "dataset": world.ds("be1"), "state": "running", "pid": 1,
        "steps": {"boot": "done", "stamp": "started"}, "seq": 2**62,
        "args": {"name": "be2", "dataset": world.ds("be2"), "bootfs_seen": None, "boot_before": before},
    }  # fmt: skip
    secure_dir(os.path.dirname(journal.path))
    with open(journal.path, "w") as f:
        json.dump(v1, f)
    done = recovery.recover(ctx)
    assert any("undid 'apt-clone activate be2'" in line for line in done), done
    assert ctx.boot.state(world.pool, f"{world.pool}/ROOT").bootfs == before["bootfs"]
    loaded = journal.load()
    assert loaded is not None and loaded.state == "recovered" and loaded.schema == SCHEMA


def test_a_journal_from_a_newer_version_is_refused(tmp_path, monkeypatch):
    import json

    from apt_clone.engine.journal import Journal

    monkeypatch.setenv("APT_CLONE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("APT_CLONE_RUN_DIR", str(tmp_path / "run"))
    journal = Journal("p/ROOT")
    os.makedirs(os.path.dirname(journal.path), mode=0o700)
    with open(journal.path, "w") as f:
        json.dump({"op": "create", "packages": [], "command": "c", "root": "/", "container": "p/ROOT",
                   "dataset": "p/ROOT/x", "schema": 99}, f)  # fmt: skip
    with pytest.raises(OperationFailed, match="newer than this apt-clone"):
        journal.load()


def _origin_active_clone_running(world: World) -> None:
    """be2 runs and is a clone of be1's snapshot; be1 boots next."""
    commands.create(world.make_ctx())
    commands.activate(world.make_ctx(), "be2")
    world.boot_into("be2")
    commands.activate(world.make_ctx(), "be1")


UNDO_CASES: dict[str, tuple[Callable[[World], None], Callable[[Context], object]]] = {
    "create": (lambda w: None, lambda ctx: commands.create(ctx, title="by hand")),
    "destroy": (
        _origin_active_clone_running,
        lambda ctx: commands.destroy(ctx, services.plan_destroy(ctx, "be1", activate_instead="be2")),
    ),
    "rename": (
        lambda w: (commands.create(w.make_ctx()), commands.activate(w.make_ctx(), "be2")),
        lambda ctx: commands.rename(ctx, "be2", "renamed"),
    ),
    "activate": (lambda w: commands.create(w.make_ctx()), lambda ctx: commands.activate(ctx, "be2")),
    "trial": (lambda w: commands.create(w.make_ctx()), lambda ctx: commands.arm_trial(ctx, "be2")),
    "rollback": (lambda w: commands.create(w.make_ctx()), lambda ctx: commands.rollback_to(ctx, "be2")),
}
"""Each checkpoint command (share-grub runs grub-install: the VM lane's bpool story proves it):
what it needs in place, and the command."""

UNDO_POINTS = [
    f"{op}.{step}:{when}"
    for op, spec in SPECS.items()
    if op in UNDO_CASES
    for i, step in enumerate(spec.names)
    if i <= spec.names.index(spec.commit)
    for when in (("before",) if step == spec.commit else ("before", "after"))
]
"""Every point before a command's commit step: a failure there is undone in-process."""


def _observed(world: World) -> tuple[object, ...]:
    ctx = world.make_ctx()
    container = ctx.zfs.get(f"{world.pool}/ROOT", (ONCE, services.TRIAL, NEWEST)).user
    return world.state(), ctx.boot.state(world.pool).bootfs, sorted(container.items()), ctx.system.dataset


@pytest.mark.parametrize("where", UNDO_POINTS)
def test_a_failure_before_the_commit_step_is_undone_at_every_point(world, monkeypatch, where):
    op = where.split(".")[0]
    setup, command = UNDO_CASES[op]
    setup(world)
    before = _observed(world)
    monkeypatch.setenv("APT_CLONE_TEST_FAIL_AT", where)
    with pytest.raises(OperationFailed, match=f"failure injected at {where}"):
        command(world.make_ctx())
    monkeypatch.delenv("APT_CLONE_TEST_FAIL_AT")
    assert _observed(world) == before
    assert recovery.recover(world.make_ctx()) == ["nothing to recover: no unfinished operation, no leftovers"]


@pytest.mark.parametrize("where", ["create.snapshot:ran", "create.clone:before", "create.clone:ran"])
def test_an_undone_create_gives_its_name_back(world, monkeypatch, where):
    """The container records a new checkpoint as its newest beside its snapshots: a create undone
    from there on steps the record back, and the next create takes the same name."""
    commands.create(world.make_ctx())  # be2, the container's newest
    monkeypatch.setenv("APT_CLONE_TEST_FAIL_AT", where)
    with pytest.raises(OperationFailed, match=f"failure injected at {where}"):
        commands.create(world.make_ctx())
    monkeypatch.delenv("APT_CLONE_TEST_FAIL_AT")
    ctx = world.make_ctx()
    assert ctx.zfs.get(f"{world.pool}/ROOT", (NEWEST,)).user.get(NEWEST) == "be2"
    assert commands.create(ctx).checkpoint == "be3"

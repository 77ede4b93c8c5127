"""Retention on real zfs-fuse pools: 200 checkpoints of mixed ages pruned to a policy, the
dry run equal to the run, protected checkpoints untouched, a full pool brought back above its
limit, an interrupted prune recovered, and an apt operation refused for space offering it."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess

from apt_clone import model
from tests.helpers import apt_clone, config_env, zfs_names
from tests.integration.conftest import Toy, all_names, zfs

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def _iso(when: dt.datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def make_checkpoint(toy: Toy, name: str, kind: str, created: dt.datetime) -> None:
    """A checkpoint as apt-clone makes one (snapshot marked, clone with metadata), made with
    raw zfs so that its creation time can be set through our property."""
    snap = f"{toy.ds('be1')}@{name}"
    zfs("snapshot", snap)
    zfs("set", f"{model.SNAPSHOT_MARK}={name}", snap)
    zfs("clone", "-o", "canmount=noauto", "-o", "mountpoint=none", "-o", f"{model.KIND}={kind}",
        "-o", f"{model.CREATED}={_iso(created)}", "-o", f"{model.TITLE}=made {kind}", snap, toy.ds(name))  # fmt: skip
    zfs("set", f"mountpoint={toy.root}", toy.ds(name))


def policy(toy: Toy, text: str) -> dict[str, str]:
    env = {**toy.env, **config_env(__import__("pathlib").Path(toy.base), f"[prune]\n{text}")}
    return env


def cli(toy: Toy, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    from tests.helpers import run_module

    return run_module("apt_clone", ["--root", toy.root, *args], env=env)


def listing(toy: Toy, env: dict[str, str]) -> list[dict]:  # type: ignore[type-arg]
    got = cli(toy, env, "--json", "-l")
    assert got.returncode == 0, got.stderr
    return json.loads(got.stdout)


def test_200_checkpoints_of_mixed_ages_are_pruned_to_the_policy_and_protected_ones_stay(toy):
    env = policy(toy, "keep = 5\ndaily = 7\nweekly = 4\nmonthly = 3\nmax-age = 0\nmin-free = 0\n")
    kinds = {}
    for i in range(200):
        name = f"cp-{i:03d}"
        kinds[name] = "manual" if i % 25 == 3 else ("rollback" if i % 7 == 0 else "automatic")
        make_checkpoint(toy, name, kinds[name], NOW - dt.timedelta(days=2 * i, hours=1))
    assert cli(toy, env, "-y", "pin", "cp-150").returncode == 0
    assert cli(toy, env, "-y", "-a", "cp-120").returncode == 0  # boots next
    text = cli(toy, env, "-l").stdout
    assert "(automatic, pinned)" in text and "(manual)" in text and "(rollback)" in text

    dry = cli(toy, env, "--json", "prune", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    would = [r["name"] for r in json.loads(dry.stdout)["plan"]["remove"]]
    assert len(all_names(toy.pool)) > 400 and would  # nothing removed by the dry run
    real = cli(toy, env, "-y", "--json", "prune")
    assert real.returncode == 0, real.stderr
    removed = json.loads(real.stdout)["removed"]
    assert removed == would
    # each removal said as it went, on stderr (no terminal: a line each)
    said = [line for line in real.stderr.splitlines() if line.startswith("apt-clone: removed ")]
    assert said == [f"apt-clone: removed {n} ({i}/{len(would)})" for i, n in enumerate(would, 1)]

    left = {cp["name"]: cp for cp in listing(toy, env)}
    assert not set(removed) & set(left)
    assert {"be1", "cp-150", "cp-120"} <= set(left)  # running, pinned, boots next
    assert {n for n, k in kinds.items() if k == "manual"} <= set(left)
    candidates = [n for n in left if kinds.get(n) in ("automatic", "rollback") and n not in ("cp-150", "cp-120")]
    newest = sorted((n for n, k in kinds.items() if k != "manual"), key=lambda n: int(n[3:]))[:5]
    assert set(newest) <= set(candidates)  # the newest 5 candidates
    assert len(candidates) <= 5 + 7 + 4 + 3
    names = all_names(toy.pool)
    assert not [n for n in names if any(n.endswith(f"/{r}") or n.endswith(f"@{r}") for r in removed)]
    again = cli(toy, env, "--json", "prune", "--dry-run")
    assert json.loads(again.stdout)["plan"]["remove"] == []  # the policy holds now


def _fill(path: str) -> None:
    chunk = os.urandom(1 << 20)
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                f.write(chunk)
        except OSError:
            pass


def _free_percent(pool: str) -> float:
    """What a write can still take, as prune counts it (the top dataset's available)."""
    from apt_clone.zfs import CliZfs

    top = CliZfs().get(pool)  # the backend reads both dialects
    return 100.0 * (top.available or 0) / (top.used + (top.available or 0))


def test_a_full_pool_is_brought_back_above_its_limit_oldest_first(toy):
    # The journal lives on the full pool too, as /var/lib/apt-clone does on a host.
    state = os.path.join(toy.root, "var/lib/apt-clone")
    os.makedirs(state, mode=0o700)
    env = {**policy(toy, "keep = 50\nmin-free = 25\n"), "APT_CLONE_STATE_DIR": state}
    data = os.path.join(toy.root, "data")
    for i in range(6):  # each checkpoint's snapshot alone holds 8 MB
        with open(data, "wb") as f:
            f.write(os.urandom(8 << 20))
        make_checkpoint(toy, f"cp-{i}", "automatic", NOW - dt.timedelta(days=10 - i))
        os.unlink(data)
    _fill(os.path.join(toy.root, "filler"))
    assert _free_percent(toy.pool) < 10
    dry = json.loads(cli(toy, env, "--json", "prune", "--dry-run").stdout)["plan"]["remove"]
    assert [r["name"] for r in dry] == [f"cp-{i}" for i in range(len(dry))]  # oldest first
    assert all("below 25%" in r["reason"] for r in dry)
    got = cli(toy, env, "-y", "--json", "prune")
    assert got.returncode == 0, got.stderr
    result = json.loads(got.stdout)
    planned = [r["name"] for r in dry]
    # The plan first; then, if the pool measured after it is still short (a full pool's
    # available reads 0 however far into ZFS's reserve its writes went), more, oldest first.
    assert result["removed"] == planned + [r["name"] for r in result["more"]]
    assert result["removed"] == [f"cp-{i}" for i in range(len(result["removed"]))]
    assert _free_percent(toy.pool) >= 25
    assert toy.ds("cp-5") in all_names(toy.pool)  # the newest stays


def test_an_interrupted_prune_is_recovered_and_finished_by_the_next(toy):
    env = policy(toy, "keep = 1\ndaily = 0\nweekly = 0\nmonthly = 0\nmin-free = 0\n")
    for i in range(4):
        make_checkpoint(toy, f"cp-{i}", "automatic", NOW - dt.timedelta(days=4 - i))
    plan = [r["name"] for r in json.loads(cli(toy, env, "--json", "prune", "--dry-run").stdout)["plan"]["remove"]]
    assert plan == ["cp-0", "cp-1", "cp-2"]
    killed = cli(toy, {**env, "APT_CLONE_TEST_KILL_AT": "destroy.origin:before"}, "-y", "prune")
    assert killed.returncode == -signal.SIGKILL
    recovered = cli(toy, env, "-y", "recover")
    assert recovered.returncode == 0, recovered.stderr
    assert "completed 'apt-clone destroy cp-0'" in recovered.stdout, recovered.stdout
    assert not [n for n in all_names(toy.pool) if n.endswith(("/cp-0", "@cp-0"))]
    again = cli(toy, env, "-y", "--json", "prune")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["removed"] == ["cp-1", "cp-2"]
    assert [cp["name"] for cp in listing(toy, env)] == ["be1", "cp-3"]


def test_an_apt_operation_refused_for_space_names_prune_and_prunes_with_the_flag(pristine, tmp_path):
    sb = pristine
    env = config_env(tmp_path, "[prune]\nkeep = 0\ndaily = 0\nweekly = 0\nmonthly = 0\nmin-free = 0\n")
    for _ in range(2):
        assert apt_clone(sb, "-y", "create", env=env).returncode == 0
    for name in ("rootfs-nmu-001", "rootfs-nmu-002"):
        zfs("set", f"{model.KIND}=automatic", sb.ds(name))
    refused = apt_clone(sb, "-y", "install", "ac-huge", "--no-update", env=env)
    assert refused.returncode == 3, refused.stderr
    assert "'apt-clone prune' would remove 2 checkpoint(s)" in refused.stderr and "--prune" in refused.stderr
    assert sb.ds("rootfs-nmu-001") in zfs_names(sb)
    pruned = apt_clone(sb, "-y", "install", "ac-huge", "--no-update", "--prune", env=env)
    assert "pruned 2 checkpoint(s) to make room" in pruned.stdout + pruned.stderr, pruned.stdout + pruned.stderr
    assert pruned.returncode == 3  # 50 GB do not fit however much is pruned
    assert sb.ds("rootfs-nmu-001") not in zfs_names(sb) and sb.ds("rootfs-nmu-002") not in zfs_names(sb)

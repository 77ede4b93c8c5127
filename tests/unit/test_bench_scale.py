"""``bench.scale``: the checkpoint counts are timed side by side, in the same rounds (a machine's
drift between two counts timed minutes apart would read as apt-clone's), every count's sandbox
filled before any is timed."""

from __future__ import annotations

import pytest

scale = pytest.importorskip("bench.scale")

SAID: list[tuple[str, ...]] = []
"""What the stub benches were asked (their name first) and the raw commands run, in order."""


class StubBench:
    """What :func:`bench.scale.measure` asks of a sandbox, recorded instead of run."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.first = f"{name}/ROOT/rootfs-nmu-000"
        self.container, self.pool, self.grubenv = f"{name}/ROOT", name, f"/{name}/grubenv"
        self.made = 0

    def fill(self, count: int) -> None:
        SAID.append((self.name, "fill", str(count)))

    def ac(self, *args: str) -> str:
        SAID.append((self.name, "ac", *args))
        return "Checkpoint has been created: made" if args == ("create",) else ""

    def close(self) -> None:
        SAID.append((self.name, "close"))


def _raw(*argv: str, **_: object) -> None:
    SAID.append(("raw", *argv[:2]))


@pytest.fixture(autouse=True)
def recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    SAID.clear()
    monkeypatch.setattr(scale, "sh", _raw)


def test_every_count_is_filled_before_any_is_timed_and_each_round_times_every_count():
    benches = {10: StubBench("pool-10"), 1000: StubBench("pool-1000")}
    found = scale.measure(benches, rounds=3)
    fills = [i for i, said in enumerate(SAID) if said[1] == "fill"]
    assert fills == [0, 1], SAID[:3]
    creates = [said[0] for said in SAID if said[1:] == ("ac", "create")]
    # each round creates one checkpoint on each sandbox, the order turned each round
    assert creates == ["pool-10", "pool-1000", "pool-1000", "pool-10", "pool-10", "pool-1000"]
    assert set(found) == {10, 1000}
    for count in (10, 1000):
        assert {"list", "create", "rename", "activate", "trial", "destroy"} <= set(found[count])
    assert "list-budget" in found[10] and "list-budget" not in found[1000]


def test_apart_times_each_count_on_one_sandbox_once_the_one_before_is_done(monkeypatch):
    one = StubBench("pool-one")
    monkeypatch.setattr(scale, "Bench", lambda *a: one)
    monkeypatch.setattr(scale, "bytecode", lambda: None)
    table = scale.rows([3, 10], rounds=1, apart=True)
    fills = [i for i, said in enumerate(SAID) if said[1] == "fill"]
    creates = [i for i, said in enumerate(SAID) if said[1:] == ("ac", "create")]
    assert len(fills) == 2 and fills[0] < creates[0] < fills[1] < creates[1]
    assert SAID[-1] == ("pool-one", "close")
    assert any(row.group == "10 against 3" for row in table)

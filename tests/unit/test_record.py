"""Records behave as the dataclasses they replace, checked against ``dataclasses`` itself."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from typing import Any

import pytest

from apt_clone.record import FrozenInstanceError, asdict, field, field_names, is_record, record, replace


@record(frozen=True)
class Point:
    """doc"""

    x: int
    y: int = 0
    tags: list[str] = field(default_factory=list)


@record()
class Box:
    name: str
    points: list[Point] = field(default_factory=list)
    meta: dict[str, Point] = field(default_factory=dict)
    pair: tuple[Point, int] | None = None


@dataclasses.dataclass(frozen=True)
class DPoint:
    x: int
    y: int = 0
    tags: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class DBox:
    name: str
    points: list[DPoint] = dataclasses.field(default_factory=list)
    meta: dict[str, DPoint] = dataclasses.field(default_factory=dict)
    pair: tuple[DPoint, int] | None = None


@record(kw_only=True)
class Envelope:
    op: str
    note: str | None = None
    items: list[str] = field(default_factory=list)


@record(kw_only=True)
class Letter(Envelope):
    to: str
    note: str | None = "hi"


def test_init_as_a_dataclass_has_it() -> None:
    assert (Point(1).x, Point(1).y, Point(1).tags) == (1, 0, [])
    assert Point(1, 2, ["a"]) == Point(x=1, y=2, tags=["a"])
    assert Point(1).tags is not Point(1).tags  # a new list each time
    make: Any = Point  # the calls mypy refuses, made anyway
    for args, kwargs in (((), {}), ((1, 2, [], 4), {}), ((1,), {"x": 1}), ((1,), {"z": 3})):
        with pytest.raises(TypeError):
            make(*args, **kwargs)


def test_repr_eq_and_hash_as_a_dataclass_has_them() -> None:
    assert repr(Point(1, 2)) == repr(DPoint(1, 2)).replace("DPoint", "Point")
    other: object = DPoint(1)
    assert Point(1) != other and Point(1) != (1, 0, [])  # type: ignore[comparison-overlap]
    assert Point(1) != Point(2)
    assert hash(Point(1, 2, ())) == hash(Point(1, 2, ()))  # type: ignore[arg-type]
    assert len({Point(1, 2, ()), Point(1, 2, ())}) == 1  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        hash(Box("b"))  # mutable: unhashable, as a dataclass with eq


def test_frozen_refuses_assignment_mutable_takes_it() -> None:
    p = Point(1)
    with pytest.raises(FrozenInstanceError):
        p.x = 2  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del p.y
    b = Box("b")
    b.name = "c"
    assert b.name == "c"


def test_asdict_as_dataclasses_gives_it() -> None:
    mine = Box("b", [Point(1, tags=["t"])], {"k": Point(2)}, (Point(3), 4))
    theirs = DBox("b", [DPoint(1, tags=["t"])], {"k": DPoint(2)}, (DPoint(3), 4))
    assert asdict(mine) == dataclasses.asdict(theirs)
    assert list(asdict(mine)) == ["name", "points", "meta", "pair"]
    with pytest.raises(TypeError):
        asdict(Point)


def test_keyword_only_records_and_their_subclasses() -> None:
    letter = Letter(op="send", to="bob")
    assert field_names(Letter) == ("op", "note", "items", "to")  # a redefined field keeps its place
    assert (letter.note, Envelope(op="x").note) == ("hi", None)
    with pytest.raises(TypeError):
        Letter("send", to="bob")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Letter(op="send")  # type: ignore[call-arg]
    assert is_record(letter) and not is_record(Letter) and not is_record(DPoint(1))


def test_replace_changes_only_what_it_names() -> None:
    p = Point(1, 2, ["a"])
    assert replace(p, y=5) == Point(1, 5, ["a"])
    assert replace(Letter(op="a", to="b"), to="c") == Letter(op="a", to="c")
    with pytest.raises(TypeError):
        replace(p, z=1)


def test_declarations_a_dataclass_refuses() -> None:
    with pytest.raises(ValueError):

        @record()
        class Shared:
            items: list[str] = []  # noqa: RUF012 - the declaration under test

    with pytest.raises(TypeError):

        @record()
        class Order:
            a: int = 0
            b: int  # type: ignore[misc]

    with pytest.raises(TypeError):

        @record()
        class Thawed(Point):  # type: ignore[misc]  # a mutable record from a frozen one
            pass


def test_methods_a_class_defines_are_kept() -> None:
    @record(frozen=True)
    class Named:
        name: str

        def __repr__(self) -> str:
            return f"<{self.name}>"

        def __eq__(self, other: object) -> bool:
            return isinstance(other, Named) and other.name.lower() == self.name.lower()

        def __hash__(self) -> int:
            return hash(self.name.lower())

    assert repr(Named("a")) == "<a>"
    assert Named("A") == Named("a") and hash(Named("A")) == hash(Named("a"))


def test_the_hooks_modules_load_neither_dataclasses_nor_inspect() -> None:
    """What the hook imports to make a checkpoint compiles no record's methods (issue #36)."""
    code = (
        "import sys; from apt_clone.apt import hook; from apt_clone import model;"
        "from apt_clone.checkpoints import commands, services; from apt_clone.context import open_context;"
        "from apt_clone.lock import exclusive; from apt_clone.signals import interrupts;"
        "print(sorted(m for m in ('dataclasses', 'inspect', 'typing') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"

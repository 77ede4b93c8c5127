"""Records: classes of named fields, declared as dataclasses are, whose methods are built without
compiling code.

``@record(frozen=True)`` over a class of annotated fields gives it what ``@dataclass`` would:
``__init__`` (positional, or keyword-only with ``kw_only=True``; defaults and
``field(default_factory=...)``; the fields of a record it derives from first), ``__repr__``,
``__eq__`` (same class, equal fields), and for a frozen record ``__hash__`` and assignment
refused. A method the class defines itself is kept. mypy checks records as dataclasses
(``dataclass_transform``).

Why not ``dataclasses``: it compiles each class's methods from source when its module is
imported, and imports :mod:`inspect`. Every apt run starts the hook, whose modules hold dozens of
records; here the methods are the same few functions for every class, reading the class's field
table (:class:`Spec`).
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing itself is not imported at run time: every command's start-up
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar, dataclass_transform

    _T = TypeVar("_T")
else:

    def dataclass_transform(**_: object) -> object:
        return lambda fn: fn


class FrozenInstanceError(AttributeError):
    """An assignment to a field of a frozen record."""


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
_MUTABLE = (list, dict, set, bytearray)


class Field:
    """A field's default as :func:`field` declares it."""

    __slots__ = ("default", "default_factory")

    def __init__(self, default: object, default_factory: object) -> None:
        self.default = default
        self.default_factory = default_factory


def field(*, default: Any = MISSING, default_factory: Callable[[], Any] = MISSING) -> Any:
    """A field's default: a value, or a function called for each new record (a list, a dict)."""
    if default is not MISSING and default_factory is not MISSING:
        raise ValueError("a field has a default or a default_factory, not both")
    return Field(default, default_factory)


class Spec:
    """A record class's fields, in order: what its methods read."""

    __slots__ = ("defaults", "factories", "frozen", "names", "positional")

    def __init__(self, frozen: bool) -> None:
        self.names: tuple[str, ...] = ()
        self.positional: tuple[str, ...] = ()
        self.defaults: dict[str, object] = {}
        self.factories: dict[str, Callable[[], object]] = {}
        self.frozen = frozen


def _init(self: Any, *args: object, **kwargs: object) -> None:
    spec: Spec = self.__record__
    if not kwargs and len(args) == len(spec.names) == len(spec.positional):
        self.__dict__.update(zip(spec.names, args, strict=True))  # every field given in order
        return
    cls = type(self).__qualname__
    if len(args) > len(spec.positional):
        raise TypeError(f"{cls}() takes {len(spec.positional)} positional arguments but {len(args)} were given")
    values = dict(zip(spec.positional, args, strict=False))
    for key, value in kwargs.items():
        if key in values:
            raise TypeError(f"{cls}() got multiple values for argument {key!r}")
        values[key] = value
    fields = {}
    missing = []
    for name in spec.names:
        if name in values:
            fields[name] = values.pop(name)
        elif name in spec.defaults:
            fields[name] = spec.defaults[name]
        elif name in spec.factories:
            fields[name] = spec.factories[name]()
        else:
            missing.append(name)
    if values:
        raise TypeError(f"{cls}() got an unexpected keyword argument {next(iter(values))!r}")
    if missing:
        raise TypeError(f"{cls}() missing required arguments: {', '.join(map(repr, missing))}")
    self.__dict__.update(fields)


def _repr(self: Any) -> str:
    body = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__record__.names)
    return f"{type(self).__qualname__}({body})"


def _values(self: Any) -> tuple[object, ...]:
    return tuple(getattr(self, name) for name in self.__record__.names)


def _eq(self: Any, other: object) -> object:
    if other.__class__ is not self.__class__:
        return NotImplemented
    return _values(self) == _values(other)


def _hash(self: Any) -> int:
    return hash(_values(self))


def _setattr(self: Any, name: str, value: object) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _delattr(self: Any, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r}")


def _build(cls: type, frozen: bool, kw_only: bool) -> None:
    """Give ``cls`` its field table and the methods it does not define itself."""
    bases = [b.__dict__["__record__"] for b in reversed(cls.__mro__[1:]) if "__record__" in b.__dict__]
    if bases and any(b.frozen != frozen for b in bases):
        raise TypeError(f"{cls.__qualname__}: a frozen record and a mutable one cannot derive from each other")
    names: dict[str, bool] = {}  # name: keyword-only
    spec = Spec(frozen)
    for base in bases:
        for name in base.names:
            names[name] = name not in base.positional
        spec.defaults.update(base.defaults)
        spec.factories.update(base.factories)
    for name, annotation in cls.__annotations__.items():  # its own (Python 3.10 on)
        if str(annotation).startswith(("ClassVar", "InitVar", "typing.ClassVar")):
            raise TypeError(f"{cls.__qualname__}.{name}: a record has no class or init-only variables")
        default = cls.__dict__.get(name, MISSING)
        spec.defaults.pop(name, None)
        spec.factories.pop(name, None)
        if isinstance(default, Field):
            if default.default_factory is not MISSING:
                spec.factories[name] = default.default_factory  # type: ignore[assignment]
            default = default.default
            if default is MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, default)
        if isinstance(default, _MUTABLE):
            raise ValueError(f"{cls.__qualname__}.{name}: a mutable default is shared: use default_factory")
        if default is not MISSING:
            spec.defaults[name] = default
        names[name] = kw_only
    spec.names = tuple(names)
    spec.positional = tuple(name for name, kw in names.items() if not kw)
    optional = False
    for name in spec.positional:
        has_default = name in spec.defaults or name in spec.factories
        if optional and not has_default:
            raise TypeError(f"{cls.__qualname__}.{name}: a field without a default follows one with a default")
        optional = optional or has_default
    own = dict(cls.__dict__)
    methods = {"__init__": _init, "__repr__": _repr, "__eq__": _eq}
    if frozen:
        methods.update(__setattr__=_setattr, __delattr__=_delattr)
    for name, method in methods.items():
        if name not in own:
            setattr(cls, name, method)
    if own.get("__hash__", MISSING) is MISSING or (own["__hash__"] is None and "__eq__" in own):
        setattr(cls, "__hash__", _hash if frozen else None)  # noqa: B010 - none of its own (an __eq__ unsets it)
    setattr(cls, "__record__", spec)  # noqa: B010 - the class's own table, on the class
    setattr(cls, "__match_args__", spec.positional)  # noqa: B010 - as a dataclass has it


@dataclass_transform(field_specifiers=(field,))
def record(*, frozen: bool = False, kw_only: bool = False) -> Callable[[type[_T]], type[_T]]:
    """The class decorator: ``@record()``, ``@record(frozen=True)``, ``@record(kw_only=True)``."""

    def build(cls: type[_T]) -> type[_T]:
        _build(cls, frozen, kw_only)
        return cls

    return build


def is_record(obj: object) -> bool:
    """Whether ``obj`` is a record (an instance, not the class)."""
    return not isinstance(obj, type) and hasattr(type(obj), "__record__")


def field_names(cls: type) -> tuple[str, ...]:
    """A record class's field names, in order."""
    spec: Spec = cls.__record__  # type: ignore[attr-defined]
    return spec.names


def asdict(obj: object) -> dict[str, Any]:
    """A record's fields as a dict, records, lists, tuples and dicts within converted alike
    (other values as they are: they are not copied)."""
    if not is_record(obj):
        raise TypeError(f"asdict() takes a record, not {type(obj).__name__}")
    return {name: _plain(getattr(obj, name)) for name in field_names(type(obj))}


def _plain(value: object) -> Any:
    if is_record(value):
        return asdict(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    return value


def replace(obj: _T, **changes: object) -> _T:
    """A copy of a record with some fields changed."""
    if not is_record(obj):
        raise TypeError(f"replace() takes a record, not {type(obj).__name__}")
    values = {name: getattr(obj, name) for name in field_names(type(obj))}
    values.update(changes)
    return type(obj)(**values)

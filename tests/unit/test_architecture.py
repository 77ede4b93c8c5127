"""The import graph of apt_clone/: no circle, imports inside functions included (a delayed import
hides a dependency; it never breaks a circle)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "apt_clone"


def _module_of(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _graph() -> dict[str, set[str]]:
    """Module -> the apt_clone modules it imports, anywhere in its text."""
    files = {_module_of(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in files}
    for module, path in files.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                targets = [f"{base}.{a.name}" for a in node.names] + [base]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            # "from . import x" names module x when there is one; else the package itself
            found = next((t for t in targets if t in files), None)
            for target in [t for t in targets[:-1] if t in files] or ([found] if found else []):
                if target != module:
                    graph[module].add(target)
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_import_graph_has_no_circle():
    graph = _graph()
    assert "apt_clone.cli" in graph and "apt_clone.zfs.cli" in graph["apt_clone.zfs"] | set(graph)
    assert _circles(graph) == []


def test_a_circle_is_found():
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_architecture_page_names_every_module():
    page = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        top, _, name = rel.rpartition("/")
        # a module of a subpackage is named in its row as `name` beside the package's `dir/`
        if f"`{rel}`" not in page and not (top and f"`{top}/`" in page and f"`{name}`" in page):
            missing.append(rel)
    assert not missing, f"docs/architecture.md does not name {missing}"


LAYERS = (
    ("entry", ("__main__", "entry")),
    ("command line", ("cli",)),
    ("recovery", ("recovery",)),
    ("apt operations", ("apt",)),
    ("trial boots", ("trial",)),
    ("checkpoints", ("checkpoints",)),
    ("engine", ("engine",)),
    ("the managed system", ("context", "model")),
    ("side effects", ("zfs", "boot", "chroot", "mounts", "side_by_side", "dpkgstatus")),
    (
        "foundation",
        (
            "errors",
            "signals",
            "paths",
            "runner",
            "lock",
            "readahead",
            "config",
            "system",
            "names",
            "text",
            "record",
            "testhooks",
        ),
    ),
    ("the package", ("__init__",)),
)
"""docs/architecture.md's layers, top to bottom, by top-level module or subpackage."""


def _layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else "__init__"
    return next(i for i, (_, names) in enumerate(LAYERS) if top in names)


def test_no_module_imports_from_a_layer_above_its_own():
    upward = sorted(
        f"{m} ({LAYERS[_layer(m)][0]}) imports {t} ({LAYERS[_layer(t)][0]})"
        for m, targets in _graph().items()
        for t in targets
        if _layer(t) < _layer(m)
    )
    assert upward == []


def _unit(module: str) -> str:
    """A module's top-level unit: its subpackage, or itself when it is a flat module."""
    return ".".join(module.split(".")[:2])


def test_the_packages_import_each_other_without_a_circle():
    """The folder-level graph (a subpackage as one node) has no circle either."""
    folders: dict[str, set[str]] = {}
    for module, targets in _graph().items():
        folders.setdefault(_unit(module), set())
        folders[_unit(module)] |= {_unit(t) for t in targets if _unit(t) != _unit(module)}
    for target in {t for ts in folders.values() for t in ts}:
        folders.setdefault(target, set())
    assert _circles(folders) == []


def test_the_domain_packages_init_files_hold_only_a_docstring():
    """Importing a module of a package runs its ``__init__``: it stays free, so the hook's and the
    boot's paths load no more than the modules they use."""
    for init in PACKAGE.glob("*/__init__.py"):
        if init.parent.name in ("zfs", "boot"):  # the interfaces: the ZFS backend, the boot loader
            continue
        body = ast.parse(init.read_text()).body
        assert len(body) <= 1 and all(isinstance(n, ast.Expr) for n in body), init


def _function_imports() -> list[tuple[Path, int, bool]]:
    """Every import inside a function: where, and whether a comment says why it is there (on its
    line, or above the run of imports it begins)."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        lines = path.read_text().split("\n")
        for fn in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    first = node.lineno - 1
                    while first > 0 and lines[first - 1].strip().startswith(("from ", "import ")):
                        first -= 1
                    said = "#" in lines[node.lineno - 1] or lines[first - 1].strip().startswith("#")
                    found.append((path, node.lineno, said)) if (path, node.lineno, said) not in found else None
    return found


def test_every_import_inside_a_function_says_what_it_saves():
    bare = [f"{p.relative_to(PACKAGE)}:{n}" for p, n, said in _function_imports() if not said]
    assert bare == []


def test_records_are_declared_with_record_not_dataclass() -> None:
    """Every class of named fields is an :mod:`apt_clone.record`: a dataclass would compile its
    methods, and load ``dataclasses`` and ``inspect``, at every start (issue #36)."""
    found = sorted(
        f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"
        for path in PACKAGE.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if (isinstance(node, ast.ImportFrom) and node.module == "dataclasses")
        or (isinstance(node, ast.Import) and any(a.name == "dataclasses" for a in node.names))
    )
    assert found == []

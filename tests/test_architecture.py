"""The import rules between the project's parts, read from the source with ``ast``.

- ``handlers/`` (the conversation core) imports nothing from ``bot`` nor a channel SDK or web
  stack (telegram, twilio, aiohttp, httpx, starlette, uvicorn);
- ``storage/`` imports neither ``handlers`` nor ``bot``;
- ``bot/channels/**`` imports no SQLAlchemy, not even for a type hint (``storage.db.Sessions``
  names the session factory; the channels call storage's repository functions);
- SQL is written in ``storage/`` only: no SQLAlchemy statement builder (``select``, ``update``,
  ``insert``, ``delete``, ``text``, ``func`` ...) and no SQL text anywhere else in ``bot/`` or
  ``handlers/`` (the benchmarks and the tests seed and inspect their databases directly);
- no circles: no project module imports itself through others. Imports inside functions count
  (a late import that only dodges a circle is still one); ``if TYPE_CHECKING:`` imports do not.

Every import counts wherever it stands (in a function, under ``TYPE_CHECKING``) for the rules
of what may import what.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "handlers", "storage", "tests")
SCRIPTS = "bench"  # scripts run from their folder: ``import growth`` is bench/growth.py

SDKS = ("telegram", "twilio", "aiohttp", "httpx", "starlette", "uvicorn")
BUILDERS = frozenset(
    {
        "select",
        "insert",
        "update",
        "delete",
        "text",
        "func",
        "case",
        "and_",
        "or_",
        "not_",
        "exists",
        "union",
        "union_all",
        "literal",
        "literal_column",
        "column",
        "table",
        "bindparam",
        "tuple_",
        "cast",
        "distinct",
        "null",
        "true",
        "false",
    }
)
SQL_TEXT = re.compile(
    r"^\s*(SELECT|INSERT\s+INTO|UPDATE|DELETE\s+FROM|NOTIFY|LISTEN|PRAGMA|BEGIN|WITH)\s", re.ASCII
)

# Files that still break a rule, each with the reason and who removes it. The check still runs:
# an expected failure while the file breaks the rule, a failure once it keeps it (until the entry
# goes).
ALLOWANCES: dict[tuple[str, str], str] = {}  # (rule, file): why, while a move is under way


@dataclass(frozen=True, slots=True)
class Import:
    """One imported name: ``module`` (absolute), and ``name`` for ``from module import name``."""

    path: Path
    root: Path
    line: int
    module: str
    name: str | None
    in_function: bool
    type_only: bool

    @property
    def top(self) -> str:
        return self.module.split(".", 1)[0]

    def where(self) -> str:
        shown = f"from {self.module} import {self.name}" if self.name else f"import {self.module}"
        return f"{_rel(self.path, self.root)}:{self.line}: {shown}"


def _rel(path: Path, root: Path = ROOT) -> str:
    return path.relative_to(root).as_posix()


def _files(*folders: str) -> list[Path]:
    return sorted(
        p
        for folder in folders
        for p in (ROOT / folder).rglob("*.py")
        if ".venv" not in p.parts and "__pycache__" not in p.parts
    )


def module_name(path: Path, root: Path = ROOT) -> str:
    """The dotted name a file is imported by (bench scripts: ``bench.<script>``)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


@functools.cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), str(path))


@functools.cache
def imports(path: Path, root: Path = ROOT) -> list[Import]:
    """Every import of the file, wherever it stands, with its line and situation."""
    found: list[Import] = []
    package = module_name(path, root).split(".")
    if path.name != "__init__.py":
        package.pop()

    def visit(node: ast.AST, in_function: bool, type_only: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                for alias in child.names:
                    found.append(
                        Import(path, root, child.lineno, alias.name, None, in_function, type_only)
                    )
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:  # relative: resolved against the file's package
                    anchor = package[: len(package) - child.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                for alias in child.names:
                    found.append(
                        Import(path, root, child.lineno, base, alias.name, in_function, type_only)
                    )
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                visit(child, True, type_only)
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.body:
                    visit(ast.Module(body=[stmt], type_ignores=[]), in_function, True)
                for stmt in child.orelse:
                    visit(ast.Module(body=[stmt], type_ignores=[]), in_function, type_only)
            else:
                visit(child, in_function, type_only)

    visit(_tree(path), False, False)
    return found


def _check(rule: str, path: Path, problems: list[str]) -> None:
    reason = ALLOWANCES.get((rule, _rel(path)))
    if reason is not None and problems:
        pytest.xfail(f"allowed for now: {reason}")
    if reason is not None:
        pytest.fail(f"{_rel(path)} keeps the rule now: remove its entry from ALLOWANCES")
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def _params(*folders: str) -> list[object]:
    return [pytest.param(p, id=_rel(p)) for p in _files(*folders)]


# --- what may import what ------------------------------------------------------------------


@pytest.mark.parametrize("path", _params("handlers"))
def test_the_core_imports_no_bot_and_no_channel_sdk(path: Path) -> None:
    problems = [
        f"{i.where()}: handlers/ must not import {i.top!r} (the core knows no channel)"
        for i in imports(path)
        if i.top in ("bot", *SDKS)
    ]
    _check("core_imports", path, problems)


@pytest.mark.parametrize("path", _params("storage"))
def test_storage_imports_neither_the_core_nor_bot(path: Path) -> None:
    problems = [
        f"{i.where()}: storage/ must not import {i.top!r} (it is below both)"
        for i in imports(path)
        if i.top in ("handlers", "bot")
    ]
    _check("storage_imports", path, problems)


@pytest.mark.parametrize("path", _params("bot/channels"))
def test_channels_import_no_sqlalchemy(path: Path) -> None:
    problems = [
        f"{i.where()}: a channel must not import SQLAlchemy (use storage.db.Sessions and "
        "storage's functions)"
        for i in imports(path)
        if i.top == "sqlalchemy"
    ]
    _check("no_sqlalchemy_in_channels", path, problems)


# --- SQL lives in storage/ -----------------------------------------------------------------


def sql_outside_storage(path: Path, root: Path = ROOT) -> list[str]:
    """Statement builders imported or used, and SQL text, with their lines."""
    problems = [
        f"{i.where()}: SQL statements belong in storage/"
        for i in imports(path, root)
        if i.top == "sqlalchemy" and i.name in BUILDERS
    ]
    tree = _tree(path)
    aliases = {  # names bound to the sqlalchemy package: import sqlalchemy (as sa)
        alias.asname or "sqlalchemy"
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
        if alias.name.split(".")[0] == "sqlalchemy"
        and (alias.asname is None or "." not in alias.name)
    }
    docstrings = {
        id(n.body[0].value)
        for n in ast.walk(tree)
        if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and n.body
        and isinstance(n.body[0], ast.Expr)
        and isinstance(n.body[0].value, ast.Constant)
    }
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in BUILDERS
            and _root_name(node.value) in aliases
        ):
            problems.append(
                f"{_rel(path, root)}:{node.lineno}: {_root_name(node.value)}...{node.attr}: "
                "SQL statements belong in storage/"
            )
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and SQL_TEXT.match(node.value)
        ):
            problems.append(
                f"{_rel(path, root)}:{node.lineno}: SQL text {node.value[:40]!r}: "
                "SQL statements belong in storage/"
            )
    return problems


def _root_name(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


@pytest.mark.parametrize("path", _params("bot", "handlers"))
def test_sql_is_written_in_storage_only(path: Path) -> None:
    _check("sql_in_storage", path, sql_outside_storage(path))


# --- no circles ------------------------------------------------------------------------------


def _graph() -> dict[str, dict[str, Import]]:
    """Module -> the project modules it imports (with the import that does it)."""
    files = {module_name(p): p for p in _files(*PACKAGES, SCRIPTS)}
    scripts = {p.stem: module_name(p) for p in _files(SCRIPTS)}

    def resolve(i: Import, importer: str) -> str | None:
        dotted = f"{i.module}.{i.name}" if i.name else i.module
        if importer.startswith(f"{SCRIPTS}.") and i.top in scripts:
            return scripts[i.top]
        while dotted:
            if dotted in files:
                return dotted
            dotted = dotted.rpartition(".")[0]
        return None

    graph: dict[str, dict[str, Import]] = {}
    for name, path in files.items():
        edges = graph.setdefault(name, {})
        for i in imports(path):
            target = resolve(i, name)
            if target is not None and target != name and not i.type_only:
                edges.setdefault(target, i)
    return graph


def cycles(graph: dict[str, dict[str, Import]]) -> Iterator[list[Import]]:
    """One circle of imports through each group of modules that import each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def connect(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(graph):
        if v not in index:
            connect(v)
    for group in groups:
        start = min(group)
        path = _path_back(graph, group, start)
        yield [graph[a][b] for a, b in pairwise(path)]


def _path_back(graph: dict[str, dict[str, Import]], group: set[str], start: str) -> list[str]:
    """The shortest circle start -> ... -> start inside the group (breadth first)."""
    came: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for v in frontier:
            for w in graph[v]:
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(came[path[-1]])
                    return [*reversed(path), start]
                if w in group and w not in came:
                    came[w] = v
                    following.append(w)
        frontier = following
    raise AssertionError(f"no circle through {start}")


def test_no_import_circles() -> None:
    found = [
        "import circle:\n" + "\n".join(f"  {module_name(i.path)} -> ({i.where()})" for i in circle)
        for circle in cycles(_graph())
    ]
    if found:
        pytest.fail("\n".join(found), pytrace=False)


# --- the checker itself ----------------------------------------------------------------------


def test_there_are_files_to_check() -> None:
    checked = {_rel(p) for p in _files(*PACKAGES, SCRIPTS)}
    assert {"handlers/core.py", "storage/outbox.py", "bot/channels/telegram/sender.py"} <= checked
    assert "bench/bench.py" in checked


def test_the_checker_sees_late_type_only_and_relative_imports(tmp_path: Path) -> None:
    sample = tmp_path / "storage" / "sample.py"
    sample.parent.mkdir()
    sample.write_text(
        "from typing import TYPE_CHECKING\n"
        "import sqlalchemy as sa\n"
        "if TYPE_CHECKING:\n"
        "    from sqlalchemy.ext.asyncio import AsyncSession\n"
        "def f():\n"
        "    from bot.config import Settings\n"
        "    from .models import Outbox\n"
        "    return sa.select(Outbox), 'SELECT 1'\n",
        encoding="utf-8",
    )
    found = {(i.module, i.name, i.in_function, i.type_only) for i in imports(sample, tmp_path)}
    assert ("sqlalchemy.ext.asyncio", "AsyncSession", False, True) in found
    assert ("bot.config", "Settings", True, False) in found
    assert ("storage.models", "Outbox", True, False) in found
    sql = sql_outside_storage(sample, tmp_path)
    assert any(p.startswith("storage/sample.py:8: sa...select") for p in sql), sql
    assert any("SQL text 'SELECT 1'" in p for p in sql), sql


def test_the_checker_finds_a_circle_and_names_its_lines() -> None:
    def edge(a: str, b: str, line: int) -> Import:
        return Import(ROOT / f"{a}.py", ROOT, line, b, None, False, False)

    graph = {
        "a": {"b": edge("a", "b", 1)},
        "b": {"c": edge("b", "c", 2)},
        "c": {"a": edge("c", "a", 3), "d": edge("c", "d", 4)},
        "d": {},
    }
    (circle,) = cycles(graph)
    assert [(i.module, i.line) for i in circle] == [("b", 1), ("c", 2), ("a", 3)]

"""The conversation core and storage never import a channel SDK or the bot package."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("handlers", "storage")
FORBIDDEN = ("telegram", "twilio")


def _modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def _imports(path: Path) -> set[str]:
    """Every module name the file imports (absolute), including inside functions."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name | ast.Attribute)
            and getattr(node.func, "id", getattr(node.func, "attr", "")) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            names.add(str(node.args[0].value))
    return names


def _top(name: str) -> str:
    return name.split(".", 1)[0]


def test_there_are_modules_to_check() -> None:
    files = {p.relative_to(ROOT).as_posix() for p in _modules()}
    assert "handlers/core.py" in files
    assert "storage/models.py" in files


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_channel_sdk_or_bot_import(path: Path) -> None:
    bad = sorted(n for n in _imports(path) if _top(n) in (*FORBIDDEN, "bot"))
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_the_checker_catches_submodules_and_late_imports(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import telegram.ext\n"
        "def f():\n"
        "    from twilio.rest import Client\n"
        "    import bot.config\n",
        encoding="utf-8",
    )
    assert {_top(n) for n in _imports(sample)} == {"telegram", "twilio", "bot"}

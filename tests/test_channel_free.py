"""The conversation core and storage never import a channel SDK or the bot package, and the core
knows no channel by name: it asks what a channel can do (``CoreConfig.channels``, declared by
each adapter in ``bot/channels/<name>/capabilities.py``)."""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.telegram.capabilities import TELEGRAM
from bot.wiring import CHANNELS
from storage.models import Outbox
from storage.types import Channel, OutboxKind
from tests.support.chats import core_config, staff_cast, texts

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("handlers", "storage")
FORBIDDEN = ("telegram", "twilio")
CHANNEL_NAMES = frozenset(c.value for c in Channel)
CHANNEL_MEMBERS = frozenset(c.name for c in Channel)
# A channel's limits or a list of channels singled out by what they can do: the adapters
# declare these as capabilities; the core keeps none of its own.
LIMIT_NAMES = frozenset({"CAPTION_LIMIT", "TEXT_LIMIT", "BODY_LIMIT", "BUTTON_LIMIT"})
CHANNEL_SET_NAME = re.compile(r"[A-Z0-9_]*_CHANNELS")
# The only places in handlers/ and storage/ that may spell a channel's name, and why.
ALLOWED_NAMING = {
    # The vocabulary itself: the enum that gives every channel its name.
    ("storage/types.py", "Channel"),
}


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


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string statements (docstrings, and strings used as comments)."""
    return {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }


def _allowed(tree: ast.Module, rel: str, exceptions: set[tuple[str, str]]) -> set[int]:
    """ids of the nodes inside the class definitions of this file that are exceptions."""
    allowed: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and (rel, node.name) in exceptions:
            allowed.update(id(inner) for inner in ast.walk(node))
    return allowed


def _name_of(node: ast.AST) -> str | None:
    """The identifier a node defines, uses or imports, if any."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return node.name
    if isinstance(node, ast.alias):
        return node.name.rsplit(".", 1)[-1]  # what is imported, whatever it is called here
    return None


def channel_knowledge(
    path: Path, rel: str, exceptions: set[tuple[str, str]] = ALLOWED_NAMING
) -> list[str]:
    """Where a file decides by a channel's name or keeps a channel's limits: a channel's name
    as a string, a ``Channel.TELEGRAM``-style member, a limit's or channel list's name."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    skip = _docstrings(tree) | _allowed(tree, rel, exceptions)
    found: list[str] = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        where = f"{rel}:{getattr(node, 'lineno', '?')}"
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and node.value.strip().lower() in CHANNEL_NAMES
        ):
            found.append(f"{where} the channel name {node.value!r}")
        elif isinstance(node, ast.Attribute) and node.attr in CHANNEL_MEMBERS:
            found.append(f"{where} the channel member .{node.attr}")
        name = _name_of(node)
        if name is not None and (name in LIMIT_NAMES or CHANNEL_SET_NAME.fullmatch(name)):
            found.append(f"{where} the name {name}")
    return found


def test_there_are_modules_to_check() -> None:
    files = {p.relative_to(ROOT).as_posix() for p in _modules()}
    assert "handlers/core.py" in files
    assert "storage/models.py" in files


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_channel_sdk_or_bot_import(path: Path) -> None:
    bad = sorted(n for n in _imports(path) if _top(n) in (*FORBIDDEN, "bot"))
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_channel_is_known_by_name(path: Path) -> None:
    """Ask ``ctx.config.capabilities(channel)`` (or ``channels_where``) instead."""
    found = channel_knowledge(path, path.relative_to(ROOT).as_posix())
    assert not found, "\n".join(found)


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


def test_the_checker_catches_names_members_and_limits(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        '"""Docstrings may say Telegram and "whatsapp"."""\n'
        "EDITABLE_CHANNELS = frozenset({Channel.TELEGRAM.value})\n"
        "CAPTION_LIMIT = 1024\n"
        "from bot.channels.whatsapp.render import BODY_LIMIT as LIMIT\n"
        "def f(msg, row):\n"
        '    """WhatsApp cannot."""\n'
        '    if msg.channel == "whatsapp" or row.channel in ("Telegram",):\n'
        "        return msg.channel is Channel.WHATSAPP\n"
        "    return len(msg.text) > CAPTION_LIMIT\n",
        encoding="utf-8",
    )
    found = [line.split(" ", 1)[1] for line in channel_knowledge(sample, "sample.py")]
    assert sorted(found) == sorted(
        [
            "the name EDITABLE_CHANNELS",
            "the channel member .TELEGRAM",
            "the name CAPTION_LIMIT",
            "the name BODY_LIMIT",
            "the channel name 'whatsapp'",
            "the channel name 'Telegram'",
            "the channel member .WHATSAPP",
            "the name CAPTION_LIMIT",
        ]
    )


@pytest.mark.parametrize("exception", sorted(ALLOWED_NAMING), ids=lambda e: f"{e[0]}:{e[1]}")
def test_every_exception_is_still_needed(exception: tuple[str, str]) -> None:
    """Without its exception the file would fail the check: no stale permissions."""
    rel = exception[0]
    others = ALLOWED_NAMING - {exception}
    assert channel_knowledge(ROOT / rel, rel, others), f"{exception} allows nothing: remove it"


async def test_the_core_serves_a_channel_by_what_it_can_do(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Telegram described as a channel without groups, buttons, edits or documents is served
    like one: its officer gets the alert 1:1 with how to answer in words, a claim sends the
    others a status message instead of editing, and an export points elsewhere."""
    plain = dataclasses.replace(
        TELEGRAM, group_chats=False, max_buttons=0, edits_messages=False, sends_documents=False
    )
    config = dataclasses.replace(
        core_config(), channels={**CHANNELS, Channel.TELEGRAM.value: plain}
    )
    cast = await staff_cast(sessions)
    for chat in (cast.reporter, cast.officer, cast.coordinator):
        chat.config = config

    filed = (await cast.reporter.file_report()).recorded.filed
    assert filed is not None
    ticket = filed["ticket"]
    async with sessions() as s:
        alerts = (await s.scalars(select(Outbox).order_by(Outbox.id))).all()
    assert {a.payload["route"] for a in alerts} == {"group", "officer"}
    howto = config.catalog.text("id", "alert.whatsapp_howto", ticket=ticket)
    for alert in alerts:
        assert alert.payload["reply"]["options"] == []
        assert alert.payload["reply"]["text"].endswith(howto)

    await cast.officer.send(f"tangani {ticket}")
    async with sessions() as s:
        kinds = [r.kind for r in (await s.scalars(select(Outbox).order_by(Outbox.id))).all()]
    assert OutboxKind.ALERT_EDIT.value not in kinds
    assert OutboxKind.STATUS.value in kinds

    answer = texts(await cast.coordinator.send("/ekspor"))
    assert answer == config.catalog.text("id", "export.no_documents")

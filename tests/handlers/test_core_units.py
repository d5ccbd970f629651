"""Small pieces of the core: command words, typed options, tickets, config, outbox payload."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.commands import Command, parse_command
from handlers.config import Category, CoreConfig
from handlers.context import Context
from handlers.options import match_option
from handlers.types import Reply
from storage import outbox
from storage.reports import TICKET_ALPHABET, normalise_ticket, random_ticket


@pytest.mark.parametrize(
    ("text", "command", "arg"),
    [
        ("/lapor", Command.REPORT, None),
        ("/report", Command.REPORT, None),
        ("LAPOR", Command.REPORT, None),
        ("  lapor! ", Command.REPORT, None),
        ("/start 17.71.08.1004", Command.START, "17.71.08.1004"),
        ("start 17.71.08.1004", Command.START, "17.71.08.1004"),
        ("/status", Command.STATUS, None),
        ("status KTN-ABC234", Command.STATUS, "KTN-ABC234"),
        ("Status ktn-abc234", Command.STATUS, "ktn-abc234"),
        ("BATAL", Command.CANCEL, None),
        ("/cancel", Command.CANCEL, None),
        ("/bantuan", Command.HELP, None),
        ("help", Command.HELP, None),
        ("/darurat", Command.EMERGENCY, None),
        ("/emergency", Command.EMERGENCY, None),
        ("/bahasa en", Command.LANGUAGE, "en"),
        ("bahasa inggris", Command.LANGUAGE, "inggris"),
        ("/berhenti", Command.STOP, None),
        ("STOP", Command.STOP, None),
        ("/hapusdata", Command.ERASE, None),
        ("/deletemydata", Command.ERASE, None),
        ("hapus data", Command.ERASE, None),
        ("/lapor@ktn_bot", Command.REPORT, None),
        ("/LAPOR@KTN_BOT", Command.REPORT, None),
        ("/cuaca", Command.UNKNOWN, None),
    ],
)
def test_command_words(text: str, command: Command, arg: str | None) -> None:
    parsed = parse_command(text, bot_username="ktn_bot")
    assert parsed is not None
    assert (parsed.command, parsed.arg) == (command, arg)


@pytest.mark.parametrize(
    "text",
    [
        "Lapor pak, ada maling",
        "status rumah kosong",
        "start dari sini",
        "bahasa kasar di grup",
        "/lapor@other_bot",
        "halo",
        "",
        None,
    ],
)
def test_not_commands(text: str | None) -> None:
    assert parse_command(text, bot_username="ktn_bot") is None


def test_groups_take_only_slash_commands() -> None:
    assert parse_command("lapor", slash_only=True) is None
    parsed = parse_command("/lapor@ktn_bot", slash_only=True, bot_username="ktn_bot")
    assert parsed is not None and parsed.addressed


OPTIONS = [("Keamanan", "cat:keamanan"), ("Sosial-Ekonomi", "cat:sosial_ekonomi")]


@pytest.mark.parametrize(
    ("text", "data"),
    [
        ("1", "cat:keamanan"),
        ("2.", "cat:sosial_ekonomi"),
        ("KEAMANAN", "cat:keamanan"),
        ("sosial ekonomi", "cat:sosial_ekonomi"),
        ("sosial_ekonomi", "cat:sosial_ekonomi"),
        ("3", None),
        ("0", None),
        ("kebakaran", None),
    ],
)
def test_typed_options(text: str, data: str | None) -> None:
    assert match_option(OPTIONS, text) == data


@pytest.mark.parametrize(
    ("text", "data"),
    [("ya", "anon:yes"), ("Iya", "anon:yes"), ("gak", "anon:no"), ("No", "anon:no")],
)
def test_yes_no_words(text: str, data: str) -> None:
    assert match_option([("Yes", "anon:yes"), ("No", "anon:no")], text) == data


def test_tickets_are_unambiguous_and_normalised() -> None:
    for _ in range(200):
        ticket = random_ticket()
        assert ticket.startswith("KTN-") and len(ticket) == 10
        assert not set(ticket[4:]) & set("01OI")
        assert set(ticket[4:]) <= set(TICKET_ALPHABET)
    assert normalise_ticket("ktn-7qx4pa") == "KTN-7QX4PA"
    assert normalise_ticket("KTN 7QX4PA") == "KTN-7QX4PA"
    assert normalise_ticket("7qx4pa") == "KTN-7QX4PA"
    assert normalise_ticket("halo") is None


def test_escalation_minutes() -> None:
    config = CoreConfig.default()
    assert config.escalation_minutes("keamanan", urgent=False) == 60
    assert config.escalation_minutes("keamanan", urgent=True) == 10
    assert config.escalation_minutes("bencana", urgent=True) == 10
    custom = CoreConfig(
        catalog=config.catalog,
        categories=(Category("keamanan", escalate_after_minutes=30), Category("banjir", True, 5)),
    )
    assert custom.escalation_minutes("keamanan", urgent=False) == 30
    assert custom.escalation_minutes("keamanan", urgent=True) == 10
    assert custom.escalation_minutes("banjir", urgent=True) == 5


def test_config_and_context_refuse_nonsense() -> None:
    catalog = CoreConfig.default().catalog
    with pytest.raises(ValueError, match="unique"):
        CoreConfig(catalog=catalog, categories=(Category("a"), Category("a")))
    with pytest.raises(ValueError, match="lower-case"):
        Category("Keamanan")
    with pytest.raises(ValueError, match="default_language"):
        CoreConfig(catalog=catalog, default_language="fr")
    with pytest.raises(ValueError, match="aware"):
        Context(CoreConfig.default(), now=datetime(2025, 1, 1))


async def test_outbox_payload_format(session: AsyncSession) -> None:
    row = outbox.enqueue(
        session,
        channel="telegram",
        chat_id=-100123,
        kind="notice",
        reply=Reply("Halo"),
        dedupe_key="k1",
        extra={"lang": "id"},
    )
    await session.flush()
    assert row.id is not None and row.status == "pending"
    assert row.payload == {"lang": "id", "reply": Reply("Halo").to_json()}
    assert Reply.from_json(row.payload["reply"]) == Reply("Halo")
    with pytest.raises(ValueError, match="reply"):
        outbox.enqueue(
            session, channel="x", chat_id=1, kind="notice", reply=Reply("a"), extra={"reply": 1}
        )

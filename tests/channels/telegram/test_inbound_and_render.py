"""bot.channels.telegram: translating updates, fitting edited alerts into Telegram's limits,
reading the Bot API's errors."""

from __future__ import annotations

from datetime import timedelta

import pytest
from telegram import Update
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)

from bot.channels.telegram.inbound import to_inbound
from bot.channels.telegram.render import CAPTION_LIMIT, fit_keeping_tail
from bot.channels.telegram.sender import is_not_modified, translate

USER = {"id": 501, "is_bot": False, "first_name": "Siti"}
CHAT = {"id": 501, "type": "private", "first_name": "Siti"}


def update(kind: str, **message: object) -> Update:
    """An update of this kind ('message', 'edited_message') from the resident."""
    data = {"message_id": 7, "date": 1700000000, "chat": CHAT, "from": USER, **message}
    return Update.de_json({"update_id": 1, kind: data}, None)


def test_a_new_message_is_an_inbound() -> None:
    inbound = to_inbound(update("message", text="Motor hilang"))
    assert inbound is not None and inbound.text == "Motor hilang"


def test_edits_are_not_answers_text_or_live_location() -> None:
    """A corrected story must not become the next step's answer; live locations edit for hours."""
    assert to_inbound(update("edited_message", text="Motor hilang (ralat)")) is None
    pin = {"latitude": -3.79, "longitude": 102.25, "live_period": 3600}
    assert to_inbound(update("edited_message", location=pin)) is None


def test_an_edited_caption_keeps_who_acted_when_cut() -> None:
    story = "📢 Laporan baru\n" + "x" * 1200
    edited = f"{story}\n\n👮 Ditangani oleh Bripka Andi — 19:05 WIB"
    fitted = fit_keeping_tail(edited, CAPTION_LIMIT)
    assert len(fitted) <= CAPTION_LIMIT
    assert fitted.startswith("📢 Laporan baru")
    assert fitted.endswith("👮 Ditangani oleh Bripka Andi — 19:05 WIB")
    assert fit_keeping_tail("pendek", CAPTION_LIMIT) == "pendek"


@pytest.mark.parametrize(
    ("error", "retry_after", "permanent", "blocked", "migrated_to"),
    [
        (RetryAfter(timedelta(seconds=7)), 7.0, False, False, None),
        (ChatMigrated(-100777), None, False, False, -100777),
        (Forbidden("bot was blocked by the user"), None, True, True, None),
        (BadRequest("Chat not found"), None, True, False, None),
        (TimedOut(), None, False, False, None),
        (NetworkError("Bad Gateway"), None, False, False, None),
        (InvalidToken(), None, False, False, None),
        (TelegramError("something new"), None, False, False, None),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, TelegramError) else None,
)
def test_one_mapping_says_what_a_bot_api_error_means_for_any_send(
    error: TelegramError,
    retry_after: float | None,
    permanent: bool,
    blocked: bool,
    migrated_to: int | None,
) -> None:
    """Outbox rows and direct replies read Telegram's errors the same way (``translate``): a
    direct reply is given up where the outbox would give it up, and queued where it would retry."""
    meaning = translate(error)
    assert (meaning.retry_after, meaning.permanent, meaning.blocked, meaning.migrated_to) == (
        retry_after,
        permanent,
        blocked,
        migrated_to,
    )
    assert is_not_modified(BadRequest("message is not modified: same text"))
    assert not is_not_modified(error)

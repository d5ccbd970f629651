"""bot.telegram: translating updates, fitting edited alerts into Telegram's limits."""

from __future__ import annotations

from telegram import Update

from bot.channels.telegram.inbound import to_inbound
from bot.channels.telegram.render import CAPTION_LIMIT, fit_keeping_tail

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

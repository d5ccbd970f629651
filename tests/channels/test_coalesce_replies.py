"""bot.channels.replies.coalesce: plain texts join the reply that follows them, on both channels,
each within its own message length."""

from __future__ import annotations

from bot.channels.replies import coalesce
from bot.channels.telegram.render import TEXT_LIMIT
from bot.channels.whatsapp.render import BODY_LIMIT, utf16_units
from handlers.types import Document, Location, Media, MediaKind, Option, Reply

QUESTION = Reply("Sudah benar?", (Option("Kirim", "sum:send"),))


def whatsapp(replies: list[Reply]) -> list[Reply]:
    return coalesce(replies, limit=BODY_LIMIT, measure=utf16_units)


def telegram(replies: list[Reply]) -> list[Reply]:
    return coalesce(replies, limit=TEXT_LIMIT)


def test_plain_texts_join_the_reply_that_follows_on_both_channels() -> None:
    replies = [Reply("Ringkasan"), Reply("Kategori: Keamanan"), QUESTION]
    one = [Reply("Ringkasan\n\nKategori: Keamanan\n\nSudah benar?", QUESTION.options)]
    assert whatsapp(replies) == telegram(replies) == one


def test_a_reply_that_carries_more_than_words_is_never_merged_away() -> None:
    carriers = [
        Reply("Foto", media=Media(MediaKind.PHOTO, "/x.jpg")),
        Reply("laporan.csv", document=Document("laporan.csv", b"a,b\n")),
        Reply("Di sini", location=Location(-6.2, 106.8)),
        Reply("Di mana?", ask_location=True),
        QUESTION,
    ]
    for carrier in carriers:
        after = Reply("lalu")
        assert whatsapp([carrier, after]) == telegram([carrier, after]) == [carrier, after]
    photo = carriers[0]  # a medium's caption stays its own
    assert whatsapp([Reply("a"), photo]) == telegram([Reply("a"), photo]) == [Reply("a"), photo]


def test_each_channel_joins_only_within_its_own_length() -> None:
    long = Reply("y" * 1000)
    assert whatsapp([long, long]) == [long, long]  # 2002 > 1600
    assert telegram([long, long]) == [Reply(f"{long.text}\n\n{long.text}")]
    emoji = Reply("🚨" * 500)  # 500 characters, 1000 UTF-16 units: WhatsApp counts the units
    assert whatsapp([emoji, Reply("z" * 600)]) == [emoji, Reply("z" * 600)]
    assert len(telegram([emoji, Reply("z" * 600)])) == 1

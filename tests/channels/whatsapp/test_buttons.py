"""Buttons on WhatsApp: the sender's quick replies and lists through the Twilio fake's Content
API (which enforces Twilio's limits), the content made once and found again in the database,
and the numbered text whenever buttons cannot go."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.telegram.capabilities import TELEGRAM
from bot.channels.whatsapp.capabilities import WHATSAPP
from bot.channels.whatsapp.content import (
    LIST_PICKER,
    QUICK_REPLY,
    ContentMenus,
    plan_menu,
)
from bot.channels.whatsapp.sender import WhatsAppSender, make_client
from bot.delivery.dispatcher import Envelope
from bot.sandbox.twilio_fake import DEFAULT_SENDER, FakeMessage, TwilioFake
from handlers.i18n import Catalog
from handlers.types import Location, Media, MediaKind, Option, Reply
from storage.models import Contact, WhatsAppContent
from storage.types import utcnow
from tests.support.outbox import reloaded, whatsapp_row

RESIDENT = 6281234567890
AWAY = 6281298765432  # last wrote 25 hours ago: outside the window
ALERT_TEMPLATE = "HX" + "a1" * 16
CONSENT = (Option("Setuju", "consent:yes"), Option("Tidak", "consent:no"))
CATEGORIES = tuple(
    Option(label, f"cat:{key}")
    for label, key in (
        ("Keamanan", "keamanan"),
        ("Kesehatan", "kesehatan"),
        ("Sosial-Ekonomi", "sosial"),
        ("Ketahanan Pangan", "pangan"),
        ("Bencana", "bencana"),
        ("Lainnya", "lainnya"),
    )
)


class Clock:
    """The senders' wall clock, moved by hand."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Rig:
    fake: TwilioFake
    sessions: async_sessionmaker[AsyncSession]
    contacts: dict[int, int]
    clock: Clock
    senders: list[WhatsAppSender]

    def sender(self, *, buttons: bool = True) -> WhatsAppSender:
        """A sender as a worker starts it: its own client and memory, the shared database."""
        client = make_client(
            self.fake.account_sid,
            self.fake.auth_token,
            self.fake.base_url,
            timeout=1.0,
            content_base_url=self.fake.base_url,
        )
        catalog = Catalog.load()
        menus = (
            ContentMenus(client, self.sessions, catalog=catalog, clock=self.clock)
            if buttons
            else None
        )
        sender = WhatsAppSender(
            client,
            self.sessions,
            from_number=DEFAULT_SENDER.removeprefix("whatsapp:"),
            catalog=catalog,
            default_language="id",
            templates={"alert": ALERT_TEMPLATE},
            status_callback=None,
            messages_per_second=10,
            clock=self.clock,
            menus=menus,
        )
        self.senders.append(sender)
        return sender

    async def row(self, chat_id: int, kind: str, reply: Reply, **extra: Any) -> Envelope:
        """A pending outbox row for the chat, as the dispatcher would hand it over."""
        contact_id = self.contacts.get(chat_id)
        return await whatsapp_row(self.sessions, contact_id, chat_id, kind, reply, extra)

    async def reload(self, envelope: Envelope) -> Envelope:
        """The row again as the dispatcher would claim it for a retry (its saved progress)."""
        return await reloaded(self.sessions, envelope)

    async def send(
        self,
        sender: WhatsAppSender,
        reply: Reply,
        *,
        kind: str = "reply",
        to: int = RESIDENT,
        lang: str = "id",
    ) -> FakeMessage:
        """Send one row; the one message it became (every path sends exactly one)."""
        before = len(self.fake.messages)
        sid = await sender.send(await self.row(to, kind, reply, lang=lang))
        assert len(self.fake.messages) == before + 1, "one row, one message"
        message = self.fake.messages[-1]
        assert message.sid == sid
        return message

    @property
    def posts(self) -> int:
        """Content API creations asked of the fake (refused ones too)."""
        return self.fake.counters["content_requests"]

    async def stored(self) -> list[WhatsAppContent]:
        async with self.sessions() as s:
            return list((await s.scalars(select(WhatsAppContent))).all())


@pytest.fixture
async def rig(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[Rig]:
    now = utcnow()
    async with sessions() as s:
        people = {
            RESIDENT: Contact(
                channel="whatsapp", external_id=RESIDENT, last_inbound_at=now - timedelta(hours=1)
            ),
            AWAY: Contact(
                channel="whatsapp", external_id=AWAY, last_inbound_at=now - timedelta(hours=25)
            ),
        }
        s.add_all(people.values())
        await s.commit()
        ids = {number: c.id for number, c in people.items()}
    fake = TwilioFake(auto_deliver=False, hang_seconds=5)
    fake.add_template(ALERT_TEMPLATE, "Laporan baru {{3}}: {{1}} {{2}}")
    async with fake.serve():
        fake.inbound_text(f"+{RESIDENT}", "halo")  # the fake's window is open too
        rig = Rig(fake, sessions, ids, Clock(), [])
        try:
            yield rig
        finally:
            for sender in rig.senders:
                await sender.close()


# --- quick replies and lists ----------------------------------------------------------------


async def test_up_to_three_short_options_are_quick_reply_buttons(rig: Rig) -> None:
    message = await rig.send(rig.sender(), Reply("Apakah Anda setuju?", CONSENT))
    assert message.content_type == QUICK_REPLY
    assert message.shown == "Apakah Anda setuju?\n\n[Setuju] [Tidak]"
    assert [(b.title, b.id) for b in message.buttons] == [
        ("Setuju", "consent:yes"),
        ("Tidak", "consent:no"),
    ]
    assert message.content_variables == {"1": "Apakah Anda setuju?"}
    [content] = rig.fake.contents.values()
    assert content.types[QUICK_REPLY]["body"] == "{{1}}", "the text is a variable"


async def test_more_options_or_longer_labels_go_as_a_list(rig: Rig) -> None:
    sender = rig.sender()
    categories = await rig.send(sender, Reply("Kejadiannya tentang apa?", CATEGORIES))
    assert categories.content_type == LIST_PICKER
    assert categories.shown == (
        "Kejadiannya tentang apa?\n\n[≡ Pilih]\n- Keamanan\n- Kesehatan\n- Sosial-Ekonomi\n"
        "- Ketahanan Pangan\n- Bencana\n- Lainnya"
    )
    place = "Sumber Jaya (Kampung Melayu, Kota Bengkulu)"  # 43 characters: too long for a title
    picked = await rig.send(sender, Reply("Pilih kelurahan/desa Anda", (Option(place, "area:7"),)))
    assert picked.content_type == LIST_PICKER
    [item] = picked.buttons
    assert (item.title, item.description, item.id) == ("Sumber Jaya (Kampung Me…", place, "area:7")
    assert len(item.title) == 24
    four = tuple(Option(f"Pilihan {i}", f"x:{i}") for i in range(4))
    assert (await rig.send(sender, Reply("Empat", four))).content_type == LIST_PICKER
    english = await rig.send(sender, Reply("What happened?", CATEGORIES[:4]), lang="en")
    assert english.list_button == "Choose", "in the reader's language"


async def test_options_that_do_not_fit_go_as_numbered_text(rig: Rig) -> None:
    sender = rig.sender()
    eleven = tuple(Option(f"Desa {i}", f"area:{i}") for i in range(11))
    many = await rig.send(sender, Reply("Pilih desa", eleven))
    assert many.content_sid is None and many.body.endswith("11. Desa 10\n\nBalas 1-11")
    huge = "Sebuah pilihan yang sangat panjang sekali, lebih dari tujuh puluh dua karakter"
    long_label = await rig.send(sender, Reply("Pilih", (Option(huge, "x:1"),)))
    assert long_label.content_sid is None and long_label.body.endswith(f"1. {huge}\n\nBalas 1")
    long_text = await rig.send(sender, Reply("kata " * 210, CONSENT))  # over 1024 characters
    assert long_text.content_sid is None and long_text.body.endswith("2. Tidak\n\nBalas 1-2")
    assert rig.posts == 0, "nothing that cannot fit is asked of the Content API"


async def test_a_medium_goes_first_on_its_own_then_the_buttons(rig: Rig) -> None:
    """A buttons message carries no medium: the photo goes alone, then the buttons; a retry
    after the photo went sends only the buttons."""
    sender = rig.sender()
    poster = Media(MediaKind.PHOTO, "https://cdn.example.id/poster.jpg", "image/jpeg")
    row = await rig.row(RESIDENT, "reply", Reply("Poster", CONSENT, media=poster), lang="id")
    before = len(rig.fake.messages)
    sid = await sender.send(row)
    photo, buttons = rig.fake.messages[before:]
    assert photo.media_urls == [poster.ref] and not photo.body and photo.content_sid is None
    assert buttons.sid == sid and [b.title for b in buttons.buttons] == ["Setuju", "Tidak"]
    again = await sender.send(await rig.reload(row))
    assert len(rig.fake.messages) == before + 3, "the retry sent the buttons only"
    assert rig.fake.messages[-1].sid == again and not rig.fake.messages[-1].media_urls


def test_the_capabilities_say_what_whatsapp_can_do() -> None:
    """Ten options (a list), each label shown whole up to 24; but only inside the window, so a
    button that only makes sense pressed needs words beside it. Telegram's always arrive."""
    assert (WHATSAPP.max_buttons, WHATSAPP.button_label_limit) == (10, 24)
    assert WHATSAPP.has_buttons and WHATSAPP.buttons_need_words
    assert TELEGRAM.has_buttons and not TELEGRAM.buttons_need_words
    assert plan_menu("Teks", tuple(Option(f"{i}", f"d:{i}") for i in range(10)), "id", "Pilih")
    assert plan_menu("Teks", (Option("x" * 24, "d"),), "id", "Pilih") is not None


def shape(options: tuple[Option, ...], text: str = "Teks", button: str = "Pilih") -> str | None:
    """How plan_menu shows the options: quick reply, list, or None (numbered text)."""
    menu = plan_menu(text, options, "id", button)
    return None if menu is None else menu.content_type


def test_what_fits_where() -> None:
    """plan_menu, pure: the limits are Twilio's, counted as WhatsApp does (emoji are two)."""
    assert shape(tuple(Option(f"Tombol {i}", f"b:{i}") for i in range(3))) == QUICK_REPLY
    assert shape(tuple(Option(f"Tombol {i}", f"b:{i}") for i in range(4))) == LIST_PICKER
    assert shape((Option("x" * 20, "a"),)) == QUICK_REPLY
    assert shape((Option("x" * 21, "a"),)) == LIST_PICKER
    assert shape((Option("🚨" * 11, "a"),)) == LIST_PICKER  # 22 UTF-16 units
    assert shape((Option("Ya", "a"), Option("ya", "b"))) is None  # titles alike: numbers
    prefix = "Kelurahan dengan nama yang panjang "
    assert shape((Option(prefix + "A", "a"), Option(prefix + "B", "b"))) is None  # alike in 24
    assert shape((Option("{{2}}", "a"),)) is None  # Twilio would fill it in
    assert shape((Option("Ya", "a"), Option("Tidak", "a"))) is None  # the same data twice
    assert shape(CONSENT, text="") is None
    assert shape(CONSENT, text="x" * 1024) == QUICK_REPLY
    assert shape(CONSENT, text="x" * 1025) is None
    assert shape(tuple(Option(f"Desa {i}", f"area:{i}") for i in range(10))) == LIST_PICKER
    assert shape(tuple(Option(f"Desa {i}", f"area:{i}") for i in range(11))) is None
    menu = plan_menu("Teks", CATEGORIES, "id", "Daftar pilihan kelurahan")
    assert menu is not None and menu.spec["button"] == "Daftar pilihan kelu…"
    assert len(menu.spec["button"]) == 20


async def test_a_medium_that_cannot_go_along_does_not_stop_the_buttons(rig: Rig) -> None:
    local = Media(MediaKind.PHOTO, "/srv/ktn/data/media/SM1-0.jpg", "image/jpeg")
    message = await rig.send(rig.sender(), Reply("Foto laporan", CONSENT, media=local))
    assert message.content_type == QUICK_REPLY and message.media_urls == []


async def test_a_location_goes_in_the_text_above_the_buttons(rig: Rig) -> None:
    reply = Reply("Lokasi ini benar?", CONSENT, location=Location(-3.7956, 102.2592))
    message = await rig.send(rig.sender(), reply)
    assert message.body.startswith("Lokasi ini benar?\n\n📍 -3.7956, 102.2592 (https://maps")
    assert message.content_type == QUICK_REPLY


# --- made once, found again ------------------------------------------------------------------


async def test_a_content_is_made_once_and_reused_across_messages_and_restarts(rig: Rig) -> None:
    first = await rig.send(rig.sender(), Reply("Apakah Anda setuju?", CONSENT))
    second = await rig.send(rig.senders[0], Reply("Yakin ingin menghapus data?", CONSENT))
    assert rig.posts == 1, "the same options: the same content, whatever the text"
    assert first.content_sid == second.content_sid
    assert second.body == "Yakin ingin menghapus data?"
    restarted = rig.sender()  # a new process (or another worker): memory empty, database not
    third = await rig.send(restarted, Reply("Setuju dengan syaratnya?", CONSENT))
    assert rig.posts == 1 and third.content_sid == first.content_sid
    await rig.send(restarted, Reply("Kejadiannya tentang apa?", CATEGORIES))
    assert rig.posts == 2, "other options: another content"
    stored = {row.content_type: row.content_sid for row in await rig.stored()}
    assert stored == {
        QUICK_REPLY: first.content_sid,
        LIST_PICKER: rig.fake.messages[-1].content_sid,
    }


async def test_a_content_deleted_at_twilio_is_made_again(rig: Rig) -> None:
    sender = rig.sender()
    await rig.send(sender, Reply("Apakah Anda setuju?", CONSENT))
    rig.fake.contents.clear()  # someone deleted it in the Twilio console
    fallback = await rig.send(sender, Reply("Apakah Anda setuju?", CONSENT))
    assert fallback.content_sid is None, "21655 from the Messages API: text in the same send"
    assert fallback.body.endswith("1. Setuju\n2. Tidak\n\nBalas 1-2")
    again = await rig.send(sender, Reply("Apakah Anda setuju?", CONSENT))
    assert again.content_type == QUICK_REPLY and rig.posts == 2
    assert [row.content_sid for row in await rig.stored()] == [again.content_sid]


# --- the fallback ----------------------------------------------------------------------------


async def test_a_refused_content_falls_back_to_numbered_text_and_is_not_asked_again(
    rig: Rig,
) -> None:
    sender = rig.sender()
    rig.fake.fail_content(400)
    refused = await rig.send(sender, Reply("Apakah Anda setuju?", CONSENT))
    assert refused.content_sid is None
    assert refused.body == "Apakah Anda setuju?\n\n1. Setuju\n2. Tidak\n\nBalas 1-2"
    rig.clock.now += timedelta(hours=12)  # long past the retry after trouble
    later = await rig.send(rig.sender(), Reply("Apakah Anda setuju?", CONSENT))
    assert later.content_sid is None and rig.posts == 1, "a 400 is remembered for good"
    [row] = await rig.stored()
    assert row.content_sid is None and row.retry_at is None and "400" in (row.refused or "")
    other = await rig.send(sender, Reply("Kejadiannya tentang apa?", CATEGORIES))
    assert other.content_type == LIST_PICKER, "only that content is refused"


@pytest.mark.parametrize("fault", [500, 503, 429, 401, "timeout"])
async def test_twilio_trouble_falls_back_now_and_tries_again_later(
    rig: Rig, fault: int | str
) -> None:
    sender = rig.sender()
    rig.fake.fail_content(fault)  # type: ignore[arg-type]
    first = await rig.send(sender, Reply("Apakah Anda setuju?", CONSENT))
    assert first.content_sid is None and first.body.endswith("Balas 1-2")
    soon = await rig.send(sender, Reply("Apakah Anda setuju?", CONSENT))
    assert soon.content_sid is None and rig.posts == 1, "not asked again on every message"
    rig.clock.now += timedelta(minutes=11)
    later = await rig.send(sender, Reply("Apakah Anda setuju?", CONSENT))
    assert later.content_type == QUICK_REPLY and rig.posts == 2
    assert [row.refused for row in await rig.stored()] == [None]


async def test_buttons_off_by_config_means_numbered_text(rig: Rig) -> None:
    message = await rig.send(rig.sender(buttons=False), Reply("Apakah Anda setuju?", CONSENT))
    assert message.body == "Apakah Anda setuju?\n\n1. Setuju\n2. Tidak\n\nBalas 1-2"
    assert rig.posts == 0


async def test_outside_the_window_a_template_goes_and_no_content_is_made(rig: Rig) -> None:
    alert = Reply("Laporan baru KTN-ABC234\nBalas TANGANI KTN-ABC234", CONSENT)
    message = await rig.send(rig.sender(), alert, kind="alert", to=AWAY)
    assert message.content_sid == ALERT_TEMPLATE and message.buttons == []
    assert rig.posts == 0


async def test_buttons_on_anothers_message_fall_back_to_words_not_numbers(rig: Rig) -> None:
    """An alert's buttons are not the officer's conversation's options: a number typed back
    would not name them, so text without buttons carries the words the core wrote."""
    actions = (
        Option("Tangani", "claim:7"),
        Option("Selesai", "resolve:7"),
        Option("Tolak", "reject:7"),
    )
    howto = "Balas TANGANI KTN-ABC234 untuk menangani."
    sender = rig.sender()
    tapped = await rig.send(sender, Reply(f"Laporan baru\n\n{howto}", actions), kind="alert")
    assert tapped.shown.endswith(f"{howto}\n\n[Tangani] [Selesai] [Tolak]")
    long_alert = Reply("Kejadian: " + "banjir " * 150 + f"\n\n{howto}", actions)
    text = await rig.send(sender, long_alert, kind="alert")
    assert text.content_sid is None and text.body.endswith(howto)
    assert "1. Tangani" not in text.body and "Balas 1-3" not in text.body

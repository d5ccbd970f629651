"""The WhatsApp sender: the real async twilio client against the Twilio fake on 127.0.0.1,
contacts and outbox rows in the test database."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from twilio.base.exceptions import TwilioRestException

from bot.channels.whatsapp.sender import WhatsAppSender, make_client, translate, without_numbers
from bot.delivery.dispatcher import Dispatcher, Envelope, SendError
from bot.delivery.windows import ChannelLimits
from bot.sandbox.twilio_fake import DEFAULT_SENDER, TwilioFake
from handlers.i18n import Catalog
from handlers.types import Media, MediaKind, Option, Reply
from storage import delivery
from storage.models import Contact, Outbox
from storage.types import OutboxStatus, utcnow
from tests.support.outbox import reloaded, whatsapp_row

IN_WINDOW = 6281234567890
OUT_OF_WINDOW = 6281298765432
STATUS_TEMPLATE = "HX" + "5a" * 16
ALERT_TEMPLATE = "HX" + "a1" * 16


@dataclass
class Rig:
    fake: TwilioFake
    sender: WhatsAppSender
    sessions: async_sessionmaker[AsyncSession]
    contacts: dict[int, int]

    async def row(self, chat_id: int, kind: str, reply: Reply, **extra: Any) -> Envelope:
        """A pending outbox row for the chat, as the dispatcher would hand it over."""
        contact_id = self.contacts.get(chat_id)
        return await whatsapp_row(self.sessions, contact_id, chat_id, kind, reply, extra)

    async def reload(self, env: Envelope) -> Envelope:
        """The row as a later claim would see it."""
        return await reloaded(self.sessions, env)


@pytest.fixture
async def rig(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[Rig]:
    now = utcnow()
    async with sessions() as s:
        people = {
            IN_WINDOW: Contact(
                channel="whatsapp", external_id=IN_WINDOW, last_inbound_at=now - timedelta(hours=2)
            ),
            OUT_OF_WINDOW: Contact(
                channel="whatsapp",
                external_id=OUT_OF_WINDOW,
                last_inbound_at=now - timedelta(hours=25),
                opted_out_at=now - timedelta(hours=1),
            ),
        }
        s.add_all(people.values())
        await s.commit()
        ids = {number: c.id for number, c in people.items()}
    fake = TwilioFake(auto_deliver=False, hang_seconds=5)
    fake.add_template(STATUS_TEMPLATE, "Kabar laporan {{3}}: {{1}}")
    fake.add_template(ALERT_TEMPLATE, "Laporan baru {{3}}: {{1}} {{2}}")
    async with fake.serve():
        fake.inbound_text(f"+{IN_WINDOW}", "halo")  # opens the fake's own window too
        client = make_client(fake.account_sid, fake.auth_token, fake.base_url, timeout=1.0)
        sender = WhatsAppSender(
            client,
            sessions,
            from_number=DEFAULT_SENDER.removeprefix("whatsapp:"),
            catalog=Catalog.load(),
            default_language="id",
            templates={"status": STATUS_TEMPLATE, "alert": ALERT_TEMPLATE},
            status_callback=None,
            messages_per_second=10,
        )
        try:
            yield Rig(fake, sender, sessions, ids)
        finally:
            await sender.close()


async def test_text_with_numbered_options_goes_to_the_number(rig: Rig) -> None:
    reply = Reply("Apakah Anda setuju?", (Option("Setuju", "consent:yes"), Option("Tidak", "n")))
    env = await rig.row(IN_WINDOW, "reply", reply, lang="id")
    sid = await rig.sender.send(env)
    [msg] = rig.fake.messages
    assert sid == msg.sid and msg.sid.startswith("SM")
    assert (msg.to, msg.from_) == (f"whatsapp:+{IN_WINDOW}", DEFAULT_SENDER)
    assert msg.body == "Apakah Anda setuju?\n\n1. Setuju\n2. Tidak\n\nBalas 1-2"
    assert msg.content_sid is None and msg.media_urls == []


async def test_a_long_text_goes_as_several_messages_in_order(rig: Rig) -> None:
    paragraphs = [f"Paragraf {i}:" + " kata" * 150 for i in range(5)]  # ~760 chars each
    env = await rig.row(IN_WINDOW, "broadcast", Reply("\n\n".join(paragraphs)))
    sid = await rig.sender.send(env)
    bodies = [m.body for m in rig.fake.messages]
    assert len(bodies) == 3 and all(len(b) <= 1600 for b in bodies)
    assert sid == rig.fake.messages[-1].sid
    assert [b.rsplit("\n", 1)[1] for b in bodies] == ["(1/3)", "(2/3)", "(3/3)"]
    assert "\n\n".join(b.rsplit("\n", 1)[0] for b in bodies) == "\n\n".join(paragraphs)


async def test_1601_characters_are_two_messages(rig: Rig) -> None:
    text = "a " * 800 + "b"
    assert len(text) == 1601
    await rig.sender.send(await rig.row(IN_WINDOW, "reply", Reply(text)))
    first, second = (m.body for m in rig.fake.messages)
    assert len(first) <= 1600 and first.endswith("a a\n(1/2)") and second.endswith("a b\n(2/2)")
    assert (first[:-6] + " " + second[:-6]).split() == text.split()


async def test_a_retry_continues_after_the_parts_already_sent(rig: Rig) -> None:
    text = "\n\n".join(letter * 1000 for letter in "xyz")
    env = await rig.row(IN_WINDOW, "broadcast", Reply(text))

    async def fail_the_second_part() -> None:
        await rig.fake.wait_for_messages(count=1)
        rig.fake.fail_next(500)

    failing = asyncio.create_task(fail_the_second_part())
    with pytest.raises(SendError) as info:
        await rig.sender.send(env)
    await failing
    assert not info.value.permanent and "500" in info.value.reason
    again = await rig.reload(env)
    assert again.payload["wa_parts_sent"] == 1
    await rig.sender.send(again)
    assert [m.body for m in rig.fake.messages] == [
        f"{letter * 1000}\n({i}/3)" for i, letter in enumerate("xyz", 1)
    ]


async def test_outside_the_window_a_template_goes_instead(rig: Rig) -> None:
    text = "Laporan KTN-ABC234 sedang ditangani oleh Bripka Andi.\nKetik STATUS KTN-ABC234"
    env = await rig.row(OUT_OF_WINDOW, "status", Reply(text), ticket="KTN-ABC234")
    sid = await rig.sender.send(env)
    msg = rig.fake.message(str(sid))
    assert msg.content_sid == STATUS_TEMPLATE
    assert msg.content_variables == {
        "1": "Laporan KTN-ABC234 sedang ditangani oleh Bripka Andi.",
        "2": "Ketik STATUS KTN-ABC234",
        "3": "KTN-ABC234",
    }
    assert (
        msg.body
        == "Kabar laporan KTN-ABC234: Laporan KTN-ABC234 sedang ditangani oleh Bripka Andi."
    )
    escalation = await rig.row(OUT_OF_WINDOW, "escalation", Reply("Belum ditangani\nKTN-X"))
    assert rig.fake.message(str(await rig.sender.send(escalation))).content_sid == ALERT_TEMPLATE


async def test_outside_the_window_without_a_template_nothing_is_sent(rig: Rig) -> None:
    env = await rig.row(OUT_OF_WINDOW, "reminder", Reply("Posyandu besok pagi"))
    with pytest.raises(SendError) as info:
        await rig.sender.send(env)
    assert info.value.final_status is OutboxStatus.NEEDS_TEMPLATE
    assert "templates.reminder" in info.value.reason
    unknown = await rig.row(6281111111111, "status", Reply("Kabar"))  # no contact: no window
    assert rig.fake.message(str(await rig.sender.send(unknown))).content_sid == STATUS_TEMPLATE
    assert len(rig.fake.messages) == 1


async def test_the_dispatcher_records_needs_template_for_the_admins(rig: Rig) -> None:
    await rig.row(OUT_OF_WINDOW, "reminder", Reply("Posyandu besok pagi"))
    await rig.row(IN_WINDOW, "reminder", Reply("Posyandu besok pagi"))
    dispatcher = Dispatcher(
        rig.sessions, {"whatsapp": rig.sender}, {"whatsapp": ChannelLimits.rates(10)}
    )
    assert await dispatcher.drain() == 2
    async with rig.sessions() as s:
        rows = {r.chat_id: r for r in (await s.scalars(select(Outbox))).all()}
        undelivered = await delivery.undelivered(s)
    assert rows[OUT_OF_WINDOW].status == "needs_template"
    assert "templates.reminder" in (rows[OUT_OF_WINDOW].last_error or "")
    assert rows[IN_WINDOW].status == "sent"
    assert rows[IN_WINDOW].external_id == rig.fake.messages[0].sid
    assert [r.id for r in undelivered] == [rows[OUT_OF_WINDOW].id]


@pytest.mark.parametrize(
    ("fault", "retry_after", "permanent"),
    [(429, 1.0, False), (500, None, False), (503, None, False), ("timeout", None, False)],
)
async def test_twilio_trouble_is_retried(
    rig: Rig, fault: int | str, retry_after: float | None, permanent: bool
) -> None:
    env = await rig.row(IN_WINDOW, "reply", Reply("halo"))
    rig.fake.fail_next(fault)  # type: ignore[arg-type]
    with pytest.raises(SendError) as info:
        await rig.sender.send(env)
    assert (info.value.retry_after, info.value.permanent) == (retry_after, permanent)
    assert await rig.sender.send(env)


async def test_a_bad_number_is_final(rig: Rig) -> None:
    env = await rig.row(12345, "reply", Reply("halo"))  # not an E.164 number: 21211
    async with rig.sessions() as s:  # give it a contact in the window
        s.add(Contact(channel="whatsapp", external_id=12345, last_inbound_at=utcnow()))
        await s.commit()
    with pytest.raises(SendError) as info:
        await rig.sender.send(env)
    assert info.value.permanent and "21211" in info.value.reason
    assert "12345" not in info.value.reason, "the reason is logged: no phone numbers"


async def test_opted_out_contacts_get_no_broadcast_and_nothing_is_edited(rig: Rig) -> None:
    env = await rig.row(OUT_OF_WINDOW, "broadcast", Reply("Kerja bakti Minggu"))
    with pytest.raises(SendError, match="opted out") as info:
        await rig.sender.send(env)
    assert info.value.permanent
    edit = await rig.row(IN_WINDOW, "alert_edit", Reply("edited"))
    with pytest.raises(SendError, match="cannot be edited"):
        await rig.sender.send(edit)
    assert rig.fake.messages == []


async def test_public_media_go_along_and_local_files_do_not(rig: Rig) -> None:
    public = Media(MediaKind.PHOTO, "https://cdn.example.id/poster.jpg", "image/jpeg")
    await rig.sender.send(await rig.row(IN_WINDOW, "broadcast", Reply("Poster", media=public)))
    local = Media(MediaKind.PHOTO, "/srv/ktn/data/media/SM1-0.jpg", "image/jpeg")
    await rig.sender.send(await rig.row(IN_WINDOW, "alert", Reply("Foto laporan", media=local)))
    first, second = rig.fake.messages
    assert (first.body, first.media_urls) == ("Poster", [public.ref])
    assert (second.body, second.media_urls) == ("Foto laporan", [])


async def test_template_variables_are_json(rig: Rig) -> None:
    env = await rig.row(OUT_OF_WINDOW, "alert", Reply("🚨 Laporan baru\nTiket: KTN-ABC234"))
    await rig.sender.send(env)
    [msg] = rig.fake.messages
    assert msg.content_variables is not None
    assert json.loads(json.dumps(msg.content_variables))["2"] == "Tiket: KTN-ABC234"


class Wall:
    """The dispatcher's wall clock, moved by hand past a retry's backoff."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


async def test_the_dispatcher_retries_twilio_trouble_and_gives_up_on_a_bad_number(
    rig: Rig,
) -> None:
    async with rig.sessions() as s:
        s.add(Contact(channel="whatsapp", external_id=12345, last_inbound_at=utcnow()))
        await s.commit()
    good = await rig.row(IN_WINDOW, "reply", Reply("halo"))
    wall = Wall()
    dispatcher = Dispatcher(
        rig.sessions,
        {"whatsapp": rig.sender},
        {"whatsapp": ChannelLimits.rates(10)},
        wall=wall,
    )
    for fault in (503, 429, "timeout"):
        rig.fake.fail_next(fault)  # type: ignore[arg-type]
        await dispatcher.drain()
        wall.now += timedelta(minutes=10)  # past the backoff
    bad = await rig.row(12345, "reply", Reply("halo"))  # not an E.164 number: 21211
    await dispatcher.drain()
    async with rig.sessions() as s:
        rows = {r.id: r for r in (await s.scalars(select(Outbox))).all()}
        undelivered = await delivery.undelivered(s)
    assert rows[bad.id].status == "failed" and rows[bad.id].attempts == 1
    assert "21211" in (rows[bad.id].last_error or "")
    assert [r.id for r in undelivered] == [bad.id]
    assert rows[good.id].status == "sent" and rows[good.id].last_error is None
    assert rows[good.id].attempts == 3, "two failures and the send; the 429 is not counted"
    # A timed-out request may have been accepted all the same (at least once, never lost).
    assert {m.to for m in rig.fake.messages} == {f"whatsapp:+{IN_WINDOW}"}
    assert rows[good.id].external_id == rig.fake.messages[-1].sid


def test_phone_numbers_never_reach_the_recorded_reason() -> None:
    exc = TwilioRestException(
        400, "https://api.twilio.com/x", "The 'To' number +62 812-3456-7890 is not valid.", 21211
    )
    reason = translate(exc).reason
    assert reason == "twilio 400/21211: The 'To' number <nomor> is not valid."
    assert without_numbers("To whatsapp:+6281234567890 failed (63016)") == (
        "To <nomor> failed (63016)"
    )


async def test_an_erased_senders_media_is_deleted_at_twilio_and_a_failure_is_retried(
    rig: Rig,
) -> None:
    url = rig.fake.add_media(b"\xff\xd8 foto warga", "image/jpeg")
    env = await rig.row(0, "media_delete", Reply(""), url=url)
    wrong = make_client(rig.fake.account_sid, "x" * 32, rig.fake.base_url, timeout=1.0)
    refused = WhatsAppSender(
        wrong,
        rig.sessions,
        from_number=DEFAULT_SENDER.removeprefix("whatsapp:"),
        catalog=Catalog.load(),
        default_language="id",
        templates={},
        status_callback=None,
        messages_per_second=10,
    )
    try:
        with pytest.raises(SendError) as failed:
            await refused.send(env)
    finally:
        await refused.close()
    assert not failed.value.permanent, "Twilio's 401 is retried, like a send"
    assert len(rig.fake.media) == 1 and rig.fake.deleted_media == []

    assert await rig.sender.send(env) is None
    assert rig.fake.media == {} and len(rig.fake.deleted_media) == 1 and rig.fake.messages == []
    assert await rig.sender.send(env) is None, "gone already (404): done"
    elsewhere = await rig.row(0, "media_delete", Reply(""), url="https://example.com/f.jpg")
    with pytest.raises(SendError) as outside:
        await rig.sender.send(elsewhere)
    assert outside.value.permanent, "our credentials go to Twilio only"

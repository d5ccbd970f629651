"""Where an alert goes without a linked group: the area's officers one by one, else the nearest
coordinators above, else nowhere but recorded ("menunggu petugas"). WhatsApp officers get words
instead of buttons."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.types import Channel
from storage.models import Contact, Outbox, Report, ReportEvent
from tests.support.chats import KAMPUNG_MELAYU, SUMBER_JAYA, FakeChat, link_group, load_areas, texts


@pytest.fixture
async def reporter(sessions: async_sessionmaker[AsyncSession]) -> FakeChat:
    await load_areas(sessions)
    chat = FakeChat(sessions, user_id=1001, name="Budi Santoso")
    await chat.onboard()
    return chat


async def all_rows(sessions: async_sessionmaker[AsyncSession], model: Any) -> list[Any]:
    async with sessions() as session:
        return list((await session.scalars(select(model).order_by(model.id))).all())


async def contact_id(chat: FakeChat) -> int:
    async with chat.sessions() as session:
        found = await session.scalar(
            select(Contact.id).where(
                Contact.channel == str(chat.channel), Contact.external_id == chat.user_id
            )
        )
        assert found is not None
        return int(found)


async def test_no_group_sends_the_alert_to_each_officer_of_the_area(reporter: FakeChat) -> None:
    sessions = reporter.sessions
    first = FakeChat(sessions, user_id=4001, name="Bripka Andi")
    second = FakeChat(sessions, user_id=4002, name="Bripda Dodi")
    coordinator = FakeChat(sessions, user_id=4003, name="Iptu Sari")
    await first.enrol("officer", SUMBER_JAYA)
    await second.enrol("officer", SUMBER_JAYA)
    await coordinator.enrol("coordinator", KAMPUNG_MELAYU)
    out = await reporter.file_report()
    report_id, ticket = out.recorded.filed["report_id"], out.recorded.filed["ticket"]
    alerts = await all_rows(sessions, Outbox)
    assert out.outbox_ids == [a.id for a in alerts]
    assert [(a.kind, a.chat_id, a.channel) for a in alerts] == [
        ("alert", 4001, "telegram"),
        ("alert", 4002, "telegram"),
    ], "officers only; the coordinator is not bothered while officers exist"
    assert [a.contact_id for a in alerts] == [await contact_id(first), await contact_id(second)]
    assert {a.payload["route"] for a in alerts} == {"officer"}
    assert [o[1] for o in alerts[0].payload["reply"]["options"]] == [
        f"claim:{report_id}",
        f"resolve:{report_id}",
        f"reject:{report_id}",
    ]

    pressed = await second.send(button=f"claim:{report_id}")
    assert pressed.notice == f"👍 Anda menangani {ticket}."
    edits = [r for r in await all_rows(sessions, Outbox) if r.kind == "alert_edit"]
    assert sorted(e.payload["edit_of"] for e in edits) == [a.id for a in alerts]
    assert all("Ditangani oleh Bripda Dodi" in e.payload["reply"]["text"] for e in edits)
    out = await first.send(button=f"claim:{report_id}")
    assert out.notice == "Sudah ditangani oleh Bripda Dodi (sedang ditangani petugas)."


async def test_no_officer_sends_it_to_the_nearest_coordinators_above(reporter: FakeChat) -> None:
    sessions = reporter.sessions
    near = FakeChat(sessions, user_id=4003, name="Iptu Sari")
    far = FakeChat(sessions, user_id=4004, name="Kompol Rudi")
    await near.enrol("coordinator", KAMPUNG_MELAYU)
    await far.enrol("coordinator", "17.71")
    await reporter.file_report()
    [alert] = await all_rows(sessions, Outbox)
    assert (alert.chat_id, alert.contact_id, alert.payload["route"]) == (
        4003,
        await contact_id(near),
        "coordinator",
    )


async def test_far_coordinators_when_the_near_ones_are_missing(reporter: FakeChat) -> None:
    far = FakeChat(reporter.sessions, user_id=4004, name="Kompol Rudi")
    await far.enrol("coordinator", "17")
    await reporter.file_report()
    [alert] = await all_rows(reporter.sessions, Outbox)
    assert alert.chat_id == 4004


async def test_nobody_to_alert_is_recorded_and_shows_as_waiting(
    reporter: FakeChat, caplog: pytest.LogCaptureFixture
) -> None:
    other = FakeChat(reporter.sessions, user_id=4002, name="Brigpol Wayan")
    await other.enrol("officer", "18.09.01.2006")
    with caplog.at_level(logging.WARNING, logger="handlers.alerts"):
        out = await reporter.file_report()
    assert out.outbox_ids == []
    assert await all_rows(reporter.sessions, Outbox) == []
    [report] = await all_rows(reporter.sessions, Report)
    events = [e.kind for e in await all_rows(reporter.sessions, ReportEvent)]
    assert events == ["created", "unrouted"]
    [record] = [r for r in caplog.records if "no alert group" in r.getMessage()]
    assert "Budi" not in record.getMessage() and str(report.id) in record.getMessage()
    status = await reporter.send(f"/status {report.ticket}")
    assert "Status: menunggu petugas" in texts(status)


async def test_a_linked_group_takes_precedence(reporter: FakeChat) -> None:
    officer = FakeChat(reporter.sessions, user_id=4001, name="Bripka Andi")
    await officer.enrol("officer", SUMBER_JAYA)
    await link_group(reporter.sessions)
    await reporter.file_report()
    [alert] = await all_rows(reporter.sessions, Outbox)
    assert alert.chat_id < 0 and alert.contact_id is None and alert.payload["route"] == "group"


async def test_whatsapp_officers_get_the_alert_besides_the_group(reporter: FakeChat) -> None:
    on_telegram = FakeChat(reporter.sessions, user_id=4001, name="Bripka Andi")
    on_whatsapp = FakeChat(
        reporter.sessions, channel=Channel.WHATSAPP, user_id=6281234567890, name="Bripka Wati"
    )
    await on_telegram.enrol("officer", SUMBER_JAYA)
    await on_whatsapp.enrol("officer", SUMBER_JAYA)
    await link_group(reporter.sessions)
    out = await reporter.file_report()
    alerts = await all_rows(reporter.sessions, Outbox)
    assert out.outbox_ids == [a.id for a in alerts]
    assert [(a.channel, a.chat_id < 0, a.payload["route"]) for a in alerts] == [
        ("telegram", True, "group"),
        ("whatsapp", False, "officer"),
    ], "the Telegram officer reads the group; the WhatsApp officer cannot, so gets it 1:1"
    assert alerts[1].contact_id == await contact_id(on_whatsapp)
    assert f"Balas TANGANI {out.recorded.filed['ticket']}" in alerts[1].payload["reply"]["text"]


async def test_the_other_whatsapp_officers_hear_who_acted(reporter: FakeChat) -> None:
    wati, joko = (
        FakeChat(reporter.sessions, channel=Channel.WHATSAPP, user_id=number, name=name)
        for number, name in ((6281234567890, "Bripka Wati"), (6281399998888, "Bripda Joko"))
    )
    await wati.enrol("officer", SUMBER_JAYA)
    await joko.enrol("officer", SUMBER_JAYA)
    await link_group(reporter.sessions)
    ticket = (await reporter.file_report()).recorded.filed["ticket"]
    await wati.send(f"tangani {ticket}")
    await wati.send(f"selesai {ticket} pohon sudah dipotong")
    rows = await all_rows(reporter.sessions, Outbox)
    to_joko = [r for r in rows if r.chat_id == joko.user_id]
    assert [r.kind for r in to_joko] == ["alert", "status", "status"]
    claimed, resolved = (r.payload["reply"]["text"] for r in to_joko[1:])
    assert claimed.startswith(f"Tiket: {ticket}\n👮 Ditangani oleh Bripka Wati — ")
    assert "Selesai oleh Bripka Wati" in resolved and "pohon sudah dipotong" in resolved
    to_wati = [r.kind for r in rows if r.chat_id == wati.user_id]
    assert to_wati == ["alert"], "the officer who acted is not told about it"
    edits = [r for r in rows if r.kind == "alert_edit"]
    assert len(edits) == 2 and all(e.chat_id < 0 for e in edits), "the group's alert is edited"


async def test_a_whatsapp_officer_gets_words_beside_the_buttons(reporter: FakeChat) -> None:
    """WhatsApp shows buttons only inside its 24-hour window: the words say how to answer
    wherever the alert arrives as text (a template, or numbered text)."""
    officer = FakeChat(
        reporter.sessions, channel=Channel.WHATSAPP, user_id=6281234567890, name="Bripka Wati"
    )
    await officer.enrol("officer", SUMBER_JAYA)
    out = await reporter.file_report()
    ticket = out.recorded.filed["ticket"]
    [alert] = await all_rows(reporter.sessions, Outbox)
    assert (alert.channel, alert.chat_id) == ("whatsapp", 6281234567890)
    reply = alert.payload["reply"]
    report_id = out.recorded.filed["report_id"]
    assert [data for _label, data in reply["options"]] == [
        f"claim:{report_id}",
        f"resolve:{report_id}",
        f"reject:{report_id}",
    ], "the same data as Telegram's buttons"
    assert f"Balas TANGANI {ticket} untuk menangani" in reply["text"]

    out = await officer.send(f"TANGANI {ticket}")
    assert texts(out) == f"👍 Anda menangani {ticket}."
    kinds = [r.kind for r in await all_rows(reporter.sessions, Outbox)]
    assert kinds == ["alert", "status"], "a WhatsApp message cannot be edited: no alert_edit"
    out = await officer.send(f"selesai {ticket.lower()} sudah aman.")
    assert texts(out) == f"✅ {ticket} selesai. Terima kasih!"
    [report] = await all_rows(reporter.sessions, Report)
    assert (report.status, report.resolution_note) == ("resolved", "sudah aman.")


async def test_an_officer_who_blocked_the_bot_is_skipped_until_they_write_again(
    reporter: FakeChat,
) -> None:
    from datetime import UTC, datetime

    sessions = reporter.sessions
    officer = FakeChat(sessions, user_id=4001, name="Bripka Andi")
    coordinator = FakeChat(sessions, user_id=4003, name="Iptu Sari")
    await officer.enrol("officer", SUMBER_JAYA)
    await coordinator.enrol("coordinator", KAMPUNG_MELAYU)
    async with sessions() as session:  # what the dispatcher records on Forbidden
        contact = await session.get(Contact, await contact_id(officer))
        assert contact is not None
        contact.blocked_at = datetime.now(UTC)
        await session.commit()
    await reporter.file_report("lainnya")
    [alert] = await all_rows(sessions, Outbox)
    assert alert.chat_id == coordinator.user_id
    await officer.send("/bantuan")
    await reporter.file_report("kesehatan")
    assert [r.chat_id for r in await all_rows(sessions, Outbox)][1:] == [officer.user_id]

"""Officers and coordinators on a channel without group chats (WhatsApp) get what the officers'
group gets, 1:1: broadcasts to "grup petugas", group reminders, tonight's ronda team and
escalations from child areas; each person once; ronda answers typed by word or number; a
BERHENTI does not stop a staff member's duties; what someone asked for before the privacy notice
starts right after it. Decided by capabilities, never by channel name."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.context import Context
from handlers.escalation import escalate_due
from handlers.patrol import announce_due
from handlers.recap import send_due_recaps
from handlers.reminders import send_due
from handlers.states import State
from handlers.types import Channel, Reply
from storage.areas import get_by_code
from storage.models import Contact, Outbox, Report
from storage.patrol import patrol_confirmations
from storage.types import Role
from tests.support.chats import (
    ALERT_GROUP,
    KAMPUNG_MELAYU,
    SUMBER_JAYA,
    Cast,
    FakeChat,
    core_config,
    link_group,
    staff_cast,
    texts,
)

WA_OFFICER = 6281311112222
WA_COORDINATOR = 6281244445555
WA_RESIDENT = 6281234567890
PARENT_GROUP = -300
GRACE = timedelta(minutes=30)
TONIGHT_21_WIB = datetime.fromisoformat("2025-05-12T14:00:00+00:00")


def whatsapp(cast: Cast, number: int, name: str) -> FakeChat:
    """Someone on WhatsApp (the same clock and config as the cast)."""
    return FakeChat(
        cast.officer.sessions,
        channel=Channel.WHATSAPP,
        user_id=number,
        name=name,
        phone=f"+{number}",
        bot_username=None,
    )


@pytest.fixture
async def cast(sessions: async_sessionmaker[AsyncSession]) -> Cast:
    """The staff cast (Telegram; Sumber Jaya's group linked) and a WhatsApp officer of
    Sumber Jaya."""
    cast = await staff_cast(sessions)
    await whatsapp(cast, WA_OFFICER, "Bripka Wati").enrol(Role.OFFICER, SUMBER_JAYA)
    return cast


async def rows(sessions: async_sessionmaker[AsyncSession], kind: str) -> list[Outbox]:
    async with sessions() as session:
        stmt = select(Outbox).where(Outbox.kind == kind).order_by(Outbox.id)
        return list((await session.scalars(stmt)).all())


async def set_contact(
    sessions: async_sessionmaker[AsyncSession], channel: str, user_id: int, **values: Any
) -> None:
    async with sessions() as session:
        await session.execute(
            update(Contact)
            .where(Contact.channel == channel, Contact.external_id == user_id)
            .values(**values)
        )
        await session.commit()


def text_of(row: Outbox) -> str:
    return Reply.from_json(row.payload["reply"]).text


async def announce_to(chat: FakeChat, audience: str, text: str = "Rapat Senin 08.00") -> str:
    """Coordinator: /umumkan to Kampung Melayu and below; returns the preview's words."""
    await chat.send("/umumkan")
    await chat.press("Kampung Melayu")
    await chat.press(f"bc:aud:{audience}")
    return texts(await chat.send(text))


# --- broadcasts ------------------------------------------------------------------------------


async def test_a_whatsapp_officer_gets_the_officers_groups_broadcast_and_is_counted(
    cast: Cast,
) -> None:
    preview = await announce_to(cast.coordinator, "groups")
    # Sumber Jaya's group (where the Telegram officer reads it) and the WhatsApp officer 1:1.
    assert "2 penerima" in preview
    done = await cast.coordinator.press("Kirim")
    assert "dikirim ke 2 penerima" in texts(done)
    sent = await rows(cast.coordinator.sessions, "broadcast")
    assert sorted((r.channel, r.chat_id) for r in sent) == [
        ("telegram", ALERT_GROUP),
        ("whatsapp", WA_OFFICER),
    ]
    officer = next(r for r in sent if r.channel == "whatsapp")
    assert "Rapat Senin 08.00" in text_of(officer)
    assert "BERHENTI" not in text_of(officer), "the officers' version, as the group reads it"
    assert officer.payload["duty"] is True and officer.contact_id is not None


async def test_residents_audience_does_not_reach_officers_and_both_reaches_each_once(
    cast: Cast,
) -> None:
    preview = await announce_to(cast.coordinator, "residents")
    assert "2 penerima" in preview  # the two residents
    await cast.coordinator.press("Kirim")
    assert all(r.channel == "telegram" for r in await rows(cast.officer.sessions, "broadcast"))

    preview = await announce_to(cast.coordinator, "both", "Kerja bakti")
    assert "4 penerima" in preview  # two residents, the group, the WhatsApp officer
    await cast.coordinator.press("Kirim")
    second = [r for r in await rows(cast.officer.sessions, "broadcast") if r.broadcast_id == 2]
    assert len(second) == 4 and len({(r.channel, r.chat_id) for r in second}) == 4


async def test_without_a_group_every_officer_of_the_area_gets_it_1_to_1(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cast = await staff_cast(sessions, group=False)
    preview = await announce_to(cast.coordinator, "groups")
    assert "1 penerima" in preview
    await cast.coordinator.press("Kirim")
    [row] = await rows(sessions, "broadcast")
    assert (row.channel, row.chat_id) == ("telegram", cast.officer.user_id)


async def test_one_person_on_two_channels_gets_one_copy(cast: Cast) -> None:
    """Contacts with one phone number are one person: the Telegram officer (who reads the group)
    and the WhatsApp officer with his number get the group's copy only; a resident on both
    channels gets it once, where they wrote last."""
    sessions = cast.officer.sessions
    await set_contact(sessions, "telegram", cast.officer.user_id, phone=f"+{WA_OFFICER}")
    resident = whatsapp(cast, WA_RESIDENT, "Warga Lain")
    resident.now = cast.resident.now + timedelta(minutes=5)
    await resident.onboard()
    await set_contact(sessions, "telegram", cast.resident.user_id, phone=f"+{WA_RESIDENT}")

    preview = await announce_to(cast.coordinator, "both")
    assert "3 penerima" in preview  # the group, Budi, Warga Lain on WhatsApp
    await cast.coordinator.press("Kirim")
    sent = await rows(sessions, "broadcast")
    assert sorted((r.channel, r.chat_id) for r in sent) == sorted(
        [
            ("telegram", ALERT_GROUP),
            ("telegram", cast.reporter.user_id),
            ("whatsapp", WA_RESIDENT),
        ]
    )


async def test_berhenti_stops_announcements_to_residents_not_a_staff_members_duties(
    cast: Cast,
) -> None:
    officer = whatsapp(cast, WA_OFFICER, "Bripka Wati")
    said = texts(await officer.send("BERHENTI"))
    assert "tidak akan menerima pengumuman" in said and "pesan tugas tetap dikirim" in said
    assert "pesan tugas" not in texts(await cast.resident.send("BERHENTI"))
    await announce_to(cast.coordinator, "both")
    await cast.coordinator.press("Kirim")
    sent = {(r.channel, r.chat_id) for r in await rows(cast.officer.sessions, "broadcast")}
    assert ("whatsapp", WA_OFFICER) in sent
    assert ("telegram", cast.resident.user_id) not in sent


# --- reminders -------------------------------------------------------------------------------


async def sweep_reminders(sessions: async_sessionmaker[AsyncSession], at: datetime) -> None:
    async with sessions() as session:
        await send_due(session, Context(core_config(), now=at), grace=GRACE)
        await session.commit()


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("grup", {("telegram", ALERT_GROUP), ("whatsapp", WA_OFFICER)}),
        ("warga", {("telegram", 1001), ("telegram", 3001)}),
    ],
)
async def test_a_group_reminder_reaches_the_whatsapp_officer_a_residents_one_does_not(
    cast: Cast, target: str, expected: set[tuple[str, int]]
) -> None:
    added = await cast.coordinator.send(f"/pengingat tambah setiap hari 19:00 | {target} | Apel")
    assert "✅" in texts(added)
    await sweep_reminders(cast.officer.sessions, datetime.fromisoformat("2025-05-12T12:00:00Z"))
    sent = await rows(cast.officer.sessions, "reminder")
    assert {(r.channel, r.chat_id) for r in sent} == expected
    assert all("Apel" in text_of(r) for r in sent)


# --- escalations -----------------------------------------------------------------------------


async def test_an_escalation_from_a_child_area_reaches_the_parents_whatsapp_staff(
    cast: Cast,
) -> None:
    sessions = cast.officer.sessions
    await link_group(sessions, KAMPUNG_MELAYU, chat_id=PARENT_GROUP, title="Polsek KM")
    await whatsapp(cast, WA_OFFICER + 1, "Iptu Bayu").enrol(Role.OFFICER, KAMPUNG_MELAYU)
    await whatsapp(cast, WA_COORDINATOR, "Ibu Camat").enrol(Role.COORDINATOR, KAMPUNG_MELAYU)
    await cast.reporter.file_report()
    async with sessions() as session:
        report = await session.scalar(select(Report))
        assert report is not None and report.escalate_at is not None
        at = report.escalate_at + timedelta(minutes=1)
    async with sessions() as session:
        assert await escalate_due(session, Context(core_config(), now=at)) == [report.id]
        await session.commit()
    sent = await rows(sessions, "escalation")
    assert {(r.channel, r.chat_id, r.payload["route"]) for r in sent} == {
        ("telegram", PARENT_GROUP, "group"),
        ("whatsapp", WA_OFFICER + 1, "officer"),
        ("whatsapp", WA_COORDINATOR, "coordinator"),
        ("telegram", cast.coordinator.user_id, "coordinator"),
    }
    wa = next(r for r in sent if r.chat_id == WA_OFFICER + 1)
    assert report.ticket in text_of(wa) and f"TANGANI {report.ticket}" in text_of(wa)
    # Buttons (where the window lets them go) with the words beside them (where it does not).
    options = Reply.from_json(wa.payload["reply"]).options
    assert [o.data for o in options] == [f"{a}:{report.id}" for a in ("claim", "resolve", "reject")]

    # The parent's WhatsApp officer claims it by typing; he hears of it, the others too.
    officer = whatsapp(cast, WA_OFFICER + 1, "Iptu Bayu")
    officer.now = at
    claimed = await officer.send(f"TANGANI {report.ticket}")
    assert report.ticket in texts(claimed)
    follow = {(r.channel, r.chat_id) for r in await rows(sessions, "status")}
    assert ("whatsapp", WA_COORDINATOR) in follow and ("whatsapp", WA_OFFICER) in follow


async def test_without_a_parent_group_its_officers_get_the_escalation_1_to_1(
    cast: Cast,
) -> None:
    sessions = cast.officer.sessions
    parent_officer = FakeChat(sessions, user_id=4010, name="Aiptu Rudi")
    await parent_officer.enrol(Role.OFFICER, KAMPUNG_MELAYU)
    await cast.reporter.file_report()
    async with sessions() as session:
        report = await session.scalar(select(Report))
        assert report is not None and report.escalate_at is not None
        done = await escalate_due(
            session, Context(core_config(), now=report.escalate_at + timedelta(minutes=1))
        )
        await session.commit()
    assert done == [report.id]
    assert {(r.chat_id, r.payload["route"]) for r in await rows(sessions, "escalation")} == {
        (parent_officer.user_id, "officer"),
        (cast.coordinator.user_id, "coordinator"),
    }


# --- ronda -----------------------------------------------------------------------------------


async def start_patrol(cast: Cast, member: FakeChat) -> None:
    """Team Pos Melati (Andi, and the member who joins), announced daily at 21:00."""
    at = f"/ronda {SUMBER_JAYA}"
    assert "ke-1" in texts(await cast.coordinator.send(f"{at} tim Pos Melati: Andi"))
    await cast.coordinator.send(f"{at} jadwal harian 21:00")
    assert "Pos Melati" in texts(await member.send("ronda ikut 1"))


async def announce(sessions: async_sessionmaker[AsyncSession], at: datetime) -> None:
    async with sessions() as session:
        await announce_due(session, Context(core_config(), now=at), grace=GRACE)
        await session.commit()


async def answers(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[str, str, str]]:
    """Each member of tonight's shift: name, "hadir" or "-", the outcome or "-"."""
    async with sessions() as session:
        area = await get_by_code(session, SUMBER_JAYA)
        assert area is not None
        found = await patrol_confirmations(
            session, [area.id], TONIGHT_21_WIB - timedelta(hours=1), TONIGHT_21_WIB + GRACE
        )
    return [(r.member_name, "hadir" if r.confirmed_at else "-", r.outcome or "-") for r in found]


@pytest.fixture
async def member(cast: Cast) -> FakeChat:
    """A WhatsApp resident of Sumber Jaya on tonight's team; the team announced at 21:00."""
    chat = whatsapp(cast, WA_RESIDENT, "Siti Aminah")
    await chat.onboard()
    await start_patrol(cast, chat)
    await announce(cast.officer.sessions, TONIGHT_21_WIB)
    chat.now = TONIGHT_21_WIB + timedelta(minutes=10)
    return chat


async def test_tonights_team_reaches_the_whatsapp_officer_and_the_member_answers_by_number(
    cast: Cast, member: FakeChat
) -> None:
    sessions = cast.officer.sessions
    sent = await rows(sessions, "patrol")
    tonight = {(r.channel, r.chat_id) for r in sent if "Ronda malam ini" in text_of(r)}
    assert tonight == {("telegram", ALERT_GROUP), ("whatsapp", WA_OFFICER)}
    [dm] = [r for r in sent if r.chat_id == WA_RESIDENT]
    assert [o.label for o in Reply.from_json(dm.payload["reply"]).options] == ["✅ Hadir"]

    present = await member.send("1")  # the DM's only option: it came after her last message
    assert "kehadiran Anda di ronda 12/05/2025 tercatat" in texts(present)
    assert [o.label for o in present.replies[-1].options] == ["🛡 Aman", "🚨 Lapor kejadian"]
    member.advance(hours=7)
    safe = await member.send("1")  # now "Aman", the first of the answer's options
    assert "aman, tercatat" in texts(safe)
    assert await answers(sessions) == [("Andi", "-", "-"), ("Siti Aminah", "hadir", "aman")]

    cast.coordinator.now = member.now
    overview = texts(await cast.coordinator.send(f"/ronda {SUMBER_JAYA}"))
    assert "Ronda 12/05/2025 — Pos Melati:" in overview
    assert "• Andi: tidak memakai bot" in overview
    assert "• Siti Aminah: ✅ hadir 21:10 WIB, 🛡 aman 04:10 WIB" in overview


@pytest.mark.parametrize("words", [("hadir", "aman"), ("Hadir!", "AMAN"), ("present", "safe")])
async def test_the_member_answers_by_word(
    cast: Cast, member: FakeChat, words: tuple[str, str]
) -> None:
    present, safe = words
    assert "tercatat" in texts(await member.send(present))
    assert "aman, tercatat" in texts(await member.send(safe))
    assert await answers(cast.officer.sessions) == [
        ("Andi", "-", "-"),
        ("Siti Aminah", "hadir", "aman"),
    ]
    again = await member.send("aman")
    assert "sudah tercatat sebelumnya" in texts(again)


async def test_lapor_kejadian_by_number_starts_the_report_flow(
    cast: Cast, member: FakeChat
) -> None:
    await member.send("hadir")
    out = await member.send("2")
    assert out.recorded.state == State.CATEGORY.value
    assert await answers(cast.officer.sessions) == [
        ("Andi", "-", "-"),
        ("Siti Aminah", "hadir", "incident"),
    ]


async def test_numbers_answer_the_question_in_front_of_the_member(
    cast: Cast, member: FakeChat
) -> None:
    """Mid-report "1" is the report's; after she wrote to the bot, the menu's; "hadir" still
    answers the patrol (and the report goes on)."""
    out = await member.send("LAPOR")
    assert out.recorded.state == State.CATEGORY.value
    out = await member.send("1")
    assert out.recorded.state == State.DESCRIPTION.value, "the category, not Hadir"
    out = await member.send("hadir")
    assert "tercatat" in texts(out) and out.recorded.state == State.DESCRIPTION.value
    assert "Ceritakan" in out.replies[-1].text, "the report's question again"
    await member.send("/batal")
    out = await member.send("1")  # the menu she saw last: Lapor
    assert out.recorded.state == State.CATEGORY.value


async def test_hadir_from_someone_not_on_a_team_is_just_chatter(cast: Cast) -> None:
    out = await cast.resident.send("hadir")
    assert out.recorded.state == State.IDLE.value and "tercatat" not in texts(out)
    assert out.recorded.patrol is None


async def test_the_recap_counts_a_whatsapp_members_answers(cast: Cast, member: FakeChat) -> None:
    await member.send("1")
    member.advance(hours=7)
    await member.send("aman")
    coordinator = whatsapp(cast, WA_COORDINATOR, "Ibu Camat")
    coordinator.now = TONIGHT_21_WIB - timedelta(days=2)
    await coordinator.enrol(Role.COORDINATOR, KAMPUNG_MELAYU)
    next_morning = TONIGHT_21_WIB + timedelta(days=1)  # 13/05 21:00 WIB: the 12th is finished
    async with cast.officer.sessions() as session:
        written = await send_due_recaps(session, Context(core_config(), now=next_morning))
        await session.commit()
    daily = [
        r
        for r in written
        if r.channel == "whatsapp" and r.chat_id == WA_COORDINATOR and "harian" in text_of(r)
    ]
    assert len(daily) == 1
    assert "Ronda: hadir 1 dari 2, tidak konfirmasi 1" in text_of(daily[0])


# --- what was asked before the privacy notice ------------------------------------------------


@pytest.mark.parametrize("channel", [Channel.WHATSAPP, Channel.TELEGRAM])
@pytest.mark.parametrize("first", ["LAPOR", "/lapor", "lapor"])
async def test_a_first_lapor_goes_through_consent_and_village_into_the_report(
    sessions: async_sessionmaker[AsyncSession], channel: Channel, first: str
) -> None:
    await staff_cast(sessions)
    chat = FakeChat(sessions, channel=channel, user_id=WA_RESIDENT, name="Siti Aminah")
    out = await chat.send(first)
    assert out.recorded.state == State.CONSENT.value
    assert "Apakah Anda setuju?" in out.replies[-1].text
    out = await chat.send("1")  # Setuju, typed or pressed: the same
    assert out.recorded.state == State.AREA.value
    await chat.send("sumber jaya")
    out = await chat.send("1")
    assert out.recorded.state == State.CATEGORY.value
    assert "Kejadiannya tentang apa?" in out.replies[-1].text


@pytest.mark.parametrize("channel", [Channel.WHATSAPP, Channel.TELEGRAM])
async def test_a_first_darurat_gives_numbers_then_consent_then_the_urgent_report(
    sessions: async_sessionmaker[AsyncSession], channel: Channel
) -> None:
    await staff_cast(sessions)
    chat = FakeChat(sessions, channel=channel, user_id=WA_RESIDENT, name="Siti Aminah")
    out = await chat.send("DARURAT")
    assert "110" in out.replies[0].text and out.recorded.state == State.CONSENT.value
    await chat.send("setuju")
    await chat.send("sumber")
    out = await chat.send("1")
    assert "Laporan mendesak" in out.replies[-1].text
    assert out.recorded.state == State.CATEGORY.value

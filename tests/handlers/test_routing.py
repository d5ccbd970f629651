"""Several Telegram bots: every outbox row goes through the bot that can reach its chat.

Two villages of one kecamatan are served by two bots ("bot_a", "bot_b"), Lampung by a third;
the rest of the country by the default bot. A person is reached through the bot of their latest
private message, a group through the bot that was told /hubungkan; the area decides only when
neither is known.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.config import CoreConfig
from handlers.context import Context
from handlers.escalation import escalate_due
from handlers.patrol import announce_due
from handlers.recap import send_due_recaps
from handlers.reminders import deliver
from handlers.routing import BotRoutes
from storage import reminders
from storage.areas import get_by_code
from storage.models import Contact, GroupChat, Outbox, Report
from storage.types import Role
from tests.support.chats import FakeChat, core_config, link_group, load_areas, texts

AREAS = """code,name,level,parent_code,timezone
17,Bengkulu,provinsi,,Asia/Jakarta
17.71,Kota Bengkulu,kota,17,Asia/Jakarta
17.71.08,Kampung Melayu,kecamatan,17.71,Asia/Jakarta
17.71.08.1004,Sumber Jaya,kelurahan,17.71.08,Asia/Jakarta
17.71.08.1005,Padang Serai,kelurahan,17.71.08,Asia/Jakarta
18,Lampung,provinsi,,Asia/Jakarta
18.09,Pesawaran,kabupaten,18,Asia/Jakarta
18.09.01,Gedong Tataan,kecamatan,18.09,Asia/Jakarta
18.09.01.2006,Wiyono,desa,18.09.01,Asia/Jakarta
"""
SUMBER_JAYA, PADANG_SERAI, KECAMATAN = "17.71.08.1004", "17.71.08.1005", "17.71.08"
GROUP_A, GROUP_B, GROUP_KEC = -1001000000001, -1001000000002, -1001000000003
CLAIMS = {SUMBER_JAYA: "bot_a", PADANG_SERAI: "bot_b", "18": "lampung"}


def config() -> CoreConfig:
    return dataclasses.replace(core_config(), bot_areas=CLAIMS)


async def area_id(sessions: async_sessionmaker[AsyncSession], code: str) -> int:
    async with sessions() as s:
        area = await get_by_code(s, code)
        assert area is not None
        return area.id


async def outbox(sessions: async_sessionmaker[AsyncSession], kind: str) -> list[Outbox]:
    async with sessions() as s:
        return list(
            (await s.scalars(select(Outbox).where(Outbox.kind == kind).order_by(Outbox.id))).all()
        )


def person(sessions: async_sessionmaker[AsyncSession], user: int, name: str, bot: str) -> FakeChat:
    return FakeChat(sessions, config=config(), user_id=user, name=name, bot=bot)


@pytest.fixture
async def areas(sessions: async_sessionmaker[AsyncSession]) -> None:
    await load_areas(sessions, AREAS)


async def test_an_area_is_served_by_its_own_claim_or_its_nearest_parents(
    sessions: async_sessionmaker[AsyncSession], areas: None
) -> None:
    codes = (SUMBER_JAYA, PADANG_SERAI, KECAMATAN, "17", "18", "18.09.01.2006")
    ids = {code: await area_id(sessions, code) for code in codes}
    async with sessions() as s:
        routes = BotRoutes(s, config())
        found = {code: await routes.area(ids[code]) for code in codes}
        assert await routes.area(None) == "default"
        assert await routes.area(987654) == "default"  # no such area
        plain = BotRoutes(s, core_config())  # a one-bot deployment asks nothing
        assert await plain.area(ids[SUMBER_JAYA]) == "default"
    assert found == {
        SUMBER_JAYA: "bot_a",
        PADANG_SERAI: "bot_b",
        KECAMATAN: "default",
        "17": "default",
        "18": "lampung",
        "18.09.01.2006": "lampung",
    }


async def test_the_recorded_bot_wins_and_whatsapp_has_none(
    sessions: async_sessionmaker[AsyncSession], areas: None
) -> None:
    village = await area_id(sessions, SUMBER_JAYA)
    async with sessions() as s:
        routes = BotRoutes(s, config())

        def contact(channel: str, bot: str | None) -> Contact:
            return Contact(channel=channel, external_id=1, area_id=village, bot=bot)

        assert await routes.contact(contact("telegram", "default")) == "default"
        assert await routes.contact(contact("telegram", None)) == "bot_a"  # seeded, never wrote
        assert await routes.contact(contact("whatsapp", "bot_b")) == "default"
        assert await routes.group(GroupChat(channel="telegram", area_id=village)) == "bot_a"
        group_b = GroupChat(channel="telegram", area_id=village, bot="bot_b")
        assert await routes.group(group_b) == "bot_b"


async def test_a_report_on_bot_b_alerts_and_answers_through_bot_b(
    sessions: async_sessionmaker[AsyncSession], areas: None
) -> None:
    officer_b = person(sessions, 4001, "Bripka Andi", "bot_b")
    await officer_b.enrol(Role.OFFICER, PADANG_SERAI)
    linked = await officer_b.in_group(GROUP_B, "Bhabin Padang Serai").send("/hubungkan")
    assert "Padang Serai" in texts(linked)
    await link_group(sessions, SUMBER_JAYA, GROUP_A, bot="bot_a")
    reporter = person(sessions, 1001, "Siti", "bot_b")
    await reporter.onboard(PADANG_SERAI)
    await reporter.file_report()

    (alert,) = await outbox(sessions, "alert")
    assert (alert.chat_id, alert.bot) == (GROUP_B, "bot_b")
    async with sessions() as s:
        group = await s.scalar(select(GroupChat).where(GroupChat.chat_id == GROUP_B))
        report = await s.scalar(select(Report))
    assert group is not None and group.bot == "bot_b"
    assert report is not None

    await officer_b.in_group(GROUP_B).send(button=f"claim:{report.id}")
    (edit,) = await outbox(sessions, "alert_edit")
    (news,) = await outbox(sessions, "status")
    assert (edit.chat_id, edit.bot) == (GROUP_B, "bot_b")
    assert (news.chat_id, news.bot) == (reporter.user_id, "bot_b")

    # The reporter now writes to the default bot (say, an old poster): news follow them there.
    await dataclasses.replace(reporter, bot="default").send(f"/status {report.ticket}")
    await officer_b.in_group(GROUP_B).send(button=f"resolve:{report.id}")
    (question,) = await outbox(sessions, "notice")
    assert (question.chat_id, question.bot) == (officer_b.user_id, "bot_b")
    await officer_b.send("Sudah aman, pelaku ditangkap")
    news_rows = await outbox(sessions, "status")
    assert [(r.chat_id, r.bot) for r in news_rows] == [
        (reporter.user_id, "bot_b"),
        (reporter.user_id, "default"),
    ]
    assert {r.bot for r in await outbox(sessions, "alert_edit")} == {"bot_b"}


async def test_an_officer_is_asked_for_the_note_through_their_own_bot(
    sessions: async_sessionmaker[AsyncSession], areas: None
) -> None:
    """The group is reached through bot_b; the officer started only the default bot."""
    officer = person(sessions, 4001, "Bripka Andi", "default")
    await officer.enrol(Role.OFFICER, PADANG_SERAI)
    await link_group(sessions, PADANG_SERAI, GROUP_B, bot="bot_b")
    reporter = person(sessions, 1001, "Siti", "bot_b")
    await reporter.onboard(PADANG_SERAI)
    await reporter.file_report()
    async with sessions() as s:
        report = await s.scalar(select(Report))
    assert report is not None
    in_group = dataclasses.replace(officer.in_group(GROUP_B), bot="bot_b")
    await in_group.send(button=f"resolve:{report.id}")
    (question,) = await outbox(sessions, "notice")
    assert (question.chat_id, question.bot) == (officer.user_id, "default")


async def test_a_broadcast_over_two_bots_areas_uses_each_recipients_bot(
    sessions: async_sessionmaker[AsyncSession], areas: None
) -> None:
    await link_group(sessions, SUMBER_JAYA, GROUP_A, bot="bot_a")
    await link_group(sessions, PADANG_SERAI, GROUP_B, bot="bot_b")
    residents = [
        (person(sessions, 1001, "Siti", "bot_a"), SUMBER_JAYA),
        (person(sessions, 1002, "Rina", "bot_b"), PADANG_SERAI),
        (person(sessions, 1003, "Dedi", "default"), PADANG_SERAI),  # an old poster's bot
    ]
    for resident, code in residents:
        await resident.onboard(code)
    coordinator = person(sessions, 4003, "Iptu Sari", "default")
    await coordinator.enrol(Role.COORDINATOR, KECAMATAN)
    await coordinator.send("/umumkan")
    await coordinator.press("Kampung Melayu")
    await coordinator.press("bc:aud:both")
    await coordinator.send("Kerja bakti Minggu 07.00")
    done = await coordinator.press("Kirim")
    assert "5 penerima" in texts(done)

    rows = await outbox(sessions, "broadcast")
    assert sorted((r.chat_id, r.bot) for r in rows) == sorted(
        [
            (1001, "bot_a"),
            (1002, "bot_b"),
            (1003, "default"),
            (GROUP_A, "bot_a"),
            (GROUP_B, "bot_b"),
        ]
    )


async def test_alerts_escalations_and_reminders_go_through_each_destinations_bot(
    sessions: async_sessionmaker[AsyncSession], areas: None
) -> None:
    await link_group(sessions, PADANG_SERAI, GROUP_B, bot="bot_b")
    await link_group(sessions, KECAMATAN, GROUP_KEC)  # seeded without a bot: the area's (default)
    reporter = person(sessions, 1001, "Siti", "default")  # an old poster's bot
    await reporter.onboard(PADANG_SERAI)
    await reporter.file_report()
    (alert,) = await outbox(sessions, "alert")
    assert (alert.chat_id, alert.bot) == (GROUP_B, "bot_b")

    later = reporter.now + timedelta(hours=3)
    async with sessions() as s:
        assert await escalate_due(s, Context(config(), now=later))
        await s.commit()
    (escalation,) = await outbox(sessions, "escalation")
    assert (escalation.chat_id, escalation.bot) == (GROUP_KEC, "default")

    kecamatan = await area_id(sessions, KECAMATAN)
    async with sessions() as s:
        reminder = await reminders.create(
            s,
            area_id=kecamatan,
            title="3M",
            text="Jangan lupa 3M",
            words="setiap hari 19:00",
            spec="0 19 * * *",
            target="both",
            template=None,
            created_by_id=None,
            now=later,
        )
        await deliver(s, Context(config(), now=later), reminder, datetime(2025, 5, 12, tzinfo=UTC))
        await s.commit()
    rows = await outbox(sessions, "reminder")
    assert sorted((r.chat_id, r.bot) for r in rows) == sorted(
        [(GROUP_B, "bot_b"), (GROUP_KEC, "default"), (reporter.user_id, "default")]
    )


async def test_patrol_and_recaps_go_through_each_destinations_bot(
    sessions: async_sessionmaker[AsyncSession], areas: None
) -> None:
    await link_group(sessions, PADANG_SERAI, GROUP_B, bot="bot_b")
    coordinator = person(sessions, 4003, "Iptu Sari", "bot_b")
    await coordinator.enrol(Role.COORDINATOR, KECAMATAN)
    member = person(sessions, 1001, "Siti", "default")  # started the default bot
    await member.onboard(PADANG_SERAI)
    at = f"/ronda {PADANG_SERAI}"
    assert "ke-1" in texts(await coordinator.send(f"{at} tim Pos Melati: Andi, Siti"))
    assert "harian" in texts(await coordinator.send(f"{at} jadwal harian 21:00"))
    assert "Pos Melati" in texts(await member.send("/ronda ikut 1"))

    tonight = datetime(2025, 5, 12, 14, 0, tzinfo=UTC)  # 21:00 WIB
    async with sessions() as s:
        assert await announce_due(s, Context(config(), now=tonight), grace=timedelta(minutes=30))
        await s.commit()
    rows = await outbox(sessions, "patrol")
    assert sorted((r.chat_id, r.bot) for r in rows) == sorted(
        [(GROUP_B, "bot_b"), (member.user_id, "default")]
    )

    async with sessions() as s:
        recaps = await send_due_recaps(s, Context(config(), now=tonight + timedelta(hours=11)))
        await s.commit()
    assert recaps and {(r.chat_id, r.bot) for r in recaps} == {(coordinator.user_id, "bot_b")}

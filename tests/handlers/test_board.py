"""Alerts that survive a surge (issue 18): a group's live report board.

The group here takes 4 messages a minute (Telegram's 20 a minute, scaled down), and the board
takes over when the queue would hold an alert longer than 30 s: from the 7th alert waiting on.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.telegram.capabilities import TELEGRAM
from bot.wiring import CHANNELS
from handlers import board
from handlers.config import CoreConfig
from handlers.context import Context
from handlers.report import file_report
from handlers.types import Reply
from storage.areas import get_by_code
from storage.models import BoardReport, Contact, GroupBoard, Outbox, Report
from storage.types import OutboxStatus, ReportStatus
from tests.support.chats import (
    ALERT_GROUP,
    SUMBER_JAYA,
    Cast,
    FakeChat,
    core_config,
    staff_cast,
)

WINDOW = (4, 60.0)
PIN = (-3.7956, 102.2592)


def config(**changes: Any) -> CoreConfig:
    telegram = dataclasses.replace(TELEGRAM, group_window=WINDOW)
    return dataclasses.replace(
        core_config(), channels={**CHANNELS, "telegram": telegram}, **changes
    )


@pytest.fixture
async def cast(sessions: async_sessionmaker[AsyncSession]) -> Cast:
    return await staff_cast(sessions)


class Village:
    """Reports filed straight through the core's finishing step, on a clock the test moves."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], cfg: CoreConfig) -> None:
        self.sessions = sessions
        self.config = cfg
        self.now = datetime.fromisoformat("2025-05-12T03:00:00+00:00")
        self.count = 0

    def ctx(self) -> Context:
        return Context(self.config, now=self.now)

    async def report(
        self, *, urgent: bool = False, pin: bool = False, category: str = "bencana"
    ) -> Report:
        self.count += 1
        async with self.sessions() as s:
            area = await get_by_code(s, SUMBER_JAYA)
            assert area is not None
            report, _ = await file_report(
                s,
                self.ctx(),
                category=category,
                description=f"Air naik di rumah warga nomor {self.count}",
                area_id=area.id,
                reporter_id=None,
                anonymous=True,
                urgent=urgent,
                latitude=PIN[0] if pin else None,
                longitude=PIN[1] if pin else None,
            )
            await s.commit()
            return report

    async def rows(self, **where: Any) -> list[Outbox]:
        async with self.sessions() as s:
            query = select(Outbox).where(Outbox.chat_id == ALERT_GROUP).order_by(Outbox.id)
            for name, value in where.items():
                query = query.where(getattr(Outbox, name) == value)
            return list((await s.scalars(query)).all())

    async def send_all(self, ago: timedelta = timedelta(0)) -> None:
        """The dispatcher sent every waiting row to the group (``ago`` before now)."""
        async with self.sessions() as s:
            waiting = await s.scalars(
                select(Outbox).where(Outbox.status.in_(("pending", "sending")))
            )
            for row in waiting:
                row.status = OutboxStatus.SENT.value
                row.sent_at = self.now - ago
                row.external_id = str(1000 + row.id)
            await s.commit()

    async def boards(self) -> list[GroupBoard]:
        async with self.sessions() as s:
            return list((await s.scalars(select(GroupBoard).order_by(GroupBoard.id))).all())


def board_reply(row: Outbox) -> Reply:
    return Reply.from_json(row.payload["reply"])


def officer_in_group(cast: Cast, who: str, village: Village) -> FakeChat:
    chat = cast.get(who).in_group()
    return dataclasses.replace(chat, config=village.config, now=village.now)


async def test_a_surge_folds_the_waiting_alerts_into_one_board(
    sessions: async_sessionmaker[AsyncSession], cast: Cast
) -> None:
    village = Village(sessions, config())
    filed = [await village.report() for _ in range(6)]
    assert len(await village.rows(kind="alert", status="pending")) == 6  # 6 alerts wait
    assert await village.boards() == []

    seventh = await village.report()  # would wait (6 + 1 - 4) x 15 s = 45 s > 30 s

    assert [r.status for r in await village.rows(kind="alert")] == ["folded"] * 6
    [message] = await village.rows(kind="board")
    reply = board_reply(message)
    assert "PAPAN LAPORAN Sumber Jaya" in reply.text
    assert "Total 7 laporan · 7 menunggu" in reply.text
    assert "Per jenis: Bencana 7" in reply.text
    for report in [*filed, seventh]:  # every ticket, each with its claim button
        assert report.ticket in reply.text
    assert [o.data for o in reply.options] == [f"claim:{r.id}" for r in [seventh, *filed[::-1]]]
    assert "Pelapor" not in reply.text  # the board names no reporter

    eighth = await village.report()  # the board message is not sent yet: it shows this too
    assert len(await village.rows(kind="board")) == 1
    assert not await village.rows(kind="alert_edit")
    assert eighth.ticket in board_reply((await village.rows(kind="board"))[0]).text
    assert [r.status for r in await village.rows(kind="alert")] == ["folded"] * 6


async def test_urgent_reports_still_get_their_own_alert_during_a_surge(
    sessions: async_sessionmaker[AsyncSession], cast: Cast
) -> None:
    village = Village(sessions, config())
    urgent_first = await village.report(urgent=True)
    for _ in range(6):
        await village.report()
    urgent_after = await village.report(urgent=True)

    alerts = await village.rows(kind="alert")
    pending = [r.report_id for r in alerts if r.status == "pending"]
    assert pending == [urgent_first.id, urgent_after.id]  # never folded, still one by one
    text = board_reply((await village.rows(kind="board"))[0]).text
    assert f"🚨 {urgent_after.ticket}" in text  # and on the board too


async def test_new_reports_wait_in_one_edit_paced_at_half_the_groups_budget(
    sessions: async_sessionmaker[AsyncSession], cast: Cast
) -> None:
    village = Village(sessions, config())
    for _ in range(7):
        await village.report()
    await village.send_all()  # the board message went out

    first, second = await village.report(), await village.report()
    [edit] = await village.rows(kind="alert_edit")
    assert edit.payload["edit_of"] == (await village.rows(kind="board"))[0].id
    text = board_reply(edit).text
    assert first.ticket in text and second.ticket in text and "Total 9 laporan" in text

    await village.send_all()  # that edit went out: the next waits for the interval
    village.now += timedelta(seconds=5)
    third = await village.report()
    edits = await village.rows(kind="alert_edit")
    assert len(edits) == 2 and third.ticket in board_reply(edits[1]).text
    # 4 messages a minute: one edit per 30 s at most, half the group's budget
    assert edits[1].next_attempt_at >= village.now + timedelta(seconds=25)


async def test_a_claim_from_the_board_works_like_one_from_an_alert(
    sessions: async_sessionmaker[AsyncSession], cast: Cast
) -> None:
    village = Village(sessions, config())
    filed = [await village.report() for _ in range(7)]
    await village.send_all()
    target = filed[2]

    stranger = officer_in_group(cast, "other_officer", village)  # an officer of another village
    refused = await stranger.send(button=f"claim:{target.id}")
    assert refused.notice and "Anda menangani" not in refused.notice
    async with sessions() as s:
        assert (await s.get(Report, target.id)).status == ReportStatus.NEW.value  # type: ignore[union-attr]

    officer = officer_in_group(cast, "officer", village)
    claimed = await officer.send(button=f"claim:{target.id}")
    assert claimed.notice == f"👍 Anda menangani {target.ticket}."
    async with sessions() as s:
        report = await s.get(Report, target.id)
        assert report is not None and report.status == ReportStatus.CLAIMED.value
    [edit] = await village.rows(kind="alert_edit")
    reply = board_reply(edit)
    assert f"claim:{target.id}" not in [o.data for o in reply.options]
    assert "6 menunggu · 1 ditangani" in reply.text

    again = await officer_in_group(cast, "coordinator", village).send(button=f"claim:{target.id}")
    assert again.notice and "Bripka Andi" in again.notice  # polite: who has it already


async def test_the_board_closes_when_the_queue_clears_and_alerts_go_one_by_one_again(
    sessions: async_sessionmaker[AsyncSession], cast: Cast
) -> None:
    village = Village(sessions, config())
    filed = [await village.report() for _ in range(7)]
    await village.send_all()

    village.now += timedelta(minutes=2)  # the surge is over
    await village.send_all(ago=timedelta(minutes=2))
    later = await village.report(pin=True)

    [alert] = await village.rows(kind="alert", report_id=later.id)
    assert alert.status == "pending"
    [closed] = await village.boards()
    assert closed.closed_at == village.now
    [edit] = await village.rows(kind="alert_edit")
    reply = board_reply(edit)
    assert "Antrean sudah normal" in reply.text
    assert later.ticket not in reply.text
    assert len(reply.options) == len(filed)  # the unclaimed keep their buttons

    officer = officer_in_group(cast, "officer", village)  # a tap on the closed board
    outcome = await officer.send(button=f"claim:{filed[0].id}")
    assert outcome.notice == f"👍 Anda menangani {filed[0].ticket}."


async def test_one_alert_is_one_message_the_pin_only_when_the_group_is_quiet(
    sessions: async_sessionmaker[AsyncSession], cast: Cast
) -> None:
    village = Village(sessions, config())
    quiet = await village.report(pin=True)
    busy = await village.report(pin=True)
    first, second = (board_reply(r) for r in await village.rows(kind="alert"))
    link = "https://www.google.com/maps?q=-3.79560,102.25920"
    assert f"Lokasi: peta: {link}" in first.text and f"Lokasi: peta: {link}" in second.text
    assert first.location is not None  # nothing waited: the pin follows as a second message
    assert second.location is None  # one waits already: the alert is its one message
    assert (quiet.id, busy.id) == tuple(r.report_id for r in await village.rows(kind="alert"))


async def test_no_board_when_it_is_off_or_the_channel_has_no_group_limit(
    sessions: async_sessionmaker[AsyncSession], cast: Cast
) -> None:
    off = Village(sessions, config(board_after_seconds=None))
    for _ in range(10):
        await off.report()
    assert len(await off.rows(kind="alert", status="pending")) == 10
    assert await off.boards() == []

    unlimited = Village(sessions, core_config())  # a channel declaring no group window
    no_window = dataclasses.replace(TELEGRAM, group_window=None)
    unlimited.config = dataclasses.replace(
        unlimited.config, channels={**CHANNELS, "telegram": no_window}
    )
    await unlimited.report()
    assert await unlimited.boards() == []


async def test_the_leaders_sweep_closes_a_board_left_quiet_for_a_window(
    sessions: async_sessionmaker[AsyncSession], cast: Cast
) -> None:
    village = Village(sessions, config())
    for _ in range(7):
        await village.report()
    await village.send_all()
    async with sessions() as s:
        assert await board.sweep(s, village.ctx()) == 0  # reports came in just now
    village.now += timedelta(seconds=61)
    async with sessions() as s:
        assert await board.sweep(s, village.ctx()) == 1
        await s.commit()
    [closed] = await village.boards()
    assert closed.closed_at is not None
    [edit] = await village.rows(kind="alert_edit")
    assert "Antrean sudah normal" in board_reply(edit).text


async def test_an_edit_a_sender_already_claimed_is_left_alone(
    sessions: async_sessionmaker[AsyncSession], cast: Cast
) -> None:
    """A new report while the board's waiting edit is being sent: a second edit, not a change
    under the sender's feet."""
    village = Village(sessions, config())
    for _ in range(7):
        await village.report()
    await village.send_all()
    await village.report()
    [edit] = await village.rows(kind="alert_edit")
    async with sessions() as s:
        await s.execute(update(Outbox).where(Outbox.id == edit.id).values(status="sending"))
        await s.commit()
    newest = await village.report()
    edits = await village.rows(kind="alert_edit")
    assert len(edits) == 2
    assert newest.ticket not in board_reply(edits[0]).text
    assert newest.ticket in board_reply(edits[1]).text
    async with sessions() as s:
        on_board = (await s.scalars(select(BoardReport.report_id))).all()
    assert len(on_board) == 9


async def test_when_even_urgent_alerts_would_be_late_they_go_on_top_of_the_board(
    sessions: async_sessionmaker[AsyncSession], cast: Cast
) -> None:
    """A flood where every report is urgent: one by one while that is in time, then the board."""
    village = Village(sessions, config())
    for _ in range(7):
        await village.report()
    urgent = [await village.report(urgent=True) for _ in range(6)]
    alerts = await village.rows(kind="alert", status="pending")
    assert [r.report_id for r in alerts] == [r.id for r in urgent[:5]]
    reply = board_reply((await village.rows(kind="board"))[0])
    assert reply.options[0].data == f"claim:{urgent[5].id}"  # the newest urgent on top
    assert f"🚨 {urgent[5].ticket}" in reply.text


async def test_every_waiting_ticket_shows_the_newest_with_buttons(
    sessions: async_sessionmaker[AsyncSession], cast: Cast
) -> None:
    village = Village(sessions, config(board_tickets=3))
    filed = [await village.report() for _ in range(7)]
    reply = board_reply((await village.rows(kind="board"))[0])
    assert [o.data for o in reply.options] == [f"claim:{r.id}" for r in filed[:-4:-1]]
    older = ", ".join(r.ticket for r in filed[-4::-1])
    assert f"Juga menunggu (ketik: tangani KTN-…): {older}" in reply.text


async def test_a_board_forgets_the_story_and_name_of_a_reporter_who_erased_their_data(
    sessions: async_sessionmaker[AsyncSession], cast: Cast
) -> None:
    village = Village(sessions, config())
    for _ in range(6):
        await village.report()
    story = "Banjir setinggi lutut di rumah Budi Santoso, gang Kenanga yang sempit sejak tadi malam"
    async with sessions() as s:
        area = await get_by_code(s, SUMBER_JAYA)
        budi = await s.scalar(select(Contact).where(Contact.external_id == 1001))
        assert area is not None and budi is not None
        theirs, _ = await file_report(
            s,
            village.ctx(),
            category="bencana",
            description=story,
            area_id=area.id,
            reporter_id=budi.id,
            anonymous=False,
            urgent=False,
            latitude=None,
            longitude=None,
        )
        await s.commit()
    [message] = await village.rows(kind="board")
    assert "Banjir setinggi lutut" in board_reply(message).text  # shortened, as boards show

    await cast.reporter.send("/hapusdata")
    await cast.reporter.send(button="erase:yes")
    [message] = await village.rows(kind="board")
    shown = board_reply(message).text
    assert theirs.ticket in shown and "dihapus atas permintaan pelapor" in shown
    assert "Banjir" not in shown and "Budi" not in shown

"""A surge into one village group, with the real `run` and the fake Bot API enforcing a group
limit (issue 18): the group switches to the live report board, every report shows there or as
its own alert, a claim from the board works, and once the queue has cleared the next report
gets its own alert again. Never a 429.

Telegram's 20 messages a minute per group is scaled to 6 in 6 s here (the same budget shape,
ten times faster), with the board taking over past a 3 s queue.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import OutboxSettings, ReportSettings, SurgeSettings
from bot.sandbox.telegram_fake import FloodLimits, SentMessage, TelegramFake
from storage.areas import get_by_code
from storage.models import Contact, Outbox
from storage.types import utcnow
from tests.support.chats import SUMBER_JAYA
from tests.support.telegram_run import (
    GROUP,
    Running,
    bot_running,
    file_report,
    link_alert_group,
    settings_for,
)

OFFICER = 601
RESIDENTS = list(range(7001, 7015))  # 14 residents at once
LATE = 7100
WINDOW = 6.0  # seconds; 6 messages per window


@pytest.fixture
async def surge(
    migrated_url: str, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> AsyncIterator[Running]:
    await link_alert_group(sessions)
    async with sessions() as s:
        area = await get_by_code(s, SUMBER_JAYA)
        assert area is not None
        s.add(
            Contact(
                channel="telegram",
                external_id=OFFICER,
                role="officer",
                area_id=area.id,
                display_name="Bripka Andi",
                language="id",
                consent_at=utcnow(),
            )
        )
        await s.commit()
    # The group's limit is the one under test. The simulated residents click through their
    # reports instantly, all at once: a person takes seconds per step, so the private-chat and
    # per-bot windows would only measure the simulation's speed (the direct answers in a chat
    # are not the outbox's to pace).
    limits = FloodLimits(
        per_bot=((1000, 1.0),), per_private=((1000, 1.0),), per_group=((6, WINDOW),)
    )
    async with TelegramFake(flood_limits=limits) as fake:
        fake.add_group(GROUP, "Bhabin Sumber Jaya", kind="supergroup")
        fake.add_user(OFFICER, "Andi", "Saputra")
        for user in [*RESIDENTS, LATE]:
            fake.add_user(user, "Warga", str(user))
        settings = settings_for(fake, migrated_url, tmp_path).model_copy(
            update={
                "outbox": OutboxSettings(
                    sweep_seconds=0.2,
                    telegram_group_per_minute=60,
                    telegram_group_window_seconds=WINDOW,
                ),
                "surge": SurgeSettings(board_after_seconds=3),
                # a flood: every resident files their own report, none follows another's
                "reports": ReportSettings(duplicate_window_hours=0),
            }
        )
        async with bot_running(fake, settings, sessions) as bot:
            yield bot


def ticket_of(confirmation: str) -> str:
    found = re.search(r"KTN-[A-Z0-9]{6}", confirmation)
    assert found, confirmation
    return found.group(0)


def boards(fake: TelegramFake) -> list[SentMessage]:
    return [m for m in fake.messages(GROUP) if "PAPAN LAPORAN" in m.content]


def last_call(fake: TelegramFake) -> float:
    """When the bot last sent or edited a message in the group (the fake's clock)."""
    times = [m.received_at for m in fake.messages(GROUP)]
    times += [e.at for m in fake.messages(GROUP) for e in m.edits]
    return max(times)


def visible(fake: TelegramFake, ticket: str) -> bool:
    """The ticket shows in the group now: its own alert, or the board as it reads now."""
    return any(ticket in m.content for m in fake.messages(GROUP))


async def test_a_surge_switches_to_the_board_claims_work_and_single_alerts_come_back(
    surge: Running, sessions: async_sessionmaker[AsyncSession]
) -> None:
    fake = surge.fake
    confirmations = await asyncio.gather(
        *(
            file_report(surge, user, f"Air masuk rumah, warga {user}", timeout=30)
            for user in RESIDENTS
        )
    )
    tickets = [ticket_of(c) for c in confirmations]

    # every report reaches the group: as its own alert or on the board
    await fake.wait_for(lambda: all(visible(fake, t) for t in tickets), timeout=60)
    [board] = boards(fake)
    own = {
        t for t in tickets if any(t in m.content for m in fake.messages(GROUP) if m is not board)
    }
    on_board = {t for t in tickets if t in board.content}
    assert own | on_board == set(tickets)
    assert on_board - own, "some reports should only be on the board"
    async with sessions() as s:
        folded = (await s.scalars(select(Outbox).where(Outbox.status == "folded"))).all()
    assert all(r.payload["ticket"] not in own for r in folded)  # folded alerts never went out

    # a claim from the board: the same check and the same claim as from an alert
    target = next(t for t in tickets if t in on_board and t not in own)
    mark = fake.mark()
    await surge.press(GROUP, OFFICER, f"Tangani {target}", board)
    answer = await fake.wait_for_callback_answer(since=mark, chat_id=GROUP, timeout=10)
    assert answer.text == f"👍 Anda menangani {target}."
    await fake.wait_for(
        lambda: "1 ditangani" in board.content and f"Tangani {target}" not in str(board.buttons()),
        timeout=30,
    )

    # the queue clears (the group's window empties); the next report is a single alert again
    await fake.wait_for(lambda: fake.clock() - last_call(fake) > WINDOW + 0.5, timeout=60)
    late = ticket_of(await file_report(surge, LATE, "Pohon tumbang di jalan", timeout=30))
    alert = await fake.wait_for_message(GROUP, contains=late, timeout=30)
    assert "Laporan baru" in alert.content and alert is not board
    await fake.wait_for(lambda: "Antrean sudah normal" in board.content, timeout=30)
    assert late not in board.content
    assert len(boards(fake)) == 1
    assert fake.count_429 == 0

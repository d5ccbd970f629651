"""Reliability suite, R6 concurrency: many messages from one user at once keep one consistent
draft, and the P1 load (50 residents filing at once) meets no "database is locked".

Everything goes through the seam both channel adapters use (``bot.inbound.make_on_inbound``: the
core's ``process`` with its retries, on the process's own engine from ``bot.database.connect``),
on SQLite here and on PostgreSQL in the ``-m db`` pass. ``KTN_RELIABILITY_SCALE=long`` runs it
bigger (see tests/test_reliability.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import DatabaseSettings, Settings
from bot.database import connect
from bot.inbound import make_on_inbound
from bot.metrics import Metrics
from bot.wiring import core_config_from
from handlers.states import State
from handlers.types import Channel, Inbound, Outcome
from storage import conversations
from storage.models import Conversation, ProcessedInbound, Report
from tests.support.chats import FakeChat, link_group, load_areas, photo
from tests.support.figures import LONG, figures

LOCKED = "database is locked"
OnInbound = Callable[[Inbound], Awaitable[Outcome]]


class Wakes:
    """Stands in for the outbox dispatcher: counts the wake-ups after commits with rows."""

    def __init__(self) -> None:
        self.count = 0

    def notify(self) -> None:
        self.count += 1


@dataclasses.dataclass
class SeamChat(FakeChat):
    """A FakeChat whose messages take the adapters' path (``on_inbound``), on the wall clock."""

    on_inbound: OnInbound | None = None
    failed: int = 0

    async def deliver(self, msg: Inbound) -> Outcome:
        assert self.on_inbound is not None
        outcome = await self.on_inbound(msg)
        self.failed += outcome.failed
        self.history.append(outcome)
        return outcome


@dataclasses.dataclass
class Seam:
    on_inbound: OnInbound
    wakes: Wakes


@pytest.fixture
async def seam(migrated_url: str, tmp_path: Path) -> AsyncIterator[Seam]:
    """``on_inbound`` as `ktn-bot run` builds it, on the database opened as it opens it (its
    pool, busy timeout and pragmas)."""
    settings = Settings(
        data_dir=tmp_path,
        database=DatabaseSettings(url=migrated_url),
        telegram_token=SecretStr("0:unused"),
    )
    db = connect(settings)
    wakes = Wakes()
    on_inbound = make_on_inbound(
        db.sessions,
        core_config_from(settings),
        wakes,
        metrics=Metrics(),
        bot_username=lambda: "ktn_bot",
    )
    yield Seam(on_inbound, wakes)
    await db.close()


def watch_for_locks(caplog: pytest.LogCaptureFixture) -> None:
    """Capture every log record, aiosqlite's per-operation lines too: a lock error anywhere
    (also one retried or swallowed on the way) shows up there as "returning exception ..."."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="aiosqlite")


def locked_records(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Log lines (with their tracebacks) that mention SQLite's lock error."""
    return [
        r.getMessage()
        for r in caplog.records
        if LOCKED in r.getMessage().lower() or LOCKED in (r.exc_text or "").lower()
    ]


async def draft_of(sessions: async_sessionmaker[AsyncSession], chat: FakeChat) -> Conversation:
    async with sessions() as session:
        conv = await conversations.get(session, str(chat.channel), chat.user_id, chat.user_id)
    assert conv is not None
    return conv


async def count(sessions: async_sessionmaker[AsyncSession], model: type) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def ready_for_photos(chat: SeamChat) -> None:
    """A WhatsApp resident at the photo step, every other field of the report filled."""
    await chat.onboard()
    await chat.send("/lapor")
    await chat.press("cat:kesehatan")
    if chat.history[-1].recorded.state == State.DUPLICATE.value:
        await chat.press("dup:new")
    await chat.send("Jembatan kayu di gang 4 patah")
    out = await chat.send("Gang 4 dekat pos ronda")
    assert out.recorded.state == State.PHOTO.value, out


async def test_r6_one_users_burst_keeps_one_consistent_draft(
    seam: Seam,
    sessions: async_sessionmaker[AsyncSession],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """50 photos of one album arrive at once: WhatsApp posts each as its own webhook, and the
    workers of a deployment handle them side by side (one process queues a user's messages)."""
    watch_for_locks(caplog)
    await load_areas(sessions)
    on_inbound = seam.on_inbound
    chat = SeamChat(
        sessions, channel=Channel.WHATSAPP, user_id=6281200000001, on_inbound=on_inbound
    )
    await ready_for_photos(chat)
    before = await draft_of(sessions, chat)
    burst = 150 if LONG else 50
    album = [
        chat.message(media=[photo(f"album-{i}")], message_id=f"wa:SMburst{i:04d}")
        for i in range(burst)
    ]
    outcomes = await asyncio.gather(*(chat.deliver(m) for m in album))
    after = await draft_of(sessions, chat)

    report = after.draft["report"]
    refs = [m["ref"] for m in report["media"]]
    lost = burst - len(set(refs))
    # Serial order: the first photo moved the draft to the anonymity question, each later one
    # saw all before it ("semuanya 2" ... "semuanya N"), each count exactly once.
    seen = sorted(
        int(r.text.split("(semuanya ")[1].split(")")[0])
        for o in outcomes
        for r in o.replies
        if "(semuanya " in r.text
    )
    out_of_order = len(set(range(2, burst + 1)) ^ set(seen)) + (len(seen) - len(set(seen)))
    figures(
        capsys,
        "R6 one user's burst",
        messages=burst,
        failed=chat.failed,
        lost=lost,
        out_of_order=out_of_order,
        locked=len(locked_records(caplog)),
    )
    assert chat.failed == 0
    assert locked_records(caplog) == []
    assert sorted(refs) == sorted(f"album-{i}" for i in range(burst)) and len(refs) == burst
    assert seen == list(range(2, burst + 1))
    assert after.state == State.ANONYMOUS.value
    assert after.version == before.version + burst, "one versioned write per message"
    assert report["category"] == "kesehatan", "no field of the draft was lost"
    assert report["description"] == "Jembatan kayu di gang 4 patah"
    assert report["address"] == "Gang 4 dekat pos ronda"
    out = await chat.press("anon:no")
    assert f"Foto/file: {burst}" in out.replies[-1].text


async def test_r6_p1_load_many_residents_at_once_meet_no_lock(
    seam: Seam,
    sessions: async_sessionmaker[AsyncSession],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """P1's load: 50 residents onboard and file a report at once, while one of them also sends
    a 50-message burst; every message is processed, every report is whole."""
    watch_for_locks(caplog)
    await load_areas(sessions)
    await link_group(sessions)
    on_inbound = seam.on_inbound
    users = 100 if LONG else 50
    residents = [
        SeamChat(sessions, user_id=810_000 + i, name=f"Warga {i}", on_inbound=on_inbound)
        for i in range(users)
    ]
    burster = SeamChat(
        sessions, channel=Channel.WHATSAPP, user_id=6281200000002, on_inbound=on_inbound
    )
    await ready_for_photos(burster)
    processed_before = await count(sessions, ProcessedInbound)
    burst = 150 if LONG else 50

    async def file(chat: SeamChat, i: int) -> Outcome | None:
        try:
            await chat.onboard()
            return await chat.file_report("lainnya", f"Cerita warga nomor {i}")
        except AssertionError:  # a step went unanswered (counted in `failed`): flow broken
            return None

    async def album() -> list[Outcome]:
        return await asyncio.gather(
            *(burster.deliver(burster.message(media=[photo(f"p1-{i}")])) for i in range(burst))
        )

    filing = asyncio.gather(*(file(c, i) for i, c in enumerate(residents)))
    filed, _ = await asyncio.gather(filing, album())
    sent = sum(len(c.history) for c in residents) + burst
    processed = await count(sessions, ProcessedInbound) - processed_before
    failed = sum(c.failed for c in residents) + burster.failed
    async with sessions() as session:
        reports = {
            r.description: r
            for r in await session.scalars(
                select(Report).where(Report.description.like("Cerita warga nomor %"))
            )
        }
    whole = sum(
        1
        for i in range(users)
        if (r := reports.get(f"Cerita warga nomor {i}")) is not None
        and r.category == "lainnya"
        and r.address_text == "RT 03/RW 02 dekat masjid"
    )
    media = (await draft_of(sessions, burster)).draft["report"]["media"]
    figures(
        capsys,
        "R6 P1 load",
        users=users,
        messages=sent,
        processed=processed,
        failed=failed,
        reports=len(reports),
        whole=whole,
        locked=len(locked_records(caplog)),
    )
    assert failed == 0
    assert locked_records(caplog) == []
    assert processed == sent, "every message was processed once"
    assert all(o is not None and o.recorded.filed is not None for o in filed)
    assert whole == users
    assert sorted(m["ref"] for m in media) == sorted(f"p1-{i}" for i in range(burst))
    # Each report that queued a row woke the dispatcher. Fifty reports at once into one group
    # open its report board (issue 18): a report then updates the board's waiting row instead.
    queued = sum(1 for o in filed if o is not None and o.outbox_ids)
    assert queued >= 1 and seam.wakes.count >= queued, "each report's new rows woke the dispatcher"

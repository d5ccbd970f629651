"""Concurrent messages for one user keep one consistent draft (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.states import State
from storage import conversations
from storage.models import Contact, Conversation, ProcessedInbound
from tests.support.chats import FakeChat, load_areas, photo


@pytest.fixture
async def chat(sessions: async_sessionmaker[AsyncSession]) -> FakeChat:
    await load_areas(sessions)
    return FakeChat(sessions)


async def test_an_album_sent_at_once_keeps_every_photo(chat: FakeChat) -> None:
    await chat.onboard()
    await chat.send("/lapor")
    await chat.send("keamanan")
    await chat.send("Tembok dicoret-coret")
    await chat.send("Balai warga")
    album = [chat.message(media=[photo(f"album-{i}")]) for i in range(8)]
    outcomes = await asyncio.gather(*(chat.deliver(m) for m in album))
    async with chat.sessions() as session:
        conv = await conversations.get(session, chat.channel, chat.user_id, chat.user_id)
        assert conv is not None
    assert conv.state == State.ANONYMOUS.value
    refs = sorted(m["ref"] for m in conv.draft["report"]["media"])
    assert refs == sorted(f"album-{i}" for i in range(8))
    saved_counts = sorted(
        int(r.text.split("(semuanya ")[1].rstrip(")."))
        for o in outcomes
        for r in o.replies
        if "semuanya" in r.text
    )
    assert saved_counts == list(range(2, 9)), "each message saw the one before it"
    out = await chat.press("anon:no")
    assert "Foto/file: 8" in out.replies[-1].text


async def test_first_messages_at_once_make_one_contact_and_one_conversation(
    chat: FakeChat,
) -> None:
    burst = [chat.message(text) for text in ("halo", "pak", "mau lapor", "tolong", "p")]
    outcomes = await asyncio.gather(*(chat.deliver(m) for m in burst))
    assert all(o.recorded.state == State.CONSENT.value for o in outcomes)
    async with chat.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Contact)) == 1
        assert await session.scalar(select(func.count()).select_from(Conversation)) == 1
        assert await session.scalar(select(func.count()).select_from(ProcessedInbound)) == 5


async def test_the_same_message_delivered_twice_at_once_counts_once(chat: FakeChat) -> None:
    await chat.onboard()
    await chat.send("/lapor")
    await chat.send("keamanan")
    retry = chat.message("Ada maling di gang", message_id="SM0001")
    outcomes = await asyncio.gather(*(chat.deliver(retry) for _ in range(4)))
    assert sorted(o.duplicate for o in outcomes) == [False, True, True, True]
    async with chat.sessions() as session:
        conv = await conversations.get(session, chat.channel, chat.user_id, chat.user_id)
        assert conv is not None and conv.state == State.LOCATION.value
        assert conv.draft["report"]["description"] == "Ada maling di gang"


async def test_two_users_at_once_do_not_disturb_each_other(chat: FakeChat) -> None:
    others = [FakeChat(chat.sessions, user_id=7000 + i, name=f"Warga {i}") for i in range(4)]
    await asyncio.gather(*(o.onboard() for o in others))
    outcomes = await asyncio.gather(
        *(o.file_report("lainnya", f"cerita {i}") for i, o in enumerate(others))
    )
    assert len({o.recorded.filed["ticket"] for o in outcomes}) == 4


async def test_a_stale_draft_write_is_refused_by_the_version_column(
    chat: FakeChat, db_url: str
) -> None:
    if db_url.startswith("sqlite"):
        pytest.skip("SQLite serialises writers (BEGIN IMMEDIATE): two open writers cannot exist")
    from sqlalchemy.orm.exc import StaleDataError

    await chat.onboard()
    async with chat.sessions() as first, chat.sessions() as second:
        a = await conversations.get(first, "telegram", chat.user_id, chat.user_id)
        b = await conversations.get(second, "telegram", chat.user_id, chat.user_id)
        assert a is not None and b is not None and a.version == b.version
        conversations.save(a, "category", {"report": {"media": []}}, chat.now)
        await first.commit()
        conversations.save(b, "summary", {"report": {"media": ["lost"]}}, chat.now)
        with pytest.raises(StaleDataError):
            await second.commit()


async def test_process_retries_the_whole_message_after_a_conflict(
    chat: FakeChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.orm.exc import StaleDataError

    import handlers.core as core

    await chat.onboard()
    real = core.handle
    calls = 0

    async def flaky(session: AsyncSession, msg: object, ctx: object) -> object:
        nonlocal calls
        calls += 1
        outcome = await real(session, msg, ctx)  # type: ignore[arg-type]
        if calls <= 2:
            raise StaleDataError("someone else got there first")
        return outcome

    monkeypatch.setattr(core, "handle", flaky)
    out = await chat.send("/lapor")
    assert calls == 3 and out.recorded.state == State.CATEGORY.value
    async with chat.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(ProcessedInbound)) == 3

    calls = -100  # always failing: gives up after MAX_ATTEMPTS and raises
    with pytest.raises(StaleDataError):
        await chat.send("keamanan")
    assert calls == -100 + core.MAX_ATTEMPTS
    async with chat.sessions() as session:
        conv = await conversations.get(session, "telegram", chat.user_id, chat.user_id)
        assert conv is not None and conv.state == State.CATEGORY.value, "nothing half-written"


async def test_kirim_double_clicked_at_once_files_one_report(chat: FakeChat) -> None:
    from storage.models import Report

    await chat.onboard()
    await chat.send("/lapor")
    await chat.send("keamanan")
    await chat.send("Ada maling")
    await chat.send("Gang Mawar")
    await chat.press("photo:skip")
    await chat.press("anon:no")
    clicks = [chat.message(button="sum:send") for _ in range(3)]
    outcomes = await asyncio.gather(*(chat.deliver(m) for m in clicks))
    assert sum(o.recorded.filed is not None for o in outcomes) == 1
    assert sum(o.notice is not None for o in outcomes) == 2
    async with chat.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Report)) == 1

"""The media library's bookkeeping: a file stays while a message holds it or something refers to
it (a report, a broadcast, a draft), and goes once nothing does; the leader's sweep deletes what
is left over after the grace period."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.media.library import MediaLibrary
from bot.roles.duties import EXPIRING_DRAFTS
from storage import conversations, reports
from storage.areas import get_by_code
from storage.models import Broadcast, MediaBlob, MediaFileId
from storage.types import utcnow
from tests.support.chats import SUMBER_JAYA, load_areas
from tests.support.media import local_library, stored_files

GRACE = timedelta(hours=24)


def photo(n: int) -> bytes:
    return b"\xff\xd8\xff\xe0" + bytes([n]) + os.urandom(200)


@pytest.fixture
async def library(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> AsyncIterator[MediaLibrary]:
    await load_areas(sessions)
    lib = local_library(tmp_path / "media", sessions)
    await lib.start()
    try:
        yield lib
    finally:
        await lib.close()


async def on_disk(library: MediaLibrary, ref: str) -> bool:
    return await library.store.exists(ref)


async def area_id(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as s:
        area = await get_by_code(s, SUMBER_JAYA)
        assert area is not None
        return area.id


async def file_report_with(sessions: async_sessionmaker[AsyncSession], ref: str) -> None:
    async with sessions() as s:
        await reports.create_report(
            s,
            category="keamanan",
            description="Motor hilang",
            area_id=await area_id(sessions),
            reporter_id=None,
            anonymous=True,
            urgent=False,
            now=utcnow(),
            media=[reports.MediaRef("photo", "whatsapp", ref, "image/jpeg", ref, 10)],
        )
        await s.commit()


async def draft_with(
    sessions: async_sessionmaker[AsyncSession], ref: str, state: str, *, user: int, idle: timedelta
) -> None:
    """A conversation in ``state`` whose draft holds the file, last touched ``idle`` ago."""
    when = utcnow() - idle
    async with sessions() as s:
        conversation = await conversations.create(s, "telegram", user, user, when)
        draft = {"report": {"media": [{"kind": "photo", "ref": ref, "content_type": None}]}}
        if state.startswith("broadcast"):
            draft = {"broadcast": {"photo": {"kind": "photo", "ref": ref, "content_type": None}}}
        conversations.save(conversation, state, draft, when)  # type: ignore[arg-type]
        await s.commit()


async def age(sessions: async_sessionmaker[AsyncSession], ref: str, by: timedelta) -> None:
    async with sessions() as s:
        await s.execute(
            update(MediaBlob).where(MediaBlob.ref == ref).values(touched_at=utcnow() - by)
        )
        await s.commit()


async def test_a_download_nobody_kept_goes_when_released(library: MediaLibrary) -> None:
    blob = await library.put(photo(1), "image/jpeg")
    assert await on_disk(library, blob.ref)
    assert await library.release([blob.ref]) == 1
    assert not await on_disk(library, blob.ref) and await library.stat(blob.ref) is None


async def test_a_kept_download_stays(library: MediaLibrary) -> None:
    blob = await library.put(photo(1), "image/jpeg")
    assert await library.release([blob.ref], kept=[blob.ref]) == 0
    assert await on_disk(library, blob.ref)


async def test_the_same_bytes_held_by_two_messages_stay_until_both_are_done(
    library: MediaLibrary,
) -> None:
    data = photo(2)
    first = await library.put(data, "image/jpeg")
    second = await library.put(data, "image/jpeg")  # another user, the same picture
    assert first.ref == second.ref
    assert await library.release([first.ref]) == 0  # the other message still holds it
    assert await on_disk(library, first.ref)
    assert await library.release([second.ref]) == 1
    assert not await on_disk(library, first.ref)


async def test_a_file_a_report_refers_to_is_never_deleted(
    library: MediaLibrary, sessions: async_sessionmaker[AsyncSession]
) -> None:
    data = photo(3)
    kept = await library.put(data, "image/jpeg")
    await file_report_with(sessions, kept.ref)
    await library.release([kept.ref], kept=[kept.ref])
    again = await library.put(data, "image/jpeg")  # someone without consent sends it too
    assert await library.release([again.ref]) == 0  # dropped by them, still the report's
    assert await library.release([again.ref], held=False) == 0  # and when a draft lets it go
    assert await library.sweep(timedelta(0)) == 0
    assert await library.read(kept.ref) == data


async def test_a_file_a_draft_or_a_broadcast_refers_to_stays(
    library: MediaLibrary, sessions: async_sessionmaker[AsyncSession]
) -> None:
    in_draft = await library.put(photo(4), "image/jpeg")
    await draft_with(sessions, in_draft.ref, "photo", user=11, idle=timedelta(0))
    announced = await library.put(photo(5), "image/jpeg")
    async with sessions() as s:
        s.add(
            Broadcast(
                area_id=await area_id(sessions),
                audience="residents",
                text="Kerja bakti",
                media_ref=announced.ref,
                created_at=utcnow(),
            )
        )
        await s.commit()
    assert await library.release([in_draft.ref, announced.ref]) == 0
    assert await on_disk(library, in_draft.ref) and await on_disk(library, announced.ref)


async def test_the_sweep_deletes_old_files_nothing_refers_to(
    library: MediaLibrary, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    idle = timedelta(minutes=60)
    old = timedelta(days=2)
    blobs = {
        name: await library.put(photo(n), "image/jpeg")
        for n, name in enumerate(
            (
                "orphan",
                "recent",
                "reported",
                "broadcast_draft",
                "expired_draft",
                "live_draft",
                "crashed_hold",
            )
        )
    }
    await library.release(
        [b.ref for name, b in blobs.items() if name != "crashed_hold"],
        kept=[b.ref for b in blobs.values()],
    )
    for name, blob in blobs.items():
        if name != "recent":
            await age(sessions, blob.ref, old)
    await file_report_with(sessions, blobs["reported"].ref)
    await draft_with(sessions, blobs["broadcast_draft"].ref, "broadcast_text", user=21, idle=old)
    await draft_with(sessions, blobs["expired_draft"].ref, "photo", user=22, idle=old)
    await draft_with(sessions, blobs["live_draft"].ref, "photo", user=23, idle=timedelta(0))
    await library.remember_file_id(blobs["orphan"].ref, "telegram", "default", "photo", "AgAC1")

    deleted = await library.sweep(
        GRACE, idle_before=utcnow() - idle, expiring_states=EXPIRING_DRAFTS, page=2
    )
    gone = {name for name, blob in blobs.items() if not await on_disk(library, blob.ref)}
    assert gone == {"orphan", "expired_draft", "crashed_hold"} and deleted == 3
    async with sessions() as s:
        left = set((await s.scalars(select(MediaBlob.ref))).all())
        assert (await s.scalars(select(MediaFileId))).all() == []
    assert left == {blobs[n].ref for n in ("recent", "reported", "broadcast_draft", "live_draft")}
    assert len(stored_files(tmp_path / "media")) == 4


async def test_a_file_stored_again_during_the_grace_period_is_not_swept(
    library: MediaLibrary, sessions: async_sessionmaker[AsyncSession]
) -> None:
    data = photo(9)
    blob = await library.put(data, "image/jpeg", hold=False)  # an export sent by link
    await age(sessions, blob.ref, timedelta(days=2))
    await library.put(data, "image/jpeg", hold=False)  # sent again today
    assert await library.sweep(GRACE) == 0 and await on_disk(library, blob.ref)


async def test_a_known_content_type_is_not_forgotten_by_a_later_copy(library: MediaLibrary) -> None:
    data = photo(10)
    await library.put(data, "image/jpeg", hold=False)
    blob = await library.put(data, None, hold=False)  # the same bytes, type not declared
    stat = await library.stat(blob.ref)
    assert stat is not None and stat.content_type == "image/jpeg"

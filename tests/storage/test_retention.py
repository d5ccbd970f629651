"""Retention (UU PDP): each kind of personal data is forgotten after its days, in bounded batches;
what is recent is kept. Old and new rows of every kind are seeded; the leader's purge runs once.
Media files go from the store after their rows, in a folder and in an S3 bucket alike."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.config import RetentionSettings
from bot.database import Database
from bot.media.library import MediaLibrary
from bot.media.s3 import S3Backend
from bot.media.store import INCOMING, MediaStore
from bot.metrics import Metrics
from bot.roles.retention import KINDS, Purger
from storage import retention
from storage.access_log import AccessKind, AccessVia
from storage.access_log import record as record_access
from storage.areas import get_by_code
from storage.models import (
    AccessLog,
    Contact,
    Conversation,
    DeskLogin,
    DeskSession,
    Open311Request,
    Outbox,
    ProcessedInbound,
    Report,
    ReportEvent,
    ReportFollower,
    ReportMedia,
)
from storage.retention import forget_processed_inbound
from storage.types import utcnow
from tests.support.chats import SUMBER_JAYA, load_areas
from tests.support.media import S3Server, local_library, s3_server

PLACEHOLDER = "(dihapus: masa simpan berakhir)"
DAY = timedelta(days=1)


async def remembered(sessions: async_sessionmaker[AsyncSession]) -> set[str]:
    async with sessions() as s:
        return set((await s.scalars(select(ProcessedInbound.external_id))).all())


async def add_records(sessions: async_sessionmaker[AsyncSession], **ages_in_days: float) -> None:
    now = utcnow()
    async with sessions() as s:
        s.add_all(
            ProcessedInbound(
                channel="telegram" if i % 2 else "whatsapp",
                external_id=name,
                processed_at=now - timedelta(days=days),
            )
            for i, (name, days) in enumerate(ages_in_days.items())
        )
        await s.commit()


def purger(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    media: MediaLibrary | None = None,
    **settings: int,
) -> Purger:
    return Purger(
        Database(engine, sessions),
        RetentionSettings(pause_ms=0, **settings),  # type: ignore[arg-type]
        PLACEHOLDER,
        metrics=Metrics(),
        media=media,
    )


async def test_old_records_go_in_batches_and_recent_ones_stay(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await add_records(sessions, a=30, b=20, c=9, d=8.5, e=6, f=0.01)
    before = utcnow() - timedelta(days=7)
    async with sessions() as s:
        assert await forget_processed_inbound(s, before, limit=3) == 3
        await s.commit()
    assert len(await remembered(sessions)) == 3
    async with sessions() as s:
        assert await forget_processed_inbound(s, before, limit=3) == 1
        assert await forget_processed_inbound(s, before, limit=3) == 0
        await s.commit()
    assert await remembered(sessions) == {"e", "f"}


async def test_the_leaders_purge_forgets_everything_past_the_configured_days(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await add_records(sessions, **{f"old{i}": 3 + i / 100 for i in range(12)}, fresh=1)
    await purger(engine, sessions, processed_inbound_days=2, batch=10).run_once()
    assert await remembered(sessions) == {"fresh"}


# --- every kind, old and new -------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with s3_server() as server:
        yield server


@pytest.fixture(params=["local", "s3"])
async def library(
    request: pytest.FixtureRequest,
    sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    s3: S3Server,
) -> AsyncIterator[MediaLibrary]:
    """The media store in a folder, or in an S3 bucket (moto's server over HTTP)."""
    if request.param == "local":
        lib = local_library(tmp_path / "media", sessions)
    else:
        backend = S3Backend(
            s3.bucket,
            prefix=f"{tmp_path.name}/",
            endpoint_url=s3.endpoint_url,
            region="ap-southeast-3",
            access_key_id=s3.access_key_id,
            secret_access_key=s3.secret_access_key,
        )
        lib = MediaLibrary(MediaStore(backend, tmp_path / "media" / INCOMING), sessions)
    await lib.start()
    try:
        yield lib
    finally:
        await lib.close()


class Seeded:
    """The ids of what was seeded, old and new."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.refs: dict[str, str] = {}


async def seed(
    sessions: async_sessionmaker[AsyncSession], library: MediaLibrary, now: datetime
) -> Seeded:
    """One resident and, per kind, a row past its default period and one within it."""
    await load_areas(sessions)
    out = Seeded()
    for name in ("old", "new"):
        blob = await library.put(b"\xff\xd8" + os.urandom(64), "image/jpeg", hold=False)
        out.refs[name] = blob.ref
    async with sessions() as s:
        area = await get_by_code(s, SUMBER_JAYA)
        assert area is not None
        siti = Contact(channel="telegram", external_id=777001, display_name="Siti Aminah")
        budi = Contact(channel="whatsapp", external_id=6281200000099, phone="+6281200000099")
        s.add_all([siti, budi])
        await s.flush()

        def report(
            ticket: str, status: str, closed: timedelta | None, created: timedelta
        ) -> Report:
            return Report(
                ticket=ticket,
                category="keamanan",
                description="Motor Siti Aminah hilang di depan rumah no. 12",
                latitude=-3.812345,
                longitude=102.298765,
                address_text="Jl. Melati 12",
                area_id=area.id,
                reporter_id=siti.id,
                status=status,
                resolution_note="Sudah ditemukan, dikembalikan ke Bu Siti",
                created_at=now - created,
                closed_at=now - closed if closed else None,
            )

        old_closed = report("KTN-OLD001", "resolved", 800 * DAY, 801 * DAY)
        new_closed = report("KTN-NEW001", "resolved", 10 * DAY, 11 * DAY)
        old_open = report("KTN-OLD002", "new", None, 800 * DAY)
        s.add_all([old_closed, new_closed, old_open])
        await s.flush()
        for r in (old_closed, new_closed):
            s.add(ReportFollower(report_id=r.id, contact_id=budi.id))
            s.add(Open311Request(report_id=r.id, fingerprint="f" * 64, phone="+628120000001"))
        out.ids |= {"old_closed": old_closed.id, "new_closed": new_closed.id}
        out.ids["old_open"] = old_open.id
        for name, ago in (("old", 400 * DAY), ("new", 10 * DAY)):
            m = ReportMedia(
                report_id=new_closed.id,
                kind="photo",
                channel="telegram",
                file_ref=out.refs[name],
                store_ref=out.refs[name],
                created_at=now - ago,
            )
            s.add(m)
            await s.flush()
            out.ids[f"media_{name}"] = m.id
            e = ReportEvent(
                report_id=old_open.id,
                kind="note",
                note=f"Bu Siti di rumah ({name})",
                created_at=now - ago,
            )
            s.add(e)
            await s.flush()
            out.ids[f"event_{name}"] = e.id

        def outbox(
            status: str, ago: timedelta, kind: str = "reply", report_id: int | None = None
        ) -> Outbox:
            return Outbox(
                channel="telegram",
                chat_id=777001,
                contact_id=siti.id,
                kind=kind,
                payload={"reply": {"text": "Halo Siti Aminah"}, "lang": "id"},
                status=status,
                report_id=report_id,
                created_at=now - ago,
            )

        rows = {
            "out_old_sent": outbox("sent", 40 * DAY),
            "out_old_failed": outbox("failed", 40 * DAY),
            "out_old_pending": outbox("pending", 40 * DAY),
            "out_new_sent": outbox("sent", DAY),
            "out_old_alert_open": outbox("sent", 40 * DAY, "alert", old_open.id),
        }
        s.add_all(rows.values())
        for name, ago in (("old", 40 * DAY), ("new", DAY)):
            c = Conversation(
                channel="telegram",
                chat_id=777001 + (name == "new"),
                user_id=777001,
                state="report_text",
                draft={"report": {"text": "Siti"}},
                version=1,
                updated_at=now - ago,
            )
            d = DeskSession(
                token_hash=name * 16,
                contact_id=siti.id,
                csrf="x",
                created_at=now - ago,
                last_seen_at=now - ago,
            )
            login = DeskLogin(
                token_hash=(name * 20)[:64],
                contact_id=siti.id,
                created_at=now - ago,
                expires_at=now - ago + timedelta(minutes=15),
            )
            s.add_all([c, d, login])
            rows[f"conv_{name}"] = c  # type: ignore[assignment]
        for name, ago in (("old", 800 * DAY), ("new", DAY)):
            record_access(
                s,
                kind=AccessKind.REPORT,
                via=AccessVia.DESK,
                now=now - ago,
                actor_id=siti.id,
                report_id=old_open.id,
                subject=name,
            )
        await s.flush()
        out.ids |= {name: row.id for name, row in rows.items()}
        await s.commit()
    return out


async def test_every_kind_past_its_days_is_forgotten_and_recent_data_stays(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    library: MediaLibrary,
) -> None:
    now = utcnow()
    seeded = await seed(sessions, library, now)
    job = purger(engine, sessions, library)
    purged = await job.run_once()

    assert set(purged) <= set(KINDS)
    assert purged["closed_report_personal"] == 1
    assert purged["media"] == 1
    assert purged["outbox_text"] == 2
    assert purged["conversation"] == 1
    assert purged["report_event_note"] >= 1
    assert purged["desk_session"] == 2
    assert purged["access_log"] == 1
    samples = job.metrics.registry.get_sample_value if job.metrics else None
    assert samples is not None
    assert samples("ktn_retention_purged_total", {"kind": "media"}) == 1

    async with sessions() as s:
        old = await s.get(Report, seeded.ids["old_closed"])
        new = await s.get(Report, seeded.ids["new_closed"])
        still_open = await s.get(Report, seeded.ids["old_open"])
        assert old is not None and new is not None and still_open is not None
        # the statistics stay, the person goes
        assert (old.ticket, old.category, old.status, old.area_id) == (
            "KTN-OLD001",
            "keamanan",
            "resolved",
            new.area_id,
        )
        assert old.reporter_id is None and old.description == PLACEHOLDER
        assert old.address_text is None and old.resolution_note is None
        assert old.latitude == pytest.approx(-3.81) and old.longitude == pytest.approx(102.30)
        assert old.personal_purged_at is not None
        followers = await s.scalars(select(ReportFollower.report_id))
        assert set(followers.all()) == {new.id}
        phones = await s.execute(select(Open311Request.report_id, Open311Request.phone))
        assert dict(phones.all()) == {old.id: None, new.id: "+628120000001"}
        assert new.reporter_id is not None and "Siti" in new.description
        assert still_open.reporter_id is not None and still_open.address_text  # open: kept

        media = set((await s.scalars(select(ReportMedia.id))).all())
        assert media == {seeded.ids["media_new"]}
        notes = dict((await s.execute(select(ReportEvent.id, ReportEvent.note))).all())
        assert notes[seeded.ids["event_old"]] is None
        assert notes[seeded.ids["event_new"]] == "Bu Siti di rumah (new)"

        texts = {
            r.id: (r.payload["reply"]["text"], r.purged_at is not None)
            for r in (await s.scalars(select(Outbox))).all()
        }
        assert texts[seeded.ids["out_old_sent"]] == ("", True)
        assert texts[seeded.ids["out_old_failed"]] == ("", True)
        assert texts[seeded.ids["out_old_pending"]] == ("Halo Siti Aminah", False)  # unsent
        assert texts[seeded.ids["out_new_sent"]] == ("Halo Siti Aminah", False)
        assert texts[seeded.ids["out_old_alert_open"]] == ("Halo Siti Aminah", False)

        assert set((await s.scalars(select(Conversation.id))).all()) == {seeded.ids["conv_new"]}
        assert await s.scalar(select(func.count()).select_from(DeskSession)) == 1
        assert await s.scalar(select(func.count()).select_from(DeskLogin)) == 1
        assert set((await s.scalars(select(AccessLog.subject))).all()) == {"new"}

    # the old photo's file is gone from the store, the recent one's stays
    assert not await library.store.exists(seeded.refs["old"])
    assert await library.store.exists(seeded.refs["new"])
    assert await library.stat(seeded.refs["old"]) is None

    # a second run finds nothing more
    assert await job.run_once() == {}


async def test_a_photo_another_report_still_has_stays_on_disk(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], library: MediaLibrary
) -> None:
    now = utcnow()
    seeded = await seed(sessions, library, now)
    async with sessions() as s:  # a recent report has the same picture as the old one
        s.add(
            ReportMedia(
                report_id=seeded.ids["new_closed"],
                kind="photo",
                channel="whatsapp",
                file_ref="x",
                store_ref=seeded.refs["old"],
                created_at=now,
            )
        )
        await s.commit()
    await purger(engine, sessions, library).run_once()
    assert await library.store.exists(seeded.refs["old"])


async def idle_conversations(
    sessions: async_sessionmaker[AsyncSession], count: int, idle: timedelta
) -> None:
    async with sessions() as s:
        s.add_all(
            Conversation(
                channel="telegram",
                chat_id=i,
                user_id=i,
                state="idle",
                draft={},
                version=1,
                updated_at=utcnow() - idle,
            )
            for i in range(count)
        )
        await s.commit()


async def test_a_backlog_goes_in_batches_of_the_configured_size(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await idle_conversations(sessions, 25, 40 * DAY)
    async with sessions() as s:  # one batch never takes more than its limit
        assert await retention.forget_conversations(s, utcnow() - 30 * DAY, limit=10) == 10
        await s.rollback()
    job = purger(engine, sessions, batch=10)
    assert (await job.run_once())["conversation"] == 25
    assert job.batches["conversation"] == 3  # 10 + 10 + 5, each its own transaction


async def test_zero_days_keeps_a_kind_forever(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], library: MediaLibrary
) -> None:
    seeded = await seed(sessions, library, utcnow())
    purged = await purger(engine, sessions, library, media_days=0, outbox_text_days=0).run_once()
    assert "media" not in purged and "outbox_text" not in purged
    assert await library.store.exists(seeded.refs["old"])


async def test_a_purge_ends_at_its_next_batch_when_the_role_ends(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Shutting down (or stepping down) never waits for a backlog: the next leader goes on."""
    await idle_conversations(sessions, 25, 40 * DAY)
    job = purger(engine, sessions, batch=10)
    job.stop.set()
    assert await job.purge("conversation", utcnow() - 30 * DAY) == 10  # the batch under way
    assert job.batches["conversation"] == 1
    assert await job.run_once() == {}  # stopped: no kind is started
    job.stop.clear()
    assert (await job.run_once())["conversation"] == 15

"""After /hapusdata nothing of the person is left: not in any column of any table (found by
the database's own catalogue, not a list kept here), not in the media folder (names or bytes),
not at Twilio, not in the log. Run on both channels, against the real `run` wiring.

The person used the bot richly first: two reports with photos (one named, one anonymous), a
claimed report with news, a follow of a neighbour's report, (WhatsApp) a report a call
centre filed for their number through Open311, which they then follow, a ronda team, a report draft with
a photo left half-way, a copy of their data (/dataku) on the way. Files are kept in the media
folder, and (WhatsApp) once more in an S3 bucket (moto's server). Twilio keeps inbound media
here (``delete_media_at_twilio = false``), so erasing must delete it there. The log is read
as captured at DEBUG for ktn-bot's own modules and INFO for the libraries (python-telegram-bot
logs each request's parameters at DEBUG: an operator who turns that on keeps message texts).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import func, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import MediaSettings
from storage.models import Outbox, Report
from storage.types import OutboxStatus
from tests.e2e.test_stories import PIN, Cast, join, ticket_of
from tests.support.chats import SUMBER_JAYA
from tests.support.live import FAKES, GROUP, Live, live_run
from tests.support.media import S3Server, s3_keys, s3_object, s3_server
from tests.support.open311 import make_key, report_form
from tests.support.stories import Chat, Schedules, TelegramChat, WhatsAppChat

OURS = ("bot.", "handlers.", "storage.")
NAME = "Siti Aminah"
TG_ID = 7300000123
WA_NUMBER = "+6281377712345"
STORIES = (
    "Pipa air bocor di depan rumah nomor 12 milik keluarga Aminah",
    "Lampu jalan gang Kenanga mati sejak Senin malam",
    "Draf cerita tentang tetangga yang belum dikirim",
)
PHOTOS = tuple(b"\xff\xd8\xff\xe0" + f"foto warga nomor {i} ".encode() * 60 for i in range(3))
EMAIL = "siti.aminah@example.id"
CALLED_IN = "Motor hilang dari depan warung keluarga Aminah"
NEIGHBOUR_PHOTO = b"\xff\xd8\xff\xe0" + b"foto tetangga " * 60


@dataclass
class Person:
    """The person who asks to be erased, what identifies them on this channel, and where the
    run keeps its files (the media folder, or an S3 bucket)."""

    chat: Chat
    secrets: tuple[str, ...]
    bucket: S3Server | None = None

    async def stored(self, folder: Path) -> list[tuple[str, bytes]]:
        """(name, bytes) of every stored file: in the folder, and in the bucket if any."""
        found = await asyncio.to_thread(in_folder, folder)
        if self.bucket is not None:
            for key in await asyncio.to_thread(s3_keys, self.bucket):
                stored = await asyncio.to_thread(s3_object, self.bucket, key)
                assert stored is not None
                found.append((key, stored[0]))
        return found


@pytest.fixture(params=("telegram", "whatsapp", "whatsapp+s3"))
async def story(
    request: pytest.FixtureRequest,
    migrated_url: str,
    sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[tuple[Cast, Person]]:
    schedules = Schedules()
    schedules.watch(monkeypatch)
    keep_at_twilio = {"delete_media_at_twilio": False}
    with contextlib.ExitStack() as stack:
        bucket = stack.enter_context(s3_server()) if request.param.endswith("+s3") else None
        settings = {} if bucket is None else in_bucket(bucket)
        async with live_run(
            migrated_url, sessions, tmp_path, whatsapp=keep_at_twilio, **settings
        ) as live:
            yield people(request.param, live, schedules, bucket)


def in_folder(folder: Path) -> list[tuple[str, bytes]]:
    """(path, bytes) of every file under the folder."""
    return [(str(p), p.read_bytes()) for p in folder.rglob("*") if p.is_file()]


def in_bucket(s3: S3Server) -> dict[str, Any]:
    """The run's settings for keeping files in the bucket (moto's S3 server)."""
    return {
        "media": MediaSettings(backend="s3", bucket=s3.bucket, endpoint_url=s3.endpoint_url),
        "s3_access_key_id": SecretStr(s3.access_key_id),
        "s3_secret_access_key": SecretStr(s3.secret_access_key),
    }


def people(
    channel: str, live: Live, schedules: Schedules, bucket: S3Server | None
) -> tuple[Cast, Person]:
    """The cast of this channel: the person, an officer, a coordinator, a neighbour."""
    if channel == "telegram":
        tg = live.telegram
        users = {TG_ID: ("Siti", "Aminah"), 7300000201: ("Andi", None)}
        users |= {7300000301: ("Sri", None), 7300000401: ("Dewi", None)}
        for user_id, (first, last) in users.items():
            tg.add_user(user_id, first, last)
            tg.get_bot().started.add(user_id)
        resident = TelegramChat(tg, TG_ID, TG_ID, NAME)
        cast = Cast(
            "telegram",
            live,
            schedules,
            resident=resident,
            alerts=TelegramChat(tg, GROUP, 7300000201, "Andi"),
            officer=TelegramChat(tg, 7300000201, 7300000201, "Andi"),
            coordinator=TelegramChat(tg, 7300000301, 7300000301, "Sri"),
            neighbour=TelegramChat(tg, 7300000401, 7300000401, "Dewi"),
        )
        return cast, Person(resident, (NAME, "Aminah", str(TG_ID)))
    wa, hook = live.twilio, live.whatsapp_hook
    officer = WhatsAppChat(wa, hook, "+6281311112222", "Andi")
    resident = WhatsAppChat(wa, hook, WA_NUMBER, NAME)
    cast = Cast(
        "whatsapp",
        live,
        schedules,
        resident=resident,
        alerts=officer,
        officer=officer,
        coordinator=WhatsAppChat(wa, hook, "+6281244445555", "Sri"),
        neighbour=WhatsAppChat(wa, hook, "+6281377700000", "Dewi"),
    )
    said = (NAME, "Aminah", WA_NUMBER, WA_NUMBER[1:], EMAIL, CALLED_IN, "Jl. Merpati 12")
    return cast, Person(resident, said, bucket)


async def file_report(
    chat: Chat, category: str, story: str, photo: bytes, *, anonymous: bool = False
) -> str:
    """/lapor with a category, the story, a pin, a photo and the name shown or not; the ticket."""
    await chat.say("/lapor", "Kejadiannya tentang apa?")
    await chat.tap(category, "Ceritakan")
    await chat.say(story, "Di mana")
    await chat.location(*PIN, expect="Ada foto")
    await chat.photo(photo, expect="anonim")
    await chat.tap("Ya" if anonymous else "Tidak")
    return ticket_of(await chat.tap("Kirim"))


async def settled(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Until the outbox has nothing left to send (the sender works in the background)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    waiting = (OutboxStatus.PENDING.value, OutboxStatus.SENDING.value)
    while True:
        async with sessions() as s:
            left = await s.scalar(
                select(func.count()).select_from(Outbox).where(Outbox.status.in_(waiting))
            )
        if not left:
            return
        assert loop.time() < deadline, f"{left} outbox row(s) still waiting"
        await asyncio.sleep(0.05)


async def every_value(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[str, str]]:
    """(table.column, value as text) for every value of every column of every table the
    database itself lists."""
    async with sessions() as s:
        tables = await s.run_sync(lambda sync: inspect(sync.connection()).get_table_names())
        found: list[tuple[str, str]] = []
        for table in tables:
            result = await s.execute(text(f'SELECT * FROM "{table}"'))
            columns = list(result.keys())
            for row in result.all():
                for column, value in zip(columns, row, strict=True):
                    if value is None:
                        continue
                    shown = (
                        value.decode("utf-8", "replace")
                        if isinstance(value, bytes | memoryview)
                        else str(value)
                    )
                    found.append((f"{table}.{column}", shown))
    assert len(tables) > 20, tables
    return found


async def test_after_hapusdata_nothing_of_the_person_is_left_anywhere(
    story: tuple[Cast, Person], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    cast, person = story
    resident = person.chat
    await cast.staff()
    if cast.channel == "whatsapp":  # a call centre filed a report for their number first
        _, key = await make_key(cast.live.sessions, SUMBER_JAYA, "Call centre")
        form = report_form(key, phone=WA_NUMBER, email=EMAIL, description=CALLED_IN)
        form |= {"first_name": "Siti", "last_name": "Aminah", "address_string": "Jl. Merpati 12"}
        async with httpx.AsyncClient(base_url=cast.live.url, trust_env=False) as http:
            filed = await http.post("/open311/v2/requests.json", data=form)
        assert filed.status_code == 201, filed.text
    await join(resident)
    await join(cast.neighbour)
    theirs = await file_report(cast.neighbour, "Kesehatan", "Warga demam tinggi", NEIGHBOUR_PHOTO)

    alerts_before = cast.alerts.mark()
    named = await file_report(resident, "Keamanan", STORIES[0], PHOTOS[0])
    alert = await cast.alerts.news(named, alerts_before)
    assert NAME in alert.text and STORIES[0] in alert.text
    hidden = await file_report(resident, "Keamanan", STORIES[1], PHOTOS[1], anonymous=True)
    news_from = resident.mark()
    await cast.alerts.press("Tangani")  # the newest alert's
    await resident.news("sedang ditangani", news_from)
    # Following the neighbour's report, as offered when filing a similar one.
    await resident.say("/lapor", "Kejadiannya tentang apa?")
    await resident.tap("Kesehatan", "Sudah ada laporan Kesehatan")
    await resident.tap("Ikut pantau laporan itu", theirs)
    await cast.coordinator.say("/ronda tim Pos Melati: Andi", "Pos Melati")
    await resident.say("/ronda ikut 1", "Pos Melati")
    assert "Siti" in (await cast.coordinator.say("/ronda", "Pos Melati")).text
    copy_from = resident.mark()
    await resident.say("/dataku", "Data pribadi Anda di KTN")
    await resident.news("Data pribadi Anda (JSON)", copy_from)
    # A draft left half-way, its photo stored.
    await resident.say("/lapor", "Kejadiannya tentang apa?")
    await resident.tap("Keamanan", "Ceritakan")
    await resident.say(STORIES[2], "Di mana")
    await resident.location(*PIN, expect="Ada foto")
    await resident.photo(PHOTOS[2], expect="anonim")
    await settled(cast.live.sessions)

    await resident.say("/hapusdata", "Hapus data pribadi Anda?")
    await resident.tap("Ya", "sudah dihapus")
    await settled(cast.live.sessions)

    secrets = (*person.secrets, *STORIES)
    leaks = [
        (where, value[:80])
        for where, value in await every_value(cast.live.sessions)
        for secret in secrets
        if secret in value
    ]
    assert leaks == [], "the database still holds the person"

    files = await person.stored(tmp_path / "media")
    for name, data in files:
        assert not any(s in name or s.encode() in data for s in secrets), name
        assert data not in PHOTOS, f"{name}: the person's photo is still stored"
    assert any(data == NEIGHBOUR_PHOTO for _, data in files), "the neighbour's stays"

    if cast.channel == "whatsapp":  # Twilio held the person's photos: deleted there too
        twilio = cast.live.twilio
        assert [m for m in twilio.media.values() if m.data in PHOTOS] == []
        assert len(twilio.deleted_media) == len(PHOTOS)
        assert [m.data for m in twilio.media.values()] == [NEIGHBOUR_PHOTO]

    # ktn-bot's own lines at every level; the libraries' from INFO (python-telegram-bot
    # logs every request's parameters at DEBUG, the message texts included).
    lines = [
        f"{r.name}: {r.getMessage()} {r.exc_text or ''}"
        for r in caplog.records
        if not r.name.startswith(FAKES) and (r.name.startswith(OURS) or r.levelno >= logging.INFO)
    ]
    assert len(lines) > 50, "the log was captured"
    assert [line for line in lines if any(s in line for s in secrets)] == []

    # The officers keep the reports, without the person.
    async with cast.live.sessions() as s:
        kept = {r.ticket: r for r in (await s.scalars(select(Report))).all()}
    for ticket in (named, hidden):
        assert kept[ticket].description == "dihapus atas permintaan pelapor"
        assert kept[ticket].reporter_id is None and kept[ticket].anonymous
    assert kept[theirs].description == "Warga demam tinggi"

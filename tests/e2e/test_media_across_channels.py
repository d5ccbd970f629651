"""Files across channels, end to end: the real `run` (webhook mode, WhatsApp on) with the Telegram
fake and the Twilio fake, files kept by ktn-bot in its media store under ``data_dir/media``.

A WhatsApp photo reaches the officers' Telegram group as that photo (uploaded once, then sent by
the file_id Telegram gave it); a Telegram photo reaches a WhatsApp officer as a MediaUrl that
serves the same bytes and answers 403 once expired or forged; a broadcast's photo and a WhatsApp
export go the same ways. Limits are kept (nothing of a refused file is stored), and a file
nobody keeps (no consent, a cancelled draft) is gone from the disk at once, while a report's
file stays.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import MediaSettings
from bot.media import links as links_module
from bot.sandbox.twilio_fake import FakeMessage
from storage.models import MediaBlob, MediaFileId, Report, ReportMedia
from storage.types import Role
from tests.support.chats import KAMPUNG_MELAYU, SUMBER_JAYA, make_invite
from tests.support.live import (
    GROUP,
    TG_FIRST,
    TG_LAST,
    TG_REPORTER,
    WA_NAME,
    WA_OFFICER,
    WA_REPORTER,
    Live,
    live_run,
)
from tests.support.media import ref_of, s3_keys, s3_object, s3_server, stored_files
from tests.support.telegram_run import file_report, invite_code

PHOTO = b"\xff\xd8\xff\xe0" + b"air setinggi lutut di depan balai desa " * 40
TG_PHOTO = b"\xff\xd8\xff\xe1" + b"pohon tumbang menutup jalan " * 40
PIN = (-3.7956, 102.2592)
OTHER_REPORTER = "+6281377700002"
COORDINATOR = 4003
TICKET = re.compile(r"KTN-[A-Z0-9]{6}")


def ticket_in(text: str) -> str:
    found = TICKET.search(text)
    assert found is not None, text
    return found.group()


def blobs_on_disk(root: Path) -> list[str]:
    """The files kept under data_dir/media, by name (their content's SHA-256)."""
    return [p.name for p in stored_files(root)]


async def count(sessions: async_sessionmaker[AsyncSession], model: object) -> int:
    async with sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)  # type: ignore[arg-type]


async def onboard(live: Live, number: str, name: str = WA_NAME) -> None:
    """Consent by "1", the village by name, then "1"."""
    assert "Apakah Anda setuju?" in await live.say(number, "Halo", name)
    assert "kelurahan/desa" in await live.say(number, "1", name)
    await live.say(number, "sumber jaya", name)
    assert "Sumber Jaya" in await live.say(number, "1", name)


async def to_photo_step(live: Live, number: str, name: str, category: str = "1") -> str:
    """LAPOR, a category, the story, a pin: the bot now asks for a photo."""
    await live.say(number, "LAPOR", name)
    await live.say(number, category, name)
    await live.say(number, "Air setinggi lutut menutup jalan desa", name)
    pin = live.twilio.inbound_location(number, *PIN, profile_name=name)
    return await live.deliver(number, pin)


async def send_photo(live: Live, number: str, data: bytes, name: str = WA_NAME) -> str:
    return await live.deliver(
        number, live.twilio.inbound_media(number, data, "image/jpeg", profile_name=name)
    )


async def wa_report(
    live: Live, number: str, photo: bytes, *, name: str = WA_NAME, category: str = "1"
) -> str:
    """A whole report on WhatsApp with a photo; returns its ticket."""
    await onboard(live, number, name)
    await to_photo_step(live, number, name, category)
    assert "Ya" in await send_photo(live, number, photo, name)  # anonymous?
    assert "Sudah benar?" in await live.say(number, "tidak", name)
    return ticket_in(await live.say(number, "kirim", name))


async def register_wa_officer(live: Live, number: str = WA_OFFICER) -> None:
    code = await make_invite(live.sessions, "officer", SUMBER_JAYA)
    assert "Apakah Anda setuju?" in await live.say(number, f"daftar {code}", "Bripka Wati")
    await live.say(number, "1", "Bripka Wati")


async def wa_photo_before(live: Live, number: str, contains: str) -> FakeMessage:
    """The photo sent just before the alert whose text holds ``contains`` (a buttons message
    carries no medium, so the photo goes first on its own)."""
    alert = await wa_message(live, number, contains)
    messages = live.twilio.messages_to(number)
    photo = messages[messages.index(alert) - 1]
    assert photo.media_urls and not photo.body
    return photo


async def wa_message(live: Live, number: str, contains: str) -> FakeMessage:
    """The first WhatsApp message to the number whose text holds ``contains``."""
    for count_ in range(1, 50):
        got = await live.twilio.wait_for_messages(number, count=count_, timeout=10)
        if contains in got[-1].body:
            return got[-1]
    raise AssertionError(f"no message with {contains!r} to {number}")


async def test_a_whatsapp_photo_reaches_the_telegram_group_as_that_photo_uploaded_once(
    live: Live, tmp_path: Path
) -> None:
    first = await wa_report(live, WA_REPORTER, PHOTO)
    alert = await live.telegram.wait_for_message(GROUP, contains=first, timeout=10)
    assert alert.kind == "photo" and alert.file_id is not None
    assert live.telegram.files[alert.file_id].data == PHOTO  # the same bytes, not "Foto/file: 1"
    assert alert.caption is not None and first in alert.caption

    # Another resident sends the same picture with another report: one stored file, referred to
    # twice, and Telegram gets it by the file_id its first upload was given (no second upload).
    second = await wa_report(live, OTHER_REPORTER, PHOTO, name="Sri Wahyuni", category="2")
    again = await live.telegram.wait_for_message(GROUP, contains=second, timeout=10)
    assert again.kind == "photo" and again.file_id == alert.file_id
    assert blobs_on_disk(tmp_path / "media") == [ref_of(PHOTO).removeprefix("sha256:")]
    async with live.sessions() as s:
        refs = (await s.scalars(select(ReportMedia.store_ref))).all()
        [cached] = (await s.scalars(select(MediaFileId))).all()
    assert refs == [ref_of(PHOTO), ref_of(PHOTO)]
    assert (cached.channel, cached.bot, cached.kind, cached.file_id) == (
        "telegram",
        "default",
        "photo",
        alert.file_id,
    )


async def test_a_telegram_photo_reaches_a_whatsapp_officer_by_a_link_that_expires(
    live: Live, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await register_wa_officer(live)
    live.telegram.add_user(TG_REPORTER, TG_FIRST, TG_LAST)
    ticket = ticket_in(await file_report(live.running, TG_REPORTER, photo=TG_PHOTO))
    # Downloaded from Telegram into ktn-bot's own store (getFile + the file download).
    assert blobs_on_disk(tmp_path / "media") == [ref_of(TG_PHOTO).removeprefix("sha256:")]
    assert live.telegram.call_counts["getFile"] == 1

    alert = await wa_photo_before(live, WA_OFFICER, ticket)
    [url] = alert.media_urls
    assert url.startswith(live.url + "/media/") and "?" not in url
    assert TG_FIRST not in url and str(TG_REPORTER) not in url  # no personal data in the URL
    async with httpx.AsyncClient(trust_env=False) as client:
        fetched = await client.get(url)  # as Twilio fetches it
        assert fetched.status_code == 200 and fetched.content == TG_PHOTO
        assert fetched.headers["content-type"] == "image/jpeg"

        token = url.rsplit("/", 1)[1]
        swapped = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
        forged = await client.get(f"{live.url}/media/{swapped}")
        assert (forged.status_code, forged.content) == (403, b"")

        later = time.time() + MediaSettings().url_ttl_seconds + 5
        monkeypatch.setattr(links_module, "wall_clock", lambda: later)  # the link's time is up
        expired = await client.get(url)
        assert (expired.status_code, expired.content) == (403, b"")


async def test_a_broadcast_photo_from_telegram_reaches_whatsapp_residents_and_the_group(
    live: Live,
) -> None:
    fake = live.telegram
    await onboard(live, WA_REPORTER)  # a resident of Sumber Jaya on WhatsApp
    fake.add_user(COORDINATOR, "Dewi", "Lestari")
    code = await invite_code(live.sessions, Role.COORDINATOR, KAMPUNG_MELAYU)
    fake.send_text(COORDINATOR, COORDINATOR, f"/daftar {code}")
    await fake.wait_for_message(COORDINATOR, predicate=lambda m: "consent:yes" in m.button_data())
    await live.running.press(COORDINATOR, COORDINATOR, "Setuju")
    await fake.wait_for_message(COORDINATOR)

    fake.send_text(COORDINATOR, COORDINATOR, "/umumkan")
    await fake.wait_for_message(COORDINATOR, contains="wilayah mana")
    await live.running.press(COORDINATOR, COORDINATOR, "Sumber Jaya")
    await fake.wait_for_message(COORDINATOR, contains="Untuk siapa")
    await live.running.press(COORDINATOR, COORDINATOR, "Warga dan grup petugas")
    await fake.wait_for_message(COORDINATOR, contains="Tulis isi pengumuman")
    mark = fake.mark()
    fake.send_photo(COORDINATOR, COORDINATOR, TG_PHOTO, caption="Kerja bakti Minggu 07.00")
    preview = await fake.wait_for_message(COORDINATOR, contains="Kerja bakti", since=mark)
    assert preview.kind == "photo"  # the coordinator sees the photo as residents will
    await fake.wait_for_message(COORDINATOR, contains="Begini pengumumannya", since=mark)
    await live.running.press(COORDINATOR, COORDINATOR, "Kirim")

    resident = await wa_message(live, WA_REPORTER, "Kerja bakti Minggu 07.00")
    [url] = resident.media_urls
    async with httpx.AsyncClient(trust_env=False) as client:
        assert (await client.get(url)).content == TG_PHOTO
    group = await fake.wait_for_message(GROUP, contains="Kerja bakti", timeout=10)
    assert group.kind == "photo" and group.file_id is not None
    assert fake.files[group.file_id].data == TG_PHOTO
    assert group.file_id == preview.file_id  # sent by the file_id Telegram already gave it


async def test_on_whatsapp_an_export_arrives_as_a_document_from_a_signed_link(live: Live) -> None:
    ticket = await wa_report(live, WA_REPORTER, PHOTO)
    number = "+6281244445555"
    code = await make_invite(live.sessions, "coordinator", SUMBER_JAYA)
    await live.say(number, f"daftar {code}", "Ibu Sri")
    await live.say(number, "1", "Ibu Sri")
    before = len(live.twilio.messages_to(number))
    await live.say(number, "EKSPOR", "Ibu Sri")
    message = live.twilio.messages_to(number)[before]
    assert "1 laporan" in message.body
    [url] = message.media_urls
    assert url.endswith(".csv") and url.startswith(live.url + "/media/")
    async with httpx.AsyncClient(trust_env=False) as client:
        fetched = await client.get(url)
    assert fetched.status_code == 200 and fetched.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(fetched.content.decode("utf-8"))))
    assert [row["ticket"] for row in rows] == [ticket]


@pytest.fixture
async def small_photos(
    migrated_url: str, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> AsyncIterator[Live]:
    """`run` taking photos of at most 2 KB ([media] max_mb)."""
    media = MediaSettings(max_mb={"photo": 2 / 1024, "video": 20, "voice": 20, "document": 20})
    async with live_run(migrated_url, sessions, tmp_path, media=media) as running:
        yield running


async def test_a_file_over_the_limit_is_refused_politely_and_nothing_is_stored(
    small_photos: Live, tmp_path: Path
) -> None:
    live = small_photos
    big = b"\xff\xd8\xff\xe0" + bytes(4096)

    # Telegram declares the size: refused before anything is downloaded.
    fake = live.telegram
    fake.add_user(TG_REPORTER, TG_FIRST, TG_LAST)
    fake.start(TG_REPORTER, payload=SUMBER_JAYA)
    await fake.wait_for_message(TG_REPORTER, contains="27 Tahun 2022")
    await live.running.press(TG_REPORTER, TG_REPORTER, "Setuju")
    await fake.wait_for_message(TG_REPORTER, contains="Sumber Jaya")
    fake.send_text(TG_REPORTER, TG_REPORTER, "/lapor")
    await fake.wait_for_message(TG_REPORTER, contains="Kejadiannya tentang apa")
    await live.running.press(TG_REPORTER, TG_REPORTER, "Keamanan")
    await fake.wait_for_message(TG_REPORTER, contains="Ceritakan")
    fake.send_text(TG_REPORTER, TG_REPORTER, "Motor hilang di depan masjid")
    await fake.wait_for_message(TG_REPORTER, contains="lokasi")
    fake.send_location(TG_REPORTER, TG_REPORTER, *PIN)
    await fake.wait_for_message(TG_REPORTER, contains="foto")
    mark = fake.mark()
    fake.send_photo(TG_REPORTER, TG_REPORTER, big)
    refusal = await fake.wait_for_message(TG_REPORTER, contains="terlalu besar", since=mark)
    assert "paling besar 2 KB" in refusal.content and "tidak kami simpan" in refusal.content
    # the question again: nothing lost, nothing kept
    await fake.wait_for_message(TG_REPORTER, contains="Ada foto kejadiannya", since=mark)
    assert fake.call_counts["getFile"] == 0

    # WhatsApp declares none: the download is cut as it passes the limit.
    await onboard(live, WA_REPORTER)
    await to_photo_step(live, WA_REPORTER, WA_NAME)
    answer = await send_photo(live, WA_REPORTER, big)
    assert "terlalu besar (paling besar 2 KB)" in answer

    assert stored_files(tmp_path / "media") == []
    assert await count(live.sessions, MediaBlob) == 0


async def test_a_photo_nobody_keeps_is_gone_and_a_reports_photo_stays(
    live: Live, tmp_path: Path
) -> None:
    media = tmp_path / "media"
    # Someone who never consented sends a photo: asked to consent, and nothing of it is kept
    # (not on disk here, and deleted at Twilio too).
    answer = await send_photo(live, WA_REPORTER, PHOTO)
    assert "Apakah Anda setuju?" in answer
    assert stored_files(media) == [] and await count(live.sessions, MediaBlob) == 0
    assert live.twilio.counters["media_fetched"] == 1

    # A draft's photo is kept while the draft lives, and goes when the draft is cancelled.
    await live.say(WA_REPORTER, "1")
    await live.say(WA_REPORTER, "sumber jaya")
    await live.say(WA_REPORTER, "1")
    await to_photo_step(live, WA_REPORTER, WA_NAME)
    await send_photo(live, WA_REPORTER, PHOTO)
    assert blobs_on_disk(media) == [ref_of(PHOTO).removeprefix("sha256:")]
    assert "Sudah benar?" in await live.say(WA_REPORTER, "tidak")
    assert "dibatalkan" in await live.say(WA_REPORTER, "batal")
    assert stored_files(media) == [] and await count(live.sessions, MediaBlob) == 0

    # A report's photo stays, also after the conversation goes on.
    await to_photo_step(live, WA_REPORTER, WA_NAME, category="2")
    await send_photo(live, WA_REPORTER, TG_PHOTO)
    await live.say(WA_REPORTER, "tidak")
    ticket = ticket_in(await live.say(WA_REPORTER, "kirim"))
    await live.say(WA_REPORTER, "LAPOR")
    await live.say(WA_REPORTER, "BATAL")
    assert blobs_on_disk(media) == [ref_of(TG_PHOTO).removeprefix("sha256:")]
    async with live.sessions() as s:
        report = await s.scalar(select(Report).where(Report.ticket == ticket))
        assert report is not None
        [kept] = (await s.scalars(select(ReportMedia))).all()
    assert (kept.report_id, kept.store_ref) == (report.id, ref_of(TG_PHOTO))


async def test_with_an_s3_bucket_files_cross_channels_and_go_as_they_do_on_disk(
    migrated_url: str, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    """``[media] backend = "s3"`` against moto's S3 server over HTTP on 127.0.0.1."""
    with s3_server() as s3:
        media = MediaSettings(
            backend="s3",
            bucket=s3.bucket,
            endpoint_url=s3.endpoint_url,
            region="ap-southeast-3",
            prefix="ktn/",
        )
        secrets = {
            "s3_access_key_id": SecretStr(s3.access_key_id),
            "s3_secret_access_key": SecretStr(s3.secret_access_key),
        }
        async with live_run(migrated_url, sessions, tmp_path, media=media, **secrets) as live:
            await register_wa_officer(live)
            ticket = await wa_report(live, WA_REPORTER, PHOTO, category="2")
            alert = await live.telegram.wait_for_message(GROUP, contains=ticket, timeout=10)
            assert alert.kind == "photo" and alert.file_id is not None
            assert live.telegram.files[alert.file_id].data == PHOTO

            live.telegram.add_user(TG_REPORTER, TG_FIRST, TG_LAST)
            second = ticket_in(await file_report(live.running, TG_REPORTER, photo=TG_PHOTO))
            [url] = (await wa_photo_before(live, WA_OFFICER, second)).media_urls
            async with httpx.AsyncClient(trust_env=False) as client:
                assert (await client.get(url)).content == TG_PHOTO  # served from the bucket

            # A cancelled draft's photo leaves the bucket too.
            await to_photo_step(live, WA_REPORTER, WA_NAME, category="3")
            cancelled = b"\xff\xd8\xff\xe2 a photo nobody sends"
            await send_photo(live, WA_REPORTER, cancelled)
            await live.say(WA_REPORTER, "tidak")
            assert "dibatalkan" in await live.say(WA_REPORTER, "batal")

        keys = await asyncio.to_thread(s3_keys, s3)
        kept = {ref_of(data).removeprefix("sha256:") for data in (PHOTO, TG_PHOTO)}
        assert keys == sorted(f"ktn/{digest[:2]}/{digest}" for digest in kept)
        for data in (PHOTO, TG_PHOTO):
            digest = ref_of(data).removeprefix("sha256:")
            found = await asyncio.to_thread(s3_object, s3, f"ktn/{digest[:2]}/{digest}")
            assert found == (data, "image/jpeg")
    assert stored_files(tmp_path / "media") == []  # nothing on the local disk

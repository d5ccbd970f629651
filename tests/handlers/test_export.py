"""Report exports: /ekspor in chat (a document on Telegram), the CLI, scope and anonymity."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram import Bot

from bot.channels.telegram.sender import send_reply
from bot.channels.whatsapp.capabilities import WHATSAPP
from bot.sandbox.telegram_fake import DEFAULT_TOKEN, TelegramFake
from bot.wiring import CHANNELS
from handlers.types import Channel, Document, MediaKind, Reply
from storage import migrate
from storage.db import create_engine, session_factory
from storage.models import Report
from storage.types import Role
from tests.support.chats import (
    WIYONO,
    Cast,
    FakeChat,
    core_config,
    load_areas,
    staff_cast,
    texts,
)
from tests.support.cli import cli


@pytest.fixture
async def cast(sessions: async_sessionmaker[AsyncSession]) -> Cast:
    cast = await staff_cast(sessions)
    await cast.reporter.file_report(description="Pencurian motor di gang 3")
    await cast.resident.file_report("kesehatan", "Banyak warga demam", anonymous=True)
    outsider = FakeChat(sessions, user_id=3500, name="Warga Wiyono")
    await outsider.onboard(WIYONO)
    await outsider.file_report(description="Jalan rusak di Wiyono")
    return cast


def parse_csv(reply: Reply) -> list[dict[str, str]]:
    assert reply.document is not None
    return list(csv.DictReader(io.StringIO(reply.document.data.decode("utf-8"))))


async def test_coordinator_gets_own_areas_as_csv_without_anonymous_reporters(cast: Cast) -> None:
    out = await cast.coordinator.send("/ekspor")
    (reply,) = [r for r in out.replies if r.document is not None]
    assert reply.document is not None and reply.document.filename.endswith(".csv")
    assert "2 laporan" in reply.text
    rows = parse_csv(reply)
    assert [r["description"] for r in rows] == ["Pencurian motor di gang 3", "Banyak warga demam"]
    named, anonymous = rows
    assert named["reporter_name"] == "Budi Santoso" and named["anonymous"] == "False"
    assert anonymous["anonymous"] == "True"
    assert (anonymous["reporter_name"], anonymous["reporter_phone"]) == ("", "")
    assert anonymous["reporter_channel"] == ""


async def test_geojson_export_has_no_reporter_keys_for_anonymous_reports(cast: Cast) -> None:
    out = await cast.coordinator.send("/export geojson")
    (reply,) = [r for r in out.replies if r.document is not None]
    assert reply.document is not None
    data = json.loads(reply.document.data)
    assert data["type"] == "FeatureCollection"
    props = [f["properties"] for f in data["features"]]
    assert [p["anonymous"] for p in props] == [False, True]
    assert "reporter_name" in props[0]
    assert not any(key.startswith("reporter") for key in props[1])


@pytest.mark.parametrize("role", ["resident", "officer", "other_officer"])
async def test_only_coordinators_export(cast: Cast, role: str) -> None:
    out = await cast.get(role).send("/ekspor")
    assert all(r.document is None for r in out.replies)
    assert "hanya untuk koordinator" in texts(out)


async def test_an_admin_of_another_village_exports_only_that_village(cast: Cast) -> None:
    admin = FakeChat(cast.coordinator.sessions, user_id=4020, name="Admin Wiyono")
    await admin.enrol(Role.ADMIN, WIYONO)
    out = await admin.send("/ekspor csv")
    (reply,) = [r for r in out.replies if r.document is not None]
    assert [r["description"] for r in parse_csv(reply)] == ["Jalan rusak di Wiyono"]


async def test_on_whatsapp_the_export_is_a_document_too(cast: Cast) -> None:
    """WhatsApp sends documents from a URL (the sender links the media store): the core makes
    the same document as on Telegram (tests/e2e/test_media_across_channels.py fetches it)."""
    wa = FakeChat(cast.coordinator.sessions, channel=Channel.WHATSAPP, user_id=6281234, name="Sri")
    await wa.enrol(Role.COORDINATOR, WIYONO)
    out = await wa.send("EKSPOR")
    (reply,) = [r for r in out.replies if r.document is not None]
    assert [r["description"] for r in parse_csv(reply)] == ["Jalan rusak di Wiyono"]


async def test_an_export_over_what_the_channel_sends_points_to_the_cli(cast: Cast) -> None:
    small = replace(WHATSAPP, sends={**WHATSAPP.sends, MediaKind.DOCUMENT: 100})
    wa = FakeChat(
        cast.coordinator.sessions,
        channel=Channel.WHATSAPP,
        user_id=6281235,
        name="Sri",
        config=replace(core_config(), channels={**CHANNELS, Channel.WHATSAPP.value: small}),
    )
    await wa.enrol(Role.COORDINATOR, WIYONO)
    out = await wa.send("EKSPOR")
    assert all(r.document is None for r in out.replies)
    assert "terlalu besar" in texts(out) and "ktn-bot export" in texts(out)


async def test_the_document_arrives_through_the_bot_api() -> None:
    async with TelegramFake() as fake, Bot(DEFAULT_TOKEN, base_url=fake.bot_api_url) as bot:
        fake.start(4003)
        data = b"ticket,category\r\nKTN-ABC234,keamanan\r\n"
        doc = Document("ktn-laporan-17.71.08-20250512.csv", data, "text/csv")
        await send_reply(bot, 4003, Reply("📎 1 laporan", document=doc))
        message = fake.last_message(4003)
        assert message is not None and message.kind == "document"
        assert message.filename == doc.filename and message.caption == "📎 1 laporan"
        assert message.file_id is not None and fake.files[message.file_id].data == data


async def test_cli_export_csv_and_geojson_with_area_and_since(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('[database]\nurl = "sqlite+aiosqlite:///data/ktn.db"\n')
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'data' / 'ktn.db'}")
    (tmp_path / "data").mkdir(exist_ok=True)
    await migrate.upgrade(engine)
    sessions = session_factory(engine)
    await load_areas(sessions)
    reporter = FakeChat(sessions, user_id=1001, name="Budi Santoso")
    await reporter.onboard()
    await reporter.file_report(description="Lama")
    reporter.advance(days=3)
    await reporter.file_report("kesehatan", "Baru", anonymous=True)
    outsider = FakeChat(sessions, user_id=3500, name="Warga Wiyono")
    await outsider.onboard(WIYONO)
    await outsider.file_report(description="Jalan rusak di Wiyono")
    async with sessions() as session:
        assert len((await session.scalars(select(Report))).all()) == 3
    await engine.dispose()

    since = f"{reporter.now:%Y-%m-%d}"  # the clock moved three days: only "Baru"
    out = tmp_path / "out.geojson"
    result = await asyncio.to_thread(
        cli, cfg, "export", "reports", "--format", "geojson", "--area", "17.71.08",
        "--since", since, "-o", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    features = json.loads(out.read_text(encoding="utf-8"))["features"]
    assert [f["properties"]["description"] for f in features] == ["Baru"]
    assert "reporter_name" not in features[0]["properties"]

    every = await asyncio.to_thread(cli, cfg, "export", "reports")
    assert every.returncode == 0, every.stderr
    descriptions = [r["description"] for r in csv.DictReader(io.StringIO(every.stdout))]
    assert sorted(descriptions) == ["Baru", "Jalan rusak di Wiyono", "Lama"]

    bad = await asyncio.to_thread(cli, cfg, "export", "reports", "--area", "99.99")
    assert bad.returncode == 1 and "unknown area code" in bad.stderr
    bad_date = await asyncio.to_thread(cli, cfg, "export", "reports", "--since", "kemarin")
    assert bad_date.returncode == 1 and "YYYY-MM-DD" in bad_date.stderr

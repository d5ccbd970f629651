"""/pengingat: coordinators add, list, pause and delete reminders; each occurrence goes out once,
in the area's time zone, to its groups and/or residents; permission checks for every action."""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.wiring import CHANNELS
from handlers.config import CoreConfig
from handlers.context import Context
from handlers.i18n import Catalog
from handlers.reminders import Sweep, send_due
from storage.models import Outbox, Reminder
from storage.types import Role
from tests.support.chats import ALERT_GROUP, WIYONO, Cast, FakeChat, core_config, staff_cast, texts

GRACE = timedelta(minutes=30)
# FakeChat's clock starts at 2025-05-12 03:00 UTC = 10:00 WIB (Sumber Jaya is WIB).
TODAY_19_WIB = datetime.fromisoformat("2025-05-12T12:00:00+00:00")


@pytest.fixture
async def cast(sessions: async_sessionmaker[AsyncSession]) -> Cast:
    return await staff_cast(sessions)


async def sweep(sessions: async_sessionmaker[AsyncSession], at: datetime) -> Sweep:
    async with sessions() as session:
        done = await send_due(session, Context(core_config(), now=at), grace=GRACE)
        await session.commit()
        return done


async def reminder_rows(sessions: async_sessionmaker[AsyncSession]) -> list[Outbox]:
    async with sessions() as session:
        stmt = select(Outbox).where(Outbox.kind == "reminder").order_by(Outbox.id)
        return list((await session.scalars(stmt)).all())


async def all_reminders(sessions: async_sessionmaker[AsyncSession]) -> list[Reminder]:
    async with sessions() as session:
        return list((await session.scalars(select(Reminder).order_by(Reminder.id))).all())


async def add(coordinator: FakeChat, line: str) -> int:
    outcome = await coordinator.send(f"/pengingat tambah {line}")
    assert "✅" in texts(outcome), texts(outcome)
    assert outcome.schedules_changed, "the scheduler is told at once"
    reminder_id = outcome.recorded.reminder_id
    return int(reminder_id)


async def test_a_daily_reminder_reaches_group_and_residents_once_per_evening(cast: Cast) -> None:
    sessions = cast.coordinator.sessions
    outcome = await cast.coordinator.send(
        "/pengingat tambah setiap hari 19:00 | semua | Jangan lupa 3M ya"
    )
    assert "Pertama dikirim 12/05/2025 19:00 WIB" in texts(outcome)  # the one date format
    listing = texts(await cast.coordinator.send("/pengingat"))
    assert "setiap hari 19:00" in listing and "grup dan warga" in listing

    assert (await sweep(sessions, TODAY_19_WIB - timedelta(minutes=1))).sent == []
    first = await sweep(sessions, TODAY_19_WIB)
    assert len(first.sent) == 1
    rows = await reminder_rows(sessions)
    chats = sorted(r.chat_id for r in rows)
    # The group, the reporter and the other resident; not the staff.
    assert chats == sorted([ALERT_GROUP, cast.reporter.user_id, cast.resident.user_id])
    assert {r.payload["reply"]["text"] for r in rows} == {"🔔 Jangan lupa 3M ya"}

    assert (await sweep(sessions, TODAY_19_WIB + timedelta(minutes=5))).sent == []
    assert len(await reminder_rows(sessions)) == 3, "an occurrence goes out once"
    await sweep(sessions, TODAY_19_WIB + timedelta(days=1))
    assert len(await reminder_rows(sessions)) == 6, "and the next evening again"


async def test_missed_while_down_within_grace_goes_out_once(cast: Cast) -> None:
    sessions = cast.coordinator.sessions
    await add(cast.coordinator, "setiap hari 19:00 | grup | Ronda dimulai jam 22")
    # The process was down from 18:50 to 19:20: the first sweep after start-up sends it.
    late = await sweep(sessions, TODAY_19_WIB + timedelta(minutes=20))
    assert late.sent == [(late.sent[0][0], TODAY_19_WIB)]
    # Restarted again at 19:25 (a crash loop): nothing twice.
    assert (await sweep(sessions, TODAY_19_WIB + timedelta(minutes=25))).sent == []
    [row] = await reminder_rows(sessions)
    assert row.chat_id == ALERT_GROUP
    assert row.dedupe_key is not None and "20250512T1200Z" in row.dedupe_key


async def test_missed_beyond_grace_is_skipped_and_logged(
    cast: Cast, caplog: pytest.LogCaptureFixture
) -> None:
    sessions = cast.coordinator.sessions
    reminder_id = await add(cast.coordinator, "setiap hari 19:00 | grup | Ronda dimulai jam 22")
    with caplog.at_level(logging.WARNING, logger="handlers.reminders"):
        result = await sweep(sessions, TODAY_19_WIB + timedelta(minutes=45))
    assert result.sent == [] and result.skipped == [(reminder_id, TODAY_19_WIB)]
    [record] = [r for r in caplog.records if "skipped" in r.getMessage()]
    assert f"reminder {reminder_id}" in record.getMessage()
    assert await reminder_rows(sessions) == []
    assert (await sweep(sessions, TODAY_19_WIB + timedelta(minutes=50))).skipped == []
    await sweep(sessions, TODAY_19_WIB + timedelta(days=1))
    assert len(await reminder_rows(sessions)) == 1, "the next evening goes out as usual"


async def test_a_week_down_sends_the_newest_occurrence_once_not_every_missed_one(
    cast: Cast, caplog: pytest.LogCaptureFixture
) -> None:
    sessions = cast.coordinator.sessions
    reminder_id = await add(cast.coordinator, "cron */5 * * * * | grup | Cek pos ronda")
    back = cast.coordinator.now + timedelta(days=7, minutes=2)  # 2 min after a 5-minute mark
    with caplog.at_level(logging.WARNING, logger="handlers.reminders"):
        result = await sweep(sessions, back)
    assert result.sent == [(reminder_id, back - timedelta(minutes=2))]
    assert any("sending only the newest" in r.getMessage() for r in caplog.records)
    assert len(await reminder_rows(sessions)) == 1


async def test_health_template_speaks_each_residents_language(cast: Cast) -> None:
    sessions = cast.coordinator.sessions
    await cast.reporter.send("/bahasa en")
    await cast.resident.send("/berhenti")  # opted out of announcements: not reminded either
    templates = texts(await cast.coordinator.send("/pengingat template"))
    assert "#posyandu" in templates and "#phbs" in templates
    unknown = texts(
        await cast.coordinator.send("/pengingat tambah setiap hari 08:00 | warga | #xyz")
    )
    assert "Templat #xyz tidak ada" in unknown
    await add(cast.coordinator, "tanggal 1 setiap bulan 08:00 | warga | #posyandu")
    await sweep(sessions, datetime.fromisoformat("2025-06-01T01:00:00+00:00"))  # 08:00 WIB
    [row] = await reminder_rows(sessions)
    assert row.chat_id == cast.reporter.user_id
    assert row.payload["reply"]["text"].startswith("🔔 Posyandu is tomorrow")


async def test_pause_resume_and_delete(cast: Cast) -> None:
    sessions = cast.coordinator.sessions
    reminder_id = await add(cast.coordinator, "setiap hari 19:00 | grup | Kerja bakti")
    paused = await cast.coordinator.send(f"/pengingat jeda {reminder_id}")
    assert f"Pengingat #{reminder_id} dijeda" in texts(paused)
    assert "(dijeda)" in texts(await cast.coordinator.send("/pengingat"))
    assert (await sweep(sessions, TODAY_19_WIB + timedelta(minutes=1))).sent == []
    cast.coordinator.now = TODAY_19_WIB + timedelta(minutes=2)
    await cast.coordinator.send(f"/pengingat lanjut {reminder_id}")
    assert (await sweep(sessions, TODAY_19_WIB + timedelta(minutes=3))).sent == [], (
        "what fell due while paused is not sent after resuming"
    )
    assert len((await sweep(sessions, TODAY_19_WIB + timedelta(days=1))).sent) == 1
    deleted = await cast.coordinator.send(f"pengingat hapus {reminder_id}")  # typed, no slash
    assert f"Pengingat #{reminder_id} dihapus" in texts(deleted)
    assert await all_reminders(sessions) == []


@pytest.mark.parametrize("who", ["officer", "reporter", "other_coordinator"])
async def test_only_the_areas_coordinator_may_manage_its_reminders(cast: Cast, who: str) -> None:
    sessions = cast.coordinator.sessions
    reminder_id = await add(cast.coordinator, "setiap hari 19:00 | semua | Jangan lupa 3M")
    if who == "other_coordinator":
        person = FakeChat(sessions, user_id=4010, name="Camat Lain")
        await person.enrol(Role.COORDINATOR, WIYONO)
    else:
        person = cast.get(who)
    answers = [
        texts(await person.send("/pengingat")),
        texts(await person.send(f"/pengingat jeda {reminder_id}")),
        texts(await person.send(f"/pengingat lanjut {reminder_id}")),
        texts(await person.send(f"/pengingat hapus {reminder_id}")),
        texts(await person.send("/pengingat template")),
    ]
    if who == "other_coordinator":
        assert "Belum ada pengingat" in answers[0], "another area's reminders are not listed"
        assert all(f"Pengingat #{reminder_id} tidak ada di wilayah Anda" in a for a in answers[1:4])
    else:
        assert all("hanya bisa diatur oleh koordinator" in a for a in answers)
        added = await person.send("/pengingat tambah setiap hari 20:00 | warga | Halo")
        assert "hanya bisa diatur oleh koordinator" in texts(added)
        assert not added.schedules_changed
    [reminder] = await all_reminders(sessions)
    assert reminder.id == reminder_id and not reminder.paused


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("setiap hari | warga | Halo", "Jamnya belum ada"),
        ("setiap hari 19:00 | tetangga | Halo", 'Sasaran "tetangga" tidak dikenali'),
        ("setiap hari 19:00 | warga", "Cara memakai /pengingat"),
        ("cron 0 9 * * 9 | grup | Halo", "Cron tidak dikenali"),
        ("tanggal 40 setiap bulan 09:00 | grup | Halo", "Tanggalnya tidak dikenali"),
    ],
)
async def test_bad_input_gets_a_polite_answer_and_changes_nothing(
    cast: Cast, line: str, expected: str
) -> None:
    outcome = await cast.coordinator.send(f"/pengingat tambah {line}")
    assert expected in texts(outcome)
    assert await all_reminders(cast.coordinator.sessions) == []


async def test_english_words_and_the_english_command(cast: Cast) -> None:
    await cast.coordinator.send("/language en")
    outcome = await cast.coordinator.send(
        "/reminders add every Monday 08:00 | groups | Weekly clean-up"
    )
    assert "First sent 19/05/2025 08:00 WIB" in texts(outcome)
    assert "every Monday 08:00" in texts(await cast.coordinator.send("/reminders"))


async def test_the_list_speaks_the_readers_language_whatever_words_were_typed(cast: Cast) -> None:
    await add(cast.coordinator, "setiap hari 19:00 | warga | Jangan lupa 3M")
    await add(cast.coordinator, "setiap Jumat 07:00 | grup | Kerja bakti")
    await add(cast.coordinator, "tanggal 1 setiap bulan 09:00 | semua | #posyandu")
    await add(cast.coordinator, "cron 0 7 * * 1-5 | grup | Apel pagi")
    await cast.coordinator.send("/language en")
    listing = texts(await cast.coordinator.send("/reminders"))
    for words in ("every day 19:00", "every Friday 07:00", "on day 1 of every month 09:00"):
        assert words in listing
    assert "cron 0 7 * * 1-5" in listing
    assert "setiap" not in listing and "tanggal" not in listing
    await cast.coordinator.send("/bahasa id")
    listing = texts(await cast.coordinator.send("/pengingat"))
    assert "setiap hari 19:00" in listing and "setiap Jumat 07:00" in listing
    assert "tanggal 1 setiap bulan 09:00" in listing


async def test_help_shows_the_coordinator_commands_to_coordinators_only(cast: Cast) -> None:
    assert "/pengingat" in texts(await cast.coordinator.send("/bantuan"))
    assert "/pengingat" not in texts(await cast.officer.send("/bantuan"))
    assert "/pengingat" not in texts(await cast.resident.send("/bantuan"))


async def test_in_a_group_the_commands_point_to_the_private_chat(cast: Cast) -> None:
    outcome = await cast.coordinator.in_group().send("/pengingat")
    assert "t.me/ktn_bot" in texts(outcome)
    assert await all_reminders(cast.coordinator.sessions) == []


async def test_a_deployment_rewrites_and_adds_health_templates_without_code(
    cast: Cast, tmp_path: Path
) -> None:
    overrides = tmp_path / "texts.toml"
    overrides.write_text(
        '[id]\n"template.posyandu" = "Posyandu Melati buka Sabtu jam 08.00."\n'
        '"template.jumantik" = "Jumat bersih: periksa jentik di bak mandi."\n',
        encoding="utf-8",
    )
    config = CoreConfig(catalog=Catalog.load(overrides), channels=CHANNELS)
    coordinator = dataclasses.replace(cast.coordinator, config=config, history=[])
    assert "#jumantik" in texts(await coordinator.send("/pengingat template"))
    await add(coordinator, "setiap Jumat 07:00 | grup | #jumantik")
    await add(coordinator, "setiap Sabtu 06:00 | grup | #posyandu")
    async with cast.coordinator.sessions() as session:
        for at in (
            "2025-05-16T00:05:00+00:00",
            "2025-05-16T23:05:00+00:00",
        ):  # 07:00 Fri, 06:00 Sat WIB
            await send_due(session, Context(config, now=datetime.fromisoformat(at)), grace=GRACE)
        await session.commit()
    sent = [r.payload["reply"]["text"] for r in await reminder_rows(cast.coordinator.sessions)]
    assert sent == [
        "🔔 Jumat bersih: periksa jentik di bak mandi.",
        "🔔 Posyandu Melati buka Sabtu jam 08.00.",
    ]


def broken_english(tmp_path: Path, key: str, text: str) -> CoreConfig:
    """A deployment's English override that loads (same placeholders) but cannot be formatted."""
    overrides = tmp_path / "texts.toml"
    overrides.write_text(f'[en]\n"{key}" = "{text}"\n', encoding="utf-8")
    return CoreConfig(catalog=Catalog.load(overrides), channels=CHANNELS)


async def test_a_reminder_that_fails_does_not_hold_back_the_others(
    cast: Cast, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Residents who read English get reminder 1; the English text is broken, so it fails. The
    groups' reminders 2 and 3 go out; reminder 1 is tried again within the grace, then skipped,
    and its next evening goes out once the text is fixed."""
    sessions = cast.coordinator.sessions
    await cast.reporter.send("/bahasa en")
    bad = await add(cast.coordinator, "setiap hari 19:00 | warga | Jangan lupa 3M ya")
    good = [
        await add(cast.coordinator, "setiap hari 19:00 | grup | Kerja bakti"),
        await add(cast.coordinator, "setiap hari 19:00 | grup | Ronda dimulai jam 22"),
    ]
    broken = broken_english(tmp_path, "reminder.message", "🔔 {text:q}")

    async def sweep_with(config: CoreConfig, at: datetime) -> Sweep:
        async with sessions() as session:
            done = await send_due(session, Context(config, now=at), grace=GRACE)
            await session.commit()
            return done

    with caplog.at_level(logging.WARNING):
        first = await sweep_with(broken, TODAY_19_WIB)
    assert first.sent == [(good[0], TODAY_19_WIB), (good[1], TODAY_19_WIB)]
    assert first.failed == [bad]
    rows = await reminder_rows(sessions)
    assert [(r.chat_id, r.payload["reply"]["text"]) for r in rows] == [
        (ALERT_GROUP, "🔔 Kerja bakti"),
        (ALERT_GROUP, "🔔 Ronda dimulai jam 22"),
    ], "nobody got half of reminder 1: not even the residents reading Indonesian"
    [line] = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert line.startswith(f"reminder: reminder {bad} failed (ValueError at handlers/i18n.py:")
    assert "3M" not in line

    again = await sweep_with(broken, TODAY_19_WIB + timedelta(minutes=1))
    assert (again.sent, again.failed) == ([], [bad]), "tried again; the others not twice"
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        late = await sweep_with(broken, TODAY_19_WIB + timedelta(minutes=31))
    assert (late.failed, late.skipped) == ([], [(bad, TODAY_19_WIB)]), "past the grace: skipped"
    assert any(f"reminder {bad}: missed" in r.getMessage() for r in caplog.records)
    assert len(await reminder_rows(sessions)) == 2

    fixed = core_config()
    tomorrow = await sweep_with(fixed, TODAY_19_WIB + timedelta(days=1))
    assert sorted(r for r, _ in tomorrow.sent) == sorted([bad, *good]) and tomorrow.failed == []
    texts_by_chat = {
        (r.chat_id, r.payload["reply"]["text"])
        for r in await reminder_rows(sessions)
        if r.payload["reminder_id"] == bad
    }
    assert texts_by_chat == {
        (cast.reporter.user_id, "🔔 Jangan lupa 3M ya"),
        (cast.resident.user_id, "🔔 Jangan lupa 3M ya"),
    }

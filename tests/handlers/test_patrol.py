"""/ronda: teams, rotation, tonight's team to the group and a "Hadir" DM to members, "Aman" or a
report afterwards, confirmations for the recap; coordinators only, of their own area."""

from __future__ import annotations

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
from handlers.patrol import announce_due
from storage.areas import get_by_code
from storage.models import Outbox, PatrolShift, PatrolTeam
from storage.patrol import patrol_confirmations
from storage.types import Role
from tests.support.chats import (
    ALERT_GROUP,
    SUMBER_JAYA,
    WIYONO,
    Cast,
    FakeChat,
    core_config,
    link_group,
    staff_cast,
    texts,
)

GRACE = timedelta(minutes=30)
TONIGHT_21_WIB = datetime.fromisoformat("2025-05-12T14:00:00+00:00")


@pytest.fixture
async def cast(sessions: async_sessionmaker[AsyncSession]) -> Cast:
    cast = await staff_cast(sessions)
    coordinator = cast.coordinator
    # The reporter (Budi Santoso) is in team 1 by name and links himself with /ronda ikut 1.
    # The camat's coordinator sets up Sumber Jaya's patrol by its code.
    at = f"/ronda {SUMBER_JAYA}"
    assert "ke-1" in texts(await coordinator.send(f"{at} tim Pos Melati: Andi, Budi Santoso"))
    assert "ke-2" in texts(await coordinator.send(f"{at} tim Pos Mawar: Cici, Dedi"))
    scheduled = await coordinator.send(f"{at} jadwal harian 21:00")
    assert "harian" in texts(scheduled) and scheduled.schedules_changed, "synced at once"
    assert "Pos Melati" in texts(await cast.reporter.send("ronda ikut 1"))
    return cast


async def announce(sessions: async_sessionmaker[AsyncSession], at: datetime) -> list[int]:
    async with sessions() as session:
        done = await announce_due(session, Context(core_config(), now=at), grace=GRACE)
        await session.commit()
        return done


async def patrol_rows(sessions: async_sessionmaker[AsyncSession]) -> list[Outbox]:
    async with sessions() as session:
        stmt = select(Outbox).where(Outbox.kind == "patrol").order_by(Outbox.id)
        return list((await session.scalars(stmt)).all())


async def confirmations(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[str, ...]]:
    async with sessions() as session:
        area = await get_by_code(session, SUMBER_JAYA)
        assert area is not None
        found = await patrol_confirmations(
            session,
            [area.id],
            TONIGHT_21_WIB - timedelta(hours=1),
            TONIGHT_21_WIB + timedelta(days=2),
        )
    return [
        (
            r.shift_date,
            r.team_name,
            r.member_name,
            "hadir" if r.confirmed_at else "-",
            r.outcome or "-",
        )
        for r in found
    ]


async def test_tonights_team_is_announced_once_and_members_confirm(cast: Cast) -> None:
    sessions = cast.coordinator.sessions
    overview = texts(await cast.coordinator.send(f"/ronda {SUMBER_JAYA}"))
    assert "1. Pos Melati: Andi, Budi Santoso ✓" in overview
    assert "Malam ini: Pos Melati" in overview

    assert await announce(sessions, TONIGHT_21_WIB - timedelta(minutes=1)) == []
    assert len(await announce(sessions, TONIGHT_21_WIB)) == 2
    assert await announce(sessions, TONIGHT_21_WIB + timedelta(minutes=1)) == [], "once a night"
    group, dm = await patrol_rows(sessions)
    assert group.chat_id == ALERT_GROUP
    assert "Ronda malam ini (12/05/2025) — Pos Melati" in group.payload["reply"]["text"]
    assert "• Andi\n• Budi Santoso" in group.payload["reply"]["text"]
    assert dm.chat_id == cast.reporter.user_id
    [[label, hadir]] = dm.payload["reply"]["options"]
    assert label == "✅ Hadir"

    reporter = cast.reporter
    reporter.now = TONIGHT_21_WIB + timedelta(minutes=40)
    present = await reporter.send(button=hadir)
    assert present.notice == "Hadir tercatat"
    assert "kehadiran Anda di ronda 12/05/2025 tercatat" in texts(present)
    reporter.advance(hours=6)
    safe = await reporter.press("🛡 Aman")
    assert "aman, tercatat" in texts(safe)
    assert await confirmations(sessions) == [
        ("2025-05-12", "Pos Melati", "Andi", "-", "-"),
        ("2025-05-12", "Pos Melati", "Budi Santoso", "hadir", "aman"),
    ]

    # The next night is team 2's (daily rotation).
    await announce(sessions, TONIGHT_21_WIB + timedelta(days=1))
    rows = await patrol_rows(sessions)
    assert "Pos Mawar" in rows[-1].payload["reply"]["text"]
    assert rows[-1].chat_id == ALERT_GROUP, "team 2 has nobody on the bot: the group only"


async def test_report_an_incident_from_the_patrol_message(cast: Cast) -> None:
    sessions = cast.coordinator.sessions
    await announce(sessions, TONIGHT_21_WIB)
    dm = (await patrol_rows(sessions))[-1]
    await cast.reporter.send(button=dm.payload["reply"]["options"][0][1])
    outcome = await cast.reporter.press("🚨 Lapor kejadian")
    assert outcome.recorded.state == "category", "the report flow starts"
    assert outcome.recorded.patrol["outcome"] == "incident"


async def test_someone_not_on_the_team_cannot_confirm(cast: Cast) -> None:
    sessions = cast.coordinator.sessions
    await announce(sessions, TONIGHT_21_WIB)
    dm = (await patrol_rows(sessions))[-1]
    outcome = await cast.resident.send(button=dm.payload["reply"]["options"][0][1])
    assert outcome.notice == "Tombol ini bukan untuk giliran ronda Anda."
    assert ("2025-05-12", "Pos Melati", "Budi Santoso", "-", "-") in await confirmations(sessions)


async def test_announcement_missed_beyond_grace_is_skipped_and_logged(
    cast: Cast, caplog: pytest.LogCaptureFixture
) -> None:
    sessions = cast.coordinator.sessions
    with caplog.at_level(logging.WARNING, logger="handlers.patrol"):
        assert await announce(sessions, TONIGHT_21_WIB + timedelta(minutes=50)) == []
    assert any("skipped" in r.getMessage() for r in caplog.records)
    assert await patrol_rows(sessions) == []
    assert await confirmations(sessions) == [], "a skipped night is no missed confirmation"
    # Within the grace after a restart it still goes out (the next night).
    assert len(await announce(sessions, TONIGHT_21_WIB + timedelta(days=1, minutes=20))) == 1


@pytest.mark.parametrize("who", ["officer", "resident", "other_coordinator"])
async def test_only_the_areas_coordinator_manages_patrol(cast: Cast, who: str) -> None:
    sessions = cast.coordinator.sessions
    if who == "other_coordinator":
        person = FakeChat(sessions, user_id=4010, name="Camat Lain")
        await person.enrol(Role.COORDINATOR, WIYONO)
    else:
        person = cast.get(who)
    answers = [
        texts(await person.send(f"/ronda {SUMBER_JAYA} tim Pos Liar: X, Y")),
        texts(await person.send(f"/ronda {SUMBER_JAYA} hapus 1")),
        texts(await person.send(f"/ronda {SUMBER_JAYA} jadwal mingguan 22:00")),
        texts(await person.send(f"/ronda {SUMBER_JAYA} jeda")),
        texts(await person.send(f"/ronda {SUMBER_JAYA} lanjut")),
        texts(await person.send(f"/ronda {SUMBER_JAYA}")),
    ]
    if who == "other_coordinator":
        assert all(f"Wilayah {SUMBER_JAYA} tidak ada atau bukan wilayah Anda" in a for a in answers)
        assert "Tim nomor 1 tidak ada" in texts(await person.send("/ronda hapus 1"))
    else:
        assert all("diatur oleh koordinator" in a for a in answers)
    async with sessions() as session:
        area = await get_by_code(session, SUMBER_JAYA)
        assert area is not None
        names = (
            await session.scalars(select(PatrolTeam.name).where(PatrolTeam.area_id == area.id))
        ).all()
    assert sorted(names) == ["Pos Mawar", "Pos Melati"]
    assert len(await announce(sessions, TONIGHT_21_WIB)) == 2, "the rotation still runs"


async def test_pause_stops_the_announcements(cast: Cast) -> None:
    sessions = cast.coordinator.sessions
    assert "dijeda" in texts(await cast.coordinator.send(f"/ronda {SUMBER_JAYA} jeda"))
    assert await announce(sessions, TONIGHT_21_WIB) == []
    async with sessions() as session:
        assert (await session.scalars(select(PatrolShift))).all() == []


async def test_a_rotation_set_after_tonights_time_starts_tomorrow_without_a_skip(
    cast: Cast, caplog: pytest.LogCaptureFixture
) -> None:
    sessions = cast.coordinator.sessions
    cast.coordinator.now = TONIGHT_21_WIB + timedelta(hours=1)  # 22:00 WIB
    await cast.coordinator.send(f"/ronda {SUMBER_JAYA} jadwal mingguan 21:00")
    with caplog.at_level(logging.WARNING, logger="handlers.patrol"):
        assert await announce(sessions, TONIGHT_21_WIB + timedelta(hours=1, minutes=5)) == []
    assert not caplog.records, "nothing was missed: the rotation had not begun"
    await announce(sessions, TONIGHT_21_WIB + timedelta(days=1))
    [group, _dm] = await patrol_rows(sessions)
    assert "(13/05/2025) — Pos Melati" in group.payload["reply"]["text"]
    # Weekly: the same team all week, then the next one.
    await announce(sessions, TONIGHT_21_WIB + timedelta(days=7))
    await announce(sessions, TONIGHT_21_WIB + timedelta(days=8))
    texts_by_night = [r.payload["reply"]["text"] for r in await patrol_rows(sessions)]
    assert "(19/05/2025) — Pos Melati" in texts_by_night[2]
    assert "(20/05/2025) — Pos Mawar" in texts_by_night[-1]


async def test_an_area_whose_announcement_fails_does_not_hold_back_the_others(
    cast: Cast, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Budi reads English and the English DM text is broken: Sumber Jaya's announcement fails
    and is tried again within the grace, then skipped; Wiyono's goes out once."""
    sessions = cast.coordinator.sessions
    wiyono_group = -500
    await link_group(sessions, WIYONO, chat_id=wiyono_group, title="Pos Wiyono")
    lurah = FakeChat(sessions, user_id=4010, name="Lurah Wiyono")
    await lurah.enrol(Role.COORDINATOR, WIYONO)
    assert "ke-1" in texts(await lurah.send("/ronda tim Pos Kenanga: Eko, Fajar"))
    assert "harian" in texts(await lurah.send("/ronda jadwal harian 21:00"))
    await cast.reporter.send("/bahasa en")
    overrides = tmp_path / "texts.toml"
    overrides.write_text('[en]\n"patrol.dm" = "Tonight ({date:q}) with {team}"\n', encoding="utf-8")
    broken = CoreConfig(catalog=Catalog.load(overrides), channels=CHANNELS)

    async def announce_with(config: CoreConfig, at: datetime) -> list[int]:
        async with sessions() as session:
            done = await announce_due(session, Context(config, now=at), grace=GRACE)
            await session.commit()
            return done

    with caplog.at_level(logging.WARNING):
        assert len(await announce_with(broken, TONIGHT_21_WIB)) == 1
    [row] = await patrol_rows(sessions)
    assert row.chat_id == wiyono_group and "Pos Kenanga" in row.payload["reply"]["text"]
    async with sessions() as session:
        sumber = await get_by_code(session, SUMBER_JAYA)
        assert sumber is not None
    [line] = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert line.startswith(f"patrol: area {sumber.id} failed (ValueError at handlers/i18n.py:")

    assert await announce_with(broken, TONIGHT_21_WIB + timedelta(minutes=1)) == []
    assert len(await patrol_rows(sessions)) == 1, "Wiyono's not twice; Sumber Jaya's still failing"
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert await announce_with(broken, TONIGHT_21_WIB + timedelta(minutes=31)) == []
    assert not [r for r in caplog.records if "failed" in r.getMessage()]
    assert any("skipped" in r.getMessage() for r in caplog.records), "past the grace: skipped"

    tomorrow = await announce_with(core_config(), TONIGHT_21_WIB + timedelta(days=1))
    assert {r.chat_id for r in await patrol_rows(sessions) if r.id in tomorrow} == {
        ALERT_GROUP,
        wiyono_group,
    }


async def test_an_old_hadir_pressed_after_aman_says_it_is_recorded_without_new_buttons(
    cast: Cast,
) -> None:
    sessions = cast.coordinator.sessions
    await announce(sessions, TONIGHT_21_WIB)
    dm = (await patrol_rows(sessions))[-1]
    [[_, hadir]] = dm.payload["reply"]["options"]
    reporter = cast.reporter
    reporter.now = TONIGHT_21_WIB + timedelta(minutes=40)
    await reporter.send(button=hadir)
    reporter.advance(hours=6)
    await reporter.press("🛡 Aman")
    again = await reporter.send(button=hadir)  # the old message's button, pressed again
    assert again.notice == "Laporan ronda 12/05/2025 sudah tercatat sebelumnya."
    assert texts(again) == "Laporan ronda 12/05/2025 sudah tercatat sebelumnya."
    assert all(not reply.options for reply in again.replies), "no Aman / Lapor again"
    assert await confirmations(sessions) == [
        ("2025-05-12", "Pos Melati", "Andi", "-", "-"),
        ("2025-05-12", "Pos Melati", "Budi Santoso", "hadir", "aman"),
    ]


async def test_a_resident_sees_the_teams_and_their_numbers(cast: Cast) -> None:
    shown = texts(await cast.resident.send("/ronda"))
    assert shown == (
        "Tim ronda:\n"
        "1. Pos Melati: Andi, Budi Santoso\n"
        "2. Pos Mawar: Cici, Dedi\n"
        "Ikut salah satu tim: ketik /ronda ikut NOMOR, misalnya /ronda ikut 1."
    )
    assert "Pos Mawar" in texts(await cast.resident.send("/ronda ikut 2"))
    await cast.resident.send("/language en")
    assert "Join a team: type /patrol join NUMBER" in texts(await cast.resident.send("/patrol"))


async def test_an_erased_member_leaves_the_teams_by_name(cast: Cast) -> None:
    at = f"/ronda {SUMBER_JAYA}"
    assert "Budi Santoso ✓" in texts(await cast.coordinator.send(at))
    await cast.reporter.send("/hapusdata")
    assert "sudah dihapus" in texts(await cast.reporter.press("Ya"))
    shown = texts(await cast.coordinator.send(at))
    assert "Budi" not in shown and "Pos Melati: Andi" in shown


async def test_a_resident_of_an_area_without_teams_is_told_so(cast: Cast) -> None:
    elsewhere = FakeChat(cast.coordinator.sessions, user_id=3999, name="Warga Wiyono")
    await elsewhere.onboard(WIYONO)
    assert texts(await elsewhere.send("/ronda")) == (
        "Belum ada tim ronda di wilayah Anda. Tim dibentuk oleh koordinator wilayah."
    )

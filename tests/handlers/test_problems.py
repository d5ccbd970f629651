"""Problems (SARA) in chat: /masalah with its suggestions, Terima / Abaikan, the group alert's
"Masalah…", stages moved in order with the reporters told (naming nobody), the owners'
reminders and their "selesai", recaps and the problems' export."""

from __future__ import annotations

import csv
import dataclasses
import io
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers import problems
from handlers.config import ProblemRules
from handlers.context import Context
from handlers.recap import Period, compute_stats, recap_text
from storage import problems as store
from storage.models import Area, Contact, Outbox, Problem, ProblemSuggestion
from tests.support.chats import SUMBER_JAYA, Cast, FakeChat, staff_cast, texts


@pytest.fixture
async def cast(sessions: async_sessionmaker[AsyncSession]) -> Cast:
    return await staff_cast(sessions)


async def rows(sessions: async_sessionmaker[AsyncSession], model: Any) -> list[Any]:
    async with sessions() as session:
        return list((await session.scalars(select(model).order_by(model.id))).all())


async def three_reports(cast: Cast, *, anonymous_last: bool = False) -> list[dict[str, Any]]:
    """Three keamanan reports of Sumber Jaya (the reporter twice, a neighbour once)."""
    filed = []
    for chat, anonymous in ((cast.reporter, False), (cast.resident, False), (cast.reporter, True)):
        chat.advance(minutes=30)
        outcome = await chat.file_report(anonymous=anonymous and anonymous_last)
        assert outcome.recorded.filed is not None, texts(outcome)
        filed.append(dict(outcome.recorded.filed))
    later = cast.reporter.now + timedelta(minutes=1)  # staff act after the last report
    for person in (cast.officer, cast.other_officer, cast.coordinator):
        person.now = later
    return filed


def option_data(chat: FakeChat) -> list[str]:
    return [o.data for o in chat.options]


async def test_three_reports_make_one_suggestion_accepted_with_one_tap(cast: Cast) -> None:
    filed = await three_reports(cast)
    shown = await cast.officer.send("/masalah")
    text = texts(shown)
    assert "🧩 Masalah di Sumber Jaya" in text and "Belum ada masalah terbuka." in text
    assert "1. 3 laporan Keamanan di Sumber Jaya dalam 30 hari terakhir" in text
    [suggestion] = await rows(cast.officer.sessions, ProblemSuggestion)
    shown = f"{suggestion.id}:{store.stamp(suggestion.fingerprint)}"  # the set of reports shown
    assert option_data(cast.officer) == [f"pok:{shown}", f"pno:{shown}"]
    assert [o.label for o in cast.officer.options] == ["Terima 1", "Abaikan 1"]

    accepted = await cast.officer.press("Terima 1")
    assert "✅ Masalah #1 dibuat: Keamanan berulang di Sumber Jaya (3 laporan)." in texts(accepted)
    [problem] = await rows(cast.officer.sessions, Problem)
    assert (problem.stage, problem.pillar) == ("scanning", "keamanan")
    async with cast.officer.sessions() as s:
        linked = await store.report_ids_of(s, problem.id)
    assert linked == sorted(f["report_id"] for f in filed)

    again = texts(await cast.officer.send("/masalah"))
    assert "#1 Keamanan berulang di Sumber Jaya — Pemindaian · 3 laporan" in again
    assert "Saran masalah" not in again
    # A second tap on the old Terima makes nothing more.
    late = await cast.officer.send(button=f"pok:{suggestion.id}")
    assert "sudah diputuskan" in texts(late)
    assert len(await rows(cast.officer.sessions, Problem)) == 1


async def test_a_dismissed_suggestion_stays_dismissed(cast: Cast) -> None:
    await three_reports(cast)
    await cast.officer.send("/masalah")
    dismissed = await cast.officer.press("Abaikan 1")
    assert "tidak akan disarankan lagi" in texts(dismissed)
    for hours in (1, 24, 24 * 7):  # the leader's sweep and /masalah, later
        cast.officer.advance(hours=hours)
        async with cast.officer.sessions() as s:
            assert await problems.suggest_everywhere(s, cast.officer.context()) == []
            await s.commit()
        assert "Saran masalah" not in texts(await cast.officer.send("/masalah"))
    [only] = await rows(cast.officer.sessions, ProblemSuggestion)
    assert only.state == "dismissed"

    # A fourth report makes a new set of reports: proposed again, with all four.
    cast.reporter.now = cast.officer.now
    await cast.reporter.file_report()
    text = texts(await cast.officer.send("/masalah"))
    assert "1. 4 laporan Keamanan di Sumber Jaya" in text


async def test_a_tap_on_a_suggestion_that_changed_since_it_was_shown_decides_nothing(
    cast: Cast,
) -> None:
    """Terima under an old /masalah, after a fourth report joined the suggestion: the set of
    reports tapped is not the one that would be made a problem, so the officer looks again."""
    await three_reports(cast)
    await cast.officer.send("/masalah")
    old_accept = option_data(cast.officer)[0]
    cast.reporter.now = cast.officer.now
    await cast.reporter.file_report()
    async with cast.officer.sessions() as s:  # the leader's sweep sees the fourth report
        await problems.suggest_everywhere(s, cast.officer.context())
        await s.commit()
    late = await cast.officer.send(button=old_accept)
    assert "Saran ini berubah sejak halaman dibuka" in texts(late)
    assert await rows(cast.officer.sessions, Problem) == []
    again = await cast.officer.send("/masalah")
    assert "1. 4 laporan Keamanan di Sumber Jaya" in texts(again)
    accepted = await cast.officer.press("Terima 1")
    assert "(4 laporan)" in texts(accepted)


async def test_the_group_alerts_masalah_adds_its_report_to_a_problem(cast: Cast) -> None:
    first, second, _third = await three_reports(cast)
    group = cast.officer.in_group()
    menu = await group.send(button=f"pmenu:{first['report_id']}")
    assert f"Tambahkan {first['ticket']} ke masalah mana?" in texts(menu)
    assert [o.data for o in menu.replies[0].options] == [f"pnew:{first['report_id']}"]
    made = await group.send(button=f"pnew:{first['report_id']}")
    assert made.notice is not None and "Masalah baru #1" in made.notice
    [problem] = await rows(cast.officer.sessions, Problem)

    menu = await group.send(button=f"pmenu:{second['report_id']}")
    assert [o.data for o in menu.replies[0].options] == [
        f"padd:{second['report_id']}:{problem.id}",
        f"pnew:{second['report_id']}",
    ]
    added = await group.send(button=f"padd:{second['report_id']}:{problem.id}")
    assert f"{second['ticket']} ditambahkan ke masalah #1" in texts(added)
    async with cast.officer.sessions() as s:
        assert await store.report_ids_of(s, problem.id) == [first["report_id"], second["report_id"]]

    # Another village's officer may not, by button or typed.
    other = cast.other_officer.in_group()
    refused = await other.send(button=f"padd:{_third['report_id']}:{problem.id}")
    assert refused.notice is not None and "hanya petugas atau koordinator" in refused.notice
    typed = await cast.other_officer.send(f"masalah {_third['ticket']}")
    assert "hanya petugas atau koordinator" in texts(typed)
    # A resident is told it is for staff.
    assert "hanya untuk petugas" in texts(await cast.reporter.send("/masalah"))


async def test_typed_masalah_with_a_ticket_offers_the_same_menu(cast: Cast) -> None:
    first, second, _ = await three_reports(cast)
    await cast.officer.send(f"masalah {first['ticket']}")
    await cast.officer.press("Masalah baru")
    await cast.officer.send(f"MASALAH {second['ticket']}")
    assert option_data(cast.officer)[0] == f"padd:{second['report_id']}:1"
    added = await cast.officer.send("1")  # typed, as on a channel without buttons
    assert f"{second['ticket']} ditambahkan ke masalah #1" in texts(added)


async def test_stages_move_in_order_and_reporters_hear_without_names(cast: Cast) -> None:
    filed = await three_reports(cast, anonymous_last=True)
    await cast.officer.send("/masalah")
    await cast.officer.press("Terima 1")
    shown = await cast.officer.send("/masalah 1")
    assert "Tahap: Pemindaian" in texts(shown)
    assert [o.label for o in cast.officer.options] == ["Lanjut ke Analisis"]
    before = {r.id for r in await rows(cast.officer.sessions, Outbox)}
    for stage in ("Analisis", "Respons"):
        moved = await cast.officer.press(f"Lanjut ke {stage}")
        assert f"Masalah #1 kini di tahap {stage}." in texts(moved)
    news = [r for r in await rows(cast.officer.sessions, Outbox) if r.id not in before]
    assert {(r.kind, r.chat_id) for r in news} == {
        ("problem", cast.reporter.user_id),
        ("problem", cast.resident.user_id),
    }
    for row in news:
        text = row.payload["reply"]["text"]
        assert "masalah berulang di Sumber Jaya" in text
        for name in ("Bripka Andi", "Budi Santoso", "Warga Lain"):
            assert name not in text
    [to_reporter] = [r for r in news if r.chat_id == cast.reporter.user_id]
    assert filed[0]["ticket"] in to_reporter.payload["reply"]["text"]
    assert filed[1]["ticket"] not in to_reporter.payload["reply"]["text"]

    # The response began: the assessment is shown; then on to the assessment and the close.
    cast.officer.advance(days=10)
    await cast.officer.press("Lanjut ke Penilaian")
    closed = await cast.officer.press("Lanjut ke Ditutup")
    text = texts(closed)
    assert "Tahap: Ditutup" in text
    assert "Penilaian: 3 laporan serupa dalam 10 hari sebelum respons, 0 dalam 10 hari" in text
    assert "Catatan penutupan: Penilaian: 3 laporan serupa" in text
    assert cast.officer.options == []  # nothing after closed
    closing_news = [
        r
        for r in await rows(cast.officer.sessions, Outbox)
        if r.kind == "problem" and "sudah ditutup" in r.payload["reply"]["text"]
    ]
    assert len(closing_news) == 2
    # An old "Lanjut" pressed again changes nothing.
    stale = await cast.officer.send(button="pnext:1")
    assert stale.notice is not None or "diubah orang lain" in texts(stale)
    [problem] = await rows(cast.officer.sessions, Problem)
    assert problem.stage == "closed"


async def test_reporters_are_not_told_when_the_config_says_so(
    cast: Cast, sessions: async_sessionmaker[AsyncSession]
) -> None:
    quiet = dataclasses.replace(cast.officer.config, problems=ProblemRules(tell_reporters=False))
    await three_reports(cast)
    cast.officer.config = quiet
    await cast.officer.send("/masalah")
    await cast.officer.press("Terima 1")
    await cast.officer.send("/masalah 1")
    await cast.officer.press("Lanjut ke Analisis")
    await cast.officer.press("Lanjut ke Respons")
    assert [r for r in await rows(sessions, Outbox) if r.kind == "problem"] == []


async def owner_action(cast: Cast, due_in: timedelta = timedelta(days=2)) -> tuple[int, datetime]:
    """A problem with one action owned by Sumber Jaya's officer (as the desk adds it)."""
    await three_reports(cast)
    await cast.officer.send("/masalah")
    await cast.officer.press("Terima 1")
    now = cast.officer.now
    async with cast.officer.sessions() as s:
        officer = await s.scalar(select(Contact).where(Contact.external_id == 4001))
        coordinator = await s.scalar(select(Contact).where(Contact.external_id == 4003))
        problem = await store.get(s, 1)
        assert officer and coordinator and problem
        assert [o.id for o in await problems.owners(s, problem)] == [officer.id, coordinator.id]
        action = await problems.add_action(
            s,
            Context(cast.officer.config, now=now),
            coordinator,
            problem,
            "Pasang lampu di gang RT 03",
            owner=officer,
            due_at=now + due_in,
        )
        await s.commit()
        return action.id, now


async def remind(cast: Cast, at: datetime) -> list[int]:
    async with cast.officer.sessions() as s:
        sent = await problems.remind_due(s, Context(cast.officer.config, now=at))
        await s.commit()
        return sent


async def test_the_owner_is_reminded_once_and_answers_selesai(cast: Cast) -> None:
    action_id, now = await owner_action(cast)
    assert await remind(cast, now + timedelta(hours=23)) == []  # 24 hours before the due time
    [row_id] = await remind(cast, now + timedelta(hours=24))
    assert await remind(cast, now + timedelta(hours=25)) == []
    [row] = [r for r in await rows(cast.officer.sessions, Outbox) if r.id == row_id]
    assert (row.kind, row.chat_id, row.dedupe_key) == (
        "problem",
        cast.officer.user_id,
        f"problem-action:{action_id}",
    )
    text = row.payload["reply"]["text"]
    assert "Pengingat tindakan untuk masalah #1" in text and "Pasang lampu di gang RT 03" in text
    assert "Batas: 14/05/2025 11:01 WIB" in text  # shown in the area's zone
    assert row.payload["reply"]["options"] == [["Selesai", f"pdone:{action_id}"]]

    # Someone else may not mark it; the owner types "selesai".
    refused = await cast.other_officer.send(button=f"pdone:{action_id}")
    assert "Hanya pemilik tindakan" in texts(refused)
    cast.officer.advance(hours=25)
    done = await cast.officer.send("selesai")
    assert "tercatat selesai: Pasang lampu di gang RT 03" in texts(done)
    again = await cast.officer.send(button=f"pdone:{action_id}")
    assert "sudah tercatat selesai" in texts(again)
    async with cast.officer.sessions() as s:
        action = await store.get_action(s, action_id)
        assert action is not None and action.done_at == cast.officer.now


async def test_selesai_with_several_reminded_actions_asks_which(cast: Cast) -> None:
    first, now = await owner_action(cast, timedelta(hours=1))
    async with cast.officer.sessions() as s:
        problem = await store.get(s, 1)
        officer = await s.scalar(select(Contact).where(Contact.external_id == 4001))
        assert problem and officer
        second = await problems.add_action(
            s,
            Context(cast.officer.config, now=now),
            officer,
            problem,
            "Rapat dengan RT",
            owner=officer,
            due_at=now + timedelta(hours=2),
        )
        await s.commit()
    assert len(await remind(cast, now + timedelta(minutes=1))) == 2
    cast.officer.advance(minutes=5)
    asked = await cast.officer.send("selesai")
    assert "Tindakan mana yang sudah selesai?" in texts(asked)
    assert option_data(cast.officer) == [f"pdone:{first}", f"pdone:{second.id}"]
    done = await cast.officer.send("2")
    assert "Rapat dengan RT" in texts(done)


async def test_the_recap_counts_open_problems_overdue_actions_and_new_suggestions(
    cast: Cast,
) -> None:
    await owner_action(cast, timedelta(hours=1))
    await cast.reporter.file_report(category="kesehatan")
    for _ in range(2):
        cast.resident.advance(minutes=5)
        await cast.resident.file_report(category="kesehatan")
    now = cast.resident.now + timedelta(hours=3)
    async with cast.officer.sessions() as s:
        ctx = Context(cast.officer.config, now=now)
        assert len(await problems.suggest_everywhere(s, ctx)) == 1
        area = await s.scalar(select(Area).where(Area.code == SUMBER_JAYA))
        assert area is not None
        period = Period("daily", now.date(), now.date(), now - timedelta(days=1), now)
        stats = await compute_stats(s, [area.id], period, now)
        await s.commit()
    assert (stats.open_problems, stats.overdue_actions, stats.new_suggestions) == (1, 1, 1)
    text = recap_text(ctx, "id", area, period, stats)
    assert "🧩 Masalah terbuka: 1 — tindakan lewat batas: 1 — saran masalah baru: 1" in text
    assert "Open problems: 1 — overdue actions: 1" in recap_text(ctx, "en", area, period, stats)


async def test_the_export_has_the_problems_and_their_reports(cast: Cast) -> None:
    filed = await three_reports(cast, anonymous_last=True)
    await cast.coordinator.send("/masalah")
    await cast.coordinator.press("Terima 1")
    sent = await cast.coordinator.send("/ekspor masalah")
    [reply] = [r for r in sent.replies if r.document is not None]
    assert reply.document is not None and reply.document.filename.startswith("ktn-masalah-")
    [row] = list(csv.DictReader(io.StringIO(reply.document.data.decode("utf-8"))))
    assert (row["problem"], row["stage"], row["reports"]) == ("1", "scanning", "3")
    assert row["tickets"].split() == [f["ticket"] for f in filed]
    assert "Budi Santoso" not in reply.document.data.decode("utf-8")
    reports_csv = await cast.coordinator.send("/ekspor csv")
    [doc] = [r.document for r in reports_csv.replies if r.document is not None]
    exported = list(csv.DictReader(io.StringIO(doc.data.decode("utf-8"))))
    assert {(r["ticket"], r["problem"], r["problem_stage"]) for r in exported} == {
        (f["ticket"], "1", "scanning") for f in filed
    }
    assert sent.recorded.export == {"format": "problems", "reports": 1}


async def test_the_alert_menu_lists_only_open_problems_of_the_reports_area(
    cast: Cast, sessions: async_sessionmaker[AsyncSession]
) -> None:
    first, second, _ = await three_reports(cast)
    group = cast.officer.in_group()
    await group.send(button=f"pnew:{first['report_id']}")
    async with sessions() as s:
        [problem] = (await s.scalars(select(Problem))).all()
        problem.stage = "closed"
        await s.commit()
    menu = await group.send(button=f"pmenu:{second['report_id']}")
    assert [o.data for o in menu.replies[0].options] == [f"pnew:{second['report_id']}"]

"""The desk's problem pages (SARA): the list with its suggestions (accepted with one click, a
dismissed one stays dismissed), a problem made by hand, renamed, with reports added by ticket
and removed, notes of the analysis triangle, actions with owner and due date marked done, the
stages one after the other (closing asks for a note, reporters told naming nobody), the
before/after numbers, merging, and the rules: another area's problem is 404, no CSRF token is
403, what was typed survives a refusal, English is complete."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage import problems as problems_store
from storage.areas import get_by_code
from storage.models import (
    AccessLog,
    Contact,
    Outbox,
    Problem,
    ProblemAction,
    ProblemEvent,
    ProblemNote,
    ProblemSuggestion,
    Report,
)
from storage.reports import create_report
from tests.support.chats import SUMBER_JAYA, WIYONO, Cast, FakeChat, staff_cast
from tests.support.desk import client, desk_app, sign_in, with_desk

FLASH_PAGE = re.compile(r'<p class="flash" role="status">([^<]*)</p>')


async def _cast(sessions: async_sessionmaker[AsyncSession]) -> Cast:
    cast = await staff_cast(sessions)
    with_desk(cast.officer, cast.other_officer, cast.coordinator)
    return cast


async def _file(cast: Cast, count: int, category: str = "keamanan") -> list[str]:
    """``count`` reports of Sumber Jaya by the reporter and a neighbour; their tickets."""
    before = set(await _tickets(cast.officer.sessions))
    for i in range(count):
        chat = cast.reporter if i % 2 == 0 else cast.resident
        chat.advance(minutes=20)
        await chat.file_report(category=category, description=f"Kejadian berulang nomor {i}")
    later = max(cast.reporter.now, cast.resident.now) + timedelta(minutes=1)
    for person in (cast.officer, cast.other_officer, cast.coordinator):
        person.now = later
    return [t for t in await _tickets(cast.officer.sessions) if t not in before]


async def _tickets(sessions: async_sessionmaker[AsyncSession]) -> list[str]:
    async with sessions() as s:
        return list((await s.scalars(select(Report.ticket).order_by(Report.id))).all())


async def _all(sessions: async_sessionmaker[AsyncSession], model: type) -> list:  # type: ignore[type-arg]
    async with sessions() as s:
        return list((await s.scalars(select(model).order_by(model.id))).all())


async def _post(
    http: httpx.AsyncClient, path: str, csrf: str, **data: str
) -> tuple[httpx.Response, str]:
    """POST a form; follow the redirect; the page and the message it shows."""
    answer = await http.post(path, data={"csrf": csrf, **data})
    page = await http.get(answer.headers["location"]) if answer.status_code == 303 else answer
    found = FLASH_PAGE.search(page.text)
    return answer, (found.group(1) if found else "")


@asynccontextmanager
async def _signed_in(
    sessions: async_sessionmaker[AsyncSession], chat: FakeChat
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A browser-less client signed in as the chat's person, and their CSRF token."""
    app, _desk = desk_app(sessions, chat)
    async with client(app) as http:
        yield http, await sign_in(http, chat)


async def test_a_suggestion_is_accepted_with_one_click_and_a_dismissed_one_stays_dismissed(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cast = await _cast(sessions)
    security = await _file(cast, 3)
    await _file(cast, 3, category="kesehatan")
    async with _signed_in(sessions, cast.officer) as (http, csrf):
        page = await http.get("/dasbor/masalah")
        assert page.status_code == 200
        assert "Belum ada masalah terbuka di wilayah Anda." in page.text
        assert "3 laporan Keamanan di Sumber Jaya dalam 30 hari terakhir" in page.text
        assert "3 laporan Kesehatan di Sumber Jaya dalam 30 hari terakhir" in page.text
        assert all(t in page.text for t in security)
        by_category = {s.category: s for s in await _all(sessions, ProblemSuggestion)}

        answer, said = await _post(
            http, "/dasbor/masalah", csrf, do="accept", suggestion=str(by_category["keamanan"].id)
        )
        assert answer.headers["location"] == "/dasbor/masalah/1"
        assert said == "✅ Masalah #1 dibuat: Keamanan berulang di Sumber Jaya (3 laporan)."
        shown = await http.get("/dasbor/masalah/1")
        assert all(t in shown.text for t in security)
        assert 'data-testid="report-count">3<' in shown.text
        report = await http.get(f"/dasbor/laporan/{security[0]}")
        assert 'href="/dasbor/masalah/1">#1 Keamanan berulang di Sumber Jaya<' in report.text

        _answer, said = await _post(
            http, "/dasbor/masalah", csrf, do="dismiss", suggestion=str(by_category["kesehatan"].id)
        )
        assert said == "Saran diabaikan. Laporan yang sama tidak akan disarankan lagi."
        # a second click on the old Terima makes nothing more
        _answer, said = await _post(
            http, "/dasbor/masalah", csrf, do="accept", suggestion=str(by_category["keamanan"].id)
        )
        assert said == "Saran ini sudah diputuskan sebelumnya."
        again = await http.get("/dasbor/masalah")
        assert "Kesehatan di Sumber Jaya dalam" not in again.text
        assert "Tidak ada saran masalah baru." in again.text
        assert "Keamanan berulang di Sumber Jaya" in again.text
    assert len(await _all(sessions, Problem)) == 1
    states = sorted(s.state for s in await _all(sessions, ProblemSuggestion))
    assert states == ["accepted", "dismissed"]


async def test_the_whole_sara_cycle_on_the_desk(sessions: async_sessionmaker[AsyncSession]) -> None:
    cast = await _cast(sessions)
    first, second, third = await _file(cast, 3)
    async with _signed_in(sessions, cast.officer) as (http, csrf):
        page = await http.get("/dasbor/masalah")
        assert 'name="do" value="create"' in page.text
        answer, said = await _post(
            http,
            "/dasbor/masalah",
            csrf,
            do="create",
            title="Pencurian motor di gang pasar",
            pillar="keamanan",
            area=re.search(r'<option value="(\d+)">Sumber Jaya<', page.text).group(1),  # type: ignore[union-attr]
            tickets=f"{first.lower()}, {second}",
        )
        assert said == "🧩 Masalah #1 dibuat: Pencurian motor di gang pasar (2 laporan)."
        path = answer.headers["location"]
        assert path == "/dasbor/masalah/1"

        _a, said = await _post(http, path, csrf, do="add", tickets=third)
        assert said == f"🧩 Ditambahkan ke masalah #1: {third}."
        _a, said = await _post(http, path, csrf, do="add", tickets=third)
        assert said == "Laporan itu sudah termasuk masalah #1."
        report_id = {r.ticket: r.id for r in await _all(sessions, Report)}[second]
        _a, said = await _post(http, path, csrf, do="remove", report=str(report_id))
        assert said == f"{second} dikeluarkan dari masalah #1."
        _a, said = await _post(
            http, path, csrf, do="rename", title="Curanmor gang pasar", pillar="keamanan"
        )
        assert said == "Masalah #1 kini berjudul: Curanmor gang pasar."

        # Scanning -> Analysis; a page left open on "Pemindaian" moves nothing twice
        _a, said = await _post(http, path, csrf, do="next", stage="scanning")
        assert said == "🧩 Masalah #1 kini di tahap Analisis."
        _a, said = await _post(http, path, csrf, do="next", stage="scanning")
        assert said == "Tahap masalah ini sudah diubah orang lain; tidak ada yang diubah."
        for kind, text in (
            ("victim", "Pedagang pasar yang parkir di gang"),
            ("offender", "Dua orang berboncengan, malam hari"),
            ("place", "Gang tanpa lampu di belakang pasar"),
            ("cause", "Tidak ada penjaga parkir setelah pukul 21"),
        ):
            _a, said = await _post(http, path, csrf, do="note", kind=kind, text=text)
            assert said == "Catatan analisis disimpan di masalah #1."
        _a, said = await _post(http, path, csrf, do="next", stage="analysis")
        assert said == "🧩 Masalah #1 kini di tahap Respons."

        page = await http.get(path)
        owner = re.search(r'<option value="(\d+)">Bripka Andi<', page.text)
        assert owner, "the area's officer can own an action"
        due = (cast.officer.now + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
        _a, said = await _post(
            http,
            path,
            csrf,
            do="action",
            text="Pasang lampu di gang",
            owner=owner.group(1),
            due=due,
        )
        assert said == "Tindakan ditambahkan ke masalah #1; Bripka Andi akan diingatkan lewat chat."
        [action] = await _all(sessions, ProblemAction)
        _a, said = await _post(http, path, csrf, do="done", action=str(action.id))
        assert said == "✅ Tindakan untuk masalah #1 tercatat selesai: Pasang lampu di gang"
        _a, said = await _post(http, path, csrf, do="done", action=str(action.id))
        assert said == "Tindakan ini sudah tercatat selesai."

        _a, said = await _post(http, path, csrf, do="next", stage="response")
        assert said == "🧩 Masalah #1 kini di tahap Penilaian."
        # closing needs a closing note
        _a, said = await _post(http, path, csrf, do="next", stage="assessment")
        assert said == "Tulis catatan penutupan dulu: apa yang dikerjakan dan hasilnya."
        _a, said = await _post(
            http, path, csrf, do="next", stage="assessment", note="Lampu terpasang, ronda malam"
        )
        assert said == "🧩 Masalah #1 kini di tahap Ditutup."

        closed = await http.get(path)
        assert "Lampu terpasang, ronda malam" in closed.text
        assert 'data-testid="assessment"' in closed.text
        assert "Pedagang pasar yang parkir di gang" in closed.text
        assert "Selesai oleh Bripka Andi" in closed.text
        assert 'name="do" value="note"' not in closed.text  # nothing left to change
        assert 'name="do" value="next"' not in closed.text
        _a, said = await _post(http, path, csrf, do="note", kind="cause", text="Terlambat")
        assert said == "Masalah #1 sudah ditutup; tidak bisa diubah lagi."

    [problem] = await _all(sessions, Problem)
    assert (problem.stage, problem.title) == ("closed", "Curanmor gang pasar")
    assert problem.closing_note is not None and problem.closing_note.startswith("Lampu terpasang")
    assert "Penilaian:" in problem.closing_note
    notes = await _all(sessions, ProblemNote)
    assert sorted(n.kind for n in notes) == ["cause", "offender", "place", "victim"]
    events = await _all(sessions, ProblemEvent)
    assert {e.via for e in events} == {"dasbor"}
    stages = [e.to_stage for e in events if e.kind == "stage"]
    assert stages == ["analysis", "response", "assessment", "closed"]
    # the reporters of the linked reports heard twice, naming no officer
    news = [r for r in await _all(sessions, Outbox) if r.kind == "problem" and r.chat_id == 1001]
    texts = [r.payload["reply"]["text"] for r in news]
    assert len(texts) == 2, texts
    assert "ditangani bersama" in texts[0] and "sudah ditutup" in texts[1]
    assert first in texts[0] and second not in texts[0]
    assert not any("Andi" in t or "Warga Lain" in t for t in texts)
    log = await _all(sessions, AccessLog)
    assert ("problem", "problem 1") in [(a.kind, a.subject) for a in log]


async def test_merging_moves_the_reports_and_closes_the_merged_problem(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cast = await _cast(sessions)
    tickets = await _file(cast, 4)
    async with _signed_in(sessions, cast.coordinator) as (http, csrf):
        page = await http.get("/dasbor/masalah")
        area = re.search(r'<option value="(\d+)">Sumber Jaya<', page.text)
        assert area
        for title, pair in (("Motor hilang", tickets[:2]), ("Helm hilang", tickets[2:])):
            await _post(
                http,
                "/dasbor/masalah",
                csrf,
                do="create",
                title=title,
                pillar="keamanan",
                area=area.group(1),
                tickets=" ".join(pair),
            )
        answer, said = await _post(http, "/dasbor/masalah/2", csrf, do="merge", target="1")
        assert answer.headers["location"] == "/dasbor/masalah/1"
        assert said == "🧩 Masalah #2 digabung ke masalah #1 (2 laporan dipindahkan)."
        target = await http.get("/dasbor/masalah/1")
        assert all(t in target.text for t in tickets)
        merged = await http.get("/dasbor/masalah/2")
        assert "Digabung ke" in merged.text and 'href="/dasbor/masalah/1"' in merged.text
        _a, said = await _post(http, "/dasbor/masalah/1", csrf, do="merge", target="1")
        assert said.startswith("Pilih masalah terbuka lain")
        listed = await http.get("/dasbor/masalah?tampil=closed")
        assert "Helm hilang" in listed.text and "Motor hilang" not in listed.text
    stages = {p.id: (p.stage, p.merged_into_id) for p in await _all(sessions, Problem)}
    assert stages == {1: ("scanning", None), 2: ("closed", 1)}


async def test_another_areas_problem_is_not_found_and_a_form_without_its_token_is_refused(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cast = await _cast(sessions)
    await _file(cast, 3)
    async with _signed_in(sessions, cast.officer) as (officer, csrf):
        await officer.get("/dasbor/masalah")  # the suggestion is made
        [suggestion] = await _all(sessions, ProblemSuggestion)
        await _post(officer, "/dasbor/masalah", csrf, do="accept", suggestion=str(suggestion.id))
        forged = await officer.post("/dasbor/masalah/1", data={"do": "next", "stage": "scanning"})
        assert forged.status_code == 403
        unknown = await officer.post("/dasbor/masalah/1", data={"do": "nuke", "csrf": csrf})
        assert unknown.status_code == 400
        # numbers beyond any id: not found, politely (no error from the database)
        huge = "9" * 12
        assert (await officer.get(f"/dasbor/masalah/{'9' * 19}")).status_code == 404
        _a, said = await _post(officer, "/dasbor/masalah/1", csrf, do="done", action=huge)
        assert said.startswith("Masalah atau saran ini tidak ditemukan")
        _a, said = await _post(officer, "/dasbor/masalah/1", csrf, do="merge", target=huge)
        assert said.startswith("Pilih masalah terbuka lain")
        _a, said = await _post(officer, "/dasbor/masalah", csrf, do="accept", suggestion=huge)
        assert said.startswith("Masalah atau saran ini tidak ditemukan")
    async with _signed_in(sessions, cast.other_officer) as (wiyono, csrf):
        assert (await wiyono.get("/dasbor/masalah/1")).status_code == 404
        assert (await wiyono.get("/dasbor/masalah/1/peta.json")).status_code == 404
        moved = await wiyono.post("/dasbor/masalah/1", data={"do": "next", "csrf": csrf})
        assert moved.status_code == 404
        listed = await wiyono.get("/dasbor/masalah")
        assert "Keamanan berulang" not in listed.text
        _a, said = await _post(wiyono, "/dasbor/masalah", csrf, do="dismiss", suggestion="1")
        assert said.startswith("Masalah atau saran ini tidak ditemukan")
    [problem] = await _all(sessions, Problem)
    assert problem.stage == "scanning"
    assert [s.state for s in await _all(sessions, ProblemSuggestion)] == ["accepted"]


async def test_what_was_typed_survives_a_refusal_and_only_owners_mark_done(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cast = await _cast(sessions)
    tickets = await _file(cast, 2)
    async with _signed_in(sessions, cast.coordinator) as (coordinator, ccsrf):
        page = await coordinator.get("/dasbor/masalah")
        area = re.search(r'<option value="(\d+)">Sumber Jaya<', page.text)
        assert area
        refused = await coordinator.post(
            "/dasbor/masalah",
            data={
                "csrf": ccsrf,
                "do": "create",
                "title": "Judul yang dipikirkan lama",
                "pillar": "keamanan",
                "area": area.group(1),
                "tickets": "KTN-ZZZZZZ",
            },
        )
        assert refused.status_code == 400
        assert "Laporan KTN-ZZZZZZ tidak ditemukan" in refused.text
        assert 'value="Judul yang dipikirkan lama"' in refused.text
        await _post(
            coordinator,
            "/dasbor/masalah",
            ccsrf,
            do="create",
            title="Parkir liar",
            pillar="sosial_ekonomi",
            area=area.group(1),
            tickets=tickets[0],
        )
        long_note = "x" * 1001
        too_long = await coordinator.post(
            "/dasbor/masalah/1",
            data={"csrf": ccsrf, "do": "note", "kind": "place", "text": long_note},
        )
        assert too_long.status_code == 400 and long_note in too_long.text
        past = (cast.coordinator.now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
        page = await coordinator.get("/dasbor/masalah/1")
        sari = re.search(r'<option value="(\d+)">Iptu Sari<', page.text)
        assert sari
        late = await coordinator.post(
            "/dasbor/masalah/1",
            data={
                "csrf": ccsrf,
                "do": "action",
                "text": "Tertibkan parkir",
                "owner": sari.group(1),
                "due": past,
            },
        )
        assert late.status_code == 400
        assert "Batas waktu itu sudah lewat" in late.text and "Tertibkan parkir" in late.text
        soon = (cast.coordinator.now + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
        _a, said = await _post(
            coordinator,
            "/dasbor/masalah/1",
            ccsrf,
            do="action",
            text="Tertibkan parkir",
            owner=sari.group(1),
            due=soon,
        )
        assert said.startswith("Tindakan ditambahkan")
    [action] = await _all(sessions, ProblemAction)
    async with _signed_in(sessions, cast.officer) as (officer, ocsrf):
        page = await officer.get("/dasbor/masalah/1")
        assert "Tandai selesai" not in page.text  # not the owner, not a coordinator
        _a, said = await _post(
            officer, "/dasbor/masalah/1", ocsrf, do="done", action=str(action.id)
        )
        assert said.startswith("Hanya pemilik tindakan")
    async with sessions() as s:
        assert (await s.get(ProblemAction, action.id)).done_at is None  # type: ignore[union-attr]


async def test_the_map_shows_the_located_reports_and_english_is_complete(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cast = await _cast(sessions)
    now = cast.officer.now
    async with sessions() as s:
        area = await get_by_code(s, SUMBER_JAYA)
        assert area is not None
        made = [
            await create_report(
                s,
                category="keamanan",
                description=f"Pencurian {i}",
                area_id=area.id,
                reporter_id=None,
                anonymous=True,
                urgent=False,
                now=now - timedelta(days=3 - i),
                latitude=-3.80 + i / 100 if i < 2 else None,
                longitude=102.26 if i < 2 else None,
            )
            for i in range(3)
        ]
        await s.commit()
        tickets = [r.ticket for r in made]
    async with _signed_in(sessions, cast.officer) as (http, csrf):
        await http.get("/dasbor/bahasa/en")
        page = await http.get("/dasbor/masalah")
        assert "Problems" in page.text and "3 Security reports in Sumber Jaya" in page.text
        [suggestion] = await _all(sessions, ProblemSuggestion)
        _a, said = await _post(
            http, "/dasbor/masalah", csrf, do="accept", suggestion=str(suggestion.id)
        )
        assert said.startswith("✅ Problem #1 created")
        page = await http.get("/dasbor/masalah/1")
        for text in ("Problem #1", "Move to Analysis", "Scanning", "Reports per week", "Victims"):
            assert text in page.text, text
        assert 'data-src="/dasbor/masalah/1/peta.json"' in page.text
        data = (await http.get("/dasbor/masalah/1/peta.json")).json()
    assert sorted(p["ticket"] for p in data["points"]) == sorted(tickets[:2])
    assert all(p["url"].startswith("/dasbor/laporan/KTN-") for p in data["points"])


async def test_no_reporter_is_named_on_a_problem_page(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cast = await _cast(sessions)
    await _file(cast, 3)
    async with _signed_in(sessions, cast.officer) as (http, csrf):
        await http.get("/dasbor/masalah")
        [suggestion] = await _all(sessions, ProblemSuggestion)
        await _post(http, "/dasbor/masalah", csrf, do="accept", suggestion=str(suggestion.id))
        page = await http.get("/dasbor/masalah/1")
    async with sessions() as s:
        people = (await s.scalars(select(Contact).where(Contact.role == "resident"))).all()
    for person in people:
        assert person.display_name and person.display_name not in page.text
        assert person.phone is None or person.phone not in page.text


async def test_the_assessment_counts_a_seeded_timeline(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Response begun at t0 and looked at ten days later: similar reports (the problem's
    categories, its area) in the ten days before t0 and the ten days after are counted; older
    ones, other categories and rejected ones are not."""
    cast = await _cast(sessions)
    [ticket] = await _file(cast, 1)
    t0 = cast.officer.now
    async with _signed_in(sessions, cast.officer) as (http, csrf):
        page = await http.get("/dasbor/masalah")
        area_id = re.search(r'<option value="(\d+)">Sumber Jaya<', page.text)
        assert area_id
        await _post(
            http,
            "/dasbor/masalah",
            csrf,
            do="create",
            title="Curanmor",
            pillar="keamanan",
            area=area_id.group(1),
            tickets=ticket,
        )
        before_response = await http.get("/dasbor/masalah/1")
        assert "Angka sebelum dan sesudah muncul begitu tahap respons dimulai." in (
            before_response.text
        )
        await _post(http, "/dasbor/masalah/1", csrf, do="next", stage="scanning")
        await _post(http, "/dasbor/masalah/1", csrf, do="next", stage="analysis")
        async with sessions() as s:
            area = await get_by_code(s, SUMBER_JAYA)
            assert area is not None
            timeline = [  # (days after t0, category, status)
                (-12, "keamanan", "new"),  # before the "before" period: not counted
                (-9, "keamanan", "new"),
                (-5, "keamanan", "resolved"),
                (-3, "keamanan", "rejected"),  # rejected: not counted
                (-2, "kesehatan", "new"),  # another category: not counted
                (2, "keamanan", "claimed"),
                (11, "keamanan", "new"),  # after "now": not counted
            ]
            for days, category, status in timeline:
                report = await create_report(
                    s,
                    category=category,
                    description="Seeded",
                    area_id=area.id,
                    reporter_id=None,
                    anonymous=True,
                    urgent=False,
                    now=t0 + timedelta(days=days),
                )
                report.status = status
            await s.commit()
    cast.officer.advance(days=10)
    async with _signed_in(sessions, cast.officer) as (http, _csrf):  # ten days on: a new session
        page = await http.get("/dasbor/masalah/1")
    # before: the report filed just before t0, and those of days -9 and -5; after: day 2
    expected = (
        "3 laporan serupa (Keamanan) dalam 10 hari sebelum respons dimulai, "
        "1 dalam 10 hari sesudahnya."
    )
    assert expected in page.text
    assert "Perubahan: -67%" in page.text
    assert "Sebelum (10 hari)" in page.text and "Sesudah (10 hari)" in page.text


async def _seed(
    sessions: async_sessionmaker[AsyncSession], code: str, count: int, now: datetime
) -> list[str]:
    """``count`` anonymous security reports of the area with this code; their tickets."""
    async with sessions() as s:
        area = await get_by_code(s, code)
        assert area is not None
        made = [
            await create_report(
                s,
                category="keamanan",
                description=f"Di {area.name} {i}",
                area_id=area.id,
                reporter_id=None,
                anonymous=True,
                urgent=False,
                now=now - timedelta(hours=i + 1),
            )
            for i in range(count)
        ]
        await s.commit()
        return [r.ticket for r in made]


async def _area_option(http: httpx.AsyncClient, name: str) -> str:
    page = await http.get("/dasbor/masalah")
    found = re.search(rf'<option value="(\d+)">{name}<', page.text)
    assert found, page.text
    return found.group(1)


async def test_nothing_crosses_the_line_of_a_persons_areas(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Reports, owners, actions, suggestions and problems of areas the person does not work in
    stay out of reach, whatever the form says; a report of a closed problem stays there."""
    cast = await _cast(sessions)
    ours = await _file(cast, 3)
    wiyono = await _seed(sessions, WIYONO, 5, cast.officer.now)
    # the kecamatan's coordinator makes a kecamatan-wide problem with a Sumber Jaya report
    async with _signed_in(sessions, cast.coordinator) as (http, csrf):
        kecamatan = await _area_option(http, "Kampung Melayu")
        sumber = await _area_option(http, "Sumber Jaya")
        form = {"do": "create", "pillar": "keamanan"}
        await _post(http, "/dasbor/masalah", csrf, **form, title="Se-kecamatan", area=kecamatan)
        await _post(http, "/dasbor/masalah/1", csrf, do="add", tickets=ours[0])
    # Wiyono's officer: a problem of his own with an action he owns
    async with _signed_in(sessions, cast.other_officer) as (http, csrf):
        desa = await _area_option(http, "Wiyono")
        await _post(
            http, "/dasbor/masalah", csrf, **form, title="Wiyono", area=desa, tickets=wiyono[0]
        )
        page = await http.get("/dasbor/masalah/2")
        wayan = re.search(r'<option value="(\d+)">Brigpol Wayan<', page.text)
        assert wayan
        soon = (cast.other_officer.now + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
        await _post(
            http,
            "/dasbor/masalah/2",
            csrf,
            do="action",
            text="Patroli",
            owner=wayan.group(1),
            due=soon,
        )
        await http.get("/dasbor/masalah")  # Wiyono's suggestion is made
    [wiyono_action] = await _all(sessions, ProblemAction)

    async with _signed_in(sessions, cast.officer) as (http, csrf):
        # a report of a problem above his area is not taken from it
        answer, said = await _post(
            http, "/dasbor/masalah", csrf, **form, title="Punya saya", area=sumber, tickets=ours[0]
        )
        assert answer.status_code == 400
        assert said == (
            f"Laporan {ours[0]} termasuk masalah #1 yang sudah ditutup atau di luar wilayah "
            "Anda, jadi tidak dipindahkan."
        )
        _a, said = await _post(
            http, "/dasbor/masalah", csrf, **form, title="Punya saya", area=sumber, tickets=ours[1]
        )
        assert said.startswith("🧩 Masalah #3 dibuat")
        path = "/dasbor/masalah/3"
        _a, said = await _post(http, path, csrf, do="add", tickets=wiyono[1])
        assert said.startswith(f"Laporan {wiyono[1]} tidak ditemukan di wilayah masalah ini")
        _a, said = await _post(
            http, path, csrf, do="action", text="Patroli", owner=wayan.group(1), due=soon
        )
        assert said.startswith("Pilih penanggung jawab")
        _a, said = await _post(http, path, csrf, do="done", action=str(wiyono_action.id))
        assert said.startswith("Masalah atau saran ini tidak ditemukan")
        for target in ("1", "2"):
            _a, said = await _post(http, path, csrf, do="merge", target=target)
            assert said.startswith("Pilih masalah terbuka lain")
        suggestions = await _all(sessions, ProblemSuggestion)
        [theirs] = [s for s in suggestions if s.area_id != int(sumber)]  # Wiyono's other four
        _a, said = await _post(
            http, "/dasbor/masalah", csrf, do="accept", suggestion=str(theirs.id)
        )
        assert said.startswith("Masalah atau saran ini tidak ditemukan")
        # closed, its reports stay with it
        for stage in ("scanning", "analysis", "response", "assessment"):
            await _post(http, path, csrf, do="next", stage=stage, note="Selesai ditangani")
        _a, said = await _post(http, path, csrf, do="done", action="1")
        assert said == "Masalah #3 sudah ditutup; tidak bisa diubah lagi."
        answer, said = await _post(
            http, "/dasbor/masalah", csrf, **form, title="Lagi", area=sumber, tickets=ours[1]
        )
        assert answer.status_code == 400 and "termasuk masalah #3 yang sudah ditutup" in said
    async with _signed_in(sessions, cast.coordinator) as (http, csrf):
        await _post(http, "/dasbor/masalah", csrf, **form, title="Desa", area=sumber)
        _a, said = await _post(http, "/dasbor/masalah/4", csrf, do="merge", target="1")
        assert said.startswith("Pilih masalah terbuka lain")  # another area's (the kecamatan)
    async with sessions() as s:
        links = {r: await store_of(s, r) for r in (ours[0], ours[1], wiyono[0], wiyono[1])}
    assert links == {ours[0]: 1, ours[1]: 3, wiyono[0]: 2, wiyono[1]: None}
    async with sessions() as s:
        still = await s.get(ProblemSuggestion, theirs.id)
    assert still is not None and still.state == "proposed"
    assert (await _all(sessions, ProblemAction))[0].done_at is None


async def store_of(session: AsyncSession, ticket: str) -> int | None:
    """The id of the problem the report of this ticket belongs to."""
    report = await session.scalar(select(Report).where(Report.ticket == ticket))
    assert report is not None
    problem = await problems_store.problem_of_report(session, report.id)
    return problem.id if problem else None


async def test_the_due_time_is_the_areas_local_time_and_a_second_click_makes_nothing_twice(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cast = await _cast(sessions)
    [ticket] = await _file(cast, 1)
    wib = ZoneInfo("Asia/Jakarta")  # Sumber Jaya's zone
    async with _signed_in(sessions, cast.officer) as (http, csrf):
        sumber = await _area_option(http, "Sumber Jaya")
        form = {"do": "create", "title": "Curanmor", "pillar": "keamanan", "area": sumber}
        # 'KTN ABC234' as chat takes it; sent twice (a double click): one problem
        spaced = ticket.replace("-", " ").lower()
        _a, said = await _post(http, "/dasbor/masalah", csrf, **form, tickets=spaced)
        assert said == "🧩 Masalah #1 dibuat: Curanmor (1 laporan)."
        answer, said = await _post(http, "/dasbor/masalah", csrf, **form, tickets=spaced)
        assert answer.headers["location"] == "/dasbor/masalah/1"
        assert said == "Masalah ini sudah dibuat (#1)."
        for _twice in range(2):
            await _post(http, "/dasbor/masalah/1", csrf, do="note", kind="place", text="Gang")
        page = await http.get("/dasbor/masalah/1")
        andi = re.search(r'<option value="(\d+)">Bripka Andi<', page.text)
        assert andi
        now = cast.officer.now
        # three hours ahead in Sumber Jaya (WIB, UTC+7): stored as that moment
        local = (now + timedelta(hours=3)).astimezone(wib).replace(second=0, microsecond=0)
        action = {"do": "action", "text": "Pasang lampu", "owner": andi.group(1)}
        for _twice in range(2):
            _a, said = await _post(
                http, "/dasbor/masalah/1", csrf, **action, due=f"{local:%Y-%m-%dT%H:%M}"
            )
            assert said.startswith("Tindakan ditambahkan")
        # the same clock reading in UTC would be three hours ahead; in WIB it is past
        utc_reading = (now + timedelta(hours=3)).astimezone(UTC)
        late = await http.post(
            "/dasbor/masalah/1",
            data={"csrf": csrf, **action, "text": "Lain", "due": f"{utc_reading:%Y-%m-%dT%H:%M}"},
        )
        assert late.status_code == 400 and "Batas waktu itu sudah lewat" in late.text
        # unreadable or impossible times and numbers: a polite answer, never an error
        for due in ("0001-01-01T00:00", "besok", ""):
            bad = await http.post(
                "/dasbor/masalah/1", data={"csrf": csrf, **action, "text": "Lain", "due": due}
            )
            assert bad.status_code == 400 and "Isi batas waktunya" in bad.text
        _a, said = await _post(http, "/dasbor/masalah/1", csrf, do="done", action="²")
        assert said.startswith("Masalah atau saran ini tidak ditemukan")
        odd = await http.post(
            "/dasbor/masalah/1", data={"csrf": csrf, **action, "owner": "²", "due": "x"}
        )
        assert odd.status_code == 400
    [made] = await _all(sessions, ProblemAction)
    assert made.due_at == local.astimezone(UTC)
    assert len(await _all(sessions, ProblemNote)) == 1
    assert len(await _all(sessions, Problem)) == 1


async def test_a_suggestion_changed_since_the_page_was_shown_is_not_decided_blindly(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cast = await _cast(sessions)
    await _file(cast, 3)
    async with _signed_in(sessions, cast.officer) as (http, csrf):
        page = await http.get("/dasbor/masalah")
        shown = re.search(r'name="stamp" value="(\d+)"', page.text)
        assert shown
        await _file(cast, 1)  # a fourth report joins the set meanwhile
        await http.get("/dasbor/masalah")  # (looked for again, by anyone)
        [suggestion] = await _all(sessions, ProblemSuggestion)
        assert problems_store.stamp(suggestion.fingerprint) != int(shown.group(1))
        _a, said = await _post(
            http,
            "/dasbor/masalah",
            csrf,
            do="accept",
            suggestion=str(suggestion.id),
            stamp=shown.group(1),
        )
        assert said.startswith("Saran ini berubah sejak halaman dibuka")
    [suggestion] = await _all(sessions, ProblemSuggestion)
    assert suggestion.state == "proposed" and len(suggestion.report_ids) == 4
    assert await _all(sessions, Problem) == []

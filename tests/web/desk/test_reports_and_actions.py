"""The desk's list (filters in the URL, sorting, pages), a report's page, its actions through the
chat's own rules (alerts edited, the resident told, the trail marked "via dasbor"), the
downloads with /ekspor's anonymity rules and the map's data."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import Contact, Outbox, Report, ReportEvent
from tests.support.chats import ALERT_GROUP, Cast, staff_cast, texts
from tests.support.desk import client, desk_app, sign_in, with_desk


async def _cast(sessions: async_sessionmaker[AsyncSession]) -> Cast:
    cast = await staff_cast(sessions)
    with_desk(cast.officer, cast.other_officer, cast.coordinator, cast.reporter)
    return cast


async def _tickets(sessions: async_sessionmaker[AsyncSession]) -> list[str]:
    async with sessions() as s:
        return list((await s.scalars(select(Report.ticket).order_by(Report.id))).all())


async def test_claim_on_the_desk_edits_the_alert_and_tells_the_resident(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cast = await _cast(sessions)
    await cast.reporter.file_report(description="Pencurian helm di parkiran pasar")
    (ticket,) = await _tickets(sessions)
    app, _desk = desk_app(sessions, cast.officer)
    async with client(app) as http:
        csrf = await sign_in(http, cast.officer)
        page = await http.get(f"/dasbor/laporan/{ticket}")
        assert "Pencurian helm" in page.text and "Tangani" in page.text
        answer = await http.post(
            f"/dasbor/laporan/{ticket}", data={"action": "claim", "csrf": csrf}
        )
        assert answer.status_code == 303
        after = await http.get(answer.headers["location"])
        assert f"Anda menangani {ticket}" in after.text
        assert "lewat dasbor" in after.text
    async with sessions() as s:
        report = await s.scalar(select(Report).where(Report.ticket == ticket))
        assert report is not None and report.status == "claimed"
        officer = await s.scalar(select(Contact).where(Contact.external_id == 4001))
        assert officer is not None and report.assignee_id == officer.id
        event = await s.scalar(
            select(ReportEvent).where(
                ReportEvent.report_id == report.id, ReportEvent.kind == "claimed"
            )
        )
        assert event is not None and event.via == "dasbor" and event.actor_id == officer.id
        rows = (await s.scalars(select(Outbox).where(Outbox.report_id == report.id))).all()
    edits = [r for r in rows if r.kind == "alert_edit"]
    assert [r.chat_id for r in edits] == [ALERT_GROUP]
    assert "Bripka Andi" in edits[0].payload["reply"]["text"]
    told = [r for r in rows if r.kind == "status" and r.chat_id == 1001]
    assert len(told) == 1 and "Bripka Andi" in told[0].payload["reply"]["text"]


async def test_resolve_needs_a_note_reject_a_reason_and_a_second_claim_is_refused(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cast = await _cast(sessions)
    await cast.reporter.file_report(description="Satu")
    await cast.reporter.file_report(description="Dua", category="kesehatan")
    first, second = await _tickets(sessions)
    app, _desk = desk_app(sessions, cast.coordinator)
    async with client(app) as http:
        csrf = await sign_in(http, cast.coordinator)
        empty = await http.post(
            f"/dasbor/laporan/{first}", data={"action": "resolve", "csrf": csrf}
        )
        page = await http.get(empty.headers["location"])
        assert "Tulis catatan penyelesaian dulu" in page.text
        await http.post(
            f"/dasbor/laporan/{first}",
            data={"action": "resolve", "note": "Sudah diamankan", "csrf": csrf},
        )
        await http.post(
            f"/dasbor/laporan/{second}",
            data={"action": "reject", "note": "Laporan ganda", "csrf": csrf},
        )
        again = await http.post(f"/dasbor/laporan/{first}", data={"action": "claim", "csrf": csrf})
        page = await http.get(again.headers["location"])
        assert "sudah" in page.text.lower()
    async with sessions() as s:
        found = {
            r.ticket: (r.status, r.resolution_note) for r in (await s.scalars(select(Report))).all()
        }
    assert found == {first: ("resolved", "Sudah diamankan"), second: ("rejected", "Laporan ganda")}


async def test_a_duplicate_is_merged_into_its_main_report_from_the_desk(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Tandai duplikat: the main ticket is asked for, then the report is merged as in chat."""
    cast = await _cast(sessions)
    await cast.reporter.file_report(description="Motor hilang di gang")
    await cast.reporter.file_report(description="Motor hilang lagi di gang yang sama")
    main, dup = await _tickets(sessions)
    app, _desk = desk_app(sessions, cast.coordinator)
    async with client(app) as http:
        csrf = await sign_in(http, cast.coordinator)
        page = await http.get(f"/dasbor/laporan/{dup}")
        assert 'name="action" value="merge"' in page.text and "Tandai duplikat" in page.text
        empty = await http.post(f"/dasbor/laporan/{dup}", data={"action": "merge", "csrf": csrf})
        page = await http.get(empty.headers["location"])
        assert "Tulis tiket laporan utamanya dulu" in page.text
        merged = await http.post(
            f"/dasbor/laporan/{dup}", data={"action": "merge", "note": main, "csrf": csrf}
        )
        page = await http.get(merged.headers["location"])
        assert main in page.text
        into_itself = await http.post(
            f"/dasbor/laporan/{main}", data={"action": "merge", "note": main, "csrf": csrf}
        )
        assert into_itself.status_code == 303
    async with sessions() as s:
        found = {r.ticket: (r.status, r.duplicate_of_id) for r in (await s.scalars(select(Report)))}
        main_id = await s.scalar(select(Report.id).where(Report.ticket == main))
    assert found == {main: ("new", None), dup: ("duplicate", main_id)}


async def test_hand_over_to_another_officer_of_the_area(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cast = await _cast(sessions)
    await cast.reporter.file_report()
    (ticket,) = await _tickets(sessions)
    async with sessions() as s:
        officer = await s.scalar(select(Contact).where(Contact.external_id == 4001))
        wayan = await s.scalar(select(Contact).where(Contact.external_id == 4002))
    assert officer is not None and wayan is not None
    app, _desk = desk_app(sessions, cast.coordinator)
    async with client(app) as http:
        csrf = await sign_in(http, cast.coordinator)
        page = await http.get(f"/dasbor/laporan/{ticket}")
        assert "Bripka Andi" in page.text and "Brigpol Wayan" not in page.text  # not his area
        refused = await http.post(
            f"/dasbor/laporan/{ticket}",
            data={"action": "hand", "officer": str(wayan.id), "csrf": csrf},
        )
        assert "tidak bisa menerima" in (await http.get(refused.headers["location"])).text
        done = await http.post(
            f"/dasbor/laporan/{ticket}",
            data={"action": "hand", "officer": str(officer.id), "csrf": csrf},
        )
        assert "diserahkan kepada Bripka Andi" in (await http.get(done.headers["location"])).text
    async with sessions() as s:
        report = await s.scalar(select(Report).where(Report.ticket == ticket))
        assert report is not None
        assert (report.status, report.assignee_id) == ("claimed", officer.id)
        notices = (
            await s.scalars(select(Outbox).where(Outbox.kind == "notice", Outbox.chat_id == 4001))
        ).all()
        event = await s.scalar(select(ReportEvent).where(ReportEvent.kind == "handed"))
    assert len(notices) == 1 and ticket in notices[0].payload["reply"]["text"]
    assert event is not None and event.via == "dasbor"


async def test_filters_sorting_and_pages_live_in_the_url(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cast = await _cast(sessions)
    for i in range(12):
        cast.reporter.advance(minutes=10)
        category = "kesehatan" if i % 3 == 0 else "keamanan"
        await cast.reporter.file_report(description=f"Kejadian nomor {i:02d}", category=category)
    tickets = await _tickets(sessions)
    app, _desk = desk_app(sessions, cast.coordinator, page_size=10)
    async with client(app) as http:
        csrf = await sign_in(http, cast.coordinator)
        await http.post(f"/dasbor/laporan/{tickets[0]}", data={"action": "claim", "csrf": csrf})
        first = await http.get("/dasbor/")
        assert first.text.count("/dasbor/laporan/KTN-") == 10
        assert "Kejadian nomor 11" in first.text and "Kejadian nomor 01" not in first.text
        assert 'href="?page=2"' in first.text
        second = await http.get("/dasbor/?page=2")
        assert second.text.count("/dasbor/laporan/KTN-") == 2
        oldest = await http.get("/dasbor/?sort=oldest")
        assert oldest.text.index("nomor 00") < oldest.text.index("nomor 01")
        health = await http.get("/dasbor/?category=kesehatan")
        assert health.text.count("/dasbor/laporan/KTN-") == 4
        text = await http.get("/dasbor/?q=NOMOR+07")
        assert text.text.count("/dasbor/laporan/KTN-") == 1 and "nomor 07" in text.text
        prefix = await http.get("/dasbor/?q=kejadi")  # the start of a word finds it
        assert prefix.text.count("/dasbor/laporan/KTN-") == 10
        for typed in ['"', "*", "NEAR(", "AND", "%", "_", "nomor 07*", '"nomor" OR']:
            answer = await http.get("/dasbor/", params={"q": typed})
            assert answer.status_code == 200, typed  # search operators are only text
        quoted = await http.get("/dasbor/", params={"q": '"nomor 07"'})
        assert quoted.text.count("/dasbor/laporan/KTN-") == 1
        by_ticket = await http.get(f"/dasbor/?q={tickets[3]}")
        assert by_ticket.text.count("/dasbor/laporan/KTN-") == 1
        claimed = await http.get("/dasbor/?status=claimed")
        assert claimed.text.count("/dasbor/laporan/KTN-") == 1 and tickets[0] in claimed.text
        async with sessions() as s:
            andi = await s.scalar(select(Contact.id).where(Contact.external_id == 4001))
            sari = await s.scalar(select(Contact.id).where(Contact.external_id == 4003))
        assert (await http.get(f"/dasbor/?officer={andi}")).text.count("/laporan/KTN-") == 0
        assert (await http.get(f"/dasbor/?officer={sari}")).text.count("/laporan/KTN-") == 1
        # the filter stays in the page links and the download links
        kept = await http.get("/dasbor/?category=keamanan&page=1")
        assert "ekspor.csv?category=keamanan" in kept.text
        day = cast.reporter.now.date()
        none = await http.get(f"/dasbor/?to={day - timedelta(days=1)}")
        assert none.text.count("/dasbor/laporan/KTN-") == 0
        some = await http.get(f"/dasbor/?from={day}&to={day}")
        assert some.text.count("/dasbor/laporan/KTN-") == 10


async def test_downloads_follow_the_filter_and_ekspor_anonymity(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cast = await _cast(sessions)
    await cast.reporter.file_report(description="Terbuka namanya")
    await cast.reporter.file_report(description="Rahasia", category="kesehatan", anonymous=True)
    app, _desk = desk_app(sessions, cast.coordinator)
    async with client(app) as http:
        await sign_in(http, cast.coordinator)
        all_rows = list(csv.DictReader(io.StringIO((await http.get("/dasbor/ekspor.csv")).text)))
        named = await http.get("/dasbor/ekspor.geojson?category=keamanan")
        assert named.headers["content-type"].startswith("application/geo+json")
        features = json.loads(named.text)["features"]
    by_text = {r["description"]: r for r in all_rows}
    assert by_text["Terbuka namanya"]["reporter_name"] == "Budi Santoso"
    assert by_text["Rahasia"]["reporter_name"] == "" and by_text["Rahasia"]["reporter_phone"] == ""
    assert "Budi" not in json.dumps(by_text["Rahasia"])
    assert [f["properties"]["description"] for f in features] == ["Terbuka namanya"]


async def test_map_data_has_one_point_per_located_report(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cast = await _cast(sessions)
    for _ in range(3):
        await cast.reporter.file_report()
    async with sessions() as s:  # one of them without a pin
        report = await s.scalar(select(Report).order_by(Report.id).limit(1))
        assert report is not None
        report.latitude, report.longitude = -3.7956, 102.2592
        await s.commit()
    app, _desk = desk_app(sessions, cast.officer)
    async with client(app) as http:
        await sign_in(http, cast.officer)
        data = (await http.get("/dasbor/peta.json")).json()
        page = await http.get("/dasbor/peta?status=new")
    assert [p["ticket"] for p in data["points"]] == [report.ticket]
    assert data["points"][0]["lat"] == -3.7956 and data["truncated"] is False
    assert 'data-src="/dasbor/peta.json?status=new"' in page.text
    assert "leaflet.markercluster.js" in page.text


async def test_anonymous_reporter_never_on_the_page(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cast = await _cast(sessions)
    await cast.reporter.file_report(description="Tanpa nama", anonymous=True)
    (ticket,) = await _tickets(sessions)
    app, _desk = desk_app(sessions, cast.coordinator)
    async with client(app) as http:
        await sign_in(http, cast.coordinator)
        page = await http.get(f"/dasbor/laporan/{ticket}")
    assert "Anonim" in page.text
    assert "Budi" not in page.text and "6281100001" not in page.text


async def test_english_desk(sessions: async_sessionmaker[AsyncSession]) -> None:
    cast = await _cast(sessions)
    await cast.coordinator.send("/language en")
    app, _desk = desk_app(sessions, cast.coordinator)
    async with client(app) as http:
        await sign_in(http, cast.coordinator)
        page = await http.get("/dasbor/")
        assert "Reports" in page.text and '<html lang="en">' in page.text
        switched = await http.get("/dasbor/bahasa/id?back=/dasbor/angka", follow_redirects=True)
        assert "Angka" in switched.text and '<html lang="id">' in switched.text
    assert texts  # the helper stays imported for symmetry with the other tests


async def test_an_erased_reporters_report_shows_the_marker_in_the_officers_language(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cast = await _cast(sessions)
    await cast.reporter.file_report(description="Pencurian helm di parkiran pasar")
    (ticket,) = await _tickets(sessions)
    await cast.reporter.send("/hapusdata")
    await cast.reporter.send(button="erase:yes")
    app, _desk = desk_app(sessions, cast.officer)
    async with client(app) as http:
        await sign_in(http, cast.officer)
        page = await http.get(f"/dasbor/laporan/{ticket}")
        listed = await http.get("/dasbor/")
        assert "dihapus atas permintaan pelapor" in page.text
        assert "dihapus atas permintaan pelapor" in listed.text
        assert "Pencurian helm" not in page.text + listed.text
        assert "Budi" not in page.text + listed.text
        await http.get("/dasbor/bahasa/en")
        page = await http.get(f"/dasbor/laporan/{ticket}")
        assert "deleted at the reporter&#39;s request" in page.text

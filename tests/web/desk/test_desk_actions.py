"""The desk's own actions beyond the list: "Buka lagi" (staff reopen a closed report), "Selesai"
with a closure photo (into the media store, refused politely without losing the note), the
merge and every other action marked "via dasbor", a hand-over that tells the reporter, and
every POST read within bounds (a polite 413)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.config import CoreConfig
from handlers.types import Channel
from storage import reports
from storage.models import Contact, MediaBlob, Outbox, Report, ReportEvent, ReportMedia
from tests.support.chats import ALERT_GROUP, Cast, FakeChat, staff_cast
from tests.support.desk import client, desk_app, sign_in, with_desk
from tests.support.media import local_library, ref_of, stored_files

PHOTO_LIMIT = 1024 * 1024 // 10  # shown as 0,1 MB
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40  # a JPEG's first bytes, ~10 KB
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 2048


def _required_photo(config: CoreConfig) -> CoreConfig:
    """Keamanan reports need a photo of the result to be resolved."""
    categories = tuple(
        dataclasses.replace(c, closure_photo="required") if c.key == "keamanan" else c
        for c in config.categories
    )
    return dataclasses.replace(config, categories=categories)


async def _cast(sessions: async_sessionmaker[AsyncSession], required: bool = False) -> Cast:
    cast = await staff_cast(sessions)
    for chat in (cast.reporter, cast.resident, cast.officer, cast.other_officer, cast.coordinator):
        if required:
            chat.config = _required_photo(chat.config)
    with_desk(cast.officer, cast.other_officer, cast.coordinator, cast.reporter)
    return cast


async def _filed(
    sessions: async_sessionmaker[AsyncSession], count: int = 1, *, required: bool = False
) -> tuple[Cast, list[str]]:
    """The cast, and the tickets of ``count`` reports Budi filed in Sumber Jaya."""
    cast = await _cast(sessions, required)
    for i in range(count):
        await cast.reporter.file_report(description=f"Laporan nomor {i}")
    return cast, await _tickets(sessions)


async def _report(sessions: async_sessionmaker[AsyncSession], ticket: str) -> Report:
    async with sessions() as s:
        found = await s.scalar(select(Report).where(Report.ticket == ticket))
    assert found is not None
    return found


async def _tickets(sessions: async_sessionmaker[AsyncSession]) -> list[str]:
    async with sessions() as s:
        return list((await s.scalars(select(Report.ticket).order_by(Report.id))).all())


async def _outbox(sessions: async_sessionmaker[AsyncSession], since: int = 0) -> list[Outbox]:
    async with sessions() as s:
        found = await s.scalars(select(Outbox).where(Outbox.id > since).order_by(Outbox.id))
        return list(found.all())


async def _last_outbox_id(sessions: async_sessionmaker[AsyncSession]) -> int:
    rows = await _outbox(sessions)
    return rows[-1].id if rows else 0


async def _events(sessions: async_sessionmaker[AsyncSession], ticket: str) -> list[ReportEvent]:
    report = await _report(sessions, ticket)
    async with sessions() as s:
        return await reports.events_of(s, report.id)


async def _follow(sessions: async_sessionmaker[AsyncSession], ticket: str, chat: FakeChat) -> None:
    report = await _report(sessions, ticket)
    async with sessions() as s:
        contact = await s.scalar(
            select(Contact).where(
                Contact.channel == chat.channel.value, Contact.external_id == chat.user_id
            )
        )
        assert contact is not None
        await reports.follow(s, report.id, contact.id, chat.now)
        await s.commit()


async def _post(http: httpx.AsyncClient, ticket: str, csrf: str, **fields: str) -> httpx.Response:
    return await http.post(f"/dasbor/laporan/{ticket}", data={"csrf": csrf, **fields})


async def _after(http: httpx.AsyncClient, answer: httpx.Response) -> str:
    assert answer.status_code == 303, answer.text
    return (await http.get(answer.headers["location"])).text


def _text(row: Outbox) -> str:
    return str(row.payload["reply"]["text"])


# --- Buka lagi ---------------------------------------------------------------------------------


async def test_staff_reopen_a_resolved_report_and_everyone_concerned_hears_it(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cast, (ticket,) = await _filed(sessions)
    await _follow(sessions, ticket, cast.resident)
    app, _desk = desk_app(sessions, cast.coordinator)
    async with client(app) as http:
        csrf = await sign_in(http, cast.coordinator)
        page = await http.get(f"/dasbor/laporan/{ticket}")
        assert "Buka lagi" not in page.text  # open: nothing to reopen
        still_open = await _post(http, ticket, csrf, action="reopen", note="Belum beres")
        assert "masih terbuka" in await _after(http, still_open)
        await _post(http, ticket, csrf, action="resolve", note="Lampu sudah diganti")
        page = await http.get(f"/dasbor/laporan/{ticket}")
        assert 'name="action" value="reopen"' in page.text and "Buka lagi" in page.text
        no_reason = await _post(http, ticket, csrf, action="reopen")
        assert "Tulis alasan laporan ini dibuka lagi dulu" in await _after(http, no_reason)
        assert (await _report(sessions, ticket)).status == "resolved"
        mark = await _last_outbox_id(sessions)
        done = await _post(
            http, ticket, csrf, action="reopen", note="Warga bilang lampunya mati lagi"
        )
        page_text = await _after(http, done)
    assert f"{ticket} dibuka lagi" in page_text
    assert "Dibuka lagi" in page_text and "lewat dasbor" in page_text
    report = await _report(sessions, ticket)
    assert (report.status, report.closed_at) == ("reopened", None)
    reopened = [e for e in await _events(sessions, ticket) if e.kind == "reopened"]
    assert [(e.via, e.note) for e in reopened] == [("dasbor", "Warga bilang lampunya mati lagi")]
    rows = await _outbox(sessions, mark)
    edits = [r for r in rows if r.kind == "alert_edit" and r.chat_id == ALERT_GROUP]
    assert len(edits) == 1 and "Dibuka lagi oleh Iptu Sari" in _text(edits[0])
    assert "Catatan: Warga bilang lampunya mati lagi" in _text(edits[0])
    [again] = [r for r in rows if r.kind == "alert" and r.chat_id == ALERT_GROUP]
    assert _text(again).startswith("🔁 DIBUKA LAGI oleh Iptu Sari")
    assert [o[1].split(":")[0] for o in again.payload["reply"]["options"]][:3] == [
        "claim",
        "resolve",
        "reject",
    ]
    told = {r.chat_id: _text(r) for r in rows if r.kind == "status"}
    assert set(told) == {cast.reporter.user_id, cast.resident.user_id}
    for text in told.values():
        assert f"Laporan {ticket} dibuka lagi oleh Iptu Sari" in text
        assert "Alasan: Warga bilang lampunya mati lagi" in text


async def test_a_rejected_report_and_a_duplicate_are_reopened_by_an_officer_of_the_area(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cast, (main, rejected, duplicate) = await _filed(sessions, 3)
    app, _desk = desk_app(sessions, cast.officer)
    async with client(app) as http:
        csrf = await sign_in(http, cast.officer)
        await _post(http, rejected, csrf, action="reject", note="Bukan wilayah kami")
        await _post(http, duplicate, csrf, action="merge", note=main)
        assert (await _report(sessions, duplicate)).duplicate_of_id is not None
        for ticket in (rejected, duplicate):
            done = await _post(http, ticket, csrf, action="reopen", note="Keliru, ditangani lagi")
            assert f"{ticket} dibuka lagi" in await _after(http, done)
    for ticket in (rejected, duplicate):
        report = await _report(sessions, ticket)
        assert (report.status, report.duplicate_of_id) == ("reopened", None)
    # the chat's buttons work on it again: the officer claims it in the group
    report = await _report(sessions, rejected)
    await cast.officer.in_group().send(button=f"claim:{report.id}")
    assert (await _report(sessions, rejected)).status == "claimed"


async def test_the_reporter_reopening_in_chat_still_says_the_reporter(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """The chat's own "Belum" keeps its words: the reporter, not a name, reopened it."""
    cast, (ticket,) = await _filed(sessions)
    report = await _report(sessions, ticket)
    await cast.officer.in_group().send(button=f"resolve:{report.id}")
    await cast.officer.send("Sudah beres")
    mark = await _last_outbox_id(sessions)
    await cast.reporter.send(f"belum {ticket} masih ada")
    rows = await _outbox(sessions, mark)
    [edit] = [r for r in rows if r.kind == "alert_edit" and r.chat_id == ALERT_GROUP]
    assert "Dibuka lagi oleh pelapor" in _text(edit)
    [again] = [r for r in rows if r.kind == "alert" and r.chat_id == ALERT_GROUP]
    assert _text(again).startswith("🔁 DIBUKA LAGI: pelapor menyatakan belum selesai")
    [event] = [e for e in await _events(sessions, ticket) if e.kind == "reopened"]
    assert event.via is None


# --- Selesai with a closure photo --------------------------------------------------------------


async def test_resolve_with_a_required_photo_from_the_desk(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    cast, (ticket,) = await _filed(sessions, required=True)
    whatsapp = FakeChat(
        sessions,
        config=cast.reporter.config,
        channel=Channel.WHATSAPP,
        user_id=6281200002,
        name="Siti Aminah",
        now=cast.reporter.now,
    )
    await whatsapp.onboard()
    await _follow(sessions, ticket, whatsapp)
    root = tmp_path / "media"
    library = local_library(root, sessions)
    app, _desk = desk_app(sessions, cast.officer, media=library, photo_limit=PHOTO_LIMIT)
    note = "Kabel sudah dipasang lagi"
    async with client(app) as http:
        csrf = await sign_in(http, cast.officer)
        page = await http.get(f"/dasbor/laporan/{ticket}")
        assert 'enctype="multipart/form-data"' in page.text
        assert 'type="file" name="photo"' in page.text and " required " in page.text
        assert "Wajib untuk jenis laporan ini" in page.text and "0,1 MB" in page.text

        def send(files: dict[str, tuple[str, bytes, str]] | None) -> httpx.Request:
            return http.build_request(
                "POST",
                f"/dasbor/laporan/{ticket}",
                data={"csrf": csrf, "action": "resolve", "note": note},
                files=files or {"photo": ("", b"", "application/octet-stream")},
            )

        missing = await http.send(send(None))
        assert missing.status_code == 400
        assert "wajib dilampiri foto hasil penanganan" in missing.text
        assert f">{note}</textarea>" in missing.text  # the note is still in its box

        not_photo = await http.send(send({"photo": ("kabel.jpg", b"%PDF-1.4 ...", "image/jpeg")}))
        assert not_photo.status_code == 415
        assert (
            "bukan foto JPEG atau PNG" in not_photo.text and f">{note}</textarea>" in not_photo.text
        )

        big = b"\xff\xd8\xff" + b"\x00" * PHOTO_LIMIT
        too_large = await http.send(send({"photo": ("besar.jpg", big, "image/jpeg")}))
        assert too_large.status_code == 413
        assert "terlalu besar (paling besar 0,1 MB)" in too_large.text
        assert f">{note}</textarea>" in too_large.text
        assert (await _report(sessions, ticket)).status == "new"
        assert [p for p in stored_files(root) if ".incoming" not in p.parts] == []

        mark = await _last_outbox_id(sessions)
        done = await http.send(send({"photo": ("hasil.jpg", JPEG, "image/jpeg")}))
        page_text = await _after(http, done)
        assert f"{ticket} selesai" in page_text
        assert "Foto hasil penanganan" in page_text
        async with sessions() as s:
            [kept] = (
                await s.scalars(select(ReportMedia).where(ReportMedia.purpose == "closure"))
            ).all()
            blob = await s.get(MediaBlob, ref_of(JPEG))
        assert (kept.store_ref, kept.content_type, kept.size) == (
            ref_of(JPEG),
            "image/jpeg",
            len(JPEG),
        )
        assert blob is not None and blob.holds == 0  # kept because the report refers to it
        shown = await http.get(f"/dasbor/media/{kept.id}")
        assert shown.status_code == 200 and shown.content == JPEG

        # a second photo for a report resolved meanwhile: refused, and not kept
        again = await http.send(send({"photo": ("lagi.png", PNG, "image/png")}))
        assert "sudah" in (await _after(http, again)).lower()
    report = await _report(sessions, ticket)
    assert (report.status, report.resolution_note) == ("resolved", note)
    on_disk = [p.name for p in stored_files(root) if ".incoming" not in p.parts]
    assert on_disk == [ref_of(JPEG).removeprefix("sha256:")]
    rows = await _outbox(sessions, mark)
    news = {r.channel: r for r in rows if r.kind == "status"}
    assert set(news) == {"telegram", "whatsapp"}
    for row in news.values():  # the resident on Telegram and the follower on WhatsApp
        assert row.payload["reply"]["media"]["ref"] == ref_of(JPEG)
        assert f"Catatan petugas: {note}" in _text(row)
    assert [o[0] for o in news["telegram"].payload["reply"]["options"]] == ["Sudah beres", "Belum"]
    [edit] = [r for r in rows if r.kind == "alert_edit" and r.chat_id == ALERT_GROUP]
    assert "Foto hasil penanganan terlampir untuk pelapor" in _text(edit)
    [event] = [e for e in await _events(sessions, ticket) if e.kind == "resolved"]
    assert event.via == "dasbor"


async def test_an_optional_photo_may_be_left_out_and_a_desk_without_a_store_asks_for_none(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    cast = await _cast(sessions)
    await cast.reporter.file_report()
    await cast.reporter.file_report(category="kesehatan")
    first, second = await _tickets(sessions)
    library = local_library(tmp_path / "media", sessions)
    app, _desk = desk_app(sessions, cast.officer, media=library, photo_limit=PHOTO_LIMIT)
    async with client(app) as http:
        csrf = await sign_in(http, cast.officer)
        page = await http.get(f"/dasbor/laporan/{first}")
        assert "Boleh dilampirkan" in page.text and " required " not in page.text.split("photo")[1]
        answer = await http.post(
            f"/dasbor/laporan/{first}",
            data={"csrf": csrf, "action": "resolve", "note": "Beres"},
            files={"photo": ("", b"", "application/octet-stream")},
        )
        assert "selesai" in await _after(http, answer)
    assert (await _report(sessions, first)).status == "resolved"
    bare, _desk = desk_app(sessions, cast.officer)  # no media store: a plain form
    async with client(bare) as http:
        await sign_in(http, cast.officer)
        page = await http.get(f"/dasbor/laporan/{second}")
        assert 'type="file"' not in page.text and "multipart" not in page.text


# --- every desk action is in the trail "via dasbor" --------------------------------------------


async def test_every_desk_action_is_marked_via_dasbor_in_the_trail(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cast, (one, two, three, four) = await _filed(sessions, 4)
    async with sessions() as s:
        andi = await s.scalar(select(Contact.id).where(Contact.external_id == 4001))
    app, _desk = desk_app(sessions, cast.coordinator)
    async with client(app) as http:
        csrf = await sign_in(http, cast.coordinator)
        await _post(http, one, csrf, action="claim")
        await _post(http, one, csrf, action="resolve", note="Beres")
        await _post(http, one, csrf, action="reopen", note="Belum")
        await _post(http, two, csrf, action="reject", note="Bukan kejadian")
        await _post(http, three, csrf, action="merge", note=four)
        await _post(http, four, csrf, action="hand", officer=str(andi))
        page = await http.get(f"/dasbor/laporan/{three}")
        assert "Ditandai duplikat" in page.text and page.text.count("lewat dasbor") == 1
        page = await http.get(f"/dasbor/laporan/{four}")
        assert "Duplikat digabung ke sini" in page.text and page.text.count("lewat dasbor") == 2
    kinds = []
    for ticket in (one, two, three, four):
        for event in await _events(sessions, ticket):
            if event.kind != "created":
                kinds.append(event.kind)
                assert event.via == "dasbor", (ticket, event.kind)
    assert sorted(kinds) == sorted(
        ["claimed", "resolved", "reopened", "rejected", "duplicate", "merged_in", "handed"]
    )


# --- hand-over ---------------------------------------------------------------------------------


async def test_a_hand_over_edits_the_alert_and_tells_the_officer_and_the_reporter(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cast, (ticket,) = await _filed(sessions)
    report = await _report(sessions, ticket)
    await cast.coordinator.send(f"tangani {ticket}")  # the coordinator holds it first
    assert (await _report(sessions, ticket)).assignee_id is not None
    async with sessions() as s:
        andi = await s.scalar(select(Contact.id).where(Contact.external_id == 4001))
    mark = await _last_outbox_id(sessions)
    app, _desk = desk_app(sessions, cast.coordinator)
    async with client(app) as http:
        csrf = await sign_in(http, cast.coordinator)
        done = await _post(http, ticket, csrf, action="hand", officer=str(andi))
        assert "diserahkan kepada Bripka Andi" in await _after(http, done)
    rows = await _outbox(sessions, mark)
    [edit] = [r for r in rows if r.kind == "alert_edit" and r.chat_id == ALERT_GROUP]
    assert "Ditangani oleh Bripka Andi" in _text(edit)
    [notice] = [r for r in rows if r.kind == "notice" and r.chat_id == 4001]
    assert "Iptu Sari menyerahkan laporan" in _text(notice)
    [news] = [r for r in rows if r.kind == "status" and r.chat_id == cast.reporter.user_id]
    assert f"Laporan {ticket} sedang ditangani oleh Bripka Andi" in _text(news)
    assert report.id == news.report_id


# --- bounded reads -----------------------------------------------------------------------------


async def test_every_desk_post_is_read_within_bounds(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    cast, (ticket,) = await _filed(sessions)
    library = local_library(tmp_path / "media", sessions)
    app, _desk = desk_app(
        sessions, cast.officer, media=library, photo_limit=PHOTO_LIMIT, max_form_bytes=8192
    )
    async with client(app) as http:
        csrf = await sign_in(http, cast.officer)
        long_note = await _post(http, ticket, csrf, action="resolve", note="x" * 9000)
        assert long_note.status_code == 413
        assert "Formulir terlalu besar" in long_note.text and "Keluar" in long_note.text

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: cut while reading
            yield f"csrf={csrf}&action=claim&note=".encode()
            for _ in range(20):
                yield b"y" * 1024

        streamed = await http.post(f"/dasbor/laporan/{ticket}", content=chunks())
        assert streamed.status_code == 413

        big = b"\xff\xd8\xff" + b"\x00" * (PHOTO_LIMIT + 10_000)
        photo = await http.post(
            f"/dasbor/laporan/{ticket}",
            data={"csrf": csrf, "action": "resolve", "note": "Beres"},
            files={"photo": ("besar.jpg", big, "image/jpeg")},
        )
        assert photo.status_code == 413 and "Foto paling besar 0,1 MB" in photo.text

        logout = await http.post("/dasbor/keluar", data={"csrf": csrf, "pad": "z" * 9000})
        assert logout.status_code == 413
        assert (await http.get("/dasbor/")).status_code == 200  # still signed in

        link = await http.post("/dasbor/masuk/whatever", content=b"a" * 9000)
        assert link.status_code == 413 and "Formulir terlalu besar" in link.text
    report = await _report(sessions, ticket)
    assert (report.status, report.resolution_note) == ("new", None)

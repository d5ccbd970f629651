"""The desk's sign-in (a /dasbor link, once, 10 minutes), its session (cookie flags, idle
timeout, sign-out here and everywhere), CSRF, rate limits, and the area scope (404)."""

from __future__ import annotations

import hashlib

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.types import Channel
from storage.models import DeskLogin, Report
from storage.types import Role
from tests.support.chats import SUMBER_JAYA, Cast, FakeChat, staff_cast, texts
from tests.support.desk import DESK_URL, client, desk_app, link_of, sign_in, with_desk


async def _cast(sessions: async_sessionmaker[AsyncSession]) -> Cast:
    cast = await staff_cast(sessions)
    with_desk(cast.officer, cast.other_officer, cast.coordinator, cast.reporter)
    return cast


async def _ticket(sessions: async_sessionmaker[AsyncSession]) -> str:
    async with sessions() as s:
        ticket = await s.scalar(select(Report.ticket).order_by(Report.id.desc()).limit(1))
    assert ticket
    return ticket


async def test_a_link_signs_in_once_and_the_cookie_is_locked_down(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cast = await _cast(sessions)
    await cast.reporter.file_report(description="Lampu jalan mati di gang 3")
    app, _desk = desk_app(sessions, cast.coordinator)
    link = await link_of(cast.coordinator)
    token = link.rsplit("/", 1)[1]
    async with sessions() as s:  # only the hash is kept
        stored = (await s.scalars(select(DeskLogin.token_hash))).all()
    assert stored == [hashlib.sha256(token.encode()).hexdigest()]
    async with client(app) as http:
        path = link.removeprefix(DESK_URL)
        preview = await http.get(path)  # a link preview: a page with a button, nothing spent
        assert preview.status_code == 200 and '<form method="post"' in preview.text
        first = await http.post(path)
        assert first.status_code == 303
        cookie = first.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/dasbor" in cookie
        assert "Secure" not in cookie  # plain http here
        listing = await http.get("/dasbor/")
        assert "Lampu jalan mati" in listing.text
        async with client(app) as stranger:
            again = await stranger.post(path)
            assert again.status_code == 403
            assert "tidak berlaku" in again.text
            assert (await stranger.get("/dasbor/")).status_code == 303  # not signed in


async def test_an_expired_link_is_refused_and_https_cookies_are_secure(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cast = await _cast(sessions)
    app, _desk = desk_app(sessions, cast.coordinator)
    old = (await link_of(cast.coordinator)).removeprefix(DESK_URL)
    cast.coordinator.advance(minutes=10, seconds=1)
    async with client(app) as http:
        assert (await http.post(old)).status_code == 403
        fresh = (await link_of(cast.coordinator)).removeprefix(DESK_URL)
        answer = await http.post(fresh, headers={"x-forwarded-proto": "https"})
        assert answer.status_code == 303
        assert "Secure" in answer.headers["set-cookie"]


async def test_residents_get_no_link(sessions: async_sessionmaker[AsyncSession]) -> None:
    cast = await _cast(sessions)
    outcome = await cast.reporter.send("/dasbor")
    assert "hanya untuk petugas" in texts(outcome)
    async with sessions() as s:
        assert await s.scalar(select(func.count()).select_from(DeskLogin)) == 0


async def test_english_command_and_text(sessions: async_sessionmaker[AsyncSession]) -> None:
    cast = await _cast(sessions)
    await cast.officer.send("/language en")
    outcome = await cast.officer.send("/dashboard")
    assert "Open the KTN desk" in texts(outcome) and "/dasbor/masuk/" in texts(outcome)


async def test_guessing_links_is_rate_limited(sessions: async_sessionmaker[AsyncSession]) -> None:
    cast = await _cast(sessions)
    app, _desk = desk_app(sessions, cast.coordinator, login_attempts_per_minute=5)
    async with client(app) as http:
        codes = [(await http.post(f"/dasbor/masuk/guess{i}")).status_code for i in range(7)]
    assert codes[:5] == [403] * 5
    assert codes[5:] == [429, 429]


async def test_idle_sessions_end_and_logout_everywhere_from_chat(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cast = await _cast(sessions)
    app, _desk = desk_app(sessions, cast.coordinator, idle_minutes=30)
    async with client(app) as one, client(app) as two:
        await sign_in(one, cast.coordinator)
        await sign_in(two, cast.coordinator)
        cast.coordinator.advance(minutes=29)
        assert (await one.get("/dasbor/")).status_code == 200  # used: the idle clock restarts
        cast.coordinator.advance(minutes=29)
        assert (await one.get("/dasbor/")).status_code == 200
        assert (await two.get("/dasbor/")).status_code == 303  # idle for 58 minutes
        await sign_in(two, cast.coordinator)
        outcome = await cast.coordinator.send("/dasbor keluar")
        assert "2 sesi" in texts(outcome)
        assert (await one.get("/dasbor/")).status_code == 303
        assert (await two.get("/dasbor/")).status_code == 303


async def test_sign_out_button_needs_csrf(sessions: async_sessionmaker[AsyncSession]) -> None:
    cast = await _cast(sessions)
    app, _desk = desk_app(sessions, cast.officer)
    async with client(app) as http:
        csrf = await sign_in(http, cast.officer)
        assert (await http.post("/dasbor/keluar")).status_code == 403
        assert (await http.get("/dasbor/")).status_code == 200
        assert (await http.post("/dasbor/keluar", data={"csrf": csrf})).status_code == 200
        assert (await http.get("/dasbor/")).status_code == 303


async def test_a_post_without_csrf_is_403_and_changes_nothing(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cast = await _cast(sessions)
    await cast.reporter.file_report()
    ticket = await _ticket(sessions)
    app, _desk = desk_app(sessions, cast.officer)
    async with client(app) as http:
        csrf = await sign_in(http, cast.officer)
        refused = await http.post(f"/dasbor/laporan/{ticket}", data={"action": "claim"})
        assert refused.status_code == 403
        wrong = await http.post(
            f"/dasbor/laporan/{ticket}", data={"action": "claim", "csrf": csrf[:-1] + "x"}
        )
        assert wrong.status_code == 403
        async with sessions() as s:
            assert await s.scalar(select(Report.status).where(Report.ticket == ticket)) == "new"
        done = await http.post(f"/dasbor/laporan/{ticket}", data={"action": "claim", "csrf": csrf})
        assert done.status_code == 303
    async with sessions() as s:
        assert await s.scalar(select(Report.status).where(Report.ticket == ticket)) == "claimed"


async def test_someone_elses_report_is_404(sessions: async_sessionmaker[AsyncSession]) -> None:
    cast = await _cast(sessions)
    await cast.reporter.file_report()
    ticket = await _ticket(sessions)
    # a coordinator of another kecamatan (Gedong Tataan) and an officer of another village
    elsewhere = FakeChat(sessions, user_id=4010, name="Kompol Dewi")
    await elsewhere.enrol(Role.COORDINATOR, "18.09.01")
    with_desk(elsewhere)
    for person in (elsewhere, cast.other_officer):
        app, _desk = desk_app(sessions, person)
        async with client(app) as http:
            csrf = await sign_in(http, person)
            assert (await http.get(f"/dasbor/laporan/{ticket}")).status_code == 404
            assert (await http.get("/dasbor/laporan/KTN-NOSUCH")).status_code == 404
            posted = await http.post(
                f"/dasbor/laporan/{ticket}", data={"action": "claim", "csrf": csrf}
            )
            assert posted.status_code == 404
            listing = await http.get("/dasbor/")
            assert ticket not in listing.text
            points = (await http.get("/dasbor/peta.json")).json()["points"]
            assert points == []
            csv = await http.get("/dasbor/ekspor.csv")
            assert ticket not in csv.text
    async with sessions() as s:
        assert await s.scalar(select(Report.status).where(Report.ticket == ticket)) == "new"
    app, _desk = desk_app(sessions, cast.coordinator)  # the kecamatan above sees it
    async with client(app) as http:
        await sign_in(http, cast.coordinator)
        assert (await http.get(f"/dasbor/laporan/{ticket}")).status_code == 200


async def test_whatsapp_staff_sign_in_by_typing_dasbor(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cast = await _cast(sessions)
    wati = FakeChat(
        sessions,
        channel=Channel.WHATSAPP,
        user_id=6281311112222,
        name="Bripka Wati",
        phone="+6281311112222",
    )
    await wati.enrol(Role.OFFICER, SUMBER_JAYA)
    with_desk(wati)
    link = await link_of(wati, "DASBOR")
    app, _desk = desk_app(sessions, wati)
    async with client(app) as http:
        assert (await http.post(link.removeprefix(DESK_URL))).status_code == 303
        assert "Bripka Wati" in (await http.get("/dasbor/")).text
        outcome = await wati.send("dasbor keluar")
        assert "1 sesi" in texts(outcome)
        assert (await http.get("/dasbor/")).status_code == 303
    assert cast  # the Telegram staff exist beside her

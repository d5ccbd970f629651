"""The desk in headless Chromium (Debian's ``chromium``, driven by Playwright) against the real
``ktn-bot run`` and the fake Bot API: an officer signs in with the link /dasbor gave them (a
used and an expired link are refused), filters, opens a report and claims it -> the Telegram
group's alert is edited and the resident is told; the map shows one marker per located report;
the numbers equal SQL counts; a coordinator of another kecamatan gets 404; a POST without the
CSRF token gets 403. Then the officer resolves it with a photo of the result (required for the
category here; a file that is no photo and one over the limit are refused, the note kept) and
reopens it -> the group's alert is edited each time and the resident gets the photo, then the
news; the pages work at phone width with every control labelled. Screenshots go to artifacts/
and, when missing or with KTN_UPDATE_DOCS_SCREENSHOT=1, to docs/desk-*.png (the README's).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from storage import desk
from storage.areas import get_by_code
from storage.models import Contact, Report
from storage.reports import create_report
from storage.types import Role, utcnow
from tests.conftest import ROOT
from tests.support.chats import SUMBER_JAYA, WIYONO
from tests.support.telegram_run import (
    GROUP,
    RESIDENT,
    Running,
    file_report,
    invite_code,
)
from tests.web.desk.chromium import CHROMIUM_ARGS, OFFICER, chromium_path, desk_running

pytestmark = pytest.mark.browser

WAIT_MS = 15_000
LINK = re.compile(r"(http://127\.0\.0\.1:\d+/dasbor/masuk/[A-Za-z0-9_\-]+)")
SHOTS = {"list": "desk-list.png", "map": "desk-map.png", "numbers": "desk-numbers.png"}
PHOTO_MB = 0.25  # [media] max_mb.photo here: a closure photo over 256 KB is refused
NOTE = "Motor sudah ditemukan dan dikembalikan ke pemiliknya"
# What sticks out to the right of the screen (the page would scroll sideways).
OVERFLOWING = """() => [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5
               && !e.closest('.table-wrap, .leaflet-container'))
  .map(e => e.tagName.toLowerCase() + '.' + e.className)"""
# Every control a person uses, with the name a screen reader gives it ('' when it has none).
UNLABELLED = """() => [...document.querySelectorAll(
  'button, input:not([type=hidden]), select, textarea')]
  .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
               && !(e.textContent || '').trim())
  .map(e => e.outerHTML)"""


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(chromium_path()), args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            await chromium.close()


def _photo_rules(settings: Settings) -> dict[str, Any]:
    """A security report is resolved with a photo of the result, of at most PHOTO_MB."""
    categories = [
        c.model_copy(update={"closure_photo": "required"}) if c.key == "keamanan" else c
        for c in settings.reports.categories
    ]
    return {
        "reports": settings.reports.model_copy(update={"categories": categories}),
        "media": settings.media.model_copy(
            update={"max_mb": {**settings.media.max_mb, "photo": PHOTO_MB}}
        ),
    }


@pytest.fixture
async def desk_bot(
    migrated_url: str, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> AsyncIterator[tuple[Running, str]]:
    async with desk_running(migrated_url, sessions, tmp_path, _photo_rules) as running:
        yield running


async def seed_more(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Three more reports in Sumber Jaya (two with a pin) and one in Wiyono (outside)."""
    now = utcnow()
    async with sessions() as s:
        sumber = await get_by_code(s, SUMBER_JAYA)
        wiyono = await get_by_code(s, WIYONO)
        assert sumber is not None and wiyono is not None
        places = [(-3.80, 102.26), (-3.79, 102.27), None]
        for i, place in enumerate(places):
            await create_report(
                s,
                category="kesehatan" if i else "bencana",
                description=f"Warga sakit demam nomor {i}",
                area_id=sumber.id,
                reporter_id=None,
                anonymous=True,
                urgent=False,
                now=now - timedelta(days=i + 1),
                latitude=place[0] if place else None,
                longitude=place[1] if place else None,
            )
        await create_report(
            s,
            category="keamanan",
            description="Di desa lain",
            area_id=wiyono.id,
            reporter_id=None,
            anonymous=True,
            urgent=False,
            now=now,
            latitude=-5.4,
            longitude=105.1,
        )
        await s.commit()


async def new_page(browser: Browser, width: int = 1280, height: int = 900) -> Page:
    context = await browser.new_context(
        viewport={"width": width, "height": height}, locale="id-ID", timezone_id="Asia/Jakarta"
    )
    page = await context.new_page()
    page.on("pageerror", lambda error: pytest.fail(f"script error on the page: {error}"))
    return page


async def sign_in(page: Page, link: str) -> None:
    await page.goto(link)
    await page.get_by_role("button", name="Masuk").click()
    await expect(page.get_by_role("heading", name="Laporan")).to_be_visible(timeout=WAIT_MS)


def keep_artifact(page_shot: bytes, name: str) -> None:
    artifacts = ROOT / "artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / name).write_bytes(page_shot)


def keep(page_shot: bytes, name: str) -> None:
    artifacts = ROOT / "artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / name).write_bytes(page_shot)
    docs = ROOT / "docs" / name
    if not docs.exists() or os.environ.get("KTN_UPDATE_DOCS_SCREENSHOT") == "1":
        shutil.copyfile(artifacts / name, docs)


async def test_the_desk_in_chromium(
    desk_bot: tuple[Running, str], browser: Browser, sessions: async_sessionmaker[AsyncSession]
) -> None:
    bot, base = desk_bot
    fake = bot.fake
    code = await invite_code(sessions, Role.OFFICER, SUMBER_JAYA)
    fake.send_text(OFFICER, OFFICER, f"/daftar {code}")
    await fake.wait_for_message(OFFICER, contains="Sumber Jaya")
    await file_report(bot, RESIDENT, "Motor tetangga hilang dari depan rumah")
    alert = await fake.wait_for_message(GROUP, contains="KTN-")
    await seed_more(sessions)

    fake.send_text(OFFICER, OFFICER, "/dasbor")
    answer = await fake.wait_for_message(OFFICER, contains="/dasbor/masuk/")
    found = LINK.search(answer.content)
    assert found, answer.content
    link = found.group(1)

    page = await new_page(browser)
    await sign_in(page, link)
    rows = page.locator("table.reports tbody tr")
    await expect(rows).to_have_count(4)  # Sumber Jaya's four, not Wiyono's

    # a used link is refused, in another browser too
    other = await new_page(browser)
    await other.goto(link)
    await other.get_by_role("button", name="Masuk").click()
    await expect(other.get_by_role("heading")).to_contain_text("tidak berlaku")
    # and an expired one
    async with sessions() as s:
        officer = await s.scalar(select(Contact).where(Contact.external_id == OFFICER))
        assert officer is not None
        old = desk.create_login(
            s, officer.id, utcnow() - timedelta(minutes=11), timedelta(minutes=10)
        )
        await s.commit()
    await other.goto(f"{base}/dasbor/masuk/{old}")
    await other.get_by_role("button", name="Masuk").click()
    await expect(other.get_by_role("heading")).to_contain_text("tidak berlaku")
    assert await other.context.cookies() == []

    # filter: free text and a category, kept in the URL
    await page.get_by_label("Cari teks atau tiket").fill("motor")
    await page.get_by_role("button", name="Terapkan").click()
    await expect(rows).to_have_count(1)
    assert "q=motor" in page.url
    await page.get_by_role("link", name="Hapus saringan").click()
    await page.get_by_label("Kategori").select_option("kesehatan")
    await page.get_by_role("button", name="Terapkan").click()
    await expect(rows).to_have_count(2)
    await page.goto(f"{base}/dasbor/")
    keep(await page.screenshot(full_page=True), SHOTS["list"])

    # open the resident's report and claim it from the web
    async with sessions() as s:
        ticket = await s.scalar(select(Report.ticket).where(Report.description.like("Motor%")))
    assert ticket is not None and ticket in alert.content
    await page.get_by_role("link", name=ticket).click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text(ticket)
    await expect(page.locator(".photos img")).to_have_count(1)
    mark = fake.mark()
    await page.get_by_role("button", name="Tangani").click()
    await expect(page.locator(".flash")).to_contain_text(f"Anda menangani {ticket}")
    await expect(page.locator(".trail")).to_contain_text("lewat dasbor")
    edited = await fake.wait_for_edit(GROUP, alert.message_id, contains="Ditangani", since=mark)
    assert "Bripka Andi" in edited.content
    told = await fake.wait_for_message(RESIDENT, contains=ticket, since=mark, timeout=10)
    assert "Bripka Andi" in told.content

    # a POST without the CSRF token: 403, nothing changes
    refused = await page.request.post(
        f"{base}/dasbor/laporan/{ticket}", form={"action": "resolve", "note": "x"}
    )
    assert refused.status == 403
    async with sessions() as s:
        assert await s.scalar(select(Report.status).where(Report.ticket == ticket)) == "claimed"

    # the map: one marker per located report of the area
    await page.goto(f"{base}/dasbor/peta")
    map_box = page.locator("#map")
    await expect(map_box).to_have_attribute("data-markers", "3", timeout=WAIT_MS)
    assert await page.evaluate("window.ktnDesk.cluster.getLayers().length") == 3
    async with sessions() as s:
        sumber = await get_by_code(s, SUMBER_JAYA)
        assert sumber is not None
        located = await s.scalar(
            select(func.count()).where(Report.area_id == sumber.id, Report.latitude.is_not(None))
        )
    assert located == 3
    await expect(page.locator(".leaflet-marker-icon").first).to_be_visible()
    keep(await page.screenshot(full_page=True), SHOTS["map"])

    # the numbers equal SQL counts
    await page.goto(f"{base}/dasbor/angka")
    async with sessions() as s:
        sumber = await get_by_code(s, SUMBER_JAYA)
        assert sumber is not None
        total = await s.scalar(select(func.count()).where(Report.area_id == sumber.id))
        health = await s.scalar(
            select(func.count()).where(Report.area_id == sumber.id, Report.category == "kesehatan")
        )
    await expect(page.get_by_test_id("created")).to_have_text(str(total))
    await expect(page.locator('[data-total="Kesehatan"]')).to_have_text(str(health))
    await expect(page.get_by_test_id("claimed")).to_have_text("1")
    keep(await page.screenshot(full_page=True), SHOTS["numbers"])

    # phone width: the list still works
    phone = await new_page(browser, 390, 844)
    await phone.context.add_cookies(await page.context.cookies())
    await phone.goto(f"{base}/dasbor/")
    await expect(phone.locator("table.reports tbody tr")).to_have_count(4)

    # a coordinator of another kecamatan: 404 for this report
    async with sessions() as s:
        area = await get_by_code(s, "18.09.01")
        assert area is not None
        stranger = Contact(
            channel="telegram",
            external_id=4999,
            display_name="Kompol Dewi",
            role="coordinator",
            area_id=area.id,
        )
        s.add(stranger)
        await s.flush()
        token = desk.create_login(s, stranger.id, utcnow(), timedelta(minutes=10))
        await s.commit()
    elsewhere = await new_page(browser)
    await sign_in(elsewhere, f"{base}/dasbor/masuk/{token}")
    await expect(elsewhere.locator("table.reports tbody tr")).to_have_count(1)  # Wiyono's
    response = await elsewhere.goto(f"{base}/dasbor/laporan/{ticket}")
    assert response is not None and response.status == 404

    # resolve it with a photo of the result, from the web
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    await page.goto(f"{base}/dasbor/laporan/{ticket}")
    await page.get_by_label("Catatan penyelesaian").fill(NOTE)
    await page.get_by_label("Foto hasil penanganan").set_input_files(
        files=[{"name": "surat.jpg", "mimeType": "image/jpeg", "buffer": b"%PDF-1.4 bukan foto"}]
    )
    await page.get_by_role("button", name="Selesai").click()
    await expect(page.locator(".flash")).to_contain_text("bukan foto JPEG atau PNG")
    await expect(page.get_by_label("Catatan penyelesaian")).to_have_value(NOTE)
    # a photo over the limit is stopped before anything is sent; the note stays
    big = b"\xff\xd8\xff" + bytes(int(PHOTO_MB * 1024 * 1024))
    await page.get_by_label("Foto hasil penanganan").set_input_files(
        files=[{"name": "besar.jpg", "mimeType": "image/jpeg", "buffer": big}]
    )
    await expect(page.locator("#photo-error")).to_contain_text(
        "terlalu besar (paling besar 0,25 MB)"
    )
    sent = len(posts)
    await page.get_by_role("button", name="Selesai").click()
    await expect(page.get_by_label("Catatan penyelesaian")).to_have_value(NOTE)
    assert len(posts) == sent
    shot = await page.screenshot(
        type="jpeg", quality=70, clip={"x": 0, "y": 0, "width": 320, "height": 200}
    )
    await page.get_by_label("Foto hasil penanganan").set_input_files(
        files=[{"name": "hasil.jpg", "mimeType": "image/jpeg", "buffer": shot}]
    )
    mark = fake.mark()
    await page.get_by_role("button", name="Selesai").click()
    await expect(page.locator(".flash")).to_contain_text(f"{ticket} selesai")
    await expect(page.locator(".photos.closure img")).to_have_count(1)
    edited = await fake.wait_for_edit(GROUP, alert.message_id, contains="Selesai oleh", since=mark)
    assert "Bripka Andi" in edited.content and "Foto hasil penanganan terlampir" in edited.content
    told = await fake.wait_for_message(RESIDENT, contains=NOTE, since=mark, timeout=10)
    assert told.kind == "photo" and told.file_id is not None
    assert fake.files[told.file_id].data == shot

    # reopen it from the web
    mark = fake.mark()
    await page.get_by_label("Alasan dibuka lagi").fill("Pemilik bilang motornya rusak")
    await page.get_by_role("button", name="Buka lagi").click()
    await expect(page.locator(".flash")).to_contain_text(f"{ticket} dibuka lagi")
    await expect(page.locator(".trail")).to_contain_text("Dibuka lagi")
    edited = await fake.wait_for_edit(
        GROUP, alert.message_id, contains="Dibuka lagi oleh Bripka Andi", since=mark
    )
    assert "Pemilik bilang motornya rusak" in edited.content
    again = await fake.wait_for_message(GROUP, contains="DIBUKA LAGI oleh Bripka Andi", since=mark)
    assert "claim:" in " ".join(again.button_data())
    told = await fake.wait_for_message(
        RESIDENT, contains="dibuka lagi oleh Bripka Andi", since=mark, timeout=10
    )
    assert "Pemilik bilang motornya rusak" in told.content
    async with sessions() as s:
        assert await s.scalar(select(Report.status).where(Report.ticket == ticket)) == "reopened"

    # phone width: every page fits and every control has a name
    for path in ("/", f"/laporan/{ticket}", "/peta", "/angka"):
        await phone.goto(f"{base}/dasbor{path}")
        await expect(phone.get_by_role("heading", level=1)).to_be_visible()
        sticking_out = await phone.evaluate(OVERFLOWING)
        assert sticking_out == [], f"{path}: {sticking_out}"
        assert await phone.evaluate(UNLABELLED) == [], path
    await phone.goto(f"{base}/dasbor/laporan/{ticket}")
    await expect(phone.get_by_role("button", name="Tangani")).to_be_visible()
    await expect(phone.get_by_role("button", name="Selesai")).to_be_visible()
    keep_artifact(await phone.screenshot(full_page=True), "desk-report-phone.png")

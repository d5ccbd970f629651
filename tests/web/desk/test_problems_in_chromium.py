"""The problem pages in headless Chromium against the real ``ktn-bot run`` and the fake Bot
API: three reports of one resident make a suggestion on the desk, accepted with one click; a
problem made by hand is merged into it; the problem's page shows its reports on a map and their
count per week; the stages move one by one (the resident hears when the response starts and
when it is closed, naming nobody); an analysis note and an action are written on the desk, the
action's owner is reminded in Telegram by the scheduler and answers "selesai" there, which the
page shows; the assessment's numbers and chart appear; the closing note is kept. The pages fit
a phone with every control labelled, and read in English. Screenshots go to artifacts/ and,
when missing, docs/desk-problem.png."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, expect
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from storage.areas import get_by_code
from storage.models import Contact, Problem, ProblemAction
from storage.reports import create_report
from storage.types import Role, utcnow
from tests.support.chats import SUMBER_JAYA
from tests.support.telegram_run import (
    GROUP,
    RESIDENT,
    Running,
    file_report,
    invite_code,
)
from tests.web.desk.chromium import OFFICER, desk_running
from tests.web.desk.test_desk_in_chromium import (
    LINK,
    OVERFLOWING,
    UNLABELLED,
    WAIT_MS,
    browser,
    keep,
    new_page,
    sign_in,
)

pytestmark = pytest.mark.browser
__all__ = ["browser"]  # the fixture, shared with the desk's other browser test

PLACE_NOTE = "Gang belakang pasar tanpa lampu"
CLOSING = "Lampu dipasang dan ronda malam dijadwalkan"


@pytest.fixture
async def desk_bot(
    migrated_url: str, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> AsyncIterator[tuple[Running, str]]:
    # the leader looks for due reminders every second here (60 s by default)
    def often(settings: Settings) -> dict[str, Any]:
        return {"problems": settings.problems.model_copy(update={"check_seconds": 1.0})}

    async with desk_running(migrated_url, sessions, tmp_path, often) as running:
        yield running


async def two_more_reports(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Two more security reports of the same resident, last week, each with a pin."""
    now = utcnow()
    async with sessions() as s:
        area = await get_by_code(s, SUMBER_JAYA)
        siti = await s.scalar(select(Contact).where(Contact.external_id == RESIDENT))
        assert area is not None and siti is not None
        for i, (lat, lon) in enumerate(((-3.7960, 102.2601), (-3.7949, 102.2588))):
            await create_report(
                s,
                category="keamanan",
                description=f"Motor hilang lagi di gang pasar ({i})",
                area_id=area.id,
                reporter_id=siti.id,
                anonymous=False,
                urgent=False,
                now=now - timedelta(days=7 + i),
                latitude=lat,
                longitude=lon,
            )
        await s.commit()


async def test_a_problem_from_suggestion_to_closing_in_chromium(
    desk_bot: tuple[Running, str], browser: Browser, sessions: async_sessionmaker[AsyncSession]
) -> None:
    bot, base = desk_bot
    fake = bot.fake
    code = await invite_code(sessions, Role.OFFICER, SUMBER_JAYA)
    fake.send_text(OFFICER, OFFICER, f"/daftar {code}")
    await fake.wait_for_message(OFFICER, contains="Sumber Jaya")
    mark = fake.mark()
    await bot.press(OFFICER, OFFICER, "Setuju")  # the privacy notice, as every person
    await fake.wait_for_message(OFFICER, since=mark)
    await file_report(bot, RESIDENT, "Motor tetangga hilang dari depan rumah")
    await fake.wait_for_message(GROUP, contains="KTN-")
    await two_more_reports(sessions)

    fake.send_text(OFFICER, OFFICER, "/dasbor")
    answer = await fake.wait_for_message(OFFICER, contains="/dasbor/masuk/")
    found = LINK.search(answer.content)
    assert found, answer.content
    page = await new_page(browser)
    await sign_in(page, found.group(1))

    # the suggestion, accepted with one click
    await page.get_by_role("link", name="Masalah", exact=True).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Masalah")
    suggestion = page.locator(".suggestion")
    await expect(suggestion).to_have_count(1)
    await expect(suggestion).to_contain_text("3 laporan Keamanan di Sumber Jaya")
    await suggestion.get_by_role("button", name="Terima").click()
    await expect(page.locator(".flash")).to_contain_text("Masalah #1 dibuat")
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Masalah #1")
    await expect(page.locator("table.linked tbody tr")).to_have_count(3)
    await expect(page.locator('.stages li[aria-current="step"]')).to_contain_text("Pemindaian")

    # the reports on the map (two have a pin; the filed one too) and their count per week
    await expect(page.locator("#map")).to_have_attribute("data-markers", "3", timeout=WAIT_MS)
    chart = page.get_by_role("img", name="Laporan per minggu")
    await expect(chart).to_be_visible()
    assert await chart.locator("rect.bar").count() >= 2  # two weeks at least

    # a problem made by hand, then merged into #1 (its trail says so)
    await page.get_by_role("link", name="Masalah", exact=True).click()
    await page.get_by_label("Judul").fill("Helm hilang di parkiran")
    await page.get_by_label("Pilar").select_option(label="Keamanan")
    await page.get_by_label("Wilayah").select_option(label="Sumber Jaya")
    await page.get_by_role("button", name="Buat masalah").click()
    await expect(page.locator(".flash")).to_contain_text("Masalah #2 dibuat")
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Helm hilang di parkiran")
    await page.get_by_label("Gabungkan masalah ini ke").select_option(
        label="#1 Keamanan berulang di Sumber Jaya"
    )
    await page.get_by_role("button", name="Gabungkan").click()
    await expect(page.locator(".flash")).to_contain_text("Masalah #2 digabung ke masalah #1")
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Masalah #1")
    await expect(page.locator(".trail")).to_contain_text("dari masalah #2")

    # Scanning -> Analysis, and a note on the place
    await page.get_by_role("button", name="Lanjut ke Analisis").click()
    await expect(page.locator(".flash")).to_contain_text("kini di tahap Analisis")
    await page.get_by_label("Jenis catatan").select_option(label="Tempat")
    await page.get_by_label("Catatan", exact=True).fill(PLACE_NOTE)
    await page.get_by_role("button", name="Simpan catatan").click()
    await expect(page.locator('.notes[data-kind="place"]')).to_contain_text(PLACE_NOTE)

    # Analysis -> Response: the resident hears it, naming no officer
    mark = fake.mark()
    await page.get_by_role("button", name="Lanjut ke Respons").click()
    await expect(page.locator(".flash")).to_contain_text("kini di tahap Respons")
    news = await fake.wait_for_message(
        RESIDENT, contains="ditangani bersama", since=mark, timeout=10
    )
    assert "Andi" not in news.content and "KTN-" in news.content

    # an action for the officer, due in two hours: reminded in Telegram at once, "selesai" there
    async with sessions() as s:
        area = await get_by_code(s, SUMBER_JAYA)
        assert area is not None and area.timezone
    in_two_hours = (utcnow() + timedelta(hours=2)).astimezone(ZoneInfo(area.timezone))
    await page.get_by_label("Tindakan", exact=True).fill("Pasang lampu di gang belakang pasar")
    await page.get_by_label("Penanggung jawab").select_option(label="Bripka Andi")
    mark = fake.mark()
    await page.get_by_label(re.compile(r"^Batas waktu")).fill(f"{in_two_hours:%Y-%m-%dT%H:%M}")
    await page.get_by_role("button", name="Tambahkan tindakan").click()
    await expect(page.locator(".flash")).to_contain_text("Bripka Andi akan diingatkan")
    reminder = await fake.wait_for_message(
        OFFICER, contains="Pengingat tindakan", since=mark, timeout=10
    )
    assert "Pasang lampu" in reminder.content
    mark = fake.mark()
    fake.send_text(OFFICER, OFFICER, "selesai")
    await fake.wait_for_message(OFFICER, contains="tercatat selesai", since=mark)
    await page.reload()
    await expect(page.locator(".actions-list li.done")).to_contain_text("Selesai oleh Bripka Andi")

    # Response -> Assessment: the numbers and their chart
    await page.get_by_role("button", name="Lanjut ke Penilaian").click()
    await expect(page.get_by_test_id("assessment")).to_contain_text("laporan serupa")
    await expect(
        page.get_by_role("img", name="Laporan serupa sebelum dan sesudah respons")
    ).to_be_visible()

    # the phone: every control has a name, nothing sticks out
    phone = await new_page(browser, 390, 844)
    await phone.context.add_cookies(await page.context.cookies())
    for path in ("/masalah", "/masalah/1"):
        await phone.goto(f"{base}/dasbor{path}")
        await expect(phone.get_by_role("heading", level=1)).to_be_visible()
        assert await phone.evaluate(OVERFLOWING) == [], path
        assert await phone.evaluate(UNLABELLED) == [], path
    keep(await page.screenshot(full_page=True), "desk-problem.png")

    # closing asks for its note; the resident hears it
    mark = fake.mark()
    await page.get_by_label("Catatan penutupan").fill(CLOSING)
    await page.get_by_role("button", name="Lanjut ke Ditutup").click()
    await expect(page.locator(".flash")).to_contain_text("kini di tahap Ditutup")
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Ditutup")
    await expect(page.locator("#assessment")).to_be_visible()
    await expect(page.locator('[aria-labelledby="assessment"] .description')).to_contain_text(
        CLOSING
    )
    await expect(page.get_by_role("button", name="Simpan catatan")).to_have_count(0)
    closed = await fake.wait_for_message(RESIDENT, contains="sudah ditutup", since=mark, timeout=10)
    assert "Andi" not in closed.content

    # and in English
    await page.get_by_role("link", name="English").click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Problem #1")
    await expect(page.get_by_role("heading", name="4. Assessment")).to_be_visible()
    await page.get_by_role("link", name="Problems", exact=True).click()
    await page.get_by_role("link", name="Closed", exact=True).click()
    await expect(page.locator("table.problems tbody tr")).to_have_count(2)  # #1 and merged #2

    async with sessions() as s:
        problem = await s.get(Problem, 1)
        merged = await s.get(Problem, 2)
        action = await s.scalar(select(ProblemAction))
    assert problem is not None and problem.stage == "closed"
    assert merged is not None and (merged.stage, merged.merged_into_id) == ("closed", 1)
    assert problem.closing_note is not None and problem.closing_note.startswith(CLOSING)
    assert action is not None and action.done_at is not None and action.reminded_at is not None

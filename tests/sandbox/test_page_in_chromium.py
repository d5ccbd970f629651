"""The sandbox page in headless Chromium (Debian's `chromium`, driven by Playwright): a resident
files a report, the alert arrives in the officers' group pane, an officer presses Tangani, the
resident's pane receives the news.

Never `playwright install`: the browser is the system's /usr/bin/chromium (.ci/run installs it;
KTN_CHROMIUM names another one). The final screenshot is kept in artifacts/sandbox.png, and
written to docs/sandbox.png (the README's) when that is missing or KTN_UPDATE_DOCS_SCREENSHOT=1.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from playwright.async_api import Browser, FilePayload, expect

from bot.sandbox.telegram_fake import FloodLimits
from tests.conftest import ROOT
from tests.support.browser import WAIT_MS, Pane, demo_png, open_page
from tests.support.sandbox import running_sandbox, sandbox_config

pytestmark = pytest.mark.browser

SCREENSHOT = ROOT / "artifacts" / "sandbox.png"
DOCS_SCREENSHOT = ROOT / "docs" / "sandbox.png"


async def file_report(resident: Pane) -> str:
    """/lapor through consent, village, category, text, pin, photo, name shown, Kirim."""
    await resident.say("/lapor")
    await resident.bot_said("Apakah Anda setuju?")
    await resident.press("Setuju")
    await resident.bot_said("kelurahan/desa mana")
    await resident.say("Sumber Jaya")
    await resident.bot_said("Pilih kelurahan/desa")
    await resident.press("Sumber Jaya (Kampung Melayu, Kota Bengkulu)")
    await resident.bot_said("Kejadiannya tentang apa?")
    await resident.press("Keamanan")
    await resident.bot_said("Ceritakan singkat")
    await resident.say("Motor tetangga hilang dari depan rumah")
    await resident.bot_said("Di mana tepatnya?")
    await resident.root.locator(".composer .locate").click()
    await resident.bot_said("Ada foto")
    picture = FilePayload(name="motor.png", mimeType="image/png", buffer=demo_png())
    await resident.root.locator(".composer input[type=file]").set_input_files(files=[picture])
    await resident.bot_said("tanpa nama (anonim)")
    await resident.press("Tidak")
    await resident.bot_said("Periksa laporan Anda")
    await resident.press("Kirim")
    confirmation = await resident.bot_said("Nomor tiket Anda: KTN-")
    text = await confirmation.inner_text()
    return "KTN-" + text.split("KTN-", 1)[1][:6]


async def test_report_reaches_the_group_and_the_resident_hears_of_the_claim(
    tmp_path: Path, browser: Browser
) -> None:
    # A person takes seconds per step; the test does not, so only the sustained 10-per-10-s
    # private-chat window is relaxed (as in test_telegram_e2e). Every other limit is Telegram's.
    lenient = FloodLimits(per_private=((3, 1.0),))
    async with running_sandbox(sandbox_config(tmp_path), lenient) as url:
        page = await open_page(browser, url, 1700, 900)
        resident, group = Pane(page, "resident"), Pane(page, "group")

        ticket = await file_report(resident)
        mine = resident.root.locator(".msg.me")
        await expect(mine.filter(has_text="Motor tetangga hilang")).to_be_visible()
        await expect(mine.locator("a.pin")).to_contain_text("📍 -3.79560, 102.25920")
        await expect(mine.locator("img.photo")).to_be_visible()

        alert = group.bot_messages.filter(has_text=ticket)
        await expect(alert).to_contain_text("Laporan baru", timeout=WAIT_MS)
        await expect(alert).to_contain_text("Pelapor: Siti (warga)")
        await expect(alert.locator("img.photo")).to_be_visible()  # the resident's photo
        buttons = alert.locator(".keyboard .kb")
        await expect(buttons).to_have_text(["Tangani", "Selesai", "Tolak", "Duplikat", "Masalah…"])
        await expect(group.bot_messages.locator("a.pin").last).to_be_visible()

        await buttons.filter(has_text="Tangani").click()
        # The alert is edited in place: who has it, and only Selesai / Tolak / Duplikat are left.
        await expect(alert).to_contain_text("Ditangani oleh", timeout=WAIT_MS)
        await expect(alert.locator(".meta", has_text="diedit")).to_be_visible()
        await expect(buttons).to_have_text(["Selesai", "Tolak", "Duplikat", "Masalah…"])
        # The resident hears about it in their own chat, with the officer's name.
        news = await resident.bot_said(f"Laporan {ticket} sedang ditangani")
        await expect(news).to_contain_text("Andi")

        SCREENSHOT.parent.mkdir(exist_ok=True)
        await page.screenshot(path=SCREENSHOT)
    if os.environ.get("KTN_UPDATE_DOCS_SCREENSHOT") == "1" or not DOCS_SCREENSHOT.exists():
        DOCS_SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(SCREENSHOT, DOCS_SCREENSHOT)


async def test_phone_width_stacks_the_chats_and_stays_usable(
    tmp_path: Path, browser: Browser
) -> None:
    async with running_sandbox(sandbox_config(tmp_path)) as url:
        page = await open_page(browser, url, 375, 740)
        boxes = []
        for key in ("resident", "group", "coordinator"):
            box = await page.locator(f'[data-pane="{key}"]').bounding_box()
            assert box is not None
            boxes.append(box)
        assert boxes[0]["y"] + boxes[0]["height"] <= boxes[1]["y"] <= boxes[2]["y"]
        assert all(b["x"] >= 0 and b["x"] + b["width"] <= 375 for b in boxes)
        assert await page.evaluate("document.documentElement.scrollWidth") <= 375

        coordinator = Pane(page, "coordinator")
        await coordinator.root.scroll_into_view_if_needed()
        for control in (".composer .text", ".composer .locate", ".composer .send"):
            await expect(coordinator.root.locator(control)).to_be_in_viewport()
        await coordinator.say("/bantuan")
        await coordinator.bot_said("/lapor")

"""The sandbox's WhatsApp pane in headless Chromium: a resident on WhatsApp taps through a report
with a photo (each tap a signed webhook to the real WhatsApp channel, each answer sent by the real
twilio client to the Twilio fake); the photo arrives in the Telegram officers' group pane as a
photo; the officer claims there, resolves with a note typed in the officer's private chat pane;
the WhatsApp pane shows each piece of news. A reload shows the chats again, without old notices.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from bot.sandbox.telegram_fake import FloodLimits
from tests.conftest import ROOT
from tests.support.browser import WAIT_MS, Pane, WhatsAppPane, demo_png, open_page
from tests.support.sandbox import running_sandbox, sandbox_config

pytestmark = pytest.mark.browser

SCREENSHOT = ROOT / "artifacts" / "sandbox-whatsapp.png"


async def wa_report(resident: WhatsAppPane) -> str:
    """LAPOR through consent, village (a list), category (a list), text, pin, photo, name
    shown, Kirim; returns the ticket."""
    await resident.say("LAPOR")
    await resident.bot_said("Apakah Anda setuju?")
    await resident.tap("Setuju")
    await resident.bot_said("kelurahan/desa mana")
    await resident.say("Sumber Jaya")
    await resident.pick("Sumber Jaya")
    await resident.bot_said("Kejadiannya tentang apa?")
    await resident.pick("Keamanan")
    await resident.bot_said("Ceritakan singkat")
    await resident.say("Pagar balai desa roboh")
    await resident.bot_said("Di mana tepatnya?")
    await resident.share_location()
    await resident.bot_said("Ada foto")
    await resident.send_photo("pagar.png", demo_png())
    await resident.bot_said("tanpa nama (anonim)")
    await resident.tap("Tidak")
    await resident.bot_said("Sudah benar?")
    await resident.tap("Kirim")
    confirmation = await resident.bot_said("KTN-")
    text = await confirmation.inner_text()
    return "KTN-" + text.split("KTN-", 1)[1][:6]


async def test_a_whatsapp_resident_reports_with_a_photo_and_hears_the_officers_news(
    tmp_path: Path, browser: Browser
) -> None:
    lenient = FloodLimits(per_private=((3, 1.0),))  # as in test_page_in_chromium
    async with running_sandbox(sandbox_config(tmp_path), lenient) as url:
        page = await open_page(browser, url, 1700, 900)
        resident = WhatsAppPane(page)
        group, officer = Pane(page, "group"), Pane(page, "officer")

        ticket = await wa_report(resident)
        mine = resident.root.locator(".msg.me")
        await expect(mine.locator("img.photo")).to_be_visible()  # the photo the resident sent
        await expect(mine.locator("a.pin")).to_contain_text("📍 -3.79560, 102.25920")
        # Every tap went as Twilio sends it: ButtonText is what the resident's bubble shows.
        await expect(mine.filter(has_text="Setuju")).to_be_visible()

        alert = group.bot_messages.filter(has_text=ticket)
        await expect(alert).to_contain_text("Laporan baru", timeout=WAIT_MS)
        await expect(alert).to_contain_text("Budi (warga WA)")
        photo = alert.locator("img.photo")
        await expect(photo).to_be_visible()  # the WhatsApp photo, as a photo in the group
        assert await photo.evaluate("img => img.naturalWidth") == 240  # the very picture

        buttons = alert.locator(".keyboard .kb")
        await buttons.filter(has_text="Tangani").click()
        await expect(alert).to_contain_text("Ditangani oleh", timeout=WAIT_MS)
        claimed = await resident.bot_said(f"Laporan {ticket} sedang ditangani")
        await expect(claimed).to_contain_text("Andi")

        await buttons.filter(has_text="Selesai").click()
        await officer.bot_said("Tulis catatan singkat")
        await officer.say("Pagar sudah diperbaiki warga bersama")
        await expect(alert).to_contain_text("Selesai oleh", timeout=WAIT_MS)
        done = await resident.bot_said("sudah selesai")
        await expect(done).to_contain_text("Pagar sudah diperbaiki warga bersama")
        await expect(officer.bot_messages.last).to_contain_text(ticket)

        SCREENSHOT.parent.mkdir(exist_ok=True)
        await page.screenshot(path=SCREENSHOT)

        # A reload shows the same chats, and no old button notice pops up again.
        count = await resident.root.locator(".messages .msg").count()
        await page.reload()
        await expect(page.locator("#status")).to_contain_text("terhubung", timeout=WAIT_MS)
        await expect(resident.root.locator(".messages .msg")).to_have_count(count)
        await expect(group.bot_messages.filter(has_text=ticket)).to_contain_text("Selesai oleh")
        await expect(page.locator(".toast")).to_have_count(0)

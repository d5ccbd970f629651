"""End to end: a government system files a report through the Open311 API of the real `run`
(same port as the webhooks); the alert reaches the officers' group in the Telegram fake; the
caller follows it on WhatsApp once they write, and gets the officer's news there."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import httpx
from sqlalchemy import func, select

from storage.models import Outbox, Report
from tests.support.chats import SUMBER_JAYA, make_invite
from tests.support.live import GROUP, Live
from tests.support.open311 import make_key, report_form

CALLER = "+6281355550001"
WA_OFFICER = "+6281311112222"


async def message_containing(live: Live, number: str, text: str, after: int) -> str:
    """The first WhatsApp message to ``number`` after the first ``after`` that contains text."""
    for count in range(after + 1, after + 6):
        messages = await live.twilio.wait_for_messages(number, count=count, timeout=10)
        found = [m.body for m in messages[after:] if text in m.body]
        if found:
            return found[0]
    raise AssertionError(f"no message with {text!r} to {number}")


async def test_a_report_filed_through_the_api_alerts_the_group_and_news_reach_the_caller(
    live: Live,
) -> None:
    _, key = await make_key(live.sessions, SUMBER_JAYA, "Call centre Polres Bengkulu")
    form = report_form(key, phone=CALLER)
    async with httpx.AsyncClient(base_url=live.url + "/open311/v2", trust_env=False) as http:
        services = await http.get("/services.xml")
        assert services.status_code == 200
        assert ET.fromstring(services.content).tag == "services"
        filed = await http.post("/requests.json", data=form)
        assert filed.status_code == 201, filed.text
        ticket = filed.json()[0]["service_request_id"]
        assert "WhatsApp" in filed.json()[0]["service_notice"]  # how the caller gets news

        alert = await live.telegram.wait_for_message(GROUP, contains=ticket, since=0, timeout=10)
        assert "Pelapor: Budi Santoso, +6281355550001" in alert.content
        assert "Masuk lewat: Call centre Polres Bengkulu" in alert.content
        assert alert.button_data()[0].startswith("claim:")

        retried = await http.post("/requests.json", data=form)  # the client's retry
        assert retried.status_code == 200
        assert retried.json()[0]["service_request_id"] == ticket
        read = await http.get(f"/requests/{ticket}.xml", headers={"X-Api-Key": key})
        assert read.status_code == 200
        [request] = ET.fromstring(read.content)
        assert request.findtext("status") == "open"
        assert request.findtext("agency_responsible") == "Sumber Jaya"
    async with live.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Report)) == 1
        alerts = await s.scalar(
            select(func.count()).select_from(Outbox).where(Outbox.kind == "alert")
        )
        assert alerts == 1
    assert live.twilio.messages_to(CALLER) == []  # nobody is messaged before they write

    # The caller writes to the bot from that number and accepts the privacy notice.
    assert "Apakah Anda setuju?" in await live.say(CALLER, "Halo", name="Budi Santoso")
    await live.say(CALLER, "1", name="Budi Santoso")
    note = await message_containing(live, CALLER, ticket, after=1)
    assert "dicatat untuk nomor Anda" in note

    # An officer on WhatsApp claims it; the caller hears of it there.
    code = await make_invite(live.sessions, "officer", SUMBER_JAYA)
    await live.say(WA_OFFICER, f"daftar {code}", name="Bripka Wati")
    await live.say(WA_OFFICER, "1", name="Bripka Wati")
    before = len(live.twilio.messages_to(CALLER))
    answer = await live.say(WA_OFFICER, f"TANGANI {ticket}", name="Bripka Wati")
    assert ticket in answer
    news = await message_containing(live, CALLER, "sedang ditangani", after=before)
    assert ticket in news and "Bripka Wati" in news

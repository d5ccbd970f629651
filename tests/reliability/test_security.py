"""Reliability suite, R5 security: who may do what, forged webhooks, the anonymous reporter.

- The authorisation matrix: every privileged button and command of ``handlers/`` tried by every
  role that must not use it (a resident, officers and coordinators of another area, an officer
  where a coordinator is needed, someone the bot never registered), through the channel-free
  core. Each attempt must be answered politely and change nothing: every table but the
  bookkeeping ones (conversations, processed messages, a contact's last-message time) is
  compared before and after. The same actions by the right people are the controls: they must
  change something, or the matrix could not tell.
- Forged webhooks against the real HTTP app (`run` in webhook mode with WhatsApp on): a missing
  or wrong Telegram secret, missing, wrong, re-used or other-URL Twilio signatures: 403 and
  nothing recorded, where the genuine requests are processed.
- An anonymous reporter (one on WhatsApp, one on Telegram) through alert, claim, resolve with a
  note and escalation: their name, user id and phone number appear in no group message, no
  outbox row for anyone else, and no log line of the bot at DEBUG.

Each check prints one figures line (see tests/test_reliability.py).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from twilio.request_validator import RequestValidator

from bot.cli import PRIVATE_LOGGERS, configure_logging
from bot.sandbox.twilio_fake import TwilioFake
from handlers.context import Context
from handlers.escalation import escalate_due
from handlers.types import Channel, Outcome
from storage.models import Base, Contact, Outbox
from storage.types import Role, utcnow
from tests.support.chats import (
    KAMPUNG_MELAYU,
    SUMBER_JAYA,
    WIYONO,
    FakeChat,
    core_config,
    link_group,
    load_areas,
    texts,
)
from tests.support.figures import figures
from tests.support.live import (
    COORDINATOR,
    FAKES,
    GROUP,
    OFFICER,
    PARENT_GROUP,
    TG_FIRST,
    TG_LAST,
    TG_REPORTER,
    WA_NAME,
    WA_OFFICER,
    WA_REPORTER,
    Live,
    telegram_update,
)
from tests.support.telegram_run import WEBHOOK_SECRET, Running, file_report

log = logging.getLogger(__name__)
GEDONG_TATAAN = "18.09.01"  # Wiyono's kecamatan: another area than Sumber Jaya's
# access_log records reads (a coordinator elsewhere exporting their own, empty, area), not changes
BOOKKEEPING = {"conversations", "processed_inbound", "send_slots", "access_log"}
VOLATILE = {"contacts": {"last_inbound_at"}}  # every private message moves it
Snapshot = dict[str, list[tuple[Any, ...]]]


async def snapshot(sessions: async_sessionmaker[AsyncSession]) -> Snapshot:
    """Every row of every table that holds what people did (not the conversation bookkeeping)."""
    state: Snapshot = {}
    async with sessions() as session:
        for table in Base.metadata.sorted_tables:
            if table.name in BOOKKEEPING:
                continue
            skip = VOLATILE.get(table.name, set())
            columns = [c for c in table.columns if c.name not in skip]
            rows = await session.execute(select(*columns).order_by(*table.primary_key.columns))
            state[table.name] = [tuple(row) for row in rows]
    return state


def changes(before: Snapshot, after: Snapshot) -> list[str]:
    return [name for name in before if before[name] != after[name]]


@dataclass
class World:
    """The people and what already exists, as the attempts find it."""

    sessions: async_sessionmaker[AsyncSession]
    people: dict[str, FakeChat]
    new_report: tuple[int, str]  # id, ticket: nobody has it yet
    claimed_report: tuple[int, str]  # claimed by the Sumber Jaya officer
    reminder_id: int
    sumber_jaya_id: int
    kampung_melayu_id: int
    secrets: list[str] = field(default_factory=list)  # what another area must never be shown


async def area_id(sessions: async_sessionmaker[AsyncSession], code: str) -> int:
    from storage.areas import get_by_code

    async with sessions() as session:
        area = await get_by_code(session, code)
    assert area is not None
    return area.id


async def set_role(chat: FakeChat, role: Role) -> None:
    async with chat.sessions() as session:
        await session.execute(
            update(Contact)
            .where(Contact.channel == str(chat.channel), Contact.external_id == chat.user_id)
            .values(role=role.value)
        )
        await session.commit()


async def build_world(sessions: async_sessionmaker[AsyncSession]) -> World:
    await load_areas(sessions)
    await link_group(sessions)  # Sumber Jaya's officers' group
    people = {
        "reporter": FakeChat(sessions, user_id=1001, name="Budi Santoso"),
        "resident": FakeChat(sessions, user_id=3001, name="Warga Lain"),
        "resident_wa": FakeChat(
            sessions, channel=Channel.WHATSAPP, user_id=6281255500001, name="Warga WA"
        ),
        "unregistered": FakeChat(sessions, user_id=9999, name="Orang Asing"),
        "officer": FakeChat(sessions, user_id=4001, name="Bripka Andi"),
        "officer_same_area": FakeChat(sessions, user_id=4004, name="Briptu Dewi"),
        "officer_elsewhere": FakeChat(sessions, user_id=4002, name="Brigpol Wayan"),
        "coordinator": FakeChat(sessions, user_id=4003, name="Iptu Sari"),
        "coordinator_elsewhere": FakeChat(sessions, user_id=4005, name="Camat Lain"),
    }
    for key in ("reporter", "resident", "resident_wa"):
        await people[key].onboard()
    await people["unregistered"].send("halo")  # met once, never agreed to anything
    await people["officer"].enrol(Role.OFFICER, SUMBER_JAYA)
    await people["officer_same_area"].enrol(Role.OFFICER, SUMBER_JAYA)
    await people["officer_elsewhere"].enrol(Role.OFFICER, WIYONO)
    await people["coordinator"].enrol(Role.COORDINATOR, KAMPUNG_MELAYU)
    await people["coordinator_elsewhere"].enrol(Role.COORDINATOR, GEDONG_TATAAN)

    new = await people["reporter"].file_report(description="Motor hilang di gang Mawar")
    other = await people["resident"].file_report(description="Pagar sekolah dirusak")
    claimed = (int(other.recorded.filed["report_id"]), str(other.recorded.filed["ticket"]))
    out = await people["officer"].send(f"tangani {claimed[1]}")
    assert out.recorded.staff["done"], texts(out)

    coordinator = people["coordinator"]
    added = await coordinator.send("/pengingat tambah setiap hari 19:00 | semua | Cek jentik DBD")
    reminder_id = added.recorded.reminder_id
    team = await coordinator.send(f"/ronda {SUMBER_JAYA} tim Pos Melati: Andi, Budi")
    assert "Pos Melati" in texts(team), texts(team)
    await coordinator.send(f"/ronda {SUMBER_JAYA} jadwal harian 21:00")
    await coordinator.send("/umumkan")
    await coordinator.press("Sumber Jaya")
    await coordinator.press("bc:aud:both")
    await coordinator.send("Kerja bakti hari Minggu di balai RW")
    sent = await coordinator.press("Kirim")
    assert "dikirim" in texts(sent), texts(sent)
    return World(
        sessions=sessions,
        people=people,
        new_report=(int(new.recorded.filed["report_id"]), str(new.recorded.filed["ticket"])),
        claimed_report=claimed,
        reminder_id=int(reminder_id),
        sumber_jaya_id=await area_id(sessions, SUMBER_JAYA),
        kampung_melayu_id=await area_id(sessions, KAMPUNG_MELAYU),
        secrets=[
            str(new.recorded.filed["ticket"]),
            claimed[1],
            "Cek jentik DBD",
            "Pos Melati",
            "Kerja bakti hari Minggu",
        ],
    )


Act = Callable[[FakeChat, World], Awaitable[Outcome]]


def report_acts(which: str) -> dict[str, Act]:
    """Every way to claim, resolve, reject or merge one report, by button and by typing."""

    def rid(w: World) -> int:
        return (w.new_report if which == "new" else w.claimed_report)[0]

    def ticket(w: World) -> str:
        return (w.new_report if which == "new" else w.claimed_report)[1]

    def other(w: World) -> str:  # the other report of the same area: merge into it
        return (w.claimed_report if which == "new" else w.new_report)[1]

    return {
        "claim button in the group": lambda p, w: p.in_group().send(button=f"claim:{rid(w)}"),
        "resolve button in the group": lambda p, w: p.in_group().send(button=f"resolve:{rid(w)}"),
        "reject button in the group": lambda p, w: p.in_group().send(button=f"reject:{rid(w)}"),
        "claim button in private": lambda p, w: p.send(button=f"claim:{rid(w)}"),
        "resolve button in private": lambda p, w: p.send(button=f"resolve:{rid(w)}"),
        "reject button in private": lambda p, w: p.send(button=f"reject:{rid(w)}"),
        "tangani typed": lambda p, w: p.send(f"tangani {ticket(w)}"),
        "selesai typed": lambda p, w: p.send(f"SELESAI {ticket(w)} sudah aman"),
        "tolak typed": lambda p, w: p.send(f"/tolak {ticket(w)} laporan palsu"),
        "/tangani in the group": lambda p, w: p.in_group().send(f"/tangani@ktn_bot {ticket(w)}"),
        "/selesai in the group": lambda p, w: p.in_group().send(f"/selesai {ticket(w)} beres"),
        "/tolak in the group": lambda p, w: p.in_group().send(f"/tolak {ticket(w)} ganda"),
        "merge button in the group": lambda p, w: p.in_group().send(button=f"merge:{rid(w)}"),
        "gabung typed": lambda p, w: p.send(f"gabung {ticket(w)} {other(w)}"),
        "/duplikat in the group": lambda p, w: p.in_group().send(
            f"/duplikat {ticket(w)} {other(w)}"
        ),
    }


def coordinator_commands() -> dict[str, Act]:
    """The coordinators' commands that act on the sender's own area: nobody else may use them."""
    return {
        "/umumkan": lambda p, w: p.send("/umumkan"),
        "/pengingat tambah": lambda p, w: p.send(
            "/pengingat tambah setiap hari 20:00 | warga | Rapat RT"
        ),
    }


def coordinator_acts() -> dict[str, Act]:
    """The coordinators' commands aimed at Sumber Jaya (or Kampung Melayu above it), or showing
    its data: not for a coordinator of another area either."""
    return {
        "/umumkan status": lambda p, w: p.send("/umumkan status"),
        "forged announcement area button": _forged_area_button,
        "forged announcement Kirim": lambda p, w: p.send(button="bc:send"),
        "/pengingat": lambda p, w: p.send("/pengingat"),
        "/pengingat jeda": lambda p, w: p.send(f"/pengingat jeda {w.reminder_id}"),
        "/pengingat lanjut": lambda p, w: p.send(f"/pengingat lanjut {w.reminder_id}"),
        "/pengingat hapus": lambda p, w: p.send(f"pengingat hapus {w.reminder_id}"),
        "/ronda": lambda p, w: p.send(f"/ronda {SUMBER_JAYA}"),
        "/ronda tim": lambda p, w: p.send(f"/ronda {SUMBER_JAYA} tim Pos Liar: X, Y"),
        "/ronda hapus": lambda p, w: p.send(f"/ronda {SUMBER_JAYA} hapus 1"),
        "/ronda jadwal": lambda p, w: p.send(f"/ronda {SUMBER_JAYA} jadwal mingguan 22:00"),
        "/ronda jeda": lambda p, w: p.send(f"/ronda {SUMBER_JAYA} jeda"),
        "/ronda lanjut": lambda p, w: p.send(f"/ronda {SUMBER_JAYA} lanjut"),
        "/ekspor": lambda p, w: p.send("/ekspor"),
        "/ekspor geojson": lambda p, w: p.send("/ekspor geojson"),
    }


async def _forged_area_button(person: FakeChat, world: World) -> Outcome:
    """Start an announcement, then press a button for Kampung Melayu that was never offered."""
    await person.send("/umumkan")
    return await person.send(button=f"bc:area:{world.kampung_melayu_id}")


def staff_acts() -> dict[str, Act]:
    return {
        "/hubungkan in Sumber Jaya's group": lambda p, w: p.in_group().send("/hubungkan@ktn_bot"),
        "/laporan": lambda p, w: p.send("/laporan"),
        "/laporan in the group": lambda p, w: p.in_group().send("/laporan"),
    }


# Residents: the one who filed the report, one on WhatsApp (typing only: no Telegram buttons
# there), and someone who wrote once but never agreed to the privacy notice.
NOT_STAFF = ["reporter", "resident_wa", "unregistered"]
ELSEWHERE = ["officer_elsewhere", "coordinator_elsewhere"]


MATRIX: list[tuple[dict[str, Act], list[str]]] = [
    (report_acts("new"), [*NOT_STAFF, *ELSEWHERE]),
    # A report an officer claimed is closed by that officer or a coordinator, not by another;
    # "resident" filed this one.
    (report_acts("claimed"), ["resident", "unregistered", *ELSEWHERE, "officer_same_area"]),
    (staff_acts(), [*NOT_STAFF, *ELSEWHERE]),
    (coordinator_commands(), [*NOT_STAFF, "officer", "officer_elsewhere"]),
    (coordinator_acts(), [*NOT_STAFF, "officer", "officer_elsewhere", "coordinator_elsewhere"]),
]


def said(outcome: Outcome) -> str:
    """Everything the person was shown: replies, the button notice, documents' contents."""
    parts = [texts(outcome), outcome.notice or ""]
    parts += [r.document.data.decode("utf-8", "replace") for r in outcome.replies if r.document]
    return "\n".join(parts)


@dataclass
class Tally:
    attempts: int = 0
    refused: int = 0
    allowed: list[str] = field(default_factory=list)

    last: Snapshot | None = None  # the state after the previous attempt

    async def attempt(self, world: World, label: str, role: str, act: Act) -> None:
        person = world.people[role]
        before = self.last or await snapshot(world.sessions)
        outcome = await act(person, world)
        self.last = await snapshot(world.sessions)
        changed = changes(before, self.last)
        shown = said(outcome)
        leaked = [s for s in world.secrets if s in shown]
        self.attempts += 1
        if changed or leaked or outcome.outbox_ids or not shown.strip():
            what = changed or leaked or outcome.outbox_ids or "no answer"
            self.allowed.append(f"{label} by {role}: {what} / {shown[:120]!r}")
        else:
            self.refused += 1
        if person.history and person.history[-1].recorded.state not in (None, "idle"):
            await person.send("/batal")  # the next attempt starts from the menu


async def test_r5_every_privileged_action_by_every_wrong_role_is_refused(
    sessions: async_sessionmaker[AsyncSession], capsys: pytest.CaptureFixture[str]
) -> None:
    world = await build_world(sessions)
    tally = Tally()
    for acts, roles in MATRIX:
        for label, act in acts.items():
            for role in roles:
                if world.people[role].channel is Channel.WHATSAPP and "button" in label:
                    continue
                await tally.attempt(world, label, role, act)

    # Rights checked again when they are used: a note requested while still an officer.
    officer = world.people["officer"]
    await officer.in_group().send(button=f"resolve:{world.claimed_report[0]}")
    await set_role(officer, Role.RESIDENT)
    tally.last = None
    await tally.attempt(world, "the note after losing the role", "officer", _note)
    await set_role(officer, Role.OFFICER)

    figures(
        capsys,
        "R5 authorisation",
        attempts=tally.attempts,
        refused=tally.refused,
        allowed=len(tally.allowed),
    )
    assert tally.allowed == []
    assert tally.refused == tally.attempts > 200

    controls = await run_controls(world)
    figures(
        capsys,
        "R5 authorisation controls",
        attempts=len(controls),
        allowed=sum(controls.values()),
    )
    assert [k for k, ok in controls.items() if not ok] == []


async def _note(person: FakeChat, _world: World) -> Outcome:
    return await person.send("Sudah diamankan, pelaku kabur")


async def run_controls(world: World) -> dict[str, bool]:
    """The same actions by people who may: each must change something (or show the data)."""
    p = world.people
    results: dict[str, bool] = {}

    async def control(label: str, role: str, act: Act, shows: str | None = None) -> None:
        before = await snapshot(world.sessions)
        outcome = await act(p[role], world)
        changed = changes(before, await snapshot(world.sessions))
        results[label] = bool(changed) if shows is None else shows in said(outcome)

    new_ticket = world.new_report[1]
    await control("/laporan by the officer", "officer", lambda q, w: q.send("/laporan"), new_ticket)
    await control(
        "/ekspor by the coordinator", "coordinator", lambda q, w: q.send("/ekspor"), new_ticket
    )
    await control(
        "/umumkan status by the coordinator",
        "coordinator",
        lambda q, w: q.send("/umumkan status"),
        "Kerja bakti hari Minggu",
    )
    await control(
        "claim button by the officer",
        "officer_same_area",
        lambda q, w: q.in_group().send(button=f"claim:{w.new_report[0]}"),
    )
    await control(
        "selesai typed by the assignee",
        "officer",
        lambda q, w: q.send(f"selesai {w.claimed_report[1]} sudah aman"),
    )
    await control(
        "tolak by the coordinator",
        "coordinator",
        lambda q, w: q.send(f"/tolak {new_ticket} laporan ganda"),
    )
    await control(
        "/hubungkan by the officer",
        "officer",
        lambda q, w: q.in_group(chat_id=-300, title="Grup Baru").send("/hubungkan"),
    )
    await control(
        "/pengingat jeda by the coordinator",
        "coordinator",
        lambda q, w: q.send(f"/pengingat jeda {w.reminder_id}"),
    )
    await control(
        "/ronda tim by the coordinator",
        "coordinator",
        lambda q, w: q.send(f"/ronda {SUMBER_JAYA} tim Pos Mawar: Cici"),
    )
    await control("/umumkan by the coordinator", "coordinator", _announce)
    return results


async def _announce(person: FakeChat, _world: World) -> Outcome:
    await person.send("/umumkan")
    await person.press("Sumber Jaya")
    await person.press("bc:aud:groups")
    await person.send("Ronda malam ini dimajukan")
    return await person.press("Kirim")


async def test_r5_forged_webhooks_are_refused_and_record_nothing(
    live: Live, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing or wrong Telegram secret, and Twilio signatures that are missing, made up,
    made with another token, made for another URL or for another body: 403, nothing kept."""
    twilio = live.twilio
    form = twilio.inbound_text("+6285700001111", "LAPOR", "Penyusup")
    other_token = RequestValidator("not-the-auth-token").compute_signature(live.whatsapp_hook, form)
    status_form = {"MessageSid": "SM" + "0" * 32, "MessageStatus": "read", "AccountSid": "AC1"}
    attempts: dict[str, Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]] = {
        "telegram, no secret": lambda c: c.post(
            live.telegram_hook, json=telegram_update(9001, 8801, "/start")
        ),
        "telegram, wrong secret": lambda c: c.post(
            live.telegram_hook,
            json=telegram_update(9002, 8802, "/start"),
            headers={"X-Telegram-Bot-Api-Secret-Token": "tebakan"},
        ),
        "telegram, the secret with more after it": lambda c: c.post(
            live.telegram_hook,
            json=telegram_update(9003, 8803, "/start"),
            headers={"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET + "x"},
        ),
        "telegram, an empty secret": lambda c: c.post(
            live.telegram_hook,
            json=telegram_update(9004, 8804, "/start"),
            headers={"X-Telegram-Bot-Api-Secret-Token": ""},
        ),
        "twilio, no signature": lambda c: twilio.post_inbound(live.whatsapp_hook, form, None),
        "twilio, a made-up signature": lambda c: twilio.post_inbound(
            live.whatsapp_hook, form, "forged"
        ),
        "twilio, signed with another token": lambda c: twilio.post_inbound(
            live.whatsapp_hook, form, other_token
        ),
        "twilio, signed for another URL": lambda c: twilio.post_inbound(
            live.whatsapp_hook, form, signed_url="http://10.0.0.5:8080/whatsapp/inbound"
        ),
        "twilio, another body under a real signature": lambda c: twilio.post_inbound(
            live.whatsapp_hook,
            {**form, "Body": "BATAL"},
            twilio.sign(live.whatsapp_hook, form),
        ),
        "twilio status, no signature": lambda c: c.post(
            live.url + "/whatsapp/status", data=status_form
        ),
        "twilio status, a made-up signature": lambda c: c.post(
            live.url + "/whatsapp/status",
            data=status_form,
            headers={"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"},
        ),
    }
    before = await live.counts()
    refused = 0
    async with httpx.AsyncClient(trust_env=False) as client:
        for label, attempt in attempts.items():
            response = await attempt(client)
            refused += response.status_code == 403
            assert response.status_code == 403, label
        recorded = await live.counts()
        # Controls: genuine requests are processed (so the checks above can fail): an update
        # the fake Bot API delivers with the secret, and the same form correctly signed.
        live.telegram.add_user(8805, "Warga", "Baru")
        live.telegram.start(8805)
        welcomed = await live.telegram.wait_for_message(8805, timeout=10)
        signed = await twilio.post_inbound(live.whatsapp_hook, form)
        answered = await twilio.wait_for_messages("+6285700001111", count=1, timeout=10)
    kept = {name: recorded[name] - before[name] for name in before}
    figures(
        capsys,
        "R5 webhooks",
        attempts=len(attempts),
        refused=refused,
        recorded=sum(kept.values()),
    )
    assert refused == len(attempts)
    assert kept == dict.fromkeys(before, 0)
    assert live.telegram.messages(8801) == [] and twilio.messages_to("+6285700001111")[1:] == []
    assert "27 Tahun 2022" in welcomed.content
    assert signed.status_code == 200 and len(answered) == 1
    after_controls = await live.counts()
    assert after_controls["processed_inbound"] == before["processed_inbound"] + 2


def leaks_in(text: str, identity: list[str]) -> list[str]:
    return [token for token in identity if token in text]


@pytest.fixture
def debug_logging(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every record at DEBUG, under `ktn-bot run`'s own set-up (``log_level = "DEBUG"``), from
    before the process starts; the loggers' levels are put back afterwards."""
    names = [*PRIVATE_LOGGERS, "bot.channels.whatsapp.http"]
    levels = {name: logging.getLogger(name).level for name in names}
    caplog.set_level(logging.DEBUG)
    configure_logging("DEBUG")
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


async def test_r5_an_anonymous_reporter_is_in_no_group_message_outbox_row_or_log_line(
    debug_logging: None,
    live: Live,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Two anonymous reports (WhatsApp and Telegram) through alert, claim, a resolution note,
    the reporter reopening it, escalation and /status (the officer's trail too); their identities must not reach the officers, the groups, the
    outbox rows for anyone else, or the log."""
    identity = [
        WA_NAME,
        *WA_NAME.split(),
        WA_REPORTER,
        WA_REPORTER.removeprefix("+"),
        "0" + WA_REPORTER.removeprefix("+62"),
        f"{TG_FIRST} {TG_LAST}",
        TG_FIRST,
        TG_LAST,
        str(TG_REPORTER),
    ]
    telegram, twilio, sessions = live.telegram, live.twilio, live.sessions
    officer = FakeChat(sessions, user_id=OFFICER, name="Bripka Andi")
    await officer.enrol(Role.OFFICER, SUMBER_JAYA)
    await FakeChat(sessions, user_id=COORDINATOR, name="Iptu Sari").enrol(
        Role.COORDINATOR, KAMPUNG_MELAYU
    )
    await FakeChat(  # registered just now: within WhatsApp's 24-hour window
        sessions,
        channel=Channel.WHATSAPP,
        user_id=int(WA_OFFICER[1:]),
        name="Bripka Wati",
        now=utcnow(),
    ).enrol(Role.OFFICER, SUMBER_JAYA)
    telegram.add_user(OFFICER, "Bripka", "Andi")
    telegram.add_user(COORDINATOR, "Iptu", "Sari")
    telegram.add_user(TG_REPORTER, TG_FIRST, TG_LAST)
    for user in (OFFICER, COORDINATOR):
        telegram.start(user)
        await telegram.wait_for_message(user, timeout=10)

    # Telegram: the whole report flow, anonymous.
    driver = Running(telegram, sessions, None, None)  # type: ignore[arg-type]
    tg_said = await file_report(driver, TG_REPORTER, "Ada yang mengintip rumah", anonymous=True)
    tg_ticket = ticket_in(tg_said)
    # WhatsApp: the same, typed.
    assert "Apakah Anda setuju?" in await live.say(WA_REPORTER, "Halo")
    await live.say(WA_REPORTER, "1")
    await live.say(WA_REPORTER, "sumber jaya")
    await live.say(WA_REPORTER, "1")
    await live.say(WA_REPORTER, "LAPOR")
    assert "Ceritakan" in await live.say(WA_REPORTER, "2")  # Kesehatan
    await live.say(WA_REPORTER, "Warga demam tinggi tiga hari")
    await live.say(WA_REPORTER, "Gang Kenanga 4")
    await live.say(WA_REPORTER, "lewati")
    assert "Sudah benar?" in await live.say(WA_REPORTER, "ya")  # anonymous
    wa_ticket = ticket_in(await live.say(WA_REPORTER, "kirim"))

    # The officer claims the WhatsApp report in the group and resolves it with a note.
    alert = await telegram.wait_for_message(GROUP, contains=wa_ticket, since=0, timeout=10)
    await driver.press(GROUP, OFFICER, "Tangani", alert)
    await telegram.wait_for_edit(GROUP, alert.message_id, contains="Bripka Andi", timeout=10)
    await driver.press(GROUP, OFFICER, "Selesai", alert)
    await telegram.wait_for_message(OFFICER, contains=wa_ticket, since=0, timeout=10)
    telegram.send_text(OFFICER, OFFICER, "Sudah diperiksa puskesmas, warga dirawat")
    await telegram.wait_for_edit(GROUP, alert.message_id, contains="Selesai", timeout=10)
    await wait_for_whatsapp(twilio, WA_REPORTER, "puskesmas")
    # The reporter says it is not resolved: back to the group, the trail shown to the officer.
    assert "dibuka lagi" in await live.say(WA_REPORTER, f"belum {wa_ticket} masih demam")
    await telegram.wait_for_message(GROUP, contains="DIBUKA LAGI", since=0, timeout=10)
    telegram.send_text(OFFICER, OFFICER, f"/status {wa_ticket}")
    await telegram.wait_for_message(OFFICER, contains="dibuka lagi — pelapor (anonim)", timeout=10)
    # Nobody claims the Telegram report: it escalates to Kampung Melayu.
    async with sessions() as session:
        later = Context(core_config(), now=utcnow() + timedelta(hours=6))
        assert await escalate_due(session, later)
        await session.commit()
    await telegram.wait_for_message(PARENT_GROUP, contains=tg_ticket, since=0, timeout=10)
    await telegram.wait_for_message(COORDINATOR, contains=tg_ticket, since=0, timeout=10)
    telegram.send_text(TG_REPORTER, TG_REPORTER, "/status")
    await telegram.wait_for_message(TG_REPORTER, contains=tg_ticket, timeout=10)
    await wait_for_whatsapp(twilio, WA_OFFICER, wa_ticket)

    reporters = {TG_REPORTER, int(WA_REPORTER[1:])}
    seen: list[tuple[str, str]] = []  # (where, text) of everything others were shown
    for chat_id, chat in telegram.chats.items():
        if chat_id in reporters:
            continue
        for message in telegram.messages(chat_id):
            versions = [message.content, *((e.text or e.caption or "") for e in message.edits)]
            seen += [(f"telegram {chat.type} {chat_id}", text) for text in versions]
    seen += [
        (f"whatsapp {m.to}", m.body) for m in twilio.messages if m.to != f"whatsapp:{WA_REPORTER}"
    ]
    async with sessions() as session:
        rows = (await session.scalars(select(Outbox).where(Outbox.chat_id.not_in(reporters)))).all()
    seen += [(f"outbox {row.kind} to {row.chat_id}", json.dumps(row.payload)) for row in rows]
    group_texts = [text for where, text in seen if " group " in where or "supergroup" in where]
    records = [r for r in caplog.records if not r.name.startswith(FAKES)]
    lines = [(f"log {r.name}", f"{r.getMessage()}\n{r.exc_text or ''}") for r in records]
    leaks = [
        (where, leaks_in(text, identity))
        for where, text in seen + lines
        if leaks_in(text, identity)
    ]
    figures(
        capsys,
        "R5 anonymity",
        group_messages=len(group_texts),
        outbox_rows=len(rows),
        log_lines=len(lines),
        leaks=len(leaks),
    )
    assert leaks == []
    assert sum(wa_ticket in t for t in group_texts) >= 3, "alert, claimed, resolved"
    assert any(tg_ticket in t for t in group_texts), "the escalation reached the parent group"
    assert len(lines) > 500, "DEBUG logging was captured"


def ticket_in(text: str) -> str:
    match = re.search(r"KTN-[A-Z0-9]{6}", text)
    assert match is not None, text
    return match.group(0)


async def wait_for_whatsapp(twilio: TwilioFake, number: str, contains: str) -> None:
    """Until a WhatsApp message to the number contains the text (each new message wakes us)."""
    count = 1
    while True:
        messages = await twilio.wait_for_messages(number, count=count, timeout=10)
        if any(contains in m.body for m in messages):
            return
        count = len(messages) + 1

"""/pengingat (/reminders): coordinators schedule health reminders; the sweep sends them.

    /pengingat                                   list the area's reminders
    /pengingat tambah JADWAL | SASARAN | TEKS    add ("setiap hari 19:00 | warga | Jangan lupa 3M")
    /pengingat tambah JADWAL | SASARAN | #posyandu   a health template, in each reader's language
    /pengingat jeda N, lanjut N, hapus N         pause, resume, delete
    /pengingat template                          the health templates

SASARAN ``grup`` reaches the officers' groups of the area and below, and 1:1 every officer no
group reaches (e.g. on WhatsApp: ``handlers.audience``); ``warga`` the residents who did not
opt out; ``semua`` both, each person once.

Only a coordinator or admin manages reminders, and only those of their own area and the areas
below it; anyone else is told so and nothing changes. Every occurrence goes out once
(``storage.reminders.advance``); one missed by downtime shorter than the grace still goes out,
older ones are skipped and logged. Occurrences missed together are sent once (the newest).

Each reminder is swept in its own savepoint (``handlers.sweep``): one that fails (a deployment's
broken text override, bad data) is rolled back alone, logged and counted, and the others go out.
Its watermark did not move, so the next sweep (at the latest the scheduler's resync, every
minute) tries that occurrence again while it is within the grace; after that it is skipped like
a missed one, and the next occurrence is tried as usual.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.audience import officers_group, one_per_person
from handlers.context import Context
from handlers.permissions import is_supervisor
from handlers.render import format_date
from handlers.routing import BotRoutes
from handlers.schedule import Schedule, ScheduleError, parse_schedule, zone
from handlers.sweep import FailureHook, ItemGuard
from handlers.turn import Turn
from handlers.types import Reply
from storage import broadcasts, outbox
from storage import reminders as store
from storage.areas import descendant_ids
from storage.models import Area, Contact, Reminder
from storage.types import OutboxKind

log = logging.getLogger(__name__)

MAX_TEXT = 1000
TEMPLATE_PREFIX = "template."
SUBCOMMANDS: dict[str, str] = {
    "tambah": "add",
    "add": "add",
    "jeda": "pause",
    "pause": "pause",
    "lanjut": "resume",
    "resume": "resume",
    "hapus": "delete",
    "delete": "delete",
    "template": "templates",
    "templates": "templates",
    "daftar": "list",
    "list": "list",
}
TARGET_WORDS: dict[str, str] = {
    "grup": "groups",
    "group": "groups",
    "groups": "groups",
    "warga": "residents",
    "resident": "residents",
    "residents": "residents",
    "semua": "both",
    "both": "both",
    "all": "both",
    "grup+warga": "both",
    "groups+residents": "both",
}
_NUMBER = re.compile(r"^#?(\d{1,9})$")


def templates(ctx: Context, lang: str) -> list[str]:
    """The health template keys the catalog has (a deployment may add its own)."""
    table = ctx.config.catalog.texts.get(lang) or ctx.config.catalog.texts["id"]
    return sorted(k[len(TEMPLATE_PREFIX) :] for k in table if k.startswith(TEMPLATE_PREFIX))


def message_text(ctx: Context, reminder: Reminder, lang: str) -> str:
    """The reminder as the reader sees it (a template in the reader's language)."""
    catalog = ctx.config.catalog
    body = reminder.text
    if reminder.template and catalog.get(lang, TEMPLATE_PREFIX + reminder.template) is not None:
        body = catalog.text(lang, TEMPLATE_PREFIX + reminder.template)
    return catalog.text(lang, "reminder.message", text=body)


# --- the sweep -----------------------------------------------------------------------------


@dataclass
class Sweep:
    """What one sweep did: (reminder id, occurrence) sent and skipped, the outbox rows, and the
    reminders that failed (rolled back; tried again by the next sweep within the grace)."""

    sent: list[tuple[int, datetime]] = field(default_factory=list)
    skipped: list[tuple[int, datetime]] = field(default_factory=list)
    outbox_ids: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


async def send_due(
    session: AsyncSession,
    ctx: Context,
    *,
    grace: timedelta,
    default_tz: str = "Asia/Jakarta",
    ids: list[int] | None = None,
    on_failure: FailureHook | None = None,
) -> Sweep:
    """Send every reminder occurrence that came due (once); the caller commits. A reminder that
    fails is rolled back alone and reported to ``on_failure`` (see the module's description)."""
    sweep = Sweep()
    guard = ItemGuard(session, "reminder", on_failure)
    for reminder in await store.active(session, ids):
        reminder_id = reminder.id
        async with guard.item(f"reminder {reminder_id}") as attempt:
            done = await _sweep_one(session, ctx, reminder, grace, default_tz)
        if attempt.failed:
            sweep.failed.append(reminder_id)
        elif done is not None:
            occurrence, rows = done
            if rows is None:
                sweep.skipped.append((reminder_id, occurrence))
            else:
                sweep.sent.append((reminder_id, occurrence))
                sweep.outbox_ids.extend(rows)
    await session.flush()
    return sweep


async def _sweep_one(
    session: AsyncSession, ctx: Context, reminder: Reminder, grace: timedelta, default_tz: str
) -> tuple[datetime, list[int] | None] | None:
    """One reminder's due occurrence: (occurrence, its outbox rows), or (occurrence, None) when
    it was skipped as too old; None when nothing is due (or another worker handled it)."""
    area = await session.get(Area, reminder.area_id)
    tz = zone(area.timezone if area else None, default_tz)
    try:
        schedule = Schedule.from_spec(reminder.cron)
    except ScheduleError:
        log.warning("reminder %s: stored schedule is damaged; not sent", reminder.id)
        return None
    start = reminder.last_fired_at or reminder.created_at
    first = schedule.next_after(start, tz)
    if first > ctx.now:
        return None
    # Only the grace window is walked, however long the process was down.
    recent = schedule.between(max(start, ctx.now - grace - timedelta(seconds=1)), ctx.now, tz)
    recent = [moment for moment in recent if ctx.now - moment <= grace]
    if not await store.advance(session, reminder, first, ctx.now):
        return None  # another worker (or an earlier sweep) handled it
    if not recent:
        log.warning(
            "reminder %s: missed since %s, %d min ago (grace %d min): skipped",
            reminder.id,
            first.isoformat(),
            (ctx.now - first) // timedelta(minutes=1),
            grace // timedelta(minutes=1),
        )
        return first, None
    latest = recent[-1]
    if first < latest:
        log.warning(
            "reminder %s: occurrences since %s missed; sending only the newest, %s",
            reminder.id,
            first.isoformat(),
            latest.isoformat(),
        )
    return latest, await deliver(session, ctx, reminder, latest)


async def deliver(
    session: AsyncSession, ctx: Context, reminder: Reminder, occurrence: datetime
) -> list[int]:
    """Outbox rows for one occurrence, each keyed by reminder, occurrence and chat."""
    area_ids = await descendant_ids(session, reminder.area_id)
    default = ctx.config.default_language
    stamp = occurrence.strftime("%Y%m%dT%H%MZ")
    routes = BotRoutes(session, ctx.config)
    # channel, chat id, language, contact, bot
    chats: list[tuple[str, int, str, int | None, str]] = []
    staff: list[Contact] = []
    via_groups: list[Contact] = []
    residents: list[Contact] = []
    if reminder.target in ("groups", "both"):
        reach = await officers_group(session, ctx.config, area_ids)
        staff, via_groups = reach.people, reach.via_groups
        for g in reach.groups:
            chats.append((g.channel, g.chat_id, default, None, await routes.group(g)))
    if reminder.target in ("residents", "both"):
        residents = await broadcasts.residents_in(session, area_ids)
    for p in one_per_person([*staff, *residents], reached=via_groups):
        chats.append(
            (p.channel, p.external_id, p.language or default, p.id, await routes.contact(p))
        )
    rows = [
        outbox.enqueue(
            session,
            channel=channel,
            chat_id=chat_id,
            kind=OutboxKind.REMINDER.value,
            reply=Reply(message_text(ctx, reminder, lang)),
            contact_id=contact_id,
            dedupe_key=f"rem:{reminder.id}:{stamp}:{channel}:{chat_id}",
            extra={"reminder_id": reminder.id, "lang": lang},
            bot=bot,
        )
        for channel, chat_id, lang, contact_id, bot in chats
    ]
    await session.flush()
    return [row.id for row in rows]


# --- /pengingat ----------------------------------------------------------------------------


async def command(turn: Turn, arg: str | None) -> None:
    """/pengingat [tambah|jeda|lanjut|hapus|template ...] for coordinators of the area."""
    contact = turn.contact
    if not is_supervisor(contact) or contact.area_id is None:
        turn.say(turn.t("reminder.only_coordinator"))
        await turn.reprompt_if_busy()
        return
    word, _, rest = (arg or "").strip().partition(" ")
    action = SUBCOMMANDS.get(word.lower(), "list" if not word else "help")
    if action == "list":
        await _list(turn, contact.area_id)
    elif action == "templates":
        names = ", ".join(f"#{k}" for k in templates(turn.ctx, turn.lang))
        turn.say(turn.t("reminder.templates", names=names or "-"))
    elif action == "add":
        await _add(turn, contact.area_id, rest)
    elif action in ("pause", "resume", "delete"):
        await _change(turn, contact.area_id, action, rest)
    else:
        turn.say(turn.t("reminder.usage"))
    await turn.reprompt_if_busy()


def schedule_words(turn: Turn, reminder: Reminder) -> str:
    """The schedule in the reader's language ('every day 19:00' for an English reader of
    'setiap hari 19:00'); cron as cron; the words as typed if the stored form is damaged."""
    try:
        schedule = Schedule.from_spec(reminder.cron)
    except ScheduleError:
        return reminder.schedule
    at = f"{schedule.hour:02d}:{schedule.minute:02d}"
    if schedule.kind == "daily":
        return turn.t("reminder.every_day", time=at)
    if schedule.kind == "weekly" and schedule.weekday is not None:
        names = turn.t("reminder.weekdays").split(",")
        weekday = names[schedule.weekday].strip() if len(names) == 7 else str(schedule.weekday)
        return turn.t("reminder.every_week", weekday=weekday, time=at)
    if schedule.kind == "monthly":
        return turn.t("reminder.every_month", day=schedule.day, time=at)
    return f"cron {schedule.cron}"


def _describe(turn: Turn, reminder: Reminder) -> str:
    state = turn.t("reminder.paused_mark") if reminder.paused else ""
    return turn.t(
        "reminder.line",
        id=reminder.id,
        schedule=schedule_words(turn, reminder),
        target=turn.t(f"reminder.target_{reminder.target}"),
        title=reminder.title,
        state=state,
    ).rstrip()


async def _list(turn: Turn, area_id: int) -> None:
    found = await store.in_areas(turn.session, await descendant_ids(turn.session, area_id))
    if not found:
        turn.say(turn.t("reminder.none"))
        return
    turn.say("\n".join([turn.t("reminder.title"), *(_describe(turn, r) for r in found)]))


async def _add(turn: Turn, area_id: int, rest: str) -> None:
    parts = [p.strip() for p in rest.split("|")]
    if len(parts) != 3 or not all(parts):
        turn.say(turn.t("reminder.usage"))
        return
    words, target_word, body = parts
    try:
        schedule = parse_schedule(words)
    except ScheduleError as exc:
        turn.say(turn.t(exc.key) + "\n" + turn.t("reminder.usage"))
        return
    target = TARGET_WORDS.get(target_word.lower().replace(" ", ""))
    if target is None:
        turn.say(turn.t("reminder.bad_target", target=target_word[:32]))
        return
    template = None
    if body.startswith("#"):
        template = body[1:].strip().lower()
        if template not in templates(turn.ctx, turn.lang):
            names = ", ".join(f"#{k}" for k in templates(turn.ctx, turn.lang))
            turn.say(turn.t("reminder.bad_template", name=body[:32], names=names))
            return
        body = turn.t(TEMPLATE_PREFIX + template)
    if len(body) > MAX_TEXT:
        turn.say(turn.t("common.too_long", limit=MAX_TEXT, length=len(body)))
        return
    area = await turn.session.get(Area, area_id)
    tz = zone(area.timezone if area else None)
    reminder = await store.create(
        turn.session,
        area_id=area_id,
        title=f"#{template}" if template else " ".join(body.split())[:60],
        text=body,
        words=words,
        spec=schedule.spec,
        target=target,
        template=template,
        created_by_id=turn.contact.id,
        now=turn.now,
    )
    following = schedule.next_after(turn.now, tz).astimezone(tz)
    turn.say(
        turn.t(
            "reminder.added",
            id=reminder.id,
            next=f"{format_date(turn.catalog, turn.lang, following.date())} {following:%H:%M}",
            zone=following.tzname() or "",
        )
    )
    turn.outcome.recorded.reminder_id = reminder.id
    turn.outcome.schedules_changed = True


async def _change(turn: Turn, area_id: int, action: str, rest: str) -> None:
    match = _NUMBER.match(rest.strip())
    if match is None:
        turn.say(turn.t("reminder.usage"))
        return
    reminder = await turn.session.get(Reminder, int(match.group(1)))
    if reminder is None or reminder.area_id not in await descendant_ids(turn.session, area_id):
        turn.say(turn.t("reminder.unknown", id=match.group(1)))
        return
    if action == "delete":
        await turn.session.delete(reminder)
    elif action == "pause":
        reminder.paused = True
    else:
        if reminder.paused:  # what came due while paused is not sent afterwards
            reminder.last_fired_at = turn.now
        reminder.paused = False
    await turn.session.flush()
    turn.say(turn.t(f"reminder.done_{action}", id=match.group(1)))
    turn.outcome.recorded.reminder_id = int(match.group(1))
    turn.outcome.schedules_changed = True

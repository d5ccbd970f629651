"""Daily and weekly recaps for coordinators, in their area's time zone.

Driven by the database like escalation: ``send_due_recaps`` is called periodically; for every
coordinator/admin it works out the last finished period in the area's zone (yesterday, once the
local clock passed ``hour``; last Monday-to-Sunday week, from Monday at ``hour``) and writes one
outbox row (kind "recap") keyed ``recap:<daily|weekly>:<contact>:<first day>``. The key makes
it once per coordinator and period across restarts and workers; a daily recap missed by a whole
day of downtime is skipped, a weekly one goes out late during the week. Caller commits.

Numbers for the coordinator's area and every area below it: new reports (created in the period)
by category; open reports (new, claimed or reopened, created before the period's end) and, of
these, overdue ones (still unclaimed after their escalation time); reports resolved in the
period and their resolution time (median, mean); escalations in the period; reports merged into
another (duplicates) and reopened in the period, by their reporters or by staff on the desk (a
reopened report counts as open again); patrol confirmations
(``storage.patrol.patrol_confirmations``).

Each recap is written in its own savepoint (``handlers.sweep``): one that fails (a deployment's
broken text override for the coordinator's language, bad data) is rolled back alone, logged and
reported, and the other coordinators get theirs. ``bot.recaps.RecapJob`` then leaves that recap
alone for as long as the process runs (it would fail every minute); a restart tries it again.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Container
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.context import Context
from handlers.render import DEFAULT_ZONE, category_label, format_date
from handlers.routing import BotRoutes
from handlers.schedule import zone as area_zone
from handlers.sweep import FailureHook, ItemGuard
from handlers.types import Reply
from storage import contacts, outbox, problems, reports
from storage.areas import descendant_ids
from storage.models import Area, Contact, Outbox
from storage.patrol import patrol_confirmations
from storage.types import OutboxKind, ReportStatus, Role

DEFAULT_HOUR = 7  # local time the recaps go out
OPEN = tuple(s.value for s in ReportStatus if s.is_open)  # new, claimed, reopened


@dataclass(frozen=True, slots=True)
class Period:
    """A finished day or week in an area's zone, as UTC instants [start, end)."""

    kind: str
    first_day: date
    last_day: date
    start: datetime
    end: datetime


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def due_periods(now: datetime, zone_name: str, hour: int = DEFAULT_HOUR) -> list[Period]:
    """The periods whose recap is due at ``now`` in the zone (each is sent once, by its key);
    an unknown zone counts as the default one, as for reminders."""
    zone = area_zone(zone_name, DEFAULT_ZONE)
    local = now.astimezone(zone)
    today = local.date()
    periods = []
    if local.hour >= hour:
        yesterday = today - timedelta(days=1)
        periods.append(
            Period(
                "daily", yesterday, yesterday, _midnight(yesterday, zone), _midnight(today, zone)
            )
        )
    monday = today - timedelta(days=today.weekday())
    if today.weekday() > 0 or local.hour >= hour:
        first = monday - timedelta(days=7)
        periods.append(
            Period(
                "weekly",
                first,
                monday - timedelta(days=1),
                _midnight(first, zone),
                _midnight(monday, zone),
            )
        )
    return periods


@dataclass(slots=True)
class PatrolSummary:
    """Patrol shifts in the period: members expected, confirmed ("Hadir") and missed."""

    expected: int
    confirmed: int
    missed: int


async def patrol_summary(
    session: AsyncSession, area_ids: list[int], start: datetime, end: datetime
) -> PatrolSummary | None:
    """Members on the period's announced shifts: expected, confirmed ("Hadir"), missed."""
    rows = await patrol_confirmations(session, area_ids, start, end)
    if not rows:
        return None
    confirmed = sum(1 for row in rows if row.confirmed_at is not None)
    return PatrolSummary(expected=len(rows), confirmed=confirmed, missed=len(rows) - confirmed)


@dataclass(slots=True)
class RecapStats:
    """The recap's numbers; ``by_category`` maps a category to (new, open, overdue)."""

    new: int = 0
    open: int = 0
    overdue: int = 0
    by_category: dict[str, list[int]] = field(default_factory=dict)
    resolved: int = 0
    median_minutes: int | None = None
    mean_minutes: int | None = None
    escalations: int = 0
    duplicates: int = 0  # merged into another report in the period
    reopened: int = 0  # reopened in the period (by their reporters, or staff on the desk)
    patrol: PatrolSummary | None = None
    # Problems (SARA, handlers.problems): open now, their actions overdue now, suggestions
    # proposed since the period began and still waiting.
    open_problems: int = 0
    overdue_actions: int = 0
    new_suggestions: int = 0


async def problem_numbers(
    session: AsyncSession, area_ids: list[int], since: datetime, now: datetime
) -> tuple[int, int, int]:
    """(open problems, overdue actions, new suggestions) of these areas."""
    return await problems.counts_in_areas(session, area_ids, now=now, since=since)


async def compute_stats(
    session: AsyncSession, area_ids: list[int], period: Period, now: datetime
) -> RecapStats:
    """Count the reports of these areas for the period (see the module's description)."""
    found = await reports.created_before(session, area_ids, period.end)
    stats = RecapStats()
    new: Counter[str] = Counter()
    open_: Counter[str] = Counter()
    overdue: Counter[str] = Counter()
    durations = []
    for report in found:
        if report.created_at >= period.start:
            new[report.category] += 1
        if report.status in OPEN:
            open_[report.category] += 1
            if (
                report.status == ReportStatus.NEW.value
                and report.escalate_at is not None
                and report.escalate_at <= now
            ) or (report.status == ReportStatus.NEW.value and report.escalated_at is not None):
                overdue[report.category] += 1
        closed = report.closed_at
        resolved = report.status == ReportStatus.RESOLVED.value
        if resolved and closed is not None and period.start <= closed < period.end:
            durations.append((closed - report.created_at).total_seconds() / 60)
        if report.escalated_at is not None and period.start <= report.escalated_at < period.end:
            stats.escalations += 1
        if (
            report.status == ReportStatus.DUPLICATE.value
            and closed is not None
            and period.start <= closed < period.end
        ):
            stats.duplicates += 1
    stats.new, stats.open, stats.overdue = (
        sum(new.values()),
        sum(open_.values()),
        sum(overdue.values()),
    )
    for category in sorted(set(new) | set(open_)):
        stats.by_category[category] = [new[category], open_[category], overdue[category]]
    stats.resolved = len(durations)
    if durations:
        stats.median_minutes = round(statistics.median(durations))
        stats.mean_minutes = round(statistics.fmean(durations))
    stats.reopened = await reports.count_area_events(
        session, area_ids, ReportStatus.REOPENED.value, period.start, period.end
    )
    stats.patrol = await patrol_summary(session, area_ids, period.start, period.end)
    stats.open_problems, stats.overdue_actions, stats.new_suggestions = await problem_numbers(
        session, area_ids, period.start, now
    )
    return stats


def _duration(ctx: Context, lang: str, minutes: int | None) -> str:
    catalog = ctx.config.catalog
    if minutes is None:
        return catalog.text(lang, "recap.none")
    return catalog.text(lang, "recap.duration", hours=minutes // 60, minutes=minutes % 60)


def recap_text(ctx: Context, lang: str, area: Area, period: Period, stats: RecapStats) -> str:
    """The recap as the coordinator reads it."""
    catalog = ctx.config.catalog

    def t(key: str, /, **params: object) -> str:
        return catalog.text(lang, f"recap.{key}", **params)

    label = format_date(catalog, lang, period.first_day)
    if period.first_day != period.last_day:
        label = f"{label} – {format_date(catalog, lang, period.last_day)}"
    lines = [t(f"title_{period.kind}", area=area.name, period=label), t("new", count=stats.new)]
    lines.append(t("open", count=stats.open, overdue=stats.overdue))
    for key, (new, open_, overdue) in stats.by_category.items():
        category = category_label(catalog, lang, key)
        lines.append(t("category_line", category=category, new=new, open=open_, overdue=overdue))
    lines.append(
        t(
            "resolved",
            count=stats.resolved,
            median=_duration(ctx, lang, stats.median_minutes),
            mean=_duration(ctx, lang, stats.mean_minutes),
        )
    )
    lines.append(t("escalations", count=stats.escalations))
    lines.append(t("lifecycle", duplicates=stats.duplicates, reopened=stats.reopened))
    patrol = stats.patrol
    if patrol is None:
        none = t("none")
        lines.append(t("patrol", confirmed=none, expected=none, missed=none))
    else:
        lines.append(
            t("patrol", confirmed=patrol.confirmed, expected=patrol.expected, missed=patrol.missed)
        )
    lines.append(
        t(
            "problems",
            open=stats.open_problems,
            overdue=stats.overdue_actions,
            suggestions=stats.new_suggestions,
        )
    )
    return "\n".join(lines)


async def coordinators(session: AsyncSession) -> list[Contact]:
    """Coordinators and admins who can be written to."""
    return await contacts.reachable_with_roles(session, [Role.COORDINATOR.value, Role.ADMIN.value])


def recap_key(period: Period, contact: Contact) -> str:
    """The idempotency key: one recap per coordinator and period."""
    return f"recap:{period.kind}:{contact.id}:{period.first_day.isoformat()}"


async def send_due_recaps(
    session: AsyncSession,
    ctx: Context,
    *,
    hour: int = DEFAULT_HOUR,
    on_failure: FailureHook | None = None,
    skip: Container[str] = frozenset(),
) -> list[Outbox]:
    """Write the recaps that are due and not yet written; returns the new rows. Caller commits.

    A recap that fails is rolled back alone and reported to ``on_failure`` as the item named by
    its key (``recap_key``); recaps whose keys are in ``skip`` are not tried.
    """
    plans: list[tuple[Contact, Area, Period]] = []
    for contact in await coordinators(session):
        area = await session.get(Area, contact.area_id)
        if area is None:
            continue
        for period in due_periods(ctx.now, area.timezone or DEFAULT_ZONE, hour):
            if period.end > contact.created_at:  # no recap of a time before they came
                plans.append((contact, area, period))
    keys = [recap_key(period, contact) for contact, _area, period in plans]
    done = await outbox.existing_keys(session, keys)
    rows = []
    routes = BotRoutes(session, ctx.config)
    guard = ItemGuard(session, "recap", on_failure)
    for contact, area, period in plans:
        key = recap_key(period, contact)
        if key in done or key in skip:
            continue
        async with guard.item(key) as attempt:
            row = await _write_recap(session, ctx, routes, contact, area, period)
        if not attempt.failed:
            rows.append(row)
    await session.flush()
    return rows


async def _write_recap(
    session: AsyncSession,
    ctx: Context,
    routes: BotRoutes,
    contact: Contact,
    area: Area,
    period: Period,
) -> Outbox:
    """One coordinator's recap of one period, as an outbox row."""
    stats = await compute_stats(session, await descendant_ids(session, area.id), period, ctx.now)
    lang = contact.language or ctx.config.default_language
    return outbox.enqueue(
        session,
        channel=contact.channel,
        chat_id=contact.external_id,
        kind=OutboxKind.RECAP.value,
        reply=Reply(recap_text(ctx, lang, area, period, stats)),
        contact_id=contact.id,
        dedupe_key=recap_key(period, contact),
        extra={"lang": lang, "recap": _stats_json(period, stats)},
        bot=await routes.contact(contact),
    )


def _stats_json(period: Period, stats: RecapStats) -> dict[str, Any]:
    data = asdict(stats)
    data["period"] = {
        "kind": period.kind,
        "first_day": period.first_day.isoformat(),
        "last_day": period.last_day.isoformat(),
    }
    return data

"""The desk's storage (bot/web/desk): sign-in links, browser sessions, and its queries.

Tokens (sign-in links, session cookies) are kept only as their SHA-256. Every query takes the
area ids the person may see (their area and the areas below it) and never reads beyond them.
Durations and week numbers are computed by the database (window functions for the median and
p90), so the numbers page reads a few hundred rows however many reports there are.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import secrets
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    String,
    and_,
    case,
    column,
    func,
    literal,
    literal_column,
    or_,
    select,
    table,
    text,
    update,
)
from sqlalchemy import cast as cast_
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    Area,
    Contact,
    DeskLogin,
    DeskSession,
    Report,
    ReportEvent,
    ReportFollower,
)
from storage.reports import normalise_ticket
from storage.types import ReportStatus, Role

TOKEN_BYTES = 32
SEEN_EVERY = timedelta(minutes=1)  # a session's last_seen_at is written at most this often
STAFF_ROLES = (Role.OFFICER.value, Role.COORDINATOR.value, Role.ADMIN.value)

log = logging.getLogger(__name__)


def token_hash(token: str) -> str:
    """The SHA-256 (hex) a token is kept as."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


# --- sign-in links and sessions ------------------------------------------------------------


def create_login(session: AsyncSession, contact_id: int, now: datetime, valid: timedelta) -> str:
    """A new single-use sign-in token for the contact; only its hash is stored."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    session.add(
        DeskLogin(
            token_hash=token_hash(token),
            contact_id=contact_id,
            created_at=now,
            expires_at=now + valid,
        )
    )
    return token


async def use_login(session: AsyncSession, token: str, now: datetime) -> int | None:
    """Spend the sign-in token: the contact's id, or None when it is unknown, used or expired
    (a conditional UPDATE: two browsers using one link at once, one wins)."""
    digest = token_hash(token)
    contact_id = await session.scalar(
        select(DeskLogin.contact_id).where(
            DeskLogin.token_hash == digest,
            DeskLogin.used_at.is_(None),
            DeskLogin.expires_at > now,
        )
    )
    if contact_id is None:
        return None
    result = await session.execute(
        update(DeskLogin)
        .where(DeskLogin.token_hash == digest, DeskLogin.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    return contact_id if int(result.rowcount) == 1 else None  # type: ignore[attr-defined]


def open_session(session: AsyncSession, contact_id: int, now: datetime) -> tuple[str, str]:
    """A new browser session: (cookie token, CSRF token)."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    csrf = secrets.token_urlsafe(24)
    session.add(
        DeskSession(
            token_hash=token_hash(token),
            contact_id=contact_id,
            csrf=csrf,
            created_at=now,
            last_seen_at=now,
        )
    )
    return token, csrf


async def live_session(
    session: AsyncSession, token: str, now: datetime, idle: timedelta
) -> tuple[DeskSession, Contact] | None:
    """The session of this cookie and its person, if not ended nor idle too long; marks it
    seen (at most once a minute)."""
    row = (
        await session.execute(
            select(DeskSession, Contact)
            .join(Contact, Contact.id == DeskSession.contact_id)
            .where(DeskSession.token_hash == token_hash(token), DeskSession.ended_at.is_(None))
        )
    ).first()
    if row is None:
        return None
    desk, contact = row
    if desk.last_seen_at + idle <= now:
        desk.ended_at = now
        return None
    if now - desk.last_seen_at >= SEEN_EVERY:
        desk.last_seen_at = now
    return desk, contact


def end_session(desk: DeskSession, now: datetime) -> None:
    """Sign this browser out."""
    desk.ended_at = now


async def end_all(session: AsyncSession, contact_id: int, now: datetime) -> int:
    """Sign the contact out everywhere (and void unused links); how many sessions ended."""
    result = await session.execute(
        update(DeskSession)
        .where(DeskSession.contact_id == contact_id, DeskSession.ended_at.is_(None))
        .values(ended_at=now)
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(DeskLogin)
        .where(DeskLogin.contact_id == contact_id, DeskLogin.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


# --- the reports list, the map, downloads --------------------------------------------------


@dataclass(frozen=True, slots=True)
class Filter:
    """What the list shows: ``area_ids`` is the scope (already narrowed to a chosen area)."""

    area_ids: Sequence[int]
    statuses: Sequence[str] = ()
    category: str | None = None
    urgent: bool | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None
    officer_id: int | None = None
    sort: str = "newest"


SORTS: dict[str, tuple[Any, ...]] = {
    "newest": (Report.created_at.desc(), Report.id.desc()),
    "oldest": (Report.created_at.asc(), Report.id.asc()),
    "updated": (Report.updated_at.desc(), Report.id.desc()),
    "ticket": (Report.ticket.asc(),),
}


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# The text searched, as PostgreSQL's trigram index (migration 0013) holds it: the query must
# use this very expression for the planner to read the index.
SEARCH_TEXT_SQL = (
    "(reports.ticket || ' ' || reports.description || ' ' || coalesce(reports.address_text, ''))"
)
# SQLite's FTS5 index of the same three columns and its list of words (migration 0013), kept in
# step by triggers.
REPORT_SEARCH = table("report_search", column("rowid", Integer))
REPORT_TERMS = table("report_search_terms", column("term", String))
MAX_WORDS = 8  # words of a search used; more only narrow an already narrow result
MAX_TERMS = 50  # words of the index a typed prefix is spelled out into; beyond, a prefix query
COMMON = 20_000  # reports a search must find to be read along the list (see TextSearch)
_WORD = re.compile(r"[^\W_]+")
_unindexed_logged: list[bool] = []


@dataclass(frozen=True, slots=True)
class TextSearch:
    """SQLite's plan for free text. ``query``: the FTS5 query. ``common``: it finds at least
    ``COMMON`` reports, so the list is walked newest (or oldest) first asking the index about each
    row, and stops after a page; otherwise the index's few rows are read and sorted. Either
    alone is slow for the other case (a million rowids sorted; a million rows asked about)."""

    query: str
    common: bool = False


def search_words(text: str) -> list[str]:
    """The words of what a person typed (letters and digits: what FTS5's unicode61 tokenizer
    keeps), at most ``MAX_WORDS``; quotes, ``*``, ``NEAR(``, ``%`` and the like are dropped."""
    return _WORD.findall(text)[:MAX_WORDS]


def _folded(word: str) -> str:
    """The word as the index keeps it: lower case, without accents (remove_diacritics)."""
    split = unicodedata.normalize("NFKD", word.lower())
    return "".join(c for c in split if not unicodedata.combining(c))


def _quoted(word: str) -> str:
    return '"' + word.replace('"', '""') + '"'


def fts_query(words: Sequence[str]) -> str:
    """The FTS5 query finding every word as a prefix ("moto" finds "motor"); each is quoted, so
    ``AND``, ``OR``, ``NOT`` or ``NEAR`` typed by a person are only words."""
    return " ".join(f"{_quoted(word)}*" for word in words)


def is_text_search(f: Filter) -> bool:
    """Whether the filter has free text to search (not blank, not a ticket)."""
    if not f.text or f.text.isspace():
        return False
    return not (f.text.upper().startswith("KTN") and normalise_ticket(f.text) is not None)


async def plan_search(session: AsyncSession, f: Filter) -> TextSearch | None:
    """SQLite: the filter's free text as an FTS5 query of whole words of the index (a prefix
    query reads every row of every word it stands for before answering; whole words are read
    lazily), and whether it is common. None elsewhere, or with no word to search."""
    words = search_words(f.text or "") if is_text_search(f) else []
    if dialect_of(session) != "sqlite" or not words:
        return None
    parts, lazy = [], True
    for word in words:
        folded = _folded(word)
        terms = list(
            await session.scalars(
                select(REPORT_TERMS.c.term)
                .where(REPORT_TERMS.c.term >= folded, REPORT_TERMS.c.term < folded + "\U0010ffff")
                .limit(MAX_TERMS + 1)
            )
        )
        if terms and len(terms) <= MAX_TERMS:
            parts.append("(" + " OR ".join(_quoted(term) for term in terms) + ")")
        else:  # a very short prefix, or a word the index has no word for
            parts.append(fts_query([word]))
            lazy = False
    query = " AND ".join(parts)
    if not lazy:
        return TextSearch(query)
    found = select(literal(1)).select_from(REPORT_SEARCH).where(_match(query)).limit(COMMON)
    count = await session.scalar(select(func.count()).select_from(found.subquery()))
    return TextSearch(query, common=int(count or 0) >= COMMON)


def _match(query: str) -> ColumnElement[bool]:
    return cast(ColumnElement[bool], literal_column("report_search").op("MATCH")(query))


def _text_condition(
    text: str, dialect: str, search: TextSearch | None = None
) -> ColumnElement[bool]:
    """Every word of the text in the ticket, description or address, ignoring case. SQLite: the
    FTS5 index, each word a prefix of a word there (``search``: as planned by ``plan_search``).
    PostgreSQL: each word anywhere in them (``ILIKE '%word%'``, which the trigram index answers).
    Text with no word at all (only punctuation) is looked for as it is, with LIKE: rare, and
    found in the same places."""
    words = search_words(text)
    if dialect == "sqlite" and words:
        search = search or TextSearch(fts_query(words))
        if search.common:
            return (
                select(literal(1))
                .select_from(REPORT_SEARCH)
                .where(_match(search.query), REPORT_SEARCH.c.rowid == Report.id)
                .exists()
            )
        return Report.id.in_(select(REPORT_SEARCH.c.rowid).where(_match(search.query)))
    if dialect == "sqlite":
        return or_(
            *(
                column.like(_like(text), escape="\\")
                for column in (Report.ticket, Report.description, Report.address_text)
            )
        )
    searched: ColumnElement[str] = literal_column(SEARCH_TEXT_SQL)
    return and_(*(searched.ilike(_like(word), escape="\\") for word in words or [text]))


def conditions(
    f: Filter, dialect: str, search: TextSearch | None = None
) -> list[ColumnElement[bool]]:
    """The WHERE clauses of a filter for the database ``dialect`` ("sqlite", "postgresql"):
    text that is a ticket finds that ticket (its unique index); other text is searched in the
    ticket, description and address, ignoring case (``_text_condition``; ``search`` is SQLite's
    plan for it, ``plan_search``)."""
    where: list[ColumnElement[bool]] = [Report.area_id.in_(list(f.area_ids))]
    if f.statuses:
        where.append(Report.status.in_(list(f.statuses)))
    if f.category:
        where.append(Report.category == f.category)
    if f.urgent is not None:
        where.append(Report.urgent.is_(f.urgent))
    if f.since is not None:
        where.append(Report.created_at >= f.since)
    if f.until is not None:
        where.append(Report.created_at < f.until)
    if f.officer_id is not None:
        where.append(Report.assignee_id == f.officer_id)
    if is_text_search(f):
        where.append(_text_condition(f.text or "", dialect, search))
    elif f.text and not f.text.isspace():
        where.append(Report.ticket == normalise_ticket(f.text))
    return where


async def _log_if_unindexed(session: AsyncSession, f: Filter) -> None:
    """Once per process: say when PostgreSQL has no trigram index (pg_trgm could not be
    created), so the free-text search reads every report."""
    if not f.text or _unindexed_logged or dialect_of(session) != "postgresql":
        return
    _unindexed_logged.append(True)
    found = await session.scalar(
        text("SELECT 1 FROM pg_indexes WHERE indexname = 'ix_reports_search_trgm'")
    )
    if found is None:
        log.warning(
            "no trigram index (pg_trgm missing): the desk's free-text search reads every row"
        )


def dialect_of(session: AsyncSession) -> str:
    """The database's dialect name, for ``conditions``."""
    return session.get_bind().dialect.name


@dataclass(frozen=True, slots=True)
class ListRow:
    """One line of the list."""

    report: Report
    area_name: str
    assignee_name: str | None


async def list_reports(
    session: AsyncSession, f: Filter, *, limit: int, offset: int = 0
) -> list[ListRow]:
    """A page of the filtered reports (ask ``limit + 1`` to know whether a next page exists)."""
    await _log_if_unindexed(session, f)
    search = await plan_search(session, f)
    stmt = (
        select(Report, Area.name, Contact.display_name)
        .join(Area, Area.id == Report.area_id)
        .outerjoin(Contact, Contact.id == Report.assignee_id)
        .where(*conditions(f, dialect_of(session), search))
        .order_by(*SORTS.get(f.sort, SORTS["newest"]))
        .limit(limit)
        .offset(offset)
    )
    return [ListRow(r, a, n) for r, a, n in (await session.execute(stmt))]


@dataclass(frozen=True, slots=True)
class Point:
    """A report on the map."""

    ticket: str
    latitude: float
    longitude: float
    status: str
    category: str
    created_at: datetime
    urgent: bool


async def map_points(session: AsyncSession, f: Filter, *, limit: int) -> list[Point]:
    """The newest filtered reports that have a location, at most ``limit``."""
    await _log_if_unindexed(session, f)
    search = await plan_search(session, f)
    stmt = (
        select(
            Report.ticket,
            Report.latitude,
            Report.longitude,
            Report.status,
            Report.category,
            Report.created_at,
            Report.urgent,
        )
        .where(
            *conditions(f, dialect_of(session), search),
            Report.latitude.is_not(None),
            Report.longitude.is_not(None),
        )
        .order_by(Report.created_at.desc(), Report.id.desc())
        .limit(limit)
    )
    return [
        Point(ticket, float(lat or 0), float(lon or 0), status, category, created, urgent)
        for ticket, lat, lon, status, category, created, urgent in (await session.execute(stmt))
    ]


async def report_in_scope(
    session: AsyncSession, ticket: str, area_ids: Sequence[int]
) -> Report | None:
    """The report with this ticket if it lies in these areas (else None: answered 404)."""
    return await session.scalar(
        select(Report).where(Report.ticket == ticket, Report.area_id.in_(list(area_ids)))
    )


async def report_in_scope_by_id(
    session: AsyncSession, report_id: int, area_ids: Sequence[int]
) -> Report | None:
    """The report with this id if it lies in these areas."""
    return await session.scalar(
        select(Report).where(Report.id == report_id, Report.area_id.in_(list(area_ids)))
    )


async def trail(session: AsyncSession, report_id: int) -> list[tuple[ReportEvent, Contact | None]]:
    """The report's events, oldest first, with who acted."""
    stmt = (
        select(ReportEvent, Contact)
        .outerjoin(Contact, Contact.id == ReportEvent.actor_id)
        .where(ReportEvent.report_id == report_id)
        .order_by(ReportEvent.created_at, ReportEvent.id)
    )
    return [(e, c) for e, c in (await session.execute(stmt))]


async def follower_count(session: AsyncSession, report_id: int) -> int:
    """How many people follow the report."""
    found = await session.scalar(
        select(func.count())
        .select_from(ReportFollower)
        .where(ReportFollower.report_id == report_id)
    )
    return int(found or 0)


async def staff_of(session: AsyncSession, area_ids: Sequence[int]) -> list[Contact]:
    """The officers, coordinators and admins of these areas (not erased), by name."""
    stmt = (
        select(Contact)
        .where(
            Contact.area_id.in_(list(area_ids)),
            Contact.role.in_(STAFF_ROLES),
            Contact.erased_at.is_(None),
        )
        .order_by(Contact.display_name, Contact.id)
    )
    return list((await session.scalars(stmt)).all())


async def areas_of(session: AsyncSession, area_ids: Sequence[int]) -> list[Area]:
    """These areas, by level and name."""
    stmt = select(Area).where(Area.id.in_(list(area_ids))).order_by(Area.code)
    return list((await session.scalars(stmt)).all())


async def hand_over(
    session: AsyncSession, report: Report, to_id: int, *, actor_id: int, now: datetime, via: str
) -> bool:
    """Give a claimed (or new) report to another officer: it becomes claimed by them, only if
    nobody changed it since it was read (a conditional UPDATE); an event ``handed``."""
    from_status = report.status
    same_assignee = (
        Report.assignee_id.is_(None)
        if report.assignee_id is None
        else Report.assignee_id == report.assignee_id
    )
    values: dict[str, object] = {
        "assignee_id": to_id,
        "status": ReportStatus.CLAIMED.value,
        "updated_at": now,
    }
    if report.claimed_at is None:
        values["claimed_at"] = now
    result = await session.execute(
        update(Report)
        .where(Report.id == report.id, Report.status == from_status, same_assignee)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    await session.refresh(report)
    if int(result.rowcount) != 1:  # type: ignore[attr-defined]
        return False
    session.add(
        ReportEvent(
            report_id=report.id,
            kind="handed",
            from_status=from_status,
            to_status=ReportStatus.CLAIMED.value,
            actor_id=actor_id,
            note=str(to_id),
            created_at=now,
            via=via,
        )
    )
    return True


# --- numbers -------------------------------------------------------------------------------

WEEK = 7 * 24 * 3600
AGE_BUCKETS = (1, 3, 7, 30)  # days: open reports younger than 1 day, 1-3, 3-7, 7-30, older


def _minutes(session: AsyncSession, start: Any, end: Any) -> ColumnElement[Any]:
    """end - start in minutes, as the database computes it."""
    if session.get_bind().dialect.name == "sqlite":
        return (func.julianday(end) - func.julianday(start)) * 1440.0
    return func.extract("epoch", end - start) / 60.0


@dataclass(frozen=True, slots=True)
class Spread:
    """How long something took in a group: how many, median and p90 (minutes)."""

    count: int
    median: float | None
    p90: float | None


@dataclass(slots=True)
class Numbers:
    """The numbers page: everything for [since, until) of the areas, and what is open now."""

    weekly: dict[tuple[str, int], int] = field(default_factory=dict)  # (category, week) -> n
    by_category: dict[str, int] = field(default_factory=dict)
    by_area: dict[int, int] = field(default_factory=dict)  # created in the period
    open_by_age: list[int] = field(default_factory=list)  # per AGE_BUCKETS (+ older)
    claim_by_area: dict[int, Spread] = field(default_factory=dict)
    resolve_by_area: dict[int, Spread] = field(default_factory=dict)
    claim_by_officer: dict[int, Spread] = field(default_factory=dict)
    resolve_by_officer: dict[int, Spread] = field(default_factory=dict)
    claim_all: Spread = Spread(0, None, None)
    resolve_all: Spread = Spread(0, None, None)
    escalations: int = 0
    escalations_by_area: dict[int, int] = field(default_factory=dict)
    overdue: int = 0
    overdue_by_area: dict[int, int] = field(default_factory=dict)
    created: int = 0


def spread_of(values: list[float]) -> Spread:
    """How many, the median (as ``statistics.median``: the mean of the two middle values) and
    the p90 (nearest rank)."""
    if not values:
        return Spread(0, None, None)
    values.sort()
    n = len(values)
    median = (values[(n - 1) // 2] + values[n // 2]) / 2
    return Spread(n, median, values[math.ceil(0.9 * n) - 1])


async def _spreads(
    session: AsyncSession, start: Any, end: Any, where: Sequence[ColumnElement[bool]]
) -> tuple[dict[int, Spread], dict[int, Spread], Spread]:
    """end - start in minutes per area, per officer and overall. PostgreSQL computes them
    itself (``percentile_cont(0.5)`` is ``statistics.median``, ``percentile_disc(0.9)`` the
    nearest rank); on SQLite the database computes each duration (reading only a covering
    index), joined per area and officer, and Python sorts them once per group."""
    if dialect_of(session) == "postgresql":
        return await _spreads_in_postgres(session, start, end, where)
    # One row per (area, officer) with its durations joined by commas: a few hundred rows
    # instead of one per report (at 130,000 reports the rows' handling, not SQLite, was half
    # the time); group_concat writes a REAL with 15 significant digits.
    stmt = (
        select(
            Report.area_id,
            Report.assignee_id,
            func.group_concat(_minutes(session, start, end), ","),
        )
        .where(*where)
        .group_by(Report.area_id, Report.assignee_id)
    )
    by_area: dict[int, list[float]] = {}
    by_officer: dict[int, list[float]] = {}
    overall: list[float] = []
    for area_id, officer_id, joined in await session.execute(stmt):
        values = list(map(float, str(joined).split(","))) if joined else []
        by_area.setdefault(area_id, []).extend(values)
        if officer_id is not None:
            by_officer.setdefault(officer_id, []).extend(values)
        overall.extend(values)
    return (
        {k: spread_of(v) for k, v in by_area.items()},
        {k: spread_of(v) for k, v in by_officer.items()},
        spread_of(overall),
    )


async def _spreads_in_postgres(
    session: AsyncSession, start: Any, end: Any, where: Sequence[ColumnElement[bool]]
) -> tuple[dict[int, Spread], dict[int, Spread], Spread]:
    m = cast_(_minutes(session, start, end), Float)
    area, officer = Report.area_id, Report.assignee_id
    stmt = (
        select(
            area,
            officer,
            func.grouping(area),
            func.grouping(officer),
            func.count(),
            func.percentile_cont(0.5).within_group(m),
            func.percentile_disc(0.9).within_group(m),
        )
        .where(*where)
        .group_by(text("GROUPING SETS ((reports.area_id), (reports.assignee_id), ())"))
    )
    by_area: dict[int, Spread] = {}
    by_officer: dict[int, Spread] = {}
    overall = Spread(0, None, None)
    for a, o, no_area, no_officer, n, median, p90 in await session.execute(stmt):
        # the grand total over no rows: a count of 0 and no percentiles
        spread = Spread(
            int(n),
            None if median is None else float(median),
            None if p90 is None else float(p90),
        )
        if not no_area:
            by_area[a] = spread
        elif not no_officer:
            if o is not None:
                by_officer[o] = spread
        else:
            overall = spread
    return by_area, by_officer, overall


async def numbers(
    session: AsyncSession,
    area_ids: Sequence[int],
    since: datetime,
    until: datetime,
    now: datetime,
) -> Numbers:
    """Reports of these areas created in [since, until) by category and week and by area; open
    reports by age; time to claim (claimed in the period) and to resolve (resolved in the
    period, from creation, as the recap counts it) per area and per officer; escalations in
    the period; overdue (still unclaimed after their escalation time) now."""
    ids = list(area_ids)
    out = Numbers()
    in_area = Report.area_id.in_(ids)
    created = and_(in_area, Report.created_at >= since, Report.created_at < until)
    weeks = max(1, math.ceil((until - since) / timedelta(weeks=1)))
    week: Any = (
        case(
            *((Report.created_at < since + timedelta(weeks=w + 1), w) for w in range(weeks - 1)),
            else_=weeks - 1,
        )
        if weeks > 1
        else literal(0)
    ).label("w")
    for category, w, area_id, count in await session.execute(
        select(Report.category, week, Report.area_id, func.count())
        .where(created)
        .group_by(Report.category, week, Report.area_id)
    ):
        key = (category, int(w))
        out.weekly[key] = out.weekly.get(key, 0) + int(count)
        out.by_category[category] = out.by_category.get(category, 0) + int(count)
        out.by_area[area_id] = out.by_area.get(area_id, 0) + int(count)
    out.created = sum(out.by_category.values())
    edges = [now - timedelta(days=d) for d in AGE_BUCKETS]
    bucket = case(
        *((Report.created_at > edge, i) for i, edge in enumerate(edges)), else_=len(edges)
    ).label("b")
    ages = [0] * (len(edges) + 1)
    open_ = (ReportStatus.NEW.value, ReportStatus.CLAIMED.value)
    for b, count in await session.execute(
        select(bucket, func.count()).where(in_area, Report.status.in_(open_)).group_by(bucket)
    ):
        ages[int(b)] = int(count)
    out.open_by_age = ages
    claimed = (in_area, Report.claimed_at >= since, Report.claimed_at < until)
    resolved = (
        in_area,
        Report.status == ReportStatus.RESOLVED.value,
        Report.closed_at >= since,
        Report.closed_at < until,
    )
    out.claim_by_area, out.claim_by_officer, out.claim_all = await _spreads(
        session, Report.created_at, Report.claimed_at, claimed
    )
    out.resolve_by_area, out.resolve_by_officer, out.resolve_all = await _spreads(
        session, Report.created_at, Report.closed_at, resolved
    )
    for area_id, count in await session.execute(
        select(Report.area_id, func.count())
        .where(in_area, Report.escalated_at >= since, Report.escalated_at < until)
        .group_by(Report.area_id)
    ):
        out.escalations_by_area[area_id] = int(count)
    out.escalations = sum(out.escalations_by_area.values())
    for area_id, count in await session.execute(
        select(Report.area_id, func.count())
        .where(
            in_area,
            Report.status == ReportStatus.NEW.value,
            Report.escalate_at <= now,
        )
        .group_by(Report.area_id)
    ):
        out.overdue_by_area[area_id] = int(count)
    out.overdue = sum(out.overdue_by_area.values())
    return out


async def tickets_of(session: AsyncSession, report_ids: Sequence[int]) -> dict[int, str]:
    """The tickets of these reports, by id (a suggestion's reports on the problem list)."""
    if not report_ids:
        return {}
    rows = await session.execute(
        select(Report.id, Report.ticket).where(Report.id.in_(list(report_ids)))
    )
    return {i: t for i, t in rows.all()}


async def names_of(session: AsyncSession, contact_ids: Sequence[int]) -> dict[int, str | None]:
    """Display names of these contacts."""
    if not contact_ids:
        return {}
    rows = await session.execute(
        select(Contact.id, Contact.display_name).where(Contact.id.in_(list(contact_ids)))
    )
    return {i: n for i, n in rows}

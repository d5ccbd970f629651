"""The desk's problem pages (SARA, issue 20): the list with the suggestions, a problem's page
with its stages, and their forms. The rules are ``handlers.problem_desk`` (and the chat's
``handlers.problems``); this module reads the forms, gathers what the pages show and answers.

- ``/dasbor/masalah``: the open (or closed, or all) problems of the person's areas, the
  suggestions waiting (Terima / Abaikan) and a form to make a problem by hand.
- ``/dasbor/masalah/<id>``: the SARA stages one after the other. Scanning: the linked reports,
  their count per week and their places on a map (``/dasbor/masalah/<id>/peta.json``);
  Analysis: the notes on victims, offenders, place and causes; Response: the actions with
  owner and due date, "Selesai" for the owner or a coordinator; Assessment: reports of the same
  categories before and after the response began, as numbers and a chart, and the closing note.
  Beside them: rename, add or remove reports by ticket, merge into another problem, the trail.

A form that is done (or refused without losing anything) goes back to the page with a message
(POST, redirect, GET); one refused for what was typed (too long, a date in the past) shows the
page again with the message and the text still in its box. A problem outside the person's
areas answers 404 like one that does not exist. Opening a problem's page is logged (its notes
may describe victims and offenders).
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from bot.web.desk.charts import bar_chart
from bot.web.desk.headers import SECURITY_HEADERS
from handlers import problem_desk as rules
from handlers import problems as chat
from handlers.actions import Verdict
from handlers.config import PILLARS
from handlers.desk import language
from handlers.render import DEFAULT_ZONE, category_label, format_time, status_label
from storage import desk
from storage import problems as store
from storage.access_log import AccessKind
from storage.models import Area, Problem, ProblemAction, ProblemEvent, ProblemNote, Report
from storage.types import NoteKind, ProblemStage

if TYPE_CHECKING:
    from bot.web.desk.app import Desk, Viewer

log = logging.getLogger(__name__)

SHOWN = ("open", "closed", "all")
DIGITS = re.compile(r"[0-9]{1,12}")
LIST_LIMIT = 200
WEEKS_SHOWN = 16  # the count over time: per week up to this many weeks, per month beyond


@dataclass(frozen=True, slots=True)
class Shown:
    """Where a form went: the problem's page (``problem_id``) or the list."""

    verdict: Verdict
    problem_id: int | None = None


def _int(value: object) -> int | None:
    """A form's number (ASCII digits, at most 12), else None."""
    text = str(value or "")
    return int(text) if DIGITS.fullmatch(text) else None


def _lang(owner: Desk, viewer: Viewer) -> str:
    """The desk's language for the chat's texts when the catalog has it."""
    ctx_languages = owner.core.catalog.languages
    return (
        viewer.lang if viewer.lang in ctx_languages else language(owner.context(), viewer.contact)
    )


# --- the list -------------------------------------------------------------------------------


async def list_page(
    owner: Desk,
    request: Request,
    session: AsyncSession,
    viewer: Viewer,
    *,
    kept: dict[str, str] | None = None,
    flash: str | None = None,
    status: int = 200,
) -> Response:
    """The problems of the person's areas, the suggestions waiting, a new problem's form."""
    ctx = owner.context()
    lang = viewer.lang
    shown = request.query_params.get("tampil")
    shown = shown if shown in SHOWN else "open"
    found = await store.in_areas(
        session,
        viewer.scope,
        open_only=shown == "open",
        closed_only=shown == "closed",
        limit=LIST_LIMIT + 1,
    )
    more = len(found) > LIST_LIMIT
    found = found[:LIST_LIMIT]
    counts = await store.report_counts(session, [p.id for p in found])
    waiting = Counter[int]()
    overdue = Counter[int]()
    for action, problem in await store.open_actions_in_areas(session, viewer.scope):
        waiting[problem.id] += 1
        if action.due_at < ctx.now:
            overdue[problem.id] += 1
    areas = {a.id: a for a in await desk.areas_of(session, viewer.scope)}
    items = [
        {
            "id": p.id,
            "title": p.title,
            "pillar": _pillar(owner, lang, p.pillar),
            "stage": p.stage,
            "stage_label": _stage(owner, lang, p.stage),
            "area": areas[p.area_id].name if p.area_id in areas else "-",
            "reports": counts.get(p.id, 0),
            "actions": waiting.get(p.id, 0),
            "overdue": overdue.get(p.id, 0),
            "updated": format_time(p.updated_at, _zone_name(areas.get(p.area_id))),
        }
        for p in found
    ]
    suggestions = []
    for s in await rules.suggestions(session, ctx, viewer.contact):
        suggestions.append(
            {
                "id": s.id,
                "stamp": store.stamp(s.fingerprint),
                "count": len(s.report_ids),
                "category": category_label(owner.core.catalog, lang, s.category),
                "area": areas[s.area_id].name if s.area_id in areas else "-",
                "tickets": await _tickets(session, s.report_ids),
            }
        )
    flash = flash or owner._take_flash(request)
    response = owner._html(
        request,
        "problems.html",
        lang,
        status,
        viewer=viewer,
        items=items,
        more=more,
        limit=LIST_LIMIT,
        shown=shown,
        empty=owner.texts.text(lang, f"desk.p_none_{shown}"),
        shows=[(s, owner.texts.text(lang, f"desk.problems_{s}")) for s in SHOWN],
        suggestions=suggestions,
        days=owner.core.problems.suggest_days,
        pillars=[(p, _pillar(owner, lang, p)) for p in PILLARS],
        areas=[(a.id, a.name) for a in areas.values()],
        kept=kept or {},
        flash=flash,
    )
    if flash and status == 200:
        response.delete_cookie("ktn_desk_flash", path=owner.prefix)
    return response


async def _tickets(session: AsyncSession, report_ids: list[int]) -> list[str]:
    found = await desk.tickets_of(session, report_ids)
    return [found[i] for i in report_ids if i in found]


async def list_action(
    owner: Desk, request: Request, session: AsyncSession, viewer: Viewer
) -> Response:
    """Make a problem by hand, or accept / dismiss a suggestion."""
    form = await request.form()
    what = str(form.get("do") or "")
    ctx = owner.context()
    lang = _lang(owner, viewer)
    actor = viewer.contact
    if what == "create":
        verdict, made = await rules.create(
            session,
            ctx,
            actor,
            lang,
            area_id=_int(form.get("area")),
            pillar=str(form.get("pillar") or ""),
            title=str(form.get("title") or ""),
            tickets=str(form.get("tickets") or ""),
        )
        if made is None:
            kept = {k: str(form.get(k) or "") for k in ("title", "tickets", "pillar", "area")}
            return await list_page(
                owner, request, session, viewer, kept=kept, flash=verdict.text, status=400
            )
        log.info("desk: problem %s: create by contact %s", made.id, actor.id)
        return _back(owner, request, viewer, Shown(verdict, made.id))
    if what in ("accept", "dismiss"):
        verdict, made = await rules.decide(
            session,
            ctx,
            actor,
            lang,
            _int(form.get("suggestion")),
            accept=what == "accept",
            stamp=_int(form.get("stamp")),
        )
        if verdict.done:
            log.info(
                "desk: suggestion %s: %s by contact %s",
                _int(form.get("suggestion")),
                what,
                actor.id,
            )
        return _back(owner, request, viewer, Shown(verdict, made.id if made else None))
    return owner.error(request, viewer, 400, "desk.bad_request")


# --- a problem ------------------------------------------------------------------------------


async def problem_page(
    owner: Desk, request: Request, session: AsyncSession, viewer: Viewer
) -> Response:
    problem = await rules.problem_in_scope(
        session, viewer.contact, request.path_params["problem_id"]
    )
    if problem is None:
        return _not_found(owner, request, viewer)
    owner._accessed(session, viewer, AccessKind.PROBLEM, subject=f"problem {problem.id}")
    flash = owner._take_flash(request)
    response = await problem_view(owner, request, session, viewer, problem, flash=flash)
    if flash:
        response.delete_cookie("ktn_desk_flash", path=owner.prefix)
    return response


async def problem_view(
    owner: Desk,
    request: Request,
    session: AsyncSession,
    viewer: Viewer,
    problem: Problem,
    *,
    flash: str | None = None,
    kept: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    """The problem's page (``kept``: what was typed into a form that was refused)."""
    lang = viewer.lang
    catalog = owner.core.catalog
    ctx = owner.context()
    area = await session.get(Area, problem.area_id)
    zone = _zone_name(area)
    linked = await store.reports_of(session, problem.id)
    area_names = {a.id: a.name for a in await desk.areas_of(session, viewer.scope)}
    events = await store.events_of(session, problem.id)
    written = await store.notes_of(session, problem.id)
    planned = await store.actions_of(session, problem.id)
    names = await _names(session, events, written, planned)

    def who(contact_id: int | None) -> str:
        return _who(owner, lang, names, contact_id)

    stage = ProblemStage(problem.stage)
    following = stage.next
    reached = _reached(events, problem)
    stages = [
        {
            "key": s.value,
            "label": _stage(owner, lang, s.value),
            "state": "done"
            if list(ProblemStage).index(s) < list(ProblemStage).index(stage)
            else ("current" if s is stage else "todo"),
            "when": format_time(reached[s.value], zone) if s.value in reached else None,
        }
        for s in ProblemStage
    ]
    reports = [
        {
            "ticket": r.ticket,
            "id": r.id,
            "category": category_label(catalog, lang, r.category),
            "status": r.status,
            "status_label": status_label(catalog, lang, r.status),
            "created": format_time(r.created_at, zone),
            "area": area_names.get(r.area_id, "-"),
            "located": r.latitude is not None,
        }
        for r in linked
    ]
    notes = {kind.value: [] for kind in NoteKind}  # type: dict[str, list[dict[str, str]]]
    for note in written:
        notes.setdefault(note.kind, []).append(
            {
                "text": note.text,
                "who": who(note.author_id),
                "time": format_time(note.created_at, zone),
            }
        )
    actions = [
        {
            "id": a.id,
            "text": a.text,
            "owner": who(a.owner_id),
            "due": format_time(a.due_at, zone),
            "overdue": a.done_at is None and a.due_at < ctx.now,
            "reminded": format_time(a.reminded_at, zone) if a.reminded_at else None,
            "done": format_time(a.done_at, zone) if a.done_at else None,
            "done_by": who(a.done_by_id) if a.done_at else None,
            "can_done": rules.may_mark_done(viewer.contact, a) and stage.is_open,
        }
        for a in planned
    ]
    assessed = await store.assessment(session, problem, ctx.now)
    assessment = None
    if assessed is not None:
        period = _period(owner, lang, assessed.length)
        before = owner.texts.text(lang, "desk.p_before", period=period)
        after = owner.texts.text(lang, "desk.p_after", period=period)
        assessment = {
            "before": assessed.before,
            "after": assessed.after,
            "period": period,
            "since": format_time(assessed.start - assessed.length, zone),
            "start": format_time(assessed.start, zone),
            "end": format_time(assessed.end, zone),
            "categories": ", ".join(category_label(catalog, lang, c) for c in assessed.categories),
            "change": None if assessed.change is None else round(assessed.change * 100),
            "chart": bar_chart(
                [(before, assessed.before), (after, assessed.after)],
                owner.texts.text(lang, "desk.p_assessment_chart"),
            ),
        }
    owners_ = await chat.owners(session, problem) if stage.is_open else []
    targets = await rules.merge_targets(session, problem)
    merged_into = problem.merged_into_id
    return owner._html(
        request,
        "problem.html",
        lang,
        status,
        viewer=viewer,
        problem=problem,
        area=area.name if area else "-",
        pillar=_pillar(owner, lang, problem.pillar),
        stage_label=_stage(owner, lang, problem.stage),
        stages=stages,
        next_stage=following.value if following else None,
        next_label=_stage(owner, lang, following.value) if following else None,
        is_open=stage.is_open,
        reports=reports,
        located=sum(1 for r in reports if r["located"]),
        count_chart=_count_chart(owner, lang, linked, zone, problem.closed_at or ctx.now),
        notes=[(k, owner.texts.text(lang, f"desk.p_note_{k}"), v) for k, v in notes.items()],
        note_kinds=[(k.value, owner.texts.text(lang, f"desk.p_note_{k.value}")) for k in NoteKind],
        actions=actions,
        owners=[(c.id, c.display_name or owner.texts.text(lang, "desk.unnamed")) for c in owners_],
        due_min=_local_input(ctx.now + timedelta(minutes=5), zone),
        assessment=assessment,
        closing_note=problem.closing_note if not stage.is_open and not merged_into else None,
        merged_into=merged_into,
        targets=[(p.id, p.title) for p in targets],
        pillars=[(p, _pillar(owner, lang, p)) for p in PILLARS],
        trail=_trail(owner, lang, events, who, zone, linked, actions),
        created=format_time(problem.created_at, zone),
        zone=_zone_abbreviation(zone, ctx.now),
        kept=kept or {},
        tiles_url=owner.settings.tiles_url,
        tiles_attribution=owner.settings.tiles_attribution,
        flash=flash,
    )


async def problem_map(
    owner: Desk, request: Request, session: AsyncSession, viewer: Viewer
) -> Response:
    """The places of the problem's reports (the map of its page)."""
    problem = await rules.problem_in_scope(
        session, viewer.contact, request.path_params["problem_id"]
    )
    if problem is None:
        return JSONResponse({"error": "not found"}, status_code=404, headers=SECURITY_HEADERS)
    catalog = owner.core.catalog
    lang = viewer.lang
    points = [
        {
            "ticket": r.ticket,
            "lat": r.latitude,
            "lon": r.longitude,
            "status": r.status,
            "status_label": status_label(catalog, lang, r.status),
            "category": category_label(catalog, lang, r.category),
            "created": format_time(r.created_at),
            "urgent": r.urgent,
            "url": f"{owner.prefix}/laporan/{r.ticket}",
        }
        for r in await store.reports_of(session, problem.id)
        if r.latitude is not None and r.longitude is not None
    ]
    return JSONResponse(
        {"truncated": False, "points": points}, headers={"Cache-Control": "no-store"}
    )


async def problem_action(
    owner: Desk, request: Request, session: AsyncSession, viewer: Viewer
) -> Response:
    """What a form of the problem's page asks: next stage, rename, reports, merge, a note, an
    action, an action done."""
    problem = await rules.problem_in_scope(
        session, viewer.contact, request.path_params["problem_id"]
    )
    if problem is None:
        return _not_found(owner, request, viewer)
    form = await request.form()
    what = str(form.get("do") or "")
    ctx = owner.context()
    lang = _lang(owner, viewer)
    actor = viewer.contact
    kept: dict[str, str] = {}
    expected = str(form.get("stage") or "") or None
    if what == "next":
        note = str(form.get("note") or "")
        kept = {"closing": note}
        verdict = await rules.next_stage(
            session, ctx, actor, lang, problem, expected=expected, note=note
        )
    elif what == "rename":
        title = str(form.get("title") or "")
        kept = {"title": title}
        pillar = str(form.get("pillar") or "")
        verdict = await rules.rename(session, ctx, actor, lang, problem, title=title, pillar=pillar)
    elif what == "add":
        kept = {"tickets": str(form.get("tickets") or "")}
        verdict = await rules.add_reports(session, ctx, actor, lang, problem, kept["tickets"])
    elif what == "remove":
        verdict = await rules.remove_report(
            session, ctx, actor, lang, problem, _int(form.get("report"))
        )
    elif what == "merge":
        verdict, target = await rules.merge(
            session, ctx, actor, lang, problem, _int(form.get("target"))
        )
        if target is not None:
            log.info(
                "desk: problem %s: merge into %s by contact %s", problem.id, target.id, actor.id
            )
            return _back(owner, request, viewer, Shown(verdict, target.id))
    elif what == "note":
        kind = str(form.get("kind") or "")
        kept = {"note": str(form.get("text") or ""), "note_kind": kind}
        verdict = await rules.add_note(
            session, ctx, actor, lang, problem, kind=kind, text=kept["note"]
        )
    elif what == "action":
        kept = {
            "action": str(form.get("text") or ""),
            "owner": str(form.get("owner") or ""),
            "due": str(form.get("due") or ""),
        }
        area = await session.get(Area, problem.area_id)
        verdict = await rules.add_action(
            session,
            ctx,
            actor,
            lang,
            problem,
            text=kept["action"],
            owner_id=_int(form.get("owner")),
            due_at=_parse_local(kept["due"], _zone_name(area)),
        )
    elif what == "done":
        verdict = await rules.mark_done(
            session, ctx, actor, lang, problem, _int(form.get("action"))
        )
    else:
        return owner.error(request, viewer, 400, "desk.bad_request")
    if what == "next" and problem.stage != (expected or problem.stage):
        kept = {}  # moved by someone else (or a second click): nothing typed is lost
    if not verdict.done and any(v.strip() for v in kept.values()):
        return await problem_view(
            owner, request, session, viewer, problem, flash=verdict.text, kept=kept, status=400
        )
    if verdict.done:
        log.info("desk: problem %s: %s by contact %s", problem.id, what, actor.id)
    return await _finish(owner, request, session, viewer, Shown(verdict, problem.id))


async def _finish(
    owner: Desk, request: Request, session: AsyncSession, viewer: Viewer, shown: Shown
) -> Response:
    response = _back(owner, request, viewer, shown)
    if shown.verdict.rows and owner.notify is not None:
        await session.commit()  # the reporters' news: sent once committed
        owner.notify()
    return response


def _back(owner: Desk, request: Request, viewer: Viewer, shown: Shown) -> Response:
    where = f"{owner.prefix}/masalah"
    if shown.problem_id is not None:
        where += f"/{shown.problem_id}"
    response = RedirectResponse(where, status_code=303)
    owner.flash(request, response, shown.verdict.text)
    return response


def _not_found(owner: Desk, request: Request, viewer: Viewer) -> Response:
    return owner._html(
        request,
        "error.html",
        viewer.lang,
        404,
        message="desk.p_not_found",
        viewer=viewer,
    )


# --- what the pages show --------------------------------------------------------------------


def _stage(owner: Desk, lang: str, stage: str) -> str:
    return owner.core.catalog.get(lang, f"problem.stage_{stage}") or stage


def _pillar(owner: Desk, lang: str, pillar: str) -> str:
    return owner.core.catalog.get(lang, f"pillar.{pillar}") or pillar


def _who(owner: Desk, lang: str, names: dict[int, str | None], contact_id: int | None) -> str:
    """A staff member's name on the page ('sistem' for nobody, '(tanpa nama)' without one)."""
    if contact_id is None or contact_id not in names:
        return owner.texts.text(lang, "desk.nobody")
    return names[contact_id] or owner.texts.text(lang, "desk.unnamed")


def _period(owner: Desk, lang: str, length: timedelta) -> str:
    """'12 hari', '5 jam', '< 1 jam': each of the assessment's two equal periods."""
    hours = length.total_seconds() / 3600
    if round(hours / 24) == 1:
        return owner.texts.text(lang, "desk.p_period_day")
    if hours >= 24:
        return owner.texts.text(lang, "desk.p_period_days", days=round(hours / 24))
    if hours >= 1:
        return owner.texts.text(lang, "desk.p_period_hours", hours=round(hours))
    return owner.texts.text(lang, "desk.p_period_short")


def _zone_name(area: Area | None) -> str:
    return (area.timezone if area is not None else None) or DEFAULT_ZONE


def _zone_abbreviation(zone: str, now: datetime) -> str:
    return format_time(now, zone).rsplit(" ", 1)[-1]


def _local_input(moment: datetime, zone: str) -> str:
    """A moment as a ``datetime-local`` input's value in the area's zone."""
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M")


def _parse_local(value: str, zone: str) -> datetime | None:
    """A ``datetime-local`` value (the area's local time) as UTC; None when unreadable."""
    try:
        local = datetime.fromisoformat(value.strip())
        if local.tzinfo is None:
            local = local.replace(tzinfo=ZoneInfo(zone))
        return local.astimezone(UTC)
    except (ValueError, OverflowError):  # not a date, or one before year 1 in UTC
        return None


async def _names(
    session: AsyncSession,
    events: list[ProblemEvent],
    notes: list[ProblemNote],
    actions: list[ProblemAction],
) -> dict[int, str | None]:
    """The names of everyone the page names: actors of the trail, authors of notes, owners of
    actions (staff: residents never act on a problem, so no reporter is named)."""
    ids = {e.actor_id for e in events} | {n.author_id for n in notes}
    for action in actions:
        ids |= {action.owner_id, action.done_by_id}
    return await desk.names_of(session, sorted(i for i in ids if i is not None))


def _reached(events: list[ProblemEvent], problem: Problem) -> dict[str, datetime]:
    """When the problem entered each stage it has reached."""
    reached = {ProblemStage.SCANNING.value: problem.created_at}
    for event in events:
        if event.to_stage and event.kind in ("stage", "merged"):
            reached.setdefault(event.to_stage, event.created_at)
    return reached


def _count_chart(owner: Desk, lang: str, linked: list[Report], zone: str, until: datetime) -> Any:
    """The reports' count per week (per month over a longer span), from the first report to
    ``until`` (now, or when the problem was closed): the quiet weeks show too."""
    if not linked:
        return None
    tz = ZoneInfo(zone)
    days = [r.created_at.astimezone(tz).date() for r in linked]
    first, last = min(days), max(*days, until.astimezone(tz).date())
    monday = first - timedelta(days=first.weekday())
    weeks = (last - monday).days // 7 + 1
    if weeks <= WEEKS_SHOWN:
        counts = Counter((d - monday).days // 7 for d in days)
        rows = [(f"{monday + timedelta(weeks=w):%d/%m}", counts.get(w, 0)) for w in range(weeks)]
        title = owner.texts.text(lang, "desk.p_chart_weekly")
    else:
        months = Counter(date(d.year, d.month, 1) for d in days)
        rows = []
        month = date(first.year, first.month, 1)
        while month <= last:
            rows.append((f"{month:%m/%Y}", months.get(month, 0)))
            month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
        title = owner.texts.text(lang, "desk.p_chart_monthly")
    return {"chart": bar_chart(rows, title), "rows": rows, "title": title}


def _trail(
    owner: Desk,
    lang: str,
    events: list[ProblemEvent],
    who: Callable[[int | None], str],
    zone: str,
    linked: list[Report],
    actions: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    tickets = {r.id: r.ticket for r in linked}
    action_texts = {str(a["id"]): str(a["text"]) for a in actions}
    lines = []
    for e in events:
        note = e.note
        if e.kind == "stage" and e.to_stage:
            note = _stage(owner, lang, e.to_stage) + (f" — {e.note}" if e.note else "")
        elif e.kind in ("report_added", "report_removed"):
            note = tickets.get(e.report_id or 0) or owner.texts.text(lang, "desk.p_other_report")
        elif e.kind in ("action", "action_done"):
            note = action_texts.get(e.note or "", e.note)
        elif e.kind == "note" and e.note:
            note = owner.texts.text(lang, f"desk.p_note_{e.note}")
        elif e.kind == "merged" and e.note:
            word, _, number = e.note.partition(" ")
            note = owner.texts.text(lang, f"desk.p_merged_{word}", id=number)
        lines.append(
            {
                "time": format_time(e.created_at, zone),
                "kind": owner.texts.get(lang, f"desk.p_event_{e.kind}") or e.kind,
                "who": who(e.actor_id),
                "note": note,
                "via": e.via,
            }
        )
    return lines

"""The problem pages' rules (the desk, bot/web/desk/problems.py), channel-free.

What the chat does with a tap (``handlers.problems``), the desk does with a form, and a few
things only the desk does: name a problem (title, pillar), make one by hand with tickets, add or
remove a report by ticket, merge two problems, write the analysis notes (victim, offender,
place, cause) and the response's actions (an owner, a due date; the owner is reminded in chat).
Every function checks the person's role and area first (``handlers.problems.scope``: their area
and the areas below it), marks the trail ``via = "dasbor"``, and answers a ``Verdict`` with the
text to show in the person's language; outbox rows (news to reporters) are the caller's to
commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TypeGuard

from sqlalchemy.ext.asyncio import AsyncSession

from handlers import problems as chat
from handlers.actions import NOTE_LIMIT, Verdict
from handlers.config import PILLARS
from handlers.context import Context
from handlers.permissions import area_chain_ids, is_supervisor
from storage import problems as store
from storage import reports
from storage.models import Contact, Problem, ProblemAction, ProblemSuggestion, Report
from storage.types import NoteKind, ProblemStage

VIA = "dasbor"
TITLE_MAX = 160  # problems.title
WRITTEN_MAX = 1000  # an analysis note or an action
MAX_TICKETS = 50  # tickets added at once when a problem is made by hand
# The same problem, note or action sent again by the same person this soon is the same form
# sent twice (a double click, a reload after POST): it is made once.
AGAIN_WINDOW = timedelta(minutes=2)


def _is_id(value: int | None) -> TypeGuard[int]:
    """Whether the number can be a row's id (a forged one beyond INTEGER is none, not an error)."""
    return value is not None and 0 < value <= chat.MAX_ID


def _t(ctx: Context, lang: str, key: str, /, **params: object) -> str:
    return ctx.config.catalog.text(lang, key, **params)


def _refused(ctx: Context, lang: str, key: str, /, **params: object) -> Verdict:
    return Verdict(False, _t(ctx, lang, key, **params))


def _clean(text: str | None) -> str:
    """What was typed, trimmed, without NUL characters (PostgreSQL refuses them in text)."""
    return (text or "").replace("\x00", "").strip()


def _text(ctx: Context, lang: str, text: str | None, limit: int) -> str | Verdict:
    """The text typed, trimmed; or why it cannot be taken (empty, too long)."""
    cleaned = _clean(text)
    if not cleaned:
        return Verdict(False, needs_note=True)
    if len(cleaned) > limit:
        return _refused(ctx, lang, "staff.note_too_long", limit=limit, length=len(cleaned))
    return cleaned


async def problem_in_scope(
    session: AsyncSession, actor: Contact | None, problem_id: int
) -> Problem | None:
    """The problem, when the person may see it (staff of its area or an area above)."""
    if not _is_id(problem_id):
        return None
    problem = await store.get(session, problem_id)
    if problem is None or problem.area_id not in await chat.scope(session, actor):
        return None
    return problem


def tickets_of(text: str | None, limit: int = MAX_TICKETS) -> list[str] | None:
    """'KTN-ABC234, ktn def567, 7QX4PA' -> the tickets (each once, at most ``limit`` + 1: more
    than ``limit`` is refused by the caller); None when one of them is no ticket."""
    words = (text or "").replace(",", " ").replace(";", " ").split()
    found: list[str] = []
    at = 0
    while at < len(words) and len(found) <= limit:
        word = words[at]
        if word.upper() == "KTN" and at + 1 < len(words):  # 'KTN 7QX4PA', as chat takes it
            word, at = f"KTN-{words[at + 1]}", at + 1
        at += 1
        ticket = reports.normalise_ticket(word)
        if ticket is None:
            return None
        if ticket not in found:
            found.append(ticket)
    return found


async def _reports_for(
    session: AsyncSession,
    ctx: Context,
    lang: str,
    areas: Sequence[int],
    problem_area: int,
    tickets: Sequence[str],
) -> list[Report] | Verdict:
    """The reports of these tickets, each of the person's areas and at or below the problem's
    area; or why not (the first ticket that is unknown or elsewhere, named)."""
    found: list[Report] = []
    for ticket in tickets:
        report = await reports.get_by_ticket(session, ticket)
        if (
            report is None
            or report.area_id not in areas
            or problem_area not in await area_chain_ids(session, report.area_id)
        ):
            return _refused(ctx, lang, "problem.ticket_elsewhere", ticket=ticket)
        held = await chat.held_elsewhere(session, report.id, areas)
        if held is not None:
            return _refused(ctx, lang, "problem.held", ticket=ticket, id=held.id)
        found.append(report)
    return found


async def create(
    session: AsyncSession,
    ctx: Context,
    actor: Contact,
    lang: str,
    *,
    area_id: int | None,
    pillar: str,
    title: str | None,
    tickets: str | None = None,
) -> tuple[Verdict, Problem | None]:
    """A problem made by hand: its area (one of the person's), pillar, title and any tickets."""
    areas = await chat.scope(session, actor)
    if area_id is None or area_id not in areas:
        return _refused(ctx, lang, "problem.choose_area"), None
    if pillar not in PILLARS:
        return _refused(ctx, lang, "problem.choose_pillar"), None
    named = _text(ctx, lang, title, TITLE_MAX)
    if isinstance(named, Verdict):
        return (named if named.text else _refused(ctx, lang, "problem.title_missing")), None
    wanted = tickets_of(tickets)
    if wanted is None:
        return _refused(ctx, lang, "problem.tickets_unreadable"), None
    if len(wanted) > MAX_TICKETS:
        return _refused(ctx, lang, "problem.too_many_tickets", limit=MAX_TICKETS), None
    since = ctx.now - AGAIN_WINDOW
    again = await store.made_again(
        session, created_by_id=actor.id, area_id=area_id, title=named, since=since
    )
    if again is not None:  # the form sent twice (a double click): the problem made the first time
        return Verdict(True, _t(ctx, lang, "problem.made_already", id=again.id)), again
    found = await _reports_for(session, ctx, lang, areas, area_id, wanted)
    if isinstance(found, Verdict):
        return found, None
    problem = await store.create(
        session,
        area_id=area_id,
        pillar=pillar,
        title=named,
        created_by_id=actor.id,
        now=ctx.now,
        report_ids=[r.id for r in found],
        via=VIA,
    )
    text = _t(ctx, lang, "problem.made", id=problem.id, title=problem.title, count=len(found))
    return Verdict(True, text), problem


async def rename(
    session: AsyncSession,
    ctx: Context,
    actor: Contact,
    lang: str,
    problem: Problem,
    *,
    title: str | None,
    pillar: str,
) -> Verdict:
    """Name the problem (its title and pillar), while it is open."""
    if problem.stage == ProblemStage.CLOSED.value:
        return _refused(ctx, lang, "problem.closed_already", id=problem.id)
    if pillar not in PILLARS:
        return _refused(ctx, lang, "problem.choose_pillar")
    named = _text(ctx, lang, title, TITLE_MAX)
    if isinstance(named, Verdict):
        return named if named.text else _refused(ctx, lang, "problem.title_missing")
    await store.rename(session, problem, named, pillar, actor_id=actor.id, now=ctx.now, via=VIA)
    return Verdict(True, _t(ctx, lang, "problem.renamed", id=problem.id, title=named))


async def add_reports(
    session: AsyncSession,
    ctx: Context,
    actor: Contact,
    lang: str,
    problem: Problem,
    tickets: str | None,
) -> Verdict:
    """Add reports by ticket (a report of another problem moves here, both trails say so)."""
    if problem.stage == ProblemStage.CLOSED.value:
        return _refused(ctx, lang, "problem.closed_already", id=problem.id)
    wanted = tickets_of(tickets)
    if not wanted:
        return _refused(ctx, lang, "problem.tickets_unreadable")
    if len(wanted) > MAX_TICKETS:
        return _refused(ctx, lang, "problem.too_many_tickets", limit=MAX_TICKETS)
    areas = await chat.scope(session, actor)
    found = await _reports_for(session, ctx, lang, areas, problem.area_id, wanted)
    if isinstance(found, Verdict):
        return found
    added = [
        r.ticket
        for r in found
        if await store.add_report(session, problem, r.id, actor_id=actor.id, now=ctx.now, via=VIA)
    ]
    if not added:
        return _refused(ctx, lang, "problem.already_all", id=problem.id)
    return Verdict(
        True, _t(ctx, lang, "problem.added_many", id=problem.id, tickets=", ".join(added))
    )


async def remove_report(
    session: AsyncSession,
    ctx: Context,
    actor: Contact,
    lang: str,
    problem: Problem,
    report_id: int | None,
) -> Verdict:
    """Take a report out of the problem (it stays as it is)."""
    if problem.stage == ProblemStage.CLOSED.value:
        return _refused(ctx, lang, "problem.closed_already", id=problem.id)
    report = await session.get(Report, report_id) if _is_id(report_id) else None
    if report is None or not await store.remove_report(
        session, problem, report.id, actor_id=actor.id, now=ctx.now, via=VIA
    ):
        return _refused(ctx, lang, "problem.not_linked")
    return Verdict(True, _t(ctx, lang, "problem.removed", ticket=report.ticket, id=problem.id))


async def merge(
    session: AsyncSession,
    ctx: Context,
    actor: Contact,
    lang: str,
    source: Problem,
    target_id: int | None,
) -> tuple[Verdict, Problem | None]:
    """Merge ``source`` into another open problem of the same area: its reports, notes and
    actions move there and ``source`` is closed. Returns the target when done."""
    target = await problem_in_scope(session, actor, target_id) if _is_id(target_id) else None
    if (
        target is None
        or target.id == source.id
        or target.area_id != source.area_id
        or target.stage == ProblemStage.CLOSED.value
    ):
        return _refused(ctx, lang, "problem.merge_choose"), None
    if source.stage == ProblemStage.CLOSED.value:
        return _refused(ctx, lang, "problem.closed_already", id=source.id), None
    try:
        moved = await store.merge(session, source, target, actor_id=actor.id, now=ctx.now, via=VIA)
    except store.ProblemClosed:
        return _refused(ctx, lang, "problem.moved_meanwhile"), None
    text = _t(ctx, lang, "problem.merged", source=source.id, target=target.id, count=moved)
    return Verdict(True, text), target


async def merge_targets(session: AsyncSession, problem: Problem) -> list[Problem]:
    """The open problems this one could be merged into (its area's, not itself)."""
    if problem.stage == ProblemStage.CLOSED.value:
        return []
    found = await store.in_areas(session, [problem.area_id])
    return [p for p in found if p.id != problem.id]


async def next_stage(
    session: AsyncSession,
    ctx: Context,
    actor: Contact,
    lang: str,
    problem: Problem,
    *,
    expected: str | None,
    note: str | None,
) -> Verdict:
    """Move to the next SARA stage (``expected``: the stage the page showed, so a second click
    or a page left open moves nothing twice). Closing asks for a closing note."""
    following = ProblemStage(problem.stage).next
    if following is None:
        return _refused(ctx, lang, "problem.closed_already", id=problem.id)
    if expected is not None and expected != problem.stage:
        return _refused(ctx, lang, "problem.moved_meanwhile")
    cleaned = _clean(note) or None
    if cleaned is not None and len(cleaned) > NOTE_LIMIT:
        return _refused(ctx, lang, "staff.note_too_long", limit=NOTE_LIMIT, length=len(cleaned))
    if following is ProblemStage.CLOSED and cleaned is None:
        return _refused(ctx, lang, "problem.closing_note_needed")
    moved, rows = await chat.move_stage(session, ctx, actor, problem, note=cleaned, via=VIA)
    if not moved:
        return _refused(ctx, lang, "problem.moved_meanwhile")
    stage = chat.stage_label(ctx, lang, problem.stage)
    return Verdict(True, _t(ctx, lang, "problem.moved", id=problem.id, stage=stage), rows=rows)


async def add_note(
    session: AsyncSession,
    ctx: Context,
    actor: Contact,
    lang: str,
    problem: Problem,
    *,
    kind: str,
    text: str | None,
) -> Verdict:
    """An analysis note: on the victims, the offenders, the place, or a cause."""
    if problem.stage == ProblemStage.CLOSED.value:
        return _refused(ctx, lang, "problem.closed_already", id=problem.id)
    try:
        which = NoteKind(kind)
    except ValueError:
        return _refused(ctx, lang, "problem.choose_note_kind")
    written = _text(ctx, lang, text, WRITTEN_MAX)
    if isinstance(written, Verdict):
        return written if written.text else _refused(ctx, lang, "problem.text_missing")
    since = ctx.now - AGAIN_WINDOW
    if not await store.note_again(session, problem, which, written, actor.id, since):
        await store.add_note(
            session, problem, which, written, author_id=actor.id, now=ctx.now, via=VIA
        )
    return Verdict(True, _t(ctx, lang, "problem.note_added", id=problem.id))


async def add_action(
    session: AsyncSession,
    ctx: Context,
    actor: Contact,
    lang: str,
    problem: Problem,
    *,
    text: str | None,
    owner_id: int | None,
    due_at: datetime | None,
) -> Verdict:
    """A response action with its owner (staff of the problem's area or above) and due time,
    in the future; the owner is reminded ``[problems] remind_hours_before`` before it."""
    if problem.stage == ProblemStage.CLOSED.value:
        return _refused(ctx, lang, "problem.closed_already", id=problem.id)
    written = _text(ctx, lang, text, WRITTEN_MAX)
    if isinstance(written, Verdict):
        return written if written.text else _refused(ctx, lang, "problem.text_missing")
    allowed = {c.id: c for c in await chat.owners(session, problem)}
    owner = allowed.get(owner_id) if owner_id is not None else None
    if owner is None:
        return _refused(ctx, lang, "problem.choose_owner")
    if due_at is None:
        return _refused(ctx, lang, "problem.due_missing")
    if due_at <= ctx.now:
        return _refused(ctx, lang, "problem.due_past")
    if due_at > ctx.now + timedelta(days=366):
        return _refused(ctx, lang, "problem.due_far")
    again = await store.action_again(
        session,
        problem,
        written,
        owner_id=owner.id,
        due_at=due_at,
        created_by_id=actor.id,
        since=ctx.now - AGAIN_WINDOW,
    )
    if not again:  # else the form was sent twice: the action is there once
        await chat.add_action(
            session, ctx, actor, problem, written, owner=owner, due_at=due_at, via=VIA
        )
    name = owner.display_name or _t(ctx, lang, "staff.unnamed")
    return Verdict(True, _t(ctx, lang, "problem.action_added", id=problem.id, owner=name))


async def mark_done(
    session: AsyncSession,
    ctx: Context,
    actor: Contact,
    lang: str,
    problem: Problem,
    action_id: int | None,
) -> Verdict:
    """Mark an action of this problem done: its owner, or a coordinator of the area."""
    if problem.stage == ProblemStage.CLOSED.value:
        return _refused(ctx, lang, "problem.closed_already", id=problem.id)
    action = await store.get_action(session, action_id) if _is_id(action_id) else None
    if action is None or action.problem_id != problem.id:
        return _refused(ctx, lang, "problem.gone")
    if action.owner_id != actor.id and not is_supervisor(actor):
        return _refused(ctx, lang, "problem.not_owner")
    if not await store.mark_done(session, action, actor_id=actor.id, now=ctx.now, via=VIA):
        return _refused(ctx, lang, "problem.done_already")
    return Verdict(True, _t(ctx, lang, "problem.done", text=action.text, id=problem.id))


async def decide(
    session: AsyncSession,
    ctx: Context,
    actor: Contact,
    lang: str,
    suggestion_id: int | None,
    *,
    accept: bool,
    stamp: int | None = None,
) -> tuple[Verdict, Problem | None]:
    """Terima / Abaikan on the desk: the chat's ``decide`` (``stamp``: the set of reports the
    page showed). Returns the problem made when accepted."""
    decided = await chat.decide(
        session, ctx, actor, lang, suggestion_id, accept=accept, stamp=stamp, via=VIA
    )
    return Verdict(decided.done, decided.text), decided.problem


async def suggestions(
    session: AsyncSession, ctx: Context, actor: Contact
) -> list[ProblemSuggestion]:
    """The suggestions waiting in the person's areas, looked for afresh (as /masalah does)."""
    areas = await chat.scope(session, actor)
    return await chat.waiting_suggestions(session, ctx, areas) if areas else []


def may_mark_done(actor: Contact, action: ProblemAction) -> bool:
    """Whether the page offers "Selesai" for this action to this person."""
    return action.done_at is None and (action.owner_id == actor.id or is_supervisor(actor))

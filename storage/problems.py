"""Problems (SARA, issue 20): repository functions for problems, their reports, analysis notes,
response actions, trail, suggestions and the before/after assessment.

Every change that two people (or two workers) could make at once is a conditional UPDATE: the
stage moves only from the stage that was read, an action is done once, a reminder is claimed
once, a suggestion is decided once. Each change adds a ``problem_events`` row; the caller
commits. The chat (``handlers.problems``) and the desk call these with the person's role and area
already checked.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from storage.areas import descendant_ids
from storage.models import (
    Contact,
    Problem,
    ProblemAction,
    ProblemEvent,
    ProblemNote,
    ProblemReport,
    ProblemSuggestion,
    Report,
)
from storage.types import NoteKind, ProblemStage, ReportStatus, SuggestionState

# Reports that never count for suggestions or the assessment: merged copies and rejected ones.
NOT_COUNTED = (ReportStatus.DUPLICATE.value, ReportStatus.REJECTED.value)


class StageOrderError(ValueError):
    """A stage move that skips a stage, goes back, or leaves a closed problem."""


class ProblemClosed(ValueError):
    """A change to a problem that is closed (or merged away)."""


def _rowcount(result: object) -> int:
    return int(getattr(result, "rowcount", 0))


def add_event(
    session: AsyncSession,
    problem_id: int,
    kind: str,
    now: datetime,
    *,
    actor_id: int | None = None,
    from_stage: str | None = None,
    to_stage: str | None = None,
    report_id: int | None = None,
    note: str | None = None,
    via: str | None = None,
) -> ProblemEvent:
    """One line of the problem's trail (kinds: created, renamed, stage, report_added,
    report_removed, merged, note, action, action_done)."""
    event = ProblemEvent(
        problem_id=problem_id,
        kind=kind,
        from_stage=from_stage,
        to_stage=to_stage,
        actor_id=actor_id,
        report_id=report_id,
        note=note,
        via=via,
        created_at=now,
    )
    session.add(event)
    return event


Row = TypeVar("Row", ProblemEvent, ProblemNote, ProblemAction)


async def _rows_of(
    session: AsyncSession, model: type[Row], problem_id: int, first: InstrumentedAttribute[Any]
) -> list[Row]:
    """A problem's trail, notes or actions, ordered by ``first`` then id."""
    stmt = select(model).where(model.problem_id == problem_id).order_by(first, model.id)
    return list((await session.scalars(stmt)).all())


def _require_open(problem: Problem) -> None:
    if problem.stage == ProblemStage.CLOSED.value:
        raise ProblemClosed(f"problem {problem.id} is closed")


# --- problems ---------------------------------------------------------------------------------


async def create(
    session: AsyncSession,
    *,
    area_id: int,
    pillar: str,
    title: str,
    created_by_id: int | None,
    now: datetime,
    report_ids: Iterable[int] = (),
    via: str | None = None,
) -> Problem:
    """A new problem in scanning, with these reports linked (moved from any other problem)."""
    problem = Problem(
        area_id=area_id,
        pillar=pillar,
        title=title.strip()[:160],
        stage=ProblemStage.SCANNING.value,
        created_by_id=created_by_id,
        created_at=now,
        updated_at=now,
    )
    session.add(problem)
    await session.flush()
    add_event(
        session,
        problem.id,
        "created",
        now,
        actor_id=created_by_id,
        to_stage=problem.stage,
        via=via,
    )
    for report_id in report_ids:
        await add_report(session, problem, report_id, actor_id=created_by_id, now=now, via=via)
    return problem


async def get(session: AsyncSession, problem_id: int) -> Problem | None:
    return await session.get(Problem, problem_id)


async def in_areas(
    session: AsyncSession,
    area_ids: Collection[int],
    *,
    open_only: bool = True,
    closed_only: bool = False,
    limit: int = 200,
) -> list[Problem]:
    """The problems of these areas, newest first (open ones only unless told; ``closed_only``:
    the closed ones)."""
    stmt = select(Problem).where(Problem.area_id.in_(list(area_ids)))
    if closed_only:
        stmt = stmt.where(Problem.stage == ProblemStage.CLOSED.value)
    elif open_only:
        stmt = stmt.where(Problem.stage != ProblemStage.CLOSED.value)
    stmt = stmt.order_by(Problem.created_at.desc(), Problem.id.desc()).limit(limit)
    return list((await session.scalars(stmt)).all())


async def counts_in_areas(
    session: AsyncSession, area_ids: Collection[int], *, now: datetime, since: datetime
) -> tuple[int, int, int]:
    """(open problems, their actions overdue at ``now``, suggestions waiting that were made or
    changed since ``since``) of these areas, counted by the database (the recap's line)."""
    areas = list(area_ids)
    open_problem = and_(Problem.area_id.in_(areas), Problem.stage != ProblemStage.CLOSED.value)
    problems = await session.scalar(select(func.count()).select_from(Problem).where(open_problem))
    overdue = await session.scalar(
        select(func.count())
        .select_from(ProblemAction)
        .join(Problem, Problem.id == ProblemAction.problem_id)
        .where(open_problem, ProblemAction.done_at.is_(None), ProblemAction.due_at < now)
    )
    waiting = await session.scalar(
        select(func.count())
        .select_from(ProblemSuggestion)
        .where(
            ProblemSuggestion.area_id.in_(areas),
            ProblemSuggestion.state == SuggestionState.PROPOSED.value,
            ProblemSuggestion.created_at >= since,
        )
    )
    return int(problems or 0), int(overdue or 0), int(waiting or 0)


async def report_counts(session: AsyncSession, problem_ids: Collection[int]) -> dict[int, int]:
    """How many reports each problem has."""
    if not problem_ids:
        return {}
    rows = await session.execute(
        select(ProblemReport.problem_id, func.count())
        .where(ProblemReport.problem_id.in_(list(problem_ids)))
        .group_by(ProblemReport.problem_id)
    )
    return {pid: int(n) for pid, n in rows.all()}


async def problem_of_report(session: AsyncSession, report_id: int) -> Problem | None:
    """The problem a report is linked to (a report has at most one)."""
    stmt = (
        select(Problem)
        .join(ProblemReport, ProblemReport.problem_id == Problem.id)
        .where(ProblemReport.report_id == report_id)
    )
    return (await session.scalars(stmt)).first()


async def report_ids_of(session: AsyncSession, problem_id: int) -> list[int]:
    stmt = (
        select(ProblemReport.report_id)
        .where(ProblemReport.problem_id == problem_id)
        .order_by(ProblemReport.report_id)
    )
    return list((await session.scalars(stmt)).all())


async def reports_of(session: AsyncSession, problem_id: int) -> list[Report]:
    """The problem's reports, oldest first (the scanning view: count over time, places)."""
    stmt = (
        select(Report)
        .join(ProblemReport, ProblemReport.report_id == Report.id)
        .where(ProblemReport.problem_id == problem_id)
        .order_by(Report.created_at, Report.id)
    )
    return list((await session.scalars(stmt)).all())


async def links_in_areas(
    session: AsyncSession, area_ids: Collection[int]
) -> list[tuple[int, int, str]]:
    """(problem id, report id, ticket) of every link of these areas' problems (the export)."""
    stmt = (
        select(ProblemReport.problem_id, ProblemReport.report_id, Report.ticket)
        .join(Problem, Problem.id == ProblemReport.problem_id)
        .join(Report, Report.id == ProblemReport.report_id)
        .where(Problem.area_id.in_(list(area_ids)))
        .order_by(ProblemReport.problem_id, ProblemReport.report_id)
    )
    return [(p, r, t) for p, r, t in (await session.execute(stmt)).all()]


async def _touch(session: AsyncSession, problem: Problem, now: datetime) -> None:
    await session.execute(
        update(Problem)
        .where(Problem.id == problem.id)
        .values(updated_at=now)
        .execution_options(synchronize_session=False)
    )


async def add_report(
    session: AsyncSession,
    problem: Problem,
    report_id: int,
    *,
    actor_id: int | None,
    now: datetime,
    via: str | None = None,
) -> bool:
    """Link a report to the problem; a report linked to another problem moves here (both
    trails say so). False when it was already linked here."""
    _require_open(problem)
    current = await session.get(ProblemReport, report_id)
    if current is not None:
        if current.problem_id == problem.id:
            return False
        add_event(
            session,
            current.problem_id,
            "report_removed",
            now,
            actor_id=actor_id,
            report_id=report_id,
            note=f"moved to {problem.id}",
            via=via,
        )
        current.problem_id = problem.id
        current.added_by_id = actor_id
        current.added_at = now
    else:
        session.add(
            ProblemReport(
                report_id=report_id, problem_id=problem.id, added_by_id=actor_id, added_at=now
            )
        )
    add_event(
        session, problem.id, "report_added", now, actor_id=actor_id, report_id=report_id, via=via
    )
    await session.flush()
    await _touch(session, problem, now)
    return True


async def remove_report(
    session: AsyncSession,
    problem: Problem,
    report_id: int,
    *,
    actor_id: int | None,
    now: datetime,
    via: str | None = None,
) -> bool:
    """Unlink a report; False when it was not linked to this problem."""
    _require_open(problem)
    result = await session.execute(
        delete(ProblemReport).where(
            ProblemReport.report_id == report_id, ProblemReport.problem_id == problem.id
        )
    )
    if _rowcount(result) != 1:
        return False
    add_event(
        session, problem.id, "report_removed", now, actor_id=actor_id, report_id=report_id, via=via
    )
    await _touch(session, problem, now)
    return True


async def merge(
    session: AsyncSession,
    source: Problem,
    target: Problem,
    *,
    actor_id: int | None,
    now: datetime,
    via: str | None = None,
) -> int:
    """Merge ``source`` into ``target`` (same area, both open): its reports, notes and actions
    move to ``target``; ``source`` is closed with ``merged_into_id``. Returns the number of
    reports moved. Raises ``ValueError`` for a problem merged into itself or another area's."""
    if source.id == target.id:
        raise ValueError("a problem cannot be merged into itself")
    if source.area_id != target.area_id:
        raise ValueError("problems of different areas cannot be merged")
    _require_open(source)
    _require_open(target)
    closed = await session.execute(
        update(Problem)
        .where(Problem.id == source.id, Problem.stage == source.stage)
        .values(
            stage=ProblemStage.CLOSED.value,
            closed_at=now,
            updated_at=now,
            merged_into_id=target.id,
            closing_note=f"merged into {target.id}",
        )
        .execution_options(synchronize_session=False)
    )
    if _rowcount(closed) != 1:
        raise ProblemClosed(f"problem {source.id} changed meanwhile")
    moved = await session.execute(
        update(ProblemReport)
        .where(ProblemReport.problem_id == source.id)
        .values(problem_id=target.id)
        .execution_options(synchronize_session=False)
    )
    for model in (ProblemNote, ProblemAction):
        await session.execute(
            update(model)
            .where(model.problem_id == source.id)
            .values(problem_id=target.id)
            .execution_options(synchronize_session=False)
        )
    add_event(
        session,
        source.id,
        "merged",
        now,
        actor_id=actor_id,
        from_stage=source.stage,
        to_stage=ProblemStage.CLOSED.value,
        note=f"into {target.id}",
        via=via,
    )
    add_event(
        session, target.id, "merged", now, actor_id=actor_id, note=f"from {source.id}", via=via
    )
    await _touch(session, target, now)
    await session.flush()
    await session.refresh(source)
    await session.refresh(target)
    return _rowcount(moved)


async def move_stage(
    session: AsyncSession,
    problem: Problem,
    to: ProblemStage,
    *,
    actor_id: int | None,
    now: datetime,
    note: str | None = None,
    via: str | None = None,
) -> bool:
    """Move the problem to the next SARA stage, recording the event.

    Only the next stage is allowed (``StageOrderError`` otherwise: no skipping, no going back,
    nothing after closed). Entering the response sets ``response_started_at``; closing sets
    ``closed_at`` and keeps ``note`` as the closing note. False when someone moved it meanwhile
    (a conditional UPDATE on the stage that was read); the object is refreshed either way.
    """
    current = ProblemStage(problem.stage)
    if current.next is not to:
        raise StageOrderError(f"{current} cannot move to {to}")
    values: dict[str, object] = {"stage": to.value, "updated_at": now}
    if to is ProblemStage.RESPONSE:
        values["response_started_at"] = now
    elif to is ProblemStage.CLOSED:
        values.update(closed_at=now, closing_note=note)
    result = await session.execute(
        update(Problem)
        .where(Problem.id == problem.id, Problem.stage == current.value)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    await session.refresh(problem)
    if _rowcount(result) != 1:
        return False
    add_event(
        session,
        problem.id,
        "stage",
        now,
        actor_id=actor_id,
        from_stage=current.value,
        to_stage=to.value,
        note=note,
        via=via,
    )
    return True


async def rename(
    session: AsyncSession,
    problem: Problem,
    title: str,
    pillar: str,
    *,
    actor_id: int | None,
    now: datetime,
    via: str | None = None,
) -> None:
    """Give the problem its title and pillar (the trail keeps the old title)."""
    _require_open(problem)
    old = problem.title
    problem.title = title.strip()[:160]
    problem.pillar = pillar
    problem.updated_at = now
    add_event(session, problem.id, "renamed", now, actor_id=actor_id, note=old, via=via)
    await session.flush()


async def events_of(session: AsyncSession, problem_id: int) -> list[ProblemEvent]:
    return await _rows_of(session, ProblemEvent, problem_id, ProblemEvent.created_at)


async def made_again(
    session: AsyncSession, *, created_by_id: int, area_id: int, title: str, since: datetime
) -> Problem | None:
    """A problem of this title and area the person made since then (a form sent twice)."""
    stmt = (
        select(Problem)
        .where(
            Problem.created_by_id == created_by_id,
            Problem.area_id == area_id,
            Problem.title == title.strip()[:160],
            Problem.created_at >= since,
        )
        .order_by(Problem.id.desc())
    )
    return (await session.scalars(stmt)).first()


# --- analysis notes ---------------------------------------------------------------------------


async def add_note(
    session: AsyncSession,
    problem: Problem,
    kind: NoteKind,
    text: str,
    *,
    author_id: int | None,
    now: datetime,
    via: str | None = None,
) -> ProblemNote:
    """An analysis note (victim, offender, place or cause)."""
    _require_open(problem)
    note = ProblemNote(
        problem_id=problem.id,
        kind=kind.value,
        text=text.strip(),
        author_id=author_id,
        created_at=now,
    )
    session.add(note)
    add_event(session, problem.id, "note", now, actor_id=author_id, note=kind.value, via=via)
    await session.flush()
    await _touch(session, problem, now)
    return note


async def note_again(
    session: AsyncSession,
    problem: Problem,
    kind: NoteKind,
    text: str,
    author_id: int,
    since: datetime,
) -> bool:
    """Whether the person wrote this very note on the problem since then (a form sent twice)."""
    found = await session.scalar(
        select(ProblemNote.id).where(
            ProblemNote.problem_id == problem.id,
            ProblemNote.author_id == author_id,
            ProblemNote.kind == kind.value,
            ProblemNote.text == text.strip(),
            ProblemNote.created_at >= since,
        )
    )
    return found is not None


async def notes_of(session: AsyncSession, problem_id: int) -> list[ProblemNote]:
    return await _rows_of(session, ProblemNote, problem_id, ProblemNote.created_at)


# --- response actions -------------------------------------------------------------------------


async def add_action(
    session: AsyncSession,
    problem: Problem,
    text: str,
    *,
    owner_id: int | None,
    due_at: datetime,
    remind_at: datetime,
    created_by_id: int | None,
    now: datetime,
    via: str | None = None,
) -> ProblemAction:
    """A response action; its owner is reminded at ``remind_at`` (at most ``due_at``)."""
    _require_open(problem)
    action = ProblemAction(
        problem_id=problem.id,
        text=text.strip(),
        owner_id=owner_id,
        due_at=due_at,
        remind_at=min(remind_at, due_at),
        created_by_id=created_by_id,
        created_at=now,
    )
    session.add(action)
    await session.flush()
    add_event(
        session, problem.id, "action", now, actor_id=created_by_id, note=str(action.id), via=via
    )
    await _touch(session, problem, now)
    return action


async def action_again(
    session: AsyncSession,
    problem: Problem,
    text: str,
    *,
    owner_id: int,
    due_at: datetime,
    created_by_id: int,
    since: datetime,
) -> bool:
    """Whether the person added this very action (text, owner, due time) since then."""
    found = await session.scalar(
        select(ProblemAction.id).where(
            ProblemAction.problem_id == problem.id,
            ProblemAction.created_by_id == created_by_id,
            ProblemAction.owner_id == owner_id,
            ProblemAction.due_at == due_at,
            ProblemAction.text == text.strip(),
            ProblemAction.created_at >= since,
        )
    )
    return found is not None


async def get_action(session: AsyncSession, action_id: int) -> ProblemAction | None:
    return await session.get(ProblemAction, action_id)


async def actions_of(session: AsyncSession, problem_id: int) -> list[ProblemAction]:
    return await _rows_of(session, ProblemAction, problem_id, ProblemAction.due_at)


async def mark_done(
    session: AsyncSession,
    action: ProblemAction,
    *,
    actor_id: int | None,
    now: datetime,
    via: str | None = None,
) -> bool:
    """Mark the action done, once: False when it already was (the object is refreshed)."""
    result = await session.execute(
        update(ProblemAction)
        .where(ProblemAction.id == action.id, ProblemAction.done_at.is_(None))
        .values(done_at=now, done_by_id=actor_id)
        .execution_options(synchronize_session=False)
    )
    await session.refresh(action)
    if _rowcount(result) != 1:
        return False
    add_event(
        session,
        action.problem_id,
        "action_done",
        now,
        actor_id=actor_id,
        note=str(action.id),
        via=via,
    )
    return True


async def open_actions_of_owner(
    session: AsyncSession, owner_id: int, limit: int = 20
) -> list[ProblemAction]:
    """The owner's actions not done yet, of open problems, soonest due first."""
    stmt = (
        select(ProblemAction)
        .join(Problem, Problem.id == ProblemAction.problem_id)
        .where(
            ProblemAction.owner_id == owner_id,
            ProblemAction.done_at.is_(None),
            Problem.stage != ProblemStage.CLOSED.value,
        )
        .order_by(ProblemAction.due_at, ProblemAction.id)
        .limit(limit)
    )
    return list((await session.scalars(stmt)).all())


async def open_actions_in_areas(
    session: AsyncSession, area_ids: Collection[int], *, due_before: datetime | None = None
) -> list[tuple[ProblemAction, Problem]]:
    """Actions not done of these areas' open problems (only those due before a time if given:
    ``due_before=now`` lists the overdue ones), soonest due first."""
    stmt = (
        select(ProblemAction, Problem)
        .join(Problem, Problem.id == ProblemAction.problem_id)
        .where(
            Problem.area_id.in_(list(area_ids)),
            Problem.stage != ProblemStage.CLOSED.value,
            ProblemAction.done_at.is_(None),
        )
        .order_by(ProblemAction.due_at, ProblemAction.id)
    )
    if due_before is not None:
        stmt = stmt.where(ProblemAction.due_at < due_before)
    return [(a, p) for a, p in (await session.execute(stmt)).all()]


async def due_reminders(session: AsyncSession, now: datetime, limit: int) -> list[ProblemAction]:
    """Actions whose reminder is due and not yet sent (not done, of an open problem, with an
    owner), oldest first."""
    stmt = (
        select(ProblemAction)
        .join(Problem, Problem.id == ProblemAction.problem_id)
        .where(
            ProblemAction.done_at.is_(None),
            ProblemAction.reminded_at.is_(None),
            ProblemAction.remind_at <= now,
            ProblemAction.owner_id.is_not(None),
            Problem.stage != ProblemStage.CLOSED.value,
        )
        .order_by(ProblemAction.remind_at, ProblemAction.id)
        .limit(limit)
    )
    return list((await session.scalars(stmt)).all())


async def claim_reminder(session: AsyncSession, action_id: int, now: datetime) -> bool:
    """Take the action's reminder: True for exactly one caller (a conditional UPDATE in the
    transaction that queues the outbox row; a second worker or a rerun gets False)."""
    result = await session.execute(
        update(ProblemAction)
        .where(ProblemAction.id == action_id, ProblemAction.reminded_at.is_(None))
        .values(reminded_at=now)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result) == 1


# --- suggestions ------------------------------------------------------------------------------


def fingerprint(report_ids: Iterable[int]) -> str:
    """The SHA-256 of the sorted report ids: the identity of a set of reports."""
    joined = ",".join(str(i) for i in sorted(set(report_ids)))
    return hashlib.sha256(joined.encode()).hexdigest()


def stamp(fingerprint: str) -> int:
    """A short number for a set of reports (its fingerprint's first 28 bits): what a button or a
    form carries to say which set was shown (a chat button's data is at most 64 bytes)."""
    return int(fingerprint[:7], 16)


async def _clusters(
    session: AsyncSession,
    *,
    since: datetime,
    min_reports: int,
    area_ids: Collection[int] | None,
) -> dict[tuple[int, str], list[int]]:
    """Unlinked, counted reports since ``since`` grouped by (area, category) with at least
    ``min_reports`` in the group."""
    linked = select(ProblemReport.report_id)
    base = and_(
        Report.created_at >= since,
        Report.status.not_in(NOT_COUNTED),
        Report.id.not_in(linked),
    )
    if area_ids is not None:
        base = and_(base, Report.area_id.in_(list(area_ids)))
    groups = (
        select(Report.area_id, Report.category)
        .where(base)
        .group_by(Report.area_id, Report.category)
        .having(func.count() >= min_reports)
    )
    keys = [(a, c) for a, c in (await session.execute(groups)).all()]
    if not keys:
        return {}
    rows = await session.execute(
        select(Report.area_id, Report.category, Report.id)
        .where(base, Report.area_id.in_({a for a, _ in keys}))
        .order_by(Report.id)
    )
    wanted = set(keys)
    clusters: dict[tuple[int, str], list[int]] = {}
    for area_id, category, report_id in rows.all():
        if (area_id, category) in wanted:
            clusters.setdefault((area_id, category), []).append(report_id)
    return clusters


async def compute_suggestions(
    session: AsyncSession,
    *,
    min_reports: int,
    days: int,
    now: datetime,
    area_ids: Collection[int] | None = None,
) -> list[ProblemSuggestion]:
    """Propose problems: at least ``min_reports`` reports of one category in one area (the
    report's own area: an RW when it was filed there) within ``days`` days, none linked to a
    problem, none rejected or merged as duplicates.

    A set of reports already proposed (whatever was decided) is skipped: a dismissed set is never
    proposed again. A new set (a report more, one aged out) replaces the reports of the
    suggestion still waiting for that area and category, or becomes a new suggestion. Returns the
    suggestions made or changed."""
    clusters = await _clusters(
        session, since=now - timedelta(days=days), min_reports=min_reports, area_ids=area_ids
    )
    changed: list[ProblemSuggestion] = []
    for (area_id, category), ids in sorted(clusters.items()):
        mark = fingerprint(ids)
        seen = await session.scalar(
            select(ProblemSuggestion.id).where(
                ProblemSuggestion.area_id == area_id,
                ProblemSuggestion.category == category,
                ProblemSuggestion.fingerprint == mark,
            )
        )
        if seen is not None:
            continue
        waiting = (
            await session.scalars(
                select(ProblemSuggestion).where(
                    ProblemSuggestion.area_id == area_id,
                    ProblemSuggestion.category == category,
                    ProblemSuggestion.state == SuggestionState.PROPOSED.value,
                )
            )
        ).first()
        if waiting is not None:
            waiting.fingerprint = mark
            waiting.report_ids = ids
            waiting.created_at = now
            changed.append(waiting)
        else:
            row = ProblemSuggestion(
                area_id=area_id,
                category=category,
                fingerprint=mark,
                report_ids=ids,
                state=SuggestionState.PROPOSED.value,
                created_at=now,
            )
            session.add(row)
            changed.append(row)
        await session.flush()
    return changed


async def get_suggestion(session: AsyncSession, suggestion_id: int) -> ProblemSuggestion | None:
    return await session.get(ProblemSuggestion, suggestion_id)


async def suggestions_in_areas(
    session: AsyncSession,
    area_ids: Collection[int],
    *,
    state: SuggestionState = SuggestionState.PROPOSED,
    since: datetime | None = None,
) -> list[ProblemSuggestion]:
    """These areas' suggestions in a state (proposed by default), newest first; ``since``: only
    those made or changed since then (the recap's "new")."""
    stmt = select(ProblemSuggestion).where(
        ProblemSuggestion.area_id.in_(list(area_ids)), ProblemSuggestion.state == state.value
    )
    if since is not None:
        stmt = stmt.where(ProblemSuggestion.created_at >= since)
    stmt = stmt.order_by(ProblemSuggestion.created_at.desc(), ProblemSuggestion.id.desc())
    return list((await session.scalars(stmt)).all())


async def _decide(
    session: AsyncSession,
    suggestion: ProblemSuggestion,
    state: SuggestionState,
    *,
    actor_id: int | None,
    now: datetime,
) -> bool:
    result = await session.execute(
        update(ProblemSuggestion)
        .where(
            ProblemSuggestion.id == suggestion.id,
            ProblemSuggestion.state == SuggestionState.PROPOSED.value,
            ProblemSuggestion.fingerprint == suggestion.fingerprint,
        )
        .values(state=state.value, decided_at=now, decided_by_id=actor_id)
        .execution_options(synchronize_session=False)
    )
    await session.refresh(suggestion)
    return _rowcount(result) == 1


async def dismiss_suggestion(
    session: AsyncSession, suggestion: ProblemSuggestion, *, actor_id: int | None, now: datetime
) -> bool:
    """Dismiss it: this set of reports is never proposed again. False if decided already."""
    return await _decide(session, suggestion, SuggestionState.DISMISSED, actor_id=actor_id, now=now)


async def accept_suggestion(
    session: AsyncSession,
    suggestion: ProblemSuggestion,
    *,
    pillar: str,
    title: str,
    actor_id: int | None,
    now: datetime,
    via: str | None = None,
) -> Problem | None:
    """Accept it (one tap): a problem of the suggestion's area with its reports (those linked to
    a problem meanwhile stay where they are). None if it was decided (or its set of reports
    changed) since it was read: nothing is made."""
    if not await _decide(session, suggestion, SuggestionState.ACCEPTED, actor_id=actor_id, now=now):
        return None
    linked = set(
        (
            await session.scalars(
                select(ProblemReport.report_id).where(
                    ProblemReport.report_id.in_(list(suggestion.report_ids))
                )
            )
        ).all()
    )
    problem = await create(
        session,
        area_id=suggestion.area_id,
        pillar=pillar,
        title=title,
        created_by_id=actor_id,
        now=now,
        report_ids=[i for i in suggestion.report_ids if i not in linked],
        via=via,
    )
    suggestion.problem_id = problem.id
    await session.flush()
    return problem


# --- news for reporters -----------------------------------------------------------------------


async def reporters_of(session: AsyncSession, problem_id: int) -> list[Contact]:
    """The reporters of the problem's reports (each once) who can still be written to."""
    stmt = (
        select(Contact)
        .join(Report, Report.reporter_id == Contact.id)
        .join(ProblemReport, ProblemReport.report_id == Report.id)
        .where(
            ProblemReport.problem_id == problem_id,
            Contact.erased_at.is_(None),
            Contact.opted_out_at.is_(None),
            Contact.blocked_at.is_(None),
        )
        .distinct()
        .order_by(Contact.id)
    )
    return list((await session.scalars(stmt)).all())


# --- assessment -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Assessment:
    """Reports of the problem's categories in its area (and the areas below) in two equal
    periods: ``before`` in [start - length, start), ``after`` in [start, end)."""

    start: datetime  # when the response began
    end: datetime  # when it was closed, or now
    categories: tuple[str, ...]
    before: int
    after: int

    @property
    def length(self) -> timedelta:
        return self.end - self.start

    @property
    def change(self) -> float | None:
        """The relative change (-0.5: half as many after); None when there were none before."""
        return None if self.before == 0 else (self.after - self.before) / self.before


async def _count(
    session: AsyncSession,
    area_ids: Sequence[int],
    categories: Sequence[str],
    since: datetime,
    until: datetime,
) -> int:
    stmt = select(func.count()).where(
        Report.area_id.in_(list(area_ids)),
        Report.category.in_(list(categories)),
        Report.status.not_in(NOT_COUNTED),
        Report.created_at >= since,
        Report.created_at < until,
    )
    return int(await session.scalar(stmt) or 0)


async def assessment(session: AsyncSession, problem: Problem, now: datetime) -> Assessment | None:
    """The before/after numbers; None until the response has begun."""
    start = problem.response_started_at
    if start is None:
        return None
    end = problem.closed_at or now
    if end < start:
        end = start
    categories = tuple(
        sorted(
            (
                await session.scalars(
                    select(Report.category)
                    .join(ProblemReport, ProblemReport.report_id == Report.id)
                    .where(ProblemReport.problem_id == problem.id)
                    .distinct()
                )
            ).all()
        )
    )
    if not categories:
        return Assessment(start=start, end=end, categories=(), before=0, after=0)
    areas = await descendant_ids(session, problem.area_id)
    length = end - start
    before = await _count(session, areas, categories, start - length, start)
    after = await _count(session, areas, categories, start, end)
    return Assessment(start=start, end=end, categories=categories, before=before, after=after)

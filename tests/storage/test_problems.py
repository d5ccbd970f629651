"""Problems (SARA): stages in order, suggestions proposed once, the before/after assessment."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from storage import problems
from storage.models import Area, Contact, Problem, Report
from storage.types import NoteKind, ProblemStage, ReportStatus, SuggestionState

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
_TICKETS = itertools.count(1)


async def _area(session: AsyncSession, code: str = "3171", name: str = "Menteng") -> Area:
    area = Area(code=code, name=name, level="kelurahan", timezone="Asia/Jakarta")
    session.add(area)
    await session.flush()
    return area


async def _report(
    session: AsyncSession,
    area: Area,
    when: datetime,
    category: str = "keamanan",
    status: ReportStatus = ReportStatus.NEW,
    reporter: Contact | None = None,
) -> Report:
    report = Report(
        ticket=f"KTN-T{next(_TICKETS):04d}",
        category=category,
        description="motor hilang",
        area_id=area.id,
        status=status.value,
        created_at=when,
        updated_at=when,
        reporter_id=reporter.id if reporter else None,
    )
    session.add(report)
    await session.flush()
    return report


async def _problem(session: AsyncSession, area: Area, report_ids: Sequence[int] = ()) -> Problem:
    return await problems.create(
        session,
        area_id=area.id,
        pillar="keamanan",
        title="Curanmor",
        created_by_id=None,
        now=T0,
        report_ids=report_ids,
    )


async def test_stages_move_forward_one_at_a_time_and_never_back(session: AsyncSession) -> None:
    area = await _area(session)
    problem = await _problem(session, area)
    assert problem.stage == ProblemStage.SCANNING
    with pytest.raises(problems.StageOrderError):  # skipping analysis
        await problems.move_stage(session, problem, ProblemStage.RESPONSE, actor_id=None, now=T0)
    for step, stage in enumerate(
        (ProblemStage.ANALYSIS, ProblemStage.RESPONSE, ProblemStage.ASSESSMENT), start=1
    ):
        assert await problems.move_stage(
            session, problem, stage, actor_id=None, now=T0 + timedelta(days=step)
        )
        assert problem.stage == stage
    assert problem.response_started_at == T0 + timedelta(days=2)
    with pytest.raises(problems.StageOrderError):  # going back
        await problems.move_stage(session, problem, ProblemStage.ANALYSIS, actor_id=None, now=T0)
    assert await problems.move_stage(
        session,
        problem,
        ProblemStage.CLOSED,
        actor_id=None,
        now=T0 + timedelta(days=9),
        note="aman",
    )
    assert (problem.closed_at, problem.closing_note) == (T0 + timedelta(days=9), "aman")
    with pytest.raises(problems.StageOrderError):  # nothing after closed
        await problems.move_stage(session, problem, ProblemStage.SCANNING, actor_id=None, now=T0)
    trail = [
        (e.from_stage, e.to_stage)
        for e in await problems.events_of(session, problem.id)
        if e.kind == "stage"
    ]
    assert trail == [
        ("scanning", "analysis"),
        ("analysis", "response"),
        ("response", "assessment"),
        ("assessment", "closed"),
    ]
    with pytest.raises(problems.ProblemClosed):
        await problems.add_note(session, problem, NoteKind.CAUSE, "x", author_id=None, now=T0)


async def test_three_reports_make_one_suggestion_and_accepting_links_them(
    session: AsyncSession,
) -> None:
    area = await _area(session)
    other = await _area(session, "3172", "Gondangdia")
    reports = [await _report(session, area, T0 - timedelta(days=d)) for d in (1, 5, 20)]
    await _report(session, area, T0 - timedelta(days=40))  # older than 30 days
    await _report(session, area, T0, category="kesehatan")  # another category
    await _report(session, other, T0)  # another area
    await _report(session, area, T0, status=ReportStatus.DUPLICATE)  # a merged copy
    made = await problems.compute_suggestions(session, min_reports=3, days=30, now=T0)
    assert [(s.area_id, s.category, sorted(s.report_ids)) for s in made] == [
        (area.id, "keamanan", sorted(r.id for r in reports))
    ]
    assert await problems.compute_suggestions(session, min_reports=3, days=30, now=T0) == []
    suggestion = made[0]
    problem = await problems.accept_suggestion(
        session, suggestion, pillar="keamanan", title="Curanmor", actor_id=None, now=T0
    )
    assert problem is not None and problem.area_id == area.id
    assert await problems.report_ids_of(session, problem.id) == sorted(r.id for r in reports)
    assert suggestion.state == SuggestionState.ACCEPTED and suggestion.problem_id == problem.id
    # accepted twice (a second tap): nothing more is made
    assert (
        await problems.accept_suggestion(
            session, suggestion, pillar="keamanan", title="x", actor_id=None, now=T0
        )
        is None
    )
    # linked reports are not proposed again
    assert await problems.compute_suggestions(session, min_reports=3, days=30, now=T0) == []


async def test_a_dismissed_suggestion_stays_dismissed_until_a_new_report_comes(
    session: AsyncSession,
) -> None:
    area = await _area(session)
    for d in (1, 2, 3):
        await _report(session, area, T0 - timedelta(days=d))
    (suggestion,) = await problems.compute_suggestions(session, min_reports=3, days=30, now=T0)
    assert await problems.dismiss_suggestion(session, suggestion, actor_id=None, now=T0)
    for later in (1, 2, 7):
        assert (
            await problems.compute_suggestions(
                session, min_reports=3, days=30, now=T0 + timedelta(hours=later)
            )
            == []
        )
    assert await problems.suggestions_in_areas(session, [area.id]) == []
    fourth = await _report(session, area, T0 + timedelta(days=1))
    (again,) = await problems.compute_suggestions(
        session, min_reports=3, days=30, now=T0 + timedelta(days=1)
    )
    assert again.id != suggestion.id and fourth.id in again.report_ids
    assert suggestion.state == SuggestionState.DISMISSED


async def test_a_waiting_suggestion_grows_instead_of_doubling(session: AsyncSession) -> None:
    area = await _area(session)
    for d in (1, 2, 3):
        await _report(session, area, T0 - timedelta(days=d))
    (first,) = await problems.compute_suggestions(session, min_reports=3, days=30, now=T0)
    await _report(session, area, T0)
    (grown,) = await problems.compute_suggestions(session, min_reports=3, days=30, now=T0)
    assert grown.id == first.id and len(grown.report_ids) == 4
    assert len(await problems.suggestions_in_areas(session, [area.id])) == 1


async def test_reports_move_between_problems_and_merge(session: AsyncSession) -> None:
    area = await _area(session)
    a, b, c = [await _report(session, area, T0) for _ in range(3)]
    first = await _problem(session, area, report_ids=[a.id, b.id])
    second = await _problem(session, area, report_ids=[b.id, c.id])  # b moves to the second
    assert await problems.report_ids_of(session, first.id) == [a.id]
    assert (await problems.problem_of_report(session, b.id)) is second
    assert not await problems.add_report(session, second, c.id, actor_id=None, now=T0)
    await problems.add_note(session, first, NoteKind.PLACE, "gang gelap", author_id=None, now=T0)
    moved = await problems.merge(session, first, second, actor_id=None, now=T0)
    assert moved == 1
    assert await problems.report_ids_of(session, second.id) == [a.id, b.id, c.id]
    assert [n.text for n in await problems.notes_of(session, second.id)] == ["gang gelap"]
    assert first.stage == ProblemStage.CLOSED and first.merged_into_id == second.id
    assert await problems.in_areas(session, [area.id]) == [second]
    assert await problems.remove_report(session, second, a.id, actor_id=None, now=T0)
    assert await problems.report_ids_of(session, second.id) == [b.id, c.id]


async def test_assessment_counts_equal_periods_around_the_response(session: AsyncSession) -> None:
    area = await _area(session)
    rw = Area(code="3171.01", name="RW 01", level="rw", parent_id=area.id, timezone="Asia/Jakarta")
    session.add(rw)
    elsewhere = await _area(session, "3172", "Gondangdia")
    start = T0
    # the seeded timeline: the response begins at T0 and is closed 10 days later
    before_days = (9.5, 7, 3, 2, 0.5)  # five in the ten days before (one in the RW below)
    after_days = (1, 8)  # two in the ten days after
    linked = []
    for i, d in enumerate(before_days):
        place = rw if i == 0 else area
        linked.append(await _report(session, place, start - timedelta(days=d)))
    for d in after_days:
        await _report(session, area, start + timedelta(days=d))
    await _report(session, area, start - timedelta(days=11))  # before the before period
    await _report(session, area, start + timedelta(days=11))  # after the closing
    await _report(session, area, start - timedelta(days=1), category="kesehatan")
    await _report(session, elsewhere, start - timedelta(days=1))
    await _report(session, area, start - timedelta(days=1), status=ReportStatus.REJECTED)
    problem = await _problem(session, area, report_ids=[r.id for r in linked[:3]])
    assert await problems.assessment(session, problem, start) is None  # no response yet
    await problems.move_stage(session, problem, ProblemStage.ANALYSIS, actor_id=None, now=start)
    await problems.move_stage(session, problem, ProblemStage.RESPONSE, actor_id=None, now=start)
    midway = await problems.assessment(session, problem, start + timedelta(days=2))
    assert midway is not None and (midway.before, midway.after) == (2, 1)  # 2-day periods
    await problems.move_stage(
        session, problem, ProblemStage.ASSESSMENT, actor_id=None, now=start + timedelta(days=9)
    )
    await problems.move_stage(
        session, problem, ProblemStage.CLOSED, actor_id=None, now=start + timedelta(days=10)
    )
    result = await problems.assessment(session, problem, start + timedelta(days=30))
    assert result is not None
    assert (result.before, result.after, result.categories) == (5, 2, ("keamanan",))
    assert result.length == timedelta(days=10) and result.change == pytest.approx(-0.6)


async def test_action_reminders_are_claimed_once_and_done_once(session: AsyncSession) -> None:
    area = await _area(session)
    owner = Contact(channel="telegram", external_id=42, role="officer", area_id=area.id)
    session.add(owner)
    problem = await _problem(session, area)
    await session.flush()
    action = await problems.add_action(
        session,
        problem,
        "Pasang lampu",
        owner_id=owner.id,
        due_at=T0 + timedelta(days=2),
        remind_at=T0 + timedelta(days=1),
        created_by_id=None,
        now=T0,
    )
    assert await problems.due_reminders(session, T0, 10) == []
    assert await problems.due_reminders(session, T0 + timedelta(days=1), 10) == [action]
    assert await problems.claim_reminder(session, action.id, T0 + timedelta(days=1))
    assert not await problems.claim_reminder(session, action.id, T0 + timedelta(days=1))
    assert await problems.due_reminders(session, T0 + timedelta(days=3), 10) == []
    overdue = await problems.open_actions_in_areas(
        session, [area.id], due_before=T0 + timedelta(days=3)
    )
    assert overdue == [(action, problem)]
    assert await problems.mark_done(session, action, actor_id=owner.id, now=T0 + timedelta(days=2))
    assert not await problems.mark_done(session, action, actor_id=owner.id, now=T0)
    assert await problems.open_actions_of_owner(session, owner.id) == []

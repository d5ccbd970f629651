"""Problems (SARA, issue 20) in chat: /masalah, the alert's "Masalah…", suggestions accepted or
dismissed with one tap, the owners' reminders and their "selesai", the reporters' news.

Staff only, within their area and the areas below it (``scope``). Buttons carry compact data:

- ``pmenu:<report>``: the alert's "Masalah…": which open problem of the report's area to add the
  report to, or a new one (``padd:<report>:<problem>``, ``pnew:<report>``);
- ``pok:<suggestion>:<stamp>`` / ``pno:<suggestion>:<stamp>``: accept (the problem is made with
  its reports) or dismiss a suggestion (that set of reports is never proposed again,
  ``storage.problems``); the stamp names the set of reports shown, so a suggestion a new report
  joined meanwhile is not decided blindly;
- ``pshow:<problem>`` / ``pnext:<problem>``: a problem's page in chat, and its next SARA stage;
- ``pdone:<action>``: the owner's "Selesai" under a reminder (``pdone:0``: "which one?").

Typed, on a channel without buttons or outside WhatsApp's window: ``masalah`` (the list),
``masalah KTN-ABC234`` (the alert's menu), ``masalah 12`` (problem #12), ``selesai`` (the action
the owner was last reminded of) and the numbers of the options offered.

Owners are reminded by the leader (``remind_due``): each action's reminder is claimed by a
conditional UPDATE in the transaction that writes its outbox row (whose dedupe key is the
action's), so a restart or a second worker never reminds twice. Moving a stage (``move_stage``,
which the desk calls too) tells the reporters of linked reports, naming nobody, when the
response starts and when the problem is closed (``[problems] tell_reporters``); closing keeps
the assessment's numbers in the closing note.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.context import Context
from handlers.options import normalise
from handlers.permissions import area_chain_ids, is_staff, is_supervisor
from handlers.render import category_label, format_time
from handlers.routing import BotRoutes
from handlers.states import State
from handlers.sweep import FailureHook, ItemGuard
from handlers.turn import Turn
from handlers.types import Inbound, Option, Outcome, Reply
from storage import contacts, outbox, reports
from storage import problems as store
from storage.areas import descendant_ids
from storage.models import (
    Area,
    Contact,
    Outbox,
    Problem,
    ProblemAction,
    ProblemSuggestion,
    Report,
)
from storage.types import OutboxKind, ProblemStage, SuggestionState

_BUTTON = re.compile(r"^(pmenu|padd|pnew|pok|pno|pshow|pnext|pdone):(\d{1,18})(?::(\d{1,18}))?$")
MAX_ID = 2**31 - 1
LIST_LIMIT = 8  # problems, actions and suggestions shown by /masalah (each)
MENU_LIMIT = 6  # open problems offered under an alert's "Masalah…"
# Suggestions shown with Terima / Abaikan: ten options at most, what a WhatsApp list can carry.
SUGGESTION_LIMIT = 5
DONE_WORDS = frozenset({"selesai", "sudahselesai", "done"})
_TYPED_ID = re.compile(r"^#?(\d{1,9})$")


@dataclass(slots=True)
class Answer:
    """What a problem action says to the person (text and options, or a short notice for a
    pressed button) and the outbox rows it wrote."""

    text: str = ""
    options: tuple[Option, ...] = ()
    notice: str | None = None
    rows: list[Outbox] = field(default_factory=list)


def is_problem_button(data: str | None) -> bool:
    """Whether the button data (or typed option) is one of this module's."""
    return _parse(data) is not None


def _parse(data: str | None) -> tuple[str, int, int | None] | None:
    match = _BUTTON.match(data or "")
    if match is None:
        return None
    first = int(match.group(2))
    second = int(match.group(3)) if match.group(3) else None
    if first > MAX_ID or (second is not None and second > MAX_ID):
        return None
    return match.group(1), first, second


def _t(ctx: Context, lang: str, key: str, /, **params: object) -> str:
    return ctx.config.catalog.text(lang, key, **params)


async def scope(session: AsyncSession, contact: Contact | None) -> list[int]:
    """The areas a staff member works with problems in: their own and every area below it."""
    if not is_staff(contact) or contact is None or contact.area_id is None:
        return []
    return await descendant_ids(session, contact.area_id)


def stage_label(ctx: Context, lang: str, stage: str) -> str:
    return ctx.config.catalog.get(lang, f"problem.stage_{stage}") or stage


async def _area_name(session: AsyncSession, area_id: int) -> str:
    area = await session.get(Area, area_id)
    return area.name if area is not None else "-"


async def _zone(session: AsyncSession, area_id: int) -> str | None:
    area = await session.get(Area, area_id)
    return area.timezone if area is not None else None


# --- /masalah ------------------------------------------------------------------------------


async def command(turn: Turn, arg: str | None) -> None:
    """/masalah: the list; /masalah KTN-ABC234: add that report to a problem; /masalah 12."""
    answer = await command_answer(turn.session, turn.ctx, turn.contact, turn.lang, arg)
    turn.say(answer.text, answer.options)
    turn.outbox.extend(answer.rows)
    await turn.reprompt_if_busy()


async def command_answer(
    session: AsyncSession, ctx: Context, actor: Contact | None, lang: str, arg: str | None
) -> Answer:
    areas = await scope(session, actor)
    if not areas or actor is None:
        return Answer(_t(ctx, lang, "staff.only_staff"))
    word = (arg or "").strip()
    if not word:
        return await overview(session, ctx, actor, lang, areas)
    number = _TYPED_ID.match(word)
    if number is not None:
        problem = await store.get(session, int(number.group(1)))
        if problem is None or problem.area_id not in areas:
            return Answer(_t(ctx, lang, "problem.gone"))
        return await show(session, ctx, lang, problem)
    ticket = reports.normalise_ticket(word)
    report = await reports.get_by_ticket(session, ticket) if ticket else None
    if report is None:
        return Answer(_t(ctx, lang, "problem.usage"))
    return await report_menu(session, ctx, actor, lang, report)


async def overview(
    session: AsyncSession, ctx: Context, actor: Contact, lang: str, areas: list[int]
) -> Answer:
    """The area's open problems, the actions not done (soonest due first, overdue marked) and
    the suggestions waiting, each with Terima / Abaikan."""
    suggestions = (await waiting_suggestions(session, ctx, areas))[:SUGGESTION_LIMIT]
    area_name = await _area_name(session, actor.area_id or areas[0])
    lines = [_t(ctx, lang, "problem.overview_title", area=area_name)]
    open_ = await store.in_areas(session, areas, limit=LIST_LIMIT)
    counts = await store.report_counts(session, [p.id for p in open_])
    options: list[Option] = []
    if not open_:
        lines.append(_t(ctx, lang, "problem.overview_none"))
    for problem in open_:
        lines.append(
            _t(
                ctx,
                lang,
                "problem.line",
                id=problem.id,
                title=problem.title,
                stage=stage_label(ctx, lang, problem.stage),
                count=counts.get(problem.id, 0),
            )
        )
    actions = (await store.open_actions_in_areas(session, areas))[:LIST_LIMIT]
    if actions:
        lines += ["", _t(ctx, lang, "problem.actions_title")]
    for action, problem in actions:
        lines.append(await _action_line(session, ctx, lang, action, problem))
    if suggestions:
        lines += ["", _t(ctx, lang, "problem.suggestions_title")]
    for n, suggestion in enumerate(suggestions, start=1):
        lines.append(await _suggestion_line(session, ctx, lang, n, suggestion))
        shown = f"{suggestion.id}:{store.stamp(suggestion.fingerprint)}"  # the set shown
        options.append(Option(_t(ctx, lang, "problem.accept", n=n), f"pok:{shown}"))
        options.append(Option(_t(ctx, lang, "problem.dismiss", n=n), f"pno:{shown}"))
    for problem in open_[: max(0, 10 - len(options))]:
        options.append(Option(_t(ctx, lang, "problem.show", id=problem.id), f"pshow:{problem.id}"))
    return Answer("\n".join(lines), tuple(options))


async def waiting_suggestions(
    session: AsyncSession, ctx: Context, areas: list[int]
) -> list[ProblemSuggestion]:
    """The suggestions waiting in these areas, newest first, looked for afresh (the leader looks
    every ``suggest_check_seconds``; a person asking should not wait for it)."""
    rules = ctx.config.problems
    await store.compute_suggestions(
        session,
        min_reports=rules.suggest_min_reports,
        days=rules.suggest_days,
        now=ctx.now,
        area_ids=areas,
    )
    return await store.suggestions_in_areas(session, areas)


async def _action_line(
    session: AsyncSession, ctx: Context, lang: str, action: ProblemAction, problem: Problem
) -> str:
    owner = await session.get(Contact, action.owner_id) if action.owner_id else None
    name = (owner.display_name if owner else None) or _t(ctx, lang, "staff.unnamed")
    due = format_time(action.due_at, await _zone(session, problem.area_id))
    key = "problem.action_overdue" if action.due_at < ctx.now else "problem.action_line"
    return _t(ctx, lang, key, id=problem.id, text=action.text, owner=name, due=due)


async def _suggestion_line(
    session: AsyncSession, ctx: Context, lang: str, n: int, suggestion: ProblemSuggestion
) -> str:
    return _t(
        ctx,
        lang,
        "problem.suggestion_line",
        n=n,
        count=len(suggestion.report_ids),
        category=category_label(ctx.config.catalog, lang, suggestion.category),
        area=await _area_name(session, suggestion.area_id),
        days=ctx.config.problems.suggest_days,
    )


async def show(session: AsyncSession, ctx: Context, lang: str, problem: Problem) -> Answer:
    """One problem: stage, pillar, reports, notes and actions counted, the assessment once the
    response began; "Lanjut ke <stage>" while open."""
    linked = await store.reports_of(session, problem.id)
    lines = [
        _t(ctx, lang, "problem.title", id=problem.id, title=problem.title),
        _t(ctx, lang, "problem.stage", stage=stage_label(ctx, lang, problem.stage)),
        _t(
            ctx,
            lang,
            "problem.pillar",
            pillar=ctx.config.catalog.get(lang, f"pillar.{problem.pillar}") or problem.pillar,
        ),
        _t(
            ctx,
            lang,
            "problem.reports",
            count=len(linked),
            tickets=", ".join(r.ticket for r in linked) or "-",
        ),
    ]
    for action in await store.actions_of(session, problem.id):
        key = "problem.action_done_line" if action.done_at else "problem.action_open_line"
        lines.append(_t(ctx, lang, key, text=action.text))
    assessed = await store.assessment(session, problem, ctx.now)
    if assessed is not None:
        lines.append(assessment_text(ctx, lang, assessed))
    if problem.closing_note and problem.stage == ProblemStage.CLOSED.value:
        lines.append(_t(ctx, lang, "problem.closing_note", note=problem.closing_note))
    options: tuple[Option, ...] = ()
    following = ProblemStage(problem.stage).next
    if following is not None:
        label = _t(ctx, lang, "problem.next", stage=stage_label(ctx, lang, following.value))
        options = (Option(label, f"pnext:{problem.id}"),)
    return Answer("\n".join(lines), options)


def assessment_text(ctx: Context, lang: str, assessed: store.Assessment) -> str:
    """'Laporan serupa: 5 dalam 10 hari sebelum penanganan, 2 dalam 10 hari sesudahnya.'"""
    days = max(1, round(assessed.length.total_seconds() / 86400))
    return _t(
        ctx, lang, "problem.assessment", before=assessed.before, after=assessed.after, days=days
    )


# --- the alert's "Masalah…" ----------------------------------------------------------------


async def report_menu(
    session: AsyncSession, ctx: Context, actor: Contact | None, lang: str, report: Report
) -> Answer:
    """Which open problem of the report's area (or above, within the person's areas) to add
    the report to, or a new one."""
    areas = await scope(session, actor)
    if report.area_id not in areas:
        return Answer(_t(ctx, lang, "staff.not_allowed"), notice=_t(ctx, lang, "staff.not_allowed"))
    current = await store.problem_of_report(session, report.id)
    chain = [a for a in await area_chain_ids(session, report.area_id) if a in areas]
    candidates = [
        p for p in await store.in_areas(session, chain, limit=MENU_LIMIT) if p is not current
    ]
    # Short labels ("Masalah #3") fit every channel's buttons; the titles are in the text.
    options = [
        Option(_t(ctx, lang, "problem.pick", id=p.id), f"padd:{report.id}:{p.id}")
        for p in candidates
    ]
    options.append(Option(_t(ctx, lang, "problem.new"), f"pnew:{report.id}"))
    lines = [_t(ctx, lang, "problem.menu_ask", ticket=report.ticket)]
    if current is not None:
        lines.insert(0, _t(ctx, lang, "problem.already", ticket=report.ticket, id=current.id))
    for p in candidates:
        stage = stage_label(ctx, lang, p.stage)
        lines.append(_t(ctx, lang, "problem.menu_line", id=p.id, title=p.title, stage=stage))
    return Answer("\n".join(lines), tuple(options))


async def default_title(session: AsyncSession, ctx: Context, category: str, area_id: int) -> str:
    """'Keamanan berulang di Sumber Jaya', in the deployment's language: a new problem's title
    until someone names it on the desk."""
    lang = ctx.config.default_language
    label = category_label(ctx.config.catalog, lang, category)
    area = await _area_name(session, area_id)
    return _t(ctx, lang, "problem.default_title", category=label, area=area)


def pillar_of(ctx: Context, category: str) -> str:
    found = ctx.config.category(category)
    return found.pillar if found is not None else "sosial_ekonomi"


async def held_elsewhere(
    session: AsyncSession, report_id: int, areas: Collection[int]
) -> Problem | None:
    """The problem the report belongs to when it may not be taken from it: a closed one (its
    assessment is kept as it was) or one outside the person's areas. None: free to link."""
    current = await store.problem_of_report(session, report_id)
    if current is None:
        return None
    if current.stage == ProblemStage.CLOSED.value or current.area_id not in areas:
        return current
    return None


async def _add_to(
    session: AsyncSession,
    ctx: Context,
    actor: Contact,
    lang: str,
    report: Report,
    problem_id: int | None,
) -> Answer:
    areas = await scope(session, actor)
    if report.area_id not in areas:
        return Answer(notice=_t(ctx, lang, "staff.not_allowed"))
    held = await held_elsewhere(session, report.id, areas)
    if held is not None:
        text = _t(ctx, lang, "problem.held", ticket=report.ticket, id=held.id)
        return Answer(text, notice=text)
    if problem_id is None:
        title = await default_title(session, ctx, report.category, report.area_id)
        made = await store.create(
            session,
            area_id=report.area_id,
            pillar=pillar_of(ctx, report.category),
            title=title,
            created_by_id=actor.id,
            now=ctx.now,
            report_ids=[report.id],
        )
        text = _t(ctx, lang, "problem.created", id=made.id, title=made.title, ticket=report.ticket)
        return Answer(text, notice=text)
    problem = await store.get(session, problem_id)
    chain = await area_chain_ids(session, report.area_id)
    if (
        problem is None
        or problem.stage == ProblemStage.CLOSED.value
        or problem.area_id not in areas
        or problem.area_id not in chain
    ):
        return Answer(notice=_t(ctx, lang, "problem.gone"))
    if not await store.add_report(session, problem, report.id, actor_id=actor.id, now=ctx.now):
        text = _t(ctx, lang, "problem.already", ticket=report.ticket, id=problem.id)
        return Answer(text, notice=text)
    text = _t(ctx, lang, "problem.added", id=problem.id, title=problem.title, ticket=report.ticket)
    return Answer(text, notice=text)


# --- suggestions ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Decision:
    """What came of Terima / Abaikan: done or not, what to say, the problem made."""

    done: bool
    text: str
    problem: Problem | None = None


async def decide(
    session: AsyncSession,
    ctx: Context,
    actor: Contact,
    lang: str,
    suggestion_id: int | None,
    *,
    accept: bool,
    stamp: int | None = None,
    via: str | None = None,
) -> Decision:
    """Accept a suggestion (a problem with its reports) or dismiss it (that set of reports is
    never proposed again), in chat and on the desk. ``stamp``: the set of reports that was shown
    (``storage.problems.stamp``); when the suggestion's set has changed since (a new report
    joined it), nothing is decided and the person looks again."""
    found = (
        await store.get_suggestion(session, suggestion_id)
        if suggestion_id is not None and 0 < suggestion_id <= MAX_ID
        else None
    )
    if found is None or found.area_id not in await scope(session, actor):
        return Decision(False, _t(ctx, lang, "problem.gone"))
    if found.state != SuggestionState.PROPOSED.value:
        return Decision(False, _t(ctx, lang, "problem.decided_already"))
    if stamp is not None and stamp != store.stamp(found.fingerprint):
        return Decision(False, _t(ctx, lang, "problem.suggestion_changed"))
    if not accept:
        if not await store.dismiss_suggestion(session, found, actor_id=actor.id, now=ctx.now):
            return Decision(False, _t(ctx, lang, "problem.decided_already"))
        return Decision(True, _t(ctx, lang, "problem.dismissed"))
    title = await default_title(session, ctx, found.category, found.area_id)
    problem = await store.accept_suggestion(
        session,
        found,
        pillar=pillar_of(ctx, found.category),
        title=title,
        actor_id=actor.id,
        now=ctx.now,
        via=via,
    )
    if problem is None:
        return Decision(False, _t(ctx, lang, "problem.decided_already"))
    count = len(await store.report_ids_of(session, problem.id))
    text = _t(ctx, lang, "problem.accepted", id=problem.id, title=problem.title, count=count)
    return Decision(True, text, problem)


async def suggest_everywhere(session: AsyncSession, ctx: Context) -> list[ProblemSuggestion]:
    """The leader's periodic look for new suggestions, in every area. Caller commits."""
    rules = ctx.config.problems
    return await store.compute_suggestions(
        session, min_reports=rules.suggest_min_reports, days=rules.suggest_days, now=ctx.now
    )


# --- stages (the chat and the desk) --------------------------------------------------------


async def move_stage(
    session: AsyncSession,
    ctx: Context,
    actor: Contact,
    problem: Problem,
    *,
    note: str | None = None,
    via: str | None = None,
) -> tuple[bool, list[Outbox]]:
    """Move the problem to its next stage (the chat's "Lanjut", the desk's buttons).

    The caller has checked role and area (``scope``). Closing keeps ``note`` and the
    assessment's numbers as the closing note. Reporters of linked reports hear when the response
    starts and when it is closed (``[problems] tell_reporters``). (False, []) when it was closed
    already or moved by someone else meanwhile."""
    following = ProblemStage(problem.stage).next
    if following is None:
        return False, []
    if following is ProblemStage.CLOSED:
        assessed = await store.assessment(session, problem, ctx.now)
        summary = assessment_text(ctx, ctx.config.default_language, assessed) if assessed else None
        note = "\n".join(p for p in (note, summary) if p) or None
    moved = await store.move_stage(
        session, problem, following, actor_id=actor.id, now=ctx.now, note=note, via=via
    )
    if not moved:
        return False, []
    rows: list[Outbox] = []
    if ctx.config.problems.tell_reporters and following in (
        ProblemStage.RESPONSE,
        ProblemStage.CLOSED,
    ):
        rows = await tell_reporters(session, ctx, problem, following)
    return True, rows


async def _next_stage(
    session: AsyncSession, ctx: Context, actor: Contact, lang: str, problem_id: int
) -> Answer:
    problem = await store.get(session, problem_id)
    if problem is None or problem.area_id not in await scope(session, actor):
        return Answer(notice=_t(ctx, lang, "problem.gone"))
    moved, rows = await move_stage(session, ctx, actor, problem)
    if not moved:
        text = _t(ctx, lang, "problem.moved_meanwhile")
        return Answer(text, notice=text)
    text = _t(
        ctx, lang, "problem.moved", id=problem.id, stage=stage_label(ctx, lang, problem.stage)
    )
    shown = await show(session, ctx, lang, problem)
    return Answer(f"{text}\n\n{shown.text}", shown.options, notice=text, rows=rows)


async def tell_reporters(
    session: AsyncSession, ctx: Context, problem: Problem, stage: ProblemStage
) -> list[Outbox]:
    """One message to each reporter of the problem's reports, with their own tickets only: no
    officer, no other reporter is named (an anonymous reporter hears it in their own chat)."""
    linked = await store.reports_of(session, problem.id)
    tickets: dict[int, list[str]] = {}
    for report in linked:
        if report.reporter_id is not None:
            tickets.setdefault(report.reporter_id, []).append(report.ticket)
    area_name = await _area_name(session, problem.area_id)
    routes = BotRoutes(session, ctx.config)
    rows = []
    for person in await store.reporters_of(session, problem.id):
        lang = person.language or ctx.config.default_language
        text = _t(
            ctx,
            lang,
            f"problem.news_{stage.value}",
            tickets=", ".join(tickets.get(person.id, [])),
            area=area_name,
        )
        rows.append(
            outbox.enqueue(
                session,
                channel=person.channel,
                chat_id=person.external_id,
                kind=OutboxKind.PROBLEM.value,
                reply=Reply(text),
                contact_id=person.id,
                dedupe_key=f"problem:{problem.id}:{stage.value}:{person.id}",
                extra={"problem_id": problem.id, "lang": lang},
                bot=await routes.contact(person),
            )
        )
    await session.flush()
    return rows


# --- actions: reminders and "selesai" ------------------------------------------------------


async def add_action(
    session: AsyncSession,
    ctx: Context,
    actor: Contact,
    problem: Problem,
    text: str,
    *,
    owner: Contact,
    due_at: datetime,
    via: str | None = None,
) -> ProblemAction:
    """A response action (the desk): reminded ``[problems] remind_hours_before`` before it is
    due. The owner must be an officer or coordinator of the problem's area or above it
    (``ValueError`` otherwise); the caller has checked the actor's role and area."""
    if not is_staff(owner) or owner.area_id not in await area_chain_ids(session, problem.area_id):
        raise ValueError("the owner must be staff of the problem's area")
    remind_at = due_at - timedelta(hours=ctx.config.problems.remind_hours_before)
    return await store.add_action(
        session,
        problem,
        text,
        owner_id=owner.id,
        due_at=due_at,
        remind_at=max(remind_at, ctx.now),
        created_by_id=actor.id,
        now=ctx.now,
        via=via,
    )


async def owners(session: AsyncSession, problem: Problem) -> list[Contact]:
    """Who may own an action of the problem: officers and coordinators of its area and above."""
    people: list[Contact] = []
    for area_id in await area_chain_ids(session, problem.area_id):
        people += await contacts.staff_in_area(session, area_id, ["officer", "coordinator"])
    return people


async def remind_due(
    session: AsyncSession, ctx: Context, *, limit: int = 100, on_failure: FailureHook | None = None
) -> list[int]:
    """Remind the owner of every action whose time has come, once: the outbox rows' ids.

    Each action in its own savepoint: the claim (a conditional UPDATE of ``reminded_at``) and
    the row (dedupe key ``problem-action:<id>``) commit together or not at all. Caller commits."""
    guard = ItemGuard(session, "problem_reminders", on_failure)
    sent: list[int] = []
    for action in await store.due_reminders(session, ctx.now, limit):
        action_id = action.id
        async with guard.item(f"action {action_id}") as attempt:
            row = await _remind(session, ctx, action)
        if row is not None and not attempt.failed:
            sent.append(row.id)
    await session.flush()
    return sent


async def _remind(session: AsyncSession, ctx: Context, action: ProblemAction) -> Outbox | None:
    key = f"problem-action:{action.id}"
    if not await store.claim_reminder(session, action.id, ctx.now):
        return None
    if await outbox.existing_keys(session, [key]):  # written before: the key's second guard
        return None
    owner = await session.get(Contact, action.owner_id) if action.owner_id else None
    problem = await store.get(session, action.problem_id)
    if owner is None or problem is None or owner.erased_at or owner.blocked_at:
        return None
    lang = owner.language or ctx.config.default_language
    due = format_time(action.due_at, await _zone(session, problem.area_id))
    text = _t(
        ctx, lang, "problem.reminder", id=problem.id, title=problem.title, text=action.text, due=due
    )
    caps = ctx.config.capabilities(owner.channel)
    if caps.buttons_need_words:
        text = f"{text}\n\n{_t(ctx, lang, 'problem.reminder_howto')}"
    done = Option(_t(ctx, lang, "problem.done_button"), f"pdone:{action.id}")
    row = outbox.enqueue(
        session,
        channel=owner.channel,
        chat_id=owner.external_id,
        kind=OutboxKind.PROBLEM.value,
        reply=Reply(text, (done,) if caps.has_buttons else ()),
        contact_id=owner.id,
        dedupe_key=key,
        extra={"problem_id": problem.id, "action_id": action.id, "lang": lang},
        bot=await BotRoutes(session, ctx.config).contact(owner),
    )
    await session.flush()
    return row


async def _done(
    session: AsyncSession, ctx: Context, actor: Contact, lang: str, action_id: int
) -> Answer:
    if action_id == 0:  # "selesai" typed by an owner of several reminded actions: which one?
        mine = await store.open_actions_of_owner(session, actor.id)
        options = tuple(Option(a.text[:60], f"pdone:{a.id}") for a in mine[:10])
        return Answer(_t(ctx, lang, "problem.which_action"), options)
    action = await store.get_action(session, action_id)
    problem = await store.get(session, action.problem_id) if action else None
    if action is None or problem is None:
        return Answer(notice=_t(ctx, lang, "problem.gone"))
    allowed = action.owner_id == actor.id or (
        is_supervisor(actor) and problem.area_id in await scope(session, actor)
    )
    if not allowed:
        text = _t(ctx, lang, "problem.not_owner")
        return Answer(text, notice=text)
    if not await store.mark_done(session, action, actor_id=actor.id, now=ctx.now):
        text = _t(ctx, lang, "problem.done_already")
        return Answer(text, notice=text)
    text = _t(ctx, lang, "problem.done", text=action.text, id=problem.id)
    return Answer(text, notice=text)


async def typed_answer(turn: Turn, text: str) -> str | None:
    """'selesai' typed by an action's owner with nothing else going on: the action they were
    last reminded of (``pdone:<id>``), or ``pdone:0`` to ask which when several wait."""
    if turn.state is not State.IDLE or normalise(text) not in DONE_WORDS:
        return None
    if not is_staff(turn.contact):
        return None
    reminded = [
        a for a in await store.open_actions_of_owner(turn.session, turn.contact.id) if a.reminded_at
    ]
    if not reminded:
        return None
    return f"pdone:{reminded[0].id}" if len(reminded) == 1 else "pdone:0"


# --- buttons ---------------------------------------------------------------------------------


async def answer_button(
    session: AsyncSession, ctx: Context, actor: Contact | None, lang: str, data: str
) -> Answer:
    """What a problem button (or its typed option) does."""
    parsed = _parse(data)
    if parsed is None or actor is None or not is_staff(actor):
        return Answer(notice=_t(ctx, lang, "staff.only_staff"))
    kind, first, second = parsed
    if kind in ("pmenu", "padd", "pnew"):
        report = await session.get(Report, first)
        if report is None:
            return Answer(notice=_t(ctx, lang, "staff.report_gone"))
        if kind == "pmenu":
            return await report_menu(session, ctx, actor, lang, report)
        return await _add_to(session, ctx, actor, lang, report, second if kind == "padd" else None)
    if kind in ("pok", "pno"):  # pok:<suggestion>[:<stamp of the set shown>]
        decided = await decide(session, ctx, actor, lang, first, accept=kind == "pok", stamp=second)
        return Answer(decided.text, notice=decided.text)
    if kind == "pshow":
        problem = await store.get(session, first)
        if problem is None or problem.area_id not in await scope(session, actor):
            return Answer(notice=_t(ctx, lang, "problem.gone"))
        return await show(session, ctx, lang, problem)
    if kind == "pnext":
        return await _next_stage(session, ctx, actor, lang, first)
    return await _done(session, ctx, actor, lang, first)


async def private_button(turn: Turn, data: str) -> None:
    """A problem button pressed (or its option typed) in a private chat."""
    answer = await answer_button(turn.session, turn.ctx, turn.contact, turn.lang, data)
    turn.outbox.extend(answer.rows)
    if answer.text:
        turn.say(answer.text, answer.options)
    elif answer.notice:
        turn.say(answer.notice)
    if turn.msg.button is not None and answer.notice:
        turn.outcome.notice = answer.notice
    await turn.reprompt_if_busy()


async def group_button(session: AsyncSession, msg: Inbound, ctx: Context) -> Outcome:
    """A problem button pressed in a group (the group alert's "Masalah…" and its menu): the
    presser gets a notice, the group the menu."""
    actor = await contacts.find(session, str(msg.channel), msg.user_id)
    lang = (actor.language if actor else None) or ctx.config.default_language
    answer = await answer_button(session, ctx, actor, lang, msg.button or "")
    await session.flush()
    outcome = Outcome(notice=answer.notice, outbox_ids=[row.id for row in answer.rows])
    if answer.text:
        outcome.replies.append(Reply(answer.text, answer.options))
    return outcome

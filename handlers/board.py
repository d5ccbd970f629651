"""Alerts that survive a surge: a group's live report board (papan laporan).

A group chat takes only so many messages in a window (``Capabilities.group_window``: Telegram
allows a group 20 a minute). Each new alert for a group asks how long the group's queue would
hold it: the group's rows waiting in the outbox plus those sent within the window, against the
window (``GroupLoad``). Past ``CoreConfig.board_after_seconds`` (default 30 s) the group gets
one board instead of one alert per report: a message edited in place with the counts by RW and
category and the newest unclaimed tickets, each with its claim button (``claim:<report id>``,
the alert's own, so role and area are checked the same way). The group's alerts not yet being
sent are folded into it (status ``folded``: never sent later as stale alerts). Urgent reports
still get their own alert (and show on the board, at the top) while that goes out in time;
when even the urgent alerts would wait too long (a flood: every report is "Bencana"), they are
on the board only. Board edits go out at most every
``2 × window / limit`` seconds, half the group's budget, and a new report updates the edit
still waiting instead of queueing another; edits are outbox rows paced like any other message
to the group, so the dispatcher keeps them within the group's limit.

The board closes when the reports of the last window would have fitted the group as single
alerts again (at the next report to the group, or when the leader's sweep finds it quiet for a
window): its last edit says so and keeps the claim buttons of the tickets still unclaimed; a
press on it later claims like any other. Claims, closures and rejections of a report on a board
update the board (``on_report_changed``).

Only a channel that declares a group window, edits messages and has buttons gets a board;
WhatsApp through Twilio has no groups (officers get 1:1 copies; its limit is per sender, not per
group), so its alerts never fold.

One alert is one group message: its location is a map link in the text; the location pin as a
message of its own follows only when the group is not busy (``pin_fits``).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.context import Context
from handlers.render import category_label, description_text, format_clock
from handlers.types import Option, Reply
from storage import boards, outbox
from storage.models import Area, GroupBoard, Report
from storage.types import AreaLevel, OutboxKind, ReportStatus


class Target(Protocol):
    """Where one copy of an alert goes (``handlers.alerts.Recipient``), as far as boards care."""

    @property
    def channel(self) -> str: ...
    @property
    def chat_id(self) -> int: ...
    @property
    def lang(self) -> str: ...
    @property
    def route(self) -> str: ...
    @property
    def bot(self) -> str: ...


T = TypeVar("T", bound=Target)
log = logging.getLogger(__name__)
DESCRIPTION_CHARS = 40


@dataclass(frozen=True, slots=True)
class GroupLoad:
    """A group chat's queue: rows waiting for it, rows sent within the window, the window."""

    queued: int
    recent: int
    limit: int
    seconds: float

    def wait_seconds(self, more: int = 1) -> float:
        """How long the ``more``-th message queued now would wait for the group's window."""
        over = self.queued + self.recent + more - self.limit
        return max(0, over) * self.seconds / self.limit

    @property
    def edit_interval(self) -> timedelta:
        """Board edits take at most half the group's budget."""
        return timedelta(seconds=2 * self.seconds / self.limit)


def _window(ctx: Context, channel: str) -> tuple[int, float] | None:
    """The group window of a channel that can show a board (edits, buttons), else None."""
    caps = ctx.config.capabilities(channel)
    if caps.group_window is None or not caps.edits_messages or not caps.has_buttons:
        return None
    return caps.group_window


async def load_of(
    session: AsyncSession,
    ctx: Context,
    channel: str,
    chat_id: int,
    board: GroupBoard | None = None,
) -> GroupLoad | None:
    """The group's queue now (a board's own message and edit not counted as waiting); None on
    a channel without a group window."""
    caps = ctx.config.capabilities(channel)
    if caps.group_window is None:
        return None
    limit, seconds = caps.group_window
    own = [r for r in (board.message_row, board.edit_row) if r is not None] if board else []
    queued, recent = await boards.chat_load(
        session, channel, chat_id, ctx.now - timedelta(seconds=seconds), leave_out=own
    )
    return GroupLoad(queued, recent, limit, seconds)


async def pin_fits(session: AsyncSession, ctx: Context, to: Target) -> bool:
    """Whether a group alert may bring its location pin as a second message: the group is not
    busy: the alert and its pin, with what waits and what went out within the window, take
    at most half of it. Always for a private chat."""
    if to.route != "group":
        return True
    load = await load_of(session, ctx, to.channel, to.chat_id)
    return load is None or load.queued + load.recent + 2 <= load.limit // 2


async def divert(
    session: AsyncSession, report: Report, ctx: Context, recipients: list[T]
) -> list[T]:
    """Put the new report on the board of each group whose queue is too long (opening the board
    and folding the group's waiting alerts into it); returns who still gets the report's own
    alert (every private chat, groups that are not busy, and urgent reports everywhere)."""
    after = ctx.config.board_after_seconds
    keep: list[T] = []
    for to in recipients:
        if to.route != "group" or after is None or _window(ctx, to.channel) is None:
            keep.append(to)
            continue
        await boards.lock_group(session, to.channel, to.chat_id)
        board = await boards.open_board(session, to.channel, to.chat_id)
        load = await load_of(session, ctx, to.channel, to.chat_id, board)
        assert load is not None
        if board is not None and await _cleared(session, ctx, board, load):
            await close(session, ctx, board)
            board = None
            load = await load_of(session, ctx, to.channel, to.chat_id)
            assert load is not None
        if board is None:
            if load.wait_seconds() <= after:
                keep.append(to)
                continue
            board = await _open(session, ctx, to, report)
            log.info(
                "group %s: queue would hold an alert %.0f s; report board %s opened",
                to.chat_id,
                load.wait_seconds(),
                board.id,
            )
        if report.urgent and await _urgent_in_time(session, board, load, after):
            keep.append(to)
        await boards.add_reports(session, board.id, [report.id], ctx.now)
        await refresh(session, ctx, board, load)
    return keep


async def _urgent_in_time(
    session: AsyncSession, board: GroupBoard, load: GroupLoad, after: float
) -> bool:
    """An urgent report gets its own alert while that goes out in time: urgent alerts go
    before everything else waiting (the dispatcher's order), so only they, the board's own
    rows and the window count. When even they would wait too long (every report of a surge is
    urgent), the report is on the board only, at the top."""
    urgent = await boards.urgent_waiting(session, board.channel, board.chat_id)
    own = sum(1 for row in (board.message_row, board.edit_row) if row is not None)
    ahead = GroupLoad(urgent + own, load.recent, load.limit, load.seconds)
    return ahead.wait_seconds() <= after


async def _cleared(session: AsyncSession, ctx: Context, board: GroupBoard, load: GroupLoad) -> bool:
    """The reports of the last window, and what else waits for the group, would fit into half
    its window as single alerts: the surge is over."""
    since = ctx.now - timedelta(seconds=load.seconds)
    added = await boards.added_since(session, board.id, since)
    return load.queued + added + 1 <= load.limit // 2


async def _open(session: AsyncSession, ctx: Context, to: Target, report: Report) -> GroupBoard:
    """A new board for the group: its message queued, the group's waiting alerts folded in."""
    board = boards.new_board(
        session,
        channel=to.channel,
        bot=to.bot,
        chat_id=to.chat_id,
        area_id=report.area_id,
        lang=to.lang,
        now=ctx.now,
    )
    await session.flush()
    folded = await boards.fold_pending_alerts(session, to.channel, to.chat_id, ctx.now)
    if folded:
        await boards.add_reports(session, board.id, folded, ctx.now)
    row = outbox.enqueue(
        session,
        channel=to.channel,
        chat_id=to.chat_id,
        kind=OutboxKind.BOARD.value,
        reply=Reply(ctx.config.catalog.text(to.lang, "board.title", area="")),
        dedupe_key=f"board:{board.id}",
        extra={"board": board.id, "lang": to.lang},
        bot=to.bot,
    )
    await session.flush()
    board.message_row = row.id
    return board


async def refresh(
    session: AsyncSession, ctx: Context, board: GroupBoard, load: GroupLoad | None = None
) -> None:
    """Show the board as it is now: in its message if that is not sent yet, else in its edit
    still waiting, else in a new edit no sooner than the edit interval allows."""
    if board.message_row is None:  # its message row was deleted (retention): nothing to edit
        return
    reply = await render(session, ctx, board)
    message: dict[str, Any] = {"reply": reply.to_json(), "board": board.id, "lang": board.lang}
    if await boards.replace_if_pending(session, board.message_row, message):
        return
    edit: dict[str, Any] = {**message, "edit_of": board.message_row}
    if await boards.replace_if_pending(session, board.edit_row, edit):
        return
    if load is None:
        load = await load_of(session, ctx, board.channel, board.chat_id, board)
    interval = load.edit_interval if load is not None else timedelta(0)
    at = max(ctx.now, board.next_edit_at)
    row = outbox.enqueue(
        session,
        channel=board.channel,
        chat_id=board.chat_id,
        kind=OutboxKind.ALERT_EDIT.value,
        reply=reply,
        extra={"board": board.id, "lang": board.lang, "edit_of": board.message_row},
        bot=board.bot,
    )
    row.next_attempt_at = at
    await session.flush()
    board.edit_row = row.id
    board.next_edit_at = at + interval


async def close(session: AsyncSession, ctx: Context, board: GroupBoard) -> None:
    """The queue has cleared: the board's last edit says so and keeps the buttons of the
    tickets still unclaimed; new reports go out as single alerts again."""
    board.closed_at = ctx.now
    board.next_edit_at = ctx.now  # the last word goes out as soon as the group allows
    log.info("group %s: report board %s closed", board.chat_id, board.id)
    await refresh(session, ctx, board)


async def on_report_changed(session: AsyncSession, report: Report, ctx: Context) -> None:
    """A report was claimed, resolved or rejected: every board it is on shows it."""
    for board in await boards.boards_showing(session, report.id):
        await refresh(session, ctx, board)


async def sweep(session: AsyncSession, ctx: Context) -> int:
    """Close the open boards nothing went onto for a whole group window (the surge is over and
    no report came to close them); returns how many were closed."""
    closed = 0
    for board in await boards.all_open(session):
        window = _window(ctx, board.channel)
        since = ctx.now - timedelta(seconds=window[1] if window is not None else 0)
        if board.opened_at < since and await boards.added_since(session, board.id, since) == 0:
            await close(session, ctx, board)
            closed += 1
    return closed


# --- what the board says -------------------------------------------------------------------


async def render(session: AsyncSession, ctx: Context, board: GroupBoard) -> Reply:
    """The board's text and buttons: totals, counts by RW and category, the newest unclaimed
    tickets with a claim button each (urgent ones first); never a reporter's name."""
    catalog = ctx.config.catalog
    lang = board.lang

    def t(key: str, **params: object) -> str:
        return catalog.text(lang, key, **params)

    area = await session.get(Area, board.area_id) if board.area_id is not None else None
    zone = area.timezone if area else None
    shown = await boards.reports_on(session, board.id)
    waiting = [r for r, _ in shown if r.status == ReportStatus.NEW.value]
    waiting.sort(key=lambda r: not r.urgent)  # urgent first, then the newest (a stable sort)
    claimed = sum(1 for r, _ in shown if r.status == ReportStatus.CLAIMED.value)
    closed = len(shown) - len(waiting) - claimed
    by_rw: Counter[str] = Counter()
    for report, _ in shown:
        by_rw[await _rw_name(session, report) or t("board.no_rw")] += 1
    by_category = Counter(category_label(catalog, lang, r.category) for r, _ in shown)
    lines = [
        t("board.title", area=area.name if area else ""),
        t("board.closed" if board.closed_at is not None else "board.intro"),
        "",
        t("board.totals", total=len(shown), waiting=len(waiting), claimed=claimed, closed=closed),
        t("board.by_rw", counts=_counts(by_rw)),
        t("board.by_category", counts=_counts(by_category)),
    ]
    newest = waiting[: ctx.config.board_tickets]
    if newest:
        lines += ["", t("board.newest")]
    for report in newest:
        rw = await _rw_name(session, report)
        parts = [
            ("🚨 " if report.urgent else "") + report.ticket,
            category_label(catalog, lang, report.category),
            *([rw] if rw else []),
            format_clock(report.created_at, zone, ctx.now),
            short_description(description_text(catalog, lang, report.description))
            or t("alert.voice_only"),
        ]
        lines.append(" · ".join(parts))
    footer = ["", t("board.updated", time=format_clock(ctx.now, zone))]
    older = [r.ticket for r in waiting[len(newest) :]]
    if older:  # every other waiting ticket by its number, as many as the message holds
        room = ctx.config.capabilities(board.channel).text_limit - 200
        room -= sum(len(line) + 1 for line in [*lines, *footer])
        shown_older = _fitting(older, room - len(t("board.more", count=len(older))))
        lines += ["", t("board.also_waiting", tickets=", ".join(shown_older))]
        if len(shown_older) < len(older):
            lines.append(t("board.more", count=len(older) - len(shown_older)))
    lines += footer
    options = tuple(Option(t("board.claim", ticket=r.ticket), f"claim:{r.id}") for r in newest)
    return Reply("\n".join(lines), options=options)


def _fitting(tickets: list[str], room: int) -> list[str]:
    """The first tickets whose comma-separated list fits ``room`` characters."""
    used, out = 0, []
    for ticket in tickets:
        used += len(ticket) + 2
        if used > room:
            break
        out.append(ticket)
    return out


def _counts(counter: Counter[str]) -> str:
    return " · ".join(f"{name} {count}" for name, count in counter.most_common()) or "-"


def short_description(text: str | None) -> str:
    one_line = " ".join((text or "").split())
    if len(one_line) <= DESCRIPTION_CHARS:
        return one_line
    return one_line[: DESCRIPTION_CHARS - 1].rstrip() + "…"


async def _rw_name(session: AsyncSession, report: Report) -> str | None:
    """The RW the report's area is, or is in (an RT's parent); None above RW level."""
    area = await session.get(Area, report.area_id)
    if area is not None and area.level == AreaLevel.RT.value and area.parent_id is not None:
        area = await session.get(Area, area.parent_id)
    return area.name if area is not None and area.level == AreaLevel.RW.value else None

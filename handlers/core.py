"""The conversation core's entry points, called for every channel by the one inbound seam
(``bot.inbound``).

``handle`` takes one neutral ``Inbound`` message and returns an ``Outcome`` (replies for the
chat it came from, a notice for a pressed button, what was recorded); it sends nothing and the
caller commits. ``process`` opens the session, commits, and retries the whole message when a
concurrent message of the same user got there first. Messages to other people are outbox rows
written in the same transaction.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm.exc import StaleDataError

# Importing the flow modules registers their states' prompt/expects/fallback functions.
from handlers import (  # noqa: F401
    account,
    lifecycle,
    onboarding,
    open311,
    patrol,
    personal,
    problems,
    report,
    staff,
)
from handlers.actions import parse_button
from handlers.commands import parse_command
from handlers.context import Context
from handlers.dispatch import run_command
from handlers.group import group_command, handle_group
from handlers.options import match_option
from handlers.render import format_size
from handlers.states import State
from handlers.turn import EXPECTS, FALLBACKS, Turn
from handlers.types import ChatKind, Inbound, Media, MediaProblem, Outcome
from storage import contacts, conversations, inbound
from storage.drafts import media_refs

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
# States answered before consent: the consent question itself, erasing, and an officer's note.
NO_CONSENT_NEEDED = frozenset({State.CONSENT, State.ERASE_CONFIRM, State.STAFF_NOTE})
RETRY_SQLSTATES = frozenset({"40001", "40P01"})  # serialization failure, deadlock (PostgreSQL)
BeforeCommit = Callable[[AsyncSession, Outcome], Awaitable[None]]

__all__ = ["MAX_ATTEMPTS", "BeforeCommit", "Context", "handle", "process"]


async def process(
    sessions: async_sessionmaker[AsyncSession],
    msg: Inbound,
    ctx: Context,
    *,
    attempts: int = MAX_ATTEMPTS,
    before_commit: BeforeCommit | None = None,
) -> Outcome:
    """Handle the message in its own transaction (``before_commit`` may add to it, e.g. the
    replies of a channel whose replies are queued, as outbox rows); retry it whole on a
    concurrent-update race."""
    for attempt in range(1, attempts + 1):
        try:
            async with sessions() as session:
                outcome = await handle(session, msg, ctx)
                if before_commit is not None:
                    await before_commit(session, outcome)
                await session.commit()
                return outcome
        except (StaleDataError, IntegrityError, DBAPIError) as exc:
            if not _retryable(exc) or attempt >= attempts:
                raise
            log.debug("retrying message %s (attempt %d): %s", msg.message_id, attempt, exc)
    raise AssertionError("unreachable")  # pragma: no cover


def _retryable(exc: Exception) -> bool:
    if isinstance(exc, StaleDataError | IntegrityError):
        return True
    orig = getattr(exc, "orig", None)
    code = getattr(orig, "pgcode", None) or getattr(orig, "sqlstate", None)
    return code in RETRY_SQLSTATES


def without_nul(msg: Inbound) -> Inbound:
    """Drop NUL characters from what people typed: PostgreSQL text cannot hold them."""
    fields: dict[str, Any] = {}
    for name in ("text", "display_name", "chat_title"):
        value = getattr(msg, name)
        if isinstance(value, str) and "\x00" in value:
            fields[name] = value.replace("\x00", "")
    location = msg.location
    if location is not None and "\x00" in f"{location.address}{location.label}":
        fields["location"] = replace(
            location,
            address=location.address.replace("\x00", "") if location.address else None,
            label=location.label.replace("\x00", "") if location.label else None,
        )
    return replace(msg, **fields) if fields else msg


async def handle(session: AsyncSession, msg: Inbound, ctx: Context) -> Outcome:
    """One message in, the answer out; the caller commits (see ``process``)."""
    msg = without_nul(msg)
    if msg.chat_kind is ChatKind.GROUP:
        return await _handle_group(session, msg, ctx)
    channel = str(msg.channel)
    contact, conversation = await conversations.load_for_update(
        session, channel, msg.chat_id, msg.user_id
    )
    if not await _claim(session, msg, ctx):
        return Outcome(duplicate=True)
    returning = False
    if contact is None:
        contact = await contacts.create(
            session,
            channel=channel,
            external_id=msg.user_id,
            language=_first_language(msg, ctx),
            now=ctx.now,
        )
        returning = True
    if conversation is None:
        conversation = await conversations.create(
            session, channel, msg.chat_id, msg.user_id, ctx.now
        )
    contacts.record_inbound(
        contact, display_name=msg.display_name, phone=msg.phone, now=ctx.now, bot=ctx.bot
    )
    before = media_refs(conversation.draft)  # the files the draft held
    turn = Turn(
        session=session,
        msg=msg,
        ctx=ctx,
        contact=contact,
        conversation=conversation,
        state=State.parse(conversation.state),
        draft=copy.deepcopy(conversation.draft or {}),
    )
    if returning and await personal.was_erased(turn, contact):
        contact.opted_out_at = ctx.now  # erased before: announcements only when asked again
    await run_turn(turn)
    if turn.outcome.recorded.erased:  # contact and conversation are gone, with their files
        await session.flush()
        turn.outcome.outbox_ids = [row.id for row in turn.outbox]
        turn.outcome.recorded.state = turn.state
        turn.outcome.media_dropped = sorted(before | set(turn.outcome.media_dropped))
        return turn.outcome
    await open311.link_pending(turn)  # reports filed for this phone number through the API
    if turn.outcome.replies:
        last = turn.outcome.replies[-1]
        turn.draft["opts"] = [[o.label, o.data] for o in last.options]
    conversations.save(conversation, turn.state.value, turn.draft, ctx.now)
    await session.flush()
    turn.outcome.outbox_ids = [row.id for row in turn.outbox]
    turn.outcome.recorded.state = turn.state
    after = media_refs(turn.draft) if before or msg.media else set()
    turn.outcome.media_kept = [m.ref for m in msg.media if m.stored and m.ref in after]
    turn.outcome.media_dropped = sorted(before - after)
    return turn.outcome


async def run_turn(turn: Turn) -> None:
    """Expire an old draft, then: staff button, stale button, over-long text, command, a typed
    patrol answer, or the state's turn."""
    _expire_idle_draft(turn)
    msg = turn.msg
    if parse_button(msg.button) is not None:  # an alert's button, pressed in a private chat
        await staff.private_button(turn)
        return
    if patrol.is_patrol_button(msg.button):  # Hadir / Aman / Lapor on a patrol message
        await patrol.private_button(turn)
        return
    if lifecycle.parse_answer(msg.button) is not None:  # Sudah beres / Belum on the news
        await lifecycle.button(turn)
        return
    if problems.is_problem_button(msg.button):  # Masalah…, Terima/Abaikan, an action's Selesai
        await problems.private_button(turn, msg.button or "")
        return
    if msg.button is not None:
        if msg.button not in {data for _label, data in turn.offered()}:
            turn.outcome.notice = turn.t("common.stale_button")
            return
        turn.option = msg.button
    refused = next((m for m in msg.media if m.problem is not None), None)
    if refused is not None:  # nothing of the file was stored: say so, ask the question again
        turn.say(media_refusal(turn, refused))
        await turn.reprompt_if_busy()
        return
    text = turn.text
    if text is not None and len(text) > turn.config.max_text_length:
        turn.say(turn.t("common.too_long", limit=turn.config.max_text_length, length=len(text)))
        await turn.reprompt_if_busy()
        return
    if turn.option is None and text is not None and not msg.media and msg.location is None:
        cmd = parse_command(text, bot_username=turn.ctx.bot_username)
        option = match_option(turn.offered(), text)
        if cmd is not None and (cmd.slash or option is None):
            await run_command(turn, cmd)
            return
        turn.option = await patrol.typed_answer(turn, text, option) or option
        if turn.option is None:  # "selesai" from an action's owner
            turn.option = await problems.typed_answer(turn, text)
    if not turn.consented and turn.state not in NO_CONSENT_NEEDED:
        await onboarding.begin(turn)
        return
    if patrol.is_patrol_button(turn.option):  # "hadir", "aman" or its number, typed
        await patrol.answer(turn, turn.option or "")
        return
    if problems.is_problem_button(turn.option):  # a problem option's number, or "selesai"
        await problems.private_button(turn, turn.option or "")
        return
    if not await EXPECTS[turn.state](turn):
        await FALLBACKS[turn.state](turn)


def media_refusal(turn: Turn, item: Media) -> str:
    """Why the file was not taken, politely, with the limit for its kind when it was too big."""
    if item.problem is MediaProblem.TOO_LARGE and item.limit is not None:
        return turn.t("media.too_large", limit=format_size(item.limit))
    if item.problem is MediaProblem.NOT_ACCEPTED:
        return turn.t("media.not_accepted")
    return turn.t("media.unavailable")


def _expire_idle_draft(turn: Turn) -> None:
    """A report (or erase question, or note request) left alone too long starts over, politely."""
    if not (turn.state.in_report or turn.state in (State.ERASE_CONFIRM, State.STAFF_NOTE)):
        return
    idle = timedelta(minutes=turn.config.draft_idle_minutes)
    if turn.now - turn.conversation.updated_at <= idle:
        return
    if turn.state is State.STAFF_NOTE:
        staff.expire_note(turn)
    if turn.draft.get("report"):
        turn.say(turn.t("report.expired", minutes=turn.config.draft_idle_minutes))
    turn.state = State.IDLE
    turn.draft = {}


def _first_language(msg: Inbound, ctx: Context) -> str:
    """A new contact speaks the deployment's default, or English if their app is in English."""
    if (msg.language_code or "").lower().startswith("en") and "en" in ctx.config.catalog.languages:
        return "en"
    return ctx.config.default_language


async def _claim(session: AsyncSession, msg: Inbound, ctx: Context) -> bool:
    """Record the message's id as handled; False for a redelivery (no id: always new)."""
    if msg.message_id is None:
        return True
    return await inbound.claim(session, str(msg.channel), msg.message_id, ctx.now)


async def _handle_group(session: AsyncSession, msg: Inbound, ctx: Context) -> Outcome:
    cmd = group_command(msg, ctx)
    if cmd is None and msg.button is None:
        return Outcome()  # chatter in a group is none of the bot's business
    if not await _claim(session, msg, ctx):
        return Outcome(duplicate=True)
    outcome = await handle_group(session, msg, ctx, cmd)
    await session.flush()
    return outcome

"""The one inbound seam: every channel hands each neutral message to ``on_inbound``.

Whatever the channel, a message takes the same way in and the same effects out. ``on_inbound``
runs the core (``handlers.core.process``) in one transaction, then what follows the commit: the
dispatcher is woken for new outbox rows, the scheduler syncs at once when a reminder or patrol
rotation changed, and the message is counted (``ktn_updates_total``) and timed
(``ktn_handling_seconds``). When the message cannot be processed at all, nothing is recorded and
the outcome is a short apology in the sender's language (``Outcome.failed``), logged once; the
channel delivers it as it can (Telegram as a message, Twilio in the webhook's answer).

What stays with a channel is what only it knows: checking signatures, translating updates,
downloading media (``prepare``, into the media store), and delivering the outcome. The files
``prepare`` stored are held until the core is done; then the seam releases them, and a file the
core did not keep (no consent yet, not in a report flow, a cancelled draft) is deleted at once
unless something else refers to it (``bot.media.library``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.replies import coalesce
from bot.database import Database
from bot.delivery.waker import Notifier
from bot.media.intake import held
from bot.media.library import MediaLibrary
from bot.metrics import Metrics
from bot.roles.scheduler import ReminderScheduler
from handlers.config import CoreConfig
from handlers.context import Context
from handlers.core import BeforeCommit, process
from handlers.types import Inbound, Outcome, Reply
from storage import contacts, outbox
from storage.inbound import handled
from storage.outbox import ANSWERED_AT, FORGET
from storage.types import DEFAULT_BOT, OutboxKind, utcnow

log = logging.getLogger(__name__)

Prepare = Callable[[Inbound], Awaitable[Inbound]]


@dataclass(frozen=True, slots=True)
class QueuedReplies:
    """How a channel's replies travel, declared by the channel: queued, not sent by it.

    A channel whose webhook must be answered at once (Twilio waits 15 s and does not retry)
    declares that its replies are queued: the seam writes them as outbox rows in the core's own
    transaction, so a reply is committed with what it answers and goes out through the
    dispatcher (rate limit, retries, windows, splitting) like every other message. Without a
    declaration the replies come back in the outcome and the channel sends them itself
    (Telegram answers in the chat at once, and hands what it could not send to
    ``make_on_undelivered``).

    A declaration rather than a ``before_commit`` hook the channel fills in: the channel says
    what it needs, not how, and the seam keeps the outbox rules in one place (the reply's kind,
    language and dedupe key; a button's notice said as text where nothing can show it; the
    same ``coalesce`` both channels use). A hook would run adapter code inside the core's
    transaction and keep those rules in the adapter. Only the length of one message is the
    channel's: ``limit`` as ``measure`` counts it.
    """

    limit: int
    measure: Callable[[str], int] = len


class OnInbound(Protocol):
    """The seam as a channel calls it."""

    async def __call__(self, inbound: Inbound, /, *, prepare: Prepare | None = None) -> Outcome:
        """Handle one message; ``prepare`` (e.g. downloading its media) runs first, unless the
        message was handled already (a redelivery costs no download)."""
        ...


def make_on_inbound(
    sessions: async_sessionmaker[AsyncSession],
    core: CoreConfig,
    dispatcher: Notifier,
    *,
    metrics: Metrics,
    scheduler: ReminderScheduler | None = None,
    bot_key: str = DEFAULT_BOT,
    bot_username: Callable[[], str | None] = lambda: None,
    queued: QueuedReplies | None = None,
    clock: Callable[[], datetime] = utcnow,
    media: MediaLibrary | None = None,
) -> OnInbound:
    """The seam for one channel (and, on Telegram, one bot): ``bot_key`` names the bot the
    messages came to, ``bot_username`` its name once known, ``queued`` how its replies travel,
    ``media`` the store ``prepare`` downloads into (its holds are released here)."""

    async def run_core(inbound: Inbound, prepare: Prepare | None) -> Outcome:
        stored: list[str] = []  # files prepare downloaded: held until the core is done
        if prepare is not None:
            if inbound.message_id is not None:  # checked again in the core's transaction
                async with sessions() as session:
                    if await handled(session, str(inbound.channel), inbound.message_id):
                        return Outcome(duplicate=True)
            prepared = await prepare(inbound)
            stored = held(inbound, prepared)
            inbound = prepared
        ctx = Context(config=core, now=clock(), bot_username=bot_username(), bot=bot_key)
        before_commit = (
            None if queued is None else _queue_replies(inbound, queued, core, bot_key, ctx.now)
        )
        outcome: Outcome | None = None
        try:
            outcome = await process(sessions, inbound, ctx, before_commit=before_commit)
        finally:
            # After the commit (or the failure): a file the core did not keep, or that left a
            # draft (cancelled, expired), and that nothing else refers to is deleted now; a
            # report's, a draft's or a broadcast's file stays.
            if media is not None:
                if stored:
                    await media.release(stored, outcome.media_kept if outcome else ())
                if outcome is not None and outcome.media_dropped:
                    await media.release(outcome.media_dropped, held=False)
        return outcome

    async def after_commit(outcome: Outcome) -> None:
        if outcome.outbox_ids:
            dispatcher.notify()
        if outcome.schedules_changed and scheduler is not None and scheduler.running:
            try:
                await scheduler.sync()
            except Exception as exc:  # committed all the same; the next periodic sync catches up
                log.warning("scheduler sync after a change failed: %s", type(exc).__name__)

    async def on_inbound(inbound: Inbound, /, *, prepare: Prepare | None = None) -> Outcome:
        started = time.perf_counter()
        channel = str(inbound.channel)
        try:
            outcome = await run_core(inbound, prepare)
        except Exception as exc:  # the sender hears of it; the log gets the kind, not content
            log.error(
                "%s message %s could not be processed: %s",
                channel,
                inbound.message_id,
                type(exc).__name__,
            )
            outcome = failure_outcome(core, inbound)
        else:
            await after_commit(outcome)
        metrics.handling_seconds.labels(channel).observe(time.perf_counter() - started)
        result = "error" if outcome.failed else "duplicate" if outcome.duplicate else "ok"
        metrics.updates.labels(channel, result).inc()
        return outcome

    return on_inbound


def _queue_replies(
    inbound: Inbound, queued: QueuedReplies, core: CoreConfig, bot_key: str, now: datetime
) -> BeforeCommit:
    """The core's replies as outbox rows, in the core's transaction, in the reader's language."""

    async def queue(session: AsyncSession, outcome: Outcome) -> None:
        if outcome.duplicate:
            return
        replies = coalesce(outcome.replies, limit=queued.limit, measure=queued.measure)
        if not replies and outcome.notice:  # nothing shows a notice on a pressed option: say it
            replies = [Reply(outcome.notice)]
        if not replies:
            return
        channel = str(inbound.channel)
        contact = await contacts.find(session, channel, inbound.user_id)
        lang = (contact.language if contact else None) or core.default_language
        extra: dict[str, object] = {"lang": lang}
        if outcome.forget_replies:  # personal data: the row goes once sent (bot.delivery)
            extra[FORGET] = True
        if contact is None:  # erased: the window is the message's, not a contact's
            extra[ANSWERED_AT] = now.isoformat()
        rows = [
            outbox.enqueue(
                session,
                channel=channel,
                chat_id=inbound.chat_id,
                kind=OutboxKind.REPLY,
                reply=reply,
                contact_id=contact.id if contact else None,
                dedupe_key=(
                    None
                    if inbound.message_id is None
                    else f"{OutboxKind.REPLY}:{inbound.message_id}:{index}"
                ),
                extra=extra,
                bot=bot_key,
            )
            for index, reply in enumerate(replies)
        ]
        await session.flush()
        outcome.outbox_ids.extend(row.id for row in rows)

    return queue


def failure_outcome(core: CoreConfig, inbound: Inbound) -> Outcome:
    """'Sorry, not saved, send it again' in the sender's language, when processing failed."""
    lang = (inbound.language_code or "")[:2].lower()
    text = core.catalog.text(
        lang if lang in core.catalog.languages else core.default_language, "common.failed"
    )
    return Outcome(replies=[Reply(text)], notice=text, failed=True)


def make_on_undelivered(
    db: Database, dispatcher: Notifier, bot_key: str = DEFAULT_BOT
) -> Callable[[int, Reply], Awaitable[None]]:
    """A direct reply Telegram would not take (5xx, timeouts, long flood waits) goes durable,
    through the bot that should have sent it."""

    async def on_undelivered(chat_id: int, reply: Reply) -> None:
        async with db.sessions() as session:
            outbox.enqueue(
                session,
                channel="telegram",
                chat_id=chat_id,
                kind=OutboxKind.REPLY,
                reply=reply,
                bot=bot_key,
            )
            await session.commit()
        dispatcher.notify()

    return on_undelivered

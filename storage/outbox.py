"""The outbox: messages to other people, written in the transaction that caused them.

A dispatcher sends pending rows later; this module only adds them. The payload is
``{"reply": Reply.to_json(), **extra}`` so any adapter can rebuild the message.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Outbox
from storage.types import OutboxStatus, utcnow


class JsonReply(Protocol):
    """Anything that serialises itself like ``handlers.types.Reply``."""

    def to_json(self) -> dict[str, Any]: ...


def enqueue(
    session: AsyncSession,
    *,
    channel: str,
    chat_id: int,
    kind: str,
    reply: JsonReply,
    contact_id: int | None = None,
    report_id: int | None = None,
    dedupe_key: str | None = None,
    extra: dict[str, Any] | None = None,
    bot: str = "default",
) -> Outbox:
    """Add a pending outbox row to the session (the id is set at the next flush).

    A chat id that is not an int is refused here, in the caller's transaction: SQLite would
    store it as text and the row could never be sent."""
    if type(chat_id) is not int:
        raise TypeError(f"outbox chat_id must be an int, not {type(chat_id).__name__}")
    payload: dict[str, Any] = dict(extra or {})
    if "reply" in payload:
        raise ValueError("extra must not contain 'reply'")
    payload["reply"] = reply.to_json()
    row = Outbox(
        channel=str(channel),
        bot=bot,
        chat_id=chat_id,
        contact_id=contact_id,
        kind=str(kind),
        payload=payload,
        report_id=report_id,
        dedupe_key=dedupe_key,
        status=OutboxStatus.PENDING.value,
        attempts=0,
        next_attempt_at=utcnow(),
    )
    session.add(row)
    return row


async def scrub_name(
    session: AsyncSession,
    report_ids: Sequence[int],
    name: str,
    replacement: Callable[[str | None], str],
) -> int:
    """Replace a person's name in every stored message about these reports (sent or not), so
    an erased reporter's name is neither sent later nor kept; ``replacement(lang)`` gives the
    word to put instead. Returns how many rows changed. The caller commits."""
    if not report_ids or len(name.strip()) < 3:
        return 0
    changed = 0
    rows = await session.scalars(select(Outbox).where(Outbox.report_id.in_(report_ids)))
    for row in rows:
        reply = row.payload.get("reply") or {}
        text = str(reply.get("text") or "")
        if name not in text:
            continue
        lang = row.payload.get("lang")
        new_reply = {**reply, "text": text.replace(name, replacement(lang if lang else None))}
        row.payload = {**row.payload, "reply": new_reply}
        changed += 1
    return changed


async def release_claims(session: AsyncSession, keep: str) -> int:
    """Put rows other senders claimed back to pending; returns how many. Caller commits.

    Only for a new sole sender (worker id ``keep``): the rows were claimed by one that is gone.
    """
    result = await session.execute(
        update(Outbox)
        .where(Outbox.status == OutboxStatus.SENDING, Outbox.claimed_by != keep)
        .values(status=OutboxStatus.PENDING, lease_until=None)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def payload_of(session: AsyncSession, row_id: int) -> dict[str, Any] | None:
    """A row's payload as it is now (with what its sender recorded), or None if it is gone."""
    payload = await session.scalar(select(Outbox.payload).where(Outbox.id == row_id))
    return dict(payload) if isinstance(payload, dict) else None

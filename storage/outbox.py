"""The outbox: messages to other people, written in the transaction that caused them.

A dispatcher sends pending rows later; this module only adds them. The payload is
``{"reply": Reply.to_json(), **extra}`` so any adapter can rebuild the message.
"""

from __future__ import annotations

from typing import Any, Protocol

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
    """Add a pending outbox row to the session (the id is set at the next flush)."""
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

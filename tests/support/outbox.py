"""An outbox row as the dispatcher hands it to a sender (for tests that drive a sender directly)."""

from __future__ import annotations

from bot.delivery.dispatcher import Envelope
from storage.models import Outbox


def envelope_of(row: Outbox) -> Envelope:
    """The row as a claim would see it, saved progress included."""
    return Envelope(
        row.id,
        row.channel,
        row.bot,
        row.chat_id,
        row.kind,
        row.payload,
        row.contact_id,
        row.attempts,
    )

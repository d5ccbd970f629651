"""Twilio's delivery statuses: what they mean for an outbox row, and which may follow which."""

from __future__ import annotations

from storage.types import OutboxStatus

# Twilio's MessageStatus -> the outbox status it means (queued/accepted/sending change nothing).
TWILIO_STATUS: dict[str, OutboxStatus] = {
    "sent": OutboxStatus.SENT,
    "delivered": OutboxStatus.DELIVERED,
    "read": OutboxStatus.READ,
    "undelivered": OutboxStatus.UNDELIVERED,
    "failed": OutboxStatus.FAILED,
    "canceled": OutboxStatus.FAILED,
}


# Which recorded statuses each new status may replace: sent -> delivered -> read, or
# sent -> undelivered/failed. Nothing moves back, and a failed or undelivered row stays so.
STATUS_MOVES: dict[OutboxStatus, tuple[OutboxStatus, ...]] = {
    OutboxStatus.SENT: (),
    OutboxStatus.DELIVERED: (OutboxStatus.SENT,),
    OutboxStatus.READ: (OutboxStatus.SENT, OutboxStatus.DELIVERED),
    OutboxStatus.UNDELIVERED: (OutboxStatus.SENT,),
    OutboxStatus.FAILED: (OutboxStatus.SENT,),
}


ERROR_HINTS: dict[int, str] = {
    63016: "outside the 24-hour window: a Content Template is needed",
    63003: "not a WhatsApp number",
    63024: "invalid recipient",
    63018: "WhatsApp rate limit",
    63049: "Meta did not deliver this message",
    21610: "recipient unsubscribed",
}


def may_move(current: str, new: OutboxStatus) -> bool:
    """Whether a callback's status may replace the recorded one (forward only)."""
    return current in STATUS_MOVES.get(new, ())


def error_text(code: str | None) -> str | None:
    """'twilio 63016: outside the 24-hour window…' for a callback's ErrorCode."""
    if not code:
        return None
    hint = ERROR_HINTS.get(int(code)) if code.isdigit() else None
    return f"twilio {code}: {hint}" if hint else f"twilio {code}"

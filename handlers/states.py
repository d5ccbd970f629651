"""The named states of a conversation (stored in ``conversations.state``)."""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    """Where a user stands; see report_flow.md for the diagram."""

    IDLE = "idle"
    CONSENT = "consent"
    AREA = "area"
    CATEGORY = "category"
    DUPLICATE = "duplicate"
    DESCRIPTION = "description"
    LOCATION = "location"
    PHOTO = "photo"
    ANONYMOUS = "anonymous"
    SUMMARY = "summary"
    EDIT = "edit"
    ERASE_CONFIRM = "erase_confirm"
    STAFF_NOTE = "staff_note"
    REOPEN_REASON = "reopen_reason"  # the reporter's "Belum selesai": why
    # --- coordinators: broadcasts ---
    BROADCAST_AREA = "broadcast_area"
    BROADCAST_AUDIENCE = "broadcast_audience"
    BROADCAST_TEXT = "broadcast_text"
    BROADCAST_CONFIRM = "broadcast_confirm"
    # --- end coordinators: broadcasts ---

    @classmethod
    def parse(cls, value: str | None) -> State:
        """The state stored in the database; an unknown value (an older version's) is IDLE."""
        try:
            return cls(value or cls.IDLE)
        except ValueError:
            return cls.IDLE

    @property
    def in_report(self) -> bool:
        """Whether the state belongs to the report flow (its draft can expire)."""
        return self in REPORT_STATES


REPORT_STATES = frozenset(
    {
        State.CATEGORY,
        State.DUPLICATE,
        State.DESCRIPTION,
        State.LOCATION,
        State.PHOTO,
        State.ANONYMOUS,
        State.SUMMARY,
        State.EDIT,
    }
)

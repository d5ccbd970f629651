"""The shape of a conversation's draft (``Conversation.draft``, a JSON column).

The core keeps here what a conversation needs between two messages: the options last offered,
the report or broadcast being written, where to go back to. The keys are declared once, here
where both the model and the core may import them; a draft holds only the keys its flow has
reached so far (``total=False``). It is JSON read back from the database, so the core still
checks what it reads: a draft written by an older version, or damaged, must not break a turn.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NotRequired, Required, TypedDict

STORE_PREFIX = "sha256:"  # a ref into ktn-bot's media store (``storage.media``)


class MediaJson(TypedDict):
    """A file the user sent (``handlers.types.Media.to_json``): ``ref`` is the media store's
    ``sha256:<hex>`` once downloaded."""

    kind: str
    ref: str
    content_type: str | None
    size: NotRequired[int | None]
    # The channel's own copy, deletable there (a Twilio media URL): erasing deletes it too.
    origin: NotRequired[str]


class ReportDraft(TypedDict, total=False):
    """The report being written, field by field (``handlers.report``)."""

    media: Required[list[MediaJson]]
    urgent: bool
    forced_urgent: bool  # /darurat: urgent whatever the category
    category: str
    description: str  # "" for a voice note alone
    lat: float | None
    lon: float | None
    address: str | None
    anonymous: bool


class DuplicateDraft(TypedDict):
    """A similar open report offered to follow instead (``handlers.report``)."""

    id: int
    ticket: str
    when: str  # already written in the area's time zone
    status: str


class BroadcastDraft(TypedDict, total=False):
    """The announcement a coordinator is preparing (``handlers.broadcast``)."""

    area_id: int
    audience: str  # storage.broadcasts.Audience
    text: str
    photo: MediaJson


# A note an officer was asked for: the action waiting for it (``handlers.staff``). "return" is a
# keyword, hence the functional form.
StaffNoteDraft = TypedDict(
    "StaffNoteDraft",
    {
        "action": str,  # handlers.actions.Action: resolve, reject or merge
        "report_id": int,
        "ticket": str,
        "return": str,  # the state the note interrupted
        "note": NotRequired[str],  # given before the closure photo
        "photo": NotRequired[MediaJson],  # the closure photo, given before the note
    },
)


class ReopenDraft(TypedDict):
    """A reporter's "Belum selesai" waiting for its reason (``handlers.lifecycle``)."""

    report_id: int
    ticket: str
    back: str  # the state the question interrupted


# What a conversation remembers between two messages: only the keys its flows reached.
Draft = TypedDict(
    "Draft",
    {
        "opts": list[list[str]],  # the options of the last reply, [label, data] each
        "report": ReportDraft,
        "editing": bool,  # a report field is being changed from the summary
        "duplicate": DuplicateDraft,
        "broadcast": BroadcastDraft,
        "staff_note": StaffNoteDraft,
        "reopen": ReopenDraft,
        "after": str,  # the intent to continue with once onboarding is done
        "return": str,  # the state to go back to (erasing asked, a command in between)
        "area_code": str,  # the village given with /start, checked after consent
        "area_matches": list[list[str]],  # the villages offered, [label, data] each
    },
    total=False,
)


def media_refs(draft: object) -> set[str]:
    """The media store refs a draft holds, wherever its flows keep files (a report's media, a
    broadcast's photo, ...): every ``{"kind", "ref"}`` object whose ref is a store ref.

    Read generically, so a flow that keeps files in a new place is covered without a change
    here; a damaged draft yields what can be read."""
    return {
        ref
        for item in _files(draft)
        if isinstance(ref := item.get("ref"), str) and ref.startswith(STORE_PREFIX)
    }


def media_origins(draft: object) -> set[str]:
    """The channel's own copies (``MediaJson.origin``, a Twilio media URL) of a draft's files,
    read as generically as ``media_refs``."""
    return {origin for item in _files(draft) if isinstance(origin := item.get("origin"), str)}


def _files(value: object) -> Iterator[dict[str, object]]:
    """Every ``{"kind", ...}`` object in the draft: a file, wherever a flow keeps it."""
    if isinstance(value, dict):
        if "kind" in value:
            yield value
        for item in value.values():
            yield from _files(item)
    elif isinstance(value, list):
        for item in value:
            yield from _files(item)

"""What both channels do with a message's replies before rendering them.

``coalesce`` joins plain texts into the reply that follows them, so that "Ringkasan", "Kategori:
Keamanan" and the question with its options arrive as one message (one notification), not
three. The rule is the same on every channel; only how long a message may be, and how its length
is counted, is the channel's: Telegram allows 4096 characters, a WhatsApp body 1600 UTF-16 units.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from handlers.types import Reply

SEPARATOR = "\n\n"


def is_plain(reply: Reply) -> bool:
    """Only words: no options, medium, document, pin or location request to carry."""
    return not (
        reply.options or reply.media or reply.document or reply.location or reply.ask_location
    )


def coalesce(
    replies: Sequence[Reply], *, limit: int, measure: Callable[[str], int] = len
) -> list[Reply]:
    """Join each plain text into the reply after it while the joined text fits in ``limit``
    (as ``measure`` counts it); a reply with a medium keeps its caption to itself. A reply that
    carries anything besides words is never merged away, so nothing but separators is added or
    lost."""
    merged: list[Reply] = []
    for reply in replies:
        prev = merged[-1] if merged else None
        if (
            prev is not None
            and is_plain(prev)
            and reply.media is None
            and measure(prev.text) + measure(reply.text) + len(SEPARATOR) <= limit
        ):
            merged[-1] = replace(reply, text=f"{prev.text}{SEPARATOR}{reply.text}".strip())
        else:
            merged.append(reply)
    return merged

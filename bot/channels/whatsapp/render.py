"""WhatsApp rendering, pure: a ``Reply`` as WhatsApp bodies.

Options as numbered lines (where they do not go as buttons: ``content.py``), a location as a
maps link, at most 1600 characters a body, the parts of a longer one numbered "(1/2)", "(2/2)";
``template_variables`` fills a Content Template outside the 24-hour window.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bot.channels.whatsapp.capabilities import WHATSAPP
from handlers.i18n import Catalog
from handlers.types import (
    Location,
    Media,
    Option,
    Reply,
)

# Twilio's limit for one WhatsApp body (1600, capabilities.py), counted here in UTF-16 units,
# safely.
BODY_LIMIT = WHATSAPP.text_limit


TEMPLATE_VARIABLE_LIMIT = 900  # Meta's body limit is 1024 for the whole template


def numbered(options: Sequence[Option], catalog: Catalog, lang: str) -> str:
    """'1. Keamanan' lines and 'Balas 1-6' (the core accepts the number or the word)."""
    lines = [f"{i}. {o.label}" for i, o in enumerate(options, 1)]
    span = "1" if len(options) == 1 else f"1-{len(options)}"
    return "\n".join(lines) + "\n\n" + catalog.text(lang, "whatsapp.choose", range=span)


def location_text(location: Location) -> str:
    """'📍 lat, lon (maps link)', after the place's name and address when known."""
    lat, lon = f"{location.latitude:.6f}".rstrip("0"), f"{location.longitude:.6f}".rstrip("0")
    lat, lon = lat.rstrip("."), lon.rstrip(".")
    line = f"📍 {lat}, {lon} (https://maps.google.com/?q={lat},{lon})"
    named = " — ".join(p for p in (location.label, location.address) if p)
    return f"{named}\n{line}" if named else line


def render_text(reply: Reply, catalog: Catalog, lang: str, *, numbered_options: bool = True) -> str:
    """The whole text of a reply as WhatsApp shows it (before splitting); its options as
    numbered lines unless ``numbered_options`` is false (they go as buttons, or a number
    typed back would not name them: only a conversation's own reply offers what it matches)."""
    parts = [reply.text.strip()]
    if reply.location is not None:
        parts.append(location_text(reply.location))
    if reply.options and numbered_options:
        parts.append(numbered(reply.options, catalog, lang))
    return "\n\n".join(p for p in parts if p)


def public_media_url(media: Media | None, private_prefixes: Sequence[str]) -> str | None:
    """A media ref Twilio can fetch itself: an http(s) URL that is not one of Twilio's own
    (those need our credentials) nor a file in our media store."""
    if media is None or not media.ref.startswith(("https://", "http://")):
        return None
    if any(prefix and media.ref.startswith(prefix) for prefix in private_prefixes):
        return None
    return media.ref


def utf16_units(text: str) -> int:
    """Length as Twilio's limits count it in the worst case (emoji are two units)."""
    return len(text.encode("utf-16-le")) // 2


def _fit(text: str, limit: int) -> int:
    """The largest index i such that text[:i] has at most ``limit`` UTF-16 units."""
    units = 0
    for i, ch in enumerate(text):
        units += 2 if ord(ch) > 0xFFFF else 1
        if units > limit:
            return i
    return len(text)


def split_body(text: str, limit: int = BODY_LIMIT) -> list[str]:
    """Split a long body into messages of at most ``limit`` units, in order: at a paragraph
    break if one is in the second half of the piece, else a line break, else a space, else
    hard. Nothing but the whitespace at the cuts is lost."""
    rest = text.strip()
    parts: list[str] = []
    while utf16_units(rest) > limit:
        end = _fit(rest, limit)
        head = rest[: end + 1]  # a separator right after the limit still allows a full piece
        cut = -1
        for sep in ("\n\n", "\n", " "):
            pos = head.rfind(sep, 0, end + 1)
            if pos >= end // 2:
                cut = pos
                break
        if cut <= 0:
            cut = max(head.rfind("\n", 0, end + 1), head.rfind(" ", 0, end + 1))
        if cut <= 0:
            cut = end
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        parts.append(rest)
    return parts


def _mark(index: int, count: int) -> str:
    return f"\n({index}/{count})"


def message_parts(text: str, limit: int = BODY_LIMIT) -> list[str]:
    """The WhatsApp messages for one body: ``split_body`` pieces, each ending in "(i/n)" on its
    own line when there are several, all within ``limit`` with the mark."""
    if utf16_units(text.strip()) <= limit:
        return split_body(text, limit)
    digits = 1
    while True:  # room for the widest mark of this many digits
        pieces = split_body(text, limit - utf16_units(_mark(10**digits - 1, 10**digits - 1)))
        if len(pieces) < 10**digits:
            return [piece + _mark(i, len(pieces)) for i, piece in enumerate(pieces, 1)]
        digits += 1


def _flat(text: str) -> str:
    """One line, as template variables must be (no newlines, tabs or runs of spaces)."""
    return " ".join(text.split())


def _clip(text: str, limit: int = TEMPLATE_VARIABLE_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def template_variables(text: str, payload: Mapping[str, Any]) -> dict[str, str]:
    """Content Template variables for a message outside the window (see README):
    {{1}} the first line, {{2}} the rest on one line, {{3}} the ticket; "-" when empty."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = _clip(_flat(lines[0])) if lines else "-"
    rest = _clip(" · ".join(_flat(line) for line in lines[1:])) or "-"
    ticket = str(payload.get("ticket") or "-")
    return {"1": first, "2": rest, "3": ticket}

"""WhatsApp through Twilio, the pure part: webhook forms in, message bodies out.

Nothing here does I/O. ``to_inbound`` turns a (signature-checked) Twilio webhook form into the
core's neutral ``Inbound``; ``render_text`` and ``message_parts`` turn a ``Reply`` into WhatsApp
bodies (options as numbered lines, a location as a maps link, at most 1600 characters each, the
parts of a longer one numbered "(1/2)", "(2/2)");
``template_variables`` fills a Content Template outside the 24-hour window; ``STATUS_MOVES`` says
which delivery status may follow which. The I/O lives in ``bot.whatsapp_sender`` (REST) and
``bot.whatsapp_channel`` (webhooks, media, status callbacks).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import phonenumbers

from handlers.i18n import Catalog
from handlers.types import (
    Channel,
    ChatKind,
    Inbound,
    InvalidInbound,
    Location,
    Media,
    MediaKind,
    Option,
    Reply,
)
from storage.types import OutboxStatus

WA_PREFIX = "whatsapp:"
DEFAULT_REGION = "ID"
BODY_LIMIT = 1600  # Twilio's limit for one WhatsApp body (counted here in UTF-16 units, safely)
MESSAGE_ID_PREFIX = "wa:"
MAX_MEDIA = 10
TEMPLATE_VARIABLE_LIMIT = 900  # Meta's body limit is 1024 for the whole template


class FormError(ValueError):
    """A webhook form that is not a usable WhatsApp message (answered 400, nothing recorded)."""


# --- phone numbers -------------------------------------------------------------------------


def normalise_phone(text: str | None, region: str = DEFAULT_REGION) -> str | None:
    """'0812-3456-7890', '62812…', '+62 812…' or 'whatsapp:+62812…' -> '+62812…'; None if not
    a possible phone number."""
    raw = (text or "").strip().removeprefix(WA_PREFIX).strip()
    if not raw:
        return None
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def address_for(chat_id: int) -> str:
    """The Twilio address of a WhatsApp chat (its id is the E.164 number's digits)."""
    return f"{WA_PREFIX}+{chat_id}"


# --- inbound -------------------------------------------------------------------------------


def to_inbound(form: Mapping[str, str], now: datetime) -> Inbound:
    """The neutral message for an inbound webhook form; FormError when it is not usable.

    A shared location has an empty Body and Latitude/Longitude (plus Address/Label for a
    place); media come as NumMedia with MediaUrlN/MediaContentTypeN; a quick-reply button adds
    ButtonPayload. The chat and user id are the sender's WaId (E.164 digits).
    """
    sid = (form.get("MessageSid") or form.get("SmsMessageSid") or "").strip()
    sender = (form.get("From") or "").strip()
    wa_id = (form.get("WaId") or "").strip()
    if not sid:
        raise FormError("no MessageSid")
    if not sender.startswith(WA_PREFIX):
        raise FormError("From is missing or not a whatsapp: address")
    if not wa_id.isdigit() or not 7 <= len(wa_id) <= 15:
        raise FormError("WaId is missing or not E.164 digits")
    body = form.get("Body") or ""
    try:
        return _inbound(form, sid, sender, wa_id, body, now)
    except InvalidInbound as exc:  # a field far beyond what WhatsApp sends
        raise FormError(str(exc)) from None


def _inbound(
    form: Mapping[str, str], sid: str, sender: str, wa_id: str, body: str, now: datetime
) -> Inbound:
    return Inbound(
        channel=Channel.WHATSAPP,
        chat_id=int(wa_id),
        chat_kind=ChatKind.PRIVATE,
        user_id=int(wa_id),
        display_name=(form.get("ProfileName") or "").strip(),
        text=body if body.strip() else None,
        button=(form.get("ButtonPayload") or "").strip()[:64] or None,
        location=location_of(form),
        media=media_of(form),
        message_id=MESSAGE_ID_PREFIX + sid,
        phone=normalise_phone("+" + wa_id) or normalise_phone(sender),
        received_at=now,
    )


def location_of(form: Mapping[str, str]) -> Location | None:
    """The shared pin, if the form has a valid one."""
    try:
        lat = float(form.get("Latitude") or "nan")
        lon = float(form.get("Longitude") or "nan")
    except ValueError:
        return None
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return Location(
        lat,
        lon,
        address=(form.get("Address") or "").strip() or None,
        label=(form.get("Label") or "").strip() or None,
    )


def media_of(form: Mapping[str, str]) -> tuple[Media, ...]:
    """The attachments: ref = the Twilio media URL (the channel may swap in a stored file)."""
    try:
        count = int(form.get("NumMedia") or "0")
    except ValueError:
        count = 0
    items = []
    for i in range(min(max(count, 0), MAX_MEDIA)):
        url = (form.get(f"MediaUrl{i}") or "").strip()
        if not url:
            continue
        content_type = (form.get(f"MediaContentType{i}") or "").strip() or None
        items.append(Media(media_kind(content_type, form.get("MessageType")), url, content_type))
    return tuple(items)


def media_kind(content_type: str | None, message_type: str | None = None) -> MediaKind:
    """photo / voice / video / document by content type; WhatsApp stickers are webp images."""
    major = (content_type or "").split("/", 1)[0].lower()
    if (message_type or "").lower() == "sticker" or (content_type or "").lower() == "image/webp":
        return MediaKind.STICKER
    if major == "image":
        return MediaKind.PHOTO
    if major == "audio":
        return MediaKind.VOICE
    if major == "video":
        return MediaKind.VIDEO
    return MediaKind.DOCUMENT


# --- outbound ------------------------------------------------------------------------------


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


def render_text(reply: Reply, catalog: Catalog, lang: str) -> str:
    """The whole text of a reply as WhatsApp shows it (before splitting)."""
    parts = [reply.text.strip()]
    if reply.location is not None:
        parts.append(location_text(reply.location))
    if reply.options:
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


def coalesce(replies: Sequence[Reply], limit: int = BODY_LIMIT) -> list[Reply]:
    """Join plain texts into the reply that follows them: one WhatsApp message, not three."""
    merged: list[Reply] = []
    for reply in replies:
        prev = merged[-1] if merged else None
        plain = prev is not None and not (prev.options or prev.media or prev.location)
        if (
            prev is not None
            and plain
            and reply.media is None
            and utf16_units(prev.text) + utf16_units(reply.text) + 2 <= limit
        ):
            merged[-1] = replace(reply, text=f"{prev.text}\n\n{reply.text}".strip())
        else:
            merged.append(reply)
    return merged


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


# --- delivery status -----------------------------------------------------------------------

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

"""WhatsApp webhooks in, pure: a (signature-checked) Twilio form as the core's ``Inbound``.

Nothing here does I/O; a form that is not a usable WhatsApp message raises ``FormError`` (the
channel answers 400). Phone numbers are kept in E.164.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime

import phonenumbers

from handlers.types import (
    INBOUND_BUTTON_LIMIT,
    Channel,
    ChatKind,
    Inbound,
    InvalidInbound,
    Location,
    Media,
    MediaKind,
)

WA_PREFIX = "whatsapp:"
DEFAULT_REGION = "ID"
MESSAGE_ID_PREFIX = "wa:"
MAX_MEDIA = 10


class FormError(ValueError):
    """A webhook form that is not a usable WhatsApp message (answered 400, nothing recorded)."""


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


def to_inbound(form: Mapping[str, str], now: datetime) -> Inbound:
    """The neutral message for an inbound webhook form; FormError when it is not usable.

    A shared location has an empty Body and Latitude/Longitude (plus Address/Label for a
    place); media come as NumMedia with MediaUrlN/MediaContentTypeN; a tapped quick reply or
    list item adds ButtonPayload (its id: the option's data) and ButtonText (Body). The chat
    and user id are the sender's WaId (E.164 digits).
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
        # A tap on a quick reply or list item: the option's data. Kept whole up to what the core
        # takes, never cut to 64: a forged payload longer than any option's data (<= 64 bytes)
        # must not become one by the cut; it matches nothing and is answered as stale.
        button=(form.get("ButtonPayload") or "").strip()[:INBOUND_BUTTON_LIMIT] or None,
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

"""A person's rights over their data (UU PDP No. 27/2022): a copy (``/dataku``, ``/mydata``)
and erasure everywhere (``/hapusdata``, asked and confirmed in ``handlers.account``).

The copy is a JSON file of everything kept about them (``storage.personal.data_of``) with a
short readable summary; a channel that sends documents gets it as one (WhatsApp fetches it
from a short-lived signed link, like ``/ekspor``). Its reply is not kept once sent
(``Outcome.forget_replies``).

Erasing removes the person everywhere (``storage.personal.erase``) and leaves after the commit:
their files in the media store (``Outcome.media_dropped``: deleted unless someone else's report
holds the same file) and the channel's own copies (``media_delete`` outbox rows, retried like
a send). Their reports stay for the officers, marked ``erase.marker`` in the deployment's
language; followers of those reports hear nothing of it. Only a keyed hash of (channel, chat
id) stays (``id_hash``).
"""

from __future__ import annotations

import hashlib
import hmac
import json

from handlers.board import short_description
from handlers.render import format_size, format_time
from handlers.turn import Turn
from handlers.types import Document, MediaKind, Reply
from storage import outbox, personal
from storage.models import Area, Contact
from storage.types import OutboxKind

CONTENT_TYPE = "application/json"


def id_hash(key: bytes, channel: str, external_id: int) -> str:
    """The keyed hash (HMAC-SHA256, hex) that stands for someone erased: without the key, a
    chat id or phone number cannot be tested against it."""
    return hmac.new(key, f"{channel}:{external_id}".encode(), hashlib.sha256).hexdigest()


async def was_erased(turn: Turn, contact: Contact) -> bool:
    """Whether this (new) contact's channel and chat id belong to someone erased before."""
    key = turn.config.pdp_hash_key
    return await personal.is_erased(
        turn.session, id_hash(key, contact.channel, contact.external_id)
    )


def marker(turn: Turn) -> str:
    """What stands where an erased reporter's words were, in the deployment's language (the
    stored text; ``shown`` gives it in the reader's)."""
    return turn.config.catalog.text(turn.config.default_language, "erase.marker")


async def erase(turn: Turn) -> int:
    """Erase the sender everywhere; returns how many of their reports stay (anonymised)."""
    contact = turn.contact
    texts = await personal.personal_texts(turn.session, contact)
    who = [
        contact.display_name or "",
        contact.phone or "",
        (contact.phone or "").lstrip("+"),
        str(contact.external_id),
    ]
    said = [*texts, *(short_description(t) for t in texts)]  # as a surge board shows a story
    catalog, default = turn.config.catalog, turn.config.default_language

    def replacements(lang: str | None) -> dict[str, str]:
        lang = lang if lang in catalog.languages else default
        anonymous = catalog.text(lang, "alert.reporter_anonymous")
        words = catalog.text(lang, "erase.marker")
        return {**dict.fromkeys(said, words), **dict.fromkeys(who, anonymous)}

    erased = await personal.erase(
        turn.session,
        contact,
        now=turn.now,
        id_hash=id_hash(turn.config.pdp_hash_key, contact.channel, contact.external_id),
        marker=marker(turn),
        replacements=replacements,
    )
    for channel, url in dict.fromkeys(erased.origins):
        turn.outbox.append(
            outbox.enqueue(
                turn.session,
                channel=channel,
                chat_id=0,  # no chat: a file at the channel, deleted there
                kind=OutboxKind.MEDIA_DELETE,
                reply=Reply(""),
                extra={"url": url},
            )
        )
    turn.outcome.media_dropped.extend(sorted(erased.files))
    turn.outcome.forget_replies = True
    turn.outcome.recorded.erased = True
    return erased.reports


async def send_my_data(turn: Turn) -> None:
    """The sender's data: a summary, and the whole as a JSON document where the channel can
    take one (else the summary says where to ask)."""
    data = await personal.data_of(turn.session, turn.contact)
    area_id = turn.contact.area_id
    area = await turn.session.get(Area, area_id) if area_id is not None else None
    zone = area.timezone if area else None
    none = turn.t("mydata.none")
    reports = data["reports"]
    summary = turn.t(
        "mydata.summary",
        name=data["contact"]["name"] or none,
        phone=data["contact"]["phone"] or none,
        area=data["contact"]["area"] or none,
        consent=(format_time(turn.contact.consent_at, zone) if turn.contact.consent_at else none),
        reports=", ".join(r["ticket"] for r in reports) or none,
        files=sum(len(r["files"]) for r in reports),
        following=", ".join(data["following"]) or none,
        teams=", ".join(t["team"] for t in data["ronda_teams"]) or none,
    )
    turn.outcome.forget_replies = True  # nothing of it stays in the outbox once sent
    caps = turn.config.capabilities(turn.msg.channel)
    if not caps.sends_documents:
        turn.say(summary)
        turn.say(turn.t("mydata.no_documents"))
        await turn.reprompt_if_busy()
        return
    body = json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8")
    if not caps.can_send(MediaKind.DOCUMENT, len(body)):
        turn.say(summary)
        limit = caps.sends.get(MediaKind.DOCUMENT, 0)
        turn.say(turn.t("mydata.too_large", limit=format_size(limit)))
        await turn.reprompt_if_busy()
        return
    name = f"ktn-data-saya-{turn.now:%Y%m%d}.json"
    turn.say(summary)
    document = Document(name, body, CONTENT_TYPE)
    turn.outcome.replies.append(Reply(turn.t("mydata.caption"), document=document))
    await turn.reprompt_if_busy()

"""/ekspor (/export) [csv|geojson|masalah]: a coordinator's reports (or problems, SARA, with
the tickets of their reports) as a file in the chat.

Only coordinators/admins, and only their own area and the areas below it. On a channel that
sends documents the file arrives as one (Telegram uploads it; WhatsApp through Twilio sends it
from a short-lived signed URL to ktn-bot's media store); a channel that cannot, or a file over
the channel's limit for documents, gets an answer saying where exports are (the
``ktn-bot export`` command).
"""

from __future__ import annotations

from handlers.permissions import coordinated_area_ids
from handlers.render import format_size
from handlers.turn import Turn
from handlers.types import Document, MediaKind, Reply
from storage import access_log, exports
from storage.access_log import AccessKind, AccessVia, describe_filter
from storage.models import Area

CONTENT_TYPES = {"csv": "text/csv", "geojson": "application/geo+json", "problems": "text/csv"}
PROBLEM_WORDS = frozenset({"masalah", "problems"})  # /ekspor masalah: the problems' CSV


async def export_in_chat(turn: Turn, arg: str | None) -> None:
    """Send the reports of the coordinator's areas as a CSV (default) or GeoJSON document."""
    area_ids = await coordinated_area_ids(turn.session, turn.contact)
    if not area_ids:
        turn.say(turn.t("export.only_coordinators"))
        await turn.reprompt_if_busy()
        return
    if not turn.config.capabilities(turn.msg.channel).sends_documents:
        turn.say(turn.t("export.no_documents"))
        await turn.reprompt_if_busy()
        return
    fmt = (arg or "csv").lower()
    if fmt not in (*exports.FORMATS, *PROBLEM_WORDS):
        turn.say(turn.t("export.usage"))
        await turn.reprompt_if_busy()
        return
    area = await turn.session.get(Area, area_ids[0])
    code = area.code if area else "area"
    if fmt in PROBLEM_WORDS:
        rows = await exports.problem_rows(turn.session, area_ids, turn.now)
        name = f"ktn-masalah-{code}-{turn.now:%Y%m%d}.csv"
        data = exports.problems_csv(rows).encode("utf-8")
        caption_key, fmt = "export.problems_caption", "problems"
    else:
        rows = await exports.report_rows(turn.session, area_ids, None)
        name = f"ktn-laporan-{code}-{turn.now:%Y%m%d}.{fmt}"
        data = exports.render(rows, fmt).encode("utf-8")
        caption_key = "export.caption"
    caps = turn.config.capabilities(turn.msg.channel)
    if not caps.can_send(MediaKind.DOCUMENT, len(data)):
        limit = caps.sends.get(MediaKind.DOCUMENT, 0)
        turn.say(turn.t("export.too_large", limit=format_size(limit)))
        await turn.reprompt_if_busy()
        return
    access_log.record(
        turn.session,
        kind=AccessKind.EXPORT,
        via=AccessVia.CHAT,
        now=turn.now,
        actor_id=turn.contact.id,
        subject=describe_filter({"format": fmt, "area": code, "reports": len(rows)}),
    )
    caption = turn.t(caption_key, count=len(rows), area=area.name if area else "-")
    turn.outcome.replies.append(Reply(caption, document=Document(name, data, CONTENT_TYPES[fmt])))
    turn.outcome.recorded.export = {"format": fmt, "reports": len(rows)}
    await turn.reprompt_if_busy()

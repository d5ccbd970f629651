"""/ekspor (/export) [csv|geojson]: a coordinator's reports as a file in the chat.

Only coordinators/admins, and only their own area and the areas below it. On a channel that
sends documents (Telegram) the file arrives as one; where it cannot (WhatsApp through Twilio
sends media only from a URL) the answer says where exports are (Telegram or the
``ktn-bot export`` command).
"""

from __future__ import annotations

from handlers.permissions import coordinated_area_ids
from handlers.turn import Turn
from handlers.types import Document, Reply
from storage import exports
from storage.models import Area

CONTENT_TYPES = {"csv": "text/csv", "geojson": "application/geo+json"}


async def export_in_chat(turn: Turn, arg: str | None) -> None:
    """Send the reports of the coordinator's areas as a CSV (default) or GeoJSON document."""
    area_ids = await coordinated_area_ids(turn.session, turn.contact)
    if not area_ids:
        turn.say(turn.t("export.only_coordinators"))
        await turn.reprompt_if_busy()
        return
    if not turn.config.capabilities(turn.msg.channel).sends_documents:
        turn.say(turn.t("export.on_telegram"))
        await turn.reprompt_if_busy()
        return
    fmt = (arg or "csv").lower()
    if fmt not in exports.FORMATS:
        turn.say(turn.t("export.usage"))
        await turn.reprompt_if_busy()
        return
    rows = await exports.report_rows(turn.session, area_ids, None)
    area = await turn.session.get(Area, area_ids[0])
    code = area.code if area else "area"
    name = f"ktn-laporan-{code}-{turn.now:%Y%m%d}.{fmt}"
    data = exports.render(rows, fmt).encode("utf-8")
    caption = turn.t("export.caption", count=len(rows), area=area.name if area else "-")
    turn.outcome.replies.append(Reply(caption, document=Document(name, data, CONTENT_TYPES[fmt])))
    turn.outcome.recorded.export = {"format": fmt, "reports": len(rows)}
    await turn.reprompt_if_busy()

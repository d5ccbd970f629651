"""The resident report flow: category -> what -> where -> photo -> anonymous -> summary -> send.

See report_flow.md beside this file for the diagram. Urgent reports (``/darurat`` or an urgent
category) get the emergency numbers first and skip the photo question (a photo can still be
added from the summary); anonymity is asked in every flow, one tap, nothing assumed. "Ubah"
changes one field and comes back to the summary.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.alerts import enqueue_alert
from handlers.context import Context
from handlers.render import (
    category_label,
    category_options,
    emergency_text,
    format_time,
    map_link,
    polsek_number,
    status_label,
)
from handlers.states import State
from handlers.turn import Turn, expects, fallback, intent, prompt
from handlers.types import Media, MediaKind, Option
from storage import reports
from storage.drafts import MediaJson, ReportDraft
from storage.media import is_ref
from storage.models import Area, Outbox, Report

PHOTO_KINDS = frozenset({MediaKind.PHOTO, MediaKind.VIDEO})
EDITABLE = {
    "edit:category": State.CATEGORY,
    "edit:description": State.DESCRIPTION,
    "edit:location": State.LOCATION,
    "edit:photo": State.PHOTO,
    "edit:anonymous": State.ANONYMOUS,
}


@intent("report")
async def start_report(turn: Turn) -> None:
    """Begin a fresh draft and ask for the category."""
    await _start(turn, urgent=False)


@intent("emergency")
async def start_urgent_report(turn: Turn) -> None:
    """Begin a fresh urgent draft (the numbers were already shown) and ask for the category."""
    await _start(turn, urgent=True)


@intent("emergency_after_onboarding")
async def start_urgent_report_with_polsek(turn: Turn) -> None:
    """The numbers came before the village was known: now add the area's Polsek, then go on."""
    polsek = await polsek_number(turn.session, turn.config, await contact_area(turn))
    if polsek is not None:
        turn.say(
            "\n".join(
                (
                    turn.t("emergency.header"),
                    turn.t("emergency.polsek_line", area=polsek[0], number=polsek[1]),
                )
            )
        )
    await _start(turn, urgent=True)


@intent("summary")
async def back_to_summary(turn: Turn) -> None:
    """Return to the summary of the draft (after the village had to be chosen again)."""
    await turn.enter(State.SUMMARY if turn.draft.get("report") else State.IDLE)


async def _start(turn: Turn, *, urgent: bool) -> None:
    turn.draft.pop("editing", None)
    turn.draft["report"] = {"urgent": urgent, "forced_urgent": urgent, "media": []}
    await turn.enter(State.CATEGORY)


def add_media(turn: Turn, items: list[Media]) -> None:
    """Keep the files with the draft (a new list, so the change is stored)."""
    draft = turn.report
    draft["media"] = [*draft.get("media", []), *(m.to_json() for m in items)]


async def next_step(turn: Turn, done: State) -> None:
    """After a field is filled: back to the summary when editing, else the next question."""
    if turn.draft.pop("editing", False):
        await turn.enter(State.SUMMARY)
        return
    urgent = bool(turn.report.get("urgent"))
    following = {
        State.CATEGORY: State.DESCRIPTION,
        State.DUPLICATE: State.DESCRIPTION,
        State.DESCRIPTION: State.LOCATION,
        # urgent: no photo question; photos sent with the story are not asked for again
        State.LOCATION: State.ANONYMOUS if urgent or _photos(turn.report) else State.PHOTO,
        State.PHOTO: State.ANONYMOUS,
        State.ANONYMOUS: State.SUMMARY,
    }
    await turn.enter(following[done])


async def contact_area(turn: Turn) -> Area | None:
    """The contact's village (from the session's identity map when already loaded)."""
    if turn.contact.area_id is None:
        return None
    return await turn.session.get(Area, turn.contact.area_id)


async def say_emergency_numbers(turn: Turn) -> None:
    """The emergency numbers, with the area's Polsek."""
    area = await contact_area(turn)
    turn.say(await emergency_text(turn.session, turn.config, turn.lang, area))


# --- CATEGORY ------------------------------------------------------------------------------


@prompt(State.CATEGORY)
async def ask_category(turn: Turn) -> None:
    """Offer the configured categories."""
    key = "report.ask_category_urgent" if turn.report.get("urgent") else "report.ask_category"
    turn.say(turn.t(key), category_options(turn.config, turn.lang))


@expects(State.CATEGORY)
async def category_chosen(turn: Turn) -> bool:
    """Note the category; urgent ones show the numbers; a similar open report is offered."""
    chosen = turn.config.category((turn.option or "").removeprefix("cat:"))
    if chosen is None or not (turn.option or "").startswith("cat:"):
        return False
    draft = turn.report
    was_urgent = bool(draft.get("urgent"))
    draft["category"] = chosen.key
    draft["urgent"] = bool(draft.get("forced_urgent")) or chosen.urgent
    if draft["urgent"] and not was_urgent:
        await say_emergency_numbers(turn)
    if turn.draft.get("editing") or draft["urgent"]:
        await next_step(turn, State.CATEGORY)
        return True
    found = await _similar_open_report(turn, chosen.key)
    if found is None:
        await next_step(turn, State.CATEGORY)
        return True
    area = await contact_area(turn)
    turn.draft["duplicate"] = {
        "id": found.id,
        "ticket": found.ticket,
        "when": format_time(found.created_at, area.timezone if area else None),
        "status": found.status,
    }
    await turn.enter(State.DUPLICATE)
    return True


async def _similar_open_report(turn: Turn, category: str) -> Report | None:
    if turn.config.duplicate_window_hours <= 0 or turn.contact.area_id is None:
        return None
    found = await reports.open_duplicates(
        turn.session,
        area_id=turn.contact.area_id,
        category=category,
        since=turn.now - timedelta(hours=turn.config.duplicate_window_hours),
        exclude_reporter_id=turn.contact.id,
    )
    if not found or await reports.is_follower(turn.session, found[0].id, turn.contact.id):
        return None
    return found[0]


@fallback(State.CATEGORY)
async def category_unclear(turn: Turn) -> None:
    """Text, a pin or a photo where a category was wanted."""
    turn.say(turn.t("report.need_category", count=len(turn.config.categories)))
    await turn.reprompt()


# --- DUPLICATE -----------------------------------------------------------------------------


@prompt(State.DUPLICATE)
async def offer_duplicate(turn: Turn) -> None:
    """Show the similar open report: follow it, or file a new one."""
    found = turn.draft.get("duplicate")
    when, status = (found.get("when", ""), found.get("status", "new")) if found else ("", "new")
    turn.say(
        turn.t(
            "report.duplicate",
            category=category_label(turn.catalog, turn.lang, str(turn.report.get("category"))),
            when=when,
            status=status_label(turn.catalog, turn.lang, str(status)),
        ),
        [
            Option(turn.t("report.duplicate_follow"), "dup:follow"),
            Option(turn.t("report.duplicate_new"), "dup:new"),
        ],
    )


@expects(State.DUPLICATE)
async def duplicate_answered(turn: Turn) -> bool:
    """Follow the existing report ("ikut pantau") or go on with a new one."""
    found = turn.draft.get("duplicate")
    if turn.option == "dup:new":
        turn.draft.pop("duplicate", None)
        await next_step(turn, State.DUPLICATE)
        return True
    if turn.option == "dup:follow" and found and found.get("id"):
        await reports.follow(turn.session, int(found["id"]), turn.contact.id, turn.now)
        turn.draft = {}
        turn.state = State.IDLE
        turn.outcome.recorded.followed = int(found["id"])
        turn.say(turn.t("report.following", ticket=str(found.get("ticket", ""))))
        return True
    return False


@fallback(State.DUPLICATE)
async def duplicate_unclear(turn: Turn) -> None:
    """Anything but the two choices."""
    turn.say(turn.t("report.need_duplicate_choice"))
    await turn.reprompt()


# --- DESCRIPTION ---------------------------------------------------------------------------


@prompt(State.DESCRIPTION)
async def ask_description(turn: Turn) -> None:
    """Ask what happened."""
    turn.say(turn.t("report.ask_description"))


@expects(State.DESCRIPTION)
async def description_given(turn: Turn) -> bool:
    """Text, or a photo / voice note with a caption; a voice note alone also tells the story."""
    files = turn.attachments
    if turn.msg.media and not files:
        return False
    if not files and turn.text is None:
        return False
    if files:
        add_media(turn, files)
    draft = turn.report
    if turn.text is not None:
        draft["description"] = turn.text
    elif any(f.kind is MediaKind.VOICE for f in files):
        draft["description"] = ""
    elif draft.get("description") is None:
        turn.say(turn.t("report.photo_saved_need_text"))
        return True
    await next_step(turn, State.DESCRIPTION)
    return True


@fallback(State.DESCRIPTION)
async def description_unclear(turn: Turn) -> None:
    """A sticker, a pin or a button where the story was wanted."""
    turn.say(turn.t("report.need_description"))
    await turn.reprompt()


# --- LOCATION ------------------------------------------------------------------------------


@prompt(State.LOCATION)
async def ask_location(turn: Turn) -> None:
    """Ask where: a GPS pin or a few words. The prompt names the way the channel really has:
    the location button under the message, or the app's attachment menu."""
    if turn.ctx.config.capabilities(turn.msg.channel).location_button:
        label = turn.t("report.location_button")
        turn.say(
            turn.t("report.ask_location_button", button=label),
            ask_location=True,
            location_label=label,
        )
        return
    turn.say(turn.t("report.ask_location"), ask_location=True)


@expects(State.LOCATION)
async def location_given(turn: Turn) -> bool:
    """A pin (with its place name if any) or a text such as 'RT 03/RW 02 dekat masjid'."""
    draft = turn.report
    pin = turn.location
    if pin is not None:
        draft["lat"], draft["lon"] = pin.latitude, pin.longitude
        draft["address"] = " — ".join(p for p in (pin.label, pin.address) if p) or None
    elif turn.text is not None and not turn.msg.media:
        draft["lat"] = draft["lon"] = None
        draft["address"] = turn.text
    else:
        return False
    await next_step(turn, State.LOCATION)
    return True


@fallback(State.LOCATION)
async def location_unclear(turn: Turn) -> None:
    """A photo, sticker or button where the place was wanted."""
    turn.say(turn.t("report.need_location"))
    await turn.reprompt()


# --- PHOTO ---------------------------------------------------------------------------------


@prompt(State.PHOTO)
async def ask_photo(turn: Turn) -> None:
    """Ask for an optional photo ("Lewati" skips)."""
    options = [Option(turn.t("report.skip"), "photo:skip")]
    if turn.draft.get("editing") and _photos(turn.report):
        options.append(Option(turn.t("report.remove_photos"), "photo:clear"))
    turn.say(turn.t("report.ask_photo"), options)


def _photos(draft: ReportDraft) -> list[MediaJson]:
    return [m for m in draft.get("media", []) if m.get("kind") in PHOTO_KINDS]


@expects(State.PHOTO)
async def photo_given(turn: Turn) -> bool:
    """A photo (or video, voice note, document) is kept; its caption joins the story."""
    draft = turn.report
    if turn.option == "photo:skip":
        await next_step(turn, State.PHOTO)
        return True
    if turn.option == "photo:clear":
        draft["media"] = [m for m in draft.get("media", []) if m.get("kind") not in PHOTO_KINDS]
        await next_step(turn, State.PHOTO)
        return True
    files = turn.attachments
    if not files:
        return False
    add_media(turn, files)
    if turn.text:
        story = str(draft.get("description") or "")
        draft["description"] = f"{story}\n{turn.text}".strip()
    await next_step(turn, State.PHOTO)
    return True


@fallback(State.PHOTO)
async def photo_unclear(turn: Turn) -> None:
    """Text or a sticker where a photo (or Lewati) was wanted."""
    turn.say(turn.t("report.need_photo"))
    await turn.reprompt()


# --- ANONYMOUS -----------------------------------------------------------------------------


@prompt(State.ANONYMOUS)
async def ask_anonymous(turn: Turn) -> None:
    """Ask whether officers may see the reporter's name."""
    turn.say(
        turn.t("report.ask_anonymous"),
        [Option(turn.t("common.yes"), "anon:yes"), Option(turn.t("common.no"), "anon:no")],
    )


async def _extra_files(turn: Turn) -> bool:
    """More photos arriving after the photo step (an album) are kept, not refused."""
    files = turn.attachments
    if not files:
        return False
    add_media(turn, files)
    turn.say(turn.t("report.extra_media_saved", count=len(turn.report["media"])))
    await turn.reprompt()
    return True


@expects(State.ANONYMOUS)
async def anonymous_chosen(turn: Turn) -> bool:
    """Ya hides the name from officers, Tidak shows it."""
    if turn.option in ("anon:yes", "anon:no"):
        turn.report["anonymous"] = turn.option == "anon:yes"
        await next_step(turn, State.ANONYMOUS)
        return True
    return await _extra_files(turn)


@fallback(State.ANONYMOUS)
async def anonymous_unclear(turn: Turn) -> None:
    """Anything but Ya / Tidak."""
    turn.say(turn.t("report.need_yes_no"))
    await turn.reprompt()


# --- SUMMARY -------------------------------------------------------------------------------


def summary_text(turn: Turn) -> str:
    """The draft in a few lines, as the officers will see it."""
    draft = turn.report
    lat, lon = draft.get("lat"), draft.get("lon")
    if lat is not None and lon is not None:  # the place in words, else a map link: no numbers
        if draft.get("address"):
            where = f"{draft['address']} ({turn.t('report.where_pin_sent')})"
        else:
            where = turn.t("report.where_pin", link=map_link(lat, lon))
    else:
        where = str(draft.get("address") or "-")
    story = draft.get("description")
    lines = [
        turn.t("report.summary_title"),
        turn.t(
            "report.summary_category",
            category=category_label(turn.catalog, turn.lang, str(draft.get("category"))),
        ),
        turn.t(
            "report.summary_description",
            description=story if story else turn.t("report.voice_only"),
        ),
        turn.t("report.summary_location", location=where),
        turn.t("report.summary_media", count=len(draft["media"]))
        if draft.get("media")
        else turn.t("report.summary_no_media"),
        turn.t(
            "report.summary_anonymous_yes"
            if draft.get("anonymous")
            else "report.summary_anonymous_no"
        ),
    ]
    if draft.get("urgent"):
        lines.append(turn.t("report.summary_urgent"))
    lines.append(turn.t("report.summary_question"))
    return "\n".join(lines)


@prompt(State.SUMMARY)
async def show_summary(turn: Turn) -> None:
    """Show the draft with Kirim / Ubah / Batal."""
    turn.say(
        summary_text(turn),
        [
            Option(turn.t("report.send"), "sum:send"),
            Option(turn.t("report.edit"), "sum:edit"),
            Option(turn.t("report.cancel"), "sum:cancel"),
        ],
    )


@expects(State.SUMMARY)
async def summary_answered(turn: Turn) -> bool:
    """Kirim files the report, Ubah picks a field to change, Batal drops the draft."""
    if turn.option == "sum:send":
        await submit(turn)
        return True
    if turn.option == "sum:edit":
        await turn.enter(State.EDIT)
        return True
    if turn.option == "sum:cancel":
        turn.draft = {}
        turn.state = State.IDLE
        turn.say(turn.t("cancel.report"))
        return True
    return await _extra_files(turn)


@fallback(State.SUMMARY)
async def summary_unclear(turn: Turn) -> None:
    """Anything but Kirim / Ubah / Batal."""
    turn.say(turn.t("report.need_summary_choice"))
    await turn.reprompt()


async def submit(turn: Turn) -> None:
    """Create the report, queue the officers' alert, give the ticket and what happens next."""
    draft = turn.report
    if turn.contact.area_id is None:
        turn.draft["after"] = "summary"
        turn.say(turn.t("report.area_needed"))
        await turn.enter(State.AREA)
        return
    urgent = bool(draft.get("urgent"))
    report, alerts = await file_report(
        turn.session,
        turn.ctx,
        category=str(draft.get("category")),
        description=str(draft.get("description") or ""),
        area_id=turn.contact.area_id,
        reporter_id=turn.contact.id,
        anonymous=bool(draft.get("anonymous")),
        urgent=urgent,
        latitude=draft.get("lat"),
        longitude=draft.get("lon"),
        address_text=draft.get("address"),
        media=[
            reports.MediaRef(
                kind=str(m["kind"]),
                channel=str(turn.msg.channel),
                file_ref=str(m["ref"]),
                content_type=m.get("content_type"),
                store_ref=str(m["ref"]) if is_ref(m["ref"]) else None,
                size=m.get("size"),
                origin=m.get("origin"),
            )
            for m in draft.get("media", [])
        ],
    )
    turn.outbox.extend(alerts)
    turn.draft = {}
    turn.state = State.IDLE
    turn.outcome.recorded.filed = {"ticket": report.ticket, "report_id": report.id}
    text = turn.t("report.submitted", ticket=report.ticket)
    if urgent:
        text = f"{text}\n\n{turn.t('report.submitted_urgent')}"
    turn.say(text)


async def file_report(
    session: AsyncSession,
    ctx: Context,
    *,
    category: str,
    description: str,
    area_id: int,
    reporter_id: int | None,
    anonymous: bool,
    urgent: bool,
    latitude: float | None = None,
    longitude: float | None = None,
    address_text: str | None = None,
    media: Sequence[reports.MediaRef] = (),
    before_alert: Callable[[Report], None] | None = None,
) -> tuple[Report, list[Outbox]]:
    """File a finished report, whichever door it came through (the chat flow, the Open311 API):
    the report with its media and trail, its escalation time, and the officers' alert queued
    (routing as ``handlers.alerts`` decides). ``before_alert`` adds what the alert should
    show about the new report (the API's record of it). The caller commits."""
    report = await reports.create_report(
        session,
        category=category,
        description=description,
        area_id=area_id,
        reporter_id=reporter_id,
        anonymous=anonymous,
        urgent=urgent,
        now=ctx.now,
        latitude=latitude,
        longitude=longitude,
        address_text=address_text,
        media=media,
    )
    report.escalate_at = ctx.now + timedelta(
        minutes=ctx.config.escalation_minutes(category, urgent)
    )
    if before_alert is not None:
        before_alert(report)
        await session.flush()
    return report, await enqueue_alert(session, report, ctx)


# --- EDIT ----------------------------------------------------------------------------------


@prompt(State.EDIT)
async def ask_what_to_edit(turn: Turn) -> None:
    """Offer the fields that can be changed."""
    turn.say(
        turn.t("report.ask_edit"),
        [
            Option(turn.t("report.field_category"), "edit:category"),
            Option(turn.t("report.field_description"), "edit:description"),
            Option(turn.t("report.field_location"), "edit:location"),
            Option(turn.t("report.field_photo"), "edit:photo"),
            Option(turn.t("report.field_anonymous"), "edit:anonymous"),
            Option(turn.t("report.field_back"), "edit:back"),
        ],
    )


@expects(State.EDIT)
async def edit_chosen(turn: Turn) -> bool:
    """Go to the chosen field's question; it comes back to the summary."""
    if turn.option == "edit:back":
        await turn.enter(State.SUMMARY)
        return True
    target = EDITABLE.get(turn.option or "")
    if target is None:
        return False
    turn.draft["editing"] = True
    await turn.enter(target)
    return True


@fallback(State.EDIT)
async def edit_unclear(turn: Turn) -> None:
    """Anything but a field."""
    turn.say(turn.t("report.need_edit_choice"))
    await turn.reprompt()

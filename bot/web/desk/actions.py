"""The actions on a report's desk page: claim, resolve (note, closure photo), reject, mark a
duplicate, reopen, hand over. The rules are the chat's (``handlers.desk``, ``handlers.actions``);
this module only reads the form, keeps an uploaded closure photo in the media store, and
answers.

A done action (and a refusal that loses nothing) goes back to the report's page with a
message (POST, redirect, GET). A refusal that would lose what was typed (a photo that is too
large or not a photo, a required photo missing, a reason too long) shows the page again at
once with the message and the note still in its box. A closure photo is held in the media store
while the action runs; once the outcome is committed the hold is let go, so a photo of an
action that was refused is deleted at once (``bot.media.library``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bot.web.desk.forms import megabytes, photo_type
from handlers import desk as rules
from handlers.actions import NOTE_LIMIT, Action, Verdict
from handlers.types import Media, MediaKind
from storage import desk

if TYPE_CHECKING:
    from bot.web.desk.app import Desk, Viewer

log = logging.getLogger(__name__)

HAND = "hand"
REOPEN = "reopen"
KNOWN = frozenset({HAND, REOPEN, *(a.value for a in Action)})


@dataclass(frozen=True, slots=True)
class Refused:
    """Why a closure photo was not taken: a desk text key (with the limit) and the status."""

    key: str
    status: int


async def report_action(
    owner: Desk, request: Request, session: AsyncSession, viewer: Viewer
) -> Response:
    """Do what the report page's form asks, as in chat; back to the page."""
    ticket = request.path_params["ticket"]
    report = await desk.report_in_scope(session, ticket, viewer.scope)
    if report is None:
        return owner.not_found(request, viewer)
    form = await request.form()
    what = str(form.get("action") or "")
    if what not in KNOWN:
        return owner.error(request, viewer, 400, "desk.bad_request")
    note = str(form.get("note") or "").strip() or None
    texts = owner.texts
    lang = viewer.lang
    ctx = owner.context()
    photo: Media | None = None
    if what == HAND:
        to_id = _officer(form)
        if to_id is None:
            verdict = Verdict(False, texts.text(lang, "desk.choose_officer"))
        else:
            verdict = await rules.hand_over(session, ctx, viewer.contact, report, to_id)
    elif what == REOPEN:
        verdict = await rules.reopen(session, ctx, viewer.contact, report, note)
    else:
        action = Action(what)
        if action is Action.RESOLVE:
            taken = await _closure_photo(owner, session, form, report.category)
            if isinstance(taken, Refused):
                text = texts.text(lang, taken.key, mb=megabytes(owner.photo_limit, lang))
                return await owner.report_view(
                    request,
                    session,
                    viewer,
                    report,
                    flash=text,
                    kept={what: note},
                    status=taken.status,
                )
            photo = taken
        try:
            verdict = await rules.act(session, ctx, viewer.contact, report, action, note, photo)
        except BaseException:
            await _let_go(owner, photo)  # nothing refers to it: deleted
            raise
        if photo is not None:
            await session.commit()  # the report refers to the photo (if it was taken) first
            await _let_go(owner, photo)
        if verdict.keep_note is not None:  # resolved needs a photo here: ask, keeping the note
            text = texts.text(lang, "desk.photo_required")
            return await owner.report_view(
                request, session, viewer, report, flash=text, kept={what: note}, status=400
            )
    if verdict.needs_note:
        verdict.text = texts.text(lang, f"desk.needs_note_{what}")
    if not verdict.done and note is not None and len(note) > NOTE_LIMIT:
        return await owner.report_view(
            request, session, viewer, report, flash=verdict.text, kept={what: note}, status=400
        )
    if verdict.done:
        log.info("desk: %s on report %s by contact %s", what, report.id, viewer.contact.id)
    response = RedirectResponse(f"{owner.prefix}/laporan/{ticket}", status_code=303)
    owner.flash(request, response, verdict.text)
    if verdict.done and owner.notify is not None:
        await session.commit()
        owner.notify()
    return response


async def _closure_photo(
    owner: Desk, session: AsyncSession, form: FormData, category: str
) -> Media | Refused | None:
    """The closure photo sent with the form, kept in the media store (held: the caller lets go
    of it), or why it was refused; None when no photo was sent or the category takes none.
    The desk's transaction so far (reads) ends first: the store records the file in its own
    (SQLite has one writer at a time); the action re-checks the report as it changes it."""
    item = form.get("photo")
    if not isinstance(item, UploadFile) or owner.core.closure_photo(category) == "off":
        return None
    limit = owner.photo_limit
    if owner.media is None or limit <= 0:
        return Refused("desk.photo_unavailable", 503)
    data = await item.read(limit + 1)
    if not data:  # the box left empty: no photo
        return None
    if len(data) > limit:
        return Refused("desk.photo_too_large", 413)
    content_type = photo_type(data)
    if content_type is None:
        return Refused("desk.photo_not_image", 415)
    await session.commit()
    try:
        blob = await owner.media.put(data, content_type, limit=limit)
    except Exception as exc:  # the store is unreachable: nothing changed, they may try again
        log.warning("desk: a closure photo was not stored: %s", type(exc).__name__)
        return Refused("desk.photo_unavailable", 503)
    return Media(MediaKind.PHOTO, blob.ref, content_type, blob.size)


async def _let_go(owner: Desk, photo: Media | None) -> None:
    """Drop the action's hold on its photo: kept if a committed report refers to it."""
    if photo is not None and owner.media is not None:
        await owner.media.release([photo.ref])


def _officer(form: FormData) -> int | None:
    value = str(form.get("officer") or "")
    return int(value) if value.isascii() and value.isdecimal() and len(value) <= 12 else None

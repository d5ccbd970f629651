"""The desk's HTTP side: sign-in by link, the reports list, a report, the map, the numbers, the
problems (``bot.web.desk.problems``).

Everything lives under ``/dasbor`` (``/dashboard`` redirects there) on the server ``ktn-bot
run`` already serves. A sign-in link (``/dasbor`` in a private chat, ``handlers.desk``) opens a
page whose button spends it (a link preview fetching the page spends nothing) and starts a
browser session: a random cookie (HttpOnly, SameSite=Lax, Secure over https), kept as its hash,
ended after ``[web] idle_minutes`` unused, by "Keluar", or by ``/dasbor keluar`` in chat. Every
form carries the session's CSRF token (a POST without it: 403); every POST body is read
within bounds (``bot.web.desk.forms``: ``[web] max_form_bytes``, plus the closure photo's
``[media] max_mb.photo`` for the report's form; larger: a polite 413). The report's actions
are ``bot.web.desk.actions``. Sign-in attempts are rate-limited per client address. Every page
reads only the person's area and the areas below it; a report elsewhere answers 404 like one
that does not exist. Tokens and names never go into a log; the only URL with a secret is the
sign-in link, which works once.
"""

from __future__ import annotations

import base64
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from time import monotonic as time_now
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from bot.config import WebSettings
from bot.media.library import MediaLibrary
from bot.web.app import BodyTooLarge, read_body
from bot.web.desk import actions, problems
from bot.web.desk.charts import bar_chart
from bot.web.desk.forms import MAX_FIELDS, MAX_FILES, bounded, is_multipart, megabytes
from bot.web.desk.headers import SECURITY_HEADERS
from bot.web.desk.texts import DeskTexts
from bot.web.open311.limits import RateLimiter
from handlers import desk as rules
from handlers.config import CoreConfig
from handlers.context import Context
from handlers.permissions import area_chain_ids, is_staff
from handlers.render import (
    DEFAULT_ZONE,
    category_label,
    description_text,
    format_time,
    status_label,
)
from storage import access_log, desk, exports
from storage import problems as problem_store
from storage.access_log import AccessKind, AccessVia, describe_filter
from storage.areas import descendant_ids
from storage.models import Area, Contact, DeskSession, Report, ReportMedia
from storage.reports import CLOSURE_MEDIA, media_of
from storage.types import ReportStatus, utcnow

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
COOKIE = "ktn_desk"
FLASH = "ktn_desk_flash"
LANG = "ktn_desk_lang"
PREFIX = "/dasbor"
STATUSES = tuple(s.value for s in ReportStatus)


@dataclass(frozen=True, slots=True)
class Viewer:
    """The signed-in person: their session row, contact, language and visible areas."""

    session: DeskSession
    contact: Contact
    lang: str
    scope: list[int]


Page = Callable[[Request, AsyncSession, Viewer], Awaitable[Response]]


class Desk:
    """The desk's routes, bound to the database, the core's configuration and the sender."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        core: CoreConfig,
        settings: WebSettings,
        *,
        notify: Callable[[], None] | None = None,
        media: MediaLibrary | None = None,
        photo_limit: int = 0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessions = sessions
        self.core = core
        self.settings = settings
        self.notify = notify
        self.media = media
        # the largest closure photo taken, in bytes ([media] max_mb.photo); 0: none
        self.photo_limit = photo_limit if media is not None else 0
        self.prefix = PREFIX
        self.clock = clock
        self.texts = DeskTexts.load()
        self.logins = RateLimiter(settings.login_attempts_per_minute)
        # (areas, since, until) -> (monotonic expiry, numbers): one computation per period a
        # minute, however many people of the area look (a monthly meeting's projector)
        self._numbers: dict[tuple[tuple[int, ...], datetime, datetime], tuple[float, Any]] = {}
        self.env = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(default=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )

    # --- plumbing ---------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        """``/dasbor/...`` and the English ``/dashboard`` redirect."""
        page = self._page
        return [
            Route("/dashboard", self.to_desk, methods=["GET"]),
            Route("/dashboard/", self.to_desk, methods=["GET"]),
            Mount(
                PREFIX,
                routes=[
                    Route("/", page(self.reports_page), methods=["GET"]),
                    Route("/masuk", self.signed_out, methods=["GET"]),
                    Route("/masuk/{token}", self.login_form, methods=["GET"]),
                    Route("/masuk/{token}", self.login, methods=["POST"]),
                    Route("/keluar", page(self.logout), methods=["POST"]),
                    Route("/bahasa/{lang}", self.set_language, methods=["GET"]),
                    Route("/laporan/{ticket}", page(self.report_page), methods=["GET"]),
                    Route(
                        "/laporan/{ticket}",
                        page(self.report_action, upload=True),
                        methods=["POST"],
                    ),
                    Route("/media/{media_id:int}", page(self.media_file), methods=["GET"]),
                    Route("/ekspor.{fmt}", page(self.download), methods=["GET"]),
                    Route("/peta", page(self.map_page), methods=["GET"]),
                    Route("/peta.json", page(self.map_data), methods=["GET"]),
                    Route("/angka", page(self.numbers_page), methods=["GET"]),
                    Route("/masalah", page(self.problems_page), methods=["GET"]),
                    Route("/masalah", page(self.problems_action), methods=["POST"]),
                    Route("/masalah/{problem_id:int}", page(self.problem_page), methods=["GET"]),
                    Route("/masalah/{problem_id:int}", page(self.problem_action), methods=["POST"]),
                    Route(
                        "/masalah/{problem_id:int}/peta.json",
                        page(self.problem_map),
                        methods=["GET"],
                    ),
                    Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
                ],
            ),
        ]

    async def to_desk(self, _request: Request) -> Response:
        return RedirectResponse(f"{PREFIX}/", status_code=307)

    def _page(
        self, handler: Page, *, upload: bool = False
    ) -> Callable[[Request], Awaitable[Response]]:
        """Run a page for a signed-in person (else the sign-in page), in one transaction; a
        POST's body is read within bounds (``upload``: a closure photo may come with it), and
        without the session's CSRF token it is refused with 403."""

        async def run(request: Request) -> Response:
            token = request.cookies.get(COOKIE)
            async with self.sessions() as session:
                viewer = await self._viewer(request, session, token) if token else None
                if viewer is None:
                    await session.commit()  # an idle session is ended
                    if request.method == "POST":
                        return self._html(
                            request, "error.html", self._lang(request), 403, message="desk.csrf"
                        )
                    response: Response = RedirectResponse(f"{PREFIX}/masuk", status_code=303)
                    response.delete_cookie(COOKIE, path=PREFIX)
                    return response
                if request.method != "POST":
                    response = await handler(request, session, viewer)
                    await session.commit()
                    return response
                await session.commit()  # a slow upload holds no transaction (SQLite: the lock)
                photo = upload and self.photo_limit > 0 and is_multipart(request)
                limit = self.settings.max_form_bytes + (self.photo_limit if photo else 0)
                try:
                    request = await bounded(request, limit)
                except BodyTooLarge:
                    return self._too_large(request, viewer.lang, viewer, photo)
                form = await request.form(
                    max_files=MAX_FILES if photo else 0, max_fields=MAX_FIELDS
                )
                try:
                    sent = str(form.get("csrf") or "")
                    if not sent or not secrets.compare_digest(sent, viewer.session.csrf):
                        return self.error(request, viewer, 403, "desk.csrf")
                    response = await handler(request, session, viewer)
                    await session.commit()
                finally:
                    await form.close()
            return response

        return run

    def _too_large(
        self, request: Request, lang: str, viewer: Viewer | None, photo: bool
    ) -> Response:
        """413: the form was larger than the desk reads (nothing of it was used)."""
        mb = megabytes(self.photo_limit, lang) if photo else None
        detail = self.texts.text(lang, "desk.too_large_photo", mb=mb) if mb else None
        return self._html(
            request,
            "error.html",
            lang,
            413,
            message="desk.too_large",
            detail=detail,
            viewer=viewer,
        )

    def error(self, request: Request, viewer: Viewer, status: int, message: str) -> Response:
        """A short page saying what went wrong (``message``: a desk text key)."""
        return self._html(
            request, "error.html", viewer.lang, status, message=message, viewer=viewer
        )

    def _accessed(
        self,
        session: AsyncSession,
        viewer: Viewer,
        kind: AccessKind,
        *,
        report_id: int | None = None,
        subject: str | None = None,
    ) -> None:
        """Log a read of personal data (committed with the page's transaction)."""
        access_log.record(
            session,
            kind=kind,
            via=AccessVia.DESK,
            now=self.clock(),
            actor_id=viewer.contact.id,
            report_id=report_id,
            subject=subject,
        )

    async def _viewer(self, request: Request, session: AsyncSession, token: str) -> Viewer | None:
        found = await desk.live_session(
            session, token, self.clock(), timedelta(minutes=self.settings.idle_minutes)
        )
        if found is None:
            return None
        row, contact = found
        if not is_staff(contact):  # no longer staff: the session ends
            desk.end_session(row, self.clock())
            return None
        scope = await rules.scope(session, contact)
        lang = self._lang(request, contact.language)
        return Viewer(row, contact, lang, scope)

    def _lang(self, request: Request, fallback: str | None = None) -> str:
        chosen = request.cookies.get(LANG) or fallback or self.core.default_language
        return chosen if chosen in self.texts.languages else self.core.default_language

    def _html(
        self, request: Request, template: str, lang: str, status: int = 200, **values: Any
    ) -> HTMLResponse:
        def t(key: str, /, **params: object) -> str:
            return self.texts.text(lang, key, **params)

        body = self.env.get_template(template).render(
            t=t,
            lang=lang,
            prefix=PREFIX,
            request=request,
            path=request.url.path,
            **values,
        )
        response = HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)
        response.headers["Content-Security-Policy"] = self._csp()
        return response

    def _csp(self) -> str:
        tiles = self.settings.tiles_url
        img = "'self' data:"
        if tiles.startswith(("https://", "http://")):
            scheme, rest = tiles.split("://", 1)
            host = rest.split("/", 1)[0].replace("{s}", "*")
            img += f" {scheme}://{host}"
        return (
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
            f"img-src {img}; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
        )

    def _secure(self, request: Request) -> bool:
        proto = request.headers.get("x-forwarded-proto", request.url.scheme)
        return proto.split(",")[0].strip() == "https"

    def flash(self, request: Request, response: Response, text: str) -> None:
        response.set_cookie(
            FLASH,
            base64.urlsafe_b64encode(text[:600].encode("utf-8")).decode("ascii"),
            path=PREFIX,
            httponly=True,
            samesite="lax",
            secure=self._secure(request),
        )

    def _take_flash(self, request: Request) -> str | None:
        raw = request.cookies.get(FLASH)
        if not raw:
            return None
        try:
            return base64.urlsafe_b64decode(raw.encode("ascii")).decode("utf-8")
        except (ValueError, UnicodeError):
            return None

    def context(self) -> Context:
        return Context(self.core, now=self.clock())

    # --- signing in and out -----------------------------------------------------------------

    async def signed_out(self, request: Request) -> Response:
        """How to sign in: send /dasbor to the bot."""
        return self._html(request, "signin.html", self._lang(request))

    async def login_form(self, request: Request) -> Response:
        """The link's page: a button that spends it (link previews only GET)."""
        return self._html(request, "login.html", self._lang(request))

    async def login(self, request: Request) -> Response:
        """Spend the link and start a session; a wrong, used or expired link is refused."""
        lang = self._lang(request)
        client = request.client.host if request.client else "-"
        wait = self.logins.take(client)
        if wait:
            refused = self._html(request, "error.html", lang, 429, message="desk.too_many")
            refused.headers["Retry-After"] = str(wait)
            return refused
        try:  # the button's form carries nothing the desk needs, but it is read within bounds
            await read_body(request, self.settings.max_form_bytes)
        except BodyTooLarge:
            return self._too_large(request, lang, None, False)
        token = request.path_params["token"]
        now = self.clock()
        async with self.sessions() as session:
            contact_id = await desk.use_login(session, token, now) if len(token) < 100 else None
            contact = await session.get(Contact, contact_id) if contact_id is not None else None
            if contact is None or not is_staff(contact):
                await session.commit()
                log.info("desk: a sign-in link was refused (unknown, used or expired)")
                return self._html(request, "error.html", lang, 403, message="desk.link_refused")
            cookie, _csrf = desk.open_session(session, contact.id, now)
            await session.commit()
        log.info("desk: contact %s signed in", contact.id)
        response = RedirectResponse(f"{PREFIX}/", status_code=303)
        response.set_cookie(
            COOKIE,
            cookie,
            path=PREFIX,
            httponly=True,
            samesite="lax",
            secure=self._secure(request),
        )
        return response

    async def logout(self, request: Request, _session: AsyncSession, viewer: Viewer) -> Response:
        """Sign this browser out."""
        desk.end_session(viewer.session, self.clock())
        response = self._html(request, "signin.html", viewer.lang, signed_out=True)
        response.delete_cookie(COOKIE, path=PREFIX)
        return response

    async def set_language(self, request: Request) -> Response:
        """Switch the desk's language (a cookie), back to where the person was."""
        lang = request.path_params["lang"]
        back = request.query_params.get("back") or f"{PREFIX}/"
        if not back.startswith(f"{PREFIX}/") or back.startswith("//"):
            back = f"{PREFIX}/"
        response = RedirectResponse(back, status_code=303)
        if lang in self.texts.languages:
            response.set_cookie(LANG, lang, path=PREFIX, samesite="lax", max_age=365 * 86400)
        return response

    # --- the filter -------------------------------------------------------------------------

    def _zone(self, viewer: Viewer) -> ZoneInfo:
        return ZoneInfo(DEFAULT_ZONE)

    async def _filter(
        self, request: Request, session: AsyncSession, viewer: Viewer
    ) -> tuple[desk.Filter, dict[str, Any]]:
        """The filter of the query string (unknown values are left out), and the form's values."""
        q = request.query_params
        statuses = [s for s in q.getlist("status") if s in STATUSES]
        category = q.get("category") or None
        if category is not None and self.core.category(category) is None:
            category = None
        urgent = {"1": True, "0": False}.get(q.get("urgent") or "")
        area_ids = viewer.scope
        area = _int(q.get("area"))
        if area is not None and area in viewer.scope:
            below = await _below(session, area)
            area_ids = [a for a in viewer.scope if a in below]
        else:
            area = None
        zone = self._zone(viewer)
        since_day, until_day = _day(q.get("from")), _day(q.get("to"))
        since = _midnight(since_day, zone) if since_day else None
        until = _midnight(until_day + timedelta(days=1), zone) if until_day else None
        text = (q.get("q") or "").strip()[:100] or None
        officer = _int(q.get("officer"))
        sort = q.get("sort") if q.get("sort") in desk.SORTS else "newest"
        f = desk.Filter(
            area_ids=area_ids,
            statuses=statuses,
            category=category,
            urgent=urgent,
            since=since,
            until=until,
            text=text,
            officer_id=officer,
            sort=sort or "newest",
        )
        values = {
            "status": statuses,
            "category": category or "",
            "urgent": q.get("urgent") if urgent is not None else "",
            "area": area or "",
            "from": since_day.isoformat() if since_day else "",
            "to": until_day.isoformat() if until_day else "",
            "q": text or "",
            "officer": officer or "",
            "sort": sort,
        }
        return f, values

    def _query(self, values: dict[str, Any], **changes: Any) -> str:
        """The filter as a query string (empty values left out)."""
        merged = {**values, **changes}
        pairs: list[tuple[str, str]] = []
        for key, value in merged.items():
            if isinstance(value, list):
                pairs.extend((key, str(v)) for v in value)
            elif key == "sort" and value == "newest":
                continue
            elif value not in ("", None, 0):
                pairs.append((key, str(value)))
        return urlencode(pairs)

    async def _choices(
        self, session: AsyncSession, viewer: Viewer
    ) -> dict[str, list[tuple[str, str]]]:
        lang = viewer.lang
        catalog = self.core.catalog
        areas = await desk.areas_of(session, viewer.scope)
        staff = await desk.staff_of(session, viewer.scope)
        return {
            "statuses": [(s, status_label(catalog, lang, s)) for s in STATUSES],
            "categories": [
                (c.key, category_label(catalog, lang, c.key)) for c in self.core.categories
            ],
            "areas": [(str(a.id), a.name) for a in areas],
            "officers": [
                (str(c.id), c.display_name or self.texts.text(lang, "desk.unnamed")) for c in staff
            ],
            "sorts": [(s, self.texts.text(lang, f"desk.sort_{s}")) for s in desk.SORTS],
        }

    # --- pages ------------------------------------------------------------------------------

    async def reports_page(
        self, request: Request, session: AsyncSession, viewer: Viewer
    ) -> Response:
        """The reports list with its filter, sorting and pages."""
        f, values = await self._filter(request, session, viewer)
        page = max(1, _int(request.query_params.get("page")) or 1)
        size = self.settings.page_size
        rows = await desk.list_reports(session, f, limit=size + 1, offset=(page - 1) * size)
        more = len(rows) > size
        rows = rows[:size]
        catalog = self.core.catalog
        items = [
            {
                "ticket": r.report.ticket,
                "created": format_time(r.report.created_at),
                "category": category_label(catalog, viewer.lang, r.report.category),
                "status": r.report.status,
                "status_label": status_label(catalog, viewer.lang, r.report.status),
                "urgent": r.report.urgent,
                "area": r.area_name,
                "assignee": r.assignee_name,
                "description": _short(description_text(catalog, viewer.lang, r.report.description)),
            }
            for r in rows
        ]
        flash = self._take_flash(request)
        response = self._html(
            request,
            "list.html",
            viewer.lang,
            viewer=viewer,
            items=items,
            values=values,
            choices=await self._choices(session, viewer),
            page=page,
            prev_url=f"?{self._query(values, page=page - 1)}" if page > 1 else None,
            next_url=f"?{self._query(values, page=page + 1)}" if more else None,
            query=self._query(values),
            flash=flash,
        )
        if flash:
            response.delete_cookie(FLASH, path=PREFIX)
        return response

    async def report_page(
        self, request: Request, session: AsyncSession, viewer: Viewer
    ) -> Response:
        """One report: its facts, photos, place, followers, trail and the actions."""
        report = await desk.report_in_scope(session, request.path_params["ticket"], viewer.scope)
        if report is None:
            return self.not_found(request, viewer)
        self._accessed(session, viewer, AccessKind.REPORT, report_id=report.id)
        flash = self._take_flash(request)
        response = await self.report_view(request, session, viewer, report, flash=flash)
        if flash:
            response.delete_cookie(FLASH, path=PREFIX)
        return response

    async def report_view(
        self,
        request: Request,
        session: AsyncSession,
        viewer: Viewer,
        report: Report,
        *,
        flash: str | None = None,
        kept: dict[str, str | None] | None = None,
        status: int = 200,
    ) -> Response:
        """The report's page; ``kept``: the notes typed into an action's box, shown again
        (an action refused for its photo keeps what was written)."""
        lang = viewer.lang
        catalog = self.core.catalog
        area = await session.get(Area, report.area_id)
        zone = area.timezone if area else None
        reporter = None
        if not report.anonymous and report.reporter_id is not None:
            person = await session.get(Contact, report.reporter_id)
            reporter = person.display_name if person else None
        assignee = await session.get(Contact, report.assignee_id) if report.assignee_id else None
        trail = []
        for event, actor in await desk.trail(session, report.id):
            hidden = (
                report.anonymous
                and event.actor_id is not None
                and (event.actor_id == report.reporter_id or event.kind == "created")
            )
            if hidden or actor is None:
                who = self.texts.text(lang, "desk.anonymous" if hidden else "desk.nobody")
            else:
                who = actor.display_name or self.texts.text(lang, "desk.unnamed")
            note = event.note if event.kind != "handed" else None
            if event.kind == "handed" and event.note and event.note.isdigit():
                handed = await session.get(Contact, int(event.note))
                note = handed.display_name if handed else None
            trail.append(
                {
                    "time": format_time(event.created_at, zone),
                    "kind": self.texts.get(lang, f"desk.event_{event.kind}") or event.kind,
                    "who": who,
                    "note": note,
                    "via": event.via,
                }
            )
        photos = await _photos(session, report.id)
        closure_photos = await _photos(session, report.id, CLOSURE_MEDIA)
        chain = await area_chain_ids(session, report.area_id)
        officers = [c for c in await desk.staff_of(session, chain) if c.id != report.assignee_id]
        status_now = ReportStatus(report.status)
        closure = self.core.closure_photo(report.category)
        problem = await problem_store.problem_of_report(session, report.id)
        if problem is not None and problem.area_id not in viewer.scope:
            problem = None  # a problem of an area above the person's: not theirs to open
        return self._html(
            request,
            "report.html",
            lang,
            status,
            viewer=viewer,
            report=report,
            description=description_text(catalog, lang, report.description),
            area=area.name if area else "-",
            created=format_time(report.created_at, zone),
            category=category_label(catalog, lang, report.category),
            status_label=status_label(catalog, lang, report.status),
            reporter=reporter,
            assignee=assignee.display_name if assignee else None,
            followers=await desk.follower_count(session, report.id),
            problem=problem,
            trail=trail,
            photos=photos,
            closure_photos=closure_photos,
            officers=[
                (c.id, c.display_name or self.texts.text(lang, "desk.unnamed")) for c in officers
            ],
            can_claim=status_now in (ReportStatus.NEW, ReportStatus.REOPENED),  # as the alert
            can_close=status_now.is_open,
            can_reopen=rules.may_reopen(report),
            closure=closure if self.photo_limit > 0 else "off",
            closure_needs_store=closure == "required" and self.photo_limit <= 0,
            photo_limit=self.photo_limit,
            photo_mb=megabytes(self.photo_limit, lang),
            kept=kept or {},
            tiles_url=self.settings.tiles_url,
            tiles_attribution=self.settings.tiles_attribution,
            flash=flash,
        )

    async def report_action(
        self, request: Request, session: AsyncSession, viewer: Viewer
    ) -> Response:
        """Claim, resolve (note, photo), reject (reason), mark a duplicate (the main ticket),
        reopen (reason) or hand over, as in chat (``bot.web.desk.actions``)."""
        return await actions.report_action(self, request, session, viewer)

    async def media_file(self, request: Request, session: AsyncSession, viewer: Viewer) -> Response:
        """A report's photo from the media store (only of a report the person may see)."""
        item = await session.get(ReportMedia, request.path_params["media_id"])
        if item is None or item.store_ref is None or self.media is None:
            return self.not_found(request, viewer)
        if await desk.report_in_scope_by_id(session, item.report_id, viewer.scope) is None:
            return self.not_found(request, viewer)
        self._accessed(session, viewer, AccessKind.PHOTO, report_id=item.report_id)
        try:
            data = await self.media.read(item.store_ref)
        except (FileNotFoundError, KeyError, OSError):
            return self.not_found(request, viewer)
        headers = {**SECURITY_HEADERS, "Cache-Control": "private, max-age=3600"}
        return Response(data, media_type=item.content_type or "image/jpeg", headers=headers)

    async def download(self, request: Request, session: AsyncSession, viewer: Viewer) -> Response:
        """The current filter as CSV or GeoJSON, with /ekspor's anonymity rules."""
        fmt = request.path_params["fmt"]
        if fmt not in exports.FORMATS:
            return self.not_found(request, viewer)
        f, values = await self._filter(request, session, viewer)
        rows = await exports.report_rows(
            session, None, None, where=desk.conditions(f, desk.dialect_of(session))
        )
        subject = describe_filter({"format": fmt, **values, "reports": len(rows)})
        self._accessed(session, viewer, AccessKind.EXPORT, subject=subject)
        name = f"ktn-laporan-{self.clock():%Y%m%d}.{fmt}"
        media = {"csv": "text/csv; charset=utf-8", "geojson": "application/geo+json"}[fmt]
        headers = {**SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{name}"'}
        return Response(exports.render(rows, fmt), media_type=media, headers=headers)

    async def map_page(self, request: Request, session: AsyncSession, viewer: Viewer) -> Response:
        """The filtered reports on a map (the markers come from peta.json)."""
        _f, values = await self._filter(request, session, viewer)
        legend = [(s, status_label(self.core.catalog, viewer.lang, s)) for s in STATUSES]
        return self._html(
            request,
            "map.html",
            viewer.lang,
            viewer=viewer,
            values=values,
            choices=await self._choices(session, viewer),
            query=self._query(values),
            legend=legend,
            tiles_url=self.settings.tiles_url,
            tiles_attribution=self.settings.tiles_attribution,
        )

    async def map_data(self, request: Request, session: AsyncSession, viewer: Viewer) -> Response:
        """The map's markers for the filter, scoped like the list (newest ``map_limit``)."""
        f, _values = await self._filter(request, session, viewer)
        limit = self.settings.map_limit
        points = await desk.map_points(session, f, limit=limit + 1)
        catalog = self.core.catalog
        lang = viewer.lang
        body = {
            "truncated": len(points) > limit,
            "points": [
                {
                    "ticket": p.ticket,
                    "lat": p.latitude,
                    "lon": p.longitude,
                    "status": p.status,
                    "status_label": status_label(catalog, lang, p.status),
                    "category": category_label(catalog, lang, p.category),
                    "created": format_time(p.created_at),
                    "urgent": p.urgent,
                    "url": f"{PREFIX}/laporan/{p.ticket}",
                }
                for p in points[:limit]
            ],
        }
        return JSONResponse(body, headers=SECURITY_HEADERS)

    async def numbers_page(
        self, request: Request, session: AsyncSession, viewer: Viewer
    ) -> Response:
        """Reports per category per week, per area, open by age, time to claim and resolve
        (median, p90) per area and officer, escalations and overdue: charts and tables."""
        q = request.query_params
        zone = self._zone(viewer)
        now = self.clock()
        today = now.astimezone(zone).date()
        until_day = _day(q.get("to")) or today
        # default: this week and the three before it (the monthly meeting's view)
        default_from = until_day - timedelta(days=until_day.weekday()) - timedelta(weeks=3)
        since_day = _day(q.get("from")) or default_from
        if since_day > until_day:
            since_day = until_day
        area_ids = viewer.scope
        area = _int(q.get("area"))
        if area is not None and area in viewer.scope:
            below = await _below(session, area)
            area_ids = [a for a in viewer.scope if a in below]
        else:
            area = None
        since = _midnight(since_day, zone)
        until = _midnight(until_day + timedelta(days=1), zone)
        found = await self._cached_numbers(session, area_ids, since, until, now)
        view = await self._numbers_view(session, viewer, found, since_day, until_day)
        return self._html(
            request,
            "numbers.html",
            viewer.lang,
            viewer=viewer,
            values={"from": since_day.isoformat(), "to": until_day.isoformat(), "area": area or ""},
            choices=await self._choices(session, viewer),
            n=found,
            **view,
        )

    async def _cached_numbers(
        self,
        session: AsyncSession,
        area_ids: list[int],
        since: datetime,
        until: datetime,
        now: datetime,
    ) -> desk.Numbers:
        ttl = self.settings.numbers_cache_seconds
        key = (tuple(sorted(area_ids)), since, until)
        held = self._numbers.get(key)
        if ttl and held is not None and held[0] > time_now():
            found: desk.Numbers = held[1]
            return found
        found = await desk.numbers(session, area_ids, since, until, now)
        if ttl:
            if len(self._numbers) > 200:
                self._numbers.clear()
            self._numbers[key] = (time_now() + ttl, found)
        return found

    async def _numbers_view(
        self,
        session: AsyncSession,
        viewer: Viewer,
        found: desk.Numbers,
        since_day: date,
        until_day: date,
    ) -> dict[str, Any]:
        lang = viewer.lang
        t = self.texts.text
        catalog = self.core.catalog
        weeks = (until_day - since_day).days // 7 + 1
        week_labels = [f"{since_day + timedelta(weeks=w):%d/%m}" for w in range(weeks)]
        categories = sorted({c for c, _w in found.weekly})
        weekly_rows = [
            (
                category_label(catalog, lang, c),
                [found.weekly.get((c, w), 0) for w in range(weeks)],
                found.by_category.get(c, 0),
            )
            for c in categories
        ]
        week_totals = [sum(found.weekly.get((c, w), 0) for c in categories) for w in range(weeks)]
        areas = {a.id: a.name for a in await desk.areas_of(session, viewer.scope)}
        officer_ids = sorted(
            i for i in {*found.claim_by_officer, *found.resolve_by_officer} if i is not None
        )
        names = await desk.names_of(session, officer_ids)
        area_ids = sorted(
            {
                *found.by_area,
                *found.claim_by_area,
                *found.resolve_by_area,
                *found.escalations_by_area,
                *found.overdue_by_area,
            },
            key=lambda i: areas.get(i, ""),
        )
        per_area = [
            {
                "name": areas.get(i, "-"),
                "created": found.by_area.get(i, 0),
                "claim": found.claim_by_area.get(i),
                "resolve": found.resolve_by_area.get(i),
                "escalations": found.escalations_by_area.get(i, 0),
                "overdue": found.overdue_by_area.get(i, 0),
            }
            for i in area_ids
        ]
        per_officer = [
            {
                "name": names.get(i) or t(lang, "desk.unnamed"),
                "claim": found.claim_by_officer.get(i),
                "resolve": found.resolve_by_officer.get(i),
            }
            for i in officer_ids
        ]
        age_labels = [t(lang, f"desk.age_{i}") for i in range(len(found.open_by_age))]
        return {
            "week_labels": week_labels,
            "weekly_rows": weekly_rows,
            "week_totals": week_totals,
            "per_area": per_area,
            "per_officer": per_officer,
            "age_rows": list(zip(age_labels, found.open_by_age, strict=True)),
            "weekly_chart": bar_chart(
                list(zip(week_labels, week_totals, strict=True)), t(lang, "desk.chart_weekly")
            ),
            "category_chart": bar_chart(
                [(r[0], r[2]) for r in weekly_rows], t(lang, "desk.chart_category")
            ),
            "area_chart": bar_chart(
                [(str(r["name"]), int(str(r["created"]))) for r in per_area],
                t(lang, "desk.chart_area"),
            ),
            "age_chart": bar_chart(
                list(zip(age_labels, found.open_by_age, strict=True)), t(lang, "desk.chart_age")
            ),
            "minutes": lambda m: _duration(t, lang, m),
        }

    # --- problems (bot.web.desk.problems) ---------------------------------------------------

    async def problems_page(
        self, request: Request, session: AsyncSession, viewer: Viewer
    ) -> Response:
        """The problems of the person's areas, the suggestions waiting, a new problem."""
        return await problems.list_page(self, request, session, viewer)

    async def problems_action(
        self, request: Request, session: AsyncSession, viewer: Viewer
    ) -> Response:
        """Make a problem, accept or dismiss a suggestion."""
        return await problems.list_action(self, request, session, viewer)

    async def problem_page(
        self, request: Request, session: AsyncSession, viewer: Viewer
    ) -> Response:
        """One problem: its SARA stages, reports, map, notes, actions and assessment."""
        return await problems.problem_page(self, request, session, viewer)

    async def problem_action(
        self, request: Request, session: AsyncSession, viewer: Viewer
    ) -> Response:
        """A form of the problem's page."""
        return await problems.problem_action(self, request, session, viewer)

    async def problem_map(
        self, request: Request, session: AsyncSession, viewer: Viewer
    ) -> Response:
        """The places of the problem's reports."""
        return await problems.problem_map(self, request, session, viewer)

    def not_found(self, request: Request, viewer: Viewer) -> Response:
        return self._html(
            request, "error.html", viewer.lang, 404, message="desk.not_found", viewer=viewer
        )


# --- small helpers -------------------------------------------------------------------------


def _int(value: str | None) -> int | None:
    """A query's number (ASCII digits, at most 12), else None."""
    if value is None or not value.isascii() or not value.isdecimal() or len(value) > 12:
        return None
    return int(value)


def _day(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def _short(text: str, limit: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _duration(t: Callable[..., str], lang: str, minutes: float | None) -> str:
    if minutes is None:
        return "–"
    whole = round(minutes)
    if whole < 60:
        return t(lang, "desk.minutes", minutes=whole)
    if whole < 48 * 60:
        return t(lang, "desk.hours", hours=whole // 60, minutes=whole % 60)
    return t(lang, "desk.days", days=whole // (24 * 60), hours=(whole % (24 * 60)) // 60)


async def _below(session: AsyncSession, area_id: int) -> set[int]:
    return set(await descendant_ids(session, area_id))


async def _photos(session: AsyncSession, report_id: int, purpose: str | None = None) -> list[int]:
    """The ids of the report's stored photos (its own, or ``purpose``: its closure photos)."""
    found = await (
        media_of(session, report_id, purpose) if purpose else media_of(session, report_id)
    )
    return [m.id for m in found if m.kind == "photo" and m.store_ref is not None]

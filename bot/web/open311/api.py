"""The Open311 GeoReport v2 endpoints under ``/open311/v2`` (README: Open311 (GeoReport v2)).

This adapter speaks HTTP: formats, keys, rate limits, jurisdiction, reading the form. What a
POST files and who may read what is the core's (``handlers.open311``), in one transaction per
request; after a POST's commit the dispatcher is woken for the alert, as after a chat message.

Keys: ``api_key`` in the POST form (the spec's place), or an ``X-Api-Key`` header on any
request (for GETs better than the query string, which proxies log). A key is of an area: it
files reports there and below, and reads theirs. A request with a key counts against that key's
rate limit; every other request (no key, or a wrong one) against its client address's. Nothing
personal is logged: a line names the key's id and the report's, never the form.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import phonenumbers
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from bot.config import Open311Settings
from bot.web.app import BodyTooLarge, read_body
from bot.web.open311.formats import FORMATS, errors, render
from bot.web.open311.limits import RateLimiter
from handlers.config import CoreConfig
from handlers.context import Context
from handlers.open311 import (
    ApiReport,
    Refused,
    file_request,
    request_views,
    service_definition,
    services,
    statuses_for,
)
from handlers.permissions import area_chain_ids
from storage import open311
from storage.areas import descendant_ids
from storage.db import Sessions
from storage.models import Report
from storage.open311 import Submitter
from storage.reports import normalise_ticket
from storage.types import utcnow

log = logging.getLogger(__name__)

PREFIX = "/open311/v2"
SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
WINDOW = timedelta(days=90)  # the spec's default and longest range of GET requests
PAGE = 1000  # the spec's most results of GET requests
MAX_FIELDS = 100
_ATTRIBUTE = re.compile(r"^attribute\[([A-Za-z0-9_\-]{1,64})\](\[\])?$")
_OFFSET_SPACE = re.compile(r" (\d\d:?\d\d)$")  # "+07:00" sent unencoded arrives as " 07:00"


class TooMany(Exception):
    """Over a rate limit: answered 429 with Retry-After."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is asking: a valid key (its id and area) or nobody in particular."""

    key_id: int | None = None
    area_id: int | None = None

    @property
    def keyed(self) -> bool:
        return self.key_id is not None


Handler = Callable[[Request, str], Awaitable[Response]]


class Open311Api:
    """The endpoints, sharing the bot's database, core settings and dispatcher."""

    def __init__(
        self,
        sessions: Sessions,
        core: CoreConfig,
        settings: Open311Settings,
        *,
        notify: Callable[[], None],
        news_by_phone: bool,
        max_body: int,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessions = sessions
        self.core = core
        self.settings = settings
        self.notify = notify
        self.news_by_phone = news_by_phone
        self.max_body = max_body
        self.now = now
        self.per_key = RateLimiter(settings.per_key_per_minute, clock=clock)
        self.per_address = RateLimiter(settings.per_address_per_minute, clock=clock)
        self.changeset = now().replace(microsecond=0)  # services change with the config only

    def routes(self) -> list[BaseRoute]:
        """Everything under /open311/v2 (unknown paths answer the spec's 404)."""
        return [
            Mount(
                PREFIX,
                routes=[
                    Route("/discovery.{fmt}", self._wrap(self.discovery), methods=["GET"]),
                    Route("/services.{fmt}", self._wrap(self.services), methods=["GET"]),
                    Route("/services/{code}.{fmt}", self._wrap(self.definition), methods=["GET"]),
                    Route("/requests.{fmt}", self._wrap(self.requests), methods=["GET", "POST"]),
                    Route("/requests/{id}.{fmt}", self._wrap(self.request), methods=["GET"]),
                    Route("/tokens/{token}.{fmt}", self._wrap(self.token), methods=["GET"]),
                    Route("/{rest:path}", self._unknown),
                ],
            )
        ]

    # --- plumbing --------------------------------------------------------------------------

    def _wrap(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            fmt = str(request.path_params.get("fmt", ""))
            if fmt not in FORMATS:
                return errors("json", 404, f"format {fmt!r} is not served: use .json or .xml")
            try:
                return await handler(request, fmt)
            except Refused as exc:
                return errors(fmt, exc.status, exc.description)
            except TooMany as exc:
                return errors(
                    fmt,
                    429,
                    f"too many requests: try again in {exc.retry_after} s",
                    {"Retry-After": str(exc.retry_after)},
                )
            except Exception as exc:  # the client hears of it; the log gets the kind only
                log.error("open311 %s failed: %s", request.url.path, type(exc).__name__)
                return errors(fmt, 500, "the service could not answer; please try again later")

        return endpoint

    async def _unknown(self, request: Request) -> Response:
        return errors("json", 404, "no such Open311 resource")

    def _jurisdiction(self, value: str | None) -> None:
        if value and value.strip() and value.strip() != self.settings.jurisdiction_id:
            raise Refused(404, f"jurisdiction_id {value.strip()!r} not found")

    async def _caller(self, request: Request, key_text: str | None) -> Caller:
        """The key's owner (403 for a wrong or revoked key), within the rate limits."""
        address = request.client.host if request.client else "unknown"
        key_text = (key_text or "").strip()
        if not key_text:
            self._spend(self.per_address, f"address:{address}")
            return Caller()
        async with self.sessions() as session:
            key = await open311.key_by_secret(session, key_text)
            valid = key is not None and key.revoked_at is None
            if key is not None and valid and open311.touch_key(key, self.now()):
                await session.commit()
        if key is None or not valid:
            self._spend(self.per_address, f"address:{address}")  # guessing keys costs too
            raise Refused(403, "api_key invalid or revoked")
        self._spend(self.per_key, f"key:{key.id}")
        return Caller(key.id, key.area_id)

    @staticmethod
    def _spend(limiter: RateLimiter, name: str) -> None:
        wait = limiter.take(name)
        if wait:
            raise TooMany(wait)

    @staticmethod
    def _header_key(request: Request) -> str | None:
        return request.headers.get("x-api-key")

    # --- discovery and services ------------------------------------------------------------

    async def discovery(self, request: Request, fmt: str) -> Response:
        """Where the API is and which formats it speaks."""
        await self._caller(request, self._header_key(request))
        base = self.settings.public_url or str(request.base_url).rstrip("/")
        changeset = self.changeset.isoformat().replace("+00:00", "Z")
        return render(
            fmt,
            "discovery",
            {
                "changeset": changeset,
                "contact": self.settings.contact,
                "key_service": self.settings.key_service,
                "endpoints": [
                    {
                        "specification": SPECIFICATION,
                        "url": base + PREFIX,
                        "changeset": changeset,
                        "type": "production",
                        "formats": ["text/xml", "application/json"],
                    }
                ],
            },
        )

    async def services(self, request: Request, fmt: str) -> Response:
        """The categories."""
        self._jurisdiction(request.query_params.get("jurisdiction_id"))
        await self._caller(request, self._key_in_query(request))
        return render(fmt, "services", services(self.core))

    async def definition(self, request: Request, fmt: str) -> Response:
        """What one category asks beyond the standard fields."""
        self._jurisdiction(request.query_params.get("jurisdiction_id"))
        await self._caller(request, self._key_in_query(request))
        code = str(request.path_params["code"])
        return render(fmt, "service_definition", service_definition(self.core, code))

    async def token(self, request: Request, fmt: str) -> Response:
        """No tokens: every POST answers its service_request_id at once (type realtime)."""
        self._jurisdiction(request.query_params.get("jurisdiction_id"))
        await self._caller(request, self._key_in_query(request))
        raise Refused(404, "token not found: service requests get their id at once")

    def _key_in_query(self, request: Request) -> str | None:
        return self._header_key(request) or request.query_params.get("api_key")

    # --- reading ---------------------------------------------------------------------------

    async def _reader(self, request: Request) -> Caller:
        self._jurisdiction(request.query_params.get("jurisdiction_id"))
        caller = await self._caller(request, self._key_in_query(request))
        if not caller.keyed and not self.settings.public:
            raise Refused(403, "api_key required: reports are not published without a key")
        return caller

    async def requests(self, request: Request, fmt: str) -> Response:
        """GET: reports by the spec's filters. POST: file one."""
        if request.method == "POST":
            return await self.create(request, fmt)
        caller = await self._reader(request)
        params = request.query_params
        ids = _listed(params.getlist("service_request_id"))
        async with self.sessions() as session:
            scope = await descendant_ids(session, caller.area_id) if caller.area_id else None
            if ids:  # "overrides all other arguments"
                tickets = [t for t in (normalise_ticket(i) for i in ids[:PAGE]) if t]
                found = await open311.find_reports(session, area_ids=scope, tickets=tickets)
            else:
                start, end = _window(params.get("start_date"), params.get("end_date"), self.now())
                wanted = _listed(params.getlist("status"))
                if any(s not in ("open", "closed") for s in wanted):
                    raise Refused(400, "status must be open or closed (comma delimited)")
                codes = _listed(params.getlist("service_code"))
                found = await open311.find_reports(
                    session,
                    area_ids=scope,
                    categories=codes or None,
                    statuses=statuses_for(wanted) if wanted else None,
                    start=start,
                    end=end,
                    limit=PAGE,
                )
            views = await self._views(session, found, caller)
        return render(fmt, "service_requests", views)

    async def request(self, request: Request, fmt: str) -> Response:
        """One report, by its ticket."""
        caller = await self._reader(request)
        raw = str(request.path_params["id"])
        ticket = normalise_ticket(raw)
        async with self.sessions() as session:
            found = await open311.find_reports(session, area_ids=None, tickets=[ticket or ""])
            if not found:
                raise Refused(404, f"service_request_id {raw!r} not found")
            report = found[0]
            if caller.area_id is not None and caller.area_id not in await area_chain_ids(
                session, report.area_id
            ):
                raise Refused(403, "this api_key may not read reports of that area")
            views = await self._views(session, found, caller)
        return render(fmt, "service_requests", views)

    async def _views(
        self, session: AsyncSession, found: Sequence[Report], caller: Caller
    ) -> list[dict[str, Any]]:
        return await request_views(
            session,
            self.core,
            found,
            keyed=caller.keyed,
            round_digits=None if caller.keyed else self.settings.round_location_digits,
        )

    # --- filing ----------------------------------------------------------------------------

    async def create(self, request: Request, fmt: str) -> Response:
        """POST requests: file a report as the key's area's system, like a resident would."""
        form, attributes = await self._form(request)
        self._jurisdiction(form.get("jurisdiction_id"))
        caller = await self._caller(request, self._header_key(request) or form.get("api_key"))
        if caller.key_id is None or caller.area_id is None:
            raise Refused(403, "api_key required to file a report")
        code = form.get("service_code")
        if not code:
            raise Refused(400, "service_code was not provided")
        latitude = _coordinate(form.get("lat"), "lat", 90)
        longitude = _coordinate(form.get("long"), "long", 180)
        api_report = ApiReport(
            key_id=caller.key_id,
            key_area_id=caller.area_id,
            service_code=code,
            description=form.get("description"),
            area_code=form.get("address_id"),
            latitude=latitude,
            longitude=longitude,
            address=form.get("address_string"),
            attributes=attributes,
            submitter=Submitter(
                first_name=_short(form, "first_name"),
                last_name=_short(form, "last_name"),
                email=_email(form.get("email")),
                phone=_phone(form.get("phone")),
                device_id=_short(form, "device_id"),
                account_id=_short(form, "account_id"),
            ),
            idempotency_key=_idempotency(request.headers.get("idempotency-key")),
        )
        filed = None
        for attempt in range(3):  # a new ticket that another report took at that moment
            try:
                async with self.sessions() as session:
                    ctx = Context(config=self.core, now=self.now())
                    filed = await file_request(
                        session,
                        ctx,
                        api_report,
                        resubmit_window=timedelta(minutes=self.settings.resubmit_window_minutes),
                        news_by_phone=self.news_by_phone,
                    )
                    await session.commit()
                break
            except IntegrityError:
                if attempt == 2:
                    raise
        assert filed is not None
        if filed.outbox:
            self.notify()
        log.info(
            "open311: key %d %s report %d",
            caller.key_id,
            "filed" if filed.created else "repeated",
            filed.report.id,
        )
        return render(
            fmt,
            "service_requests",
            [
                {
                    "service_request_id": filed.report.ticket,
                    "service_notice": filed.notice,
                    "account_id": filed.account_id,
                }
            ],
            201 if filed.created else 200,
        )

    async def _form(self, request: Request) -> tuple[dict[str, str], dict[str, str]]:
        """The POST's form fields (first value of each, trimmed, empty ones left out) and its
        attribute[code] answers."""
        try:
            body = await read_body(request, self.max_body)
        except BodyTooLarge:
            raise Refused(413, f"the request is larger than {self.max_body} bytes") from None
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if body and kind != "application/x-www-form-urlencoded":
            raise Refused(400, "send the fields as application/x-www-form-urlencoded")
        try:
            pairs = parse_qsl(
                body.decode("utf-8"),
                keep_blank_values=True,
                max_num_fields=MAX_FIELDS,
                errors="strict",
            )
        except UnicodeDecodeError:
            raise Refused(400, "the form is not UTF-8") from None
        except ValueError:
            raise Refused(400, f"the form has more than {MAX_FIELDS} fields") from None
        form: dict[str, str] = {}
        attributes: dict[str, str] = {}
        for name, raw in pairs:
            value = raw.replace("\x00", "").strip()
            if not value:
                continue  # "optional": empty is the same as not sent
            match = _ATTRIBUTE.match(name)
            if match:
                attributes.setdefault(match.group(1), value)
            else:
                form.setdefault(name, value)
        return form, attributes


def _listed(values: list[str]) -> list[str]:
    """'a,b' and repeated parameters, as one list without blanks."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _when(text: str, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(_OFFSET_SPACE.sub(r"+\1", text.strip()))
    except ValueError:
        raise Refused(400, f"{name} must be a W3C date-time such as 2026-05-01T00:00:00Z") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _window(
    start_text: str | None, end_text: str | None, now: datetime
) -> tuple[datetime, datetime]:
    """The spec's range: the given one (at most 90 days), else the most recent 90 days."""
    start = _when(start_text, "start_date") if start_text else None
    end = _when(end_text, "end_date") if end_text else None
    if start is not None and end is not None:
        if end < start:
            raise Refused(400, "end_date is before start_date")
        if end - start > WINDOW:
            raise Refused(400, "start_date and end_date may not span more than 90 days")
        return start, end
    if start is not None:
        return start, start + WINDOW
    end = end or now
    return end - WINDOW, end


def _coordinate(text: str | None, name: str, limit: float) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise Refused(400, f"{name} must be a number (WGS84 degrees)") from None
    if not -limit <= value <= limit or value != value:
        raise Refused(400, f"{name} must be between -{limit:g} and {limit:g}")
    return value


def _short(form: Mapping[str, str], name: str, limit: int = 128) -> str | None:
    value = form.get(name)
    if value is not None and len(value) > limit:
        raise Refused(400, f"{name} is longer than {limit} characters")
    return value


def _email(value: str | None) -> str | None:
    if value is None:
        return None
    if len(value) > 254 or not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
        raise Refused(400, "email is not an e-mail address")
    return value


def _phone(value: str | None) -> str | None:
    """E.164 ('0812…' is read as Indonesian, like WhatsApp numbers)."""
    if value is None:
        return None
    try:
        number = phonenumbers.parse(value, "ID")
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_possible_number(number):
        raise Refused(400, "phone is not a phone number (E.164 such as +6281234567890)")
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def _idempotency(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    if len(value) > 200:
        raise Refused(400, "Idempotency-Key is longer than 200 characters")
    return value.strip()

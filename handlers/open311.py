"""Open311 GeoReport v2, the core's side: a report filed through the API, what reports and
categories look like to Open311 clients, and the phone link that lets the person a report was
filed for follow it on a chat channel.

The API is one more door in: a POST becomes a report through the chat flow's own finishing step
(``handlers.report.file_report``: the report, its trail and escalation time, the alert routed
to the area's group or officers), in the caller's transaction. The web adapter
(``bot/web/open311``) speaks HTTP, keys, rate limits, JSON and XML; what may be filed where,
and who may read what, is decided here.

Privacy. Reads without a key (``[open311] public``) never carry reporter fields; their
locations are rounded and phone numbers or e-mail addresses someone typed into a description,
address or note are blanked. Reads with a key (of the report's area or one above it) carry the
reporter fields of non-anonymous reports only. An anonymous report filed through the API keeps
no name or e-mail of the person at all: only the phone number (so they can get their own news)
and the submitting system's device and account ids.

Status news. The API cannot reach anyone by itself, and nobody is messaged who never consented:
a report filed with a ``phone`` is followed by the contact with that number once that contact,
having accepted the privacy notice, writes to the bot (any message); from then on they get its
status news like any follower. Nothing is sent to the number before that.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.config import Category, CoreConfig
from handlers.context import Context
from handlers.permissions import area_chain_ids
from handlers.render import DEFAULT_ZONE, category_label
from handlers.report import file_report
from handlers.turn import Turn
from handlers.types import Reply
from storage import open311, reports
from storage.areas import get_by_code
from storage.models import Area, Contact, Outbox, Report
from storage.open311 import Submitter
from storage.types import ReportStatus

SPEC_REQUEST_FIELDS = (
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
)
# Added to reads with a key, for reports that are not anonymous (never to public reads).
REPORTER_FIELDS = ("first_name", "last_name", "email", "phone", "account_id")


class Refused(Exception):
    """A request the API answers with an error: its HTTP status and a description for the
    client (Open311's ``{code, description}``)."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


# --- services ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Attribute:
    """One more question a category asks beyond the standard fields (a service definition's
    attribute); both are yes/no lists: ``true`` / ``false``."""

    code: str
    order: int
    description_key: str
    required: bool = False


ANONYMOUS = Attribute("anonymous", 1, "open311.attribute_anonymous")
URGENT = Attribute("urgent", 2, "open311.attribute_urgent")
YES_NO = ("true", "false")


def attributes_of(category: Category) -> tuple[Attribute, ...]:
    """What the chat flow asks for this category beyond the story and the place: whether the
    reporter stays anonymous, and, unless the category is urgent by itself, whether it is
    urgent (``/darurat`` in chat)."""
    return (ANONYMOUS,) if category.urgent else (ANONYMOUS, URGENT)


def pillar_label(config: CoreConfig, lang: str, pillar: str) -> str:
    """The pillar's name ("Sosial-Ekonomi")."""
    return config.catalog.get(lang, f"pillar.{pillar}") or pillar.replace("_", " ").title()


def services(config: CoreConfig) -> list[dict[str, Any]]:
    """GET services: one per configured category, in config order."""
    lang = config.default_language
    out = []
    for category in config.categories:
        name = category_label(config.catalog, lang, category.key)
        pillar = pillar_label(config, lang, category.pillar)
        out.append(
            {
                "service_code": category.key,
                "service_name": name,
                "description": config.catalog.text(
                    lang, "open311.service_description", category=name, pillar=pillar
                ),
                "metadata": bool(attributes_of(category)),
                "type": "realtime",
                "keywords": ", ".join(category.keywords),
                "group": pillar,
            }
        )
    return out


def service_definition(config: CoreConfig, code: str) -> dict[str, Any]:
    """GET service definition; ``Refused`` 404 for a code that is no category."""
    category = config.category(code)
    if category is None:
        raise Refused(404, f"service_code {code!r} not found")
    lang = config.default_language
    values = [
        {"key": "true", "name": config.catalog.text(lang, "common.yes")},
        {"key": "false", "name": config.catalog.text(lang, "common.no")},
    ]
    return {
        "service_code": category.key,
        "attributes": [
            {
                "variable": True,
                "code": attribute.code,
                "datatype": "singlevaluelist",
                "required": attribute.required,
                "datatype_description": config.catalog.text(lang, "open311.datatype_yes_no"),
                "order": attribute.order,
                "description": config.catalog.text(lang, attribute.description_key),
                "values": values,
            }
            for attribute in attributes_of(category)
        ],
    }


# --- filing ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApiReport:
    """A POST requests, as the adapter read it (the phone already in E.164)."""

    key_id: int
    key_area_id: int
    service_code: str
    description: str | None
    area_code: str | None = None  # ``address_id``: an area code (Kemendagri)
    latitude: float | None = None
    longitude: float | None = None
    address: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)
    submitter: Submitter = field(default_factory=Submitter)
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class Filed:
    """The answer to a POST: the report (new, or the one a repeated POST already filed)."""

    report: Report
    created: bool
    outbox: list[Outbox]
    notice: str
    account_id: str | None


def fingerprint(request: ApiReport) -> str:
    """What makes two POSTs the same: the key and its Idempotency-Key when the client sent
    one, else the key and everything the POST said."""
    if request.idempotency_key:
        material: list[Any] = [request.key_id, "idempotency", request.idempotency_key]
    else:
        s = request.submitter
        material = [
            request.key_id,
            request.service_code,
            request.description,
            request.area_code,
            request.latitude,
            request.longitude,
            request.address,
            sorted(request.attributes.items()),
            [s.first_name, s.last_name, s.email, s.phone, s.device_id, s.account_id],
        ]
    return hashlib.sha256(json.dumps(material, ensure_ascii=False).encode()).hexdigest()


def _flag(request: ApiReport, attribute: Attribute) -> bool:
    return request.attributes.get(attribute.code, "false") == "true"


async def _area_for(session: AsyncSession, request: ApiReport) -> Area:
    """The report's area: ``address_id`` when given, else the key's; the key must be of that
    area or one above it."""
    if request.area_code is None:
        area = await session.get(Area, request.key_area_id)
        if area is None:  # pragma: no cover - the key's area is deleted with its keys
            raise Refused(403, "the api_key's area no longer exists")
        return area
    area = await get_by_code(session, request.area_code)
    if area is None:
        raise Refused(400, f"address_id {request.area_code!r} is not a known area code")
    if request.key_area_id not in await area_chain_ids(session, area.id):
        raise Refused(
            403, f"this api_key may not file reports in area {area.code} (another area's key)"
        )
    return area


def _validate(config: CoreConfig, request: ApiReport) -> Category:
    category = config.category(request.service_code)
    if category is None:
        raise Refused(404, f"service_code {request.service_code!r} not found")
    if not request.description:
        raise Refused(400, "description is required: what happened")
    if len(request.description) > config.max_text_length:
        raise Refused(400, f"description is longer than {config.max_text_length} characters")
    has_pin = request.latitude is not None and request.longitude is not None
    if (request.latitude is None) != (request.longitude is None):
        raise Refused(400, "lat and long must be sent together")
    if not has_pin and not request.address and request.area_code is None:
        raise Refused(400, "a location is required: lat and long, address_string or address_id")
    if request.address is not None and len(request.address) > config.max_text_length:
        raise Refused(400, f"address_string is longer than {config.max_text_length} characters")
    known = {a.code: a for a in attributes_of(category)}
    for code, value in request.attributes.items():
        if code not in known:
            raise Refused(400, f"attribute[{code}] is not asked by service {category.key}")
        if value not in YES_NO:
            raise Refused(400, f"attribute[{code}] must be true or false")
    for attribute in known.values():
        if attribute.required and attribute.code not in request.attributes:
            raise Refused(400, f"attribute[{attribute.code}] is required")
    return category


async def file_request(
    session: AsyncSession,
    ctx: Context,
    request: ApiReport,
    *,
    resubmit_window: timedelta,
    news_by_phone: bool,
) -> Filed:
    """File the POSTed report (``Refused`` for what cannot be filed, nothing written). The
    same POST again within ``resubmit_window`` answers with the report it filed. The caller
    commits, then wakes the dispatcher for the alert."""
    category = _validate(ctx.config, request)
    area = await _area_for(session, request)
    print_ = fingerprint(request)
    if resubmit_window > timedelta(0):
        await open311.serialise_fingerprint(session, print_)
        found = await open311.report_by_fingerprint(session, print_, ctx.now - resubmit_window)
        if found is not None:
            report, row = found
            notice = _notice(ctx, report, area, row.phone, news_by_phone)
            return Filed(report, False, [], notice, row.account_id)
    anonymous = _flag(request, ANONYMOUS)
    submitter = request.submitter
    if anonymous:  # keep only what the person's own news needs, and the system's own ids
        submitter = Submitter(
            phone=submitter.phone,
            device_id=submitter.device_id,
            account_id=submitter.account_id,
        )

    def record(report: Report) -> None:
        open311.record_request(
            session,
            report_id=report.id,
            key_id=request.key_id,
            fingerprint=print_,
            submitter=submitter,
            now=ctx.now,
        )

    report, alerts = await file_report(
        session,
        ctx,
        category=category.key,
        description=request.description or "",
        area_id=area.id,
        reporter_id=None,
        anonymous=anonymous,
        urgent=category.urgent or _flag(request, URGENT),
        latitude=request.latitude,
        longitude=request.longitude,
        address_text=request.address,
        before_alert=record,
    )
    notice = _notice(ctx, report, area, submitter.phone, news_by_phone)
    return Filed(report, True, alerts, notice, submitter.account_id)


def _notice(
    ctx: Context, report: Report, area: Area, phone: str | None, news_by_phone: bool
) -> str:
    lang = ctx.config.default_language
    text = ctx.config.catalog.text(lang, "open311.notice", ticket=report.ticket, area=area.name)
    if phone and news_by_phone:
        text = f"{text} {ctx.config.catalog.text(lang, 'open311.notice_whatsapp')}"
    return text


# --- reading ---------------------------------------------------------------------------------


def status_of(report: Report) -> str:
    """open while the report's status is an open one (``ReportStatus.is_open``: new, claimed,
    reopened), else closed (resolved, rejected, duplicate: its status_notes name the report it
    was merged into)."""
    try:
        return "open" if ReportStatus(report.status).is_open else "closed"
    except ValueError:  # a status this code does not know yet: not closed as far as we know
        return "open"


def statuses_for(wanted: Sequence[str]) -> list[str]:
    """The report statuses behind Open311's ``open`` / ``closed``."""
    out = []
    for name in wanted:
        out += [s.value for s in ReportStatus if s.is_open == (name == "open")]
    return out


_PHONE = re.compile(
    r"(?:\+?62[\s.\-]?|\b0)8\d(?:[\s.\-]?\d){6,11}\b"  # mobile: +62 8.., 62 8.., 08..
    r"|\(0\d{2,3}\)[\s.\-]?\d(?:[\s.\-]?\d){4,7}\b"  # landline: (0736) 21234
)
_EMAIL = re.compile(r"[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+")
BLANKED = "[…]"


def blank_contacts(text: str | None) -> str | None:
    """Phone numbers and e-mail addresses someone typed, blanked (public reads)."""
    if not text:
        return text
    return _EMAIL.sub(BLANKED, _PHONE.sub(BLANKED, text))


def _when(moment: datetime, zone: str | None) -> str:
    """W3C date-time in the area's time zone ('2026-05-12T10:30:00+07:00')."""
    return moment.astimezone(ZoneInfo(zone or DEFAULT_ZONE)).isoformat(timespec="seconds")


async def request_views(
    session: AsyncSession,
    config: CoreConfig,
    found: Sequence[Report],
    *,
    keyed: bool,
    round_digits: int | None,
) -> list[dict[str, Any]]:
    """Each report as Open311 shows it: the spec's fields in its order; with a key, the
    reporter fields of non-anonymous reports after them. ``round_digits`` rounds lat/long."""
    lang = config.default_language
    areas = await reports.areas_by_id(session, (r.area_id for r in found))
    trails = await open311.trails(session, found)
    filed = await open311.requests_of(session, [r.id for r in found]) if keyed else {}
    out = []
    for report in found:
        area = areas.get(report.area_id)
        zone = area.timezone if area else None
        trail = trails[report.id]
        status = status_of(report)
        note = trail.closing_note if status == "closed" else None
        if report.status == ReportStatus.DUPLICATE.value:  # its note is the other ticket
            note = config.catalog.text(lang, "open311.status_duplicate", target=note or "-")
        description: str | None = report.description
        address = report.address_text
        lat, lon = report.latitude, report.longitude
        if not keyed:
            note, description, address = (
                blank_contacts(note),
                blank_contacts(description),
                blank_contacts(address),
            )
        if round_digits is not None and lat is not None and lon is not None:
            lat, lon = round(lat, round_digits), round(lon, round_digits)
        view: dict[str, Any] = {
            "service_request_id": report.ticket,
            "status": status,
            "status_notes": note,
            "service_name": category_label(config.catalog, lang, report.category),
            "service_code": report.category,
            "description": description,
            "agency_responsible": area.name if area else None,
            "service_notice": None,
            "requested_datetime": _when(report.created_at, zone),
            "updated_datetime": _when(trail.updated_at, zone),
            "expected_datetime": None,
            "address": address,
            "address_id": area.code if area else None,
            "zipcode": None,
            "lat": lat,
            "long": lon,
            "media_url": None,
        }
        if keyed and not report.anonymous:
            view.update(await _reporter_fields(session, report, filed))
        out.append(view)
    return out


async def _reporter_fields(
    session: AsyncSession, report: Report, filed: Mapping[int, Any]
) -> dict[str, Any]:
    """Who reported it, as far as the reading system may know: what the API was told, or the
    chat contact's name and number (as an export shows them)."""
    fields: dict[str, Any] = dict.fromkeys(REPORTER_FIELDS)
    if report.id in filed:
        row = filed[report.id][0]
        fields.update(
            first_name=row.first_name,
            last_name=row.last_name,
            email=row.email,
            phone=row.phone,
            account_id=row.account_id,
        )
    elif report.reporter_id is not None:
        contact = await session.get(Contact, report.reporter_id)
        if contact is not None and contact.erased_at is None:
            fields.update(first_name=contact.display_name, phone=contact.phone)
    return fields


# --- following by phone ----------------------------------------------------------------------


async def link_pending(turn: Turn) -> None:
    """A consented contact with a phone number writes to the bot: they follow the open reports
    filed through the API with that number (status news from now on), and are told so."""
    contact = turn.contact
    if contact.phone is None or contact.consent_at is None or contact.erased_at is not None:
        return
    pending = await open311.pending_for_phone(turn.session, contact.phone)
    if not pending:
        return
    for request, report in pending:
        await reports.follow(turn.session, report.id, contact.id, turn.now)
        open311.mark_linked(request, contact.id, turn.now)
    note = Reply(turn.t("open311.linked", tickets=", ".join(r.ticket for _, r in pending)))
    replies = turn.outcome.replies
    # Before the turn's last message: that one is the question the person answers next (and
    # its options must stay the chat's last offered ones).
    replies.insert(max(0, len(replies) - 1), note)

"""Report exports as CSV or GeoJSON, for the CLI and for coordinators in chat.

One row per report, times in UTC (ISO 8601). ``status`` is the report's own (new, claimed,
resolved, rejected, duplicate, reopened); ``duplicate_of`` names the report a duplicate was
merged into, ``reopened`` counts how often it was reopened (by its reporter, or by staff on the
desk), ``problem`` and ``problem_stage`` name the problem (SARA) it belongs to, if any. An
anonymous report carries no reporter fields at all: empty in the CSV, absent from the GeoJSON
properties.
GeoJSON features without a GPS pin have a null geometry (allowed by RFC 7946).

``problem_rows`` / ``problems_csv``: the problems themselves, one row each, with the tickets of
their reports (the links) and the assessment's before/after counts once the response began.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage import problems
from storage.models import Area, Contact, Problem, ProblemReport, Report, ReportEvent
from storage.types import ReportStatus

FORMATS = ("csv", "geojson")
REPORT_FIELDS = (
    "ticket",
    "created_at",
    "category",
    "status",
    "urgent",
    "anonymous",
    "area_code",
    "area_name",
    "latitude",
    "longitude",
    "address",
    "description",
    "claimed_at",
    "closed_at",
    "escalated_at",
    "resolution_note",
    "duplicate_of",
    "reopened",
    "problem",
    "problem_stage",
)
REPORTER_FIELDS = ("reporter_name", "reporter_phone", "reporter_channel")


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


async def report_rows(
    session: AsyncSession,
    area_ids: Sequence[int] | None,
    since: datetime | None,
    where: Sequence[ColumnElement[bool]] = (),
) -> list[dict[str, Any]]:
    """The reports of these areas (all areas when None) created since ``since`` (and matching
    ``where``, e.g. the desk's filter), oldest first."""
    original = aliased(Report)
    reopened = (
        select(func.count())
        .select_from(ReportEvent)
        .where(
            ReportEvent.report_id == Report.id,
            ReportEvent.to_status == ReportStatus.REOPENED.value,
        )
        .scalar_subquery()
    )
    stmt = (
        select(Report, Area, Contact, original.ticket, reopened, Problem.id, Problem.stage)
        .join(Area, Area.id == Report.area_id)
        .outerjoin(Contact, Contact.id == Report.reporter_id)
        .outerjoin(original, original.id == Report.duplicate_of_id)
        .outerjoin(ProblemReport, ProblemReport.report_id == Report.id)
        .outerjoin(Problem, Problem.id == ProblemReport.problem_id)
        .order_by(Report.created_at, Report.id)
    )
    if area_ids is not None:
        stmt = stmt.where(Report.area_id.in_(list(area_ids)))
    if since is not None:
        stmt = stmt.where(Report.created_at >= since)
    if where:
        stmt = stmt.where(*where)
    rows = []
    for report, area, reporter, duplicate_of, times_reopened, problem_id, stage in (
        await session.execute(stmt)
    ).all():
        row: dict[str, Any] = {
            "ticket": report.ticket,
            "created_at": _iso(report.created_at),
            "category": report.category,
            "status": report.status,
            "urgent": report.urgent,
            "anonymous": report.anonymous,
            "area_code": area.code,
            "area_name": area.name,
            "latitude": report.latitude,
            "longitude": report.longitude,
            "address": report.address_text,
            "description": report.description,
            "claimed_at": _iso(report.claimed_at),
            "closed_at": _iso(report.closed_at),
            "escalated_at": _iso(report.escalated_at),
            "resolution_note": report.resolution_note,
            "duplicate_of": duplicate_of,
            "reopened": int(times_reopened or 0),
            "problem": problem_id,
            "problem_stage": stage,
        }
        if not report.anonymous:
            row["reporter_name"] = reporter.display_name if reporter else None
            row["reporter_phone"] = reporter.phone if reporter else None
            row["reporter_channel"] = reporter.channel if reporter else None
        rows.append(row)
    return rows


PROBLEM_FIELDS = (
    "problem",
    "area_code",
    "area_name",
    "pillar",
    "title",
    "stage",
    "created_at",
    "response_started_at",
    "closed_at",
    "merged_into",
    "reports",
    "tickets",
    "assessment_before",
    "assessment_after",
    "closing_note",
)


async def problem_rows(
    session: AsyncSession, area_ids: Sequence[int], now: datetime
) -> list[dict[str, Any]]:
    """The problems of these areas, oldest first, with their reports' tickets (space-separated)
    and the before/after counts once the response began (``storage.problems.assessment``)."""
    stmt = (
        select(Problem, Area)
        .join(Area, Area.id == Problem.area_id)
        .where(Problem.area_id.in_(list(area_ids)))
        .order_by(Problem.created_at, Problem.id)
    )
    tickets: dict[int, list[str]] = {}
    for problem_id, _report_id, ticket in await problems.links_in_areas(session, area_ids):
        tickets.setdefault(problem_id, []).append(ticket)
    rows = []
    for problem, area in (await session.execute(stmt)).all():
        assessed = await problems.assessment(session, problem, now)
        rows.append(
            {
                "problem": problem.id,
                "area_code": area.code,
                "area_name": area.name,
                "pillar": problem.pillar,
                "title": problem.title,
                "stage": problem.stage,
                "created_at": _iso(problem.created_at),
                "response_started_at": _iso(problem.response_started_at),
                "closed_at": _iso(problem.closed_at),
                "merged_into": problem.merged_into_id,
                "reports": len(tickets.get(problem.id, [])),
                "tickets": " ".join(tickets.get(problem.id, [])),
                "assessment_before": assessed.before if assessed else None,
                "assessment_after": assessed.after if assessed else None,
                "closing_note": problem.closing_note,
            }
        )
    return rows


def problems_csv(rows: Sequence[dict[str, Any]]) -> str:
    """The problems as CSV with a header line."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=PROBLEM_FIELDS, restval="")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return out.getvalue()


def to_csv(rows: Sequence[dict[str, Any]]) -> str:
    """CSV with a header line; anonymous reports leave the reporter columns empty."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[*REPORT_FIELDS, *REPORTER_FIELDS], restval="")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return out.getvalue()


def to_geojson(rows: Sequence[dict[str, Any]]) -> str:
    """A GeoJSON FeatureCollection, one Point feature per report (null geometry without a pin)."""
    features = []
    for row in rows:
        props = {k: v for k, v in row.items() if k not in ("latitude", "longitude")}
        lat, lon = row.get("latitude"), row.get("longitude")
        geometry = (
            {"type": "Point", "coordinates": [lon, lat]}
            if lat is not None and lon is not None
            else None
        )
        features.append({"type": "Feature", "geometry": geometry, "properties": props})
    return json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False)


def render(rows: Sequence[dict[str, Any]], fmt: str) -> str:
    """The rows in the format ("csv" or "geojson")."""
    if fmt == "csv":
        return to_csv(rows)
    if fmt == "geojson":
        return to_geojson(rows)
    raise ValueError(f"unknown export format {fmt!r}")

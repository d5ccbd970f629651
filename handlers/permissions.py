"""Who may act on a report: every staff action asks here, nowhere else.

A contact may act on a report when their role is officer, coordinator or admin and their area is
the report's area or one of its ancestors (an admin is no global superuser). Of two staff members
of the right area, only the assignee or a coordinator/admin may close a report someone claimed.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from storage.areas import ancestors, descendant_ids
from storage.models import Area, Contact, Report
from storage.types import Role

SUPERVISORS = frozenset({Role.COORDINATOR, Role.ADMIN})


def role_of(contact: Contact | None) -> Role:
    """The contact's role (an unknown stored value, or no contact, is a resident)."""
    if contact is None:
        return Role.RESIDENT
    try:
        return Role(contact.role)
    except ValueError:
        return Role.RESIDENT


def is_staff(contact: Contact | None) -> bool:
    """Officer, coordinator or admin of some area, and not erased."""
    return (
        contact is not None
        and role_of(contact).is_staff
        and contact.area_id is not None
        and contact.erased_at is None
    )


def is_supervisor(contact: Contact | None) -> bool:
    """Coordinator or admin (may close a report another officer claimed)."""
    return is_staff(contact) and role_of(contact) in SUPERVISORS


async def area_chain_ids(session: AsyncSession, area_id: int) -> list[int]:
    """The area's id and its ancestors' ids, nearest first."""
    area = await session.get(Area, area_id)
    if area is None:
        return [area_id]
    return [area_id, *(a.id for a in await ancestors(session, area))]


async def may_act(session: AsyncSession, contact: Contact | None, report: Report) -> bool:
    """Whether the contact may claim, resolve or reject the report."""
    if contact is None or not is_staff(contact):
        return False
    return contact.area_id in await area_chain_ids(session, report.area_id)


def may_close_claimed(contact: Contact, report: Report) -> bool:
    """A claimed report is closed by its assignee or a supervisor, not by another officer."""
    return report.assignee_id in (None, contact.id) or is_supervisor(contact)


# --- coordinators: broadcasts, recaps and exports ------------------------------


async def coordinated_area_ids(session: AsyncSession, contact: Contact | None) -> list[int]:
    """The areas a coordinator/admin speaks for (own area and below); empty for anyone else."""
    if contact is None or not is_supervisor(contact) or contact.area_id is None:
        return []
    return await descendant_ids(session, contact.area_id)


async def may_coordinate(session: AsyncSession, contact: Contact | None, area_id: int) -> bool:
    """Whether the contact may broadcast to or export the area: coordinator/admin of it or above."""
    return area_id in await coordinated_area_ids(session, contact)


# --- end coordinators ----------------------------------------------------------------------

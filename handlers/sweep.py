"""One bad item must not stop a periodic sweep: each item in its own SAVEPOINT.

The periodic jobs (escalations, reminders, patrol announcements, recaps) handle every due item
in one transaction. Without isolation one item that raises (bad data, a deployment's broken text
override, a bug) rolls back the whole sweep, and as that item stays due every later sweep fails
the same way. ``ItemGuard.item`` runs one item in a savepoint: when it raises, only that item's
changes are rolled back, one warning line names the job, the item (ids only, never names or
texts) and the exception's class and where it was raised, ``on_failure`` hears of it (the
process counts it in ``ktn_job_item_failures_total``), and the sweep goes on with the next item.
What happens to the failed item (set aside, retried later) is each job's decision.

Objects changed inside a failed savepoint are expired by the rollback: after a failure, use the
item's id captured before, not its attributes (loading them again would be I/O).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger(__name__)

JOBS = ("escalation", "claims", "reminder", "patrol", "recap")  # the ``job`` of every guarded sweep
_HERE = Path(__file__).resolve()
_PROJECT = _HERE.parent.parent
_OURS = ("bot", "handlers", "storage")


@dataclass(frozen=True, slots=True)
class ItemFailure:
    """One item a sweep could not handle: its job, which item ("report 12"), the exception's
    class and the line of our code it came from (no message: it may quote personal data)."""

    job: str
    item: str
    error: str
    where: str


FailureHook = Callable[[ItemFailure], None]


@dataclass(slots=True)
class Attempt:
    """What became of one guarded item; ``failure`` is set when it was rolled back."""

    failure: ItemFailure | None = None

    @property
    def failed(self) -> bool:
        """Whether the item raised and its changes were rolled back."""
        return self.failure is not None


class ItemGuard:
    """The items of one sweep, each in its own savepoint (``async with guard.item("report 7")``).

    ``failures`` lists what failed in this sweep, in order. A failure to roll back the savepoint
    itself (the connection is gone) is not an item's fault: it propagates and ends the sweep.
    """

    def __init__(self, session: AsyncSession, job: str, on_failure: FailureHook | None = None):
        self.session = session
        self.job = job
        self.on_failure = on_failure
        self.failures: list[ItemFailure] = []

    @asynccontextmanager
    async def item(self, item: str) -> AsyncIterator[Attempt]:
        """Run the block in a savepoint; an exception rolls back the block only and is logged,
        reported and swallowed (``continue`` in the block releases the savepoint as usual)."""
        attempt = Attempt()
        savepoint = await self.session.begin_nested()
        try:
            yield attempt
            await savepoint.commit()  # flushes the item's changes: a failing flush is its own
        except Exception as exc:
            # Still the current savepoint, active or (after a failed flush) inactive: close it,
            # back to the sweep's transaction. If the rollback fails, that propagates.
            if self.session.sync_session.get_nested_transaction() is savepoint.sync_transaction:
                await savepoint.rollback()
            attempt.failure = self._failed(item, exc)

    def _failed(self, item: str, exc: Exception) -> ItemFailure:
        failure = ItemFailure(self.job, item, type(exc).__name__, _origin(exc))
        self.failures.append(failure)
        log.warning(
            "%s: %s failed (%s at %s); rolled back alone, the sweep goes on",
            failure.job,
            failure.item,
            failure.error,
            failure.where,
        )
        if self.on_failure is not None:
            self.on_failure(failure)
        return failure


def _origin(exc: BaseException) -> str:
    """The innermost line of our own code the exception passed ("handlers/i18n.py:136"; not
    this module's), else the innermost line of all (a file name only); "?" without one."""
    frames = traceback.extract_tb(exc.__traceback__)
    for frame in reversed(frames):
        path = Path(frame.filename).resolve()
        if path == _HERE:
            continue
        if path.is_relative_to(_PROJECT) and path.relative_to(_PROJECT).parts[0] in _OURS:
            return f"{path.relative_to(_PROJECT).as_posix()}:{frame.lineno}"
    if not frames:
        return "?"
    return f"{Path(frames[-1].filename).name}:{frames[-1].lineno}"

"""Schedules in words a coordinator understands, and their occurrences in an area's time zone.

"setiap hari 19:00", "setiap Senin 08:00", "tanggal 1 setiap bulan 09:00" (and the English
"every day 19:00", "every Monday 08:00", "on the 1st of every month 09:00") become a ``Schedule``;
power users write cron (``cron 0 9 * * 1``). A monthly day the month does not have (tanggal 31 in
April, 29-31 in February) falls on the month's last day, so no month is skipped. Indonesia's zones
(WIB, WITA, WIT) have no daylight saving, but the math goes through ``zoneinfo`` all the same.
The canonical form (``Schedule.spec``) is what the database keeps in ``reminders.cron``.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

WEEKDAYS: dict[str, int] = {
    "senin": 0,
    "selasa": 1,
    "rabu": 2,
    "kamis": 3,
    "jumat": 4,
    "sabtu": 5,
    "minggu": 6,
    "ahad": 6,
    "monday": 0,
    "tuesday": 1,
    "wednesday": 2,
    "thursday": 3,
    "friday": 4,
    "saturday": 5,
    "sunday": 6,
    "mon": 0,
    "tue": 1,
    "wed": 2,
    "thu": 3,
    "fri": 4,
    "sat": 5,
    "sun": 6,
}
DAILY_WORDS = frozenset({"hari", "harian", "day", "daily", "malam", "pagi", "sore", "siang"})
MONTHLY_WORDS = frozenset({"bulan", "bulanan", "month", "monthly"})
_TIME = re.compile(r"(?<![\d/])(\d{1,2})[:.](\d{2})(?!\d)")
_HOUR_ONLY = re.compile(r"\b(?:jam|pukul|at)\s+(\d{1,2})\b(?![:.]\d)")
_NUMBER = re.compile(r"\b(\d{1,2})(?:st|nd|rd|th)?\b")
_CRON_FIELDS = 5
MAX_SPEC = 120


class ScheduleError(ValueError):
    """The words are not a schedule; ``key`` names the catalog text explaining why."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def zone(name: str | None, default: str = "Asia/Jakarta") -> ZoneInfo:
    """The area's zone (an unknown name falls back to the default)."""
    try:
        return ZoneInfo(name or default)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(default)


@dataclass(frozen=True, slots=True)
class Schedule:
    """daily / weekly (``weekday`` 0 = Monday) / monthly (``day`` 1-31) at hour:minute, or cron."""

    kind: str
    hour: int = 0
    minute: int = 0
    weekday: int | None = None
    day: int | None = None
    cron: str | None = None

    @property
    def spec(self) -> str:
        """The canonical form: 'daily 19:00', 'weekly 0 08:00', 'monthly 31 09:00', 'cron ...'."""
        at = f"{self.hour:02d}:{self.minute:02d}"
        if self.kind == "weekly":
            return f"weekly {self.weekday} {at}"
        if self.kind == "monthly":
            return f"monthly {self.day} {at}"
        if self.kind == "cron":
            return f"cron {self.cron}"
        return f"daily {at}"

    @classmethod
    def from_spec(cls, spec: str) -> Schedule:
        """Read the canonical form back (ScheduleError when it is damaged)."""
        parts = spec.split()
        if not parts:
            raise ScheduleError("reminder.bad_schedule")
        if parts[0] == "cron":
            return cron_schedule(" ".join(parts[1:]))
        try:
            hour, minute = (int(x) for x in parts[-1].split(":"))
            if parts[0] == "daily" and len(parts) == 2:
                return _checked(cls("daily", hour, minute))
            if parts[0] == "weekly" and len(parts) == 3:
                return _checked(cls("weekly", hour, minute, weekday=int(parts[1])))
            if parts[0] == "monthly" and len(parts) == 3:
                return _checked(cls("monthly", hour, minute, day=int(parts[1])))
        except ValueError:
            pass
        raise ScheduleError("reminder.bad_schedule")

    def next_after(self, after: datetime, tz: ZoneInfo) -> datetime:
        """The first occurrence strictly after ``after`` (aware), in UTC."""
        if after.tzinfo is None:
            raise ValueError("after must be an aware datetime")
        if self.kind == "cron":
            assert self.cron is not None
            trigger = cron_trigger(self.cron, tz)
            found = trigger.get_next_fire_time(None, after + timedelta(seconds=1))
            assert found is not None
            return found.astimezone(UTC)  # type: ignore[no-any-return]
        local = after.astimezone(tz)
        at = time(self.hour, self.minute)
        if self.kind == "daily":
            candidate = datetime.combine(local.date(), at, tz)
            if candidate <= local:
                candidate = datetime.combine(local.date() + timedelta(days=1), at, tz)
        elif self.kind == "weekly":
            assert self.weekday is not None
            ahead = (self.weekday - local.weekday()) % 7
            candidate = datetime.combine(local.date() + timedelta(days=ahead), at, tz)
            if candidate <= local:
                candidate += timedelta(days=7)
        else:
            candidate = self._monthly_after(local, at, tz)
        return candidate.astimezone(UTC)

    def _monthly_after(self, local: datetime, at: time, tz: ZoneInfo) -> datetime:
        assert self.day is not None
        year, month = local.year, local.month
        while True:
            last = calendar.monthrange(year, month)[1]
            candidate = datetime.combine(date(year, month, min(self.day, last)), at, tz)
            if candidate > local:
                return candidate
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)

    def between(self, start: datetime, end: datetime, tz: ZoneInfo) -> list[datetime]:
        """Occurrences in (start, end], oldest first (UTC)."""
        found = []
        moment = self.next_after(start, tz)
        while moment <= end:
            found.append(moment)
            moment = self.next_after(moment, tz)
        return found

    def latest_until(self, end: datetime, start: datetime, tz: ZoneInfo) -> datetime | None:
        """The newest occurrence in (start, end], or None."""
        found = self.between(max(start, end - timedelta(days=32)), end, tz)
        return found[-1] if found else None


def _checked(schedule: Schedule) -> Schedule:
    if not (0 <= schedule.hour <= 23 and 0 <= schedule.minute <= 59):
        raise ScheduleError("reminder.bad_time")
    if schedule.kind == "weekly" and schedule.weekday not in range(7):
        raise ScheduleError("reminder.bad_schedule")
    if schedule.kind == "monthly" and schedule.day not in range(1, 32):
        raise ScheduleError("reminder.bad_day")
    return schedule


CRON_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _cron_day(token: str) -> int:
    """A crontab weekday (0 or 7 = Sunday, or a name) as 0-6 from Sunday."""
    if token in CRON_DAY_NAMES:
        return CRON_DAY_NAMES.index(token)
    number = int(token)
    if not 0 <= number <= 7:
        raise ValueError(token)
    return number % 7


def crontab_weekdays(field: str) -> str:
    """Crontab's day-of-week field (0 = Sunday) as day names for APScheduler 3 (0 = Monday)."""
    if field in ("*", "?"):
        return "*"
    days: set[int] = set()
    for part in field.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(part)
        if base == "*":
            first, last = 0, 6
        elif "-" in base:
            low, high = base.split("-", 1)
            first, last = _cron_day(low), int(high) if high.isdigit() else _cron_day(high)
        else:
            first = _cron_day(base)
            last = 6 if step_text else first
        days.update(day % 7 for day in range(first, last + 1, step))
    if not days:
        raise ValueError(field)
    return ",".join(CRON_DAY_NAMES[d] for d in sorted(days))


def cron_trigger(expr: str, tz: ZoneInfo) -> CronTrigger:
    """APScheduler's trigger for a standard crontab (its weekday numbering differs)."""
    minute, hour, day, month, weekday = expr.split()
    return CronTrigger(
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=crontab_weekdays(weekday),
        timezone=tz,
    )


def cron_schedule(expr: str) -> Schedule:
    """A five-field crontab ('0 9 * * 1'), checked by APScheduler's parser."""
    expr = " ".join(expr.split())
    if len(expr.split()) != _CRON_FIELDS or len(expr) > MAX_SPEC - 5:
        raise ScheduleError("reminder.bad_cron")
    try:
        cron_trigger(expr, ZoneInfo("UTC"))
    except ValueError:
        raise ScheduleError("reminder.bad_cron") from None
    return Schedule("cron", cron=expr)


def parse_time(text: str) -> tuple[int, int, str] | None:
    """'19:00', '19.00', 'jam 7' -> (hour, minute, the text without the time); None without."""
    match = _TIME.search(text)
    if match:
        rest = text[: match.start()] + " " + text[match.end() :]
        return int(match.group(1)), int(match.group(2)), rest
    match = _HOUR_ONLY.search(text)
    if match:
        return int(match.group(1)), 0, text[: match.start()] + " " + text[match.end() :]
    return None


def parse_schedule(text: str) -> Schedule:
    """Words (Indonesian or English) or cron -> a Schedule; ScheduleError names what is wrong."""
    lowered = " ".join(text.lower().replace("'", "").replace("’", "").split())
    if lowered.startswith("cron "):
        return cron_schedule(lowered[5:])
    if len(lowered.split()) == _CRON_FIELDS and not _TIME.search(lowered):
        return cron_schedule(lowered)
    at = parse_time(lowered)
    if at is None:
        raise ScheduleError("reminder.bad_time")
    hour, minute, rest = at
    words = set(re.findall(r"[a-z]+", rest))
    days = [WEEKDAYS[w] for w in words if w in WEEKDAYS]
    if len(set(days)) > 1:
        raise ScheduleError("reminder.one_weekday")
    if days:
        return _checked(Schedule("weekly", hour, minute, weekday=days[0]))
    if words & MONTHLY_WORDS:
        numbers = _NUMBER.findall(rest)
        if len(numbers) != 1:
            raise ScheduleError("reminder.bad_day")
        return _checked(Schedule("monthly", hour, minute, day=int(numbers[0])))
    if words & DAILY_WORDS:
        return _checked(Schedule("daily", hour, minute))
    raise ScheduleError("reminder.bad_schedule")

"""Schedule math with an injected clock: words and cron, WIB/WITA/WIT, month ends, leap years."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from handlers.schedule import Schedule, ScheduleError, parse_schedule

WIB = ZoneInfo("Asia/Jakarta")
WITA = ZoneInfo("Asia/Makassar")
WIT = ZoneInfo("Asia/Jayapura")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("words", "spec"),
    [
        ("setiap hari 19:00", "daily 19:00"),
        ("Setiap hari jam 19.00", "daily 19:00"),
        ("tiap malam pukul 21:30", "daily 21:30"),
        ("every day 19:00", "daily 19:00"),
        ("daily at 7", "daily 07:00"),
        ("setiap Senin 08:00", "weekly 0 08:00"),
        ("tiap Jum'at jam 13.15", "weekly 4 13:15"),
        ("setiap hari Minggu 06:00", "weekly 6 06:00"),
        ("every Monday 08:00", "weekly 0 08:00"),
        ("tanggal 1 setiap bulan 09:00", "monthly 1 09:00"),
        ("setiap bulan tanggal 31 jam 09.00", "monthly 31 09:00"),
        ("on the 15th of every month 09:00", "monthly 15 09:00"),
        ("every month on the 1st 09:00", "monthly 1 09:00"),
        ("cron 0 9 * * 1", "cron 0 9 * * 1"),
        ("0 9 * * 1-5", "cron 0 9 * * 1-5"),
    ],
)
def test_words_in_indonesian_and_english_become_a_schedule(words: str, spec: str) -> None:
    schedule = parse_schedule(words)
    assert schedule.spec == spec
    assert Schedule.from_spec(spec) == schedule, "the stored form reads back the same"


@pytest.mark.parametrize(
    ("words", "key"),
    [
        ("setiap hari", "reminder.bad_time"),
        ("besok pagi saja", "reminder.bad_time"),
        ("setiap hari 24:00", "reminder.bad_time"),
        ("setiap hari 19:75", "reminder.bad_time"),
        ("tanggal 32 setiap bulan 09:00", "reminder.bad_day"),
        ("setiap bulan 09:00", "reminder.bad_day"),
        ("setiap Senin dan Kamis 08:00", "reminder.one_weekday"),
        ("kadang-kadang 19:00", "reminder.bad_schedule"),
        ("cron 0 9 * *", "reminder.bad_cron"),
        ("cron 0 25 * * *", "reminder.bad_cron"),
        ("cron 0 9 * * 8", "reminder.bad_cron"),
    ],
)
def test_what_is_not_a_schedule_says_why(words: str, key: str) -> None:
    with pytest.raises(ScheduleError) as info:
        parse_schedule(words)
    assert info.value.key == key


@pytest.mark.parametrize(
    ("tz", "utc_hour"),
    [(WIB, 12), (WITA, 11), (WIT, 10)],
)
def test_19_00_is_local_time_in_each_of_the_three_zones(tz: ZoneInfo, utc_hour: int) -> None:
    schedule = parse_schedule("setiap hari 19:00")
    # 2025-05-12 03:00 UTC is morning in all three zones: tonight's 19:00 is next.
    first = schedule.next_after(utc(2025, 5, 12, 3, 0), tz)
    assert first == utc(2025, 5, 12, utc_hour, 0)
    assert first.astimezone(tz).hour == 19
    # Exactly at the occurrence it is not "after": the next one is a day later.
    assert schedule.next_after(first, tz) == first + timedelta(days=1)


def test_the_same_local_day_differs_by_zone_near_midnight() -> None:
    """16:30 UTC is 23:30 WIB (still Monday) but 01:30 WIT on Tuesday."""
    monday = parse_schedule("setiap Senin 08:00")
    now = utc(2025, 5, 12, 16, 30)  # Monday in UTC and WIB; Tuesday in WIT
    assert monday.next_after(now, WIB) == utc(2025, 5, 19, 1, 0)  # next Monday 08:00 WIB
    assert monday.next_after(now, WIT) == utc(2025, 5, 18, 23, 0)  # next Monday 08:00 WIT
    # 08:30 on Monday in WIT: this Monday's 08:00 WIT (23:00 UTC Sunday) has passed.
    assert monday.next_after(utc(2025, 5, 11, 23, 30), WIT) == utc(2025, 5, 18, 23, 0)


def test_no_daylight_saving_the_offset_is_the_same_all_year() -> None:
    daily = parse_schedule("setiap hari 06:00")
    for tz, offset in ((WIB, 7), (WITA, 8), (WIT, 9)):
        times = {daily.next_after(utc(2025, month, 10), tz).hour for month in range(1, 13)}
        assert times == {(6 - offset) % 24}, tz


@pytest.mark.parametrize(
    ("day", "after", "expected_local"),
    [
        (31, utc(2025, 4, 1), (2025, 4, 30)),  # April has 30 days: its last day
        (31, utc(2025, 5, 1), (2025, 5, 31)),
        (31, utc(2023, 2, 1), (2023, 2, 28)),  # February, not a leap year
        (31, utc(2024, 2, 1), (2024, 2, 29)),  # leap year
        (30, utc(2024, 2, 1), (2024, 2, 29)),
        (29, utc(2023, 2, 1), (2023, 2, 28)),
        (29, utc(2024, 2, 1), (2024, 2, 29)),
        (29, utc(2100, 2, 1), (2100, 2, 28)),  # 2100 is not a leap year
        (1, utc(2025, 12, 5), (2026, 1, 1)),  # over the year end
    ],
)
def test_month_ends_fall_on_the_months_last_day(
    day: int, after: datetime, expected_local: tuple[int, int, int]
) -> None:
    schedule = parse_schedule(f"tanggal {day} setiap bulan 09:00")
    found = schedule.next_after(after, WITA).astimezone(WITA)
    assert (found.year, found.month, found.day, found.hour) == (*expected_local, 9)


def test_tanggal_31_goes_out_every_month_of_a_leap_year_once() -> None:
    schedule = parse_schedule("tanggal 31 setiap bulan 09:00")
    found = schedule.between(utc(2023, 12, 31, 12), utc(2024, 12, 31, 12), WIT)
    local = [m.astimezone(WIT) for m in found]
    assert [d.month for d in local] == list(range(1, 13))
    assert [d.day for d in local] == [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    assert {d.hour for d in local} == {9}


def test_cron_weekdays_count_from_sunday_like_crontab() -> None:
    """APScheduler 3 counts weekdays from Monday; the coordinator's cron means crontab's."""
    after = utc(2025, 5, 12, 3)  # Monday 10:00 WIB
    assert parse_schedule("cron 0 9 * * 1").next_after(after, WIB).astimezone(WIB).weekday() == 0
    assert parse_schedule("cron 0 9 * * 0").next_after(after, WIB).astimezone(WIB).weekday() == 6
    assert parse_schedule("cron 0 9 * * 7").next_after(after, WIB).astimezone(WIB).weekday() == 6
    weekdays = parse_schedule("cron 0 9 * * 1-5").between(after, after + timedelta(days=7), WIB)
    assert [m.astimezone(WIB).weekday() for m in weekdays] == [1, 2, 3, 4, 0]
    assert {m.astimezone(WIB).hour for m in weekdays} == {9}

"""The cron expressions IMAGE_CLEANUP_CRON accepts, mapped onto the `schedule` library.

`schedule` has no cron syntax, so only the forms it can honour exactly are accepted (all UTC):
`M H * * *` (daily), `M H * * D` (weekly, D = 0-7 or sun-sat), `M * * * *` (hourly),
`*/N * * * *` (every N minutes, counted from start-up), and `@daily`, `@hourly`, `@weekly`.
Anything else is refused at start-up rather than run at a time nobody asked for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import schedule

_WEEKDAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
_ALIASES = {
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
    "@weekly": "0 0 * * 0",
}


@dataclass(frozen=True)
class CronSpec:
    expression: str
    every_minutes: int | None = None
    minute: int = 0
    hour: int | None = None  # None: every hour, at `minute`
    weekday: str | None = None  # None: every day


def _number(field: str, low: int, high: int) -> int:
    if not re.fullmatch(r"\d{1,2}", field) or not low <= int(field) <= high:
        raise ValueError
    return int(field)


def _weekday(field: str) -> str:
    if field.isdigit():
        return _WEEKDAYS[_number(field, 0, 7) % 7]
    for day in _WEEKDAYS:
        if field.lower() == day[:3]:
            return day
    raise ValueError


def parse_cron(expression: str) -> CronSpec:
    text = " ".join(expression.split())
    fields = _ALIASES.get(text.lower(), text).split(" ")
    try:
        if len(fields) != 5:
            raise ValueError
        minute, hour, day_of_month, month, weekday = fields
        if (day_of_month, month) != ("*", "*"):
            raise ValueError
        if step := re.fullmatch(r"\*/(\d{1,2})", minute):
            if (hour, weekday) != ("*", "*"):
                raise ValueError
            return CronSpec(text, every_minutes=_number(step.group(1), 1, 59))
        spec_minute = _number(minute, 0, 59)
        if hour == "*":
            if weekday != "*":
                raise ValueError
            return CronSpec(text, minute=spec_minute)
        return CronSpec(
            text,
            minute=spec_minute,
            hour=_number(hour, 0, 23),
            weekday=None if weekday == "*" else _weekday(weekday),
        )
    except ValueError:
        raise ValueError(
            "must be a cron schedule the sidecar can honour: 'M H * * *', 'M H * * D', "
            "'M * * * *', '*/N * * * *', @daily, @hourly or @weekly (UTC)"
        ) from None


def schedule_job(spec: CronSpec, scheduler: schedule.Scheduler) -> schedule.Job:
    """The unfinished `schedule` job for `spec`; the caller adds `.do(...)`."""
    if spec.every_minutes is not None:
        return scheduler.every(spec.every_minutes).minutes
    if spec.hour is None:
        return scheduler.every().hour.at(f":{spec.minute:02d}")
    job = scheduler.every()
    job = getattr(job, spec.weekday) if spec.weekday else job.day
    return job.at(f"{spec.hour:02d}:{spec.minute:02d}", "UTC")

"""Cron expressions for the schedules (IMAGE_CLEANUP_CRON), matched by cronsim, always in UTC."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from cronsim import CronSim, CronSimError

_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


@dataclass(frozen=True)
class CronSchedule:
    """A standard five-field cron expression, always evaluated in UTC (by cronsim)."""

    expression: str

    @property
    def fields(self) -> str:
        return _ALIASES.get(self.expression.lower(), self.expression)

    def matches(self, minute: datetime) -> bool:
        """Whether the schedule fires in the minute that starts at `minute` (UTC, aware)."""
        start = minute.replace(second=0, microsecond=0)
        return self.next_after(start - timedelta(seconds=1)) == start

    def next_after(self, moment: datetime) -> datetime:
        """The first firing strictly after `moment` (UTC, aware)."""
        return cast(datetime, next(CronSim(self.fields, moment)))

    @classmethod
    def parse(cls, raw: str) -> CronSchedule:
        """Five fields or an @alias, whitespace normalised; ValueError saying what is wrong."""
        schedule = cls(" ".join(raw.split()))
        if len(schedule.fields.split(" ")) != 5:
            raise ValueError(f"{len(schedule.fields.split())} fields")
        try:
            CronSim(schedule.fields, datetime(2000, 1, 1))
        except CronSimError as exc:
            raise ValueError(str(exc).lower()) from None
        return schedule

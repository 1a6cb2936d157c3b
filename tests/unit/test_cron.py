"""IMAGE_CLEANUP_CRON: the forms the `schedule` library can honour, and nothing else."""

from __future__ import annotations

import pytest
import schedule

from image_sidecar.config import ConfigError, load_config
from image_sidecar.cron import parse_cron, schedule_job


@pytest.mark.parametrize(
    ("expression", "unit", "at", "interval"),  # hourly jobs keep only the minute of `at`
    [
        ("0 2 * * *", "days", "02:00:00", 1),
        ("30 14 * * *", "days", "14:30:00", 1),
        ("15 3 * * 1", "weeks", "03:15:00", 1),
        ("0 4 * * sun", "weeks", "04:00:00", 1),
        ("5 * * * *", "hours", "00:05:00", 1),
        ("*/15 * * * *", "minutes", None, 15),
        ("@daily", "days", "00:00:00", 1),
        ("@hourly", "hours", "00:00:00", 1),
    ],
)
def test_supported_expressions_map_to_schedule_jobs(expression, unit, at, interval):
    job = schedule_job(parse_cron(expression), schedule.Scheduler())
    job.do(lambda: None)
    assert job.unit == unit
    assert job.interval == interval
    assert (None if job.at_time is None else job.at_time.strftime("%H:%M:%S")) == at


def test_daily_job_runs_at_that_time_in_utc():
    job = schedule_job(parse_cron("0 2 * * *"), schedule.Scheduler())
    job.do(lambda: None)
    assert str(job.at_time_zone) == "UTC"


@pytest.mark.parametrize(
    "expression",
    [
        "",
        "0 2 * *",
        "0 25 * * *",
        "61 2 * * *",
        "0 2 1 * *",
        "0 2 * 6 *",
        "*/0 * * * *",
        "0-5 2 * * *",
        "0 2 * * 9",
        "0 2 * * funday",
        "@yearly",
        "every day at two",
    ],
)
def test_unsupported_expressions_are_refused(expression):
    with pytest.raises(ValueError, match="cron schedule"):
        parse_cron(expression)


def test_a_bad_cron_fails_configuration_naming_the_variable():
    with pytest.raises(ConfigError, match="IMAGE_CLEANUP_CRON"):
        load_config({"IMAGE_CLEANUP_CRON": "0 2 31 2 *"})


@pytest.mark.parametrize("value", ["maybe", "2"])
def test_cleanup_enabled_must_be_a_boolean(value):
    with pytest.raises(ConfigError, match="IMAGE_CLEANUP_ENABLED"):
        load_config({"IMAGE_CLEANUP_ENABLED": value})

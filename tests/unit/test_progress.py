"""The long jobs' progress lines say how far they have come and how long the rest will take."""

from __future__ import annotations

import uuid

import structlog

from image_sidecar.batch import key_share, progress_in_log, time_left
from image_sidecar.images.backfill import BackfillReport
from image_sidecar.lifecycle.deletion import DeletionTally
from image_sidecar.lifecycle.store_migration import MigrationReport


def test_time_left_follows_the_pace_so_far():
    assert time_left(0.25, 30) == ", ~90 s left"
    assert time_left(0.5, 600) == ", ~10 min left"


def test_time_left_says_nothing_before_a_pace_or_after_the_end():
    assert time_left(0, 30) == ""
    assert time_left(1, 30) == ""


def test_a_walk_in_key_order_knows_its_share_of_evenly_spread_keys():
    assert key_share(None) == 0.0
    assert key_share("") == 0.0  # the sha256 walk before its first digest
    assert key_share(uuid.UUID("40000000-0000-4000-8000-000000000000")) == 0.25
    assert key_share("c" + "0" * 63) == 0.75
    shares = [key_share(uuid.uuid4()) for _ in range(2_000)]
    assert 0.45 < sum(shares) / len(shares) < 0.55


def test_the_backfill_says_its_phase_and_time_left_but_keeps_them_out_of_its_summary():
    report = BackfillReport(images=10, phase="renditions", walked=0.5)
    assert report.progress_line(30) == (
        "renditions: 10 images, 0 hashed (0 failed); renditions: 50% walked, ~90 s left"
    )
    report.phase, report.walked = "hashes", 0.5
    assert report.progress_line(600).endswith("hashes: 50% walked, ~3 min left")
    assert report.as_dict() == {
        "failed_keys": [],
        "images": 10,
        "rendered": 0,
        "linked": 0,
        "hashed": 0,
        "failed": 0,
        "seconds": 0.0,
    }


def test_migrate_store_counts_its_time_left_from_this_runs_pace():
    report = MigrationReport(to="s3", target="s3://b", files_expected=1_000)
    report.already_copied = 400  # by an earlier run: no part of this run's pace
    report.files = 700
    report.copied = 300
    line = report.progress_line(30)
    assert line.startswith("migrate-store: 700/700 files")
    assert line.endswith(", ~30 s left")


def test_the_cleanup_counts_its_time_left_from_its_backlog():
    tally = DeletionTally(images_expected=1_000, images_deleted=250)
    assert tally.progress_line(10).endswith("25 images/s, ~30 s left")


def test_a_scheduled_run_logs_its_progress_at_most_once_a_period():
    tally = DeletionTally(images_expected=1_000, images_deleted=250)
    every_call, once_an_hour = progress_in_log("cleanup", 0), progress_in_log("cleanup", 3600)
    with structlog.testing.capture_logs() as logged:
        for _ in range(3):
            every_call(tally)
            once_an_hour(tally)
    assert [entry["event"] for entry in logged] == ["job_progress"] * 3
    assert logged[0]["job"] == "cleanup"
    assert logged[0]["progress"].startswith("cleanup: 250 of 1000 images")

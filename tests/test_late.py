"""Late work: the course file's due dates, extensions and penalty policy."""
import datetime as dt
import math

import pytest

from grader.late import CourseFileError, lateness, load_policy, read_timestamp, write_timestamp

COURSE = """
[late_policy]
unit = "day"
penalty_percent = 10
cap_percent = 50

[due]
"01_elbo" = 2026-10-05T23:59:00Z

[extensions]
ann = { "01_elbo" = 48 }
"""
DUE = dt.datetime(2026, 10, 5, 23, 59, tzinfo=dt.timezone.utc)


@pytest.fixture
def policy(tmp_path):
    path = tmp_path / "course.toml"
    path.write_text(COURSE)
    return load_policy(path)


@pytest.mark.parametrize("hours_late", [0.5, 23.9, 24.1, 49, 1000])
def test_penalty_follows_the_stated_policy(policy, hours_late):
    submitted = DUE + dt.timedelta(hours=hours_late)
    late = lateness(policy, "bob", "01_elbo", submitted, max_score=9.0)
    days = math.ceil(hours_late / 24)  # a started day counts in full
    percent = min(50, 10 * days)
    assert late.units == days and late.penalty == pytest.approx(9.0 * percent / 100)
    assert f"{percent:g}% of the 9 points" in late.sentence(policy, 9.0)


def test_on_time_extended_or_undated_work_has_no_penalty(policy):
    assert lateness(policy, "bob", "01_elbo", DUE - dt.timedelta(minutes=1), 9.0) is None
    assert lateness(policy, "ann", "01_elbo", DUE + dt.timedelta(hours=47), 9.0) is None  # her 48 h extension
    assert lateness(policy, "ann", "01_elbo", DUE + dt.timedelta(hours=49), 9.0).units == 1
    assert lateness(policy, "bob", "03_vae", DUE + dt.timedelta(days=30), 9.0) is None  # no due date
    assert lateness(policy, "bob", "01_elbo", None, 9.0) is None  # no submission time


def test_timestamps_round_trip_in_nbgraders_format(tmp_path):
    when = dt.datetime(2026, 10, 6, 12, 30, 5, 250000, tzinfo=dt.timezone.utc)
    write_timestamp(tmp_path, when)
    assert (tmp_path / "timestamp.txt").read_text() == "2026-10-06 12:30:05.250000 UTC"
    assert read_timestamp(tmp_path) == when


def test_a_bad_course_file_is_refused_with_its_name(tmp_path):
    path = tmp_path / "course.toml"
    path.write_text('[late_policy]\nunit = "week"\n')
    with pytest.raises(CourseFileError, match="course.toml.*hour.*day"):
        load_policy(path)
    path.write_text('[due]\n"01_elbo" = "next friday"\n')
    with pytest.raises(CourseFileError, match="01_elbo"):
        load_policy(path)
    assert load_policy(tmp_path / "absent.toml").describe() == "no late penalty"

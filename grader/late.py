"""Late work: due dates, per-student extensions and a stated penalty policy.

The course file (``grader/course.toml``, or ``make grade COURSE=path``) says::

    [late_policy]
    unit = "day"            # "hour" or "day"; a started unit counts in full
    penalty_percent = 10    # of the assignment's maximum score, per unit late
    cap_percent = 50        # the penalty never exceeds this

    [due]
    "01_elbo" = 2026-10-05T23:59:00Z

    [extensions]            # hours, per student and assignment
    ann = { "01_elbo" = 48 }

A submission's time is the ``timestamp.txt`` beside its notebook, as nbgrader
writes and reads it; ``make grade TIMES=...`` writes that file from the LMS's
own record of the submission (grader/grade/times.py), never from a zip entry's time
(``lms_timezone`` under ``[late_policy]`` is the zone of a Moodle grading
worksheet's dates). Without a due date, or without a time, there is no
penalty. The penalty is stored in the gradebook as nbgrader's own
``late_submission_penalty``, so ``grades.csv`` (``score`` = ``raw_score`` −
penalty), the feedback (a grader note at the top) and the class report all
show it.
"""
from __future__ import annotations

import datetime as dt
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

UNITS = {"hour": 3600.0, "day": 86400.0}
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f %Z"  # nbgrader's timestamp.txt


class CourseFileError(ValueError):
    pass


@dataclass
class Policy:
    unit: str = "day"
    penalty_percent: float = 0.0
    cap_percent: float = 100.0
    due: dict = field(default_factory=dict)  # assignment -> aware datetime
    extensions: dict = field(default_factory=dict)  # (student, assignment) -> hours
    lms_timezone: str = "UTC"

    def deadline(self, student: str, assignment: str) -> dt.datetime | None:
        due = self.due.get(assignment)
        if due is None:
            return None
        return due + dt.timedelta(hours=self.extensions.get((student, assignment), 0.0))

    def describe(self) -> str:
        if not self.due or not self.penalty_percent:
            return "no late penalty"
        return (f"{self.penalty_percent:g}% of the maximum per started {self.unit} late, "
                f"at most {self.cap_percent:g}%")


@dataclass
class Lateness:
    seconds: float  # after the deadline (extension included); <= 0 when on time
    units: int
    fraction: float  # of the maximum score taken off
    penalty: float  # points

    def sentence(self, policy: Policy, max_score: float) -> str:
        hours = self.seconds / 3600
        return (f"Submitted {hours:.1f} hours after the due date (extensions included): {self.units} "
                f"{policy.unit}{'s' if self.units != 1 else ''} late, so {100 * self.fraction:g}% of the "
                f"{max_score:g} points ({self.penalty:.2f}) are taken off under the course policy "
                f"({policy.describe()}).")


def _aware(value, where: str) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, 23, 59, 59, tzinfo=dt.timezone.utc)
    if isinstance(value, str):
        try:
            return _aware(dt.datetime.fromisoformat(value), where)
        except ValueError:
            pass
    raise CourseFileError(f"{where}: {value!r} is not a date and time (write e.g. 2026-10-05T23:59:00Z)")


def load_policy(path: Path | None) -> Policy:
    """The course file's policy; an empty policy (no penalties) when there is none."""
    if path is None or not Path(path).exists():
        return Policy()
    try:
        data = tomllib.loads(Path(path).read_text())
    except tomllib.TOMLDecodeError as err:
        raise CourseFileError(f"{path}: {err}") from None
    rules = data.get("late_policy", {})
    unit = rules.get("unit", "day")
    if unit not in UNITS:
        raise CourseFileError(f"{path}: late_policy.unit must be 'hour' or 'day', not {unit!r}")
    policy = Policy(unit=unit, penalty_percent=float(rules.get("penalty_percent", 0)),
                    cap_percent=float(rules.get("cap_percent", 100)), lms_timezone=rules.get("lms_timezone", "UTC"))
    if not 0 <= policy.penalty_percent <= 100 or not 0 <= policy.cap_percent <= 100:
        raise CourseFileError(f"{path}: penalty_percent and cap_percent must lie between 0 and 100")
    policy.due = {a: _aware(v, f"{path}: due.{a}") for a, v in data.get("due", {}).items()}
    for student, hours in data.get("extensions", {}).items():
        if not isinstance(hours, dict):
            raise CourseFileError(f"{path}: extensions.{student} must map assignments to hours")
        for assignment, h in hours.items():
            policy.extensions[(student, assignment)] = float(h)
    return policy


def read_timestamp(folder: Path) -> dt.datetime | None:
    """The submission time nbgrader would use (timestamp.txt), or None."""
    path = Path(folder) / "timestamp.txt"
    if not path.exists():
        return None
    text = path.read_text().strip()
    for parse in (lambda t: dt.datetime.strptime(t, TIMESTAMP_FORMAT),
                  lambda t: dt.datetime.fromisoformat(t.replace(" UTC", "+00:00"))):
        try:
            return _aware(parse(text), str(path))
        except (ValueError, CourseFileError):
            continue
    return None


def write_timestamp(folder: Path, when: dt.datetime) -> None:
    when = when.astimezone(dt.timezone.utc)
    (Path(folder) / "timestamp.txt").write_text(when.strftime("%Y-%m-%d %H:%M:%S.%f ") + "UTC")


def lateness(policy: Policy, student: str, assignment: str, submitted: dt.datetime | None,
             max_score: float) -> Lateness | None:
    """None when on time, undated or without a penalty; else how late and what it costs."""
    deadline = policy.deadline(student, assignment)
    if deadline is None or submitted is None:
        return None
    seconds = (submitted - deadline).total_seconds()
    if seconds <= 0:
        return None
    units = math.ceil(seconds / UNITS[policy.unit])
    fraction = min(policy.cap_percent, units * policy.penalty_percent) / 100
    return Lateness(seconds, units, fraction, round(fraction * max_score, 6))

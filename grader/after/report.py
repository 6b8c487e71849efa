"""The class report written after every grading batch: a grade histogram
(PNG), the pass rate of every graded test, counts of each diagnosed
misconception and the slowest notebooks, as ``report.html`` and
``report.csv`` in the grading folder."""
from __future__ import annotations

import collections
import csv
import html
import re
from pathlib import Path

import nbformat

HINT = re.compile(r"Hint: (.+)")


def _hints(notebook: Path) -> list:
    """Misconception hints the hidden tests printed in one autograded notebook."""
    try:
        nb = nbformat.read(str(notebook), as_version=4)
    except Exception:
        return []
    found = []
    for cell in nb.cells:
        if not cell.get("metadata", {}).get("nbgrader", {}).get("grade"):
            continue
        for output in cell.get("outputs", []):
            text = output.get("text", "") or output.get("evalue", "") or "\n".join(output.get("traceback", []))
            found.extend(HINT.findall(re.sub(r"\x1b\[[0-9;]*m", "", text)))
    return sorted(set(found))


def is_manual(grade) -> bool:
    """A cell the instructor marks by hand: a written answer or a task
    (markdown), never an autograded test (code)."""
    return grade.cell_type != "code"


def manual_state(grade) -> str:
    """marked, pending (written, not yet marked) or blank (nbgrader gave the
    unchanged answer 0, "No response")."""
    if grade.manual_score is not None:
        return "marked"
    if grade.needs_manual_grade or grade.auto_score is None:
        return "pending"
    return "blank"


def manual_states(out: Path) -> dict:
    """{(student, assignment): {cell: state}} for every submission in the
    gradebook (an empty dict when it has no manually graded cell)."""
    from nbgrader.api import Gradebook

    found: dict = {}
    with Gradebook(_db_url(out)) as gb:
        for assignment in gb.assignments:
            for sub in gb.assignment_submissions(assignment.name):
                found.setdefault((sub.student_id, assignment.name), {})
                for nb in sub.notebooks:
                    for grade in nb.grades:
                        if is_manual(grade):
                            found.setdefault((sub.student_id, assignment.name), {})[grade.name] = manual_state(grade)
    return found


def add_manual_status(out: Path, csv_path: Path) -> int:
    """Add a ``status`` column to nbgrader's grades CSV: ``final``, which
    written answers still need a manual grade (and which were left blank), or
    ``no submission`` (nbgrader lists every student under every assignment,
    and its timestamp column is empty without a timestamp.txt, so it cannot
    tell). Returns the number of submissions still pending."""
    states = manual_states(out)
    with open(csv_path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return 0
    pending = 0
    for row in rows:
        key = (row["student_id"], row["assignment"])
        if key not in states:
            row["status"] = "no submission"
            continue
        cells = states[key]
        waiting = sorted(c for c, state in cells.items() if state == "pending")
        blank = sorted(c for c, state in cells.items() if state == "blank")
        status = f"pending manual grade: {', '.join(waiting)}" if waiting else "final"
        if blank:
            status += f" (blank, 0 points: {', '.join(blank)})"
        row["status"] = status
        pending += bool(waiting)
    with open(csv_path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0].keys()))
        writer.writeheader()
        writer.writerows(rows)
    return pending


def collect_rows(out: Path):
    """(per-submission rows, per-test rows, manual rows) from the gradebook:
    autograded tests and manually graded answers are counted apart."""
    from nbgrader.api import Gradebook

    db_url = _db_url(out)
    submissions, tests = [], collections.defaultdict(lambda: [0, 0])
    manual = collections.defaultdict(collections.Counter)
    with Gradebook(db_url) as gb:
        for assignment in gb.assignments:
            for sub in gb.assignment_submissions(assignment.name):
                auto = max_auto = 0.0
                for nb in sub.notebooks:
                    for grade in nb.grades:
                        if is_manual(grade):  # a proof or a task: its own section, not a test
                            manual[(assignment.name, grade.name)][manual_state(grade)] += 1
                            continue
                        if grade.auto_score is None:
                            continue
                        auto += grade.auto_score
                        max_auto += grade.max_score
                        key = (assignment.name, grade.name)
                        tests[key][0] += grade.auto_score >= grade.max_score
                        tests[key][1] += 1
                submissions.append({"student": sub.student_id, "assignment": assignment.name,
                                    "auto_score": auto, "max_auto_score": max_auto})
    return submissions, tests, manual


def _db_url(out: Path) -> str:
    text = (out / "nbgrader_config.py").read_text()
    return re.search(r"db_url = '([^']+)'", text).group(1)


def write_report(out: Path, outcomes=(), limits=None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    submissions, tests, manual = collect_rows(out)
    from grader import RELEASE, SOLUTIONS
    from grader.after.similarity import MIN_SHARED, THRESHOLD, similar_pairs

    pairs = similar_pairs(out, RELEASE, SOLUTIONS)
    hints = collections.Counter()
    for nb_path in sorted((out / "autograded").glob("*/*/*.ipynb")):
        hints.update(_hints(nb_path))

    fig, ax = plt.subplots(figsize=(6, 3.2))
    fractions = [100 * s["auto_score"] / s["max_auto_score"] for s in submissions if s["max_auto_score"]]
    ax.hist(fractions, bins=[0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100.001], color="#4477aa", edgecolor="white")
    ax.set(xlabel="autograded score (%)", ylabel="submissions", title="Grade distribution")
    fig.tight_layout()
    fig.savefig(out / "grade_histogram.png", dpi=110)
    plt.close(fig)

    with open(out / "report.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["section", "assignment", "item", "value", "of"])
        for (assignment, test), (passed, total) in sorted(tests.items()):
            writer.writerow(["test_pass_rate", assignment, test, passed, total])
        for (assignment, cell), counts in sorted(manual.items()):
            for state in ("marked", "pending", "blank"):
                writer.writerow([f"manual_{state}", assignment, cell, counts[state], sum(counts.values())])
        for hint, count in hints.most_common():
            writer.writerow(["misconception", "", hint, count, ""])
        for pair in pairs:
            writer.writerow(["similar_pair", pair.assignment, f"{pair.first} & {pair.second}",
                             f"{pair.similarity:.2f}", pair.shared])
        for o in sorted(outcomes, key=lambda o: -o.seconds):
            writer.writerow(["seconds", o.assignment, o.student, f"{o.seconds:.2f}", ""])
        for o in outcomes:
            if o.message:
                writer.writerow(["problem", o.assignment, o.student, o.message, ""])
        for o in outcomes:
            if o.ok and o.max_score is not None:
                writer.writerow(["submission_time", o.assignment, o.student,
                                 getattr(o, "time_source", "") or "unknown (no penalty possible)", ""])
        for o in outcomes:
            if getattr(o, "late", ""):
                writer.writerow(["late_penalty", o.assignment, o.student, f"{o.late_penalty:g}", o.late])

    slow = sorted(outcomes, key=lambda o: -o.seconds)[:10]
    problem_rows = "".join(f"<tr><td>{html.escape(o.student)}</td><td>{html.escape(o.assignment)}</td>"
                           f"<td>{html.escape(o.message)}</td></tr>" for o in outcomes if o.message)
    rows = "".join(f"<tr><td>{html.escape(a)}</td><td>{html.escape(t)}</td><td>{p}/{n}</td>"
                   f"<td>{100 * p / max(n, 1):.0f}%</td></tr>" for (a, t), (p, n) in sorted(tests.items()))
    late_rows = "".join(f"<tr><td>{html.escape(o.student)}</td><td>{html.escape(o.assignment)}</td>"
                        f"<td>{o.late_penalty:g}</td><td>{html.escape(o.late)}</td></tr>"
                        for o in outcomes if getattr(o, "late", ""))
    time_counts = collections.Counter(getattr(o, "time_source", "") or "unknown: no penalty possible"
                                       for o in outcomes if o.ok and o.max_score is not None)
    time_rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{n}</td></tr>" for k, n in sorted(time_counts.items()))
    pair_rows = "".join(f"<tr><td>{html.escape(p.assignment)}</td><td>{html.escape(p.first)}</td>"
                        f"<td>{html.escape(p.second)}</td><td>{p.similarity:.2f}</td><td>{p.shared}</td></tr>"
                        for p in pairs)
    manual_rows = "".join(f"<tr><td>{html.escape(a)}</td><td>{html.escape(c)}</td><td>{n['marked']}</td>"
                          f"<td>{n['pending']}</td><td>{n['blank']}</td></tr>" for (a, c), n in sorted(manual.items()))
    hint_rows = "".join(f"<tr><td>{html.escape(h)}</td><td>{c}</td></tr>" for h, c in hints.most_common())
    slow_rows = "".join(f"<tr><td>{html.escape(o.student)}</td><td>{html.escape(o.assignment)}</td>"
                        f"<td>{o.seconds:.1f}</td><td>{html.escape(o.message)}</td></tr>" for o in slow)
    page = f"""<!doctype html><meta charset="utf-8"><title>Class report</title>
<style>body{{font-family:sans-serif;max-width:900px;margin:2em auto}}td,th{{padding:3px 10px;text-align:left}}
tr:nth-child(even){{background:#f3f3f3}}</style>
<h1>Class report</h1><p>{len(submissions)} graded submission(s).</p>
<p><small>Limits enforced: {html.escape(", ".join(f"{k} = {v}" for k, v in (limits or {}).items()))}</small></p>
<h2>Problems</h2><table><tr><th>student</th><th>assignment</th><th>message</th></tr>{problem_rows or '<tr><td>none</td></tr>'}</table>
<img src="grade_histogram.png" alt="grade histogram">
<h2>Pass rate per autograded test</h2><table><tr><th>assignment</th><th>test</th><th>passed</th><th>rate</th></tr>{rows}</table>
<h2>Where submission times came from</h2><p>Never a zip entry's time (grader/grade/times.py); each row's source
is in report.csv (<code>submission_time</code>).</p><table><tr><th>source</th><th>submissions</th></tr>{time_rows or '<tr><td>none</td></tr>'}</table>
<h2>Late submissions</h2><table><tr><th>student</th><th>assignment</th><th>penalty</th><th>why</th></tr>{late_rows or '<tr><td>none</td></tr>'}</table>
<h2>Manually graded answers</h2><p>Marked in the formgrader, written but still to mark (pending), or left blank
(nbgrader gives a blank answer 0 points, "No response"). They are not in the histogram or the test table.</p>
<table><tr><th>assignment</th><th>cell</th><th>marked</th><th>pending</th><th>blank</th></tr>{manual_rows or '<tr><td>none</td></tr>'}</table>
<h2>Diagnosed misconceptions</h2><table><tr><th>hint given</th><th>submissions</th></tr>{hint_rows or '<tr><td>none</td></tr>'}</table>
<h2>Unusually alike answers</h2><p>Pairs whose TODO answers share at least {THRESHOLD:.0%} of their
token runs (Jaccard) and at least {MIN_SHARED} runs, after removing the released template, the reference
solution's own code, comments, docstrings and variable names (<code>grader/after/similarity.py</code>). A reason
to look, not a verdict.</p>
<table><tr><th>assignment</th><th>student</th><th>student</th><th>similarity</th><th>shared runs</th></tr>{pair_rows or '<tr><td>none</td></tr>'}</table>
<h2>Slowest notebooks</h2><table><tr><th>student</th><th>assignment</th><th>seconds</th><th>problem</th></tr>{slow_rows}</table>
"""
    path = out / "report.html"
    path.write_text(page)
    return path

"""The harvested evaluation set (tests/harvest/): our own re-implementations of
mistakes seen in other courses' public VAE code, and correct answers in the
styles seen there, run through the public self-check and the hidden test.

Asserts: no wrong implementation passes the self-check or the hidden test, no
correct one fails either, none gets a wrong hint (a catalogued hint that names
another mistake), and at least 60 % get a right, specific hint (one that holds
the item's expected words). Prints the counts.

Each mistake class also has its catalogued mutant (grader/author/mutants/, where
it was seen in SIGHTINGS.md beside it); the items here are written apart from
those, so the measure is of the stored catalogue as a student meets it."""
import sys
from pathlib import Path

import pytest

from vaelab import checks

sys.path.insert(0, str(Path(__file__).parent))  # tests/harvest is a plain folder of test data
from harvest.items import CORRECT, WRONG  # noqa: E402

SPECIFIC_SHARE = 0.60


def _run(name, fn, hidden, assignment):
    """The report a student (or the hidden test) gets, and the stored spec it was judged against."""
    return checks.run(name, fn, hidden=hidden, assignment=assignment), checks._spec(name, hidden, assignment)


def _verdict(target, assignment, fn, words):
    public, spec_p = _run(target, fn, False, assignment)
    hidden, spec_h = _run(target, fn, True, assignment)
    catalogued = set(spec_p.get("hints", {}).values()) | set(spec_h.get("hints", {}).values())
    hints = public.hints + hidden.hints
    right = [h for h in hints if all(w.lower() in h.lower() for w in words)]
    wrong = [h for h in hints if h not in right and any(c in h for c in catalogued)]
    return public, hidden, right, wrong


@pytest.fixture(scope="module")
def verdicts():
    rows = []
    for target, assignment, fn, words, seen in WRONG:
        public, hidden, right, wrong = _verdict(target, assignment, fn, words)
        rows.append(dict(target=target, name=fn.__name__, public=public.passed, hidden=hidden.passed,
                         right=bool(right), wrong=wrong, hints=public.hints + hidden.hints, seen=seen))
    return rows


def test_no_wrong_implementation_passes(verdicts):
    passing = [(r["target"], r["name"]) for r in verdicts if r["public"] or r["hidden"]]
    assert not passing, passing


def test_no_wrong_hint(verdicts):
    bad = [(r["target"], r["name"], r["wrong"]) for r in verdicts if r["wrong"]]
    assert not bad, bad


def test_most_get_a_right_specific_hint(verdicts, capsys):
    n = len(verdicts)
    right = sum(r["right"] for r in verdicts)
    wrong = sum(bool(r["wrong"]) for r in verdicts)
    with capsys.disabled():
        print(f"\nharvest: {n} wrong implementations, {right} get a right specific hint "
              f"({right / n:.0%}), {wrong} get a wrong hint")
        for r in verdicts:
            mark = "right" if r["right"] else ("WRONG" if r["wrong"] else "none ")
            print(f"  {mark} {r['target']}:{r['name']}: {(r['hints'] or [''])[0][:110]}")
    assert right / n >= SPECIFIC_SHARE, f"{right}/{n}"


#: correct items the tolerance policy does not admit yet (none since issue 33 item 3: float32 constants are admitted)
POLICY_PENDING: set = set()


def _correct_params():
    for target, assignment, fn, seen in CORRECT:
        marks = [pytest.mark.xfail(strict=True, reason="issue 33 item 3: grader/tolerances.py does not yet admit "
                                                       "float32 constants in float64 hidden cases")] \
            if fn.__name__ in POLICY_PENDING else []
        yield pytest.param(target, assignment, fn, seen, marks=marks, id=f"{target}:{fn.__name__}")


@pytest.mark.parametrize("target,assignment,fn,seen", list(_correct_params()))
def test_correct_implementation_passes(target, assignment, fn, seen):
    public, _ = _run(target, fn, False, assignment)
    hidden, _ = _run(target, fn, True, assignment)
    assert public.passed and not public.hints, public.lines()
    assert hidden.passed and not hidden.hints, hidden.lines()


def test_every_item_names_where_its_mistake_was_seen():
    for target, _, fn, words, seen in WRONG:
        assert words and seen and "(" in seen, fn.__name__

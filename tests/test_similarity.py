"""The class report's similarity section: copied answers are found through
renamed variables and reworded comments; independent work and the reference
solution that many students write alike are not flagged."""
import re

from grader import RELEASE, SOLUTIONS
from grader.author.mutants import catalogue
from grader.notebooks import defined_names, is_solution, make_submission, read
from grader.after.similarity import fingerprints, similar_pairs

from .samples import alternative



def _disguise(source: str) -> str:
    """What a copier does: rename the variables, reword the comments, add blank lines."""
    renames = {"var_q": "vq", "var_p": "vp", "e_log_q": "term_q", "e_log_p": "term_p", "per_dim": "each",
               "log_joint": "lj", "poly": "pol", "expected_log_joint": "elj", "var": "v2"}
    for old, new in renames.items():
        source = re.sub(rf"\b{old}\b", new, source)
    source = re.sub(r"#.*", "# my own working", source)
    return source.replace("\n    return", "\n\n    return")


def test_copied_answers_are_flagged_and_independent_ones_are_not(tmp_path):
    out = tmp_path / "out"
    original = alternative("01_elbo")
    solution = {n: c.source for c in read(SOLUTIONS / "01_elbo" / "01_elbo.ipynb").cells if is_solution(c)
                for n in defined_names(c.source)}
    variants = {}
    for v in catalogue("01_elbo", "variants"):
        variants[v.target] = v.source  # the last correct variant of each TODO (the sample uses the first)
    assert all(variants[n] != original[n] for n in variants), "01's TODOs need two variants each for this test"
    make_submission("01_elbo", original, out / "submitted", "ann")
    make_submission("01_elbo", {k: _disguise(v) for k, v in original.items()}, out / "submitted", "bob")
    make_submission("01_elbo", variants, out / "submitted", "cyd")
    make_submission("01_elbo", solution, out / "submitted", "dan")
    make_submission("01_elbo", solution, out / "submitted", "eve")  # two reference solutions: alike, but expected
    pairs = similar_pairs(out, RELEASE, SOLUTIONS)
    assert [(p.first, p.second) for p in pairs] == [("ann", "bob")], pairs
    assert pairs[0].similarity > 0.9


def test_fingerprints_ignore_names_comments_and_docstrings():
    a = 'def f(mu, logvar):\n    """Sum it."""\n    s = mu + logvar  # add\n    return s.sum(dim=-1) * 0.5\n'
    b = 'def g(m, lv):\n    total = m + lv\n    return total.sum(dim=-1) * 0.25  # half\n'
    assert fingerprints(a) == fingerprints(b)
    assert fingerprints(a) != fingerprints(a.replace("+", "-"))

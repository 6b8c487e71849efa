"""Correct code always earns its points: every correct variant in
grader/author/variants/ passes every public and hidden case with no hint, and every
stored tolerance lies between the two catalogues with the stated margin.

The margins are recomputed here from the stored outputs with plain torch
arithmetic, not with grader/author/tolerances.py, so a wrong derivation cannot
certify itself."""
import math

import pytest
import sympy as sp
import torch

from grader import HIDDEN_REFERENCES, SOLUTIONS, assignments, load_module
from grader.author.record import mutant_functions
from grader.author.mutants import catalogue
from grader.notebooks import exec_solution
from grader.author.tolerances import MARGIN, MARGIN_STOCHASTIC, ToleranceError, derive
from vaelab import references
from vaelab.checks import run

from .points import predictions

VARIANTS = [(a, v.target, v.name) for a in assignments() if load_module("cases", a)
            for v in catalogue(a, "variants")]


@pytest.fixture(scope="module")
def variants_by_assignment():
    out = {}
    for a in assignments():
        namespace = exec_solution(SOLUTIONS / a / f"{a}.ipynb")
        out[a] = {(v.target, v.name): v for vs in mutant_functions(a, namespace, "variants").values() for v in vs}
    return out


@pytest.mark.parametrize("assignment,target,name", VARIANTS, ids=[f"{a}:{t}:{n}" for a, t, n in VARIANTS])
def test_correct_variant_passes_public_and_hidden_cases_with_no_hint(variants_by_assignment, assignment, target, name):
    v = variants_by_assignment[assignment][(target, name)]
    for hidden in (False, True):
        report = run(target, v.function, hidden=hidden, assignment=assignment)
        assert report.passed, "\n".join(report.lines())
        assert not report.hints, report.hints


def test_every_todo_has_correct_variants_and_they_are_distinct_from_mutants():
    for a in assignments():
        variants, mutants = catalogue(a, "variants"), catalogue(a)
        targets = {m.target for m in mutants if not m.target.startswith("predict_")}  # a choice has one right answer
        assert targets <= {v.target for v in variants}, f"{a}: TODOs without correct variants"
        assert not {v.source for v in variants} & {m.source for m in mutants}
        assert all(v.kind == "variant" and v.hint.endswith(".") for v in variants)


def _files():
    for a in assignments():
        yield a, "public", references.load(references.public_path(a))
        yield a, "hidden", references.load(HIDDEN_REFERENCES / f"{a}.pt")


def _parts(value):
    if isinstance(value, tuple):
        return list(value)
    return [value]


def _ratio(expected, output, rtol, atol) -> float:
    """max |output - expected| / (atol + rtol |expected|), plain torch; inf when it cannot match."""
    if isinstance(output, dict):
        return math.inf
    exp, got = _parts(expected), _parts(output)
    if len(exp) != len(got):
        return math.inf
    rtols = rtol if isinstance(rtol, (list, tuple)) else [rtol] * len(exp)
    atols = atol if isinstance(atol, (list, tuple)) else [atol] * len(exp)
    worst = 0.0
    for e, g, r, a in zip(exp, got, rtols, atols):
        if not isinstance(g, torch.Tensor) or g.shape != e.shape or g.dtype != e.dtype:
            return math.inf
        e, g = e.double(), g.double()
        if not torch.equal(torch.isfinite(e), torch.isfinite(g)):
            return math.inf
        keep = torch.isfinite(e)
        if keep.any():
            band = (a.double()[keep] if isinstance(a, torch.Tensor) else float(a)) + float(r) * e[keep].abs()
            worst = max(worst, float(((g[keep] - e[keep]).abs() / band).max()))
    return worst


def test_stored_tolerances_separate_the_catalogues_with_the_margin():
    """For every numeric case: the tolerance is at least MARGIN times the
    largest correct-variant deviation; each mutant is MARGIN tolerances away
    or (where the input cannot tell it apart) within 1/MARGIN; every mutant is
    separated by some case of its TODO in the public file and in the hidden
    file, so passing every public check predicts the hidden verdict."""
    checked = 0
    for a, kind, data in _files():
        for name, spec in data["functions"].items():
            if spec["kind"] in ("sympy", "choice"):
                continue
            separated = set()
            for i, case in enumerate(spec["cases"], 1):
                evidence = case["tolerance"]
                stochastic = "variant_ratio" in evidence
                margin = MARGIN_STOCHASTIC if stochastic else MARGIN
                if not stochastic:
                    tau = evidence["tau"]
                    assert all(t >= MARGIN * v * 0.999 for t, v in zip(tau, evidence["variant_max"])), (a, name, i)
                for mutant, output in case["mutants"].items():
                    r = _ratio(case["expected"], output, case.get("rtol", 0.0), case["atol"])
                    assert r >= margin or r <= (1.0 if stochastic else 1 / MARGIN), (a, kind, name, i, mutant, r)
                    if r >= margin:
                        separated.add(mutant)
                    checked += 1
            assert separated == set(spec["hints"]), (a, kind, name, set(spec["hints"]) - separated)
    assert checked > 100


def test_iwae_cases_reject_the_wrong_answers_the_old_tolerance_accepted():
    """Before the noise was supplied, the k = 1 case accepted about ±81 nats:
    an answer off by (D−1)/2·log 2π passed. Now every case rejects it, and
    repeating one z k times fails every case with k > 1."""
    for _, _, data in _files():
        spec = data["functions"].get("iwae_bound")
        if spec is None:
            continue
        for case in spec["cases"]:
            latent_dim, _, _, k, eps = case["args"]
            offset = (latent_dim - 1) / 2 * math.log(2 * math.pi)
            assert _ratio(case["expected"], case["expected"] + offset, case["rtol"], case["atol"]) > MARGIN
            assert _ratio(case["expected"], case["expected"] + 0.05, case["rtol"], case["atol"]) > 1
            if k > 1:
                assert _ratio(case["expected"], case["mutants"]["one_z_repeated"], case["rtol"], case["atol"]) > MARGIN


def test_derive_refuses_a_case_where_no_tolerance_separates_the_catalogues():
    expected = torch.tensor([1.0, 2.0, 3.0])
    variants = {"eps": expected + 1e-3}
    # a mistake as close to the answer as a correct variant: no tolerance can tell them apart
    with pytest.raises(ToleranceError, match="no tolerance separates"):
        derive("toy", expected, variants, {"close_mistake": expected + 3e-3})
    rtol, atol, evidence = derive("toy", expected, variants, {"far": expected * 2, "same": expected.clone()})
    assert rtol == atol and atol >= MARGIN * 1e-3 / (1 + 3.0)
    assert evidence["separated"] == ["far"] and evidence["indistinguishable"] == ["same"]
    with pytest.raises(ToleranceError, match="does not agree"):
        derive("toy", expected, {"wrong_shape": expected[:2]}, {})


def test_symbolic_variants_are_equivalent_and_stay_out_of_the_public_files():
    for a in assignments():
        data = references.load(references.public_path(a))
        for name, spec in data["functions"].items():
            if spec["kind"] == "sympy":
                for case in spec["cases"]:
                    assert case["tolerance"]["variants"], (a, name)
                    assert not any(isinstance(v, sp.Basic) for v in case["tolerance"].values())


def test_predictions_are_graded_only_by_the_hidden_test_and_their_answer_never_ships():
    """A "predict, then run" question: the public file accepts any valid letter
    and holds neither the answer nor the wrong letters' hints; the hidden file
    holds the answer, and each wrong letter is a mutant with its own hint."""
    found, released = set(), set()
    for a in assignments():
        public = references.load(references.public_path(a))["functions"]
        hidden = references.load(HIDDEN_REFERENCES / f"{a}.pt")["functions"]
        released |= {(a, name) for name in predictions(a)}  # the predict_* TODOs of the released notebook
        for name, spec in public.items():
            if spec["kind"] != "choice":
                continue
            found.add((a, name))
            (case,) = spec["cases"]
            assert case["expected"] == {"__choices__": ["a", "b", "c", "d"]} and not case["mutants"]
            assert not spec["hints"]
            (secret,) = hidden[name]["cases"]
            wrong = set(secret["mutants"].values())
            assert secret["expected"] in "abcd" and wrong == set("abcd") - {secret["expected"]}
            assert run(name, lambda: "Z", assignment=a).passed is False  # not a letter: said at once
    # every prediction TODO of the released notebooks, and nothing else, is a choice case
    assert released, "no predict_* TODO in the released notebooks"
    assert found == released, (f"predict_* TODOs without a choice case in grader/author/cases/: {sorted(released - found)}; "
                               f"choice cases without a released TODO: {sorted(found - released)}")


def test_a_case_cannot_state_a_tolerance_it_would_not_use():
    """`case(..., rtol=1e-10)` read like a tolerance while the derived one won:
    case() now refuses it and says where tolerances come from."""
    from grader.author.cases import case

    for stated in ({"rtol": 1e-10}, {"atol": 1e-12}, {"rtol": 0.0}):
        with pytest.raises(TypeError, match=r"grader/author/tolerances\.py"):
            case("float64", torch.zeros(3), **stated)
    assert case("plain", 1, 2, flag=True)["kwargs"] == {"flag": True}
    # every stochastic (estimator) case was recorded with rtol 0: its tolerance is absolute, measured
    for a, kind, data in _files():
        for name, spec in data["functions"].items():
            for c in spec["cases"]:
                if "variant_ratio" in c.get("tolerance", {}):
                    assert c["rtol"] == 0.0, (a, kind, name, c["label"])

"""Property tests of the hint engine (vaelab.checks.judge_case) on every
stored case, public and hidden: the right answer gets no hint, every
catalogued mistake gets its own hint, and perturbations of the right answer
that are not in the catalogue never get a catalogued hint (a wrong hint
sends a student after a mistake they did not make)."""
import math

import pytest
import sympy as sp
import torch

from grader import HIDDEN_REFERENCES, assignments
from vaelab import references
from vaelab.checks import _has_nan, compare, judge_case
from vaelab.symbolic import Probes

FILES = [(a, kind) for a in assignments() for kind in ("public", "hidden")]


def _load(assignment, kind):
    path = references.public_path(assignment) if kind == "public" else HIDDEN_REFERENCES / f"{assignment}.pt"
    return references.load(path)


def _cases(assignment, kind):
    for name, spec in _load(assignment, kind)["functions"].items():
        for i, case in enumerate(spec["cases"], 1):
            yield name, spec, i, case


def _tensor_perturbations(t: torch.Tensor, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    scale = float(t.double().abs().mean()) if t.numel() else 1.0
    scale = scale if math.isfinite(scale) and scale > 1e-6 else 1.0
    out = {
        "plus a constant": t + 0.37 * scale + 0.011,
        "times a random factor": t * (1.37 + 0.2 * float(torch.rand((), generator=g))),
        "times 0.71": t * 0.71,
        "plus noise": t + 0.3 * scale * torch.randn(t.shape, generator=g, dtype=torch.float64).to(t.dtype),
        "a wrong shape": t.unsqueeze(0).repeat(2, *([1] * t.dim())),
        "wrong dtype": t.to(torch.float64 if t.dtype == torch.float32 else torch.float32),
        "plus e": t + math.e,
        "squared plus one": t * t + 1.3,
    }
    if t.numel() > 1:
        flat = t.clone().reshape(-1)
        flat[0] = float("nan")
        out["a NaN in one entry"] = flat.reshape(t.shape)
        out["rolled"] = torch.roll(t, 1, dims=-1) + 0.05 * scale
    if t.dim() == 2 and t.shape[0] != t.shape[1]:
        out["transposed"] = t.t().contiguous()
    if t.dim() >= 1:
        out["one value too many per entry"] = t.unsqueeze(-1).repeat(*([1] * t.dim()), 3) * 0.9
    return out


def _perturbations(expected, seed: int) -> dict:
    if isinstance(expected, torch.Tensor) and expected.is_floating_point():
        return _tensor_perturbations(expected, seed)
    if isinstance(expected, tuple):
        out = {}
        for k, part in enumerate(expected):
            if isinstance(part, torch.Tensor) and part.is_floating_point():
                for label, changed in _tensor_perturbations(part, seed + k).items():
                    out[f"{label} in element {k}"] = tuple(changed if j == k else p for j, p in enumerate(expected))
        return out
    if isinstance(expected, sp.Basic):
        symbols = sorted(expected.free_symbols, key=lambda s: s.name)
        out = {"plus 37/100": expected + sp.Rational(37, 100), "times 137/100": expected * sp.Rational(137, 100),
               "squared": expected ** 2 + 1, "plus pi": expected + sp.pi, "plus log 2": expected + sp.log(2),
               "minus 1/3": expected - sp.Rational(1, 3), "doubled plus one": 2 * expected + 1}
        if symbols:
            s = symbols[0]
            out[f"plus {s}/7"] = expected + s / 7
            out[f"{s} doubled"] = expected.subs(s, 2 * s)
        return out
    return {}


def _catalogued(spec) -> set:
    return set(spec.get("hints", {}).values())


def _oracle_equal(a, b, rtol, atol) -> bool:
    """Equality judged without the engine under test: torch.allclose (an
    infinite entry equals only the same infinity; NaN equals nothing) and
    sympy's simplify."""
    if isinstance(a, tuple) or isinstance(b, tuple):
        if not (isinstance(a, tuple) and isinstance(b, tuple)) or len(a) != len(b):
            return False
        atols = atol if isinstance(atol, (list, tuple)) else [atol] * len(a)
        rtols = rtol if isinstance(rtol, (list, tuple)) else [rtol] * len(a)
        return all(_oracle_equal(x, y, r, t) for x, y, r, t in zip(a, b, rtols, atols))
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        if a.shape != b.shape:
            return False
        atol = min(atol) if isinstance(atol, (list, tuple)) else atol
        rtol = min(rtol) if isinstance(rtol, (list, tuple)) else rtol
        tol = atol if isinstance(atol, torch.Tensor) else torch.tensor(float(atol))
        return bool(torch.all(torch.isclose(b.double(), a.double(), rtol=float(rtol), atol=0.0)
                              | ((b.double() - a.double()).abs() <= tol.double())
                              & torch.isfinite(a.double()) & torch.isfinite(b.double())))
    if isinstance(a, sp.Basic) and isinstance(b, sp.Basic):
        try:
            return sp.simplify(a - b) == 0
        except Exception:
            return False
    return False


def _same_as_a_mutant(case, answer) -> bool:
    return any(_oracle_equal(output, answer, case.get("rtol", 1e-5), case.get("atol", 1e-6))
               for output in case.get("mutants", {}).values() if not isinstance(output, (dict, Probes)))


@pytest.mark.parametrize("assignment,kind", FILES, ids=[f"{a}-{k}" for a, k in FILES])
def test_the_right_answer_passes_with_no_hint(assignment, kind):
    for name, spec, i, case in _cases(assignment, kind):
        expected = case["expected"]
        if isinstance(expected, (Probes, dict)):
            continue  # a public symbolic case holds values, not an expression to hand back
        result = judge_case(case, expected, spec.get("hints", {}), spec.get("kind", "call"))
        assert result.passed and not result.hint, (name, i, result.detail, result.hint)


@pytest.mark.parametrize("assignment,kind", FILES, ids=[f"{a}-{k}" for a, k in FILES])
def test_every_catalogued_mistake_gets_its_own_hint(assignment, kind):
    checked = 0
    for name, spec, i, case in _cases(assignment, kind):
        hints = spec.get("hints", {})
        for mutant, output in case.get("mutants", {}).items():
            if isinstance(output, dict) and "__raised__" in output:
                outcome = {**output, "detail": "raised"}
            elif isinstance(output, Probes) or _has_nan(output):
                continue
            else:
                outcome = output
            result = judge_case(case, outcome, hints, spec.get("kind", "call"))
            if result.passed:
                continue  # this input cannot tell the mistake apart (e.g. μ = 0 hides a missing ½)
            twins = {hints[m] for m, o in case["mutants"].items() if m in hints and not isinstance(o, (dict, Probes))
                     and not _has_nan(o) and not isinstance(outcome, dict) and _safe_equal(case, o, outcome)}
            assert hints[mutant] in result.hint or result.hint in twins, (name, i, mutant, result.hint)
            checked += 1
    assert checked > 0


def _safe_equal(case, a, b) -> bool:
    try:
        return compare(a, b, case.get("rtol", 1e-5), case.get("atol", 1e-6))[0]
    except Exception:
        return False


@pytest.mark.parametrize("assignment,kind", FILES, ids=[f"{a}-{k}" for a, k in FILES])
def test_perturbations_outside_the_catalogue_never_get_a_catalogued_hint(assignment, kind):
    per_todo: dict = {}
    wrong = []
    for name, spec, i, case in _cases(assignment, kind):
        catalogued = _catalogued(spec)
        for label, answer in _perturbations(case["expected"], seed=i).items():
            if _same_as_a_mutant(case, answer):
                continue  # it is a catalogued mistake after all
            result = judge_case(case, answer, spec.get("hints", {}), spec.get("kind", "call"))
            per_todo[name] = per_todo.get(name, 0) + 1
            if result.hint and any(hint in result.hint for hint in catalogued):  # also "In <component>: <hint>"
                wrong.append(f"{name} case {i} ({label}): got the catalogued hint {result.hint!r}")
    assert not wrong, wrong[:8]
    assert per_todo and all(n >= 6 for n in per_todo.values()), per_todo


def test_at_least_twenty_perturbations_per_todo_over_public_and_hidden_cases():
    counts: dict = {}
    for assignment, kind in FILES:
        for name, spec, i, case in _cases(assignment, kind):
            for answer in _perturbations(case["expected"], seed=i).values():
                if not _same_as_a_mutant(case, answer):
                    counts[(assignment, name)] = counts.get((assignment, name), 0) + 1
    assert counts and min(counts.values()) >= 20, counts


# ---------------------------------------------------- partial and combined mistakes
def _case(expected, mutants, rtol=1e-5, atol=1e-6, args=()):
    return {"label": "synthetic", "expected": expected, "mutants": mutants, "rtol": rtol, "atol": atol,
            "args": args}


def test_two_mistakes_in_two_terms_are_both_named():
    e = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    d_kl, d_rec = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64), torch.tensor([3.0, 0.25, -0.7], dtype=torch.float64)
    case = _case(e, {"kl": e + d_kl, "rec": e + d_rec, "other": e * 3})
    hints = {"kl": "KL mistake.", "rec": "Reconstruction mistake.", "other": "Other mistake."}
    result = judge_case(case, e + d_kl + d_rec, hints)  # the oracle: both deviations added by hand
    assert not result.passed
    assert "KL mistake." in result.hint and "Reconstruction mistake." in result.hint and "Other" not in result.hint
    # half of one mistake plus the other is no catalogued pair
    assert not judge_case(case, e + 0.5 * d_kl + d_rec, hints).hint
    # a single catalogued mistake keeps its own hint, unchanged
    assert judge_case(case, e + d_kl, hints).hint == "KL mistake."


def test_no_pair_hint_where_the_reference_is_monte_carlo():
    e = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    case = _case(e, {"a": e + 0.5, "b": e * 2}, rtol=0.0, atol=0.2)  # a wide, Monte Carlo band
    assert not judge_case(case, e + 0.5 + e, {"a": "A.", "b": "B."}).hint


def test_a_catalogued_nan_names_the_answer_only_with_the_same_finite_values():
    e = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    m = torch.tensor([float("nan"), 5.0, 6.0], dtype=torch.float64)
    case = _case(e, {"log_of_logvar": m})
    hints = {"log_of_logvar": "You took the log of logvar."}
    assert judge_case(case, m.clone(), hints).hint == "You took the log of logvar."
    one_nan = e.clone()
    one_nan[0] = float("nan")
    assert not judge_case(case, one_nan, hints).hint  # a NaN alone names no mistake
    all_nan = torch.full_like(e, float("nan"))
    assert not judge_case(_case(e, {"log_of_logvar": all_nan}), all_nan, hints).hint


def test_a_constant_half_per_latent_dimension_is_named_as_an_offset():
    mu = torch.zeros(4, 3)
    e = torch.tensor([0.3, 1.1, 0.7, 2.0], dtype=torch.float64)
    result = judge_case(_case(e, {}, args=(mu, mu)), e - 1.5, {})  # 3 latents × ½, by hand
    assert "3/2" in result.hint and "too small" in result.hint and "factor" not in result.hint.split(":")[0]


def test_a_single_number_off_by_a_named_offset_gets_an_offset_hint_not_a_ratio():
    x = torch.zeros(2, 784)
    e = torch.tensor(-32.833333, dtype=torch.float64)
    result = judge_case(_case(e, {}, args=(x,)), e + 783 * 0.5 * math.log(2 * math.pi), {})
    assert "783 × ½·log 2π" in result.hint and "times" not in result.hint


def test_failure_lines_show_the_digits_where_the_numbers_differ():
    ok, detail, _ = compare(torch.tensor(-32.83331234, dtype=torch.float64),
                            torch.tensor(-32.83339876, dtype=torch.float64), rtol=1e-10, atol=1e-10)
    assert not ok
    # they first differ in the 7th significant digit: at least 7 + 2 digits are shown
    assert "-32.8333123" in detail and "-32.8333988" in detail, detail

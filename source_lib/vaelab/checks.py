"""Self-checks for students and hidden checks for the grader, one engine.

``check("kl_standard_normal", kl_standard_normal)`` runs the student's function
on the public cases stored in ``vaelab/references`` and prints one line per
case: what was expected, what came back, the first mismatch, and, when the
answer matches a known mistake (a *mutant*), a sentence naming that mistake.

The hidden test cells call :func:`grade`, which does the same on the hidden
cases under ``grader/references`` and raises ``AssertionError`` on failure so
that nbgrader withholds the points.
"""
from __future__ import annotations

import copy
import math
import sys
from pathlib import Path
import traceback
from dataclasses import dataclass, field

import torch

from . import references
from .symbolic import Probes, equivalent, matches_probes

__all__ = ["check", "grade", "needs", "compare", "Report", "CaseResult", "DRIVERS", "Finding", "OUTPUT_NAMES"]


class Finding(Exception):
    """Raised by a driver when the answer cannot be checked further (wrong
    type or shape of what came back): reported as the check's finding, never
    as an exception the student's code raised."""

# Bound at import time: a submission that later monkeypatches torch's
# comparison functions cannot change how its answers are judged.
_abs, _isfinite, _argmax, _where = torch.abs, torch.isfinite, torch.argmax, torch.where
_tensor_type = torch.Tensor


@dataclass
class CaseResult:
    label: str
    passed: bool
    detail: str
    hint: str = ""
    note: str = ""  # a "Correct, but…" sentence from a driver (vaelab.drivers.correct_but), shown when passed

    def line(self, name: str, i: int, n: int) -> str:
        mark = "✓" if self.passed else "✗"
        text = f"{mark} {name} · case {i}/{n} ({self.label}): {self.detail}"
        if self.hint:
            text += f"\n    Hint: {self.hint}"
        if self.passed and self.note:
            text += f"\n    {self.note}"
        return text


@dataclass
class Report:
    name: str
    results: list = field(default_factory=list)
    hidden: bool = False
    hidden_labels: list = field(default_factory=list)  # what the hidden test also tries (self-check only)

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.passed for r in self.results)

    @property
    def hints(self) -> list:
        return sorted({r.hint for r in self.results if r.hint})

    def __bool__(self):
        return self.passed

    def lines(self) -> list:
        n = len(self.results)
        out = [r.line(self.name, i, n) for i, r in enumerate(self.results, 1)]
        ok = sum(r.passed for r in self.results)
        kind = "hidden" if self.hidden else "public"
        verdict = "all pass" if self.passed else "not yet"
        out.append(f"{self.name}: {ok}/{n} {kind} cases pass ({verdict})")
        if self.hidden_labels and not self.hidden:
            out.append(f"  The hidden test grades the same way on other inputs: {'; '.join(self.hidden_labels)}.")
        return out

    def __str__(self):
        return "\n".join(self.lines())

    def _ipython_display_(self):  # check() already printed the lines
        pass


# ------------------------------------------------------------------ comparing
def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _pair(expected: float, got: float) -> tuple[str, str]:
    """Both numbers with enough digits to see where they differ: the first
    significant digit where their digits part, plus two, at least six (and
    more while rounding still prints them alike)."""
    first = 1
    ea, eb = f"{abs(expected):.16e}", f"{abs(got):.16e}"
    if (expected < 0) == (got < 0) and ea.split("e")[1] == eb.split("e")[1]:
        ma, mb = ea.split("e")[0].replace(".", ""), eb.split("e")[0].replace(".", "")
        first = next((k + 1 for k, (a, b) in enumerate(zip(ma, mb)) if a != b), len(ma))
    digits = min(17, max(6, first + 2))
    while digits < 17 and f"{expected:.{digits}g}" == f"{got:.{digits}g}":
        digits += 1
    return f"{expected:.{digits}g}", f"{got:.{digits}g}"


def _sizes(args) -> list:
    """The sizes a reduction could run over, read from a case's tensor
    arguments: each dimension and the product of the trailing ones."""
    found = set()

    def visit(value):
        if isinstance(value, _tensor_type):
            shape = [int(d) for d in value.shape]
            found.update(d for d in shape if d > 1)
            for k in range(1, len(shape)):
                product = math.prod(shape[k:])
                if product > 1:
                    found.add(product)
        elif isinstance(value, (list, tuple)):
            for item in value:
                visit(item)
        elif isinstance(value, dict):
            for item in value.values():
                visit(item)

    visit(args)
    return sorted(found)


HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _named_offsets(sizes) -> list:
    """(value, words) of additive constants students add or drop."""
    named = []
    for m in [1, *sizes]:
        count = "" if m == 1 else f"{m} × "
        named.append((m * HALF_LOG_2PI, f"{count}½·log 2π (a Gaussian's normalising constant"
                                        f"{'' if m == 1 else f', once per each of {m} values'})"))
        if m > 1:
            named.append(((m - 1) * HALF_LOG_2PI, f"{m - 1} × ½·log 2π (the normalising constant counted for "
                                                  f"{m - 1} values too many or too few)"))
            named.append((math.log(m), f"log {m} (a log of the number of samples or values, {m})"))
            named.append((m / 2, f"{m}/2 (a constant ½ once per each of {m} values)"))
            named.append((float(m), f"{m} (a constant 1 once per each of {m} values)"))
    named.append((0.5, "½"))
    named.append((1.0, "1"))
    return named


def _named_factors(sizes) -> list:
    named = [(2.0, "twice"), (0.5, "half"), (-1.0, "the negative of")]
    for m in sizes:
        named.append((float(m), f"{m} times"))
        named.append((1.0 / m, f"1/{m} of"))
    return named


def _pattern_hint(expected: torch.Tensor, got: torch.Tensor, sizes=()) -> str:
    """Name a constant factor or a constant offset between the answer and the
    reference, as what it is: a factor is never reported for an offset, and a
    single number only gets a hint when the factor or offset is one students
    make (a batch size, a pixel count, ½·log 2π, ...)."""
    mask = _isfinite(expected) & _isfinite(got)
    n = int(mask.sum())
    if n == 0:
        return ""
    e, g = expected[mask].double(), got[mask].double()
    diff = g - e
    d = float(diff.mean())
    scale = float(_abs(e).max()) + 1e-12
    offset_flat = float(_abs(diff - d).max()) <= 1e-7 * (scale + abs(d)) + 1e-9 and abs(d) > 1e-9
    nonzero = _abs(e) > 1e-6 * scale
    ratio_flat, r = False, float("nan")
    if int(nonzero.sum()) == n:
        ratio = g / e
        r = float(ratio.mean())
        ratio_flat = math.isfinite(r) and float(_abs(ratio - r).max()) <= 1e-6 * max(1.0, abs(r)) and abs(r - 1) > 1e-6
    if offset_flat and ratio_flat and n > 1 and float(_abs(e - e.mean()).max()) > 1e-6 * scale:
        # both look flat only when the entries hardly differ: trust the one that fits better
        ratio_flat = float(_abs(g / e - r).max()) * scale < float(_abs(diff - d).max())
        offset_flat = not ratio_flat
    def named_offset() -> str:
        for value, words in _named_offsets(sizes):
            for sign, how in ((1, "too large"), (-1, "too small")):
                if abs(d - sign * value) <= 1e-5 * max(1.0, value):
                    return (f"Your answer is {how} by exactly {words}" + (" everywhere" if n > 1 else "") +
                            ": an added or missing constant term, not a factor.")
        return ""

    def named_factor() -> str:
        for value, words in _named_factors(sizes):
            if abs(r - value) <= 1e-5 * max(1.0, abs(value)):
                return (f"Your answer is exactly {words} the expected value" + (" everywhere" if n > 1 else "") +
                        ": look for a missing or extra factor, sign, or a sum where a mean belongs (or the reverse).")
        return ""

    if n == 1:
        # one number fits a factor and an offset alike: name whichever is one students make, a factor first
        return (named_factor() if ratio_flat else "") or (named_offset() if offset_flat else "")
    if offset_flat and not ratio_flat:
        found = named_offset()
        if found:
            return found
    if ratio_flat:
        found = named_factor()
        if found:
            return found
    if n >= MIN_RATIO_ELEMENTS:
        if offset_flat and not ratio_flat:
            return f"Your answer is off by the same constant ({d:+.6g}) everywhere: look for an added or missing term."
        if ratio_flat:
            return f"Your answer is the expected value times {r:.6g} everywhere: look for a constant factor."
    return ""


def _shape_hint(expected: torch.Tensor, got: torch.Tensor, rtol=1e-5, atol=1e-6) -> str:
    if got.is_floating_point() and got.dim() == expected.dim() + 1 and \
            tuple(got.shape[:expected.dim()]) == tuple(expected.shape):
        # one value too many per entry: name the reduction over the last dimension that would fix it
        exp_d, got_d = expected.double(), got.detach().double()
        for how, reduced in (("a sum", got_d.sum(-1)), ("a mean", got_d.mean(-1))):
            if bool((_abs(reduced - exp_d) <= atol + rtol * _abs(exp_d)).all()):
                where = "over the batch" if expected.dim() == 0 else "over the last dimension"
                return f"You return one value per element where a single value is expected: {how} {where} fixes it."
        if expected.dim() == 0:
            return "You return a vector where a single number is expected: reduce it (sum or mean, as the docstring says)."
        return "You return one value per element of the last dimension: you might be missing a reduction over it."
    if got.dim() == 0 and expected.dim() >= 1:
        return "You return a single number where one value per example is expected: did you also sum or average over the batch?"
    return ""


MIN_RATIO_ELEMENTS = 3  # an unnamed constant factor or offset is only a pattern across several numbers


def _finite_tolerance(value, fallback: float = 0.0):
    """A tolerance must be a finite, non-negative number (or tensor of them)."""
    if isinstance(value, _tensor_type):
        return torch.nan_to_num(value.double().abs(), nan=fallback, posinf=fallback, neginf=fallback)
    try:
        value = abs(float(value))
    except (TypeError, ValueError):
        return fallback
    return value if math.isfinite(value) else fallback


def _band(expected, rtol, atol) -> float:
    """The allowed difference around a scalar reference: atol + rtol·|expected|."""
    a = _finite_tolerance(atol)
    a = float(a.min()) if isinstance(a, _tensor_type) else a
    return a + _finite_tolerance(rtol) * abs(float(expected)) if math.isfinite(float(expected)) else a


def compare(expected, got, rtol: float = 1e-5, atol: float = 1e-6, names=None, sizes=()):
    """Return ``(ok, detail, generic_hint)`` for one answer against its reference.

    A non-finite reference entry matches only the same non-finite value (NaN
    only NaN); tolerances are made finite. ``names`` labels the elements of a
    tuple answer (e.g. ``"forward's mu"``) in the detail."""
    import numpy as np
    import sympy as sp

    if isinstance(expected, tuple):
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            return False, f"expected a tuple of {len(expected)} values, got {type(got).__name__}", ""
        atols = atol if isinstance(atol, (tuple, list)) else [atol] * len(expected)
        rtols = rtol if isinstance(rtol, (tuple, list)) else [rtol] * len(expected)
        labels = list(names) if names and len(names) == len(expected) else [f"element {k}" for k in range(len(expected))]
        for k, (e, g) in enumerate(zip(expected, got)):
            ok, detail, hint = compare(e, g, rtols[k], atols[k], sizes=sizes)
            if not ok:
                return False, f"{labels[k]}: {detail}", hint
        if all(isinstance(e, _tensor_type) and e.dim() == 0 for e in expected):
            values = ", ".join(f"{float(g):.4g}" for g in got)
            refs = ", ".join(f"{float(e):.4g} ± {_band(e, r, a):.2g}" for e, r, a in zip(expected, rtols, atols))
            return True, f"({values}) agrees with ({refs})", ""
        return True, "matches the reference", ""
    if isinstance(rtol, (tuple, list)):  # one tolerance per element, but a single value came back
        rtol = min(rtol)
    if isinstance(atol, (tuple, list)):
        atol = min(atol)
    rtol = _finite_tolerance(rtol)
    atol = _finite_tolerance(atol)

    if isinstance(expected, (Probes, sp.Basic)):
        try:
            if isinstance(got, _tensor_type) or got is None or \
                    (isinstance(expected, Probes) and isinstance(got, (tuple, list, dict))):
                raise TypeError
            if isinstance(got, str):  # never parsed: sympify would run it as Python
                return False, "returned a string: return the sympy expression itself, not its text", ""
            got = sp.sympify(got, strict=True)  # numbers and sympy objects only
        except (sp.SympifyError, TypeError):
            return False, f"expected a sympy expression, got {type(got).__name__}", ""
    if isinstance(expected, Probes):  # public symbolic case: the answer's values, not the answer
        same, how = matches_probes(got, expected)
        return same, (how if same else f"not equal to the reference; it {how}"), ""

    if isinstance(expected, sp.Basic):
        same, how = equivalent(got, expected)
        if same:
            return True, f"symbolically equal ({how})", ""
        return False, f"not equivalent to the reference; it {how}", ""

    if isinstance(expected, _tensor_type):
        if isinstance(got, np.ndarray):
            return False, "returned a numpy array: return a torch tensor", ""
        if not isinstance(got, _tensor_type):
            return False, f"expected a tensor of shape {tuple(expected.shape)}, got {type(got).__name__}", ""
        if got.device.type != "cpu":
            got = got.cpu()
        if tuple(got.shape) != tuple(expected.shape):
            return False, (f"expected shape {tuple(expected.shape)}, got {tuple(got.shape)}"), \
                _shape_hint(expected, got, rtol, atol)
        if expected.is_floating_point() and got.dtype != expected.dtype:
            return False, f"expected dtype {expected.dtype}, got {got.dtype}", ""
        got_d = got.detach().double()
        exp_d = expected.double()
        special_exp, special_got = ~_isfinite(exp_d), ~_isfinite(got_d)
        same_special = special_exp & special_got & ((got_d == exp_d) | (got_d.isnan() & exp_d.isnan()))
        wrong_special = (special_exp | special_got) & ~same_special
        if bool(wrong_special.any()):
            idx = tuple(int(i) for i in wrong_special.nonzero()[0])
            if bool(special_got[idx]):
                return False, f"non-finite value {float(got_d[idx])} at index {idx}", ""
            return False, f"value at index {idx}: expected {float(exp_d[idx])}, got {float(got_d[idx]):.6g}", \
                ""
        err = _where(same_special, torch.zeros_like(got_d), _abs(got_d - exp_d))
        tol = atol + rtol * _abs(_where(same_special, torch.zeros_like(exp_d), exp_d))
        bad = err > tol
        if bool(bad.any()):
            flat = int(_argmax(_where(bad, err, torch.zeros_like(err))))
            idx = tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), exp_d.shape)) if exp_d.dim() else ()
            want, have = _pair(float(exp_d[idx]), float(got_d[idx]))
            where = f"value at index {idx}: " if exp_d.dim() else ""
            count = f" ({int(bad.sum())} of {bad.numel()} entries off)" if bad.numel() > 1 else ""
            return (False, f"{where}expected {want}, got {have}{count}", _pattern_hint(exp_d, got_d, sizes))
        return True, f"matches (max error {float(err.max()) if err.numel() else 0.0:.1e})", ""

    if isinstance(expected, dict) and "__choices__" in expected:  # a prediction: judged by the hidden test only
        if got in expected["__choices__"]:
            return True, (f"your prediction {got!r} is recorded; the hidden test grades it, and once you have run "
                          f"the experiment, the cell after it explains the answer"), ""
        return False, f"expected one of {expected['__choices__']}, got {got!r}", ""

    if isinstance(expected, str):
        same = isinstance(got, str) and got == expected
        return same, ("matches" if same else f"expected {expected!r}, got {got!r}"), ""

    if isinstance(expected, (int, float)):
        try:
            g = float(got)
        except (TypeError, ValueError):
            return False, f"expected a number, got {type(got).__name__}", ""
        if not math.isfinite(expected) or not math.isfinite(g):
            same = (g == expected) or (math.isnan(g) and math.isnan(expected))
            return same, (f"matches ({_fmt(g)})" if same else f"expected {_fmt(float(expected))}, got {_fmt(g)}"), ""
        if math.isclose(g, expected, rel_tol=rtol, abs_tol=atol):
            return True, f"matches ({_fmt(g)})", ""
        want, have = _pair(float(expected), g)
        return False, f"expected {want}, got {have}", _pattern_hint(torch.tensor([float(expected)], dtype=torch.float64),
                                                                    torch.tensor([g], dtype=torch.float64), sizes)

    return (expected == got), f"expected {expected!r}, got {got!r}", ""


# ------------------------------------------------------------------- running
def _call(fn, case):
    args = copy.deepcopy(case["args"])
    kwargs = copy.deepcopy(case.get("kwargs", {}))
    return fn(*args, **kwargs)


#: How each kind of reference case is run; assignments register more kinds.
DRIVERS = {"call": _call, "sympy": _call}


def _describe_exception(err: BaseException) -> str:
    if isinstance(err, NotImplementedError):
        return "not implemented yet: replace `raise NotImplementedError()` with your code"
    if isinstance(err, Finding):
        return str(err)
    frames = traceback.extract_tb(err.__traceback__)
    where = ""
    for frame in reversed(frames):
        if "ipykernel" in frame.filename or frame.filename.startswith("<"):
            where = f" (line {frame.lineno} of your cell: `{(frame.line or '').strip()[:60]}`)"
            break
    message = str(err).splitlines()[0][:160] if str(err) else ""
    return f"raised {type(err).__name__}: {message}{where}"


def raised(err: BaseException) -> dict:
    """How a raised exception is stored among mutant outputs."""
    return {"__raised__": f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"}


def _execute(fn, case, kind):
    """Run one case; return ``(True, output)`` or ``(False, exception)``."""
    torch.manual_seed(0)  # the same random stream the references were recorded with (on the CPU)
    try:
        return True, DRIVERS[kind](fn, case)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as err:  # any student error becomes one readable line
        return False, err


def judge_case(case, outcome, hints, kind: str = "call") -> CaseResult:
    """Compare one case's outcome with its reference. ``outcome`` is the
    output, or ``{"__raised__": signature, "detail": sentence}`` for an
    exception (the form recorded by sealed grading)."""
    label = case.get("label", "")
    if isinstance(outcome, dict) and "__raised__" in outcome:
        mutants = case.get("mutants", {}).items()
        same = sorted({hints[m] for m, out in mutants
                       if isinstance(out, dict) and out.get("__raised__") == outcome["__raised__"] and m in hints})
        # several catalogued mistakes raise the same error: say so rather than pick one
        hint = same[0] if len(same) == 1 else ("This error has more than one usual cause. " +
                                                " Or: ".join(same) if same else "")
        return CaseResult(label, False, outcome.get("detail") or f"raised {outcome['__raised__']}", hint)
    got = outcome
    rtol, atol = case.get("rtol", 1e-5), case.get("atol", 1e-6)
    names = OUTPUT_NAMES.get(kind)
    try:
        sizes = _sizes(case.get("args", ()))
    except Exception:
        sizes = []
    try:
        ok, detail, hint = compare(case["expected"], got, rtol, atol, names, sizes)
    except Exception as err:  # a strange return value must not crash the check
        return CaseResult(label, False, f"could not compare the result ({type(err).__name__}: {err})")
    if ok:
        return CaseResult(label, True, detail)
    mutants = [(m, o) for m, o in case.get("mutants", {}).items()
               # a NaN in a catalogued output says nothing about which mistake was made
               if not (isinstance(o, dict) and "__raised__" in o) and not _has_nan(o)]
    for mutant, output in mutants:
        try:
            if compare(output, got, rtol, atol)[0]:
                return CaseResult(label, False, detail, hints.get(mutant, hint))
        except Exception:
            continue
    nan_hint = _nan_mutant_hint(case, got, hints, rtol, atol)
    if nan_hint:
        return CaseResult(label, False, detail, nan_hint)
    partial = _component_hint(case["expected"], got, mutants, hints, rtol, atol, names)
    if not partial:
        partial = _pair_hint(case["expected"], got, mutants, hints, rtol, atol)
    return CaseResult(label, False, detail, partial or hint)


def _nan_mutant_hint(case, got, hints, rtol, atol) -> str:
    """A catalogued mistake whose output holds NaN (log of a negative number)
    names the answer only when the answer has NaN in exactly the same entries
    *and* agrees with it on finite entries where the reference differs: a NaN
    alone says nothing about which mistake was made."""
    expected = case["expected"]
    if not isinstance(expected, _tensor_type) or not isinstance(got, _tensor_type) or \
            tuple(got.shape) != tuple(expected.shape) or not got.is_floating_point() or not _has_nan(got):
        return ""
    found = set()
    for mutant, output in case.get("mutants", {}).items():
        if mutant not in hints or not isinstance(output, _tensor_type) or not _has_nan(output) or \
                tuple(output.shape) != tuple(expected.shape):
            continue
        try:
            finite = ~output.isnan()
            if not bool(finite.any()) or not bool((got.isnan() == output.isnan()).all()):
                continue
            if compare(output[finite], got[finite], rtol, atol)[0] and \
                    not compare(expected[finite], output[finite], rtol, atol)[0]:
                found.add(hints[mutant])
        except Exception:
            continue
    return found.pop() if len(found) == 1 else ""


def _pair_hint(expected, got, mutants, hints, rtol, atol) -> str:
    """Two catalogued mistakes made at once, each in its own term (the KL
    summed over the batch *and* the reconstruction averaged over pixels): the
    answer's deviation from the reference is the sum of the two mistakes'
    deviations. Only where the reference is deterministic (a tight band), and
    only when exactly one pair explains the answer."""
    if not isinstance(expected, _tensor_type) or not isinstance(got, _tensor_type) or \
            tuple(got.shape) != tuple(expected.shape) or not expected.is_floating_point() or \
            not _tight(expected, rtol, atol):
        return ""
    e = expected.double()
    deviations = []
    for mutant, output in mutants:
        if mutant not in hints or not isinstance(output, _tensor_type) or tuple(output.shape) != tuple(e.shape):
            continue
        try:
            if compare(expected, output, rtol, atol)[0]:
                continue  # this input cannot show that mistake
        except Exception:
            continue
        deviations.append((hints[mutant], output.double() - e))
    found = set()
    for i in range(len(deviations)):
        for j in range(i + 1, len(deviations)):
            (h1, d1), (h2, d2) = deviations[i], deviations[j]
            if h1 == h2:
                continue
            combined = (e + d1 + d2).to(expected.dtype)
            try:
                if compare(combined, got, rtol, atol)[0] and not compare(expected, combined, rtol, atol)[0]:
                    found.add(tuple(sorted((h1, h2))))
            except Exception:
                continue
    if len(found) != 1:
        return ""
    (h1, h2), = found
    return f"Two mistakes at once, each in its own term. {h1} And: {h2}"


TIGHT_RTOL = 1e-3  # per-component hints only where the reference is deterministic


def _tight(expected, rtol, atol) -> bool:
    """Whether the allowed band around ``expected`` is within TIGHT_RTOL of its size."""
    if not isinstance(expected, _tensor_type) or not expected.is_floating_point() or expected.numel() == 0:
        return False
    e = _abs(expected.double())
    e = e[_isfinite(e)]
    if e.numel() == 0:
        return False
    r, a = _finite_tolerance(rtol, 1.0), _finite_tolerance(atol, 1.0)
    r = float(r.max()) if isinstance(r, _tensor_type) else r
    a = float(a.max()) if isinstance(a, _tensor_type) else a
    size = float(e.max())
    return a + r * size <= TIGHT_RTOL * size + 1e-12


def _component_hint(expected, got, mutants, hints, rtol, atol, names) -> str:
    """For a tuple answer that no catalogued mistake explains as a whole: the
    catalogued mistake that explains one wrong component (the others may be
    off too), named with that component, when exactly one does."""
    if not isinstance(expected, tuple) or not isinstance(got, (tuple, list)) or len(got) != len(expected):
        return ""
    rtols = rtol if isinstance(rtol, (tuple, list)) else [rtol] * len(expected)
    atols = atol if isinstance(atol, (tuple, list)) else [atol] * len(expected)
    labels = list(names) if names and len(names) == len(expected) else [f"element {k}" for k in range(len(expected))]
    found = {}
    for k in range(len(expected)):
        try:
            if not _tight(expected[k], rtols[k], atols[k]):
                continue  # a Monte Carlo component's band is too wide to tell one mistake from a perturbation
            if compare(expected[k], got[k], rtols[k], atols[k])[0]:
                continue  # this component is right
            for mutant, output in mutants:
                if not isinstance(output, tuple) or len(output) != len(expected) or mutant not in hints:
                    continue
                shows_here = not compare(expected[k], output[k], rtols[k], atols[k])[0]
                if shows_here and compare(output[k], got[k], rtols[k], atols[k])[0]:
                    found.setdefault(hints[mutant], []).append(labels[k])
        except Exception:
            continue
    if len(found) != 1:
        return ""
    (hint, where), = found.items()
    return f"In {', '.join(dict.fromkeys(where))}: {hint}"


def _has_nan(value) -> bool:
    if isinstance(value, _tensor_type):
        return value.is_floating_point() and bool(value.isnan().any())
    if isinstance(value, (tuple, list)):
        return any(_has_nan(v) for v in value)
    return isinstance(value, float) and math.isnan(value)


#: Names of the elements of a driver's tuple output, for the case lines.
OUTPUT_NAMES: dict = {}


_NOTES: list = []


def note(text: str) -> None:
    """For drivers: a "Correct, but…" sentence about the case being run (shown under it when it passes)."""
    if text not in _NOTES:
        _NOTES.append(text)


def _outcomes(fn, spec, store=lambda output: output, notes: list | None = None) -> list:
    """Each case's output (passed through ``store``), or the recorded form
    of the exception it raised; with ``notes``, also each case's driver notes."""
    outcomes = []
    for case in spec["cases"]:
        _NOTES.clear()
        ok, value = _execute(fn, case, spec.get("kind", "call"))
        outcomes.append(store(value) if ok else {**raised(value), "detail": _describe_exception(value)})
        if notes is not None:
            notes.append(" ".join(_NOTES))
    _NOTES.clear()
    return outcomes


_INDEX: dict = {}


def _load_drivers():
    from . import drivers  # noqa: F401  (registers the assignment-specific kinds)


def _spec(name: str, hidden: bool, assignment: str | None):
    key = (name, hidden, assignment)
    if key in _INDEX:
        return _INDEX[key]
    if assignment is None:
        import os

        # the hidden inputs a grader staged name their own TODOs (a TODO may be newer than this vaelab's
        # public files); else the public files say which assignment a TODO belongs to
        staged = os.environ.get("VAELAB_HIDDEN_REFERENCES") if hidden else None
        folders = ([Path(staged)] if staged else []) + [references.PUBLIC_DIR]
        assignment = next((path.stem for folder in folders for path in sorted(folder.glob("*.pt"))
                           if name in references.load(path)["functions"]), None)
        if assignment is None:
            raise KeyError(f"no reference cases for {name!r}; is the name spelled as in the notebook?")
    path = references.hidden_path(assignment) if hidden else references.public_path(assignment)
    spec = references.load(path)["functions"][name]
    _INDEX[key] = spec
    return spec


def judge(name: str, spec: dict, outcomes: list) -> Report:
    """Compare recorded outcomes with the answers in ``spec``: for the
    self-check and hidden test in one process, and on the grader's side of
    sealed grading (outcomes recorded by the kernel, see :func:`grade`)."""
    report = Report(name, hidden=True)
    cases = spec["cases"]
    if len(outcomes) != len(cases):
        report.results = [CaseResult(c.get("label", ""), False,
                                     f"{len(outcomes)} outputs were recorded for {len(cases)} cases") for c in cases]
        return report
    for case, outcome in zip(cases, outcomes):
        report.results.append(judge_case(case, outcome, spec.get("hints", {}), spec.get("kind", "call")))
    return report


def run(name: str, fn, *, hidden: bool = False, assignment: str | None = None) -> Report:
    """Run every stored case for ``name`` against ``fn`` and return a Report."""
    _load_drivers()
    spec = _spec(name, hidden, assignment)
    notes: list = []
    report = judge(name, spec, _outcomes(fn, spec, notes=notes))
    shown = set()
    for result, text in zip(report.results, notes):
        if result.passed and text and text not in shown:  # once per check, under the first case it concerns
            result.note = text
            shown.add(text)
    report.hidden = hidden
    if not hidden:
        report.hidden_labels = list(spec.get("hidden_labels", []))
    return report


def check(name: str, fn, *, assignment: str | None = None) -> Report:
    """Self-check: run the public cases and print one line per case."""
    report = run(name, fn, assignment=assignment)
    print(report, file=sys.stdout)
    return report


def _record(name: str, fn, folder: str, assignment: str | None) -> None:
    """Sealed grading: run the hidden inputs and write the outputs for the
    grader, which compares them with the answers outside this process."""
    import os

    _load_drivers()
    spec = _spec(name, True, assignment)
    outcomes = _outcomes(fn, spec, store=references.encode_answer)
    path = os.path.join(folder, f"{name}.pt")
    torch.save({"name": name, "cases": outcomes}, path + ".tmp")
    os.replace(path + ".tmp", path)
    print(f"{name}: outputs on {len(outcomes)} hidden cases recorded; the grader compares them outside the notebook")


def grade(name: str, fn, *, assignment: str | None = None) -> None:
    """Hidden test: run the hidden cases; raise AssertionError if any fails.

    Under ``make grade`` (``VAELAB_SEALED_RESULTS`` set) the kernel holds only
    the hidden *inputs*: this records the outputs and the grader judges them."""
    import os

    sealed = os.environ.get("VAELAB_SEALED_RESULTS")
    if sealed:
        _record(name, fn, sealed, assignment)
        return
    report = run(name, fn, hidden=True, assignment=assignment)
    if not report.passed:
        raise AssertionError("\n".join(verdict_lines(report)))
    print(verdict_lines(report)[0])


def verdict_lines(report: Report) -> list:
    """The hidden test's message, the same in the notebook and in sealed grading."""
    name = report.name
    failed = [r for r in report.results if not r.passed]
    if not failed:
        return [f"{name}: all {len(report.results)} hidden cases pass"]
    lines = [f"{name}: {len(failed)} of {len(report.results)} hidden cases fail."]
    lines += [f"- {r.label}: {r.detail}" for r in failed[:3]]
    lines += [f"Hint: {h}" for h in report.hints]
    return lines


class needs:
    """Context manager for demo cells that use a student's function::

        with needs("kl_standard_normal"):
            plot_kl(kl_standard_normal)

    If that function is still a blank TODO, the cell prints a one-line note
    instead of a traceback, so "Run All" on a fresh notebook never stops
    half-way. Every other error is shown as usual.
    """

    def __init__(self, *names: str):
        self.names = names

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and issubclass(exc_type, NotImplementedError):
            print(f"⏳ This cell uses {', '.join(self.names)}: complete the TODO above, then run this cell again.")
            return True
        if exc_type is not None and issubclass(exc_type, NameError) and not issubclass(exc_type, UnboundLocalError):
            # a variable an earlier demo cell would have made (e.g. the trained model) does not exist,
            # because that cell was waiting for a TODO too
            name = getattr(exc, "name", None) or str(exc)
            print(f"⏳ This cell needs `{name}`, made by an earlier cell that waits for {', '.join(self.names)}: "
                  f"complete the TODO(s), then run the notebook again from that cell.")
            return True
        return False


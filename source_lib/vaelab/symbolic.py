"""Symbolic equivalence for sympy answers: never compare strings.

``simplify(a - b) == 0`` decides most cases; when simplify is inconclusive we
evaluate both sides at random points that respect the symbols' assumptions
(positive symbols get positive values, and so on).
"""
from __future__ import annotations

import random

import sympy as sp

__all__ = ["equivalent", "probe_values", "Probes", "probe", "sample_points", "matches_probes"]


def probe_values(symbols, rng: random.Random):
    """One random substitution that respects each symbol's assumptions."""
    values = {}
    for s in symbols:
        if s.is_positive or s.is_nonnegative:
            values[s] = sp.Float(rng.uniform(0.3, 3.0))
        elif s.is_integer:
            values[s] = sp.Integer(rng.randint(1, 5))
        else:
            values[s] = sp.Float(rng.uniform(-2.5, 2.5))
    return values


def equivalent(a, b, *, probes: int = 12, rtol: float = 1e-9, seed: int = 0) -> tuple[bool, str]:
    """Return ``(same, how)``: whether two sympy expressions are equal for every
    admissible value of their symbols, and how that was decided."""
    a, b = sp.sympify(a), sp.sympify(b)
    diff = a - b
    if diff == 0:
        return True, "identical"
    try:
        if sp.simplify(diff) == 0:
            return True, "simplify(a - b) == 0"
    except Exception:  # simplify can fail on odd input; fall back to numbers
        pass
    symbols = sorted(a.free_symbols | b.free_symbols, key=lambda s: s.name)
    rng = random.Random(seed)
    checked = 0
    for _ in range(probes * 3):
        point = probe_values(symbols, rng)
        try:
            va = complex(a.evalf(30, subs=point))
            vb = complex(b.evalf(30, subs=point))
        except (TypeError, ValueError, ZeroDivisionError):
            continue
        if any(v != v or abs(v) == float("inf") for v in (va, vb)):
            continue
        if abs(va - vb) > rtol * max(1.0, abs(va), abs(vb)):
            where = ", ".join(f"{s}={float(v):.3g}" for s, v in point.items())
            at = f" at {where}" if where else ""
            return False, f"differs{at}: yours {va.real:.8g}, expected {vb.real:.8g}"
        checked += 1
        if checked >= probes:
            break
    if checked == 0:
        return False, "could not evaluate either expression numerically"
    return True, f"equal at {checked} random points (simplify was inconclusive)"


# -- answers known only by their values ------------------------------------
# The public self-check data ship to students, so a symbolic case must not
# store the expression that answers it. It stores the answer's values at
# sample points instead (drawn under the input symbols' assumptions), and the
# self-check evaluates the student's expression at the same points. The
# grader's hidden cases keep the expression and also check by simplify.

class Probes:
    """An expression known only by its values at sample points.

    ``points`` is a list of ``{symbol name: value}``; ``values`` the
    expression's value at each point, as ``(real, imag)`` or ``None`` where it
    could not be evaluated."""

    def __init__(self, points, values):
        self.points = [dict(p) for p in points]
        self.values = [None if v is None else (float(v[0]), float(v[1])) for v in values]

    def __repr__(self):
        return f"Probes({len(self.points)} points)"

    def __eq__(self, other):
        return isinstance(other, Probes) and self.points == other.points and self.values == other.values


def _evaluate(expr, point: dict):
    """``expr`` at ``point`` (symbols matched by name) as ``(re, im)``, or None."""
    subs = {s: sp.Float(point[s.name], 30) for s in expr.free_symbols if s.name in point}
    try:
        value = complex(expr.evalf(30, subs=subs))
    except (TypeError, ValueError, ZeroDivisionError, AttributeError):
        return None
    if value != value or abs(value) == float("inf"):
        return None
    return value.real, value.imag


def sample_points(symbols, n: int = 8, seed: int = 0) -> list:
    """``n`` substitutions ``{name: value}`` that respect the symbols' assumptions."""
    symbols = sorted(symbols, key=lambda s: s.name)
    rng = random.Random(seed)
    if not symbols:
        return [{}]
    return [{s.name: float(v) for s, v in probe_values(symbols, rng).items()} for _ in range(n)]


def probe(expr, points) -> Probes:
    expr = sp.sympify(expr)
    return Probes(points, [_evaluate(expr, p) for p in points])


def matches_probes(got, expected: Probes, rtol: float = 1e-8) -> tuple[bool, str]:
    """Whether expression ``got`` takes the ``expected`` values at its points."""
    names = set().union(*(p.keys() for p in expected.points)) if expected.points else set()
    stray = sorted(s.name for s in got.free_symbols if s.name not in names)
    if stray:
        return False, f"contains {', '.join(stray)}, which {'is' if len(stray) == 1 else 'are'} not among the inputs"
    checked = 0
    for point, want in zip(expected.points, expected.values):
        if want is None:
            continue
        have = _evaluate(got, point)
        where = ", ".join(f"{k}={v:.3g}" for k, v in point.items())
        at = f" at {where}" if where else ""
        if have is None:
            return False, f"cannot be evaluated{at}"
        scale = max(1.0, abs(complex(*want)), abs(complex(*have)))
        if abs(complex(*have) - complex(*want)) > rtol * scale:
            return False, f"differs{at}: yours {have[0]:.8g}, expected {want[0]:.8g}"
        checked += 1
    if checked == 0:
        return False, "could not be compared at any point"
    return True, (f"equal to the reference at {checked} sample points" if names else "equal to the reference")

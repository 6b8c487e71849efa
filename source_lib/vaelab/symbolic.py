"""Symbolic equivalence for sympy answers: never compare strings.

``simplify(a - b) == 0`` decides most cases; when simplify is inconclusive we
evaluate both sides at random points that respect the symbols' assumptions
(positive symbols get positive values, and so on).
"""
from __future__ import annotations

import random

import sympy as sp

__all__ = ["equivalent", "probe_values"]


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

"""Reference inputs for 02_reparameterization.

The estimators are stochastic: their expected values come from an oracle (the
exact gradient, by sympy integration), and their tolerance from the reference
estimator's own spread at the stated sample size (grader/author/record.py).
"""
import sympy as sp
import torch

from grader.author.cases import case

Z = sp.Symbol("z", real=True)
_MU, _LV = sp.symbols("mu logvar", real=True)


def exact_gradient(f_expr, mu: float, logvar: float):
    """(d_mu, d_logvar) of E_{z~N(mu, exp(logvar))}[f(z)], exactly, as float64 tensors."""
    density = sp.exp(-(Z - _MU) ** 2 / (2 * sp.exp(_LV))) / sp.sqrt(2 * sp.pi * sp.exp(_LV))
    expectation = sp.integrate(f_expr * density, (Z, -sp.oo, sp.oo))
    point = {_MU: mu, _LV: logvar}
    return tuple(torch.tensor(float(sp.diff(expectation, v).subs(point)), dtype=torch.float64) for v in (_MU, _LV))


def _gauss(seed, *shape, dtype=torch.float32, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(*shape, generator=g, dtype=torch.float64)).to(dtype)


def estimator_case(label, f_expr, mu, logvar, n):
    c = case(label, f_expr, torch.tensor(mu, dtype=torch.float64), torch.tensor(logvar, dtype=torch.float64), n)
    c["expected"] = exact_gradient(f_expr, mu, logvar)
    return c


def _estimators(cases):
    return {"kind": "estimator", "stochastic": True, "cases": cases}


def public():
    estimator_cases = [
        ("f(z) = z², mu = 0.5, logvar = −0.4, n = 20,000", Z**2, 0.5, -0.4, 20_000),
        ("f(z) = sin z, mu = 1, logvar = 0.3, n = 20,000", sp.sin(Z), 1.0, 0.3, 20_000),
    ]
    # The score-function estimator is noisier, and its usual mistakes (σ for σ², a missing ½) vanish where
    # σ = 1: its cases keep log σ² away from 0 and use more samples, so every mistake lies beyond
    # MARGIN_STOCHASTIC tolerances (grader/author/tolerances.py).
    score_cases = [
        ("f(z) = z², mu = 0.5, logvar = −1, n = 100,000", Z**2, 0.5, -1.0, 100_000),
        ("f(z) = sin z, mu = 1, logvar = 0.8, n = 100,000", sp.sin(Z), 1.0, 0.8, 100_000),
    ]
    return {
        "predict_estimator_variance": {"kind": "choice", "cases": [case("your prediction", ["a", "b", "c", "d"])]},
        "reparameterize": {"kind": "reparam", "cases": [
            case("batch 4, latent 3", _gauss(1, 4, 3), _gauss(2, 4, 3), _gauss(3, 4, 3)),
            case("a vector of 6", _gauss(4, 6), _gauss(5, 6, scale=2.0), _gauss(6, 6)),
        ]},
        "pathwise_grad": _estimators([estimator_case(*c) for c in estimator_cases]),
        "score_function_grad": _estimators([estimator_case(*c) for c in score_cases]),
    }


def hidden():
    estimator_cases = [
        ("f(z) = z³ − z, mu = −0.7, logvar = 0.2, n = 40,000", Z**3 - Z, -0.7, 0.2, 40_000),
        ("f(z) = exp(z/2), mu = 0.3, logvar = −1, n = 30,000", sp.exp(Z / 2), 0.3, -1.0, 30_000),
        ("f(z) = (z − 1)², mu = 2, logvar = 0.5, n = 30,000", (Z - 1) ** 2, 2.0, 0.5, 30_000),
    ]
    score_cases = [
        ("f(z) = z³ − z, mu = −0.7, logvar = 0.9, n = 150,000", Z**3 - Z, -0.7, 0.9, 150_000),
        ("f(z) = exp(z/2), mu = 0.3, logvar = −1, n = 150,000", sp.exp(Z / 2), 0.3, -1.0, 150_000),
        ("f(z) = (z − 1)², mu = 2, logvar = −0.7, n = 150,000", (Z - 1) ** 2, 2.0, -0.7, 150_000),
    ]
    return {
        "predict_estimator_variance": {"kind": "choice", "cases": [case("your prediction", ["a", "b", "c", "d"])]},
        "reparameterize": {"kind": "reparam", "cases": [
            case("batch 97, latent 5", _gauss(11, 97, 5), _gauss(12, 97, 5, scale=1.5), _gauss(13, 97, 5)),
            case("shape (2, 3, 4), float64", _gauss(14, 2, 3, 4, dtype=torch.float64),
                 _gauss(15, 2, 3, 4, dtype=torch.float64), _gauss(16, 2, 3, 4, dtype=torch.float64)),
            case("a single scalar", torch.tensor(-1.25), torch.tensor(0.8), torch.tensor(0.4)),
        ]},
        "pathwise_grad": _estimators([estimator_case(*c) for c in estimator_cases]),
        "score_function_grad": _estimators([estimator_case(*c) for c in score_cases]),
    }

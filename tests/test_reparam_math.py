"""The 02 reference solution against independent oracles: torch's rsample
autograd and sympy closed forms; estimators are judged statistically."""
import math

import pytest
import sympy as sp
import torch

from grader import SOLUTIONS, load_module
from grader.notebooks import exec_solution


@pytest.fixture(scope="module")
def sol():
    return exec_solution(SOLUTIONS / "02_reparameterization" / "02_reparameterization.ipynb")


def test_reparameterize_matches_rsample(sol):
    mu, logvar = torch.randn(5, 3, requires_grad=True), torch.randn(5, 3, requires_grad=True)
    torch.manual_seed(3)
    ref = torch.distributions.Normal(mu, (0.5 * logvar).exp()).rsample()  # oracle: loc + scale * eps
    torch.manual_seed(3)
    eps = torch.randn(5, 3)
    z = sol["reparameterize"](mu, logvar, eps)
    torch.testing.assert_close(z, ref)
    g_mu, g_lv = torch.autograd.grad(z.sum(), (mu, logvar))
    torch.testing.assert_close(g_mu, torch.ones_like(mu))
    torch.testing.assert_close(g_lv, 0.5 * (0.5 * logvar).exp() * eps)


def test_oracle_closed_form_for_z_squared():
    cases = load_module("cases", "02_reparameterization")
    d_mu, d_lv = cases.exact_gradient(cases.Z**2, 0.5, -0.4)
    assert math.isclose(float(d_mu), 1.0, rel_tol=1e-12)  # d/dmu (mu² + σ²) = 2·mu
    assert math.isclose(float(d_lv), math.exp(-0.4), rel_tol=1e-12)  # d/dlogvar exp(logvar)


@pytest.mark.parametrize("name", ["pathwise_grad", "score_function_grad"])
def test_estimators_are_unbiased_within_standard_errors(sol, name):
    cases = load_module("cases", "02_reparameterization")
    f_expr, mu0, lv0 = sp.cos(cases.Z) + cases.Z, -0.3, 0.4
    exact = torch.stack(cases.exact_gradient(f_expr, mu0, lv0))
    f = sp.lambdify(cases.Z, f_expr, "torch")
    mu, lv = torch.tensor(mu0, dtype=torch.float64), torch.tensor(lv0, dtype=torch.float64)
    torch.manual_seed(0)
    runs = torch.stack([torch.stack([torch.as_tensor(v) for v in sol[name](f, mu, lv, 2000)]) for _ in range(200)])
    se = runs.std(0) / math.sqrt(len(runs))
    assert bool(((runs.mean(0) - exact).abs() < 5 * se).all()), (runs.mean(0), exact, se)
    assert mu.item() == mu0 and not mu.requires_grad  # inputs untouched


def test_pathwise_has_lower_variance_than_score_function(sol):
    f = lambda z: z**2
    mu, lv = torch.tensor(0.5, dtype=torch.float64), torch.tensor(-0.4, dtype=torch.float64)
    torch.manual_seed(0)
    pw = torch.stack([sol["pathwise_grad"](f, mu, lv, 64)[0] for _ in range(300)]).std()
    sf = torch.stack([sol["score_function_grad"](f, mu, lv, 64)[0] for _ in range(300)]).std()
    assert pw < 0.7 * sf


def test_no_grad_variant_gets_the_detach_hint(sol):
    from vaelab.checks import run

    def reparameterize(mu, logvar, eps):
        with torch.no_grad():
            return mu + torch.exp(0.5 * logvar) * eps

    report = run("reparameterize", reparameterize)
    assert not report.passed and any("torch.no_grad()" in h for h in report.hints)

"""The 01_elbo reference solution against independent oracles: sympy
integrals, torch.distributions and the exact posterior."""
import math

import sympy as sp
import torch


def test_kl_gaussian_1d_equals_the_integral(solution01):
    z = sp.Symbol("z", real=True)
    mq, mp = sp.symbols("m_q m_p", real=True)
    sq, sp_ = sp.symbols("s_q s_p", positive=True)

    def pdf(mu, s):
        return sp.exp(-(z - mu) ** 2 / (2 * s**2)) / sp.sqrt(2 * sp.pi * s**2)

    integrand = pdf(mq, sq) * sp.expand(sp.expand_log(sp.log(pdf(mq, sq)) - sp.log(pdf(mp, sp_)), force=True))
    integral = sp.integrate(integrand, (z, -sp.oo, sp.oo))
    closed = solution01["kl_gaussian_1d"](mq, sq, mp, sp_)
    assert sp.simplify(sp.expand_log(closed - integral, force=True)) == 0


def test_kl_gaussian_1d_spot_values(solution01):
    kl = solution01["kl_gaussian_1d"]
    assert kl(2, 1, 0, 1) == 2
    # the closed form e²/2 − 3/2, checked numerically against torch.distributions
    N = torch.distributions.Normal
    oracle = torch.distributions.kl_divergence(N(0.0, math.e), N(0.0, 1.0)).item()
    assert abs(float(kl(0, sp.E, 0, 1)) - oracle) < 1e-6


def test_kl_standard_normal_matches_torch_distributions(solution01):
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(97, 11, generator=g, dtype=torch.float64), torch.randn(97, 11, generator=g, dtype=torch.float64)
    q = torch.distributions.Independent(torch.distributions.Normal(mu, (0.5 * logvar).exp()), 1)
    p = torch.distributions.Independent(torch.distributions.Normal(torch.zeros_like(mu), 1.0), 1)
    ours = solution01["kl_standard_normal"](mu, logvar)
    assert ours.shape == (97,)
    torch.testing.assert_close(ours, torch.distributions.kl_divergence(q, p))


def test_kl_standard_normal_passes_gradients(solution01):
    mu = torch.randn(4, 3, requires_grad=True)
    logvar = torch.randn(4, 3, requires_grad=True)
    solution01["kl_standard_normal"](mu, logvar).sum().backward()
    torch.testing.assert_close(mu.grad, mu.detach())  # d/dmu ½mu² = mu
    torch.testing.assert_close(logvar.grad, 0.5 * (logvar.detach().exp() - 1))


def test_elbo_is_tight_at_the_posterior_and_gap_is_kl(solution01):
    x, w, b, m = sp.symbols("x w b m", real=True)
    s2, v = sp.symbols("sigma2 v", positive=True)
    elbo = solution01["elbo_linear_gaussian"](x, w, b, s2, m, v)
    # independent oracle for log p(x): integrate the joint over z
    z = sp.Symbol("z", real=True)
    joint = sp.exp(-z**2 / 2 - (x - w * z - b) ** 2 / (2 * s2)) / (2 * sp.pi * sp.sqrt(s2))
    log_px = sp.log(sp.simplify(sp.integrate(joint, (z, -sp.oo, sp.oo))))
    v_star, m_star = s2 / (w**2 + s2), w * (x - b) / (w**2 + s2)
    values = {x: 0.7, w: -1.3, b: 0.2, s2: 0.4}
    assert abs(float((elbo.subs({m: m_star, v: v_star}) - log_px).subs(values))) < 1e-10
    kl = solution01["kl_gaussian_1d"](m, sp.sqrt(v), m_star, sp.sqrt(v_star))
    for mv in ({m: 0.1, v: 0.3}, {m: -2.0, v: 1.7}):
        gap = float((log_px - elbo).subs(values).subs(mv))
        assert gap > 0
        assert abs(gap - float(kl.subs(values).subs(mv))) < 1e-10

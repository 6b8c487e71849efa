"""Reference inputs for 01_elbo."""
import sympy as sp
import torch

from grader.author.cases import case


def _gauss(seed, *shape, dtype=torch.float32, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(*shape, generator=g, dtype=torch.float64)).to(dtype)


def public():
    mq, mp = sp.symbols("mu_q mu_p", real=True)
    sq, sp_ = sp.symbols("sigma_q sigma_p", positive=True)
    x, w, b, m = sp.symbols("x w b m", real=True)
    s2, v = sp.symbols("sigma2 v", positive=True)
    return {
        "kl_gaussian_1d": {"kind": "sympy", "cases": [
            case("symbolic μ_q, σ_q, μ_p, σ_p", mq, sq, mp, sp_),
            case("N(2,1) vs N(0,1)", sp.Integer(2), sp.Integer(1), sp.Integer(0), sp.Integer(1)),
            case("N(0,e²) vs N(0,1)", sp.Integer(0), sp.E, sp.Integer(0), sp.Integer(1)),
            # edge classes the hidden cases use: a negative mean, rationals, standard deviations as expressions
            case("N(1/2, (2σ)²) vs N(−1, (σ + τ)²): a negative mean, σ's as expressions", sp.Rational(1, 2), 2 * sq,
                 sp.Integer(-1), sq + sp_),
        ]},
        "kl_standard_normal": {"kind": "call", "cases": [
            case("batch 4, latent 3", _gauss(1, 4, 3), _gauss(2, 4, 3, scale=0.5)),
            case("μ = 0, log σ² = 0 gives KL 0", torch.zeros(2, 5), torch.zeros(2, 5)),
            case("batch 3, latent 1, float64", _gauss(7, 3, 1, dtype=torch.float64), _gauss(8, 3, 1, dtype=torch.float64)),
        ]},
        "elbo_linear_gaussian": {"kind": "sympy", "cases": [
            case("all symbols", x, w, b, s2, m, v),
            case("x=1, w=2, b=0, σ²=1/2, m=1/3, v=1/4", sp.Integer(1), sp.Integer(2), sp.Integer(0),
                 sp.Rational(1, 2), sp.Rational(1, 3), sp.Rational(1, 4)),
            case("w = 0 (the latent is ignored), negative x and m", sp.Integer(-1), sp.Integer(0), sp.Integer(2),
                 sp.Integer(1), sp.Rational(-1, 2), sp.Integer(3)),
        ]},
    }


def hidden():
    a, c = sp.symbols("a c", real=True)
    s, t = sp.symbols("s t", positive=True)
    y, u, k, n = sp.symbols("y u k n", real=True)
    r, h = sp.symbols("r h", positive=True)
    return {
        "kl_gaussian_1d": {"kind": "sympy", "cases": [
            case("other symbols", a, s, c, t),
            case("σ_q and σ_p as expressions", a, 2 * s, a + 1, s + t),
            case("N(1/2, 9) vs N(−1, 4)", sp.Rational(1, 2), sp.Integer(3), sp.Integer(-1), sp.Integer(2)),
            case("same distribution gives 0", sp.Integer(3), sp.Rational(7, 5), sp.Integer(3), sp.Rational(7, 5)),
        ]},
        "kl_standard_normal": {"kind": "call", "cases": [
            case("batch 97, latent 7", _gauss(11, 97, 7, scale=1.5), _gauss(12, 97, 7)),
            case("batch 5, latent 1, float64", _gauss(13, 5, 1, dtype=torch.float64),
                 _gauss(14, 5, 1, dtype=torch.float64)),
            case("wide log-variances", _gauss(15, 3, 16), _gauss(16, 3, 16, scale=3.0)),
        ]},
        "elbo_linear_gaussian": {"kind": "sympy", "cases": [
            case("renamed symbols", y, u, k, r, n, h),
            case("x=−2, w=1/2, b=1, σ²=3, m=−1, v=2", sp.Integer(-2), sp.Rational(1, 2), sp.Integer(1),
                 sp.Integer(3), sp.Integer(-1), sp.Integer(2)),
            case("w = 0: the latent is ignored", y, sp.Integer(0), k, r, n, h),
        ]},
    }

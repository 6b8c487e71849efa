"""Reference inputs for 04_generation."""
import torch

from grader.author.cases import case


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def cvae_weights(latent_dim, hidden_dim, num_classes, seed):
    g = _gen(seed)

    def w(*shape, scale):
        return scale * torch.randn(*shape, generator=g)

    return {
        "encoder.0.weight": w(hidden_dim, 784 + num_classes, scale=0.1), "encoder.0.bias": w(hidden_dim, scale=0.1),
        "mu_head.weight": w(latent_dim, hidden_dim, scale=0.3), "mu_head.bias": w(latent_dim, scale=0.1),
        "logvar_head.weight": w(latent_dim, hidden_dim, scale=0.3), "logvar_head.bias": w(latent_dim, scale=0.3),
        "decoder.0.weight": w(hidden_dim, latent_dim + num_classes, scale=0.5),
        "decoder.0.bias": w(hidden_dim, scale=0.1),
        "decoder.2.weight": w(784, hidden_dim, scale=0.3), "decoder.2.bias": w(784, scale=0.5) - 1.0,
    }


def prior_case(label, latent_dim, seed, n):
    c = case(label, latent_dim, seed, n)
    # absolute floors (grader/author/tolerances.py): the mean and std of n standard-normal draws are Monte Carlo
    # statistics, 5 standard errors
    c["floors"] = {1: 5 / n**0.5, 2: 5 / (2 * n) ** 0.5}
    c["expected"] = (torch.tensor(1.0, dtype=torch.float64), torch.zeros(latent_dim, dtype=torch.float64),
                     torch.ones(latent_dim, dtype=torch.float64))  # oracle: N(0, I) moments
    return c


def cvae_case(label, latent_dim, hidden_dim, batch, seed):
    g = _gen(seed)
    x = torch.bernoulli(torch.full((batch, 784), 0.25), generator=g)
    y = torch.nn.functional.one_hot(torch.randint(0, 10, (batch,), generator=g), 10).float()
    z = torch.randn(batch, latent_dim, generator=g)
    return case(label, latent_dim, hidden_dim, cvae_weights(latent_dim, hidden_dim, 10, seed), x, y, z)


def _z(seed, d, dtype=torch.float32):
    return torch.randn(d, generator=_gen(seed), dtype=torch.float64).to(dtype)


def public():
    return {
        "sample_prior": {"kind": "prior", "cases": [prior_case("latent 3, n = 4000", 3, 0, 4000)]},
        "interpolate": {"kind": "call", "cases": [
            case("latent 3, 5 steps", _z(1, 3), _z(2, 3), 5),
            case("float64, latent 2, 3 steps", _z(3, 2, torch.float64), _z(4, 2, torch.float64), 3),
        ]},
        "latent_grid": {"kind": "call", "cases": [case("n = 4", 4), case("n = 1 (a single point)", 1)]},
        "CVAE": {"kind": "cvae", "cases": [cvae_case("latent 3, hidden 16, batch 4", 3, 16, 4, seed=3)]},
    }


def hidden():
    return {
        "sample_prior": {"kind": "prior", "cases": [prior_case("latent 6, n = 3001", 6, 7, 3001)]},
        "interpolate": {"kind": "call", "cases": [
            case("latent 7, 11 steps", _z(11, 7), _z(12, 7), 11),
            case("latent 2, 2 steps (just the endpoints)", _z(13, 2), _z(14, 2), 2),
            case("float64, 6 steps", _z(15, 4, torch.float64), _z(16, 4, torch.float64), 6),
        ]},
        "latent_grid": {"kind": "call", "cases": [case("n = 7", 7), case("n = 2 (the two tails only)", 2)]},
        "CVAE": {"kind": "cvae", "cases": [cvae_case("latent 5, hidden 20, batch 9", 5, 20, 9, seed=13)]},
    }

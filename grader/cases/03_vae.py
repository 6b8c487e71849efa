"""Reference inputs for 03_vae: fixed weights for the VAE's fixed layers,
fixed batches, and fixed linear models (vaelab.fixtures) for iwae_bound and
train_step. Stochastic outputs get tolerances from the reference's own spread."""
import torch

from grader.cases import case


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def vae_weights(latent_dim, hidden_dim, seed):
    """A state_dict for the VAE's layers (names fixed by the notebook's __init__)."""
    g = _gen(seed)

    def w(*shape, scale):
        return scale * torch.randn(*shape, generator=g)

    return {
        "encoder.0.weight": w(hidden_dim, 784, scale=0.05), "encoder.0.bias": w(hidden_dim, scale=0.1),
        "mu_head.weight": w(latent_dim, hidden_dim, scale=0.3), "mu_head.bias": w(latent_dim, scale=0.1),
        "logvar_head.weight": w(latent_dim, hidden_dim, scale=0.3), "logvar_head.bias": w(latent_dim, scale=0.3),
        "decoder.0.weight": w(hidden_dim, latent_dim, scale=0.5), "decoder.0.bias": w(hidden_dim, scale=0.1),
        "decoder.2.weight": w(784, hidden_dim, scale=0.3), "decoder.2.bias": w(784, scale=0.5) - 1.0,
    }


def binary_images(n, seed, p=0.25):
    return torch.bernoulli(torch.full((n, 784), p), generator=_gen(seed))


def vae_case(label, latent_dim, hidden_dim, batch, seed, repeats=200):
    x = binary_images(batch, seed)
    z = torch.randn(batch, latent_dim, generator=_gen(seed + 1))
    n = batch * latent_dim * repeats  # noise draws behind the mean/std statistics
    atol = [1e-5, 1e-5, 1e-4, 1e-5, 1e-4, 5 / n**0.5, 5 / (2 * n) ** 0.5, 0.5]
    return case(label, latent_dim, hidden_dim, vae_weights(latent_dim, hidden_dim, seed), x, z, repeats,
                rtol=1e-4, atol=atol)


def elbo_case(label, batch, latent, seed, dtype=torch.float32):
    g = _gen(seed)
    x = torch.bernoulli(torch.full((batch, 784), 0.3), generator=g).to(dtype)
    x_logits = (3 * torch.randn(batch, 784, generator=g)).to(dtype)
    mu = torch.randn(batch, latent, generator=g).to(dtype)
    logvar = (0.7 * torch.randn(batch, latent, generator=g)).to(dtype)
    tol = dict(rtol=1e-5, atol=1e-3) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-8)
    return case(label, x, x_logits, mu, logvar, **tol)


def public():
    return {
        "VAE": {"kind": "vae", "cases": [vae_case("latent 3, hidden 16, batch 4", 3, 16, 4, seed=1)]},
        "negative_elbo": {"kind": "call", "cases": [elbo_case("batch 4, latent 3", 4, 3, seed=2)]},
        "train_step": {"kind": "train_step", "stochastic": True, "cases": [
            case("linear VAE, latent 3, batch 64, 40 steps", 3, 0, binary_images(64, 3), 40, 1e-2, rtol=0.0)]},
        "iwae_bound": {"kind": "iwae", "stochastic": True, "cases": [
            case("batch 8, k = 1 (the ELBO)", 4, 0, binary_images(8, 4), 1, rtol=0.0),
            case("batch 8, k = 100", 4, 0, binary_images(8, 4), 100, rtol=0.0),
            case("batch 4, k = 1000", 4, 0, binary_images(4, 5), 1000, rtol=0.0),
        ]},
    }


def hidden():
    return {
        "VAE": {"kind": "vae", "cases": [
            vae_case("latent 5, hidden 24, batch 7", 5, 24, 7, seed=11),
            vae_case("latent 2, hidden 9, batch 13", 2, 9, 13, seed=12),
        ]},
        "negative_elbo": {"kind": "call", "cases": [
            elbo_case("batch 97, latent 7", 97, 7, seed=13),
            elbo_case("batch 5, latent 2, float64", 5, 2, seed=14, dtype=torch.float64),
        ]},
        "train_step": {"kind": "train_step", "stochastic": True, "cases": [
            case("linear VAE, latent 6, batch 97, 40 steps", 6, 21, binary_images(97, 15, p=0.15), 40, 1e-2,
                 rtol=0.0)]},
        "iwae_bound": {"kind": "iwae", "stochastic": True, "cases": [
            case("batch 97, k = 7", 5, 31, binary_images(97, 16), 7, rtol=0.0),
            case("batch 10, k = 1000, latent 2", 2, 32, binary_images(10, 17, p=0.1), 1000, rtol=0.0),
        ]},
    }

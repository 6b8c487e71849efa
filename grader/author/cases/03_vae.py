"""Reference inputs for 03_vae: fixed weights for the VAE's fixed layers,
fixed batches, and fixed linear models (vaelab.fixtures) for iwae_bound and
train_step. Tolerances are derived from the correct variants and the mutants
(grader/author/tolerances.py); iwae_bound gets its noise from the case, so it is
compared as tightly as a deterministic function."""
import torch

from grader.author.cases import case


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
    c = case(label, latent_dim, hidden_dim, vae_weights(latent_dim, hidden_dim, seed), x, z, repeats)
    # absolute floors (grader/author/tolerances.py): the forward-vs-encode and forward-vs-decode gaps are float32
    # round-off reported as float64 scalars; the noise's mean and std are Monte Carlo statistics of n draws
    c["floors"] = {3: 1e-4, 4: 1e-4, 5: 5 / n**0.5, 6: 5 / (2 * n) ** 0.5}
    return c


def elbo_case(label, batch, latent, seed, dtype=torch.float32, logit_scale=3.0):
    g = _gen(seed)
    x = torch.bernoulli(torch.full((batch, 784), 0.3), generator=g).to(dtype)
    x_logits = (logit_scale * torch.randn(batch, 784, generator=g)).to(dtype)
    mu = torch.randn(batch, latent, generator=g).to(dtype)
    logvar = (0.7 * torch.randn(batch, latent, generator=g)).to(dtype)
    return case(label, x, x_logits, mu, logvar)


def iwae_case(label, latent_dim, model_seed, x, k, seed):
    """iwae_bound on a fixed linear VAE with supplied noise eps ~ N(0, I) of shape (k, batch, latent)."""
    eps = torch.randn(k, x.shape[0], latent_dim, generator=_gen(seed))
    return case(label, latent_dim, model_seed, x, k, eps)


def public():
    return {
        "predict_iwae_vs_k": {"kind": "choice", "cases": [case("your prediction", ["a", "b", "c", "d"])]},
        "predict_latent_size": {"kind": "choice", "cases": [case("your prediction", ["a", "b", "c", "d"])]},
        "VAE": {"kind": "vae", "cases": [vae_case("latent 3, hidden 16, batch 4", 3, 16, 4, seed=1)]},
        "negative_elbo": {"kind": "bernoulli_loss", "cases": [
            elbo_case("batch 4, latent 3", 4, 3, seed=2, logit_scale=2.0),
            elbo_case("batch 3, latent 6, float64", 3, 6, seed=6, dtype=torch.float64, logit_scale=1.5),
        ]},
        "train_step": {"kind": "train_step", "cases": [
            case("linear VAE, latent 3, batch 64, 40 steps", 3, 0, binary_images(64, 3), 40, 1e-2)]},
        "iwae_bound": {"kind": "iwae", "cases": [
            iwae_case("batch 8, k = 1 (the ELBO)", 4, 0, binary_images(8, 4), 1, seed=40),
            iwae_case("batch 8, k = 100", 4, 0, binary_images(8, 4), 100, seed=41),
            iwae_case("batch 4, k = 1000", 4, 0, binary_images(4, 5), 1000, seed=42),
        ]},
    }


def hidden():
    return {
        "predict_iwae_vs_k": {"kind": "choice", "cases": [case("your prediction", ["a", "b", "c", "d"])]},
        "predict_latent_size": {"kind": "choice", "cases": [case("your prediction", ["a", "b", "c", "d"])]},
        "VAE": {"kind": "vae", "cases": [
            vae_case("latent 5, hidden 24, batch 7", 5, 24, 7, seed=11),
            vae_case("latent 2, hidden 9, batch 13", 2, 9, 13, seed=20),
        ]},
        "negative_elbo": {"kind": "bernoulli_loss", "cases": [
            elbo_case("batch 97, latent 7", 97, 7, seed=13),
            # moderate logits keep a correct 1e-6 stabiliser far inside the tolerance, and 8 latents
            # put the KL's usual mistakes far outside it
            elbo_case("batch 5, latent 8, float64", 5, 8, seed=14, dtype=torch.float64, logit_scale=1.5),
        ]},
        "train_step": {"kind": "train_step", "cases": [
            case("linear VAE, latent 6, batch 97, 40 steps", 6, 21, binary_images(97, 15, p=0.15), 40, 1e-2)]},
        "iwae_bound": {"kind": "iwae", "cases": [
            iwae_case("batch 97, k = 7", 5, 31, binary_images(97, 16), 7, seed=43),
            iwae_case("batch 10, k = 1000, latent 2", 2, 32, binary_images(10, 17, p=0.1), 1000, seed=44),
            iwae_case("batch 3, k = 250, chunks that do not divide k", 3, 33, binary_images(3, 18), 250, seed=45),
        ]},
    }

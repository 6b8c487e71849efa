"""Reference inputs for 05_likelihoods (work in progress: issue 15).

naive_log_px draws its latents with the generator it is given, so with the
case's seed the answer is deterministic and is compared as tightly as any
function; one case uses a decoder that ignores z, where the estimate must
equal log p(x | ·) exactly, whatever S.
"""
import torch

from grader.author.cases import case


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _images(n, d, seed, p=0.3, dtype=torch.float32):
    return torch.bernoulli(torch.full((n, d), p), generator=_gen(seed)).to(dtype)


def gaussian_case(label, batch, d, seed, logvar_shape, dtype=torch.float32, logvar_centre=-1.5):
    g = _gen(seed)
    x = torch.rand(batch, d, generator=g, dtype=torch.float64).to(dtype)
    mean = torch.rand(batch, d, generator=g, dtype=torch.float64).to(dtype)
    logvar = (0.8 * torch.randn(tuple(logvar_shape), generator=g, dtype=torch.float64) + logvar_centre).to(dtype)
    return case(label, x, mean, logvar)


def elbo_case(label, batch, latent, seed, beta, dtype=torch.float32):
    g = _gen(seed)
    x = torch.bernoulli(torch.full((batch, 784), 0.3), generator=g).to(dtype)
    x_logits = (2.0 * torch.randn(batch, 784, generator=g)).to(dtype)
    mu = torch.randn(batch, latent, generator=g).to(dtype)
    logvar = (0.7 * torch.randn(batch, latent, generator=g)).to(dtype)
    return case(label, x, x_logits, mu, logvar, beta)


def naive_case(label, latent_dim, model_seed, x, n_samples, seed, constant=False):
    """naive_log_px on a fixed linear decoder (vaelab.fixtures.LinearVAE), or on one that ignores z."""
    return case(label, latent_dim, model_seed, x, n_samples, seed, constant)


def warmup_case(label, pairs):
    return case(label, [tuple(p) for p in pairs])


def active_case(label, n, variances, seed, threshold=None, dtype=torch.float32):
    """Posterior means (n, d) whose columns have exactly these population variances (over dim 0),
    each around its own offset, so a dimension can sit just below the threshold."""
    g = _gen(seed)
    noise = torch.randn(n, len(variances), generator=g, dtype=torch.float64)
    noise = (noise - noise.mean(0)) / noise.std(0, unbiased=False)  # population mean 0, variance 1
    offsets = 2.0 * torch.randn(len(variances), generator=g, dtype=torch.float64)
    mu = offsets + noise * torch.tensor(variances, dtype=torch.float64).sqrt()
    args = (mu.to(dtype),)
    return case(label, *args) if threshold is None else case(label, *args, threshold=threshold)


def public():
    return {
        "predict_pixel_variance": {"kind": "choice", "cases": [case("your prediction", ["a", "b", "c", "d"])]},
        "predict_naive_samples": {"kind": "choice", "cases": [case("your prediction", ["a", "b", "c", "d"])]},
        "predict_beta_collapse": {"kind": "choice", "cases": [case("your prediction", ["a", "b", "c", "d"])]},
        "gaussian_log_likelihood": {"kind": "call", "cases": [
            gaussian_case("batch 4, 784 pixels, one variance per pixel", 4, 784, 1, (784,)),
            gaussian_case("batch 3, 10 pixels, a variance per image and pixel", 3, 10, 2, (3, 10)),
            gaussian_case("batch 2, 6 pixels, one variance for all (a 0-d logvar), float64", 2, 6, 3, (),
                          dtype=torch.float64),
            gaussian_case("batch 3, 8 pixels, one wide variance per pixel (logvar > 0)", 3, 8, 4, (8,),
                          logvar_centre=2.5),
        ]},
        "naive_log_px": {"kind": "naive", "cases": [
            naive_case("decoder that ignores z, batch 3, S = 10", 2, 0, _images(3, 784, 3), 10, 4, constant=True),
            naive_case("linear decoder, latent 2, batch 4, S = 2,000", 2, 0, _images(4, 784, 5), 2000, 6),
        ]},
        "beta_negative_elbo": {"kind": "beta_bernoulli_loss", "cases": [
            elbo_case("batch 4, latent 3, beta = 4", 4, 3, 7, 4.0),
            elbo_case("batch 2, latent 5, beta = 0.1", 2, 5, 8, 0.1),
            elbo_case("batch 3, latent 4, beta = 0, float64", 3, 4, 9, 0.0, dtype=torch.float64),
        ]},
        "kl_warmup": {"kind": "warmup", "cases": [
            warmup_case("warmup_steps = 100", [(0, 100), (1, 100), (50, 100), (99, 100), (100, 100), (250, 100)]),
            warmup_case("no warm-up: warmup_steps = 0", [(0, 0), (1, 0), (40, 0)]),
        ]},
        "active_units": {"kind": "active", "cases": [
            # 0.00995 counts as active only with the unbiased (n - 1) variance; 0.0101 with either
            active_case("30 codes, 7 dimensions", 30, [1.0, 0.25, 0.00995, 0.0101, 0.3, 0.0001, 0.0], 9),
        ]},
    }


def hidden():
    return {
        "predict_pixel_variance": {"kind": "choice", "cases": [case("your prediction", ["a", "b", "c", "d"])]},
        "predict_naive_samples": {"kind": "choice", "cases": [case("your prediction", ["a", "b", "c", "d"])]},
        "predict_beta_collapse": {"kind": "choice", "cases": [case("your prediction", ["a", "b", "c", "d"])]},
        "gaussian_log_likelihood": {"kind": "call", "cases": [
            gaussian_case("batch 97, 784 pixels, one variance per pixel", 97, 784, 11, (784,)),
            gaussian_case("batch 5, 50 pixels, one variance for all, float64", 5, 50, 12, (), dtype=torch.float64),
            gaussian_case("batch 6, 20 pixels, one wide variance per pixel (logvar > 0)", 6, 20, 17, (20,),
                          logvar_centre=2.5),
        ]},
        "naive_log_px": {"kind": "naive", "cases": [
            naive_case("decoder that ignores z, batch 7, S = 20,000", 3, 21, _images(7, 784, 13, p=0.2), 20_000, 14,
                       constant=True),
            naive_case("linear decoder, latent 3, batch 5, S = 20,000", 3, 22, _images(5, 784, 15), 20_000, 16),
        ]},
        "beta_negative_elbo": {"kind": "beta_bernoulli_loss", "cases": [
            elbo_case("batch 97, latent 7, beta = 2.5", 97, 7, 17, 2.5),
            elbo_case("batch 5, latent 8, beta = 0, float64", 5, 8, 18, 0.0, dtype=torch.float64),
        ]},
        "kl_warmup": {"kind": "warmup", "cases": [
            warmup_case("warmup_steps = 7, and none at all", [(0, 7), (3, 7), (6, 7), (7, 7), (8, 7), (0, 0), (5, 0)]),
        ]},
        "active_units": {"kind": "active", "cases": [
            active_case("40 codes, 10 dimensions, threshold 0.05", 40,
                        [2.0, 0.0495, 0.051, 0.1, 0.0, 0.5, 0.02, 1.0, 0.0498, 0.0], 19, threshold=0.05),
            active_case("500 codes, 40 dimensions (ZhuSuan's latent size)", 500,
                        [1.0] * 9 + [0.05] * 11 + [0.001] * 20, 20),
        ]},
    }

"""Mistakes harvested for the catalogue, written as mutants (same signature as
the TODO). Each was developed here, then copied into the mutants catalogue
(grader/author/mutants/<A>.py, same name and hint); tests/test_harvest.py adds
a candidate to the loaded cases, the way ``make references`` would, only while
the stored references do not hold it yet."""
from dataclasses import dataclass
from typing import Callable


@dataclass
class Candidate:
    target: str
    name: str
    hint: str
    function: Callable


CANDIDATES: list = []


def for_target(target: str) -> list:
    return [c for c in CANDIDATES if c.target == target]


def candidate(target: str, name: str, hint: str):
    def register(fn):
        CANDIDATES.append(Candidate(target, name, hint, fn))
        return fn
    return register


import math  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


# --------------------------------------------------------- 01_elbo: kl_standard_normal
@candidate("kl_standard_normal", "std_for_variance",
           hint="You used σ where σ² belongs: with σ = exp(½·logvar), the KL has σ² = exp(logvar), not σ.")
def kl_standard_normal(mu, logvar):
    std = torch.exp(0.5 * logvar)
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - std, dim=-1)


@candidate("kl_standard_normal", "log_std_for_log_variance",
           hint="You used log σ where log σ² belongs: the KL has log σ² = logvar, which is 2·log σ.")
def kl_standard_normal(mu, logvar):
    std = torch.exp(0.5 * logvar)
    return -0.5 * torch.sum(1 + torch.log(std) - mu.pow(2) - std.pow(2), dim=-1)


@candidate("kl_standard_normal", "constant_minus_one",
           hint="Your KL is too small by latent_dim/2 for every example: in ½·Σ(μ² + σ² − log σ² − 1) the constant is "
                "−½ per dimension, not −1.")
def kl_standard_normal(mu, logvar):
    return torch.sum(0.5 * (mu.pow(2) + logvar.exp() - logvar) - 1.0, dim=-1)


# ------------------------------------------------------------------ 03_vae: negative_elbo
@candidate("negative_elbo", "kl_summed_over_batch",
           hint="Your KL term is summed over the batch while the reconstruction is averaged: average the KL over the "
                "batch too (sum it only over latents).")
def negative_elbo(x, x_logits, mu, logvar):
    rec = F.binary_cross_entropy_with_logits(x_logits, x, reduction="none").sum(dim=1)
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return rec.mean() + kl


@candidate("negative_elbo", "kl_mean_over_latent",
           hint="Your KL term is averaged over latent dimensions: the KL of independent dimensions is their sum, so sum "
                "it over the latents.")
def negative_elbo(x, x_logits, mu, logvar):
    rec = F.binary_cross_entropy_with_logits(x_logits, x, reduction="none").sum(dim=1)
    kl = -0.5 * torch.mean(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)
    return (rec + kl).mean()


# ------------------------------------------------ 05_likelihoods: gaussian_log_likelihood
@candidate("gaussian_log_likelihood", "log_two_pi_once",
           hint="You added −½·log(2π) once per image instead of once per pixel: the normaliser belongs inside the sum "
                "over pixels.")
def gaussian_log_likelihood(x, mean, logvar):
    return -0.5 * math.log(2 * math.pi) - 0.5 * (logvar + (x - mean) ** 2 / torch.exp(logvar)).sum(-1)


@candidate("gaussian_log_likelihood", "std_as_variance",
           hint="You divided the squared error by σ = exp(½·logvar) where the variance σ² = exp(logvar) belongs.")
def gaussian_log_likelihood(x, mean, logvar):
    return -0.5 * (math.log(2 * math.pi) + logvar + (x - mean) ** 2 / torch.exp(0.5 * logvar)).sum(-1)


@candidate("gaussian_log_likelihood", "variance_in_normaliser",
           hint="Your normaliser adds the variance exp(logvar) where the log of the variance belongs: "
                "log σ² is logvar itself.")
def gaussian_log_likelihood(x, mean, logvar):
    return -0.5 * (math.log(2 * math.pi) + torch.exp(logvar) + (x - mean) ** 2 / torch.exp(logvar)).sum(-1)


# ------------------------------------------------------ 05_likelihoods: beta_negative_elbo
@candidate("beta_negative_elbo", "kl_summed_over_batch",
           hint="Your β·KL term is summed over the batch while the reconstruction is averaged: average both over the "
                "batch.")
def beta_negative_elbo(x, x_logits, mu, logvar, beta):
    rec = F.binary_cross_entropy_with_logits(x_logits, x, reduction="none").sum(-1)
    kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum()
    return rec.mean() + beta * kl

"""Misconceptions for 01_elbo. Each definition uses the student's function name."""
import sympy as sp
import torch

from grader.author.mutants import mutant


# --------------------------------------------------------------- kl_gaussian_1d
@mutant("kl_gaussian_1d", "missing_half",
        hint="Your KL is exactly twice the expected value: check the factor ½ in front of the quadratic term and the −½.")
def kl_gaussian_1d(mu_q, sigma_q, mu_p, sigma_p):
    return 2 * sp.log(sigma_p / sigma_q) + (sigma_q**2 + (mu_q - mu_p) ** 2) / sigma_p**2 - 1


@mutant("kl_gaussian_1d", "reversed_kl",
        hint="You computed KL(p ‖ q) instead of KL(q ‖ p): the KL is not symmetric, so check which Gaussian you average over.")
def kl_gaussian_1d(mu_q, sigma_q, mu_p, sigma_p):
    return sp.log(sigma_q / sigma_p) + (sigma_p**2 + (mu_p - mu_q) ** 2) / (2 * sigma_q**2) - sp.Rational(1, 2)


@mutant("kl_gaussian_1d", "std_for_variance",
        hint="You used σ where σ² belongs: sigma_q and sigma_p are standard deviations, so E[(z−μ)²] = σ², not σ.")
def kl_gaussian_1d(mu_q, sigma_q, mu_p, sigma_p):
    return sp.log(sigma_p / sigma_q) + (sigma_q + (mu_q - mu_p) ** 2) / (2 * sigma_p) - sp.Rational(1, 2)


# ----------------------------------------------------------- kl_standard_normal
@mutant("kl_standard_normal", "missing_half",
        hint="Your KL is exactly twice the expected value: check the factor ½.")
def kl_standard_normal(mu, logvar):
    return -torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=-1)


@mutant("kl_standard_normal", "missing_one",
        hint="Your KL is off by latent_dim/2 for every example: the sum is over (1 + log σ² − μ² − σ²), "
             "and the 1 is missing.")
def kl_standard_normal(mu, logvar):
    return -0.5 * torch.sum(logvar - mu.pow(2) - logvar.exp(), dim=-1)


@mutant("kl_standard_normal", "sign_error",
        hint="Your KL has the wrong sign: KL is never negative, so the sum of (1 + log σ² − μ² − σ²) needs a −½ in front.")
def kl_standard_normal(mu, logvar):
    return 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=-1)


@mutant("kl_standard_normal", "logvar_as_logstd",
        hint="You treated logvar as log σ (so σ² = exp(2·logvar)); logvar is log σ², so σ² = exp(logvar).")
def kl_standard_normal(mu, logvar):
    return -0.5 * torch.sum(1 + 2 * logvar - mu.pow(2) - (2 * logvar).exp(), dim=-1)


@mutant("kl_standard_normal", "logvar_as_std",
        hint="You used logvar as if it were σ itself; it is log σ², so σ² = exp(logvar) and log σ² = logvar.")
def kl_standard_normal(mu, logvar):
    return -0.5 * torch.sum(1 + torch.log(logvar.pow(2)) - mu.pow(2) - logvar.pow(2), dim=-1)


@mutant("kl_standard_normal", "mean_over_latent",
        hint="You averaged over latent dimensions; the KL of independent dimensions is their sum.")
def kl_standard_normal(mu, logvar):
    return -0.5 * torch.mean(1 + logvar - mu.pow(2) - logvar.exp(), dim=-1)


@mutant("kl_standard_normal", "summed_over_batch",
        hint="You returned one number for the whole batch; return one KL per example, shape (batch,).")
def kl_standard_normal(mu, logvar):
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())


# --------------------------------------------------------- elbo_linear_gaussian
@mutant("elbo_linear_gaussian", "plug_in_mean",
        hint="You plugged z = m into log p(x|z); the expectation over q adds w²·v to the squared residual.")
def elbo_linear_gaussian(x, w, b, sigma2, m, v):
    x, w, b, sigma2, m, v = map(sp.sympify, (x, w, b, sigma2, m, v))
    log_lik = -sp.log(2 * sp.pi * sigma2) / 2 - (x - w * m - b) ** 2 / (2 * sigma2)
    log_prior = -sp.log(2 * sp.pi) / 2 - (m**2 + v) / 2
    return log_lik + log_prior + sp.log(2 * sp.pi * sp.E * v) / 2


@mutant("elbo_linear_gaussian", "entropy_sign",
        hint="The ELBO adds the entropy of q (−E_q[log q]); your entropy term has the wrong sign.")
def elbo_linear_gaussian(x, w, b, sigma2, m, v):
    x, w, b, sigma2, m, v = map(sp.sympify, (x, w, b, sigma2, m, v))
    log_lik = -sp.log(2 * sp.pi * sigma2) / 2 - ((x - w * m - b) ** 2 + w**2 * v) / (2 * sigma2)
    log_prior = -sp.log(2 * sp.pi) / 2 - (m**2 + v) / 2
    return log_lik + log_prior - sp.log(2 * sp.pi * sp.E * v) / 2


@mutant("elbo_linear_gaussian", "v_as_std",
        hint="v is a variance, not a standard deviation: E_q[z²] = m² + v and the entropy is ½·log(2πe·v).")
def elbo_linear_gaussian(x, w, b, sigma2, m, v):
    x, w, b, sigma2, m, v = map(sp.sympify, (x, w, b, sigma2, m, v))
    log_lik = -sp.log(2 * sp.pi * sigma2) / 2 - ((x - w * m - b) ** 2 + w**2 * v**2) / (2 * sigma2)
    log_prior = -sp.log(2 * sp.pi) / 2 - (m**2 + v**2) / 2
    return log_lik + log_prior + sp.log(2 * sp.pi * sp.E * v**2) / 2


# ------------------------------------ harvested (grader/author/mutants/SIGHTINGS.md)
@mutant("kl_standard_normal", "std_for_variance",
        hint="You used σ where σ² belongs: with σ = exp(½·logvar), the KL has σ² = exp(logvar), not σ.")
def kl_standard_normal(mu, logvar):
    std = torch.exp(0.5 * logvar)
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - std, dim=-1)


@mutant("kl_standard_normal", "log_std_for_log_variance",
        hint="You used log σ where log σ² belongs: the KL has log σ² = logvar, which is 2·log σ.")
def kl_standard_normal(mu, logvar):
    std = torch.exp(0.5 * logvar)
    return -0.5 * torch.sum(1 + torch.log(std) - mu.pow(2) - std.pow(2), dim=-1)


@mutant("kl_standard_normal", "constant_minus_one",
        hint="Your KL is too small by latent_dim/2 for every example: in ½·Σ(μ² + σ² − log σ² − 1) the constant is "
             "−½ per dimension, not −1.")
def kl_standard_normal(mu, logvar):
    return torch.sum(0.5 * (mu.pow(2) + logvar.exp() - logvar) - 1.0, dim=-1)


@mutant("elbo_linear_gaussian", "no_entropy",
        hint="Your ELBO lacks the entropy of q, +½·log(2πe·v): the ELBO is E_q[log p(x, z)] − E_q[log q(z)].")
def elbo_linear_gaussian(x, w, b, sigma2, m, v):
    x, w, b, sigma2, m, v = map(sp.sympify, (x, w, b, sigma2, m, v))
    log_lik = -sp.log(2 * sp.pi * sigma2) / 2 - ((x - w * m - b) ** 2 + w**2 * v) / (2 * sigma2)
    log_prior = -sp.log(2 * sp.pi) / 2 - (m**2 + v) / 2
    return log_lik + log_prior

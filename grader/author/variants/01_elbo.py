"""Correct variants for 01_elbo. Each definition uses the student's function name."""
import sympy as sp
import torch

from grader.author.mutants import source_variant, variant


# --------------------------------------------------------------- kl_gaussian_1d
@variant("kl_gaussian_1d", "log_difference", why="log(σ_p/σ_q) written as log σ_p − log σ_q.")
def kl_gaussian_1d(mu_q, sigma_q, mu_p, sigma_p):
    return sp.log(sigma_p) - sp.log(sigma_q) + (sigma_q**2 + (mu_q - mu_p) ** 2) / (2 * sigma_p**2) - sp.S.Half


@variant("kl_gaussian_1d", "variance_ratio", why="Written with variances: ½(log(σ_p²/σ_q²) + σ_q²/σ_p² + (μ_q−μ_p)²/σ_p² − 1).")
def kl_gaussian_1d(mu_q, sigma_q, mu_p, sigma_p):
    s2q, s2p = sp.sympify(sigma_q) ** 2, sp.sympify(sigma_p) ** 2
    return (sp.log(s2p / s2q) + s2q / s2p + (sp.sympify(mu_q) - mu_p) ** 2 / s2p - 1) / 2


@variant("kl_gaussian_1d", "cross_entropy_minus_entropy",
         why="The KL as cross-entropy minus entropy, each Gaussian term written out.")
def kl_gaussian_1d(mu_q, sigma_q, mu_p, sigma_p):
    mu_q, sigma_q, mu_p, sigma_p = map(sp.sympify, (mu_q, sigma_q, mu_p, sigma_p))
    cross = sp.log(2 * sp.pi * sigma_p**2) / 2 + (sigma_q**2 + (mu_q - mu_p) ** 2) / (2 * sigma_p**2)
    entropy = sp.log(2 * sp.pi * sp.E * sigma_q**2) / 2
    return cross - entropy


# ----------------------------------------------------------- kl_standard_normal
@variant("kl_standard_normal", "torch_distributions",
         why="torch.distributions' closed-form KL between Normals, summed over the latent dimension.")
def kl_standard_normal(mu, logvar):
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    return torch.distributions.kl_divergence(q, p).sum(dim=-1)


@variant("kl_standard_normal", "another_summation_order",
         why="Each term summed separately, then combined (another summation order).")
def kl_standard_normal(mu, logvar):
    d = mu.shape[-1]
    return 0.5 * (mu.pow(2).sum(-1) + logvar.exp().sum(-1) - logvar.sum(-1) - d)


@variant("kl_standard_normal", "via_std", why="Written with σ = exp(½ logvar): ½Σ(μ² + σ² − 2 log σ − 1).")
def kl_standard_normal(mu, logvar):
    std = torch.exp(0.5 * logvar)
    return 0.5 * torch.sum(mu**2 + std**2 - 2 * torch.log(std) - 1, dim=-1)


@variant("kl_standard_normal", "float32_arithmetic", why="Computed in float32 and cast back to the input dtype.")
def kl_standard_normal(mu, logvar):
    m, lv = mu.float(), logvar.float()
    return (-0.5 * torch.sum(1 + lv - m * m - torch.exp(lv), dim=-1)).to(mu.dtype)


for _eps in ("1e-8", "1e-7", "1e-6"):
    source_variant("kl_standard_normal", f"stabiliser_{_eps}", f"""
def kl_standard_normal(mu, logvar):
    var = logvar.exp()
    return -0.5 * torch.sum(1 + torch.log(var + {_eps}) - mu.pow(2) - var, dim=-1)
""", why=f"A stabiliser {_eps} inside the log of the variance.")


# --------------------------------------------------------- elbo_linear_gaussian
@variant("elbo_linear_gaussian", "log_joint_minus_log_q",
         why="E_q[log p(x|z) + log p(z) − log q(z)] with each Gaussian expectation expanded by hand.")
def elbo_linear_gaussian(x, w, b, sigma2, m, v):
    x, w, b, sigma2, m, v = map(sp.sympify, (x, w, b, sigma2, m, v))
    e_log_lik = -sp.log(2 * sp.pi) / 2 - sp.log(sigma2) / 2 - ((x - b) ** 2 - 2 * (x - b) * w * m + w**2 * (m**2 + v)) / (2 * sigma2)
    e_log_prior = -sp.log(2 * sp.pi) / 2 - (m**2 + v) / 2
    e_log_q = -sp.log(2 * sp.pi * v) / 2 - sp.S.Half
    return e_log_lik + e_log_prior - e_log_q


@variant("elbo_linear_gaussian", "expected_log_lik_minus_kl",
         why="Expected log-likelihood minus KL(q ‖ p(z)), the form a VAE uses.")
def elbo_linear_gaussian(x, w, b, sigma2, m, v):
    x, w, b, sigma2, m, v = map(sp.sympify, (x, w, b, sigma2, m, v))
    e_log_lik = -sp.log(2 * sp.pi * sigma2) / 2 - ((x - w * m - b) ** 2 + w**2 * v) / (2 * sigma2)
    kl = (v + m**2 - 1 - sp.log(v)) / 2
    return e_log_lik - kl

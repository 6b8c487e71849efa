"""Correct variants for 05_likelihoods (work in progress: issue 15). Each definition uses the student's name."""
import math

import torch
import torch.nn.functional as F

from grader.author.mutants import variant


# ------------------------------------------------------ gaussian_log_likelihood
@variant("gaussian_log_likelihood", "torch_distributions",
         why="torch.distributions.Normal with σ = exp(½·logvar), log_prob summed over pixels.")
def gaussian_log_likelihood(x, mean, logvar):
    return torch.distributions.Normal(mean, torch.exp(0.5 * logvar)).log_prob(x).sum(-1)


@variant("gaussian_log_likelihood", "gaussian_nll_loss",
         why="PyTorch's own Gaussian NLL with the constant included (full=True), negated.")
def gaussian_log_likelihood(x, mean, logvar):
    var = torch.exp(logvar).expand_as(x)
    return -F.gaussian_nll_loss(mean, x, var, full=True, eps=0.0, reduction="none").sum(-1)


@variant("gaussian_log_likelihood", "precision_form",
         why="Written with the precision exp(−logvar) and log(2πσ²) in one term.")
def gaussian_log_likelihood(x, mean, logvar):
    return -0.5 * (torch.log(2 * math.pi * torch.exp(logvar)) + (x - mean).pow(2) * torch.exp(-logvar)).sum(-1)


# ----------------------------------------------------------------- naive_log_px
@variant("naive_log_px", "bernoulli_log_prob",
         why="torch.distributions.Bernoulli on broadcast shapes (batch, S, pixels), in chunks of samples.")
def naive_log_px(decoder, x, latent_dim, n_samples, generator=None):
    z = torch.randn(n_samples, latent_dim, generator=generator, dtype=x.dtype)
    logits = decoder(z)
    parts = [torch.distributions.Bernoulli(logits=logits[i:i + 500]).log_prob(x[:, None, :]).sum(-1)
             for i in range(0, n_samples, 500)]
    return torch.logsumexp(torch.cat(parts, 1), 1) - math.log(n_samples)


@variant("naive_log_px", "max_subtracted",
         why="Log-mean-exp with the maximum subtracted by hand, and BCE-with-logits for log p(x | z).")
def naive_log_px(decoder, x, latent_dim, n_samples, generator=None):
    z = torch.randn(n_samples, latent_dim, generator=generator, dtype=x.dtype)
    logits = decoder(z)
    log_px_z = torch.stack([-F.binary_cross_entropy_with_logits(logits, xi.expand_as(logits), reduction="none").sum(-1)
                            for xi in x])
    top = log_px_z.max(1, keepdim=True).values
    return (top + torch.log(torch.exp(log_px_z - top).mean(1, keepdim=True))).squeeze(1)


# ------------------------------------------------------------ beta_negative_elbo
@variant("beta_negative_elbo", "torch_distributions",
         why="Bernoulli log-likelihood and the KL from torch.distributions.")
def beta_negative_elbo(x, x_logits, mu, logvar, beta):
    nll = -torch.distributions.Bernoulli(logits=x_logits).log_prob(x).sum(-1)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    kl = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).sum(-1)
    return (nll + beta * kl).mean()


@variant("beta_negative_elbo", "sum_then_divide",
         why="Everything summed over the batch, then divided by the batch size.")
def beta_negative_elbo(x, x_logits, mu, logvar, beta):
    rec = F.binary_cross_entropy_with_logits(x_logits, x, reduction="sum")
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return (rec + beta * kl) / x.shape[0]


# ------------------------------------------------------------------ kl_warmup
@variant("kl_warmup", "clamp",
         why="A ratio clamped to [0, 1], with the no-warm-up case handled first.")
def kl_warmup(step, warmup_steps):
    if warmup_steps == 0:
        return 1.0
    return float(max(0.0, min(1.0, step / warmup_steps)))


@variant("kl_warmup", "branches",
         why="Two branches: the ramp, then 1.")
def kl_warmup(step, warmup_steps):
    if step >= warmup_steps:
        return 1.0
    return step / warmup_steps


# --------------------------------------------------------------- active_units
@variant("active_units", "by_hand",
         why="The population variance written out: mean of squared deviations from the mean over the data.")
def active_units(mu, threshold=0.01):
    centred = mu - mu.mean(0, keepdim=True)
    return int((centred.pow(2).mean(0) > threshold).sum().item())


@variant("active_units", "numpy",
         why="numpy's var, which divides by N by default.")
def active_units(mu, threshold=0.01):
    return int((mu.detach().numpy().var(axis=0) > threshold).sum())

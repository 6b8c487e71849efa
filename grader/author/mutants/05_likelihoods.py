"""Misconceptions for 05_likelihoods (work in progress: issue 15). Each definition uses the student's name."""
import math

import torch
import torch.nn.functional as F
from grader.author.mutants import mutant


# ------------------------------------------------------ gaussian_log_likelihood
@mutant("gaussian_log_likelihood", "no_log_two_pi",
        hint="Your values are off by the same constant for every image: the density's normaliser includes "
             "−½·log(2π) for every pixel.")
def gaussian_log_likelihood(x, mean, logvar):
    return -0.5 * (logvar + (x - mean) ** 2 / torch.exp(logvar)).sum(-1)


@mutant("gaussian_log_likelihood", "logvar_as_std",
        hint="You divided the squared error by exp(logvar)²: exp(logvar) is the variance σ², not σ.")
def gaussian_log_likelihood(x, mean, logvar):
    return -0.5 * (math.log(2 * math.pi) + logvar + (x - mean) ** 2 / torch.exp(logvar) ** 2).sum(-1)


@mutant("gaussian_log_likelihood", "no_log_det",
        hint="The log-variance term is missing: log N(x; m, σ²) = −½(log 2π + log σ² + (x − m)²/σ²), "
             "and log σ² is what stops the variance from shrinking for free.")
def gaussian_log_likelihood(x, mean, logvar):
    return -0.5 * (math.log(2 * math.pi) + (x - mean) ** 2 / torch.exp(logvar)).sum(-1)


@mutant("gaussian_log_likelihood", "mean_over_pixels",
        hint="You averaged over the pixels: the likelihood of an image is the product over its pixels, so its "
             "log is the sum.")
def gaussian_log_likelihood(x, mean, logvar):
    return -0.5 * (math.log(2 * math.pi) + logvar + (x - mean) ** 2 / torch.exp(logvar)).mean(-1)


@mutant("gaussian_log_likelihood", "negated",
        hint="Your values have the opposite sign: return the log-likelihood, not the negative log-likelihood "
             "a loss would use.")
def gaussian_log_likelihood(x, mean, logvar):
    return 0.5 * (math.log(2 * math.pi) + logvar + (x - mean) ** 2 / torch.exp(logvar)).sum(-1)


@mutant("gaussian_log_likelihood", "logvar_as_variance",
        hint="You used logvar as if it were the variance itself (log of logvar, division by logvar): the variance "
             "is exp(logvar), and logvar may be negative.")
def gaussian_log_likelihood(x, mean, logvar):
    return -0.5 * (math.log(2 * math.pi) + torch.log(logvar) + (x - mean) ** 2 / logvar).sum(-1)


# ----------------------------------------------------------------- naive_log_px
@mutant("naive_log_px", "mean_of_logs",
        hint="You averaged log p(x | z) over the samples: that is a lower bound (Jensen), not log of the average "
             "of p(x | z). Use torch.logsumexp over the samples, then subtract log S.")
def naive_log_px(decoder, x, latent_dim, n_samples, generator=None):
    z = torch.randn(n_samples, latent_dim, generator=generator, dtype=x.dtype)
    logits = decoder(z)
    log_px_z = x @ F.logsigmoid(logits).T + (1 - x) @ F.logsigmoid(-logits).T
    return log_px_z.mean(1)


@mutant("naive_log_px", "missing_log_s",
        hint="Your estimate is too high by log S for every image: logsumexp adds up the S terms, so subtract "
             "log(n_samples) to average them.")
def naive_log_px(decoder, x, latent_dim, n_samples, generator=None):
    z = torch.randn(n_samples, latent_dim, generator=generator, dtype=x.dtype)
    logits = decoder(z)
    log_px_z = x @ F.logsigmoid(logits).T + (1 - x) @ F.logsigmoid(-logits).T
    return torch.logsumexp(log_px_z, 1)


@mutant("naive_log_px", "naive_exp",
        hint="exp(log p(x | z)) underflows to 0 for a whole image (log p(x | z) is hundreds of nats below 0), so "
             "the log of the mean is −inf: use torch.logsumexp(log_px_z, dim) − log S.")
def naive_log_px(decoder, x, latent_dim, n_samples, generator=None):
    z = torch.randn(n_samples, latent_dim, generator=generator, dtype=x.dtype)
    logits = decoder(z)
    log_px_z = x @ F.logsigmoid(logits).T + (1 - x) @ F.logsigmoid(-logits).T
    return torch.log(torch.exp(log_px_z).mean(1))


@mutant("naive_log_px", "pixel_mean_bce",
        hint="Your log p(x | z) is averaged over pixels (reduction=\"mean\"): an image's log-likelihood is the sum "
             "over its pixels.")
def naive_log_px(decoder, x, latent_dim, n_samples, generator=None):
    z = torch.randn(n_samples, latent_dim, generator=generator, dtype=x.dtype)
    logits = decoder(z)
    log_px_z = (x @ F.logsigmoid(logits).T + (1 - x) @ F.logsigmoid(-logits).T) / x.shape[1]
    return torch.logsumexp(log_px_z, 1) - math.log(n_samples)


@mutant("naive_log_px", "uniform_prior",
        hint="Your latents are not drawn from the prior N(0, I): use torch.randn(n_samples, latent_dim, "
             "generator=generator), not torch.rand (uniform on [0, 1)).")
def naive_log_px(decoder, x, latent_dim, n_samples, generator=None):
    z = torch.rand(n_samples, latent_dim, generator=generator, dtype=x.dtype)
    logits = decoder(z)
    log_px_z = x @ F.logsigmoid(logits).T + (1 - x) @ F.logsigmoid(-logits).T
    return torch.logsumexp(log_px_z, 1) - math.log(n_samples)


# ------------------------------------------------------------ beta_negative_elbo
@mutant("beta_negative_elbo", "beta_on_reconstruction",
        hint="β weighs the KL term, not the reconstruction: loss = Σ BCE + β·KL.")
def beta_negative_elbo(x, x_logits, mu, logvar, beta):
    rec = F.binary_cross_entropy_with_logits(x_logits, x, reduction="none").sum(-1)
    kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(-1)
    return (beta * rec + kl).mean()


@mutant("beta_negative_elbo", "beta_ignored",
        hint="Your loss does not change with β: multiply the KL term by beta.")
def beta_negative_elbo(x, x_logits, mu, logvar, beta):
    rec = F.binary_cross_entropy_with_logits(x_logits, x, reduction="none").sum(-1)
    kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(-1)
    return (rec + kl).mean()


@mutant("beta_negative_elbo", "beta_on_both",
        hint="You multiplied the whole ELBO by β: only the KL term is weighted.")
def beta_negative_elbo(x, x_logits, mu, logvar, beta):
    rec = F.binary_cross_entropy_with_logits(x_logits, x, reduction="none").sum(-1)
    kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(-1)
    return (beta * (rec + kl)).mean()


@mutant("beta_negative_elbo", "bce_reduction_mean",
        hint="Your reconstruction is averaged over pixels (reduction=\"mean\"): sum the BCE over the 784 pixels "
             "of each image, then average over the batch.")
def beta_negative_elbo(x, x_logits, mu, logvar, beta):
    rec = F.binary_cross_entropy_with_logits(x_logits, x, reduction="none").mean(-1)
    kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(-1)
    return (rec + beta * kl).mean()


@mutant("beta_negative_elbo", "kl_missing_one",
        hint="The KL is missing its '1 +': KL = −½ Σ (1 + log σ² − μ² − σ²).")
def beta_negative_elbo(x, x_logits, mu, logvar, beta):
    rec = F.binary_cross_entropy_with_logits(x_logits, x, reduction="none").sum(-1)
    kl = -0.5 * (logvar - mu.pow(2) - logvar.exp()).sum(-1)
    return (rec + beta * kl).mean()


# ------------------------------------------------------------------ kl_warmup
@mutant("kl_warmup", "no_cap",
        hint="After warmup_steps the weight must stay at 1: yours keeps growing, so cap it at 1 (and keep warmup_steps = 0 in mind).")
def kl_warmup(step, warmup_steps):
    if warmup_steps <= 0:
        return 1.0
    return step / warmup_steps


@mutant("kl_warmup", "integer_division",
        hint="step // warmup_steps is integer division: the weight jumps from 0 to 1 instead of rising linearly. "
             "Use step / warmup_steps.")
def kl_warmup(step, warmup_steps):
    if warmup_steps <= 0:
        return 1.0
    return float(min(1, step // warmup_steps))


@mutant("kl_warmup", "off_by_one",
        hint="Your weight is one step ahead: at step 0 it must be exactly 0, and it reaches 1 at step = warmup_steps.")
def kl_warmup(step, warmup_steps):
    if warmup_steps <= 0:
        return 1.0
    return min(1.0, (step + 1) / warmup_steps)


@mutant("kl_warmup", "decreasing",
        hint="Warm-up starts with no KL (weight 0) and ends with the full KL (weight 1): yours goes the other way.")
def kl_warmup(step, warmup_steps):
    if warmup_steps <= 0:
        return 1.0
    return max(0.0, 1.0 - step / warmup_steps)


# --------------------------------------------------------------- active_units
@mutant("active_units", "unbiased_variance",
        hint="Use the population variance over the data (unbiased=False, dividing by N), as Burda et al. define "
             "activity; torch.var divides by N − 1 by default.")
def active_units(mu, threshold=0.01):
    return int((mu.var(dim=0) > threshold).sum())


@mutant("active_units", "std_not_var",
        hint="You compared the standard deviation with the threshold: activity is defined by the variance.")
def active_units(mu, threshold=0.01):
    return int((mu.std(dim=0, unbiased=False) > threshold).sum())


@mutant("active_units", "wrong_dim",
        hint="You took the variance across the latent dimensions of each code (dim 1): a unit is active when its "
             "value varies across the data, dim 0.")
def active_units(mu, threshold=0.01):
    return int((mu.var(dim=1, unbiased=False) > threshold).sum())


@mutant("active_units", "mean_not_var",
        hint="You tested the size of each dimension's mean: an inactive unit can sit anywhere, as long as it does "
             "not move with x. Test the variance over the data.")
def active_units(mu, threshold=0.01):
    return int((mu.mean(dim=0).abs() > threshold).sum())


# ---------------------------------------- predict, then run: the learned pixel variance
@mutant("predict_pixel_variance", "same_everywhere",
        hint="Each pixel has its own σ, and the log σ² term rewards shrinking it wherever the mean is right: where "
             "the images barely differ (the border), it shrinks far below σ where they differ most.")
def predict_pixel_variance():
    return "a"


@mutant("predict_pixel_variance", "larger_where_constant",
        hint="Where the data barely varies the squared error is tiny, so nothing stops σ from shrinking: there σ "
             "ends up far smaller than where the images differ most, not larger.")
def predict_pixel_variance():
    return "c"


@mutant("predict_pixel_variance", "stays_put",
        hint="σ is learned with the rest of the model, and its gradient −½(1 − (x − m)²/σ²) pushes it down whenever "
             "σ² exceeds the squared error.")
def predict_pixel_variance():
    return "d"


# -------------------------------------------- predict, then run: the naive estimator
@mutant("predict_naive_samples", "ten_is_enough",
        hint="Both estimators converge to log p(x), but at very different rates: the naive one is still several "
             "nats short at 20,000 prior samples.")
def predict_naive_samples():
    return "a"


@mutant("predict_naive_samples", "a_thousand",
        hint="A thousand prior samples leave the naive estimate about 20 nats short here: almost none of them "
             "decode to anything close to the digit.")
def predict_naive_samples():
    return "b"


@mutant("predict_naive_samples", "overshoots",
        hint="For finite S the naive estimate is biased downwards (E log p̂ ≤ log p by Jensen), so it approaches "
             "from below.")
def predict_naive_samples():
    return "d"


# ------------------------------------------------- predict, then run: β and collapse
@mutant("predict_beta_collapse", "all_stay_active",
        hint="Having 16 outputs does not mean using them: at β = 8 a dimension whose information does not pay for "
             "its KL cost collapses onto the prior, and its mean stops varying with x.")
def predict_beta_collapse():
    return "a"


@mutant("predict_beta_collapse", "more_active",
        hint="A larger β makes information in the code more expensive, so fewer dimensions are worth keeping, not more.")
def predict_beta_collapse():
    return "c"


@mutant("predict_beta_collapse", "nothing_changes",
        hint="β changes the balance between the two terms, not just the scale of the loss: the optimum moves along "
             "the rate–distortion curve.")
def predict_beta_collapse():
    return "d"


# ------------------------------------ harvested (grader/author/mutants/SIGHTINGS.md)
@mutant("gaussian_log_likelihood", "log_two_pi_once",
        hint="You added −½·log(2π) once per image instead of once per pixel: the normaliser belongs inside the sum "
             "over pixels.")
def gaussian_log_likelihood(x, mean, logvar):
    return -0.5 * math.log(2 * math.pi) - 0.5 * (logvar + (x - mean) ** 2 / torch.exp(logvar)).sum(-1)


@mutant("gaussian_log_likelihood", "std_as_variance",
        hint="You divided the squared error by σ = exp(½·logvar) where the variance σ² = exp(logvar) belongs.")
def gaussian_log_likelihood(x, mean, logvar):
    return -0.5 * (math.log(2 * math.pi) + logvar + (x - mean) ** 2 / torch.exp(0.5 * logvar)).sum(-1)


@mutant("gaussian_log_likelihood", "variance_in_normaliser",
        hint="Your normaliser adds the variance exp(logvar) where the log of the variance belongs: "
             "log σ² is logvar itself.")
def gaussian_log_likelihood(x, mean, logvar):
    return -0.5 * (math.log(2 * math.pi) + torch.exp(logvar) + (x - mean) ** 2 / torch.exp(logvar)).sum(-1)


@mutant("beta_negative_elbo", "kl_summed_over_batch",
        hint="Your β·KL term is summed over the batch while the reconstruction is averaged: average both over the "
             "batch.")
def beta_negative_elbo(x, x_logits, mu, logvar, beta):
    rec = F.binary_cross_entropy_with_logits(x_logits, x, reduction="none").sum(-1)
    kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum()
    return rec.mean() + beta * kl

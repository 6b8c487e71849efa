"""Misconceptions for 02_reparameterization. Each definition uses the student's name."""
import torch

from grader.author.mutants import mutant


# --------------------------------------------------------------- reparameterize
@mutant("reparameterize", "var_as_std",
        hint="You scaled eps by exp(logvar), the variance (the ½ is missing): the standard deviation is exp(½·logvar).")
def reparameterize(mu, logvar, eps):
    return mu + torch.exp(logvar) * eps


@mutant("reparameterize", "half_outside_exp",
        hint="The ½ belongs inside the exponential: σ = exp(½·logvar), not ½·exp(logvar).")
def reparameterize(mu, logvar, eps):
    return mu + 0.5 * torch.exp(logvar) * eps


@mutant("reparameterize", "logvar_as_std",
        hint="You used logvar as the standard deviation itself; it is log σ², so σ = exp(½·logvar).")
def reparameterize(mu, logvar, eps):
    return mu + logvar * eps


@mutant("reparameterize", "detached",
        hint="No gradient reaches mu or logvar: remove .detach() or torch.no_grad() from reparameterize.")
def reparameterize(mu, logvar, eps):
    return (mu + torch.exp(0.5 * logvar) * eps).detach()


@mutant("reparameterize", "z_equals_mu",
        hint="Your z ignores the noise (z = mu): add exp(½·logvar)·eps so that samples spread around mu.")
def reparameterize(mu, logvar, eps):
    return mu + 0 * logvar


@mutant("reparameterize", "uniform_eps",
        hint="Your z does not use the eps you were given; eps must be standard normal, never torch.rand (uniform).")
def reparameterize(mu, logvar, eps):
    return mu + torch.exp(0.5 * logvar) * torch.rand_like(mu)


# ---------------------------------------------------------------- pathwise_grad
@mutant("pathwise_grad", "sample_not_rsample",
        hint="Your samples carry no gradient: draw them with the reparameterization (or rsample()), not sample().")
def pathwise_grad(f, mu, logvar, n_samples):
    mu = mu.detach().clone().requires_grad_(True)
    logvar = logvar.detach().clone().requires_grad_(True)
    z = torch.distributions.Normal(mu, torch.exp(0.5 * logvar)).sample((n_samples,))
    return torch.autograd.grad(f(z).mean(), (mu, logvar))


@mutant("pathwise_grad", "no_requires_grad",
        hint="mu and logvar arrive without requires_grad, so autograd has nothing to differentiate: make copies "
             "that require it (mu.detach().clone().requires_grad_(True)) before you draw z.")
def pathwise_grad(f, mu, logvar, n_samples):
    eps = torch.randn(n_samples, dtype=mu.dtype)
    z = reparameterize(mu, logvar, eps)
    return torch.autograd.grad(f(z).mean(), (mu, logvar))


@mutant("pathwise_grad", "uniform_eps",
        hint="Your gradient estimate is biased: eps must be standard normal (torch.randn), not uniform (torch.rand).")
def pathwise_grad(f, mu, logvar, n_samples):
    mu = mu.detach().clone().requires_grad_(True)
    logvar = logvar.detach().clone().requires_grad_(True)
    z = mu + torch.exp(0.5 * logvar) * torch.rand(n_samples, dtype=mu.dtype)
    return torch.autograd.grad(f(z).mean(), (mu, logvar))


@mutant("pathwise_grad", "sum_not_mean",
        hint="Your estimate grows with n_samples: average f over the samples (mean), do not sum.")
def pathwise_grad(f, mu, logvar, n_samples):
    mu = mu.detach().clone().requires_grad_(True)
    logvar = logvar.detach().clone().requires_grad_(True)
    z = mu + torch.exp(0.5 * logvar) * torch.randn(n_samples, dtype=mu.dtype)
    return torch.autograd.grad(f(z).sum(), (mu, logvar))


# ---------------------------------------------------------- score_function_grad
@mutant("score_function_grad", "score_std",
        hint="The score for mu is (z − mu)/σ², with the variance in the denominator, not σ.")
def score_function_grad(f, mu, logvar, n_samples):
    with torch.no_grad():
        std = torch.exp(0.5 * logvar)
        z = mu + std * torch.randn(n_samples, dtype=mu.dtype)
        fz = f(z)
        return (fz * (z - mu) / std).mean(), (fz * (-0.5 + (z - mu) ** 2 / (2 * std**2))).mean()


@mutant("score_function_grad", "logvar_score_missing_half",
        hint="Your logvar gradient is twice the truth: ∂log q/∂logvar = −½ + (z − mu)²/(2σ²); check both halves.")
def score_function_grad(f, mu, logvar, n_samples):
    with torch.no_grad():
        var = logvar.exp()
        z = mu + var.sqrt() * torch.randn(n_samples, dtype=mu.dtype)
        fz = f(z)
        return (fz * (z - mu) / var).mean(), (fz * (-1.0 + (z - mu) ** 2 / var)).mean()


@mutant("score_function_grad", "forgot_f",
        hint="Your estimate averages the score alone, whose mean is 0: multiply each score by f(z).")
def score_function_grad(f, mu, logvar, n_samples):
    with torch.no_grad():
        var = logvar.exp()
        z = mu + var.sqrt() * torch.randn(n_samples, dtype=mu.dtype)
        return ((z - mu) / var).mean(), (-0.5 + (z - mu) ** 2 / (2 * var)).mean()


# -------------------------------------------- predict, then run: estimator variance
@mutant("predict_estimator_variance", "all_the_same",
        hint="Unbiased estimators can still differ in spread: being right on average says nothing about the variance.")
def predict_estimator_variance():
    return "a"


@mutant("predict_estimator_variance", "baseline_smallest",
        hint="A baseline only removes the part of the score function's noise that a constant explains; the pathwise "
             "estimator averages f'(z) = 2z, which is far less noisy here.")
def predict_estimator_variance():
    return "c"


@mutant("predict_estimator_variance", "score_smallest",
        hint="Needing no derivative of f makes the score function more general, not less noisy: it multiplies f(z) by "
             "a random score, and that product has a large variance.")
def predict_estimator_variance():
    return "d"


@mutant("score_function_grad", "logvar_score_missing_minus_half",
        hint="Your logvar gradient lacks the −½ of the score: ∂log q/∂logvar = −½ + (z − mu)²/(2σ²).")
def score_function_grad(f, mu, logvar, n_samples):
    with torch.no_grad():
        var = logvar.exp()
        z = mu + var.sqrt() * torch.randn(n_samples, dtype=mu.dtype)
        fz = f(z)
        return (fz * (z - mu) / var).mean(), (fz * (z - mu) ** 2 / (2 * var)).mean()

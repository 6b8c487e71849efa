"""Correct variants for 02_reparameterization. Each definition uses the student's function name."""
import torch

from grader.author.mutants import variant


# -------------------------------------------------------------- reparameterize
@variant("reparameterize", "sqrt_of_variance", why="σ as the square root of the variance exp(logvar).")
def reparameterize(mu, logvar, eps):
    return mu + torch.sqrt(torch.exp(logvar)) * eps


@variant("reparameterize", "addcmul", why="One fused call: torch.addcmul(mu, σ, eps).")
def reparameterize(mu, logvar, eps):
    return torch.addcmul(mu, logvar.mul(0.5).exp(), eps)


@variant("reparameterize", "float32_arithmetic", why="Computed in float32 and cast back to the input dtype.")
def reparameterize(mu, logvar, eps):
    z = mu.float() + torch.exp(0.5 * logvar.float()) * eps.float()
    return z.to(mu.dtype)


# --------------------------------------------------------------- pathwise_grad
@variant("pathwise_grad", "distribution_rsample",
         why="torch.distributions.Normal(mu, σ).rsample((n,)) draws reparameterized samples itself.")
def pathwise_grad(f, mu, logvar, n_samples):
    mu = mu.detach().clone().requires_grad_(True)
    logvar = logvar.detach().clone().requires_grad_(True)
    z = torch.distributions.Normal(mu, torch.exp(0.5 * logvar)).rsample((n_samples,))
    return torch.autograd.grad(f(z).mean(), (mu, logvar))


@variant("pathwise_grad", "backward_and_grad_attributes", why="loss.backward() and the .grad attributes instead of autograd.grad.")
def pathwise_grad(f, mu, logvar, n_samples):
    mu = mu.detach().clone().requires_grad_(True)
    logvar = logvar.detach().clone().requires_grad_(True)
    z = mu + torch.exp(0.5 * logvar) * torch.randn(n_samples, dtype=mu.dtype)
    (f(z).sum() / n_samples).backward()
    return mu.grad, logvar.grad


# --------------------------------------------------------- score_function_grad
@variant("score_function_grad", "autograd_score", why="The score ∇ log q from autograd on Normal.log_prob.")
def score_function_grad(f, mu, logvar, n_samples):
    mu = mu.detach().clone().requires_grad_(True)
    logvar = logvar.detach().clone().requires_grad_(True)
    with torch.no_grad():
        z = mu + torch.exp(0.5 * logvar) * torch.randn(n_samples, dtype=mu.dtype)
        fz = f(z)
    log_q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar)).log_prob(z)
    return torch.autograd.grad((fz * log_q).mean(), (mu, logvar))


@variant("score_function_grad", "via_std", why="Written with σ and the standardised noise eps = (z − μ)/σ.")
def score_function_grad(f, mu, logvar, n_samples):
    std = torch.exp(0.5 * logvar)
    eps = torch.randn(n_samples, dtype=mu.dtype)
    fz = f(mu + std * eps)
    return (fz * eps / std).mean(), (fz * 0.5 * (eps**2 - 1)).mean()

"""Correct variants for 03_vae. Each definition uses the student's name."""
import math

import torch
import torch.nn.functional as F

from grader.author.mutants import source_variant, variant


# ------------------------------------------------------------------------- VAE
def _vae(encode="h = self.encoder(x)\n        return self.mu_head(h), self.logvar_head(h)",
         decode="return self.decoder(z)", forward=None):
    forward = forward or ("mu, logvar = self.encode(x)\n        "
                          "z = reparameterize(mu, logvar, torch.randn_like(mu))\n        "
                          "return self.decode(z), mu, logvar")
    return f"""
class VAE(nn.Module):
    def __init__(self, latent_dim=20, hidden_dim=400):
        super().__init__()
        self.latent_dim, self.hidden_dim = latent_dim, hidden_dim
        self.encoder = nn.Sequential(nn.Linear(784, hidden_dim), nn.ReLU())
        self.mu_head = nn.Linear(hidden_dim, latent_dim)
        self.logvar_head = nn.Linear(hidden_dim, latent_dim)
        self.decoder = nn.Sequential(nn.Linear(latent_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, 784))

    def encode(self, x):
        {encode}

    def decode(self, z):
        {decode}

    def forward(self, x):
        {forward}
"""


source_variant("VAE", "layer_by_layer",
               _vae(encode="h = F.relu(self.encoder[0](x))\n        return self.mu_head(h), self.logvar_head(h)",
                    decode="return self.decoder[2](torch.relu(self.decoder[0](z)))"),
               why="The fixed layers called one by one with functional ReLUs.")
source_variant("VAE", "distribution_rsample",
               _vae(forward="mu, logvar = self.encode(x)\n        "
                            "z = torch.distributions.Normal(mu, torch.exp(0.5 * logvar)).rsample()\n        "
                            "return self.decode(z), mu, logvar"),
               why="z drawn with torch.distributions.Normal(mu, σ).rsample().")
source_variant("VAE", "inline_sample",
               _vae(forward="mu, logvar = self.encode(x)\n        std = torch.exp(0.5 * logvar)\n        "
                            "z = mu + std * torch.randn(mu.shape)\n        return self.decode(z), mu, logvar"),
               why="The reparameterization written inline with torch.randn(mu.shape).")


# --------------------------------------------------------------- negative_elbo
def _elbo(rec, kl="-0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)", combine="(rec + kl).mean()"):
    return f"""
def negative_elbo(x, x_logits, mu, logvar):
    rec = {rec}
    kl = {kl}
    return {combine}
"""


for _eps in ("1e-8", "1e-7", "1e-6"):
    source_variant("negative_elbo", f"probabilities_log_eps_{_eps}", _elbo(
        f"-(x * torch.log(torch.sigmoid(x_logits) + {_eps}) "
        f"+ (1 - x) * torch.log(1 - torch.sigmoid(x_logits) + {_eps})).sum(dim=1)"),
        why=f"Probabilities with a stabiliser {_eps} inside both logs.")
source_variant("negative_elbo", "probabilities_clamp", _elbo(
    "F.binary_cross_entropy(torch.sigmoid(x_logits).clamp(1e-7, 1 - 1e-7), x, reduction='none').sum(dim=1)"),
    why="binary_cross_entropy on probabilities clamped away from 0 and 1.")
source_variant("negative_elbo", "probabilities_bce", _elbo(
    "F.binary_cross_entropy(torch.sigmoid(x_logits), x, reduction='none').sum(dim=1)"),
    why="binary_cross_entropy on probabilities (it clamps its logs at −100 itself).")
source_variant("negative_elbo", "torch_distributions", _elbo(
    "-torch.distributions.Bernoulli(logits=x_logits).log_prob(x).sum(dim=1)",
    kl="torch.distributions.kl_divergence(torch.distributions.Normal(mu, torch.exp(0.5 * logvar)), "
       "torch.distributions.Normal(0.0, 1.0)).sum(dim=1)"),
    why="torch.distributions for both terms: Bernoulli(logits).log_prob and the Normal KL.")
source_variant("negative_elbo", "sums_then_divide", _elbo(
    "F.binary_cross_entropy_with_logits(x_logits, x, reduction='sum')",
    kl="-0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())", combine="(rec + kl) / x.shape[0]"),
    why="Everything summed over the batch, then divided by the batch size (another summation order).")
source_variant("negative_elbo", "float32_arithmetic", _elbo(
    "F.binary_cross_entropy_with_logits(x_logits.float(), x.float(), reduction='none').sum(dim=1)",
    kl="-0.5 * torch.sum(1 + logvar.float() - mu.float() ** 2 - logvar.float().exp(), dim=1)",
    combine="(rec + kl).mean().to(x_logits.dtype)"),
    why="Computed in float32 and cast back to the input dtype.")


# ------------------------------------------------------------------ train_step
@variant("train_step", "model_zero_grad", why="model.zero_grad() clears the same gradients as optimizer.zero_grad().")
def train_step(model, optimizer, x):
    model.zero_grad()
    x_logits, mu, logvar = model(x)
    loss = negative_elbo(x, x_logits, mu, logvar)
    loss.backward()
    optimizer.step()
    return loss.detach()


@variant("train_step", "zero_grad_after_step", why="Gradients cleared after the update rather than before (the first step starts clean).")
def train_step(model, optimizer, x):
    loss = negative_elbo(x, *model(x))
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    return loss.detach()


@variant("train_step", "own_probability_loss",
         why="A loss written from probabilities with a 1e-6 stabiliser (a correct negative_elbo of the student's own).")
def train_step(model, optimizer, x):
    optimizer.zero_grad()
    x_logits, mu, logvar = model(x)
    p = torch.sigmoid(x_logits)
    rec = -(x * torch.log(p + 1e-6) + (1 - x) * torch.log(1 - p + 1e-6)).sum(dim=1)
    kl = 0.5 * torch.sum(mu**2 + logvar.exp() - 1 - logvar, dim=1)
    loss = (rec + kl).mean()
    loss.backward()
    optimizer.step()
    return loss.detach().clone()


# ------------------------------------------------------------------ iwae_bound
def _iwae(log_q="torch.distributions.Normal(mu, std).log_prob(z).sum(-1)",
          log_p="torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)",
          combine="torch.logsumexp(log_w, dim=0) - math.log(k)", chunk="k"):
    return f"""
@torch.no_grad()
def iwae_bound(model, x, k, eps=None, chunk_size=100):
    mu, logvar = model.encode(x)
    std = torch.exp(0.5 * logvar)
    if eps is None:
        eps = torch.randn(k, *mu.shape)
    parts = []
    for start in range(0, k, {chunk}):
        z = mu + std * eps[start:start + {chunk}]
        x_logits = model.decode(z)
        log_px_z = -F.binary_cross_entropy_with_logits(x_logits, x.expand_as(x_logits), reduction="none").sum(-1)
        parts.append(log_px_z + {log_p} - {log_q})
    log_w = torch.cat(parts)
    return {combine}
"""


source_variant("iwae_bound", "no_chunks_batched_decode", _iwae(),
               why="All k samples decoded at once (a batched Linear accepts (k, B, D)).")
source_variant("iwae_bound", "closed_form_log_densities", _iwae(
    log_q="(-0.5 * (math.log(2 * math.pi) + logvar + eps[start:start + 7] ** 2)).sum(-1)",
    log_p="(-0.5 * (math.log(2 * math.pi) + z ** 2)).sum(-1)", chunk="7"),
    why="Gaussian log-densities in closed form, log q via eps, in chunks of 7.")
source_variant("iwae_bound", "log_mean_exp_shifted", _iwae(
    combine="log_w.max(0).values + torch.log(torch.exp(log_w - log_w.max(0).values).mean(0))"),
    why="log-mean-exp with the maximum subtracted by hand (as safe as logsumexp).")
source_variant("iwae_bound", "independent_normal", _iwae(
    log_q="torch.distributions.Independent(torch.distributions.Normal(mu, std), 1).log_prob(z)",
    log_p="torch.distributions.Independent(torch.distributions.Normal(torch.zeros_like(mu), 1.0), 1).log_prob(z)",
    chunk="chunk_size"),
    why="torch.distributions.Independent sums the latent log-densities itself.")

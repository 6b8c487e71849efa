"""Correct variants for 04_generation. Each definition uses the student's name."""
import math

import torch

from grader.author.mutants import source_variant, variant


# ---------------------------------------------------------------- sample_prior
@variant("sample_prior", "sigmoid_method", why="z drawn with torch.randn and the logits passed through .sigmoid().")
def sample_prior(decoder, n, latent_dim, generator=None):
    z = torch.randn((n, latent_dim), generator=generator)
    return decoder(z).sigmoid()


@variant("sample_prior", "bernoulli_probs", why="The means read from torch.distributions.Bernoulli(logits=...).probs.")
def sample_prior(decoder, n, latent_dim, generator=None):
    logits = decoder(torch.randn(n, latent_dim, generator=generator))
    return torch.distributions.Bernoulli(logits=logits).probs


@variant("sample_prior", "normal_draws", why="z drawn with torch.normal(0, 1, ...) rather than torch.randn.")
def sample_prior(decoder, n, latent_dim, generator=None):
    z = torch.normal(0.0, 1.0, size=(n, latent_dim), generator=generator)
    return 1 / (1 + torch.exp(-decoder(z)))


# ----------------------------------------------------------------- interpolate
@variant("interpolate", "lerp", why="torch.lerp(z0, z1, t) with the weights as a column.")
def interpolate(z0, z1, steps):
    t = torch.linspace(0, 1, steps, dtype=z0.dtype)[:, None]
    return torch.lerp(z0.expand(steps, -1), z1.expand(steps, -1), t)


@variant("interpolate", "loop_over_steps", why="One row at a time, z0 + t·(z1 − z0) with t = i/(steps − 1).")
def interpolate(z0, z1, steps):
    rows = [z0 + (i / (steps - 1)) * (z1 - z0) for i in range(steps)]
    return torch.stack(rows)


# ----------------------------------------------------------------- latent_grid
@variant("latent_grid", "erfinv", why="The normal quantile through the inverse error function, √2·erfinv(2p − 1).")
def latent_grid(n):
    p = (torch.arange(n, dtype=torch.float32) + 0.5) / n
    q = math.sqrt(2) * torch.erfinv(2 * p - 1)
    return torch.cartesian_prod(q, q)


@variant("latent_grid", "ndtri_float64", why="torch.special.ndtri in float64, cast to float32 at the end.")
def latent_grid(n):
    p = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    q = torch.special.ndtri(p)
    grid = torch.tensor([[qi, qj] for qi in q.tolist() for qj in q.tolist()], dtype=torch.float64)
    return grid.reshape(n * n, 2).float()


# ------------------------------------------------------------------------ CVAE
def _cvae(forward_noise="torch.randn_like(mu)", encode="h = self.encoder(torch.cat([x, y_onehot], dim=1))"):
    return f"""
class CVAE(nn.Module):
    def __init__(self, latent_dim, num_classes=10, hidden_dim=400):
        super().__init__()
        self.latent_dim, self.num_classes = latent_dim, num_classes
        self.encoder = nn.Sequential(nn.Linear(784 + num_classes, hidden_dim), nn.ReLU())
        self.mu_head = nn.Linear(hidden_dim, latent_dim)
        self.logvar_head = nn.Linear(hidden_dim, latent_dim)
        self.decoder = nn.Sequential(nn.Linear(latent_dim + num_classes, hidden_dim), nn.ReLU(),
                                     nn.Linear(hidden_dim, 784))

    def encode(self, x, y_onehot):
        {encode}
        return self.mu_head(h), self.logvar_head(h)

    def decode(self, z, y_onehot):
        return self.decoder(torch.hstack((z, y_onehot)))

    def forward(self, x, y_onehot):
        mu, logvar = self.encode(x, y_onehot)
        z = mu + torch.exp(0.5 * logvar) * {forward_noise}
        return self.decode(z, y_onehot), mu, logvar
"""


source_variant("CVAE", "hstack", _cvae(), why="torch.hstack instead of torch.cat(..., dim=1).")
source_variant("CVAE", "split_first_layer", _cvae(
    encode="w = self.encoder[0].weight\n        "
           "h = torch.relu(x @ w[:, :784].T + y_onehot @ w[:, 784:].T + self.encoder[0].bias)"),
    why="The first layer applied to image and label separately and summed (the same linear map).")

"""Small fixed models that the self-checks hand to student functions such as
``iwae_bound`` and ``train_step``: a *linear* Gaussian encoder and a linear
Bernoulli decoder (no hidden layer, unlike the course's VAE), with weights
set from a seed so every run sees the same model."""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["LinearVAE"]


class LinearVAE(nn.Module):
    """q(z|x) = N(A x + a, diag(exp(B x + b))), p(x|z) = Bernoulli(logits = C z + c)."""

    def __init__(self, latent_dim: int = 4, data_dim: int = 784, seed: int = 0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.latent_dim = latent_dim
        self.to_mu = nn.Parameter(0.05 * torch.randn(data_dim, latent_dim, generator=gen))
        self.to_logvar = nn.Parameter(0.02 * torch.randn(data_dim, latent_dim, generator=gen))
        self.bias = nn.Parameter(torch.zeros(2, latent_dim))
        self.readout = nn.Parameter(0.3 * torch.randn(latent_dim, data_dim, generator=gen))
        self.offset = nn.Parameter(torch.full((data_dim,), -1.0))

    def encode(self, x):
        return x @ self.to_mu + self.bias[0], x @ self.to_logvar + self.bias[1] - 1.0

    def decode(self, z):
        return z @ self.readout + self.offset

    def forward(self, x):
        mean, log_variance = self.encode(x)
        q = torch.distributions.Normal(mean, torch.exp(0.5 * log_variance))
        return self.decode(q.rsample()), mean, log_variance

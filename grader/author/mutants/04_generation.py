"""Misconceptions for 04_generation. Each definition uses the student's name."""
import torch

from grader.author.mutants import mutant, source_mutant


# ---------------------------------------------------------------- sample_prior
@mutant("sample_prior", "logits",
        hint="You returned logits: the Bernoulli means are sigmoid(decoder(z)), values in [0, 1].")
def sample_prior(decoder, n, latent_dim, generator=None):
    return decoder(torch.randn(n, latent_dim, generator=generator))


@mutant("sample_prior", "uniform",
        hint="Your z are not from the prior: draw z with torch.randn (standard normal), not torch.rand (uniform on [0, 1)).")
def sample_prior(decoder, n, latent_dim, generator=None):
    return torch.sigmoid(decoder(torch.rand(n, latent_dim, generator=generator)))


@mutant("sample_prior", "prior_mean_only",
        hint="All your samples decode the same z (the prior mean): draw a fresh z ~ N(0, I) for each sample.")
def sample_prior(decoder, n, latent_dim, generator=None):
    return torch.sigmoid(decoder(torch.zeros(n, latent_dim)))


# ----------------------------------------------------------------- interpolate
@mutant("interpolate", "misses_last",
        hint="Your path stops short of z1: the last row must be exactly z1 (torch.linspace(0, 1, steps) includes both ends).")
def interpolate(z0, z1, steps):
    t = (torch.arange(steps, dtype=z0.dtype) / steps).unsqueeze(1)
    return (1 - t) * z0 + t * z1


@mutant("interpolate", "misses_both",
        hint="Your path leaves out both endpoints: the first row must be exactly z0 and the last exactly z1.")
def interpolate(z0, z1, steps):
    t = torch.linspace(0, 1, steps + 2, dtype=z0.dtype)[1:-1].unsqueeze(1)
    return (1 - t) * z0 + t * z1


@mutant("interpolate", "reversed",
        hint="Your path runs backwards: it must start at z0 and end at z1.")
def interpolate(z0, z1, steps):
    t = torch.linspace(0, 1, steps, dtype=z0.dtype).unsqueeze(1)
    return t * z0 + (1 - t) * z1


# ----------------------------------------------------------------- latent_grid
@mutant("latent_grid", "linear_grid",
        hint="You used an evenly spaced (linear) grid; place points at prior quantiles, Normal(0, 1).icdf((k + ½)/n).")
def latent_grid(n):
    q = torch.linspace(-2, 2, n)
    return torch.stack(torch.meshgrid(q, q, indexing="ij"), dim=-1).reshape(-1, 2)


@mutant("latent_grid", "probabilities_include_ends",
        hint="Probabilities 0 and 1 map to ±infinity: use the midpoints (k + ½)/n, not torch.linspace(0, 1, n).")
def latent_grid(n):
    q = torch.distributions.Normal(0.0, 1.0).icdf(torch.linspace(0, 1, n))
    return torch.stack(torch.meshgrid(q, q, indexing="ij"), dim=-1).reshape(-1, 2)


@mutant("latent_grid", "transposed",
        hint="Your grid is transposed: row i·n + j must be (q_i, q_j), so the first coordinate changes slowest.")
def latent_grid(n):
    q = torch.distributions.Normal(0.0, 1.0).icdf((torch.arange(n, dtype=torch.float32) + 0.5) / n)
    return torch.stack(torch.meshgrid(q, q, indexing="xy"), dim=-1).reshape(-1, 2)


# ------------------------------------------------------------------------ CVAE
def _cvae(encoder_input="torch.cat([x, y_onehot], dim=1)", decoder_input="torch.cat([z, y_onehot], dim=1)"):
    """Source of a CVAE mutant: the notebook's fixed layers fed the wrong inputs."""
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
        h = self.encoder({encoder_input})
        return self.mu_head(h), self.logvar_head(h)

    def decode(self, z, y_onehot):
        return self.decoder({decoder_input})

    def forward(self, x, y_onehot):
        mu, logvar = self.encode(x, y_onehot)
        return self.decode(mu + torch.exp(0.5 * logvar) * torch.randn_like(mu), y_onehot), mu, logvar
"""


source_mutant("CVAE", "decoder_ignores_label", _cvae(decoder_input="torch.cat([z, torch.zeros_like(y_onehot)], dim=1)"),
              hint="Your decoder ignores the label: concatenate y_onehot to z before the decoder "
                   "(torch.cat([z, y_onehot], dim=1)).")
source_mutant("CVAE", "encoder_ignores_label", _cvae(encoder_input="torch.cat([x, torch.zeros_like(y_onehot)], dim=1)"),
              hint="Your encoder ignores the label: q(z | x, y) reads torch.cat([x, y_onehot], dim=1).")
source_mutant("CVAE", "label_first", _cvae("torch.cat([y_onehot, x], dim=1)", "torch.cat([y_onehot, z], dim=1)"),
              hint="Concatenate in the documented order, [x, y_onehot] and [z, y_onehot]: the fixed layers expect the "
                   "label last.")

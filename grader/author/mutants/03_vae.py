"""Misconceptions for 03_vae. Each definition uses the student's name."""
import math

import torch
import torch.nn.functional as F
from grader.author.mutants import mutant, source_mutant

# ------------------------------------------------------------------------- VAE
def _vae(encode="return self.mu_head(h), self.logvar_head(h)", decode="return self.decoder(z)",
         sample="z = reparameterize(mu, logvar, torch.randn_like(mu))",
         decoder="nn.Sequential(nn.Linear(latent_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, 784))",
         heads_in="hidden_dim"):
    """Source of a VAE mutant: the notebook's fixed layers with one method body changed."""
    return f"""
class VAE(nn.Module):
    def __init__(self, latent_dim=20, hidden_dim=400):
        super().__init__()
        self.latent_dim, self.hidden_dim = latent_dim, hidden_dim
        self.encoder = nn.Sequential(nn.Linear(784, hidden_dim), nn.ReLU())
        self.mu_head = nn.Linear({heads_in}, latent_dim)
        self.logvar_head = nn.Linear({heads_in}, latent_dim)
        self.decoder = {decoder}

    def encode(self, x):
        h = self.encoder(x)
        {encode}

    def decode(self, z):
        {decode}

    def forward(self, x):
        mu, logvar = self.encode(x)
        {sample}
        return self.decode(z), mu, logvar
"""


source_mutant("VAE", "decode_probabilities", _vae(decode="return torch.sigmoid(self.decoder(z))"),
              hint="decode must return logits (any real number); you applied a sigmoid, which belongs inside the loss.")
source_mutant("VAE", "no_sampling", _vae(sample="z = mu"),
              hint="forward decodes mu itself: during training z must be sampled, z = mu + σ·eps with fresh eps ~ N(0, I).")
source_mutant("VAE", "var_as_std", _vae(sample="z = mu + torch.exp(logvar) * torch.randn_like(mu)"),
              hint="Your samples spread with exp(logvar), the variance: the noise must be scaled by σ = exp(½·logvar).")
source_mutant("VAE", "logvar_as_std_in_forward", _vae(sample="z = mu + logvar * torch.randn_like(mu)"),
              hint="forward scales the noise by logvar itself: logvar is log σ², so σ = exp(½·logvar) and "
                   "z = mu + σ·eps.")
source_mutant("VAE", "swapped_heads", _vae(encode="return self.logvar_head(h), self.mu_head(h)"),
              hint="encode returns the heads in the wrong order: mu comes from mu_head and logvar from logvar_head.")
source_mutant("VAE", "decoder_without_relu",
              _vae(decoder="nn.Sequential(nn.Linear(latent_dim, hidden_dim), nn.Identity(), nn.Linear(hidden_dim, 784))"),
              hint="Your decoder has no ReLU between its two linear layers: without a nonlinearity they collapse "
                   "into one linear map.")
source_mutant("VAE", "heads_read_the_image",
              _vae(heads_in="784", encode="return self.mu_head(x), self.logvar_head(x)"),
              hint="mu_head and logvar_head must read the encoder's hidden layer (hidden_dim inputs), not the "
                   "784 pixels.")
source_mutant("VAE", "detached", _vae(sample="z = reparameterize(mu, logvar, torch.randn_like(mu)).detach()"),
              hint="No gradient reaches the encoder: z must stay attached to mu and logvar (no .detach(), no torch.no_grad()).")


# --------------------------------------------------------------- negative_elbo
@mutant("negative_elbo", "bce_reduction_mean",
        hint="Your reconstruction is averaged over pixels (what reduction=\"mean\" does, the Keras habit): sum the "
             "BCE over the 784 pixels of each image, then average over the batch.")
def negative_elbo(x, x_logits, mu, logvar):
    rec = F.binary_cross_entropy_with_logits(x_logits, x, reduction="mean")
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)
    return rec + kl.mean()


@mutant("negative_elbo", "kl_missing_one",
        hint="Your KL lacks the 1 in −½·Σ(1 + logvar − mu² − exp(logvar)): without it the KL of q = N(0, I) is not 0.")
def negative_elbo(x, x_logits, mu, logvar):
    rec = F.binary_cross_entropy_with_logits(x_logits, x, reduction="none").sum(dim=1)
    kl = -0.5 * torch.sum(logvar - mu.pow(2) - logvar.exp(), dim=1)
    return (rec + kl).mean()


@mutant("negative_elbo", "sum_over_batch",
        hint="Your loss grows with the batch size: average over the batch (sum only over pixels and latents).")
def negative_elbo(x, x_logits, mu, logvar):
    rec = F.binary_cross_entropy_with_logits(x_logits, x, reduction="sum")
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return rec + kl


@mutant("negative_elbo", "sigmoid_before_logits_loss",
        hint="You applied a sigmoid before a loss that expects logits: pass x_logits straight to binary_cross_entropy_with_logits.")
def negative_elbo(x, x_logits, mu, logvar):
    rec = F.binary_cross_entropy_with_logits(torch.sigmoid(x_logits), x, reduction="none").sum(dim=1)
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)
    return (rec + kl).mean()


@mutant("negative_elbo", "kl_sign",
        hint="Your KL term has the wrong sign: the negative ELBO adds KL = −½·Σ(1 + logvar − mu² − exp(logvar)) ≥ 0.")
def negative_elbo(x, x_logits, mu, logvar):
    rec = F.binary_cross_entropy_with_logits(x_logits, x, reduction="none").sum(dim=1)
    kl = 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)
    return (rec + kl).mean()


@mutant("negative_elbo", "logvar_as_logstd",
        hint="Your KL treats logvar as log σ (σ² = exp(2·logvar)); logvar is log σ², so σ² = exp(logvar).")
def negative_elbo(x, x_logits, mu, logvar):
    rec = F.binary_cross_entropy_with_logits(x_logits, x, reduction="none").sum(dim=1)
    kl = -0.5 * torch.sum(1 + 2 * logvar - mu.pow(2) - (2 * logvar).exp(), dim=1)
    return (rec + kl).mean()


# ------------------------------------------------------------------ train_step
@mutant("train_step", "no_update",
        hint="The loss does not go down: call loss.backward() and then optimizer.step() in every train_step.")
def train_step(model, optimizer, x):
    optimizer.zero_grad()
    loss = negative_elbo(x, *model(x))
    return loss.detach()


@mutant("train_step", "no_zero_grad",
        hint="Gradients pile up from step to step: call optimizer.zero_grad() before loss.backward().")
def train_step(model, optimizer, x):
    loss = negative_elbo(x, *model(x))
    loss.backward()
    optimizer.step()
    return loss.detach()


# ------------------------------------------------------------------ iwae_bound
def _iwae(combine="torch.logsumexp(log_w, dim=0) - math.log(k)", z="mu + std * eps",
          log_q="torch.distributions.Normal(mu, std).log_prob(z).sum(-1)"):
    """Source of an iwae_bound mutant: the reference computation with one step changed."""
    return f"""
def iwae_bound(model, x, k, eps=None, chunk_size=100):
    with torch.no_grad():
        mu, logvar = model.encode(x)
        std = torch.exp(0.5 * logvar)
        if eps is None:
            eps = torch.randn(k, *mu.shape)
        z = {z}
        x_logits = model.decode(z.reshape(-1, z.shape[-1])).reshape(k, *x.shape)
        log_px_z = -F.binary_cross_entropy_with_logits(x_logits, x.expand_as(x_logits), reduction="none").sum(-1)
        log_w = log_px_z + torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1) - {log_q}
        return {combine}
"""


source_mutant("iwae_bound", "plain_average", _iwae(combine="log_w.mean(dim=0)"),
              hint="You averaged the log-weights before combining them (that is just the ELBO again): average the "
                   "weights inside the log, with logsumexp − log k.")
source_mutant("iwae_bound", "missing_log_k", _iwae(combine="torch.logsumexp(log_w, dim=0)"),
              hint="Your bound is too high by exactly log k: logsumexp adds the weights, so subtract log k to average them.")
source_mutant("iwae_bound", "naive_exp", _iwae(combine="torch.log(torch.exp(log_w).mean(dim=0))"),
              hint="exp of log-weights near −500 underflows to 0 (log 0 = −inf): use torch.logsumexp instead of "
                   "log(mean(exp(...))).")
source_mutant("iwae_bound", "missing_log_det",
              _iwae(log_q="torch.distributions.Normal(0.0, 1.0).log_prob(eps).sum(-1)"),
              hint="Your log q(z|x) lacks −Σ log σ_j: the density of z = mu + σ·eps is the N(0, 1) density of eps "
                   "divided by the product of the σ_j, so use Normal(mu, σ).log_prob(z).")
source_mutant("iwae_bound", "one_z_repeated", _iwae(z="(mu + std * eps[0]).expand(k, *mu.shape)"),
              hint="All k of your samples are the same z: sample s must use its own noise, z[s] = mu + σ·eps[s].")
source_mutant("iwae_bound", "ignores_eps", _iwae(z="mu + std * torch.randn(k, *mu.shape)"),
              hint="You drew your own noise although eps was given: use z = mu + σ·eps (draw it only when eps is None), "
                   "so the self-check can compare your bound exactly.")
source_mutant("iwae_bound", "logsumexp_over_batch", _iwae(combine="torch.logsumexp(log_w, dim=1) - math.log(k)"),
              hint="You combined the log-weights over the batch (dim 1): the k samples are dim 0 of the (k, batch) "
                   "log-weights, and the result has one value per image.")


# ------------------------------------------------ predict, then run: IWAE against k
@mutant("predict_iwae_vs_k", "stays_the_same",
        hint="Averaging the weights inside the log does more than reduce variance: by Jensen's inequality the "
             "expected bound rises with k towards log p(x).")
def predict_iwae_vs_k():
    return "a"


@mutant("predict_iwae_vs_k", "rises_without_limit",
        hint="The bound cannot pass log p(x): in expectation L_k ≤ log p(x) for every k, so its rise must level off.")
def predict_iwae_vs_k():
    return "c"


@mutant("predict_iwae_vs_k", "falls",
        hint="More samples never lower the expected bound: L_k ≤ L_(k+1), since the k-sample average is itself an "
             "average of (k−1)-sample averages.")
def predict_iwae_vs_k():
    return "d"


# --------------------------------------------- predict, then run: the latent size
@mutant("predict_latent_size", "improves_all_the_way",
        hint="Past about 10 to 20 dimensions the decoder has little use for more: extra dimensions add KL cost and "
             "training time, so the bound flattens, and after a short run it can even get worse.")
def predict_latent_size():
    return "a"


@mutant("predict_latent_size", "worse_from_the_start",
        hint="d = 2 is a bottleneck: two numbers cannot describe a digit well, so the bound first improves markedly "
             "as d grows; only the extra KL cost of unneeded dimensions later stops it.")
def predict_latent_size():
    return "c"


@mutant("predict_latent_size", "no_effect",
        hint="The latent size matters most at the small end: from d = 2 to d = 10 the bound improves by tens of "
             "nats, because the code stops being a bottleneck.")
def predict_latent_size():
    return "d"


# ------------------------------------ harvested (grader/author/mutants/SIGHTINGS.md)


@mutant("negative_elbo", "kl_summed_over_batch",
        hint="Your KL term is summed over the batch while the reconstruction is averaged: average the KL over the "
             "batch too (sum it only over latents).")
def negative_elbo(x, x_logits, mu, logvar):
    rec = F.binary_cross_entropy_with_logits(x_logits, x, reduction="none").sum(dim=1)
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return rec.mean() + kl


@mutant("negative_elbo", "kl_mean_over_latent",
        hint="Your KL term is averaged over latent dimensions: the KL of independent dimensions is their sum, so sum "
             "it over the latents.")
def negative_elbo(x, x_logits, mu, logvar):
    rec = F.binary_cross_entropy_with_logits(x_logits, x, reduction="none").sum(dim=1)
    kl = -0.5 * torch.mean(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)
    return (rec + kl).mean()

"""The harvested items. ``WRONG`` holds (target, assignment, function, words,
seen): ``words`` are the words a right, specific hint contains (all of them,
case-insensitive). ``CORRECT`` holds (target, assignment, function, seen)."""
import math

import torch
import torch.nn.functional as F

WRONG = []
CORRECT = []


def wrong(target, assignment, words, seen):
    def register(fn):
        WRONG.append((target, assignment, fn, tuple(words), seen))
        return fn
    return register


def correct(target, assignment, seen):
    def register(fn):
        CORRECT.append((target, assignment, fn, seen))
        return fn
    return register


# ============================================================ kl_standard_normal (01)
@wrong("kl_standard_normal", "01_elbo", ["averaged over latent"],
       "mean over latent dims: mkusner/grammarVAE #2 (2017), maxhodak/keras-molecules #59 (2017), "
       "rstudio/keras3 #359 (2018), podgorskiy/VAE #1 (2020)")
def kl_mean_latent(mu, logvar):
    return 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).mean(dim=1)


@wrong("kl_standard_normal", "01_elbo", ["batch"],
       "mean over batch and latents: hanzhanggit/StackGAN-v2 #30 (2019), podgorskiy/VAE #1 (2020)")
def kl_mean_everything(mu, logvar):
    return torch.mean(-0.5 * (1 + logvar - mu * mu - torch.exp(logvar)))


@wrong("kl_standard_normal", "01_elbo", ["whole batch"],
       "summed over the batch: cesarali/vae losses, cfr2ak/KaggleSolutions digit-recognizer (Kaggle course), "
       "serre-lab/vfm losses, pytorch/examples vae (2017-2019)")
def kl_sum_batch(mu, logvar):
    return torch.sum(0.5 * (torch.exp(logvar) + mu ** 2 - 1.0 - logvar))


@wrong("kl_standard_normal", "01_elbo", ["log σ", "exp(2"],
       "log-variance read as log-std: pyg-team/pytorch_geometric #1368 (2020), "
       "DaehanKim/vgae_pytorch #2 (2020), hill-a/stable-baselines #1060 (2020)")
def kl_logstd(mu, logvar):
    var = torch.exp(logvar) ** 2
    return 0.5 * torch.sum(mu ** 2 + var - 1 - 2 * logvar, dim=-1)


@wrong("kl_standard_normal", "01_elbo", ["σ where σ²"],
       "sigma where sigma^2 belongs: pytorch/examples #225 (2017), ikostrikov/TensorFlow-VAE-GAN-DRAW #15 (2017), "
       "DaehanKim/vgae_pytorch #2 (2020)")
def kl_std_for_var(mu, logvar):
    std = torch.exp(0.5 * logvar)
    return -0.5 * torch.sum(1 + logvar - mu ** 2 - std, dim=1)


@wrong("kl_standard_normal", "01_elbo", ["log σ where log σ²"],
       "log sigma where log sigma^2 belongs: FluxML/model-zoo #73, #76 (2018), thuhcsi/VAENAR-TTS #8 (2021), "
       "KarenUllrich/Tutorial_BayesianCompressionForDL #1 (2017)")
def kl_logstd_for_logvar(mu, logvar):
    std = torch.exp(0.5 * logvar)
    return -0.5 * torch.sum(1 + torch.log(std) - mu ** 2 - std ** 2, dim=1)


@wrong("kl_standard_normal", "01_elbo", ["wrong sign"],
       "KL sign: FluxML/model-zoo #147 (2019), littlebirdoflargehead/Paper-Reproduce VAE (sign moved between lines)")
def kl_sign(mu, logvar):
    return 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)


@wrong("kl_standard_normal", "01_elbo", ["twice"],
       "missing 1/2: XMUDeepLIT/VNMT #5 (2019, raised as a question), issue 31 of this course (-1 for -1/2)")
def kl_missing_half(mu, logvar):
    return -torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)


@wrong("kl_standard_normal", "01_elbo", ["latent_dim/2", "too small"],
       "constant -1 where -1/2 belongs in the std form: graviraja/pytorch-sample-codes #2 (2019), "
       "mlvu/worksheets #4 (2024), issue 31 of this course")
def kl_minus_one(mu, logvar):
    return torch.sum(0.5 * (mu ** 2 + logvar.exp() - logvar) - 1.0, dim=1)


@correct("kl_standard_normal", "01_elbo", "torch.distributions form: cellarium-ai, scvi-tools style")
def kl_dist(mu, logvar):
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    return torch.distributions.kl_divergence(q, p).sum(-1)


@correct("kl_standard_normal", "01_elbo", "std form 1/2 sum(mu^2 + var - 1 - log var): wiseodd/generative-models")
def kl_std_form(mu, logvar):
    std = torch.exp(logvar / 2)
    return 0.5 * (mu.pow(2) + std.pow(2) - 1 - 2 * torch.log(std)).sum(dim=1)


# ============================================================== reparameterize (02)
@wrong("reparameterize", "02_reparameterization", ["exp(logvar)", "variance"],
       "variance as std: alecGraves/BVAE-tf #7 (2019), keras-team/keras #3283 (2016)")
def rep_var(mu, logvar, eps):
    return mu + eps * logvar.exp()


@wrong("reparameterize", "02_reparameterization", ["½ belongs inside"],
       "1/2 outside the exp: mlvu/worksheets-style std = 0.5*exp (2024), issue 31 of this course")
def rep_half_outside(mu, logvar, eps):
    return mu + 0.5 * torch.exp(logvar) * eps


@wrong("reparameterize", "02_reparameterization", ["logvar as the standard deviation"],
       "log-variance used as sigma: jjgsherwood/COMSOC vae_utils (2021), alecGraves/BVAE-tf #7 (2019)")
def rep_logvar_std(mu, logvar, eps):
    return mu + logvar * eps


@correct("reparameterize", "02_reparameterization", "sqrt of the variance: CLUB_impl, VAEVQ style")
def rep_sqrt(mu, logvar, eps):
    return eps * torch.sqrt(torch.exp(logvar)) + mu


# =============================================================== negative_elbo (03)
def _kl_rows(mu, logvar):
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)


@wrong("negative_elbo", "03_vae", ["batch size"],
       "summed over the batch: pytorch/examples vae main.py (2017-2019), cesarali/vae, cfr2ak/KaggleSolutions")
def ne_sum_batch(x, x_logits, mu, logvar):
    return F.binary_cross_entropy_with_logits(x_logits, x, reduction="sum") + _kl_rows(mu, logvar).sum()


@wrong("negative_elbo", "03_vae", ["kl", "summed over the batch"],
       "KL summed over the batch, reconstruction averaged: wiseodd/generative-models #40 (2017), "
       "zdebruine/MMVAE #19 (2024), orybkin/sigma-vae-pytorch #12 (2026)")
def ne_kl_sum_batch(x, x_logits, mu, logvar):
    rec = F.binary_cross_entropy_with_logits(x_logits, x, reduction="none").sum(1).mean()
    return rec + _kl_rows(mu, logvar).sum()


@wrong("negative_elbo", "03_vae", ["averaged over pixels", "kl", "summed over the batch"],
       "BCE with reduction='mean' plus a KL summed over everything: pytorch/examples #294 (2018), "
       "orybkin/sigma-vae-tensorflow #2 (2020), zdebruine/MMVAE #19 (2024)")
def ne_bce_mean_kl_sum(x, x_logits, mu, logvar):
    return F.binary_cross_entropy_with_logits(x_logits, x) + _kl_rows(mu, logvar).sum()


@wrong("negative_elbo", "03_vae", ["1/784"],
       "everything normalised per pixel, KL /= batch*784: pytorch/examples #294 (2018), y0ast/VAE-Torch #7 (2016)")
def ne_per_pixel(x, x_logits, mu, logvar):
    rec = F.binary_cross_entropy_with_logits(x_logits, x)
    return rec + _kl_rows(mu, logvar).sum() / (x.shape[0] * x.shape[1])


@wrong("negative_elbo", "03_vae", ["kl", "averaged over latent"],
       "KL averaged over latent dims: mkusner/grammarVAE #2 (2017), maxhodak/keras-molecules #59 (2017), "
       "podgorskiy/VAE #1 (2020)")
def ne_kl_mean_latent(x, x_logits, mu, logvar):
    rec = F.binary_cross_entropy_with_logits(x_logits, x, reduction="none").sum(1)
    kl = -0.5 * torch.mean(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)
    return (rec + kl).mean()


@wrong("negative_elbo", "03_vae", ["log σ", "exp(2"],
       "log-variance read as log-std: pyg-team/pytorch_geometric #1368 (2020), DaehanKim/vgae_pytorch #2 (2020)")
def ne_logstd(x, x_logits, mu, logvar):
    rec = F.binary_cross_entropy_with_logits(x_logits, x, reduction="none").sum(1)
    kl = -0.5 * torch.sum(1 + 2 * logvar - mu.pow(2) - logvar.exp() ** 2, dim=1)
    return (rec + kl).mean()


@wrong("negative_elbo", "03_vae", ["sigmoid"],
       "sigmoid before a logits loss: yudi-mars/daisyRec #15 (2023), lopuhin/kaggle-imet-2019 #3 (2019), "
       "avBuffer/UNet3plus_pth #23 (2025), aidotse/LeakPro #229 (2025)")
def ne_double_sigmoid(x, x_logits, mu, logvar):
    rec = F.binary_cross_entropy_with_logits(torch.sigmoid(x_logits), x, reduction="none").sum(1)
    return (rec + _kl_rows(mu, logvar)).mean()


@wrong("negative_elbo", "03_vae", ["wrong sign"],
       "KL subtracted: FluxML/model-zoo #147 (2019), littlebirdoflargehead/Paper-Reproduce VAE")
def ne_kl_sign(x, x_logits, mu, logvar):
    rec = F.binary_cross_entropy_with_logits(x_logits, x, reduction="none").sum(1)
    return (rec - _kl_rows(mu, logvar)).mean()


@correct("negative_elbo", "03_vae", "sum reductions divided by the batch size: pytorch/examples style")
def ne_sum_div(x, x_logits, mu, logvar):
    rec = F.binary_cross_entropy_with_logits(x_logits, x, reduction="sum")
    kl = 0.5 * torch.sum(mu ** 2 + logvar.exp() - 1 - logvar)
    return (rec + kl) / x.shape[0]


@correct("negative_elbo", "03_vae", "Bernoulli log_prob: torch.distributions style (CS236-like codebases)")
def ne_bernoulli(x, x_logits, mu, logvar):
    rec = -torch.distributions.Bernoulli(logits=x_logits).log_prob(x).sum(-1)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    kl = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).sum(-1)
    return torch.mean(rec + kl)


# ===================================================== gaussian_log_likelihood (05)
@wrong("gaussian_log_likelihood", "05_likelihoods", ["log(2π)"],
       "no log 2pi: Qinyu-Allen-Zhao/Arinar #1 (2025), log_prob_diagonal_gaussian in a public VAE utils file")
def gll_no_2pi(x, mean, logvar):
    return -0.5 * (logvar + (x - mean) ** 2 / logvar.exp()).sum(-1)


@wrong("gaussian_log_likelihood", "05_likelihoods", ["once per image"],
       "normaliser counted once, not per value: pints-team/pints #1179 (2020), scikit-learn #15329 (2019)")
def gll_2pi_once(x, mean, logvar):
    return -0.5 * math.log(2 * math.pi) - 0.5 * (logvar + (x - mean) ** 2 / logvar.exp()).sum(-1)


@wrong("gaussian_log_likelihood", "05_likelihoods", ["logvar", "variance itself"],
       "log-variance treated as the variance: unit8co/darts #1162 (2022), thomaspinder/GPJax #413 (2023), "
       "issue 31 of this course")
def gll_logvar_as_var(x, mean, logvar):
    return -0.5 * (math.log(2 * math.pi) + torch.log(logvar) + (x - mean) ** 2 / logvar).sum(-1)


@wrong("gaussian_log_likelihood", "05_likelihoods", ["divided the squared error by σ"],
       "std used as the variance: unit8co/darts #1162 (2022), thomaspinder/GPJax #413 (2023), "
       "hill-a/stable-baselines #1060 (2020)")
def gll_std_as_var(x, mean, logvar):
    std = torch.exp(0.5 * logvar)
    return -0.5 * (math.log(2 * math.pi) + logvar + (x - mean) ** 2 / std).sum(-1)


@wrong("gaussian_log_likelihood", "05_likelihoods", ["log of the variance"],
       "log missing in the normaliser: LAMPSPUC/ScoreDrivenModels.jl #9 (2019), "
       "piEsposito/blitz-bayesian-deep-learning #15 (2020)")
def gll_var_in_normaliser(x, mean, logvar):
    return -0.5 * (math.log(2 * math.pi) + logvar.exp() + (x - mean) ** 2 / logvar.exp()).sum(-1)


@wrong("gaussian_log_likelihood", "05_likelihoods", ["averaged over the pixels"],
       "mean over pixels: AppliedDataSciencePartners/WorldModels #2 (2018), orybkin/sigma-vae-pytorch #12 (2026)")
def gll_mean_pixels(x, mean, logvar):
    return (-0.5 * (math.log(2 * math.pi) + logvar + (x - mean) ** 2 / logvar.exp())).mean(-1)


@correct("gaussian_log_likelihood", "05_likelihoods", "Normal.log_prob: torch.distributions style")
def gll_dist(x, mean, logvar):
    return torch.distributions.Normal(mean, torch.exp(0.5 * logvar)).log_prob(x).sum(-1)


@correct("gaussian_log_likelihood", "05_likelihoods", "log 2pi as a float32 tensor constant (issue 33 item 3)")
def gll_f32_const(x, mean, logvar):
    log2pi = torch.log(torch.tensor(2 * math.pi))
    return -0.5 * (log2pi + logvar + (x - mean) ** 2 * torch.exp(-logvar)).sum(-1)


# ========================================================== beta_negative_elbo (05)
@wrong("beta_negative_elbo", "05_likelihoods", ["kl", "summed over the batch"],
       "KL summed over the batch, reconstruction averaged: wiseodd/generative-models #40 (2017), "
       "zdebruine/MMVAE #19 (2024)")
def bne_kl_sum_batch(x, x_logits, mu, logvar, beta):
    rec = F.binary_cross_entropy_with_logits(x_logits, x, reduction="none").sum(-1).mean()
    return rec + beta * _kl_rows(mu, logvar).sum()


@wrong("beta_negative_elbo", "05_likelihoods", ["β weighs the kl"],
       "beta on the reconstruction: scverse/scvi-tools #307 discussion (2019), umautobots #4 (2020)")
def bne_beta_rec(x, x_logits, mu, logvar, beta):
    rec = F.binary_cross_entropy_with_logits(x_logits, x, reduction="none").sum(-1)
    return (beta * rec + _kl_rows(mu, logvar)).mean()


@wrong("beta_negative_elbo", "05_likelihoods", ["averaged over pixels"],
       "BCE per pixel: orybkin/sigma-vae-pytorch #12 (2026), pytorch/examples #294 (2018)")
def bne_bce_mean(x, x_logits, mu, logvar, beta):
    rec = F.binary_cross_entropy_with_logits(x_logits, x, reduction="none").mean(-1)
    return (rec + beta * _kl_rows(mu, logvar)).mean()


@correct("beta_negative_elbo", "05_likelihoods", "sum then divide: pytorch/examples style")
def bne_sum_div(x, x_logits, mu, logvar, beta):
    rec = F.binary_cross_entropy_with_logits(x_logits, x, reduction="sum")
    kl = 0.5 * torch.sum(mu ** 2 + logvar.exp() - 1 - logvar)
    return (rec + beta * kl) / x.shape[0]


# =================================================================== kl_warmup (05)
@wrong("kl_warmup", "05_likelihoods", ["one step ahead"],
       "step + 1: PlaytikaOSS/pybandits #137 (2026), valdersoul/bn-vae #1 (2020, weight raised before use)")
def warm_plus_one(step, warmup_steps):
    return 1.0 if warmup_steps <= 0 else min(1.0, (step + 1) / warmup_steps)


@wrong("kl_warmup", "05_likelihoods", ["keeps growing"],
       "no cap at 1: umautobots/bidirection-trajectory-predicter #4 (2020), StanfordASL/Trajectron-plus-plus #85 (2023)")
def warm_no_cap(step, warmup_steps):
    return 1.0 if warmup_steps <= 0 else step / warmup_steps


@correct("kl_warmup", "05_likelihoods", "clamp form: scvi-tools style")
def warm_clamp(step, warmup_steps):
    if warmup_steps == 0:
        return 1.0
    return float(max(0.0, min(step / warmup_steps, 1.0)))

"""vaelab.training and the 03 reference solution against oracles."""
import math

import pytest
import torch

from grader import SOLUTIONS
from grader.notebooks import exec_solution
from vaelab.fixtures import LinearVAE
from vaelab.training import evaluate, fit, load_checkpoint, save_checkpoint


@pytest.fixture(scope="module")
def sol():
    return exec_solution(SOLUTIONS / "03_vae" / "03_vae.ipynb")


def _data(n=512, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(4, 784, generator=g)
    return base[torch.randint(0, 4, (n,), generator=g)] * 0.9  # four prototypes, intensities in [0, 0.9]


def test_negative_elbo_matches_torch_distributions(sol):
    g = torch.Generator().manual_seed(1)
    x = torch.bernoulli(torch.full((9, 784), 0.3), generator=g)
    x_logits, mu, logvar = 2 * torch.randn(9, 784, generator=g), torch.randn(9, 5, generator=g), torch.randn(9, 5, generator=g)
    D = torch.distributions
    nll = -D.Bernoulli(logits=x_logits).log_prob(x).sum(1)
    kl = D.kl_divergence(D.Normal(mu, (0.5 * logvar).exp()), D.Normal(0.0, 1.0)).sum(1)
    torch.testing.assert_close(sol["negative_elbo"](x, x_logits, mu, logvar), (nll + kl).mean())


def test_iwae_is_above_the_elbo_and_k1_is_the_elbo(sol):
    model = LinearVAE(4, seed=3)
    x = torch.bernoulli(torch.full((16, 784), 0.2), generator=torch.Generator().manual_seed(2))
    torch.manual_seed(0)
    k1 = torch.stack([sol["iwae_bound"](model, x, 1) for _ in range(300)]).mean(0)
    k100 = sol["iwae_bound"](model, x, 100)
    assert k100.mean() > k1.mean() + 1.0
    # E[L_1] is the ELBO: compare the mean over images with a 300-sample average of -negative_elbo
    torch.manual_seed(1)
    elbo = torch.stack([-sol["negative_elbo"](x, *model(x)) for _ in range(300)]).mean()
    assert abs(float(k1.mean() - elbo)) < 0.5, (k1.mean(), elbo)


def test_iwae_handles_k_1000_on_a_large_batch_in_chunks(sol):
    model = LinearVAE(4, seed=0)
    x = torch.bernoulli(torch.full((97, 784), 0.2), generator=torch.Generator().manual_seed(0))
    out = sol["iwae_bound"](model, x, 1000)
    assert out.shape == (97,) and bool(torch.isfinite(out).all())


def test_fit_trains_records_history_and_is_reproducible(sol):
    x = _data()
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = sol["VAE"](latent_dim=4, hidden_dim=32)
        history = fit(model, sol["train_step"], x, x[:64], loss_fn=sol["negative_elbo"], epochs=4,
                      batch_size=64, lr=3e-3, device="cpu")
        runs.append(history)
    h = runs[0]
    assert len(h["train"]) == len(h["test"]) == len(h["seconds"]) == 4
    assert h["train"][-1] < h["train"][0]
    assert h["train"] == runs[1]["train"] and h["test"] == runs[1]["test"]


def test_evaluate_is_the_batch_weighted_mean(sol):
    torch.manual_seed(0)
    model = sol["VAE"](latent_dim=3, hidden_dim=16).eval()
    x = _data(130)
    loss_fn = lambda xb, x_logits, mu, logvar: sol["negative_elbo"](xb, model.decode(mu), mu, logvar)
    whole = evaluate(model, x, loss_fn, batch_size=1000, binarize=False)
    chunked = evaluate(model, x, loss_fn, batch_size=50, binarize=False)
    assert math.isclose(whole, chunked, rel_tol=1e-5)


def test_checkpoint_round_trip(tmp_path, sol):
    model = sol["VAE"](latent_dim=3, hidden_dim=8)
    path = save_checkpoint(tmp_path / "m.pt", model, {"train": [1.0]}, latent_dim=3, hidden_dim=8)
    again, history = load_checkpoint(path, sol["VAE"], device="cpu")
    assert history == {"train": [1.0]}
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
    assert not list(tmp_path.glob("*.tmp"))


def test_numpy_vae_gradients_match_autograd(sol):
    """The speed section's hand-written NumPy VAE computes the same loss and
    gradients as autograd on the same network (float64, so differences are
    round-off only)."""
    import numpy as np
    import torch.nn.functional as F

    net = sol["NumpyVAE"](latent_dim=5, hidden_dim=16, seed=3)
    net.params = [p.astype(np.float64) for p in net.params]
    x = (np.random.default_rng(1).random((7, 784)) > 0.7).astype(np.float64)
    eps = np.random.default_rng(2).standard_normal((7, 5))
    loss, grads = net.loss_and_grads(x, eps)
    tp = [torch.tensor(p, requires_grad=True) for p in net.params]
    w1, b1, wm, bm, wv, bv, w3, b3, w4, b4 = tp
    xt, et = torch.tensor(x), torch.tensor(eps)
    h = torch.relu(xt @ w1 + b1)
    mu, logvar = h @ wm + bm, h @ wv + bv
    logits = torch.relu((mu + torch.exp(0.5 * logvar) * et) @ w3 + b3) @ w4 + b4
    # oracle: torch's own BCE and the KL from torch.distributions
    kl = torch.distributions.kl_divergence(torch.distributions.Normal(mu, torch.exp(0.5 * logvar)),
                                           torch.distributions.Normal(0.0, 1.0)).sum(1)
    reference = (F.binary_cross_entropy_with_logits(logits, xt, reduction="none").sum(1) + kl).mean()
    reference.backward()
    assert abs(loss - float(reference.detach())) < 1e-9 * abs(float(reference.detach()))
    for g, t in zip(grads, tp):
        assert torch.allclose(torch.as_tensor(g), t.grad, rtol=1e-9, atol=1e-12)
    # one Adam step lowers the loss on a fixed batch
    net = sol["NumpyVAE"](latent_dim=5, hidden_dim=16, seed=3, lr=1e-3)
    x32 = x.astype(np.float32)
    first = [net.train_step(x32) for _ in range(30)]
    assert np.mean(first[-3:]) < np.mean(first[:3])

"""Training-loop figures: vaelab.fit against the canonical pytorch/examples
loop, and the loop's achieved matmul FLOP/s against this machine's float32
GEMM throughput at the same sizes."""
from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from grader import SOLUTIONS
from grader.notebooks import exec_solution
from vaelab.data import FASHION_MNIST_DIR, load_mnist
from vaelab.training import evaluate, fit, make_optimizer

BATCH = 128


def data():
    """60k Fashion-MNIST from Debian's dataset-fashion-mnist when installed, else the embedded subset."""
    if FASHION_MNIST_DIR.exists():
        return load_mnist("fashion"), "Fashion-MNIST 60k (Debian dataset-fashion-mnist)"
    return load_mnist("embedded"), "embedded MNIST subset (4,000 train; Fashion-MNIST not installed)"


def _solution():
    return exec_solution(SOLUTIONS / "03_vae" / "03_vae.ipynb")


def canonical_epoch(model, optimizer, loader, device):
    """The pytorch/examples VAE loop: DataLoader batches, sigmoid outputs, BCE on the raw intensities."""
    model.train()
    for (x,) in loader:
        x = x.to(device)
        optimizer.zero_grad()
        x_logits, mu, logvar = model(x)
        recon = torch.sigmoid(x_logits)
        bce = F.binary_cross_entropy(recon, x, reduction="sum")
        kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        ((bce + kld) / len(x)).backward()
        optimizer.step()


def speedup_vs_canonical(epochs: int, device) -> dict:
    ns = _solution()
    split, source = data()
    x_train, x_test = split.x_train, split.x_test
    torch.manual_seed(0)
    ours, theirs = ns["VAE"](20, 400).to(device), ns["VAE"](20, 400).to(device)
    opt_ours = make_optimizer(ours.parameters(), lr=1e-3)  # what fit() uses by default
    opt_theirs = torch.optim.Adam(theirs.parameters(), lr=1e-3)  # what the canonical example uses
    loader = DataLoader(TensorDataset(x_train), batch_size=BATCH, shuffle=True)
    t_ours, t_theirs = [], []
    for epoch in range(epochs):  # alternate, so drifts in machine speed hit both
        start = time.perf_counter()
        canonical_epoch(theirs, opt_theirs, loader, device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        t_theirs.append(time.perf_counter() - start)
        h = fit(ours, ns["train_step"], x_train, epochs=1, batch_size=BATCH, device=device, optimizer=opt_ours,
                seed=epoch)
        t_ours.append(h["seconds"][0])
    elbo_ours = evaluate(ours, x_test, ns["negative_elbo"])
    elbo_theirs = evaluate(theirs, x_test, ns["negative_elbo"])
    return {"data": source, "n_train": len(x_train), "epochs": epochs,
            "seconds_ours": statistics.median(t_ours), "seconds_canonical": statistics.median(t_theirs),
            "speedup": statistics.median(t_theirs) / statistics.median(t_ours),
            "test_neg_elbo_ours": elbo_ours, "test_neg_elbo_canonical": elbo_theirs}


def _step_flops(batch: int, latent: int = 20, hidden: int = 400) -> float:
    """Matmul FLOPs of one training step (forward, and backward without the input gradient of layer 1)."""
    layers = [(784, hidden), (hidden, latent), (hidden, latent), (latent, hidden), (hidden, 784)]
    forward = sum(2 * batch * i * o for i, o in layers)
    weight_grads = forward
    input_grads = forward - 2 * batch * 784 * hidden
    return forward + weight_grads + input_grads


def gemm_ceiling(device, batch: int = BATCH, repeats: int = 200) -> float:
    """Float32 matmul FLOP/s for the shapes of one training step, run back to back."""
    shapes = [(batch, 784, 400), (batch, 400, 40), (batch, 20, 400), (batch, 400, 784),  # forward
              (784, batch, 400), (400, batch, 40), (20, batch, 400), (400, batch, 784),  # weight grads
              (batch, 40, 400), (batch, 400, 20), (batch, 784, 400)]  # input grads
    mats = [(torch.randn(m, k, device=device), torch.randn(k, n, device=device)) for m, k, n in shapes]
    flops = sum(2 * m * k * n for m, k, n in shapes)
    for a, b in mats:
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        for a, b in mats:
            a @ b
    if device.type == "cuda":
        torch.cuda.synchronize()
    return flops * repeats / (time.perf_counter() - start)


def fraction_of_gemm_ceiling(result: dict, device) -> dict:
    steps = -(-result["n_train"] // BATCH)
    achieved = steps * _step_flops(BATCH) / result["seconds_ours"]
    ceiling = gemm_ceiling(device)
    return {"achieved_gflops": achieved / 1e9, "ceiling_gflops": ceiling / 1e9, "fraction": achieved / ceiling}


def gpu_epoch_60k() -> dict:
    """One epoch over 60,000 images on the GPU (random data of MNIST's shape when no 60k set is installed)."""
    device = torch.device("cuda")
    ns = _solution()
    x = torch.rand(60_000, 784)
    torch.manual_seed(0)
    model = ns["VAE"](20, 400)
    fit(model, ns["train_step"], x[:5000], epochs=1, device=device)  # warm-up
    h = fit(model, ns["train_step"], x, epochs=3, device=device)
    return {"device": torch.cuda.get_device_name(), "seconds": min(h["seconds"])}

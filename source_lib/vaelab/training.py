"""The training loop around the student's ``train_step`` (assignment 03) and
checkpoints shared between notebooks (assignment 04 loads 03's model).

Design: the whole data set lives on the training device; each epoch is one
random permutation sliced into batches (no DataLoader, no per-sample Python),
each batch is dynamically binarized on the device, and the running loss is
accumulated on the device too, so the host waits for the GPU only when the
progress bar is refreshed (every ``refresh`` steps), not on every step.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from .data import binarize as binarize_batch
from .data import cache_dir
from .runtime import get_device, progress

__all__ = ["fit", "evaluate", "evaluate_parts", "make_optimizer", "save_checkpoint", "load_checkpoint", "checkpoint_path",
           "bundled_checkpoint"]


def make_optimizer(parameters, lr: float = 1e-3) -> torch.optim.Optimizer:
    """Adam with the fused kernel where this PyTorch build has one (one pass over
    all parameters instead of one per tensor: about 18% faster per step on a
    2-core CPU for the course's VAE)."""
    parameters = list(parameters)
    try:
        return torch.optim.Adam(parameters, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(parameters, lr=lr)


@torch.no_grad()
def evaluate(model, x, loss_fn, batch_size: int = 1000, binarize: bool = True, seed: int = 0) -> float:
    """Mean of ``loss_fn(x, *model(x))`` over ``x`` (binarized with a fixed seed,
    so repeated evaluations of the same model agree)."""
    model.eval()
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(seed)
    total, count = torch.zeros((), device=device), 0
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size].to(device, non_blocking=True)
        if binarize:
            xb = binarize_batch(xb, gen, check=False)
        total += loss_fn(xb, *model(xb)) * len(xb)
        count += len(xb)
    model.train()
    return float(total) / max(count, 1)


@torch.no_grad()
def evaluate_parts(model, x, parts, batch_size: int = 1000, binarize: bool = True, seed: int = 0) -> dict:
    """``parts(model, batch)`` averaged over ``x`` in batches: ``{term: mean over images}``."""
    model.eval()
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(seed)
    totals, count = {}, 0
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size].to(device, non_blocking=True)
        if binarize:
            xb = binarize_batch(xb, gen, check=False)
        for name, value in parts(model, xb).items():
            totals[name] = totals.get(name, 0.0) + float(value) * len(xb)
        count += len(xb)
    model.train()
    return {name: total / max(count, 1) for name, total in totals.items()}


def fit(model, train_step, x_train, x_test=None, *, loss_fn=None, epochs: int = 10, batch_size: int = 128,
        lr: float = 1e-3, device=None, binarize: bool = True, seed: int = 0, optimizer=None,
        refresh: int = 25, desc: str = "training", parts=None) -> dict:
    """Train ``model`` with ``train_step(model, optimizer, x_batch) -> loss``.

    Returns the history ``{"train": [...], "test": [...], "seconds": [...]}``
    (per-epoch mean training loss, test loss when ``x_test`` and ``loss_fn``
    are given, and wall time per epoch) for plotting.

    ``parts(model, x) -> {"reconstruction": r, "kl": k, ...}`` (optional)
    splits the bound into its terms, each a mean over the images of ``x``;
    it is evaluated on ``x_test`` after every epoch (binarized with a fixed
    seed, as the test loss is) and each term gets its own list,
    ``history["test_reconstruction"]``, ``history["test_kl"]``.
    """
    device = torch.device(device) if device is not None else get_device()
    model.to(device).train()
    optimizer = optimizer or make_optimizer(model.parameters(), lr=lr)
    x_train = x_train.to(device)
    n = len(x_train)
    steps_per_epoch = (n + batch_size - 1) // batch_size
    gen = torch.Generator(device=device).manual_seed(seed)
    history = {"train": [], "test": [], "seconds": []}
    bar = None  # made after the first step succeeds: a TODO that raises leaves no empty bar behind
    for epoch in range(epochs):
        start = time.perf_counter()
        order = torch.randperm(n, device=device, generator=gen)
        running = torch.zeros((), device=device)
        for step in range(steps_per_epoch):
            xb = x_train[order[step * batch_size:(step + 1) * batch_size]]
            if binarize:
                xb = binarize_batch(xb, gen, check=False)
            loss = train_step(model, optimizer, xb)
            running += loss.detach()
            if bar is None:
                bar = progress(total=epochs * steps_per_epoch, desc=desc, unit="step")
            bar.update(1)
            if refresh and step % refresh == refresh - 1:
                bar.set_postfix(epoch=epoch + 1, loss=f"{float(running) / (step + 1):.2f}")
        history["train"].append(float(running) / steps_per_epoch)  # one host sync per epoch
        if x_test is not None and loss_fn is not None:
            history["test"].append(evaluate(model, x_test, loss_fn, binarize=binarize))
        if x_test is not None and parts is not None:
            for name, value in evaluate_parts(model, x_test, parts, binarize=binarize).items():
                history.setdefault(f"test_{name}", []).append(value)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        history["seconds"].append(time.perf_counter() - start)
        if bar is not None:
            bar.set_postfix(epoch=epoch + 1, train=f"{history['train'][-1]:.2f}",
                            **({"test": f"{history['test'][-1]:.2f}"} if history["test"] else {}))
    if bar is not None:
        bar.close()
    model.eval()
    return history


def checkpoint_path(name: str) -> Path:
    """Where notebooks keep a named checkpoint: ``$VAELAB_CACHE/checkpoints``."""
    folder = cache_dir() / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{name}.pt"


def bundled_checkpoint(name: str) -> Path:
    """A small trained model that ships with vaelab (``vaelab/checkpoints/<name>.pt``,
    weights stored in float16), so that a notebook opened without the one that
    trains it (04 without 03) starts in seconds instead of training for minutes.

    ``vae_latent20``: assignment 04's ``TrainedVAE(20, 400)`` trained as assignment 03 trains
    it (embedded digits, seed 0, 60 epochs, Adam 1e-3, batch 128, dynamic binarization);
    ``vae_latent2``: ``TrainedVAE(2, 400)`` trained as 04's 2-D cell does (seed 1, 25 epochs)."""
    return Path(__file__).with_name("checkpoints") / f"{name}.pt"


def save_checkpoint(path, model, history=None, dtype=None, **config) -> Path:
    """Save weights, training history and the constructor arguments needed to
    rebuild the model; written atomically. ``dtype`` (e.g. ``torch.float16``)
    stores the floating-point weights smaller; loading casts them back."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cast = (lambda v: v.to(dtype) if dtype is not None and v.is_floating_point() else v)
    payload = {"state_dict": {k: cast(v.detach().cpu()) for k, v in model.state_dict().items()},
               "history": history or {}, "config": config}
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path, model_class=None, device=None):
    """Load a checkpoint. With ``model_class``, rebuild the model from the saved
    config and return ``(model, history)``; without, return the raw dict."""
    payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    if model_class is None:
        return payload
    model = model_class(**payload["config"])
    model.load_state_dict(payload["state_dict"])
    model.to(device or get_device()).eval()
    return model, payload["history"]

"""Figures used across the notebooks. Every helper returns the matplotlib
Figure (and draws nothing globally), so notebooks display it and tests can
inspect it."""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import torch

__all__ = ["autograd_graph", "image_grid", "loss_curves", "manifold", "latent_scatter", "path_comparison"]


def _walk(tensor, names):
    """Nodes and edges of the autograd graph that produced ``tensor``."""
    label_of = {id(t): n for n, t in names.items()}
    nodes, edges, depth = {}, [], {}
    root = ("out", f"{names.get('__out__', 'output')}")
    if tensor.grad_fn is None:
        nodes[root[0]] = root[1] + "\n(no grad_fn: a constant\nto autograd)"
        depth[root[0]] = 0
        return nodes, edges, depth
    nodes[root[0]] = root[1]
    depth[root[0]] = 0
    frontier = [(tensor.grad_fn, root[0], 1)]
    seen = set()
    while frontier:
        fn, parent, d = frontier.pop()
        if fn is None:
            continue
        key = str(id(fn))
        if hasattr(fn, "variable"):  # a leaf tensor that wants gradients
            label = label_of.get(id(fn.variable), "leaf") + "\n(receives grad)"
        else:
            label = type(fn).__name__.replace("Backward0", "").replace("Backward", "")
        nodes[key] = label
        depth[key] = max(depth.get(key, 0), d)
        edges.append((key, parent))
        if key in seen:
            continue
        seen.add(key)
        for nxt, _ in getattr(fn, "next_functions", ()):
            frontier.append((nxt, key, d + 1))
    return nodes, edges, depth


def autograd_graph(tensor: torch.Tensor, names: dict, title: str = "", ax=None):
    """Draw the autograd graph behind ``tensor``, from the leaves (bottom) to
    the output (top). ``names`` maps labels to leaf tensors, e.g.
    ``{"mu": mu, "logvar": logvar}``. A tensor made by ``.sample()`` has no
    graph at all, and the picture says so."""
    nodes, edges, depth = _walk(tensor, names)
    reached = {label.split("\n")[0] for label in nodes.values()}
    bottom = max(depth.values()) + 1 if len(depth) > 1 else 2
    for name in names:  # leaves the output cannot reach: draw them, unconnected
        if not name.startswith("__") and name not in reached:
            nodes[f"cut-{name}"] = f"{name}\n(cut off)"
            depth[f"cut-{name}"] = bottom
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(4, 4))
    levels: dict = {}
    for key, d in depth.items():
        levels.setdefault(d, []).append(key)
    pos = {}
    for d, keys in levels.items():
        for i, key in enumerate(sorted(keys)):
            pos[key] = ((i + 1) / (len(keys) + 1), 1 - d / (max(levels) + 1 if levels else 1))
    for src, dst in edges:
        (x0, y0), (x1, y1) = pos[src], pos[dst]
        ax.annotate("", xy=(x1, y1 - 0.04), xytext=(x0, y0 + 0.04),
                    arrowprops=dict(arrowstyle="->", color="#555555"))
    for key, label in nodes.items():
        colour = "#cde6c7" if "receives grad" in label else "#f4cccc" if "cut off" in label else "#e8e8f4"
        ax.text(*pos[key], label, ha="center", va="center", fontsize=9,
                bbox=dict(boxstyle="round", fc=colour, ec="#444444"))
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.1, 1.1)
    ax.axis("off")
    ax.set_title(title)
    return fig or ax.figure


def image_grid(images, nrow: int | None = None, titles=None, title: str = "", scale: float = 1.0):
    """Show a batch of flattened 28×28 images (tensor or array, shape (N, 784))
    as a grid, returning the Figure."""
    images = torch.as_tensor(images).detach().cpu().float().reshape(-1, 28, 28).numpy()
    n = len(images)
    ncol = nrow or int(math.ceil(math.sqrt(n)))
    nrows = int(math.ceil(n / ncol))
    fig, axes = plt.subplots(nrows, ncol, figsize=(scale * ncol * 0.9, scale * nrows * 0.9 + (0.4 if title else 0)),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i], cmap="gray_r", vmin=0, vmax=1)
            if titles is not None:
                ax.set_title(str(titles[i]), fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def loss_curves(history: dict, ylabel: str = "negative ELBO (nats)", title: str = "", skip: int = 0):
    """Plot each named series of ``history`` (lists of numbers per epoch).

    ``skip`` epochs at the start are drawn but do not set the y-range: the
    first epochs of a VAE sit a hundred nats or more above the rest and would
    flatten every later epoch. The legend names what is off the scale."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    series = {name: np.asarray(values, dtype=float) for name, values in history.items()
              if len(values) and not name.startswith("_")}
    kept = np.concatenate([v[skip:] if len(v) > skip else v for v in series.values()]) if series else np.array([])
    low, high = (float(kept.min()), float(kept.max())) if len(kept) else (0.0, 1.0)
    pad = 0.08 * (high - low or abs(high) or 1.0)
    for name, values in series.items():
        off = [(i + 1, v) for i, v in enumerate(values[:skip])
               if skip and len(values) > skip and not low - pad <= v <= high + pad]
        label = name
        if len(off) == 1:
            label += f" (epoch {off[0][0]}: {off[0][1]:.0f}, off the scale)"
        elif off:
            label += f" (epochs {off[0][0]}–{off[-1][0]} off the scale, up to {max(v for _, v in off):.0f})"
        ax.plot(np.arange(1, len(values) + 1), values, marker="o", ms=3, label=label)
    if skip and len(kept):
        ax.set_ylim(low - pad, high + pad)
    ax.set(xlabel="epoch", ylabel=ylabel, title=title)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def manifold(decode, grid, n: int, title: str = "", extent=None):
    """Decode an (n*n, 2) grid of latent points and tile the Bernoulli means
    into one image, row i holding grid[i*n:(i+1)*n]."""
    with torch.no_grad():
        probs = torch.sigmoid(decode(torch.as_tensor(grid, dtype=torch.float32))).cpu()
    tiles = probs.reshape(n, n, 28, 28).permute(0, 2, 1, 3).reshape(n * 28, n * 28).numpy()
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.imshow(tiles, cmap="gray_r", vmin=0, vmax=1, extent=extent)
    ax.set_title(title)
    if extent is None:
        ax.axis("off")
    fig.tight_layout()
    return fig


def latent_scatter(z, labels, title: str = ""):
    """Scatter 2-D latent codes coloured by digit label."""
    z = torch.as_tensor(z).detach().cpu().numpy()
    labels = torch.as_tensor(labels).cpu().numpy()
    fig, ax = plt.subplots(figsize=(6, 5))
    points = ax.scatter(z[:, 0], z[:, 1], c=labels, cmap="tab10", s=6, alpha=0.8)
    fig.colorbar(points, ax=ax, ticks=range(10), label="digit")
    ax.set(xlabel="z[0]", ylabel="z[1]", title=title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def path_comparison(decode, pairs, typical=None, title: str = ""):
    """Compare latent paths between pairs of codes.

    ``pairs`` is a list of ``(caption, {path name: (steps, d) tensor})``.
    Left: one row of decoded Bernoulli means per path, labelled with the
    pair's caption and the path's name. Right: the norm of ``z`` along every
    path (one colour per path kind, one line style per pair), with the band
    ``typical = (low, high)`` of the norms of real digits' codes shaded."""
    rows = [(caption, name, path) for caption, paths in pairs for name, path in paths.items()]
    steps = max(len(path) for _, _, path in rows)
    fig = plt.figure(figsize=(0.75 * steps + 5.2, 0.8 * len(rows) + 0.9))
    outer = fig.add_gridspec(1, 2, width_ratios=[0.75 * steps, 4.2], wspace=0.28)
    strips = outer[0].subgridspec(len(rows), steps, wspace=0.04, hspace=0.12)
    with torch.no_grad():
        for r, (caption, name, path) in enumerate(rows):
            images = torch.sigmoid(decode(torch.as_tensor(path, dtype=torch.float32))).cpu().reshape(-1, 28, 28)
            for c in range(steps):
                ax = fig.add_subplot(strips[r, c])
                ax.set_xticks([])
                ax.set_yticks([])
                for spine in ax.spines.values():
                    spine.set_visible(False)
                if c < len(images):
                    ax.imshow(images[c].numpy(), cmap="gray_r", vmin=0, vmax=1)
                if c == 0:
                    ax.set_ylabel(f"{caption}\n{name}", rotation=0, ha="right", va="center", fontsize=8)
    ax = fig.add_subplot(outer[1])
    styles = ["-", "--", ":", "-."]
    colours = {}
    for r, (caption, name, path) in enumerate(rows):
        pair_index = [c for c, _ in pairs].index(caption)
        colour = colours.setdefault(name, f"C{len(colours)}")
        norms = torch.as_tensor(path).detach().float().norm(dim=1).cpu().numpy()
        ax.plot(np.linspace(0, 1, len(norms)), norms, styles[pair_index % len(styles)], color=colour, marker="o", ms=3,
                label=f"{name}, {caption}")
    if typical is not None:
        ax.axhspan(*typical, color="0.85", zorder=0, label="norms of test digits' codes (5–95 %)")
    ax.set(xlabel="position t along the path", ylabel="‖z‖", title="norm of z along each path")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=7, loc="lower left")
    ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig

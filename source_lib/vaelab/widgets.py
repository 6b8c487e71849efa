"""Interactive tools built from plain ipywidgets. Each builder returns the
widget (it does not display it), so notebooks show it and tests drive it by
setting slider values from code."""
from __future__ import annotations

import math

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
import torch

__all__ = ["density_explorer"]


def density_explorer(reparameterize, n: int = 5000, seed: int = 0):
    """Sliders for mu and log-variance; a histogram of ``reparameterize(mu,
    logvar, eps)`` over one fixed batch of noise against the analytic density
    N(mu, exp(logvar)). Moving a slider transforms the *same* eps, which is the
    point of the trick: the randomness stays put while the parameters move."""
    eps = torch.randn(n, generator=torch.Generator().manual_seed(seed))
    mu_slider = W.FloatSlider(value=0.0, min=-3.0, max=3.0, step=0.1, description="mu")
    logvar_slider = W.FloatSlider(value=0.0, min=-3.0, max=2.0, step=0.1, description="log σ²")
    out = W.Output()
    status = W.HTML()

    def redraw(*_):
        mu = torch.tensor(mu_slider.value)
        logvar = torch.tensor(logvar_slider.value)
        try:
            samples = reparameterize(mu, logvar, eps)
        except NotImplementedError:
            status.value = "<i>Complete <code>reparameterize</code> above to see samples.</i>"
            return
        sigma = math.exp(0.5 * logvar_slider.value)
        grid = np.linspace(-8, 8, 400)
        density = np.exp(-0.5 * ((grid - mu_slider.value) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
        sample = torch.as_tensor(samples).detach().double()
        status.value = (f"sample mean {sample.mean():.3f} (exact {mu_slider.value:.3f}) · "
                        f"sample std {sample.std():.3f} (exact {sigma:.3f})")
        with out:
            out.clear_output(wait=True)
            fig, ax = plt.subplots(figsize=(6, 3))
            ax.hist(sample.numpy(), bins=80, range=(-8, 8), density=True, alpha=0.6, label="reparameterized samples")
            ax.plot(grid, density, "k", lw=2, label="N(mu, exp(logvar))")
            ax.set(xlim=(-8, 8), ylim=(0, max(0.5, 1.2 * density.max())), xlabel="z")
            ax.legend(loc="upper left")
            plt.show()

    mu_slider.observe(redraw, "value")
    logvar_slider.observe(redraw, "value")
    box = W.VBox([W.HBox([mu_slider, logvar_slider]), status, out])
    box.redraw = redraw
    redraw()
    return box

"""Interactive tools built from plain ipywidgets. Each builder returns the
widget (it does not display it), so notebooks show it and tests drive it by
setting slider values from code."""
from __future__ import annotations

import math

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
import torch

__all__ = ["density_explorer", "latent_explorer", "LatentExplorer", "to_png"]


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


def to_png(probabilities, scale: int = 4) -> bytes:
    """Encode one 784-pixel image of Bernoulli means as PNG bytes (black digit
    on white, enlarged by ``scale`` with nearest-neighbour pixels)."""
    import io

    from PIL import Image

    pixels = torch.as_tensor(probabilities).detach().float().reshape(28, 28).clamp(0, 1).cpu().numpy()
    pixels = (255 - np.rint(pixels * 255)).astype(np.uint8)
    if scale > 1:
        pixels = pixels.repeat(scale, axis=0).repeat(scale, axis=1)
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


class LatentExplorer(W.VBox):
    """Sliders over latent dimensions with the decoded image beside them.

    ``decode(z)`` (or ``decode(z, condition)`` when ``conditions`` is given)
    maps a (1, latent_dim) tensor to 784 logits. Moving a slider re-decodes and
    replaces the bytes of an ``Image`` widget: no matplotlib redraw, so an
    update takes about a millisecond.
    """

    def __init__(self, decode, latent_dim: int, *, encodings=None, labels=None, conditions=None,
                 max_sliders: int = 8, scale: int = 5, seed: int = 0, slider_range: float = 3.0):
        self._decode = decode
        self.latent_dim = latent_dim
        self.encodings = None if encodings is None else torch.as_tensor(encodings).detach().float().cpu()
        self.labels = labels
        self.scale = scale
        self.generator = torch.Generator().manual_seed(seed)
        self.z = torch.zeros(latent_dim) if self.encodings is None else self.encodings[0].clone()
        self.update_seconds: list = []
        self._syncing = False

        # The vaelab-* classes name the parts in the page (browser tests find them by these).
        self.image = W.Image(format="png", width=28 * scale, height=28 * scale)
        self.image.add_class("vaelab-latent-image")
        self.sliders = [W.FloatSlider(value=float(self.z[d]), min=-slider_range, max=slider_range, step=0.05,
                                      description=f"z[{d}]", continuous_update=True,
                                      layout=W.Layout(width="320px")) for d in range(latent_dim)]
        for d, slider in enumerate(self.sliders):
            slider.add_class("vaelab-latent-slider")
            slider.observe(lambda change, d=d: self._on_slider(d, change["new"]), "value")
        shown = list(range(min(latent_dim, max_sliders)))
        self.dims = W.SelectMultiple(options=list(range(latent_dim)), value=shown, rows=min(latent_dim, 8),
                                     description="show dims", layout=W.Layout(width="180px"),
                                     disabled=latent_dim <= max_sliders)
        self.dims.observe(lambda _: self._layout_sliders(), "value")
        self.max_sliders = max_sliders
        self.slider_box = W.VBox()

        n_digits = 0 if self.encodings is None else len(self.encodings)
        self.digit = W.BoundedIntText(value=0, min=0, max=max(n_digits - 1, 0), description="test digit",
                                      disabled=n_digits == 0, layout=W.Layout(width="180px"))
        self.reset_button = W.Button(description="reset to digit", icon="undo", disabled=n_digits == 0)
        self.random_button = W.Button(description="random z ~ N(0, I)", icon="random")
        self.reset_button.on_click(lambda _: self.reset())
        self.random_button.on_click(lambda _: self.randomize())
        self.condition = None
        controls = [self.digit, self.reset_button, self.random_button]
        if conditions is not None:
            self.condition = W.ToggleButtons(options=list(conditions), description="class",
                                             style={"button_width": "32px"})
            self.condition.add_class("vaelab-class-selector")
            self.condition.observe(lambda _: self.render(), "value")
            controls.insert(0, self.condition)
        self.caption = W.HTML()
        super().__init__([W.HBox([self.image, W.VBox([self.slider_box, self.caption])]),
                          W.HBox(controls), self.dims])
        self._layout_sliders()
        self.render()

    # -- state -------------------------------------------------------------
    def set_z(self, z) -> None:
        """Move every dimension (sliders follow) and re-render once."""
        self.z = torch.as_tensor(z, dtype=torch.float32).reshape(self.latent_dim).clone()
        self._syncing = True
        try:
            for d, slider in enumerate(self.sliders):
                slider.value = float(max(slider.min, min(slider.max, float(self.z[d]))))
        finally:
            self._syncing = False
        self.render()

    def reset(self) -> None:
        """Back to the encoding of the chosen test digit."""
        if self.encodings is not None:
            self.set_z(self.encodings[self.digit.value])

    def randomize(self) -> None:
        """A fresh draw from the prior."""
        self.set_z(torch.randn(self.latent_dim, generator=self.generator))

    def _on_slider(self, d: int, value: float) -> None:
        if self._syncing:
            return
        self.z[d] = value
        self.render()

    def _layout_sliders(self) -> None:
        chosen = list(self.dims.value)[: self.max_sliders] or [0]
        self.slider_box.children = [self.sliders[d] for d in chosen]

    # -- drawing -----------------------------------------------------------
    @torch.no_grad()
    def render(self) -> bytes:
        import time

        start = time.perf_counter()
        z = self.z.reshape(1, -1)
        if self.condition is not None:
            logits = self._decode(z, self.condition.value)
        else:
            logits = self._decode(z)
        self.image.value = to_png(torch.sigmoid(torch.as_tensor(logits).float()), self.scale)
        self.update_seconds.append(time.perf_counter() - start)
        label = "" if self.labels is None or self.encodings is None else f" · digit label {int(self.labels[self.digit.value])}"
        self.caption.value = f"<small>|z| = {float(self.z.norm()):.2f}{label}</small>"
        return self.image.value


def latent_explorer(model, *, encodings=None, labels=None, conditions=None, num_classes: int = 10, **kwargs):
    """Build a :class:`LatentExplorer` for a model with ``decode(z)`` (a VAE)
    or ``decode(z, y_onehot)`` (a conditional VAE, when ``conditions`` is
    given). The model is used on the CPU; it is not modified."""
    device = next(model.parameters()).device
    latent_dim = model.latent_dim
    if conditions is None:
        def decode(z):
            return model.decode(z.to(device)).cpu()
    else:
        def decode(z, condition):
            y = torch.nn.functional.one_hot(torch.tensor([int(condition)]), num_classes).float().to(device)
            return model.decode(z.to(device), y).cpu()
    return LatentExplorer(decode, latent_dim, encodings=encodings, labels=labels, conditions=conditions, **kwargs)

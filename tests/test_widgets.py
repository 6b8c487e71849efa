"""The interactive tools, driven headlessly: set slider values from code,
press buttons, and check the image bytes and state they produce."""
import io

import numpy as np
import torch
from PIL import Image

from vaelab.fixtures import LinearVAE
from vaelab.widgets import density_explorer, latent_explorer, to_png


class TinyCVAE(torch.nn.Module):
    latent_dim = 3

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(13, 784, generator=torch.Generator().manual_seed(0)))

    def decode(self, z, y):
        return torch.cat([z, y], 1) @ self.w


def _pixels(png: bytes):
    return np.asarray(Image.open(io.BytesIO(png)))


def test_png_encoding_is_the_decoded_image():
    probs = torch.zeros(784)
    probs[:28] = 1.0  # the first row is ink
    pixels = _pixels(to_png(probs, scale=2))
    assert pixels.shape == (56, 56)
    assert (pixels[:2] == 0).all() and (pixels[2:] == 255).all()  # black ink on white


def test_slider_changes_image_and_same_z_gives_same_bytes():
    model = LinearVAE(latent_dim=4, seed=0)
    explorer = latent_explorer(model)
    first = explorer.image.value
    explorer.sliders[2].value = 2.5
    moved = explorer.image.value
    assert moved != first and float(explorer.z[2]) == 2.5
    # the image is exactly the decoder's output for the current z
    expected = to_png(torch.sigmoid(model.decode(explorer.z.reshape(1, -1))), explorer.scale)
    assert moved == expected
    explorer.sliders[2].value = 0.0
    assert explorer.image.value == first


def test_reset_and_random_buttons_do_what_they_say():
    model = LinearVAE(latent_dim=3, seed=1)
    encodings = torch.randn(5, 3, generator=torch.Generator().manual_seed(2))
    explorer = latent_explorer(model, encodings=encodings, labels=torch.arange(5))
    explorer.digit.value = 3
    explorer.reset_button.click()
    assert torch.allclose(explorer.z, encodings[3])
    assert np.allclose([s.value for s in explorer.sliders], encodings[3].clamp(-3, 3).numpy())  # sliders follow
    before = explorer.image.value
    draws = []
    for _ in range(300):
        explorer.random_button.click()
        draws.append(explorer.z.clone())
    assert explorer.image.value != before
    draws = torch.stack(draws)
    assert abs(float(draws.mean())) < 5 / (900 ** 0.5) and abs(float(draws.std()) - 1) < 0.15  # N(0, I)


def test_more_than_eight_dimensions_offers_a_choice():
    model = LinearVAE(latent_dim=12, seed=0)
    explorer = latent_explorer(model)
    assert len(explorer.slider_box.children) == 8 and not explorer.dims.disabled
    explorer.dims.value = (9, 11)
    assert [s.description for s in explorer.slider_box.children] == ["z[9]", "z[11]"]
    z_before = explorer.z.clone()
    explorer.sliders[11].value = -1.0
    assert torch.equal(explorer.z[:11], z_before[:11])  # hidden dimensions stay put


def test_class_selector_changes_the_image():
    explorer = latent_explorer(TinyCVAE(), conditions=range(10))
    first = explorer.image.value
    explorer.condition.value = 7
    assert explorer.image.value != first
    explorer.condition.value = 0
    assert explorer.image.value == first


def test_update_is_timed_per_render():
    explorer = latent_explorer(LinearVAE(latent_dim=2, seed=0))
    n = len(explorer.update_seconds)
    explorer.sliders[0].value = 1.0
    assert len(explorer.update_seconds) == n + 1 and explorer.update_seconds[-1] > 0


def test_density_explorer_uses_the_given_reparameterize():
    calls = []

    def reparameterize(mu, logvar, eps):
        calls.append((float(mu), float(logvar)))
        return mu + torch.exp(0.5 * logvar) * eps

    box = density_explorer(reparameterize, n=2000)
    mu_slider, logvar_slider = box.children[0].children
    mu_slider.value = 1.5
    logvar_slider.value = -1.0
    assert calls[-1] == (1.5, -1.0)
    assert "sample mean" in box.children[1].value


def test_density_explorer_with_blank_todo_says_so():
    def blank(mu, logvar, eps):
        raise NotImplementedError()

    box = density_explorer(blank, n=100)
    assert "Complete" in box.children[1].value

"""Feature visualization: an image, optimized from noise, that a unit responds to strongly.

The lucid/lucent recipe, written here: the image is parameterized by its Fourier spectrum
scaled by 1/frequency (so the optimizer prefers natural, low-frequency structure), in a
decorrelated colour space (ImageNet's colour covariance square root), squashed by a sigmoid;
every step sees it padded, jittered, scaled and rotated at random, so only patterns that
survive those transforms grow. Grayscale models get one channel and no colour mixing.
"""

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from deepvis.errors import Cancelled, DeepvisError
from deepvis.inputspec import pixel_tensor
from deepvis.loading import LoadedModel
from deepvis.probe import Probe

# Square root of ImageNet's RGB covariance (lucid's ``color_correlation_svd_sqrt``).
COLOR_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
COLOR_SQRT = COLOR_SQRT / COLOR_SQRT.norm(dim=0).max()


@dataclass(frozen=True)
class VizSettings:
    layer: str
    unit: int
    size: int = 128
    steps: int = 256
    lr: float = 0.05
    decay: float = 1.0  # spectrum scale 1/f^decay


def _frequencies(h: int, w: int) -> torch.Tensor:
    fy = torch.fft.fftfreq(h)[:, None]
    fx = torch.fft.rfftfreq(w)[None, :]
    return torch.sqrt(fx * fx + fy * fy)


class UnitVisualizer:
    def __init__(self, model: LoadedModel, probe: Probe | None = None):
        self.model = model
        self.probe = probe or Probe(model.module, model.example_input())
        spec = model.spec
        self.channels = spec.channels
        self.mean = torch.tensor(spec.mean, dtype=torch.float32).reshape(1, -1, 1, 1)
        self.std = torch.tensor(spec.std, dtype=torch.float32).reshape(1, -1, 1, 1)

    def _image(self, spectrum: torch.Tensor, scale: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """Pixels in [0, 1], (1, C, H, W), from the parameters."""
        spatial = torch.fft.irfft2(torch.view_as_complex((spectrum * scale).contiguous()), s=(h, w), norm="ortho") / 4.0
        if self.channels == 3:
            spatial = torch.einsum("chw,dc->dhw", spatial, COLOR_SQRT)
        return torch.sigmoid(spatial)[None]

    def _transform(self, image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Pad, jitter, scale, rotate, jitter again: lucid's standard robustness transforms."""
        def rand(lo, hi):
            return lo + (hi - lo) * float(torch.rand((), generator=generator))

        x = F.pad(image, (12, 12, 12, 12), mode="constant", value=0.5)
        dy, dx = torch.randint(-8, 9, (2,), generator=generator).tolist()
        x = torch.roll(x, (dy, dx), (2, 3))
        angle = math.radians(rand(-10, 10))
        s = rand(0.9, 1.1)
        theta = torch.tensor([[s * math.cos(angle), -s * math.sin(angle), 0.0],
                              [s * math.sin(angle), s * math.cos(angle), 0.0]], dtype=x.dtype)[None]
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        dy, dx = torch.randint(-4, 5, (2,), generator=generator).tolist()
        return torch.roll(x, (dy, dx), (2, 3))

    def unit_value(self, pixels: torch.Tensor, layer: str, unit: int) -> torch.Tensor:
        """The unit's spatial-mean activation for images in [0, 1] (N, C, H, W)."""
        acts = self.probe.capture_until((pixels - self.mean) / self.std, layer)
        channel = acts[:, unit]
        return channel.reshape(channel.shape[0], -1).mean(1)

    def run(self, settings: VizSettings, seed: int = 0, progress=None, cancel=None) -> np.ndarray:
        """The optimized image, uint8 (size, size, 3)."""
        info = self.probe.layer(settings.layer)
        if not 0 <= settings.unit < info.channels:
            raise DeepvisError(f"{info.name} has {info.channels} units; {settings.unit} is out of range")
        h = w = settings.size
        generator = torch.Generator().manual_seed(seed)
        spectrum = (0.01 * torch.randn(self.channels, h, w // 2 + 1, 2, generator=generator)).requires_grad_(True)
        # Unnormalized 1/f scale, and the image divided by lucid's "magic" 4 below: the spectrum's
        # low frequencies carry the picture; normalizing the scale to 1 leaves a grey image.
        scale = (1.0 / torch.clamp(_frequencies(h, w), min=1.0 / max(h, w)) ** settings.decay)[None, :, :, None]
        opt = torch.optim.Adam([spectrum], lr=settings.lr)
        with torch.enable_grad():
            for step in range(settings.steps):
                if cancel is not None and cancel.is_set():
                    raise Cancelled()
                opt.zero_grad()
                image = self._transform(self._image(spectrum, scale, h, w), generator)
                loss = -self.unit_value(image, settings.layer, settings.unit).sum()
                loss.backward()
                opt.step()
                if progress is not None and step % 8 == 0:
                    progress((step + 1) / settings.steps, -float(loss.detach()))
        with torch.no_grad():
            pixels = self._image(spectrum, scale, h, w)[0]
        out = pixels.mul(255).round().byte().permute(1, 2, 0).numpy()
        return np.ascontiguousarray(np.repeat(out, 3, axis=2) if out.shape[2] == 1 else out)

    def value_of(self, image: np.ndarray, layer: str, unit: int) -> float:
        """The unit's spatial-mean activation on a uint8 image at its own size."""
        x = pixel_tensor(image, self.channels)
        with torch.inference_mode():
            return float(self.unit_value(x, layer, unit)[0])

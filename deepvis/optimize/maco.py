"""MACO feature visualization (Fel et al., "Unlocking Feature Visualization for Deeper Networks
with MAgnitude Constrained Optimization", NeurIPS 2023).

Only the phase of the picture's Fourier spectrum is optimized; its magnitude stays that of
natural images (a template averaged from photos, see resources/generate/make_maco_template.py),
so the picture cannot drift into the high-frequency colour noise that deeper networks' units
otherwise grow. Each step the model sees a few random crops of the picture with a little
noise. The gradient magnitude each pixel received, summed over the run, is MACO's
transparency map: where the unit looked.
"""

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F

from deepvis.errors import DeepvisError
from deepvis.optimize.steps import after_step, as_rgb_uint8, optimization_steps
from deepvis.resources import MACO_TEMPLATE

CROPS = 4  # random crops the model sees per step
CROP_SCALE = (0.5, 1.0)  # a crop's side as a fraction of the picture's
NOISE = 0.05  # std of the noise added to each crop, in [0, 1] pixel units
LR = 0.25  # Adam's step on the phase, radians
CONTRAST = 1.5  # the standardized picture is scaled by this before the sigmoid


@functools.lru_cache(maxsize=1)
def _template() -> np.ndarray:
    """The committed template, read once (a layer's visualization runs a batch at a time)."""
    try:
        template = np.load(MACO_TEMPLATE).astype(np.float32)
    except (OSError, ValueError) as exc:
        raise DeepvisError(f"cannot read MACO's magnitude template {MACO_TEMPLATE}: {exc}") from None
    template.flags.writeable = False
    return template


def magnitude_template(size: int, channels: int) -> torch.Tensor:
    """The natural-image magnitude at the frequencies of a ``size`` x ``size`` picture, float32
    (channels, size, size // 2 + 1); a grey model gets the channels' mean."""
    template = _template()
    n = template.shape[1]
    # The template's grid is n x n: each frequency of the picture's grid takes the nearest one.
    rows = np.round(np.fft.fftfreq(size) * n).astype(int) % n
    cols = np.minimum(np.round(np.fft.rfftfreq(size) * n).astype(int), template.shape[2] - 1)
    magnitude = template[:, rows][:, :, cols]
    if channels == 1:
        magnitude = magnitude.mean(0, keepdims=True)
    return torch.from_numpy(np.ascontiguousarray(magnitude))


def _picture(phase: torch.Tensor, magnitude: torch.Tensor, size: int, colour) -> torch.Tensor:
    """Pixels in [0, 1], (N, C, H, W), from the phases (N, C, H, W//2+1)."""
    spatial = torch.fft.irfft2(torch.polar(magnitude.expand_as(phase), phase), s=(size, size), norm="ortho")
    flat = spatial.flatten(1)
    spatial = (spatial - flat.mean(1).view(-1, 1, 1, 1)) / (flat.std(1).view(-1, 1, 1, 1) + 1e-6)
    if colour is not None:
        spatial = torch.einsum("nchw,dc->ndhw", spatial, colour)
    return torch.sigmoid(CONTRAST * spatial)


def _crops(image: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` random square crops of each picture, resized back to its size, plus noise:
    (count * N, C, H, W), crop-major."""
    n = image.shape[0]
    lo, hi = CROP_SCALE
    scale = lo + (hi - lo) * torch.rand(count * n, generator=generator)
    shift = (1 - scale)[:, None] * (2 * torch.rand(count * n, 2, generator=generator) - 1)
    theta = torch.zeros(count * n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = scale
    theta[:, :, 2] = shift
    batch = image.repeat(count, 1, 1, 1)
    grid = F.affine_grid(theta, list(batch.shape), align_corners=False)
    crops = F.grid_sample(batch, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return crops + NOISE * torch.randn(crops.shape, generator=generator)


def run_maco(viz, settings, units: list[int], colour: torch.Tensor | None, redirect, seed: int = 0, progress=None,
             cancel=None, between=None, deadline: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """MACO pictures of ``units`` of ``settings.layer``, optimized together: uint8 (N, size,
    size, 3) and their transparency maps, float32 (N, size, size) in [0, 1]. ``viz`` is the
    UnitVisualizer (its ``unit_value``), ``colour`` the colour-decorrelation matrix (None for
    grey models) and ``redirect`` the context that redirects the model's ReLUs, both the
    Fourier recipe's. ``deadline`` (a ``time.perf_counter()`` value) ends the run early: the
    bench gives recipes equal time."""
    size = settings.size
    generator = torch.Generator().manual_seed(seed)
    magnitude = magnitude_template(size, viz.channels)
    phase = (2 * math.pi * torch.rand(len(units), viz.channels, size, size // 2 + 1, generator=generator)
             - math.pi).requires_grad_(True)
    opt = torch.optim.Adam([phase], lr=LR)
    transparency = torch.zeros(len(units), size, size)
    targets = list(units) * CROPS
    with torch.enable_grad(), redirect:
        for step in optimization_steps(settings.steps, cancel, deadline):
            opt.zero_grad()
            image = _picture(phase, magnitude, size, colour)
            image.retain_grad()
            values = viz.unit_value(_crops(image, CROPS, generator), settings.layer, targets, settings.neuron)
            loss = -values.sum() / CROPS
            loss.backward()
            transparency += image.grad.detach().abs().sum(1)
            opt.step()
            after_step(step, settings.steps, loss, len(units), between, progress)
    with torch.no_grad():
        pixels = _picture(phase, magnitude, size, colour)
    peak = transparency.flatten(1).amax(1).clamp(min=1e-12).view(-1, 1, 1)
    alpha = (transparency / peak).numpy().astype(np.float32)
    return as_rgb_uint8(pixels), alpha

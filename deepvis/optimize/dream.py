"""DeepDream: gradient ascent on an image to amplify what a layer (or one unit) responds to.

The classic recipe: an octave pyramid (the image is dreamed small first, and the detail it
gained is carried up to each larger octave), normalized gradient steps, a random roll
(jitter) before each step so the dream does not lock onto the pixel grid, and optional
Gaussian smoothing of the gradient. Works on the image at its own size and on any channel
count the model takes; each step is yielded as a partial result and a ``cancel`` event stops
it between steps.
"""

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from deepvis.errors import Cancelled, DeepvisError, require_finite
from deepvis.core.defaults import WORK_MEMORY_BYTES
from deepvis.core.inputspec import pixel_tensor
from deepvis.core.loading import LoadedModel
from deepvis.core.probe import Probe

MIN_DREAM_SIDE = 16  # px; below this the octave pyramid has nothing to shrink


@dataclass(frozen=True)
class DreamSettings:
    layer: str
    unit: int | None = None  # None: the whole layer's L2 norm
    octaves: int = 4
    octave_scale: float = 1.4
    steps: int = 10  # per octave
    step_size: float = 0.02  # in units of the input's normalized range per step
    jitter: int = 16  # pixels of random roll before each step
    smooth: float = 0.0  # Gaussian sigma (pixels) applied to the gradient; 0 = none

    def check(self) -> None:
        """Raise a DeepvisError for values no dream can use (NaN, negative, absurd)."""
        problems = []
        if self.unit is not None and self.unit < 0:
            problems.append(f"unit {self.unit} is negative")
        if not 1 <= self.octaves <= 12:
            problems.append(f"octaves must be 1..12, got {self.octaves}")
        if not 1 <= self.steps <= 1000:
            problems.append(f"steps must be 1..1000 per octave, got {self.steps}")
        if not (math.isfinite(self.octave_scale) and 1.0 < self.octave_scale <= 4.0):
            problems.append(f"the octave scale must be above 1 and at most 4, got {self.octave_scale}")
        if not (math.isfinite(self.step_size) and 0 < self.step_size <= 10):
            problems.append(f"the step size must be above 0 and at most 10, got {self.step_size}")
        if not 0 <= self.jitter <= 512:
            problems.append(f"jitter must be 0..512 px, got {self.jitter}")
        if not (math.isfinite(self.smooth) and 0 <= self.smooth <= 64):
            problems.append(f"smooth must be 0..64 px, got {self.smooth}")
        if problems:
            raise DeepvisError("; ".join(problems))


MAX_DREAM_BYTES = WORK_MEMORY_BYTES  # what a dream's full-size octave may keep for its backward pass


@dataclass
class DreamStep:
    octave: int
    step: int
    total_steps: int
    image: np.ndarray  # uint8 (H, W, 3) at the input's size
    objective: float


def objective(acts: torch.Tensor, unit: int | None) -> torch.Tensor:
    """What the dream raises: the layer's mean squared activation, or one unit's mean."""
    if unit is not None:
        return acts[:, unit].mean()
    return (acts ** 2).mean()


class Dreamer:
    """DeepDream for one model; ``run`` yields each step."""

    def __init__(self, model: LoadedModel, probe: Probe | None = None):
        if isinstance(model.module, torch.jit.ScriptModule) and probe is None:
            raise DeepvisError("dreams need the model's Python modules (load the architecture with --weights)")
        self.model = model
        self.probe = probe or Probe(model.module, model.example_input())
        spec = model.spec
        self.mean = torch.tensor(spec.mean, dtype=torch.float32).reshape(1, -1, 1, 1).to(model.device)
        self.std = torch.tensor(spec.std, dtype=torch.float32).reshape(1, -1, 1, 1).to(model.device)

    def to_input(self, image: np.ndarray) -> torch.Tensor:
        """uint8 (H, W[, C]) at its own size -> normalized (1, C, H, W) for the model's channels."""
        x = pixel_tensor(image, self.model.spec.channels).to(self.model.device)
        return (x - self.mean) / self.std

    def to_image(self, x: torch.Tensor) -> np.ndarray:
        pixels = (x * self.std + self.mean).clamp(0, 1)[0].mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
        return np.ascontiguousarray(np.repeat(pixels, 3, axis=2) if pixels.shape[2] == 1 else pixels[:, :, :3])

    def score(self, image: np.ndarray, settings: DreamSettings) -> float:
        """The objective of ``image`` at the size it is dreamed at (its own, where the model
        takes it)."""
        x = self.to_input(image)
        size = self.octave_sizes(*x.shape[2:], settings)[-1]
        if size != tuple(x.shape[2:]):
            x = F.interpolate(x, size=size, mode="area")
        with torch.inference_mode():
            acts = self.probe.capture_until(x, settings.layer)
        return float(objective(acts.float(), settings.unit))

    def check(self, settings: DreamSettings, image: np.ndarray | None = None) -> None:
        """Raise a DeepvisError for settings, a layer or an image that cannot give a dream."""
        settings.check()
        info = self.probe.layer(settings.layer)
        if settings.unit is not None and not 0 <= settings.unit < info.channels:
            raise DeepvisError(f"{info.name} has {info.channels} units; {settings.unit} is out of range")
        if not info.spatial:
            raise DeepvisError(f"DeepDream needs a layer with a spatial map; {info.name} outputs "
                               f"{tuple(info.shape)} (pick a convolution layer)")
        if image is not None:
            h, w = image.shape[:2]
            if min(h, w) < MIN_DREAM_SIDE:
                raise DeepvisError(f"the image is {w}x{h} px; dreams need at least {MIN_DREAM_SIDE} px a side")
            need = self.backprop_bytes_per_pixel() * h * w
            if need > MAX_DREAM_BYTES:
                raise DeepvisError(f"a dream of this {w}x{h} image keeps about {need / 2**30:.1f} GiB for its backward "
                                   f"pass at full size (at most {MAX_DREAM_BYTES / 2**30:.0f} GiB): shrink the image")
            try:
                require_finite(self.score(image, settings), f"the objective of {info.name}")
            except RuntimeError as exc:  # a network whose pooling cannot shrink a map this small
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise DeepvisError(f"the model cannot run on this {w}x{h} image: {first}") from None

    def backprop_bytes_per_pixel(self) -> float:
        """What the forward pass keeps for the backward pass, per input pixel: every layer's output
        at the model's own input size (the dry run's shapes), over that size's pixels. The last
        octave runs at the image's full size, so this times its pixels is a dream's memory."""
        pixels = self.model.spec.height * self.model.spec.width
        return self.probe.activation_bytes() / max(1, pixels)

    def octave_sizes(self, h: int, w: int, settings: DreamSettings) -> list[tuple[int, int]]:
        """The size of each octave, smallest first, for an image of h x w: the image's own size
        and smaller ones. A model that runs only at its input size (a vision transformer's
        position embeddings, a fixed linear head) dreams every octave at that size."""
        sizes = [(max(8, round(h / settings.octave_scale ** k)), max(8, round(w / settings.octave_scale ** k)))
                 for k in reversed(range(settings.octaves))]
        runs = [self.probe.runs_at((self.model.spec.channels, *size), settings.layer, self.model.device)
                for size in (sizes[0], sizes[-1])]
        if all(runs):
            return sizes
        return [(self.model.spec.height, self.model.spec.width)] * settings.octaves

    def step(self, x: torch.Tensor, settings: DreamSettings, generator: torch.Generator,
             low: torch.Tensor, high: torch.Tensor) -> tuple[torch.Tensor, float]:
        """One normalized gradient-ascent step with jitter; returns the new x and the objective."""
        j = settings.jitter
        dy, dx = (torch.randint(-j, j + 1, (2,), generator=generator).tolist() if j > 0 else (0, 0))
        rolled = torch.roll(x, (dy, dx), (2, 3)).detach().requires_grad_(True)
        with torch.enable_grad():
            value = objective(self.probe.capture_until(rolled, settings.layer), settings.unit)
            grad, = torch.autograd.grad(value, rolled)
        grad = torch.roll(grad, (-dy, -dx), (2, 3))
        if settings.smooth > 0:
            grad = _blur(grad, settings.smooth)
        grad = grad / (grad.abs().mean() + 1e-8)
        x = torch.maximum(torch.minimum(x + settings.step_size * grad, high), low)
        return x, float(value.detach())

    def run(self, image: np.ndarray, settings: DreamSettings, seed: int = 0, cancel=None) -> Iterator[DreamStep]:
        self.check(settings)
        base = self.to_input(image)
        h, w = base.shape[2:]
        low, high = (0 - self.mean) / self.std, (1 - self.mean) / self.std
        sizes = self.octave_sizes(h, w, settings)
        if sizes[-1] != (h, w):  # a model of one input size: the image dreamed at that size
            base = F.interpolate(base, size=sizes[-1], mode="area")
            # The jitter is in the image's pixels: 16 of them are half a 32-pixel ViT input.
            settings = replace(settings, jitter=round(settings.jitter * sizes[-1][0] / h))
        generator = torch.Generator().manual_seed(seed)
        detail = torch.zeros_like(base[:, :, :sizes[0][0], :sizes[0][1]])
        total = settings.octaves * settings.steps
        for octave, size in enumerate(sizes):
            scaled = F.interpolate(base, size=size, mode="bilinear", align_corners=False)
            detail = F.interpolate(detail, size=size, mode="bilinear", align_corners=False)
            x = scaled + detail
            for step in range(settings.steps):
                if cancel is not None and cancel.is_set():
                    raise Cancelled()
                x, value = self.step(x, settings, generator, low, high)
                preview = x if size == (h, w) else F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
                yield DreamStep(octave, step, total, self.to_image(preview), value)
            detail = x - scaled


def dream(model: LoadedModel, image: np.ndarray, settings: DreamSettings, probe: Probe | None = None,
          progress=None, cancel=None, seed: int = 0) -> np.ndarray:
    """The finished dream of ``image`` (uint8 H, W, 3 at the input's size)."""
    last = None
    for last in Dreamer(model, probe).run(image, settings, seed, cancel):
        if progress is not None:
            progress(last)
    return last.image


def _blur(grad: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, int(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=grad.dtype, device=grad.device)
    kernel = torch.exp(-(t ** 2) / (2 * sigma ** 2))
    kernel = kernel / kernel.sum()
    c = grad.shape[1]
    grad = F.conv2d(F.pad(grad, (radius, radius, 0, 0), mode="reflect"), kernel.reshape(1, 1, 1, -1).repeat(c, 1, 1, 1),
                    groups=c)
    return F.conv2d(F.pad(grad, (0, 0, radius, radius), mode="reflect"), kernel.reshape(1, 1, -1, 1).repeat(c, 1, 1, 1),
                    groups=c)

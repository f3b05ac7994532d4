"""Feature visualization: an image, optimized from noise, that a unit responds to strongly.

The lucid/lucent recipe, written here: the image is parameterized by its Fourier spectrum
scaled by 1/frequency (so the optimizer prefers natural, low-frequency structure), in a
decorrelated colour space (ImageNet's colour covariance square root), squashed by a sigmoid;
every step sees it padded, jittered, scaled and rotated at random, so only patterns that
survive those transforms grow. Grayscale models get one channel and no colour mixing.
"""

import hashlib
import math
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from deepvis.errors import Cancelled, DeepvisError, require_finite
from deepvis.core.cache import default_cache_dir
from deepvis.core.inputspec import pixel_tensor
from deepvis.core.loading import LoadedModel
from deepvis.core.probe import Probe
from deepvis.optimize.maco import run_maco
from deepvis.optimize.steps import after_step, as_rgb_uint8, optimization_steps

# Square root of ImageNet's RGB covariance (lucid's ``color_correlation_svd_sqrt``).
COLOR_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
COLOR_SQRT = COLOR_SQRT / COLOR_SQRT.norm(dim=0).max()

# fourier: lucid's 1/f spectrum and transforms; maco: only the phase optimized, the magnitude
# a natural image's (deepvis.optimize.maco). docs/benchmarks.md ("Feature visualization
# recipes") has the measurement that picked the default.
RECIPES = ("fourier", "maco")


def default_recipe(channels: int, fixed: bool) -> str:
    """MACO for photo models: judged by two other ImageNet nets its pictures of eight class
    logits rank the class at median 1 and 1, Lucid's at 5 and 84.5 (deepvis bench unitviz).
    Lucid's Fourier recipe for grey models of one small input size: a natural photo's spectrum
    sampled at 8x8 gives digits_cnn's "7" logit 10.0 where Fourier reaches 31.8."""
    return "maco" if channels == 3 and not fixed else "fourier"


def equal_time_steps(recipe: str, fourier_steps: int) -> int:
    """Steps of ``recipe`` that take about as long as ``fourier_steps`` Fourier steps. A MACO
    step shows the model 4 crops: 2.3-3.2x a Fourier step on EfficientNet-Lite0 at 96 px (a
    batch of 8 units: 32 MACO steps 12.5 s against 128 Fourier steps 21.6 s on _blocks.6,
    22.1 s against 27.4 s on _fc)."""
    return fourier_steps if recipe == "fourier" else max(1, round(fourier_steps * 3 / 8))


MIN_SIZE, MAX_SIZE = 16, 2048  # px: smaller has no room for the transforms; larger only fills memory
MIN_FIXED_SIZE = 4  # px: a model of one input size (8x8 digits) is optimized at that size


@dataclass(frozen=True)
class VizSettings:
    layer: str
    unit: int
    size: int = 128
    steps: int = 256
    lr: float = 0.05
    decay: float = 1.0  # spectrum scale 1/f^decay
    neuron: bool = False  # the one activation at the map's centre instead of the channel's mean
    # The model's own input size, kept through the transforms: a model that runs at one size
    # only (a linear head after a flatten) sees its picture as it sees its inputs.
    fixed: bool = False
    # One of RECIPES, or "auto": default_recipe for the model, run for equal_time_steps(steps),
    # so that ``steps`` means the same time whichever recipe the model gets.
    recipe: str = "auto"

    def check(self) -> None:
        """Raise a DeepvisError for values no visualization can use."""
        if self.recipe not in (*RECIPES, "auto"):
            raise DeepvisError(f"unknown recipe {self.recipe!r}: expected one of {', '.join(RECIPES)}")
        low = MIN_FIXED_SIZE if self.fixed else MIN_SIZE
        if not low <= self.size <= MAX_SIZE:
            raise DeepvisError(f"the image size must be {low}..{MAX_SIZE} px, got {self.size}")
        if not 1 <= self.steps <= 100_000:
            raise DeepvisError(f"steps must be 1..100000, got {self.steps}")
        if self.unit < 0:
            raise DeepvisError(f"unit {self.unit} is negative")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise DeepvisError(f"the learning rate must be a positive number, got {self.lr}")


class _RedirectedClamp(torch.autograd.Function):
    """ReLU/ReLU6 whose backward, for an image whose ordinary gradient here is all zero, lets
    through the part that would move an inactive input back into the active range (lucid's
    "redirected ReLU"). Without it a unit that is silent on the starting noise, common in
    untrained or sparse networks, has no gradient at all and its picture stays grey."""

    @staticmethod
    def forward(ctx, x, lo, hi):
        ctx.save_for_backward(x)
        ctx.lo, ctx.hi = lo, hi
        return x.clamp(lo, hi)

    @staticmethod
    def backward(ctx, grad):
        x, = ctx.saved_tensors
        lo, hi = ctx.lo, ctx.hi
        inside = (x > lo) if hi is None else (x > lo) & (x < hi)
        ordinary = grad * inside
        # The loss is minimized: a negative gradient raises x, a positive one lowers it.
        toward = (x <= lo) & (grad < 0)
        if hi is not None:
            toward |= (x >= hi) & (grad > 0)
        redirected = grad * (inside | toward)
        silent = ordinary.flatten(1).abs().amax(1) == 0
        return torch.where(silent.reshape(-1, *[1] * (grad.ndim - 1)), redirected, ordinary), None, None


class redirected_relus:
    """Within the block, the network's ReLU and ReLU6 modules back-propagate redirected (see
    _RedirectedClamp); functional relu calls are out of reach and stay as they are."""

    def __init__(self, module: torch.nn.Module):
        self.module = module
        self.handles = []

    def __enter__(self):
        for m in self.module.modules():
            if isinstance(m, torch.nn.ReLU6):
                bounds = (0.0, 6.0)
            elif isinstance(m, torch.nn.ReLU):
                bounds = (0.0, None)
            else:
                continue
            inputs = {}

            def keep(_m, args, inputs=inputs):
                # An in-place ReLU overwrites its input; the redirect needs the values before.
                inputs["x"] = args[0].clone() if torch.is_grad_enabled() else None

            def redirect(_m, _args, output, inputs=inputs, bounds=bounds):
                x = inputs.pop("x", None)
                return output if x is None else _RedirectedClamp.apply(x, *bounds)

            self.handles += [m.register_forward_pre_hook(keep), m.register_forward_hook(redirect)]
        return self

    def __exit__(self, *exc):
        for h in self.handles:
            h.remove()
        self.handles.clear()


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

    def check(self, settings: VizSettings) -> None:
        """Raise a DeepvisError for settings or a layer that cannot be visualized."""
        settings.check()
        info = self.probe.layer(settings.layer)
        if not 0 <= settings.unit < info.channels:
            raise DeepvisError(f"{info.name} has {info.channels} units; {settings.unit} is out of range")
        if settings.neuron and not info.spatial:
            raise DeepvisError(f"--neuron needs a layer with a spatial map; {info.name} outputs {tuple(info.shape)}")
        probe = np.full((settings.size, settings.size, 3), 128, np.uint8)
        try:
            require_finite(self.value_of(probe, settings.layer, settings.unit, settings.neuron),
                           f"unit {settings.unit} of {info.name}")
        except RuntimeError as exc:  # pooling that cannot shrink a map this small
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            spec = self.model.spec
            hint = "" if info.spatial else (f"; a layer after a flatten needs the model's own input size "
                                            f"({spec.height}x{spec.width})")
            raise DeepvisError(f"the model cannot run on a {settings.size} px image: {first}{hint}") from None

    def fixed_input_size(self) -> int | None:
        """The model's own (square) input size when the whole model runs at that size only (a
        linear layer after a flatten), else None: its pictures are made at that size."""
        spec = self.model.spec
        if spec.height != spec.width:
            return None
        takes_others = self.probe.runs_at((self.channels, 2 * spec.height, 2 * spec.width), device=self.model.device)
        return None if takes_others else spec.height

    def _image(self, spectrum: torch.Tensor, scale: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """Pixels in [0, 1], (N, C, H, W), from the parameters (N, C, H, W//2+1, 2)."""
        spatial = torch.fft.irfft2(torch.view_as_complex((spectrum * scale).contiguous()), s=(h, w), norm="ortho") / 4.0
        if self.channels == 3:
            spatial = torch.einsum("nchw,dc->ndhw", spatial, COLOR_SQRT)
        return torch.sigmoid(spatial)

    def _transform(self, image: torch.Tensor, generator: torch.Generator, keep_size: bool = False) -> torch.Tensor:
        """Pad, jitter, scale, rotate, jitter again: lucid's standard robustness transforms. With
        ``keep_size`` (a model of one input size) the pixel amounts shrink with the picture (12 px
        of padding is more than an 8x8 digit) and the result is cut back to the picture's size."""
        def rand(lo, hi):
            return lo + (hi - lo) * float(torch.rand((), generator=generator))

        h, w = image.shape[2:]
        pad, jitter, jitter2 = ((max(1, round(12 * h / 128)), max(1, round(8 * h / 128)), max(1, round(4 * h / 128)))
                                if keep_size else (12, 8, 4))
        x = F.pad(image, (pad, pad, pad, pad), mode="constant", value=0.5)
        dy, dx = torch.randint(-jitter, jitter + 1, (2,), generator=generator).tolist()
        x = torch.roll(x, (dy, dx), (2, 3))
        angle = math.radians(rand(-10, 10))
        s = rand(0.9, 1.1)
        theta = torch.tensor([[s * math.cos(angle), -s * math.sin(angle), 0.0],
                              [s * math.sin(angle), s * math.cos(angle), 0.0]], dtype=x.dtype)[None].expand(len(x), 2, 3)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        dy, dx = torch.randint(-jitter2, jitter2 + 1, (2,), generator=generator).tolist()
        x = torch.roll(x, (dy, dx), (2, 3))
        return x[:, :, pad:pad + h, pad:pad + w] if keep_size else x

    def unit_value(self, pixels: torch.Tensor, layer: str, unit: int | list[int], neuron: bool = False) -> torch.Tensor:
        """The unit's spatial-mean activation for images in [0, 1] (N, C, H, W), or with
        ``neuron`` its activation at the map's centre; with a list of units, image i's value
        for unit i (a whole batch of visualizations in one forward)."""
        acts = self.probe.capture_until((pixels - self.mean) / self.std, layer)
        if isinstance(unit, int):
            channel = acts[:, unit]
        else:
            channel = acts[torch.arange(len(unit)), torch.as_tensor(unit)]
        if neuron and channel.ndim == 3:
            return channel[:, channel.shape[1] // 2, channel.shape[2] // 2]
        return channel.reshape(channel.shape[0], -1).mean(1)

    def run(self, settings: VizSettings, seed: int = 0, progress=None, cancel=None) -> np.ndarray:
        """The optimized image, uint8 (size, size, 3)."""
        return self.run_units(settings, [settings.unit], seed, progress, cancel)[0]

    def run_units(self, settings: VizSettings, units: list[int], seed: int = 0, progress=None,
                  cancel=None, between=None) -> np.ndarray:
        """One optimized image per unit of ``settings.layer``, optimized together as a batch;
        uint8 (len(units), size, size, 3). ``settings.unit`` is ignored."""
        return self.run_with_alpha(settings, units, seed, progress, cancel, between)[0]

    def run_with_alpha(self, settings: VizSettings, units: list[int], seed: int = 0, progress=None,
                       cancel=None, between=None, deadline: float | None = None):
        """:meth:`run_units` and, for MACO, each picture's transparency map (float32 (N, size,
        size) in [0, 1], None for the Fourier recipe). ``deadline`` (``time.perf_counter()``)
        ends the optimization early."""
        info = self.probe.layer(settings.layer)
        for unit in units:
            if not 0 <= unit < info.channels:
                raise DeepvisError(f"{info.name} has {info.channels} units; {unit} is out of range")
        if settings.recipe == "auto":
            recipe = default_recipe(self.channels, settings.fixed)
            settings = replace(settings, recipe=recipe, steps=equal_time_steps(recipe, settings.steps))
        if settings.recipe == "maco":
            colour = COLOR_SQRT if self.channels == 3 else None
            return run_maco(self, settings, units, colour, redirected_relus(self.model.module), seed, progress, cancel,
                            between, deadline)
        return self._run_fourier(settings, units, seed, progress, cancel, between, deadline), None

    def _run_fourier(self, settings: VizSettings, units: list[int], seed, progress, cancel, between, deadline):
        h = w = settings.size
        generator = torch.Generator().manual_seed(seed)
        spectrum = (0.01 * torch.randn(len(units), self.channels, h, w // 2 + 1, 2,
                                       generator=generator)).requires_grad_(True)
        # Unnormalized 1/f scale, and the image divided by lucid's "magic" 4 below: the spectrum's
        # low frequencies carry the picture; normalizing the scale to 1 leaves a grey image.
        scale = (1.0 / torch.clamp(_frequencies(h, w), min=1.0 / max(h, w)) ** settings.decay)[None, None, :, :, None]
        opt = torch.optim.Adam([spectrum], lr=settings.lr)
        with torch.enable_grad(), redirected_relus(self.model.module):
            for step in optimization_steps(settings.steps, cancel, deadline):
                opt.zero_grad()
                image = self._transform(self._image(spectrum, scale, h, w), generator, keep_size=settings.fixed)
                # Summed, so each image's gradient is its own unit's (the batch items are independent).
                loss = -self.unit_value(image, settings.layer, list(units), settings.neuron).sum()
                loss.backward()
                opt.step()
                after_step(step, settings.steps, loss, len(units), between, progress)
        with torch.no_grad():
            pixels = self._image(spectrum, scale, h, w)
        return as_rgb_uint8(pixels)

    def value_of(self, image: np.ndarray, layer: str, unit: int, neuron: bool = False) -> float:
        """The unit's spatial-mean activation (or centre neuron's) on a uint8 image at its own size."""
        x = pixel_tensor(image, self.channels)
        with torch.inference_mode():
            return float(self.unit_value(x, layer, unit, neuron)[0])


# --- a whole layer: one image per unit, computed in batches, cached on disk ----------------

LAYER_BATCH = 8  # images optimized together: 1.4x the throughput of one at a time (lite0, 2 cores)


@dataclass
class LayerVisualization:
    layer: str
    images: np.ndarray  # uint8 (C, size, size, 3); zeros where not done
    done: np.ndarray  # bool (C,)

    def image(self, unit: int) -> np.ndarray | None:
        return self.images[unit] if 0 <= unit < len(self.done) and self.done[unit] else None


def layer_cache_file(fingerprint: str, settings: VizSettings, seed: int = 0, cache_dir: Path | None = None) -> Path:
    """Where a layer's visualizations live: keyed by the weights, the layer and every setting."""
    key = repr(("layerviz", 1, fingerprint, settings.layer, settings.size, settings.steps, settings.lr,
                settings.decay, seed) + (("neuron",) if settings.neuron else ()) + (("fixed",) if settings.fixed else ())
               + ((settings.recipe,) if settings.recipe != "fourier" else ()))  # "auto" is its own key
    return Path(cache_dir or default_cache_dir()) / f"{hashlib.blake2b(key.encode(), digest_size=20).hexdigest()}.npz"


def load_layer_visualization(path: Path, layer: str) -> LayerVisualization | None:
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as d:
            return LayerVisualization(layer, d["images"], d["done"].astype(bool))
    except (OSError, ValueError, KeyError):
        return None  # a damaged cache entry is recomputed, not an error


def _save_layer(path: Path, result: LayerVisualization) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part.npz")
        np.savez(tmp, images=result.images, done=result.done)
        os.replace(tmp, path)
    except OSError:
        pass  # an unwritable cache costs recomputation later, nothing now


def visualize_layer(viz: UnitVisualizer, settings: VizSettings, fingerprint: str | None = None, seed: int = 0,
                    first: int = 0, progress=None, cancel=None, on_batch=None, between=None,
                    cache_dir: Path | None = None) -> LayerVisualization:
    """Every unit of ``settings.layer``, ``LAYER_BATCH`` at a time, starting with the batch that
    holds unit ``first`` (the one the user looks at). With a ``fingerprint`` the result is
    cached and saved after every batch, so a cancelled run keeps what it finished and a later
    run continues from there. ``progress(done, total)``; ``on_batch(result)`` after each batch;
    ``between()`` after every optimization step (the app lets its live view take a turn)."""
    info = viz.probe.layer(settings.layer)
    channels = info.channels
    path = layer_cache_file(fingerprint, settings, seed, cache_dir) if fingerprint else None
    result = load_layer_visualization(path, settings.layer) if path else None
    if result is None or result.images.shape != (channels, settings.size, settings.size, 3):
        result = LayerVisualization(settings.layer, np.zeros((channels, settings.size, settings.size, 3), np.uint8),
                                    np.zeros(channels, bool))
    todo = [u for u in range(channels) if not result.done[u]]
    first = min(max(first, 0), channels - 1)
    todo.sort(key=lambda u: (u // LAYER_BATCH != first // LAYER_BATCH, u))
    for start in range(0, len(todo), LAYER_BATCH):
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        units = todo[start:start + LAYER_BATCH]
        images = viz.run_units(settings, units, seed=seed + units[0], cancel=cancel, between=between)
        result.images[units] = images
        result.done[units] = True
        if path is not None:
            _save_layer(path, result)
        if on_batch is not None:
            on_batch(result)
        if progress is not None:
            progress(int(result.done.sum()), channels)
    return result

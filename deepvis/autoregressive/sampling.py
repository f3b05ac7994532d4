"""Autoregressive sampling of a PixelCNN-style model, one pixel at a time.

The contract: the model takes (N, 1, H, W) pictures with values level / (levels - 1) in
[0, 1] and returns (N, levels, H, W) logits, the distribution of each pixel's level given the
pixels before it in raster order. Sampling fills the picture pixel by pixel: H x W forward
passes, each yielding the new pixel and its conditional distribution, so a view can watch the
sample grow and cancel it between pixels.
"""

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from deepvis.errors import Cancelled, DeepvisError


MAX_WORK = 2**24  # pixel evaluations (H*W passes over H*W pixels, times the count): about 1.5 min on two cores


def sampling_work(size: tuple[int, int], count: int) -> int:
    """What drawing ``count`` pictures of ``size`` costs: H*W forward passes, each over H*W pixels
    of every picture. The cap is on this figure, so the verdict is the same on every machine."""
    pixels = size[0] * size[1]
    return pixels * pixels * count


@dataclass(frozen=True)
class Step:
    index: int  # raster position of the pixel just drawn
    pictures: np.ndarray  # float32 (N, 1, H, W) in [0, 1], pixels after ``index`` still 0
    probabilities: np.ndarray  # float32 (N, levels): the drawn pixel's conditional distribution


def levels_of(module: nn.Module, size: tuple[int, int]) -> int:
    """The number of levels a PixelCNN-style model predicts, from one dry run."""
    try:
        with torch.inference_mode():
            out = module(torch.zeros(1, 1, *size))
    except Exception as exc:  # noqa: BLE001 (a model of pictures of another kind fails in any way)
        first = (str(exc).strip().splitlines() or [""])[0][:160]
        raise DeepvisError(f"not a PixelCNN-style model: it fails on a (1, 1, {size[0]}, {size[1]}) picture of "
                           f"levels ({type(exc).__name__}: {first})") from None
    if not torch.is_tensor(out) or out.ndim != 4 or tuple(out.shape[2:]) != tuple(size) or out.shape[1] < 2:
        shape = tuple(out.shape) if torch.is_tensor(out) else type(out).__name__
        raise DeepvisError(f"not a PixelCNN-style model: expected (N, levels, {size[0]}, {size[1]}) logits for a "
                           f"(N, 1, {size[0]}, {size[1]}) picture, got {shape}")
    return int(out.shape[1])


def sample_steps(module: nn.Module, size: tuple[int, int], count: int = 1, seed: int = 0, temperature: float = 1.0,
                 cancel=None) -> Iterator[Step]:
    """Draw ``count`` pictures pixel by pixel; yields after every pixel."""
    if not temperature > 0:
        raise DeepvisError(f"temperature must be positive, got {temperature}")
    levels = levels_of(module, size)
    h, w = size
    g = torch.Generator().manual_seed(int(seed))
    x = torch.zeros(count, 1, h, w)
    was_training = module.training
    module.eval()
    try:
        for index in range(h * w):
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            r, c = divmod(index, w)
            with torch.inference_mode():
                logits = module(x)[:, :, r, c].float()
            # Shifted to a maximum of 0 before the division: at a tiny temperature the best level
            # gets probability 1 (the limit) instead of inf - inf = NaN.
            probs = torch.softmax((logits - logits.max(1, keepdim=True).values) / temperature, 1)
            level = torch.multinomial(probs, 1, generator=g)[:, 0]
            x[:, 0, r, c] = level.float() / (levels - 1)
            yield Step(index, x.numpy().copy(), probs.numpy())
    finally:
        module.train(was_training)


def sample(module: nn.Module, size: tuple[int, int], count: int = 1, seed: int = 0, temperature: float = 1.0,
           progress=None, cancel=None) -> np.ndarray:
    """float32 (count, 1, H, W) pictures in [0, 1]; ``progress(fraction)`` after each pixel."""
    last = None
    total = size[0] * size[1]
    for step in sample_steps(module, size, count, seed, temperature, cancel):
        last = step
        if progress is not None:
            progress((step.index + 1) / total)
    return last.pictures

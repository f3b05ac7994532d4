"""The loop both feature-visualization recipes share: steps that stop when cancelled or past a
deadline, the app's turn and progress after each, and the pictures as uint8 RGB."""

import time

import numpy as np
import torch

from deepvis.errors import Cancelled


def optimization_steps(steps: int, cancel=None, deadline: float | None = None):
    """Step numbers 0..steps-1; raises Cancelled when ``cancel`` is set, ends early past
    ``deadline`` (a ``time.perf_counter()`` value)."""
    for step in range(steps):
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        if deadline is not None and time.perf_counter() > deadline:
            return
        yield step


def after_step(step: int, steps: int, loss: torch.Tensor, units: int, between=None, progress=None) -> None:
    """Let the app take a turn (``between()``) and, every 8 steps, report the fraction done and
    the mean activation reached (the loss is its negative sum over ``units``)."""
    if between is not None:
        between()
    if progress is not None and step % 8 == 0:
        progress((step + 1) / steps, -float(loss.detach()) / units)


def as_rgb_uint8(pixels: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) pixels in [0, 1] as uint8 (N, H, W, 3); a grey picture's channel repeated."""
    out = pixels.mul(255).round().byte().permute(0, 2, 3, 1).numpy()
    return np.ascontiguousarray(np.repeat(out, 3, axis=3) if out.shape[3] == 1 else out)

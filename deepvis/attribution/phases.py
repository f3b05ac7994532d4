"""Gradient maps without the stride's grid.

A strided first layer (EfficientNet's 3x3 stride-2 stem, ResNet's stride-2 conv) weighs the
input pixels differently by their phase within the stride, so a pixel gradient carries a
checkerboard at the stride's period: on the cat, guided backprop through EfficientNet-Lite0
had 4.2x the power of the neighbouring frequencies at period 2. Averaging the map over the
input shifted by each phase (and the map shifted back) cancels exactly that component and
keeps the rest: it is the gradient of the model made shift-invariant at the stride's scale,
in the spirit of SmoothGrad's averaging over noise. Shifts are circular (``torch.roll``), so
the last ``period - 1`` rows and columns also see the opposite border.
"""

import weakref

import torch
from torch import nn

MAX_PERIOD = 4  # 16 shifted copies in 2-D; a ViT's 16-pixel patch stride would need 256


# Per probe (one model at one input shape), found once: live views ask on every frame.
_PERIODS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def stride_period(model: nn.Module, probe) -> int:
    """The stride of the first strided convolution or pooling the input meets (forward order),
    or 1 where there is none or it exceeds ``MAX_PERIOD``."""
    if probe not in _PERIODS:
        _PERIODS[probe] = _first_stride(model, probe)
    return _PERIODS[probe]


def _first_stride(model: nn.Module, probe) -> int:
    for layer in probe.layers:
        if not layer.path or layer.call:
            continue
        module = model.get_submodule(layer.path)
        stride = getattr(module, "stride", None)
        if stride is None or not hasattr(module, "kernel_size"):
            continue
        stride = max(stride) if isinstance(stride, (tuple, list)) else int(stride)
        if stride > 1:
            return stride if stride <= MAX_PERIOD else 1
    return 1


def shifts(period: int, dims: int) -> list[tuple[int, ...]]:
    """Every phase within ``period`` along each of ``dims`` spatial axes, (0, ...) first."""
    grid = torch.cartesian_prod(*[torch.arange(period)] * dims).reshape(-1, dims)
    return [tuple(int(v) for v in row) for row in grid]


class PhaseAveraged(nn.Module):
    """``objective`` averaged over the input's phases within the stride.

    ``every`` (one-pass methods): each sample is scored at every shift and the scores averaged,
    so the gradient Captum takes is the mean of the shifted-back gradients; the unshifted copy
    is first, so the live view's grid and prediction come from the frame itself.
    ``cycle`` (SmoothGrad): sample i of a batch is shifted by phase i mod period**dims, so its
    noise samples spread over the phases at no extra cost.
    """

    def __init__(self, objective: nn.Module, period: int, mode: str = "every"):
        super().__init__()
        self.objective, self.period, self.mode = objective, period, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dims = tuple(range(2, x.ndim))
        phases = shifts(self.period, len(dims))
        if self.mode == "cycle":
            rolled = [torch.roll(x[i:i + 1], phases[i % len(phases)], dims) for i in range(x.shape[0])]
            return self.objective(torch.cat(rolled))
        self.objective.copies = len(phases)
        try:
            scores = self.objective(torch.cat([torch.roll(x, phase, dims) for phase in phases]))
        finally:
            self.objective.copies = 1
        return scores.view(len(phases), x.shape[0]).mean(0)

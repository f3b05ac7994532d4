"""Per-layer activation statistics over a dataset, accumulated batch by batch inside the
forward hooks (no activation is kept: a large model's activations over a batch do not fit).

For each layer, over every input and position:

* ``dead_fraction`` (outputs of the ReLU family: ReLU, ReLU6, a Hardtanh clamped at 0): the
  share of channels (units of a 1-D output) whose maximum is <= 0, units that never fire;
* ``saturated_fraction`` (Tanh and Sigmoid, and their hard versions): the share of channels in
  which at least 99 % of the elements lie within 0.01 of a bound, units stuck at a rail;
* ``nonfinite_fraction``, and the finite elements' mean and standard deviation (Chan's
  pairwise update of count, mean and squared deviations, so batches combine exactly);
* how many inputs gave NaN or infinity at this layer (the first such layer is the fault:
  later ones inherit it).

A batch's mean and variance come from its sum and 2-norm; if they are finite, no element is
NaN or infinite (both propagate), so the element-wise finiteness test runs only for the
batches that need it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

RELU_FAMILY = "relu"
TANH_LIKE = "tanh"
SIGMOID_LIKE = "sigmoid"
SATURATION_MARGIN = 0.01  # within this of a bound counts as saturated
SATURATED_SHARE = 0.99  # a channel is saturated when this share of its elements are


def activation_kind(module: nn.Module | None) -> str | None:
    """"relu" for outputs that are >= 0 by construction and 0 when the unit is off (ReLU,
    ReLU6, a Hardtanh clamped at 0); "tanh" / "sigmoid" for bounded squashing outputs; None for
    everything else (SiLU and GELU are not dead at 0: they are negative below it)."""
    if isinstance(module, (nn.ReLU, nn.ReLU6)):
        return RELU_FAMILY
    if isinstance(module, nn.Hardtanh):  # ReLU6 is a Hardtanh too, caught above
        if module.min_val == 0:
            return RELU_FAMILY
        if module.min_val == -1 and module.max_val == 1:
            return TANH_LIKE
        return None
    if isinstance(module, nn.Tanh):
        return TANH_LIKE
    if isinstance(module, (nn.Sigmoid, nn.Hardsigmoid)):
        return SIGMOID_LIKE
    return None


@dataclass
class LayerStats:
    """What one layer's outputs were over every batch seen."""

    name: str
    type_name: str
    kind: str | None
    count: int = 0  # finite elements
    mean: float = 0.0
    m2: float = 0.0  # sum of squared deviations from the mean
    elements: int = 0  # all elements
    nonfinite: int = 0
    inputs_nonfinite: int = 0
    channel_max: torch.Tensor | None = field(default=None, repr=False)
    saturated: torch.Tensor | None = field(default=None, repr=False)  # per channel
    channel_elements: int = 0  # elements per channel

    def observe(self, tensor: torch.Tensor) -> None:
        """Add a batch (B, C, ...) or (B,) of this layer's outputs."""
        t = tensor.detach()
        if not t.is_floating_point():
            t = t.float()
        batch = t.shape[0] if t.ndim else 1
        flat = t.reshape(batch, t.shape[1] if t.ndim > 1 else 1, -1)  # (B, C, positions)
        # A sum and a 2-norm are one fast pass each (var_mean over a whole layer tripled the
        # cost of a forward pass); the batch's mean and squared deviations follow from them.
        total = float(flat.sum())
        squares = float(torch.linalg.vector_norm(flat)) ** 2
        n = flat.numel()
        self.elements += n
        if math.isfinite(total) and math.isfinite(squares):
            self._add(n, total / n, max(0.0, squares - total * total / n))
            finite = None
        else:
            finite = torch.isfinite(flat)
            bad = int(n - finite.sum())
            self.nonfinite += bad
            self.inputs_nonfinite += int((~finite).reshape(batch, -1).any(1).sum())
            values = flat[finite]
            if values.numel():
                v, m = torch.var_mean(values.double(), correction=0)
                self._add(values.numel(), float(m), float(v) * values.numel())
        if self.kind == RELU_FAMILY:
            source = flat if finite is None else torch.where(finite, flat, torch.full_like(flat, -torch.inf))
            peak = source.amax(dim=(0, 2))
            self.channel_max = peak if self.channel_max is None else torch.maximum(self.channel_max, peak)
        elif self.kind in (TANH_LIKE, SIGMOID_LIKE):
            if self.kind == TANH_LIKE:
                near = flat.abs() >= 1 - SATURATION_MARGIN
            else:
                near = (flat <= SATURATION_MARGIN) | (flat >= 1 - SATURATION_MARGIN)
            counts = near.sum(dim=(0, 2))
            self.saturated = counts if self.saturated is None else self.saturated + counts
        self.channel_elements += flat.shape[0] * flat.shape[2]

    def _add(self, n: int, mean: float, m2: float) -> None:
        total = self.count + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * self.count * n / total
        self.count = total

    @property
    def dead_fraction(self) -> float | None:
        if self.channel_max is None:
            return None
        return float((self.channel_max <= 0).float().mean())

    @property
    def dead_channels(self) -> list[int]:
        return [] if self.channel_max is None else torch.nonzero(self.channel_max <= 0).flatten().tolist()

    @property
    def saturated_fraction(self) -> float | None:
        if self.saturated is None or not self.channel_elements:
            return None
        return float((self.saturated.double() / self.channel_elements >= SATURATED_SHARE).double().mean())

    @property
    def nonfinite_fraction(self) -> float:
        return self.nonfinite / self.elements if self.elements else 0.0

    @property
    def std(self) -> float | None:
        return (self.m2 / self.count) ** 0.5 if self.count else None

    @property
    def finite_mean(self) -> float | None:
        return self.mean if self.count else None

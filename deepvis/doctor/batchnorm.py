"""BatchNorm running statistics against the data they normalise.

In evaluation mode a BatchNorm layer normalises each channel with the running mean and
variance it kept in training. When they do not describe what reaches it (statistics
estimated on other data, a checkpoint whose buffers were not saved or were overwritten,
input preprocessed differently), every later layer sees shifted, rescaled inputs.

Per channel c, over every input and position of the data: the mean m_c and variance v_c of
the layer's input; against the running mean r_c and variance s_c:

* ``mean_abs_z``: the mean over channels of |m_c - r_c| / sqrt(s_c + eps), how many running
  standard deviations the data's channel means sit away from the running means;
* ``log_var_ratio``: the mean over channels of |ln((v_c + eps) / (s_c + eps))|.

A layer is flagged when ``mean_abs_z`` > 1 or ``log_var_ratio`` > ln 4 (MEAN_Z_LIMIT,
LOG_VAR_LIMIT). Why these: the bundled efficientnet_lite0 over 500 crops of the bundled
photos, data far narrower than ImageNet, reaches mean_abs_z 0.46 and log_var_ratio 1.0 at
its first BatchNorm (0.41 and 0.54 at most elsewhere); the limits sit at about twice what a
healthy layer shows on such data: the average channel a whole running standard deviation
away, or its variance off four times. A shifted layer makes the layers after it disagree
too: the first flagged layer in execution order is the likely cause.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

MEAN_Z_LIMIT = 1.0
LOG_VAR_LIMIT = math.log(4.0)


def checkable(module: nn.Module) -> bool:
    """A BatchNorm layer that normalises with running statistics (eval mode, buffers kept)."""
    return (isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats
            and module.running_mean is not None and module.running_var is not None)


@dataclass
class BatchNormInput:
    """Per-channel count, mean and squared deviations of what reached one BatchNorm layer."""

    name: str
    module: nn.Module = field(repr=False)
    count: int = 0
    mean: torch.Tensor | None = field(default=None, repr=False)
    m2: torch.Tensor | None = field(default=None, repr=False)

    def observe(self, x: torch.Tensor) -> None:
        x = x.detach().float()
        dims = [0, *range(2, x.ndim)]
        n = x.numel() // x.shape[1]
        # Per-channel sums and 2-norms: one pass each, no copy (var_mean was three times slower).
        total = x.sum(dim=dims).double()
        squares = torch.linalg.vector_norm(x, dim=dims).double() ** 2
        mean = total / n
        var = (squares / n - mean * mean).clamp_min(0)
        if self.mean is None:
            self.count, self.mean, self.m2 = n, mean, var * n
            return
        total = self.count + n
        delta = mean - self.mean
        self.mean = self.mean + delta * n / total
        self.m2 = self.m2 + var * n + delta * delta * self.count * n / total
        self.count = total

    def figures(self) -> dict:
        """mean_abs_z and log_var_ratio (see the module docstring); None before any input."""
        if self.mean is None:
            return {"name": self.name, "mean_abs_z": None, "log_var_ratio": None}
        eps = float(getattr(self.module, "eps", 1e-5))
        running_mean = self.module.running_mean.detach().double().cpu()
        running_var = self.module.running_var.detach().double().cpu()
        var = self.m2.cpu() / self.count
        z = (self.mean.cpu() - running_mean).abs() / torch.sqrt(running_var + eps)
        ratio = torch.log((var + eps) / (running_var + eps)).abs()
        return {"name": self.name, "mean_abs_z": float(z.mean()), "log_var_ratio": float(ratio.mean())}


def flagged(figures: dict) -> bool:
    z, ratio = figures["mean_abs_z"], figures["log_var_ratio"]
    return z is not None and (z > MEAN_Z_LIMIT or ratio > LOG_VAR_LIMIT)

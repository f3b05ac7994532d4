"""Receptive fields, measured rather than assumed, and causality.

The measured field of an output position (a pixel of a 2-D layer, a time step of a 1-D one)
is the set of input positions whose gradient is non-zero: one backward pass per query, the
queries of a whole layer batched as samples of one pass. A single input could hide part of
the field behind rectifiers that happen to be off, so each query runs on a few random
inputs and the fields are united. The theoretical field follows the convolutions on the
way to the layer (kernel, dilation, stride) as if they formed a chain; residual branches
never widen it beyond that, masks (PixelCNN) only cut it, which is exactly what the
measured one shows.

Causality, in raster order for 2-D and time for 1-D: ``causal`` when no output depends on a
later input, ``strict`` when it does not depend on its own position either (what an
autoregressive model needs to predict a position from the ones before).
"""

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from deepvis.errors import Cancelled, DeepvisError

RANDOM_INPUTS = 3


def input_dims(module: nn.Module) -> int:
    """1 for a model whose first convolution is a Conv1d, 2 for a Conv2d."""
    from deepvis.core.loading import first_convolution

    first = first_convolution(module)
    if first is None:
        raise DeepvisError("no convolution found: receptive fields are for convolutional models")
    return first.weight.ndim - 2


def example_input(module: nn.Module, size: tuple[int, ...], channels: int | None = None, seed: int = 0,
                  count: int = RANDOM_INPUTS) -> torch.Tensor:
    """``count`` random inputs of ``size`` ((T,) or (H, W)) and the first convolution's channels."""
    if channels is None:
        from deepvis.core.loading import first_convolution

        channels = int(first_convolution(module).weight.shape[1])
    g = torch.Generator().manual_seed(seed)
    return torch.rand(count, channels, *size, generator=g)


def measured_fields(module: nn.Module, probe, x: torch.Tensor, layer: str, positions, chunk: int = 64,
                    cancel=None) -> np.ndarray:
    """bool (len(positions), *input size): for each output position of ``layer`` (a (t,) or
    (y, x) tuple), the input positions its activation (summed over channels) depends on."""
    positions = [tuple(int(v) for v in p) for p in positions]
    out = []
    was_training = module.training
    module.eval()
    try:
        for start in range(0, len(positions), chunk):
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            batch = positions[start:start + chunk]
            n, r = len(batch), x.shape[0]
            # Each (query, random input) pair is one sample: one backward pass answers them all.
            xs = x.repeat(n, *[1] * (x.ndim - 1)).detach().requires_grad_(True)
            with torch.enable_grad():
                _, acts = probe.capture(xs, [layer], detach=False)
                act = acts[layer]
                if act.ndim != x.ndim:
                    raise DeepvisError(f"{layer} has no {'time steps' if x.ndim == 3 else 'pixels'}: its output is "
                                       f"{tuple(act.shape[1:])}")
                picked = []
                for q, pos in enumerate(batch):
                    for j in range(r):
                        picked.append(act[(q * r + j, slice(None), *pos)].sum())
                torch.stack(picked).sum().backward()
            grad = xs.grad.detach().abs().sum(1)  # over input channels
            grad = grad.reshape(n, r, *grad.shape[1:]).amax(1)
            out.append((grad > 0).numpy())
    finally:
        module.train(was_training)
    return np.concatenate(out)


@dataclass(frozen=True)
class Theory:
    size: tuple[int, ...]  # per axis, in input positions
    convolutions: int


def theoretical_field(module: nn.Module, probe, layer: str) -> Theory:
    """The field of a chain of the convolutions and pools that run before ``layer`` ends."""
    target = probe.layer(layer)
    order = [info for info in probe.layers if info.path]
    stop = order.index(target) if target in order else len(order) - 1
    modules = dict(module.named_modules())
    dims = None
    size = jump = None
    count = 0
    for info in order[:stop + 1]:
        m = modules.get(info.path)
        if not isinstance(m, (nn.Conv1d, nn.Conv2d, nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d)):
            continue
        kernel = _pair(getattr(m, "kernel_size"), m)
        stride = _pair(getattr(m, "stride") or getattr(m, "kernel_size"), m)
        dilation = _pair(getattr(m, "dilation", 1), m)
        if dims is None:
            dims = len(kernel)
            size, jump = [1] * dims, [1] * dims
        for a in range(dims):
            size[a] += (dilation[a] * (kernel[a] - 1)) * jump[a]
            jump[a] *= stride[a]
        count += 1
    if dims is None:
        raise DeepvisError(f"no convolution runs before {layer}")
    return Theory(tuple(size), count)


def _pair(value, m) -> tuple[int, ...]:
    dims = 1 if isinstance(m, (nn.Conv1d, nn.MaxPool1d, nn.AvgPool1d)) else 2
    return tuple(value) if isinstance(value, (tuple, list)) else (int(value),) * dims


def _flat(pos, shape) -> int:
    return int(np.ravel_multi_index(pos, shape))


@dataclass(frozen=True)
class Causality:
    causal: bool  # no output depends on a later input
    strict: bool  # nor on its own position
    violations: int  # outputs that depend on a later input (or, for ``strict``, on themselves)
    first: tuple | None  # one violating output position, for the message


def causality(fields: np.ndarray, positions) -> Causality:
    """From measured fields (queries x input size) at output ``positions`` (same grid as the input)."""
    shape = fields.shape[1:]
    later = own = 0
    first = None
    for f, pos in zip(fields, positions):
        flat = f.reshape(-1)
        here = _flat(pos, shape)
        bad_later = bool(flat[here + 1:].any())
        bad_own = bool(flat[here])
        later += bad_later
        own += bad_own
        if first is None and (bad_later or bad_own):
            first = tuple(int(v) for v in pos)
    return Causality(causal=bool(later == 0), strict=bool(later == 0 and own == 0), violations=int(later or own),
                     first=first)


def all_positions(shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    return [tuple(int(v) for v in p) for p in np.ndindex(*shape)]

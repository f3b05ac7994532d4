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

from deepvis.core.probe import hook_forward
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
    return np.concatenate([fields for _, fields in field_chunks(module, probe, x, layer, positions, chunk, cancel)])


FIELD_CHUNK_ELEMENTS = 2**17  # input positions differentiated at once (queries x random inputs x input size)


def field_chunks(module: nn.Module, probe, x: torch.Tensor, layer: str, positions, chunk: int = 64, cancel=None):
    """``measured_fields`` chunk by chunk: yields (the chunk's positions, their fields), so a
    caller that judges each field (causality over every position) keeps none of them. Chunks
    are smaller for large inputs: a chunk's batch of queries x random inputs is differentiated
    at once, and its activations must fit."""
    positions = [tuple(int(v) for v in p) for p in positions]
    device = _device(module)
    r = x.shape[0]
    chunk = max(1, min(chunk, FIELD_CHUNK_ELEMENTS // max(1, r * int(np.prod(x.shape[2:])))))
    was_training = module.training
    module.eval()
    try:
        for start in range(0, len(positions), chunk):
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            batch = positions[start:start + chunk]
            n = len(batch)
            # Each (query, random input) pair is one sample: one backward pass answers them all.
            xs = x.to(device).repeat(n, *[1] * (x.ndim - 1)).detach().requires_grad_(True)
            with torch.enable_grad():
                # Nothing after the layer runs: cheaper, and a head that only takes the model's
                # own input size (Flatten into Linear) does not refuse other sizes.
                act = probe.capture_until(xs, layer)
                if act.ndim != x.ndim:
                    raise DeepvisError(f"{layer} has no {'time steps' if x.ndim == 3 else 'pixels'}: its output is "
                                       f"{tuple(act.shape[1:])}")
                picked = []
                for q, pos in enumerate(batch):
                    for j in range(r):
                        picked.append(act[(q * r + j, slice(None), *pos)].sum())
                # Not .backward(): the model's own parameter gradients are left as they were.
                grad, = torch.autograd.grad(torch.stack(picked).sum(), xs, allow_unused=True)
            if grad is None:  # the layer does not depend on the input at all
                grad = torch.zeros_like(xs)
            grad = grad.detach().abs().sum(1)  # over input channels
            grad = grad.reshape(n, r, *grad.shape[1:]).amax(1)
            yield batch, (grad > 0).cpu().numpy()
    finally:
        module.train(was_training)


@dataclass(frozen=True)
class Theory:
    size: tuple[int, ...]  # per axis, in input positions
    convolutions: int
    jump: tuple[int, ...] = ()  # input positions between neighbouring output positions: the strides' product
    # Per axis, the centre of output position 0's field in input coordinates (a half when the
    # kernels are even): where the field sits, not only how big it is.
    start: tuple[float, ...] = ()


_WINDOWS = (nn.Conv1d, nn.Conv2d, nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d)
_PADS = (nn.modules.padding._ConstantPadNd, nn.modules.padding._ReflectionPadNd,
         nn.modules.padding._ReplicationPadNd)


def theoretical_field(module: nn.Module, probe, layer: str, example: torch.Tensor | None = None) -> Theory:
    """The field of a chain of the convolutions and pools that run before ``layer`` ends.

    Padding is what a module declares (its ``padding``, a padding layer before it); with an
    ``example`` input (one sample) a dry run also finds padding done inside a module's forward
    (a causal convolution's left padding), which only moves the field, never sizes it."""
    return theoretical_fields(module, probe, [layer], example)[layer]


def theoretical_fields(module: nn.Module, probe, layers, example: torch.Tensor | None = None) -> dict[str, Theory]:
    """``theoretical_field`` for several layers, with one dry run between them."""
    order = [info for info in probe.layers if info.path]
    modules = dict(module.named_modules())
    windows = [info.path for info in order if isinstance(modules.get(info.path), _WINDOWS)]
    shapes = _window_shapes(module, modules, set(windows), example) if example is not None else {}
    targets = {}
    for name in layers:
        target = probe.layer(name)
        targets[name] = order.index(target) if target in order else len(order) - 1
    dims = None
    size = jump = lo = None  # lo: the first input position of output position 0's field
    count = 0
    before = []  # padding layers before the first convolution, which says how many axes there are
    out: dict[str, Theory] = {}
    pending = sorted(targets.items(), key=lambda item: item[1])
    for i, info in enumerate(order):
        if not pending:
            break
        m = modules.get(info.path)
        if isinstance(m, _PADS) and not _inside_window(info.path, windows):
            # A padding layer of its own moves what follows; one inside a convolution (a
            # "static same padding" conv) is found by that convolution's dry run instead.
            if dims is None:
                before.append(m)
            else:
                leading = _leading_padding(m, dims)
                for a in range(dims):
                    lo[a] -= leading[a] * jump[a]
        elif isinstance(m, _WINDOWS):
            kernel = _pair(m.kernel_size, m)
            stride = _pair(m.stride or m.kernel_size, m)
            dilation = _pair(getattr(m, "dilation", 1), m)
            if dims is None:
                dims = len(kernel)
                size, jump, lo = [1] * dims, [1] * dims, [0] * dims
                for pad in before:
                    lo = [v - p for v, p in zip(lo, _leading_padding(pad, dims))]
            leading = _declared_padding(m, kernel, dilation)
            seen = shapes.get((info.path, info.call))
            if seen is not None:
                leading = _padding_in_forward(m, seen, kernel, stride, dilation, leading)
            for a in range(dims):
                size[a] += (dilation[a] * (kernel[a] - 1)) * jump[a]
                lo[a] -= leading[a] * jump[a]
                jump[a] *= stride[a]
            count += 1
        while pending and pending[0][1] == i:
            name, _ = pending.pop(0)
            if dims is None:
                raise DeepvisError(f"no convolution runs before {name}")
            out[name] = Theory(tuple(size), count, tuple(jump),
                               tuple(lo[a] + (size[a] - 1) / 2 for a in range(dims)))
    for name, _ in pending:  # a layer after the last entry with a path: the model's output
        if dims is None:
            raise DeepvisError(f"no convolution runs before {name}")
        out[name] = Theory(tuple(size), count, tuple(jump), tuple(lo[a] + (size[a] - 1) / 2 for a in range(dims)))
    return out


def theoretical_box(theory: Theory, position) -> tuple[tuple[int, int], ...]:
    """Per axis, the first and last input position (inclusive) of the theoretical field of the
    output ``position``; not clipped to the input, which the caller knows. Masks (a PixelCNN)
    only cut the field, so this is where it can be, not where it must be."""
    box = []
    for a, p in enumerate(position):
        centre = theory.start[a] + int(p) * theory.jump[a]
        half = (theory.size[a] - 1) / 2
        box.append((int(round(centre - half)), int(round(centre + half))))
    return tuple(box)


def _inside_window(path: str, windows) -> bool:
    return any(path.startswith(w + ".") for w in windows)


def _declared_padding(m: nn.Module, kernel, dilation) -> tuple[int, ...]:
    padding = getattr(m, "padding", 0)
    if isinstance(padding, str):  # PyTorch's "same" puts the odd one on the far side
        return tuple(d * (k - 1) // 2 for k, d in zip(kernel, dilation)) if padding == "same" else (0,) * len(kernel)
    return _pair(padding, m)


def _leading_padding(m: nn.Module, dims: int) -> tuple[int, ...]:
    """The padding a padding layer adds before each axis (F.pad's order is last axis first)."""
    pad = tuple(m.padding) if isinstance(m.padding, (tuple, list)) else (int(m.padding),) * (2 * dims)
    pad = pad + (0,) * max(0, 2 * dims - len(pad))
    return tuple(int(pad[2 * (dims - 1 - a)]) for a in range(dims))


def _window_shapes(module: nn.Module, modules, paths, example) -> dict:
    """(path, call) -> (input size, output size) of each convolution and pool in one forward."""
    shapes, counts, handles = {}, {}, []

    def make_hook(path):
        def hook(mod, inputs, out):
            call = counts.get(path, 0)
            counts[path] = call + 1
            if inputs and isinstance(inputs[0], torch.Tensor) and isinstance(out, torch.Tensor):
                x = inputs[0]
                shapes[(path, call)] = (tuple(x.shape[2:]), tuple(out.shape[2:]), (1, *x.shape[1:]), x.dtype)
        return hook

    for path in paths:
        handles.append(hook_forward(modules[path], make_hook(path)))
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            module(example[:1].to(_device(module)))
    finally:
        module.train(was_training)
        for h in handles:
            h.remove()
    return shapes


def _padding_in_forward(m: nn.Module, seen, kernel, stride, dilation, declared) -> tuple[int, ...]:
    """The leading padding of a module whose output is longer than its declared padding allows:
    it pads inside its forward (F.pad for a causal convolution, a child padding layer). Which side
    is found from the module alone: the gradient of an output position reaches the inputs under
    its kernel's taps, and only one leading padding puts the taps there."""
    size_in, size_out, one_sample, dtype = seen
    needed = [(o - 1) * s + d * (k - 1) + 1 - n for n, o, k, s, d in zip(size_in, size_out, kernel, stride, dilation)]
    if all(p <= 2 * q for p, q in zip(needed, declared)):
        return tuple(declared)
    if not isinstance(m, (nn.Conv1d, nn.Conv2d)):  # a pool's extra length is its ceil_mode, at the far end
        return tuple(declared)
    # A convolution's input gradient is its weights wherever the input is: any input does.
    probe_in = torch.ones(one_sample, dtype=dtype, device=_device(m), requires_grad=True)
    # The middle output: the first one's taps may all fall on padding (a shifted causal stack).
    middle = tuple(o // 2 for o in size_out)
    with torch.enable_grad():
        y = m(probe_in)
        grad, = torch.autograd.grad(y[(0, slice(None)) + middle].sum(), probe_in)
    grad = grad.detach().abs().sum(1)[0]
    support = [set(np.flatnonzero(grad.sum(tuple(b for b in range(grad.ndim) if b != a)).cpu().numpy() > 0).tolist())
               if grad.ndim > 1 else set(np.flatnonzero(grad.cpu().numpy() > 0).tolist()) for a in range(grad.ndim)]
    leading = []
    for a, (n, k, d, p, q) in enumerate(zip(size_in, kernel, dilation, needed, declared)):
        if p <= 2 * q:
            leading.append(q)
            continue
        found = None
        if support[a]:
            first = middle[a] * stride[a]
            for lead in range(0, p + stride[a]):
                if {t for t in range(first - lead, first - lead + d * (k - 1) + 1, d) if 0 <= t < n} == support[a]:
                    found = lead
                    break
        leading.append(found if found is not None else p // 2)
    return tuple(leading)


def _device(module: nn.Module) -> torch.device:
    for t in module.parameters():
        return t.device
    for t in module.buffers():
        return t.device
    return torch.device("cpu")


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
    checked: int = 0  # output positions whose fields were measured
    total: int = 0  # output positions of the grid


def causality(fields: np.ndarray, positions) -> Causality:
    """From measured fields (queries x input size) at output ``positions`` (same grid as the input)."""
    judge = _Judge(fields.shape[1:])
    for f, pos in zip(fields, positions):
        judge.add(f, pos)
    return judge.verdict(len(positions), len(positions))


class _Judge:
    """Causality counted field by field, no field kept."""

    def __init__(self, shape):
        self.shape = tuple(shape)
        self.later = self.own = 0
        self.first = None

    def add(self, field: np.ndarray, pos) -> None:
        flat = field.reshape(-1)
        here = _flat(pos, self.shape)
        bad_later = bool(flat[here + 1:].any())
        bad_own = bool(flat[here])
        self.later += bad_later
        self.own += bad_own
        if self.first is None and (bad_later or bad_own):
            self.first = tuple(int(v) for v in pos)

    def verdict(self, checked: int, total: int) -> Causality:
        return Causality(causal=self.later == 0, strict=self.later == 0 and self.own == 0,
                         violations=int(self.later or self.own), first=self.first, checked=checked, total=total)


# Queries x input positions: each query's field is a gradient over the whole input (digits_pixelcnn
# at 64x64: 0.76 s a query on two cores), so this caps the check at about a minute there.
MAX_CAUSALITY_WORK = 2**18
BORDER = 32  # 1-D: the first and last steps always checked (padding acts there)


def causality_positions(shape: tuple[int, ...], seed: int = 0) -> list[tuple[int, ...]]:
    """Where causality is checked: every output position while (positions x input size) fits
    ``MAX_CAUSALITY_WORK``; beyond it, the borders (where padding differs: the first and last
    rows and columns, or steps) and a seeded random sample of the rest, as many as fit. The cap
    is on this figure, so the same size gets the same check on every machine."""
    total = int(np.prod(shape))
    budget = max(1, MAX_CAUSALITY_WORK // total)
    if total <= budget:
        return all_positions(shape)
    grid = np.zeros(shape, bool)
    if len(shape) == 1:
        grid[:BORDER] = grid[-BORDER:] = True
    else:
        grid[0, :] = grid[-1, :] = grid[:, 0] = grid[:, -1] = True
    border = np.argwhere(grid)
    if len(border) > budget // 2:  # half the budget at most, spread along the borders, corners first
        keep = np.unique(np.linspace(0, len(border) - 1, max(1, budget // 2)).round().astype(int))
        grid[:] = False
        grid[tuple(border[keep].T)] = True
    chosen = [tuple(int(v) for v in p) for p in np.argwhere(grid)]
    rest = np.flatnonzero(~grid.reshape(-1))
    extra = max(0, budget - len(chosen))
    picked = np.random.default_rng(seed).choice(rest, size=min(extra, rest.size), replace=False)
    chosen += [tuple(int(v) for v in np.unravel_index(i, shape)) for i in np.sort(picked)]
    return sorted(chosen, key=lambda p: _flat(p, shape))


def check_causality(module: nn.Module, probe, x: torch.Tensor, layer: str, cancel=None,
                    progress=None) -> Causality:
    """Causality of ``layer`` (its grid is the input's) at ``causality_positions``: each chunk's
    fields are judged and dropped, so memory stays one chunk's whatever the size."""
    shape = tuple(x.shape[2:])
    positions = causality_positions(shape)
    judge = _Judge(shape)
    done = 0
    for batch, fields in field_chunks(module, probe, x, layer, positions, cancel=cancel):
        for f, pos in zip(fields, batch):
            judge.add(f, pos)
        done += len(batch)
        if progress is not None:
            progress(done / len(positions))
    return judge.verdict(len(positions), int(np.prod(shape)))


def all_positions(shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    return [tuple(int(v) for v in p) for p in np.ndindex(*shape)]

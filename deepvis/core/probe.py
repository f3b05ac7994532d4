"""Finding a model's layers and capturing their activations.

Layers are discovered by one dry run with a forward hook on every module, so the list is in
execution order and every entry has its real output shape. Three things make this more than
``named_modules``:

* A module may run several times per forward (EfficientNet reuses one activation module per
  block); each call is its own layer, named ``path#k``.
* Outputs may be tuples or dicts (segmentation nets return ``{"out": ..., "aux": ...}``);
  each tensor inside is its own layer, named ``path[key]``.
* TorchScript modules take no Python hooks. A scripted ``nn.Sequential`` is probed by calling
  its children one by one; other scripted models expose only their output, and
  ``Probe.unavailable_reason`` says why.

Captured tensors are cloned: a later in-place op (``ReLU(inplace=True)`` after a BatchNorm)
would otherwise change what we captured. Hooks are removed in ``finally`` blocks, always.
"""

import difflib
import re
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from deepvis.errors import DeepvisError

OUTPUT = "output"
# Layers that only pass data through: hidden in lists unless asked for, skipped by defaults.
PLUMBING = frozenset({"Identity", "Dropout", "Dropout2d", "ZeroPad2d", "ConstantPad2d", "Flatten"})
ACTIVATION_TYPES = frozenset({"ReLU", "ReLU6", "LeakyReLU", "PReLU", "ELU", "SELU", "CELU", "GELU", "SiLU",
                              "Hardswish", "Mish", "Sigmoid", "Tanh", "Softplus", "MemoryEfficientSwish",
                              "Swish"})
_NAME = re.compile(r"^(?P<path>[^#\[]*)(?:#(?P<call>\d+))?(?P<keys>(?:\[[^\]]*\])*)$")


@dataclass(frozen=True)
class LayerInfo:
    name: str
    path: str  # module path in named_modules; "" for the model itself
    call: int  # which call of the module within one forward
    keys: tuple  # where the tensor sits inside the module's (tuple/dict) output
    type_name: str
    shape: tuple[int, ...]  # one sample's output shape (batch dimension removed); a token layer's as C x H x W
    # A transformer's (N, C) tokens laid out on the patch grid: (prefix tokens (CLS,
    # distillation, registers) set apart, grid height, grid width); None for other layers.
    tokens: tuple[int, int, int] | None = None
    channels_last: bool = False  # a (H, W, C) output (Swin, ConvNeXt blocks) reported as C x H x W

    @property
    def spatial(self) -> bool:
        return len(self.shape) == 3

    @property
    def channels(self) -> int:
        return self.shape[0] if self.shape else 1

    @property
    def is_conv(self) -> bool:
        # Channels x pixels, or channels x time steps for a 1-D convolution.
        return "Conv" in self.type_name and len(self.shape) in (2, 3)

    @property
    def numel(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n

    def describe(self) -> str:
        return f"{self.name}  {self.type_name}  {'x'.join(map(str, self.shape))}"


def flatten_output(out, keys=()) -> list[tuple[tuple, torch.Tensor]]:
    """Every tensor inside a (nested) tuple/list/dict output, with its key path."""
    if isinstance(out, torch.Tensor):
        return [(keys, out)]
    items: Iterable = ()
    if isinstance(out, Mapping):
        items = out.items()
    elif isinstance(out, (tuple, list)):
        items = enumerate(out)
    found = []
    for key, value in items:
        found.extend(flatten_output(value, keys + (key,)))
    return found


def _pick(out, keys):
    for key in keys:
        out = out[key]
    return out


def layer_name(path: str, call: int, repeated: bool, keys: tuple) -> str:
    name = path or OUTPUT
    if repeated:
        name += f"#{call}"
    return name + "".join(f"[{k}]" for k in keys)


class Probe:
    """The layers of one model for one input shape, and activation capture over them."""

    def __init__(self, module: nn.Module, example_input: torch.Tensor):
        self.module = module
        self.unavailable_reason: str | None = None
        # The prefix tokens (CLS, registers) of the first sample, (prefix, C), of each token
        # layer at its last capture: the grid shows only the patches.
        self.prefixes: dict[str, np.ndarray] = {}
        self._chain: list[tuple[str, nn.Module]] | None = None
        self._runs: dict[tuple, bool] = {}  # runs_at's answers: a model's sizes do not change
        if isinstance(module, torch.jit.ScriptModule):
            self.layers = self._discover_scripted(example_input)
        else:
            self.layers = self._discover(example_input)
        self._by_name = {layer.name: layer for layer in self.layers}

    # --- discovery -----------------------------------------------------------------------

    def _discover(self, x) -> list[LayerInfo]:
        records = []
        counts: dict[str, int] = defaultdict(int)
        owner = threading.get_ident()

        def make_hook(path):
            def hook(mod, _inputs, out):
                if threading.get_ident() != owner:
                    return  # the model running elsewhere meanwhile (a live view) is not this dry run
                # Shapes only: keeping every output alive until the end of the dry run costs
                # gigabytes on segmentation nets.
                shapes = [(keys, tuple(t.shape[1:])) for keys, t in flatten_output(out)]
                records.append((path, counts[path], module_type(mod), shapes))
                counts[path] += 1
            return hook

        handles = [hook_forward(m, make_hook(p)) for p, m in hookable_modules(self.module)]
        try:
            _dry_run(self.module, x)
        finally:
            for h in handles:
                h.remove()
        layers = []
        for path, call, type_name, shapes in records:
            for keys, shape in shapes:
                layers.append(LayerInfo(layer_name(path, call, counts[path] > 1, keys), path, call, keys,
                                        type_name, shape))
        return _with_token_grids(layers, dict(self.module.named_modules()))

    def _discover_scripted(self, x) -> list[LayerInfo]:
        name = getattr(self.module, "original_name", type(self.module).__name__)
        if name == "Sequential":
            self._chain = list(self.module.named_children())
            layers, out = [], x
            for path, child in self._chain:
                out = _dry_run(child, out)
                layers.append(LayerInfo(path, path, 0, (), getattr(child, "original_name", "?"),
                                        tuple(out.shape[1:])))
            return layers + [LayerInfo(OUTPUT, "", 0, (), name, tuple(out.shape[1:]))]
        self.unavailable_reason = (
            "TorchScript runs its layers inside compiled code where Python hooks cannot reach; to see inner "
            "layers, load the architecture (package.module:factory or a zoo name) with --weights and a state dict")
        out = _dry_run(self.module, x)
        return [LayerInfo(layer_name("", 0, False, keys), "", 0, keys, name, tuple(t.shape[1:]))
                for keys, t in flatten_output(out)]

    # --- lookup --------------------------------------------------------------------------

    def names(self) -> list[str]:
        return [layer.name for layer in self.layers]

    def __contains__(self, name: str) -> bool:
        return name in self._by_name

    def layer(self, name: str) -> LayerInfo:
        try:
            return self._by_name[name]
        except KeyError:
            pass
        close = difflib.get_close_matches(name, self.names(), n=4, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; list them with deepvis info"
        extra = f" ({self.unavailable_reason.split(';')[0]})" if self.unavailable_reason else ""
        raise DeepvisError(f"no layer named {name!r} in this model{extra}{hint}")

    def activation_bytes(self) -> int:
        """Every layer's float32 output for one sample, as the dry run measured it: what a
        forward pass keeps for its backward pass, which the memory estimates of saliency and
        dreams start from."""
        return 4 * sum(layer.numel for layer in self.layers)

    def conv_layers(self) -> list[LayerInfo]:
        return [layer for layer in self.layers if layer.is_conv]

    def largest_conv_layer(self) -> LayerInfo:
        """The conv layer with the most output elements: the heaviest one to show."""
        convs = self.conv_layers() or [layer for layer in self.layers if layer.spatial] or self.layers
        return max(convs, key=lambda layer: layer.numel)

    def feature_layer(self) -> LayerInfo:
        """The layer before the classifier head (the last Linear), pass-through layers skipped:
        the features an embedding map shows. Models without a Linear head: the last layer
        before the output."""
        layers = [layer for layer in self.layers if layer.path]
        heads = [i for i, layer in enumerate(layers) if layer.type_name == "Linear"]
        end = heads[-1] if heads else len(layers)
        for layer in reversed(layers[:end]):
            if layer.type_name not in PLUMBING:
                return layer
        return self.layers[-1]

    def default_layer(self) -> LayerInfo:
        """A rectified spatial layer about half way through: what DVT users look at first."""
        spatial = [layer for layer in self.layers if layer.spatial and layer.path]
        if not spatial:
            # A 1-D model: channels x time steps are its maps (the output, a vector, shows nothing).
            spatial = [layer for layer in self.layers if len(layer.shape) == 2 and layer.path]
        rectified = [layer for layer in spatial if layer.type_name in ACTIVATION_TYPES]
        candidates = rectified or [layer for layer in spatial if layer.is_conv] or spatial
        if not candidates:
            return self.layers[-1]
        return candidates[len(candidates) // 2]

    # --- capture -------------------------------------------------------------------------

    def capture(self, x: torch.Tensor, names: Iterable[str], detach: bool = True,
                transform: Callable[[str, torch.Tensor], object] | None = None):
        """Run the model on ``x``; return its output and ``{name: activation}`` for ``names``.

        With ``detach=False`` the activations stay in the autograd graph (for gradient views).
        ``transform(name, tensor)``, when given, is applied inside the hook, before any later
        in-place op can touch the tensor, and its result is kept instead of a clone: the live
        pipeline tiles a layer straight from the hook, saving a copy of the whole layer.
        """
        wanted = [self.layer(n) for n in dict.fromkeys(names)]
        if transform is None:
            def transform(_name, tensor):
                return _keep(tensor, detach)
        if self._chain is not None:
            return self._capture_chain(x, wanted, transform)
        captured: dict[str, torch.Tensor] = {}
        by_path: dict[str, list[LayerInfo]] = defaultdict(list)
        for layer in wanted:
            if layer.path:
                by_path[layer.path].append(layer)
        modules = dict(self.module.named_modules())
        counts: dict[str, int] = defaultdict(int)
        # Hooks belong to the module, not to this call: a forward on another thread (the live
        # pipeline while a script captures) would fire them too and overwrite our results.
        owner = threading.get_ident()

        def make_hook(path, layers):
            def hook(_mod, _inputs, out):
                if threading.get_ident() != owner:
                    return
                call = counts[path]
                counts[path] += 1
                for layer in layers:
                    if layer.call == call:
                        raw = _pick(out, layer.keys)
                        if layer.tokens is not None and layer.tokens[0]:
                            # The grid leaves the CLS token (and registers) out; kept apart, small.
                            self.prefixes[layer.name] = prefix_tokens(raw, layer)[0].detach().float().cpu().numpy()
                        captured[layer.name] = transform(layer.name, as_grid(raw, layer))
            return hook

        handles = [hook_forward(modules[p], make_hook(p, ls)) for p, ls in by_path.items()]
        try:
            output = self.module(x)
        finally:
            for h in handles:
                h.remove()
        for layer in wanted:
            if not layer.path:
                captured[layer.name] = transform(layer.name, _pick(output, layer.keys))
        return output, captured

    def runs_at(self, shape: tuple[int, ...], layer: str | None = None, device="cpu") -> bool:
        """Whether the model runs on one input of ``shape`` (C, H, W ...) up to ``layer`` (None:
        all of it). A vision transformer's position embeddings, or a linear head after a flatten,
        take one size only; such a model is dreamed and visualized at that size. Remembered."""
        key = (tuple(shape), layer)
        if key not in self._runs:
            x = torch.zeros((1, *shape), device=device)
            try:
                with torch.inference_mode():
                    self.capture_until(x, layer) if layer is not None else self.module(x)
                self._runs[key] = True
            except Exception:  # noqa: BLE001 (a size is refused with any error: shapes, asserts, ValueError)
                self._runs[key] = False
        return self._runs[key]

    def capture_until(self, x: torch.Tensor, name: str) -> torch.Tensor:
        """``name``'s activation for ``x``, in the autograd graph, stopping the forward pass there.

        Nothing after the layer runs: optimizing an input for an inner layer (dreams, feature
        visualization) costs only the layers up to it, and works at input sizes the model's
        head (a Flatten into a Linear) would refuse.
        """
        layer = self.layer(name)
        if not layer.path or self._chain is not None:
            _, acts = self.capture(x, [name], detach=False)
            return acts[name]
        module = self.module.get_submodule(layer.path)
        owner, calls, found = threading.get_ident(), [0], {}

        def hook(_mod, _inputs, out):
            if threading.get_ident() != owner:
                return
            call = calls[0]
            calls[0] += 1
            if call == layer.call:
                found["out"] = as_grid(_pick(out, layer.keys), layer)
                raise _StopForward()

        handle = hook_forward(module, hook)
        try:
            self.module(x)
        except _StopForward:
            pass
        finally:
            handle.remove()
        if "out" not in found:
            raise DeepvisError(f"{name} did not run for this input")
        return found["out"]

    def _capture_chain(self, x, wanted, transform):
        names = {layer.path for layer in wanted if layer.path}
        captured = {}
        out = x
        for path, child in self._chain:
            out = child(out)
            if path in names:
                captured[path] = transform(path, out)
        if any(layer.name == OUTPUT for layer in wanted):
            captured[OUTPUT] = transform(OUTPUT, out)
        return out, captured


MAX_PREFIX_TOKENS = 8  # CLS, distillation and up to 4 (DINOv2) or more register tokens


def module_type(module: nn.Module) -> str:
    """The class name a layer is shown with: for a torch.export program's InterpreterModule,
    the class it was exported from. (A TorchScript module keeps its own, RecursiveScriptModule:
    it says the layer is opaque.)"""
    if isinstance(module, torch.jit.ScriptModule):
        return type(module).__name__
    original = getattr(module, "original_name", None)
    return original if isinstance(original, str) and original else type(module).__name__


def hookable_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``named_modules()`` less what runs inside a TorchScript part of an eager model: compiled
    code calls its children without Python, so only the part itself is a layer (opaque)."""
    scripted: list[str] = []
    out = []
    for path, module in model.named_modules():
        if any(path.startswith(f"{s}.") for s in scripted):
            continue
        if path and isinstance(module, torch.jit.ScriptModule):
            scripted.append(path)
        out.append((path, module))
    return out


def hook_forward(module: nn.Module, hook):
    """``module.register_forward_hook(hook)``; for a TorchScript part of an eager model, which
    refuses hooks of its own ("register_forward_hook is not supported on ScriptModules"), a
    global forward hook that fires for that module only: its output as its parent received it."""
    if isinstance(module, torch.jit.ScriptModule):
        from torch.nn.modules.module import register_module_forward_hook

        return register_module_forward_hook(lambda mod, inputs, out: hook(mod, inputs, out) if mod is module else None)
    return module.register_forward_hook(hook)


def patch_grid(layers: list[LayerInfo], modules: Mapping[str, nn.Module]) -> tuple[int, int] | None:
    """A vision transformer's patch grid: the output size of its patch embedding, the first
    convolution when its stride equals its kernel (non-overlapping patches); None otherwise."""
    for layer in layers:
        m = modules.get(layer.path)
        if isinstance(m, nn.Conv2d):
            if tuple(m.kernel_size) == tuple(m.stride) and max(m.stride) > 1 and len(layer.shape) == 3:
                return int(layer.shape[1]), int(layer.shape[2])
            return None
    return None


def _with_token_grids(layers: list[LayerInfo], modules: Mapping[str, nn.Module]) -> list[LayerInfo]:
    """Token layers ((N, C) outputs with N = prefix + grid cells) reported as C x H x W, so the
    activation grid, unit pane and Grad-CAM see a map per channel instead of a channel per token."""
    grid = patch_grid(layers, modules)
    if grid is None:
        return layers
    cells = grid[0] * grid[1]
    # Hierarchical models (Swin, ConvNeXt) halve the grid stage by stage.
    grids = {(grid[0] >> k, grid[1] >> k) for k in range(6) if grid[0] >> k and grid[1] >> k}
    out = []
    for layer in layers:
        shape = layer.shape
        if len(shape) == 2 and "Conv" not in layer.type_name and 0 <= shape[0] - cells <= MAX_PREFIX_TOKENS:
            layer = LayerInfo(layer.name, layer.path, layer.call, layer.keys, layer.type_name,
                              (shape[1], *grid), (shape[0] - cells, *grid))
        elif len(shape) == 2 and "Conv" not in layer.type_name:
            side = next((g for g in grids if g[0] * g[1] == shape[0]), None)
            if side is not None:  # a later stage's tokens, no prefix
                layer = LayerInfo(layer.name, layer.path, layer.call, layer.keys, layer.type_name,
                                  (shape[1], *side), (0, *side))
        elif len(shape) == 3 and "Conv" not in layer.type_name and shape[:2] in grids and shape[1:] not in grids:
            layer = LayerInfo(layer.name, layer.path, layer.call, layer.keys, layer.type_name,
                              (shape[2], shape[0], shape[1]), None, True)
        out.append(layer)
    return out


def as_grid(tensor, layer: LayerInfo):
    """A token layer's (B, N, C) output as (B, C, H, W), prefix tokens left out, and a
    channels-last (B, H, W, C) one as (B, C, H, W); others as they are."""
    if layer.channels_last and isinstance(tensor, torch.Tensor) and tensor.ndim == 4:
        return tensor.permute(0, 3, 1, 2)
    if layer.tokens is None or not isinstance(tensor, torch.Tensor) or tensor.ndim != 3:
        return tensor
    prefix, h, w = layer.tokens
    b, _, c = tensor.shape
    return tensor[:, prefix:, :].transpose(1, 2).reshape(b, c, h, w)


def prefix_tokens(tensor: torch.Tensor, layer: LayerInfo) -> torch.Tensor | None:
    """A token layer's prefix tokens (B, prefix, C): the CLS token's vector and the registers."""
    if layer.tokens is None or tensor.ndim != 3:
        return None
    return tensor[:, :layer.tokens[0], :]


def _dry_run(module, x):
    try:
        with torch.inference_mode():
            return module(x)
    except Exception as exc:  # any failure here means the input spec does not fit the model
        raise dry_run_error(exc, x) from None


def dry_run_error(exc: Exception, x) -> DeepvisError:
    """One line for a model failing on the input deepvis made for it (a timm ViT's size assertion,
    a shape error): what failed, on which input, and the options that fix it."""
    text = str(exc).strip()
    if "TorchScript interpreter" in text:  # the useful line comes last in TorchScript's traces
        text = [line for line in text.splitlines() if line.strip()][-1]
    first = text.splitlines()[0] if text else ""
    return DeepvisError(f"the model fails on a {tuple(x.shape)} input ({type(exc).__name__}: {first[:200]}); "
                        f"check --input-size and --channels")


def _keep(tensor: torch.Tensor, detach: bool) -> torch.Tensor:
    return tensor.detach().clone() if detach else tensor.clone()


def parse_layer_name(name: str) -> tuple[str, int | None, str]:
    """Split ``path#call[key]...`` into its parts (for display and for tests)."""
    m = _NAME.match(name)
    if not m:
        return name, None, ""
    call = m.group("call")
    return m.group("path"), int(call) if call is not None else None, m.group("keys")


class _StopForward(Exception):
    """Raised inside a hook to end a forward pass once the wanted layer has run."""

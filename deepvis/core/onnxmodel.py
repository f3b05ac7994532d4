"""ONNX files as PyTorch modules, so that every view works on them (``pip install deepvis[onnx]``).

onnx2torch 1.5.15 converts neither of torch 2.14's exports of resnet18 ("Converter is not
implemented" for ReduceMean at opset 18 from the default exporter, for Identity at opset 19
from the legacy one), so this is a converter of our own on the ``onnx`` package: each node
that computes on the data becomes a submodule, run in graph order, so forward hooks see every
layer. Parameterised nodes become torch's own layers (Conv2d, Linear, BatchNorm2d, LayerNorm,
ConvTranspose2d) named after their weights' names, which exporters keep: ``conv1.weight`` is
the layer ``conv1``, as in the PyTorch model the file came from, and the filter views, the
doctor and saliency read them as they read any model. Nodes that only compute shapes (Shape,
Gather of a shape, ConstantOfShape, ...) are run inline, not as layers.

The input spec comes from the graph's first input (channels and a static size, else
``--input-size``); mean, std and class names from the model's ``metadata_props``:
``deepvis.mean`` and ``deepvis.std`` (comma-separated, in [0, 1] pixel units) and
``deepvis.labels`` (a JSON list). Operators outside ``SUPPORTED`` are one error naming them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from deepvis.core.checkpoint import first_line
from deepvis.errors import DeepvisError

ELEMENTWISE = {"Add": torch.add, "Sub": torch.sub, "Mul": torch.mul, "Pow": torch.pow,
               "Equal": torch.eq, "Less": torch.lt, "Greater": torch.gt, "LessOrEqual": torch.le,
               "GreaterOrEqual": torch.ge, "And": torch.logical_and, "Or": torch.logical_or}
UNARY = {"Sqrt": torch.sqrt, "Exp": torch.exp, "Log": torch.log, "Neg": torch.neg, "Abs": torch.abs,
         "Erf": torch.erf, "Tanh": torch.tanh, "Sigmoid": torch.sigmoid, "Relu": torch.relu,
         "Reciprocal": torch.reciprocal, "Floor": torch.floor, "Ceil": torch.ceil, "Not": torch.logical_not,
         "Sin": torch.sin, "Cos": torch.cos, "Softplus": F.softplus, "Identity": lambda x: x,
         "HardSwish": F.hardswish, "Mish": F.mish}
SHAPES = {"Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Reshape", "Flatten", "Transpose", "Slice",
          "Expand", "ConstantOfShape", "Range", "Split", "Tile", "Cast", "Where", "Constant", "Size"}
LAYERS = {"Mod", "Conv", "ConvTranspose", "BatchNormalization", "Gemm", "MatMul", "MaxPool", "AveragePool",
          "GlobalAveragePool", "GlobalMaxPool", "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin",
          "LayerNormalization", "InstanceNormalization", "Resize", "Upsample", "Pad", "Softmax", "LogSoftmax",
          "Clip", "LeakyRelu", "Elu", "Selu", "HardSigmoid", "Gelu", "Dropout", "Min", "Max", "ArgMax"}
SUPPORTED = frozenset(ELEMENTWISE) | frozenset(UNARY) | SHAPES | LAYERS | {"Div"}
_DTYPES = {1: torch.float32, 2: torch.uint8, 3: torch.int8, 5: torch.int16, 6: torch.int32, 7: torch.int64,
           9: torch.bool, 10: torch.float16, 11: torch.float64, 16: torch.bfloat16}


def _attrs(node) -> dict:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _tensor(proto) -> torch.Tensor:
    from onnx import numpy_helper

    return torch.from_numpy(np.array(numpy_helper.to_array(proto)))


def _ints(value) -> list[int]:
    return [int(v) for v in (value.tolist() if torch.is_tensor(value) else value)]


class OnnxOp(nn.Module):
    """One ONNX node without a torch layer of its own; ``original_name`` is its operator, the
    type every view shows. Constant inputs (initializers) are buffers in their input slots."""

    def __init__(self, op: str, attrs: dict, inputs: list[str], initializers: dict):
        super().__init__()
        self.op, self.attrs = op, attrs
        self.original_name = op
        self.slots = []  # per input: "constant", "absent" or "dynamic"
        for k, name in enumerate(inputs):
            if not name:
                self.slots.append("absent")
            elif name in initializers:
                self.slots.append("constant")
                self.register_buffer(f"input_{k}", initializers[name].clone())
            else:
                self.slots.append("dynamic")
        self.constant_names = {n for n in inputs if n in initializers}

    def forward(self, *dynamic):
        given = iter(dynamic)
        inputs = [getattr(self, f"input_{k}") if slot == "constant" else None if slot == "absent" else next(given)
                  for k, slot in enumerate(self.slots)]
        return run_op(self.op, self.attrs, inputs)


def run_op(op: str, a: dict, x: list):
    """One ONNX operator on torch tensors (``x``: its inputs, None for an absent optional one)."""
    if op in UNARY:
        return UNARY[op](x[0])
    if op == "Div":
        if not x[0].is_floating_point() and not x[1].is_floating_point():
            return torch.div(x[0], x[1], rounding_mode="trunc")
        return x[0] / x[1]
    if op in ELEMENTWISE:
        return ELEMENTWISE[op](x[0], x[1])
    if op == "Mod":  # fmod=0: the sign of the divisor (Python's %), fmod=1: of the dividend (C's)
        return torch.fmod(x[0], x[1]) if a.get("fmod", 0) else torch.remainder(x[0], x[1])
    if op in ("Min", "Max"):
        out = x[0]
        for other in x[1:]:
            out = torch.minimum(out, other) if op == "Min" else torch.maximum(out, other)
        return out
    if op == "Constant":
        return _constant(a)
    if op == "Shape":
        shape = torch.tensor(x[0].shape, dtype=torch.int64)
        return shape[a.get("start", 0):a.get("end", None)]
    if op == "Size":
        return torch.tensor(x[0].numel(), dtype=torch.int64)
    if op == "Cast":
        return x[0].to(_DTYPES[a["to"]])
    if op == "Gather":
        index = x[1].long()
        axis = a.get("axis", 0)
        index = torch.where(index < 0, index + x[0].shape[axis], index)
        return torch.index_select(x[0], axis, index.flatten()).reshape(
            *x[0].shape[:axis % x[0].ndim], *index.shape, *x[0].shape[axis % x[0].ndim + 1:])
    if op == "Unsqueeze":
        axes = _ints(x[1]) if len(x) > 1 and x[1] is not None else list(a["axes"])
        out = x[0]
        rank = out.ndim + len(axes)
        for axis in sorted(ax % rank for ax in axes):
            out = out.unsqueeze(axis)
        return out
    if op == "Squeeze":
        axes = _ints(x[1]) if len(x) > 1 and x[1] is not None else a.get("axes")
        if axes is None:
            return x[0].squeeze()
        out = x[0]
        for axis in sorted((ax % out.ndim for ax in axes), reverse=True):
            out = out.squeeze(axis)
        return out
    if op == "Concat":
        # An empty 1-D input (a shape list with nothing in it) adds nothing.
        return torch.cat([t for t in x if t is not None and (t.numel() or t.ndim > 1)], a["axis"])
    if op == "Reshape":
        shape = _ints(x[1])
        if not a.get("allowzero", 0):
            shape = [x[0].shape[i] if s == 0 else s for i, s in enumerate(shape)]
        return x[0].reshape(shape)
    if op == "Flatten":
        axis = a.get("axis", 1) % max(x[0].ndim, 1)
        return x[0].reshape(int(np.prod(x[0].shape[:axis])), -1)
    if op == "Transpose":
        perm = a.get("perm") or list(range(x[0].ndim))[::-1]
        return x[0].permute(*perm)
    if op == "Slice":
        starts, ends = _ints(x[1]), _ints(x[2])
        axes = _ints(x[3]) if len(x) > 3 and x[3] is not None else list(range(len(starts)))
        steps = _ints(x[4]) if len(x) > 4 and x[4] is not None else [1] * len(starts)
        out = x[0]
        for start, end, axis, step in zip(starts, ends, axes, steps):
            size = out.shape[axis]
            start, end = start + size if start < 0 else start, end + size if end < 0 else end
            if step > 0:
                start, end = max(0, min(size, start)), max(0, min(size, end))
            else:  # ONNX clamps a backward slice to [-1, size - 1]
                start, end = max(-1, min(size - 1, start)), max(-1, min(size - 1, end))
            index = torch.arange(start, end, step, device=out.device)
            out = torch.index_select(out, axis, index)
        return out
    if op == "Expand":  # numpy-style broadcasting to the shape asked (its 1s keep the input's size)
        return x[0].expand(torch.broadcast_shapes(tuple(x[0].shape), tuple(_ints(x[1]))))
    if op == "ConstantOfShape":
        value = _tensor(a["value"]) if "value" in a else torch.zeros(1)
        return torch.full(_ints(x[0]), value.flatten()[0].item(), dtype=value.dtype)
    if op == "Range":
        return torch.arange(x[0].item(), x[1].item(), x[2].item(), dtype=x[0].dtype)
    if op == "Tile":
        return x[0].repeat(*_ints(x[1]))
    if op == "Where":
        return torch.where(x[0].bool(), x[1], x[2])
    if op == "Split":
        axis = a.get("axis", 0)
        if len(x) > 1 and x[1] is not None:
            sizes = _ints(x[1])
        elif "split" in a:
            sizes = list(a["split"])
        else:
            parts = a.get("num_outputs", 2)
            sizes = [math.ceil(x[0].shape[axis] / parts)] * parts
            sizes[-1] = x[0].shape[axis] - sum(sizes[:-1])
        return tuple(torch.split(x[0], sizes, axis))
    if op in ("MaxPool", "AveragePool"):
        return _pool(op, a, x[0])
    if op == "GlobalAveragePool":
        return x[0].mean(tuple(range(2, x[0].ndim)), keepdim=True)
    if op == "GlobalMaxPool":
        return x[0].amax(tuple(range(2, x[0].ndim)), keepdim=True)
    if op in ("ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin"):
        axes = _ints(x[1]) if len(x) > 1 and x[1] is not None else a.get("axes")
        keep = bool(a.get("keepdims", 1))
        if not axes:
            if a.get("noop_with_empty_axes", 0):
                return x[0]
            axes = list(range(x[0].ndim))
        fn = {"ReduceMean": torch.mean, "ReduceSum": torch.sum, "ReduceMax": torch.amax,
              "ReduceMin": torch.amin}[op]
        return fn(x[0], dim=tuple(axes), keepdim=keep)
    if op == "ArgMax":
        out = torch.argmax(x[0], dim=a.get("axis", 0), keepdim=bool(a.get("keepdims", 1)))
        return out
    if op in ("Softmax", "LogSoftmax"):
        fn = torch.softmax if op == "Softmax" else torch.log_softmax
        return fn(x[0], a.get("axis", -1))
    if op == "Clip":
        low = x[1] if len(x) > 1 and x[1] is not None else a.get("min")
        high = x[2] if len(x) > 2 and x[2] is not None else a.get("max")
        return torch.clamp(x[0], None if low is None else float(low), None if high is None else float(high))
    if op == "LeakyRelu":
        return F.leaky_relu(x[0], a.get("alpha", 0.01))
    if op == "Elu":
        return F.elu(x[0], a.get("alpha", 1.0))
    if op == "Selu":
        return F.selu(x[0])
    if op == "HardSigmoid":
        return torch.clamp(a.get("alpha", 0.2) * x[0] + a.get("beta", 0.5), 0, 1)
    if op == "Gelu":
        approximate = a.get("approximate", "none")
        return F.gelu(x[0], approximate=approximate.decode() if isinstance(approximate, bytes) else approximate)
    if op == "Dropout":
        return x[0]
    if op == "Pad":
        mode = a.get("mode", b"constant")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        pads = _ints(x[1]) if len(x) > 1 and x[1] is not None else list(a["pads"])
        value = float(x[2]) if len(x) > 2 and x[2] is not None and x[2].numel() else 0.0
        return F.pad(x[0], _torch_pads(pads), mode={"edge": "replicate"}.get(mode, mode),
                     **({"value": value} if mode == "constant" else {}))
    if op in ("Resize", "Upsample"):
        return _resize(op, a, x)
    if op == "MatMul":
        return torch.matmul(x[0], x[1])
    if op == "Gemm":
        left = x[0].T if a.get("transA", 0) else x[0]
        right = x[1].T if a.get("transB", 0) else x[1]
        out = a.get("alpha", 1.0) * (left @ right)
        return out + a.get("beta", 1.0) * x[2] if len(x) > 2 and x[2] is not None else out
    if op == "InstanceNormalization":
        return F.instance_norm(x[0], weight=x[1], bias=x[2], eps=a.get("epsilon", 1e-5))
    if op == "LayerNormalization":
        axis = a.get("axis", -1) % x[0].ndim
        return F.layer_norm(x[0], x[0].shape[axis:], x[1], x[2] if len(x) > 2 else None, a.get("epsilon", 1e-5))
    if op == "BatchNormalization":
        return F.batch_norm(x[0], x[3], x[4], x[1], x[2], False, 0.0, a.get("epsilon", 1e-5))
    if op in ("Conv", "ConvTranspose"):
        raise DeepvisError(f"ONNX {op} with a weight computed in the graph is not supported")
    raise DeepvisError(f"ONNX operator {op} is not supported")


def _torch_pads(pads: list[int]) -> list[int]:
    """ONNX's pads (every axis's start, then every axis's end) as F.pad takes them (the last
    axis first, its start and end)."""
    rank = len(pads) // 2
    return [p for axis in reversed(range(rank)) for p in (pads[axis], pads[axis + rank])]


def _constant(a: dict) -> torch.Tensor:
    if "value" in a:
        return _tensor(a["value"])
    for key, dtype in (("value_float", torch.float32), ("value_int", torch.int64)):
        if key in a:
            return torch.tensor(a[key], dtype=dtype)
    for key, dtype in (("value_floats", torch.float32), ("value_ints", torch.int64)):
        if key in a:
            return torch.tensor(list(a[key]), dtype=dtype)
    raise DeepvisError(f"ONNX Constant with {sorted(a)} is not supported")


def _pool(op: str, a: dict, x: torch.Tensor) -> torch.Tensor:
    kernel = list(a["kernel_shape"])
    rank = len(kernel)
    strides = list(a.get("strides", [1] * rank))
    pads = list(a.get("pads", [0] * 2 * rank))
    dilations = list(a.get("dilations", [1] * rank))
    ceil = bool(a.get("ceil_mode", 0))
    symmetric = pads[:rank] == pads[rank:]
    if not symmetric or any(p > k // 2 for p, k in zip(pads[:rank], kernel)):
        x = F.pad(x, _torch_pads(pads), value=-math.inf if op == "MaxPool" else 0.0)
        pads = [0] * 2 * rank
    fns = {("MaxPool", 1): F.max_pool1d, ("MaxPool", 2): F.max_pool2d, ("MaxPool", 3): F.max_pool3d,
           ("AveragePool", 1): F.avg_pool1d, ("AveragePool", 2): F.avg_pool2d, ("AveragePool", 3): F.avg_pool3d}
    if op == "MaxPool":
        return fns[op, rank](x, kernel, strides, pads[:rank], dilations, ceil_mode=ceil)
    return fns[op, rank](x, kernel, strides, pads[:rank], ceil_mode=ceil,
                         count_include_pad=bool(a.get("count_include_pad", 0)))


def _resize(op: str, a: dict, x: list) -> torch.Tensor:
    mode = a.get("mode", b"nearest")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    data = x[0]
    if op == "Upsample":
        scales = _scales(x[1]) if len(x) > 1 and x[1] is not None else list(a["scales"])
        sizes = None
    else:
        scales = _scales(x[2]) if len(x) > 2 and x[2] is not None and x[2].numel() else None
        sizes = _ints(x[3]) if len(x) > 3 and x[3] is not None and x[3].numel() else None
    size = sizes[2:] if sizes else [int(math.floor(d * s)) for d, s in zip(data.shape[2:], scales[2:])]
    transform = a.get("coordinate_transformation_mode", b"half_pixel")
    transform = transform.decode() if isinstance(transform, bytes) else transform
    if mode == "nearest":
        return F.interpolate(data, size=size, mode="nearest")
    torch_mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[data.ndim - 2] if mode == "linear" else "bicubic"
    return F.interpolate(data, size=size, mode=torch_mode, align_corners=transform == "align_corners")


def _scales(value) -> list[float]:
    return [float(v) for v in (value.tolist() if torch.is_tensor(value) else value)]


class OnnxModule(nn.Module):
    """The graph of an ONNX model: layers as submodules (at the paths their weights name),
    shape logic inline, run in the graph's order."""

    def __init__(self, steps: list, input_name: str, output_names: list[str], constants: dict):
        super().__init__()
        self._steps = steps  # (node index, op, attrs, module path or None, input names, output names)
        self._input_name = input_name
        self._output_names = output_names
        self._constants = constants  # name -> tensor (initializers the inline steps read)

    def forward(self, x):
        values = {self._input_name: x}
        values.update(self._constants)
        modules = self.__dict__.get("_by_path")
        if modules is None:  # once: walking the module tree every frame is wasted time
            modules = self.__dict__["_by_path"] = dict(self.named_modules())
        for _index, op, attrs, path, inputs, outputs in self._steps:
            if path is not None:
                module = modules[path]
                constant = getattr(module, "constant_names", set())
                dynamic = [values[n] for n in inputs if n and n not in constant]
                result = module(*dynamic)
            else:
                result = run_op(op, attrs, [values[n] if n else None for n in inputs])
            if isinstance(result, tuple):
                values.update(zip(outputs, result))
            else:
                values[outputs[0]] = result
        outs = [values[n] for n in self._output_names]
        return outs[0] if len(outs) == 1 else tuple(outs)


class _Scope(nn.Module):
    """A module path's container, made for the layers under it (never called)."""


def _set_path(root: nn.Module, path: str, module: nn.Module) -> None:
    parent = root
    parts = path.split(".")
    for part in parts[:-1]:
        child = parent._modules.get(part)
        if child is None:
            child = _Scope()
            parent.add_module(part, child)
        parent = child
    existing = parent._modules.get(parts[-1])
    if existing is not None:  # a scope made for a layer inside this one (the padding inside a convolution)
        for name, sub in existing.named_children():
            module.add_module(name, sub)
    parent.add_module(parts[-1], module)


def _layer_path(node, weight_name: str | None, taken: set) -> str:
    """The module path of a node: its weight's name less ``.weight`` (exporters keep the
    PyTorch names), else its name's scope (``/layer1/layer1.0/relu/Relu`` -> ``layer1.0.relu``),
    else its operator; a count after a path already taken. A path may nest under another
    layer's: a padding inside a convolution is ``_conv_stem.static_padding``, as in PyTorch."""
    if weight_name and weight_name.endswith(".weight"):
        base = weight_name[: -len(".weight")]
    else:
        # The legacy exporter's scopes: "/layer1/layer1.0/relu/Relu", "/_blocks.0/_swish/Clip" (a
        # level repeats the path above it, or adds its own name to it); the last part is the op.
        parts = [p for p in node.name.split("/") if p][:-1]
        base = ""
        for part in parts:
            base = part if not base or part.startswith(base + ".") else f"{base}.{part}"
        if not base or not all(c.isalnum() or c in "._" for c in base):
            base = node.op_type
    base = ".".join(part or "_" for part in base.replace("::", ".").split("."))
    path, k = base, 1
    while path in taken:  # the same module run twice (a shared activation): path_1, path_2, ...
        path, k = f"{base}_{k}", k + 1
    taken.add(path)
    return path


def load_onnx(path, input_size: tuple[int, int] | None = None) -> nn.Module:
    """The ONNX model at ``path`` as an ``OnnxModule``; its input shape (channels, height,
    width), mean, std and labels are attributes for the loader (``deepvis_input_shape``, ...)."""
    try:
        import onnx
    except ImportError:
        raise DeepvisError(f"{path} is an ONNX model: loading it needs the onnx package (pip install "
                           f"\"deepvis[onnx]\")") from None
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # noqa: BLE001 (protobuf raises its own types)
        raise DeepvisError(f"{path} is a broken ONNX file: {first_line(exc)}") from None
    graph = model.graph
    unsupported = sorted({n.op_type for n in graph.node if n.domain not in ("", "ai.onnx")} |
                         {n.op_type for n in graph.node if n.op_type not in SUPPORTED})
    if unsupported:
        raise DeepvisError(f"{Path(path).name} uses ONNX operator{'s' * (len(unsupported) > 1)} deepvis does not "
                           f"convert: {', '.join(unsupported[:8])}")
    initializers = {t.name: _tensor(t) for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise DeepvisError(f"{Path(path).name} has {len(inputs)} inputs: deepvis runs models of one input")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in inputs[0].type.tensor_type.shape.dim]
    shape = tuple(dims[1:]) if dims else ()
    root = OnnxModule([], inputs[0].name, [o.name for o in graph.output], {})
    taken: set[str] = set()
    steps, inline_constants = [], {}
    data = {inputs[0].name}  # the values that flow from the input's data (not shapes, not constants)
    for index, node in enumerate(graph.node):
        try:
            _convert(node, index, initializers, data, taken, steps, inline_constants, root)
        except DeepvisError:
            raise
        except Exception as exc:  # noqa: BLE001 (a malformed node fails in many ways)
            raise DeepvisError(f"{Path(path).name}: cannot convert node {node.name or index} ({node.op_type}): "
                               f"{first_line(exc)}") from None
    root._steps = steps
    root._constants = inline_constants
    meta = {p.key: p.value for p in model.metadata_props}
    root.deepvis_input_shape = shape if len(shape) == 3 and all(isinstance(d, int) for d in shape) else None
    root.deepvis_input_channels = shape[0] if shape and isinstance(shape[0], int) else None
    root.deepvis_mean = _numbers(meta.get("deepvis.mean"), "deepvis.mean", path)
    root.deepvis_std = _numbers(meta.get("deepvis.std"), "deepvis.std", path)
    root.deepvis_labels = _labels(meta.get("deepvis.labels"), path)
    root.original_name = "OnnxModel"
    return root.eval()


def _convert(node, index, initializers, data, taken, steps, inline_constants, root) -> None:
    """One node: folded into the constants, run inline (shape logic) or made a layer of ``root``."""
    attrs = _attrs(node)
    if not any(n in data for n in node.input) and all(not n or n in initializers for n in node.input):
        # Constants of constants (Constant, Identity of a weight, a reversed pad list):
        # folded now, so a convolution whose weight passes through them keeps its weight.
        result = run_op(node.op_type, attrs, [initializers[n] if n else None for n in node.input])
        for name, value in zip(node.output, result if isinstance(result, tuple) else (result,)):
            initializers[name] = value
        return
    if node.op_type in ("Shape", "Size") or not any(n in data for n in node.input):
        # Shape logic runs inline: it is not a layer.
        inline_constants.update({n: initializers[n] for n in node.input if n in initializers})
        steps.append((index, node.op_type, attrs, None, list(node.input), list(node.output)))
        return
    layer = _torch_layer(node, attrs, initializers)
    weight = node.input[1] if layer is not None and len(node.input) > 1 else None
    module = layer if layer is not None else _op_module(node, attrs, initializers)
    module_path = _layer_path(node, weight, taken)
    _set_path(root, module_path, module)
    steps.append((index, node.op_type, attrs, module_path, list(node.input), list(node.output)))
    data.update(node.output)


def _numbers(text, key, path):
    if text is None:
        return None
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise DeepvisError(f"{path}: metadata {key}={text!r} is not comma-separated numbers") from None
    return values


def _labels(text, path):
    if text is None:
        return None
    try:
        labels = json.loads(text)
    except ValueError:
        raise DeepvisError(f"{path}: metadata deepvis.labels is not a JSON list") from None
    if not isinstance(labels, list) or not all(isinstance(v, str) for v in labels):
        raise DeepvisError(f"{path}: metadata deepvis.labels is not a JSON list of names")
    return labels


def _op_module(node, attrs, initializers) -> nn.Module:
    return OnnxOp(node.op_type, attrs, list(node.input), initializers)


class _Conv(nn.Module):
    """A convolution with ONNX's padding (asymmetric pads become an explicit pad first)."""

    def __init__(self, conv: nn.Module, pads: list[int] | None):
        super().__init__()
        self.conv, self.pads = conv, pads

    def forward(self, x):
        return self.conv(F.pad(x, self.pads) if self.pads else x)


def _torch_layer(node, a: dict, init: dict) -> nn.Module | None:
    """torch's own layer for a parameterised node whose parameters are all initializers; None
    when it has none (then it runs as an OnnxOp)."""
    op, names = node.op_type, list(node.input)
    if any(n not in init for n in names[1:] if n):
        return None
    if op == "Conv":
        weight = init[names[1]]
        rank = weight.ndim - 2
        if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET", b"VALID", "VALID"):
            return None
        kinds = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
        pads = list(a.get("pads", [0] * 2 * rank))
        groups = a.get("group", 1)
        conv = kinds[rank](weight.shape[1] * groups, weight.shape[0], tuple(weight.shape[2:]),
                           stride=tuple(a.get("strides", [1] * rank)), dilation=tuple(a.get("dilations", [1] * rank)),
                           groups=groups, bias=len(names) > 2 and bool(names[2]),
                           padding=tuple(pads[:rank]) if pads[:rank] == pads[rank:] else 0)
        _copy(conv, weight, init[names[2]] if len(names) > 2 and names[2] else None)
        conv.constant_names = set(names[1:])
        if pads[:rank] == pads[rank:]:
            return conv
        wrapped = _Conv(conv, _torch_pads(pads))
        wrapped.constant_names = set(names[1:])
        wrapped.original_name = type(conv).__name__
        return wrapped
    if op == "ConvTranspose":
        weight = init[names[1]]
        rank = weight.ndim - 2
        pads = list(a.get("pads", [0] * 2 * rank))
        if pads[:rank] != pads[rank:] or "output_shape" in a:
            return None
        groups = a.get("group", 1)
        kinds = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
        conv = kinds[rank](weight.shape[0], weight.shape[1] * groups, tuple(weight.shape[2:]),
                           stride=tuple(a.get("strides", [1] * rank)), padding=tuple(pads[:rank]),
                           output_padding=tuple(a.get("output_padding", [0] * rank)), groups=groups,
                           dilation=tuple(a.get("dilations", [1] * rank)), bias=len(names) > 2 and bool(names[2]))
        _copy(conv, weight, init[names[2]] if len(names) > 2 and names[2] else None)
        conv.constant_names = set(names[1:])
        return conv
    if op == "BatchNormalization" and len(names) >= 5:
        scale, bias, mean, var = (init[n] for n in names[1:5])
        kinds = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
        bn = kinds.get(2)(scale.numel(), eps=a.get("epsilon", 1e-5))
        with torch.no_grad():
            bn.weight.copy_(scale)
            bn.bias.copy_(bias)
            bn.running_mean.copy_(mean)
            bn.running_var.copy_(var)
        bn.constant_names = set(names[1:])
        bn.eval()
        return bn
    if op == "Gemm" and len(names) >= 2 and not a.get("transA", 0) and a.get("alpha", 1.0) == 1.0 \
            and a.get("beta", 1.0) == 1.0:
        weight = init[names[1]]
        weight = weight if a.get("transB", 0) else weight.T
        bias = init[names[2]] if len(names) > 2 and names[2] else None
        if bias is not None and bias.ndim != 1:
            return None
        linear = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
        _copy(linear, weight, bias)
        linear.constant_names = set(names[1:])
        return linear
    if op == "MatMul" and init[names[1]].ndim == 2:
        weight = init[names[1]].T
        linear = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
        _copy(linear, weight, None)
        linear.constant_names = {names[1]}
        return linear
    if op == "LayerNormalization" and a.get("axis", -1) == -1 and len(names) >= 2:
        scale = init[names[1]]
        norm = nn.LayerNorm(scale.shape, eps=a.get("epsilon", 1e-5), elementwise_affine=True,
                            bias=len(names) > 2 and bool(names[2]))
        with torch.no_grad():
            norm.weight.copy_(scale)
            if norm.bias is not None:
                norm.bias.copy_(init[names[2]])
        norm.constant_names = set(names[1:])
        return norm
    simple = {"Relu": nn.ReLU, "Sigmoid": nn.Sigmoid, "Tanh": nn.Tanh, "HardSwish": nn.Hardswish,
              "Identity": nn.Identity}
    if op in simple and len(names) == 1:
        return simple[op]()
    if op == "Clip" and len(names) == 3 and names[1] in init and names[2] in init:
        low, high = float(init[names[1]]), float(init[names[2]])
        module = nn.ReLU6() if (low, high) == (0.0, 6.0) else nn.Hardtanh(low, high)
        module.constant_names = set(names[1:])
        return module
    if op == "GlobalAveragePool":
        return nn.AdaptiveAvgPool2d(1)
    if op == "Gelu":
        approximate = a.get("approximate", "none")
        return nn.GELU(approximate=approximate.decode() if isinstance(approximate, bytes) else approximate)
    return None


def _copy(layer: nn.Module, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
    with torch.no_grad():
        layer.weight.copy_(weight)
        if bias is not None:
            layer.bias.copy_(bias)

"""A model's dataflow graph, recorded from one forward pass.

Every model the app loads gets a graph this way, whether or not ``torch.fx`` or
``torch.export`` can trace it (data-dependent control flow, TorchScript parts, Python side
effects): the graph is what one dry run did. Forward pre- and post-hooks on every module keep
a stack of the modules running; a leaf module (no children, or a TorchScript part) is a node,
with edges from whatever produced its input tensors. A ``TorchFunctionMode`` sees every torch
function and tensor method called outside a leaf (a residual ``+``, ``torch.cat``, a reshape,
a ViT's attention arithmetic) and makes each one a node too, so skip connections and
concatenations show with both inputs. Edges come from tensor identity: each tensor object is
mapped to the node that last produced it (an in-place op produces its input anew), through a
weak reference, so a freed tensor's id reused by a new one is not taken for it.

Module nodes are named as ``deepvis.core.probe`` names layers (``path``, ``path#k`` for a
module called more than once), so a node selects that layer in every view.

The pass and the hooks' graph outlive nothing: the run is under ``inference_mode`` and the
recorder keeps ids, shapes and names, not tensors, once it returns.
"""

from __future__ import annotations

import threading
import weakref
from collections import defaultdict
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from deepvis.core.probe import flatten_output, hook_forward, hookable_modules, layer_name, module_type

# Methods that describe a tensor rather than compute from it (their results are not data).
_NOT_DATA = frozenset({"size", "dim", "numel", "__len__", "element_size", "is_contiguous", "is_floating_point",
                       "data_ptr", "stride", "storage_offset", "tolist", "item", "__bool__", "__format__",
                       "__repr__", "__hash__", "get_device", "is_complex"})


@dataclass
class Node:
    id: int
    name: str  # a module's layer name (probe's), a function's name and count (add_3), input, output
    op: str  # "input", "module", "function" or "output"
    type: str  # the module's class or the function's name
    shape: tuple[int, ...] | None  # one sample's output shape (batch removed); None when not a tensor
    params: int  # parameters the node uses itself (a module's own, a function's parameter inputs)
    group: str  # the path of the module it ran inside ("" for the model's own forward)
    layer: str | None = None  # the probe layer that shows its output, when it has one


@dataclass
class Graph:
    nodes: list[Node]  # in execution order (a topological order)
    edges: list[tuple[int, int]]  # (source id, target id), each once
    groups: dict[str, str] = field(default_factory=dict)  # module path -> class name, for every container

    def to_json(self) -> dict:
        return {"nodes": [{"id": n.id, "name": n.name, "op": n.op, "type": n.type,
                           "shape": list(n.shape) if n.shape is not None else None, "params": n.params,
                           "group": n.group, "layer": n.layer} for n in self.nodes],
                "edges": [{"source": s, "target": t} for s, t in self.edges],
                "groups": [{"path": path, "type": kind} for path, kind in self.groups.items()]}


def _function_name(func) -> str:
    owner = getattr(func, "__self__", None)
    name = getattr(func, "__name__", None) or type(func).__name__
    if name == "__get__" and owner is not None:  # a property: Tensor.T, Tensor.mT
        return getattr(owner, "__name__", "attribute")
    return name.strip("_") or name


def _tensors(value) -> list[torch.Tensor]:
    return [t for _, t in flatten_output(value)] if not isinstance(value, torch.Tensor) else [value]


def _sample_shape(tensors: list[torch.Tensor]) -> tuple[int, ...] | None:
    if not tensors:
        return None
    shape = tuple(tensors[0].shape)
    return shape[1:] if shape else shape


class _Recording:
    def __init__(self, module: nn.Module):
        self.module = module
        self.nodes: list[Node] = []
        self.edges: dict[tuple[int, int], None] = {}
        # id(tensor) -> (a weak reference to it, node id): an id is reused once its tensor is
        # freed, and the weak reference then no longer gives the same tensor. (Keeping every
        # tensor alive instead would hold a whole pass's activations: gigabytes on a segmentation
        # net, as the probe's dry run found.)
        self.producer: dict[int, tuple[weakref.ref, int]] = {}
        self.stack: list[str] = []  # the paths of the modules running
        self.inside_leaf = 0
        self.calls: dict[str, int] = defaultdict(int)
        self.function_counts: dict[str, int] = defaultdict(int)
        self.module_calls: list[tuple[Node, str, int, tuple]] = []  # node, path, call, first output's keys
        self.owner = threading.get_ident()

    def add(self, name, op, type_name, inputs, outputs, params, group) -> Node:
        node = Node(len(self.nodes), name, op, type_name, _sample_shape(outputs), params, group)
        self.nodes.append(node)
        for tensor in inputs:
            known = self.producer.get(id(tensor))
            if known is not None and known[0]() is tensor and known[1] != node.id:
                self.edges[(known[1], node.id)] = None
        for tensor in outputs:
            self.producer[id(tensor)] = (weakref.ref(tensor), node.id)
        return node


class _Functions(TorchFunctionMode):
    def __init__(self, recording: _Recording):
        super().__init__()
        self.recording = recording

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        rec = self.recording
        if rec.inside_leaf or threading.get_ident() != rec.owner:
            return out
        name = _function_name(func)
        outputs = _tensors(out)
        if not outputs or name in _NOT_DATA:
            return out
        inputs = _tensors(list(args) + list((kwargs or {}).values()))
        params = sum(t.numel() for t in inputs if isinstance(t, nn.Parameter))
        count = rec.function_counts[name]
        rec.function_counts[name] += 1
        rec.add(f"{name}_{count}", "function", name, inputs, outputs, params, rec.stack[-1] if rec.stack else "")
        return out


def record_graph(module: nn.Module, x: torch.Tensor) -> Graph:
    """The dataflow graph of ``module`` on input ``x`` (one forward pass, no gradients)."""
    rec = _Recording(module)
    modules = hookable_modules(module)
    leaves = {path for path, m in modules if not list(m.children()) or isinstance(m, torch.jit.ScriptModule)}
    groups = {path: type(m).__name__ for path, m in modules if path not in leaves}
    pending: dict[int, list] = {}  # id(module) -> the inputs of its running leaf calls

    def pre(path):
        def hook(mod, args, kwargs=None):
            if threading.get_ident() != rec.owner:
                return
            rec.stack.append(path)
            if path in leaves:
                rec.inside_leaf += 1
                pending.setdefault(id(mod), []).append(_tensors(list(args) + list((kwargs or {}).values())))
        return hook

    def post(path):
        def hook(mod, _args, out):
            if threading.get_ident() != rec.owner:
                return
            rec.stack.pop()
            if path not in leaves:
                return
            rec.inside_leaf -= 1
            inputs = pending[id(mod)].pop()
            outputs = [t for _, t in flatten_output(out)]
            own = sum(p.numel() for p in mod.parameters(recurse=False)) if not isinstance(
                mod, torch.jit.ScriptModule) else sum(p.numel() for p in mod.parameters())
            node = rec.add(path, "module", module_type(mod), inputs, outputs, own,
                           rec.stack[-1] if rec.stack else "")
            keys = flatten_output(out)[0][0] if outputs else ()
            rec.module_calls.append((node, path, rec.calls[path], keys))
            rec.calls[path] += 1
        return hook

    handles = []
    for path, m in modules:
        if isinstance(m, torch.jit.ScriptModule):
            if path in leaves:
                handles.append(_scripted_hooks(m, pre(path), post(path)))
            continue
        handles.append(m.register_forward_pre_hook(pre(path), with_kwargs=True))  # forward(x, sr=...) too
        handles.append(hook_forward(m, post(path)))
    try:
        with torch.inference_mode():
            x = x.clone()
            rec.add("input", "input", "input", [], [x], 0, "")
            with _Functions(rec):
                out = module(x)
            outputs = [t for _, t in flatten_output(out)]
            rec.add("output", "output", "output", outputs, [], 0, "")
            rec.nodes[-1].shape = _sample_shape(outputs)
    finally:
        for h in handles:
            h.remove()
    for node, path, call, keys in rec.module_calls:
        # The model itself is a leaf only when it is one opaque TorchScript module: named by
        # its type, not "output" (the output node's name).
        node.name = layer_name(path, call, rec.calls[path] > 1, ()) if path else node.type
        node.layer = layer_name(path, call, rec.calls[path] > 1, keys)
    return Graph(rec.nodes, list(rec.edges), groups)


def _scripted_hooks(module, pre, post):
    """Pre- and post-hooks for a TorchScript part of an eager model (it refuses its own): global
    module hooks that fire for that module only."""
    from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook

    a = register_module_forward_pre_hook(lambda mod, args: pre(mod, args) if mod is module else None)
    b = register_module_forward_hook(lambda mod, args, out: post(mod, args, out) if mod is module else None)

    class Both:
        def remove(self):
            a.remove()
            b.remove()
    return Both()

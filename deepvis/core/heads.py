"""A model's outputs, and which of them is "the prediction" (its head).

Trained models return more than one tensor: a face detector's stage gives box offsets,
landmarks and a face probability; torchvision's segmenters a dict of ``out`` and ``aux``;
Hugging Face models a ``logits`` among hidden states; torchvision's detectors a list of dicts
of boxes, labels and scores. One dry run lists every output (``OutputInfo``) with the
activation it came out of (a softmax, log-softmax or sigmoid, as a module or a function), and
``choose_head`` picks the output that predictions, saliency targets and the dense views read:

* a detector's detections;
* the single output of a single-output model;
* else the first output produced by a softmax or sigmoid;
* else a dict's ``out`` or ``logits`` (torchvision's and Hugging Face's conventions);
* else the first output, with a note that says so and how to choose another (``--head``).

Outputs that are not the head are values: shown as numbers, never passed through a softmax.
"""

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch.overrides import TorchFunctionMode

from deepvis.errors import DeepvisError
from deepvis.core.predictions import PREFERRED_KEYS
from deepvis.core.probe import OUTPUT, dry_run_error, flatten_output, layer_name

ACTIVATIONS = ("softmax", "log_softmax", "sigmoid")
# Ops that pass an activation's values through unchanged in meaning: out.squeeze(), out[:, 1],
# out.view(-1, 2) of a softmax are still its probabilities.
_PASS_THROUGH = frozenset({
    "view", "view_as", "reshape", "reshape_as", "squeeze", "unsqueeze", "flatten", "unflatten", "permute",
    "transpose", "t", "contiguous", "clone", "float", "double", "half", "to", "detach", "cpu", "cuda",
    "__getitem__", "select", "narrow", "type", "squeeze_", "unsqueeze_", "expand", "expand_as"})
DETECTION_KEYS = ("boxes", "scores")


@dataclass(frozen=True)
class OutputInfo:
    """One tensor of a model's output: its name in the layer syntax (``output[2]``,
    ``output[0][scores]``), where it sits, one sample's shape, and the activation it came out
    of (None: none seen)."""

    name: str
    keys: tuple
    shape: tuple[int, ...]
    activation: str | None = None


@dataclass(frozen=True)
class Head:
    """The output that is "the prediction". ``detections``: a detector's list of dicts (boxes,
    labels, scores), one per image; ``chosen``: why this one (``--head``, only, softmax, key, first)."""

    name: str
    keys: tuple = ()
    shape: tuple[int, ...] = ()
    activation: str | None = None
    detections: bool = False
    chosen: str = "only"

    def pick(self, output):
        """This head's part of a model output: a tensor, or for a detector the list of dicts."""
        for key in self.keys:
            try:
                output = output[key]
            except (KeyError, IndexError, TypeError):
                raise DeepvisError(f"the model's output has no {self.name}") from None
        if self.detections:
            return output
        if not isinstance(output, torch.Tensor):
            raise DeepvisError(f"{self.name} is a {type(output).__name__}, not a tensor: choose one of its "
                               f"tensors with --head")
        return output

    def describe(self) -> str:
        if self.detections:
            return "detections (boxes, labels, scores)"
        what = {"softmax": "class scores (softmax)", "log_softmax": "class scores (log-softmax)",
                "sigmoid": "probabilities (sigmoid)"}.get(self.activation, "")
        return what or "class logits"


def is_detections(output) -> bool:
    """A torchvision-style detection output: a list (one per image) of dicts holding boxes and scores."""
    return (isinstance(output, (list, tuple)) and len(output) > 0
            and all(isinstance(o, Mapping) and all(k in o for k in DETECTION_KEYS) for o in output))


class _ActivationTracker(TorchFunctionMode):
    """Marks every tensor made by a softmax, log-softmax or sigmoid (module or function) and
    whatever only reshapes or indexes one; the marked tensors are kept alive so their ids
    stay theirs until the dry run ends."""

    def __init__(self):
        super().__init__()
        self.marks: dict[int, tuple[str, torch.Tensor]] = {}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if not isinstance(out, torch.Tensor):
            return out
        name = getattr(func, "__name__", "")
        if not name.startswith("__"):
            name = name.rstrip("_")  # sigmoid_ is sigmoid in place
        if name in ACTIVATIONS:
            self.marks[id(out)] = (name, out)
        elif name in _PASS_THROUGH and args and isinstance(args[0], torch.Tensor) and id(args[0]) in self.marks:
            self.marks[id(out)] = (self.marks[id(args[0])][0], out)
        return out

    def activation_of(self, tensor) -> str | None:
        mark = self.marks.get(id(tensor))
        return mark[0] if mark is not None and mark[1] is tensor else None


def list_outputs(module: torch.nn.Module, example: torch.Tensor):
    """Every output of one dry run and the run's output itself: ``([OutputInfo], output)``."""
    tracker = _ActivationTracker()
    try:
        with torch.inference_mode(), tracker:
            output = module(example)
    except Exception as exc:  # noqa: BLE001 (any failure: the input made for the model does not fit it)
        raise dry_run_error(exc, example) from None
    scripted = any(isinstance(m, torch.jit.ScriptModule) for m in module.modules())
    graph = _scripted_graph_text(module) if scripted else ""
    infos = []
    for keys, tensor in flatten_output(output):
        activation = tracker.activation_of(tensor)
        if activation is None and scripted:
            activation = _activation_by_values(tensor, graph)
        infos.append(OutputInfo(layer_name("", 0, False, keys), keys, tuple(tensor.shape[1:]), activation))
    return infos, output


def _scripted_graph_text(module) -> str:
    """The compiled code of every TorchScript part: where a softmax inside it is seen (no Python
    runs inside compiled code, so the tracker cannot)."""
    texts = []
    for m in module.modules():
        if isinstance(m, torch.jit.ScriptModule):
            try:  # from the compiled method itself: ``forward`` may be bound to call arguments
                texts.append(str(m._c._get_method("forward").inlined_graph))
            except Exception:  # noqa: BLE001 (a scripted container has no forward of its own)
                pass
    return "\n".join(texts)


def _activation_by_values(tensor: torch.Tensor, graph: str) -> str | None:
    """A TorchScript output's activation: its compiled code has one, and its values fit it."""
    if not tensor.is_floating_point() or tensor.numel() == 0:
        return None
    values = tensor.detach().float()
    if "aten::softmax" in graph and values.ndim >= 2 and values.shape[1] > 1 and values.min() >= 0:
        sums = values.sum(1)
        if torch.allclose(sums, torch.ones_like(sums), atol=1e-3):
            return "softmax"
    if "aten::sigmoid" in graph and values.min() >= 0 and values.max() <= 1:
        return "sigmoid"
    return None


def choose_head(outputs: list[OutputInfo], output, wanted: str | None = None) -> tuple[Head, str | None]:
    """The head and, when the choice is a guess, a note saying so."""
    if wanted is not None:
        return _wanted_head(outputs, output, wanted), None
    if is_detections(output):
        return Head(OUTPUT, (), detections=True, chosen="detector"), None
    if len(outputs) == 1:
        o = outputs[0]
        return Head(o.name, o.keys, o.shape, o.activation, chosen="only"), None
    if not outputs:
        raise DeepvisError("the model's output holds no tensor")
    for o in outputs:
        if o.activation is not None:
            return (Head(o.name, o.keys, o.shape, o.activation, chosen="activation"),
                    f"{o.name} of {len(outputs)} outputs is the prediction (it comes out of a {o.activation}); "
                    f"choose another with --head")
    for key in PREFERRED_KEYS:
        for o in outputs:
            if o.keys == (key,):
                return Head(o.name, o.keys, o.shape, None, chosen="key"), None
    o = outputs[0]
    return (Head(o.name, o.keys, o.shape, None, chosen="first"),
            f"{o.name} of {len(outputs)} outputs taken as class logits; choose another with --head")


def _wanted_head(outputs: list[OutputInfo], output, wanted: str) -> Head:
    text = wanted.strip()
    if text in ("", OUTPUT) and is_detections(output):
        return Head(OUTPUT, (), detections=True, chosen="--head")
    for o in outputs:
        if o.name == text:
            return Head(o.name, o.keys, o.shape, o.activation, chosen="--head")
    # A part holding a detector's dicts: output[0] of a detector is the first image's detections.
    names = ", ".join(o.name for o in outputs[:12]) + (" ..." if len(outputs) > 12 else "")
    raise DeepvisError(f"no output named {wanted!r}: this model's outputs are {names} (deepvis info lists them)")


def output_role(info: OutputInfo, head: Head) -> str:
    """What deepvis makes of one output, for ``info``."""
    if head.detections:
        return "detections"
    if info.keys == head.keys:
        return f"the prediction: {head.describe()}"
    return "values"

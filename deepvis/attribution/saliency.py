"""Gradient saliency and attribution maps on Captum.

Captum implements the methods; this module is the glue: what is being explained (a class, a
unit of any layer, a class channel of a segmentation output), which layer Grad-CAM uses, and
making guided backprop and deconvolution see every rectifier. Captum overrides the backward
pass only of ``nn.ReLU`` modules, so a ReLU6 network (EfficientNet-Lite, MobileNet) would
silently get the plain gradient; here each ReLU6 is swapped for ``ReLU`` followed by a clamp
for the duration of the call, and in-place ReLUs for out-of-place ones (Captum's backward
hooks cannot wrap in-place ops). Modules are always restored.
"""

import contextlib
import math
import re
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from deepvis.errors import Cancelled, DeepvisError
from deepvis.core.predictions import main_output, output_kind
from deepvis.core.defaults import WORK_MEMORY_BYTES
from deepvis.core.probe import Probe
from deepvis.attribution.phases import PhaseAveraged, stride_period

ROLLOUT_METHODS = ("attention-rollout", "grad-rollout")  # vision transformers only
CLASS_AGNOSTIC = ("attention-rollout",)  # the same map whatever the target: no gradient of it


def explains(method: str, target_words: str) -> str:
    """What a map of ``method`` shows, for captions: "gradcam for 7"; a class-agnostic method's
    map is not "for" a class (attention rollout was captioned "for 7")."""
    if method in CLASS_AGNOSTIC:
        return f"{method} (class-agnostic: the same map for every class)"
    return f"{method} for {target_words}"
METHODS = ("gradient", "deconv", "guided", "integrated-gradients", "smoothgrad", "gradcam", *ROLLOUT_METHODS)
LIGHT_METHODS = ("gradient", "deconv", "guided", "gradcam")  # one forward and one backward pass per map
PHASE_AVERAGED = ("gradient", "deconv", "guided", "smoothgrad")
PICTURE_TARGETS = ("output", "error")
MATCH_IOU = 0.5  # a shifted copy's detection is the target's when their boxes overlap this much


@dataclass(frozen=True)
class RegionMask:
    """A region of any shape (a brushed mask), hashable so it can sit in frozen settings:
    its (H, W) and the bits of the mask, packed."""

    height: int
    width: int
    bits: bytes

    @classmethod
    def of(cls, mask: np.ndarray) -> "RegionMask":
        mask = np.asarray(mask, bool)
        if mask.ndim != 2 or not mask.any():
            raise DeepvisError("a region mask must be a 2-D picture with some pixels set")
        return cls(int(mask.shape[0]), int(mask.shape[1]), np.packbits(mask).tobytes())

    def array(self) -> np.ndarray:
        bits = np.unpackbits(np.frombuffer(self.bits, np.uint8), count=self.height * self.width)
        return bits.reshape(self.height, self.width).astype(bool)

    def at(self, h: int, w: int) -> np.ndarray:
        """The mask resized (nearest) to (h, w): the grid of the map it restricts."""
        mask = self.array()
        if mask.shape == (h, w):
            return mask
        rows = np.minimum((np.arange(h) + 0.5) * self.height / h, self.height - 1).astype(int)
        cols = np.minimum((np.arange(w) + 0.5) * self.width / w, self.width - 1).astype(int)
        return mask[rows][:, cols]


@dataclass(frozen=True)
class Target:
    """What is explained.

    ``class``: output channel ``index``; ``unit``: channel ``index`` of ``layer``; ``top``: the
    highest-scoring class, chosen during the forward pass (live views follow the prediction).
    For image models: ``output``, the output picture's mean brightness, and ``error``, its mean
    squared difference from the input (``top`` means ``output`` there).
    ``region`` = (x0, y0, x1, y1) in fractions of the width and height, or a RegionMask,
    restricts a dense target (a segmentation class channel, a convolution unit) to those
    pixels before summing.
    """

    kind: str
    index: int = 0
    layer: str | None = None
    region: "tuple[float, float, float, float] | RegionMask | None" = None
    # A detector's ``detection`` target: (class, x0, y0, x1, y1) of detection ``index`` (by
    # score) in the input's pixels; every pass explains the detection that matches it best.
    box: tuple | None = None

    def describe(self, labels=None) -> str:
        if isinstance(self.region, RegionMask):
            where = f" in a drawn region of {int(self.region.array().sum())} pixels"
        else:
            where = "" if self.region is None else " in ({:.2f}, {:.2f})-({:.2f}, {:.2f})".format(*self.region)
        if self.kind == "top":
            return "the top prediction" + where
        if self.kind == "unit":
            return f"unit {self.index} of {self.layer}{where}"
        if self.kind == "output":
            return "the output picture's mean" + where
        if self.kind == "error":
            return "the reconstruction error" + where
        if self.kind == "detection":
            which = "" if self.box is None else (
                f" ({labels[self.box[0]] if labels and 0 <= self.box[0] < len(labels) else f'class {self.box[0]}'} "
                f"at {', '.join(f'{v:.0f}' for v in self.box[1:])})")
            return f"detection {self.index}{which}{where}"
        label = labels[self.index] if labels and 0 <= self.index < len(labels) else f"class {self.index}"
        return f"{label} ({self.index}){where}"


def parse_region(text: str | None) -> tuple[float, float, float, float] | None:
    """``X0,Y0,X1,Y1`` as fractions of the width and height (0..1), x0 < x1 and y0 < y1."""
    if text is None or text == "":
        return None
    from deepvis.core.inputspec import parse_floats

    values = parse_floats(text, "region")
    if len(values) != 4 or not (0 <= values[0] < values[2] <= 1 and 0 <= values[1] < values[3] <= 1):
        raise DeepvisError(f"bad region {text!r}: expected X0,Y0,X1,Y1 fractions with 0 <= x0 < x1 <= 1 "
                           f"and 0 <= y0 < y1 <= 1")
    return values


def parse_target(text: str | None, labels=None, probe: Probe | None = None) -> Target | None:
    """``None`` (the top prediction), a label name, a class index (a label that reads as a
    number is taken as the label), ``LAYER:INDEX``, or for image models ``output`` / ``error``."""
    if text is None or text == "":
        return None
    if text in PICTURE_TARGETS and not (labels and text in labels):
        return Target(text)
    if text.lower().startswith("det:"):
        try:
            rank = int(text[4:])
        except ValueError:
            rank = -1
        if rank < 0:
            raise DeepvisError(f"bad detection target {text!r}: expected det:N, N the detection's rank from 0 "
                               f"(deepvis predict lists them)")
        return Target("detection", rank)
    if ":" in text and probe is not None:
        layer, _, index = text.rpartition(":")
        if layer in probe:
            try:
                unit = int(index)
            except ValueError:
                raise DeepvisError(f"bad unit target {text!r}: expected LAYER:INDEX") from None
            channels = probe.layer(layer).channels
            if not 0 <= unit < channels:
                raise DeepvisError(f"{layer} has {channels} units; {unit} is out of range")
            return Target("unit", unit, layer)
    if labels and text.lower() in (lowered := [label.lower() for label in labels]):
        # A label first: digits_fcn's class "9" is index 10 (index 0 is the background).
        return Target("class", lowered.index(text.lower()))
    if text.lstrip("-").isdigit():
        index = int(text)
        if labels and not 0 <= index < len(labels):
            raise DeepvisError(f"class {index} is out of range: the model has {len(labels)} classes")
        return Target("class", index)
    if labels:
        import difflib

        lowered = [label.lower() for label in labels]

        close = difflib.get_close_matches(text.lower(), lowered, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise DeepvisError(f"no class named {text!r}{hint}")
    raise DeepvisError(f"bad target {text!r}: expected a class index, a label or LAYER:INDEX")


class Objective(nn.Module):
    """The model reduced to one number per sample: the score Captum differentiates.

    ``observe(name, tensor)``, called inside the hooks for ``observe_names``, lets the live
    pipeline tile its grid from the very forward pass that is differentiated; ``output`` keeps
    the model's last output and ``chosen`` the class a ``top`` target picked. ``on_call`` runs
    before each forward pass (Captum makes one per internal batch): progress and cancelling.
    """

    def __init__(self, model: nn.Module, probe: Probe, target: Target, observe=None, observe_names=(),
                 on_call=None, picture=None, head=None):
        super().__init__()
        self.model, self.probe, self.target = model, probe, target
        self.head = head  # heads.Head: the output explained (None: main_output's choice)
        self.detection: tuple | None = None  # the detection a ``top`` target explained: (class, box...)
        self.picture = picture  # an image model's (output range, input spec); None for others
        self.observe, self.observe_names = observe, tuple(observe_names)
        self.on_call = on_call
        self.observed: dict = {}
        self.output = None
        self.chosen: int | None = None
        self.calls = 0
        # Set by PhaseAveraged: the batch is this many shifted copies of the samples, and a
        # ``top`` target keeps the class the unshifted copy chose for all of them.
        self.copies = 1

    def forward(self, x):
        if self.on_call is not None:
            self.on_call(self.calls)
        self.calls += 1
        target = self.target
        unit_layer = target.layer if target.kind == "unit" else None
        names = [*self.observe_names, *([unit_layer] if unit_layer else [])]
        if names:
            def transform(name, tensor):
                if name in self.observe_names and self.observe is not None:
                    self.observed[name] = self.observe(name, tensor)
                return tensor if name == unit_layer else None

            out, acts = self.probe.capture(x, names, transform=transform)
        else:
            out = self.model(x)
        # Detached: an output holding its autograd graph would close a reference cycle through
        # the graph's C++ side (Captum's ReLU hooks -> the explainer -> this module -> the
        # graph), which Python's collector cannot see: guided/deconv then kept ~20 MB a call.
        self.output = _detached(out)
        if unit_layer:
            score = acts[unit_layer][:, target.index]
        elif target.kind == "detection" or (self.head is not None and self.head.detections):
            return self._detection_score(out, x, target)
        elif target.kind in PICTURE_TARGETS or (target.kind == "top" and self.picture is not None):
            return self._picture_score(self._main(out), x, target)
        else:
            scores = self._main(out)
            if scores.ndim == 1:  # one value per sample
                scores = scores[:, None]
            if target.kind == "top":
                per_class = scores if scores.ndim == 2 else scores.flatten(2).sum(2)
                chosen = per_class.detach().argmax(1)
                if self.copies > 1:
                    chosen = chosen.view(self.copies, -1)[0].repeat(self.copies)
                self.chosen = int(chosen[0])
                score = scores[torch.arange(scores.shape[0]), chosen]
            else:
                if not 0 <= target.index < scores.shape[1]:
                    raise DeepvisError(f"class {target.index} is out of range: the output has {scores.shape[1]}")
                score = scores[:, target.index]
        if target.region is not None:
            score = _crop(score, target.region)
        # Dense targets (a segmentation class channel, a conv unit): summed over their pixels.
        return score.reshape(score.shape[0], -1).sum(1)

    def _main(self, out):
        return self.head.pick(out) if self.head is not None else main_output(out)

    def _detection_score(self, out, x: torch.Tensor, target: Target) -> torch.Tensor:
        """Each picture's score of the detection that matches the target's box best (same class,
        the largest overlap): shifted or noisy copies of a picture find their boxes in another
        order, or one more or less. A copy without a match scores 0 (no gradient)."""
        from torchvision.ops import box_iou

        per_image = self.head.pick(out) if self.head is not None else out
        if not isinstance(per_image, (list, tuple)) or not per_image or "scores" not in per_image[0]:
            raise DeepvisError("a detection target needs a detector (an output of boxes, labels and scores)")
        ref = target.box
        if ref is None:  # the top prediction: the best detection of the first (unshifted) picture
            first = per_image[0]
            if len(first["scores"]) == 0:
                self.detection = None
                return x.reshape(x.shape[0], -1).sum(1) * 0
            j = int(first["scores"].detach().argmax())
            ref = (int(first["labels"][j]) if "labels" in first else 0, *first["boxes"][j].detach().tolist())
            self.detection = ref
        want = torch.tensor([ref[1:]], dtype=torch.float32)
        scores = []
        for b, found in enumerate(per_image):
            same = (found["labels"] == ref[0]) if "labels" in found else torch.ones_like(found["scores"], dtype=bool)
            j = None
            if len(found["scores"]) and bool(same.any()):
                overlap = box_iou(found["boxes"].detach().float().cpu(), want)[:, 0]
                overlap[~same.cpu()] = -1
                if float(overlap.max()) >= MATCH_IOU:
                    j = int(overlap.argmax())
            scores.append(found["scores"][j] if j is not None else x[b].sum() * 0)
        return torch.stack(scores)

    def _picture_score(self, out: torch.Tensor, x: torch.Tensor, target: Target) -> torch.Tensor:
        """An image model's output brightness or reconstruction error, averaged over the region."""
        from deepvis.core.imagemodel import input_to_unit, to_unit

        if self.picture is None or out.ndim != 4:
            raise DeepvisError(f"the target {target.kind!r} needs an image model (one whose output is a picture)")
        output_range, spec = self.picture
        pixels = to_unit(out, output_range, spec)
        if target.kind == "error":
            if tuple(out.shape[2:]) != tuple(x.shape[2:]):
                raise DeepvisError(f"the reconstruction error needs an output of the input's size; the output is "
                                   f"{tuple(out.shape[2:])}, the input {tuple(x.shape[2:])}")
            seen = input_to_unit(x, spec)
            if seen.shape[1] != pixels.shape[1]:
                seen = seen.mean(1, keepdim=True)
                pixels = pixels.mean(1, keepdim=True)
            pixels = (pixels - seen) ** 2
        score = pixels.mean(1)
        if target.region is not None:
            score = _crop(score, target.region)
        return score.reshape(score.shape[0], -1).mean(1)


def _detached(value):
    if torch.is_tensor(value):
        return value.detach()
    if isinstance(value, dict):
        return type(value)((k, _detached(v)) for k, v in value.items())
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a named tuple
        return type(value)(*(_detached(v) for v in value))
    if isinstance(value, (list, tuple)):
        return type(value)(_detached(v) for v in value)
    return value


def _crop(score: torch.Tensor, region) -> torch.Tensor:
    if score.ndim < 3:
        raise DeepvisError("a region needs a target with pixels (a segmentation class or a convolution unit)")
    h, w = score.shape[-2:]
    if isinstance(region, RegionMask):
        # Zero outside: the sum over the map is then the sum inside the region.
        return score * torch.from_numpy(region.at(h, w)).to(score)
    x0, y0, x1, y1 = region
    r0, c0 = min(int(y0 * h), h - 1), min(int(x0 * w), w - 1)
    r1, c1 = max(r0 + 1, int(np.ceil(y1 * h))), max(c0 + 1, int(np.ceil(x1 * w)))
    return score[..., r0:r1, c0:c1]


class _AtMost6(nn.Module):
    def forward(self, x):
        # min(x, 6) passes the gradient at 0 too; Hardtanh(0, 6) would not, and would gate
        # deconvolution's gradient at the ReLU's zeros, making it equal to guided backprop.
        return torch.clamp(x, max=6.0)


class _ReLU6AsReLU(nn.Sequential):
    """ReLU6 as ReLU then a clamp, so Captum's ReLU hooks can guide it."""

    def __init__(self):
        super().__init__(nn.ReLU(), _AtMost6())


@contextlib.contextmanager
def rectifiers_as_relu_modules(model: nn.Module):
    """Temporarily make every rectifier an out-of-place ``nn.ReLU`` module (see module doc)."""
    swapped = []
    for name, module in list(model.named_modules()):
        if isinstance(module, nn.ReLU6):
            replacement = _ReLU6AsReLU()
        elif isinstance(module, nn.ReLU) and module.inplace:
            replacement = nn.ReLU()
        else:
            continue
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, attr, replacement)
        swapped.append((parent, attr, module))
    try:
        yield len(swapped) + sum(isinstance(m, nn.ReLU) for m in model.modules())
    finally:
        for parent, attr, module in reversed(swapped):
            setattr(parent, attr, module)


# The first norm of a transformer block, as torchvision, timm and Hugging Face name it.
_FIRST_NORM = re.compile(r"(^|\.)(ln_1|norm1|layernorm_before)$")


def default_gradcam_layer(probe: Probe) -> str:
    """The last convolution that runs once per forward (Grad-CAM's hooks need one call); for a
    vision transformer the last block's first norm: after it only the CLS token feeds the
    head, so later patch tokens get no gradient and their map would be empty."""
    repeated = {layer.path for layer in probe.layers if layer.call > 0}
    norms = [layer for layer in probe.layers if layer.tokens is not None and _FIRST_NORM.search(layer.path)
             and layer.path not in repeated]
    if norms:
        return norms[-1].name
    convs = [layer for layer in probe.conv_layers() if layer.path not in repeated and not layer.keys]
    if not convs:
        raise DeepvisError("Grad-CAM needs a convolution layer; this model has none the probe can reach")
    tops = {layer.path.split(".")[0] for layer in probe.layers}
    if "backbone" in tops and tops & {"rpn", "roi_heads", "head"}:
        # A detector: its RPN's and heads' convolutions lead to proposals and boxes, not to a
        # detection's score (proposals are detached); the backbone's last features do, before
        # an FPN splits them by scale.
        for prefix in ("backbone.body.", "backbone."):
            inside = [layer for layer in convs if layer.path.startswith(prefix)]
            if inside:
                return inside[-1].name
    # A segmentation head's last convolution makes the class scores themselves, and Grad-CAM on
    # it is just the score map; the features before it are what Grad-CAM is about.
    outputs = {layer.channels for layer in probe.layers if not layer.path}
    features = [layer for layer in convs if layer.channels not in outputs and math.prod(layer.shape[1:]) > 1]
    return (features or convs)[-1].name


MAX_BACKPROP_BYTES = WORK_MEMORY_BYTES  # what one batch's forward pass may keep for its backward pass


def backprop_bytes(probe: Probe, method: str, samples: int = 16, steps: int = 32, batch: int = 8,
                   period: int = 1) -> int:
    """An estimate of what one pass of ``method`` keeps for its backward pass: every layer's
    output (as the dry run measured it) for each sample of the batch (efficientnet_lite0: 106 MB
    a sample; measured, 85 MB). Checked before the work starts: SmoothGrad at --batch 512 on a
    224 px net was killed for memory."""
    per_sample = probe.activation_bytes()
    if method == "integrated-gradients":
        batch = min(batch, steps)
    elif method == "smoothgrad":
        batch = min(batch, samples)  # one phase per sample (cycled)
    elif method in PHASE_AVERAGED:
        batch = period ** len(probe.layers[0].shape[1:]) if probe.layers and period > 1 else 1
    else:
        batch = 1
    return batch * per_sample


def check_memory(probe: Probe, method: str, samples: int = 16, steps: int = 32, batch: int = 8,
                 period: int = 1) -> None:
    need = backprop_bytes(probe, method, samples, steps, batch, period)
    if need > MAX_BACKPROP_BYTES:
        raise DeepvisError(f"{method} at --batch {batch} keeps about {need / 2**30:.1f} GiB for its backward pass "
                           f"(at most {MAX_BACKPROP_BYTES / 2**30:.0f} GiB): lower --batch")


def passes(method: str, samples: int = 16, steps: int = 32, batch: int = 8) -> int:
    """Forward+backward passes one map takes: what progress counts."""
    if method == "integrated-gradients":
        return -(-steps // max(1, batch))
    if method == "smoothgrad":
        return -(-samples // max(1, batch))
    return 1


def check_method(module: nn.Module, probe: Probe, method: str, layer: str | None = None) -> str | None:
    """Raise a DeepvisError for a combination that cannot work; Grad-CAM's layer otherwise."""
    if method not in METHODS:
        raise DeepvisError(f"unknown method {method!r}: expected one of {', '.join(METHODS)}")
    if isinstance(module, torch.jit.ScriptModule):
        raise DeepvisError("attribution needs the model's Python modules; TorchScript archives cannot be "
                           "differentiated layer by layer here (load the architecture with --weights)")
    if method in ("guided", "deconv") and not any(isinstance(m, (nn.ReLU, nn.ReLU6)) for m in module.modules()):
        raise DeepvisError(f"{method} needs rectifiers as modules (nn.ReLU/ReLU6); this model applies them "
                           f"functionally, so its map would be the plain gradient")
    if method in ROLLOUT_METHODS:
        from deepvis.attribution.attention import attention_modules

        if not attention_modules(module) or token_layout(probe) is None:
            raise DeepvisError(f"{method} needs a vision transformer: attention blocks (nn.MultiheadAttention, "
                               f"timm or Hugging Face attention) over the tokens of a patch embedding")
        return None
    if method != "gradcam":
        return None
    name = layer or default_gradcam_layer(probe)
    info = probe.layer(name)
    if len(info.shape) not in (2, 3):  # channels x pixels, or channels x time steps
        raise DeepvisError(f"Grad-CAM needs a layer with pixels or time steps; {name} outputs {tuple(info.shape)}")
    if info.keys or not info.path:
        raise DeepvisError(f"Grad-CAM needs a module's own output; {name} is part of a larger output")
    calls = sum(1 for other in probe.layers if other.path == info.path)
    if calls > 1:
        raise DeepvisError(f"Grad-CAM needs a layer that runs once per forward pass; {info.path} runs {calls} times")
    return name


def run_method(objective: Objective, x: torch.Tensor, method: str, gradcam_layer: str | None = None,
               samples: int = 16, steps: int = 32, noise: float = 0.15, batch: int = 8) -> torch.Tensor:
    """Captum's ``method`` on ``objective`` at ``x`` (one sample): the (H, W) map, detached.

    Call :func:`check_method` first; it also picks ``gradcam_layer``.
    """
    try:
        return _run_method(objective, x, method, gradcam_layer, samples, steps, noise, batch)
    except RuntimeError as exc:
        if "Inference tensors cannot be saved for backward" not in str(exc):
            raise
        # A model that keeps a state between calls (a recurrent voice-activity model's hidden
        # state) made it in an earlier call without gradients; no gradient can pass through it.
        raise DeepvisError("this model keeps a state between calls (a recurrent hidden state) made by an earlier "
                           "call without gradients, so gradients cannot pass through it: saliency needs a model "
                           "that does not carry state from call to call") from None


def _run_method(objective: Objective, x: torch.Tensor, method: str, gradcam_layer: str | None, samples: int,
                steps: int, noise: float, batch: int) -> torch.Tensor:
    from captum.attr import (Deconvolution, GuidedBackprop, IntegratedGradients, LayerAttribution,
                             LayerGradCam, NoiseTunnel, Saliency)

    module = objective.model
    x = x.detach().clone().requires_grad_(True)
    # Pixel gradients averaged over the stride's phases: no checkerboard (see phases.py).
    # Integrated gradients stays Captum's own, whose completeness holds for the model itself.
    period = stride_period(module, objective.probe) if method in PHASE_AVERAGED else 1
    averaged = PhaseAveraged(objective, period) if period > 1 else objective
    with torch.enable_grad():
        if method == "gradient":
            attr = Saliency(averaged).attribute(x, abs=False)
        elif method in ("guided", "deconv"):
            with rectifiers_as_relu_modules(module), warnings.catch_warnings():
                # Captum warns on every call that it hooks ReLUs: that is the point, and live
                # views call it every frame.
                warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU")
                explainer = GuidedBackprop(averaged) if method == "guided" else Deconvolution(averaged)
                attr = explainer.attribute(x)
        elif method == "integrated-gradients":
            attr = IntegratedGradients(objective).attribute(x, baselines=torch.zeros_like(x), n_steps=steps,
                                                            internal_batch_size=batch)
        elif method == "smoothgrad":
            scale = noise * float(x.detach().max() - x.detach().min())
            cycled = PhaseAveraged(objective, period, mode="cycle") if period > 1 else objective
            attr = NoiseTunnel(Saliency(cycled)).attribute(x, nt_type="smoothgrad", nt_samples=samples,
                                                              nt_samples_batch_size=batch, stdevs=scale,
                                                              abs=False)
        elif method in ROLLOUT_METHODS:
            return _rollout_map(objective, x, method)
        elif objective.probe.layer(gradcam_layer).tokens is not None or objective.probe.layer(gradcam_layer).channels_last:
            cam = _token_gradcam(objective, x, objective.probe.layer(gradcam_layer))
            return LayerAttribution.interpolate(cam, tuple(x.shape[2:]), interpolate_mode="bilinear")[0, 0].detach()
        else:
            path = objective.probe.layer(gradcam_layer).path
            # ReLU on the coarse map, then upsampling: Grad-CAM as published.
            try:
                cam = LayerGradCam(objective, module.get_submodule(path)).attribute(x, relu_attributions=True)
            except RuntimeError as exc:
                if "not have been used in the graph" not in str(exc):
                    raise
                # The score is computed before the data reach Grad-CAM's layer (a unit of an
                # earlier layer): nothing flows back to it.
                raise DeepvisError(f"Grad-CAM's layer {gradcam_layer} does not lead to the target; pick a layer "
                                   f"before it with --layer") from None
            mode = "linear" if x.ndim == 3 else "bilinear"  # a 1-D model's time steps, or pixels
            cam = LayerAttribution.interpolate(cam, tuple(x.shape[2:]), interpolate_mode=mode)
            return cam[0, 0].detach().float()
    return attr[0].sum(0).detach().float()


def applicable_methods(module: nn.Module, probe: Probe) -> tuple[str, ...]:
    """The methods that can run on this model: the rollouts only on vision transformers, guided
    backprop and deconvolution only where rectifiers are modules they can change (a ViT's
    GELUs are not: check_method refuses them there)."""
    from deepvis.attribution.attention import attention_modules

    vit = token_layout(probe) is not None and bool(attention_modules(module))
    rectified = any(isinstance(m, (nn.ReLU, nn.ReLU6)) for m in module.modules())
    return tuple(m for m in METHODS if (m not in ROLLOUT_METHODS or vit)
                 and (m not in ("guided", "deconv") or rectified))


def token_layout(probe: Probe) -> tuple[int, int, int] | None:
    """(prefix tokens, grid height, grid width) of a vision transformer's tokens; None for others.
    The layout with the most tokens: the blocks', which carry the CLS token, not a patch
    embedding's output before the CLS token is prepended (Hugging Face's is a layer of its own)."""
    layouts = [layer.tokens for layer in probe.layers if layer.tokens is not None]
    return max(layouts, key=lambda t: t[0] + t[1] * t[2]) if layouts else None


def _rollout_map(objective: "Objective", x: torch.Tensor, method: str) -> torch.Tensor:
    """Attention rollout (class-agnostic) or its gradient-weighted form for the target, at the
    input's resolution."""
    from torch.nn import functional as F

    from deepvis.attribution.attention import explicit_attention, grad_rollout, rollout

    prefix, h, w = token_layout(objective.probe)
    weighted = method == "grad-rollout"
    with explicit_attention(objective.model, keep_graph=weighted) as records:
        score = objective(x)
    if not records:
        raise DeepvisError("the attention modules did not run for this input")
    probabilities = [p for _, p in records]
    if weighted:
        grads = torch.autograd.grad(score.sum(), probabilities, allow_unused=True)
        grads = [torch.zeros_like(p) if g is None else g for p, g in zip(probabilities, grads)]
        grid = grad_rollout([p.detach() for p in probabilities], grads, prefix, (h, w))
    else:
        grid = rollout(probabilities, prefix, (h, w))
    return F.interpolate(grid[:, None], size=tuple(x.shape[2:]), mode="bilinear")[0, 0].detach().float()


def _token_gradcam(objective: "Objective", x: torch.Tensor, info) -> torch.Tensor:
    """Grad-CAM at a transformer's token layer (or a channels-last stage): activations and
    gradients of the (B, N, C) or (B, H, W, C) output laid out as (B, C, H, W) before the channel
    weights are taken (Captum's LayerGradCam would take the tokens or rows for channels)."""
    from deepvis.core.probe import as_grid

    module = objective.model.get_submodule(info.path)
    calls, raw = [0], {}

    def hook(_mod, _inputs, out):
        if calls[0] == info.call:
            value = out
            for key in info.keys:
                value = value[key]
            raw["out"] = value
        calls[0] += 1

    handle = module.register_forward_hook(hook)
    try:
        score = objective(x)
    finally:
        handle.remove()
    if "out" not in raw or not raw["out"].requires_grad:
        raise DeepvisError(f"Grad-CAM's layer {info.name} does not lead to the target; pick a layer before it")
    grad, = torch.autograd.grad(score.sum(), raw["out"], allow_unused=True)
    if grad is None:
        raise DeepvisError(f"Grad-CAM's layer {info.name} does not lead to the target; pick a layer before it")
    acts, grads = as_grid(raw["out"].detach(), info), as_grid(grad, info)
    weights = grads.mean((2, 3), keepdim=True)
    return torch.relu((weights * acts).sum(1, keepdim=True))


def attribute(module: nn.Module, probe: Probe, x: torch.Tensor, method: str, target: Target,
              layer: str | None = None, samples: int = 16, steps: int = 32, noise: float = 0.15,
              batch: int = 8, progress=None, cancel=None, between=None, picture=None, head=None) -> np.ndarray:
    """The attribution map of ``method`` for ``target`` at input resolution, float32 (H, W).

    Signed for the gradient family (summed over colour channels), non-negative for Grad-CAM.
    ``progress(fraction)`` is told before each pass, ``cancel`` (a ``threading.Event``) stops
    the work between passes with :class:`~deepvis.errors.Cancelled`, and ``between()`` runs
    between passes (the GUI lets the live view take a frame there). ``picture``, an image
    model's (output range, input spec), makes the ``output`` and ``error`` targets possible.
    """
    gradcam_layer = check_method(module, probe, method, layer)
    total = passes(method, samples, steps, batch)

    def on_call(done):
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        if done and between is not None:
            between()
        if progress is not None:
            progress(min(1.0, done / total))

    objective = Objective(module, probe, target, on_call=on_call, picture=picture, head=head)
    saliency = run_method(objective, x, method, gradcam_layer, samples, steps, noise, batch)
    if progress is not None:
        progress(1.0)
    return np.ascontiguousarray(saliency.cpu().numpy())


def top_class(module: nn.Module, x: torch.Tensor, head=None, task: str | None = None) -> Target:
    if task == "descriptor":  # its channels are a feature vector, and none of them is a class
        raise DeepvisError("a descriptor model's output has no classes: give a unit target LAYER:INDEX (deepvis "
                           "match shows what its descriptors match)")
    with torch.inference_mode():
        out = module(x)
        out = head.pick(out) if head is not None else main_output(out)
    if head is not None and head.detections:
        return Target("detection", 0)
    if out.ndim <= 2 and out[0].numel() == 1:
        return Target("class", 0)  # one value (a probability per window): explain it
    if output_kind(out) == "other":
        raise DeepvisError("this model's output has no classes: give a unit target LAYER:INDEX")
    scores = out[0] if out.ndim == 2 else out[0].flatten(1).sum(1)
    return Target("class", int(scores.argmax()))


def resolve_detection(target: Target, model, x: torch.Tensor) -> Target:
    """A ``det:N`` target with the box of detection N, in the order ``predict`` lists them; one
    line when there is no such detection."""
    if target.kind != "detection" or target.box is not None:
        return target
    if model.task != "detection":
        raise DeepvisError(f"det:N targets a detector's detection; {model.name} is a {model.task} model")
    with torch.inference_mode():
        summary = model.summarize(model.module(x), k=1)
    found = summary.detections
    if target.index >= len(found):
        from deepvis.core.detectors import score_threshold

        threshold = model.min_score if model.min_score is not None else score_threshold(model.module)
        cut = f" above {threshold:g}" if threshold is not None else ""
        what = f"only {len(found)} detection{'s' * (len(found) != 1)}" if found else "no detections"
        raise DeepvisError(f"no detection {target.index} to explain: the model found {what}{cut} "
                           f"(deepvis predict lists them; --min-score lower keeps weaker ones)")
    d = found[target.index]
    return Target("detection", target.index, region=target.region, box=(d.index, *d.box))

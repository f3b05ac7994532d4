"""Turning a model source (zoo name, file, or ``package.module:callable``) into a ready model.

The result, ``LoadedModel``, is everything the views need to know about a network: the
module in eval mode on its device, its input spec, its labels and the kind of output it
produces. Assumptions made on the way (an input size nobody stated) are kept in ``notes``
so ``deepvis info`` and the GUI can show them.
"""

import difflib
import importlib
import importlib.util
import sys
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

import torch
from torch import nn

from deepvis.core.checkpoint import (align_keys, check_file, extract_state_dict, is_torchscript, load_checkpoint,
                                load_weights_into, weight_mismatch)
from deepvis.core.callargs import bind_call_args
from deepvis.core.device import resolve_device
from deepvis.errors import DeepvisError
from deepvis.core.inputspec import IMAGENET_MEAN, IMAGENET_STD, InputSpec, Preprocessor, SignalSpec
from deepvis.core.labels import read_labels
from deepvis.core.imagemodel import OUTPUT_RANGES, TASKS, check_task, detect_output_range, is_picture
from deepvis.core.predictions import main_output, output_kind
from deepvis.core.defaults import DEFAULT_MODEL
from deepvis.core.hfsource import build_hf, is_hf_folder
from deepvis.core.timmsource import build_timm, is_timm_source
from deepvis.core.zoo import ZooEntry, get_entry, zoo_names

DEFAULT_SIZE = (224, 224)


@dataclass
class LoadedModel:
    module: nn.Module
    spec: InputSpec
    labels: list[str] | None
    name: str
    device: torch.device
    scripted: bool = False
    weights: str = "built-in"
    notes: list[str] = field(default_factory=list)
    declared_task: str | None = None  # from the zoo or --task; None: told by a dry run
    declared_output_range: str | None = None  # an image model's: tanh, sigmoid or input; None: detected
    signal: SignalSpec | None = None  # a 1-D model's input (its first convolution is a Conv1d); None: pictures
    output_shape: tuple | None = field(default=None, repr=False)  # the main output's, from task's dry run
    multilabel: bool = False  # a classifier with a sigmoid per class (several may be present)
    # Where the weights came from, for info and the window title: "bundled", "torch's cache",
    # "downloaded", "timm's trained", "your file", "the model file", "as built" or "random".
    weights_from: str = ""

    @property
    def random_weights(self) -> bool:
        """Built with random initialisation (--weights none, a timm model without --weights): its
        outputs are chance, whatever its class names say."""
        return str(self.weights).startswith("none")

    @property
    def weights_words(self) -> str:
        """Where the weights came from, in a few words for a title ("" for a model file's own)."""
        return {"bundled": "bundled weights", "torch's cache": "weights from torch's cache",
                "downloaded": "downloaded weights", "timm's trained": "timm's trained weights",
                "your file": f"weights from {Path(str(self.weights)).name}", "as built": "weights as built",
                "random": "random weights"}.get(self.weights_from, "")

    @cached_property
    def preprocessor(self) -> Preprocessor:
        return Preprocessor(self.spec)

    def input_tensor(self, frame) -> torch.Tensor:
        return self.preprocessor.tensor(frame, self.device)

    def example_input(self) -> torch.Tensor:
        shape = self.signal.shape if self.signal is not None else self.spec.shape
        return torch.zeros((1, *shape), device=self.device)

    def signal_tensor(self, signal) -> torch.Tensor:
        """A Signal fitted to a 1-D model's window: (1, channels, length)."""
        from deepvis.io.signals import fit_signal

        s = self.signal
        return torch.from_numpy(fit_signal(signal, s.channels, s.length, s.rate))[None].to(self.device)

    @cached_property
    def task(self) -> str:
        """classification, segmentation, image or other: as declared, else from one dry run.

        An undeclared output with exactly the input's shape is taken for a picture (an
        autoencoder, a denoiser): a class map would rarely have as many classes as the input
        has colour channels, and ``--task segmentation`` says otherwise when it does.
        """
        with torch.inference_mode():
            out = main_output(self.module(self.example_input()))
        self.output_shape = tuple(out.shape)
        if self.declared_task is not None:
            check_task(self.declared_task, out)
            return self.declared_task
        if is_picture(out) and tuple(out.shape[1:]) == tuple(self.spec.shape):
            self.notes.append("treated as an image model: its output has the input's shape (--task to change)")
            return "image"
        return output_kind(out)

    @property
    def picture(self) -> tuple | None:
        """An image model's (output range, input spec), for its saliency targets; None for others."""
        return (self.output_range, self.spec) if self.task == "image" else None

    @cached_property
    def output_range(self) -> str:
        """How an image model's output maps to pixels: tanh, sigmoid or input (normalization undone)."""
        if self.declared_output_range is not None:
            return self.declared_output_range
        return detect_output_range(self.module, self.example_input())


def load_model(source: str | None = None, weights: str | None = None, *, device: str = "auto",
               trust_pickle: bool = False, input_size=None, channels=None, mean=None, std=None,
               labels: str | None = None, fit: str | None = None, task: str | None = None,
               output_range: str | None = None, sample_rate: int | None = None,
               call_args: dict | None = None, init_seed: int = 0) -> LoadedModel:
    """Load ``source`` with optional ``weights`` (a file, or ``"none"`` for random initialisation).

    ``task`` (classification, segmentation, image) overrides what the output's shape suggests;
    ``output_range`` (tanh, sigmoid, input) how an image model's output maps to pixels;
    ``call_args`` constants for forward arguments beyond the input (``--call-arg``);
    ``init_seed`` seeds random initialisation (``--init-seed``).
    """
    if task is not None and task not in TASKS:
        raise DeepvisError(f"unknown task {task!r}: expected one of {', '.join(TASKS)}")
    if output_range is not None and output_range not in OUTPUT_RANGES:
        raise DeepvisError(f"unknown output range {output_range!r}: expected one of {', '.join(OUTPUT_RANGES)}")
    source = source or DEFAULT_MODEL
    notes: list[str] = []
    entry = get_entry(source)
    # Random initialisation (--weights none, a factory without weights) is seeded, so two runs
    # agree; the caller's own random state is left as it was.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        if entry is not None:
            module, class_labels, weights_text, weights_from = _from_zoo(entry, weights, trust_pickle)
            spec, name, scripted = entry.spec, entry.name, False
            if task is None and entry.task in ("image", "autoregressive"):
                task = entry.task
            signal = entry.signal
        elif is_timm_source(source):
            module, spec, weights_text = build_timm(source, weights, trust_pickle, notes)
            name, scripted, class_labels, signal = source, False, None, None
            weights_from = "timm's trained" if weights is None else _given(weights)
        elif is_hf_folder(source):
            module, spec, class_labels = build_hf(source, notes)
            name, scripted, signal, weights_text = Path(source).name, False, None, "from the folder"
            weights_from = "the model file" if weights is None else _given(weights)
            if weights and weights.lower() != "none":
                _load_file_into(module, weights, trust_pickle)
                weights_text = str(weights)
        else:
            module, scripted = _from_source(source, trust_pickle)
            name = Path(source).name if Path(source).exists() else source
            class_labels, weights_text = None, "from the model file" if Path(source).exists() else "as built"
            weights_from = (("the model file" if Path(source).exists() else "as built") if weights is None
                            else _given(weights))
            if weights and weights.lower() != "none":
                _load_file_into(module, weights, trust_pickle)
                weights_text = str(weights)
            spec = None  # the model's input is told by the dry runs below
    bind_call_args(module, call_args or {}, name)  # before any dry run calls the model
    if spec is None:
        signal = _infer_signal(module, input_size, sample_rate, notes)
        spec = _infer_spec(module, notes if signal is None else [], size_given=input_size is not None,
                           norm_given=mean is not None and std is not None)
    if signal is not None and (input_size is not None or sample_rate is not None) and entry is not None:
        signal = replace(signal, length=input_size[1] if input_size else signal.length,
                         rate=sample_rate if sample_rate else signal.rate)
    spec = spec.with_overrides(size=input_size if signal is None else None, channels=channels, mean=mean, std=std,
                               fit=fit)
    takes = first_conv_channels(module) if channels is not None and signal is None else None
    if takes is not None and takes != channels:
        # A model may convert its input before its first convolution, so only a dry run can
        # tell; the usual outcome is a channel mismatch that would fail every frame.
        try:
            with torch.inference_mode():
                module(torch.zeros(1, *spec.shape))
        except RuntimeError:
            raise DeepvisError(f"--channels {channels} does not fit this model: its first convolution takes "
                               f"{takes} channels") from None
    if labels:
        class_labels = read_labels(labels)
    dev = resolve_device(device)
    try:
        module = module.eval().to(dev)
    except RuntimeError as exc:
        raise DeepvisError(f"cannot move the model to {dev}: {str(exc).splitlines()[0]}") from None
    model = LoadedModel(module=module, spec=spec, labels=class_labels, name=name, device=dev,
                        scripted=scripted, weights=weights_text, weights_from=weights_from, notes=notes,
                        declared_task=task,
                        declared_output_range=output_range, signal=signal)
    if task is not None:
        _ = model.task  # a declared task the output cannot have is refused here, not on every frame
    model.multilabel = entry is not None and entry.multilabel
    if entry is None and class_labels is None and signal is None:
        model.labels = _assumed_imagenet_labels(model)
    return model


def _assumed_imagenet_labels(model: "LoadedModel") -> list[str] | None:
    """A user's classifier with exactly 1,000 outputs and no labels is, in practice, an ImageNet
    one: its names beat "class 417", and a note says they were assumed."""
    try:
        if model.task != "classification":  # its dry run records the output's shape
            return None
    except Exception:  # a model that cannot run on the assumed input says so where it is used
        return None
    if len(model.output_shape) != 2 or model.output_shape[1] != 1000:
        return None
    from deepvis.core.zoo import imagenet_labels

    model.notes.append("1,000 outputs and no labels: ImageNet class names assumed (--labels FILE to give yours)")
    return imagenet_labels()


def _given(weights) -> str:
    return "random" if str(weights).lower() == "none" else "your file"


def _from_zoo(entry: ZooEntry, weights, trust_pickle):
    labels = entry.labels()
    if weights is not None and str(weights).lower() == "none":
        return entry.build(), labels, "none (random initialisation)", "random"
    path, weights_from = (Path(weights), "your file") if weights else _default_weights(entry)
    state = extract_state_dict(load_checkpoint(path, trust_pickle), path)
    module = entry.build()
    classes = _head_classes(module, state)
    if classes is not None:
        # A fine-tuned copy of a zoo architecture with its own head: rebuild for its class count,
        # unless the rebuilt model does not fit either (then the difference is not in the head, and
        # the error below should describe the checkpoint against the original architecture).
        rebuilt = entry.build(num_classes=classes)
        if not weight_mismatch(rebuilt.state_dict(), align_keys(state, rebuilt.state_dict().keys())):
            module = rebuilt
            if labels is not None and len(labels) != classes:
                labels = None
    load_weights_into(module, state, source=str(path))
    return entry.after_load(module), labels, str(path), weights_from


def _default_weights(entry: ZooEntry) -> tuple[Path, str]:
    """The entry's trained weights and where they came from: where they ship ("bundled") or
    their library's cache, else downloaded into that cache as the library would
    (torchvision's hub checkpoints)."""
    try:
        return entry.weights_file(), ("torch's cache" if entry.fetch is not None else "bundled")
    except DeepvisError:
        if entry.fetch is None:
            raise
    return entry.fetch(), "downloaded"


def _head_classes(module: nn.Module, state) -> int | None:
    """The class count of a checkpoint whose only difference is the size of the output layer(s)."""
    own = module.state_dict()
    state = align_keys(state, own.keys())
    if set(own) != set(state):
        return None
    counts = set()
    for key, value in own.items():
        theirs = state[key]
        if tuple(theirs.shape) != tuple(value.shape):
            if theirs.ndim != value.ndim or tuple(theirs.shape[1:]) != tuple(value.shape[1:]):
                return None
            counts.add(int(theirs.shape[0]))
    return counts.pop() if len(counts) == 1 else None


def _load_file_into(module: nn.Module, weights, trust_pickle):
    state = extract_state_dict(load_checkpoint(weights, trust_pickle), weights)
    load_weights_into(module, state, source=str(weights))


def _from_source(source: str, trust_pickle: bool) -> tuple[nn.Module, bool]:
    path = Path(source)
    if path.exists():
        check_file(path, "model file")
        if is_torchscript(path):
            try:
                return torch.jit.load(str(path), map_location="cpu"), True
            except Exception as exc:  # TorchScript raises many internal types for broken archives
                raise DeepvisError(f"{path} is a broken TorchScript archive: {str(exc).strip().splitlines()[0]}") from None
        obj = load_checkpoint(path, trust_pickle)
        if isinstance(obj, nn.Module):
            return obj, False
        if isinstance(obj, dict):
            for value in obj.values():
                if isinstance(value, nn.Module):
                    return value, False
        extract_state_dict(obj, path)  # raises if it is not even weights
        raise DeepvisError(f"{path} holds only weights (a state dict), not an architecture: pass the architecture "
                           f"as --model ZOO_NAME or --model package.module:factory and this file as --weights")
    if ":" in source and not source.startswith(":"):
        return _from_factory(source), False
    names = zoo_names()
    close = difflib.get_close_matches(source.lower(), names, n=3)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise DeepvisError(f"unknown model {source!r}: {hint}use a zoo name (deepvis models), a TorchScript or "
                       f"checkpoint file, or package.module:callable")


def _from_factory(source: str) -> nn.Module:
    module_name, _, attr = source.rpartition(":")
    try:
        if module_name.endswith(".py"):
            file = Path(module_name)
            if not file.is_file():
                raise DeepvisError(f"{file} does not exist")
            spec = importlib.util.spec_from_file_location(file.stem, file)
            mod = importlib.util.module_from_spec(spec)
            sys.modules.setdefault(file.stem, mod)
            spec.loader.exec_module(mod)
        else:
            mod = importlib.import_module(module_name)
    except DeepvisError:
        raise
    except ImportError as exc:
        raise DeepvisError(f"cannot import {module_name}: {exc}") from None
    except Exception as exc:
        raise DeepvisError(f"importing {module_name} failed: {type(exc).__name__}: {exc}") from None
    target = mod
    for part in attr.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise DeepvisError(f"{module_name} has no attribute {attr!r}")
    try:
        model = target() if callable(target) and not isinstance(target, nn.Module) else target
    except Exception as exc:
        raise DeepvisError(f"calling {source} failed: {type(exc).__name__}: {exc}") from None
    if not isinstance(model, nn.Module):
        raise DeepvisError(f"{source} returned a {type(model).__name__}, not a torch.nn.Module")
    return model


def _infer_signal(module: nn.Module, input_size, sample_rate, notes: list[str]) -> SignalSpec | None:
    """A 1-D model's input, when its first convolution is a Conv1d; None for picture models."""
    first = first_convolution(module)
    if first is None or first.weight.ndim != 3:
        return None
    length = input_size[1] if input_size else SignalSpec.length
    if input_size is None:
        notes.append(f"a 1-D model: windows of {length} samples assumed (override with --input-size N)")
    if sample_rate is None:
        notes.append("sample rate not recorded: signal files are fed at their own rate (--sample-rate HZ)")
    return SignalSpec(int(first.weight.shape[1]), length, sample_rate)


def first_convolution(module: nn.Module) -> nn.Module | None:
    """The first Conv1d or Conv2d module, by type (TorchScript modules by their original name):
    a weight's rank alone would take a transformer's (1, N, C) position embedding for a Conv1d."""
    for m in module.modules():
        kind = getattr(m, "original_name", None) if isinstance(m, torch.jit.ScriptModule) else type(m).__name__
        if isinstance(m, (nn.Conv1d, nn.Conv2d)) or (kind in ("Conv1d", "Conv2d") and hasattr(m, "weight")):
            return m
    return None


def first_conv_channels(module: nn.Module) -> int | None:
    """Input channels from the first convolution's weights (works for TorchScript modules too)."""
    for _, param in module.named_parameters():
        if param.ndim == 4:
            return int(param.shape[1])
    return None


def _infer_spec(module: nn.Module, notes: list[str], size_given: bool, norm_given: bool) -> InputSpec:
    channels = first_conv_channels(module)
    if channels not in (1, 3):
        notes.append("input channels not found from a first convolution; assumed 3" if channels is None else
                     f"first convolution takes {channels} channels; frames are fed as 3 (override with --channels)")
        channels = 3
    if not size_given:
        notes.append(f"input size not recorded in the model; assumed {DEFAULT_SIZE[0]}x{DEFAULT_SIZE[1]} "
                     f"(override with --input-size HxW)")
    if channels == 3:
        mean, std = IMAGENET_MEAN, IMAGENET_STD
        if not norm_given:
            notes.append("normalization not recorded; assumed ImageNet mean/std (override with --mean/--std)")
    else:
        mean, std = (0.0,), (1.0,)
        if not norm_given:
            notes.append("normalization not recorded; assumed pixels in [0, 1] (override with --mean/--std)")
    return InputSpec(channels, *DEFAULT_SIZE, mean, std)

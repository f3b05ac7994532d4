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

from deepvis.core.checkpoint import (align_keys, check_file, extract_state_dict, is_onnx, is_torchscript,
                                     load_checkpoint, load_torchscript, load_weights_into, weight_mismatch)
from deepvis.core.callargs import bind_call_args, feed_time_only
from deepvis.core.detectors import coco_labels, detector_spec, inner_transform, lower_threshold
from deepvis.core.device import resolve_device
from deepvis.errors import DeepvisError
from deepvis.core.inputspec import IMAGENET_MEAN, IMAGENET_STD, InputSpec, Preprocessor, SignalSpec
from deepvis.core.labels import read_labels
from deepvis.core.imagemodel import OUTPUT_RANGES, check_task, detect_output_range, is_picture
from deepvis.core.predictions import output_kind
from deepvis.core.defaults import DEFAULT_MODEL, TASKS
from deepvis.core.hfsource import build_hf, is_hf_folder
from deepvis.core.timmsource import build_timm, is_timm_source
from deepvis.core.zoo import ZooEntry, get_entry, zoo_names

DEFAULT_SIZE = (224, 224)
INPUT_KINDS = ("image", "signal")
SIGNAL_LAYOUTS = ("bct", "bt")  # (batch, channels, time) or (batch, time)


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
    output_shape: tuple | None = field(default=None, repr=False)  # the head's, batch included, from a dry run
    declared_head: str | None = None  # --head: the output that is the prediction; None: chosen by heads
    min_score: float | None = None  # --min-score: a detector's detections kept from this score up
    declared_multilabel: bool = False  # the zoo says: a sigmoid per class (several may be present)
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
    def _survey(self):
        """One dry run: every output, the head, and the head's shape (a meta tensor: no memory)."""
        from deepvis.core.heads import choose_head, list_outputs

        infos, output = list_outputs(self.module, self.example_input())
        head, note = choose_head(infos, output, self.declared_head)
        if note is not None:
            self.notes.append(note)
        picked = None if head.detections else head.pick(output)
        shape = None if picked is None else tuple(picked.shape)
        return infos, head, shape

    @property
    def outputs(self) -> list:
        """Every tensor of the model's output (``OutputInfo``: name, shape, activation)."""
        return self._survey[0]

    @property
    def head(self):
        """The output that is "the prediction" (``Head``): what summaries, saliency targets and
        the dense views read."""
        return self._survey[1]

    @property
    def multilabel(self) -> bool:
        """A classifier with a sigmoid per class (several may be present): the zoo says so, or
        its head comes out of a sigmoid."""
        if self.declared_multilabel:
            return True
        head = self.head
        return head.activation == "sigmoid" and len(head.shape) == 1 and head.shape[0] > 1

    def summarize(self, output, k: int = 5, min_score: float | None = None):
        """Top-k rows of this model's prediction in ``output`` (``predictions.Summary``)."""
        from deepvis.core.predictions import summarize

        if min_score is None:
            min_score = self.min_score
        if min_score is None and self.task == "detection":
            from deepvis.core.detectors import score_threshold

            min_score = score_threshold(self.module)  # applied inside already: named in "no detections above"
        return summarize(output, self.labels, k, self.task, self.multilabel, head=self.head, min_score=min_score,
                         size=self.input_hw)

    @property
    def input_hw(self) -> tuple[int, int] | None:
        """The picture size the model is fed (height, width); None for a 1-D model."""
        return None if self.signal is not None else self.spec.size

    def choose_head(self, name: str | None) -> None:
        """Read predictions from the output ``name`` (None: the default choice) from now on; an
        output the model does not have is refused and the head stays as it was. Runs a dry run."""
        saved = {k: self.__dict__.pop(k) for k in ("_survey", "task") if k in self.__dict__}
        previous, self.declared_head = self.declared_head, name
        notes = list(self.notes)
        self.notes[:] = [n for n in notes if "choose another with --head" not in n]
        try:
            _ = self.task
        except DeepvisError:
            self.declared_head = previous
            self.__dict__.update(saved)
            self.notes[:] = notes
            raise

    def main_output(self, output):
        """The head's part of ``output``: a tensor, or a detector's list of dicts."""
        return self.head.pick(output)

    @cached_property
    def task(self) -> str:
        """classification, segmentation, image, descriptor, detection or other: as declared, else from the
        head's shape in one dry run.

        An undeclared output with exactly the input's shape is taken for a picture (an
        autoencoder, a denoiser): a class map would rarely have as many classes as the input
        has colour channels, and ``--task segmentation`` says otherwise when it does.
        """
        if self.head.detections:
            if self.declared_task is not None:
                raise DeepvisError(f"--task {self.declared_task} does not fit a detector (its output is boxes, "
                                   f"labels and scores)")
            return "detection"
        self.output_shape = self._survey[2]
        out = torch.empty(self.output_shape, device="meta")
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
               call_args: dict | None = None, init_seed: int = 0, head: str | None = None,
               min_score: float | None = None, input_kind: str | None = None,
               signal_layout: str | None = None) -> LoadedModel:
    """Load ``source`` with optional ``weights`` (a file, or ``"none"`` for random initialisation).

    ``task`` (classification, segmentation, image) overrides what the output's shape suggests;
    ``output_range`` (tanh, sigmoid, input) how an image model's output maps to pixels;
    ``call_args`` constants for forward arguments beyond the input (``--call-arg``);
    ``init_seed`` seeds random initialisation (``--init-seed``); ``head`` the output that is the
    prediction (``--head output[2]``); ``min_score`` a detector's score cut (``--min-score``);
    ``input_kind`` (image, signal) and ``signal_layout`` (bct, bt) what the model takes, when
    its layers do not tell.
    """
    if input_kind is not None and input_kind not in INPUT_KINDS:
        raise DeepvisError(f"unknown input kind {input_kind!r}: expected one of {', '.join(INPUT_KINDS)}")
    if signal_layout is not None and signal_layout not in SIGNAL_LAYOUTS:
        raise DeepvisError(f"unknown signal layout {signal_layout!r}: expected one of {', '.join(SIGNAL_LAYOUTS)}")
    if signal_layout is not None and input_kind == "image":
        raise DeepvisError("--signal-layout describes a 1-D model's input; --input-kind image says it takes pictures")
    if min_score is not None and not 0 <= min_score <= 1:
        raise DeepvisError(f"--min-score must be between 0 and 1, got {min_score:g}")
    if task is not None and task not in TASKS:
        raise DeepvisError(f"unknown task {task!r}: expected one of {', '.join(TASKS)}")
    if output_range is not None and output_range not in OUTPUT_RANGES:
        raise DeepvisError(f"unknown output range {output_range!r}: expected one of {', '.join(OUTPUT_RANGES)}")
    if source is not None and not str(source).strip():
        raise DeepvisError("--model is empty: give a zoo name (deepvis models), a model file or package.module:callable")
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
            if task is None and entry.task in ("image", "autoregressive", "descriptor"):
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
    check_finite_weights(module, name)
    bind_call_args(module, call_args or {}, name)  # before any dry run calls the model
    transform = inner_transform(module) if entry is None and input_kind != "signal" else None
    if spec is None and transform is not None:
        # A detector that resizes and normalizes inside: plain pixels, its own size.
        signal = None
        spec, note = detector_spec(transform, input_size)
        notes.append(note)
        if class_labels is None and labels is None and (class_labels := coco_labels(module)) is not None:
            notes.append("91 classes and no labels: torchvision's COCO category names assumed (--labels FILE "
                         "to give yours)")
    elif spec is None:
        recorded = getattr(module, "deepvis_input_shape", None)  # a torch.export program's or ONNX file's input
        channels_recorded = getattr(module, "deepvis_input_channels", None)  # an ONNX input of dynamic size
        if recorded is None and channels_recorded is not None and input_size is None:
            raise DeepvisError(f"{name}'s input has no static size (its graph says channels {channels_recorded} and "
                               f"symbolic height and width): give --input-size HxW")
        if recorded is None and channels_recorded is not None:
            recorded = (channels_recorded, *input_size)
        if recorded is not None and len(recorded) == 3 and input_kind != "signal":
            spec = _exported_spec(recorded, notes, norm_given=mean is not None and std is not None,
                                  mean=getattr(module, "deepvis_mean", None), std=getattr(module, "deepvis_std", None))
            signal = None
            if class_labels is None and getattr(module, "deepvis_labels", None):
                class_labels = list(module.deepvis_labels)
        else:
            signal = _infer_signal(module, input_size, sample_rate, channels, notes, input_kind, signal_layout)
            spec = _infer_spec(module, notes if signal is None else [], size_given=input_size is not None,
                               norm_given=mean is not None and std is not None)
    elif input_kind == "signal" and signal is None:
        raise DeepvisError(f"{name} takes pictures: --input-kind signal does not fit it")
    if min_score is not None and (lowered := lower_threshold(module, min_score)) is not None:
        notes.append(lowered)
    if signal is not None and (input_size is not None or sample_rate is not None) and entry is not None:
        signal = replace(signal, length=input_size[1] if input_size else signal.length,
                         rate=sample_rate if sample_rate else signal.rate)
    spec = spec.with_overrides(size=input_size if signal is None else None, channels=channels, mean=mean, std=std,
                               fit=fit)
    takes = first_conv_channels(module) if channels is not None and signal is None and transform is None else None
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
                        declared_task=task, declared_head=head, min_score=min_score,
                        declared_output_range=output_range, signal=signal)
    if task is not None:
        _ = model.task  # a declared task the output cannot have is refused here, not on every frame
    model.declared_multilabel = entry is not None and entry.multilabel
    if head is not None or entry is None:
        # One dry run now: an output the model does not have (--head) is refused with the ones it
        # has, and a model that cannot run on the input made for it (a timm ViT at a size its
        # patches do not divide) says so in one line before any command uses it.
        _ = model.head
    if labels:
        _check_label_count(model, labels)
    if entry is None and class_labels is None and signal is None:
        model.labels = _assumed_imagenet_labels(model)
    return model


def check_finite_weights(module: nn.Module, name: str) -> None:
    """Refuse weights holding NaN or infinities, whatever the command: a filter sheet of NaN
    drawn grey, or predictions of NaN read as class 0, say nothing true."""
    for key, tensor in (*module.named_parameters(), *module.named_buffers()):
        if tensor.is_floating_point() and tensor.numel() and not torch.isfinite(tensor.detach().sum()):
            bad = int((~torch.isfinite(tensor.detach())).sum())
            raise DeepvisError(f"{name}'s weights hold NaN or infinite values ({bad:,} of {tensor.numel():,} in "
                               f"{key}): the checkpoint is damaged or its training diverged")


def _check_label_count(model: "LoadedModel", path: str) -> None:
    """A labels file must name as many classes as the output has: 2 names for 10 classes were
    used silently (the rest shown as numbers, or the wrong names on the right scores)."""
    if model.task not in ("classification", "segmentation") or model.head.detections:
        return
    classes = model.head.shape[0] if model.head.shape else 1
    if len(model.labels) != classes:
        which = f" {model.head.name}" if len(model.outputs) > 1 else ""
        raise DeepvisError(f"{path} names {len(model.labels)} classes, but {model.name}'s output{which} has "
                           f"{classes}: give a labels file with one name per class")


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
        from deepvis.core.exported import is_exported_archive, load_exported

        if is_exported_archive(path):
            return load_exported(path, trust_pickle), False
        if is_onnx(path):
            from deepvis.core.onnxmodel import load_onnx

            return load_onnx(path), False
        if is_torchscript(path):
            try:
                return load_torchscript(path), True
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
    except SystemExit as exc:  # a script's sys.exit() at import would end deepvis without a word
        raise DeepvisError(f"importing {module_name} called sys.exit({exc.code if exc.code is not None else ''}): "
                           f"it is a script, not a module that builds a model") from None
    except Exception as exc:
        raise DeepvisError(f"importing {module_name} failed: {type(exc).__name__}: {exc}") from None
    target = mod
    for part in attr.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise DeepvisError(f"{module_name} has no attribute {attr!r}")
    try:
        model = target() if callable(target) and not isinstance(target, nn.Module) else target
    except SystemExit as exc:
        raise DeepvisError(f"calling {source} called sys.exit({exc.code if exc.code is not None else ''})") from None
    except Exception as exc:
        raise DeepvisError(f"calling {source} failed: {type(exc).__name__}: {exc}") from None
    if not isinstance(model, nn.Module):
        raise DeepvisError(f"{source} returned a {type(model).__name__}, not a torch.nn.Module")
    return model


def _infer_signal(module: nn.Module, input_size, sample_rate, channels, notes: list[str], input_kind=None,
                  layout=None) -> SignalSpec | None:
    """A 1-D model's input, None for picture models: declared (``--input-kind signal``, or one
    number for ``--input-size`` with ``--sample-rate``), or told by a first convolution that is
    a Conv1d. Windows are (batch, channels, time) or, found by a dry run or declared with
    ``--signal-layout bt``, (batch, time)."""
    if input_kind == "image":
        return None
    first = first_convolution(module)
    conv1d = first is not None and first.weight.ndim == 3
    if not conv1d and input_kind != "signal":
        return None
    length = input_size[1] if input_size else SignalSpec.length
    if input_size is None:
        notes.append(f"a 1-D model: windows of {length} samples assumed (override with --input-size N)")
    if sample_rate is None:
        notes.append("sample rate not recorded: signal files are fed at their own rate (--sample-rate HZ)")
    count = channels or (int(first.weight.shape[1]) if conv1d else 1)
    if layout is None:
        found = _signal_layout(module, count, length)
        if found is None and channels is None and count != 1:
            # A Conv1d seen first may sit behind a front end (an STFT as a buffer, a reshape):
            # the model itself may take one channel, or (batch, time).
            found = _signal_layout(module, 1, length)
        if found is not None:
            layout, count = found
            if layout == "bt":
                notes.append("takes (batch, time) windows, found by a dry run (--signal-layout bct to change)")
            elif conv1d and count != first.weight.shape[1]:
                notes.append(f"its first Conv1d takes {first.weight.shape[1]} channels from a front end inside; "
                             f"fed {count} channel{'s' * (count != 1)}, found by a dry run")
    elif layout == "bt" and channels is None:
        count = 1  # (batch, time): one channel, whatever a Conv1d inside takes
    if layout == "bt":
        if count != 1:
            raise DeepvisError(f"--signal-layout bt feeds one channel; --channels {count} asks for more")
        feed_time_only(module)
    return SignalSpec(count, length, sample_rate)


def _signal_layout(module: nn.Module, channels: int, length: int) -> tuple[str, int] | None:
    """("bct", channels) when the model runs on (1, channels, time), else ("bt", 1) when it runs
    on (1, time); None when neither does (the dry run then says what fails)."""
    for layout, shape in (("bct", (1, channels, length)), ("bt", (1, length))):
        try:
            with torch.inference_mode():
                module(torch.zeros(shape))
            return layout, (channels if layout == "bct" else 1)
        except Exception:  # noqa: BLE001 (any error: the layout does not fit)
            continue
    return None


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


def _exported_spec(shape: tuple[int, int, int], notes: list[str], norm_given: bool, mean=None,
                   std=None) -> InputSpec:
    """A torch.export program's or an ONNX file's input as recorded (channels, height, width),
    with the mean and std the file records (ONNX metadata), else assumed."""
    channels, height, width = shape
    if mean is not None and std is not None:
        for key, values in (("mean", mean), ("std", std)):
            if len(values) not in (1, channels):
                raise DeepvisError(f"the model's recorded {key} has {len(values)} values for {channels} channels")
        return InputSpec(channels, height, width, tuple(mean), tuple(std))
    if channels == 3:
        mean, std = IMAGENET_MEAN, IMAGENET_STD
    else:
        mean, std = (0.0,) * channels, (1.0,) * channels
    if not norm_given:
        assumed = "ImageNet mean/std" if channels == 3 else "pixels in [0, 1]"
        notes.append(f"input {channels}x{height}x{width} as the model file records it; normalization not recorded, "
                     f"assumed {assumed} (override with --mean/--std)")
    return InputSpec(channels, height, width, mean, std)


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

"""Two checkpoints side by side over the same inputs: CKA of every layer pair (deepvis.doctor.cka),
the relative weight change of each layer, how often their predictions agree and where they
do not; and a training timeline: a folder of checkpoints, each layer's CKA to the last one,
the weight change per step and the first layer's filters at every step.

The JSON of ``deepvis compare --json``: ``{"layers_a", "layers_b", "cka", "diagonal",
"agreement", "timeline"}`` plus the weight changes and the disagreeing inputs.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from deepvis.doctor import cka
from deepvis.doctor.weights import first_filters, weight_layers
from deepvis.errors import Cancelled, DeepvisError

DISAGREEING_KEPT = 20
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".safetensors")


def compared_layers(probe) -> list[str]:
    """Every layer with an output of its own (no Dropout, Flatten, Identity), in execution order."""
    from deepvis.core.probe import PLUMBING

    return [layer.name for layer in probe.layers if layer.type_name not in PLUMBING]


def _batches(model, dataset, total: int, batch: int):
    """(indices, input tensor) per batch of readable inputs, in order."""
    pre = model.preprocessor
    arrays, indices = [], []
    for i in range(total):
        try:
            arrays.append(pre.array(dataset.image(i)))
        except DeepvisError:
            continue
        indices.append(i)
        if len(arrays) == batch:
            yield indices, torch.from_numpy(np.stack(arrays)).to(model.device)
            arrays, indices = [], []
    if arrays:
        yield indices, torch.from_numpy(np.stack(arrays)).to(model.device)


def activations(model, probe, layers: list[str], dataset, total: int, batch: int, cancel=None, progress=None,
                stage: str = "inputs"):
    """Every layer's flattened float32 activations over the inputs, the inputs' indices and the
    classifier's predicted classes (None for other models)."""
    features = {name: [] for name in layers}
    predicted, seen = [], []
    for indices, x in _batches(model, dataset, total, batch):
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        with torch.inference_mode():
            output, acts = probe.capture(x, layers, transform=lambda _n, t: t.reshape(t.shape[0], -1).float().cpu()
                                         .clone())
        for name in layers:
            features[name].append(acts[name])
        predicted.append(_predictions(model, output))
        seen.extend(indices)
        if progress is not None:
            progress(stage, indices[-1] + 1, total)
    if not seen:
        raise DeepvisError(f"none of the inputs of {dataset.name} could be read")
    classes = None if any(p is None for p in predicted) else torch.cat(predicted)
    return {name: torch.cat(parts) for name, parts in features.items()}, seen, classes


def _predictions(model, output):
    if model.task != "classification" or model.head.detections:
        return None
    scores = model.main_output(output)
    return scores.argmax(1).cpu() if scores.ndim == 2 else None


def gram_bytes(probe, layers: list[str], inputs: int) -> int:
    return len(layers) * inputs * inputs * 8


def grams_of(features: dict[str, torch.Tensor], layers: list[str]) -> list[torch.Tensor]:
    grams = []
    for name in layers:
        grams.append(cka.centered_gram(features.pop(name)))  # each layer's activations freed once used
    return grams


def weight_changes(module_a, module_b) -> dict[str, float]:
    """||W_b - W_a|| / ||W_a|| per layer whose weight both have, with the same shape."""
    b_modules = dict(module_b.named_modules())
    out = {}
    for path, layer in weight_layers(module_a):
        other = b_modules.get(path)
        if other is None or getattr(other, "weight", None) is None or other.weight.shape != layer.weight.shape:
            continue
        wa, wb = layer.weight.detach().double().cpu(), other.weight.detach().double().cpu()
        norm = float(wa.norm())
        out[path] = float((wb - wa).norm()) / norm if norm > 0 else float("inf")
    return out


def compare(model_a, model_b, dataset, limit: int | None = None, batch: int = 64, progress=None,
            cancel=None) -> dict:
    """CKA of every layer of ``model_a`` against every layer of ``model_b`` over ``dataset``,
    the weight changes, and their predictions' agreement."""
    from deepvis.core.probe import Probe

    total = len(dataset) if limit is None else min(limit, len(dataset))
    probe_a = Probe(model_a.module, model_a.example_input())
    probe_b = Probe(model_b.module, model_b.example_input())
    layers_a, layers_b = compared_layers(probe_a), compared_layers(probe_b)
    if gram_bytes(probe_a, layers_a + layers_b, total) <= cka.GRAM_BUDGET_BYTES:
        features_a, seen, classes_a = activations(model_a, probe_a, layers_a, dataset, total, batch, cancel, progress,
                                                  "inputs through A")
        grams_a = grams_of(features_a, layers_a)
        features_b, _, classes_b = activations(model_b, probe_b, layers_b, dataset, total, batch, cancel, progress,
                                               "inputs through B")
        grams_b = grams_of(features_b, layers_b)
        matrix = cka.cka_matrix(grams_a, grams_b)
        method = "linear CKA over all inputs"
    else:
        matrix, seen, classes_a, classes_b = _minibatch(model_a, model_b, probe_a, probe_b, layers_a, layers_b,
                                                        dataset, total, cancel, progress)
        method = f"minibatch linear CKA (Nguyen et al. 2021), {cka.MINIBATCH} inputs a batch"
    report = {"model_a": model_a.name, "weights_a": model_a.weights, "model_b": model_b.name,
              "weights_b": model_b.weights, "data": dataset.name, "inputs": len(seen), "method": method,
              "layers_a": layers_a, "layers_b": layers_b, "cka": matrix.tolist(),
              "diagonal": {name: float(matrix[i, layers_b.index(name)]) for i, name in enumerate(layers_a)
                           if name in layers_b},
              "weight_change": weight_changes(model_a.module, model_b.module)}
    if classes_a is not None and classes_b is not None:
        same = classes_a == classes_b
        report["agreement"] = float(same.double().mean())
        report["disagreeing"] = [{"input": seen[k], "a": _label(model_a, int(classes_a[k])),
                                  "b": _label(model_b, int(classes_b[k]))}
                                 for k in torch.nonzero(~same).flatten().tolist()[:DISAGREEING_KEPT]]
        report["disagreeing_count"] = int((~same).sum())
    else:
        report["agreement"], report["disagreeing"], report["disagreeing_count"] = None, [], None
    report["timeline"] = None
    return report


def _label(model, index: int) -> str:
    return model.labels[index] if model.labels and index < len(model.labels) else str(index)


def _minibatch(model_a, model_b, probe_a, probe_b, layers_a, layers_b, dataset, total, cancel, progress):
    accumulated = cka.MinibatchCKA(len(layers_a), len(layers_b))
    seen, classes_a, classes_b = [], [], []
    for indices, x in _batches(model_a, dataset, total, cka.MINIBATCH):
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        if len(indices) < 4:  # the unbiased estimator needs four inputs
            continue
        with torch.inference_mode():
            out_a, acts_a = probe_a.capture(x, layers_a)
            out_b, acts_b = probe_b.capture(x.to(model_b.device), layers_b)
        accumulated.add([acts_a[n].float().cpu() for n in layers_a], [acts_b[n].float().cpu() for n in layers_b])
        classes_a.append(_predictions(model_a, out_a))
        classes_b.append(_predictions(model_b, out_b))
        seen.extend(indices)
        if progress is not None:
            progress("inputs", indices[-1] + 1, total)
    if not seen:
        raise DeepvisError(f"fewer than 4 readable inputs in {dataset.name}: minibatch CKA needs at least 4")
    joined = [None if any(c is None for c in cs) else torch.cat(cs) for cs in (classes_a, classes_b)]
    return accumulated.result(), seen, joined[0], joined[1]


def checkpoint_order(folder) -> list[Path]:
    """The checkpoints in ``folder`` in training order: by the last number in each file name,
    else (when some name has none) by modification time."""
    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in CHECKPOINT_SUFFIXES)
    if len(files) < 2:
        raise DeepvisError(f"{folder} holds {len(files)} checkpoint{'s' * (len(files) != 1)} "
                           f"({', '.join(CHECKPOINT_SUFFIXES)}): a timeline needs at least 2")
    numbers = [re.findall(r"\d+", p.stem) for p in files]
    if all(numbers):
        return [p for _, p in sorted(zip((int(n[-1]) for n in numbers), files))]
    return sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name))


def timeline(load, checkpoints: list[Path], dataset, limit: int | None = None, batch: int = 64, progress=None,
             cancel=None) -> dict:
    """``load(path)`` -> a LoadedModel at that checkpoint. The first checkpoint against the
    last (as ``compare``), then per checkpoint: each layer's CKA to the last checkpoint's same
    layer, the relative weight change since the previous checkpoint, and the first
    convolution's filters (returned apart, as pictures)."""
    from deepvis.core.probe import Probe

    total = len(dataset) if limit is None else min(limit, len(dataset))
    last = load(checkpoints[-1])
    probe_last = Probe(last.module, last.example_input())
    layers = compared_layers(probe_last)
    if gram_bytes(probe_last, layers, total) * 2 > cka.GRAM_BUDGET_BYTES:
        raise DeepvisError(f"a timeline over {total:,} inputs needs {gram_bytes(probe_last, layers, total) * 2 / 2**30:.1f} "
                           f"GiB of Gram matrices (at most {cka.GRAM_BUDGET_BYTES / 2**30:.0f}); use --limit")
    features, _, _ = activations(last, probe_last, layers, dataset, total, batch, cancel)
    grams_last = grams_of(features, layers)
    steps, filters, previous = [], [], None
    for k, path in enumerate(checkpoints):
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        model = last if k == len(checkpoints) - 1 else load(path)
        probe = probe_last if model is last else Probe(model.module, model.example_input())
        if model is last:
            grams = grams_last
        else:
            features, _, _ = activations(model, probe, layers, dataset, total, batch, cancel)
            grams = grams_of(features, layers)
        steps.append({"checkpoint": path.name,
                      "cka": {name: cka.cka_of_grams(g, grams_last[i]) for i, (name, g) in enumerate(zip(layers, grams))},
                      "weight_change": weight_changes(previous.module, model.module) if previous is not None else None})
        filters.append(first_filters(model.module))
        previous = model
        if progress is not None:
            progress("checkpoints", k + 1, len(checkpoints))
    return {"timeline": steps, "filters": filters}

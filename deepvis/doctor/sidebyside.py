"""One frame through two checkpoints, or through one checkpoint of a training timeline: the
same layer's activation from each, their difference and both predictions, for the Doctor
tab's Compare and Timeline modes (run on the compute thread, one frame at a time)."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from deepvis.doctor.weights import first_filters
from deepvis.errors import DeepvisError

MODELS_KEPT = 3  # checkpoints of a timeline kept loaded: the slider's neighbours come back at once


@dataclass(frozen=True)
class LayerView:
    """One model's view of a frame at a layer."""

    activation: np.ndarray  # float32 (C, H, W), (C, T) or (C,), one sample
    summary: object  # deepvis.core.predictions.Summary
    filters: np.ndarray | None  # the first convolution's weights (out, in, kh, kw)


def look(model, probe, frame: np.ndarray, layer: str) -> LayerView:
    """``frame`` (RGB uint8) through ``model`` as its own preprocessing fits it: ``layer``'s
    activation and the prediction."""
    if layer not in probe:
        raise DeepvisError(f"{model.name} has no layer {layer}")
    x = model.input_tensor(frame)
    with torch.inference_mode():
        output, acts = probe.capture(x, [layer])
    activation = acts[layer][0].float().cpu().numpy()
    return LayerView(activation, model.summarize(output, 3), first_filters(model.module))


def load_checkpoint(spec: str, path) -> tuple:
    """(LoadedModel, Probe) of model ``spec`` with the weights at ``path``."""
    from deepvis.core.loading import load_model
    from deepvis.core.probe import Probe

    model = load_model(spec, str(path))
    return model, Probe(model.module, model.example_input())


def difference(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, float]:
    """B minus A and its norm relative to A's; the shapes must agree."""
    if a.shape != b.shape:
        raise DeepvisError(f"the layer's outputs differ in shape ({'x'.join(map(str, a.shape))} against "
                           f"{'x'.join(map(str, b.shape))}): no difference to show")
    norm = float(np.linalg.norm(a))
    delta = b - a
    return delta, (float(np.linalg.norm(delta)) / norm if norm > 0 else float("inf"))


class CheckpointSeries:
    """The checkpoints of a training timeline, loaded on demand (the last few kept)."""

    def __init__(self, folder, load):
        """``load(path)`` -> a (LoadedModel, Probe) at that checkpoint."""
        from deepvis.doctor.compare import checkpoint_order

        self.paths: list[Path] = checkpoint_order(folder)
        self._load = load
        self._kept: OrderedDict[int, tuple] = OrderedDict()

    def __len__(self) -> int:
        return len(self.paths)

    def at(self, index: int):
        """(LoadedModel, Probe) at checkpoint ``index``."""
        if index in self._kept:
            self._kept.move_to_end(index)
            return self._kept[index]
        loaded = self._load(self.paths[index])
        self._kept[index] = loaded
        while len(self._kept) > MODELS_KEPT:
            self._kept.popitem(last=False)
        return loaded

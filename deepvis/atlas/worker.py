"""One worker's share of an atlas build: a batch of image paths in, a batch of atlas rows out.

The same class is a Ray Data actor (constructed once per worker, so the model loads once) and
the single-process path's loop body, so both paths compute identical rows.

Per image and requested layer the worker keeps the globally average-pooled feature vector
(what an embedding map is made of) and each unit's spatial maximum with its position (what
unit profiles rank images by, as the Yosinski toolbox and ``deepvis profile-units`` do).
Unreadable images come back as rows with an error and no numbers: they are listed, never fatal.
"""

import os
from pathlib import Path

import numpy as np
import torch

from deepvis.errors import DeepvisError

TOPK = 5  # predictions kept per image


class AtlasWorker:
    def __init__(self, model_options: dict, layers: list[str], root: str, threads: int | None = None,
                 model=None):
        if threads:
            torch.set_num_threads(threads)
        from deepvis.core.loading import load_model
        from deepvis.core.probe import Probe

        options = dict(model_options)
        self.model = model or load_model(options.pop("source", None), options.pop("weights", None), **options)
        self.probe = Probe(self.model.module, self.model.example_input())
        self.layers = list(layers)
        self.infos = [self.probe.layer(name) for name in self.layers]
        self.root = Path(root)
        self.classifies = self.model.task == "classification"

    def __call__(self, batch: dict) -> dict:
        from deepvis.core.predictions import class_probabilities
        from deepvis.core.probe import as_grid
        from deepvis.io.images import read_image

        paths = [str(p) for p in batch["path"]]
        n = len(paths)
        pre = self.model.preprocessor
        arrays, good, errors = [], [], [""] * n
        sizes, mtimes = np.zeros(n, np.int64), np.zeros(n, np.int64)
        for i, path in enumerate(paths):
            try:
                # The file as it was read: `atlas units` tells a source changed or gone since.
                stat = os.stat(self.root / path)
                sizes[i], mtimes[i] = stat.st_size, stat.st_mtime_ns
                arrays.append(pre.normalize(pre.fit(read_image(self.root / path))))
                good.append(i)
            except OSError as exc:
                errors[i] = f"cannot read {path}: {exc.strerror or exc}"
            except DeepvisError as exc:
                errors[i] = str(exc)
        out = {"path": np.array(paths, dtype=object), "error": np.array(errors, dtype=object),
               "source_size": sizes, "source_mtime": mtimes,
               "label": np.array([_label(p) for p in paths], dtype=object),
               "top_index": np.full((n, TOPK), -1, np.int32), "top_prob": np.zeros((n, TOPK), np.float32)}
        for name, info in zip(self.layers, self.infos):
            out[f"feat:{name}"] = np.full((n, info.channels), np.nan, np.float32)
            out[f"max:{name}"] = np.full((n, info.channels), np.nan, np.float32)
            out[f"argmax:{name}"] = np.zeros((n, info.channels), np.int32)
        if not good:
            return out
        x = torch.from_numpy(np.stack(arrays)).to(self.model.device)
        with torch.inference_mode():
            output, acts = self.probe.capture(x, self.layers)
            scores = self.model.main_output(output).float() if self.classifies else None
            if scores is not None and scores.ndim == 2:
                k = min(TOPK, scores.shape[1])
                # Independent yes/no per class for a multi-label model, else one softmax.
                probs = class_probabilities(scores, self.model.head.activation, self.model.multilabel)
                probs, index = probs.topk(k, 1)
                out["top_index"][good, :k] = index.cpu().numpy()
                out["top_prob"][good, :k] = probs.cpu().numpy()
            for name, info in zip(self.layers, self.infos):
                a = as_grid(acts[name], info).float()
                if a.ndim > 2:
                    flat = a.flatten(2)
                    out[f"feat:{name}"][good] = flat.mean(2).cpu().numpy()
                    best, where = flat.max(2)
                    out[f"max:{name}"][good] = best.cpu().numpy()
                    out[f"argmax:{name}"][good] = where.cpu().numpy()
                else:
                    a = a.flatten(1)
                    out[f"feat:{name}"][good] = a.cpu().numpy()
                    out[f"max:{name}"][good] = a.cpu().numpy()
        return out


def _label(path: str) -> str:
    """The first-level folder's name, as ``folder_dataset`` labels images; "" at the top
    (Arrow and Ray batches keep strings, not None, in a string column)."""
    parts = Path(path).parts
    return parts[0] if len(parts) > 1 else ""

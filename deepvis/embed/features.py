"""A layer's features over a dataset: batched forward passes, pooled, with thumbnails, cached.

Spatial maps are reduced to one vector per image by global average pooling (what the
classifier head of most CNNs sees) or flattened on request. Results are cached on disk, keyed
by the model's actual parameters (not its name: a fine-tuned checkpoint gets its own entry),
the input spec, the layer, the pooling and the dataset's content key.
"""

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from deepvis.core.cache import default_cache_dir, model_fingerprint
from deepvis.io.datasets import Dataset
from deepvis.errors import Cancelled, DeepvisError
from deepvis.io.images import quiet_cv2
from deepvis.core.loading import LoadedModel
from deepvis.core.labels import label_of
from deepvis.core.predictions import output_kind
from deepvis.core.probe import Probe

POOLING = ("avg", "flatten")
THUMB = 32  # thumbnail side in pixels
CACHE_VERSION = 2


@dataclass
class Features:
    vectors: np.ndarray  # float32 (N, D)
    labels: list[str | None]
    paths: list[str | None]
    thumbnails: np.ndarray  # uint8 (N, THUMB, THUMB, 3)
    layer: str
    model: str
    dataset: str
    skipped: list[str]  # items that could not be read, with why
    predictions: list[str | None] | None = None  # the model's top class per item (classifiers)
    cached: bool = False

    def __len__(self) -> int:
        return len(self.vectors)


def thumbnail(image: np.ndarray) -> np.ndarray:
    cv2 = quiet_cv2()
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    h, w = image.shape[:2]
    side = max(h, w)
    square = np.zeros((side, side, 3), np.uint8)
    square[(side - h) // 2:(side - h) // 2 + h, (side - w) // 2:(side - w) // 2 + w] = image[:, :, :3]
    # Tiny images (8x8 digits) stay crisp pixels; photos are averaged down.
    interpolation = cv2.INTER_NEAREST if side < THUMB else cv2.INTER_AREA
    return cv2.resize(square, (THUMB, THUMB), interpolation=interpolation)


def pool(activation: torch.Tensor, mode: str) -> torch.Tensor:
    """(N, C, ...) -> (N, D)."""
    if mode not in POOLING:
        raise DeepvisError(f"unknown pooling {mode!r}: expected {' or '.join(POOLING)}")
    if activation.ndim > 2 and mode == "avg":
        return activation.flatten(2).mean(2)
    return activation.flatten(1)


def extract_features(model: LoadedModel, dataset: Dataset, layer: str | None = None, pooling: str = "avg",
                     batch: int = 64, probe: Probe | None = None, progress=None, cancel=None,
                     cache_dir: Path | None = None, use_cache: bool = True) -> Features:
    """Features of ``layer`` (default: the one before the classifier head) for every item.

    ``progress(done, total)`` after each batch; ``cancel`` (a threading.Event) stops with
    :class:`~deepvis.errors.Cancelled` between batches. Unreadable items are skipped and listed.
    """
    probe = probe or Probe(model.module, model.example_input())
    layer = layer or probe.feature_layer().name
    probe.layer(layer)  # a clear error for a bad name
    if pooling not in POOLING:
        raise DeepvisError(f"unknown pooling {pooling!r}: expected {' or '.join(POOLING)}")
    cache_file = None
    if use_cache:
        key = hashlib.blake2b(repr((CACHE_VERSION, model_fingerprint(model), layer, pooling, dataset.key)).encode("utf-8", "surrogateescape"),
                              digest_size=20).hexdigest()
        cache_file = Path(cache_dir or default_cache_dir()) / f"{key}.npz"
        cached = _load_cache(cache_file, model, layer, dataset)
        if cached is not None:
            if progress is not None:
                progress(len(cached), len(cached))
            return cached
    total = len(dataset)
    vectors, labels, paths, thumbs, skipped = [], [], [], [], []
    pending: list[tuple[np.ndarray, int]] = []
    pre = model.preprocessor

    predicted: list[int] = []

    def flush():
        x = torch.from_numpy(np.stack([a for a, _ in pending])).to(model.device)
        with torch.inference_mode():
            output, acts = probe.capture(x, [layer])
        vectors.append(pool(acts[layer].float(), pooling).cpu().numpy())
        scores = model.main_output(output) if model.task == "classification" else None
        if scores is not None and output_kind(scores) == "classification":
            predicted.extend(scores.argmax(1).tolist())
        pending.clear()

    last_report = 0.0
    for i in range(total):
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        try:
            image = dataset.image(i)
            array = pre.normalize(pre.fit(image))
        except DeepvisError as exc:
            skipped.append(f"{dataset.paths[i] or i}: {exc}")
            continue
        pending.append((array, i))
        labels.append(dataset.labels[i])
        paths.append(dataset.paths[i])
        thumbs.append(thumbnail(image))
        if len(pending) == batch:
            flush()
        now = time.perf_counter()
        if progress is not None and now - last_report > 0.1:
            last_report = now
            progress(i + 1, total)
    if pending:
        flush()
    if not vectors:
        raise DeepvisError(f"none of the {total} items of {dataset.name} could be read"
                           + (f"; first problem: {skipped[0]}" if skipped else ""))
    predictions = [label_of(model.labels, i) for i in predicted] if len(predicted) == len(labels) else None
    features = Features(np.ascontiguousarray(np.concatenate(vectors), np.float32), labels, paths,
                        np.stack(thumbs), layer, model.name, dataset.name, skipped, predictions)
    if not np.isfinite(features.vectors).all():
        raise DeepvisError(f"the features of {layer} contain NaN or infinite values (check the weights)")
    if progress is not None:
        progress(total, total)
    if cache_file is not None:
        _save_cache(cache_file, features)
    return features


def _save_cache(path: Path, features: Features) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part.npz")
        np.savez(tmp, vectors=features.vectors, thumbnails=features.thumbnails,
                 labels=np.array(["" if v is None else v for v in features.labels]),
                 has_label=np.array([v is not None for v in features.labels]),
                 paths=np.array(["" if v is None else v for v in features.paths]),
                 skipped=np.array(features.skipped, dtype=str),
                 predictions=np.array(features.predictions if features.predictions is not None else [], dtype=str))
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only or full disk only costs the next run the extraction


def _load_cache(path: Path, model: LoadedModel, layer: str, dataset: Dataset) -> Features | None:
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            labels = [str(v) if has else None for v, has in zip(data["labels"], data["has_label"])]
            paths = [str(v) or None for v in data["paths"]]
            predictions = [str(p) for p in data["predictions"]] or None
            return Features(data["vectors"], labels, paths, data["thumbnails"], layer, model.name, dataset.name,
                            [str(s) for s in data["skipped"]], predictions, cached=True)
    except (OSError, ValueError, KeyError):
        return None  # a damaged cache entry is recomputed

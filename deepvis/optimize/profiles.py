"""Unit profiles: for every unit of a layer, the k dataset images that excite it most and the
patch of each around the unit's strongest response (what the Yosinski toolbox showed as
"top 9"), computed for any model and cached on disk.

A unit's response to an image is its spatial maximum, as in the toolbox. The patch is the
unit's receptive field at that position: measured, not assumed, as the extent of the input
gradient of one activation near the map's centre (the pixels that can influence it).

A unit never active over the data (maximum <= 0 at every image and position) is dead: its
"top" images would be arbitrary (ties of zero, or the least negative), so it gets no patches
and is shown as dead.
"""

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from deepvis.io.datasets import Dataset
from deepvis.errors import Cancelled, DeepvisError
from deepvis.core.cache import default_cache_dir, model_fingerprint
from deepvis.io.images import quiet_cv2
from deepvis.core.loading import LoadedModel
from deepvis.core.probe import Probe

PATCH = 48  # stored patch side in pixels


@dataclass
class UnitProfiles:
    layer: str
    values: np.ndarray  # float32 (C, k): the top spatial maxima, largest first
    items: np.ndarray  # int (C, k): dataset item of each
    locations: np.ndarray  # int (C, k, 2): (y, x) of the maximum in the activation map
    patches: np.ndarray  # uint8 (C, k, PATCH, PATCH, 3): the receptive field there; black for dead units
    field: int  # receptive field side in input pixels
    labels: list
    paths: list

    @property
    def dead(self) -> np.ndarray:
        """bool (C,): units never active over the data (their largest response is <= 0)."""
        return dead_units(self.values)


def dead_units(values: np.ndarray) -> np.ndarray:
    """bool (C,) from (C, k) top responses, largest first: no positive response at all."""
    return values[:, 0] <= 0 if values.shape[1] else np.ones(len(values), bool)


def receptive_field(model: LoadedModel, probe: Probe, layer: str) -> int:
    """Side of the square of input pixels that can change one activation of ``layer`` near the
    centre of its map (the support of that activation's input gradient)."""
    x = torch.randn(model.example_input().shape, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    with torch.enable_grad():
        acts = probe.capture_until(x.to(model.device), layer)
        if acts.ndim < 4:
            return int(max(x.shape[2:]))  # a vector: every pixel counts
        h, w = acts.shape[2:]
        grad, = torch.autograd.grad(acts[0, :, h // 2, w // 2].sum(), x)
    support = grad[0].abs().sum(0) > 0
    rows, cols = torch.nonzero(support.any(1)).flatten(), torch.nonzero(support.any(0)).flatten()
    if len(rows) == 0:
        return 1
    return int(max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1))


def profiles_cache_file(fingerprint: str, dataset: Dataset, layer: str, k: int,
                        cache_dir: Path | None = None) -> Path:
    # Version 2: dead units have no patches (version 1 cut arbitrary ones).
    key = hashlib.blake2b(repr(("profiles", 2, fingerprint, layer, k, dataset.key)).encode("utf-8", "surrogateescape"), digest_size=20)
    return Path(cache_dir or default_cache_dir()) / f"{key.hexdigest()}.npz"


def cached_profiles(fingerprint: str, dataset: Dataset, layer: str, k: int = 9,
                    cache_dir: Path | None = None) -> UnitProfiles | None:
    """The stored profiles, or None: what the app shows at once when a layer is selected."""
    return _load(profiles_cache_file(fingerprint, dataset, layer, k, cache_dir), layer, dataset)


def profile_units(model: LoadedModel, dataset: Dataset, layer: str, k: int = 9, batch: int = 32,
                  probe: Probe | None = None, progress=None, cancel=None, use_cache: bool = True,
                  cache_dir: Path | None = None, fingerprint: str | None = None) -> UnitProfiles:
    probe = probe or Probe(model.module, model.example_input())
    info = probe.layer(layer)
    if k < 1:
        raise DeepvisError("--top must be at least 1")
    cache_file = None
    if use_cache:
        cache_file = profiles_cache_file(fingerprint or model_fingerprint(model), dataset, layer, k, cache_dir)
        cached = _load(cache_file, layer, dataset)
        if cached is not None:
            return cached
    channels = info.channels
    values = np.full((channels, 0), -np.inf, np.float32)
    items = np.zeros((channels, 0), np.int64)
    locations = np.zeros((channels, 0, 2), np.int64)
    pre = model.preprocessor
    fitted: dict[int, np.ndarray] = {}
    pending: list[tuple[int, np.ndarray]] = []
    map_shape = None

    def flush():
        nonlocal values, items, locations, map_shape
        x = torch.from_numpy(np.stack([a for _, a in pending])).to(model.device)
        with torch.inference_mode():
            acts = probe.capture_until(x, layer).float()
        acts = acts.reshape(acts.shape[0], acts.shape[1], -1) if acts.ndim > 2 else acts[:, :, None]
        map_shape = (info.shape[1], info.shape[2]) if len(info.shape) == 3 else (1, 1)
        best, where = acts.max(2)  # (N, C)
        ids = np.array([i for i, _ in pending])
        ys, xs = np.divmod(where.cpu().numpy(), map_shape[1])
        values = np.concatenate([values, best.cpu().numpy().T], 1)
        items = np.concatenate([items, np.broadcast_to(ids, (channels, len(ids)))], 1)
        locations = np.concatenate([locations, np.stack([ys.T, xs.T], 2)], 1)
        keep = np.argsort(-values, 1, kind="stable")[:, :k]
        values = np.take_along_axis(values, keep, 1)
        items = np.take_along_axis(items, keep, 1)
        locations = np.take_along_axis(locations, keep[:, :, None], 1)
        pending.clear()

    for i in range(len(dataset)):
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        try:
            image = pre.fit(dataset.image(i))
        except DeepvisError:
            continue
        fitted[i] = image
        pending.append((i, pre.normalize(image)))
        if len(pending) == batch:
            flush()
            if progress is not None:
                progress(i + 1, len(dataset))
    if pending:
        flush()
    if values.shape[1] == 0:
        raise DeepvisError(f"none of the items of {dataset.name} could be read")
    field = receptive_field(model, probe, layer)
    patches = field_patches(fitted, items, locations, map_shape, field, model.spec.size, skip=dead_units(values))
    result = UnitProfiles(layer, values, items, locations, patches, field, list(dataset.labels), list(dataset.paths))
    if cache_file is not None:
        _save(cache_file, result)
    return result


def field_patches(fitted, items, locations, map_shape, field, size, skip=None) -> np.ndarray:
    """(C, k, PATCH, PATCH, 3) crops around each top response; black for the units in ``skip``
    (bool (C,), the dead ones)."""
    cv2 = quiet_cv2()
    h, w = size
    mh, mw = map_shape
    out = np.zeros(items.shape + (PATCH, PATCH, 3), np.uint8)
    half = max(1, min(field, max(h, w)) // 2)
    for c in range(items.shape[0]):
        if skip is not None and skip[c]:
            continue
        for j in range(items.shape[1]):
            image = fitted[int(items[c, j])]
            image = np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image
            y, x = locations[c, j]
            cy, cx = int((y + 0.5) * h / mh), int((x + 0.5) * w / mw)
            padded = np.pad(image, ((half, half), (half, half), (0, 0)))
            crop = padded[cy:cy + 2 * half, cx:cx + 2 * half]
            interpolation = cv2.INTER_NEAREST if crop.shape[0] < PATCH else cv2.INTER_AREA
            out[c, j] = cv2.resize(crop, (PATCH, PATCH), interpolation=interpolation)
    return out


def _save(path: Path, p: UnitProfiles) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part.npz")
        np.savez(tmp, values=p.values, items=p.items, locations=p.locations, patches=p.patches, field=p.field)
        os.replace(tmp, path)
    except OSError:
        pass


def _load(path: Path, layer: str, dataset: Dataset) -> UnitProfiles | None:
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as d:
            return UnitProfiles(layer, d["values"], d["items"], d["locations"], d["patches"], int(d["field"]),
                                list(dataset.labels), list(dataset.paths))
    except (OSError, ValueError, KeyError):
        return None


SHEET_FILL = 30
DEAD_TEXT = 150


def profile_sheet(p: UnitProfiles, units: int = 32) -> np.ndarray:
    """One row per unit (the first ``units``), its top-k patches side by side, 2-px gaps; a dead
    unit's row is the word "dead" instead."""
    from deepvis.render.tiling import picture_grid

    shown = p.patches[:units]
    k = shown.shape[1]
    sheet = picture_grid(shown.reshape(-1, *shown.shape[2:]), k, border=1, fill=SHEET_FILL)
    row = PATCH + 2
    cv2 = quiet_cv2()
    for c in np.flatnonzero(p.dead[:units]):
        band = sheet[c * row:(c + 1) * row]
        band[:] = SHEET_FILL
        text = f"unit {c}: dead (max {p.values[c, 0]:.3g} <= 0 on every image)"
        if cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)[0][0] > band.shape[1] - 16:
            text = "dead"  # a narrow sheet (a small --top)
        cv2.putText(band, text, (8, row // 2 + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (DEAD_TEXT,) * 3, 1, cv2.LINE_AA)
    return sheet

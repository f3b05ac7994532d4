"""Part segmentation of point clouds and voxel grids: the bundled PointNet and voxel net, or a
user's point model, run on a cloud of any size, with per-point features of any layer and
PointNet's critical points.

Big clouds run in chunks, and for our PointNet exactly so: its only non-pointwise steps are
max pools over all points (in the two T-Nets and before the head), and a max over the whole
cloud is the max of the chunks' maxima. So one pass per pool collects the maxima chunk by
chunk, and a last pass runs the ordinary forward per chunk with the T-Nets and the pool
answering with the whole cloud's values. Memory stays O(chunk), the labels are those of one
forward on the whole cloud, and the critical points are the whole cloud's.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from deepvis.shapes3d import parts as parts3d
from deepvis.errors import Cancelled, DeepvisError
from deepvis.shapes3d.readers import Cloud, Voxels

CHUNK = 65536  # points per forward: ~100 MB of activations in our PointNet
BUNDLED = {"pointnet_parts": "points", "voxnet_parts": "voxels"}
DEFAULT_3D_MODEL = "pointnet_parts"


@dataclass
class Segmentation:
    """A labelled cloud. For a voxel model, the points are the occupied voxels' centres."""

    points: np.ndarray  # (N, 3) float32 in the unit sphere
    labels: np.ndarray  # (N,) int64 predicted part ids
    scores: np.ndarray  # (N, parts) float32 softmax over the parts
    part_names: list[str]
    category: str | None  # the category whose parts the labels were restricted to
    truth: np.ndarray | None = None  # (N,) ground truth, same ids, when the file had labels
    critical: np.ndarray | None = None  # (C,) indices of the points that win the global max pool
    source: str = ""
    model: str = ""
    voxels: np.ndarray | None = None  # (R, R, R) int64 label grid, BACKGROUND where empty (voxel models)
    extras: dict = field(default_factory=dict)

    @property
    def accuracy(self) -> float | None:
        if self.truth is None:
            return None
        return float((self.labels == self.truth).mean())


class PointModel:
    """A 3-D segmentation network and how to feed it: ``kind`` "points" (B, 3, N) -> (B, P, N)
    or "voxels" (B, 1, R, R, R) -> (B, P, R, R, R)."""

    def __init__(self, module: nn.Module, kind: str, name: str, part_names: list[str] | None = None,
                 resolution: int = 32):
        self.module = module.eval()
        self.kind = kind
        self.name = name
        self.resolution = resolution
        self.ours = hasattr(module, "input_transform") and hasattr(module, "global_pool")
        self._part_names = part_names
        self._layers: list[str] | None = None

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    def part_names(self, parts: int) -> list[str]:
        if self._part_names is not None and len(self._part_names) == parts:
            return self._part_names
        if parts == len(parts3d.PART_NAMES):
            return list(parts3d.PART_NAMES)
        return [f"part {i}" for i in range(parts)]

    def layers(self) -> list[str]:
        """Modules whose output has one column per point (or voxel): what the feature colouring
        can show. Found by a dry run, since a module's name says nothing about its output; the
        run happens once, in ``load_point_model`` (on the thread that loads), so that a view
        asking later runs no torch: a forward on the GUI thread starts a second OpenMP team,
        after which every live frame on the compute thread ran 2.5x slower (libgomp stops
        spinning when its threads outnumber the cores)."""
        if self._layers is None:
            self._layers = self._find_layers()
        return list(self._layers)

    def _find_layers(self) -> list[str]:
        if isinstance(self.module, torch.jit.ScriptModule):
            return []  # Python hooks cannot reach inside compiled code
        names: list[str] = []
        n = 64
        x = torch.zeros(1, 3, n) if self.kind == "points" else torch.zeros(1, 1, *(3 * [self.resolution]))
        if self.kind == "points":
            x = torch.from_numpy(parts3d.make_shape("chair", np.random.default_rng(0), n)[0].T[None].copy())
        x = x.to(self.device)
        handles = []
        for name, m in self.module.named_modules():
            if not name or list(m.children()):
                continue

            def hook(_m, _a, out, name=name):
                if isinstance(out, torch.Tensor) and out.ndim >= 3 and out.shape[0] == 1 and \
                        (out.shape[-1] == n if self.kind == "points" else out.ndim == 5):
                    names.append(name)

            handles.append(m.register_forward_hook(hook))
        try:
            with torch.no_grad():
                self.module(x)
        finally:
            for h in handles:
                h.remove()
        return [nm for nm in dict.fromkeys(names) if not nm.startswith(("input_transform", "feature_transform"))]


def load_point_model(spec: str | None = None, weights: str | None = None, device: str = "cpu") -> PointModel:
    """``pointnet_parts`` (default), ``voxnet_parts``, a TorchScript file, or
    ``package.module:callable`` with ``weights`` (a state dict; read without unpickling code)."""
    from deepvis.core.device import resolve_device

    model = _load_point_model(spec or DEFAULT_3D_MODEL, weights)
    model.module.to(resolve_device(device))
    model.layers()  # the dry run, here rather than on whichever thread asks first
    return model


def _load_point_model(spec: str, weights: str | None) -> PointModel:
    if spec == "pointnet_parts":
        from deepvis.models.pointnet import load_pretrained

        return PointModel(load_pretrained(), "points", spec)
    if spec == "voxnet_parts":
        from deepvis.models.voxnet import RESOLUTION, load_pretrained

        return PointModel(load_pretrained(), "voxels", spec, resolution=RESOLUTION)
    if ":" in spec and not Path(spec).exists():
        from deepvis.core.loading import _from_factory

        module = _from_factory(spec)
        if weights:
            # The image loader's path: weights only (no unpickled code), keys aligned, and a
            # mismatch that names the missing, unexpected and misshapen tensors.
            from deepvis.core.loading import _load_file_into

            _load_file_into(module, weights, trust_pickle=False)
        return PointModel(module, _guess_kind(module), spec)
    path = Path(spec)
    if not path.exists():
        raise DeepvisError(f"no 3-D model {spec!r}: use pointnet_parts, voxnet_parts, a TorchScript file or "
                           "package.module:callable with --weights")
    try:
        from deepvis.core.checkpoint import load_torchscript

        module = load_torchscript(path)
    except Exception as exc:  # not TorchScript: a state dict needs its architecture
        raise DeepvisError(f"{path} is not a TorchScript archive ({type(exc).__name__}); for a state dict pass "
                           f"the architecture as package.module:callable and the file as --weights") from None
    return PointModel(module, _guess_kind(module), path.name)


def _guess_kind(module: nn.Module) -> str:
    """A point model takes (B, 3, N); try it (in eval mode: batch norm cannot train on one cloud)."""
    module.eval()
    with torch.no_grad():
        try:
            out = module(torch.zeros(1, 3, 32))
            if isinstance(out, torch.Tensor) and out.ndim == 3 and out.shape[-1] == 32:
                return "points"
        except Exception:
            pass
    raise DeepvisError("the model does not map points (B, 3, N) to per-point scores (B, parts, N)")


# --- our PointNet, exactly, in chunks -------------------------------------------------------

def _chunks(x: torch.Tensor, chunk: int):
    for start in range(0, x.shape[2], chunk):
        yield start, x[:, :, start:start + chunk]


def _tnet_matrix(tnet, parts) -> torch.Tensor:
    """A T-Net's matrix from its per-point input given chunk by chunk."""
    pooled = None
    for part in parts:
        h = tnet.relu2(tnet.bn2(tnet.conv2(tnet.relu1(tnet.bn1(tnet.conv1(part))))))
        m = h.max(dim=2).values
        pooled = m if pooled is None else torch.maximum(pooled, m)
    h = tnet.relu3(tnet.bn3(tnet.fc1(pooled)))
    return tnet.fc2(h).view(-1, tnet.k, tnet.k) + torch.eye(tnet.k, dtype=h.dtype, device=h.device)


@contextlib.contextmanager
def _answering(module: nn.Module, value: torch.Tensor):
    """The module returns ``value`` whatever it is given (an instance attribute shadows forward)."""
    module.forward = lambda *_args, **_kw: value
    try:
        yield
    finally:
        del module.forward


def _pointnet_chunked(net, x: torch.Tensor, chunk: int, on_chunk=None, cancel=None, capture=None):
    """Logits (1, P, N) and, per global channel, the index of the winning point. ``capture``
    (module, list) collects that module's per-point output (N, C) from the last pass only."""
    n = x.shape[2]

    def passing(stage: int):
        """The chunks of one of the four passes, reporting progress over all four and
        stopping between chunks when cancelled."""
        for start, c in _chunks(x, chunk):
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            yield start, c
            if on_chunk is not None:
                on_chunk(stage * n + start + c.shape[2], 4 * n)

    t1 = _tnet_matrix(net.input_transform, (c for _, c in passing(0)))

    def f2(c):
        c = torch.bmm(t1, c)
        return net.relu2(net.bn2(net.conv2(net.relu1(net.bn1(net.conv1(c))))))

    t2 = _tnet_matrix(net.feature_transform, (f2(c) for _, c in passing(1)))
    best = winner = None
    for start, c in passing(2):
        h = torch.bmm(t2, f2(c))
        h = net.relu4(net.bn4(net.conv4(net.relu3(net.bn3(net.conv3(h))))))
        values, where = net.bn5(net.conv5(h)).max(dim=2)
        where = where + start
        if best is None:
            best, winner = values, where
        else:
            take = values > best  # ties keep the earlier point, as torch.max over the whole does
            best, winner = torch.where(take, values, best), torch.where(take, where, winner)
    logits = []
    handle = None
    if capture is not None:
        module, sink = capture
        handle = module.register_forward_hook(lambda _m, _a, out: sink.append(out[0].T.float().cpu()))
    try:
        with _answering(net.input_transform, t1), _answering(net.feature_transform, t2), \
                _answering(net.global_pool, best):
            for _start, c in passing(3):
                logits.append(net(c))
    finally:
        if handle is not None:
            handle.remove()
    return torch.cat(logits, dim=2), winner[0]


# --- segmenting -----------------------------------------------------------------------------

@torch.no_grad()
def segment_cloud(model: PointModel, cloud: Cloud, category: str | None = None, chunk: int = CHUNK,
                  feature_layer: str | None = None, progress=None, cancel=None) -> Segmentation:
    """Label every point of ``cloud`` (in the unit sphere). ``category`` restricts the labels
    to one category's parts (None: the points vote). ``feature_layer`` also keeps that layer's
    per-point features in ``extras["features"]`` (N, C)."""
    points = np.ascontiguousarray(cloud.points, np.float32)
    if len(points) == 0:
        raise DeepvisError(f"{cloud.source}: no points to segment")
    if model.kind == "voxels":
        return _segment_as_voxels(model, points, category, cloud.labels, cloud.source, feature_layer)
    captured: list[torch.Tensor] = []
    target = _layer(model, feature_layer)
    handle = None
    try:
        x = torch.from_numpy(points.T.copy())[None].to(model.device)
        critical = None
        if model.ours:
            logits, critical = _pointnet_chunked(model.module, x, chunk, progress, cancel,
                                                 None if target is None else (target, captured))
            critical = critical.cpu().numpy()
        else:
            if target is not None:
                handle = target.register_forward_hook(lambda _m, _a, out: captured.append(out[0].T.float().cpu()))
            logits = model.module(x)
            if not isinstance(logits, torch.Tensor) or logits.ndim != 3 or logits.shape[2] != len(points):
                raise DeepvisError(f"{model.name} returned {type(logits).__name__} "
                                   f"{tuple(getattr(logits, 'shape', ()))}, not per-point scores (1, parts, N)")
    except torch.OutOfMemoryError:
        raise DeepvisError(f"out of memory on {len(points)} points: try a smaller chunk") from None
    finally:
        if handle is not None:
            handle.remove()
    logits = logits.float().cpu()
    if not torch.isfinite(logits).all():
        raise DeepvisError(f"{model.name} gave NaN or infinite scores on {cloud.source}")
    parts = logits.shape[1]
    names = model.part_names(parts)
    category_id = None
    if names == parts3d.PART_NAMES:
        cat = None if category is None else [parts3d.category_index(category)]
        labels = parts3d.labels_from_logits(logits.numpy(), cat)[0]
        category_id = parts3d.category_index(category) if category is not None else \
            next(i for i, c in enumerate(parts3d.CATEGORY_NAMES) if labels[0] in parts3d.CATEGORIES[c])
    else:
        labels = logits[0].argmax(0).numpy()
    scores = torch.softmax(logits[0].T, dim=1).numpy()
    category_name = None if category_id is None else parts3d.CATEGORY_NAMES[category_id]
    result = Segmentation(points, labels.astype(np.int64), scores, names, category_name,
                          _truth(cloud.labels, len(points), names, category_name, cloud.source), critical,
                          cloud.source, model.name)
    if captured:
        result.extras["features"] = torch.cat(captured).numpy()
    return result


def _layer(model: PointModel, name: str | None) -> nn.Module | None:
    """The module whose per-point output is wanted (None for none); a wrong name lists the right ones."""
    if name is None:
        return None
    target = dict(model.module.named_modules()).get(name)
    if target is None:
        raise DeepvisError(f"{model.name} has no layer {name!r}; layers: {', '.join(model.layers())}")
    return target


def _truth(labels, n: int, names: list[str], category: str | None, source: str) -> np.ndarray | None:
    """A file's part labels as our part ids, or None when they cannot be matched.

    ShapeNet part's .seg files number a category's parts 1..k; other files may store our
    global ids or 0..k-1. With our parts and a known category, the first reading that fits
    wins (the ShapeNet one first for .pts/.seg files); otherwise the ids must be ours."""
    if labels is None or len(labels) != n:
        return None
    labels = np.asarray(labels, np.int64)
    if names == parts3d.PART_NAMES and category is not None:
        ids = np.array(parts3d.CATEGORIES[category])
        k = len(ids)
        one_based = lambda: ids[labels - 1] if labels.min() >= 1 and labels.max() <= k else None  # noqa: E731
        zero_based = lambda: ids[labels] if labels.min() >= 0 and labels.max() < k else None  # noqa: E731
        as_is = lambda: labels if np.isin(labels, ids).all() else None  # noqa: E731
        readings = (one_based, as_is, zero_based) if Path(source).suffix.lower() in (".pts", ".seg") \
            else (as_is, one_based, zero_based)
        for reading in readings:
            mapped = reading()
            if mapped is not None:
                return mapped
        return None
    return labels if labels.min() >= 0 and labels.max() < len(names) else None


def _segment_as_voxels(model: PointModel, points, category, truth, source, feature_layer) -> Segmentation:
    r = model.resolution
    occupancy = parts3d.voxelize(points, r)
    grid, scores_grid, features = _voxel_forward(model, occupancy, category, feature_layer)
    idx = np.clip(np.floor((points.astype(np.float64) + 1.0) * (r / 2.0)).astype(np.int64), 0, r - 1)
    labels = grid[idx[:, 0], idx[:, 1], idx[:, 2]]
    scores = scores_grid[:, idx[:, 0], idx[:, 1], idx[:, 2]].T
    names = model.part_names(scores.shape[1])
    category_name = _category_of(labels, names, category)
    result = Segmentation(points, labels, scores, names, category_name,
                          _truth(truth, len(points), names, category_name, source), None, source, model.name,
                          voxels=grid)
    if features is not None:
        result.extras["features"] = features[:, idx[:, 0], idx[:, 1], idx[:, 2]].T
        result.extras["feature_volume"] = features
    return result


def _voxel_forward(model: PointModel, occupancy: np.ndarray, category, feature_layer):
    captured: list[torch.Tensor] = []
    handle = None
    target = _layer(model, feature_layer)
    if target is not None:
        handle = target.register_forward_hook(lambda _m, _a, out: captured.append(out[0].float()))
    try:
        with torch.no_grad():
            logits = model.module(torch.from_numpy(occupancy.astype(np.float32))[None, None].to(model.device))
            logits = logits.float().cpu()
    finally:
        if handle is not None:
            handle.remove()
    cat = None if category is None else [parts3d.category_index(category)]
    names = model.part_names(logits.shape[1])
    if names == parts3d.PART_NAMES:
        grid = parts3d.labels_from_logits(logits.numpy(), cat, valid=occupancy[None])[0]
    else:
        grid = np.where(occupancy, logits[0].argmax(0).numpy(), parts3d.BACKGROUND)
    scores = torch.softmax(logits[0], dim=0).numpy()
    features = None
    if captured:
        f = captured[0][None].cpu()
        if f.shape[2:] != occupancy.shape:  # a coarser layer: shown at the grid's resolution
            f = torch.nn.functional.interpolate(f, size=occupancy.shape, mode="nearest")
        features = f[0].numpy()
    return grid, scores, features


def _category_of(labels, names, category) -> str | None:
    if category is not None:
        return parts3d.CATEGORY_NAMES[parts3d.category_index(category)]
    if names != parts3d.PART_NAMES or len(labels) == 0:
        return None
    first = int(labels[labels >= 0][0]) if (labels >= 0).any() else None
    return next((c for c, ids in parts3d.CATEGORIES.items() if first in ids), None)


@torch.no_grad()
def segment_voxels(model: PointModel, voxels: Voxels, category: str | None = None,
                   feature_layer: str | None = None) -> Segmentation:
    """Label a voxel grid's occupied cells; the result's points are their centres."""
    if model.kind != "voxels":
        raise DeepvisError(f"{model.name} segments point clouds; open a voxel grid with voxnet_parts "
                           "(or open the shape as a mesh or cloud)")
    occ = voxels.occupancy
    r = occ.shape[0]
    if r != model.resolution:
        raise DeepvisError(f"{voxels.source} is a {r}^3 grid; {model.name} takes {model.resolution}^3")
    if not occ.any():
        raise DeepvisError(f"{voxels.source}: the grid has no occupied voxel")
    grid, scores_grid, features = _voxel_forward(model, occ, category, feature_layer)
    where = np.argwhere(occ)
    centres = ((where + 0.5) * (2.0 / r) - 1.0).astype(np.float32)
    labels = grid[occ]
    names = model.part_names(scores_grid.shape[0])
    category_name = _category_of(labels, names, category)
    truth = None if voxels.labels is None else _truth(voxels.labels[occ], len(labels), names, category_name,
                                                      voxels.source)
    result = Segmentation(centres, labels, scores_grid[:, occ].T, names, category_name,
                          truth, None, voxels.source, model.name, voxels=grid)
    if features is not None:
        result.extras["features"] = features[:, occ].T
        result.extras["feature_volume"] = features
    return result


def segment_file(model: PointModel, path, points: int = 2048, category: str | None = None,
                 feature_layer: str | None = None) -> Segmentation:
    """Read a mesh, cloud or voxel grid and segment it."""
    from deepvis.shapes3d.readers import read_3d

    data = read_3d(path, points=points)
    if isinstance(data, Voxels):
        if model.kind != "voxels":
            raise DeepvisError(f"{path} is a voxel grid; segment it with --model voxnet_parts")
        return segment_voxels(model, data, category, feature_layer)
    return segment_cloud(model, data, category, feature_layer=feature_layer)

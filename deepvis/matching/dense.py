"""Dense correspondence from a layer's features: where a point of one picture is in another.

A layer of a convolutional net (or a transformer's token grid) gives a feature vector per
cell of its grid. Upsampled bilinearly to the picture and normalised to unit length, that is a
descriptor per pixel; the match of a point of picture A in picture B is the pixel of B whose
descriptor has the largest cosine similarity with the point's, the heat map those
similarities over B. Confidence is the ratio of the best similarity to the best one more than
``EXCLUSION_PX`` away from it (Lowe's ratio test turned around: 1 means a second, distant
place looks just as alike).

Pictures are used at their own size when the model runs at any size (every convolution up to
the layer), else fitted to the model's input size and the coordinates mapped back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from deepvis.errors import DeepvisError

EXCLUSION_PX = 4.0
MUTUAL_CELLS = 4096  # grid cells compared all against all by mutual_nearest (64 MB of similarities)


@dataclass(frozen=True)
class DescriptorMap:
    """Unit-length descriptors of every pixel of one picture, (C, H, W) float32 (torch), and
    the layer's own grid (C, h, w) before upsampling."""

    pixels: torch.Tensor
    grid: torch.Tensor
    layer: str

    @property
    def size(self) -> tuple[int, int]:
        return int(self.pixels.shape[1]), int(self.pixels.shape[2])


@dataclass(frozen=True)
class Match:
    query: tuple[float, float]  # (x, y) in picture A
    best: tuple[int, int]  # (x, y) in picture B
    similarity: float
    confidence: float  # best / best beyond EXCLUSION_PX (>= 1)
    heatmap: np.ndarray  # (H_B, W_B) cosine similarities


def default_layer(probe, spec, task: str | None = None) -> str:
    """A descriptor model's own output; else the deepest layer whose grid is at least an eighth
    of the input's side: fine enough to place a match within a few pixels, deep enough to match
    by content."""
    from deepvis.core.probe import PLUMBING

    if task == "descriptor" and "output" in probe and probe.layer("output").spatial:
        return "output"
    side = min(spec.height, spec.width)
    chosen = None
    for layer in probe.layers:
        if layer.spatial and layer.shape[1] >= side / 8 and layer.path and layer.type_name not in PLUMBING:
            chosen = layer.name
    if chosen is None:
        raise DeepvisError("this model has no layer with a spatial grid of at least an eighth of its input: "
                           "name one with --layer")
    return chosen


def input_at_own_size(model, picture: np.ndarray) -> torch.Tensor:
    """``picture`` (RGB uint8) as the model's input, normalised as it declares, at the picture's
    own size: (1, C, H, W) on the model's device."""
    from deepvis.core.inputspec import pixel_tensor

    spec = model.spec
    mean = torch.tensor(spec.mean, dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(spec.std, dtype=torch.float32).view(1, -1, 1, 1)
    return ((pixel_tensor(picture, spec.channels) - mean) / std).to(model.device)


def describe(model, probe, image: np.ndarray, layer: str) -> DescriptorMap:
    """``image`` (RGB uint8 H x W x 3) through ``model`` up to ``layer``: its descriptor map at the
    picture's size."""
    from deepvis.core.inputspec import resample

    if layer not in probe:
        raise DeepvisError(f"{model.name} has no layer {layer!r}")
    info = probe.layer(layer)
    if not info.spatial:
        raise DeepvisError(f"{layer} has no spatial grid ({'x'.join(map(str, info.shape))}): pick a convolutional "
                           f"layer or a transformer's token layer")
    h, w = image.shape[:2]
    spec = model.spec
    own_size = probe.runs_at((spec.channels, h, w), layer)
    picture = image if own_size else resample(np.ascontiguousarray(image), spec.height, spec.width)
    x = input_at_own_size(model, picture)
    with torch.inference_mode():
        grid = probe.capture_until(x, layer)[0].float().cpu()
        pixels = F.interpolate(grid[None], size=(h, w), mode="bilinear", align_corners=False)[0]
        pixels = F.normalize(pixels, dim=0)
    return DescriptorMap(pixels, grid, layer)


def heatmap(a: DescriptorMap, b: DescriptorMap, point: tuple[float, float]) -> np.ndarray:
    """Cosine similarity of A's descriptor at ``point`` (x, y, pixel centres at integers) with
    every pixel of B."""
    x, y = point
    h, w = a.size
    if not (0 <= x <= w - 1 and 0 <= y <= h - 1):
        raise DeepvisError(f"the point ({x:g}, {y:g}) is outside the first picture ({w}x{h})")
    query = a.pixels[:, int(round(y)), int(round(x))]
    return torch.einsum("c,chw->hw", query, b.pixels).numpy()


def match(a: DescriptorMap, b: DescriptorMap, point: tuple[float, float]) -> Match:
    similarities = heatmap(a, b, point)
    flat = int(np.argmax(similarities))
    by, bx = divmod(flat, similarities.shape[1])
    best = float(similarities[by, bx])
    yy, xx = np.mgrid[:similarities.shape[0], :similarities.shape[1]]
    far = (yy - by) ** 2 + (xx - bx) ** 2 > EXCLUSION_PX ** 2
    runner_up = float(similarities[far].max()) if far.any() else float("nan")
    confidence = best / runner_up if runner_up > 0 else float("inf")
    return Match((float(point[0]), float(point[1])), (bx, by), best, confidence, similarities)


def mutual_nearest(a: DescriptorMap, b: DescriptorMap, count: int = 100) -> list[dict]:
    """Mutual nearest neighbours between the cells of A's and B's grids (each cell's best match
    is the other's best match), the ``count`` most similar, as pixel positions of each picture.

    A grid of more than ``MUTUAL_CELLS`` cells (an early layer at a picture's full size) is
    average-pooled to fit first: all pairs of a 320x240 grid would be 23 GB of similarities."""
    (grid_a, pool_a), (grid_b, pool_b) = _pooled(a.grid), _pooled(b.grid)
    fa = F.normalize(grid_a.flatten(1), dim=0)  # (C, na)
    fb = F.normalize(grid_b.flatten(1), dim=0)
    similarity = fa.T @ fb  # (na, nb)
    forward = similarity.argmax(1)
    backward = similarity.argmax(0)
    mutual = torch.nonzero(backward[forward] == torch.arange(len(forward))).flatten()
    scores = similarity[mutual, forward[mutual]]
    order = torch.argsort(scores, descending=True)[:count]
    wa, wb = grid_a.shape[2], grid_b.shape[2]
    (gha, gwa), (ghb, gwb) = a.grid.shape[1:], b.grid.shape[1:]
    (Ha, Wa), (Hb, Wb) = a.size, b.size
    pairs = []
    for k in order.tolist():
        i, j = int(mutual[k]), int(forward[mutual[k]])
        ya, xa = divmod(i, wa)
        yb, xb = divmod(j, wb)
        # A cell's centre in pixels, as align_corners=False upsampling places it (a pooled cell's
        # centre is the middle of the layer's cells it averages).
        pairs.append({"a": ((xa + 0.5) * pool_a * Wa / gwa - 0.5, (ya + 0.5) * pool_a * Ha / gha - 0.5),
                      "b": ((xb + 0.5) * pool_b * Wb / gwb - 0.5, (yb + 0.5) * pool_b * Hb / ghb - 0.5),
                      "similarity": float(scores[k])})
    return pairs


def _pooled(grid: torch.Tensor) -> tuple[torch.Tensor, int]:
    """``grid`` (C, h, w), average-pooled by the smallest whole factor that leaves at most
    MUTUAL_CELLS cells, and that factor."""
    _, h, w = grid.shape
    factor = 1
    while (h // factor) * (w // factor) > MUTUAL_CELLS:
        factor += 1
    return (grid if factor == 1 else F.avg_pool2d(grid[None], factor)[0]), factor

"""Mean matching accuracy on sequences in the HPatches layout, and upright RootSIFT as the
baseline.

A folder of sequences: ``v_*`` (viewpoint) and ``i_*`` (illumination), each with ``1.png`` ...
``N.png`` (``.ppm`` too) and ``H_1_k`` text files holding the 3x3 homography from image 1's
pixel coordinates to image k's (pixel (x, y) has its centre at integer (x, y); H maps
(x, y, 1)). Protocol: query points at x, y = 16, 24, 32, ... while x < width - 16 and
y < height - 16 of image 1, kept where H maps them to 16 <= x' < width_k - 16 and
16 <= y' < height_k - 16; the match is the pixel of image k whose descriptor is most similar;
it is correct within t px of the true position. MMA@t is the mean over pairs of the share of
correct matches, for t = 1 ... 10, over all pairs and per kind.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from deepvis.errors import Cancelled, DeepvisError

BORDER = 16
STEP = 8
THRESHOLDS = tuple(range(1, 11))
KINDS = {"v": "viewpoint", "i": "illumination"}
QUERY_CHUNK = 256  # query points compared with every pixel at once: 256 x 640 x 480 floats
SIFT_SIZE = 16.0


@dataclass(frozen=True)
class Sequence:
    name: str
    kind: str
    images: list[Path]
    homographies: dict[int, np.ndarray]  # k (2..N) -> 3x3 from image 1 to image k


def read_sequences(root) -> list[Sequence]:
    """Every ``v_*`` and ``i_*`` folder under ``root``; a broken one is one error naming it."""
    root = Path(root)
    if not root.is_dir():
        raise DeepvisError(f"{root} is not a folder of sequences (v_*/, i_* with 1.png ... and H_1_k)")
    sequences = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and p.name[:2] in ("v_", "i_")):
        images = {}
        for p in folder.iterdir():
            match = re.fullmatch(r"(\d+)\.(png|ppm)", p.name.lower())
            if match:
                images[int(match.group(1))] = p
        if 1 not in images or len(images) < 2:
            raise DeepvisError(f"{folder} holds {len(images)} numbered images: a sequence needs 1.png and at least "
                               f"one more")
        homographies = {}
        for k in sorted(images):
            if k == 1:
                continue
            path = folder / f"H_1_{k}"
            if not path.is_file():
                raise DeepvisError(f"{folder} has {images[k].name} but no {path.name} (its homography from image 1)")
            try:
                h = np.loadtxt(path, dtype=np.float64)
            except ValueError as exc:
                raise DeepvisError(f"{path} is not a 3x3 matrix of numbers ({exc})") from None
            if h.shape != (3, 3) or not np.isfinite(h).all() or abs(np.linalg.det(h)) < 1e-12:
                raise DeepvisError(f"{path} is not an invertible 3x3 homography (shape {h.shape})")
            homographies[k] = h
        sequences.append(Sequence(folder.name, KINDS[folder.name[0]], [images[k] for k in sorted(images)],
                                  homographies))
    if not sequences:
        raise DeepvisError(f"{root} holds no v_* or i_* sequence folders")
    return sequences


def query_points(width: int, height: int) -> np.ndarray:
    """(n, 2) float64 (x, y): 16, 24, 32, ... inside the 16 px border."""
    xs = np.arange(BORDER, width - BORDER, STEP)
    ys = np.arange(BORDER, height - BORDER, STEP)
    grid = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)
    return grid.astype(np.float64)


def warp(h: np.ndarray, points: np.ndarray) -> np.ndarray:
    homogeneous = np.concatenate([points, np.ones((len(points), 1))], 1) @ h.T
    return homogeneous[:, :2] / homogeneous[:, 2:3]


def inside(points: np.ndarray, width: int, height: int) -> np.ndarray:
    x, y = points[:, 0], points[:, 1]
    return (x >= BORDER) & (x < width - BORDER) & (y >= BORDER) & (y < height - BORDER)


def nearest_pixels(queries: torch.Tensor, descriptors: torch.Tensor) -> np.ndarray:
    """For (n, C) unit query descriptors, the (x, y) of the most similar of (C, H, W) unit pixel
    descriptors."""
    c, h, w = descriptors.shape
    flat = descriptors.reshape(c, -1)
    best = []
    for start in range(0, len(queries), QUERY_CHUNK):
        best.append((queries[start:start + QUERY_CHUNK] @ flat).argmax(1))
    index = torch.cat(best).numpy() if best else np.zeros(0, np.int64)
    return np.stack([index % w, index // w], 1).astype(np.float64)


@dataclass(frozen=True)
class PairMatches:
    """The protocol on one pair: image 1's query points that land inside image k, where they
    truly are in image k, where the descriptors put them, and how far off that is (px)."""

    points: np.ndarray  # (n, 2) x, y in image 1
    truth: np.ndarray  # (n, 2) in image k
    found: np.ndarray  # (n, 2) in image k
    error: np.ndarray  # (n,)

    def accuracy(self) -> list[float]:
        """The share of correct matches at each of THRESHOLDS."""
        return [float((self.error <= t).mean()) for t in THRESHOLDS]


def match_pair(d1: torch.Tensor, dk: torch.Tensor, h: np.ndarray) -> PairMatches | None:
    """The protocol on one pair of (C, H, W) unit descriptor maps, ``h`` the homography from
    image 1 to image k; None when no query point lands inside image k."""
    h1, w1 = d1.shape[1:]
    hk, wk = dk.shape[1:]
    points = query_points(w1, h1)
    truth = warp(h, points)
    keep = inside(truth, wk, hk)
    if not keep.any():
        return None
    points, truth = points[keep], truth[keep]
    queries = d1[:, points[:, 1].astype(int), points[:, 0].astype(int)].T.contiguous()
    found = nearest_pixels(queries, dk)
    return PairMatches(points, truth, found, np.hypot(*(found - truth).T))


def evaluate(describe, sequences: list[Sequence], progress=None, cancel=None) -> dict:
    """``describe(image)`` -> (C, H, W) unit descriptors (torch) of an RGB uint8 picture. The
    JSON of ``match --eval``: MMA per threshold over all pairs and per kind."""
    from deepvis.io.images import read_image

    per_pair = []  # (kind, points, correct per threshold)
    total = sum(len(s.images) - 1 for s in sequences)
    done = 0
    for sequence in sequences:
        d1 = describe(read_image(sequence.images[0]))
        for k, path in enumerate(sequence.images[1:], start=2):
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            pair = match_pair(d1, describe(read_image(path)), sequence.homographies[k])
            if pair is not None:
                per_pair.append((sequence.kind, len(pair.points), pair.accuracy()))
            done += 1
            if progress is not None:
                progress("pairs", done, total)
    if not per_pair:
        raise DeepvisError("no query point of any pair lands inside its second image: nothing to evaluate")
    return {"mma": _mean(per_pair), "viewpoint": _mean([p for p in per_pair if p[0] == "viewpoint"]),
            "illumination": _mean([p for p in per_pair if p[0] == "illumination"]),
            "pairs": len(per_pair), "points": sum(p[1] for p in per_pair)}


def _mean(pairs) -> dict | None:
    if not pairs:
        return None
    rows = np.array([p[2] for p in pairs])
    return {str(t): float(v) for t, v in zip(THRESHOLDS, rows.mean(0))}


def rootsift_dense(image: np.ndarray) -> torch.Tensor:
    """Upright SIFT (size 16, angle 0) at every pixel, as RootSIFT (L1-normalised, square
    root, so unit L2 length): (128, H, W) float32."""
    from deepvis.io.images import quiet_cv2

    cv2 = quiet_cv2()
    grey = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    h, w = grey.shape
    keypoints = [cv2.KeyPoint(float(x), float(y), SIFT_SIZE, 0.0) for y in range(h) for x in range(w)]
    sift = cv2.SIFT_create()
    computed, descriptors = sift.compute(grey, keypoints)
    if descriptors is None or len(computed) != h * w:
        raise DeepvisError("OpenCV's SIFT dropped keypoints at the picture's border: it cannot describe every pixel")
    d = descriptors.astype(np.float32)
    d /= np.maximum(d.sum(1, keepdims=True), 1e-12)
    d = np.sqrt(d)
    return torch.from_numpy(np.ascontiguousarray(d.T.reshape(128, h, w)))

"""Two pictures as the Correspondence view holds them: shrunk to a working size, described by a
layer, queried point by point, and (when the second is a known homography of the first) scored
with the ``match --eval`` protocol on that one pair.

Everything here runs on the compute thread; the view gets numbers and finished RGB overlays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepvis.matching.dense import DescriptorMap, Match, match
from deepvis.matching.hpatches import THRESHOLDS, PairMatches, match_pair

WORKING_SIDE = 320  # the longer side a picture is matched at: a query follows a drag at this size
VIEW_STRENGTH = 0.7  # how far a random view turns, scales, shears and tilts (evalset's 0..1)


def working_picture(image: np.ndarray, longest: int = WORKING_SIDE) -> np.ndarray:
    """``image`` (RGB uint8) shrunk so its longer side is at most ``longest``, aspect kept."""
    from deepvis.core.inputspec import resample

    h, w = image.shape[:2]
    scale = longest / max(h, w)
    if scale >= 1:
        return np.ascontiguousarray(image)
    return resample(np.ascontiguousarray(image), max(1, round(h * scale)), max(1, round(w * scale)))


def random_view(picture: np.ndarray, seed: int, strength: float = VIEW_STRENGTH) -> tuple[np.ndarray, np.ndarray]:
    """The picture seen from elsewhere: a random homography about its centre (and a change of
    light), and that 3x3 homography from the picture's pixels to the view's."""
    from deepvis.io.images import quiet_cv2
    from deepvis.matching.evalset import illumination, viewpoint_homography

    cv2 = quiet_cv2()
    rng = np.random.default_rng(seed)
    height, width = picture.shape[:2]
    h = viewpoint_homography(rng, width, height, strength)
    view = cv2.warpPerspective(np.ascontiguousarray(picture), h, (width, height), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT)
    return illumination(rng, view, strength / 2), h


def heat_overlay(picture: np.ndarray, similarities: np.ndarray) -> np.ndarray:
    """``picture`` under the cosine similarities (inferno, from their median up: most of a
    picture is somewhat alike, and a min-to-max scale washes the peak out)."""
    from deepvis.render.colormaps import apply_colormap

    lo, hi = float(np.median(similarities)), float(similarities.max())
    scaled = np.clip((similarities - lo) / (hi - lo), 0, 1) if hi > lo else np.zeros_like(similarities)
    return (0.55 * apply_colormap(scaled, "inferno") + 0.45 * picture).astype(np.uint8)


@dataclass(frozen=True)
class Query:
    """One query answered: from which picture (0: A, 1: B), the match, the other picture under
    its heat map, and, when the homography is known, where the point truly is and how far the
    match is from it."""

    side: int
    found: Match
    overlay: np.ndarray
    truth: tuple[float, float] | None
    error: float | None


def answer(maps: tuple[DescriptorMap, DescriptorMap], pictures: tuple[np.ndarray, np.ndarray], side: int,
           point: tuple[float, float], homography: np.ndarray | None) -> Query:
    """Where ``point`` (x, y) of picture ``side`` is in the other one; ``homography`` maps A's
    pixels to B's (None: unknown)."""
    from deepvis.matching.hpatches import warp

    source, target = maps[side], maps[1 - side]
    found = match(source, target, point)
    truth = error = None
    if homography is not None:
        h = homography if side == 0 else np.linalg.inv(homography)
        tx, ty = warp(h, np.array([point], np.float64))[0]
        truth = (float(tx), float(ty))
        error = float(np.hypot(found.best[0] - tx, found.best[1] - ty))
    return Query(side, found, heat_overlay(pictures[1 - side], found.heatmap), truth, error)


@dataclass(frozen=True)
class PairScore:
    """``match --eval``'s protocol on the one pair: MMA at 1 ... 10 px and its matches."""

    mma: dict[str, float]
    matches: PairMatches

    def first_query(self, maps: tuple[DescriptorMap, DescriptorMap], candidates: int = 40) -> tuple[float, float]:
        """A query point that shows what matching looks like: of the correctly matched (within
        1 px) grid points nearest A's centre, the one with the most confident match; else the
        grid point nearest the centre."""
        points, error = self.matches.points, self.matches.error
        centre = points.mean(0)
        correct = points[error <= 1]
        if not len(correct):
            x, y = points[np.argmin(np.hypot(*(points - centre).T))]
            return float(x), float(y)
        nearest = correct[np.argsort(np.hypot(*(correct - centre).T))[:candidates]]
        confidence = [match(maps[0], maps[1], (float(x), float(y))).confidence for x, y in nearest]
        x, y = nearest[int(np.argmax(confidence))]
        return float(x), float(y)


def score(maps: tuple[DescriptorMap, DescriptorMap], homography: np.ndarray) -> PairScore | None:
    """None when no query point of A lands inside B."""
    pair = match_pair(maps[0].pixels, maps[1].pixels, homography)
    if pair is None:
        return None
    return PairScore({str(t): v for t, v in zip(THRESHOLDS, pair.accuracy())}, pair)

"""The match command's pictures: query points and their heat maps over the second picture, or
mutual nearest neighbours drawn as lines between the two."""

from __future__ import annotations

import numpy as np

from deepvis.render import figure as fig

QUERY = (255, 70, 40)
FOUND = (60, 230, 90)
GAP = 8


def _canvas_of(pictures: list[np.ndarray]):
    height = max(p.shape[0] for p in pictures)
    width = sum(p.shape[1] for p in pictures) + GAP * (len(pictures) - 1)
    image, draw = fig._canvas(height, width)
    x = 0
    offsets = []
    for picture in pictures:
        image.paste(fig._pil(picture), (x, 0))
        offsets.append(x)
        x += picture.shape[1] + GAP
    return image, draw, offsets


def _mark(draw, x: float, y: float, colour, radius: int = 5) -> None:
    draw.ellipse([x - radius, y - radius, x + radius, y + radius], outline=colour, width=2)


def heatmaps_picture(a: np.ndarray, b: np.ndarray, matches, title: str) -> np.ndarray:
    """A with its query points, then B under each query's heat map with the best match."""
    from deepvis.matching.pair import heat_overlay

    panels = [a, *(heat_overlay(b, found.heatmap) for found in matches)]
    image, draw, offsets = _canvas_of(panels)
    for k, found in enumerate(matches):
        _mark(draw, offsets[0] + found.query[0], found.query[1], QUERY)
        draw.text((offsets[0] + found.query[0] + 7, found.query[1] - 7), str(k + 1), fill=QUERY, font=fig._font(12))
        _mark(draw, offsets[k + 1] + found.best[0], found.best[1], FOUND)
        draw.text((offsets[k + 1] + 3, 2), f"{k + 1}: {found.similarity:.2f}, x{found.confidence:.2f}", fill=FOUND,
                  font=fig._font(12))
    details = "red: query points in the first picture; each other panel: the second picture under a query's cosine " \
              "similarity (inferno, from its median up), green: the best match, with its similarity and confidence ratio"
    return fig.figure(np.asarray(image), title, details)


def lines_picture(a: np.ndarray, b: np.ndarray, pairs: list[dict], title: str) -> np.ndarray:
    """The two pictures side by side and a line per mutual nearest-neighbour pair, greener for
    more similar."""
    image, draw, offsets = _canvas_of([a, b])
    if pairs:
        sims = np.array([p["similarity"] for p in pairs])
        lo, hi = float(sims.min()), float(sims.max())
        for pair in pairs:
            t = (pair["similarity"] - lo) / (hi - lo) if hi > lo else 1.0
            colour = (int(255 * (1 - t)), int(80 + 175 * t), 60)
            (xa, ya), (xb, yb) = pair["a"], pair["b"]
            draw.line([(offsets[0] + xa, ya), (offsets[1] + xb, yb)], fill=colour, width=1)
            _mark(draw, offsets[0] + xa, ya, colour, 2)
            _mark(draw, offsets[1] + xb, yb, colour, 2)
    return fig.figure(np.asarray(image), title, f"{len(pairs)} mutual nearest neighbours; greener: more similar")

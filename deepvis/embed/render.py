"""An embedding map as a picture (points coloured by label, thumbnails where they fit, a
legend) and as CSV, for the CLI and the GUI's exports."""

import csv
from pathlib import Path

import numpy as np

from deepvis.render.colormaps import CATEGORICAL
from deepvis.io.images import quiet_cv2

UNLABELLED = (200, 200, 200)


def label_colors(labels) -> tuple[np.ndarray, list[str]]:
    """An RGB colour per point and the legend's order (natural sort: 2 before 10)."""
    import re

    names = sorted({label for label in labels if label is not None},
                   key=lambda s: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)])
    index = {name: i for i, name in enumerate(names)}
    colors = np.array([CATEGORICAL[index[label] % len(CATEGORICAL)] if label is not None else UNLABELLED
                       for label in labels], np.uint8).reshape(-1, 3)
    return colors, names


def render_map(coords: np.ndarray, labels, thumbnails: np.ndarray | None = None, size: int = 1200,
               thumb: int = 24) -> np.ndarray:
    """RGB uint8 picture of the map: every point as a dot in its label's colour, and a
    thumbnail (framed in that colour) on each free cell of a ``thumb``-pixel grid."""
    cv2 = quiet_cv2()
    colors, names = label_colors(labels)
    legend_w = 160 if names else 0
    canvas = np.full((size, size + legend_w, 3), 18, np.uint8)
    margin = thumb
    lo, hi = coords.min(0), coords.max(0)
    scale = (size - 2 * margin) / max(float((hi - lo).max()), 1e-9)
    pix = ((coords - lo) * scale + margin).astype(int)
    for (x, y), c in zip(pix, colors):
        cv2.circle(canvas, (int(x), int(y)), 2, tuple(int(v) for v in c), -1, lineType=cv2.LINE_AA)
    if thumbnails is not None and len(thumbnails):
        taken = set()
        for i in np.random.default_rng(0).permutation(len(pix)):
            x, y = pix[i]
            cell = (x // thumb, y // thumb)
            if cell in taken:
                continue
            taken.add(cell)
            x0, y0 = cell[0] * thumb, cell[1] * thumb
            if x0 + thumb > size or y0 + thumb > size:
                continue
            small = cv2.resize(thumbnails[i], (thumb - 2, thumb - 2), interpolation=cv2.INTER_AREA)
            canvas[y0:y0 + thumb, x0:x0 + thumb] = colors[i]
            canvas[y0 + 1:y0 + thumb - 1, x0 + 1:x0 + thumb - 1] = small
    for k, name in enumerate(names[:40]):
        y = 24 + 22 * k
        color = tuple(int(v) for v in CATEGORICAL[k % len(CATEGORICAL)])
        cv2.rectangle(canvas, (size + 12, y - 12), (size + 26, y + 2), color, -1)
        cv2.putText(canvas, name[:16], (size + 34, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (230, 230, 230), 1, cv2.LINE_AA)
    return canvas


def write_csv(path, coords: np.ndarray, labels, paths) -> None:
    """Columns x, y, label, path (label and path empty when unknown)."""
    # surrogateescape: a file name that is not UTF-8 is written back as the bytes it was.
    with open(Path(path), "w", newline="", encoding="utf-8", errors="surrogateescape") as f:
        writer = csv.writer(f)
        writer.writerow(["x", "y", "label", "path"])
        for (x, y), label, p in zip(coords, labels, paths):
            writer.writerow([f"{x:.6g}", f"{y:.6g}", label or "", p or ""])

"""Pictures of labelled clouds without a GL context: the CLI's `segment3d --png` runs on
servers with no display, where vispy cannot open one. Points are projected through the same
turntable view the app starts with and drawn far to near as shaded discs, with a legend."""

import numpy as np

from deepvis.render.colormaps import CATEGORICAL
from deepvis.io.images import quiet_cv2

BACKGROUND = (30, 31, 34)
ERROR_COLOR = (255, 40, 40)
RIGHT_COLOR = (90, 90, 96)


def part_colors(labels: np.ndarray) -> np.ndarray:
    """(N, 3) uint8 colour of each part id (ids beyond the palette wrap; negative ids grey)."""
    labels = np.asarray(labels, np.int64)
    colors = CATEGORICAL[np.mod(labels, len(CATEGORICAL))]
    colors[labels < 0] = (128, 128, 128)
    return colors


def view_matrix(azimuth: float = 30.0, elevation: float = 20.0) -> np.ndarray:
    """Rows: screen right, screen up, towards the viewer; y is the shapes' up axis."""
    a, e = np.radians(azimuth), np.radians(elevation)
    turn = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    tilt = np.array([[1, 0, 0], [0, np.cos(e), -np.sin(e)], [0, np.sin(e), np.cos(e)]])
    return tilt @ turn


def render_points(points: np.ndarray, colors: np.ndarray, size: int = 640, point_px: float | None = None,
                  azimuth: float = 30.0, elevation: float = 20.0, highlight: np.ndarray | None = None,
                  legend: list[tuple[str, tuple[int, int, int]]] | None = None, title: str = "") -> np.ndarray:
    """uint8 (size, size, 3) picture of (N, 3) points in the unit sphere; ``highlight`` indices
    are drawn last and larger (critical points)."""
    cv2 = quiet_cv2()
    pts = np.asarray(points, np.float64) @ view_matrix(azimuth, elevation).T
    n = len(pts)
    if point_px is None:  # denser clouds get smaller discs, so shapes stay readable
        point_px = float(np.clip(size / 90 * np.sqrt(2048 / max(n, 1)), 1.0, size / 60))
    scale = size * 0.45
    xy = np.stack([size / 2 + pts[:, 0] * scale, size / 2 - pts[:, 1] * scale], 1)
    depth = pts[:, 2]
    shade = 0.55 + 0.45 * (depth - depth.min()) / max(np.ptp(depth), 1e-9)  # nearer is brighter
    shaded = np.clip(np.asarray(colors, np.float64)[:, :3] * shade[:, None], 0, 255).astype(np.uint8)
    image = np.empty((size, size, 3), np.uint8)
    image[:] = BACKGROUND
    radius = max(1, int(round(point_px / 2)))
    for i in np.argsort(depth):
        x, y = int(xy[i, 0]), int(xy[i, 1])
        cv2.circle(image, (x, y), radius, tuple(int(c) for c in shaded[i]), -1, lineType=cv2.LINE_AA)
    if highlight is not None and len(highlight):
        for i in np.unique(highlight):
            x, y = int(xy[i, 0]), int(xy[i, 1])
            cv2.circle(image, (x, y), radius + 3, (255, 255, 255), 1, lineType=cv2.LINE_AA)
    font = cv2.FONT_HERSHEY_SIMPLEX
    if title:
        cv2.putText(image, title, (10, 22), font, 0.55, (230, 230, 230), 1, cv2.LINE_AA)
    for k, (name, color) in enumerate(legend or []):
        y = size - 14 - 20 * (len(legend) - 1 - k)
        cv2.rectangle(image, (10, y - 11), (24, y + 3), tuple(int(c) for c in color), -1)
        cv2.putText(image, name, (32, y), font, 0.5, (230, 230, 230), 1, cv2.LINE_AA)
    return image


def legend_for(labels: np.ndarray, names: list[str]) -> list[tuple[str, tuple[int, int, int]]]:
    """One entry per part present, with its share of the points."""
    ids, counts = np.unique(labels[labels >= 0], return_counts=True)
    total = max(int(counts.sum()), 1)
    return [(f"{names[i] if i < len(names) else i}  {100 * c / total:.0f}%",
             tuple(int(v) for v in part_colors(np.array([i]))[0])) for i, c in zip(ids, counts)]

"""``deepvis bench map-view``: the large map's frame time at a million points, while a scripted
camera zooms from the whole map down to a few hundred points (thumbnails) and back, panning on
the way.

Each frame sets the view range, runs the map's update at once (instead of after its debounce
timer) and paints the widget synchronously, so a frame's time is everything a user waits for
between a wheel step and the new picture. The layout is synthetic and seeded: 50 Gaussian
clusters of different sizes with 50 labels, and thumbnails drawn from the label's name.
"""

import statistics
import time

import numpy as np

LABELS = 50


def synthetic_atlas(points: int = 1_000_000, labels: int = LABELS, seed: int = 0):
    """(coords float32 (N, 2), label codes int (N,), label names): Gaussian clusters, one per
    label, of different sizes and spreads, some overlapping, as a t-SNE of a big dataset."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 40, (labels, 2))
    spread = rng.uniform(1, 6, labels)
    weights = rng.dirichlet(np.full(labels, 2.0))
    codes = rng.choice(labels, points, p=weights)
    coords = centers[codes] + rng.normal(0, 1, (points, 2)) * spread[codes, None]
    return coords.astype(np.float32), codes, [f"class {i}" for i in range(labels)]


def synthetic_thumbnail(codes: np.ndarray, size: int = 32):
    """A thumbnail callback: the point's label number in white on a dark square with a bar
    along its top, so a picture drawn upside down shows it."""
    from deepvis.io.images import quiet_cv2

    cv2 = quiet_cv2()

    def thumbnail(i: int) -> np.ndarray:
        image = np.full((size, size, 3), 30, np.uint8)
        image[:4] = (240, 200, 60)
        cv2.putText(image, str(int(codes[i])), (3, size - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1,
                    cv2.LINE_AA)
        return image

    return thumbnail


def camera_path(index, frames: int, few: int = 300, seed: int = 0) -> list[tuple[float, float, float, float]]:
    """View rectangles (x0, x1, y0, y1): zoom from the whole map towards a point inside a
    cluster until about ``few`` points are in view, pan there, zoom back out while panning."""
    rng = np.random.default_rng(seed)
    cx0, cy0 = (index.xmin + index.xmax) / 2, (index.ymin + index.ymax) / 2
    half_w, half_h = (index.xmax - index.xmin) / 2 * 1.02, (index.ymax - index.ymin) / 2 * 1.02
    # Aim at a random point: most of them are in the dense parts, where zooming in is slowest.
    k = int(rng.integers(len(index.order)))
    tx, ty = float(index.xs[k]), float(index.ys[k])

    def rect(cx, cy, scale):
        return cx - half_w * scale, cx + half_w * scale, cy - half_h * scale, cy + half_h * scale

    lo, hi = 1e-6, 1.0  # the scale where about `few` points are in view
    for _ in range(40):
        mid = (lo * hi) ** 0.5
        if index.count_inside(*rect(tx, ty, mid)) > few:
            hi = mid
        else:
            lo = mid
    smallest = hi
    zoom_in, pan_small = int(frames * 0.45), int(frames * 0.1)
    zoom_out = frames - zoom_in - pan_small
    path = []
    for t in np.linspace(0, 1, zoom_in):
        scale = smallest ** t
        path.append(rect(cx0 + (tx - cx0) * t, cy0 + (ty - cy0) * t, scale))
    for t in np.linspace(0, 1, pan_small + 1)[1:]:  # a few hundred points: drag a view's width
        step = 2 * half_w * smallest * t
        path.append(rect(tx + step, ty, smallest))
    ex = tx + 2 * half_w * smallest
    for t in np.linspace(0, 1, zoom_out + 1)[1:]:
        scale = smallest ** (1 - t)
        # Back out, drifting sideways so each level is also seen while panning.
        path.append(rect(ex + (cx0 - ex) * t + half_w * scale * 0.3 * np.sin(6 * t),
                         ty + (cy0 - ty) * t, scale))
    return path


def bench_map_view(points: int = 1_000_000, frames: int = 60, size=(1200, 800), seed: int = 0) -> dict:
    from deepvis.widgets.window.app import check_display

    check_display()
    from deepvis.widgets.window import qtenv  # noqa: F401
    from PySide6.QtWidgets import QApplication

    from deepvis.widgets.panes.largemap import DENSITY_ABOVE, THUMBNAILS_BELOW, LargeMapPlot

    app = QApplication.instance() or QApplication([])
    coords, codes, names = synthetic_atlas(points, seed=seed)
    widget = LargeMapPlot()
    widget.resize(*size)
    widget.show()
    for _ in range(5):
        app.processEvents()
    start = time.perf_counter()
    widget.set_points(coords, codes, names, thumbnail=synthetic_thumbnail(codes))
    set_points_ms = (time.perf_counter() - start) * 1000
    widget.repaint()
    app.processEvents()

    levels, in_view, times = [], [], []
    for x0, x1, y0, y1 in camera_path(widget.index, frames, seed=seed):
        start = time.perf_counter()
        widget.box.setRange(xRange=(x0, x1), yRange=(y0, y1), padding=0)
        widget.update_view()  # what the debounce timer would run 30 ms later
        widget.repaint()
        app.processEvents()
        times.append((time.perf_counter() - start) * 1000)
        levels.append(widget.level)
        in_view.append(widget.in_view)
    widget.close()
    widget.deleteLater()
    app.processEvents()

    def summary(ms):
        ms = sorted(ms)
        return {"frames": len(ms), "median_ms": round(statistics.median(ms), 1),
                "p95_ms": round(float(np.percentile(ms, 95)), 1), "max_ms": round(ms[-1], 1)}

    per_level = {level: summary([t for t, lv in zip(times, levels) if lv == level])
                 for level in ("density", "points", "thumbnails") if level in levels}
    overall = summary(times)
    return {"points": points, "frames": len(times), "size": f"{size[0]}x{size[1]}",
            "density_above": DENSITY_ABOVE, "thumbnails_below": THUMBNAILS_BELOW,
            "set_points_ms": round(set_points_ms, 1), "median_ms": overall["median_ms"], "p95_ms": overall["p95_ms"],
            "max_ms": overall["max_ms"], "per_level": per_level,
            "per_frame": [[lv, n, round(t, 1)] for lv, n, t in zip(levels, in_view, times)]}

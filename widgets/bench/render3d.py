"""``deepvis bench render3d``: the 3-D tab's frame time on a big coloured cloud against a bare
vispy Markers canvas with the same points, and PointNet's throughput on a big cloud.

Both canvases have the same size and draw the same points with the same colours and marker
size; each frame turns the camera a little, so nothing is cached between frames. Rounds
alternate between the two (the machine's speed drifts), and each figure is the median frame.
"""

import statistics
import time

import numpy as np

from deepvis.live.computethread import compute_thread


def _cloud(points: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A labelled shape resampled to ``points`` points: as dense and as coloured as a scan."""
    from deepvis.shapes3d import parts as parts3d
    from deepvis.shapes3d.render import part_colors

    rng = np.random.default_rng(seed)
    pts, labels = parts3d.make_shape("airplane", rng, points)
    return pts, part_colors(labels)


def bench_render3d(points: int = 1_000_000, frames: int = 5, rounds: int = 4, size=(800, 600),
                   segment_points: int | None = None) -> dict:
    from deepvis.widgets.window.app import check_display

    check_display()
    from deepvis.widgets.window import qtenv  # noqa: F401
    from PySide6.QtWidgets import QApplication
    from vispy import scene

    from deepvis.widgets.tabs.cloudview import SceneCanvas3D

    app = QApplication.instance() or QApplication([])
    pts, colors = _cloud(points)
    rgba = np.concatenate([colors / 255.0, np.ones((len(colors), 1))], 1).astype(np.float32)

    ours = SceneCanvas3D()
    ours.canvas.size = size
    ours.canvas.show()
    ours.show_points(pts, colors)
    ours.show_rings(None)
    bare = scene.SceneCanvas(size=size, bgcolor="#1e1f22", show=True)
    view = bare.central_widget.add_view()
    view.camera = scene.TurntableCamera(up="y", fov=40, distance=3.2, elevation=20, azimuth=30)
    markers = scene.visuals.Markers(parent=view.scene)
    markers.set_data(pts, face_color=rgba, size=ours.point_size, edge_width=0)
    app.processEvents()

    def frame_ms(canvas, camera) -> list[float]:
        times = []
        for _ in range(frames):
            camera.azimuth += 7
            start = time.perf_counter()
            canvas.render()
            times.append((time.perf_counter() - start) * 1000)
        return times

    frame_ms(ours.canvas, ours.view.camera)  # first frames upload the buffers
    frame_ms(bare, view.camera)
    ours_times, bare_times = [], []
    for _ in range(rounds):
        ours_times += frame_ms(ours.canvas, ours.view.camera)
        bare_times += frame_ms(bare, view.camera)
    ours.close()
    bare.close()
    ours_ms, bare_ms = statistics.median(ours_times), statistics.median(bare_times)

    n = segment_points or points
    rate = compute_thread().call(_pointnet_rate, n)
    return {"points": points, "frames": frames * rounds, "ours_ms": round(ours_ms, 2), "bare_ms": round(bare_ms, 2),
            "ratio": round(ours_ms / bare_ms, 3), "pointnet_points": n, "pointnet_points_per_s": round(rate)}


def _pointnet_rate(points: int) -> float:
    from deepvis.shapes3d.readers import Cloud
    from deepvis.shapes3d.segment import load_point_model, segment_cloud

    model = load_point_model("pointnet_parts")
    pts, _ = _cloud(points, seed=1)
    segment_cloud(model, Cloud(pts[:4096], None, None, "warm-up", "cloud"))
    start = time.perf_counter()
    segment_cloud(model, Cloud(pts, None, None, "bench", "cloud"))
    return points / (time.perf_counter() - start)

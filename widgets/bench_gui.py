"""``deepvis bench gui-live``: the window's frame rate against the engine's, and UI latency.

The engine figure is the live pipeline alone (``deepvis bench live``) on the same model and
input; the GUI figure is results actually delivered to and painted by the window. A 10 ms
QTimer runs throughout; how late its ticks fire is the latency a user feels on key presses.
"""

import time

import numpy as np

from deepvis.bench import bench_live, default_bench_video
from deepvis.computethread import compute_thread
from deepvis.loading import load_model
from deepvis.probe import Probe


def bench_gui_live(model_spec=None, input_spec=None, seconds: float = 10.0, warmup_s: float = 3.0,
                   engine_frames: int = 150, weights=None, model_options=None) -> dict:
    from deepvis.widgets.app import check_display

    check_display()
    from deepvis.widgets import qtenv  # noqa: F401
    from PySide6.QtCore import QElapsedTimer, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from deepvis.widgets.mainwindow import MainWindow
    from deepvis.widgets.theme import apply_dark_theme

    options = dict(model_options or {})
    input_spec = str(input_spec or default_bench_video())
    app = QApplication.instance() or QApplication([])
    apply_dark_theme(app)
    model = compute_thread().call(load_model, model_spec, weights, **options)
    # The window opens on the probe's default layer; the engine is measured on that layer too.
    layer = compute_thread().call(lambda: Probe(model.module, model.example_input()).default_layer().name)

    def engine():
        return bench_live(model, input_spec, frames=engine_frames, layer=layer)["pipeline_fps"]

    engine_before = engine()

    window = MainWindow(model=model_spec, weights=weights, input_spec=None, restore=False, persist=False,
                        model_options=options)
    window.session.open_input(input_spec, realtime=False)
    window.resize(1440, 900)
    window.show()
    lateness: list[float] = []
    clock = QElapsedTimer()
    ticker = QTimer()
    ticker.setTimerType(Qt.TimerType.PreciseTimer)
    last = [None]

    def tick():
        now = clock.nsecsElapsed() / 1e6
        if last[0] is not None:
            lateness.append(max(0.0, now - last[0] - ticker.interval()))
        last[0] = now

    ticker.timeout.connect(tick)

    def pump_until(predicate, timeout):
        deadline = time.monotonic() + timeout
        while not predicate() and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.002)

    pump_until(lambda: window.session.results_seen > 0, 300)
    if window.session.results_seen == 0:
        window.close()
        raise RuntimeError("the window produced no result")
    clock.start()
    ticker.start(10)
    end_warmup = time.monotonic() + warmup_s
    pump_until(lambda: time.monotonic() > end_warmup, warmup_s + 1)
    lateness.clear()
    start_count, start = window.session.results_seen, time.monotonic()
    stop_at = start + seconds
    pump_until(lambda: time.monotonic() > stop_at, seconds + 1)
    gui_fps = (window.session.results_seen - start_count) / (time.monotonic() - start)
    ticker.stop()
    window.close()
    app.processEvents()

    engine_after = engine()
    engine_fps = (engine_before + engine_after) / 2
    return {
        "benchmark": "gui-live",
        "model": model.name,
        "device": str(model.device),
        "input": input_spec,
        "layer": layer,
        "engine_fps": round(engine_fps, 2),
        "engine_fps_before_after": [round(engine_before, 2), round(engine_after, 2)],
        "gui_fps": round(gui_fps, 2),
        "ratio": round(gui_fps / engine_fps, 3),
        "ui_latency_p95_ms": round(float(np.percentile(lateness, 95)), 2) if lateness else None,
        "ui_latency_max_ms": round(float(np.max(lateness)), 2) if lateness else None,
        "seconds": seconds,
    }

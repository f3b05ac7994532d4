"""``deepvis bench gui-live``: the window's frame rate against the engine's, and UI latency.

The engine figure is the live pipeline alone (``deepvis bench live``) on the same model and
input; the GUI figure is results actually delivered to and painted by the window. Each is
measured against a bare forward loop interleaved with it, and ``ratio`` is the window's share
of the bare rate over the engine's share: a machine whose speed drifts between the two
measurements (tens of percent here) moves both shares alike. A 10 ms QTimer runs throughout;
how late its ticks fire is the latency a user feels on key presses.
"""

import time

import numpy as np

from deepvis.bench.engine import bare_inputs, bare_seconds, bench_live, default_bench_video
from deepvis.live.computethread import compute_thread
from deepvis.core.loading import load_model
from deepvis.core.probe import Probe


def bench_gui_live(model_spec=None, input_spec=None, seconds: float = 10.0, warmup_s: float = 3.0,
                   engine_frames: int = 150, weights=None, model_options=None, saliency: str | None = None,
                   rounds: int = 5, bare_block: int = 10, visit_tabs: bool = True, without_views=(),
                   startup: bool = True, dwell_s: float = 2.0) -> dict:
    """``visit_tabs``: show every tab once, ``dwell_s`` each, before measuring on the
    Activations tab, as a user who has looked around has the window; ``without_views``: tab
    titles to leave out of the window (the 3-D view, to compare); ``startup``: also time a
    fresh ``deepvis gui`` to its first painted frame, in a process of its own."""
    from deepvis.widgets.window.app import check_display

    check_display()
    from deepvis.widgets.window import qtenv  # noqa: F401
    from PySide6.QtCore import QElapsedTimer, QEventLoop, Qt, QTimer

    from deepvis.errors import DeepvisError
    from deepvis.widgets.bench.window import open_bench_window
    from deepvis.widgets.window import mainwindow  # noqa: F401 (importing it registers the tabs)
    from deepvis.widgets.window.views import registered_views

    titles = [view.title for view in registered_views()]
    unknown = [title for title in without_views if title not in titles]
    if unknown:
        raise DeepvisError(f"no tab {unknown[0]!r} to leave out: the tabs are {', '.join(titles)}")

    options = dict(model_options or {})
    input_spec = str(input_spec or default_bench_video())
    model = compute_thread().call(load_model, model_spec, weights, **options)
    # The window opens on the probe's default layer; the engine is measured on that layer too.
    layer = compute_thread().call(lambda: Probe(model.module, model.example_input()).default_layer().name)

    def engine():
        return bench_live(model, input_spec, frames=engine_frames, layer=layer, saliency=saliency)

    engine_before = engine()
    inputs = compute_thread().call(bare_inputs, model, input_spec)

    app, window, collector, _ = open_bench_window(model_spec, input_spec, weights, options, saliency=saliency,
                                                  without_views=tuple(without_views))
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
        # A real event loop, as the app runs: polling processEvents would add its own overhead.
        deadline = time.monotonic() + timeout
        loop = QEventLoop()
        check = QTimer()
        check.timeout.connect(lambda: (predicate() or time.monotonic() > deadline) and loop.quit())
        check.start(20)
        if not predicate():
            loop.exec()
        check.stop()

    pump_until(lambda: window.session.results_seen > 0, 300)
    if window.session.results_seen == 0:
        window.close()
        raise RuntimeError("the window produced no result")
    visited = []
    if visit_tabs:
        for index in range(window.tabs.count()):
            window.tabs.setCurrentIndex(index)
            visited.append(window.tabs.tabText(index))
            dwell_end = time.monotonic() + dwell_s
            pump_until(lambda: time.monotonic() > dwell_end, dwell_s + 1.0)
        window.tabs.setCurrentIndex(0)
    clock.start()
    ticker.start(10)
    end_warmup = time.monotonic() + warmup_s
    pump_until(lambda: time.monotonic() > end_warmup, warmup_s + 1)
    lateness.clear()
    # The window's rounds alternate with bare rounds (a compute-thread task, which pauses the
    # window's pipeline): the machine's speed drifts by +-20% within seconds here, and
    # interleaving makes the drift hit both sides of the ratio alike.
    gui_frames = gui_s = bare_frames = bare_s = 0.0
    for _ in range(rounds):
        start_count, start = window.session.results_seen, time.monotonic()
        stop_at = start + seconds / rounds
        pump_until(lambda: time.monotonic() > stop_at, seconds)
        gui_frames += window.session.results_seen - start_count
        gui_s += time.monotonic() - start
        future = compute_thread().submit(bare_seconds, model, inputs, bare_block, backward=bool(saliency))
        pump_until(future.done, 600)
        bare_s += future.result()
        bare_frames += bare_block
    gui_fps, bare_fps = gui_frames / gui_s, bare_frames / bare_s
    ticker.stop()
    window.close()
    app.processEvents()

    engine_after = engine()
    engine_fps = (engine_before["pipeline_fps"] + engine_after["pipeline_fps"]) / 2
    # Each side against the bare loop measured alongside it: the machine's speed drifts by tens
    # of percent between the engine's runs and the window's, and these ratios cancel it.
    engine_to_bare = (engine_before["ratio"] + engine_after["ratio"]) / 2
    startup_s = measure_startup(model_spec, input_spec, weights) if startup else None
    return {
        "benchmark": "gui-live",
        "model": model.name,
        "device": str(model.device),
        "input": input_spec,
        "layer": layer,
        "saliency": saliency,
        # The bare loop: forward passes, or forward and backward passes with a saliency method.
        "bare_fps": round(bare_fps, 2),
        "ratio_to_bare": round(gui_fps / bare_fps, 3),
        "engine_fps": round(engine_fps, 2),
        "engine_fps_before_after": [round(engine_before["pipeline_fps"], 2),
                                    round(engine_after["pipeline_fps"], 2)],
        "engine_ratio_to_bare": round(engine_to_bare, 3),
        "gui_fps": round(gui_fps, 2),
        "rounds": rounds,
        "ratio": round(gui_fps / bare_fps / engine_to_bare, 3),
        "ratio_of_means": round(gui_fps / engine_fps, 3),
        "ui_latency_p95_ms": round(float(np.percentile(lateness, 95)), 2) if lateness else None,
        "ui_latency_max_ms": round(float(np.max(lateness)), 2) if lateness else None,
        "seconds": seconds,
        "tabs_visited": visited,
        "without_views": list(without_views),
        "startup_s": startup_s,
    }


def measure_startup(model_spec=None, input_spec=None, weights=None, after_frames: int = 1) -> float:
    """Seconds from starting ``deepvis gui`` to its first painted result, in a fresh process
    (imports included, as a user waits for them). The window notes the moment it paints its
    first result in the file named by ``DEEPVIS_FIRST_FRAME_LOG``."""
    import os
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        shot = Path(tmp) / "first.png"
        command = [sys.executable, "-m", "deepvis", "gui", "--screenshot", str(shot), "--after-frames",
                   str(after_frames)]
        if model_spec:
            command += ["--model", str(model_spec)]
        if weights:
            command += ["--weights", str(weights)]
        if input_spec:
            command += ["--input", str(input_spec)]
        marks = Path(tmp) / "first-frame"
        env = {**os.environ, "DEEPVIS_FIRST_FRAME_LOG": str(marks)}
        start = time.monotonic()  # CLOCK_MONOTONIC: one clock for this process and the child
        proc = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
        if proc.returncode != 0 or not marks.is_file():
            raise RuntimeError(f"deepvis gui did not show a frame: {proc.stderr.strip()[-300:]}")
        return round(float(marks.read_text()) - start, 2)

"""``deepvis bench soak``: the live window run for minutes, its memory per saliency method.

A leak of a few megabytes a frame, or a crash that needs minutes of frames to happen (a
reference-counting bug in the Qt bindings aborted the window after 4-7 minutes), never shows
in a ten-second benchmark. Here the window runs live on a looping clip while the saliency
pane cycles through off and every method; the process's resident memory is sampled all the
while, after a first round that lets every method allocate what it keeps (Captum's modules,
caches, allocator pools).

Memory is read every second: the resident set as the system sees it (``rss_*``), and the
memory in use (``live_*`` and every slope): the resident set after glibc's ``malloc_trim``
has returned the free pages it keeps. The heavy methods' batches (integrated gradients: 8
passes of EfficientNet at once) leave the heap at a high-water mark that the allocator keeps
for reuse; on CI it was reached sometimes in the warm-up round, sometimes two rounds later,
and read as 8 MB/min of growth that a leak-free process does not have.

Two figures per method. ``drift_mb_per_min``: the line through the median memory of the
method's stretches, round after round; a leak anywhere lifts it, and allocator churn (the
heavy methods take a few megabytes for a map and give them back during the next method)
does not. ``within_mb_per_min``: the slope within the method's own stretches, which points
at the method that grows, but reads that churn as a slope over a stretch of seconds.
``floor_drift_mb_per_min``: as drift, through each stretch's minimum. And for the whole
process ``floor_slope_mb_per_min``: the line through the minimum of each whole round (every
method shown once). The floors are what a leak lifts round after round and what the heavy
methods' batches, taken and given back, do not touch: medians and slopes over samples read
that churn as growth (7.7 MB/min on one CI run, 0.1 on the next, with no code between).
"""

import ctypes
import ctypes.util
import os
import time

import numpy as np


def resident_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _malloc_trim():
    """glibc's malloc_trim, or None on other C libraries (then live memory is the resident set)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):
        return None


_TRIM = _malloc_trim()


def live_mb() -> float:
    """The resident set once the allocator has returned its free pages: memory in use."""
    if _TRIM is not None:
        _TRIM(0)
    return resident_mb()


def within_slope(segments: list[tuple[np.ndarray, np.ndarray]]) -> float | None:
    """One slope fitted to several stretches at once, each with its own offset (MB per minute):
    the jumps between stretches belong to the other methods, not to this one."""
    t_parts, y_parts = [], []
    for t, y in segments:
        if len(t) >= 3:
            t_parts.append(t - t.mean())
            y_parts.append(y - y.mean())
    if not t_parts:
        return None
    t, y = np.concatenate(t_parts), np.concatenate(y_parts)
    denominator = float((t * t).sum())
    return float((t * y).sum() / denominator) * 60.0 if denominator else None


def drift_slope(stretches: list[tuple[np.ndarray, np.ndarray]], level=np.median) -> float | None:
    """MB per minute of the line through each stretch's (middle time, ``level`` of its memory)."""
    points = [(float(np.median(t)), float(level(y))) for t, y in stretches if len(t)]
    if len(points) < 2:
        return None
    t, y = np.array(points).T
    return float(np.polyfit(t, y, 1)[0]) * 60.0


def bench_soak(model_spec=None, input_spec=None, seconds: float = 480.0, weights=None, model_options=None,
               methods=None, stretch_s: float | None = None, sample_s: float = 1.0) -> dict:
    from PySide6.QtCore import QEventLoop, QTimer

    from deepvis.attribution.saliency import applicable_methods
    from deepvis.widgets.bench.window import open_bench_window
    from deepvis.widgets.panes.saliencypane import OFF

    app, window, collector, input_spec = open_bench_window(model_spec, input_spec, weights, model_options)

    def pump(duration: float) -> None:
        loop = QEventLoop()
        QTimer.singleShot(int(duration * 1000), loop.quit)
        loop.exec()

    deadline = time.monotonic() + 300
    while window.session.results_seen == 0 and time.monotonic() < deadline:
        pump(0.1)
    if window.session.results_seen == 0:
        window.close()
        raise RuntimeError("the window produced no result")
    state = window.session.state
    methods = list(methods or (OFF, *applicable_methods(state.model.module, state.probe)))

    model_name = window.session.state.model.name
    start = time.monotonic()
    samples: list[tuple[str, int, float, float]] = []  # method, round, seconds, live MB
    rss: list[float] = []
    frames = {m: 0 for m in methods}
    if stretch_s is None:
        # Up to 15 s a method, short enough for the warm-up round (half a stretch a method)
        # and three whole rounds: 3.5 stretches a method, and a margin for the sampling.
        stretch_s = max(min(15.0, seconds / (3.7 * len(methods))), 2 * sample_s)
    warm_round_s = max(5.0, stretch_s / 2)
    round_index = 0
    while time.monotonic() - start < seconds:
        for method in methods:
            if time.monotonic() - start >= seconds:
                break
            window.saliency.method.setCurrentText(method)
            seen = window.session.results_seen
            stretch_end = time.monotonic() + (warm_round_s if round_index == 0 else stretch_s)
            while time.monotonic() < stretch_end:
                pump(sample_s)
                rss.append(resident_mb())
                samples.append((method, round_index, time.monotonic() - start, live_mb()))
            frames[method] += window.session.results_seen - seen
        round_index += 1
    window.close()
    app.processEvents()

    within, drift, floor = {}, {}, {}
    for method in methods:
        segments = []
        for r in range(1, round_index + 1):
            part = [(t, mb) for m, k, t, mb in samples if m == method and k == r]
            if part:
                segments.append((np.array([p[0] for p in part]), np.array([p[1] for p in part])))
        slope = within_slope(segments)
        within[method] = None if slope is None else round(slope, 2)
        slope = drift_slope(segments)
        drift[method] = None if slope is None else round(slope, 2)
        slope = drift_slope(segments, np.min)
        floor[method] = None if slope is None else round(slope, 2)
    # The floor of each whole round (every method shown once): a leak lifts it round after
    # round, while what a heavy method takes for its batches and gives back does not.
    whole_rounds = []
    for r in range(1, round_index + 1):
        part = [(t, mb) for m, k, t, mb in samples if k == r]
        if {m for m, k, *_ in samples if k == r} == set(methods):
            whole_rounds.append((np.array([p[0] for p in part]), np.array([p[1] for p in part])))
    floor_slope = drift_slope(whole_rounds, np.min)
    after_warmup = [(t, mb) for _, k, t, mb in samples if k >= 1]
    overall = None
    if len(after_warmup) >= 3:
        t = np.array([p[0] for p in after_warmup])
        overall = round(float(np.polyfit(t, np.array([p[1] for p in after_warmup]), 1)[0]) * 60.0, 2)
    return {
        "benchmark": "soak",
        "model": model_name,
        "input": input_spec,
        "seconds": round(time.monotonic() - start, 1),
        "rounds": round_index,
        "frames": frames,
        "rss_start_mb": round(rss[0], 1) if rss else None,
        "rss_end_mb": round(rss[-1], 1) if rss else None,
        "rss_peak_mb": round(max(rss), 1) if rss else None,
        "live_start_mb": round(samples[0][3], 1) if samples else None,
        "live_end_mb": round(samples[-1][3], 1) if samples else None,
        "drift_mb_per_min": drift,
        "within_mb_per_min": within,
        "floor_drift_mb_per_min": floor,
        "slope_after_warmup_mb_per_min": overall,
        "floor_slope_mb_per_min": None if floor_slope is None else round(floor_slope, 2),
        "whole_rounds": len(whole_rounds),
    }

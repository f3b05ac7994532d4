"""``deepvis bench match``: the descriptor map of a 640x480 frame against the bare forward pass
that makes it (the upsampling to every pixel and the unit length are the difference), and the
milliseconds of one query (heat map, best match, confidence) on a 320x240 pair, the size the
Correspondence view follows a drag at, and on a 640x480 pair, bare and as the view asks it
(with the heat map coloured over the picture). Medians of alternating runs."""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch

from deepvis.errors import DeepvisError


def bench_match(model=None, layer: str | None = None, rounds: int = 5, queries: int = 20) -> dict:
    from deepvis.core.defaults import DESCRIPTOR_MODEL
    from deepvis.core.inputspec import resample
    from deepvis.core.loading import load_model
    from deepvis.core.probe import Probe
    from deepvis.io.images import read_image
    from deepvis.matching.dense import default_layer, describe, input_at_own_size, match
    from deepvis.matching.pair import answer
    from deepvis.resources import sample_image

    model = model or load_model(DESCRIPTOR_MODEL)
    probe = Probe(model.module, model.example_input())
    layer = layer or default_layer(probe, model.spec, model.task)
    photo = read_image(sample_image("cat"))
    frame = resample(np.ascontiguousarray(photo), 480, 640)
    x = input_at_own_size(model, frame)
    if not probe.runs_at((model.spec.channels, 480, 640), layer):
        raise DeepvisError(f"{model.name} does not run at 640x480 up to {layer}: bench match needs a fully "
                           f"convolutional model")

    def bare():
        with torch.inference_mode():
            probe.capture_until(x, layer)

    describe(model, probe, frame, layer)  # warm-up
    bare_s, map_s = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        bare()
        bare_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        describe(model, probe, frame, layer)
        map_s.append(time.perf_counter() - start)
    rng = np.random.default_rng(0)
    per_query = {}
    for name, (h, w) in (("320x240", (240, 320)), ("640x480", (480, 640))):
        picture = resample(np.ascontiguousarray(photo), h, w)
        a = describe(model, probe, picture, layer)
        b = describe(model, probe, picture[:, ::-1].copy(), layer)
        points = rng.uniform((0, 0), (w - 1, h - 1), (queries, 2))
        times, view_times = [], []
        for point in points:
            start = time.perf_counter()
            match(a, b, tuple(point))
            times.append(time.perf_counter() - start)
            # As the Correspondence view asks it: the match, its heat map over the picture and
            # the true position through a homography.
            start = time.perf_counter()
            answer((a, b), (picture, picture), 0, tuple(point), np.eye(3))
            view_times.append(time.perf_counter() - start)
        per_query[name] = round(1000 * statistics.median(times), 2)
        per_query["view " + name] = round(1000 * statistics.median(view_times), 2)
    return {"benchmark": "match", "model": model.name, "layer": layer, "frame": "640x480",
            "torch_threads": torch.get_num_threads(), "rounds": rounds,
            "bare_ms": round(1000 * statistics.median(bare_s), 1),
            "descriptor_map_ms": round(1000 * statistics.median(map_s), 1),
            "ratio": round(statistics.median(map_s) / statistics.median(bare_s), 3),
            "query_ms_320x240": per_query["320x240"], "query_ms_640x480": per_query["640x480"],
            "view_query_ms_320x240": per_query["view 320x240"], "view_query_ms_640x480": per_query["view 640x480"],
            "queries": queries}

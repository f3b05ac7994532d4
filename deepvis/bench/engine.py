"""Benchmarks reported as ratios against a bare baseline measured in the same run.

Absolute frame rates say more about the machine than about deepvis; the ratio to the plain
thing (a bare forward loop) is what our code is responsible for.
"""

import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from deepvis.bench.attention import bench_attention_capture, has_attention
from deepvis.bench.rounds import StageTimes, interleaved_rounds
from deepvis.live.computethread import compute_thread
from deepvis.core.device import synchronize
from deepvis.errors import DeepvisError
from deepvis.core.loading import LoadedModel
from deepvis.live.pipeline import STAGES, LiveSettings, LivePipeline, SaliencySettings
from deepvis.core.probe import Probe
from deepvis.io.sources import FrameError, ImageFolderSource, open_source

BENCH_VIDEO_FRAMES = 64


def default_bench_video() -> Path:
    """A 640x480 clip panning over the bundled photos: what a webcam hands the pipeline.

    Made once per machine in the temp folder, so the benchmark needs no shipped video.
    """
    import cv2

    from deepvis.io.images import read_image, write_video
    from deepvis.resources import sample_images

    path = Path(tempfile.gettempdir()) / f"deepvis-bench-{BENCH_VIDEO_FRAMES}.mp4"
    if not path.exists():
        frames = []
        for photo in sample_images():
            image = read_image(photo)
            for i in range(BENCH_VIDEO_FRAMES // len(sample_images())):
                zoom = 1.0 + 0.02 * i
                h, w = image.shape[:2]
                ch, cw = int(h / zoom), int(w / zoom)
                crop = image[(h - ch) // 2:(h - ch) // 2 + ch, (w - cw) // 2:(w - cw) // 2 + cw]
                frames.append(cv2.resize(crop, (640, 480), interpolation=cv2.INTER_LINEAR))
        tmp = path.with_suffix(".part.mp4")
        write_video(tmp, frames, 30)
        os.replace(tmp, path)
    return path


def _bench_source(input_spec):
    if input_spec is None:
        return open_source(default_bench_video())
    source = open_source(input_spec)
    if isinstance(source, ImageFolderSource):
        source.close()
        source = ImageFolderSource(input_spec, advance_on_read=True)
    return source


def _distinct_frames(input_spec, count: int) -> list[np.ndarray]:
    frames, seen = [], set()
    with _bench_source(input_spec) as source:
        for _ in range(count):
            item = source.read()
            if isinstance(item, FrameError):
                if frames and not item.fatal:
                    continue
                if frames:
                    break
                raise DeepvisError(f"cannot read the benchmark input: {item.message}")
            if (item.name, item.index) in seen:  # cycled back to the start
                break
            seen.add((item.name, item.index))
            frames.append(item.image)
    return frames


def bench_live(model: LoadedModel, input_spec=None, frames: int = 100, layer: str | None = None,
               warmup: int = 5, block: int = 10, saliency: str | None = None) -> dict:
    """Bare forward loop versus the live pipeline on the same frames.

    With ``saliency`` (a method name) the pipeline also computes that map of the top class
    each frame, and the bare loop is a forward and a backward pass to the input.

    Both run on the compute thread, where the GUI runs them; this function waits from another.
    The two are interleaved in blocks of ``block`` frames (a bare block is a task, which the
    compute thread runs before the pipeline's next step).
    """
    if model.signal is not None:
        if saliency:
            raise DeepvisError("--saliency is for picture models; a 1-D model's benchmark plays its signal")
        from deepvis.bench.signals import bench_signal_live

        return bench_signal_live(model, input_spec, frames, layer, warmup, block)
    compute = compute_thread()
    if compute.is_current():
        raise RuntimeError("bench_live waits for the compute thread; call it from another thread")
    probe = compute.call(lambda: Probe(model.module, model.example_input()))
    layer = layer or probe.largest_conv_layer().name
    probe.layer(layer)
    images = _distinct_frames(input_spec, min(frames, 32))
    inputs = compute.call(lambda: [model.input_tensor(img) for img in images])
    def bare(n):
        return bare_seconds(model, inputs, n, backward=bool(saliency))

    stages = StageTimes(STAGES, warmup)
    source = _bench_source(input_spec)
    static = not source.is_live and not isinstance(source, ImageFolderSource)
    settings = LiveSettings(grid_layer=layer, topk=5,
                            saliency=SaliencySettings(saliency) if saliency else None)
    pipeline = LivePipeline(model, source, settings, probe=probe, on_result=stages, recompute_static=static)
    figures = interleaved_rounds(pipeline, bare, compute, max(1, frames // block), block, warmup)
    attention = None
    if has_attention(model):
        # The second figure for transformers: what the Attention tab's capture adds.
        attention = compute.call(lambda: bench_attention_capture(model, inputs, rounds=max(1, frames // block // 2)))
    return {
        "benchmark": "live",
        "model": model.name,
        "device": str(model.device),
        "input": str(input_spec or "generated 640x480 video of the bundled photos"),
        "input_shape": list(model.spec.shape),
        "layer": layer,
        "saliency": saliency,
        "bare": "forward+backward to the input" if saliency else "forward",
        "distinct_frames": len(images),
        "torch_threads": torch.get_num_threads(),
        **figures,
        "stage_ms": stages.means_ms(),
        **({"attention_capture": attention} if attention else {}),
    }


def bare_inputs(model: LoadedModel, input_spec=None, count: int = 32) -> list:
    """Model inputs from the benchmark's frames (call on the compute thread)."""
    return [model.input_tensor(image) for image in _distinct_frames(input_spec, count)]


def bare_seconds(model: LoadedModel, inputs: list, n: int, backward: bool = False) -> float:
    """Seconds for ``n`` bare forward passes; with ``backward``, each followed by the top
    score's gradient to the input, the least any live saliency map costs."""
    from deepvis.core.predictions import main_output

    synchronize(model.device)
    start = time.perf_counter()
    for i in range(n):
        x = inputs[i % len(inputs)]
        if backward:
            x = x.detach().clone().requires_grad_(True)
            with torch.enable_grad():
                torch.autograd.grad(main_output(model.module(x)).flatten(1).max(1).values.sum(), x)
        else:
            with torch.inference_mode():
                model.module(x)
    synchronize(model.device)
    return time.perf_counter() - start


def bench_saliency(model: LoadedModel, input_spec=None, frames: int = 100, layer: str | None = None) -> dict:
    """Milliseconds per attribution map for each method, as a multiple of one bare forward+backward
    of the same model and input, measured in the same run (interleaved, so drift hits both)."""
    from deepvis.io.images import read_image
    from deepvis.resources import sample_image
    from deepvis.attribution.saliency import Objective, applicable_methods, attribute, top_class

    image = read_image(input_spec or sample_image("cat"))
    repeats = max(1, min(frames, 10))

    def work():
        probe = Probe(model.module, model.example_input())
        x = model.input_tensor(image)
        target = top_class(model.module, x)
        objective = Objective(model.module, probe, target)

        def bare_once():
            # Gradient with respect to the input only, as every method needs; .backward() would
            # also compute every weight's gradient, which no saliency method uses.
            xg = x.detach().clone().requires_grad_(True)
            torch.autograd.grad(objective(xg).sum(), xg)
            synchronize(model.device)

        def timed(fn, n):
            fn()  # warm-up
            start = time.perf_counter()
            for _ in range(n):
                fn()
            synchronize(model.device)
            return (time.perf_counter() - start) * 1000 / n

        rows = {}
        for method in applicable_methods(model.module, probe):
            # Heavy methods run dozens of passes per map; fewer repeats keep the bench short.
            n = repeats if method not in ("integrated-gradients", "smoothgrad") else max(1, repeats // 5)
            bare_before = timed(bare_once, repeats)
            ms = timed(lambda: attribute(model.module, probe, x, method, target, layer=layer), n)
            bare_ms = (bare_before + timed(bare_once, repeats)) / 2
            rows[method] = {"ms": round(ms, 2), "bare_ms": round(bare_ms, 2), "ratio": round(ms / bare_ms, 2)}
        return target, rows

    target, rows = compute_thread().call(work)
    return {"benchmark": "saliency", "model": model.name, "device": str(model.device),
            "input": str(input_spec or sample_image("cat")), "input_shape": list(model.spec.shape),
            "target": target.describe(model.labels), "methods": rows}




def bench_embed(model: LoadedModel | None = None, input_spec=None, frames: int = 10_000, layer: str | None = None,
                perplexity: float = 30.0) -> dict:
    """Our t-SNE path against scikit-learn's TSNE (its defaults, same perplexity) on the same
    real feature vectors, in one run: seconds, 10-NN accuracy and trustworthiness of both.

    Default data: digits_cnn's penultimate layer over scikit-learn's digits, augmented with
    shifts, small rotations and noise to ``frames`` images (overlapping classes, unlike
    synthetic Gaussian blobs). Ours runs before and after scikit-learn and is averaged, so a
    drift in machine speed hits both sides.
    """
    from sklearn.manifold import TSNE

    from deepvis.io.datasets import digits_dataset, open_dataset
    from deepvis.embed.projection import knn_accuracy, project, trustworthiness
    from deepvis.embed.features import extract_features
    from deepvis.core.loading import load_model

    def work():
        net = model or load_model("digits_cnn")
        dataset = open_dataset(input_spec) if input_spec else digits_dataset(augmented=max(0, frames - 1797))
        features = extract_features(net, dataset, layer, use_cache=False)
        x, labels = features.vectors, features.labels
        if len(x) > frames:  # fewer points than the digits themselves: a random subset
            keep = np.sort(np.random.default_rng(0).choice(len(x), frames, replace=False))
            x, labels = x[keep], [labels[i] for i in keep]
        ours_first = project(x, perplexity=perplexity)
        start = time.perf_counter()
        theirs = TSNE(perplexity=perplexity, random_state=0).fit_transform(x).astype(np.float32)
        sklearn_s = time.perf_counter() - start
        ours = project(x, perplexity=perplexity)
        ours_s = (ours_first.seconds + ours.seconds) / 2
        return {
            "benchmark": "embed", "model": net.name, "layer": features.layer, "dataset": dataset.name,
            "n": len(x), "dims": int(x.shape[1]), "perplexity": perplexity,
            "ours_s": round(ours_s, 2), "ours_s_runs": [round(ours_first.seconds, 2), round(ours.seconds, 2)],
            "ours_iterations": ours.iterations, "sklearn_s": round(sklearn_s, 2),
            "speedup": round(sklearn_s / ours_s, 2),
            "ours_knn": _round(knn_accuracy(ours.coords, labels)), "sklearn_knn": _round(knn_accuracy(theirs, labels)),
            "ours_trust": round(trustworthiness(x, ours.coords), 4),
            "sklearn_trust": round(trustworthiness(x, theirs), 4),
        }

    return compute_thread().call(work)


def _round(value, digits=4):
    return None if value is None else round(value, digits)


def bench_dream(model: LoadedModel, input_spec=None, frames: int = 10, layer: str | None = None) -> dict:
    """One DeepDream step (jitter, forward, backward, normalized update) against one bare
    forward+backward of the same model at the same resolution, interleaved in one run. Both
    run the model only up to the dreamed layer, as a dream does."""
    from deepvis.optimize.dream import Dreamer, DreamSettings, objective
    from deepvis.io.images import read_image
    from deepvis.resources import sample_image

    image = read_image(input_spec or sample_image("cat"))

    def work():
        dreamer = Dreamer(model)
        name = layer or dreamer.probe.default_layer().name
        settings = DreamSettings(name)
        x = dreamer.to_input(image)
        low, high = (0 - dreamer.mean) / dreamer.std, (1 - dreamer.mean) / dreamer.std
        generator = torch.Generator().manual_seed(0)

        def bare():
            xg = x.detach().clone().requires_grad_(True)
            with torch.enable_grad():
                torch.autograd.grad(objective(dreamer.probe.capture_until(xg, name), None), xg)
            synchronize(model.device)

        def step():
            dreamer.step(x, settings, generator, low, high)
            synchronize(model.device)

        def timed(fn, n):
            fn()
            start = time.perf_counter()
            for _ in range(n):
                fn()
            return (time.perf_counter() - start) * 1000 / n

        n = max(1, frames)
        bare_ms, step_ms = [], []
        for _ in range(3):  # interleaved rounds: machine drift hits both
            bare_ms.append(timed(bare, n))
            step_ms.append(timed(step, n))
        return name, float(np.median(step_ms)), float(np.median(bare_ms))

    name, step_ms, bare_ms = compute_thread().call(work)
    return {"benchmark": "dream", "model": model.name, "device": str(model.device), "layer": name,
            "input_shape": [int(v) for v in image.shape], "step_ms": round(step_ms, 2), "bare_ms": round(bare_ms, 2),
            "ratio": round(step_ms / bare_ms, 3)}


BENCHMARKS = {"live": bench_live, "saliency": bench_saliency, "embed": bench_embed, "dream": bench_dream}

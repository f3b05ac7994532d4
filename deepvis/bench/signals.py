"""``bench live`` for a 1-D model: the signal player against a bare forward loop over the same
windows of a long recording, interleaved in blocks as the picture benchmark is."""

import tempfile
import time
from pathlib import Path

import torch

from deepvis.bench.rounds import StageTimes, interleaved_rounds
from deepvis.core.loading import LoadedModel
from deepvis.core.probe import Probe
from deepvis.errors import DeepvisError
from deepvis.io.signals import conform, read_signal, window
from deepvis.live.computethread import compute_thread
from deepvis.live.signalplayer import STAGES, PlaybackSettings, SignalPlayer

BENCH_SIGNALS = 240  # the bundled WaveNet's test signals, one after another: 30 s at 8 kHz


def default_bench_wav() -> Path:
    """A long WAV of generated signals (sine, square, sawtooth, chirp, noise bursts), made once
    per machine in the temp folder, so the benchmark needs no shipped recording."""
    from deepvis.models.signals_wavenet import write_recording

    path = Path(tempfile.gettempdir()) / f"deepvis-bench-signals-{BENCH_SIGNALS}.wav"
    if not path.exists():
        write_recording(path, BENCH_SIGNALS)
    return path


def bench_signal_live(model: LoadedModel, input_spec=None, frames: int = 100, layer: str | None = None,
                      warmup: int = 5, block: int = 10) -> dict:
    """Windows per second of the signal player (forward with a hook on ``layer``, top-k) as a
    ratio to bare forward passes over the same windows, both on the compute thread."""
    compute = compute_thread()
    if compute.is_current():
        raise RuntimeError("bench_signal_live waits for the compute thread; call it from another thread")
    path = Path(input_spec) if input_spec else default_bench_wav()
    signal = read_signal(path)
    spec = model.signal
    data = conform(signal, spec.channels, spec.rate)
    count = data.shape[1] // spec.length
    if count < 2:
        raise DeepvisError(f"{path} holds {data.shape[1]} samples: the benchmark needs at least two windows of "
                           f"{spec.length}")
    probe = compute.call(lambda: Probe(model.module, model.example_input()))
    layer = layer or probe.largest_conv_layer().name
    # Made on the compute thread, as all torch work: torch used from a second thread leaves
    # thread state behind that aborts the process at exit.
    inputs = compute.call(lambda: [torch.tensor(window(data, i * spec.length, spec.length))[None].to(model.device)
                                   for i in range(min(count, 64))])

    def bare(n):
        start = time.perf_counter()
        with torch.inference_mode():
            for i in range(n):
                model.module(inputs[i % len(inputs)])
        return time.perf_counter() - start

    stages = StageTimes(STAGES, warmup)
    # Hop = one window: every step is a window the model has not seen, as in the bare loop.
    settings = PlaybackSettings(layer=layer, hop=spec.length, speed=0.0, loop=True)
    player = SignalPlayer(model, signal, settings, probe=probe, on_result=stages)
    figures = interleaved_rounds(player, bare, compute, max(1, frames // block), block, warmup)
    return {
        "benchmark": "live",
        "model": model.name,
        "device": str(model.device),
        "input": str(path if input_spec else f"generated {data.shape[1] / (spec.rate or 1):.0f} s signal ({path})"),
        "input_shape": list(spec.shape),
        "signal_samples": int(data.shape[1]),
        "layer": layer,
        "bare": "forward",
        "torch_threads": torch.get_num_threads(),
        **figures,
        "stage_ms": stages.means_ms(),
    }

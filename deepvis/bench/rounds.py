"""What every live benchmark measures with: stage times summed over results, and a live source
run in blocks that alternate with a bare loop, so the machine's drift hits both alike.

The picture pipeline (``bench/engine.py``) and the signal player (``bench/signals.py``) both use
these; they live apart from either so that neither benchmark imports the other's module.
"""

import time


class StageTimes:
    """A live source's ``on_result``: sums each stage's milliseconds after the warm-up results."""

    def __init__(self, stages, warmup: int):
        self.sums = dict.fromkeys((*stages, "total"), 0.0)
        self.warmup = warmup
        self.counted = 0

    def __call__(self, result) -> None:
        if result.index > self.warmup:
            self.counted += 1
            for key in self.sums:
                self.sums[key] += result.timings.get(key, 0.0)

    def means_ms(self) -> dict:
        return {k: round(v / max(self.counted, 1), 3) for k, v in self.sums.items()}


def interleaved_rounds(live, bare, compute, rounds: int, block: int, warmup: int) -> dict:
    """Results of a live source (a LivePipeline or SignalPlayer, not yet started) against
    ``bare(n)`` (seconds for n bare passes, run as a compute-thread task), in alternating
    blocks of ``block``, so drifts in machine speed, which are large on shared virtual machines
    (+-20% from one second to the next), hit both alike. Stops ``live`` at the end."""
    bare_times, live_times = [], []
    try:
        compute.call(bare, warmup)
        live.start()
        done = live.wait_for_results(warmup, timeout=120).index
        for _ in range(rounds):
            start = time.perf_counter()
            done = live.wait_for_results(done + block, timeout=600).index
            live_times.append(time.perf_counter() - start)
            bare_times.append(compute.call(bare, block))
    finally:
        live.stop()
    bare_fps = block * rounds / sum(bare_times)
    live_fps = block * rounds / sum(live_times)
    return {
        "frames": block * rounds,
        "rounds": rounds,
        "bare_fps": round(bare_fps, 2),
        "pipeline_fps": round(live_fps, 2),
        "ratio": round(live_fps / bare_fps, 3),
        "ratio_per_round": sorted(round(b / p, 3) for b, p in zip(bare_times, live_times)),
        "bare_ms": round(1000 / bare_fps, 3),
    }

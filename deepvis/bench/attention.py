"""What capturing a vision transformer's attention costs over its bare forward.

The Attention tab and the rollout maps run the model with every block's probabilities written
out (``capture_attention``); fused attention kernels never form them, so capture is slower
than the forward a live frame needs. Measured here on the same inputs, in alternating blocks
so that drifts in the machine's speed hit both alike.
"""

import time

import torch

from deepvis.attribution.attention import attention_modules, capture_attention
from deepvis.core.device import synchronize
from deepvis.core.loading import LoadedModel


def has_attention(model: LoadedModel) -> bool:
    return bool(attention_modules(model.module))


def bench_attention_capture(model: LoadedModel, inputs: list, rounds: int = 5, block: int = 10) -> dict:
    """Milliseconds per bare forward (inference mode) and per forward with attention captured,
    and ``overhead``: capture / bare - 1. Call on the compute thread."""

    def bare():
        with torch.inference_mode():
            model.module(inputs[0])

    def capture():
        capture_attention(model.module, inputs[0])

    def timed(fn, n):
        synchronize(model.device)
        start = time.perf_counter()
        for _ in range(n):
            fn()
        synchronize(model.device)
        return time.perf_counter() - start

    timed(bare, 2)
    timed(capture, 2)
    bare_s = capture_s = 0.0
    for _ in range(rounds):
        bare_s += timed(bare, block)
        capture_s += timed(capture, block)
    n = rounds * block
    return {"bare_ms": round(1000 * bare_s / n, 3), "capture_ms": round(1000 * capture_s / n, 3),
            "overhead": round(capture_s / bare_s - 1, 3), "blocks": len(attention_modules(model.module)),
            "frames": n}

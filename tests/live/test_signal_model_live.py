"""A 1-D model in the live window (which takes pictures) says so once, and nothing breaks."""

import time

from deepvis.core.loading import load_model
from deepvis.io.sources import PatternSource
from deepvis.live.pipeline import LivePipeline, LiveSettings


def test_a_1d_model_live_is_a_message_not_a_crash():
    model = load_model("signals_wavenet", device="cpu")
    errors = []
    with LivePipeline(model, PatternSource(), LiveSettings(), on_error=errors.append) as pipeline:
        deadline = time.monotonic() + 20
        while not errors and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pipeline.published == 0
    assert errors and "is a 1-D model" in errors[0] and "deepvis predict" in errors[0]

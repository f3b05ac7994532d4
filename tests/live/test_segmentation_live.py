"""A segmentation net live: each result carries its label map (and the confidence, entropy or
margin when asked) at the model input's resolution, and the summary's shares come from it."""

import numpy as np
import pytest
import torch
from PIL import Image

from deepvis.core.loading import load_model
from deepvis.errors import DeepvisError
from deepvis.io.sources import ImageFileSource
from deepvis.live.pipeline import LivePipeline, LiveSettings
from deepvis.models import digits_fcn
from deepvis.segmentation.dense import dense_maps, shares


def test_label_maps_live(tmp_path):
    images, _ = digits_fcn.make_scenes(1, seed=8, split="test")
    path = tmp_path / "scene.png"
    Image.fromarray((images[0, 0] * 255).round().astype(np.uint8)).resize((96, 128)).save(path)  # 128 x 96
    model = load_model("digits_fcn", device="cpu")
    with LivePipeline(model, ImageFileSource(path), LiveSettings(grid_layer="conv1_1")) as pipeline:
        result = pipeline.wait_for_results(1, timeout=60)
        x = torch.from_numpy(model.preprocessor.normalize(model.preprocessor.fit(result.frame.image)))[None]
        with torch.inference_mode():
            expected = dense_maps(model.module(x), modes=("labels", "entropy"))
        assert result.dense.labels.shape == (64, 64) and result.dense.confidence is None
        np.testing.assert_array_equal(result.dense.labels, expected.labels)
        assert not result.dense.labels.flags.writeable
        share = shares(expected.labels, 11)
        rows = result.summary.predictions
        assert result.summary.kind == "segmentation" and rows[0].label == "background"
        for row in rows:
            assert row.score == pytest.approx(share[row.index])

        pipeline.update(dense_modes=("labels", "entropy"))
        result = pipeline.wait_for_results(result.index + 1, timeout=60)
        np.testing.assert_allclose(result.dense.entropy, expected.entropy, rtol=1e-5, atol=1e-6)
        assert result.dense.confidence is not None and result.dense.margin is None
        with pytest.raises(DeepvisError, match="unknown segmentation map 'heat'"):
            pipeline.update(dense_modes=("labels", "heat"))

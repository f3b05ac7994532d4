"""Shared fixtures: the bundled photos and small real models (no downloads, no mocks)."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from deepvis.io.images import read_image
from deepvis.resources import sample_image

# Zoo weights missing from the cache are downloaded on demand; in the tests every download goes
# to a local port nothing answers on (refused at once), so no test waits on or reaches the
# internet. tests/core/test_download.py serves files from 127.0.0.1 where it needs them.
os.environ.setdefault("DEEPVIS_WEIGHTS_MIRROR", "http://127.0.0.1:9")


@pytest.fixture(scope="session")
def cat_image() -> np.ndarray:
    return read_image(sample_image("cat"))


@pytest.fixture(scope="session")
def lite0():
    from deepvis.core.loading import load_model

    return load_model("efficientnet_lite0", device="cpu")


@pytest.fixture(scope="session")
def digits():
    from deepvis.core.loading import load_model

    return load_model("digits_cnn", device="cpu")


@pytest.fixture
def run():
    """Start live pipelines; on teardown they are stopped and must leave no compute step behind."""
    from deepvis.live.computethread import compute_thread
    from deepvis.live.pipeline import LivePipeline

    pipelines = []

    def start(*args, **kwargs):
        p = LivePipeline(*args, **kwargs)
        pipelines.append(p)
        return p.start()

    yield start
    for p in pipelines:
        p.stop()
    assert not compute_thread()._idle, "a pipeline step is still registered after stop"


@pytest.fixture
def resnet18_random():
    """torchvision's ResNet-18 with seeded random weights, at a small input size."""
    from deepvis.core.loading import load_model

    torch.manual_seed(0)
    return load_model("resnet18", "none", device="cpu", input_size=(64, 64))


def pytest_collection_modifyitems(config, items):
    """Everything under tests/gui opens real windows: marked ``gui`` (deselect it with
    ``-m "not gui"`` where Qt's platform libraries are missing)."""
    gui = Path(__file__).resolve().parent / "gui"
    for item in items:
        if gui in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.gui)

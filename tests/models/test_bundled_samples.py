"""The bundled inputs: each bundled model's own kind, read right by it through deepvis's own
loading and preprocessing (what the window shows at first sight)."""

import re

import numpy as np
import pytest
import torch

from deepvis.core.loading import load_model
from deepvis.core.zoo import sample_kind, zoo_names
from deepvis.io.images import read_image
from deepvis.io.signals import conform, read_signal, window
from deepvis.resources import FIRST_PHOTO, IMAGES_DIR, SAMPLE_SETS, sample_set_of
from deepvis.segmentation.masks import read_mask


def _images(kind):
    return sorted(SAMPLE_SETS[kind].path.glob("*.png"))


def _outputs(name, paths):
    model = load_model(name)
    batch = torch.cat([model.input_tensor(read_image(p)) for p in paths])
    with torch.no_grad():
        return model.module(batch)


def test_every_bundled_model_names_a_sample_set_that_exists():
    for name in zoo_names():
        kind = sample_kind(name)
        assert kind in SAMPLE_SETS, name
        assert SAMPLE_SETS[kind].path.exists(), kind
        assert sample_set_of(SAMPLE_SETS[kind].path).kind == kind
    assert sample_kind("digits_cnn") == "digits" and sample_kind("digits-vit") == "mosaics"
    assert sample_kind("some/checkpoint.pt") == "photos" and sample_kind(None) == "photos"
    assert sample_set_of(IMAGES_DIR / FIRST_PHOTO).kind == "photos"
    assert sample_set_of(IMAGES_DIR.parent) is None


def test_the_digits_are_read_as_the_digit_their_name_says():
    paths = _images("digits")
    assert len(paths) == 10
    predicted = _outputs("digits_cnn", paths).argmax(1).tolist()
    assert predicted == [int(re.search(r"digit-(\d)", p.name).group(1)) for p in paths]


def test_the_vit_names_exactly_the_digits_of_each_mosaic():
    paths = _images("mosaics")
    assert len(paths) >= 4
    named = torch.sigmoid(_outputs("digits_vit", paths)) > 0.5
    for path, row in zip(paths, named):
        digits = {int(d) for d in path.stem.split("-")[-1]}
        assert set(np.flatnonzero(row.numpy()).tolist()) == digits, path.name


def test_the_fcn_segments_the_scenes_like_their_ground_truth():
    paths = _images("scenes")
    labels = _outputs("digits_fcn", paths).argmax(1).numpy()
    for path, predicted in zip(paths, labels):
        truth = read_mask(SAMPLE_SETS["scenes"].truth / path.name)[::4, ::4]  # enlarged x4 by nearest
        assert truth.shape == predicted.shape and 3 <= len(np.unique(truth)) <= 5  # background and 2-4 digits
        for c in np.unique(truth):
            iou = ((truth == c) & (predicted == c)).sum() / ((truth == c) | (predicted == c)).sum()
            assert iou > 0.6, (path.name, c, iou)


def test_the_default_model_gets_the_first_photo_right():
    from deepvis.core.zoo import imagenet_labels

    top = int(_outputs("efficientnet_lite0", [IMAGES_DIR / FIRST_PHOTO]).argmax(1))
    assert imagenet_labels()[top] in {"tabby", "tiger cat", "Egyptian cat", "Persian cat", "Siamese cat"}


@pytest.mark.slow
def test_the_recording_is_classified_window_by_window():
    from deepvis.models.signals_wavenet import make_signals
    from deepvis.resources import SAMPLE_SETS

    model = load_model("signals_wavenet")
    data = conform(read_signal(SAMPLE_SETS["signals"].path), 1, 8000)
    count = data.shape[1] // 1024
    _, classes = make_signals(count, seed=0, split="test")  # what make_model_samples wrote
    batch = torch.from_numpy(np.stack([window(data, 1024 * k, 1024) for k in range(count)]))
    with torch.no_grad():
        predicted = model.module(batch).argmax(1).numpy()
    assert count == 120 and (predicted == classes).mean() > 0.9

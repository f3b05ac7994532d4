"""torchvision-style detectors (issue 29, item 2), on a Faster R-CNN with a two-convolution
backbone and random weights: plain pixels in, the model's own detections out (sorted, boxes in
the input picture's pixels), a cut with --min-score, one line when there is nothing to explain,
and a detection's saliency on its box."""

import json

import numpy as np
import pytest
import torch

from deepvis.cli import main
from deepvis.core.loading import load_model
from deepvis.io.images import read_image, write_image


@pytest.fixture(scope="module")
def picture(tmp_path_factory):
    """96 x 128: a centre crop (16 px off each side) shrunk 1.5x to the detector's 64 x 64."""
    rng = np.random.default_rng(0)
    image = (rng.random((96, 128, 3)) * 60).astype(np.uint8)
    image[30:66, 50:90] = (rng.random((36, 40, 3)) * 255).astype(np.uint8)  # a busy patch
    path = tmp_path_factory.mktemp("detector") / "scene.png"
    write_image(path, image)
    return path


def test_detections_are_the_models_own_in_the_pictures_pixels(picture, capsys, tmp_path):
    model = load_model("testnets:tiny_detector", device="cpu")
    assert model.task == "detection" and model.spec.mean == (0.0,) * 3 and model.spec.std == (1.0,) * 3
    assert any("resizes and normalizes inside" in n for n in model.notes)
    with torch.inference_mode():
        own = model.module(model.input_tensor(read_image(picture)))[0]
    order = torch.argsort(own["scores"], descending=True)
    cut = float(own["scores"][order[len(order) // 2]])  # keeps the better half
    out = tmp_path / "drawn.png"
    assert main(["predict", "--model", "testnets:tiny_detector", "--input", str(picture), "--json",
                 "--min-score", str(cut), "--out", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    kept = [i for i in order.tolist() if float(own["scores"][i]) >= cut]
    assert report["kind"] == "detection" and len(report["detections"]) == len(kept) > 0
    for got, i in zip(report["detections"], kept):
        assert got["score"] == pytest.approx(float(own["scores"][i]), abs=1e-6)
        assert got["index"] == int(own["labels"][i])
        x0, y0, x1, y1 = own["boxes"][i].tolist()
        np.testing.assert_allclose(got["box"], [16 + 1.5 * x0, 1.5 * y0, 16 + 1.5 * x1, 1.5 * y1], atol=0.02)
    drawn = read_image(out)
    assert drawn.shape == read_image(picture).shape
    x0, y0, x1, y1 = (int(round(v)) for v in report["detections"][-1]["box"])
    assert (drawn[y0 + 2:y1 - 2, x1] != read_image(picture)[y0 + 2:y1 - 2, x1]).any()  # framed


def test_nothing_above_the_threshold_is_said_and_nothing_is_explained(picture, capsys, tmp_path):
    args = ["--model", "testnets:detector_with_none_above", "--input", str(picture)]
    assert main(["predict", *args]) == 0
    assert capsys.readouterr().out.strip() == "no detections above 0.99"
    assert main(["saliency", *args, "--out", str(tmp_path / "s.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no detection 0 to explain" in err[0] and "above 0.99" in err[0]
    assert not (tmp_path / "s.png").exists()


def test_a_detections_saliency_lies_on_its_box(picture, capsys, tmp_path):
    npy = tmp_path / "s.npy"
    assert main(["saliency", "--model", "testnets:tiny_detector", "--input", str(picture), "--target", "det:1",
                 "--out", str(tmp_path / "s.png"), "--npy", str(npy)]) == 0
    assert "gradient for detection 1" in capsys.readouterr().out
    model = load_model("testnets:tiny_detector", device="cpu")
    with torch.inference_mode():
        summary = model.summarize(model.module(model.input_tensor(read_image(picture))))
    x0, y0, x1, y1 = summary.detections[1].box  # in the model input's 64 x 64 pixels
    mass = np.abs(np.load(npy))
    inside = np.zeros_like(mass, bool)
    inside[int(y0):int(np.ceil(y1)), int(x0):int(np.ceil(x1))] = True
    assert mass[inside].sum() / mass.sum() >= 2 * inside.mean()

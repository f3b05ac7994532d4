"""``deepvis segment`` on the bundled FCN over fresh held-out digit scenes, as a user runs it:
overlays, labels, metrics against ground-truth masks, and bad masks refused in one line."""

import json

import numpy as np
import pytest
from PIL import Image

from deepvis.io.images import read_image
from deepvis.models import digits_fcn
from deepvis.segmentation.masks import read_mask
from deepvis.segmentation.metrics import confusion, scores
from deepvis.render.colormaps import voc_palette

from clirun import run_commands


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    d = tmp_path_factory.mktemp("segment")
    images, masks = digits_fcn.make_scenes(12, seed=5, split="test")
    (d / "scenes").mkdir()
    (d / "gt").mkdir()
    palette = voc_palette().ravel().tolist()
    for i, (image, mask) in enumerate(zip(images, masks)):
        Image.fromarray((image[0] * 255).round().astype(np.uint8)).convert("RGB").save(d / "scenes" / f"s{i:02d}.png")
        gt = Image.fromarray(mask.astype(np.uint8), mode="P")
        gt.putpalette(palette)
        gt.save(d / "gt" / f"s{i:02d}_gt.png")
    bad = np.array(Image.open(d / "gt" / "s00_gt.png"))
    bad[0, 0] = 12
    Image.fromarray(bad).save(d / "bad_class.png")
    Image.fromarray(np.zeros((64, 32), np.uint8)).save(d / "bad_shape.png")
    data = (d / "gt" / "s00_gt.png").read_bytes()
    (d / "corrupt.png").write_bytes(data[: len(data) // 2])
    (d / "table.json").write_text("{not json")
    one = d / "scenes" / "s00.png"
    present = [k for k in np.unique(masks[0]) if k > 0]
    drawn = masks[0] == present[0]
    np.save(d / "drawn.npy", drawn.astype(np.uint8))
    commands = {
        "region_mask": ["saliency", "--model", "digits_fcn", "--input", one, "--method", "gradient", "--target",
                        digits_fcn.LABELS[present[0]], "--region-mask", d / "drawn.npy", "--out", d / "sal.png",
                        "--npy", d / "sal.npy"],
        "folder": ["segment", "--model", "digits_fcn", "--input", d / "scenes", "--gt", d / "gt", "--out", d / "out",
                   "--npy", d / "labels", "--opacity", "1", "--json", "--plain"],
        "one_entropy": ["segment", "--model", "digits_fcn", "--input", one, "--mode", "entropy", "--out",
                        d / "entropy.png", "--plain"],
        "one_figure": ["segment", "--model", "digits_fcn", "--input", one, "--mode", "entropy", "--out",
                       d / "entropy-figure.png"],
        "bad_class": ["segment", "--model", "digits_fcn", "--input", one, "--gt", d / "bad_class.png",
                      "--out", d / "never.png"],
        "bad_shape": ["segment", "--model", "digits_fcn", "--input", one, "--gt", d / "bad_shape.png",
                      "--out", d / "never.png"],
        "corrupt_mask": ["segment", "--model", "digits_fcn", "--input", one, "--gt", d / "corrupt.png",
                         "--out", d / "never.png"],
        "missing_gt": ["segment", "--model", "digits_fcn", "--input", one, "--gt", d / "nowhere.png",
                       "--out", d / "never.png"],
        "bad_table": ["segment", "--model", "digits_fcn", "--input", one, "--gt", d / "bad_shape.png", "--gt-colors",
                      d / "table.json", "--out", d / "never.png"],
        "classifier": ["segment", "--model", "digits_cnn", "--input", one, "--out", d / "never.png"],
    }
    results = run_commands(commands, d)
    return results, d, masks


def test_saliency_of_a_drawn_region(cli):
    from deepvis.attribution.saliency import RegionMask, Target, attribute
    from deepvis.core.loading import load_model
    from deepvis.core.probe import Probe

    results, d, masks = cli
    assert results["region_mask"].returncode == 0, results["region_mask"].stderr
    assert "in a drawn region of" in results["region_mask"].stdout
    drawn = np.load(d / "drawn.npy").astype(bool)
    # The command explains the class inside exactly the drawn pixels: the engine's map for them.
    model = load_model("digits_fcn", device="cpu")
    x = model.input_tensor(read_image(d / "scenes" / "s00.png"))
    k = int(np.unique(masks[0][drawn])[0])
    expected = attribute(model.module, Probe(model.module, model.example_input()), x, "gradient",
                         Target("class", k, region=RegionMask.of(drawn)))
    np.testing.assert_allclose(np.load(d / "sal.npy"), expected, rtol=1e-5, atol=1e-7)
    whole = attribute(model.module, Probe(model.module, model.example_input()), x, "gradient", Target("class", k))
    assert not np.allclose(expected, whole)  # the region changed what is explained


def test_folder_metrics_overlays_and_labels(cli):
    results, d, masks = cli
    assert results["folder"].returncode == 0, results["folder"].stderr
    report = json.loads(results["folder"].stdout)
    metrics = report["metrics"]
    labels = np.stack([np.load(d / "labels" / f"s{i:02d}.npy") for i in range(12)])
    assert labels.dtype == np.int64 and labels.shape == (12, 64, 64)
    # The command's numbers are those of its own labels against the masks, counted independently.
    truth = np.stack([read_mask(d / "gt" / f"s{i:02d}_gt.png") for i in range(12)])
    np.testing.assert_array_equal(truth, masks)
    independent = scores(confusion(truth, labels, 11))
    assert metrics["miou"] == pytest.approx(independent.miou)
    assert metrics["pixel_accuracy"] == pytest.approx(independent.pixel_accuracy)
    assert np.array(metrics["confusion"]).sum() == 12 * 64 * 64
    print(f"digits_fcn on 12 fresh held-out scenes: mIoU {metrics['miou']:.3f}, pixel accuracy "
          f"{metrics['pixel_accuracy']:.3f}, boundary F1 {metrics['boundary_f1']:.3f}")
    assert metrics["miou"] >= 0.75 and metrics["boundary_f1"] > 0.5
    # At full opacity a digit's inside has its class's legend colour.
    palette = voc_palette()
    overlay = read_image(d / "out" / "s00.png")
    mask = masks[0]
    for k in np.unique(mask[mask > 0]):
        ys, xs = np.nonzero((mask == k) & (labels[0] == k))
        inner = [(y, x) for y, x in zip(ys, xs) if (labels[0][max(0, y - 1):y + 2, max(0, x - 1):x + 2] == k).all()]
        y, x = inner[len(inner) // 2]
        assert tuple(overlay[y, x]) == tuple(palette[k]), (k, overlay[y, x])


def test_entropy_map_of_one_picture(cli):
    results, d, _ = cli
    assert results["one_entropy"].returncode == 0, results["one_entropy"].stderr
    assert "digits_fcn on 1 image" in results["one_entropy"].stdout
    plain = read_image(d / "entropy.png")
    assert plain.shape == (64, 64, 3)  # --plain: the map at the picture's own size
    # The figure: the same map enlarged by whole pixels (64 -> 320) under a title row, a colour
    # bar on its right.
    assert results["one_figure"].returncode == 0, results["one_figure"].stderr
    figure = read_image(d / "entropy-figure.png")
    enlarged = plain.repeat(5, 0).repeat(5, 1)
    assert figure.shape[0] > 320 + 20 and figure.shape[1] > 320 + 40
    np.testing.assert_array_equal(figure[-320:, :320], enlarged)


@pytest.mark.parametrize("case, needle", [
    ("bad_class", "bad_class.png has class 12, but the model has 11 classes"),
    ("bad_shape", "bad_shape.png is 32x64, the image 64x64"),
    ("classifier", "digits_cnn is a classification model"),
    ("corrupt_mask", "corrupt.png: corrupt or not an image"),
    ("missing_gt", "cannot read ground truth"),
    ("bad_table", "cannot read the colour table"),
])
def test_bad_masks_and_models_are_one_error_line(cli, case, needle):
    results, d, _ = cli
    result = results[case]
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], lines
    assert not (d / "never.png").exists()


def test_pictures_sharing_a_name_get_outputs_of_their_own(tmp_path, capsys):
    """x.png and x.jpg in one folder both wrote out/x.png, one over the other (issue 30): they are
    named by the whole file name, said in a note; the others keep their stem."""
    from PIL import Image

    from deepvis.cli import main
    from deepvis.resources import SAMPLE_SETS

    scenes = sorted(p for p in SAMPLE_SETS["scenes"].path.iterdir() if p.suffix == ".png")[:2]
    data = tmp_path / "data"
    data.mkdir()
    Image.open(scenes[0]).save(data / "x.png")
    Image.open(scenes[1]).convert("RGB").save(data / "x.jpg", quality=95)
    Image.open(scenes[1]).save(data / "y.png")
    assert main(["segment", "--model", "digits_fcn", "--input", str(data), "--out", str(tmp_path / "out"),
                 "--npy", str(tmp_path / "npy"), "--plain"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["x.jpg.png", "x.png.png", "y.png"]
    assert sorted(p.name for p in (tmp_path / "npy").iterdir()) == ["x.jpg.npy", "x.png.npy", "y.npy"]
    assert "named by the whole file name" in capsys.readouterr().err
    assert not np.array_equal(np.load(tmp_path / "npy" / "x.png.npy"), np.load(tmp_path / "npy" / "x.jpg.npy"))

"""Image models on the command line, as a user runs them (a subprocess per command, all
started at once): predict writes the output picture and prints its error; interpolate walks
between two real pictures through a VAE; a user's TorchScript image-to-image net runs
headless; saliency explains an output region; bad requests are one error line."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from deepvis.core.imagemodel import image_output
from deepvis.core.loading import load_model
from deepvis.io.images import read_image
from deepvis.models import digits_cnn
from deepvis.resources import sample_image

from clirun import run_commands
from testnets import TanhImageNet


def _digit(path, pixels01):
    Image.fromarray((pixels01 * 255).round().astype(np.uint8), mode="L").save(path)
    return path


def _classify(images01: np.ndarray) -> np.ndarray:
    """digits_cnn's class for (N, 8, 8) pictures in [0, 1]."""
    with torch.inference_mode():
        return digits_cnn.load_pretrained()(torch.from_numpy(images01.astype(np.float32))[:, None]).argmax(1).numpy()


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    d = tmp_path_factory.mktemp("imagecli")
    _, X_test, _, y_test = digits_cnn.load_split()
    vae = load_model("digits_vae", device="cpu")
    with torch.inference_mode():
        kept = _classify(vae.module(torch.from_numpy(X_test)).numpy()[:, 0]) == y_test
    # The first held-out 3 and 8 that the VAE reconstructs recognisably: the strip's ends.
    a = next(i for i in range(len(y_test)) if y_test[i] == 3 and kept[i])
    b = next(i for i in range(len(y_test)) if y_test[i] == 8 and kept[i])
    files = {"a": _digit(d / "three.png", X_test[a, 0]), "b": _digit(d / "eight.png", X_test[b, 0]),
             "cat": sample_image("cat")}
    net = torch.jit.script(TanhImageNet().eval())
    files["net"] = d / "cyclegan_like.pt"
    net.save(str(files["net"]))
    tanh = ["--model", files["net"], "--input-size", "64x64", "--mean", "0.5", "--std", "0.5"]
    commands = {
        "predict_ae": ["predict", "--model", "digits_ae", "--input", files["a"], "--out", d / "ae.png"],
        "predict_vae_json": ["predict", "--model", "digits_vae", "--input", files["b"], "--json"],
        "predict_tanh": ["predict", *tanh, "--input", files["cat"], "--out", d / "tanh.png"],
        "info_tanh": ["info", *tanh, "--json"],
        "saliency_region": ["saliency", "--model", "testnets:TanhImageNet", *tanh[2:], "--input", files["cat"],
                            "--method", "gradient", "--target", "output", "--region", "0,0,0.5,0.5", "--out", d / "sal.png", "--npy", d / "sal.npy"],
        "interpolate": ["interpolate", "--generator", "digits_vae", "--from-images", files["a"], files["b"],
                        "--steps", "7", "--out", d / "strip.png", "--gif", d / "strip.gif", "--min-size", "8"],
        "sample_7": ["predict", "--model", "digits_vae", "--input", files["b"], "--sample", "7", "--out", d / "s7.png"],
        "sample_7_again": ["predict", "--model", "digits_vae", "--input", files["b"], "--sample", "7",
                           "--out", d / "s7b.png"],
        "sample_8": ["predict", "--model", "digits_vae", "--input", files["b"], "--sample", "8", "--out", d / "s8.png"],
        "mean_vae": ["predict", "--model", "digits_vae", "--input", files["b"], "--out", d / "mean.png"],
        # bad requests
        "sample_ae": ["predict", "--model", "digits_ae", "--input", files["a"], "--sample", "1"],
        "task_mismatch": ["predict", "--model", "digits_cnn", "--task", "image", "--input", files["a"]],
        "out_for_classifier": ["predict", "--model", "digits_cnn", "--input", files["a"], "--out", d / "never.png"],
        "bad_task": ["predict", "--model", "digits_ae", "--task", "picture", "--input", files["a"]],
        "no_decoder": ["interpolate", "--generator", "testnets:EncoderOnly", "--from-images", files["a"], files["b"],
                       "--out", d / "never2.png"],
        "gan_from_images": ["interpolate", "--generator", "digits_gan", "--from-images", files["a"], files["b"],
                            "--out", d / "never3.png"],
    }
    results = run_commands(commands, d)
    return results, files, d, (X_test[a, 0], X_test[b, 0])


def _ok(result):
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def _one_error(result, *needles):
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_predict_writes_the_output_picture_and_its_error(cli):
    results, files, d, _ = cli
    out = _ok(results["predict_ae"])
    model = load_model("digits_ae", device="cpu")
    x = model.input_tensor(read_image(files["a"]))
    with torch.inference_mode():
        expected = image_output(model.module(x), x, model.output_range, model.spec)
    written = read_image(d / "ae.png")
    assert written.shape[:2] == (8, 8)
    np.testing.assert_array_equal(written if written.ndim == 2 else written[..., 0], expected.picture[..., 0])
    assert f"MSE {expected.error.mse:.4g}" in out and "PSNR" in out and "SSIM" in out

    report = json.loads(_ok(results["predict_vae_json"]))
    assert report["kind"] == "image" and report["out"] is None and report["output"] == "output" and report["weights_from"] == "bundled"
    numbers = report["picture"]
    assert numbers["shape"] == [1, 8, 8] and numbers["range"] == "sigmoid"
    assert 0 <= numbers["mse"] < 0.05 and numbers["psnr"] > 13 and 0 < numbers["ssim"] <= 1


def test_vae_reconstructions_from_posterior_draws_are_seeded(cli):
    results, _, d, _ = cli
    for case in ("sample_7", "sample_7_again", "sample_8", "mean_vae"):
        _ok(results[case])
    s7, s7b, s8, mean = (read_image(d / f).astype(int) for f in ("s7.png", "s7b.png", "s8.png", "mean.png"))
    assert np.array_equal(s7, s7b)
    assert np.abs(s7 - s8).max() > 10 and np.abs(s7 - mean).max() > 10
    # A draw around the mean: closer to the mean reconstruction than to a blank picture.
    assert np.abs(s7 - mean).mean() < 0.5 * np.abs(mean).mean()


def test_a_users_torchscript_image_to_image_net_runs_headless(cli):
    results, files, d, _ = cli
    info = json.loads(_ok(results["info_tanh"]))
    assert info["task"] == "image" and info["output_range"] == "tanh" and info["scripted"]
    out = _ok(results["predict_tanh"])
    written = read_image(d / "tanh.png")
    assert written.shape == (64, 64, 3)
    # Near the identity at initialisation: the output is the model's view of the cat.
    model = load_model(str(files["net"]), input_size=(64, 64), mean=(0.5,), std=(0.5,), device="cpu")
    seen = model.preprocessor.fit(read_image(files["cat"]))
    x = model.input_tensor(read_image(files["cat"]))
    with torch.inference_mode():
        expected = image_output(model.module(x), x, model.output_range, model.spec)
    np.testing.assert_array_equal(written, expected.picture)
    assert np.abs(written.astype(int) - seen.astype(int)).mean() < 25  # tanh squashes only the extremes
    assert "MSE" in out


def test_saliency_of_an_output_region_lies_in_that_region(cli):
    results, _, d, _ = cli
    assert "the output picture's mean in" in _ok(results["saliency_region"])
    sal = np.abs(np.load(d / "sal.npy"))
    assert sal.shape == (64, 64)
    share = sal[:32, :32].sum() / sal.sum()
    print(f"share of |gradient| in the explained quadrant: {share:.3f}")
    assert share > 0.9  # a 3x3-3x3 conv net reaches two pixels past the region's edge


def test_interpolating_between_two_real_pictures(cli):
    results, _, d, (a, b) = cli
    assert "through the pictures three.png eight.png of digits_vae" in _ok(results["interpolate"])
    strip = read_image(d / "strip.png")
    strip = strip if strip.ndim == 2 else strip[..., 0]
    assert strip.shape == (8, 7 * 8)
    frames = strip.reshape(8, 7, 8).transpose(1, 0, 2).astype(np.float32) / 255
    classes = _classify(frames)
    print(f"digits_cnn along the strip: {classes.tolist()}")
    assert classes[0] == 3 and classes[-1] == 8
    # The ends are the pictures' reconstructions: close to the inputs themselves.
    assert np.mean((frames[0] - a) ** 2) < 0.05 and np.mean((frames[-1] - b) ** 2) < 0.05
    assert (d / "strip.gif").stat().st_size > 0


@pytest.mark.parametrize("case, needles", [
    ("task_mismatch", ["--task image needs an output of shape (B, 1 or 3, H, W)", "(1, 10)"]),
    ("out_for_classifier", ["--out writes an image model's output picture", "digits_cnn is a classification"]),
    ("bad_task", ["--task", "invalid choice"]),
    ("no_decoder", ["has no decoder: name it with --decoder"]),
    ("sample_ae", ["--sample needs a VAE", "digits_ae"]),
    ("gan_from_images", ["needs a generator with an encoder", "digits_gan is a GAN"]),
])
def test_bad_requests_are_one_error_line(cli, case, needles):
    results, _, d, _ = cli
    _one_error(results[case], *needles)
    assert not any((d / name).exists() for name in ("never.png", "never2.png", "never3.png"))


def test_random_weights_are_flagged_beside_the_predictions(tmp_path):
    from clirun import run_command

    from deepvis.resources import SAMPLE_SETS

    digit = str(SAMPLE_SETS["digits"].path / "digit-3.png")
    random = run_command(["predict", "--model", "digits_cnn", "--weights", "none", "--input", digit, "--json"], tmp_path)
    trained = run_command(["predict", "--model", "digits_cnn", "--input", digit, "--json"], tmp_path)
    assert random.returncode == trained.returncode == 0
    assert "random weights" in random.stderr and "random weights" not in trained.stderr
    report = json.loads(random.stdout)  # stdout stays the JSON; the notes say it there too
    assert report["predictions"][0]["label"] in [str(d) for d in range(10)]
    assert report["weights_from"] == "random" and any("random weights" in n for n in report["notes"])
    assert json.loads(trained.stdout)["notes"] == []


def test_an_image_models_picture_is_enlarged_by_whole_pixels_only(tmp_path):
    from clirun import run_command

    from deepvis.io.images import read_image
    from deepvis.resources import SAMPLE_SETS

    digit = str(SAMPLE_SETS["digits"].path / "digit-3.png")
    plain, big = tmp_path / "plain.png", tmp_path / "big.png"
    assert run_command(["predict", "--model", "digits_ae", "--input", digit, "--out", str(plain)], tmp_path).returncode == 0
    assert run_command(["predict", "--model", "digits_ae", "--input", digit, "--out", str(big), "--scale", "8"],
                       tmp_path).returncode == 0
    small = read_image(plain)
    assert small.shape[:2] == (8, 8)  # the data, at its own resolution
    np.testing.assert_array_equal(read_image(big), small.repeat(8, axis=0).repeat(8, axis=1))
    huge = run_command(["predict", "--model", "digits_ae", "--input", digit, "--out", str(tmp_path / "no.png"),
                        "--scale", "5000"], tmp_path)
    assert huge.returncode == 2 and huge.stderr.startswith("error: --scale 5000") and not (tmp_path / "no.png").exists()

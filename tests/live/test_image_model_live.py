"""Image models live: every result carries the output picture, its difference from the input
and the error, computed from the very frame the model saw; a user's TorchScript
image-to-image net and the bundled VAE alike."""

import numpy as np
import torch

from deepvis.core.imagemodel import image_output
from deepvis.core.loading import load_model
from deepvis.io.images import write_image, write_video
from deepvis.io.sources import ImageFolderSource, VideoFileSource
from deepvis.live.pipeline import LivePipeline, LiveSettings
from deepvis.models.digits_cnn import load_split

from testnets import TanhImageNet


def _check_results(model, pipeline, count, errors=None):
    seen = set()
    for n in range(1, count + 1):
        result = pipeline.wait_for_results(n, timeout=60)
        if result.frame.serial in seen:
            continue
        seen.add(result.frame.serial)
        x = torch.from_numpy(model.preprocessor.normalize(model.preprocessor.fit(result.frame.image)))[None]
        with torch.inference_mode():
            expected = image_output(model.module(x), x, model.output_range, model.spec)
        np.testing.assert_array_equal(result.image_output.picture, expected.picture)
        np.testing.assert_allclose(result.image_output.difference, expected.difference, atol=1e-6)
        assert result.image_output.error.mse == np.float64(expected.error.mse)
        assert result.summary.kind == "image" and result.summary.text == expected.error.text()
        assert not result.image_output.picture.flags.writeable
        if errors is not None:
            errors.append(result.image_output.error)
    return seen


def test_a_users_torchscript_image_to_image_net_runs_live(tmp_path):
    net = torch.jit.script(TanhImageNet().eval())
    net.save(str(tmp_path / "net.pt"))
    model = load_model(str(tmp_path / "net.pt"), input_size=(32, 32), mean=(0.5,), std=(0.5,), device="cpu")
    frames = []
    for i in range(8):
        f = np.zeros((48, 64, 3), np.uint8)
        f[10:30, 5 + 4 * i:25 + 4 * i] = (255, 120, 30)
        frames.append(f)
    write_video(tmp_path / "clip.mp4", frames, 25)
    with LivePipeline(model, VideoFileSource(tmp_path / "clip.mp4", realtime=False),
                      LiveSettings(grid_layer=None)) as pipeline:
        seen = _check_results(model, pipeline, 6)
    assert len(seen) >= 3


def test_the_vae_live_on_digits(tmp_path):
    _, X_test, _, _ = load_split()
    frames = [np.repeat((X_test[i, 0] * 255).round().astype(np.uint8)[:, :, None], 3, axis=2) for i in range(6)]
    (tmp_path / "digits").mkdir()
    for i, f in enumerate(frames):
        write_image(tmp_path / "digits" / f"{i}.png", f)
    model = load_model("digits_vae", device="cpu")
    with LivePipeline(model, ImageFolderSource(tmp_path / "digits", advance_on_read=True),
                      LiveSettings(grid_layer="decoder.5")) as pipeline:
        errors = []
        _check_results(model, pipeline, 8, errors)
        result = pipeline.latest()
    assert result.grid is not None and result.image_output.picture.shape == (8, 8, 3)
    # Digits are rebuilt closely (the held-out mean-digit baseline's MSE is 0.074).
    mse = float(np.median([e.mse for e in errors]))
    ssim = float(np.median([e.ssim for e in errors]))
    print(f"live VAE reconstruction over {len(errors)} frames: median MSE {mse:.4f}, SSIM {ssim:.3f}")
    assert mse < 0.03 and ssim > 0.8


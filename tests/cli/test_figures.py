"""Headless figures explain themselves (issue 27, item 3): a title row over the very picture
--plain writes, channel numbers, colour bars whose values are the data's, axes on 1-D plots."""

import numpy as np
import pytest

from deepvis.cli import main
from deepvis.io.images import read_image
from deepvis.render import figure as fig
from deepvis.resources import SAMPLE_SETS


def _run(*args) -> None:
    assert main([str(a) for a in args]) == 0


def _title_rows(picture: np.ndarray) -> int:
    """Rows from the top before the body: the title strip is the background colour but for its text."""
    return int(np.argmax((picture != fig.BACKGROUND).all(axis=2).sum(1) > picture.shape[1] // 2))


def test_an_activation_figure_is_the_plain_grid_numbered_under_a_title_with_the_layers_values(tmp_path):
    digit = sorted(SAMPLE_SETS["digits"].path.glob("*.png"))[0]
    plain, figure, npy = tmp_path / "plain.png", tmp_path / "figure.png", tmp_path / "a.npy"
    _run("activations", "--model", "digits_cnn", "--input", digit, "--layer", "conv1", "--out", plain, "--plain")
    _run("activations", "--model", "digits_cnn", "--input", digit, "--layer", "conv1", "--out", figure,
         "--npy", npy)
    plain, figure, activation = read_image(plain), read_image(figure), np.load(npy)
    top = figure.shape[0] - plain.shape[0]
    assert top > 2 * fig.FONT_PX  # a title and a details line
    assert figure.shape[1] > plain.shape[1] + fig.BAR_WIDTH  # the colour bar on the right
    body = figure[top:, :plain.shape[1]]
    # The same pixels but for the channel numbers in each tile's corner.
    label_box = np.zeros(plain.shape[:2], bool)
    from deepvis.render.tiling import tile_activation

    grid, layout = tile_activation(activation)
    factor = plain.shape[0] // grid.shape[0]
    for i in range(layout.count):
        y, x = (v * factor for v in layout.origin(i))
        label_box[y:y + fig.SMALL_PX + 3, x:x + fig.text_width(str(i), fig.SMALL_PX) + 4] = True
    assert (body[~label_box] == plain[~label_box]).all()
    assert (body[label_box] != plain[label_box]).any(axis=-1).mean() > 0.05  # the numbers are drawn
    # The bar's ticks run from the layer's minimum to its maximum.
    ticks = fig.value_ticks(float(activation.min()), float(activation.max()))
    assert ticks[0][1] == fig.format_value(activation.min()) and ticks[-1][1] == fig.format_value(activation.max())


def test_a_1x1_conv1d_is_a_heat_map_of_its_weights_not_black_and_white_squares(tmp_path):
    from deepvis.core.loading import load_model

    out = tmp_path / "filters.png"
    _run("filters", "--model", "signals_wavenet", "--layer", "post_conv", "--out", out)
    picture = read_image(out)
    weights = load_model("signals_wavenet", device="cpu").module.post_conv.weight.detach().numpy()[:, :, 0]
    # Every weight a cell of its own colour on one signed scale: at least as many colours as
    # distinct weights' colour steps (16 tiles of black or white had 2).
    colours = np.unique(picture.reshape(-1, 3), axis=0)
    assert len(colours) > 200
    assert picture.shape[1] < 1400 and picture.shape[0] < 800
    from deepvis.render.colormaps import apply_colormap

    peak = np.abs(weights).max()
    strongest = apply_colormap(np.array([[0.5 + 0.5 * weights.flat[np.abs(weights).argmax()] / peak]]),
                               "coolwarm")[0, 0]
    assert (picture.reshape(-1, 3) == strongest).all(axis=1).sum() >= 16  # its cell is drawn, 4x4 px or more


def test_axes_hold_the_plot_unchanged_and_tick_the_cells_at_their_centres():
    plot = np.random.default_rng(0).integers(0, 255, (40, 100, 3), dtype=np.uint8)
    drawn = fig.axes(plot, "x", "y", x_scale=10, y_scale=(1.0, 0.0))
    left = fig.axes_left(fig.ticks_along((1.0, 0.0), 40, 5))
    top = fig.SMALL_PX // 2 + 1
    np.testing.assert_array_equal(drawn[top:top + 40, left:left + 100], plot)
    assert fig.ticks_along(10, 100, 5) == [(5, "0"), (25, "2"), (45, "4"), (75, "7"), (95, "9")]
    assert [label for _, label in fig.ticks_along((0.0, 0.128), 1024, 5)] == ["0", "0.032", "0.064", "0.096",
                                                                              "0.128"]


def test_the_saliency_legend_says_the_clipping_value():
    from deepvis.attribution.render import display_legend

    s = np.random.default_rng(1).standard_cauchy((64, 64)).astype(np.float32)
    p99 = np.percentile(np.abs(s), 99)
    colormap, ticks, caption = display_legend(s, "clip99")
    assert ticks[-1] == (1.0, f">= {fig.format_value(p99)}") and "99th percentile" in caption
    _, ticks, _ = display_legend(s, "signed")
    assert ticks[0][1] == f"<= -{fig.format_value(p99)}" and ticks[1] == (0.5, "0")
    _, ticks, _ = display_legend(s, "abs")
    assert ticks[-1][1] == fig.format_value(np.abs(s).max())


@pytest.mark.parametrize("value, text", [(0.0320, "0.032"), (87.93, "87.9"), (-95.7, "-95.7"), (1234.5, "1234"),
                                         (0.5, "0.5"), (2e-5, "2.00e-05")])
def test_values_read_with_three_significant_digits(value, text):
    assert fig.format_value(value) == text


def test_data_pictures_stay_data_with_their_exact_arrays(tmp_path, digits):
    """predict --npy is the model's own output; an autoencoder's picture is its own 8x8, enlarged
    only by --scale's whole pixels; visualize-unit --npy is the picture its PNG enlarges."""
    import torch

    from deepvis.core.loading import load_model

    digit = sorted(SAMPLE_SETS["digits"].path.glob("*.png"))[3]
    _run("predict", "--model", "digits_cnn", "--input", digit, "--npy", tmp_path / "scores.npy")
    with torch.inference_mode():
        expected = digits.module(digits.input_tensor(read_image(digit)))[0].numpy()
    np.testing.assert_allclose(np.load(tmp_path / "scores.npy"), expected, rtol=1e-5, atol=1e-6)

    ae = load_model("digits_ae", device="cpu")
    _run("predict", "--model", "digits_ae", "--input", digit, "--out", tmp_path / "ae.png", "--npy",
         tmp_path / "ae.npy")
    _run("predict", "--model", "digits_ae", "--input", digit, "--out", tmp_path / "ae4.png", "--scale", "4")
    own, big = read_image(tmp_path / "ae.png"), read_image(tmp_path / "ae4.png")
    assert own.shape[:2] == (8, 8) and np.load(tmp_path / "ae.npy").shape == (1, 8, 8)
    np.testing.assert_array_equal(big, own.repeat(4, 0).repeat(4, 1))
    assert ae.task == "image"

    _run("visualize-unit", "--model", "digits_cnn", "--layer", "fc2", "--unit", "7", "--steps", "8", "--out",
         tmp_path / "unit.png", "--npy", tmp_path / "unit.npy")
    small, shown = np.load(tmp_path / "unit.npy"), read_image(tmp_path / "unit.png")
    k = shown.shape[0] // small.shape[0]
    assert small.shape[:2] == (8, 8) and k > 1
    np.testing.assert_array_equal(shown[::k, ::k].reshape(small.shape[0], small.shape[1], -1)[..., :small.shape[2]],
                                  small if small.ndim == 3 else small[..., None])

"""Activation grids and filter sheets: every tile shows exactly its channel."""

import numpy as np
import pytest

from deepvis.render.colormaps import COLORMAPS, NAN_COLOR, apply_colormap, lut
from deepvis.errors import DeepvisError
from deepvis.render.tiling import filter_sheet, grid_layout, normalize, tile, tile_activation, upscale


@pytest.mark.parametrize("channels", [1, 3, 7, 32, 95, 96])
@pytest.mark.parametrize("mode", ["layer", "channel", "none"])
def test_each_tile_equals_its_normalized_channel(channels, mode):
    rng = np.random.default_rng(channels)
    act = rng.normal(size=(channels, 5, 9)).astype(np.float32) * 3 + 1
    grid, layout = tile_activation(act, mode)
    expected = normalize(act, mode)
    for c in range(channels):
        np.testing.assert_array_equal(grid[layout.tile_slices(c)], expected[c])
        y, x = layout.origin(c)
        assert layout.tile_at(y + 4, x + 8) == c
        assert layout.tile_at(y + 5, x) is None  # padding row below the tile
    # Everything that is not a tile is padding.
    assert np.isnan(grid).sum() == grid.size - channels * 5 * 9
    assert grid.flags.c_contiguous and grid.dtype == np.float32


def test_normalization_ranges():
    act = np.stack([np.full((4, 4), 2.0), np.arange(16.0).reshape(4, 4), np.full((4, 4), -1.0)]).astype(np.float32)
    layer = normalize(act, "layer")
    assert layer.min() == 0.0 and layer.max() == 1.0
    assert layer[2].max() == 0.0  # the minimum of the whole layer
    channel = normalize(act, "channel")
    assert channel[1].min() == 0.0 and channel[1].max() == 1.0
    assert np.all(channel[0] == 0.0)  # a constant channel shows black, no division by zero
    np.testing.assert_array_equal(normalize(act, "none"), act)
    with pytest.raises(DeepvisError):
        normalize(act, "bogus")


def test_vectors_tile_as_one_pixel_per_unit():
    vec = np.arange(1000, dtype=np.float32)
    grid, layout = tile_activation(vec, "none")
    assert (layout.tile_h, layout.tile_w, layout.count) == (1, 1, 1000)
    for unit in (0, 17, 999):
        assert grid[layout.tile_slices(unit)][0, 0] == unit


def test_layout_is_roughly_square_for_wide_tiles():
    layout = grid_layout(64, 4, 32)
    h, w = layout.shape
    assert 0.5 < h / w < 2.0
    assert layout.rows * layout.cols >= 64 > (layout.rows - 1) * layout.cols


def test_neighbour_moves_like_arrow_keys():
    layout = grid_layout(10, 3, 3, cols=4)  # rows: 0-3, 4-7, 8-9
    assert layout.neighbour(5, 0, 1) == 6
    assert layout.neighbour(5, 1, 0) == 9
    assert layout.neighbour(7, 1, 0) == 9  # clamped to the last unit
    assert layout.neighbour(0, -1, -1) == 0


def test_rgb_filter_tiles_are_the_filters_scaled_around_grey():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(8, 3, 5, 5)).astype(np.float32)
    sheet, layout = filter_sheet(w)
    assert sheet.shape[2] == 3
    for o in range(8):
        expected = 0.5 + 0.5 * w[o] / np.abs(w[o]).max()
        np.testing.assert_allclose(sheet[layout.tile_slices(o)], expected.transpose(1, 2, 0), rtol=1e-6)


def test_channel_filter_sheet_has_one_block_per_filter():
    w = np.random.default_rng(2).normal(size=(6, 4, 3, 3)).astype(np.float32)
    sheet, layout = filter_sheet(w)
    assert sheet.ndim == 2 and layout.count == 6
    block = sheet[layout.tile_slices(5)]
    inner = grid_layout(4, 3, 3)
    np.testing.assert_allclose(block[inner.tile_slices(2)], 0.5 + 0.5 * w[5, 2] / np.abs(w[5]).max(), rtol=1e-6)
    with pytest.raises(DeepvisError):
        filter_sheet(w, mode="rgb")


def test_colormaps():
    for name in COLORMAPS:
        table = lut(name)
        assert table.shape == (256, 3) and table.dtype == np.uint8
    assert tuple(lut("gray")[0]) == (0, 0, 0) and tuple(lut("gray")[255]) == (255, 255, 255)
    rgb = apply_colormap(np.array([[0.0, 1.0, np.nan]], np.float32), "gray")
    assert rgb[0, 0].tolist() == [0, 0, 0] and rgb[0, 1].tolist() == [255, 255, 255]
    assert tuple(rgb[0, 2]) == NAN_COLOR
    with pytest.raises(DeepvisError):
        lut("nope")


def test_upscale_keeps_pixels_crisp():
    img = np.arange(12, dtype=np.uint8).reshape(3, 4)
    big = upscale(img, min_side=30)
    assert big.shape == (30, 40)
    np.testing.assert_array_equal(big[::10, ::10], img)


def test_tile_rejects_a_layout_for_other_maps():
    with pytest.raises(DeepvisError):
        tile(np.zeros((4, 2, 2), np.float32), grid_layout(5, 2, 2))

"""Laying out many small maps as one image: activation grids and filter sheets.

``GridLayout`` is the single source of truth for where tile ``i`` sits, so the views can map
a mouse position back to a channel and the tests can check that a tile shows exactly its
channel.
"""

import math
from dataclasses import dataclass

import numpy as np

from deepvis.errors import DeepvisError

NORMALIZATIONS = ("layer", "channel", "none")


@dataclass(frozen=True)
class GridLayout:
    count: int
    rows: int
    cols: int
    tile_h: int
    tile_w: int
    pad: int

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) of the whole grid. Every tile carries its padding on the right and bottom,
        which keeps the grid a plain reshape of the tiles (one copy, no cropping)."""
        return self.rows * (self.tile_h + self.pad), self.cols * (self.tile_w + self.pad)

    def origin(self, index: int) -> tuple[int, int]:
        row, col = divmod(index, self.cols)
        return row * (self.tile_h + self.pad), col * (self.tile_w + self.pad)

    def tile_slices(self, index: int) -> tuple[slice, slice]:
        y, x = self.origin(index)
        return slice(y, y + self.tile_h), slice(x, x + self.tile_w)

    def tile_at(self, y: float, x: float) -> int | None:
        """The tile under grid pixel (y, x), or None on padding or outside."""
        if y < 0 or x < 0:
            return None
        row, dy = divmod(int(y), self.tile_h + self.pad)
        col, dx = divmod(int(x), self.tile_w + self.pad)
        if dy >= self.tile_h or dx >= self.tile_w or row >= self.rows or col >= self.cols:
            return None
        index = row * self.cols + col
        return index if index < self.count else None

    def neighbour(self, index: int, drow: int, dcol: int) -> int:
        """The tile one step away (arrow keys), clamped to the grid."""
        row, col = divmod(index, self.cols)
        row = min(max(row + drow, 0), self.rows - 1)
        col = min(max(col + dcol, 0), self.cols - 1)
        return min(row * self.cols + col, self.count - 1)


def grid_layout(count: int, tile_h: int, tile_w: int, pad: int = 1, cols: int | None = None) -> GridLayout:
    """Rows and columns that make the whole grid roughly square on screen."""
    if count < 1:
        raise DeepvisError("nothing to tile: the layer has no channels")
    if cols is None:
        cols = math.ceil(math.sqrt(count * (tile_h + pad) / (tile_w + pad)))
    cols = max(1, min(cols, count))
    rows = math.ceil(count / cols)
    return GridLayout(count, rows, cols, tile_h, tile_w, pad)


def as_maps(activation: np.ndarray) -> np.ndarray:
    """Any per-sample activation as (C, H, W): vectors become C tiles of 1x1, 1-D signals 1xL."""
    a = np.asarray(activation)
    if a.ndim == 0:
        return a.reshape(1, 1, 1)
    if a.ndim == 1:
        return a.reshape(-1, 1, 1)
    if a.ndim == 2:
        return a[:, None, :]
    if a.ndim == 3:
        return a
    # Volumes (C, D, H, W): show the middle slice of each channel.
    return a.reshape(a.shape[0], -1, a.shape[-2], a.shape[-1])[:, a.shape[-3] // 2 if a.ndim == 4 else 0]


def _range(maps: np.ndarray, mode: str):
    """(offset, scale) such that (maps - offset) * scale lies in [0, 1]."""
    if mode not in NORMALIZATIONS:
        raise DeepvisError(f"unknown normalization {mode!r}: expected one of {', '.join(NORMALIZATIONS)}")
    if mode == "none" or maps.size == 0:
        return np.float32(0.0), np.float32(1.0)
    axes = None if mode == "layer" else tuple(range(1, maps.ndim))
    lo = maps.min(axis=axes, keepdims=mode != "layer")
    span = maps.max(axis=axes, keepdims=mode != "layer") - lo
    # A constant channel (dead unit) shows as black rather than dividing by zero.
    scale = np.where(span > 0, 1.0 / np.where(span > 0, span, 1.0), 0.0).astype(np.float32)
    return lo.astype(np.float32), scale


def normalize(maps: np.ndarray, mode: str = "layer") -> np.ndarray:
    """Scale to [0, 1]: over the whole layer, per channel, or not at all ("none")."""
    maps = np.asarray(maps, np.float32)
    lo, scale = _range(maps, mode)
    return ((maps - lo) * scale).astype(np.float32, copy=False)


def tile(maps: np.ndarray, layout: GridLayout | None = None, pad_value: float = np.nan) -> tuple[np.ndarray, GridLayout]:
    """(C, H, W) or (C, H, W, 3) tiles into one (H', W'[, 3]) float32 grid, C-contiguous."""
    maps = np.asarray(maps, np.float32)
    count, th, tw = maps.shape[:3]
    extra = maps.shape[3:]
    layout = layout or grid_layout(count, th, tw)
    if (layout.count, layout.tile_h, layout.tile_w) != (count, th, tw):
        raise DeepvisError("grid layout does not match the maps")
    rows, cols, p = layout.rows, layout.cols, layout.pad
    grid = np.empty(layout.shape + extra, np.float32)
    # Viewed as (row, y, col, x), each tile is one slab: the whole grid is filled in a single copy.
    cells = grid.reshape((rows, th + p, cols, tw + p) + extra)
    if p:
        cells[:, th:] = pad_value
        cells[:, :th, :, tw:] = pad_value
    full = count // cols
    if full:
        cells[:full, :th, :, :tw] = maps[:full * cols].reshape((full, cols, th, tw) + extra).swapaxes(1, 2)
    rest = count - full * cols
    if rest:
        cells[full, :th, :rest, :tw] = maps[full * cols:].swapaxes(0, 1)
        cells[full, :th, rest:, :tw] = pad_value
    return grid, layout


def tile_activation(activation: np.ndarray, normalization: str = "layer", layout: GridLayout | None = None,
                    pad_value: float = np.nan) -> tuple[np.ndarray, GridLayout]:
    """One layer's activation (no batch dimension) as a normalized grid of its channels."""
    maps = np.asarray(as_maps(activation), np.float32)
    lo, scale = _range(maps, normalization)
    if normalization != "layer":
        return tile((maps - lo) * scale, layout, pad_value)
    # Normalizing the finished grid in place saves a temporary the size of the layer.
    grid, layout = tile(maps, layout, pad_value)
    grid -= lo
    grid *= scale
    return grid, layout


def filter_sheet(weight: np.ndarray, mode: str = "auto", max_filters: int | None = None,
                 pad_value: float = np.nan) -> tuple[np.ndarray, GridLayout]:
    """Convolution weights (out, in, kh, kw) as a picture.

    ``rgb``: each filter one colour tile (first layers of RGB models), scaled symmetrically
    around zero so that grey is 0. ``channels``: each filter a block of its input-channel
    kernels, in grey. ``auto`` takes rgb when there are exactly 3 input channels.
    """
    w = np.asarray(weight, np.float32)
    if w.ndim == 3:  # Conv1d: (out, in, k) -> a 1xk kernel per input channel
        w = w[:, :, None, :]
    if w.ndim != 4:
        raise DeepvisError(f"filters need convolution weights (out, in, kh, kw), got shape {tuple(w.shape)}")
    if max_filters:
        w = w[:max_filters]
    if mode == "auto":
        mode = "rgb" if w.shape[1] == 3 else "channels"
    if mode == "rgb":
        if w.shape[1] != 3:
            raise DeepvisError(f"rgb filters need 3 input channels, this layer has {w.shape[1]}")
        scale = np.abs(w).max(axis=(1, 2, 3), keepdims=True)
        rgb = 0.5 + 0.5 * w / np.where(scale > 0, scale, 1.0)
        return tile(rgb.transpose(0, 2, 3, 1), pad_value=pad_value)
    if mode != "channels":
        raise DeepvisError(f"unknown filter mode {mode!r}: expected auto, rgb or channels")
    scale = np.abs(w).max(axis=(1, 2, 3), keepdims=True)
    gray = 0.5 + 0.5 * w / np.where(scale > 0, scale, 1.0)
    out, inp, kh, kw = gray.shape
    blocks = [tile(gray[o], grid_layout(inp, kh, kw), pad_value)[0] for o in range(out)]
    return tile(np.stack(blocks), grid_layout(out, *blocks[0].shape, pad=2), pad_value)


def upscale(image: np.ndarray, min_side: int = 512, max_factor: int = 64, max_side: int | None = None) -> np.ndarray:
    """Nearest-neighbour enlargement by a whole factor so small grids stay crisp in a PNG; with
    ``max_side``, never past it on the long side (a 16x1024 band made a 32,768-pixel-wide PNG)."""
    h, w = image.shape[:2]
    factor = max(1, min(max_factor, math.ceil(min_side / max(1, min(h, w)))))
    if max_side is not None:
        factor = max(1, min(factor, max_side // max(1, h, w)))
    if factor == 1:
        return image
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def picture_grid(images: np.ndarray, cols: int, border: int = 0, fill: int = 45) -> np.ndarray:
    """(N, H, W, 3) uint8 pictures as one image, ``cols`` per row, each framed by ``border``
    pixels of ``fill`` (small samples that touch read as stripes without it)."""
    images = np.asarray(images)
    if border:
        images = np.pad(images, ((0, 0), (border, border), (border, border), (0, 0)), constant_values=fill)
    if len(images) % cols:  # an incomplete last row, filled so the rows stack
        images = np.pad(images, ((0, cols - len(images) % cols), (0, 0), (0, 0), (0, 0)), constant_values=fill)
    rows = [np.hstack(list(images[r:r + cols])) for r in range(0, len(images), cols)]
    return np.ascontiguousarray(np.vstack(rows))

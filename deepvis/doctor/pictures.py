"""The comparison's pictures: the CKA matrix as a labelled heat map, and a training timeline's
first-layer filters, one row per checkpoint."""

from __future__ import annotations

import numpy as np

from deepvis.render import figure as fig
from deepvis.render.colormaps import apply_colormap

MAX_MAP_SIDE = 720  # px of the matrix itself
LABELLED_CELL = 11  # px: from this cell size up, every layer is named along the axes


def cka_heatmap(report: dict) -> np.ndarray:
    """Rows: layers of A; columns: layers of B; colour: CKA from 0 to 1."""
    matrix = np.asarray(report["cka"], np.float32)
    rows, cols = matrix.shape
    cell = int(max(2, min(28, MAX_MAP_SIDE // max(rows, cols))))
    picture = apply_colormap(np.kron(matrix, np.ones((cell, cell), np.float32)), "viridis")
    labelled = cell >= LABELLED_CELL
    left = max((fig.text_width(name, fig.SMALL_PX) for name in report["layers_a"]), default=0) + 8 if labelled else 0
    bottom = max((fig.text_width(name, fig.SMALL_PX) for name in report["layers_b"]), default=0) + 8 if labelled else 0
    image, draw = fig._canvas(picture.shape[0] + bottom, left + picture.shape[1])
    image.paste(fig._pil(picture), (left, 0))
    font = fig._font(fig.SMALL_PX)
    if labelled:
        for i, name in enumerate(report["layers_a"]):
            draw.text((left - 4 - fig.text_width(name, fig.SMALL_PX), i * cell + (cell - fig.SMALL_PX) // 2 - 1), name,
                      fill=fig.FOREGROUND, font=font)
    out = np.asarray(image).copy()
    if labelled:  # column names turned to run upwards, under their columns
        strip, strip_draw = fig._canvas(picture.shape[1], bottom)
        for j, name in enumerate(report["layers_b"]):
            strip_draw.text((bottom - 4 - fig.text_width(name, fig.SMALL_PX), j * cell + (cell - fig.SMALL_PX) // 2 - 1),
                            name, fill=fig.FOREGROUND, font=font)
        out[picture.shape[0]:, left:] = np.rot90(np.asarray(strip), 1)
    bar = fig.colour_bar(max(out.shape[0], 160), "viridis", [(0.0, "0"), (0.5, "0.5"), (1.0, "1")], "linear CKA")
    agreement = report.get("agreement")
    details = (f"rows: {report['model_a']} ({_short(report['weights_a'])}), columns: {report['model_b']} "
               f"({_short(report['weights_b'])}) · {report['inputs']:,} inputs of {report['data']}"
               + (f" · predictions agree on {agreement:.1%}" if agreement is not None else ""))
    return fig.figure(out, "CKA of every layer pair", details, bar)


def _short(path) -> str:
    from pathlib import Path

    return Path(str(path)).name


def filters_strip(filters: list[np.ndarray | None], names: list[str], max_filters: int = 32) -> np.ndarray | None:
    """The first convolution's filters at each checkpoint, one row each, named on the left."""
    from deepvis.render.tiling import filter_sheet, grid_layout, tile

    rows = []
    for weights in filters:
        if weights is None:
            return None
        w = np.asarray(weights, np.float32)[:max_filters]
        if w.ndim == 3:
            w = w[:, :, None, :]
        kh, kw = w.shape[2], w.shape[3]
        mode = "rgb" if w.shape[1] == 3 else "channels"
        if mode == "rgb":
            sheet, _ = filter_sheet(w, "rgb")
            pictures = sheet
        else:  # the first input channel of each filter, side by side: one row per checkpoint
            scale = np.abs(w[:, 0]).max(axis=(1, 2), keepdims=True)
            grey = 0.5 + 0.5 * w[:, 0] / np.where(scale > 0, scale, 1.0)
            pictures, _ = tile(grey, grid_layout(len(grey), kh, kw, pad=1, cols=len(grey)))
        rgb = pictures if pictures.ndim == 3 else np.repeat(pictures[..., None], 3, 2)
        rows.append(np.nan_to_num(rgb, nan=0.11))
    k = max(1, 24 // max(r.shape[0] for r in rows))
    rows = [(np.clip(r, 0, 1) * 255).astype(np.uint8).repeat(k, 0).repeat(k, 1) for r in rows]
    left = max(fig.text_width(n, fig.SMALL_PX) for n in names) + 10
    width = left + max(r.shape[1] for r in rows)
    height = sum(r.shape[0] + 4 for r in rows)
    image, draw = fig._canvas(height, width)
    y = 0
    for row, name in zip(rows, names):
        image.paste(fig._pil(row), (left, y))
        draw.text((2, y + max(0, (row.shape[0] - fig.SMALL_PX) // 2)), name, fill=fig.FOREGROUND, font=fig._font(fig.SMALL_PX))
        y += row.shape[0] + 4
    return fig.figure(np.asarray(image), "First-layer filters at each checkpoint", "top: first, bottom: last")

"""Headless figures that explain themselves: a title row (model, layer, method, target), channel
indices on tiled grids, a colour bar with its values, axes for heat maps and 1-D plots.

The commands' PNGs used to be the bare picture: a grid of 32 tiles said neither which layer
nor which tile is channel 17, and a colour map no values. Everything here draws on RGB uint8
arrays with Pillow's bundled font, so it needs no display and no Qt.
"""

import math

import numpy as np

from deepvis.render.colormaps import apply_colormap

BACKGROUND = (28, 28, 30)
FOREGROUND = (232, 232, 232)
MUTED = (160, 160, 165)
FONT_PX = 14
SMALL_PX = 12
MARGIN = 8
BAR_WIDTH = 16
MIN_WIDTH = 360  # a figure of a tiny picture is widened so its title does not wrap into a column


def _font(px: int):
    from PIL import ImageFont

    return ImageFont.load_default(px)


def _canvas(height: int, width: int):
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (max(1, width), max(1, height)), BACKGROUND)
    return image, ImageDraw.Draw(image)


def text_width(text: str, px: int = FONT_PX) -> int:
    return int(math.ceil(_font(px).getlength(text)))


def format_value(value: float) -> str:
    """Three significant digits, without a trailing exponent for ordinary numbers."""
    value = float(value)
    if value == 0 or not math.isfinite(value):
        return "0" if value == 0 else str(value)
    if 1e-3 <= abs(value) < 1e5:
        digits = max(0, 2 - int(math.floor(math.log10(abs(value)))))
        text = f"{value:.{digits}f}"
        return text.rstrip("0").rstrip(".") if "." in text else text
    return f"{value:.2e}"


def _wrap(text: str, width: int, px: int) -> list[str]:
    """Words to lines no wider than ``width`` pixels (a single long word stays whole)."""
    font = _font(px)
    lines, line = [], ""
    for word in text.split(" "):
        candidate = f"{line} {word}" if line else word
        if line and font.getlength(candidate) > width:
            lines.append(line)
            line = word
        else:
            line = candidate
    return [*lines, line] if line else lines


def title_strip(title: str, width: int, details: str = "") -> np.ndarray:
    """A dark strip ``width`` wide: ``title`` in the text colour, ``details`` below it muted,
    both wrapped to the width."""
    lines = [(line, FONT_PX, FOREGROUND) for line in _wrap(title, width - 2 * MARGIN, FONT_PX)]
    if details:
        lines += [(line, SMALL_PX, MUTED) for line in _wrap(details, width - 2 * MARGIN, SMALL_PX)]
    height = MARGIN + sum(px + 4 for _, px, _ in lines) + MARGIN // 2
    image, draw = _canvas(height, width)
    y = MARGIN
    for line, px, colour in lines:
        draw.text((MARGIN, y), line, fill=colour, font=_font(px))
        y += px + 4
    return np.asarray(image)


def colour_bar(height: int, colormap: str, ticks: list[tuple[float, str]], caption: str = "") -> np.ndarray:
    """A vertical bar of ``colormap`` (0 at the bottom, 1 at the top) with ``ticks``, (position
    in 0..1, label), beside it, and ``caption`` turned along its side."""
    height = max(height, 4 * FONT_PX)
    inset = SMALL_PX // 2 + 1  # the end labels are centred on the bar's ends and must fit
    length = height - 2 * inset
    ramp = np.linspace(1.0, 0.0, length, dtype=np.float32)[:, None].repeat(BAR_WIDTH, 1)
    bar = apply_colormap(ramp, colormap)
    label_width = max(text_width(label, SMALL_PX) for _, label in ticks) if ticks else 0
    caption_width = SMALL_PX + 6 if caption else 0
    width = MARGIN + BAR_WIDTH + 4 + label_width + MARGIN + caption_width
    image, draw = _canvas(height, width)
    image.paste(_pil(bar), (MARGIN, inset))
    font = _font(SMALL_PX)
    for position, label in ticks:
        y = inset + int(round((1.0 - position) * (length - 1)))
        draw.line([(MARGIN + BAR_WIDTH, y), (MARGIN + BAR_WIDTH + 3, y)], fill=FOREGROUND)
        draw.text((MARGIN + BAR_WIDTH + 5, y - SMALL_PX // 2 - 1), label, fill=FOREGROUND, font=font)
    out = np.asarray(image).copy()
    if caption:
        side, side_draw = _canvas(caption_width, height)
        side_draw.text((max(0, (height - text_width(caption, SMALL_PX)) // 2), 2), caption, fill=MUTED, font=font)
        out[:, -caption_width:] = np.rot90(np.asarray(side), 1)[:, :caption_width]
    return out


def swatches(entries: list[tuple[tuple[int, int, int], str]], height: int) -> np.ndarray:
    """A key of colours: a square of each colour and its name, one per row, as many rows as fit
    in ``height`` (the rest counted in a last row)."""
    row = SMALL_PX + 6
    fits = max(1, height // row)
    shown = entries if len(entries) <= fits else entries[:fits - 1]
    lines = [name for _, name in shown] + ([f"... {len(entries) - len(shown)} more"] if len(shown) < len(entries) else [])
    width = MARGIN + SMALL_PX + 6 + max(text_width(t, SMALL_PX) for t in lines) + MARGIN if lines else MARGIN
    image, draw = _canvas(max(height, row), width)
    font = _font(SMALL_PX)
    for i, text in enumerate(lines):
        y = i * row + 2
        if i < len(shown):
            draw.rectangle([MARGIN, y + 1, MARGIN + SMALL_PX, y + SMALL_PX + 1], fill=tuple(int(c) for c in shown[i][0]),
                           outline=MUTED)
        draw.text((MARGIN + SMALL_PX + 6, y), text, fill=FOREGROUND, font=font)
    return np.asarray(image)


def value_ticks(lo: float, hi: float, count: int = 5) -> list[tuple[float, str]]:
    """Evenly spaced ticks from ``lo`` (position 0) to ``hi`` (position 1), labelled by value."""
    if not hi > lo:
        return [(0.0, format_value(lo))]
    return [(i / (count - 1), format_value(lo + (hi - lo) * i / (count - 1))) for i in range(count)]


def number_tiles(picture: np.ndarray, layout, factor: int, first: int = 0) -> np.ndarray:
    """Each tile's channel index (``first`` + its place) on an enlarged tiled grid: in the tile's
    corner where the tiles are large enough, else each row's first index in a margin on the left."""
    from PIL import Image, ImageDraw

    th, tw = layout.tile_h * factor, layout.tile_w * factor
    widest = text_width(str(first + layout.count - 1), SMALL_PX) + 4
    if th >= SMALL_PX + 4 and tw >= widest:
        image = Image.fromarray(np.ascontiguousarray(picture[..., :3] if picture.ndim == 3 else
                                                     np.repeat(picture[..., None], 3, 2)))
        draw = ImageDraw.Draw(image)
        font = _font(SMALL_PX)
        for i in range(layout.count):
            y, x = (v * factor for v in layout.origin(i))
            label = str(first + i)
            draw.rectangle([x, y, x + text_width(label, SMALL_PX) + 3, y + SMALL_PX + 2], fill=BACKGROUND)
            draw.text((x + 2, y), label, fill=FOREGROUND, font=font)
        return np.asarray(image)
    margin, draw = _canvas(picture.shape[0], widest + MARGIN)
    font = _font(SMALL_PX)
    for row in range(layout.rows):
        y = row * (layout.tile_h + layout.pad) * factor
        draw.text((2, y), str(first + row * layout.cols), fill=FOREGROUND, font=font)
    rgb = picture if picture.ndim == 3 else np.repeat(picture[..., None], 3, 2)
    return np.hstack([np.asarray(margin), rgb[..., :3]])


def ticks_along(scale, length: int, count: int) -> list[tuple[int, str]]:
    """(pixel, label) ticks along an axis ``length`` pixels long. ``scale`` is either (first,
    last), the values at the first and last pixel, or an int n: n cells (channels, taps) indexed
    0..n-1, ticked at their centres with whole numbers."""
    if isinstance(scale, int):
        indices = np.unique(np.linspace(0, scale - 1, min(count, scale)).round().astype(int))
        return [(int((i + 0.5) * length / scale), str(i)) for i in indices]
    first, last = scale
    return [(int(round(f * (length - 1))), format_value(first + (last - first) * f))
            for f in np.linspace(0.0, 1.0, count)]


def axes_left(y_ticks) -> int:
    """The left margin :func:`axes` leaves for these y ticks and the axis name."""
    tick_width = max((text_width(t, SMALL_PX) for _, t in y_ticks), default=0)
    return MARGIN + SMALL_PX + 6 + (tick_width + 6 if y_ticks else 0)


def axes(picture: np.ndarray, x_label: str, y_label: str, x_scale=None, y_scale=None, ticks: int = 5,
         min_left: int = 0) -> np.ndarray:
    """``picture`` (a heat map or plot whose columns run along x and rows down y) with tick
    labels below and on the left and the axes' names; see :func:`ticks_along` for the scales. Without
    a scale an axis carries its name only. ``min_left`` lines up plots stacked above each other."""
    h, w = picture.shape[:2]
    x_ticks = ticks_along(x_scale, w, ticks) if x_scale is not None else []
    y_ticks = ticks_along(y_scale, h, ticks) if y_scale is not None else []
    left = max(min_left, axes_left(y_ticks))
    top = SMALL_PX // 2 + 1  # room for the first y label, centred on its tick
    bottom = (SMALL_PX + 6 if x_ticks else 0) + SMALL_PX + 8
    image, draw = _canvas(top + h + bottom, left + w + MARGIN + SMALL_PX)
    image.paste(_pil(picture), (left, top))
    font = _font(SMALL_PX)
    for x, label in x_ticks:
        draw.line([(left + x, top + h), (left + x, top + h + 3)], fill=FOREGROUND)
        tx = min(max(0, left + x - text_width(label, SMALL_PX) // 2), left + w + SMALL_PX - text_width(label, SMALL_PX))
        draw.text((tx, top + h + 4), label, fill=FOREGROUND, font=font)
    for y, label in y_ticks:
        draw.line([(left - 4, top + y), (left - 1, top + y)], fill=FOREGROUND)
        draw.text((left - 6 - text_width(label, SMALL_PX), top + y - SMALL_PX // 2 - 1), label, fill=FOREGROUND,
                  font=font)
    draw.text((left + max(0, (w - text_width(x_label, SMALL_PX)) // 2), top + h + bottom - SMALL_PX - 4), x_label,
              fill=MUTED, font=font)
    out = np.asarray(image).copy()
    side, side_draw = _canvas(SMALL_PX + 4, h)
    side_draw.text((max(0, (h - text_width(y_label, SMALL_PX)) // 2), 0), y_label, fill=MUTED, font=font)
    out[top:top + h, MARGIN // 2:MARGIN // 2 + SMALL_PX + 4] = np.rot90(np.asarray(side), 1)
    return out


def figure(picture: np.ndarray, title: str, details: str = "", bar: np.ndarray | None = None) -> np.ndarray:
    """``picture`` under a title strip, with ``bar`` (a colour bar) on its right."""
    rgb = picture if picture.ndim == 3 else np.repeat(picture[..., None], 3, 2)
    rgb = rgb[..., :3]
    body = rgb
    if bar is not None:
        height = max(rgb.shape[0], bar.shape[0])
        body = np.hstack([pad_to(rgb, height, rgb.shape[1]), pad_to(bar, height, bar.shape[1])])
    width = max(body.shape[1], MIN_WIDTH)
    body = pad_to(body, body.shape[0], width)
    return np.vstack([title_strip(title, width, details), body])


def pad_to(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """``image`` (RGB) at the top left of a ``height`` x ``width`` figure background."""
    out = np.empty((height, width, 3), np.uint8)
    out[:] = BACKGROUND
    out[:image.shape[0], :image.shape[1]] = image[..., :3]
    return out


def _pil(array: np.ndarray):
    from PIL import Image

    rgb = array if array.ndim == 3 else np.repeat(array[..., None], 3, 2)
    return Image.fromarray(np.ascontiguousarray(rgb[..., :3]))

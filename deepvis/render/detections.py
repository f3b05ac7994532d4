"""A detector's boxes drawn on a picture: a coloured frame per detection, its label and score
on a tab above it (inside the picture when the box touches the top edge)."""

import numpy as np

from deepvis.render.figure import SMALL_PX, _font, _pil
from deepvis.render.colormaps import voc_palette

LINE_PX = 2


def detection_colour(index: int) -> tuple[int, int, int]:
    """One colour per class, VOC's palette without its black background."""
    return tuple(int(v) for v in voc_palette(256)[1 + index % 255])


def draw_detections(image: np.ndarray, boxes, captions, classes=None) -> np.ndarray:
    """``image`` (RGB uint8) with each box (x0, y0, x1, y1 in its pixels) framed and captioned;
    ``classes`` colour the frames by class (default: by rank)."""
    from PIL import ImageDraw

    picture = _pil(image).copy()
    draw = ImageDraw.Draw(picture)
    font = _font(SMALL_PX)
    h, w = image.shape[:2]
    # The weakest first, so the best detection's frame and caption end on top.
    order = list(range(len(boxes)))[::-1]
    for i in order:
        x0, y0, x1, y1 = (float(v) for v in boxes[i])
        x0, x1 = sorted((min(max(x0, 0), w - 1), min(max(x1, 0), w - 1)))
        y0, y1 = sorted((min(max(y0, 0), h - 1), min(max(y1, 0), h - 1)))
        colour = detection_colour(classes[i] if classes is not None else i)
        draw.rectangle((x0, y0, x1, y1), outline=colour, width=LINE_PX)
        text = str(captions[i])
        tw = int(font.getlength(text)) + 6
        th = SMALL_PX + 4
        ty = y0 - th if y0 >= th else y0
        tx = min(x0, max(0, w - tw))
        draw.rectangle((tx, ty, tx + tw, ty + th), fill=colour)
        ink = (0, 0, 0) if sum(colour) > 380 else (255, 255, 255)
        draw.text((tx + 3, ty + 1), text, fill=ink, font=font)
    return np.asarray(picture)

"""Ground-truth masks: reading them as class indices, conventions, resizing, finding them.

A mask is an int64 (H, W) array of class ids with ``IGNORE`` (255) for pixels nobody
labelled. Palette PNGs (PASCAL VOC's) are read as their indices, never through RGB (which
would turn VOC's cream-coloured 255 border into a colour); grey uint8/uint16 PNGs and
``.npy`` files are indices already; RGB masks need a colour -> id table. Cityscapes'
``labelIds`` become its 19 ``trainIds``. Masks are resized with nearest neighbours only: an
interpolated id is a different class.
"""

import json
from pathlib import Path

import numpy as np

from deepvis.errors import DeepvisError

IGNORE = 255
MASK_SUFFIXES = (".png", ".npy", ".bmp", ".tif", ".tiff")
GT_SUFFIXES = ("_gt", "_mask", "_label", "_labels", "_gtFine_labelIds", "_gtFine_labelTrainIds", "")

# Cityscapes labelIds -> trainIds (the 19 evaluated classes); every other id is ignored.
CITYSCAPES_TRAIN_IDS = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12,
                        26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}
CITYSCAPES_LABELS = ["road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
                     "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle",
                     "bicycle"]


def cityscapes_train_ids(label_ids: np.ndarray) -> np.ndarray:
    table = np.full(256, IGNORE, np.int64)
    for label_id, train_id in CITYSCAPES_TRAIN_IDS.items():
        table[label_id] = train_id
    ids = np.asarray(label_ids)
    if ids.min() < 0 or ids.max() > 255:
        raise DeepvisError(f"not Cityscapes labelIds: values from {ids.min()} to {ids.max()}")
    return table[ids.astype(np.int64)]


MAX_CLASS_ID = 2**31 - 1  # class ids of a colour table: non-negative and int32 (a mask's pixels)


def read_colour_table(path) -> dict[tuple[int, int, int], int]:
    """A colour -> id table: JSON ``{"R,G,B": id}`` or ``[[R, G, B], ...]`` (index = id).
    Every colour is three integers in 0..255, every id an integer in 0..2^31-1."""
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise DeepvisError(f"cannot read the colour table {path}: {exc}") from None
    shape = f"{path}: expected {{\"R,G,B\": id}} or a list of [R, G, B] colours"
    try:
        if isinstance(raw, dict):
            pairs = [([v.strip() for v in key.split(",")], value) for key, value in raw.items()]
        elif isinstance(raw, list):
            pairs = [(colour, index) for index, colour in enumerate(raw)]
        else:
            raise TypeError
        table = {}
        for colour, index in pairs:
            if isinstance(colour, (str, bytes)) or len(colour) != 3:
                raise DeepvisError(f"{path}: colour {colour!r} is not three values R, G, B")
            rgb = tuple(_whole(v) for v in colour)
            if not all(0 <= v <= 255 for v in rgb):
                raise DeepvisError(f"{path}: colour {list(rgb)} has a value outside 0..255")
            index = _whole(index)
            if not 0 <= index <= MAX_CLASS_ID:
                raise DeepvisError(f"{path}: class id {index} for colour {list(rgb)} is outside 0..{MAX_CLASS_ID}")
            table[rgb] = index
    except (ValueError, TypeError, AttributeError):
        raise DeepvisError(shape) from None
    if not table:
        raise DeepvisError(f"{path}: the colour table is empty")
    return table


def _whole(value) -> int:
    """An integer from JSON: 3 or "3", not 3.5, true or null."""
    if isinstance(value, bool) or value is None:
        raise ValueError(value)
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(value)
    return int(value)


def read_mask(path, colours: dict | None = None, convention: str | None = None) -> np.ndarray:
    """A ground-truth mask as int64 (H, W) ids (``IGNORE`` for unlabelled pixels).

    ``convention``: None/``voc`` (ids as stored; VOC's 255 border is IGNORE already) or
    ``cityscapes`` (labelIds mapped to trainIds).
    """
    path = Path(path)
    if not path.is_file():
        raise DeepvisError(f"cannot read mask {path}: no such file")
    if path.suffix.lower() == ".npy":
        try:
            ids = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DeepvisError(f"cannot read mask {path}: {exc}") from None
        if ids.ndim != 2 or not (np.issubdtype(ids.dtype, np.integer) or np.issubdtype(ids.dtype, np.bool_)):
            raise DeepvisError(f"mask {path} must be a 2-D integer array, got {ids.dtype} {ids.shape}")
        if ids.size == 0:
            raise DeepvisError(f"mask {path} is empty ({ids.shape[1]}x{ids.shape[0]} pixels)")
    else:
        ids = _read_mask_image(path, colours)
    ids = ids.astype(np.int64)
    if convention == "cityscapes":
        ids = cityscapes_train_ids(ids)
    elif convention not in (None, "voc"):
        raise DeepvisError(f"unknown mask convention {convention!r}: expected voc or cityscapes")
    return ids


def _read_mask_image(path: Path, colours) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            if mode == "P":
                return np.asarray(img)  # palette indices, not the palette's colours
            if mode in ("L", "I", "I;16", "I;16B", "I;16L", "1"):
                return np.asarray(img).astype(np.int64)
            rgb = np.asarray(img.convert("RGB"))
    except (OSError, UnidentifiedImageError, SyntaxError) as exc:
        raise DeepvisError(f"cannot read mask {path}: corrupt or not an image ({exc})") from None
    if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
        return rgb[..., 0].astype(np.int64)  # a grey mask saved as RGB
    if colours is None:
        raise DeepvisError(f"{path} is a colour mask: give its colour -> class table (--gt-colors FILE)")
    ids = np.full(rgb.shape[:2], IGNORE, np.int64)
    packed = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    found = np.zeros(rgb.shape[:2], bool)
    for (r, g, b), index in colours.items():
        hit = packed == ((r << 16) | (g << 8) | b)
        ids[hit] = index
        found |= hit
    if not found.all():
        r, g, b = rgb[~found][0]
        raise DeepvisError(f"{path}: colour ({r}, {g}, {b}) is not in the colour table ({int((~found).sum())} "
                           f"pixels)")
    return ids


def resize_mask(mask: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize (an interpolated id would be another class)."""
    if mask.shape == tuple(hw):
        return mask
    from deepvis.io.images import quiet_cv2

    cv2 = quiet_cv2()
    return cv2.resize(mask.astype(np.int32), (hw[1], hw[0]), interpolation=cv2.INTER_NEAREST).astype(np.int64)


def fit_mask(mask: np.ndarray, image_hw: tuple[int, int], path="the mask") -> np.ndarray:
    """The mask at the picture's size: equal, or the same aspect ratio (a resized copy), else an error."""
    h, w = image_hw
    mh, mw = mask.shape
    if (mh, mw) == (h, w):
        return mask
    if abs(mh / mw - h / w) > 0.01:
        raise DeepvisError(f"{path} is {mw}x{mh}, the image {w}x{h}: different shapes cannot be matched pixel by "
                           f"pixel")
    return resize_mask(mask, (h, w))


def check_classes(mask: np.ndarray, classes: int, path="the mask") -> None:
    """Refuse ids the model does not have (IGNORE aside)."""
    ids = np.unique(mask)
    bad = ids[(ids != IGNORE) & ((ids < 0) | (ids >= classes))]
    if bad.size:
        raise DeepvisError(f"{path} has class {int(bad[0])}, but the model has {classes} classes (0..{classes - 1}; "
                           f"{IGNORE} is ignored)")


def find_mask(image: Path, folder: Path) -> Path | None:
    """The ground truth of ``image`` in ``folder``: ``img.png`` <- ``img_gt.png``, ``img_mask.png``,
    ``img.png`` in a mask folder (VOC's SegmentationClass), Cityscapes' ``*_leftImg8bit`` ->
    ``*_gtFine_labelIds``."""
    stem = image.stem
    stems = [stem]
    if stem.endswith("_leftImg8bit"):
        stems.insert(0, stem[:-len("_leftImg8bit")])
    for base in stems:
        for suffix in GT_SUFFIXES:
            for ext in MASK_SUFFIXES:
                candidate = folder / f"{base}{suffix}{ext}"
                if candidate.is_file() and candidate.resolve() != image.resolve():
                    return candidate
    return None


def mask_as_seen(mask: np.ndarray, image_hw: tuple[int, int], model_hw: tuple[int, int], fit: str = "crop",
                 path="the mask") -> np.ndarray:
    """A picture's ground truth cut and resized (nearest) as the model sees the picture: the
    truth for each pixel of the model's input."""
    from deepvis.segmentation.dense import seen_box

    mask = fit_mask(mask, image_hw, path)
    y0, y1, x0, x1 = seen_box(image_hw, model_hw, fit)
    return resize_mask(mask[y0:y1, x0:x1], model_hw)

"""Collections of labelled images to embed: the bundled digits, an image folder, recorded frames.

A dataset is a list of items read on demand, each with an optional label and file path, and a
``key`` that changes whenever its content does (the feature cache is keyed by it).
"""

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from deepvis.errors import DeepvisError
from deepvis.io.images import IMAGE_SUFFIXES, quiet_cv2, read_image


@dataclass
class Dataset:
    name: str
    key: str  # changes when the content does
    labels: list[str | None]
    paths: list[str | None]
    _read: Callable[[int], np.ndarray] = field(repr=False)

    def __len__(self) -> int:
        return len(self.labels)

    def image(self, index: int) -> np.ndarray:
        """Item ``index`` as uint8 (H, W) or (H, W, 3); raises DeepvisError for an unreadable file."""
        return self._read(index)

    @property
    def labelled(self) -> bool:
        return any(label is not None for label in self.labels)


def digits_dataset(augmented: int = 0, seed: int = 0) -> Dataset:
    """scikit-learn's 1,797 8x8 digits as bright ink on black, labelled "0".."9".

    ``augmented`` > 0 adds that many variants made by small random shifts, rotations and
    noise (the benchmark's 10,000 real, overlapping digit features).
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.clip(digits.images * (255.0 / 16.0), 0, 255).astype(np.uint8)
    labels = [str(int(t)) for t in digits.target]
    if augmented > 0:
        extra, extra_labels = _augment(images, digits.target, augmented, seed)
        images = np.concatenate([images, extra])
        labels += [str(int(t)) for t in extra_labels]
    name = "digits" if augmented == 0 else f"digits+{augmented}"
    return Dataset(name, f"sklearn-digits:{augmented}:{seed}", labels, [None] * len(labels),
                   lambda i: images[i])


def _augment(images: np.ndarray, targets: np.ndarray, count: int, seed: int):
    cv2 = quiet_cv2()
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(images), count)
    out = np.empty((count, 8, 8), np.uint8)
    for k, i in enumerate(picks):
        angle = rng.uniform(-12, 12)
        dx, dy = rng.uniform(-1, 1, 2)
        m = cv2.getRotationMatrix2D((3.5, 3.5), angle, 1.0)
        m[:, 2] += (dx, dy)
        warped = cv2.warpAffine(images[i].astype(np.float32), m, (8, 8), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT)
        out[k] = np.clip(warped + rng.normal(0, 10, (8, 8)), 0, 255).astype(np.uint8)
    return out, targets[picks]


def folder_dataset(path: str | Path) -> Dataset:
    """Every image under ``path``; the label is the first-level subfolder's name (none for
    images directly in ``path``)."""
    root = Path(path)
    if not root.is_dir():
        raise DeepvisError(f"{root} is not a folder")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise DeepvisError(f"no images in {root} (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    labels = [p.relative_to(root).parts[0] if len(p.relative_to(root).parts) > 1 else None for p in files]
    digest = hashlib.blake2b(digest_size=16)
    for p in files:
        stat = p.stat()
        entry = f"{p.relative_to(root)}\0{stat.st_size}\0{stat.st_mtime_ns}\n"
        digest.update(entry.encode("utf-8", "surrogateescape"))  # names need not be UTF-8
    return Dataset(root.name or str(root), f"folder:{root.resolve()}:{digest.hexdigest()}", labels,
                   [str(p) for p in files], lambda i: read_image(files[i]))


def frames_dataset(frames: Sequence[np.ndarray], name: str = "recorded frames",
                   labels: Sequence[str | None] | None = None) -> Dataset:
    """Frames recorded from the live input, kept in memory."""
    if not frames:
        raise DeepvisError("no frames recorded yet: record some from the live input first")
    frames = [np.ascontiguousarray(f) for f in frames]
    digest = hashlib.blake2b(digest_size=16)
    for f in frames:
        digest.update(f.tobytes())
    labels = list(labels) if labels is not None else [None] * len(frames)
    return Dataset(name, f"frames:{digest.hexdigest()}", labels, [None] * len(frames), lambda i: frames[i])


def samples_dataset(crops: int = 15, seed: int = 0) -> Dataset:
    """The bundled photos, each whole and as ``crops`` random square crops (a third to two
    thirds of its short side): enough distinct views for unit profiles when the user has no
    image folder of their own. Labelled by photo."""
    from deepvis.resources import sample_images

    photos = [(p.stem, read_image(p)) for p in sample_images()]
    rng = np.random.default_rng(seed)
    views: list[tuple[str, tuple[int, int, int]]] = []  # (photo, (y, x, side)); side 0 = whole photo
    for name, image in photos:
        views.append((name, (0, 0, 0)))
        h, w = image.shape[:2]
        for _ in range(crops):
            side = int(rng.uniform(1 / 3, 2 / 3) * min(h, w))
            views.append((name, (int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1)), side)))
    images = dict(photos)

    def read(i: int) -> np.ndarray:
        name, (y, x, side) = views[i]
        image = images[name]
        return image if side == 0 else image[y:y + side, x:x + side]

    return Dataset("bundled photos", f"samples:{[n for n, _ in photos]}:{crops}:{seed}", [n for n, _ in views],
                   [None] * len(views), read)


def open_dataset(spec: str, augmented: int = 0) -> Dataset:
    """``digits``, ``samples`` (the bundled photos and crops of them) or a folder path."""
    if str(spec).lower() == "digits":
        return digits_dataset(augmented)
    if str(spec).lower() == "samples":
        return samples_dataset()
    return folder_dataset(spec)

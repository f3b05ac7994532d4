"""A generated image folder to build atlases from in tests and benchmarks: scikit-learn's
digits (augmented past 1,797 by small shifts and rotations) as PNGs in one folder per label,
with unreadable files mixed in, as a real data lake has them."""

from pathlib import Path

import numpy as np

from deepvis.io.datasets import digits_dataset

CORRUPT = {"3/truncated.png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "7/empty.png": b"",
           "not-an-image.jpg": b"plain text, not a JPEG\n"}


def write_digit_folder(root: str | Path, count: int, seed: int = 0, corrupt: bool = True) -> list[str]:
    """``count`` digit PNGs under ``root``/<label>/ (plus the ``CORRUPT`` files); returns the
    readable images' paths relative to ``root``."""
    from PIL import Image

    root = Path(root)
    dataset = digits_dataset(augmented=max(0, count - 1797), seed=seed)
    written = []
    for i in range(count):
        name = f"{dataset.labels[i]}/digit-{i:06d}.png"
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.ascontiguousarray(dataset.image(i))).save(path)
        written.append(name)
    if corrupt:
        for name, data in CORRUPT.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(data)
    return written


def write_photo_folder(root: str | Path, count: int, seed: int = 0, size: tuple[int, int] = (320, 240)) -> int:
    """``count`` distinct JPEGs under ``root``/<photo>/: seeded random crops of the bundled
    photos at ``size`` (width, height), a folder of the kind the ImageNet models see."""
    from PIL import Image

    from deepvis.io.images import read_image
    from deepvis.resources import sample_images

    root = Path(root)
    rng = np.random.default_rng(seed)
    photos = [(p.stem, read_image(p)) for p in sample_images()]
    for i in range(count):
        name, image = photos[i % len(photos)]
        h, w = image.shape[:2]
        side = int(rng.uniform(0.4, 1.0) * min(h, w))
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        crop = Image.fromarray(image[y:y + side, x:x + side]).resize(size, Image.BILINEAR)
        path = root / name / f"{name}-{i:06d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        crop.save(path, quality=90)
    return count

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

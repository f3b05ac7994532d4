"""What the atlas tests share: the folder's size, the layers kept, and row lookup by path."""

import numpy as np

COUNT = 2500
LAYERS = ["conv2", "relu4"]  # a spatial map and the feature vector before the head
OPTIONS = {"source": "digits_cnn", "device": "cpu"}


def by_path(atlas, array: np.ndarray, paths) -> np.ndarray:
    index = {p: i for i, p in enumerate(atlas.rows()["path"])}
    return array[[index[p] for p in paths]]


def write_noise_images(root, count: int, side: int = 16) -> list[str]:
    """``count`` grey noise pictures in two label folders (a/, b/) under ``root``, seeded by
    their index: small atlases for the lock, source and interrupt tests. Returns their paths."""
    from PIL import Image

    paths = []
    for i in range(count):
        folder = root / "ab"[i % 2]
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{'ab'[i % 2]}/x{i:04d}.png"
        Image.fromarray((np.random.default_rng(i).random((side, side)) * 255).astype(np.uint8)).save(root / name)
        paths.append(name)
    return paths

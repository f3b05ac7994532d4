"""Sequences in the HPatches layout made from pictures: for each, a viewpoint sequence (the
picture and random homographies of it) and an illumination sequence (the picture and
photometric changes, the homography the identity). The bundled photos made into such
sequences are the correspondence evaluation set the self-supervised descriptor never saw."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

VARIANTS = 5  # images 2..6 of each sequence, as HPatches has


def viewpoint_homography(rng: np.random.Generator, width: int, height: int, strength: float) -> np.ndarray:
    """A homography about the centre: rotation, scale, shear, perspective; ``strength`` 0..1."""
    angle = rng.uniform(-0.4, 0.4) * strength
    scale = math.exp(rng.uniform(-0.3, 0.3) * strength)
    shear = rng.uniform(-0.15, 0.15) * strength
    c, s = math.cos(angle), math.sin(angle)
    a = np.array([[c, -s], [s, c]]) @ np.array([[scale, shear], [0, scale]])
    centre = np.array([width / 2 - 0.5, height / 2 - 0.5])
    h = np.eye(3)
    h[:2, :2] = a
    h[:2, 2] = centre - a @ centre + rng.uniform(-0.06, 0.06, 2) * np.array([width, height]) * strength
    h[2, :2] = rng.uniform(-0.001, 0.001, 2) * strength * 240 / max(width, height)
    return h


def illumination(rng: np.random.Generator, picture: np.ndarray, strength: float) -> np.ndarray:
    x = picture.astype(np.float32) / 255
    x = x ** math.exp(rng.uniform(-0.6, 0.6) * strength)
    x = x * math.exp(rng.uniform(-0.5, 0.3) * strength) + rng.uniform(-0.1, 0.1) * strength
    x = x * (1 + rng.uniform(-0.2, 0.2, 3) * strength)
    return (np.clip(x, 0, 1) * 255).astype(np.uint8)


def write_sequences(pictures: dict[str, np.ndarray], root, seed: int = 0, variants: int = VARIANTS) -> Path:
    """``pictures`` (name -> RGB uint8) as v_<name>/ and i_<name>/ under ``root``, each with
    ``variants`` images of growing change (HPatches has five: 2..6)."""
    from deepvis.io.images import quiet_cv2, write_image

    cv2 = quiet_cv2()
    root = Path(root)
    rng = np.random.default_rng(seed)
    for name, picture in pictures.items():
        height, width = picture.shape[:2]
        view, light = root / f"v_{name}", root / f"i_{name}"
        view.mkdir(parents=True, exist_ok=True)
        light.mkdir(parents=True, exist_ok=True)
        write_image(view / "1.png", picture)
        write_image(light / "1.png", picture)
        for k in range(2, variants + 2):
            strength = (k - 1) / variants
            h = viewpoint_homography(rng, width, height, strength)
            write_image(view / f"{k}.png", cv2.warpPerspective(picture, h, (width, height), flags=cv2.INTER_LINEAR,
                                                               borderMode=cv2.BORDER_CONSTANT))
            np.savetxt(view / f"H_1_{k}", h)
            write_image(light / f"{k}.png", illumination(rng, picture, strength))
            np.savetxt(light / f"H_1_{k}", np.eye(3))
    return root


def bundled_photo_sequences(root, width: int = 160, height: int = 120, seed: int = 0) -> Path:
    """The bundled photos (resources/images), centre-cropped and shrunk to width x height, as
    sequences under ``root``."""
    from deepvis.core.inputspec import crop_box, resample
    from deepvis.io.images import read_image
    from deepvis.resources import sample_images

    pictures = {}
    for path in sample_images():
        photo = read_image(path)
        y0, y1, x0, x1 = crop_box(*photo.shape[:2], width / height)
        pictures[path.stem] = resample(np.ascontiguousarray(photo[y0:y1, x0:x1]), height, width)
    return write_sequences(pictures, root, seed)

"""Make resources/maco/magnitude.npy: the natural-image Fourier magnitude MACO keeps fixed.

MACO (Fel et al., NeurIPS 2023) optimizes only the phase of a picture's spectrum and holds its
magnitude at that of natural images. The published template is averaged over ImageNet and is
a download (horama's PyTorch code fetches it at run time); this one is averaged over random
crops of the CC0 colour photos scikit-image ships (the bundled photos are four of them), so
the project makes it offline and reproducibly:

    python resources/generate/make_maco_template.py

Each crop is 256x256, taken from the photo rescaled by a random factor (0.35..1), weighted by
a Hann window (without it, the crop's edges put a bright cross through the spectrum and the
pictures grow horizontal and vertical bars), and transformed per colour channel with
``norm="ortho"`` (so the magnitude does not depend on the size). The mean magnitude over all
crops, (3, 256, 129) float16, is saved with the photos' names.
"""

from pathlib import Path

import cv2
import numpy as np
from skimage import data

SIZE = 256
CROPS_PER_PHOTO = 96
OUT = Path(__file__).resolve().parents[1] / "maco" / "magnitude.npy"


def photos():
    left, right, _ = data.stereo_motorcycle()
    return {"astronaut": data.astronaut(), "chelsea": data.chelsea(), "coffee": data.coffee(),
            "rocket": data.rocket(), "motorcycle_left": left, "motorcycle_right": right}


def main() -> None:
    rng = np.random.default_rng(0)
    window = np.outer(np.hanning(SIZE), np.hanning(SIZE)).astype(np.float32)
    window /= np.sqrt((window ** 2).mean())  # the windowed crop keeps its power
    total = np.zeros((3, SIZE, SIZE // 2 + 1), np.float64)
    count = 0
    for name, photo in photos().items():
        photo = photo[..., :3].astype(np.float32) / 255.0
        for _ in range(CROPS_PER_PHOTO):
            scale = rng.uniform(0.35, 1.0)
            h, w = photo.shape[:2]
            scale = max(scale, SIZE / min(h, w))
            small = cv2.resize(photo, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
            y = rng.integers(0, small.shape[0] - SIZE + 1)
            x = rng.integers(0, small.shape[1] - SIZE + 1)
            crop = small[y:y + SIZE, x:x + SIZE].transpose(2, 0, 1)
            crop = (crop - crop.mean(axis=(1, 2), keepdims=True)) * window
            total += np.abs(np.fft.rfft2(crop, norm="ortho"))
            count += 1
    magnitude = (total / count).astype(np.float16)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.save(OUT, magnitude)
    print(f"{count} crops of {', '.join(photos())} -> {OUT} {magnitude.shape}")


if __name__ == "__main__":
    main()

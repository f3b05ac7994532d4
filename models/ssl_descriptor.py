"""SSLDescriptor: a dense local descriptor learned without labels (the lecture's self-supervised
learning: "always think if there are free training labels").

The free labels are geometry: a random homography and photometric change of an unlabelled
picture give, for every pixel of the picture, its position in the changed copy. The network
(a small fully convolutional net, output stride 4, 64-d) is trained so that a pixel's
descriptor is closer to the descriptor of its true correspondence than to the descriptors of
every other sampled pixel of the copy: InfoNCE over pixels (van den Oord et al. 2018;
pixel-level as in Dense Contrastive Learning and the learned matchers the lecture shows),
with the sampled pixels of the copy as negatives, hard by construction (most are from the
same picture), except those within ``NEGATIVE_EXCLUSION_PX`` of the positive (a near miss is
not a different place).

The pictures are procedural only, made here, never photos: multi-octave value noise in
colour, random ellipses, rectangles, lines and stripes over it, random blur. The bundled
photos are kept for the evaluation (``deepvis match --eval`` on their warps), which the
training never sees.

``forward(x)`` returns the descriptor grid (N, 64, H/4, W/4) (unit length per cell);
``deepvis.matching.dense.describe`` upsamples it to the picture. Retrain with::

    python -m deepvis.models.ssl_descriptor [--steps N] [--seed S] [--out PATH]
"""

from __future__ import annotations

import math
import pathlib
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from deepvis.models import WEIGHTS_DIR

DESCRIPTOR = 64
SIDE = 128  # training pictures are SIDE x SIDE
NEGATIVE_EXCLUSION_PX = 4.0
TEMPERATURE = 0.07
POINTS = 256  # sampled correspondences per pair


class SSLDescriptor(nn.Module):
    def __init__(self):
        super().__init__()

        def block(cin, cout, stride=1):
            return [nn.Conv2d(cin, cout, 3, stride, 1), nn.BatchNorm2d(cout), nn.ReLU()]

        self.stem = nn.Sequential(*block(3, 24))
        self.down1 = nn.Sequential(*block(24, 48, 2), *block(48, 48))
        self.down2 = nn.Sequential(*block(48, 96, 2), *block(96, 96), *block(96, 96))
        self.head = nn.Conv2d(96, DESCRIPTOR, 1)

    def forward(self, x):
        return F.normalize(self.head(self.down2(self.down1(self.stem(x)))), dim=1)


def weights_path() -> pathlib.Path:
    return WEIGHTS_DIR / "ssl_descriptor.pt"


# --- procedural pictures -------------------------------------------------------------------

def value_noise(rng: np.random.Generator, side: int, octaves: int = 5) -> np.ndarray:
    """Colour value noise of several octaves, (side, side, 3) in [0, 1]."""
    out = np.zeros((side, side, 3), np.float32)
    weight_sum = 0.0
    for octave in range(octaves):
        cells = 2 ** (octave + 2)
        coarse = torch.from_numpy(rng.random((1, 3, cells, cells), dtype=np.float32))
        fine = F.interpolate(coarse, size=(side, side), mode="bicubic", align_corners=False)[0].permute(1, 2, 0)
        weight = 0.6 ** octave
        out += weight * fine.numpy()
        weight_sum += weight
    return np.clip(out / weight_sum, 0, 1)


def procedural_picture(rng: np.random.Generator, side: int = SIDE) -> np.ndarray:
    """A made-up scene: value noise with shapes, lines and stripes drawn over it, (side, side, 3) uint8."""
    from PIL import Image, ImageDraw, ImageFilter

    base = (value_noise(rng, side) * 255).astype(np.uint8)
    image = Image.fromarray(base)
    draw = ImageDraw.Draw(image)
    for _ in range(rng.integers(4, 14)):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        x0, y0 = rng.integers(-side // 4, side, 2)
        w, h = rng.integers(6, side // 2, 2)
        kind = rng.integers(0, 4)
        if kind == 0:
            draw.ellipse([x0, y0, x0 + w, y0 + h], fill=colour)
        elif kind == 1:
            draw.rectangle([x0, y0, x0 + w, y0 + h], fill=colour)
        elif kind == 2:
            draw.line([(x0, y0), (x0 + w, y0 + h)], fill=colour, width=int(rng.integers(1, 5)))
        else:
            for k in range(int(rng.integers(2, 6))):  # a patch of stripes
                offset = k * int(rng.integers(3, 8))
                draw.line([(x0 + offset, y0), (x0 + offset, y0 + h)], fill=colour, width=2)
    if rng.random() < 0.3:
        image = image.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 1.2))))
    return np.asarray(image)


def random_homography(rng: np.random.Generator, side: int) -> np.ndarray:
    """A homography about the picture's centre: rotation, anisotropic scale, shear, perspective
    and translation of sizes a camera moving around a scene gives."""
    angle = rng.uniform(-0.5, 0.5)
    scale = math.exp(rng.uniform(-0.35, 0.35))
    aspect = math.exp(rng.uniform(-0.15, 0.15))
    shear = rng.uniform(-0.15, 0.15)
    c, s = math.cos(angle), math.sin(angle)
    a = np.array([[c, -s], [s, c]]) @ np.array([[scale * aspect, shear], [0, scale / aspect]])
    centre = np.array([side / 2 - 0.5, side / 2 - 0.5])
    t = centre - a @ centre + rng.uniform(-0.12, 0.12, 2) * side
    h = np.eye(3)
    h[:2, :2], h[:2, 2] = a, t
    h[2, :2] = rng.uniform(-0.0015, 0.0015, 2)
    return h


def photometric(rng: np.random.Generator, picture: np.ndarray) -> np.ndarray:
    x = picture.astype(np.float32) / 255
    x = x ** math.exp(rng.uniform(-0.4, 0.4))  # gamma
    x = x * rng.uniform(0.6, 1.3) + rng.uniform(-0.12, 0.12)  # contrast and brightness
    x = x * rng.uniform(0.85, 1.15, 3)  # colour cast
    x = x + rng.normal(0, rng.uniform(0, 0.03), x.shape)
    return (np.clip(x, 0, 1) * 255).astype(np.uint8)


def warp(picture: np.ndarray, h: np.ndarray) -> np.ndarray:
    from deepvis.io.images import quiet_cv2

    cv2 = quiet_cv2()
    return cv2.warpPerspective(picture, h, picture.shape[1::-1], flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT_101)


def training_pair(rng: np.random.Generator, side: int = SIDE):
    """(A, B, points of A (n, 2) x y, their positions in B (n, 2)): B is A warped by a random
    homography and changed in colour; the points are drawn where their image is inside B."""
    a = procedural_picture(rng, side)
    h = random_homography(rng, side)
    b = photometric(rng, warp(a, h))
    a = photometric(rng, a) if rng.random() < 0.5 else a
    candidates = rng.uniform(4, side - 5, (POINTS * 4, 2))
    mapped = np.concatenate([candidates, np.ones((len(candidates), 1))], 1) @ h.T
    mapped = mapped[:, :2] / mapped[:, 2:3]
    keep = ((mapped >= 4) & (mapped <= side - 5)).all(1)
    return a, b, candidates[keep][:POINTS], mapped[keep][:POINTS]


def _sample(grid: torch.Tensor, points: torch.Tensor, side: int) -> torch.Tensor:
    """(C, h, w) descriptor grid at pixel positions (n, 2) x y of a side x side picture -> (n, C), unit length."""
    normalised = (points + 0.5) / side * 2 - 1  # align_corners=False: pixel centres
    sampled = F.grid_sample(grid[None], normalised[None, None].float(), mode="bilinear", align_corners=False)
    return F.normalize(sampled[0, :, 0].T, dim=1)


def info_nce(grid_a: torch.Tensor, grid_b: torch.Tensor, points_a: torch.Tensor, points_b: torch.Tensor,
             side: int) -> torch.Tensor:
    da, db = _sample(grid_a, points_a, side), _sample(grid_b, points_b, side)
    logits = da @ db.T / TEMPERATURE
    near = torch.cdist(points_b, points_b) < NEGATIVE_EXCLUSION_PX
    near.fill_diagonal_(False)
    logits = logits.masked_fill(near, float("-inf"))
    return F.cross_entropy(logits, torch.arange(len(da)))


def normalised(pictures: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> the network's input (ImageNet's mean and std, as the zoo declares)."""
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    return (torch.from_numpy(pictures).float().permute(0, 3, 1, 2) / 255 - mean) / std


def train(steps: int = 2000, batch: int = 8, seed: int = 0, lr: float = 1e-3, progress=print) -> SSLDescriptor:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = SSLDescriptor()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    started = time.perf_counter()
    running = None
    for step in range(steps):
        pairs = [training_pair(rng) for _ in range(batch)]
        x = normalised(np.stack([p[0] for p in pairs] + [p[1] for p in pairs]))
        grids = model(x)
        loss = sum(info_nce(grids[k], grids[batch + k], torch.from_numpy(pairs[k][2]), torch.from_numpy(pairs[k][3]),
                            SIDE) for k in range(batch)) / batch
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        value = float(loss.detach())
        running = value if running is None else 0.98 * running + 0.02 * value
        if progress is not None and (step % 100 == 0 or step == steps - 1):
            progress(f"step {step + 1}/{steps}  loss {running:.3f}  {time.perf_counter() - started:.0f} s")
    return model.eval()


def main(argv=None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="train the self-supervised descriptor on procedural pictures")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(weights_path()))
    args = parser.parse_args(argv)
    model = train(args.steps, seed=args.seed)
    torch.save(model.state_dict(), args.out)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()

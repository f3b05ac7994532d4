"""VoxSegNet: a small 3-D convolutional net that labels every occupied voxel with a part.

VoxNet-style dense 3-D convolutions in a two-level encoder-decoder (a tiny 3-D U-Net) over a
32^3 occupancy grid, with a global max-pooled context vector added at the bottleneck: a
chair leg and a table leg look the same locally, and only the whole shape tells them apart.

Input is (B, 1, R, R, R) float occupancy (1 = a surface point falls in the voxel), indexed
[x, y, z] with y up, as made by ``deepvis.shapes3d.parts.voxelize`` from a cloud in the unit
sphere; R must be a multiple of 4 (32 for the committed weights). Output is
(B, parts, R, R, R) logits over ``deepvis.shapes3d.parts.PART_NAMES``; only occupied voxels mean
anything, and ``segment`` marks the rest ``parts3d.BACKGROUND``.

Trained on voxelized procedural shapes from ``deepvis.shapes3d.parts`` (no download), fresh ones
every epoch, at 32^3 in batches of 8; the defaults (20 epochs of 50 shapes per category)
take about 7.5 minutes on one CPU core. Retrain and overwrite the committed weights with::

    OMP_NUM_THREADS=1 python -m deepvis.models.voxnet [--epochs N] [--shapes N] [--seed S] [--out PATH]

(One thread: on a busy two-core machine, two threads ran several times slower.)
"""

from __future__ import annotations

import argparse
import pathlib
import time

import numpy as np
import torch
from torch import nn

from deepvis.shapes3d import parts as parts3d
from deepvis.errors import DeepvisError
from deepvis.models import WEIGHTS_DIR, read_checkpoint
from deepvis.models.segmenters import load_part_segmenter

RESOLUTION = 32
VOXEL_POINTS = 16384
"""Points sampled per shape before voxelizing: enough that the surface leaves few holes at 32^3."""
HELD_OUT_SEED = 1000
"""``parts3d.make_dataset`` seed of the held-out shapes; training never uses it."""


def _conv(cin: int, cout: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv3d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False),
                         nn.BatchNorm3d(cout), nn.ReLU())


class VoxSegNet(nn.Module):
    """Per-voxel part logits (B, parts, R, R, R) from occupancy (B, 1, R, R, R)."""

    def __init__(self, num_parts: int = len(parts3d.PART_NAMES)):
        super().__init__()
        self.num_parts = num_parts
        self.enc1 = _conv(1, 16)  # R
        self.down1 = _conv(16, 32, stride=2)  # R/2
        self.enc2 = _conv(32, 32)
        self.down2 = _conv(32, 64, stride=2)  # R/4
        self.enc3 = _conv(64, 64)
        self.global_context = nn.Linear(64, 64)
        self.up2 = nn.ConvTranspose3d(64, 32, 2, stride=2)  # R/2
        self.dec2 = _conv(32 + 32, 32)
        self.up1 = nn.ConvTranspose3d(32, 16, 2, stride=2)  # R
        # 1x1 at full resolution: the 3x3 convs below already saw the neighbourhood, and a
        # 3x3 here would cost as much as the rest of the net together.
        self.dec1 = _conv(16 + 16, 16, kernel=1)
        self.out = nn.Conv3d(16, num_parts, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5 or x.shape[1] != 1 or any(s % 4 for s in x.shape[2:]):
            raise DeepvisError(f"VoxSegNet expects occupancy as (B, 1, R, R, R) with R a multiple of 4, got {tuple(x.shape)}")
        e1 = self.enc1(x)
        e2 = self.enc2(self.down1(e1))
        e3 = self.enc3(self.down2(e2))
        g = self.global_context(e3.amax(dim=(2, 3, 4)))
        e3 = e3 + g[:, :, None, None, None]
        d2 = self.dec2(torch.cat([self.up2(e3), e2], dim=1))
        d1 = self.dec1(torch.cat([self.up1(d2), e1], dim=1))
        return self.out(d1)


@torch.no_grad()
def segment(model: VoxSegNet, occupancy, category=None, batch_size: int = 8) -> np.ndarray:
    """Int64 part labels for bool (B, R, R, R) occupancy (or one (R, R, R) grid): occupied
    voxels get one category's parts (``category``, (B,) indices or names, or None to let the
    voxels vote), empty ones ``parts3d.BACKGROUND``."""
    occ = np.asarray(occupancy, dtype=bool)
    single = occ.ndim == 3
    if single:
        occ = occ[None]
    if occ.ndim != 4:
        raise DeepvisError(f"expected occupancy as (R, R, R) or (B, R, R, R), got {tuple(np.shape(occupancy))}")
    if category is not None:
        category = parts3d.category_indices(category, len(occ))
    model.eval()
    device = next(model.parameters()).device
    labels = []
    for i in range(0, len(occ), batch_size):
        chunk = occ[i : i + batch_size]
        x = torch.from_numpy(chunk.astype(np.float32))[:, None].to(device)
        logits = model(x).cpu().numpy()
        cat = None if category is None else category[i : i + batch_size]
        labels.append(parts3d.labels_from_logits(logits, cat, valid=chunk))
    labels = np.concatenate(labels)
    return labels[0] if single else labels


def segment_points(model: VoxSegNet, points, category=None, resolution: int = RESOLUTION) -> np.ndarray:
    """Int64 (N,) part labels for one (N, 3) cloud in the unit sphere: each point takes its voxel's."""
    grid = segment(model, parts3d.voxelize(points, resolution), category)
    ijk = parts3d.voxel_indices(points, resolution)
    return grid[ijk[:, 0], ijk[:, 1], ijk[:, 2]]


def voxel_dataset(n_per_category: int, seed: int, first: int = 0, resolution: int = RESOLUTION):
    """Occupancy (M, R, R, R) bool, labels (M, R, R, R) int64 and categories (M,) of fresh shapes."""
    X, y, cat = parts3d.make_dataset(n_per_category, VOXEL_POINTS, seed, first=first)
    labels = np.stack([parts3d.voxelize_labels(p, l, resolution) for p, l in zip(X, y)])
    return labels >= 0, labels, cat


def held_out(n_per_category: int = 10, resolution: int = RESOLUTION):
    """Voxelized fresh shapes from ``HELD_OUT_SEED``, which no training run draws from."""
    return voxel_dataset(n_per_category, HELD_OUT_SEED, resolution=resolution)


def _augment(occ: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    # Quarter turns about y and mirror images keep y up and the grid exact (no resampling);
    # the shapes already come at random angles, this only multiplies what a batch shows.
    if torch.rand(()) < 0.5:
        occ, labels = occ.transpose(2, 4), labels.transpose(1, 3)  # swap x and z
    for dim in (2, 4):
        if torch.rand(()) < 0.5:
            occ, labels = occ.flip(dim), labels.flip(dim - 1)
    return occ.contiguous(), labels.contiguous()


def part_weights(labels: np.ndarray, num_parts: int) -> torch.Tensor:
    """Loss weight per part: 1/sqrt of its share of occupied voxels, averaging 1 over voxels.

    Engines, handles and guitar heads hold a few percent of the voxels; unweighted, the net
    learns to paint them as the big part next to them, which per-part IoU punishes hard.
    """
    counts = np.bincount(labels[labels >= 0], minlength=num_parts).astype(np.float64)
    share = counts / counts.sum()
    weights = np.where(counts > 0, 1.0 / np.sqrt(np.maximum(share, 1e-12)), 0.0)
    return torch.tensor(weights / (share * weights).sum(), dtype=torch.float32)


def train(epochs: int = 20, seed: int = 0, shapes_per_epoch: int = 50, batch_size: int = 8,
          progress=None) -> VoxSegNet:
    """Train from scratch; every epoch voxelizes ``shapes_per_epoch`` fresh shapes per category.

    The loss is cross-entropy over occupied voxels only (empty ones are known from the input),
    weighted by ``part_weights`` of the first epoch's shapes.
    ``progress``, if given, is called as ``progress(epoch, mean_loss, accuracy)``.
    """
    if seed == HELD_OUT_SEED:
        raise DeepvisError(f"seed {HELD_OUT_SEED} is reserved for the held-out shapes; pick another")
    torch.manual_seed(seed)
    model = VoxSegNet()
    per_epoch = shapes_per_epoch * len(parts3d.CATEGORY_NAMES)
    steps = epochs * -(-per_epoch // batch_size)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=steps, pct_start=0.1)
    loss_fn = None
    model.train()
    for epoch in range(epochs):
        occ, labels, _ = voxel_dataset(shapes_per_epoch, seed, first=epoch * shapes_per_epoch)
        if loss_fn is None:
            loss_fn = nn.CrossEntropyLoss(weight=part_weights(labels, model.num_parts), ignore_index=parts3d.BACKGROUND)
        occ = torch.from_numpy(occ.astype(np.float32))[:, None]
        labels = torch.from_numpy(labels)
        order = torch.randperm(len(occ))
        total, correct, count = 0.0, 0, 0
        for start in range(0, len(occ), batch_size):
            idx = order[start : start + batch_size]
            if len(idx) < 2:  # batch norm needs two samples
                continue
            x, t = _augment(occ[idx], labels[idx])
            logits = model(x)
            loss = loss_fn(logits, t)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += loss.item() * len(idx)
            valid = t >= 0
            correct += int((logits.argmax(dim=1)[valid] == t[valid]).sum())
            count += int(valid.sum())
        if progress is not None:
            progress(epoch, total / len(occ), correct / max(count, 1))
    model.eval()
    return model


def majority_parts(labels: np.ndarray, cat: np.ndarray) -> dict[int, int]:
    """Per category index, its most common part among occupied voxels of ``labels``."""
    out = {}
    for c in np.unique(cat):
        voxels = labels[cat == c]
        out[int(c)] = int(np.bincount(voxels[voxels >= 0]).argmax())
    return out


def majority_baseline(occ: np.ndarray, cat: np.ndarray, majority: dict[int, int]) -> np.ndarray:
    """Labels that give every occupied voxel its category's majority part."""
    parts = np.array([majority[int(c)] for c in cat])[:, None, None, None]
    return np.where(occ, parts, parts3d.BACKGROUND)


def scores(pred: np.ndarray, labels: np.ndarray, cat: np.ndarray) -> dict:
    """Accuracy over occupied voxels and ShapeNet-style mIoU (empty voxels ignored)."""
    occupied = labels >= 0
    flat = len(labels)
    result = parts3d.miou(pred.reshape(flat, -1), labels.reshape(flat, -1), cat)
    return {"accuracy": float((pred[occupied] == labels[occupied]).mean()), "miou": result.instance,
            "class_miou": result.category_mean, "per_category": result.per_category}


def evaluate(model: VoxSegNet, occ: np.ndarray, labels: np.ndarray, cat: np.ndarray) -> dict:
    """Scores with the true category given (as for ShapeNet) and with the voted one."""
    known = scores(segment(model, occ, cat), labels, cat)
    voted = scores(segment(model, occ), labels, cat)
    return {**known, "accuracy_unknown_category": voted["accuracy"], "miou_unknown_category": voted["miou"]}


def weights_path() -> pathlib.Path:
    """Where the committed trained weights live."""
    return WEIGHTS_DIR / "voxnet_parts.pt"


def load_checkpoint(path: pathlib.Path | None = None) -> tuple[dict, dict]:
    """The saved state dict and its metadata (part names, categories, resolution, scores)."""
    return read_checkpoint(weights_path() if path is None else path)


def load_pretrained() -> VoxSegNet:
    """The committed trained model, on the CPU, in eval mode."""
    return load_part_segmenter(VoxSegNet, weights_path(), "deepvis.models.voxnet")


def _main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m deepvis.models.voxnet", description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20, help="passes, each over fresh shapes (default 20)")
    parser.add_argument("--shapes", type=int, default=50, help="new shapes per category per epoch (default 50)")
    parser.add_argument("--seed", type=int, default=0, help="torch and shape seed; the committed weights use 0")
    parser.add_argument("--out", type=pathlib.Path, default=weights_path(), help="where to save the weights")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    model = train(args.epochs, args.seed, args.shapes,
                  progress=lambda e, loss, acc: print(f"epoch {e + 1:3d}  loss {loss:.4f}  train acc {acc:.4f}  "
                                                      f"{time.perf_counter() - t0:.0f} s", flush=True))
    elapsed = time.perf_counter() - t0

    n_eval = 30
    occ, labels, cat = held_out(n_eval)
    result = evaluate(model, occ, labels, cat)
    # The baseline's majority parts come from training shapes, as a model's knowledge would.
    _, train_labels, train_cat = voxel_dataset(args.shapes, args.seed)
    majority = majority_parts(train_labels, train_cat)
    baseline = scores(majority_baseline(occ, cat, majority), labels, cat)
    print(f"trained in {elapsed:.0f} s; held-out ({n_eval} shapes per category, seed {HELD_OUT_SEED}, {RESOLUTION}^3):")
    print(f"  VoxSegNet: occupied-voxel accuracy {result['accuracy']:.4f}, instance mIoU {result['miou']:.4f}, "
          f"class mIoU {result['class_miou']:.4f}; with voted category {result['accuracy_unknown_category']:.4f} / "
          f"{result['miou_unknown_category']:.4f}")
    print("    " + ", ".join(f"{c} {v:.3f}" for c, v in result["per_category"].items()))
    print(f"  per-category majority part: accuracy {baseline['accuracy']:.4f}, instance mIoU {baseline['miou']:.4f}")

    meta = {
        "part_names": list(parts3d.PART_NAMES),
        "categories": {c: list(ids) for c, ids in parts3d.CATEGORIES.items()},
        "resolution": RESOLUTION,
        "voxel_points": VOXEL_POINTS,
        "held_out_seed": HELD_OUT_SEED,
        "held_out_shapes_per_category": n_eval,
        "held_out_accuracy": result["accuracy"],
        "held_out_miou": result["miou"],
        "held_out_accuracy_unknown_category": result["accuracy_unknown_category"],
        "held_out_miou_unknown_category": result["miou_unknown_category"],
        "majority_accuracy": baseline["accuracy"],
        "majority_miou": baseline["miou"],
        "epochs": args.epochs,
        "shapes_per_epoch": args.shapes,
        "seed": args.seed,
        "train_seconds": round(elapsed, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": model.state_dict(), "meta": meta}, args.out)
    print(f"saved {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    _main()

"""PointNet part segmentation (Qi et al., 2017), small enough to train on a laptop CPU.

The architecture follows the paper's segmentation network: an input transform (a T-Net
predicting a 3x3 matrix), a shared per-point MLP, a feature transform (a 64x64 T-Net, kept
near-orthogonal by a regularizer while training), a global max pool, and a per-point head
that sees every point's local features beside the global one. Widths are reduced
(64-64 | 64-128-256 global instead of 64-128-128 | 512-2048) so the weights stay near 2 MB.

Input is (B, 3, N) float points normalized to the unit sphere with y up
(``deepvis.shapes3d.parts.normalize_unit_sphere``); N is free. Output is (B, parts, N) logits over
every part of every category in ``deepvis.shapes3d.parts.PART_NAMES``. Unlike the paper there is no
one-hot category input, so clouds of unknown category work too: ``segment`` restricts each
shape to one category's parts, the given one or the one its points vote for.

``critical_points`` returns, per global feature channel, the index of the point that wins
the max pool: the points that decide the global shape descriptor.

Trained on procedural shapes from ``deepvis.shapes3d.parts`` (no download), fresh ones every epoch,
1,024 points each; the defaults (40 epochs of 100 shapes per category) take 8-10 minutes on
one CPU core. Retrain and overwrite the committed weights with::

    OMP_NUM_THREADS=1 python -m deepvis.models.pointnet [--epochs N] [--shapes N] [--points N] [--seed S] [--out PATH]

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

POINTS = 2048
"""Points per shape in the reported evaluation (the network takes any number)."""
TRAIN_POINTS = 1024
"""Points per training shape: half the cost per step, and the max pool does not mind density."""
HELD_OUT_SEED = 1000
"""``parts3d.make_dataset`` seed of the held-out shapes; training never uses it."""
FEATURE_REG_WEIGHT = 1e-3  # the paper's weight for ||I - A A^T||^2


class TNet(nn.Module):
    """Predicts a (k, k) matrix from a (B, k, N) cloud: shared MLP, max pool, two dense layers."""

    def __init__(self, k: int, widths: tuple[int, int] = (64, 128), hidden: int = 64):
        super().__init__()
        self.k = k
        self.conv1 = nn.Conv1d(k, widths[0], 1)
        self.bn1 = nn.BatchNorm1d(widths[0])
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv1d(widths[0], widths[1], 1)
        self.bn2 = nn.BatchNorm1d(widths[1])
        self.relu2 = nn.ReLU()
        self.fc1 = nn.Linear(widths[1], hidden)
        self.bn3 = nn.BatchNorm1d(hidden)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(hidden, k * k)
        # Start at the identity, so an untrained transform leaves the cloud alone.
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.relu2(self.bn2(self.conv2(x)))
        x = x.max(dim=2).values
        x = self.relu3(self.bn3(self.fc1(x)))
        eye = torch.eye(self.k, device=x.device, dtype=x.dtype)
        return self.fc2(x).view(-1, self.k, self.k) + eye


class GlobalMaxPool(nn.Module):
    """(B, C, N) -> (B, C): the symmetric function that makes PointNet order-invariant."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.max(dim=2).values


class PointNetSeg(nn.Module):
    """Per-point part logits (B, parts, N) from points (B, 3, N)."""

    def __init__(self, num_parts: int = len(parts3d.PART_NAMES)):
        super().__init__()
        self.num_parts = num_parts
        self.input_transform = TNet(3)
        self.conv1 = nn.Conv1d(3, 64, 1)
        self.bn1 = nn.BatchNorm1d(64)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv1d(64, 64, 1)
        self.bn2 = nn.BatchNorm1d(64)
        self.relu2 = nn.ReLU()
        self.feature_transform = TNet(64)
        self.conv3 = nn.Conv1d(64, 64, 1)
        self.bn3 = nn.BatchNorm1d(64)
        self.relu3 = nn.ReLU()
        self.conv4 = nn.Conv1d(64, 128, 1)
        self.bn4 = nn.BatchNorm1d(128)
        self.relu4 = nn.ReLU()
        self.conv5 = nn.Conv1d(128, 256, 1)
        self.bn5 = nn.BatchNorm1d(256)
        # The pool takes bn5's output and the ReLU comes after it: relu(max) == max(relu), so
        # the global feature is the paper's, but no channel is a tie of zeros, and every
        # channel has one well-defined critical point.
        self.global_pool = GlobalMaxPool()
        self.global_relu = nn.ReLU()
        # The paper's first head layer is a 1x1 conv over [local features, global feature]
        # concatenated; split into its local and global halves it computes the same thing
        # without copying the global feature to every point, a fifth of the training time.
        self.seg_conv1 = nn.Conv1d(64 + 64 + 64 + 128, 128, 1)
        self.seg_global = nn.Linear(256, 128, bias=False)
        self.seg_bn1 = nn.BatchNorm1d(128)
        self.seg_relu1 = nn.ReLU()
        self.seg_conv2 = nn.Conv1d(128, 64, 1)
        self.seg_bn2 = nn.BatchNorm1d(64)
        self.seg_relu2 = nn.ReLU()
        self.seg_out = nn.Conv1d(64, num_parts, 1)

    def _point_features(self, x: torch.Tensor):
        if x.dim() != 3 or x.shape[1] != 3:
            raise DeepvisError(f"PointNet expects points as (B, 3, N), got {tuple(x.shape)}")
        x = torch.bmm(self.input_transform(x), x)
        f1 = self.relu1(self.bn1(self.conv1(x)))
        f2 = self.relu2(self.bn2(self.conv2(f1)))
        transform = self.feature_transform(f2)
        f2 = torch.bmm(transform, f2)
        f3 = self.relu3(self.bn3(self.conv3(f2)))
        f4 = self.relu4(self.bn4(self.conv4(f3)))
        return [f1, f2, f3, f4], self.bn5(self.conv5(f4)), transform

    def forward_with_transform(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and the (B, 64, 64) feature transform, which the training loss regularizes."""
        local, pre_pool, transform = self._point_features(x)
        g = self.global_relu(self.global_pool(pre_pool))
        h = self.seg_conv1(torch.cat(local, dim=1)) + self.seg_global(g)[:, :, None]
        h = self.seg_relu1(self.seg_bn1(h))
        h = self.seg_relu2(self.seg_bn2(self.seg_conv2(h)))
        return self.seg_out(h), transform

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_transform(x)[0]

    def critical_points(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 256) long index of the point that wins each global channel's max pool, and the
        (B, 256) global feature (after its ReLU) those points produce."""
        _, pre_pool, _ = self._point_features(x)
        values, indices = pre_pool.max(dim=2)
        return indices, self.global_relu(values)


def feature_transform_regularizer(transform: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ||I - A A^T||_F^2: keeps the feature transform near a rotation."""
    eye = torch.eye(transform.shape[1], device=transform.device, dtype=transform.dtype)
    gram = torch.bmm(transform, transform.transpose(1, 2))
    return ((gram - eye) ** 2).sum(dim=(1, 2)).mean()


@torch.no_grad()
def segment(model: PointNetSeg, points, category=None, batch_size: int = 32) -> np.ndarray:
    """Int64 (B, N) part labels for float (B, N, 3) points (or one (N, 3) cloud -> (N,)).

    Each shape gets labels of one category only: ``category`` (B,) indices into
    ``parts3d.CATEGORY_NAMES`` (or names), or None to let its points vote.
    """
    pts = np.asarray(points, dtype=np.float32)
    single = pts.ndim == 2
    if single:
        pts = pts[None]
    if pts.ndim != 3 or pts.shape[2] != 3:
        raise DeepvisError(f"expected points as (N, 3) or (B, N, 3), got {tuple(np.shape(points))}")
    if category is not None:
        category = parts3d.category_indices(category, len(pts))
    model.eval()
    device = next(model.parameters()).device
    logits = np.concatenate([
        model(torch.from_numpy(pts[i : i + batch_size]).transpose(1, 2).to(device)).cpu().numpy()
        for i in range(0, len(pts), batch_size)
    ])
    labels = parts3d.labels_from_logits(logits, category)
    return labels[0] if single else labels


def _augment(x: torch.Tensor) -> torch.Tensor:
    # The shapes only ever turn about y (up), so do the augmentation; a per-axis scale and
    # jitter make it robust to the proportions and noise of clouds it has not seen.
    b = x.shape[0]
    angle = torch.rand(b) * 2 * torch.pi
    c, s = torch.cos(angle), torch.sin(angle)
    rot = torch.zeros(b, 3, 3)
    rot[:, 0, 0], rot[:, 0, 2], rot[:, 1, 1], rot[:, 2, 0], rot[:, 2, 2] = c, s, 1, -s, c
    scale = torch.empty(b, 3, 1).uniform_(0.8, 1.25)
    jitter = (0.01 * torch.randn_like(x)).clamp_(-0.03, 0.03)
    return scale * torch.bmm(rot, x) + jitter


def train(epochs: int = 40, seed: int = 0, shapes_per_epoch: int = 100, points: int = TRAIN_POINTS,
          batch_size: int = 16, progress=None) -> PointNetSeg:
    """Train from scratch; every epoch draws ``shapes_per_epoch`` fresh shapes per category.

    Procedural data is free, so instead of repeating a fixed set the run sees new shapes
    each epoch (shapes epoch*n ... of seed ``seed``) and cannot memorize them.
    ``progress``, if given, is called as ``progress(epoch, mean_loss, accuracy)``.
    """
    if seed == HELD_OUT_SEED:
        raise DeepvisError(f"seed {HELD_OUT_SEED} is reserved for the held-out shapes; pick another")
    torch.manual_seed(seed)
    model = PointNetSeg()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    per_epoch = shapes_per_epoch * len(parts3d.CATEGORY_NAMES)
    steps = epochs * -(-per_epoch // batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2e-3, total_steps=steps, pct_start=0.1)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for epoch in range(epochs):
        X, y, _ = parts3d.make_dataset(shapes_per_epoch, points, seed, first=epoch * shapes_per_epoch)
        X = torch.from_numpy(X).transpose(1, 2)
        y = torch.from_numpy(y)
        order = torch.randperm(len(X))
        total, correct = 0.0, 0
        for start in range(0, len(X), batch_size):
            idx = order[start : start + batch_size]
            if len(idx) < 2:  # batch norm needs two samples
                continue
            logits, transform = model.forward_with_transform(_augment(X[idx]))
            loss = loss_fn(logits, y[idx]) + FEATURE_REG_WEIGHT * feature_transform_regularizer(transform)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += loss.item() * len(idx)
            correct += int((logits.argmax(dim=1) == y[idx]).sum())
        if progress is not None:
            progress(epoch, total / len(X), correct / y.numel())
    model.eval()
    return model


def held_out(n_per_category: int = 10, points: int = POINTS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fresh shapes from ``HELD_OUT_SEED``, which no training run draws from."""
    return parts3d.make_dataset(n_per_category, points, HELD_OUT_SEED)


def evaluate(model: PointNetSeg, X: np.ndarray, y: np.ndarray, cat: np.ndarray) -> dict:
    """Instance mIoU with the true category (the ShapeNet protocol) and with the category the
    points vote for, per-category mIoU, and point accuracy."""
    known = segment(model, X, cat)
    voted = segment(model, X)
    result = parts3d.miou(known, y, cat)
    return {
        "miou": result.instance,
        "class_miou": result.category_mean,
        "per_category": result.per_category,
        "miou_unknown_category": parts3d.miou(voted, y, cat).instance,
        "accuracy": float((known == y).mean()),
    }


def weights_path() -> pathlib.Path:
    """Where the committed trained weights live."""
    return WEIGHTS_DIR / "pointnet_parts.pt"


def load_checkpoint(path: pathlib.Path | None = None) -> tuple[dict, dict]:
    """The saved state dict and its metadata (part names, categories, points, held-out scores)."""
    return read_checkpoint(weights_path() if path is None else path)


def load_pretrained() -> PointNetSeg:
    """The committed trained model, on the CPU, in eval mode."""
    return load_part_segmenter(PointNetSeg, weights_path(), "deepvis.models.pointnet")


def _main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m deepvis.models.pointnet", description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40, help="passes, each over fresh shapes (default 40)")
    parser.add_argument("--shapes", type=int, default=100, help="new shapes per category per epoch (default 100)")
    parser.add_argument("--points", type=int, default=TRAIN_POINTS, help=f"points per training shape (default {TRAIN_POINTS})")
    parser.add_argument("--seed", type=int, default=0, help="torch and shape seed; the committed weights use 0")
    parser.add_argument("--out", type=pathlib.Path, default=weights_path(), help="where to save the weights")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    model = train(args.epochs, args.seed, args.shapes, args.points,
                  progress=lambda e, loss, acc: print(f"epoch {e + 1:3d}  loss {loss:.4f}  train acc {acc:.4f}  "
                                                      f"{time.perf_counter() - t0:.0f} s", flush=True))
    elapsed = time.perf_counter() - t0
    n_eval = 50
    scores = evaluate(model, *held_out(n_eval))
    print(f"trained in {elapsed:.0f} s; held-out ({n_eval} shapes per category, seed {HELD_OUT_SEED}): "
          f"instance mIoU {scores['miou']:.4f}, class mIoU {scores['class_miou']:.4f}, "
          f"mIoU with voted category {scores['miou_unknown_category']:.4f}, accuracy {scores['accuracy']:.4f}")
    print("  " + ", ".join(f"{c} {v:.3f}" for c, v in scores["per_category"].items()))

    meta = {
        "part_names": list(parts3d.PART_NAMES),
        "categories": {c: list(ids) for c, ids in parts3d.CATEGORIES.items()},
        "points": POINTS,
        "train_points": args.points,
        "held_out_seed": HELD_OUT_SEED,
        "held_out_shapes_per_category": n_eval,
        "held_out_miou": scores["miou"],
        "held_out_class_miou": scores["class_miou"],
        "held_out_miou_unknown_category": scores["miou_unknown_category"],
        "held_out_accuracy": scores["accuracy"],
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

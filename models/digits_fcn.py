"""DigitsFCN: a small fully convolutional network that segments scenes of 8x8 digits.

A scene (``make_scenes``) is a dark 64x64 canvas with 2-4 of scikit-learn's 8x8 digits pasted
at random, non-overlapping places, each upscaled x2 or x3 (16x16 or 24x24). Every pixel is
labelled with one of ``NUM_CLASSES`` = 11 classes: 0 is background, digit d is class d + 1
(``LABELS``); a pixel belongs to a digit where that digit's upscaled ink exceeds
``INK_THRESHOLD``. Training scenes are built from the training split of
``digits_cnn.load_split`` only, held-out scenes from its test split only.

The network follows FCN-8s (Long et al., 2015) at toy scale: a VGG-like encoder of three
conv-conv-pool blocks down to stride 8, two "fully connected" convolutions at stride 8
(``conv4``, ``conv5``), a 1x1 class-score layer there (``score_fr``) and 1x1 score layers on
the finer encoder maps (``score_pool2`` at stride 4, ``score_pool1`` at stride 2,
``score_conv1`` at full resolution). Scores are upsampled by learned 2x transposed
convolutions (``upscore2``, ``upscore_pool2``, ``upscore_pool1``) and added to the next finer
score map, so the coarse layers decide *which* digit and the fine ones *where* its ink is.

Input is (N, 1, H, W) float in [0, 1], ink bright; output is (N, 11, H, W) logits. H and W
may be anything: sizes that are not multiples of ``STRIDE`` (8) are zero-padded (background)
on the bottom/right and the logits cropped back.

Trained on fresh scenes every epoch; the defaults (20 epochs of 1,000 scenes) take 75-95 s on
two CPU cores (several times longer when other work shares them) and reach a held-out pixel
accuracy of 0.995 and mIoU of 0.957. Retrain and overwrite the committed weights with::

    python -m deepvis.models.digits_fcn [--epochs N] [--scenes N] [--seed S] [--out PATH]
"""

from __future__ import annotations

import functools
import pathlib

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from deepvis.models import WEIGHTS_DIR, load_committed
from deepvis.models.digits_cnn import load_split
from deepvis.models.recipe import fit, recipe_arguments, save_weights, seeded, steps_per_epoch, timed_training

LABELS = ["background"] + [str(d) for d in range(10)]
NUM_CLASSES = 11
SIZE = 64
"""Side of a generated scene in pixels."""
STRIDE = 8
"""Total downsampling of the encoder; inputs whose sides are multiples of it need no padding."""
SCALES = (2, 3)
"""Upscaling factors of a pasted digit: 16x16 or 24x24 pixels."""
DIGITS_PER_SCENE = (2, 4)
"""Fewest and most digits in a scene (inclusive)."""
INK_THRESHOLD = 0.25
"""A pixel of an upscaled digit is labelled as that digit where its ink is above this (on
[0, 1]). Most of sklearn's ink is above 0.4, and bilinear upscaling adds a fringe of faint
values around each stroke; 0.25 leaves that fringe (and the faintest original pixels, about
a sixth of the non-zero ones) as background and labels the visible stroke."""
HELD_OUT_SEED = 1
"""``make_scenes(200, HELD_OUT_SEED, "test")`` are the scenes the reported scores refer to."""
HELD_OUT_SCENES = 200

_SPLITS = ("train", "test")


CONV_LAYERS = ("conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv4", "conv5")
"""The encoder's convolutions, each followed by a ReLU of the same suffix (``relu1_1`` ...)."""


class DigitsFCN(nn.Module):
    """Three conv-conv-pool blocks to stride 8, two conv "fc" layers, FCN-8s-style decoder.

    With ``batch_norm`` every encoder convolution gets a batch norm (in ``bn``, keyed by the
    conv's name) before its ReLU. Only training uses that variant: ``fold_batch_norm`` merges
    the norms into the convolutions, so the committed model is plain conv-ReLU layers and its
    state dict plain float32 tensors (no integer batch counters).
    """

    def __init__(self, num_classes: int = NUM_CLASSES, widths: tuple[int, int, int, int] = (16, 32, 64, 128),
                 batch_norm: bool = False):
        super().__init__()
        self.num_classes = num_classes
        self.widths = tuple(widths)
        self.batch_norm = batch_norm
        c1, c2, c3, c4 = widths
        # Named attributes rather than nn.Sequential, and separate non-inplace ReLU modules,
        # so hooks can find every layer by a readable name and see its own output.
        self.conv1_1 = nn.Conv2d(1, c1, 3, padding=1)
        self.relu1_1 = nn.ReLU()
        self.conv1_2 = nn.Conv2d(c1, c1, 3, padding=1)
        self.relu1_2 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)  # stride 2
        self.conv2_1 = nn.Conv2d(c1, c2, 3, padding=1)
        self.relu2_1 = nn.ReLU()
        self.conv2_2 = nn.Conv2d(c2, c2, 3, padding=1)
        self.relu2_2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)  # stride 4
        self.conv3_1 = nn.Conv2d(c2, c3, 3, padding=1)
        self.relu3_1 = nn.ReLU()
        self.conv3_2 = nn.Conv2d(c3, c3, 3, padding=1)
        self.relu3_2 = nn.ReLU()
        self.pool3 = nn.MaxPool2d(2)  # stride 8
        # FCN's fc6/fc7 as convolutions. conv4 is 3x3: there a unit sees 52x52 pixels, a whole
        # 24x24 digit and its surroundings, which is what names the digit.
        self.conv4 = nn.Conv2d(c3, c4, 3, padding=1)
        self.relu4 = nn.ReLU()
        self.conv5 = nn.Conv2d(c4, c4, 1)
        self.relu5 = nn.ReLU()
        self.score_fr = nn.Conv2d(c4, num_classes, 1)
        # Each skip is a 1x1 score layer on an encoder map (the pooled outputs, as in FCN-8s,
        # and relu1_2's at full resolution, where strokes are only 2-3 pixels wide); each
        # upscore a learned 2x transposed convolution (kernel 4, stride 2, padding 1: exactly 2x
        # for any size), initialised to bilinear interpolation as in the paper.
        self.upscore2 = _upsampler(num_classes)  # stride 8 -> 4
        self.score_pool2 = nn.Conv2d(c2, num_classes, 1)
        self.upscore_pool2 = _upsampler(num_classes)  # 4 -> 2
        self.score_pool1 = nn.Conv2d(c1, num_classes, 1)
        self.upscore_pool1 = _upsampler(num_classes)  # 2 -> 1
        self.score_conv1 = nn.Conv2d(c1, num_classes, 1)
        # The paper zero-initialises the skip score layers, so training starts from the coarse
        # prediction and lets the finer maps refine it.
        for score in (self.score_pool2, self.score_pool1, self.score_conv1):
            nn.init.zeros_(score.weight)
            nn.init.zeros_(score.bias)
        if batch_norm:
            self.bn = nn.ModuleDict({name: nn.BatchNorm2d(getattr(self, name).out_channels) for name in CONV_LAYERS})

    def _conv(self, name: str, x: torch.Tensor) -> torch.Tensor:
        x = getattr(self, name)(x)
        return self.bn[name](x) if self.batch_norm else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        pad_h, pad_w = -h % STRIDE, -w % STRIDE
        if pad_h or pad_w:  # zeros are background: pad to a multiple of the stride, crop after
            x = F.pad(x, (0, pad_w, 0, pad_h))
        x = self.relu1_1(self._conv("conv1_1", x))
        conv1 = self.relu1_2(self._conv("conv1_2", x))
        pool1 = self.pool1(conv1)
        x = self.relu2_1(self._conv("conv2_1", pool1))
        x = self.relu2_2(self._conv("conv2_2", x))
        pool2 = self.pool2(x)
        x = self.relu3_1(self._conv("conv3_1", pool2))
        x = self.relu3_2(self._conv("conv3_2", x))
        x = self.pool3(x)
        x = self.relu4(self._conv("conv4", x))
        x = self.relu5(self._conv("conv5", x))
        score = self.score_fr(x)
        score = self.upscore2(score) + self.score_pool2(pool2)
        score = self.upscore_pool2(score) + self.score_pool1(pool1)
        score = self.upscore_pool1(score) + self.score_conv1(conv1)
        return score[..., :h, :w]


@torch.no_grad()
def fold_batch_norm(model: DigitsFCN) -> DigitsFCN:
    """A plain ``DigitsFCN`` (no batch norm) that computes what ``model`` computes in eval mode.

    Each norm is an affine map per channel in eval mode, y = (x - mean) * g / sqrt(var + eps) + b,
    so it merges into the convolution before it: weights scaled by g / sqrt(var + eps), bias
    (conv bias - mean) * that + b. A model without batch norm is returned as a copy.
    """
    plain = DigitsFCN(model.num_classes, model.widths)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("bn.")}
    plain.load_state_dict(state)
    if model.batch_norm:
        for name in CONV_LAYERS:
            conv, bn = getattr(plain, name), model.bn[name]
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            conv.weight.mul_(scale[:, None, None, None])
            conv.bias.copy_((conv.bias - bn.running_mean) * scale + bn.bias)
    return plain.eval()


def _upsampler(channels: int) -> nn.ConvTranspose2d:
    up = nn.ConvTranspose2d(channels, channels, 4, stride=2, padding=1, bias=False)
    # Bilinear weights, one channel to itself; the same as the paper's "deconvolution" init.
    f = torch.tensor([0.25, 0.75, 0.75, 0.25])
    with torch.no_grad():
        up.weight.zero_()
        for c in range(channels):
            up.weight[c, c] = torch.outer(f, f)
    return up


# ---------------------------------------------------------------------------------------------
# Scenes


@functools.lru_cache(maxsize=2)
def _split_digits(split: str) -> tuple[np.ndarray, np.ndarray]:
    if split not in _SPLITS:
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    X_train, X_test, y_train, y_test = load_split()
    return (X_train, y_train) if split == "train" else (X_test, y_test)


@functools.lru_cache(maxsize=4)
def _upscaled_split(split: str, scale: int) -> np.ndarray:
    return upscale(_split_digits(split)[0], scale)


def upscale(digits: np.ndarray, scale: int) -> np.ndarray:
    """(N, 1, 8, 8) digits -> (N, 1, 8*scale, 8*scale) float32, bilinear, clipped to [0, 1].

    Bilinear rather than nearest: nearest would turn every 8x8 pixel into a flat 2x2 or 3x3
    block, so scenes would be staircases of blocks and a mask thresholded from them just the
    8x8 mask made blocky. Bilinear gives smooth strokes with soft edges, closer to a
    handwritten digit seen at that size, and a mask outline that follows the stroke.
    """
    x = torch.as_tensor(np.asarray(digits, dtype=np.float32))
    up = F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)
    return up.clamp_(0.0, 1.0).numpy()


def make_scenes(count: int, seed: int, split: str = "train", return_sources: bool = False):
    """``count`` scenes of 2-4 digits: images float32 (count, 1, 64, 64) in [0, 1], masks int64
    (count, 64, 64) with 0 = background and digit d = d + 1. Deterministic in (count, seed,
    split); scene i does not depend on ``count``.

    ``split`` picks the digits: "train" scenes use only the training split of
    ``digits_cnn.load_split``, "test" scenes only its test split. With ``return_sources`` a
    third item lists, per scene, one ``(index, digit, row, col, scale)`` tuple per pasted
    digit: its index into that split, its label, the top-left corner of its box and the
    upscaling factor (the box is 8*scale pixels square).
    """
    X, y = _split_digits(split)
    images = np.zeros((count, 1, SIZE, SIZE), dtype=np.float32)
    masks = np.zeros((count, SIZE, SIZE), dtype=np.int64)
    sources = []
    # One independent stream per (seed, split, scene), so scene i is the same for any count.
    streams = np.random.SeedSequence([seed, _SPLITS.index(split)]).spawn(count)
    for i, stream in enumerate(streams):
        rng = np.random.default_rng(stream)
        placed = _layout(rng, len(X))
        for index, row, col, scale in placed:
            side = 8 * scale
            ink = _upscaled_split(split, scale)[index, 0]
            images[i, 0, row : row + side, col : col + side] = ink
            masks[i, row : row + side, col : col + side] = np.where(ink > INK_THRESHOLD, y[index] + 1, 0)
        sources.append([(index, int(y[index]), row, col, scale) for index, row, col, scale in placed])
    if return_sources:
        return images, masks, sources
    return images, masks


def _layout(rng: np.random.Generator, n_digits: int, tries: int = 50) -> list[tuple[int, int, int, int]]:
    """(index, row, col, scale) of 2-4 digits whose boxes lie inside the canvas, apart."""
    count = int(rng.integers(DIGITS_PER_SCENE[0], DIGITS_PER_SCENE[1] + 1))
    while True:  # start the scene over if a box finds no free place (rare: four 24s crowd)
        boxes = []
        for _ in range(count):
            index = int(rng.integers(n_digits))
            scale = int(rng.choice(SCALES))
            side = 8 * scale
            for _ in range(tries):
                row, col = (int(v) for v in rng.integers(0, SIZE - side + 1, size=2))
                if all(row >= r + 8 * s or r >= row + side or col >= c + 8 * s or c >= col + side
                       for _, r, c, s in boxes):
                    boxes.append((index, row, col, scale))
                    break
            else:
                break
        if len(boxes) == count:
            return boxes


# ---------------------------------------------------------------------------------------------
# Training and evaluation


def train(epochs: int = 20, seed: int = 0, progress=None, scenes: int = 1000, batch_size: int = 32) -> DigitsFCN:
    """Train from scratch on training-split scenes only; deterministic for a given seed.

    Scenes cost nothing to make, so every epoch draws ``scenes`` fresh ones
    (``make_scenes(scenes, seed * 1000 + epoch, "train")``) instead of repeating a fixed set.
    ``progress``, if given, is called as ``progress(epoch, mean_loss)`` after each epoch.
    """
    # Init, shuffling and batch order draw from torch's global generator; the scenes from
    # their own seeds. Seeding torch fixes the whole run.
    seeded(seed)
    model = DigitsFCN(batch_norm=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=epochs * steps_per_epoch(
        scenes, batch_size), pct_start=0.15)

    def data(epoch):
        images, masks = make_scenes(scenes, seed * 1000 + epoch, "train")
        return torch.from_numpy(images), torch.from_numpy(masks)

    fit(model, epochs, data, progress, loss_fn=nn.CrossEntropyLoss(), optimizer=optimizer, scheduler=scheduler,
        batch_size=batch_size, min_batch=2)  # batch norm needs two samples
    return fold_batch_norm(model)


@torch.no_grad()
def predict(model: nn.Module, images, batch_size: int = 50) -> np.ndarray:
    """Int64 (N, H, W) class per pixel of float (N, 1, H, W) images; leaves the model in eval mode."""
    model.eval()
    x = torch.as_tensor(np.asarray(images, dtype=np.float32))
    device = next(model.parameters()).device
    return np.concatenate([
        model(x[i : i + batch_size].to(device)).argmax(dim=1).cpu().numpy() for i in range(0, len(x), batch_size)
    ])


def confusion(model: nn.Module, images, masks) -> np.ndarray:
    """Int64 (11, 11) pixel counts: rows the true class, columns the predicted one."""
    truth = np.asarray(masks, dtype=np.int64).ravel()
    pred = predict(model, images).ravel()
    return np.bincount(truth * NUM_CLASSES + pred, minlength=NUM_CLASSES**2).reshape(NUM_CLASSES, NUM_CLASSES)


def class_iou(conf: np.ndarray) -> np.ndarray:
    """Float (11,) IoU per class from a confusion matrix; NaN for classes absent from the truth."""
    conf = np.asarray(conf, dtype=np.float64)
    tp = np.diag(conf)
    union = conf.sum(axis=0) + conf.sum(axis=1) - tp
    present = conf.sum(axis=1) > 0
    return np.where(present, tp / np.where(union > 0, union, 1.0), np.nan)


def mean_iou(conf: np.ndarray) -> float:
    """Mean IoU over the classes present in the ground truth (rows of ``conf`` with pixels)."""
    return float(np.nanmean(class_iou(conf)))


def pixel_accuracy(conf: np.ndarray) -> float:
    """Share of pixels whose predicted class is the true one."""
    conf = np.asarray(conf)
    return float(np.trace(conf) / conf.sum())


def held_out() -> tuple[np.ndarray, np.ndarray]:
    """The reported evaluation: ``HELD_OUT_SCENES`` test-split scenes of seed ``HELD_OUT_SEED``."""
    return make_scenes(HELD_OUT_SCENES, HELD_OUT_SEED, "test")


def weights_path() -> pathlib.Path:
    """Where the committed trained weights live."""
    return WEIGHTS_DIR / "digits_fcn.pt"


def load_pretrained() -> DigitsFCN:
    """The committed trained model, on the CPU, in eval mode."""
    return load_committed(DigitsFCN(), weights_path().name)


def _main(argv: list[str] | None = None) -> None:
    parser = recipe_arguments("digits_fcn", __doc__, 20, weights_path(), "passes, each over fresh scenes (default 20)",
                              seed_help="torch and scene seed; the committed weights use 0")
    parser.add_argument("--scenes", type=int, default=1000, help="fresh training scenes per epoch (default 1000)")
    args = parser.parse_args(argv)
    model, seconds = timed_training(train, args.epochs, args.seed, scenes=args.scenes)
    conf = confusion(model, *held_out())
    print(f"trained in {seconds:.1f} s; held-out ({HELD_OUT_SCENES} test-split scenes, seed {HELD_OUT_SEED}): "
          f"pixel accuracy {pixel_accuracy(conf):.4f}, mIoU {mean_iou(conf):.4f}")
    print("  IoU " + ", ".join(f"{name} {v:.3f}" for name, v in zip(LABELS, class_iou(conf))))
    save_weights(model, args.out)


if __name__ == "__main__":
    _main()

"""PixelCNNs for scikit-learn's 8x8 digits: a plain one with its blind spot, and a gated one without.

Both models read a digit (N, 1, 8, 8) float in [0, 1] (the sklearn grey level 0..16 divided
by 16, ink bright, as ``digits_cnn``) and return logits (N, 17, 8, 8): for every pixel a
distribution over its 17 grey levels given the pixels before it in raster order (rows above,
and the same row to the left). Sampling draws the 64 pixels one by one, a forward pass each.

``DigitsPixelCNN`` is the plain PixelCNN (van den Oord et al., "Pixel Recurrent Neural
Networks", 2016): a 7x7 mask-A convolution, 3x3 mask-B convolutions with ReLUs, 1x1
convolutions to the logits. Stacked masked convolutions cannot see part of the past: the
field grows up-right by only one column per row, so pixels above and far enough to the right
(the *blind spot*) never influence the prediction. With the 7x7 first layer the blind spot of
output (r, c) is the pixels (r - d, c + e) with d >= 1 and e >= d + 3: on 8x8 digits it shows
in the left half (at (4, 0): row 3 columns 4..7, row 2 columns 5..7, ...), while an output at
column 4 or further right sees every earlier pixel.

``GatedPixelCNN`` is the gated PixelCNN (van den Oord et al., "Conditional Image Generation
with PixelCNN Decoders", 2016): a vertical stack that sees every row above (its input shifted
down one row) and a horizontal stack that sees the pixels to the left in the row plus the
vertical stack, gated activations tanh(a) * sigmoid(b), residual connections in the
horizontal stack. It has no blind spot: every output depends on every earlier pixel.

Data: ``digits_cnn.load_split``, training split only. Retrain and overwrite the committed
weights with::

    python -m deepvis.models.digits_pixelcnn [--kind plain|gated] [--epochs N] [--seed S] [--out PATH]
"""

from __future__ import annotations

import math
import pathlib

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from deepvis.errors import Cancelled
from deepvis.models import WEIGHTS_DIR, load_committed
from deepvis.models.digits_cnn import load_split
from deepvis.models.recipe import (adam_cosine, fit, recipe_arguments, save_weights, seeded, steps_per_epoch,
                                   timed_training)

LEVELS = 17
INPUT_SIZE = (8, 8)
KINDS = ("plain", "gated")
# Passes over the training split for the committed weights (cosine-decayed Adam). The gated
# model overfits the 1347 training digits beyond ~30: trained for 60 epochs its held-out NLL
# rises from 1.77 to 2.18 bits/pixel (its samples, nearer copies of training digits, get
# read with confidence more often, but that is memorisation). The plain one still gains a
# little up to 40.
EPOCHS = {"plain": 40, "gated": 30}


def _levels(x: torch.Tensor) -> torch.Tensor:
    """Float pixels in [0, 1] -> integer grey levels 0..16 (N, 8, 8)."""
    return (x[:, 0] * (LEVELS - 1)).round().long().clamp_(0, LEVELS - 1)


class MaskedConv2d(nn.Conv2d):
    """A square convolution whose kernel only reads pixels before the centre in raster order.

    Mask "A" (first layer) also hides the centre: the output at (r, c) depends on input rows
    above r and on row r left of c. Mask "B" (later layers) lets the centre through, which is
    still causal because the previous layer's (r, c) only saw pixels before (r, c). The mask
    is a non-persistent buffer, so the state dict holds the plain weights only.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, mask_type: str = "B", **kwargs):
        if mask_type not in ("A", "B"):
            raise ValueError(f"mask_type must be 'A' or 'B', not {mask_type!r}")
        kwargs.setdefault("padding", kernel_size // 2)
        super().__init__(in_channels, out_channels, kernel_size, **kwargs)
        self.mask_type = mask_type
        k = kernel_size // 2
        mask = torch.ones_like(self.weight)
        mask[:, :, k, k + (mask_type == "B"):] = 0  # the centre row: right of the centre (and it, for A)
        mask[:, :, k + 1:] = 0  # every row below the centre
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.weight * self.mask, self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, mask_type={self.mask_type}"


class DigitsPixelCNN(nn.Module):
    """The plain PixelCNN: 7x7 mask A, five 3x3 mask-B convolutions + ReLU, 1x1 head to 17 levels.

    No residual connections: the masked stack is as in the original paper, blind spot
    included. Five mask-B layers make the field reach every row and column of an 8x8 digit.
    """

    def __init__(self, channels: int = 64, layers: int = 5, head: int = 128):
        super().__init__()
        # Named attributes and separate non-inplace ReLUs, so hooks find every layer by name.
        self.conv_in = MaskedConv2d(1, channels, 7, mask_type="A")
        self.relu_in = nn.ReLU()
        self.layers = layers
        for i in range(1, layers + 1):
            setattr(self, f"conv{i}", MaskedConv2d(channels, channels, 3, mask_type="B"))
            setattr(self, f"relu{i}", nn.ReLU())
        self.head1 = nn.Conv2d(channels, head, 1)
        self.relu_head = nn.ReLU()
        self.head2 = nn.Conv2d(head, LEVELS, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.relu_in(self.conv_in(2.0 * x - 1.0))
        for i in range(1, self.layers + 1):
            h = getattr(self, f"relu{i}")(getattr(self, f"conv{i}")(h))
        return self.head2(self.relu_head(self.head1(h)))


class Gate(nn.Module):
    """tanh(a) * sigmoid(b) for the two channel halves (a, b): the gated activation unit."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=1)
        return torch.tanh(a) * torch.sigmoid(b)


class GatedLayer(nn.Module):
    """One gated layer: vertical and horizontal stack, vertical-to-horizontal link, gates.

    Causality is by shape and padding rather than masks. The vertical stack's features at row
    r only ever depend on input rows above r: the first layer reads the ``k // 2`` rows strictly
    above (the "shift down by one row"), later layers a (k // 2 + 1) x k window ending at
    their own row. The horizontal stack reads a 1 x (k // 2 [+ 1]) window ending left of (first
    layer) or at (later layers) its own column, and adds the vertical features of the same
    position, which only cover rows above.
    """

    def __init__(self, in_channels: int, channels: int, kernel: int, first: bool):
        super().__init__()
        half = kernel // 2
        self.first = first
        self.half = half
        v_rows = half if first else half + 1
        h_cols = half if first else half + 1
        self.v_conv = nn.Conv2d(in_channels, 2 * channels, (v_rows, kernel))
        self.v_gate = Gate()
        self.v_to_h = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.h_conv = nn.Conv2d(in_channels, 2 * channels, (1, h_cols))
        self.h_gate = Gate()
        self.h_out = nn.Conv2d(channels, channels, 1)

    def forward(self, v: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        height, width = v.shape[-2:]
        half = self.half
        if self.first:
            # Pad `half` rows on top, none below, and drop the last output row: row r then reads
            # rows r - half .. r - 1. Likewise `half` columns on the left for the row stack.
            v_pre = self.v_conv(F.pad(v, (half, half, half, 0)))[:, :, :height]
            h_pre = self.h_conv(F.pad(h, (half, 0, 0, 0)))[:, :, :, :width]
        else:
            v_pre = self.v_conv(F.pad(v, (half, half, half, 0)))
            h_pre = self.h_conv(F.pad(h, (half, 0, 0, 0)))
        v_new = self.v_gate(v_pre)
        h_new = self.h_out(self.h_gate(h_pre + self.v_to_h(v_pre)))
        if not self.first:
            h_new = h_new + h  # residual, as in the paper (the first layer changes the width)
        return v_new, h_new


class GatedPixelCNN(nn.Module):
    """Gated PixelCNN: a 7x7 first layer, five 3x3 gated layers, a 1x1 head to 17 levels.

    Six layers are enough for the vertical field (3 rows and 3 columns either way from the
    first layer, one more per later layer) to cover every row above and every column of an
    8x8 digit, so no earlier pixel is out of reach.
    """

    def __init__(self, channels: int = 48, layers: int = 5, head: int = 96):
        super().__init__()
        self.layer0 = GatedLayer(1, channels, 7, first=True)
        self.layers = layers
        for i in range(1, layers + 1):
            setattr(self, f"layer{i}", GatedLayer(channels, channels, 3, first=False))
        self.head1 = nn.Conv2d(channels, head, 1)
        self.relu_head = nn.ReLU()
        self.head2 = nn.Conv2d(head, LEVELS, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = 2.0 * x - 1.0
        v, h = self.layer0(x, x)
        for i in range(1, self.layers + 1):
            v, h = getattr(self, f"layer{i}")(v, h)
        return self.head2(self.relu_head(self.head1(h)))


MODELS = {"plain": DigitsPixelCNN, "gated": GatedPixelCNN}


def build(kind: str = "gated") -> nn.Module:
    """A freshly initialised model of ``kind`` ("plain" or "gated")."""
    if kind not in MODELS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    return MODELS[kind]()


def sample_steps(model: nn.Module, count: int, seed: int, temperature: float = 1.0, cancel=None):
    """Draw ``count`` digits pixel by pixel; a generator for live views.

    Yields, after each of the 64 pixels in raster order, ``(pixel_index, images_so_far,
    next_pixel_probs)``: the index i = 8 r + c of the pixel just drawn, float32 images (count,
    1, 8, 8) in [0, 1] with pixels 0..i filled (later ones 0), and the (count, 17)
    distribution pixel i was drawn from (softmax of logits / temperature). The last yield holds
    the finished digits. Deterministic for a seed (its own torch.Generator; the global one is
    not touched). ``cancel`` (a threading.Event) is checked before each pixel; when set, the
    generator raises :class:`~deepvis.errors.Cancelled`. ``model``: a model of this module,
    or any fully convolutional, causal one whose output rows do not depend on rows below.
    """
    if temperature <= 0:
        raise ValueError("temperature must be positive")
    model.eval()
    generator = torch.Generator().manual_seed(int(seed))
    height, width = INPUT_SIZE
    images = torch.zeros(count, 1, height, width)
    with torch.no_grad():
        for index in range(height * width):
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            r, c = divmod(index, width)
            # Rows below r cannot affect row r (causal, and no padding reads from below), so
            # the pass runs on rows 0..r only: about half the work over a whole digit.
            logits = model(images[:, :, :r + 1])[:, :, r, c].double() / temperature
            probs = torch.softmax(logits, dim=1)
            level = torch.multinomial(probs, 1, generator=generator)[:, 0]
            images[:, 0, r, c] = level.float() / (LEVELS - 1)
            yield index, images.numpy().copy(), probs.float().numpy()


def sample(model: nn.Module, count: int, seed: int, temperature: float = 1.0, progress=None, cancel=None) -> np.ndarray:
    """``count`` digits drawn pixel by pixel: float32 (count, 1, 8, 8) in [0, 1].

    64 forward passes; deterministic for a seed. ``temperature`` divides the logits (below 1:
    sharper, less varied digits). ``progress(fraction)`` is called after each pixel;
    ``cancel`` (a threading.Event) is checked between pixels and raises ``Cancelled``.
    """
    images = None
    total = INPUT_SIZE[0] * INPUT_SIZE[1]
    for index, images, _ in sample_steps(model, count, seed, temperature, cancel):
        if progress is not None:
            progress((index + 1) / total)
    return images


@torch.no_grad()
def nll_bits_per_dim(model: nn.Module, X: np.ndarray) -> float:
    """Mean negative log-likelihood of digits ``X`` (N, 1, 8, 8) in [0, 1], in bits per pixel.

    The pixels are read as levels round(16 x). log2(17) = 4.09 bits is the uniform baseline.
    Leaves the model in eval mode.
    """
    model.eval()
    x = torch.as_tensor(np.asarray(X, dtype=np.float32))
    total = 0.0
    for start in range(0, len(x), 512):
        batch = x[start:start + 512]
        total += float(F.cross_entropy(model(batch), _levels(batch), reduction="sum"))
    return total / (x.numel() * math.log(2))


def confident_share(images: np.ndarray, classifier: nn.Module | None = None, confidence: float = 0.9) -> float:
    """Share of ``images`` that ``digits_cnn`` (committed weights unless given) reads with
    softmax confidence >= ``confidence``: a sample-quality score."""
    from deepvis.models import digits_cnn

    classifier = classifier if classifier is not None else digits_cnn.load_pretrained()
    classifier.eval()
    with torch.no_grad():
        probs = torch.softmax(classifier(torch.as_tensor(images)), dim=1)
    return float((probs.max(dim=1).values >= confidence).float().mean())


def train(kind: str = "gated", epochs: int | None = None, seed: int = 0, progress=None, batch_size: int = 32) -> nn.Module:
    """Train a ``kind`` model from scratch on the training split only; deterministic for a seed.

    Maximum likelihood: cross-entropy of every pixel's level given the true earlier pixels
    (teacher forcing: one forward pass per batch). ``progress``, if given, is called as
    ``progress(epoch, mean_loss)`` after each epoch, the loss in bits per pixel.
    """
    epochs = EPOCHS[kind] if epochs is None else epochs
    seeded(seed)
    X_train, _, _, _ = load_split()
    X = torch.from_numpy(X_train)
    targets = _levels(X)
    model = build(kind)
    optimizer, scheduler = adam_cosine(model, 2e-3, epochs, steps_per_epoch(len(X), batch_size))
    in_bits = None if progress is None else (lambda epoch, nats: progress(epoch, nats / math.log(2)))
    return fit(model, epochs, lambda epoch: (X, targets), in_bits, loss_fn=F.cross_entropy, optimizer=optimizer,
               scheduler=scheduler, batch_size=batch_size)


def weights_path(kind: str = "gated") -> pathlib.Path:
    """Where the committed trained weights of ``kind`` live."""
    if kind not in MODELS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    return WEIGHTS_DIR / ("digits_pixelcnn.pt" if kind == "plain" else "digits_pixelcnn_gated.pt")


def load_pretrained(kind: str = "gated") -> nn.Module:
    """The committed trained model of ``kind``, on the CPU, in eval mode."""
    return load_committed(build(kind), weights_path(kind).name)


def _main(argv: list[str] | None = None) -> None:
    parser = recipe_arguments("digits_pixelcnn", __doc__, None, None,
                              f"passes over the training split (default {EPOCHS['plain']} plain, {EPOCHS['gated']} "
                              f"gated)", "where to save the state dict (default: the committed weights of --kind)")
    parser.add_argument("--kind", choices=KINDS, default="gated", help="plain or gated PixelCNN (default gated)")
    args = parser.parse_args(argv)
    out = args.out if args.out is not None else weights_path(args.kind)
    model, seconds = timed_training(train, args.kind, args.epochs, args.seed)
    _, X_test, _, _ = load_split()
    nll = nll_bits_per_dim(model, X_test)
    share = confident_share(sample(model, 200, seed=0))
    print(f"trained in {seconds:.1f} s; held-out NLL {nll:.4f} bits/pixel "
          f"(uniform {math.log2(LEVELS):.2f}); {share:.1%} of 200 samples read by digits_cnn with confidence >= 0.9")
    save_weights(model, out)


if __name__ == "__main__":
    _main()

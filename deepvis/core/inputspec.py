"""What a model expects as input, and turning RGB frames into exactly that.

Every frame source yields RGB uint8 images of any size. A model wants a fixed number of
channels, a size, a value range and a normalization; ``InputSpec`` records those, and
``Preprocessor`` applies them with OpenCV on uint8 data first (cheap) and a single fused
scale-and-shift in float32 last.
"""

from dataclasses import dataclass, replace

import numpy as np
import torch

from deepvis.errors import DeepvisError
from deepvis.io.images import quiet_cv2

cv2 = quiet_cv2()

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
FIT_MODES = ("crop", "stretch")


@dataclass(frozen=True)
class InputSpec:
    """The input a model expects.

    ``mean`` and ``std`` are in units of the [0, 1] pixel range, one per channel, as in
    torchvision's metadata (a model trained on 0..255 inputs is ``std = 1/255``). ``fit`` says how a frame of another aspect ratio is made to fit:
    ``crop`` takes the centre at the model's aspect ratio, ``stretch`` resizes as is.
    """

    channels: int = 3
    height: int = 224
    width: int = 224
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    fit: str = "crop"

    def __post_init__(self):
        if self.channels not in (1, 3):
            raise DeepvisError(f"models with {self.channels} input channels are not supported (1 or 3)")
        if self.height < 1 or self.width < 1:
            raise DeepvisError(f"input size must be positive, got {self.height}x{self.width}")
        if self.fit not in FIT_MODES:
            raise DeepvisError(f"unknown fit mode {self.fit!r}: expected one of {', '.join(FIT_MODES)}")
        object.__setattr__(self, "mean", _per_channel(self.mean, self.channels, "mean"))
        object.__setattr__(self, "std", _per_channel(self.std, self.channels, "std"))
        if any(s <= 0 for s in self.std):
            raise DeepvisError(f"std must be positive, got {', '.join(f'{s:g}' for s in self.std)}")

    @property
    def size(self) -> tuple[int, int]:
        return self.height, self.width

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.channels, self.height, self.width

    def with_overrides(self, *, size=None, channels=None, mean=None, std=None, fit=None) -> "InputSpec":
        """A copy with the user's overrides; changing the channel count keeps a matching mean/std."""
        changes = {}
        if size is not None:
            changes["height"], changes["width"] = size
        if channels is not None and channels != self.channels:
            changes["channels"] = channels
            # A 3-channel mean means little for one channel; their average is the usual choice.
            changes["mean"] = (float(np.mean(self.mean)),) * channels
            changes["std"] = (float(np.mean(self.std)),) * channels
        if mean is not None:
            changes["mean"] = mean
        if std is not None:
            changes["std"] = std
        if fit is not None:
            changes["fit"] = fit
        return replace(self, **changes)

    def describe(self) -> str:
        def fmt(values):
            return "(" + ", ".join(f"{v:.3g}" for v in values) + ")"

        return (f"{self.channels}x{self.height}x{self.width}, mean {fmt(self.mean)}, std {fmt(self.std)}"
                f", fit {self.fit}")


@dataclass(frozen=True)
class SignalSpec:
    """The input of a 1-D model (its first convolution a Conv1d): a window of ``length``
    samples of ``channels`` channels at ``rate`` Hz (None: files are taken at their own rate)."""

    channels: int = 1
    length: int = 1024
    rate: int | None = None

    def __post_init__(self):
        if self.channels < 1 or self.length < 1:
            raise DeepvisError(f"a signal input needs channels and samples, got {self.channels}x{self.length}")
        if self.rate is not None and self.rate < 1:
            raise DeepvisError(f"sample rate must be positive, got {self.rate}")

    @property
    def shape(self) -> tuple[int, int]:
        return self.channels, self.length

    def describe(self) -> str:
        return f"signal {self.channels}x{self.length}" + (f" at {self.rate} Hz" if self.rate else "")


def _per_channel(values, channels: int, what: str) -> tuple[float, ...]:
    values = tuple(float(v) for v in np.atleast_1d(values))
    if len(values) == 1:
        return values * channels
    if len(values) != channels:
        raise DeepvisError(f"{what} has {len(values)} values but the model takes {channels} channels")
    return values


MAX_INPUT_SIDE = 8192  # px; a frame tensor beyond this is gigabytes before the first layer


def parse_size(text: str) -> tuple[int, int]:
    """``"224"`` or ``"240x320"`` (height x width)."""
    parts = text.lower().replace("*", "x").split("x")
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        numbers = []
    if len(numbers) == 1:
        numbers *= 2
    if len(numbers) != 2 or min(numbers) < 1:
        raise DeepvisError(f"bad input size {text!r}: expected HxW, e.g. 224x224")
    if max(numbers) > MAX_INPUT_SIDE:
        raise DeepvisError(f"input size {text!r} is too large: at most {MAX_INPUT_SIDE} px a side")
    return numbers[0], numbers[1]


def parse_floats(text: str, what: str) -> tuple[float, ...]:
    """``"0.5"`` or ``"0.485,0.456,0.406"``."""
    try:
        values = tuple(float(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError:
        values = ()
    if not values or not all(np.isfinite(values)):
        raise DeepvisError(f"bad {what} {text!r}: expected finite numbers separated by commas")
    return values


class Preprocessor:
    """Turns RGB uint8 frames into model input tensors for one ``InputSpec``."""

    def __init__(self, spec: InputSpec):
        self.spec = spec
        # (x / 255 - mean) / std for every uint8 value x, per channel: a 256-entry lookup is
        # cheaper than float arithmetic on the frame.
        std = np.asarray(spec.std, np.float32)[:, None]
        mean = np.asarray(spec.mean, np.float32)[:, None]
        self._table = ((np.arange(256, dtype=np.float32)[None, :] / 255.0 - mean) / std).astype(np.float32)

    def fit(self, frame: np.ndarray) -> np.ndarray:
        """The frame cropped/resized to the model's size and channel count: uint8 (H, W, C)."""
        frame = _as_rgb_uint8(frame)
        h, w = self.spec.size
        if self.spec.fit == "crop":
            frame = _center_crop_to_aspect(frame, w / h)
        frame = resample(frame, h, w)
        if self.spec.channels == 1:
            frame = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)[:, :, None]
        return np.ascontiguousarray(frame)

    def normalize(self, fitted: np.ndarray) -> np.ndarray:
        """A fitted uint8 (H, W, C) frame as normalized float32 (C, H, W)."""
        channels = fitted.shape[2]
        chw = np.empty((channels, *fitted.shape[:2]), np.float32)
        for c in range(channels):
            np.take(self._table[c], fitted[:, :, c], out=chw[c])
        return chw

    def array(self, frame: np.ndarray) -> np.ndarray:
        """Model input for one frame as float32 (C, H, W)."""
        return self.normalize(self.fit(frame))

    def tensor(self, frame: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
        """Model input for one frame as a (1, C, H, W) tensor on ``device``."""
        return torch.from_numpy(self.array(frame)).unsqueeze(0).to(device)


def resample(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """``image`` at (height, width): shrunk by area (each output pixel the mean of the input
    pixels it covers, pixel centres aligned), enlarged bilinearly.

    Area keeps small inputs intact: a digit enlarged 8x by nearest neighbours comes back as
    the very digit, and one enlarged bilinearly nearly so. The Gaussian pyramid used before
    blurred and shifted by half a pixel (its output pixel i sat on input pixel 2i, not on
    the centre 2i + 0.5 of the pair), and an enlarged 8x8 digit shrunk back to 8x8 was misread
    (a 5 as a 9). Exact halvings first, then one area step of less than 2x: as fast as the
    pyramid was (1 ms for a 1080p frame to 224x224), where one area step from full size
    costs 4 ms (OpenCV's area resampling is slow for large non-integer factors).
    """
    while image.shape[0] >= 2 * height and image.shape[1] >= 2 * width:
        h, w = image.shape[:2]
        # An odd row or column is dropped so each output pixel is an exact 2x2 mean: it moves
        # the picture by half an input pixel, a quarter of an output pixel of this step.
        image = cv2.resize(image[:h - h % 2, :w - w % 2], (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    if image.shape[:2] == (height, width):
        return image
    shrinking = image.shape[0] >= height and image.shape[1] >= width
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def _as_rgb_uint8(frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.dtype != np.uint8:
        raise DeepvisError(f"frames must be uint8 RGB, got {frame.dtype}")
    if frame.ndim == 2:
        return np.repeat(frame[:, :, None], 3, axis=2)
    if frame.ndim != 3 or frame.shape[2] not in (3, 4):
        raise DeepvisError(f"frames must be (H, W, 3) RGB, got shape {frame.shape}")
    return frame[:, :, :3]


def crop_box(h: int, w: int, aspect: float) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1): the centre of an h x w frame at ``aspect`` (width / height), the part
    a ``crop`` fit keeps (and the part of a picture a segmentation's labels are placed in)."""
    if w > h * aspect + 0.5:
        new_w = max(1, round(h * aspect))
        x0 = (w - new_w) // 2
        return 0, h, x0, x0 + new_w
    if h > w / aspect + 0.5:
        new_h = max(1, round(w / aspect))
        y0 = (h - new_h) // 2
        return y0, y0 + new_h, 0, w
    return 0, h, 0, w


def input_to_frame(spec: InputSpec, frame_hw: tuple[int, int]) -> tuple[float, float, float, float]:
    """(sx, sy, ox, oy): the point (x, y) in the model input's pixels is (ox + sx * x, oy + sy * y)
    in the pixels of the frame it was fitted from (a detection's box drawn on the picture)."""
    h, w = frame_hw
    if spec.fit == "crop":
        y0, y1, x0, x1 = crop_box(h, w, spec.width / spec.height)
    else:
        y0, y1, x0, x1 = 0, h, 0, w
    return (x1 - x0) / spec.width, (y1 - y0) / spec.height, float(x0), float(y0)


def _center_crop_to_aspect(frame: np.ndarray, aspect: float) -> np.ndarray:
    y0, y1, x0, x1 = crop_box(*frame.shape[:2], aspect)
    return frame[y0:y1, x0:x1]


def match_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """(N, C, H, W) pixels with the model's channel count: grey as the mean of RGB, or one
    channel repeated."""
    if x.shape[1] == channels:
        return x
    return x[:, :3].mean(1, keepdim=True) if channels == 1 else x[:, :1].expand(-1, channels, -1, -1)


def pixel_tensor(image: np.ndarray, channels: int) -> torch.Tensor:
    """uint8 (H, W[, C]) at its own size (no crop, no resize) as (1, channels, H, W) in [0, 1]:
    what optimizations on the image itself (dreams, unit visualizations) start from."""
    x = torch.from_numpy(np.ascontiguousarray(image)).float().div(255)
    x = (x[:, :, None] if x.ndim == 2 else x).permute(2, 0, 1)[None]
    return match_channels(x, channels)

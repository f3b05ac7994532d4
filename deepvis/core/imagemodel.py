"""Models whose output is a picture: autoencoders, VAEs, denoisers, super-resolution and
image-to-image nets.

Such an output is (B, C, H', W') with C in {1, 3} and no class semantics. Its values mean
pixels through the network's last activation: tanh gives [-1, 1], a sigmoid [0, 1], and
without either the net is taken to produce what it was fed, normalized inputs, so the input's
normalization is undone. When the output has the input's size, the reconstruction error says
how far it is from the input (MSE, PSNR and SSIM over pixels in [0, 1]).
"""

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from deepvis.core.inputspec import InputSpec
from deepvis.core.probe import hook_forward, hookable_modules
from deepvis.errors import DeepvisError

OUTPUT_RANGES = ("tanh", "sigmoid", "input")
_RANGE_OF_ACTIVATION = {"Tanh": "tanh", "Hardtanh": "tanh", "Sigmoid": "sigmoid", "Hardsigmoid": "sigmoid"}


def is_picture(tensor: torch.Tensor) -> bool:
    return tensor.ndim == 4 and tensor.shape[1] in (1, 3)


def check_task(task: str, output: torch.Tensor) -> None:
    """Refuse a declared task the output cannot have, with the shape it does have."""
    shape = tuple(output.shape)
    if task == "image" and not is_picture(output):
        raise DeepvisError(f"--task image needs an output of shape (B, 1 or 3, H, W); this model outputs {shape}")
    if task == "classification" and output.ndim != 2:
        raise DeepvisError(f"--task classification needs an output of shape (B, classes); this model outputs {shape}")
    if task == "descriptor" and output.ndim != 4:
        raise DeepvisError(f"--task descriptor needs an output of shape (B, channels, H, W) (a feature per cell); "
                           f"this model outputs {shape}")
    if task == "segmentation" and output.ndim != 4:
        raise DeepvisError(f"--task segmentation needs an output of shape (B, classes, H, W); this model outputs "
                           f"{shape}")


def detect_output_range(module: nn.Module, x: torch.Tensor) -> str:
    """``tanh``, ``sigmoid`` or ``input``, from the module that produced the output.

    Hooks see which leaf module's result *is* the output, so a sigmoid inside an attention
    block is not mistaken for the last layer. TorchScript modules take no hooks: there the
    last registered leaf decides.
    """
    if isinstance(module, torch.jit.ScriptModule):
        leaves = [m for _, m in module.named_modules() if not list(m.children())]
        name = getattr(leaves[-1], "original_name", "") if leaves else ""
        return _RANGE_OF_ACTIVATION.get(name, "input")
    producers: dict[int, str] = {}

    def remember(m, _inputs, output):
        if torch.is_tensor(output):
            producers[output.data_ptr()] = type(m).__name__

    # Leaves, and TorchScript parts as one opaque module each (their insides run compiled).
    handles = [hook_forward(m, remember) for _, m in hookable_modules(module)
               if not list(m.children()) or isinstance(m, torch.jit.ScriptModule)]
    try:
        with torch.inference_mode():
            from deepvis.core.predictions import main_output

            out = main_output(module(x))
    finally:
        for h in handles:
            h.remove()
    return _RANGE_OF_ACTIVATION.get(producers.get(out.data_ptr(), ""), "input")


def to_unit(output: torch.Tensor, output_range: str, spec: InputSpec) -> torch.Tensor:
    """The output as pixels where 0 is black and 1 full white, unclamped: (B, C, H, W)."""
    if output_range == "tanh":
        return (output + 1) / 2
    if output_range == "sigmoid":
        return output
    channels = output.shape[1]
    mean = torch.tensor(_per_channel(spec.mean, channels), dtype=output.dtype, device=output.device)
    std = torch.tensor(_per_channel(spec.std, channels), dtype=output.dtype, device=output.device)
    return output * std.reshape(1, -1, 1, 1) + mean.reshape(1, -1, 1, 1)


def pixel_bounds(output_range: str, spec: InputSpec):
    """The raw output values that mean black and white (``to_unit``'s 0 and 1): floats, or
    per-channel tuples where the input's normalization differs by channel."""
    if output_range == "tanh":
        return -1.0, 1.0
    if output_range == "sigmoid":
        return 0.0, 1.0
    mean, std = np.asarray(spec.mean, np.float32), np.asarray(spec.std, np.float32)
    lo, hi = (0 - mean) / std, (1 - mean) / std
    if len(lo) == 1:
        return float(lo[0]), float(hi[0])
    return tuple(float(v) for v in lo), tuple(float(v) for v in hi)


def input_to_unit(x: torch.Tensor, spec: InputSpec) -> torch.Tensor:
    """A normalized model input back to pixels in [0, 1]."""
    return to_unit(x, "input", spec)


def _per_channel(values, channels: int) -> list[float]:
    values = list(values)
    return values * channels if len(values) == 1 else values[:channels] if len(values) >= channels else \
        [sum(values) / len(values)] * channels


@dataclass(frozen=True)
class ReconstructionError:
    mse: float  # mean squared error over pixels in [0, 1]
    psnr: float  # dB, peak 1; inf for a perfect copy
    ssim: float | None  # None for pictures smaller than 3x3

    def text(self) -> str:
        ssim = "" if self.ssim is None else f", SSIM {self.ssim:.3f}"
        return f"MSE {self.mse:.4g}, PSNR {self.psnr:.1f} dB{ssim}"

    def as_dict(self) -> dict:
        # JSON has no infinity: a perfect copy's PSNR is null there (its MSE, 0, says why).
        return {"mse": self.mse, "psnr": None if np.isinf(self.psnr) else self.psnr, "ssim": self.ssim}


@dataclass(frozen=True)
class ImageOutput:
    picture: np.ndarray  # uint8 (H', W', 3): the output as the user sees it
    pixels: np.ndarray  # float32 (H', W', C): the output in [0, 1] units, clipped
    difference: np.ndarray | None  # float32 (H, W): |output - input| averaged over channels
    error: ReconstructionError | None  # only when the output has the input's size


def image_output(output: torch.Tensor, x: torch.Tensor, output_range: str, spec: InputSpec) -> ImageOutput:
    """The first sample of an image model's ``output`` for its normalized input ``x``."""
    out = to_unit(output[:1].detach().float(), output_range, spec).clamp(0, 1)[0].permute(1, 2, 0).cpu().numpy()
    out = np.ascontiguousarray(out, np.float32)
    picture = (out * 255 + 0.5).astype(np.uint8)
    picture = np.repeat(picture, 3, axis=2) if picture.shape[2] == 1 else picture
    difference = error = None
    if tuple(output.shape[2:]) == tuple(x.shape[2:]):
        seen = input_to_unit(x[:1].detach().float(), spec).clamp(0, 1)[0].permute(1, 2, 0).cpu().numpy()
        if seen.shape[2] != out.shape[2]:  # a grey net fed colour frames, or the reverse
            seen = np.repeat(seen.mean(2, keepdims=True), out.shape[2], axis=2)
        difference = np.abs(out - seen).mean(2).astype(np.float32)
        error = reconstruction_error(out, seen)
    for array in (picture, out, difference):
        if array is not None:
            array.flags.writeable = False
    return ImageOutput(picture=picture, pixels=out, difference=difference, error=error)


def reconstruction_error(output: np.ndarray, target: np.ndarray) -> ReconstructionError:
    """MSE, PSNR and SSIM of two (H, W, C) pictures in [0, 1]."""
    mse = float(np.mean((output.astype(np.float64) - target.astype(np.float64)) ** 2))
    psnr = float("inf") if mse == 0 else float(10 * np.log10(1.0 / mse))
    return ReconstructionError(mse=mse, psnr=psnr, ssim=ssim(output, target))


def ssim(a: np.ndarray, b: np.ndarray, window: int = 7) -> float | None:
    """Structural similarity of (H, W, C) pictures in [0, 1], averaged over channels.

    scikit-image's default (Wang et al. 2004 with a uniform 7x7 window, sample covariances,
    K1 = 0.01, K2 = 0.03, the border the window cannot cover left out), written here so the
    app does not need scikit-image; the tests check it against scikit-image. The window
    shrinks to the largest odd size that fits a small picture.
    """
    from deepvis.io.images import quiet_cv2

    cv2 = quiet_cv2()
    win = min(window, *(s if s % 2 else s - 1 for s in a.shape[:2]))
    if win < 3:
        return None
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    n = win * win
    cov = n / (n - 1)
    pad = (win - 1) // 2
    values = []
    for ch in range(a.shape[2]):
        x, y = a[:, :, ch], b[:, :, ch]

        def mean(img):
            return cv2.blur(img, (win, win), borderType=cv2.BORDER_REFLECT)

        ux, uy = mean(x), mean(y)
        vx = cov * (mean(x * x) - ux * ux)
        vy = cov * (mean(y * y) - uy * uy)
        vxy = cov * (mean(x * y) - ux * uy)
        s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
        values.append(s[pad:s.shape[0] - pad, pad:s.shape[1] - pad].mean())
    return float(np.mean(values))

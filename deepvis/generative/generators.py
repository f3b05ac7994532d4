"""Image generators (GANs) for the latent-space views: loading and sampling.

The DCGAN layout of the PyTorch examples and tutorial is rebuilt from its weights alone: a
``main`` Sequential of ConvTranspose2d layers (the first 1 -> 4 pixels with stride 1, the
rest doubling with stride 2, padding 1), BatchNorm2d and ReLU between them and a Tanh at the
end. The latent size, widths and image channels are read off the weight shapes, so any
``netG`` saved from the tutorial loads without settings.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from deepvis.core.imagemodel import pixel_bounds
from deepvis.errors import DeepvisError
from deepvis.generative.autoencoders import Autoencoder, find_autoencoder


@dataclass
class Generator:
    module: nn.Module
    nz: int  # latent size
    name: str
    # The raw values that mean black and white (floats, or per-channel tuples), mapped to 0..255.
    out_range: tuple = (-1.0, 1.0)
    device: torch.device = torch.device("cpu")
    flat_input: bool = False  # the module takes (N, nz) rows as they are (an autoencoder's decoder)
    encoder: Callable | None = None  # uint8 pictures -> latent rows (N, nz): a VAE's or autoencoder's encoder
    variational: bool = False  # a VAE's decoder: its latent prior is N(0, I) by training

    def bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``out_range`` as tensors that broadcast over (N, C, H, W) outputs."""
        lo, hi = self.out_range
        return (torch.as_tensor(lo, dtype=torch.float32).reshape(1, -1, 1, 1),
                torch.as_tensor(hi, dtype=torch.float32).reshape(1, -1, 1, 1))

    def encode(self, images) -> torch.Tensor:
        """Latent rows (N, nz) of uint8 pictures through the model's encoder, in one pass."""
        if self.encoder is None:
            raise DeepvisError(f"{self.name} has no encoder: one-pass projection needs an autoencoder or VAE (a GAN's "
                               f"latent point for a picture is searched by optimization: Project input in the app)")
        return self.encoder(images)

    def latent(self, seed: int, count: int = 1) -> torch.Tensor:
        """Reproducible z ~ N(0, I) for ``seed``: (count, nz)."""
        g = torch.Generator().manual_seed(int(seed))
        return torch.randn(count, self.nz, generator=g)

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """Raw output for latent rows ``z`` (N, nz): (N, C, H, W)."""
        z = torch.as_tensor(z, dtype=torch.float32).to(self.device)
        return self.module(z.reshape(len(z), self.nz, 1, 1) if self._spatial_input else z)

    def images(self, z: torch.Tensor) -> np.ndarray:
        """uint8 (N, H, W, 3) pictures of the samples at ``z``."""
        with torch.inference_mode():
            out = self.generate(z).float().cpu()
        lo, hi = self.bounds()
        pixels = ((out - lo) / (hi - lo)).clamp(0, 1).mul(255).round().to(torch.uint8)
        pixels = pixels.permute(0, 2, 3, 1).numpy()
        if pixels.shape[3] == 1:
            pixels = np.repeat(pixels, 3, axis=3)
        return np.ascontiguousarray(pixels[..., :3])

    def example_input(self) -> torch.Tensor:
        """What the module itself takes for one latent row (for probing its layers)."""
        z = self.latent(0)
        return z.reshape(1, self.nz, 1, 1) if self._spatial_input else z

    def activations(self, z: torch.Tensor, layer: str, probe=None) -> np.ndarray:
        """One latent row's activation at ``layer`` of the generator: the same probe as any model."""
        from deepvis.core.probe import Probe

        probe = probe or Probe(self.module, self.example_input())
        x = z.reshape(len(z), self.nz, 1, 1) if self._spatial_input else z
        with torch.inference_mode():
            _, acts = probe.capture(x.to(self.device), [layer])
        return acts[layer][0].float().cpu().numpy()

    @property
    def _spatial_input(self) -> bool:
        if self.flat_input:
            return False
        first = next((m for m in self.module.modules() if isinstance(m, (nn.ConvTranspose2d, nn.Linear))), None)
        return isinstance(first, nn.ConvTranspose2d)


def decoder_generator(autoencoder: Autoencoder) -> Generator:
    """An autoencoder's decoder as a Generator whose encoder projects pictures."""
    model = autoencoder.model
    lo, hi = pixel_bounds(model.output_range, model.spec)
    return Generator(module=_Decoding(autoencoder), nz=autoencoder.nz, name=model.name, out_range=(lo, hi),
                     device=model.device, flat_input=True, encoder=autoencoder.encode_images,
                     variational=autoencoder.variational)


class _Decoding(nn.Module):
    """The decoder taking flat latent rows, as generators do."""

    def __init__(self, autoencoder: Autoencoder):
        super().__init__()
        self.autoencoder = autoencoder
        decoder = autoencoder.decoder
        if isinstance(decoder, nn.Module):
            self.decoder = decoder  # registered, so probes list the decoder's layers
        else:
            owner = getattr(decoder, "__self__", None)
            inner = getattr(owner, "decoder", None)
            if isinstance(inner, nn.Module):
                self.decoder = inner  # a decode() method around its decoder: the layers keep their names
            elif isinstance(owner, nn.Module):
                self.model = owner

    def forward(self, z):
        return self.autoencoder.decode(z)


def dcgan_from_state_dict(state: dict) -> nn.Module:
    """The examples-layout DCGAN generator that ``state`` (keys ``main.<i>.*``) belongs to."""
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    convs = sorted(((int(k.split(".")[1]), v) for k, v in state.items()
                    if k.startswith("main.") and k.endswith(".weight") and v.ndim == 4), key=lambda kv: kv[0])
    if not convs:
        raise DeepvisError("not a DCGAN generator in the examples layout: no main.<i>.weight convolution keys")
    layers: list[nn.Module] = []
    for n, (index, weight) in enumerate(convs):
        if index != len(layers):
            raise DeepvisError(f"unexpected DCGAN layout: convolution main.{index} where main.{len(layers)} "
                               f"was expected")
        c_in, c_out, k, _ = weight.shape
        first, last = n == 0, n == len(convs) - 1
        has_bias = f"main.{index}.bias" in state
        layers.append(nn.ConvTranspose2d(c_in, c_out, k, 1 if first else 2, 0 if first else 1, bias=has_bias))
        if last:
            layers.append(nn.Tanh())
        else:
            layers.append(nn.BatchNorm2d(c_out))
            layers.append(nn.ReLU(True))
    module = _DCGAN(nn.Sequential(*layers))
    missing, unexpected = module.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise DeepvisError(f"DCGAN weights do not fit the examples layout: missing {missing[:4]}, "
                           f"unexpected {unexpected[:4]}")
    return module.eval()


class _DCGAN(nn.Module):
    def __init__(self, main: nn.Sequential):
        super().__init__()
        self.main = main

    def forward(self, z):
        return self.main(z)


def load_generator(spec: str | None = None, weights: str | None = None, device: str = "cpu",
                   nz: int | None = None, trust_pickle: bool = False) -> Generator:
    """``None`` or ``digits_gan`` (bundled), ``faces`` (the gan-face-generate package),
    ``dcgan`` with ``weights`` (a state dict or checkpoint in the examples layout), a
    TorchScript file, ``package.module:callable`` (with ``nz``), or an autoencoder / VAE of
    the zoo (``digits_vae``, ``digits_ae``): its decoder, with its encoder for projections."""
    from deepvis.core.checkpoint import extract_state_dict, is_torchscript, load_checkpoint, load_torchscript
    from deepvis.core.device import resolve_device
    from deepvis.core.zoo import get_entry

    dev = resolve_device(device)
    spec = spec or "digits_gan"
    entry = get_entry(spec)
    if entry is not None and entry.task == "image":
        from deepvis.core.loading import load_model

        model = load_model(spec, weights, device=str(dev), trust_pickle=trust_pickle)
        return decoder_generator(find_autoencoder(model))
    if spec == "digits_gan":
        from deepvis.models.digits_gan import weights_path

        return _from_state(load_checkpoint(weights or weights_path(), trust_pickle), "digits_gan", dev)
    if spec == "faces":
        return _from_state(load_checkpoint(weights or _faces_weights(), trust_pickle), "faces (gan-face-generate)", dev)
    if spec == "dcgan":
        if not weights:
            raise DeepvisError("--generator dcgan needs --weights FILE (a netG state dict or checkpoint)")
        return _from_state(load_checkpoint(weights, trust_pickle), f"dcgan:{Path(weights).name}", dev)
    path = Path(spec)
    if path.suffix and path.exists():
        if is_torchscript(path):
            module = load_torchscript(path, dev).eval()
            return Generator(module, nz or _probe_nz(module), path.name, device=dev)
        return _from_state(load_checkpoint(path, trust_pickle), path.name, dev)
    if ":" in spec:
        from deepvis.core.loading import _from_factory

        module = _from_factory(spec).eval().to(dev)
        if weights:
            module.load_state_dict(extract_state_dict(load_checkpoint(weights, trust_pickle)))
        return Generator(module, nz or _probe_nz(module), spec, device=dev)
    raise DeepvisError(f"unknown generator {spec!r}: use digits_gan, faces, dcgan --weights FILE, a TorchScript "
                       f"file or package.module:callable")


def _from_state(checkpoint, name: str, device) -> Generator:
    state = checkpoint
    if isinstance(checkpoint, dict) and "netG_state_dict" in checkpoint:
        state = checkpoint["netG_state_dict"]
    elif isinstance(checkpoint, dict) and "state_dict" in checkpoint:
        state = checkpoint["state_dict"]
    if not isinstance(state, dict):
        raise DeepvisError(f"{name}: expected a state dict, found {type(state).__name__}")
    module = dcgan_from_state_dict(state).to(device)
    return Generator(module, module.main[0].in_channels, name, device=device)


def _probe_nz(module: nn.Module) -> int:
    for m in module.modules():
        if isinstance(m, nn.ConvTranspose2d):
            return m.in_channels
        if isinstance(m, nn.Linear):
            return m.in_features
    raise DeepvisError("cannot tell this generator's latent size: give --nz")


def _faces_weights() -> Path:
    try:
        import gan_face_generate  # noqa: F401
    except ImportError:
        raise DeepvisError('the faces generator needs the gan-face-generate package: pip install --no-deps '
                           'gan-face-generate') from None
    root = Path(gan_face_generate.__file__).parent
    found = sorted(root.rglob("weights.tar"))
    if not found:
        raise DeepvisError(f"gan-face-generate is installed but has no weights.tar under {root}")
    return found[0]


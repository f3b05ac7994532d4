"""Autoencoders and VAEs: finding the encoder and the decoder inside a model, and using them.

A model is split where its author split it: ``encode``/``decode`` methods (the usual VAE
code), or submodules named ``encoder``/``decoder`` (``enc``/``dec``), or the submodules a user
names (``--encoder``/``--decoder``). A VAE is recognised by its encoder returning two tensors
of one shape (mean and log-variance), or by mean and log-variance heads (``fc_mu`` /
``fc_logvar`` and their common spellings) after the encoder. Its latent is then the mean:
reconstructions and projections are deterministic unless a sample is asked for.

The decoder becomes a :class:`~deepvis.generative.generators.Generator`
(``generators.decoder_generator``), so the Latent tab's
grids, paths, walks and directions work on it, and its encoder projects a picture into the
latent in one pass (the amortized inverse, against iGAN's optimization).
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from deepvis.core.loading import LoadedModel
from deepvis.errors import DeepvisError

ENCODER_NAMES = ("encoder", "enc")
DECODER_NAMES = ("decoder", "dec")
MEAN_HEADS = ("fc_mu", "mu", "fc_mean", "z_mean", "mean_head")
LOGVAR_HEADS = ("fc_logvar", "logvar", "fc_log_var", "log_var", "z_log_var", "fc_var")


@dataclass
class Autoencoder:
    model: LoadedModel
    encoder: Callable[[torch.Tensor], object]  # normalized input -> latent, or (mean, log-variance)
    decoder: Callable[[torch.Tensor], torch.Tensor]  # latent (N, *latent_shape) -> raw output
    latent_shape: tuple[int, ...]
    variational: bool
    how: str  # where the split was found, for messages

    @property
    def nz(self) -> int:
        return int(np.prod(self.latent_shape))

    def encode_both(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Flat latent means (N, nz) and, for a VAE, log-variances (N, nz)."""
        found = self.encoder(x)
        if self.variational:
            mean, logvar = found
            return mean.reshape(len(x), -1), logvar.reshape(len(x), -1)
        return _tensor(found).reshape(len(x), -1), None

    def encode(self, x: torch.Tensor, sample: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
        """Latent rows (N, nz) of normalized inputs; a VAE's mean, or a draw around it with ``sample``."""
        mean, logvar = self.encode_both(x)
        if sample and logvar is not None:
            noise = torch.randn(mean.shape, generator=generator).to(mean)
            return mean + noise * torch.exp(0.5 * logvar)
        return mean

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z.reshape(len(z), *self.latent_shape))

    def reconstruct(self, x: torch.Tensor, sample: bool = False,
                    generator: torch.Generator | None = None) -> torch.Tensor:
        return self.decode(self.encode(x, sample, generator))

    def encode_images(self, images) -> torch.Tensor:
        """Latent means (N, nz) of uint8 pictures (H, W[, C]) of any size, fitted like live frames."""
        x = torch.cat([self.model.input_tensor(np.asarray(image)) for image in images])
        with torch.inference_mode():
            return self.encode(x).float().cpu()


def _tensor(value) -> torch.Tensor:
    if torch.is_tensor(value):
        return value
    raise DeepvisError(f"the encoder returned a {type(value).__name__}, not a latent tensor (or a mean and a "
                       f"log-variance)")


def find_autoencoder(model: LoadedModel, encoder: str | None = None, decoder: str | None = None) -> Autoencoder:
    """The encoder/decoder split of ``model``; a one-line error when there is none."""
    module = model.module
    if encoder or decoder:
        enc = _named(module, encoder, ENCODER_NAMES, "encoder")
        dec = _named(module, decoder, DECODER_NAMES, "decoder")
        return _first_that_runs(model, _with_heads(module, enc), dec, "--encoder/--decoder")
    if callable(getattr(module, "encode", None)) and callable(getattr(module, "decode", None)):
        return _split(model, module.encode, False, module.decode, "its encode/decode methods")
    children = dict(module.named_children())
    enc = next((children[n] for n in ENCODER_NAMES if n in children), None)
    dec = next((children[n] for n in DECODER_NAMES if n in children), None)
    if enc is None:
        raise DeepvisError(f"{model.name} has no encoder: name it with --encoder LAYER (a submodule whose output is "
                           f"the latent), or give the model encode/decode methods")
    if dec is None:
        raise DeepvisError(f"{model.name} has no decoder: name it with --decoder LAYER (a submodule that maps the "
                           f"latent back to the picture)")
    return _first_that_runs(model, _with_heads(module, enc), dec, "its encoder/decoder submodules")


def _named(module: nn.Module, name: str | None, defaults, role: str) -> nn.Module:
    if name is None:
        children = dict(module.named_children())
        found = next((children[n] for n in defaults if n in children), None)
        if found is None:
            raise DeepvisError(f"no {role} found: name it with --{role} LAYER")
        return found
    try:
        return module.get_submodule(name)
    except AttributeError:
        import difflib

        names = [n for n, _ in module.named_modules() if n]
        close = difflib.get_close_matches(name, names, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else " (deepvis info lists the layers)"
        raise DeepvisError(f"--{role} {name}: the model has no such layer{hint}") from None


def _with_heads(module: nn.Module, enc: nn.Module) -> list[tuple]:
    """Ways to encode: through a VAE's mean and log-variance heads after ``enc`` when the model
    has them, then ``enc`` alone (an encoder that already ends in the latent)."""
    children = dict(module.named_children())
    mean = next((children[n] for n in MEAN_HEADS if n in children), None)
    logvar = next((children[n] for n in LOGVAR_HEADS if n in children), None)
    ways = []
    if mean is not None and logvar is not None and enc is not mean:
        def encode(x):
            h = enc(x)
            return mean(h), logvar(h)
        ways.append((encode, True))
    ways.append((enc, False))
    return ways


def _first_that_runs(model: LoadedModel, ways, decoder, how: str) -> Autoencoder:
    for k, (encoder, heads) in enumerate(ways):
        try:
            return _split(model, encoder, heads, decoder, how)
        except DeepvisError:
            if k == len(ways) - 1:
                raise
    raise AssertionError("no way to encode")  # ways is never empty


def _split(model: LoadedModel, encoder, heads: bool, decoder, how: str) -> Autoencoder:
    x = model.example_input()
    try:
        with torch.inference_mode():
            found = encoder(x)
            pair = isinstance(found, (tuple, list)) and len(found) == 2 and all(torch.is_tensor(v) for v in found) \
                and found[0].shape == found[1].shape
            latent = found[0] if pair else _tensor(found)
            out = decoder(latent)
    except DeepvisError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DeepvisError(f"{model.name}: encoding then decoding through {how} failed: {first}") from None
    from deepvis.core.predictions import main_output

    out = main_output(out)
    if out.ndim != 4 or out.shape[1] not in (1, 3):
        raise DeepvisError(f"{model.name}: the decoder found through {how} outputs {tuple(out.shape)}, not a picture "
                           f"(B, 1 or 3, H, W); name the decoder with --decoder LAYER")
    return Autoencoder(model=model, encoder=encoder, decoder=decoder, latent_shape=tuple(latent.shape[1:]),
                       variational=pair or heads, how=how)

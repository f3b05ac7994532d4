"""A DCGAN for scikit-learn's 8x8 digits: the bundled generator of the latent-space views.

The generator has the PyTorch examples' DCGAN layout (``main`` = ConvTranspose2d, BatchNorm2d,
ReLU, ..., Tanh; 1 -> 4 -> 8 pixels), so it loads through the same path as any tutorial
``netG``. Outputs are in [-1, 1]: -1 is a blank pixel, 1 full ink (the digits' 0..16 scale).

Retrain and overwrite the committed weights with::

    python -m deepvis.models.digits_gan [--iterations N] [--seed S] [--out PATH]
"""

from __future__ import annotations

import argparse
import pathlib
import time

import numpy as np
import torch
from torch import nn

from deepvis.models import WEIGHTS_DIR

NZ = 16


def weights_path() -> pathlib.Path:
    return WEIGHTS_DIR / "digits_gan.pt"


def build_generator(nz: int = NZ, width: int = 256) -> nn.Module:
    """The generator as its weights name it: a ``main`` Sequential, the PyTorch DCGAN example's
    layout, which ``deepvis.generative.generators`` rebuilds from any such state dict (so this
    recipe needs nothing from it). Call ``main`` to generate."""
    generator = nn.Module()
    generator.main = nn.Sequential(
        nn.ConvTranspose2d(nz, width, 4, 1, 0, bias=False), nn.BatchNorm2d(width), nn.ReLU(True),  # 4x4
        nn.ConvTranspose2d(width, 1, 4, 2, 1, bias=False), nn.Tanh(),  # 8x8
    )
    return generator


def build_discriminator(width: int = 64) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, width, 4, 2, 1), nn.LeakyReLU(0.2, True),  # 4x4
        nn.Conv2d(width, width * 2, 4, 2, 1), nn.BatchNorm2d(width * 2), nn.LeakyReLU(0.2, True),  # 2x2
        nn.Conv2d(width * 2, 1, 2, 1, 0), nn.Flatten())


def train(iterations: int = 6000, seed: int = 0, batch: int = 64, log=print) -> nn.Module:
    from sklearn.datasets import load_digits

    torch.manual_seed(seed)
    data = torch.from_numpy(load_digits().images.astype(np.float32) / 8.0 - 1.0)[:, None]
    g, d = build_generator(), build_discriminator()
    opt_g = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
    loss = nn.BCEWithLogitsLoss()
    ones, zeros = torch.ones(batch, 1), torch.zeros(batch, 1)
    start = time.perf_counter()
    for step in range(iterations):
        real = data[torch.randint(0, len(data), (batch,))]
        fake = g.main(torch.randn(batch, NZ, 1, 1))
        opt_d.zero_grad()
        (loss(d(real), ones * 0.9) + loss(d(fake.detach()), zeros)).backward()  # one-sided label smoothing
        opt_d.step()
        opt_g.zero_grad()
        loss(d(fake), ones).backward()
        opt_g.step()
        if step % 1000 == 0:
            log(f"step {step}: {time.perf_counter() - start:.0f} s")
    return g.eval()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=pathlib.Path, default=weights_path())
    args = parser.parse_args(argv)
    g = train(args.iterations, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(g.state_dict(), args.out)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()

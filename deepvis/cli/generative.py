"""``interpolate``: paths, grids, walks and directions in a generator's latent space."""

import argparse
from pathlib import Path

from deepvis.cli.common import add_allow_truncated, positive_int, save_npy, seed_number, whole
from deepvis.core.defaults import DEVICE_CHOICES
from deepvis.errors import DeepvisError
from deepvis.io.outputs import GIF, IMAGE, NPY, Outputs


def register(sub) -> None:
    p = sub.add_parser("interpolate", help="a path between latent points of a generator (GAN, VAE) as a strip")
    p.add_argument("--generator", metavar="SPEC",
                   help="digits_gan (bundled, default; digits_vae with --from-images), digits_vae, faces "
                        "(gan-face-generate), dcgan with --weights, a TorchScript file or package.module:callable "
                        "(an autoencoder's with --from-images)")
    p.add_argument("--weights", metavar="FILE", help="state dict or checkpoint for the generator (dcgan needs one)")
    p.add_argument("--nz", type=positive_int, help="latent size, when it cannot be read off the weights")
    ends = p.add_mutually_exclusive_group(required=True)
    ends.add_argument("--seeds", type=seed_number, nargs="+", metavar="SEED", help="A B [C ...]")
    ends.add_argument("--from-images", nargs="+", metavar="IMG",
                      help="A B [C ...]: real pictures, projected by the generator's encoder (an autoencoder or VAE "
                           "such as digits_vae)")
    add_allow_truncated(p)
    p.add_argument("--refine", type=whole(0, 10_000), default=0, metavar="STEPS",
                   help="with --from-images: refine each encoder projection by this many optimization steps "
                        "(default: %(default)s)")
    p.add_argument("--encoder", metavar="LAYER", help="with --from-images: the encoder submodule of a model file")
    p.add_argument("--decoder", metavar="LAYER", help="with --from-images: the decoder submodule of a model file")
    p.add_argument("--steps", type=whole(2, MAX_PATH_STEPS), default=8,
                   help="pictures in the path, both ends included (default: %(default)s)")
    p.add_argument("--mode", choices=("slerp", "lerp"), default="slerp",
                   help="spherical or straight-line interpolation (default: %(default)s)")
    p.add_argument("--out", required=True, metavar="PNG", help="the path as a strip")
    p.add_argument("--gif", metavar="FILE", help="also an animated GIF, there and back")
    p.add_argument("--npy", metavar="FILE", help="the path's pictures at their own size, uint8 (steps, H, W, C)")
    p.add_argument("--grid", type=_rows_cols, metavar="RxC",
                   help="also NAME-grid.png: R x C samples interpolated between four corner seeds (A B C D)")
    p.add_argument("--walk", type=whole(1, MAX_WALK_STEPS), metavar="N",
                   help="also NAME-walk.gif: a random walk of N steps from A")
    p.add_argument("--directions", type=positive_int, metavar="K",
                   help="also a sheet of the K principal directions (GANSpace) at seed A, -3..3")
    p.add_argument("--device", choices=DEVICE_CHOICES, default="cpu", help="where to run (default: %(default)s)")
    p.add_argument("--trust-pickle", action="store_true",
                   help="allow checkpoints that unpickle Python objects (can run code: trusted files only)")
    p.add_argument("--min-size", type=positive_int, default=512, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_interpolate)


def _rows_cols(text: str) -> tuple[int, int]:
    try:
        rows, cols = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected RxC such as 6x6, got {text!r}") from None
    if not (2 <= rows <= 64 and 2 <= cols <= 64):
        raise argparse.ArgumentTypeError(f"rows and columns must be 2..64, got {text!r}")
    return rows, cols


MAX_PATH_STEPS = 1000  # frames of a strip or a GIF: beyond this a file is unwieldy, not more useful


MAX_WALK_STEPS = 5000


def cmd_interpolate(args):
    import numpy as np
    import torch

    from deepvis.generative.generators import load_generator
    from deepvis.io.images import write_gif, write_image
    from deepvis.generative.latent import corner_grid, path, principal_directions, project, random_walk
    from deepvis.render.tiling import picture_grid, upscale

    points_given = args.seeds or args.from_images
    if len(points_given) < 2:
        raise DeepvisError("--seeds needs at least two seeds (A B [C ...])" if args.seeds else
                           "--from-images needs at least two pictures (A B [C ...])")
    if args.grid and not args.seeds:
        raise DeepvisError("--grid interpolates between four seeds: use it with --seeds")
    stem = Path(args.out)
    outputs = Outputs()
    outputs.add(args.out, IMAGE)
    outputs.add(args.gif, GIF, "--gif")
    outputs.add(args.npy, NPY, "--npy")
    if args.grid:
        outputs.add(stem.with_name(stem.stem + "-grid.png"), IMAGE)
    if args.walk:
        outputs.add(stem.with_name(stem.stem + "-walk.gif"), GIF)
    if args.directions:
        outputs.add(stem.with_name(stem.stem + "-directions.png"), IMAGE)
    if args.from_images:
        from deepvis.io.images import read_image

        pictures = [read_image(p) for p in args.from_images]
        generator = _encoding_generator(args)
        points = torch.cat([project(generator, picture, args.refine)[0] for picture in pictures])
    else:
        generator = load_generator(args.generator, args.weights, device=args.device or "cpu", nz=args.nz,
                                   trust_pickle=args.trust_pickle)
        points = torch.cat([generator.latent(seed) for seed in args.seeds])
    if args.directions and args.directions > generator.nz:
        raise DeepvisError(f"--directions {args.directions}: the latent has only {generator.nz} dimensions")
    frames = generator.images(path(points, args.steps, args.mode))
    # Everything is made first and written last: a failure part-way leaves no files behind.
    files = [(args.out, "image", upscale(np.hstack(list(frames)), args.min_size))]
    if args.gif:
        there = [upscale(f, 256) for f in frames]
        files.append((args.gif, "gif", (there + there[-2:0:-1], 80)))
    if args.grid:
        rows, cols = args.grid
        seeds = (list(args.seeds) + [args.seeds[0] + k for k in range(1, 4)])[:4]
        corners = torch.cat([generator.latent(seed) for seed in seeds])
        images = generator.images(corner_grid(corners, rows, cols, args.mode))
        files.append((stem.with_name(stem.stem + "-grid.png"), "image",
                      upscale(picture_grid(images, cols), args.min_size)))
    if args.walk:
        walk = generator.images(random_walk(points[0], args.walk, seed=args.seeds[0] if args.seeds else 0))
        files.append((stem.with_name(stem.stem + "-walk.gif"), "gif", ([upscale(f, 256) for f in walk], 60)))
    variance = None
    if args.directions:
        directions, variance = principal_directions(generator, args.directions)
        z = points[:1]
        strengths = torch.linspace(-3, 3, 7)
        rows = [np.hstack(list(generator.images(torch.cat([z + s * d for s in strengths])))) for d in directions]
        files.append((stem.with_name(stem.stem + "-directions.png"), "image",
                      upscale(np.vstack(rows), args.min_size)))
    with outputs.writing():
        for target, kind, content in files:
            if kind == "image":
                write_image(target, content)
            else:
                write_gif(target, *content)
        if args.npy:
            save_npy(args.npy, np.stack(list(frames)))
    if variance is not None:
        print("direction variance shares: " + " ".join(f"{v:.3f}" for v in variance))
    through = (f"seeds {' '.join(map(str, args.seeds))}" if args.seeds else
               f"the pictures {' '.join(Path(p).name for p in args.from_images)}")
    print(f"{args.mode} path of {args.steps} steps through {through} of "
          f"{generator.name} (nz {generator.nz}) -> {', '.join(str(f[0]) for f in files)}")


def _encoding_generator(args):
    """The generator of an autoencoder or VAE, with its encoder: a zoo name or a model file."""
    from deepvis.core.loading import load_model
    from deepvis.core.zoo import get_entry
    from deepvis.generative.autoencoders import find_autoencoder
    from deepvis.generative.generators import decoder_generator

    spec = args.generator or "digits_vae"
    entry = get_entry(spec)
    if entry is None and spec in ("digits_gan", "faces", "dcgan"):
        raise DeepvisError(f"--from-images needs a generator with an encoder (an autoencoder or VAE such as "
                           f"digits_vae); {spec} is a GAN: project with Project input in the app instead")
    model = load_model(spec, args.weights, device=args.device or "cpu", trust_pickle=args.trust_pickle,
                       task="image" if entry is None else None)
    return decoder_generator(find_autoencoder(model, args.encoder, args.decoder))

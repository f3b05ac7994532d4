"""``receptive-field``: which inputs an output position can see, measured, and causality."""

import sys

from deepvis.cli.common import (INTERRUPT, add_model, add_plain, clear_progress_line, load_model_of, positive_float,
                                print_json, save_npy, seed_number, whole)
from deepvis.errors import DeepvisError
from deepvis.io.outputs import IMAGE, NPY, Outputs


def register(sub) -> None:
    p = sub.add_parser("receptive-field", help="the input positions an output pixel or time step depends on, "
                                               "measured by gradients, and whether the model is causal")
    add_model(p)
    p.add_argument("--layer", metavar="NAME", help="the layer whose position is queried (default: the last one "
                                                   "with more than one pixel or time step)")
    p.add_argument("--at", required=True, metavar="Y,X|T", help="the output position")
    p.add_argument("--size", metavar="HxW|T", help="the input size (default: the model's, or 1024 samples for 1-D "
                                                   "models)")
    p.add_argument("--out", required=True, metavar="PNG", help="the field over the input")
    p.add_argument("--npy", metavar="FILE", help="the measured field, bool at the input's size")
    p.add_argument("--json", action="store_true", help="print the measurements as JSON")
    add_plain(p)
    p.set_defaults(func=cmd_receptive_field)

    p = sub.add_parser("sample", help="pictures drawn pixel by pixel from an autoregressive model (PixelCNN)")
    add_model(p)
    p.add_argument("--seed", type=seed_number, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--count", type=whole(1, MAX_SAMPLES), default=16, help="pictures to draw (default: %(default)s)")
    p.add_argument("--temperature", type=positive_float, default=1.0,
                   help="divides the logits, below 1: surer (default: %(default)s)")
    p.add_argument("--size", metavar="HxW", help="the picture's size (default: the model's)")
    p.add_argument("--out", required=True, metavar="PNG", help="the samples as a grid")
    p.add_argument("--npy", metavar="FILE", help="the samples, float32 (N, 1, H, W) in [0, 1]")
    p.set_defaults(func=cmd_sample)


def _ints(text: str, what: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.lower().replace("x", ",").split(","))
    except ValueError:
        raise DeepvisError(f"bad {what} {text!r}: expected whole numbers like 12 or 4,5") from None
    if any(v < 0 for v in values):
        raise DeepvisError(f"bad {what} {text!r}: positions and sizes are not negative")
    return values


def cmd_receptive_field(args):
    import numpy as np

    from deepvis.autoregressive.receptive import (check_causality, example_input, input_dims, measured_fields,
                                                  theoretical_field)
    from deepvis.core.probe import Probe
    from deepvis.io.images import write_image
    from deepvis.live.computethread import compute_thread
    from deepvis.render.tiling import upscale

    outputs = Outputs()
    outputs.add(args.out, IMAGE)
    outputs.add(args.npy, NPY, "--npy")
    at = _ints(args.at, "position")
    model = load_model_of(args)
    module = model.module
    dims = input_dims(module)
    if args.size:
        size = _ints(args.size, "size")
    else:
        size = (1024,) if dims == 1 else (model.spec.height, model.spec.width)
    if len(size) != dims or len(at) != dims:
        what = "T" if dims == 1 else "Y,X and HxW"
        raise DeepvisError(f"{model.name} takes {dims}-D input: give --at and --size as {what}")
    if min(size) < 1:
        raise DeepvisError(f"--size {args.size}: every side must be at least 1")
    if max(size) > 65536 or np.prod(size) > 4_000_000:
        limit = "at most 65,536 samples" if dims == 1 else "at most 65,536 a side and 4 million pixels"
        raise DeepvisError(f"--size {args.size}: too large to query ({limit})")

    def work():
        x = example_input(module, size)
        probe = Probe(module, x[:1])
        # Layers with pixels or time steps to point at: a global pool's 32x1 output has one.
        spatial = [layer for layer in probe.layers if len(layer.shape) == dims + 1 and max(layer.shape[1:]) > 1]
        if args.layer is None and not spatial:
            raise DeepvisError(f"no layer of {model.name} has {'time steps' if dims == 1 else 'pixels'}")
        layer = probe.layer(args.layer or spatial[-1].name)
        grid = tuple(layer.shape[1:])
        if len(grid) != dims:
            raise DeepvisError(f"{layer.name} has no {'time steps' if dims == 1 else 'pixels'}: its output is "
                               f"{tuple(layer.shape)}")
        if any(a >= g for a, g in zip(at, grid)):
            raise DeepvisError(f"--at {args.at} is outside {layer.name}'s {'x'.join(map(str, grid))} positions")
        field = measured_fields(module, probe, x, layer.name, [at])[0]
        theory = theoretical_field(module, probe, layer.name)
        verdict = None
        if grid == tuple(size):  # causality is about positions of one grid: the input's
            verdict = check_causality(module, probe, x, layer.name, progress=progress, cancel=INTERRUPT)
        return layer.name, field, theory, verdict

    tty = sys.stderr.isatty()

    def progress(fraction):
        if tty:
            print(f"\rcausality: {fraction:4.0%}", end="", file=sys.stderr, flush=True)

    try:
        layer, field, theory, verdict = compute_thread().call(work)
    finally:
        if tty:
            clear_progress_line(24)
    extent = [int(np.ptp(np.nonzero(field)[a])) + 1 if field.any() else 0 for a in range(dims)]
    picture = _picture(field, at if verdict is not None else None, verdict)
    if field.ndim == 1:
        picture = _band_width(picture, BAND_WIDTH)
    else:
        picture = upscale(picture, 512, max_side=MAX_PNG_SIDE)
    if not args.plain:
        picture = _field_figure(model.name, layer, args.at, field, picture, verdict)
    with outputs.writing():
        write_image(args.out, picture)
        if args.npy:
            save_npy(args.npy, field)
    report = {"model": model.name, "layer": layer, "at": list(at), "input_size": list(size),
              "measured_size": int(field.sum()), "measured_extent": extent, "theoretical_size": list(theory.size),
              "causal": None if verdict is None else verdict.causal,
              "strictly_causal": None if verdict is None else verdict.strict,
              "causality_checked": None if verdict is None else verdict.checked,
              "causality_positions": None if verdict is None else verdict.total}
    if args.json:
        print_json(report)
        return
    print(f"{layer} at {args.at}: depends on {report['measured_size']} input positions, spanning "
          f"{'x'.join(map(str, extent))} (theory for a chain of its {theory.convolutions} convolutions: "
          f"{'x'.join(map(str, theory.size))}) -> {args.out}")
    if verdict is not None:
        print("causal: no output depends on a later input" + ("" if verdict.causal else
              f" - NOT causal: {verdict.violations} outputs do, e.g. at {verdict.first}")
              + ("; strictly: none depends on its own position" if verdict.strict else "")
              + ("" if verdict.checked == verdict.total else
                 f" (checked at {verdict.checked:,} of {verdict.total:,} positions: the borders and a seeded random "
                 f"sample)"))


def _field_figure(model_name, layer, at, field, picture, verdict):
    """The field under a title that says what each colour is, with the input's axes."""
    from deepvis.render.figure import axes, figure

    key = "white: the input positions it depends on (measured)"
    if verdict is not None:
        key += "; red: the query position"
        if verdict.strict and field.ndim == 2:
            import numpy as np

            position = tuple(int(v) for v in at.replace("x", ",").split(","))
            earlier = np.arange(field.size).reshape(field.shape) < np.ravel_multi_index(position, field.shape)
            if (earlier & ~field).any():
                key += "; orange: earlier positions it cannot see (the blind spot)"
    title = f"{model_name} · {layer} at {at}: depends on {int(field.sum())} input positions"
    if field.ndim == 1:
        plot = axes(picture, "input time step", "", x_scale=(0.0, float(field.shape[0] - 1)))
    else:
        plot = axes(picture, "input x", "input y", x_scale=field.shape[1], y_scale=field.shape[0])
    return figure(plot, title, key)


def _picture(field, at, verdict):
    """The field in white; the query in red; for a strictly causal model the earlier positions
    it cannot see (a PixelCNN's blind spot) in orange. 1-D fields are drawn as a band."""
    import numpy as np

    grid = field if field.ndim == 2 else np.repeat(field[None], BAND_HEIGHT, axis=0)
    rgb = np.full((*grid.shape, 3), 40, np.uint8)
    rgb[grid] = 235
    if at is not None:
        if field.ndim == 2:
            earlier = np.zeros(field.shape, bool)
            earlier.reshape(-1)[:int(np.ravel_multi_index(at, field.shape))] = True
            if verdict is not None and verdict.strict:
                rgb[earlier & ~field] = (240, 150, 40)
            rgb[at] = (230, 40, 40)
        else:
            rgb[:, at[0]] = (230, 40, 40)
    return rgb


def _band_width(band, width: int):
    """A 1-D field's band about ``width`` pixels wide: shorter fields enlarged by whole pixels,
    longer ones reduced by taking each column's most telling sample (the query, then the field)."""
    import numpy as np

    length = band.shape[1]
    if length <= width:
        return np.repeat(band, max(1, width // length), axis=1)
    step = -(-length // width)
    pad = (-length) % step
    padded = np.pad(band, ((0, 0), (0, pad), (0, 0)), mode="edge")
    blocks = padded.reshape(band.shape[0], -1, step, 3)
    # Red (the query) wins over white (the field), white over the background.
    rank = (blocks[..., 0].astype(int) - blocks[..., 1]) * 4 + blocks[..., 1]
    pick = rank.argmax(axis=2)
    return np.take_along_axis(blocks, pick[..., None, None], axis=2)[:, :, 0]


BAND_HEIGHT = 96  # px: a 1-D field's band
BAND_WIDTH = 1024  # px: about this wide whatever the length (a 1024-sample field made 4096 px)
MAX_SAMPLES = 1024
MAX_PNG_SIDE = 4096  # px: the field's picture is enlarged until its short side is 512, up to this


def cmd_sample(args):
    import math

    import numpy as np

    from deepvis.autoregressive.sampling import MAX_WORK, levels_of, sample, sampling_work
    from deepvis.io.images import write_image
    from deepvis.live.computethread import compute_thread
    from deepvis.render.tiling import picture_grid, upscale

    outputs = Outputs()
    outputs.add(args.out, IMAGE)
    outputs.add(args.npy, NPY, "--npy")
    model = load_model_of(args)
    size = _ints(args.size, "size") if args.size else (model.spec.height, model.spec.width)
    if len(size) != 2 or min(size) < 1 or size[0] * size[1] > 65536:
        raise DeepvisError(f"--size {args.size}: expected HxW with at most 65,536 pixels")
    from deepvis.core.zoo import get_entry

    entry = get_entry(model.name)
    if entry is not None and entry.task != "autoregressive":
        # A segmentation net maps a grey picture to classes per pixel: shaped like a PixelCNN,
        # its classes would be drawn as grey levels.
        raise DeepvisError(f"{model.name} is a {entry.task} model: sample draws from autoregressive "
                           f"(PixelCNN-style) models such as digits_pixelcnn")
    # Is it a PixelCNN at all (one pass at its own size), before what sampling it would cost.
    compute_thread().call(levels_of, model.module, (model.spec.height, model.spec.width))
    if sampling_work(size, args.count) > MAX_WORK:
        raise DeepvisError(f"{args.count} samples at {size[0]}x{size[1]} take {size[0] * size[1]:,} forward passes "
                           f"over {args.count} pictures: {sampling_work(size, args.count):.2g} pixel evaluations, "
                           f"more than the {MAX_WORK:.2g} allowed; lower --size or --count")
    tty = sys.stderr.isatty()

    def progress(fraction):
        if tty:
            print(f"\rsampling: {fraction:4.0%}", end="", file=sys.stderr, flush=True)

    try:
        pictures = compute_thread().call(sample, model.module, size, args.count, args.seed, args.temperature,
                                         progress, INTERRUPT)
    finally:
        if tty:
            print("\r" + " " * 20 + "\r", end="", file=sys.stderr, flush=True)
    tiles = np.repeat((pictures[:, 0] * 255).round().astype(np.uint8)[..., None], 3, axis=3)
    sheet = picture_grid(tiles, math.ceil(math.sqrt(len(tiles))), 1)
    with outputs.writing():
        write_image(args.out, upscale(sheet, 512))
        if args.npy:
            save_npy(args.npy, pictures.astype(np.float32))
    print(f"{args.count} samples of {model.name} at {size[0]}x{size[1]}, seed {args.seed}, temperature "
          f"{args.temperature:g} -> {args.out}" + (f", {args.npy}" if args.npy else ""))

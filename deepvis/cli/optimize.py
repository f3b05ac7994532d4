"""``dream``, ``visualize-unit`` and ``profile-units``: what units respond to."""

import argparse
import sys

from deepvis.cli.common import (INTERRUPT, add_allow_truncated, add_model, add_scale, clamped, clear_progress_line,
                                enlarged, load_model_of, positive_int, probe_of, read_input, real, save_npy,
                                seed_number, whole)
from deepvis.errors import Cancelled, DeepvisError, require_finite
from deepvis.io.outputs import FOLDER, IMAGE, NPY, Outputs


def register(sub) -> None:
    p = sub.add_parser("dream", help="DeepDream: amplify what a layer or unit sees in an image")
    add_model(p)
    add_allow_truncated(p)
    p.add_argument("--input", required=True, metavar="IMG", help="the picture to dream on")
    p.add_argument("--layer", required=True, metavar="NAME", help="the layer whose activation is amplified")
    p.add_argument("--unit", type=whole(0), metavar="I", help="dream one unit instead of the whole layer")
    p.add_argument("--out", required=True, metavar="PNG", help="the dream")
    p.add_argument("--octaves", type=whole(1, 12), default=4, help="scales dreamed at (default: %(default)s)")
    p.add_argument("--octave-scale", type=real(1, 4, above=True), default=1.4,
                   help="size ratio between octaves (default: %(default)s)")
    p.add_argument("--steps", type=positive_int, default=10, help="steps per octave (default: %(default)s)")
    p.add_argument("--step-size", type=real(0, 10, above=True), default=0.02,
                   help="step in units of the input's normalized range (default: %(default)s)")
    p.add_argument("--jitter", type=whole(0, 512), default=16,
                   help="pixels of random roll before each step (default: %(default)s)")
    p.add_argument("--smooth", type=real(0, 64), default=0.0,
                   help="Gaussian sigma for the gradient, 0: none (default: %(default)s)")
    p.add_argument("--seed", type=seed_number, default=0, help="random seed (default: %(default)s)")
    add_scale(p)
    p.set_defaults(func=cmd_dream)

    p = sub.add_parser("visualize-unit", help="an image optimized from noise to excite one unit (feature viz)")
    add_model(p)
    p.add_argument("--layer", required=True, metavar="NAME", help="the unit's layer")
    p.add_argument("--unit", required=True, type=_unit_or_all, metavar="I|all",
                   help="a unit, or all: a sheet with one image per unit (cached; resumes after Ctrl-C)")
    p.add_argument("--out", required=True, metavar="PNG", help="the image (a sheet for --unit all)")
    p.add_argument("--size", type=positive_int, metavar="PX",
                   help="image size in pixels (default: the model's own input size when it runs at that size only, "
                        "an 8x8 digit model's 8x8; else 128)")
    p.add_argument("--steps", type=positive_int, help="optimization steps (default: 256 for fourier, 96 for maco, "
                                                      "whose steps each see 4 crops: about the same time)")
    p.add_argument("--seed", type=seed_number, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--neuron", action="store_true",
                   help="excite the one activation at the centre of the unit's map, not the whole channel")
    # The choices are deepvis.optimize.unitviz.RECIPES, written out: the parser imports no torch.
    p.add_argument("--recipe", choices=("fourier", "maco"), default=None,
                   help="fourier: lucid's 1/f spectrum with jitter, scale and rotation; maco: only the phase is "
                        "optimized, the magnitude a natural image's (Fel et al. 2023) (default: maco for RGB models, "
                        "better by deepvis bench unitviz; fourier for a grey model of one small input size)")
    p.add_argument("--alpha", action="store_true",
                   help="with --recipe maco: write MACO's transparency map as the PNG's alpha (where the unit looked)")
    p.add_argument("--npy", metavar="FILE", help="the picture at its own size, uint8 (H, W, C); for --unit all "
                                                 "(units, H, W, C)")
    p.add_argument("--min-size", type=positive_int, default=256, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_visualize_unit)

    p = sub.add_parser("profile-units", help="for every unit of a layer, the top-k images and their patches")
    add_model(p)
    add_allow_truncated(p)
    p.add_argument("--data", default="samples", metavar="DIR|digits|samples",
                   help="images to rank (default: %(default)s, the bundled photos and crops of them)")
    p.add_argument("--layer", required=True, metavar="NAME", help="the layer whose units are profiled")
    p.add_argument("--top", type=positive_int, default=9, metavar="K",
                   help="images kept per unit (default: %(default)s)")
    p.add_argument("--out", required=True, metavar="DIR", help="a folder for the sheets")
    p.add_argument("--no-cache", action="store_true", help="recompute the activations even if cached")
    p.add_argument("--json", action="store_true", help="print the summary, with the dead units, as JSON")
    p.set_defaults(func=cmd_profile_units)


def cmd_dream(args):
    from deepvis.optimize.dream import Dreamer, DreamSettings
    from deepvis.io.images import write_image

    outputs = Outputs()
    outputs.add(args.out, IMAGE)
    settings = DreamSettings(args.layer, args.unit, args.octaves, args.octave_scale, args.steps, args.step_size,
                             args.jitter, args.smooth)
    settings.check()
    model = load_model_of(args)
    image = read_input(args.input)
    dreamer = Dreamer(model, probe_of(model))
    dreamer.check(settings, image)
    before = dreamer.score(image, settings)
    tty = sys.stderr.isatty()
    last = None
    for last in dreamer.run(image, settings, seed=args.seed, cancel=INTERRUPT):
        if tty:
            print(f"\rdream: octave {last.octave + 1}/{settings.octaves}, step {last.step + 1}/{settings.steps}",
                  end="", file=sys.stderr, flush=True)
    if tty:
        clear_progress_line(48)
    after = dreamer.score(last.image, settings)
    picture = enlarged(last.image, args.scale)
    with outputs.writing():
        write_image(args.out, picture)
    what = f"unit {args.unit} of {args.layer}" if args.unit is not None else args.layer
    print(f"dream of {what}: objective {before:.4g} -> {after:.4g} ({after / before if before else float('inf'):.2f}x), "
          f"{last.image.shape[1]}x{last.image.shape[0]} -> {args.out}")


DEFAULT_VIZ_SIZE = 128  # px: a feature visualization of a model that takes any size
DEFAULT_VIZ_STEPS = 256  # Fourier steps, or MACO's in about the same time


def cmd_visualize_unit(args):
    from deepvis.io.images import write_image
    from deepvis.render.tiling import upscale
    from deepvis.optimize.unitviz import UnitVisualizer, VizSettings, default_recipe, equal_time_steps

    outputs = Outputs()
    outputs.add(args.out, IMAGE)
    outputs.add(args.npy, NPY, "--npy")
    model = load_model_of(args)
    viz = UnitVisualizer(model, probe_of(model))
    fixed = viz.fixed_input_size() if args.size is None else None
    size = fixed or args.size or DEFAULT_VIZ_SIZE
    recipe = args.recipe or default_recipe(viz.channels, fixed is not None)
    if args.alpha and recipe != "maco":
        raise DeepvisError("--alpha is MACO's transparency map: use it with --recipe maco")
    if args.alpha and args.unit == "all":
        raise DeepvisError("--alpha applies to one unit's picture, not to --unit all's sheet")
    steps = args.steps if args.steps is not None else equal_time_steps(recipe, DEFAULT_VIZ_STEPS)
    settings = VizSettings(args.layer, 0 if args.unit == "all" else args.unit, size, steps,
                           neuron=args.neuron, fixed=fixed is not None, recipe=recipe)
    settings.check()
    viz.check(settings)
    if args.unit == "all":
        _visualize_layer(model, viz, settings, outputs, args)
        return
    tty = sys.stderr.isatty()

    def progress(fraction, value):
        if tty:
            print(f"\rvisualize-unit ({recipe}): {fraction:4.0%}, activation {value:.4g}", end="", file=sys.stderr,
                  flush=True)

    images, alpha = viz.run_with_alpha(settings, [args.unit], seed=args.seed, progress=progress, cancel=INTERRUPT)
    if tty:
        clear_progress_line(60)
    image = images[0]
    what = "centre-neuron" if args.neuron else "spatial-mean"
    value = viz.value_of(image, args.layer, args.unit, args.neuron)
    require_finite(value, f"unit {args.unit} of {args.layer}")
    picture = image
    if args.alpha:
        import numpy as np

        # The transparency as the alpha channel: where the unit looked stays, the rest fades.
        picture = np.dstack([image, np.round(np.sqrt(alpha[0]) * 255).astype(np.uint8)])
    with outputs.writing():
        write_image(args.out, upscale(picture, args.min_size))
        if args.npy:
            save_npy(args.npy, image)
    print(f"unit {args.unit} of {args.layer}: {what} activation {value:.4g} on the {size}x{size} image ({recipe}"
          + ("; the model's own input size, enlarged by nearest neighbour" if fixed else "") + f") -> {args.out}")


def _visualize_layer(model, viz, settings, outputs, args):
    import numpy as np

    from deepvis.core.cache import model_fingerprint
    from deepvis.io.images import write_image
    from deepvis.render.tiling import picture_grid
    from deepvis.optimize.unitviz import visualize_layer

    def progress(done, total):
        print(f"\r{done}/{total} units", end="", file=sys.stderr, flush=True)

    try:
        sheet = visualize_layer(viz, settings, model_fingerprint(model), seed=args.seed, progress=progress,
                                cancel=INTERRUPT)
    except Cancelled:
        raise Cancelled("the finished batches of units are cached; run the same command again to continue") \
            from None
    print(file=sys.stderr)
    columns = int(np.ceil(np.sqrt(len(sheet.images))))
    values = [viz.value_of(image, args.layer, unit, args.neuron) for unit, image in enumerate(sheet.images)]
    require_finite(float(np.sum(values)), f"the units of {args.layer}")
    with outputs.writing():
        write_image(args.out, picture_grid(sheet.images, columns, border=2, fill=30))
        if args.npy:
            save_npy(args.npy, np.stack(sheet.images))
    print(f"{len(values)} units of {args.layer}: spatial-mean activation median {np.median(values):.4g}, "
          f"min {min(values):.4g} -> {args.out}")


def _unit_or_all(text: str):
    if text == "all":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a unit number or 'all'") from None


def cmd_profile_units(args):
    import numpy as np

    from deepvis.cli.common import print_json
    from deepvis.io.datasets import open_dataset
    from deepvis.io.images import write_image
    from deepvis.optimize.profiles import profile_sheet, profile_units
    from deepvis.render.tiling import upscale

    outputs = Outputs()
    out = outputs.add(args.out, FOLDER)
    model = load_model_of(args)
    dataset = open_dataset(args.data)
    profiles = profile_units(model, dataset, args.layer, k=min(args.top, len(dataset)), probe=probe_of(model),
                             use_cache=not args.no_cache, cancel=INTERRUPT)
    # Said once the work succeeded: a folder of unreadable files is one error line, not a note too.
    args.top = clamped("--top", args.top, len(dataset), f"the number of images in {args.data}")
    # Dead units (never active on these images) have no top images: no picture, no rows in
    # top.csv, "dead" on the sheet, and listed below.
    dead = [int(u) for u in np.flatnonzero(profiles.dead)]
    with outputs.writing():
        try:
            out.mkdir(parents=True, exist_ok=True)
            for unit in range(len(profiles.patches)):
                if not profiles.dead[unit]:
                    write_image(out / f"unit_{unit:04d}.png", upscale(np.hstack(list(profiles.patches[unit])), 96))
            write_image(out / "sheet.png", profile_sheet(profiles))
            with open(out / "top.csv", "w", encoding="utf-8", errors="surrogateescape") as f:
                f.write("unit,rank,value,item,y,x,label,path\n")
                for unit in np.flatnonzero(~profiles.dead):
                    for rank in range(profiles.values.shape[1]):
                        i = int(profiles.items[unit, rank])
                        y, x = profiles.locations[unit, rank]
                        f.write(f"{unit},{rank},{profiles.values[unit, rank]:.6g},{i},{y},{x},"
                                f"{dataset.labels[i] or ''},{dataset.paths[i] or ''}\n")
        except OSError as exc:
            raise DeepvisError(f"cannot write to {out}: {exc.strerror or exc}") from None
    if args.json:
        print_json({"layer": args.layer, "units": len(profiles.values), "top": args.top, "images": len(dataset),
                    "field": profiles.field, "dead": dead,
                    "dead_max": [float(profiles.values[u, 0]) for u in dead], "out": str(out)})
        return
    print(f"top {args.top} of {len(dataset)} images for {len(profiles.values) - len(dead)} units of {args.layer} "
          f"(receptive field {profiles.field} px) -> {out}/unit_*.png, sheet.png, top.csv")
    if dead:
        print(f"{len(dead)} dead units (max <= 0 on every image, no top images): {', '.join(map(str, dead))}")

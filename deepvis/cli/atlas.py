"""``atlas build|map|units``: a model's atlas over an image folder of any size, on Ray."""

import sys

from deepvis.cli.common import (INTERRUPT, add_model, model_options, Parser, positive_int, print_json, real,
                               seed_number)
from deepvis.errors import Cancelled, DeepvisError


def register(sub) -> None:
    p = sub.add_parser("atlas", help="features, unit profiles and maps over large image folders (on Ray: "
                                     "local by default, a cluster with --address)")
    commands = p.add_subparsers(dest="atlas_command", metavar="build|map|units", parser_class=Parser)
    commands.required = True

    b = commands.add_parser("build", help="compute or extend an atlas (a rerun adds only new images)")
    add_model(b)
    b.add_argument("--data", required=True, metavar="DIR", help="image folder; labels are first-level folder names")
    b.add_argument("--out", required=True, metavar="ATLAS", help="the atlas folder (new, or one to extend)")
    b.add_argument("--layers", metavar="L,L,...", help="layers to keep (default: the layer before the head)")
    b.add_argument("--top", type=positive_int, default=9, metavar="K",
                   help="top images kept per unit (default: %(default)s)")
    _add_engine(b)
    b.add_argument("--workers", type=positive_int, metavar="N", help="model workers (default: one per CPU, "
                                                                     "or per GPU when the cluster has them)")
    b.add_argument("--batch", type=positive_int, default=64, help="images per forward pass (default: %(default)s)")
    b.add_argument("--json", action="store_true", help="print the summary as JSON")
    b.set_defaults(func=cmd_build)

    m = commands.add_parser("map", help="2-D layout (t-SNE on a sample, the rest placed into it; PCA; UMAP)")
    m.add_argument("atlas", metavar="ATLAS", help="the atlas folder")
    m.add_argument("--layer", metavar="NAME", help="the layer to lay out (default: the atlas's first layer)")
    m.add_argument("--method", choices=("tsne", "pca", "umap"), default="tsne",
                   help="the projection to 2-D (umap needs deepvis[umap]; default: %(default)s)")
    m.add_argument("--sample", type=positive_int, default=20_000, metavar="N",
                   help="rows the layout is fitted on; the rest are placed into it (default: %(default)s)")
    m.add_argument("--perplexity", type=real(1, 1000), default=30.0, help="t-SNE's perplexity (default: %(default)s)")
    m.add_argument("--seed", type=seed_number, default=0, help="random seed (default: %(default)s)")
    m.add_argument("--json", action="store_true", help="print the summary as JSON")
    m.set_defaults(func=cmd_map)

    u = commands.add_parser("units", help="top-k patches of every unit, and optionally its feature visualization")
    u.add_argument("atlas", metavar="ATLAS", help="the atlas folder")
    u.add_argument("--layer", metavar="NAME", help="the layer whose units are profiled (default: the atlas's first "
                                                   "layer)")
    u.add_argument("--visualize", action="store_true", help="also every unit's feature visualization (parallel "
                                                            "Ray tasks; cached, a rerun does only the rest)")
    u.add_argument("--size", type=positive_int, default=128,
                   help="visualization size in pixels (default: %(default)s)")
    u.add_argument("--steps", type=positive_int, default=128,
                   help="optimization steps per visualization (default: %(default)s)")
    _add_engine(u)
    u.add_argument("--seed", type=seed_number, default=0, help="random seed (default: %(default)s)")
    u.add_argument("--json", action="store_true", help="print the summary as JSON")
    u.set_defaults(func=cmd_units)


def _add_engine(p) -> None:
    p.add_argument("--engine", choices=("auto", "ray", "local"), default="auto",
                   help="ray (Ray), local (this process) or auto: Ray when installed (default: %(default)s)")
    p.add_argument("--address", metavar="ADDR", help="a Ray cluster (default $RAY_ADDRESS, else a local Ray)")


class _Progress:
    def __init__(self):
        self.tty = sys.stderr.isatty()

    def __call__(self, *parts):
        if self.tty:
            text = " ".join(str(p) for p in parts[:-2]) + f" {parts[-2]}/{parts[-1]}"
            print(f"\r{text:<50}", end="", file=sys.stderr, flush=True)

    def done(self):
        if self.tty:
            print("\r" + " " * 50 + "\r", end="", file=sys.stderr, flush=True)


def _print(result: dict, as_json: bool) -> None:
    if as_json:
        print_json(result, None)
    else:
        print("\n".join(f"{k:>16}  {v}" for k, v in result.items()))


def cmd_build(args):
    from deepvis.atlas.build import build_atlas

    if args.model is None:
        from deepvis.core.defaults import DEFAULT_MODEL

        args.model = DEFAULT_MODEL
    options = {"source": args.model, "weights": args.weights, **model_options(args)}
    layers = [name.strip() for name in args.layers.split(",") if name.strip()] if args.layers else None
    progress = _Progress()
    try:
        result = build_atlas(options, args.data, args.out, layers=layers, k=args.top, address=args.address,
                             workers=args.workers, batch=args.batch, engine=args.engine,
                             progress=lambda done, total: progress("images", done, total), cancel=INTERRUPT)
    except Cancelled:
        progress.done()
        raise Cancelled(_kept(args.out)) from None
    progress.done()
    note = result.pop("note", None)
    if note:
        print(f"note: {note}", file=sys.stderr)
    skipped = result.pop("skipped_files")
    for line in skipped[:20]:
        print(f"skipped {line}", file=sys.stderr)
    if len(skipped) > 20:
        print(f"skipped {len(skipped) - 20} more (all listed in {args.out}/skipped.json)", file=sys.stderr)
    _print(result, args.json)


def _kept(out) -> str:
    """What a stopped build kept, from the manifest it updated on the way out."""
    from deepvis.atlas.store import Atlas

    try:
        images = Atlas(out).manifest.get("counts", {}).get("images", 0)
    except DeepvisError:  # stopped before its first commit: nothing of it is left
        return f"nothing kept in {out}; run the same command again to start"
    return f"{out} keeps {images:,} images, its manifest counts them; run the same command again to resume"


def cmd_map(args):
    from deepvis.atlas.layout import atlas_map
    from deepvis.atlas.store import Atlas

    atlas = Atlas(args.atlas)
    progress = _Progress()
    info = atlas_map(atlas, args.layer, args.method, sample=args.sample, perplexity=args.perplexity,
                     seed=args.seed, progress=progress)
    progress.done()
    note = info.pop("note", None)
    if note:
        print(f"note: {note}", file=sys.stderr)
    _print(info, args.json)


def cmd_units(args):
    from deepvis.atlas.store import Atlas
    from deepvis.atlas.units import check_visualization, load_atlas_model, unit_patches, visualize_units

    atlas = Atlas(args.atlas)
    layer = args.layer or atlas.layers[0]
    if layer not in atlas.layers:
        raise DeepvisError(f"{atlas.path} holds the layers {', '.join(atlas.layers)}; not {layer!r}")
    model = load_atlas_model(atlas)
    if args.visualize:  # refused now, not after the patches were written
        check_visualization(atlas, layer, args.size, args.steps, model)
    progress = _Progress()
    result = unit_patches(atlas, layer, model, progress=lambda done, total: progress("patches", done, total),
                          cancel=INTERRUPT)
    lost = result["images_missing"] + result["images_changed"]
    if lost:
        print(f"note: {result['images_missing']} of the top images are missing and {result['images_changed']} changed "
              f"since the build: their patches are blank and marked stale (build the atlas again to refresh it)",
              file=sys.stderr)
    elif not result["sources_recorded"]:
        print("note: this atlas was built before sources were recorded: a top image changed since cannot be "
              "told (a missing one can)", file=sys.stderr)
    if args.visualize:
        result["visualization"] = visualize_units(
            atlas, layer, engine=args.engine, address=args.address, size=args.size, steps=args.steps,
            seed=args.seed, model=model, progress=lambda done, total: progress("units", done, total),
            cancel=INTERRUPT)
    progress.done()
    _print(result, args.json)

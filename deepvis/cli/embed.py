"""``embed``: a 2-D map of a layer's features over a dataset."""

import sys

from deepvis.cli.common import (INTERRUPT, add_allow_truncated, add_model, add_plain, clear_progress_line,
                                load_model_of, maybe_number, positive_int, real, seed_number)
from deepvis.errors import DeepvisError
from deepvis.io.outputs import CSV, IMAGE, Outputs


def register(sub) -> None:
    p = sub.add_parser("embed", help="2-D map (t-SNE, PCA, UMAP) of a layer's features over a dataset")
    add_model(p)
    add_allow_truncated(p)
    p.add_argument("--data", required=True, metavar="DIR|digits",
                   help="an image folder (labels from subfolder names) or digits (scikit-learn's 8x8 digits)")
    p.add_argument("--layer", metavar="NAME", help="default: the layer before the classifier head")
    p.add_argument("--method", choices=("tsne", "pca", "umap"), default="tsne",
                   help="the projection to 2-D (umap needs deepvis[umap]; default: %(default)s)")
    p.add_argument("--out", required=True, metavar="PNG", help="the map, with thumbnails")
    p.add_argument("--csv", metavar="FILE", help="coordinates: x,y,label,path")
    p.add_argument("--perplexity", type=real(1, 1000), default=30.0, help="t-SNE's perplexity (default: %(default)s)")
    p.add_argument("--exaggeration", type=real(0, 100, above=True),
                   help="t-SNE exaggeration after the early phase (default: 1)")
    p.add_argument("--pooling", choices=("avg", "flatten"), default="avg",
                   help="spatial layers: global average or every value (default: %(default)s)")
    p.add_argument("--batch", type=positive_int, default=64,
                   help="images per forward pass (default: %(default)s)")
    p.add_argument("--seed", type=seed_number, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--points", action="store_true", help="draw points only, no thumbnails")
    p.add_argument("--no-cache", action="store_true", help="recompute the features even if cached")
    add_plain(p)
    p.set_defaults(func=cmd_embed)


def cmd_embed(args):
    from deepvis.io.datasets import open_dataset
    from deepvis.embed.projection import check_tsne_settings, knn_score, knn_words, project, trustworthiness
    from deepvis.embed.render import render_map, write_csv
    from deepvis.embed.features import extract_features
    from deepvis.io.images import write_image

    outputs = Outputs()
    outputs.add(args.out, IMAGE)
    outputs.add(args.csv, CSV, "--csv")
    check_tsne_settings(args.perplexity, args.exaggeration)
    model = load_model_of(args)
    dataset = open_dataset(args.data)
    tty = sys.stderr.isatty()

    def say(text):
        if tty:
            print(f"\r{text:<40}", end="", file=sys.stderr, flush=True)

    features = extract_features(model, dataset, args.layer, pooling=args.pooling, batch=args.batch,
                                use_cache=not args.no_cache, cancel=INTERRUPT,
                                progress=lambda done, total: say(f"features {done}/{total}"))
    result = project(features.vectors, args.method, perplexity=args.perplexity, exaggeration=args.exaggeration,
                     seed=args.seed, progress=lambda it, total, _c: say(f"{args.method} {it}/{total}"))
    if tty:
        clear_progress_line(40)
    knn, k = knn_score(result.coords, features.labels)
    trust = trustworthiness(features.vectors, result.coords)
    picture = render_map(result.coords, features.labels, None if args.points else features.thumbnails)
    quality = f"{knn_words(knn, k)}, " if knn is not None else ""
    if not args.plain:
        from deepvis.render.figure import figure

        how = f"perplexity {args.perplexity:g}" if args.method == "tsne" else ""
        note = result.note(args.perplexity)
        picture = figure(picture, f"{model.name} · {features.layer} · {args.method} of {len(features)} "
                                  f"{dataset.name} points",
                         f"{quality}trustworthiness {maybe_number(trust)}" + (f"; {how}" if how else "")
                         + (f"; {note}" if note else ""))
    with outputs.writing():
        write_image(args.out, picture)
        if args.csv:
            try:
                write_csv(args.csv, result.coords, features.labels, features.paths)
            except OSError as exc:
                raise DeepvisError(f"cannot write {args.csv}: {exc.strerror or exc}") from None
    for note in features.skipped[:5]:
        print(f"skipped {note}", file=sys.stderr)
    if result.note(args.perplexity):
        print(f"note: {result.note(args.perplexity)}", file=sys.stderr)
    print(f"{args.method} map of {features.layer} over {dataset.name}: {len(features)} points"
          f"{' (cached features)' if features.cached else ''}, {quality}trustworthiness {maybe_number(trust)}, "
          f"{result.seconds:.1f} s -> {args.out}" + (f", {args.csv}" if args.csv else ""))

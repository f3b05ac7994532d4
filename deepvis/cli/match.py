"""``match``: where points of one picture are in another, by a layer's features; and the mean
matching accuracy of a layer (or of SIFT) on sequences in the HPatches layout."""

from deepvis.cli import common
from deepvis.cli.common import (INTERRUPT, add_allow_truncated, add_model, end_progress, load_model_of,
                                print_json, stage_progress, whole)
from deepvis.core.defaults import DESCRIPTOR_MODEL
from deepvis.errors import DeepvisError
from deepvis.io.outputs import IMAGE, Outputs

MAX_POINTS = 16


def register(sub) -> None:
    p = sub.add_parser("match", help="dense correspondence between two pictures from a layer's features, or its "
                                     "mean matching accuracy on HPatches-style sequences (--eval)")
    add_model(p, DESCRIPTOR_MODEL)
    add_allow_truncated(p)
    p.add_argument("--layer", metavar="NAME", help="a layer with a spatial grid (default: the deepest one at least "
                                                   "an eighth of the input's side)")
    p.add_argument("--input", metavar="IMG", help="the first picture")
    p.add_argument("--input2", metavar="IMG", help="the second picture")
    p.add_argument("--at", action="append", default=[], metavar="Y,X",
                   help="a point of the first picture to find in the second (repeatable, up to 16); without it: "
                        "the mutual nearest neighbours")
    p.add_argument("--matches", type=whole(1, 10_000), default=100, metavar="N",
                   help="mutual nearest neighbours drawn without --at (default: %(default)s)")
    p.add_argument("--out", metavar="PNG", help="the heat maps, or the pairs as lines")
    p.add_argument("--eval", metavar="DIR", help="sequences in the HPatches layout (v_*/, i_*/ with 1.png ... and "
                                                 "H_1_k): the mean matching accuracy at 1 to 10 px")
    p.add_argument("--baseline", choices=("sift",), help="with --eval: also upright RootSIFT on the same protocol")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.set_defaults(func=cmd_match)


def _point(text: str) -> tuple[float, float]:
    try:
        y, x = (float(v) for v in text.split(","))
    except ValueError:
        raise DeepvisError(f"--at {text}: expected Y,X (a row and a column of the first picture)") from None
    return x, y


def cmd_match(args):
    from deepvis.core.probe import Probe
    from deepvis.live.computethread import compute_thread

    if args.eval:
        if args.input or args.input2 or args.at or args.out:
            raise DeepvisError("--eval takes sequences: leave out --input, --input2, --at and --out")
        return _evaluate(args)
    if args.baseline:
        raise DeepvisError("--baseline applies to --eval")
    if not (args.input and args.input2):
        raise DeepvisError("give --input and --input2 (two pictures), or --eval DIR")
    if len(args.at) > MAX_POINTS:
        raise DeepvisError(f"--at given {len(args.at)} times: at most {MAX_POINTS}")
    points = [_point(text) for text in args.at]
    outputs = Outputs()
    outputs.add(args.out, IMAGE)
    a, b = common.read_input(args.input), common.read_input(args.input2)
    for x, y in points:
        if not (0 <= x <= a.shape[1] - 1 and 0 <= y <= a.shape[0] - 1):
            raise DeepvisError(f"--at {y:g},{x:g} is outside {args.input} ({a.shape[1]}x{a.shape[0]})")
    model = load_model_of(args)

    def work():
        from deepvis.matching.dense import default_layer, describe, match, mutual_nearest

        probe = Probe(model.module, model.example_input())
        layer = args.layer or default_layer(probe, model.spec, model.task)
        da, db = describe(model, probe, a, layer), describe(model, probe, b, layer)
        if points:
            return layer, [match(da, db, p) for p in points], None
        return layer, None, mutual_nearest(da, db, args.matches)

    layer, found, pairs = compute_thread().call(work)
    if args.out:
        from deepvis.io.images import write_image
        from deepvis.matching.pictures import heatmaps_picture, lines_picture

        title = f"{model.name} · {layer}"
        picture = heatmaps_picture(a, b, found, title) if found is not None else lines_picture(a, b, pairs, title)
        with outputs.writing():
            write_image(args.out, picture)
    if found is not None:
        rows = [{"at": [m.query[1], m.query[0]], "best": [m.best[1], m.best[0]], "similarity": m.similarity,
                 "confidence": m.confidence} for m in found]
        if args.json:
            print_json({"model": model.name, "layer": layer, "matches": rows, "out": args.out})
            return
        for row in rows:
            print(f"({row['at'][0]:g}, {row['at'][1]:g}) -> ({row['best'][0]}, {row['best'][1]})  similarity "
                  f"{row['similarity']:.3f}  confidence x{row['confidence']:.2f}")
        return
    rows = [{"a": [p["a"][1], p["a"][0]], "b": [p["b"][1], p["b"][0]], "similarity": p["similarity"]} for p in pairs]
    if args.json:
        print_json({"model": model.name, "layer": layer, "mutual": rows, "out": args.out})
        return
    print(f"{len(rows)} mutual nearest neighbours of {layer}" + (f" -> {args.out}" if args.out else ""))


def _evaluate(args):
    from deepvis.core.probe import Probe
    from deepvis.live.computethread import compute_thread
    from deepvis.matching.dense import default_layer, describe
    from deepvis.matching.hpatches import evaluate, read_sequences, rootsift_dense

    sequences = read_sequences(args.eval)
    model = load_model_of(args)

    def work():
        probe = Probe(model.module, model.example_input())
        layer = args.layer or default_layer(probe, model.spec, model.task)
        result = evaluate(lambda image: describe(model, probe, image, layer).pixels, sequences, stage_progress,
                          INTERRUPT)
        result = {"model": model.name, "layer": layer, **result}
        if args.baseline == "sift":
            result["sift"] = evaluate(rootsift_dense, sequences, stage_progress, INTERRUPT)
        return result

    result = compute_thread().call(work)
    end_progress()
    if args.json:
        print_json(result)
        return
    print(f"{result['model']} · {result['layer']}: {result['pairs']} pairs, {result['points']:,} points")
    rows = [("layer", result)] + ([("sift", result["sift"])] if "sift" in result else [])
    print(f"{'':<8} {'':<13} " + " ".join(f"{'@' + str(t):>6}" for t in (1, 3, 5, 10)))
    for name, figures in rows:
        for split in ("mma", "viewpoint", "illumination"):
            if figures.get(split):
                print(f"{name:<8} {split:<13} " + " ".join(f"{figures[split][str(t)]:>6.3f}" for t in (1, 3, 5, 10)))


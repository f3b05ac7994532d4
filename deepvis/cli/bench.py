"""``bench``: benchmarks as ratios against a bare baseline."""


from deepvis.cli.common import add_model, load_model_of, model_options, positive_float, positive_int, print_json
from deepvis.errors import DeepvisError


def register(sub) -> None:
    p = sub.add_parser("bench", help="benchmarks as ratios against a bare baseline (live, saliency, embed, dream, "
                                     "gui-live, render3d, map-view)")
    p.add_argument("name", metavar="NAME", help="live, saliency, embed, dream, unitviz, atlas, doctor, match, graph, "
                                                "gui-live, soak, render3d, map-view or graph-view (the last five need a "
                                                "display, e.g. xvfb-run)")
    add_model(p)
    p.add_argument("--input", metavar="PATH", help="image, folder or video (default: the bundled photos)")
    p.add_argument("--frames", type=positive_int, metavar="N",
                   help="frames to measure (live: 100, saliency: 10); embed: points (10,000); render3d: points "
                        "(1,000,000); atlas: images (384); doctor: inputs (500); graph-view: steps of each camera "
                        "move (60)")
    p.add_argument("--seconds", type=positive_float, metavar="S",
                   help="gui-live: how long to measure the window (10); soak: how long to run it (480); unitviz: "
                        "seconds per picture and recipe (20)")
    p.add_argument("--layer", metavar="NAME", help="layer in view (default: the largest conv layer)")
    p.add_argument("--saliency", metavar="METHOD",
                   help="live, gui-live: also compute this saliency map each frame; the bare baseline becomes "
                        "a forward and a backward pass; soak: the methods to cycle, comma-separated "
                        "(default off and every method)")
    p.add_argument("--points", type=positive_int, metavar="N", help="map-view: points on the map (1,000,000)")
    p.add_argument("--without-tab", action="append", default=[], metavar="TITLE",
                   help="gui-live: leave this tab out of the window (repeatable), to measure what it costs "
                        "(e.g. 3-D: its OpenGL view must not slow the window)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    # The benchmark drives the compute thread from outside, as the GUI does.
    p.set_defaults(func=cmd_bench, on_compute_thread=False)


def cmd_bench(args):
    from deepvis.bench.engine import BENCHMARKS

    if args.without_tab and args.name != "gui-live":
        raise DeepvisError("--without-tab applies to the gui-live benchmark")
    if args.name == "gui-live":
        # Needs Qt, so it lives with the views; the CLI only dispatches to it.
        from deepvis.widgets.bench.gui_live import bench_gui_live

        result = bench_gui_live(args.model, args.input, seconds=args.seconds or 10.0, weights=args.weights,
                                model_options=model_options(args), saliency=args.saliency,
                                without_views=tuple(args.without_tab))
        _emit(result, args.json, 20)
        return
    if args.name == "soak":
        from deepvis.widgets.bench.soak import bench_soak

        methods = args.saliency.split(",") if args.saliency else None
        result = bench_soak(args.model, args.input, seconds=args.seconds or 480.0, weights=args.weights,
                            model_options=model_options(args), methods=methods)
        _emit(result, args.json, 30)
        return
    if args.name == "render3d":
        from deepvis.widgets.bench.render3d import bench_render3d

        result = bench_render3d(points=args.frames or 1_000_000)
        _emit(result, args.json, 22)
        return
    if args.name == "map-view":
        from deepvis.widgets.bench.largemap import bench_map_view

        result = bench_map_view(points=args.points or 1_000_000)
        _emit(result, args.json, 22)
        return
    if args.name == "graph-view":
        from deepvis.widgets.bench.graphview import bench_graph_view

        _emit(bench_graph_view(steps=args.frames or 60), args.json, 12)
        return
    if args.name == "atlas":
        from deepvis.bench.atlas import bench_atlas
        from deepvis.live.computethread import compute_thread

        options = {"source": args.model, "weights": args.weights, **model_options(args)}
        result = compute_thread().call(bench_atlas, options, args.input, images=args.frames or 384)
        # The atlas's map view at a million points; it needs Qt, so the composition root adds it.
        try:
            from deepvis.widgets.bench.largemap import bench_map_view

            view = bench_map_view(points=1_000_000)
            result["map_view_1m_median_ms"] = view["median_ms"]
            result["map_view_1m_p95_ms"] = view["p95_ms"]
            result["map_view_1m_per_level"] = {k: v["median_ms"] for k, v in view["per_level"].items()}
        except DeepvisError as exc:
            result["map_view_1m_median_ms"] = f"not measured: {exc}"
        _emit(result, args.json, 24)
        return
    if args.name == "doctor":
        from deepvis.bench.doctor import bench_doctor
        from deepvis.live.computethread import compute_thread

        model = load_model_of(args)
        result = compute_thread().call(bench_doctor, model, args.input, inputs=args.frames or 500)
        _emit(result, args.json, 24)
        return
    if args.name == "graph":
        from deepvis.bench.graph import bench_graph
        from deepvis.live.computethread import compute_thread

        model = load_model_of(args) if args.model else None  # default: resnet18 (random weights: no download)
        result = compute_thread().call(bench_graph, model)
        _emit(result, args.json, 22)
        return
    if args.name == "match":
        from deepvis.bench.match import bench_match
        from deepvis.live.computethread import compute_thread

        model = load_model_of(args) if args.model else None  # default: the self-supervised descriptor
        result = compute_thread().call(bench_match, model, args.layer)
        _emit(result, args.json, 20)
        return
    if args.name == "unitviz":
        import sys

        from deepvis.bench.unitviz import bench_unitviz
        from deepvis.live.computethread import compute_thread

        model = load_model_of(args)
        result = compute_thread().call(bench_unitviz, model, layer=args.layer, frames=args.frames,
                                       seconds=args.seconds, progress=lambda line: print(line, file=sys.stderr))
        if args.json:
            print_json(result, None)
            return
        for recipe, row in result["summary"].items():
            print(f"{recipe:>8}  " + "  ".join(f"{k} {v:g}" for k, v in row.items()))
        print(f"better median rank: {result['better_median_rank']}")
        return
    if args.name not in BENCHMARKS:
        others = ("unitviz", "atlas", "doctor", "match", "graph", "gui-live", "render3d", "map-view", "graph-view", "soak")
        raise DeepvisError(f"unknown benchmark {args.name!r}: expected one of {', '.join([*BENCHMARKS, *others])}")
    # The embedding benchmark's default data are digits, so its default model is digits_cnn.
    model = load_model_of(args) if args.name != "embed" or args.model else None
    extra = {"saliency": args.saliency} if args.saliency else {}
    if extra and args.name != "live":
        raise DeepvisError("--saliency applies to the live and gui-live benchmarks")
    if args.frames is not None:
        extra["frames"] = args.frames
    result = BENCHMARKS[args.name](model, input_spec=args.input, layer=args.layer, **extra)
    if args.json:
        print_json(result, None)
        return
    for key, value in result.items():
        print(f"{key:>16}  {value}")


def _emit(result: dict, as_json: bool, width: int) -> None:
    """A bench's figures: strict JSON on one line, or one aligned row each."""
    if as_json:
        print_json(result, None)
    else:
        print("\n".join(f"{k:>{width}}  {v}" for k, v in result.items()))

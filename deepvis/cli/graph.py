"""``graph``: a model's dataflow graph, recorded from one forward pass, as SVG, a picture or
JSON."""

from pathlib import Path

from deepvis.cli.common import add_allow_truncated, add_model, load_model_of, print_json
from deepvis.errors import DeepvisError
from deepvis.io.outputs import IMAGE, JSON, SVG, Outputs


def register(sub) -> None:
    p = sub.add_parser("graph", help="the model's dataflow graph (skip connections, concatenations, shapes): SVG, "
                                     "PNG or JSON")
    add_model(p)
    add_allow_truncated(p)
    p.add_argument("--out", metavar="SVG|PNG|JSON", help="the drawing (.svg, or a picture: .png, .jpg, ...), or the "
                                                        "whole graph as JSON (.json)")
    p.add_argument("--expand", action="append", default=[], metavar="GROUP",
                   help="draw this collapsed module group's insides (repeatable; 'all' for every group; default: "
                        "repeated blocks collapsed)")
    p.add_argument("--collapse", action="append", default=[], metavar="GROUP",
                   help="draw this module group as one node (repeatable), as well as the repeated blocks")
    p.add_argument("--plumbing", action="store_true", help="draw pass-through layers (Identity, Dropout, ...) too")
    p.add_argument("--json", action="store_true", help="print the graph's counts as JSON")
    p.set_defaults(func=cmd_graph)


def _kind(path: str) -> str:
    from deepvis.io.images import IMAGE_SUFFIXES

    suffix = Path(path).suffix.lower()
    if suffix == ".svg":
        return SVG
    if suffix == ".json":
        return JSON
    if suffix in IMAGE_SUFFIXES:
        return IMAGE
    raise DeepvisError(f"--out {path}: unsupported suffix {suffix or '(none)'!r}; use .svg, .json or a picture "
                       f"({', '.join(sorted(IMAGE_SUFFIXES))})")


def cmd_graph(args):
    from deepvis.live.computethread import compute_thread

    outputs = Outputs()
    kind = _kind(args.out) if args.out else None
    if args.out:
        outputs.add(args.out, kind)
    model = load_model_of(args)

    def work():
        from deepvis.graph.record import record_graph

        return record_graph(model.module, model.example_input())

    graph = compute_thread().call(work)
    shown = drawn_graph(graph, args.expand, args.collapse, args.plumbing)
    if args.out:
        from deepvis.graph import draw

        title = f"{model.name} · {len(graph.nodes)} nodes, {len(graph.edges)} edges"
        with outputs.writing():
            if kind == JSON:
                import json

                Path(args.out).write_text(json.dumps({"model": model.name, **graph.to_json()}, indent=1))
            else:
                placed = draw.arrange(shown)
                if kind == SVG:
                    Path(args.out).write_text(draw.svg(shown, placed, title))
                else:
                    from deepvis.io.images import write_image

                    write_image(args.out, draw.picture(shown, placed, title))
    counts = {"model": model.name, "nodes": len(graph.nodes), "edges": len(graph.edges),
              "modules": sum(n.op == "module" for n in graph.nodes),
              "functions": sum(n.op == "function" for n in graph.nodes),
              "drawn_nodes": len(shown.nodes), "collapsed": sorted(n.name for n in shown.nodes if n.op == "group"),
              "out": args.out}
    if args.json:
        print_json(counts)
        return
    print(f"{model.name}: {counts['nodes']} nodes ({counts['modules']} modules, {counts['functions']} functions), "
          f"{counts['edges']} edges; {counts['drawn_nodes']} drawn" + (f" -> {args.out}" if args.out else ""))


def drawn_graph(graph, expand=(), collapse=(), plumbing=False):
    """What is drawn: repeated blocks collapsed unless expanded ('all': every group), the groups
    asked for collapsed too; an unknown group is an error naming the groups there are."""
    from deepvis.graph.fold import folded, repeated_blocks

    for name in [*expand, *collapse]:
        if name != "all" and name not in graph.groups:
            known = ", ".join(sorted(g for g in graph.groups if g)[:12])
            raise DeepvisError(f"no module group {name!r} in this model (groups: {known or 'none'})")
    collapsed = set() if "all" in expand else repeated_blocks(graph) - set(expand)
    return folded(graph, collapsed | set(collapse), plumbing)

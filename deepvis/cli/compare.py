"""``compare``: two checkpoints (or a training timeline) layer by layer: CKA, weight change,
agreement."""

from pathlib import Path

from deepvis.cli.common import (INTERRUPT, add_allow_truncated, add_model, end_progress, load_model_of,
                                positive_int, print_json, stage_progress)
from deepvis.errors import DeepvisError
from deepvis.io.outputs import HTML, IMAGE, Outputs


def register(sub) -> None:
    p = sub.add_parser("compare", help="two checkpoints layer by layer (CKA, weight change, agreement), or a folder "
                                       "of checkpoints as a training timeline")
    add_model(p)
    add_allow_truncated(p)
    p.add_argument("--against", required=True, metavar="B|DIR",
                   help="the other checkpoint, or a folder of checkpoints (ordered by the last number in each name, "
                        "else by time): a timeline")
    p.add_argument("--model-b", metavar="SPEC", help="the other checkpoint's model, when it is another architecture "
                                                     "(default: --model)")
    p.add_argument("--data", metavar="DIR|digits|samples",
                   help="the inputs (default: a bundled model's own; required for other models)")
    p.add_argument("--limit", type=positive_int, metavar="N", help="the first N inputs (default: all)")
    p.add_argument("--json", action="store_true", help="print every figure as JSON")
    p.add_argument("--out", metavar="PNG|HTML", help="the CKA matrix as a picture (a timeline also writes "
                                                     "NAME-filters.png), or an HTML page of both")
    p.set_defaults(func=cmd_compare)


def cmd_compare(args):
    from deepvis.cli.doctor import default_data
    from deepvis.doctor.compare import checkpoint_order, compare, timeline
    from deepvis.io.datasets import open_dataset

    outputs = Outputs()
    html = args.out is not None and Path(args.out).suffix.lower() in (".html", ".htm")
    out = outputs.add(args.out, HTML if html else IMAGE)
    against = Path(args.against)
    if not against.exists():
        raise DeepvisError(f"--against {against}: no such file or folder")
    folder = against.is_dir()
    strip_path = None
    if folder and out is not None and not html:
        strip_path = outputs.add(out.with_name(out.stem + "-filters.png"), IMAGE, "--out")
    dataset = open_dataset(args.data or default_data(args.model))
    spec_b = args.model_b or args.model
    if folder:
        checkpoints = checkpoint_order(against)
        first = Path(args.weights) if args.weights else checkpoints[0]
        model_a = load_model_of(args, (args.model, str(first)))
        model_b = load_model_of(args, (spec_b, str(checkpoints[-1])))
    else:
        model_a, model_b = load_model_of(args), load_model_of(args, (spec_b, str(against)))
    report = compare(model_a, model_b, dataset, limit=args.limit, progress=stage_progress, cancel=INTERRUPT)
    filters = None
    if folder:
        # The last checkpoint is B, loaded already.
        steps = timeline(lambda path: model_b if path == checkpoints[-1] else load_model_of(args, (spec_b, str(path))),
                         checkpoints, dataset, limit=args.limit, progress=stage_progress, cancel=INTERRUPT)
        report["timeline"], filters = steps["timeline"], steps["filters"]
    end_progress()
    _write(report, filters, out, strip_path, html, outputs)
    if args.json:
        print_json(report)
    else:
        _print(report, out, strip_path)


def _write(report, filters, out, strip_path, html, outputs) -> None:
    if out is None:
        return
    from deepvis.doctor.pictures import cka_heatmap, filters_strip
    from deepvis.io.images import write_image

    heatmap = cka_heatmap(report)
    strip = filters_strip(filters, [step["checkpoint"] for step in report["timeline"]]) if filters else None
    with outputs.writing():
        if html:
            from deepvis.doctor.html import compare_page

            try:
                out.write_text(compare_page(report, heatmap, strip), encoding="utf-8")
            except OSError as exc:
                raise DeepvisError(f"cannot write {out}: {exc.strerror or exc}") from None
            return
        write_image(out, heatmap)
        if strip_path is not None and strip is not None:
            write_image(strip_path, strip)



def _print(report, out, strip_path) -> None:
    print(f"{report['model_a']} ({Path(str(report['weights_a'])).name}) against {report['model_b']} "
          f"({Path(str(report['weights_b'])).name}) over {report['inputs']:,} inputs of {report['data']}: "
          f"{report['method']}" + (f" -> {out}" if out else "") + (f", {strip_path}" if strip_path else ""))
    if report["agreement"] is not None:
        print(f"predictions agree on {report['agreement']:.1%} ({report['disagreeing_count']} differ)")
    if report["diagonal"]:
        print(f"{'layer':<28} {'CKA':>6} {'weight change':>14}")
        for name, value in report["diagonal"].items():
            change = report["weight_change"].get(name)
            print(f"{name[:28]:<28} {value:>6.3f} {'' if change is None else f'{change:.3f}':>14}")
    if report["timeline"]:
        print("timeline (CKA of each layer to the last checkpoint):")
        names = list(report["timeline"][0]["cka"])
        shown = names if len(names) <= 8 else names[:: max(1, len(names) // 8)]
        print(f"  {'checkpoint':<24}" + "".join(f" {n[:10]:>10}" for n in shown))
        for step in report["timeline"]:
            print(f"  {step['checkpoint'][:24]:<24}" + "".join(f" {step['cka'][n]:>10.3f}" for n in shown))

"""``doctor``: a trained checkpoint's faults found from its activations over data, its
BatchNorm statistics, its input preprocessing and its weights."""

import sys

from deepvis.cli.common import (INTERRUPT, add_allow_truncated, add_model, end_progress, load_model_of,
                                positive_int, print_json, stage_progress)
from deepvis.errors import DeepvisError
from deepvis.io.outputs import HTML, Outputs

EXIT_FLAGGED = 3
TABLE_ROWS = 24  # more layers than this: the flagged ones only (the JSON and HTML have them all)


def register(sub) -> None:
    p = sub.add_parser("doctor", help="find faults in a trained checkpoint: dead or saturated layers, NaN, BatchNorm "
                                      "statistics, input preprocessing, weight spectra")
    add_model(p)
    add_allow_truncated(p)
    p.add_argument("--data", metavar="DIR|digits|samples",
                   help="the inputs: a folder (labelled by first-level subfolder), digits or samples (default: a "
                        "bundled model's own: digits for the digit models, samples for the photo models; "
                        "required for other models)")
    p.add_argument("--limit", type=positive_int, metavar="N", help="examine the first N inputs (default: all)")
    p.add_argument("--batch", type=positive_int, default=32, metavar="N",
                   help="inputs per forward pass (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print every figure as JSON")
    p.add_argument("--out", metavar="REPORT.html", help="also a self-contained HTML report (plots and thumbnails "
                                                        "embedded)")
    p.add_argument("--strict", action="store_true", help=f"exit {EXIT_FLAGGED} when anything is flagged (for CI)")
    p.set_defaults(func=cmd_doctor)


def default_data(model_spec: str | None) -> str:
    """A bundled model's own inputs; other models must be given theirs."""
    from deepvis.core.defaults import DEFAULT_MODEL
    from deepvis.core.zoo import get_entry, sample_kind

    name = model_spec or DEFAULT_MODEL
    if get_entry(str(name)) is None:
        raise DeepvisError(f"--data is needed for {name}: a folder of its inputs (labelled by subfolder), or digits")
    kind = sample_kind(name)
    if kind == "digits":
        return "digits"
    if kind == "photos":
        return "samples"
    raise DeepvisError(f"--data is needed for {name}: its own inputs are {kind}; give a folder of them")


def cmd_doctor(args):
    from deepvis.doctor.diagnose import diagnose
    from deepvis.io.datasets import open_dataset

    outputs = Outputs()
    outputs.add(args.out, HTML)
    data = args.data or default_data(args.model)
    dataset = open_dataset(data)
    model = load_model_of(args)
    report = diagnose(model, dataset, limit=args.limit, batch=args.batch, progress=stage_progress, cancel=INTERRUPT)
    end_progress()
    thumbnails = report.pop("thumbnails")
    if args.out:
        from deepvis.doctor.html import render

        page = render(report, thumbnails)
        with outputs.writing():
            try:
                with open(args.out, "w", encoding="utf-8") as f:
                    f.write(page)
            except OSError as exc:
                raise DeepvisError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    if args.json:
        print_json(report)
    else:
        _print_table(report, args.out)
    if args.strict and report["flags"]:
        sys.stdout.flush()
        raise SystemExit(EXIT_FLAGGED)



def _fraction(value) -> str:
    return "" if value is None else f"{value:.0%}"


def _print_table(report: dict, out) -> None:
    print(f"doctor of {report['model']} over {report['data']}: {report['inputs']:,} inputs, "
          f"{report['seconds']['total']:.1f} s" + (f" -> {out}" if out else ""))
    for note in report["notes"]:
        print(f"  note: {note}")
    classes = report["classes"]
    if classes is not None:
        confused = ", ".join(f"{p['true']}->{p['predicted']} ({p['count']})" for p in classes["most_confused"][:3])
        print(f"accuracy {classes['accuracy']:.1%} over {classes['inputs']:,} labelled inputs"
              + (f"; most confused {confused}" if confused else ""))
    pre = report["preprocessing"]
    if pre["variants"]:
        scored = "accuracy" if "accuracy" in pre["variants"][0] else "entropy"
        figures = ", ".join(f"{v['name']} {v[scored]:.1%}" if scored == "accuracy" else f"{v['name']} {v[scored]:.2f}"
                            for v in pre["variants"])
        print(f"preprocessing ({scored} on {pre['inputs']} inputs): {figures}; best {pre['best']}")
    rows = report["layers"]
    shown = rows if len(rows) <= TABLE_ROWS else [r for r in rows if r["flags"]]
    if shown:
        print(f"{'layer':<28} {'type':<14} {'dead':>5} {'satur.':>6} {'nonfin.':>7} {'mean':>9} {'std':>9}  flags")
        for r in shown:
            print(f"{r['name'][:28]:<28} {r['type'][:14]:<14} {_fraction(r['dead_fraction']):>5} "
                  f"{_fraction(r['saturated_fraction']):>6} {_fraction(r['nonfinite_fraction'] or None):>7} "
                  f"{_g(r['mean']):>9} {_g(r['std']):>9}  {', '.join(r['flags'])}")
    if len(rows) > TABLE_ROWS:
        print(f"({len(rows) - len(shown)} of {len(rows)} layers unflagged; --json or --out for all)")
    if report["flags"]:
        print(f"{len(report['flags'])} finding{'s' * (len(report['flags']) > 1)}:")
        for flag in report["flags"]:
            print(f"  {flag['where']}: {flag['what']}")
    else:
        print("nothing flagged")
    if report["advisories"]:
        print(f"{len(report['advisories'])} advisor{'ies' if len(report['advisories']) > 1 else 'y'} (not faults):")
        for advice in report["advisories"]:
            print(f"  {advice['where']}: {advice['what']}")


def _g(value) -> str:
    return "" if value is None else f"{value:.3g}"

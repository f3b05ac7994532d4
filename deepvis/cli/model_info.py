"""``models``, ``info`` and ``predict``: the zoo, a model's layers, its predictions."""

from deepvis.cli.common import add_device, add_model, load_model_of, positive_int, print_json, probe_of, read_input
from deepvis.errors import DeepvisError


def register(sub) -> None:
    p = sub.add_parser("models", help="list the model zoo and whether weights are available")
    p.add_argument("--json", action="store_true")
    add_device(p)
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("info", help="a model's input spec, labels and layers with output shapes")
    add_model(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("predict", help="top-k classes for an image")
    add_model(p)
    p.add_argument("--input", required=True, metavar="IMG")
    p.add_argument("--top", type=positive_int, default=5, metavar="K")
    p.add_argument("--json", action="store_true", help="print a JSON list of {index, label, score}")
    p.set_defaults(func=cmd_predict)


def cmd_models(args):
    from deepvis.core.defaults import DEFAULT_MODEL
    from deepvis.core.zoo import zoo

    rows = []
    for entry in zoo().values():
        try:
            weights = str(entry.weights_file())
        except DeepvisError:
            weights = None
        rows.append({"name": entry.name, "task": entry.task, "description": entry.description,
                     "input": list(entry.spec.shape), "weights": weights, "default": entry.name == DEFAULT_MODEL,
                     "source": entry.source})
    if args.json:
        print_json(rows)
        return
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        mark = "*" if r["default"] else " "
        have = "weights ok " if r["weights"] else "no weights "
        shape = "x".join(map(str, r["input"]))
        print(f"{mark} {r['name']:<{width}}  {r['task']:<14} {shape:<9} {have} {r['description']}")
    print("\n* default model. 'no weights': put torchvision's file in torch's cache, or pass --weights FILE|none.")


def cmd_info(args):
    model = load_model_of(args)
    probe = probe_of(model)
    info = {
        "name": model.name, "weights": model.weights, "device": str(model.device), "task": model.task,
        "scripted": model.scripted, "input": {"channels": model.spec.channels, "height": model.spec.height,
                                             "width": model.spec.width, "mean": list(model.spec.mean),
                                             "std": list(model.spec.std), "fit": model.spec.fit},
        "labels": len(model.labels) if model.labels else 0,
        "parameters": sum(p.numel() for p in model.module.parameters()),
        "notes": model.notes, "inner_layers_unavailable": probe.unavailable_reason,
        "layers": [{"name": l.name, "type": l.type_name, "shape": list(l.shape)} for l in probe.layers],
    }
    if args.json:
        print_json(info)
        return
    print(f"model    {model.name} ({model.task}, {info['parameters']:,} parameters)")
    print(f"weights  {model.weights}")
    print(f"device   {model.device}")
    print(f"input    {model.spec.describe()}")
    print(f"labels   {info['labels'] or 'none (classes shown by index)'}")
    for note in model.notes:
        print(f"note     {note}")
    if probe.unavailable_reason:
        print(f"note     inner layers unavailable: {probe.unavailable_reason}")
    print(f"layers   {len(probe.layers)} (name, type, output shape)")
    width = max(len(l.name) for l in probe.layers)
    for l in probe.layers:
        print(f"  {l.name:<{width}}  {l.type_name:<24} {'x'.join(map(str, l.shape))}")


def cmd_predict(args):
    import torch

    from deepvis.core.predictions import summarize

    model = load_model_of(args)
    image = read_input(args.input)
    with torch.inference_mode():
        summary = summarize(model.module(model.input_tensor(image)), model.labels, args.top)
    if args.json:
        print_json([p.as_dict() for p in summary.predictions])
        return
    if not summary.predictions:
        print(summary.text)
        return
    what = "share of pixels" if summary.kind == "segmentation" else "probability"
    print(f"{'rank':>4}  {what:>15}  label (index)")
    for rank, p in enumerate(summary.predictions, 1):
        print(f"{rank:>4}  {p.score:>15.4f}  {p.label} ({p.index})")

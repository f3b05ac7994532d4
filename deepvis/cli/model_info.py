"""``models``, ``info`` and ``predict``: the zoo, a model's layers, its predictions."""


from deepvis.cli.common import (add_allow_truncated, add_device, add_model, add_scale, clamped, enlarged,
                                load_model_of, model_input, note_random_weights, positive_int, print_json, probe_of,
                                read_input, save_npy, seed_number)
from deepvis.errors import DeepvisError
from deepvis.io.outputs import IMAGE, NPY, Outputs


def register(sub) -> None:
    p = sub.add_parser("models", help="list the model zoo and whether weights are available")
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    add_device(p)
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("info", help="a model's input spec, labels and layers with output shapes")
    add_model(p)
    p.add_argument("--json", action="store_true", help="print the spec, labels and layers as JSON")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("predict", help="top-k classes for an image; an image model's output picture")
    add_model(p)
    add_allow_truncated(p)
    p.add_argument("--input", required=True, metavar="IMG|SIGNAL", help="a picture, or for a 1-D model a .wav, .npy "
                                                                          "or .csv signal")
    p.add_argument("--top", type=positive_int, default=5, metavar="K",
                   help="how many classes to list (default: %(default)s)")
    p.add_argument("--out", metavar="PNG", help="an image model's output picture, at its own resolution; a "
                                                "detector's detections drawn on the input")
    add_scale(p)
    p.add_argument("--npy", metavar="FILE", help="the model's output for the input, float32, as it came (scores, "
                                                 "logits or the output picture's values)")
    p.add_argument("--sample", type=seed_number, metavar="SEED",
                   help="a VAE's reconstruction from a posterior draw (seeded) instead of its mean")
    p.add_argument("--json", action="store_true",
                   help="print a JSON object: {model, output (the output read), out, npy, weights, weights_from, "
                        "notes, kind, predictions: [{index, label, score}]}; a detector's detections: [{box, index, "
                        "label, score}] (box x0, y0, x1, y1 in the input picture's pixels), a value output's values: "
                        "[...], an image model's picture: {shape, range, mse, psnr, ssim}, instead of predictions")
    p.set_defaults(func=cmd_predict)


def cmd_models(args):
    from deepvis.cli.fetch import weights_state
    from deepvis.core.defaults import DEFAULT_MODEL
    from deepvis.core.zoo import zoo

    rows = []
    for entry in zoo().values():
        state, weights = weights_state(entry)
        rows.append({"name": entry.name, "task": entry.task, "description": entry.description,
                     "input": list(entry.signal.shape if entry.signal else entry.spec.shape), "weights": weights,
                     "weights_from": state, "download_mb": entry.download_mb, "default": entry.name == DEFAULT_MODEL,
                     "source": entry.source})
    if args.json:
        print_json(rows)
        return
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        mark = "*" if r["default"] else " "
        # Where the weights are: shipped, in the library's cache, or downloaded on first use.
        have = {"bundled": "weights ok ", "cache": "in cache   ", "download": "on demand  ",
                "missing": "no weights "}[r["weights_from"]]
        shape = "x".join(map(str, r["input"]))
        size = f" ({r['download_mb']:.1f} MB, downloaded on first use)" if r["weights_from"] == "download" else ""
        print(f"{mark} {r['name']:<{width}}  {r['task']:<14} {shape:<9} {have} {r['description']}{size}")
    print("\n* default model. 'no weights': put torchvision's file in torch's cache, or pass --weights FILE|none.")


def cmd_info(args):
    from deepvis.core.heads import output_role

    model = load_model_of(args)
    probe = probe_of(model)
    info = {
        "name": model.name, "weights": model.weights, "weights_from": model.weights_from, "device": str(model.device),
        "task": model.task,
        "scripted": model.scripted,
        "input": ({"channels": model.signal.channels, "samples": model.signal.length, "rate": model.signal.rate}
                  if model.signal else
                  {"channels": model.spec.channels, "height": model.spec.height, "width": model.spec.width,
                   "mean": list(model.spec.mean), "std": list(model.spec.std), "fit": model.spec.fit}),
        "labels": len(model.labels) if model.labels else 0,
        "parameters": sum(p.numel() for p in model.module.parameters()),
        "output_range": model.output_range if model.task == "image" else None,
        "head": model.head.name,
        "outputs": [{"name": o.name, "shape": list(o.shape), "activation": o.activation,
                     "role": output_role(o, model.head)} for o in model.outputs],
        "notes": model.notes, "inner_layers_unavailable": probe.unavailable_reason,
        "layers": [{"name": l.name, "type": l.type_name, "shape": list(l.shape)} for l in probe.layers],
    }
    if args.json:
        print_json(info)
        return
    print(f"model    {model.name} ({model.task}, {info['parameters']:,} parameters)")
    told = model.weights_words and not model.random_weights  # "none (random initialisation)" says it
    print(f"weights  {model.weights}" + (f"  ({model.weights_words})" if told else ""))
    print(f"device   {model.device}")
    print(f"input    {model.signal.describe() if model.signal else model.spec.describe()}")
    if model.task == "image":
        print(f"output   a picture; pixels from its {model.output_range} range")
    else:
        print(f"labels   {info['labels'] or 'none (classes shown by index)'}")
    if len(model.outputs) > 1 or model.head.detections:
        print(f"outputs  {len(model.outputs)} (name, shape, what deepvis makes of it; --head to choose)")
        width = max(len(o.name) for o in model.outputs)
        for o in model.outputs:
            print(f"  {o.name:<{width}}  {'x'.join(map(str, o.shape)) or 'scalar':<12} {output_role(o, model.head)}")
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

    outputs = Outputs()
    outputs.add(args.out, IMAGE, "--out")
    outputs.add(args.npy, NPY, "--npy")
    model = load_model_of(args)
    image = None
    if model.task == "detection":  # read once: its boxes are given in this picture's pixels
        image = read_input(args.input)
        x = model.input_tensor(image)
    else:
        x, _ = model_input(model, args.input)
    for given, option in ((args.out and model.task != "detection", "--out writes"),
                          (args.sample is not None, "--sample draws")):
        if given and model.task != "image":
            raise DeepvisError(f"{option} an image model's output picture; {model.name} is a {model.task} model "
                               f"(--task image if its output is a picture)")
    with torch.inference_mode():
        if args.sample is not None:
            from deepvis.generative.autoencoders import find_autoencoder

            vae = find_autoencoder(model)
            if not vae.variational:
                raise DeepvisError(f"--sample needs a VAE (an encoder with a mean and a log-variance); {model.name}'s "
                                   f"encoder gives one latent")
            output = vae.reconstruct(x, sample=True, generator=torch.Generator().manual_seed(args.sample))
        else:
            output = model.module(x)
    if model.task == "classification" and not model.head.detections:
        classes = int(model.main_output(output)[0].numel())
        args.top = clamped("--top", args.top, classes, "the number of classes")
    summary = model.summarize(output, args.top)
    note_random_weights(model)
    if model.task == "image":
        _print_picture(args, model, output, x, outputs)
        return
    if summary.kind == "detection":
        _print_detections(args, model, summary, output, outputs, image)
        return
    if args.npy:
        with outputs.writing():
            _save_output(args, model, output)
    if args.json:
        if summary.kind == "descriptor":
            grid = model.main_output(output)[0].float()
            body = {"descriptor": {"channels": int(grid.shape[0]), "grid": list(grid.shape[1:]),
                                   "mean_length": float(grid.norm(dim=0).mean())}}
        elif summary.kind == "other":
            body = {"values": list(summary.values)}
        else:
            body = {"predictions": [p.as_dict() for p in summary.predictions]}
        print_json({**_json_head(args, model), "kind": summary.kind, "top": args.top, **body})
        return
    if not summary.predictions:
        print(summary.text)
        return
    if len(model.outputs) > 1:
        print(f"{model.head.name} of {len(model.outputs)} outputs ({model.head.describe()})")
    what = "share of pixels" if summary.kind == "segmentation" else "probability"
    print(f"{'rank':>4}  {what:>15}  label (index)")
    for rank, p in enumerate(summary.predictions, 1):
        print(f"{rank:>4}  {p.score:>15.4f}  {p.label} ({p.index})")


def _json_head(args, model) -> dict:
    """What every ``predict --json`` object starts with: the files written, where the weights
    came from, and the notes (assumptions, random weights)."""
    notes = list(model.notes)
    if model.random_weights:
        notes.append("random weights: these predictions are chance, whatever the class names say")
    return {"model": model.name, "output": model.head.name, "out": args.out, "npy": args.npy,
            "weights": model.weights,
            "weights_from": model.weights_from, "notes": notes}


def _save_output(args, model, output) -> None:
    if args.npy:
        import numpy as np

        if model.head.detections:  # (N, 6): x0, y0, x1, y1 in the model input's pixels, label, score
            found = output[0]
            labels = found.get("labels", found["scores"] * 0).float()
            rows = np.concatenate([found["boxes"].float().cpu().numpy().reshape(-1, 4),
                                   labels.cpu().numpy()[:, None], found["scores"].float().cpu().numpy()[:, None]], 1)
            save_npy(args.npy, rows.astype(np.float32))
            return
        save_npy(args.npy, model.main_output(output)[0].float().cpu().numpy().astype(np.float32))


def _print_detections(args, model, summary, output, outputs, image) -> None:
    """Detections best first, boxes in the input picture's pixels; ``--out`` draws them."""
    from deepvis.core.inputspec import input_to_frame

    sx, sy, ox, oy = input_to_frame(model.spec, image.shape[:2])
    boxes = [(ox + sx * d.box[0], oy + sy * d.box[1], ox + sx * d.box[2], oy + sy * d.box[3])
             for d in summary.detections]
    if args.out or args.npy:
        from deepvis.io.images import write_image
        from deepvis.render.detections import draw_detections

        with outputs.writing():
            if args.out:
                # Enlarged first, drawn after: the captions keep their size on a small picture.
                k = args.scale or 1
                picture = draw_detections(enlarged(image, args.scale), [[v * k for v in box] for box in boxes],
                                          [f"{d.label} {d.score:.0%}" for d in summary.detections],
                                          [d.index for d in summary.detections])
                write_image(args.out, picture)
            _save_output(args, model, output)
    if args.json:
        print_json({**_json_head(args, model), "kind": "detection",
                    "detections": [{**d.as_dict(), "box": [round(v, 2) for v in box]}
                                   for d, box in zip(summary.detections, boxes)]})
        return
    print(summary.text)
    if summary.detections:
        print(f"{'rank':>4}  {'score':>7}  {'box x0, y0, x1, y1 (pixels)':<30} label (index)")
    for rank, (d, box) in enumerate(zip(summary.detections, boxes), 1):
        where = ", ".join(f"{v:.0f}" for v in box)
        print(f"{rank:>4}  {d.score:>7.4f}  {where:<30} {d.label} ({d.index})")


def _print_picture(args, model, output, x, outputs):
    from deepvis.core.imagemodel import image_output
    from deepvis.io.images import write_image

    picture = image_output(model.main_output(output), x, model.output_range, model.spec)
    if args.out:
        # The picture is data: enlarged only by whole pixels, never resampled.
        out = enlarged(picture.picture, args.scale)
        with outputs.writing():
            write_image(args.out, out)
            _save_output(args, model, output)
    elif args.npy:
        with outputs.writing():
            _save_output(args, model, output)
    h, w = picture.picture.shape[:2]
    if args.json:
        print_json({**_json_head(args, model), "kind": "image",
                    "picture": {"shape": [int(picture.pixels.shape[2]), h, w], "range": model.output_range,
                                **(picture.error.as_dict() if picture.error else
                                   {"mse": None, "psnr": None, "ssim": None})}})
        return
    error = picture.error.text() if picture.error else "no error: the output's size differs from the input's"
    print(f"output picture {w}x{h} ({model.output_range} range): {error}" + (f" -> {args.out}" if args.out else ""))

"""The ``deepvis`` command line.

Every command writes files or prints, exits 0 on success and exits 2 with a single
``error: ...`` line on stderr for bad input, never a traceback (``DEEPVIS_DEBUG=1`` shows
tracebacks of internal errors for bug reports).
"""

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

from deepvis import __version__
from deepvis.live.computethread import compute_thread
from deepvis.core.device import DEVICE_CHOICES
from deepvis.errors import DeepvisError, require_finite
from deepvis.io.outputs import CSV, FOLDER, GIF, IMAGE, NPY, Outputs, check_output

EXIT_USAGE = 2
EXIT_INTERNAL = 1


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        # argparse prints usage plus an error; the contract is one `error:` line.
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {value}")
    return value


def _fraction(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {text!r}") from None
    if not 0 <= value <= 1:  # also refuses nan
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {text}")
    return value


MAX_SEED = 2**63 - 1


def _seed(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a seed (a whole number), got {text!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"seeds are 0..2^63-1, got {text}")
    return value


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (value > 0 and value != float("inf")):  # also refuses nan
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def _add_device(p):
    p.add_argument("--device", default="auto", choices=DEVICE_CHOICES,
                   help="where to run: auto picks CUDA or MPS when present (default auto)")


def _add_model(p):
    from deepvis.core.zoo import DEFAULT_MODEL

    # None here: main() fills in the default for headless commands; the GUI restores the last one.
    p.add_argument("--model", default=None, metavar="SPEC",
                   help=f"zoo name (deepvis models), TorchScript/checkpoint file, or package.module:callable "
                        f"(default {DEFAULT_MODEL})")
    p.add_argument("--weights", metavar="FILE|none",
                   help="state dict or checkpoint to load; 'none' for random initialisation")
    p.add_argument("--trust-pickle", action="store_true",
                   help="allow checkpoints that unpickle Python objects (can run code: trusted files only)")
    p.add_argument("--input-size", metavar="HxW", help="input size for models that do not record it")
    p.add_argument("--channels", type=int, choices=(1, 3), help="input channels (default: from the first conv)")
    p.add_argument("--mean", metavar="M[,M,M]", help="normalization mean in [0,1] pixel units")
    p.add_argument("--std", metavar="S[,S,S]", help="normalization std in [0,1] pixel units")
    p.add_argument("--fit", choices=("crop", "stretch"), help="fit frames by centre crop (default) or stretch")
    p.add_argument("--labels", metavar="FILE", help="class names: text (one per line) or JSON")
    _add_device(p)


def _model_options(args) -> dict:
    """load_model's keyword arguments from the shared model options."""
    from deepvis.core.inputspec import parse_floats, parse_size

    return dict(device=args.device, trust_pickle=args.trust_pickle,
                input_size=parse_size(args.input_size) if args.input_size else None, channels=args.channels,
                mean=parse_floats(args.mean, "mean") if args.mean else None,
                std=parse_floats(args.std, "std") if args.std else None, labels=args.labels, fit=args.fit)


def _load(args):
    from deepvis.core.loading import load_model

    return compute_thread().call(load_model, args.model, args.weights, **_model_options(args))


def _probe(model):
    from deepvis.core.probe import Probe

    return Probe(model.module, model.example_input())


def _print_json(obj):
    print(json.dumps(obj, indent=2))


# --- commands -----------------------------------------------------------------------------

def cmd_models(args):
    from deepvis.core.zoo import DEFAULT_MODEL, zoo

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
        _print_json(rows)
        return
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        mark = "*" if r["default"] else " "
        have = "weights ok " if r["weights"] else "no weights "
        shape = "x".join(map(str, r["input"]))
        print(f"{mark} {r['name']:<{width}}  {r['task']:<14} {shape:<9} {have} {r['description']}")
    print("\n* default model. 'no weights': put torchvision's file in torch's cache, or pass --weights FILE|none.")


def cmd_info(args):
    model = _load(args)
    probe = _probe(model)
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
        _print_json(info)
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


def _read_input(path):
    from deepvis.io.images import read_image

    return read_image(path)


def cmd_predict(args):
    import torch

    from deepvis.core.predictions import summarize

    model = _load(args)
    image = _read_input(args.input)
    with torch.inference_mode():
        summary = summarize(model.module(model.input_tensor(image)), model.labels, args.top)
    if args.json:
        _print_json([p.as_dict() for p in summary.predictions])
        return
    if not summary.predictions:
        print(summary.text)
        return
    what = "share of pixels" if summary.kind == "segmentation" else "probability"
    print(f"{'rank':>4}  {what:>15}  label (index)")
    for rank, p in enumerate(summary.predictions, 1):
        print(f"{rank:>4}  {p.score:>15.4f}  {p.label} ({p.index})")


def cmd_activations(args):
    import numpy as np
    import torch

    from deepvis.render.colormaps import apply_colormap
    from deepvis.io.images import write_image
    from deepvis.render.tiling import tile_activation, upscale

    outputs = Outputs()
    outputs.add(args.out, IMAGE)
    outputs.add(args.npy, NPY, "--npy")
    model = _load(args)
    probe = _probe(model)
    image = _read_input(args.input)
    probe.layer(args.layer)  # an unknown name fails here, with the names there are
    with torch.inference_mode():
        _, captured = probe.capture(model.input_tensor(image), [args.layer])
    activation = captured[args.layer][0].float().cpu().numpy()
    if not np.isfinite(activation).all():
        raise DeepvisError(f"layer {args.layer} has NaN or infinite activations on this input")
    grid, layout = tile_activation(activation, args.normalize)
    with outputs.writing():
        write_image(args.out, upscale(apply_colormap(grid, args.colormap), args.min_size))
        if args.npy:
            _save_npy(args.npy, activation.astype(np.float32))
    print(f"{args.layer}: {'x'.join(map(str, activation.shape))}, {layout.count} channels in "
          f"{layout.rows}x{layout.cols} tiles -> {args.out}" + (f", {args.npy}" if args.npy else ""))


def _save_npy(path, array):
    import numpy as np

    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        np.save(path, array)
    except OSError as exc:
        raise DeepvisError(f"cannot write {path}: {exc.strerror or exc}") from None


def cmd_filters(args):
    import numpy as np

    from deepvis.render.colormaps import apply_colormap
    from deepvis.io.images import write_image
    from deepvis.render.tiling import filter_sheet, upscale

    outputs = Outputs()
    outputs.add(args.out, IMAGE)
    outputs.add(args.npy, NPY, "--npy")
    model = _load(args)
    weights = dict(model.module.named_parameters())
    conv_weights = [name for name, w in weights.items() if w.ndim in (3, 4) and name.endswith("weight")]
    if args.layer:
        key = args.layer if args.layer.endswith("weight") else f"{args.layer}.weight"
        if key not in weights:
            close = [n[:-len(".weight")] for n in conv_weights][:8]
            raise DeepvisError(f"no weights named {key!r}; conv layers include {', '.join(close)}")
    elif conv_weights:
        key = conv_weights[0]
    else:
        raise DeepvisError("this model has no convolution weights to show")
    w = weights[key].detach().float().cpu().numpy()
    if w.ndim not in (3, 4):
        raise DeepvisError(f"{key} has shape {tuple(w.shape)}; filters are shown for convolution layers")
    sheet, layout = filter_sheet(w, args.mode, args.max_filters)
    rgb = sheet.ndim == 3
    image = (np.clip(np.nan_to_num(sheet, nan=0.19) * 255 + 0.5, 0, 255).astype(np.uint8) if rgb
             else apply_colormap(sheet, "gray"))
    with outputs.writing():
        write_image(args.out, upscale(image, args.min_size))
        if args.npy:
            _save_npy(args.npy, w.astype(np.float32))
    print(f"{key[:-len('.weight')]}: {'x'.join(map(str, w.shape))} as {'RGB' if rgb else 'per-channel'} "
          f"tiles -> {args.out}")


def cmd_saliency(args):
    import numpy as np

    from deepvis.io.images import write_image
    from dataclasses import replace

    from deepvis.attribution.saliency import METHODS, attribute, parse_region, parse_target, top_class
    from deepvis.attribution.render import render_saliency
    from deepvis.render.tiling import upscale

    if args.method not in METHODS:
        raise DeepvisError(f"unknown method {args.method!r}: expected one of {', '.join(METHODS)}")
    region = parse_region(args.region)
    outputs = Outputs()
    outputs.add(args.out, IMAGE)
    outputs.add(args.npy, NPY, "--npy")
    model = _load(args)
    image = _read_input(args.input)
    tty = sys.stderr.isatty()

    def progress(fraction):
        if tty and fraction < 1:
            print(f"\r{args.method}: {fraction:4.0%}", end="", file=sys.stderr, flush=True)

    def work():
        probe = _probe(model)
        if args.unit and ":" in args.unit:
            probe.layer(args.unit.rpartition(":")[0])  # an unknown layer is named as one, not as a class
        target = parse_target(args.unit or args.target, model.labels, probe)
        if args.unit and (target is None or target.kind != "unit"):
            raise DeepvisError(f"--unit wants LAYER:INDEX with a layer from deepvis info, got {args.unit!r}")
        x = model.input_tensor(image)
        target = replace(target or top_class(model.module, x), region=region)
        saliency = attribute(model.module, probe, x, args.method, target, layer=args.layer, samples=args.samples,
                             steps=args.steps, batch=args.batch, progress=progress)
        fitted = model.preprocessor.fit(image)
        fitted = np.repeat(fitted, 3, axis=2) if fitted.shape[2] == 1 else fitted
        return target, saliency, fitted

    # Ctrl-C ends the process from the main thread (exit 130); the compute thread is a daemon.
    try:
        target, saliency, fitted = compute_thread().call(work)
    finally:
        if tty:
            print("\r" + " " * 24 + "\r", end="", file=sys.stderr, flush=True)
    if not np.isfinite(saliency).all():
        raise DeepvisError("the attribution contains NaN or infinite values (check the weights and input)")
    rgb = render_saliency(saliency, args.mode, image=fitted if args.overlay else None, opacity=args.overlay or 0.6)
    with outputs.writing():
        write_image(args.out, upscale(rgb, args.min_size))
        if args.npy:
            _save_npy(args.npy, saliency.astype(np.float32))
    print(f"{args.method} for {target.describe(model.labels)}: map {saliency.shape[0]}x{saliency.shape[1]} -> "
          f"{args.out}" + (f", {args.npy}" if args.npy else ""))


def cmd_embed(args):
    from deepvis.io.datasets import open_dataset
    from deepvis.embed.projection import check_tsne_settings, knn_accuracy, project, trustworthiness
    from deepvis.embed.render import render_map, write_csv
    from deepvis.embed.features import extract_features
    from deepvis.io.images import write_image

    outputs = Outputs()
    outputs.add(args.out, IMAGE)
    outputs.add(args.csv, CSV, "--csv")
    check_tsne_settings(args.perplexity, args.exaggeration)
    model = _load(args)
    dataset = open_dataset(args.data)
    tty = sys.stderr.isatty()

    def say(text):
        if tty:
            print(f"\r{text:<40}", end="", file=sys.stderr, flush=True)

    features = extract_features(model, dataset, args.layer, pooling=args.pooling, batch=args.batch,
                                use_cache=not args.no_cache,
                                progress=lambda done, total: say(f"features {done}/{total}"))
    result = project(features.vectors, args.method, perplexity=args.perplexity, exaggeration=args.exaggeration,
                     seed=args.seed, progress=lambda it, total, _c: say(f"{args.method} {it}/{total}"))
    if tty:
        print("\r" + " " * 40 + "\r", end="", file=sys.stderr, flush=True)
    knn = knn_accuracy(result.coords, features.labels)
    trust = trustworthiness(features.vectors, result.coords)
    picture = render_map(result.coords, features.labels, None if args.points else features.thumbnails)
    with outputs.writing():
        write_image(args.out, picture)
        if args.csv:
            try:
                write_csv(args.csv, result.coords, features.labels, features.paths)
            except OSError as exc:
                raise DeepvisError(f"cannot write {args.csv}: {exc.strerror or exc}") from None
    for note in features.skipped[:5]:
        print(f"skipped {note}", file=sys.stderr)
    quality = f"10-NN accuracy {knn:.3f}, " if knn is not None else ""
    print(f"{args.method} map of {features.layer} over {dataset.name}: {len(features)} points"
          f"{' (cached features)' if features.cached else ''}, {quality}trustworthiness {_maybe(trust)}, "
          f"{result.seconds:.1f} s -> {args.out}" + (f", {args.csv}" if args.csv else ""))


def _maybe(value, digits=3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def cmd_dream(args):
    from deepvis.optimize.dream import Dreamer, DreamSettings
    from deepvis.io.images import write_image

    outputs = Outputs()
    outputs.add(args.out, IMAGE)
    settings = DreamSettings(args.layer, args.unit, args.octaves, args.octave_scale, args.steps, args.step_size,
                             args.jitter, args.smooth)
    settings.check()
    model = _load(args)
    image = _read_input(args.input)
    dreamer = Dreamer(model, _probe(model))
    dreamer.check(settings, image)
    before = dreamer.score(image, settings)
    tty = sys.stderr.isatty()
    last = None
    for last in dreamer.run(image, settings, seed=args.seed):
        if tty:
            print(f"\rdream: octave {last.octave + 1}/{settings.octaves}, step {last.step + 1}/{settings.steps}",
                  end="", file=sys.stderr, flush=True)
    if tty:
        print("\r" + " " * 48 + "\r", end="", file=sys.stderr, flush=True)
    after = dreamer.score(last.image, settings)
    with outputs.writing():
        write_image(args.out, last.image)
    what = f"unit {args.unit} of {args.layer}" if args.unit is not None else args.layer
    print(f"dream of {what}: objective {before:.4g} -> {after:.4g} ({after / before if before else float('inf'):.2f}x), "
          f"{last.image.shape[1]}x{last.image.shape[0]} -> {args.out}")


def cmd_visualize_unit(args):
    from deepvis.io.images import write_image
    from deepvis.render.tiling import upscale
    from deepvis.optimize.unitviz import UnitVisualizer, VizSettings

    outputs = Outputs()
    outputs.add(args.out, IMAGE)
    settings = VizSettings(args.layer, 0 if args.unit == "all" else args.unit, args.size, args.steps,
                           neuron=args.neuron)
    settings.check()
    model = _load(args)
    viz = UnitVisualizer(model, _probe(model))
    viz.check(settings)
    if args.unit == "all":
        _visualize_layer(model, viz, settings, outputs, args)
        return
    image = viz.run(settings, seed=args.seed)
    what = "centre-neuron" if args.neuron else "spatial-mean"
    value = viz.value_of(image, args.layer, args.unit, args.neuron)
    require_finite(value, f"unit {args.unit} of {args.layer}")
    with outputs.writing():
        write_image(args.out, upscale(image, args.min_size))
    print(f"unit {args.unit} of {args.layer}: {what} activation {value:.4g} on the {args.size}x{args.size} image "
          f"-> {args.out}")


def _visualize_layer(model, viz, settings, outputs, args):
    import numpy as np

    from deepvis.core.cache import model_fingerprint
    from deepvis.io.images import write_image
    from deepvis.render.tiling import picture_grid
    from deepvis.optimize.unitviz import visualize_layer

    def progress(done, total):
        print(f"\r{done}/{total} units", end="", file=sys.stderr, flush=True)

    sheet = visualize_layer(viz, settings, model_fingerprint(model), seed=args.seed, progress=progress)
    print(file=sys.stderr)
    columns = int(np.ceil(np.sqrt(len(sheet.images))))
    values = [viz.value_of(image, args.layer, unit, args.neuron) for unit, image in enumerate(sheet.images)]
    require_finite(float(np.sum(values)), f"the units of {args.layer}")
    with outputs.writing():
        write_image(args.out, picture_grid(sheet.images, columns, border=2, fill=30))
    print(f"{len(values)} units of {args.layer}: spatial-mean activation median {np.median(values):.4g}, "
          f"min {min(values):.4g} -> {args.out}")


def _unit_or_all(text: str):
    if text == "all":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a unit number or 'all'") from None


def cmd_segment3d(args):
    import numpy as np

    from deepvis.shapes3d import parts as parts3d
    from deepvis.io.images import write_image
    from deepvis.shapes3d.render import legend_for, part_colors, render_points
    from deepvis.shapes3d.segment import load_point_model, segment_file

    if args.category is not None:
        parts3d.category_index(args.category)  # a wrong name fails before any file is read
    outputs = Outputs()
    out = outputs.add(args.out, NPY)
    outputs.add(args.points_out, NPY, "--points-out")
    outputs.add(args.png, IMAGE, "--png")
    model = load_point_model(args.model, args.weights, device=args.device)
    seg = segment_file(model, args.input, points=args.points, category=args.category)
    picture = None
    if args.png:
        title = f"{Path(args.input).name} - {model.name}" + (f" - {seg.category}" if seg.category else "")
        picture = render_points(seg.points, part_colors(seg.labels), size=args.png_size,
                                highlight=seg.critical if args.critical else None,
                                legend=legend_for(seg.labels, seg.part_names), title=title)
    with outputs.writing():
        _save_npy(out, seg.labels)
        if args.points_out:
            _save_npy(args.points_out, seg.points)
        if picture is not None:
            write_image(args.png, picture)
    ids, counts = np.unique(seg.labels, return_counts=True)
    parts = ", ".join(f"{seg.part_names[i] if 0 <= i < len(seg.part_names) else i} {c}" for i, c in zip(ids, counts))
    line = f"{len(seg.labels)} points of {args.input}"
    if seg.category:
        line += f" as {seg.category}"
    line += f": {parts}"
    if seg.accuracy is not None:
        line += f"; accuracy against the file's labels {seg.accuracy:.3f}"
    print(f"{line} -> {out}" + (f", {args.png}" if args.png else ""))


def cmd_profile_units(args):
    import numpy as np

    from deepvis.io.datasets import open_dataset
    from deepvis.io.images import write_image
    from deepvis.optimize.profiles import profile_sheet, profile_units
    from deepvis.render.tiling import upscale

    outputs = Outputs()
    out = outputs.add(args.out, FOLDER)
    model = _load(args)
    dataset = open_dataset(args.data)
    profiles = profile_units(model, dataset, args.layer, k=args.top, probe=_probe(model), use_cache=not args.no_cache)
    with outputs.writing():
        try:
            out.mkdir(parents=True, exist_ok=True)
            for unit in range(len(profiles.patches)):
                write_image(out / f"unit_{unit:04d}.png", upscale(np.hstack(list(profiles.patches[unit])), 96))
            write_image(out / "sheet.png", profile_sheet(profiles))
            with open(out / "top.csv", "w", encoding="utf-8", errors="surrogateescape") as f:
                f.write("unit,rank,value,item,y,x,label,path\n")
                for unit in range(len(profiles.values)):
                    for rank in range(profiles.values.shape[1]):
                        i = int(profiles.items[unit, rank])
                        y, x = profiles.locations[unit, rank]
                        f.write(f"{unit},{rank},{profiles.values[unit, rank]:.6g},{i},{y},{x},"
                                f"{dataset.labels[i] or ''},{dataset.paths[i] or ''}\n")
        except OSError as exc:
            raise DeepvisError(f"cannot write to {out}: {exc.strerror or exc}") from None
    print(f"top {args.top} of {len(dataset)} images for {len(profiles.values)} units of {args.layer} "
          f"(receptive field {profiles.field} px) -> {out}/unit_*.png, sheet.png, top.csv")


def _rows_cols(text: str) -> tuple[int, int]:
    try:
        rows, cols = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected RxC such as 6x6, got {text!r}") from None
    if not (2 <= rows <= 64 and 2 <= cols <= 64):
        raise argparse.ArgumentTypeError(f"rows and columns must be 2..64, got {text!r}")
    return rows, cols


MAX_PATH_STEPS = 1000  # frames of a strip or a GIF: beyond this a file is unwieldy, not more useful
MAX_WALK_STEPS = 5000


def cmd_interpolate(args):
    import numpy as np
    import torch

    from deepvis.generative.generators import load_generator
    from deepvis.io.images import write_gif, write_image
    from deepvis.generative.latent import corner_grid, path, principal_directions, random_walk
    from deepvis.render.tiling import picture_grid, upscale

    if len(args.seeds) < 2:
        raise DeepvisError("--seeds needs at least two seeds (A B [C ...])")
    if args.steps > MAX_PATH_STEPS:
        raise DeepvisError(f"--steps {args.steps} is too many: at most {MAX_PATH_STEPS}")
    if args.walk is not None and args.walk > MAX_WALK_STEPS:
        raise DeepvisError(f"--walk {args.walk} is too many steps: at most {MAX_WALK_STEPS}")
    stem = Path(args.out)
    outputs = Outputs()
    outputs.add(args.out, IMAGE)
    outputs.add(args.gif, GIF, "--gif")
    if args.grid:
        outputs.add(stem.with_name(stem.stem + "-grid.png"), IMAGE)
    if args.walk:
        outputs.add(stem.with_name(stem.stem + "-walk.gif"), GIF)
    if args.directions:
        outputs.add(stem.with_name(stem.stem + "-directions.png"), IMAGE)
    generator = load_generator(args.generator, args.weights, device=args.device or "cpu", nz=args.nz,
                               trust_pickle=args.trust_pickle)
    if args.directions and args.directions > generator.nz:
        raise DeepvisError(f"--directions {args.directions}: the latent has only {generator.nz} dimensions")
    points = torch.cat([generator.latent(seed) for seed in args.seeds])
    frames = generator.images(path(points, args.steps, args.mode))
    # Everything is made first and written last: a failure part-way leaves no files behind.
    files = [(args.out, "image", upscale(np.hstack(list(frames)), args.min_size))]
    if args.gif:
        there = [upscale(f, 256) for f in frames]
        files.append((args.gif, "gif", (there + there[-2:0:-1], 80)))
    if args.grid:
        rows, cols = args.grid
        seeds = (list(args.seeds) + [args.seeds[0] + k for k in range(1, 4)])[:4]
        corners = torch.cat([generator.latent(seed) for seed in seeds])
        images = generator.images(corner_grid(corners, rows, cols, args.mode))
        files.append((stem.with_name(stem.stem + "-grid.png"), "image",
                      upscale(picture_grid(images, cols), args.min_size)))
    if args.walk:
        walk = generator.images(random_walk(points[0], args.walk, seed=args.seeds[0]))
        files.append((stem.with_name(stem.stem + "-walk.gif"), "gif", ([upscale(f, 256) for f in walk], 60)))
    variance = None
    if args.directions:
        directions, variance = principal_directions(generator, args.directions)
        z = points[:1]
        strengths = torch.linspace(-3, 3, 7)
        rows = [np.hstack(list(generator.images(torch.cat([z + s * d for s in strengths])))) for d in directions]
        files.append((stem.with_name(stem.stem + "-directions.png"), "image",
                      upscale(np.vstack(rows), args.min_size)))
    with outputs.writing():
        for target, kind, content in files:
            if kind == "image":
                write_image(target, content)
            else:
                write_gif(target, *content)
    if variance is not None:
        print("direction variance shares: " + " ".join(f"{v:.3f}" for v in variance))
    print(f"{args.mode} path of {args.steps} steps through seeds {' '.join(map(str, args.seeds))} of "
          f"{generator.name} (nz {generator.nz}) -> {', '.join(str(f[0]) for f in files)}")


def cmd_gui(args):
    try:
        from deepvis.widgets.window.app import run_gui
    except ImportError as exc:
        raise DeepvisError(f"the GUI needs PySide6 and pyqtgraph ({exc})") from None
    if args.screenshot:
        check_output(args.screenshot, IMAGE, "--screenshot")
    options = _model_options(args)
    input_spec = f"camera:{args.camera}" if args.camera is not None else args.input
    # Explicit arguments describe a fresh session; the last session is restored only for a bare start.
    restore = args.model is None and input_spec is None and not args.screenshot
    code = run_gui(model=args.model, weights=args.weights, input_spec=input_spec, tab=args.tab,
                   model_options=options, screenshot=args.screenshot, after_frames=args.after_frames,
                   restore=restore, saliency=args.saliency)
    if code:
        raise DeepvisError("the window closed with an error")


def cmd_bench(args):
    from deepvis.bench.engine import BENCHMARKS

    if args.name == "gui-live":
        # Needs Qt, so it lives with the views; the CLI only dispatches to it.
        from deepvis.widgets.bench.gui_live import bench_gui_live

        result = bench_gui_live(args.model, args.input, seconds=args.seconds or 10.0, weights=args.weights,
                                model_options=_model_options(args), saliency=args.saliency)
        print(json.dumps(result) if args.json else "\n".join(f"{k:>20}  {v}" for k, v in result.items()))
        return
    if args.name == "soak":
        from deepvis.widgets.bench.soak import bench_soak

        methods = args.saliency.split(",") if args.saliency else None
        result = bench_soak(args.model, args.input, seconds=args.seconds or 480.0, weights=args.weights,
                            model_options=_model_options(args), methods=methods)
        print(json.dumps(result) if args.json else "\n".join(f"{k:>30}  {v}" for k, v in result.items()))
        return
    if args.name == "render3d":
        from deepvis.widgets.bench.render3d import bench_render3d

        result = bench_render3d(points=args.frames or 1_000_000)
        print(json.dumps(result) if args.json else "\n".join(f"{k:>22}  {v}" for k, v in result.items()))
        return
    if args.name not in BENCHMARKS:
        raise DeepvisError(f"unknown benchmark {args.name!r}: expected one of "
                           f"{', '.join([*BENCHMARKS, 'gui-live', 'render3d', 'soak'])}")
    # The embedding benchmark's default data are digits, so its default model is digits_cnn.
    model = _load(args) if args.name != "embed" or args.model else None
    extra = {"saliency": args.saliency} if args.saliency else {}
    if extra and args.name != "live":
        raise DeepvisError("--saliency applies to the live and gui-live benchmarks")
    if args.frames is not None:
        extra["frames"] = args.frames
    result = BENCHMARKS[args.name](model, input_spec=args.input, layer=args.layer, **extra)
    if args.json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key:>16}  {value}")


# --- parser -------------------------------------------------------------------------------

def build_parser():
    from deepvis.render.colormaps import COLORMAPS
    from deepvis.render.tiling import NORMALIZATIONS

    parser = _Parser(prog="deepvis", description="Look inside PyTorch networks while they run.")
    parser.add_argument("--version", action="version", version=f"deepvis {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("gui", help="open the app (the default without a command)")
    _add_model(p)
    source = p.add_mutually_exclusive_group()
    source.add_argument("--input", metavar="PATH", help="image, folder of images, video, or 'pattern'")
    source.add_argument("--camera", type=int, metavar="N", help="camera index")
    p.add_argument("--tab", metavar="NAME", help="tab to show first (Activations, Filters, ...)")
    p.add_argument("--saliency", metavar="METHOD",
                   help="start with this back-prop method in the saliency pane (see deepvis saliency --help)")
    p.add_argument("--screenshot", metavar="PNG", help="save the window after --after-frames results and quit")
    p.add_argument("--after-frames", type=_positive_int, default=3, metavar="N")
    p.set_defaults(func=cmd_gui, on_compute_thread=False)

    p = sub.add_parser("models", help="list the model zoo and whether weights are available")
    p.add_argument("--json", action="store_true")
    _add_device(p)
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("info", help="a model's input spec, labels and layers with output shapes")
    _add_model(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("predict", help="top-k classes for an image")
    _add_model(p)
    p.add_argument("--input", required=True, metavar="IMG")
    p.add_argument("--top", type=_positive_int, default=5, metavar="K")
    p.add_argument("--json", action="store_true", help="print a JSON list of {index, label, score}")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("activations", help="a layer's channels as a tiled PNG (and raw .npy)")
    _add_model(p)
    p.add_argument("--input", required=True, metavar="IMG")
    p.add_argument("--layer", required=True, metavar="NAME", help="a layer name from deepvis info")
    p.add_argument("--out", required=True, metavar="PNG")
    p.add_argument("--npy", metavar="FILE", help="also save the activation, float32 (C, H, W) or (C,)")
    p.add_argument("--normalize", choices=NORMALIZATIONS, default="layer")
    p.add_argument("--colormap", choices=COLORMAPS, default="viridis")
    p.add_argument("--min-size", type=int, default=512, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_activations)

    p = sub.add_parser("filters", help="convolution weights as a PNG (first layer in RGB)")
    _add_model(p)
    p.add_argument("--layer", metavar="NAME", help="conv layer (default: the first)")
    p.add_argument("--out", required=True, metavar="PNG")
    p.add_argument("--npy", metavar="FILE", help="also save the raw weights")
    p.add_argument("--mode", choices=("auto", "rgb", "channels"), default="auto")
    p.add_argument("--max-filters", type=_positive_int, metavar="N")
    p.add_argument("--min-size", type=int, default=512, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_filters)

    p = sub.add_parser("saliency", help="attribution map of a class or unit (gradient, guided, Grad-CAM, ...)")
    _add_model(p)
    p.add_argument("--input", required=True, metavar="IMG")
    p.add_argument("--method", required=True, metavar="M",
                   help="gradient, deconv, guided, integrated-gradients, smoothgrad or gradcam")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--target", metavar="CLASS", help="class index or label (default: the top prediction)")
    which.add_argument("--unit", metavar="LAYER:INDEX", help="explain a unit of any layer instead of a class")
    p.add_argument("--region", metavar="X0,Y0,X1,Y1",
                   help="explain only these pixels of a dense target (segmentation class, conv unit), "
                        "as fractions of the width and height")
    p.add_argument("--layer", metavar="NAME", help="Grad-CAM's layer (default: the last convolution)")
    p.add_argument("--samples", type=_positive_int, default=16, metavar="N", help="SmoothGrad's noisy samples")
    p.add_argument("--steps", type=_positive_int, default=32, metavar="N", help="integrated gradients' steps")
    p.add_argument("--batch", type=_positive_int, default=8, metavar="N",
                   help="passes computed together by the heavy methods (lower it if memory runs out)")
    p.add_argument("--out", required=True, metavar="PNG")
    p.add_argument("--npy", metavar="FILE", help="also save the map, float32 (H, W) at the model's input size")
    p.add_argument("--mode", choices=("raw", "gray", "norm", "normblur"), default="norm")
    p.add_argument("--overlay", type=_fraction, metavar="OPACITY", help="blend over the input (0..1)")
    p.add_argument("--min-size", type=int, default=512, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_saliency)

    p = sub.add_parser("embed", help="2-D map (t-SNE, PCA, UMAP) of a layer's features over a dataset")
    _add_model(p)
    p.add_argument("--data", required=True, metavar="DIR|digits",
                   help="an image folder (labels from subfolder names) or digits (scikit-learn's 8x8 digits)")
    p.add_argument("--layer", metavar="NAME", help="default: the layer before the classifier head")
    p.add_argument("--method", choices=("tsne", "pca", "umap"), default="tsne")
    p.add_argument("--out", required=True, metavar="PNG")
    p.add_argument("--csv", metavar="FILE", help="coordinates: x,y,label,path")
    p.add_argument("--perplexity", type=float, default=30.0)
    p.add_argument("--exaggeration", type=float, help="t-SNE exaggeration after the early phase (default 1)")
    p.add_argument("--pooling", choices=("avg", "flatten"), default="avg",
                   help="spatial layers: global average (default) or every value")
    p.add_argument("--batch", type=_positive_int, default=64)
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--points", action="store_true", help="draw points only, no thumbnails")
    p.add_argument("--no-cache", action="store_true", help="recompute the features even if cached")
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser("dream", help="DeepDream: amplify what a layer or unit sees in an image")
    _add_model(p)
    p.add_argument("--input", required=True, metavar="IMG")
    p.add_argument("--layer", required=True, metavar="NAME")
    p.add_argument("--unit", type=int, metavar="I", help="dream one unit instead of the whole layer")
    p.add_argument("--out", required=True, metavar="PNG")
    p.add_argument("--octaves", type=_positive_int, default=4)
    p.add_argument("--octave-scale", type=float, default=1.4)
    p.add_argument("--steps", type=_positive_int, default=10, help="per octave")
    p.add_argument("--step-size", type=float, default=0.02)
    p.add_argument("--jitter", type=int, default=16, help="pixels of random roll before each step")
    p.add_argument("--smooth", type=float, default=0.0, help="Gaussian sigma for the gradient (0: none)")
    p.add_argument("--seed", type=_seed, default=0)
    p.set_defaults(func=cmd_dream)

    p = sub.add_parser("visualize-unit", help="an image optimized from noise to excite one unit (feature viz)")
    _add_model(p)
    p.add_argument("--layer", required=True, metavar="NAME")
    p.add_argument("--unit", required=True, type=_unit_or_all, metavar="I|all",
                   help="a unit, or all: a sheet with one image per unit (cached; resumes after Ctrl-C)")
    p.add_argument("--out", required=True, metavar="PNG")
    p.add_argument("--size", type=_positive_int, default=128)
    p.add_argument("--steps", type=_positive_int, default=256)
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--neuron", action="store_true",
                   help="excite the one activation at the centre of the unit's map, not the whole channel")
    p.add_argument("--min-size", type=int, default=256, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_visualize_unit)

    p = sub.add_parser("profile-units", help="for every unit of a layer, the top-k images and their patches")
    _add_model(p)
    p.add_argument("--data", default="samples", metavar="DIR|digits|samples",
                   help="images to rank (default: the bundled photos and crops of them)")
    p.add_argument("--layer", required=True, metavar="NAME")
    p.add_argument("--top", type=_positive_int, default=9, metavar="K")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--no-cache", action="store_true")
    p.set_defaults(func=cmd_profile_units)

    p = sub.add_parser("interpolate", help="a path between latent points of a generator (GAN) as a strip")
    p.add_argument("--generator", metavar="SPEC",
                   help="digits_gan (bundled, default), faces (gan-face-generate), dcgan with --weights, a "
                        "TorchScript file or package.module:callable")
    p.add_argument("--weights", metavar="FILE")
    p.add_argument("--nz", type=_positive_int, help="latent size, when it cannot be read off the weights")
    p.add_argument("--seeds", type=_seed, nargs="+", required=True, metavar="SEED", help="A B [C ...]")
    p.add_argument("--steps", type=_positive_int, default=8)
    p.add_argument("--mode", choices=("slerp", "lerp"), default="slerp")
    p.add_argument("--out", required=True, metavar="PNG")
    p.add_argument("--gif", metavar="FILE", help="also an animated GIF, there and back")
    p.add_argument("--grid", type=_rows_cols, metavar="RxC",
                   help="also NAME-grid.png: R x C samples interpolated between four corner seeds (A B C D)")
    p.add_argument("--walk", type=_positive_int, metavar="N",
                   help="also NAME-walk.gif: a random walk of N steps from A")
    p.add_argument("--directions", type=_positive_int, metavar="K",
                   help="also a sheet of the K principal directions (GANSpace) at seed A, -3..3")
    p.add_argument("--device", choices=DEVICE_CHOICES, default="cpu")
    p.add_argument("--trust-pickle", action="store_true")
    p.add_argument("--min-size", type=int, default=512, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_interpolate)

    p = sub.add_parser("segment3d", help="part segmentation of a mesh, point cloud or voxel grid (labels .npy, PNG)")
    p.add_argument("--model", default=None, metavar="SPEC",
                   help="pointnet_parts (default), voxnet_parts, a TorchScript file, or package.module:callable")
    p.add_argument("--weights", metavar="FILE", help="state dict for a package.module:callable model")
    p.add_argument("--input", required=True, metavar="FILE",
                   help=".ply .off .obj .stl meshes, .ply .xyz .txt .csv .pts(+.seg) .npy .npz clouds, .binvox grids")
    p.add_argument("--out", required=True, metavar="LABELS.npy", help="int64 part id per point")
    p.add_argument("--points", type=_positive_int, default=2048, metavar="N", help="points sampled from a mesh")
    p.add_argument("--category", metavar="NAME", help="restrict to one category's parts (default: the points vote)")
    p.add_argument("--png", metavar="F", help="also render the labelled cloud (no display needed)")
    p.add_argument("--png-size", type=_positive_int, default=640, help=argparse.SUPPRESS)
    p.add_argument("--critical", action="store_true", help="ring PointNet's critical points in the PNG")
    p.add_argument("--points-out", metavar="F.npy", help="also save the (normalized) points that were labelled")
    _add_device(p)
    p.set_defaults(func=cmd_segment3d)

    p = sub.add_parser("bench", help="benchmarks as ratios against a bare baseline (live, saliency, embed, dream, "
                                     "gui-live, render3d)")
    p.add_argument("name", metavar="NAME", help="live, saliency, embed, dream, gui-live, soak or render3d (the last "
                                                "three need a display, e.g. xvfb-run)")
    _add_model(p)
    p.add_argument("--input", metavar="PATH", help="image, folder or video (default: the bundled photos)")
    p.add_argument("--frames", type=_positive_int, metavar="N",
                   help="frames to measure (live: 100, saliency: 10); embed: points (10,000); render3d: points "
                        "(1,000,000)")
    p.add_argument("--seconds", type=_positive_float, metavar="S",
                   help="gui-live: how long to measure the window (10); soak: how long to run it (480)")
    p.add_argument("--layer", metavar="NAME", help="layer in view (default: the largest conv layer)")
    p.add_argument("--saliency", metavar="METHOD",
                   help="live, gui-live: also compute this saliency map each frame; the bare baseline becomes "
                        "a forward and a backward pass; soak: the methods to cycle, comma-separated "
                        "(default off and every method)")
    p.add_argument("--json", action="store_true")
    # The benchmark drives the compute thread from outside, as the GUI does.
    p.set_defaults(func=cmd_bench, on_compute_thread=False)
    return parser


def main(argv=None) -> int:
    code = _run(argv)
    if argv is None:  # the process's own command line: it exits next
        _end_compute_thread(code)
    return code


def _end_compute_thread(code: int) -> None:
    """Stop the compute thread before the interpreter exits (see ComputeThread.shutdown); a
    task that does not finish in time is abandoned with a hard exit rather than an abort."""
    if not compute_thread().shutdown(timeout=5.0):
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # closed by a broken pipe
                pass
        os._exit(code)


# How torch's and OpenCV's allocators say they failed: a RuntimeError / cv2.error, not MemoryError.
_ALLOCATION_FAILURES = ("can't allocate memory", "Insufficient memory", "not enough memory", "Failed to allocate")


def _is_allocation_failure(exc: BaseException) -> bool:
    return any(text in str(exc) for text in _ALLOCATION_FAILURES)


def _run(argv) -> int:
    # A file name that is not UTF-8 must not turn a success line into a UnicodeEncodeError.
    for stream in (sys.stdout, sys.stderr):
        if getattr(stream, "errors", None) == "strict" and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    debug = bool(os.environ.get("DEEPVIS_DEBUG"))
    if not debug:
        # Library deprecation chatter on stderr would break the one-line error contract.
        warnings.filterwarnings("ignore")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["gui"])
    needs_model = ("info", "predict", "activations", "filters", "bench", "saliency", "embed", "dream",
                   "visualize-unit", "profile-units")
    if getattr(args, "model", "") is None and args.command in needs_model and getattr(args, "name", "") != "embed":
        from deepvis.core.zoo import DEFAULT_MODEL
        args.model = DEFAULT_MODEL
    try:
        if getattr(args, "on_compute_thread", True):
            compute_thread().call(args.func, args)
        else:
            args.func(args)
        return 0
    except DeepvisError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Output piped into `head` and closed early: not an error of ours.
        sys.stderr.close()
        return 0
    except MemoryError:
        print("error: out of memory (try a smaller --input-size or fewer frames)", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:
        import torch

        if isinstance(exc, torch.OutOfMemoryError):
            print("error: out of GPU memory (try --device cpu or a smaller --input-size)", file=sys.stderr)
            return EXIT_USAGE
        if _is_allocation_failure(exc):
            print("error: out of memory (try a smaller --input-size, --size or batch)", file=sys.stderr)
            return EXIT_USAGE
        if debug:
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"error: internal error {type(exc).__name__}: {first} (run with DEEPVIS_DEBUG=1 for a traceback)",
              file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    raise SystemExit(main())

"""``saliency``: attribution maps of a class or unit."""

import argparse
import sys
from pathlib import Path

from deepvis.cli.common import (add_allow_truncated, add_model, add_plain, clear_progress_line, fraction,
                                load_model_of, model_input, note_random_weights, positive_int, probe_of, save_npy)
from deepvis.errors import DeepvisError
from deepvis.io.outputs import IMAGE, NPY, Outputs
from deepvis.live.computethread import compute_thread


def register(sub) -> None:
    p = sub.add_parser("saliency", help="attribution map of a class or unit (gradient, guided, Grad-CAM, ...)")
    add_model(p)
    add_allow_truncated(p)
    p.add_argument("--input", required=True, metavar="IMG", help="a picture, or for a 1-D model a signal file")
    p.add_argument("--method", default="gradient", metavar="M",
                   help="gradient, deconv, guided, integrated-gradients, smoothgrad, gradcam, or for vision "
                        "transformers attention-rollout or grad-rollout (default: %(default)s)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--target", metavar="CLASS",
                       help="class index or label (default: the top prediction); for an image model output (the "
                            "output picture's mean, the default) or error (the reconstruction error)")
    which.add_argument("--unit", metavar="LAYER:INDEX", help="explain a unit of any layer instead of a class")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--region", metavar="X0,Y0,X1,Y1",
                       help="explain only these pixels of a dense target (segmentation class, conv unit), "
                            "as fractions of the width and height")
    where.add_argument("--region-mask", metavar="MASK",
                       help="explain only the pixels a mask picture (PNG or .npy, any size: it is stretched over "
                            "the target's map) sets to non-zero")
    p.add_argument("--layer", metavar="NAME", help="Grad-CAM's layer (default: the last convolution)")
    p.add_argument("--samples", type=positive_int, default=16, metavar="N",
                   help="SmoothGrad's noisy samples (default: %(default)s)")
    p.add_argument("--steps", type=positive_int, default=32, metavar="N",
                   help="integrated gradients' steps (default: %(default)s)")
    p.add_argument("--batch", type=positive_int, default=8, metavar="N",
                   help="passes computed together by the heavy methods (lower it if memory runs out; "
                        "default: %(default)s)")
    p.add_argument("--out", required=True, metavar="PNG", help="the map as a picture")
    p.add_argument("--npy", metavar="FILE", help="also save the map, float32 (H, W) at the model's input size")
    # The choices are deepvis.attribution.render.MODES, written out: the parser imports no torch.
    p.add_argument("--display", "--mode", dest="mode", default=None,
                   choices=("clip99", "signed", "abs", "raw", "gray", "norm", "normblur"),
                   help="clip99: the magnitude clipped at its 99th percentile, as the SmoothGrad paper shows "
                        "gradients; signed: blue negative, red positive, clipped the same way; abs (or norm): the "
                        "magnitude scaled to its maximum; normblur: abs, blurred; gray: the magnitude in grey; raw: "
                        "the toolbox's red and green (default: abs for gradcam and the rollouts, else clip99)")
    p.add_argument("--overlay", type=fraction, metavar="OPACITY",
                   help="blend over the input: 0 the input alone, 1 the map alone")
    add_plain(p)
    p.add_argument("--min-size", type=positive_int, default=512, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_saliency)


def cmd_saliency(args):
    import numpy as np

    from deepvis.io.images import write_image
    from dataclasses import replace

    from deepvis.attribution.saliency import (METHODS, Target, attribute, check_memory, explains, parse_region,
                                              parse_target, resolve_detection, top_class)
    from deepvis.attribution.render import default_display, render_saliency
    from deepvis.render.tiling import upscale

    if args.method not in METHODS:
        raise DeepvisError(f"unknown method {args.method!r}: expected one of {', '.join(METHODS)}")
    region = parse_region(args.region)
    if args.region_mask:
        from deepvis.attribution.saliency import RegionMask
        from deepvis.segmentation.masks import read_mask

        region = RegionMask.of(read_mask(args.region_mask) != 0)
    outputs = Outputs()
    outputs.add(args.out, IMAGE)
    outputs.add(args.npy, NPY, "--npy")
    model = load_model_of(args)
    x, shown = model_input(model, args.input)
    tty = sys.stderr.isatty()

    def progress(fraction):
        if tty and fraction < 1:
            print(f"\r{args.method}: {fraction:4.0%}", end="", file=sys.stderr, flush=True)

    def work():
        probe = probe_of(model)
        if args.unit and ":" in args.unit:
            probe.layer(args.unit.rpartition(":")[0])  # an unknown layer is named as one, not as a class
        target = parse_target(args.unit or args.target, model.labels, probe)
        if args.unit and (target is None or target.kind != "unit"):
            raise DeepvisError(f"--unit wants LAYER:INDEX with a layer from deepvis info, got {args.unit!r}")
        if target is None:
            target = Target("output") if model.picture is not None else top_class(model.module, x, model.head, model.task)
        target = resolve_detection(replace(target, region=region), model, x)
        check_memory(probe, args.method, args.samples, args.steps, args.batch)
        saliency = attribute(model.module, probe, x, args.method, target, layer=args.layer, samples=args.samples,
                             steps=args.steps, batch=args.batch, progress=progress, picture=model.picture,
                             head=model.head)
        return target, saliency

    # Ctrl-C ends the process from the main thread (exit 130); the compute thread is a daemon.
    try:
        target, saliency = compute_thread().call(work)
    finally:
        if tty:
            clear_progress_line(24)
    if not np.isfinite(saliency).all():
        raise DeepvisError("the attribution contains NaN or infinite values (check the weights and input)")
    mode = args.mode or default_display(args.method)
    caption = explains(args.method, target.describe(model.labels))
    if model.signal is not None:
        from deepvis.render.signals import waveform

        picture = waveform(shown, values=saliency)  # the window, coloured by |attribution| over time
        if not args.plain:
            from deepvis.render.figure import axes, figure

            rate, window = model.signal.rate, shown.shape[-1]
            scale, unit = ((0.0, window / rate), "time (s)") if rate else ((0.0, float(window)), "input sample")
            picture = figure(axes(picture, unit, "input", x_scale=scale), f"{model.name} · {caption}",
                             f"input {Path(args.input).name}; background: |attribution| over time, to its maximum")
    else:
        rgb = render_saliency(saliency, mode, image=shown if args.overlay else None, opacity=args.overlay or 0.6)
        picture = upscale(rgb, args.min_size)
        if target.box is not None:  # the detection explained, framed where it is
            from deepvis.render.detections import draw_detections

            k = picture.shape[1] / shown.shape[1]
            picture = draw_detections(picture, [[v * k for v in target.box[1:]]],
                                      [target.describe(model.labels).split(" (")[0]], [target.box[0]])
        if not args.plain:
            from deepvis.attribution.render import display_legend
            from deepvis.render.figure import colour_bar, figure

            colormap, ticks, legend = display_legend(saliency, mode)
            over = f", over the input at opacity {args.overlay:g}" if args.overlay else ""
            picture = figure(picture, f"{model.name} · {caption}",
                             f"input {Path(args.input).name}; display {mode}{over}",
                             colour_bar(picture.shape[0], colormap, ticks, legend))
    with outputs.writing():
        write_image(args.out, picture)
        if args.npy:
            save_npy(args.npy, saliency.astype(np.float32))
    note_random_weights(model)  # the class it names is chance
    print(f"{explains(args.method, target.describe(model.labels))}: map {'x'.join(map(str, saliency.shape))} -> "
          f"{args.out}" + (f", {args.npy}" if args.npy else ""))

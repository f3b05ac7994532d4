"""``activations`` and ``filters``: a layer's channels and a convolution's weights as pictures."""

import argparse

from deepvis.cli.common import (add_allow_truncated, add_model, add_plain, load_model_of, model_input, positive_int,
                                probe_of, save_npy)
from deepvis.errors import DeepvisError
from deepvis.io.outputs import IMAGE, NPY, Outputs


def register(sub) -> None:
    from deepvis.render.colormaps import COLORMAPS
    from deepvis.render.tiling import NORMALIZATIONS

    p = sub.add_parser("activations", help="a layer's channels as a tiled PNG (and raw .npy)")
    add_model(p)
    add_allow_truncated(p)
    p.add_argument("--input", required=True, metavar="IMG", help="a picture, or for a 1-D model a signal file")
    p.add_argument("--layer", required=True, metavar="NAME", help="a layer name from deepvis info")
    p.add_argument("--out", required=True, metavar="PNG", help="the channels as tiles")
    p.add_argument("--npy", metavar="FILE", help="also save the activation, float32 (C, H, W) or (C,)")
    p.add_argument("--normalize", choices=NORMALIZATIONS, default="layer",
                   help="scale to [0, 1] over the whole layer, per channel, or not at all (default: %(default)s)")
    p.add_argument("--colormap", choices=COLORMAPS, default="viridis",
                   help="colour map of the channels (default: %(default)s)")
    add_plain(p)
    p.add_argument("--min-size", type=positive_int, default=512, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_activations)

    p = sub.add_parser("filters", help="convolution weights as a PNG (first layer in RGB)")
    add_model(p)
    p.add_argument("--layer", metavar="NAME", help="conv layer (default: the first)")
    p.add_argument("--out", required=True, metavar="PNG", help="the filters as tiles")
    p.add_argument("--npy", metavar="FILE", help="also save the raw weights")
    p.add_argument("--mode", choices=("auto", "rgb", "channels"), default="auto",
                   help="rgb: each filter one colour tile; channels: each filter a block of its input channels' "
                        "kernels in grey; auto: rgb for 3 input channels (default: %(default)s)")
    p.add_argument("--max-filters", type=positive_int, metavar="N", help="show only the first N filters "
                                                                         "(default: all)")
    add_plain(p)
    p.add_argument("--min-size", type=positive_int, default=512, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_filters)


def cmd_activations(args):
    import numpy as np
    import torch

    from deepvis.render.colormaps import apply_colormap
    from deepvis.io.images import write_image
    from deepvis.render.tiling import tile_activation, upscale

    outputs = Outputs()
    outputs.add(args.out, IMAGE)
    outputs.add(args.npy, NPY, "--npy")
    model = load_model_of(args)
    probe = probe_of(model)
    x, shown = model_input(model, args.input)
    probe.layer(args.layer)  # an unknown name fails here, with the names there are
    with torch.inference_mode():
        _, captured = probe.capture(x, [args.layer])
    activation = captured[args.layer][0].float().cpu().numpy()
    if not np.isfinite(activation).all():
        raise DeepvisError(f"layer {args.layer} has NaN or infinite activations on this input")
    if model.signal is not None and activation.ndim == 2:
        # Channels x time, under the window the model saw.
        from deepvis.render.signals import time_map, waveform

        rows = time_map(activation, args.colormap, row_height=max(2, min(8, 512 // activation.shape[0])))
        picture = np.vstack([waveform(shown, rows.shape[1]), rows])
        if not args.plain:
            picture = _signal_activation_figure(model, args, activation, shown, rows)
        with outputs.writing():
            write_image(args.out, picture)
            if args.npy:
                save_npy(args.npy, activation.astype(np.float32))
        print(f"{args.layer}: {activation.shape[0]} channels x {activation.shape[1]} time steps -> {args.out}"
              + (f", {args.npy}" if args.npy else ""))
        return
    grid, layout = tile_activation(activation, args.normalize)
    picture = upscale(apply_colormap(grid, args.colormap), args.min_size)
    if not args.plain:
        picture = _activation_figure(model, args, activation, picture, layout, picture.shape[0] // grid.shape[0])
    with outputs.writing():
        write_image(args.out, picture)
        if args.npy:
            save_npy(args.npy, activation.astype(np.float32))
    print(f"{args.layer}: {'x'.join(map(str, activation.shape))}, {layout.count} channels in "
          f"{layout.rows}x{layout.cols} tiles -> {args.out}" + (f", {args.npy}" if args.npy else ""))


def cmd_filters(args):
    import numpy as np

    from deepvis.render.colormaps import apply_colormap
    from deepvis.io.images import write_image
    from deepvis.render.tiling import filter_sheet, upscale

    outputs = Outputs()
    outputs.add(args.out, IMAGE)
    outputs.add(args.npy, NPY, "--npy")
    model = load_model_of(args)
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
    name = key[:-len(".weight")]
    if w.ndim == 3 and not args.plain:
        # A 1-D convolution's weights as a heat map with axes: a 1x1 convolution drawn as tiles
        # was 16 lone black or white squares.
        image, rgb = _conv1d_figure(model, name, w, args.max_filters), False
    else:
        sheet, layout = filter_sheet(w, args.mode, args.max_filters)
        rgb = sheet.ndim == 3
        image = (np.clip(np.nan_to_num(sheet, nan=0.19) * 255 + 0.5, 0, 255).astype(np.uint8) if rgb
                 else apply_colormap(sheet, "gray"))
        image = upscale(image, args.min_size)
        if not args.plain:
            image = _filter_figure(model, name, w, image, layout, image.shape[0] // sheet.shape[0], rgb)
    with outputs.writing():
        write_image(args.out, image)
        if args.npy:
            save_npy(args.npy, w.astype(np.float32))
    drawn = "a heat map" if w.ndim == 3 and not args.plain else f"{'RGB' if rgb else 'per-channel'} tiles"
    print(f"{name}: {'x'.join(map(str, w.shape))} as {drawn} -> {args.out}")


def _activation_figure(model, args, activation, picture, layout, factor):
    """The tiles numbered by channel under a title, with the colour bar of the values."""
    from deepvis.render.figure import colour_bar, figure, number_tiles, value_ticks

    shape = "x".join(map(str, activation.shape[1:])) or "1x1"
    title = f"{model.name} · {args.layer} · {activation.shape[0]} channels of {shape}"
    picture = number_tiles(picture, layout, factor)
    if args.normalize == "layer":
        ticks, caption = value_ticks(float(activation.min()), float(activation.max())), "activation"
        how = "one colour scale for the whole layer"
    elif args.normalize == "none":
        ticks, caption = value_ticks(0.0, 1.0), "activation (clipped to 0..1)"
        how = "values as they are, clipped to 0..1"
    else:
        ticks, caption = [(0.0, "min"), (1.0, "max")], "each channel's own range"
        how = "each channel scaled to its own range"
    bar = colour_bar(picture.shape[0], args.colormap, ticks, caption)
    return figure(picture, title, f"input {_name(args.input)}; {how}", bar)


def _signal_activation_figure(model, args, activation, shown, rows):
    """The input window's trace over the channels' rows, with time and channel axes."""
    import numpy as np

    from deepvis.render.figure import axes, axes_left, figure, pad_to, ticks_along
    from deepvis.render.signals import waveform

    channels, steps = activation.shape
    rate = model.signal.rate
    window = shown.shape[-1]
    scale, unit = ((0.0, window / rate), "time (s)") if rate else ((0.0, float(window)), "input sample")
    left = axes_left(ticks_along(channels, rows.shape[0], 5))  # both plots start at the same column
    trace = axes(waveform(shown, rows.shape[1]), unit, "input", x_scale=scale, min_left=left)
    grid = axes(rows, f"{steps} time steps over the window", "channel", y_scale=channels, min_left=left)
    width = max(trace.shape[1], grid.shape[1])
    pad = lambda image: pad_to(image, image.shape[0], width)
    title = f"{model.name} · {args.layer} · {channels} channels x {steps} time steps"
    return figure(np.vstack([pad(trace), pad(grid)]), title,
                  f"input {_name(args.input)}; each channel's row scaled to its own range")


def _filter_figure(model, name, w, image, layout, factor, rgb):
    from deepvis.render.figure import colour_bar, figure, number_tiles

    image = number_tiles(image, layout, factor)
    title = f"{model.name} · {name} · {w.shape[0]} filters of {'x'.join(map(str, w.shape[1:]))}"
    how = ("each filter in RGB, grey = 0, scaled to its own largest |weight|" if rgb else
           "each filter a block of its input channels' kernels, grey = 0, scaled to its own largest |weight|")
    bar = None if rgb else colour_bar(image.shape[0], "gray", [(0.0, "-max"), (0.5, "0"), (1.0, "+max")],
                                      "weight / the filter's max |weight|")
    return figure(image, title, how, bar)


def _conv1d_figure(model, name, w, max_filters):
    """(out, in, k) weights as one signed heat map: a row per filter, a column per input channel
    and tap, on one colour scale for the layer."""
    from deepvis.render.colormaps import apply_colormap
    from deepvis.render.figure import axes, colour_bar, figure, value_ticks

    if max_filters:
        w = w[:max_filters]
    out, inputs, taps = w.shape
    peak = float(abs(w).max()) or 1.0
    matrix = w.reshape(out, inputs * taps)
    # Cells enlarged along each axis on its own: 5 filters of 32 inputs made a 1664-px-wide strip.
    cell_w, cell_h = max(2, min(32, 768 // matrix.shape[1])), max(4, min(32, 384 // out))
    heat = apply_colormap(0.5 + 0.5 * matrix / peak, "coolwarm").repeat(cell_h, 0).repeat(cell_w, 1)
    x_label = "input channel" if taps == 1 else f"input channel ({taps} taps each, oldest first)"
    plot = axes(heat, x_label, "filter", x_scale=inputs, y_scale=out)
    bar = colour_bar(plot.shape[0], "coolwarm", value_ticks(-peak, peak), "weight")
    return figure(plot, f"{model.name} · {name} · {out} filters of {inputs} channels x {taps} taps",
                  "one colour scale for the layer: red positive, blue negative, white 0", bar)


def _name(path) -> str:
    from pathlib import Path

    return Path(path).name

"""``activations`` and ``filters``: a layer's channels and a convolution's weights as pictures."""

import argparse

from deepvis.cli.common import add_model, load_model_of, model_input, positive_int, probe_of, save_npy
from deepvis.errors import DeepvisError
from deepvis.io.outputs import IMAGE, NPY, Outputs


def register(sub) -> None:
    from deepvis.render.colormaps import COLORMAPS
    from deepvis.render.tiling import NORMALIZATIONS

    p = sub.add_parser("activations", help="a layer's channels as a tiled PNG (and raw .npy)")
    add_model(p)
    p.add_argument("--input", required=True, metavar="IMG", help="a picture, or for a 1-D model a signal file")
    p.add_argument("--layer", required=True, metavar="NAME", help="a layer name from deepvis info")
    p.add_argument("--out", required=True, metavar="PNG", help="the channels as tiles")
    p.add_argument("--npy", metavar="FILE", help="also save the activation, float32 (C, H, W) or (C,)")
    p.add_argument("--normalize", choices=NORMALIZATIONS, default="layer",
                   help="scale to [0, 1] over the whole layer, per channel, or not at all (default: %(default)s)")
    p.add_argument("--colormap", choices=COLORMAPS, default="viridis",
                   help="colour map of the channels (default: %(default)s)")
    p.add_argument("--min-size", type=int, default=512, help=argparse.SUPPRESS)
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
    p.add_argument("--min-size", type=int, default=512, help=argparse.SUPPRESS)
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
        with outputs.writing():
            write_image(args.out, picture)
            if args.npy:
                save_npy(args.npy, activation.astype(np.float32))
        print(f"{args.layer}: {activation.shape[0]} channels x {activation.shape[1]} time steps -> {args.out}"
              + (f", {args.npy}" if args.npy else ""))
        return
    grid, layout = tile_activation(activation, args.normalize)
    with outputs.writing():
        write_image(args.out, upscale(apply_colormap(grid, args.colormap), args.min_size))
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
    sheet, layout = filter_sheet(w, args.mode, args.max_filters)
    rgb = sheet.ndim == 3
    image = (np.clip(np.nan_to_num(sheet, nan=0.19) * 255 + 0.5, 0, 255).astype(np.uint8) if rgb
             else apply_colormap(sheet, "gray"))
    with outputs.writing():
        write_image(args.out, upscale(image, args.min_size))
        if args.npy:
            save_npy(args.npy, w.astype(np.float32))
    print(f"{key[:-len('.weight')]}: {'x'.join(map(str, w.shape))} as {'RGB' if rgb else 'per-channel'} "
          f"tiles -> {args.out}")

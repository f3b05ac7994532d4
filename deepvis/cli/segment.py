"""``segment``: a segmentation net's labels over a picture or a folder, against ground truth."""

import sys
from pathlib import Path

from deepvis.cli.common import (add_allow_truncated, add_model, add_plain, fraction, load_model_of,
                                note_random_weights, positive_int, print_json, read_input)
from deepvis.core.defaults import WORK_MEMORY_BYTES
from deepvis.errors import DeepvisError
from deepvis.io.outputs import FOLDER, IMAGE, NPY, Outputs

MODES = ("labels", "confidence", "entropy", "margin")
MAX_SCORE_BYTES = WORK_MEMORY_BYTES  # class maps at a picture's own size


def register(sub) -> None:
    p = sub.add_parser("segment", help="a segmentation net's labels over an image or folder, with metrics against "
                                       "ground-truth masks")
    add_model(p)
    add_allow_truncated(p)
    p.add_argument("--input", required=True, metavar="IMG|DIR", help="a picture or a folder of them")
    p.add_argument("--gt", metavar="MASK|DIR",
                   help="ground truth: an index mask (palette or grey PNG, .npy), or a folder of them matched by "
                        "name (img.png <- img_gt.png, img_mask.png, img.png; Cityscapes *_gtFine_labelIds)")
    p.add_argument("--gt-colors", metavar="JSON", help="colour -> class table for RGB masks")
    p.add_argument("--gt-convention", choices=("voc", "cityscapes"), default="voc",
                   help="voc: ids as stored, 255 ignored; cityscapes: labelIds mapped to trainIds "
                        "(default: %(default)s)")
    p.add_argument("--out", required=True, metavar="PNG|DIR", help="the overlay (a folder for a folder input)")
    p.add_argument("--npy", metavar="FILE|DIR", help="labels as int64 (H, W) at the image's size; -1 outside the "
                                                     "region the model saw")
    p.add_argument("--mode", choices=MODES, default="labels",
                   help="labels: the classes over the picture; confidence, entropy or margin: that per-pixel map "
                        "instead (default: %(default)s)")
    p.add_argument("--opacity", type=fraction, default=0.55,
                   help="the labels' opacity over the picture (default: %(default)s)")
    p.add_argument("--band", type=positive_int, default=2, metavar="PX",
                   help="boundary F1's tolerance in pixels (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print the shares and, with --gt, the metrics as JSON")
    add_plain(p)
    p.set_defaults(func=cmd_segment)


def cmd_segment(args):
    from deepvis.io.images import IMAGE_SUFFIXES
    from deepvis.segmentation.masks import find_mask, read_colour_table

    source = Path(args.input)
    folder = source.is_dir()
    images = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if folder else [source]
    if folder and not images:
        raise DeepvisError(f"{source} has no images")
    gt = Path(args.gt) if args.gt else None
    if gt is not None and not gt.exists():
        raise DeepvisError(f"cannot read ground truth {gt}: no such file or folder")
    if folder and gt is not None and not gt.is_dir():
        raise DeepvisError("--gt must be a folder when --input is a folder")
    outputs = Outputs()
    outputs.add(args.out, FOLDER if folder else IMAGE)
    outputs.add(args.npy, FOLDER if folder else NPY, "--npy")
    colours = read_colour_table(args.gt_colors) if args.gt_colors else None
    model = load_model_of(args)
    if model.task != "segmentation":
        raise DeepvisError(f"{model.name} is a {model.task} model: segment needs an output of class scores "
                           f"(B, classes, H, W) (--task segmentation if it has one)")
    pairs = []
    for image in images:
        mask = None
        if gt is not None:
            mask = find_mask(image, gt) if gt.is_dir() else gt
            if mask is None and not folder:
                raise DeepvisError(f"no ground truth for {image.name} in {gt}")
        pairs.append((image, mask))
    if gt is not None and not any(m for _, m in pairs):
        raise DeepvisError(f"no ground truth in {gt} matches the images of {source}")

    results = [_segment_one(model, image, mask, colours, args) for image, mask in pairs]
    classes = results[0]["classes"]
    report = _report(model, results, classes, args.band)  # before any write: a refusal leaves nothing
    note_random_weights(model)
    written = []
    with outputs.writing():
        from deepvis.cli.common import save_npy
        from deepvis.io.images import write_image

        names = _output_stems(images)
        for image, result in zip(images, results):
            out = Path(args.out) / f"{names[image]}.png" if folder else Path(args.out)
            out.parent.mkdir(parents=True, exist_ok=True)
            write_image(out, result["picture"] if args.plain else _figure(model, image, result, args))
            written.append(out)
            if args.npy:
                save_npy(Path(args.npy) / f"{names[image]}.npy" if folder else args.npy, result["labels"])
    if args.json:
        print_json(report)
        return
    names = model.labels
    top = sorted(enumerate(report["shares"]), key=lambda kv: -kv[1])[:5]
    print(f"{model.name} on {len(images)} image{'s' * (len(images) > 1)}: "
          + ", ".join(f"{_label(names, k)} {share:.1%}" for k, share in top if share > 0) + " of pixels"
          + f" -> {args.out}" + (f", {args.npy}" if args.npy else ""))
    if "metrics" in report:
        m = report["metrics"]
        print(f"mIoU {m['miou']:.4f}, pixel accuracy {m['pixel_accuracy']:.4f}, boundary F1 ({args.band} px) "
              f"{m['boundary_f1']:.4f} over {m['images']} image(s) with ground truth")
        for row in m["classes"]:
            iou = "n/a" if row["iou"] is None else f"{row['iou']:.3f}"
            print(f"  {row['label']:<20} IoU {iou}")


def _output_stems(images) -> dict:
    """Each image's output name: its stem, or its whole name where two images share a stem
    (x.png and x.jpg would both write x.png, one over the other); a note says so."""
    from collections import Counter

    shared = {stem for stem, n in Counter(p.stem for p in images).items() if n > 1}
    if shared:
        print(f"note: {len(shared)} name{'s' * (len(shared) > 1)} shared by images of different types "
              f"({', '.join(sorted(shared)[:3])}): their outputs are named by the whole file name "
              f"(x.jpg.png)", file=sys.stderr)
    return {p: (p.name if p.stem in shared else p.stem) for p in images}


FIGURE_SIDE = 320  # px: the short side of a figure's picture, at least


def _figure(model, image: Path, result: dict, args):
    """The segmentation under a title, with the key of the classes it shows (or the colour bar
    of a confidence or entropy map)."""
    import numpy as np

    from deepvis.render.figure import colour_bar, figure, swatches, value_ticks
    from deepvis.render.colormaps import voc_palette

    from deepvis.render.tiling import upscale

    # Enlarged by whole pixels for the figure: a 64x64 scene under a 360-px title was a stamp.
    picture = upscale(result["picture"], FIGURE_SIDE, max_side=4096)
    labels = result["labels"]
    title = f"{model.name} · {image.name}"
    if args.mode == "labels":
        palette = voc_palette(max(256, result["classes"]))
        present, counts = np.unique(labels[labels >= 0], return_counts=True)
        order = np.argsort(-counts)
        key = swatches([(palette[k], f"{_label(model.labels, int(k))} {c / max(1, counts.sum()):.0%}")
                        for k, c in zip(present[order], counts[order])], picture.shape[0])
        details = "each pixel's most likely class, over the input"
    else:
        top = float(np.log(result["classes"])) if args.mode == "entropy" else 1.0
        key = colour_bar(picture.shape[0], "magma", value_ticks(0.0, top, 3),
                         "entropy (nats)" if args.mode == "entropy" else args.mode)
        details = f"each pixel's {args.mode}"
    if result["truth"] is not None:
        details += "; hatched: pixels the ground truth ignores"
    return figure(picture, title, details, key)


def _label(labels, k):
    return labels[k] if labels and k < len(labels) else f"class {k}"


def _segment_one(model, image_path: Path, mask_path, colours, args) -> dict:
    import numpy as np
    import torch

    from deepvis.live.computethread import compute_thread
    from deepvis.segmentation.dense import dense_maps, seen_box
    from deepvis.segmentation.masks import check_classes, fit_mask, read_mask
    from deepvis.segmentation.metrics import confusion
    from deepvis.render.colormaps import voc_palette
    from deepvis.segmentation.render import hatch_ignored, overlay, value_map

    image = read_input(image_path)
    hw = image.shape[:2]
    # The class scores are resized to the picture's own size (and softmaxed for the maps), so a
    # huge picture costs classes x pixels x 8 bytes: checked before the forward pass.
    classes = model.head.shape[0] if len(model.head.shape) == 3 else 1
    need = max(2, classes) * hw[0] * hw[1] * 8
    if need > MAX_SCORE_BYTES:
        raise DeepvisError(f"{image_path} is {hw[1]}x{hw[0]}: its {max(2, classes)} class maps at that size take "
                           f"{need / 2**30:.1f} GiB (at most {MAX_SCORE_BYTES / 2**30:.0f} GiB); shrink it")
    box = seen_box(hw, model.spec.size, model.spec.fit)
    modes = ("labels",) if args.mode == "labels" else ("labels", args.mode)

    def work():
        with torch.inference_mode():
            return dense_maps(model.main_output(model.module(model.input_tensor(image))), hw, box, modes,
                              activation=model.head.activation)

    maps = compute_thread().call(work)
    rgb = image if image.ndim == 3 else np.repeat(image[:, :, None], 3, axis=2)
    rgb = rgb[:, :, :3]
    if args.mode == "labels":
        picture = overlay(rgb, maps.labels, voc_palette(max(256, maps.classes)), args.opacity)
    else:
        values = getattr(maps, args.mode)
        levels = (0.0, float(np.log(maps.classes))) if args.mode == "entropy" else (0.0, 1.0)
        picture = value_map(rgb, values, levels)
    result = {"labels": maps.labels, "classes": maps.classes, "picture": picture, "truth": None, "confusion": None}
    if mask_path is not None:
        truth = fit_mask(read_mask(mask_path, colours, args.gt_convention), hw, mask_path)
        check_classes(truth, maps.classes, mask_path)
        result["truth"] = truth
        result["confusion"] = confusion(truth, maps.labels, maps.classes)
        result["picture"] = hatch_ignored(picture, truth)
    return result


def _report(model, results, classes, band) -> dict:
    import numpy as np

    from deepvis.segmentation.dense import shares
    from deepvis.segmentation.metrics import boundary_f1, scores

    counts = sum(shares(r["labels"], classes) * int((r["labels"] >= 0).sum()) for r in results)
    report = {"model": model.name, "classes": classes, "images": len(results),
              "shares": [float(v) for v in counts / max(1.0, counts.sum())]}
    with_truth = [r for r in results if r["confusion"] is not None]
    if with_truth:
        matrix = sum(r["confusion"] for r in with_truth)
        if not matrix.sum():
            from deepvis.segmentation.masks import IGNORE

            raise DeepvisError(f"the ground truth marks every pixel the model saw as ignored ({IGNORE}): there is "
                               f"nothing to score (check --gt and --gt-convention)")
        s = scores(matrix)
        labels = model.labels if model.labels and len(model.labels) >= classes else None
        metrics = s.as_dict(labels)
        metrics["boundary_f1"] = float(np.nanmean([boundary_f1(r["truth"], r["labels"], classes, band)
                                                   for r in with_truth]))
        metrics["images"] = len(with_truth)
        metrics["confusion"] = matrix.tolist()
        report["metrics"] = metrics
    return report

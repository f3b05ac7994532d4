"""``segment3d``: part segmentation of 3-D shapes."""

import argparse
from pathlib import Path

from deepvis.cli.common import add_device, positive_int, save_npy, whole
from deepvis.io.outputs import IMAGE, NPY, Outputs

MAX_POINTS = 2**20  # points segmented at once: PointNet keeps 1,024 features (4 KiB) a point, 4 GiB here


def register(sub) -> None:
    p = sub.add_parser("segment3d", help="part segmentation of a mesh, point cloud or voxel grid (labels .npy, PNG)")
    p.add_argument("--model", default=None, metavar="SPEC",
                   help="pointnet_parts (default), voxnet_parts, a TorchScript file, or package.module:callable")
    p.add_argument("--weights", metavar="FILE", help="state dict for a package.module:callable model")
    p.add_argument("--input", required=True, metavar="FILE",
                   help=".ply .off .obj .stl meshes, .ply .xyz .txt .csv .pts(+.seg) .npy .npz clouds, .binvox grids")
    p.add_argument("--out", required=True, metavar="LABELS.npy", help="int64 part id per point")
    p.add_argument("--points", type=whole(1, MAX_POINTS), default=2048, metavar="N",
                   help="points sampled from a mesh (default: %(default)s)")
    p.add_argument("--category", metavar="NAME", help="restrict to one category's parts (default: the points vote)")
    p.add_argument("--png", metavar="F", help="also render the labelled cloud (no display needed)")
    p.add_argument("--png-size", type=positive_int, default=640, help=argparse.SUPPRESS)
    p.add_argument("--critical", action="store_true", help="ring PointNet's critical points in the PNG")
    p.add_argument("--points-out", metavar="F.npy", help="also save the (normalized) points that were labelled")
    add_device(p)
    p.set_defaults(func=cmd_segment3d)


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
        save_npy(out, seg.labels)
        if args.points_out:
            save_npy(args.points_out, seg.points)
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

"""``deepvis bench atlas``: images per second of an atlas build on Ray Data and in one process,
on the same folder in the same run (one process, then Ray, then one process again, so a drift
in machine speed shows as a difference between the two single-process runs).

The ratio is taken past each build's first batch: that batch carries Ray's start and every
worker's model load (seconds on a laptop, once per build), which a long build amortizes; the
figures with the start included are reported beside it.
"""

import shutil
import tempfile
from pathlib import Path

from deepvis.atlas.build import build_atlas, ray_available
from deepvis.atlas.demo import write_photo_folder
from deepvis.errors import DeepvisError


def bench_atlas(model_options: dict, input_spec=None, images: int = 384, workers: int | None = None,
                batch: int = 32) -> dict:
    if not ray_available():
        raise DeepvisError("bench atlas compares against Ray Data: pip install 'deepvis[atlas]'")
    scratch = Path(tempfile.mkdtemp(prefix="deepvis-bench-atlas-"))
    try:
        folder = Path(input_spec) if input_spec else scratch / "photos"
        if not input_spec:
            write_photo_folder(folder, images)
        runs = {}
        for name, engine in (("local_1", "local"), ("ray", "ray"), ("local_2", "local")):
            runs[name] = build_atlas(model_options, folder, scratch / name, engine=engine, workers=workers,
                                     batch=batch, part_rows=1 << 30)
        local = [runs["local_1"], runs["local_2"]]
        ray = runs["ray"]
        local_steady = sum(r["steady_images_per_s"] for r in local) / 2
        local_whole = sum(r["images_per_s"] for r in local) / 2
        return {
            "benchmark": "atlas",
            "model": model_options.get("source"),
            "input": str(input_spec or f"{images} generated JPEGs of the bundled photos"),
            "images": ray["added"],
            "batch": batch,
            "ray_workers": ray["workers"], "ray_threads_per_worker": ray["threads"],
            "local_threads": local[0]["threads"],
            "local_images_per_s": [r["steady_images_per_s"] for r in local],
            "ray_images_per_s": ray["steady_images_per_s"],
            "ratio": round(ray["steady_images_per_s"] / local_steady, 3),
            "ray_first_batch_s": ray["first_batch_s"],
            "local_first_batch_s": [r["first_batch_s"] for r in local],
            "ratio_with_start": round(ray["images_per_s"] / local_whole, 3),
        }
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

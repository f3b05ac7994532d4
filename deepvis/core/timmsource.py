"""``timm:NAME`` model sources: a timm architecture, built offline, with the user's weights.

The model is made with ``pretrained=False`` (nothing is downloaded) and, where the
architecture supports it, ``dynamic_img_size=True``: a ViT then takes any input size its patch
grid allows (non-square too), interpolating its position embedding at run time, so weights
saved at 224x224 still fit. A fine-tuned head's class count is read off the weights. Input
size, mean and std come from the model's ``pretrained_cfg``; ``--input-size`` changes the size.
"""

import difflib

from torch import nn

from deepvis.core.checkpoint import extract_state_dict, load_checkpoint, load_weights_into
from deepvis.core.inputspec import InputSpec
from deepvis.errors import DeepvisError

PREFIX = "timm:"


def is_timm_source(source: str) -> bool:
    return str(source).lower().startswith(PREFIX)


def _timm():
    try:
        import timm
    except ImportError:
        raise DeepvisError("timm models need timm: pip install 'deepvis[timm]'") from None
    return timm


def build_timm(source: str, weights: str | None, trust_pickle: bool, notes: list[str]):
    """(module, input spec, weights text) for ``timm:NAME``."""
    timm = _timm()
    name = source[len(PREFIX):].strip()
    if not name:
        raise DeepvisError("timm: needs a model name, e.g. timm:vit_tiny_patch16_224 (timm.list_models() lists them)")
    known = timm.list_models()
    if name not in known and not timm.is_model(name):
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
        raise DeepvisError(f"timm has no model {name!r}" + (f"; did you mean {', '.join(close)}?" if close else ""))
    state, weights_text = None, "none (random initialisation)"
    if weights is None:
        notes.append("timm: no --weights given, so the weights are random (pretrained=False: nothing is downloaded)")
    elif str(weights).lower() != "none":
        state = extract_state_dict(load_checkpoint(weights, trust_pickle), weights)
        weights_text = str(weights)
    kwargs = {}
    if state is not None:
        classes = _head_classes(timm, name, state)
        if classes is not None:
            kwargs["num_classes"] = classes
    module = _create(timm, name, kwargs)
    if state is not None:
        load_weights_into(module, state, source=str(weights))
    cfg = getattr(module, "pretrained_cfg", None) or {}
    channels, height, width = cfg.get("input_size", (3, 224, 224))
    spec = InputSpec(int(channels), int(height), int(width), tuple(cfg.get("mean", (0.485, 0.456, 0.406))),
                     tuple(cfg.get("std", (0.229, 0.224, 0.225))))
    return module, spec, weights_text


def _create(timm, name: str, kwargs: dict) -> nn.Module:
    try:
        return timm.create_model(name, pretrained=False, dynamic_img_size=True, **kwargs)
    except TypeError:  # not a ViT-style model: no dynamic image size to ask for
        return timm.create_model(name, pretrained=False, **kwargs)


def _head_classes(timm, name: str, state) -> int | None:
    """The class count of the weights' classifier (``pretrained_cfg['classifier']``), when it has one."""
    from timm.models import get_pretrained_cfg_value

    head = get_pretrained_cfg_value(name, "classifier")
    heads = [head] if isinstance(head, str) else list(head or [])
    for key in heads:
        for prefix in ("", "module.", "model."):
            weight = state.get(f"{prefix}{key}.weight")
            if weight is not None and weight.ndim >= 1:
                return int(weight.shape[0])
    return None

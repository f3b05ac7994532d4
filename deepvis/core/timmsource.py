"""``timm:NAME`` model sources: a timm architecture with timm's trained weights or the user's.

Without ``--weights`` the model is made as ``timm.create_model(NAME, pretrained=True)`` makes it:
its weights from the Hugging Face cache, else downloaded there (``HF_HOME``,
``HF_HUB_OFFLINE`` honoured); ``--weights none`` builds it with random weights. Where the
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
    state, weights_text, pretrained = None, "none (random initialisation)", False
    if weights is None:
        # As timm.create_model(..., pretrained=True): the Hugging Face cache, else a download.
        weights_text, pretrained = _check_published(name), True
    elif str(weights).lower() != "none":
        state = extract_state_dict(load_checkpoint(weights, trust_pickle), weights)
        weights_text = str(weights)
    kwargs = {}
    if state is not None:
        classes = _head_classes(timm, name, state)
        if classes is not None:
            kwargs["num_classes"] = classes
    module = _create_pretrained(timm, name) if pretrained else _create(timm, name, kwargs)
    if state is not None:
        load_weights_into(module, state, source=str(weights))
    cfg = getattr(module, "pretrained_cfg", None) or {}
    channels, height, width = cfg.get("input_size", (3, 224, 224))
    spec = InputSpec(int(channels), int(height), int(width), tuple(cfg.get("mean", (0.485, 0.456, 0.406))),
                     tuple(cfg.get("std", (0.229, 0.224, 0.225))))
    return module, spec, weights_text


def _create(timm, name: str, kwargs: dict, pretrained: bool = False) -> nn.Module:
    try:
        return timm.create_model(name, pretrained=pretrained, dynamic_img_size=True, **kwargs)
    except TypeError:  # not a ViT-style model: no dynamic image size to ask for
        return timm.create_model(name, pretrained=pretrained, **kwargs)


def _check_published(name: str) -> str:
    """Where timm's trained weights for ``name`` come from ("timm/NAME.TAG" on the Hugging Face
    hub, or a URL); a DeepvisError when timm publishes none."""
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(name)
    where = cfg and (cfg.hf_hub_id or cfg.url)
    if not where:
        raise DeepvisError(f"timm publishes no trained weights for {name}: pass --weights FILE, or --weights none "
                           f"for random weights")
    return f"timm's trained weights ({where})"


HUB_PROBE_S = 5.0  # seconds to reach the Hugging Face hub before it counts as offline


def _hub_answers(endpoint: str) -> bool:
    """Whether the hub's host takes a connection within HUB_PROBE_S. Offline, huggingface_hub
    retries each file for about 25 s, printing a line per try; with this answer deepvis says so
    in one line instead (the cache has been asked already)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(endpoint)
    try:
        with socket.create_connection((parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)),
                                      timeout=HUB_PROBE_S):
            return True
    except OSError:
        return False


def _create_pretrained(timm, name: str) -> nn.Module:
    """timm's trained model as ``pretrained=True`` gives it: from the Hugging Face cache
    (``HF_HOME``) with no network at all when the file is there, else downloaded into it
    (``HF_HUB_OFFLINE=1`` never asks the network)."""
    from huggingface_hub import constants

    offline_before = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True  # the cache first: huggingface_hub would otherwise ask the hub for updates
    try:
        return _create(timm, name, {}, pretrained=True)
    except Exception:  # not in the cache (or unreadable there): the hub, if it may be asked
        pass
    finally:
        constants.HF_HUB_OFFLINE = offline_before
    reason = ("HF_HUB_OFFLINE is set" if offline_before else
              None if _hub_answers(constants.ENDPOINT) else
              f"{constants.ENDPOINT} did not answer within {HUB_PROBE_S:g} s")
    if reason is None:
        try:
            return _create(timm, name, {}, pretrained=True)
        except Exception as exc:  # huggingface_hub's and requests' errors, a bad file
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    raise DeepvisError(f"timm's trained weights for {name} are neither in the Hugging Face cache "
                       f"({constants.HF_HUB_CACHE}) nor downloadable ({reason}); --weights FILE gives yours, "
                       f"--weights none random weights")


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


def fetch_timm(source: str) -> tuple[str, bool]:
    """Put timm's trained weights for ``timm:NAME`` in the Hugging Face cache (``deepvis fetch``):
    (where they are, whether they were there already)."""
    timm = _timm()
    name = source[len(PREFIX):].strip()
    if not timm.is_model(name):
        raise DeepvisError(f"timm has no model {name!r}")
    _check_published(name)
    from huggingface_hub import constants, try_to_load_from_cache
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(name)
    had = bool(cfg.hf_hub_id) and any(isinstance(try_to_load_from_cache(cfg.hf_hub_id, f), str)
                                      for f in ("model.safetensors", "pytorch_model.bin"))
    if not had:
        _create_pretrained(timm, name)
    return f"{constants.HF_HUB_CACHE} ({cfg.hf_hub_id or cfg.url})", had


def cached_timm_models() -> list[tuple[str, float]]:
    """(``timm:NAME.TAG``, MB) for each timm model in the Hugging Face cache."""
    try:
        from huggingface_hub import scan_cache_dir
        from huggingface_hub.errors import CacheNotFound
    except ImportError:
        return []
    try:
        info = scan_cache_dir()
    except (CacheNotFound, OSError, ValueError):
        return []
    return sorted((f"timm:{repo.repo_id.split('/', 1)[1]}", repo.size_on_disk / 1e6) for repo in info.repos
                  if repo.repo_type == "model" and repo.repo_id.startswith("timm/"))

"""Hugging Face image classifiers from a local folder (``config.json`` plus ``model.safetensors``
or ``pytorch_model.bin``), loaded offline.

The model's output object is left as it is: ``main_output`` takes its ``logits`` wherever the
output is read (predict, saliency, live). Labels come from ``id2label`` unless they are the
generic ``LABEL_k`` names a config gets by default; preprocessing from the folder's
``preprocessor_config.json`` when there is one, else from the config.
"""

import json
import re
from pathlib import Path

from deepvis.core.inputspec import InputSpec
from deepvis.errors import DeepvisError

GENERIC_LABEL = re.compile(r"^LABEL_\d+$")


def is_hf_folder(source) -> bool:
    path = Path(str(source))
    return path.is_dir() and (path / "config.json").is_file()


def build_hf(folder, notes: list[str]):
    """(module, input spec, labels) of the image classifier saved in ``folder``."""
    try:
        from transformers import AutoModelForImageClassification
        from transformers.utils import logging as hf_logging
    except ImportError:
        raise DeepvisError("a Hugging Face model folder needs transformers: pip install 'deepvis[hf]'") from None
    # Its progress bars and warnings would interleave with the CLI's one-line output.
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    folder = Path(folder)
    try:
        module = AutoModelForImageClassification.from_pretrained(str(folder), local_files_only=True)
    except Exception as exc:  # noqa: BLE001 (a truncated safetensors file, a config of wrong types: any error)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DeepvisError(f"cannot load the Hugging Face model in {folder}: {type(exc).__name__}: "
                           f"{first[:240]}") from None
    config = module.config
    if not getattr(config, "num_labels", 1):
        # Without labels the head is an identity: its "classes" would be hidden features.
        raise DeepvisError(f"{folder}/config.json has num_labels 0: the folder holds no classifier head (an "
                           f"encoder's features); deepvis reads Hugging Face image classifiers")
    labels = None
    id2label = getattr(config, "id2label", None) or {}
    if id2label:
        names = [str(id2label.get(k, id2label.get(str(k), f"LABEL_{k}"))) for k in range(len(id2label))]
        if all(GENERIC_LABEL.match(n) for n in names):
            notes.append("config.json has only generic LABEL_k names: classes are shown by index")
        else:
            labels = names
    return module.eval(), _spec(folder, config, notes), labels


def _spec(folder: Path, config, notes: list[str]) -> InputSpec:
    try:
        return _read_spec(folder, config, notes)
    except (TypeError, ValueError) as exc:  # text where a number belongs, a size of three values
        raise DeepvisError(f"the preprocessing of {folder} is not readable (config.json or "
                           f"preprocessor_config.json: {exc}): fix the file") from None


def _read_spec(folder: Path, config, notes: list[str]) -> InputSpec:
    channels = int(getattr(config, "num_channels", 3) or 3)
    size = getattr(config, "image_size", 224) or 224
    height, width = (size, size) if isinstance(size, int) else tuple(int(v) for v in size)
    mean, std = (0.5,) * channels, (0.5,) * channels
    processor = folder / "preprocessor_config.json"
    if processor.is_file():
        try:
            cfg = json.loads(processor.read_text())
        except (OSError, ValueError) as exc:
            raise DeepvisError(f"{processor} is not readable JSON: {exc}") from None
        if not isinstance(cfg, dict):
            raise DeepvisError(f"{processor} is not a JSON object")
        mean = tuple(float(v) for v in cfg.get("image_mean", mean))
        std = tuple(float(v) for v in cfg.get("image_std", std))
        crop = cfg.get("crop_size") or cfg.get("size") or {}
        if isinstance(crop, dict) and "height" in crop and "width" in crop:
            height, width = int(crop["height"]), int(crop["width"])
        elif isinstance(crop, dict) and "shortest_edge" in crop:
            height = width = int(crop["shortest_edge"])
        elif isinstance(crop, int):
            height = width = crop
    else:
        notes.append("no preprocessor_config.json: mean and std 0.5 assumed (--mean/--std to change)")
    return InputSpec(channels, int(height), int(width), mean, std)

